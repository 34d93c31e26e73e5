"""Batch-level estimators of the divergence D(q(z), p(z)) (SPEC §3.1).

D compares the *aggregate* posterior q(z) = E_{p_D}[q(z|x)] with the prior, so
each estimator takes a whole minibatch and returns one scalar. They are never
vmapped over the batch (a sweep may vmap them over models).

Shapes: ``B`` batch size, ``D`` latent dimension. ``posterior`` is q(z|x_j)
for the batch (distrax, batch shape ``[B]``, event ``(D,)``), ``prior`` is
p(z) (event ``(D,)``), ``y`` ``[B, D]`` holds one sample y_i ~ q(z|x_i) each.

References: Mathieu et al. (2019) §4 and App. C (MMD with an inverse
multiquadric kernel; inclusive KL); Gretton et al. (2012) for the unbiased
MMD² U-statistic; Chen et al. (2018), "Isolating Sources of Disentanglement
in VAEs" (β-TCVAE), for minibatch-weighted sampling and total correlation.
"""

from __future__ import annotations

from typing import Callable, Sequence

import distrax
import jax
import jax.numpy as jnp

from decompvae._checks import check_choice, check_dim
from decompvae.posteriors import marginal_log_prob

Array = jax.Array

__all__ = [
    "DEFAULT_SCALES",
    "exclusive_kl",
    "inclusive_kl",
    "make_divergence",
    "mmd",
    "pairwise_log_prob",
    "total_correlation",
]

#: The paper's kernel scales s: C = 2s for the per-dimension IMQ kernel.
DEFAULT_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _kernel_sum(sq_dist: Array, constants: Sequence[float], kernel: str) -> Array:
    """Σ_C k_C(r) for squared distances r (any shape), IMQ or RBF."""
    total = jnp.zeros_like(sq_dist)
    for c in constants:
        if kernel == "imq":
            total = total + c / (c + sq_dist)
        else:
            total = total + jnp.exp(-sq_dist / c)
    return total


def _gram_sum(a: Array, b: Array, constants, kernel: str, per_dimension: bool, exclude_diagonal: bool) -> Array:
    """Σ_{i,j} Σ_C k_C(a_i, b_j), optionally without the i = j terms."""
    diff = a[:, None, :] - b[None, :, :]  # [n, m, D]
    sq = diff**2 if per_dimension else jnp.sum(diff**2, axis=-1)  # [n, m, D] or [n, m]
    k = _kernel_sum(sq, constants, kernel)
    if per_dimension:
        k = jnp.sum(k, axis=-1)  # [n, m]: sum of 1-D kernels over dimensions
    if exclude_diagonal:
        k = k * (1.0 - jnp.eye(k.shape[0], dtype=k.dtype))
    return jnp.sum(k)


def mmd(
    x: Array,
    y: Array,
    *,
    kernel: str = "imq",
    per_dimension: bool = True,
    scales: Sequence[float] = DEFAULT_SCALES,
) -> Array:
    """Unbiased MMD² U-statistic between samples ``x`` and ``y``.

        MMD²_u = 1/(n(n−1)) Σ_{i≠j} k(x_i,x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i,y_j)
                 − 2/(nm) Σ_{i,j} k(x_i,y_j),

    with k a sum of kernels over the ``scales`` s, each written in terms of a
    constant C = 2s (per-dimension) or C = 2·D·s (joint):

    * ``kernel="imq"``: k_C(a, b) = C / (C + r), the inverse multiquadric;
    * ``kernel="rbf"``: k_C(a, b) = exp(−r / C), i.e. a Gaussian kernel with
      bandwidth h = √(C/2) (h² = s, or D·s for the joint kernel);

    where r = (a_d − b_d)² summed as separate 1-D kernels over dimensions
    (``per_dimension=True``, the paper's choice for sparsity: it compares only
    the 1-D marginals and is not rotation invariant) or r = ‖a − b‖² (joint
    kernel, rotation invariant). Unbiased: its expectation is 0 when x and y
    come from the same distribution, so single estimates can be negative.

    Args:
      x: ``[n, D]`` samples, n ≥ 2 (e.g. from the prior).
      y: ``[m, D]`` samples, m ≥ 2 (e.g. from the aggregate posterior).
      kernel: ``"imq"`` or ``"rbf"``.
      per_dimension: sum of 1-D kernels (True) or one kernel on vectors.
      scales: the scales s > 0 (default: the paper's 0.1 … 5).

    Returns:
      Scalar MMD² estimate.
    """
    check_choice("kernel", kernel, ("imq", "rbf"))
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"x and y must have shape [n, D]; got {x.shape} and {y.shape}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension D; got {x.shape[1]} and {y.shape[1]}")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the MMD U-statistic needs at least 2 samples per side; got batch sizes {n} and {m}")
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be a non-empty sequence of values > 0; got {scales}")
    dim = 1 if per_dimension else x.shape[1]
    constants = tuple(2.0 * dim * s for s in scales)
    kxx = _gram_sum(x, x, constants, kernel, per_dimension, exclude_diagonal=True)
    kyy = _gram_sum(y, y, constants, kernel, per_dimension, exclude_diagonal=True)
    kxy = _gram_sum(x, y, constants, kernel, per_dimension, exclude_diagonal=False)
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m)


def pairwise_log_prob(posterior: distrax.Distribution, z: Array) -> Array:
    """log q(z_i | x_j) for every sample i and encoder j.

    Args:
      posterior: batch shape ``[B]``, event ``(D,)``.
      z: ``[M, D]``.

    Returns:
      ``[M, B]`` matrix; row i is sample i under each of the B encoders.
    """
    return posterior.log_prob(z[:, None, :])


def inclusive_kl(key: Array, posterior: distrax.Distribution, prior: distrax.Distribution, num_samples: int | None = None) -> Array:
    """Inclusive KL(p(z) ‖ q̂(z)) with q̂ the minibatch mixture (the paper's D).

        KL ≈ (1/M) Σ_i [ log p(z_i) − logsumexp_j log q(z_i|x_j) + log B ],
        z_i ~ p(z),

    q̂(z) = (1/B) Σ_j q(z|x_j). Mass-covering: it penalises prior regions that
    the batch's encoders do not reach (used for clustering in the paper).
    Bias: the logsumexp of a finite mixture over-estimates KL(p‖q) for the
    full-data aggregate by an amount that shrinks with B.

    Args:
      key: PRNG key for the prior samples.
      posterior: q(z|x_j), batch shape ``[B]``.
      prior: p(z).
      num_samples: M, the number of prior samples (default B).

    Returns:
      Scalar estimate.
    """
    batch = posterior.batch_shape[0]
    m = batch if num_samples is None else num_samples
    check_dim("num_samples", m)
    z = prior.sample(seed=key, sample_shape=(m,))  # [M, D]
    log_q = jax.nn.logsumexp(pairwise_log_prob(posterior, z), axis=1) - jnp.log(batch)  # [M]
    return jnp.mean(prior.log_prob(z) - log_q)


def _log_normaliser(batch: int, dataset_size: int | None) -> Array:
    """log B (minibatch mixture) or log(N·B) (minibatch-weighted sampling)."""
    return jnp.log(batch if dataset_size is None else float(dataset_size) * batch)


def _log_aggregate(posterior: distrax.Distribution, y: Array, dataset_size: int | None) -> Array:
    """log q(y_i) by the minibatch mixture or MWS."""
    log_norm = _log_normaliser(posterior.batch_shape[0], dataset_size)
    return jax.nn.logsumexp(pairwise_log_prob(posterior, y), axis=1) - log_norm


def exclusive_kl(y: Array, posterior: distrax.Distribution, prior: distrax.Distribution, dataset_size: int | None = None) -> Array:
    """Exclusive KL(q(z) ‖ p(z)) on a minibatch (beyond the paper).

        KL ≈ (1/B) Σ_i [ logsumexp_j log q(y_i|x_j) − log B − log p(y_i) ],
        y_i ~ q(z|x_i).

    Default (``dataset_size=None``): q(z) is the minibatch mixture
    (1/B) Σ_j q(z|x_j) — a consistent estimator of the KL between the
    *batch's* aggregate and p; for the full-data aggregate it is biased
    (each y_i is scored by a mixture that includes its own encoder, which
    over-weights it by up to log B relative to the N-point mixture).

    With ``dataset_size=N``: minibatch-weighted sampling (Chen et al. 2018),
    which replaces log B by log(N·B). The value shifts by the constant −log N
    (gradients are the same); it is a lower-bound-style estimate of
    E_q log q(z) that underestimates the KL for small batches. Values
    reported as "KL" use the default.

    Args:
      y: ``[B, D]``, y_i ~ q(z|x_i).
      posterior: q(z|x_j), batch shape ``[B]``.
      prior: p(z).
      dataset_size: N for minibatch-weighted sampling, or None.

    Returns:
      Scalar estimate.
    """
    if dataset_size is not None:
        check_dim("dataset_size", dataset_size)
    return jnp.mean(_log_aggregate(posterior, y, dataset_size) - prior.log_prob(y))


def total_correlation(y: Array, posterior: distrax.Distribution, dataset_size: int | None = None) -> Array:
    """Total correlation TC(q(z)) = KL(q(z) ‖ Π_d q(z_d)) on a minibatch.

        TC ≈ (1/B) Σ_i [ log q̂(y_i) − Σ_d log q̂_d(y_id) ],

    with log q̂ = logsumexp_j log q(·|x_j) − log(N·B) (minibatch-weighted
    sampling, Chen et al. 2018) when ``dataset_size=N`` is given, else the
    minibatch mixture (log B). The independence special case of D; biased as
    described in :func:`exclusive_kl` (the constant offset is (D−1)·log N
    between the two variants). Needs a factorised posterior.

    Args:
      y: ``[B, D]``, y_i ~ q(z|x_i).
      posterior: factorised q(z|x_j), batch shape ``[B]``.
      dataset_size: N, or None.

    Returns:
      Scalar estimate.
    """
    if dataset_size is not None:
        check_dim("dataset_size", dataset_size)
    log_norm = _log_normaliser(posterior.batch_shape[0], dataset_size)
    log_joint = _log_aggregate(posterior, y, dataset_size)  # [B]
    log_marginals = marginal_log_prob(posterior, y[:, None, :])  # [B(i), B(j), D]
    log_q_d = jax.nn.logsumexp(log_marginals, axis=1) - log_norm  # [B, D]
    return jnp.mean(log_joint - jnp.sum(log_q_d, axis=-1))


#: Signature of every divergence used by the objective.
Divergence = Callable[[Array, Array, distrax.Distribution, distrax.Distribution], Array]

KINDS = ("mmd", "inclusive_kl", "exclusive_kl", "total_correlation")


def make_divergence(kind: str, **options) -> Divergence:
    """A divergence ``(key, y, posterior, prior) -> scalar`` for the objective.

    Args:
      kind: ``"mmd"`` (prior samples z ~ p against y; ``options``: kernel,
        per_dimension, scales), ``"inclusive_kl"`` (options: num_samples),
        ``"exclusive_kl"`` or ``"total_correlation"`` (options: dataset_size).
      **options: static options of the estimator.

    Returns:
      The estimator, ready for :func:`decompvae.objective.make_objective`.
    """
    check_choice("divergence", kind, KINDS)
    allowed = {
        "mmd": {"kernel", "per_dimension", "scales"},
        "inclusive_kl": {"num_samples"},
        "exclusive_kl": {"dataset_size"},
        "total_correlation": {"dataset_size"},
    }[kind]
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)} for divergence {kind!r}; allowed: {sorted(allowed)}")
    if kind == "mmd":
        check_choice("kernel", options.get("kernel", "imq"), ("imq", "rbf"))

        def mmd_divergence(key, y, posterior, prior):
            z = prior.sample(seed=key, sample_shape=(y.shape[0],))
            return mmd(z, y, **options)

        return mmd_divergence
    if kind == "inclusive_kl":
        return lambda key, y, posterior, prior: inclusive_kl(key, posterior, prior, **options)
    if kind == "exclusive_kl":
        return lambda key, y, posterior, prior: exclusive_kl(y, posterior, prior, **options)
    return lambda key, y, posterior, prior: total_correlation(y, posterior, **options)

