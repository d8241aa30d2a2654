#!/usr/bin/env bash
# Run by ctest after the tests (CTEST_CUSTOM_POST_TEST, written by tests/CMakeLists.txt): prints
# why each skipped test or test part was skipped. ctest itself shows a skipped test only as
# "***Skipped" and never prints its output, not even with --output-on-failure; the reasons are in
# the run's log, which this reads. A reason is any output line with "SKIPPED" in it: tests/ui and
# tests/openapi print one before they exit 77, and the integration tests' Catch2 warnings
# (harness.cpp: swarm_or_skip, binary_or_skip) say "SKIPPED" for each part they leave out.
# Always exits 0: a report, never a verdict.
build=${1:-.}
log=$build/Testing/Temporary/LastTest.log.tmp  # the log of the run in progress
[ -f "$log" ] || log=$build/Testing/Temporary/LastTest.log
[ -f "$log" ] || exit 0
awk '
  /^[0-9]+\/[0-9]+ Testing: / { test = $0; sub(/^[0-9]+\/[0-9]+ Testing: /, "", test); next }
  /SKIPPED/ {
    line = $0
    gsub(/^[ !]+|[ !]+$/, "", line)
    key = test ": " line
    if (!(key in seen)) { seen[key] = 1; out[n++] = key }
  }
  END {
    if (n == 0) exit
    print ""
    print "Skipped, and why (CI=true makes each of these a failure):"
    for (i = 0; i < n; i++) print "  " out[i]
  }' "$log"
exit 0
