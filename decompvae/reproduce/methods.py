"""The field's methods side by side on dSprites, on the calibrated recipe (no claim, so no verdict).

Every registered method (:data:`decompvae.methods.METHODS`: β-VAE, AnnealedVAE, FactorVAE, DIP-VAE-I/II,
β-TCVAE and its three-term form, InfoVAE, WAE-MMD and the paper's decomposition objective, Mathieu et al.
2019, Eq. 2) is trained at two values of the symbol its published grid varies — the value its paper used on
dSprites and one stronger (:data:`WEIGHTS`) — with several seeds, one vmapped sweep per method. Every network is
evaluated along the way (its training curve) and at the end: MIG and FactorVAE with disentanglement_lib's
protocol, DCI, SAP, modularity and explicitness (``dlib_suite``), the label-free scores of the codes
(``unsupervised``), the reconstruction and the KL. The published dSprites scores sit beside ours where they exist
(:data:`decompvae.reproduce.calibration.PUBLISHED`), and each method's stronger value is set against its published
one, seed-paired, with the change its seeds can detect (:func:`value_effects`).

AnnealedVAE's capacity C = C_max·min(1, t/T) (Burgess et al. 2018, Eq. 8) reaches C_max after a third of the run,
T = steps / 3, as the published schedule does (T = 100,000 of 300,000 steps).

Profiles: ``tiny`` (smoke test), ``cpu`` (the calibrated recipe at 1,536,000 images per network, as the rebased
profiles; run it in shards, ``--shard I/6``) and ``paper`` (the published convnet for 20 epochs: a GPU job).
"""

from __future__ import annotations

import jax
import numpy as np

from decompvae.config import Config
from decompvae.evaluate import UDR_POINTS
from decompvae.methods import METHODS
from decompvae.metrics.suite import make_evaluator
from decompvae.metrics.udr import member_codes_and_kl, udr
from decompvae.reproduce import _dsprites
from decompvae.reproduce._common import (Context, aggregate, ci_plot, format_value, markdown_table, member_slices,
                                         pyplot, write_csv)
from decompvae.reproduce._curves import member_curves, without_curves, write_curves
from decompvae.reproduce._stats import PairedEffect, effects_table, paired_by_seed, paired_effect
from decompvae.reproduce.calibration import DLIB_SIZES, PUBLISHED, TINY_SIZES
from decompvae.sweep import Grid, Member
from decompvae.train import model_params

TITLE = "The methods side by side on dSprites (calibrated recipe)"

#: Method → (the value of its varied symbol its paper used on dSprites, one stronger), decided before the run.
#: β-VAE β = 4 (Higgins et al. 2017); AnnealedVAE C_max = 25 nats at γ = 1000 (Burgess et al. 2018; stronger is a
#: tighter capacity); FactorVAE γ = 40 and DIP-VAE λ_od = 10 (the middle of the grids Kim & Mnih 2018 and Kumar et
#: al. 2018 swept on dSprites); β-TCVAE β = 6 (Chen et al. 2018); InfoVAE λ = 1,000 and WAE-MMD λ = 10 (their
#: papers' MNIST values: neither reports dSprites; WAE's stronger 100 is its CelebA value); the decomposition
#: objective β = 1 with the anisotropic prior (the paper's dSprites setting, §4).
WEIGHTS = {"beta_vae": (4.0, 8.0), "annealed_vae": (25.0, 10.0), "factor_vae": (40.0, 100.0),
           "dip_vae_i": (10.0, 50.0), "dip_vae_ii": (10.0, 50.0), "beta_tcvae": (6.0, 10.0),
           "beta_tcvae_decomposed": (6.0, 10.0), "info_vae": (1000.0, 10_000.0), "wae_mmd": (10.0, 100.0),
           "decomposition": (1.0, 4.0)}
SEEDS = {"tiny": 1, "cpu": 3, "paper": 5}
SIZES = {"tiny": TINY_SIZES, "cpu": DLIB_SIZES, "paper": DLIB_SIZES._replace(dci_points=10_000)}
#: The tiny profile trains two methods (one with a discriminator in its train state, one with a step-dependent
#: schedule); the others run the whole registry.
METHOD_NAMES = {"tiny": ("factor_vae", "annealed_vae"), "cpu": tuple(WEIGHTS), "paper": tuple(WEIGHTS)}
#: The cpu profile trains the calibrated recipe at the rebased profiles' budget (:data:`decompvae.reproduce._dsprites.
#: CALIBRATED_CPU`: 24,000 steps × 64 = 1,536,000 images, 2.08 epochs, a curve point every 4,000 steps), as the
#: claims' experiments do. An earlier run at half of it (768,000 images, the calibration's 80 %-of-final-MIG point;
#: commit ec49243, 2026-12-07) took about 5.2 h in six shards on 2 cores: 3.8–5.1 min per network (training at 80–90
#: steps/s with its curve, then 1.9 min of final metrics) and 12.4 min for FactorVAE, whose discriminator (six layers
#: of 1,000, Kim & Mnih 2018) trains at 19 steps/s; that model gave 8.2 h for this budget. Measured at it on shard 0
#: (2026-12-07 20:26–21:36 UTC, Intel Xeon, 2 cores): about 69 min for ten networks, 5–6 min per VAE (about 4 min of
#: training at 95–105 steps/s with its curve, then about 2 min of final metrics) and 19 min for FactorVAE (23 steps/s):
#: the six shards (``--shard I/6``) then took 60–69 min each, about 6.5 h in all (2026-12-07/08), each network's
#: rows stored as it finishes.
PROFILES = _dsprites.rebased_profiles(seeds=SEEDS, sizes=SIZES, methods=METHOD_NAMES)

MEASURES = ("terms", "factor_vae_dlib", "mig", "dlib_suite", "unsupervised")
GROUP_BY = ["method", "symbol", "value"]
METRICS = ["mig", "factor_vae_dlib", "dci_disentanglement", "sap", "modularity", "udr", "gaussian_total_correlation",
           "active_dims", "recon", "kl"]
HEADERS = {"mig": "MIG", "factor_vae_dlib": "FactorVAE", "dci_disentanglement": "DCI", "sap": "SAP",
           "modularity": "modularity", "udr": "UDR", "gaussian_total_correlation": "TC (Gaussian, codes)",
           "active_dims": "active dims", "recon": "recon", "kl": "KL"}
#: The scores of the figure, one panel each (UDR where the seeds give it).
FIGURE_METRICS = ("mig", "factor_vae_dlib", "udr")
#: Row keys of each network's codes and per-dimension KL on the shared evaluation images (:func:`udr_inputs`), from
#: which the summary computes UDR across seeds (:func:`udr_rows`); metrics.csv leaves them out.
UDR_CODES, UDR_KL = "udr_codes", "udr_kl"
#: Decimals the stored codes keep: encoder means of order 1, so the UDR's standardised regressions see them to
#: about 1e-5, and a rows file holds about 0.16 MB a network at 1,000 images × 10 dimensions (measured).
UDR_DECIMALS = 5
#: Our names of the methods whose published dSprites scores :data:`PUBLISHED` holds.
PUBLISHED_AS = {"beta_vae": "beta_vae", "beta_tcvae": "beta_tcvae"}
#: The scores whose seed-paired change from a method's published value to its stronger one is reported.
PAIRED_METRICS = ("mig", "factor_vae_dlib")


def configs(settings: dict) -> dict:
    """``{method: Config}``: one vmapped sweep per method over its two values × seeds."""
    return {name: method_config(settings, name, WEIGHTS[name]) for name in settings["methods"]}


def method_config(settings: dict, name: str, values) -> Config:
    """The method's setting (:data:`decompvae.methods.METHODS`) on the profile's recipe, swept over ``values``."""
    method, steps = METHODS[name], settings["steps"]
    fill = {"dataset_size": 0, "latent_dim": 10}  # 0: N from the data set; D of the model
    options = {k: {o: fill[o] if v is None else v for o, v in opts.items()}
               for k, opts in method.regulariser_options.items()}
    if "capacity" in options:
        options["capacity"]["num_steps"] = max(1, steps // 3)
    source = {"prior_init": method.prior_init} if method.prior_init else {}
    config = _dsprites.base_dict(settings, prior=method.prior, sweep=method.at(values), **source)
    if method.regulariser:
        config["model"].update(regulariser=method.regulariser, regulariser_options=options,
                               regulariser_params=method.regulariser_params)
    config["train"].update(beta=method.beta, alpha=method.alpha or 0.0)
    return Config.from_dict(config)


def evaluate(ctx: Context, settings: dict, variant: str, result) -> list[dict]:
    """Final scores of every member of one method's sweep, each row with its training curve (``curve``)."""
    sizes = settings["sizes"]._replace(eval_points=settings["eval_points"])
    evaluator = make_evaluator(result.setup, sizes, MEASURES)
    curves = member_curves(result)
    codes, kl = udr_inputs(result)
    rows = []
    for local, (index, member, params, hyper, diverged_at) in enumerate(member_slices(result)):
        row = {"method": variant, "symbol": METHODS[variant].varied[0], "value": value_of(variant, member),
               "seed": member.seed, "member": index, "diverged_at": diverged_at,
               "images_seen": settings["steps"] * settings["batch"]}
        row.update(evaluator(jax.random.key(3000 + index), params, hyper))
        row["curve"] = curves.get(index, [])
        row[UDR_CODES], row[UDR_KL] = codes[local].tolist(), kl[local].tolist()
        rows.append(row)
        ctx.echo(f"[{ctx.name}/{ctx.profile}] evaluated {variant} member {index}")
    return rows


def udr_inputs(result) -> tuple[np.ndarray, np.ndarray]:
    """Each member's codes ``[M, N, D]`` (encoder means, rounded to :data:`UDR_DECIMALS`) and per-dimension KL
    ``[M, D]`` on the run's first N evaluation images, N = :data:`decompvae.evaluate.UDR_POINTS` (1,000, as
    disentanglement_lib) or all of them where the profile draws fewer.

    The evaluation images are drawn from the data key (``train.seed``), not the member's seed, so every shard and
    every method encodes the same images and :func:`udr_rows` can compare seeds trained in different shards.
    """
    x = result.setup.data.eval_x[:UDR_POINTS]
    codes, kl = member_codes_and_kl(jax.random.key(4000), result.setup, model_params(result.state), result.hyper, x)
    return np.round(codes.astype(np.float64), UDR_DECIMALS), kl


def udr_rows(rows: list[dict]) -> list[dict]:
    """``rows`` with each network's UDR (Duan et al. 2020; :func:`decompvae.metrics.udr`, Lasso, KL threshold
    0.01) among the seeds of its method and value, from their stored codes; without the codes.

    A network without finite codes and KL (one that diverged) is left out, and one whose group has fewer than two
    seeds with them gets no ``udr``.
    """
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        if UDR_CODES in r and np.isfinite(r[UDR_CODES]).all() and np.isfinite(r[UDR_KL]).all():
            groups.setdefault((r["method"], r["value"]), []).append(i)
    scores = {}
    for members in groups.values():
        if len(members) >= 2:
            found = udr([rows[i][UDR_CODES] for i in members], [rows[i][UDR_KL] for i in members])
            scores.update(zip(members, found.tolist()))
    return [{**{k: v for k, v in r.items() if k not in (UDR_CODES, UDR_KL)},
             **({"udr": scores[i]} if i in scores else {})} for i, r in enumerate(rows)]


def value_of(name: str, member: Member) -> float:
    """The value of the method's varied symbol (:data:`WEIGHTS`) that a grid member was trained at: the one whose
    probe member agrees with it on the columns where the two probes differ."""
    at = METHODS[name].at
    probes = {v: Grid(**at([v])).members()[0].flat() for v in WEIGHTS[name]}
    first, second = probes.values()
    keys = [k for k in first if first[k] != second.get(k)]
    flat = member.flat()
    return next(v for v, probe in probes.items() if all(flat[k] == probe[k] for k in keys))


def summarise(ctx: Context, settings: dict, rows: list[dict]) -> None:
    """metrics.csv, groups.csv, methods.png, the curves and summary.md from every network's row."""
    curves = write_curves(ctx.results_dir, rows, ["method", "value"])
    rows = udr_rows(without_curves(rows))
    write_csv(ctx.results_dir / "metrics.csv", rows)
    metrics = [m for m in METRICS if all(m in r for r in rows)]
    groups = aggregate(rows, GROUP_BY, metrics)
    write_csv(ctx.results_dir / "groups.csv", groups)
    figure(ctx.results_dir / "methods.png", groups, settings)
    lines = [f"# {TITLE} — profile `{ctx.profile}`", "",
             f"Command: `decompvae reproduce methods --profile {ctx.profile}` (cpu: in shards, `--shard I/6`). "
             f"{describe(settings)}", *_dsprites.budget(settings), "",
             "No claim is tested, so there is no verdict: the table says what each method gives on this recipe "
             f"and budget. Means ± 95% CI (t) over {settings['seeds']} seed(s):", "",
             markdown_table(groups, GROUP_BY, metrics, HEADERS), "", *published_lines(groups), "",
             *detectable_lines(rows, settings["methods"]), "",
             "![methods](methods.png)", *curves]
    (ctx.results_dir / "summary.md").write_text("\n".join(lines) + "\n")


def describe(settings: dict) -> str:
    """The methods, their values and the schedule, then the training and metric settings."""
    values = "; ".join(f"{name} {METHODS[name].varied[0]} ∈ {{{', '.join(f'{v:g}' for v in WEIGHTS[name])}}}"
                       for name in settings["methods"])
    sizes = settings["sizes"]
    return (f"Each method at the value its paper used on dSprites and one stronger: {values}. "
            f"AnnealedVAE's capacity reaches C_max after steps / 3 = {max(1, settings['steps'] // 3):,} steps. "
            f"{_dsprites.describe(settings, disentanglement=False)} MIG (20 bins) on {sizes.mig_points:,} "
            f"points; FactorVAE (disentanglement_lib) {sizes.variance_points:,} variance points, "
            f"{sizes.train_votes:,}/{sizes.eval_votes:,} votes of {sizes.points_per_vote}; DCI on "
            f"{sizes.dci_points:,} training codes; SAP, modularity and explicitness on {sizes.mig_points:,} training "
            f"and {sizes.test_points:,} test codes; UDR (Lasso, KL threshold 0.01) of each network against the "
            "other seeds of its method and value, on the codes of "
            f"{min(UDR_POINTS, settings['eval_points']):,} evaluation images that every network encodes.")


def published_lines(groups: list[dict]) -> list[str]:
    """Our score at the published value beside the published dSprites score, where one exists."""
    lines = ["| method | value | metric | ours | published |", "|---|---|---|---|---|"]
    for name, published in PUBLISHED_AS.items():
        group = next((g for g in groups if g["method"] == name and g["value"] == WEIGHTS[name][0]), None)
        for (method, metric), score in PUBLISHED.items():
            if method == published and group is not None and f"{metric}_mean" in group:
                lines.append(f"| {name} | {group['symbol']} = {group['value']:g} | {HEADERS.get(metric, metric)} | "
                             f"{format_value(group[f'{metric}_mean'], group[f'{metric}_ci'])} | {score:.2f} |")
    if len(lines) == 2:
        return []
    return ["Beside the best published dSprites scores (as collected in InfoGAN-CR's Table 1; the published "
            "networks trained longer on the convnet, so this is the distance the budget leaves):", "", *lines]


def value_effects(rows: list[dict], methods) -> list[tuple[str, PairedEffect]]:
    """Per method and :data:`PAIRED_METRICS` score: stronger − published value (:data:`WEIGHTS`), paired by seed.

    The two values of one sweep share each seed's initialisation and data stream, so d_s = m(stronger, s) −
    m(published, s) gets the paired t interval and the detectable effect of :func:`decompvae.stats.paired_effect`.
    Methods without networks at both values (a partial set of shards) are left out.
    """
    present, entries = {(r["method"], r["value"]) for r in rows}, []
    for name in methods:
        if not all((name, v) in present for v in WEIGHTS[name]):
            continue
        published, stronger = ({"method": name, "value": v} for v in WEIGHTS[name])
        symbol = METHODS[name].varied[0]
        for metric in PAIRED_METRICS:
            d = paired_by_seed(rows, metric, stronger, published)
            entries.append((f"{HEADERS[metric]}: {name} {symbol} = {WEIGHTS[name][1]:g} − {WEIGHTS[name][0]:g}",
                            paired_effect(d.values())))
    return entries


def detectable_lines(rows: list[dict], methods) -> list[str]:
    """What the kept seeds can detect: :func:`value_effects` with two seeds or more, reported and not judged."""
    entries = [(text, e) for text, e in value_effects(rows, methods) if e.n >= 2]
    if not entries:
        return []
    return ["What the seeds can detect: each method's stronger value against its published one, seed-paired "
            "(reported, not judged; \"detectable\" is the true change found with 80% power at the 5% level):", "",
            effects_table(entries)]


def figure(path, groups: list[dict], settings: dict) -> None:
    """MIG, FactorVAE and (with two seeds or more) UDR per method and value: mean ± 95% CI over seeds."""
    plt = pyplot()
    panels = [m for m in FIGURE_METRICS if any(f"{m}_mean" in g for g in groups)]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        ticks, names, offset = [], [], 0
        for name in settings["methods"]:
            points = [g for g in groups if g["method"] == name]
            if not points or f"{metric}_mean" not in points[0]:
                continue
            xs = offset + np.arange(len(points))
            ci_plot(ax, xs, points, metric, label=name)
            ticks += list(xs)
            names += [f"{name} {g['symbol']}={g['value']:g}" for g in points]
            offset += len(points) + 1
        ax.set_xticks(ticks, names, rotation=90, fontsize=6)
        ax.set_ylabel(HEADERS[metric] + " (disentanglement_lib)")
    fig.suptitle(f"mean ± 95% CI over {settings['seeds']} seed(s); {settings['steps'] * settings['batch']:,} "
                 "images per network", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
