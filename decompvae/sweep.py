"""Vectorised sweeps: one compiled program trains a grid of models.

A :class:`Grid` lists values of β, α (one weight, or one per regulariser:
``{name: values}``, or ``{name: value}`` points that move together), the
prior's numeric parameters, the regularisers' traced parameters, the learning
rate and the seed; :meth:`Grid.members` expands it (Cartesian product or
zipped) into N :class:`Member` records. :func:`stack_members` turns them into
stacked pytrees (``Hyperparams`` with leading axis N, learning rates [N],
keys [N]), and :func:`make_sweep` vmaps a :class:`~decompvae.train.Trainer`
over that axis, shards it across devices on a ``Mesh`` with a ``"sweep"``
axis, and splits the members into chunks that fit in memory.

Member i of a sweep follows exactly the trajectory of a single run with the
same hyperparameters and seed (tested), because every random number is
derived from the member's own key.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from decompvae._checks import check_choice, check_dim
from decompvae.distributed import to_global, to_host
from decompvae.objective import Hyperparams
from decompvae.regularisers import SINGLE, alpha_axes, alpha_by_name, current_columns, params_by_name
from decompvae.train import StepInfo, Trainer, TrainState

Array = jax.Array

__all__ = ["Grid", "Member", "Sweep", "make_sweep", "member_label", "resolve_vectorize", "stack_members", "sweep_mesh",
           "take_member"]

SWEEP_AXIS = "sweep"
#: Members vmapped together on CPU by default (:func:`resolve_vectorize`; None = all). One at a time
#: was the fastest on 2 CPU cores at every N measured (0.87–0.95× a single model's step against
#: 0.93–1.34× for the all-vmapped sweep; benchmarks/README.md, 2026-12-02).
CPU_VECTORIZE: int | None = 1


@dataclasses.dataclass(frozen=True)
class Grid:
    """A hyperparameter grid.

    Attributes:
      beta: values of β.
      alpha: values of α: a list of numbers (one regulariser); ``{name:
        values}`` for several regularisers (each name its own axis); or a list
        of ``{name: value}`` points (one axis whose values move together,
        e.g. DIP-VAE's λ_d = 10·λ_od).
      prior: ``{name: values}`` for the prior's numeric parameters (e.g.
        ``{"df": [2, 5, 9]}``); array-valued parameters (PCA variances) may be
        given as a single fixed value in ``fixed_prior``.
      learning_rate: values of the learning rate.
      seed: integer seeds.
      mode: ``"product"`` (Cartesian product) or ``"zip"`` (all lists of one
        length, taken together; a list of length 1 is broadcast).
      fixed_prior: prior parameters shared by all members (not swept).
      regulariser_params: ``{key: values}`` for regularisers' traced parameters,
        ``key`` ``"<regulariser>.<param>"`` (e.g. ``"capacity.c_max"``) or
        ``"<param>"`` for a single regulariser.

    :meth:`members` gives :class:`Member` records.
    """

    beta: Sequence[float] = (1.0,)
    alpha: Sequence[float] | Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]] = (0.0,)
    prior: Mapping[str, Sequence[float]] = dataclasses.field(default_factory=dict)
    learning_rate: Sequence[float] = (5e-4,)
    seed: Sequence[int] = (0,)
    mode: str = "product"
    fixed_prior: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    regulariser_params: Mapping[str, Sequence[float]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_choice("mode", self.mode, ("product", "zip"))
        axes = self._axes()
        for name, values in axes.items():
            if len(values) == 0:
                raise ValueError(f"grid axis {name!r} is empty; give at least one value")
        if any(v < 0 for v in self.beta):
            raise ValueError(f"beta values must be ≥ 0; got {list(self.beta)}")
        alphas = [v for name, values in axes.items() if name == "alpha" or name.startswith("alpha.") for v in values]
        alphas = [a for v in alphas for a in alpha_by_name(v).values()]
        if any(v < 0 for v in alphas):
            raise ValueError(f"alpha values must be ≥ 0; got {self.alpha!r}")
        if any(v <= 0 for v in self.learning_rate):
            raise ValueError(f"learning_rate values must be > 0; got {list(self.learning_rate)}")
        if self.mode == "zip":
            lengths = {len(v) for v in axes.values()} - {1}
            if len(lengths) > 1:
                raise ValueError(
                    "mode='zip' needs every grid list to have the same length (or length 1); got lengths "
                    + ", ".join(f"{k}={len(v)}" for k, v in axes.items())
                )

    def _axes(self) -> dict[str, list]:
        axes = {"beta": list(self.beta), **alpha_axes(self.alpha)}
        axes.update({f"prior.{k}": list(v) for k, v in self.prior.items()})
        axes.update({f"regulariser_params.{k}": list(v) for k, v in self.regulariser_params.items()})
        axes["learning_rate"] = list(self.learning_rate)
        axes["seed"] = [int(s) for s in self.seed]
        return axes

    def members(self) -> list["Member"]:
        """The N members (:class:`Member`), in grid order (the last axis fastest in ``product`` mode)."""
        axes = self._axes()
        names = list(axes)
        if self.mode == "product":
            rows = itertools.product(*(axes[n] for n in names))
        else:
            length = max(len(v) for v in axes.values())
            rows = zip(*(axes[n] * length if len(axes[n]) == 1 else axes[n] for n in names))
        return [Member.from_flat(dict(zip(names, row))) for row in rows]

    def __len__(self) -> int:
        return len(self.members())


@dataclasses.dataclass(frozen=True)
class Member:
    """One network of a sweep: the numbers it trains with (a row of :meth:`Grid.members`).

    Attributes:
      beta: β.
      alpha: ``{name: α_k}``; the scalar form's one α is ``{"divergence": α}``
        (:func:`~decompvae.regularisers.alpha_by_name`; a number given here is read so).
      prior: ``{param: value}``: the prior numbers the grid sets (the fixed ones are the run's).
      regulariser_params: the regularisers' traced numbers the grid sets, ``{name: {param: value}}``;
        the scalar form's are ``{"divergence": {param: value}}``
        (:func:`~decompvae.regularisers.params_by_name`; a flat ``{param: value}`` given here is read so).
      learning_rate: the learning rate.
      seed: the seed of every random number of the member.

    :meth:`flat` is the one flat form (``members.csv``'s columns); :func:`stack_members` stacks members.
    """

    beta: float = 1.0
    alpha: Mapping[str, float] = dataclasses.field(default_factory=lambda: {SINGLE: 0.0})
    prior: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    regulariser_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate: float = 5e-4
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "alpha", alpha_by_name(self.alpha))
        object.__setattr__(self, "regulariser_params", params_by_name(self.regulariser_params))

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> "Member":
        """From ``{"beta", "alpha" (a number or ``{name: α}``) or "alpha.<name>", "prior.<param>",
        "regulariser_params.<param>" or "regulariser_params.<name>.<param>", "learning_rate", "seed"}``."""
        flat = current_columns(flat)
        alpha = flat.get("alpha", 0.0)
        named = {k[len("alpha."):]: v for k, v in flat.items() if k.startswith("alpha.")}
        if named and "alpha" in flat:
            raise ValueError("members mix a scalar alpha with alpha.<name> weights")
        params = _undotted({k[len("regulariser_params."):]: v for k, v in flat.items()
                            if k.startswith("regulariser_params.")})
        return cls(beta=flat.get("beta", 1.0), alpha=named or alpha,
                   prior={k[len("prior."):]: v for k, v in flat.items() if k.startswith("prior.")},
                   regulariser_params=params, learning_rate=flat.get("learning_rate", 5e-4), seed=flat.get("seed", 0))

    def flat(self) -> dict[str, Any]:
        """``{"beta", "alpha" or "alpha.<name>", "prior.<param>", "regulariser_params.<key>", "learning_rate",
        "seed"}``: the columns of ``members.csv``."""
        return {"beta": self.beta, **_alpha_columns(self.alpha), **{f"prior.{k}": v for k, v in self.prior.items()},
                **{f"regulariser_params.{k}": v for k, v in _dotted(self.regulariser_params).items()},
                "learning_rate": self.learning_rate, "seed": self.seed}

    @property
    def label(self) -> str:
        """A short readable label (:func:`member_label`)."""
        return _label(self.flat())


def _alpha_columns(alpha: Mapping[str, float]) -> dict[str, float]:
    """``{name: α_k}`` → ``{"alpha.<name>": α_k}``; the scalar form's one α → ``{"alpha": α}``."""
    return {"alpha" if k == SINGLE else f"alpha.{k}": v for k, v in alpha.items()}


def _undotted(dotted: Mapping[str, Any]) -> dict[str, dict]:
    """``{"<name>.<param>": v}`` → ``{name: {param: v}}``; ``{"<param>": v}`` is the scalar form's (inverts
    :func:`_dotted`)."""
    out: dict = {}
    for key, value in dotted.items():
        name, _, param = key.partition(".")
        name, param = (name, param) if param else (SINGLE, name)
        out.setdefault(name, {})[param] = value
    return out


def _dotted(params: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{name: {param: v}}`` → ``{"<name>.<param>": v}``; the scalar form's ``{"<param>": v}``."""
    return {p if k == SINGLE else f"{k}.{p}": x for k, v in params.items() for p, x in v.items()}


_SHORT = {"learning_rate": "lr"}


def member_label(member: Member) -> str:
    """A short readable label, e.g. ``beta=4 alpha=0 prior.df=5 lr=0.0005 seed=1`` (or ``capacity.c_max=25``)."""
    return member.label


def _label(flat: Mapping[str, Any]) -> str:
    def short(key: str) -> str:
        return key[len("regulariser_params."):] if key.startswith("regulariser_params.") else _SHORT.get(key, key)

    return " ".join(f"{short(k)}={v:g}" if isinstance(v, float) else f"{short(k)}={v}" for k, v in flat.items())


def _stacked(values: Sequence[Mapping[str, Any]], what: str) -> dict:
    """``{key: [N] float32}`` of each member's ``{key: value}`` (every member must give every key)."""
    keys = sorted({k for v in values for k in v})
    for key in keys:
        if any(key not in v for v in values):
            raise ValueError(f"every member must give {what}.{key}")
    return {k: jnp.asarray([float(v[k]) for v in values], jnp.float32) for k in keys}


def _stacked_alpha(members: Sequence[Member]) -> dict:
    """``{name: [N]}`` (``{"divergence": [N]}`` in the scalar form); every member must name the same regularisers."""
    names = {tuple(sorted(m.alpha)) for m in members}
    if len(names) > 1:
        raise ValueError(f"members weigh different regularisers: {sorted(names)}")
    return _stacked([m.alpha for m in members], "alpha")


def _stacked_regulariser_params(members: Sequence[Member]) -> dict | None:
    """``{name: {param: [N]}}``; None where no member sets any."""
    flat = _stacked([_dotted(m.regulariser_params) for m in members], "regulariser_params")
    return _undotted(flat) if flat else None


def stack_members(members: Sequence[Member], fixed_prior: Mapping[str, Any] | None = None):
    """Stacked ``(Hyperparams [N], learning_rates [N], keys [N, 2])`` for members.

    Keys are raw key data (``jax.random.key_data``), one per seed. ``alpha``
    is ``{name: [N]}`` (``{"divergence": [N]}`` in the scalar form);
    the members' ``regulariser_params`` become ``Hyperparams.regulariser_params``.

    Args:
      members: :class:`Member` s (from :meth:`Grid.members`; a ``members.csv`` row is :meth:`Member.from_flat`).
      fixed_prior: prior parameters shared by all members (broadcast to N).

    Returns:
      A tuple of stacked pytrees with leading axis N.
    """
    n = len(members)
    if n == 0:
        raise ValueError("a sweep needs at least one member")
    prior = _stacked([m.prior for m in members], "prior")
    for name, value in (fixed_prior or {}).items():
        if name in prior:
            raise ValueError(f"prior parameter {name!r} is both swept and fixed")
        value = jnp.asarray(value, jnp.float32)
        prior[name] = jnp.broadcast_to(value, (n,) + value.shape)
    hyper = Hyperparams(
        beta=jnp.asarray([float(m.beta) for m in members], jnp.float32),
        alpha=_stacked_alpha(members),
        prior=prior,
        regulariser_params=_stacked_regulariser_params(members),
    )
    learning_rates = jnp.asarray([float(m.learning_rate) for m in members], jnp.float32)
    keys = jnp.stack([jax.random.key_data(jax.random.key(int(m.seed))) for m in members])
    return hyper, learning_rates, keys


def take_member(tree, i: int):
    """Member ``i`` of a stacked pytree (leading axis N): ``Hyperparams``, parameters, a ``TrainState``."""
    return jax.tree.map(lambda a: a[i], tree)


def sweep_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D ``Mesh`` over ``devices`` (default: all devices) with axis ``"sweep"``."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (SWEEP_AXIS,))


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The compiled functions of a sweep over a fixed number of members.

    Attributes:
      init: ``(keys [n], hyper [n], learning_rates [n]) -> TrainState [n]``.
      run: ``(state [n], hyper [n], data, num_steps) -> (state, StepInfo [n, num_steps])``.
      chunk_size: members computed together (a multiple of the device count).
      mesh: the device mesh (None: no sharding).
    """

    init: Callable
    run: Callable
    chunk_size: int
    mesh: Mesh | None

    def shard(self, tree):
        """Place a stacked pytree (leading axis = members) on the mesh (which may span processes)."""
        if self.mesh is None:
            return tree
        return to_global(tree, NamedSharding(self.mesh, PartitionSpec(SWEEP_AXIS)))

    def replicate(self, tree):
        """Place a pytree (the shared data) whole on every device of the mesh."""
        if self.mesh is None or tree is None:
            return tree
        return to_global(tree, NamedSharding(self.mesh, PartitionSpec()))


def resolve_vectorize(vectorize: int | None, backend: str | None = None) -> int | None:
    """Members computed together (vmapped) in each step of a sweep's member loop.

    Args:
      vectorize: a positive count, or ``0``/None for the backend's default.
      backend: ``"cpu"``, ``"gpu"``…; None for ``jax.default_backend()``.

    Returns:
      The count, or None for "all members at once" (one vmap). The default
      is None on accelerators, where vmapped members fill the device, and
      ``CPU_VECTORIZE`` on CPU, where one model already keeps every core
      busy and a vmapped sweep cost more per model than members one after
      another (benchmarks/README.md, "Sweeps: all members vmapped, or
      looped in groups").
    """
    if vectorize:
        check_dim("vectorize", vectorize)
        return int(vectorize)
    backend = jax.default_backend() if backend is None else backend
    return CPU_VECTORIZE if backend == "cpu" else None


def _over_members(run: Callable, vectorize: int | None) -> Callable:
    """``run(state, hyper, data, num_steps)`` over stacked members: one vmap, or
    ``lax.map`` over groups of ``vectorize`` vmapped members (1: a plain loop).

    A single member (a run of one, or one member per device) runs the unbatched
    program: a vmap of one cost 2.28× the dense step of ``Trainer.run`` on XLA:CPU
    and rounded differently from it, where the loop's members are bit for bit
    ``Trainer.run`` (benchmarks/README.md, "A sweep of one member").
    """
    vmapped = jax.vmap(run, in_axes=(0, 0, None, None))

    def looped(state, hyper, data, num_steps):
        n = state.step.shape[0]
        if n == 1:
            alone = run(*jax.tree.map(lambda a: a[0], (state, hyper)), data, num_steps)
            return jax.tree.map(lambda a: a[None], alone)
        if vectorize is None or vectorize >= n:
            return vmapped(state, hyper, data, num_steps)
        one = lambda member: run(*member, data, num_steps)  # noqa: E731
        return jax.lax.map(one, (state, hyper), batch_size=None if vectorize == 1 else vectorize)

    return looped


def make_sweep(
    trainer: Trainer, *, mesh: Mesh | None = None, chunk_size: int | None = None, vectorize: int | None = None
) -> Sweep:
    """Vmap (or loop) a trainer over members, sharded across the mesh's devices.

    Args:
      trainer: from :func:`decompvae.train.make_trainer`.
      mesh: a mesh with axis ``"sweep"`` (:func:`sweep_mesh`), or None for
        one device. With ``jax.distributed`` initialised, ``jax.devices()``
        spans every host and the same program runs on all of them.
      chunk_size: members per compiled call; None = all members at once.
        Must be a multiple of the number of devices in ``mesh``.
      vectorize: members vmapped together inside the compiled call; the
        call loops (``lax.map``) over such groups. None or 0: the backend's
        default (:func:`resolve_vectorize`). Every choice trains the same
        members to the same numbers (tested); only speed and memory differ.

    Returns:
      A :class:`Sweep`. Use :func:`run_members` to train any N.
    """
    n_dev = 1 if mesh is None else mesh.devices.size
    if chunk_size is not None:
        check_dim("chunk_size", chunk_size)
        if chunk_size % n_dev:
            raise ValueError(f"chunk_size ({chunk_size}) must be a multiple of the device count ({n_dev})")
    init = jax.vmap(trainer.init)
    run = _over_members(trainer.run, resolve_vectorize(vectorize))
    if mesh is not None:
        # Each device runs the vmapped program on its own members (the data
        # replicated): shard_map guarantees no communication between devices.
        spec, replicated = PartitionSpec(SWEEP_AXIS), PartitionSpec()
        init = jax.shard_map(init, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec)
        run_local = run
        run = lambda state, hyper, data, num_steps: jax.shard_map(  # noqa: E731
            lambda s, h, d: run_local(s, h, d, num_steps),
            mesh=mesh,
            in_specs=(spec, spec, replicated),
            out_specs=spec,
        )(state, hyper, data)
    init = jax.jit(init)
    run = jax.jit(run, static_argnums=3)
    return Sweep(init=init, run=run, chunk_size=chunk_size or 0, mesh=mesh)


def pad_members(tree, size: int):
    """Pad a stacked pytree's leading axis to ``size`` by repeating its last member."""
    n = jax.tree.leaves(tree)[0].shape[0]
    if n == size:
        return tree
    idx = np.concatenate([np.arange(n), np.full((size - n,), n - 1)])
    return jax.tree.map(lambda a: a[idx], tree)


def take_members(tree, count: int):
    """The first ``count`` members of a stacked pytree."""
    return jax.tree.map(lambda a: a[:count], tree)


def chunk_bounds(n: int, chunk_size: int, n_devices: int) -> tuple[int, list[tuple[int, int]]]:
    """Padded chunk size and the [start, stop) ranges that cover n members."""
    size = chunk_size or n
    size = math.ceil(size / n_devices) * n_devices
    return size, [(s, min(s + size, n)) for s in range(0, n, size)]


def _chunked(sweep: Sweep, fn: Callable, n: int, trees: Sequence[Any]):
    """Apply ``fn`` to padded, sharded chunks of stacked ``trees``.

    A sweep that fits in one chunk stays on its devices between calls; more
    chunks go through host memory (NumPy slicing, then ``device_put`` onto
    the mesh), which involves no cross-device collective (but a gather
    across processes when the mesh spans several).
    """
    n_dev = 1 if sweep.mesh is None else sweep.mesh.devices.size
    size, bounds = chunk_bounds(n, sweep.chunk_size, n_dev)
    if bounds == [(0, size)]:
        return fn(*(sweep.shard(t) for t in trees))
    host = [to_host(t) for t in trees]
    parts = []
    for start, stop in bounds:
        chunk = [sweep.shard(pad_members(jax.tree.map(lambda a: a[start:stop], t), size)) for t in host]
        parts.append(take_members(to_host(fn(*chunk)), stop - start))
    return jax.tree.map(lambda *a: np.concatenate(a, axis=0), *parts)


def run_members(
    sweep: Sweep, state: TrainState, hyper: Hyperparams, data: Any, num_steps: int
) -> tuple[TrainState, StepInfo]:
    """Train N stacked members for ``num_steps``, chunked and sharded.

    Args:
      sweep: from :func:`make_sweep`.
      state: stacked ``TrainState`` with leading axis N.
      hyper: stacked ``Hyperparams`` [N].
      data: the data set shared by all members (or None).
      num_steps: steps to take now.

    Returns:
      ``(state [N], StepInfo [N, num_steps])``.
    """
    n = state.step.shape[0]
    return _chunked(sweep, lambda s, h: sweep.run(s, h, data, num_steps), n, (state, hyper))


def init_members(sweep: Sweep, keys: Array, hyper: Hyperparams, learning_rates: Array) -> TrainState:
    """Initial stacked ``TrainState`` [N] (chunked like :func:`run_members`)."""
    return _chunked(sweep, sweep.init, keys.shape[0], (keys, hyper, learning_rates))


def device_memory_bytes(device: jax.Device | None = None) -> int:
    """Memory available to one device: its allocator limit, or half the host RAM on CPU."""
    device = device or jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)


def _chunk_program(trainer: Trainer, state: TrainState, hyper: Hyperparams, data: Any, num_steps: int, count: int,
                   vectorize: int | None):
    """``(compiled, args)``: the training program of a chunk of ``count`` copies of the first member, and its inputs."""
    run = jax.jit(_over_members(trainer.run, resolve_vectorize(vectorize)), static_argnums=3)
    s, h = pad_members(take_members(state, 1), count), pad_members(take_members(hyper, 1), count)
    return run.lower(s, h, data, num_steps).compile(), (s, h, data)


def program_bytes(
    trainer: Trainer, state: TrainState, hyper: Hyperparams, data: Any, num_steps: int, count: int,
    *, vectorize: int | None = None,
) -> int:
    """XLA's memory analysis (arguments + outputs + temporaries) of the training program.

    Args:
      trainer, data, num_steps: as for :func:`run_members`.
      state, hyper: stacked (≥ 1 member); the program runs ``count`` copies of the first.
      count: members in the program.
      vectorize: as for :func:`make_sweep`.

    Returns:
      Bytes (0 where the backend gives no analysis).
    """
    compiled, _ = _chunk_program(trainer, state, hyper, data, num_steps, count, vectorize)
    mem = compiled.memory_analysis()
    if mem is None:
        return 0
    return int(mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes)


def program_seconds(
    trainer: Trainer, state: TrainState, hyper: Hyperparams, data: Any, num_steps: int, count: int,
    *, vectorize: int | None = None, calls: int = 2,
) -> tuple[float, float]:
    """``(compile seconds, seconds per step)`` of the training program for ``count`` members, measured.

    Compiles the program :func:`run_members` runs for a chunk of ``count``
    copies of the first member, calls it once to warm up, then ``calls``
    times; the best call over ``num_steps`` is the step time (all ``count``
    members together).
    """
    start = time.perf_counter()
    compiled, args = _chunk_program(trainer, state, hyper, data, num_steps, count, vectorize)
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))
    best = math.inf
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return compile_seconds, best / num_steps


def estimate_chunk_size(
    trainer: Trainer,
    state: TrainState,
    hyper: Hyperparams,
    data: Any,
    num_steps: int,
    *,
    n_devices: int = 1,
    memory_bytes: int | None = None,
    vectorize: int | None = None,
) -> int:
    """How many members fit in memory at once, from XLA's memory analysis.

    Compiles the run for 2 members and for 1 (:func:`program_bytes`), takes
    the difference as the cost of one member, and divides the budget (per
    device, times ``n_devices``) by it.

    Args:
      trainer: the single-model trainer.
      state, hyper: stacked state and hyperparameters (≥ 1 member).
      data: the shared data set (or None).
      num_steps: steps per compiled call.
      n_devices: devices the chunk is sharded over.
      memory_bytes: per-device budget (default :func:`device_memory_bytes`,
        with 20% head-room left).
      vectorize: as for :func:`make_sweep` (looped members cost less memory).

    Returns:
      A chunk size, a multiple of ``n_devices`` and at least ``n_devices``.
    """
    one, two = (program_bytes(trainer, state, hyper, data, num_steps, count, vectorize=vectorize) for count in (1, 2))
    return chunk_for_budget(two - one, memory_bytes or device_memory_bytes(), n_devices)


def chunk_for_budget(per_member: int, memory_bytes: int, n_devices: int = 1) -> int:
    """Members per chunk: 80 % of ``memory_bytes`` per device, over ``n_devices``, ÷ one member's bytes, rounded
    down to a multiple of ``n_devices`` (at least ``n_devices``)."""
    budget = int(0.8 * memory_bytes) * n_devices
    return int(max(budget // max(per_member, 1) // n_devices, 1) * n_devices)
