#!/usr/bin/env bash
# Sets everything up and runs every check: formatting, clippy (native and wasm), native tests,
# browser tests and end-to-end tests in Chromium, Firefox and WebKit, the release package build,
# the API reference's freshness. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"

step() { printf '\n== test: %s (at %d s)\n' "$1" "$SECONDS"; }

# A throwaway PostgreSQL cluster for the server's PostgreSQL backend (native tests, e2e, bench),
# stopped and removed whatever happens. CLIENTDATA_REQUIRE_PG makes every PostgreSQL test fail
# rather than skip if it cannot reach it.
step "PostgreSQL cluster (scripts/pg.sh)"
PG_DIR="$(mktemp -d /tmp/clientdata-pg.XXXXXX)"
trap 'bash scripts/pg.sh stop "$PG_DIR"; rm -rf "$PG_DIR"' EXIT
CLIENTDATA_TEST_PG="$(bash scripts/pg.sh start "$PG_DIR")"
export CLIENTDATA_TEST_PG CLIENTDATA_REQUIRE_PG=1
echo "$CLIENTDATA_TEST_PG"

step "rustfmt"
cargo fmt --all -- --check

step "eslint (the shipped JS: wasm-bindgen snippets in src/browser/, the package modules in js/)"
tools/node_modules/.bin/eslint --config tools/eslint.config.mjs --max-warnings 0 src/browser js

step "clippy (native, all targets)"
cargo clippy --workspace --all-targets -- -D warnings

step "clippy (wasm32, library and browser tests)"
cargo clippy -p clientdata --target wasm32-unknown-unknown --lib --tests -- -D warnings

step "native tests (the convergence simulation: 10,000 seeded schedules)"
# The fuzz targets run in their own step below, with their execution counts printed.
cargo test --workspace -- --skip fuzz_ 2>&1 | tee "$PG_DIR/native-tests.log"
# Every server test runs on both backends: none may have been left out on PostgreSQL.
pg_ran=$(grep -cE '^test .*::postgres \.\.\. ok$' "$PG_DIR/native-tests.log" || true)
sqlite_ran=$(grep -cE '^test .*::sqlite \.\.\. ok$' "$PG_DIR/native-tests.log" || true)
echo "server tests passed: $sqlite_ran on SQLite, $pg_ran on PostgreSQL"
if [ "$pg_ran" -eq 0 ] || [ "$pg_ran" -ne "$sqlite_ran" ]; then
  echo "PostgreSQL tests did not all run"; exit 1
fi

step "fuzz (stable harness, tests/fuzz.rs: 3 s per target; fuzz/README.md)"
FUZZ_SECS="${FUZZ_SECS:-3}" cargo test --test fuzz -- --nocapture

step "browser tests (headless Chromium)"
# A stalled browser fails the run after 15 minutes instead of eating CI's 90 (a browser that
# never starts the tests is retried by scripts/wasm-test-runner.sh, the cargo runner).
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
t0=$SECONDS
bash scripts/browser-tier.sh chromium
echo "chromium browser tier: $((SECONDS - t0)) s"

# The same tier in Firefox and WebKit, each step timed (CI budget for both: 6 minutes).
step "browser tests (headless Firefox: scripts/browser-tier.sh firefox)"
t0=$SECONDS
bash scripts/browser-tier.sh firefox
echo "firefox browser tier: $((SECONDS - t0)) s"

step "browser tests (WebKit under Xvfb: scripts/browser-tier.sh webkit)"
t0=$SECONDS
bash scripts/browser-tier.sh webkit
echo "webkit browser tier: $((SECONDS - t0)) s"

step "release package (wasm-pack --target web)"
bash scripts/build-pkg.sh

step "package size: no growth past the ceiling (scripts/size-check.sh), biggest contributors"
bash scripts/size-check.sh

step "TypeScript: a consumer of the whole API, importing the packed package through its exports, compiles with tsc --strict; no any in the API"
bash scripts/ts-consumer.sh
# The raw wasm exports (InitOutput, generated) are typed any by wasm-bindgen; the API above is not.
if sed '/^export interface InitOutput/,$d' pkg/clientdata.d.ts | grep -nE '(:|<|\||,|\()\s*any\b'; then
  echo "any in the public API of pkg/clientdata.d.ts"; exit 1
fi

step "API reference: docs/API.md in step with the shipped types, an @example on every method (scripts/api-docs.sh --check)"
bash scripts/api-docs.sh --check

step "reference server build (for the benchmarks, the end-to-end tests and the demo)"
cargo build --profile server -p clientdata-server --bins --examples

step "schemathesis against the live server (docs/openapi.json; no 5xx, every answer conforms)"
bash scripts/schemathesis.sh

step "benchmark harness smoke (no goals checked), Chromium then Firefox"
node bench/run.mjs --smoke
node bench/run.mjs --smoke --engine firefox

# The suite in each engine (e2e/lib/browser.mjs), each timed: skipped tests print their reason.
step "end-to-end tests in Chromium (playwright-core, real tabs, the real server)"
t0=$SECONDS
(cd e2e && E2E_ENGINE=chromium timeout 900 npm test)
echo "chromium e2e: $((SECONDS - t0)) s"

# Firefox and WebKit side by side (different browsers, no shared state: each test starts its own
# server), each into its own log, printed when both end. The fault points run 5 iterations each
# there (Chromium keeps 20 above; FAULT_ITERATIONS=200 by hand for a long run).
step "end-to-end tests in Firefox (firefox-esr, puppeteer-core over WebDriver BiDi) and WebKit (MiniBrowser, WebKitWebDriver under xvfb-run), side by side"
t0=$SECONDS
(cd e2e && E2E_ENGINE=firefox FAULT_ITERATIONS="${FAULT_ITERATIONS:-5}" timeout 900 npm test) > "$PG_DIR/e2e-firefox.log" 2>&1 &
firefox_pid=$!
(cd e2e && E2E_ENGINE=webkit FAULT_ITERATIONS="${FAULT_ITERATIONS:-5}" timeout 900 xvfb-run -a npm test) > "$PG_DIR/e2e-webkit.log" 2>&1 &
webkit_pid=$!
firefox_rc=0; webkit_rc=0
wait "$firefox_pid" || firefox_rc=$?
wait "$webkit_pid" || webkit_rc=$?
for engine in firefox webkit; do
  printf '\n-- %s e2e log\n' "$engine"; cat "$PG_DIR/e2e-$engine.log"
done
echo "firefox + webkit e2e: $((SECONDS - t0)) s (firefox rc $firefox_rc, webkit rc $webkit_rc)"
if [ "$firefox_rc" -ne 0 ] || [ "$webkit_rc" -ne 0 ]; then exit 1; fi

step "end-to-end sync suite again, the server on PostgreSQL"
(cd e2e && CLIENTDATA_E2E_BACKEND=postgres timeout 600 node --test --test-concurrency=1 tests/sync.test.mjs)

printf '\n== test: all checks passed (%d s)\n' "$SECONDS"
