// harness.mjs: what every end-to-end test needs to run switchyard as a
// black box: free ports, temp dirs, policy/routes documents, starting the
// binary (SWITCHYARD_BIN) and waiting for /readyz, stopping it and checking
// that it exited cleanly (no sanitizer report), and simple HTTP calls to the
// router and the admin listener. Every process started here is also killed
// when the test process exits, so a failing test never leaks one.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.SWITCHYARD_BIN || path.join(REPO, 'build/switchyard');
export const HOST = 'api.example.com';
// The ASan+UBSan build is a few times slower; every wait scales with this
// (SY_E2E_SLOW overrides the guess made from the binary's path).
export const SLOW = Number(process.env.SY_E2E_SLOW) || (/asan|sanit/i.test(BIN) ? 3 : 1);

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function binAvailable() {
  return fs.existsSync(BIN);
}

// The kernel may hand the same free port to two calls in a row (the first
// was released before the second asked), and a test that asks twice (a
// listener and an admin listener) then collides with itself: never return
// a port this process has handed out before.
const portsGiven = new Set();
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!portsGiven.has(port)) {
      portsGiven.add(port);
      return port;
    }
  }
}

export function tempDir(prefix = 'sy-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Replaces the file in one rename, so a poller never reads half a document.
export function writeJsonAtomic(file, value) {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  fs.renameSync(tmp, file);
}

// A destination entry for a loopback backend.
export function dest(port, extra = {}) {
  return { scheme: 'http', host: '127.0.0.1', port, ...extra };
}

// A policy allowing the given backend ports, with overrides merged on top.
export function makePolicy({ ports = [], destinations, ...rest } = {}) {
  return {
    listen_domains: [HOST, '*.apps.example.com'],
    destinations: destinations || ports.map((p) => dest(p)),
    auth_policies: { public: { type: 'none' } },
    default_auth: 'public',
    allow_loopback_destinations: true,
    ...rest,
  };
}

export function route(pathValue, port, extra = {}) {
  const { base = '', ...more } = extra;
  return { path: pathValue, target: `http://127.0.0.1:${port}${base}`, ...more };
}

// Runs `switchyard ARGS` to completion; returns {code, signal, stdout, stderr}.
export function runCli(args, { timeout = 30000 * SLOW, env } = {}) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout, env: { ...process.env, ...env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

export function sanitizerReport(text) {
  const m = SANITIZER_RE.exec(text);
  return m ? text.slice(Math.max(0, m.index - 200), m.index + 3000) : null;
}

/*
 * Starts `switchyard serve` on free ports with the given documents (objects
 * are written as JSON; strings as they are) and waits until /readyz is 200.
 * Returns a handle: {port, adminPort, dir, policyFile, routesFile, accessLog,
 * proc, stderr(), stdout(), stop(signal), exited}.
 */
export async function startSwitchyard({
  policy,
  routes = [],
  workers = 2,
  pollInterval = 0.2,
  drainTimeout = 5,
  accessLog = 'file',
  logLevel = 'info',
  extraArgs = [],
  dir = tempDir(),
  waitReady = true,
  // Runs BIN through this command, e.g. ['sh', '-c', 'ulimit -n 256 && exec "$0" "$@"'];
  // it must exec BIN so signals reach switchyard itself.
  launcher = [],
} = {}) {
  const policyFile = path.join(dir, 'policy.json');
  const routesFile = path.join(dir, 'routes.json');
  writeJsonAtomic(policyFile, policy);
  writeJsonAtomic(routesFile, routes);
  const port = await freePort();
  const adminPort = await freePort();
  const accessPath = accessLog === 'file' ? path.join(dir, 'access.log') : accessLog;
  const args = [
    'serve',
    '--policy', policyFile,
    '--routes', routesFile,
    '--listen', `127.0.0.1:${port}`,
    '--admin-listen', `127.0.0.1:${adminPort}`,
    '--workers', String(workers),
    '--poll-interval', String(pollInterval),
    '--access-log', accessPath,
    '--log-level', logLevel,
    '--drain-timeout', String(drainTimeout),
    ...extraArgs,
  ];
  const proc = launcher.length
    ? spawn(launcher[0], [...launcher.slice(1), BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    });
    proc.on('error', (e) => {
      children.delete(proc);
      err += `spawn error: ${e.message}\n`;
      resolve({ code: -1, signal: null });
    });
  });
  let exitInfo = null;
  exited.then((x) => (exitInfo = x));
  const sy = {
    port,
    adminPort,
    dir,
    policyFile,
    routesFile,
    accessLog: accessPath,
    args,
    proc,
    exited,
    stdout: () => out,
    stderr: () => err,
    exitInfo: () => exitInfo,
    // Sends signal, waits for the exit; then SIGKILL if it hangs.
    async stop(signal = 'SIGTERM', waitMs = (drainTimeout + 15) * 1000 * SLOW) {
      if (exitInfo) return exitInfo;
      proc.kill(signal);
      let timer;
      const t = new Promise((r) => (timer = setTimeout(() => r(null), waitMs)));
      const r = await Promise.race([exited, t]);
      clearTimeout(timer);
      if (r) return r;
      proc.kill('SIGKILL');
      await exited;
      return { code: null, signal: 'SIGKILL', hung: true };
    },
    // stop() plus: the process exited 0 and printed no sanitizer report.
    async stopClean() {
      const r = await sy.stop();
      const report = sanitizerReport(err);
      if (report) throw new Error(`sanitizer report from switchyard:\n${report}`);
      if (r.code !== 0) {
        throw new Error(`switchyard exited ${JSON.stringify(r)} after SIGTERM; stderr tail:\n${err.slice(-3000)}`);
      }
      return r;
    },
  };
  if (waitReady) {
    try {
      await waitForReady(sy);
    } catch (e) {
      proc.kill('SIGKILL');
      await exited;
      throw e;
    }
  }
  return sy;
}

export async function waitForReady(sy, timeoutMs = 15000 * SLOW) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (sy.exitInfo()) {
      throw new Error(`switchyard exited ${JSON.stringify(sy.exitInfo())} before ready; args: ${sy.args.join(' ')}\nstderr:\n${sy.stderr().slice(-3000)}`);
    }
    try {
      const r = await adminGet(sy, '/readyz', 1000 * SLOW);
      if (r.status === 200) return;
      last = `readyz ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(50);
  }
  throw new Error(`switchyard not ready after ${timeoutMs} ms (${last}); stderr:\n${sy.stderr().slice(-3000)}`);
}

/*
 * One HTTP request with node:http, no connection reuse unless an agent is
 * given. Returns {status, headers, rawHeaders, body (Buffer), text, json()}.
 */
export function httpRequest({ port, method = 'GET', path: p = '/', headers = {}, body, host = HOST, timeout = 20000 * SLOW, agent = false }) {
  return new Promise((resolve, reject) => {
    const hdrs = { ...headers };
    if (host !== null && !Object.keys(hdrs).some((k) => k.toLowerCase() === 'host')) hdrs.Host = host;
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: hdrs, agent, setHost: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({
          status: res.statusCode,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: buf,
          text: buf.toString('utf8'),
          json() {
            return JSON.parse(buf.toString('utf8'));
          },
        });
      });
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`timeout after ${timeout} ms: ${method} ${p}`)));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

export function get(sy, p, headers = {}, opts = {}) {
  return httpRequest({ port: sy.port, path: p, headers, ...opts });
}

export function adminGet(sy, p, timeout = 10000 * SLOW) {
  return httpRequest({ port: sy.adminPort, path: p, host: `127.0.0.1:${sy.adminPort}`, timeout });
}

// Polls fn() until it returns a truthy value; returns that value.
export async function eventually(fn, { timeoutMs = 10000 * SLOW, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

// Header values by (case-insensitive) name from a [[name, value], ...] list.
export function headerValues(pairs, name) {
  const n = name.toLowerCase();
  return pairs.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

// Asserts the error body shape of SPEC §5.10 and returns the message.
export function errorMessage(res) {
  const ct = (res.headers['content-type'] || '').toLowerCase();
  if (!ct.startsWith('application/json')) throw new Error(`error answer ${res.status} has Content-Type ${ct || '(none)'}; body ${res.text}`);
  let obj;
  try {
    obj = JSON.parse(res.text);
  } catch {
    throw new Error(`error answer ${res.status} body is not JSON: ${res.text}`);
  }
  if (typeof obj.message !== 'string' || obj.message.length === 0) throw new Error(`error body without a message: ${res.text}`);
  return obj.message;
}

// Prometheus text -> [{name, labels: {}, value}].
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2];
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// Every value (recursively) inside a JSON document.
export function* walkJson(v, key = null) {
  yield [key, v];
  if (Array.isArray(v)) for (const x of v) yield* walkJson(x, key);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) yield* walkJson(x, k);
}

// Log lines (JSON) from text; non-JSON lines are returned as {_raw}.
export function jsonLines(text) {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return { _raw: l };
      }
    });
}
