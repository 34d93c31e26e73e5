"""Run the decompvae benchmark: ``python -m benchmarks.run [--quick] [--output DIR]``.

The benchmark lives here, outside the package (``benchmarks.bench``); see
benchmarks/README.md for what it measures and the latest figures.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

if __package__ in (None, ""):  # ``python benchmarks/run.py`` from a checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks.bench import main as bench_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke test)")
    parser.add_argument("--output", default="benchmarks/results", help="directory for the JSON, markdown and plot")
    return bench_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
