"""Build a run from a :class:`~decompvae.config.Config` and execute it.

:func:`build` turns a config into data, networks, an objective, a trainer and
the sweep grid; :func:`run` trains every member in one compiled program per
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

import csv
import dataclasses
import io
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decompvae import data as data_lib
from decompvae import priors
from decompvae.checkpoint import DAMAGED_SUFFIX, Checkpointer
from decompvae.config import Config
from decompvae.likelihoods import make_likelihood
from decompvae.networks import make_networks
from decompvae.objective import Hyperparams, make_objective
from decompvae import distributed
from decompvae.distributed import is_writer, on_writer, to_host
from decompvae.rundir import RunLock, write_error, write_text_atomic
from decompvae.sweep import (
    Grid,
    estimate_chunk_size,
    init_members,
    make_sweep,
    member_label,
    run_members,
    stack_members,
    sweep_mesh,
)
from decompvae.train import Trainer, TrainState, make_trainer

Array = jax.Array

__all__ = ["Built", "DataBundle", "RunResult", "TrainingDiverged", "build", "build_data", "build_grid", "run"]


#: Sweeps with more members than this get a chunk size from XLA's memory
#: analysis (two extra compilations); smaller ones run in one chunk.
AUTO_CHUNK_ABOVE = 16

#: Members evaluated at once by :func:`summarise`.
SUMMARY_BATCH = 8


class TrainingDiverged(RuntimeError):
    """A single run's loss became non-finite; its last good checkpoint is kept."""


class DataBundle(NamedTuple):
    """Data for training and evaluation.

    Attributes:
      data: device-held training set passed to the batch function (or None).
      batch: ``(key, step, data) -> x [b, ...]``.
      data_shape: shape of one point.
      eval_x: held-out points ``[n, ...]``.
      eval_labels: their ground-truth factor classes ``[n, K]`` or class
        labels ``[n]``, or None.
      ground_truth: a ground-truth data set (``factor_sizes``,
        ``sample_factors``, ``images``) for the disentanglement metrics, or None.
      pca_source: training points for the PCA prior variances.
    """

    data: Any
    batch: Callable[[Array, Array, Any], Array]
    data_shape: tuple[int, ...]
    eval_x: Array
    eval_labels: Array | None
    ground_truth: Any
    pca_source: Array


def build_data(config: Config, key: Array) -> DataBundle:
    """Load or generate the configured data (no download for the defaults)."""
    dcfg, batch_size = config.data, config.train.batch_size
    key_eval, key_pca, key_data = jax.random.split(key, 3)
    if dcfg.name == "dsprites":
        dataset = data_lib.dsprites()
        stream = data_lib.make_dsprites_stream(batch_size)
        batch = lambda key, step, data: stream(jax.random.fold_in(key, step))[0]  # noqa: E731
        factors = dataset.sample_factors(key_eval, dcfg.eval_points)
        pca = dataset.images(dataset.sample_factors(key_pca, 2000))
        return DataBundle(None, batch, (64, 64, 1), dataset.images(factors), factors, dataset, pca)
    if dcfg.name == "dsprites_file":
        dataset = data_lib.load_dsprites(dcfg.path)
        batcher = data_lib.make_batcher(dataset.imgs, batch_size)
        batch = lambda key, step, data: batcher.batch_at(key, step, data)[..., None].astype(jnp.float32)  # noqa: E731
        factors = dataset.sample_factors(key_eval, dcfg.eval_points)
        rows = np.asarray(jax.random.choice(key_pca, dataset.num_images, (2000,), replace=False))
        pca = dataset.imgs[np.sort(rows)][..., None].astype(np.float32)
        return DataBundle(batcher.data, batch, (64, 64, 1), dataset.images(factors), factors, dataset, pca)
    if dcfg.name == "pinwheel":
        pin = data_lib.make_pinwheel(key_data, max(dcfg.eval_points // 4, 100))
        batcher = data_lib.make_batcher(pin.x_train, batch_size)
        return DataBundle(batcher.data, batcher.batch_at, (2,), pin.x_test, pin.y_test, None, pin.x_train)
    if dcfg.name == "digits":
        x_train, _ = data_lib.load_digits("train", resize=dcfg.image_size)
        x_test, y_test = data_lib.load_digits("test", resize=dcfg.image_size)
    else:
        x_train, _ = data_lib.load_fashion_mnist(dcfg.path, "train", resize=dcfg.image_size)
        x_test, y_test = data_lib.load_fashion_mnist(dcfg.path, "test", resize=dcfg.image_size)
    if batch_size > x_train.shape[0]:
        raise ValueError(f"train.batch_size ({batch_size}) exceeds the {x_train.shape[0]} training images")
    batcher = data_lib.make_batcher(x_train, batch_size)
    n_eval = min(dcfg.eval_points, x_test.shape[0])
    return DataBundle(
        batcher.data, batcher.batch_at, tuple(x_train.shape[1:]), x_test[:n_eval], y_test[:n_eval], None, x_train
    )


class Built(NamedTuple):
    """Everything a run needs, built from a config."""

    config: Config
    bundle: DataBundle
    encoder: Any
    decoder: Any
    objective: Callable
    trainer: Trainer
    members: list[dict]
    fixed_prior: dict
    prior_fn: Callable
    likelihood: Any  # a name or a (x, output) -> [b] function
    eval_objective: Callable  # the objective in evaluation mode (BatchNorm running averages); `objective` trains


_PRIOR_FAMILY = {
    "isotropic": "isotropic",
    "anisotropic_pca": "anisotropic_logits",
    "anisotropic_learned": "anisotropic_logits",
    "student_t": "student_t",
    "sparse": "sparse",
    "laplace": "laplace",
    "pinwheel": "pinwheel",
}

_REQUIRED_PRIOR_PARAMS = {"student_t": ("df",), "sparse": ("gamma",)}


def build(config: Config) -> Built:
    """Data, networks, objective, trainer and grid for ``config``."""
    m, t, s = config.model, config.train, config.sweep
    bundle = build_data(config, jax.random.key(t.seed + 1_000_003))
    learn_scale = m.likelihood_scale == "learned"
    encoder, decoder = make_networks(
        m.network,
        m.latent_dim,
        data_shape=bundle.data_shape,
        hidden=m.hidden,
        conv_impl=m.conv_impl,
        **({"learn_scale": True} if learn_scale else {}),
    )
    prior_fn = priors.make_prior(_PRIOR_FAMILY[m.prior], m.latent_dim)
    fixed_prior = {k: v for k, v in m.prior_params.items() if k not in s.prior}
    for name in _REQUIRED_PRIOR_PARAMS.get(m.prior, ()):
        if name not in fixed_prior and name not in s.prior:
            raise ValueError(f"model.prior={m.prior!r} needs model.prior_params.{name} or sweep.prior.{name}")
    pca_logits = None
    if m.prior == "anisotropic_pca" or m.prior_init == "pca":
        variances = priors.pca_variances(np.asarray(bundle.pca_source), m.latent_dim)
        pca_logits = np.log(np.maximum(variances, 1e-12)).astype(np.float32)
    if m.prior == "anisotropic_pca":
        fixed_prior["logits"] = pca_logits
    initial_logits = pca_logits if m.prior_init == "pca" else np.zeros(m.latent_dim, np.float32)
    likelihood_scale = None if learn_scale or m.likelihood_scale is None else float(m.likelihood_scale)
    likelihood = m.likelihood if m.likelihood == "bernoulli" else make_likelihood(m.likelihood, scale=likelihood_scale)
    objective_kw = dict(
        likelihood=likelihood,
        prior=prior_fn,
        posterior=m.posterior,
        divergence=None if m.divergence == "none" else m.divergence,
        divergence_options=dict(m.divergence_options) or None,
        num_samples=m.num_samples,
    )
    # Training mode (BatchNorm on batch statistics, updated running averages in
    # terms.state_updates) for the trainer; evaluation mode for held-out terms.
    objective = make_objective(encoder, decoder, train=True, **objective_kw)
    eval_objective = make_objective(encoder, decoder, train=False, **objective_kw)
    sample_x = jnp.zeros((1,) + bundle.data_shape, jnp.float32)

    def init_params(key: Array, hyper: Hyperparams) -> dict:
        key_enc, key_dec = jax.random.split(key)
        params = {  # the networks' full variables: "params" and, with BatchNorm, "batch_stats"
            "encoder": encoder.init(key_enc, sample_x),
            "decoder": decoder.init(key_dec, jnp.zeros((1, m.latent_dim), jnp.float32)),
        }
        if m.prior == "anisotropic_learned":
            params["prior"] = {"logits": jnp.asarray(initial_logits)}  # model.prior_init: PCA (published) or 0
        return params

    trainer = make_trainer(objective, init_params, bundle.batch, amsgrad=t.amsgrad)
    grid = build_grid(config, fixed_prior)
    for member in grid.members():  # validate every member's prior before tracing
        swept = {k[len("prior."):]: v for k, v in member.items() if k.startswith("prior.")}
        extra = {"logits": initial_logits} if m.prior == "anisotropic_learned" else {}
        try:
            prior_fn(**fixed_prior, **swept, **extra)
        except TypeError as err:
            raise ValueError(f"model.prior_params / sweep.prior do not fit model.prior={m.prior!r}: {err}") from None
    return Built(
        config, bundle, encoder, decoder, objective, trainer, grid.members(), fixed_prior, prior_fn, likelihood,
        eval_objective,
    )


def build_grid(config: Config, fixed_prior: dict | None = None) -> Grid:
    """The sweep grid of ``config`` (empty sweep lists take the train values)."""
    t, s = config.train, config.sweep
    return Grid(
        beta=s.beta or (t.beta,),
        alpha=s.alpha or (t.alpha,),
        prior={k: tuple(v) for k, v in s.prior.items()},
        learning_rate=s.learning_rate or (t.learning_rate,),
        seed=s.seed or (t.seed,),
        mode=s.mode,
        fixed_prior=fixed_prior or {},
    )


class RunResult(NamedTuple):
    """The outcome of :func:`run` (host arrays)."""

    built: Built
    state: TrainState  # stacked [N]
    hyper: Hyperparams  # stacked [N]
    summary: list[dict]  # one row per member
    output_dir: Path


def _write_members(path: Path, members: list[dict]) -> None:
    f = io.StringIO(newline="")
    writer = csv.DictWriter(f, fieldnames=["member", *members[0].keys()])
    writer.writeheader()
    for i, member in enumerate(members):
        writer.writerow({"member": i, **member})
    write_text_atomic(path, f.getvalue())


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines after ``step`` (they are recomputed after resuming), atomically.

    A line torn by a kill (the last one, unterminated) is dropped too: its
    rows come after the last checkpoint, which is written after them.
    """
    if not path.exists():
        return
    text = path.read_text()
    lines = text.split("\n")
    complete, torn = lines[:-1], lines[-1]  # text ends with "\n" unless the last write was cut
    kept = [line for line in complete if line and json.loads(line)["step"] <= step]
    if torn or len(kept) != len(complete):
        write_text_atomic(path, "".join(line + "\n" for line in kept))


#: The libraries whose versions config.json records (not compared on resume).
RECORDED_VERSIONS = ("jax", "jaxlib", "flax", "optax", "distrax", "orbax-checkpoint", "numpy")

#: Config sections that say how a run is computed, not what: not compared on resume.
_NOT_COMPARED = ("distributed",)


def library_versions() -> dict[str, str]:
    """``{package: version}`` of :data:`RECORDED_VERSIONS` and Python."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in RECORDED_VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _prepare_output(config: Config, resume: bool) -> Path:
    """Create ``output_dir`` and check that a run to resume there has the same configuration.

    The one change allowed on resume is a larger ``train.steps``: training is
    a pure function of the step (constant learning rate, per-step keys and
    batches), so extending a run equals having asked for the longer run.
    """
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.json"
    current = config.to_dict()
    if saved.exists() and resume:
        previous = json.loads(saved.read_text())
        defaults = Config().to_dict()
        changed = sorted(
            f"{section}.{key}"
            for section, values in current.items()
            if isinstance(values, dict) and section not in _NOT_COMPARED
            for key in values
            if previous.get(section, {}).get(key, defaults[section][key]) != values[key]
        )
        extended = changed == ["train.steps"] and current["train"]["steps"] > previous["train"]["steps"]
        if changed and not extended:
            raise ValueError(
                f"{out} holds a run with a different configuration (changed: {', '.join(changed) or 'output_dir'}); "
                "use another output_dir, or --fresh to start over there (only train.steps may grow on resume)"
            )
        versions, before = library_versions(), previous.get("versions")
        if before and before != versions:
            differ = ", ".join(f"{k} {before.get(k)} → {v}" for k, v in versions.items() if before.get(k) != v)
            warnings.warn(
                f"resuming {out} with other library versions ({differ}): the result may differ in the last bits "
                "from an uninterrupted run",
                stacklevel=3,
            )
    write_text_atomic(saved, json.dumps({**current, "versions": library_versions()}, indent=2) + "\n")
    return out


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
        return _run_locked(config, resume, progress, stop_after, figures, echo if is_writer() else _quiet)
    finally:
        lock.release()


def _quiet(message: str) -> None:
    """The echo of processes other than the writer."""


def _append_log(path: Path, text: str) -> None:
    """Append rows to ``log.jsonl``; a failed write raises ``OutputWriteError`` naming it."""
    try:
        with path.open("a") as f:
            f.write(text)
    except OSError as err:
        raise write_error(path, err) from err


def _start_output(config: Config, resume: bool) -> Path:
    out = _prepare_output(config, resume)
    if not resume:
        import shutil

        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        shutil.rmtree(out / ("checkpoints" + DAMAGED_SUFFIX), ignore_errors=True)
        (out / "log.jsonl").unlink(missing_ok=True)
    return out


def _continue_output(out: Path, step: int, steps: int) -> None:
    _truncate_log(out / "log.jsonl", step)
    if step < steps:
        (out / "summary.csv").unlink(missing_ok=True)  # a shorter run's table (train.steps grew)


def _run_locked(config, resume, progress, stop_after, figures, echo) -> RunResult:
    from tqdm.auto import tqdm

    multi, writer = distributed.multi_process(), is_writer()
    out = Path(config.output_dir)
    on_writer(_start_output, config, resume)
    built = build(config)
    members, t = built.members, config.train
    labels = [member_label(mb) for mb in members]
    on_writer(_write_members, out / "members.csv", members)
    hyper, learning_rates, keys = stack_members(members, built.fixed_prior)
    n_members = len(members)
    if multi:  # the mesh spans every device of every process; members are padded to fill it
        if config.sweep.devices and config.sweep.devices != len(jax.devices()):
            raise ValueError("sweep.devices applies to one process; with [distributed] all devices of all processes work")
        devices = jax.devices()
        n_dev = len(devices)
    else:
        devices = jax.local_devices() if not config.sweep.devices else jax.local_devices()[: config.sweep.devices]
        n_dev = math.gcd(len(devices), n_members) if len(devices) > 1 else 1
    mesh = sweep_mesh(devices[:n_dev]) if n_dev > 1 else None
    data = built.bundle.data
    chunk = config.sweep.chunk_size
    if not chunk and n_members > AUTO_CHUNK_ABOVE:
        probe = make_sweep(built.trainer)
        small = init_members(probe, keys[:1], jax.tree.map(lambda a: a[:1], hyper), learning_rates[:1])
        chunk = estimate_chunk_size(built.trainer, small, jax.tree.map(lambda a: a[:1], hyper), data, t.log_every, n_devices=n_dev)
        chunk = int(distributed.broadcast(np.asarray(chunk)))  # the processes must agree on the chunks
    if multi:  # a multiple of the devices: _chunked pads the members to fill them
        chunk = math.ceil(min(chunk or n_members, n_members) / n_dev) * n_dev
    elif chunk:
        chunk = min(chunk, n_members)
    sweep = make_sweep(built.trainer, mesh=mesh, chunk_size=chunk or None)
    if multi:
        data = sweep.replicate(data)
    state = init_members(sweep, keys, hyper, learning_rates)
    checkpointer = on_writer(Checkpointer, out / "checkpoints", writer=True)  # None on the other processes
    step, restored = 0, None
    if resume and not multi:
        restored = checkpointer.restore_latest(state)  # the newest good checkpoint
    elif resume:  # process 0 reads and chooses; every process resumes from its choice
        template = to_host(state)
        found = on_writer(lambda: checkpointer.restore_latest(template))
        at = int(distributed.broadcast(np.asarray(found[0] if found else -1, np.int64)))
        if at >= 0:
            restored = at, distributed.broadcast(jax.device_get(found[1]) if found else template)
    if restored is not None:
        step, state = restored
        echo(f"resuming {out} from step {step}")
    last_checkpoint = step if restored is not None else None
    on_writer(_continue_output, out, step, t.steps)
    every_ckpt = max(t.checkpoint_every // t.log_every, 1) * t.log_every
    reported = set(int(i) for i in np.flatnonzero(np.asarray(to_host(state.diverged_at)) >= 0))
    bar = tqdm(total=t.steps, initial=step, disable=not progress or not writer, file=sys.stderr,
               desc=f"{n_members} member(s)")
    try:
        while step < t.steps:
            if stop_after is not None and step >= stop_after:
                break
            n = min(t.log_every, t.steps - step)
            state, info = run_members(sweep, state, hyper, data, n)
            step += n
            info = to_host(info)
            diverged_at = np.asarray(to_host(state.diverged_at))
            rows = []
            for i in range(n_members):
                finite = info.finite[i]
                row = {
                    "step": step,
                    "member": i,
                    "loss": float(np.mean(info.loss[i][finite])) if finite.any() else float("nan"),
                    "recon": float(np.mean(info.recon[i][finite])) if finite.any() else float("nan"),
                    "kl": float(np.mean(info.kl[i][finite])) if finite.any() else float("nan"),
                    "divergence": float(np.mean(info.divergence[i][finite])) if finite.any() else float("nan"),
                    "diverged_at": int(diverged_at[i]),
                }
                rows.append(json.dumps(row) + "\n")
            on_writer(_append_log, out / "log.jsonl", "".join(rows))
            newly = [i for i in np.flatnonzero(diverged_at >= 0) if i not in reported]
            for i in newly:
                reported.add(int(i))
                if n_members == 1:
                    raise TrainingDiverged(
                        f"the loss became non-finite at step {diverged_at[i]} ({labels[i]}); "
                        + (f"the last good checkpoint is step {last_checkpoint} in {out.absolute() / 'checkpoints'}"
                           if last_checkpoint is not None else "no checkpoint had been written yet")
                        + "; try a smaller learning rate"
                    )
                echo(f"member {i} ({labels[i]}) diverged at step {diverged_at[i]}: frozen, the others continue")
            bar.update(n)
            healthy = diverged_at < 0
            bar.set_postfix(
                loss=f"{np.median(info.loss[healthy, -1]) if healthy.any() else float('nan'):.2f}",
                diverged=int((~healthy).sum()),
            )
            if step % every_ckpt == 0 or step == t.steps:
                saved = to_host(state) if multi else state  # process 0 saves the whole state
                on_writer(lambda: checkpointer.save(step, saved, metadata={"step": step, "labels": labels}))
                last_checkpoint = step
    finally:
        bar.close()
        if checkpointer is not None:
            checkpointer.close()
    state = to_host(state)
    summary = summarise(built, state, jax.device_get(hyper), labels)
    if step >= t.steps:
        on_writer(_write_summary, out, summary)
        if figures and writer:
            from decompvae import plots

            plots.run_figures(built, state, jax.device_get(hyper), out)
    return RunResult(built, state, jax.device_get(hyper), summary, out)


def summarise(built: Built, state: TrainState, hyper: Hyperparams, labels: list[str]) -> list[dict]:
    """Held-out loss terms per member (the final table).

    Members are evaluated ``SUMMARY_BATCH`` at a time (``lax.map`` with a
    batch size), so memory does not grow with the sweep: a per-dimension MMD
    on 297 points for 120 members at once needed more than 18 GB.
    """
    x = built.bundle.eval_x[:512]
    key = jax.random.key(0)
    one = lambda member: built.eval_objective(key, member[0], member[1], x)  # noqa: E731
    evaluate = jax.jit(lambda params, hyper: jax.lax.map(one, (params, hyper), batch_size=SUMMARY_BATCH))
    loss, terms = evaluate(state.params, hyper)
    rows = []
    for i, label in enumerate(labels):
        rows.append(
            {
                "member": i,
                "label": label,
                "eval_loss": float(loss[i]),
                "eval_recon": float(jnp.mean(terms.recon[i])),
                "eval_kl": float(jnp.mean(terms.kl[i])),
                "eval_divergence": float(terms.divergence[i]),
                "diverged_at": int(state.diverged_at[i]),
            }
        )
    return rows


def _write_summary(out: Path, summary: list[dict]) -> None:
    f = io.StringIO(newline="")
    writer = csv.DictWriter(f, fieldnames=list(summary[0]))
    writer.writeheader()
    writer.writerows(summary)
    write_text_atomic(out / "summary.csv", f.getvalue())


def format_table(summary: list[dict]) -> str:
    """A fixed-width text table of the summary rows."""
    headers = ["member", "label", "eval_loss", "eval_recon", "eval_kl", "eval_divergence", "status"]
    rows = [
        [
            str(r["member"]),
            r["label"],
            f"{r['eval_loss']:.3f}",
            f"{r['eval_recon']:.3f}",
            f"{r['eval_kl']:.3f}",
            f"{r['eval_divergence']:.4f}",
            "ok" if r["diverged_at"] < 0 else f"diverged@{r['diverged_at']}",
        ]
        for r in summary
    ]
    widths = [max(len(h), *(len(row[j]) for row in rows)) for j, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def replace(config: Config, **sections) -> Config:
    """A copy of ``config`` with sections (dicts of changes) replaced."""
    changes = {}
    for name, values in sections.items():
        if name == "output_dir":
            changes[name] = values
        else:
            changes[name] = dataclasses.replace(getattr(config, name), **values)
    return dataclasses.replace(config, **changes)
