#!/usr/bin/env bash
# The API reference's test, as ctest runs it:   tests/openapi/run.sh BUILD_DIR
# Installs its pinned validators (npm ci, only when node_modules is missing or older than the lock
# file's content), then runs openapi.test.mjs with node's test runner against BUILD_DIR/tripline.
# Without node 18+ or npm it skips (exit 77) and says why on stdout, unless CI=true, where it fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)

cannot_run() {
  if [ "${CI:-}" = true ]; then echo "FAILED (CI=true): openapi test: $1"; exit 1; fi
  echo "SKIPPED: openapi test: $1"
  exit 77
}

command -v node >/dev/null || cannot_run "node is not installed (scripts/install-deps.sh test)"
command -v npm >/dev/null || cannot_run "npm is not installed (scripts/install-deps.sh test)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || cannot_run "node $major is too old: the test needs node 18 or newer"
[ -x "$build/tripline" ] || cannot_run "no tripline binary at $build/tripline (build it first)"

cd "$here"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.tripline-lock.sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "openapi test: npm ci" >&2
  if ! npm ci --no-audit --no-fund --loglevel=error >"$build/openapi-npm-ci.log" 2>&1; then
    cat "$build/openapi-npm-ci.log"
    cannot_run "npm ci failed (see above)"
  fi
  echo "$want" >"$stamp"
fi

export TRIPLINE_BUILD_DIR="$build"
exec node --test --test-reporter=spec "$here/openapi.test.mjs"
