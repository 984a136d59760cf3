#!/usr/bin/env bash
# `make run`: the embedded default, end to end on one machine. Starts the two
# example backends (orders on 127.0.0.1:9081, users on :9082), then
# switchyard on examples/policy.json + examples/routes.json listening on
# 127.0.0.1:8080 with the admin listener on 127.0.0.1:9901, prints requests
# to try, and stays in the foreground with switchyard's logs on the
# terminal. Ctrl-C drains switchyard and stops the backends.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${SWITCHYARD_BIN:-build/switchyard}
POLICY=examples/policy.json
ROUTES=examples/routes.json
LISTEN=127.0.0.1:8080
ADMIN=127.0.0.1:9901
LOG_DIR=build/run

for f in "$BIN" "$POLICY" "$ROUTES" examples/echo-backend.mjs; do
  [ -e "$f" ] || { echo "run: $f is missing (make builds $BIN)" >&2; exit 1; }
done
command -v node >/dev/null || { echo "run: node is not installed (scripts/deps.sh installs it)" >&2; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 8080 9901 9081 9082; do
  if port_busy "$port"; then
    echo "run: 127.0.0.1:$port is already in use (another 'make run'?); stop that first" >&2
    exit 1
  fi
done

mkdir -p "$LOG_DIR"
pids=()
sw_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  trap - EXIT INT TERM
  # switchyard first (SIGTERM = drain), so in-flight requests still reach
  # their backends; then the backends.
  if [ -n "$sw_pid" ] && kill -0 "$sw_pid" 2>/dev/null; then
    kill -TERM "$sw_pid" 2>/dev/null || true
    wait "$sw_pid" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_backend() { # $1 = name, $2 = port
  local log="$LOG_DIR/backend-$1.log"
  node examples/echo-backend.mjs --port "$2" --name "$1" >"$log" 2>&1 &
  pids+=($!)
  # The backend prints {"port": N} once it listens.
  for _ in $(seq 1 50); do
    grep -q '"port"' "$log" 2>/dev/null && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "run: the $1 backend did not start on port $2:" >&2
  cat "$log" >&2
  exit 1
}
start_backend orders 9081
start_backend users 9082

"$BIN" serve --policy "$POLICY" --routes "$ROUTES" --listen "$LISTEN" --admin-listen "$ADMIN" &
sw_pid=$!
ready=0
for _ in $(seq 1 100); do
  if ! kill -0 "$sw_pid" 2>/dev/null; then
    rc=0
    wait "$sw_pid" || rc=$?
    sw_pid=""
    echo "run: switchyard exited with status $rc during start-up (its message is above)" >&2
    exit "$rc"
  fi
  if [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://$ADMIN/readyz" 2>/dev/null || true)" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || echo "run: switchyard is up but /readyz is not 200 yet; see http://$ADMIN/config" >&2

# Requests need a Host that is a listen domain: use "localhost" when the
# example policy lists it (plain curl works), else its first exact domain.
domains=$(node -e '
  const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log((p.listen_domains || []).join(" "));' "$POLICY")
example_host=localhost
host_opt=""
if [[ " $domains " != *" localhost "* ]]; then
  for d in $domains; do
    [[ "$d" == \*.* ]] && continue
    example_host=$d
    host_opt="-H 'Host: $d' "
    break
  done
fi
# curl sends the URL's host as Host: with "localhost" no header is needed.
base="http://$LISTEN"
[ -z "$host_opt" ] && base="http://localhost:${LISTEN##*:}"
cat <<EOF

switchyard is serving on http://$LISTEN (admin on http://$ADMIN); backends: orders :9081, users :9082.
Logs: switchyard below (access log on stdout, errors on stderr); backends in $LOG_DIR/.
Try, from another terminal:

  curl -i ${host_opt}$base/orders/123          # routed to the orders backend
  curl -i ${host_opt}$base/users               # routed to the users backend
  curl -i ${host_opt}$base/admin               # a rejected route: 502 with the reason
  curl -i ${host_opt}$base/nowhere             # no route: 404
  curl -i -H 'Host: other.example.org' http://$LISTEN/orders/1   # not a listen domain: 421
  curl -s 'http://$ADMIN/explain?host=$example_host&path=/orders/123&method=GET'
  curl -s http://$ADMIN/config
  curl -s http://$ADMIN/metrics
  curl -s http://$ADMIN/readyz

Ctrl-C stops switchyard (draining) and the backends.

EOF
# switchyard stays the foreground process; a Ctrl-C reaches it directly.
rc=0
wait "$sw_pid" || rc=$?
sw_pid=""
exit "$rc"
