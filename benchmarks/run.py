"""Run the decompvae benchmark: ``python -m benchmarks.run [--quick] [--output DIR] [--cpu-devices] [--plan BACKEND]``.

``--cpu-devices`` also runs :mod:`benchmarks.cpu_devices` (one XLA CPU device
per core against one multi-threaded device, each candidate in its own
subprocess) and writes ``cpu_devices.json`` / ``cpu_devices.md`` beside the
report. ``--plan cpu|gpu`` prints the sizes and variants of that backend's run
as JSON and measures nothing.

The benchmark lives here, outside the package (``benchmarks.bench``); see
benchmarks/README.md for what it measures and the latest figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

if __package__ in (None, ""):  # ``python benchmarks/run.py`` from a checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks import cpu_devices  # noqa: E402
from benchmarks.bench import main as bench_main  # noqa: E402
from benchmarks.bench import make_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke test)")
    parser.add_argument("--output", default="benchmarks/results", help="directory for the JSON, markdown and plot")
    parser.add_argument("--cpu-devices", action="store_true",
                        help="also compare one XLA CPU device per core with one device (subprocesses)")
    parser.add_argument("--plan", choices=("cpu", "gpu"), help="print the run's sizes for a backend and exit")
    args = parser.parse_args(argv)
    if args.plan:
        print(json.dumps(dataclasses.asdict(make_config(quick=args.quick, backend=args.plan)), indent=1))
        return 0
    code = bench_main(args)
    if args.cpu_devices and not args.quick:
        result = cpu_devices.run_candidates(log=lambda s: print(s, flush=True))
        out = pathlib.Path(args.output)
        (out / "cpu_devices.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "cpu_devices.md").write_text(cpu_devices.format_markdown(result))
        print(cpu_devices.format_markdown(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
