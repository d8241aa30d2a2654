#!/usr/bin/env bash
# Flood benchmark of the trigger path, as ratios to nginx measured in the same run. What
# `make bench` runs. Loopback only; bounded (8 wrk runs of DURATION s, plus about 20 s of set-up);
# stops by itself and cleans up (nginx, tripline, the isolated dockerd, temporary files).
#
#   bench/flood.sh                      # needs root (isolated dockerd), Debian's nginx, wrk
#   DURATION=20 bench/flood.sh
#   SERVER_ARGS="--request-log 0" bench/flood.sh   # extra flags for tripline serve
#   PERF_DIR=/tmp/p bench/flood.sh     # also a perf profile of tripline per run (PERF_DIR/NAME.data;
#                                      # PERF_CALLGRAPH="--call-graph dwarf" for stacks through libraries)
#
# The machine is shared (wrk, nginx, tripline, dockerd on the same cores), so absolute figures
# move with whatever else runs (other builds and tests, by the minute): each tripline run is
# paired with an nginx `return 204` run just before it, and the ratio within the pair is what to
# compare between runs. Every run: wrk -t$THREADS -c$CONNECTIONS, DURATION s, the same
# 300-byte JSON body (bench/flood.lua):
#   nginx     (before each of the others) Debian's nginx on a free loopback port, own prefix and config in a temp dir,
#             daemon off, access_log off, `return 204`, worker_processes = tripline's
#             --http-threads (HTTP_THREADS, 2): the same number of event loops
#   plain     tripline, a receiver with no auth and no rules, workers paused (nothing runs)
#   signed    a receiver requiring a GitHub signature (X-Hub-Signature-256 over the body, each
#             request a different body and signature, so none is a replay) and one rule
#             (body:/action equals "bench", header X-GitHub-Event equals "push"; default ignore)
#   forged    the plain receiver's token with its signature's first character changed (401)
#   swarm     a fresh server with workers running, a receiver scaling a real swarm service up by
#             1 with max 1 (the service sits at its bound: every execution reads the service from
#             dockerd and changes nothing), while the flood is accepted
# Every receiver gets limits raised explicitly so that nothing is refused (LIMITS below; the
# server's defaults would refuse most of a flood). After each run: tripline's RSS. The plain and
# signed runs are checked for durability (one row per 202, as bench/run.sh does), the forged run
# for 401 only, the swarm run for one row per 202 too.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
HTTP_THREADS=${HTTP_THREADS:-2}
WORKERS=${WORKERS:-4}
BIN=${BIN:-build/tripline}
NGINX=${NGINX:-/usr/sbin/nginx}
LIMITS='{"rate_per_minute":1000000,"burst":1000000,"max_queued":1000000}'
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh bench" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 missing: scripts/install-deps.sh bench" >&2; exit 1; }
[ -x "$NGINX" ] || { echo "nginx missing: apt-get install nginx-light" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (the isolated dockerd)" >&2; exit 1; }

work=$(mktemp -d /tmp/tl-flood-XXXXXX)
chmod 755 "$work"
swarm="$work/swarm"
pid=""
nginx_pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  tests/support/dockerd-harness.sh stop "$swarm" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The body: 300 bytes of JSON, and for the signed run a signature per request (flood_body.sh).
. bench/flood_body.sh
template=$(flood_template)
export FLOOD_BODY
FLOOD_BODY=$(printf "$template" 0)
[ "${#FLOOD_BODY}" -eq 300 ] || { echo "body is ${#FLOOD_BODY} bytes, not 300" >&2; exit 1; }
gh_secret="bench-github-secret-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# Enough signatures for 80k requests/s over the run (twice what this machine serves: wrk's two
# threads take them interleaved and need not send as many each); past its share of the table a
# thread would send replays, which the durability check below reports.
SIGNED_COUNT=${SIGNED_COUNT:-$((80000 * DURATION))}
flood_signatures "$gh_secret" "$template" "$SIGNED_COUNT" >"$work/sigs"

export "$(tests/support/dockerd-harness.sh start "$swarm" 2>"$work/harness.log")"
/usr/bin/docker -H "$DOCKER_HOST" service create --detach --quiet --name bench --replicas 1 \
  --no-resolve-image --stop-grace-period 1s tripline-test/busybox:latest sleep 3600 >/dev/null

# nginx: the ceiling. worker_processes = tripline's HTTP event loops.
nginx_port=$(free_port)
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $HTTP_THREADS;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 204; }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx/stdout.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 50); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$nginx_port/")" = 204 ] && break
  sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$nginx_port/")" = 204 ] ||
  { echo "nginx did not start" >&2; cat "$work/nginx/logs/error.log" >&2; exit 1; }

port=$(free_port)
base="http://127.0.0.1:$port"
admin="flood-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_server() {  # $1 = data dir
  TRIPLINE_ADMIN_TOKEN=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$1" \
    --docker-host "$DOCKER_HOST" --http-threads "$HTTP_THREADS" --workers "$WORKERS" \
    --log-level warn ${SERVER_ARGS:-} >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
api() { curl -s -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
# $1 name, $2 config, $3 extra fields (JSON object members, may be empty). Prints "id url".
# Limits: with max_queued when the server knows it, else without (an older server).
create_receiver() {
  local extra=${3:+,$3} out
  for limits in "$LIMITS" "$(echo "$LIMITS" | sed 's/,"max_queued":[0-9]*//')"; do
    out=$(api -X POST "$base/api/v1/receivers" \
      -d "{\"name\":\"$1\",\"driver\":\"scale-service\",\"config\":$2,\"limits\":$limits$extra}")
    if echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["id"], r["trigger_url"])' 2>/dev/null; then
      return
    fi
  done
  echo "could not create receiver $1: $out" >&2; exit 1
}
CLK=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }  # user nice system irq softirq
cpu_own() { [ -n "$pid" ] && awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0; }
# Bytes tripline sent to the disk (page cache dirtied for its files: the WAL, the database).
disk_own() { [ -n "$pid" ] && awk '/^write_bytes/ {print $2}' "/proc/$pid/io" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

results="$work/results"
: >"$results"
: >"$work/syncs"
wrk_run() {  # $1 = run name, $2 = URL, then env assignments for wrk
  local name=$1 url=$2; shift 2
  local busy0 own0 busy1 own1 disk0 disk1
  busy0=$(cpu_busy) own0=$(cpu_own) disk0=$(disk_own)
  env "$@" FLOOD_THREADS="$THREADS" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
    --latency -s bench/flood.lua "$url" >"$work/$name.txt"
  busy1=$(cpu_busy) own1=$(cpu_own) disk1=$(disk_own)
  local rss=-
  [ -n "$pid" ] && [ "${name%-nginx}" = "$name" ] && rss=$(rss_kb)
  # CPU seconds over the run: the whole machine's busy time, and tripline's own share of it.
  local cpu
  cpu=$(awk -v b="$((busy1 - busy0))" -v o="$((own1 - own0))" -v c="$CLK" \
    'BEGIN {printf "cpu_busy_s=%.1f cpu_tripline_s=%.1f", b / c, o / c}')
  cpu="$cpu disk_bytes=$((disk1 - disk0))"
  echo "$name $(grep RESULT "$work/$name.txt" | cut -d' ' -f2-) rss_kb=$rss $cpu" >>"$results"
  echo "  $name: $(grep RESULT "$work/$name.txt" | cut -d' ' -f2-) rss_kb=$rss $cpu"
}
# Each tripline run is paired with an nginx run just before it: on a shared machine the ceiling
# moves by the minute, and the ratio is taken within the pair.
run() {
  # The same requests as the tripline run (for the signed run, the same signed bodies through the
  # same wrk script), so that wrk's own work is the same on both sides of the pair.
  wrk_run "$1-nginx" "http://127.0.0.1:$nginx_port/" "${@:3}"
  local perf_pid=""
  if [ -n "${PERF_DIR:-}" ]; then
    perf record -q ${PERF_CALLGRAPH:--g} -F 499 -p "$pid" -o "$PERF_DIR/$1.data" -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  # How many times tripline waited for the disk during the run (a structural figure that the
  # machine's load does not move): fdatasync/fsync system calls, counted by tracepoint.
  local sync_pid=""
  if command -v perf >/dev/null; then
    perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$pid" \
      -o "$work/$1.syncs" -- sleep "$DURATION" >/dev/null 2>&1 &
    sync_pid=$!
  fi
  wrk_run "$@"
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  if [ -n "$sync_pid" ] && wait "$sync_pid"; then
    echo "$1 $(awk -F, '/sys_enter_f/ {s += $1} END {print s + 0}' "$work/$1.syncs")" >>"$work/syncs"
  fi
}
field() { awk -v n="$1" '$1 == n' "$results" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

# The disk's own pace: a trigger is answered only after its commit's fdatasync, and wrk keeps
# CONNECTIONS requests in flight, so no durable server answers more than about CONNECTIONS per
# sync latency (every commit carries at most the requests that waited for it).
sync_ms=$(python3 - "$work" <<'EOF'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "sync.probe"), os.O_WRONLY | os.O_CREAT)
os.write(fd, b"x" * 4096 * 200); os.fsync(fd)
t = time.monotonic()
for i in range(200):
    os.pwrite(fd, b"y" * 4096, 4096 * i); os.fdatasync(fd)
print(f"{(time.monotonic() - t) / 200 * 1000:.2f}")
EOF
)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, 300-byte JSON body; nginx worker_processes $HTTP_THREADS; tripline --http-threads $HTTP_THREADS --workers $WORKERS"
echo "receivers' limits: $LIMITS (max_queued only where the server knows it)"
echo "disk: one 4 KiB write + fdatasync takes $sync_ms ms on $work's filesystem: a durable accept ceiling of about $(python3 -c "print(round($CONNECTIONS / $sync_ms * 1000))") req/s at $CONNECTIONS connections"

echo; echo "== runs (each tripline run right after its own nginx run) =="

start_server "$work/data1"
read -r plain_id plain_url < <(create_receiver plain '{"service":"bench","action":"up","by":1,"min":0,"max":10000}')
rule=${RULE:-'"rules":{"default":"ignore","rules":[{"then":"run","when":{"all":[{"field":"body:/action","value":"bench"},{"field":"header:X-GitHub-Event","value":"push"}]}}]}'}
read -r signed_id signed_url < <(create_receiver signed '{"service":"bench","action":"up","by":1,"min":0,"max":10000}' \
  "\"auth\":{\"github_secret\":\"$gh_secret\"},$rule")
api -X POST "$base/api/v1/workers/pause" >/dev/null
sig=${plain_url##*.}
forged="${plain_url%.*}.$([ "${sig:0:1}" = A ] && echo B || echo A)${sig:1}"
# One of each by hand first: the receivers answer what the runs expect.
# The signed check uses the table's last entry, which the flood does not reach.
sig_last=$(tail -1 "$work/sigs")
body_last=$(printf "$template" $((SIGNED_COUNT - 1)))
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$FLOOD_BODY" "$plain_url")" = 202 ] || { echo "plain receiver does not answer 202" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$FLOOD_BODY" "$forged")" = 401 ] || { echo "forged token not refused" >&2; exit 1; }
signed_check=$(curl -s -w ' %{http_code}' -X POST -H "X-Hub-Signature-256: sha256=$sig_last" -H 'X-GitHub-Event: push' \
  -H 'Content-Type: application/json' --data-binary "$body_last" "$signed_url")
[ "${signed_check##* }" = 202 ] || { echo "signed receiver does not answer 202: $signed_check" >&2; exit 1; }

run plain "$plain_url"
run signed "$signed_url" FLOOD_SIGS="$work/sigs" FLOOD_TEMPLATE="$template"
run forged "$forged"
stop_server
rows_plain=$(sqlite3 "$work/data1/tripline.db" "select count(*) from executions where receiver_id = $plain_id")
rows_signed=$(sqlite3 "$work/data1/tripline.db" "select count(*) from executions where receiver_id = $signed_id")

start_server "$work/data2"
read -r swarm_id swarm_url < <(create_receiver swarm '{"service":"bench","action":"up","by":1,"min":0,"max":1}')
run swarm "$swarm_url"
executed=$(curl -s "$base/metrics" | awk '/^tripline_executions_total/ {s += $2} END {print s + 0}')
stop_server
rows_swarm=$(sqlite3 "$work/data2/tripline.db" "select count(*) from executions where receiver_id = $swarm_id")
finished_swarm=$(sqlite3 "$work/data2/tripline.db" "select count(*) from executions where receiver_id = $swarm_id and status in ('succeeded','failed')")
# Executions planned together share one apply (server/engine/executor.h): the others name it.
applies_swarm=$(sqlite3 "$work/data2/tripline.db" "select count(*) from executions where receiver_id = $swarm_id and status = 'succeeded' and json_extract(result, '\$.applied_with') is null")

echo; echo "== results (ratio: req/s over the paired nginx run's; RSS of tripline after the run) =="
printf '%-8s %10s %10s %7s %9s %9s %9s %10s %8s\n' run req/s nginx_req/s ratio p50_ms p99_ms nginx_p99 non2xx rss_MiB
for r in plain signed forged swarm; do
  rss=$(field $r rss_kb)
  printf '%-8s %10s %10s %7s %9s %9s %9s %10s %8s\n' "$r" "$(field $r rps)" "$(field $r-nginx rps)" \
    "$(python3 -c "print(f'{$(field $r rps) / $(field $r-nginx rps):.2f}')")" "$(field $r p50_ms)" "$(field $r p99_ms)" \
    "$(field $r-nginx p99_ms)" "$(field $r non2xx)" "$((rss / 1024))"
done
echo "swarm run: $finished_swarm of $rows_swarm executions finished by the server's stop (workers drain into dockerd), in $applies_swarm applies"
if [ -s "$work/syncs" ]; then
  echo "disk waits (fdatasync + fsync calls by tripline) per 1000 requests: $(while read -r r n; do
    printf '%s %s  ' "$r" "$(python3 -c "print(f'{$n * 1000 / max(1, $(field "$r" requests)):.1f}')")"; done <"$work/syncs")"
fi
echo "bytes written to disk by tripline per request: $(for r in plain signed swarm; do printf '%s %s  ' $r "$(python3 -c "print(round($(field $r disk_bytes) / max(1, $(field $r requests))))")"; done)"
echo "CPU seconds over each run (machine busy / tripline): $(for r in plain signed forged swarm; do printf '%s %s/%s  ' $r "$(field $r cpu_busy_s)" "$(field $r cpu_tripline_s)"; done)"

fail=0
check() {  # $1 = description, $2 = condition (python expression)
  if python3 -c "import sys; sys.exit(0 if ($2) else 1)"; then echo "ok:   $1"; else echo "FAIL: $1"; fail=1; fi
}
errors() { echo "$(field "$1" connect_errors) + $(field "$1" read_errors) + $(field "$1" write_errors) + $(field "$1" timeouts)"; }
echo
# Requests in flight when wrk stops are committed but not counted: at most one per connection.
# Fewer rows than 202s would mean an acknowledged trigger was lost. +1: the request by hand.
for r in plain:$rows_plain signed:$rows_signed swarm:$rows_swarm; do
  n=${r%%:*} rows=${r#*:}
  extra=1; [ "$n" = swarm ] && extra=0
  check "$n: every request answered 202 and recorded: $rows rows for $(field $n requests) 202s (+$extra by hand, + at most $CONNECTIONS in flight)" \
    "$(field $n non2xx) == 0 and $(errors $n) == 0 and $(field $n requests) + $extra <= $rows <= $(field $n requests) + $extra + $CONNECTIONS"
done
check "forged: every request refused" "$(field forged non2xx) == $(field forged requests) and $(errors forged) == 0"
echo "($executed executions counted by the server's metrics in the swarm run)"
exit $fail
