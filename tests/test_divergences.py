"""Divergence estimators D(q(z), p(z)): oracles, expectations, validation."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import divergences as dv
from decompvae import priors

# Tolerance, in Monte-Carlo standard errors, for expectation checks.
SE_TOL = 4.0


def _numpy_mmd(x, y, scales=dv.DEFAULT_SCALES, per_dimension=True, kernel="imq"):
    """Direct double-loop MMD²_u, the oracle (SPEC §3.1)."""
    dim = 1 if per_dimension else x.shape[1]

    def k(a, b):
        total = 0.0
        for s in scales:
            c = 2.0 * dim * s
            parts = (a - b) ** 2 if per_dimension else [np.sum((a - b) ** 2)]
            for r in parts:
                total += c / (c + r) if kernel == "imq" else np.exp(-r / c)
        return total

    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m))
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (n * m)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("per_dimension", [True, False])
def test_mmd_equals_double_loop(kernel, per_dimension):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(loc=0.5, size=(5, 3))
    got = dv.mmd(jnp.asarray(x), jnp.asarray(y), kernel=kernel, per_dimension=per_dimension)
    np.testing.assert_allclose(got, _numpy_mmd(x, y, per_dimension=per_dimension, kernel=kernel), rtol=1e-12)


@pytest.mark.parametrize("per_dimension", [True, False])
def test_mmd_unbiased_for_same_distribution(per_dimension):
    keys = jax.random.split(jax.random.key(0), 400)

    def one(key):
        kx, ky = jax.random.split(key)
        return dv.mmd(jax.random.normal(kx, (32, 4)), jax.random.normal(ky, (32, 4)), per_dimension=per_dimension)

    same = np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)
    se = same.std(ddof=1) / np.sqrt(same.size)
    assert abs(same.mean()) < SE_TOL * se, (same.mean(), se)

    def shifted(key):
        kx, ky = jax.random.split(key)
        return dv.mmd(jax.random.normal(kx, (32, 4)), 0.5 + jax.random.normal(ky, (32, 4)), per_dimension=per_dimension)

    diff = np.asarray(jax.jit(jax.vmap(shifted))(keys[:50]), np.float64)
    assert diff.mean() > 20 * se and np.all(diff > 0)


def test_mmd_invalid():
    x = jnp.zeros((4, 2))
    with pytest.raises(ValueError, match="kernel"):
        dv.mmd(x, x, kernel="laplacian")
    with pytest.raises(ValueError, match="at least 2"):
        dv.mmd(x[:1], x)
    with pytest.raises(ValueError, match="dimension"):
        dv.mmd(x, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="scales"):
        dv.mmd(x, x, scales=(1.0, -1.0))


def _same_encoders(q0_loc, q0_scale, batch):
    loc = jnp.broadcast_to(q0_loc, (batch,) + q0_loc.shape)
    return distrax.MultivariateNormalDiag(loc, jnp.broadcast_to(q0_scale, loc.shape))


@pytest.mark.usefixtures("x64")
def test_inclusive_kl_zero_when_encoders_are_the_prior():
    prior = priors.isotropic_gaussian(3, 1.0)
    post = _same_encoders(jnp.zeros(3), jnp.ones(3), 8)
    np.testing.assert_allclose(dv.inclusive_kl(jax.random.key(0), post, prior), 0.0, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_inclusive_and_exclusive_kl_match_closed_form():
    # All B encoders equal q0: q̂ = q0, so the estimators are MC estimates of
    # KL(p‖q0) and KL(q0‖p), which distrax knows in closed form.
    prior = priors.anisotropic_gaussian(jnp.array([0.5, 1.0, 2.0]))
    loc, scale = jnp.array([0.3, -0.2, 0.1]), jnp.array([0.8, 1.1, 1.3])
    q0 = distrax.MultivariateNormalDiag(loc, scale)
    batch = 1000
    post = _same_encoders(loc, scale, batch)
    key_p, key_q = jax.random.split(jax.random.key(1))
    inc = dv.inclusive_kl(key_p, post, prior, num_samples=4000)
    z = prior.sample(seed=key_p, sample_shape=(4000,))
    se_inc = np.std(prior.log_prob(z) - q0.log_prob(z)) / np.sqrt(4000)
    assert abs(inc - prior.kl_divergence(q0)) < SE_TOL * se_inc
    y = post.sample(seed=key_q)
    exc = dv.exclusive_kl(y, post, prior)
    se_exc = np.std(q0.log_prob(y) - prior.log_prob(y)) / np.sqrt(batch)
    assert abs(exc - q0.kl_divergence(prior)) < SE_TOL * se_exc
    # Minibatch-weighted sampling: a constant offset of −log N.
    np.testing.assert_allclose(dv.exclusive_kl(y, post, prior, dataset_size=500), exc - np.log(500), rtol=1e-10)


@pytest.mark.usefixtures("x64")
def test_total_correlation_brute_force_and_signs():
    rng = np.random.default_rng(2)
    b, d = 5, 3
    loc, scale = rng.normal(size=(b, d)), rng.uniform(0.5, 1.5, size=(b, d))
    y = rng.normal(size=(b, d))
    post = distrax.MultivariateNormalDiag(jnp.asarray(loc), jnp.asarray(scale))
    from scipy.special import logsumexp
    from scipy.stats import norm

    logq = np.array([[norm(loc[j], scale[j]).logpdf(y[i]).sum() for j in range(b)] for i in range(b)])
    logqd = np.array([[norm(loc[j], scale[j]).logpdf(y[i]) for j in range(b)] for i in range(b)])  # [i, j, d]
    want = np.mean(logsumexp(logq, axis=1) - np.log(b) - (logsumexp(logqd, axis=1) - np.log(b)).sum(-1))
    np.testing.assert_allclose(dv.total_correlation(jnp.asarray(y), post), want, rtol=1e-10)
    # Identical factorised encoders: the aggregate factorises, TC = 0 exactly.
    same = _same_encoders(jnp.zeros(d), jnp.ones(d), 16)
    np.testing.assert_allclose(dv.total_correlation(same.sample(seed=jax.random.key(0)), same), 0.0, atol=1e-12)
    # Encoders strung along the diagonal: strongly dependent aggregate.
    t = jnp.linspace(-3, 3, 64)[:, None]
    line = distrax.MultivariateNormalDiag(t * jnp.ones(d), 0.05 * jnp.ones((64, d)))
    assert dv.total_correlation(line.sample(seed=jax.random.key(1)), line) > 1.0


def test_make_divergence_invalid():
    with pytest.raises(ValueError, match="divergence"):
        dv.make_divergence("wasserstein")
    with pytest.raises(ValueError, match="unknown options"):
        dv.make_divergence("inclusive_kl", kernel="imq")
    with pytest.raises(ValueError, match="kernel"):
        dv.make_divergence("mmd", kernel="cosine")
    with pytest.raises(ValueError, match="dataset_size"):
        dv.exclusive_kl(jnp.zeros((2, 2)), _same_encoders(jnp.zeros(2), jnp.ones(2), 2), priors.laplace(2), 0)
