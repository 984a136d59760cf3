// SPEC §1 --drain-timeout and §6 /readyz: on SIGTERM/SIGINT switchyard stops
// accepting, reports not-ready, finishes in-flight requests, and exits 0.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, adminGet, sleep, sanitizerReport, HOST, SLOW } from './lib/harness.mjs';
import { RawConn, rawJson } from './lib/rawhttp.mjs';

let echo;
const started = [];

after(async () => {
  for (const sy of started) await sy.stop('SIGKILL', 2000);
  await echo?.close();
});

async function start(opts = {}) {
  echo ??= await startEcho({ name: 'drain' });
  const sy = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/', echo.port)], ...opts });
  started.push(sy);
  return sy;
}

// Resolves 'refused' | 'closed' | 'answered:<status>' for a fresh connection.
function probe(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve('hung');
    }, 3000 * SLOW);
    s.on('connect', () => s.write(`GET /probe HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`));
    s.on('data', (d) => (data += d));
    s.on('error', (e) => {
      clearTimeout(t);
      resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'closed');
    });
    s.on('close', () => {
      clearTimeout(t);
      const m = /^HTTP\/1\.\d (\d{3})/.exec(data);
      resolve(m ? `answered:${m[1]}` : 'closed');
    });
  });
}

test('SIGTERM: the in-flight request completes, new ones are refused, exit 0', async () => {
  const sy = await start({ drainTimeout: 20 });
  const slowMs = 2000 * SLOW;
  const c = await RawConn.open(sy.port);
  await c.send(`GET /slow?ms=${slowMs} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  await sleep(300 * SLOW);
  const t0 = Date.now();
  sy.proc.kill('SIGTERM');
  const pending = c.readFinal({ timeout: slowMs + 20000 * SLOW });
  // while it drains: not ready (or the admin is gone), no new connections
  let sawNotReady = false;
  let sawRefused = false;
  const probes = [];
  while (Date.now() - t0 < slowMs - 500 && !(sawNotReady && sawRefused)) {
    try {
      const r = await adminGet(sy, '/readyz', 1000);
      if (r.status === 503) sawNotReady = true;
    } catch {
      sawNotReady = true; // admin listener closed
    }
    const p = await probe(sy.port);
    probes.push(p);
    if (p === 'refused' || p === 'closed' || p === 'answered:503') sawRefused = true;
    await sleep(100);
  }
  const res = await pending;
  c.close();
  assert.ok(res, 'the in-flight request was cut off');
  assert.equal(res.status, 200);
  assert.equal(rawJson(res).url, `/slow?ms=${slowMs}`);
  assert.ok(sawNotReady, '/readyz kept answering 200 while draining');
  assert.ok(sawRefused, `new connections were still served while draining: ${probes.join(',')}`);
  const r = await sy.stop('SIGTERM', 30000 * SLOW);
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)}; stderr: ${sy.stderr().slice(-2000)}`);
  assert.equal(sanitizerReport(sy.stderr()), null);
});

test('SIGINT also drains and exits 0', async () => {
  const sy = await start();
  assert.equal((await get(sy, '/x')).status, 200);
  const r = await sy.stop('SIGINT', 30000 * SLOW);
  assert.equal(r.code, 0, sy.stderr().slice(-2000));
  assert.equal(sanitizerReport(sy.stderr()), null);
});

test('idle keep-alive connections do not hold up the exit', async () => {
  const sy = await start({ drainTimeout: 60 });
  const c = await RawConn.open(sy.port);
  await c.send(`GET /idle HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.equal((await c.readFinal()).status, 200);
  const r = await sy.stop('SIGTERM', 15000 * SLOW);
  c.close();
  assert.ok(!r.hung, 'an idle client connection kept switchyard alive toward its 60 s drain timeout');
  assert.equal(r.code, 0);
});

test('the drain timeout bounds the wait for a request that never finishes', async () => {
  const sy = await start({ drainTimeout: 1 });
  const c = await RawConn.open(sy.port);
  await c.send(`GET /slow?ms=600000 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  await sleep(300 * SLOW);
  const r = await sy.stop('SIGTERM', 15000 * SLOW);
  assert.ok(!r.hung, 'switchyard did not exit after its 1 s drain timeout');
  assert.ok(r.code === 0 || r.code === 1, `exit ${JSON.stringify(r)}`);
  assert.ok(await c.waitClosed(5000), 'the client connection stayed open after exit');
  c.close();
});
