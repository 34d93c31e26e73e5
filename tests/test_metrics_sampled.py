"""Sampling-based scores: FactorVAE (both protocols) and β-VAE, on toy data sets.

The toy data set's observations are the factor classes themselves (as
disentanglement_lib's ``IdentityObservationsData``); representations are
known maps of them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae.metrics import beta_vae_score, factor_vae_score, sample_codes_and_factors

SIZES = (8, 8, 5, 6)
SMALL_DL = dict(points_per_vote=64, num_train_votes=600, num_eval_votes=2000, num_variance_points=2000)
SMALL_PAPER = dict(points_per_vote=100, num_train_votes=2000)


class ToyData:
    """Ground-truth data whose observation is the factor classes as floats."""

    def __init__(self, factor_sizes=SIZES):
        self.factor_sizes = tuple(factor_sizes)

    def sample_factors(self, key, n):
        return jax.random.randint(key, (n, len(self.factor_sizes)), 0, jnp.asarray(self.factor_sizes))

    def images(self, factors):
        return jnp.asarray(factors, jnp.float32)


class ToyGridData(ToyData):
    """The same data with ``iter_grid`` (every combination, last factor fastest)."""

    def iter_grid(self, batch_size):
        grid = np.indices(self.factor_sizes).reshape(len(self.factor_sizes), -1).T
        for start in range(0, grid.shape[0], batch_size):
            rows = grid[start : start + batch_size]
            yield rows, self.images(rows)


def identity(x):
    return x


def rotated(x):
    """Factors 0 and 1 (same size) mixed by 45°: votes split evenly between the two dimensions."""
    a, b = x[:, 0], x[:, 1]
    return jnp.stack([(a + b) / jnp.sqrt(2.0), (a - b) / jnp.sqrt(2.0), x[:, 2], x[:, 3]], axis=1)


def moved(fn):
    """``fn`` with its dimensions permuted and two of them sign-flipped."""
    return lambda x: fn(x)[:, jnp.array([2, 0, 3, 1])] * jnp.array([1.0, -1.0, 1.0, -1.0])


def with_collapsed(fn):
    """``fn`` plus a dimension fixed at 3 and one fixed at 0 (std exactly 0)."""
    return lambda x: jnp.concatenate([jnp.full((x.shape[0], 1), 3.0), fn(x), jnp.zeros((x.shape[0], 1))], axis=1)


def test_sample_codes_and_factors_batches_do_not_change_results(key):
    codes, factors = sample_codes_and_factors(key, identity, ToyData(), 50, batch_size=7)
    np.testing.assert_array_equal(codes, factors)
    again, _ = sample_codes_and_factors(key, identity, ToyData(), 50)
    np.testing.assert_array_equal(codes, again)


def test_factor_vae_disentanglement_lib_identity_and_constant(key):
    scores = factor_vae_score(key, identity, ToyData(), **SMALL_DL)
    assert scores["eval_accuracy"] == 1.0 and scores["train_accuracy"] == 1.0 and scores["score"] == 1.0
    assert scores["num_active_dims"] == 4
    zeros = factor_vae_score(key, jnp.zeros_like, ToyData(), **SMALL_DL)
    assert zeros == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "score": 0.0, "num_active_dims": 0}


def test_factor_vae_rotated_pair_scores_three_quarters_in_both_protocols(key):
    # Fixing factor 0 or 1 halves the variance of both mixed dimensions: their votes split 50/50, so the
    # majority classifier gets half of those two factors right: (2 + 2·½) / 4 = 0.75.
    dl = factor_vae_score(key, rotated, ToyData(), **SMALL_DL)
    paper = factor_vae_score(key, rotated, ToyData(), protocol="paper", **SMALL_PAPER)
    assert dl["score"] == pytest.approx(0.75, abs=0.05)
    assert paper["score"] == pytest.approx(0.75, abs=0.05) and "eval_accuracy" not in paper


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "paper"])
def test_factor_vae_invariant_to_permutation_and_sign_flips(key, protocol):
    kwargs = SMALL_DL if protocol == "disentanglement_lib" else SMALL_PAPER
    base = factor_vae_score(key, rotated, ToyData(), protocol=protocol, **kwargs)
    assert factor_vae_score(key, moved(rotated), ToyData(), protocol=protocol, **kwargs) == base
    assert factor_vae_score(key, rotated, ToyData(), protocol=protocol, batch_size=100, **kwargs) == base


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "paper"])
def test_factor_vae_collapsed_dimensions_are_pruned_without_nan(key, protocol):
    kwargs = SMALL_DL if protocol == "disentanglement_lib" else SMALL_PAPER
    scores = factor_vae_score(key, with_collapsed(identity), ToyData(), protocol=protocol, **kwargs)
    assert scores["score"] == 1.0 and scores["num_active_dims"] == 4


def test_factor_vae_prunes_small_std_only_in_disentanglement_lib_protocol(key):
    small = lambda x: jnp.concatenate([x, 0.01 * x[:, :1]], axis=1)  # noqa: E731  std ≈ 0.023 < 0.05
    assert factor_vae_score(key, small, ToyData(), **SMALL_DL)["num_active_dims"] == 4
    assert factor_vae_score(key, small, ToyData(), protocol="paper", **SMALL_PAPER)["num_active_dims"] == 5


def test_factor_vae_paper_pool_grid_via_iter_grid_or_factor_sizes(key):
    with_iter = factor_vae_score(key, rotated, ToyGridData(), protocol="paper", **SMALL_PAPER)
    without = factor_vae_score(key, rotated, ToyData(), protocol="paper", **SMALL_PAPER)
    assert with_iter == without
    sampled = factor_vae_score(key, identity, ToyData(), protocol="paper", num_pool_points=3000, **SMALL_PAPER)
    assert sampled["score"] == 1.0


def test_beta_vae_identity_high_constant_chance(key):
    kwargs = dict(points_per_vote=16, num_train=500, num_eval=300)
    scores = beta_vae_score(key, identity, ToyData(), **kwargs)
    assert 0.9 <= scores["train_accuracy"] <= 1.0 and 0.9 <= scores["eval_accuracy"] <= 1.0
    assert scores["score"] == scores["eval_accuracy"]
    zeros = beta_vae_score(key, jnp.zeros_like, ToyData(), **kwargs)
    assert zeros["eval_accuracy"] < 0.4  # 4 factors: chance ≈ 0.25
    assert beta_vae_score(key, moved(identity), ToyData(), **kwargs)["eval_accuracy"] == pytest.approx(
        scores["eval_accuracy"], abs=2 / 300
    )


def test_bad_arguments(key):
    with pytest.raises(ValueError, match="protocol"):
        factor_vae_score(key, identity, ToyData(), protocol="kim")
    with pytest.raises(ValueError, match="points_per_vote"):
        factor_vae_score(key, identity, ToyData(), points_per_vote=1)
    with pytest.raises(ValueError, match="num_pool_points"):
        factor_vae_score(key, identity, ToyData(), num_pool_points=100)
    with pytest.raises(ValueError, match="min_std"):
        factor_vae_score(key, identity, ToyData(), min_std=-1.0)
    with pytest.raises(ValueError, match="dataset"):
        factor_vae_score(key, identity, object())
    with pytest.raises(ValueError, match="representation_fn"):
        sample_codes_and_factors(key, lambda x: x[:, 0], ToyData(), 10)
    with pytest.raises(ValueError, match="dataset"):
        beta_vae_score(key, identity, ToyData((5,)))
