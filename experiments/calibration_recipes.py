"""Which recipe disentangles fastest on a CPU: ``python experiments/calibration_recipes.py [--minutes 10]``.

β-TCVAE (Chen et al., 2018: β = 1, α_tc = 5, i.e. their β = 6; minibatch-weighted TC) on procedurally
rendered dSprites, D = 10, Bernoulli likelihood, AMSGrad, one seed, each recipe given the same
training time on this machine:

* ``dense256-b64``: dense encoder/decoder [256, 256], batch 64, lr 5e-4 (the published optimiser);
* ``dense256-b256``: the same at batch 256, lr 1e-3 (scaled by √4);
* ``dense512-b64``: wider, [512, 512], batch 64, lr 5e-4;
* ``convnet-b64``: the published dSprites convnet, batch 64, lr 5e-4.

First every recipe's step is timed on this machine (:func:`decompvae.runner.plan`); each then trains
``minutes × 60 / seconds_per_step`` steps (rounded to ``log_every``), evaluated six times along the
way (``train.eval_every``: recon, KL, FactorVAE in disentanglement_lib's protocol and MIG on
``train.eval_points = 500``). Each recipe's row goes to
``experiments/results/calibration-cpu/recipes.csv`` when it finishes (a rerun skips recipes there,
so a killed search loses only the recipe in progress), and ``recipes.md`` is rewritten from all rows.
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import time
from pathlib import Path

import jax

from decompvae import runner
from decompvae.config import Config
from decompvae.curves import read_curves

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "calibration-cpu"
RUNS = ROOT / "runs" / "calibration-recipes"

#: name → (network, hidden, batch size, learning rate)
RECIPES = {
    "dense256-b64": ("mlp", [256, 256], 64, 5e-4),
    "dense256-b256": ("mlp", [256, 256], 256, 1e-3),
    "dense512-b64": ("mlp", [512, 512], 64, 5e-4),
    "convnet-b64": ("dsprites", None, 64, 5e-4),
}
LOG_EVERY = 100
EVALUATIONS = 6
COLUMNS = ["recipe", "network", "hidden", "batch", "lr", "seconds_per_step", "steps", "images", "epochs",
           "train_seconds", "recon", "kl", "factor_vae_dlib", "mig", "best_mig", "best_mig_images", "active_dims"]


def recipe_config(name: str, steps: int) -> Config:
    """β-TCVAE (α_tc = 5) with ``name``'s network, batch and learning rate, ``steps`` steps."""
    network, hidden, batch, lr = RECIPES[name]
    every = max(LOG_EVERY, steps // EVALUATIONS // LOG_EVERY * LOG_EVERY)
    return Config.from_dict({
        "data": {"name": "dsprites", "eval_points": 1000},
        "model": {"network": network, "hidden": hidden, "latent_dim": 10, "likelihood": "bernoulli",
                  "divergence": {"total_correlation": "total_correlation"},
                  "divergence_options": {"total_correlation": {"dataset_size": 0}}},
        "train": {"steps": steps, "batch_size": batch, "learning_rate": lr, "beta": 1.0,
                  "alpha": {"total_correlation": 5.0}, "log_every": LOG_EVERY, "checkpoint_every": every,
                  "eval_every": every, "eval_points": 500},
        "output_dir": str(RUNS / name),
    })


def _done() -> dict[str, dict]:
    path = RESULTS / "recipes.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {r["recipe"]: r for r in csv.DictReader(f)}


def _write(rows: dict[str, dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "recipes.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows[name] for name in RECIPES if name in rows)


def _row(name: str, seconds_per_step: float, steps: int, seconds: float) -> dict:
    network, hidden, batch, lr = RECIPES[name]
    curve = [r for r in read_curves(RUNS / name) if r["member"] == 0]
    last, best = curve[-1], max(curve, key=lambda r: r["mig"])
    return {"recipe": name, "network": network, "hidden": hidden or "conv 32-32-64-64, dense 128", "batch": batch,
            "lr": lr, "seconds_per_step": f"{seconds_per_step:.4f}", "steps": steps, "images": steps * batch,
            "epochs": f"{steps * batch / 737_280:.2f}", "train_seconds": f"{seconds:.0f}",
            **{k: f"{last[k]:.4f}" for k in ("recon", "kl", "factor_vae_dlib", "mig", "active_dims")},
            "best_mig": f"{best['mig']:.4f}", "best_mig_images": best["images"]}


def write_table(rows: dict[str, dict], minutes: float) -> Path:
    """``recipes.md``: the table, the machine and the rule."""
    lines = [f"# Recipe search: β-TCVAE (α_tc = 5) on dSprites, {minutes:g} min of training each",
             "", f"Command: `python experiments/calibration_recipes.py --minutes {minutes:g}`; "
             f"{platform.machine()}, {jax.device_count()} CPU device(s), jax {jax.__version__}, "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}. One seed per recipe: a first look, not a comparison "
             "with intervals. Scores at the end of training (and MIG's best along the curve) on "
             "train.eval_points = 500 (FactorVAE: 500/250 votes of 64; MIG: 500 points).", "",
             "| recipe | s/step | steps | images (epochs) | recon | KL | FactorVAE (dlib) | MIG | best MIG (at images) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in RECIPES:
        if name in rows:
            r = rows[name]
            lines.append(f"| {name} | {float(r['seconds_per_step']):.4f} | {r['steps']} | {r['images']} ({r['epochs']}) "
                         f"| {float(r['recon']):.1f} | {float(r['kl']):.2f} | {float(r['factor_vae_dlib']):.3f} | "
                         f"{float(r['mig']):.3f} | {float(r['best_mig']):.3f} ({r['best_mig_images']}) |")
    path = RESULTS / "recipes.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes per recipe")
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    args = parser.parse_args(argv)
    rows = _done()
    todo = [name for name in args.recipes if name not in rows]
    timed = {}
    for name in todo:  # every step timed first, before any training competes for the cores
        timed[name] = runner.plan(recipe_config(name, LOG_EVERY)).seconds_per_step
        print(f"{name}: {timed[name]:.4f} s/step", flush=True)
    for name in todo:
        steps = max(LOG_EVERY, math.floor(args.minutes * 60 / timed[name] / LOG_EVERY) * LOG_EVERY)
        start = time.perf_counter()
        runner.run(recipe_config(name, steps), progress=False, figures=False, echo=lambda s: None)
        rows[name] = _row(name, timed[name], steps, time.perf_counter() - start)
        _write(rows)
        print(f"{name}: done, {rows[name]}", flush=True)
    print(write_table(rows, args.minutes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
