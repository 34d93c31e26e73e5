"""Atomic, verified checkpoints of (stacked) training states with Orbax.

Orbax writes each checkpoint into a temporary directory and renames it when
complete, so a run killed while saving keeps its previous checkpoint intact
(temporary directories left by a killed writer are removed when the next
writer opens the directory). Restoring goes into an abstract target built from
a freshly initialised state, so shapes, dtypes and shardings are checked and
preserved.

Orbax restores changed array bytes without complaint, so every checkpoint
carries two checks, both verified by :meth:`Checkpointer.restore`:

* a SHA-256 checksum of the state (:func:`state_checksum`: every leaf's
  path, dtype, shape and bytes) in its JSON metadata, saved with it and
  compared after restoring: wrong parameters are never returned;
* a manifest of its files (``<step>/files.sha256.json``: size and SHA-256 of
  each), written once Orbax has committed the checkpoint and checked before
  Orbax reads anything, so a truncated, changed or missing file is named in
  the error (and Orbax never reads damaged data). A checkpoint whose writer
  was killed between the commit and the manifest has none and relies on the
  state checksum alone.

A damaged checkpoint raises :class:`CheckpointError`.
:meth:`Checkpointer.restore_latest` falls back from a damaged newest
checkpoint to the newest good one, with a :class:`DamagedCheckpointWarning`
naming both, and moves the damaged one aside. A save that fails (disk full,
permissions) raises :class:`CheckpointWriteError` and leaves the earlier
checkpoints as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from decompvae.rundir import OutputWriteError, write_text_atomic
from decompvae.train import TrainState

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "Checkpointer",
    "DamagedCheckpointWarning",
    "state_checksum",
]

#: Suffix of the directory (beside ``checkpoints``) where damaged checkpoints are moved.
DAMAGED_SUFFIX = ".damaged"

#: The file manifest inside each checkpoint's step directory.
MANIFEST_NAME = "files.sha256.json"


class CheckpointError(RuntimeError):
    """A checkpoint is damaged (unreadable, wrong checksum), or no good one is left."""


class CheckpointWriteError(OutputWriteError):
    """A checkpoint could not be written; the earlier checkpoints are intact."""


class DamagedCheckpointWarning(UserWarning):
    """The newest checkpoint was damaged; an older good one was used instead."""


def state_checksum(state: Any) -> str:
    """SHA-256 (hex) of a pytree's leaves: each leaf's path, dtype, shape and bytes, in tree order.

    Args:
      state: a pytree of arrays (a ``TrainState`` or its dict); fetched to
        the host, so every leaf must be fully addressable.
    """
    tree = state._asdict() if isinstance(state, TrainState) else state
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]:
        leaf = np.asarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}|{leaf.dtype.str}|{leaf.shape}\n".encode())
        digest.update(leaf.tobytes(order="C"))
    return digest.hexdigest()


#: What Orbax logs (absl WARNING) when a reader opens checkpoints read-only: no news to the user.
READ_ONLY_NOTICES = ("CheckpointManagerOptions.read_only=True", "Given directory is read only")


@contextlib.contextmanager
def _without_absl_warnings(fragments: tuple[str, ...]):
    """Drop absl log records whose message contains one of ``fragments`` while the block runs."""
    def keep(record: logging.LogRecord) -> bool:
        return not any(f in record.getMessage() for f in fragments)

    absl = logging.getLogger("absl")
    absl.addFilter(keep)
    try:
        yield
    finally:
        absl.removeFilter(keep)


class Checkpointer:
    """Periodic, atomic, verified checkpoints of a run directory's ``TrainState``.

    Args:
      directory: where checkpoints live (``<directory>/<step>/``); created
        by a writer.
      writer: True for the run that holds the directory's lock
        (:class:`~decompvae.rundir.RunLock`): it saves, deletes old
        checkpoints, removes what a killed writer left and moves damaged
        checkpoints aside. False (the default, ``decompvae evaluate``) only
        reads: it never changes anything, so it may run beside a writer.
      max_to_keep: how many recent checkpoints a writer keeps (2: the
        fallback when the newest is damaged).
    """

    def __init__(self, directory: str | os.PathLike, *, writer: bool = False, max_to_keep: int = 2):
        self.directory = os.path.abspath(os.fspath(directory))
        self.read_only = read_only = not writer
        with _without_absl_warnings(READ_ONLY_NOTICES):  # Orbax restating the options a reader asked for
            self._open(writer, read_only, max_to_keep)

    def _open(self, writer: bool, read_only: bool, max_to_keep: int) -> None:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None if read_only else max_to_keep,
            create=False,  # made below: Orbax refuses to with active_processes
            read_only=read_only,
            cleanup_tmp_directories=not read_only,  # leftovers of a writer killed mid-save
            enable_async_checkpointing=False,  # a failed write raises in save(), not later
            # under jax.distributed only this process uses the checkpointer (process 0 writes, see runner)
            multiprocessing_options=ocp.options.MultiprocessingOptions(
                primary_host=jax.process_index(), active_processes={jax.process_index()}
            ) if jax.process_count() > 1 else ocp.options.MultiprocessingOptions(),
        )
        try:
            if writer:
                os.makedirs(self.directory, exist_ok=True)
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        except OSError as err:
            raise CheckpointWriteError(
                f"could not open the checkpoint directory {self.directory}: {err}; "
                "free disk space or fix the permissions, then rerun the same command"
            ) from err

    def all_steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint (not yet verified), or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: TrainState, metadata: dict[str, Any] | None = None) -> None:
        """Save ``state`` (and JSON ``metadata``, plus its checksum) as checkpoint ``step``; blocks until written.

        Raises:
          CheckpointWriteError: the write failed (disk full, permissions, …);
            the earlier checkpoints are untouched and the partial one removed.
        """
        if self.read_only:
            raise ValueError(f"{self.directory} was opened for reading; a run saves with Checkpointer(writer=True)")
        step = int(step)
        previous = self.latest_step()
        metadata = {**(metadata or {}), "checksum": state_checksum(state)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(state._asdict()), metadata=ocp.args.JsonSave(metadata))
        try:
            self._manager.save(step, args=args, force=True)
            self._manager.wait_until_finished()
            where = self._step_dir(step)
            write_text_atomic(os.path.join(where, MANIFEST_NAME), json.dumps(_file_digests(where), indent=1) + "\n")
        except Exception as err:  # orbax and tensorstore wrap OS errors in their own types
            self._remove_partial(step)
            kept = (f"the previous checkpoint (step {previous}) is intact" if previous is not None
                    else "no checkpoint was written before")
            raise CheckpointWriteError(
                f"could not write checkpoint step {step} in {self.directory}: {type(err).__name__}: {err}; {kept}. "
                "Free disk space or fix the permissions, then rerun the same command: "
                "it resumes from the last checkpoint"
            ) from err

    def _step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _verify_files(self, step: int) -> None:
        """Check the step's files against its manifest (if any); raise CheckpointError naming the first bad one."""
        where = self._step_dir(step)
        path = os.path.join(where, MANIFEST_NAME)
        if not os.path.exists(path):
            return
        try:
            with open(path, "rb") as f:
                expected = json.load(f)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"checkpoint {where} is damaged: its {MANIFEST_NAME} is unreadable ({err})") from err
        found = _file_digests(where)
        for name, (size, digest) in sorted(expected.items()):
            if name not in found:
                raise CheckpointError(f"checkpoint {where} is damaged: {name} is missing")
            if found[name][0] != size:
                raise CheckpointError(
                    f"checkpoint {where} is damaged: {name} has {found[name][0]} bytes, not {size} (truncated?)"
                )
            if found[name][1] != digest:
                raise CheckpointError(f"checkpoint {where} is damaged: the bytes of {name} changed")

    def _remove_partial(self, step: int) -> None:
        for name in os.listdir(self.directory) if os.path.isdir(self.directory) else ():
            if name.startswith(f"{step}.orbax-checkpoint-tmp"):
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

    def restore(self, target: TrainState, step: int | None = None) -> TrainState:
        """Restore and verify checkpoint ``step`` (default: latest) into the structure of ``target``.

        Raises:
          FileNotFoundError: no checkpoint in the directory.
          CheckpointError: the checkpoint is damaged (unreadable, missing
            files, checksum or step mismatch).
        """
        step = self.latest_step() if step is None else int(step)
        if step is None:
            raise FileNotFoundError(f"no checkpoint found in {self.directory}")
        where = self._step_dir(step)
        self._verify_files(step)
        abstract = jax.tree.map(_abstract, target._asdict())
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore())
        try:
            restored = self._manager.restore(step, args=args)
            state, metadata = TrainState(**restored["state"]), restored["metadata"]
        except Exception as err:  # truncated or missing files surface as many error types
            why = f"{type(err).__name__}: {_first_line(err)}"
            raise CheckpointError(f"checkpoint {where} is unreadable ({why})") from err
        if not isinstance(metadata, dict):
            raise CheckpointError(f"checkpoint {where} has no readable metadata")
        expected = metadata.get("checksum")  # absent in checkpoints written before checksums: not verifiable
        if expected is not None and state_checksum(state) != expected:
            raise CheckpointError(f"checkpoint {where} is corrupt: its arrays do not match the checksum saved")
        steps = np.unique(np.asarray(jax.device_get(state.step)))
        if steps.tolist() != [step]:
            raise CheckpointError(f"checkpoint {where} holds states at steps {steps.tolist()}, not {step}")
        return state

    def restore_latest(self, target: TrainState) -> tuple[int, TrainState] | None:
        """The newest good checkpoint as ``(step, state)``, or None when there is none at all.

        A damaged newer checkpoint is skipped with a
        :class:`DamagedCheckpointWarning` naming it and the step used instead;
        a writer moves it to ``<directory>.damaged/`` so that
        the run can write that step again.

        Raises:
          CheckpointError: checkpoints exist but none is good (nothing is
            moved or changed then).
        """
        problems = []
        for step in reversed(self.all_steps()):
            try:
                state = self.restore(target, step)
            except CheckpointError as err:
                problems.append((step, str(err)))
                continue
            if problems:
                moved = self._move_aside([s for s, _ in problems])
                warnings.warn(
                    "; ".join(why for _, why in problems)
                    + f"; resuming from the previous good checkpoint, step {step} in {self.directory}"
                    + (f" (the damaged one moved to {moved})" if moved else ""),
                    DamagedCheckpointWarning,
                    stacklevel=2,
                )
            return step, state
        if problems:
            raise CheckpointError(
                f"no good checkpoint in {self.directory}: "
                + "; ".join(why for _, why in problems)
                + ". Nothing was changed. Restore the directory from a backup, or start the run over with --fresh "
                "(which deletes these checkpoints)"
            )
        return None

    def _move_aside(self, steps: list[int]) -> str | None:
        if self.read_only:
            return None
        dest_root = self.directory + DAMAGED_SUFFIX
        os.makedirs(dest_root, exist_ok=True)
        for step in steps:
            dest, n = os.path.join(dest_root, str(step)), 1
            while os.path.exists(dest):
                dest, n = os.path.join(dest_root, f"{step}-{n}"), n + 1
            os.rename(self._step_dir(step), dest)
        self._manager.reload()
        return dest_root

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        """The JSON metadata saved with checkpoint ``step`` (default: latest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint found in {self.directory}")
        return self._manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))["metadata"]

    def close(self) -> None:
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _abstract(leaf) -> jax.ShapeDtypeStruct:
    """The restore target of one leaf: its sharding, or (host arrays) this process's first device."""
    if isinstance(leaf, jax.Array):
        return ocp.utils.to_shape_dtype_struct(leaf)
    leaf = np.asarray(leaf)
    first = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=first)


def _file_digests(directory: str) -> dict[str, list]:
    """``{relative path: [size, sha256 hex]}`` of every file under ``directory`` but the manifest."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if rel == MANIFEST_NAME:
                continue
            with open(path, "rb") as f:
                found[rel] = [os.fstat(f.fileno()).st_size, hashlib.file_digest(f, "sha256").hexdigest()]
    return found


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""
