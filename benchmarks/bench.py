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
from benchmarks.hlo_profile import CATEGORIES as _PROFILE_CATEGORIES
from benchmarks.hlo_profile import format_profile, profile_program
from decompvae.plots import pyplot
from decompvae.priors import make_prior, pinwheel_mixture
from decompvae.sweep import Grid, init_members, make_sweep, resolve_vectorize, stack_members
from decompvae.train import make_optimizer, make_trainer

__all__ = ["BenchConfig", "format_markdown", "machine_info", "main", "make_config", "run_benchmark"]

#: Goals of the benchmark issue, checked in the report.
GOAL_TORCH_RATIO = 0.5  # per-model step ≤ 0.5 × PyTorch on CPU
GOAL_VMAP_RATIO = 0.8  # vmapped per-model time ≤ 0.8 × the best single-model step
GOAL_GPU_SPEEDUP = 20.0  # GPU: a sweep of 64 ≥ 20 × the throughput of a loop
GOAL_GPU_N = 64
GOAL_COMPILE_S = 20.0  # compile time of a sweep program ≤ 20 s on CPU

#: GPU mode: the default (``lax``, cuDNN) sweep's sizes, and the sweeps beside it — ``matmul``
#: convolutions (vmapped ``lax`` convolutions become grouped convolutions) and bfloat16 compute.
GPU_NS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: CPU mode: members looped in groups of k (``make_sweep(vectorize=k)``) beside the all-vmapped sweep.
CPU_SWEEP_STRATEGIES = ((1, (2, 4, 8, 16)), (2, (4, 8, 16)), (4, (8, 16)))
GPU_SWEEP_VARIANTS = (
    ("matmul", "float32", (1, 8, 64, 256)),
    ("lax", "bfloat16", (1, 8, 64, 256)),
    ("matmul", "bfloat16", (64, 256)),
)


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
    bf16_impls: tuple[str, ...] = ()  # formulations also timed as single models in bfloat16 (model.compute_dtype)
    #: Further vmapped sweeps beside the main one, in the same rounds: (conv_impl, compute_dtype, Ns).
    sweep_variants: tuple[tuple[str, str, tuple[int, ...]], ...] = ()
    torch_ns: tuple[int, ...] = ()  # N of the PyTorch loop and torch.func ensemble, in the sweeps' rounds
    profile_n: int = 0  # profile the single scanned run and a vmapped sweep of this many (0: no profile)
    #: The main sweep's members looped (``make_sweep(vectorize=k)``: ``lax.map`` over groups of k vmapped
    #: members) beside the all-vmapped sweep, in the same rounds: (k, Ns).
    sweep_strategies: tuple[tuple[int, tuple[int, ...]], ...] = ()


def make_config(quick: bool = False, backend: str | None = None) -> BenchConfig:
    """The benchmark sizes for a backend.

    Args:
      quick: tiny sizes, one repeat and the quickly compiled ``"lax"``
        formulation: a smoke test (three programs to compile; 74 s in all
        on a 2-core machine at load average 9, mostly compilation).
      backend: ``"cpu"``, ``"gpu"``…; None for ``jax.default_backend()``.

    Returns:
      A :class:`BenchConfig`. On a GPU the sweep goes up to 256 models and the
      loop up to 64, with ``matmul`` and bfloat16 sweeps beside the default
      (``lax`` = cuDNN) one; on CPU both to 16, with a bfloat16 sweep of 8 and
      PyTorch's loop and ``torch.func`` ensemble of 8.
    """
    backend = jax.default_backend() if backend is None else backend
    full = dict(quick=False, batch=64, latent_dim=10, impls=("lax", "phase", "matmul"), sweep_impl="auto",
                metric_points=10_000, dci_points=1_000, torch=True, breakdown=True)
    if quick:
        return BenchConfig(quick=True, batch=4, latent_dim=10, impls=("lax",), sweep_impl="lax", ns=(2,),
                           loop_ns=(2,), scan_steps=2, repeats=1, sweep_repeats=1, matmul_size=256,
                           render_batch=256, metric_points=500, dci_points=0, torch=True, breakdown=False,
                           sweep_variants=(("lax", "bfloat16", (2,)),), torch_ns=(2,), profile_n=2,
                           sweep_strategies=((1, (2,)),))
    if backend == "cpu":
        ns = (1, 2, 4, 8, 16)
        return BenchConfig(**full, ns=ns, loop_ns=ns, scan_steps=3, repeats=5, sweep_repeats=3, matmul_size=2048,
                           render_batch=1024, bf16_impls=("matmul",), sweep_variants=(("auto", "bfloat16", (8,)),),
                           torch_ns=(8,), profile_n=8, sweep_strategies=CPU_SWEEP_STRATEGIES)
    # GPU: no "phase" formulation, no per-piece breakdown and no DCI (a CPU-bound scikit-learn fit), so
    # that benchmarks/gpu_check.sh fits in its 8 minutes; the sweeps carry the GPU questions.
    full.update(impls=("lax", "matmul"), breakdown=False, dci_points=0)
    return BenchConfig(**full, ns=GPU_NS, loop_ns=(1, 2, 4, 8, 16, 32, 64), scan_steps=5,
                       repeats=7, sweep_repeats=5, matmul_size=8192, render_batch=16384, bf16_impls=("lax", "matmul"),
                       sweep_variants=GPU_SWEEP_VARIANTS, torch_ns=(), profile_n=8)


def hlo_profile_categories() -> tuple[str, ...]:
    """The kinds of operation of the profile (:data:`benchmarks.hlo_profile.CATEGORIES`)."""
    return _PROFILE_CATEGORIES


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


def variant_name(conv_impl: str, compute_dtype: str = "float32") -> str:
    """``"matmul"`` for float32, ``"matmul+bf16"`` for bfloat16: the key of a single-model variant."""
    return conv_impl if compute_dtype == "float32" else f"{conv_impl}+bf16"


def parse_variant(name: str) -> tuple[str, str]:
    """``(conv_impl, compute_dtype)`` of :func:`variant_name`'s key."""
    impl, _, low = name.partition("+")
    return impl, "bfloat16" if low else "float32"


def make_bench_trainer(conv_impl: str, latent_dim: int, compute_dtype: str = "float32"):
    """``(trainer, encoder, decoder)``: the library's dSprites training step on fixed data.

    The batch function returns ``data`` itself (the fixed batch passed as an
    argument), so the step measures the network, loss and optimiser only.
    ``compute_dtype`` is ``model.compute_dtype`` (``"bfloat16"``: mixed precision).
    """
    encoder, decoder = make_networks("dsprites", latent_dim, conv_impl=conv_impl, compute_dtype=compute_dtype)
    objective = make_objective(encoder, decoder, likelihood="bernoulli", prior=make_prior("isotropic", latent_dim))
    init_params = network_init(encoder, decoder, tuple(encoder.image_shape), latent_dim)
    trainer = make_trainer(objective, init_params, lambda key, step, data: data)
    return trainer, encoder, decoder


def network_init(encoder, decoder, data_shape: tuple[int, ...], latent_dim: int):
    """``init_params(key, hyper) -> {"encoder", "decoder"}``: the two networks' variables from one key."""

    def init_params(key, hyper):
        key_enc, key_dec = jax.random.split(key)
        return {
            "encoder": encoder.init(key_enc, jnp.zeros((1, *data_shape), jnp.float32)),
            "decoder": decoder.init(key_dec, jnp.zeros((1, latent_dim), jnp.float32)),
        }

    return init_params


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
    variants = list(cfg.impls) + [variant_name(impl, "bfloat16") for impl in cfg.bf16_impls]
    for impl in variants:
        impl_name, dtype = parse_variant(impl)
        trainer, _, _ = make_bench_trainer(impl_name, cfg.latent_dim, dtype)
        state = jax.jit(trainer.init)(key, hyper, 5e-4)
        step = jax.jit(trainer.step)
        run = jax.jit(trainer.run, static_argnums=3)
        c_step, t_step = _compile(step, state, hyper, data)
        c_run, t_run = _compile(run, state, hyper, data, cfg.scan_steps)
        steppers[impl] = (c_step, t_step)
        steppers[f"{impl} run"] = (c_run, state)
        thunks[f"jax {impl} step"] = _Stepper(c_step, state, hyper, data)
        thunks[f"jax {impl} run"] = _Stepper(c_run, state, hyper, data)
        report["impls"][impl] = {
            "resolved": variant_name(resolve_conv_impl(parse_variant(impl)[0]), parse_variant(impl)[1]),
            "compile_step_s": t_step,
            "compile_run_s": t_run,
            "xla_flops_per_step": _flops(c_step),
            "memory_step": _memory(c_step),
        }
        log(f"  compiled {impl} ({report['impls'][impl]['resolved']}): step {t_step:.1f} s, run {t_run:.1f} s")
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


def _sweep_program(trainer, n: int, data, scan_steps: int, vectorize: int | None = None):
    """``(compiled sweep.run, stacked state, stacked hyper, compile seconds)`` for ``n`` members (seeds 0 … n − 1),
    vmapped in groups of ``vectorize`` (None: all ``n`` at once)."""
    sweep = make_sweep(trainer, vectorize=vectorize or n)
    hyper, lrs, keys = stack_members(Grid(seed=list(range(n))).members())
    state = init_members(sweep, keys, hyper, lrs)
    compiled, seconds = _compile(sweep.run, state, hyper, data, scan_steps)
    return compiled, state, hyper, seconds


def bench_sweeps(cfg: BenchConfig, data: jax.Array, loop_impl: str, log, compiled_steps=None,
                 programs=None) -> dict[str, Any]:
    """Vmapped sweeps (``cfg.sweep_impl`` and ``cfg.sweep_variants``), Python loops of single steps
    (``loop_impl``) and the PyTorch loop and ``torch.func`` ensemble (``cfg.torch_ns``), per N in the same rounds.

    ``compiled_steps`` maps a formulation to its ``(compiled single step,
    compile seconds)`` from :func:`bench_single`, reused for the loop.
    ``programs`` (a dict, filled here) receives ``("vmap", n)`` →
    ``(compiled run, state, hyper)`` for the profile.
    """
    trainer, _, _ = make_bench_trainer(cfg.sweep_impl, cfg.latent_dim)
    variant_trainers = {f"{impl} {dtype}": make_bench_trainer(impl, cfg.latent_dim, dtype)[0]
                        for impl, dtype, _ in cfg.sweep_variants}
    loop_trainer, _, _ = make_bench_trainer(parse_variant(loop_impl)[0], cfg.latent_dim, parse_variant(loop_impl)[1])
    loop_step = jax.jit(loop_trainer.step)
    torch_ref, why = (None, "skipped") if not (cfg.torch and cfg.torch_ns) else _load_torch_reference()
    results: dict[str, Any] = {"sweep_impl": cfg.sweep_impl, "loop_impl": loop_impl, "vmap": {}, "loop": {},
                               "variants": {name: {} for name in variant_trainers}, "torch_loop": {},
                               "torch_func": {}, "torch": {"available": torch_ref is not None, "reason": why},
                               "strategies": {k: {} for k, _ in cfg.sweep_strategies},
                               "default_vectorize": resolve_vectorize(None)}
    all_ns = (set(cfg.ns) | set(cfg.loop_ns) | {n for _, _, ns in cfg.sweep_variants for n in ns} | set(cfg.torch_ns)
              | {n for _, ns in cfg.sweep_strategies for n in ns})
    for n in sorted(all_ns):
        thunks, slots = {}, {}
        if n in cfg.ns:
            compiled, state, hyper, seconds = _sweep_program(trainer, n, data, cfg.scan_steps)
            thunks["vmap"], slots["vmap"] = _Stepper(compiled, state, hyper, data), results["vmap"]
            results["vmap"][n] = {"compile_s": seconds, "memory": _memory(compiled),
                                  "xla_flops_per_call": _flops(compiled)}
            if programs is not None and n == cfg.profile_n:
                programs[("vmap", n)] = (compiled, state, hyper)
        for (impl, dtype, ns), (name, vt) in zip(cfg.sweep_variants, variant_trainers.items()):
            if n in ns:
                compiled, state, hyper, seconds = _sweep_program(vt, n, data, cfg.scan_steps)
                thunks[f"vmap {name}"] = _Stepper(compiled, state, hyper, data)
                slots[f"vmap {name}"] = results["variants"][name]
                results["variants"][name][n] = {"compile_s": seconds, "memory": _memory(compiled)}
        for k, ns in cfg.sweep_strategies:
            if n in ns:
                compiled, state, hyper, seconds = _sweep_program(trainer, n, data, cfg.scan_steps, vectorize=k)
                thunks[f"vmap groups of {k}"] = _Stepper(compiled, state, hyper, data)
                slots[f"vmap groups of {k}"] = results["strategies"][k]
                results["strategies"][k][n] = {"compile_s": seconds, "memory": _memory(compiled)}
                if programs is not None and n == cfg.profile_n:
                    programs[("groups", k, n)] = (compiled, state, hyper)
        if n in cfg.loop_ns:
            hyper1 = Hyperparams(beta=jnp.float32(1.0), alpha=jnp.float32(0.0), prior={})
            keys = stack_members(Grid(seed=list(range(n))).members())[2]
            states = [jax.jit(loop_trainer.init)(keys[i], hyper1, 5e-4) for i in range(n)]
            if loop_impl in (compiled_steps or {}):
                compiled, seconds = compiled_steps[loop_impl]
            else:
                compiled, seconds = _compile(loop_step, states[0], hyper1, data)
                compiled_steps = {**(compiled_steps or {}), loop_impl: (compiled, seconds)}
            thunks["loop"], slots["loop"] = _Loop(compiled, states, hyper1, data), results["loop"]
            results["loop"][n] = {"compile_s": seconds}
        if torch_ref is not None and n in cfg.torch_ns:
            x, cores = np.asarray(data), os.cpu_count() or 1
            thunks["torch loop"] = torch_ref.make_loop(x, n, latent_dim=cfg.latent_dim, threads=cores)
            thunks["torch func"] = torch_ref.make_ensemble_step(x, n, latent_dim=cfg.latent_dim, threads=cores)
            slots["torch loop"], slots["torch func"] = results["torch_loop"], results["torch_func"]
            results["torch_loop"][n], results["torch_func"][n] = {}, {}
        times = _interleaved(thunks, cfg.sweep_repeats)
        for kind, seconds in times.items():
            steps = n * (cfg.scan_steps if kind.startswith("vmap") else 1)
            summary = _summary(seconds, steps)
            summary["model_steps_per_s"] = 1e3 / summary["median_ms"]
            slots[kind][n].update(summary)
        log(f"  N = {n}: " + ", ".join(f"{k} {slots[k][n]['median_ms']:.1f} ms/model-step" for k in times))
    return results


def bench_profile(cfg: BenchConfig, data, hyper, compiled_steps, programs, log) -> dict[str, Any]:
    """The breakdown by kind of operation (:mod:`benchmarks.hlo_profile`) of the default formulation's
    single scanned run and of the vmapped sweep of ``cfg.profile_n`` members."""
    auto = resolve_conv_impl("auto")
    impl = auto if f"{auto} run" in compiled_steps else cfg.impls[0]
    c_run, state = compiled_steps[f"{impl} run"]
    out = {f"single ({impl})": profile_program(c_run, lambda: c_run(state, hyper, data),
                                               steps_per_call=cfg.scan_steps)}
    if ("vmap", cfg.profile_n) in programs:
        c_sweep, s_state, s_hyper = programs[("vmap", cfg.profile_n)]
        out[f"vmap of {cfg.profile_n} ({cfg.sweep_impl})"] = profile_program(
            c_sweep, lambda: c_sweep(s_state, s_hyper, data), steps_per_call=cfg.profile_n * cfg.scan_steps)
    for key, (c_sweep, s_state, s_hyper) in programs.items():
        if key[0] == "groups":
            out[f"lax.map over groups of {key[1]} of {key[2]} ({cfg.sweep_impl})"] = profile_program(
                c_sweep, lambda c=c_sweep, s=s_state, h=s_hyper: c(s, h, data), steps_per_call=key[2] * cfg.scan_steps)
    for name, p in out.items():
        top = max(p["categories"].items(), key=lambda kv: kv[1]["ms_per_step"] or 0.0)
        log(f"  profile {name}: {p['matched_events']} traced ops; largest {top[0]} "
            + ("" if top[1]["share"] is None else f"{100 * top[1]['share']:.0f} %"))
    return out


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
    # The fastest way to train N members in one program: all vmapped, or looped in vmapped groups.
    options = {n: {"all": v["median_ms"]} for n, v in vmap.items()}
    for k, per_n in report["sweeps"].get("strategies", {}).items():
        for n, v in per_n.items():
            if "median_ms" in v:
                options.setdefault(n, {})[f"groups of {k}"] = v["median_ms"]
    fastest = {n: min(o, key=o.get) for n, o in options.items()}
    goals["sweep_strategy"] = {"fastest": fastest, "ratio": {n: options[n][f] / best_single for n, f in fastest.items()},
                               "default_vectorize": report["sweeps"].get("default_vectorize"),
                               "goal": GOAL_VMAP_RATIO,
                               "met": any(options[n][f] / best_single <= GOAL_VMAP_RATIO
                                          for n, f in fastest.items() if int(n) > 1)}
    loop = report["sweeps"]["loop"]
    speedups = {n: loop[n]["median_ms"] / vmap[n]["median_ms"] for n in vmap if n in loop}
    goals["vmap_vs_loop_throughput"] = speedups
    variants = report["sweeps"].get("variants", {})
    compiles = [v.get("compile_s") for v in vmap.values()] + [
        v.get("compile_s") for variant in variants.values() for v in variant.values()]
    compiles = [c for c in compiles if c is not None]
    goals["compile"] = {"max_sweep_compile_s": max(compiles) if compiles else None, "goal": GOAL_COMPILE_S,
                        "met": bool(compiles) and max(compiles) <= GOAL_COMPILE_S}
    low = {k: v for k, v in steps.items() if k.endswith("+bf16")}
    goals["bf16_vs_f32"] = {k: min(v, runs.get(k, math.inf)) / min(steps[k[:-5]], runs.get(k[:-5], math.inf))
                            for k, v in low.items() if k[:-5] in steps}
    torch_loop, torch_func = report["sweeps"].get("torch_loop", {}), report["sweeps"].get("torch_func", {})
    goals["vs_torch_sweeps"] = {n: {"vmap_vs_torch_loop": vmap[n]["median_ms"] / torch_loop[n]["median_ms"],
                                    "vmap_vs_torch_func": vmap[n]["median_ms"] / torch_func[n]["median_ms"]}
                                for n in torch_loop if n in vmap and "median_ms" in torch_loop[n]}
    if report["machine"]["backend"] == "gpu":
        sp = speedups.get(GOAL_GPU_N)
        at_n = {report["sweeps"]["sweep_impl"]: vmap.get(GOAL_GPU_N, {}).get("median_ms")}
        at_n.update({name: v.get(GOAL_GPU_N, {}).get("median_ms") for name, v in variants.items()})
        at_n = {k: v for k, v in at_n.items() if v}
        best = min(at_n, key=at_n.get) if at_n else None
        best_sp = loop[GOAL_GPU_N]["median_ms"] / at_n[best] if best and GOAL_GPU_N in loop else None
        goals["gpu_sweep64_vs_loop"] = {"speedup": sp, "goal": GOAL_GPU_SPEEDUP, "best_variant": best,
                                        "best_speedup": best_sp,
                                        "met": max(sp or 0.0, best_sp or 0.0) >= GOAL_GPU_SPEEDUP}
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
    # The loop runs the fastest float32 formulation, like for like with the (float32) main sweep.
    best_impl = min((k for k in steps if parse_variant(k)[1] == "float32"), key=steps.get)
    for name, t in report["single"]["timings"].items():
        log(f"  {name}: {t['median_ms']:.1f} ms (min {t['min_ms']:.1f}, max {t['max_ms']:.1f})")
    # Achieved FLOP/s: the convolutions' own multiply-adds (the "lax" formulation's
    # count; other formulations may count zeros or rearrangements) per measured time.
    useful = report["single"]["impls"].get("lax", {}).get("xla_flops_per_step")
    if useful is None:
        useful = next(iter(report["single"]["impls"].values()))["xla_flops_per_step"]
    report["useful_flops_per_step"] = useful
    report["breakdown"] = bench_breakdown(cfg, data, log) if cfg.breakdown else {}
    programs: dict = {}
    report["sweeps"] = bench_sweeps(cfg, data, best_impl, log, compiled_steps, programs)
    report["profile"] = bench_profile(cfg, data, hyper, compiled_steps, programs, log) if cfg.profile_n else {}
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
    lines += _side_by_side_lines(report)
    if report.get("profile"):
        lines += ["", "## Where the time goes, by kind of operation (XLA HLO + jax.profiler trace)", "",
                  "Thread-time per model-step summed over threads (both cores count), from a trace of 2 calls; "
                  "instructions: executed HLO instructions of that kind (fusions by what they contain).", ""]
        lines += format_profile(report["profile"])
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
    st = g.get("sweep_strategy")
    if st and st["ratio"]:
        multi = {n: r for n, r in st["ratio"].items() if int(n) > 1}
        lines.append("- fastest strategy per N (÷ best single): "
                     + ", ".join(f"N = {n}: {st['fastest'][n]} {r:.2f}×" for n, r in sorted(multi.items(), key=lambda kv: int(kv[0])))
                     + f"; `make_sweep`'s default here: vectorize = {st['default_vectorize'] or 'all'} — "
                     f"**{'met' if st['met'] else 'not met'}**.")
    if "gpu_sweep64_vs_loop" in g:
        gp = g["gpu_sweep64_vs_loop"]
        lines.append(f"- GPU sweep of 64 ≥ 20× a loop: {gp['speedup']}× (best variant {gp['best_variant']}: "
                     f"{gp['best_speedup']}×) — **{'met' if gp['met'] else 'not met'}**.")
    else:
        lines.append("- GPU sweep of 64 ≥ 20× a loop: not measured (not a GPU run).")
    cg = g.get("compile")
    if cg and cg["max_sweep_compile_s"] is not None:
        lines.append(f"- compile time of a sweep program ≤ {cg['goal']:.0f} s: longest {cg['max_sweep_compile_s']:.1f} s "
                     f"— **{'met' if cg['met'] else 'not met'}**.")
    for k, v in g.get("bf16_vs_f32", {}).items():
        lines.append(f"- bfloat16 ÷ float32 single step ({k[:-5]}, fastest of step/run each): {v:.2f}×.")
    for n, v in g.get("vs_torch_sweeps", {}).items():
        lines.append(f"- sweep of {n}: our vmap ÷ PyTorch loop {v['vmap_vs_torch_loop']:.2f}×, "
                     f"÷ torch.func ensemble {v['vmap_vs_torch_func']:.2f}× (per model-step).")
    lines += ["", f"Total benchmark time {report['total_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def _side_by_side_lines(report: dict[str, Any]) -> list[str]:
    """The sweeps beside the main one (formulations, bfloat16, PyTorch), per N, measured in its rounds."""
    sw = report["sweeps"]
    columns = {f"vmap {k}": v for k, v in sw.get("variants", {}).items()}
    columns.update({f"{sw['sweep_impl']}, lax.map over groups of {k}": v for k, v in sw.get("strategies", {}).items()})
    if sw.get("torch_loop"):
        columns.update({"PyTorch loop": sw["torch_loop"], "PyTorch torch.func": sw["torch_func"]})
    if not columns:
        return [] if sw.get("torch", {}).get("available", True) else ["", f"PyTorch sweeps skipped: {sw['torch']['reason']}."]
    ns = sorted({int(n) for col in columns.values() for n in col})
    lines = ["", "## Sweeps side by side (same rounds as the table above)", "",
             "| N | vmap " + sw["sweep_impl"] + " | " + " | ".join(columns) + " | (ms per model-step) |",
             "|---|---|" + "---|" * len(columns) + "---|"]
    for n in ns:
        main = sw["vmap"].get(n) or sw["vmap"].get(str(n))
        cells = ["–" if not main else f"{main['median_ms']:.1f}"]
        for col in columns.values():
            e = col.get(n) or col.get(str(n))
            cells.append("–" if not e or "median_ms" not in e else f"{e['median_ms']:.1f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " | |")
    if not sw.get("torch", {}).get("available", True):
        lines += ["", f"PyTorch sweeps skipped: {sw['torch']['reason']}."]
    return lines


def plot_throughput(report: dict[str, Any], path: pathlib.Path) -> None:
    """Model-steps/s against N (log-x) for the vmapped sweep, the looped groups and the Python loop."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    sw = report["sweeps"]
    lines = [(f"vmap ({sw['sweep_impl']})", sw["vmap"], "o"), (f"Python loop ({sw['loop_impl']})", sw["loop"], "s")]
    lines += [(f"lax.map over groups of {k}", v, "^") for k, v in sw.get("strategies", {}).items()]
    for label, per_n, marker in lines:
        rows = sorted((int(n), v["model_steps_per_s"]) for n, v in per_n.items() if "model_steps_per_s" in v)
        if rows:
            ax.plot(*zip(*rows), marker=marker, label=label)
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
