"""``decompvae reproduce recipes``: the recipe search behind the calibrated recipe, inside the experiment framework."""

import csv

import pytest

from decompvae.reproduce import recipes, run_experiment


@pytest.mark.slow  # a plan and a short training run of a small dense network (about 40 s on 2 cores)
def test_tiny_profile_times_trains_and_tabulates_each_recipe_and_skips_it_when_rerun(tmp_path):
    messages = []
    out = run_experiment("recipes", "tiny", tmp_path, echo=messages.append)
    with (out / "recipes.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["recipe"] == "dense16-b16" and int(row["steps"]) % recipes.PROFILES["tiny"]["log_every"] == 0
    assert 0 <= float(row["mig"]) <= 1 and 0 <= float(row["factor_vae_dlib"]) <= 1
    summary = (out / "summary.md").read_text()
    assert "| dense16-b16 |" in summary and "no verdict" in summary
    messages.clear()
    run_experiment("recipes", "tiny", tmp_path, echo=messages.append)  # its row is there: nothing is trained
    assert not any("s/step" in m or "trained" in m for m in messages)
    assert (out / "summary.md").read_text() == summary


def test_the_cpu_profile_is_the_search_that_was_run():
    """The four recipes at 9 minutes each, whose committed rows the calibration's summary quotes."""
    settings = recipes.PROFILES["cpu"]
    assert settings["recipes"] == ["dense256-b64", "dense256-b256", "dense512-b64", "convnet-b64"]
    assert settings["minutes"] == 9.0 and settings["evaluations"] == 6 and settings["eval_points"] == 500
    assert recipes.RECIPES["dense256-b64"] == ("mlp", [256, 256], 64, 5e-4)  # the calibrated recipe


def test_the_committed_table_is_read_and_written_back_byte_for_byte(tmp_path):
    """A rerun rewrites ``recipes.csv`` with the rows it found, each cell as written (no reformatted numbers)."""
    import shutil
    from pathlib import Path

    from decompvae.reproduce._common import Context

    committed = Path(__file__).parents[1] / "experiments" / "results" / "recipes-cpu" / "recipes.csv"
    shutil.copy(committed, tmp_path / "recipes.csv")
    ctx = Context("recipes", "cpu", tmp_path, tmp_path / "runs")
    rows = recipes._done(ctx)
    assert set(rows) == set(recipes.PROFILES["cpu"]["recipes"])
    assert all(isinstance(v, str) for r in rows.values() for v in r.values())
    recipes._write(ctx, rows)
    assert (tmp_path / "recipes.csv").read_bytes() == committed.read_bytes()
