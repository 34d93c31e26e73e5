"""The benchmark's report: ``bench.md`` (its tables), ``throughput.png`` and ``bench.json``.

:func:`format_markdown` renders one section per part of the report (:mod:`benchmarks.bench` measures,
:mod:`benchmarks.goals` checks); :func:`write_outputs` writes the three files.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np

from benchmarks.goals import GOALS
from benchmarks.hlo_profile import format_profile
from decompvae.plots import pyplot

__all__ = ["format_markdown", "plot_throughput", "write_outputs"]


def _mib(b) -> str:
    return "–" if b is None else f"{b / 2**20:.1f}"


def format_markdown(report: dict[str, Any]) -> str:
    """The report's tables as markdown: the machine, one model, the sweeps, the profile, data and metrics, goals."""
    lines = [*_header_lines(report), *_single_lines(report), *_breakdown_lines(report), *_sweep_lines(report),
             *_side_by_side_lines(report), *_profile_lines(report), *_data_lines(report), *_goal_lines(report["goals"]),
             "", f"Total benchmark time {report['total_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def backends_line(backends: dict[str, Any] | None) -> str:
    """One line: the vector extensions, the thread variables set, and PyTorch's BLAS, oneDNN, threads and ISA."""
    if not backends:
        return "Compute backends: not recorded."
    env = ", ".join(f"{k}={v}" for k, v in backends["environment"].items()) or "none set"
    line = f"Compute backends: CPU flags {' '.join(backends['cpu_flags']) or 'none of note'}; thread variables {env}"
    t = backends.get("torch")
    if t:
        line += (f"; PyTorch {t['threads']} intra-op / {t['interop_threads']} inter-op threads "
                 f"({t['parallel_backend']}), kernels {t['cpu_capability']}, BLAS {t['blas']}, {t['onednn']}")
    return line + "."


def _header_lines(report: dict[str, Any]) -> list[str]:
    """The title, the machine and the step's settings."""
    m, cfg = report["machine"], report["config"]
    return [
        f"# decompvae bench — {m['date']}",
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_count']} cores, backend {m['backend']} ({m['device_kind']}, "
        f"{m['device_count']} device(s)), load average at start {m['load_average']}. "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        "",
        *([backends_line(m["backends"]), ""] if m.get("backends") else []),  # reports before 2026-12-07 lack it
        f"dSprites network, Adam (AMSGrad) step, batch {cfg['batch']}, D = {cfg['latent_dim']}; medians over "
        f"{cfg['repeats']} interleaved repeats (sweeps: {cfg['sweep_repeats']}) after a warm-up; "
        f"`run` = `Trainer.run` of {cfg['scan_steps']} scanned steps, per step. "
        f"Matmul peak ({cfg['matmul_size']}², float32): **{report['matmul_peak']['gflops_per_s']:.1f} GFLOP/s**. "
        f"Useful FLOPs per step (XLA count of the `lax` formulation): "
        f"{(report['useful_flops_per_step'] or 0) / 1e9:.2f} GFLOP.",
    ]


def _single_lines(report: dict[str, Any]) -> list[str]:
    """One model: each variant's step time and achieved FLOP/s, then each formulation's compile and memory."""
    lines = ["", "## One model", "", "| variant | median ms/step | min – max | GFLOP/s | % of matmul peak |",
             "|---|---|---|---|---|"]
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
    return lines


def _breakdown_lines(report: dict[str, Any]) -> list[str]:
    """Each piece of the step jitted alone (when measured)."""
    if not report["breakdown"]:
        return []
    lines = ["", "## Where the time goes (each piece jitted alone)", "", "| piece | median ms | XLA GFLOP |",
             "|---|---|---|"]
    for name, t in report["breakdown"].items():
        fl = t.get("xla_flops")
        lines.append(f"| {name} | {t['median_ms']:.1f} | {'' if fl is None else f'{fl / 1e9:.2f}'} |")
    return lines


def _sweep_lines(report: dict[str, Any]) -> list[str]:
    """The vmapped sweep against a Python loop of single steps, per N."""
    sw = report["sweeps"]
    lines = ["", f"## Sweeps: vmap (`{sw['sweep_impl']}`) vs a Python loop of single steps (`{sw['loop_impl']}`)", "",
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
    return lines


def _profile_lines(report: dict[str, Any]) -> list[str]:
    """Time by kind of operation (when profiled)."""
    if not report.get("profile"):
        return []
    return ["", "## Where the time goes, by kind of operation (XLA HLO + jax.profiler trace)", "",
            "Thread-time per model-step summed over threads (both cores count), from a trace of 2 calls; "
            "instructions: executed HLO instructions of that kind (fusions by what they contain).", "",
            *format_profile(report["profile"])]


def _data_lines(report: dict[str, Any]) -> list[str]:
    """The renderer's throughput, the metric suite's time and the process's peak memory."""
    r, mt, mem = report["renderer"], report["metrics"], report["memory"]
    return ["", "## Data and metrics", "",
            f"Renderer (`render_factors` in jit, b = {r['batch']}): {r['uint8']['images_per_s']:,.0f} images/s "
            f"uint8, {r['float32']['images_per_s']:,.0f} images/s float32.", "",
            f"Metric suite on {mt['train_points']:,} train / {mt['test_points']:,} test points without DCI: "
            f"{mt['suite_without_dci_s']:.1f} s ("
            + ", ".join(f"{k} {v:.2f}" for k, v in mt["seconds"].items()) + " s)"
            + (f"; DCI on {mt['dci']['train_points']:,} / {mt['dci']['test_points']:,} points: "
               f"{mt['dci']['seconds']:.1f} s." if "dci" in mt else "; DCI not timed."),
            "", f"Peak resident memory of the process: {_mib(mem['max_rss_bytes'])} MiB"
            + ("" if mem["device_peak_bytes"] is None else f"; device peak {_mib(mem['device_peak_bytes'])} MiB") + "."]


def _goal_lines(g: dict[str, Any]) -> list[str]:
    """One line per goal of :mod:`benchmarks.goals`: the measured figure, the goal, met or not."""
    lines = ["", "## Goals", ""]
    if g["torch_ratio"] is None:
        lines.append(f"- per-model step ≤ {GOALS.torch_ratio:g}× PyTorch: not measured (no PyTorch).")
    else:
        tr = g["torch_ratio"]
        lines.append(f"- per-model step ≤ {tr['goal']}× PyTorch: best formulation {tr['best_impl']:.2f}×, "
                     f"default {tr['default_impl']:.2f}× — **{'met' if tr['met'] else 'not met'}**.")
    vr = g["vmap_ratio"]
    if vr["best"] is None:
        lines.append(f"- vmapped per-model ≤ {GOALS.vmap_ratio:g}× best single: not measured (no N > 1).")
    else:
        lines.append(f"- vmapped per-model ≤ {vr['goal']}× best single: best {vr['best']:.2f}× at N = {vr['best_n']} — "
                     f"**{'met' if vr['met'] else 'not met'}**.")
    st = g.get("sweep_strategy")
    if st and st["ratio"]:
        multi = {n: r for n, r in st["ratio"].items() if int(n) > 1}
        lines.append("- fastest strategy per N (÷ best single): "
                     + ", ".join(f"N = {n}: {st['fastest'][n]} {r:.2f}×"
                                 for n, r in sorted(multi.items(), key=lambda kv: int(kv[0])))
                     + f"; `make_sweep`'s default here: vectorize = {st['default_vectorize'] or 'all'} — "
                     f"**{'met' if st['met'] else 'not met'}**.")
    if "gpu_sweep64_vs_loop" in g:
        gp = g["gpu_sweep64_vs_loop"]
        lines.append(f"- GPU sweep of {GOALS.gpu_n} ≥ {gp['goal']:g}× a loop: {gp['speedup']}× (best variant {gp['best_variant']}: "
                     f"{gp['best_speedup']}×) — **{'met' if gp['met'] else 'not met'}**.")
    else:
        lines.append(f"- GPU sweep of {GOALS.gpu_n} ≥ {GOALS.gpu_speedup:g}× a loop: not measured (not a GPU run).")
    cg = g.get("compile")
    if cg and cg["max_sweep_compile_s"] is not None:
        lines.append(f"- compile time of a sweep program ≤ {cg['goal']:.0f} s: longest {cg['max_sweep_compile_s']:.1f} s "
                     f"— **{'met' if cg['met'] else 'not met'}**.")
    for k, v in g.get("bf16_vs_f32", {}).items():
        lines.append(f"- bfloat16 ÷ float32 single step ({k[:-5]}, fastest of step/run each): {v:.2f}×.")
    for n, v in g.get("vs_torch_sweeps", {}).items():
        lines.append(f"- sweep of {n}: our vmap ÷ PyTorch loop {v['vmap_vs_torch_loop']:.2f}×, "
                     f"÷ torch.func ensemble {v['vmap_vs_torch_func']:.2f}× (per model-step).")
    return lines


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
