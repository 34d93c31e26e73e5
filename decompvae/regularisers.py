"""The regularisers a run can name: the one registry of D(q(z), p(z)) kinds and their options.

:data:`KINDS` lists them and :data:`OPTIONS` their static options;
:func:`make_divergence` builds one. The estimators live in
:mod:`decompvae.divergences` (MMD, KLs, β-TCVAE's decomposition, InfoVAE),
:mod:`decompvae.methods` (DIP-VAE, AnnealedVAE) and
:mod:`decompvae.discriminator` (FactorVAE); this module sits above them so
none imports another lazily.
"""

from __future__ import annotations

import math

from decompvae import discriminator, methods
from decompvae._checks import check_block_sizes, check_choice
from decompvae.divergences import (
    Divergence,
    Regulariser,
    check_sampling,
    dimensionwise_kl,
    exclusive_kl,
    inclusive_kl,
    info_vae_mmd,
    mmd,
    mutual_information,
    total_correlation,
)

__all__ = ["KINDS", "OPTIONS", "estimate_note", "make_divergence"]


#: Static options of each kind.
OPTIONS = {
    "mmd": ("kernel", "per_dimension", "scales", "blocks"),
    "inclusive_kl": ("num_samples",),
    "exclusive_kl": ("dataset_size",),
    "total_correlation": ("dataset_size", "sampling"),
    "mutual_information": ("dataset_size", "sampling"),
    "dimensionwise_kl": ("dataset_size", "sampling"),
    "info_vae": ("kernel", "scales"),
    "dip_offdiagonal": ("variant",),
    "dip_diagonal": ("variant",),
    "capacity": ("num_steps", "c_max"),
    "factor_vae": ("latent_dim", "hidden", "negative_slope", "learning_rate", "b1", "b2"),
}

#: Every kind :func:`make_divergence` builds.
KINDS = tuple(OPTIONS)


def make_divergence(kind: str, **options) -> Divergence | Regulariser:
    """A batch-level regulariser for the objective, by kind.

    Args:
      kind: one of :data:`KINDS`:

        * ``"mmd"`` (prior samples z ~ p against y; options kernel, per_dimension, scales, and
          blocks: a kernel on each block of coordinates, summed, e.g. ``blocks=(2, 2, 3, 3)``);
        * ``"inclusive_kl"`` (num_samples), ``"exclusive_kl"`` (dataset_size);
        * β-TCVAE's ``"mutual_information"``, ``"total_correlation"``,
          ``"dimensionwise_kl"`` (dataset_size, sampling);
        * ``"info_vae"`` (:func:`info_vae_mmd`; kernel, scales);
        * DIP-VAE's ``"dip_offdiagonal"``, ``"dip_diagonal"`` (variant ``"i"``/``"ii"``,
          :mod:`decompvae.methods`);
        * AnnealedVAE's ``"capacity"`` (num_steps, c_max; :mod:`decompvae.methods`);
        * FactorVAE's ``"factor_vae"`` (latent_dim required; :mod:`decompvae.discriminator`).
      **options: static options of the estimator.

    Returns:
      A :data:`Divergence` ``(key, y, posterior, prior) -> []``, or a
      :class:`Regulariser` for ``"capacity"`` and ``"factor_vae"``, ready for
      :func:`decompvae.objective.make_objective`.
    """
    check_choice("divergence", kind, KINDS)
    unknown = set(options) - set(OPTIONS[kind])
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)} for divergence {kind!r}; allowed: {sorted(OPTIONS[kind])}")
    if kind in ("dip_offdiagonal", "dip_diagonal", "capacity", "factor_vae"):
        if kind == "factor_vae":
            return discriminator.make_factor_vae(**options)
        return methods.make_capacity(**options) if kind == "capacity" else methods.make_dip(kind, **options)
    if kind == "mmd":
        check_choice("kernel", options.get("kernel", "imq"), ("imq", "rbf"))
        if options.get("blocks") is not None:
            if options.get("per_dimension") is not None:
                raise ValueError("divergence 'mmd': give the option blocks or per_dimension, not both")
            options["blocks"] = check_block_sizes("blocks", options["blocks"])  # static: a tuple

        def mmd_divergence(key, y, posterior, prior):
            z = prior.sample(seed=key, sample_shape=(y.shape[0],))
            return mmd(z, y, **options)

        return mmd_divergence
    if kind == "info_vae":
        check_choice("kernel", options.get("kernel", "rbf"), ("imq", "rbf"))
        return lambda key, y, posterior, prior: info_vae_mmd(key, y, prior, **options)
    if kind == "inclusive_kl":
        return lambda key, y, posterior, prior: inclusive_kl(key, posterior, prior, **options)
    if kind == "exclusive_kl":
        return lambda key, y, posterior, prior: exclusive_kl(y, posterior, prior, **options)
    check_sampling(None, options.get("dataset_size"), options.get("sampling", "mws"))
    if kind == "mutual_information":
        return lambda key, y, posterior, prior: mutual_information(y, posterior, **options)
    if kind == "dimensionwise_kl":
        return lambda key, y, posterior, prior: dimensionwise_kl(y, posterior, prior, **options)
    return lambda key, y, posterior, prior: total_correlation(y, posterior, **options)


#: The constant each minibatch-weighted estimate holds, as a multiple of log(N·B): log q̂ = logsumexp − log(N·B).
_MWS_OFFSET = {"total_correlation": lambda d: d - 1, "mutual_information": lambda d: 1,
               "dimensionwise_kl": lambda d: -d}


def estimate_note(kind: str, options: dict | None, latent_dim: int, batch_size: int) -> str | None:
    """What a logged β-TCVAE term estimates, for readers of the log, the table and the report (None: nothing to say).

    With ``dataset_size`` = N the terms use minibatch-weighted sampling (MWS,
    Chen et al., 2018): every log q̂ subtracts log(N·B), so the value holds a
    constant c·log(N·B) (c = D − 1 for the total correlation, 1 for the
    mutual information, −D for the dimension-wise KL) that does not move the
    gradient but makes the value unlike the quantity it names; with
    ``sampling = "mss"`` (stratified) the weights differ and no such constant
    separates out.
    """
    options = options or {}
    n = options.get("dataset_size")
    if kind not in _MWS_OFFSET or not n:
        return None
    if options.get("sampling", "mws") == "mss":
        return (f"{kind}: minibatch-stratified estimate (Chen et al., 2018, App. C.2; N = {n:,}, B = {batch_size}): "
                "log q̂ is biased low for small batches (Jensen), less than the minibatch-weighted one")
    c = _MWS_OFFSET[kind](latent_dim)
    offset = c * math.log(float(n) * batch_size)
    return (f"{kind}: minibatch-weighted estimate (Chen et al., 2018), log q̂ = logsumexp_j log q(z_i|x_j) − log(N·B); "
            f"its value holds the constant {c:+d}·log(N·B) = {offset:+.1f} nats (D = {latent_dim}, N = {n:,}, "
            f"B = {batch_size}), so it is a training signal to compare within a run (or between runs of the same D, N "
            f"and B), not the {kind.replace('_', ' ')} itself")
