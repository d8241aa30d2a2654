#!/usr/bin/env bash
# The UI end-to-end test, as ctest runs it:   tests/ui/run.sh BUILD_DIR
# Installs playwright-core (npm ci, only when node_modules is missing or older than the lock
# file's content), then runs ui.test.mjs with node's test runner. It needs Debian's Chromium
# (/usr/bin/chromium), root and dockerd (scripts/install-deps.sh test installs them): without
# them it skips loudly, unless CI=true, where it fails. ctest shows only "Skipped"; the reason
# printed here is repeated after the run by tests/skip-reasons.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)

loud() {
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '!! UI end-to-end test %s: %s\n' "$1" "$2" >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}
cannot_run() {
  if [ "${CI:-}" = true ]; then loud "FAILED (CI=true)" "$1"; exit 1; fi
  loud SKIPPED "$1"
  exit 77
}

command -v node >/dev/null || cannot_run "node is not installed (scripts/install-deps.sh test)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || cannot_run "node $major is too old: the test needs node 18 or newer"

# Prerequisites the test itself checks too; checked here as well so ctest can report a skip.
if [ "${CI:-}" != true ]; then
  missing=()
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=("Chromium (${CHROMIUM:-/usr/bin/chromium}; apt-get install chromium)")
  [ "$(id -u)" -eq 0 ] || missing+=("root (for the isolated dockerd)")
  [ -x /usr/sbin/dockerd ] || missing+=("dockerd")
  [ -x "$build/tripline" ] || missing+=("$build/tripline")
  [ ${#missing[@]} -eq 0 ] || cannot_run "missing: ${missing[*]}"
fi

cd "$here"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.tripline-lock.sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ui test: npm ci (playwright-core)" >&2
  if ! npm ci --no-audit --no-fund --loglevel=error >"$build/ui-npm-ci.log" 2>&1; then
    cat "$build/ui-npm-ci.log" >&2
    cannot_run "npm ci failed (see above)"
  fi
  echo "$want" >"$stamp"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tripline-ui.XXXXXX")
# Belt and braces: if node is killed (ctest's timeout), the swarm is still stopped here.
cleanup() {
  [ -e "$work/swarm" ] && "$src/tests/support/dockerd-harness.sh" stop "$work/swarm" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

export TRIPLINE_BUILD_DIR="$build" UI_TEST_WORKDIR="$work"
node --test --test-reporter=spec "$here/ui.test.mjs"
