"""Flax encoders/decoders and convolution layers with selectable formulations."""

from decompvae.networks.layers import (
    CONV_IMPLS,
    Conv2D,
    ConvTranspose2D,
    conv2d,
    conv_transpose2d,
    resolve_conv_impl,
)
from decompvae.networks.models import (
    COMPUTE_DTYPES,
    NETWORKS,
    NetworkSpec,
    ConvDecoder,
    ConvEncoder,
    DCGANDecoder,
    DCGANEncoder,
    MLPDecoder,
    MLPEncoder,
    make_networks,
)

__all__ = [
    "COMPUTE_DTYPES",
    "CONV_IMPLS",
    "NETWORKS",
    "NetworkSpec",
    "Conv2D",
    "ConvDecoder",
    "ConvEncoder",
    "ConvTranspose2D",
    "DCGANDecoder",
    "DCGANEncoder",
    "MLPDecoder",
    "MLPEncoder",
    "conv2d",
    "conv_transpose2d",
    "make_networks",
    "resolve_conv_impl",
]
