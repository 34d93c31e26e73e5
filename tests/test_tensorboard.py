"""TensorBoard event files: written by tensorboardX, read back by TensorBoard's own reader."""

import math
import subprocess
import sys

import pytest

from decompvae.tensorboard import TensorBoardLog, member_dir, scalars

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

LABELS = ["beta=1 seed=0", "beta=4 seed=0"]
TERMS = ("loss", "recon", "kl", "regulariser")


def _rows(step, offset=0.0):
    """Log rows as the runner writes them (member 1 diverges at step 30)."""
    rows = []
    for member in range(2):
        bad = member == 1 and step >= 30
        terms = {k: float("nan") if bad else step * (member + 1) + len(k) + offset for k in TERMS}
        rows.append({"step": step, "member": member, **terms, "diverged_at": 30 if bad else -1})
    return rows


def _read(run_dir):
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected(member, steps, offset=0.0):
    out = {}
    for step in steps:
        for row in _rows(step, offset):
            if row["member"] == member:
                for k in TERMS:
                    if math.isfinite(row[k]):
                        out.setdefault(f"train/{k}", []).append((step, row[k]))
    return out


def _assert_same(read, expected):
    assert sorted(read) == sorted(expected)
    for tag, points in expected.items():
        assert [s for s, _ in read[tag]] == [s for s, _ in points], tag
        assert [v for _, v in read[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag


def test_rows_round_trip_one_run_per_member(tmp_path):
    with TensorBoardLog(tmp_path, LABELS) as log:
        for step in (10, 20, 30, 40):
            log.write(step, _rows(step))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0_beta=1_seed=0", "m1_beta=4_seed=0"]
    for member, directory in enumerate(log.dirs):
        _assert_same(_read(directory), _expected(member, (10, 20, 30, 40)))  # member 1: no NaN after step 30


def test_resume_supersedes_what_the_interrupted_run_logged_after_the_checkpoint(tmp_path):
    with TensorBoardLog(tmp_path, LABELS) as log:
        for step in (10, 20, 30):  # killed after logging step 30; the last checkpoint was step 10
            log.write(step, _rows(step))
    with TensorBoardLog(tmp_path, LABELS, start_step=10) as log:
        for step in (20, 30, 40):
            log.write(step, _rows(step, offset=0.5))
    read = _read(log.dirs[0])
    expected = _expected(0, (10,))
    for tag, points in _expected(0, (20, 30, 40), offset=0.5).items():
        expected[tag] += points
    _assert_same(read, expected)


def test_eval_prefix_and_strings_skipped(tmp_path):
    with TensorBoardLog(tmp_path, LABELS[:1]) as log:
        log.write(40, [{"member": 0, "label": "beta=1", "eval_loss": 3.5, "diverged_at": -1}], prefix="eval")
    assert _read(log.dirs[0]) == {"eval/eval_loss": [(40, 3.5)]}


def test_scalars_and_member_dir():
    row = {"step": 5, "member": 0, "loss": 1.0, "kl": float("inf"), "label": "x", "diverged_at": -1, "ok": True}
    assert list(scalars(row)) == [("train/loss", 1.0)]
    assert member_dir(2, "beta=4 prior.df=3 seed=1", 12) == "m02_beta=4_prior.df=3_seed=1"
    assert member_dir(0, "", 1) == "m0"


def test_module_imports_without_tensorboardx():
    code = "import sys, decompvae.tensorboard; assert 'tensorboardX' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
