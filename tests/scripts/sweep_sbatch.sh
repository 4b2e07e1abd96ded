#!/usr/bin/env bash
# slurm/sweep.sbatch without Slurm: SLURM_ARRAY_TASK_ID becomes --index; exit 75 of
# srun (the run checkpointed) requeues the array task and ends the script with 0; other
# statuses pass through; USR1 sent to the batch shell reaches the running srun.
# srun and scontrol are fakes that record their arguments.
source "$(dirname "$0")/common.bash"

printf '#!/bin/sh\nexit 0\n' > "$TMP/sparser_run" && chmod +x "$TMP/sparser_run"
fake srun <<'BODY'
echo "OMP_NUM_THREADS=${OMP_NUM_THREADS:-}" > "${0%/bin/*}/srun.env"
exit "${FAKE_SRUN_RC:-0}"
BODY
fake_scontrol 0
export SRUN=$TMP/bin/srun SCONTROL=$TMP/bin/scontrol SPARSER_BIN=$TMP/sparser_run
export SLURM_JOB_ID=1007 SLURM_ARRAY_JOB_ID=1000 SLURM_ARRAY_TASK_ID=4 SLURM_CPUS_PER_TASK=6
unset SLURM_RESTART_COUNT SRUN_ARGS
args=$TMP/srun.args

# Task 4 → run 4.
bash slurm/sweep.sbatch experiments/demo.toml --set train.epochs=2 >"$TMP/out" 2>&1; rc=$?
check_eq "a finished run exits 0" 0 "$rc"
check "srun runs sparser_run on the config" has_seq "$args" "$TMP/sparser_run" experiments/demo.toml
check "SLURM_ARRAY_TASK_ID becomes --index" has_seq "$args" --index 4
check "extra options passed on" has_seq "$args" --set train.epochs=2
check "threads from --cpus-per-task" has_seq "$args" --threads 6
check "progress as plain lines (a log file)" has_seq "$args" --progress lines
check "srun gets --cpus-per-task" has_line "$args" --cpus-per-task=6
check "srun binds to cores" has_line "$args" --cpu-bind=cores
check "srun ends the step when a rank fails" has_line "$args" --kill-on-bad-exit=1
check "OMP_NUM_THREADS set" grep -qxF OMP_NUM_THREADS=6 "$TMP/srun.env"
check "no requeue after success" test -z "$(requeues)"
SLURM_ARRAY_TASK_ID=0 bash slurm/sweep.sbatch experiments/demo.toml >/dev/null 2>&1
check "task 0 → --index 0" has_seq "$args" --index 0
bash slurm/sweep.sbatch experiments/demo.toml --threads 2 >/dev/null 2>&1
check "--threads given wins" test "$(grep -cxF -- --threads "$args")" = 1
check "... with its value" has_seq "$args" --threads 2
bash slurm/sweep.sbatch experiments/demo.toml --progress=bar >/dev/null 2>&1
check "--progress given wins" test "$(grep -c -- --progress "$args")" = 1
check "... as given" has_line "$args" --progress=bar
SRUN_ARGS="--mpi=pmix --label" bash slurm/sweep.sbatch experiments/demo.toml >/dev/null 2>&1
check "SRUN_ARGS passed to srun" has_line "$args" --mpi=pmix

# --run-ids (submit_sweep.sh): task 1 trains the run listed second at submission, by its id,
# though the config gained a run before it while the array waited; a run the grid lost fails.
cat > "$TMP/sparser_run_listing" <<'STUB'
#!/bin/sh
for a in "$@"; do [ "$a" != --list ] || { printf '0 a-seed=1\n1 new-seed=1\n2 b-seed=1\n3 c-seed=1\n'; exit 0; }; done
exit 0
STUB
chmod +x "$TMP/sparser_run_listing"
SPARSER_BIN=$TMP/sparser_run_listing SLURM_ARRAY_TASK_ID=1 \
  bash slurm/sweep.sbatch --run-ids "a-seed=1 b-seed=1 c-seed=1" experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "the submitted run found by its id: exits 0" 0 "$rc"
check "... and trains its index now" has_seq "$args" --index 2
out=$(SPARSER_BIN=$TMP/sparser_run_listing SLURM_ARRAY_TASK_ID=1 \
  bash slurm/sweep.sbatch --run-ids "a-seed=1 gone-seed=1" experiments/demo.toml 2>&1); rc=$?
check_eq "a submitted run no longer in the grid: exits 2" 2 "$rc"
check "... naming it" contains "$out" "run gone-seed=1 (task 1 when submitted) is no longer in the grid"

# Exit 75: the run saved a checkpoint; the array task requeues itself.
FAKE_SRUN_RC=75 bash slurm/sweep.sbatch experiments/demo.toml >"$TMP/out" 2>&1; rc=$?
check_eq "interrupted run: script exits 0" 0 "$rc"
check_eq "requeues the array task (its own SLURM_JOB_ID)" "requeue 1007" "$(requeues)"
rm -f "$TMP/scontrol.calls"
FAKE_SRUN_RC=75 SLURM_RESTART_COUNT=3 SPARSER_MAX_REQUEUES=3 bash slurm/sweep.sbatch experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "past SPARSER_MAX_REQUEUES: exits 75" 75 "$rc"
check "... without requeueing" test -z "$(requeues)"
FAKE_SRUN_RC=75 FAKE_JOB_STATE=CANCELLED bash slurm/sweep.sbatch experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "cancelled job (scancel sends TERM too): exits 75" 75 "$rc"
check "... without requeueing" test -z "$(requeues)"
check "... after asking for the task's state" grep -qxF "show job -o 1007" "$TMP/scontrol.calls"
fake_scontrol 1
FAKE_SRUN_RC=75 bash slurm/sweep.sbatch experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "failed requeue: exits 75" 75 "$rc"
fake_scontrol 0

# Any other status passes through, without a requeue.
for code in 1 2 137; do
  FAKE_SRUN_RC=$code bash slurm/sweep.sbatch experiments/demo.toml >/dev/null 2>&1; rc=$?
  check_eq "srun status $code propagates" "$code" "$rc"
done
check "no requeue after a failure" test -z "$(requeues)"

# Not an array task, or a missing config/binary: clear failures before srun.
rm -f "$TMP/srun.calls"
out=$(unset SLURM_ARRAY_TASK_ID; bash slurm/sweep.sbatch experiments/demo.toml 2>&1); rc=$?
check "no SLURM_ARRAY_TASK_ID fails" test "$rc" -ne 0
check "... saying so" contains "$out" SLURM_ARRAY_TASK_ID
out=$(bash slurm/sweep.sbatch experiments/no-such.toml 2>&1)
check "missing config fails clearly" contains "$out" "not found"
out=$(SPARSER_BIN=$TMP/none bash slurm/sweep.sbatch experiments/demo.toml 2>&1)
check "missing binary fails clearly" contains "$out" "not an executable"
check "srun not started then" test ! -e "$TMP/srun.calls"

# USR1 to the batch shell (sbatch --signal=B:USR1@120) reaches the running srun, whose
# ranks then checkpoint and exit 75 → requeue, exit 0. The fake srun exits 75 on USR1.
fake srun <<'BODY'
dir=${0%/bin/*}
trap 'echo USR1 > "$dir/srun.signal"; exit 75' USR1
trap 'echo TERM > "$dir/srun.signal"; exit 75' TERM
touch "$dir/srun.ready"
for _ in $(seq 300); do sleep 0.1; done
exit 3
BODY
for sig in USR1 TERM; do
  rm -f "$TMP/srun.ready" "$TMP/srun.signal" "$TMP/scontrol.calls"
  bash slurm/sweep.sbatch experiments/demo.toml >"$TMP/out" 2>&1 &
  batch=$!
  if wait_for "$TMP/srun.ready" 10; then
    sleep 0.2
    kill -s "$sig" "$batch"
    wait "$batch"; rc=$?
  else
    kill "$batch" 2>/dev/null; wait "$batch"; rc=timeout
  fi
  check_eq "$sig to the batch shell: srun got it" "$sig" "$(cat "$TMP/srun.signal" 2>/dev/null)"
  check_eq "$sig to the batch shell: exits 0 after the requeue" 0 "$rc"
  check_eq "$sig to the batch shell: requeued the task" "requeue 1007" "$(requeues)"
done
summary
