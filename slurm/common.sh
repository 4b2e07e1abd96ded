#!/usr/bin/env bash
# What slurm/train.sbatch and slurm/sweep.sbatch share; sourced, not run. Slurm runs a
# copy of the batch script from its spool directory, so they find this file through the
# submit directory (the repository root).

# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../launch/common.sh"

# check_inputs SCRIPT CONFIG: the config exists (paths are relative to the submit
# directory) and sets bin, the sparser_run to start (SPARSER_BIN, else the submit
# directory's build), which must be executable.
check_inputs() {
  [ -f "$2" ] || { echo "$1: config '$2' not found (from $PWD)" >&2; exit 2; }
  bin=${SPARSER_BIN:-${SLURM_SUBMIT_DIR:-$PWD}/build/bin/sparser_run}
  [ -x "$bin" ] || { echo "$1: $bin is not an executable (build it, or set SPARSER_BIN)" >&2; exit 2; }
}

# run_and_requeue SCRIPT WHAT CONFIG [sparser_run options...]: runs $bin under srun, one
# rank per task, passes USR1/TERM to the ranks (they checkpoint and exit 75), and then
# requeues the job (an array task: that task only). Exits with the script's status.
run_and_requeue() {
  local script=$1 what=$2
  shift 2
  # Threads and binding: each rank gets its --cpus-per-task cores (srun no longer inherits
  # --cpus-per-task from sbatch since Slurm 22.05, so it is passed explicitly).
  local srun_args=(--kill-on-bad-exit=1) run_defaults=()
  if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then
    srun_args+=(--cpus-per-task="$SLURM_CPUS_PER_TASK" --cpu-bind=cores)
    export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
    add_default --threads "$SLURM_CPUS_PER_TASK" "$@"
  fi
  # A batch job writes to a file: progress as plain periodic lines.
  add_default --progress lines "$@"
  local run_args=("$@" "${run_defaults[@]}")
  export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
  # shellcheck disable=SC2206  # SRUN_ARGS is split on purpose
  [ -n "${SRUN_ARGS:-}" ] && srun_args+=(${SRUN_ARGS})

  # srun runs in the background: bash runs a trap only once the foreground command ends,
  # so a foreground srun would never see the signal in time.
  child=""
  forward_signal() {
    echo "$script: got SIG$1, passing it to the ranks (checkpoint, then exit 75)" >&2
    [ -z "$child" ] || kill -s "$1" "$child" 2>/dev/null || true
  }
  trap 'forward_signal USR1' USR1
  trap 'forward_signal TERM' TERM
  echo "$script: $what on ${SLURM_JOB_NODELIST:-$(hostname)}: $bin ${run_args[*]}"
  "${SRUN:-srun}" "${srun_args[@]}" "$bin" "${run_args[@]}" &
  child=$!
  # wait returns early (status > 128) whenever a trap ran; wait again until srun is gone.
  while kill -0 "$child" 2>/dev/null; do wait "$child" || true; done
  local rc=0
  wait "$child" || rc=$?

  case "$rc" in
    0) echo "$script: finished"; exit 0 ;;
    75) requeue "$script" ;;
    *) echo "$script: sparser_run failed with status $rc" >&2; exit "$rc" ;;
  esac
}

# requeue SCRIPT: after a checkpoint (exit 75), puts the job — an array task: only that
# task — back in the queue and exits 0; exits 75 where it must not or cannot. An array
# task's own SLURM_JOB_ID names it; the SLURM_ARRAY_* variables would not be safe: a job
# submitted from inside an array task inherits the parent's (sbatch exports the environment).
requeue() {
  local script=$1 job=${SLURM_JOB_ID:-}
  if [ -z "$job" ]; then
    echo "$script: interrupted (checkpoint saved); not in a Slurm job, nothing to requeue" >&2; exit 75
  fi
  if [ "${SLURM_RESTART_COUNT:-0}" -ge "${SPARSER_MAX_REQUEUES:-50}" ]; then
    echo "$script: interrupted (checkpoint saved) after ${SLURM_RESTART_COUNT} restarts; not requeueing again" >&2
    exit 75
  fi
  # scancel also sends SIGTERM: a job the user cancelled stays cancelled.
  local state
  state=$("${SCONTROL:-scontrol}" show job -o "$job" 2>/dev/null || true)
  case "$state" in
    *JobState=CANCELLED*) echo "$script: interrupted (checkpoint saved); the job was cancelled, not requeueing" >&2; exit 75 ;;
  esac
  echo "$script: interrupted, checkpoint saved; requeueing $job"
  if ! "${SCONTROL:-scontrol}" requeue "$job"; then
    echo "$script: scontrol requeue $job failed; resubmit to resume from the checkpoint" >&2; exit 75
  fi
  exit 0
}
