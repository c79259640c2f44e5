#!/usr/bin/env bash
# The shipped types are the checked types: packs pkg/ as npm would publish it (`npm pack`, so
# only what package.json's `files` lists), installs the tarball as tests/ts/node_modules/clientdata
# and compiles tests/ts/consumer.ts with tsc --strict, which resolves `clientdata` and each adapter
# (`clientdata/swamp.js`, `clientdata/wasi-keyvalue.js`, `clientdata/lock-conformance.js`)
# through package.json `exports`/`types`, as a consumer's would. Needs scripts/build-pkg.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/package.json ] || { echo "no pkg/: run scripts/build-pkg.sh first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tarball=$(cd pkg && npm pack --silent --pack-destination "$tmp")
dest=tests/ts/node_modules/clientdata
rm -rf "$dest"
mkdir -p "$dest"
tar -xzf "$tmp/$tarball" -C "$dest" --strip-components=1
tools/node_modules/.bin/tsc -p tests/ts/tsconfig.json
echo "tsc --strict: tests/ts/consumer.ts compiles against the packed package ($tarball)"
