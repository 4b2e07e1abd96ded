#!/usr/bin/env bash
# slurm/train.sbatch without Slurm: srun runs sparser_run CONFIG with the options given
# (no --index of its own) and --progress lines; exit 75 requeues the job; other statuses pass through; USR1
# to the batch shell reaches the running srun. srun and scontrol are fakes.
source "$(dirname "$0")/common.bash"

printf '#!/bin/sh\nexit 0\n' > "$TMP/sparser_run" && chmod +x "$TMP/sparser_run"
fake srun <<<'exit "${FAKE_SRUN_RC:-0}"'
fake_scontrol 0
export SRUN=$TMP/bin/srun SCONTROL=$TMP/bin/scontrol SPARSER_BIN=$TMP/sparser_run
export SLURM_JOB_ID=2001
unset SLURM_ARRAY_JOB_ID SLURM_ARRAY_TASK_ID SLURM_CPUS_PER_TASK SLURM_RESTART_COUNT SRUN_ARGS
args=$TMP/srun.args

bash slurm/train.sbatch experiments/demo.toml --index 2 --set train.lr=1e-3 >/dev/null 2>&1; rc=$?
check_eq "a finished run exits 0" 0 "$rc"
check "srun runs sparser_run on the config" has_seq "$args" "$TMP/sparser_run" experiments/demo.toml
check "options passed on in order" has_seq "$args" --index 2
check "overrides passed on" has_seq "$args" --set train.lr=1e-3
check "no --threads without --cpus-per-task" test "$(grep -cxF -- --threads "$args")" = 0
check "progress as plain lines (a log file)" has_seq "$args" --progress lines
bash slurm/train.sbatch experiments/demo.toml --progress bar >/dev/null 2>&1
check "--progress given wins" test "$(grep -cxF -- --progress "$args")" = 1
check "... with its value" has_seq "$args" --progress bar
SLURM_CPUS_PER_TASK=4 bash slurm/train.sbatch experiments/demo.toml >/dev/null 2>&1
check "--threads from --cpus-per-task" has_seq "$args" --threads 4
check "no --index added" test "$(grep -cxF -- --index "$args")" = 0

# Slurm runs a copy of the script from its spool directory: the shared part
# (slurm/common.sh) comes from the submit directory.
mkdir -p "$TMP/spool" && cp slurm/train.sbatch "$TMP/spool/slurm_script"
rm -f "$TMP/srun.calls"
SLURM_SUBMIT_DIR=$ROOT bash "$TMP/spool/slurm_script" experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "a spooled copy runs (slurm/common.sh from the submit directory)" 0 "$rc"
check "... and starts srun" test -e "$TMP/srun.calls"
out=$(SLURM_SUBMIT_DIR=$TMP bash "$TMP/spool/slurm_script" experiments/demo.toml 2>&1); rc=$?
check_eq "submitted from elsewhere: exits 2" 2 "$rc"
check "... saying where to submit from" contains "$out" "submit from the repository root"

FAKE_SRUN_RC=75 bash slurm/train.sbatch experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "interrupted run: exits 0" 0 "$rc"
check_eq "requeues the job" "requeue 2001" "$(requeues)"
rm -f "$TMP/scontrol.calls"
# Submitted from inside an array task, the job inherits that task's SLURM_ARRAY_* variables.
SLURM_ARRAY_JOB_ID=500 SLURM_ARRAY_TASK_ID=3 FAKE_SRUN_RC=75 \
  bash slurm/train.sbatch experiments/demo.toml >/dev/null 2>&1
check_eq "array variables of the submitting task: requeues its own job" "requeue 2001" "$(requeues)"
rm -f "$TMP/scontrol.calls"
(unset SLURM_JOB_ID; FAKE_SRUN_RC=75 bash slurm/train.sbatch experiments/demo.toml >/dev/null 2>&1); rc=$?
check_eq "interrupted outside Slurm: exits 75" 75 "$rc"
FAKE_SRUN_RC=3 bash slurm/train.sbatch experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "other status propagates" 3 "$rc"
check "no requeue then" test -z "$(requeues)"

fake srun <<'BODY'
dir=${0%/bin/*}
trap 'echo USR1 > "$dir/srun.signal"; exit 75' USR1
touch "$dir/srun.ready"
for _ in $(seq 300); do sleep 0.1; done
exit 3
BODY
bash slurm/train.sbatch experiments/demo.toml >/dev/null 2>&1 &
batch=$!
if wait_for "$TMP/srun.ready" 10; then sleep 0.2; kill -USR1 "$batch"; wait "$batch"; rc=$?
else kill "$batch" 2>/dev/null; wait "$batch"; rc=timeout; fi
check_eq "USR1 to the batch shell: srun got it" USR1 "$(cat "$TMP/srun.signal" 2>/dev/null)"
check_eq "USR1 to the batch shell: exits 0 after the requeue" 0 "$rc"
check_eq "USR1 to the batch shell: requeued the job" "requeue 2001" "$(requeues)"
summary
