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
import importlib.util
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decompvae.data import FACTOR_SIZES, render_factors, sample_uniform_factors
from decompvae.networks import make_networks, resolve_conv_impl
from decompvae.objective import Hyperparams, make_objective
from benchmarks import goals
from benchmarks.bench_config import BenchConfig, make_config
from benchmarks.bench_data import bench_metrics, bench_renderer
from benchmarks.bench_report import format_markdown, write_outputs
from benchmarks.harness import (Loop, Stepper, compile_timed, device_peak_bytes, interleaved, machine_info,
                                matmul_peak, max_rss_bytes, summary, xla_flops, xla_memory)
from benchmarks.hlo_profile import CATEGORIES as _PROFILE_CATEGORIES
from benchmarks.hlo_profile import profile_program
from decompvae.priors import make_prior
from decompvae.sweep import Grid, init_members, make_sweep, resolve_vectorize, stack_members
from decompvae.train import make_optimizer, make_trainer

__all__ = ["BenchConfig", "format_markdown", "machine_info", "main", "make_config", "run_benchmark"]

def hlo_profile_categories() -> tuple[str, ...]:
    """The kinds of operation of the profile (:data:`benchmarks.hlo_profile.CATEGORIES`)."""
    return _PROFILE_CATEGORIES


# --------------------------------------------------------------------------
# The pieces being measured.




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


def _jax_then_torch(thunks: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Times of ``thunks``: the JAX ones interleaved, then the PyTorch ones (named ``"torch …"``) alone, after them.

    As benchmarks/dense_step.py times them: PyTorch's OpenMP threads spin after each call and slow
    whichever program runs next when interleaved.
    """
    torch = {name: thunks.pop(name) for name in list(thunks) if name.startswith("torch ")}
    times = interleaved(thunks, repeats)
    times.update(interleaved(torch, repeats) if torch else {})
    return times


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
        c_step, t_step = compile_timed(step, state, hyper, data)
        c_run, t_run = compile_timed(run, state, hyper, data, cfg.scan_steps)
        steppers[impl] = (c_step, t_step)
        steppers[f"{impl} run"] = (c_run, state)
        thunks[f"jax {impl} step"] = Stepper(c_step, state, hyper, data)
        thunks[f"jax {impl} run"] = Stepper(c_run, state, hyper, data)
        report["impls"][impl] = {
            "resolved": variant_name(resolve_conv_impl(parse_variant(impl)[0]), parse_variant(impl)[1]),
            "compile_step_s": t_step,
            "compile_run_s": t_run,
            "xla_flops_per_step": xla_flops(c_step),
            "memory_step": xla_memory(c_step),
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
    times = _jax_then_torch(thunks, cfg.repeats)
    timings = {}
    for name, seconds in times.items():
        per = cfg.scan_steps if name.endswith(" run") else 1
        timings[name] = summary(seconds, per)
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
            compiled, _ = compile_timed(fn, *args)
            name = f"{impl} {piece}"
            thunks[name] = lambda compiled=compiled, args=args: compiled(*args)
            flops[name] = xla_flops(compiled)
    optimizer = make_optimizer()
    _, encoder, decoder = make_bench_trainer(cfg.impls[0], cfg.latent_dim)
    params = {"encoder": encoder.init(key_enc, data[:1]), "decoder": decoder.init(key_dec, z[:1])}
    opt_state = optimizer.init(params)

    def update(params, opt_state, grads):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    compiled, _ = compile_timed(jax.jit(update), params, opt_state, params)
    thunks["AMSGrad update"] = lambda: compiled(params, opt_state, params)
    flops["AMSGrad update"] = xla_flops(compiled)
    log(f"  breakdown: {len(thunks)} programs compiled")
    times = interleaved(thunks, cfg.repeats)
    out = {name: {**summary(t), "xla_flops": flops[name]} for name, t in times.items()}
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
    compiled, seconds = compile_timed(sweep.run, state, hyper, data, scan_steps)
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
    torch_ref, why = (None, "skipped") if not (cfg.torch and cfg.torch_ns) else _load_torch_reference()
    results: dict[str, Any] = {"sweep_impl": cfg.sweep_impl, "loop_impl": loop_impl, "vmap": {}, "loop": {},
                               "variants": {name: {} for name in variant_trainers}, "torch_loop": {},
                               "torch_func": {}, "torch": {"available": torch_ref is not None, "reason": why},
                               "strategies": {k: {} for k, _ in cfg.sweep_strategies},
                               "default_vectorize": resolve_vectorize(None)}
    compiled_steps = dict(compiled_steps or {})
    for n in sorted(_sweep_sizes(cfg)):
        thunks, slots = {}, {}
        _add_sweeps(cfg, n, data, trainer, variant_trainers, results, thunks, slots, programs)
        if n in cfg.loop_ns:
            _add_loop(n, data, loop_trainer, loop_impl, compiled_steps, results, thunks, slots)
        if torch_ref is not None and n in cfg.torch_ns:
            x, cores = np.asarray(data), os.cpu_count() or 1
            thunks["torch loop"] = torch_ref.make_loop(x, n, latent_dim=cfg.latent_dim, threads=cores)
            thunks["torch func"] = torch_ref.make_ensemble_step(x, n, latent_dim=cfg.latent_dim, threads=cores)
            slots["torch loop"], slots["torch func"] = results["torch_loop"], results["torch_func"]
            results["torch_loop"][n], results["torch_func"][n] = {}, {}
        times = _jax_then_torch(thunks, cfg.sweep_repeats)
        for kind, seconds in times.items():
            timing = summary(seconds, n * (cfg.scan_steps if kind.startswith("vmap") else 1))
            timing["model_steps_per_s"] = 1e3 / timing["median_ms"]
            slots[kind][n].update(timing)
        log(f"  N = {n}: " + ", ".join(f"{k} {slots[k][n]['median_ms']:.1f} ms/model-step" for k in times))
    return results


def _sweep_sizes(cfg: BenchConfig) -> set[int]:
    """Every N some sweep, loop or peer of the run measures."""
    return (set(cfg.ns) | set(cfg.loop_ns) | {n for _, _, ns in cfg.sweep_variants for n in ns} | set(cfg.torch_ns)
            | {n for _, ns in cfg.sweep_strategies for n in ns})


def _add_sweeps(cfg: BenchConfig, n: int, data, trainer, variant_trainers: dict, results: dict, thunks: dict,
                slots: dict, programs: dict | None) -> None:
    """This N's compiled sweep programs (the main one, its variants, its looped groups) as thunks of the round."""
    profiled = programs is not None and n == cfg.profile_n
    if n in cfg.ns:
        compiled, state, hyper, seconds = _sweep_program(trainer, n, data, cfg.scan_steps)
        thunks["vmap"], slots["vmap"] = Stepper(compiled, state, hyper, data), results["vmap"]
        results["vmap"][n] = {"compile_s": seconds, "memory": xla_memory(compiled),
                              "xla_flops_per_call": xla_flops(compiled)}
        if profiled:
            programs[("vmap", n)] = (compiled, state, hyper)
    for (impl, dtype, ns), (name, variant) in zip(cfg.sweep_variants, variant_trainers.items()):
        if n in ns:
            compiled, state, hyper, seconds = _sweep_program(variant, n, data, cfg.scan_steps)
            thunks[f"vmap {name}"] = Stepper(compiled, state, hyper, data)
            slots[f"vmap {name}"] = results["variants"][name]
            results["variants"][name][n] = {"compile_s": seconds, "memory": xla_memory(compiled)}
    for k, ns in cfg.sweep_strategies:
        if n in ns:
            compiled, state, hyper, seconds = _sweep_program(trainer, n, data, cfg.scan_steps, vectorize=k)
            thunks[f"vmap groups of {k}"] = Stepper(compiled, state, hyper, data)
            slots[f"vmap groups of {k}"] = results["strategies"][k]
            results["strategies"][k][n] = {"compile_s": seconds, "memory": xla_memory(compiled)}
            if profiled:
                programs[("groups", k, n)] = (compiled, state, hyper)


def _add_loop(n: int, data, loop_trainer, loop_impl: str, compiled_steps: dict, results: dict, thunks: dict,
              slots: dict) -> None:
    """A Python loop of ``n`` single-model steps (the compiled single step reused, or compiled once here)."""
    hyper1 = Hyperparams(beta=jnp.float32(1.0), alpha=jnp.float32(0.0), prior={})
    keys = stack_members(Grid(seed=list(range(n))).members())[2]
    states = [jax.jit(loop_trainer.init)(keys[i], hyper1, 5e-4) for i in range(n)]
    if loop_impl not in compiled_steps:
        compiled_steps[loop_impl] = compile_timed(jax.jit(loop_trainer.step), states[0], hyper1, data)
    compiled, seconds = compiled_steps[loop_impl]
    thunks["loop"], slots["loop"] = Loop(compiled, states, hyper1, data), results["loop"]
    results["loop"][n] = {"compile_s": seconds}


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


# --------------------------------------------------------------------------
# The whole run.


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
    report["memory"] = {"max_rss_bytes": max_rss_bytes(), "device_peak_bytes": device_peak_bytes()}
    report["goals"] = goals.check(report)
    report["total_s"] = time.perf_counter() - start
    return report


def main(args) -> int:
    """Entry of ``python -m benchmarks.run``: ``args.quick`` (bool) and ``args.output`` (directory or None)."""
    cfg = make_config(quick=bool(getattr(args, "quick", False)))
    output = getattr(args, "output", None) or "runs/bench"
    report = run_benchmark(cfg, log=lambda s: print(s, flush=True))
    paths = write_outputs(report, output)
    print(format_markdown(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
