"""Experiments in shards: rows stored per program as they finish, gathered in grid order, no verdict while missing."""

import filecmp
import json
from pathlib import Path

import pytest

from decompvae import cli
from decompvae.reproduce import (RESULTS_ROOT, SHARDED, _module, _rows, profile_settings, program_fingerprints,
                                 run_experiment)
from decompvae.reproduce._common import Context
from decompvae.reproduce._readme import finding_status

REPO = Path(__file__).resolve().parents[1]
FINGERPRINT = {"config": {"train": {"steps": 4}}, "settings": {"seeds": [0, 1]}}


def _ctx(tmp_path, shard=None, messages=None):
    echo = (messages.append if messages is not None else lambda _: None)
    return Context("hierarchy", "tiny", tmp_path, tmp_path / "runs", echo, False, shard)


def _store(tmp_path, variant, shard, members, fingerprint=FINGERPRINT):
    rows = [{"prior": variant, "member": m, "seed": m, "block_mig": 0.1 * m, "block_alignment": 0.0,
             "recon": -1.0 - m, "kl": float(m)} for m in members]
    return _rows.program_rows(_ctx(tmp_path, shard), variant, fingerprint, lambda: rows)


def test_program_rows_are_stored_once_and_skipped_on_a_rerun(tmp_path):
    calls, messages = [], []
    compute = lambda: calls.append(1) or [{"member": 0, "x": 1.5}]  # noqa: E731
    ctx = _ctx(tmp_path, (1, 3), messages)
    assert _rows.program_rows(ctx, "iso", FINGERPRINT, compute) == [{"member": 0, "x": 1.5}]
    assert (tmp_path / "rows" / "iso.shard-1-of-3.json").is_file()
    assert _rows.program_rows(ctx, "iso", FINGERPRINT, compute) == [{"member": 0, "x": 1.5}]
    assert len(calls) == 1 and "already in" in messages[-1]
    changed = {**FINGERPRINT, "settings": {"seeds": [0, 1, 2]}}  # other settings: computed again
    _rows.program_rows(ctx, "iso", changed, compute)
    assert len(calls) == 2 and "other settings" in messages[-1]


def test_gather_orders_rows_by_grid_member_and_names_the_missing_shards(tmp_path):
    _store(tmp_path, "isotropic", (1, 2), [1, 3])
    _store(tmp_path, "isotropic", (0, 2), [0, 2])
    _store(tmp_path, "hierarchical", (1, 2), [1, 3])
    _store(tmp_path, "stale", (0, 2), [0], fingerprint={"config": {}, "settings": {}})
    fingerprints = {"isotropic": FINGERPRINT, "hierarchical": FINGERPRINT, "stale": FINGERPRINT}
    rows, missing = _rows.gather(tmp_path, fingerprints, 2)
    assert [(r["prior"], r["member"]) for r in rows] == [("isotropic", m) for m in range(4)] + \
        [("hierarchical", 1), ("hierarchical", 3)]
    assert missing == ["hierarchical shard 0/2", "stale shard 0/2", "stale shard 1/2"]


def test_fingerprints_compare_configs_as_this_release_reads_them(tmp_path):
    current = {"config": {"train": {"steps": 4, "beta": 1.0}}, "settings": {"seeds": [0, 1]}}
    older = {"config": {"train": {"steps": 4}, "output_dir": "elsewhere"}, "settings": {"seeds": [0, 1]}}
    assert _rows.same_program(older, current)  # a key at its default, an output directory: the same program
    assert not _rows.same_program({**older, "config": {"train": {"steps": 5}}}, current)
    assert not _rows.same_program({**older, "config": {"train": {"no_such_key": 1}}}, current)
    assert not _rows.same_program({**older, "settings": {"seeds": [0]}}, current)
    _store(tmp_path, "isotropic", (0, 1), [0, 1], fingerprint=older)
    rows, missing = _rows.gather(tmp_path, {"isotropic": current}, 1)
    assert [r["member"] for r in rows] == [0, 1] and missing == []


def test_committed_rows_match_their_programs_today():
    """A config change that orphans committed rows (their summaries could no longer be regenerated) fails here."""
    checked = 0
    for name in SHARDED:
        for folder in sorted((REPO / RESULTS_ROOT).glob(f"{name}-*/{_rows.ROWS_DIR}")):
            profile = folder.parent.name[len(name) + 1:]
            settings = profile_settings(name, profile)
            fingerprints = program_fingerprints(_module(name).configs(settings), settings)
            for path in sorted(folder.glob("*.json")):
                variant = _rows._NAME.fullmatch(path.name)["variant"]
                assert variant in fingerprints, f"{path}: no program {variant!r} in {name}/{profile}"
                stored = json.loads(path.read_text())["fingerprint"]
                assert _rows.same_program(stored, fingerprints[variant]), f"{path} no longer matches its program"
                checked += 1
    assert checked >= 22  # rotation, heavy_tails and calibration's cpu rows at least


def test_partial_summary_lists_the_missing_shards_and_gives_no_verdict(tmp_path):
    rows = _store(tmp_path, "isotropic", (0, 2), [0, 2])
    path = _rows.partial_summary(_ctx(tmp_path, (0, 2)), "Title", rows, ["isotropic shard 1/2"], ["prior"],
                                 ["block_mig", "recon"])
    text = path.read_text()
    assert "isotropic shard 1/2" in text and "--shard I/2" in text
    assert finding_status(text) == "no verdict"
    assert "| isotropic | 2 | 0.100 ± 1.271 | -2.000 ± 12.706 |" in text  # mean ± t_{0.975,1}·sd/√2
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "prior,member,seed,block_mig,block_alignment,recon,kl"


def test_partial_summary_leaves_out_a_metric_that_not_every_row_holds(tmp_path):
    """A score computed across shards (the methods' UDR across seeds) is absent from a partial set of rows."""
    rows = _store(tmp_path, "isotropic", (0, 2), [0, 2])
    rows = [{**rows[0], "udr": 0.5}, rows[1]]
    text = _rows.partial_summary(_ctx(tmp_path, (0, 2)), "Title", rows, ["isotropic shard 1/2"], ["prior"],
                                 ["block_mig", "udr"]).read_text()
    assert "| isotropic | 2 | 0.100 ± 1.271 |" in text and "udr" not in text


@pytest.mark.parametrize("first, then, message", [
    ("0/2", "0/3", "--shard 0/3: "),
    ("0/2", None, "no --shard: "),
    (None, "1/2", "--shard 1/2: "),
])
def test_a_changed_shard_count_is_refused_before_training(tmp_path, first, then, message):
    shard = tuple(map(int, first.split("/"))) if first else (0, 1)
    _store(tmp_path, "isotropic", shard, [shard[0]])
    with pytest.raises(ValueError, match=message + ".*holds rows of this experiment run"):
        run_experiment("hierarchy", "tiny", tmp_path, echo=lambda _: None, shard=then)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name, shard, message", [
    ("clustering", "0/2", "--shard: clustering cannot be sharded"),
    ("theory", "0/2", "--shard: theory cannot be sharded"),
    ("hierarchy", "2/2", r"--shard \(sweep.shard\) must be I/N with integers 0 ≤ I < N"),
    ("hierarchy", "a/b", r"--shard \(sweep.shard\) must be I/N, e.g. 0/4"),
])
def test_bad_shards_are_refused_naming_the_flag(tmp_path, name, shard, message):
    with pytest.raises(ValueError, match=message):
        run_experiment(name, "tiny", tmp_path, echo=lambda _: None, shard=shard)
    assert not (tmp_path / "runs").exists()


def test_cli_reproduce_refuses_a_bad_shard(tmp_path, capsys):
    assert cli.main(["reproduce", "rotation", "--profile", "tiny", "--output", str(tmp_path), "--shard", "3/3"]) == 2
    assert "--shard" in capsys.readouterr().err


def test_print_config_with_a_shard_gives_each_runs_shard(tmp_path, capsys):
    assert cli.main(["reproduce", "hierarchy", "--profile", "tiny", "--output", str(tmp_path), "--print-config",
                     "--shard", "1/2"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["sweep"]["shard"] for r in runs] == [[1, 2], [1, 2]]
    assert [r["output_dir"] for r in runs] == [str(tmp_path / "runs" / v / "shard-1-of-2")
                                               for v in ("isotropic", "hierarchical")]


def test_sharded_experiments_have_the_protocol():
    from decompvae.reproduce import EXPERIMENTS
    for name in SHARDED:
        module = EXPERIMENTS[name].module
        assert all(callable(getattr(module, f)) for f in ("configs", "evaluate", "summarise")), name
        assert set(module.GROUP_BY) <= {"prior", "beta", "df", "alpha", "method", "symbol", "value"}, name


@pytest.mark.slow
def test_tiny_profile_whole_equals_the_union_of_its_two_shards(tmp_path):
    """hierarchy, tiny: 2 programs × 4 seeds; shards 0/2 and 1/2 (2 members each) give the whole run's files."""
    quiet = lambda _: None  # noqa: E731
    whole = run_experiment("hierarchy", "tiny", tmp_path / "whole", echo=quiet)
    messages = []
    sharded = run_experiment("hierarchy", "tiny", tmp_path / "sharded", echo=messages.append, shard="0/2")
    assert finding_status((sharded / "summary.md").read_text()) == "no verdict"
    assert "hierarchical shard 1/2" in (sharded / "summary.md").read_text()
    run_experiment("hierarchy", "tiny", tmp_path / "sharded", echo=messages.append, shard="1/2")
    for name in ("metrics.csv", "groups.csv", "summary.md"):
        assert filecmp.cmp(whole / name, sharded / name, shallow=False), name
    assert finding_status((whole / "summary.md").read_text()) != "no verdict"
    messages.clear()  # a rerun of a finished shard trains and evaluates nothing
    run_experiment("hierarchy", "tiny", tmp_path / "sharded", echo=messages.append, shard="0/2")
    assert sum("already in" in m for m in messages) == 2 and not any("training" in m for m in messages)


def test_partial_metrics_keep_only_scalar_columns(tmp_path):
    rows = [{"member": 0, "mig": 0.1, "curve": [{"images_seen": 0, "mig": 0.0}]}]
    _rows.partial_summary(_ctx(tmp_path, (0, 2)), "Title", rows, ["x shard 1/2"], ["member"], ["mig"])
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["member,mig", "0,0.1"]
