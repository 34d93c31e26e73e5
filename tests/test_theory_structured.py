"""Theory beyond the paper (issue 17), numerically in float64.

1. Theorem 2 for independent subspaces. With a prior that is rotation
   invariant within each block of a partition of z (block Student-t, block
   Gaussian scale mixture), for any block-diagonal orthogonal
   R = blockdiag(R_1, …, R_G), the encoder N(Rμ, R S Rᵀ) and the decoder
   p(x | Rᵀz): L_β (α = 0), and L_{α,β} with the block MMD (or the inclusive
   KL) as D, are unchanged. What is exactly invariant, sample by sample: on
   the same noise the rotated encoder's samples are R·z_k, so
   log p(x | RᵀR z_k) = log p(x | z_k), log q_R(R z_k) = log q(z_k) (|det R| = 1)
   and log p(R z_k) = log p(z_k); the block kernels see ‖(R a − R b)_g‖ =
   ‖a_g − b_g‖ if the prior's samples are rotated too, which leaves their
   distribution unchanged (R_# p = p). The encoder family matters: the rotated
   encoder has full covariance within blocks, so a *diagonal* family is closed
   under signed permutations only (the test rotates a diagonal encoder into a
   full one). A rotation that mixes blocks changes the objective.

2. The hierarchical prior prefers the true parent/child assignment: on a
   linear-Gaussian model with the exact posterior, the objective of the true
   assignment is log p(x) exactly, and a permuted assignment loses
   E_p[log p(z) − log p(Pz)] = KL(P_# p ‖ p) > 0 on average (a closed form
   for the linear-Gaussian prior).
"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import block_diag
from scipy.stats import multivariate_normal

from decompvae import priors
from decompvae.objective import decomposition_terms
from decompvae.regularisers import make_regulariser

from _theory_setup import fixed_decoder, fixed_encoder

pytestmark = pytest.mark.usefixtures("x64")

EXACT = 1e-10  # float64: what the theorems say is exact, up to rounding
MARGIN = 0.5  # the least change (nats, per point at worst) that counts as "not invariant"
SE_TOL = 5.0  # Monte-Carlo comparisons: within this many standard errors
BLOCKS = (2, 3, 2)
D, B, X_DIM, BETA = sum(BLOCKS), 6, 5, 4.0


def _decoder(seed=0):
    return fixed_decoder(D, B, X_DIM, seed)


def _encoder(seed=1, full=False):
    return fixed_encoder(D, B, seed, full)


def _orthogonal(k, rng):
    q, r = np.linalg.qr(rng.normal(size=(k, k)))
    return q * np.sign(np.diag(r))


def _block_rotation(seed):
    rng = np.random.default_rng(seed)
    return jnp.asarray(block_diag(*[_orthogonal(k, rng) for k in BLOCKS]))


def _mixing_rotation(seed):
    return jnp.asarray(_orthogonal(D, np.random.default_rng(100 + seed)))


def _rotate(dist, rotation):
    """R_# dist: samples R·z (common random numbers), exact density."""
    return distrax.Transformed(dist, distrax.UnconstrainedAffine(rotation, jnp.zeros(rotation.shape[0])))


class _RotatedSamples(distrax.Distribution):
    """The density of ``prior``, samples of R_# prior (the same in distribution where R_# p = p)."""

    def __init__(self, prior, rotation):
        super().__init__()
        self._prior, self._rotation = prior, rotation

    @property
    def event_shape(self):
        return self._prior.event_shape

    def _sample_n(self, key, n):
        return self._prior.sample(seed=key, sample_shape=(n,)) @ self._rotation.T

    def log_prob(self, value):
        return self._prior.log_prob(value)


def _objective(rotation, prior, alpha, divergence, full, rotate_prior_samples=True):
    """Per-point L_{α,β} for the encoder N(Rμ, R S Rᵀ), decoder p(x | Rᵀz), prior p (MC KL, K = 3)."""
    q, log_lik = _encoder(full=full), _decoder()
    sampled = _RotatedSamples(prior, rotation if rotate_prior_samples else jnp.eye(D))
    t = decomposition_terms(jax.random.key(5), _rotate(q, rotation), lambda z: log_lik(z @ rotation), sampled,
                            regulariser=divergence, num_samples=3, kl="mc")
    return t.recon - BETA * t.kl - alpha * t.regulariser["divergence"]


def _block_t():
    return priors.block_student_t(BLOCKS, df=jnp.array([2.5, 4.0, 7.0]), scale=jnp.array([0.8, 1.2, 1.0]))


def _block_mixture():
    return priors.block_scale_mixture(BLOCKS, scales=jnp.array([0.3, 1.5]), weights=jnp.array([0.4, 0.6]))


INVARIANT = {  # name: (prior, α, D)
    "block_student_t": (_block_t, 0.0, None),
    "block_scale_mixture": (_block_mixture, 0.0, None),
    "block_student_t+block_mmd": (_block_t, 5.0, make_regulariser("mmd", blocks=BLOCKS)),
    "block_scale_mixture+block_mmd_rbf": (_block_mixture, 5.0, make_regulariser("mmd", blocks=BLOCKS, kernel="rbf")),
    "isotropic+block_mmd": (lambda: priors.isotropic(D, scale=1.3), 5.0, make_regulariser("mmd", blocks=BLOCKS)),
    "block_student_t+inclusive_kl": (_block_t, 1.0, make_regulariser("inclusive_kl")),
}


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("name", sorted(INVARIANT))
def test_theorem2_for_subspaces_block_rotations_are_symmetries(name, full):
    build, alpha, divergence = INVARIANT[name]
    prior = build()
    base = _objective(jnp.eye(D), prior, alpha, divergence, full)
    for seed in range(3):
        rotated = _objective(_block_rotation(seed), prior, alpha, divergence, full)
        np.testing.assert_allclose(rotated, base, rtol=0, atol=EXACT)


NOT_INVARIANT = {  # name: (prior, α, D); prior samples are rotated only where R_# p = p for every R
    "block_student_t": (_block_t, 0.0, None, False),
    "block_scale_mixture": (_block_mixture, 0.0, None, False),
    "isotropic+block_mmd": (
        lambda: priors.isotropic(D, scale=1.3), 50.0, make_regulariser("mmd", blocks=BLOCKS), True
    ),
}


@pytest.mark.parametrize("name", sorted(NOT_INVARIANT))
def test_theorem2_for_subspaces_fails_for_rotations_that_mix_blocks(name):
    build, alpha, divergence, rotate_samples = NOT_INVARIANT[name]
    prior = build()
    base = _objective(jnp.eye(D), prior, alpha, divergence, False, rotate_samples)
    for seed in range(3):
        mixed = _objective(_mixing_rotation(seed), prior, alpha, divergence, False, rotate_samples)
        assert np.max(np.abs(mixed - base)) > MARGIN, seed


def test_swapping_equal_blocks_with_equal_parameters_is_a_symmetry():
    """Blocks 0 and 2 (both of size 2, the same ν and σ) may trade places, after any block rotation."""
    prior = priors.block_student_t(BLOCKS, df=jnp.array([3.0, 5.0, 3.0]), scale=jnp.array([0.9, 1.2, 0.9]))
    swap = jnp.eye(D)[jnp.array([5, 6, 2, 3, 4, 0, 1])]
    divergence = make_regulariser("mmd", blocks=BLOCKS)
    base = _objective(jnp.eye(D), prior, 5.0, divergence, True)
    np.testing.assert_allclose(_objective(swap @ _block_rotation(4), prior, 5.0, divergence, True), base, atol=EXACT)
    unequal = priors.block_student_t(BLOCKS, df=jnp.array([3.0, 5.0, 30.0]), scale=1.0)  # ν differs: no longer a symmetry
    moved = _objective(swap, unequal, 0.0, None, True) - _objective(jnp.eye(D), unequal, 0.0, None, True)
    assert np.max(np.abs(moved)) > MARGIN


@pytest.mark.parametrize("full", [False, True])
def test_one_block_multivariate_t_keeps_full_rotation_invariance(full):
    """One block of size D is spherical: unlike the product of 1-D Student-t's, it cannot break Theorem 2."""
    prior = priors.block_student_t((D,), df=3.0, scale=1.1)
    base = _objective(jnp.eye(D), prior, 0.0, None, full)
    for seed in range(2):
        np.testing.assert_allclose(_objective(_mixing_rotation(seed), prior, 0.0, None, full), base, atol=EXACT)
    product = priors.block_student_t((1,) * D, df=3.0, scale=1.1)  # the paper's Student-t prior
    changed = _objective(_mixing_rotation(0), product, 0.0, None, full)
    changed = changed - _objective(jnp.eye(D), product, 0.0, None, full)
    assert np.max(np.abs(changed)) > MARGIN


# -- the hierarchical prior prefers the true hierarchy ----------------------------------------------

PARENTS, CHILDREN = 2, 2
W_TRUE = np.array([[1.5, 0.0], [0.5, -1.0]])  # [C, P]
S_TRUE = np.array([0.4, 0.3])
#: The wrong assignment: the children's coordinates are read as parents and vice versa.
SWAP = np.eye(4)[[2, 3, 0, 1]]


def _hierarchical(log_scale_weights=None):
    return priors.hierarchical(PARENTS + CHILDREN, PARENTS, weights=W_TRUE, log_scale_weights=log_scale_weights,
                               child_scale=S_TRUE)


def _prior_cov():
    """Σ of the linear-Gaussian (V = 0) hierarchical prior with unit parents."""
    return np.block([[np.eye(2), W_TRUE.T], [W_TRUE, W_TRUE @ W_TRUE.T + np.diag(S_TRUE**2)]])


def _kl_swapped(cov):
    """KL(N(0, PΣPᵀ) ‖ N(0, Σ)) = ½[tr(Σ⁻¹PΣPᵀ) − D] (the log-determinants agree)."""
    return 0.5 * (np.trace(np.linalg.solve(cov, SWAP @ cov @ SWAP.T)) - cov.shape[0])


@pytest.mark.parametrize("log_scale", [0.0, 0.3])
def test_codes_from_the_hierarchy_are_more_likely_under_the_true_assignment(log_scale):
    """E_{z~p}[log p(z) − log p(Pz)] = KL(p ‖ p∘P) ≥ 0; the closed form where V = 0."""
    prior = _hierarchical(np.full((CHILDREN, PARENTS), log_scale))
    z = prior.sample(seed=jax.random.key(11), sample_shape=(20_000,))
    gap = np.asarray(prior.log_prob(z) - prior.log_prob(z @ SWAP.T))  # [n]
    mean, se = gap.mean(), gap.std() / np.sqrt(gap.size)
    assert mean - SE_TOL * se > 0.5
    if log_scale == 0.0:
        assert abs(mean - _kl_swapped(_prior_cov())) < SE_TOL * se


def _linear_gaussian_vae(seed=12, n=400, x_dim=6, noise=0.5):
    """Data from the true model, the decoder N(Az, σ²I) and the exact posterior q(z|x) = p(z|x)."""
    rng = np.random.default_rng(seed)
    cov = _prior_cov()
    a = rng.normal(size=(x_dim, 4))
    z = rng.multivariate_normal(np.zeros(4), cov, size=n)
    x = z @ a.T + noise * rng.normal(size=(n, x_dim))
    post_cov = np.linalg.inv(np.linalg.inv(cov) + a.T @ a / noise**2)
    post_mean = x @ a @ post_cov / noise**2  # [n, 4] (post_cov is symmetric)
    covs = jnp.asarray(np.broadcast_to(post_cov, (n, 4, 4)))
    posterior = distrax.MultivariateNormalFullCovariance(jnp.asarray(post_mean), covs)

    def log_likelihood(zs):
        r = (jnp.asarray(x) - zs @ a.T) / noise
        return jnp.sum(-0.5 * r**2 - jnp.log(noise) - 0.5 * jnp.log(2 * jnp.pi), -1)

    evidence = multivariate_normal(np.zeros(x_dim), a @ cov @ a.T + noise**2 * np.eye(x_dim)).logpdf(x)
    return posterior, log_likelihood, evidence


def test_objective_prefers_the_true_parent_child_assignment():
    posterior, log_lik, evidence = _linear_gaussian_vae()
    key, prior = jax.random.key(13), _hierarchical()
    true = decomposition_terms(key, posterior, log_lik, prior, num_samples=4, kl="mc")
    elbo_true = true.recon - true.kl
    np.testing.assert_allclose(elbo_true, evidence, atol=EXACT)  # exact posterior: ELBO = log p(x) per sample
    swap = jnp.asarray(SWAP)  # the same model with the roles of the coordinates exchanged
    swapped, swapped_lik = _rotate(posterior, swap), lambda z: log_lik(z @ swap)
    perm = decomposition_terms(key, swapped, swapped_lik, prior, num_samples=4, kl="mc")
    np.testing.assert_allclose(perm.recon, true.recon, atol=EXACT)  # the decoder sees the same codes
    gap = np.asarray(elbo_true - (perm.recon - perm.kl))  # [n] = mean_k [log p(z_k) − log p(P z_k)]
    mean, se = gap.mean(), gap.std() / np.sqrt(gap.size)
    kl = _kl_swapped(_prior_cov())  # z_k ~ q(z|x_n), x_n ~ p(x): z_k ~ p(z)
    assert mean > 0.5 * kl > 0.5
    assert abs(mean - kl) < SE_TOL * se
    # Control: a prior that is symmetric under the swap (isotropic) has no preference.
    iso = priors.isotropic(4, scale=1.0)
    iso_true = decomposition_terms(key, posterior, log_lik, iso, num_samples=4, kl="mc")
    iso_perm = decomposition_terms(key, swapped, swapped_lik, iso, num_samples=4, kl="mc")
    np.testing.assert_allclose(iso_perm.recon - iso_perm.kl, iso_true.recon - iso_true.kl, atol=EXACT)
