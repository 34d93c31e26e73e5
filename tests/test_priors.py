"""Priors: log-densities against scipy.stats, sample moments, validation, tracing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp, softmax

from decompvae import priors

DIM = 3
N_SAMPLES = 40_000
# Tolerance in standard errors for Monte-Carlo moment checks.
SE_TOL = 5.0
# KS statistic at the 0.1% level: 1.95 / sqrt(n).
KS_CRIT = 1.95 / np.sqrt(N_SAMPLES)


def _points(dim=DIM, n=7, seed=0):
    return np.random.default_rng(seed).normal(scale=1.5, size=(n, dim))


@pytest.mark.usefixtures("x64")
class TestLogProb:
    def test_isotropic(self):
        z = _points()
        got = priors.isotropic(DIM, scale=2.5).log_prob(z)
        want = st.multivariate_normal(np.zeros(DIM), 2.5 * np.eye(DIM)).logpdf(z)
        np.testing.assert_allclose(got, want, rtol=1e-12)

    def test_anisotropic(self):
        v = np.array([0.5, 1.0, 3.0])
        z = _points()
        got = priors.anisotropic(variances=v).log_prob(z)
        np.testing.assert_allclose(got, st.multivariate_normal(np.zeros(DIM), np.diag(v)).logpdf(z), rtol=1e-12)

    def test_anisotropic_from_logits(self):
        logits, s = np.array([0.3, -1.0, 2.0]), 1.7
        v = s * DIM * softmax(logits)
        z = _points()
        got = priors.anisotropic_logits(logits=logits, total_scale=s).log_prob(z)
        np.testing.assert_allclose(got, st.multivariate_normal(np.zeros(DIM), np.diag(v)).logpdf(z), rtol=1e-12)
        np.testing.assert_allclose(np.sum(v), s * DIM)

    @pytest.mark.parametrize("df", [2.0, 5.0, 9999.0])
    def test_student_t(self, df):
        z = _points()
        got = priors.student_t(DIM, df=df, scale=0.7).log_prob(z)
        want = st.t(df, 0.0, 0.7).logpdf(z).sum(-1)
        # log-gamma differences at ν = 9999 cancel ~4 digits.
        np.testing.assert_allclose(got, want, rtol=1e-10)

    @pytest.mark.parametrize("gamma", [0.0, 0.3, 0.8, 1.0])
    def test_sparse(self, gamma):
        z = _points()
        got = priors.sparse(DIM, gamma=gamma).log_prob(z)
        with np.errstate(divide="ignore"):
            comps = np.stack([np.log(gamma) + st.norm(0, 0.05).logpdf(z), np.log1p(-gamma) + st.norm(0, 1).logpdf(z)])
        np.testing.assert_allclose(got, logsumexp(comps, axis=0).sum(-1), rtol=1e-12)

    def test_sparse_gamma_zero_is_standard_normal(self):
        z = _points(n=50)
        np.testing.assert_allclose(
            priors.sparse(DIM, gamma=0.0).log_prob(z), priors.isotropic(DIM, scale=1.0).log_prob(z), rtol=1e-14
        )

    def test_mixture(self):
        means = np.array([[0.0, -1.0], [0.0, 1.0], [1.0, 0.0]])
        var = np.array([[0.1, 0.2], [0.3, 0.3], [0.05, 0.5]])
        w = np.array([0.2, 0.3, 0.5])
        z = _points(dim=2)
        got = priors.mixture(means=means, variances=var, weights=w).log_prob(z)
        comps = [np.log(w[c]) + st.multivariate_normal(means[c], np.diag(var[c])).logpdf(z) for c in range(3)]
        np.testing.assert_allclose(got, logsumexp(comps, axis=0), rtol=1e-12)

    def test_pinwheel_mixture(self):
        z = _points(dim=2)
        means = [(0, -1), (0, 1), (1, 0), (-1, 0)]
        comps = [np.log(0.25) + st.multivariate_normal(m, 0.03 * np.eye(2)).logpdf(z) for m in means]
        np.testing.assert_allclose(priors.pinwheel().log_prob(z), logsumexp(comps, axis=0), rtol=1e-12)

    def test_laplace(self):
        z = _points()
        np.testing.assert_allclose(
            priors.laplace(DIM, scale=0.8).log_prob(z), st.laplace(0, 0.8).logpdf(z).sum(-1), rtol=1e-12
        )


def _check_moments(samples, mean, var, kurtosis_bound=10.0):
    """Sample mean/variance within SE_TOL standard errors of the closed form."""
    n = samples.shape[0]
    se_mean = np.sqrt(var / n)
    se_var = var * np.sqrt(kurtosis_bound / n)
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), SE_TOL * se_mean)
    np.testing.assert_array_less(np.abs(samples.var(0) - var), SE_TOL * se_var)


@pytest.mark.parametrize(
    "name, dist, cdf, mean, var",
    [
        ("isotropic", lambda: priors.isotropic(DIM, scale=2.0), st.norm(0, np.sqrt(2.0)).cdf, 0.0, 2.0),
        ("student_t", lambda: priors.student_t(DIM, df=5.0, scale=0.5), st.t(5.0, 0, 0.5).cdf, 0.0, 0.25 * 5 / 3),
        (
            "sparse",
            lambda: priors.sparse(DIM, gamma=0.8),
            lambda z: 0.8 * st.norm(0, 0.05).cdf(z) + 0.2 * st.norm.cdf(z),
            0.0,
            0.8 * 0.05**2 + 0.2,
        ),
        ("laplace", lambda: priors.laplace(DIM, scale=0.5), st.laplace(0, 0.5).cdf, 0.0, 2 * 0.25),
    ],
)
def test_samples_match_density(name, dist, cdf, mean, var):
    samples = np.asarray(dist().sample(seed=jax.random.key(1), sample_shape=(N_SAMPLES,)), dtype=np.float64)
    assert samples.shape == (N_SAMPLES, DIM)
    for d in range(DIM):
        assert st.kstest(samples[:, d], cdf).statistic < KS_CRIT, (name, d)
    # Student-t with ν = 5 has infinite kurtosis: check its mean only.
    if name == "student_t":
        np.testing.assert_array_less(np.abs(samples.mean(0)), SE_TOL * np.sqrt(var / N_SAMPLES))
    else:
        _check_moments(samples, mean, var, kurtosis_bound=60.0 if name == "sparse" else 10.0)


def test_mixture_samples_moments():
    prior = priors.pinwheel()
    samples = np.asarray(prior.sample(seed=jax.random.key(2), sample_shape=(N_SAMPLES,)), dtype=np.float64)
    # Means (0,±1), (±1,0): mean 0, per-dim variance 0.03 + 0.5.
    _check_moments(samples, 0.0, 0.53, kurtosis_bound=3.0)


def test_anisotropic_samples_moments():
    v = np.array([0.2, 1.0, 4.0])
    samples = np.asarray(priors.anisotropic(variances=v).sample(seed=jax.random.key(3), sample_shape=(N_SAMPLES,)))
    _check_moments(samples.astype(np.float64), 0.0, v, kurtosis_bound=3.0)


class TestPCAVariances:
    def test_descending_centred_eigenvalues(self):
        rng = np.random.default_rng(0)
        data = rng.normal(size=(200, 6)) * np.array([3.0, 0.1, 2.0, 1.0, 0.5, 0.2]) + 10.0  # offset: centring matters
        got = priors.pca_variances(data, 4)
        want = np.sort(np.linalg.eigvalsh(np.cov(data, rowvar=False)))[::-1][:4]
        np.testing.assert_allclose(got, want, rtol=1e-10)
        assert np.all(np.diff(got) <= 0)

    def test_matches_sklearn(self):
        from sklearn.decomposition import PCA

        data = np.random.default_rng(1).normal(size=(50, 4, 4))
        np.testing.assert_allclose(
            priors.pca_variances(data, 5), PCA(5).fit(data.reshape(50, -1)).explained_variance_, rtol=1e-8
        )

    def test_too_many_dims(self):
        with pytest.raises(ValueError, match="dim"):
            priors.pca_variances(np.ones((5, 3)), 4)


def test_traced_parameters_vmap():
    z = jnp.asarray(_points(), jnp.float32)
    dfs = jnp.array([2.0, 5.0, 12.0])
    got = jax.vmap(lambda df: priors.student_t(DIM, df=df).log_prob(z))(dfs)
    want = jnp.stack([priors.student_t(DIM, df=float(df)).log_prob(z) for df in dfs])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    gammas = jnp.array([0.0, 0.8])
    got = jax.jit(jax.vmap(lambda g: priors.sparse(DIM, gamma=g).log_prob(z)))(gammas)
    want = jnp.stack([priors.sparse(DIM, gamma=float(g)).log_prob(z) for g in gammas])
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: priors.sparse(3, gamma=1.5), "gamma"),
        (lambda: priors.sparse(3, gamma=-0.1), "gamma"),
        (lambda: priors.student_t(3, df=0.0), "df"),
        (lambda: priors.student_t(3, df=-2.0), "df"),
        (lambda: priors.student_t(3, df=2.0, scale=0.0), "scale"),
        (lambda: priors.isotropic(3, scale=-1.0), "scale"),
        (lambda: priors.isotropic(0), "dim"),
        (lambda: priors.anisotropic(variances=[1.0, 0.0]), "variances"),
        (lambda: priors.laplace(3, scale=0.0), "scale"),
        (lambda: priors.mixture(means=np.zeros((2, 3)), variances=[1.0, 1.0, 1.0]), "variances"),
        (lambda: priors.mixture(means=np.zeros((2, 3)), variances=1.0, weights=[0.5, 0.6]), "weights"),
        (lambda: priors.make_prior("cauchy", 3), "prior must be one of"),
        (lambda: priors.make_prior("pinwheel", 3), "dim"),
        (lambda: priors.make_prior("anisotropic", 3)(variances=jnp.ones(4)), "dim"),
    ],
)
def test_invalid_input(build, name):
    with pytest.raises(ValueError, match=name):
        build()


@pytest.mark.parametrize("old, new, args, numbers", [
    ("isotropic_gaussian", "isotropic", (3, 2.0), {"scale": 2.0}),
    ("anisotropic_gaussian", "anisotropic", (np.array([0.5, 2.0]),), {"variances": np.array([0.5, 2.0])}),
    ("anisotropic_gaussian_from_logits", "anisotropic_logits", (np.array([0.1, -0.4]), 2.0),
     {"logits": np.array([0.1, -0.4]), "total_scale": 2.0}),
    ("gaussian_mixture", "mixture", (np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0.2, 0.3])),
     {"means": np.array([[0.0, 1.0], [1.0, 0.0]]), "variances": np.array([0.2, 0.3])}),
    ("pinwheel_mixture", "pinwheel", (0.05,), {"variance": 0.05}), ("laplace_prior", "laplace", (2, 0.5), {"scale": 0.5}),
])
def test_previous_prior_names_warn_and_give_the_same_distribution(old, new, args, numbers):
    """Each constructor is named as its PRIORS key; the previous names still work, with a DeprecationWarning,
    and still take the numbers by position as the previous release did (the new names take them by keyword)."""
    with pytest.warns(DeprecationWarning, match=f"priors.{old} is deprecated; use decompvae.priors.{new} "):
        p_old = getattr(priors, old)(*args)
    structure = args[:len(args) - len(numbers)]
    p_new = getattr(priors, new)(*structure, **numbers)
    z = np.full(p_new.event_shape, 0.3)
    np.testing.assert_array_equal(p_old.log_prob(z), p_new.log_prob(z))
    if numbers:  # the numbers are keyword-only under the new names
        with pytest.raises(TypeError, match="positional"):
            getattr(priors, new)(*args)


@pytest.mark.parametrize("old", ["anisotropic_pca", "anisotropic_learned"])
def test_former_registry_names_of_the_logits_prior_warn_and_give_it(old):
    """They named where ℓ comes from, which is now the run's model.prior_init / model.prior_learned."""
    logits = np.array([0.5, -0.2, 0.1], np.float32)
    with pytest.warns(DeprecationWarning, match=f"prior name '{old}' is deprecated; use 'anisotropic_logits'"):
        p_old = priors.make_prior(old, 3)(logits=logits)
    p_new = priors.make_prior("anisotropic_logits", 3)(logits=logits)
    assert old not in priors.PRIORS
    z = np.full(3, 0.3)
    np.testing.assert_array_equal(p_old.log_prob(z), p_new.log_prob(z))
