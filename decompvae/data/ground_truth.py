"""The ground-truth data interface that the disentanglement metrics use.

A ground-truth data set is a grid of independent discrete factors of variation
(``factor_sizes``), every combination of which has one image. Metrics sample
factor classes, render (or look up) their images and compare encoder outputs
with the factors. Both the procedural dSprites renderer and the official
dSprites file implement this interface, so a metric never knows which one it
got.

Factor classes are ``int32`` arrays ``[n, F]``; the flat index of a
combination is mixed-radix with the *last* factor fastest (the order of the
official dSprites file).
"""

from __future__ import annotations

import math
from typing import Iterator, Protocol, Sequence, runtime_checkable

import jax
import jax.numpy as jnp

Array = jax.Array

__all__ = [
    "GroundTruthData",
    "factors_to_index",
    "index_to_factors",
    "sample_uniform_factors",
]


@runtime_checkable
class GroundTruthData(Protocol):
    """What a metric may ask of a ground-truth data set.

    Attributes:
      factor_sizes: number of classes of each factor, e.g. ``(3, 6, 40, 32, 32)``.
      factor_names: one name per factor.
      num_images: the number of images the object can return.
    """

    factor_sizes: tuple[int, ...]
    factor_names: tuple[str, ...]

    @property
    def num_images(self) -> int: ...

    def sample_factors(self, key: Array, n: int) -> Array:
        """``n`` factor-class rows ``[n, F]`` (int32) drawn with ``key``."""
        ...

    def images(self, factors: Array) -> Array:
        """Images ``[n, H, W, C]`` in {0, 1} (float32) of the factor classes ``[n, F]``."""
        ...

    def iter_grid(self, batch_size: int) -> Iterator[tuple[Array, Array]]:
        """``(factors [b, F], images [b, H, W, C])`` over every image in index order."""
        ...


def factors_to_index(factors: Array, factor_sizes: Sequence[int]) -> Array:
    """Flat grid index of factor classes (mixed radix, last factor fastest).

    Args:
      factors: integer classes ``[..., F]``, column f in ``[0, factor_sizes[f])``.
      factor_sizes: the static grid sizes ``(s_0, …, s_{F-1})``.

    Returns:
      int32 indices ``[...]`` in ``[0, prod(factor_sizes))``; jittable.
    """
    factors = jnp.asarray(factors)
    index = jnp.zeros(factors.shape[:-1], jnp.int32)
    for f, size in enumerate(factor_sizes):
        index = index * size + factors[..., f].astype(jnp.int32)
    return index


def index_to_factors(index: Array, factor_sizes: Sequence[int]) -> Array:
    """Factor classes of flat grid indices; the inverse of ``factors_to_index``.

    Args:
      index: integer indices ``[...]`` in ``[0, prod(factor_sizes))``.
      factor_sizes: the static grid sizes.

    Returns:
      int32 classes ``[..., F]``; jittable.
    """
    rest = jnp.asarray(index).astype(jnp.int32)
    columns = []
    for size in reversed(factor_sizes):
        columns.append(rest % size)
        rest = rest // size
    return jnp.stack(columns[::-1], axis=-1)


def sample_uniform_factors(key: Array, n: int, factor_sizes: Sequence[int]) -> Array:
    """Factor classes drawn uniformly and independently per factor.

    Args:
      key: a PRNG key.
      n: number of rows (static).
      factor_sizes: the static grid sizes ``(s_0, …, s_{F-1})``.

    Returns:
      int32 classes ``[n, F]``, column f uniform on ``[0, s_f)``.
    """
    maxval = jnp.asarray(factor_sizes, jnp.int32)
    return jax.random.randint(key, (n, len(factor_sizes)), 0, maxval, dtype=jnp.int32)


def grid_size(factor_sizes: Sequence[int]) -> int:
    """The number of factor combinations ``prod(factor_sizes)``."""
    return math.prod(factor_sizes)
