#!/usr/bin/env bash
# Data-parallel training on one node: one MPI rank per GPU (or per CPU socket share).
set -euo pipefail

usage() {
  cat <<USAGE
Usage: launch/single_node.sh [-n RANKS] [-t THREADS] [--] CONFIG [sparser_run options]

Starts RANKS ranks of sparser_run on this machine with mpirun (default: one per
visible GPU, else 2: the entries of CUDA_VISIBLE_DEVICES when it is set, else the GPUs
nvidia-smi -L lists). Each rank gets THREADS intra-op CPU threads (default: cores /
RANKS) and is bound to its share of the cores; NCCL is set up for one node.
sparser_run gets --threads THREADS and --progress bar (this script's output is a
terminal) or --progress lines (a file or pipe), unless its options give them.

  -n RANKS     number of ranks
  -t THREADS   CPU threads per rank
  -h, --help   this help

Example: launch/single_node.sh -n 8 experiments/coco.toml --set train.lr=3e-4
Environment: SPARSER_BIN (default build/bin/sparser_run), MPIRUN (default mpirun).
USAGE
}

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=launch/common.sh
source "$here/launch/common.sh"

ranks="" threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || { echo "single_node.sh: -n needs a number" >&2; exit 2; }; ranks=$2; shift 2 ;;
    -t) [ $# -ge 2 ] || { echo "single_node.sh: -t needs a number" >&2; exit 2; }; threads=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "single_node.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ -z "$ranks" ] || require_count single_node.sh -n "$ranks"
[ -z "$threads" ] || require_count single_node.sh -t "$threads"
[ $# -ge 1 ] || { usage >&2; exit 2; }

bin=${SPARSER_BIN:-$here/build/bin/sparser_run}
if [ -z "$ranks" ]; then
  gpus=$(gpus_here)
  ranks=$(( gpus > 0 ? gpus : 2 ))
fi
cores=$(cores_here)
threads=${threads:-$(( cores / ranks > 0 ? cores / ranks : 1 ))}

mpi_args=(-np "$ranks" -x OMP_NUM_THREADS="$threads" -x NCCL_DEBUG="${NCCL_DEBUG:-WARN}")
# Bind each rank to its share of the cores when there are enough of them.
if [ $(( ranks * threads )) -le "$cores" ]; then
  mpi_args+=(--map-by "slot:PE=$threads" --bind-to core)
else
  mpi_args+=(--oversubscribe --bind-to none)
fi
[ "$(id -u)" -eq 0 ] && mpi_args+=(--allow-run-as-root)
# -t (or its default) unless the sparser_run options give --threads themselves.
run_defaults=()
add_default --threads "$threads" "$@"
add_progress_default "$@"
exec "${MPIRUN:-mpirun}" "${mpi_args[@]}" "$bin" "$@" "${run_defaults[@]}"
