#!/usr/bin/env bash
# launch/multi_node.sh: a missing hostfile fails clearly; with a fake mpirun the launch
# has --hostfile, the ranks per node with binding, the threads, --progress and the NCCL
# environment; where mpirun exists, a real launch on localhost starts -n ranks, not one per
# slot of the hostfile, nor fewer (and, with sparser_run, each prints --count).
# Usage: multi_node.sh [SPARSER_RUN]   (default build/bin/sparser_run)
source "$(dirname "$0")/common.bash"
real_bin=${1:-${SPARSER_RUN_BIN:-$ROOT/build/bin/sparser_run}}

fake mpirun <<<'exit "${FAKE_MPIRUN_RC:-0}"'
export MPIRUN=$TMP/bin/mpirun SPARSER_BIN=$TMP/sparser_run
unset NCCL_SOCKET_IFNAME NCCL_IB_DISABLE NCCL_DEBUG MPIRUN_ARGS
args=$TMP/mpirun.args

out=$(launch/multi_node.sh experiments/demo.toml 2>&1); rc=$?
check_eq "no -f: exits 2" 2 "$rc"
check "no -f: says a hostfile is needed" contains "$out" "-f HOSTFILE"
out=$(launch/multi_node.sh -f "$TMP/no-such-hosts" experiments/demo.toml 2>&1); rc=$?
check_eq "missing hostfile: exits 2" 2 "$rc"
check "missing hostfile: names it" contains "$out" "hostfile '$TMP/no-such-hosts' not found"
printf '# nothing yet\n\n' > "$TMP/empty-hosts"
out=$(launch/multi_node.sh -f "$TMP/empty-hosts" experiments/demo.toml 2>&1); rc=$?
check "hostfile without hosts fails" test "$rc" -ne 0
check "... saying so" contains "$out" "lists no hosts"
out=$(launch/multi_node.sh -f 2>&1); rc=$?
check "-f without a value fails" test "$rc" -eq 2
check "nothing launched so far" test ! -e "$TMP/mpirun.calls"

printf 'node1 slots=4\nnode2 slots=4\n' > "$TMP/hosts"
launch/multi_node.sh -f "$TMP/hosts" -n 2 -t 1 experiments/demo.toml --index 1 >/dev/null 2>&1; rc=$?
check_eq "launch exits with mpirun's status" 0 "$rc"
check "--hostfile passed" has_seq "$args" --hostfile "$TMP/hosts"
check "-n ranks per node, each mapped onto its cores" has_seq "$args" --map-by ppr:2:node:PE=1
check "no -npernode (a --map-by beside it would override it)" test "$(grep -c -- -npernode "$args")" = 0
check "slots do not cap the ranks per node" has_line "$args" --oversubscribe
check "OMP_NUM_THREADS exported" has_seq "$args" -x OMP_NUM_THREADS=1
check "NCCL_DEBUG exported (default WARN)" has_seq "$args" -x NCCL_DEBUG=WARN
check "ranks bound to cores" has_seq "$args" --bind-to core
check "runs sparser_run on the config" has_seq "$args" "$TMP/sparser_run" experiments/demo.toml
check "options passed on" has_seq "$args" --index 1
check "--threads given to sparser_run" has_seq "$args" --threads 1
check "--progress lines when the output is not a terminal" has_seq "$args" --progress lines
check "no NCCL_SOCKET_IFNAME unless set" test "$(grep -c NCCL_SOCKET_IFNAME "$args")" = 0
if [ "$(id -u)" -eq 0 ]; then check "root: --allow-run-as-root" has_line "$args" --allow-run-as-root
else check "not root: no --allow-run-as-root" test "$(grep -c -- --allow-run-as-root "$args")" = 0; fi

NCCL_SOCKET_IFNAME=eth0 NCCL_IB_DISABLE=1 NCCL_DEBUG=INFO MPIRUN_ARGS="--mca btl_tcp_if_include eth0" \
  launch/multi_node.sh -f "$TMP/hosts" -n 1 -t 1 -- experiments/demo.toml --threads 3 >/dev/null 2>&1
check "NCCL_SOCKET_IFNAME exported when set" has_seq "$args" -x NCCL_SOCKET_IFNAME
check "NCCL_IB_DISABLE passed through" has_seq "$args" -x NCCL_IB_DISABLE
check "NCCL_DEBUG from the environment" has_seq "$args" -x NCCL_DEBUG=INFO
check "MPIRUN_ARGS appended" has_seq "$args" --mca btl_tcp_if_include
check "--threads given wins" test "$(grep -cxF -- --threads "$args")" = 1
check "... with its value" has_seq "$args" --threads 3
launch/multi_node.sh -f "$TMP/hosts" -n 1 -t 1 experiments/demo.toml --progress=bar >/dev/null 2>&1
check "--progress given wins" test "$(grep -c -- --progress "$args")" = 1
check "... as given" has_line "$args" --progress=bar
if command -v script >/dev/null; then
  script -qec "launch/multi_node.sh -f '$TMP/hosts' -n 1 -t 1 experiments/demo.toml" /dev/null >/dev/null 2>&1 </dev/null
  check "--progress bar when the output is a terminal" has_seq "$args" --progress bar
fi
launch/multi_node.sh -f "$TMP/hosts" -n 1 -t 99999 experiments/demo.toml >/dev/null 2>&1
check "more threads than cores: no binding" has_seq "$args" --bind-to none
check "... still -n ranks per node" has_seq "$args" --map-by ppr:1:node
FAKE_MPIRUN_RC=5 launch/multi_node.sh -f "$TMP/hosts" -n 1 experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "mpirun's failure propagates" 5 "$rc"
launch/multi_node.sh -f "$TMP/hosts" -n x experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "a bad -n fails" 2 "$rc"

# The real mpirun starts -n ranks on a host with more slots than that, not one per slot,
# and on a host with fewer.
printf 'localhost slots=4\n' > "$TMP/localhost"
if command -v mpirun >/dev/null; then
  printf '#!/bin/sh\necho rank started\n' > "$TMP/say_started"
  chmod +x "$TMP/say_started"
  out=$(MPIRUN=mpirun SPARSER_BIN=$TMP/say_started timeout 60 launch/multi_node.sh -f "$TMP/localhost" -n 1 -t 1 \
          experiments/demo.toml 2>&1); rc=$?
  check_eq "real mpirun, -n 1 on a host of 4 slots: exits 0" 0 "$rc"
  check_eq "... starts one rank" 1 "$(grep -cx 'rank started' <<<"$out")"
  printf 'localhost slots=1\n' > "$TMP/localhost1"
  out=$(MPIRUN=mpirun SPARSER_BIN=$TMP/say_started timeout 60 launch/multi_node.sh -f "$TMP/localhost1" -n 2 -t 1 \
          experiments/demo.toml 2>&1); rc=$?
  check_eq "real mpirun, -n 2 on a host of 1 slot: exits 0" 0 "$rc"
  check_eq "... starts two ranks" 2 "$(grep -cx 'rank started' <<<"$out")"
else
  echo "skip the real mpirun launches (no mpirun)"
fi
# With sparser_run: two ranks on localhost, each printing the count.
if command -v mpirun >/dev/null && [ -x "$real_bin" ]; then
  out=$(MPIRUN=mpirun SPARSER_BIN=$real_bin timeout 60 launch/multi_node.sh -f "$TMP/localhost" -n 2 -t 1 \
          experiments/demo.toml --count 2>&1); rc=$?
  check_eq "real mpirun on localhost exits 0" 0 "$rc"
  check_eq "real mpirun: both ranks print the count" "6 6" "$(grep -x '[0-9]*' <<<"$out" | xargs)"
else
  echo "skip the real sparser_run launch (no mpirun or no $real_bin)"
fi
summary
