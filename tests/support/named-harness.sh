#!/usr/bin/env bash
# named-harness.sh - start/stop a throw-away BIND 9 `named` for tripline's dns-update tests: its
# own folder, a free loopback port, a fresh TSIG key and two zones. Never touches /etc/bind's
# server, its control channel or its files. Runs as root or as any user.
#
#   tests/support/named-harness.sh start DIR     # new instance; prints the lines below
#   tests/support/named-harness.sh down DIR      # stop named, keep DIR (port, key, zone data)
#   tests/support/named-harness.sh restart DIR   # start a `down` instance again, same port and key
#   tests/support/named-harness.sh stop DIR      # idempotent, safe after a failed start; deletes DIR
#
# start and restart print, on stdout, only:
#   NAMED=127.0.0.1:PORT           the server (UDP and TCP)
#   ZONE=tripline.test             dynamic zone: update-policy { grant KEY zonesub ANY; }
#   STATIC_ZONE=static.test        served, but takes no updates (answers REFUSED)
#   NARROW_ZONE=narrow.test        update-policy { grant KEY name allowed.narrow.test A; }
#   TSIG_KEY_NAME=tripline-test
#   TSIG_ALGORITHM=hmac-sha256
#   TSIG_SECRET=<base64>
# Everything else goes to stderr; named's own log is DIR/named.log.
#
# Typical use:
#   dir=$(mktemp -d) && trap 'tests/support/named-harness.sh stop "$dir"' EXIT
#   eval "$(tests/support/named-harness.sh start "$dir")"
#   nsupdate -y "$TSIG_ALGORITHM:$TSIG_KEY_NAME:$TSIG_SECRET" <<EOF
#   server 127.0.0.1 ${NAMED##*:}
#   update add api.tripline.test 60 A 192.0.2.1
#   send
#   EOF
#   dig @127.0.0.1 -p "${NAMED##*:}" +short api.tripline.test A     # 192.0.2.1
#
# Notes on the configuration:
# * `controls { };` turns off the rndc channel (else named reads /etc/bind/rndc.key and binds
#   127.0.0.1:953, clashing with a system named or a second harness).
# * `pid-file none; lock-file none;` and our own session-keyfile / managed-keys-directory keep
#   named out of /run/named, so several instances can run side by side.
# * `-n 1`: one worker thread; these machines are small and shared.
#
# Environment overrides: NAMED, TSIG_KEYGEN, DIG, HARNESS_TIMEOUT (seconds, default 30: a loaded 2-core CI machine once needed more than 10).

set -euo pipefail

PROG=${0##*/}
NAMED_BIN=${NAMED:-/usr/sbin/named}
TSIG_KEYGEN=${TSIG_KEYGEN:-/usr/sbin/tsig-keygen}
DIG=${DIG:-/usr/bin/dig}
TIMEOUT=${HARNESS_TIMEOUT:-30}
MARKER=.named-harness   # DIR/$MARKER = "this DIR is ours"; holds PORT=
ZONE=tripline.test
STATIC_ZONE=static.test
NARROW_ZONE=narrow.test
KEY_NAME=tripline-test
ALGORITHM=hmac-sha256

SERVER_NAME=named
# shellcheck source=tests/support/dns-harness-lib.sh
source "$(dirname "$0")/dns-harness-lib.sh"

DIR=''
set_dir() {
  DIR=$(realpath -m -- "$1")
  [[ $DIR != / ]] || die "DIR must not be /"
  # Paths go unquoted-safe into named.conf.
  [[ $DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "DIR may only contain [A-Za-z0-9._/+-]: $DIR"
}

# ours PID: a named started with our config (guards against PID reuse).
ours() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$DIR/named.conf"* ]]
}

secret() { sed -n 's/.*secret "\([^"]*\)".*/\1/p' "$DIR/tsig.key"; }

write_config() {
  local port=$1
  cat >"$DIR/named.conf" <<EOF
include "$DIR/tsig.key";
options {
  directory "$DIR";
  listen-on port $port { 127.0.0.1; };
  listen-on-v6 { none; };
  pid-file none;
  lock-file none;
  session-keyfile "$DIR/session.key";
  managed-keys-directory "$DIR";
  recursion no;
  dnssec-validation no;
  notify no;
  allow-transfer { none; };
};
controls { };
zone "$ZONE" {
  type primary;
  file "$DIR/$ZONE.db";
  update-policy { grant $KEY_NAME zonesub ANY; };
};
zone "$STATIC_ZONE" {
  type primary;
  file "$DIR/$STATIC_ZONE.db";
};
zone "$NARROW_ZONE" {
  type primary;
  file "$DIR/$NARROW_ZONE.db";
  update-policy { grant $KEY_NAME name allowed.$NARROW_ZONE A; };
};
EOF
}

write_zone() {
  local zone=$1
  cat >"$DIR/$zone.db" <<EOF
\$TTL 300
@    IN SOA ns1.$zone. hostmaster.$zone. 1 3600 600 86400 60
@    IN NS  ns1.$zone.
ns1  IN A   127.0.0.1
EOF
}

# run_server PORT: start named on our config; 0 when it answers SOA, 1 when the port was taken.
run_server() {
  local port=$1 pid deadline
  : >"$DIR/named.log"
  setsid "$NAMED_BIN" -g -n 1 -c "$DIR/named.conf" </dev/null >>"$DIR/named.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/named.pid"
  deadline=$(( $(now_ms) + TIMEOUT * 1000 ))
  until "$DIG" @127.0.0.1 -p "$port" +tcp +time=1 +tries=1 +norec +short SOA "$ZONE" 2>/dev/null |
      grep -q .; do
    if grep -q 'address in use' "$DIR/named.log"; then
      # named does not exit when one of its sockets fails to bind: stop it, try another port.
      stop_server
      return 1
    fi
    if ! alive "$pid"; then
      grep -q 'address in use' "$DIR/named.log" && return 1
      tail -n 15 "$DIR/named.log" | sed 's/^/    /' >&2
      die "named exited during startup (log: $DIR/named.log)"
    fi
    if (( $(now_ms) >= deadline )); then
      # The log goes with DIR when the caller stops the harness: show it now.
      tail -n 30 "$DIR/named.log" | sed 's/^/    /' >&2
      log "last dig: $("$DIG" @127.0.0.1 -p "$port" +tcp +time=1 +tries=1 +norec SOA "$ZONE" 2>&1 | tail -n 5 | tr '\n' ' ')"
      die "named (pid $pid) not ready after $TIMEOUT s (log: $DIR/named.log)"
    fi
    sleep 0.05
  done
  return 0
}

report() {
  echo "NAMED=127.0.0.1:$1"
  echo "ZONE=$ZONE"
  echo "STATIC_ZONE=$STATIC_ZONE"
  echo "NARROW_ZONE=$NARROW_ZONE"
  echo "TSIG_KEY_NAME=$KEY_NAME"
  echo "TSIG_ALGORITHM=$ALGORITHM"
  echo "TSIG_SECRET=$(secret)"
}

stop_server() {
  local pid
  [[ -s $DIR/named.pid ]] || return 0
  pid=$(<"$DIR/named.pid")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      log "named (pid $pid) still running after 5 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f -- "$DIR/named.pid"
}

cmd_start() {
  local t0 port tries=0
  t0=$(now_ms)
  for b in "$NAMED_BIN" "$TSIG_KEYGEN" "$DIG"; do
    [[ -x $b ]] || die "$b not found (packages bind9, bind9-utils, bind9-dnsutils)"
  done
  command -v ss >/dev/null || die "ss not found (package iproute2)"
  set_dir "$1"
  mkdir -p -- "$DIR"
  [[ ! -e $DIR/$MARKER ]] || die "$DIR already holds a harness instance; run: $0 stop $DIR"
  [[ -z $(ls -A -- "$DIR") ]] || die "$DIR is not empty"
  : >"$DIR/$MARKER"
  "$TSIG_KEYGEN" -a "$ALGORITHM" "$KEY_NAME" >"$DIR/tsig.key"
  write_zone "$ZONE"
  write_zone "$STATIC_ZONE"
  write_zone "$NARROW_ZONE"
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
