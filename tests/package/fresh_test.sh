#!/usr/bin/env bash
# The README's "two commands" on a fresh minimal Debian 12: a clean debootstrap minbase bookworm
# container (the cached base image of tests/package/lib.sh, which package_deb uses too; no
# package lists, as in Docker's debian images) with this checkout mounted read-only at /src,
# nothing else installed. In it, as root:
#   1. the README's own install line (read from README.md, the text after "first", so what is
#      run is what a reader is told to run); `make` must then be there;
#   2. `make -n test` must begin with `scripts/install-deps.sh test` (make deps-test);
#   3. fast (ctest fresh_machine, part of `make test` and CI, about 40 s): `make deps-test` with
#      TRIPLINE_DEPS_SIMULATE=1: apt resolves every package the build and the suite need, with
#      their dependencies, from Debian 12's lists, and installs nothing;
#      full (`make test-fresh`, FRESH_FULL=1): `make deps-test` for real (7.5 to 9 min here:
#      771 packages in all, Chromium, node and three DNS servers among them), every tool the suite
#      calls on PATH, `cmake` configures (every library found), and `make build` compiles it.
#   The fast check leaves the download and the compile out: 7.5 min of installing would break
#   CI's 45-minute budget (.ci/run), and the same packages build this tree in every `make test`.
#   What only the full check can catch (a package that resolves but lacks a file the build
#   needs) is rare; run `make test-fresh` when scripts/install-deps.sh changes.
# Needs root, dockerd and the Debian mirror (as package_deb): skips (exit 77) without them, fails
# under CI=true.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readme=$pkg_src/README.md
# "...on a minimal one, such as `debootstrap --variant=minbase`, first `CMD` as root):"
install=$(grep -o 'first `[^`]*` as root' "$readme" | head -n 1 | sed 's/^first `//; s/` as root$//')
[ -n "$install" ] || fail "README.md has no line 'first \`COMMAND\` as root' for minimal machines"
grep -q '^make test ' "$readme" || fail "README.md's two commands no longer include 'make test'"
preflight
step "README's install line: $install"
start_docker

# What the build and the suite call by name (the CMake configure below checks the libraries).
tools="make cmake g++ pkg-config curl jq python3 sqlite3 dockerd containerd docker busybox named
  tsig-keygen dig nsupdate knotd knotc pdns_server prometheus-alertmanager amtool docker-registry
  socat nginx openssl chromium node npm nsenter ip debootstrap dpkg-shlibdeps"
full=${FRESH_FULL:-}
log=$(mktemp /tmp/tl-fresh-XXXXXX.log)
cleanup "rm -f '$log'"
docker run --rm --network host -v "$pkg_src:/src:ro" -e install="$install" -e tools="$tools" \
  -e full="$full" -e jobs="${FRESH_JOBS:-$(nproc)}" tripline-test/bookworm-minbase bash -euc '
    t0=$SECONDS
    step() { echo "fresh [$((SECONDS - t0)) s] $*"; }
    ! command -v make >/dev/null || { echo "FAILED: make is already in the base image"; exit 1; }
    bash -euc "$install"
    command -v make >/dev/null || { echo "FAILED: \"$install\" did not install make"; exit 1; }
    step "$install: make is there"
    first=$(make -s -n -C /src test | head -n 1)
    [ "$first" = "scripts/install-deps.sh test" ] ||
      { echo "FAILED: make test does not begin by installing its packages: $first"; exit 1; }
    if [ -z "$full" ]; then
      TRIPLINE_DEPS_SIMULATE=1 make -s -C /src deps-test >/tmp/deps.log 2>&1 ||
        { tail -n 20 /tmp/deps.log; echo "FAILED: make deps-test (simulated)"; exit 1; }
      step "make deps-test resolves $(grep -c "^Inst " /tmp/deps.log) packages (simulated)"
      exit 0
    fi
    make -C /src deps-test >/tmp/deps.log 2>&1 ||
      { tail -n 20 /tmp/deps.log; echo "FAILED: make deps-test"; exit 1; }
    step "make deps-test installed $(dpkg-query -W | wc -l) packages in all"
    for t in $tools; do command -v "$t" >/dev/null || missing="${missing:-} $t"; done
    [ -z "${missing:-}" ] || { echo "FAILED: not installed by make deps-test:$missing"; exit 1; }
    step "every tool is on PATH"
    cmake -S /src -B /tmp/build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/tmp/cmake.log 2>&1 ||
      { tail -n 30 /tmp/cmake.log; echo "FAILED: cmake could not configure"; exit 1; }
    step "cmake configured"
    nice make -C /src build BUILD=/tmp/build JOBS=$jobs >/tmp/build.log 2>&1 ||
      { tail -n 40 /tmp/build.log; echo "FAILED: make build"; exit 1; }
    /tmp/build/tripline --version
    step "make build done"' >"$log" 2>&1 || { tail -n 40 "$log"; fail "the fresh machine did not get there (above)"; }
grep '^fresh ' "$log" | sed 's/^/  /' >&2
step "done${full:+ (with the build)}"
