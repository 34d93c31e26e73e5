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

from decompvae._checks import check_choice, renamed

Array = jax.Array

__all__ = [
    "POSTERIORS",
    "SCALE_FLOOR",
    "gaussian",
    "gaussian_softplus",
    "laplace",
    "make_posterior",
    "marginal_log_prob",
]

#: Added to every encoder scale, as in the published encoders (σ = exp(½·h) + 1e-6, or softplus(h) + 1e-6):
#: the posterior never degenerates, so log q(z|x) stays finite when an encoder drives its spread to zero.
SCALE_FLOOR = 1e-6


def gaussian(loc: Array, log_var: Array) -> distrax.MultivariateNormalDiag:
    """q(z|x) = N(μ, diag σ²) with σ = exp(½·log_var) + 1e-6 (the published dSprites encoder's head).

    Args:
      loc: μ, ``[..., D]``.
      log_var: the raw head h ≈ log σ², ``[..., D]``; clipped to [−80, 80] before the exponential, so σ is
        finite in float32 and at least ``SCALE_FLOOR`` whatever the encoder outputs.

    Returns:
      ``MultivariateNormalDiag`` with batch shape ``[...]``, event ``(D,)``.
    """
    return distrax.MultivariateNormalDiag(loc, jnp.exp(0.5 * jnp.clip(log_var, -80.0, 80.0)) + SCALE_FLOOR)


def gaussian_softplus(loc: Array, raw: Array) -> distrax.MultivariateNormalDiag:
    """q(z|x) = N(μ, diag σ²) with σ = softplus(raw) + 1e-6 (the published pinwheel and Fashion-MNIST encoders).

    Args:
      loc: μ, ``[..., D]``.
      raw: unconstrained scale head, ``[..., D]``.

    Returns:
      ``MultivariateNormalDiag`` with batch shape ``[...]``, event ``(D,)``.
    """
    return distrax.MultivariateNormalDiag(loc, jax.nn.softplus(raw) + SCALE_FLOOR)


def laplace(loc: Array, log_scale: Array) -> distrax.Independent:
    """q(z|x) = Π_d Laplace(z_d; μ_d, b_d) with b = exp(log_scale) + 1e-6.

    Args:
      loc: μ, ``[..., D]``.
      log_scale: log b, ``[..., D]`` (clipped to [−80, 80]).

    Returns:
      ``Independent(Laplace)`` with batch shape ``[...]``, event ``(D,)``.
    """
    scale = jnp.exp(jnp.clip(log_scale, -80.0, 80.0)) + SCALE_FLOOR
    return distrax.Independent(distrax.Laplace(loc, scale), reinterpreted_batch_ndims=1)


#: Posterior families by name: ``(loc, raw) -> q(z|x)``; each constructor is named as its key.
POSTERIORS = {"gaussian": gaussian, "gaussian_softplus": gaussian_softplus, "laplace": laplace}


#: The names before the constructors took their keys' names (kept, with a DeprecationWarning).
_MODULE = "decompvae.posteriors"
diagonal_gaussian = renamed(_MODULE, "diagonal_gaussian", gaussian, "POSTERIORS")
softplus_gaussian = renamed(_MODULE, "softplus_gaussian", gaussian_softplus, "POSTERIORS")
laplace_posterior = renamed(_MODULE, "laplace_posterior", laplace, "POSTERIORS")


def make_posterior(family: str = "gaussian") -> Callable[[Array, Array], distrax.Distribution]:
    """The constructor ``(loc, raw) -> q(z|x)`` for a family in ``POSTERIORS``."""
    check_choice("posterior", family, tuple(POSTERIORS))
    return POSTERIORS[family]


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
