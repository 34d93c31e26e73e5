"""Encoders and decoders: arrays in, distribution parameters out.

Every module is written for a batch ``[b, ...]`` and never samples: an encoder
returns ``(loc, raw)`` of shape ``[b, D]`` for a posterior family of
``decompvae.posteriors`` (for the default diagonal Gaussian, ``raw`` is the
log-variance log σ²; for the Laplace posterior, the log-scale), and a decoder
returns the parameters of the likelihood p(x|z): Bernoulli logits or a mean,
optionally with a learned per-dimension scale.

The ``"fashion"`` networks (:class:`DCGANEncoder`, :class:`DCGANDecoder`) hold
BatchNorm layers, whose running statistics live in the ``"batch_stats"``
collection beside ``"params"`` in the variables ``init`` returns. They take a
call argument ``train``: ``False`` (the default, evaluation) normalises with the
running averages; ``True`` normalises with the batch's statistics and must be
applied with ``mutable=["batch_stats"]``, which returns the updated running
averages (flax momentum 0.9 = PyTorch momentum 0.1, epsilon 1e-5, as in the
published code). ``decompvae.objective.make_objective(..., train=True)`` does
this and hands the new statistics to the trainer.

The convolutional modules take ``conv_impl`` (see ``decompvae.networks.layers``):
it changes how the convolutions are computed, never the parameters, so a
parameter tree initialised or trained with one formulation is used unchanged
by any other. Their ``dtype`` (``make_networks(compute_dtype=...)``) is the
dtype of the computation: ``bfloat16`` multiplies in bfloat16 and accumulates
in float32 (see ``decompvae.networks.layers``), while the parameters stay
``param_dtype`` and the outputs (locations, spreads, logits, means) are
returned in ``param_dtype`` for the loss.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from decompvae._checks import check_choice, check_dim, check_positive
from decompvae.networks.layers import Conv2D, ConvTranspose2D, resolve_conv_impl

Array = jax.Array

DSPRITES_CHANNELS = (32, 32, 64, 64)
#: Output channels of the published dSprites decoder's transposed convolutions
#: before the last (which has the image's channels): 64→64, 64→64, 64→32, 32→1.
DSPRITES_DECONV_CHANNELS = (64, 64, 32)
CONV32_CHANNELS = (32, 64, 128)
#: Flax ``nn.BatchNorm`` momentum m (running = m·running + (1 − m)·batch) equal to
#: PyTorch's ``BatchNorm2d(momentum=0.1)`` of the published code, and its epsilon.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
#: Standard deviation of the DCGAN convolution kernels at initialisation, N(0, 0.02²).
DCGAN_INIT_STD = 0.02

#: ``model.compute_dtype`` → the modules' ``dtype`` (None: the parameters' dtype, no casts).
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}

__all__ = [
    "COMPUTE_DTYPES",
    "NETWORKS",
    "NetworkSpec",
    "ConvDecoder",
    "ConvEncoder",
    "DCGANDecoder",
    "DCGANEncoder",
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


def _out(module, *arrays):
    """The outputs in the parameters' dtype (float32 for the loss under bfloat16 compute); unchanged without ``dtype``."""
    cast = tuple(a if module.dtype is None else a.astype(module.param_dtype) for a in arrays)
    return cast if len(cast) > 1 else cast[0]


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

    Each convolution halves the spatial size. ``make_networks("dsprites")``
    gives the published dSprites encoder (the paper's code; docs/guide.md#networks): 64→32→16→8→4, channels
    32-32-64-64, flatten 1024, a *linear* dense 128 (``dense_activation=False``),
    heads ``loc`` and ``raw``.

    Attributes:
      latent_dim: D.
      image_shape: ``(h, w, c)``; h and w multiples of ``2**len(channels)``.
      channels: output channels of the convolutions.
      hidden: widths of the dense layers after flattening.
      dense_activation: ReLU after each dense layer of ``hidden`` (conv32);
        False makes them linear (the published dSprites encoder).
      conv_impl: formulation of the convolutions (``layers.CONV_IMPLS``).
      dtype, param_dtype: as in flax layers.
    """

    latent_dim: int
    image_shape: Sequence[int] = (64, 64, 1)
    channels: Sequence[int] = DSPRITES_CHANNELS
    hidden: Sequence[int] = (128,)
    dense_activation: bool = True
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
            x = nn.Dense(width, name=f"dense{i}", **kw)(x)
            x = nn.relu(x) if self.dense_activation else x
        loc = nn.Dense(self.latent_dim, name="loc", **kw)(x)  # [b, D]
        raw = nn.Dense(self.latent_dim, name="raw", **kw)(x)  # [b, D]
        return _out(self, loc, raw)


class ConvDecoder(nn.Module):
    """Convolutional decoder, by default the mirror of ``ConvEncoder``.

    Dense layers (ReLU), a dense layer to ``(h/2^n)·(w/2^n)·channels[-1]``
    (ReLU), then n = ``len(channels)`` 4×4 stride-2 transposed convolutions
    (each doubling the spatial size, ReLU between; the last one has
    ``image_shape[-1]`` output channels and no activation).
    ``make_networks("dsprites")`` gives the published dSprites decoder (the paper's code,
    §8): dense 128 → dense 4·4·64 → transposed convolutions 64→64, 64→64,
    64→32, 32→1 → ``[b, 64, 64, 1]``.

    Attributes:
      image_shape: ``(h, w, c)`` of the output.
      channels: the encoder's channels; the decoder starts from
        ``channels[-1]`` and has ``len(channels)`` transposed convolutions.
      hidden: the encoder's dense widths; run in reverse.
      deconv_channels: output channels of the transposed convolutions but the
        last, ``len(channels) − 1`` of them; None mirrors the encoder
        (``reversed(channels)[1:]``; conv32). The published dSprites decoder
        has ``DSPRITES_DECONV_CHANNELS`` = (64, 64, 32).
      conv_impl: formulation of the transposed convolutions.
      dtype, param_dtype: as in flax layers.
    """

    image_shape: Sequence[int] = (64, 64, 1)
    channels: Sequence[int] = DSPRITES_CHANNELS
    hidden: Sequence[int] = (128,)
    deconv_channels: Sequence[int] | None = None
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
        middle = rev[1:] if self.deconv_channels is None else tuple(int(c) for c in self.deconv_channels)
        if len(middle) != len(rev) - 1:
            raise ValueError(
                f"deconv_channels must hold len(channels) - 1 = {len(rev) - 1} values; got {self.deconv_channels!r}"
            )
        x = nn.relu(nn.Dense(h0 * w0 * rev[0], name="project", **kw)(x))
        x = x.reshape(x.shape[0], h0, w0, rev[0])
        outs = middle + (self.image_shape[-1],)
        for i, ch in enumerate(outs):
            x = ConvTranspose2D(ch, 4, 2, "SAME", impl=impl, name=f"deconv{i}", **kw)(x)
            if i < len(outs) - 1:
                x = nn.relu(x)
        return _out(self, x)  # [b, h, w, c]


def _dcgan_kw(module) -> dict:
    return dict(
        use_bias=False,
        kernel_init=nn.initializers.normal(DCGAN_INIT_STD),
        impl=resolve_conv_impl(module.conv_impl),
        dtype=module.dtype,
        param_dtype=module.param_dtype,
    )


def _batch_norm(module, train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=module.momentum,
        epsilon=module.epsilon,
        dtype=module.dtype,
        param_dtype=module.param_dtype,
        name=name,
    )


class DCGANEncoder(nn.Module):
    """The published DCGAN-style Fashion-MNIST encoder (the paper's code), for 32×32 images.

    conv ``c → f`` (4×4, stride 2, padding 1), LeakyReLU 0.2; conv ``f → 2f``
    and ``2f → 4f`` (the same geometry), each followed by BatchNorm and
    LeakyReLU 0.2 (32→16→8→4); then two heads, 4×4 convolutions without
    padding (4×4 → 1×1) to D channels, flattened to ``[b, D]``. The body's
    convolutions have no bias; the heads keep theirs (zero-initialised), as in
    the published code (``nn.Conv2d(4f, D, 4)``). Kernels start N(0, 0.02²).

    Attributes:
      latent_dim: D.
      image_shape: ``(32, 32, c)``.
      base: f, the channel base (the published ``fBase`` = 32).
      momentum, epsilon: of the BatchNorm layers (flax convention:
        running = momentum·running + (1 − momentum)·batch).
      conv_impl: formulation of the convolutions (``layers.CONV_IMPLS``).
      dtype, param_dtype: as in flax layers.
    """

    latent_dim: int
    image_shape: Sequence[int] = (32, 32, 1)
    base: int = 32
    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON
    conv_impl: str = "auto"
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> tuple[Array, Array]:
        """Encode a batch of images.

        Args:
          x: ``[b, 32, 32, c]`` images.
          train: normalise with the batch's statistics and update the running
            averages (apply with ``mutable=["batch_stats"]``); False uses the
            running averages.

        Returns:
          ``(loc, raw)``, each ``[b, D]`` (raw: the unconstrained scale head,
          σ = softplus(raw) + 1e-6 for the ``gaussian_softplus`` posterior).
        """
        if tuple(self.image_shape)[:2] != (32, 32) or len(self.image_shape) != 3:
            raise ValueError(f"image_shape of the DCGAN encoder must be (32, 32, c); got {tuple(self.image_shape)!r}")
        _check_image(x, self.image_shape)
        check_dim("base", self.base)
        kw = _dcgan_kw(self)
        f = self.base
        x = nn.leaky_relu(Conv2D(f, 4, 2, 1, name="conv0", **kw)(x), 0.2)  # [b, 16, 16, f]
        for i, ch in ((1, 2 * f), (2, 4 * f)):
            x = Conv2D(ch, 4, 2, 1, name=f"conv{i}", **kw)(x)  # [b, 8, 8, 2f], then [b, 4, 4, 4f]
            x = nn.leaky_relu(_batch_norm(self, train, f"bn{i}")(x), 0.2)
        head = {**kw, "use_bias": True}
        loc = Conv2D(self.latent_dim, 4, 1, "VALID", name="loc", **head)(x)  # [b, 1, 1, D]
        raw = Conv2D(self.latent_dim, 4, 1, "VALID", name="raw", **head)(x)  # [b, 1, 1, D]
        return _out(self, loc.reshape(x.shape[0], -1), raw.reshape(x.shape[0], -1))


class DCGANDecoder(nn.Module):
    """The published DCGAN-style Fashion-MNIST decoder (the paper's code): ``[b, D] → [b, 32, 32, c]``.

    z as ``[b, 1, 1, D]``; transposed conv ``D → 4f`` (4×4, stride 1, no
    padding: 1×1 → 4×4), BatchNorm, ReLU; ``4f → 2f`` and ``2f → f`` (4×4,
    stride 2, padding 1), each followed by BatchNorm and ReLU; ``f → c``
    (4×4, stride 2, padding 1) with no activation: the mean of the Laplace
    likelihood, as the published decoder returns it. No bias; kernels start
    N(0, 0.02²).

    Attributes:
      image_shape: ``(32, 32, c)`` of the output.
      base: f (the published ``fBase`` = 32).
      momentum, epsilon: of the BatchNorm layers (see :class:`DCGANEncoder`).
      conv_impl: formulation of the transposed convolutions.
      latent_dim: D, checked against z when given.
      dtype, param_dtype: as in flax layers.
    """

    image_shape: Sequence[int] = (32, 32, 1)
    base: int = 32
    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON
    conv_impl: str = "auto"
    latent_dim: int | None = None
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: Array, train: bool = False) -> Array:
        """Decode a batch of latents.

        Args:
          z: ``[b, D]``.
          train: as in :class:`DCGANEncoder`.

        Returns:
          ``[b, 32, 32, c]``, unconstrained (the likelihood's mean).
        """
        if tuple(self.image_shape)[:2] != (32, 32) or len(self.image_shape) != 3:
            raise ValueError(f"image_shape of the DCGAN decoder must be (32, 32, c); got {tuple(self.image_shape)!r}")
        _check_latent(z, self.latent_dim)
        check_dim("base", self.base)
        kw = _dcgan_kw(self)
        f = self.base
        x = z.reshape(z.shape[0], 1, 1, z.shape[1])  # [b, 1, 1, D]
        x = ConvTranspose2D(4 * f, 4, 1, "VALID", name="deconv0", **kw)(x)  # [b, 4, 4, 4f]
        x = nn.relu(_batch_norm(self, train, "bn0")(x))
        for i, ch in ((1, 2 * f), (2, f)):
            x = ConvTranspose2D(ch, 4, 2, "SAME", name=f"deconv{i}", **kw)(x)  # [b, 8, 8, 2f], [b, 16, 16, f]
            x = nn.relu(_batch_norm(self, train, f"bn{i}")(x))
        return _out(self, ConvTranspose2D(self.image_shape[-1], 4, 2, "SAME", name="deconv3", **kw)(x))  # [b, 32, 32, c]


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
        return _out(self, nn.Dense(self.latent_dim, name="loc", **kw)(x), nn.Dense(self.latent_dim, name="raw", **kw)(x))


class MLPDecoder(nn.Module):
    """Multilayer perceptron decoder (ReLU), optionally with a learned scale head.

    Attributes:
      output_shape: shape of one data point, e.g. ``(2,)`` or ``(8, 8, 1)``.
      hidden: widths of the hidden layers, applied in this order.
      learn_scale: also return a per-dimension scale ``softplus(W h + c)``, a
        function of z through the last hidden layer h (the published pinwheel
        decoder of the paper's code); the head's bias starts so that the scale is
        ``init_scale`` when ``W h = 0``.
      init_scale: the scale at initialisation for ``W h = 0`` (> 0).
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
          ``(loc, scale)``, both ``[b, *output_shape]``.
        """
        _check_latent(z, self.latent_dim)
        shape = tuple(self.output_shape)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = z
        for i, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, name=f"dense{i}", **kw)(x))
        loc = nn.Dense(int(np.prod(shape)), name="loc", **kw)(x).reshape(z.shape[0], *shape)
        if not self.learn_scale:
            return _out(self, loc)
        check_positive("init_scale", self.init_scale)
        raw0 = float(np.log(np.expm1(self.init_scale)))
        raw = nn.Dense(int(np.prod(shape)), name="scale", bias_init=nn.initializers.constant(raw0), **kw)(x)
        return _out(self, loc, nn.softplus(_out(self, raw)).reshape(loc.shape))


def _conv_networks(name: str, default_shape, channels, default_hidden):
    """The convnets ``dsprites`` (published: linear dense 128, transposed convolutions 64-64-32-1) and ``conv32``."""

    def build(latent_dim, *, data_shape, hidden, conv_impl, param_dtype, dtype=None):
        shape = default_shape if data_shape is None else tuple(data_shape)
        if shape[:2] != default_shape[:2] or len(shape) != 3 or (name == "dsprites" and shape[2] not in (1, 3)):
            size = "×".join(map(str, default_shape[:2]))
            raise ValueError(f"data_shape for {name!r} must be {size} images with 1 or 3 channels; got {shape!r}")
        _bottom(shape, len(channels))
        hidden = default_hidden if hidden is None else tuple(hidden)
        kw = dict(channels=channels, hidden=hidden, conv_impl=conv_impl, param_dtype=param_dtype, dtype=dtype)
        published = name == "dsprites"  # the paper's code: a linear dense layer
        return (
            ConvEncoder(latent_dim, image_shape=shape, dense_activation=not published, **kw),
            ConvDecoder(image_shape=shape, latent_dim=latent_dim,
                        deconv_channels=DSPRITES_DECONV_CHANNELS if published else None, **kw),
        )

    return build


def _fashion_networks(latent_dim, *, data_shape, hidden, conv_impl, param_dtype, dtype=None):
    """The published DCGAN-style Fashion-MNIST networks with BatchNorm (32×32×1)."""
    shape = (32, 32, 1) if data_shape is None else tuple(data_shape)
    if shape != (32, 32, 1):
        raise ValueError(f"data_shape for 'fashion' must be (32, 32, 1); got {shape!r}")
    if hidden is not None:
        raise ValueError(f"the 'fashion' networks have no dense layers; hidden must be None, got {hidden!r}")
    kw = dict(image_shape=shape, conv_impl=conv_impl, param_dtype=param_dtype, dtype=dtype)
    return DCGANEncoder(latent_dim, **kw), DCGANDecoder(latent_dim=latent_dim, **kw)


def _mlp_networks(latent_dim, *, data_shape, hidden, conv_impl, param_dtype, learn_scale, dtype=None):
    """Dense encoder/decoder for data of any shape (``data_shape`` required)."""
    if data_shape is None:
        raise ValueError("data_shape is required for the 'mlp' networks, e.g. (2,) for pinwheel")
    shape = tuple(int(d) for d in data_shape)
    for d in shape:
        check_dim("data_shape entries", d)
    hidden = (100,) if hidden is None else tuple(hidden)
    for w in hidden:
        check_dim("hidden widths", w)
    return (
        MLPEncoder(latent_dim, hidden=hidden, param_dtype=param_dtype, dtype=dtype),
        MLPDecoder(shape, hidden=tuple(reversed(hidden)), learn_scale=learn_scale,
                   latent_dim=latent_dim, param_dtype=param_dtype, dtype=dtype),
    )


class NetworkSpec(NamedTuple):
    """A registered encoder/decoder pair: how to build it and which data it takes.

    Attributes:
      build: ``build(latent_dim, *, data_shape, hidden, conv_impl, param_dtype[, learn_scale], dtype=None)
        -> (encoder, decoder)``.
      accepts: ``accepts(data_shape) -> bool``: whether it takes points of that shape (a config pairs a data
        set with a network by this, :meth:`decompvae.config.Config.__post_init__`).
      takes: the data it takes, in words (for the error naming the pair).
      example_shape: a data shape it takes, on which the registry's contract test builds it.
      learn_scale: whether its decoder can also return a learned scale (``learn_scale=True``).
    """

    build: Callable[..., tuple[nn.Module, nn.Module]]
    accepts: Callable[[tuple[int, ...]], bool]
    takes: str
    example_shape: tuple[int, ...]
    learn_scale: bool = False


def _image(size: int, channels: tuple[int, ...] | None = None) -> Callable[[tuple[int, ...]], bool]:
    """``accepts`` of a convnet: size×size images with one of ``channels`` (any channel count when None)."""
    return lambda shape: (len(shape) == 3 and tuple(shape[:2]) == (size, size)
                          and (channels is None or shape[2] in channels))


#: Network name → :class:`NetworkSpec` (``model.network``).
NETWORKS = {
    "dsprites": NetworkSpec(_conv_networks("dsprites", (64, 64, 1), DSPRITES_CHANNELS, (128,)), _image(64, (1, 3)),
                            "64×64 images with 1 or 3 channels", (64, 64, 1)),
    "conv32": NetworkSpec(_conv_networks("conv32", (32, 32, 1), CONV32_CHANNELS, (256,)), _image(32),
                          "32×32 images", (32, 32, 1)),
    "fashion": NetworkSpec(_fashion_networks, _image(32, (1,)), "32×32 single-channel images", (32, 32, 1)),
    "mlp": NetworkSpec(_mlp_networks, lambda shape: True, "data of any shape", (5,), learn_scale=True),
}


def make_networks(
    name: str,
    latent_dim: int,
    *,
    data_shape: Sequence[int] | None = None,
    hidden: Sequence[int] | None = None,
    conv_impl: str = "auto",
    learn_scale: bool = False,
    param_dtype: jnp.dtype = jnp.float32,
    compute_dtype: str = "float32",
) -> tuple[nn.Module, nn.Module]:
    """An ``(encoder, decoder)`` pair by name.

    Args:
      name: ``"dsprites"`` (published 64×64 convnet; data ``(64, 64, 1)``),
        ``"conv32"`` (convolutions 32-64-128, dense 256 with ReLU, mirrored
        decoder; data ``(32, 32, c)``, default ``(32, 32, 1)``), ``"fashion"``
        (the published DCGAN-style Fashion-MNIST networks with BatchNorm; data
        ``(32, 32, 1)``) or ``"mlp"`` (data of any shape, required).
      latent_dim: D ≥ 1.
      data_shape: shape of one data point.
      hidden: dense widths (defaults: dsprites (128,), conv32 (256,), mlp (100,));
        "fashion" has none (must be None).
      conv_impl: formulation of the convolutions (``layers.CONV_IMPLS``);
        ignored by "mlp".
      learn_scale: "mlp" only: the decoder also returns a learned scale.
      param_dtype: dtype of the parameters.
      compute_dtype: ``"float32"`` (the parameters' dtype throughout) or
        ``"bfloat16"`` (mixed precision: convolutions and matmuls multiply in
        bfloat16 and accumulate in float32; parameters, optimiser state and
        the returned outputs stay ``param_dtype``). See ``COMPUTE_DTYPES``.

    Returns:
      ``(encoder, decoder)`` Flax modules: ``encoder(x [b, *data_shape]) ->
      (loc, raw)`` each ``[b, D]``; ``decoder(z [b, D])`` -> ``[b, *data_shape]``
      (or ``(loc, scale)`` with ``learn_scale``).
    """
    check_dim("latent_dim", latent_dim)
    check_choice("name", name, tuple(NETWORKS))
    resolve_conv_impl(conv_impl)  # validates the name
    spec = NETWORKS[name]
    if learn_scale and not spec.learn_scale:
        offered = [n for n, s in NETWORKS.items() if s.learn_scale]
        raise ValueError(f"learn_scale is only offered by the networks {offered}; got name={name!r}")
    check_choice("compute_dtype", compute_dtype, tuple(COMPUTE_DTYPES))
    options = dict(data_shape=data_shape, hidden=hidden, conv_impl=conv_impl, param_dtype=param_dtype,
                   dtype=COMPUTE_DTYPES[compute_dtype])
    if spec.learn_scale:
        options["learn_scale"] = learn_scale
    return spec.build(latent_dim, **options)
