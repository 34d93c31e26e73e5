"""Training curves of the experiments' networks: read from a run's evaluations, written and drawn per group.

A run with ``train.eval_every`` writes ``curves.jsonl`` (:mod:`decompvae.curves`); each experiment row then
carries its network's curve (``row["curve"]``: one point per evaluation, ``images_seen`` first), so the
summary shows whether the networks had stopped improving when training ended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from decompvae.curves import read_curves
from decompvae.reproduce._common import pyplot, write_csv

__all__ = ["COLUMNS", "PANELS", "curve_figure", "curve_rows", "curve_series", "group_styles", "member_curves", "without_curves",
           "write_curves"]

#: What each curve point holds after ``images_seen``.
COLUMNS = ("recon", "kl", "mig", "factor_vae_dlib", "active_dims")


def member_curves(result, columns: Sequence[str] = COLUMNS) -> dict[int, list[dict]]:
    """``{grid index: [{"images_seen", *columns}]}`` of a RunResult's members ({} when it logged no curves)."""
    curves = read_curves(result.output_dir)
    local = {grid: i for i, grid in enumerate(result.setup.member_indices)}
    return {grid: [{"images_seen": r["images"], **{k: r[k] for k in columns}} for r in curves if r["member"] == i]
            for grid, i in local.items()} if curves else {}


def curve_rows(rows: Sequence[dict], keys: Sequence[str]) -> list[dict]:
    """One row per network and evaluation: the network's ``keys`` columns, then the curve point."""
    return [{k: r[k] for k in keys} | point for r in rows for point in r.get("curve", ())]


def without_curves(rows: Sequence[dict]) -> list[dict]:
    """The rows without their ``curve`` entries: the final scores that go to metrics.csv and groups.csv."""
    return [{k: v for k, v in r.items() if k != "curve"} for r in rows]


def curve_series(rows: Sequence[dict], keys: Sequence[str], metric: str) -> dict:
    """``{group key: (images [E], mean over seeds [E])}``, groups by the ``keys`` columns in first-seen order."""
    series: dict = {}
    for r in rows:
        series.setdefault(tuple(r[k] for k in keys), {}).setdefault(r["images_seen"], []).append(r[metric])
    return {k: (np.array(sorted(v)), np.array([np.mean(v[x]) for x in sorted(v)])) for k, v in series.items()}


#: Line styles of the groups that share a colour (the same first key), in first-seen order.
LINESTYLES = ("-", "--", ":", "-.")

#: Panels drawn from the first evaluation after step 0: the untrained network's reconstruction (about
#: −3,000 nats on dSprites) would flatten every trained curve.
FROM_FIRST_EVALUATION = ("recon",)


def group_styles(groups: Sequence[tuple]) -> dict[tuple, tuple[int, str]]:
    """``{group: (colour index, line style)}``: one colour per first key, one line style per group within it.

    With ``groups`` keyed (method, value), every method keeps its colour and its values differ by line style,
    so twenty groups stay distinguishable with ten colours.
    """
    by_first: dict = {}
    for g in dict.fromkeys(groups):
        by_first.setdefault(g[0], []).append(g)
    return {g: (colour, LINESTYLES[n % len(LINESTYLES)])
            for colour, members in enumerate(by_first.values()) for n, g in enumerate(members)}


def curve_figure(path: Path, rows: Sequence[dict], keys: Sequence[str], panels: dict[str, str],
                 label: Callable[[tuple], str]) -> None:
    """One panel per metric against images seen (millions): the mean over seeds of each group, named by ``label``.

    Groups share a colour by their first key and differ by line style (:func:`group_styles`); the legend sits
    beside the panels; the panels in :data:`FROM_FIRST_EVALUATION` leave out the untrained point.
    """
    plt = pyplot()
    series = {metric: curve_series(rows, keys, metric) for metric in panels}
    styles = group_styles(list(next(iter(series.values()))))
    cmap = plt.get_cmap("tab10" if max(c for c, _ in styles.values()) < 10 else "tab20")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels) + 2.6, 3.8), squeeze=False)
    for ax, (metric, ylabel) in zip(axes[0], panels.items()):
        for key, (x, mean) in series[metric].items():
            keep = x > 0 if metric in FROM_FIRST_EVALUATION else np.ones_like(x, dtype=bool)
            colour, style = styles[key]
            ax.plot(x[keep] / 1e6, mean[keep], style, marker="o", ms=3, color=cmap(colour % cmap.N), label=label(key))
        ax.set(xlabel="images seen (millions)", ylabel=ylabel)
        if metric in FROM_FIRST_EVALUATION:
            ax.set_title("from the first evaluation after step 0", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.suptitle("training curves (mean over seeds; train.eval_every)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


#: The panels of an experiment's curve figure.
PANELS = {"mig": "MIG (dlib)", "factor_vae_dlib": "FactorVAE (dlib)", "recon": "recon (nats)"}


def write_curves(results_dir: Path, rows: Sequence[dict], keys: Sequence[str]) -> list[str]:
    """curves.csv and curves.png of the rows that carry curves, grouped by ``keys``; the summary's lines about them.

    Returns ``[]`` (and writes nothing) when no row has a curve (a profile without ``eval_every``).
    """
    points = curve_rows([r for r in rows if r.get("curve")], [*keys, "seed"])
    if not points:
        return []
    write_csv(results_dir / "curves.csv", points)
    curve_figure(results_dir / "curves.png", points, keys, PANELS,
                 lambda key: ", ".join(f"{k} = {v:g}" if isinstance(v, float) else str(v) for k, v in zip(keys, key)))
    return ["", "Training curves (every network evaluated along the way; the mean over seeds per group; one row "
            "per network and evaluation in curves.csv):", "", "![curves](curves.png)"]
