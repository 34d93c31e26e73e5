"""Decoder likelihoods log p_θ(x|z), per example, summed over data dimensions.

A decoder returns either an array (logits or a mean) or a tuple ``(loc,
scale)`` when it learns its scale. Each likelihood maps ``(x, output)`` with
``x`` of shape ``[b, ...]`` to ``[b]``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from decompvae._checks import check_choice, check_positive

Array = jax.Array

__all__ = ["bernoulli", "gaussian", "laplace", "make_likelihood"]


def _sum_data_dims(values: Array) -> Array:
    return jnp.sum(values.reshape(values.shape[0], -1), axis=-1)


def bernoulli(x: Array, logits: Array) -> Array:
    """Σ_pixels log Bernoulli(x; sigmoid(logits)), stable for any logit.

    Args:
      x: ``[b, ...]`` in [0, 1] (binary images; soft targets allowed).
      logits: ``[b, ...]``, the decoder's output.

    Returns:
      ``[b]`` log-likelihoods.
    """
    return _sum_data_dims(x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits))


def laplace(x: Array, loc: Array, scale=0.1) -> Array:
    """Σ log Laplace(x; loc, b): the paper's Fashion-MNIST likelihood (b = 0.1)."""
    return _sum_data_dims(-jnp.abs(x - loc) / scale - jnp.log(2.0 * scale))


def gaussian(x: Array, loc: Array, scale=1.0) -> Array:
    """Σ log N(x; loc, scale²), ``scale`` fixed or learned (broadcastable)."""
    z = (x - loc) / scale
    return _sum_data_dims(-0.5 * z**2 - jnp.log(scale) - 0.5 * jnp.log(2.0 * jnp.pi))


def make_likelihood(family: str, *, scale: float | None = None) -> Callable[[Array, object], Array]:
    """A likelihood ``(x, decoder_output) -> [b]`` with its structure closed over.

    Args:
      family: ``"bernoulli"`` (output = logits), ``"laplace"`` (output = loc;
        fixed ``scale``, default 0.1) or ``"gaussian"`` (output = loc with a
        fixed ``scale``, default 1, or a tuple ``(loc, scale)`` from a decoder
        that learns it).
      scale: the fixed scale for ``laplace``/``gaussian``; must be > 0.

    Returns:
      The per-example log-likelihood function.
    """
    check_choice("likelihood", family, ("bernoulli", "laplace", "gaussian"))
    if family == "bernoulli":
        if scale is not None:
            raise ValueError("scale is not used by the bernoulli likelihood; leave it None")
        return bernoulli
    fixed = {"laplace": 0.1, "gaussian": 1.0}[family] if scale is None else scale
    check_positive("scale", fixed)
    fn = laplace if family == "laplace" else gaussian

    def log_likelihood(x: Array, output) -> Array:
        if isinstance(output, tuple):
            loc, learned_scale = output
            return fn(x, loc, learned_scale)
        return fn(x, output, fixed)

    return log_likelihood
