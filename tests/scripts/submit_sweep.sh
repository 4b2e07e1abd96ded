#!/usr/bin/env bash
# slurm/submit_sweep.sh: sizes the array from the real sparser_run --count (demo.toml
# has 6 runs), applies the throttle, passes sbatch options and --set on, prints the job
# id; --dry-run submits nothing. sbatch is a fake that records its arguments.
# Usage: submit_sweep.sh [SPARSER_RUN]   (default build/bin/sparser_run)
source "$(dirname "$0")/common.bash"

bin=${1:-${SPARSER_RUN_BIN:-$ROOT/build/bin/sparser_run}}
[ -x "$bin" ] || { echo "no sparser_run at $bin (pass its path)"; echo "0 passed, 1 failed"; exit 1; }
export SPARSER_BIN=$bin
count=$("$bin" experiments/demo.toml --count)
check_eq "sparser_run --count of demo.toml" 6 "$count"

fake sbatch <<'BODY'
echo "SPARSER_BIN=$SPARSER_BIN" > "${0%/bin/*}/sbatch.env"
for a in "$@"; do [ "$a" != --test-only ] || { echo "sbatch: test-only ok" >&2; exit 0; }; done
echo "4242;cluster"
BODY
export SBATCH=$TMP/bin/sbatch
args=$TMP/sbatch.args

# Plain submission: array 0-5, the job id alone on stdout.
ids=$("$bin" experiments/demo.toml --list | awk '{ print $2 }' | tr '\n' ' ')
out=$(slurm/submit_sweep.sh experiments/demo.toml 2>"$TMP/err"); rc=$?
check_eq "submit exits 0" 0 "$rc"
check_eq "prints the job id" 4242 "$out"
check "array sized from --count" has_line "$args" --array=0-5
check "asks for a parsable answer" has_line "$args" --parsable
check "submits sweep.sbatch" has_line "$args" "$ROOT/slurm/sweep.sbatch"
check "passes the config" has_seq "$args" "${ids% }" experiments/demo.toml
check "summary on stderr" grep -qF "6 run(s)" "$TMP/err"
check "the tasks get the same binary" grep -qxF "SPARSER_BIN=$bin" "$TMP/sbatch.env"
check "... and the ids of the runs submitted" has_seq "$args" "$ROOT/slurm/sweep.sbatch" --run-ids
check "... in order" has_seq "$args" --run-ids "${ids% }"

# Throttle, sbatch options after --, overrides given to --count and to the tasks.
out=$(slurm/submit_sweep.sh experiments/demo.toml --throttle 2 --set 'run.seeds=[1]' -- --time=1:00:00 --partition=gpu 2>/dev/null)
check_eq "throttled submit prints the job id" 4242 "$out"
check "throttle and --set size the array: 0-2%2" has_line "$args" --array=0-2%2
check "sbatch options passed" has_line "$args" --time=1:00:00
check "second sbatch option passed" has_line "$args" --partition=gpu
check "sbatch options come before the script" has_seq "$args" --partition=gpu "$ROOT/slurm/sweep.sbatch"
check "--set reaches the tasks" has_seq "$args" --set 'run.seeds=[1]'
slurm/submit_sweep.sh experiments/demo.toml --throttle=3 >/dev/null 2>&1
check "--throttle=K form" has_line "$args" --array=0-5%3

# --dry-run prints the command; with sbatch present it only runs sbatch --test-only.
rm -f "$TMP/sbatch.calls"
out=$(slurm/submit_sweep.sh experiments/demo.toml --throttle 4 --dry-run 2>"$TMP/err"); rc=$?
check_eq "dry run exits 0" 0 "$rc"
check "dry run prints the sbatch command" contains "$out" "--array=0-5%4"
check "dry run prints the script" contains "$out" "slurm/sweep.sbatch --run-ids"
check "... and the config" contains "$out" " experiments/demo.toml"
check_eq "dry run calls sbatch once" 1 "$(wc -l < "$TMP/sbatch.calls")"
check "... and only with --test-only" has_line "$args" --test-only
check "dry run submits nothing" test "$(grep -c -- --parsable "$TMP/sbatch.calls")" = 0
SBATCH=$TMP/no-such-sbatch slurm/submit_sweep.sh experiments/demo.toml --dry-run >/dev/null 2>&1
check "dry run without sbatch installed exits 0" test $? -eq 0

# Errors.
out=$(cd "$TMP" && "$ROOT/slurm/submit_sweep.sh" "$ROOT/experiments/demo.toml" 2>&1); rc=$?
check_eq "submitted outside the repository root: exits 2" 2 "$rc"
check "... saying where to submit from" contains "$out" "submit from the repository root"
slurm/submit_sweep.sh experiments/no-such.toml >/dev/null 2>&1
check "missing config fails" test $? -ne 0
slurm/submit_sweep.sh experiments/demo.toml --throttle 0 >/dev/null 2>&1
check "throttle 0 fails" test $? -ne 0
slurm/submit_sweep.sh experiments/demo.toml --set no.such.key=1 >/dev/null 2>&1
check "a failing --count fails" test $? -ne 0
fake sbatch <<<'echo "sbatch: error: invalid partition" >&2; exit 1'
slurm/submit_sweep.sh experiments/demo.toml >/dev/null 2>&1
check "a failing sbatch fails" test $? -ne 0
summary
