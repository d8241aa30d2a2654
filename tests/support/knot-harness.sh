#!/usr/bin/env bash
# knot-harness.sh - start/stop a throw-away Knot DNS `knotd` for tripline's dns-update tests: its
# own folder (config, zone files, journal database, control socket), a free loopback port, fresh
# TSIG keys and zones with different ACLs. Never touches /etc/knot or a system knotd. Runs as
# root or as any user. The same care as named-harness.sh takes with ports.
#
#   tests/support/knot-harness.sh start DIR     # new instance; prints the lines below
#   tests/support/knot-harness.sh down DIR      # stop knotd, keep DIR (port, keys, zone data)
#   tests/support/knot-harness.sh restart DIR   # start a `down` instance again, same port and keys
#   tests/support/knot-harness.sh stop DIR      # idempotent, safe after a failed start; deletes DIR
#
# start and restart print, on stdout, only:
#   KNOT=127.0.0.1:PORT            the server (UDP and TCP)
#   ZONE=tripline.test             acl: TSIG_KEY_NAME may update anything in the zone
#   LOCKED_ZONE=locked.test        acl: another key may update anything; TSIG_KEY_NAME only the
#                                  A records of allowed.locked.test
#   STATIC_ZONE=static.test        served, no acl: takes no updates
#   TSIG_KEY_NAME=tripline-test
#   TSIG_ALGORITHM=hmac-sha256
#   TSIG_SECRET=<base64>
# Everything else goes to stderr; knotd's own log is DIR/knot.log.
#
# Notes on the configuration:
# * knotd runs in the foreground (no -d) under setsid, logging to stderr -> DIR/knot.log.
# * `rundir` (pid file, control socket) and `database: storage` (journal, timers) are in DIR,
#   so several instances can run side by side; the storage folder must exist before knotd starts
#   or the first update fails with "not exists".
# * `zonefile-sync: -1` + `journal-content: changes`: updates go to the journal only, the zone
#   files stay as written, and a restart replays the journal (same data after `restart`).
# * one UDP, one TCP and one background worker: these machines are small and shared.
# * knotd exits when it cannot bind TCP ("address already in use"); we then try another port.
#
# Environment overrides: KNOTD, KDIG, HARNESS_TIMEOUT (seconds, default 30).

set -euo pipefail

PROG=${0##*/}
KNOTD_BIN=${KNOTD:-/usr/sbin/knotd}
KDIG=${KDIG:-/usr/bin/kdig}
TIMEOUT=${HARNESS_TIMEOUT:-30}
MARKER=.knot-harness   # DIR/$MARKER = "this DIR is ours"; holds PORT=
ZONE=tripline.test
LOCKED_ZONE=locked.test
STATIC_ZONE=static.test
KEY_NAME=tripline-test
OTHER_KEY_NAME=other-key
ALGORITHM=hmac-sha256

SERVER_NAME=knotd
# shellcheck source=tests/support/dns-harness-lib.sh
source "$(dirname "$0")/dns-harness-lib.sh"

DIR=''
set_dir() {
  DIR=$(realpath -m -- "$1")
  [[ $DIR != / ]] || die "DIR must not be /"
  # Paths go unquoted-safe into knot.conf.
  [[ $DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "DIR may only contain [A-Za-z0-9._/+-]: $DIR"
  # The control socket DIR/knot.sock must fit in sun_path (108 bytes).
  (( ${#DIR} < 90 )) || die "DIR is too long for knotd's control socket: $DIR"
}

# ours PID: a knotd started with our config (guards against PID reuse).
ours() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$DIR/knot.conf"* ]]
}

new_secret() { head -c 32 /dev/urandom | base64; }

write_config() {
  local port=$1
  cat >"$DIR/knot.conf" <<EOF
server:
    rundir: "$DIR"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$DIR/db"
log:
  - target: stderr
    any: info
key:
  - id: $KEY_NAME
    algorithm: $ALGORITHM
    secret: $(<"$DIR/secret")
  - id: $OTHER_KEY_NAME
    algorithm: $ALGORITHM
    secret: $(<"$DIR/other-secret")
acl:
  - id: key-updates-zone
    key: $KEY_NAME
    action: update
  - id: other-updates-zone
    key: $OTHER_KEY_NAME
    action: update
  - id: key-updates-allowed-a
    key: $KEY_NAME
    action: update
    update-owner: name
    update-owner-match: equal
    update-owner-name: allowed
    update-type: A
template:
  - id: default
    storage: "$DIR"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: $ZONE
    acl: key-updates-zone
  - domain: $LOCKED_ZONE
    acl: [other-updates-zone, key-updates-allowed-a]
  - domain: $STATIC_ZONE
EOF
}

write_zone() {
  local zone=$1
  cat >"$DIR/$zone.zone" <<EOF
\$ORIGIN $zone.
\$TTL 300
@    IN SOA ns1.$zone. hostmaster.$zone. 1 3600 600 86400 60
@    IN NS  ns1.$zone.
ns1  IN A   127.0.0.1
EOF
}

# run_server PORT: start knotd on our config; 0 when it answers SOA, 1 when the port was taken.
run_server() {
  local port=$1 pid deadline
  : >"$DIR/knot.log"
  setsid "$KNOTD_BIN" -c "$DIR/knot.conf" </dev/null >>"$DIR/knot.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/knotd.pid"
  deadline=$(( $(now_ms) + TIMEOUT * 1000 ))
  until "$KDIG" @127.0.0.1 -p "$port" +tcp +time=1 +retry=0 +norec +short SOA "$ZONE" 2>/dev/null |
      grep -q .; do
    if grep -q 'address already in use' "$DIR/knot.log"; then
      stop_server
      return 1
    fi
    if ! alive "$pid"; then
      tail -n 15 "$DIR/knot.log" | sed 's/^/    /' >&2
      die "knotd exited during startup (log: $DIR/knot.log)"
    fi
    if (( $(now_ms) >= deadline )); then
      tail -n 30 "$DIR/knot.log" | sed 's/^/    /' >&2
      die "knotd (pid $pid) not ready after $TIMEOUT s (log: $DIR/knot.log)"
    fi
    sleep 0.05
  done
  return 0
}

report() {
  echo "KNOT=127.0.0.1:$1"
  echo "ZONE=$ZONE"
  echo "LOCKED_ZONE=$LOCKED_ZONE"
  echo "STATIC_ZONE=$STATIC_ZONE"
  echo "TSIG_KEY_NAME=$KEY_NAME"
  echo "TSIG_ALGORITHM=$ALGORITHM"
  echo "TSIG_SECRET=$(<"$DIR/secret")"
}

stop_server() {
  local pid
  [[ -s $DIR/knotd.pid ]] || return 0
  pid=$(<"$DIR/knotd.pid")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      log "knotd (pid $pid) still running after 5 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f -- "$DIR/knotd.pid"
}

cmd_start() {
  local t0 port tries=0
  t0=$(now_ms)
  for b in "$KNOTD_BIN" "$KDIG"; do
    [[ -x $b ]] || die "$b not found (packages knot, knot-dnsutils)"
  done
  command -v ss >/dev/null || die "ss not found (package iproute2)"
  set_dir "$1"
  mkdir -p -- "$DIR"
  [[ ! -e $DIR/$MARKER ]] || die "$DIR already holds a harness instance; run: $0 stop $DIR"
  [[ -z $(ls -A -- "$DIR") ]] || die "$DIR is not empty"
  : >"$DIR/$MARKER"
  mkdir -p -- "$DIR/db"
  new_secret >"$DIR/secret"
  new_secret >"$DIR/other-secret"
  for z in "$ZONE" "$LOCKED_ZONE" "$STATIC_ZONE"; do write_zone "$z"; done
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
