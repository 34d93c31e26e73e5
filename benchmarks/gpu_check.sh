#!/usr/bin/env bash
# The GPU check: install, show the device, run the GPU-relevant tests, run the benchmark in
# GPU mode, all into one folder, in at most 8 minutes on one GPU (H200-class).
#
#   bash benchmarks/gpu_check.sh            # from the repository root; results in ${OUT:-gpu_results}
#   OUT=/tmp/gpu VENV=/opt/venv bash benchmarks/gpu_check.sh
#   benchmarks/gpu_check.sh --dry-run       # on a CPU: every step but CUDA's, to check the script itself
#
# --dry-run: no nvidia-smi; installs .[test] (not .[test,cuda]) unless VENV's jax imports; the same
# tests without the slow ones; the benchmark's --quick CPU run; the check reads bench.json's layout
# but not the GPU expectations. Results in ${OUT:-gpu_results_dry}.
#
# Environment:
#   OUT     results folder (default gpu_results): env.txt, nvidia-smi.txt, devices.txt, tests.txt,
#           bench/ (bench.json, bench.md, throughput.png), bench.log, check.txt, summary.txt
#   VENV    virtual environment to use or create (default .venv-gpu); an existing one whose jax
#           already sees a GPU is used as it is (nothing installed)
#   WHEELS  a folder of wheels for an offline machine: pip install --no-index --find-links $WHEELS
#   BUDGET  overall limit in seconds (default 480 = 8 minutes)
#
# Every step has its own `timeout`, and each is cut to what is left of BUDGET, so the whole
# script cannot run past it; a step that fails or times out is recorded and the next one runs.

set -u
DRY=0
case "${1:-}" in
  --dry-run) DRY=1 ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac
START=$(date +%s)
BUDGET=${BUDGET:-480}
if (( DRY )); then OUT=${OUT:-gpu_results_dry}; else OUT=${OUT:-gpu_results}; fi
VENV=${VENV:-.venv-gpu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

# What the benchmark's GPU mode must contain (tests/test_bench.py checks these against
# benchmarks/bench.py's make_config(backend="gpu"); check_results below against bench.json).
EXPECT_MAX_N=256
EXPECT_LOOP_MAX_N=64
EXPECT_VARIANTS="matmul float32;lax bfloat16;matmul bfloat16"
EXPECT_BF16_IMPLS="lax matmul"

# Time budget per step (seconds), each capped by what is left.
T_INSTALL=100
T_TESTS=70
T_BENCH=280
if (( DRY )); then T_TESTS=400; T_BENCH=400; fi  # a CPU is slower; BUDGET still caps the whole

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
limit() {  # min(requested, time left − 5 s reserve), at least 1
  local want=$1 rest
  rest=$(( $(left) - 5 ))
  (( rest < want )) && want=$rest
  (( want < 1 )) && want=1
  echo "$want"
}
step() {  # step NAME SECONDS COMMAND...: run with a timeout, log the outcome
  local name=$1 secs t0 rc
  secs=$(limit "$2"); shift 2
  t0=$(date +%s)
  timeout --kill-after=5 "$secs" "$@"
  rc=$?
  echo "$name: rc=$rc ($(( $(date +%s) - t0 )) s of at most $secs s)" | tee -a "$SUMMARY"
  return $rc
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(hostname)"
  echo "load: $(cat /proc/loadavg 2>/dev/null)"
  echo "git: $(git rev-parse HEAD 2>/dev/null) $(git status --short 2>/dev/null | wc -l) changed files"
  echo "dry run: $DRY"
} > "$OUT/env.txt"
if (( DRY )); then
  echo "nvidia-smi: skipped (dry run)" | tee -a "$SUMMARY"
else
  step nvidia-smi 15 nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
fi

# 1. The environment: use VENV when its jax sees a GPU (dry run: imports at all), else create it and
#    install .[test,cuda] (dry run: .[test]).
PY="$VENV/bin/python"
EXTRAS="test,cuda"
WANT="jax.default_backend() != 'gpu'"
if (( DRY )); then EXTRAS="test"; WANT="False"; fi
env_ready() { [ -x "$PY" ] && timeout 60 "$PY" -c "import jax, sys; sys.exit($WANT)" 2>/dev/null; }
if env_ready; then
  echo "install: skipped, $VENV already has the jax it needs" | tee -a "$SUMMARY"
else
  [ -x "$PY" ] || python3 -m venv "$VENV"
  PIP_ARGS=()
  [ -n "${WHEELS:-}" ] && PIP_ARGS=(--no-index --find-links "$WHEELS")
  step install "$T_INSTALL" "$PY" -m pip install -q "${PIP_ARGS[@]}" -e ".[$EXTRAS]" > "$OUT/install.txt" 2>&1
fi
"$PY" -m pip freeze > "$OUT/pip-freeze.txt" 2>&1
step devices 30 "$PY" -c "import jax; print(jax.__version__, jax.default_backend()); print(jax.devices())" \
  > "$OUT/devices.txt" 2>&1
cat "$OUT/devices.txt"

# 2. The GPU-relevant tests: networks (formulations, vmap), mixed precision, sweeps (vmap = singles,
#    sharded = unsharded on one real device), training, the benchmark's report logic.
#    conftest.py's 4 simulated devices are CPU devices, not the GPU: the sharded test is deselected.
#    Float32 matmuls in full precision (not TF32) for the tests' 1e-5 tolerances; the benchmark keeps
#    the default precision, what users get.
MARKS="slow or not slow"
(( DRY )) && MARKS="not slow"
JAX_DEFAULT_MATMUL_PRECISION=highest step tests "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider \
  -m "$MARKS" -k "not sharded" \
  tests/test_networks.py tests/test_mixed_precision.py tests/test_sweep.py tests/test_train.py \
  "tests/test_bench.py::test_gpu_mode_extends_the_sweep" > "$OUT/tests.txt" 2>&1
tail -n 5 "$OUT/tests.txt"

# 3. The benchmark in GPU mode (chosen from jax.default_backend()): N up to 256, vmap vs loop,
#    lax vs matmul convolutions under vmap, float32 vs bfloat16.
BENCH_ARGS=()
(( DRY )) && BENCH_ARGS=(--quick)
step bench "$T_BENCH" "$PY" -m benchmarks.run "${BENCH_ARGS[@]}" --output "$OUT/bench" > "$OUT/bench.log" 2>&1
tail -n 40 "$OUT/bench.log"

# 4. Did the benchmark measure what the GPU mode promises?
step check 30 "$PY" - "$OUT/bench/bench.json" "$EXPECT_MAX_N" "$EXPECT_LOOP_MAX_N" "$EXPECT_VARIANTS" "$DRY" \
  > "$OUT/check.txt" 2>&1 <<'EOF'
import json, sys
path, max_n, loop_max, variants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(";")
report = json.load(open(path))
if sys.argv[5] == "1":  # dry run: the layout the GPU check reads, not its GPU sizes
    missing = [k for k in ("machine", "sweeps", "goals") if k not in report]
    missing += [f"sweeps.{k}" for k in ("vmap", "loop") if k not in report.get("sweeps", {})]
    print(json.dumps(report.get("goals"), indent=1))
    print(f"dry run: backend {report['machine']['backend']}; GPU expectations not checked")
    print("OK" if not missing else "PROBLEMS: missing " + ", ".join(missing))
    sys.exit(1 if missing else 0)
problems = []
if report["machine"]["backend"] != "gpu":
    problems.append(f"backend is {report['machine']['backend']}, not gpu")
sweeps = report["sweeps"]
if max(map(int, sweeps["vmap"])) != max_n:
    problems.append(f"vmap sizes {sorted(map(int, sweeps['vmap']))}, expected up to {max_n}")
if max(map(int, sweeps["loop"])) != loop_max:
    problems.append(f"loop sizes {sorted(map(int, sweeps['loop']))}, expected up to {loop_max}")
for v in variants:
    if not sweeps["variants"].get(v):
        problems.append(f"sweep variant {v!r} missing")
print(json.dumps(report["goals"], indent=1))
print("OK" if not problems else "PROBLEMS: " + "; ".join(problems))
sys.exit(1 if problems else 0)
EOF
cat "$OUT/check.txt" | tail -n 3

echo "total: $(( $(date +%s) - START )) s of $BUDGET s" | tee -a "$SUMMARY"
echo "results in $OUT"
