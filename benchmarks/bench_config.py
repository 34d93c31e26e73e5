"""The sizes of one benchmark run: :class:`BenchConfig` and :func:`make_config` (quick, CPU and GPU modes)."""

from __future__ import annotations

import dataclasses

import jax

__all__ = ["CPU_SWEEP_STRATEGIES", "GPU_NS", "GPU_SWEEP_VARIANTS", "BenchConfig", "make_config"]

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
