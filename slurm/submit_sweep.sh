#!/usr/bin/env bash
# Submits a config's sweep as a Slurm array job: one array task per run of its grid.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: slurm/submit_sweep.sh CONFIG [--throttle K] [--set KEY=VALUE]... [--dry-run] [-- sbatch options]

Lists the runs of CONFIG's grid (sparser_run CONFIG --list, N runs) and submits
  sbatch --array=0-(N-1)[%K] [sbatch options] slurm/sweep.sbatch --run-ids "ID..." CONFIG
so that array task i trains the run listed i-th now, found by its id when the task
starts (sweep.sbatch --run-ids): editing CONFIG while the array waits cannot make a
task train another run. Prints the array job id on stdout (the summary goes
to stderr): jid=\$(slurm/submit_sweep.sh CONFIG).
Submit from the repository root (the config's paths are relative to it, and the
tasks find slurm/common.sh there).

  --throttle K     at most K tasks of the array run at a time (sbatch --array=...%K)
  --set KEY=VALUE  a sparser_run override, given to --list and to every task (repeatable)
  --dry-run        print the sbatch command instead of submitting it; where sbatch
                   exists, also check it with sbatch --test-only (submits nothing)
  -h, --help       this help
  -- OPTIONS       the rest goes to sbatch, e.g. -- --time=4:00:00 --partition=gpu

Example: slurm/submit_sweep.sh experiments/coco.toml --throttle 4 -- --time=12:00:00
Environment: SPARSER_BIN (default build/bin/sparser_run; exported to the tasks),
SBATCH (default sbatch).
USAGE
}

config="" throttle="" dry_run=0
sets=() sbatch_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --throttle) [ $# -ge 2 ] || { echo "submit_sweep.sh: --throttle needs a number" >&2; exit 2; }; throttle=$2; shift 2 ;;
    --throttle=*) throttle=${1#*=}; shift ;;
    --set) [ $# -ge 2 ] || { echo "submit_sweep.sh: --set needs KEY=VALUE" >&2; exit 2; }; sets+=(--set "$2"); shift 2 ;;
    --set=*) sets+=(--set "${1#*=}"); shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; sbatch_extra=("$@"); break ;;
    -*) echo "submit_sweep.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$config" ] || { echo "submit_sweep.sh: more than one CONFIG ('$config', '$1')" >&2; exit 2; }
       config=$1; shift ;;
  esac
done
[ -n "$config" ] || { usage >&2; exit 2; }
[ -f "$config" ] || { echo "submit_sweep.sh: config '$config' not found" >&2; exit 2; }
[ -z "$throttle" ] || [[ "$throttle" =~ ^[1-9][0-9]*$ ]] || {
  echo "submit_sweep.sh: --throttle '$throttle' is not a positive number" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SPARSER_BIN:-$here/build/bin/sparser_run}
[ -x "$bin" ] || { echo "submit_sweep.sh: $bin is not an executable (build it, or set SPARSER_BIN)" >&2; exit 2; }
[ -f "$PWD/slurm/common.sh" ] || {
  echo "submit_sweep.sh: submit from the repository root (cd $here): the tasks look for slurm/common.sh in" \
       "the directory sbatch is called in" >&2; exit 2; }
listed=$("$bin" "$config" "${sets[@]}" --list) || {
  echo "submit_sweep.sh: '$bin $config ${sets[*]} --list' failed" >&2; exit 2; }
# "INDEX ID" lines; ids hold no whitespace (sparser_run makes them directory names).
mapfile -t ids < <(awk '{ print $2 }' <<< "$listed")
count=${#ids[@]}
[ "$count" -gt 0 ] || { echo "submit_sweep.sh: $config has no runs" >&2; exit 2; }

array="0-$(( count - 1 ))${throttle:+%$throttle}"
# The tasks use this same binary (sbatch passes the environment on by default) and train
# these runs (an argument, which no sbatch --export setting drops).
export SPARSER_BIN=$bin
sbatch=${SBATCH:-sbatch}
args=(--array="$array" "${sbatch_extra[@]}" "$here/slurm/sweep.sbatch" --run-ids "${ids[*]}" "$config" "${sets[@]}")
echo "submit_sweep.sh: $config has $count run(s): array $array" >&2

if [ "$dry_run" = 1 ]; then
  printf '%q ' "$sbatch" "${args[@]}"; echo
  # --test-only checks the request and estimates a start time; it submits nothing.
  if command -v "$sbatch" >/dev/null; then "$sbatch" --test-only "${args[@]}"; fi
  exit 0
fi
out=$("$sbatch" --parsable "${args[@]}")
job=${out%%;*}  # --parsable prints "id" or "id;cluster"
[[ "$job" =~ ^[0-9]+$ ]] || { echo "submit_sweep.sh: unexpected answer from sbatch: '$out'" >&2; exit 1; }
echo "submit_sweep.sh: submitted array job $job (tasks ${job}_0..${job}_$(( count - 1 ))); squeue -j $job" >&2
echo "$job"
