"""Confidence intervals over trained networks: the one level, the one interval, the one paired interval.

Each point of a figure or table is a set of networks trained with different
seeds, summarised by its mean and the Student t interval

    mean ± t_{(1+level)/2, n−1} · sd / √n       (sd with ddof 1; ``scipy.stats.t``),

at ``level`` = :data:`CONFIDENCE`. Two settings trained at the same seeds give
per-seed differences d_s, summarised by :func:`paired_effect`: d̄ with the same
t interval of the d_s and the *detectable effect* (t_{(1+level)/2} + t_{power})·sd(d)/√n,
the true effect such a design finds with probability :data:`POWER`. The
experiments' claims and verdicts built on them live in :mod:`decompvae.reproduce._stats`.
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple, Sequence

import numpy as np
from scipy import stats

__all__ = ["CONFIDENCE", "POWER", "PairedEffect", "mean_ci", "paired_effect"]

#: The level of every confidence interval the package reports.
CONFIDENCE = 0.95
#: The power at which a paired design's detectable effect is stated.
POWER = 0.80


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


class PairedEffect(NamedTuple):
    """A paired mean difference with its interval and detectable effect.

    Attributes:
      mean: d̄, the mean of the per-seed differences.
      half: half-width of its 95% paired t interval (NaN for n < 2).
      n: number of pairs with finite values on both sides.
      se: sd(d)/√n.
      detectable: (t_{0.975, n−1} + t_{0.80, n−1})·se, the effect found with 80% power.
    """

    mean: float
    half: float
    n: int
    se: float
    detectable: float

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    def text(self, digits: int = 3) -> str:
        """``"+0.031 ± 0.022 (n = 10; detectable 0.044)"``."""
        if not np.isfinite(self.mean):
            return "n/a"
        return (f"{self.mean:+.{digits}f} ± {self.half:.{digits}f} (n = {self.n}; "
                f"detectable {self.detectable:.{digits}f})")


def paired_effect(differences: Iterable[float]) -> PairedEffect:
    """The paired t summary of per-seed differences ``[n]`` (non-finite ones dropped)."""
    d = np.asarray([x for x in differences if x is not None and np.isfinite(x)], np.float64)
    n = d.size
    if n == 0:
        return PairedEffect(float("nan"), float("nan"), 0, float("nan"), float("nan"))
    if n < 2:
        return PairedEffect(float(d[0]), float("nan"), 1, float("nan"), float("nan"))
    se = d.std(ddof=1) / math.sqrt(n)
    t_level = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)
    t_power = stats.t.ppf(POWER, n - 1)
    return PairedEffect(float(d.mean()), float(t_level * se), n, float(se), float((t_level + t_power) * se))
