"""The benchmark's data and metric measurements: the dSprites renderer's throughput, the metric suite's time.

``cfg`` is a :class:`benchmarks.bench_config.BenchConfig` (its ``render_batch``, ``repeats``, ``metric_points`` and
``dci_points``).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import decompvae.metrics as metrics
from benchmarks.harness import interleaved, summary
from decompvae.data import FACTOR_SIZES, render_factors, sample_uniform_factors
from decompvae.priors import pinwheel

__all__ = ["bench_metrics", "bench_renderer"]


def bench_renderer(cfg) -> dict[str, Any]:
    """Images per second of ``render_factors`` in jit (uint8 and float32)."""
    factors = sample_uniform_factors(jax.random.key(3), cfg.render_batch, FACTOR_SIZES)
    thunks = {str(dtype.__name__): (lambda f=jax.jit(lambda x, d=dtype: render_factors(x, dtype=d)): f(factors))
              for dtype in (jnp.uint8, jnp.float32)}
    times = interleaved(thunks, max(cfg.repeats, 3))
    return {"batch": cfg.render_batch,
            **{name: {**summary(t), "images_per_s": cfg.render_batch / statistics.median(t)} for name, t in times.items()}}


_FACTOR_SIZES = (3, 6, 40, 32, 32)


def _synthetic_codes(seed: int, num: int, dims: int = 10):
    """dSprites-sized factors ``[num, 5]`` and codes ``[num, dims]``: 5 noisy mixed
    factor dimensions, ``dims − 6`` noise dimensions and one collapsed one."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, num) for s in _FACTOR_SIZES], axis=1)
    mixing = np.eye(5) + 0.2 * np.random.default_rng(123).normal(size=(5, 5))
    signal = factors / (np.array(_FACTOR_SIZES) - 1.0) @ mixing + 0.05 * rng.normal(size=(num, 5))
    return factors, np.concatenate([signal, rng.normal(size=(num, dims - 6)), np.zeros((num, 1))], axis=1)


def bench_metrics(cfg, log) -> dict[str, Any]:
    """Seconds of each array-level metric on ``metric_points`` train / half as many test points."""
    n_train, n_test = cfg.metric_points, cfg.metric_points // 2
    f_train, c_train = _synthetic_codes(0, n_train)
    f_test, c_test = _synthetic_codes(1, n_test)
    split = (c_train, f_train, c_test, f_test)
    prior = pinwheel()
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
