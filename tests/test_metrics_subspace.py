"""Block-level disentanglement: block MIG and group DCI on constructed codes."""

import numpy as np
import pytest

from decompvae import metrics
from decompvae.data import PAIR_FACTOR_GROUPS, PAIR_FACTOR_SIZES
from decompvae.metrics import subspace

N = 10_000
NOISE = 0.05
GROUPS = ((0, 1), (2, 3, 4))  # two groups of 4-class factors
BLOCKS = (2, 3)  # block b encodes group b in the structured codes
PERFECT = 0.9  # a perfectly block-structured code scores at least this
MIXED = 0.3  # a random rotation across blocks scores at most this
IGNORED = 0.05  # a group no block encodes scores at most this
EXACT = 1e-12


def rotation(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def factors(rng):
    return rng.integers(0, 4, size=(N, 5))


@pytest.fixture
def perfect(rng, factors):
    """Block b is an injective (here invertible affine) function of group b's factors, plus small noise."""
    codes = np.concatenate([factors[:, :2] @ rotation(rng, 2), factors[:, 2:] @ rotation(rng, 3)], axis=1)
    return codes + NOISE * rng.normal(size=codes.shape)


def test_bins_per_dim_caps_the_joint_cells():
    assert [subspace.bins_per_dim(m) for m in range(1, 6)] == [20, 20, 10, 5, 4]
    assert [subspace.bins_per_dim(m, max_cells=400) for m in range(1, 6)] == [20, 20, 7, 4, 3]
    assert subspace.bins_per_dim(3, max_cells=343) == 7  # an exact root, not 6.999…
    with pytest.raises(ValueError, match="max_cells"):
        subspace.bins_per_dim(5, max_cells=31)


def test_perfect_block_structure_scores_near_one(perfect, factors):
    for target in subspace.TARGETS:
        out = metrics.block_mig(perfect, factors, BLOCKS, GROUPS, target=target)
        assert out["score"] >= PERFECT, target
        assert out["normalised_mi"].shape == (2, 2) and out["bins_per_dim"] == (20, 10)
        np.testing.assert_array_equal(np.argmax(out["normalised_mi"], axis=0), [0, 1])
        np.testing.assert_allclose(out["entropy"].sum(), 5 * np.log(4), rtol=1e-3)  # uniform factors


def test_rotation_across_blocks_scores_low(rng, perfect, factors):
    best = metrics.block_mig(perfect, factors, BLOCKS, GROUPS)["score"]
    mixed = metrics.block_mig(perfect @ rotation(rng, 5), factors, BLOCKS, GROUPS)["score"]
    assert mixed <= MIXED and mixed <= best - 0.6


def test_rotation_within_blocks_keeps_the_score_where_mig_drops(rng, factors):
    aligned = factors + NOISE * rng.normal(size=factors.shape)
    # Rotations that spread every factor over all of its block's dimensions (45° and Helmert).
    turn = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
    helmert = np.array([[1, 1, 1], [1, -1, 0], [1, 1, -2]]) / np.sqrt([[3], [2], [6]])
    rotated = np.concatenate([aligned[:, :2] @ turn.T, aligned[:, 2:] @ helmert.T], axis=1)
    before = metrics.block_mig(aligned, factors, BLOCKS, GROUPS)["score"]
    after = metrics.block_mig(rotated, factors, BLOCKS, GROUPS)["score"]
    assert before >= PERFECT and after >= PERFECT and abs(before - after) < 0.05
    assert metrics.mig(aligned, factors) >= PERFECT and metrics.mig(rotated, factors) < 0.2


def test_permuting_blocks_leaves_the_score_unchanged(perfect, factors):
    out = metrics.block_mig(perfect, factors, BLOCKS, GROUPS)
    swapped = np.concatenate([perfect[:, 2:], perfect[:, :2]], axis=1)
    again = metrics.block_mig(swapped, factors, BLOCKS[::-1], GROUPS)
    assert again["score"] == pytest.approx(out["score"], abs=EXACT)
    np.testing.assert_allclose(again["normalised_mi"], out["normalised_mi"][::-1], atol=EXACT)
    flipped = perfect * np.array([1, -1, -1, 1, -1])  # sign flips within blocks: the same cells
    assert metrics.block_mig(flipped, factors, BLOCKS, GROUPS)["score"] == pytest.approx(out["score"], abs=EXACT)


def test_a_group_no_block_encodes_scores_zero(rng, perfect, factors):
    codes = perfect.copy()
    codes[:, 2:] = rng.normal(size=(N, 3))  # block 1 is noise: group 1 is in no block
    out = metrics.block_mig(codes, factors, BLOCKS, GROUPS)
    assert out["per_group"][1] <= IGNORED and out["per_group"][0] >= PERFECT
    assert np.all(out["normalised_mi"][:, 1] <= IGNORED)
    assert out["score"] == pytest.approx(np.mean(out["per_group"]))


def test_uninformative_codes_show_the_plug_in_bias(rng):
    """Independent codes: I ≈ (R − 1)(C − 1)/(2N) (first order), a few % of H, cancelled by the gap."""
    factors = np.stack([rng.integers(0, s, N) for s in PAIR_FACTOR_SIZES], axis=1)
    codes = rng.normal(size=(N, 10))
    classes_minus_one = sum(s - 1 for s in PAIR_FACTOR_SIZES[:5])  # Σ_{k∈G} (C_k − 1), both groups
    for blocks, largest in (((2,) * 5, 0.03), ((5, 5), 0.05)):
        out = metrics.block_mig(codes, factors, blocks, PAIR_FACTOR_GROUPS)
        occupied = metrics.block_cells(codes, blocks)[0].max(axis=0) + 1  # [B]
        first_order = (occupied - 1)[:, None] * classes_minus_one / (2 * N)
        ratio = out["mutual_info"] / first_order
        assert np.all((ratio > 0.8) & (ratio < 1.5))
        assert out["normalised_mi"].max() <= largest and out["score"] < 0.01


def test_singleton_blocks_and_groups_equal_mig(rng):
    factors = np.concatenate([rng.integers(0, 5, size=(N, 3)), np.zeros((N, 1), np.int64)], axis=1)  # one constant
    codes = factors @ rng.normal(size=(4, 6)) + rng.normal(size=(N, 6))
    out = metrics.block_mig(codes, factors, (1,) * 6, [(k,) for k in range(4)])
    assert out["score"] == pytest.approx(metrics.mig(codes, factors), abs=EXACT)
    np.testing.assert_array_equal(out["groups"], [0, 1, 2])
    joint = metrics.block_mig(codes, factors, (1,) * 6, [(k,) for k in range(4)], target="joint")
    assert joint["score"] == pytest.approx(out["score"], abs=EXACT)
    np.testing.assert_allclose(out["mutual_info"][:, :3], metrics.mutual_information_matrix(codes, factors[:, :3]),
                               atol=EXACT)


def test_factors_target_is_a_lower_bound_of_the_joint(rng):
    """Σ_k I(z; v_k) ≤ I(z; v_G) for independent factors; a synergistic code shows the difference."""
    factors = rng.integers(0, 2, size=(N, 2))
    xor = (factors[:, :1] ^ factors[:, 1:]) + NOISE * rng.normal(size=(N, 1))
    codes = np.concatenate([xor, rng.normal(size=(N, 1))], axis=1)
    summed, _ = metrics.block_mutual_information(codes, factors, (1, 1), [(0, 1)])
    joint, entropy = metrics.block_mutual_information(codes, factors, (1, 1), [(0, 1)], target="joint")
    assert summed[0, 0] < 0.01 and joint[0, 0] == pytest.approx(np.log(2), abs=0.01)
    assert entropy[0] == pytest.approx(2 * np.log(2), abs=1e-3)


@pytest.mark.parametrize(
    ("blocks", "groups", "match"),
    [
        ((2, 2), GROUPS, "latent_blocks must sum to the D = 5"),
        ((2, 0, 3), GROUPS, "latent_blocks must be a non-empty sequence of positive"),
        ((5,), GROUPS, "latent_blocks needs at least 2 blocks"),
        (BLOCKS, ((0, 1), (2, 3)), r"factor_groups must partition.*in no group \[4\]"),
        (BLOCKS, ((0, 1, 2), (2, 3, 4)), r"factor_groups must partition.*in more than one group \[2\]"),
        (BLOCKS, ((0, 1), (2, 3, 4, 7)), r"factor_groups must partition.*out of range \[7\]"),
        (BLOCKS, ((0, 1), ()), "factor_groups must be a non-empty sequence of non-empty groups"),
    ],
)
def test_invalid_blocks_and_groups(perfect, factors, blocks, groups, match):
    with pytest.raises(ValueError, match=match):
        metrics.block_mig(perfect, factors, blocks, groups)


def test_invalid_target_and_rows(perfect, factors):
    with pytest.raises(ValueError, match="target"):
        metrics.block_mig(perfect, factors, BLOCKS, GROUPS, target="sum")
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.block_mig(perfect[:10], factors, BLOCKS, GROUPS)
    with pytest.raises(ValueError, match="single value"):
        metrics.block_mig(perfect, np.zeros_like(factors), BLOCKS, GROUPS)


def test_group_importance_sums_blocks_and_averages_groups():
    importance = np.arange(12.0).reshape(4, 3)  # [D = 4, K = 3]
    out = metrics.group_importance(importance, (1, 3), ((0, 2), (1,)))
    np.testing.assert_allclose(out, [[(0 + 2) / 2, 1], [(3 + 6 + 9 + 5 + 8 + 11) / 2, 4 + 7 + 10]])
    with pytest.raises(ValueError, match="latent_blocks must sum"):
        metrics.group_importance(importance, (1, 2), ((0, 2), (1,)))
    with pytest.raises(ValueError, match="factor_groups must partition"):
        metrics.group_importance(importance, (1, 3), ((0,), (1,)))


def test_group_dci(rng):
    """Binary factors keep the trees cheap (one tree per boosting round and factor)."""
    n_train, n_test = 400, 200
    factors = rng.integers(0, 2, size=(n_train + n_test, 5))
    codes = np.concatenate([factors[:, :2] @ rotation(rng, 2), factors[:, 2:] @ rotation(rng, 3)], axis=1)
    codes = codes + NOISE * rng.normal(size=codes.shape)
    train, test = slice(0, n_train), slice(n_train, None)
    out = metrics.group_dci(codes[train], factors[train], codes[test], factors[test], BLOCKS, GROUPS)
    assert out["disentanglement"] >= PERFECT and out["completeness"] >= PERFECT
    assert out["importance"].shape == (2, 2) and out["informativeness_test"] >= PERFECT
    np.testing.assert_array_equal(out["groups"], [0, 1])
    mixed = codes @ rotation(rng, 5)
    low = metrics.group_dci(mixed[train], factors[train], mixed[test], factors[test], BLOCKS, GROUPS)
    assert low["disentanglement"] <= out["disentanglement"] - 0.3
    assert low["completeness"] <= out["completeness"] - 0.3
    constant = factors.copy()
    constant[:, 2:] = 0  # group 1 has no informative factor
    with pytest.raises(ValueError, match="at least 2 groups"):
        metrics.group_dci(codes[train], constant[train], codes[test], constant[test], BLOCKS, GROUPS)
