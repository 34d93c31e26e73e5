"""Sparsity: a sparse (spike-and-slab-like) prior with the per-dimension MMD.

Mathieu et al. (2019), sparsity experiment: with p(z) = Π_d [γ·N(0, 0.05²) + (1−γ)·N(0, 1)], γ = 0.8, and the
per-dimension IMQ MMD weighted by α, the encoder means become sparse (higher
normalised Hoyer score) as α grows; with γ = 0 (a Gaussian prior) they do
not. One vmapped sweep trains γ ∈ {0, 0.8} × α × β × seeds (γ is a traced
prior parameter).

Data: the ``paper`` profile is the published setting — Fashion-MNIST at
32×32 with the DCGAN-style network — and refuses to run unless the
environment variable ``DECOMPVAE_FASHION_MNIST`` names the directory of its
IDX files. The ``cpu`` and ``tiny`` profiles substitute scikit-learn's 8×8
digits (bundled, no download) and an MLP, and their summaries say so.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from decompvae.config import Config
from decompvae.regularisers import SINGLE
from decompvae.reproduce._common import (
    Context,
    aggregate,
    ci_plot,
    markdown_table,
    member_slices,
    pyplot,
    train,
    write_csv,
)
from decompvae.metrics.suite import EvalSizes, make_evaluator
from decompvae.reproduce._stats import (
    claim,
    paired_by_seed,
    paired_differences,
    paired_effect,
    verdict_section,
)

TITLE = "Sparsity: sparse prior and per-dimension MMD"

#: Environment variable naming the Fashion-MNIST directory for the paper profile.
FASHION_MNIST_ENV = "DECOMPVAE_FASHION_MNIST"

#: The published α of the sparsity experiment (src/experimental_settings/sparsity.sh); α here = α there (docs/guide.md).
PUBLISHED_ALPHA = 100.0

PROFILES = {
    "tiny": {"data": "digits", "network": "mlp", "hidden": [16], "steps": 3, "batch": 32, "lr": 1e-3,
             "betas": [1.0], "alphas": [0.0, 100.0], "gammas": [0.0, 0.8], "seeds": 2},
    # Substitute data and network (no download): scikit-learn's digits and an MLP. The per-dimension MMD costs
    # B²·D per member and step: batch 64 and one β keep the profile short. The α grid holds the published α = 100
    # and the values below it where an earlier run of this profile saw the trend change.
    "cpu": {"data": "digits", "network": "mlp", "hidden": [256], "steps": 1000, "batch": 64, "lr": 1e-3,
            "betas": [1.0], "alphas": [0.0, 1.0, 3.0, 10.0, 30.0, 100.0], "gammas": [0.0, 0.8], "seeds": 10},
    # Published: Fashion-MNIST at 32×32, the DCGAN network with BatchNorm, batch 500, 80 epochs of 60,000 images
    # (9,600 steps), lr 5e-4, D = 50, Laplace likelihood scale 0.1, β = 1, α ∈ {0, 100}, γ ∈ {0, 0.8}.
    "paper": {"data": "fashion_mnist", "network": "fashion", "hidden": None, "steps": 9600, "batch": 500,
              "lr": 5e-4, "betas": [1.0], "alphas": [0.0, 100.0], "gammas": [0.0, 0.8], "seeds": 10},
}

METRICS = ["hoyer", "recon", "overlap_mi", "kl"]
SPARSE_GAMMA = 0.8
#: δ: the smallest Hoyer difference of interest.
SMALLEST_EFFECT = 0.05
#: The class-means figure shows this seed at the largest α of the grid (chosen before the run).
SHOWN_SEED = 0
VERDICT_RULE = (
    "at the profile's largest α (the published α = 100 in the cpu and paper profiles) and its first β, seed-paired "
    "with 95% paired t intervals over the seeds: (1) the sparse prior's (γ = 0.8) Hoyer score rises from α = 0 "
    "(δ = 0.05); (2) it rises more than the Gaussian prior's (γ = 0), i.e. the paired difference of the two rises is "
    "positive (δ = 0.05). Each: reproduced if the interval excludes 0 upwards, NOT reproduced if it rules out δ, "
    "inconclusive at this budget otherwise. Both: reproduced; one: partly. Every other α is reported, not judged.")
#: Classes shown in the per-class bar chart.
SHOWN_CLASSES = (0, 1, 4, 7)
LATENT_DIM = 50


def make_config(settings: dict, *, require_files: bool = True) -> tuple[Config, str]:
    """The sweep of one profile and a description of its data.

    Args:
      settings: a profile.
      require_files: the ``paper`` profile needs Fashion-MNIST; when False
        (``--print-config``) a missing directory is shown as
        ``$DECOMPVAE_FASHION_MNIST`` instead of raising.

    Raises:
      FileNotFoundError: the profile needs Fashion-MNIST and ``DECOMPVAE_FASHION_MNIST`` does not name a
        directory; substitutes are the ``cpu`` profile's business.
    """
    if settings["data"] == "fashion_mnist":
        path = os.environ.get(FASHION_MNIST_ENV)
        if not path or not os.path.isdir(path):
            if require_files:
                raise FileNotFoundError(
                    f"the sparsity 'paper' profile needs Fashion-MNIST: set {FASHION_MNIST_ENV} to the directory of "
                    f"its IDX files (train-images-idx3-ubyte[.gz] …; got {path!r}). Without it, run --profile cpu, "
                    "which substitutes scikit-learn's digits and says so")
            path = f"${FASHION_MNIST_ENV}"
        data = {"name": "fashion_mnist", "path": path, "image_size": 32, "eval_points": 2000}
        described = "Fashion-MNIST resized to 32×32 (60,000 train; 2,000 test images evaluated)"
    else:
        data = {"name": "digits", "eval_points": 297}
        described = ("scikit-learn digits (8×8, 1,500 train / 297 test, pixels in [0, 1]) — a substitute for the "
                     "published Fashion-MNIST, which cannot be downloaded here")
    config = Config.from_dict({
        "data": data,
        "model": {"network": settings["network"], "latent_dim": LATENT_DIM, "hidden": settings["hidden"],
                  "likelihood": "laplace", "likelihood_scale": 0.1, "posterior": "gaussian_softplus",
                  "prior": "sparse", "regulariser": "mmd"},
        "train": {"steps": settings["steps"], "batch_size": settings["batch"], "learning_rate": settings["lr"],
                  "log_every": min(100, settings["steps"]), "checkpoint_every": max(500, min(100, settings["steps"]))},
        "sweep": {"beta": settings["betas"], "alpha": settings["alphas"], "prior": {"gamma": settings["gammas"]},
                  "seed": list(range(settings["seeds"]))},
    })
    return config, described


def configs(settings: dict, *, require_files: bool = True) -> dict:
    """``{run name: Config}``: the (γ, β, α, seed) grid as one vmapped sweep."""
    return {"sparse": make_config(settings, require_files=require_files)[0]}


def run(ctx: Context, settings: dict) -> None:
    config, described = make_config(settings)
    result = train(ctx, config, "sparse")
    setup = result.setup
    n_eval = setup.data.eval_x.shape[0]
    sizes = EvalSizes(eval_points=n_eval, overlap_points=min(n_eval, 500))
    member_metrics = make_evaluator(setup, sizes, ("terms", "overlap", "hoyer"))
    rows, params_of = [], {}
    for i, member, params, hyper, diverged_at in member_slices(result):
        row = {"member": i, "gamma": member.prior["gamma"], "beta": member.beta, "alpha": member.alpha[SINGLE],
               "seed": member.seed, "diverged_at": diverged_at}
        row.update(member_metrics(jax.random.key(i), params, hyper))
        rows.append(row)
        params_of[i] = params
    write_csv(ctx.results_dir / "metrics.csv", rows)
    groups = aggregate(rows, ["gamma", "beta", "alpha"], METRICS)
    write_csv(ctx.results_dir / "groups.csv", groups)
    shown = {"beta": settings["betas"][0], "alpha": max(settings["alphas"]), "seed": SHOWN_SEED}
    class_means = {}
    for r in rows:
        if all(r[k] == v for k, v in shown.items()):
            codes = np.asarray(setup.encode(params_of[r["member"]], setup.data.eval_x)[0])
            labels = np.asarray(setup.data.eval_labels)
            class_means[r["gamma"]] = np.stack([np.abs(codes[labels == c]).mean(0) for c in range(10)])
    _figures(ctx, settings, groups, shown, class_means)
    _summary(ctx, settings, config, described, rows, groups, shown)


def _figures(ctx, settings, groups, shown, class_means) -> None:
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
        ax.set(xlabel="α (MMD weight; α here = α published)", ylabel=name)
        ax.legend(fontsize=7)
    fig.suptitle("mean ± 95% CI over seeds")
    fig.tight_layout()
    fig.savefig(ctx.results_dir / "sparsity.png", dpi=100)
    plt.close(fig)
    gammas = sorted(class_means, reverse=True)
    fig, axes = plt.subplots(len(SHOWN_CLASSES), len(gammas), figsize=(5.5 * len(gammas), 1.9 * len(SHOWN_CLASSES)),
                             sharex=True, squeeze=False)
    top = float(np.max([v.max() for v in class_means.values()])) * 1.05
    for col, gamma in enumerate(gammas):
        m = class_means[gamma]
        for row, c in enumerate(SHOWN_CLASSES):
            ax = axes[row, col]
            ax.bar(np.arange(m.shape[1]), m[c], color=f"C{col}")
            ax.set_ylim(0, top)
            ax.set_ylabel(f"class {c}\nmean |μ_d|", fontsize=8)
        axes[0, col].set_title(f"γ = {gamma:g} (β = {shown['beta']:g}, α = {shown['alpha']:g}, seed {shown['seed']})",
                               fontsize=9)
        axes[-1, col].set_xlabel("latent dimension d")
    fig.tight_layout()
    fig.savefig(ctx.results_dir / "class_means.png", dpi=90)
    plt.close(fig)


def judged_claims(rows: list[dict], beta: float, alpha: float) -> list:
    """The two claims of :data:`VERDICT_RULE` at (β, α)."""
    at = lambda gamma, a: {"gamma": gamma, "beta": beta, "alpha": a}  # noqa: E731
    rise_sparse = paired_by_seed(rows, "hoyer", at(SPARSE_GAMMA, alpha), at(SPARSE_GAMMA, 0.0))
    rise_gauss = paired_by_seed(rows, "hoyer", at(0.0, alpha), at(0.0, 0.0))
    seeds = sorted(set(rise_sparse) & set(rise_gauss))
    return [
        claim(f"Hoyer, γ = {SPARSE_GAMMA:g}: α = {alpha:g} − α = 0", rise_sparse.values(),
              direction=+1, smallest_effect=SMALLEST_EFFECT),
        claim(f"Hoyer: [γ = {SPARSE_GAMMA:g}: α = {alpha:g} − 0] − [γ = 0: α = {alpha:g} − 0]",
              [rise_sparse[s] - rise_gauss[s] for s in seeds], direction=+1, smallest_effect=SMALLEST_EFFECT),
    ]


def reported_effects(rows: list[dict], settings: dict) -> list:
    """Every α against α = 0 for both priors, and the sparse prior against the Gaussian one at each α."""
    out = []
    for beta in settings["betas"]:
        for gamma in settings["gammas"]:
            for alpha in settings["alphas"]:
                if alpha > 0:
                    out.append((f"Hoyer, γ = {gamma:g}, β = {beta:g}: α = {alpha:g} − α = 0", paired_effect(
                        paired_differences(rows, "hoyer", {"gamma": gamma, "beta": beta, "alpha": alpha},
                                           {"gamma": gamma, "beta": beta, "alpha": 0.0}))))
        for alpha in settings["alphas"]:
            for metric in ("hoyer", "recon"):
                out.append((f"{metric}, β = {beta:g}, α = {alpha:g}: γ = {SPARSE_GAMMA:g} − γ = 0", paired_effect(
                    paired_differences(rows, metric, {"gamma": SPARSE_GAMMA, "beta": beta, "alpha": alpha},
                                       {"gamma": 0.0, "beta": beta, "alpha": alpha}))))
    return out


def previous_rule(groups: list[dict], settings: dict) -> str:
    """The verdict of the rule used before the paired design (disjoint unpaired CIs, best α)."""
    ok_sparse, ok_gauss = True, True
    for beta in settings["betas"]:
        for gamma in settings["gammas"]:
            pick = {g["alpha"]: g for g in groups if (g["gamma"], g["beta"]) == (gamma, beta)}
            base = pick[0.0]
            above = lambda g: g["hoyer_mean"] - g["hoyer_ci"] > base["hoyer_mean"] + base["hoyer_ci"]  # noqa: E731
            best = max((a for a in pick if a > 0), key=lambda a: pick[a]["hoyer_mean"])
            if gamma > 0:
                ok_sparse &= above(pick[best])
            else:
                ok_gauss &= not above(pick[best])
    return "reproduced" if ok_sparse and ok_gauss else "NOT reproduced"


def _summary(ctx, settings, config, described, rows, groups, shown) -> None:
    alphas, b = settings["alphas"], config.train.batch_size
    beta, alpha = settings["betas"][0], max(alphas)
    claims = judged_claims(rows, beta, alpha)
    net = "an MLP with hidden " + str(settings["hidden"]) if settings["network"] == "mlp" else \
        "the published DCGAN-style network with BatchNorm"
    lines = [
        f"# {TITLE} — profile `{ctx.profile}`",
        "",
        f"Command: `decompvae reproduce sparsity --profile {ctx.profile}`. Data: {described}. D = {LATENT_DIM}, "
        f"{net}, Laplace likelihood with scale 0.1 (the paper's choice for Fashion-MNIST), Gaussian encoder with "
        "σ = softplus(·) + 1e-6, prior Π_d [γ·N(0, 0.05²) + (1−γ)·N(0, 1)], divergence: per-dimension IMQ MMD "
        f"(C = 2s, s ∈ {{0.1, 0.2, 0.5, 1, 2, 5}}); batch {b}, lr {settings['lr']:g} (AMSGrad), "
        f"{settings['steps']} steps; γ ∈ {settings['gammas']}, β ∈ {settings['betas']}, α ∈ {alphas} (α here is "
        f"the published α: both add α·D once per point, docs/guide.md; published α = {PUBLISHED_ALPHA:g}), "
        f"{settings['seeds']} seeds per point, one vmapped sweep.",
        "",
        "Normalised Hoyer sparsity of the encoder means over the held-out set, held-out reconstruction "
        "E log p(x|z), I_q(x;z) and E KL(q(z|x) ‖ p(z)) (Monte-Carlo for the mixture prior).",
        "",
        *verdict_section(VERDICT_RULE, claims, "Reported, not judged (seed-paired):",
                         reported_effects(rows, settings)),
        "",
        "Means ± 95% CI (t) over seeds:",
        "",
        markdown_table(groups, ["gamma", "beta", "alpha"], METRICS, {"overlap_mi": "I_q(x;z)", "kl": "KL(q(z|x)‖p)"}),
        "",
        "![sparsity](sparsity.png)",
        "",
        f"Per-class mean |μ_d| of the networks with seed {shown['seed']} at β = {shown['beta']:g}, α = "
        f"{shown['alpha']:g}, for both priors (the seed and point were fixed before the run, not picked by score):",
        "",
        "![class means](class_means.png)",
        "",
        "The rule before this version (the best α > 0 raises the sparse prior's Hoyer score above α = 0 with "
        "disjoint unpaired 95% intervals at every β, and does not for the Gaussian prior) would say: "
        f"{previous_rule(groups, settings)}.",
    ]
    (ctx.results_dir / "summary.md").write_text("\n".join(lines) + "\n")
