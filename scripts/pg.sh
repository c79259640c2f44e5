#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the tests and the benchmark (Debian's
# `postgresql` package; scripts/setup.sh installs it).
#
#   bash scripts/pg.sh start DIR   initdb in DIR, start on a free 127.0.0.1 port (trust auth,
#                                  superuser `clientdata`, database `clientdata`), print its URL
#   bash scripts/pg.sh stop DIR    stop it (immediate: the data is thrown away anyway)
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.
# Callers remove DIR themselves after stop (e.g. in an EXIT trap).
set -euo pipefail

cmd="${1:-}"; dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2; exit 2
fi
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "pg.sh: PostgreSQL not installed (apt-get install postgresql; scripts/setup.sh does)" >&2
  exit 1
fi
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U clientdata -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    for attempt in 1 2 3 4 5 6 7 8; do
      port=$((20000 + RANDOM % 40000))
      # Taken if something answers there.
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
      if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
          -o "-p $port -k $dir -h 127.0.0.1 -c max_connections=300" start >/dev/null; then
        url="postgres://clientdata@127.0.0.1:$port/clientdata"
        as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U clientdata clientdata
        echo "$url" >"$dir/url"
        echo "$url"
        exit 0
      fi
      echo "pg.sh: start on port $port failed (attempt $attempt)" >&2
    done
    tail -20 "$dir/server.log" >&2 || true
    exit 1
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2; exit 2
    ;;
esac
