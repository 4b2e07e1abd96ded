#!/usr/bin/env bash
# The built-in example on the tiny reference SAM: set-up, parity with the official
# implementation, what each method trains, and a prompted prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
bin=${BUILD_DIR:-build}/bin
out=demo_out
mkdir -p "$out"

echo "== parity with the official implementation (tiny SAM fixture)"
"$bin/sparser_parity" ../shared/fixtures/sam_tiny

echo "== what SAM-PARSER (neck convolutions) trains"
"$bin/sparser_inspect" --config experiments/demo.toml --trainable | tail -n 12

echo "== box-prompted prediction on a synthetic image"
{ printf 'P6\n96 128\n255\n'; head -c $((96 * 128 * 3)) /dev/urandom; } > "$out/image.ppm"
"$bin/sparser_predict" --config experiments/demo.toml --image "$out/image.ppm" --box 10,20,80,110 --out "$out"
echo "masks and overlay in $out/"
