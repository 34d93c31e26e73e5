"""The regularisers that are not divergences between q(z) and p(z): DIP-VAE's covariance penalties and AnnealedVAE's capacity.

Both are kinds of :func:`decompvae.regularisers.make_regulariser` (``"dip_offdiagonal"``,
``"dip_diagonal"``, ``"capacity"``), so the objective reaches them through the
regulariser registry; the method presets that set their weights live in
:mod:`decompvae.methods`, which the objective never imports.

References: Kumar et al. (2018), "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", Eqs. 6–7 (DIP-VAE); Burgess et al.
(2018), "Understanding disentangling in β-VAE", Eq. 8 (AnnealedVAE).
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp

from decompvae._checks import check_choice, check_dim
from decompvae.divergences import Divergence, Regulariser, RegulariserInputs

Array = jax.Array

__all__ = [
    "DIP_VARIANTS",
    "aggregate_covariance",
    "capacity_penalty",
    "capacity_schedule",
    "dip_covariance",
    "dip_diagonal_penalty",
    "dip_offdiagonal_penalty",
    "encoder_mean_covariance",
    "make_capacity",
    "make_dip",
]


#: DIP-VAE-I penalises Cov[μ(x)]; DIP-VAE-II the aggregate's Cov[z].
DIP_VARIANTS = ("i", "ii")


def encoder_mean_covariance(loc: Array) -> Array:
    """Cov_{p(x)}[μ(x)] = E[μ μᵀ] − E[μ] E[μ]ᵀ over the batch (÷B), ``[D, D]`` from ``loc [B, D]``."""
    centred = loc - jnp.mean(loc, axis=0)
    return centred.T @ centred / loc.shape[0]


def aggregate_covariance(loc: Array, variance: Array) -> Array:
    """Cov_{q(z)}[z] = E_{p(x)}[diag σ²(x)] + Cov_{p(x)}[μ(x)], ``[D, D]`` (DIP-VAE-II, Kumar et al. Eq. 7)."""
    return jnp.diag(jnp.mean(variance, axis=0)) + encoder_mean_covariance(loc)


def dip_offdiagonal_penalty(cov: Array) -> Array:
    """Σ_{i≠j} C_ij², the off-diagonal DIP penalty (weighted by λ_od)."""
    return jnp.sum(cov**2) - jnp.sum(jnp.diag(cov) ** 2)


def dip_diagonal_penalty(cov: Array) -> Array:
    """Σ_i (C_ii − 1)², the diagonal DIP penalty (weighted by λ_d)."""
    return jnp.sum((jnp.diag(cov) - 1.0) ** 2)


def dip_covariance(posterior: distrax.Distribution, variant: str) -> Array:
    """The covariance DIP-VAE penalises: Cov[μ(x)] (``"i"``) or Cov_{q(z)}[z] (``"ii"``), ``[D, D]``."""
    check_choice("variant", variant, DIP_VARIANTS)
    loc = posterior.mean()  # [B, D]
    return encoder_mean_covariance(loc) if variant == "i" else aggregate_covariance(loc, posterior.variance())


def make_dip(kind: str, *, variant: str = "i") -> Divergence:
    """One of DIP-VAE's two penalties as a divergence ``(key, y, posterior, prior) -> []``.

    DIP-VAE (Kumar et al. 2018) adds to the VAE loss

        λ_od · Σ_{i≠j} C_ij²  +  λ_d · Σ_i (C_ii − 1)²,

    with C = Cov_{p(x)}[μ(x)] (DIP-VAE-I, Eq. 6) or
    C = E_{p(x)}[Σ(x)] + Cov_{p(x)}[μ(x)] (DIP-VAE-II, Eq. 7), estimated on the
    batch. The two sums are separate kinds, ``"dip_offdiagonal"`` and
    ``"dip_diagonal"``, so λ_od and λ_d are their α's.

    Args:
      kind: ``"dip_offdiagonal"`` or ``"dip_diagonal"``.
      variant: ``"i"`` or ``"ii"``.
    """
    check_choice("kind", kind, ("dip_offdiagonal", "dip_diagonal"))
    check_choice("variant", variant, DIP_VARIANTS)
    penalty = dip_offdiagonal_penalty if kind == "dip_offdiagonal" else dip_diagonal_penalty
    return lambda key, y, posterior, prior: penalty(dip_covariance(posterior, variant))


def capacity_schedule(step, c_max, num_steps: int) -> Array:
    """C(step) = C_max · min(1, step / num_steps): the capacity grows linearly from 0 to C_max, then stays.

    Args:
      step: ``[]`` training step (traced).
      c_max: C_max in nats (traced).
      num_steps: steps to reach C_max (static; disentanglement_lib's ``iteration_threshold``).
    """
    return c_max * jnp.minimum(1.0, jnp.asarray(step, jnp.result_type(float)) / num_steps)


def capacity_penalty(kl: Array, capacity) -> Array:
    """``|mean_b KL_b − C|``, AnnealedVAE's regulariser (weighted by γ); ``kl`` is ``[B]``."""
    return jnp.abs(jnp.mean(kl) - capacity)


def make_capacity(*, num_steps: int = 100_000, c_max: float = 25.0) -> Regulariser:
    """AnnealedVAE's capacity regulariser (Burgess et al. 2018, Eq. 8).

        ``loss = −E_q log p(x|z) + γ·|KL(q(z|x) ‖ p(z)) − C(step)|``,  ``C(step) = C_max·min(1, step/num_steps)``,

    i.e. β = 0 and α_capacity = γ in our objective. C_max is traced, read from
    ``Hyperparams.regulariser_params`` (key ``"c_max"``, default the static
    ``c_max``); the step from ``Hyperparams.step``, which the trainer sets.
    Outside training (``step`` None) C = C_max, the end of the schedule.

    Args:
      num_steps: steps until C reaches C_max (disentanglement_lib: 100,000).
      c_max: the default C_max in nats (Burgess et al.: 25 on dSprites).
    """
    check_dim("num_steps", num_steps)

    def estimate(key: Array, inputs: RegulariserInputs) -> Array:
        c_max_k = inputs.params.get("c_max", c_max)
        capacity = c_max_k if inputs.step is None else capacity_schedule(inputs.step, c_max_k, num_steps)
        return capacity_penalty(inputs.kl, capacity)

    return Regulariser(estimate=estimate, traced=("c_max",))
