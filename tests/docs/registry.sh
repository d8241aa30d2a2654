#!/usr/bin/env bash
# The docs test's registry (tests/docs/run_blocks.sh): Debian's docker-registry on
# 127.0.0.1:PORT with its files in DIR, reachable at the same address from the swarm's private
# network namespace through two socats (as drivers/redeploy/redeploy_integration_test.cpp joins
# them). Each process is stopped by the pid it was started with.
#
#   registry.sh start DIR NETNS   prints REGISTRY=127.0.0.1:PORT and REGISTRY_CONFIG=DIR/config.yml
#   registry.sh restart DIR       the registry again with DIR/config.yml as it is now (the socats stay)
#   registry.sh stop DIR          idempotent
set -euo pipefail
cmd=${1:?usage: registry.sh start|restart|stop DIR [NETNS]} dir=${2:?DIR}

run() {  # start the registry on DIR/port, wait for /v2/
  local port; port=$(cat "$dir/port")
  setsid docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/registry.pid"
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
    sleep 0.05
  done
  echo "registry.sh: docker-registry did not start:" >&2; tail -5 "$dir/registry.log" >&2; return 1
}
alive() {  # PID: running, not a zombie (our processes outlive the registry.sh that started
  # them, and whoever inherits them may reap late)
  [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null
}
halt() {  # stop the process of DIR/NAME.pid and wait for it to go
  local f=$dir/$1.pid p
  [ -s "$f" ] || return 0
  p=$(cat "$f"); rm -f "$f"
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 50); do alive "$p" || return 0; sleep 0.05; done
  kill -9 "$p" 2>/dev/null || true
}

case $cmd in
  start)
    netns=${3:?NETNS}
    mkdir -p "$dir/data"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    cat >"$dir/config.yml" <<CONFIG
version: 0.1
log: {level: info}
http: {addr: 127.0.0.1:$port}
storage: {filesystem: {rootdirectory: $dir/data}}
CONFIG
    run
    setsid socat "UNIX-LISTEN:$dir/r.sock,fork" "TCP:127.0.0.1:$port" >>"$dir/socat.log" 2>&1 </dev/null &
    echo $! >"$dir/socat-host.pid"
    for _ in $(seq 100); do [ -S "$dir/r.sock" ] && break; sleep 0.02; done
    # nsenter execs socat in place: the pid is socat's.
    setsid nsenter --net="$netns" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" \
      "UNIX-CONNECT:$dir/r.sock" >>"$dir/socat.log" 2>&1 </dev/null &
    echo $! >"$dir/socat-netns.pid"
    echo "REGISTRY=127.0.0.1:$port"
    echo "REGISTRY_CONFIG=$dir/config.yml"
    ;;
  restart) halt registry; run ;;
  stop) halt socat-netns; halt socat-host; halt registry ;;
  *) echo "usage: registry.sh start|restart|stop DIR [NETNS]" >&2; exit 2 ;;
esac
