#!/usr/bin/env bash
# Data-parallel training on one node: one MPI rank per GPU (or per CPU socket share).
set -euo pipefail

usage() {
  cat <<USAGE
Usage: launch/single_node.sh [-n RANKS] [-t THREADS] [--] CONFIG [sparser_run options]

Starts RANKS ranks of sparser_run on this machine with mpirun (default: one per
visible GPU, else 2). Each rank gets THREADS intra-op CPU threads (default: cores /
RANKS) and is bound to its share of the cores; NCCL is set up for one node.

  -n RANKS     number of ranks
  -t THREADS   CPU threads per rank
  -h, --help   this help

Example: launch/single_node.sh -n 8 experiments/coco.toml --set train.lr=3e-4
Environment: SPARSER_BIN (default build/bin/sparser_run), MPIRUN (default mpirun).
USAGE
}

ranks="" threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ranks=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "single_node.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SPARSER_BIN:-$here/build/bin/sparser_run}
if [ -z "$ranks" ]; then
  gpus=$(command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | wc -l || echo 0)
  ranks=$(( gpus > 0 ? gpus : 2 ))
fi
# nproc alone would report OMP_NUM_THREADS, not the cores.
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
threads=${threads:-$(( cores / ranks > 0 ? cores / ranks : 1 ))}

mpi_args=(-np "$ranks" -x OMP_NUM_THREADS="$threads" -x NCCL_DEBUG="${NCCL_DEBUG:-WARN}")
# Bind each rank to its share of the cores when there are enough of them.
if [ $(( ranks * threads )) -le "$cores" ]; then
  mpi_args+=(--map-by "slot:PE=$threads" --bind-to core)
else
  mpi_args+=(--oversubscribe --bind-to none)
fi
[ "$(id -u)" -eq 0 ] && mpi_args+=(--allow-run-as-root)
exec "${MPIRUN:-mpirun}" "${mpi_args[@]}" "$bin" "$@" --threads "$threads"
