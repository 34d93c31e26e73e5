"""The report pages: structure on a tiny real run, a hand-made sweep and a reproduce result."""

import csv
import html.parser
import json
import math
import shutil
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from decompvae import report
from decompvae.stats import mean_ci
from _tiny_run import CONFIG_TOML, REPO

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source"}
THEORY = REPO / "experiments" / "results" / "theory-cpu"


class Page(html.parser.HTMLParser):
    """Images, tables (cells with their attributes) and tag balance of an HTML page."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.images, self.tables, self.stack, self.scripts, self.links = [], {}, [], 0, []
        self._table = self._cell = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("script", "iframe") or (tag == "link" and attrs.get("rel") == "stylesheet"):
            self.scripts += 1
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", f"table{len(self.tables)}"), [])
        if tag == "tr" and self._table is not None:
            self._table.append([])
        if tag in ("td", "th") and self._table is not None:
            self._cell = {"text": "", **attrs}
            self._table[-1].append(self._cell)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag == "table":
            self._table = None
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def _parse(path: Path) -> Page:
    page = Page(path.read_text())
    assert page.stack == [], f"unclosed tags: {page.stack}"
    assert page.scripts == 0, "the page must not load scripts or external stylesheets"
    assert not [u for u in page.links if u.startswith(("http:", "https:", "//"))]
    return page


def _assert_figures(page: Page, root: Path):
    """Every image the page shows exists under root (or is inline), and every PNG there is shown."""
    files = {unquote(src) for src in page.images if not src.startswith("data:image/png;base64,")}
    for name in files:
        assert (root / name).is_file(), name
    pngs = {p.relative_to(root).as_posix() for p in root.rglob("*.png")}
    assert pngs == files, f"not shown: {pngs - files}; missing: {files - pngs}"


def _column(table, header):
    index = [c["text"] for c in table[0]].index(header)
    return [row[index] for row in table[1:]]


def _assert_holds(table, rows, columns):
    """The table's cells hold the exact values of ``rows`` (data-value for numbers)."""
    assert len(table) - 1 == len(rows)
    for name in columns:
        for cell_, row in zip(_column(table, name), rows, strict=True):
            expected = row[name]
            if isinstance(expected, float):
                assert float(cell_["data-value"]) == expected or (math.isnan(expected) and "nan" in cell_["text"])
            else:
                assert cell_["text"] == str(expected)


# --------------------------------------------------------------------------- a tiny real run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The reliability tests' tiny pinwheel config with 2 β × 2 seeds, its figures, and its page."""
    from decompvae import runner
    from decompvae.config import load_config

    root = tmp_path_factory.mktemp("report")
    (root / "tiny.toml").write_text(CONFIG_TOML)
    config = load_config(root / "tiny.toml", [f'output_dir="{root / "run"}"', "sweep.seed=[0,1]", "train.steps=20"])
    runner.run(config, progress=False, echo=lambda s: None)
    return root / "run", report.write_report(root / "run")


def test_tiny_run_page_structure(tiny_run):
    run_dir, path = tiny_run
    assert path == run_dir / "report.html"
    page = _parse(path)
    _assert_figures(page, run_dir)
    assert "latents.png" in page.images and "report/curves.png" in page.images
    assert {"report/sweep_eval_loss.png", "report/sweep_eval_recon.png", "report/sweep_eval_kl.png"} <= set(page.images)
    summary = report.read_csv(run_dir / "summary.csv")
    _assert_holds(page.tables["members"], summary, ["eval_loss", "eval_recon", "eval_kl", "eval_regulariser"])
    members = report.read_csv(run_dir / "members.csv")
    _assert_holds(page.tables["members"], members, ["beta", "seed"])
    assert [c["text"] for c in _column(page.tables["members"], "status")] == ["ok"] * 4


def test_tiny_run_page_shows_the_config(tiny_run):
    run_dir, path = tiny_run
    text = path.read_text()
    config = json.loads((run_dir / "config.json").read_text())
    for section in ("data", "model", "train", "sweep", "versions"):
        assert f"<caption>{section}</caption>" in text
    assert f">{config['versions']['jax']}<" in text


# --------------------------------------------------------------------------- a hand-made sweep


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _png(path):
    from matplotlib.figure import Figure

    Figure(figsize=(1, 1)).savefig(path)


@pytest.fixture
def sweep_dir(tmp_path):
    """A 2 β × 2 ν × 3 seeds run directory written by hand; member 5 diverged at step 20."""
    run = tmp_path / "sweep"
    run.mkdir()
    config = {"data": {"name": "dsprites"}, "train": {"steps": 30}, "output_dir": str(run)}
    (run / "config.json").write_text(json.dumps(config))
    grid = [(b, df, s) for b in (1.0, 4.0) for df in (3.0, 9999.0) for s in (0, 1, 2)]
    members = [{"member": i, "beta": b, "alpha": 0.0, "prior.df": df, "learning_rate": 5e-4, "seed": s}
               for i, (b, df, s) in enumerate(grid)]
    _write_csv(run / "members.csv", members)
    rng = np.random.default_rng(0)
    lines, summary = [], []
    for m in members:
        bad = m["member"] == 5
        for step in (10, 20, 30):
            nan = bad and step >= 20
            terms = {k: float("nan") if nan else float(rng.normal()) for k in ("loss", "recon", "kl", "regulariser")}
            lines.append(json.dumps({"step": step, "member": m["member"], **terms, "diverged_at": 20 if nan else -1}))
        summary.append({"member": m["member"], "label": f"beta={m['beta']:g}", "eval_loss": float(rng.normal()),
                        "eval_recon": float(rng.normal()), "eval_kl": float(rng.normal()), "eval_regulariser": 0.0,
                        "diverged_at": 20 if bad else -1})
    (run / "log.jsonl").write_text("\n".join(lines) + "\n" + '{"step": 40, "memb')  # a torn last line
    _write_csv(run / "summary.csv", summary)
    metrics = [{"member": i, "label": "x", "step": 30, "diverged_at": -1, "mig": float(rng.uniform()), "seconds": 1.0}
               for i in range(len(members))]
    (run / "metrics.json").write_text(json.dumps(metrics))
    _png(run / "reconstructions.png")
    _png(run / "traversals.png")
    return run, members, summary, metrics


def test_sweep_page_status_heatmaps_and_metrics(sweep_dir):
    run, _, _, metrics = sweep_dir
    page = _parse(report.write_report(run))
    _assert_figures(page, run)
    statuses = [c["text"] for c in _column(page.tables["members"], "status")]
    assert statuses == ["ok"] * 5 + ["diverged at step 20"] + ["ok"] * 6
    _assert_holds(page.tables["members"], report.read_csv(run / "summary.csv"), ["eval_loss", "eval_kl"])
    headers = [c["text"] for c in page.tables["members"][0]]
    assert headers[:4] == ["member", "beta", "prior.df", "seed"]  # the swept axes, not alpha or lr
    assert "report/sweep_eval_regulariser.png" not in page.images  # 0 for every member
    assert "report/metric_mig.png" in page.images
    (metric_table,) = [t for name, t in page.tables.items() if t[0][0]["text"] == "metric"]
    mig = next(row for row in metric_table if row[0]["text"] == "mig")
    assert [float(c["data-value"]) for c in mig[1:]] == [m["mig"] for m in metrics]


def test_rewriting_removes_stale_figures_and_embed_inlines(sweep_dir):
    run, *_ = sweep_dir
    report.write_report(run)
    (run / "metrics.json").unlink()
    page = _parse(report.write_report(run, embed=True))
    assert not list((run / "report").glob("metric_*.png"))
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert len(page.images) == len(list(run.rglob("*.png")))


def test_unfinished_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"steps": 100}}))
    _write_csv(run / "members.csv", [{"member": 0, "beta": 1.0, "seed": 0}, {"member": 1, "beta": 2.0, "seed": 0}])
    (run / "log.jsonl").write_text(json.dumps({"step": 10, "member": 0, "loss": 1.0, "diverged_at": -1}) + "\n")
    page = _parse(report.write_report(run))
    _assert_figures(page, run)
    assert [c["text"] for c in _column(page.tables["members"], "status")] == ["ok", "—"]
    assert "training has not finished" in (run / "report.html").read_text()


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        report.write_report(tmp_path)


# --------------------------------------------------------------------------- pure helpers


def test_helpers():
    assert report.member_status(-1) == "ok"
    assert report.member_status(120) == "diverged at step 120"
    grid = [(1.0, 0), (1.0, 1), (4.0, 0)]
    members = [{"member": i, "beta": b, "alpha": 0.0, "seed": s} for i, (b, s) in enumerate(grid)]
    assert report.swept_axes(members) == ["beta"]
    groups = report.group_over_seeds(members, {0: 1.0, 1: 3.0, 2: float("nan")}, ["beta"])
    assert groups == {(1.0,): [1.0, 3.0]}
    mean, half, n = mean_ci([1.0, 3.0])  # the one interval, decompvae.stats
    assert (mean, n) == (2.0, 2) and half == pytest.approx(12.7062047)  # t_{0.975,1}·sd/√n with sd = √2, n = 2
    assert math.isnan(mean_ci([1.0])[1])
    assert report.cell(0.123456789) == '<td class="num" data-value="0.123456789" title="0.123456789">0.1235</td>'
    assert report.cell("<b>") == "<td>&lt;b&gt;</td>"


# --------------------------------------------------------------------------- a reproduce result


@pytest.fixture
def theory_dir(tmp_path):
    if not (THEORY / "summary.md").is_file():
        pytest.skip("experiments/results/theory-cpu is not in this checkout")
    return Path(shutil.copytree(THEORY, tmp_path / "theory-cpu", ignore=shutil.ignore_patterns("report.html")))


def test_reproduce_page(theory_dir):
    path = report.write_reproduce_report(theory_dir)
    assert path == theory_dir / "report.html"
    page = _parse(path)
    _assert_figures(page, theory_dir)
    text = path.read_text()
    pytest.importorskip("markdown")
    assert "<h1>Theory: L_β under rotations" in text and "<strong>Finding (reproduced):</strong>" in text
    for csv_path in sorted(theory_dir.glob("*.csv")):
        with open(csv_path, newline="") as f:
            raw = list(csv.DictReader(f))
        table = next(t for t in page.tables.values() if [c["text"] for c in t[0]] == list(raw[0]))
        assert len(table) - 1 == len(raw)
        for row, cells in zip(raw, table[1:], strict=True):
            assert [c.get("data-value", c["text"]) for c in cells] == [_canonical(v) for v in row.values()]


def _canonical(text):
    """A CSV cell as the page's data-value holds it (Python's repr of the parsed number)."""
    value = report._parse_cell(text)
    return repr(value) if isinstance(value, float) else str(value)


def test_reproduce_page_without_summary(tmp_path):
    with pytest.raises(FileNotFoundError, match="summary.md"):
        report.write_reproduce_report(tmp_path)


def test_write_page_chooses_the_kind(theory_dir, sweep_dir, tmp_path):
    assert report.write_page(theory_dir) == theory_dir / "report.html"
    assert report.write_page(sweep_dir[0]) == sweep_dir[0] / "report.html"
    assert "<caption>train</caption>" in (sweep_dir[0] / "report.html").read_text()
    with pytest.raises(FileNotFoundError, match="neither config.json"):
        report.write_page(tmp_path / "empty")
