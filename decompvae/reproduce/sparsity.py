"""Sparsity: a sparse (spike-and-slab-like) prior with the per-dimension MMD.

SPEC §8: with p(z) = Π_d [γ·N(0, 0.05²) + (1−γ)·N(0, 1)], γ = 0.8, and the
per-dimension IMQ MMD weighted by α, the encoder means become sparse (higher
normalised Hoyer score) as α grows; with γ = 0 (a Gaussian prior) they do
not. One vmapped sweep trains γ ∈ {0, 0.8} × α × β × seeds (γ is a traced
prior parameter).

Data: scikit-learn's 8×8 digits by default (bundled, no download); the paper
profile uses Fashion-MNIST (32×32, the conv32 network) when the environment
variable ``DECOMPVAE_FASHION_MNIST`` names the directory of its IDX files,
and otherwise digits resized to 32×32.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from decompvae.config import Config
from decompvae.reproduce._common import (
    Context,
    aggregate,
    ci_plot,
    format_value,
    markdown_table,
    member_slices,
    pyplot,
    train,
    write_csv,
)
from decompvae.reproduce._evaluate import make_member_metrics

TITLE = "Sparsity: sparse prior and per-dimension MMD"

#: Environment variable naming the Fashion-MNIST directory for the paper profile.
FASHION_MNIST_ENV = "DECOMPVAE_FASHION_MNIST"

PROFILES = {
    "tiny": {"data": "digits", "network": "mlp", "hidden": [16], "steps": 3, "batch": 32, "lr": 1e-3,
             "betas": [1.0], "alphas": [0.0, 10.0], "gammas": [0.0, 0.8], "seeds": 2},
    # The per-dimension MMD costs B²·D per member and step: batch 64 and one β keep the cpu profile short. The α
    # grid is the second one tried: the first, {0, 10, 100}, put its largest α where the Gaussian prior's
    # reconstruction collapsed (digits have 64 pixels, Fashion-MNIST 1,024, so the data term is 16× smaller
    # against the same MMD), which left one useful α; this grid resolves the rise and fall.
    "cpu": {"data": "digits", "network": "mlp", "hidden": [256], "steps": 1000, "batch": 64, "lr": 1e-3,
            "betas": [1.0], "alphas": [0.0, 1.0, 3.0, 10.0, 30.0], "gammas": [0.0, 0.8], "seeds": 10},
    # Published: batch 500, 80 epochs of 60,000 images, lr 5e-4, D = 50, Laplace scale 0.1. The α grid is this
    # code's choice (published scale α·B = 0, 100, 500, 1000 at B = 500), not a value read from the paper.
    "paper": {"data": "fashion_mnist", "network": "conv32", "hidden": None, "steps": 9600, "batch": 500, "lr": 5e-4,
              "betas": [0.1, 1.0, 5.0], "alphas": [0.0, 0.2, 1.0, 2.0], "gammas": [0.0, 0.8], "seeds": 10},
}

METRICS = ["hoyer", "recon", "overlap_mi", "kl"]
#: Classes shown in the per-class bar chart.
SHOWN_CLASSES = (0, 1, 4, 7)
LATENT_DIM = 50


def make_config(settings: dict) -> tuple[Config, str]:
    """The sweep of one profile and a description of its data."""
    data: dict = {"name": "digits", "eval_points": 297}
    described = "scikit-learn digits (8×8, 1,500 train / 297 test, pixels in [0, 1])"
    if settings["network"] == "conv32":
        data["image_size"] = 32
        described = "scikit-learn digits resized to 32×32 (1,500 train / 297 test)"
    if settings["data"] == "fashion_mnist" and os.environ.get(FASHION_MNIST_ENV):
        data = {"name": "fashion_mnist", "path": os.environ[FASHION_MNIST_ENV], "image_size": 32, "eval_points": 2000}
        described = "Fashion-MNIST resized to 32×32 (60,000 train; 2,000 test images evaluated)"
    elif settings["data"] == "fashion_mnist":
        described += f" — Fashion-MNIST was not given (set {FASHION_MNIST_ENV})"
    config = Config.from_dict({
        "data": data,
        "model": {"network": settings["network"], "latent_dim": LATENT_DIM, "hidden": settings["hidden"],
                  "likelihood": "laplace", "likelihood_scale": 0.1, "prior": "sparse", "divergence": "mmd"},
        "train": {"steps": settings["steps"], "batch_size": settings["batch"], "learning_rate": settings["lr"],
                  "log_every": min(100, settings["steps"]), "checkpoint_every": max(500, min(100, settings["steps"]))},
        "sweep": {"beta": settings["betas"], "alpha": settings["alphas"], "prior": {"gamma": settings["gammas"]},
                  "seed": list(range(settings["seeds"]))},
    })
    return config, described


def run(ctx: Context, settings: dict) -> None:
    config, described = make_config(settings)
    result = train(ctx, config, "sparse")
    built = result.built
    n_eval = built.bundle.eval_x.shape[0]
    member_metrics = make_member_metrics(built, eval_points=n_eval, overlap_points=min(n_eval, 500), hoyer=True)
    rows, params_of = [], {}
    for i, member, params, hyper in member_slices(result):
        row = {"member": i, "gamma": member["prior.gamma"], "beta": member["beta"], "alpha": member["alpha"],
               "alpha_published": member["alpha"] * config.train.batch_size, "seed": member["seed"],
               "diverged_at": int(result.state.diverged_at[i])}
        row.update(member_metrics(jax.random.key(i), params, hyper))
        rows.append(row)
        params_of[i] = params
    write_csv(ctx.results_dir / "metrics.csv", rows)
    groups = aggregate(rows, ["gamma", "beta", "alpha"], METRICS)
    write_csv(ctx.results_dir / "groups.csv", groups)
    best = max((g for g in groups if g["gamma"] > 0), key=lambda g: g["hoyer_mean"])
    best_row = max((r for r in rows if (r["gamma"], r["beta"], r["alpha"]) == (best["gamma"], best["beta"], best["alpha"])),
                   key=lambda r: r["hoyer"])
    ref_row = next(r for r in rows if r["gamma"] == 0 and r["beta"] == best_row["beta"]
                   and r["alpha"] == best_row["alpha"] and r["seed"] == best_row["seed"])
    class_means = {}
    for r in (best_row, ref_row):
        codes = np.asarray(built.encoder.apply(params_of[r["member"]]["encoder"], built.bundle.eval_x)[0])
        labels = np.asarray(built.bundle.eval_labels)
        class_means[r["gamma"]] = np.stack([np.abs(codes[labels == c]).mean(0) for c in range(10)])
    _figures(ctx, settings, groups, best_row, class_means)
    _summary(ctx, settings, config, described, groups, best_row)


def _figures(ctx, settings, groups, best_row, class_means) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for gamma in settings["gammas"]:
        for beta in settings["betas"]:
            g = [x for x in groups if x["gamma"] == gamma and x["beta"] == beta]
            style = "-" if gamma > 0 else "--"
            for ax, metric in zip(axes, ["hoyer", "recon"]):
                ci_plot(ax, range(len(g)), g, metric, label=f"γ={gamma:g}, β={beta:g}", linestyle=style)
    for ax, name in zip(axes, ["normalised Hoyer sparsity", "held-out reconstruction log p(x|z)"]):
        ax.set_xticks(range(len(settings["alphas"])), [f"{a:g}" for a in settings["alphas"]])
        ax.set(xlabel="α (MMD weight, this code's scale)", ylabel=name)
        ax.legend(fontsize=7)
    fig.suptitle("mean ± 95% CI over seeds")
    fig.tight_layout()
    fig.savefig(ctx.results_dir / "sparsity.png", dpi=100)
    plt.close(fig)
    gammas = sorted(class_means, reverse=True)
    fig, axes = plt.subplots(len(SHOWN_CLASSES), len(gammas), figsize=(5.5 * len(gammas), 1.9 * len(SHOWN_CLASSES)),
                             sharex=True, squeeze=False)
    for col, gamma in enumerate(gammas):
        m = class_means[gamma]
        for row, c in enumerate(SHOWN_CLASSES):
            ax = axes[row, col]
            ax.bar(np.arange(m.shape[1]), m[c], color=f"C{col}")
            ax.set_ylim(0, float(np.max([v.max() for v in class_means.values()])) * 1.05)
            ax.set_ylabel(f"class {c}\nmean |μ_d|", fontsize=8)
        axes[0, col].set_title(f"γ = {gamma:g} (β = {best_row['beta']:g}, α = {best_row['alpha']:g}, "
                               f"seed {best_row['seed']})", fontsize=9)
        axes[-1, col].set_xlabel("latent dimension d")
    fig.tight_layout()
    fig.savefig(ctx.results_dir / "class_means.png", dpi=90)
    plt.close(fig)


def _summary(ctx, settings, config, described, groups, best_row) -> None:
    alphas, b = settings["alphas"], config.train.batch_size
    # (gamma, beta) -> (best α > 0, its gain, raised with CIs apart, change at the largest α, CIs apart either way)
    checks = {}
    for beta in settings["betas"]:
        for gamma in settings["gammas"]:
            pick = {g["alpha"]: g for g in groups if (g["gamma"], g["beta"]) == (gamma, beta)}
            base = pick[0.0]
            above = lambda g: g["hoyer_mean"] - g["hoyer_ci"] > base["hoyer_mean"] + base["hoyer_ci"]  # noqa: E731
            below = lambda g: g["hoyer_mean"] + g["hoyer_ci"] < base["hoyer_mean"] - base["hoyer_ci"]  # noqa: E731
            best_alpha = max((a for a in pick if a > 0), key=lambda a: pick[a]["hoyer_mean"])
            last = pick[max(alphas)]
            checks[(gamma, beta)] = (best_alpha, pick[best_alpha]["hoyer_mean"] - base["hoyer_mean"],
                                     above(pick[best_alpha]), last["hoyer_mean"] - base["hoyer_mean"],
                                     above(last) or below(last))
    sparse = [v for (g, _), v in checks.items() if g > 0]
    gauss = [v for (g, _), v in checks.items() if g == 0]
    reproduced = all(v[2] for v in sparse) and not any(v[2] for v in gauss)
    finding = "; ".join(
        f"γ = {g:g}, β = {bt:g}: best α = {v[0]:g} changes Hoyer by {v[1]:+.3f} "
        f"({'CI-separated' if v[2] else 'CIs overlap'}), the largest α = {max(alphas):g} by {v[3]:+.3f} "
        f"({'CI-separated' if v[4] else 'CIs overlap'})"
        for (g, bt), v in checks.items())
    vs_gauss = []  # the sparse prior against the Gaussian one at each (β, α)
    if 0.0 in settings["gammas"] and len(settings["gammas"]) > 1:
        for g in groups:
            if g["gamma"] > 0:
                ref = next(r for r in groups if (r["gamma"], r["beta"], r["alpha"]) == (0.0, g["beta"], g["alpha"]))
                vs_gauss.append(g["hoyer_mean"] - g["hoyer_ci"] > ref["hoyer_mean"] + ref["hoyer_ci"])
    net = "an MLP with hidden " + str(settings["hidden"]) if settings["network"] == "mlp" else "the conv32 network"
    lines = [
        f"# {TITLE} — profile `{ctx.profile}`",
        "",
        f"Command: `decompvae reproduce sparsity --profile {ctx.profile}`. Data: {described}. D = {LATENT_DIM}, "
        f"{net}, Laplace likelihood with scale 0.1 (the paper's choice for Fashion-MNIST, kept for the [0, 1] digits), "
        "Gaussian encoder, prior Π_d [γ·N(0, 0.05²) + (1−γ)·N(0, 1)], divergence: per-dimension IMQ MMD "
        f"(C = 2s, s ∈ {{0.1, 0.2, 0.5, 1, 2, 5}}); batch {b}, lr {settings['lr']:g} (AMSGrad), "
        f"{settings['steps']} steps; γ ∈ {settings['gammas']}, β ∈ {settings['betas']}, α ∈ {alphas} "
        f"(published scale: α·B = {[a * b for a in alphas]} at B = {b}), {settings['seeds']} seeds per point, "
        "one vmapped sweep.",
        "",
        "Normalised Hoyer sparsity of the encoder means over the held-out set, held-out reconstruction "
        "E log p(x|z), I_q(x;z) and E KL(q(z|x) ‖ p(z)) (Monte-Carlo for the mixture prior). Mean ± 95% CI (t) "
        "over seeds:",
        "",
        markdown_table(groups, ["gamma", "beta", "alpha"], METRICS, {"overlap_mi": "I_q(x;z)", "kl": "KL(q(z|x)‖p)"}),
        "",
        "![sparsity](sparsity.png)",
        "",
        f"Per-class mean |μ_d| of the sparsest γ = 0.8 model (β = {best_row['beta']:g}, α = {best_row['alpha']:g}, "
        f"seed {best_row['seed']}, Hoyer {format_value(best_row['hoyer'])}) and of the γ = 0 model with the same "
        "β, α and seed:",
        "",
        "![class means](class_means.png)",
        "",
        f"**Finding ({'reproduced' if reproduced else 'NOT reproduced'}; criterion: at every β some α > 0 raises the "
        "Hoyer score of the sparse prior (γ = 0.8) above α = 0 with non-overlapping 95% CIs, and no α > 0 does so for "
        f"the Gaussian prior (γ = 0)):** {finding}.",
        "",
        f"At fixed (β, α) the sparse prior's Hoyer score is above the Gaussian prior's with non-overlapping 95% CIs "
        f"at {sum(vs_gauss)} of {len(vs_gauss)} points.",
    ]
    (ctx.results_dir / "summary.md").write_text("\n".join(lines) + "\n")
