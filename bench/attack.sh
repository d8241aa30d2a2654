#!/usr/bin/env bash
# Performance under attack: do valid triggers still get through, fast, while the trigger path is
# flooded with forged tokens? Loopback only; bounded (about 2 x DURATION + 15 s); stops by itself
# and cleans up (server, isolated dockerd, temporary files).
#
#   bench/attack.sh                          # needs root (isolated dockerd for the receiver's peer)
#   DURATION=20 FLOOD_CONNECTIONS=100 bench/attack.sh
#
# Against a real tripline (its real SQLite file, fsync on every commit; workers PAUSED, as in
# bench/run.sh, so the accepted executions pile up queued and nothing reaches the swarm):
#   1. baseline: valid triggers alone, VALID_CONNECTIONS paced connections (each waits
#      VALID_DELAY_MS between requests), DURATION seconds;
#   2. under attack: the same valid load, while another wrk floods the same trigger path with a
#      forged token (signature changed) at full speed over FLOOD_CONNECTIONS connections. The
#      flood starts 1 s before and ends 1 s after the valid run, so it covers all of it.
# Reports both wrks' requests/s and latency percentiles, the server's own counters (/metrics),
# and checks: every valid request answered 202 (no errors, no timeouts), the flood got only 401s,
# the database holds one execution per 202 (plus at most one per connection in flight at the
# end), and the valid p99 under attack is below P99_LIMIT_MS (default 50). Exit 1 otherwise.
#
# wrk is closed-loop: a stalled server also slows the valid client down instead of piling up
# late requests, so compare the valid requests/s of the two runs as well as the percentiles.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
FLOOD_THREADS=${FLOOD_THREADS:-1}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-64}
VALID_CONNECTIONS=${VALID_CONNECTIONS:-4}
VALID_DELAY_MS=${VALID_DELAY_MS:-10}
P99_LIMIT_MS=${P99_LIMIT_MS:-50}
HTTP_THREADS=${HTTP_THREADS:-2}
BIN=${BIN:-build/tripline}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh bench" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 missing: apt-get install sqlite3" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (the isolated dockerd)" >&2; exit 1; }

work=$(mktemp -d /tmp/tl-attack-XXXXXX)
swarm="$work/swarm"
pid=""
flood_pid=""
cleanup() {
  [ -n "$flood_pid" ] && kill "$flood_pid" 2>/dev/null && wait "$flood_pid" 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  tests/support/dockerd-harness.sh stop "$swarm" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

export "$(tests/support/dockerd-harness.sh start "$swarm" 2>"$work/harness.log")"
/usr/bin/docker -H "$DOCKER_HOST" service create --detach --quiet --name attack --replicas 1 \
  --no-resolve-image --stop-grace-period 1s tripline-test/busybox:latest sleep 3600 >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin="attack-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TRIPLINE_ADMIN_TOKEN=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --docker-host "$DOCKER_HOST" --http-threads "$HTTP_THREADS" --log-level warn \
  >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/healthz" >/dev/null || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
api() { curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
url=$(api -X POST "$base/api/v1/receivers" \
  -d '{"name":"attacked","driver":"scale-service","config":{"service":"attack","action":"up","by":1,"min":0,"max":1000}}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["trigger_url"])')
api -X POST "$base/api/v1/workers/pause" >/dev/null
# The forged token: the real one with the first signature character changed (right shape, right
# key id, a well-formed but wrong signature: the most expensive kind to refuse, a full HMAC check
# each). Not the last character: its low 2 bits are padding that must be zero, so most changes
# there only make the token malformed (refused before any HMAC).
sig=${url##*.}
forged="${url%.*}.$([ "${sig:0:1}" = A ] && echo B || echo A)${sig:1}"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$forged")" = 401 ] || { echo "forged URL not refused" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url")" = 202 ] || { echo "valid URL not accepted" >&2; exit 1; }

valid_cmd="ATTACK_DELAY_MS=$VALID_DELAY_MS wrk -t1 -c$VALID_CONNECTIONS -d${DURATION}s --timeout 10s --latency -s bench/attack.lua VALID_URL"
flood_cmd="wrk -t$FLOOD_THREADS -c$FLOOD_CONNECTIONS -d$((DURATION + 2))s --timeout 10s --latency -s bench/attack.lua FORGED_URL"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg); server, wrks and dockerd share it"
echo "server: $BIN serve --http-threads $HTTP_THREADS --log-level warn (workers paused; fsync per commit)"
echo "valid:  $valid_cmd"
echo "flood:  $flood_cmd"

run_valid() {  # $1 = output file
  ATTACK_DELAY_MS=$VALID_DELAY_MS wrk -t1 -c"$VALID_CONNECTIONS" -d"${DURATION}s" --timeout 10s \
    --latency -s bench/attack.lua "$url" >"$1"
}
metric() { curl -s "$base/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

echo; echo "== 1. baseline: valid triggers alone (${DURATION}s) =="
run_valid "$work/baseline.txt"
grep -E 'Latency|Req/Sec|^ +(50|75|90|99)%|requests in|Requests/sec|Non-2xx' "$work/baseline.txt" | sed 's/^/  /'
grep RESULT "$work/baseline.txt"

echo; echo "== 2. under attack: forged-token flood (-c$FLOOD_CONNECTIONS) + the same valid load =="
rejected_before=$(metric 'tripline_triggers_rejected_total{reason="bad_signature"}')
wrk -t"$FLOOD_THREADS" -c"$FLOOD_CONNECTIONS" -d"$((DURATION + 2))s" --timeout 10s --latency \
  -s bench/attack.lua "$forged" >"$work/flood.txt" &
flood_pid=$!
sleep 1
run_valid "$work/valid.txt"
wait "$flood_pid"
flood_pid=""
rejected_after=$(metric 'tripline_triggers_rejected_total{reason="bad_signature"}')
echo "-- forged flood:"
grep -E 'Latency|Req/Sec|^ +(50|75|90|99)%|requests in|Requests/sec|Non-2xx' "$work/flood.txt" | sed 's/^/  /'
grep RESULT "$work/flood.txt"
echo "-- valid triggers during the flood:"
grep -E 'Latency|Req/Sec|^ +(50|75|90|99)%|requests in|Requests/sec|Non-2xx' "$work/valid.txt" | sed 's/^/  /'
grep RESULT "$work/valid.txt"
accepted_metric=$(metric tripline_triggers_accepted_total)

kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
rows=$(sqlite3 "$work/data/tripline.db" "select count(*) from executions")

field() { grep RESULT "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
fail=0
check() {  # $1 = description, $2 = condition (python expression)
  if python3 -c "import sys; sys.exit(0 if ($2) else 1)"; then echo "ok:   $1"; else echo "FAIL: $1"; fail=1; fi
}
b_req=$(field "$work/baseline.txt" requests); v_req=$(field "$work/valid.txt" requests)
f_req=$(field "$work/flood.txt" requests)
rejected=$((rejected_after - rejected_before))
echo; echo "== summary =="
printf '%-28s %10s %10s %9s %9s %9s %9s\n' run requests req/s p50_ms p90_ms p99_ms max_ms
for r in baseline:baseline valid:valid-under-attack flood:forged-flood; do
  f="$work/${r%%:*}.txt"
  printf '%-28s %10s %10s %9s %9s %9s %9s\n' "${r#*:}" "$(field "$f" requests)" "$(field "$f" rps)" \
    "$(field "$f" p50_ms)" "$(field "$f" p90_ms)" "$(field "$f" p99_ms)" "$(field "$f" max_ms)"
done
echo "server: $rejected forged triggers refused (bad_signature) during the flood; $accepted_metric accepted in all; $rows executions in the database"
echo
for f in baseline valid; do
  check "$f: every valid request answered 202, no socket errors or timeouts" \
    "$(field "$work/$f.txt" non2xx) + $(field "$work/$f.txt" connect_errors) + $(field "$work/$f.txt" read_errors) + $(field "$work/$f.txt" write_errors) + $(field "$work/$f.txt" timeouts) == 0"
done
check "flood: every forged request refused with 401 (server counted $rejected of the $f_req wrk completed)" \
  "$(field "$work/flood.txt" non2xx) == $f_req and $rejected >= $f_req and $(field "$work/flood.txt" timeouts) == 0"
# +1: the curl check above; up to one request per valid connection can be cut off at wrk's end.
check "database: $rows executions for $((b_req + v_req + 1)) valid 202s counted (+ at most $((2 * VALID_CONNECTIONS)) in flight)" \
  "$b_req + $v_req + 1 <= $rows <= $b_req + $v_req + 1 + 2 * $VALID_CONNECTIONS"
check "valid p99 under attack $(field "$work/valid.txt" p99_ms) ms < $P99_LIMIT_MS ms" \
  "$(field "$work/valid.txt" p99_ms) < $P99_LIMIT_MS"
exit $fail
