"""What metrics during training cost: ``python -m benchmarks.curve_cost [--points 250 500 1000] [--intervals 2]``.

At the calibration settings (dSprites, dense [256, 256] encoder and decoder,
D = 10, Bernoulli, AMSGrad 5e-4, batch 64, 2 seeds), trains the same sweep
once without curves and once per ``train.eval_points`` P with
``train.eval_every = 800`` steps (51,200 images, the calibration's
"every 50,000 images" rounded to a multiple of ``log_every``), for
``--intervals`` intervals, and prints per P:

* the seconds one member's evaluation took (the median over the evaluations
  after step 0, whose first call also compiles), from ``curves.jsonl``;
* the training seconds per member and interval (the run without curves'
  wall time ÷ intervals ÷ members; its one compilation included) and the
  steady cost, one evaluation ÷ one interval's training;
* the run's wall time against the run without curves, and the overhead
  (with − without) / without of this short run, which also pays the
  evaluation at step 0 and its compilation.

Every run is a fresh output directory; runs alternate with the reference
so machine drift hits both.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from decompvae import runner
from decompvae.config import Config
from decompvae.curves import read_curves

__all__ = ["calibration_config", "main", "measure"]

#: Steps between evaluations: 51,200 images at batch 64, a multiple of LOG_EVERY.
EVAL_EVERY = 800
LOG_EVERY = 100


def calibration_config(out: Path, *, steps: int, eval_every: int, eval_points: int, seeds: int = 2) -> Config:
    """The calibration's network and recipe, ``seeds`` members, curves every ``eval_every`` steps (0: none)."""
    return Config.from_dict({
        "data": {"name": "dsprites", "eval_points": 1000},
        "model": {"network": "mlp", "hidden": [256, 256], "latent_dim": 10, "likelihood": "bernoulli"},
        "train": {"steps": steps, "batch_size": 64, "learning_rate": 5e-4, "log_every": LOG_EVERY,
                  "checkpoint_every": steps, "eval_every": eval_every, "eval_points": eval_points},
        "sweep": {"beta": [4.0], "seed": list(range(seeds))},
        "output_dir": str(out),
    })


def _wall(config: Config) -> float:
    start = time.perf_counter()
    runner.run(config, resume=False, progress=False, figures=False, echo=lambda s: None)
    return time.perf_counter() - start


def measure(points: list[int], intervals: int, seeds: int = 2) -> list[dict]:
    """One row per P: evaluation seconds per member, wall times with and without curves, the overhead."""
    steps, rows = intervals * EVAL_EVERY, []
    with tempfile.TemporaryDirectory() as tmp:
        for p in points:
            without = _wall(calibration_config(Path(tmp) / f"off-{p}", steps=steps, eval_every=0, eval_points=p,
                                               seeds=seeds))
            run_dir = Path(tmp) / f"on-{p}"
            with_curves = _wall(calibration_config(run_dir, steps=steps, eval_every=EVAL_EVERY, eval_points=p,
                                                   seeds=seeds))
            later = [r["seconds"] for r in read_curves(run_dir) if r["step"] > 0]
            rows.append({"eval_points": p, "members": seeds, "steps": steps, "images_per_member": steps * 64,
                         "eval_seconds_per_member": float(np.median(later)), "wall_without": without,
                         "wall_with": with_curves, "overhead": (with_curves - without) / without,
                         "train_seconds_per_interval": without / intervals / seeds,
                         "steady": float(np.median(later)) / (without / intervals / seeds),
                         "evaluations_per_member": len(later) // seeds + 1})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[250, 500, 1000], help="train.eval_points values")
    parser.add_argument("--intervals", type=int, default=2, help=f"evaluation intervals of {EVAL_EVERY} steps")
    parser.add_argument("--output", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = measure(args.points, args.intervals)
    print(f"{platform.processor() or platform.machine()}, {jax.device_count()} device(s) "
          f"{jax.default_backend()}, jax {jax.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| P | one evaluation (s/member) | training per interval (s/member) | steady cost | wall without | "
          "wall with | overhead of this run |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['eval_points']} | {r['eval_seconds_per_member']:.2f} | {r['train_seconds_per_interval']:.2f} | "
              f"{100 * r['steady']:.1f} % | {r['wall_without']:.1f} s | {r['wall_with']:.1f} s | "
              f"{100 * r['overhead']:+.1f} % |")
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
