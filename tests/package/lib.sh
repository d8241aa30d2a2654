# Shared by tests/package/deb_test.sh and image_test.sh (sourced, not run).
#
# * cannot_run REASON: exit 77 with "SKIPPED: ..." on stdout, or fail under CI=true.
# * base_image_tar: a debootstrap --variant=minbase bookworm root file system as a tar, made once
#   (about 65 s) and cached in $TRIPLINE_TEST_CACHE (default /var/cache/tripline-test); no
#   registry is needed anywhere. Delete the file to make it again.
# * start_docker: an isolated dockerd (tests/support/dockerd-harness.sh, HARNESS_NETWORK=bridge:
#   host network namespace for `--network host` builds and installs, our own bridge for published
#   ports), stopped on exit; the base image imported as tripline-test/bookworm-minbase.
# * start_sink ADDR: a webhook sink (busybox httpd + a CGI script) recording each POST body.
# * step WHAT: a timestamped progress line on stderr; the test's figures at the end.

pkg_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pkg_src=$(cd "$pkg_here/../.." && pwd)
pkg_name=${0##*/}
pkg_t0=$SECONDS
pkg_cleanups=()

cannot_run() {
  if [ "${CI:-}" = true ]; then echo "FAILED (CI=true): $pkg_name: $1"; exit 1; fi
  echo "SKIPPED: $pkg_name: $1"
  exit 77
}

fail() {
  echo "FAILED: $pkg_name: $*"
  exit 1
}

step() { printf '%s [%4d s] %s\n' "$pkg_name" $((SECONDS - pkg_t0)) "$*" >&2; }

on_exit() {
  local rc=$? i
  for ((i = ${#pkg_cleanups[@]} - 1; i >= 0; i--)); do eval "${pkg_cleanups[i]}" || true; done
  exit "$rc"
}
trap on_exit EXIT
cleanup() { pkg_cleanups+=("$1"); }

preflight() {
  [ "$(id -u)" -eq 0 ] || cannot_run "needs root (it starts its own dockerd)"
  local b
  for b in /usr/sbin/dockerd /usr/bin/containerd /usr/bin/docker debootstrap ip curl; do
    command -v "$b" >/dev/null ||
      cannot_run "$b is missing (scripts/install-deps.sh image: docker.io containerd debootstrap iproute2 curl)"
  done
  [ -x /bin/busybox ] || cannot_run "busybox-static is missing (scripts/install-deps.sh image)"
  # The mirror: apt inside the containers (and debootstrap) fetch Debian 12's packages.
  curl -fsS --max-time 15 -o /dev/null http://deb.debian.org/debian/dists/bookworm/Release ||
    cannot_run "the Debian mirror (http://deb.debian.org) is not reachable"
}

base_image_tar() {
  local cache=${TRIPLINE_TEST_CACHE:-/var/cache/tripline-test} tar root t
  tar=$cache/bookworm-minbase.tar
  mkdir -p "$cache"
  (
    flock 9
    [ -s "$tar" ] && exit 0
    step "debootstrap --variant=minbase bookworm (once; cached in $tar)"
    t=$SECONDS
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    if ! debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian \
      >"$cache/debootstrap.log" 2>&1; then
      tail -n 20 "$cache/debootstrap.log" >&2
      rm -rf "$root"
      exit 1
    fi
    # As Docker's debian images: no package lists or downloaded packages in the image.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
    step "base image made in $((SECONDS - t)) s"
  ) 9>"$cache/.lock" || fail "debootstrap failed (log: $cache/debootstrap.log)"
  echo "$tar"
}

start_docker() {
  local dir env tar
  tar=$(base_image_tar)
  dir=$(mktemp -d /tmp/tl-pkg-XXXXXX)
  rmdir "$dir"   # the harness wants a missing or empty DIR and removes it on stop
  cleanup "'$pkg_src/tests/support/dockerd-harness.sh' stop '$dir' >/dev/null 2>&1"
  env=$(HARNESS_NETWORK=bridge "$pkg_src/tests/support/dockerd-harness.sh" start "$dir") ||
    fail "the isolated dockerd did not start"
  export "${env?}"
  docker import - tripline-test/bookworm-minbase <"$tar" >/dev/null || fail "docker import failed"
  # Containers on our bridge reach the host at the bridge's gateway address.
  BRIDGE_GW=$(docker network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}')
  [ -n "$BRIDGE_GW" ] || fail "no gateway on the harness bridge"
  step "isolated dockerd up; base image imported; bridge gateway $BRIDGE_GW"
}

# start_sink ADDR: busybox httpd on ADDR:PORT (a free port), POST /cgi-bin/sink stores each body
# in SINK_DIR/got.N. Sets SINK_URL.
start_sink() {
  local addr=$1 port
  SINK_DIR=$(mktemp -d /tmp/tl-sink-XXXXXX)
  chmod 755 "$SINK_DIR"
  mkdir -p "$SINK_DIR/www/cgi-bin"
  cat >"$SINK_DIR/www/cgi-bin/sink" <<EOF
#!/bin/sh
n=\$(ls "$SINK_DIR" | grep -c '^got\.')
head -c "\${CONTENT_LENGTH:-0}" >"$SINK_DIR/got.\$n"
printf 'Content-Type: text/plain\r\n\r\nok\n'
EOF
  chmod 755 "$SINK_DIR/www/cgi-bin/sink"
  port=$(free_port)
  /bin/busybox httpd -f -p "$addr:$port" -h "$SINK_DIR/www" &
  local pid=$!
  cleanup "kill $pid 2>/dev/null; rm -rf '$SINK_DIR'"
  SINK_URL=http://$addr:$port/cgi-bin/sink
  local i
  for i in $(seq 1 50); do
    curl -fsS -o /dev/null -d probe "$SINK_URL" 2>/dev/null && { rm -f "$SINK_DIR"/got.*; return 0; }
    sleep 0.1
  done
  fail "the webhook sink did not come up at $SINK_URL"
}

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

# poll SECONDS CMD...: CMD until it succeeds (0) or SECONDS pass (1).
poll() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}

# wait_until SECONDS WHAT CMD...: CMD until it succeeds, else fail.
wait_until() {
  local secs=$1 what=$2
  shift 2
  poll "$secs" "$@" || fail "$what: not after $secs s"
}

# drive_server BASE TOKEN: the proof that a server works, through BASE (a published port):
# create a webhook receiver aimed at the sink, trigger it with a unique body, wait for the
# execution to succeed and the sink to hold that body. Needs start_sink first.
drive_server() {
  local base=$1 token=$2 out trigger_url probe exec_id status i
  out=$(curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"name\":\"pkg-test\",\"driver\":\"webhook\",\"config\":{\"url\":\"$SINK_URL\",\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}}" \
    "$base/api/v1/receivers") || fail "creating a receiver failed"
  trigger_url=$(printf '%s' "$out" | sed -n 's/.*"trigger_url":"\([^"]*\)".*/\1/p')
  [ -n "$trigger_url" ] || fail "no trigger_url in: $out"
  # The URL names the address the server thinks it has; send it through the published port.
  trigger_url=$base/_webhooks/${trigger_url##*/_webhooks/}
  probe="pkg-test-$RANDOM$RANDOM"
  out=$(curl -fsS -H 'Content-Type: application/json' -d "{\"probe\":\"$probe\"}" "$trigger_url") ||
    fail "the trigger was refused"
  exec_id=$(printf '%s' "$out" | sed -n 's/.*"execution_id":\([0-9]*\).*/\1/p')
  [ -n "$exec_id" ] || fail "no execution_id in: $out"
  for i in $(seq 1 60); do
    out=$(curl -fsS -H "Authorization: Bearer $token" "$base/api/v1/executions/$exec_id")
    status=$(printf '%s' "$out" | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')
    [ "$status" = succeeded ] && break
    [ "$status" = failed ] && fail "execution $exec_id failed: $out"
    sleep 0.5
  done
  [ "$status" = succeeded ] || fail "execution $exec_id is still $status after 30 s: $out"
  grep -qF "\"probe\":\"$probe\"" "$SINK_DIR"/got.* 2>/dev/null ||
    fail "the sink did not receive the trigger's body ($probe)"
  step "receiver created, triggered through $base, execution $exec_id succeeded, the sink got $probe"
}
