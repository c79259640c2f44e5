#!/usr/bin/env bash
# Runs schemathesis (pinned, installed into tools/.venv by scripts/setup.sh) against the live
# reference server on loopback (SQLite in a temp dir), driven by docs/openapi.json: every
# response must conform to the document (status, content type, headers, schema) and none may be
# a 5xx, schema-invalid bodies must be refused. Bounded: SCHEMATHESIS_EXAMPLES per operation
# (default 100) and SCHEMATHESIS_SECS of generation (default 45; about 55 s in all).
# positive_data_acceptance is left out: the protocol has rules JSON Schema cannot state (stamps
# at most 60 s ahead of the server's clock, pushes in ascending HLC order, JSON text in `json`),
# so a schema-valid body may rightly get a 400 (docs/openapi.json says which). Expects the server binary built (--profile server); builds it if not.
set -euo pipefail
cd "$(dirname "$0")/.."

ST=tools/.venv/bin/st
[ -x "$ST" ] || { echo "schemathesis missing: run scripts/setup.sh" >&2; exit 1; }
BIN=target/server/clientdata-server
[ -x "$BIN" ] || cargo build --profile server -p clientdata-server --bins

DIR="$(mktemp -d /tmp/clientdata-st.XXXXXX)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT

printf 'token-st-0123456789 st\n' > "$DIR/tokens"
mkfifo "$DIR/out"
"$BIN" --listen 127.0.0.1:0 --database "$DIR/st.sqlite" --tokens "$DIR/tokens" \
  >"$DIR/out" 2>"$DIR/server.log" &
SERVER_PID=$!
read -r first < "$DIR/out"
BASE="${first#listening on }"
case "$BASE" in http://127.0.0.1:*) ;; *) echo "server did not start: $first" >&2; cat "$DIR/server.log" >&2; exit 1 ;; esac
cat "$DIR/out" > /dev/null &

EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"
SECS="${SCHEMATHESIS_SECS:-45}"
SEED="${SCHEMATHESIS_SEED:-$RANDOM}"
echo "schemathesis $("$ST" --version | awk '{print $NF}') against $BASE: at most $EXAMPLES examples per operation, ${SECS} s, seed $SEED"
status=0
# From the temp dir: hypothesis and schemathesis leave caches in the working directory.
SPEC="$PWD/docs/openapi.json"
ST="$PWD/$ST"
(cd "$DIR" && timeout $((SECS + 60)) "$ST" run "$SPEC" --url "$BASE" \
  -H "Authorization: Bearer token-st-0123456789" \
  --checks all --exclude-checks positive_data_acceptance --max-examples "$EXAMPLES" --max-time "$SECS" --seed "$SEED" \
  --workers 1 --no-color --generation-database none \
  --report ndjson --report-dir "$DIR/report" "$@") || status=$?
# A 5xx is logged as an error with its cause (schemathesis' not_a_server_error sees the answer).
if grep -q 'ERROR' "$DIR/server.log"; then
  echo "the server logged errors:" >&2; grep 'ERROR' "$DIR/server.log" | head >&2; status=1
fi
exit $status
