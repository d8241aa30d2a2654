#!/usr/bin/env bash
# What the request log (docs/requests-log.md) costs the trigger path: plain accepted triggers
# (no auth, no rules, workers paused) with the log on (--request-log 1000, the default) and off
# (--request-log 0), alternated ROUNDS times so that both see the same machine. Loopback only;
# bounded (2 x ROUNDS wrk runs of DURATION s); no root, no dockerd.
#
#   bench/log_cost.sh                 # ROUNDS=2 DURATION=5
#   ROUNDS=4 DURATION=10 bench/log_cost.sh
#
# Per run: requests/s (wrk -t2 -c50, the 300-byte body of bench/flood.lua), tripline's CPU time
# per request (all threads, from /proc), and the busiest thread's (the ingest writer's) CPU time per
# request. Throughput moves with whatever else runs on the machine; CPU per request much less.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/tripline}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh bench" >&2; exit 1; }
hz=$(getconf CLK_TCK)
. bench/flood_body.sh

run() {  # run NAME EXTRA_FLAGS...
  local name=$1; shift
  local work port admin base pid url
  work=$(mktemp -d /tmp/tl-logcost-XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  admin="bench-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  base=http://127.0.0.1:$port
  TRIPLINE_ADMIN_TOKEN=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work" \
    --docker-host unix:///nonexistent --http-threads 2 --workers 1 --log-level warn "$@" \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  api() { curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
  api -X POST "$base/api/v1/workers/pause" >/dev/null
  url=$(api -X POST "$base/api/v1/receivers?check_peer=false" -d '{"name":"p","driver":"scale-service",
    "config":{"service":"bench","action":"up","by":1,"min":0,"max":10000},
    "limits":{"rate_per_minute":1000000,"burst":1000000,"max_queued":1000000}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["trigger_url"])')
  ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
  threads() { for t in /proc/"$pid"/task/*; do echo "${t##*/} $(awk '{print $14+$15}' "$t/stat")"; done; }
  local c0 t0 c1 t1 out n rps
  c0=$(ticks); threads >"$work/t0"
  out=$(FLOOD_BODY=$(flood_body) wrk -t2 -c50 -d"${DURATION}s" -s bench/flood.lua "$url")
  c1=$(ticks); threads >"$work/t1"
  # The busiest thread over the run: the largest growth of one thread's CPU time.
  local busiest
  busiest=$(awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d > m) m = d } END { print m + 0 }' \
    "$work/t0" "$work/t1")
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
  n=$(echo "$out" | sed -n 's/.*RESULT requests=\([0-9]*\).*/\1/p')
  rps=$(echo "$out" | sed -n 's/.*rps=\([0-9.]*\).*/\1/p')
  awk -v name="$name" -v rps="$rps" -v n="$n" -v c="$((c1 - c0))" -v t="$busiest" -v hz="$hz" \
    'BEGIN { printf "%-8s %9.0f %12.1f %14.1f\n", name, rps, c / hz / n * 1e6, t / hz / n * 1e6 }'
}

printf '%-8s %9s %12s %14s\n' log req/s cpu_us/req writer_us/req
for _ in $(seq "$ROUNDS"); do
  run off --request-log 0
  run on --request-log 1000
done
