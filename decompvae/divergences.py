"""Batch-level estimators of the divergence D(q(z), p(z)) (Mathieu et al., 2019, Eq. 2).

D compares the *aggregate* posterior q(z) = E_{p_D}[q(z|x)] with the prior, so
each estimator takes a whole minibatch and returns one scalar. They are never
vmapped over the batch (a sweep may vmap them over models).

Shapes: ``B`` batch size, ``D`` latent dimension. ``posterior`` is q(z|x_j)
for the batch (distrax, batch shape ``[B]``, event ``(D,)``), ``prior`` is
p(z) (event ``(D,)``), ``y`` ``[B, D]`` holds one sample y_i ~ q(z|x_i) each.

References: Mathieu et al. (2019) §4 and App. C (MMD with an inverse
multiquadric kernel; inclusive KL); Gretton et al. (2012) for the unbiased
MMD² U-statistic; Chen et al. (2018), "Isolating Sources of Disentanglement
in VAEs" (β-TCVAE), for minibatch-weighted and minibatch-stratified sampling
and the decomposition E_{p_D} KL(q(z|x) ‖ p(z)) = I_q(x; z) + TC(q(z)) +
Σ_d KL(q(z_d) ‖ p(z_d)) (their Eq. 2); Zhao et al. (2019), "InfoVAE", and
Tolstikhin et al. (2018), "Wasserstein Auto-Encoders", for the joint-kernel
MMD settings.

Most estimators are :data:`Divergence` functions ``(key, y, posterior, prior)
-> []``. Regularisers that read more of the batch (the KL terms, the training
step, traced parameters of their own, an adversary's variables) are
:class:`Regulariser` values that receive a :class:`RegulariserInputs`; the
objective builds the inputs. :func:`make_regulariser` builds either from a kind
in :data:`KINDS`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from decompvae._checks import check_blocks, check_choice, check_dim
from decompvae.posteriors import marginal_log_prob

Array = jax.Array

__all__ = [
    "check_sampling",
    "Adversary",
    "DEFAULT_SCALES",
    "Regulariser",
    "RegulariserInputs",
    "SAMPLING",
    "WAE_SCALES",
    "dimensionwise_kl",
    "exclusive_kl",
    "inclusive_kl",
    "info_vae_mmd",
    "mmd",
    "mutual_information",
    "pairwise_log_prob",
    "minibatch_log_densities",
    "stratified_log_weights",
    "total_correlation",
]

#: The paper's kernel scales s: C = 2s for the per-dimension IMQ kernel.
DEFAULT_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

#: WAE-MMD's IMQ scales (Tolstikhin et al. 2018): C = 2·D·σ_z²·s with σ_z² = 1.
WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

#: Estimates of the aggregate q(z) that use the data set size N (Chen et al. 2018).
SAMPLING = ("mws", "mss")


def _kernel_sum(sq_dist: Array, constants: Sequence[float], kernel: str) -> Array:
    """Σ_C k_C(r) for squared distances r (any shape), IMQ or RBF."""
    total = jnp.zeros_like(sq_dist)
    for c in constants:
        if kernel == "imq":
            total = total + c / (c + sq_dist)
        else:
            total = total + jnp.exp(-sq_dist / c)
    return total


def _block_sq_dist(diff: Array, blocks: tuple[int, ...]) -> Array:
    """Squared distances within each block: ``[n, m, D]`` -> ``[n, m, G]``."""
    if all(k == 1 for k in blocks):
        return diff**2  # per dimension
    if len(blocks) == 1:
        return jnp.sum(diff**2, axis=-1, keepdims=True)  # one joint kernel
    edges = np.cumsum((0,) + blocks)
    return jnp.stack([jnp.sum(diff[..., a:b] ** 2, axis=-1) for a, b in zip(edges[:-1], edges[1:])], axis=-1)


def _gram_sum(a: Array, b: Array, scales, kernel: str, blocks: tuple[int, ...], exclude_diagonal: bool) -> Array:
    """Σ_{i,j} Σ_g Σ_s k_{C_gs}(a_ig, b_jg) with C_gs = 2·k_g·s, optionally without the i = j terms."""
    diff = a[:, None, :] - b[None, :, :]  # [n, m, D]
    sq = _block_sq_dist(diff, blocks)  # [n, m, G]
    sizes = np.asarray(blocks, np.float64)
    constants = tuple(jnp.asarray(2.0 * sizes * s, sq.dtype) for s in scales)  # each [G]
    k = jnp.sum(_kernel_sum(sq, constants, kernel), axis=-1)  # [n, m]: sum of the blocks' kernels
    if exclude_diagonal:
        k = k * (1.0 - jnp.eye(k.shape[0], dtype=k.dtype))
    return jnp.sum(k)


def mmd(
    x: Array,
    y: Array,
    *,
    kernel: str = "imq",
    per_dimension: bool | None = None,
    scales: Sequence[float] = DEFAULT_SCALES,
    blocks: Sequence[int] | None = None,
) -> Array:
    """Unbiased MMD² U-statistic between samples ``x`` and ``y``.

        MMD²_u = 1/(n(n−1)) Σ_{i≠j} k(x_i,x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i,y_j)
                 − 2/(nm) Σ_{i,j} k(x_i,y_j),

    with k a sum over blocks g of the coordinates and over the ``scales`` s of
    kernels on the block's sub-vectors, each written in terms of a constant
    C = 2·k_g·s (k_g the block's size):

    * ``kernel="imq"``: k_C(a, b) = C / (C + r), the inverse multiquadric;
    * ``kernel="rbf"``: k_C(a, b) = exp(−r / C), i.e. a Gaussian kernel with
      bandwidth h = √(C/2) (h² = k_g·s);

    where r = ‖a_g − b_g‖². Blocks of size 1 (``per_dimension=True``, the
    default, the paper's choice for sparsity) compare only the 1-D marginals
    and are not rotation invariant; one block of size D
    (``per_dimension=False``, C = 2·D·s) is the joint kernel, rotation
    invariant; a partition ``blocks=(k_1, …, k_G)`` compares the blocks'
    marginals, invariant to rotations within blocks only (beyond the paper:
    independent subspaces). Unbiased: its expectation is 0 when x and y come
    from the same distribution, so single estimates can be negative.

    Args:
      x: ``[n, D]`` samples, n ≥ 2 (e.g. from the prior).
      y: ``[m, D]`` samples, m ≥ 2 (e.g. from the aggregate posterior).
      kernel: ``"imq"`` or ``"rbf"``.
      per_dimension: sum of 1-D kernels (True, the default) or one kernel on
        vectors (False); leave it None when giving ``blocks``.
      scales: the scales s > 0 (default: the paper's 0.1 … 5).
      blocks: static block sizes, positive and summing to D, or None.

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
    blocks = _mmd_blocks(x.shape[1], per_dimension, blocks)
    kxx = _gram_sum(x, x, scales, kernel, blocks, exclude_diagonal=True)
    kyy = _gram_sum(y, y, scales, kernel, blocks, exclude_diagonal=True)
    kxy = _gram_sum(x, y, scales, kernel, blocks, exclude_diagonal=False)
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m)


def _mmd_blocks(dim: int, per_dimension: bool | None, blocks) -> tuple[int, ...]:
    """The kernel's blocks: ``blocks``, or D blocks of 1 (per dimension), or one block of D (joint)."""
    if blocks is None:
        return (1,) * dim if per_dimension in (None, True) else (dim,)
    if per_dimension is not None:
        raise ValueError("give mmd either blocks or per_dimension, not both (blocks=(1,)*D is per_dimension=True, "
                         "blocks=(D,) is per_dimension=False)")
    return check_blocks("blocks", blocks, dim)


def pairwise_log_prob(posterior: distrax.Distribution, z: Array) -> Array:
    """log q(z_i | x_j) for every sample i and encoder j.

    Args:
      posterior: batch shape ``[B]``, event ``(D,)``.
      z: ``[M, D]``.

    Returns:
      ``[M, B]`` matrix; row i is sample i under each of the B encoders.
    """
    return posterior.log_prob(z[:, None, :])


def inclusive_kl(key: Array, posterior: distrax.Distribution, prior: distrax.Distribution, *,
                 num_samples: int | None = None) -> Array:
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


def exclusive_kl(y: Array, posterior: distrax.Distribution, prior: distrax.Distribution, *,
                 dataset_size: int | None = None) -> Array:
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


def check_sampling(batch: int | None, dataset_size: int | None, sampling: str) -> None:
    check_choice("sampling", sampling, SAMPLING)
    if dataset_size is None:
        if sampling == "mss":
            raise ValueError("sampling='mss' (minibatch-stratified) needs dataset_size, the number N of data points")
        return
    check_dim("dataset_size", dataset_size)
    if sampling == "mss" and batch is not None and (batch < 2 or dataset_size < batch):
        raise ValueError(
            f"sampling='mss' needs 2 ≤ batch size ≤ dataset_size; got batch {batch}, dataset_size {dataset_size}"
        )


def stratified_log_weights(batch: int, dataset_size: int) -> np.ndarray:
    """log w_ij of minibatch-stratified sampling (Chen et al. 2018, App. C.2), ``[B, B]`` float64.

    With M = B − 1 other points in the batch, q(y_i) ≈ Σ_j w_ij q(y_i|x_j) where

        w_ii = 1/N,   w_{i,i+1} = (N − M)/(N·M)   (j = i + 1 mod B),   w_ij = 1/M otherwise.

    Each row sums to 1. The estimate of q(y_i) (not of its log) is unbiased
    when the other points are drawn uniformly without replacement from the
    remaining N − 1; its log is biased low (Jensen), less so as B grows.
    """
    n, m = float(dataset_size), batch - 1
    rows = np.arange(batch)
    log_w = np.full((batch, batch), -np.log(m))
    log_w[rows, (rows + 1) % batch] = np.log((n - m) / (n * m))
    log_w[rows, rows] = -np.log(n)
    return log_w


def _log_mix(log_p: Array, batch: int, dataset_size: int | None, sampling: str) -> Array:
    """log Σ_j w_ij exp(log_p[i, j, ...]) over axis 1: the aggregate's (or a marginal's) log-density at y_i."""
    if dataset_size is None or sampling == "mws":
        return jax.nn.logsumexp(log_p, axis=1) - _log_normaliser(batch, dataset_size)
    log_w = jnp.asarray(stratified_log_weights(batch, dataset_size), log_p.dtype)
    return jax.nn.logsumexp(log_p + log_w.reshape(log_w.shape + (1,) * (log_p.ndim - 2)), axis=1)


def minibatch_log_densities(
    y: Array, posterior: distrax.Distribution, *, dataset_size: int | None = None, sampling: str = "mws"
) -> tuple[Array, Array]:
    """Minibatch estimates of log q(y_i) and log q_d(y_id) for the batch's own samples (β-TCVAE's terms).

    The aggregate q(z) over a whole set of posteriors at any points, chunked, is
    :func:`decompvae.metrics.aggregate_log_prob`; this is the training-time
    estimate from one minibatch, with Chen et al.'s weights.

    Args:
      y: ``[B, D]``, y_i ~ q(z|x_i).
      posterior: factorised q(z|x_j), batch shape ``[B]``.
      dataset_size: N, or None for the minibatch mixture ``q̂ = (1/B) Σ_j q(·|x_j)``.
      sampling: with N given, ``"mws"`` (minibatch-weighted: log q̂ = logsumexp_j log q(y_i|x_j)
        − log(N·B)) or ``"mss"`` (:func:`stratified_log_weights`).

    Returns:
      ``(log_q [B], log_q_d [B, D])``.
    """
    batch = posterior.batch_shape[0]
    check_sampling(batch, dataset_size, sampling)
    log_q = _log_mix(pairwise_log_prob(posterior, y), batch, dataset_size, sampling)  # [B]
    log_marginals = marginal_log_prob(posterior, y[:, None, :])  # [B(i), B(j), D]
    return log_q, _log_mix(log_marginals, batch, dataset_size, sampling)  # [B], [B, D]


def total_correlation(
    y: Array, posterior: distrax.Distribution, *, dataset_size: int | None = None, sampling: str = "mws"
) -> Array:
    """Total correlation TC(q(z)) = KL(q(z) ‖ Π_d q(z_d)) on a minibatch (β-TCVAE's β term).

        TC ≈ (1/B) Σ_i [ log q̂(y_i) − Σ_d log q̂_d(y_id) ],

    with ``log q̂ = logsumexp_j log q(·|x_j) − log(N·B)`` (minibatch-weighted
    sampling, Chen et al. 2018) when ``dataset_size=N`` is given, the
    stratified weights with ``sampling="mss"``, else the minibatch mixture
    (log B). The independence special case of D; biased as described in
    :func:`exclusive_kl` (MWS shifts the value by (D−1)·log N from the
    mixture). Needs a factorised posterior.

    Args:
      y: ``[B, D]``, y_i ~ q(z|x_i).
      posterior: factorised q(z|x_j), batch shape ``[B]``.
      dataset_size: N, or None.
      sampling: ``"mws"`` or ``"mss"`` (with ``dataset_size``).

    Returns:
      Scalar estimate.
    """
    log_q, log_q_d = minibatch_log_densities(y, posterior, dataset_size=dataset_size, sampling=sampling)
    return jnp.mean(log_q - jnp.sum(log_q_d, axis=-1))


def mutual_information(
    y: Array, posterior: distrax.Distribution, *, dataset_size: int | None = None, sampling: str = "mws"
) -> Array:
    """Index-code mutual information I_q(x; z) = E_{p_D} KL(q(z|x) ‖ q(z)) (β-TCVAE's α term).

        I ≈ (1/B) Σ_i [ log q(y_i|x_i) − log q̂(y_i) ],   y_i ~ q(z|x_i),

    with q̂ as in :func:`total_correlation` (MWS shifts the value by +log N
    from the mixture). Also the overlap measure of Mathieu et al. (2019).

    Args:
      y: ``[B, D]``, y_i ~ q(z|x_i).
      posterior: q(z|x_j), batch shape ``[B]`` (need not factorise).
      dataset_size: N, or None.
      sampling: ``"mws"`` or ``"mss"`` (with ``dataset_size``).

    Returns:
      Scalar estimate.
    """
    batch = posterior.batch_shape[0]
    check_sampling(batch, dataset_size, sampling)
    log_q = _log_mix(pairwise_log_prob(posterior, y), batch, dataset_size, sampling)  # [B]
    return jnp.mean(posterior.log_prob(y) - log_q)


def dimensionwise_kl(
    y: Array,
    posterior: distrax.Distribution,
    prior: distrax.Distribution,
    *,
    dataset_size: int | None = None,
    sampling: str = "mws",
) -> Array:
    """Dimension-wise KL Σ_d KL(q(z_d) ‖ p(z_d)) (β-TCVAE's γ term).

        Σ_d KL ≈ (1/B) Σ_i Σ_d [ log q̂_d(y_id) − log p_d(y_id) ],

    with q̂_d as in :func:`total_correlation` (MWS shifts the value by −D·log N
    from the mixture). With a factorised prior, on the same samples,
    :func:`mutual_information` + :func:`total_correlation` + this equals
    (1/B) Σ_i [log q(y_i|x_i) − log p(y_i)], the Monte-Carlo E KL(q(z|x) ‖ p(z)),
    for every choice of ``dataset_size`` and ``sampling`` (Chen et al. 2018, Eq. 2).

    Args:
      y: ``[B, D]``, y_i ~ q(z|x_i).
      posterior: factorised q(z|x_j), batch shape ``[B]``.
      prior: factorised p(z) (its 1-D marginals are needed).
      dataset_size: N, or None.
      sampling: ``"mws"`` or ``"mss"`` (with ``dataset_size``).

    Returns:
      Scalar estimate.
    """
    _, log_q_d = minibatch_log_densities(y, posterior, dataset_size=dataset_size, sampling=sampling)
    return jnp.mean(jnp.sum(log_q_d - marginal_log_prob(prior, y), axis=-1))


def info_vae_mmd(
    key: Array, y: Array, prior: distrax.Distribution, *, kernel: str = "rbf", scales: Sequence[float] | None = None
) -> Array:
    """The InfoVAE / WAE-MMD divergence: joint-kernel MMD²_u between z ~ p(z) and y ~ q(z).

    ``kernel="rbf"`` (InfoVAE, Zhao et al. 2019): k(a, b) = exp(−‖a − b‖²/D²),
    the authors' released kernel (scale s = D/2 in :func:`mmd`'s C = 2·D·s).
    ``kernel="imq"`` (WAE-MMD, Tolstikhin et al. 2018): Σ_C C/(C + ‖a − b‖²)
    with C = 2·D·s over :data:`WAE_SCALES`. ``scales`` overrides either. The
    unbiased U-statistic (the authors' code uses the biased V-statistic, which
    adds a positive O(1/B) term).

    Args:
      key: PRNG key for the B prior samples.
      y: ``[B, D]``, y_i ~ q(z|x_i).
      prior: p(z).
      kernel: ``"rbf"`` or ``"imq"``.
      scales: the scales s, or None for the published ones.

    Returns:
      Scalar estimate.
    """
    check_choice("kernel", kernel, ("imq", "rbf"))
    if scales is None:
        scales = (y.shape[1] / 2.0,) if kernel == "rbf" else WAE_SCALES
    z = prior.sample(seed=key, sample_shape=(y.shape[0],))
    return mmd(z, y, kernel=kernel, per_dimension=False, scales=scales)


#: Signature of every divergence used by the objective.
Divergence = Callable[[Array, Array, distrax.Distribution, distrax.Distribution], Array]


class RegulariserInputs(NamedTuple):
    """What the objective hands a :class:`Regulariser` for one minibatch.

    Attributes:
      y: ``[B, D]`` one reparameterised sample y_i ~ q(z|x_i) (the first of the K).
      posterior: q(z|x_i), batch shape ``[B]``.
      prior: p(z).
      kl: ``[B]`` KL(q(z|x_i) ‖ p(z)), the objective's KL term.
      step: ``[]`` the training step (``Hyperparams.step``), None outside training.
      params: this regulariser's traced parameters from ``Hyperparams.regulariser_params``
        (e.g. ``{"c_max": 25.0}``), ``{}`` when none are given.
      adversary: this regulariser's adversary variables behind ``stop_gradient``, or None.
    """

    y: Array
    posterior: distrax.Distribution
    prior: distrax.Distribution
    kl: Array
    step: Any = None
    params: dict = {}  # a shared default, never mutated
    adversary: Any = None


class Adversary(NamedTuple):
    """A network trained against the VAE inside the same train step (FactorVAE's discriminator).

    Attributes:
      init: ``key -> variables``.
      loss: ``(key, variables, y [B, D]) -> []``, the adversary's loss (minimised over its
        variables); the objective passes y behind ``stop_gradient``.
      optimizer: its own optax transformation.
    """

    init: Callable[[Array], Any]
    loss: Callable[[Array, Any, Array], Array]
    optimizer: optax.GradientTransformation


class Regulariser(NamedTuple):
    """A batch-level term D_k that reads more than ``(y, posterior, prior)``.

    Attributes:
      estimate: ``(key, inputs: RegulariserInputs) -> []``.
      traced: names of the traced parameters it reads from ``inputs.params``.
      adversary: an :class:`Adversary` the trainer trains beside the VAE, or None.
    """

    estimate: Callable[[Array, RegulariserInputs], Array]
    traced: tuple[str, ...] = ()
    adversary: Adversary | None = None
