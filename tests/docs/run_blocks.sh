#!/usr/bin/env bash
# docs_blocks: run the shell blocks of the docs, so they cannot rot.
#
# The marker: a line `<!-- run -->` right before a fence opening with ```sh (or ```bash). Such a
# block is run; every other block is an example (Kubernetes, a reader's own paths, root...) and
# its page says so. Every page named below must have at least one marked block.
#
# The blocks of one page run in order in one `bash -euo pipefail` (as a reader types them into one
# terminal: a variable set by a block is seen by the next), in a fresh empty directory, against a
# real `tripline serve` started here on a free loopback port with a temporary data directory, and
# against the real peers the pages act on, each started once here (loopback, free ports, own
# directories, all stopped and deleted at the end) and shared by the pages:
#   swarm         dockerd in swarm mode (tests/support/dockerd-harness.sh; root) with a service
#                 "web" of REGISTRY/team/web:v1.0.0, made anew at 1 replica before each page
#   named         BIND 9 (tests/support/named-harness.sh): zone $ZONE, TSIG key $TSIG_*
#   registry      Debian's docker-registry (distribution) on $REGISTRY, reachable from the
#                 swarm's network namespace at the same address through socat (as
#                 drivers/redeploy/redeploy_integration_test.cpp does)
#   alertmanager  prometheus-alertmanager on $ALERTMANAGER, configured by the shipped
#                 deploy/alertmanager/alertmanager.yml with only the URL's host, the token file
#                 and the intervals changed (as tests/integration/alertmanager_test.cpp does)
#   sink          tests/docs/sink.py: an HTTP endpoint answering 200 and logging each request,
#                 standing in for a chat's incoming webhook (no chat server runs here)
# The blocks see:
#   TRIPLINE, TRIPLINE_SERVER  the server's base URL       ADMIN, TRIPLINE_ADMIN_TOKEN  its admin token
#   DATA      the server's data directory                  LOG   the server's log (JSON lines)
#   SINK, SINK_LOG             the sink's URL and its log (one JSON line per request)
#   DOCKER_HOST                the swarm (`docker` talks to it; it is also tripline's --docker-host)
#   NAMED=127.0.0.1:PORT ZONE TSIG_KEY_NAME TSIG_ALGORITHM TSIG_SECRET   named and its key
#   REGISTRY=127.0.0.1:PORT    REGISTRY_CONFIG  the registry's config file (a block may add to it)
#   ALERTMANAGER               Alertmanager's URL; AM_TOKEN_FILE its bearer credentials_file
#   PATH      starts with a directory holding `tripline` (BUILD_DIR/tripline) and `systemctl`,
#             whose only command, `systemctl restart docker-registry`, restarts the registry
#             above with its config (the reader's systemd does that for the Debian package)
# A page names the peers it needs (`needs` below). A page whose peer cannot run here (not root,
# a package missing) is skipped with a line "SKIPPED: ..." naming it (tests/skip-reasons.sh
# shows it after ctest), the others still run, and the test exits 77; under CI=true a missing
# peer fails the test instead.
# A failing block fails the test, named by file and line.
#
# After the pages, the log-field table of docs/operations.md is checked against the log the
# server wrote (tests/docs/log_fields.py), and its metrics table against GET /metrics.
#
# Usage: tests/docs/run_blocks.sh BUILD_DIR [PAGE.md ...]   (default: the pages listed below)
# DOCS_VERBOSE=1 prints each page's output, failing or not.
set -euo pipefail
build=$(cd "${1:?usage: run_blocks.sh BUILD_DIR [PAGE.md ...]}" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
support=$root/tests/support
if [ $# -gt 0 ]; then pages=("$@"); else
  pages=("$root/docs/getting-started.md" "$root/docs/operations.md" "$root"/docs/howto/*.md
         "$root/docs/cli.md")
fi

# The peers each page acts on (see the top of this file).
needs() {
  case ${1##*/} in
    getting-started.md | notify.md) echo sink ;;
    alertmanager-scale.md) echo swarm alertmanager ;;
    redeploy-on-push.md | cli.md) echo swarm ;;
    dynamic-dns.md | dns-failover.md) echo named ;;
    *) echo ;;
  esac
}

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
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$tmp/registry" ] && "$here/registry.sh" stop "$tmp/registry"
  [ -d "$tmp/named" ] && "$support/named-harness.sh" stop "$tmp/named" 2>/dev/null
  [ -d "$tmp/swarm" ] && "$support/dockerd-harness.sh" stop "$tmp/swarm" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/bin" "$tmp/data" "$tmp/home"
ln -s "$build/tripline" "$tmp/bin/tripline"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# --- the peers: only those a page asks for, each once --------------------------------------
wanted=" $(for p in "${pages[@]}"; do needs "$p"; done | tr '\n' ' ') "
declare -A up=() why=()
missing() {  # PEER WHAT...: the first of the commands WHAT not installed, if any
  local peer=$1; shift
  for c in "$@"; do
    command -v "$c" >/dev/null || { why[$peer]="$c is not installed (scripts/install-deps.sh test)"; return 0; }
  done
  return 1
}
start=$(date +%s.%N)
swarm_job=
if [[ $wanted == *" swarm "* ]]; then
  if [ "$(id -u)" != 0 ]; then why[swarm]="dockerd needs root"
  elif ! missing swarm /usr/sbin/dockerd containerd docker busybox docker-registry socat nsenter; then
    # started in the background: the other peers start meanwhile
    mkdir -p "$tmp/swarm"
    "$support/dockerd-harness.sh" start "$tmp/swarm" >"$tmp/swarm.out" 2>"$tmp/swarm.err" &
    swarm_job=$!
  fi
fi
if [[ $wanted == *" named "* ]] && ! missing named /usr/sbin/named /usr/sbin/tsig-keygen dig; then
  mkdir -p "$tmp/named"
  if out=$("$support/named-harness.sh" start "$tmp/named" 2>"$tmp/named.err"); then
    eval "$out"
    export NAMED ZONE TSIG_KEY_NAME TSIG_ALGORITHM TSIG_SECRET
    up[named]=1
  else
    why[named]="named-harness.sh did not start: $(tail -1 "$tmp/named.err")"
  fi
fi
if [[ $wanted == *" sink "* ]]; then
  python3 "$here/sink.py" "$tmp/sink.port" "$tmp/sink.log" & pids+=($!)
  for _ in $(seq 50); do [ -s "$tmp/sink.port" ] && break; sleep 0.1; done
  [ -s "$tmp/sink.port" ] || { echo "FAIL: tests/docs/sink.py did not start" >&2; exit 1; }
  export SINK=http://127.0.0.1:$(cat "$tmp/sink.port") SINK_LOG=$tmp/sink.log
  touch "$SINK_LOG"
  up[sink]=1
fi

port=$(free_port)
export TRIPLINE=http://127.0.0.1:$port
if [[ $wanted == *" alertmanager "* ]] && ! missing alertmanager prometheus-alertmanager; then
  # deploy/alertmanager/alertmanager.yml as shipped but for the URL's scheme and host, the token's
  # file and the intervals; each of them must be in the file as the sed expects it.
  mkdir -p "$tmp/am"
  export AM_TOKEN_FILE=$tmp/am/tripline-token ALERTMANAGER=http://127.0.0.1:$(free_port)
  : >"$AM_TOKEN_FILE"
  sed -e "s|url: 'https://hooks.example.com/_webhooks/trigger'|url: '$TRIPLINE/_webhooks/trigger'|" \
      -e "s|credentials_file: /etc/alertmanager/tripline-token|credentials_file: $AM_TOKEN_FILE|" \
      -e "s|group_wait: 30s|group_wait: 1s|; s|group_interval: 5m|group_interval: 1s|" \
      "$root/deploy/alertmanager/alertmanager.yml" >"$tmp/am/am.yml"
  if [ "$(grep -cE "$TRIPLINE/_webhooks/trigger|$AM_TOKEN_FILE|group_wait: 1s|group_interval: 1s" "$tmp/am/am.yml")" != 4 ]; then
    echo "FAIL: deploy/alertmanager/alertmanager.yml no longer has the url, credentials_file," \
         "group_wait or group_interval this test changes" >&2; exit 1
  fi
  prometheus-alertmanager --config.file="$tmp/am/am.yml" --storage.path="$tmp/am/data" \
    --web.listen-address="${ALERTMANAGER#http://}" --cluster.listen-address= \
    >"$tmp/am/am.log" 2>&1 & pids+=($!)
  for _ in $(seq 100); do curl -sf -o /dev/null "$ALERTMANAGER/-/ready" && break; sleep 0.05; done
  if curl -sf -o /dev/null "$ALERTMANAGER/-/ready"; then up[alertmanager]=1
  else why[alertmanager]="prometheus-alertmanager did not start: $(tail -1 "$tmp/am/am.log")"; fi
fi
if [ -n "$swarm_job" ]; then
  if wait "$swarm_job"; then
    export "$(grep '^DOCKER_HOST=' "$tmp/swarm.out")"
    eval "$("$here/registry.sh" start "$tmp/registry" "$tmp/swarm/netns")"
    export REGISTRY REGISTRY_CONFIG
    # v1.0.0 of the image the service "web" runs: busybox with a label, pushed from the swarm.
    printf 'FROM tripline-test/busybox:latest\nLABEL tripline.docs=v1.0.0\n' |
      docker build -q -t "$REGISTRY/team/web:v1.0.0" - >/dev/null 2>"$tmp/build.err"
    docker push -q "$REGISTRY/team/web:v1.0.0" >/dev/null
    up[swarm]=1
  else
    why[swarm]="dockerd-harness.sh did not start: $(tail -1 "$tmp/swarm.err")"
  fi
fi
peers=$(for k in "${!up[@]}"; do echo "$k"; done | sort | tr '\n' ' ')
echo "peers: ${peers:-none} ($(elapsed "$start") s)"

# `systemctl restart docker-registry`, as the reader's systemd would do it, and nothing else.
cat >"$tmp/bin/systemctl" <<SHIM
#!/usr/bin/env bash
[ "\$*" = "restart docker-registry" ] && [ -d "$tmp/registry" ] && exec "$here/registry.sh" restart "$tmp/registry"
echo "systemctl (docs_blocks): only 'restart docker-registry' is here, not: \$*" >&2; exit 1
SHIM
chmod +x "$tmp/bin/systemctl"

# --- the server --------------------------------------------------------------------------
admin=tl_docs_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
# debug: the log-field check below needs the "trigger rejected" lines
TRIPLINE_ADMIN_TOKEN=$admin "$build/tripline" serve --listen "127.0.0.1:$port" \
  --data-dir "$tmp/data" --allow-local-webhook-targets true --retry-base-ms 100 --max-attempts 3 \
  --docker-host "${DOCKER_HOST:-unix://$tmp/no-docker.sock}" --log-level debug \
  >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do
  curl -sf "$TRIPLINE/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "$TRIPLINE/healthz" >/dev/null || {
  echo "FAIL: tripline serve did not answer /healthz:" >&2; cat "$tmp/server.log" >&2; exit 1; }

export ADMIN=$admin TRIPLINE_SERVER=$TRIPLINE TRIPLINE_ADMIN_TOKEN=$admin
export DATA=$tmp/data LOG=$tmp/server.log
export PATH=$tmp/bin:$PATH HOME=$tmp/home   # no ~/.config/tripline/config of the user
unset XDG_CONFIG_HOME TRIPLINE_CONFIG

# Before each page on the swarm: the service "web" anew, v1.0.0 at 1 replica.
fresh_web() {
  timeout 20 docker service rm web >/dev/null 2>&1 || true
  timeout 20 docker service create --detach --quiet --name web --replicas 1 --no-resolve-image \
    --stop-grace-period 1s "$REGISTRY/team/web:v1.0.0" sleep 3600 >/dev/null
}

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

failed=0 total=0 skipped=0 ran=0
for page in "${pages[@]}"; do
  rel=${page#"$root"/}
  [ -f "$page" ] || { echo "FAIL: $rel: no such page" >&2; failed=1; continue; }
  script=$tmp/$(basename "$page").sh
  n=$(extract "$page" "$script")
  if [ "$n" -eq 0 ]; then
    echo "FAIL: $rel: no block marked <!-- run -->" >&2; failed=1; continue
  fi
  absent=
  for peer in $(needs "$page"); do
    [ -n "${up[$peer]:-}" ] || absent+=" $peer (${why[$peer]:-not started})"
  done
  if [ -n "$absent" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $rel: its peers cannot run here:$absent" >&2; failed=1
    else echo "SKIPPED: $rel: its peers cannot run here:$absent"; skipped=1; fi
    continue
  fi
  [[ " $(needs "$page") " != *" swarm "* ]] || fresh_web
  # the block being run is named on failure
  sed -i "s|^__block=\"$page:|__block=\"$rel:|" "$script"
  { echo 'trap '\''rc=$?; [ $rc -eq 0 ] || echo "FAIL: block at $__block (exit $rc)" >&2'\'' EXIT'
    cat "$script"; } >"$script.run"
  work=$tmp/work-$(basename "$page" .md); mkdir -p "$work"
  start=$(date +%s.%N)
  if (cd "$work" && timeout 60 bash -euo pipefail "$script.run" >"$work.out" 2>&1); then
    printf 'ok: %s (%d blocks, %s s)\n' "$rel" "$n" "$(elapsed "$start")"
    total=$((total + n)) ran=$((ran + 1))
    [ -z "${DOCS_VERBOSE:-}" ] || sed 's/^/  | /' "$work.out"
  else
    echo "FAIL: $rel; its output:" >&2; sed 's/^/  | /' "$work.out" >&2; failed=1
  fi
done

ops=$root/docs/operations.md
if [ -f "$ops" ]; then
  # The metrics table of docs/operations.md names exactly the metric families the server exports
  # (each "# TYPE" line of /metrics), so a metric added, renamed or dropped fails here.
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

  # The log table: provoke what the pages did not (a forged token, an execution retried and then
  # failed: nothing listens on port 1), stop the server, and compare the fields of every line it
  # wrote with the table.
  curl -s -o /dev/null -X POST "$TRIPLINE/_webhooks/not-a-token"
  id=$(curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
         -d '{"name":"docs-log-fields","driver":"webhook","config":{"url":"http://127.0.0.1:1/","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}' \
         "$TRIPLINE/api/v1/receivers" | jq -r .name)
  tripline trigger "$id" --data '{}' --wait >/dev/null 2>&1 || true
  kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=
  if python3 "$here/log_fields.py" "$ops" "$tmp/server.log"; then :; else failed=1; fi
fi

if [ $failed -ne 0 ]; then
  echo "--- tripline's log (last 20 lines):" >&2; tail -20 "$tmp/server.log" >&2
  exit 1
fi
echo "ok: $total blocks in $ran pages"
[ $skipped -eq 0 ] || exit 77
