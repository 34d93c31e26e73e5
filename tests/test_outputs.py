"""The files of a run directory: log rows, the torn-line rule, tables, the resume check."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from decompvae import outputs
from decompvae.config import load_config


def test_log_rows_average_the_finite_steps_of_each_member():
    info = SimpleNamespace(loss=np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]]),
                           recon=np.ones((2, 3)), kl=np.zeros((2, 3)),
                           regulariser={"divergence": np.full((2, 3), 0.5)},  # the scalar form's one D
                           finite=np.array([[True, False, True], [False, False, False]]))
    rows = outputs.log_rows(30, info, np.array([-1, 27]))
    assert outputs.jsonl(rows).count("\n") == 2
    assert rows[0] == {"step": 30, "member": 0, "loss": 2.0, "recon": 1.0, "kl": 0.0, "regulariser": 0.5,
                       "diverged_at": -1}
    assert rows[1]["member"] == 1 and np.isnan(rows[1]["loss"]) and rows[1]["diverged_at"] == 27
    several = info.__dict__ | {"regulariser": {"mmd": np.full((2, 3), 0.5), "tc": np.array([[1.0, 9.0, 2.0]] * 2)}}
    row = outputs.log_rows(30, SimpleNamespace(**several), np.array([-1, 27]))[0]
    assert (row["regulariser.mmd"], row["regulariser.tc"]) == (0.5, 1.5) and "regulariser" not in row


def test_truncate_log_keeps_rows_up_to_the_step_and_drops_a_torn_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s}) + "\n" for s in (10, 20, 30)) + '{"step": 4')
    outputs.truncate_log(log, 20)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [10, 20]


def test_format_table_and_summary_csv(tmp_path):
    summary = [{"member": 0, "label": "beta=1", "eval_loss": 1.23456, "eval_recon": -1.0, "eval_kl": 0.2,
                "eval_regulariser": 0.0, "diverged_at": -1},
               {"member": 1, "label": "beta=4", "eval_loss": 2.0, "eval_recon": -2.0, "eval_kl": 0.1,
                "eval_regulariser": 0.0, "diverged_at": 7}]
    table = outputs.format_table(summary).splitlines()
    assert table[0].split() == ["member", "label", "eval_loss", "eval_recon", "eval_kl", "eval_regulariser", "status"]
    assert "1.235" in table[2] and table[2].split()[-1] == "ok" and table[3].split()[-1] == "diverged@7"
    outputs.write_summary(tmp_path, summary)
    assert (tmp_path / "summary.csv").read_text().splitlines()[0].startswith("member,label,eval_loss")


def test_resume_check_names_the_changed_settings(tmp_path):
    config = load_config(None, ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2",
                                "model.likelihood=gaussian", f"output_dir={tmp_path}"])
    outputs.prepare_output(config, resume=True)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["versions"]["jax"] and saved["data"]["name"] == "pinwheel"
    changed = load_config(None, ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2",
                                 "model.likelihood=gaussian", "train.beta=2.0", f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"changed: train.beta"):
        outputs.prepare_output(changed, resume=True)
    outputs.prepare_output(changed, resume=False)  # --fresh: allowed


def test_a_run_directory_of_the_previous_release_resumes_under_todays_names(tmp_path):
    """config.json as the release before prior_init/prior_learned wrote it: prior = "anisotropic_pca"."""
    base = ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2", "model.likelihood=gaussian",
            f"output_dir={tmp_path}"]
    config = load_config(None, [*base, "model.prior=anisotropic_logits", "model.prior_init=pca"])
    previous = config.to_dict()
    previous["model"].update(prior="anisotropic_pca", prior_init=None)
    del previous["model"]["prior_learned"]
    (tmp_path / "config.json").write_text(json.dumps(previous))
    outputs.prepare_output(config, resume=True)  # the same run: resumes
    learned = load_config(None, [*base, "model.prior=anisotropic_logits", "model.prior_learned=true"])
    (tmp_path / "config.json").write_text(json.dumps(previous))
    with pytest.raises(ValueError, match=r"changed: model.prior_learned"):
        outputs.prepare_output(learned, resume=True)
