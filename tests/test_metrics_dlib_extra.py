"""IRS, the unsupervised scores and UDR against NumPy ports of disentanglement_lib, closed forms and properties.

Each ``_dlib_*`` function below is written as disentanglement_lib writes it
(``evaluation/metrics/irs.py``, ``unsupervised_metrics.py``,
``evaluation/udr/metrics/udr.py``: codes as ``[D, N]``, Python loops, one
scikit-learn / SciPy call per pair), independently of the package code.
"""

import warnings

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from sklearn import linear_model, preprocessing
from sklearn.metrics import mutual_info_score

import decompvae.metrics as metrics
from decompvae.metrics import unsupervised as unsup
from decompvae.metrics.irs import irs_matrix
from decompvae.metrics.udr import udr_pairwise

PORT = 1e-6  # against a port of the same arithmetic
LASSO_PORT = 0.01  # against a port that fits the Lasso on zeroed columns instead of dropping them
EXACT = 1e-10  # closed forms in float64


def _factors(rng, n, sizes):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def _rotation(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


# ------------------------------------------------------------------ disentanglement_lib ports


def _dlib_histogram_discretize(target, num_bins=20):
    discretized = np.zeros_like(target)
    for i in range(target.shape[0]):
        discretized[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return discretized


def _dlib_irs(mus, ys, diff_quantile=0.99):
    """compute_irs after sampling: mus [D, N], ys [K, N] (already discrete)."""
    active_mus = mus[mus.var(axis=1) > 0.0, :]
    if not active_mus.any():
        return 0.0
    gen_factors, latents = ys.T, active_mus.T
    num_gen, num_lat = gen_factors.shape[1], latents.shape[1]
    max_deviations = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)
    cum_deviations = np.zeros([num_lat, num_gen])
    for i in range(num_gen):
        unique_factors = np.unique(gen_factors[:, i], axis=0)
        num_distinct_factors = unique_factors.shape[0]
        for k in range(num_distinct_factors):
            match = gen_factors[:, i] == unique_factors[k]
            e_loc = np.mean(latents[match, :], axis=0)
            diffs = np.abs(latents[match, :] - e_loc)
            max_diffs = np.quantile(diffs, q=diff_quantile, axis=0)
            cum_deviations[:, i] += max_diffs
        cum_deviations[:, i] /= num_distinct_factors
    normalized_deviations = cum_deviations / max_deviations[:, np.newaxis]
    irs_matrix = 1.0 - normalized_deviations
    disentanglement_scores = irs_matrix.max(axis=1)
    if np.sum(max_deviations) > 0.0:
        return np.average(disentanglement_scores, weights=max_deviations)
    return np.mean(disentanglement_scores)


def _dlib_unsupervised(mus_train):
    """unsupervised_metrics after sampling: mus_train [D, N]."""
    scores = {}
    num_codes = mus_train.shape[0]
    cov_mus = np.cov(mus_train)
    scores["gaussian_total_correlation"] = 0.5 * (np.sum(np.log(np.diag(cov_mus))) - np.linalg.slogdet(cov_mus)[1])
    sqrtm = scipy.linalg.sqrtm(cov_mus * np.expand_dims(np.diag(cov_mus), axis=1))
    scores["gaussian_wasserstein_correlation"] = 2 * np.trace(cov_mus) - 2 * np.trace(sqrtm)
    scores["gaussian_wasserstein_correlation_norm"] = (
        scores["gaussian_wasserstein_correlation"] / np.sum(np.diag(cov_mus)))
    mus_discrete = _dlib_histogram_discretize(mus_train)
    m = np.zeros([num_codes, num_codes])
    for i in range(num_codes):
        for j in range(num_codes):
            m[i, j] = mutual_info_score(mus_discrete[j, :], mus_discrete[i, :])
    np.fill_diagonal(m, 0)
    scores["mutual_info_score"] = np.sum(m) / (num_codes**2 - num_codes)
    return scores


def _dlib_relative_strength(corr_matrix):
    score_x = np.nanmean(np.nan_to_num(
        np.power(np.ndarray.max(corr_matrix, axis=0), 2) / np.sum(corr_matrix, axis=0), 0))
    score_y = np.nanmean(np.nan_to_num(
        np.power(np.ndarray.max(corr_matrix, axis=1), 2) / np.sum(corr_matrix, axis=1), 0))
    return (score_x + score_y) / 2


def _dlib_spearman(vec1, vec2):
    corr_y = []
    for i in range(vec1.shape[1]):
        corr_x = []
        for j in range(vec2.shape[1]):
            with warnings.catch_warnings():  # zeroed (inactive) latents are constant: NaN, masked out below
                warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
                corr, _ = scipy.stats.spearmanr(vec1[:, i], vec2[:, j], nan_policy="omit")
            corr_x.append(corr)
        corr_y.append(np.stack(corr_x))
    return np.transpose(np.absolute(np.stack(corr_y, axis=1)))


def _dlib_lasso(vec1, vec2):
    model = linear_model.Lasso(random_state=None, alpha=0.1)
    model.fit(vec1, vec2)
    return np.transpose(np.absolute(model.coef_))


def _dlib_udr(reps, kl, correlation_matrix="lasso", kl_filter_threshold=0.01):
    """compute_udr_sklearn after sampling: reps a list of [N, D], kl a list of [D]."""
    reps = [np.array(r, np.float64) for r in reps]
    num_models = len(reps)
    kl_mask = []
    for i in range(num_models):
        scaler = preprocessing.StandardScaler()
        scaler.fit(reps[i])
        reps[i] = scaler.transform(reps[i])
        reps[i] = reps[i] * np.greater(kl[i], 0.01)
        kl_mask.append(kl[i] > kl_filter_threshold)
    disentanglement = np.zeros((num_models, num_models, 1))
    for i in range(num_models):
        for j in range(num_models):
            if i == j:
                continue
            if correlation_matrix == "lasso":
                corr_matrix = _dlib_lasso(reps[i], reps[j])
            else:
                corr_matrix = _dlib_spearman(reps[i], reps[j])
            corr_matrix = corr_matrix[kl_mask[i], ...][..., kl_mask[j]]
            disentanglement[i, j] = _dlib_relative_strength(corr_matrix)
    return np.array([np.median(np.delete(disentanglement[:, i], i)) for i in range(num_models)])


# ------------------------------------------------------------------------- IRS


@pytest.fixture(scope="module")
def mixed():
    """Factors [600, 3] and codes [600, 5]: two clean-ish dimensions, a mixture, a noise one, a constant one."""
    rng = np.random.default_rng(0)
    factors = _factors(rng, 600, (4, 6, 3))
    f = factors.astype(np.float64)
    codes = np.stack([f[:, 0] + 0.1 * rng.normal(size=600), -2.0 * f[:, 1] + 0.3 * rng.normal(size=600),
                      f[:, 1] + f[:, 2] + 0.2 * rng.normal(size=600), rng.normal(size=600), np.full(600, 3.0)], axis=1)
    return codes, factors


@pytest.mark.parametrize("diff_quantile", [0.99, 1.0, 0.5])
def test_irs_matches_disentanglement_lib(mixed, diff_quantile):
    codes, factors = mixed
    ours = metrics.irs(codes, factors, diff_quantile=diff_quantile)
    assert isinstance(ours, float)
    assert ours == pytest.approx(_dlib_irs(codes.T, factors.T, diff_quantile), abs=PORT)


def test_irs_matrix_drops_constant_dimensions(mixed):
    codes, factors = mixed
    info = irs_matrix(codes, factors)
    np.testing.assert_array_equal(info["active"], [True, True, True, True, False])
    assert info["IRS_matrix"].shape == (4, 3)
    np.testing.assert_array_equal(info["parents"][:2], [0, 1])  # dimension 0 follows factor 0, dimension 1 factor 1
    assert metrics.irs(np.full((50, 3), 1.5), factors[:50]) == 0.0  # disentanglement_lib's value: no active dimension


def test_irs_is_one_for_a_copy_of_the_factors_and_lower_for_mixtures():
    rng = np.random.default_rng(1)
    factors = _factors(rng, 2000, (5, 5, 5))
    copy = factors.astype(np.float64)
    assert metrics.irs(copy, factors) == pytest.approx(1.0, abs=EXACT)  # each group holds its dimension fixed
    flipped = -3.0 * copy[:, [2, 0, 1]]  # invariant to permuting, flipping, rescaling dimensions
    assert metrics.irs(flipped, factors) == pytest.approx(1.0, abs=EXACT)
    rotated = copy @ _rotation(rng, 3)
    assert metrics.irs(rotated, factors) < 0.8


def test_irs_rejects_bad_inputs(mixed):
    codes, factors = mixed
    with pytest.raises(ValueError, match="diff_quantile"):
        metrics.irs(codes, factors, diff_quantile=1.5)
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.irs(codes[:10], factors)


# ---------------------------------------------------------- unsupervised scores


def test_unsupervised_scores_match_disentanglement_lib():
    rng = np.random.default_rng(2)
    codes = rng.normal(size=(800, 4)) @ rng.normal(size=(4, 4)) + np.array([0.0, 1.0, -2.0, 5.0])
    ours = metrics.unsupervised_scores(codes)
    reference = _dlib_unsupervised(codes.T)
    assert set(ours) == set(reference)
    for name, value in reference.items():
        assert isinstance(ours[name], float)
        assert ours[name] == pytest.approx(float(np.real(value)), abs=PORT), name


@pytest.mark.parametrize("rho", [0.0, 0.3, -0.8, 0.99])
def test_gaussian_scores_closed_forms_in_two_dimensions(rho):
    a, b = 2.0, 0.5  # variances
    c = rho * np.sqrt(a * b)
    cov = np.array([[a, c], [c, b]])
    tc = -0.5 * np.log(1.0 - rho**2)
    # tr sqrt(M) of a 2 × 2 M with real non-negative eigenvalues: sqrt(tr M + 2 sqrt(det M)); M = diag(Σ) Σ.
    wasserstein = 2.0 * (a + b) - 2.0 * np.sqrt(a**2 + b**2 + 2.0 * np.sqrt(a * b * (a * b - c**2)))
    assert unsup.gaussian_total_correlation(cov) == pytest.approx(tc, abs=EXACT)
    assert unsup.gaussian_wasserstein_correlation(cov) == pytest.approx(wasserstein, abs=EXACT)


def test_gaussian_scores_of_sampled_codes_approach_the_closed_form():
    rng = np.random.default_rng(3)
    rho = 0.8
    codes = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=20_000)
    scores = metrics.unsupervised_scores(codes)
    assert scores["gaussian_total_correlation"] == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.02)
    assert scores["mutual_info_score"] > 0.3  # binned MI of strongly correlated dimensions


def test_uncorrelated_codes_score_zero_and_a_constant_dimension_adds_nothing():
    # All 2^3 sign patterns: the sample covariance is exactly diagonal.
    grid = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T * np.array([1.0, 2.0, 0.5])
    scores = metrics.unsupervised_scores(np.repeat(grid, 5, axis=0))
    assert scores["gaussian_total_correlation"] == pytest.approx(0.0, abs=EXACT)
    assert scores["gaussian_wasserstein_correlation"] == pytest.approx(0.0, abs=1e-8)
    assert scores["mutual_info_score"] == pytest.approx(0.0, abs=EXACT)  # a full factorial design: independent bins
    rng = np.random.default_rng(4)
    codes = rng.normal(size=(500, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
    with_constant = np.concatenate([codes, np.full((500, 1), 7.0)], axis=1)
    assert metrics.unsupervised_scores(with_constant)["gaussian_total_correlation"] == pytest.approx(
        metrics.unsupervised_scores(codes)["gaussian_total_correlation"], abs=EXACT)  # disentanglement_lib: NaN


def test_unsupervised_scores_need_two_dimensions():
    with pytest.raises(ValueError, match="at least 2 columns"):
        metrics.unsupervised_scores(np.zeros((10, 1)))


# ------------------------------------------------------------------------- UDR


def _models(rng, n, d, kind):
    """Codes [M=4, n, d] of the same sources: permuted and sign-flipped copies, or random rotations."""
    sources = rng.laplace(size=(n, d))
    out = []
    for _ in range(4):
        if kind == "permuted":
            mix = np.eye(d)[rng.permutation(d)] * np.where(rng.random(d) < 0.5, -1.0, 1.0)
        else:
            mix = _rotation(rng, d)
        out.append(sources @ mix + 0.05 * rng.normal(size=(n, d)))
    return np.stack(out)


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
def test_udr_matches_disentanglement_lib(correlation):
    rng = np.random.default_rng(5)
    codes = _models(rng, 300, 4, "rotated")
    codes[0] = 0.5 * codes[0] + 0.5 * codes[1]  # unequal pairs
    kl = rng.uniform(0.05, 2.0, size=(4, 4))
    kl[1, 2] = kl[3, 0] = 0.001  # inactive latents
    ours = metrics.udr(codes, kl, correlation=correlation)
    reference = _dlib_udr(list(codes), list(kl), correlation)
    np.testing.assert_allclose(ours, reference, atol=LASSO_PORT if correlation == "lasso" else PORT)


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
def test_udr_prefers_permutations_to_rotations(correlation):
    rng = np.random.default_rng(6)
    kl = np.ones((4, 3))
    permuted = metrics.udr(_models(rng, 400, 3, "permuted"), kl, correlation=correlation)
    rotated = metrics.udr(_models(rng, 400, 3, "rotated"), kl, correlation=correlation)
    assert permuted.shape == rotated.shape == (4,)
    # Lasso: a perfect standardised match shrunk to 1 − α = 0.9; Spearman: 1 less the sampling noise of the
    # other pairs' correlations (|ρ| ≈ 0.05 each at n = 400) in the denominator.
    assert np.all(permuted > (0.89 if correlation == "lasso" else 0.93))
    assert np.all(rotated < permuted.min() - 0.3)


def test_udr_leaves_out_inactive_latents():
    rng = np.random.default_rng(7)
    sources = rng.laplace(size=(300, 2))
    codes = np.stack([np.concatenate([sources[:, perm], rng.normal(size=(300, 1))], axis=1)
                      for perm in ([0, 1], [1, 0], [0, 1], [1, 0])])  # the last dimension differs between models ...
    kl = np.ones((4, 3))
    assert np.all(metrics.udr(codes, kl) < 0.8)
    kl[:, 2] = 0.0  # ... and is inactive: it no longer counts
    np.testing.assert_allclose(metrics.udr(codes, kl), 0.9, atol=0.01)
    kl[0] = 0.0  # a model with no active latent: its pairs score 0
    pairwise = udr_pairwise(codes, kl)
    assert np.all(pairwise[0] == 0.0) and np.all(pairwise[:, 0] == 0.0)


def test_udr_rejects_bad_arguments():
    codes, kl = np.zeros((2, 10, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match=r"correlation must be one of \('lasso', 'spearman'\); got 'pearson'"):
        metrics.udr(codes, kl, correlation="pearson")
    with pytest.raises(ValueError, match="M ≥ 2"):
        metrics.udr(codes[:1], kl[:1])
    with pytest.raises(ValueError, match="kl_per_model"):
        metrics.udr(codes, np.ones((2, 4)))
    with pytest.raises(ValueError, match="correlation"):
        metrics.udr_of_members(jax.random.key(0), None, None, None, None, correlation="pearson")


def test_udr_of_members_scores_the_seeds_of_a_sweep():
    from decompvae.build import build
    from decompvae.config import load_config
    from decompvae.metrics.udr import member_codes_and_kl
    from decompvae.sweep import init_members, make_sweep, stack_members
    from decompvae.train import model_params

    setup = build(load_config(None, ["model.network=mlp", "model.hidden=[8]", "model.latent_dim=3",
                                     "data.eval_points=64", "train.batch_size=8", "sweep.beta=[1.0]",
                                     "sweep.seed=[0,1,2]"]))
    hyper, learning_rates, keys = stack_members(setup.members, setup.fixed_prior)
    params = model_params(init_members(make_sweep(setup.trainer), keys, hyper, learning_rates))
    x = setup.data.eval_x[:64]
    codes, kl = member_codes_and_kl(jax.random.key(0), setup, params, hyper, x, batch_size=40)  # two batches
    assert codes.shape == (3, 64, 3) and kl.shape == (3, 3)
    for i in range(3):  # encoder means and the closed-form Gaussian KL of each latent
        loc, scale = (np.asarray(a) for a in (lambda q: (q.loc, q.scale_diag))(
            setup.model(jax.tree.map(lambda a: a[i], params), jax.tree.map(lambda a: a[i], hyper), x).posterior))
        np.testing.assert_allclose(codes[i], loc, atol=1e-6)
        np.testing.assert_allclose(kl[i], np.mean(0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * np.log(scale)), axis=0),
                                   rtol=1e-4, atol=1e-6)
    scores = metrics.udr_of_members(jax.random.key(0), setup, params, hyper, x, members=[0, 2],
                                    kl_threshold=-np.inf)
    np.testing.assert_allclose(scores, metrics.udr(codes[[0, 2]], kl[[0, 2]], kl_threshold=-np.inf))
