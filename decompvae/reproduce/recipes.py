"""Which recipe disentangles fastest on this machine: the search behind the calibrated recipe (no claim, no verdict).

β-TCVAE (Chen et al., 2018: β = 1, α_tc = 5, i.e. their β = 6; minibatch-weighted TC) on procedurally
rendered dSprites, D = 10, Bernoulli likelihood, AMSGrad, one seed, each recipe (:data:`RECIPES`)
given the same training time on this machine:

* ``dense256-b64``: dense encoder/decoder [256, 256], batch 64, lr 5e-4 (the published optimiser);
* ``dense256-b256``: the same at batch 256, lr 1e-3 (scaled by √4);
* ``dense512-b64``: wider, [512, 512], batch 64, lr 5e-4;
* ``convnet-b64``: the published dSprites convnet, batch 64, lr 5e-4.

First every recipe's step is timed (:func:`decompvae.runner.plan`), before any training competes for
the cores; each then trains ``minutes × 60 / seconds_per_step`` steps (rounded to ``log_every``),
evaluated six times along the way (``train.eval_every``: recon, KL, FactorVAE in disentanglement_lib's
protocol and MIG on ``train.eval_points = 500``). Each recipe's row goes to ``recipes.csv`` when it
finishes (a rerun skips the recipes there, so a killed search loses only the recipe in progress), and
``summary.md`` is rewritten from all rows. The calibration experiment
(:mod:`decompvae.reproduce.calibration`) trains its seeds on the recipe this search chose.

Profiles: ``tiny`` (one small dense recipe, seconds: the smoke test), ``cpu`` (the four recipes, 9
minutes each, as run for the calibration) and ``paper`` (the same search with an hour per recipe; the
paper has no counterpart).
"""

from __future__ import annotations

import math
import time

from decompvae import runner
from decompvae.config import Config
from decompvae.curves import read_curves
from decompvae.report import read_csv
from decompvae.reproduce._common import Context, write_csv

TITLE = "Recipe search: β-TCVAE (α_tc = 5) on dSprites at equal training time"

#: name → (network, hidden, batch size, learning rate)
RECIPES = {
    "dense256-b64": ("mlp", [256, 256], 64, 5e-4),
    "dense256-b256": ("mlp", [256, 256], 256, 1e-3),
    "dense512-b64": ("mlp", [512, 512], 64, 5e-4),
    "convnet-b64": ("dsprites", None, 64, 5e-4),
    "dense16-b16": ("mlp", [16], 16, 5e-4),  # the tiny profile's
}
PROFILES = {
    "tiny": {"recipes": ["dense16-b16"], "minutes": 0.05, "log_every": 10, "evaluations": 2, "eval_points": 64,
             "data_eval_points": 64},
    "cpu": {"recipes": ["dense256-b64", "dense256-b256", "dense512-b64", "convnet-b64"], "minutes": 9.0,
            "log_every": 100, "evaluations": 6, "eval_points": 500, "data_eval_points": 1000},
    "paper": {"recipes": ["dense256-b64", "dense256-b256", "dense512-b64", "convnet-b64"], "minutes": 60.0,
              "log_every": 100, "evaluations": 6, "eval_points": 500, "data_eval_points": 1000},
}
DSPRITES_IMAGES = 737_280
COLUMNS = ["recipe", "network", "hidden", "batch", "lr", "seconds_per_step", "steps", "images", "epochs",
           "train_seconds", "recon", "kl", "factor_vae_dlib", "mig", "best_mig", "best_mig_images", "active_dims"]


def recipe_config(ctx: Context, settings: dict, name: str, steps: int) -> Config:
    """β-TCVAE (α_tc = 5) with ``name``'s network, batch and learning rate, ``steps`` steps."""
    network, hidden, batch, lr = RECIPES[name]
    log_every = settings["log_every"]
    every = max(log_every, steps // settings["evaluations"] // log_every * log_every)
    return Config.from_dict({
        "data": {"name": "dsprites", "eval_points": settings["data_eval_points"]},
        "model": {"network": network, "hidden": hidden, "latent_dim": 10, "likelihood": "bernoulli",
                  "regulariser": {"total_correlation": "total_correlation"},
                  "regulariser_options": {"total_correlation": {"dataset_size": 0}}},
        "train": {"steps": steps, "batch_size": batch, "learning_rate": lr, "beta": 1.0,
                  "alpha": {"total_correlation": 5.0}, "log_every": log_every, "checkpoint_every": every,
                  "eval_every": every, "eval_points": settings["eval_points"]},
        "output_dir": str(ctx.runs_dir / name),
    })


def run(ctx: Context, settings: dict) -> None:
    """Time every recipe not yet in ``recipes.csv``, train each for the profile's minutes, write its row, summarise."""
    rows = _done(ctx)
    todo = [name for name in settings["recipes"] if name not in rows]
    timed = {}
    for name in todo:  # every step timed first, before any training competes for the cores
        timed[name] = runner.plan(recipe_config(ctx, settings, name, settings["log_every"])).seconds_per_step
        ctx.echo(f"[{ctx.name}/{ctx.profile}] {name}: {timed[name]:.4f} s/step")
    for name in todo:
        every = settings["log_every"]
        steps = max(every, math.floor(settings["minutes"] * 60 / timed[name] / every) * every)
        start = time.perf_counter()
        runner.run(recipe_config(ctx, settings, name, steps), progress=ctx.progress, figures=False,
                   echo=lambda _: None)
        rows[name] = _row(ctx, name, timed[name], steps, time.perf_counter() - start)
        _write(ctx, rows)
        ctx.echo(f"[{ctx.name}/{ctx.profile}] {name}: trained {steps} steps")
    _write(ctx, rows)
    write_summary(ctx, settings, rows)


def _done(ctx: Context) -> dict[str, dict]:
    """The rows already in ``recipes.csv``, each cell as written (they are written back unchanged)."""
    path = ctx.results_dir / "recipes.csv"
    return {r["recipe"]: r for r in read_csv(path, parse=False)} if path.is_file() else {}


def _write(ctx: Context, rows: dict[str, dict]) -> None:
    ordered = [{c: rows[name][c] for c in COLUMNS} for name in RECIPES if name in rows]
    write_csv(ctx.results_dir / "recipes.csv", ordered)


def _row(ctx: Context, name: str, seconds_per_step: float, steps: int, seconds: float) -> dict:
    network, hidden, batch, lr = RECIPES[name]
    curve = [r for r in read_curves(ctx.runs_dir / name) if r["member"] == 0]
    last, best = curve[-1], max(curve, key=lambda r: r["mig"])
    return {"recipe": name, "network": network, "hidden": hidden or "conv 32-32-64-64, dense 128", "batch": batch,
            "lr": lr, "seconds_per_step": f"{seconds_per_step:.4f}", "steps": steps, "images": steps * batch,
            "epochs": f"{steps * batch / DSPRITES_IMAGES:.2f}", "train_seconds": f"{seconds:.0f}",
            **{k: f"{last[k]:.4f}" for k in ("recon", "kl", "factor_vae_dlib", "mig", "active_dims")},
            "best_mig": f"{best['mig']:.4f}", "best_mig_images": best["images"]}


def table(rows: dict[str, dict]) -> list[str]:
    """The Markdown table of the recipes' rows, in :data:`RECIPES` order."""
    lines = ["| recipe | s/step | steps | images (epochs) | recon | KL | FactorVAE (dlib) | MIG | best MIG (at images) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in RECIPES:
        if name in rows:
            r = rows[name]
            lines.append(f"| {name} | {float(r['seconds_per_step']):.4f} | {r['steps']} | {r['images']} ({r['epochs']}) "
                         f"| {float(r['recon']):.1f} | {float(r['kl']):.2f} | {float(r['factor_vae_dlib']):.3f} | "
                         f"{float(r['mig']):.3f} | {float(r['best_mig']):.3f} ({r['best_mig_images']}) |")
    return lines


def write_summary(ctx: Context, settings: dict, rows: dict[str, dict]) -> None:
    """``summary.md``: the rule, the settings and the table (no verdict: the search tests no claim)."""
    minutes = settings["minutes"]
    lines = [f"# {TITLE} — profile `{ctx.profile}`", "",
             f"Command: `decompvae reproduce recipes --profile {ctx.profile}` ({minutes:g} min of training per "
             "recipe; each step timed on this machine first, rows in recipes.csv as each recipe finished). β-TCVAE "
             "(β = 1, α_tc = 5, minibatch-weighted TC), procedurally rendered dSprites, D = 10, Bernoulli likelihood, "
             "AMSGrad. One seed per recipe: a first look, not a comparison with intervals, so no verdict. Scores at "
             f"the end of training (and MIG's best along the curve) on train.eval_points = {settings['eval_points']} "
             "(FactorVAE: disentanglement_lib's protocol; MIG: the same points).", "", *table(rows)]
    (ctx.results_dir / "summary.md").write_text("\n".join(lines) + "\n")
