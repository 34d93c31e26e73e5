"""The files of a run directory, and the rules for resuming into one::

    config.json        the resolved configuration (and, under "versions", the libraries used)
    members.csv        one row per member: its hyperparameters
    log.jsonl          one line per member per logged chunk
    curves.jsonl       with train.eval_every: one line per member per evaluation (decompvae.curves)
    estimates.json     what a logged regulariser column's value holds, where that needs saying
                       ({"regulariser.total_correlation": "…minibatch-weighted estimate…"})
    summary.csv        the final per-member table

Every write goes through :func:`decompvae.rundir.write_text_atomic` (a
reader sees the old or the new file, never a torn one) except the appends to
``log.jsonl``, whose torn last line a resumed run drops.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from decompvae.checkpoint import DAMAGED_SUFFIX
from decompvae.config import Config, current_form
from decompvae.regularisers import SINGLE, current_columns
from decompvae.rundir import write_error, write_text_atomic

__all__ = [
    "CURVE_FILE",
    "CURVE_META",
    "ESTIMATES_FILE",
    "RECORDED_VERSIONS",
    "append_log",
    "continue_output",
    "csv_text",
    "regulariser_columns",
    "format_notes",
    "format_table",
    "jsonl",
    "read_jsonl",
    "library_versions",
    "log_rows",
    "prepare_output",
    "start_output",
    "truncate_log",
    "write_estimates",
    "write_members",
    "write_summary",
]

#: The libraries whose versions config.json records (not compared on resume).
RECORDED_VERSIONS = ("jax", "jaxlib", "flax", "optax", "distrax", "orbax-checkpoint", "numpy")

#: The metrics-during-training rows of a run directory (:mod:`decompvae.curves`).
CURVE_FILE = "curves.jsonl"
#: Notes on what logged regulariser columns estimate (:func:`decompvae.build.estimate_notes`).
ESTIMATES_FILE = "estimates.json"
#: Columns of a curve row that are not measures.
CURVE_META = ("step", "images", "member", "seconds")
#: Config sections that say how a run is computed, not what: not compared on resume.
NOT_COMPARED = ("distributed",)
#: Single settings of that kind.
NOT_COMPARED_KEYS = ("train.tensorboard", "train.eval_every", "train.eval_dci")


def library_versions() -> dict[str, str]:
    """``{package: version}`` of :data:`RECORDED_VERSIONS` and Python."""
    found = {"python": sys.version.split()[0]}
    for name in RECORDED_VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _changed_settings(previous: dict, current: dict) -> list[str]:
    """``section.key`` of every setting that differs (a setting added since counts at its default)."""
    defaults = Config().to_dict()
    return sorted(
        f"{section}.{key}"
        for section, values in current.items()
        if isinstance(values, dict) and section not in NOT_COMPARED
        for key in values
        if f"{section}.{key}" not in NOT_COMPARED_KEYS
        and previous.get(section, {}).get(key, defaults[section][key]) != values[key]
    )


def prepare_output(config: Config, resume: bool) -> Path:
    """Create ``output_dir`` and check that a run to resume there has the same configuration.

    The one change allowed on resume is a larger ``train.steps``: training is
    a pure function of the step (constant learning rate, per-step keys and
    batches), so extending a run equals having asked for the longer run.
    """
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved, current = out / "config.json", config.to_dict()
    if saved.exists() and resume:
        stored = json.loads(saved.read_text())
        previous = current_form(stored) or stored  # a run of an earlier release, read with today's key names
        changed = _changed_settings(previous, current)
        extended = changed == ["train.steps"] and current["train"]["steps"] > previous["train"]["steps"]
        if changed and not extended:
            raise ValueError(
                f"{out} holds a run with a different configuration (changed: {', '.join(changed) or 'output_dir'}); "
                "use another output_dir, or --fresh to start over there (only train.steps may grow on resume)"
            )
        versions, before = library_versions(), previous.get("versions")
        if before and before != versions:
            differ = ", ".join(f"{k} {before.get(k)} → {v}" for k, v in versions.items() if before.get(k) != v)
            warnings.warn(
                f"resuming {out} with other library versions ({differ}): the result may differ in the last bits "
                "from an uninterrupted run",
                stacklevel=3,
            )
    write_text_atomic(saved, json.dumps({**current, "versions": library_versions()}, indent=2) + "\n")
    return out


def start_output(config: Config, resume: bool) -> Path:
    """:func:`prepare_output`, and without ``resume`` remove the old checkpoints and log."""
    out = prepare_output(config, resume)
    if not resume:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        shutil.rmtree(out / ("checkpoints" + DAMAGED_SUFFIX), ignore_errors=True)
        (out / "log.jsonl").unlink(missing_ok=True)
        (out / CURVE_FILE).unlink(missing_ok=True)
    return out


def continue_output(out: Path, step: int, steps: int) -> None:
    """Before training on from ``step``: drop later log and curve lines and a shorter run's table.

    Curve rows of the checkpoint's step were written before it and stay; a
    run that starts from step 0 evaluates step 0 again, so those go too.
    """
    truncate_log(out / "log.jsonl", step)
    truncate_log(out / CURVE_FILE, step if step else -1)
    if step < steps:
        (out / "summary.csv").unlink(missing_ok=True)  # train.steps grew


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines after ``step`` (they are recomputed after resuming), atomically.

    A line torn by a kill (the last one, unterminated) is dropped too: its
    rows come after the last checkpoint, which is written after them.
    """
    if not path.exists():
        return
    lines = path.read_text().split("\n")
    complete, torn = lines[:-1], lines[-1]  # the text ends with "\n" unless the last write was cut
    kept = [line for line in complete if line and json.loads(line)["step"] <= step]
    if torn or len(kept) != len(complete):
        write_text_atomic(path, "".join(line + "\n" for line in kept))


def csv_text(rows: Sequence[dict], fieldnames: Sequence[str]) -> str:
    """``rows`` as CSV text: a header of ``fieldnames``, then one line per row (the one CSV writer)."""
    f = io.StringIO(newline="")
    writer = csv.DictWriter(f, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    return f.getvalue()


def write_members(path: Path, members: Sequence, grid_indices: Sequence[int] | None = None) -> None:
    """``members.csv``: one row per member (:class:`decompvae.sweep.Member`) with its index and its flat form.

    With ``grid_indices`` (a shard of a grid) a ``grid_member`` column gives
    each member's index in the whole grid.
    """
    grid = {} if grid_indices is None else {"grid_member": list(grid_indices)}
    flat = [member.flat() for member in members]
    rows = [{"member": i, **{k: v[i] for k, v in grid.items()}, **member} for i, member in enumerate(flat)]
    write_text_atomic(path, csv_text(rows, ["member", *grid, *flat[0]]))


def write_summary(out: Path, summary: list[dict]) -> None:
    """``summary.csv``: the final table."""
    write_text_atomic(out / "summary.csv", csv_text(summary, list(summary[0])))


def _finite_mean(values: np.ndarray, finite: np.ndarray) -> float:
    return float(np.mean(values[finite])) if finite.any() else float("nan")


def regulariser_columns(prefix: str, regulariser: Mapping[str, Any], i: int,
                       finite: np.ndarray | None = None) -> dict[str, float]:
    """Member ``i``'s D_k as ``{prefix.<name>: value}``; the scalar form's one D as ``{prefix: value}``.

    ``regulariser`` is ``{name: [N, ...]}`` (``terms.regulariser`` stacked); with ``finite``
    (``[steps]``) the member's finite steps are averaged.
    """
    out = {}
    for name, values in regulariser.items():
        values = np.asarray(values[i])
        value = _finite_mean(values, finite) if finite is not None else float(np.mean(values))
        out[prefix if name == SINGLE else f"{prefix}.{name}"] = value
    return out


def log_rows(step: int, info, diverged_at: np.ndarray) -> list[dict]:
    """The ``log.jsonl`` rows of one chunk: per member, the means of its finite steps.

    Args:
      step: the step count after the chunk.
      info: host :class:`~decompvae.train.StepInfo` with leaves ``[N, steps]``.
      diverged_at: ``[N]`` the members' divergence steps (−1: healthy).
    """
    rows = []
    for i in range(diverged_at.shape[0]):
        finite = np.asarray(info.finite[i])
        row = {"step": step, "member": i}
        row.update({name: _finite_mean(np.asarray(getattr(info, name)[i]), finite) for name in ("loss", "recon", "kl")})
        row.update(regulariser_columns("regulariser", info.regulariser, i, finite))
        if getattr(info, "adversary_loss", None):
            row.update(regulariser_columns("adversary_loss", info.adversary_loss, i, finite))
        row["diverged_at"] = int(diverged_at[i])
        rows.append(row)
    return rows


def jsonl(rows: list[dict]) -> str:
    """Rows as JSON lines."""
    return "".join(json.dumps(row) + "\n" for row in rows)


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (``log.jsonl``, ``curves.jsonl``); [] without one, a torn line skipped.

    Columns under a former name (:func:`decompvae.regularisers.current_columns`) are read under today's.
    """
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(current_columns(json.loads(line)))
            except json.JSONDecodeError:  # a line torn by a kill, dropped on resume
                continue
    return rows


def append_log(path: Path, text: str) -> None:
    """Append rows to ``log.jsonl``; a failed write raises ``OutputWriteError`` naming it."""
    try:
        with path.open("a") as f:
            f.write(text)
    except OSError as err:
        raise write_error(path, err) from err


def write_estimates(out: Path, notes: dict[str, str]) -> None:
    """``estimates.json`` with ``notes`` (removed when there are none)."""
    if notes:
        write_text_atomic(out / ESTIMATES_FILE, json.dumps(notes, indent=1, ensure_ascii=False) + "\n")
    else:
        (out / ESTIMATES_FILE).unlink(missing_ok=True)


def format_notes(notes: dict[str, str]) -> str:
    """The notes under the table: ``* eval_<column>: <note>`` per line."""
    return "\n".join(f"* eval_{column} / {column}: {note}" for column, note in notes.items())


def format_table(summary: list[dict]) -> str:
    """A fixed-width text table of the summary rows."""
    columns = [k for k in summary[0] if k.startswith("eval_regulariser")]
    headers = ["member", "label", "eval_loss", "eval_recon", "eval_kl", *columns, "status"]
    rows = [
        [
            str(r["member"]),
            r["label"],
            f"{r['eval_loss']:.3f}",
            f"{r['eval_recon']:.3f}",
            f"{r['eval_kl']:.3f}",
            *(f"{r[k]:.4f}" for k in columns),
            "ok" if r["diverged_at"] < 0 else f"diverged@{r['diverged_at']}",
        ]
        for r in summary
    ]
    widths = [max(len(h), *(len(row[j]) for row in rows)) for j, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])
