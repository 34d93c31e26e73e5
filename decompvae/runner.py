"""Build a run from a :class:`~decompvae.config.Config` and execute it.

:func:`decompvae.build.build` turns a config into data and pure functions;
:func:`run` trains every member in one compiled program per
chunk, with a progress bar, per-member JSONL logs, atomic checkpoints, exact
resumption, isolation of diverging members, a final table and figures.

One process writes a run directory at a time (:class:`~decompvae.rundir.RunLock`);
damaged checkpoints fall back to the previous good one, and failed writes stop
the run with the previous checkpoint intact (:mod:`decompvae.checkpoint`).
With ``[distributed]`` several processes share the sweep and process 0 alone
writes (:mod:`decompvae.distributed`).

Output directory layout::

    config.json        the resolved configuration (and, under "versions", the libraries used)
    run.lock           the writer's lock (see decompvae.rundir): one writing process at a time
    members.csv        one row per member: its hyperparameters
    log.jsonl          one line per member per logged chunk
    checkpoints/<step> Orbax checkpoints of the stacked training state (checksummed)
    checkpoints.damaged/  damaged checkpoints moved aside on resume (only if any)
    summary.csv        final per-member table (also printed)
    reconstructions.png, traversals.png (images) or latents.png (2-D data)
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from decompvae import distributed, outputs, plots, report
from decompvae.curves import make_curve
from decompvae.build import RunSetup, build, build_grid, estimate_notes
from decompvae.checkpoint import Checkpointer
from decompvae.config import Config, check_shard
from decompvae.distributed import is_writer, on_writer, to_host
from decompvae.interrupts import RunInterrupted, StopRequests
from decompvae.objective import Hyperparams
from decompvae.rundir import RunLock
from decompvae.tensorboard import TENSORBOARD_DIR, TensorBoardLog
from decompvae.sweep import (
    Sweep,
    chunk_for_budget,
    device_memory_bytes,
    estimate_chunk_size,
    init_members,
    make_sweep,
    member_label,
    program_bytes,
    program_seconds,
    run_members,
    stack_members,
    sweep_mesh,
    take_members,
)
from decompvae.train import StepInfo, TrainState, model_params

Array = jax.Array

__all__ = [
    "SHARD_DIR", "Plan", "RunResult", "RunSetup", "TrainingDiverged", "build", "build_grid", "format_plan", "plan",
    "replace", "run", "shard_config", "summarise",
]


#: Sweeps with more members than this get a chunk size from XLA's memory
#: analysis (two extra compilations); smaller ones run in one chunk.
AUTO_CHUNK_ABOVE = 16


class TrainingDiverged(RuntimeError):
    """A single run's loss became non-finite; its last good checkpoint is kept."""


class RunResult(NamedTuple):
    """The outcome of :func:`run` (host arrays)."""

    setup: RunSetup
    state: TrainState  # stacked [N]
    hyper: Hyperparams  # stacked [N]
    summary: list[dict]  # one row per member
    output_dir: Path


class _Members(NamedTuple):
    """The stacked members of a run: what the training loop carries besides the state."""

    hyper: Hyperparams
    learning_rates: Array
    keys: Array
    labels: list[str]


class _Options(NamedTuple):
    """How :func:`run` was asked to run (its keyword arguments)."""

    resume: bool
    progress: bool
    stop_after: int | None
    figures: bool
    echo: Callable[[str], None]


class _Program(NamedTuple):
    """What the training loop trains: the built run, its compiled sweep, its stacked members and its data."""

    setup: RunSetup
    sweep: Any
    members: _Members
    data: Any


class _Writers(NamedTuple):
    """Where the training loop writes and listens: checkpoints, logs, stop signals, the curve evaluator."""

    checkpointer: Any
    logs: Any
    stops: Any
    curve: Callable | None


def run(
    config: Config,
    *,
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
    figures: bool = True,
    echo: Callable[[str], None] = print,
) -> RunResult:
    """Train every member of ``config``'s grid; see the module docstring.

    Args:
      config: the run.
      resume: continue from the newest checkpoint in ``output_dir`` (the
        result equals an uninterrupted run); False starts over.
      progress: show a progress bar (tqdm, on stderr).
      stop_after: stop (as if killed) once this many steps are done: used by
        tests of resumption.
      figures: write the end-of-run PNGs.
      echo: where messages go.

    Returns:
      :class:`RunResult`.

    Raises:
      RunInterrupted: SIGTERM or SIGINT arrived during training; a checkpoint
        of every member was written at the end of the chunk in progress
        (:mod:`decompvae.interrupts`), and a rerun resumes from it.
      TrainingDiverged: a single run (one member) became non-finite.
      RunLocked: another process is writing to ``output_dir`` (nothing was changed).
      CheckpointError: checkpoints exist but none is good (a damaged newest
        one falls back to the previous with a ``DamagedCheckpointWarning``).
      OutputWriteError: a checkpoint or log write failed (disk full,
        permissions); the last checkpoint is intact and a rerun resumes.
    """
    dist = config.distributed
    if dist.num_processes > 1:  # before anything touches a JAX backend
        distributed.initialize(dist.coordinator, dist.num_processes, dist.process_id)
    lock = RunLock(config.output_dir)
    on_writer(lock.acquire)  # process 0 writes; the others never touch output_dir
    try:
        options = _Options(resume, progress, stop_after, figures, echo if is_writer() else _quiet)
        return _run_locked(config, options)
    finally:
        lock.release()


def _quiet(message: str) -> None:
    """The echo of processes other than the writer."""


def _run_locked(config: Config, options: _Options) -> RunResult:
    """Prepare, resume, train chunk by chunk, write the outputs."""
    out, echo = Path(config.output_dir), options.echo
    on_writer(outputs.start_output, config, options.resume)
    setup = build(config)
    on_writer(outputs.write_members, out / "members.csv", setup.members,
              setup.member_indices if config.sweep.shard else None)
    on_writer(outputs.write_estimates, out, estimate_notes(config, setup.data))
    members = _Members(*stack_members(setup.members, setup.fixed_prior), [member_label(m) for m in setup.members])
    sweep, data = _make_sweep(setup, members)
    checkpointer = on_writer(Checkpointer, out / "checkpoints", writer=True)  # None on the other processes
    tensorboard = None
    try:
        step, state = _initial_state(sweep, members, checkpointer, options.resume, echo, out)
        on_writer(outputs.continue_output, out, step, config.train.steps)
        if config.train.tensorboard:
            tensorboard = on_writer(TensorBoardLog, out / TENSORBOARD_DIR, members.labels, start_step=step or None)
        logs = _Logs(out / "log.jsonl", tensorboard, out / outputs.CURVE_FILE)
        curve = make_curve(setup) if config.train.eval_every else None
        with StopRequests() as stops:
            state, step = _train(_Program(setup, sweep, members, data), state, step,
                                 _Writers(checkpointer, logs, stops, curve), options)
        return _finish(setup, to_host(state), members, out, step, options.figures, logs)
    finally:
        for closing in (checkpointer, tensorboard):
            if closing is not None:
                closing.close()


def _devices(config: Config, n_members: int) -> list:
    """The devices the members are sharded over (all of every process with [distributed])."""
    if distributed.multi_process():
        if config.sweep.devices and config.sweep.devices != len(jax.devices()):
            raise ValueError("sweep.devices applies to one process; with [distributed] all devices of all processes work")
        return jax.devices()
    local = jax.local_devices() if not config.sweep.devices else jax.local_devices()[: config.sweep.devices]
    return local[: math.gcd(len(local), n_members)] if len(local) > 1 else local[:1]


def _first_member(setup: RunSetup, members: _Members) -> tuple[TrainState, Hyperparams]:
    """The first member alone, stacked ``[1]``: its initial train state and its hyperparameters (for sizing)."""
    first = take_members(members.hyper, 1)
    return init_members(make_sweep(setup.trainer), members.keys[:1], first, members.learning_rates[:1]), first


def _chunk_size(setup: RunSetup, members: _Members, data, n_devices: int,
                per_member: int | None = None) -> int | None:
    """Members per compiled call: the config's, or XLA's memory estimate for large sweeps; None: all at once.

    ``per_member``: one member's bytes where the caller has measured them (:func:`plan`), else measured here.
    """
    n, chunk = len(members.labels), setup.config.sweep.chunk_size
    if not chunk and n > AUTO_CHUNK_ABOVE:
        if per_member is None:
            small, first = _first_member(setup, members)
            chunk = estimate_chunk_size(setup.trainer, small, first, data, setup.config.train.log_every,
                                        n_devices=n_devices, vectorize=setup.config.sweep.vectorize)
        else:
            chunk = chunk_for_budget(per_member, device_memory_bytes(), n_devices)
        chunk = int(distributed.broadcast(np.asarray(chunk)))  # the processes must agree on the chunks
    if distributed.multi_process():  # a multiple of the devices: the members are padded to fill them
        return math.ceil(min(chunk or n, n) / n_devices) * n_devices
    return min(chunk, n) if chunk else None


def _make_sweep(setup: RunSetup, members: _Members) -> tuple[Sweep, object]:
    """The compiled sweep over the run's devices, and the data placed for it."""
    devices = _devices(setup.config, len(members.labels))
    mesh = sweep_mesh(devices) if len(devices) > 1 else None
    chunk = _chunk_size(setup, members, setup.data.data, len(devices))
    sweep = make_sweep(setup.trainer, mesh=mesh, chunk_size=chunk, vectorize=setup.config.sweep.vectorize)
    data = sweep.replicate(setup.data.data) if distributed.multi_process() else setup.data.data
    return sweep, data


def _initial_state(sweep, members: _Members, checkpointer, resume: bool, echo, out: Path) -> tuple[int, TrainState]:
    """``(step, state)``: fresh members, or the newest good checkpoint when resuming."""
    state = init_members(sweep, members.keys, members.hyper, members.learning_rates)
    restored = _restore(checkpointer, state) if resume else None
    if restored is None:
        return 0, state
    echo(f"resuming {out} from step {restored[0]}")
    return restored


def _restore(checkpointer, state: TrainState):
    """The newest good checkpoint, chosen by process 0 and broadcast; None if there is none."""
    if not distributed.multi_process():
        return checkpointer.restore_latest(state)
    template = to_host(state)
    found = on_writer(lambda: checkpointer.restore_latest(template))
    at = int(distributed.broadcast(np.asarray(found[0] if found else -1, np.int64)))
    if at < 0:
        return None
    return at, distributed.broadcast(jax.device_get(found[1]) if found else template)


def _chunks(sweep, state, hyper, data, step: int, steps: int, log_every: int,
            stop_after: int | None) -> Iterator[tuple[int, TrainState, StepInfo]]:
    """Train ``log_every`` steps at a time: yields ``(step, state, host info)`` after each chunk."""
    while step < steps and (stop_after is None or step < stop_after):
        n = min(log_every, steps - step)
        state, info = run_members(sweep, state, hyper, data, n)
        step += n
        yield step, state, to_host(info)


class _DivergencePolicy:
    """Report each member once when it diverges; a single run stops with :class:`TrainingDiverged`."""

    def __init__(self, labels: list[str], state: TrainState, out: Path, echo):
        self.labels, self.out, self.echo = labels, out, echo
        self.reported = {int(i) for i in np.flatnonzero(np.asarray(to_host(state.diverged_at)) >= 0)}

    def __call__(self, diverged_at: np.ndarray, last_checkpoint: int | None) -> None:
        for i in (int(i) for i in np.flatnonzero(diverged_at >= 0)):
            if i in self.reported:
                continue
            self.reported.add(i)
            if len(self.labels) == 1:
                where = (f"the last good checkpoint is step {last_checkpoint} in {self.out.absolute() / 'checkpoints'}"
                         if last_checkpoint is not None else "no checkpoint had been written yet")
                raise TrainingDiverged(f"the loss became non-finite at step {diverged_at[i]} ({self.labels[i]}); "
                                       f"{where}; try a smaller learning rate")
            self.echo(f"member {i} ({self.labels[i]}) diverged at step {diverged_at[i]}: frozen, the others continue")


class _Logs(NamedTuple):
    """Where the rows go: ``log.jsonl`` (per chunk), ``curves.jsonl`` (per evaluation) and TensorBoard (writer only)."""

    path: Path
    tensorboard: TensorBoardLog | None
    curve_path: Path | None = None

    def write(self, step: int, rows: list[dict], prefix: str = "train") -> None:
        if prefix in ("train", "curve"):
            on_writer(outputs.append_log, self.path if prefix == "train" else self.curve_path, outputs.jsonl(rows))
        if self.tensorboard is not None:
            self.tensorboard.write(step, rows, prefix=prefix)


def _evaluate_curve(curve, step: int, state: TrainState, members: _Members, logs: _Logs) -> None:
    """Append every member's curve row at ``step`` (computed on process 0; the state gathered on all)."""
    host = to_host(state)
    logs.write(step, on_writer(lambda: curve(step, host, jax.device_get(members.hyper))) or [], prefix="curve")


def _stop_signal(stops: StopRequests) -> int | None:
    """The signal that stops the run after this chunk (process 0's, on every process), or None."""
    return int(distributed.broadcast(np.asarray(stops.first or 0))) or None


def _train(program: _Program, state: TrainState, step: int, writers: _Writers,
           options: _Options) -> tuple[TrainState, int]:
    """The training loop: chunks, log rows, divergence policy, progress bar, checkpoints, stop signals."""
    (setup, sweep, members, data), (checkpointer, logs, stops, curve) = program, writers
    t, writer, out = setup.config.train, is_writer(), Path(setup.config.output_dir)
    every_checkpoint = max(t.checkpoint_every // t.log_every, 1) * t.log_every
    last_checkpoint = step if step else None
    policy = _DivergencePolicy(members.labels, state, out, options.echo)
    if curve is not None and step == 0:
        _evaluate_curve(curve, 0, state, members, logs)
    bar = tqdm(total=t.steps, initial=step, disable=not options.progress or not writer, file=sys.stderr,
               desc=f"{len(members.labels)} member(s)")
    with bar:
        for step, state, info in _chunks(sweep, state, members.hyper, data, step, t.steps, t.log_every,
                                         options.stop_after):
            diverged_at = np.asarray(to_host(state.diverged_at))
            logs.write(step, outputs.log_rows(step, info, diverged_at))
            if curve is not None and step % t.eval_every == 0:  # before the checkpoint: a resume keeps its rows
                _evaluate_curve(curve, step, state, members, logs)
            policy(diverged_at, last_checkpoint)
            bar.update(min(t.log_every, bar.total - bar.n))
            healthy = diverged_at < 0
            median = np.median(info.loss[healthy, -1]) if healthy.any() else float("nan")
            bar.set_postfix(loss=f"{median:.2f}", diverged=int((~healthy).sum()))
            signum = _stop_signal(stops)
            if step % every_checkpoint == 0 or step == t.steps or signum:
                saved = to_host(state) if distributed.multi_process() else state  # process 0 saves the whole state
                on_writer(lambda: checkpointer.save(step, saved, metadata={"step": step, "labels": members.labels}))
                last_checkpoint = step
            if signum:
                raise RunInterrupted(signum, step, out)
    return state, step


def _finish(setup: RunSetup, state: TrainState, members: _Members, out: Path, step: int, figures: bool,
            logs: _Logs) -> RunResult:
    """The held-out table, and for a finished run ``summary.csv``, the figures and ``report.html``."""
    hyper = jax.device_get(members.hyper)
    summary = summarise(setup, state, hyper, members.labels)
    if step >= setup.config.train.steps:
        on_writer(outputs.write_summary, out, summary)
        logs.write(step, summary, prefix="eval")
        if figures and is_writer():
            plots.run_figures(setup, state, hyper, out)
        on_writer(report.write_report, out)
    return RunResult(setup, state, hyper, summary, out)


class Plan(NamedTuple):
    """What :func:`run` would do, from :func:`plan` (nothing trained, nothing written)."""

    labels: list[str]
    chunk_size: int
    n_devices: int
    programs: int
    bytes_per_member: int
    bytes_per_chunk: int
    seconds_per_step: float = math.nan  # one chunk's members together, measured
    compile_seconds: float = math.nan  # of that program
    train_seconds: float = math.nan  # the estimate: chunks × steps × seconds_per_step
    estimate_seconds: float = math.nan  # what measuring took (both compilations and calls)
    images_per_member: int = 0


def plan(config: Config, *, time_it: bool = True) -> Plan:
    """The members, chunking, number of compiled programs, memory and time estimates of ``config``'s run.

    The memory figure is XLA's memory analysis of the training program for one
    and two members (arguments, outputs and temporaries), extrapolated to a
    chunk. The time estimate compiles the training program of one chunk
    (``train.log_every`` steps, on one device: the program the run calls),
    times one call after a warm-up call and multiplies by the chunks and
    steps of the run; compilation is not in it. (A program of 5 steps
    measured 40 % more per step than the 100-step one the default sweep runs.)
    Nothing is trained or written.
    """
    start = time.perf_counter()
    setup = build(config)
    t = config.train
    members = _Members(*stack_members(setup.members, setup.fixed_prior), [member_label(m) for m in setup.members])
    n_devices = len(_devices(config, len(members.labels)))
    lengths = {t.log_every} | ({t.steps % t.log_every} if t.steps % t.log_every else set())
    state, first = _first_member(setup, members)
    one, two = (program_bytes(setup.trainer, state, first, setup.data.data, t.log_every, count,
                              vectorize=config.sweep.vectorize) for count in (1, 2))
    chunk = _chunk_size(setup, members, setup.data.data, n_devices, per_member=two - one) or len(members.labels)
    per_member = max(two - one, 0)
    memory = Plan(members.labels, chunk, n_devices, 1 + len(lengths) + 1, per_member, one + per_member * (chunk - 1),
                  images_per_member=t.steps * t.batch_size)
    if not time_it:
        return memory
    compile_s, per_step = program_seconds(setup.trainer, state, first, setup.data.data, t.log_every,
                                          max(chunk // n_devices, 1), vectorize=config.sweep.vectorize, calls=1)
    chunks = math.ceil(len(members.labels) / chunk)
    return memory._replace(seconds_per_step=per_step, compile_seconds=compile_s,
                           train_seconds=chunks * t.steps * per_step, estimate_seconds=time.perf_counter() - start)


def _duration(seconds: float) -> str:
    """``1 h 05 min``, ``3 min 20 s`` or ``42 s``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def format_plan(p: Plan, config: Config) -> str:
    """The dry run's text: one line per member, then the chunking, programs, memory and time."""
    lines = [f"{i:>4}  {label}" for i, label in enumerate(p.labels)]
    shard = config.sweep.shard
    lines += [
        f"{len(p.labels)} member(s){f' (shard {shard[0]}/{shard[1]})' if shard else ''}, {config.train.steps} steps "
        f"each, logged every {config.train.log_every}",
        f"chunk: {p.chunk_size} member(s) per compiled call on {p.n_devices} device(s)",
        f"programs to compile: {p.programs} (init, training for each chunk length, held-out summary)",
        f"memory: ≈ {p.bytes_per_member / 2**20:.1f} MiB per member, ≈ {p.bytes_per_chunk / 2**20:.1f} MiB per chunk "
        "(XLA's memory analysis of the training program)",
        f"images per member: {p.images_per_member:,} ({config.train.steps:,} steps × batch {config.train.batch_size})",
    ]
    if not math.isnan(p.train_seconds):
        lines.append(
            f"time: ≈ {_duration(p.train_seconds)} of training on this machine ({1e3 * p.seconds_per_step:.1f} ms per "
            f"step for a chunk, timed on its compiled {config.train.log_every}-step program), plus compilation "
            f"(≈ {p.compile_seconds:.0f} s per training program); the estimate took {p.estimate_seconds:.0f} s"
        )
    lines.append(f"output: {config.output_dir}")
    return "\n".join(lines)


def summarise(setup: RunSetup, state: TrainState, hyper: Hyperparams, labels: list[str]) -> list[dict]:
    """Held-out loss terms per member (the final table).

    Members are evaluated one at a time (``lax.map``), so memory does not
    grow with the sweep (a per-dimension MMD on 297 points for 120 members at
    once needed more than 18 GB) and a member's row does not depend on which
    members share the run (a shard gives the numbers of the whole grid, to
    the bit; vmapped groups round differently with their size).
    """
    x = setup.data.eval_x[:512]
    key = jax.random.key(0)
    one = lambda member: setup.eval_objective(key, member[0], member[1], x)  # noqa: E731
    evaluate = jax.jit(lambda params, hyper: jax.lax.map(one, (params, hyper)))
    loss, terms = evaluate(model_params(state), hyper)
    rows = []
    for i, label in enumerate(labels):
        row = {"member": i, **({"grid_member": setup.member_indices[i]} if setup.config.sweep.shard else {}),
               "label": label, "eval_loss": float(loss[i]),
               "eval_recon": float(jnp.mean(terms.recon[i])), "eval_kl": float(jnp.mean(terms.kl[i]))}
        row.update(outputs.regulariser_columns("eval_regulariser", terms.regulariser, i))
        row["diverged_at"] = int(state.diverged_at[i])
        rows.append(row)
    return rows


#: The run directory of shard I of N, inside the grid's ``output_dir``.
SHARD_DIR = "shard-{index}-of-{count}"
_SHARD_DIR_PATTERN = re.compile(r"shard-(\d+)-of-(\d+)")


def shard_config(config: Config, shard: str | tuple[int, int]) -> Config:
    """``config`` for shard ``I/N`` of its grid: ``sweep.shard = [I, N]``, ``output_dir/shard-I-of-N``.

    Each shard is a run directory of its own (its members I, I + N, …, with
    ``grid_member`` in ``members.csv`` and ``summary.csv``), resumes by
    itself, and trains its members to the numbers the whole grid gives them.

    Raises:
      ValueError: ``shard`` is not I/N with 0 ≤ I < N, ``output_dir`` holds
        shards of another count, or it holds an unsharded run.
    """
    index, count = check_shard(shard)
    base = Path(config.output_dir)
    if (base / "config.json").exists():
        raise ValueError(f"--shard {index}/{count}: {base} holds an unsharded run; shard into another output_dir")
    counts = sorted({int(m.group(2)) for p in (base.iterdir() if base.is_dir() else ())
                     if (m := _SHARD_DIR_PATTERN.fullmatch(p.name))} - {count})
    if counts:
        raise ValueError(f"--shard {index}/{count}: {base} already holds shards of a grid cut into "
                         f"{', '.join(map(str, counts))}; keep that count or use another output_dir")
    sharded = replace(config, sweep={"shard": (index, count)})
    return dataclasses.replace(sharded, output_dir=str(base / SHARD_DIR.format(index=index, count=count)))


def replace(config: Config, **sections) -> Config:
    """A copy of ``config`` with sections (dicts of changes) replaced."""
    changes = {}
    for name, values in sections.items():
        if name == "output_dir":
            changes[name] = values
        else:
            changes[name] = dataclasses.replace(getattr(config, name), **values)
    return dataclasses.replace(config, **changes)
