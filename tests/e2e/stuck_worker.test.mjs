// Issue 9 item 2: a worker whose event loop no longer runs must show in
// /healthz (so a load balancer takes the task out of service), and SIGTERM
// must still end the process once --drain-timeout (plus the stop grace) has
// passed. The stuck loop is made by freezing one worker thread with ptrace,
// as a debugger would; the other threads keep running.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, adminGet, eventually, jsonLines, SLOW } from './lib/harness.mjs';

// Stops one thread (PTRACE_SEIZE + PTRACE_INTERRUPT) until stdin closes;
// the kernel lets the thread go when this process exits.
const FREEZER = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
for req in (0x4206, 0x4207):
    if libc.ptrace(req, tid, None, None) != 0:
        print('ptrace failed', ctypes.get_errno(), flush=True)
        sys.exit(1)
print('frozen', flush=True)
sys.stdin.read()
`;

function canFreeze() {
  const r = spawnSync('python3', ['-c', 'import ctypes; ctypes.CDLL(None).ptrace'], { encoding: 'utf8' });
  return r.status === 0;
}

let echo;
const started = [];
const freezers = [];

after(async () => {
  for (const f of freezers) f.kill('SIGKILL');
  for (const sy of started) await sy.stop('SIGKILL', 2000);
  await echo?.close();
});

function workerTid(pid, name) {
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      if (fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === name) return Number(tid);
    } catch {}
  }
  return null;
}

function freeze(tid) {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', FREEZER, String(tid)], { stdio: ['pipe', 'pipe', 'pipe'] });
    freezers.push(p);
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (out.includes('frozen')) resolve(p);
    });
    p.on('exit', (code) => reject(new Error(`freezer exited ${code}: ${out}`)));
  });
}

test('a frozen worker loop fails /healthz, and SIGTERM still ends the process', { skip: !canFreeze() && 'python3 with ctypes not available' }, async (t) => {
  echo = await startEcho({ name: 'stuck' });
  const sy = await startSwitchyard({
    policy: makePolicy({ ports: [echo.port] }),
    routes: [route('/', echo.port)],
    workers: 2,
    drainTimeout: 1,
  });
  started.push(sy);
  assert.equal((await adminGet(sy, '/healthz')).status, 200);
  const tid = await eventually(() => workerTid(sy.proc.pid, 'sy-worker-1'), { what: 'thread sy-worker-1' });
  let freezer;
  try {
    freezer = await freeze(tid);
  } catch (e) {
    t.skip(`cannot ptrace here: ${e.message}`);
    return;
  }

  const health = await eventually(
    async () => {
      const r = await adminGet(sy, '/healthz');
      return r.status === 503 ? r : null;
    },
    { what: '/healthz failing for the frozen worker', timeoutMs: 30000 * SLOW },
  );
  const body = health.json();
  assert.equal(body.status, 'stalled');
  assert.equal(body.worker, 1);
  assert.match(body.message, /worker 1 event loop has not run/);
  // The other worker still serves (readiness is about configuration).
  assert.equal((await adminGet(sy, '/readyz')).status, 200);

  // SIGTERM: the frozen worker can never finish its drain; main gives up on
  // it after --drain-timeout plus the stop grace, says why, and exits 1.
  sy.proc.kill('SIGTERM');
  await eventually(() => jsonLines(sy.stderr()).find((l) => l.msg === 'shutdown did not finish in time; exiting without waiting further'), {
    what: 'the shutdown watchdog giving up',
    timeoutMs: 60000 * SLOW,
  });
  const line = jsonLines(sy.stderr()).find((l) => /shutdown did not finish/.test(l.msg || ''));
  assert.match(line.waiting_for, /workers/);
  // The frozen thread is released (a ptraced thread is only reaped once
  // its tracer lets go), then the exit is observed.
  freezer.stdin.end();
  freezer.kill('SIGKILL');
  let timer;
  const r = await Promise.race([sy.exited, new Promise((res) => (timer = setTimeout(() => res(null), 30000 * SLOW)))]);
  clearTimeout(timer);
  assert.ok(r, 'switchyard did not exit');
  assert.equal(r.code, 1, `exit ${JSON.stringify(r)}; stderr: ${sy.stderr().slice(-2000)}`);
});

// A control-plane call that hangs (S3 accepting the connection and never
// answering) must not hold the exit past --drain-timeout + the stop grace.
test('a configuration fetch that hangs does not hold the exit', async () => {
  // Answers 503 at once until `hang` is set (so the start's own fetches fail
  // fast), then accepts and never answers.
  const accepted = [];
  let hang = false;
  const blackHole = net.createServer((s) => {
    s.on('error', () => {});
    if (hang) {
      accepted.push(s);
      return;
    }
    s.once('data', () => s.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  });
  await new Promise((r) => blackHole.listen(0, '127.0.0.1', r));
  try {
    // Env for the child (each test file runs in its own process).
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${blackHole.address().port}`,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      AWS_REGION: 'eu-west-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    echo ??= await startEcho({ name: 'stuck' });
    const sy = await startSwitchyard({
      policy: makePolicy({ ports: [echo.port] }),
      routes: [route('/', echo.port)],
      drainTimeout: 0.5,
      // The last --policy wins: the policy comes from the silent "S3".
      extraArgs: ['--policy', 's3://switchyard-config/policy.json'],
      waitReady: false,
    });
    started.push(sy);
    // The start's own fetch fails (503); then the poller's next one hangs.
    await eventually(() => jsonLines(sy.stderr()).find((l) => l.msg === 'switchyard started'), {
      what: 'the start (after the first fetch failed)',
      timeoutMs: 60000 * SLOW,
    });
    hang = true;
    await eventually(() => accepted.length > 0, { what: 'the poller fetching again', timeoutMs: 60000 * SLOW });
    sy.proc.kill('SIGTERM');
    // SIGTERM aborts the control-plane call in flight, so the process
    // drains and exits 0 on its own; the watchdog (exit 1) is the backstop
    // should anything else hang. Either way it must exit.
    let timer;
    const r = await Promise.race([
      sy.exited,
      new Promise((resolve) => (timer = setTimeout(() => resolve(null), 30000 * SLOW))),
    ]);
    clearTimeout(timer);
    assert.ok(r, `switchyard did not exit while a fetch hung; stderr: ${sy.stderr().slice(-2000)}`);
    if (r.code !== 0) {
      const line = jsonLines(sy.stderr()).find((l) => /shutdown did not finish/.test(l.msg || ''));
      assert.ok(line, `exit ${JSON.stringify(r)} without the watchdog's reason; stderr: ${sy.stderr().slice(-2000)}`);
      assert.match(line.waiting_for, /configuration poller/);
    }
  } finally {
    for (const s of accepted) s.destroy();
    blackHole.close();
  }
});
