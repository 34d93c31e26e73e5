"""Sweeps across processes: two processes on 127.0.0.1 (one CPU device each,
gloo collectives) resume a run and finish it exactly as one process does.

The one-process reference runs here, with conftest's 4 simulated devices: its
2 members are sharded over 2 devices, one member per device, as in the
two-process run, so the compiled per-device programs match and the results
are equal bit for bit.
"""

import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from decompvae import runner
from decompvae.checkpoint import Checkpointer
from decompvae.config import DistributedConfig, load_config

from _tiny_run import CONFIG_TOML, REPO

TIMEOUT = 300  # seconds per process, generous for a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(config_file, outs):
    """Run `decompvae sweep` as processes 0 … len(outs)-1 (output_dir outs[i]); their (returncode, output)."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "decompvae.cli", "sweep", "--no-progress", "--config", str(config_file),
             "--set", f"output_dir={out}", "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(len(outs)),
             "--process-id", str(i)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        for i, out in enumerate(outs)
    ]
    results = []
    try:
        for proc in procs:
            results.append((proc.communicate(timeout=TIMEOUT)[0], proc.returncode))
    finally:
        for proc in procs:
            if proc.poll() is None:  # a process that hangs (say, its peer died): stop it
                proc.kill()
                proc.communicate()
    for output, code in results:
        assert code == 0, output
    return [output for output, _ in results]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The config file and a one-process run of it."""
    root = tmp_path_factory.mktemp("distributed")
    config_file = root / "tiny.toml"
    config_file.write_text(CONFIG_TOML)
    out = root / "one"
    result = runner.run(load_config(config_file, [f"output_dir={out}"]), progress=False, figures=False,
                        echo=lambda s: None)
    return config_file, out, result


def _assert_same_run(out, reference_dir, like):
    for name in ("summary.csv", "log.jsonl", "members.csv"):
        assert (out / name).read_bytes() == (reference_dir / name).read_bytes(), name
    with Checkpointer(out / "checkpoints") as a, Checkpointer(reference_dir / "checkpoints") as b:
        assert a.all_steps() == b.all_steps() == [20, 40]
        for x, y in zip(jax.tree.leaves(a.restore(like, 40)), jax.tree.leaves(b.restore(like, 40)), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_two_processes_resume_and_finish_like_one(one_process, tmp_path):
    """Process 0 picks the step-20 checkpoint and sends it to process 1; both train on to 40.

    Process 1 gets an output_dir of its own that must never appear: only
    process 0 writes (the hosts of a cluster need not share a disk).
    """
    config_file, reference_dir, result = one_process
    out = tmp_path / "run"
    shutil.copytree(reference_dir, out)
    shutil.rmtree(out / "checkpoints" / "40")  # as if the one-process run had stopped after step 20
    elsewhere = tmp_path / "process-1-output"
    printed = _launch(config_file, [out, elsewhere])
    assert f"resuming {out} from step 20" in printed[0] and "eval_loss" in printed[0]
    assert "resuming" not in printed[1] and "eval_loss" not in printed[1]
    assert not elsewhere.exists()
    _assert_same_run(out, reference_dir, result.state)


@pytest.mark.slow
def test_two_processes_from_scratch_equal_one(one_process, tmp_path):
    config_file, reference_dir, result = one_process
    out = tmp_path / "run"
    _launch(config_file, [out, tmp_path / "process-1-output"])
    _assert_same_run(out, reference_dir, result.state)


def test_distributed_settings_are_checked():
    with pytest.raises(ValueError, match="HOST:PORT"):
        DistributedConfig(num_processes=2, process_id=0)
    with pytest.raises(ValueError, match=r"process_id must be an integer in \[0, 2\)"):
        DistributedConfig(coordinator="127.0.0.1:1234", num_processes=2, process_id=2)
    with pytest.raises(ValueError, match="needs distributed.num_processes > 1"):
        DistributedConfig(coordinator="127.0.0.1:1234")
    config = load_config(None, ["distributed.coordinator=host:99", "distributed.num_processes=2"])
    assert config.distributed == DistributedConfig("host:99", 2, 0)
