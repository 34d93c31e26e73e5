"""Interventional Robustness Score (IRS) of a representation.

Suter, Miladinović, Schölkopf & Bauer (2019), "Robustly Disentangled Causal
Mechanisms: Validating Deep Representations for Interventional Robustness",
ICML 2019 (arXiv:1811.00007), in the scalable form of disentanglement_lib
(``evaluation/metrics/irs.py``, ``scalable_disentanglement_score``). For each
latent dimension j and factor i:

* E_i[z_j | g_i = v] is the mean code of the points whose factor i equals v;
* the deviation of the group is the ``diff_quantile`` quantile (1.0: the
  maximum, the paper's version) of |z_j − E[z_j | g_i = v]| over the group,
  averaged over the values v of factor i;
* it is normalised by the dimension's largest deviation from its overall
  mean, max_n |z_nj − mean_n z_nj|, and IRS_ij = 1 − normalised deviation.

A dimension's score is max_i IRS_ij (its "parent" factor is the argmax); the
IRS is the mean of the dimension scores weighted by their largest
deviations. Dimensions with zero variance (disentanglement_lib's
``_drop_constant_dims``) are dropped first; with none left the score is 0.0,
as disentanglement_lib returns.

The estimate assumes, as the paper, that the factors are independent and
(roughly) uniform over their values; the protocol of disentanglement_lib
discretises the sampled factors into 20 equal-width histogram bins before
calling it (:func:`decompvae.metrics.histogram_discretize`; the evaluation
suite does so).
"""

from __future__ import annotations

import numpy as np

from decompvae._checks import check_in_range
from decompvae.metrics._common import as_codes, as_factors, check_same_rows

__all__ = ["irs", "irs_matrix"]


def irs_matrix(codes, factors, *, diff_quantile: float = 0.99) -> dict:
    """The IRS matrix and its summaries for the non-constant latent dimensions.

    Args:
      codes: ``[N, D]`` representation (e.g. encoder means).
      factors: ``[N, K]`` integer factor classes (already discretised).
      diff_quantile: quantile in [0, 1] of the within-group deviations (1.0: the
        maximum, as in the paper; disentanglement_lib's default 0.99).

    Returns:
      A dict (the keys of disentanglement_lib's ``scalable_disentanglement_score``
      plus ``active``): ``active`` ``[D]`` bool, the dimensions with non-zero
      variance; over the D' active ones ``IRS_matrix`` ``[D', K]``,
      ``disentanglement_scores`` ``[D']`` (row maxima), ``parents`` ``[D']``
      (row argmaxima), ``max_deviations`` ``[D']`` and ``avg_score`` (a float;
      0.0 when D' = 0).
    """
    codes = as_codes("codes", codes)
    factors = as_factors("factors", factors)
    check_same_rows(("codes", "factors"), codes, factors)
    check_in_range("diff_quantile", diff_quantile, 0.0, 1.0)
    active = codes.var(axis=0) > 0.0  # [D]
    latents = codes[:, active]  # [N, D']
    num_lat, num_gen = latents.shape[1], factors.shape[1]
    if num_lat == 0:
        empty = np.zeros((0, num_gen))
        return {"active": active, "IRS_matrix": empty, "disentanglement_scores": np.zeros(0),
                "parents": np.zeros(0, np.int64), "max_deviations": np.zeros(0), "avg_score": 0.0}
    max_deviations = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)  # [D']
    deviations = np.zeros((num_lat, num_gen))  # mean over a factor's values of the group's quantile deviation
    for i in range(num_gen):
        values, groups = np.unique(factors[:, i], return_inverse=True)
        for v in range(len(values)):
            group = latents[groups.reshape(-1) == v]  # [n_v, D']
            deviations[:, i] += np.quantile(np.abs(group - group.mean(axis=0)), diff_quantile, axis=0)
        deviations[:, i] /= len(values)
    matrix = 1.0 - deviations / max_deviations[:, None]  # [D', K]
    scores = matrix.max(axis=1)
    return {"active": active, "IRS_matrix": matrix, "disentanglement_scores": scores,
            "parents": matrix.argmax(axis=1), "max_deviations": max_deviations,
            "avg_score": float(np.average(scores, weights=max_deviations))}


def irs(codes, factors, *, diff_quantile: float = 0.99) -> float:
    """Interventional Robustness Score (Suter et al. 2019), disentanglement_lib's ``IRS``.

    Args:
      codes: ``[N, D]`` representation (e.g. encoder means).
      factors: ``[N, K]`` integer factor classes (already discretised).
      diff_quantile: quantile of the within-group deviations (1.0: the paper's maximum).

    Returns:
      The deviation-weighted mean over the non-constant dimensions of
      max_i IRS_ij, at most 1 (0.0 when every dimension is constant). See
      :func:`irs_matrix` for the matrix and the module docstring for the definition.
    """
    return irs_matrix(codes, factors, diff_quantile=diff_quantile)["avg_score"]
