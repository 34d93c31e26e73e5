"""The ``decompvae`` command line.

    decompvae sweep [--config FILE] [--set section.key=value ...]   # the default: a small β × ν sweep
    decompvae train [--config FILE] [--set ...]                     # one run (the [train] values)
    decompvae sweep --dry-run [...]                                 # members, chunks, programs, memory; no training
    decompvae sweep --shard I/N [...]                               # members I, I+N, … in OUTPUT_DIR/shard-I-of-N
    decompvae evaluate RUN_DIR [--member I] [--quick]               # metrics of a trained run, as JSON
    decompvae evaluate RUN_DIR --step S --curve                     # recompute the curves.jsonl rows of step S
    decompvae report RUN_DIR|RESULTS_DIR [--embed]                  # (re)write its report.html
    decompvae reproduce NAME --profile cpu|paper|tiny               # the paper's experiments
    decompvae reproduce NAME --profile paper --print-config         # their resolved settings (JSON), no training
    decompvae reproduce NAME --profile cpu --print-config --estimate  # … and each run's training time here
    decompvae reproduce NAME --profile cpu --shard I/N              # one shard of it (rows in RESULTS/rows/)
    decompvae sweep ... --coordinator HOST:PORT --num-processes N --process-id I   # one of N processes

Runs resume from their newest checkpoint unless ``--fresh`` is given. SIGTERM
(a scheduler's preemption) or Ctrl-C during training writes a checkpoint of
every member at the end of the chunk in progress and exits with status 75
(:data:`decompvae.interrupts.EXIT_INTERRUPTED`); the same command resumes. One
process at a time may write to a run directory. With ``--num-processes N``
the same command runs on every host (each with its own ``--process-id``);
process 0 writes the outputs.
"""

from __future__ import annotations

import argparse
import json
import sys

from decompvae import __version__, outputs, report, runner
from decompvae.build import estimate_notes, shard_members
from decompvae.checkpoint import CheckpointError
from decompvae.config import load_config
from decompvae.distributed import WriterFailed
from decompvae.interrupts import EXIT_INTERRUPTED, RunInterrupted
from decompvae.evaluate import main as evaluate_main
from decompvae.reproduce import main as reproduce_main
from decompvae.rundir import OutputWriteError, RunLocked

__all__ = ["DEFAULT_SWEEP", "main"]

#: The main job, sized for a first result in about a minute on 2 CPU cores:
#: β ∈ {1, 4} × Student-t ν ∈ {3, 9999 (≈ Gaussian)} on procedurally rendered
#: dSprites, a dense encoder/decoder (hidden 256), 600 steps, one compiled
#: program for the 4 members. The published convnet for longer is one
#: ``--config configs/default_dsprites_conv.toml`` away.
DEFAULT_SWEEP = {
    "data": {"name": "dsprites", "eval_points": 512},
    "model": {"network": "mlp", "hidden": [256], "latent_dim": 10, "prior": "student_t",
              "prior_params": {"df": 9999.0}},
    "train": {"steps": 600, "batch_size": 64, "log_every": 100, "checkpoint_every": 200},
    "sweep": {"beta": [1.0, 4.0], "prior": {"df": [3.0, 9999.0]}},
    "output_dir": "runs/default",
}


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: the built-in default sweep)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=100 --set sweep.beta=[1,2]")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming from a checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--shard", metavar="I/N",
                   help="train only members I, I+N, I+2N, … of the grid, in OUTPUT_DIR/shard-I-of-N (an array job)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the members, chunking, compiled programs and a memory estimate; train nothing")
    dist = p.add_argument_group("several processes (JAX's distributed runtime; the config's [distributed] section)")
    dist.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, the same on every process")
    dist.add_argument("--num-processes", type=int, metavar="N", help="processes in all (default 1)")
    dist.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0 … N-1; 0 writes")


def _cmd_run(args, single: bool) -> int:
    overrides = list(args.overrides)
    for key in ("coordinator", "num_processes", "process_id"):
        if getattr(args, key) is not None:
            overrides.append(f"distributed.{key}={json.dumps(getattr(args, key))}")
    config = load_config(args.config, overrides, base=None if args.config else DEFAULT_SWEEP)
    if single:
        if args.shard:
            raise ValueError("--shard splits a sweep's grid; `decompvae train` trains one model")
        config = runner.replace(config, sweep={"beta": (), "alpha": (), "learning_rate": (), "seed": (), "prior": {},
                                                "regulariser_params": {}})
    if args.shard:
        config = runner.shard_config(config, args.shard)
    if args.dry_run:
        print(runner.format_plan(runner.plan(config), config))
        return 0
    grid = runner.build_grid(config).members()
    indices, _ = shard_members(grid, config.sweep.shard)
    of_grid = f" (shard {'/'.join(map(str, config.sweep.shard))} of a grid of {len(grid)})" if config.sweep.shard else ""
    print(f"decompvae: {len(indices)} member(s){of_grid} → {config.output_dir}", flush=True)
    try:
        result = runner.run(config, resume=not args.fresh, progress=not args.no_progress)
    except runner.TrainingDiverged as err:
        print(f"decompvae: training diverged: {err}", file=sys.stderr)
        return 3
    if config.distributed.process_id == 0:  # the writer
        print(outputs.format_table(result.summary))
        notes = estimate_notes(result.setup.config, result.setup.data)
        if notes:
            print(outputs.format_notes(notes))
        print(f"outputs in {result.output_dir} (report: {result.output_dir / 'report.html'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="decompvae", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"decompvae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_sweep = sub.add_parser("sweep", help="train a grid of models in one compiled program")
    _add_run_args(p_sweep)
    p_train = sub.add_parser("train", help="train one model (the config's [train] values)")
    _add_run_args(p_train)
    p_eval = sub.add_parser("evaluate", help="compute the metrics of a trained run")
    p_eval.add_argument("run_dir", help="a run's output directory (holds config.json and checkpoints/)")
    p_eval.add_argument("--member", type=int, action="append", help="member index (repeatable; default all)")
    p_eval.add_argument("--output", help="JSON file to write (default RUN_DIR/metrics.json)")
    p_eval.add_argument("--quick", action="store_true", help="small sample sizes (smoke tests)")
    p_eval.add_argument("--mig-sampled", type=int, metavar="S",
                        help="also Chen et al.'s MIG from S samples per entropy over every image of the grid "
                             "(they used 10,000: a GPU job; 1,000 takes minutes on a CPU)")
    p_eval.add_argument("--step", type=int, help="the checkpoint of this step (default the newest; the last two are kept)")
    p_eval.add_argument("--curve", action="store_true",
                        help="only the training curves' measures and sample sizes (train.eval_points): the row "
                             "curves.jsonl holds for that step; written to RUN_DIR/metrics-step-S-curve.json")
    p_rep = sub.add_parser("reproduce", help="run one of the paper's experiments")
    p_rep.add_argument(
        "name", help="experiment name; `list` lists them, `readme` rebuilds experiments/README.md from their summaries"
    )
    p_rep.add_argument("--profile", default="cpu", help="tiny | cpu | paper")
    p_rep.add_argument("--output", help="output directory (default experiments/results/<name>-<profile>)")
    p_rep.add_argument("--print-config", action="store_true",
                       help="print the resolved run configs, evaluation sizes and verdict rule as JSON; no training")
    p_rep.add_argument("--estimate", action="store_true",
                       help="with --print-config: also each run's members, memory and training time on this machine "
                            "(compiles and times one chunk per run)")
    p_rep.add_argument("--shard", metavar="I/N",
                       help="train and evaluate members I, I+N, … of each run (an array job); the summary is written "
                            "from every shard's rows present, with a verdict once all are")
    p_report = sub.add_parser("report", help="write report.html for a run directory or a reproduce result")
    p_report.add_argument("path", help="a run's output directory, or a reproduce results directory")
    p_report.add_argument("--embed", action="store_true", help="put the images inside the HTML (one file)")
    args = parser.parse_args(argv)
    try:
        if args.command in ("sweep", "train"):
            return _cmd_run(args, single=args.command == "train")
        if args.command == "evaluate":
            return evaluate_main(args)
        if args.command == "report":
            print(f"written {report.write_page(args.path, embed=args.embed)}")
            return 0
        return reproduce_main(args)
    except RunInterrupted as err:  # SIGTERM or Ctrl-C during training: checkpointed at a chunk boundary
        print(f"decompvae: {err}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, FileNotFoundError) as err:
        print(f"decompvae: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a locked or damaged run directory, a failed write: stop with the reason
        if not isinstance(err, (RunLocked, CheckpointError, OutputWriteError, WriterFailed)):
            raise
        print(f"decompvae: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
