#!/usr/bin/env bash
# The browser test tier (wasm-bindgen-test, tests/browser_*.rs) in one engine:
#   scripts/browser-tier.sh chromium|firefox|webkit [cargo test arguments, e.g. --test browser_core]
# Chromium through ChromeDriver, Firefox (Debian firefox-esr) through geckodriver, WebKit
# (WebKitGTK's MiniBrowser) through WebKitWebDriver, which wasm-bindgen-test-runner drives as its
# SAFARIDRIVER, on a virtual display (xvfb-run). scripts/setup.sh installs all three.
#
# Firefox start-up: the runner's test server (tiny_http) serves each connection on a pool thread,
# and Firefox keeps idle connections open 115 s (network.http.keep-alive.timeout); on a 2-core
# machine the page's later requests then waited for that timeout (navigation took 117 s in 4 of
# 6 runs). webdriver.json sets the timeout to 2 s (0 slow starts in 5 runs, 9-13 s each). Any
# start-up stall left is retried once, after 45 s (scripts/wasm-test-runner.sh), never more.
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
    export GECKODRIVER WASM_TEST_ATTEMPTS=2 WASM_TEST_START_S=45
    ;;
  webkit)
    SAFARIDRIVER="$(command -v WebKitWebDriver)"
    export SAFARIDRIVER WASM_TEST_ATTEMPTS=2 WASM_TEST_START_S=45
    wrap=(xvfb-run -a)
    ;;
  *) echo "unknown engine $engine (chromium, firefox or webkit)" >&2; exit 2 ;;
esac
# A stalled browser fails the run after 15 minutes instead of eating CI's budget.
timeout 900 "${wrap[@]}" cargo test -p clientdata --target wasm32-unknown-unknown --no-fail-fast "$@"
