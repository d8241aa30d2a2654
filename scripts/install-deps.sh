#!/usr/bin/env bash
# Installs what tripline needs from Debian 12's packages: `build` for the binary, `test` for the
# test suite and its real peers (dockerd for a swarm, BIND, Knot and PowerDNS for DNS updates,
# PostgreSQL 15's server for the PostgreSQL store's tests,
# nginx with openssl for the TLS recipe in deploy/nginx), `bench` for the load tests (PostgreSQL 15
# for bench/replicas.sh),
# `fuzz` for the libFuzzer targets (clang 14 with its sanitizer and libFuzzer runtimes, and
# llvm-symbolizer for readable reports), `deb` for `make deb` (dpkg-shlibdeps computes Depends; CPack
# finds the ELF files with `file`), `image` for the package and image tests (`make test-deb`,
# `make test-image`: debootstrap makes their Debian base image; the test set includes it).
# Uses sudo when not run as root. Skips apt entirely when everything is already installed.
# TRIPLINE_DEPS_SIMULATE=1: resolve everything with `apt-get install --simulate`, install nothing
# (tests/package/fresh_test.sh: every name exists in Debian 12 and its dependencies resolve).
set -euo pipefail

build=(g++ make cmake pkg-config libpistache-dev libssl-dev nlohmann-json3-dev libsqlitecpp-dev
       libsqlite3-dev libcurl4-openssl-dev libldns-dev libre2-dev libyaml-cpp-dev libcli11-dev
       libsimdjson-dev libpq-dev)
test=(catch2 postgresql-15 docker.io containerd iproute2 busybox-static sqlite3 curl bind9 bind9-utils bind9-dnsutils
      knot knot-dnsutils pdns-server pdns-backend-sqlite3
      prometheus-alertmanager chromium nginx openssl docker-registry socat dpkg-dev file debootstrap
      jq python3)
bench=(wrk curl sqlite3 nginx docker.io containerd iproute2 busybox-static postgresql-15 python3)
fuzz=(clang-14 libclang-rt-14-dev llvm-14)
format=(clang-format-14 git)
deb=(dpkg-dev file)
image=(debootstrap docker.io containerd iproute2 busybox-static curl dpkg-dev file)

want=()
for set in "$@"; do
  case "$set" in
    build) want+=("${build[@]}") ;;
    test) want+=("${build[@]}" "${test[@]}") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    fuzz) want+=("${build[@]}" "${fuzz[@]}") ;;
    format) want+=("${format[@]}") ;;
    deb) want+=("${build[@]}" "${deb[@]}") ;;
    image) want+=("${build[@]}" "${image[@]}") ;;
    *) echo "usage: $0 build|test|bench|fuzz|format|deb|image ..." >&2; exit 2 ;;
  esac
done

# The UI test (tests/ui) runs on node and npm: Debian's, but only when there is no node at all,
# so a node installed another way (e.g. NodeSource's nodejs, which conflicts with Debian's npm)
# is left alone.
for set in "$@"; do
  if [ "$set" = test ] && ! command -v node >/dev/null 2>&1; then want+=(nodejs npm); fi
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
if [ -n "${TRIPLINE_DEPS_SIMULATE:-}" ]; then
  $sudo apt-get install --simulate --no-install-recommends "${missing[@]}" >&2
  exit
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
