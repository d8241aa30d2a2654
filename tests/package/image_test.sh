#!/usr/bin/env bash
# The container image, built as the Dockerfile says and driven through its published port:
#   tests/package/image_test.sh        (make test-image)
#
# No registry is reachable: the Dockerfile's `FROM debian:bookworm-slim` is satisfied by the
# cached debootstrap minbase bookworm (tests/package/lib.sh) tagged debian:bookworm-slim inside
# an isolated dockerd. `docker build --network host` (apt in the build reaches the mirror), then
# `docker run -p 127.0.0.1::8080`: /healthz, the admin token from `docker logs`, a webhook
# receiver created and triggered through the published port into a sink on the host, the server
# running as uid 10001, its data in the volume owned by it, and the health check turning healthy.
# Needs root, dockerd and the mirror: skips (exit 77) without them, fails under CI=true.
# The build compiles tripline from scratch inside the image (no ccache): minutes on 2 cores.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

preflight
start_docker
docker tag tripline-test/bookworm-minbase debian:bookworm-slim

log=$(mktemp /tmp/tl-image-build-XXXXXX.log)
cleanup "rm -f '$log'"
t=$SECONDS
if ! docker build --network host -t tripline:test "$pkg_src" >"$log" 2>&1; then
  tail -n 40 "$log"
  fail "docker build failed"
fi
build_s=$((SECONDS - t))
size=$(docker image inspect tripline:test -f '{{.Size}}')
step "docker build --network host: ${build_s} s, image $((size / 1000000)) MB"

docker run -d --name tl -p 127.0.0.1::8080 tripline:test >/dev/null
port=$(docker port tl 8080/tcp | head -n 1 | sed 's/.*://')
base=http://127.0.0.1:$port
health() { curl -fsS --max-time 2 "$base/healthz"; }
if ! poll 30 health; then
  docker logs tl 2>&1 | tail -n 30
  fail "the container does not answer /healthz through the published port $base"
fi
step "container up, /healthz answers on $base"

token=$(docker logs tl 2>/dev/null | grep -oE '^ +tl_[A-Za-z0-9_-]+' | tr -d ' ' | head -n 1)
[ -n "$token" ] || { docker logs tl 2>&1 | tail -n 20; fail "no admin token in docker logs"; }

start_sink "$BRIDGE_GW"
drive_server "$base" "$token"

who=$(docker exec tl sh -c 'id -u; stat -c "%u %a" /var/lib/tripline; find /var/lib/tripline ! -user 10001')
printf '%s\n' "$who" | sed 's/^/  container: /' >&2
[ "$(printf '%s\n' "$who" | sed -n 1p)" = 10001 ] || fail "the server does not run as uid 10001"
[ "$(printf '%s\n' "$who" | sed -n 2p)" = "10001 700" ] || fail "/var/lib/tripline is not 10001's, mode 700"
[ -z "$(printf '%s\n' "$who" | sed -n '3,$p')" ] || fail "files in /var/lib/tripline not owned by 10001"
docker exec tl test -s /var/lib/tripline/tripline.db || fail "no database in the volume"

# HEALTHCHECK: first probe after its 30 s interval.
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' tl)" = healthy ]; }
poll 60 healthy || fail "the HEALTHCHECK did not report healthy within 60 s ($(docker inspect -f '{{.State.Health.Status}}' tl))"
step "HEALTHCHECK: healthy"

echo "image_test: passed in $((SECONDS - pkg_t0)) s (docker build ${build_s} s, image $((size / 1000000)) MB)"
