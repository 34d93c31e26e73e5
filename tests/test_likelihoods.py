"""Likelihoods against scipy's log-densities, the registry, and the decoder means."""

import jax
import numpy as np
import pytest
from scipy import stats

from decompvae import likelihoods as lk

X = np.random.default_rng(0).uniform(size=(3, 4, 4, 1))
OUT = np.random.default_rng(1).normal(size=(3, 4, 4, 1))


def test_bernoulli_equals_scipy_on_binary_and_continuous_targets():
    p = 1 / (1 + np.exp(-OUT))
    binary = (X > 0.5).astype(float)
    expected = stats.bernoulli.logpmf(binary, p).reshape(3, -1).sum(-1)
    np.testing.assert_allclose(lk.bernoulli_log_likelihood(binary, OUT), expected, rtol=1e-5)
    continuous = (X * np.log(p) + (1 - X) * np.log1p(-p)).reshape(3, -1).sum(-1)  # the cross-entropy form
    np.testing.assert_allclose(lk.bernoulli_log_likelihood(X, OUT), continuous, rtol=1e-5)


@pytest.mark.parametrize("family, dist", [("laplace", stats.laplace), ("gaussian", stats.norm)])
def test_fixed_and_learned_scales_equal_scipy(family, dist):
    fixed = lk.make_likelihood(family)
    default = lk.LIKELIHOODS[family].default_scale
    expected = dist.logpdf(X, OUT, default).reshape(3, -1).sum(-1)
    np.testing.assert_allclose(fixed(X, OUT), expected, rtol=1e-5)
    scale = np.full_like(OUT, 0.3)
    np.testing.assert_allclose(fixed(X, (OUT, scale)), dist.logpdf(X, OUT, 0.3).reshape(3, -1).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(lk.make_likelihood(family, scale=2.0)(X, OUT),
                               dist.logpdf(X, OUT, 2.0).reshape(3, -1).sum(-1), rtol=1e-5)


def test_registry_errors_name_the_parameter():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        lk.make_likelihood("poisson")
    with pytest.raises(ValueError, match="scale is not used by the bernoulli"):
        lk.make_likelihood("bernoulli", scale=1.0)
    with pytest.raises(ValueError, match="scale"):
        lk.make_likelihood("gaussian", scale=0.0)


def test_means():
    np.testing.assert_allclose(lk.likelihood_mean("bernoulli", OUT), jax.nn.sigmoid(OUT), rtol=1e-6)
    np.testing.assert_array_equal(lk.likelihood_mean("gaussian", (OUT, OUT)), OUT)
    np.testing.assert_array_equal(lk.likelihood_mean("laplace", OUT), OUT)
