#!/usr/bin/env bash
# Installs everything a fresh machine lacks to build and test clientdata. Idempotent: every step
# is skipped when what it installs is already there at the right version.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== setup: %s\n' "$*"; }

# The wasm-bindgen CLI must equal the crate version in Cargo.lock exactly.
bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

log "rust components"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

log "debian packages (chromium, chromedriver, firefox-esr, WebKitGTK's driver, xvfb, postgresql, sqlite3)"
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
# The browser tier also runs in Firefox and WebKit (scripts/browser-tier.sh): WebKitWebDriver
# drives WebKitGTK's MiniBrowser, which needs a display (xvfb-run).
command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)
command -v WebKitWebDriver >/dev/null || need_apt+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null || need_apt+=(xvfb)
# The server's PostgreSQL backend is tested on a throwaway cluster (scripts/pg.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The encryption e2e test reads and tampers with the server's SQLite file (sqlite3 CLI).
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
# schemathesis (scripts/schemathesis.sh) lives in a virtualenv under tools/.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

want=$(bindgen_version)
log "wasm-bindgen-cli $want"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
  # --locked first for reproducibility; its lock file names a webpki-roots release the registry
  # no longer serves for some versions, and then a fresh resolve of the same version is used.
  cargo install wasm-bindgen-cli --version "$want" --locked || cargo install wasm-bindgen-cli --version "$want"
fi

log "geckodriver (Firefox's WebDriver, from crates.io)"
command -v geckodriver >/dev/null || cargo install geckodriver --locked || cargo install geckodriver

log "wasm-pack"
command -v wasm-pack >/dev/null || cargo install wasm-pack --locked || cargo install wasm-pack
# twiggy: the package size check names the biggest contributors (scripts/size-check.sh).
command -v twiggy >/dev/null || cargo install twiggy --locked || cargo install twiggy

# Pinned: scripts/schemathesis.sh checks the live server against docs/openapi.json.
SCHEMATHESIS_VERSION=4.32.5
log "schemathesis $SCHEMATHESIS_VERSION (PyPI, tools/.venv)"
if [ "$(tools/.venv/bin/st --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  python3 -m venv tools/.venv
  tools/.venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

log "npm dev dependencies"
for dir in tools e2e e2e/bundler bench; do
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

log "done"
