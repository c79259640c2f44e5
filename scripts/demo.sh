#!/usr/bin/env bash
# Sets everything up and runs the main job: the reference server on its embedded SQLite default
# serving the demo page (www/) and the package (pkg/), a headless walkthrough of two devices
# syncing through it, then the server keeps running for you at the printed URL.
#   bash scripts/demo.sh            build, start, walk through, keep serving (Ctrl-C stops)
#   bash scripts/demo.sh --check    the same, but stop after the walkthrough
set -euo pipefail
cd "$(dirname "$0")/.."
LISTEN="${CLIENTDATA_LISTEN:-127.0.0.1:8787}"

bash scripts/setup.sh
bash scripts/build-pkg.sh
echo "== demo: building the reference server"
cargo build --profile server -p clientdata-server --quiet

mkdir -p demo-data
echo "== demo: starting the server (SQLite at demo-data/clientdata.sqlite)"
target/server/clientdata-server --listen "$LISTEN" --database demo-data/clientdata.sqlite \
  --static www --static /pkg=pkg > demo-data/server.out 2> demo-data/server.log &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  url=$(grep -o 'http://[^ ]*' demo-data/server.out 2>/dev/null | head -1 || true)
  [ -n "$url" ] && break
  kill -0 $server 2>/dev/null || { cat demo-data/server.log; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "server did not start"; cat demo-data/server.log; exit 1; }

echo "== demo: two devices syncing (headless Chromium)"
node e2e/walkthrough.mjs "$url"

if [ "${1:-}" = "--check" ]; then
  exit 0
fi
echo
echo "== demo: open $url/ in a browser (device A in two tabs, device B); Ctrl-C stops the server"
wait $server
