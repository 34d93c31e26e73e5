"""Metrics during training (``train.eval_every``): the rows, their exactness against ``decompvae evaluate``, resume."""

import json

import pytest

from decompvae import cli, runner
from decompvae.build import build
from decompvae.config import Config
from decompvae.curves import CURVE_META, curve_measures, curve_sizes, read_curves
from decompvae.outputs import CURVE_FILE

QUIET = dict(progress=False, figures=False, echo=lambda s: None)


def _config(out, **train) -> Config:
    """dSprites, a small MLP, 2 seeds × 2 β: evaluations every 10 steps of batch 16 on 100 points."""
    return Config.from_dict({
        "data": {"name": "dsprites", "eval_points": 100},
        "model": {"network": "mlp", "hidden": [32], "latent_dim": 4, "likelihood": "bernoulli"},
        "train": {"steps": 20, "batch_size": 16, "log_every": 5, "checkpoint_every": 10, "eval_every": 10,
                  "eval_points": 100, **train},
        "sweep": {"beta": [1.0, 4.0], "seed": [0, 1]},
        "output_dir": str(out),
    })


def _measures(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in CURVE_META}


@pytest.mark.parametrize("changes, message", [
    ({"eval_every": -5}, "train.eval_every must be 0 .off. or a positive multiple of train.log_every .5.; got -5"),
    ({"eval_every": 7}, "train.eval_every must be 0 .off. or a positive multiple of train.log_every .5.; got 7"),
    ({"eval_every": True}, "train.eval_every must be 0"),
    ({"eval_points": 0}, "train.eval_points must be a positive integer"),
])
def test_bad_settings_are_refused_naming_the_key(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **changes)


def test_sizes_scale_with_eval_points_and_reach_disentanglement_libs():
    setup = build(_config("unused", eval_points=10_000))
    sizes = curve_sizes(setup)
    assert (sizes.variance_points, sizes.train_votes, sizes.eval_votes, sizes.points_per_vote, sizes.mig_points) == \
        (10_000, 10_000, 5_000, 64, 10_000)  # disentanglement_lib's FactorVAE and MIG
    assert sizes.eval_points == 100  # never more than the run's evaluation points
    assert curve_measures(setup) == ("terms", "factor_vae_dlib", "mig")
    assert curve_measures(build(_config("unused", eval_dci=True)))[-1] == "dci"


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    runner.run(_config(out, tensorboard=True), **QUIET)
    return out


def test_every_member_every_eval_every_steps_with_the_images_seen(whole):
    rows = read_curves(whole)
    assert [(r["step"], r["member"]) for r in rows] == [(s, m) for s in (0, 10, 20) for m in range(4)]
    assert all(r["images"] == 16 * r["step"] for r in rows)
    assert set(_measures(rows[0])) == {"recon", "kl", "elbo", "factor_vae_dlib", "active_dims", "mig"}
    assert all(0 <= r["factor_vae_dlib"] <= 1 and 0 <= r["mig"] <= 1 and r["kl"] >= 0 for r in rows)
    first, last = [r for r in rows if r["member"] == 0 and r["step"] in (0, 20)]
    assert last["recon"] > first["recon"]  # it trained


@pytest.mark.parametrize("step", [10, 20])
def test_a_curve_row_equals_decompvae_evaluate_of_that_checkpoint(whole, step, capsys):
    assert cli.main(["evaluate", str(whole), "--step", str(step), "--curve"]) == 0
    evaluated = json.loads((whole / f"metrics-step-{step}-curve.json").read_text())
    curve = [r for r in read_curves(whole) if r["step"] == step]
    assert [r["member"] for r in evaluated] == [r["member"] for r in curve]
    for e, c in zip(evaluated, curve):
        assert {k: e[k] for k in _measures(c)} == _measures(c)  # bit for bit: same sample, same keys


def test_tensorboard_and_the_report_page_show_the_curves(whole):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = accumulator.EventAccumulator(str(sorted((whole / "tensorboard").glob("m0_*"))[0]),
                                       size_guidance={accumulator.SCALARS: 0})
    acc.Reload()
    member_0 = [r for r in read_curves(whole) if r["member"] == 0]
    assert [(e.step, e.value) for e in acc.Scalars("curve/mig")] == \
        [(r["step"], pytest.approx(r["mig"], rel=1e-6)) for r in member_0]
    assert "curve/images" not in acc.Tags()["scalars"] and "curve/seconds" not in acc.Tags()["scalars"]
    page = (whole / "report.html").read_text()
    assert "Metrics during training" in page and "report/metric_curves.png" in page
    assert (whole / "report" / "metric_curves.png").stat().st_size > 10_000


def test_evaluate_names_the_kept_steps(whole, capsys):
    assert cli.main(["evaluate", str(whole), "--step", "5", "--curve"]) == 2
    assert "--step 5: no checkpoint of that step" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_a_kill_gives_each_row_once(whole, tmp_path):
    """Stopped after step 15 (rows of step 15 written, checkpoint at 10), a torn line appended: the resumed curve
    equals the uninterrupted one."""
    config = _config(tmp_path, eval_every=5)
    runner.run(config, stop_after=15, **QUIET)
    assert max(r["step"] for r in read_curves(tmp_path)) == 15
    with (tmp_path / CURVE_FILE).open("a") as f:
        f.write('{"step": 20, "images": 32')  # a kill during a write
    runner.run(config, **QUIET)
    uninterrupted = tmp_path / "uninterrupted"
    runner.run(_config(uninterrupted, eval_every=5), **QUIET)
    resumed, expected = read_curves(tmp_path), read_curves(uninterrupted)
    assert [(r["step"], r["member"]) for r in resumed] == [(s, m) for s in (0, 5, 10, 15, 20) for m in range(4)]
    assert [_measures(r) for r in resumed] == [_measures(r) for r in expected]
    at_10 = [r for r in read_curves(whole) if r["step"] == 10]  # eval_every does not change a row's numbers
    assert [_measures(r) for r in resumed if r["step"] == 10] == [_measures(r) for r in at_10]


def test_off_by_default_writes_no_curve(tmp_path):
    runner.run(_config(tmp_path, eval_every=0, steps=5), **QUIET)
    assert not (tmp_path / CURVE_FILE).exists()


@pytest.mark.slow
def test_evaluate_reaches_the_sampled_mig(whole):
    """``decompvae evaluate --mig-sampled S``: Chen et al.'s MIG beside the histogram one, for every member."""
    assert cli.main(["evaluate", str(whole), "--quick", "--mig-sampled", "20", "--output", str(whole / "m.json")]) == 0
    rows = json.loads((whole / "m.json").read_text())
    assert len(rows) == 4 and all(0.0 <= r["mig_sampled"] <= 1.0 and "mig" in r for r in rows)
