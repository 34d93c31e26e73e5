"""Several processes computing one sweep with JAX's distributed runtime.

Every process runs the same command with its own ``process_id``
(``decompvae sweep --coordinator HOST:PORT --num-processes N --process-id I``,
or the config's ``[distributed]`` section). :func:`initialize` starts JAX's
distributed runtime (with gloo collectives on CPU), after which
``jax.devices()`` lists the devices of every process and the sweep's mesh
spans them all: each process trains the members on its own devices.

Process 0 is the *writer*: it alone takes the run directory's lock and
writes config.json, log.jsonl, checkpoints, summary.csv and figures; the
others only compute, and need no access to the output directory. The
helpers here keep the processes in step:

* :func:`to_host` gathers a sharded pytree to NumPy on every process;
* :func:`broadcast` sends process 0's NumPy pytree to all (bit-exact), so
  every process resumes from the checkpoint process 0 chose;
* :func:`on_writer` runs an output step on process 0 and tells every
  process whether it failed, so a full disk or a locked directory stops all
  of them instead of leaving the others waiting.

With one process every helper is the identity (or a plain call).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
from jax.experimental import multihost_utils
import numpy as np
from jax.sharding import Sharding

__all__ = ["WriterFailed", "broadcast", "initialize", "is_writer", "multi_process", "on_writer", "to_global", "to_host"]


class WriterFailed(RuntimeError):
    """Process 0 (the writer) stopped the run; its own error says why."""


def initialize(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join the distributed runtime (once per process; before any JAX computation).

    Args:
      coordinator: ``HOST:PORT`` of process 0 (the same on every process).
      num_processes: processes in all.
      process_id: this process's index.

    Raises:
      RuntimeError: JAX already ran a computation in this process, or the
        runtime was initialised with other values.
    """
    if jax.distributed.is_initialized():
        if (jax.process_count(), jax.process_index()) != (num_processes, process_id):
            raise RuntimeError(
                f"JAX's distributed runtime already runs as process {jax.process_index()} of "
                f"{jax.process_count()}, not {process_id} of {num_processes}"
            )
        return
    # CPU backends need a collectives implementation to span processes (a no-op on GPU/TPU).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def multi_process() -> bool:
    return jax.process_count() > 1


def is_writer() -> bool:
    """True on process 0, the one that writes the outputs."""
    return jax.process_index() == 0


def to_host(tree: Any) -> Any:
    """A pytree of (possibly sharded across processes) arrays as NumPy arrays, on every process."""
    if not multi_process():
        return jax.device_get(tree)
    def gather(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(gather, tree)


def broadcast(tree: Any) -> Any:
    """Process 0's pytree of NumPy arrays, on every process (same shapes everywhere), bit for bit.

    The bytes travel as unsigned integers: a float broadcast by summation
    would turn −0.0 into +0.0.
    """
    if not multi_process():
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    arrays = [np.array(leaf, order="C") for leaf in leaves]  # (ascontiguousarray would make scalars 1-d)
    as_bytes = [a.reshape(-1).view(np.uint8) for a in arrays]
    received = multihost_utils.broadcast_one_to_all(as_bytes)
    out = [np.asarray(b, np.uint8).view(a.dtype).reshape(a.shape) for a, b in zip(arrays, received)]
    return jax.tree.unflatten(treedef, out)


def to_global(tree: Any, sharding: Sharding) -> Any:
    """Place a host pytree (the same on every process) with ``sharding``, which may span processes."""
    if not multi_process():
        return jax.device_put(tree, sharding)

    def place(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


def on_writer(fn: Callable, *args, **kwargs):
    """Call ``fn`` on process 0 only; every process learns whether it raised.

    Returns:
      ``fn``'s result on process 0, None on the others.

    Raises:
      whatever ``fn`` raised, on process 0; :class:`WriterFailed` on the others.
    """
    result, error = None, None
    if is_writer():
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # re-raised below, once the others know
            error = err
    if multi_process() and bool(broadcast(np.asarray(error is not None))) and error is None:
        raise WriterFailed(
            f"process 0, the writer, stopped the run (its message says why); process {jax.process_index()} stops too"
        )
    if error is not None:
        raise error
    return result
