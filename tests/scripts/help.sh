#!/usr/bin/env bash
# --help (and -h) of every script exits 0 and prints its usage, running nothing.
source "$(dirname "$0")/common.bash"

fake launcher <<<'exit 99'
export SRUN=$TMP/bin/launcher SBATCH=$TMP/bin/launcher SCONTROL=$TMP/bin/launcher MPIRUN=$TMP/bin/launcher
for s in launch/single_node.sh launch/multi_node.sh slurm/train.sbatch slurm/sweep.sbatch slurm/submit_sweep.sh; do
  for flag in --help -h; do
    out=$(bash "$s" "$flag" 2>&1); rc=$?
    check_eq "$s $flag exits 0" 0 "$rc"
    check "$s $flag prints a usage" contains "$out" "Usage:"
  done
done
check "--help launches nothing" test ! -e "$TMP/launcher.calls"

# Without a CONFIG the scripts print their usage and fail.
for s in launch/single_node.sh slurm/train.sbatch slurm/sweep.sbatch slurm/submit_sweep.sh; do
  out=$(bash "$s" 2>&1); rc=$?
  check "$s without CONFIG fails" test "$rc" -ne 0
  check "$s without CONFIG prints a usage" contains "$out" "Usage:"
done
summary
