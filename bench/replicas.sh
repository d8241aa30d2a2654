#!/usr/bin/env bash
# What scale-out costs the trigger path (issue 16, docs/scale-out.md): plain accepted triggers per
# second on the embedded SQLite store (one tripline), and on 1, 2 and 3 replicas sharing one
# PostgreSQL 15, as ratios to SQLite measured in the same run. What `make bench-replicas` runs.
# Loopback only; bounded (5 wrk runs of DURATION s, plus about 20 s of set-up); no dockerd; stops
# by itself and cleans up everything it started (PostgreSQL, the replicas, the temp dir), on
# Ctrl-C too.
#
#   bench/replicas.sh                   # DURATION=5 s per case; Debian's postgresql-15 and wrk
#   DURATION=10 bench/replicas.sh
#   SERVER_ARGS="--request-log 0" bench/replicas.sh   # extra flags for every tripline serve
#   PG_STATEMENTS=1 bench/replicas.sh  # also where PostgreSQL's time went: pg_stat_statements
#                                      # (loaded only then: it costs CPU), its top statements per case
#
# PostgreSQL: its own cluster, initdb into the temp dir (as the `postgres` user when run as root:
# initdb refuses root), listening on 127.0.0.1 on a free port and its socket in the temp dir;
# PostgreSQL's defaults otherwise (fsync, synchronous_commit and full_page_writes on): the durable
# accept path pays a real WAL flush, as SQLite's pays its fdatasync. Each case gets a fresh
# database (and SQLite a fresh file), so every case starts from empty tables.
#
# The cases, in this order, each: a receiver with no auth and no rules, limits raised so that
# nothing is refused (as bench/flood.sh), workers paused (nothing runs: only the durable accept
# is measured), one trigger by hand on every replica first (each answers 202), then
#   sqlite      one tripline, DATA_DIR/tripline.db (the default)
#   pg1 pg2 pg3 1, 2, 3 replicas on the one PostgreSQL, each its own port and data dir, the
#               first replica's secrets.key copied to the others (docs/scale-out.md)
#   sqlite      again at the end: the machine's load moves between the first and the last run,
#               and the ratios are over the mean of the two SQLite figures
# Every case: one wrk, -t$THREADS -c$CONNECTIONS for DURATION s, the 300-byte JSON body of
# bench/flood.lua; bench/replicas.lua gives wrk's threads to the replicas in turn (thread i to
# replica i mod N), so with THREADS a multiple of 1, 2 and 3 (6) each replica gets the same share
# of the threads and connections, and the client is the same process, threads and connections in
# every case. Every tripline: --http-threads $HTTP_THREADS --workers $WORKERS, request log on
# (the default) unless SERVER_ARGS says otherwise.
# After each case, durability: one execution row per 202 (+ the ones by hand, + at most
# CONNECTIONS in flight when wrk stops), and on PostgreSQL how they spread over the replicas (the
# `owner` column). CPU: the machine's busy seconds over the run, and tripline's (all replicas)
# and PostgreSQL's (postmaster and backends) own, per accepted trigger.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-48}
THREADS=${THREADS:-6}
HTTP_THREADS=${HTTP_THREADS:-2}
WORKERS=${WORKERS:-4}
BIN=${BIN:-build/tripline}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
LIMITS='{"rate_per_minute":1000000,"burst":1000000,"max_queued":1000000}'
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh bench" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 missing: scripts/install-deps.sh bench" >&2; exit 1; }
command -v psql >/dev/null || { echo "psql missing: scripts/install-deps.sh bench" >&2; exit 1; }
for tool in initdb postgres; do
  [ -x "$PG_BIN/$tool" ] || { echo "$PG_BIN/$tool missing: scripts/install-deps.sh bench (postgresql-15)" >&2; exit 1; }
done
for n in 1 2 3; do
  [ $((THREADS % n)) -eq 0 ] || { echo "THREADS ($THREADS) must be a multiple of 1, 2 and 3" >&2; exit 1; }
done
[ $((CONNECTIONS % THREADS)) -eq 0 ] || { echo "CONNECTIONS ($CONNECTIONS) must be a multiple of THREADS ($THREADS)" >&2; exit 1; }

work=$(mktemp -d /tmp/tl-replicas-XXXXXX)
chmod 755 "$work"
pids=()      # the running tripline processes
pg_pid=""
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # SIGINT: PostgreSQL's fast shutdown (no wait for clients).
  [ -n "$pg_pid" ] && kill -INT "$pg_pid" 2>/dev/null && wait "$pg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL as its own user when we are root (initdb refuses root); setpriv execs, so $! is the
# postmaster itself.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "running as root and there is no postgres user to run PostgreSQL as" >&2; exit 1; }
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
  mkdir "$work/pg" && chown postgres:postgres "$work/pg"
else
  mkdir "$work/pg"
fi
chmod 700 "$work/pg"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/pg/data" -A trust -U tripline -E UTF8 --locale=C --no-sync \
  >"$work/pg/initdb.log" 2>&1 || { echo "initdb failed:" >&2; cat "$work/pg/initdb.log" >&2; exit 1; }
pg_port=$(free_port)
pg_extra=()
[ -z "${PG_STATEMENTS:-}" ] || pg_extra=(-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on)
"${as_pg[@]}" "$PG_BIN/postgres" -D "$work/pg/data" -k "$work/pg" -p "$pg_port" \
  -c listen_addresses=127.0.0.1 "${pg_extra[@]}" >"$work/pg/postgres.log" 2>&1 &
pg_pid=$!
pg() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U tripline -At "$@"; }
for _ in $(seq 100); do pg -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
pg -d postgres -c 'select 1' >/dev/null 2>&1 || { echo "postgres did not start:" >&2; cat "$work/pg/postgres.log" >&2; exit 1; }
pg_settings=$(pg -d postgres -c "select string_agg(name || '=' || setting, ' ' order by name) from pg_settings
  where name in ('fsync','synchronous_commit','full_page_writes','wal_sync_method','commit_delay','shared_buffers')")
pg_version=$(pg -d postgres -c 'show server_version')

export FLOOD_BODY
. bench/flood_body.sh
FLOOD_BODY=$(flood_body)
[ "${#FLOOD_BODY}" -eq 300 ] || { echo "body is ${#FLOOD_BODY} bytes, not 300" >&2; exit 1; }
admin="bench-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"

ports=()
start_replica() {  # $1 data dir, $2 port, then extra flags
  local dir=$1 port=$2; shift 2
  TRIPLINE_ADMIN_TOKEN=$admin "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" \
    --docker-host unix:///nonexistent --http-threads "$HTTP_THREADS" --workers "$WORKERS" \
    --log-level warn "$@" ${SERVER_ARGS:-} >>"$work/server-$port.log" 2>&1 &
  pids+=($!)
  ports+=("$port")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "tripline on port $port did not start:" >&2; cat "$work/server-$port.log" >&2; exit 1
}
# A normal stop (SIGTERM); KILL after 15 s, said so: a replica that does not stop is a finding.
stop_all() {
  local p i
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for i in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "  tripline $p did not stop within 15 s of SIGTERM: killed" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  pids=()
  ports=()
}
api() { curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }

CLK=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }  # user nice system irq softirq
# Ticks of the running tripline processes, all threads.
cpu_tripline() {
  local p s=0 t
  for p in "${pids[@]}"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0); s=$((s + t))
  done
  echo "$s"
}
# Ticks of PostgreSQL: the postmaster, its reaped children (cutime, cstime) and its live ones.
cpu_pg() {
  [ -n "$pg_pid" ] || { echo 0; return; }
  local s c
  s=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pg_pid/stat" 2>/dev/null || echo 0)
  for c in $(cat "/proc/$pg_pid/task/$pg_pid/children" 2>/dev/null); do
    s=$((s + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
  done
  echo "$s"
}

results="$work/results"
: >"$results"
# $1 case name, $2 trigger URL (on the first replica), $3 replica count, $4 rows query (a shell
# command printing the execution rows for the receiver), $5 spread query (prints the rows per
# replica, space-separated) or empty.
measure() {
  local name=$1 url=$2 n=$3 rows_cmd=$4 spread_cmd=$5
  local busy0 tl0 pg0 busy1 tl1 pg1 out t0 t1
  busy0=$(cpu_busy) tl0=$(cpu_tripline) pg0=$(cpu_pg) t0=$(date +%s.%N)
  out=$(REPLICA_PORTS="${ports[*]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
    --latency -s bench/replicas.lua "$url" | grep '^RESULT' | cut -d' ' -f2-)
  busy1=$(cpu_busy) tl1=$(cpu_tripline) pg1=$(cpu_pg) t1=$(date +%s.%N)
  local rows spread=-
  rows=$(eval "$rows_cmd")
  [ -z "$spread_cmd" ] || spread=$(eval "$spread_cmd" | tr '\n' '/' | sed 's#/$##')
  echo "$name replicas=$n $out rows=$rows spread=$spread cpu_busy_s=$(awk -v t=$((busy1 - busy0)) -v c="$CLK" 'BEGIN {printf "%.1f", t / c}') wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') tl_ticks=$((tl1 - tl0)) pg_ticks=$((pg1 - pg0))" >>"$results"
  echo "  $name: $out rows=$rows spread=$spread"
}
field() { awk -v n="$1" '$1 == n' "$results" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

# Creates the plain receiver on the first replica, pauses the workers there (the pause reaches the
# others by NOTIFY), and checks that every replica has the pause and answers the URL with 202.
# Prints "id url".
prepare() {
  local first=${ports[0]} out id url p i
  out=$(api -X POST "http://127.0.0.1:$first/api/v1/receivers?check_peer=false" \
    -d "{\"name\":\"plain\",\"driver\":\"scale-service\",\"config\":{\"service\":\"bench\",\"action\":\"up\",\"by\":1,\"min\":0,\"max\":10000},\"limits\":$LIMITS}") ||
    { echo "could not create the receiver" >&2; exit 1; }
  read -r id url <<<"$(echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["id"], r["trigger_url"])')"
  [ -n "$url" ] || { echo "no trigger URL in $out" >&2; exit 1; }
  api -X POST "http://127.0.0.1:$first/api/v1/workers/pause" >/dev/null
  for p in "${ports[@]}"; do
    for i in $(seq 50); do
      [ "$(api "http://127.0.0.1:$p/api/v1/workers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["paused"])')" = True ] && break
      sleep 0.1
    done
    [ "$(api "http://127.0.0.1:$p/api/v1/workers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["paused"])')" = True ] ||
      { echo "replica on port $p is not paused" >&2; exit 1; }
    local on_p="http://127.0.0.1:$p/${url#*://*/}" code=""
    for i in $(seq 50); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$FLOOD_BODY" "$on_p")
      [ "$code" = 202 ] && break
      sleep 0.1
    done
    [ "$code" = 202 ] || { echo "replica on port $p answers $code, not 202" >&2; exit 1; }
  done
  echo "$id $url"
}

# The database's commits and the cluster's WAL flushes and bytes: how the accepts were batched.
pg_stats() {
  pg -d "$1" -c "select (select xact_commit from pg_stat_database where datname = '$1') || '|' || wal_sync || '|' || wal_bytes from pg_stat_wal"
}
: >"$work/pgstats"
run_sqlite() {  # $1 case name
  local dir="$work/$1" port id url
  port=$(free_port)
  start_replica "$dir" "$port"
  local pr
  pr=$(prepare)
  read -r id url <<<"$pr"
  measure "$1" "$url" 1 "sqlite3 '$dir/tripline.db' 'select count(*) from executions where receiver_id = $id'" ""
  stop_all
}
run_pg() {  # $1 replica count
  local n=$1 db="bench_pg$1" i port id url
  pg -d postgres -c "create database $db" >/dev/null
  [ -z "${PG_STATEMENTS:-}" ] || pg -d "$db" -c 'create extension pg_stat_statements' >/dev/null
  local database="postgres://tripline@127.0.0.1:$pg_port/$db"
  for i in $(seq "$n"); do
    port=$(free_port)
    mkdir -m 700 -p "$work/pg$n-$i"
    # The secrets key is shared as an operator would (docs/scale-out.md): the first replica's.
    [ "$i" -eq 1 ] || cp -p "$work/pg$n-1/secrets.key" "$work/pg$n-$i/secrets.key"
    start_replica "$work/pg$n-$i" "$port" --database "$database"
  done
  local pr
  pr=$(prepare)
  read -r id url <<<"$pr"
  local s0 s1
  s0=$(pg_stats "$db")
  measure "pg$n" "$url" "$n" "pg -d $db -c 'select count(*) from executions where receiver_id = $id'" \
    "pg -d $db -c 'select count(*) from executions where receiver_id = $id group by owner order by 1 desc'"
  stop_all
  # After the stop: a backend reports its counters when idle or when it ends.
  s1=$(pg_stats "$db")
  echo "pg$n $(python3 -c "
a, b = [int(x) for x in '$s0'.split('|')], [int(x) for x in '$s1'.split('|')]
print(' '.join(f'{k}={y - x}' for k, x, y in zip(['commits', 'wal_syncs', 'wal_bytes'], a, b)))")" >>"$work/pgstats"
  if [ -n "${PG_STATEMENTS:-}" ]; then
    local req
    req=$(field "pg$n" requests)
    { echo "pg$n: PostgreSQL's top statements (per accepted trigger: calls, planning µs, execution µs):"
      pg -d "$db" -F ' ' -c "select to_char(calls::float8 / $req, '990.99'), to_char(total_plan_time * 1000 / $req, '9990.9'), to_char(total_exec_time * 1000 / $req, '9990.9'),
        left(regexp_replace(query, '\s+', ' ', 'g'), 110) from pg_stat_statements
        where dbid = (select oid from pg_database where datname = '$db')
        order by total_plan_time + total_exec_time desc limit 4" | sed 's/^/  /'
    } >>"$work/statements"
  fi
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "PostgreSQL $pg_version on $work (its own cluster, 127.0.0.1:$pg_port): $pg_settings"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s (one wrk, its threads given to the replicas in turn), 300-byte JSON body"
echo "tripline --http-threads $HTTP_THREADS --workers $WORKERS ${SERVER_ARGS:-}(workers paused); limits $LIMITS"
echo; echo "== runs =="
run_sqlite sqlite
run_pg 1
run_pg 2
run_pg 3
run_sqlite sqlite-end
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

base=$(python3 -c "print(($(field sqlite rps) + $(field sqlite-end rps)) / 2)")
echo; echo "== results (ratio: req/s over the mean of the two SQLite runs, $(printf '%.0f' "$base") req/s) =="
printf '%-11s %8s %9s %6s %8s %8s %8s %11s %11s %9s  %s\n' case replicas req/s ratio p50_ms p99_ms non2xx tl_cpu_us pg_cpu_us machine% rows/replica
for c in sqlite pg1 pg2 pg3 sqlite-end; do
  req=$(field $c requests)
  printf '%-11s %8s %9.0f %6.2f %8s %8s %8s %11.1f %11.1f %9.0f  %s\n' "$c" "$(field $c replicas)" "$(field $c rps)" \
    "$(python3 -c "print($(field $c rps) / $base)")" "$(field $c p50_ms)" "$(field $c p99_ms)" "$(field $c non2xx)" \
    "$(python3 -c "print($(field $c tl_ticks) / $CLK / max(1, $req) * 1e6)")" \
    "$(python3 -c "print($(field $c pg_ticks) / $CLK / max(1, $req) * 1e6)")" \
    "$(python3 -c "print($(field $c cpu_busy_s) / ($(nproc) * $(field $c wall_s)) * 100)")" "$(field $c spread)"
done
pgf() { awk -v n="$1" '$1 == n' "$work/pgstats" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
for c in pg1 pg2 pg3; do
  req=$(field $c requests)
  echo "$c: per 1000 accepted triggers, $(python3 -c "print(f'{$(pgf $c commits) * 1000 / $req:.0f} commits, {$(pgf $c wal_syncs) * 1000 / $req:.0f} WAL flushes, {$(pgf $c wal_bytes) / $req / 1024 * 1000:.0f} KiB of WAL')")"
done
[ ! -s "$work/statements" ] || cat "$work/statements"
echo "(tl_cpu_us, pg_cpu_us: CPU µs per accepted trigger of all tripline processes, of PostgreSQL;"
echo " machine%: the machine's busy CPU over the run, all $(nproc) cores, whoever used it)"

fail=0
check() {  # $1 description, $2 condition (python expression)
  if python3 -c "import sys; sys.exit(0 if ($2) else 1)"; then echo "ok:   $1"; else echo "FAIL: $1"; fail=1; fi
}
echo
# Requests in flight when wrk stops are committed but not counted: at most one per connection.
# Fewer rows than 202s would mean an acknowledged trigger was lost. +N: the requests by hand.
for c in sqlite pg1 pg2 pg3 sqlite-end; do
  n=$(field $c replicas) rows=$(field $c rows) req=$(field $c requests)
  errs="$(field $c connect_errors) + $(field $c read_errors) + $(field $c write_errors) + $(field $c timeouts)"
  check "$c: every request answered 202 and recorded: $rows rows for $req 202s (+$n by hand, + at most $CONNECTIONS in flight)" \
    "$(field $c non2xx) == 0 and $errs == 0 and $req + $n <= $rows <= $req + $n + $CONNECTIONS"
  spread=$(field $c spread)
  if [ "$spread" != - ]; then
    check "$c: the executions spread over all $n replicas ($spread)" "len('$spread'.split('/')) == $n"
  fi
done
exit $fail
