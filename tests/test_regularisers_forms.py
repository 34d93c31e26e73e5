"""decompvae.regularisers.make_regularisers: every form of a regulariser normalised once into Regularisers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae.divergences import Regulariser, RegulariserInputs
from decompvae.networks import make_networks
from decompvae.objective import Hyperparams, make_objective
from decompvae.priors import make_prior
from decompvae.regularisers import (SINGLE, Regularisers, alpha_by_name, from_kinds, lift, make_regularisers,
                                   params_by_name, traced_numbers, weighted_sum)


def centred(key, y, posterior, prior):
    """A plain D: the aggregate's mean, squared."""
    return jnp.sum(jnp.mean(y, axis=0) ** 2)


def test_every_form_becomes_named_regularisers():
    none, empty_dict, empty_list = make_regularisers(None), make_regularisers({}), make_regularisers([])
    assert none == empty_dict == empty_list == Regularisers({}, single=True)
    one = make_regularisers("mmd", {"kernel": "rbf"})
    assert one.single and list(one.named) == [SINGLE] and isinstance(one.named[SINGLE], Regulariser)
    several = make_regularisers(["mmd", "total_correlation"], {"total_correlation": {"dataset_size": 100}})
    assert not several.single and sorted(several.named) == ["mmd", "total_correlation"]
    mixed = make_regularisers({"c": centred, "cap": "capacity"}, {"cap": {"num_steps": 10}})
    assert all(isinstance(r, Regulariser) for r in mixed.named.values()) and mixed.named["cap"].traced == ("c_max",)
    assert make_regularisers(several) is several  # already normalised: as it is


def test_lift_is_the_function_and_passes_regularisers_through():
    y = jax.random.normal(jax.random.key(0), (16, 3))
    inputs = RegulariserInputs(y=y, posterior=None, prior=None, kl=jnp.zeros(16))
    lifted = lift(centred)
    assert lifted.traced == () and lifted.adversary is None
    np.testing.assert_array_equal(lifted.estimate(jax.random.key(1), inputs), centred(None, y, None, None))
    assert lift(lifted) is lifted


def test_a_function_and_its_lifted_regulariser_give_the_same_loss():
    encoder, decoder = make_networks("mlp", 2, data_shape=(3,), hidden=(8,))
    x = jax.random.normal(jax.random.key(0), (32, 3))
    params = {"encoder": encoder.init(jax.random.key(1), x), "decoder": decoder.init(jax.random.key(2), x[:, :2])}
    kw = dict(likelihood="gaussian", prior=make_prior("isotropic", 2))
    hyper = Hyperparams(alpha=3.0)
    plain = make_objective(encoder, decoder, regulariser=centred, **kw)(jax.random.key(3), params, hyper, x)
    lifted = make_objective(encoder, decoder, regulariser=lift(centred), **kw)(jax.random.key(3), params, hyper, x)
    normalised = make_objective(encoder, decoder, regulariser=make_regularisers(centred), **kw)(
        jax.random.key(3), params, hyper, x)
    assert plain[0] == lifted[0] == normalised[0] and plain[1].regulariser["divergence"].shape == ()


def test_regularisers_from_kinds_are_the_normalised_config_forms():
    """build.py's path (``{name: (kind, options)}``) gives the loss of make_regularisers on the config's form."""
    encoder, decoder = make_networks("mlp", 2, data_shape=(3,), hidden=(8,))
    x = jax.random.normal(jax.random.key(0), (32, 3))
    params = {"encoder": encoder.init(jax.random.key(1), x), "decoder": decoder.init(jax.random.key(2), x[:, :2])}
    kw = dict(likelihood="gaussian", prior=make_prior("isotropic", 2))
    loss = lambda regs, alpha: make_objective(encoder, decoder, regulariser=regs, **kw)(  # noqa: E731
        jax.random.key(3), params, Hyperparams(alpha=alpha), x)[0]
    single = from_kinds({"mmd": ("mmd", {"kernel": "rbf"})}, single=True)
    assert single.single and list(single.named) == [SINGLE]
    assert loss(single, 2.0) == loss(make_regularisers("mmd", {"kernel": "rbf"}), 2.0)
    kinds = {"m": ("mmd", None), "tc": ("total_correlation", {"dataset_size": 100})}
    several = from_kinds(kinds, single=False)
    assert not several.single and sorted(several.named) == ["m", "tc"]
    alpha = {"m": 2.0, "tc": 0.5}
    assert loss(several, alpha) == loss(make_regularisers({"m": "mmd", "tc": "total_correlation"},
                                                          {"tc": {"dataset_size": 100}}), alpha)
    assert from_kinds({}, single=True) == Regularisers({}, single=True)
    with pytest.raises(ValueError, match="scalar form holds one regulariser"):
        from_kinds(kinds, single=True)


def test_traced_numbers_and_the_weighted_sum_follow_the_form():
    single = make_regularisers("capacity", {"num_steps": 10})
    assert traced_numbers(single, {"c_max": 5.0}) == {SINGLE: {"c_max": 5.0}}
    several = make_regularisers({"cap": "capacity", "mmd": "mmd"}, {"cap": {"num_steps": 10}})
    assert traced_numbers(several, {"cap": {"c_max": 5.0}}) == {"cap": {"c_max": 5.0}, "mmd": {}}
    with pytest.raises(ValueError, match="not among the regularisers"):
        traced_numbers(several, {"other": {"c_max": 1.0}})
    assert params_by_name({"c_max": 5.0}) == params_by_name({SINGLE: {"c_max": 5.0}}) == {SINGLE: {"c_max": 5.0}}
    assert params_by_name(None) == params_by_name({}) == {}
    with pytest.raises(ValueError, match="mixes"):
        params_by_name({"c_max": 5.0, "cap": {"c_max": 1.0}})
    assert traced_numbers(single, {SINGLE: {"c_max": 5.0}}) == {SINGLE: {"c_max": 5.0}}  # a sweep's stacked form
    assert weighted_sum({SINGLE: 2.0}, 3.0) == weighted_sum({SINGLE: 2.0}, {SINGLE: 3.0}) == 6.0  # the scalar form
    assert weighted_sum({"a": 2.0, "b": 1.0}, {"a": 3.0, "b": 4.0}) == 10.0
    with pytest.raises(ValueError, match="single regulariser: give a number"):
        weighted_sum({SINGLE: 2.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="a number, which weighs a single regulariser"):
        weighted_sum({"a": 2.0}, 1.0)
    with pytest.raises(ValueError, match="regularisers' names \\['a', 'b'\\]; got \\['a'\\]"):
        weighted_sum({"a": 2.0, "b": 1.0}, {"a": 1.0})
    assert alpha_by_name(4.0) == {SINGLE: 4.0} and alpha_by_name({"a": 1.0}) == {"a": 1.0}  # no names: the form only


@pytest.mark.parametrize("divergence, options, message", [
    (["mmd", "mmd"], None, "distinct kinds"),
    ({"a": "mmd"}, {"b": {}}, "not among the regularisers"),
    ("factor_vae", {"latent_dim": 2}, "needs the dict form"),
    (centred, {"kernel": "rbf"}, "needs a named regulariser"),
    (None, {"kernel": "rbf"}, "needs a named regulariser"),
    ({"a": 3}, None, "must be a kind, a function or a Regulariser"),
])
def test_bad_forms_are_refused_with_their_reason(divergence, options, message):
    with pytest.raises(ValueError, match=message):
        make_regularisers(divergence, options)
