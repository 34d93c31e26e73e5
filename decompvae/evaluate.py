"""``decompvae evaluate RUN_DIR``: the metrics that apply to a trained run.

Rebuilds the run from its ``config.json``, restores the newest checkpoint and
computes, for every member (or those selected), every measure of
:mod:`decompvae.metrics.suite` that applies to the run:

* all data: held-out ELBO terms, the IWAE log-likelihood bound, overlap
  (I_q(x; z), mean encoder entropy, KL(q(z) ‖ p(z))), normalised Hoyer
  sparsity of the encoder means and disentanglement_lib's unsupervised
  scores of them (Gaussian total and Wasserstein correlation, mean MI);
* ground-truth data (dSprites): FactorVAE score (both protocols), β-VAE
  score, discrete MIG, DCI, SAP, modularity, explicitness and IRS;
* mixture priors (pinwheel): clustering accuracy and NMI against the arms;
* members that differ only in their seed: UDR within their group (Duan et al., 2020).

Writes ``metrics.json`` (one object per member, the keys of the suite, as
the experiments' ``metrics.csv``) and prints a table.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Sequence

import jax

from decompvae.build import RunSetup, build
from decompvae.checkpoint import Checkpointer
from decompvae.config import Config
from decompvae.curves import curve_measures, curve_sizes
from decompvae.metrics.suite import EvalSizes, applicable_measures, make_evaluator
from decompvae.metrics.udr import udr_of_members
from decompvae.objective import Hyperparams
from decompvae.report import write_report
from decompvae.sweep import Member, init_members, make_sweep, member_label, stack_members, take_member
from decompvae.train import TrainState, model_params

__all__ = ["UDR_POINTS", "evaluate_run", "format_metrics", "load_run", "main", "seed_groups", "udr_of_run"]


def load_run(run_dir: str | Path, step: int | None = None) -> tuple[RunSetup, TrainState, Hyperparams, int]:
    """``(setup, state, hyper, step)`` of a run directory's newest good checkpoint, or of ``step``'s (host arrays).

    Raises:
      FileNotFoundError: no config.json, no checkpoint, or none at ``step`` (the kept steps are named).
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: is {run_dir} the output_dir of a decompvae run?")
    setup = build(Config.from_dict(json.loads(config_path.read_text())))
    hyper, learning_rates, keys = stack_members(setup.members, setup.fixed_prior)
    target = init_members(make_sweep(setup.trainer), keys, hyper, learning_rates)
    with Checkpointer(run_dir / "checkpoints") as checkpointer:  # a reader: never moves or deletes anything
        if step is not None and step not in checkpointer.all_steps():
            raise FileNotFoundError(f"--step {step}: no checkpoint of that step in {run_dir / 'checkpoints'}; "
                                    f"kept: {checkpointer.all_steps()} (train.checkpoint_every sets which)")
        found = (checkpointer.restore_latest(target) if step is None  # a damaged newest one falls back, with a warning
                 else (step, checkpointer.restore(target, step)))
    if found is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'}: train the run first")
    step, state = found
    return setup, jax.device_get(state), jax.device_get(hyper), step


#: Inputs on which UDR compares the members of a seed group (quick: the first 200).
UDR_POINTS = 1000


def seed_groups(members: Sequence[Member]) -> list[list[int]]:
    """Indices of the members that differ only in their seed: every such group of ≥ 2, in grid order."""
    groups: dict[str, list[int]] = {}
    for i, member in enumerate(members):
        groups.setdefault(repr(dataclasses.replace(member, seed=0)), []).append(i)
    return [g for g in groups.values() if len(g) >= 2]


def udr_of_run(setup: RunSetup, state: TrainState, hyper: Hyperparams, *, points: int = UDR_POINTS,
               echo=print) -> dict[int, float]:
    """``{member: UDR}`` over each group of members that differ only in their seed (Duan et al., 2020).

    Lasso UDR (:func:`decompvae.metrics.udr_of_members`) on the first
    ``points`` evaluation inputs, each group scored on its own; members
    without a seed partner get none. A posterior/prior pair without
    per-dimension KL (block priors) gets none either, with a message.
    """
    x, params, scores = setup.data.eval_x[:points], model_params(state), {}
    for group in seed_groups(setup.members):
        try:
            udr = udr_of_members(jax.random.key(0), setup, params, hyper, x, members=group)
        except ValueError as err:  # e.g. a prior that does not factorise by dimension
            echo(f"UDR skipped: {err}")
            return {}
        scores.update(zip(group, map(float, udr)))
    return scores


def evaluate_run(run_dir, members: list[int] | None = None, *, quick: bool = False, step: int | None = None,
                 curve: bool = False, mig_sampled: int | None = None, echo=print) -> list[dict]:
    """Metrics for the selected members of a run (default all), one compilation for all of them.

    Member i is evaluated with ``jax.random.key(g)``, g its index in the whole
    grid. Members that differ only in their seed also get ``udr``: their
    group's Unsupervised Disentanglement Ranking (:func:`udr_of_run`, over
    the whole group whichever members are selected).

    Args:
      run_dir: a run's output directory.
      members: member indices (default all).
      quick: small sample sizes (smoke tests).
      step: the checkpoint to evaluate (default the newest).
      curve: only the measures and sample sizes of the run's training curves
        (:mod:`decompvae.curves`), no UDR: the row ``curves.jsonl`` holds
        for ``step``.
      mig_sampled: also Chen et al.'s sampled MIG with this many samples S per
        entropy estimate (:func:`decompvae.metrics.mig_sampled`; they used 10,000).
    """
    setup, state, hyper, step = load_run(run_dir, step)
    n = len(setup.members)
    selected = list(range(n)) if not members else members
    for i in selected:
        if not 0 <= i < n:
            raise ValueError(f"--member {i} is out of range: the run has members 0…{n - 1}")
    if curve:
        evaluate, udr = make_evaluator(setup, curve_sizes(setup), curve_measures(setup)), {}
    else:
        sizes, measures = EvalSizes.quick() if quick else EvalSizes(), applicable_measures(setup)
        if mig_sampled:
            if setup.data.ground_truth is None:
                raise ValueError("--mig-sampled needs a finite ground-truth data set (dSprites and its variants)")
            sizes, measures = sizes._replace(mig_sampled_samples=mig_sampled), measures + ("mig_sampled",)
        evaluate = make_evaluator(setup, sizes, measures)
        udr = udr_of_run(setup, state, hyper, points=200 if quick else UDR_POINTS, echo=echo)
    rows = []
    for i in selected:
        start = time.perf_counter()
        params, h = take_member((model_params(state), hyper), i)
        row = {"member": i, "label": member_label(setup.members[i]), "step": int(step),
               "diverged_at": int(state.diverged_at[i])}
        row.update(evaluate(jax.random.key(setup.member_indices[i]), params, h))
        if i in udr:
            row["udr"] = udr[i]
        row["seconds"] = round(time.perf_counter() - start, 2)
        echo(f"member {i} ({row['label']}): {row['seconds']} s")
        rows.append(row)
    return rows


def format_metrics(rows: list[dict]) -> str:
    """A table with one column per member (``–`` where a member has no value, e.g. UDR without a seed partner)."""
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("member", "label")))
    width = max(len(k) for k in keys)
    header = "metric".ljust(width) + "  " + "  ".join(f"m{r['member']:<9}" for r in rows)
    lines = [header, "-" * len(header)]
    for k in keys:
        cells = [f"{r[k]:<10.4g}" if isinstance(r.get(k), float) else f"{r.get(k, '–')!s:<10}" for r in rows]
        lines.append(k.ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def main(args) -> int:
    step, curve = getattr(args, "step", None), getattr(args, "curve", False)
    rows = evaluate_run(args.run_dir, args.member, quick=args.quick, step=step, curve=curve,
                        mig_sampled=getattr(args, "mig_sampled", None))
    default = step is None and not curve  # the newest checkpoint's full metrics: metrics.json, shown on the page
    name = "metrics.json" if default else f"metrics-step-{rows[0]['step']}{'-curve' if curve else ''}.json"
    output = Path(args.output) if args.output else Path(args.run_dir) / name
    output.write_text(json.dumps(rows, indent=2) + "\n")
    print(format_metrics(rows))
    print(f"written to {output}")
    if not args.output and default:
        print(f"report: {write_report(args.run_dir)}")
    return 0
