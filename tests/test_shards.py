"""Shards of a sweep's grid (``decompvae sweep --shard I/N``): whole grid = union of its shards, bad shards refused."""

import csv

import jax
import numpy as np
import pytest

from decompvae import cli, runner
from decompvae.build import shard_members
from decompvae.config import check_shard, load_config

from _tiny_run import CONFIG_TOML

QUIET = dict(progress=False, figures=False, echo=lambda s: None)
# The tiny pinwheel run with a grid of 5 members (β × seed), so that 2 shards are unequal (3 and 2 members).
GRID = CONFIG_TOML.replace("beta = [1.0, 2.0]", "beta = [1.0, 2.0, 4.0, 8.0, 16.0]\nmode = \"product\"").replace(
    "steps = 40", "steps = 20")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "grid.toml"
    path.write_text(GRID)
    return path


@pytest.mark.parametrize("bad", ["2/2", "3/2", "-1/2", "a/b", "1", "0/0", (1,), (0, 2, 1), (True, 2)])
def test_bad_shards_are_refused_naming_the_flag(bad):
    with pytest.raises(ValueError, match="--shard"):
        check_shard(bad)


def test_shard_members_take_every_nth_from_i():
    grid = [{"beta": float(b)} for b in range(5)]
    assert shard_members(grid) == ((0, 1, 2, 3, 4), grid)
    assert shard_members(grid, (1, 2)) == ((1, 3), [grid[1], grid[3]])
    assert shard_members(grid, (0, 2))[0] == (0, 2, 4)
    with pytest.raises(ValueError, match="holds no member: the grid has 5"):
        shard_members(grid, (5, 6))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_whole_grid_equals_the_union_of_its_shards(config_file, tmp_path):
    # One device for every run: conftest's 4 CPU devices would shard a 2-member shard over 2 of them,
    # and a device's thread count changes the rounding of its GEMMs (not what is tested here).
    one = "sweep.devices=1"
    whole = runner.run(load_config(config_file, [f"output_dir={tmp_path / 'whole'}", one]), **QUIET)
    base = load_config(config_file, [f"output_dir={tmp_path / 'sharded'}", one])
    union = {}
    for index in (0, 1):
        config = runner.shard_config(base, f"{index}/2")
        assert config.output_dir == str(tmp_path / "sharded" / f"shard-{index}-of-2")
        result = runner.run(config, **QUIET)
        rows = _rows(tmp_path / "sharded" / f"shard-{index}-of-2" / "summary.csv")
        members = _rows(tmp_path / "sharded" / f"shard-{index}-of-2" / "members.csv")
        assert [int(r["grid_member"]) for r in rows] == list(range(index, 5, 2))
        assert [r["grid_member"] for r in members] == [r["grid_member"] for r in rows]
        for local, row in enumerate(rows):
            union[int(row["grid_member"])] = (row, jax.tree.map(lambda a: np.asarray(a)[local], result.state))
    assert sorted(union) == list(range(5))
    for row in _rows(tmp_path / "whole" / "summary.csv"):
        i = int(row["member"])
        shard_row, state = union[i]
        assert {k: v for k, v in shard_row.items() if k not in ("member", "grid_member")} == \
            {k: v for k, v in row.items() if k != "member"}, i  # every number, as written, equal
        for ours, theirs in zip(jax.tree.leaves(state), jax.tree.leaves(whole.state), strict=True):
            np.testing.assert_array_equal(ours, np.asarray(theirs)[i])


def test_a_changed_shard_count_or_an_unsharded_run_is_refused(config_file, tmp_path):
    base = load_config(config_file, [f"output_dir={tmp_path / 'run'}"])
    (tmp_path / "run" / "shard-0-of-3").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"--shard 0/2: .* cut into 3"):
        runner.shard_config(base, "0/2")
    assert runner.shard_config(base, "2/3").output_dir.endswith("shard-2-of-3")  # the same count is fine
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="holds an unsharded run"):
        runner.shard_config(load_config(config_file, [f"output_dir={tmp_path / 'plain'}"]), "0/2")


def test_cli_refuses_bad_shards_before_training(config_file, tmp_path, capsys):
    args = ["sweep", "--no-progress", "--config", str(config_file), "--set", f"output_dir={tmp_path / 'run'}"]
    assert cli.main([*args, "--shard", "2/2"]) == 2
    assert "--shard" in capsys.readouterr().err
    assert cli.main([*args, "--shard", "5/6"]) == 2  # more shards than members: shard 5 would be empty
    assert "holds no member" in capsys.readouterr().err
    assert cli.main(["train", *args[1:], "--shard", "0/2"]) == 2
    assert "--shard splits a sweep" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_array_job_example_is_valid_bash_with_one_shard_per_task():
    import pathlib
    import re
    import shutil
    import subprocess

    script = pathlib.Path(__file__).parents[1] / "docs" / "examples" / "slurm_array_job.sh"
    subprocess.run([shutil.which("bash"), "-n", str(script)], check=True)
    text = script.read_text()
    first, last = map(int, re.search(r"#SBATCH --array=(\d+)-(\d+)", text).groups())
    assert int(re.search(r"^SHARDS=(\d+)", text, re.M).group(1)) == last - first + 1
    assert '--shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}"' in text and '"$status" -eq 75' in text
