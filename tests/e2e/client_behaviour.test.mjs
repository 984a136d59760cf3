// What misbehaving or unusual clients get: a slow header sender and an idle
// keep-alive connection are closed after their timeouts; clients that
// vanish mid-request (during a slow answer, an upload or a download) cost
// the router nothing; an HTTP/1.0 client never gets a chunked body; many
// simultaneous connections are all served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startEcho, patternSha256 } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, httpRequest, sleep, eventually, HOST, SLOW } from './lib/harness.mjs';
import { RawConn, rawJson } from './lib/rawhttp.mjs';

let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'clients' });
  sy = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port],
      timeouts: { client_header_ms: 1000, client_idle_ms: 1500, upstream_response_ms: 30000 },
      limits: { max_body_bytes: 64 * 1024 * 1024 },
    }),
    routes: [route('/', echo.port)],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

test('a client that never finishes its headers is cut off (client_header_ms)', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /partial HTTP/1.1\r\nHost: ${HOST}\r\nX-Slow: `);
    // 8 s: far past the policy's 1 s, still short of the 10 s default
    assert.ok(await c.waitClosed(Math.min(5000 * SLOW, 8000)), 'a half-sent header block kept the connection open 8 s with client_header_ms 1000');
    if (c.buf.length) assert.match(c.buf.toString('latin1'), /^HTTP\/1\.1 408 /);
  } finally {
    c.close();
  }
});

test('an idle keep-alive connection is closed (client_idle_ms)', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /idle HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    assert.equal((await c.readFinal()).status, 200);
    assert.ok(await c.waitClosed(15000 * SLOW), 'an idle connection stayed open past client_idle_ms');
  } finally {
    c.close();
  }
});

test('a slow answer is not cut by the client timeouts', async () => {
  const r = await get(sy, '/slow?ms=2500');
  assert.equal(r.status, 200);
});

test('a client vanishing during a slow answer costs nothing', async () => {
  const c = await RawConn.open(sy.port);
  await c.send(`GET /slow?ms=3000&vanish=1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  await eventually(() => echo.stats.urls.includes('/slow?ms=3000&vanish=1'), { what: 'the request reached the backend' });
  c.close();
  await sleep(200);
  assert.equal((await get(sy, '/after-vanish')).status, 200);
});

test('a client vanishing mid-upload costs nothing', async () => {
  const c = await RawConn.open(sy.port);
  await c.send(`POST /upload-vanish HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${32 * 1024 * 1024}\r\n\r\n`);
  await c.send(crypto.randomBytes(1024 * 1024));
  await sleep(100);
  c.close();
  await sleep(300);
  assert.ok(!echo.stats.completed.some((x) => x.url === '/upload-vanish'), 'an aborted upload reached the backend as complete');
  assert.equal((await get(sy, '/after-upload-vanish')).status, 200);
});

test('a client vanishing mid-download costs nothing', async () => {
  for (let i = 0; i < 3; i++) {
    const c = await RawConn.open(sy.port);
    await c.send(`GET /download?bytes=${64 * 1024 * 1024}&i=${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    await eventually(() => c.buf.length > 100000, { what: 'download started' });
    c.close();
  }
  await sleep(300);
  const r = await httpRequest({ port: sy.port, path: '/download?bytes=1000000' });
  assert.equal(r.status, 200);
  assert.equal(crypto.createHash('sha256').update(r.body).digest('hex'), patternSha256(1000000));
});

test('an HTTP/1.0 client never gets a chunked body, and the body ends', async () => {
  for (const n of [2000, 200000, 1000000, 200000, 1000000]) {
    const c = await RawConn.open(sy.port);
    try {
      await c.send(`GET /download?bytes=${n}&chunked=1 HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`);
      const res = await c.readFinal({ timeout: 5000 * SLOW });
      assert.equal(res.status, 200);
      assert.notEqual(res.framing, 'chunked', 'chunked framing sent to an HTTP/1.0 client');
      assert.equal(res.body.length, n);
      assert.equal(crypto.createHash('sha256').update(res.body).digest('hex'), patternSha256(n));
    } finally {
      c.close();
    }
  }
});

test('an HTTP/1.0 client gets its connection closed after an answer switchyard makes itself', async () => {
  for (const p of ['/x/../y', '/slow?ms=1']) {
    const c = await RawConn.open(sy.port);
    try {
      await c.send(`GET ${p} HTTP/1.0\r\nHost: ${p.includes('..') ? HOST : 'unknown.example.org'}\r\n\r\n`);
      const res = await c.readFinal();
      assert.ok(res.status === 400 || res.status === 421, String(res.status));
      // well before client_idle_ms (1.5 s) would close it anyway
      assert.ok(await c.waitClosed(1200), `HTTP/1.0 connection left open after a ${res.status}`);
    } finally {
      c.close();
    }
  }
});

test('HTTP/1.0 with Connection: keep-alive can carry a second request', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /ka10 HTTP/1.0\r\nHost: ${HOST}\r\nConnection: keep-alive\r\n\r\n`);
    const r1 = await c.readFinal();
    assert.equal(r1.status, 200);
    if (r1.framing === 'close') return; // legal: the router chose to close
    await c.send(`GET /ka10-2 HTTP/1.0\r\nHost: ${HOST}\r\nConnection: keep-alive\r\n\r\n`);
    const r2 = await c.readFinal();
    if (r2) assert.equal(rawJson(r2).url, '/ka10-2');
  } finally {
    c.close();
  }
});

test('two hundred simultaneous connections are all served', async () => {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  try {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        httpRequest({ port: sy.port, path: `/slow?ms=200&c=${i}`, agent }).then(
          (r) => (r.status === 200 && r.json().url === `/slow?ms=200&c=${i}` ? 'ok' : `bad ${r.status}`),
          (e) => e.message,
        ),
      ),
    );
    const bad = results.filter((x) => x !== 'ok');
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of 200 failed`);
  } finally {
    agent.destroy();
  }
});
