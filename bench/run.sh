#!/usr/bin/env bash
# Load test of the trigger path on loopback. Bounded: each wrk run lasts $DURATION seconds.
#
#   bench/run.sh                 # needs root (starts an isolated dockerd for the receiver's peer)
#   DURATION=10 CONNECTIONS=50 bench/run.sh
#
# Measures, against a real tripline with its real SQLite file (fsync on every commit):
#   1. accepted triggers: valid token -> durable insert -> 202. The workers are PAUSED for this run
#      (POST /api/v1/workers/pause, the operator's maintenance switch), so the executions pile up
#      queued and none runs; the script then checks that the database holds exactly one
#      execution per 202 that wrk counted.
#   2. rejected triggers: forged tokens -> 401.
#   3. trigger -> driver's first call: on a fresh server with workers running, N triggers one at a
#      time; the delay is started_at - created_at of each execution (ms resolution).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
BIN=${BIN:-build/tripline}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh bench" >&2; exit 1; }

work=$(mktemp -d /tmp/tl-bench-XXXXXX)
swarm="$work/swarm"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  tests/support/dockerd-harness.sh stop "$swarm" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

export "$(tests/support/dockerd-harness.sh start "$swarm" 2>"$work/harness.log")"
docker() { /usr/bin/docker -H "$DOCKER_HOST" "$@"; }
docker service create --detach --quiet --name bench --replicas 1 --no-resolve-image \
  --stop-grace-period 1s tripline-test/busybox:latest sleep 3600 >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin="bench-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_server() {  # $1 = data dir
  TRIPLINE_ADMIN_TOKEN=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$1" \
    --docker-host "$DOCKER_HOST" --log-level warn >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
api() { curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
create_receiver() {  # $1 name, $2 config json
  api -X POST "http://127.0.0.1:$port/api/v1/receivers" \
    -d "{\"name\":\"$1\",\"driver\":\"scale-service\",\"config\":$2}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["trigger_url"])'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), wrk on the same machine"
echo "wrk: $THREADS threads, $CONNECTIONS connections, ${DURATION}s per run"

start_server "$work/data1"
url=$(create_receiver ingest '{"service":"bench","action":"up","by":1,"min":0,"max":1000}')
api -X POST "http://127.0.0.1:$port/api/v1/workers/pause" >/dev/null

echo; echo "== 1. accepted triggers (durable, workers paused) =="
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/trigger.lua "$url" | tee "$work/accepted.txt"
sent=$(awk '/requests in/ {print $1}' "$work/accepted.txt")
non2xx=$(awk '/Non-2xx/ {print $5}' "$work/accepted.txt"); non2xx=${non2xx:-0}
stop_server
rows=$(sqlite3 "$work/data1/tripline.db" "select count(*) from executions")
echo "wrk completed $sent requests, $non2xx non-2xx; executions in the database: $rows"
# Requests still in flight when wrk stops were committed but not counted by wrk: at most one per
# connection. Fewer rows than 202s would mean an acknowledged trigger was lost.
accepted=$((sent - non2xx))
if [ "$rows" -lt "$accepted" ] || [ "$rows" -gt $((accepted + CONNECTIONS)) ]; then
  echo "MISMATCH: $accepted triggers answered 202 but $rows executions recorded" >&2; exit 1
fi

start_server "$work/data1"
# Change the signature's FIRST character, so every forged token costs a full HMAC check (a
# changed last character can make the encoding non-canonical, a cheaper rejection).
sig_start=$(( ${#url} - 43 ))
first=${url:$sig_start:1}
[ "$first" = A ] && repl=B || repl=A
forged="${url:0:$sig_start}${repl}${url:$((sig_start + 1))}"
echo; echo "== 2. rejected triggers (forged signature) =="
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/trigger.lua "$forged" | tee "$work/rejected.txt"
stop_server

echo; echo "== 3. trigger -> driver's first call (workers running, one trigger at a time) =="
start_server "$work/data2"
url=$(create_receiver latency '{"service":"bench","action":"set","replicas":1,"max":1}')
N=${N:-100}
# Spaced so each execution finds an idle worker: this measures the wake-up, not a queue.
for _ in $(seq "$N"); do curl -sf -X POST "$url" >/dev/null; sleep 0.05; done
sleep 1
stop_server
sqlite3 "$work/data2/tripline.db" \
  "select started_at - created_at from executions where started_at is not null order by 1" |
  python3 -c '
import sys
d = sorted(int(x) for x in sys.stdin.read().split())
if not d: sys.exit("no executions started")
p = lambda q: d[min(len(d) - 1, int(q * len(d)))]
print(f"{len(d)} executions: delay from acceptance (before the durable commit) to the driver call: "
      f"p50 {p(0.5)} ms, p90 {p(0.9)} ms, p99 {p(0.99)} ms, max {d[-1]} ms")'
