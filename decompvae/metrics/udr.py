"""Unsupervised Disentanglement Ranking (UDR) of several trained models.

Duan, Matthey, Saraiva, Watters, Burgess, Lerchner & Higgins (2020),
"Unsupervised Model Selection for Variational Disentangled Representation
Learning", ICLR 2020 (arXiv:1905.12614), as disentanglement_lib's
``evaluation/udr/metrics/udr.py`` (``compute_udr_sklearn``). A disentangled
model is one that other models of the same hyperparameters (other seeds)
reproduce up to permutation and sign of its latents. For every ordered pair
(i, j) of the M models, on the same inputs:

1. each model's codes (encoder means) are standardised per dimension
   (``sklearn.preprocessing.StandardScaler``); dimensions whose mean KL to the
   prior is at most ``kl_threshold`` are inactive (zeroed);
2. R_ij ``[D_i, D_j]`` is |coefficient| of a Lasso regression (α = 0.1) of model
   j's codes on model i's, or the |Spearman correlation| of each pair of
   dimensions;
3. on the active rows and columns of R_ij, the relative strength
   ½ [mean_b (max_a R_ab)² / Σ_a R_ab + mean_a (max_b R_ab)² / Σ_b R_ab]
   (a row or column summing to 0 counts 0) is the pairwise score UDR_ij;
4. model j's UDR is the median of UDR_ij over the other models i.

Differences from disentanglement_lib, none of which changes a number at the
default threshold: the regression and correlations are computed on the
active dimensions only (identical: an inactive dimension is a zero feature,
whose Lasso coefficient stays 0, and each target is its own Lasso problem);
inactive dimensions are those with KL ≤ ``kl_threshold`` both when zeroed and
when masked (disentanglement_lib zeroes at a hard-coded 0.01 and masks at its
``kl_filter_threshold``); a pair in which a model has no active dimension
scores 0.0 (disentanglement_lib fails on the empty matrix).
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler

from decompvae._checks import check_choice, check_dim
from decompvae.metrics._common import as_codes
from decompvae.posteriors import marginal_log_prob
from decompvae.sweep import take_member

__all__ = [
    "CORRELATIONS",
    "lasso_correlation_matrix",
    "member_codes_and_kl",
    "relative_strength_disentanglement",
    "spearman_correlation_matrix",
    "udr",
    "udr_of_members",
    "udr_pairwise",
]

#: Similarity matrices of step 2.
CORRELATIONS = ("lasso", "spearman")
#: Lasso penalty of disentanglement_lib's ``lasso_correlation_matrix``.
LASSO_ALPHA = 0.1


def lasso_correlation_matrix(codes_a, codes_b) -> np.ndarray:
    """|Lasso coefficients| ``[D_a, D_b]`` of regressing each dimension of ``codes_b`` on ``codes_a``.

    scikit-learn's ``Lasso`` with α = 0.1 and its other hyperparameters spelled
    out (they are the defaults disentanglement_lib ran with); entry (a, b) is
    the weight of dimension a of ``codes_a`` in the regression of dimension b.
    """
    model = Lasso(alpha=LASSO_ALPHA, fit_intercept=True, precompute=False, max_iter=1000, tol=1e-4,
                  positive=False, selection="cyclic")
    model.fit(codes_a, codes_b)
    return np.abs(np.atleast_2d(model.coef_)).T  # coef_: [D_b, D_a]


def spearman_correlation_matrix(codes_a, codes_b) -> np.ndarray:
    """|Spearman rank correlation| ``[D_a, D_b]`` between every dimension of ``codes_a`` and of ``codes_b``."""
    corr = np.asarray(scipy.stats.spearmanr(codes_a, codes_b)[0])
    if corr.ndim == 0:  # one dimension each: scipy returns the one number
        return np.abs(corr).reshape(1, 1)
    return np.abs(corr[: codes_a.shape[1], codes_a.shape[1]:])


def relative_strength_disentanglement(corr) -> float:
    """The relative strength score of a similarity matrix ``[D_a, D_b]`` (0.0 when it is empty).

    ½ [mean over columns of max² / sum + mean over rows of max² / sum], a
    column or row of zeros (or holding NaN) counting 0, as disentanglement_lib.
    """
    corr = np.asarray(corr, np.float64)
    if corr.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        score_x = np.mean(np.nan_to_num(np.max(corr, axis=0) ** 2 / np.sum(corr, axis=0)))
        score_y = np.mean(np.nan_to_num(np.max(corr, axis=1) ** 2 / np.sum(corr, axis=1)))
    return float((score_x + score_y) / 2)


def _checked(codes_per_model, kl_per_model, correlation, kl_threshold):
    check_choice("correlation", correlation, CORRELATIONS)
    if isinstance(kl_threshold, bool) or not isinstance(kl_threshold, (int, float, np.floating, np.integer)) \
            or np.isnan(kl_threshold):
        raise ValueError(f"kl_threshold must be a number; got {kl_threshold!r}")
    codes = np.asarray(codes_per_model)
    if codes.ndim != 3 or codes.shape[0] < 2:
        raise ValueError(f"codes_per_model must have shape [M, N, D] with M ≥ 2 models; got shape {codes.shape}")
    codes = [as_codes(f"codes_per_model[{m}]", c) for m, c in enumerate(codes)]
    kl = np.asarray(kl_per_model, np.float64)
    if kl.shape != (len(codes), codes[0].shape[1]) or not np.all(np.isfinite(kl)):
        raise ValueError(f"kl_per_model must be finite with shape [M, D] = {(len(codes), codes[0].shape[1])}; "
                         f"got shape {kl.shape}")
    return codes, kl


def udr_pairwise(codes_per_model, kl_per_model, *, correlation: str = "lasso",
                 kl_threshold: float = 0.01) -> np.ndarray:
    """Pairwise UDR scores ``[M, M]`` (disentanglement_lib's ``pairwise_disentanglement_scores``).

    Args:
      codes_per_model: ``[M, N, D]`` codes of M models on the same N inputs.
      kl_per_model: ``[M, D]`` mean KL(q(z_d|x) ‖ p(z_d)) of each model's dimensions.
      correlation: ``"lasso"`` or ``"spearman"`` (step 2 of the module docstring).
      kl_threshold: dimensions with mean KL at most this are inactive.

    Returns:
      ``[M, M]``: entry (i, j) compares model j's codes with model i's; the diagonal is 0.
    """
    codes, kl = _checked(codes_per_model, kl_per_model, correlation, kl_threshold)
    similarity = lasso_correlation_matrix if correlation == "lasso" else spearman_correlation_matrix
    active = kl > kl_threshold  # [M, D]
    reps = [StandardScaler().fit_transform(c)[:, a] for c, a in zip(codes, active)]  # [N, D'_m] each
    m = len(reps)
    scores = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i != j and reps[i].shape[1] and reps[j].shape[1]:
                scores[i, j] = relative_strength_disentanglement(similarity(reps[i], reps[j]))
    return scores


def udr(codes_per_model, kl_per_model, *, correlation: str = "lasso", kl_threshold: float = 0.01) -> np.ndarray:
    """UDR score of each of M models (disentanglement_lib's ``model_scores``).

    Args:
      codes_per_model: ``[M, N, D]`` codes (encoder means) of M models on the same N inputs, M ≥ 2.
      kl_per_model: ``[M, D]`` mean KL(q(z_d|x) ‖ p(z_d)) of each model's dimensions.
      correlation: ``"lasso"`` (disentanglement_lib's default, UDR_L) or ``"spearman"`` (UDR_S).
      kl_threshold: dimensions with mean KL at most this are left out.

    Returns:
      ``[M]`` float64 ≥ 0, model j's median over i ≠ j of the pairwise score (i, j). Copies of one
      model up to permutation and sign score 1 with Spearman and about 1 − α = 0.9 with Lasso,
      whose penalty shrinks a perfect standardised match.

    Raises:
      ValueError: an unknown ``correlation``, or inputs of the wrong shape.
    """
    pairwise = udr_pairwise(codes_per_model, kl_per_model, correlation=correlation, kl_threshold=kl_threshold)
    return np.array([np.median(np.delete(pairwise[:, j], j)) for j in range(pairwise.shape[0])])


def _marginal(dist):
    """The univariate distribution ``[..., D]`` of a factorised distrax distribution, or None."""
    if isinstance(dist, distrax.MultivariateNormalDiag):
        return distrax.Normal(dist.loc, dist.scale_diag)
    if isinstance(dist, distrax.Independent) and dist.distribution.event_shape == ():
        return dist.distribution
    return None


def _kl_per_dim(key, posterior, prior, num_samples: int):
    """KL(q(z_d|x) ‖ p(z_d)) ``[b, D]``: closed form where distrax has one, else a Monte Carlo estimate."""
    q, p = _marginal(posterior), _marginal(prior)
    if q is not None and p is not None:
        try:
            return jnp.broadcast_to(q.kl_divergence(p), posterior.batch_shape + posterior.event_shape)
        except NotImplementedError:
            pass
    z = posterior.sample(seed=key, sample_shape=num_samples)  # [S, b, D]
    return jnp.mean(marginal_log_prob(posterior, z) - marginal_log_prob(prior, z), axis=0)


def member_codes_and_kl(key, setup, params, hyper, x, *, members=None, num_samples: int = 16,
                        batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Encoder means ``[M, N, D]`` and per-dimension mean KL ``[M, D]`` of members of a run on inputs ``x``.

    The KL of dimension d is E_x KL(q(z_d|x) ‖ p(z_d)) over ``x``: in closed
    form for a Gaussian posterior and prior (disentanglement_lib's per-latent
    KL), else a Monte Carlo estimate from ``num_samples`` draws z ~ q(z|x) per
    input, which needs a prior with per-dimension marginals
    (:func:`decompvae.posteriors.marginal_log_prob`).

    Args:
      key: PRNG key of the Monte Carlo draws.
      setup: the run's :class:`decompvae.build.RunSetup`.
      params, hyper: the stacked model parameters and ``Hyperparams`` of the
        run (leading axis: members; ``decompvae.train.model_params(state)``).
      x: ``[N, ...]`` inputs, the same for every member.
      members: indices of the members (default all).
      num_samples, batch_size: draws per input; inputs per compiled call.
    """
    check_dim("num_samples", num_samples)
    check_dim("batch_size", batch_size)

    @jax.jit
    def batch(key, p, h, xb):
        dist = setup.model(p, h, xb)
        kl = _kl_per_dim(key, dist.posterior, dist.prior, num_samples)  # [b, D]
        return dist.posterior.mean(), jnp.sum(kl, axis=0)  # [b, D], [D]

    codes, kls = [], []
    for i in range(len(setup.members)) if members is None else members:
        p, h = take_member((params, hyper), i)
        parts = [batch(jax.random.fold_in(jax.random.fold_in(key, i), s), p, h, jnp.asarray(x[s: s + batch_size]))
                 for s in range(0, len(x), batch_size)]
        codes.append(np.concatenate([np.asarray(c) for c, _ in parts]))
        kls.append(sum(np.asarray(k, np.float64) for _, k in parts) / len(x))
    return np.stack(codes), np.stack(kls)


def udr_of_members(key, setup, params, hyper, x, *, members=None, num_samples: int = 16, batch_size: int = 1000,
                   correlation: str = "lasso", kl_threshold: float = 0.01) -> np.ndarray:
    """UDR ``[M]`` of members of a run (e.g. the seeds of one vmapped sweep) on the same inputs ``x``.

    Duan et al. compare models that differ only in their seed: pass
    ``members`` sharing every other hyperparameter. Arguments as
    :func:`member_codes_and_kl` and :func:`udr`.
    """
    check_choice("correlation", correlation, CORRELATIONS)  # before any encoding
    codes, kl = member_codes_and_kl(key, setup, params, hyper, x, members=members, num_samples=num_samples,
                                    batch_size=batch_size)
    return udr(codes, kl, correlation=correlation, kl_threshold=kl_threshold)
