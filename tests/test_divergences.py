"""Divergence estimators D(q(z), p(z)): oracles, expectations, validation."""

import functools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import divergences as dv
from decompvae.regularisers import make_regulariser
from decompvae import priors

# Tolerance, in Monte-Carlo standard errors, for expectation checks.
SE_TOL = 4.0


def _numpy_mmd(x, y, scales=dv.DEFAULT_SCALES, per_dimension=True, kernel="imq"):
    """Direct double-loop MMD²_u, the oracle."""
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
    prior = priors.isotropic(3, scale=1.0)
    post = _same_encoders(jnp.zeros(3), jnp.ones(3), 8)
    np.testing.assert_allclose(dv.inclusive_kl(jax.random.key(0), post, prior), 0.0, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_inclusive_and_exclusive_kl_match_closed_form():
    # All B encoders equal q0: q̂ = q0, so the estimators are MC estimates of
    # KL(p‖q0) and KL(q0‖p), which distrax knows in closed form.
    prior = priors.anisotropic(variances=jnp.array([0.5, 1.0, 2.0]))
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


def test_make_regulariser_invalid():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_regulariser("wasserstein")
    with pytest.raises(ValueError, match="unknown options"):
        make_regulariser("inclusive_kl", kernel="imq")
    with pytest.raises(ValueError, match="kernel"):
        make_regulariser("mmd", kernel="cosine")
    with pytest.raises(ValueError, match="dataset_size"):
        laplace = priors.make_prior("laplace", 2)()
        dv.exclusive_kl(jnp.zeros((2, 2)), _same_encoders(jnp.zeros(2), jnp.ones(2), 2), laplace, dataset_size=0)


# β-TCVAE's decomposition: index-code MI, TC and dimension-wise KL (Chen et al. 2018, Eq. 2).

TCVAE_TERMS = (dv.mutual_information, dv.total_correlation, dv.dimensionwise_kl)
SAMPLINGS = [(None, "mws"), (40, "mws"), (40, "mss")]  # (dataset_size, sampling); None: the minibatch mixture


@functools.partial(jax.jit, static_argnums=(3, 4))
def _jit_tcvae_terms(y, post, prior, dataset_size, sampling):
    return jnp.stack([
        dv.mutual_information(y, post, dataset_size=dataset_size, sampling=sampling),
        dv.total_correlation(y, post, dataset_size=dataset_size, sampling=sampling),
        dv.dimensionwise_kl(y, post, prior, dataset_size=dataset_size, sampling=sampling),
    ])


def _tcvae_terms(y, post, prior, dataset_size=None, sampling="mws"):
    """[I, TC, Σ_d KL_d] (jitted: distrax distributions are pytrees)."""
    return np.asarray(_jit_tcvae_terms(y, post, prior, dataset_size, sampling))


def _finite_data_set():
    """Six diagonal-Gaussian encoders in D = 2: a finite data set whose aggregate is their mixture."""
    loc = np.array([[-1.5, -1.0], [-0.5, 0.8], [0.0, 0.0], [0.7, -0.6], [1.2, 1.4], [2.0, 0.3]])
    scale = np.array([[0.5, 0.4], [0.6, 0.5], [0.3, 0.7], [0.5, 0.5], [0.4, 0.6], [0.7, 0.3]])
    return loc, scale


def _exact_tcvae_terms(loc, scale, prior_scale=1.0):
    """MI, TC and Σ_d KL(q(z_d) ‖ p(z_d)) of the mixture (1/N) Σ_n N(loc_n, diag scale_n²) by quadrature."""
    from scipy.special import logsumexp
    from scipy.stats import norm

    grid = np.linspace(-6.0, 6.0, 601)
    h = grid[1] - grid[0]
    log_1d = norm(loc[:, None, :], scale[:, None, :]).logpdf(grid[None, :, None])  # [n, g, d]
    log_qd = logsumexp(log_1d, axis=0) - np.log(len(loc))  # [g, d] the marginal mixtures
    log_qn = log_1d[:, :, None, 0] + log_1d[:, None, :, 1]  # [n, g, g]: log q(z|x_n)
    log_q = logsumexp(log_qn, axis=0) - np.log(len(loc))  # [g, g]
    q = np.exp(log_q)
    mi = np.mean([np.sum(np.exp(lq) * (lq - log_q)) * h * h for lq in log_qn])
    tc = np.sum(q * (log_q - log_qd[:, None, 0] - log_qd[None, :, 1])) * h * h
    log_p = norm(0.0, prior_scale).logpdf(grid)[:, None]
    dim_kl = np.sum(np.exp(log_qd) * (log_qd - log_p)) * h
    return np.array([mi, tc, dim_kl])


@pytest.mark.usefixtures("x64")
def test_tcvae_terms_match_quadrature_on_a_finite_data_set():
    # The data set repeated R times is the batch: the minibatch mixture is then the exact aggregate,
    # so each estimator is a plain Monte-Carlo average of its integrand over R samples per point.
    loc, scale = _finite_data_set()
    repeats = 250
    post = distrax.MultivariateNormalDiag(jnp.asarray(np.tile(loc, (repeats, 1))),
                                          jnp.asarray(np.tile(scale, (repeats, 1))))
    prior = priors.isotropic(2)
    y = post.sample(seed=jax.random.key(3))
    got = _tcvae_terms(y, post, prior)
    # Per-sample integrands for the standard errors.
    log_q, log_qd = (np.asarray(a) for a in jax.jit(dv.minibatch_log_densities)(y, post))
    per_sample = np.stack([
        np.asarray(post.log_prob(y)) - log_q,
        log_q - log_qd.sum(-1),
        (log_qd - np.asarray(distrax.Normal(0.0, 1.0).log_prob(y))).sum(-1),
    ])
    se = per_sample.std(axis=1, ddof=1) / np.sqrt(y.shape[0])
    np.testing.assert_allclose(per_sample.mean(axis=1), got, rtol=1e-10)
    exact = _exact_tcvae_terms(loc, scale)
    assert np.all(np.abs(got - exact) < SE_TOL * se), (got, exact, se)
    assert np.all(exact > 0.05)  # three non-trivial values


@pytest.mark.usefixtures("x64")
def test_tcvae_terms_of_identical_encoders_have_closed_forms():
    # Every encoder N(m, diag s²): q(z) = q(z|x) is Gaussian and factorised, so I = 0 and TC = 0
    # exactly on any sample, and Σ_d KL(q(z_d) ‖ p(z_d)) = KL(N(m, s²) ‖ N(0, I)) in closed form.
    m, s = jnp.array([0.4, -0.3, 1.0]), jnp.array([0.7, 1.2, 0.5])
    post = _same_encoders(m, s, 1000)
    prior = priors.isotropic(3)
    y = post.sample(seed=jax.random.key(1))
    mi, tc, dim_kl = _tcvae_terms(y, post, prior)
    np.testing.assert_allclose([mi, tc], 0.0, atol=1e-10)
    q0 = distrax.MultivariateNormalDiag(m, s)
    per_sample = q0.log_prob(y) - prior.log_prob(y)
    se = np.std(per_sample) / np.sqrt(y.shape[0])
    assert abs(dim_kl - q0.kl_divergence(prior)) < SE_TOL * se


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("dataset_size, sampling", SAMPLINGS)
def test_tcvae_terms_sum_to_the_kl(dataset_size, sampling):
    # I + TC + Σ_d KL_d = (1/B) Σ_i [log q(y_i|x_i) − log p(y_i)] on the same samples, for every estimator of q(z);
    # and that is the Monte-Carlo E_{p_D} KL(q(z|x) ‖ p(z)).
    rng = np.random.default_rng(4)
    b, d = 40, 3
    loc, scale = rng.normal(size=(b, d)), rng.uniform(0.3, 1.2, (b, d))
    post = distrax.MultivariateNormalDiag(jnp.asarray(loc), jnp.asarray(scale))
    prior = priors.student_t(d, df=5.0)
    y = post.sample(seed=jax.random.key(0))
    total = np.sum(_tcvae_terms(y, post, prior, dataset_size, sampling))
    per_point = np.asarray(post.log_prob(y) - prior.log_prob(y))
    np.testing.assert_allclose(total, per_point.mean(), rtol=1e-10)
    # E KL with a Student-t prior has no closed form: 200 fresh samples per point stand in for it.
    y_many = post.sample(seed=jax.random.key(9), sample_shape=(200,))
    expected_kl = np.mean(post.log_prob(y_many) - prior.log_prob(y_many))
    assert abs(total - expected_kl) < SE_TOL * per_point.std(ddof=1) / np.sqrt(b)


@pytest.mark.usefixtures("x64")
def test_minibatch_weighted_sampling_offsets_on_the_full_data_set():
    # MWS replaces log B by log(N·B): MI + log N, TC + (D−1)·log N, Σ_d KL_d − D·log N.
    rng = np.random.default_rng(5)
    b, d, n = 12, 3, 500
    loc, scale = rng.normal(size=(b, d)), rng.uniform(0.3, 1.2, (b, d))
    post = distrax.MultivariateNormalDiag(jnp.asarray(loc), jnp.asarray(scale))
    prior = priors.isotropic(d)
    y = post.sample(seed=jax.random.key(0))
    mixture = _tcvae_terms(y, post, prior)
    mws = _tcvae_terms(y, post, prior, n, "mws")
    np.testing.assert_allclose(mws - mixture, [np.log(n), (d - 1) * np.log(n), -d * np.log(n)], rtol=1e-10)


@pytest.mark.usefixtures("x64")
def test_minibatch_stratified_sampling_formula_and_unbiasedness():
    from itertools import permutations

    from scipy.special import logsumexp
    from scipy.stats import norm

    rng = np.random.default_rng(6)
    n_data, b, d = 7, 4, 2
    loc, scale = rng.normal(size=(n_data, d)), rng.uniform(0.4, 1.2, (n_data, d))
    y0 = rng.normal(size=d)  # a sample "from" data point 0
    # The formula, written out: w_ii = 1/N, w_{i,i+1} = (N − M)/(N·M), else 1/M, with M = B − 1.
    w = dv.stratified_log_weights(b, n_data)
    m = b - 1
    for i in range(b):
        special = (n_data - m) / (n_data * m)
        expect = [1 / n_data if j == i else special if j == (i + 1) % b else 1 / m for j in range(b)]
        np.testing.assert_allclose(np.exp(w[i]), expect, rtol=1e-13)
        np.testing.assert_allclose(np.exp(w[i]).sum(), 1.0, rtol=1e-13)
    # Unbiased for q(y0) (the density, not its log): average over every ordered draw of the other B − 1 points.
    exact_joint = np.exp(logsumexp(norm(loc, scale).logpdf(y0).sum(-1)) - np.log(n_data))
    exact_marg = np.exp(logsumexp(norm(loc, scale).logpdf(y0), axis=0) - np.log(n_data))
    joints, margs = [], []
    for others in permutations(range(1, n_data), b - 1):
        idx = np.array((0, *others))
        post = distrax.MultivariateNormalDiag(jnp.asarray(loc[idx]), jnp.asarray(scale[idx]))
        y = jnp.asarray(np.vstack([y0, rng.normal(size=(b - 1, d))]))  # only row 0 is read
        log_q, log_qd = dv.minibatch_log_densities(y, post, dataset_size=n_data, sampling="mss")
        joints.append(np.exp(log_q[0]))
        margs.append(np.exp(log_qd[0]))
    np.testing.assert_allclose(np.mean(joints), exact_joint, rtol=1e-12)
    np.testing.assert_allclose(np.mean(margs, axis=0), exact_marg, rtol=1e-12)


def test_tcvae_terms_jit_and_sampling_validation():
    post = _same_encoders(jnp.zeros(2), jnp.ones(2), 8)
    prior = priors.isotropic(2)
    y = post.sample(seed=jax.random.key(0))
    div = make_regulariser("total_correlation", dataset_size=100, sampling="mss")  # reads joint and marginals
    np.testing.assert_allclose(jax.jit(div)(jax.random.key(0), y, post, prior), div(jax.random.key(0), y, post, prior),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="needs dataset_size"):
        make_regulariser("total_correlation", sampling="mss")
    with pytest.raises(ValueError, match="sampling"):
        make_regulariser("mutual_information", dataset_size=10, sampling="importance")
    with pytest.raises(ValueError, match="batch size ≤ dataset_size"):
        dv.total_correlation(y, post, dataset_size=4, sampling="mss")
    with pytest.raises(ValueError, match="factorised"):
        full = distrax.MultivariateNormalFullCovariance(jnp.zeros((8, 2)), jnp.broadcast_to(jnp.eye(2), (8, 2, 2)))
        dv.dimensionwise_kl(y, full, prior)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_info_vae_is_the_published_joint_kernel_mmd(kernel):
    # InfoVAE's released kernel exp(−‖a − b‖²/D²); WAE's IMQ sum over C = 2·D·s, s ∈ {0.1, …, 10}.
    rng = np.random.default_rng(7)
    b, d = 6, 3
    y = jnp.asarray(rng.normal(size=(b, d)))
    prior = priors.isotropic(d)
    key = jax.random.key(2)
    z = np.asarray(prior.sample(seed=key, sample_shape=(b,)))
    if kernel == "rbf":
        k = lambda u, v: np.exp(-np.sum((u - v) ** 2) / d**2)  # noqa: E731
    else:
        k = lambda u, v: sum(2 * d * s / (2 * d * s + np.sum((u - v) ** 2)) for s in dv.WAE_SCALES)  # noqa: E731
    yn = np.asarray(y)
    kzz = sum(k(z[i], z[j]) for i in range(b) for j in range(b) if i != j) / (b * (b - 1))
    kyy = sum(k(yn[i], yn[j]) for i in range(b) for j in range(b) if i != j) / (b * (b - 1))
    kzy = sum(k(z[i], yn[j]) for i in range(b) for j in range(b)) / b**2
    got = make_regulariser("info_vae", kernel=kernel)(key, y, None, prior)
    np.testing.assert_allclose(got, kzz + kyy - 2 * kzy, rtol=1e-12)
