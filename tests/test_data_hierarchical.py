"""The parent → child toy data: its latents follow the hierarchical prior, its labels are equal-count classes."""

import jax
import numpy as np
import pytest

from decompvae.data import load_training_data
from decompvae.data.hierarchical import discretise, hierarchical_toy


def test_latents_follow_the_model():
    toy = hierarchical_toy()
    x, u = toy.sample(jax.random.key(0), 200_000)
    u = np.asarray(u, np.float64)
    assert x.shape == (200_000, 16) and u.shape == (200_000, 4)
    top, low = u[:, :2], u[:, 2:]
    np.testing.assert_allclose(top.mean(0), 0.0, atol=0.01)
    np.testing.assert_allclose(top.std(0), 1.0, atol=0.01)
    w, v, s = np.asarray(toy.weights), np.asarray(toy.log_scale_weights), toy.child_scale
    residual = (low - top @ w.T) / (s * np.exp(top @ v.T))  # standard normal if the children follow the model
    np.testing.assert_allclose(residual.mean(0), 0.0, atol=0.01)
    np.testing.assert_allclose(residual.std(0), 1.0, atol=0.01)
    # E[u_low,c] = Σ_p W_cp E[u_top,p] = 0 and Cov(u_top,p, u_low,c) = W_cp (the scale is even in ε)
    np.testing.assert_allclose(np.cov(top.T, low.T)[:2, 2:], w.T, atol=0.02)


def test_sampling_is_pure_and_the_map_fixed():
    a, b = hierarchical_toy(), hierarchical_toy()
    np.testing.assert_array_equal(a.a1, b.a1)
    key = jax.random.key(3)
    np.testing.assert_array_equal(a.sample(key, 10)[0], b.sample(key, 10)[0])
    assert not np.allclose(hierarchical_toy(mixing_seed=1).a1, a.a1)
    assert a.factor_groups == ((0, 1), (2, 3)) and a.parents == 2


def test_log_density_is_the_priors():
    toy = hierarchical_toy()
    _, u = toy.sample(jax.random.key(1), 5)
    u = np.asarray(u, np.float64)
    w, v, s = np.asarray(toy.weights), np.asarray(toy.log_scale_weights), toy.child_scale
    scale = s * np.exp(u[:, :2] @ v.T)
    by_hand = (-0.5 * (u[:, :2] ** 2).sum(1) - np.log(2 * np.pi)
               - 0.5 * (((u[:, 2:] - u[:, :2] @ w.T) / scale) ** 2).sum(1) - np.log(scale).sum(1) - np.log(2 * np.pi))
    np.testing.assert_allclose(toy.latent_distribution().log_prob(u), by_hand, rtol=1e-5)


def test_discretise_gives_equal_count_classes():
    u = np.random.default_rng(0).standard_normal((8000, 3)) * [1.0, 5.0, 0.1]
    classes = discretise(u, 8)
    assert classes.dtype == np.int32 and classes.min() == 0 and classes.max() == 7
    for k in range(3):
        np.testing.assert_array_equal(np.bincount(classes[:, k]), 1000)
        order = np.argsort(u[:, k])
        assert np.all(np.diff(classes[order, k]) >= 0)  # monotone in the coordinate


def test_training_data():
    data = load_training_data("hierarchical_toy", jax.random.key(0), batch_size=32, eval_points=800)
    assert data.data_shape == (16,) and data.eval_x.shape == (800, 16) and data.eval_labels.shape == (800, 4)
    assert data.factor_groups == ((0, 1), (2, 3)) and data.ground_truth is None
    batch = data.batch(jax.random.key(1), 7, data.data)
    assert batch.shape == (32, 16)
    np.testing.assert_array_equal(batch, data.batch(jax.random.key(1), 7, data.data))
    assert not np.allclose(batch, data.batch(jax.random.key(1), 8, data.data))


@pytest.mark.parametrize("kw, match", [({"parents": 0}, "parents"), ({"weights": np.ones((3, 2))}, "shape")])
def test_errors_name_the_parameter(kw, match):
    with pytest.raises(ValueError, match=match):
        hierarchical_toy(**kw)
