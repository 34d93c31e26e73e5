"""The benchmarks' measuring harness: the machine, timing with warm-up and interleaved repeats, XLA's counts.

Every benchmark times through :func:`interleaved` (one warm-up call per thunk, then rounds that
interleave the thunks, so a load change touches every variant alike) and reports
:func:`summary` (median, min and max in milliseconds); :func:`machine_info` records the processor,
the load, the library versions and what each side computes with (vector extensions, BLAS, oneDNN,
threads: :func:`compute_backends`) beside every table.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Clocks", "Loop", "Stepper", "compile_timed", "compute_backends", "cpu_model", "device_peak_bytes", "interleaved",
           "interleaved_clocks", "machine_info",
           "matmul_peak", "max_rss_bytes", "summary", "xla_flops", "xla_memory"]


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


#: The processor's vector extensions that decide which kernels XLA's and oneDNN's CPU code paths can use.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
#: Environment variables that set either side's threads or XLA's CPU code generation.
THREAD_VARIABLES = ("XLA_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTEROP_THREADS")


def compute_backends() -> dict[str, Any]:
    """What each side computes with: the processor's vector extensions (``lscpu`` flags of :data:`VECTOR_FLAGS`),
    the thread variables set (:data:`THREAD_VARIABLES`), and PyTorch's BLAS, oneDNN, parallel backend, threads and
    the instruction set its kernels dispatch to (None where PyTorch is not installed)."""
    flags = set(_lscpu().get("Flags", "").split())
    return {"cpu_flags": [f for f in VECTOR_FLAGS if f in flags],
            "environment": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
            "torch": _torch_backends()}


def _torch_backends() -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    parallel = torch.__config__.parallel_info().splitlines()
    found = lambda prefix: next((line.strip() for line in parallel if line.strip().startswith(prefix)), None)  # noqa: E731
    mkl, onednn = found("Intel(R) oneAPI Math Kernel Library"), found("Intel(R) MKL-DNN") or found("oneDNN")
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "blas": f"MKL {_version_in(mkl)}" if mkl else found("OpenBLAS"),
            "onednn": f"oneDNN {_version_in(onednn)}" if onednn else None,
            "parallel_backend": (found("ATen parallel backend:") or "").partition(":")[2].strip() or None}


def _version_in(line: str) -> str | None:
    """The first version number (``2024.2``, ``v3.12.0``) in a line of ``torch.__config__.parallel_info()``."""
    match = re.search(r"v?(\d+(?:\.\d+)+)", line)
    return match.group(1) if match else None


def machine_info() -> dict[str, Any]:
    """CPU model, core count, load, devices, library versions and the compute backends (:func:`compute_backends`)."""
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
        "backends": compute_backends(),
    }


# --------------------------------------------------------------------------
# Timing helpers.


def summary(seconds: list[float], per: float = 1.0) -> dict[str, float]:
    """Median, min and max of ``seconds / per`` in milliseconds."""
    ms = [1e3 * s / per for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "repeats": len(ms)}


class Clocks(NamedTuple):
    """One thunk per round: wall seconds (``perf_counter``), this process's CPU seconds (``process_time``) and
    its minor page faults (``getrusage``'s ``ru_minflt``: pages touched afresh)."""

    wall: list[float]
    cpu: list[float]
    minor_faults: list[int]


def interleaved_clocks(thunks: dict[str, Callable[[], Any]], repeats: int, *,
                       order_seed: int | None = None) -> dict[str, Clocks]:
    """Wall and CPU seconds of each thunk per round, after one warm-up call each.

    Rounds interleave the thunks, so a load change touches every variant alike; with ``order_seed``
    each round runs them in a fresh shuffled order (seeded), so no thunk always follows the same one.
    """
    for fn in thunks.values():
        jax.block_until_ready(fn())
    clocks = {name: Clocks([], [], []) for name in thunks}
    order, rng = list(thunks), random.Random(order_seed)
    for _ in range(repeats):
        if order_seed is not None:
            rng.shuffle(order)
        for name in order:
            faults, wall, cpu = _minor_faults(), time.perf_counter(), time.process_time()
            jax.block_until_ready(thunks[name]())
            clocks[name].wall.append(time.perf_counter() - wall)
            clocks[name].cpu.append(time.process_time() - cpu)
            clocks[name].minor_faults.append(_minor_faults() - faults)
    return clocks


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved(thunks: dict[str, Callable[[], Any]], repeats: int, *,
                order_seed: int | None = None) -> dict[str, list[float]]:
    """Wall seconds of each thunk per round (:func:`interleaved_clocks`' ``wall``)."""
    return {name: c.wall for name, c in interleaved_clocks(thunks, repeats, order_seed=order_seed).items()}


def compile_timed(jitted, *args) -> tuple[Any, float]:
    """``jitted.lower(*args).compile()`` and its wall time in seconds."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


def xla_flops(compiled) -> float | None:
    """FLOPs of a compiled program from XLA's cost analysis (None when not reported)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - a backend without cost analysis
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    value = (cost or {}).get("flops")
    return None if value is None or value < 0 else float(value)


def xla_memory(compiled) -> dict[str, int] | None:
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


def max_rss_bytes() -> int:
    """Peak resident memory of this process (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def device_peak_bytes() -> int | None:
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    return None if not stats else stats.get("peak_bytes_in_use")


class Stepper:
    """A thunk that advances its own state with a compiled function each call."""

    def __init__(self, fn: Callable, state: Any, *args: Any):
        self.fn, self.state, self.args = fn, state, args

    def __call__(self):
        self.state, info = self.fn(self.state, *self.args)
        return info


class Loop:
    """A Python loop of single-model steps over N states."""

    def __init__(self, fn: Callable, states: list, *args: Any):
        self.fn, self.states, self.args = fn, states, args

    def __call__(self):
        infos = []
        for i, state in enumerate(self.states):
            self.states[i], info = self.fn(state, *self.args)
            infos.append(info)
        return infos


def matmul_peak(size: int, repeats: int) -> dict[str, float]:
    """Achieved FLOP/s of a ``size × size`` float32 matrix product (``2·size³`` FLOPs)."""
    keys = jax.random.split(jax.random.key(1))
    a = jax.random.normal(keys[0], (size, size), jnp.float32)
    b = jax.random.normal(keys[1], (size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    times = interleaved({"dot": lambda: dot(a, b)}, repeats)["dot"]
    median = statistics.median(times)
    return {"size": size, "flops": 2.0 * size**3, "median_ms": 1e3 * median,
            "gflops_per_s": 2.0 * size**3 / median / 1e9, "best_gflops_per_s": 2.0 * size**3 / min(times) / 1e9}
