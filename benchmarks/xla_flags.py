"""XLA:CPU flags against none, for one recipe's training step: ``python -m benchmarks.xla_flags [--recipe R]``.

``XLA_FLAGS`` is read once per process, so each setting runs in its own child process: it builds the recipe
through the library's public path (:func:`benchmarks.renderer_share.recipe_setup`), compiles ``Trainer.run``
of :data:`STEPS_PER_CALL` steps, makes one warm-up call and then times ``--calls`` calls; the child reports the
median ms per step. The settings run in ``--rounds`` rounds, each in a fresh shuffled order (seeded), so a load
change touches every setting alike; the table gives each setting's median over rounds, its range, and its ratio
to no flag. A setting also says which kernel library ran its dot products (the fusions named in the compiled
program: ``ynn`` YNNPACK, ``xnn`` XNNPACK, ``onednn`` oneDNN).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time

#: The settings compared by default: ``{label: XLA_FLAGS}``.
SETTINGS = {
    "no flag": "",
    "oneDNN enabled": "--xla_cpu_use_onednn=true",
    "oneDNN dots": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot",
    "no XNNPACK": "--xla_cpu_use_xnnpack=false",
    "no YNNPACK": "--xla_cpu_experimental_ynn_fusion_type=",
    "512-bit vectors": "--xla_cpu_prefer_vector_width=512",
    "fast math": "--xla_cpu_enable_fast_math=true",
}
STEPS_PER_CALL = 20


def child(recipe: str, calls: int) -> dict:
    """In this process (its ``XLA_FLAGS`` already set): median ms per step of ``Trainer.run``, and the fusions."""
    import jax

    from benchmarks.renderer_share import compiled_run, named_setup

    run = compiled_run(named_setup(recipe), STEPS_PER_CALL)
    kernels = sorted(set(re.findall(r"%(ynn|xnn|onednn)_fusion", run.compiled.as_text())))
    jax.block_until_ready(run.call())
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(run.call())
        seconds.append(time.perf_counter() - start)
    return {"ms_per_step": 1e3 * statistics.median(seconds) / STEPS_PER_CALL, "kernels": kernels}


def measure(recipe: str, settings: dict[str, str], rounds: int, calls: int, seed: int = 0) -> dict[str, list[dict]]:
    """``{label: [child report per round]}``, the settings interleaved in shuffled order round by round."""
    reports = {label: [] for label in settings}
    order, rng = list(settings), random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for label in order:
            env = {**os.environ, "XLA_FLAGS": settings[label]}
            code = f"import json, benchmarks.xla_flags as m; print(json.dumps(m.child({recipe!r}, {calls})))"
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            reports[label].append(json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0
                                  else {"failed": _failure(out)})
    return reports


def _failure(out: subprocess.CompletedProcess) -> str:
    """How a child ended without a report: its signal or exit status, and its last line of output."""
    how = f"signal {signal.Signals(-out.returncode).name}" if out.returncode < 0 else f"exit {out.returncode}"
    last = (out.stderr.strip().splitlines() or [""])[-1][:100]
    return f"{how}: {last}" if last else how


def markdown(recipe: str, settings: dict[str, str], reports: dict[str, list[dict]], machine: dict) -> str:
    done = {label: [r for r in runs if "failed" not in r] for label, runs in reports.items()}
    base = statistics.median(r["ms_per_step"] for r in done["no flag"]) if done.get("no flag") else None
    lines = [f"{recipe}, batch 64, `Trainer.run` of {STEPS_PER_CALL} steps a call, {machine['date']}, "
             f"{machine['cpu_model']}, {machine['cpu_count']} cores (load average at start {machine['load_average']}), "
             f"jax {machine['versions']['jax']}; medians over {len(next(iter(reports.values())))} rounds.", "",
             "| setting | `XLA_FLAGS` | ms per step (range) | ÷ no flag | dot kernels |", "|---|---|---|---|---|"]
    for label, runs in done.items():
        if not runs:
            lines.append(f"| {label} | `{settings[label]}` | failed ({reports[label][0]['failed']}) | – | – |")
            continue
        ms = [r["ms_per_step"] for r in runs]
        ratio = f"{statistics.median(ms) / base:.2f}×" if base else "–"
        lines.append(f"| {label} | `{settings[label] or '(none)'}` | {statistics.median(ms):.1f} "
                     f"({min(ms):.1f}–{max(ms):.1f}) | {ratio} | {', '.join(runs[0]['kernels']) or '–'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.harness import machine_info
    from benchmarks.renderer_share import NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=tuple(NAMES), default="convnet")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--settings", nargs="*", choices=tuple(SETTINGS), default=list(SETTINGS))
    args = parser.parse_args(argv)
    settings = {label: SETTINGS[label] for label in args.settings}
    reports = measure(args.recipe, settings, args.rounds, args.calls)
    print(markdown(args.recipe, settings, reports, machine_info()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
