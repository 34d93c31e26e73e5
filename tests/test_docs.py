"""The documentation: it builds warning-free, the tutorial's code runs, every public module has a page."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
PACKAGE = DOCS.parent / "decompvae"
BUILD_TIMEOUT = 600  # seconds; the build takes about 15 s on a 2-core machine


def python_blocks(rst: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives of a reST text, dedented."""
    blocks, lines, i = [], rst.splitlines(), 0
    while i < len(lines):
        if re.fullmatch(r"\s*\.\. code-block:: python\s*", lines[i]):
            indent = len(lines[i]) - len(lines[i].lstrip()) + 1
            body, i = [], i + 1
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) >= indent):
                body.append(lines[i])
                i += 1
            width = min(len(line) - len(line.lstrip()) for line in body if line.strip())
            blocks.append("\n".join(line[width:] for line in body).strip() + "\n")
        else:
            i += 1
    return blocks


def test_python_blocks_extraction():
    rst = "Text\n\n.. code-block:: python\n\n   a = 1\n\n   def f():\n       return a\n\nAfter\n"
    assert python_blocks(rst) == ["a = 1\n\ndef f():\n    return a\n"]


def test_tutorial_code_runs(capsys):
    blocks = python_blocks((DOCS / "tutorial_loss.rst").read_text())
    assert len(blocks) >= 5
    namespace: dict = {"__name__": "tutorial"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/tutorial_loss.rst[block {i}]", "exec"), namespace)
    import jax.numpy as jnp

    info = namespace["info"]
    assert bool(jnp.all(jnp.isfinite(info.loss)))
    assert "per member" in capsys.readouterr().out


def _public_modules() -> set[str]:
    modules = {p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("_")}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py") if not p.parent.name.startswith("_")}
    return modules | packages


def test_every_public_module_has_an_api_page():
    pages = {p.stem for p in (DOCS / "api").glob("*.rst")} - {"index"}
    assert pages == _public_modules(), "add (or remove) docs/api/<module>.rst and list it in docs/api/index.rst"
    index = (DOCS / "api" / "index.rst").read_text()
    assert all(re.search(rf"^\s+{name}$", index, re.M) for name in pages)


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html", str(DOCS), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, done.stderr[-5000:]
    for page in ("index", "tutorial_loss", "reports", "api/index", "api/objective", "api/report"):
        assert (tmp_path / f"{page}.html").is_file(), page
