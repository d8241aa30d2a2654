#!/usr/bin/env bash
# Growth with receivers: a real tripline over a store holding N receivers. Loopback only, bounded
# (a few seconds of wrk per N; start-up waits at most START_TIMEOUT seconds).
#
#   bench/receivers.sh                      # N = 10000 and 100000
#   RECEIVERS="20000" DURATION=5 bench/receivers.sh
#
# For each N: the receivers are inserted straight into the SQLite store (build/bench_seed_receivers:
# dns-update receivers of the externaldns-webhook backend, rows shaped as the API stores them),
# then the real binary starts on that store and the script prints
#   start-up     seconds from exec until /healthz answers (the receivers are loaded before it serves)
#   RSS          of the server once started, and after the API calls below
#   create/edit  POST and PUT /api/v1/receivers latency, p50/p99 over CALLS calls each (the
#                provider check of a save goes to a small fake ExternalDNS provider on loopback)
#   list         GET /api/v1/receivers?limit=50 at the first, middle and last page
#   trigger      wrk against one receiver's trigger URL for DURATION seconds, workers paused (a
#                receiver without rate limit and queue cap: every trigger is a durable insert)
# Needs no root and no dockerd. Targets at 100,000: start-up < 5 s, RSS < 300 MB, create/edit
# < 20 ms, list page < 50 ms, trigger p99 as with few receivers.
set -euo pipefail
cd "$(dirname "$0")/.."
RECEIVERS=${RECEIVERS:-"10000 100000"}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
CALLS=${CALLS:-50}
START_TIMEOUT=${START_TIMEOUT:-120}
BUILD=${BUILD:-build}
BIN=${BIN:-$BUILD/tripline}
SEED=${SEED:-$BUILD/bench_seed_receivers}
for b in "$BIN" "$SEED"; do [ -x "$b" ] || { echo "build first: make build ($b missing)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh bench" >&2; exit 1; }

work=$(mktemp -d /tmp/tl-bench-receivers-XXXXXX)
pid="" provider=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$provider" ] && kill "$provider" 2>/dev/null && wait "$provider" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The ExternalDNS webhook provider's negotiation (GET /), which saving a receiver checks.
pport=$(free_port)
python3 - "$pport" <<'PY' >"$work/provider.log" 2>&1 &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"include":["example.org"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/external.dns.webhook+json;version=1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
provider=$!
provider_url="http://127.0.0.1:$pport"

admin="bench-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$(free_port)
base="http://127.0.0.1:$port"
api() { curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
# Prints p50, p99 and max of the seconds on stdin, in ms.
stats() {
  python3 -c '
import sys
d = sorted(float(x) * 1000 for x in sys.stdin.read().split())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))]
print(f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {d[-1]:.1f} ms ({len(d)} calls)")'
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }  # ms -> seconds
rss_mb() { awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$1/status"; }
config() {  # $1 record name, $2 value
  echo "{\"backend\":\"externaldns-webhook\",\"provider_url\":\"$provider_url\",\"record\":{\"name\":\"$1\",\"type\":\"A\",\"ttl\":60},\"action\":\"upsert\",\"value\":\"$2\"}"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GB; wrk on the same machine"
for n in $RECEIVERS; do
  data="$work/data-$n"
  mkdir -p "$data"
  echo; echo "== $n receivers =="
  t=$(now_ms)
  "$SEED" "$data/tripline.db" "$n" "$provider_url"
  echo "seeded the store in $(secs $(($(now_ms) - t))) s"

  t0=$(now_ms)
  TRIPLINE_ADMIN_TOKEN=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" \
    --docker-host "unix://$work/no-docker.sock" >"$work/server-$n.log" 2>&1 &
  pid=$!
  until curl -sf "$base/healthz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "server exited" >&2; cat "$work/server-$n.log" >&2; exit 1; }
    [ $(($(now_ms) - t0)) -gt $((START_TIMEOUT * 1000)) ] &&
      { echo "server did not start in ${START_TIMEOUT}s" >&2; exit 1; }
    sleep 0.02
  done
  echo "start-up: $(secs $(($(now_ms) - t0))) s to serving; $(grep -m1 '"receivers loaded"' "$work/server-$n.log" |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print("loading the receivers: %s ms (reading %s ms, reading and building %s ms)" % (j["ms"], j["read_ms"], j["read_and_build_ms"]))')"
  echo "RSS after start: $(rss_mb "$pid")"

  api -X POST "$base/api/v1/workers/pause" >/dev/null
  for i in $(seq "$CALLS"); do
    api -o /dev/null -w '%{time_total}\n' -X POST "$base/api/v1/receivers" \
      -d "{\"name\":\"new-$i\",\"driver\":\"dns-update\",\"config\":$(config "new-$i.example.org" 192.0.2.1)}"
  done | { printf 'create: '; stats; }
  for i in $(seq "$CALLS"); do
    api -o /dev/null -w '%{time_total}\n' -X PUT "$base/api/v1/receivers/$i" \
      -d "{\"name\":\"bench-$((i - 1))\",\"config\":$(config "bench-$((i - 1)).bench.example.org" 192.0.2.200)}"
  done | { printf 'edit:   '; stats; }
  for offset in 0 $((n / 2)) $((n - 50)); do
    for _ in $(seq 10); do
      api -o /dev/null -w '%{time_total}\n' "$base/api/v1/receivers?limit=50&offset=$offset"
    done | { printf 'list page at offset %s: ' "$offset"; stats; }
  done
  echo "RSS after the API calls: $(rss_mb "$pid")"

  # A receiver without a rate limit or queue cap (both on by default), so that every trigger
  # goes the whole way to the durable insert and the 202.
  url=$(api -X POST "$base/api/v1/receivers" -d "{\"name\":\"trigger-bench\",\"driver\":\"dns-update\",\"config\":$(config trigger.example.org 192.0.2.1),\"limits\":{\"rate_per_minute\":0,\"max_queued\":0}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["trigger_url"])')
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/trigger.lua "$url" >"$work/wrk-$n.txt"
  awk '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$5}
       END {printf "trigger (wrk %ss, %s connections): %s req/s, p50 %s, p99 %s, non-2xx %s\n",
            "'"$DURATION"'", "'"$CONNECTIONS"'", rps, p50, p99, bad ? bad : 0}' "$work/wrk-$n.txt"

  t=$(now_ms)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "stop: $(secs $(($(now_ms) - t))) s"
  rm -rf "$data"
done
