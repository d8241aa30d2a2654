#!/usr/bin/env bash
# The Debian package installed in a clean Debian 12 container and run by systemd:
#   tests/package/deb_test.sh tripline_VERSION_amd64.deb     (make test-deb)
#   tests/package/deb_test.sh --build BUILD_DIR               (ctest: runs cpack -G DEB there first)
#
# 1. Base: debootstrap minbase bookworm (cached, tests/package/lib.sh) plus systemd, as on any
#    Debian server; in an isolated dockerd (tests/support/dockerd-harness.sh).
# 2. Install as the README says, `apt-get install ./tripline_*.deb`, in a container with the host
#    network (apt resolves Depends from the mirror): the user, /var/lib/tripline, the unit and the
#    conffile must be there. /etc/default/tripline is edited to listen on 0.0.0.0.
# 3. Boot systemd as PID 1 in that container (committed), `systemctl enable --now tripline`:
#    the service must run as tripline with the unit's sandboxing (NoNewPrivs, no capabilities,
#    read-only /usr); through the published port: /healthz, the admin token from the journal, a
#    webhook receiver triggered into a sink on the host; every file in /var/lib/tripline is
#    owned by tripline; a restart keeps the receiver.
# 4. apt-get remove: service stopped, data and user kept. apt-get purge: both gone.
# Needs root, dockerd and the mirror: skips (exit 77) without them, fails under CI=true.
# If systemd cannot boot in a container here, step 3 fails: it does not fall back silently.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ "${1:-}" = --build ]; then
  build=$(cd "$2" && pwd)
  [ -x "$build/tripline" ] || cannot_run "no tripline binary in $build (build it first)"
  command -v dpkg-shlibdeps >/dev/null || cannot_run "dpkg-shlibdeps is missing (scripts/install-deps.sh deb)"
  (cd "$build" && cpack -G DEB >cpack.log 2>&1) || { cat "$build/cpack.log"; fail "cpack -G DEB failed"; }
  deb=$(ls -t "$build"/tripline_*_amd64.deb | head -n 1)
else
  deb=${1:?usage: $0 tripline_VERSION_amd64.deb | --build BUILD_DIR}
fi
[ -f "$deb" ] || fail "no package at $deb"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
preflight
step "package $(basename "$deb"), $(stat -c %s "$deb") bytes"

start_docker

# --- 1. a Debian 12 server: minbase + systemd ---------------------------------------------------
ctx=$(mktemp -d /tmp/tl-pkg-ctx-XXXXXX)
cleanup "rm -rf '$ctx'"
cat >"$ctx/Dockerfile" <<'EOF'
FROM tripline-test/bookworm-minbase
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd systemd-sysv \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
EOF
docker build -q --network host -t tripline-test/bookworm-systemd "$ctx" >/dev/null 2>"$ctx/build.log" ||
  { cat "$ctx/build.log"; fail "building the systemd base failed"; }
step "base with systemd built"

# --- 2. install ---------------------------------------------------------------------------------
docker run --name install --network host -v "$deb:/root/$(basename "$deb"):ro" \
  tripline-test/bookworm-systemd sh -euc "
    apt-get update -qq
    cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ./$(basename "$deb") >/dev/null
    sed -i 's|^#TRIPLINE_LISTEN=.*|TRIPLINE_LISTEN=0.0.0.0:8080|' /etc/default/tripline
    rm -rf /var/lib/apt/lists/*" >"$ctx/install.log" 2>&1 ||
  { cat "$ctx/install.log"; fail "apt-get install ./$(basename "$deb") failed"; }
step "installed with apt-get install ./$(basename "$deb") (Depends resolved from the mirror)"
docker commit install tripline-test/installed >/dev/null

# Checks in the installed (not yet booted) system.
inst() { docker run --rm --network none tripline-test/installed sh -euc "$1"; }
out=$(inst 'getent passwd tripline; stat -c "%U:%G %a" /var/lib/tripline; /usr/bin/tripline --version
            dpkg-query -W -f="\${Status}\n" tripline; cat /var/lib/dpkg/info/tripline.conffiles
            test -f /lib/systemd/system/tripline.service && echo unit-present')
printf '%s\n' "$out" | sed 's/^/  installed: /' >&2
uid=$(printf '%s\n' "$out" | awk -F: '/^tripline:/ {print $3}')
[ -n "$uid" ] && [ "$uid" -lt 1000 ] || fail "no tripline system user (uid below 1000): $out"
printf '%s\n' "$out" | grep -qx 'tripline:tripline 700' || fail "/var/lib/tripline is not tripline's, mode 700: $out"
printf '%s\n' "$out" | grep -qx 'install ok installed' || fail "dpkg does not show the package installed: $out"
printf '%s\n' "$out" | grep -qx '/etc/default/tripline' || fail "/etc/default/tripline is no conffile: $out"
printf '%s\n' "$out" | grep -qx 'unit-present' || fail "no /lib/systemd/system/tripline.service"

# --- 3. systemd as PID 1 ------------------------------------------------------------------------
# Not --privileged: it asks for every capability, and a host (or sandbox) that lacks one (here
# CAP_SYS_RESOURCE) cannot start the container at all. All capabilities the host has instead, no
# seccomp/AppArmor profile (systemd's own sandboxing uses the syscalls docker's profile blocks),
# and the host's cgroup tree writable so systemd can make the unit's cgroup (cgroup v1 here; the
# container's cgroup is under the harness's own parent, which its stop removes).
caps=()
bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
((0x$bnd & (1 << 24))) || caps+=(--cap-drop SYS_RESOURCE)
docker run -d --name sd -p 127.0.0.1::8080 --cap-add ALL "${caps[@]}" \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
  -e container=docker --stop-signal SIGRTMIN+3 \
  tripline-test/installed /lib/systemd/systemd >/dev/null
booted() {
  local s
  s=$(docker exec sd systemctl is-system-running 2>/dev/null) || true
  [ "$s" = running ] || [ "$s" = degraded ]
}
if ! poll 60 booted; then
  docker logs sd 2>&1 | tail -n 30
  fail "systemd did not boot as PID 1 in the container (state: $(docker exec sd systemctl is-system-running 2>&1 || true))"
fi
step "systemd is PID 1 and up ($(docker exec sd systemctl is-system-running || true))"

docker exec sd systemctl enable --now tripline.service 2>&1 | sed 's/^/  /' >&2
port=$(docker port sd 8080/tcp | head -n 1 | sed 's/.*://')
base=http://127.0.0.1:$port
health() { curl -fsS --max-time 2 "$base/healthz"; }
if ! poll 30 health; then
  docker exec sd systemctl status --no-pager tripline >&2 || true
  docker exec sd journalctl -u tripline --no-pager | tail -n 30 >&2 || true
  fail "tripline.service does not answer /healthz through the published port $base"
fi
step "tripline.service active ($(docker exec sd systemctl is-active tripline)), /healthz answers on $base"

pid=$(docker exec sd systemctl show -p MainPID --value tripline)
[ -n "$pid" ] && [ "$pid" != 0 ] || fail "tripline.service has no main process"
proc=$(docker exec sd sh -c "stat -c %U /proc/$pid; grep -E '^(NoNewPrivs|CapEff|CapBnd):' /proc/$pid/status
                              nsenter -t $pid -m -- touch /usr/.tripline-probe 2>&1 || true
                              nsenter -t $pid -m -- touch /home/.tripline-probe 2>&1 || true
                              readlink /proc/$pid/exe")
printf '%s\n' "$proc" | sed 's/^/  service process: /' >&2
printf '%s\n' "$proc" | grep -qx tripline || fail "the service does not run as the tripline user"
printf '%s\n' "$proc" | grep -qE '^NoNewPrivs:\s+1$' || fail "NoNewPrivileges is not in effect"
printf '%s\n' "$proc" | grep -qE '^CapBnd:\s+0+$' || fail "CapabilityBoundingSet= is not in effect"
# Root in the service's mount namespace: ProtectSystem=strict makes /usr read-only, ProtectHome
# makes /home inaccessible.
printf '%s\n' "$proc" | grep -q "/usr/.tripline-probe.*Read-only file system" ||
  fail "ProtectSystem=strict: /usr is writable in the service's mount namespace"
printf '%s\n' "$proc" | grep -q "/home/.tripline-probe.*\(Read-only\|Permission denied\|No such\)" ||
  fail "ProtectHome: /home is writable in the service's mount namespace"
printf '%s\n' "$proc" | grep -qx /usr/bin/tripline || fail "the service does not run /usr/bin/tripline"

token=$(docker exec sd journalctl -u tripline --no-pager -o cat | grep -oE '^ +tl_[A-Za-z0-9_-]+' | tr -d ' ' | head -n 1)
[ -n "$token" ] || { docker exec sd journalctl -u tripline --no-pager | tail -n 20; fail "no admin token in the journal"; }
step "admin token read from journalctl -u tripline"

start_sink "$BRIDGE_GW"
drive_server "$base" "$token"

owners=$(docker exec sd find /var/lib/tripline ! -user tripline)
[ -z "$owners" ] || fail "files in /var/lib/tripline not owned by tripline: $owners"
docker exec sd test -s /var/lib/tripline/tripline.db || fail "no database in /var/lib/tripline"
step "data in /var/lib/tripline: $(docker exec sd sh -c 'cd /var/lib/tripline && find . -mindepth 1 | sort | tr "\n" " "') all owned by tripline"

docker exec sd systemctl restart tripline
wait_until 30 "tripline answering after a restart" health
curl -fsS -H "Authorization: Bearer $token" "$base/api/v1/receivers" | grep -q '"name":"pkg-test"' ||
  fail "the receiver did not survive a restart"
step "restarted: the receiver and the admin token survived"

# --- 4. remove, purge ---------------------------------------------------------------------------
docker exec sd sh -c 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq tripline >/dev/null' ||
  fail "apt-get remove failed"
state=$(docker exec sd systemctl is-active tripline 2>/dev/null || true)
[ "$state" != active ] || fail "the service still runs after apt-get remove"
docker exec sd test -s /var/lib/tripline/tripline.db || fail "apt-get remove deleted the data"
docker exec sd getent passwd tripline >/dev/null || fail "apt-get remove deleted the user"
step "apt-get remove: service $state, data and user kept"
docker exec sd sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tripline >/dev/null' ||
  fail "apt-get purge failed"
! docker exec sd getent passwd tripline >/dev/null || fail "apt-get purge kept the tripline user"
! docker exec sd test -e /var/lib/tripline || fail "apt-get purge kept /var/lib/tripline"
! docker exec sd test -e /etc/default/tripline || fail "apt-get purge kept /etc/default/tripline"
step "apt-get purge: user, /var/lib/tripline and /etc/default/tripline gone"

echo "deb_test: passed in $((SECONDS - pkg_t0)) s"
