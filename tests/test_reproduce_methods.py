"""`decompvae reproduce methods`: every registered method at two values of its varied symbol, one sweep each."""

import json
import math

import numpy as np
import pytest

from decompvae.build import build, build_grid
from decompvae.methods import METHODS
from decompvae.report import read_csv
from decompvae.reproduce import methods as experiment
from decompvae.reproduce import run_experiment
from decompvae.metrics.udr import udr
from decompvae.reproduce._readme import finding_status
from decompvae.runner import shard_config
from decompvae.sweep import Grid


@pytest.mark.parametrize("name", sorted(METHODS))
def test_at_sets_the_grids_values(name):
    """``Method.at(varied values)`` gives the published grid's members on every axis it sets."""
    method, default = METHODS[name], Grid().members()[0]
    found = Grid(**method.at(method.varied[1])).members()
    expected = Grid(**{"beta": [method.beta], **method.grid}).members()
    assert len(found) == len(expected) == len(method.varied[1])
    default = default.flat()
    changed = [{k: v for k, v in f.flat().items() if default.get(k) != v} for f in found]
    assert any(changed)
    for c, e in zip(changed, expected):
        assert c.items() <= e.flat().items()


def test_the_cpu_profile_trains_every_method_at_its_two_values():
    settings = experiment.PROFILES["cpu"]
    assert set(settings["methods"]) == set(METHODS) == set(experiment.WEIGHTS)
    # the rebased profiles' budget on the calibrated recipe: the issue's floor of 1.5 M images per network
    assert settings["steps"] * settings["batch"] == 1_536_000 and settings["hidden"] == [256, 256]
    assert settings["steps"] % settings["eval_every"] == 0
    configs = experiment.configs(settings)
    for name, config in configs.items():
        method, members = METHODS[name], build_grid(config).members()
        assert len(members) == 2 * settings["seeds"]
        assert [experiment.value_of(name, m) for m in members] == [v for v in experiment.WEIGHTS[name]
                                                                   for _ in range(settings["seeds"])]
        assert config.train.beta == method.beta and config.model.prior == method.prior
        assert all(m.beta == method.beta for m in members) or "beta" in method.at([1.0])
    # the values in the published grid are its members; the others (stronger than the grid) are the same axis
    beta_tcvae = build_grid(configs["beta_tcvae"]).members()
    assert [m.alpha["total_correlation"] for m in beta_tcvae[::settings["seeds"]]] == [5.0, 9.0]  # α_tc = β − 1
    dip = build_grid(configs["dip_vae_i"]).members()
    assert [(m.alpha["dip_offdiagonal"], m.alpha["dip_diagonal"]) for m in dip[::3]] == [(10.0, 100.0), (50.0, 500.0)]
    annealed = configs["annealed_vae"]
    assert annealed.model.regulariser_options["capacity"]["num_steps"] == settings["steps"] // 3  # C reaches C_max
    decomposed = build_grid(configs["beta_tcvae_decomposed"]).members()[0]
    assert (decomposed.beta, decomposed.alpha["mutual_information"], decomposed.alpha["dimensionwise_kl"]) == (
        0.0, 1.0, 1.0)


@pytest.mark.slow
def test_tiny_profile_writes_a_table_without_a_verdict(tmp_path):
    out = run_experiment("methods", "tiny", tmp_path, echo=lambda _: None)
    rows = read_csv(out / "metrics.csv")
    settings = experiment.PROFILES["tiny"]
    assert [(r["method"], float(r["value"])) for r in rows] == [
        (name, v) for name in settings["methods"] for v in experiment.WEIGHTS[name] for _ in range(settings["seeds"])]
    for row in rows:
        for key in ("mig", "factor_vae_dlib", "dci_disentanglement", "sap", "recon", "kl"):
            assert math.isfinite(float(row[key])), (key, row[key])
    summary = (out / "summary.md").read_text()
    assert finding_status(summary) == "no verdict" and "Verdict rule" not in summary
    assert "| factor_vae | γ | 40 |" in summary and "C_max ∈ {25, 10}" in summary
    assert len(read_csv(out / "curves.csv")) == len(rows) * (settings["steps"] // settings["eval_every"] + 1)
    # each network's codes and per-dimension KL for the UDR across seeds are in its rows, not in metrics.csv
    stored = json.loads((out / "rows" / "factor_vae.json").read_text())["rows"]
    assert [np.shape(r["udr_codes"]) for r in stored] == [(settings["eval_points"], 10)] * len(stored)
    assert all(len(r["udr_kl"]) == 10 and min(r["udr_kl"]) >= 0.0 for r in stored)
    assert not any(k.startswith("udr") for k in rows[0])  # one seed: no UDR, and no codes in the csv


def _udr_row(method, value, seed, codes, kl):
    return {"method": method, "value": value, "seed": seed, "mig": 0.1, experiment.UDR_CODES: codes.tolist(),
            experiment.UDR_KL: kl.tolist()}


def test_udr_rows_score_each_network_against_the_other_seeds_of_its_method_and_value():
    """Seeds whose codes are one another up to permutation and sign agree (Lasso UDR ≈ 1 − α = 0.9); unrelated
    codes do not; each group is scored by :func:`decompvae.metrics.udr` on its own seeds; a lone seed, or a network
    without finite codes, gets none."""
    rng = np.random.default_rng(0)
    base, kl = rng.normal(size=(500, 4)), np.array([1.0, 2.0, 0.5, 3.0])
    copies = [base, -base[:, [2, 0, 3, 1]], base[:, [3, 2, 1, 0]]]
    noise = [rng.normal(size=(500, 4)) for _ in range(3)]
    rows = ([_udr_row("beta_vae", 4.0, s, c, kl) for s, c in enumerate(copies)]
            + [_udr_row("beta_vae", 8.0, s, c, kl) for s, c in enumerate(noise)]
            + [_udr_row("wae_mmd", 10.0, 0, base, kl)]
            + [_udr_row("beta_vae", 4.0, 3, np.full((500, 4), np.nan), kl)])  # diverged: left out of its group
    scored = experiment.udr_rows(rows)
    copied, unrelated = [r["udr"] for r in scored[:3]], [r["udr"] for r in scored[3:6]]
    assert copied == pytest.approx(udr(np.stack(copies), np.stack([kl] * 3)).tolist())
    assert unrelated == pytest.approx(udr(np.stack(noise), np.stack([kl] * 3)).tolist())
    assert min(copied) > 0.85 and max(unrelated) < 0.5
    assert "udr" not in scored[6] and "udr" not in scored[7]
    assert not any(experiment.UDR_CODES in r or experiment.UDR_KL in r for r in scored)


def test_every_shard_encodes_the_same_evaluation_images_for_the_udr():
    """The images are drawn from the data key, not the member's seed: shards of one method and other methods agree."""
    settings = experiment.PROFILES["tiny"]
    configs = experiment.configs(settings)
    images = [np.asarray(build(shard_config(configs[name], shard)).data.eval_x)
              for name in settings["methods"] for shard in ((0, 2), (1, 2))]
    assert all(np.array_equal(images[0], x) for x in images[1:])


def test_value_effects_pair_each_methods_two_values_by_seed():
    """Stronger − published, per seed; with n = 3 the t quantiles have the closed form t_p = (2p−1)/√(2p(1−p))."""
    published, stronger = experiment.WEIGHTS["beta_vae"]
    scores = {published: [0.10, 0.20, 0.30], stronger: [0.15, 0.30, 0.35]}
    rows = [{"method": "beta_vae", "value": v, "seed": s, "mig": m, "factor_vae_dlib": 0.5}
            for v, ms in scores.items() for s, m in enumerate(ms)]
    rows.append({"method": "wae_mmd", "value": experiment.WEIGHTS["wae_mmd"][0], "seed": 0, "mig": 0.1,
                 "factor_vae_dlib": 0.5})  # one value only: left out
    entries = dict(experiment.value_effects(rows, ["beta_vae", "wae_mmd"]))
    assert list(entries) == ["MIG: beta_vae β = 8 − 4", "FactorVAE: beta_vae β = 8 − 4"]
    d = [0.05, 0.10, 0.05]
    mean = sum(d) / 3
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / 2 / 3)
    t = {p: (2 * p - 1) / math.sqrt(2 * p * (1 - p)) for p in (0.975, 0.8)}
    mig = entries["MIG: beta_vae β = 8 − 4"]
    assert mig.n == 3 and mig.mean == pytest.approx(mean)
    assert mig.half == pytest.approx(t[0.975] * se) and mig.detectable == pytest.approx((t[0.975] + t[0.8]) * se)
    assert entries["FactorVAE: beta_vae β = 8 − 4"].mean == 0.0
    table = "\n".join(experiment.detectable_lines(rows, ["beta_vae"]))
    assert f"| MIG: beta_vae β = 8 − 4 | +0.067 ± {t[0.975] * se:.3f} | 3 | {(t[0.975] + t[0.8]) * se:.3f} |" in table
    with pytest.raises(ValueError, match="two networks with seed = 0"):  # a data error is not a missing shard
        experiment.value_effects(rows + [dict(rows[0])], ["beta_vae"])
