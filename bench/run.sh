#!/usr/bin/env bash
# The benchmark behind `make bench`: switchyard, nginx and HAProxy side by
# side, each loaded in turn by wrk with small keep-alive GETs, in
# interleaved rounds so that a noisy moment on the machine hits every
# contender alike. Scenarios (SCENARIOS, default all, run in the order
# given; default "plain memory tls jwt routes"):
#   plain   - plain HTTP upstream (a fast local nginx), the three proxies;
#   memory  - concurrent large downloads through each proxy, to show that
#             memory per connection is bounded (peak RSS must not grow with
#             the body size);
#   tls     - the same GETs as plain through HTTPS to an nginx presenting a
#             certificate for *.execute-api.us-east-1.amazonaws.com from a
#             throwaway CA made here with openssl: verified chain and name,
#             SNI, Host rewrite, pooled upstream connections in all three;
#   jwt     - switchyard only: one route with an RS256 JWT policy against the
#             same route with no auth, one token minted here, sent on every
#             request (what the verified-token cache is for);
#   dns     - switchyard only (bench/dns.mjs): DNS questions per 1,000 new
#             upstream connections to a name served by a DNS server here.
#   routes  - switchyard only (bench/routes.mjs): 10, 10,000 and 100,000
#             routes: time to ready, memory, one change live, requests/s,
#             /metrics and /config size and time.
#   body16k - plain HTTP GETs of a 16 KiB file through each proxy;
#   profile - switchyard only: `perf record` of its worker during the plain
#             GETs, reported as the functions and libraries where the CPU
#             time goes (needs perf and permission to profile, else skipped);
#   idle    - memory per idle keep-alive client connection (bench/idle.mjs):
#             IDLE_CONNS connections, each after one request, held open to
#             each proxy (and to switchyard's HTTPS listener); RSS growth
#             per connection. Runs first by default, so no other scenario's
#             freed heap hides what the connections take.
#
# Everything runs on loopback from a private temp dir with its own configs,
# keys, pid and log files, on free ports; no system service is touched, and
# every process started here is stopped at the end, also on Ctrl-C.
#
# Knobs (environment): SCENARIOS WORKERS ROUNDS DURATION CONNECTIONS THREADS
# WARMUP LARGE_MB SMALL_MB LARGE_CONCURRENCY PROXIES SWITCHYARD_BIN OUT_DIR
# IDLE_CONNS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

SCENARIOS=${SCENARIOS:-"idle plain body16k memory tls jwt profile dns routes"}
WORKERS=${WORKERS:-1}            # worker processes/threads of each proxy
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}        # wrk duration per contender per round
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}            # wrk threads
WARMUP=${WARMUP:-2s}
LARGE_MB=${LARGE_MB:-50}         # body size of the large downloads
SMALL_MB=${SMALL_MB:-1}          # the same scenario with small bodies, for comparison
LARGE_CONCURRENCY=${LARGE_CONCURRENCY:-20}
IDLE_CONNS=${IDLE_CONNS:-5000}   # idle keep-alive connections per proxy (idle scenario)
PROXIES=${PROXIES:-"switchyard nginx haproxy"}
SWITCHYARD_BIN=${SWITCHYARD_BIN:-$repo/build/switchyard}
OUT_DIR=${OUT_DIR:-$repo/build/bench}
HOST_HEADER=api.example.com
# The TLS scenario's upstream, as in SPEC §2: a custom private name, reached
# through connect_to, verified against the execute-api wildcard, with the
# API's own name as Host and SNI.
TLS_DEST_HOST=orders.internal.example.com
TLS_VERIFY_NAME='*.execute-api.us-east-1.amazonaws.com'
TLS_API_HOST=abc123.execute-api.us-east-1.amazonaws.com
JWT_ISSUER=https://issuer.bench
JWT_AUDIENCE=bench

has() { [[ " $1 " == *" $2 "* ]]; }
for s in $SCENARIOS; do
  case "$s" in
    plain | body16k | tls | jwt | memory | profile | dns | routes | idle) ;;
    *) echo "bench: unknown scenario '$s' in SCENARIOS (known: idle plain body16k tls jwt memory profile dns routes)" >&2; exit 2 ;;
  esac
done
# The proxies the plain, tls and memory scenarios compare; jwt needs only
# switchyard.
if has "$SCENARIOS" plain || has "$SCENARIOS" body16k || has "$SCENARIOS" tls || has "$SCENARIOS" memory || has "$SCENARIOS" idle; then
  RUN_PROXIES=$PROXIES
else
  RUN_PROXIES=""
fi
if { has "$SCENARIOS" jwt || has "$SCENARIOS" profile; } && ! has "$RUN_PROXIES" switchyard; then
  RUN_PROXIES="switchyard $RUN_PROXIES"
fi

for tool in nginx haproxy wrk curl node openssl; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "bench: $tool is not installed (scripts/deps.sh installs it)" >&2
    exit 1
  fi
done
export PATH="$PATH:/usr/sbin:/sbin"
if has "$RUN_PROXIES" switchyard && [ ! -x "$SWITCHYARD_BIN" ]; then
  echo "bench: $SWITCHYARD_BIN is missing: run make first" >&2
  exit 1
fi
if has "$SCENARIOS" jwt && [ ! -f tests/e2e/node_modules/jose/package.json ]; then
  echo "bench: the jose npm package is missing from tests/e2e/node_modules (scripts/deps.sh installs it)" >&2
  exit 1
fi

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
  if [ -n "${wrk_pid:-}" ]; then
    kill -TERM "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" 2>/dev/null || true
  fi
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
read -r backend_port tls_backend_port sw_port sw_admin_port nginx_port haproxy_port sw_tls_port <<<"$(free_ports 7)"
declare -A port_of=([switchyard]=$sw_port [nginx]=$nginx_port [haproxy]=$haproxy_port)

# ---------------------------------------------------------------- keys
# A throwaway CA and a server certificate for the execute-api wildcard, as an
# API Gateway VPC endpoint presents; RSA 2048 like the real one.
make_tls_material() {
  local d=$tmp/tls
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
    -subj "/CN=switchyard bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 || fail "openssl: cannot make the CA"
  openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
    -subj "/CN=$TLS_VERIFY_NAME" >/dev/null 2>&1 || fail "openssl: cannot make the server key"
  printf '%s\n' "subjectAltName=DNS:$TLS_VERIFY_NAME" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/server.pem" -days 2 -extfile "$d/server.ext" >/dev/null 2>&1 || fail "openssl: cannot sign the server certificate"
  chmod -R a+rX "$d"
}
# An RSA key pair, its public JWK (one line) and one RS256 token valid for an
# hour, minted with jose from the e2e tests' node_modules.
make_jwt_material() {
  NODE_PATH=$repo/tests/e2e/node_modules node -e '
    const jose = require("jose");
    (async () => {
      const [iss, aud] = process.argv.slice(1);
      const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { modulusLength: 2048 });
      const jwk = await jose.exportJWK(publicKey);
      Object.assign(jwk, { kid: "bench-1", alg: "RS256", use: "sig" });
      const now = Math.floor(Date.now() / 1000);
      const token = await new jose.SignJWT({ sub: "bench-user", scope: "orders:read" })
        .setProtectedHeader({ alg: "RS256", kid: "bench-1", typ: "JWT" })
        .setIssuer(iss).setAudience(aud).setIssuedAt(now).setExpirationTime(now + 3600)
        .sign(privateKey);
      console.log(JSON.stringify(jwk));
      console.log(token);
    })().catch(e => { console.error(e); process.exit(1); });' "$JWT_ISSUER" "$JWT_AUDIENCE" >"$tmp/jwt.txt" ||
    fail "cannot mint the JWT with node + jose"
  jwt_jwk=$(sed -n 1p "$tmp/jwt.txt")
  jwt_token=$(sed -n 2p "$tmp/jwt.txt")
}
jwt_jwk=""; jwt_token=""
# Always: the proxies' configurations are then the same whichever
# scenarios run.
make_tls_material
if has "$SCENARIOS" jwt; then make_jwt_material; fi

# ---------------------------------------------------------------- configs
nginx_temp_paths() { # $1 = dir; only for the modules this nginx build has
  local d=$1 v
  v=$(nginx -V 2>&1)
  echo "client_body_temp_path $d/body; proxy_temp_path $d/proxy;"
  grep -q -- --without-http_fastcgi_module <<<"$v" || echo "fastcgi_temp_path $d/fastcgi;"
  grep -q -- --without-http_uwsgi_module <<<"$v" || echo "uwsgi_temp_path $d/uwsgi;"
  grep -q -- --without-http_scgi_module <<<"$v" || echo "scgi_temp_path $d/scgi;"
}

mkdir -p "$tmp/backend/www" "$tmp/tlsbackend" "$tmp/nginx" "$tmp/haproxy" "$tmp/switchyard"
if has "$SCENARIOS" memory; then
  head -c $((LARGE_MB * 1048576)) /dev/zero >"$tmp/backend/www/large.bin"
  head -c $((SMALL_MB * 1048576)) /dev/zero >"$tmp/backend/www/small.bin"
fi
head -c 16384 /dev/urandom >"$tmp/backend/www/b16k.bin"
chmod -R a+rX "$tmp/backend"
BODY="hello from the benchmark backend"
TLS_BODY="hello from the TLS benchmark backend"

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
    location = /bench { default_type text/plain; return 200 "$BODY\n"; }
  }
}
EOF

# The HTTPS backend: the routes' base path /prod, as an API Gateway stage.
cat >"$tmp/tlsbackend/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/tlsbackend/nginx.pid;
error_log $tmp/tlsbackend/error.log warn;
events { worker_connections 4096; }
http {
  $(nginx_temp_paths "$tmp/tlsbackend")
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$tls_backend_port ssl;
    ssl_certificate $tmp/tls/server.pem;
    ssl_certificate_key $tmp/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:bench:1m;
    location = /prod/tls/bench { default_type text/plain; return 200 "$TLS_BODY\n"; }
  }
}
EOF

cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections $((IDLE_CONNS + 1024)); }
http {
  $(nginx_temp_paths "$tmp/nginx")
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 75s;
  upstream backend {
    server 127.0.0.1:$backend_port;
    keepalive 64;
  }
  upstream tls_backend {
    server 127.0.0.1:$tls_backend_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location /tls/ {
      proxy_pass https://tls_backend/prod/tls/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $TLS_API_HOST;
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 2;
      proxy_ssl_trusted_certificate $tmp/tls/ca.pem;
      proxy_ssl_name $TLS_API_HOST;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
EOF

cat >"$tmp/haproxy/haproxy.cfg" <<EOF
global
  nbthread $WORKERS
  maxconn $((IDLE_CONNS + 1024))
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
  use_backend tls_backend if { path_beg /tls/ }
  default_backend backend
backend backend
  server b1 127.0.0.1:$backend_port
backend tls_backend
  http-request set-path /prod%[path]
  http-request set-header Host $TLS_API_HOST
  server t1 127.0.0.1:$tls_backend_port ssl verify required ca-file $tmp/tls/ca.pem sni str($TLS_API_HOST) verifyhost $TLS_API_HOST
EOF

# switchyard: the JWT policy and its routes only when the key was made
# (jose is needed for that alone).
sw_dests="{ \"host\": \"127.0.0.1\", \"port\": $backend_port, \"scheme\": \"http\" }"
sw_auth="\"public\": { \"type\": \"none\" }"
sw_routes="{ \"path\": \"/\", \"target\": \"http://127.0.0.1:$backend_port\" }"
sw_dests+=",
  { \"host\": \"$TLS_DEST_HOST\", \"port\": 443, \"connect_to\": \"127.0.0.1:$tls_backend_port\",
    \"tls_verify_name\": \"$TLS_VERIFY_NAME\", \"host_header\": \"$TLS_API_HOST\",
    \"ca_file\": \"$tmp/tls/ca.pem\" }"
sw_routes+=",
  { \"path\": \"/tls\", \"target\": \"https://$TLS_DEST_HOST/prod\" }"
if has "$SCENARIOS" jwt; then
  sw_auth+=",
    \"bench-jwt\": { \"type\": \"jwt\", \"issuer\": \"$JWT_ISSUER\", \"audiences\": [\"$JWT_AUDIENCE\"],
                   \"algorithms\": [\"RS256\"], \"jwks\": { \"keys\": [$jwt_jwk] } }"
  # Two routes alike but for the auth policy; same path length, same upstream.
  sw_routes+=",
  { \"path\": \"/auth-none\", \"target\": \"http://127.0.0.1:$backend_port\", \"strip_prefix\": true, \"auth\": \"public\" },
  { \"path\": \"/auth-jwt\", \"target\": \"http://127.0.0.1:$backend_port\", \"strip_prefix\": true, \"auth\": \"bench-jwt\" }"
fi
cat >"$tmp/switchyard/policy.json" <<EOF
{
  "listen_domains": ["$HOST_HEADER"],
  "destinations": [
    $sw_dests
  ],
  "auth_policies": {
    $sw_auth
  },
  "default_auth": "public",
  "allow_loopback_destinations": true
}
EOF
cat >"$tmp/switchyard/routes.json" <<EOF
[
  $sw_routes
]
EOF

# ---------------------------------------------------------------- start/stop
# Servers run in their own session (setsid execs in place, so $! is the
# server's pid): a Ctrl-C reaches only this script and wrk, and the trap
# stops the servers in order instead of racing them.
start_backend() { # $1 = backend or tlsbackend
  setsid nginx -p "$tmp/$1" -e "$tmp/$1/error.log" -c "$tmp/$1/nginx.conf" \
    -g 'daemon off;' >"$tmp/$1/stdout.log" 2>&1 &
  pid_of[$1]=$!
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
        --tls-listen "127.0.0.1:$sw_tls_port" --tls-cert "$tmp/tls/server.pem" --tls-key "$tmp/tls/server.key" \
        --access-log off --log-level warn >"$tmp/switchyard/stdout.log" 2>&1 & ;;
  esac
  pid_of[$1]=$!
}
log_of() {
  case "$1" in
    backend | tlsbackend | nginx) echo "$tmp/$1/error.log $tmp/$1/stdout.log" ;;
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

# Waits until url answers the expected status (and body substring), with
# Host: api.example.com and any further curl arguments.
wait_for() { # $1 = name, $2 = url, $3 = expected body substring ("" = any), [$4 = status, curl args...]
  local name=$1 url=$2 want=$3 status=${4:-200} i body code
  shift 4 2>/dev/null || shift 3
  for i in $(seq 1 50); do
    if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
      show_logs "$name"
      fail "$name exited during start-up (logs above)"
    fi
    body=$(curl -s -m 2 -H "Host: $HOST_HEADER" -w '\n%{http_code}' "$@" "$url" 2>/dev/null || true)
    code=${body##*$'\n'}
    if [ "$code" = "$status" ] && { [ -z "$want" ] || [[ "$body" == *"$want"* ]]; }; then
      return 0
    fi
    sleep 0.1
  done
  show_logs "$name"
  fail "$name did not answer $status on $url within 5 s (last status: ${code:-none}, body: ${body%$'\n'*}; logs above)"
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

# ---------------------------------------------------------------- start
# The numbers are only comparable on an otherwise idle machine: say so.
load_before=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load_before" 'BEGIN {exit !(l > 0.5)}'; then
  echo "bench: warning: load average is $load_before before starting; results may be noisy" >&2
fi
echo "bench: scenarios: $SCENARIOS; temp dir $tmp"
echo "bench: backend :$backend_port, TLS backend :$tls_backend_port; switchyard :$sw_port (admin :$sw_admin_port) nginx :$nginx_port haproxy :$haproxy_port"
start_backend backend
wait_for backend "http://127.0.0.1:$backend_port/bench" "$BODY"
if has "$SCENARIOS" tls; then
  start_backend tlsbackend
  wait_for tlsbackend "https://$TLS_API_HOST:$tls_backend_port/prod/tls/bench" "$TLS_BODY" 200 \
    --cacert "$tmp/tls/ca.pem" --resolve "$TLS_API_HOST:$tls_backend_port:127.0.0.1"
fi
for p in $RUN_PROXIES; do start_proxy "$p"; done
for p in $RUN_PROXIES; do
  if [ "$p" = switchyard ]; then
    for i in $(seq 1 50); do
      kill -0 "${pid_of[switchyard]}" 2>/dev/null || { show_logs switchyard; fail "switchyard exited during start-up (logs above)"; }
      [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$sw_admin_port/readyz" || true)" = 200 ] && break
      sleep 0.1
    done
  fi
  wait_for "$p" "http://127.0.0.1:${port_of[$p]}/bench" "$BODY"
done
if has "$SCENARIOS" tls; then
  for p in $PROXIES; do
    wait_for "$p" "http://127.0.0.1:${port_of[$p]}/tls/bench" "$TLS_BODY"
  done
fi
if has "$SCENARIOS" jwt; then
  # The auth must really be enforced: no token is 401, the token is 200.
  wait_for switchyard "http://127.0.0.1:$sw_port/auth-jwt/bench" "" 401
  wait_for switchyard "http://127.0.0.1:$sw_port/auth-jwt/bench" "$BODY" 200 -H "Authorization: Bearer $jwt_token"
  wait_for switchyard "http://127.0.0.1:$sw_port/auth-none/bench" "$BODY" 200 -H "Authorization: Bearer $jwt_token"
fi
declare -A idle_rss=()
for p in $RUN_PROXIES; do
  idle_rss[$p]=$(tree_status_kb "${pid_of[$p]}" VmRSS)
done
echo "bench: all servers answer; $ROUNDS rounds of wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency per contender and scenario"

results=$tmp/results
mkdir -p "$results"
to_ms() { # "512.00us" / "1.23ms" / "2.01s" / "1.00m" -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    else if (u == "h") n *= 3600000;
    printf "%.3f", n }'
}

# A contender is SCENARIO:NAME with a process, a URL and extra headers.
declare -A proc_of=() url_of=() auth_of=() label_of=()
for p in $PROXIES; do
  proc_of[plain:$p]=$p; url_of[plain:$p]="http://127.0.0.1:${port_of[$p]}/bench"; label_of[plain:$p]=$p
  proc_of[tls:$p]=$p; url_of[tls:$p]="http://127.0.0.1:${port_of[$p]}/tls/bench"; label_of[tls:$p]=$p
  proc_of[body16k:$p]=$p; url_of[body16k:$p]="http://127.0.0.1:${port_of[$p]}/b16k.bin"; label_of[body16k:$p]=$p
done
for a in none jwt; do
  proc_of[jwt:$a]=switchyard; url_of[jwt:$a]="http://127.0.0.1:$sw_port/auth-$a/bench"
  auth_of[jwt:$a]="Authorization: Bearer $jwt_token"
done
label_of[jwt:none]="switchyard, auth none"
label_of[jwt:jwt]="switchyard, auth jwt RS256"
proc_of[profile:switchyard]=switchyard; url_of[profile:switchyard]=${url_of[plain:switchyard]:-"http://127.0.0.1:$sw_port/bench"}
label_of[profile:switchyard]="switchyard under perf"

# wrk runs in the background and the script waits for it: a trapped Ctrl-C
# interrupts `wait` at once, while a foreground wrk (which finishes its run
# on SIGINT and exits 0) would make bash drop the signal.
wrk_pid=""
run_wrk() { # $1 = contender, $2 = duration, $3 = output file
  local c=$1 args=(-t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency -H "Host: $HOST_HEADER") rc=0
  [ -z "${auth_of[$c]:-}" ] || args+=(-H "${auth_of[$c]}")
  wrk "${args[@]}" "${url_of[$c]}" >"$3" 2>&1 &
  wrk_pid=$!
  wait "$wrk_pid" || rc=$?
  wrk_pid=""
  if [ "$rc" != 0 ]; then
    cat "$3" >&2
    fail "wrk against ${label_of[$c]} ($c) failed"
  fi
  kill -0 "${pid_of[${proc_of[$c]}]}" 2>/dev/null || { show_logs "${proc_of[$c]}"; fail "${proc_of[$c]} died under load in $c (logs above)"; }
}

# Warm-up, then ROUNDS interleaved rounds; per run: requests/s, latency,
# errors and the process's CPU time for that run alone (so two contenders
# in one process, as in jwt, are told apart). Peak RSS is reset first.
declare -A load_hwm=() peak_ok=()
run_scenario() { # $1 = scenario, then contender names
  local s=$1 c r out rps p50 p99 total bad sockerr cpu0 cpu1 proc
  shift
  mkdir -p "$results/$s"
  for c in "$@"; do
    proc=${proc_of[$s:$c]}
    tree_reset_peak "${pid_of[$proc]}" && peak_ok[$s:$c]=1 || peak_ok[$s:$c]=0
  done
  for c in "$@"; do run_wrk "$s:$c" "$WARMUP" "$results/$s/warmup-$c.txt"; done
  for r in $(seq 1 "$ROUNDS"); do
    for c in "$@"; do
      proc=${proc_of[$s:$c]}
      out="$results/$s/round$r-$c.txt"
      cpu0=$(tree_cpu_s "${pid_of[$proc]}")
      run_wrk "$s:$c" "$DURATION" "$out"
      cpu1=$(tree_cpu_s "${pid_of[$proc]}")
      rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
      p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
      p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
      total=$(awk '/requests in/ {print $1}' "$out")
      bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
      sockerr=$(awk '/Socket errors:/ {s = 0; for (i = 4; i <= NF; i += 2) s += $i; print s}' "$out")
      echo "$rps" >>"$results/$s/$c.rps"
      echo "$p50" >>"$results/$s/$c.p50"
      echo "$p99" >>"$results/$s/$c.p99"
      echo $((${bad:-0} + ${sockerr:-0})) >>"$results/$s/$c.errors"
      echo "$total" >>"$results/$s/$c.requests"
      awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f\n", b - a}' >>"$results/$s/$c.cpu"
      printf '  %-6s round %d %-28s %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms  (%s requests, %s non-2xx, %s socket errors)\n' \
        "$s" "$r" "${label_of[$s:$c]}" "$rps" "$p50" "$p99" "$total" "${bad:-0}" "${sockerr:-0}"
      if [ "${bad:-0}" != 0 ] || [ "${sockerr:-0}" != 0 ]; then
        echo "bench: warning: ${label_of[$s:$c]} had errors in $s round $r:" >&2
        grep -E 'Non-2xx|Socket errors' "$out" >&2 || true
      fi
    done
  done
  for c in "$@"; do
    load_hwm[$s:$c]=$(tree_status_kb "${pid_of[${proc_of[$s:$c]}]}" VmHWM)
  done
}

median() { sort -g "$1" | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
sum() { awk '{s += $1} END {print s + 0}' "$1"; }
cpu_us_per_req() { # $1 = scenario dir, $2 = contender
  awk -v c="$(sum "$1/$2.cpu")" -v n="$(sum "$1/$2.requests")" 'BEGIN {if (n > 0) printf "%.1f", c * 1e6 / n; else print "-"}'
}
# Reads switchyard's counters: requests on a route (all classes), and TLS
# handshakes full and resumed; prints "requests full resumed".
sw_metrics() { # $1 = route
  curl -s -m 5 "http://127.0.0.1:$sw_admin_port/metrics" | awk -v r="route=\"$1\"" '
    index($0, "switchyard_requests_total{") == 1 && index($0, r) {req += $NF}
    /^switchyard_upstream_tls_handshakes_total\{kind="full"\}/ {full = $NF}
    /^switchyard_upstream_tls_handshakes_total\{kind="resumed"\}/ {res = $NF}
    END {printf "%d %d %d\n", req, full, res}'
}

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
run_memory() {
  local p out
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
}

# Idle keep-alive connections: IDLE_CONNS to each proxy (bench/idle.mjs),
# each after one request; RSS growth per connection. switchyard also over
# its HTTPS listener (nginx and HAProxy have none configured here).
declare -A idle_out=()
run_idle() {
  local p out
  echo "bench: idle: $IDLE_CONNS idle keep-alive connections (one request each) to each proxy"
  for p in $PROXIES; do
    out=$(node bench/idle.mjs "${pid_of[$p]}" "${port_of[$p]}" "$IDLE_CONNS" 0 "$HOST_HEADER" /bench) ||
      fail "idle connections to $p failed"
    idle_out[$p]=$out
    echo "  $p: $out"
    if [ "$p" = switchyard ]; then
      out=$(node bench/idle.mjs "${pid_of[$p]}" "$sw_tls_port" "$IDLE_CONNS" 1 "$HOST_HEADER" /bench) ||
        fail "idle TLS connections to switchyard failed"
      idle_out[switchyard-tls]=$out
      echo "  switchyard (HTTPS listener): $out"
    fi
    kill -0 "${pid_of[$p]}" 2>/dev/null || { show_logs "$p"; fail "$p died holding idle connections"; }
  done
}
idle_field() { node -e 'const o = JSON.parse(process.argv[1]); console.log(o[process.argv[2]]);' "$1" "$2"; }

# A CPU profile of switchyard's small-GET path: perf samples its process
# (call graphs off: the flat profile is what says where the time goes)
# during one wrk run; the report keeps the top functions and the split by
# library. Skipped, with the reason, when perf cannot profile here.
profile_out=""
run_profile() {
  local data=$tmp/perf.data pid=${pid_of[switchyard]}
  if ! command -v perf >/dev/null 2>&1; then
    profile_out="perf is not installed: no profile."
    echo "bench: profile: $profile_out" >&2
    return 0
  fi
  echo "bench: profile: perf record of switchyard (pid $pid) during $DURATION of small GETs"
  run_wrk profile:switchyard "$WARMUP" "$results/profile-warmup.txt"
  perf record -q -F 4999 -p "$pid" -o "$data" >"$results/perf-record.log" 2>&1 &
  local perf_pid=$!
  sleep 0.5
  run_wrk profile:switchyard "$DURATION" "$results/profile.txt"
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  if [ ! -s "$data" ]; then
    profile_out="perf recorded nothing ($(tail -1 "$results/perf-record.log" 2>/dev/null)): no profile."
    echo "bench: profile: $profile_out" >&2
    return 0
  fi
  profile_out=$(
    echo "$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$results/profile.txt") requests/s while sampled (perf adds overhead: not comparable with the tables above)."
    echo
    echo "By library (share of switchyard's samples):"
    echo
    echo '```'
    perf report -i "$data" --stdio --no-children --sort dso --percent-limit 1 2>/dev/null | grep -E '^ +[0-9]' | head -12
    echo '```'
    echo
    echo "Top functions:"
    echo
    echo '```'
    perf report -i "$data" --stdio --no-children --sort dso,sym --percent-limit 0.7 2>/dev/null | grep -E '^ +[0-9]' | head -40
    echo '```'
  )
}

# ---------------------------------------------------------------- scenarios
# In the order SCENARIOS names them. The default runs memory right after
# plain, before TLS and JWT leave their own allocations in the proxies'
# heaps, so its peaks are comparable with runs of plain + memory alone.
tls_metrics=""
for s in $SCENARIOS; do
  case "$s" in
    plain)
      echo "bench: plain: small keep-alive GETs through each proxy to a plain HTTP backend"
      # shellcheck disable=SC2086
      run_scenario plain $PROXIES ;;
    tls)
      echo "bench: tls: the same GETs through each proxy to an HTTPS backend (verified chain and name, pooled)"
      # shellcheck disable=SC2086
      run_scenario tls $PROXIES
      if has "$PROXIES" switchyard; then
        tls_metrics=$(sw_metrics /tls)
        read -r m_req m_full m_res <<<"$tls_metrics"
        echo "  tls    switchyard since start: $m_req requests on /tls, upstream TLS handshakes: $m_full full, $m_res resumed"
      fi ;;
    body16k)
      echo "bench: body16k: keep-alive GETs of a 16 KiB file through each proxy"
      # shellcheck disable=SC2086
      run_scenario body16k $PROXIES ;;
    jwt)
      echo "bench: jwt: switchyard, one route with an RS256 JWT policy vs the same route with auth none"
      run_scenario jwt none jwt ;;
    profile) run_profile ;;
    memory) run_memory ;;
    routes)
      echo "bench: routes: switchyard with 10, 10,000 and 100,000 routes"
      mkdir -p "$results"
      OUT="$results/routes.md" SWITCHYARD_BIN="$SWITCHYARD_BIN" node bench/routes.mjs >/dev/null ;;
    idle) run_idle ;;
  esac
done


# switchyard must not have logged errors (warn level and above) under load.
if has "$RUN_PROXIES" switchyard && grep -q '"level":"error"' "$tmp/switchyard/stdout.log" 2>/dev/null; then
  echo "bench: warning: switchyard logged errors during the run:" >&2
  grep '"level":"error"' "$tmp/switchyard/stdout.log" | sort | uniq -c | sort -rn | head -10 >&2
fi

# ---------------------------------------------------------------- report
# One table per load scenario: median over the rounds, ratios to the
# reference contender (nginx, or auth none for jwt).
scenario_table() { # $1 = scenario, $2 = reference contender, $3 = first column title, $4 = with RSS (1/0), then contenders
  local s=$1 ref=$2 title=$3 rss=$4 c d rps p50 p99 cpu ref_rps="" ref_p50="" ref_p99="" ref_cpu="" note
  shift 4
  d=$results/$s
  if [ -s "$d/$ref.rps" ]; then
    ref_rps=$(median "$d/$ref.rps"); ref_p50=$(median "$d/$ref.p50"); ref_p99=$(median "$d/$ref.p99")
    ref_cpu=$(cpu_us_per_req "$d" "$ref")
  fi
  if [ "$rss" = 1 ]; then
    echo "| $title | requests/s | vs $ref | p50 ms | vs $ref | p99 ms | vs $ref | errors | CPU µs/request | vs $ref | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  else
    echo "| $title | requests/s | vs $ref | p50 ms | vs $ref | p99 ms | vs $ref | errors | CPU µs/request | vs $ref |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  fi
  for c in "$@"; do
    rps=$(median "$d/$c.rps"); p50=$(median "$d/$c.p50"); p99=$(median "$d/$c.p99")
    cpu=$(cpu_us_per_req "$d" "$c")
    printf '| %s | %.0f | %s | %.3f | %s | %.3f | %s | %s | %s | %s |' "${label_of[$s:$c]}" "$rps" "$(ratio "$rps" "$ref_rps")" \
      "$p50" "$(ratio "$p50" "$ref_p50")" "$p99" "$(ratio "$p99" "$ref_p99")" "$(sum "$d/$c.errors")" \
      "$cpu" "$(ratio "$cpu" "$ref_cpu")"
    if [ "$rss" = 1 ]; then
      note=""
      [ "${peak_ok[$s:$c]}" = 1 ] || note=" (since start)"
      printf ' %s%s |' "$(mib "${load_hwm[$s:$c]}")" "$note"
    fi
    echo
  done
  if [ -s "$d/switchyard.rps" ] && [ -s "$d/haproxy.rps" ]; then
    echo
    echo "switchyard against HAProxy: requests/s $(ratio "$(median "$d/switchyard.rps")" "$(median "$d/haproxy.rps")")×, p99 $(ratio "$(median "$d/switchyard.p99")" "$(median "$d/haproxy.p99")")×, CPU per request $(ratio "$(cpu_us_per_req "$d" switchyard)" "$(cpu_us_per_req "$d" haproxy)")×."
  fi
  echo
  echo "Requests/s of each round, to judge the noise:"
  for c in "$@"; do
    echo "- ${label_of[$s:$c]}: $(awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1}' "$d/$c.rps")"
  done
}

mkdir -p "$OUT_DIR"
report=$OUT_DIR/results.md
wrk_version=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $1, $2}')
wrk_cmd="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
{
  echo "# switchyard benchmark results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -sr), load average $load_before before the run."
  echo "$(nginx -v 2>&1 | sed 's/^nginx version: //'), $(haproxy -v 2>&1 | head -1 | awk '{print "HAProxy", $3}'), $wrk_version, $(openssl version | awk '{print $1, $2}')$([ -x "$SWITCHYARD_BIN" ] && echo ", $("$SWITCHYARD_BIN" --version 2>/dev/null | head -1)")."
  echo "Scenarios: $SCENARIOS. Parameters: WORKERS=$WORKERS ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS WARMUP=$WARMUP SMALL_MB=$SMALL_MB LARGE_MB=$LARGE_MB LARGE_CONCURRENCY=$LARGE_CONCURRENCY."
  echo
  echo "Load scenarios: small keep-alive GETs (\`$wrk_cmd\`, $WARMUP warm-up each), $WORKERS worker(s) per proxy, keep-alive upstream connections, access logs off; median of $ROUNDS interleaved rounds. Ratios are to the reference row (for latency and CPU, lower is better). CPU is the proxy's user+system CPU time per request, summed over the rounds' runs (it does not depend on how much CPU wrk and the backend left over). Peak RSS is VmHWM summed over the proxy's processes, reset before the scenario."
  if has "$SCENARIOS" plain; then
    echo
    echo "## Plain HTTP upstream"
    echo
    echo "33-byte body from a local nginx over plain HTTP."
    echo
    # shellcheck disable=SC2086
    scenario_table plain nginx proxy 1 $PROXIES
  fi
  if has "$SCENARIOS" body16k; then
    echo
    echo "## 16 KiB responses"
    echo
    echo "A 16 KiB file (sendfile) from the local nginx over plain HTTP, the same keep-alive GETs."
    echo
    # shellcheck disable=SC2086
    scenario_table body16k nginx proxy 1 $PROXIES
  fi
  if has "$SCENARIOS" tls; then
    echo
    echo "## TLS upstream"
    echo
    echo "Plain HTTP from wrk to the proxy, HTTPS from the proxy to an nginx presenting \`$TLS_VERIFY_NAME\` (RSA 2048, throwaway CA) on 127.0.0.1; each proxy verifies the chain against that CA and the name, sends SNI and Host \`$TLS_API_HOST\`, rewrites the path to \`/prod/tls/bench\` and keeps upstream connections alive."
    echo
    # shellcheck disable=SC2086
    scenario_table tls nginx proxy 1 $PROXIES
    if [ -n "$tls_metrics" ]; then
      read -r m_req m_full m_res <<<"$tls_metrics"
      echo
      echo "switchyard's /metrics after the TLS scenario (counted since start, warm-up included): $m_req requests on route /tls, \`switchyard_upstream_tls_handshakes_total\` $m_full full + $m_res resumed."
    fi
  fi
  if has "$SCENARIOS" jwt; then
    echo
    echo "## JWT (RS256) route"
    echo
    echo "switchyard only: two routes to the plain backend that differ only in their auth policy, \`none\` and \`jwt\` (RS256, inline JWKS with one 2048-bit RSA key, issuer and audience checked). One valid token minted at bench time (exp one hour ahead) is sent as \`Authorization: Bearer\` on every request to both routes. Goal (issue 5): jwt at least 0.9× the requests/s of none."
    echo
    scenario_table jwt none route 0 none jwt
  fi
  if has "$SCENARIOS" memory; then
    echo
    echo "## Memory while moving large bodies"
    echo
    echo "$LARGE_CONCURRENCY concurrent downloads through each proxy, peak RSS (VmHWM, reset before each run) with $SMALL_MB MiB and with $LARGE_MB MiB bodies. Bounded per-connection buffering keeps the two about equal."
    echo
    echo "| proxy | idle RSS MiB | peak, ${SMALL_MB} MiB bodies | peak, ${LARGE_MB} MiB bodies | growth MiB | time for $LARGE_CONCURRENCY x $LARGE_MB MiB s |"
    echo "|---|---:|---:|---:|---:|---:|"
    for p in $PROXIES; do
      note=""
      [ "${peak_reset[$p]}" = 1 ] || note=" (peak since start: clear_refs not permitted)"
      printf '| %s | %s | %s | %s | %s | %s |\n' "$p" "$(mib "${idle_rss[$p]}")" "$(mib "${small_peak[$p]}")" \
        "$(mib "${large_peak[$p]}")$note" "$(mib $((${large_peak[$p]} - ${small_peak[$p]})))" "${large_secs[$p]}"
    done
  fi
  if has "$SCENARIOS" profile; then
    echo
    echo "## Where switchyard's time goes (small GETs, perf)"
    echo
    echo "$profile_out"
  fi
  if has "$SCENARIOS" routes && [ -f "$results/routes.md" ]; then
    echo
    echo "## Route table"
    echo
    echo "switchyard only, 1 worker, poll interval 1 s (bench/routes.mjs): a generated table of /tN/svcM and /tN/svcM/v2 routes plus /bench. Wall times depend on the machine's load; the process CPU beside them does not."
    echo
    cat "$results/routes.md"
  fi
  if has "$SCENARIOS" idle; then
    echo
    echo "## Idle keep-alive connections"
    echo
    echo "$IDLE_CONNS connections to each proxy, each after one small GET, held open and idle; RSS (VmRSS summed over the proxy's processes) before and after, after a warm-up of 100 connections opened and closed in the same batches of 50. Kernel socket buffers are not in RSS. Goal (issue 11): at most 1,024 B per plain connection for switchyard."
    echo
    echo "| proxy | listener | RSS before MiB | RSS after MiB | bytes per idle connection |"
    echo "|---|---|---:|---:|---:|"
    for p in $PROXIES switchyard-tls; do
      [ -n "${idle_out[$p]:-}" ] || continue
      printf '| %s | %s | %s | %s | %s |\n' "${p%-tls}" "$([ "$p" = switchyard-tls ] && echo HTTPS || echo HTTP)" \
        "$(mib "$(idle_field "${idle_out[$p]}" before_kb)")" "$(mib "$(idle_field "${idle_out[$p]}" after_kb)")" \
        "$(idle_field "${idle_out[$p]}" bytes_per_conn)"
    done
  fi
} >"$report"
if has "$SCENARIOS" dns; then
  { echo; node bench/dns.mjs "$SWITCHYARD_BIN" "$DURATION" 20; } >>"$report"
fi
echo
cat "$report"
echo
echo "bench: written to ${report#"$repo"/}"
