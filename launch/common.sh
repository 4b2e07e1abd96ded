#!/usr/bin/env bash
# Helpers of the launch scripts (launch/*.sh) and of slurm/common.sh; sourced, not run.

# add_default OPTION VALUE ARGS...: appends OPTION VALUE to the caller's array
# run_defaults (the sparser_run options a script adds after the user's own) unless ARGS
# (the user's sparser_run options) give OPTION already, as "OPTION V" or "OPTION=V":
# sparser_run accepts an option once, and the user's choice wins.
add_default() {
  local option=$1 value=$2 arg
  shift 2
  for arg in "$@"; do
    case "$arg" in "$option" | "$option"=*) return 0 ;; esac
  done
  run_defaults+=("$option" "$value")
}

# require_count SCRIPT OPTION VALUE: VALUE must be a positive whole number.
require_count() {
  [[ "$3" =~ ^[1-9][0-9]*$ ]] || { echo "$1: $2 needs a positive number, not '$3'" >&2; exit 2; }
}

# cores_here: the CPU cores of this machine (nproc alone would report OMP_NUM_THREADS).
cores_here() { env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc; }

# gpus_here: the GPUs a rank started here can use (0 without nvidia-smi): the entries of
# CUDA_VISIBLE_DEVICES when it is set (a Slurm allocation, a user's choice), else the GPU
# lines of nvidia-smi -L, which lists every GPU of the node and their MIG instances beneath.
gpus_here() {
  if ! command -v nvidia-smi >/dev/null; then
    echo 0
  elif [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then
    local visible
    IFS=, read -ra visible <<<"$CUDA_VISIBLE_DEVICES"
    echo "${#visible[@]}"
  else
    { nvidia-smi -L 2>/dev/null || true; } | grep -c '^GPU ' || true
  fi
}

# add_progress_default ARGS...: --progress bar when this script's stdout is a terminal,
# else --progress lines (log files, Slurm output), unless ARGS choose. Under mpirun every
# rank's stdout is a pty, so sparser_run cannot tell by itself; the launching shell can.
add_progress_default() {
  local style=lines
  if [ -t 1 ]; then style=bar; fi
  add_default --progress "$style" "$@"
}
