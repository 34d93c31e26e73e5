"""Tests of ``benchmarks/`` (outside the package): a smoke run of ``--quick`` and the report logic."""

import ast
import importlib.util
import json
import math
import pathlib
import statistics

import jax
import numpy as np
import pytest

from benchmarks import bench, bench_report, harness
from benchmarks import goals as bench_goals
from benchmarks import run as bench_run

#: The machine line of a benchmark table, for tests of the tables' formatting.
MACHINE = {"date": "d", "cpu_model": "cpu", "cpu_count": 2, "load_average": [0.0], "versions": {"jax": "x"}}


def _numbers(tree):
    """Every int/float leaf of a nested dict/list (booleans excluded)."""
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _numbers(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _numbers(v)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert bench_run.main(["--quick", "--output", str(out)]) == 0
    return out, json.loads((out / "bench.json").read_text())


def test_quick_run_writes_every_figure(quick_run):
    out, report = quick_run
    assert (out / "bench.md").read_text().startswith("# decompvae bench")
    assert (out / "throughput.png").stat().st_size > 1000
    machine = report["machine"]
    for key in ("cpu_model", "cpu_count", "backend", "device_kind", "versions", "date"):
        assert machine[key], key
    assert machine["versions"]["jax"] == jax.__version__
    assert report["matmul_peak"]["gflops_per_s"] > 0
    timings = report["single"]["timings"]
    assert {"jax lax step", "jax lax run"} <= set(timings)
    assert report["single"]["impls"]["lax"]["compile_step_s"] > 0
    assert report["single"]["impls"]["lax"]["xla_flops_per_step"] > 0
    assert report["single"]["impls"]["lax"]["memory_step"]["total_bytes"] > 0
    assert ("torch step" in timings) == report["single"]["torch"]["available"]
    for kind in ("vmap", "loop"):
        entry = report["sweeps"][kind]["2"]
        assert entry["median_ms"] > 0 and entry["model_steps_per_s"] > 0
    assert report["sweeps"]["vmap"]["2"]["compile_s"] > 0
    assert report["renderer"]["uint8"]["images_per_s"] > 0
    assert report["metrics"]["suite_without_dci_s"] > 0
    assert report["memory"]["max_rss_bytes"] > 0
    assert report["goals"]["vmap_ratio"]["best_n"] == 2
    numbers = list(_numbers(report))
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert all(v >= 0 for v in numbers if not isinstance(v, int))


def test_the_package_never_imports_the_benchmarks():
    """decompvae is installable without a checkout: no module of it names ``benchmarks``."""
    package = pathlib.Path(bench.__file__).parents[1] / "decompvae"
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "benchmarks" for n in names), path


def test_gpu_mode_extends_the_sweep():
    cpu, gpu = bench.make_config(backend="cpu"), bench.make_config(backend="gpu")
    assert cpu.ns == (1, 2, 4, 8, 16) and cpu.batch == 64
    assert max(gpu.ns) == 256 and bench_goals.GOALS.gpu_n in gpu.ns and bench_goals.GOALS.gpu_n in gpu.loop_ns
    assert bench.make_config(quick=True).repeats == 1


def test_summary_is_per_step_milliseconds():
    s = harness.summary([0.3, 0.1, 0.2], per=2)
    assert s == {"median_ms": 100.0, "min_ms": 50.0, "max_ms": 150.0, "repeats": 3}


def _recorder(calls: list):
    return {name: (lambda name=name: calls.append(name)) for name in "abc"}


def test_interleaved_rounds_run_every_thunk_once_after_a_warm_up():
    calls = []
    times = harness.interleaved(_recorder(calls), 4)
    assert calls == list("abc") * 5  # the warm-up round, then 4 rounds in the given order
    assert {name: len(t) for name, t in times.items()} == {"a": 4, "b": 4, "c": 4}
    calls.clear()
    clocks = harness.interleaved_clocks(_recorder(calls), 6, order_seed=0)
    rounds = [calls[i:i + 3] for i in range(3, len(calls), 3)]
    assert all(sorted(r) == list("abc") for r in rounds) and len({tuple(r) for r in rounds}) > 1  # shuffled
    assert all(len(c.wall) == len(c.cpu) == 6 and min(c.wall) >= 0 for c in clocks.values())
    calls.clear()
    harness.interleaved_clocks(_recorder(calls), 6, order_seed=0)
    assert [calls[i:i + 3] for i in range(3, len(calls), 3)] == rounds  # the seed fixes the orders


def _report(torch_ms, backend="cpu"):
    timings = {"jax lax step": {"median_ms": 400.0}, "jax lax run": {"median_ms": 300.0},
               "jax matmul step": {"median_ms": 200.0}, "jax matmul run": {"median_ms": 250.0}}
    if torch_ms is not None:
        timings["torch step"] = {"median_ms": torch_ms}
    vmap = {1: {"median_ms": 220.0}, 2: {"median_ms": 180.0}, 4: {"median_ms": 150.0}}
    loop = {1: {"median_ms": 200.0}, 2: {"median_ms": 210.0}, 4: {"median_ms": 300.0}}
    return {"machine": {"backend": backend}, "single": {"timings": timings}, "sweeps": {"vmap": vmap, "loop": loop}}


def test_goals_against_hand_computed_ratios():
    goals = bench_goals.check(_report(torch_ms=500.0))
    assert goals["best_single_ms"] == 200.0 and goals["default_impl"] == "matmul"
    assert goals["torch_ratio"]["best_impl"] == pytest.approx(0.4) and goals["torch_ratio"]["met"]
    assert goals["vmap_ratio"]["best_n"] == 4 and goals["vmap_ratio"]["best"] == pytest.approx(0.75)
    assert goals["vmap_ratio"]["met"]
    assert goals["vmap_vs_loop_throughput"][4] == pytest.approx(2.0)
    assert "gpu_sweep64_vs_loop" not in goals


def test_fastest_sweep_strategy_per_n():
    report = _report(torch_ms=None)
    report["sweeps"]["vmap"][4]["median_ms"] = 170.0
    report["sweeps"]["strategies"] = {1: {2: {"median_ms": 190.0}, 4: {"median_ms": 150.0}},
                                      2: {4: {"median_ms": 160.0}}}
    st = bench_goals.check(report)["sweep_strategy"]
    assert st["fastest"] == {1: "all", 2: "all", 4: "groups of 1"}
    assert st["ratio"][4] == pytest.approx(0.75) and st["met"]  # 150 / 200; the all-vmapped 0.85 alone is not


def test_goals_not_met_and_torch_missing():
    report = _report(torch_ms=None)
    report["sweeps"]["vmap"][4]["median_ms"] = 170.0
    goals = bench_goals.check(report)
    assert goals["torch_ratio"] is None
    assert goals["vmap_ratio"]["best"] == pytest.approx(0.85) and not goals["vmap_ratio"]["met"]
    assert not bench_goals.check(_report(torch_ms=300.0))["torch_ratio"]["met"]  # 200 / 300 > 0.5


def test_missing_torch_is_reported(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    module, why = bench._load_torch_reference()
    assert module is None and "not installed" in why


def test_torch_peer_has_the_same_parameters():
    pytest.importorskip("torch")
    module, why = bench._load_torch_reference()
    assert module is not None, why
    n_torch = sum(p.numel() for p in module.VAE(10).parameters())
    _, encoder, decoder = bench.make_bench_trainer("lax", 10)
    x = np.zeros((1, 64, 64, 1), np.float32)
    params = [encoder.init(jax.random.key(0), x), decoder.init(jax.random.key(1), np.zeros((1, 10), np.float32))]
    n_jax = sum(leaf.size for leaf in jax.tree.leaves(params))
    assert n_torch == n_jax
    step = module.make_step((np.random.default_rng(0).random((4, 64, 64, 1)) < 0.2).astype(np.float32), threads=1)
    losses = [step() for _ in range(15)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_quick_run_profiles_and_compares_side_by_side(quick_run):
    out, report = quick_run
    profile = report["profile"]
    assert set(profile) == {"single (lax)", "vmap of 2 (lax)", "lax.map over groups of 1 of 2 (lax)"}
    for p in profile.values():
        cats = p["categories"]
        assert set(cats) == set(bench.hlo_profile_categories())
        assert cats["convolution/dot"]["instructions"] > 0 and p["flops"] > 0
        if p["matched_events"]:  # XLA:CPU traces every thunk by instruction name
            assert abs(sum(c["share"] for c in cats.values()) - 1.0) < 1e-6
    assert report["sweeps"]["variants"]["lax bfloat16"]["2"]["median_ms"] > 0
    assert report["sweeps"]["strategies"]["1"]["2"]["median_ms"] > 0  # members looped one at a time
    assert set(report["goals"]["sweep_strategy"]["fastest"]["2"].split()) <= {"all", "groups", "of", "1"}
    assert report["sweeps"]["loop_impl"] == "lax"  # float32, like the main sweep
    assert report["goals"]["compile"]["max_sweep_compile_s"] > 0
    torch_available = report["sweeps"]["torch"]["available"]
    assert bool(report["sweeps"]["torch_func"]) == torch_available
    if torch_available:
        assert report["sweeps"]["torch_loop"]["2"]["median_ms"] > 0
        assert report["goals"]["vs_torch_sweeps"]["2"]["vmap_vs_torch_func"] > 0
    markdown = (out / "bench.md").read_text()
    assert "by kind of operation" in markdown and "Sweeps side by side" in markdown


GPU_SCRIPT = pathlib.Path(bench.__file__).parent / "gpu_check.sh"


def _script_value(name: str) -> str:
    for line in GPU_SCRIPT.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip('"')
    raise AssertionError(f"{name} not set in {GPU_SCRIPT}")


def test_gpu_check_script_is_valid_bash_and_matches_the_gpu_plan():
    import shutil
    import subprocess

    bash = shutil.which("bash")
    assert bash is not None
    subprocess.run([bash, "-n", str(GPU_SCRIPT)], check=True)
    text = GPU_SCRIPT.read_text()
    assert "timeout" in text and "BUDGET:-480" in text and "OUT:-gpu_results" in text
    assert "python -m benchmarks.run" in text.replace('"$PY" -m', "python -m")
    gpu = bench.make_config(backend="gpu")
    assert max(gpu.ns) == int(_script_value("EXPECT_MAX_N"))
    assert max(gpu.loop_ns) == int(_script_value("EXPECT_LOOP_MAX_N"))
    expected = _script_value("EXPECT_VARIANTS").split(";")
    assert [f"{impl} {dtype}" for impl, dtype, _ in gpu.sweep_variants] == expected
    assert set(gpu.bf16_impls) == set(_script_value("EXPECT_BF16_IMPLS").split())
    # lax against matmul under vmap and float32 against bfloat16, at the goal's N = 64.
    assert all(bench_goals.GOALS.gpu_n in ns for _, _, ns in gpu.sweep_variants)
    assert {"matmul", "lax"} <= {impl for impl, _, _ in gpu.sweep_variants} | {gpu.sweep_impl, "lax"}
    assert {dtype for _, dtype, _ in gpu.sweep_variants} == {"float32", "bfloat16"}
    assert resolve_gpu_default() == "lax"
    # The long steps' timeouts fit the budget with room for the short ones (each is also cut to what is left).
    limits = [int(_script_value(k)) for k in ("T_INSTALL", "T_TESTS", "T_BENCH")]
    assert sum(limits) <= 8 * 60 - 30
    assert not gpu.breakdown and gpu.dci_points == 0  # what the script's time allows


def resolve_gpu_default():
    return bench.resolve_conv_impl("auto", "gpu")


def test_bf16_variant_names_and_goal():
    assert bench.variant_name("matmul", "bfloat16") == "matmul+bf16" and bench.variant_name("lax") == "lax"
    assert bench.parse_variant("matmul+bf16") == ("matmul", "bfloat16") and bench.parse_variant("lax") == ("lax", "float32")
    report = _report(torch_ms=None)
    report["single"]["timings"].update({"jax matmul+bf16 step": {"median_ms": 100.0},
                                        "jax matmul+bf16 run": {"median_ms": 150.0}})
    goals = bench_goals.check(report)
    assert goals["bf16_vs_f32"] == {"matmul+bf16": pytest.approx(0.5)}
    assert goals["best_single_ms"] == 100.0


def test_plan_prints_the_gpu_mode(capsys):
    assert bench_run.main(["--plan", "gpu"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert max(plan["ns"]) == 256 and plan["bf16_impls"] == ["lax", "matmul"]


def test_cpu_devices_candidates_set_their_own_flags():
    from benchmarks import cpu_devices

    env = cpu_devices.candidate_env("sharded, 1 device per core, single-threaded ops", cores=2)
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false"
    assert cpu_devices.candidate_env("vmap, 1 device")["XLA_FLAGS"] == ""
    row = {"median_ms": 10.0, "min_ms": 9.0, "max_ms": 11.0}
    result = {"ns": [2], "summary": {"vmap, 1 device": {"2": row},
                                     "sharded, 1 device per core": {"2": {**row, "median_ms": 5.0}}}}
    assert "5.0 [9–11] (0.50×)" in cpu_devices.format_markdown(result)


def test_hlo_categories():
    from benchmarks import hlo_profile

    hlo = """HloModule m
%fused_computation (p0: f32[4,4], p1: f32[4,4]) -> f32[4,4] {
  %p0 = f32[4,4]{1,0} parameter(0)
  %p1 = f32[4,4]{1,0} parameter(1)
  ROOT %dot.1 = f32[4,4]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}
%fused_add (p0: f32[4,4]) -> f32[4,4] {
  %p0 = f32[4,4]{1,0} parameter(0)
  ROOT %add.2 = f32[4,4]{1,0} add(%p0, %p0)
}
ENTRY %main (a: f32[4,4]) -> f32[4,4] {
  %a = f32[4,4]{1,0} parameter(0)
  %ynn_fusion = f32[4,4]{1,0} fusion(%a, %a), kind=kCustom, calls=%fused_computation
  %transpose.3 = f32[4,4]{0,1} transpose(%ynn_fusion), dimensions={1,0}, metadata={op_name="jit(f)/transpose(jvp(Net))/t"}
  ROOT %add_fusion = f32[4,4]{1,0} fusion(%transpose.3), kind=kLoop, calls=%fused_add
}
"""
    cats = hlo_profile.categorize_hlo(hlo)
    assert {k: v["category"] for k, v in cats.items()} == {
        "ynn_fusion": "convolution/dot", "transpose.3": "copy/transpose", "add_fusion": "elementwise"}
    assert cats["ynn_fusion"]["bytes"] == 64
    assert hlo_profile.op_names(hlo) == {"transpose.3": "jit(f)/transpose(jvp(Net))/t"}
    top = [{"ms_per_step": 1.234, "instruction": "transpose.3", "category": "copy/transpose",
            "op_name": "jit(f)/transpose(jvp(Net))/t"}]
    assert hlo_profile.format_top({"top": top}, strip="jit(f)/")[2] == (
        "| 1.23 | `transpose.3` | copy/transpose | `transpose(jvp(Net))/t` |")


def test_gpu_check_script_is_executable_and_refuses_unknown_options(tmp_path):
    import os
    import subprocess

    assert os.access(GPU_SCRIPT, os.X_OK)
    done = subprocess.run([str(GPU_SCRIPT), "--bogus"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "--dry-run" in done.stderr


@pytest.mark.slow
def test_gpu_check_dry_run_passes_every_step_on_a_cpu(tmp_path):
    """``--dry-run`` runs the script's non-CUDA steps in this environment: each step exits 0, the check says OK."""
    import os
    import subprocess
    import sys

    out = tmp_path / "dry"
    env = {**os.environ, "OUT": str(out), "VENV": sys.prefix, "BUDGET": "900"}
    root = GPU_SCRIPT.parent.parent
    subprocess.run([str(GPU_SCRIPT), "--dry-run"], cwd=root, env=env, check=True, capture_output=True, timeout=960)
    summary = (out / "summary.txt").read_text()
    assert "nvidia-smi: skipped (dry run)" in summary and "install: skipped" in summary
    for step in ("devices", "tests", "bench", "check"):
        assert f"{step}: rc=0 " in summary, summary
    assert "OK" in (out / "check.txt").read_text().splitlines()  # the checker's verdict (then the step's rc line)
    assert (out / "bench" / "bench.json").exists()


def test_the_committed_report_renders_to_its_committed_tables():
    """bench_report.format_markdown of benchmarks/results/bench.json is benchmarks/results/bench.md, byte for byte."""
    results = pathlib.Path(bench.__file__).parent / "results"
    report = json.loads((results / "bench.json").read_text())
    assert bench_report.format_markdown(report) == (results / "bench.md").read_text()
    checked = bench_goals.check(report)  # from the JSON (string keys): the same figures as the run's
    assert {k: checked[k] for k in ("torch_ratio", "compile", "bf16_vs_f32", "best_single_ms")} == {
        k: report["goals"][k] for k in ("torch_ratio", "compile", "bf16_vs_f32", "best_single_ms")}


def test_the_goals_come_from_their_toml(tmp_path):
    path = tmp_path / "goals.toml"
    path.write_text("[goals]\ntorch_ratio = 0.3\nvmap_ratio = 0.8\ngpu_speedup = 20.0\ngpu_n = 64\ncompile_s = 20.0\n")
    checked = bench_goals.check(_report(torch_ms=500.0), bench_goals.load_goals(path))["torch_ratio"]
    assert checked["goal"] == 0.3 and checked["best_impl"] == pytest.approx(0.4) and not checked["met"]
    assert bench_goals.GOALS == bench_goals.load_goals()  # the shipped file


def test_compute_backends_name_what_each_side_computes_with(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    backends = harness.compute_backends()
    assert set(backends["cpu_flags"]) <= set(harness.VECTOR_FLAGS)
    assert backends["environment"]["OMP_NUM_THREADS"] == "2"
    line = bench_report.backends_line(backends)
    assert line.startswith("Compute backends: CPU flags") and "OMP_NUM_THREADS=2" in line
    if backends["torch"] is not None:
        assert backends["torch"]["threads"] >= 1 and "PyTorch" in line and "intra-op" in line
    fake = {"cpu_flags": ["avx2"], "environment": {}, "torch": {"threads": 2, "interop_threads": 1,
            "parallel_backend": "OpenMP", "cpu_capability": "AVX2", "blas": "MKL 2024.2", "onednn": "oneDNN 3.12.0"}}
    assert bench_report.backends_line(fake) == (
        "Compute backends: CPU flags avx2; thread variables none set; PyTorch 2 intra-op / 1 inter-op threads "
        "(OpenMP), kernels AVX2, BLAS MKL 2024.2, oneDNN 3.12.0.")
    assert harness._version_in("Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)") == "3.12.0"


@pytest.mark.slow  # compiles a training program (about 5 s), like the other benchmark runs
def test_renderer_share_times_the_run_and_its_batches_alone(monkeypatch):
    from benchmarks import renderer_share

    monkeypatch.setattr(renderer_share, "RECIPES", {"dense [8]": {"network": "mlp", "hidden": [8]}})
    rows = renderer_share.measure(batch=4, steps=2, repeats=1)
    (row,) = rows
    assert row["run_ms_per_step"] > 0 and row["batches_ms_per_step"] > 0
    assert row["share"] == row["batches_ms_per_step"] / row["run_ms_per_step"]
    machine = {"date": "d", "cpu_model": "cpu", "cpu_count": 2, "load_average": [0.0], "versions": {"jax": "j"},
               "backends": {"cpu_flags": [], "environment": {}, "torch": None}}
    text = renderer_share.markdown({"machine": machine, "command": "c", "rows": rows})
    assert "| dense [8] | 4 |" in text and "Compute backends" in text


def test_xla_flags_children_get_their_flags_and_the_table_says_ratios_and_failures(monkeypatch):
    import subprocess

    from benchmarks import xla_flags

    seen = []

    def fake_run(cmd, env, capture_output, text):
        seen.append(env["XLA_FLAGS"])
        if "crash" in env["XLA_FLAGS"]:
            return subprocess.CompletedProcess(cmd, -4, "", "warming up\npartition compile failed\n")
        ms = {"": 10.0, "--fast": 8.0}[env["XLA_FLAGS"]] + len(seen) / 100
        return subprocess.CompletedProcess(cmd, 0, json.dumps({"ms_per_step": ms, "kernels": ["ynn"]}) + "\n", "")

    monkeypatch.setattr(xla_flags.subprocess, "run", fake_run)
    settings = {"no flag": "", "fast": "--fast", "broken": "--crash"}
    reports = xla_flags.measure("dense", settings, rounds=3, calls=1)
    assert sorted(seen) == sorted(["", "--fast", "--crash"] * 3)  # every setting once per round, in its own child
    assert [sorted(seen[3 * i:3 * i + 3]) for i in range(3)] == [sorted(["", "--fast", "--crash"])] * 3
    assert reports["broken"][0] == {"failed": "signal SIGILL: partition compile failed"}
    table = xla_flags.markdown("dense", settings, reports, MACHINE)
    base, fast = (statistics.median(r["ms_per_step"] for r in reports[k]) for k in ("no flag", "fast"))
    assert f"| fast | `--fast` | {fast:.1f} " in table and f"| {fast / base:.2f}× | ynn |" in table
    assert "| broken | `--crash` | failed (signal SIGILL: partition compile failed) |" in table


def test_call_cost_fits_the_fixed_cost_and_compares_with_pytorch():
    from benchmarks import call_cost

    rows = [{"program": "jitted Trainer.step", "steps_per_call": 1, "ms_per_call": 120.0, "ms_per_step": 120.0,
             "minor_faults_per_call": 29300}]
    rows += [{"program": f"Trainer.run, {n} a call", "steps_per_call": n, "ms_per_call": 23.0 + 90.0 * n,
              "ms_per_step": (23.0 + 90.0 * n) / n, "minor_faults_per_call": 29300} for n in (1, 3, 20)]
    fixed, per_step = call_cost.fixed_and_per_step(rows)
    assert fixed == pytest.approx(23.0) and per_step == pytest.approx(90.0)
    rows.append({"program": "PyTorch 2.13.0 step (its own rounds)", "steps_per_call": 1, "ms_per_call": 88.0,
                 "ms_per_step": 88.0, "minor_faults_per_call": None})
    table = call_cost.markdown("convnet", rows, MACHINE)
    assert "| jitted Trainer.step | 120.0 | 1.36× | 29,300 |" in table
    assert "| PyTorch 2.13.0 step (its own rounds) | 88.0 | 1.00× | – |" in table
    assert f"chunk of 100 steps (`train.log_every`'s default) 90.2 ms per step ({90.23 / 88:.2f}× PyTorch)" in table


@pytest.mark.parametrize("form", ["gather", "s2d"])
def test_conv_forms_forces_a_form_while_tracing_and_restores_the_choice(monkeypatch, form):
    from benchmarks import conv_forms
    from decompvae.networks import layers

    s2d_calls = []
    real_s2d = layers._conv2d_s2d
    monkeypatch.setattr(layers, "_conv2d_s2d", lambda *a, **k: s2d_calls.append(1) or real_s2d(*a, **k))
    x = jax.random.normal(jax.random.key(0), (2, 9, 10, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))
    want = jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    originals = layers._conv2d_matmul, layers._conv_transpose2d_matmul
    with conv_forms.forced_forms(form, None):
        got = layers.conv2d(x, kernel, stride=2, padding="SAME", impl="matmul")
    assert (layers._conv2d_matmul, layers._conv_transpose2d_matmul) == originals
    assert len(s2d_calls) == (form == "s2d")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sweep_step_divides_each_call_by_its_members_and_steps(monkeypatch):
    from benchmarks import sweep_step

    monkeypatch.setattr(sweep_step, "program", lambda setup, n, steps: n)
    walls = {"Trainer.run": [0.10, 0.11, 0.12], "vmap of 1": [0.24, 0.25, 0.26], 1: [0.20, 0.22, 0.30],
             8: [1.70, 1.76, 2.00]}  # seconds a call of 2 steps
    monkeypatch.setattr(sweep_step, "interleaved_clocks",
                        lambda thunks, repeats, order_seed: {n: harness.Clocks(walls[n], [], []) for n in thunks})
    rows = sweep_step.measure(None, [8], steps=2, repeats=3)
    assert [r["members"] for r in rows] == ["Trainer.run", "vmap of 1", 1, 8]
    assert [r["ms_per_model_step"] for r in rows] == pytest.approx([55.0, 125.0, 110.0, 110.0])
    assert rows[3]["low"] == pytest.approx(106.25) and [r["over_single"] for r in rows] == pytest.approx([1, 125 / 55,
                                                                                                        2, 2])


@pytest.mark.slow  # compiles four small programs (about 40 s on 2 cores)
def test_sweep_step_times_every_size_per_model_against_one_model():
    from benchmarks import renderer_share, sweep_step

    setup = renderer_share.recipe_setup({"network": "mlp", "hidden": [8]}, 4)
    rows = sweep_step.measure(setup, [3], steps=2, repeats=2)
    assert [r["members"] for r in rows] == ["Trainer.run", "vmap of 1", 1, 3]
    assert rows[0]["over_single"] == 1.0
    assert all(r["low"] <= r["ms_per_model_step"] <= r["high"] for r in rows)
    assert f"| 3 | {rows[3]['ms_per_model_step']:.1f} " in sweep_step.markdown("tiny", rows, 2, 2, MACHINE)
