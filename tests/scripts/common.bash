# Helpers of the script tests (sourced by tests/scripts/*.sh): checks that count
# passes and failures, fake launchers that record their arguments, and a summary.
# The tests need no Slurm or MPI: the scripts take their launchers from SRUN, SBATCH,
# SCONTROL, MPIRUN and SPARSER_BIN, which the tests point at the fakes.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sparser-scripts.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ $# -lt 2 ] || printf '     %s\n' "$2"; }
# check NAME COMMAND...: passes when the command succeeds
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "$*"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }
# has_line FILE LINE: FILE holds exactly LINE as one of its lines
has_line() { grep -qxF -- "$2" "$1" 2>/dev/null; }
# has_seq FILE A B: line A directly followed by line B (an option and its value)
has_seq() { grep -A1 -xF -- "$2" "$1" 2>/dev/null | grep -qxF -- "$3"; }
# contains TEXT PATTERN: fixed-string search
contains() { grep -qF -- "$2" <<<"$1"; }

summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# fake NAME: an executable $TMP/bin/NAME that writes its arguments, one a line, to
# $TMP/NAME.args (and appends them to $TMP/NAME.calls, one call a line), then runs the
# body given on stdin (may be empty).
fake() {
  mkdir -p "$TMP/bin"
  {
    echo '#!/usr/bin/env bash'
    echo "printf '%s\n' \"\$@\" > '$TMP/$1.args'"
    echo "echo \"\$*\" >> '$TMP/$1.calls'"
    cat
  } > "$TMP/bin/$1"
  chmod +x "$TMP/bin/$1"
  rm -f "$TMP/$1.args" "$TMP/$1.calls"
}

# wait_for FILE [SECONDS]: waits until FILE exists
wait_for() {
  local deadline=$((SECONDS + ${2:-10}))
  while [ ! -e "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# fake_scontrol RC: scontrol whose "show job" prints JobState=$FAKE_JOB_STATE (default
# RUNNING) and whose "requeue" exits RC; requeues prints the requeue calls so far.
fake_scontrol() {
  fake scontrol <<BODY
if [ "\$1" = show ]; then echo "JobId=\$4 JobName=sparser JobState=\${FAKE_JOB_STATE:-RUNNING} Restarts=0"; exit 0; fi
exit $1
BODY
}
requeues() { grep '^requeue' "$TMP/scontrol.calls" 2>/dev/null; }
