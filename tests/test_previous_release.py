"""A run directory written by the release before ``model.prior_init`` / ``model.prior_learned`` (and before the
regularisers' config keys and log columns were named ``regulariser``) resumes today.

``tests/golden/run_before_prior_init`` was written by decompvae at commit 13dfd1b (``model.prior =
"anisotropic_pca"``, pinwheel data, a dense network of 8, 4 steps, checkpointed at step 4; the
figures and the report left out). Resumed to 6 steps with today's code, it must read its config
under today's names (``model.divergence*`` → ``model.regulariser*``) and end exactly where a fresh
6-step run with those names ends: the numbers did not move. Its log, whose first rows hold a
``divergence`` column, reads with today's column names.
"""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from decompvae import runner
from decompvae.config import Config, load_config
from decompvae.outputs import read_jsonl

OLD_RUN = Path(__file__).with_name("golden") / "run_before_prior_init"


def _log(out: Path) -> list[dict]:
    return read_jsonl(out / "log.jsonl")


@pytest.mark.slow  # two short trainings (about 7 s); tests/test_outputs.py checks the resume check's reading by default
def test_a_run_directory_of_the_previous_release_resumes_and_ends_as_a_fresh_run(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(OLD_RUN, old)
    stored = json.loads((old / "config.json").read_text())
    assert stored["model"]["prior"] == "anisotropic_pca" and "prior_learned" not in stored["model"]
    with pytest.warns(DeprecationWarning) as caught:
        config = Config.from_dict({**stored, "output_dir": str(old)})
    said = {str(w.message) for w in caught}
    assert "model.divergence is deprecated; use model.regulariser" in said
    assert any(m.startswith("model.prior='anisotropic_pca' is deprecated") for m in said)
    assert (config.model.prior, config.model.prior_init, config.model.prior_learned) == (
        "anisotropic_logits", "pca", False)
    runner.run(dataclasses.replace(config, train=dataclasses.replace(config.train, steps=6)), progress=False,
               figures=False, echo=lambda _: None)
    fresh = load_config(None, [
        "data.name=pinwheel", "data.eval_points=32", "model.network=mlp", "model.latent_dim=2", "model.hidden=[8]",
        "model.likelihood=gaussian", "model.prior=anisotropic_logits", "model.prior_init=pca",
        "train.batch_size=16", "train.steps=6", "train.log_every=2", "train.checkpoint_every=4",
        f"output_dir={tmp_path / 'fresh'}"])
    runner.run(fresh, progress=False, figures=False, echo=lambda _: None)
    assert [row["step"] for row in _log(old)] == [2, 4, 6]
    assert '"divergence": 0.0' in (old / "log.jsonl").read_text().splitlines()[0]  # written by the old code
    assert _log(old) == _log(tmp_path / "fresh")  # the two steps before the checkpoint came from the old code
    assert (old / "summary.csv").read_text() == (tmp_path / "fresh" / "summary.csv").read_text()
