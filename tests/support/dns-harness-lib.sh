# dns-harness-lib.sh - what named-harness.sh, knot-harness.sh and pdns-harness.sh share: logging,
# process and port checks, the instance marker, and the down/restart/stop commands. Sourced (not
# run) by each harness after it has set PROG, MARKER and SERVER_NAME and defined set_dir, ours,
# run_server PORT (answers non-zero when the port was taken), stop_server, report PORT and
# cmd_start; it then ends with `harness_main "$@"`.

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
usage() { echo "usage: $PROG start|down|restart|stop DIR" >&2; exit 2; }

alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

port_in_use() {
  [[ -n $(ss -Htuln "sport = :$1" 2>/dev/null) ]]
}

# A port below the kernel's ephemeral range: a port inside it can be some client's local port
# at any moment (dockerd, dig, the tests' own connections), and a server then binds UDP but not
# TCP (named logs "creating TCP socket: address in use" and runs on without TCP, which we would
# wait on in vain).
free_port() {
  local p low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  (( low > 11000 )) || die "the ephemeral port range starts at $low; no room below it"
  for _ in $(seq 50); do
    p=$(( 10000 + RANDOM % (low - 10000) ))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "no free port found"
}

load_port() {
  [[ -e $DIR/$MARKER ]] || die "$DIR holds no harness instance"
  PORT=$(sed -n 's/^PORT=//p' "$DIR/$MARKER")
  [[ $PORT =~ ^[0-9]+$ ]] || die "$DIR/$MARKER is incomplete"
}

cmd_restart() {
  local t0
  t0=$(now_ms)
  set_dir "$1"
  load_port
  stop_server
  run_server "$PORT" || die "port $PORT is taken now"
  log "restarted on 127.0.0.1:$PORT in $(( $(now_ms) - t0 )) ms"
  report "$PORT"
}

cmd_down() {
  set_dir "$1"
  load_port
  stop_server
  log "$SERVER_NAME on port $PORT is down; bring it back with: $0 restart $DIR"
}

cmd_stop() {
  set_dir "$1"
  if [[ ! -e $DIR ]]; then log "$DIR does not exist; nothing to stop"; return 0; fi
  if [[ ! -e $DIR/$MARKER ]]; then
    [[ -z $(ls -A -- "$DIR") ]] || die "$DIR has no $MARKER; refusing to touch it"
    rmdir -- "$DIR"
    return 0
  fi
  stop_server
  rm -rf --one-file-system -- "$DIR"
  log "stopped"
}

harness_main() {
  (( $# == 2 )) || usage
  case $1 in
    start) cmd_start "$2" ;;
    restart) cmd_restart "$2" ;;
    down) cmd_down "$2" ;;
    stop) cmd_stop "$2" ;;
    *) usage ;;
  esac
}
