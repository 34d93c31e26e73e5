"""What a training call costs beyond its steps: ``python -m benchmarks.call_cost [--recipe convnet|dense] [--torch]``.

A run trains through ``Trainer.run`` (a ``lax.scan`` of steps, one call per logged chunk); a user may instead jit
``Trainer.step`` and call it in a Python loop. Both compile the same step, but every call of a compiled XLA:CPU
program also touches its temporaries' pages afresh. This measures, for one recipe built through the library's
public path (:func:`benchmarks.renderer_share.recipe_setup`), ms per step and minor page faults per call
(``getrusage``'s ``ru_minflt``) for a jitted ``Trainer.step`` and for ``Trainer.run`` of 1, 3 and 20 steps a call,
each after a warm-up call, as medians of ``--repeats`` interleaved rounds
(:func:`benchmarks.harness.interleaved_clocks`); then fits ``ms per call = fixed + steps × per-step``
to the ``run`` figures (least squares), the fixed part being what a call costs beyond its steps. With ``--torch``
the PyTorch peer's step on one rendered batch (:mod:`benchmarks.torch_reference`, the same network) is timed in its
own rounds after the JAX ones (its OpenMP threads spin after each call and would slow whatever ran next), and
every program is given as a ratio to it.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import jax
import numpy as np

from benchmarks.harness import interleaved_clocks, machine_info
from benchmarks.renderer_share import NAMES, RECIPES, compiled_run, named_setup
from decompvae.objective import Hyperparams

STEPS_PER_CALL = (1, 3, 20)
#: Steps per ``Trainer.run`` call in a run at ``train.log_every``'s default.
RUN_CHUNK = 100


def thunks(setup) -> dict:
    """``{program: (steps per call, thunk)}``: a jitted ``Trainer.step`` and ``Trainer.run`` at each of
    :data:`STEPS_PER_CALL`, each carrying its own train state from call to call."""
    hyper, data = Hyperparams(prior={}), setup.data.data
    holder = {"state": jax.jit(setup.trainer.init)(jax.random.key(0), hyper, 5e-4)}
    step = jax.jit(setup.trainer.step)

    def one_step():
        holder["state"], info = step(holder["state"], hyper, data)
        return info.loss

    runs = {f"Trainer.run, {n} a call": (n, compiled_run(setup, n).call) for n in STEPS_PER_CALL}
    return {"jitted Trainer.step": (1, one_step), **runs}


def measure(recipe: str, repeats: int) -> list[dict]:
    """One row per program: ms per step and minor faults per call (medians of interleaved rounds)."""
    programs = thunks(named_setup(recipe))
    clocks = interleaved_clocks({name: go for name, (_, go) in programs.items()}, repeats, order_seed=0)
    rows = []
    for name, (steps, _) in programs.items():
        seconds = statistics.median(clocks[name].wall)
        rows.append({"program": name, "steps_per_call": steps, "ms_per_call": 1e3 * seconds,
                     "ms_per_step": 1e3 * seconds / steps,
                     "minor_faults_per_call": statistics.median(clocks[name].minor_faults)})
    return rows


def torch_row(recipe: str, repeats: int) -> dict:
    """The PyTorch peer's step on one batch of the recipe's data, in rounds of its own (its median ms)."""
    from benchmarks import torch_reference  # imports torch, an optional dependency

    setup = named_setup(recipe)
    x = np.asarray(setup.data.batch(jax.random.key(0), 0, setup.data.data))
    hidden = RECIPES[NAMES[recipe]].get("hidden")
    step = torch_reference.make_step(x, hidden=tuple(hidden) if hidden else None, seed=0)
    seconds = statistics.median(interleaved_clocks({"torch": step}, repeats)["torch"].wall)
    return {"program": f"PyTorch {torch_reference.torch_version()} step (its own rounds)", "steps_per_call": 1,
            "ms_per_call": 1e3 * seconds, "ms_per_step": 1e3 * seconds, "minor_faults_per_call": None}


def fixed_and_per_step(rows: list[dict]) -> tuple[float, float]:
    """Least-squares ``(fixed ms per call, ms per step)`` of ``ms per call = fixed + steps × per-step`` (runs)."""
    runs = [r for r in rows if r["program"].startswith("Trainer.run")]
    per_step, fixed = np.polyfit([r["steps_per_call"] for r in runs], [r["ms_per_call"] for r in runs], 1)
    return float(fixed), float(per_step)


def markdown(recipe: str, rows: list[dict], machine: dict) -> str:
    fixed, per_step = fixed_and_per_step(rows)
    peer = next((r["ms_per_step"] for r in rows if r["program"].startswith("PyTorch")), None)
    lines = [f"{NAMES[recipe]}, batch 64, {machine['date']}, {machine['cpu_model']}, {machine['cpu_count']} cores "
             f"(load average at start {machine['load_average']}), jax {machine['versions']['jax']}.", "",
             "| program | ms per step | ÷ PyTorch | minor page faults per call |", "|---|---|---|---|"]
    for r in rows:
        faults = "–" if r["minor_faults_per_call"] is None else f"{r['minor_faults_per_call']:,.0f}"
        ratio = f"{r['ms_per_step'] / peer:.2f}×" if peer else "–"
        lines.append(f"| {r['program']} | {r['ms_per_step']:.1f} | {ratio} | {faults} |")
    chunk = fixed / RUN_CHUNK + per_step
    at_chunk = f" ({chunk / peer:.2f}× PyTorch)" if peer else ""
    lines += ["", f"Fit over the runs: {fixed:.1f} ms per call + {per_step:.1f} ms per step; at a run's chunk of "
              f"{RUN_CHUNK} steps (`train.log_every`'s default) {chunk:.1f} ms per step{at_chunk}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=tuple(NAMES), default="convnet")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch", action="store_true", help="time the PyTorch peer too (in its own rounds, after)")
    args = parser.parse_args(argv)
    rows = measure(args.recipe, args.repeats)
    rows += [torch_row(args.recipe, args.repeats)] if args.torch else []
    print(markdown(args.recipe, rows, machine_info()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
