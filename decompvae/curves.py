"""Metrics during training: every member evaluated every ``train.eval_every`` steps.

With ``train.eval_every = N`` the runner evaluates each member after every
N steps (and before the first) and appends one row per member to
``<output_dir>/curves.jsonl``:

    {"step": 800, "images": 51200, "member": 0, "recon": …, "kl": …,
     "factor_vae_dlib": …, "active_dims": …, "mig": …, "seconds": …}

``images`` = step × batch size, the x-axis of the report page's curves;
``seconds`` is what the member's evaluation cost. The measures
(:func:`curve_measures`) are the objective's terms on the evaluation points
and, with a ground truth, FactorVAE in the disentanglement_lib protocol
(with its count of active dimensions) and MIG, plus DCI with
``train.eval_dci``. Sample sizes come from ``train.eval_points`` = P
(:func:`curve_sizes`; 10,000 is disentanglement_lib's).

Member i is evaluated with the key ``jax.random.key(g)`` of its index g in
the whole grid at every step, as ``decompvae evaluate`` does: every point of
a curve uses the same factors and images, and ``decompvae evaluate RUN
--step S --curve`` recomputes the row of step S from its checkpoint. A
resumed run drops the rows after its checkpoint (:func:`truncate_log`) and
computes them again (:func:`decompvae.outputs.continue_output`), so a
curve has each step once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from decompvae.build import RunSetup
from decompvae.metrics.suite import EvalSizes, make_evaluator
from decompvae.objective import Hyperparams
from decompvae.outputs import CURVE_FILE, CURVE_META, read_jsonl
from decompvae.sweep import take_member
from decompvae.train import TrainState, model_params

__all__ = ["CURVE_FILE", "CURVE_META", "curve_measures", "curve_sizes", "make_curve", "read_curves"]

#: Points per FactorVAE vote (disentanglement_lib's).
POINTS_PER_VOTE = 64


def curve_measures(setup: RunSetup) -> tuple[str, ...]:
    """The measures of a run's curves (:data:`decompvae.metrics.suite.MEASURES` names)."""
    if setup.data.ground_truth is None:
        return ("terms",)
    return ("terms", "factor_vae_dlib", "mig") + (("dci",) if setup.config.train.eval_dci else ())


def curve_sizes(setup: RunSetup) -> EvalSizes:
    """The sample sizes of ``train.eval_points`` = P.

    P evaluation points for the terms (at most the run's), P FactorVAE
    variance points and train votes, P / 2 eval votes of 64 points, P points
    for MIG and DCI's trees (P / 2 test points). P = 10,000 gives
    disentanglement_lib's FactorVAE and MIG.
    """
    p = setup.config.train.eval_points
    return EvalSizes(eval_points=min(p, int(setup.data.eval_x.shape[0])), variance_points=p, train_votes=p,
                     eval_votes=max(p // 2, 1), points_per_vote=POINTS_PER_VOTE, mig_points=p,
                     test_points=max(p // 2, 1), dci_points=p)


def make_curve(setup: RunSetup) -> Callable[[int, TrainState, Hyperparams], list[dict]]:
    """``rows(step, state, hyper)``: one curve row per member that has not diverged (host arrays in)."""
    evaluate = make_evaluator(setup, curve_sizes(setup), curve_measures(setup))
    batch = setup.config.train.batch_size

    def rows(step: int, state: TrainState, hyper: Hyperparams) -> list[dict]:
        params, diverged_at = model_params(state), np.asarray(state.diverged_at)
        out = []
        for i, index in enumerate(setup.member_indices):
            if diverged_at[i] >= 0:  # a diverged member's curve ends where it diverged
                continue
            start = time.perf_counter()
            member = take_member((params, hyper), i)
            row = {"step": int(step), "images": int(step) * batch, "member": i}
            row.update(evaluate(jax.random.key(index), *member))
            row["seconds"] = round(time.perf_counter() - start, 3)
            out.append(row)
        return out

    return rows


def read_curves(run_dir: str | Path) -> list[dict]:
    """The rows of a run's ``curves.jsonl`` (empty without one; a torn last line skipped)."""
    return read_jsonl(Path(run_dir) / CURVE_FILE)
