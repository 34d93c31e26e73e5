"""The fixed-seed golden run: every form a value can take today, in one short sweep.

``python tests/_golden_run.py`` rewrites ``tests/golden/run_log.json``, the run's ``log.jsonl`` and
``summary.csv`` rows; ``tests/test_golden_run.py`` trains the same run and compares. A refactor that
changes how values are carried (the one-form issue) must leave these numbers where they are: rewrite
the file only for a change that is meant to move them, and say so in the commit.

The run: pinwheel data, a dense network, three composed regularisers (MMD with a per-name α, the
minibatch-weighted total correlation with N, DIP-VAE-I's off-diagonal term with its own λ numbers),
a Student-t prior whose ν is swept, a swept learning rate, two seeds: 4 members in ``zip`` mode, 12
steps logged every 4, on one device (``sweep.devices = 1``: the test session simulates 4).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from decompvae import runner
from decompvae.config import Config

GOLDEN = Path(__file__).with_name("golden") / "run_log.json"


def golden_config(out: str | Path) -> Config:
    """The golden run's config, writing to ``out``."""
    return Config.from_dict({
        "data": {"name": "pinwheel", "eval_points": 200},
        "model": {"network": "mlp", "latent_dim": 3, "hidden": [16], "likelihood": "gaussian", "prior": "student_t",
                  "regulariser": {"mmd": "mmd", "tc": "total_correlation", "dip": "dip_offdiagonal"},
                  "regulariser_options": {"tc": {"dataset_size": 5000}, "dip": {"variant": "i"}}},
        "train": {"steps": 12, "batch_size": 32, "log_every": 4, "checkpoint_every": 12,
                  "alpha": {"mmd": 1.0, "tc": 2.0, "dip": 0.5}},
        "sweep": {"mode": "zip", "beta": [1.0, 2.0, 4.0, 0.5], "alpha": [{"mmd": 1.0, "tc": 2.0, "dip": 0.5},
                                                                        {"mmd": 0.0, "tc": 5.0, "dip": 1.0},
                                                                        {"mmd": 3.0, "tc": 0.0, "dip": 0.0},
                                                                        {"mmd": 1.0, "tc": 1.0, "dip": 2.0}],
                  "prior": {"df": [3.0, 5.0, 9.0, 30.0]}, "learning_rate": [1e-3, 5e-4, 2e-3, 1e-3],
                  "seed": [0, 1, 0, 1], "devices": 1},
        "output_dir": str(out),
    })


def golden_rows(out: str | Path) -> dict:
    """Train the golden run into ``out``; its log and summary rows."""
    result = runner.run(golden_config(out), resume=False, progress=False, figures=False, echo=lambda s: None)
    log = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    return {"log": log, "summary": result.summary}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        rows = golden_rows(tmp)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"written {GOLDEN} ({len(rows['log'])} log rows)", file=sys.stderr)
