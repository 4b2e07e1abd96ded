#!/usr/bin/env bash
# bash -n of every launch and Slurm script (and shellcheck, where installed).
source "$(dirname "$0")/common.bash"

scripts=(launch/*.sh slurm/*.sh slurm/*.sbatch)
for s in "${scripts[@]}"; do
  check "bash -n $s" bash -n "$s"
  check "$s is executable" test -x "$s"
done
check "the launch and slurm scripts are there" test "${#scripts[@]}" -ge 5
if command -v shellcheck >/dev/null; then
  for s in launch/multi_node.sh slurm/*.sh slurm/*.sbatch; do
    check "shellcheck $s" shellcheck -s bash -S warning "$s"
  done
else
  echo "skip shellcheck (not installed)"
fi
summary
