"""The command line: sweep and train end to end, errors as exit codes."""

from pathlib import Path

from decompvae import cli


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
