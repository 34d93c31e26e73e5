"""The field's methods side by side at a CPU budget: ``python experiments/compare_methods.py``.

Trains each grid of ``configs/methods/*.toml`` (one compiled sweep per method, every value × seed
inside it) on procedurally rendered dSprites with a reduced budget, scores every network with
FactorVAE (disentanglement_lib protocol, reduced votes) and MIG through the one evaluation suite
(:func:`decompvae.metrics.suite.make_evaluator`), and writes ``experiments/results/methods-cpu/``:
``metrics.csv`` (one row per network), ``groups.csv`` (mean and 95% t interval over seeds per
method and value), ``methods.png`` and ``summary.md``. Runs resume from ``runs/methods-cpu/``.

The budget (stated in the summary): a dense encoder/decoder (hidden 128) instead of the convnet,
``STEPS`` steps instead of 300,000, Adam lr 5e-4 instead of 1e-4 (short runs), 3 seeds instead of
50, AnnealedVAE's capacity schedule scaled to reach C_max after a third of the run (as 100k of
300k steps), reduced metric sample sizes. Nothing here is a verdict: the numbers describe what
these settings give at this budget.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from decompvae import runner
from decompvae.evaluate import udr_of_run
from decompvae.config import load_config
from decompvae.methods import METHODS
from decompvae.metrics.suite import EvalSizes, make_evaluator
from decompvae.plots import pyplot
from decompvae.reproduce._common import aggregate, ci_plot, markdown_table, member_slices, write_csv

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["beta_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii", "factor_vae", "annealed_vae", "info_vae",
         "decomposition"]
STEPS = 1000
SEEDS = 3
SIZES = EvalSizes(eval_points=500, overlap_points=500, variance_points=2000, train_votes=300, eval_votes=200,
                  points_per_vote=64, paper_votes=200, paper_points_per_vote=200, paper_pool=10_000, mig_points=3000)
METRICS = ["factor_vae_dlib", "factor_vae_paper", "mig", "udr", "active_dims", "recon", "kl"]


def method_config(name: str, runs: Path):
    """The method's config at the CPU budget."""
    overrides = ["model.network=mlp", "model.hidden=[128]", f"train.steps={STEPS}", "train.learning_rate=5e-4",
                 "train.log_every=100", "train.checkpoint_every=500", f"sweep.seed={list(range(SEEDS))}",
                 "data.eval_points=500", f"output_dir={runs / name}"]
    if name == "annealed_vae":
        overrides.append(f"model.divergence_options.capacity.num_steps={STEPS // 3}")
    return load_config(ROOT / "configs" / "methods" / f"{name}.toml", overrides)


def varied_value(name: str, member: dict) -> float:
    """The published symbol the method's grid varies (β, γ, λ_od, C_max), for this member."""
    if name in ("beta_vae", "decomposition"):
        return member["beta"]
    if name == "beta_tcvae":
        return member["alpha.total_correlation"] + 1.0  # α_tc = β − 1
    if name in ("dip_vae_i", "dip_vae_ii"):
        return member["alpha.dip_offdiagonal"]
    if name == "factor_vae":
        return member["alpha.factor_vae"]
    if name == "annealed_vae":
        return member["divergence_params.capacity.c_max"]
    return member["alpha.info_vae"] + 1.0  # λ = α_info + 1 at α_Info = 0


def evaluate(name: str, result) -> list[dict]:
    evaluator = make_evaluator(result.setup, SIZES, ("terms", "factor_vae", "mig"))
    udr = udr_of_run(result.setup, result.state, result.hyper)  # within each value's seeds, no labels used
    rows = []
    for i, member, params, hyper in member_slices(result):
        row = {"method": name, "symbol": METHODS[name].varied[0], "value": varied_value(name, member),
               "seed": member["seed"], "diverged_at": int(result.state.diverged_at[i])}
        row.update(evaluator(jax.random.key(2000 + i), params, hyper))
        row["udr"] = udr.get(i, float("nan"))
        rows.append(row)
    return rows


def figure(path: Path, groups: list[dict]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax, metric, label in zip(axes, ["factor_vae_dlib", "mig"], ["FactorVAE score (disentanglement_lib)", "MIG"]):
        offset = 0
        ticks, names = [], []
        for name in NAMES:
            g = [x for x in groups if x["method"] == name]
            xs = offset + np.arange(len(g))
            ci_plot(ax, xs, g, metric, label=name)
            ticks += list(xs)
            names += [f"{g[0]['symbol']}={x['value']:g}" for x in g]
            offset += len(g) + 1
        ax.set_xticks(ticks, names, rotation=90, fontsize=6)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"mean ± 95% CI over {SEEDS} seeds; MLP, {STEPS} steps on procedural dSprites", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(path: Path, groups: list[dict], seconds: dict) -> None:
    lines = [
        "# The methods side by side — cpu budget", "",
        f"Command: `python experiments/compare_methods.py`. Each method's `configs/methods/<name>.toml` grid "
        f"(disentanglement_lib `unsupervised_study_v1` values) trained as one vmapped sweep on procedurally rendered "
        f"dSprites, with the budget reduced: dense encoder/decoder (hidden 128) instead of the convnet, {STEPS} steps "
        f"(published 300,000), Adam lr 5e-4 (published 1e-4), batch 64, {SEEDS} seeds per value, AnnealedVAE's "
        f"capacity reaching C_max at step {STEPS // 3} (a third of the run, as published). FactorVAE score: "
        f"disentanglement_lib protocol with {SIZES.variance_points} variance points and "
        f"{SIZES.train_votes}/{SIZES.eval_votes} votes of {SIZES.points_per_vote} (the paper's protocol: {SIZES.paper_votes} votes of L = {SIZES.paper_points_per_vote} from a pool of {SIZES.paper_pool}); MIG on {SIZES.mig_points} points "
        "(20 bins). Not a verdict: what these settings give at this budget.", "",
        "Wall time (train + evaluate, seconds): " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        + f"; total {sum(seconds.values()):.0f} s.", "",
        markdown_table(groups, ["method", "symbol", "value"], METRICS,
                       {"factor_vae_dlib": "FactorVAE (dlib)", "factor_vae_paper": "FactorVAE (paper)", "mig": "MIG", "udr": "UDR", "active_dims": "active dims",
                        "recon": "recon", "kl": "KL"}),
        "", "![methods](methods.png)", "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=NAMES, help="methods to run (default all)")
    args = parser.parse_args(argv)
    results, runs = ROOT / "experiments" / "results" / "methods-cpu", ROOT / "runs" / "methods-cpu"
    results.mkdir(parents=True, exist_ok=True)
    rows, seconds = [], {}
    for name in args.only:
        start = time.perf_counter()
        result = runner.run(method_config(name, runs), progress=False, figures=False, echo=print)
        rows += evaluate(name, result)
        seconds[name] = time.perf_counter() - start
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
        write_csv(results / "metrics.csv", rows)
    groups = aggregate(rows, ["method", "symbol", "value"], METRICS)
    write_csv(results / "groups.csv", groups)
    figure(results / "methods.png", groups)
    summary(results / "summary.md", groups, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
