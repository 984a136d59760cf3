// Issue 9 item 2: out of file descriptors, the router must not wedge. With a
// 256-fd limit and two workers, 400 idle connections used to leave both
// workers spinning in accept4 for good (every request failing, SIGTERM not
// finishing, /healthz still 200). Now each worker has a connection cap
// derived from the fd limit and pauses accepting at it; connections beyond
// the cap wait in the kernel backlog until one closes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import {
  startSwitchyard,
  makePolicy,
  route,
  get,
  adminGet,
  eventually,
  parseMetrics,
  jsonLines,
  sanitizerReport,
  sleep,
  SLOW,
} from './lib/harness.mjs';

const FD_LIMIT = 256;
// `ulimit -n` in sh sets the soft and the hard limit, so switchyard cannot
// raise itself out of the test; exec keeps the pid, so signals reach it.
const LAUNCHER = ['sh', '-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`];

let echo;
const started = [];
const sockets = new Set();

after(async () => {
  for (const s of sockets) s.destroy();
  for (const sy of started) await sy.stop('SIGKILL', 2000);
  await echo?.close();
});

function metricSum(text, name, labels = {}) {
  return parseMetrics(text)
    .filter((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v))
    .reduce((a, m) => a + m.value, 0);
}

function metricPresent(text, name) {
  return parseMetrics(text).some((m) => m.name === name);
}

// Opens a TCP connection that sends nothing; resolves once the kernel has
// completed the handshake (switchyard may not have accepted it yet).
function idleConnection(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    sockets.add(s);
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('close', () => {
      sockets.delete(s);
      resolve(s);
    });
  });
}

test('400 idle connections against a 256-fd limit: capped, not wedged; requests, /healthz and SIGTERM work after', async () => {
  echo = await startEcho({ name: 'fd' });
  const sy = await startSwitchyard({
    policy: makePolicy({ ports: [echo.port] }),
    routes: [route('/', echo.port)],
    workers: 2,
    drainTimeout: 5,
    launcher: LAUNCHER,
  });
  started.push(sy);

  // The start line states the limit and the per-worker cap it led to.
  // /readyz can answer before main writes the start line: wait for it.
  const startLine = await eventually(() => jsonLines(sy.stderr()).find((l) => l.msg === 'switchyard started'), {
    what: 'the start line',
  });
  assert.equal(Number(startLine.fd_limit), FD_LIMIT, JSON.stringify(startLine));
  const cap = Number(startLine.max_connections_per_worker);
  assert.ok(cap >= 1 && cap * 2 * 2 < FD_LIMIT, `cap ${cap} does not leave room for upstreams: ${JSON.stringify(startLine)}`);

  let m = (await adminGet(sy, '/metrics')).text;
  assert.equal(metricSum(m, 'switchyard_fd_limit'), FD_LIMIT);
  assert.equal(metricSum(m, 'switchyard_worker_connection_cap'), cap);

  // Far more connections than the fd limit allows at once.
  const conns = [];
  for (let i = 0; i < 400; i++) conns.push(idleConnection(sy.port));
  await Promise.all(conns);

  // Both workers reach their cap and pause accepting.
  m = await eventually(
    async () => {
      const text = (await adminGet(sy, '/metrics')).text;
      return metricSum(text, 'switchyard_accept_pauses_total', { reason: 'connection_cap' }) >= 2 ? text : null;
    },
    { what: 'accepting paused at the connection cap', timeoutMs: 20000 * SLOW },
  );
  assert.ok(metricSum(m, 'switchyard_client_connections') <= 2 * cap, m);
  // Paused at the cap, the loops still run: liveness stays good.
  assert.equal((await adminGet(sy, '/healthz')).status, 200);

  for (const s of [...sockets]) s.destroy();
  await sleep(200);

  // Requests succeed again, on both workers (fresh connections, spread by
  // the kernel across both listeners).
  await eventually(async () => (await get(sy, '/after', {}, { timeout: 3000 * SLOW })).status === 200, {
    what: 'a request succeeding after the connections closed',
    timeoutMs: 30000 * SLOW,
  });
  for (let i = 0; i < 20; i++) {
    const r = await get(sy, `/after/${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.text}`);
  }

  const health = await adminGet(sy, '/healthz');
  assert.equal(health.status, 200, health.text);
  assert.equal(health.json().status, 'ok');

  m = (await adminGet(sy, '/metrics')).text;
  assert.ok(metricPresent(m, 'switchyard_accept_paused'), 'no switchyard_accept_paused gauge');
  // The closed connections still queued in the backlogs are accepted (and
  // found closed) cap by cap, so a worker may pause a few more times first.
  await eventually(async () => metricSum((await adminGet(sy, '/metrics')).text, 'switchyard_accept_paused') === 0, {
    what: 'every worker accepting again once the backlog is worked off',
    timeoutMs: 30000 * SLOW,
  });

  // The drain finishes: the bound is the harness's wait, not a speed claim.
  const r = await sy.stop('SIGTERM', 60000 * SLOW);
  assert.ok(!r.hung, `switchyard did not exit after SIGTERM; stderr: ${sy.stderr().slice(-2000)}`);
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)}; stderr: ${sy.stderr().slice(-2000)}`);
  assert.equal(sanitizerReport(sy.stderr()), null);
});

// The cap cannot foresee fds taken elsewhere (another thread, or here the
// limit lowered under the running process with prlimit): accept4 then
// fails with EMFILE. The worker must pause and retry on a back-off instead
// of spinning or dropping connections, and recover once fds are back.
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

test('EMFILE while running (limit lowered under the process): paused, then recovers', { skip: !hasPrlimit && 'prlimit not installed' }, async () => {
  echo ??= await startEcho({ name: 'fd' });
  const sy = await startSwitchyard({
    policy: makePolicy({ ports: [echo.port] }),
    routes: [route('/', echo.port)],
    workers: 2,
    drainTimeout: 5,
    launcher: LAUNCHER,
  });
  started.push(sy);
  assert.equal((await get(sy, '/before')).status, 200);
  const pid = sy.proc.pid;
  const openFds = fs.readdirSync(`/proc/${pid}/fd`).length;
  // Soft limit at what is open now: the next accept4 finds no free fd.
  const lower = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${openFds}:`]);
  assert.equal(lower.status, 0, String(lower.stderr));
  const conns = [];
  for (let i = 0; i < 30; i++) conns.push(idleConnection(sy.port));
  await Promise.all(conns);
  await sleep(1500 * SLOW); // several back-off rounds while out of fds
  const raise = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${FD_LIMIT}:`]);
  assert.equal(raise.status, 0, String(raise.stderr));
  for (const s of [...sockets]) s.destroy();

  await eventually(async () => (await get(sy, '/after', {}, { timeout: 3000 * SLOW })).status === 200, {
    what: 'a request succeeding after the fds came back',
    timeoutMs: 30000 * SLOW,
  });
  const m = (await adminGet(sy, '/metrics')).text;
  assert.ok(metricSum(m, 'switchyard_accept_pauses_total', { reason: 'out_of_fds' }) >= 1, m);
  const health = await adminGet(sy, '/healthz');
  assert.equal(health.status, 200, health.text);
  await eventually(async () => metricSum((await adminGet(sy, '/metrics')).text, 'switchyard_accept_paused') === 0, {
    what: 'every worker accepting again',
  });
  const lines = jsonLines(sy.stderr()).filter((l) => l.reason === 'out of file descriptors');
  assert.ok(lines.length >= 1, `no log line for the fd shortage: ${sy.stderr().slice(-2000)}`);

  const r = await sy.stop('SIGTERM', 60000 * SLOW);
  assert.ok(!r.hung, `switchyard did not exit after SIGTERM; stderr: ${sy.stderr().slice(-2000)}`);
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)}; stderr: ${sy.stderr().slice(-2000)}`);
  assert.equal(sanitizerReport(sy.stderr()), null);
});
