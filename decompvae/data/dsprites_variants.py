"""Colour, noisy and scream dSprites: disentanglement_lib's variants, rendered procedurally.

disentanglement_lib (``data/ground_truth/dsprites.py``) defines three
variants of dSprites with the same five factors (shape 3, scale 6,
orientation 40, posX 32, posY 32) and 64×64×3 images whose extra randomness
is a *nuisance*, drawn afresh for every observation:

- ``color_dsprites`` (``ColorDSprites``): the white sprite on black times a
  colour drawn uniformly in [0.5, 1] per channel, one colour per image.
- ``noisy_dsprites`` (``NoisyDSprites``): ``min(sprite + noise, 1)`` with
  noise uniform in [0, 1] per pixel and channel: the background is noise,
  the sprite pixels are 1.
- ``scream_dsprites`` (``ScreamDSprites``): a random 64×64 patch of a
  background image; ``background = (patch + c) / 2`` with a colour c uniform
  in [0, 1]³ per image, and the sprite pixels set to ``1 − background``.

Here the sprite comes from the procedural renderer
(:mod:`decompvae.data.sprites`, close to the official images but not
pixel-exact), not from the official file, and everything is jittable. The
nuisance takes an explicit PRNG key (no NumPy global state): one key per
image. The training stream draws it from the step's key, as
disentanglement_lib draws it at every call; ``images(factors)`` without a
key (what the metrics call) uses a *fixed* key per factor combination,
``fold_in(key(seed), flat index)``, so a combination always gives the same
image (a fixed realisation of the nuisance, different across combinations),
and ``images(factors, key)`` draws it from ``key``.

The scream background: disentanglement_lib reads ``scream/scream.jpg`` (Munch's
*The Scream*) and shrinks it with PIL's ``thumbnail((350, 274))``. Here an
image file given as ``data.path`` is read and shrunk the same way; without
one a procedural texture of 274 × 218 pixels (smooth colour waves in
[0, 1]) stands in: the same kind of structured, colourful background, but
not the painting, so scores are not comparable with published scream numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from decompvae._checks import check_choice, check_dim
from decompvae.data.ground_truth import (
    RenderedGrid, factors_to_index, grid_size, index_to_factors, sample_uniform_factors,
)
from decompvae.data.sprites import FACTOR_NAMES, FACTOR_SIZES, IMAGE_SIZE, render_factors

Array = jax.Array

__all__ = [
    "COLOR_RANGE",
    "DSpritesVariant",
    "VARIANTS",
    "color_dsprites",
    "load_scream_background",
    "make_variant_stream",
    "noisy_dsprites",
    "procedural_scream_background",
    "render_variant",
    "scream_dsprites",
]

VARIANTS = ("color", "noisy", "scream")
#: The range of ColorDSprites' colour, per channel.
COLOR_RANGE = (0.5, 1.0)
#: PIL ``thumbnail`` bound (width, height) disentanglement_lib applies to the scream image.
SCREAM_THUMBNAIL = (350, 274)
#: (height, width) of the procedural stand-in background.
PROCEDURAL_SCREAM_SHAPE = (274, 218)
CHANNELS = 3


# ---------------------------------------------------------------------------
# Pure renderers
# ---------------------------------------------------------------------------


def _color(key: Array, sprite: Array, background) -> Array:
    colour = jax.random.uniform(key, (1, 1, CHANNELS), minval=COLOR_RANGE[0], maxval=COLOR_RANGE[1])
    return sprite * colour  # [64, 64, 3]


def _noisy(key: Array, sprite: Array, background) -> Array:
    noise = jax.random.uniform(key, (IMAGE_SIZE, IMAGE_SIZE, CHANNELS))
    return jnp.minimum(sprite + noise, 1.0)


def _scream(key: Array, sprite: Array, background: Array) -> Array:
    key_row, key_col, key_colour = jax.random.split(key, 3)
    h, w, _ = background.shape
    # numpy's randint(0, h - 64) of disentanglement_lib: offsets 0 … h − 65 (0 for a 64-pixel side).
    row = jax.random.randint(key_row, (), 0, max(h - IMAGE_SIZE, 1))
    col = jax.random.randint(key_col, (), 0, max(w - IMAGE_SIZE, 1))
    patch = jax.lax.dynamic_slice(background, (row, col, 0), (IMAGE_SIZE, IMAGE_SIZE, CHANNELS))
    base = (patch + jax.random.uniform(key_colour, (CHANNELS,))) / 2.0
    return jnp.where(sprite == 1.0, 1.0 - base, base)


_RENDERERS = {"color": _color, "noisy": _noisy, "scream": _scream}


def render_variant(variant: str, keys: Array, factors: Array, background: Array | None = None) -> Array:
    """Render a dSprites variant, one nuisance key per image (jittable; ``variant`` static).

    Args:
      variant: ``"color"``, ``"noisy"`` or ``"scream"``.
      keys: PRNG keys ``[n]``, one per image.
      factors: int classes ``[n, 5]`` (shape, scale, orientation, posX, posY).
      background: float32 ``[H, W, 3]`` in [0, 1], H, W ≥ 64 (scream only).

    Returns:
      float32 images ``[n, 64, 64, 3]`` in [0, 1].
    """
    check_choice("variant", variant, VARIANTS)
    if (variant == "scream") != (background is not None):
        raise ValueError("a background is needed by variant 'scream' and only by it")
    sprites = jnp.broadcast_to(render_factors(factors), (len(factors), IMAGE_SIZE, IMAGE_SIZE, CHANNELS))
    return jax.vmap(_RENDERERS[variant], in_axes=(0, 0, None))(keys, sprites, background)


@functools.partial(jax.jit, static_argnames=("variant",))
def _images_fixed(seed_key: Array, factors: Array, background, variant: str) -> Array:
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(seed_key, factors_to_index(factors, FACTOR_SIZES))
    return render_variant(variant, keys, factors, background)


@functools.partial(jax.jit, static_argnames=("variant",))
def _images_keyed(key: Array, factors: Array, background, variant: str) -> Array:
    return render_variant(variant, jax.random.split(key, len(factors)), factors, background)


@functools.partial(jax.jit, static_argnames=("variant",))
def _grid_range(seed_key: Array, start: Array, offsets: Array, background, variant: str):
    factors = index_to_factors(jnp.minimum(start + offsets, grid_size(FACTOR_SIZES) - 1), FACTOR_SIZES)
    return factors, _images_fixed(seed_key, factors, background, variant)


# ---------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------


def procedural_scream_background(shape: tuple[int, int] = PROCEDURAL_SCREAM_SHAPE) -> np.ndarray:
    """The stand-in for the scream image: smooth, swirling colour waves.

    A fixed function of the pixel position (no randomness); not the painting.

    Args:
      shape: ``(height, width)``, each ≥ 64.

    Returns:
      float32 ``[height, width, 3]`` in [0, 1].
    """
    h, w = shape
    if h < IMAGE_SIZE or w < IMAGE_SIZE:
        raise ValueError(f"the background must be at least {IMAGE_SIZE}×{IMAGE_SIZE}; got {shape}")
    u, v = np.meshgrid(np.linspace(0.0, 1.0, h), np.linspace(0.0, 1.0, w), indexing="ij")
    tau = 2 * np.pi
    channels = [
        np.sin(tau * (1.5 * u + 0.35 * np.sin(tau * 1.3 * v))),
        np.sin(tau * (2.2 * v + 0.30 * np.sin(tau * 1.1 * u)) + 1.0),
        np.sin(tau * (1.1 * (u + v) + 0.40 * np.sin(tau * 1.7 * (u - v))) + 2.0),
    ]
    return (0.5 + 0.5 * np.stack(channels, axis=-1)).astype(np.float32)


def load_scream_background(path) -> np.ndarray:
    """An image file as the scream background, shrunk as disentanglement_lib does.

    Opens the file with PIL (any format it reads, e.g. ``scream.jpg``),
    converts it to RGB and applies ``thumbnail((350, 274))`` (fit inside
    350 × 274, aspect ratio kept; never enlarged), then / 255.

    Args:
      path: the image file.

    Returns:
      float32 ``[H, W, 3]`` in [0, 1].

    Raises:
      FileNotFoundError: no such file.
      ValueError: not an image PIL can read, or smaller than 64×64 after shrinking.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"scream background image not found: {path!r}. disentanglement_lib uses scream/scream.jpg "
            "(Munch's The Scream, e.g. from Wikimedia Commons); leave data.path unset for a procedural texture."
        )
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail(SCREAM_THUMBNAIL)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as err:  # PIL.UnidentifiedImageError is an OSError
        raise ValueError(f"{path!r} is not a readable image: {err}") from err
    if pixels.shape[0] < IMAGE_SIZE or pixels.shape[1] < IMAGE_SIZE:
        raise ValueError(
            f"{path!r}: the background is {pixels.shape[0]}×{pixels.shape[1]} after thumbnail{SCREAM_THUMBNAIL}; "
            f"it must be at least {IMAGE_SIZE}×{IMAGE_SIZE}"
        )
    return pixels


# ---------------------------------------------------------------------------
# The ground-truth object and stream
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class DSpritesVariant(RenderedGrid):
    """A dSprites variant through the ground-truth interface; rendering is jitted.

    Grid methods (``num_images``, ``sample_factors``, index maps) come from
    :class:`~decompvae.data.ground_truth.RenderedGrid`; ``images`` and
    ``iter_grid`` add the variant's nuisance.

    Attributes:
      variant: ``"color"``, ``"noisy"`` or ``"scream"``.
      background: float32 ``[H, W, 3]`` in [0, 1] (scream; None: the
        procedural texture), None for the others.
      seed: the key of the fixed nuisance of ``images(factors)`` without a key.
      factor_sizes: ``(3, 6, 40, 32, 32)``.
      factor_names: ``("shape", "scale", "orientation", "posX", "posY")``.
    """

    variant: str
    background: Array | None = None
    seed: int = 0
    factor_sizes: tuple[int, ...] = dataclasses.field(default=FACTOR_SIZES, init=False)
    factor_names: tuple[str, ...] = dataclasses.field(default=FACTOR_NAMES, init=False)

    def __post_init__(self):
        check_choice("variant", self.variant, VARIANTS)
        background = self.background
        if self.variant != "scream":
            if background is not None:
                raise ValueError(f"variant {self.variant!r} takes no background")
            return
        background = jnp.asarray(procedural_scream_background() if background is None else background, jnp.float32)
        if background.ndim != 3 or background.shape[2] != CHANNELS or min(background.shape[:2]) < IMAGE_SIZE:
            raise ValueError(f"background must have shape [H, W, 3] with H, W ≥ {IMAGE_SIZE}; got {background.shape}")
        object.__setattr__(self, "background", background)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(64, 64, 3)``."""
        return (IMAGE_SIZE, IMAGE_SIZE, CHANNELS)

    def images(self, factors: Array, key: Array | None = None) -> Array:
        """float32 images ``[n, 64, 64, 3]`` in [0, 1] of classes ``[n, 5]``.

        Without ``key`` the nuisance is fixed per combination (see the module
        docstring); with ``key`` it is drawn from it, one split per image.
        """
        factors = jnp.asarray(factors)
        if key is None:
            return _images_fixed(jax.random.key(self.seed), factors, self.background, self.variant)
        return _images_keyed(key, factors, self.background, self.variant)

    def iter_grid(self, batch_size: int = 1024) -> Iterator[tuple[Array, Array]]:
        """Every combination in index order (posY fastest), with its fixed nuisance.

        Yields:
          ``(factors int32 [b, 5], images float32 [b, 64, 64, 3])``.
        """
        check_dim("batch_size", batch_size)
        offsets = jnp.arange(batch_size, dtype=jnp.int32)
        seed_key = jax.random.key(self.seed)
        for start in range(0, self.num_images, batch_size):
            factors, images = _grid_range(seed_key, jnp.int32(start), offsets, self.background, self.variant)
            valid = min(batch_size, self.num_images - start)
            yield factors[:valid], images[:valid]


def color_dsprites(*, seed: int = 0) -> DSpritesVariant:
    """ColorDSprites: the sprite in a random colour, uniform in [0.5, 1] per channel."""
    return DSpritesVariant("color", seed=seed)


def noisy_dsprites(*, seed: int = 0) -> DSpritesVariant:
    """NoisyDSprites: uniform noise background, sprite pixels 1."""
    return DSpritesVariant("noisy", seed=seed)


def scream_dsprites(path=None, *, seed: int = 0) -> DSpritesVariant:
    """ScreamDSprites over the image at ``path`` (:func:`load_scream_background`), or the procedural texture."""
    background = None if path is None else load_scream_background(path)
    return DSpritesVariant("scream", background=background, seed=seed)


def make_variant_stream(dataset: DSpritesVariant, batch_size: int):
    """An endless stream of a variant: uniform factors, fresh nuisance every call.

    Args:
      dataset: the variant (its background is closed over: a constant of the
        compiled program, 0.7 MB for the default size).
      batch_size: b, images per call (static).

    Returns:
      ``sample(key) -> (images float32 [b, 64, 64, 3], factors int32 [b, 5])``;
      pure and jitted (use ``fold_in(key, step)`` for per-step keys).
    """
    check_dim("batch_size", batch_size)
    variant, background = dataset.variant, dataset.background

    def sample(key: Array) -> tuple[Array, Array]:
        key_factors, key_nuisance = jax.random.split(key)
        factors = sample_uniform_factors(key_factors, batch_size, FACTOR_SIZES)
        return render_variant(variant, jax.random.split(key_nuisance, batch_size), factors, background), factors

    return jax.jit(sample)  # inlined in a compiled step; one program when called eagerly
