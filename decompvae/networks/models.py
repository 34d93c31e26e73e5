"""Encoders and decoders: arrays in, distribution parameters out.

Every module is written for a batch ``[b, ...]`` and never samples: an encoder
returns ``(loc, raw)`` of shape ``[b, D]`` for a posterior family of
``decompvae.posteriors`` (for the default diagonal Gaussian, ``raw`` is the
log-variance log σ²; for the Laplace posterior, the log-scale), and a decoder
returns the parameters of the likelihood p(x|z): Bernoulli logits or a mean,
optionally with a learned per-dimension scale.

The convolutional modules take ``conv_impl`` (see ``decompvae.networks.layers``):
it changes how the convolutions are computed, never the parameters, so a
parameter tree initialised or trained with one formulation is used unchanged
by any other.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from decompvae._checks import check_dim, check_positive
from decompvae.networks.layers import Conv2D, ConvTranspose2D, resolve_conv_impl

Array = jax.Array

NETWORKS = ("dsprites", "conv32", "mlp")
DSPRITES_CHANNELS = (32, 32, 64, 64)
CONV32_CHANNELS = (32, 64, 128)

__all__ = [
    "NETWORKS",
    "ConvDecoder",
    "ConvEncoder",
    "MLPDecoder",
    "MLPEncoder",
    "make_networks",
]


def _check_image(x, image_shape) -> None:
    if tuple(jnp.shape(x)[1:]) != tuple(image_shape) or jnp.ndim(x) != 4:
        raise ValueError(
            f"x must have shape [b, {', '.join(map(str, image_shape))}]; got {jnp.shape(x)}"
        )


def _check_latent(z, latent_dim) -> None:
    if jnp.ndim(z) != 2 or (latent_dim is not None and jnp.shape(z)[1] != latent_dim):
        want = "D" if latent_dim is None else latent_dim
        raise ValueError(f"z must have shape [b, {want}]; got {jnp.shape(z)}")


def _bottom(image_shape: Sequence[int], n_layers: int) -> tuple[int, int]:
    """Spatial size after ``n_layers`` halvings; ValueError unless exact."""
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (h, w, c); got {tuple(image_shape)!r}")
    h, w, c = image_shape
    for name, v in (("image height", h), ("image width", w), ("image channels", c)):
        check_dim(name, v)
    f = 2**n_layers
    if h % f or w % f:
        raise ValueError(
            f"image_shape {tuple(image_shape)}: height and width must be multiples of 2**len(channels) = {f}"
        )
    return h // f, w // f


class ConvEncoder(nn.Module):
    """Convolutional encoder: 4×4 stride-2 convolutions (padding 1), ReLU, dense, heads.

    Each convolution halves the spatial size. With the defaults this is the
    published dSprites encoder (64→32→16→8→4, channels 32-32-64-64, dense 128).

    Attributes:
      latent_dim: D.
      image_shape: ``(h, w, c)``; h and w multiples of ``2**len(channels)``.
      channels: output channels of the convolutions.
      hidden: widths of the dense layers after flattening.
      conv_impl: formulation of the convolutions (``layers.CONV_IMPLS``).
      dtype, param_dtype: as in flax layers.
    """

    latent_dim: int
    image_shape: Sequence[int] = (64, 64, 1)
    channels: Sequence[int] = DSPRITES_CHANNELS
    hidden: Sequence[int] = (128,)
    conv_impl: str = "auto"
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> tuple[Array, Array]:
        """Encode a batch of images.

        Args:
          x: ``[b, h, w, c]`` images.

        Returns:
          ``(loc, raw)``, each ``[b, D]``: the posterior location and its
          unconstrained spread (log σ² for the Gaussian posterior).
        """
        _bottom(self.image_shape, len(self.channels))
        _check_image(x, self.image_shape)
        impl = resolve_conv_impl(self.conv_impl)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        for i, ch in enumerate(self.channels):
            x = nn.relu(Conv2D(ch, 4, 2, 1, impl=impl, name=f"conv{i}", **kw)(x))  # [b, h/2^(i+1), ., ch]
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, name=f"dense{i}", **kw)(x))
        loc = nn.Dense(self.latent_dim, name="loc", **kw)(x)  # [b, D]
        raw = nn.Dense(self.latent_dim, name="raw", **kw)(x)  # [b, D]
        return loc, raw


class ConvDecoder(nn.Module):
    """Convolutional decoder, the mirror of ``ConvEncoder``.

    Dense layers, a dense layer to ``(h/2^n)·(w/2^n)·channels[-1]``, then n
    4×4 stride-2 transposed convolutions (each doubling the spatial size; the
    last one has ``image_shape[-1]`` output channels and no activation). With
    the defaults this is the published dSprites decoder: dense 128 → dense
    4·4·64 → transposed convolutions 64-32-32-1 → ``[b, 64, 64, 1]``.

    Attributes:
      image_shape: ``(h, w, c)`` of the output.
      channels: the encoder's channels; the decoder runs them in reverse.
      hidden: the encoder's dense widths; run in reverse.
      conv_impl: formulation of the transposed convolutions.
      dtype, param_dtype: as in flax layers.
    """

    image_shape: Sequence[int] = (64, 64, 1)
    channels: Sequence[int] = DSPRITES_CHANNELS
    hidden: Sequence[int] = (128,)
    conv_impl: str = "auto"
    latent_dim: int | None = None
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: Array) -> Array:
        """Decode a batch of latents.

        Args:
          z: ``[b, D]``.

        Returns:
          ``[b, h, w, c]``: unconstrained per-pixel outputs (Bernoulli logits,
          or the mean of a Gaussian/Laplace likelihood).
        """
        h0, w0 = _bottom(self.image_shape, len(self.channels))
        _check_latent(z, self.latent_dim)
        impl = resolve_conv_impl(self.conv_impl)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = z
        for i, width in enumerate(reversed(tuple(self.hidden))):
            x = nn.relu(nn.Dense(width, name=f"dense{i}", **kw)(x))
        rev = tuple(reversed(tuple(self.channels)))
        x = nn.relu(nn.Dense(h0 * w0 * rev[0], name="project", **kw)(x))
        x = x.reshape(x.shape[0], h0, w0, rev[0])
        outs = rev[1:] + (self.image_shape[-1],)
        for i, ch in enumerate(outs):
            x = ConvTranspose2D(ch, 4, 2, "SAME", impl=impl, name=f"deconv{i}", **kw)(x)
            if i < len(outs) - 1:
                x = nn.relu(x)
        return x  # [b, h, w, c]


class MLPEncoder(nn.Module):
    """Multilayer perceptron encoder (ReLU); inputs ``[b, ...]`` are flattened.

    Attributes:
      latent_dim: D.
      hidden: widths of the hidden layers (the paper's pinwheel: one of 100).
      dtype, param_dtype: as in flax layers.
    """

    latent_dim: int
    hidden: Sequence[int] = (100,)
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> tuple[Array, Array]:
        """Encode a batch.

        Args:
          x: ``[b, ...]`` (flattened to ``[b, d]``).

        Returns:
          ``(loc, raw)``, each ``[b, D]`` (raw = log σ² for the Gaussian posterior).
        """
        if jnp.ndim(x) < 2:
            raise ValueError(f"x must be a batch [b, ...]; got shape {jnp.shape(x)}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, name=f"dense{i}", **kw)(x))
        return nn.Dense(self.latent_dim, name="loc", **kw)(x), nn.Dense(self.latent_dim, name="raw", **kw)(x)


class MLPDecoder(nn.Module):
    """Multilayer perceptron decoder (ReLU), optionally with a learned scale.

    Attributes:
      output_shape: shape of one data point, e.g. ``(2,)`` or ``(8, 8, 1)``.
      hidden: widths of the hidden layers, applied in this order.
      learn_scale: also return a per-dimension scale ``softplus(s)`` from one
        parameter ``s`` of shape ``output_shape`` (not a function of z),
        initialised so the scale starts at ``init_scale``.
      init_scale: the initial scale (> 0).
      dtype, param_dtype: as in flax layers.
    """

    output_shape: Sequence[int]
    hidden: Sequence[int] = (100,)
    learn_scale: bool = False
    init_scale: float = 1.0
    latent_dim: int | None = None
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: Array) -> Array | tuple[Array, Array]:
        """Decode a batch of latents.

        Args:
          z: ``[b, D]``.

        Returns:
          The mean (or logits) ``[b, *output_shape]``; with ``learn_scale``,
          ``(loc, scale)`` with ``scale = softplus(s)`` broadcast to the same shape.
        """
        _check_latent(z, self.latent_dim)
        shape = tuple(self.output_shape)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = z
        for i, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, name=f"dense{i}", **kw)(x))
        loc = nn.Dense(int(np.prod(shape)), name="loc", **kw)(x).reshape(z.shape[0], *shape)
        if not self.learn_scale:
            return loc
        check_positive("init_scale", self.init_scale)
        raw0 = float(np.log(np.expm1(self.init_scale)))
        s = self.param("raw_scale", nn.initializers.constant(raw0), shape, self.param_dtype)
        scale = nn.softplus(jnp.asarray(s, loc.dtype))
        return loc, jnp.broadcast_to(scale, loc.shape)


def make_networks(
    name: str,
    latent_dim: int,
    *,
    data_shape: Sequence[int] | None = None,
    hidden: Sequence[int] | None = None,
    conv_impl: str = "auto",
    learn_scale: bool = False,
    param_dtype: jnp.dtype = jnp.float32,
) -> tuple[nn.Module, nn.Module]:
    """An ``(encoder, decoder)`` pair by name.

    Args:
      name: ``"dsprites"`` (published 64×64 convnet; data ``(64, 64, 1)``),
        ``"conv32"`` (convolutions 32-64-128, dense 256; data ``(32, 32, c)``,
        default ``(32, 32, 1)``) or ``"mlp"`` (data of any shape, required).
      latent_dim: D ≥ 1.
      data_shape: shape of one data point.
      hidden: dense widths (defaults: dsprites (128,), conv32 (256,), mlp (100,)).
      conv_impl: formulation of the convolutions (``layers.CONV_IMPLS``);
        ignored by "mlp".
      learn_scale: "mlp" only: the decoder also returns a learned scale.
      param_dtype: dtype of the parameters.

    Returns:
      ``(encoder, decoder)`` Flax modules: ``encoder(x [b, *data_shape]) ->
      (loc, raw)`` each ``[b, D]``; ``decoder(z [b, D])`` -> ``[b, *data_shape]``
      (or ``(loc, scale)`` with ``learn_scale``).
    """
    check_dim("latent_dim", latent_dim)
    resolve_conv_impl(conv_impl)  # validates the name
    if learn_scale and name != "mlp":
        raise ValueError(f"learn_scale is only offered by the 'mlp' networks; got name={name!r}")
    if name in ("dsprites", "conv32"):
        default_shape, channels, default_hidden = {
            "dsprites": ((64, 64, 1), DSPRITES_CHANNELS, (128,)),
            "conv32": ((32, 32, 1), CONV32_CHANNELS, (256,)),
        }[name]
        shape = default_shape if data_shape is None else tuple(data_shape)
        if shape[:2] != default_shape[:2] or len(shape) != 3 or (name == "dsprites" and shape[2] != 1):
            raise ValueError(f"data_shape for {name!r} must be {default_shape}; got {shape!r}")
        _bottom(shape, len(channels))
        hidden = default_hidden if hidden is None else tuple(hidden)
        kw = dict(channels=channels, hidden=hidden, conv_impl=conv_impl, param_dtype=param_dtype)
        return (
            ConvEncoder(latent_dim, image_shape=shape, **kw),
            ConvDecoder(image_shape=shape, latent_dim=latent_dim, **kw),
        )
    if name == "mlp":
        if data_shape is None:
            raise ValueError("data_shape is required for the 'mlp' networks, e.g. (2,) for pinwheel")
        shape = tuple(int(d) for d in data_shape)
        for d in shape:
            check_dim("data_shape entries", d)
        hidden = (100,) if hidden is None else tuple(hidden)
        for w in hidden:
            check_dim("hidden widths", w)
        return (
            MLPEncoder(latent_dim, hidden=hidden, param_dtype=param_dtype),
            MLPDecoder(shape, hidden=tuple(reversed(hidden)), learn_scale=learn_scale,
                       latent_dim=latent_dim, param_dtype=param_dtype),
        )
    raise ValueError(f"name must be one of {NETWORKS}; got {name!r}")
