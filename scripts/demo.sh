#!/usr/bin/env bash
# Sets everything up and runs the main job. Today that is the release package build (the demo
# page with two syncing devices arrives with the package/demo issue); it says what it built.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-pkg.sh
echo "pkg/ holds the ES module (clientdata.js), its TypeScript types (clientdata.d.ts) and the wasm."
