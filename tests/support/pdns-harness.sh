#!/usr/bin/env bash
# pdns-harness.sh - start/stop a throw-away PowerDNS Authoritative Server (`pdns_server`, gsqlite3
# backend) for tripline's dns-update tests: its own folder (config, SQLite database, control
# socket), a free loopback port, fresh TSIG keys and zones with different update permissions.
# Never touches /etc/powerdns or a system pdns. Runs as root or as any user. The same care as
# named-harness.sh takes with ports.
#
#   tests/support/pdns-harness.sh start DIR     # new instance; prints the lines below
#   tests/support/pdns-harness.sh down DIR      # stop pdns_server, keep DIR (port, keys, data)
#   tests/support/pdns-harness.sh restart DIR   # start a `down` instance again, same port and keys
#   tests/support/pdns-harness.sh stop DIR      # idempotent, safe after a failed start; deletes DIR
#
# start and restart print, on stdout, only:
#   PDNS=127.0.0.1:PORT            the server (UDP and TCP)
#   ZONE=tripline.test             TSIG-ALLOW-DNSUPDATE TSIG_KEY_NAME, ALLOW-DNSUPDATE-FROM 127/8
#   LOCKED_ZONE=locked.test        TSIG-ALLOW-DNSUPDATE another key, ALLOW-DNSUPDATE-FROM 127/8
#   STATIC_ZONE=static.test        served; no address may update it
#   TSIG_KEY_NAME=tripline-test
#   TSIG_ALGORITHM=hmac-sha256
#   TSIG_SECRET=<base64>
# Everything else goes to stderr; pdns_server's own log is DIR/pdns.log.
#
# Notes on the configuration:
# * `dnsupdate=yes` with an empty global `allow-dnsupdate-from`: only zones with an
#   ALLOW-DNSUPDATE-FROM metadata take updates, and those with TSIG-ALLOW-DNSUPDATE only signed
#   with one of the keys it names.
# * `--daemon=no --guardian=no`, `socket-dir=DIR`: foreground, control socket in DIR, so several
#   instances can run side by side. No webserver, no API.
# * the caches are off (`*cache-ttl=0`), so a read right after an update sees it.
# * pdns_server exits when it cannot bind ("Unable to bind"); we then try another port.
#
# Environment overrides: PDNS_SERVER, PDNSUTIL, DIG, SQLITE3, PDNS_SCHEMA, HARNESS_TIMEOUT.

set -euo pipefail

PROG=${0##*/}
PDNS_BIN=${PDNS_SERVER:-/usr/sbin/pdns_server}
PDNSUTIL=${PDNSUTIL:-/usr/bin/pdnsutil}
DIG=${DIG:-/usr/bin/dig}
SQLITE3=${SQLITE3:-/usr/bin/sqlite3}
SCHEMA=${PDNS_SCHEMA:-/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql}
TIMEOUT=${HARNESS_TIMEOUT:-30}
MARKER=.pdns-harness   # DIR/$MARKER = "this DIR is ours"; holds PORT=
ZONE=tripline.test
LOCKED_ZONE=locked.test
STATIC_ZONE=static.test
KEY_NAME=tripline-test
OTHER_KEY_NAME=other-key
ALGORITHM=hmac-sha256

SERVER_NAME=pdns_server
# shellcheck source=tests/support/dns-harness-lib.sh
source "$(dirname "$0")/dns-harness-lib.sh"

DIR=''
set_dir() {
  DIR=$(realpath -m -- "$1")
  [[ $DIR != / ]] || die "DIR must not be /"
  [[ $DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "DIR may only contain [A-Za-z0-9._/+-]: $DIR"
  (( ${#DIR} < 80 )) || die "DIR is too long for pdns's control socket: $DIR"
}

# ours PID: a pdns_server started with our config dir (guards against PID reuse).
ours() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"--config-dir=$DIR "* ]]
}

write_config() {
  local port=$1
  cat >"$DIR/pdns.conf" <<EOF
launch=gsqlite3
gsqlite3-database=$DIR/pdns.sqlite3
local-address=127.0.0.1
local-port=$port
socket-dir=$DIR
dnsupdate=yes
allow-dnsupdate-from=
webserver=no
api=no
daemon=no
guardian=no
receiver-threads=1
distributor-threads=1
signing-threads=1
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
zone-cache-refresh-interval=0
loglevel=6
EOF
}

pdnsutil() { "$PDNSUTIL" --config-dir="$DIR" "$@" >>"$DIR/setup.log" 2>&1 || {
  tail -n 10 "$DIR/setup.log" | sed 's/^/    /' >&2; die "pdnsutil $* failed"; }; }

setup_data() {
  local z secret
  "$SQLITE3" "$DIR/pdns.sqlite3" <"$SCHEMA"
  for z in "$ZONE" "$LOCKED_ZONE" "$STATIC_ZONE"; do
    cat >"$DIR/$z.zone" <<EOF
\$ORIGIN $z.
\$TTL 300
@    IN SOA ns1.$z. hostmaster.$z. 1 3600 600 86400 60
@    IN NS  ns1.$z.
ns1  IN A   127.0.0.1
EOF
    pdnsutil load-zone "$z" "$DIR/$z.zone"
  done
  secret=$(head -c 32 /dev/urandom | base64)
  echo "$secret" >"$DIR/secret"
  pdnsutil import-tsig-key "$KEY_NAME" "$ALGORITHM" "$secret"
  pdnsutil generate-tsig-key "$OTHER_KEY_NAME" "$ALGORITHM"
  pdnsutil set-meta "$ZONE" TSIG-ALLOW-DNSUPDATE "$KEY_NAME"
  pdnsutil set-meta "$ZONE" ALLOW-DNSUPDATE-FROM 127.0.0.0/8
  pdnsutil set-meta "$LOCKED_ZONE" TSIG-ALLOW-DNSUPDATE "$OTHER_KEY_NAME"
  pdnsutil set-meta "$LOCKED_ZONE" ALLOW-DNSUPDATE-FROM 127.0.0.0/8
}

# run_server PORT: start pdns_server on our config; 0 when it answers SOA, 1 when the port was taken.
run_server() {
  local port=$1 pid deadline
  : >"$DIR/pdns.log"
  setsid "$PDNS_BIN" --config-dir="$DIR" --daemon=no --guardian=no </dev/null \
    >>"$DIR/pdns.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/pdns.pid"
  deadline=$(( $(now_ms) + TIMEOUT * 1000 ))
  until "$DIG" @127.0.0.1 -p "$port" +tcp +time=1 +tries=1 +norec +short SOA "$ZONE" 2>/dev/null |
      grep -q .; do
    if grep -q 'Unable to bind' "$DIR/pdns.log"; then
      stop_server
      return 1
    fi
    if ! alive "$pid"; then
      tail -n 15 "$DIR/pdns.log" | sed 's/^/    /' >&2
      die "pdns_server exited during startup (log: $DIR/pdns.log)"
    fi
    if (( $(now_ms) >= deadline )); then
      tail -n 30 "$DIR/pdns.log" | sed 's/^/    /' >&2
      die "pdns_server (pid $pid) not ready after $TIMEOUT s (log: $DIR/pdns.log)"
    fi
    sleep 0.05
  done
  return 0
}

report() {
  echo "PDNS=127.0.0.1:$1"
  echo "ZONE=$ZONE"
  echo "LOCKED_ZONE=$LOCKED_ZONE"
  echo "STATIC_ZONE=$STATIC_ZONE"
  echo "TSIG_KEY_NAME=$KEY_NAME"
  echo "TSIG_ALGORITHM=$ALGORITHM"
  echo "TSIG_SECRET=$(<"$DIR/secret")"
}

stop_server() {
  local pid
  [[ -s $DIR/pdns.pid ]] || return 0
  pid=$(<"$DIR/pdns.pid")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      log "pdns_server (pid $pid) still running after 5 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f -- "$DIR/pdns.pid"
}

cmd_start() {
  local t0 port tries=0
  t0=$(now_ms)
  for b in "$PDNS_BIN" "$PDNSUTIL" "$DIG" "$SQLITE3"; do
    [[ -x $b ]] || die "$b not found (packages pdns-server, pdns-backend-sqlite3, bind9-dnsutils, sqlite3)"
  done
  [[ -r $SCHEMA ]] || die "$SCHEMA not found (package pdns-backend-sqlite3)"
  command -v ss >/dev/null || die "ss not found (package iproute2)"
  set_dir "$1"
  mkdir -p -- "$DIR"
  [[ ! -e $DIR/$MARKER ]] || die "$DIR already holds a harness instance; run: $0 stop $DIR"
  [[ -z $(ls -A -- "$DIR") ]] || die "$DIR is not empty"
  : >"$DIR/$MARKER"
  write_config 53   # pdnsutil reads the backend from it; the port is set below
  setup_data
  while :; do
    port=$(free_port)
    write_config "$port"
    echo "PORT=$port" >"$DIR/$MARKER"
    run_server "$port" && break
    (( ++tries < 5 )) || die "could not bind a port after 5 tries"
    log "port $port was taken; trying another"
  done
  log "ready on 127.0.0.1:$port in $(( $(now_ms) - t0 )) ms"
  report "$port"
}

harness_main "$@"
