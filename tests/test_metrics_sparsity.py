"""Normalised Hoyer sparsity: closed forms, invariances, collapsed dimensions."""

import numpy as np
import pytest

from decompvae.metrics import hoyer_sparsity

EXACT = 1e-12


def test_one_hot_codes_score_one_and_constant_magnitude_codes_score_zero():
    rng = np.random.default_rng(0)
    one_hot = np.eye(6)[rng.integers(0, 6, 200)] * rng.uniform(0.5, 3.0, size=(200, 1))
    assert hoyer_sparsity(one_hot) == pytest.approx(1.0, abs=EXACT)
    # ±1 entries, each column half +1: every column has std 1, so every |z_id| = 1.
    signs = np.array([rng.permutation(np.repeat([-1.0, 1.0], 50)) for _ in range(5)]).T
    assert hoyer_sparsity(signs) == pytest.approx(0.0, abs=EXACT)
    assert hoyer_sparsity(signs * [1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(0.0, abs=EXACT)  # normalised away
    assert hoyer_sparsity(signs * [1.0, 2.0, 3.0, 4.0, 5.0], normalise=False) > 0.1


def test_hand_computed_two_dimensions():
    # Column stds: [1, 1, 1, 1] → 1; [2, −2, 0, 0] → √2. Rows of z: (±1, ±√2) twice, (±1, 0) twice.
    codes = np.array([[1.0, 2.0], [-1.0, -2.0], [1.0, 0.0], [-1.0, 0.0]])
    root = np.sqrt(2.0)
    dense = (root - (1.0 + root) / np.sqrt(3.0)) / (root - 1.0)
    assert hoyer_sparsity(codes) == pytest.approx((2 * dense + 2 * 1.0) / 4, abs=EXACT)


def test_invariant_to_permutation_sign_and_scale_of_dimensions():
    codes = np.random.default_rng(1).laplace(size=(300, 8))
    base = hoyer_sparsity(codes)
    rng = np.random.default_rng(2)
    moved = codes[:, rng.permutation(8)] * rng.choice([-1.0, 1.0], 8) * rng.uniform(0.1, 10.0, 8)
    assert hoyer_sparsity(moved) == pytest.approx(base, abs=1e-12)
    assert hoyer_sparsity(codes[rng.permutation(300)]) == pytest.approx(base, abs=1e-12)


def test_zero_spread_dimensions_give_finite_scores():
    codes = np.random.default_rng(3).normal(size=(100, 4))
    for constant in (0.0, 2.0):
        padded = np.hstack([codes, np.full((100, 1), constant)])
        score = hoyer_sparsity(padded)
        assert np.isfinite(score) and 0.0 <= score <= 1.0
    # A dimension collapsed to 0 is an inactive entry of every code: the ratios are unchanged, √D grows.
    l1_l2 = np.mean(np.abs(codes / codes.std(0)).sum(1) / np.sqrt(((codes / codes.std(0)) ** 2).sum(1)))
    padded = hoyer_sparsity(np.hstack([codes, np.zeros((100, 1))]))
    assert padded == pytest.approx((np.sqrt(5) - l1_l2) / (np.sqrt(5) - 1), abs=EXACT)
    # Exactly-zero code vectors are left out of the mean.
    with_zero_rows = np.vstack([codes, np.zeros((10, 4))])
    assert np.isfinite(hoyer_sparsity(with_zero_rows))


def test_bad_inputs():
    with pytest.raises(ValueError, match="codes"):
        hoyer_sparsity(np.ones((10, 1)))
    with pytest.raises(ValueError, match="codes"):
        hoyer_sparsity(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="codes"):
        hoyer_sparsity(np.ones(10))
