#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time and fails on any crash, leak, timeout or broken
# invariant. `make fuzz` builds the targets and calls this; see docs/fuzzing.md.
#
#   tests/fuzz/run.sh BUILD_DIR [TARGET...]     (targets: token rules body peer; default: all)
#
# FUZZ_SECONDS (default 20) bounds each target. Inputs the fuzzer finds go to
# BUILD_DIR/fuzz-corpus/TARGET (kept between runs, so a longer run picks up where the last one
# stopped); a crashing input goes to BUILD_DIR/fuzz-artifacts/TARGET/ and, once understood, into
# tests/fuzz/regressions/TARGET/ so the unit tests replay it forever. The checked-in seeds
# (tests/fuzz/corpus/TARGET) and regressions are read, never written.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR [TARGET...]}" && pwd)
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token rules body peer)
seconds=${FUZZ_SECONDS:-20}

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:check_initialization_order=1:strict_string_checks=1${symbolizer:+:external_symbolizer_path=$symbolizer}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${symbolizer:+:external_symbolizer_path=$symbolizer}"

passed=0 failed=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: $bin is not built (make fuzz builds it)" >&2; exit 2; }
  dict="$here/dict/json.dict"
  [ "$t" = token ] && dict="$here/dict/token.dict"
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$build/fuzz-$t.log"
  mkdir -p "$work" "$artifacts" "$here/regressions/$t"
  start=$SECONDS
  "$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=4096 \
    -dict="$dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "$work" "$here/corpus/$t" "$here/regressions/$t" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz: $t ok: ${runs:-?} inputs in $((SECONDS - start)) s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) files"
  else
    failed=$((failed + 1))
    echo "fuzz: $t FAILED (exit $rc) after $((SECONDS - start)) s; the report (full log: $log):" >&2
    grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse|INITED|RELOAD)' "$log" | tail -n 80 >&2
    echo "fuzz: the input is in $artifacts/; to keep it as a regression test:" >&2
    echo "fuzz:   cp $artifacts/<crash-file> tests/fuzz/regressions/$t/<what-it-is>" >&2
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
