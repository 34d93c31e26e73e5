"""The facade: `import decompvae as dv` gives the curated names, each the module's own object."""

import importlib
import re
from pathlib import Path

import decompvae as dv

GUIDE = Path(__file__).parents[1] / "docs" / "guide.md"

#: Where each facade name is defined: the facade re-exports, it defines nothing.
HOMES = {
    "Config": "config", "load_config": "config", "DATASETS": "data", "load_training_data": "data",
    "Divergence": "divergences", "Regulariser": "divergences", "evaluate_run": "evaluate",
    "load_run": "evaluate", "make_likelihood": "likelihoods", "METHODS": "methods", "NETWORKS": "networks",
    "make_networks": "networks", "Hyperparams": "objective", "ObjectiveTerms": "objective",
    "make_iwae": "objective", "make_model": "objective", "make_objective": "objective",
    "reduce_terms": "objective", "make_posterior": "posteriors", "PRIORS": "priors", "make_prior": "priors",
    "make_regulariser": "regularisers", "REGULARISERS": "regularisers", "write_report": "report", "run_experiment": "reproduce",
    "run": "runner", "Grid": "sweep", "make_sweep": "sweep", "TrainState": "train",
    "make_optimizer": "train", "make_trainer": "train", "model_params": "train",
}


def test_every_name_is_the_objects_of_its_module():
    assert set(dv.__all__) == set(HOMES) | {"metrics"}
    for name, module in HOMES.items():
        assert getattr(dv, name) is getattr(importlib.import_module(f"decompvae.{module}"), name), name
    assert dv.metrics is importlib.import_module("decompvae.metrics")


def test_the_guide_lists_exactly_the_facade():
    table = GUIDE.read_text().split("## The public API", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(?:dv\.)?([A-Za-z_]+)`", table)) & (set(dir(dv)) | set(dv.__all__))
    assert listed >= set(dv.__all__), sorted(set(dv.__all__) - listed)


def test_the_facade_composes_a_loss():
    import jax
    import jax.numpy as jnp

    encoder, decoder = dv.make_networks("mlp", 2, data_shape=(2,), hidden=(8,))
    objective = dv.make_objective(encoder, decoder, likelihood="gaussian", prior=dv.make_prior("isotropic", 2),
                                  regulariser="mmd")
    x = jax.random.normal(jax.random.key(0), (16, 2))
    params = {"encoder": encoder.init(jax.random.key(1), x), "decoder": decoder.init(jax.random.key(2), x[:, :2])}
    hyper = dv.Hyperparams(beta=2.0, alpha=3.0)
    loss, terms = objective(jax.random.key(3), params, hyper, x)
    expected = jnp.mean(-terms.recon + 2.0 * terms.kl) + 3.0 * terms.regulariser["divergence"]
    assert jnp.allclose(loss, expected, rtol=1e-6)
    assert jnp.allclose(dv.reduce_terms(terms, 2.0, 3.0), loss, rtol=1e-6)
