#!/usr/bin/env bash
# Data-parallel training on several nodes: mpirun over a hostfile, one rank per GPU.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: launch/multi_node.sh -f HOSTFILE [-n RANKS_PER_NODE] [-t THREADS] [--] CONFIG [sparser_run options]

Starts RANKS_PER_NODE ranks of sparser_run on every host of HOSTFILE with mpirun
(Open MPI hostfile syntax: one "host slots=N" a line). RANKS_PER_NODE defaults to the
visible GPUs of this node, counted as by single_node.sh (else 1); each rank gets THREADS
intra-op CPU threads (default: cores of this node / RANKS_PER_NODE; the nodes are
assumed to look like this one) and is bound to its share of the cores. The repository
(binary, config, data) must be on a file system every node sees, at the same path.

  -f HOSTFILE        the hosts to run on (required)
  -n RANKS_PER_NODE  ranks on each host
  -t THREADS         CPU threads per rank
  -h, --help         this help

sparser_run gets --threads THREADS and --progress bar (this script's output is a
terminal) or --progress lines (a file or pipe), unless its options give them.

Passed to every rank: OMP_NUM_THREADS, LD_LIBRARY_PATH, NCCL_DEBUG (default WARN) and
every NCCL_* variable set here, e.g. NCCL_SOCKET_IFNAME=eth0 (interface for NCCL's
bootstrap and socket transport) or NCCL_IB_DISABLE=1 (no InfiniBand).

Example: launch/multi_node.sh -f hosts.txt -n 8 experiments/coco.toml --index 3
Environment: SPARSER_BIN (default build/bin/sparser_run), MPIRUN (default mpirun),
MPIRUN_ARGS (extra mpirun options, split on spaces, e.g. "--mca btl_tcp_if_include eth0").
USAGE
}

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=launch/common.sh
source "$here/launch/common.sh"

hostfile="" per_node="" threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f) [ $# -ge 2 ] || { echo "multi_node.sh: -f needs a HOSTFILE" >&2; exit 2; }; hostfile=$2; shift 2 ;;
    -n) [ $# -ge 2 ] || { echo "multi_node.sh: -n needs a number" >&2; exit 2; }; per_node=$2; shift 2 ;;
    -t) [ $# -ge 2 ] || { echo "multi_node.sh: -t needs a number" >&2; exit 2; }; threads=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "multi_node.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ -n "$hostfile" ] || { echo "multi_node.sh: no hostfile: pass -f HOSTFILE (see --help)" >&2; exit 2; }
if [ ! -f "$hostfile" ] || [ ! -r "$hostfile" ]; then echo "multi_node.sh: hostfile '$hostfile' not found or not readable" >&2; exit 2; fi
grep -qv '^[[:space:]]*\(#.*\)\?$' "$hostfile" || { echo "multi_node.sh: hostfile '$hostfile' lists no hosts" >&2; exit 2; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
[ -z "$per_node" ] || require_count multi_node.sh -n "$per_node"
[ -z "$threads" ] || require_count multi_node.sh -t "$threads"

bin=${SPARSER_BIN:-$here/build/bin/sparser_run}
if [ -z "$per_node" ]; then
  gpus=$(gpus_here)
  per_node=$(( gpus > 0 ? gpus : 1 ))
fi
cores=$(cores_here)
threads=${threads:-$(( cores / per_node > 0 ? cores / per_node : 1 ))}

mpi_args=(--hostfile "$hostfile" -x OMP_NUM_THREADS="$threads" -x NCCL_DEBUG="${NCCL_DEBUG:-WARN}")
[ -n "${LD_LIBRARY_PATH:-}" ] && mpi_args+=(-x LD_LIBRARY_PATH)
# Every NCCL_* set here (NCCL_SOCKET_IFNAME, NCCL_IB_DISABLE, NCCL_IB_HCA, ...) reaches the ranks.
for name in $(compgen -e NCCL_ || true); do
  [ "$name" = NCCL_DEBUG ] || mpi_args+=(-x "$name")
done
# RANKS_PER_NODE ranks on every host, each bound to its share of the cores when there are
# enough of them. The count goes into --map-by: next to "-npernode N", a "--map-by slot:PE=T"
# wins and mpirun fills every slot of the hostfile. ppr fixes the count, so a host's slots
# must not cap it: without --oversubscribe, "host slots=1" and -n 2 is refused.
if [ $(( per_node * threads )) -le "$cores" ]; then
  mpi_args+=(--map-by "ppr:$per_node:node:PE=$threads" --bind-to core)
else
  mpi_args+=(--map-by "ppr:$per_node:node" --bind-to none)
fi
mpi_args+=(--oversubscribe)
[ "$(id -u)" -eq 0 ] && mpi_args+=(--allow-run-as-root)
# shellcheck disable=SC2206  # MPIRUN_ARGS is split on purpose
[ -n "${MPIRUN_ARGS:-}" ] && mpi_args+=(${MPIRUN_ARGS})
# -t (or its default) unless the sparser_run options give --threads themselves.
run_defaults=()
add_default --threads "$threads" "$@"
add_progress_default "$@"
exec "${MPIRUN:-mpirun}" "${mpi_args[@]}" "$bin" "$@" "${run_defaults[@]}"
