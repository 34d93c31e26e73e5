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

:class:`RenderedGrid` gives a procedural data set (a pure renderer and its
factor sizes) the whole interface; :func:`make_factor_stream` gives it an
endless training stream.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterator, Protocol, Sequence, runtime_checkable

import jax
import jax.numpy as jnp

from decompvae._checks import check_dim

Array = jax.Array

__all__ = [
    "GroundTruthData",
    "RenderedGrid",
    "make_factor_stream",
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


@functools.partial(jax.jit, static_argnames=("render",))
def _render_jit(factors: Array, render: Callable) -> Array:
    return render(factors)


@functools.partial(jax.jit, static_argnames=("render", "factor_sizes"))
def _render_index_range(start: Array, offsets: Array, render: Callable, factor_sizes: tuple[int, ...]):
    index = jnp.minimum(start + offsets, grid_size(factor_sizes) - 1)
    factors = index_to_factors(index, factor_sizes)
    return factors, render(factors)


def make_factor_stream(render: Callable, factor_sizes: Sequence[int], batch_size: int, *, dtype=jnp.float32):
    """An endless stream of a rendered grid: uniform factors, rendered on the fly.

    Args:
      render: ``render(factors [b, F], dtype=…) -> images [b, H, W, C]``, pure.
      factor_sizes: the grid sizes (static).
      batch_size: b, images per call (static).
      dtype: image dtype.

    Returns:
      ``sample(key) -> (images [b, H, W, C] in {0, 1}, factors int32 [b, F])``;
      pure and jittable (use ``fold_in(key, step)`` for per-step keys).
    """
    check_dim("batch_size", batch_size)
    sizes = tuple(factor_sizes)

    def sample(key: Array) -> tuple[Array, Array]:
        factors = sample_uniform_factors(key, batch_size, sizes)
        return render(factors, dtype=dtype), factors

    return sample


class RenderedGrid:
    """The ground-truth interface of a data set that renders every factor combination.

    A subclass sets ``factor_sizes``, ``factor_names`` and ``render``, a pure,
    jittable ``factors [n, F] -> images [n, H, W, C]`` (a ``staticmethod``).
    """

    factor_sizes: tuple[int, ...]
    render: Callable[[Array], Array]

    @property
    def num_images(self) -> int:
        """Every factor combination once: ``prod(factor_sizes)``."""
        return grid_size(self.factor_sizes)

    @property
    def is_full_grid(self) -> bool:
        """Always True: every combination can be rendered."""
        return True

    def sample_factors(self, key: Array, n: int) -> Array:
        """Uniform factor classes ``[n, F]`` (int32); jittable for static ``n``."""
        return sample_uniform_factors(key, n, self.factor_sizes)

    def images(self, factors: Array) -> Array:
        """Float32 images ``[n, H, W, C]`` in {0, 1} of classes ``[n, F]``; jittable.

        Called eagerly, it runs one compiled program per batch size instead of
        dispatching the renderer op by op.
        """
        return _render_jit(factors, type(self).render)

    def factors_to_index(self, factors: Array) -> Array:
        """Flat index ``[n]`` of classes ``[n, F]`` (last factor fastest)."""
        return factors_to_index(factors, self.factor_sizes)

    def index_to_factors(self, index: Array) -> Array:
        """Classes ``[n, F]`` of flat indices ``[n]``."""
        return index_to_factors(index, self.factor_sizes)

    def iter_grid(self, batch_size: int = 1024) -> Iterator[tuple[Array, Array]]:
        """Every image in index order, rendered in jitted batches.

        Args:
          batch_size: images per batch (the last batch may be shorter).

        Yields:
          ``(factors int32 [b, F], images float32 [b, H, W, C])``.
        """
        check_dim("batch_size", batch_size)
        offsets = jnp.arange(batch_size, dtype=jnp.int32)
        render, sizes = type(self).render, tuple(self.factor_sizes)
        for start in range(0, self.num_images, batch_size):
            factors, images = _render_index_range(jnp.int32(start), offsets, render, sizes)
            valid = min(batch_size, self.num_images - start)
            yield factors[:valid], images[:valid]
