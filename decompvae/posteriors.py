"""Encoder distributions q_φ(z|x) built from an encoder's outputs.

Encoders (``decompvae.networks``) return two arrays ``(loc, raw)`` of shape
``[b, D]``; a posterior family turns them into a distrax distribution with
batch shape ``[b]`` and event shape ``(D,)``. Sampling happens here, with an
explicit key, never inside a Flax module.
"""

from __future__ import annotations

from typing import Callable

import distrax
import jax
import jax.numpy as jnp

from decompvae._checks import check_choice

Array = jax.Array

__all__ = ["FAMILIES", "diagonal_gaussian", "laplace", "make_posterior", "marginal_log_prob"]


def diagonal_gaussian(loc: Array, log_var: Array) -> distrax.MultivariateNormalDiag:
    """q(z|x) = N(μ, diag σ²) with σ² = exp(log_var).

    Args:
      loc: μ, ``[..., D]``.
      log_var: log σ², ``[..., D]``; any real value (σ = exp(log_var / 2) is
        finite for |log_var| < ~170 in float32's exponent range of log σ).

    Returns:
      ``MultivariateNormalDiag`` with batch shape ``[...]``, event ``(D,)``.
    """
    return distrax.MultivariateNormalDiag(loc, jnp.exp(0.5 * log_var))


def laplace(loc: Array, log_scale: Array) -> distrax.Independent:
    """q(z|x) = Π_d Laplace(z_d; μ_d, b_d) with b = exp(log_scale).

    Args:
      loc: μ, ``[..., D]``.
      log_scale: log b, ``[..., D]``.

    Returns:
      ``Independent(Laplace)`` with batch shape ``[...]``, event ``(D,)``.
    """
    return distrax.Independent(distrax.Laplace(loc, jnp.exp(log_scale)), reinterpreted_batch_ndims=1)


FAMILIES = {"gaussian": diagonal_gaussian, "laplace": laplace}


def make_posterior(family: str = "gaussian") -> Callable[[Array, Array], distrax.Distribution]:
    """The constructor ``(loc, raw) -> q(z|x)`` for a family in ``FAMILIES``."""
    check_choice("posterior", family, FAMILIES)
    return FAMILIES[family]


def marginal_log_prob(dist: distrax.Distribution, z: Array) -> Array:
    """Per-dimension log-densities log q_d(z_d) of a factorised distribution.

    Used by the total-correlation estimator, which needs the 1-D marginals.

    Args:
      dist: a ``MultivariateNormalDiag``, an ``Independent`` over a univariate
        distribution, or any distribution with a ``marginal_log_prob`` method.
      z: ``[..., D]``, broadcastable against the batch shape.

    Returns:
      ``[..., D]`` log-densities whose sum over the last axis is
      ``dist.log_prob(z)``.
    """
    if hasattr(dist, "marginal_log_prob"):
        return dist.marginal_log_prob(z)
    if isinstance(dist, distrax.MultivariateNormalDiag):
        return distrax.Normal(dist.loc, dist.scale_diag).log_prob(z)
    if isinstance(dist, distrax.Independent) and dist.distribution.event_shape == ():
        return dist.distribution.log_prob(z)
    raise ValueError(
        f"marginal_log_prob needs a factorised distribution (MultivariateNormalDiag, Independent, StudentT); "
        f"got {type(dist).__name__}"
    )
