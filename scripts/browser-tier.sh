#!/usr/bin/env bash
# The browser test tier (wasm-bindgen-test: tests/browser/, tests/worker_store.rs) in one engine:
#   scripts/browser-tier.sh chromium|firefox|webkit [cargo test arguments, e.g. --test browser locks::]
# Without arguments: the two browser test binaries, tests/browser/ (the page) and
# tests/worker_store.rs (a dedicated Worker); the other test files are native (cargo test).
# Chromium through ChromeDriver, Firefox (Debian firefox-esr) through geckodriver, WebKit
# (WebKitGTK's MiniBrowser) through WebKitWebDriver, which wasm-bindgen-test-runner drives as its
# SAFARIDRIVER, on a virtual display (xvfb-run). scripts/setup.sh installs all three.
#
# Firefox start-up: the runner's test server (tiny_http) serves each connection on a pool thread,
# and Firefox keeps idle connections open 115 s (network.http.keep-alive.timeout); on a 2-core
# machine the page's later requests then waited for that timeout (navigation took 117 s in 4 of
# 6 runs). webdriver.json sets the timeout to 2 s (0 slow starts in 5 runs, 9-13 s each). The
# runner sends WebKitWebDriver no capabilities, so WebKit (libsoup also keeps 6 idle
# connections) keeps the stall: seen in 3 of 7 starts under a load average of 20. A start-up
# stall is retried (scripts/wasm-test-runner.sh): Firefox once after 25 s, WebKit at most 4 times
# after 20 s each (a good start shows its first test within 10 s).
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${1:?usage: scripts/browser-tier.sh chromium|firefox|webkit [cargo test args]}"
shift
chromedriver="${CHROMEDRIVER:-/usr/bin/chromedriver}"
# The runner picks the driver from whichever of these is set: exactly one.
unset CHROMEDRIVER GECKODRIVER SAFARIDRIVER
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
wrap=()
case "$engine" in
  chromium) export CHROMEDRIVER="$chromedriver" ;;
  firefox)
    GECKODRIVER="$(command -v geckodriver)"
    export GECKODRIVER WASM_TEST_ATTEMPTS=2 WASM_TEST_START_S=25
    ;;
  webkit)
    SAFARIDRIVER="$(command -v WebKitWebDriver)"
    export SAFARIDRIVER WASM_TEST_ATTEMPTS=5 WASM_TEST_START_S=20
    wrap=(xvfb-run -a)
    ;;
  *) echo "unknown engine $engine (chromium, firefox or webkit)" >&2; exit 2 ;;
esac
# A stalled browser fails the run after 15 minutes instead of eating CI's budget.
[ $# -gt 0 ] || set -- --test browser --test worker_store
timeout 900 "${wrap[@]}" cargo test -p clientdata --target wasm32-unknown-unknown --no-fail-fast "$@"
