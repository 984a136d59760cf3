#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: unit tests (cmocka)
# and end-to-end tests (node --test) against the release build, then both
# again against an AddressSanitizer + UBSan build. Ends with one line
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
log_dir=build/test-logs
mkdir -p "$log_dir"

# Two test files at a time. Debian 12's own nodejs (18.20) has the flag; a
# node older than 18.19 / 20.10 lacks it and then runs CPUs - 1 files at once.
node_conc=""
node --test-concurrency=2 -e '' >/dev/null 2>&1 && node_conc="--test-concurrency=2"
# A test that hangs fails after 5 minutes instead of holding up the run
# (node >= 18.19 / 20.10; without the flag a hang is cut by CI's limit).
node --test-timeout=1000 -e '' >/dev/null 2>&1 && node_conc="$node_conc --test-timeout=300000"

count_cmocka() { # $1 = output file
  local p f
  p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$1" | awk '{s+=$4} END {print s+0}')
  f=$(grep -Eo '^\[  FAILED  \] [0-9]+' "$1" | awk '{s+=$4} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}

run_pass() { # $1 = build dir, $2 = label, extra make args follow
  local build=$1 label=$2; shift 2
  echo "== $label: build"
  if ! make -s -j"$jobs" BUILD="$build" "$@" all unit >"$log_dir/$label-build.log" 2>&1; then
    cat "$log_dir/$label-build.log"
    echo "$label: build failed"
    failed=$((failed + 1))
    return
  fi
  echo "== $label: unit tests"
  for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    local out="$log_dir/$label-$(basename "$t").log"
    SY_VECTORS="${SY_VECTORS:-tests/vectors}" "$t" >"$out" 2>&1
    local rc=$?
    count_cmocka "$out"
    if [ $rc -ne 0 ]; then
      echo "-- $(basename "$t") failed:"; grep -E 'FAILED|ERROR|Failure|error' "$out" | head -40
      grep -q '^\[  FAILED  \]' "$out" || failed=$((failed + 1))
    fi
    grep -E '^\[  (PASSED|FAILED)  \]|skipped' "$out" | sed "s/^/   $(basename "$t"): /"
  done
  echo "== $label: end-to-end tests"
  if ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
    local out="$log_dir/$label-e2e.log"
    SWITCHYARD_BIN="$PWD/$build/switchyard" SY_VECTORS="${SY_VECTORS:-$PWD/tests/vectors}" \
      node --test --test-reporter=tap $node_conc tests/e2e/ >"$out" 2>&1
    local p f
    p=$(grep -E '^# pass [0-9]+' "$out" | awk '{print $3}' | tail -1)
    f=$(grep -E '^# fail [0-9]+' "$out" | awk '{print $3}' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    [ -z "$p" ] && failed=$((failed + 1))
    grep -E '^not ok' -A 30 "$out" | head -150
    echo "   e2e: ${p:-0} passed, ${f:-0} failed"
  fi
}

run_node_tests() { # $1 = label, $2 = folder: tests that check files, not builds
  local out="$log_dir/$1.log"
  ls "$2"/*.test.mjs >/dev/null 2>&1 || return 0
  echo "== $1 tests"
  node --test --test-reporter=tap "$2"/ >"$out" 2>&1
  local p f
  p=$(grep -E '^# pass [0-9]+' "$out" | awk '{print $3}' | tail -1)
  f=$(grep -E '^# fail [0-9]+' "$out" | awk '{print $3}' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  [ -z "$p" ] && failed=$((failed + 1))
  grep -E '^not ok' -A 30 "$out" | head -100
  echo "   $1: ${p:-0} passed, ${f:-0} failed"
}

start=$(date +%s)
run_pass build release
run_node_tests deploy tests/deploy
run_pass build/asan asan SAN=1
echo "== took $(( $(date +%s) - start ))s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
