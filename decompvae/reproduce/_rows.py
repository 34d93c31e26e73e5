"""Each training program's rows, stored as it finishes, per shard; gathered for the summary.

An experiment trains one or more *programs* (one vmapped sweep each, named
by its variant) and evaluates each into rows, one per network. With
``--shard I/N`` a program trains only its grid members I, I + N, … (see
:func:`decompvae.runner.shard_config`), so N jobs share the experiment. The
rows of one program and shard are written, as soon as they exist, to

    <results>/rows/<variant>.json                      # unsharded (N = 1)
    <results>/rows/<variant>.shard-<I>-of-<N>.json     # shard I of N

with the program's *fingerprint* (its config without the output directory,
and the profile's settings). Fingerprints are compared with their configs
read as this release reads them (:meth:`decompvae.config.Config.from_dict`,
deprecated keys included), so a renamed config key or a new key with its
default leaves committed rows valid. A rerun whose fingerprint matches skips the
program, so a killed shard loses at most the program in progress; one that
does not match (changed settings) trains and evaluates again. To re-evaluate
with changed code, delete ``<results>/rows``.

:func:`gather` reads every shard's rows in grid order, so a member's row is
the same however the grid was sharded, and names the shards still missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from decompvae.config import current_form
from decompvae.reproduce._common import Context, aggregate, markdown_table, write_csv

__all__ = ["ROWS_DIR", "check_shard_count", "gather", "partial_summary", "program_rows", "rows_path", "same_program"]

ROWS_DIR = "rows"
_NAME = re.compile(r"(?P<variant>.+?)(?:\.shard-(?P<index>\d+)-of-(?P<count>\d+))?\.json")


def rows_path(results_dir: Path, variant: str, shard: tuple[int, int]) -> Path:
    """Where the rows of ``variant``'s program, shard ``(I, N)``, are stored."""
    index, count = shard
    suffix = "" if count == 1 else f".shard-{index}-of-{count}"
    return Path(results_dir) / ROWS_DIR / f"{variant}{suffix}.json"


def check_shard_count(results_dir: Path, shard: tuple[int, int]) -> None:
    """Refuse a shard count other than the one the stored rows were made with.

    Raises:
      ValueError: naming ``--shard``, the stored count and how to start over.
    """
    folder = Path(results_dir) / ROWS_DIR
    counts = {int(m["count"] or 1) for p in folder.glob("*.json") if (m := _NAME.fullmatch(p.name))}
    index, count = shard
    other = sorted(counts - {count})
    if other:
        was = ", ".join("unsharded" if c == 1 else f"{c} shards" for c in other)
        now = "no --shard" if count == 1 else f"--shard {index}/{count}"
        raise ValueError(f"{now}: {folder} holds rows of this experiment run {was}; keep that (--shard I/"
                         f"{other[0]}{' or no --shard' if 1 in other else ''}) or move {folder} away to start over")


def program_rows(ctx: Context, variant: str, fingerprint: Mapping[str, Any],
                 train_and_evaluate: Callable[[], list[dict]]) -> list[dict]:
    """This shard's rows of one program: the stored ones when their fingerprint matches, else computed and stored.

    Args:
      ctx: the experiment's context (its ``shard``, ``(0, 1)`` when unsharded).
      variant: the program's name (its run directory under ``ctx.runs_dir``).
      fingerprint: JSON-ready settings the rows depend on.
      train_and_evaluate: ``() -> rows``, one dict of JSON-ready values per network.
    """
    shard = ctx.shard or (0, 1)
    path = rows_path(ctx.results_dir, variant, shard)
    stored = _read(path)
    if stored is not None and same_program(stored["fingerprint"], fingerprint):
        ctx.echo(f"[{ctx.name}/{ctx.profile}] {variant}: rows of shard {shard[0]}/{shard[1]} already in {path}")
        return stored["rows"]
    if stored is not None:
        ctx.echo(f"[{ctx.name}/{ctx.profile}] {variant}: {path} was made with other settings; computing again")
    rows = train_and_evaluate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "shard": list(shard), "rows": rows}, indent=1))
    tmp.replace(path)  # atomic: a kill leaves the old file or the new one
    return rows


def gather(results_dir: Path, fingerprints: Mapping[str, Mapping[str, Any]], count: int
           ) -> tuple[list[dict], list[str]]:
    """Every present shard's rows of every program, and the shards still missing.

    Args:
      results_dir: the experiment's results directory.
      fingerprints: ``{variant: fingerprint}`` of the programs, in the experiment's order.
      count: N, the number of shards.

    Returns:
      ``(rows, missing)``: rows in program order and, within a program, in
      grid order (the ``member`` column); ``missing`` names each absent or
      stale ``variant shard I/N``.
    """
    rows, missing = [], []
    for variant, fingerprint in fingerprints.items():
        program = []
        for index in range(count):
            stored = _read(rows_path(results_dir, variant, (index, count)))
            if stored is None or not same_program(stored["fingerprint"], fingerprint):
                missing.append(f"{variant} shard {index}/{count}")
            else:
                program += stored["rows"]
        rows += sorted(program, key=lambda r: r["member"])
    return rows, missing


def partial_summary(ctx: Context, title: str, rows: Sequence[dict], missing: Sequence[str], by: Sequence[str],
                    metrics: Sequence[str], headers: Mapping[str, str] | None = None) -> Path:
    """``metrics.csv`` and a ``summary.md`` of the rows present, listing the missing shards; no verdict.

    Only the rows' scalar columns go to ``metrics.csv`` (an experiment may keep, e.g., a training curve in a row),
    and the table has the ``metrics`` every row holds (one an experiment computes across shards, such as the methods'
    UDR across seeds, waits for the full summary).
    """
    write_csv(ctx.results_dir / "metrics.csv", [{k: v for k, v in r.items() if not isinstance(v, (list, dict))}
                                                for r in rows])
    count = (ctx.shard or (0, 1))[1]
    lines = [f"# {title} — profile `{ctx.profile}`", "",
             f"**Incomplete: no verdict until every shard's rows are present.** Missing ({len(missing)}): "
             + ", ".join(missing) + ". Run each missing one with "
             f"`decompvae reproduce {ctx.name} --profile {ctx.profile} --shard I/{count}`; the verdict, figures and "
             "tables are then computed from all rows.", ""]
    present = [m for m in metrics if all(m in r for r in rows)]
    if rows:
        lines += [f"Means ± 95% CI (t) over the seeds present ({len(rows)} networks):", "",
                  markdown_table(aggregate(rows, by, present), by, present, dict(headers or {}))]
    path = ctx.results_dir / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def same_program(stored: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether a stored fingerprint is ``current``, each config read as this release reads it (:func:`_canonical`)."""
    return _canonical(_plain_json(stored)) == _canonical(_plain_json(current))


def _canonical(fingerprint: dict) -> dict:
    """``fingerprint`` with its ``config`` as this release reads it (:func:`decompvae.config.current_form`), less
    ``output_dir``.

    A config this release refuses (a removed key, a bad value) is left as stored: it matches no current one.
    """
    config = current_form(fingerprint["config"]) if isinstance(fingerprint.get("config"), dict) else None
    if config is None:
        return fingerprint
    config.pop("output_dir", None)
    return {**fingerprint, "config": config}


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _plain_json(value):
    """``value`` as it reads back from JSON (tuples become lists), for comparing fingerprints."""
    return json.loads(json.dumps(value))
