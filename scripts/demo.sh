#!/usr/bin/env bash
# The built-in example, end to end on a fresh machine: dependencies, build, parity of
# the tiny reference SAM with the official implementation, synthetic shards, a sweep of
# three methods × two seeds trained on two MPI ranks, and the LaTeX table of the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
bin=${BUILD_DIR:-build}/bin
out=demo_out

echo "== parity with the official implementation (tiny SAM fixture)"
"$bin/sparser_parity" ../shared/fixtures/sam_tiny

echo "== synthetic shards"
"$bin/sparser_prep" synthetic --out "$out/data" --overwrite --train-images 64 --val-images 16

echo "== training: decoder-only, LoRA, SAM-PARSER × 2 seeds on 2 MPI ranks"
rm -rf "$out/runs"
# single_node.sh takes build/bin/sparser_run unless told, whatever BUILD_DIR says.
SPARSER_BIN="$bin/sparser_run" launch/single_node.sh -n 2 -t 1 experiments/demo.toml

echo "== table (also in $out/table.tex; figures in $out/figures/)"
"$bin/sparser_analyze" table "$out/runs/demo" --layout experiments/demo_layout.toml --out "$out/table.tex"
"$bin/sparser_analyze" figures "$out/runs/demo" --layout experiments/demo_layout.toml --out "$out/figures"
cat "$out/table.tex"
