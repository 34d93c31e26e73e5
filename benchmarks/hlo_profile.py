"""Where a compiled program spends its time, by kind of operation.

Two sources, joined by HLO instruction name:

- the optimised HLO of the compiled program (``compiled.as_text()``): every
  instruction outside fused computations gets a category from its opcode, a
  fusion from the operations inside it — ``convolution/dot`` (any dot or
  convolution; XLA:CPU's ``ynn_fusion`` thunks are XNNPACK GEMMs),
  ``gather/scatter`` (gather, scatter, dynamic slices), ``reduce``,
  ``copy/transpose`` (copies, transposes, concatenations, slices, pads: data
  movement only) and ``elementwise`` (the rest); control flow (``while``,
  ``call``, ``conditional``) is not counted, its body is;
- a ``jax.profiler`` trace of a few calls: on XLA:CPU every executed thunk is a
  trace event named after its instruction, so summing event durations per
  category gives measured thread-time per kind of operation. (On a GPU the
  events are kernel names; the report then gives the HLO counts only.)

Together with XLA's cost analysis (FLOPs, bytes accessed) of the whole program.
Usage: :func:`profile_program`; :func:`format_profile` renders a markdown table.
"""

from __future__ import annotations

import collections
import glob
import re
import sys
import tempfile
import time
from typing import Any, Callable

import jax
from jax.profiler import ProfileData

__all__ = ["CATEGORIES", "categorize_hlo", "format_profile", "format_top", "op_names", "profile_program"]

CATEGORIES = ("convolution/dot", "elementwise", "reduce", "copy/transpose", "gather/scatter", "other")
_CONTROL = {"while", "call", "conditional", "parameter", "constant", "tuple", "get-tuple-element", "bitcast",
            "after-all", "opt-barrier"}
#: Instructions listed by :func:`profile_program` as the most expensive.
TOP = 15
_MOVE = {"copy", "transpose", "concatenate", "slice", "pad", "reshape", "broadcast", "bitcast", "reverse",
         "parameter", "constant", "tuple", "get-tuple-element", "iota", "copy-start", "copy-done"}
_GATHER = {"gather", "scatter", "dynamic-slice", "dynamic-update-slice", "sort"}
_REDUCE = {"reduce", "reduce-window", "select-and-scatter"}
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
                "f64": 8, "s64": 8, "u64": 8}
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][\w\-]*)\((.*)$")
_SHAPE = re.compile(r"\b(pred|s8|u8|bf16|f16|s16|u16|f32|s32|u32|f64|s64|u64)\[([\d,]*)\]")


def _parse(hlo: str) -> tuple[dict[str, list[tuple[str, str, str, str]]], str | None]:
    """Computations of an HLO module: ``{name: [(instruction, opcode, shape text, rest)]}``, and the entry's name."""
    computations: dict[str, list] = {}
    current, entry = None, None
    for line in hlo.splitlines():
        stripped = line.strip()
        if stripped.endswith("{") and "=" not in stripped.split("(")[0]:
            head = stripped.split()[0]
            if head == "ENTRY":
                head = stripped.split()[1]
                entry = head.lstrip("%")
            current = head.lstrip("%")
            computations[current] = []
            continue
        if current is None:
            continue
        if stripped == "}":
            current = None
            continue
        m = _INSTR.match(line)
        if m:
            computations[current].append((m.group(1), m.group(3), m.group(2), m.group(4)))
    return computations, entry


def _bytes(shape_text: str) -> int:
    """Bytes of the array(s) an instruction's shape text names."""
    total = 0
    for dtype, dims in _SHAPE.findall(shape_text):
        size = 1
        for d in filter(None, dims.split(",")):
            size *= int(d)
        total += size * _DTYPE_BYTES[dtype]
    return total


def _opcodes(computations, name: str, seen=None) -> set[str]:
    """Every opcode inside computation ``name`` and the computations it calls."""
    seen = set() if seen is None else seen
    if name in seen or name not in computations:
        return set()
    seen.add(name)
    ops = set()
    for _, opcode, _, rest in computations[name]:
        ops.add(opcode)
        for called in re.findall(r"(?:calls|to_apply)=%?([\w.\-]+)", rest):
            ops |= _opcodes(computations, called, seen)
    return ops


def _category(opcodes: set[str]) -> str:
    if opcodes & {"dot", "convolution", "custom-call"}:
        return "convolution/dot"
    if opcodes & _GATHER:
        return "gather/scatter"
    if opcodes & _REDUCE:
        return "reduce"
    if opcodes <= _MOVE:
        return "copy/transpose"
    return "elementwise"


def categorize_hlo(hlo: str) -> dict[str, dict[str, Any]]:
    """``{instruction: {"category", "opcode", "bytes"}}`` of the instructions that execute (not fused ones).

    Instructions of the entry computation and of the computations that
    control flow runs (``while`` bodies and conditions, ``call``,
    ``conditional`` branches) are categorised; fused computations only
    through their fusion instruction.
    """
    computations, entry = _parse(hlo)
    executed, todo, out = set(), [entry] if entry else list(computations), {}
    while todo:
        name = todo.pop()
        if name in executed or name not in computations:
            continue
        executed.add(name)
        for instr, opcode, shape, rest in computations[name]:
            if opcode in ("while", "call", "conditional"):
                todo += re.findall(r"(?:body|condition|to_apply|branch_computations=\{|true_computation|"
                                   r"false_computation|calls)=?%?([\w.\-]+)", rest)
                todo += re.findall(r"%([\w.\-]+)", rest.split("branch_computations=")[-1]) if "branch_" in rest else []
                continue
            if opcode in _CONTROL:
                continue
            if opcode == "fusion":
                called = re.findall(r"calls=%?([\w.\-]+)", rest)
                category = _category(_opcodes(computations, called[0]) if called else set())
            else:
                category = _category({opcode})
            out[instr] = {"category": category, "opcode": opcode, "bytes": _bytes(shape)}
    return out


def op_names(hlo: str) -> dict[str, str]:
    """``{instruction: op_name}``: the JAX operation each instruction came from (its ``metadata``), e.g.
    ``jit(run)/while/body/…/transpose(jvp(ConvDecoder))/deconv2/…/reshape`` ("transpose(jvp" marks the backward)."""
    computations, _ = _parse(hlo)
    return {instr: m.group(1) for lines in computations.values() for instr, _, _, rest in lines
            if (m := re.search(r'op_name="([^"]*)"', rest))}


def format_top(profile: dict[str, Any], strip: str = "jit(run)/while/body/closed_call/") -> list[str]:
    """Markdown lines: the profile's most expensive instructions, with the JAX operation each came from."""
    lines = ["| thread-ms per model-step | instruction | kind | from |", "|---|---|---|---|"]
    for t in profile.get("top", []):
        origin = t["op_name"].replace(strip, "")
        lines.append(f"| {t['ms_per_step']:.2f} | `{t['instruction']}` | {t['category']} | `{origin}` |")
    return lines


def _trace_durations(fn: Callable[[], Any], calls: int) -> dict[str, float] | None:
    """Seconds of thread time per trace-event name over ``calls`` calls of ``fn`` (None: no trace)."""
    directory = tempfile.mkdtemp(prefix="decompvae-trace-")
    try:
        with jax.profiler.trace(directory):
            for _ in range(calls):
                jax.block_until_ready(fn())
    except Exception:  # noqa: BLE001 - a backend whose tracer is unavailable (e.g. no CUPTI): HLO counts only
        return None
    files = glob.glob(f"{directory}/**/*.xplane.pb", recursive=True)
    if not files:
        return None
    totals: dict[str, float] = collections.defaultdict(float)
    for plane in ProfileData.from_file(files[0]).planes:
        for line in plane.lines:
            for event in line.events:
                totals[event.name] += event.duration_ns * 1e-9
    return dict(totals)


def profile_program(compiled, fn: Callable[[], Any], *, calls: int = 2, steps_per_call: int = 1) -> dict[str, Any]:
    """The breakdown of one compiled program by kind of operation.

    Args:
      compiled: the ``jax.stages.Compiled`` program that ``fn`` runs.
      fn: a thunk calling it once (already warmed up).
      calls: traced calls.
      steps_per_call: model-steps per call (times are reported per model-step).

    Returns:
      ``{"categories": {category: {"instructions", "output_mib", "ms_per_step", "share"}}, "flops",
      "bytes_accessed", "traced_ms_per_step", "wall_ms_per_step", "matched_events"}``; ``ms_per_step`` is
      thread-time (summed over threads), None where the trace has no event of that name.
    """
    hlo = compiled.as_text()
    instrs, names = categorize_hlo(hlo), op_names(hlo)
    cats = {c: {"instructions": 0, "output_mib": 0.0, "seconds": 0.0} for c in CATEGORIES}
    for info in instrs.values():
        cats[info["category"]]["instructions"] += 1
        cats[info["category"]]["output_mib"] += info["bytes"] / 2**20
    start = time.perf_counter()
    durations = _trace_durations(fn, calls) or {}
    wall = time.perf_counter() - start
    matched = 0
    for name, seconds in durations.items():
        if name in instrs:
            cats[instrs[name]["category"]]["seconds"] += seconds
            matched += 1
    per = calls * steps_per_call
    top = sorted(((1e3 * t / per, n) for n, t in durations.items() if n in instrs), reverse=True)[:TOP]
    traced = sum(c["seconds"] for c in cats.values())
    for c in cats.values():
        c["ms_per_step"] = 1e3 * c.pop("seconds") / per if matched else None
        c["share"] = (c["ms_per_step"] * per / 1e3 / traced) if matched and traced else None
    cost = {}
    try:
        cost = compiled.cost_analysis() or {}
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    except Exception:  # noqa: BLE001 - a backend without cost analysis
        pass
    return {"categories": cats, "flops": cost.get("flops"), "bytes_accessed": cost.get("bytes accessed"),
            "traced_ms_per_step": 1e3 * traced / per if matched else None, "wall_ms_per_step": 1e3 * wall / per,
            "matched_events": matched, "instructions": len(instrs), "steps_per_call": steps_per_call,
            "top": [{"ms_per_step": ms, "instruction": n, "category": instrs[n]["category"],
                     "op_name": names.get(n, "")} for ms, n in top]}


def format_profile(profiles: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: one column pair (thread-ms per model-step, share) per profiled program."""
    names = list(profiles)
    lines = ["| kind of operation | " + " | ".join(f"{n}: ms/model-step (share), instructions" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for cat in CATEGORIES:
        cells = []
        for n in names:
            c = profiles[n]["categories"][cat]
            timing = "–" if c["ms_per_step"] is None else f"{c['ms_per_step']:.1f} ({100 * c['share']:.0f} %)"
            cells.append(f"{timing}, {c['instructions']}")
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    totals = []
    for n in names:
        p = profiles[n]
        fl, by = p["flops"], p["bytes_accessed"]
        per = p["steps_per_call"]
        totals.append(("–" if p["traced_ms_per_step"] is None else f"{p['traced_ms_per_step']:.1f} traced")
                      + (f"; XLA {fl / per / 1e9:.2f} GFLOP, {by / per / 2**20:.0f} MiB accessed per model-step"
                         if fl and by else ""))
    lines.append("| total | " + " | ".join(totals) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.hlo_profile [--recipe convnet|dense] [--steps 3]``: one recipe's ``Trainer.run``
    (built through the library's public path), by kind of operation and its most expensive instructions."""
    import argparse

    from benchmarks.renderer_share import NAMES, compiled_run, named_setup

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=tuple(NAMES), default="convnet")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    run = compiled_run(named_setup(args.recipe), args.steps)
    jax.block_until_ready(run.call())
    profile = profile_program(run.compiled, run.call, steps_per_call=args.steps)
    print("\n".join(format_profile({NAMES[args.recipe]: profile}) + [""] + format_top(profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
