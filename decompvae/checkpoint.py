"""Atomic checkpoints of (stacked) training states with Orbax.

Orbax writes each checkpoint into a temporary directory and renames it when
complete, so a run killed while saving keeps its previous checkpoint intact.
Restoring goes into an abstract target built from a freshly initialised
state, so shapes, dtypes and shardings are checked and preserved.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from decompvae.train import TrainState

__all__ = ["Checkpointer"]


class Checkpointer:
    """Periodic, atomic checkpoints of a run directory's ``TrainState``.

    Args:
      directory: where checkpoints live (``<directory>/<step>/``); created.
      max_to_keep: how many recent checkpoints to keep.
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 2):
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: TrainState, metadata: dict[str, Any] | None = None) -> None:
        """Save ``state`` (and JSON ``metadata``) as checkpoint ``step``; blocks until written."""
        args = {"state": ocp.args.StandardSave(state._asdict())}
        if metadata is not None:
            args["metadata"] = ocp.args.JsonSave(metadata)
        self._manager.save(int(step), args=ocp.args.Composite(**args), force=True)
        self._manager.wait_until_finished()

    def restore(self, target: TrainState, step: int | None = None) -> TrainState:
        """Restore checkpoint ``step`` (default: latest) into the structure of ``target``.

        Raises:
          FileNotFoundError: no checkpoint in the directory.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint found in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target._asdict())
        restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        return TrainState(**restored["state"])

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
