"""Array-level disentanglement metrics: MIG, modularity, explicitness, DCI, SAP.

Expectations: disentanglement_lib's own metric tests (identity representation
high, constant low, duplicated latents low/closed form, the closed-form DCI
and modularity matrices), hand-computed cases, scikit-learn oracles, and
invariance to permuting / sign-flipping latent dimensions.
"""

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

import decompvae.metrics as metrics
from decompvae.metrics import _common

LOG2 = np.log(2.0)
EXACT = 1e-12  # identities that hold up to rounding
DCI_TIE_NOISE = 0.02  # GBT tie-breaking between equal splits (seed, column order)


def _factors(seed, n, sizes):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def _noisy(factors, seed, scale=0.1):
    rng = np.random.default_rng(seed)
    return factors.astype(np.float64) + scale * rng.normal(size=factors.shape)


def _row_permuted(factors, seed):
    """disentanglement_lib's 'bad' representation: each point's factor values in random order."""
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(row) for row in factors.astype(np.float64)])


def _permute_and_flip(codes, seed):
    rng = np.random.default_rng(seed)
    signs = np.where(rng.random(codes.shape[1]) < 0.5, -1.0, 1.0)
    return codes[:, rng.permutation(codes.shape[1])] * signs


# ------------------------------------------------------------ discretisation / MI


def test_histogram_discretize_matches_numpy_histogram_and_digitize():
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(size=(500, 3)), np.full((500, 1), 2.5)], axis=1)  # last: constant
    binned = metrics.histogram_discretize(codes, num_bins=20)
    for d in range(codes.shape[1]):
        reference = np.digitize(codes[:, d], np.histogram(codes[:, d], 20)[1][:-1]) - 1
        np.testing.assert_array_equal(binned[:, d], reference)
    assert binned.min() == 0 and binned[:, :3].max() == 19
    assert np.all(binned[:, 3] == 10)  # a constant lands in the middle bin of [c - 0.5, c + 0.5]


def test_mutual_information_matrix_matches_sklearn_oracle(monkeypatch):
    factors = _factors(1, 700, (3, 5, 2))
    codes = _noisy(factors[:, [0, 1, 1, 2]], 2, scale=0.7)
    binned = metrics.histogram_discretize(codes, num_bins=7)
    oracle = np.array([[mutual_info_score(factors[:, k], binned[:, d]) for k in range(3)] for d in range(4)])
    np.testing.assert_allclose(metrics.mutual_information_matrix(codes, factors, num_bins=7), oracle, atol=EXACT)
    monkeypatch.setattr(_common, "_ROWS_PER_BLOCK", 64)  # many blocks, same counts
    np.testing.assert_allclose(metrics.mutual_information_matrix(codes, factors, num_bins=7), oracle, atol=EXACT)
    np.testing.assert_allclose(
        _common.discrete_entropy(factors), [mutual_info_score(f, f) for f in factors.T], atol=EXACT
    )


# ------------------------------------------------------------------------ MIG


def test_mig_hand_computed():
    # Factors: all four combinations of two binary factors.
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    codes = factors.astype(np.float64)
    assert metrics.mig(codes, factors, num_bins=2) == pytest.approx(1.0, abs=EXACT)
    # Codes (f0, f0 + f1): I(z0; f0) = log 2, I(z1; f0) = I(z1; f1) = H(1/4, 1/2, 1/4) − log 2 = ½ log 2,
    # I(z0; f1) = 0, so both gaps are ½ log 2 / log 2.
    codes = np.stack([factors[:, 0], factors[:, 0] + factors[:, 1]], axis=1).astype(np.float64)
    np.testing.assert_allclose(
        metrics.mutual_information_matrix(codes, factors, num_bins=3), [[LOG2, 0.0], [LOG2 / 2, LOG2 / 2]], atol=EXACT
    )
    assert metrics.mig(codes, factors, num_bins=3) == pytest.approx(0.5, abs=EXACT)


def test_mig_disentanglement_lib_expectations():
    factors = _factors(0, 3000, (10,) * 5)
    codes = factors.astype(np.float64)
    assert 0.9 <= metrics.mig(codes, factors) <= 1.0  # identity
    assert metrics.mig(np.zeros_like(codes), factors) == 0.0  # constant
    assert 0.0 <= metrics.mig(np.hstack([codes, codes]), factors) <= 0.1  # duplicated latents


def test_mig_invariant_to_permutation_and_sign_flips():
    factors = _factors(3, 2000, (3, 6, 8))
    codes = np.hstack([_noisy(factors, 4, scale=0.5), np.random.default_rng(5).normal(size=(2000, 2))])
    assert metrics.mig(_permute_and_flip(codes, 6), factors) == pytest.approx(metrics.mig(codes, factors), abs=EXACT)


def test_mig_skips_constant_factors_and_handles_collapsed_dims():
    factors = _factors(7, 1000, (4, 5))
    codes = _noisy(factors, 8)
    with_constant = np.hstack([factors, np.full((1000, 1), 3)])
    assert metrics.mig(codes, with_constant) == pytest.approx(metrics.mig(codes, factors), abs=EXACT)
    collapsed = np.hstack([codes, np.zeros((1000, 1))])
    assert np.isfinite(metrics.mig(collapsed, factors))
    assert metrics.mig(collapsed, factors) == pytest.approx(metrics.mig(codes, factors), abs=EXACT)


# ------------------------------------------------------------------ modularity


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        (np.diag(5.0 * np.ones(5)), 1.0),
        (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 2.0 / 3.0),
        (np.zeros((10, 10)), 0.0),
        (np.vstack([np.diag(5.0 * np.ones(5))] * 2), 1.0),
        (np.diag(5.0 * np.ones(5))[:2, :], 1.0),
        (np.hstack([np.diag(5.0 * np.ones(5))] * 2), 1.0 - 1.0 / 9.0),
    ],
    ids=["diagonal", "empty_code", "zero", "redundant", "missed_factors", "one_code_two_factors"],
)
def test_modularity_closed_forms(matrix, expected):
    assert metrics.modularity_from_mutual_info(matrix) == pytest.approx(expected, abs=EXACT)


def test_modularity_disentanglement_lib_expectations():
    factors = _factors(0, 3000, (10,) * 5)
    codes = factors.astype(np.float64)
    assert 0.9 <= metrics.modularity(codes, factors) <= 1.0
    assert 0.9 <= metrics.modularity(np.hstack([codes, codes]), factors) <= 1.0
    assert 0.0 <= metrics.modularity(_row_permuted(factors, 1), factors) <= 0.2


def test_modularity_invariant_and_finite_with_collapsed_dims():
    factors = _factors(3, 2000, (3, 6, 8))
    codes = _noisy(factors, 4, scale=0.5)
    base = metrics.modularity(codes, factors)
    assert metrics.modularity(_permute_and_flip(codes, 6), factors) == pytest.approx(base, abs=EXACT)
    # A collapsed dimension has zero MI, scores 0, and enters the mean (disentanglement_lib's convention).
    collapsed = metrics.modularity(np.hstack([codes, np.zeros((2000, 1))]), factors)
    assert collapsed == pytest.approx(base * 3 / 4, abs=EXACT)


# --------------------------------------------------------------- explicitness


def test_explicitness_identity_constant_and_collapsed():
    factors_train, factors_test = _factors(0, 600, (2, 2, 2)), _factors(1, 300, (2, 2, 2))
    good = metrics.explicitness(factors_train.astype(float), factors_train, factors_test.astype(float), factors_test)
    assert good["explicitness_train"] == pytest.approx(1.0) and good["explicitness_test"] == pytest.approx(1.0)
    zeros = metrics.explicitness(np.zeros((600, 3)), factors_train, np.zeros((300, 3)), factors_test)
    assert zeros == {"explicitness_train": 0.5, "explicitness_test": 0.5}  # constant scores: AUC exactly ½

    codes_train, codes_test = _noisy(factors_train, 2, 0.8), _noisy(factors_test, 3, 0.8)
    base = metrics.explicitness(codes_train, factors_train, codes_test, factors_test)
    assert 0.6 < base["explicitness_test"] < 0.95
    pad = lambda c: np.hstack([c, np.full((c.shape[0], 1), 7.0)])  # noqa: E731  collapsed dimension
    collapsed = metrics.explicitness(pad(codes_train), factors_train, pad(codes_test), factors_test)
    for name in base:
        assert collapsed[name] == pytest.approx(base[name], abs=1e-6)
    flipped = metrics.explicitness(
        _permute_and_flip(codes_train, 4), factors_train, _permute_and_flip(codes_test, 4), factors_test
    )
    for name in base:
        assert flipped[name] == pytest.approx(base[name], abs=1e-6)


def test_explicitness_multiclass_with_class_missing_from_test():
    factors_train = _factors(0, 500, (4, 3))
    factors_test = _factors(1, 200, (4, 3))
    factors_test[:, 0] = np.minimum(factors_test[:, 0], 2)  # class 3 never occurs in the test split
    scores = metrics.explicitness(
        _noisy(factors_train, 2, 0.3), factors_train, _noisy(factors_test, 3, 0.3), factors_test
    )
    assert 0.9 < scores["explicitness_test"] <= 1.0


# ------------------------------------------------------------------------ DCI


@pytest.mark.parametrize(
    ("matrix", "disentanglement", "completeness"),
    [
        (np.diag(5.0 * np.ones(5)), 1.0, 1.0),
        (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0),
        (np.zeros((10, 10)), 0.0, 0.0),
        (np.vstack([np.diag(5.0 * np.ones(5))] * 2), 1.0, 1.0 - np.log(2) / np.log(10)),
        (np.diag(5.0 * np.ones(5))[:2, :], 1.0, 1.0),
        (np.hstack([np.diag(5.0 * np.ones(5))] * 2), 1.0 - np.log(2) / np.log(10), 1.0),
    ],
    ids=["diagonal", "empty_code", "zero", "redundant", "missed_factors", "one_code_two_factors"],
)
def test_dci_closed_forms(matrix, disentanglement, completeness):
    assert metrics.dci_disentanglement(matrix) == pytest.approx(disentanglement, abs=1e-7)
    assert metrics.dci_completeness(matrix) == pytest.approx(completeness, abs=1e-7)


SIZES_DCI = (4, 3, 4)


def _dci_split(transform):
    factors_train, factors_test = _factors(10, 400, SIZES_DCI), _factors(11, 200, SIZES_DCI)
    return metrics.dci(transform(factors_train, 0), factors_train, transform(factors_test, 1), factors_test)


def test_dci_disentanglement_lib_expectations():
    identity = _dci_split(lambda f, s: f.astype(np.float64))
    assert 0.9 <= identity["disentanglement"] <= 1.0 and 0.9 <= identity["completeness"] <= 1.0
    assert identity["informativeness_train"] == 1.0 and identity["informativeness_test"] == 1.0

    duplicated = _dci_split(lambda f, s: np.hstack([f, f]).astype(np.float64))
    assert 0.9 <= duplicated["disentanglement"] <= 1.0
    target = 1.0 - np.log(2) / np.log(2 * len(SIZES_DCI))  # importance split evenly between two copies
    assert target - 0.1 <= duplicated["completeness"] <= target + 0.1

    bad = _dci_split(lambda f, s: _row_permuted(f, 20 + s))
    assert 0.0 <= bad["disentanglement"] <= 0.2 and 0.0 <= bad["completeness"] <= 0.2


def test_dci_equals_sklearn_gradient_boosting_oracle_and_is_invariant():
    factors_train, factors_test = _factors(12, 300, (3, 4)), _factors(13, 150, (3, 4))
    codes_train = np.hstack([_noisy(factors_train, 14, 0.4), np.zeros((300, 1))])  # + a collapsed dimension
    codes_test = np.hstack([_noisy(factors_test, 15, 0.4), np.zeros((150, 1))])
    scores = metrics.dci(codes_train, factors_train, codes_test, factors_test)
    importance = np.stack(
        [GradientBoostingClassifier(random_state=0).fit(codes_train, y).feature_importances_ for y in factors_train.T],
        axis=1,
    )
    np.testing.assert_array_equal(importance[2], 0.0)  # the collapsed dimension is never split on
    assert scores["disentanglement"] == pytest.approx(metrics.dci_disentanglement(importance), abs=EXACT)
    assert scores["completeness"] == pytest.approx(metrics.dci_completeness(importance), abs=EXACT)
    assert all(np.isfinite(v) for v in scores.values())

    # Permuting / flipping codes changes only which of two equally good splits the trees pick (as
    # does the seed), so DCI moves by tie-breaking noise only (≈ 0.007 here on 300 overfitted points).
    rng = np.random.default_rng(16)
    order, signs = rng.permutation(3), np.array([-1.0, 1.0, -1.0])
    moved = metrics.dci(codes_train[:, order] * signs, factors_train, codes_test[:, order] * signs, factors_test)
    reseeded = metrics.dci(codes_train, factors_train, codes_test, factors_test, random_state=1)
    for name in scores:
        assert moved[name] == pytest.approx(scores[name], abs=DCI_TIE_NOISE)
        assert reseeded[name] == pytest.approx(scores[name], abs=DCI_TIE_NOISE)


# ------------------------------------------------------------------------ SAP


def test_sap_from_score_matrix_hand_computed():
    assert metrics.sap_from_score_matrix([[0.9, 0.2], [0.5, 0.6], [0.1, 0.3]]) == pytest.approx(0.35, abs=EXACT)


def test_sap_score_matrix_matches_linear_svc_oracle():
    factors_train, factors_test = _factors(20, 500, (2, 3)), _factors(21, 250, (2, 3))
    codes_train, codes_test = _noisy(factors_train, 22, 0.6), _noisy(factors_test, 23, 0.6)
    matrix, used = metrics.sap_score_matrix(codes_train, factors_train, codes_test, factors_test)
    np.testing.assert_array_equal(used, [0, 1])
    for d in range(2):
        for k in range(2):
            oracle = LinearSVC(C=0.01, class_weight="balanced").fit(codes_train[:, [d]], factors_train[:, k])
            accuracy = np.mean(oracle.predict(codes_test[:, [d]]) == factors_test[:, k])
            assert matrix[d, k] == pytest.approx(accuracy, abs=2 / 250)  # at most two test points differ


def test_sap_disentanglement_lib_expectations_and_invariance():
    factors_train, factors_test = _factors(30, 1000, (2, 2, 2)), _factors(31, 500, (2, 2, 2))
    identity = metrics.sap(factors_train.astype(float), factors_train, factors_test.astype(float), factors_test)
    assert 0.4 <= identity <= 0.6  # own dimension 100 %, another dimension ~ chance (50 %)
    duplicated = np.hstack([factors_train, factors_train]).astype(float)
    duplicated_test = np.hstack([factors_test, factors_test]).astype(float)
    assert metrics.sap(duplicated, factors_train, duplicated_test, factors_test) == 0.0  # exact: identical fits
    assert metrics.sap(np.zeros((1000, 3)), factors_train, np.zeros((500, 3)), factors_test) == 0.0

    codes_train, codes_test = _noisy(factors_train, 32, 0.5), _noisy(factors_test, 33, 0.5)
    base = metrics.sap(codes_train, factors_train, codes_test, factors_test)
    moved = metrics.sap(
        _permute_and_flip(codes_train, 34), factors_train, _permute_and_flip(codes_test, 34), factors_test
    )
    assert moved == pytest.approx(base, abs=2 / 500)
    # A collapsed dimension is a constant classifier: finite, chance-level accuracy (it may become the
    # runner-up of a factor, so SAP is not invariant to adding one).
    pad = lambda c: np.hstack([c, np.zeros((c.shape[0], 1))])  # noqa: E731
    matrix, _ = metrics.sap_score_matrix(pad(codes_train), factors_train, pad(codes_test), factors_test)
    assert np.all(np.isfinite(matrix)) and np.all(np.abs(matrix[3] - 0.5) < 0.1)


# ------------------------------------------------------------------ validation


def test_bad_inputs_raise_value_errors_naming_the_parameter():
    factors = _factors(0, 50, (3, 3))
    codes = factors.astype(float)
    with pytest.raises(ValueError, match="codes"):
        metrics.mig(codes[:, :1], factors)  # one dimension: no second-best
    with pytest.raises(ValueError, match="factors"):
        metrics.mig(codes, factors.astype(float))
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.mig(codes[:40], factors)
    with pytest.raises(ValueError, match="num_bins"):
        metrics.mig(codes, factors, num_bins=1)
    with pytest.raises(ValueError, match="finite"):
        metrics.mig(np.where(codes > 1, np.nan, codes), factors)
    with pytest.raises(ValueError, match="single value"):
        metrics.mig(codes, np.zeros_like(factors))
    with pytest.raises(ValueError, match="importance"):
        metrics.dci_disentanglement(-np.eye(3))
    with pytest.raises(ValueError, match="factors"):
        metrics.modularity(codes, factors[:, :1])
    with pytest.raises(ValueError, match="same number of columns"):
        metrics.sap(codes, factors, codes[:, :1], factors)
    with pytest.raises(ValueError, match="C must be"):
        metrics.sap(codes, factors, codes, factors, C=0.0)
    one_informative = np.stack([factors[:, 0], np.zeros(50, dtype=int)], axis=1)
    with pytest.raises(ValueError, match="at least 2 factors"):  # raised before any tree is fitted
        metrics.dci(codes, one_informative, codes, one_informative)
