#!/usr/bin/env node
// soak.mjs: the long run behind `make soak` (bench/soak.sh). A real
// switchyard (SWITCHYARD_BIN, two workers) serves SOAK_SECONDS of mixed
// traffic on loopback, and every SOAK_INTERVAL seconds this prints its
// resident memory, its open file descriptors and the request counts of the
// interval. It fails (exit 1) when
//   - any request that should succeed did not (wrong status, wrong body,
//     a reset or a timeout on a route whose backend is healthy);
//   - RSS at the end is more than SOAK_RSS_GROWTH (10 %) above RSS at the
//     end of warm-up (SOAK_WARMUP seconds, 120), or open fds (the median
//     of the interval's samples, which smooths out connections that happen
//     to be open at one instant) are more than SOAK_FD_GROWTH (16) above
//     the warm-up interval's;
//   - switchyard dies, or does not exit 0 on SIGTERM at the end.
//
// The traffic, each kind in its own loop(s), all through one listener:
//   keepalive  GETs on reused connections, and one loop opening a new
//              connection per request (Connection: close)
//   upload     POST bodies 0-512 KiB, Content-Length and chunked; the
//              backend's sha256 of what it got must match
//   download   1 KiB - 2 MiB downloads, Content-Length and chunked; length
//              and sha256 checked against the known pattern
//   pipeline   four requests (one a POST with a body) written at once on
//              one raw connection, answers read in order
//   slow       a client sending its head and body in small pieces over
//              ~2 s, and one reading a 4 MiB download 64 KiB at a time
//              with pauses (backpressure through the router)
//   flaky      a backend that resets one connection in five before
//              answering and one in five in the middle of the body: 200,
//              502 and an aborted body are all expected there, and counted
//              apart; anything else (404, 500, a hang) fails
//   reload     the routes file rewritten every 3 s (a route added and
//              removed, an unrelated route's target changed, and every
//              fifth write a broken document that must be refused while
//              the last good snapshot keeps serving); a loop on the
//              toggled route expects 200 or 404 only
//
// Knobs (environment): SOAK_SECONDS [600], SOAK_INTERVAL [60],
// SOAK_WARMUP [120], SOAK_RSS_GROWTH [0.10], SOAK_FD_GROWTH [16],
// SOAK_WORKERS [2], SOAK_PACE_MS [2: pause between requests of a loop, so
// the soak leaves CPU to others on a shared machine], SWITCHYARD_BIN.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { startEcho, patternSha256 } from '../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, dest, route, writeJsonAtomic, adminGet, sleep, HOST, binAvailable, BIN } from '../tests/e2e/lib/harness.mjs';
import { RawConn } from '../tests/e2e/lib/rawhttp.mjs';

const num = (name, dflt) => (process.env[name] !== undefined && process.env[name] !== '' ? Number(process.env[name]) : dflt);
const SECONDS = num('SOAK_SECONDS', 600);
const INTERVAL = num('SOAK_INTERVAL', 60);
const WARMUP = num('SOAK_WARMUP', Math.min(120, Math.floor(SECONDS / 3)));
const RSS_GROWTH = num('SOAK_RSS_GROWTH', 0.1);
const FD_GROWTH = num('SOAK_FD_GROWTH', 16);
const WORKERS = num('SOAK_WORKERS', 2);
const PACE_MS = num('SOAK_PACE_MS', 2);
const SAMPLE_MS = Math.max(1000, Math.min(5000, (INTERVAL * 1000) / 6));
const TIMEOUT_MS = 30000;

if (!binAvailable()) {
  console.error(`soak: ${BIN} is missing: run make first`);
  process.exit(2);
}
if (!(SECONDS > 0 && INTERVAL > 0 && WARMUP >= INTERVAL && WARMUP < SECONDS)) {
  console.error('soak: need SOAK_SECONDS > SOAK_WARMUP >= SOAK_INTERVAL > 0');
  process.exit(2);
}

// ---- counters ----
const KINDS = ['keepalive', 'close', 'upload', 'download', 'pipeline', 'slow', 'flaky', 'reload'];
const total = { ok: {}, expected: {}, failed: {} };
let interval = { ok: {}, expected: {}, failed: {} };
const failures = [];
function count(bucket, kind, n = 1) {
  for (const t of [total, interval]) t[bucket][kind] = (t[bucket][kind] || 0) + n;
}
const ok = (kind) => count('ok', kind);
const expected = (kind) => count('expected', kind);
function fail(kind, what) {
  count('failed', kind);
  if (failures.length < 50) failures.push(`${new Date().toISOString()} ${kind}: ${what}`);
}
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

// ---- a backend that resets connections ----
function startFlaky() {
  let n = 0;
  const server = http.createServer((req, res) => {
    const mode = n++ % 5;
    req.on('error', () => {});
    res.on('error', () => {});
    req.resume();
    req.on('end', () => {
      if (mode === 1) {
        req.socket.resetAndDestroy(); // RST before any byte: 502 (or a retry's 200)
      } else if (mode === 3) {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 10000 });
        res.write('x'.repeat(1000), () => setTimeout(() => req.socket.resetAndDestroy(), 5));
      } else {
        const body = JSON.stringify({ name: 'flaky', url: req.url });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      }
    });
  });
  server.keepAliveTimeout = 120000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port })));
}

// ---- one request with node:http; resolves {status, body, aborted} or rejects ----
function request({ port, method = 'GET', path, body, chunked = false, agent = false, onData }) {
  return new Promise((resolve, reject) => {
    const headers = { Host: HOST };
    if (body !== undefined && !chunked) headers['Content-Length'] = body.length;
    if (agent === false) headers.Connection = 'close';
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent, setHost: false }, (res) => {
      const chunks = [];
      let aborted = false;
      res.on('aborted', () => (aborted = true));
      res.on('data', (c) => (onData ? onData(c, res) : chunks.push(c)));
      res.on('error', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), aborted: true }));
      res.on('close', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), aborted: aborted || !res.complete }));
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`timeout after ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    if (body === undefined) return req.end();
    if (!chunked) return req.end(body);
    // Two writes without Content-Length: node frames them as chunks.
    const half = body.length >> 1;
    req.write(body.subarray(0, half));
    setTimeout(() => req.end(body.subarray(half)), 1);
  });
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
function echoJson(r) {
  try {
    return JSON.parse(r.body.toString('utf8'));
  } catch {
    return null;
  }
}
const brief = (r) => `${r.status}${r.aborted ? ' (aborted)' : ''} ${r.body.toString('utf8').slice(0, 160)}`;

// ---- traffic loops ----
let stopping = false;
const loops = [];
function loop(kind, fn) {
  loops.push(
    (async () => {
      for (let n = 0; !stopping; n++) {
        try {
          await fn(n);
        } catch (e) {
          fail(kind, e.message);
          await sleep(100);
        }
        if (PACE_MS) await sleep(PACE_MS);
      }
    })(),
  );
}

async function main() {
  const echo = await startEcho({ name: 'A' });
  const other = await startEcho({ name: 'B' });
  const flaky = await startFlaky();
  const policy = makePolicy({ destinations: [dest(echo.port), dest(other.port), dest(flaky.port)] });
  const baseRoutes = [route('/stable', echo.port), route('/flaky', flaky.port)];
  let generation = 0;
  const routesFor = (g) => {
    const r = [...baseRoutes, route('/unrelated', g % 2 ? echo.port : other.port)];
    if (g % 2) r.push(route('/toggle', other.port));
    return r;
  };
  const sy = await startSwitchyard({ policy, routes: routesFor(0), workers: WORKERS, pollInterval: 0.5, logLevel: 'warn' });
  const pid = sy.proc.pid;
  const port = sy.port;
  console.log(`soak: switchyard pid ${pid} (${BIN}), ${WORKERS} workers, port ${port}; ${SECONDS}s, report every ${INTERVAL}s, warm-up ${WARMUP}s`);

  const sizes = [1024, 100 * 1024, 2 * 1024 * 1024];
  const digests = new Map(sizes.map((n) => [n, patternSha256(n)]));
  const slowSize = 4 * 1024 * 1024;
  digests.set(slowSize, patternSha256(slowSize));
  const uploadPool = crypto.randomBytes(512 * 1024);

  // keep-alive GETs: three loops, each on its own reused connection
  for (let i = 0; i < 3; i++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    loop('keepalive', async (n) => {
      const path = `/stable/ka${i}/${n}?q=${n}`;
      const r = await request({ port, path, agent });
      const j = echoJson(r);
      if (r.status === 200 && !r.aborted && j && j.name === 'A' && j.url === path) ok('keepalive');
      else fail('keepalive', `${path}: ${brief(r)}`);
    });
  }
  // a new connection per request
  loop('close', async (n) => {
    const path = `/stable/close/${n}`;
    const r = await request({ port, path });
    const j = echoJson(r);
    if (r.status === 200 && j && j.url === path) ok('close');
    else fail('close', `${path}: ${brief(r)}`);
  });
  // uploads, Content-Length and chunked
  {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    loop('upload', async (n) => {
      const size = (n * 7919) % (512 * 1024);
      const body = uploadPool.subarray(0, size);
      const chunked = n % 2 === 1;
      const r = await request({ port, method: n % 3 ? 'POST' : 'PUT', path: `/stable/up/${n}`, body, chunked, agent });
      const j = echoJson(r);
      if (r.status === 200 && j && j.body_bytes === size && j.body_sha256 === sha256(body)) ok('upload');
      else fail('upload', `${size} bytes${chunked ? ' chunked' : ''}: ${brief(r)}`);
    });
  }
  // downloads
  {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    loop('download', async (n) => {
      const size = sizes[n % sizes.length];
      const chunked = n % 2 === 1;
      const r = await request({ port, path: `/stable/download?bytes=${size}${chunked ? '&chunked=1' : ''}`, agent });
      if (r.status === 200 && !r.aborted && r.body.length === size && sha256(r.body) === digests.get(size)) ok('download');
      else fail('download', `${size} bytes: ${r.status}${r.aborted ? ' aborted' : ''}, got ${r.body.length}`);
    });
  }
  // pipelining on one raw connection
  {
    let conn = null;
    loop('pipeline', async (n) => {
      if (!conn || conn.closed) conn = await RawConn.open(port);
      const paths = [0, 1, 2, 3].map((k) => `/stable/pipe/${n}-${k}`);
      const body = 'x'.repeat(n % 1000);
      let bytes = '';
      paths.forEach((p, k) => {
        bytes += k === 2 ? `POST ${p} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n${body}` : `GET ${p} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
      });
      await conn.send(bytes);
      for (const [k, p] of paths.entries()) {
        const res = await conn.readFinal({ timeout: TIMEOUT_MS });
        let j = null;
        try {
          j = res && JSON.parse(res.body.toString('utf8'));
        } catch {}
        if (res && res.status === 200 && j && j.url === p && (k !== 2 || j.body_bytes === body.length)) ok('pipeline');
        else {
          fail('pipeline', `${p}: ${res ? `${res.status} ${res.body.toString('utf8').slice(0, 160)}` : 'connection closed'}`);
          conn.close();
          conn = null;
          return;
        }
      }
    });
  }
  // slow sender: head and body in pieces over ~2 s
  loop('slow', async (n) => {
    const c = await RawConn.open(port);
    try {
      const body = Buffer.alloc(2000 + n, 0x61);
      const head = `POST /stable/slow-send/${n} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      const whole = Buffer.concat([Buffer.from(head, 'latin1'), body]);
      const pieces = 20;
      const step = Math.ceil(whole.length / pieces);
      for (let off = 0; off < whole.length; off += step) {
        await c.send(whole.subarray(off, off + step));
        await sleep(100);
      }
      const res = await c.readFinal({ timeout: TIMEOUT_MS });
      let j = null;
      try {
        j = res && JSON.parse(res.body.toString('utf8'));
      } catch {}
      if (res && res.status === 200 && j && j.body_bytes === body.length) ok('slow');
      else fail('slow', `slow sender: ${res ? res.status : 'no answer'}`);
    } finally {
      c.close();
    }
  });
  // slow reader: 4 MiB read with pauses
  loop('slow', async () => {
    const hash = crypto.createHash('sha256');
    let got = 0;
    let paused = false;
    const r = await request({
      port,
      path: `/stable/download?bytes=${slowSize}`,
      onData(chunk, res) {
        hash.update(chunk);
        got += chunk.length;
        if (!paused && got % (64 * 1024) < chunk.length) {
          paused = true;
          res.pause();
          setTimeout(() => {
            paused = false;
            res.resume();
          }, 40);
        }
      },
    });
    if (r.status === 200 && !r.aborted && got === slowSize && hash.digest('hex') === digests.get(slowSize)) ok('slow');
    else fail('slow', `slow reader: ${r.status}${r.aborted ? ' aborted' : ''}, ${got} of ${slowSize} bytes`);
  });
  // the resetting backend
  {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    loop('flaky', async (n) => {
      const path = `/flaky/${n}`;
      let r;
      try {
        r = await request({ port, path, agent, method: n % 4 === 0 ? 'POST' : 'GET', body: n % 4 === 0 ? Buffer.alloc(100, 0x7a) : undefined });
      } catch (e) {
        // a reset reaching the client mid-body can surface as a socket error
        if (/ECONNRESET|socket hang up/.test(e.message)) return expected('flaky');
        throw e;
      }
      const j = echoJson(r);
      if (r.status === 200 && !r.aborted && j && j.url === path) ok('flaky');
      else if (r.status === 502 || (r.status === 200 && r.aborted)) expected('flaky');
      else fail('flaky', `${path}: ${brief(r)}`);
    });
  }
  // reloads, and a loop on the route that comes and goes
  const reloader = setInterval(() => {
    generation++;
    if (generation % 5 === 0) writeJsonAtomic(sy.routesFile, '[{"path": "/broken", "target": 42}');
    else writeJsonAtomic(sy.routesFile, routesFor(generation));
  }, 3000);
  loop('reload', async (n) => {
    const r = await request({ port, path: `/toggle/${n}` });
    if ((r.status === 200 && echoJson(r)?.name === 'B') || r.status === 404) ok('reload');
    else fail('reload', `/toggle/${n}: ${brief(r)}`);
    const u = await request({ port, path: `/unrelated/${n}` });
    if (u.status === 200 && echoJson(u)) ok('reload');
    else fail('reload', `/unrelated/${n}: ${brief(u)}`);
    await sleep(20);
  });

  // ---- sampling ----
  const readRss = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  };
  const readFds = () => fs.readdirSync(`/proc/${pid}/fd`).length;
  const median = (a) => {
    const s = [...a].sort((x, y) => x - y);
    return s[s.length >> 1];
  };
  const mb = (b) => (b / 1048576).toFixed(1);
  const reports = [];
  let samples = [];
  let dead = null;
  const start = Date.now();
  let nextReport = start + INTERVAL * 1000;
  const end = start + SECONDS * 1000;
  sy.exited.then((x) => (dead = x));
  while (Date.now() < end && !dead) {
    await sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
    if (dead) break;
    try {
      samples.push({ rss: readRss(), fds: readFds() });
    } catch (e) {
      dead = dead || { error: e.message };
      break;
    }
    if (Date.now() >= nextReport - 50 || Date.now() >= end) {
      const t = Math.round((Date.now() - start) / 1000);
      const fds = samples.map((s) => s.fds);
      const rep = { t, rss: samples[samples.length - 1].rss, fds: median(fds), fdsMin: Math.min(...fds), fdsMax: Math.max(...fds), ...interval };
      reports.push(rep);
      const kinds = KINDS.filter((k) => rep.ok[k] || rep.expected[k] || rep.failed[k]).map((k) => `${k} ${rep.ok[k] || 0}${rep.expected[k] ? `+${rep.expected[k]}` : ''}${rep.failed[k] ? `/${rep.failed[k]}!` : ''}`);
      console.log(
        `[${String(t).padStart(4)}s] rss ${mb(rep.rss)} MB  fds ${rep.fds} (${rep.fdsMin}-${rep.fdsMax})  ok ${sum(rep.ok)}  expected errors ${sum(rep.expected)}  FAILED ${sum(rep.failed)}  | ${kinds.join(', ')}`,
      );
      interval = { ok: {}, expected: {}, failed: {} };
      samples = [];
      nextReport += INTERVAL * 1000;
    }
  }
  clearInterval(reloader);
  stopping = true;
  await Promise.race([Promise.all(loops), sleep(TIMEOUT_MS + 5000)]);

  // After the traffic: the fds left open (listeners, pooled upstream
  // connections, log files) and the metrics' view.
  await sleep(2000);
  let idleFds = null;
  if (!dead) idleFds = readFds();
  let metricsLine = '';
  if (!dead) {
    try {
      const m = await adminGet(sy, '/metrics');
      const pick = (re) => m.text.split('\n').filter((l) => re.test(l) && !l.startsWith('#'));
      metricsLine = pick(/reload|_errors|upstream_failures|responses_total\{.*5\d\d/).slice(0, 20).join('\n  ');
    } catch {}
  }

  // ---- verdict ----
  const problems = [];
  if (dead) problems.push(`switchyard exited during the soak: ${JSON.stringify(dead)}; stderr tail:\n${sy.stderr().slice(-2000)}`);
  const base = reports.find((r) => r.t >= WARMUP - 1);
  const last = reports[reports.length - 1];
  if (!dead && base && last && last !== base) {
    if (last.rss > base.rss * (1 + RSS_GROWTH)) problems.push(`RSS grew from ${mb(base.rss)} MB at ${base.t}s to ${mb(last.rss)} MB at ${last.t}s (more than ${RSS_GROWTH * 100}%)`);
    if (last.fds > base.fds + FD_GROWTH) problems.push(`open fds grew from ${base.fds} at ${base.t}s to ${last.fds} at ${last.t}s (more than ${FD_GROWTH})`);
  } else if (!dead) {
    problems.push('the run was too short to compare the end with the warm-up');
  }
  const nFailed = sum(total.failed);
  if (nFailed) problems.push(`${nFailed} request(s) that should have succeeded failed; first ones:\n  ${failures.slice(0, 20).join('\n  ')}`);
  const exit = dead ? null : await sy.stop();
  if (exit && (exit.code !== 0 || exit.hung)) problems.push(`switchyard exited ${JSON.stringify(exit)} on SIGTERM`);
  await Promise.all([echo.close(), other.close(), new Promise((r) => flaky.server.close(r))]);
  flaky.server.closeAllConnections?.();

  console.log(`soak: ${Math.round((Date.now() - start) / 1000)}s, ${sum(total.ok)} requests ok, ${sum(total.expected)} expected errors (flaky backend), ${nFailed} failed, ${generation} routes-file writes`);
  console.log(`soak: totals ok ${JSON.stringify(total.ok)} expected ${JSON.stringify(total.expected)} failed ${JSON.stringify(total.failed)}`);
  if (base && last) console.log(`soak: RSS ${mb(base.rss)} MB at ${base.t}s -> ${mb(last.rss)} MB at ${last.t}s; fds ${base.fds} -> ${last.fds}; fds after the traffic stopped: ${idleFds}`);
  if (metricsLine) console.log(`soak: metrics at the end:\n  ${metricsLine}`);
  try {
    fs.rmSync(sy.dir, { recursive: true, force: true });
  } catch {}
  if (problems.length) {
    console.log(`soak: FAILED\n- ${problems.join('\n- ')}`);
    process.exit(1);
  }
  console.log('soak: passed');
  process.exit(0);
}

main().catch((e) => {
  console.error(`soak: ${e.stack || e.message}`);
  process.exit(1);
});
