#!/usr/bin/env bash
# Installs what building, testing, running and benchmarking switchyard need
# on Debian 12, only when something is missing. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config clang libclang-rt-14-dev
  libuv1-dev libc-ares-dev libjansson-dev libssl-dev libcurl4-openssl-dev libcrypt-dev libcmocka-dev
  curl openssl ca-certificates nodejs npm apache2-utils
  nginx-light haproxy wrk
)

missing=()
for p in "${packages[@]}"; do
  # nodejs/npm may come from elsewhere (NodeSource): a working binary is enough.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages for the test servers (tests/e2e/package.json), installed once.
if [ -f tests/e2e/package.json ]; then
  if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package.json -nt tests/e2e/node_modules ]; then
    echo "deps: npm install in tests/e2e" >&2
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch tests/e2e/node_modules
  fi
fi

# npm packages of the CDK app (deploy/cdk/package-lock.json): the deploy
# tests synthesize it offline. Installed once, from the lockfile.
if [ -f deploy/cdk/package-lock.json ]; then
  if [ ! -d deploy/cdk/node_modules ] || [ deploy/cdk/package-lock.json -nt deploy/cdk/node_modules ]; then
    echo "deps: npm ci in deploy/cdk" >&2
    (cd deploy/cdk && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch deploy/cdk/node_modules
  fi
fi
