"""Confidence intervals over independently trained networks: the one level and the one interval.

Each point of a figure or table is a set of networks trained with different
seeds, summarised by its mean and the Student t interval

    mean ± t_{(1+level)/2, n−1} · sd / √n       (sd with ddof 1; ``scipy.stats.t``),

at ``level`` = :data:`CONFIDENCE`. The experiments' paired intervals
(:mod:`decompvae.reproduce._stats`) use the same level.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = ["CONFIDENCE", "mean_ci"]

#: The level of every confidence interval the package reports.
CONFIDENCE = 0.95


def mean_ci(values: Sequence[float], level: float = CONFIDENCE) -> tuple[float, float, int]:
    """Mean, CI half-width t_{(1+level)/2, n−1}·sd/√n and n over the finite values.

    Args:
      values: ``[n]`` one number per independently trained network (None and non-finite ones dropped).
      level: confidence level.

    Returns:
      ``(mean, half_width, n)``; the half-width is NaN for n < 2 and the mean NaN for n = 0.
    """
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    n = v.size
    if n == 0:
        return float("nan"), float("nan"), 0
    if n < 2:
        return float(v[0]), float("nan"), 1
    half = stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n)
    return float(v.mean()), float(half), n
