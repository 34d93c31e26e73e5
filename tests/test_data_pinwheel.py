"""The pinwheel generator (the paper's clustering data)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import data

ATOL = 1e-5


def numpy_pinwheel(noise, labels, num_arms=4, radial_std=0.3, tangential_std=0.1, rate=0.25):
    """Oracle: f = (1 + σr ε1, σt ε2) multiplied by the rotation matrix of 2πk/K + rate·exp(f1)."""
    f = np.stack([1 + radial_std * noise[:, 0], tangential_std * noise[:, 1]], axis=1)
    angle = 2 * np.pi * labels / num_arms + rate * np.exp(f[:, 0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])  # [2, 2, n]
    return np.einsum("ijn,nj->ni", rotation, f)


def test_closed_form_without_noise():
    labels = jnp.arange(4)
    points = data.pinwheel_from_noise(jnp.zeros((4, 2)), labels)
    angle = np.pi / 2 * np.arange(4) + 0.25 * np.e
    np.testing.assert_allclose(points, np.stack([np.cos(angle), np.sin(angle)], 1), atol=ATOL)


def test_matches_the_numpy_oracle(key):
    noise = np.asarray(jax.random.normal(key, (50, 2)))
    labels = np.arange(50) % 3
    options = dict(num_arms=3, radial_std=0.5, tangential_std=0.2, rate=0.4)
    np.testing.assert_allclose(
        data.pinwheel_from_noise(noise, labels, **options), numpy_pinwheel(noise, labels, **options), atol=ATOL
    )
    # |x| = |f|: the rotation keeps the feature norm.
    radius = np.hypot(1 + 0.5 * noise[:, 0], 0.2 * noise[:, 1])
    norms = np.linalg.norm(data.pinwheel_from_noise(noise, labels, **options), axis=1)
    np.testing.assert_allclose(norms, radius, atol=ATOL)


def test_splits_labels_and_determinism(key):
    pw = data.make_pinwheel(key)
    assert pw.x_train.shape == pw.x_test.shape == (400, 2)
    assert pw.y_train.dtype == jnp.int32
    for labels in (pw.y_train, pw.y_test):
        np.testing.assert_array_equal(labels, np.repeat(np.arange(4), 100))
    assert not np.allclose(pw.x_train, pw.x_test)
    again = data.make_pinwheel(key)
    for a, b in zip(pw, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(pw.x_train, data.make_pinwheel(jax.random.key(1)).x_train)
    jitted = jax.jit(data.make_pinwheel, static_argnums=1)(key, 100)
    np.testing.assert_allclose(jitted.x_test, pw.x_test, atol=ATOL)
    small = data.make_pinwheel(key, 7, num_arms=5)
    assert small.x_train.shape == (35, 2) and int(small.y_test.max()) == 4


def test_arms_are_rotated_copies(key):
    """Arm k is arm 0 rotated by 2πk/4: compare means and second moments (1,000 points per arm)."""
    points, labels = data.sample_pinwheel(key, 1000)
    points, labels = np.asarray(points), np.asarray(labels)
    arm0 = points[labels == 0]
    for k in range(1, 4):
        a = -np.pi / 2 * k
        back = points[labels == k] @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T
        np.testing.assert_allclose(back.mean(0), arm0.mean(0), atol=0.05)
        np.testing.assert_allclose(np.cov(back.T), np.cov(arm0.T), atol=0.03)
    # Arm centres sit near unit radius, a quarter turn apart.
    centres = np.stack([points[labels == k].mean(0) for k in range(4)])
    angles = np.unwrap(np.arctan2(centres[:, 1], centres[:, 0]))
    np.testing.assert_allclose(np.diff(angles), np.pi / 2, atol=0.1)


def test_bad_sizes():
    with pytest.raises(ValueError, match="num_per_arm"):
        data.make_pinwheel(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="num_arms"):
        data.sample_pinwheel(jax.random.key(0), 10, num_arms=0)
