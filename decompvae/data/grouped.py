"""Sprite pairs: two dSprites-like sprites per image, their factors in two groups.

A ground-truth data set for *independent subspaces*: each 64×64 binary image
shows sprite A in the left half (columns 0–31) and sprite B in the right half
(columns 32–63), both drawn by the dSprites renderer
(:func:`decompvae.data.sprites.render`, same shapes and drawing convention).
Each sprite has five factors, so the ten factors fall into two groups,
``factor_groups = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))`` named
``("sprite_a", "sprite_b")``: a representation with a block structure should
put each sprite in its own latent block.

=====  =============  =======  ==============================================
col    factor         classes  value of class k
=====  =============  =======  ==============================================
0, 5   shape          3        0 square, 1 ellipse, 2 heart
1, 6   scale          2        (0.5, 0.75)[k]
2, 7   orientation    4        k·π/8 (a quarter turn in four steps)
3, 8   posX           4        sprite centre at column 10.375 + 3.75·k
                               (+ 32 for sprite B)
4, 9   posY           4        sprite centre at row 11.75 + 13.5·k
=====  =============  =======  ==============================================

(3·2·4·4·4)² = 384² = 147,456 images, every combination once; the flat index
is mixed radix with the last factor (B's posY) fastest, as dSprites.

Why this layout:

- The two halves never overlap: a sprite reaches at most 13.6·s ≤ 10.2 px
  from its centre (the corner of the square, see ``sprites``), and the
  centres keep every sprite inside its half. So the image is the union
  (pixel-wise OR) of the two single-sprite images, nothing is occluded, and
  A and B cannot be swapped: both groups are determined by the image and a
  perfectly block-structured representation exists.
- Orientations span a quarter turn without its end point, so no two classes
  give the same image (the square repeats every quarter turn); every one of
  the 147,456 images is distinct.
- The grid is small enough for measures that iterate it (``iter_grid``)
  on a CPU: 147,456 images against dSprites' 737,280.

The spatial split makes the grouping easy for a convolutional encoder to
find; the data set tests whether an *objective* (a block prior) aligns the
groups with latent blocks, not whether a network can discover them.

Images are ``float32`` in {0, 1}, ``[n, 64, 64, 1]``; factor classes
``int32 [n, 10]``. Rendering is jittable and pure: the same factors give the
same pixels, and ``sample_factors`` with the same key the same factors.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from decompvae.data import sprites
from decompvae.data.ground_truth import RenderedGrid, make_factor_stream

Array = jax.Array

__all__ = [
    "PAIR_FACTOR_GROUPS",
    "PAIR_FACTOR_NAMES",
    "PAIR_FACTOR_SIZES",
    "PAIR_GROUP_NAMES",
    "PAIR_NUM_IMAGES",
    "ProceduralSpritePairs",
    "make_pair_stream",
    "render_pair_factors",
    "render_sprite_factors",
]

SPRITE_FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
SPRITE_FACTOR_SIZES = (3, 2, 4, 4, 4)
SCALES = (0.5, 0.75)
ORIENTATIONS = tuple(k * np.pi / 8 for k in range(4))
CENTRES_X = tuple(10.375 + 3.75 * k for k in range(4))  # pixel columns within a 32-px half
CENTRES_Y = tuple(11.75 + 13.5 * k for k in range(4))  # pixel rows (row 0 at the top)
HALF_WIDTH = sprites.IMAGE_SIZE // 2

PAIR_GROUP_NAMES = ("sprite_a", "sprite_b")
PAIR_FACTOR_NAMES = tuple(f"{g[-1]}_{name}" for g in PAIR_GROUP_NAMES for name in SPRITE_FACTOR_NAMES)
PAIR_FACTOR_SIZES = SPRITE_FACTOR_SIZES * 2
PAIR_FACTOR_GROUPS = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))
PAIR_NUM_IMAGES = 147_456


def render_sprite_factors(factors: Array, *, side: int = 0, dtype=jnp.float32) -> Array:
    """Render one sprite of the pair data set in its half of the image (jittable).

    Args:
      factors: int classes ``[n, 5]`` (shape, scale, orientation, posX, posY)
        of the table in the module docstring; out-of-range classes are
        clipped (JAX indexing).
      side: 0 for sprite A (left half), 1 for sprite B (right half); static.
      dtype: output dtype.

    Returns:
      Images ``[n, 64, 64, 1]`` in {0, 1}, the sprite drawn by
      :func:`decompvae.data.sprites.render` at centre
      ``(CENTRES_X[posX] + 32·side, CENTRES_Y[posY])`` pixels.
    """
    if side not in (0, 1):
        raise ValueError(f"side must be 0 (sprite A) or 1 (sprite B); got {side!r}")
    factors = jnp.asarray(factors)
    # The renderer's positions in [0, 1] map to centres 13.6 + 36.8·pos; invert that map.
    pos_x = (np.asarray(CENTRES_X) + HALF_WIDTH * side - sprites.POSITION_MARGIN) / sprites.POSITION_SPAN
    pos_y = (np.asarray(CENTRES_Y) - sprites.POSITION_MARGIN) / sprites.POSITION_SPAN
    table = lambda values, f: jnp.asarray(values, jnp.float32)[factors[:, f]]  # noqa: E731
    return sprites.render(
        factors[:, 0],
        table(SCALES, 1),
        table(ORIENTATIONS, 2),
        table(pos_x, 3),
        table(pos_y, 4),
        dtype=dtype,
    )


def render_pair_factors(factors: Array, *, dtype=jnp.float32) -> Array:
    """Render pair images of factor classes (jittable).

    Args:
      factors: int classes ``[n, 10]``: sprite A's five factors, then B's.
      dtype: output dtype (float32 or uint8, for example).

    Returns:
      Images ``[n, 64, 64, 1]`` in {0, 1}: the pixel-wise maximum (union) of
      A's and B's single-sprite images, which never overlap.
    """
    factors = jnp.asarray(factors)
    side_a = render_sprite_factors(factors[:, :5], side=0, dtype=dtype)
    side_b = render_sprite_factors(factors[:, 5:], side=1, dtype=dtype)
    return jnp.maximum(side_a, side_b)


def make_pair_stream(batch_size: int, *, dtype=jnp.float32):
    """An endless stream of sprite pairs: uniform factors rendered on the fly.

    Returns:
      ``sample(key) -> (images [b, 64, 64, 1] in {0, 1}, factors int32 [b, 10])``;
      pure and jittable (:func:`~decompvae.data.ground_truth.make_factor_stream`).
    """
    return make_factor_stream(render_pair_factors, PAIR_FACTOR_SIZES, batch_size, dtype=dtype)


@dataclasses.dataclass(frozen=True)
class ProceduralSpritePairs(RenderedGrid):
    """Sprite pairs rendered on demand: the ground-truth interface plus factor groups.

    Attributes:
      factor_sizes: ``(3, 2, 4, 4, 4, 3, 2, 4, 4, 4)``.
      factor_names: ``("a_shape", "a_scale", "a_orientation", "a_posX",
        "a_posY", "b_shape", …, "b_posY")``.
      factor_groups: factor indices per group, ``((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))``.
      group_names: ``("sprite_a", "sprite_b")``.
    """

    factor_sizes: tuple[int, ...] = dataclasses.field(default=PAIR_FACTOR_SIZES, init=False)
    factor_names: tuple[str, ...] = dataclasses.field(default=PAIR_FACTOR_NAMES, init=False)
    factor_groups: tuple[tuple[int, ...], ...] = dataclasses.field(default=PAIR_FACTOR_GROUPS, init=False)
    group_names: tuple[str, ...] = dataclasses.field(default=PAIR_GROUP_NAMES, init=False)
    render = staticmethod(render_pair_factors)
