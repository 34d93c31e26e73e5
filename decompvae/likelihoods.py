"""Decoder likelihoods log p_θ(x|z), per example, summed over data dimensions.

A decoder returns either an array (logits or a mean) or a tuple ``(loc,
scale)`` when it learns its scale. Each likelihood maps ``(x, output)`` with
``x`` of shape ``[b, ...]`` to ``[b]``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from decompvae._checks import check_choice, check_positive

Array = jax.Array

__all__ = [
    "LIKELIHOODS",
    "LikelihoodSpec",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "laplace_log_likelihood",
    "likelihood_mean",
    "make_likelihood",
]


def _flatten_data_dims(values: Array) -> Array:
    """``[b, ...] -> [b, d]``."""
    return values.reshape(values.shape[0], -1)


def _sum_data_dims(values: Array) -> Array:
    return jnp.sum(_flatten_data_dims(values), axis=-1)


def bernoulli_log_likelihood(x: Array, logits: Array) -> Array:
    """Σ_pixels log Bernoulli(x; sigmoid(logits)), stable for any logit.

    Written in one pass over the pixels, x·l − softplus(l), which equals
    x·log σ(l) + (1 − x)·log σ(−l) (log σ(l) = l − softplus(l)) but reads the
    logits once forward and once backward.

    Args:
      x: ``[b, ...]`` in [0, 1] (binary images; soft targets allowed).
      logits: ``[b, ...]``, the decoder's output.

    Returns:
      ``[b]`` log-likelihoods.
    """
    x, logits = _flatten_data_dims(x), _flatten_data_dims(logits)
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def laplace_log_likelihood(x: Array, loc: Array, scale=0.1) -> Array:
    """Σ log Laplace(x; loc, b): the paper's Fashion-MNIST likelihood (b = 0.1)."""
    return _sum_data_dims(-jnp.abs(x - loc) / scale - jnp.log(2.0 * scale))


def gaussian_log_likelihood(x: Array, loc: Array, scale=1.0) -> Array:
    """Σ log N(x; loc, scale²), ``scale`` fixed or learned (broadcastable)."""
    z = (x - loc) / scale
    return _sum_data_dims(-0.5 * z**2 - jnp.log(scale) - 0.5 * jnp.log(2.0 * jnp.pi))


class LikelihoodSpec(NamedTuple):
    """A registered likelihood.

    Attributes:
      log_prob: ``(x, output[, scale]) -> [b]``.
      default_scale: the fixed scale when none is given (None: the family has no scale).
      mean: E[x|z] from the decoder output (logits or location).
    """

    log_prob: Callable[..., Array]
    default_scale: float | None = None
    mean: Callable[[Array], Array] = lambda output: output  # noqa: E731 (the decoder output's mean, E[x|z])


#: Likelihood name → :class:`LikelihoodSpec` (``model.likelihood``): the
#: decoder's output is the logits (``bernoulli``) or the location, with a
#: fixed scale or a learned one (a decoder returning ``(loc, scale)``).
LIKELIHOODS: dict[str, LikelihoodSpec] = {
    "bernoulli": LikelihoodSpec(bernoulli_log_likelihood, mean=jax.nn.sigmoid),
    "laplace": LikelihoodSpec(laplace_log_likelihood, default_scale=0.1),
    "gaussian": LikelihoodSpec(gaussian_log_likelihood, default_scale=1.0),
}


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
    check_choice("likelihood", family, tuple(LIKELIHOODS))
    spec = LIKELIHOODS[family]
    if spec.default_scale is None:
        if scale is not None:
            raise ValueError(f"scale is not used by the {family} likelihood; leave it None")
        return spec.log_prob
    fixed = spec.default_scale if scale is None else scale
    check_positive("scale", fixed)
    fn = spec.log_prob

    def log_likelihood(x: Array, output) -> Array:
        if isinstance(output, tuple):
            loc, learned_scale = output
            return fn(x, loc, learned_scale)
        return fn(x, output, fixed)

    return log_likelihood


def likelihood_mean(family: str, output) -> Array:
    """E[x|z] of ``family`` from a decoder ``output`` (logits, a location, or ``(loc, scale)``)."""
    check_choice("likelihood", family, tuple(LIKELIHOODS))
    loc = output[0] if isinstance(output, tuple) else output
    return LIKELIHOODS[family].mean(loc)
