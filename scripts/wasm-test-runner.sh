#!/usr/bin/env bash
# Cargo's runner for wasm32 test binaries (.cargo/config.toml): wasm-bindgen-test-runner with a
# start-up watchdog. Here Debian's Chromium under ChromeDriver now and then never loads the test
# page (the runner sits at "Loading scripts..." or before the session, until ChromeDriver gives up
# after 300 s) although no test has run (a known flake: wasm-bindgen/wasm-pack#783). Such a start
# is killed with its whole process group (driver and browser) after START_S and retried, at most
# 8 attempts (WASM_TEST_ATTEMPTS; scripts/browser-tier.sh allows Firefox and WebKit 2). Once the page has started the tests ("running N tests"), the result stands: a
# failing or hanging test is never retried.
set -uo pipefail
START_S="${WASM_TEST_START_S:-30}"
ATTEMPTS="${WASM_TEST_ATTEMPTS:-8}"
for attempt in $(seq 1 $ATTEMPTS); do
  out=$(mktemp)
  setsid wasm-bindgen-test-runner "$@" > >(tee "$out") 2>&1 &
  pid=$!
  started=""
  for _ in $(seq 1 "$START_S"); do
    if grep -qE '^running [0-9]+ tests?' "$out"; then started=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if [ -z "$started" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null; sleep 1; kill -KILL -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    rm -f "$out"
    echo "wasm-test-runner: the browser did not start the tests within ${START_S} s (attempt $attempt of $ATTEMPTS)" >&2
    continue
  fi
  wait "$pid"; rc=$?
  grep -qE '^running [0-9]+ tests?' "$out" && started=1
  rm -f "$out"
  if [ "$rc" -eq 0 ] || [ -n "$started" ]; then exit "$rc"; fi
  echo "wasm-test-runner: exited $rc before any test started (attempt $attempt of $ATTEMPTS)" >&2
done
exit 1
