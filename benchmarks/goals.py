"""The benchmark's goals, read from ``benchmarks/goals.toml``, checked against a report's figures.

:func:`check` returns the ``goals`` section of a report (JSON-able): each goal's measured ratio,
the goal it was checked against and whether it is met (None where the run did not measure it).
"""

from __future__ import annotations

import math
import pathlib
import tomllib
from typing import Any, NamedTuple

from decompvae.networks import resolve_conv_impl

__all__ = ["GOALS", "Goals", "check", "load_goals", "single_steps"]


class Goals(NamedTuple):
    """The goals (``benchmarks/goals.toml``).

    Attributes:
      torch_ratio: per-model step ≤ this × PyTorch's fastest variant.
      vmap_ratio: vmapped per-model time ≤ this × the best single-model step.
      gpu_speedup: on a GPU, a sweep of ``gpu_n`` models ≥ this × a Python loop's throughput.
      gpu_n: the sweep size of that goal.
      compile_s: compile time of a sweep program ≤ this many seconds.
    """

    torch_ratio: float
    vmap_ratio: float
    gpu_speedup: float
    gpu_n: int
    compile_s: float


def load_goals(path: str | pathlib.Path = pathlib.Path(__file__).with_name("goals.toml")) -> Goals:
    """The goals of a TOML file's ``[goals]`` table."""
    with open(path, "rb") as f:
        return Goals(**tomllib.load(f)["goals"])


GOALS = load_goals()


def single_steps(report: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """``({variant: median ms of Trainer.step}, {variant: median ms per step of Trainer.run})`` of the JAX rows."""
    single = report["single"]["timings"]
    steps = {k.split()[1]: v["median_ms"] for k, v in single.items() if k.startswith("jax ") and k.endswith(" step")}
    runs = {k.split()[1]: v["median_ms"] for k, v in single.items() if k.startswith("jax ") and k.endswith(" run")}
    return steps, runs


def check(report: dict[str, Any], goals: Goals = GOALS) -> dict[str, Any]:
    """The goals against the measured figures (None where not measured)."""
    steps, runs = single_steps(report)
    best_single = min(list(steps.values()) + list(runs.values()))
    auto = resolve_conv_impl("auto", report["machine"]["backend"])
    default = auto if auto in steps else "auto" if "auto" in steps else min(steps, key=steps.get)
    out: dict[str, Any] = {"best_single_ms": best_single, "default_impl": default,
                           "torch_ratio": _torch_ratio(report, steps, runs, default, best_single, goals)}
    out["vmap_ratio"] = _vmap_ratio(report, best_single, goals)
    out["sweep_strategy"] = _sweep_strategy(report, best_single, goals)
    vmap, loop = report["sweeps"]["vmap"], report["sweeps"]["loop"]
    out["vmap_vs_loop_throughput"] = {n: loop[n]["median_ms"] / vmap[n]["median_ms"] for n in vmap if n in loop}
    out["compile"] = _compile(report, goals)
    low = {k: v for k, v in steps.items() if k.endswith("+bf16")}
    out["bf16_vs_f32"] = {k: min(v, runs.get(k, math.inf)) / min(steps[k[:-5]], runs.get(k[:-5], math.inf))
                          for k, v in low.items() if k[:-5] in steps}
    out["vs_torch_sweeps"] = _vs_torch_sweeps(report)
    if report["machine"]["backend"] == "gpu":
        out["gpu_sweep64_vs_loop"] = _gpu_sweep(report, out["vmap_vs_loop_throughput"], goals)
    return out


def _torch_ratio(report, steps, runs, default: str, best_single: float, goals: Goals) -> dict | None:
    """Our step ÷ PyTorch's fastest variant (all cores or one thread), default and best formulation."""
    torch_ms = [v["median_ms"] for k, v in report["single"]["timings"].items() if k.startswith("torch ")]
    if not torch_ms:
        return None
    torch_best = min(torch_ms)
    best_ratio = best_single / torch_best
    return {"torch_ms": torch_best, "default_impl": min(steps[default], runs.get(default, math.inf)) / torch_best,
            "best_impl": best_ratio, "goal": goals.torch_ratio, "met": best_ratio <= goals.torch_ratio}


def _vmap_ratio(report, best_single: float, goals: Goals) -> dict:
    """Per-model time of each vmapped sweep ÷ the best single step; the best N > 1."""
    ratios = {n: v["median_ms"] / best_single for n, v in report["sweeps"]["vmap"].items()}
    multi = {n: r for n, r in ratios.items() if int(n) > 1}
    best_n = min(multi, key=multi.get) if multi else None
    return {"per_n": ratios, "best_n": best_n, "best": multi.get(best_n), "goal": goals.vmap_ratio,
            "met": bool(multi) and multi[best_n] <= goals.vmap_ratio}


def _sweep_strategy(report, best_single: float, goals: Goals) -> dict:
    """The fastest way to train N members in one program: all vmapped, or looped in vmapped groups."""
    sweeps = report["sweeps"]
    options = {n: {"all": v["median_ms"]} for n, v in sweeps["vmap"].items()}
    for k, per_n in sweeps.get("strategies", {}).items():
        for n, v in per_n.items():
            if "median_ms" in v:
                options.setdefault(n, {})[f"groups of {k}"] = v["median_ms"]
    fastest = {n: min(o, key=o.get) for n, o in options.items()}
    return {"fastest": fastest, "ratio": {n: options[n][f] / best_single for n, f in fastest.items()},
            "default_vectorize": sweeps.get("default_vectorize"), "goal": goals.vmap_ratio,
            "met": any(options[n][f] / best_single <= goals.vmap_ratio for n, f in fastest.items() if int(n) > 1)}


def _compile(report, goals: Goals) -> dict:
    """The longest compile of a sweep program (the main sweep's and its variants')."""
    sweeps = report["sweeps"]
    compiles = [v.get("compile_s") for v in sweeps["vmap"].values()] + [
        v.get("compile_s") for variant in sweeps.get("variants", {}).values() for v in variant.values()]
    compiles = [c for c in compiles if c is not None]
    return {"max_sweep_compile_s": max(compiles) if compiles else None, "goal": goals.compile_s,
            "met": bool(compiles) and max(compiles) <= goals.compile_s}


def _vs_torch_sweeps(report) -> dict:
    """Our vmapped sweep ÷ PyTorch's loop and ``torch.func`` ensemble, per N (per model-step)."""
    sweeps = report["sweeps"]
    vmap, torch_loop, torch_func = sweeps["vmap"], sweeps.get("torch_loop", {}), sweeps.get("torch_func", {})
    return {n: {"vmap_vs_torch_loop": vmap[n]["median_ms"] / torch_loop[n]["median_ms"],
                "vmap_vs_torch_func": vmap[n]["median_ms"] / torch_func[n]["median_ms"]}
            for n in torch_loop if n in vmap and "median_ms" in torch_loop[n]}


def _gpu_sweep(report, speedups: dict, goals: Goals) -> dict:
    """On a GPU: a sweep of ``gpu_n`` models against a loop, the main sweep and the best of its variants."""
    sweeps, n = report["sweeps"], goals.gpu_n
    at_n = {sweeps["sweep_impl"]: sweeps["vmap"].get(n, {}).get("median_ms")}
    at_n.update({name: v.get(n, {}).get("median_ms") for name, v in sweeps.get("variants", {}).items()})
    at_n = {k: v for k, v in at_n.items() if v}
    best = min(at_n, key=at_n.get) if at_n else None
    best_sp = sweeps["loop"][n]["median_ms"] / at_n[best] if best and n in sweeps["loop"] else None
    sp = speedups.get(n)
    return {"speedup": sp, "goal": goals.gpu_speedup, "best_variant": best, "best_speedup": best_sp,
            "met": max(sp or 0.0, best_sp or 0.0) >= goals.gpu_speedup}
