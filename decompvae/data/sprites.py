"""Procedural dSprites: a pure, jittable renderer from factors to images.

dSprites (Matthey et al. 2017) is a grid of 64×64 binary images of one white
sprite on black, one image per combination of five factors (docs/guide.md#data):

=====  ===========  =======  ================================================
col    factor       classes  official value of class k
=====  ===========  =======  ================================================
0      shape        3        k + 1 (1 square, 2 ellipse, 3 heart)
1      scale        6        linspace(0.5, 1, 6)[k]
2      orientation  40       linspace(0, 2π, 40)[k]  (k = 0 and 39 coincide)
3      posX         32       linspace(0, 1, 32)[k]
4      posY         32       linspace(0, 1, 32)[k]
=====  ===========  =======  ================================================

3·6·40·32·32 = 737,280 images, flat index mixed radix with posY fastest. The
official file also has a colour column (always value 1, class 0) in front;
``latents_values`` / ``latents_classes`` produce those 6-column conventions.

Drawing convention (a close match to the official images, not pixel-exact):

- Pixel (row i, column j) is on when its centre (j + ½, i + ½) lies inside
  the sprite (no anti-aliasing): images are exactly binary.
- The sprite centre is at x = 13.6 + 36.8·posX (columns) and
  y = 13.6 + 36.8·posY (rows, **row 0 is the top**, so posY grows downwards),
  i.e. pixel centres ≈ 13…50. 13.6 px is the largest distance from the
  centre to any sprite point (the corner of the scale-1 square), so every
  sprite stays entirely inside the image.
- At scale s: the square has side 19.2·s px (0.3 of the image at s = 1); the
  ellipse has semi-axes 13·s and 6.5·s px, long axis horizontal at
  orientation 0; the heart is the implicit curve
  (x² + y² − 1)³ ≤ x² y³ scaled by 9·s px per unit (about 20.5·s px wide,
  20·s px tall), centred on its bounding box, **pointing down** at
  orientation 0.
- Orientation θ rotates the sprite about its centre counter-clockwise as
  the image is displayed (row 0 at the top).

Images are ``float32`` in {0, 1} with a channel axis, ``[n, 64, 64, 1]``
(``dtype=jnp.uint8`` gives a quarter of the memory); factor classes are
``int32``. Rendering is a few fused element-wise operations per pixel: the
pixel offsets are rotated into sprite coordinates (separably: one row term
plus one column term) and tested against all three shapes analytically, so a
batch renders inside ``jit`` with no per-image loop.

Run ``python -m decompvae.data --grid docs/dsprites_grid.png`` to save a grid
of rendered examples.

Reference: L. Matthey, I. Higgins, D. Hassabis, A. Lerchner, "dSprites:
Disentanglement testing Sprites dataset", 2017,
https://github.com/deepmind/dsprites-dataset.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np

from decompvae.data.ground_truth import RenderedGrid, sample_uniform_factors

Array = jax.Array

__all__ = [
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "IMAGE_SIZE",
    "NUM_IMAGES",
    "ProceduralDSprites",
    "factor_classes",
    "factor_grid",
    "factor_values",
    "factors_from_latents_classes",
    "latents_classes",
    "latents_values",
    "render",
    "render_factors",
    "save_grid",
]

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
NUM_IMAGES = 737_280
IMAGE_SIZE = 64

# Geometry in pixels at scale 1 (see the module docstring).
SQUARE_HALF_SIDE = 9.6
ELLIPSE_SEMI_AXES = (13.0, 6.5)
HEART_UNIT = 9.0
HEART_CENTRE_Y = 0.118  # bounding-box centre of (x²+y²−1)³ = x²y³, in heart units
POSITION_MARGIN = 13.6  # ≥ 9.6·√2, the farthest sprite point from its centre
POSITION_SPAN = IMAGE_SIZE - 2 * POSITION_MARGIN


def factor_grid() -> tuple[np.ndarray, ...]:
    """The official factor values, one float64 array per factor.

    Returns:
      ``(shape [3], scale [6], orientation [40], posX [32], posY [32])`` with
      the values of the official file: shape 1, 2, 3; scale
      linspace(0.5, 1, 6); orientation linspace(0, 2π, 40); positions
      linspace(0, 1, 32).
    """
    return (
        np.arange(1.0, 4.0),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    )


def factor_values(factors: Array) -> Array:
    """Official factor values of factor classes (jittable).

    Args:
      factors: int classes ``[n, 5]`` (shape, scale, orientation, posX, posY).

    Returns:
      float32 values ``[n, 5]``: shape 1, 2, 3; scale in [0.5, 1];
      orientation in [0, 2π]; posX, posY in [0, 1].
    """
    factors = jnp.asarray(factors)
    columns = [
        jnp.asarray(values, jnp.float32)[factors[:, f]]
        for f, values in enumerate(factor_grid())
    ]
    return jnp.stack(columns, axis=-1)


def factor_classes(values: Array) -> Array:
    """Factor classes of factor values: the nearest official value per column (jittable).

    The inverse of ``factor_values`` on the grid; off-grid values snap to the
    nearest grid value (orientation 2π gives class 39, not 0).

    Args:
      values: ``[n, 5]`` factor values (shape 1, 2, 3; scale; orientation in
        radians; posX; posY), official convention.

    Returns:
      int32 classes ``[n, 5]``.
    """
    values = jnp.asarray(values)
    columns = [
        jnp.argmin(jnp.abs(values[:, f, None] - jnp.asarray(grid, values.dtype)[None, :]), axis=1)
        for f, grid in enumerate(factor_grid())
    ]
    return jnp.stack(columns, axis=-1).astype(jnp.int32)


def latents_classes(factors) -> np.ndarray:
    """The official 6-column ``latents_classes`` of factor classes.

    Args:
      factors: int classes ``[n, 5]``.

    Returns:
      int64 ``[n, 6]``: a colour column of zeros, then the five factor classes.
    """
    factors = np.asarray(factors, dtype=np.int64)
    return np.concatenate([np.zeros_like(factors[:, :1]), factors], axis=1)


def latents_values(factors) -> np.ndarray:
    """The official 6-column ``latents_values`` of factor classes.

    Args:
      factors: int classes ``[n, 5]``.

    Returns:
      float64 ``[n, 6]``: a colour column of ones, then the official values
      (see ``factor_grid``).
    """
    factors = np.asarray(factors, dtype=np.int64)
    columns = [np.ones(len(factors))]
    columns += [values[factors[:, f]] for f, values in enumerate(factor_grid())]
    return np.stack(columns, axis=1)


def factors_from_latents_classes(classes) -> np.ndarray:
    """Drop the (constant) colour column of official ``latents_classes``.

    Args:
      classes: int ``[n, 6]`` official classes (colour, shape, scale,
        orientation, posX, posY).

    Returns:
      int32 factor classes ``[n, 5]``.
    """
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.shape[1] != 6:
        raise ValueError(f"classes must have shape [n, 6]; got {classes.shape}")
    return classes[:, 1:].astype(np.int32)


def render(shape, scale, orientation, pos_x, pos_y, *, dtype=jnp.float32) -> Array:
    """Render sprites from (continuous) factor values; jittable, no per-image loop.

    Args:
      shape: int ``[n]``: 0 square, 1 ellipse, 2 heart (the class, not the
        official value).
      scale: ``[n]`` sprite size, 1 = the largest official size.
      orientation: ``[n]`` angle in radians, counter-clockwise as displayed.
      pos_x: ``[n]`` horizontal position in [0, 1] (0 = left).
      pos_y: ``[n]`` vertical position in [0, 1] (0 = top).
      dtype: output dtype (float32 or uint8, for example).

    Returns:
      Images ``[n, 64, 64, 1]`` with values in {0, 1}. Computed in float32
      whatever the input precision, so the pixels do not depend on x64 mode.
    """
    f32 = jnp.float32
    scale = jnp.asarray(scale, f32)
    angle = jnp.asarray(orientation, f32)
    centre_x = POSITION_MARGIN + POSITION_SPAN * jnp.asarray(pos_x, f32)
    centre_y = POSITION_MARGIN + POSITION_SPAN * jnp.asarray(pos_y, f32)
    pixel = jnp.arange(IMAGE_SIZE, dtype=f32) + 0.5
    dx = pixel[None, :] - centre_x[:, None]  # [n, w] to the right
    dy = centre_y[:, None] - pixel[None, :]  # [n, h] upwards
    cos = (jnp.cos(angle) / scale)[:, None]
    sin = (jnp.sin(angle) / scale)[:, None]
    # Sprite coordinates (u, v) = R(−θ)·(dx, dy) / s, separable in row and column.
    u = (cos * dx)[:, None, :] + (sin * dy)[:, :, None]  # [n, h, w]
    v = (cos * dy)[:, :, None] - (sin * dx)[:, None, :]  # [n, h, w]

    square = jnp.maximum(jnp.abs(u), jnp.abs(v)) <= SQUARE_HALF_SIDE
    eu = u * (1.0 / ELLIPSE_SEMI_AXES[0])
    ev = v * (1.0 / ELLIPSE_SEMI_AXES[1])
    ellipse = eu * eu + ev * ev <= 1.0
    hx2 = jnp.square(u * (1.0 / HEART_UNIT))
    hy = v * (1.0 / HEART_UNIT) + HEART_CENTRE_Y
    r = hx2 + hy * hy - 1.0
    heart = r * r * r <= hx2 * hy * hy * hy

    shape = jnp.asarray(shape)[:, None, None]
    inside = jnp.where(shape == 0, square, jnp.where(shape == 1, ellipse, heart))
    return inside[..., None].astype(dtype)


def render_factors(factors: Array, *, dtype=jnp.float32) -> Array:
    """Render dSprites images of factor classes (jittable).

    Args:
      factors: int classes ``[n, 5]`` (shape, scale, orientation, posX, posY);
        out-of-range classes are clipped to the grid (JAX indexing).
      dtype: output dtype (float32 or uint8, for example).

    Returns:
      Images ``[n, 64, 64, 1]`` in {0, 1}.
    """
    factors = jnp.asarray(factors)
    values = factor_values(factors)
    return render(
        factors[:, 0],
        values[:, 1],
        values[:, 2],
        values[:, 3],
        values[:, 4],
        dtype=dtype,
    )


@dataclasses.dataclass(frozen=True)
class ProceduralDSprites(RenderedGrid):
    """dSprites rendered on demand: the ground-truth interface, fully jittable.

    Attributes:
      factor_sizes: ``(3, 6, 40, 32, 32)``.
      factor_names: ``("shape", "scale", "orientation", "posX", "posY")``.
    """

    factor_sizes: tuple[int, ...] = dataclasses.field(default=FACTOR_SIZES, init=False)
    factor_names: tuple[str, ...] = dataclasses.field(default=FACTOR_NAMES, init=False)
    render = staticmethod(render_factors)


def _tile(images: np.ndarray, gap: int = 2, gap_value: float = 0.5) -> np.ndarray:
    """Tile images ``[r, c, h, w]`` into one ``[r·(h+gap)−gap, c·(w+gap)−gap]`` array."""
    rows, cols, h, w = images.shape
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), gap_value, np.float32)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = images[r, c]
    return out


def grid_factors(key: Array, columns: int = 10) -> np.ndarray:
    """Factor classes ``[8, columns, 5]`` for an overview grid.

    Rows: one orientation sweep per shape (scale 1, centred); a scale sweep;
    a posX sweep; a posY sweep; two rows of random samples from ``key``.
    """
    def spread(size):
        return np.round(np.linspace(0, size - 1, columns)).astype(np.int32)

    base = np.array([0, 5, 0, 15, 15], np.int32)
    rows = []
    for shape in range(3):
        row = np.tile(base, (columns, 1))
        row[:, 0] = shape
        row[:, 2] = spread(40)
        rows.append(row)
    for factor, shape in ((1, 2), (3, 0), (4, 1)):
        row = np.tile(base, (columns, 1))
        row[:, 0] = shape
        row[:, 2] = 5
        row[:, factor] = spread(FACTOR_SIZES[factor])
        rows.append(row)
    random = np.asarray(sample_uniform_factors(key, 2 * columns, FACTOR_SIZES))
    rows += [random[:columns], random[columns:]]
    return np.stack(rows)


def save_grid(path, key: Array, *, data=None, columns: int = 10) -> np.ndarray:
    """Render ``grid_factors(key)`` and save it as a PNG (white sprites on black).

    Args:
      path: output file (PNG).
      key: PRNG key for the two rows of random samples.
      data: a ground-truth data set (default: the procedural renderer).
      columns: images per row.

    Returns:
      The tiled float image that was saved, ``[H, W]``.
    """
    data = ProceduralDSprites() if data is None else data
    factors = grid_factors(key, columns)
    images = np.asarray(data.images(factors.reshape(-1, 5)))[..., 0]
    tiled = _tile(images.reshape(*factors.shape[:2], IMAGE_SIZE, IMAGE_SIZE))
    matplotlib.image.imsave(path, tiled, cmap="gray", vmin=0.0, vmax=1.0)
    return tiled
