"""The runner: resume = uninterrupted, extending a run, divergence policy, building from a config."""

import json
import math

import jax
import numpy as np
import pytest

from decompvae import runner
from decompvae.config import load_config


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
            "model.regulariser=inclusive_kl",
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


def test_bad_prior_value_in_sweep(tmp_path):
    config = load_config(
        None,
        ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2", "model.likelihood=gaussian",
         "model.prior=student_t", "sweep.prior.df=[2.0,-1.0]", f"output_dir={tmp_path}"],
    )
    with pytest.raises(ValueError, match="df must be > 0"):
        runner.build(config)



#: The plan tests compile several programs: the isotropic prior alone compiles in about half the time.
LIGHT = ["model.prior=isotropic", "model.regulariser=none", "train.alpha=0.0"]


def test_plan_counts_members_programs_and_memory(tmp_path):
    """The dry run: every member listed, one chunk, and XLA's memory of the vmapped and the looped program."""
    grid = ["sweep.beta=[0.5,1.0,2.0]", "sweep.seed=[0,1]", *LIGHT]
    vmapped = runner.plan(_tiny_config(tmp_path, *grid, "sweep.vectorize=6"), time_it=False)
    looped = runner.plan(_tiny_config(tmp_path, *grid, "sweep.vectorize=1"), time_it=False)
    assert len(vmapped.labels) == 6 and vmapped.chunk_size == 6 and vmapped.n_devices in (1, 2, 3, 6)
    assert vmapped.programs == 3  # init, training of log_every steps, held-out summary (40 % 10 == 0)
    assert vmapped.bytes_per_member > 0 and vmapped.bytes_per_chunk > looped.bytes_per_chunk > 0
    text = runner.format_plan(vmapped, _tiny_config(tmp_path, *grid))
    assert "6 member(s), 40 steps each" in text and "chunk: 6 member(s)" in text


def test_a_large_sweep_is_chunked_by_the_memory_estimate(tmp_path, monkeypatch):
    """Above AUTO_CHUNK_ABOVE members and with no chunk_size, the chunk comes from XLA's estimate for one member."""
    monkeypatch.setattr(runner, "AUTO_CHUNK_ABOVE", 2)
    p = runner.plan(_tiny_config(tmp_path, "sweep.beta=[0.5,1.0,2.0]", "sweep.devices=1", *LIGHT), time_it=False)
    assert len(p.labels) == 3 and 1 <= p.chunk_size and p.bytes_per_member > 0


def test_plan_estimates_the_training_time_from_a_timed_chunk(tmp_path):
    grid = ["sweep.beta=[0.5,1.0,2.0]", "sweep.chunk_size=2", "sweep.devices=1", *LIGHT]
    config = _tiny_config(tmp_path, *grid)
    p = runner.plan(config)
    assert p.chunk_size == 2 and p.seconds_per_step > 0 and p.compile_seconds > 0
    chunks = 2  # 3 members in chunks of 2
    assert p.train_seconds == pytest.approx(chunks * config.train.steps * p.seconds_per_step)
    assert p.images_per_member == config.train.steps * config.train.batch_size
    assert p.estimate_seconds >= p.compile_seconds
    text = runner.format_plan(p, config)
    assert f"images per member: {p.images_per_member:,}" in text and "time: ≈ " in text
    assert "the estimate took" in text
    shard = runner.shard_config(config, "1/2")
    untimed = runner.plan(shard, time_it=False)
    assert math.isnan(untimed.train_seconds) and "1 member(s) (shard 1/2)" in runner.format_plan(untimed, shard)
