#!/usr/bin/env bash
# Line and region coverage of the fuzz corpora (docs/testing.md, "Fuzzing
# at depth"). Builds each target again with clang's source-based coverage
# (-fprofile-instr-generate -fcoverage-mapping, no sanitizers), replays its
# corpus (fuzz/corpus/NAME/ and fuzz/seeds/NAME/; -runs=0 executes every
# input once and fuzzes nothing), merges the profile and prints
# `llvm-cov report` for the files the target exists to test: the first
# file of its "// sources:" line, or those named on a "// covers: a.c b.c"
# line when there is one.
#
# A file often holds more than the target can reach (the network code next
# to a parser, the other direction of a two-way parser), so a second figure
# counts only the functions the target is meant to exercise: those whose
# llvm-cov name matches the ERE on a "// functions: REGEX" line (default:
# all), minus those matching "// excludes: REGEX". Static functions are
# named FILE.c:name, so anchor with (^|:).
#
# Needs llvm-profdata and llvm-cov matching the clang (Debian: llvm-14,
# which provides llvm-profdata-14 and llvm-cov-14). Not part of make test.
#
# Knobs (environment): FUZZ_TARGETS [all], COVERAGE_FUNCTIONS=1 (also a
# row per function, to see which parts of a file a target cannot reach,
# such as the network code next to a parser), CLANG [clang],
# LLVM_PROFDATA / LLVM_COV [the -14 names, else the plain ones].
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

CLANG=${CLANG:-clang}
pick() { command -v "$1-14" || command -v "$1"; }
LLVM_PROFDATA=${LLVM_PROFDATA:-$(pick llvm-profdata)}
LLVM_COV=${LLVM_COV:-$(pick llvm-cov)}
if [ -z "$LLVM_PROFDATA" ] || [ -z "$LLVM_COV" ]; then
  echo "coverage: llvm-profdata/llvm-cov not found (apt-get install llvm-14)" >&2
  exit 1
fi
out=build/fuzz-cov
mkdir -p "$out"
pkgs=(jansson libuv libssl libcrypto libcurl libcares)
CFLAGS="-g -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -std=c17 -D_GNU_SOURCE -Isrc"
read -r -a pkg_cflags <<<"$(pkg-config --cflags "${pkgs[@]}")"
read -r -a pkg_libs <<<"$(pkg-config --libs "${pkgs[@]}") -lcrypt -lpthread -lm"

line_value() { # $1 = file, $2 = tag: the rest of the "// TAG:" line
  head -n 20 "$1" | sed -n "s|^[[:space:]]*//[[:space:]]*$2:[[:space:]]*||p" | head -1
}

line_list() { # $1 = file, $2 = tag: the .c paths after "// TAG:" (and continuation lines)
  head -n 20 "$1" | awk -v tag="$2" '
    !found && sub("^[[:space:]]*//[[:space:]]*" tag ":[[:space:]]*", "") { found = 1; print; next }
    found {
      if (!sub(/^[[:space:]]*\/\/[[:space:]]*/, "")) exit
      for (i = 1; i <= NF; i++) if ($i !~ /\.c$/) exit
      print
    }' | tr '\n' ' ' | sed 's/[[:space:]]*$//'
}

targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
  for t in $FUZZ_TARGETS; do targets+=("fuzz/${t%.c}.c"); done
else
  for f in fuzz/fuzz_*.c; do [ -e "$f" ] && targets+=("$f"); done
fi

failed=0
for src in "${targets[@]}"; do
  name=$(basename "$src" .c)
  # Unquoted on purpose: the lists may hold globs (src/policy/*.c).
  # shellcheck disable=SC2207
  sources=($(line_list "$src" sources))
  # shellcheck disable=SC2207
  covers=($(line_list "$src" covers))
  [ ${#covers[@]} -eq 0 ] && covers=("${sources[0]}")
  # Globs in the sources line name several files: expand them for the report.
  # shellcheck disable=SC2206
  covers=(${covers[@]})
  # shellcheck disable=SC2086
  if ! "$CLANG" $CFLAGS "${pkg_cflags[@]}" "$src" "${sources[@]}" "${pkg_libs[@]}" \
    -o "$out/$name" >"$out/$name-build.log" 2>&1; then
    cat "$out/$name-build.log" >&2
    failed=$((failed + 1))
    continue
  fi
  dirs=()
  for d in "fuzz/corpus/$name" "fuzz/seeds/$name"; do [ -d "$d" ] && dirs+=("$d"); done
  if [ ${#dirs[@]} -eq 0 ]; then
    echo "coverage: $name has no corpus" >&2
    failed=$((failed + 1))
    continue
  fi
  rm -f "$out/$name".*.profraw
  LLVM_PROFILE_FILE="$out/$name.%p.profraw" "$out/$name" -runs=0 "${dirs[@]}" \
    >"$out/$name-replay.log" 2>&1 || {
    echo "coverage: $name failed replaying its corpus (log: $out/$name-replay.log)" >&2
    failed=$((failed + 1))
    continue
  }
  "$LLVM_PROFDATA" merge -sparse "$out/$name".*.profraw -o "$out/$name.profdata" || {
    failed=$((failed + 1))
    continue
  }
  echo "== $name ($(find "${dirs[@]}" -type f | wc -l) inputs," \
    "$(find "${dirs[@]}" -type f -exec cat {} + | wc -c) bytes)"
  "$LLVM_COV" report "$out/$name" -instr-profile="$out/$name.profdata" "${covers[@]}" |
    awk '{print "   " $0}'
  include=$(line_value "$src" functions)
  exclude=$(line_value "$src" excludes)
  "$LLVM_COV" report "$out/$name" -instr-profile="$out/$name.profdata" -show-functions "${covers[@]}" \
    >"$out/$name-functions.txt"
  if [ "${COVERAGE_FUNCTIONS:-0}" = 1 ]; then
    awk '{print "   " $0}' "$out/$name-functions.txt"
  fi
  if [ -n "$include$exclude" ]; then
    # Rows: Name Regions Miss Cover Lines Miss Cover Branches Miss Cover.
    awk -v inc="${include:-.}" -v exc="$exclude" '
      NF == 10 && $2 ~ /^[0-9]+$/ && $1 != "TOTAL" && $1 ~ inc && (exc == "" || $1 !~ exc) {
        n++; r += $2; rm += $3; l += $5; lm += $6; b += $8; bm += $9; if ($5 > $6) hit++
      }
      function pct(t, m) { return t ? sprintf("%.2f%%", 100 * (t - m) / t) : "-" }
      END {
        printf "   target functions (%d, %d entered): regions %s (%d/%d), lines %s (%d/%d), branches %s (%d/%d)\n",
          n, hit, pct(r, rm), r - rm, r, pct(l, lm), l - lm, l, pct(b, bm), b - bm, b
      }' "$out/$name-functions.txt"
  fi
done
exit $((failed != 0))
