#!/usr/bin/env bash
# dockerd-harness.sh - start/stop a throw-away, isolated Docker daemon in swarm
# mode for tripline integration tests and benchmarks. Needs root. Never talks
# to /var/run/docker.sock or to any daemon the user already runs.
#
#   tests/support/dockerd-harness.sh start DIR   # prints DOCKER_HOST=unix://.../docker.sock
#   tests/support/dockerd-harness.sh stop DIR    # idempotent, safe after a failed start
#
# Typical use (the image needs no registry; it is built from busybox-static):
#
#   dir=$(mktemp -d) && trap 'tests/support/dockerd-harness.sh stop "$dir"' EXIT
#   export "$(tests/support/dockerd-harness.sh start "$dir")"
#   docker service create --detach --name web --replicas 1 --no-resolve-image \
#       --stop-grace-period 1s tripline-test/busybox:latest sleep 3600
#   docker service scale --detach web=3      # converges in about 1 s
#   docker service ls                        # REPLICAS 3/3
#
# --no-resolve-image: there is no registry to ask for the image digest.
# --stop-grace-period 1s: `sleep` runs as PID 1 and so ignores SIGTERM; every
#   task stop would otherwise wait the default 10 s before SIGKILL.
# --detach: without it the CLI blocks ~5 s after convergence "verifying" tasks.
# Use the 20.10 client (/usr/bin/docker); a newer client also works (it
# negotiates API 1.41).
#
# Isolation, beyond the obvious --host/--data-root/--exec-root:
# * dockerd and containerd run in a private network namespace (DIR/netns, only
#   loopback). Swarm binds *:2377, *:7946 and a VXLAN socket on 4789, and
#   creates a docker_gwbridge bridge; in the host namespace these would clash
#   with a user's swarm (or a second harness) and the bridge would outlive the
#   daemon. --ip-forward also only flips the namespace's own sysctl.
# * We run our own containerd: dockerd 20.10 silently attaches to
#   /run/containerd/containerd.sock when that exists (any docker-ce host) and
#   would share its "moby" namespace with the user's daemon.
# * Own daemon.json (ignore /etc/docker/daemon.json), own trust key path
#   (else /etc/docker/key.json is written), own containerd config (ignore
#   /etc/containerd/config.toml; "opt" plugin would create /opt/containerd).
# * Containers live under cgroup parent /tripline-harness-TAG (cgroupfs
#   driver), so stop can find and kill every container process we started.
# Unavoidable host traces: empty dirs /run/docker/plugins (dockerd hard-codes
# its plugin exec root) and /run/containerd/s (containerd hard-codes the shim
# socket dir); they may be shared with a real daemon, so we leave them. dockerd
# also raises kernel.keys.root_maxkeys to 1000000 if it is lower.
#
# stop deletes DIR, logs included: copy DIR/dockerd.log first if you need it.
#
# HARNESS_NETWORK=bridge (for the package and image tests, tests/package/): no swarm and no
# private namespace. The daemons run in the host's network namespace, so `docker build
# --network host` and `docker run --network host` reach the Debian mirror, and containers sit on
# a bridge of our own (tlh<TAG>, a free 10.x.y.0/24, deleted by stop) so `docker run -p
# 127.0.0.1:PORT:PORT` publishes through docker-proxy. Still --iptables=false, and
# --ip-forward=false --ip-masq=false: no host sysctl or firewall rule is touched, and containers
# on the bridge cannot reach beyond the host.
#
# Environment overrides: DOCKERD, CONTAINERD, DOCKER_CLI, BUSYBOX,
# HARNESS_TIMEOUT (seconds to wait for a daemon, default 30).

set -euo pipefail

PROG=${0##*/}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
CONTAINERD=${CONTAINERD:-/usr/bin/containerd}
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
TIMEOUT=${HARNESS_TIMEOUT:-30}
NETWORK=${HARNESS_NETWORK:-isolated}
IMAGE=tripline-test/busybox:latest
MARKER=.dockerd-harness   # DIR/$MARKER = "this DIR is ours"; holds our state

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

usage() {
  echo "usage: $PROG start|stop DIR" >&2
  exit 2
}

# --- state ---------------------------------------------------------------
# DIR   real path of the scratch dir; everything we create lives below it.
# BASE  path used for sockets and exec-root: DIR itself, or a short symlink
#       to it when DIR is too long for a unix socket path (108 bytes).
# TAG   random id naming the cgroup parent.
# LINK  mktemp dir holding the short symlink (empty if none).
# SPAWNED  pid of the daemon spawn() started last.
# BRIDGE   our bridge device in HARNESS_NETWORK=bridge mode (empty otherwise).
DIR='' BASE='' TAG='' LINK='' SPAWNED='' BRIDGE=''

set_dir() {
  DIR=$(realpath -m -- "$1")
  [[ $DIR != / ]] || die "DIR must not be /"
  # Paths go unescaped into TOML, JSON and dockerd flags.
  [[ $DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "DIR may only contain [A-Za-z0-9._/+-]: $DIR"
}

load_state() {
  local key val
  while IFS='=' read -r key val; do
    case $key in
      BASE) BASE=$val ;; TAG) TAG=$val ;; LINK) LINK=$val ;; BRIDGE) BRIDGE=$val ;;
    esac
  done <"$DIR/$MARKER"
  [[ -n $BASE && -n $TAG ]] || die "$DIR/$MARKER is incomplete"
}

# dk SECONDS ARGS...: docker client against our daemon, bounded in time.
dk() {
  local secs=$1
  shift
  # Fixed client config: ignore the caller's DOCKER_* env, contexts and
  # ~/.docker (credential helpers, plugins).
  timeout "$secs" env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY \
    -u DOCKER_CERT_PATH DOCKER_CONFIG="$DIR/client" \
    "$DOCKER_CLI" -H "unix://$BASE/docker.sock" "$@"
}

# alive PID: process exists and is not a zombie.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# ours PID: the process is one of our daemons/shims (guards against PID reuse
# and against a stale pidfile pointing at someone else's process).
ours() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$DIR/"* || $cmd == *"$BASE/"* ]]
}

# wait_gone SECONDS PID...: wait until none of the PIDs is alive.
wait_gone() {
  local deadline=$(( $(now_ms) + $1 * 1000 )) pid any
  shift
  while :; do
    any=0
    for pid in "$@"; do alive "$pid" && any=1 && break; done
    (( any )) || return 0
    (( $(now_ms) < deadline )) || return 1
    sleep 0.1
  done
}

# --- start ---------------------------------------------------------------

start_failed() {
  local f
  for f in containerd.log dockerd.log; do
    [[ -s $DIR/$f ]] || continue
    log "last lines of $DIR/$f:"
    tail -n 15 "$DIR/$f" | sed 's/^/    /' >&2
  done
  log "start failed; logs are in $DIR; clean up with: $0 stop $DIR"
}

# wait_for SECONDS PID WHAT CMD...: run CMD until it succeeds; fail early if
# PID dies.
wait_for() {
  local secs=$1 pid=$2 what=$3 deadline
  deadline=$(( $(now_ms) + secs * 1000 ))
  shift 3
  until "$@" >/dev/null 2>&1; do
    alive "$pid" || die "$what exited during startup"
    (( $(now_ms) < deadline )) || die "$what not ready after $secs s"
    sleep 0.1
  done
}

# spawn NAME PIDFILE CMD...: run CMD detached (own session, no tty, stdout
# not inherited -- callers use $(...) on us) inside our network namespace.
spawn() {
  local name=$1 pidfile=$2 pid exe want tries=0
  shift 2
  want=$(realpath -- "$1")
  if [[ -n $BRIDGE ]]; then
    setsid "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
  else
    setsid nsenter --net="$DIR/netns" -- "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
  fi
  pid=$!
  echo "$pid" >"$pidfile"
  # Without job control the background child is no process-group leader, so
  # setsid and nsenter exec in place and $! becomes the daemon itself. Check.
  until exe=$(readlink "/proc/$pid/exe" 2>/dev/null) && [[ $exe == "$want" ]]; do
    alive "$pid" || die "$name exited at once"
    (( ++tries < 50 )) || die "$name: pid $pid runs ${exe:-?}, expected $want"
    sleep 0.02
  done
  SPAWNED=$pid
}

cmd_start() {
  local t0 dir=$1 b
  t0=$(now_ms)
  (( EUID == 0 )) || die "must run as root (dockerd needs it)"
  for b in "$DOCKERD" "$CONTAINERD" "$DOCKER_CLI" "$BUSYBOX"; do
    [[ -x $b ]] || die "$b not found (packages docker.io, containerd, busybox-static)"
  done
  for b in containerd-shim-runc-v2 runc unshare nsenter setsid chroot tar; do
    command -v "$b" >/dev/null || die "$b not found in PATH"
  done
  [[ $NETWORK != bridge ]] || command -v ip >/dev/null || die "ip not found in PATH (iproute2)"
  # A dynamically linked busybox would not run in the empty image.
  ! ldd "$BUSYBOX" >/dev/null 2>&1 || die "$BUSYBOX is dynamically linked; install busybox-static"

  set_dir "$dir"
  mkdir -p -- "$DIR"
  [[ ! -e $DIR/$MARKER ]] || die "$DIR already holds a harness instance; run: $0 stop $DIR"
  [[ -z $(ls -A -- "$DIR") ]] || die "$DIR is not empty"

  BASE=$DIR
  # Longest socket we create is BASE/exec/libnetwork/<12 hex>.sock (BASE+34).
  if (( ${#DIR} > 60 )); then
    LINK=$(mktemp -d /tmp/dh.XXXXXX)
    ln -s -- "$DIR" "$LINK/d"
    BASE=$LINK/d
  fi
  TAG=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
  case $NETWORK in
    isolated) ;;
    bridge) BRIDGE=tlh$TAG ;;
    *) die "HARNESS_NETWORK must be isolated or bridge, not $NETWORK" ;;
  esac
  printf 'BASE=%s\nTAG=%s\nLINK=%s\nBRIDGE=%s\n' "$BASE" "$TAG" "$LINK" "$BRIDGE" >"$DIR/$MARKER"
  trap 'rc=$?; (( rc == 0 )) || start_failed' EXIT

  local -a netflags=(--bridge=none)
  if [[ -n $BRIDGE ]]; then
    # A 10.x.y.0/24 that no route of the host covers yet.
    local net='' try
    for try in $(seq 1 50); do
      try=10.$(( RANDOM % 200 + 40 )).$(( RANDOM % 256 ))
      ip -4 route show | grep -q "^$try\." || { net=$try; break; }
    done
    [[ -n $net ]] || die "no free 10.x.y.0/24 for the bridge"
    ip link add "$BRIDGE" type bridge
    ip addr add "$net.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    netflags=(--bridge="$BRIDGE" --ip-forward=false --ip-masq=false)
  else
    # Persistent private network namespace (bind-mounted on DIR/netns).
    : >"$DIR/netns"
    unshare --net="$DIR/netns" true
    nsenter --net="$DIR/netns" -- "$BUSYBOX" ip link set lo up
  fi

  mkdir -p "$DIR/containerd" "$DIR/client"
  cat >"$DIR/containerd.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$BASE/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$BASE/ctd.sock"

[ttrpc]
  address = "$BASE/ctd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
EOF
  spawn containerd "$DIR/containerd.pid" "$CONTAINERD" --config "$DIR/containerd.toml"
  wait_for "$TIMEOUT" "$SPAWNED" containerd test -S "$BASE/ctd.sock"

  printf '{ "deprecated-key-path": "%s" }\n' "$DIR/key.json" >"$DIR/daemon.json"
  # dockerd writes DIR/docker.pid itself; spawn's copy goes to a scratch file.
  spawn dockerd "$DIR/dockerd.spawn.pid" "$DOCKERD" \
    --config-file "$DIR/daemon.json" \
    --containerd "$BASE/ctd.sock" \
    --host "unix://$BASE/docker.sock" \
    --data-root "$DIR/data" \
    --exec-root "$BASE/exec" \
    --pidfile "$DIR/docker.pid" \
    --iptables=false "${netflags[@]}" \
    --exec-opt native.cgroupdriver=cgroupfs \
    --cgroup-parent "/tripline-harness-$TAG"
  wait_for "$TIMEOUT" "$SPAWNED" dockerd dk 5 version

  [[ -n $BRIDGE ]] || dk 60 swarm init --advertise-addr 127.0.0.1 >&2

  # Registry-free image: busybox-static plus one symlink per applet. Letting
  # busybox create the ~270 links itself (chrooted, so they point to
  # /bin/busybox) is ~100x faster than a shell loop.
  local root=$DIR/image-rootfs
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root}
  install -m 755 "$BUSYBOX" "$root/bin/busybox"
  chroot "$root" /bin/busybox --install -s
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  install -d -m 1777 "$root/tmp"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
    dk 120 import --change 'CMD ["/bin/sh"]' \
      --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' - "$IMAGE" >&2
  rm -rf -- "$root"

  log "ready in $(( $(now_ms) - t0 )) ms"
  echo "DOCKER_HOST=unix://$BASE/docker.sock"
}

# --- stop ----------------------------------------------------------------

# stop_pidfile NAME PIDFILE SECONDS: SIGTERM, bounded wait, then SIGKILL.
stop_pidfile() {
  local name=$1 pidfile=$2 secs=$3 pid
  [[ -s $pidfile ]] || return 0
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$secs" "$pid" && return 0
  log "$name (pid $pid) still running after ${secs}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone 5 "$pid" || log "warning: $name (pid $pid) survived SIGKILL"
}

# Cgroup directories of our containers, one per mounted hierarchy.
our_cgroups() {
  local mnt
  while read -r mnt; do
    [[ -d $mnt/tripline-harness-$TAG ]] && echo "$mnt/tripline-harness-$TAG"
  done < <(awk '$(NF-2) ~ /^cgroup2?$/ {print $5}' /proc/self/mountinfo)
}

# Anything that survived the polite shutdown: processes in our network
# namespace (daemons, shims), shims talking to our containerd, and container
# processes in our cgroups.
leftover_pids() {
  local p cg netns=''
  local -a argv
  # Only while DIR/netns is still the nsfs bind mount (not the empty file).
  [[ $(stat -f -L -c %T "$DIR/netns" 2>/dev/null) == nsfs ]] && netns=$DIR/netns
  # Builtins only in this loop: forking per process would take seconds.
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    (( p != $$ )) || continue
    if [[ -n $netns && /proc/$p/ns/net -ef $netns ]]; then
      echo "$p"
      continue
    fi
    mapfile -d '' argv 2>/dev/null <"/proc/$p/cmdline" || continue
    (( ${#argv[@]} )) || continue
    case ${argv[0]##*/} in
      dockerd | containerd | containerd-shim*)
        [[ " ${argv[*]}" == *" $DIR/"* || " ${argv[*]}" == *" $BASE/"* ]] && echo "$p" ;;
      docker-proxy)
        # Publishes a port to a container on our bridge: its -container-ip is in our subnet.
        [[ -n ${BRIDGE_NET:-} && " ${argv[*]}" == *" -container-ip $BRIDGE_NET."* ]] && echo "$p" ;;
    esac
  done
  for cg in $(our_cgroups); do
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  return 0
}

kill_leftovers() {
  local pids
  mapfile -t pids < <(leftover_pids | sort -un)
  (( ${#pids[@]} )) || return 0
  log "killing leftover processes: ${pids[*]}"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  wait_gone 5 "${pids[@]}" || log "warning: some processes survived SIGKILL: ${pids[*]}"
}

# Shims whose containerd died uncleanly leave their sockets in the hard-coded
# /run/containerd/s; each bundle's "address" file names ours exactly.
remove_shim_sockets() {
  local f addr
  for f in "$DIR"/containerd/state/io.containerd.runtime.v2.task/*/*/address; do
    [[ -f $f ]] || continue
    addr=$(<"$f")
    addr=${addr#unix://}
    [[ $addr =~ ^/run/containerd/s/[0-9a-f]{64}$ && -S $addr ]] && rm -f -- "$addr"
  done
  return 0
}

remove_cgroups() {
  local cg
  for cg in $(our_cgroups); do
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null ||
      log "warning: could not remove cgroup $cg"
  done
}

# Mount points at or below DIR, deepest first (mountinfo shows real paths).
mounts_under() {
  local mp
  while read -r mp; do
    printf -v mp '%b' "$mp"   # mountinfo escapes space etc. as \040
    [[ $mp == "$DIR" || $mp == "$DIR"/* ]] && echo "$mp"
  done < <(awk '{print $5}' /proc/self/mountinfo) | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-
}

unmount_all() {
  local mp
  local -a mps
  for _ in 1 2 3 4 5; do
    mapfile -t mps < <(mounts_under)
    (( ${#mps[@]} )) || return 0
    for mp in "${mps[@]}"; do
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
    done
  done
  mapfile -t mps < <(mounts_under)
  (( ${#mps[@]} == 0 )) || die "still mounted under $DIR: ${mps[*]}"
}

cmd_stop() {
  local t0
  local -a ids
  t0=$(now_ms)
  (( EUID == 0 )) || die "must run as root"
  set_dir "$1"
  if [[ ! -e $DIR ]]; then log "$DIR does not exist; nothing to stop"; return 0; fi
  if [[ ! -e $DIR/$MARKER ]]; then
    # Start died before writing the marker: only an empty DIR can be ours.
    [[ -z $(ls -A -- "$DIR") ]] || die "$DIR has no $MARKER; refusing to touch it"
    rmdir -- "$DIR"
    return 0
  fi
  load_state

  if [[ -S $BASE/docker.sock ]] && dk 5 version >/dev/null 2>&1; then
    mapfile -t ids < <(dk 10 service ls -q 2>/dev/null || true)
    (( ${#ids[@]} == 0 )) || dk 20 service rm "${ids[@]}" >/dev/null 2>&1 || true
    # With the services gone swarm will not replace tasks, so SIGKILL their
    # containers now instead of letting leave/shutdown stop them gracefully
    # (saves the stop grace period, or 10 s per container by default).
    mapfile -t ids < <(dk 10 ps -aq 2>/dev/null || true)
    (( ${#ids[@]} == 0 )) || dk 20 rm -f "${ids[@]}" >/dev/null 2>&1 || true
    dk 20 swarm leave --force >/dev/null 2>&1 || true
  fi
  if [[ -n $BRIDGE ]]; then
    BRIDGE_NET=$(ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | awk '{print $4}' | cut -d. -f1-3)
  fi
  stop_pidfile dockerd "$DIR/docker.pid" 20
  stop_pidfile dockerd "$DIR/dockerd.spawn.pid" 5   # if it died before writing docker.pid
  stop_pidfile containerd "$DIR/containerd.pid" 10
  kill_leftovers
  remove_cgroups
  remove_shim_sockets
  unmount_all
  if [[ -n $BRIDGE && -e /sys/class/net/$BRIDGE ]]; then
    ip link del "$BRIDGE" || log "warning: could not delete bridge $BRIDGE"
  fi
  if [[ -n $LINK && $LINK == /tmp/dh.* ]]; then
    rm -f -- "$LINK/d"
    rmdir -- "$LINK" 2>/dev/null || true
  fi
  rm -rf --one-file-system -- "$DIR"
  log "stopped in $(( $(now_ms) - t0 )) ms"
}

(( $# == 2 )) || usage
case $1 in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  *) usage ;;
esac
