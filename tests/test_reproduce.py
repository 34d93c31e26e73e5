"""The paper's experiments: every one runs on the tiny profile and writes its outputs."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from decompvae import cli
from decompvae.reproduce import EXPERIMENTS, PROFILES, profile_settings, run_experiment
from decompvae.report import read_csv
from decompvae.reproduce._common import aggregate
from decompvae.stats import mean_ci
from decompvae.reproduce._readme import finding_status, write_readme

#: Files every experiment writes besides summary.md.
EXPECTED = {
    "theory": ["theory.csv", "theory.png"],
    "clustering": ["metrics.csv", "groups.csv", "densities.png", "clustering.png"],
    "sparsity": ["metrics.csv", "groups.csv", "sparsity.png", "class_means.png"],
    "overlap": ["metrics.csv", "groups.csv", "overlap.png"],
    "rotation": ["metrics.csv", "groups.csv", "metrics_vs_beta.png", "tradeoff.png", "curves.csv", "curves.png"],
    "heavy_tails": ["metrics.csv", "groups.csv", "metrics_vs_df.png", "tradeoff.png", "curves.csv", "curves.png"],
    "subspaces": ["metrics.csv", "groups.csv", "metrics_vs_alpha.png", "curves.csv", "curves.png"],
    "hierarchy": ["metrics.csv", "groups.csv", "paired.png"],
    "calibration": ["metrics.csv", "curves.csv", "groups.csv", "curves.png"],
    "methods": ["metrics.csv", "groups.csv", "methods.png", "curves.csv", "curves.png"],
    "recipes": ["recipes.csv"],
}
#: Experiments without a claim, hence without a verdict (tested in their own files: tests/test_reproduce_methods.py,
#: tests/test_reproduce_recipes.py).
NO_VERDICT = ("methods", "recipes")
#: Members of each tiny run (2 seeds per point).
TINY_MEMBERS = {"clustering": 8, "sparsity": 8, "overlap": 4, "rotation": 12, "heavy_tails": 6, "subspaces": 8,
                "hierarchy": 8, "calibration": 6}
NUMERIC = {"member", "beta", "alpha", "seed", "gamma", "df", "recon", "kl", "overlap_mi", "hoyer", "accuracy", "nmi",
           "factor_vae_dlib", "factor_vae_paper", "mig", "objective", "theta", "block_mig", "block_alignment",
           "images_seen", "dci_disentanglement"}


def test_registry_is_complete():
    assert set(EXPERIMENTS) == set(EXPECTED)
    for name in EXPERIMENTS:
        for profile in PROFILES:
            assert isinstance(profile_settings(name, profile), dict)


def test_every_profile_makes_a_valid_config():
    from decompvae.reproduce import _dsprites, clustering, heavy_tails, overlap, rotation, sparsity, subspaces
    from decompvae.runner import build_grid

    for profile in PROFILES:
        assert len(build_grid(clustering.make_config(clustering.PROFILES[profile]))) >= 4
        config, _ = sparsity.make_config(sparsity.PROFILES[profile], require_files=False)
        assert config.model.latent_dim == 50 and list(config.sweep.prior["gamma"]) == [0.0, 0.8]
        for module in (overlap, rotation):
            settings = module.PROFILES[profile]
            config = _dsprites.base_config(settings, prior="isotropic", sweep={"beta": settings["betas"]})
            assert len(build_grid(config)) == len(settings["betas"]) * settings["seeds"]
        settings = heavy_tails.PROFILES[profile]
        config = _dsprites.base_config(settings, prior="student_t", sweep={"prior": {"df": settings["dfs"]}})
        assert list(config.sweep.prior["df"]) == settings["dfs"]
    paper = overlap.PROFILES["paper"]
    assert (paper["network"], paper["batch"], paper["steps"]) == ("dsprites", 64, 20 * 737_280 // 64)
    assert rotation.PROFILES["paper"]["betas"] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert heavy_tails.PROFILES["paper"]["dfs"] == [2.0, 5.0, 9.0, 12.0, 9999.0]
    assert {2.0, 9.0, 9999.0} <= set(heavy_tails.PROFILES["cpu"]["dfs"])  # the verdict rule's ν
    assert all(module.PROFILES["cpu"]["seeds"] >= 10 for module in (clustering, sparsity, overlap))
    for module in (rotation, heavy_tails, subspaces):  # rebased on the calibrated recipe: ≥ 1.5 M images, curves
        cpu = module.PROFILES["cpu"]
        assert cpu["seeds"] >= (6 if module is subspaces else 8)
        assert cpu["steps"] * cpu["batch"] >= 1_500_000 and cpu["hidden"] == [256, 256]
        assert cpu["steps"] % cpu["eval_every"] == 0 and cpu["steps"] // cpu["eval_every"] >= 5


def test_beyond_the_paper_profiles_pair_the_priors():
    """subspaces and hierarchy: every variant is one sweep over the same seeds, so seed s pairs the priors."""
    from decompvae.reproduce import hierarchy, subspaces
    from decompvae.runner import build_grid

    for profile in PROFILES:
        for module, variants in ((subspaces, 4), (hierarchy, 2)):
            settings = module.PROFILES[profile]
            runs = module.configs(settings)
            assert len(runs) == variants
            seeds = [[m.seed for m in build_grid(c).members()] for c in runs.values()]
            assert all(s == list(range(settings["seeds"])) for s in seeds)
    runs = subspaces.configs(subspaces.PROFILES["cpu"])
    block = runs["block_student_t-alpha100"].model
    assert (block.prior, tuple(block.prior_options["blocks"]), block.regulariser) == ("block_student_t", (5, 5), "mmd")
    assert runs["isotropic-alpha0"].model.regulariser == "none"
    assert all(c.data.name == "dsprites_pair" for c in runs.values())
    (iso, hier) = hierarchy.configs(hierarchy.PROFILES["cpu"]).values()
    assert (iso.model.prior, hier.model.prior, hier.model.prior_options["parents"]) == ("isotropic", "hierarchical", 2)


def test_paper_profiles_are_the_published_settings():
    """The published settings (docs/guide.md#experiments), as --print-config shows them."""
    from decompvae.reproduce import resolved_settings

    for name in ("overlap", "rotation", "heavy_tails"):
        runs = resolved_settings(name, "paper")["runs"]
        for run in runs:
            m, t = run["model"], run["train"]
            assert (m["network"], m["latent_dim"], m["likelihood"], m["posterior"]) == ("dsprites", 10, "bernoulli",
                                                                                       "gaussian")
            assert (t["batch_size"], t["learning_rate"], t["amsgrad"], t["steps"]) == (64, 5e-4, True, 230_400)
    learned = [r for r in resolved_settings("rotation", "paper")["runs"] if r["model"]["prior_learned"]]
    assert len(learned) == 1 and learned[0]["model"]["prior_init"] == "pca"
    assert learned[0]["model"]["prior"] == "anisotropic_logits"
    sparse = resolved_settings("sparsity", "paper")
    (run,) = sparse["runs"]
    assert (run["data"]["name"], run["data"]["image_size"], run["model"]["network"]) == ("fashion_mnist", 32, "fashion")
    assert (run["model"]["likelihood"], run["model"]["likelihood_scale"], run["model"]["regulariser"]) == (
        "laplace", 0.1, "mmd")
    assert (run["train"]["batch_size"], run["train"]["steps"], run["train"]["learning_rate"]) == (500, 9600, 5e-4)
    assert (run["sweep"]["alpha"], run["sweep"]["beta"], run["sweep"]["prior"]["gamma"]) == (
        [0.0, 100.0], [1.0], [0.0, 0.8])
    (run,) = resolved_settings("clustering", "paper")["runs"]
    assert (run["model"]["posterior"], run["model"]["likelihood_scale"], run["model"]["regulariser"]) == (
        "gaussian_softplus", "learned", "inclusive_kl")
    assert {0.0, 1.0} <= set(run["sweep"]["beta"]) and {0.0, 1.0} <= set(run["sweep"]["alpha"])
    assert (run["train"]["batch_size"], run["train"]["steps"], run["train"]["learning_rate"]) == (400, 500, 1e-3)
    assert "paired" in sparse["verdict_rule"]


def test_sparsity_paper_profile_refuses_without_fashion_mnist(monkeypatch, tmp_path):
    from decompvae.reproduce import sparsity

    monkeypatch.delenv(sparsity.FASHION_MNIST_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=sparsity.FASHION_MNIST_ENV):
        run_experiment("sparsity", "paper", tmp_path, echo=lambda _: None)
    monkeypatch.setenv(sparsity.FASHION_MNIST_ENV, str(tmp_path))
    config, described = sparsity.make_config(sparsity.PROFILES["paper"])
    assert config.data.path == str(tmp_path) and described.startswith("Fashion-MNIST")
    assert "substitute" in sparsity.make_config(sparsity.PROFILES["cpu"])[1]


def test_cli_print_config(capsys):
    import json

    assert cli.main(["reproduce", "rotation", "--profile", "paper", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["runs"]) == 3 and printed["settings"]["sizes"]["paper_votes"] is None
    assert printed["verdict_rule"].startswith("for each anisotropic prior")


@pytest.mark.slow  # 6–56 s each on 2 cores; the default run meets the tiny hierarchy in test_reproduce_shards.py
@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if n not in NO_VERDICT])
def test_tiny_profile_writes_finite_outputs(name, tmp_path):
    out = run_experiment(name, "tiny", tmp_path / name, echo=lambda _: None)
    for f in EXPECTED[name] + ["summary.md"]:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    rows = read_csv(out / EXPECTED[name][0])
    assert len(rows) == TINY_MEMBERS.get(name, len(rows))
    checked = 0
    for row in rows:
        for key, value in row.items():
            if key in NUMERIC and value is not None:
                assert math.isfinite(float(value)), (key, value)
                checked += 1
    assert checked >= len(rows) * 3
    summary = (out / "summary.md").read_text()
    assert "profile `tiny`" in summary
    assert finding_status(summary) in ("reproduced", "partly reproduced", "NOT reproduced", "inconclusive at this budget")
    if name != "theory":
        assert "**Verdict rule** (written before the run)" in summary
        assert "detectable" in summary or name == "calibration"  # calibration judges targets, not paired effects
    if name != "theory":  # the seed CIs made it into the table
        assert "±" in summary
    else:  # Theorem 2 as the experiment computes it: flat for the isotropic prior only
        for prior in {r["prior"] for r in rows}:
            change = np.abs([float(r["change"]) for r in rows if r["prior"] == prior])
            assert change.max() < 1e-9 if prior.startswith("isotropic") else change.max() > 1e-3


def test_mean_ci_matches_t_interval():
    values = [1.0, 2.0, 4.0, 7.0]
    mean, half, n = mean_ci(values)
    # t_{0.975, 3} = 3.182446305284263; sd = 2.6457513110645907
    assert n == 4 and mean == pytest.approx(3.5)
    assert half == pytest.approx(3.182446305284263 * 2.6457513110645907 / 2, rel=1e-9)
    assert math.isnan(mean_ci([1.0])[1])
    assert mean_ci([1.0, float("nan"), 3.0])[2] == 2


def test_aggregate_groups_in_order():
    rows = [{"b": 2, "m": 1.0}, {"b": 1, "m": 3.0}, {"b": 2, "m": 3.0}]
    groups = aggregate(rows, ["b"], ["m"])
    assert [g["b"] for g in groups] == [2, 1]
    assert groups[0]["n"] == 2 and groups[0]["m_mean"] == pytest.approx(2.0)
    assert math.isnan(groups[1]["m_ci"])


def test_readme_collects_summaries(tmp_path):
    folder = tmp_path / "results" / "theory-cpu"
    folder.mkdir(parents=True)
    (folder / "summary.md").write_text("# T\n\n![fig](theory.png)\n\n**Finding (reproduced):** yes\n")
    text = write_readme({e.name: e.description for e in EXPERIMENTS.values()}, tmp_path).read_text()
    assert "](results/theory-cpu/theory.png)" in text
    assert "| reproduced |" in text and text.count("| not run |") == len(EXPERIMENTS) - 1


@pytest.mark.parametrize("text, status", [
    ("**Finding (reproduced):** x", "reproduced"),
    ("**Finding (partly reproduced; criterion ...):** x", "partly reproduced"),
    ("**Finding (NOT reproduced; criterion ...):** x", "NOT reproduced"),
    ("**Finding (inconclusive at this budget).**", "inconclusive at this budget"),
    ("no finding here", "no verdict"),
])
def test_finding_status(text, status):
    assert finding_status(text) == status


def test_cli_list(capsys):
    assert cli.main(["reproduce", "list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in out


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "nonsense", "--profile", "tiny"], "unknown experiment 'nonsense'"),
    (["reproduce", "theory", "--profile", "huge"], "unknown profile 'huge'"),
])
def test_cli_errors_are_clear(argv, message, capsys, tmp_path):
    assert cli.main(argv + ["--output", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_main_unknown_name_raises():
    from decompvae.reproduce import main

    with pytest.raises(ValueError, match="choose one of"):
        main(SimpleNamespace(name="nope", profile="tiny", output=None))


@pytest.mark.slow
def test_print_config_estimate_plans_every_run(tmp_path, capsys):
    import json

    assert cli.main(["reproduce", "hierarchy", "--profile", "tiny", "--output", str(tmp_path),
                     "--print-config", "--estimate"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    estimate = resolved["estimate"]
    assert set(estimate["runs"]) == {run["output_dir"].split("/")[-1] for run in resolved["runs"]}
    for run in estimate["runs"].values():
        assert run["members"] >= 1 and run["seconds_per_step"] > 0 and run["images_per_member"] > 0
    assert estimate["train_seconds"] == pytest.approx(sum(r["train_seconds"] for r in estimate["runs"].values()))
    assert estimate["estimate_took_seconds"] > 0 and not (tmp_path / "runs").exists()  # nothing trained or written


def test_the_readme_table_quotes_each_summarys_budget(tmp_path):
    from decompvae.reproduce._common import budget_line
    from decompvae.reproduce._readme import budget_of

    line = budget_line(1_536_000, "dSprites", 737_280)
    assert line == "**Budget per network:** 1,536,000 images (2.08 epochs of dSprites, 737,280 images)"
    assert budget_of(f"intro\n\n{line}\n\nmore") == "1,536,000 images (2.08 epochs of dSprites, 737,280 images)"
    assert budget_of("no budget here") == "—"
    results = tmp_path / "results" / "rotation-cpu"
    results.mkdir(parents=True)
    (results / "summary.md").write_text(f"# t\n\n{line}\n\n**Finding (reproduced).**\n")
    descriptions = {e.name: e.description for e in EXPERIMENTS.values()}
    text = write_readme(descriptions, tmp_path).read_text()
    assert f"| [rotation](#rotation) | {descriptions['rotation']} | reproduced | 1,536,000 images (2.08 epochs" in text
    assert f"| [overlap](#overlap) | {descriptions['overlap']} | not run | — |" in text


def test_the_rebased_budget_is_read_off_the_calibration_curve():
    from decompvae.reproduce.calibration import images_to_fraction

    curve = [(0, 0.0, 0.01), (256_000, 0.04, 0.05), (512_000, 0.06, 0.06), (768_000, 0.07, 0.08), (1_024_000, 0.08, 0.08)]
    points = [{"method": "beta_vae", "beta": 4.0, "images_seen": x, "mig": m} for x, *seeds in curve for m in seeds]
    # mean MIG 0.005, 0.045, 0.06, 0.075, 0.08: 80% of 0.08 = 0.064, first reached at 768,000 images
    assert images_to_fraction(points, ("beta_vae", 4.0), 0.8) == 768_000
    assert images_to_fraction(points, ("beta_vae", 4.0), 0.6) == 512_000  # 0.048 ≤ 0.06
    assert images_to_fraction(points, ("beta_tcvae", 1.0), 0.8) is None
