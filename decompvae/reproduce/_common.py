"""Shared helpers of the experiments: context, training, CIs, tables, plots.

Each point of a figure is a set of independently trained networks (one sweep
member per seed), summarised by its mean and its 95% t interval
(:func:`decompvae.stats.mean_ci`, re-exported here with its level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np

from decompvae import runner
from decompvae.config import Config
from decompvae.outputs import csv_text
from decompvae.plots import pyplot
from decompvae.rundir import write_text_atomic
from decompvae.stats import CONFIDENCE, mean_ci
from decompvae.sweep import take_member
from decompvae.train import model_params

__all__ = [
    "CONFIDENCE",
    "Context",
    "aggregate",
    "budget_line",
    "ci_plot",
    "format_value",
    "markdown_table",
    "mean_ci",
    "member_slices",
    "pyplot",
    "train",
    "write_csv",
]



class Context(NamedTuple):
    """Where an experiment writes and how it talks.

    Attributes:
      name: the experiment's name.
      profile: ``tiny``, ``cpu`` or ``paper``.
      results_dir: CSV, PNG and ``summary.md`` (small; committed).
      runs_dir: training runs (checkpoints, logs; large; not committed).
      echo: where progress messages go.
      progress: show training progress bars.
      shard: ``(I, N)``: train members I, I + N, … of each grid (``--shard I/N``); None: all of them.
    """

    name: str
    profile: str
    results_dir: Path
    runs_dir: Path
    echo: Callable[[str], None] = print
    progress: bool = False
    shard: tuple[int, int] | None = None


def train(ctx: Context, config: Config, variant: str):
    """Train ``config``'s grid (``ctx.shard``'s share) into ``ctx.runs_dir / variant``, resuming; the RunResult."""
    config = runner.replace(config, output_dir=str(ctx.runs_dir / variant))
    n = len(runner.build_grid(config))
    if ctx.shard:
        config = runner.shard_config(config, ctx.shard)
        n = f"{len(range(ctx.shard[0], n, ctx.shard[1]))} of {n}"
    ctx.echo(f"[{ctx.name}/{ctx.profile}] training {variant}: {n} member(s), {config.train.steps} steps "
             f"→ {config.output_dir}")
    return runner.run(config, resume=True, progress=ctx.progress, figures=False, echo=ctx.echo)


def member_slices(result) -> Iterable[tuple[int, dict, Any, Any, int]]:
    """``(index, member, params, hyper, diverged_at)`` for each member of a stacked RunResult.

    ``index`` is the member's place in the whole grid (``result.setup.member_indices``),
    so a shard's members keep the evaluation keys and row numbers the unsharded run gives them.
    """
    for i, member in enumerate(result.setup.members):
        params, hyper = take_member((model_params(result.state), result.hyper), i)
        yield result.setup.member_indices[i], member, params, hyper, int(result.state.diverged_at[i])


def aggregate(rows: Sequence[dict], by: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Group rows by the ``by`` columns (first-seen order) and add mean/CI per metric.

    Returns:
      One dict per group: the ``by`` values, ``n`` and for each metric
      ``<metric>_mean`` and ``<metric>_ci`` (half-width).
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(by, key))
        entry["n"] = len(members)
        for m in metrics:
            mean, half, _ = mean_ci([r[m] for r in members])
            entry[f"{m}_mean"], entry[f"{m}_ci"] = mean, half
        out.append(entry)
    return out


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    """Write dict rows (the union of their keys, first-seen order) as CSV, atomically (a kill leaves the
    previous file or the new one, never a torn one)."""
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, csv_text(rows, fields))
    return path


def format_value(mean: float, half: float | None = None, digits: int = 3) -> str:
    """``"0.512 ± 0.031"`` (or just the mean when there is no CI)."""
    if mean is None or not np.isfinite(mean):
        return "n/a"
    text = f"{mean:.{digits}g}" if abs(mean) >= 1e4 or (mean != 0 and abs(mean) < 1e-3) else f"{mean:.{digits}f}"
    if half is None or not np.isfinite(half):
        return text
    return f"{text} ± {half:.{digits}f}"


def markdown_table(groups: Sequence[dict], keys: Sequence[str], metrics: Sequence[str], headers: dict | None = None) -> str:
    """A markdown table: key columns, n, then ``mean ± CI`` per metric."""
    headers = headers or {}
    cols = [headers.get(k, k) for k in keys] + ["n"] + [headers.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for g in groups:
        cells = [f"{g[k]:g}" if isinstance(g[k], float) else str(g[k]) for k in keys] + [str(g["n"])]
        cells += [format_value(g[f"{m}_mean"], g[f"{m}_ci"]) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ci_plot(ax, x, groups: Sequence[dict], metric: str, label: str | None = None, **kw) -> None:
    """Plot ``metric`` mean with 95% CI error bars over ``x``."""
    mean = np.array([g[f"{metric}_mean"] for g in groups], float)
    half = np.array([g[f"{metric}_ci"] for g in groups], float)
    ax.errorbar(x, mean, yerr=np.nan_to_num(half), capsize=3, marker="o", label=label, **kw)


def budget_line(images: int, dataset: str, dataset_images: int) -> str:
    """The summary's budget line, ``**Budget per network:** 1,536,000 images (2.08 epochs of dSprites, 737,280 images)``.

    experiments/README.md quotes it beside the verdict (:func:`decompvae.reproduce._readme.budget_of`).
    """
    return (f"**Budget per network:** {images:,} images ({images / dataset_images:.2f} epochs of {dataset}, "
            f"{dataset_images:,} images)")
