"""The paper's theory, numerically (Mathieu et al., 2019): Theorem 1, its Corollary,
Theorem 2 and the KL decomposition identity.

All in float64; the β-VAE objective per point is L_β(x) = recon − β·KL.
"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from decompvae.regularisers import make_regulariser
from decompvae import priors
from decompvae.metrics.overlap import overlap
from decompvae.objective import decomposition_terms

from _theory_setup import fixed_decoder, fixed_encoder

pytestmark = pytest.mark.usefixtures("x64")

EXACT = 1e-6  # the tolerance for the theorems
D, B, X_DIM = 4, 6, 5
BETAS = [0.5, 2.0, 4.0, 16.0]


def _decoder(seed=0):
    return fixed_decoder(D, B, X_DIM, seed)


def _encoder(seed=1, full=False):
    return fixed_encoder(D, B, seed, full)


def _objective(key, posterior, log_likelihood, prior, beta, alpha=0.0, regulariser=None, num_samples=3, kl="auto"):
    t = decomposition_terms(key, posterior, log_likelihood, prior, regulariser=regulariser, num_samples=num_samples, kl=kl)
    return t.recon - beta * t.kl - alpha * t.regulariser["divergence"], t


def _log_f_beta(beta, cov_diag):
    """log F_β = log ∫ N(z; 0, Σ)^β dz in closed form."""
    return (D * (1 - beta) / 2) * np.log(2 * np.pi) + ((1 - beta) / 2) * np.sum(np.log(cov_diag)) - (D / 2) * np.log(beta)


@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_log_f_beta_closed_form_by_quadrature(beta):
    # 1-D check of the normaliser of the annealed prior p^β, dimension by dimension.
    for var in [0.3, 1.0, 2.5]:
        integral, _ = quad(lambda z: norm(0, np.sqrt(var)).pdf(z) ** beta, -np.inf, np.inf)
        closed = ((1 - beta) / 2) * np.log(2 * np.pi) + ((1 - beta) / 2) * np.log(var) - 0.5 * np.log(beta)
        np.testing.assert_allclose(np.log(integral), closed, rtol=1e-8)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("beta", BETAS)
def test_theorem1_annealed_prior(beta, full):
    """L_β = [E_q log p(x|z) − KL(q ‖ f_β)] + (β − 1)·H[q] + log F_β."""
    cov = np.array([0.5, 1.0, 2.0, 3.0])
    prior = priors.anisotropic(variances=jnp.asarray(cov))
    annealed = priors.anisotropic(variances=jnp.asarray(cov / beta))  # f_β = N(0, Σ/β)
    q, log_lik = _encoder(full=full), _decoder()
    key = jax.random.key(3)
    lhs, _ = _objective(key, q, log_lik, prior, beta)
    t = decomposition_terms(key, q, log_lik, annealed, num_samples=3)
    rhs = t.recon - t.kl + (beta - 1) * q.entropy() + _log_f_beta(beta, cov)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=EXACT)


@pytest.mark.parametrize("beta", BETAS)
def test_corollary_rescaling(beta):
    """L_β(x) = ELBO'(x) + ((β−1)/2)·log|S'| + c for z' = √β z."""
    cov = np.array([0.5, 1.0, 2.0, 3.0])
    prior = priors.anisotropic(variances=jnp.asarray(cov))
    q, log_lik = _encoder(), _decoder()
    key = jax.random.key(4)
    lhs, _ = _objective(key, q, log_lik, prior, beta)
    sqrt_b = np.sqrt(beta)
    q_prime = distrax.MultivariateNormalDiag(sqrt_b * q.loc, sqrt_b * q.scale_diag)  # N(√β μ, β S)
    elbo_prime, _ = _objective(key, q_prime, lambda z: log_lik(z / sqrt_b), prior, 1.0)
    log_det_s_prime = jnp.sum(jnp.log(q_prime.scale_diag**2), axis=-1)
    c = (D * (beta - 1) / 2) * (1 + np.log(2 * np.pi / beta)) + _log_f_beta(beta, cov)
    np.testing.assert_allclose(lhs, elbo_prime + ((beta - 1) / 2) * log_det_s_prime + c, rtol=0, atol=EXACT)


def _random_rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(D, D)))
    return jnp.asarray(q * np.sign(np.diag(r)))


def _rotate(dist, rotation):
    """R_# dist: samples R·z (common random numbers), exact density."""
    return distrax.Transformed(dist, distrax.UnconstrainedAffine(rotation, jnp.zeros(D)))


def _rotated_objective(key, rotation, prior, beta, alpha, divergence, full, kl="mc", rotate_prior_samples=True):
    """L_β for the encoder N(Rμ, R S Rᵀ), decoder p(x | Rᵀ z) and prior p.

    Prior samples (used by MMD and the inclusive KL) are rotated as well where
    the prior is isotropic (R_# p = p), which keeps random numbers common.
    """
    q, log_lik = _encoder(full=full), _decoder()
    q_rot = _rotate(q, rotation)
    prior_for_samples = _rotate(prior, rotation) if rotate_prior_samples else prior

    class Prior(distrax.Distribution):  # density of p, samples of prior_for_samples
        event_shape = prior.event_shape
        batch_shape = prior.batch_shape

        def _sample_n(self, key, n):
            return prior_for_samples.sample(seed=key, sample_shape=(n,))

        def log_prob(self, value):
            return prior.log_prob(value)

    value, _ = _objective(
        key, q_rot, lambda z: log_lik(z @ rotation), Prior(), beta, alpha, divergence, kl=kl
    )
    return value


ISOTROPIC_DIVERGENCES = {
    "none": (0.0, None),
    "mmd_joint": (5.0, make_regulariser("mmd", per_dimension=False)),
    "mmd_joint_rbf": (5.0, make_regulariser("mmd", per_dimension=False, kernel="rbf")),
    "inclusive_kl": (1.0, make_regulariser("inclusive_kl")),
}


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("name", sorted(ISOTROPIC_DIVERGENCES))
def test_theorem2_rotation_invariance_isotropic(name, full):
    alpha, divergence = ISOTROPIC_DIVERGENCES[name]
    prior = priors.isotropic(D, scale=1.7)
    key = jax.random.key(5)
    identity = jnp.eye(D)
    base = _rotated_objective(key, identity, prior, 4.0, alpha, divergence, full)
    for seed in range(3):
        rotated = _rotated_objective(key, _random_rotation(seed), prior, 4.0, alpha, divergence, full)
        np.testing.assert_allclose(rotated, base, rtol=0, atol=EXACT)


@pytest.mark.parametrize("full", [False, True])
def test_theorem2_closed_form_kl_is_invariant(full):
    prior = priors.isotropic(D, scale=1.7)
    q = _encoder(full=full)
    cov = q.covariance()
    rotation = _random_rotation(7)
    q_rot = distrax.MultivariateNormalFullCovariance(q.loc @ rotation.T, rotation @ cov @ rotation.T)
    np.testing.assert_allclose(q_rot.kl_divergence(prior), q.kl_divergence(prior), rtol=1e-10)


NON_INVARIANT = {
    "anisotropic": (lambda: priors.anisotropic(variances=jnp.array([0.3, 0.8, 1.5, 3.0])), 0.0, None, False),
    "student_t": (lambda: priors.student_t(D, df=3.0), 0.0, None, False),
    "per_dimension_mmd": (lambda: priors.isotropic(D, scale=1.0), 50.0, make_regulariser("mmd"), True),
}


@pytest.mark.parametrize("name", sorted(NON_INVARIANT))
def test_theorem2_fails_without_isotropy(name):
    build, alpha, divergence, rotate_samples = NON_INVARIANT[name]
    prior, key = build(), jax.random.key(6)
    base = _rotated_objective(key, jnp.eye(D), prior, 4.0, alpha, divergence, False, rotate_prior_samples=rotate_samples)
    rotated = _rotated_objective(
        key, _random_rotation(0), prior, 4.0, alpha, divergence, False, rotate_prior_samples=rotate_samples
    )
    assert np.max(np.abs(rotated - base)) > 1e-2
    # A signed permutation is a symmetry of all three: the value is unchanged.
    perm = jnp.eye(D)[jnp.array([2, 0, 3, 1])] * jnp.array([1.0, -1.0, 1.0, -1.0])[:, None]
    if name != "anisotropic":  # distinct variances: only sign flips are symmetries
        permuted = _rotated_objective(key, perm, prior, 4.0, alpha, divergence, False, rotate_prior_samples=rotate_samples)
        np.testing.assert_allclose(permuted, base, atol=EXACT)
    flips = jnp.diag(jnp.array([1.0, -1.0, -1.0, 1.0]))
    flipped = _rotated_objective(key, flips, prior, 4.0, alpha, divergence, False, rotate_prior_samples=rotate_samples)
    np.testing.assert_allclose(flipped, base, atol=EXACT)


def test_kl_decomposition_identity():
    """E_n KL(q(z|x_n) ‖ p) = I_q(x; z) + KL(q(z) ‖ p) on a finite data set."""
    rng = np.random.default_rng(8)
    n = 12
    q = distrax.MultivariateNormalDiag(jnp.asarray(rng.normal(size=(n, 2))), jnp.asarray(rng.uniform(0.3, 0.9, (n, 2))))
    prior = priors.student_t(2, df=4.0)  # any prior: the identity needs no closed form
    info = overlap(jax.random.key(9), q, prior, num_samples=4000, chunk_size=1000)
    # Exact on the same samples …
    np.testing.assert_allclose(info.mean_kl, info.mutual_information + info.aggregate_kl, rtol=1e-12)
    # … and the Monte-Carlo estimates agree with closed forms where they exist.
    gauss = priors.isotropic(2, scale=1.0)
    info_g = overlap(jax.random.key(10), q, gauss, num_samples=4000, chunk_size=1000)
    np.testing.assert_allclose(info_g.mean_kl, jnp.mean(q.kl_divergence(gauss)), rtol=2e-2)
    np.testing.assert_allclose(info_g.entropy, jnp.mean(q.entropy()), rtol=1e-12)
    assert 0.0 < info_g.mutual_information < np.log(n)  # I ≤ log N for an N-point mixture
    assert info_g.aggregate_kl > 0.0
