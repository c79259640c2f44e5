#!/usr/bin/env bash
# Builds the npm package into pkg/ (generated, never committed), optimises the wasm for size
# with a current binaryen, and reports the size.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
wasm-pack build --target web --release --out-dir pkg . >"$log" 2>&1 || { cat "$log"; exit 1; }
rm -f "$log"
wasm=pkg/clientdata_bg.wasm
# The features rustc's wasm32 target emits; -Oz measured smaller than -Os here.
# --low-memory-unused lets binaryen fold small constant offsets into loads and stores (about
# 4 KB smaller): it assumes nothing lives in the first 1 KiB of linear memory, which holds for
# rustc's layout (the stack sits below 1 MiB and grows down, static data starts at 1 MiB).
# --converge repeats the passes until nothing shrinks (about 1 KB gzipped for 15 s more;
# --gufa and --zero-filled-memory measured no smaller).
tools/node_modules/.bin/wasm-opt -Oz --converge --low-memory-unused --enable-bulk-memory \
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  --enable-reference-types --enable-multivalue "$wasm" -o "$wasm"
# Shipped beside the module (js/): the lock conformance suite, the swamp datastore and the
# wasi:keyvalue adapters; then package.json for consumers (exports, types, sideEffects).
node tools/finish-pkg.mjs
raw=$(stat -c %s "$wasm")
gz=$(find pkg -name '*.wasm' -o -name '*.js' | LC_ALL=C sort | xargs cat | gzip -9 | wc -c)
echo "built pkg/: $(basename "$wasm") ${raw} bytes raw; wasm + all shipped JS ${gz} bytes gzipped"
