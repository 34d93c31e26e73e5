"""Adam-step speed of the dSprites VAE per convolution formulation, single and swept.

For each formulation (``decompvae.networks.layers.CONV_IMPLS``) this times a
full training step (encoder → reparameterised z → decoder → sigmoid
cross-entropy + Gaussian KL → gradients → ``optax.adam`` update) at batch 64:

- ``single``: one model, one jitted step;
- ``loop N``: a Python loop over N models, each a call of the jitted single step;
- ``vmap N``: one jitted step ``vmap``-ed over N stacked parameter sets
  (each model with its own batch and key), N ∈ {1, 2, 4, 8} by default.

Variants are timed in interleaved rounds (one call of each per round, in a
shuffled order) so that load from other processes hits them alike; the figure
is the median over rounds of milliseconds per model-step (wall clock; the CPU
time of this process is reported beside it, less sensitive to other processes
on a shared machine). XLA's cost analysis gives the FLOPs of each compiled
step.

Usage::

    python benchmarks/conv_sweep.py                  # full run (minutes on 2 cores)
    python benchmarks/conv_sweep.py --quick          # smoke test: tiny sizes, one round
    python benchmarks/conv_sweep.py --json out.json  # also write the figures
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

from benchmarks.bench_report import backends_line
from benchmarks.harness import Stepper, compute_backends, cpu_model, interleaved_clocks, xla_flops
from decompvae.networks import make_networks

IMPLS = ("lax", "phase", "matmul")


def make_step(impl: str, latent_dim: int, network: str, learning_rate: float = 5e-4):
    """``(init, step)`` of the benchmark VAE with formulation ``impl``."""
    encoder, decoder = make_networks(network, latent_dim, conv_impl=impl)
    shape = encoder.image_shape
    optimizer = optax.adam(learning_rate)

    def init(key):
        k_enc, k_dec = jax.random.split(key)
        params = {
            "encoder": encoder.init(k_enc, jnp.zeros((1, *shape))),
            "decoder": decoder.init(k_dec, jnp.zeros((1, latent_dim))),
        }
        return params, optimizer.init(params)

    def loss_fn(params, key, x):
        loc, log_var = encoder.apply(params["encoder"], x)  # [b, D] each
        eps = jax.random.normal(key, loc.shape)
        z = loc + jnp.exp(0.5 * log_var) * eps  # [b, D]
        logits = decoder.apply(params["decoder"], z)  # [b, h, w, c]
        rec = optax.sigmoid_binary_cross_entropy(logits, x).sum((1, 2, 3))  # [b]
        kl = 0.5 * (jnp.exp(log_var) + loc**2 - 1.0 - log_var).sum(-1)  # [b]
        return jnp.mean(rec + kl)

    def step(state, key, x):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params, key, x)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return init, step, shape


def _loop(step, states: list, keys, data):
    """A Python loop over N models, model i on its own key and batch, each a call of the compiled single step."""
    runs = [Stepper(step, state, keys[i], data[i]) for i, state in enumerate(states)]
    return lambda: [run() for run in runs]


def build_variants(impls, ns, batch, latent_dim, network, loop_ns, key):
    """Name → (callable advancing its own state once, models per call, compiled step or None).

    Steps are compiled ahead of time and called as compiled executables, so
    each is compiled exactly once.
    """
    variants = {}
    k_data, k_init = jax.random.split(key)
    n_max = max(ns + loop_ns + (1,))
    for impl in impls:
        init, step, shape = make_step(impl, latent_dim, network)
        data = (jax.random.uniform(k_data, (n_max, batch, *shape)) < 0.1).astype(jnp.float32)
        keys = jax.random.split(k_init, n_max)
        state = init(keys[0])
        single = jax.jit(step, donate_argnums=0).lower(state, keys[0], data[0]).compile()
        variants[f"{impl} single"] = (Stepper(single, state, keys[0], data[0]), 1, single)
        for n in loop_ns:
            states = [init(keys[i]) for i in range(n)]
            variants[f"{impl} loop {n}"] = (_loop(single, states, keys, data), n, None)
        for n in ns:
            vstate = jax.vmap(init)(keys[:n])
            vstep = jax.jit(jax.vmap(step), donate_argnums=0).lower(vstate, keys[:n], data[:n]).compile()
            variants[f"{impl} vmap {n}"] = (Stepper(vstep, vstate, keys[:n], data[:n]), n, vstep)
    return variants


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma-separated formulations")
    parser.add_argument("--ns", default="1,2,4,8", help="vmap sizes")
    parser.add_argument("--loop-ns", default="8", help="Python-loop sizes")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--network", default="dsprites", choices=("dsprites", "conv32"))
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds after warm-up")
    return parser


def _time_rounds(variants: dict, rounds: int) -> tuple[dict, dict]:
    """Wall and CPU ms per model-step of each variant per round (:func:`benchmarks.harness.interleaved_clocks`,
    each round in a shuffled order so no variant always follows the same neighbour)."""
    clocks = interleaved_clocks({name: run for name, (run, _, _) in variants.items()}, rounds, order_seed=0)
    per_step = lambda name, seconds: [1e3 * t / variants[name][1] for t in seconds]  # noqa: E731
    return ({name: per_step(name, c.wall) for name, c in clocks.items()},
            {name: per_step(name, c.cpu) for name, c in clocks.items()})


def _results(variants: dict, times: dict, cpu_times: dict) -> dict:
    """Each variant's medians, range, FLOPs per model-step and ratio to the best single model."""
    results = {
        name: {
            "models": n,
            "ms_per_model_step": statistics.median(times[name]),
            "min_ms": min(times[name]),
            "max_ms": max(times[name]),
            "cpu_ms_per_model_step": statistics.median(cpu_times[name]),
            "gflops_per_model_step": _gflops(c, n),
        }
        for name, (_, n, c) in variants.items()
    }
    best_single = min(r["ms_per_model_step"] for k, r in results.items() if k.endswith("single"))
    for r in results.values():
        r["ratio_to_best_single"] = r["ms_per_model_step"] / best_single
    return results


def _gflops(compiled, n: int) -> float | None:
    """XLA's GFLOPs per model-step of a compiled step of ``n`` models (None for a loop or when not reported)."""
    total = None if compiled is None else xla_flops(compiled)
    return None if total is None else total / n / 1e9


def _print_report(report: dict) -> None:
    print(f"# {report['date']}  {report['cpu']}  backend={report['backend']}  jax {report['jax']}")
    print(f"# {report['network']} VAE, Adam step, batch {report['batch']} per model, {report['rounds']} rounds, "
          f"compile {report['compile_s']:.0f} s")
    print(f"# load average before: {report['load_average_before']}, after: {report['load_average_after']}")
    print(f"# {backends_line(report['backends'])}")
    print(
        f"{'variant':<18}{'ms/model-step':>14}{'min':>9}{'max':>9}{'x best single':>15}"
        f"{'CPU ms':>9}{'GFLOP/model':>13}"
    )
    for name, r in report["results"].items():
        gf = "" if r["gflops_per_model_step"] is None else f"{r['gflops_per_model_step']:.2f}"
        print(
            f"{name:<18}{r['ms_per_model_step']:>14.1f}{r['min_ms']:>9.1f}{r['max_ms']:>9.1f}"
            f"{r['ratio_to_best_single']:>15.2f}{r['cpu_ms_per_model_step']:>9.1f}{gf:>13}"
        )


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    impls = tuple(args.impls.split(","))
    ns = tuple(int(n) for n in args.ns.split(",") if n)
    loop_ns = tuple(int(n) for n in args.loop_ns.split(",") if n)
    batch, rounds, network = args.batch, args.rounds, args.network
    if args.quick:
        ns, loop_ns, batch, rounds, network = (2,), (2,), 4, 1, "conv32"
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    variants = build_variants(impls, ns, batch, args.latent_dim, network, loop_ns, jax.random.key(0))
    compile_s = time.perf_counter() - t0
    results = _results(variants, *_time_rounds(variants, rounds))
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(), "backends": compute_backends(),
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()], "jax": jax.__version__,
        "command": " ".join([sys.executable.split("/")[-1], *sys.argv]), "network": network, "batch": batch,
        "latent_dim": args.latent_dim, "rounds": rounds, "compile_s": compile_s,
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "results": results,
    }
    _print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
