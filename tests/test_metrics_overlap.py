"""The overlap estimators: the chunked exact mixture and the whole-data-set estimator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import metrics, priors
from decompvae.posteriors import gaussian as gaussian_posterior

TOL = 1e-5


def test_mixture_log_prob_equals_the_unchunked_mixture():
    key = jax.random.key(0)
    loc = jax.random.normal(key, (103, 3))
    raw = 0.3 * jax.random.normal(jax.random.key(1), (103, 3))
    z = jax.random.normal(jax.random.key(2), (37, 3))
    expected = metrics.aggregate_log_prob(gaussian_posterior(loc, raw), z)
    got = metrics.mixture_log_prob(gaussian_posterior, loc, raw, z, z_chunk=8, component_chunk=16)  # padding on both
    np.testing.assert_allclose(got, expected, atol=TOL)
    # A NumPy oracle of the mixture density.
    scale = np.exp(0.5 * np.asarray(raw)) + 1e-6
    lp = -0.5 * (((np.asarray(z)[:, None] - np.asarray(loc)[None]) / scale[None]) ** 2).sum(-1)
    lp -= np.log(scale).sum(-1)[None] + 1.5 * np.log(2 * np.pi)
    oracle = np.log(np.exp(lp).mean(1))
    np.testing.assert_allclose(got, oracle, atol=1e-4)


def test_non_gaussian_families_use_their_log_prob():
    from decompvae.posteriors import laplace as laplace_posterior

    loc = jax.random.normal(jax.random.key(0), (50, 2))
    raw = 0.1 * jax.random.normal(jax.random.key(1), (50, 2))
    z = jax.random.normal(jax.random.key(2), (7, 2))
    expected = metrics.aggregate_log_prob(laplace_posterior(loc, raw), z)
    got = metrics.mixture_log_prob(laplace_posterior, loc, raw, z, z_chunk=4, component_chunk=16)
    np.testing.assert_allclose(got, expected, atol=TOL)


def test_dataset_overlap_limits_and_identity():
    n, d = 500, 2
    prior = priors.isotropic(d)
    # Far-apart, narrow encoders: a look-up table, I_q = log N.
    loc = 50.0 * jnp.stack([jnp.arange(n, dtype=jnp.float32), jnp.zeros(n)], -1)
    raw = jnp.full((n, d), -4.0)
    info, se = jax.jit(lambda k: metrics.dataset_overlap(k, gaussian_posterior, loc, raw, prior, num_points=300,
                                                         component_chunk=64))(jax.random.key(0))
    np.testing.assert_allclose(info.mutual_information, np.log(n), atol=1e-4)
    assert float(se) < 1e-4
    # Identical encoders: full overlap, I_q = 0.
    info0, _ = metrics.dataset_overlap(jax.random.key(1), gaussian_posterior, jnp.zeros((n, d)), jnp.zeros((n, d)),
                                       prior, num_points=300)
    np.testing.assert_allclose(info0.mutual_information, 0.0, atol=1e-5)
    np.testing.assert_allclose(info0.aggregate_kl, info0.mean_kl, atol=1e-5)  # q(z) = q(z|x) = p(z) here
    # The identity E KL(q(z|x) ‖ p) = I + KL(q(z) ‖ p) holds on the same samples.
    np.testing.assert_allclose(info.mean_kl, info.mutual_information + info.aggregate_kl, rtol=1e-5)


def test_mixture_log_prob_rejects_bad_chunks():
    with pytest.raises(ValueError, match="component_chunk"):
        metrics.mixture_log_prob(gaussian_posterior, jnp.zeros((4, 2)), jnp.zeros((4, 2)), jnp.zeros((3, 2)),
                                 component_chunk=0)
