"""Write ``tests/slow_tests.txt`` from a JUnit XML of a full run: the test functions that took ``--over`` seconds or more.

Usage (each measured run is a whole suite, on an otherwise idle machine)::

    python -m pytest -m "" --junitxml=/tmp/all.xml        # every test
    python -m pytest --junitxml=/tmp/default.xml          # the default run, after applying the list
    python tests/_slow_list.py /tmp/all.xml /tmp/default.xml [--over 6] [--keep NODEID ...]

Entries are whole test functions: a function's time is the sum over its
parametrizations (each the longest of the runs), so what the default run covers
does not depend on which parametrization happened to pay a compilation on the
measuring machine. A function is listed if it took ``--over`` seconds or more:
leaving a test out moves the compilation it paid for (and a module fixture's
setup) onto the next test that needs it, which the run of the default suite
shows. ``--keep`` leaves a function in the default run however long it took
(the core promises). Tests marked ``slow`` in their own file need no entry.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import xml.etree.ElementTree as ET

LIST = pathlib.Path(__file__).with_name("slow_tests.txt")


def nodeid(classname: str, name: str) -> str:
    """``tests.test_x.TestY`` + ``test_z[p]`` -> ``tests/test_x.py::TestY::test_z[p]``."""
    parts = classname.split(".")
    i = next(k for k, p in enumerate(parts) if p.startswith("test_"))
    return "::".join(["/".join(parts[: i + 1]) + ".py", *parts[i + 1 :], name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml", nargs="+")
    parser.add_argument("--over", type=float, default=6.0)
    parser.add_argument("--keep", nargs="*", default=[])
    args = parser.parse_args()
    longest: dict[str, float] = {}
    for path in args.xml:
        for tc in ET.parse(path).iter("testcase"):
            if tc.find("skipped") is None:
                name = nodeid(tc.get("classname"), tc.get("name"))
                longest[name] = max(longest.get(name, 0.0), float(tc.get("time")))
    per_function = function_times(longest)
    slow = sorted((t, f) for f, t in per_function.items() if t >= args.over and f not in args.keep)
    kept = sum(per_function.values()) - sum(t for t, _ in slow)
    header = [
        f"# Test functions left out of the default run (``-m 'not slow'``): {len(slow)} that took ≥ {args.over:g} s",
        f"# (all their parametrizations) in a measured run ({datetime.date.today()}); the others took {kept:.0f} s.",
        "# Applied by conftest.py; regenerate with tests/_slow_list.py. One test function per line.",
    ]
    LIST.write_text("\n".join(header + sorted(f for _, f in slow)) + "\n")
    print(f"{len(slow)} slow test functions ({sum(t for t, _ in slow):.0f} s); default run {kept:.0f} s")


def function_times(seconds: dict[str, float]) -> dict[str, float]:
    """``{test function: seconds}`` summed over its parametrizations, from ``{node id: seconds}``."""
    totals: dict[str, float] = {}
    for node, t in seconds.items():
        function = node.split("[")[0]
        totals[function] = totals.get(function, 0.0) + t
    return totals


if __name__ == "__main__":
    main()
