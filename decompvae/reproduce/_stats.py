"""Seed-paired statistics and three-way verdicts of the experiments.

Networks of one sweep that share a seed share their initialisation, their
data stream and their evaluation keys, so two settings compared at the same
seeds form a *paired* design: the difference d_s = m_A(s) − m_B(s) is taken
per seed and its mean gets a paired t interval,

    d̄ ± t_{0.975, n−1} · sd(d) / √n,

which is narrower than the independent-samples interval whenever the two
settings' scores are positively correlated across seeds (measured 0.55–0.82
between priors at one seed).

Each claim is judged against a *smallest effect of interest* δ (in the
metric's units, fixed in the experiment's module before its run): with the
interval [lo, hi] of s·d̄ (s = +1 when the paper predicts an increase, −1 a
decrease),

* ``reproduced``: lo > 0 — the predicted direction, with the interval
  excluding zero;
* ``NOT reproduced``: hi < δ — the design rules out an effect as large as δ
  in the predicted direction (this includes a clear effect of the opposite
  sign);
* ``inconclusive at this budget``: neither; the summary then gives the
  *detectable effect* (t_{0.975} + t_{0.80})·sd(d)/√n, the true effect the
  design finds with 80% power at the 5% level, to compare with δ.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

import numpy as np

from decompvae.stats import CONFIDENCE, PairedEffect, paired_effect

__all__ = [
    "INCONCLUSIVE",
    "NOT_REPRODUCED",
    "PARTLY",
    "REPRODUCED",
    "Claim",
    "PairedEffect",
    "claim",
    "claims_table",
    "combine",
    "effects_table",
    "judge",
    "paired_by_seed",
    "paired_differences",
    "paired_effect",
    "pooled_paired",
    "verdict_section",
]

REPRODUCED = "reproduced"
NOT_REPRODUCED = "NOT reproduced"
INCONCLUSIVE = "inconclusive at this budget"
PARTLY = "partly reproduced"
LEVEL = CONFIDENCE


def paired_by_seed(rows: Sequence[dict], metric: str, a: dict, b: dict, pair_by: str = "seed") -> dict:
    """``{seed: metric(a) − metric(b)}`` over the seeds present in both settings.

    Args:
      rows: one dict per trained network.
      metric: the column to compare.
      a, b: column values selecting the two settings, e.g. ``{"prior": "PCA", "beta": 1.0}``.
      pair_by: the column that pairs networks (the seed).

    Raises:
      ValueError: a setting has two networks with one seed, or none at all.
    """
    def select(where: dict) -> dict:
        out = {}
        for r in rows:
            if all(r[k] == v for k, v in where.items()):
                if r[pair_by] in out:
                    raise ValueError(f"two networks with {pair_by} = {r[pair_by]} match {where}")
                out[r[pair_by]] = float(r[metric])
        if not out:
            raise ValueError(f"no network matches {where}")
        return out

    first, second = select(a), select(b)
    return {s: first[s] - second[s] for s in sorted(set(first) & set(second))}


def paired_differences(rows: Sequence[dict], metric: str, a: dict, b: dict, pair_by: str = "seed") -> list[float]:
    """The values of :func:`paired_by_seed`, in increasing seed order."""
    return list(paired_by_seed(rows, metric, a, b, pair_by).values())


def pooled_paired(rows: Sequence[dict], metric: str, a: dict, b: dict, over: str, values: Sequence) -> list[float]:
    """Per-seed differences averaged over ``over`` ∈ ``values`` (seeds present at every value).

    d_s = (1/|values|) Σ_v [metric(a, v, s) − metric(b, v, s)]: one number per
    seed, so the paired interval over seeds accounts for the correlation of
    one seed's networks across the values too.
    """
    per_value = [paired_by_seed(rows, metric, {**a, over: v}, {**b, over: v}) for v in values]
    seeds = sorted(set.intersection(*(set(d) for d in per_value)))
    return [float(np.mean([d[s] for d in per_value])) for s in seeds]


class Claim(NamedTuple):
    """One judged claim of an experiment.

    Attributes:
      text: what is compared, e.g. ``"FactorVAE (dlib): PCA − isotropic, mean over β"``.
      effect: the paired difference in that order.
      direction: the paper's predicted sign (+1 / −1).
      smallest_effect: δ, fixed before the run.
      verdict: :func:`judge` of the above.
    """

    text: str
    effect: PairedEffect
    direction: int
    smallest_effect: float
    verdict: str


def claim(text: str, differences: Iterable[float], *, direction: int, smallest_effect: float) -> Claim:
    """Summarise and judge one claim from its per-seed differences."""
    effect = paired_effect(differences)
    return Claim(text, effect, direction, smallest_effect,
                 judge(effect, direction=direction, smallest_effect=smallest_effect))


def claims_table(claims: Sequence[Claim], digits: int = 3) -> str:
    """A markdown table: claim, predicted sign, paired difference ± 95% CI, detectable effect, δ, verdict."""
    lines = ["| claim | predicted | paired difference ± 95% CI | n | detectable (80% power) | δ | verdict |",
             "|---|---|---|---|---|---|---|"]
    for c in claims:
        e = c.effect
        diff = "n/a" if not np.isfinite(e.mean) else f"{e.mean:+.{digits}f} ± {e.half:.{digits}f}"
        lines.append(f"| {c.text} | {'> 0' if c.direction > 0 else '< 0'} | {diff} | {e.n} | "
                     f"{e.detectable:.{digits}f} | {c.smallest_effect:g} | {c.verdict} |")
    return "\n".join(lines)


def verdict_section(rule: str, claims: Sequence[Claim], intro: str,
                    reported: Sequence[tuple[str, PairedEffect]]) -> list[str]:
    """Summary lines shared by the experiments: the rule, the finding, the judged claims, the reported effects."""
    return [f"**Verdict rule** (written before the run): {rule}", "",
            f"**Finding ({combine([c.verdict for c in claims])}).**", "", claims_table(claims), "",
            intro, "", effects_table(reported)]


def effects_table(entries: Sequence[tuple[str, PairedEffect]], digits: int = 3) -> str:
    """A markdown table of reported (not judged) paired differences."""
    lines = ["| comparison | paired difference ± 95% CI | n | detectable (80% power) |", "|---|---|---|---|"]
    for text, e in entries:
        diff = "n/a" if not np.isfinite(e.mean) else f"{e.mean:+.{digits}f} ± {e.half:.{digits}f}"
        lines.append(f"| {text} | {diff} | {e.n} | {e.detectable:.{digits}f} |")
    return "\n".join(lines)


def judge(effect: PairedEffect, *, direction: int, smallest_effect: float) -> str:
    """The three-way verdict of one claim (see the module docstring).

    Args:
      effect: the paired difference, in the order the claim is stated.
      direction: +1 if the paper predicts a positive difference, −1 a negative one.
      smallest_effect: δ > 0, in the metric's units.
    """
    if direction not in (1, -1) or not smallest_effect > 0:
        raise ValueError(f"direction must be ±1 and smallest_effect > 0; got {direction}, {smallest_effect}")
    if not np.isfinite(effect.half):
        return INCONCLUSIVE
    low, high = sorted((direction * effect.low, direction * effect.high))
    if low > 0:
        return REPRODUCED
    if high < smallest_effect:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """One verdict from several claims: all reproduced → reproduced; some → partly; else the weaker of the rest."""
    verdicts = list(verdicts)
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if any(v in (REPRODUCED, PARTLY) for v in verdicts):
        return PARTLY
    if verdicts and all(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    return INCONCLUSIVE
