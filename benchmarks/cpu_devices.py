"""CPU sweeps: one multi-threaded XLA device, or one XLA device per core, or a loop — side by side.

``python benchmarks/cpu_devices.py [--ns 1 2 4 8] [--rounds 2] [--json PATH]`` (or
``python -m benchmarks.cpu_devices``) times the published dSprites network's
AMSGrad step (batch 64, the library's trainer, ``conv_impl="auto"``) per
model-step for each candidate:

- ``vmap, 1 device``: today's sweep, ``make_sweep`` without a mesh; XLA:CPU
  spreads each operation over all cores (Eigen/XNNPACK thread pool);
- ``sharded, 1 device per core``: ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>``
  and the members sharded over those devices through ``make_sweep``'s mesh
  (``jax.shard_map``), as the runner does when it finds several devices;
- ``sharded, 1 device per core, single-threaded ops``: the same with
  ``--xla_cpu_multi_thread_eigen=false`` (each device's operations on one thread);
- ``loop``: a Python loop of jitted single-model steps on one device.

XLA reads its flags once, when jax is imported, so each candidate runs in its
own subprocess (``--worker``); the candidates alternate within every round so
that load from other processes hits them alike. N that the device count does
not divide run on ``gcd(N, devices)`` devices, the runner's rule.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time

if __package__ in (None, ""):  # ``python benchmarks/cpu_devices.py`` from a checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

__all__ = ["CANDIDATES", "candidate_env", "format_markdown", "main", "run_candidates"]

#: name → (XLA_FLAGS template, worker mode); ``{cores}`` is the core count.
CANDIDATES = {
    "vmap, 1 device": ("", "vmap"),
    "sharded, 1 device per core": ("--xla_force_host_platform_device_count={cores}", "sharded"),
    "sharded, 1 device per core, single-threaded ops": (
        "--xla_force_host_platform_device_count={cores} --xla_cpu_multi_thread_eigen=false", "sharded"),
    "loop of single steps": ("", "loop"),
}


def candidate_env(name: str, cores: int | None = None) -> dict[str, str]:
    """The environment of a candidate's subprocess: ``XLA_FLAGS`` replaced by the candidate's flags."""
    cores = cores or os.cpu_count() or 1
    env = dict(os.environ)
    env["XLA_FLAGS"] = CANDIDATES[name][0].format(cores=cores)
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _worker(mode: str, ns: list[int], repeats: int, scan_steps: int, batch: int) -> dict:
    """Time one candidate in this process (its XLA flags already in the environment)."""
    import jax  # noqa: PLC0415 - imported here: the parent never imports jax with the child's flags

    from benchmarks.bench import make_bench_trainer, sprites_batch
    from benchmarks.harness import interleaved, summary
    from decompvae.objective import Hyperparams
    from decompvae.sweep import Grid, init_members, make_sweep, stack_members, sweep_mesh

    trainer, _, _ = make_bench_trainer("auto", 10)
    data = sprites_batch(batch)
    out = {"devices": jax.device_count(), "xla_flags": os.environ.get("XLA_FLAGS", ""), "ns": {}}
    for n in ns:
        hyper, lrs, keys = stack_members(Grid(seed=list(range(n))).members())
        used = math.gcd(jax.device_count(), n) if mode == "sharded" else 1
        start = time.perf_counter()
        if mode == "loop":
            hyper1 = Hyperparams(beta=jax.numpy.float32(1.0), alpha=jax.numpy.float32(0.0), prior={})
            states = [jax.jit(trainer.init)(keys[i], hyper1, 5e-4) for i in range(n)]
            step = jax.jit(trainer.step).lower(states[0], hyper1, data).compile()

            def call(states=states, step=step, hyper1=hyper1):
                for i, s in enumerate(states):
                    states[i], info = step(s, hyper1, data)
                return info

            per_call = n
        else:
            mesh = sweep_mesh(jax.devices()[:used]) if used > 1 else None
            sweep = make_sweep(trainer, mesh=mesh)
            state = init_members(sweep, keys, hyper, lrs)
            hyper_s, data_s = sweep.shard(hyper), sweep.replicate(data)
            run = sweep.run.lower(state, hyper_s, data_s, scan_steps).compile()
            box = [state]

            def call(box=box, run=run, hyper_s=hyper_s, data_s=data_s):
                box[0], info = run(box[0], hyper_s, data_s)
                return info

            per_call = n * scan_steps
        compile_s = time.perf_counter() - start
        times = interleaved({"call": call}, repeats)["call"]
        out["ns"][n] = {**summary(times, per=per_call), "devices_used": used, "compile_s": compile_s}
    return out


def run_candidates(ns=(1, 2, 4, 8), rounds: int = 2, repeats: int = 3, scan_steps: int = 3, batch: int = 64,
                   candidates=None, timeout_s: float = 900, log=print) -> dict:
    """Run every candidate ``rounds`` times in alternating subprocesses.

    Returns:
      ``{"machine", "rounds": [...], "summary": {candidate: {N: {median_ms, min_ms, max_ms, rounds}}}}``;
      ``median_ms`` is the median over rounds of each round's median.
    """
    candidates = list(candidates or CANDIDATES)
    args = ["--ns", *map(str, ns), "--repeats", str(repeats), "--scan-steps", str(scan_steps), "--batch", str(batch)]
    root = pathlib.Path(__file__).resolve().parent.parent
    per_round = []
    for r in range(rounds):
        results = {}
        for name in candidates:
            cmd = [sys.executable, "-m", "benchmarks.cpu_devices", "--worker", CANDIDATES[name][1], *args]
            proc = subprocess.run(cmd, env=candidate_env(name), cwd=root, capture_output=True, text=True,
                                  timeout=timeout_s)
            if proc.returncode:
                raise RuntimeError(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            log(f"  round {r + 1} {name}: " + ", ".join(f"N={n} {v['median_ms']:.1f}"
                                                       for n, v in results[name]["ns"].items()) + " ms/model-step")
        per_round.append(results)
    summary = {}
    for name in candidates:
        summary[name] = {}
        for n in map(str, ns):
            medians = [rnd[name]["ns"][n]["median_ms"] for rnd in per_round]
            summary[name][n] = {"median_ms": statistics.median(medians), "min_ms": min(medians),
                                "max_ms": max(medians), "rounds": len(medians),
                                "devices_used": per_round[0][name]["ns"][n]["devices_used"],
                                "compile_s": per_round[0][name]["ns"][n]["compile_s"]}
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"cpu_count": os.cpu_count(), "load_average_end": load, "ns": list(ns), "rounds": per_round,
            "summary": summary, "flags": {name: CANDIDATES[name][0] for name in candidates},
            "scan_steps": scan_steps, "batch": batch, "repeats": repeats}


def format_markdown(result: dict) -> str:
    """A table of ms per model-step: candidates × N, and each ÷ the vmap on one device."""
    summary, ns = result["summary"], [str(n) for n in result["ns"]]
    base = summary.get("vmap, 1 device")
    lines = ["| candidate | " + " | ".join(f"N = {n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    for name, row in summary.items():
        cells = []
        for n in ns:
            e = row[n]
            ratio = f" ({e['median_ms'] / base[n]['median_ms']:.2f}×)" if base and name != "vmap, 1 device" else ""
            cells.append(f"{e['median_ms']:.1f} [{e['min_ms']:.0f}–{e['max_ms']:.0f}]{ratio}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scan-steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--worker", choices=("vmap", "sharded", "loop"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.ns, args.repeats, args.scan_steps, args.batch)))
        return 0
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    print(f"cpu_devices: {os.cpu_count()} cores, load average {load}", flush=True)
    result = run_candidates(args.ns, args.rounds, args.repeats, args.scan_steps, args.batch,
                            log=lambda s: print(s, flush=True))
    result["load_average_start"] = load
    print(format_markdown(result))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
