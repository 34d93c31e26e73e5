"""Every Python block of the README runs, as written, in a fresh directory."""

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(README.parent / "configs")  # the examples name the shipped configs
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": f"readme_block_{index}"})


TOML_BLOCKS = re.findall(r"^```toml\n(.*?)^```", README.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("index", range(len(TOML_BLOCKS)))
def test_readme_config_block_is_a_valid_config(index, tmp_path):
    from decompvae.build import build
    from decompvae.config import load_config

    path = tmp_path / "block.toml"
    path.write_text(TOML_BLOCKS[index])
    config = load_config(path, ["model.network=mlp", "model.hidden=[8]", "data.eval_points=16", "train.batch_size=8"])
    build(config).trainer  # the prior, divergence and networks build
