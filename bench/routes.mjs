// bench/routes.mjs: the route-table scenario of `make bench` (issue 14).
// For tables of 10, 10,000 and 100,000 routes (files generated here, the
// shape of a large shared platform: /tN/svcM and /tN/svcM/v2, one target
// each, plus /bench), it measures: time from start to /readyz 200, resident
// memory once ready, `switchyard check` time (read, validate, build), the
// time for one changed route to go live (poll interval 1 s, so up to ~1.1 s
// of it is waiting for the poll), requests/s through /bench (wrk), and the
// size and time of a /metrics and a /config answer. Prints a markdown table
// and writes it to OUT (default build/bench/routes.md).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const BIN = process.env.SWITCHYARD_BIN || path.resolve('build/switchyard');
const OUT = process.env.OUT || path.resolve('build/bench/routes.md');
const SIZES = (process.env.ROUTE_SIZES || '10 10000 100000').split(/\s+/).filter(Boolean).map(Number);
const DURATION = process.env.DURATION || '5s';
const HOST = 'api.example.com';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-routes-'));
const procs = new Set();
process.on('exit', () => {
  for (const p of procs) try { p.kill('SIGKILL'); } catch {}
  fs.rmSync(tmp, { recursive: true, force: true });
});

const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;

function request(port, p, host = HOST) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, headers: { host }, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function table(n, backendPort, base) {
  const routes = [{ path: '/bench', target: `http://127.0.0.1:${backendPort}${base}` }];
  for (let i = 0; routes.length < n; i++) {
    routes.push({ path: `/t${Math.floor(i / 10)}/svc${i % 10}`, target: `http://127.0.0.1:${backendPort}/x` });
    if (routes.length < n) routes.push({ path: `/t${Math.floor(i / 10)}/svc${i % 10}/v2`, target: `http://127.0.0.1:${backendPort}` });
  }
  return routes;
}

function writeAtomic(file, value) {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(value));
  fs.renameSync(`${file}.tmp`, file);
}

// User + system CPU of a process so far: on a shared machine a steadier
// figure than wall time.
const cpuMs = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

async function timed(fn) {
  const t = now();
  const r = await fn();
  return [now() - t, r];
}

async function measure(n, backendPort) {
  const dir = fs.mkdtempSync(path.join(tmp, `n${n}-`));
  const policyFile = path.join(dir, 'policy.json');
  const routesFile = path.join(dir, 'routes.json');
  writeAtomic(policyFile, {
    listen_domains: [HOST],
    destinations: [{ host: '127.0.0.1', scheme: 'http', port: backendPort }],
    auth_policies: { public: { type: 'none' } },
    default_auth: 'public',
    allow_loopback_destinations: true,
  });
  writeAtomic(routesFile, table(n, backendPort, '/v1'));
  const checkStart = now();
  execFileSync(BIN, ['check', '--policy', policyFile, '--routes', routesFile], { stdio: 'ignore' });
  const checkMs = now() - checkStart;

  const port = await freePort();
  const admin = await freePort();
  const t0 = now();
  const proc = spawn(BIN, ['serve', '--policy', policyFile, '--routes', routesFile, '--listen', `127.0.0.1:${port}`,
    '--admin-listen', `127.0.0.1:${admin}`, '--workers', '1', '--poll-interval', '1', '--access-log', 'off',
    '--log-level', 'warn'], { stdio: 'ignore' });
  procs.add(proc);
  for (;;) {
    try {
      if ((await request(admin, '/readyz')).status === 200) break;
    } catch {}
    await sleep(10);
  }
  const readyMs = now() - t0;
  const readyCpuMs = cpuMs(proc.pid);
  await sleep(300);
  const rss = rssKiB(proc.pid);

  // One changed route live: /bench's base moves from /v1 to /v2.
  writeAtomic(routesFile, table(n, backendPort, '/v2'));
  const tChange = now();
  for (;;) {
    const r = await request(port, '/bench');
    if (r.body.toString().includes('/v2/bench')) break;
    await sleep(5);
  }
  const changeMs = now() - tChange;
  const changeCpuMs = cpuMs(proc.pid) - readyCpuMs;

  // Let the reload's leftovers (freeing the old table) finish first.
  await sleep(2500);
  // wrk runs beside this process, whose event loop serves the backend.
  const wrk = await new Promise((resolve, reject) => {
    const w = spawn('wrk', ['-t1', '-c20', `-d${DURATION}`, '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/bench`]);
    let out = '';
    w.stdout.on('data', (d) => (out += d));
    w.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}`))));
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrk)[1]);

  const [metricsMs, metrics] = await timed(() => request(admin, '/metrics'));
  const [configMs, config] = await timed(() => request(admin, '/config'));
  proc.kill('SIGTERM');
  await new Promise((r) => proc.on('exit', r));
  procs.delete(proc);
  return { n, checkMs, readyMs, readyCpuMs, changeCpuMs, rss, changeMs, rps, metricsBytes: metrics.body.length, metricsMs, configBytes: config.body.length, configMs };
}

// A tiny backend answering with the path it was asked for.
const backend = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(req.url);
});
await new Promise((r) => backend.listen(0, '127.0.0.1', r));
const backendPort = backend.address().port;

const rows = [];
for (const n of SIZES) {
  process.stderr.write(`bench: routes: ${n} routes...\n`);
  rows.push(await measure(n, backendPort));
}
backend.close();

const f = (v, d = 0) => v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const kib = (b) => `${f(b / 1024, 1)} KiB`;
let md = '| routes | check (read, validate, build) | start to ready (process CPU) | resident memory | per route | one changed route live, poll 1 s (process CPU) | requests/s (/bench) | /metrics | /config |\n';
md += '|---|---|---|---|---|---|---|---|---|\n';
for (const r of rows) {
  md += `| ${f(r.n)} | ${f(r.checkMs)} ms | ${f(r.readyMs)} ms (${f(r.readyCpuMs)} ms) | ${f(r.rss / 1024, 1)} MiB | ${r.n >= 1000 ? `${f((r.rss * 1024) / r.n)} B` : '-'} | ${f(r.changeMs)} ms (${f(r.changeCpuMs)} ms) | ${f(r.rps)} | ${kib(r.metricsBytes)}, ${f(r.metricsMs, 1)} ms | ${kib(r.configBytes)}, ${f(r.configMs, 1)} ms |\n`;
}
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, md);
process.stdout.write(md);
