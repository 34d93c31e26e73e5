"""Unsupervised scores of a representation: Gaussian total correlation, Wasserstein correlation, mean MI.

disentanglement_lib's ``evaluation/metrics/unsupervised_metrics.py``
(Locatello et al., "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations", ICML 2019, §5): with Σ the sample
covariance of the codes (``np.cov``, N − 1 normalisation),

* ``gaussian_total_correlation``: KL(N(0, Σ) ‖ N(0, diag Σ)) =
  ½ (Σ_d log Σ_dd − log det Σ), the total correlation of a Gaussian fitted
  to the codes;
* ``gaussian_wasserstein_correlation``: the squared 2-Wasserstein distance
  between N(0, Σ) and N(0, diag Σ), 2 tr Σ − 2 tr (diag(Σ) Σ)^{1/2}
  (``scipy.linalg.sqrtm``); ``gaussian_wasserstein_correlation_norm`` divides it
  by tr Σ;
* ``mutual_info_score``: the mean over ordered pairs d ≠ d' of the plug-in
  mutual information (nats) between histogram-binned code dimensions
  (:func:`decompvae.metrics.histogram_discretize`, 20 equal-width bins).

One deliberate difference: a dimension of zero variance is left out of the
total correlation (a constant is independent of everything, so it adds
nothing to it), where disentanglement_lib computes −inf − (−inf) = NaN. A
covariance of the non-constant dimensions that is exactly singular (e.g. a
duplicated dimension) gives +inf, the total correlation of that degenerate
Gaussian (a nearly singular one: a large finite number).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from decompvae.metrics._common import as_codes, histogram_discretize, mutual_information_matrix

__all__ = [
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "unsupervised_scores",
]


def gaussian_total_correlation(cov) -> float:
    """Total correlation ½ (Σ_d log Σ_dd − log det Σ) of N(0, Σ), over the dimensions with Σ_dd > 0.

    Args:
      cov: ``[D, D]`` covariance matrix.

    Returns:
      KL(N(0, Σ) ‖ N(0, diag Σ)) in nats (≥ 0; +inf for an exactly singular Σ).
    """
    cov = np.asarray(cov, np.float64)
    keep = np.diag(cov) > 0.0
    cov = cov[np.ix_(keep, keep)]
    if cov.shape[0] == 0:
        return 0.0
    logdet = np.linalg.slogdet(cov)[1]  # −inf for an exactly singular Σ
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))


def gaussian_wasserstein_correlation(cov) -> float:
    """Squared 2-Wasserstein distance between N(0, Σ) and N(0, diag Σ): 2 tr Σ − 2 tr (diag(Σ) Σ)^{1/2}.

    Args:
      cov: ``[D, D]`` covariance matrix.

    Returns:
      The distance; the imaginary rounding residue ``scipy.linalg.sqrtm`` may
      leave (diag(Σ) Σ has real non-negative eigenvalues) is dropped. Dimensions
      with Σ_dd = 0 are left out: their rows of diag(Σ) Σ are zero, so they add
      nothing to either trace, and without them the matrix is not made singular.
    """
    cov = np.asarray(cov, np.float64)
    keep = np.diag(cov) > 0.0
    cov = cov[np.ix_(keep, keep)]
    if cov.shape[0] == 0:
        return 0.0
    root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])  # (diag Σ) Σ: row d scaled by Σ_dd
    return float(2.0 * np.trace(cov) - 2.0 * np.real(np.trace(root)))


def unsupervised_scores(codes, *, num_bins: int = 20) -> dict:
    """disentanglement_lib's unsupervised scores of a representation.

    Args:
      codes: ``[N, D]`` representation (e.g. encoder means), D ≥ 2.
      num_bins: histogram bins per dimension of ``mutual_info_score``.

    Returns:
      ``{"gaussian_total_correlation", "gaussian_wasserstein_correlation",
      "gaussian_wasserstein_correlation_norm", "mutual_info_score"}`` as floats
      (see the module docstring; the normalised Wasserstein correlation is NaN
      when every dimension is constant).
    """
    codes = as_codes("codes", codes, min_dims=2)
    dims = codes.shape[1]
    cov = np.cov(codes, rowvar=False)  # [D, D], as np.cov(codes.T)
    wasserstein = gaussian_wasserstein_correlation(cov)
    trace = float(np.trace(cov))
    binned = histogram_discretize(codes, num_bins=num_bins)  # [N, D]
    mi = mutual_information_matrix(codes, binned, num_bins=num_bins)  # [D, D]: I(bin z_d; bin z_d')
    return {
        "gaussian_total_correlation": gaussian_total_correlation(cov),
        "gaussian_wasserstein_correlation": wasserstein,
        "gaussian_wasserstein_correlation_norm": wasserstein / trace if trace > 0 else float("nan"),
        "mutual_info_score": float((np.sum(mi) - np.sum(np.diag(mi))) / (dims**2 - dims)),
    }
