"""Speed benchmarks: ``python -m benchmarks.run [--quick] [--output DIR]`` from a checkout.

One run measures, with a warm-up and medians over interleaved repeats:

- the matrix-multiply peak of the machine (a float32 ``jnp.dot``), the
  yardstick for achieved FLOP/s;
- the Adam training step of the published dSprites network (batch 64,
  D = 10, Bernoulli likelihood, isotropic Gaussian prior), built from the
  library's own ``make_networks`` → ``make_objective`` → ``make_trainer``:
  one model per convolution formulation (``Trainer.step`` and ``Trainer.run``
  per step), side by side with the same network in PyTorch when it is
  installed (``pip install decompvae[bench]``), as a ratio;
- a breakdown of the step: encoder and decoder forward and forward+backward,
  and the optimiser update, each jitted alone;
- vmapped sweeps (``decompvae.sweep``) of N models against a Python loop of
  single-model steps: per-model time and throughput in model-steps/s;
- compile times, XLA's memory analysis of each program and the process's
  peak resident memory;
- the dSprites renderer's throughput and the metric suite's time on 10,000
  points.

It writes ``bench.json`` (every figure and the machine), ``bench.md`` (the
tables) and ``throughput.png`` (model-steps/s against N) to the output
directory. On a GPU the sweep sizes extend to 256 models (untested so far:
no GPU measurement has been recorded).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import decompvae.metrics as metrics
from decompvae.data import FACTOR_SIZES, render_factors, sample_uniform_factors
from decompvae.networks import make_networks, resolve_conv_impl
from decompvae.objective import Hyperparams, make_objective
from decompvae.plots import pyplot
from decompvae.priors import make_prior, pinwheel_mixture
from decompvae.sweep import Grid, init_members, make_sweep, stack_members
from decompvae.train import make_optimizer, make_trainer

__all__ = ["BenchConfig", "format_markdown", "machine_info", "main", "make_config", "run_benchmark"]

#: Goals of the benchmark issue, checked in the report.
GOAL_TORCH_RATIO = 0.5  # per-model step ≤ 0.5 × PyTorch on CPU
GOAL_VMAP_RATIO = 0.8  # vmapped per-model time ≤ 0.8 × the best single-model step
GOAL_GPU_SPEEDUP = 20.0  # GPU: a sweep of 64 ≥ 20 × the throughput of a loop
GOAL_GPU_N = 64


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Sizes of one benchmark run (see :func:`make_config`)."""

    quick: bool
    batch: int
    latent_dim: int
    impls: tuple[str, ...]  # convolution formulations timed as single models
    sweep_impl: str  # formulation of the vmapped sweep
    ns: tuple[int, ...]  # vmapped sweep sizes
    loop_ns: tuple[int, ...]  # Python-loop sizes
    scan_steps: int  # steps per Trainer.run call
    repeats: int
    sweep_repeats: int
    matmul_size: int
    render_batch: int
    metric_points: int  # train points of the metric suite (test: half)
    dci_points: int  # train points for DCI (0: skip)
    torch: bool  # run the PyTorch peer when importable
    breakdown: bool  # time encoder/decoder forward/backward and the update separately


def make_config(quick: bool = False, backend: str | None = None) -> BenchConfig:
    """The benchmark sizes for a backend.

    Args:
      quick: tiny sizes, one repeat and the quickly compiled ``"lax"``
        formulation: a smoke test (three programs to compile; 74 s in all
        on a 2-core machine at load average 9, mostly compilation).
      backend: ``"cpu"``, ``"gpu"``…; None for ``jax.default_backend()``.

    Returns:
      A :class:`BenchConfig`. On a GPU the sweep goes up to 256 models and the
      loop up to 64; on CPU both to 16.
    """
    backend = jax.default_backend() if backend is None else backend
    full = dict(quick=False, batch=64, latent_dim=10, impls=("lax", "phase", "matmul"), sweep_impl="auto",
                metric_points=10_000, dci_points=1_000, torch=True, breakdown=True)
    if quick:
        return BenchConfig(quick=True, batch=4, latent_dim=10, impls=("lax",), sweep_impl="lax", ns=(2,),
                           loop_ns=(2,), scan_steps=2, repeats=1, sweep_repeats=1, matmul_size=256,
                           render_batch=256, metric_points=500, dci_points=0, torch=True, breakdown=False)
    if backend == "cpu":
        ns = (1, 2, 4, 8, 16)
        return BenchConfig(**full, ns=ns, loop_ns=ns, scan_steps=3, repeats=5, sweep_repeats=3, matmul_size=2048,
                           render_batch=1024)
    return BenchConfig(**full, ns=(1, 2, 4, 8, 16, 32, 64, 128, 256), loop_ns=(1, 2, 4, 8, 16, 32, 64), scan_steps=5,
                       repeats=7, sweep_repeats=5, matmul_size=8192, render_batch=16384)


# --------------------------------------------------------------------------
# The machine.


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """``lscpu``'s model name, or the platform's processor/machine string."""
    return _lscpu().get("Model name") or platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, core count, load, devices and library versions."""
    cpu = _lscpu()
    device = jax.devices()[0]
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads_per_core": cpu.get("Thread(s) per core"),
        "hypervisor": cpu.get("Hypervisor vendor"),
        "load_average": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "versions": {p: _version(p) for p in ("jax", "jaxlib", "flax", "optax", "distrax", "numpy", "scikit-learn", "torch")},
    }


# --------------------------------------------------------------------------
# Timing helpers.


def _summary(seconds: list[float], per: float = 1.0) -> dict[str, float]:
    """Median, min and max of ``seconds / per`` in milliseconds."""
    ms = [1e3 * s / per for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "repeats": len(ms)}


def _interleaved(thunks: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each thunk per round, after one warm-up call each; rounds interleave the thunks."""
    for fn in thunks.values():
        jax.block_until_ready(fn())
    times: dict[str, list[float]] = {name: [] for name in thunks}
    for _ in range(repeats):
        for name, fn in thunks.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
    return times


def _compile(jitted, *args) -> tuple[Any, float]:
    """``jitted.lower(*args).compile()`` and its wall time in seconds."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


def _flops(compiled) -> float | None:
    """FLOPs of a compiled program from XLA's cost analysis (None when not reported)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - a backend without cost analysis
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    value = (cost or {}).get("flops")
    return None if value is None or value < 0 else float(value)


def _memory(compiled) -> dict[str, int] | None:
    """XLA's memory analysis: argument, output, temporary bytes and their sum."""
    try:
        mem = compiled.memory_analysis()
    except Exception:  # noqa: BLE001
        return None
    if mem is None:
        return None
    parts = {
        "argument_bytes": int(mem.argument_size_in_bytes),
        "output_bytes": int(mem.output_size_in_bytes),
        "temp_bytes": int(mem.temp_size_in_bytes),
        "alias_bytes": int(getattr(mem, "alias_size_in_bytes", 0)),
    }
    parts["total_bytes"] = parts["argument_bytes"] + parts["output_bytes"] + parts["temp_bytes"]
    return parts


def _max_rss_bytes() -> int:
    """Peak resident memory of this process (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _device_peak_bytes() -> int | None:
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    return None if not stats else stats.get("peak_bytes_in_use")


class _Stepper:
    """A thunk that advances its own state with a compiled function each call."""

    def __init__(self, fn: Callable, state: Any, *args: Any):
        self.fn, self.state, self.args = fn, state, args

    def __call__(self):
        self.state, info = self.fn(self.state, *self.args)
        return info


class _Loop:
    """A Python loop of single-model steps over N states."""

    def __init__(self, fn: Callable, states: list, *args: Any):
        self.fn, self.states, self.args = fn, states, args

    def __call__(self):
        infos = []
        for i, state in enumerate(self.states):
            self.states[i], info = self.fn(state, *self.args)
            infos.append(info)
        return infos


# --------------------------------------------------------------------------
# The pieces being measured.


def matmul_peak(size: int, repeats: int) -> dict[str, float]:
    """Achieved FLOP/s of a ``size × size`` float32 matrix product (``2·size³`` FLOPs)."""
    keys = jax.random.split(jax.random.key(1))
    a = jax.random.normal(keys[0], (size, size), jnp.float32)
    b = jax.random.normal(keys[1], (size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    times = _interleaved({"dot": lambda: dot(a, b)}, repeats)["dot"]
    median = statistics.median(times)
    return {"size": size, "flops": 2.0 * size**3, "median_ms": 1e3 * median,
            "gflops_per_s": 2.0 * size**3 / median / 1e9, "best_gflops_per_s": 2.0 * size**3 / min(times) / 1e9}


def sprites_batch(batch: int, seed: int = 0) -> jax.Array:
    """A fixed float32 dSprites batch ``[batch, 64, 64, 1]`` (uniform factors)."""
    return render_factors(sample_uniform_factors(jax.random.key(seed), batch, FACTOR_SIZES), dtype=jnp.float32)


def make_bench_trainer(conv_impl: str, latent_dim: int):
    """``(trainer, encoder, decoder)``: the library's dSprites training step on fixed data.

    The batch function returns ``data`` itself (the fixed batch passed as an
    argument), so the step measures the network, loss and optimiser only.
    """
    encoder, decoder = make_networks("dsprites", latent_dim, conv_impl=conv_impl)
    objective = make_objective(encoder, decoder, likelihood="bernoulli", prior=make_prior("isotropic", latent_dim))
    shape = tuple(encoder.image_shape)

    def init_params(key, hyper):
        key_enc, key_dec = jax.random.split(key)
        return {
            "encoder": encoder.init(key_enc, jnp.zeros((1, *shape), jnp.float32)),
            "decoder": decoder.init(key_dec, jnp.zeros((1, latent_dim), jnp.float32)),
        }

    trainer = make_trainer(objective, init_params, lambda key, step, data: data)
    return trainer, encoder, decoder


def _load_torch_reference():
    """:mod:`benchmarks.torch_reference` and None, or None and why (torch, an optional dependency, is missing)."""
    if importlib.util.find_spec("torch") is None:
        return None, "torch is not installed (pip install -e '.[bench]')"
    from benchmarks import torch_reference  # imports torch: only when it is installed

    return torch_reference, None


def bench_single(cfg: BenchConfig, data: jax.Array, hyper, log) -> dict[str, Any]:
    """One model per formulation (``step`` and ``run``), and the PyTorch peer, interleaved."""
    thunks, report, steppers = {}, {"impls": {}}, {}
    key = jax.random.key(0)
    for impl in cfg.impls:
        trainer, _, _ = make_bench_trainer(impl, cfg.latent_dim)
        state = jax.jit(trainer.init)(key, hyper, 5e-4)
        step = jax.jit(trainer.step)
        run = jax.jit(trainer.run, static_argnums=3)
        c_step, t_step = _compile(step, state, hyper, data)
        c_run, t_run = _compile(run, state, hyper, data, cfg.scan_steps)
        steppers[impl] = (c_step, t_step)
        thunks[f"jax {impl} step"] = _Stepper(c_step, state, hyper, data)
        thunks[f"jax {impl} run"] = _Stepper(c_run, state, hyper, data)
        report["impls"][impl] = {
            "resolved": resolve_conv_impl(impl),
            "compile_step_s": t_step,
            "compile_run_s": t_run,
            "xla_flops_per_step": _flops(c_step),
            "memory_step": _memory(c_step),
        }
        log(f"  compiled {impl} ({resolve_conv_impl(impl)}): step {t_step:.1f} s, run {t_run:.1f} s")
    torch_ref, why = (None, "skipped") if not cfg.torch else _load_torch_reference()
    if torch_ref is not None:
        cores = 1 if cfg.quick else os.cpu_count() or 1
        thunks["torch step"] = torch_ref.make_step(np.asarray(data), latent_dim=cfg.latent_dim, seed=0, threads=cores)
        if cores > 1 and not cfg.quick:
            # One intra-op thread: on a loaded machine, PyTorch's OpenMP threads
            # wait on each other; this variant shows how much of its time that is.
            thunks["torch step 1 thread"] = torch_ref.make_step(np.asarray(data), latent_dim=cfg.latent_dim,
                                                                seed=0, threads=1)
        report["torch"] = {"available": True, "version": torch_ref.torch_version(), "threads": cores}
    else:
        report["torch"] = {"available": False, "reason": why}
    times = _interleaved(thunks, cfg.repeats)
    timings = {}
    for name, seconds in times.items():
        per = cfg.scan_steps if name.endswith(" run") else 1
        timings[name] = _summary(seconds, per)
    report["timings"] = timings
    return report, steppers


def bench_breakdown(cfg: BenchConfig, data: jax.Array, log) -> dict[str, Any]:
    """Encoder and decoder forward / forward+backward and the optimiser update, jitted alone."""
    key_enc, key_dec, key_z = jax.random.split(jax.random.key(2), 3)
    z = jax.random.normal(key_z, (data.shape[0], cfg.latent_dim))
    thunks, flops = {}, {}
    for impl in cfg.impls:
        _, encoder, decoder = make_bench_trainer(impl, cfg.latent_dim)
        p_enc = encoder.init(key_enc, data[:1])
        p_dec = decoder.init(key_dec, z[:1])

        def enc_loss(p, x, encoder=encoder):
            loc, raw = encoder.apply(p, x)
            return jnp.sum(loc) + jnp.sum(raw)

        def dec_loss(p, zz, x, decoder=decoder):
            return jnp.sum(optax.sigmoid_binary_cross_entropy(decoder.apply(p, zz), x))

        pieces = {
            "encoder forward": (jax.jit(lambda p, x, encoder=encoder: encoder.apply(p, x)), (p_enc, data)),
            "encoder forward+backward": (jax.jit(jax.grad(enc_loss)), (p_enc, data)),
            "decoder forward": (jax.jit(lambda p, zz, x, dec_loss=dec_loss: dec_loss(p, zz, x)), (p_dec, z, data)),
            "decoder forward+backward": (jax.jit(jax.grad(dec_loss, argnums=(0, 1))), (p_dec, z, data)),
        }
        for piece, (fn, args) in pieces.items():
            compiled, _ = _compile(fn, *args)
            name = f"{impl} {piece}"
            thunks[name] = lambda compiled=compiled, args=args: compiled(*args)
            flops[name] = _flops(compiled)
    optimizer = make_optimizer()
    _, encoder, decoder = make_bench_trainer(cfg.impls[0], cfg.latent_dim)
    params = {"encoder": encoder.init(key_enc, data[:1]), "decoder": decoder.init(key_dec, z[:1])}
    opt_state = optimizer.init(params)

    def update(params, opt_state, grads):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    compiled, _ = _compile(jax.jit(update), params, opt_state, params)
    thunks["AMSGrad update"] = lambda: compiled(params, opt_state, params)
    flops["AMSGrad update"] = _flops(compiled)
    log(f"  breakdown: {len(thunks)} programs compiled")
    times = _interleaved(thunks, cfg.repeats)
    out = {name: {**_summary(t), "xla_flops": flops[name]} for name, t in times.items()}
    for impl in cfg.impls:
        for part in ("encoder", "decoder"):
            fwd = out[f"{impl} {part} forward"]["median_ms"]
            both = out[f"{impl} {part} forward+backward"]["median_ms"]
            out[f"{impl} {part} backward (difference)"] = {"median_ms": both - fwd}
    return out


def bench_sweeps(cfg: BenchConfig, data: jax.Array, loop_impl: str, log, compiled_steps=None) -> dict[str, Any]:
    """Vmapped sweeps (``cfg.sweep_impl``) and Python loops of single steps (``loop_impl``).

    ``compiled_steps`` maps a formulation to its ``(compiled single step,
    compile seconds)`` from :func:`bench_single`, reused for the loop.
    """
    trainer, _, _ = make_bench_trainer(cfg.sweep_impl, cfg.latent_dim)
    sweep = make_sweep(trainer)
    loop_trainer, _, _ = make_bench_trainer(loop_impl, cfg.latent_dim)
    loop_step = jax.jit(loop_trainer.step)
    results: dict[str, Any] = {"sweep_impl": cfg.sweep_impl, "loop_impl": loop_impl, "vmap": {}, "loop": {}}
    for n in sorted(set(cfg.ns) | set(cfg.loop_ns)):
        hyper, lrs, keys = stack_members(Grid(seed=list(range(n))).members())
        thunks = {}
        if n in cfg.ns:
            state = init_members(sweep, keys, hyper, lrs)
            compiled, seconds = _compile(sweep.run, state, hyper, data, cfg.scan_steps)
            thunks["vmap"] = _Stepper(compiled, state, hyper, data)
            results["vmap"][n] = {"compile_s": seconds, "memory": _memory(compiled),
                                  "xla_flops_per_call": _flops(compiled)}
        if n in cfg.loop_ns:
            hyper1 = jax.tree.map(lambda a: a[0], hyper)
            states = [jax.jit(loop_trainer.init)(keys[i], hyper1, 5e-4) for i in range(n)]
            if loop_impl in (compiled_steps or {}):
                compiled, seconds = compiled_steps[loop_impl]
            else:
                compiled, seconds = _compile(loop_step, states[0], hyper1, data)
                compiled_steps = {**(compiled_steps or {}), loop_impl: (compiled, seconds)}
            thunks["loop"] = _Loop(compiled, states, hyper1, data)
            results["loop"][n] = {"compile_s": seconds}
        times = _interleaved(thunks, cfg.sweep_repeats)
        for kind, seconds in times.items():
            steps = n * (cfg.scan_steps if kind == "vmap" else 1)
            summary = _summary(seconds, steps)
            summary["model_steps_per_s"] = 1e3 / summary["median_ms"]
            results[kind][n].update(summary)
        log(f"  N = {n}: " + ", ".join(f"{k} {results[k][n]['median_ms']:.1f} ms/model-step" for k in times))
    return results


def bench_renderer(cfg: BenchConfig) -> dict[str, Any]:
    """Images per second of ``render_factors`` in jit (uint8 and float32)."""
    factors = sample_uniform_factors(jax.random.key(3), cfg.render_batch, FACTOR_SIZES)
    thunks = {str(dtype.__name__): (lambda f=jax.jit(lambda x, d=dtype: render_factors(x, dtype=d)): f(factors))
              for dtype in (jnp.uint8, jnp.float32)}
    times = _interleaved(thunks, max(cfg.repeats, 3))
    return {"batch": cfg.render_batch,
            **{name: {**_summary(t), "images_per_s": cfg.render_batch / statistics.median(t)} for name, t in times.items()}}


_FACTOR_SIZES = (3, 6, 40, 32, 32)


def _synthetic_codes(seed: int, num: int, dims: int = 10):
    """dSprites-sized factors ``[num, 5]`` and codes ``[num, dims]``: 5 noisy mixed
    factor dimensions, ``dims − 6`` noise dimensions and one collapsed one."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, num) for s in _FACTOR_SIZES], axis=1)
    mixing = np.eye(5) + 0.2 * np.random.default_rng(123).normal(size=(5, 5))
    signal = factors / (np.array(_FACTOR_SIZES) - 1.0) @ mixing + 0.05 * rng.normal(size=(num, 5))
    return factors, np.concatenate([signal, rng.normal(size=(num, dims - 6)), np.zeros((num, 1))], axis=1)


def bench_metrics(cfg: BenchConfig, log) -> dict[str, Any]:
    """Seconds of each array-level metric on ``metric_points`` train / half as many test points."""
    n_train, n_test = cfg.metric_points, cfg.metric_points // 2
    f_train, c_train = _synthetic_codes(0, n_train)
    f_test, c_test = _synthetic_codes(1, n_test)
    split = (c_train, f_train, c_test, f_test)
    prior = pinwheel_mixture()
    suite = {
        "mig": lambda: metrics.mig(c_train, f_train),
        "modularity": lambda: metrics.modularity(c_train, f_train),
        "explicitness": lambda: metrics.explicitness(*split),
        "sap": lambda: metrics.sap(*split),
        "hoyer_sparsity": lambda: metrics.hoyer_sparsity(c_train),
        "clustering_scores": lambda: metrics.clustering_scores(c_train[:, :2], f_train[:, 0], prior=prior),
    }
    seconds = {}
    for name, fn in suite.items():
        start = time.perf_counter()
        fn()
        seconds[name] = time.perf_counter() - start
    out = {"train_points": n_train, "test_points": n_test, "seconds": seconds,
           "suite_without_dci_s": sum(seconds.values())}
    if cfg.dci_points:
        d_train, d_test = cfg.dci_points, cfg.dci_points // 2
        start = time.perf_counter()
        metrics.dci(c_train[:d_train], f_train[:d_train], c_test[:d_test], f_test[:d_test])
        out["dci"] = {"train_points": d_train, "test_points": d_test, "seconds": time.perf_counter() - start}
    log(f"  metric suite ({n_train} points, without DCI): {out['suite_without_dci_s']:.1f} s"
        + (f"; DCI on {cfg.dci_points}: {out['dci']['seconds']:.1f} s" if cfg.dci_points else ""))
    return out


# --------------------------------------------------------------------------
# The whole run.


def _goals(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals against the measured figures (None where not measured)."""
    single = report["single"]["timings"]
    steps = {k.split()[1]: v["median_ms"] for k, v in single.items() if k.startswith("jax ") and k.endswith(" step")}
    runs = {k.split()[1]: v["median_ms"] for k, v in single.items() if k.startswith("jax ") and k.endswith(" run")}
    best_single = min(list(steps.values()) + list(runs.values()))
    goals: dict[str, Any] = {"best_single_ms": best_single}
    torch_ms = [v["median_ms"] for k, v in single.items() if k.startswith("torch ")]
    auto = resolve_conv_impl("auto", report["machine"]["backend"])
    default = auto if auto in steps else "auto" if "auto" in steps else min(steps, key=steps.get)
    goals["default_impl"] = default
    if torch_ms:
        # Against PyTorch's fastest variant (all cores or one thread).
        torch_best = min(torch_ms)
        ratio = min(steps[default], runs.get(default, math.inf)) / torch_best
        best_ratio = best_single / torch_best
        goals["torch_ratio"] = {"torch_ms": torch_best, "default_impl": ratio, "best_impl": best_ratio,
                                "goal": GOAL_TORCH_RATIO, "met": best_ratio <= GOAL_TORCH_RATIO}
    else:
        goals["torch_ratio"] = None
    vmap = report["sweeps"]["vmap"]
    ratios = {n: v["median_ms"] / best_single for n, v in vmap.items()}
    multi = {n: r for n, r in ratios.items() if int(n) > 1}
    best_n = min(multi, key=multi.get) if multi else None
    goals["vmap_ratio"] = {"per_n": ratios, "best_n": best_n, "best": multi.get(best_n),
                           "goal": GOAL_VMAP_RATIO, "met": bool(multi) and multi[best_n] <= GOAL_VMAP_RATIO}
    loop = report["sweeps"]["loop"]
    speedups = {n: loop[n]["median_ms"] / vmap[n]["median_ms"] for n in vmap if n in loop}
    goals["vmap_vs_loop_throughput"] = speedups
    if report["machine"]["backend"] == "gpu":
        sp = speedups.get(GOAL_GPU_N)
        goals["gpu_sweep64_vs_loop"] = {"speedup": sp, "goal": GOAL_GPU_SPEEDUP,
                                        "met": sp is not None and sp >= GOAL_GPU_SPEEDUP}
    return goals


def run_benchmark(cfg: BenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything of :class:`BenchConfig` and return the report (a JSON-able dict)."""
    start = time.perf_counter()
    report: dict[str, Any] = {"machine": machine_info(), "config": dataclasses.asdict(cfg)}
    log(f"decompvae bench: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} cores, "
        f"{report['machine']['backend']} ({report['machine']['device_kind']})")
    report["matmul_peak"] = matmul_peak(cfg.matmul_size, cfg.repeats)
    log(f"  matmul peak ({cfg.matmul_size}²): {report['matmul_peak']['gflops_per_s']:.1f} GFLOP/s")
    data = sprites_batch(cfg.batch)
    hyper = Hyperparams(beta=jnp.float32(1.0), alpha=jnp.float32(0.0), prior={})
    report["single"], compiled_steps = bench_single(cfg, data, hyper, log)
    steps = {k.split()[1]: v["median_ms"] for k, v in report["single"]["timings"].items()
             if k.startswith("jax ") and k.endswith(" step")}
    best_impl = min(steps, key=steps.get)
    for name, t in report["single"]["timings"].items():
        log(f"  {name}: {t['median_ms']:.1f} ms (min {t['min_ms']:.1f}, max {t['max_ms']:.1f})")
    # Achieved FLOP/s: the convolutions' own multiply-adds (the "lax" formulation's
    # count; other formulations may count zeros or rearrangements) per measured time.
    useful = report["single"]["impls"].get("lax", {}).get("xla_flops_per_step")
    if useful is None:
        useful = next(iter(report["single"]["impls"].values()))["xla_flops_per_step"]
    report["useful_flops_per_step"] = useful
    report["breakdown"] = bench_breakdown(cfg, data, log) if cfg.breakdown else {}
    report["sweeps"] = bench_sweeps(cfg, data, best_impl, log, compiled_steps)
    report["renderer"] = bench_renderer(cfg)
    log(f"  renderer (b = {cfg.render_batch}): {report['renderer']['uint8']['images_per_s']:,.0f} images/s uint8")
    report["metrics"] = bench_metrics(cfg, log)
    peak = report["matmul_peak"]["gflops_per_s"] * 1e9
    if useful:
        for t in report["single"]["timings"].values():
            t["useful_gflops_per_s"] = useful / (t["median_ms"] * 1e-3) / 1e9
            t["fraction_of_matmul_peak"] = t["useful_gflops_per_s"] * 1e9 / peak
        for kind in ("vmap", "loop"):
            for t in report["sweeps"][kind].values():
                t["useful_gflops_per_s"] = useful / (t["median_ms"] * 1e-3) / 1e9
                t["fraction_of_matmul_peak"] = t["useful_gflops_per_s"] * 1e9 / peak
    report["memory"] = {"max_rss_bytes": _max_rss_bytes(), "device_peak_bytes": _device_peak_bytes()}
    report["goals"] = _goals(report)
    report["total_s"] = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------
# Output.


def _mib(b) -> str:
    return "–" if b is None else f"{b / 2**20:.1f}"


def format_markdown(report: dict[str, Any]) -> str:
    """The report's tables as markdown."""
    m, cfg = report["machine"], report["config"]
    lines = [
        f"# decompvae bench — {m['date']}",
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_count']} cores, backend {m['backend']} ({m['device_kind']}, "
        f"{m['device_count']} device(s)), load average at start {m['load_average']}. "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        "",
        f"dSprites network, Adam (AMSGrad) step, batch {cfg['batch']}, D = {cfg['latent_dim']}; medians over "
        f"{cfg['repeats']} interleaved repeats (sweeps: {cfg['sweep_repeats']}) after a warm-up; "
        f"`run` = `Trainer.run` of {cfg['scan_steps']} scanned steps, per step. "
        f"Matmul peak ({cfg['matmul_size']}², float32): **{report['matmul_peak']['gflops_per_s']:.1f} GFLOP/s**. "
        f"Useful FLOPs per step (XLA count of the `lax` formulation): "
        f"{(report['useful_flops_per_step'] or 0) / 1e9:.2f} GFLOP.",
        "",
        "## One model",
        "",
        "| variant | median ms/step | min – max | GFLOP/s | % of matmul peak |",
        "|---|---|---|---|---|",
    ]
    for name, t in report["single"]["timings"].items():
        gf = t.get("useful_gflops_per_s")
        gf_cell = "–" if gf is None else f"{gf:.1f}"
        pct_cell = "–" if gf is None else f"{100 * t['fraction_of_matmul_peak']:.0f}"
        lines.append(f"| {name} | {t['median_ms']:.1f} | {t['min_ms']:.1f} – {t['max_ms']:.1f} | {gf_cell} | {pct_cell} |")
    torch = report["single"]["torch"]
    if not torch["available"]:
        lines += ["", f"PyTorch column skipped: {torch['reason']}."]
    lines += ["", "| formulation | compile step s | compile run s | XLA GFLOP/step | XLA memory MiB (args+out+temp) |",
              "|---|---|---|---|---|"]
    for impl, r in report["single"]["impls"].items():
        fl = r["xla_flops_per_step"]
        lines.append(f"| {impl} ({r['resolved']}) | {r['compile_step_s']:.1f} | {r['compile_run_s']:.1f} | "
                     f"{'–' if fl is None else f'{fl / 1e9:.2f}'} | "
                     f"{_mib((r['memory_step'] or {}).get('total_bytes'))} |")
    if report["breakdown"]:
        lines += ["", "## Where the time goes (each piece jitted alone)", "", "| piece | median ms | XLA GFLOP |",
                  "|---|---|---|"]
    for name, t in report["breakdown"].items():
        fl = t.get("xla_flops")
        lines.append(f"| {name} | {t['median_ms']:.1f} | {'' if fl is None else f'{fl / 1e9:.2f}'} |")
    sw = report["sweeps"]
    lines += ["", f"## Sweeps: vmap (`{sw['sweep_impl']}`) vs a Python loop of single steps (`{sw['loop_impl']}`)", "",
              "| N | vmap ms/model-step | vmap model-steps/s | loop ms/model-step | loop model-steps/s | "
              "vmap ÷ best single | compile s | XLA memory MiB |",
              "|---|---|---|---|---|---|---|---|"]
    best = report["goals"]["best_single_ms"]
    for n in sorted(set(sw["vmap"]) | set(sw["loop"]), key=int):
        v, lp = sw["vmap"].get(n), sw["loop"].get(n)
        cells = [str(n)]
        cells += ["–", "–"] if v is None else [f"{v['median_ms']:.1f} ({v['min_ms']:.0f}–{v['max_ms']:.0f})",
                                               f"{v['model_steps_per_s']:.2f}"]
        cells += ["–", "–"] if lp is None else [f"{lp['median_ms']:.1f} ({lp['min_ms']:.0f}–{lp['max_ms']:.0f})",
                                                f"{lp['model_steps_per_s']:.2f}"]
        cells += ["–", "–", "–"] if v is None else [f"{v['median_ms'] / best:.2f}", f"{v['compile_s']:.1f}",
                                                    _mib((v['memory'] or {}).get('total_bytes'))]
        lines.append("| " + " | ".join(cells) + " |")
    r, mt = report["renderer"], report["metrics"]
    lines += ["", "## Data and metrics", "",
              f"Renderer (`render_factors` in jit, b = {r['batch']}): {r['uint8']['images_per_s']:,.0f} images/s "
              f"uint8, {r['float32']['images_per_s']:,.0f} images/s float32.", "",
              f"Metric suite on {mt['train_points']:,} train / {mt['test_points']:,} test points without DCI: "
              f"{mt['suite_without_dci_s']:.1f} s ("
              + ", ".join(f"{k} {v:.2f}" for k, v in mt["seconds"].items()) + " s)"
              + (f"; DCI on {mt['dci']['train_points']:,} / {mt['dci']['test_points']:,} points: "
                 f"{mt['dci']['seconds']:.1f} s." if "dci" in mt else "; DCI not timed.")]
    mem = report["memory"]
    lines += ["", f"Peak resident memory of the process: {_mib(mem['max_rss_bytes'])} MiB"
              + ("" if mem["device_peak_bytes"] is None else f"; device peak {_mib(mem['device_peak_bytes'])} MiB") + "."]
    g = report["goals"]
    lines += ["", "## Goals", ""]
    if g["torch_ratio"] is None:
        lines.append("- per-model step ≤ 0.5× PyTorch: not measured (no PyTorch).")
    else:
        tr = g["torch_ratio"]
        lines.append(f"- per-model step ≤ {tr['goal']}× PyTorch: best formulation {tr['best_impl']:.2f}×, "
                     f"default {tr['default_impl']:.2f}× — **{'met' if tr['met'] else 'not met'}**.")
    vr = g["vmap_ratio"]
    if vr["best"] is None:
        lines.append("- vmapped per-model ≤ 0.8× best single: not measured (no N > 1).")
    else:
        lines.append(f"- vmapped per-model ≤ {vr['goal']}× best single: best {vr['best']:.2f}× at N = {vr['best_n']} — "
                     f"**{'met' if vr['met'] else 'not met'}**.")
    if "gpu_sweep64_vs_loop" in g:
        gp = g["gpu_sweep64_vs_loop"]
        lines.append(f"- GPU sweep of 64 ≥ 20× a loop: {gp['speedup']}× — **{'met' if gp['met'] else 'not met'}**.")
    lines += ["", f"Total benchmark time {report['total_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def plot_throughput(report: dict[str, Any], path: pathlib.Path) -> None:
    """Model-steps/s against N (log-log) for the vmapped sweep and the loop."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for kind, marker in (("vmap", "o"), ("loop", "s")):
        rows = sorted((int(n), v["model_steps_per_s"]) for n, v in report["sweeps"][kind].items())
        if rows:
            impl = report["sweeps"]["sweep_impl" if kind == "vmap" else "loop_impl"]
            ax.plot(*zip(*rows), marker=marker, label=f"{kind} ({impl})")
    best = report["goals"]["best_single_ms"]
    ax.axhline(1e3 / best, color="grey", ls="--", lw=1, label="best single model")
    if report["single"]["torch"]["available"]:
        ax.axhline(1e3 / report["goals"]["torch_ratio"]["torch_ms"], color="C3", ls=":", lw=1,
                   label="PyTorch single model (fastest variant)")
    ax.set_xscale("log", base=2)
    ns = sorted({int(n) for kind in ("vmap", "loop") for n in report["sweeps"][kind]})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_ylim(bottom=0)
    ax.set_xlabel("models N")
    ax.set_ylabel("model-steps / s")
    m = report["machine"]
    ax.set_title(f"dSprites VAE step, batch {report['config']['batch']}\n{m['cpu_model']} ×{m['cpu_count']}, "
                 f"{m['backend']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def write_outputs(report: dict[str, Any], output: str | os.PathLike) -> dict[str, pathlib.Path]:
    """Write ``bench.json``, ``bench.md`` and ``throughput.png`` into ``output``."""
    out = pathlib.Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "markdown": out / "bench.md", "plot": out / "throughput.png"}
    paths["json"].write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    paths["markdown"].write_text(format_markdown(report))
    plot_throughput(report, paths["plot"])
    return paths


def main(args) -> int:
    """Entry of ``python -m benchmarks.run``: ``args.quick`` (bool) and ``args.output`` (directory or None)."""
    cfg = make_config(quick=bool(getattr(args, "quick", False)))
    output = getattr(args, "output", None) or "runs/bench"
    report = run_benchmark(cfg, log=lambda s: print(s, flush=True))
    paths = write_outputs(report, output)
    print(format_markdown(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
