#!/usr/bin/env bash
# The benchmark behind `make bench`: switchyard, nginx and HAProxy side by
# side in front of one fast backend (another nginx), each loaded in turn by
# wrk with small keep-alive GETs, in interleaved rounds so that a noisy
# moment on the machine hits every proxy alike. Then a memory scenario:
# concurrent large downloads through each proxy, to show that memory per
# connection is bounded (peak RSS must not grow with the body size).
#
# Everything runs on loopback from a private temp dir with its own configs,
# pid and log files, on free ports; no system service is touched, and every
# process started here is stopped at the end, also on Ctrl-C.
#
# Knobs (environment): WORKERS ROUNDS DURATION CONNECTIONS THREADS WARMUP
# LARGE_MB SMALL_MB LARGE_CONCURRENCY PROXIES SWITCHYARD_BIN OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

WORKERS=${WORKERS:-1}            # worker processes/threads of each proxy
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}        # wrk duration per proxy per round
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}            # wrk threads
WARMUP=${WARMUP:-2s}
LARGE_MB=${LARGE_MB:-50}         # body size of the large downloads
SMALL_MB=${SMALL_MB:-1}          # the same scenario with small bodies, for comparison
LARGE_CONCURRENCY=${LARGE_CONCURRENCY:-20}
PROXIES=${PROXIES:-"switchyard nginx haproxy"}
SWITCHYARD_BIN=${SWITCHYARD_BIN:-$repo/build/switchyard}
OUT_DIR=${OUT_DIR:-$repo/build/bench}
HOST_HEADER=api.example.com

for tool in nginx haproxy wrk curl node; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "bench: $tool is not installed (scripts/deps.sh installs it)" >&2
    exit 1
  fi
done
export PATH="$PATH:/usr/sbin:/sbin"
case " $PROXIES " in
  *" switchyard "*)
    if [ ! -x "$SWITCHYARD_BIN" ]; then
      echo "bench: $SWITCHYARD_BIN is missing: run make first" >&2
      exit 1
    fi ;;
esac

tmp=$(mktemp -d /tmp/switchyard-bench.XXXXXX)
# nginx workers may run as an unprivileged user: they must read the files here.
chmod 755 "$tmp"
declare -A pid_of=()

stop_all() {
  local name pid i
  for name in "${!pid_of[@]}"; do
    pid=${pid_of[$name]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  for name in "${!pid_of[@]}"; do
    pid=${pid_of[$name]}
    for i in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pid_of=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

fail() {
  echo "bench: $*" >&2
  exit 1
}

# Free loopback ports, found by binding to port 0 and releasing them.
free_ports() { # $1 = how many
  node -e '
    const net = require("net"); const n = +process.argv[1]; const servers = [];
    let done = 0;
    for (let i = 0; i < n; i++) {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        if (++done === n) { console.log(servers.map(x => x.address().port).join(" ")); servers.forEach(x => x.close()); }
      });
      servers.push(s);
    }' "$1"
}
read -r backend_port sw_port sw_admin_port nginx_port haproxy_port <<<"$(free_ports 5)"
declare -A port_of=([switchyard]=$sw_port [nginx]=$nginx_port [haproxy]=$haproxy_port)

# ---------------------------------------------------------------- configs
nginx_temp_paths() { # $1 = dir; only for the modules this nginx build has
  local d=$1 v
  v=$(nginx -V 2>&1)
  echo "client_body_temp_path $d/body; proxy_temp_path $d/proxy;"
  grep -q -- --without-http_fastcgi_module <<<"$v" || echo "fastcgi_temp_path $d/fastcgi;"
  grep -q -- --without-http_uwsgi_module <<<"$v" || echo "uwsgi_temp_path $d/uwsgi;"
  grep -q -- --without-http_scgi_module <<<"$v" || echo "scgi_temp_path $d/scgi;"
}

mkdir -p "$tmp/backend/www" "$tmp/nginx" "$tmp/haproxy" "$tmp/switchyard"
head -c $((LARGE_MB * 1048576)) /dev/zero >"$tmp/backend/www/large.bin"
head -c $((SMALL_MB * 1048576)) /dev/zero >"$tmp/backend/www/small.bin"
chmod -R a+rX "$tmp/backend"

cat >"$tmp/backend/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/backend/nginx.pid;
error_log $tmp/backend/error.log warn;
events { worker_connections 4096; }
http {
  $(nginx_temp_paths "$tmp/backend")
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  keepalive_timeout 75s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$backend_port;
    root $tmp/backend/www;
    location = /bench { default_type text/plain; return 200 "hello from the benchmark backend\n"; }
  }
}
EOF

cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  $(nginx_temp_paths "$tmp/nginx")
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 75s;
  upstream backend {
    server 127.0.0.1:$backend_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF

cat >"$tmp/haproxy/haproxy.cfg" <<EOF
global
  nbthread $WORKERS
  maxconn 4096
  pidfile $tmp/haproxy/haproxy.pid
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 75s
frontend bench
  bind 127.0.0.1:$haproxy_port
  default_backend backend
backend backend
  server b1 127.0.0.1:$backend_port
EOF

cat >"$tmp/switchyard/policy.json" <<EOF
{
  "listen_domains": ["$HOST_HEADER"],
  "destinations": [{ "host": "127.0.0.1", "port": $backend_port, "scheme": "http" }],
  "auth_policies": { "public": { "type": "none" } },
  "default_auth": "public",
  "allow_loopback_destinations": true
}
EOF
cat >"$tmp/switchyard/routes.json" <<EOF
[{ "path": "/", "target": "http://127.0.0.1:$backend_port" }]
EOF

# ---------------------------------------------------------------- start/stop
# Servers run in their own session (setsid execs in place, so $! is the
# server's pid): a Ctrl-C reaches only this script and wrk, and the trap
# stops the servers in order instead of racing them.
start_backend() {
  setsid nginx -p "$tmp/backend" -e "$tmp/backend/error.log" -c "$tmp/backend/nginx.conf" \
    -g 'daemon off;' >"$tmp/backend/stdout.log" 2>&1 &
  pid_of[backend]=$!
}
start_proxy() { # $1 = name
  case "$1" in
    nginx)
      setsid nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
        -g 'daemon off;' >"$tmp/nginx/stdout.log" 2>&1 & ;;
    haproxy)
      setsid haproxy -db -f "$tmp/haproxy/haproxy.cfg" >"$tmp/haproxy/stdout.log" 2>&1 & ;;
    switchyard)
      setsid "$SWITCHYARD_BIN" serve --policy "$tmp/switchyard/policy.json" \
        --routes "$tmp/switchyard/routes.json" --listen "127.0.0.1:$sw_port" \
        --admin-listen "127.0.0.1:$sw_admin_port" --workers "$WORKERS" \
        --access-log off --log-level warn >"$tmp/switchyard/stdout.log" 2>&1 & ;;
  esac
  pid_of[$1]=$!
}
log_of() {
  case "$1" in
    backend | nginx) echo "$tmp/$1/error.log $tmp/$1/stdout.log" ;;
    *) echo "$tmp/$1/stdout.log" ;;
  esac
}
show_logs() { # $1 = name
  local f shown=0
  for f in $(log_of "$1"); do
    if [ -s "$f" ]; then
      echo "--- $f"
      tail -20 "$f"
      shown=1
    fi
  done >&2
  [ "$shown" = 1 ] || echo "--- $1 wrote nothing to its log" >&2
  return 0
}

# Waits until url answers 200 with the backend's body (through Host: api...).
wait_for() { # $1 = name, $2 = url, $3 = expected body substring ("" = any 200)
  local name=$1 url=$2 want=$3 i body code
  for i in $(seq 1 50); do
    if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
      show_logs "$name"
      fail "$name exited during start-up (logs above)"
    fi
    body=$(curl -s -m 2 -H "Host: $HOST_HEADER" -w '\n%{http_code}' "$url" 2>/dev/null || true)
    code=${body##*$'\n'}
    if [ "$code" = 200 ] && { [ -z "$want" ] || [[ "$body" == *"$want"* ]]; }; then
      return 0
    fi
    sleep 0.1
  done
  show_logs "$name"
  fail "$name did not answer 200 on $url within 5 s (last status: ${code:-none}; logs above)"
}

# The pid and every child (nginx master + workers).
tree_pids() { # $1 = pid
  local root=$1 d ppid
  echo "$root"
  for d in /proc/[0-9]*; do
    ppid=$(awk '{sub(/^.*\) /, ""); print $2}' "$d/stat" 2>/dev/null) || continue
    [ "$ppid" = "$root" ] && echo "${d#/proc/}"
  done
  return 0
}
# Sum of a /proc/PID/status field (kB) over the tree.
tree_status_kb() { # $1 = pid, $2 = field (VmHWM, VmRSS)
  local p total=0 v
  for p in $(tree_pids "$1"); do
    v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
# Resets the peak-RSS counter of every process in the tree (Linux >= 4.0).
tree_reset_peak() {
  local p ok=1
  for p in $(tree_pids "$1"); do
    echo 5 2>/dev/null >"/proc/$p/clear_refs" || ok=0
  done
  [ "$ok" = 1 ]
}
# CPU seconds (user + system) used by the tree so far.
tree_cpu_s() {
  local p ticks=0 t hz
  hz=$(getconf CLK_TCK)
  for p in $(tree_pids "$1"); do
    t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
    ticks=$((ticks + t))
  done
  awk -v t="$ticks" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}'
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# ---------------------------------------------------------------- run
# The numbers are only comparable on an otherwise idle machine: say so.
load_before=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load_before" 'BEGIN {exit !(l > 0.5)}'; then
  echo "bench: warning: load average is $load_before before starting; results may be noisy" >&2
fi
echo "bench: temp dir $tmp; backend :$backend_port; switchyard :$sw_port nginx :$nginx_port haproxy :$haproxy_port"
start_backend
wait_for backend "http://127.0.0.1:$backend_port/bench" "hello from the benchmark backend"
for p in $PROXIES; do start_proxy "$p"; done
for p in $PROXIES; do
  if [ "$p" = switchyard ]; then
    for i in $(seq 1 50); do
      kill -0 "${pid_of[switchyard]}" 2>/dev/null || { show_logs switchyard; fail "switchyard exited during start-up (logs above)"; }
      [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$sw_admin_port/readyz" || true)" = 200 ] && break
      sleep 0.1
    done
  fi
  wait_for "$p" "http://127.0.0.1:${port_of[$p]}/bench" "hello from the benchmark backend"
done
declare -A idle_rss=() cpu_start=()
for p in $PROXIES; do
  idle_rss[$p]=$(tree_status_kb "${pid_of[$p]}" VmRSS)
done
echo "bench: all servers answer; $ROUNDS rounds of wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency per proxy"

results=$tmp/results
mkdir -p "$results"
to_ms() { # "512.00us" / "1.23ms" / "2.01s" / "1.00m" -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    else if (u == "h") n *= 3600000;
    printf "%.3f", n }'
}
run_wrk() { # $1 = name, $2 = duration, $3 = output file
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency -H "Host: $HOST_HEADER" \
    "http://127.0.0.1:${port_of[$1]}/bench" >"$3" 2>&1 || {
    cat "$3" >&2
    fail "wrk against $1 failed"
  }
  kill -0 "${pid_of[$1]}" 2>/dev/null || { show_logs "$1"; fail "$1 died under load (logs above)"; }
}

for p in $PROXIES; do run_wrk "$p" "$WARMUP" "$results/warmup-$p.txt"; done
for p in $PROXIES; do cpu_start[$p]=$(tree_cpu_s "${pid_of[$p]}"); done
for r in $(seq 1 "$ROUNDS"); do
  for p in $PROXIES; do
    out="$results/round$r-$p.txt"
    run_wrk "$p" "$DURATION" "$out"
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    total=$(awk '/requests in/ {print $1}' "$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sockerr=$(awk '/Socket errors:/ {s = 0; for (i = 4; i <= NF; i += 2) s += $i; print s}' "$out")
    echo "$rps" >>"$results/$p.rps"
    echo "$p50" >>"$results/$p.p50"
    echo "$p99" >>"$results/$p.p99"
    echo $(( ${bad:-0} + ${sockerr:-0} )) >>"$results/$p.errors"
    echo "$total" >>"$results/$p.requests"
    printf '  round %d %-10s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  (%s requests, %s non-2xx, %s socket errors)\n' \
      "$r" "$p" "$rps" "$p50" "$p99" "$total" "${bad:-0}" "${sockerr:-0}"
  done
done
declare -A load_hwm=() cpu_per_req=()
for p in $PROXIES; do
  load_hwm[$p]=$(tree_status_kb "${pid_of[$p]}" VmHWM)
  cpu_per_req[$p]=$(awk -v a="${cpu_start[$p]}" -v b="$(tree_cpu_s "${pid_of[$p]}")" \
    -v n="$(awk '{s += $1} END {print s + 0}' "$results/$p.requests")" \
    'BEGIN {if (n > 0) printf "%.1f", (b - a) * 1e6 / n; else print "-"}')
done

median() { sort -g "$1" | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }

# Large downloads: LARGE_CONCURRENCY at once through each proxy, peak RSS
# measured from a reset counter, once with SMALL_MB and once with LARGE_MB
# bodies: bounded buffering means the two peaks are about the same.
download_round() { # $1 = name, $2 = file, $3 = expected bytes; prints "peak_kb seconds reset_ok"
  local name=$1 file=$2 want=$3 i start end ok=1 f reset=1 curls=()
  tree_reset_peak "${pid_of[$name]}" || reset=0
  start=$(date +%s.%N)
  for i in $(seq 1 "$LARGE_CONCURRENCY"); do
    curl -s -o /dev/null -m 120 -H "Host: $HOST_HEADER" -w '%{http_code} %{size_download}\n' \
      "http://127.0.0.1:${port_of[$name]}/$file" >"$results/dl-$name-$file-$i.txt" 2>&1 &
    curls+=($!)
  done
  for i in "${curls[@]}"; do wait "$i" || true; done
  end=$(date +%s.%N)
  for i in $(seq 1 "$LARGE_CONCURRENCY"); do
    f="$results/dl-$name-$file-$i.txt"
    [ "$(cat "$f")" = "200 $want" ] || { ok=0; echo "bench: $name /$file download $i: got '$(cat "$f")', want '200 $want'" >&2; }
  done
  [ "$ok" = 1 ] || return 1
  echo "$(tree_status_kb "${pid_of[$name]}" VmHWM) $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}') $reset"
}

declare -A small_peak=() large_peak=() large_secs=() peak_reset=()
echo "bench: memory: $LARGE_CONCURRENCY concurrent downloads of $SMALL_MB MiB, then of $LARGE_MB MiB, through each proxy"
for p in $PROXIES; do
  out=$(download_round "$p" small.bin $((SMALL_MB * 1048576))) || fail "$SMALL_MB MiB downloads through $p failed"
  read -r "small_peak[$p]" _ _ <<<"$out"
  out=$(download_round "$p" large.bin $((LARGE_MB * 1048576))) || fail "$LARGE_MB MiB downloads through $p failed"
  read -r "large_peak[$p]" "large_secs[$p]" "peak_reset[$p]" <<<"$out"
  kill -0 "${pid_of[$p]}" 2>/dev/null || { show_logs "$p"; fail "$p died during the large downloads"; }
  printf '  %-10s peak RSS %s MiB (%s MiB bodies), %s MiB (%s MiB bodies); %s s for %d x %d MiB\n' \
    "$p" "$(mib "${small_peak[$p]}")" "$SMALL_MB" "$(mib "${large_peak[$p]}")" "$LARGE_MB" \
    "${large_secs[$p]}" "$LARGE_CONCURRENCY" "$LARGE_MB"
done

# ---------------------------------------------------------------- report
mkdir -p "$OUT_DIR"
report=$OUT_DIR/results.md
nginx_rps=""; nginx_p50=""; nginx_p99=""; nginx_cpu=""
if [[ " $PROXIES " == *" nginx "* ]]; then
  nginx_rps=$(median "$results/nginx.rps"); nginx_p50=$(median "$results/nginx.p50"); nginx_p99=$(median "$results/nginx.p99")
  nginx_cpu=${cpu_per_req[nginx]}
fi
wrk_version=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $1, $2}')
{
  echo "# switchyard benchmark results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -sr), load average $load_before before the run."
  echo "$(nginx -v 2>&1 | sed 's/^nginx version: //'), $(haproxy -v 2>&1 | head -1 | awk '{print "HAProxy", $3}'), $wrk_version$([ -x "$SWITCHYARD_BIN" ] && echo ", $("$SWITCHYARD_BIN" --version 2>/dev/null | head -1)")."
  echo
  echo "Small keep-alive GETs (\`wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency\`, 33-byte body from a local nginx), $WORKERS worker(s) per proxy, keep-alive upstream connections, access logs off; median of $ROUNDS interleaved rounds. Ratios are to nginx (for latency, lower is better). Peak RSS is VmHWM summed over the proxy's processes after the load; CPU is the proxy's user+system CPU time per request over all rounds (lower is better; it does not depend on how much CPU wrk and the backend left over)."
  echo
  echo "| proxy | requests/s | vs nginx | p50 ms | vs nginx | p99 ms | vs nginx | errors | CPU µs/request | vs nginx | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for p in $PROXIES; do
    rps=$(median "$results/$p.rps"); p50=$(median "$results/$p.p50"); p99=$(median "$results/$p.p99")
    errors=$(awk '{s += $1} END {print s + 0}' "$results/$p.errors")
    printf '| %s | %.0f | %s | %.3f | %s | %.3f | %s | %s | %s | %s | %s |\n' "$p" "$rps" "$(ratio "$rps" "$nginx_rps")" \
      "$p50" "$(ratio "$p50" "$nginx_p50")" "$p99" "$(ratio "$p99" "$nginx_p99")" "$errors" \
      "${cpu_per_req[$p]}" "$(ratio "${cpu_per_req[$p]}" "$nginx_cpu")" "$(mib "${load_hwm[$p]}")"
  done
  echo
  echo "Requests/s of each round, to judge the noise:"
  for p in $PROXIES; do
    echo "- $p: $(awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1}' "$results/$p.rps")"
  done
  echo
  echo "Memory while moving large bodies: $LARGE_CONCURRENCY concurrent downloads through each proxy, peak RSS (VmHWM, reset before each run) with $SMALL_MB MiB and with $LARGE_MB MiB bodies. Bounded per-connection buffering keeps the two about equal."
  echo
  echo "| proxy | idle RSS MiB | peak, ${SMALL_MB} MiB bodies | peak, ${LARGE_MB} MiB bodies | growth MiB | time for $LARGE_CONCURRENCY x $LARGE_MB MiB s |"
  echo "|---|---:|---:|---:|---:|---:|"
  for p in $PROXIES; do
    note=""
    [ "${peak_reset[$p]}" = 1 ] || note=" (peak since start: clear_refs not permitted)"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$p" "$(mib "${idle_rss[$p]}")" "$(mib "${small_peak[$p]}")" \
      "$(mib "${large_peak[$p]}")$note" "$(mib $(( ${large_peak[$p]} - ${small_peak[$p]} )))" "${large_secs[$p]}"
  done
} >"$report"
echo
cat "$report"
echo
echo "bench: written to ${report#"$repo"/}"
