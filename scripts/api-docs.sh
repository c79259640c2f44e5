#!/usr/bin/env bash
# docs/API.md, the API reference, generated from the shipped types (pkg/*.d.ts) by typedoc with
# typedoc-plugin-markdown (tools/api-docs.mjs; both pinned in tools/package.json):
#   scripts/api-docs.sh           regenerate docs/API.md (commit it with the change)
#   scripts/api-docs.sh --check   regenerate into a temp dir and diff: fails when docs/API.md is
#                                 stale, or when a function or method has no @example
# Needs scripts/build-pkg.sh first (the .d.ts are generated from the Rust doc comments).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/index.d.ts ] || { echo "no pkg/: run scripts/build-pkg.sh first" >&2; exit 1; }
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  node tools/api-docs.mjs pkg "$tmp/API.md"
  if ! diff -u docs/API.md "$tmp/API.md"; then
    echo "docs/API.md is stale: run scripts/api-docs.sh and commit it" >&2
    exit 1
  fi
  echo "docs/API.md is in step with the shipped types"
else
  node tools/api-docs.mjs pkg docs/API.md
fi
