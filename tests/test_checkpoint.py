"""Checkpoints: save/restore round trip, the checksum, the newest good one, readers never write."""

import json
import logging

import jax
import numpy as np
import pytest

from decompvae.checkpoint import CheckpointError, Checkpointer, DamagedCheckpointWarning, state_checksum
from decompvae.train import TrainState


def _state(value: float, step: int = 0) -> TrainState:
    params = {"encoder": {"params": {"w": np.full((2, 3), value, np.float32)}}}
    return TrainState(step=np.int32(step), params=params, opt_state={"m": np.zeros(3, np.float32)},
                      key=np.zeros(2, np.uint32), diverged_at=np.int32(-1))


def test_round_trip_and_metadata(tmp_path):
    with Checkpointer(tmp_path, writer=True) as ckpt:
        ckpt.save(10, _state(1.0, 10), metadata={"labels": ["m0"]})
        ckpt.save(20, _state(2.0, 20))
        assert ckpt.all_steps() == [10, 20] and ckpt.latest_step() == 20
        restored = ckpt.restore(_state(0.0), step=10)
        assert ckpt.metadata(10)["labels"] == ["m0"]
    np.testing.assert_array_equal(restored.params["encoder"]["params"]["w"], np.full((2, 3), 1.0))
    assert state_checksum(restored) == state_checksum(_state(1.0, 10)) != state_checksum(_state(2.0, 10))


def test_damaged_newest_falls_back_to_the_previous(tmp_path):
    with Checkpointer(tmp_path, writer=True) as ckpt:
        ckpt.save(10, _state(1.0, 10))
        ckpt.save(20, _state(2.0, 20))
    manifest = tmp_path / "20" / "files.sha256.json"
    digests = json.loads(manifest.read_text())
    victim = tmp_path / "20" / next(iter(digests))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    with Checkpointer(tmp_path, writer=True) as ckpt, pytest.warns(DamagedCheckpointWarning):
        step, state = ckpt.restore_latest(_state(0.0))
    assert step == 10 and float(state.params["encoder"]["params"]["w"][0, 0]) == 1.0


def test_no_checkpoint_and_a_reader(tmp_path):
    with Checkpointer(tmp_path) as reader:
        assert reader.restore_latest(_state(0.0)) is None
        with pytest.raises((CheckpointError, FileNotFoundError, ValueError)):
            reader.restore(_state(0.0), step=5)
    assert not (tmp_path / "5").exists()  # a reader writes nothing


def test_checksum_sees_dtype_and_shape(tmp_path):
    a = _state(1.0)
    b = a._replace(params=jax.tree.map(lambda x: x.astype(np.float64), a.params))
    c = a._replace(params={"encoder": {"params": {"w": np.full((3, 2), 1.0, np.float32)}}})
    assert len({state_checksum(a), state_checksum(b), state_checksum(c)}) == 3


def test_a_reader_opens_without_orbaxs_read_only_notices(tmp_path, caplog):
    """Orbax logs two absl WARNINGs restating a reader's read-only options; ``decompvae evaluate`` drops them."""
    with Checkpointer(tmp_path, writer=True) as ckpt:
        ckpt.save(10, _state(1.0, 10))
    caplog.set_level("INFO", logger="absl")
    with Checkpointer(tmp_path) as reader:
        assert reader.all_steps() == [10]
    assert not [r for r in caplog.records if r.name == "absl" and r.levelname == "WARNING"
                and any(text in r.getMessage() for text in ("read_only=True", "read only"))]
    # the filter is gone once the reader is open: other absl records still pass
    assert not logging.getLogger("absl").filters
