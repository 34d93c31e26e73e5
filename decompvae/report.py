"""A self-contained HTML page per run directory and per reproduce result.

:func:`write_report` reads what :func:`decompvae.runner.run` and ``decompvae
evaluate`` leave in a run directory and writes ``RUN_DIR/report.html``:

* the members with their swept hyperparameters, status (ok / diverged at
  step k) and held-out terms (``summary.csv``);
* training curves of every logged term per member (``log.jsonl``);
* for sweeps, one figure per held-out measure over the swept axes: curves
  against the axis with 95% t intervals over seeds (where there are several),
  a heatmap when two axes vary;
* the metrics of ``metrics.json`` (after ``decompvae evaluate``), with the
  same sweep figures;
* the run's own figures (reconstructions, traversals, latents) and its
  configuration.

:func:`write_reproduce_report` writes ``report.html`` beside a reproduce
result's ``summary.md``: the summary rendered from markdown, every figure and
every CSV table.

The pages open offline from disk: no server, no scripts, no network. Figures
drawn for the page go to ``RUN_DIR/report/`` and are linked relatively (the
directory moves as a whole); ``embed=True`` inlines every image as a data URI
instead, for a page that travels alone. The HTML is built by small pure
functions from the data; only :func:`write_report`,
:func:`write_reproduce_report` and the figure functions touch files.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence
from urllib.parse import quote

import markdown
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure  # no pyplot: no global state, no backend switch

from decompvae.outputs import CURVE_FILE, CURVE_META, ESTIMATES_FILE, read_jsonl
from decompvae.regularisers import current_column, current_columns
from decompvae.rundir import write_text_atomic
from decompvae.stats import mean_ci

__all__ = [
    "REPORT_FILE",
    "RunData",
    "read_run",
    "member_status",
    "read_csv",
    "swept_axes",
    "write_page",
    "write_report",
    "write_reproduce_report",
]

#: The page's file name, in the run or result directory.
REPORT_FILE = "report.html"
#: Subdirectory of a run directory for the figures drawn for the page.
FIGURE_DIR = "report"
#: Columns of a ``log.jsonl`` row that are not curves.
LOG_META = ("step", "member", "diverged_at")
#: Member columns that are never a swept axis of the sweep figures.
NOT_AXES = ("member", "grid_member", "label", "seed")
#: Columns of a ``metrics.json`` row that are not metrics.
METRIC_META = ("member", "grid_member", "label", "step", "diverged_at", "seconds")
#: CSV tables longer than this are shown folded (``<details>``).
FOLD_ROWS = 40

_TERM_TITLES = {
    "loss": "loss (minimised)",
    "recon": "recon: E log p(x|z)",
    "kl": "KL(q(z|x) ‖ p(z))",
    "regulariser": "D(q(z), p(z))",
}


# --------------------------------------------------------------------------- reading


class RunData(NamedTuple):
    """What a run directory holds, as plain Python values.

    Attributes:
      config: ``config.json`` (with ``versions``).
      members: one dict per member (``members.json`` or ``members.csv``).
      log: the rows of ``log.jsonl`` (a torn last line is skipped).
      summary: the held-out table (``summary.json`` or ``summary.csv``);
        ``[]`` until training has finished.
      metrics: ``metrics.json`` rows; ``[]`` before ``decompvae evaluate``.
      images: the run's own PNG files (names in the run directory).
      curves: the rows of ``curves.jsonl`` (``train.eval_every``; :mod:`decompvae.curves`).
      estimates: ``estimates.json``: what logged regulariser columns hold, by column.
    """

    config: dict
    members: list[dict]
    log: list[dict]
    summary: list[dict]
    metrics: list[dict]
    images: list[str]
    curves: Sequence[dict] = ()
    estimates: dict | None = None


def _parse_cell(text: str) -> Any:
    """A CSV cell as int, float, None (empty) or the string itself."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: str | Path, *, parse: bool = True) -> list[dict]:
    """Rows of a CSV file, columns under today's names (:func:`decompvae.regularisers.current_column`):
    with numbers parsed (``""`` becomes None), or with ``parse=False`` every cell as written (a file that is
    read to be written back unchanged)."""
    cell = _parse_cell if parse else str
    with open(path, newline="") as f:
        return [{current_column(k): cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _read_table(run_dir: Path, stem: str) -> list[dict]:
    """``<stem>.json`` (a list of objects) if present, else ``<stem>.csv``, else []."""
    if (run_dir / f"{stem}.json").is_file():
        return [current_columns(row) for row in json.loads((run_dir / f"{stem}.json").read_text())]
    if (run_dir / f"{stem}.csv").is_file():
        return read_csv(run_dir / f"{stem}.csv")
    return []


def read_run(run_dir: str | Path) -> RunData:
    """Read a run directory's files (see :class:`RunData`); only ``config.json`` is required.

    The trained networks themselves are restored by :func:`decompvae.evaluate.load_run`.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir / 'config.json'} not found: is {run_dir} the output_dir of a decompvae run?")
    metrics = run_dir / "metrics.json"
    return RunData(
        config=json.loads((run_dir / "config.json").read_text()),
        members=_read_table(run_dir, "members"),
        log=read_jsonl(run_dir / "log.jsonl"),
        summary=_read_table(run_dir, "summary"),
        metrics=json.loads(metrics.read_text()) if metrics.is_file() else [],
        images=sorted(p.name for p in run_dir.glob("*.png")),
        curves=read_jsonl(run_dir / CURVE_FILE),
        estimates=_read_estimates(run_dir / ESTIMATES_FILE),
    )


def _read_estimates(path: Path) -> dict | None:
    """``estimates.json`` by column (today's names), or None without one."""
    return current_columns(json.loads(path.read_text())) if path.is_file() else None


# --------------------------------------------------------------------------- the data behind the page


def member_status(diverged_at: int | None) -> str:
    """``"ok"``, ``"diverged at step k"`` or ``"—"`` (unknown: nothing logged yet)."""
    if diverged_at is None:
        return "—"
    return "ok" if diverged_at < 0 else f"diverged at step {diverged_at}"


def diverged_steps(data: RunData) -> list[int | None]:
    """Per member: the step it diverged at, −1 if it did not, None if unknown.

    From the summary when training finished, else the member's last log row.
    """
    last: dict[int, int] = {}
    for row in data.log:
        last[row["member"]] = row.get("diverged_at", -1)
    by_summary = {row["member"]: row.get("diverged_at") for row in data.summary}
    return [by_summary.get(i, last.get(i)) for i in range(len(data.members))]


def swept_axes(members: Sequence[dict]) -> list[str]:
    """Member columns (seed aside) that take more than one value, in column order."""
    names = [k for k in (members[0] if members else {}) if k not in NOT_AXES]
    return [k for k in names if len({_key(m.get(k)) for m in members}) > 1]


def _key(value: Any) -> Any:
    return round(value, 12) if isinstance(value, float) else value


def short_label(member: dict, axes: Sequence[str], index: int) -> str:
    """``m<i>`` and the member's values on the swept axes and seed, e.g. ``m2 beta=4 seed=1``."""
    parts = [f"m{index}"] + [f"{k}={_fmt(member[k])}" for k in (*axes, "seed") if k in member]
    return " ".join(parts)


def measure_values(rows: Sequence[dict], skip: Iterable[str]) -> dict[str, dict[int, float]]:
    """``{measure: {member: value}}`` of the numeric columns of ``rows`` not in ``skip``."""
    skip = set(skip)
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        for k, v in row.items():
            if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(k, {})[row["member"]] = float(v)
    return out


def group_over_seeds(
    members: Sequence[dict], values: dict[int, float], axes: Sequence[str], exclude: Iterable[int] = ()
) -> dict[tuple, list[float]]:
    """Finite values grouped by the members' values on ``axes`` (sorted keys)."""
    exclude = set(exclude)
    groups: dict[tuple, list[float]] = {}
    for i, member in enumerate(members):
        if i in values and i not in exclude and math.isfinite(values[i]):
            groups.setdefault(tuple(member[a] for a in axes), []).append(values[i])
    return dict(sorted(groups.items(), key=lambda kv: tuple(map(_sort_key, kv[0]))))


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


# --------------------------------------------------------------------------- figures


def _figure(width: float, height: float):
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    return [cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)]


def curves_figure(log: Sequence[dict], labels: Sequence[str], path: Path) -> tuple[Path, list[str]] | None:
    """One panel per logged term, one line per member; × marks where a member diverged.

    Returns:
      ``(path, terms left out because they are 0 throughout)``, or None with no log.
    """
    terms = [k for k in (log[0] if log else {}) if k not in LOG_META]
    flat = [k for k in terms if all(row.get(k) == 0 for row in log)]
    terms = [k for k in terms if k not in flat]
    if not terms:
        return None
    fig, axes = _panels(len(terms), 2, (5.6, 3.1), len(labels))
    colours = _colours(len(labels))
    for ax, term in zip(axes, terms):
        for i, label in enumerate(labels):
            _member_curve(ax, [r for r in log if r["member"] == i], term, colours[i], label)
        _style(ax, term, "step")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=min(len(labels), 4), fontsize=8)
    return _save(fig, path), flat


def _panels(count: int, most_cols: int, size: tuple[float, float], legend_entries: int):
    """A figure of ``count`` panels, at most ``most_cols`` a row, room below for a legend; the unused ones hidden."""
    cols = min(count, most_cols)
    rows = math.ceil(count / cols)
    fig = _figure(size[0] * cols, size[1] * rows + 0.25 * math.ceil(legend_entries / 4) + 0.3)
    panels = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in panels[count:]:
        ax.set_visible(False)
    return fig, panels[:count]


def _style(ax, term: str, xlabel: str) -> None:
    """A curve panel's title (the term's), x label, ticks and grid."""
    ax.set_title(_TERM_TITLES.get(term, term), fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def _member_curve(ax, rows: Sequence[dict], term: str, colour, label: str) -> None:
    steps = np.array([r["step"] for r in rows])
    values = np.array([np.nan if r.get(term) is None else r[term] for r in rows], np.float64)
    ax.plot(steps, values, color=colour, label=label, lw=1.4)
    bad = [r["step"] for r in rows if r.get("diverged_at", -1) >= 0]
    finite = np.isfinite(values)
    if bad and finite.any():
        ax.plot([steps[finite][-1]], [values[finite][-1]], "x", color=colour, ms=9, mew=2)


def metric_curves_figure(curves: Sequence[dict], members: Sequence[dict], labels: Sequence[str],
                         path: Path) -> Path | None:
    """Each measure of ``curves.jsonl`` against the images seen: a thin line per member, and for each
    group of members that differ only in their seed the mean with its 95% t band.

    Returns:
      The figure's path, or None without curve rows.
    """
    measures = list(dict.fromkeys(k for r in curves for k in r if k not in CURVE_META))
    if not curves or not measures:
        return None
    axes = swept_axes(members)
    groups: dict[tuple, list[int]] = {}
    for i, member in enumerate(members):
        groups.setdefault(tuple(member.get(a) for a in axes), []).append(i)
    fig, panels = _panels(len(measures), 3, (4.4, 3.0), len(labels))
    colours = _colours(len(groups))
    for ax, measure in zip(panels, measures):
        for colour, (key, indices) in zip(colours, groups.items()):
            _group_curves(ax, curves, measure, indices, colour, [labels[i] for i in indices],
                          " ".join(f"{a}={_fmt(v)}" for a, v in zip(axes, key)) or "all members")
        _style(ax, measure, "images seen")
    fig.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncol=min(len(groups), 4), fontsize=8)
    return _save(fig, path)


def _group_curves(ax, curves: Sequence[dict], measure: str, indices: Sequence[int], colour, labels, name: str) -> None:
    """One group's members (thin lines) and, with two or more, their mean and 95% t band per evaluation."""
    for i, label in zip(indices, labels):
        rows = [r for r in curves if r["member"] == i and r.get(measure) is not None]
        ax.plot([r["images"] for r in rows], [r[measure] for r in rows], color=colour, lw=0.8, alpha=0.45,
                label=name if len(indices) == 1 else None)
    if len(indices) < 2:
        return
    by_images: dict[int, list[float]] = {}
    for r in curves:
        if r["member"] in indices and r.get(measure) is not None and math.isfinite(r[measure]):
            by_images.setdefault(r["images"], []).append(r[measure])
    x = np.array(sorted(by_images), np.float64)
    mean, half = np.array([mean_ci(by_images[int(v)])[:2] for v in x]).T
    ax.plot(x, mean, color=colour, lw=1.8, label=f"{name} (mean of {len(indices)} seeds, 95% band)")
    ax.fill_between(x, mean - np.nan_to_num(half), mean + np.nan_to_num(half), color=colour, alpha=0.18, lw=0)


def sweep_figure(
    measure: str, groups: dict[tuple, list[float]], axes: Sequence[str], path: Path
) -> Path | None:
    """A held-out measure over the swept axes: curves (1 or ≥ 3 axes) or a heatmap (2 axes).

    Points are means over seeds with 95% t intervals where a group has two or
    more finite values.
    """
    if not groups or not axes:
        return None
    fig = _figure(4.6, 3.4)
    ax = fig.subplots()
    if len(axes) == 2:
        _heatmap(fig, ax, groups, axes)
    else:
        _curves(ax, groups, axes)
    n = max(len(v) for v in groups.values())
    ax.set_title(measure + (f" (mean ± 95% CI, {n} seeds)" if n > 1 else ""), fontsize=9)
    return _save(fig, path)


def _curves(ax, groups: dict[tuple, list[float]], axes: Sequence[str]) -> None:
    """Curves against ``axes[0]``, one series per value of the other axes."""
    series: dict[tuple, list[tuple[float, float, float]]] = {}
    for key, values in groups.items():
        mean, half, _ = mean_ci(values)
        series.setdefault(key[1:], []).append((key[0], mean, half))
    xs = sorted({float(k[0]) for k in groups})
    for rest, points in series.items():
        x, mean, half = map(np.asarray, zip(*points))
        label = " ".join(f"{a}={_fmt(v)}" for a, v in zip(axes[1:], rest, strict=True)) or None
        ax.errorbar(x, mean, yerr=np.where(np.isfinite(half), half, 0), marker="o", capsize=3, lw=1.4, label=label)
    if xs[0] > 0 and xs[-1] / xs[0] >= 8:
        ax.set_xscale("log")
    ax.set_xticks(xs, [_fmt(x) for x in xs], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(axes[0], fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)


def _heatmap(fig, ax, groups: dict[tuple, list[float]], axes: Sequence[str]) -> None:
    """Means on a grid of the two axes, each cell annotated with mean (± half-width)."""
    rows = sorted({k[0] for k in groups}, key=_sort_key)
    cols = sorted({k[1] for k in groups}, key=_sort_key)
    grid = np.full((len(rows), len(cols)), np.nan)
    texts = {}
    for (r, c), values in groups.items():
        mean, half, _ = mean_ci(values)
        grid[rows.index(r), cols.index(c)] = mean
        texts[rows.index(r), cols.index(c)] = _fmt(mean) + ("" if math.isnan(half) else f"\n± {_fmt(half, 2)}")
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower", vmin=np.nanmin(grid), vmax=np.nanmax(grid))
    for (r, c), text in texts.items():
        red, green, blue, _ = image.cmap(image.norm(grid[r, c]))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.55
        ax.text(c, r, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    fig.colorbar(image, ax=ax, shrink=0.9).ax.tick_params(labelsize=7)
    ax.set_xticks(range(len(cols)), [_fmt(c) for c in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), [_fmt(r) for r in rows], fontsize=8)
    ax.set_xlabel(axes[1], fontsize=9)
    ax.set_ylabel(axes[0], fontsize=9)


class PageFigures(NamedTuple):
    """The figures drawn for a run's page (paths in ``RUN_DIR/report/``)."""

    curves: Path | None
    flat_terms: list[str]  # logged terms that are 0 throughout (not drawn)
    held_out: list[Path]  # one per held-out measure of the summary
    metrics: list[Path]  # one per metric of metrics.json
    metric_curves: Path | None = None  # curves.jsonl's measures against the images seen


def draw_figures(data: RunData, out: Path) -> PageFigures:
    """Draw the page's figures into ``out``, first removing the PNGs a previous page left there."""
    for old in out.glob("*.png"):
        old.unlink()
    axes = swept_axes(data.members)
    labels = [short_label(m, axes, i) for i, m in enumerate(data.members)]
    drawn = curves_figure(data.log, labels, out / "curves.png") if data.members else None
    bad = {i for i, s in enumerate(diverged_steps(data)) if s is not None and s >= 0}

    def per_measure(rows: Sequence[dict], skip: Iterable[str], prefix: str) -> list[Path]:
        found = []
        for measure, values in measure_values(rows, skip).items():
            if len(set(values.values())) < 2:  # the same for every member (0 without a regulariser)
                continue
            groups = group_over_seeds(data.members, values, axes, exclude=bad)
            found.append(sweep_figure(measure, groups, axes, out / f"{prefix}{_file_safe(measure)}.png"))
        return [p for p in found if p is not None]

    return PageFigures(
        curves=drawn[0] if drawn else None,
        flat_terms=drawn[1] if drawn else [],
        held_out=per_measure(data.summary, LOG_META + NOT_AXES, "sweep_"),
        metrics=per_measure(data.metrics, METRIC_META, "metric_"),
        metric_curves=metric_curves_figure(data.curves, data.members, labels, out / "metric_curves.png")
        if data.members else None,
    )


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# --------------------------------------------------------------------------- HTML pieces (pure)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;line-height:1.45;
     max-width:1180px;margin:0 auto;padding:1.2rem 1.5rem 3rem}
h1{font-size:1.55rem;margin:.2rem 0 .3rem} h2{font-size:1.2rem;border-bottom:1px solid #ddd;
   padding-bottom:.2rem;margin-top:2rem} h3{font-size:1rem}
p.meta{color:#555;margin:.1rem 0}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}
th,td{border:1px solid #d8d8d8;padding:.2rem .55rem;vertical-align:top}
th{background:#f3f4f6;text-align:left;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:nth-child(even) td{background:#fafafa}
.bad{color:#b00020;font-weight:600} .ok{color:#1b7f3b}
.scroll{overflow-x:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem}
.wide{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1rem;align-items:start}
figure{margin:.4rem 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
img{max-width:100%;height:auto}
figcaption{font-size:.8rem;color:#555}
.config{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.config table{margin:0} .config caption{text-align:left;font-weight:600;padding:.2rem 0}
pre,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
details summary{cursor:pointer;margin:.4rem 0}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    """Numbers to ``digits`` significant digits (``:g``); everything else as ``str``."""
    if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
        return "" if value is None else str(value)
    return f"{value:.{digits}g}"


def cell(value: Any, tag: str = "td") -> str:
    """One table cell; a number keeps its exact value in ``data-value`` (and a tooltip)."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        exact = html.escape(repr(value) if isinstance(value, float) else str(value))
        return f'<{tag} class="num" data-value="{exact}" title="{exact}">{html.escape(_fmt(value))}</{tag}>'
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value)
    return f"<{tag}>{html.escape('' if value is None else str(value))}</{tag}>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table; numbers formatted by :func:`cell`; wrapped to scroll sideways."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def image_src(path: Path, root: Path, embed: bool = False) -> str:
    """``path`` relative to ``root`` (URL-quoted), or a ``data:image/png;base64`` URI."""
    if embed:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return quote(path.relative_to(root).as_posix())


def figure_html(src: str, caption: str = "", alt: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt or caption)}" loading="lazy">{cap}</figure>'


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    ident = f' id="{anchor}"' if anchor else ""
    return f"<section{ident}><h2>{html.escape(title)}</h2>{''.join(parts)}</section>"


def page(title: str, body: Sequence[str], subtitle: str = "") -> str:
    """A complete HTML document with the inline stylesheet (no external resources)."""
    sub = f'<p class="meta">{subtitle}</p>' if subtitle else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{sub}{''.join(body)}</body></html>\n"
    )


def status_cell(status: str) -> str:
    kind = "ok" if status == "ok" else "bad" if status.startswith("diverged") else ""
    return f'<td class="{kind}">{html.escape(status)}</td>'


def members_table(data: RunData) -> str:
    """Members × (swept values, seed, status, held-out terms of the summary)."""
    axes = swept_axes(data.members)
    shown = [*axes, *(["seed"] if any("seed" in m for m in data.members) else [])]
    summary = {row["member"]: row for row in data.summary}
    terms = [k for k in (data.summary[0] if data.summary else {}) if k not in (*LOG_META, *NOT_AXES)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["member", *shown, "status", *terms])
    rows = []
    for i, (member, at) in enumerate(zip(data.members, diverged_steps(data), strict=True)):
        values = [cell(i), *(cell(member.get(k)) for k in shown), status_cell(member_status(at))]
        values += [cell(summary.get(i, {}).get(k)) for k in terms]
        rows.append("<tr>" + "".join(values) + "</tr>")
    return (f'<div class="scroll"><table id="members"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def metrics_table(metrics: Sequence[dict]) -> str:
    """Metrics × members (the layout of ``decompvae evaluate``'s table)."""
    names = list(dict.fromkeys(k for m in metrics for k in m if k not in ("member", "label")))  # UDR: some members
    rows = [[name, *(m.get(name) for m in metrics)] for name in names]
    return table(["metric", *(f"m{m['member']}" for m in metrics)], rows)


def config_tables(config: dict) -> str:
    """One small key/value table per config section (and ``versions``)."""
    top = {k: v for k, v in config.items() if not isinstance(v, dict)}
    sections = {"run": top} if top else {}
    sections.update({k: v for k, v in config.items() if isinstance(v, dict)})
    parts = [table(["key", "value"], [[k, _config_value(v)] for k, v in entries.items()], name)
             for name, entries in sections.items()]
    return f'<div class="config">{"".join(parts)}</div>'


def _config_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list, tuple)) else value


# --------------------------------------------------------------------------- the run page


def run_page(data: RunData, figures: PageFigures, root: Path, embed: bool = False) -> str:
    """The run's page from its data and drawn figures (``root``: the run directory)."""
    src = lambda p: image_src(p, root, embed)  # noqa: E731
    body = [section("Members", members_table(data), _held_out_note(data), _estimates_note(data), anchor="members")]
    if figures.curves:
        note = f"Not drawn (0 throughout): {', '.join(figures.flat_terms)}." if figures.flat_terms else ""
        caption = ("Training curves per member (means over each logged chunk); "
                   "× marks a diverged member's last finite value. " + note)
        body.append(section("Training curves", figure_html(src(figures.curves), caption), anchor="curves"))
    if figures.metric_curves:
        every = data.config.get("train", {}).get("eval_every")
        caption = (f"Every member evaluated every {every} steps (train.eval_every; curves.jsonl) on one fixed sample "
                   "per member, against the images seen: thin lines are members, thick lines and bands the mean "
                   "and 95% t interval of the members that differ only in their seed.")
        body.append(section("Metrics during training", figure_html(src(figures.metric_curves), caption),
                            anchor="metric-curves"))
    if figures.held_out:
        body.append(section("Held-out terms over the sweep", _grid(figures.held_out, src), anchor="sweep"))
    if data.metrics:
        grid = _grid(figures.metrics, src) if figures.metrics else ""
        body.append(section("Metrics (decompvae evaluate)", metrics_table(data.metrics), grid, anchor="metrics"))
    if data.images:
        shots = [figure_html(src(root / name), name) for name in data.images]
        body.append(section("Figures", f'<div class="wide">{"".join(shots)}</div>', anchor="figures"))
    body.append(section("Configuration", config_tables(data.config), anchor="config"))
    return page(f"decompvae run: {root.name}", body, html.escape(_subtitle(data, root)))


def _estimates_note(data: RunData) -> str:
    """What the logged regulariser columns estimate (``estimates.json``), as a list; empty without notes."""
    if not data.estimates:
        return ""
    items = "".join(f"<li><code>{html.escape(c)}</code> (and <code>eval_{html.escape(c)}</code>): "
                    f"{html.escape(note)}</li>" for c, note in data.estimates.items())
    return f'<p class="meta">What the logged regulariser values are:</p><ul>{items}</ul>'


def _grid(paths: Sequence[Path], src) -> str:
    return f'<div class="grid">{"".join(figure_html(src(p), alt=p.stem) for p in paths)}</div>'


def _held_out_note(data: RunData) -> str:
    if data.summary:
        return ('<p class="meta">Held-out terms (summary.csv): eval_loss is minimised; '
                "diverged members are left out of the sweep figures.</p>")
    return '<p class="meta">No summary yet: training has not finished (statuses from the last log lines).</p>'


def _subtitle(data: RunData, root: Path) -> str:
    steps = data.config.get("train", {}).get("steps")
    done = max((r["step"] for r in data.log), default=0)
    bad = sum(1 for s in diverged_steps(data) if s is not None and s >= 0)
    model = data.config.get("model", {})
    return (f"{root} · {len(data.members)} member(s), {bad} diverged · step {done} of {steps} · "
            f"data {data.config.get('data', {}).get('name')}, network {model.get('network')}, "
            f"prior {model.get('prior')}, regulariser {model.get('regulariser')}")


def write_report(run_dir: str | Path, *, embed: bool = False) -> Path:
    """Write ``run_dir/report.html`` (figures in ``run_dir/report/``) and return its path.

    Args:
      run_dir: a run's output directory (holds ``config.json``).
      embed: inline every image as a data URI (one file that travels alone).

    Returns:
      The page's path.
    """
    run_dir = Path(run_dir)
    data = read_run(run_dir)
    figures = draw_figures(data, run_dir / FIGURE_DIR)
    path = run_dir / REPORT_FILE
    write_text_atomic(path, run_page(data, figures, run_dir, embed))
    return path


# --------------------------------------------------------------------------- the reproduce page


def markdown_html(text: str) -> str:
    """Markdown to HTML with the ``markdown`` package (tables, fenced code)."""
    return markdown.markdown(text, extensions=["tables", "fenced_code"])


_SRC = re.compile(r'(<img[^>]*\bsrc=")([^"]+)(")')


def referenced_images(fragment: str) -> list[str]:
    """The ``src`` of every ``<img>`` in an HTML fragment."""
    return [m.group(2) for m in _SRC.finditer(fragment)]


def _embed_images(fragment: str, root: Path) -> str:
    """Replace the ``src`` of local PNGs in ``fragment`` by data URIs."""
    def inline(m: re.Match) -> str:
        path = root / m.group(2)
        return m.group(1) + image_src(path, root, True) + m.group(3) if path.is_file() else m.group(0)

    return _SRC.sub(inline, fragment)


def csv_section(path: Path) -> str:
    """A CSV file as a table (folded when longer than :data:`FOLD_ROWS`)."""
    rows = read_csv(path)
    headers = list(rows[0]) if rows else []
    body = table(headers, ([row[h] for h in headers] for row in rows))
    label = f"{path.name} ({len(rows)} rows)"
    if len(rows) > FOLD_ROWS:
        return f"<h3>{html.escape(path.name)}</h3><details><summary>{html.escape(label)}</summary>{body}</details>"
    return f"<h3>{html.escape(label)}</h3>{body}"


def reproduce_page(result_dir: Path, summary: str, embed: bool = False) -> str:
    """The page of a reproduce result: summary.md, figures not shown in it, every CSV."""
    rendered = markdown_html(summary)
    shown = set(referenced_images(rendered))
    body = [f'<section id="summary">{rendered}</section>']
    extra = [p for p in sorted(result_dir.glob("*.png")) if p.name not in shown]
    if extra:
        shots = "".join(figure_html(image_src(p, result_dir), p.name) for p in extra)
        body.append(section("Figures", f'<div class="wide">{shots}</div>', anchor="figures"))
    tables = [csv_section(p) for p in sorted(result_dir.glob("*.csv"))]
    if tables:
        body.append(section("Tables", *tables, anchor="tables"))
    body = [_embed_images(part, result_dir) if embed else part for part in body]
    note = f"{result_dir}: summary.md, every figure and every CSV table of the result"
    return page(f"decompvae reproduce: {result_dir.name}", body, html.escape(note))


def write_reproduce_report(result_dir: str | Path, *, embed: bool = False) -> Path:
    """Write ``report.html`` beside a reproduce result's ``summary.md`` and return its path.

    Args:
      result_dir: a reproduce results folder (``summary.md``, CSVs, PNGs).
      embed: inline every image as a data URI.

    Returns:
      The page's path.
    """
    result_dir = Path(result_dir)
    summary = result_dir / "summary.md"
    if not summary.is_file():
        raise FileNotFoundError(f"{summary} not found: is {result_dir} a decompvae reproduce result?")
    path = result_dir / REPORT_FILE
    write_text_atomic(path, reproduce_page(result_dir, summary.read_text(), embed))
    return path


def write_page(path: str | Path, *, embed: bool = False) -> Path:
    """The page of a run directory (``config.json``) or of a reproduce result (``summary.md``).

    What ``decompvae report PATH`` calls.

    Raises:
      FileNotFoundError: ``path`` holds neither.
    """
    path = Path(path)
    if (path / "config.json").is_file():
        return write_report(path, embed=embed)
    if (path / "summary.md").is_file():
        return write_reproduce_report(path, embed=embed)
    raise FileNotFoundError(f"{path} holds neither config.json (a run) nor summary.md (a reproduce result)")
