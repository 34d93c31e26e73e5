"""Posterior families: scales from the encoder's raw output, floors, marginals, the registry."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from decompvae import posteriors as post

LOC = np.array([[0.5, -1.0], [2.0, 0.0]])
RAW = np.array([[0.0, -2.0], [1.0, 3.0]])


def test_gaussian_scale_is_exp_half_log_variance_plus_floor():
    q = post.gaussian(LOC, RAW)
    np.testing.assert_allclose(q.stddev(), np.exp(0.5 * RAW) + post.SCALE_FLOOR, rtol=1e-6)
    z = np.array([[0.1, 0.2], [0.3, 0.4]])
    expected = stats.norm.logpdf(z, LOC, np.exp(0.5 * RAW) + post.SCALE_FLOOR).sum(-1)
    np.testing.assert_allclose(q.log_prob(z), expected, rtol=1e-5)


def test_softplus_gaussian_and_laplace_scales():
    np.testing.assert_allclose(post.gaussian_softplus(LOC, RAW).stddev(), np.log1p(np.exp(RAW)) + post.SCALE_FLOOR,
                               rtol=1e-5)
    q = post.laplace(LOC, RAW)
    z = np.array([[0.1, 0.2], [0.3, 0.4]])
    expected = stats.laplace.logpdf(z, LOC, np.exp(RAW) + post.SCALE_FLOOR).sum(-1)
    np.testing.assert_allclose(q.log_prob(z), expected, rtol=1e-5)


def test_extreme_raw_outputs_stay_finite():
    for family in post.POSTERIORS:
        q = post.make_posterior(family)(jnp.zeros((1, 2)), jnp.array([[-1e4, 1e4]]))
        assert np.all(np.isfinite(q.log_prob(jnp.zeros((1, 2))))), family
        assert q.stddev()[0, 0] >= np.float32(post.SCALE_FLOOR)


def test_marginal_log_prob_sums_to_the_joint():
    for family in post.POSTERIORS:
        q = post.make_posterior(family)(LOC, RAW)
        z = jnp.array([[0.1, 0.2], [0.3, 0.4]])
        np.testing.assert_allclose(post.marginal_log_prob(q, z).sum(-1), q.log_prob(z), rtol=1e-5)


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="posterior must be one of"):
        post.make_posterior("cauchy")


@pytest.mark.parametrize("old, new", [("diagonal_gaussian", "gaussian"), ("softplus_gaussian", "gaussian_softplus"),
                                      ("laplace_posterior", "laplace")])
def test_previous_names_warn_and_give_the_same_distribution(old, new):
    """Each constructor is named as its POSTERIORS key; the previous names still work, with a DeprecationWarning."""
    assert post.POSTERIORS[new] is getattr(post, new)
    with pytest.warns(DeprecationWarning, match=f"posteriors.{old} is deprecated; use decompvae.posteriors.{new}"):
        q_old = getattr(post, old)(LOC, RAW)
    np.testing.assert_array_equal(q_old.log_prob(LOC + 0.3), getattr(post, new)(LOC, RAW).log_prob(LOC + 0.3))
