#!/usr/bin/env bash
# docs_config: docs/configuration.md against `tripline serve --help`.
# Every --flag and every TRIPLINE_* / KUBECONFIG variable --help prints must be named in
# docs/configuration.md, and every one the page names must be in --help (no stale entries).
# Usage: tests/docs/config_reference.sh BUILD_DIR [DOC]
set -euo pipefail
build=${1:?usage: config_reference.sh BUILD_DIR [DOC]}
here=$(cd "$(dirname "$0")" && pwd)
doc=${2:-$here/../../docs/configuration.md}
bin=$build/tripline
[ -x "$bin" ] || { echo "FAIL: $bin not found or not executable" >&2; exit 1; }
[ -f "$doc" ] || { echo "FAIL: $doc not found" >&2; exit 1; }

names() { grep -oE -- '--[a-z][a-z0-9-]+|\bTRIPLINE_[A-Z0-9_]+|\bKUBECONFIG\b' | sort -u; }
help_names=$("$bin" serve --help 2>&1 | names)
doc_names=$(names < "$doc")

n=$(printf '%s\n' "$help_names" | grep -c .)
# A --help that lost its flag list must not pass as "nothing missing".
[ "$n" -ge 20 ] || { echo "FAIL: only $n names in 'tripline serve --help'" >&2; exit 1; }

missing=$(comm -23 <(printf '%s\n' "$help_names") <(printf '%s\n' "$doc_names"))
stale=$(comm -13 <(printf '%s\n' "$help_names") <(printf '%s\n' "$doc_names"))
rc=0
if [ -n "$missing" ]; then
  echo "FAIL: in 'tripline serve --help' but not in $doc:" >&2; printf '  %s\n' $missing >&2; rc=1
fi
if [ -n "$stale" ]; then
  echo "FAIL: in $doc but not in 'tripline serve --help':" >&2; printf '  %s\n' $stale >&2; rc=1
fi
[ $rc -eq 0 ] && echo "ok: $n flags and variables, each in --help and in $(basename "$doc")"
exit $rc
