#!/usr/bin/env bash
# docs_config: docs/configuration.md against `tripline serve --help`.
# Every --flag and every TRIPLINE_* / KUBECONFIG variable --help prints must be named in
# docs/configuration.md, and every one the page names must be in --help (no stale entries);
# every "(default VALUE)" of --help must be in that flag's table row.
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
# Each default --help states, "(default VALUE)", must be in the doc's table row of that flag
# (the row starting with "| `--flag"), as `VALUE`.
defaults=$("$bin" serve --help 2>&1 | python3 -c '
import re, sys
cur, text = None, {}
for line in sys.stdin.read().splitlines():
    m = re.match(r"^  (--[a-z][a-z0-9-]+)\b", line)
    if m:
        cur = m.group(1); text[cur] = line; continue
    if cur and re.match(r"^ {20,}\S", line) and not re.match(r"^ +TRIPLINE_", line):
        text[cur] += " " + line.strip(); continue
    cur = None
for flag, t in text.items():
    d = re.search(r"\(default ([^);]*)", t)
    if d: print(flag, d.group(1).strip())
')
nd=0 bt='`'
while read -r flag value; do
  nd=$((nd + 1))
  row=$(grep -E -- "^[|] $bt$flag( |$bt)" "$doc" || true)
  if [ -z "$row" ]; then
    echo "FAIL: $doc has no table row for $flag" >&2; rc=1
  elif ! grep -qF -- "$bt$value$bt" <<<"$row"; then
    echo "FAIL: $doc's row for $flag lacks its default $bt$value$bt (tripline serve --help)" >&2; rc=1
  fi
done <<<"$defaults"
[ "$nd" -ge 15 ] || { echo "FAIL: only $nd defaults read from --help" >&2; rc=1; }
[ $rc -eq 0 ] && echo "ok: $n flags and variables, each in --help and in $(basename "$doc"); $nd defaults as --help states them"
exit $rc
