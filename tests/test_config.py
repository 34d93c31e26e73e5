"""Configs: validation with errors that name the key, registries owned by their modules, shipped configs."""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import config as config_lib
from decompvae import data, likelihoods, networks, posteriors, priors, regularisers, runner
from decompvae.build import build
from decompvae.config import load_config
from decompvae.sweep import stack_members, take_member

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
        ("sweep.vectorize=-1", "sweep.vectorize"),
        ("sweep.chunk_size=2.5", "sweep.chunk_size"),
        ("model.prior=student_t", "df"),
        ("model.latent_dim=3", "latent_dim=2"),
        ("model.network=conv32", "network"),
    ],
)
def test_bad_configs(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        runner.build(_tiny_config(tmp_path, override))


@pytest.mark.parametrize("name, members", [("beta_sweep", 25), ("pinwheel_clustering", 6), ("default_dsprites_conv", 4)])
def test_shipped_configs_parse(name, members):
    config = load_config(Path(__file__).parents[1] / "configs" / f"{name}.toml")
    assert len(runner.build_grid(config)) == members


def _tiny_config(tmp_path, *extra):
    return load_config(None, ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2",
                              "model.likelihood=gaussian", "model.prior=pinwheel", f"output_dir={tmp_path}", *extra])


def test_config_names_come_from_the_registries():
    """Every registered name is accepted, and a refusal lists the registry's keys."""
    for key, registry in (("data.name", data.DATASETS), ("model.network", networks.NETWORKS),
                          ("model.likelihood", likelihoods.LIKELIHOODS), ("model.posterior", posteriors.POSTERIORS),
                          ("model.prior", priors.PRIORS), ("model.regulariser", regularisers.REGULARISERS)):
        with pytest.raises(ValueError, match=key) as refused:
            load_config(None, [f"{key}=no_such_name"])
        assert all(name in str(refused.value) for name in registry)


def _make_centred(*, power: float = 2.0):
    """A toy regulariser: the batch mean of the codes, away from 0, to the power ``power``."""
    return lambda key, y, posterior, prior: jnp.sum(jnp.abs(jnp.mean(y, axis=0)) ** power)


def test_a_kind_and_a_prior_registered_after_import_work_from_a_config(tmp_path, monkeypatch):
    """One function and its registration, in the user's own module: a config names them and a run trains."""
    monkeypatch.setitem(regularisers.REGULARISERS, "centred", regularisers.KindSpec(_make_centred, ("power",)))
    monkeypatch.setitem(priors.PRIORS, "wide", priors.PriorSpec(lambda dim: functools.partial(priors.isotropic, dim),
                                                                 example=lambda dim: ({}, {"scale": 4.0})))
    config = _tiny_config(tmp_path, "model.prior=wide", "model.prior_params.scale=4.0", "model.regulariser=centred",
                          "model.regulariser_options.power=1.0", "train.alpha=2.0", "train.steps=2",
                          "train.log_every=1", "train.checkpoint_every=2", "model.hidden=[8]")
    setup = build(config)
    hyper, learning_rates, keys = stack_members(setup.members, setup.fixed_prior)
    hyper, key = take_member((hyper, keys), 0)
    state = setup.trainer.init(jax.random.wrap_key_data(key), hyper, learning_rates[0])
    _, info = jax.jit(setup.trainer.run, static_argnums=3)(state, hyper, setup.data.data, 2)
    assert np.all(info.finite) and np.all(np.asarray(info.regulariser["divergence"]) > 0)
    assert float(hyper.alpha["divergence"]) == 2.0 and float(hyper.prior["scale"]) == 4.0


def test_required_prior_parameters_come_from_the_prior_registry(tmp_path):
    for name, spec in priors.PRIORS.items():
        for i, param in enumerate(spec.required):  # the earlier ones given: each missing one is named
            given = [f"model.prior_params.{p}=1.0" for p in spec.required[:i]]
            with pytest.raises(ValueError, match=f"model.prior={name!r} needs model.prior_params.{param}"):
                load_config(None, [f"model.prior={name}", *given, f"output_dir={tmp_path}"])


def test_dataset_paths_are_required_where_the_registry_says(tmp_path):
    for name, spec in data.DATASETS.items():
        if spec.needs_path:
            with pytest.raises(ValueError, match=f"data.path is required for data.name={name!r}"):
                load_config(None, [f"data.name={name}"])


def test_a_kind_with_an_adversary_must_be_named(tmp_path):
    """A kind whose registry entry trains an adversary (FactorVAE) is refused in the scalar form, by its name."""
    trained = [kind for kind, spec in regularisers.REGULARISERS.items() if spec.adversary]
    assert trained == ["factor_vae"]
    for kind in trained:
        with pytest.raises(ValueError, match=f'model.regulariser="{kind}" trains an adversary.*\\["{kind}"\\]'):
            _tiny_config(tmp_path, f"model.regulariser={kind}")
        assert _tiny_config(tmp_path, f'model.regulariser=["{kind}"]').model.regulariser == (kind,)


def test_overrides_parse_as_toml():
    assert config_lib.parse_override("sweep.beta=[1,2]") == (["sweep", "beta"], [1, 2])
    assert config_lib.parse_override("model.prior=student_t") == (["model", "prior"], "student_t")
    with pytest.raises(ValueError, match="section.key=value"):
        config_lib.parse_override("train.steps")


def _composed(**sections):
    """A pinwheel config with several regularisers and the given sections merged in."""
    tree = {"data": {"name": "pinwheel"}, "model": {"network": "mlp", "latent_dim": 2, "likelihood": "gaussian",
                                                    "regulariser": {"a": "mmd", "cap": "capacity"},
                                                    "regulariser_options": {"cap": {"num_steps": 10}}}}
    for section, values in sections.items():
        tree[section] = {**tree.get(section, {}), **values}
    return config_lib.Config.from_dict(tree)


def test_the_configs_views_read_one_form():
    """options_of, alpha_of, alpha_points and fixed_regulariser_params answer the same in either form."""
    composed = _composed(train={"alpha": {"a": 2.0, "cap": 3.0}},
                         model={"regulariser_params": {"cap": {"c_max": 5.0}}})
    assert composed.model.options_of("cap") == {"num_steps": 10} and composed.model.options_of("a") == {}
    assert (composed.train.alpha_of("a"), composed.train.alpha_of("cap")) == (2.0, 3.0)
    assert composed.model.fixed_regulariser_params() == {"cap.c_max": 5.0}
    single = config_lib.Config.from_dict({
        "data": {"name": "pinwheel"}, "train": {"alpha": 4.0},
        "model": {"network": "mlp", "latent_dim": 2, "likelihood": "gaussian", "regulariser": "capacity",
                  "regulariser_options": {"num_steps": 10}, "regulariser_params": {"c_max": 7.0}}})
    assert single.model.options_of("capacity") == {"num_steps": 10} and single.train.alpha_of("capacity") == 4.0
    assert single.model.fixed_regulariser_params() == {"c_max": 7.0}
    assert _composed(sweep={"alpha": [{"a": 1.0}, {"a": 2.0}]}).sweep.alpha_points
    assert not _composed(sweep={"alpha": {"a": [1.0, 2.0]}}).sweep.alpha_points


@pytest.mark.parametrize("sections, message", [
    ({"sweep": {"alpha": [1.0, 2.0]}}, "is {name = \\[values\\]} or a list of"),
    ({"sweep": {"alpha": {"b": [1.0]}}}, "sweep.alpha names \\['b'\\]"),
    ({"train": {"alpha": {"a": 1.0}}}, "train.alpha names \\['a'\\]"),
])
def test_named_weights_must_name_the_regularisers(sections, message):
    with pytest.raises(ValueError, match=message):
        _composed(**sections)
