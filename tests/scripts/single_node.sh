#!/usr/bin/env bash
# launch/single_node.sh: -n/-t without a value or with a bad one fail clearly; with a fake
# mpirun the launch has the ranks, threads, binding and NCCL environment, sparser_run
# gets --threads and --progress once (the user's own win; bar on a terminal, lines
# otherwise); without -n, one rank per visible GPU (a fake nvidia-smi of a MIG node, and
# CUDA_VISIBLE_DEVICES); where mpirun and sparser_run exist, a real launch (sparser_run --count).
# Usage: single_node.sh [SPARSER_RUN]   (default build/bin/sparser_run)
source "$(dirname "$0")/common.bash"
real_bin=${1:-${SPARSER_RUN_BIN:-$ROOT/build/bin/sparser_run}}

fake mpirun <<<'exit "${FAKE_MPIRUN_RC:-0}"'
export MPIRUN=$TMP/bin/mpirun SPARSER_BIN=$TMP/sparser_run
unset NCCL_DEBUG
args=$TMP/mpirun.args
count() { grep -cxF -- "$1" "$args"; }

out=$(launch/single_node.sh -n 2>&1); rc=$?
check_eq "-n without a value: exits 2" 2 "$rc"
check "... saying -n needs a number" contains "$out" "-n needs a number"
check "... not an unbound variable" test "$(grep -c unbound <<<"$out")" = 0
out=$(launch/single_node.sh -t 2>&1); rc=$?
check_eq "-t without a value: exits 2" 2 "$rc"
out=$(launch/single_node.sh -n experiments/demo.toml 2>&1); rc=$?
check_eq "-n followed by the config: exits 2" 2 "$rc"
check "... naming the bad value" contains "$out" "-n needs a positive number, not 'experiments/demo.toml'"
launch/single_node.sh -n 0 experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "-n 0 fails" 2 "$rc"
check "nothing launched so far" test ! -e "$TMP/mpirun.calls"

launch/single_node.sh -n 2 -t 1 experiments/demo.toml --index 1 >/dev/null 2>&1; rc=$?
check_eq "launch exits with mpirun's status" 0 "$rc"
check "-np passed" has_seq "$args" -np 2
check "OMP_NUM_THREADS exported" has_seq "$args" -x OMP_NUM_THREADS=1
check "NCCL_DEBUG exported (default WARN)" has_seq "$args" -x NCCL_DEBUG=WARN
check "ranks bound to cores" has_seq "$args" --bind-to core
check "each rank mapped onto its cores" has_seq "$args" --map-by slot:PE=1
check "runs sparser_run on the config" has_seq "$args" "$TMP/sparser_run" experiments/demo.toml
check "options passed on" has_seq "$args" --index 1
check "--threads given to sparser_run" has_seq "$args" --threads 1
check "--progress lines when the output is not a terminal" has_seq "$args" --progress lines
check_eq "--progress given once" 1 "$(count --progress)"
if [ "$(id -u)" -eq 0 ]; then check "root: --allow-run-as-root" has_line "$args" --allow-run-as-root; fi

# The user's --threads and --progress win: each reaches sparser_run once, with their value.
launch/single_node.sh -n 2 -t 1 experiments/demo.toml --threads 3 --progress bar >/dev/null 2>&1; rc=$?
check_eq "own --threads and --progress: launches" 0 "$rc"
check_eq "own --threads: given once" 1 "$(count --threads)"
check "... with its value" has_seq "$args" --threads 3
check_eq "own --progress: given once" 1 "$(count --progress)"
check "... with its value" has_seq "$args" --progress bar
launch/single_node.sh -n 2 -t 1 experiments/demo.toml --threads=4 --progress=lines >/dev/null 2>&1
check "own --threads=N: none added" test "$(count --threads)" = 0
check "own --progress=STYLE: none added" test "$(count --progress)" = 0

# On a terminal (script(1) gives the launch a pty) sparser_run draws a bar.
if command -v script >/dev/null; then
  script -qec "launch/single_node.sh -n 2 -t 1 experiments/demo.toml" /dev/null >/dev/null 2>&1 </dev/null
  check "--progress bar when the output is a terminal" has_seq "$args" --progress bar
else
  echo "skip the terminal case (no script(1))"
fi

launch/single_node.sh -n 2 -t 99999 experiments/demo.toml >/dev/null 2>&1
check "more threads than cores: no binding" has_seq "$args" --bind-to none
check "... and oversubscription allowed" has_line "$args" --oversubscribe
FAKE_MPIRUN_RC=5 launch/single_node.sh -n 1 experiments/demo.toml >/dev/null 2>&1; rc=$?
check_eq "mpirun's failure propagates" 5 "$rc"

# Without -n: one rank per GPU that nvidia-smi -L lists (not per MIG instance beneath one),
# or per entry of CUDA_VISIBLE_DEVICES when it is set.
fake nvidia-smi <<'BODY'
printf '%s\n' 'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)' \
  '  MIG 3g.20gb     Device  0: (UUID: MIG-0a)' '  MIG 3g.20gb     Device  1: (UUID: MIG-0b)' \
  'GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1)' 'GPU 2: NVIDIA A100-SXM4-40GB (UUID: GPU-2)'
BODY
with_gpus() { env -u CUDA_VISIBLE_DEVICES PATH="$TMP/bin:$PATH" "$@"; }
with_gpus launch/single_node.sh experiments/demo.toml >/dev/null 2>&1
check "no -n: a rank per GPU, none per MIG instance" has_seq "$args" -np 3
with_gpus CUDA_VISIBLE_DEVICES=1 launch/single_node.sh experiments/demo.toml >/dev/null 2>&1
check "no -n: a rank per entry of CUDA_VISIBLE_DEVICES" has_seq "$args" -np 1
with_gpus CUDA_VISIBLE_DEVICES= launch/single_node.sh experiments/demo.toml >/dev/null 2>&1
check "no -n, no visible GPU: 2 ranks" has_seq "$args" -np 2

# The real mpirun accepts the options: two ranks on this machine, each printing the count.
if command -v mpirun >/dev/null && [ -x "$real_bin" ]; then
  out=$(MPIRUN=mpirun SPARSER_BIN=$real_bin timeout 60 launch/single_node.sh -n 2 -t 1 \
          experiments/demo.toml --count 2>&1); rc=$?
  check_eq "real mpirun exits 0" 0 "$rc"
  check_eq "real mpirun: both ranks print the count" "6 6" "$(grep -x '[0-9]*' <<<"$out" | xargs)"
else
  echo "skip the real mpirun launch (no mpirun or no $real_bin)"
fi
summary
