#!/usr/bin/env bash
# Memory with a huge backlog: N queued executions (default 1,000,000) written straight into the
# store, then tripline started on it with workers running against a Docker that is not there
# (every execution retries, so the executor's window stays full). Prints the RSS after start and
# after SECONDS of work, and the queue depth the API reports. Loopback only; bounded.
#
#   bench/backlog.sh                       # N=1000000 SECONDS=15
#   N=200000 SECONDS=10 bench/backlog.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
SECONDS_RUN=${SECONDS:-15}
BIN=${BIN:-build/tripline}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 missing: scripts/install-deps.sh test" >&2; exit 1; }

work=$(mktemp -d /tmp/tl-backlog-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin="bench-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
run() {
  TRIPLINE_ADMIN_TOKEN=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
    --docker-host unix://"$work"/no-docker.sock --max-attempts 1000000 --retry-base-ms 50 \
    --retry-max-ms 200 --log-level error >"$work/out.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "tripline did not start" >&2; cat "$work/out.log" >&2; exit 1
}
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$pid/status"; }

run  # creates the database and runs the migrations
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

old=$(( $(date +%s%3N) - 3600 * 1000 ))
config='{"action":"up","backend":"swarm","by":1,"max":5,"min":0,"service":"web"}'
t0=$(date +%s.%N)
sqlite3 "$work/data/tripline.db" <<SQL
INSERT INTO receivers (name, driver, config, enabled, generation, created_at, updated_at, nonce)
  VALUES ('backlog', 'scale-service', '$config', 1, 1, $old, $old, 'bench');
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $N)
INSERT INTO executions (receiver_id, generation, driver, config, status, created_at, action)
  SELECT 1, 1, 'scale-service', '$config', 'queued', $old, 'up' FROM c;
SQL
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
printf 'wrote %d queued executions in %s s (db %s)\n' "$N" "$(elapsed "$t0")" \
  "$(du -h "$work/data/tripline.db" | cut -f1)"

t0=$(date +%s.%N)
run
printf 'start-up with the backlog: %s s, RSS %s\n' "$(elapsed "$t0")" "$(rss)"
sleep "$SECONDS_RUN"
depth=$(curl -fs -H "Authorization: Bearer $admin" "http://127.0.0.1:$port/api/v1/workers")
echo "after ${SECONDS_RUN} s of retrying work: RSS $(rss); workers: $depth"
