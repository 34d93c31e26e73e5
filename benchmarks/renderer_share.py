"""The procedural dSprites renderer's share of a training step: ``python -m benchmarks.renderer_share``.

A run on procedural dSprites renders every batch inside its compiled training program (the batch
function of :class:`decompvae.data.TrainingData`, called by each step of ``Trainer.run``'s scan),
so rendering costs step time rather than host time. This measures how much, for each recipe
(:data:`RECIPES`: the calibrated dense recipe and the published convnet), built through the
library's public path (``Config`` → :func:`decompvae.build.build`), in the same interleaved rounds:

- ``run``: ``Trainer.run`` of ``--steps`` steps, per step (each renders its batch of B images);
- ``batches``: the same steps' batches alone (the run's batch function in a ``lax.scan`` over the
  same keys and steps, each batch reduced to one number so that nothing else is kept), per step.

The renderer's share is ``batches / run``: the fraction of a step that is rendering, an upper bound
on what moving it off the critical path could save. Each table carries the machine, its load and
what each side computes with (:func:`benchmarks.harness.machine_info`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from benchmarks.bench_report import backends_line
from benchmarks.harness import interleaved, machine_info
from decompvae.build import build
from decompvae.config import Config
from decompvae.objective import Hyperparams

#: Recipe → the model section of its config (procedural dSprites, D = 10, Bernoulli, isotropic prior, batch 64).
RECIPES = {
    "calibrated dense [256, 256]": {"network": "mlp", "hidden": [256, 256]},
    "published convnet": {"network": "dsprites"},
}


#: Short names of :data:`RECIPES`, the ``--recipe`` choices of the benchmarks that time one recipe.
NAMES = {"dense": "calibrated dense [256, 256]", "convnet": "published convnet"}


def recipe_setup(model: dict, batch: int):
    """The run's :class:`~decompvae.build.RunSetup`, as ``decompvae train`` builds it."""
    return build(Config.from_dict({
        "data": {"name": "dsprites", "eval_points": 64},
        "model": {"latent_dim": 10, "likelihood": "bernoulli", "prior": "isotropic", **model},
        "train": {"batch_size": batch, "steps": 1, "log_every": 1, "checkpoint_every": 1},
    }))


def named_setup(name: str, batch: int = 64):
    """:func:`recipe_setup` of the recipe of short name ``name`` (a key of :data:`NAMES`)."""
    return recipe_setup(RECIPES[NAMES[name]], batch)


class CompiledRun(NamedTuple):
    """A recipe's compiled ``Trainer.run`` and a thunk calling it once, carrying its train state from call to call."""

    compiled: Any
    call: Callable[[], jax.Array]


def compiled_run(setup, steps: int) -> CompiledRun:
    """``setup``'s ``Trainer.run`` of ``steps`` steps, compiled now, from the train state of key 0 and learning rate
    5e-4 (``Hyperparams(prior={})``: β = 1, no regulariser); each ``call()`` runs it and returns the loss."""
    hyper = Hyperparams(prior={})
    state = jax.jit(setup.trainer.init)(jax.random.key(0), hyper, 5e-4)
    return compiled_call(setup.trainer.run, state, hyper, setup.data.data, steps)


def compiled_call(run, state, hyper, data, steps: int) -> CompiledRun:
    """``run(state, hyper, data, steps)`` (``Trainer.run``'s signature, or a sweep's over stacked members),
    compiled now; each ``call()`` advances the held ``state`` by one call and returns the loss."""
    holder = {"state": state}
    compiled = jax.jit(run, static_argnums=3).lower(state, hyper, data, steps).compile()

    def call():
        holder["state"], info = compiled(holder["state"], hyper, data)
        return info.loss

    return CompiledRun(compiled, call)


def thunks(setup, steps: int) -> dict:
    """``{"run": …, "batches": …}``: the training program of ``steps`` steps and its batches alone."""
    data, batch = setup.data.data, setup.data.batch

    @jax.jit
    def batches(key):
        def one(carry, step):
            return carry + jnp.sum(batch(jax.random.fold_in(key, step), step, data)), None
        return jax.lax.scan(one, jnp.zeros(()), jnp.arange(steps))[0]

    return {"run": compiled_run(setup, steps).call, "batches": lambda: batches(jax.random.key(1))}


def measure(batch: int, steps: int, repeats: int) -> list[dict]:
    """One row per recipe: ms per step of the run and of its batches alone, and the renderer's share."""
    rows = []
    for name, model in RECIPES.items():
        seconds = interleaved(thunks(recipe_setup(model, batch), steps), repeats, order_seed=0)
        run, batches = (statistics.median(seconds[k]) / steps * 1e3 for k in ("run", "batches"))
        rows.append({"recipe": name, "batch": batch, "run_ms_per_step": run, "batches_ms_per_step": batches,
                     "share": batches / run, "repeats": repeats, "steps_per_call": steps})
    return rows


def markdown(report: dict) -> str:
    """The table, under the machine and its compute backends."""
    m = report["machine"]
    lines = [f"Renderer's share of a training step, {m['date']}, {m['cpu_model']}, {m['cpu_count']} cores "
             f"(load average at start {m['load_average']}), jax {m['versions']['jax']}; medians of "
             f"{report['rows'][0]['repeats']} interleaved rounds, {report['rows'][0]['steps_per_call']} steps a call. "
             f"Command: `{report['command']}`.", "", backends_line(m["backends"]), "",
             "| recipe | B | step (`Trainer.run`) ms | its batches alone ms | renderer's share |", "|---|---|---|---|---|"]
    lines += [f"| {r['recipe']} | {r['batch']} | {r['run_ms_per_step']:.2f} | {r['batches_ms_per_step']:.3f} | "
              f"{100 * r['share']:.1f} % |" for r in report["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps per call of the scanned programs")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=pathlib.Path, help="write renderer_share.json and .md here")
    args = parser.parse_args(argv)
    report = {"machine": machine_info(), "command": " ".join(["python -m benchmarks.renderer_share", *(argv or sys.argv[1:])]),
              "rows": measure(args.batch, args.steps, args.repeats)}
    text = markdown(report)
    print(text, end="")
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "renderer_share.json").write_text(json.dumps(report, indent=1))
        (args.output / "renderer_share.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
