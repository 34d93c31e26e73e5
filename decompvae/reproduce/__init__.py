"""The paper's experiments (Mathieu et al., 2019), one entry point per finding.

    decompvae reproduce list                       # the experiments
    decompvae reproduce NAME --profile tiny|cpu|paper [--output DIR]
    decompvae reproduce NAME --profile P --print-config   # the resolved settings as JSON, no training
    decompvae reproduce NAME --profile P --print-config --estimate   # … and each run's training time here
    decompvae reproduce NAME --profile P --shard I/N   # members I, I + N, … of every run (see ``_rows``)
    decompvae reproduce readme                     # rebuild experiments/README.md from the summaries

Each experiment trains its grids with vmapped sweeps (one compiled program
per prior family / regulariser), evaluates every member, and writes to its
results directory (default ``experiments/results/<name>-<profile>``):

* ``metrics.csv``: one row per trained network (member) with its
  hyperparameters and metrics (or the computed curve for ``theory``);
* ``*.png`` figures;
* ``rows/<run>[.shard-I-of-N].json``: each training program's rows, written
  as soon as they exist and reused by a rerun (:mod:`decompvae.reproduce._rows`);
* ``summary.md``: the settings (and what the profile reduced), tables of
  means with 95% confidence intervals over seeds, and the finding, decided
  from the numbers.

Training runs (checkpoints, logs) go to ``runs/reproduce/<name>-<profile>``
(``DIR/runs`` with ``--output``) and resume when rerun. Profiles: ``tiny``
(smoke test, seconds), ``cpu`` (reduced, about an hour at most on a 2-core
CPU) and ``paper`` (the published settings, for a GPU).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from decompvae import runner
from decompvae.config import check_shard
from decompvae.report import write_reproduce_report
from decompvae.reproduce import (calibration, clustering, heavy_tails, hierarchy, methods, overlap, recipes,
                                 rotation, sparsity, subspaces, theory)
from decompvae.reproduce import _rows
from decompvae.reproduce._common import Context, train
from decompvae.reproduce._readme import write_readme

__all__ = ["EXPERIMENTS", "PROFILES", "SHARDED", "Experiment", "main", "resolved_settings", "run_experiment"]

PROFILES = ("tiny", "cpu", "paper")

#: Default root of the results directories (relative to the working directory).
RESULTS_ROOT = Path("experiments") / "results"
RUNS_ROOT = Path("runs") / "reproduce"


class Experiment(NamedTuple):
    """A registered experiment: its name, module (``PROFILES``, ``run``) and one-line description."""

    name: str
    module: ModuleType
    description: str


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment("theory", theory,
                   "L_β under latent rotations: isotropic vs anisotropic vs Student-t (Theorem 2)"),
        Experiment("clustering", clustering,
                   "pinwheel, D = 2, mixture prior: (β, α) grid, q(z) densities, clustering accuracy/NMI"),
        Experiment("sparsity", sparsity,
                   "sparse prior γ ∈ {0, 0.8} × α × β, D = 50: Hoyer sparsity and reconstruction"),
        Experiment("overlap", overlap,
                   "dSprites: I_q(x;z), encoder entropy and reconstruction as β grows"),
        Experiment("rotation", rotation,
                   "dSprites, D = 10: β × {isotropic, anisotropic PCA, anisotropic learned}: FactorVAE, MIG"),
        Experiment("heavy_tails", heavy_tails,
                   "dSprites: Student-t ν ∈ {2, 5, 9, 12, 9999} at β = 1: FactorVAE, MIG"),
        Experiment("subspaces", subspaces,
                   "beyond the paper: sprite pairs, block Student-t prior vs isotropic: block MIG"),
        Experiment("hierarchy", hierarchy,
                   "beyond the paper: parent → child toy data, hierarchical prior vs isotropic: block MIG, alignment"),
        Experiment("calibration", calibration,
                   "dSprites: β-VAE (β = 1, 4, 8) and β-TCVAE trained until disentanglement appears, against the "
                   "published MIG, FactorVAE and DCI"),
        Experiment("recipes", recipes,
                   "dSprites: which recipe (dense or convnet, batch, width) disentangles fastest on this machine at "
                   "equal training time: the search behind the calibrated recipe (no verdict)"),
        Experiment("methods", methods,
                   "dSprites: every registered method at its published weight and a stronger one, calibrated recipe: "
                   "MIG, FactorVAE, DCI, SAP (no verdict)"),
    )
}


#: The experiments that ``--shard I/N`` can split: each trains programs whose networks are evaluated one at a
#: time (``configs``, ``evaluate``, ``summarise``). The others keep ``run``: clustering's and sparsity's figures need
#: every network's parameters at once, and theory trains none.
SHARDED = ("overlap", "rotation", "heavy_tails", "subspaces", "hierarchy", "calibration", "methods")


def _check_shardable(name: str) -> None:
    """Refuse ``--shard`` for an experiment outside :data:`SHARDED`, naming the flag and those that can."""
    if name not in SHARDED:
        raise ValueError(f"--shard: {name} cannot be sharded (its figures need every network at once, or it trains "
                         f"none); these can: {', '.join(SHARDED)}")


def _module(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)} (or 'list')")
    return EXPERIMENTS[name].module


def profile_settings(name: str, profile: str) -> dict:
    """The settings of one experiment's profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(PROFILES)}")
    return dict(_module(name).PROFILES[profile])


def _plain(value):
    """JSON-ready settings: NamedTuples (sample sizes) become dicts."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resolved_settings(name: str, profile: str, output: str | Path | None = None, *, estimate: bool = False,
                      shard: str | tuple[int, int] | None = None) -> dict:
    """What ``NAME --profile P`` would run, without training.

    Args:
      name, profile, output: as for :func:`run_experiment`.
      estimate: also plan each run on this machine (:func:`decompvae.runner.plan`:
        it builds the data, compiles and times one chunk's training program).
      shard: ``"I/N"``: the runs (and the estimate) of that shard.

    Returns:
      ``{"experiment", "profile", "runs": [config.json of each compiled sweep],
      "settings": the profile (grids, evaluation sample sizes), "verdict_rule"}``;
      with ``estimate``, also ``"estimate"``: per run its members, images per
      member, memory and training seconds, their total, and the seconds the
      estimate took. Training time only: evaluation and compilation come on top.
    """
    settings = profile_settings(name, profile)
    module = _module(name)
    runs = RUNS_ROOT / f"{name}-{profile}" if output is None else Path(output) / "runs"
    configs = {}
    if hasattr(module, "configs"):
        kwargs = {"require_files": False} if "require_files" in inspect.signature(module.configs).parameters else {}
        configs = {v: dataclasses.replace(c, output_dir=str(runs / v)) for v, c in module.configs(settings, **kwargs).items()}
    if shard is not None:
        _check_shardable(name)
        configs = {v: runner.shard_config(c, shard) for v, c in configs.items()}
    resolved = {
        "experiment": name,
        "profile": profile,
        "runs": [c.to_dict() for c in configs.values()],
        "settings": _plain(settings),
        "verdict_rule": getattr(module, "VERDICT_RULE", None),
    }
    if estimate:
        resolved["estimate"] = _estimate(configs)
    return resolved


def _estimate(configs: dict) -> dict:
    """Per run: members, images per member, memory and estimated training seconds; their total; the cost."""
    start, runs = time.perf_counter(), {}
    for variant, config in configs.items():
        p = runner.plan(config)
        runs[variant] = {"members": len(p.labels), "images_per_member": p.images_per_member,
                         "bytes_per_chunk": p.bytes_per_chunk, "seconds_per_step": p.seconds_per_step,
                         "train_seconds": p.train_seconds, "compile_seconds": p.compile_seconds}
    total = sum(r["train_seconds"] for r in runs.values())
    return {"runs": runs, "train_seconds": total, "estimate_took_seconds": time.perf_counter() - start}


def run_experiment(name: str, profile: str = "cpu", output: str | Path | None = None, *, echo=print,
                   progress: bool = False, shard: str | tuple[int, int] | None = None) -> Path:
    """Run one experiment (or one shard of it); return its results directory.

    Args:
      name: a key of ``EXPERIMENTS``.
      profile: ``tiny``, ``cpu`` or ``paper``.
      output: results directory (default ``experiments/results/<name>-<profile>``);
        training runs go to ``<output>/runs`` when it is given, else to
        ``runs/reproduce/<name>-<profile>``.
      echo: where progress messages go.
      progress: show training progress bars.
      shard: ``"I/N"`` or ``(I, N)``: train and evaluate members I, I + N, …
        of each training program (:data:`SHARDED`); the summary is written
        from the rows of every shard present (no verdict while one is missing).

    Raises:
      ValueError: unknown name or profile; a bad ``shard``, one for an
        experiment that cannot be sharded, or a shard count other than the
        one under ``output`` — each before any training.
    """
    settings = profile_settings(name, profile)
    module = _module(name)
    if shard is not None:
        _check_shardable(name)
    shard = None if shard is None else check_shard(shard)
    if output is None:
        results, runs = RESULTS_ROOT / f"{name}-{profile}", RUNS_ROOT / f"{name}-{profile}"
    else:
        results = Path(output)
        runs = results / "runs"
    ctx = Context(name, profile, results, runs, echo, progress, shard)
    start = time.perf_counter()
    if name in SHARDED:
        _rows.check_shard_count(results, shard or (0, 1))
    results.mkdir(parents=True, exist_ok=True)
    if name in SHARDED:
        _run_programs(ctx, module, settings)
    else:
        module.run(ctx, settings)
    write_reproduce_report(results)
    echo(f"[{name}/{profile}] done in {time.perf_counter() - start:.0f} s → {results} (report.html beside summary.md)")
    return results


def program_fingerprints(configs: dict, settings: dict) -> dict:
    """``{variant: fingerprint}``: what each program's stored rows depend on (its config less ``output_dir``, and the
    profile's settings); see :mod:`decompvae.reproduce._rows`."""
    return {variant: {"config": {k: v for k, v in config.to_dict().items() if k != "output_dir"},
                      "settings": _plain(settings)} for variant, config in configs.items()}


def _run_programs(ctx: Context, module: ModuleType, settings: dict) -> None:
    """Train and evaluate this shard's share of each program (skipping stored rows), then summarise all rows present."""
    configs = module.configs(settings)
    fingerprints = program_fingerprints(configs, settings)
    for variant, config in configs.items():
        _rows.program_rows(ctx, variant, fingerprints[variant],
                           lambda: module.evaluate(ctx, settings, variant, train(ctx, config, variant)))
    rows, missing = _rows.gather(ctx.results_dir, fingerprints, (ctx.shard or (0, 1))[1])
    if missing:
        ctx.echo(f"[{ctx.name}/{ctx.profile}] rows missing: {', '.join(missing)}; summary without a verdict")
        _rows.partial_summary(ctx, module.TITLE, rows, missing, module.GROUP_BY, module.METRICS,
                              getattr(module, "HEADERS", None))
    else:
        module.summarise(ctx, settings, rows)


def main(args) -> int:
    """``decompvae reproduce NAME --profile P [--output DIR]``; ``NAME = list`` lists them."""
    if args.name == "list":
        width = max(map(len, EXPERIMENTS))
        for e in EXPERIMENTS.values():
            print(f"{e.name.ljust(width)}  {e.description}")
        print(f"profiles: {', '.join(PROFILES)}")
        return 0
    if args.name == "readme":
        print(f"written {write_readme({e.name: e.description for e in EXPERIMENTS.values()})}")
        return 0
    if getattr(args, "print_config", False):
        resolved = resolved_settings(args.name, args.profile, args.output, estimate=getattr(args, "estimate", False),
                                     shard=getattr(args, "shard", None))
        print(json.dumps(resolved, indent=2))
        return 0
    path = run_experiment(args.name, args.profile, args.output, progress=True, shard=getattr(args, "shard", None))
    print(f"results in {path} (summary: {path / 'summary.md'})")
    return 0
