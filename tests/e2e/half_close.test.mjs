// Issue 11 item 5: a half-close is not an abort (RFC 9112 §9.6, HAProxy's
// default). A client that sends complete requests and then shuts down its
// sending side (FIN) gets every answer: a pipelined batch all of them, a
// POST whose body was sent in full its answer, logged with the real status
// (never 499). A client whose FIN cuts a body or a head short is
// abandoned, and a reset is an abort.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, eventually, jsonLines, get, HOST, SLOW } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';

let echo, fresh, sy;

before(async () => {
  echo = await startEcho({ name: 'half-close' });
  // One backend per POST test, so each opens a new upstream connection:
  // the client's FIN is then read while switchyard is still connecting,
  // before any body byte was forwarded (the case that used to be a 499).
  fresh = await Promise.all([1, 2].map((i) => startEcho({ name: `fresh-${i}` })));
  sy = await startSwitchyard({
    policy: makePolicy({ ports: [echo.port, ...fresh.map((e) => e.port)] }),
    routes: [route('/echo', echo.port), route('/post1', fresh[0].port), route('/post2', fresh[1].port)],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
  for (const e of fresh ?? []) await e.close();
});

// Sends bytes, half-closes, reads `count` responses, then expects the close.
async function sendAndEnd(bytes, count) {
  const c = await RawConn.open(sy.port);
  try {
    // Data and FIN in one go, so switchyard reads the FIN right after the
    // request, typically before the upstream is even connected.
    c.sock.end(Buffer.from(bytes, 'latin1'));
    const out = [];
    for (let i = 0; i < count; i++) {
      const r = await c.readFinal({ timeout: 10000 * SLOW });
      assert.ok(r, `answer ${i + 1} of ${count} missing`);
      out.push(r);
    }
    assert.ok(await c.waitClosed(10000 * SLOW), 'switchyard kept the connection open after answering');
    return out;
  } finally {
    c.close();
  }
}

function logLine(id) {
  const text = fs.existsSync(sy.accessLog) ? fs.readFileSync(sy.accessLog, 'utf8') : '';
  return jsonLines(text).find((l) => l.request_id === id);
}

test('two pipelined GETs then FIN: both are answered, in order', async () => {
  const req = (id) => `GET /echo/${id} HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: ${id}\r\n\r\n`;
  const [a, b] = await sendAndEnd(req('hc-pipe-1') + req('hc-pipe-2'), 2);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.equal(JSON.parse(a.text).url, '/echo/hc-pipe-1');
  assert.equal(JSON.parse(b.text).url, '/echo/hc-pipe-2');
  for (const id of ['hc-pipe-1', 'hc-pipe-2']) {
    const line = await eventually(() => logLine(id), { what: `log line ${id}` });
    assert.equal(line.status, 200);
  }
});

test('three pipelined requests, one answered by switchyard itself, then FIN: all answered', async () => {
  const bytes =
    `GET /echo/a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n` +
    `GET /nowhere HTTP/1.1\r\nHost: ${HOST}\r\n\r\n` +
    `GET /echo/c HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
  const [a, b, c] = await sendAndEnd(bytes, 3);
  assert.equal(a.status, 200);
  assert.equal(b.status, 404);
  assert.equal(c.status, 200);
  assert.equal(JSON.parse(c.text).url, '/echo/c');
});

test('a POST with its whole body, then FIN: answered and logged with its status, not 499', async () => {
  const body = 'x'.repeat(5000);
  const [r] = await sendAndEnd(`POST /post1/x HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: hc-post\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 1);
  assert.equal(r.status, 200);
  const e = JSON.parse(r.text);
  assert.equal(e.body_bytes, body.length);
  const line = await eventually(() => logLine('hc-post'), { what: 'log line hc-post' });
  assert.equal(line.status, 200);
});

test('a chunked POST with its last chunk, then FIN: answered', async () => {
  const [r] = await sendAndEnd(`POST /post2/x HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`, 1);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.text).body_bytes, 11);
});

test('a POST whose body the FIN cuts short is abandoned (499, never forwarded whole)', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`POST /echo/short HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: hc-short\r\nContent-Length: 100\r\n\r\nonly ten b`);
    c.endWrite();
    assert.ok(await c.waitClosed(10000 * SLOW), 'switchyard waited for body bytes that can never come');
  } finally {
    c.close();
  }
  const line = await eventually(() => logLine('hc-short'), { what: 'log line hc-short' });
  assert.equal(line.status, 499);
});

test('a pipelined request cut short by the FIN is not answered; the complete one is', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /echo/whole HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /echo/part HTTP/1.1\r\nHost: ${HOST}\r\n`);
    c.endWrite();
    const r = await c.readFinal({ timeout: 10000 * SLOW });
    assert.equal(r.status, 200);
    assert.ok(await c.waitClosed(10000 * SLOW), 'switchyard waited for the rest of a head after the FIN');
    assert.equal(c.buf.length, 0, `more was sent: ${c.buf.toString('latin1')}`);
  } finally {
    c.close();
  }
});

test('the router still serves after all of the above', async () => {
  assert.equal((await get(sy, '/echo/fine')).status, 200);
});

test('a reset while the request is with the upstream is an abort: logged 499 at once', async () => {
  const before = echo.stats.requests;
  const c = await RawConn.open(sy.port);
  await c.send(`GET /echo/slow?ms=3000 HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: hc-reset\r\n\r\n`);
  await eventually(() => echo.stats.requests > before, { what: 'the request reaching the backend' });
  c.sock.resetAndDestroy();
  const line = await eventually(() => logLine('hc-reset'), { what: 'log line hc-reset' });
  assert.equal(line.status, 499);
  assert.match(line.error, /reset/);
});
