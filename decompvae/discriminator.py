"""FactorVAE's total-correlation discriminator, trained inside the train step.

FactorVAE (Kim & Mnih 2018, Eq. 2) adds γ·TC(q(z)) to the VAE loss, with
TC = KL(q(z) ‖ q̄(z)) and q̄(z) = Π_d q(z_d). A classifier D(z) = P(z ~ q(z))
between samples of q(z) (class 0) and of q̄(z) (class 1: every dimension
permuted across the batch) gives, by the density-ratio trick,

    TC ≈ E_{q(z)}[ log D(z)/(1 − D(z)) ] = E_{q(z)}[ logit_0(z) − logit_1(z) ]

(two logits, softmax). The discriminator minimises the cross-entropy

    −½·E_{q(z)} log D(z) − ½·E_{q̄(z)} log(1 − D(z)).

Published: an MLP with 6 hidden layers of 1000 units, leaky ReLU (slope 0.2),
2 logits, Adam(lr 1e-4, β₁ 0.5, β₂ 0.9). As in disentanglement_lib the
permuted samples come from the same batch (the paper permutes a second
batch's). The VAE sees the discriminator through ``stop_gradient`` and the
discriminator sees z through ``stop_gradient``; the objective applies both
(:func:`decompvae.objective.make_objective`), the trainer updates both
parameter sets from one pass (:func:`decompvae.train.make_trainer`).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from decompvae._checks import check_dim
from decompvae.divergences import Adversary, Regulariser, RegulariserInputs

Array = jax.Array

__all__ = [
    "Discriminator",
    "PUBLISHED_HIDDEN",
    "discriminator_loss",
    "factor_vae_tc",
    "make_factor_vae",
    "permute_dims",
]

#: Kim & Mnih (2018), App. (also disentanglement_lib): six hidden layers of 1000 units.
PUBLISHED_HIDDEN = (1000,) * 6


class Discriminator(nn.Module):
    """MLP ``z [B, D] -> logits [B, 2]`` (class 0: z ~ q(z); class 1: z ~ Π_d q(z_d))."""

    hidden: Sequence[int] = PUBLISHED_HIDDEN
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, z: Array) -> Array:
        h = z
        for width in self.hidden:
            h = nn.leaky_relu(nn.Dense(width)(h), self.negative_slope)
        return nn.Dense(2)(h)


def permute_dims(key: Array, z: Array) -> Array:
    """Samples of Π_d q(z_d): each column of ``z [B, D]`` permuted across the batch independently."""
    keys = jax.random.split(key, z.shape[1])
    return jax.vmap(jax.random.permutation, in_axes=(0, 1), out_axes=1)(keys, z)


def factor_vae_tc(logits: Array) -> Array:
    """TC ≈ mean_b[logit_0 − logit_1] = mean_b log D(z_b)/(1 − D(z_b)), from ``logits [B, 2]``."""
    return jnp.mean(logits[:, 0] - logits[:, 1])


def discriminator_loss(logits_joint: Array, logits_permuted: Array) -> Array:
    """−½·mean log D(z) − ½·mean log(1 − D(z̃)): z ~ q(z) class 0, z̃ permuted class 1; logits ``[B, 2]``."""
    log_d = jax.nn.log_softmax(logits_joint, axis=-1)[:, 0]
    log_not_d = jax.nn.log_softmax(logits_permuted, axis=-1)[:, 1]
    return -0.5 * (jnp.mean(log_d) + jnp.mean(log_not_d))


def make_factor_vae(
    *,
    latent_dim: int,
    hidden: Sequence[int] = PUBLISHED_HIDDEN,
    negative_slope: float = 0.2,
    learning_rate: float = 1e-4,
    b1: float = 0.5,
    b2: float = 0.9,
) -> Regulariser:
    """FactorVAE's TC term: a :class:`~decompvae.divergences.Regulariser` with a discriminator adversary.

    The estimate is :func:`factor_vae_tc` of the discriminator (its variables
    behind ``stop_gradient``) on y ~ q(z|x); weight it by α = γ with β = 1.
    The adversary's loss is :func:`discriminator_loss` on y (behind
    ``stop_gradient``) and :func:`permute_dims` of y.

    Args:
      latent_dim: D (to initialise the discriminator).
      hidden: hidden widths (published: six of 1000).
      negative_slope: of the leaky ReLU (published 0.2).
      learning_rate, b1, b2: of the discriminator's Adam (published 1e-4, 0.5, 0.9).
    """
    check_dim("latent_dim", latent_dim)
    hidden = tuple(int(h) for h in hidden)
    for width in hidden:
        check_dim("hidden width", width)
    net = Discriminator(hidden=hidden, negative_slope=float(negative_slope))

    def init(key: Array):
        return net.init(key, jnp.zeros((1, latent_dim)))

    def loss(key: Array, variables, y: Array) -> Array:
        return discriminator_loss(net.apply(variables, y), net.apply(variables, permute_dims(key, y)))

    def estimate(key: Array, inputs: RegulariserInputs) -> Array:
        if inputs.adversary is None:
            raise ValueError("factor_vae needs its discriminator's variables (params['adversary'][name])")
        return factor_vae_tc(net.apply(inputs.adversary, inputs.y))

    optimizer = optax.adam(learning_rate, b1=b1, b2=b2)
    return Regulariser(estimate=estimate, adversary=Adversary(init=init, loss=loss, optimizer=optimizer))
