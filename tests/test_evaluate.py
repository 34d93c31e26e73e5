"""`decompvae evaluate`: every applicable metric of a trained run, as JSON."""

import json

import numpy as np
import pytest

from decompvae import cli, evaluate, runner
from decompvae.config import load_config
from decompvae.sweep import Member


def _train(tmp_path, *overrides):
    config = load_config(None, [f"output_dir={tmp_path}", "train.log_every=2", "train.checkpoint_every=2", *overrides])
    runner.run(config, progress=False, figures=False, echo=lambda s: None)
    return tmp_path


DSPRITES_METRICS = (
    "elbo", "iwae_log_likelihood", "overlap_mi", "hoyer", "factor_vae_dlib",
    "factor_vae_paper", "beta_vae", "mig", "sap", "modularity", "dci_disentanglement", "explicitness_test",
)


def test_evaluate_dsprites_run(tmp_path, capsys):
    # A small MLP on dSprites keeps the test fast; the published convnet is in the slow test below.
    run_dir = _train(
        tmp_path, "train.steps=2", "train.batch_size=8", "data.eval_points=64", "model.latent_dim=4",
        "model.network=mlp", "model.hidden=[16]", "sweep.beta=[1.0,4.0]",
    )
    assert cli.main(["evaluate", str(run_dir), "--quick", "--member", "1"]) == 0
    rows = json.loads((run_dir / "metrics.json").read_text())
    assert [r["member"] for r in rows] == [1] and rows[0]["label"].startswith("beta=4")
    for key in DSPRITES_METRICS:
        assert np.isfinite(rows[0][key]), key
    assert rows[0]["iwae_log_likelihood"] >= rows[0]["elbo"] - 5.0
    assert 0.0 <= rows[0]["mig"] <= 1.0
    assert "factor_vae_dlib" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_published_dsprites_network(tmp_path):
    run_dir = _train(tmp_path, "train.steps=2", "train.batch_size=8", "data.eval_points=64")
    (row,) = evaluate.evaluate_run(run_dir, quick=True, echo=lambda s: None)
    assert all(np.isfinite(row[key]) for key in DSPRITES_METRICS)


def test_evaluate_pinwheel_clustering(tmp_path):
    run_dir = _train(
        tmp_path, "data.name=pinwheel", "model.network=mlp", "model.latent_dim=2", "model.likelihood=gaussian",
        "model.prior=pinwheel", "model.regulariser=inclusive_kl", "train.steps=4", "train.batch_size=50",
    )
    (row,) = evaluate.evaluate_run(run_dir, quick=True, echo=lambda s: None)
    assert 0.25 <= row["clustering_accuracy"] <= 1.0 and 0.0 <= row["clustering_nmi"] <= 1.0
    assert "factor_vae_dlib" not in row  # no ground-truth factors for pinwheel


def test_evaluate_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        evaluate.load_run(tmp_path)
    assert cli.main(["evaluate", str(tmp_path)]) == 2


def test_seed_groups_are_the_members_that_differ_only_in_their_seed():
    members = [Member(beta=b, seed=s) for b in (1.0, 4.0) for s in (0, 1, 2)] + [Member(beta=8.0)]
    assert evaluate.seed_groups(members) == [[0, 1, 2], [3, 4, 5]]  # β = 8 has no seed partner
    assert evaluate.seed_groups(members[:1]) == []


def test_evaluate_reports_udr_within_each_seed_group(tmp_path):
    from decompvae.metrics import udr_of_members
    from decompvae.train import model_params
    import jax

    run_dir = _train(tmp_path, "data.name=pinwheel", "model.network=mlp", "model.latent_dim=2",
                     "model.likelihood=gaussian", "model.prior=isotropic", "train.steps=4", "train.batch_size=50",
                     "sweep.beta=[1.0,4.0]", "sweep.seed=[0,1,2]")
    rows = evaluate.evaluate_run(run_dir, quick=True, members=[1, 4], echo=lambda s: None)
    setup, state, hyper, _ = evaluate.load_run(run_dir)
    x = setup.data.eval_x[:200]
    for group in ([0, 1, 2], [3, 4, 5]):  # β = 1 and β = 4, three seeds each
        expected = udr_of_members(jax.random.key(0), setup, model_params(state), hyper, x, members=group)
        row = next(r for r in rows if r["member"] in group)
        assert row["udr"] == pytest.approx(float(expected[group.index(row["member"])]), abs=1e-12)
        assert 0.0 <= row["udr"] <= 1.0
    assert "udr" in evaluate.format_metrics(rows)
