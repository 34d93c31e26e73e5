"""configs/methods/*.toml: each is its method's setting and grid (decompvae.methods.METHODS), and each runs."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from decompvae import runner
from decompvae.build import build_grid
from decompvae.config import load_config
from decompvae.methods import METHODS
from decompvae.sweep import Grid

CONFIGS = Path(__file__).parents[1] / "configs" / "methods"
NAMES = ["beta_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii", "factor_vae", "annealed_vae", "info_vae",
         "decomposition"]
SHORT = ["model.network=mlp", "model.hidden=[8]", "train.batch_size=8", "train.steps=2", "train.log_every=2",
         "train.checkpoint_every=2", "sweep.seed=[0]", "data.eval_points=16"]


def test_every_method_has_a_config():
    assert sorted(p.stem for p in CONFIGS.glob("*.toml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_is_the_methods_grid(name):
    method = METHODS[name]
    config = load_config(CONFIGS / f"{name}.toml")
    assert config.model.prior == method.prior and config.train.beta == method.beta
    assert config.model.prior_init == method.prior_init and not config.model.prior_learned
    assert config.model.regulariser_names() == method.regulariser
    expected = Grid(**{"beta": [method.beta], **method.grid, "seed": list(range(5)),
                       "learning_rate": [1e-4]}).members()
    found = build_grid(config).members()
    if method.regulariser_params and "regulariser_params" not in method.grid:
        found = [dataclasses.replace(m, regulariser_params={}) for m in found]
    assert found == expected


# 6–14 s each on 2 cores (a 2-step run of the runner); the default run builds every method in test_methods.py.
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_config_runs(name, tmp_path):
    config = load_config(CONFIGS / f"{name}.toml", [*SHORT, f"output_dir={tmp_path}"])
    result = runner.run(config, progress=False, figures=False, echo=lambda s: None)
    assert len(result.summary) == len(METHODS[name].varied[1])
    assert all(np.isfinite(r["eval_loss"]) for r in result.summary)
    assert (tmp_path / "summary.csv").exists()
