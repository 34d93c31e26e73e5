"""A sweep's step per model against one model's, as a run pays them: ``python -m benchmarks.sweep_step``.

For one recipe built through the library's public path (:func:`benchmarks.renderer_share.named_setup`), this
compiles ``make_sweep(trainer).run`` (the backend's default grouping of members: on CPU one member at a time
inside the program) for one member and for each N of ``--members``, each over ``--steps`` steps a call (a run's
chunk), and times them in interleaved rounds (:func:`benchmarks.harness.interleaved_clocks`, shuffled order):
ms per model-step (a call's time ÷ (N × steps)) and its ratio to the single model's ``Trainer.run``, the quantity
issue 43's "sweep of 8 ≤ 1.05× the single step per model" names. Two references run in the same rounds: the
single model's ``Trainer.run`` (:func:`benchmarks.renderer_share.compiled_run`), which a sweep of one member now
is, and ``jax.vmap`` of it over one member, which a sweep of one member was before 2026-12-07.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import jax

from benchmarks.harness import interleaved_clocks, machine_info
from benchmarks.renderer_share import NAMES, compiled_call, compiled_run, named_setup
from decompvae.sweep import Grid, init_members, make_sweep, stack_members

#: The reference programs, each of one model: ``Trainer.run`` itself and a vmap of it over one member.
TRAINER_RUN, VMAP_OF_ONE = "Trainer.run", "vmap of 1"


def program(setup, n: int | str, steps: int):
    """A thunk calling, for ``steps`` steps a call, the compiled sweep of ``n`` members (seeds 0 … n − 1), or the
    reference ``n`` (:data:`TRAINER_RUN`, :data:`VMAP_OF_ONE`)."""
    if n == TRAINER_RUN:
        return compiled_run(setup, steps).call
    sweep = make_sweep(setup.trainer)
    run = jax.vmap(setup.trainer.run, in_axes=(0, 0, None, None)) if n == VMAP_OF_ONE else sweep.run
    hyper, lrs, keys = stack_members(Grid(seed=list(range(1 if n == VMAP_OF_ONE else n))).members())
    return compiled_call(run, init_members(sweep, keys, hyper, lrs), hyper, setup.data.data, steps).call


def measure(setup, members: list[int], steps: int, repeats: int) -> list[dict]:
    """One row per program (the references, then N = 1 and each N): median ms per model-step over interleaved
    rounds, and its ratio to :data:`TRAINER_RUN`'s."""
    ns = [TRAINER_RUN, VMAP_OF_ONE, 1] + [n for n in members if n != 1]
    clocks = interleaved_clocks({n: program(setup, n, steps) for n in ns}, repeats, order_seed=0)
    per_model = {n: [1e3 * t / ((n if isinstance(n, int) else 1) * steps) for t in clocks[n].wall] for n in ns}
    single = statistics.median(per_model[TRAINER_RUN])
    return [{"members": n, "ms_per_model_step": statistics.median(ms), "low": min(ms), "high": max(ms),
             "over_single": statistics.median(ms) / single} for n, ms in per_model.items()]


def markdown(recipe: str, rows: list[dict], steps: int, repeats: int, machine: dict) -> str:
    lines = [f"{NAMES.get(recipe, recipe)}, batch 64, `make_sweep(trainer).run` of {steps} steps a call, "
             f"{machine['date']}, {machine['cpu_model']}, {machine['cpu_count']} cores (load average at start "
             f"{machine['load_average']}); medians of {repeats} interleaved rounds.", "",
             "| members | ms per model-step (range) | ÷ Trainer.run |", "|---|---|---|"]
    lines += [f"| {r['members']} | {r['ms_per_model_step']:.1f} ({r['low']:.1f}–{r['high']:.1f}) | "
              f"{r['over_single']:.3f}× |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=tuple(NAMES), default="convnet")
    parser.add_argument("--members", type=int, nargs="+", default=[8])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    setup = named_setup(args.recipe)
    rows = measure(setup, args.members, args.steps, args.repeats)
    print(markdown(args.recipe, rows, args.steps, args.repeats, machine_info()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
