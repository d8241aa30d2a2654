#!/usr/bin/env bash
# docs_blocks: run the shell blocks of the docs, so they cannot rot.
#
# The marker: a line `<!-- run -->` right before a fence opening with ```sh (or ```bash). Such a
# block is run; every other block is an example (a swarm, a DNS server, Kubernetes, root...) and
# its page says so. Every page named below must have at least one marked block.
#
# The blocks of one page run in order in one `bash -euo pipefail` (as a reader types them into one
# terminal: a variable set by a block is seen by the next), in a fresh empty directory, against a
# real `tripline serve` started here on a free loopback port with a temporary data directory and
# a tiny local peer (tests/docs/sink.py). The blocks see:
#   TRIPLINE, TRIPLINE_SERVER  the server's base URL       ADMIN, TRIPLINE_ADMIN_TOKEN  its admin token
#   SINK      an HTTP sink answering 200 to every request; SINK_LOG has one JSON line per request
#   PROVIDER  an ExternalDNS webhook provider for example.org (records in memory)
#   DOCKER    the server's --docker-host: a stand-in for Docker's services API with a
#             replicated service "web" at 1 replica (a real swarm needs root and seconds)
#   DATA      the server's data directory                  LOG   the server's log (JSON lines)
#   PATH      starts with a directory holding `tripline` (BUILD_DIR/tripline)
# A failing block fails the test, named by file and line.
#
# Usage: tests/docs/run_blocks.sh BUILD_DIR [PAGE.md ...]   (default: the pages listed below)
# DOCS_VERBOSE=1 prints each page's output, failing or not.
set -euo pipefail
build=$(cd "${1:?usage: run_blocks.sh BUILD_DIR [PAGE.md ...]}" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -gt 0 ]; then pages=("$@"); else
  pages=("$root/docs/getting-started.md" "$root/docs/operations.md" "$root"/docs/howto/*.md
         "$root/docs/cli.md")
fi

for tool in curl jq python3 sqlite3; do
  command -v $tool >/dev/null || {
    echo "SKIPPED: $tool is not installed (scripts/install-deps.sh test)"
    [ "${CI:-}" = true ] && exit 1
    exit 77
  }
done
[ -x "$build/tripline" ] || { echo "FAIL: $build/tripline not found" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/bin" "$tmp/data" "$tmp/home"
ln -s "$build/tripline" "$tmp/bin/tripline"

python3 "$here/sink.py" "$tmp/sink.port" "$tmp/sink.log" & pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/sink.port" ] && break; sleep 0.1; done
[ -s "$tmp/sink.port" ] || { echo "FAIL: tests/docs/sink.py did not start" >&2; exit 1; }
sink=http://127.0.0.1:$(cat "$tmp/sink.port")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=tl_docs_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
TRIPLINE_ADMIN_TOKEN=$admin "$build/tripline" serve --listen "127.0.0.1:$port" \
  --data-dir "$tmp/data" --allow-local-webhook-targets true --retry-base-ms 100 --docker-host "$sink/docker" \
  >"$tmp/server.out" 2>"$tmp/server.log" & pids+=($!)

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || {
  echo "FAIL: tripline serve did not answer /healthz:" >&2; cat "$tmp/server.log" >&2; exit 1; }

export TRIPLINE=http://127.0.0.1:$port ADMIN=$admin
export TRIPLINE_SERVER=$TRIPLINE TRIPLINE_ADMIN_TOKEN=$admin
export SINK=$sink SINK_LOG=$tmp/sink.log
export PROVIDER=$SINK/externaldns DOCKER=$sink/docker DATA=$tmp/data LOG=$tmp/server.log
export PATH=$tmp/bin:$PATH HOME=$tmp/home   # no ~/.config/tripline/config of the user
unset XDG_CONFIG_HOME TRIPLINE_CONFIG
touch "$tmp/sink.log"

# Writes one script per page: each marked block preceded by a line naming where it is.
extract() {  # PAGE OUT -> prints the number of blocks
  awk -v page="$1" '
    /^<!-- run -->[[:space:]]*$/ { marked = NR; next }
    !inblock && /^```(sh|bash)([[:space:]].*)?$/ && marked == NR - 1 {
      inblock = 1; n++
      printf "__block=\"%s:%d\"\n", page, NR
      next
    }
    marked && marked == NR - 1 && !inblock {
      # a marker not right before a ```sh fence would silently run nothing
      printf "__block=\"%s:%d\"; echo \"<!-- run --> is not followed by a \\`\\`\\`sh fence\" >&2; exit 1\n", page, marked
      marked = 0
    }
    inblock && /^```[[:space:]]*$/ { inblock = 0; next }
    inblock { print }
    END { if (inblock) { print "echo \"unterminated block\" >&2; exit 1" }; print n + 0 > "/dev/stderr" }
  ' "$1" 2>"$2.count" >"$2"
  cat "$2.count"
}

failed=0 total=0
for page in "${pages[@]}"; do
  rel=${page#"$root"/}
  [ -f "$page" ] || { echo "FAIL: $rel: no such page" >&2; failed=1; continue; }
  script=$tmp/$(basename "$page").sh
  n=$(extract "$page" "$script")
  if [ "$n" -eq 0 ]; then
    echo "FAIL: $rel: no block marked <!-- run -->" >&2; failed=1; continue
  fi
  # the block being run is named on failure
  sed -i "s|^__block=\"$page:|__block=\"$rel:|" "$script"
  { echo 'trap '\''rc=$?; [ $rc -eq 0 ] || echo "FAIL: block at $__block (exit $rc)" >&2'\'' EXIT'
    cat "$script"; } >"$script.run"
  work=$tmp/work-$(basename "$page" .md); mkdir -p "$work"
  start=$(date +%s.%N)
  if (cd "$work" && timeout 25 bash -euo pipefail "$script.run" >"$work.out" 2>&1); then
    printf 'ok: %s (%d blocks, %.1f s)\n' "$rel" "$n" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"
    total=$((total + n))
    [ -z "${DOCS_VERBOSE:-}" ] || sed 's/^/  | /' "$work.out"
  else
    echo "FAIL: $rel; its output:" >&2; sed 's/^/  | /' "$work.out" >&2; failed=1
  fi
done

# The metrics table of docs/operations.md names exactly the metric families the server exports
# (each "# TYPE" line of /metrics), so a metric added, renamed or dropped fails here.
ops=$root/docs/operations.md
if [ -f "$ops" ]; then
  served=$(curl -sf "$TRIPLINE/metrics" | awk '/^# TYPE tripline_/ {print $3}' | sort -u)
  documented=$(grep -oE '^\| `tripline_[a-z0-9_]+`' "$ops" | grep -oE 'tripline_[a-z0-9_]+' | sort -u)
  if [ -z "$served" ]; then
    echo "FAIL: GET /metrics named no tripline_ metric family" >&2; failed=1
  elif [ "$served" != "$documented" ]; then
    echo "FAIL: docs/operations.md's metrics table differs from GET /metrics:" >&2
    diff <(echo "$documented") <(echo "$served") | sed 's/^</  only in the doc:/; s/^>/  only served:/' >&2
    failed=1
  else
    echo "ok: docs/operations.md's metrics table names the $(echo "$served" | wc -l) metric families /metrics serves"
  fi
fi

if [ $failed -ne 0 ]; then
  echo "--- tripline's log (last 20 lines):" >&2; tail -20 "$tmp/server.log" >&2
  exit 1
fi
echo "ok: $total blocks in ${#pages[@]} pages"
