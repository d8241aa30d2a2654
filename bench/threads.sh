#!/usr/bin/env bash
# Where a trigger's CPU goes, thread by thread: one flood of one receiver (wrk -t2 -c50, the
# 300-byte body of bench/flood.lua), and each tripline thread's CPU time per request from
# /proc/PID/task/*/stat, alternating the builds given so that each sees the same machine.
# Loopback only; bounded (ROUNDS x builds wrk runs of DURATION s); stops by itself.
#
#   bench/threads.sh plain                        # workers paused; no root
#   bench/threads.sh signed                       # a GitHub signature and one rule, as flood.sh's
#   bench/threads.sh swarm                        # workers draining into a real swarm (root:
#                                                 # an isolated dockerd, started and stopped here)
#   BINS="/tmp/old/tripline build/tripline" ROUNDS=3 bench/threads.sh swarm    # A/B, alternated
#   PERF_DIR=/tmp/p bench/threads.sh plain        # also perf record --call-graph dwarf per run
#
# Per run: req/s, tripline's CPU µs per request, and each thread's that used more than 0.1 µs
# (threads are numbered in creation order: the ingest's answerer and writer come first, the
# executor's workers next, the HTTP threads last). The swarm case also prints dockerd's share.
set -euo pipefail
cd "$(dirname "$0")/.."
CASE=${1:?usage: bench/threads.sh plain|signed|swarm}
BINS=${BINS:-build/tripline}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
WORKERS=${WORKERS:-4}
case $CASE in plain | signed | swarm) ;; *) echo "unknown case $CASE" >&2; exit 1 ;; esac
for b in $BINS; do [ -x "$b" ] || { echo "no binary $b (make build)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh bench" >&2; exit 1; }

tmp=$(mktemp -d /tmp/tl-threads-XXXXXX)
chmod 755 "$tmp"
pid=""
docker_host=unix:///nonexistent
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ "$CASE" = swarm ] && tests/support/dockerd-harness.sh stop "$tmp/swarm" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

. bench/flood_body.sh
template=$(flood_template)
export FLOOD_BODY
FLOOD_BODY=$(printf "$template" 0)
secret="bench-github-secret-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
max=10000
extra=""
if [ "$CASE" = signed ]; then
  # A different signed body per request (80k/s for the run, twice what this machine serves): the
  # same one repeated would be a replay.
  flood_signatures "$secret" "$template" $((80000 * DURATION)) >"$tmp/sigs"
  extra=",\"auth\":{\"github_secret\":\"$secret\"},\"rules\":{\"default\":\"ignore\",\"rules\":[{\"then\":\"run\",\"when\":{\"all\":[{\"field\":\"body:/action\",\"value\":\"bench\"},{\"field\":\"header:X-GitHub-Event\",\"value\":\"push\"}]}}]}"
fi
if [ "$CASE" = swarm ]; then
  [ "$(id -u)" -eq 0 ] || { echo "the swarm case needs root (the isolated dockerd)" >&2; exit 1; }
  export "$(tests/support/dockerd-harness.sh start "$tmp/swarm" 2>"$tmp/harness.log")"
  docker_host=$DOCKER_HOST
  /usr/bin/docker -H "$DOCKER_HOST" service create --detach --quiet --name bench --replicas 1 \
    --no-resolve-image --stop-grace-period 1s tripline-test/busybox:latest sleep 3600 >/dev/null
  max=1  # at its bound: every execution reads the service and changes nothing (as flood.sh)
fi

cpu_of() { awk '{print $14 + $15}' "$1" 2>/dev/null || echo 0; }
run() {  # run BIN LABEL
  local bin=$1 label=$2 work port admin base url dpid d0 d1 out n perf_pid=""
  work=$(mktemp -d "$tmp/run-XXXXXX")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  admin="bench-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  base=http://127.0.0.1:$port
  TRIPLINE_ADMIN_TOKEN=$admin "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work" \
    --docker-host "$docker_host" --http-threads 2 --workers "$WORKERS" --log-level warn \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  api() { curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
  [ "$CASE" = swarm ] || api -X POST "$base/api/v1/workers/pause" >/dev/null
  url=$(api -X POST "$base/api/v1/receivers?check_peer=false" -d "{\"name\":\"t\",
    \"driver\":\"scale-service\",\"config\":{\"service\":\"bench\",\"action\":\"up\",\"by\":1,
    \"min\":0,\"max\":$max},\"limits\":{\"rate_per_minute\":1000000,\"burst\":1000000,
    \"max_queued\":1000000}$extra}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["trigger_url"])')
  for t in /proc/$pid/task/*; do echo "${t##*/} $(cpu_of "$t/stat")"; done | sort -n >"$work/t0"
  dpid=$([ "$CASE" = swarm ] && pgrep -n -x dockerd || true)
  d0=$([ -n "$dpid" ] && cpu_of "/proc/$dpid/stat" || echo 0)
  if [ -n "${PERF_DIR:-}" ]; then
    mkdir -p "$PERF_DIR"
    perf record -q --call-graph dwarf,16384 -F 199 -p "$pid" -o "$PERF_DIR/$CASE-${label//\//_}.data" \
      -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  if [ "$CASE" = signed ]; then
    out=$(FLOOD_SIGS="$tmp/sigs" FLOOD_TEMPLATE="$template" FLOOD_THREADS=2 \
      wrk -t2 -c50 -d"${DURATION}s" -s bench/flood.lua "$url")
  else
    out=$(wrk -t2 -c50 -d"${DURATION}s" -s bench/flood.lua "$url")
  fi
  for t in /proc/$pid/task/*; do echo "${t##*/} $(cpu_of "$t/stat")"; done | sort -n >"$work/t1"
  d1=$([ -n "$dpid" ] && cpu_of "/proc/$dpid/stat" || echo 0)
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  n=$(echo "$out" | sed -n 's/.*RESULT requests=\([0-9]*\).*/\1/p')
  join "$work/t0" "$work/t1" | awk -v n="$n" -v hz="$(getconf CLK_TCK)" -v label="$label" \
    -v rps="$(echo "$out" | sed -n 's/.*rps=\([0-9.]*\).*/\1/p')" \
    -v docker="$(((d1 - d0)))" '
    { d = ($3 - $2) / hz * 1e6 / n; total += d; i++; if (d >= 0.1) threads = threads sprintf(" %d:%.1f", i, d) }
    END { printf "%-28s req/s %8.0f  tripline %5.1f us/req  threads%s", label, rps, total, threads
          if (docker > 0) printf "  dockerd %.1f", docker / hz * 1e6 / n
          printf "\n" }'
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  pid=""
  rm -rf "$work"
}

echo "case $CASE: wrk -t2 -c50 -d${DURATION}s; tripline --http-threads 2 --workers $WORKERS;" \
  "thread N:µs per request, in creation order"
for r in $(seq "$ROUNDS"); do
  for b in $BINS; do run "$b" "$b"; done
done
