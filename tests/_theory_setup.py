"""Fixed decoders and encoders of the theory tests (float64): no training, exact arithmetic only."""

import distrax
import jax.numpy as jnp
import numpy as np


def fixed_decoder(dim: int, batch: int, x_dim: int, seed: int = 0):
    """A fixed nonlinear Gaussian decoder and data: ``z [batch, dim] -> log p(x|z) [batch]``."""
    rng = np.random.default_rng(seed)
    w1, w2 = jnp.asarray(rng.normal(size=(dim, 7))), jnp.asarray(rng.normal(size=(7, x_dim)))
    x = jnp.asarray(rng.normal(size=(batch, x_dim)))

    def log_likelihood(z):
        mean = jnp.tanh(z @ w1) @ w2
        return jnp.sum(-0.5 * (x - mean) ** 2 - 0.5 * jnp.log(2 * jnp.pi), axis=-1)

    return log_likelihood


def fixed_encoder(dim: int, batch: int, seed: int = 1, full: bool = False) -> distrax.Distribution:
    """Gaussian posteriors ``[batch]`` over ``dim`` latents: diagonal, or full covariance (``full``)."""
    rng = np.random.default_rng(seed)
    loc = jnp.asarray(rng.normal(size=(batch, dim)))
    if not full:
        return distrax.MultivariateNormalDiag(loc, jnp.asarray(rng.uniform(0.2, 1.5, size=(batch, dim))))
    tril = np.tril(rng.normal(scale=0.3, size=(batch, dim, dim)), -1) + np.eye(dim) * rng.uniform(
        0.3, 1.2, size=(batch, 1, dim))
    return distrax.MultivariateNormalTri(loc, jnp.asarray(tril))
