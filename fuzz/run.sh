#!/usr/bin/env bash
# The fuzz runner behind `make fuzz`. Each fuzz/fuzz_NAME.c is a libFuzzer
# target whose first lines say which sources it links ("// sources: a.c b.c",
# paths relative to the repository root); the pure modules (parser, chunked
# decoder, document parsers) are fuzzed on their own, with no sockets.
#
# Builds every target with clang + ASan + UBSan into build/fuzz/NAME, then
# runs each for FUZZ_SECONDS on its own corpus build/fuzz/corpus/NAME (seeded
# from fuzz/seeds/NAME/ and from the minimized corpus of the long runs kept
# in fuzz/corpus/NAME/, so a run starts where the depth runs got to, and
# keeps what earlier runs found), with the dictionary fuzz/seeds/NAME.dict.
# Exits non-zero when a target fails to build or any run crashes; the
# crashing input is kept in build/fuzz/artifacts/.
#
# Knobs (environment): FUZZ_SECONDS [60], FUZZ_JOBS [number of CPUs: targets
# run side by side], FUZZ_TARGETS [all; names such as "fuzz_request" or
# paths to .c files].
# For a depth run (docs/testing.md, "Fuzzing at depth"):
#   FUZZ_RUNS      stop a target after this many executions (libFuzzer -runs)
#   FUZZ_DEADLINE  epoch seconds by which all targets must be done: each one
#                  started gets min(FUZZ_SECONDS, time left / targets left)
#                  (meant for FUZZ_JOBS=1, so a fast target's unused time
#                  goes to the slower ones after it)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang [10];
#                  raise it when the machine is busy (a starved process is
#                  not a slow input)
#   FUZZ_KEEP=1    after each run, minimize its corpus (-merge=1 into a fresh
#                  directory) and store the result as fuzz/corpus/NAME/
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
CLANG=${CLANG:-clang}
out=build/fuzz
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"

pkgs=(jansson libuv libssl libcrypto libcurl libcares)
# -fno-sanitize-recover: undefined behaviour must stop the run like a crash,
# not scroll past as a warning.
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c17 -D_GNU_SOURCE -Isrc"
read -r -a pkg_cflags <<<"$(pkg-config --cflags "${pkgs[@]}")"
read -r -a pkg_libs <<<"$(pkg-config --libs "${pkgs[@]}") -lcrypt -lpthread -lm"

if ! command -v "$CLANG" >/dev/null 2>&1; then
  echo "fuzz: $CLANG not found (scripts/deps.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi

targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
  for t in $FUZZ_TARGETS; do
    case "$t" in */*) targets+=("$t") ;; *) targets+=("fuzz/${t%.c}.c") ;; esac
  done
else
  for f in fuzz/fuzz_*.c; do [ -e "$f" ] && targets+=("$f"); done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz/fuzz_*.c targets"
  exit 0
fi

failed=0
built=()
for src in "${targets[@]}"; do
  name=$(basename "$src" .c)
  if [ ! -f "$src" ]; then
    echo "fuzz: $src does not exist" >&2
    failed=$((failed + 1))
    continue
  fi
  # The sources line sits in the first few lines, as "// sources: a.c b.c";
  # a long list continues on the next "//" lines that hold only .c paths.
  sources=$(head -n 20 "$src" | awk '
    !found && sub(/^[[:space:]]*\/\/[[:space:]]*sources:[[:space:]]*/, "") { found = 1; print; next }
    found {
      if (!sub(/^[[:space:]]*\/\/[[:space:]]*/, "")) exit
      for (i = 1; i <= NF; i++) if ($i !~ /\.c$/) exit
      print
    }' | tr '\n' ' ' | sed 's/[[:space:]]*$//')
  if [ -z "$sources" ]; then
    echo "fuzz: $src has no '// sources: ...' line in its first 20 lines" >&2
    failed=$((failed + 1))
    continue
  fi
  # Unquoted on purpose: the list may hold globs (src/policy/*.c).
  # shellcheck disable=SC2206
  source_files=($sources)
  echo "== $name: build ($sources)"
  # shellcheck disable=SC2086
  if ! "$CLANG" $CFLAGS "${pkg_cflags[@]}" "$src" "${source_files[@]}" "${pkg_libs[@]}" \
    -o "$out/$name" >"$out/logs/$name-build.log" 2>&1; then
    cat "$out/logs/$name-build.log" >&2
    echo "fuzz: $name failed to build" >&2
    failed=$((failed + 1))
    continue
  fi
  mkdir -p "$out/corpus/$name"
  # Seeds overwrite their earlier copies (an edited seed must reach the
  # fuzzer); the kept corpus's files are named by content hash.
  if [ -d "fuzz/seeds/$name" ]; then
    cp fuzz/seeds/"$name"/* "$out/corpus/$name/" 2>/dev/null || true
  fi
  if [ -d "fuzz/corpus/$name" ]; then
    cp -n fuzz/corpus/"$name"/* "$out/corpus/$name/" 2>/dev/null || true
  fi
  built+=("$name")
done

run_one() { # $1 = name, $2 = seconds; exit status of the fuzzer
  local name=$1 seconds=$2 dict=() runs=() rc
  [ -f "fuzz/seeds/$name.dict" ] && dict=(-dict="fuzz/seeds/$name.dict")
  [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
  # -fork=0: one in-process fuzzer per target, so FUZZ_JOBS alone says how
  # many cores a run takes.
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$out/$name" "${dict[@]}" "${runs[@]}" -fork=0 -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" \
    "$out/corpus/$name" >"$out/logs/$name.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ] && [ "${FUZZ_KEEP:-0}" = 1 ]; then
    keep_corpus "$name" || rc=$?
  fi
  echo "$rc" >"$out/logs/$name.rc"
  return "$rc"
}

keep_corpus() { # $1 = name: minimize the run's corpus into fuzz/corpus/NAME
  local name=$1 fresh="$out/merged/$1"
  rm -rf "$fresh" && mkdir -p "$fresh"
  "$out/$name" -merge=1 -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 "$fresh" "$out/corpus/$name" \
    >"$out/logs/$name-merge.log" 2>&1 || return 1
  rm -rf "fuzz/corpus/$name" && mkdir -p fuzz/corpus && cp -r "$fresh" "fuzz/corpus/$name"
}

seconds_for() { # $1 = targets not yet started
  local left
  if [ -z "${FUZZ_DEADLINE:-}" ]; then
    echo "$FUZZ_SECONDS"
    return
  fi
  left=$(((FUZZ_DEADLINE - $(date +%s)) / $1))
  [ "$left" -lt 1 ] && left=1
  [ "$left" -gt "$FUZZ_SECONDS" ] && left=$FUZZ_SECONDS
  echo "$left"
}

echo "== running ${#built[@]} target(s) for ${FUZZ_SECONDS}s each, $FUZZ_JOBS at a time"
declare -A pid_of=()
stop_fuzzers() {
  local pid
  for pid in "${pid_of[@]}"; do kill "$pid" 2>/dev/null; done
  exit 130
}
trap stop_fuzzers INT TERM
report() { # $1 = name, $2 = exit status
  local name=$1 rc=$2 log="$out/logs/$1.log" runs cov
  runs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  speed=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | awk '{print $2}' | tail -1)
  if [ "$rc" -eq 0 ]; then
    printf '   %-20s ok: %s runs, %s exec/s, coverage %s edges, corpus %s inputs%s\n' "$name" \
      "${runs:-?}" "${speed:-?}" "${cov:-?}" "$(find "$out/corpus/$name" -type f | wc -l)" \
      "$([ "${FUZZ_KEEP:-0}" = 1 ] && [ -d "fuzz/corpus/$name" ] &&
        printf ', kept %s inputs (%s) in fuzz/corpus/%s' "$(find "fuzz/corpus/$name" -type f | wc -l)" \
          "$(du -sh --apparent-size "fuzz/corpus/$name" | cut -f1)" "$name")"
  else
    failed=$((failed + 1))
    echo "   $name FAILED (exit $rc); log: $log"
    grep -E '^==[0-9]+==ERROR|SUMMARY|runtime error|Test unit written to' "$log" | head -10 | sed 's/^/     /'
    grep -Eo 'Test unit written to .*' "$log" | head -1 | sed "s|Test unit written to |     reproduce: $out/$name |"
  fi
}
not_started=${#built[@]}
for name in "${built[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$FUZZ_JOBS" ]; do sleep 0.5; done
  seconds=$(seconds_for "$not_started")
  not_started=$((not_started - 1))
  echo "   $name: up to ${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS runs} ($(date -u +%H:%M:%S) UTC)"
  rm -f "$out/logs/$name.rc"
  run_one "$name" "$seconds" &
  pid_of[$name]=$!
done
for name in "${built[@]}"; do
  # The status comes from the file run_one writes: on a long run bash may
  # forget a finished job's status (its pid reused by a later child) and
  # `wait` would answer 127 for a fuzzer that ended fine.
  wait "${pid_of[$name]}" 2>/dev/null
  report "$name" "$(cat "$out/logs/$name.rc" 2>/dev/null || echo 127)"
done

if [ "$failed" -ne 0 ]; then
  echo "fuzz: $failed target(s) failed"
  exit 1
fi
echo "fuzz: all ${#built[@]} target(s) ran ${FUZZ_SECONDS}s without a crash"
