"""Runs that cannot be corrupted: one writer per run directory, kill -9 at any
point resumes to the uninterrupted result, damaged checkpoints are detected,
failed writes stop the run cleanly, and fresh runs are bit-for-bit repeatable.

Every comparison is exact: identical bytes for log.jsonl and summary.csv,
``assert_array_equal`` for the final parameters.
"""

import dataclasses
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from orbax.checkpoint._src.path import atomicity

from decompvae import cli, outputs, runner
from decompvae.checkpoint import (
    MANIFEST_NAME,
    CheckpointError,
    Checkpointer,
    CheckpointWriteError,
    DamagedCheckpointWarning,
    state_checksum,
)
from decompvae.config import Config, DistributedConfig, load_config
from decompvae.evaluate import load_run
from decompvae.interrupts import EXIT_INTERRUPTED, RunInterrupted, StopRequests
from decompvae.rundir import LOCK_NAME, OutputWriteError, RunLock, RunLocked

from _tiny_run import CONFIG_TOML, REPO

QUIET = dict(progress=False, figures=False, echo=lambda s: None)
SUBPROCESS_TIMEOUT = 300  # seconds; generous for a loaded 2-core machine


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(CONFIG_TOML)
    return path


def _config(config_file, out, *overrides) -> Config:
    return load_config(config_file, [f"output_dir={out}", *overrides])


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
    """One uninterrupted run: (its directory, its RunResult, its checkpoint at step 20)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = runner.run(_config(config_file, out), **QUIET)
    with Checkpointer(out / "checkpoints") as ck:
        assert ck.all_steps() == [20, 40]
        at_20 = jax.device_get(ck.restore(result.state, 20))
    return out, result, at_20


def _final_state(run_dir, like):
    with Checkpointer(Path(run_dir) / "checkpoints") as ck:
        return jax.device_get(ck.restore(like, 40))


def assert_states_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_same_outputs(run_dir, reference):
    """log.jsonl, summary.csv and the final parameters equal the reference run's exactly."""
    ref_dir, ref_result, _ = reference
    for name in ("log.jsonl", "summary.csv", "members.csv"):
        assert (Path(run_dir) / name).read_bytes() == (ref_dir / name).read_bytes(), name
    assert_states_equal(_final_state(run_dir, ref_result.state), ref_result.state)


def _copy_run(reference, dest):
    shutil.copytree(reference[0], dest)
    return dest


def _env(compile_cache=None):
    """The children's environment: conftest's XLA_FLAGS (4 CPU devices), like this process.

    ``compile_cache``: a directory for JAX's persistent compilation cache, so
    that the second and later children of one test skip compilation.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    if compile_cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(compile_cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def _resumable_at_20(reference, dest):
    """A copy of the reference run as if it had stopped after its step-20 checkpoint."""
    out = _copy_run(reference, dest)
    shutil.rmtree(out / "checkpoints" / "40")
    return out


def _snapshot(directory):
    """Every file under ``directory`` with its bytes and modification time."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(Path(directory).rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------
# 1. One writer per run directory


HOLD_LOCK = (
    "import sys, time; from decompvae.rundir import RunLock; "
    "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"
)


def test_second_writer_exits_at_once_and_changes_nothing(reference, config_file, tmp_path, capsys):
    out = _copy_run(reference, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True,
                              env=_env())
    try:
        assert holder.stdout.readline() == "held\n"
        before = _snapshot(out)
        for fresh in ([], ["--fresh"]):  # --fresh would delete the checkpoints: refused as well
            start = time.monotonic()
            args = ["sweep", "--no-progress", "--config", str(config_file), "--set", f"output_dir={out}", *fresh]
            code = cli.main(args)
            assert code == 2 and time.monotonic() - start < 5
            err = capsys.readouterr().err
            assert f"{out} is in use by process {holder.pid}" in err and "another output_dir" in err
        assert _snapshot(out) == before
        # a reader takes no lock: evaluate's loader works while the writer holds it
        _, state, _, step = load_run(out)
        assert step == 40
        assert_states_equal(state, reference[1].state)
    finally:
        holder.kill()  # SIGKILL: the holder dies without releasing anything itself
        holder.communicate()
    # the kernel released the dead holder's lock: no stale lock, a writer gets it at once
    with RunLock(out) as lock:
        assert lock.held and (out / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        with pytest.raises(RunLocked, match=f"in use by process {os.getpid()}"):
            RunLock(out).acquire()  # flock is per open file: a second writer in one process is refused too


# ---------------------------------------------------------------------------
# 6. Determinism and recorded versions


def test_fresh_runs_are_identical(reference, config_file, tmp_path):
    """A second fresh run, in a new process through the command line, equals the first bit for bit."""
    out = tmp_path / "again"
    proc = subprocess.run(
        [sys.executable, "-m", "decompvae.cli", "sweep", "--no-progress", "--config", str(config_file),
         "--set", f"output_dir={out}"],
        capture_output=True, text=True, env=_env(), timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert_same_outputs(out, reference)
    saved = json.loads((out / "config.json").read_text())
    first = json.loads((reference[0] / "config.json").read_text())
    assert {**saved, "output_dir": None} == {**first, "output_dir": None}


def test_config_json_records_versions_outside_the_resume_check(reference, config_file, tmp_path):
    saved = json.loads((reference[0] / "config.json").read_text())
    for name in ("jax", "jaxlib", "flax", "optax", "distrax", "numpy"):
        assert saved["versions"][name] == version(name)
    assert Config.from_dict(saved) == _config(config_file, reference[0])  # loaders ignore the record
    out = tmp_path / "old"
    out.mkdir()
    config = _config(config_file, out)
    # a config.json written before versions and the [distributed] section existed resumes
    old = {k: v for k, v in saved.items() if k not in ("versions", "distributed")}
    (out / "config.json").write_text(json.dumps({**old, "output_dir": str(out)}))
    outputs.prepare_output(config, resume=True)
    assert json.loads((out / "config.json").read_text())["versions"] == saved["versions"]
    # other library versions resume too, with a warning naming them
    other = {**saved, "output_dir": str(out), "versions": {**saved["versions"], "jax": "0.0.1"}}
    (out / "config.json").write_text(json.dumps(other))
    with pytest.warns(UserWarning, match=r"other library versions \(jax 0.0.1 → "):
        outputs.prepare_output(config, resume=True)
    # how a run is computed is not a setting: another process layout resumes it
    two = DistributedConfig(coordinator="127.0.0.1:1234", num_processes=2, process_id=0)
    outputs.prepare_output(dataclasses.replace(config, distributed=two), resume=True)


# ---------------------------------------------------------------------------
# 3. Damaged checkpoints


def _data_file(step_dir):
    return max((p for p in (step_dir / "state" / "d").iterdir()), key=lambda p: p.stat().st_size)


def _truncate(step_dir, like=None):
    f = _data_file(step_dir)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _change_bytes(step_dir, like=None):
    f = _data_file(step_dir)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))


def _remove_file(step_dir, like=None):
    (step_dir / "state" / "manifest.ocdbt").unlink()


def _other_arrays_no_manifest(step_dir, like):
    """Arrays Orbax reads back without complaint, but not those that were saved (and no file manifest)."""
    (step_dir / MANIFEST_NAME).unlink()
    metadata = (step_dir / "metadata" / "metadata").read_bytes()
    with Checkpointer(step_dir.parent) as ck:
        state = jax.device_get(ck.restore(like, int(step_dir.name)))
    shutil.rmtree(step_dir / "state")
    with ocp.StandardCheckpointer() as writer:
        writer.save(step_dir / "state", state._replace(params=jax.tree.map(lambda a: a + 1, state.params))._asdict())
    assert (step_dir / "metadata" / "metadata").read_bytes() == metadata  # it holds the old checksum


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_truncate, r"state/d/\w+ has \d+ bytes, not \d+ \(truncated\?\)"),
        (_change_bytes, r"the bytes of state/d/\w+ changed"),
        (_remove_file, r"state/manifest.ocdbt is missing"),
        (_other_arrays_no_manifest, r"arrays do not match the checksum"),
    ],
    ids=["truncated", "changed-bytes", "missing-file", "changed-arrays-no-manifest"],
)
def test_damaged_newest_checkpoint_falls_back_to_previous(reference, tmp_path, damage, reason):
    _, result, at_20 = reference
    out = _copy_run(reference, tmp_path / "run")
    damage(out / "checkpoints" / "40", result.state)
    with Checkpointer(out / "checkpoints", writer=True) as ck:
        with pytest.raises(CheckpointError, match=reason):
            ck.restore(result.state, 40)
        with pytest.warns(DamagedCheckpointWarning) as record:
            step, state = ck.restore_latest(result.state)
        assert step == 20 and ck.all_steps() == [20]
    message = str(record[0].message)
    assert f"checkpoint {out / 'checkpoints' / '40'} is damaged" in message or "40 is corrupt" in message
    assert f"previous good checkpoint, step 20 in {out / 'checkpoints'}" in message
    assert_states_equal(state, at_20)
    assert (out / "checkpoints.damaged" / "40").is_dir()  # moved aside, so step 40 can be written again


def test_resume_from_damaged_checkpoint_equals_uninterrupted(reference, config_file, tmp_path):
    out = _copy_run(reference, tmp_path / "run")
    _change_bytes(out / "checkpoints" / "40")
    messages = []
    with pytest.warns(DamagedCheckpointWarning, match="40 is damaged.*step 20"):
        runner.run(_config(config_file, out), progress=False, figures=False, echo=messages.append)
    assert messages == [f"resuming {out} from step 20"]
    assert_same_outputs(out, reference)


def test_no_good_checkpoint_stops_with_a_clear_error(reference, config_file, tmp_path, capsys):
    out = _copy_run(reference, tmp_path / "run")
    _truncate(out / "checkpoints" / "40")
    _remove_file(out / "checkpoints" / "20")
    before = _snapshot(out / "checkpoints")
    code = cli.main(["sweep", "--no-progress", "--config", str(config_file), "--set", f"output_dir={out}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"no good checkpoint in {out / 'checkpoints'}" in err
    assert "40 is damaged" in err and "20 is damaged" in err and "--fresh" in err
    assert _snapshot(out / "checkpoints") == before and not (out / "checkpoints.damaged").exists()


def test_state_checksum_sees_every_bit(reference):
    state = reference[1].state
    flipped = jax.tree.map(np.copy, state)
    leaf = jax.tree.leaves(flipped.params)[0]
    leaf.view(np.uint32).flat[0] ^= 1  # the smallest change of one float
    assert state_checksum(state) == state_checksum(jax.tree.map(np.copy, state))
    assert state_checksum(state) != state_checksum(flipped)


# ---------------------------------------------------------------------------
# 4. Full disk and unwritable outputs


def test_failed_checkpoint_write_stops_and_keeps_previous(reference, config_file, tmp_path, monkeypatch):
    real = atomicity.AtomicRenameTemporaryPath.finalize

    async def disk_full_at_40(self):  # the data is written, the commit fails
        if Path(str(self._final_path)).name == "40":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._tmp_path))
        return await real(self)

    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", disk_full_at_40)
    out = _resumable_at_20(reference, tmp_path / "run")
    with pytest.raises(CheckpointWriteError) as info:
        runner.run(_config(config_file, out), **QUIET)
    message = str(info.value)
    assert f"could not write checkpoint step 40 in {out / 'checkpoints'}" in message
    assert "No space left on device" in message and "previous checkpoint (step 20) is intact" in message
    assert sorted(os.listdir(out / "checkpoints")) == ["20"]  # the partial step 40 is gone
    with Checkpointer(out / "checkpoints") as ck:
        assert_states_equal(ck.restore(reference[1].state, 20), reference[2])
    assert not (out / "summary.csv").exists()  # the finished run's table went when training resumed


class _FullDisk:
    """A log file whose writes fail with ENOSPC once ``budget`` writes have succeeded."""

    def __init__(self, file, budget):
        self.file, self.budget = file, budget

    def write(self, text):
        self.budget -= 1
        if self.budget < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(text)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_failed_log_write_stops_with_a_clear_message(reference, config_file, tmp_path, monkeypatch, capsys):
    real_open = Path.open

    def open_(self, mode="r", *args, **kwargs):
        file = real_open(self, mode, *args, **kwargs)
        return _FullDisk(file, budget=0) if self.name == "log.jsonl" and mode == "a" else file

    monkeypatch.setattr(Path, "open", open_)
    out = _resumable_at_20(reference, tmp_path / "run")
    code = cli.main(["sweep", "--no-progress", "--config", str(config_file), "--set", f"output_dir={out}"])
    printed = capsys.readouterr()
    assert code == 2 and f"resuming {out} from step 20" in printed.out
    assert f"could not write {out / 'log.jsonl'}: No space left on device" in printed.err
    assert "rerun the same command" in printed.err
    first_rows = (reference[0] / "log.jsonl").read_text().splitlines(keepends=True)[:4]
    assert (out / "log.jsonl").read_text() == "".join(first_rows)  # steps 10 and 20, nothing torn
    with Checkpointer(out / "checkpoints") as ck:  # the step-20 checkpoint stands
        assert ck.all_steps() == [20]
        assert_states_equal(ck.restore(reference[1].state, 20), reference[2])


def _writes_into_read_only_directories() -> bool:
    """True for root (CAP_DAC_OVERRIDE), which permission bits do not stop."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o555)
        try:
            Path(tmp, "probe").touch()
            return True
        except PermissionError:
            return False
        finally:
            os.chmod(tmp, 0o755)


@pytest.mark.skipif(_writes_into_read_only_directories(), reason="this user (root) writes into read-only directories")
def test_read_only_checkpoint_directory_stops_the_run(reference, config_file, tmp_path):
    out = _resumable_at_20(reference, tmp_path / "run")
    (out / "checkpoints").chmod(0o555)
    try:
        with pytest.raises(OutputWriteError) as info:
            runner.run(_config(config_file, out), **QUIET)
    finally:
        (out / "checkpoints").chmod(0o755)
    message = str(info.value)
    assert f"checkpoint step 40 in {out / 'checkpoints'}" in message and "(step 20) is intact" in message
    with Checkpointer(out / "checkpoints") as ck:
        assert ck.all_steps() == [20]
        assert_states_equal(ck.restore(reference[1].state, 20), reference[2])


def test_torn_log_line_is_dropped_on_resume(tmp_path):
    log = tmp_path / "log.jsonl"
    rows = [json.dumps({"step": s, "member": 0}) + "\n" for s in (10, 20, 30)]
    log.write_text("".join(rows) + '{"step": 40, "memb')  # killed in the middle of a write
    outputs.truncate_log(log, 20)
    assert log.read_text() == "".join(rows[:2])
    before = log.stat().st_mtime_ns
    outputs.truncate_log(log, 20)  # nothing to drop: the file is left alone
    assert log.stat().st_mtime_ns == before


# ---------------------------------------------------------------------------
# 2. kill -9 at several points, then resume

# Runs `decompvae sweep` and, at the named point, writes a marker file and
# waits there for the test's SIGKILL:
#   chunk:K   at the start of the K-th training chunk of this process
#   commit:S  inside Orbax's commit of checkpoint step S (data written into
#             the temporary directory, not yet renamed)
KILL_DRIVER = textwrap.dedent("""\
    import os, sys, time
    from pathlib import Path

    point, marker, argv = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]

    def pause():
        marker.write_text(str(os.getpid()))
        while True:
            time.sleep(1)

    kind, _, arg = point.partition(":")
    if kind == "chunk":
        from decompvae import runner
        real, calls = runner.run_members, []

        def run_members(*args, **kwargs):
            calls.append(1)
            if len(calls) == int(arg):
                pause()
            return real(*args, **kwargs)

        runner.run_members = run_members
    elif kind == "commit":
        from orbax.checkpoint._src.path import atomicity
        real = atomicity.AtomicRenameTemporaryPath.finalize

        async def finalize(self):
            if Path(str(self._final_path)).name == arg:
                pause()
            return await real(self)

        atomicity.AtomicRenameTemporaryPath.finalize = finalize
    from decompvae import cli
    sys.exit(cli.main(argv))
""")


def _run_until_killed(tmp_path, config_file, out, point):
    """Start `decompvae sweep` on ``out``, SIGKILL it at ``point``; return what it printed.

    The children of one test share a compilation cache (in ``tmp_path``).
    """
    driver, marker = tmp_path / "kill_driver.py", tmp_path / f"paused-{point.replace(':', '-')}"
    driver.write_text(KILL_DRIVER)
    marker.unlink(missing_ok=True)
    args = ["sweep", "--no-progress", "--config", str(config_file), "--set", f"output_dir={out}"]
    proc = subprocess.Popen([sys.executable, str(driver), point, str(marker), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(tmp_path / "jax-cache"))
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"never reached {point}:\n{proc.communicate()[0]}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    printed = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL
    return printed


def _log_steps(out):
    return [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines() if line]


def _steps(out):
    return [p.name for p in (out / "checkpoints").iterdir() if p.name.isdigit()]


def _tmp_dirs(out):
    return [p.name for p in (out / "checkpoints").iterdir() if "tmp" in p.name]


def test_kill_9_at_several_points_then_resume_equals_uninterrupted(reference, config_file, tmp_path):
    out = tmp_path / "run"
    # before the first checkpoint: one chunk logged, nothing saved
    printed = _run_until_killed(tmp_path, config_file, out, "chunk:2")
    assert "resuming" not in printed and _log_steps(out) == [10, 10]
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
    # during the write of the second checkpoint: step 20 complete, step 40 only a temporary directory
    printed = _run_until_killed(tmp_path, config_file, out, "commit:40")
    assert "resuming" not in printed  # nothing to resume from: it started over
    assert _steps(out) == ["20"] and _tmp_dirs(out)
    # between checkpoints: resumed at 20, logged step 30, killed before step 40
    printed = _run_until_killed(tmp_path, config_file, out, "chunk:2")
    assert f"resuming {out} from step 20" in printed
    assert _log_steps(out) == [10, 10, 20, 20, 30, 30] and not _tmp_dirs(out)
    # resume to the end
    messages = []
    runner.run(_config(config_file, out), progress=False, figures=False, echo=messages.append)
    assert messages == [f"resuming {out} from step 20"]
    assert_same_outputs(out, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "point, resumed_from, logged",
    [("chunk:2", None, [10]), ("commit:20", None, [10, 20]), ("commit:40", 20, [10, 20, 30, 40]),
     ("chunk:4", 20, [10, 20, 30])],
    ids=["before-first-checkpoint", "during-first-checkpoint", "during-second-checkpoint", "between-checkpoints"],
)
def test_kill_9_at_one_point_then_resume_equals_uninterrupted(reference, config_file, tmp_path, point, resumed_from,
                                                              logged):
    out = tmp_path / "run"
    _run_until_killed(tmp_path, config_file, out, point)
    assert sorted(set(_log_steps(out))) == logged
    proc = subprocess.run(
        [sys.executable, "-m", "decompvae.cli", "sweep", "--no-progress", "--config", str(config_file),
         "--set", f"output_dir={out}"],
        capture_output=True, text=True, env=_env(tmp_path / "jax-cache"), timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    messages = [line for line in proc.stdout.splitlines() if line.startswith("resuming")]
    assert messages == ([f"resuming {out} from step {resumed_from}"] if resumed_from else [])
    assert_same_outputs(out, reference)


# ---------------------------------------------------------------------------
# 3. SIGTERM and Ctrl-C: a checkpoint at the end of the chunk in progress, exit 75, exact resume

# Runs `decompvae sweep` and sends itself signals: SIG at the start of the K-th
# training chunk (`chunk:K:SIG`), and optionally SIG2 inside Orbax's commit of
# checkpoint step S (`commit:S:SIG2`, data written, not yet renamed).
SIGNAL_DRIVER = textwrap.dedent("""\
    import os, signal, sys
    from pathlib import Path

    points, argv = sys.argv[1].split(","), sys.argv[2:]
    for point in points:
        kind, arg, name = point.split(":")
        signum = getattr(signal, name)
        if kind == "chunk":
            from decompvae import runner
            real, calls = runner.run_members, []

            def run_members(*args, _real=real, _k=int(arg), _s=signum, **kwargs):
                calls.append(1)
                if len(calls) == _k:
                    os.kill(os.getpid(), _s)  # arrives while the chunk's program runs
                return _real(*args, **kwargs)

            runner.run_members = run_members
        else:
            from orbax.checkpoint._src.path import atomicity
            real_finalize = atomicity.AtomicRenameTemporaryPath.finalize

            async def finalize(self, _real=real_finalize, _step=arg, _s=signum):
                if Path(str(self._final_path)).name == _step:
                    os.kill(os.getpid(), _s)
                return await _real(self)

            atomicity.AtomicRenameTemporaryPath.finalize = finalize
    from decompvae import cli
    sys.exit(cli.main(argv))
""")


def _run_with_signals(tmp_path, config_file, out, points: str):
    driver = tmp_path / "signal_driver.py"
    driver.write_text(SIGNAL_DRIVER)
    args = ["sweep", "--no-progress", "--config", str(config_file), "--set", f"output_dir={out}"]
    return subprocess.run([sys.executable, str(driver), points, *args], capture_output=True, text=True,
                          env=_env(tmp_path / "jax-cache"), timeout=SUBPROCESS_TIMEOUT)


def _resume_to_the_end(tmp_path, config_file, out):
    proc = subprocess.run(
        [sys.executable, "-m", "decompvae.cli", "sweep", "--no-progress", "--config", str(config_file),
         "--set", f"output_dir={out}"],
        capture_output=True, text=True, env=_env(tmp_path / "jax-cache"), timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("resuming")]


def test_sigterm_checkpoints_the_chunk_in_progress_then_resume_equals_uninterrupted(reference, config_file,
                                                                                      tmp_path):
    out = tmp_path / "run"
    # The tiny run logs every 10 steps and checkpoints every 20: SIGTERM during the third chunk (steps 21–30).
    proc = _run_with_signals(tmp_path, config_file, out, "chunk:3:SIGTERM")
    assert proc.returncode == EXIT_INTERRUPTED == 75, proc.stderr
    assert "stopped by SIGTERM after step 30" in proc.stderr and "run the same command again" in proc.stderr
    assert sorted(_steps(out), key=int) == ["20", "30"] and not _tmp_dirs(out)
    assert _log_steps(out) == [10, 10, 20, 20, 30, 30]  # the chunk in progress logged once
    assert not (out / "summary.csv").exists()
    with RunLock(out):  # released: the next run can take it
        pass
    with Checkpointer(out / "checkpoints") as ck:  # the step-30 checkpoint is good
        assert ck.restore_latest(reference[1].state)[0] == 30
    assert _resume_to_the_end(tmp_path, config_file, out) == [f"resuming {out} from step 30"]
    assert_same_outputs(out, reference)


@pytest.mark.slow
def test_second_signal_while_saving_keeps_the_checkpoint_whole(reference, config_file, tmp_path):
    out = tmp_path / "run"
    # Ctrl-C during the first chunk, a SIGTERM while its checkpoint (step 10) is being committed.
    proc = _run_with_signals(tmp_path, config_file, out, "chunk:1:SIGINT,commit:10:SIGTERM")
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr
    assert "stopped by SIGINT after step 10" in proc.stderr and "Traceback" not in proc.stderr
    assert _steps(out) == ["10"] and not _tmp_dirs(out) and _log_steps(out) == [10, 10]
    assert _resume_to_the_end(tmp_path, config_file, out) == [f"resuming {out} from step 10"]
    assert_same_outputs(out, reference)


def test_stop_requests_record_signals_and_restore_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequests() as stops:
        assert stops.first is None
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handlers run between bytecodes of the main thread
        assert stops.received == [signal.SIGTERM, signal.SIGINT] and stops.first == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    err = RunInterrupted(signal.SIGTERM, 30, "runs/x")
    assert str(err).startswith("stopped by SIGTERM after step 30") and "runs/x/checkpoints" in str(err)
