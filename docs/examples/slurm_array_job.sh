#!/bin/bash
# A grid of decompvae models as a SLURM array job: task I of 8 trains members I, I+8, I+16, … of the
# grid in OUTPUT_DIR/shard-I-of-8 (decompvae sweep --shard I/8). Submit with `sbatch slurm_array_job.sh`.
#
# Preemption and time limits: SLURM sends SIGTERM, decompvae finishes the chunk in progress
# (train.log_every steps), writes a checkpoint of every member and exits with status 75; the task
# then requeues itself and the rerun resumes from that checkpoint, bit for bit.
#
# One of the paper's experiments in the same way: replace the srun line's command with
#   decompvae reproduce rotation --profile cpu --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}"
# Each task writes its networks' rows to experiments/results/rotation-cpu/rows/ and rewrites the
# summary from every task's rows present; the last task to finish writes the verdict.
#
#SBATCH --job-name=decompvae-grid
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --output=decompvae-grid-%A_%a.out

set -u
CONFIG=${CONFIG:-configs/default_dsprites_conv.toml}
SHARDS=8  # = the number of array tasks above

srun decompvae sweep --config "$CONFIG" --no-progress --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}"
status=$?
if [ "$status" -eq 75 ]; then  # stopped by a signal after a checkpoint: run again to resume
  scontrol requeue "${SLURM_JOB_ID}"
fi
exit "$status"
