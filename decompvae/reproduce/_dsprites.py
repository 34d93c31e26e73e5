"""Shared settings and evaluation of the dSprites experiments (overlap, rotation, heavy tails).

Profiles:

* ``paper``: the published settings (docs/guide.md#experiments): the dSprites convnet
  (conv 32-32-64-64, dense 128), Bernoulli likelihood, Adam (AMSGrad) lr 5e-4,
  batch 64, 20 epochs of the 737,280 images (230,400 steps); metrics with
  their published sample sizes (FactorVAE: disentanglement_lib 10,000/5,000
  votes; the paper's protocol L = 1,000, M = 20,000 over the full data set;
  MIG on 10,000 points).
* ``cpu``: what a 2-core CPU finishes in about an hour: vmapped over ten
  seeds, the convnet costs about 53 ms per model and step there and an MLP
  encoder/decoder (4096 → 128 → D and back) about 5.5 ms, so the cpu profile
  trains the MLP for 3,000 steps (0.26 epochs) and computes the metrics on
  fewer votes/points. Everything else (data, D, likelihood, optimiser,
  learning rate, the grids' priors) is the paper's.
* ``tiny``: a smoke test (seconds).
"""

from __future__ import annotations

import numpy as np

from decompvae.config import Config
from decompvae.reproduce._common import budget_line, ci_plot, pyplot
from decompvae.metrics.suite import EvalSizes

__all__ = ["CALIBRATED_CPU", "DSPRITES_IMAGES", "PROFILES", "RECON_LABEL", "base_config", "base_dict", "budget", "describe",
           "eval_sizes", "metric_figure", "rebased_profiles", "tradeoff_figure"]

#: dSprites is one grid of 737,280 images without a held-out split: the evaluation images are drawn from the
#: training grid, as in the published evaluation, and are named for what they are.
RECON_LABEL = "log p(x|z), evaluation images (from the training grid)"

DSPRITES_IMAGES = 737_280
_PAPER_STEPS = 20 * DSPRITES_IMAGES // 64

PROFILES = {
    "tiny": {"network": "mlp", "hidden": [32], "steps": 2, "batch": 16, "seeds": 2, "eval_points": 64,
             "overlap_points": 64,
             "sizes": EvalSizes(variance_points=64, train_votes=8, eval_votes=4, points_per_vote=16,
                                paper_votes=8, paper_points_per_vote=16, paper_pool=128, mig_points=64)},
    "cpu": {"network": "mlp", "hidden": [128], "steps": 3000, "batch": 64, "seeds": 10, "eval_points": 1000,
            "overlap_points": 1000,
            "sizes": EvalSizes(variance_points=5000, train_votes=500, eval_votes=300, points_per_vote=64,
                               paper_votes=1000, paper_points_per_vote=200, paper_pool=10_000, mig_points=5000)},
    "paper": {"network": "dsprites", "hidden": None, "steps": _PAPER_STEPS, "batch": 64, "seeds": 10,
              "eval_points": 2000, "overlap_points": 2000, "sizes": EvalSizes()},
}


#: The calibrated CPU recipe (dense [256, 256], batch 64, lr 5e-4: experiments/results/calibration-cpu/recipes.md) at
#: the budget of the profiles rebased on it: at least 1.5 M images per network and at least the images at which the
#: calibration's β-VAE (β = 4) mean MIG curve first reached 80% of its final value (256,000 over its 3 seeds; 768,000
#: at seed 0 alone, the figure the profile was first set from), rounded up to whole evaluations of 4,000 steps:
#: 24,000 steps = 1,536,000 images (2.08 epochs). Every network is evaluated along the way (``train.eval_every``) so
#: the summary shows its curve.
CALIBRATED_CPU = {**PROFILES["cpu"], "hidden": [256, 256], "steps": 24_000, "eval_every": 4_000, "curve_points": 500}
#: The tiny profile with curves (two evaluations), so the rebased experiments' curve path runs in the smoke test.
TINY_WITH_CURVES = {**PROFILES["tiny"], "eval_every": 2, "curve_points": 32}


def rebased_profiles(**per_profile) -> dict:
    """The profiles of an experiment rebased on the calibrated recipe, each with ``per_profile[key][profile]``."""
    base = {"tiny": TINY_WITH_CURVES, "cpu": CALIBRATED_CPU, "paper": PROFILES["paper"]}
    return {name: {**settings, **{key: values[name] for key, values in per_profile.items()}}
            for name, settings in base.items()}


def base_config(settings: dict, *, prior: str, prior_params: dict | None = None, sweep: dict,
                latent_dim: int = 10, **prior_source) -> Config:
    """A dSprites sweep config for one prior family (with training curves where ``settings`` has ``eval_every``).

    ``prior_source``: ``prior_init`` and ``prior_learned`` of :class:`decompvae.config.ModelConfig`, where given.
    """
    return Config.from_dict(base_dict(settings, prior=prior, prior_params=prior_params, sweep=sweep,
                                      latent_dim=latent_dim, **prior_source))


def base_dict(settings: dict, *, prior: str, prior_params: dict | None = None, sweep: dict,
              latent_dim: int = 10, **prior_source) -> dict:
    """:func:`base_config` as the dict ``Config.from_dict`` reads (for an experiment that adds to it)."""
    steps = settings["steps"]
    curves = ({"eval_every": settings["eval_every"], "eval_points": settings["curve_points"]}
              if settings.get("eval_every") else {})
    return {
        "data": {"name": "dsprites", "eval_points": settings["eval_points"]},
        "model": {"network": settings["network"], "latent_dim": latent_dim, "hidden": settings["hidden"],
                  "likelihood": "bernoulli", "prior": prior, "prior_params": prior_params or {}, **prior_source},
        "train": {"steps": steps, "batch_size": settings["batch"], "learning_rate": 5e-4,
                  "log_every": min(100 if steps < 10_000 else 1000, steps),
                  "checkpoint_every": min(steps, 500 if steps < 10_000 else 10_000), **curves},
        "sweep": {**sweep, "seed": list(range(settings["seeds"]))},
    }


def budget(settings: dict, dataset: str = "dSprites", dataset_images: int = DSPRITES_IMAGES) -> list[str]:
    """The summary's budget line for a profile with curves (the rebased ones), else nothing.

    ``dataset`` and ``dataset_images`` name the data and its size, for the line's epochs.
    """
    if not settings.get("eval_every"):
        return []
    return ["", budget_line(settings["steps"] * settings["batch"], dataset, dataset_images)]


def eval_sizes(settings: dict, **changes) -> EvalSizes:
    """The profile's sample sizes with its evaluation and overlap points (and ``changes``)."""
    return settings["sizes"]._replace(eval_points=settings["eval_points"], overlap_points=settings["overlap_points"],
                                      **changes)


def describe(settings: dict, *, disentanglement: bool = True) -> str:
    """One paragraph: the training and metric settings, and what was reduced."""
    s = settings["sizes"]
    net = ("the published dSprites convnet" if settings["network"] == "dsprites"
           else f"an MLP encoder/decoder with hidden widths {settings['hidden']} (reduced from the published convnet)")
    text = (f"Procedurally rendered dSprites (all 737,280 factor combinations, fresh batches each step), {net}, "
            f"Bernoulli likelihood, Gaussian encoder, AMSGrad lr 5e-4, batch {settings['batch']}, "
            f"{settings['steps']} steps"
            + (f" = {settings['steps'] * settings['batch']:,} images per network" if settings.get("eval_every") else "")
            + (" (the published 20 epochs)" if settings["steps"] == _PAPER_STEPS
               else f" (≈ {settings['steps'] * settings['batch'] / 737_280:.2f} epochs; published: 20)")
            + f", {settings['seeds']} seeds per point. Loss terms (recon, KL) on {settings['eval_points']} evaluation "
            "images drawn from the training grid (dSprites has no held-out split; the published evaluation does the "
            "same). ")
    if settings.get("eval_every"):
        text += (f"Every network is also evaluated every {settings['eval_every']:,} steps on {settings['curve_points']} "
                 "points (its training curve). ")
    if not disentanglement:
        return text.rstrip()
    if s == EvalSizes():
        text += "Metrics with their published sample sizes."
    else:
        text += (f"Metrics on reduced samples: FactorVAE (disentanglement_lib) {s.variance_points} variance points, "
                 f"{s.train_votes}/{s.eval_votes} train/eval votes of {s.points_per_vote} points (published "
                 f"10,000/5,000 of 64); FactorVAE (paper) {s.paper_votes} votes of L = {s.paper_points_per_vote} "
                 f"from a pool of {s.paper_pool} (published 20,000 of 1,000 from all 737,280); MIG (20 bins) on "
                 f"{s.mig_points} points (10,000).")
    return text


def metric_figure(path, groups, x_key: str, series_key: str | None, metrics: dict, *, xlabel: str,
                  log_x: bool = False, categorical: bool = False) -> None:
    """One panel per metric: mean ± 95% CI over seeds against ``x_key``, one line per series."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    series = sorted({g[series_key] for g in groups}, key=str) if series_key else [None]
    for ax, (metric, label) in zip(axes[0], metrics.items()):
        for j, s in enumerate(series):
            g = [x for x in groups if series_key is None or x[series_key] == s]
            xs = np.arange(len(g), dtype=float) if categorical else np.array([x[x_key] for x in g], float)
            dodge = 0.06 * (j - (len(series) - 1) / 2)  # side by side, so the error bars stay readable
            xs = xs * 2.0 ** dodge if log_x else xs + dodge
            ci_plot(ax, xs, g, metric, label=None if s is None else str(s))
            if categorical:
                ax.set_xticks(np.arange(len(g)), [f"{x[x_key]:g}" for x in g])
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set(xlabel=xlabel, ylabel=label)
        if series_key:
            ax.legend(fontsize=7)
    fig.suptitle("mean ± 95% CI over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tradeoff_figure(path, groups, series_key: str, metrics: dict, *, recon: str = "recon") -> None:
    """Disentanglement metric against reconstruction, one point per group (both 95% CIs)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, (metric, label) in zip(axes[0], metrics.items()):
        for s in sorted({g[series_key] for g in groups}, key=str):
            g = [x for x in groups if x[series_key] == s]
            ax.errorbar([x[f"{recon}_mean"] for x in g], [x[f"{metric}_mean"] for x in g],
                        xerr=[x[f"{recon}_ci"] for x in g], yerr=[x[f"{metric}_ci"] for x in g],
                        marker="o", capsize=2, linestyle=":", label=str(s))
        ax.set(xlabel=RECON_LABEL, ylabel=label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
