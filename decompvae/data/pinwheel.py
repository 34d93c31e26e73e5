"""The pinwheel data set: 2-D points on curved arms (Mathieu et al., 2019, clustering experiment).

A point of arm k (of K) is the feature vector f = (1 + σ_r·ε₁, σ_t·ε₂), ε ~ N(0, I),
rotated counter-clockwise by the angle 2πk/K + rate·exp(f₁):

    x = R(2πk/K + rate·exp(f₁)) · f,   R(a) = [[cos a, −sin a], [sin a, cos a]].

Defaults (the paper's clustering experiment): K = 4 arms, 100 points per arm
and split, σ_r = 0.3, σ_t = 0.1, rate = 0.25. Points are returned at unit
scale (no ×10 as in Johnson et al.'s original generator) so that they match
the paper's 4-component Gaussian-mixture prior. Rows are grouped by arm
(arm 0 first); shuffle with the batcher.

Reference: M. J. Johnson, D. Duvenaud, A. Wiltschko, S. R. Datta, R. P. Adams,
"Composing graphical models with neural networks for structured
representations and fast inference", NeurIPS 2016 (the pinwheel data).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from decompvae._checks import check_dim

Array = jax.Array

__all__ = ["Pinwheel", "make_pinwheel", "pinwheel_from_noise", "sample_pinwheel"]


class Pinwheel(NamedTuple):
    """Train and test splits of the pinwheel data.

    Attributes:
      x_train: float32 points ``[K·m, 2]``.
      y_train: int32 arm labels ``[K·m]`` in ``[0, K)``.
      x_test: float32 points ``[K·m, 2]``.
      y_test: int32 arm labels ``[K·m]``.
    """

    x_train: Array
    y_train: Array
    x_test: Array
    y_test: Array


def pinwheel_from_noise(
    noise: Array,
    labels: Array,
    *,
    num_arms: int = 4,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
) -> Array:
    """Map standard-normal noise and arm labels to pinwheel points (deterministic).

    Args:
      noise: ε ``[n, 2]``, standard normal.
      labels: arm indices ``[n]`` in ``[0, num_arms)``.
      num_arms: K (static).
      radial_std: σ_r, the spread along an arm.
      tangential_std: σ_t, the spread across an arm.
      rate: how fast the arms curl (radians per unit of exp(f₁)).

    Returns:
      Points ``[n, 2]``: R(2πk/K + rate·exp(f₁))·f with f = (1 + σ_r ε₁, σ_t ε₂).
    """
    noise = jnp.asarray(noise)
    f1 = 1.0 + radial_std * noise[:, 0]
    f2 = tangential_std * noise[:, 1]
    angle = 2 * jnp.pi * jnp.asarray(labels) / num_arms + rate * jnp.exp(f1)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([cos * f1 - sin * f2, sin * f1 + cos * f2], axis=-1)


def sample_pinwheel(
    key: Array,
    num_per_arm: int = 100,
    *,
    num_arms: int = 4,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
) -> tuple[Array, Array]:
    """Draw ``num_per_arm`` points on each of ``num_arms`` arms.

    Args:
      key: PRNG key.
      num_per_arm: m, points per arm (static).
      num_arms: K (static).
      radial_std, tangential_std, rate: see ``pinwheel_from_noise``.

    Returns:
      ``(points float [K·m, 2], labels int32 [K·m])``, grouped by arm.
    """
    check_dim("num_per_arm", num_per_arm)
    check_dim("num_arms", num_arms)
    labels = jnp.repeat(jnp.arange(num_arms, dtype=jnp.int32), num_per_arm)
    noise = jax.random.normal(key, (num_arms * num_per_arm, 2))
    points = pinwheel_from_noise(
        noise,
        labels,
        num_arms=num_arms,
        radial_std=radial_std,
        tangential_std=tangential_std,
        rate=rate,
    )
    return points, labels


def make_pinwheel(
    key: Array,
    num_per_arm: int = 100,
    *,
    num_arms: int = 4,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
) -> Pinwheel:
    """Independent train and test splits, each ``num_arms × num_per_arm`` points.

    Args:
      key: PRNG key; split once into a train key and a test key.
      num_per_arm: m, points per arm in each split (default 100).
      num_arms: K (default 4).
      radial_std, tangential_std, rate: see ``pinwheel_from_noise``.

    Returns:
      A ``Pinwheel`` of ``[K·m, 2]`` points and ``[K·m]`` labels per split.
    """
    key_train, key_test = jax.random.split(key)
    options = dict(
        num_arms=num_arms, radial_std=radial_std, tangential_std=tangential_std, rate=rate
    )
    x_train, y_train = sample_pinwheel(key_train, num_per_arm, **options)
    x_test, y_test = sample_pinwheel(key_test, num_per_arm, **options)
    return Pinwheel(x_train, y_train, x_test, y_test)
