"""Stopping a run cleanly on SIGTERM or SIGINT: a checkpoint at the next chunk boundary, then exit 75.

A scheduler preempts a job with SIGTERM and kills it a grace period later
(SLURM's ``KillWait``, 30 s by default; preemptible cloud machines similar);
a user stops one with Ctrl-C (SIGINT). While :class:`StopRequests` is active
(the training loop of :func:`decompvae.runner.run`), either signal only
records the request. The loop asks after each compiled chunk of
``train.log_every`` steps — the step boundary it can stop at — logs that
chunk, writes a checkpoint of every member at that step and raises
:class:`RunInterrupted`; the command line exits with
:data:`EXIT_INTERRUPTED`. Rerunning the same command resumes from that
checkpoint, and the run's log and final state equal an uninterrupted run's.

Signals that arrive while the checkpoint is being written are recorded and
otherwise ignored, so a second Ctrl-C or SIGTERM cannot cut the write short
(checkpoints are also written atomically: :mod:`decompvae.checkpoint`).
Outside the training loop the default handlers apply.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

__all__ = ["EXIT_INTERRUPTED", "SIGNALS", "RunInterrupted", "StopRequests"]

#: The signals that stop a run cleanly.
SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: The exit status after a clean stop: EX_TEMPFAIL of sysexits.h ("try again later"): rerun to resume.
EXIT_INTERRUPTED = 75


class RunInterrupted(RuntimeError):
    """A run stopped by a signal after writing a checkpoint of every member at ``step``."""

    def __init__(self, signum: int, step: int, output_dir):
        self.signum, self.step, self.output_dir = signum, step, Path(output_dir)
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after step {step}: every member's checkpoint is in "
            f"{self.output_dir / 'checkpoints'}; run the same command again to resume"
        )


class StopRequests:
    """The stop signals received while active: a context manager around a training loop.

    Entering installs a handler for each of ``signals`` that records the
    signal number; leaving restores the previous handlers. Outside the main
    thread (where Python cannot install handlers) it records nothing.

    Attributes:
      received: the signal numbers received, in order.
    """

    def __init__(self, signals: tuple[int, ...] = SIGNALS):
        self.signals = tuple(signals)
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def _record(self, signum: int, frame) -> None:
        self.received.append(signum)

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._record) for s in self.signals}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    @property
    def first(self) -> int | None:
        """The first signal received, or None."""
        return self.received[0] if self.received else None
