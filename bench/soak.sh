#!/usr/bin/env bash
# `make soak`: SOAK_SECONDS (default 600) of mixed traffic against a real
# switchyard, printing RSS, open fds and error counts per minute; fails if
# memory or fds grow after warm-up or a request that should succeed fails.
# The traffic and the thresholds are described in bench/soak.mjs. Not part
# of `make test`: it takes ten minutes and measures, rather than checks, a
# behaviour. Runs under nice, as it is meant to share a machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWITCHYARD_BIN=${SWITCHYARD_BIN:-$PWD/build/switchyard}
if [ ! -x "$SWITCHYARD_BIN" ]; then
  echo "soak: $SWITCHYARD_BIN is missing: run make first" >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1; then
  echo "soak: node is not installed (scripts/deps.sh installs it)" >&2
  exit 1
fi
exec nice -n "${SOAK_NICE:-10}" node bench/soak.mjs
