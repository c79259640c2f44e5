#!/usr/bin/env bash
# Builds the npm package into pkg/ (generated, never committed) and reports its size.
set -euo pipefail
cd "$(dirname "$0")/.."
wasm-pack build --target web --release --out-dir pkg . >/dev/null 2>pkg-build.log || { cat pkg-build.log; exit 1; }
rm -f pkg-build.log
wasm=$(ls pkg/*.wasm)
raw=$(stat -c %s "$wasm")
gz=$(cat pkg/*.wasm pkg/*.js | gzip -9 | wc -c)
echo "built pkg/: $(basename "$wasm") ${raw} bytes raw; wasm + JS glue ${gz} bytes gzipped"
