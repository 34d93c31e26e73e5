"""Training and sweeps: sweep = singles, sharded = unsharded, chunked = whole,
resume = uninterrupted, diverging members isolated, configs validated."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import cli, runner, sweep as sw
from decompvae.config import load_config
from decompvae.data import make_batcher, make_pinwheel
from decompvae.networks import make_networks
from decompvae.objective import make_objective
from decompvae.priors import make_prior
from decompvae.train import make_trainer

STEPS = 30
TOL = 2e-5  # vmapped vs single programs differ only in float rounding


def _trainer(poison_beta=None):
    pin = make_pinwheel(jax.random.key(0), 50)
    batcher = make_batcher(pin.x_train, 32)
    enc, dec = make_networks("mlp", 2, data_shape=(2,), hidden=(16,))
    objective = make_objective(
        enc, dec, likelihood="gaussian", prior=make_prior("student_t", 2), divergence="mmd"
    )
    if poison_beta is not None:  # a member that diverges at its first step
        base = objective

        def objective(key, params, hyper, x):
            loss, terms = base(key, params, hyper, x)
            return jnp.where(hyper.beta == poison_beta, jnp.nan, loss), terms

    def init_params(key, hyper):
        k1, k2 = jax.random.split(key)
        return {"encoder": enc.init(k1, jnp.zeros((1, 2))), "decoder": dec.init(k2, jnp.zeros((1, 2)))}

    return make_trainer(objective, init_params, batcher.batch_at), batcher.data


GRID = sw.Grid(beta=[1.0, 4.0], alpha=[0.0, 2.0], prior={"df": [3.0]}, learning_rate=[1e-3, 3e-3], seed=[0, 1], mode="zip")


def test_grid_expansion():
    assert len(sw.Grid(beta=[1, 2, 4], seed=[0, 1])) == 6
    members = GRID.members()
    assert [m["beta"] for m in members] == [1.0, 4.0] and [m["seed"] for m in members] == [0, 1]
    assert [m["prior.df"] for m in members] == [3.0, 3.0]  # length-1 lists broadcast in zip mode
    with pytest.raises(ValueError, match="zip"):
        sw.Grid(beta=[1, 2], seed=[0, 1, 2], mode="zip")
    with pytest.raises(ValueError, match="beta"):
        sw.Grid(beta=[-1.0])
    with pytest.raises(ValueError, match="learning_rate"):
        sw.Grid(learning_rate=[0.0])


SIX = sw.Grid(beta=[1.0, 4.0, 8.0], seed=[0, 1], learning_rate=[1e-3], fixed_prior={"df": 3.0})


@pytest.fixture(scope="module")
def reference():
    """Six members trained by one unsharded, unchunked vmapped program."""
    trainer, data = _trainer()
    members = SIX.members()
    hyper, lrs, keys = sw.stack_members(members, SIX.fixed_prior)
    plain = sw.make_sweep(trainer)
    state, info = sw.run_members(plain, sw.init_members(plain, keys, hyper, lrs), hyper, data, STEPS)
    return trainer, data, members, (hyper, lrs, keys), state, info


def test_sweep_equals_single_runs(reference):
    trainer, data, members, _, state, info = reference
    assert info.loss.shape == (6, STEPS)
    hyper, lrs, keys = sw.stack_members(members, SIX.fixed_prior)
    init, run = jax.jit(trainer.init), jax.jit(trainer.run, static_argnums=3)
    for i in (0, 5):
        h = jax.tree.map(lambda a: a[i], hyper)
        single, _ = run(init(keys[i], h, lrs[i]), h, data, STEPS)
        for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(state.params)):
            np.testing.assert_allclose(np.asarray(b)[i], a, atol=TOL, rtol=TOL)


def test_sharded_and_chunked_equal_unsharded(reference):
    assert len(jax.devices()) == 4, "conftest sets 4 simulated CPU devices"
    trainer, data, _, (hyper, lrs, keys), expected, _ = reference
    # 2 devices, one chunk; 4 devices with chunks of 4 (6 members: the last chunk padded).
    for mesh, chunk in [(sw.sweep_mesh(jax.devices()[:2]), None), (sw.sweep_mesh(), 4)]:
        sweep = sw.make_sweep(trainer, mesh=mesh, chunk_size=chunk)
        state, _ = sw.run_members(sweep, sw.init_members(sweep, keys, hyper, lrs), hyper, data, STEPS)
        for a, b in zip(jax.tree.leaves(expected.params), jax.tree.leaves(state.params)):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=TOL, rtol=TOL)


def test_diverging_member_is_frozen_others_unaffected(reference):
    _, data, _, _, expected, _ = reference
    trainer, _ = _trainer(poison_beta=4.0)
    hyper, lrs, keys = sw.stack_members(SIX.members(), SIX.fixed_prior)
    sweep = sw.make_sweep(trainer)
    init = sw.init_members(sweep, keys, hyper, lrs)
    state, info = sw.run_members(sweep, init, hyper, data, STEPS)
    poisoned = np.asarray(hyper.beta) == 4.0
    np.testing.assert_array_equal(np.asarray(state.diverged_at) == 0, poisoned)
    np.testing.assert_array_equal(np.asarray(info.finite).all(axis=1), ~poisoned)
    for a, b, c in zip(jax.tree.leaves(init.params), jax.tree.leaves(state.params), jax.tree.leaves(expected.params)):
        np.testing.assert_array_equal(np.asarray(b)[poisoned], np.asarray(a)[poisoned])  # frozen at the start
        np.testing.assert_allclose(np.asarray(b)[~poisoned], np.asarray(c)[~poisoned], atol=TOL, rtol=TOL)


def _tiny_config(tmp_path, *extra):
    return load_config(
        None,
        [
            "data.name=pinwheel",
            "model.network=mlp",
            "model.latent_dim=2",
            "model.likelihood=gaussian",
            "model.likelihood_scale=learned",
            "model.hidden=[16]",
            "model.prior=pinwheel",
            "model.divergence=inclusive_kl",
            "train.steps=40",
            "train.batch_size=50",
            "train.log_every=10",
            "train.checkpoint_every=20",
            "train.alpha=1.0",
            f"output_dir={tmp_path}",
            *extra,
        ],
    )


def test_resume_equals_uninterrupted(tmp_path):
    grid = ["sweep.beta=[0.5,2.0]", "sweep.seed=[0,1]"]
    full = runner.run(_tiny_config(tmp_path / "full", *grid), progress=False, echo=lambda s: None)
    interrupted = _tiny_config(tmp_path / "cut", *grid)
    partial = runner.run(interrupted, progress=False, figures=False, stop_after=20, echo=lambda s: None)
    assert int(partial.state.step[0]) == 20
    messages = []
    resumed = runner.run(interrupted, progress=False, figures=False, echo=messages.append)
    assert messages == [f"resuming {tmp_path / 'cut'} from step 20"]
    for a, b in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(resumed.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    log = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["member"] == 0] == [10, 20, 30, 40]
    assert (tmp_path / "full" / "latents.png").exists() and (tmp_path / "full" / "summary.csv").exists()


def test_extending_steps_on_resume_equals_the_longer_run(tmp_path):
    grid = ["sweep.beta=[0.5,2.0]", "sweep.seed=[0,1]"]
    full = runner.run(_tiny_config(tmp_path / "full", *grid), progress=False, figures=False, echo=lambda s: None)
    runner.run(_tiny_config(tmp_path / "grow", *grid, "train.steps=20"), progress=False, figures=False,
               echo=lambda s: None)
    extended = runner.run(_tiny_config(tmp_path / "grow", *grid), progress=False, figures=False, echo=lambda s: None)
    for a, b in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(extended.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert json.loads((tmp_path / "grow" / "config.json").read_text())["train"]["steps"] == 40
    with pytest.raises(ValueError, match=r"changed: train.steps.*only train.steps may grow"):
        runner.run(_tiny_config(tmp_path / "grow", *grid, "train.steps=30"), progress=False, echo=lambda s: None)


def test_single_run_divergence_keeps_last_good_checkpoint(tmp_path):
    config = _tiny_config(tmp_path, "train.learning_rate=1e30", "train.steps=60")
    with pytest.raises(runner.TrainingDiverged, match="non-finite at step"):
        runner.run(config, progress=False, figures=False, echo=lambda s: None)


def test_sweep_reports_diverged_member(tmp_path):
    config = _tiny_config(tmp_path, "sweep.learning_rate=[1e-3,1e30]")
    messages = []
    result = runner.run(config, progress=False, figures=False, echo=messages.append)
    assert any("member 1 (" in m and "lr=1e+30" in m and "diverged" in m for m in messages)
    assert result.summary[0]["diverged_at"] == -1 and result.summary[1]["diverged_at"] >= 0
    assert np.isfinite(result.summary[0]["eval_loss"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.name=mnist", "data.name"),
        ("model.prior=cauchy", "model.prior"),
        ("model.latnt_dim=3", "unknown keys"),
        ("trian.steps=3", "unknown config sections"),
        ("train.steps=0", "train.steps"),
        ("train.learning_rate=-1.0", "train.learning_rate"),
        ("sweep.mode=grid", "sweep.mode"),
        ("model.prior=student_t", "df"),
        ("model.latent_dim=3", "latent_dim=2"),
        ("model.network=conv32", "network"),
    ],
)
def test_bad_configs(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        config = _tiny_config(tmp_path, override)
        runner.build(config)


@pytest.mark.parametrize("name, members", [("beta_sweep", 25), ("pinwheel_clustering", 6)])
def test_shipped_configs_parse(name, members):
    config = load_config(Path(__file__).parents[1] / "configs" / f"{name}.toml")
    assert len(runner.build_grid(config)) == members


def test_bad_prior_value_in_sweep(tmp_path):
    config = load_config(
        None,
        ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2", "model.likelihood=gaussian",
         "model.prior=student_t", "sweep.prior.df=[2.0,-1.0]", f"output_dir={tmp_path}"],
    )
    with pytest.raises(ValueError, match="df must be > 0"):
        runner.build(config)


def test_cli_sweep_smoke(tmp_path, capsys):
    args = [
        "sweep", "--no-progress",
        "--set", "data.name=pinwheel", "--set", "model.network=mlp", "--set", "model.latent_dim=2",
        "--set", "model.likelihood=gaussian", "--set", "model.prior=isotropic", "--set", "model.prior_params={}",
        "--set", "train.steps=20", "--set", "train.log_every=10", "--set", "sweep.beta=[1,2]",
        "--set", "sweep.prior={}", "--set", f"output_dir={tmp_path}",
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "2 member(s)" in out and "beta=2" in out and "eval_loss" in out
    assert cli.main(["sweep", "--set", "train.steps=-3"]) == 2
    assert "train.steps must be a positive integer" in capsys.readouterr().err


def test_cli_train_runs_one_member(tmp_path, capsys):
    config = Path(__file__).parents[1] / "configs" / "pinwheel_clustering.toml"
    args = ["train", "--no-progress", "--config", str(config), "--set", "train.steps=10",
            "--set", "train.log_every=5", "--set", "model.hidden=[8]", "--set", f"output_dir={tmp_path}"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "1 member(s)" in out and "beta=1 alpha=0" in out  # the [train] values, not the [sweep] grid
    assert (tmp_path / "latents.png").exists()
