#!/usr/bin/env bash
# Runs a script of this folder (sign.mjs, verify.mjs) under node after installing its pinned
# dependencies (npm ci; only when node_modules is missing or older than the lock file).
# Exit 77 when node or npm is missing. Usage: node.sh SCRIPT.mjs ARGS...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed" >&2; exit 77; }
cd "$here"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.tripline-lock.sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # Concurrent callers wait for one install.
  exec 9>"$here/.install.lock"
  flock 9
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$want" > "$stamp"
  fi
fi
exec node "$@"
