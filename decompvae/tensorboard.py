"""Optional TensorBoard event files for a run: one TensorBoard run per member.

:class:`TensorBoardLog` writes the rows the runner appends to ``log.jsonl``
(``{"step", "member", "loss", "recon", "kl", "regulariser", "diverged_at"}``,
one per member per logged chunk) as scalars ``train/<term>``, each member in
its own subdirectory so that TensorBoard shows the members as separate runs
beside the user's other work::

    RUN_DIR/tensorboard/m0_beta=1_alpha=0_lr=0.0005_seed=0/events.out.tfevents…
    RUN_DIR/tensorboard/m1_beta=4_alpha=0_lr=0.0005_seed=0/…

    tensorboard --logdir RUN_DIR/tensorboard

Written through ``tensorboardX`` (no TensorFlow), an optional dependency
imported only when a log is opened. Non-finite values (a diverged member) are
not written. A resumed run passes ``start_step`` (the restored checkpoint's
step): TensorBoard then drops the events logged after it by the interrupted
run, which the resumed run logs again (a ``SessionLog.START`` marker, as
TensorFlow writes on restart).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

__all__ = ["TENSORBOARD_DIR", "TensorBoardLog", "member_dir", "scalars"]

#: Subdirectory of a run directory for the event files.
TENSORBOARD_DIR = "tensorboard"
#: Row keys that are not scalars to plot.
META_KEYS = ("step", "member", "diverged_at", "images", "seconds")


def member_dir(index: int, label: str, n_members: int) -> str:
    """A member's subdirectory name: ``m<i>_<label>`` (i zero-padded, label made file-safe).

    Example: ``member_dir(2, "beta=4 seed=1", 12) == "m02_beta=4_seed=1"``.
    """
    width = len(str(max(n_members - 1, 0)))
    safe = re.sub(r"[^A-Za-z0-9.=+-]+", "_", label).strip("_")
    return f"m{index:0{width}d}" + (f"_{safe}" if safe else "")


def scalars(row: Mapping, prefix: str = "train") -> Iterator[tuple[str, float]]:
    """``(prefix/key, value)`` for the finite numeric entries of a row, metadata aside."""
    for key, value in row.items():
        if key in META_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            yield f"{prefix}/{key}", float(value)


class TensorBoardLog:
    """TensorBoard event writers for the members of a sweep.

    Args:
      out_dir: the directory TensorBoard's ``--logdir`` points at (usually
        ``RUN_DIR/tensorboard``); created if missing.
      labels: one label per member (``decompvae.sweep.member_label``), in
        member order; each names the member's subdirectory.
      start_step: the step a resumed run restarts from, or None for a new run.
        Events the interrupted run wrote after this step are superseded.
      flush_secs: how often pending events are written to disk.

    Raises:
      ImportError: ``tensorboardX`` is not installed (``pip install
        'decompvae[tensorboard]'``).
    """

    def __init__(self, out_dir: str | Path, labels: Sequence[str], *, start_step: int | None = None,
                 flush_secs: int = 30):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "train.tensorboard = true needs tensorboardX: pip install 'decompvae[tensorboard]'"
            ) from err
        self.out_dir = Path(out_dir)
        self.dirs = [self.out_dir / member_dir(i, label, len(labels)) for i, label in enumerate(labels)]
        purge = None if start_step is None else int(start_step) + 1  # keep what was logged at start_step
        # Event file names hold the time in seconds: a suffix in nanoseconds keeps a run
        # resumed within the same second from overwriting the interrupted run's file.
        suffix = f".{time.time_ns()}"
        self._writers = [
            SummaryWriter(logdir=str(d), purge_step=purge, flush_secs=flush_secs, filename_suffix=suffix)
            for d in self.dirs
        ]
        if start_step is None:
            for writer, label in zip(self._writers, labels, strict=True):
                writer.add_text("member", label, 0)

    def write(self, step: int, rows: Iterable[Mapping], prefix: str = "train") -> None:
        """Write one logged chunk: each row's scalars to its member's run at ``step``.

        Args:
          step: the global step the rows describe.
          rows: dicts with a ``"member"`` index and numeric terms (the
            ``log.jsonl`` rows, or the summary's held-out rows with
            ``prefix="eval"``); strings and :data:`META_KEYS` are skipped.
          prefix: the tag prefix.
        """
        for row in rows:
            writer = self._writers[int(row["member"])]
            for tag, value in scalars(row, prefix):
                writer.add_scalar(tag, value, int(step))

    def flush(self) -> None:
        """Write pending events to disk."""
        for writer in self._writers:
            writer.flush()

    def close(self) -> None:
        """Flush and close every writer (idempotent)."""
        for writer in self._writers:
            writer.close()
        self._writers = []

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
