// Issue 9 item 5: a response that breaks after its head still ends its
// request properly. A backend that resets or closes mid-body, or sends a
// malformed chunk size, leaves exactly one access-log line (the status
// that was sent and why the response broke) and its metrics (the request
// by route and status class, an upstream error). A malformed FIRST chunk
// that comes with the head is caught before the head is written, so the
// client gets a clean 502 rather than an empty reply.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { startSwitchyard, makePolicy, adminGet, parseMetrics, eventually, jsonLines, HOST, SLOW } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';

let backend, sy;

// A raw backend: what it answers depends on the request path.
const ANSWERS = {
  // Content-Length 100, ten bytes, then a TCP reset.
  '/reset': (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
    setTimeout(() => sock.resetAndDestroy(), 100);
  },
  // Content-Length 100, ten bytes, then a clean FIN.
  '/short': (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
    setTimeout(() => sock.end(), 100);
  },
  // The head and a malformed first chunk-size line in one write.
  '/bad-first': (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n');
  },
  // A good first chunk, then (later) a malformed chunk-size line.
  '/bad-later': (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => sock.write('5x\r\nworld\r\n0\r\n\r\n'), 150);
  },
  // Chunked, one good chunk, then a reset before the last chunk.
  '/chunked-reset': (sock) => {
    sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => sock.resetAndDestroy(), 150);
  },
};

before(async () => {
  backend = net.createServer((sock) => {
    let head = '';
    sock.on('error', () => {});
    sock.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1];
      head = '';
      (ANSWERS[path] || ((s) => s.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')))(sock);
    });
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const port = backend.address().port;
  sy = await startSwitchyard({
    policy: makePolicy({ ports: [port] }),
    routes: Object.keys(ANSWERS).map((p) => ({ path: p, target: `http://127.0.0.1:${port}` })),
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
});

async function metric(name, labels) {
  const all = parseMetrics((await adminGet(sy, '/metrics')).text);
  return all
    .filter((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v))
    .reduce((a, m) => a + m.value, 0);
}

// Sends GET path with a request id; returns everything the client got
// until switchyard closed the connection.
async function exchange(path, id) {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: ${id}\r\n\r\n`);
    assert.ok(await c.waitClosed(10000 * SLOW), `${path}: switchyard kept the connection open`);
    return c.buf.toString('latin1');
  } finally {
    c.close();
  }
}

function logLines(id) {
  const text = fs.existsSync(sy.accessLog) ? fs.readFileSync(sy.accessLog, 'utf8') : '';
  return jsonLines(text).filter((l) => l.request_id === id);
}

async function checkEnded(path, id, { status, error, before }) {
  const [line] = await eventually(() => (logLines(id).length ? logLines(id) : null), { what: `the access log line for ${path}` });
  assert.equal(line.status, status, JSON.stringify(line));
  assert.match(line.error ?? '', error, JSON.stringify(line));
  // Exactly one line, even after a moment for a late duplicate.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(logLines(id).length, 1, `${path}: ${JSON.stringify(logLines(id))}`);
  const cls = `${String(status)[0]}xx`;
  assert.equal(await metric('switchyard_requests_total', { route: path, code_class: cls }), before.requests + 1, `${path}: request metric`);
  assert.equal(await metric('switchyard_upstream_errors_total', { kind: 'malformed_response' }), before.errors + 1, `${path}: upstream error metric`);
}

async function counters(path, status) {
  return {
    requests: await metric('switchyard_requests_total', { route: path, code_class: `${String(status)[0]}xx` }),
    errors: await metric('switchyard_upstream_errors_total', { kind: 'malformed_response' }),
  };
}

test('a reset mid-body: the client sees the body cut short; one log line with the status sent; metrics', async () => {
  const before = await counters('/reset', 200);
  const got = await exchange('/reset', 'broken-reset');
  assert.match(got, /^HTTP\/1\.1 200 /);
  assert.ok(!/\r\n\r\n0123456789.{90}/s.test(got), 'the body looked complete');
  await checkEnded('/reset', 'broken-reset', { status: 200, error: /truncated/, before });
});

test('a close mid-body (Content-Length not reached): one log line, metrics', async () => {
  const before = await counters('/short', 200);
  const got = await exchange('/short', 'broken-short');
  assert.match(got, /^HTTP\/1\.1 200 /);
  await checkEnded('/short', 'broken-short', { status: 200, error: /truncated/, before });
});

test('a malformed first chunk that came with the head is a 502', async () => {
  const before = await counters('/bad-first', 502);
  const c = await RawConn.open(sy.port);
  let res;
  try {
    await c.send(`GET /bad-first HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: broken-first\r\n\r\n`);
    res = await c.readFinal();
  } finally {
    c.close();
  }
  assert.ok(res, 'no answer (empty reply)');
  assert.equal(res.status, 502);
  assert.match(JSON.parse(res.text).message, /malformed upstream chunked body/);
  await checkEnded('/bad-first', 'broken-first', { status: 502, error: /malformed/, before });
  const [line] = logLines('broken-first');
  assert.equal(line.upstream_status, 200);
});

test('a malformed later chunk: the body is cut short (no last chunk); one log line, metrics', async () => {
  const before = await counters('/bad-later', 200);
  const got = await exchange('/bad-later', 'broken-later');
  assert.match(got, /^HTTP\/1\.1 200 /);
  assert.match(got, /\r\n5\r\nhello\r\n/);
  assert.ok(!got.includes('world'), got);
  assert.ok(!/\r\n0\r\n\r\n$/.test(got), 'the client was told the body was complete');
  await checkEnded('/bad-later', 'broken-later', { status: 200, error: /malformed upstream chunked body/, before });
});

test('a reset inside a chunked body: no last chunk, one log line, metrics', async () => {
  const before = await counters('/chunked-reset', 200);
  const got = await exchange('/chunked-reset', 'broken-chunked-reset');
  assert.match(got, /^HTTP\/1\.1 200 /);
  assert.ok(!/\r\n0\r\n\r\n$/.test(got), 'the client was told the body was complete');
  await checkEnded('/chunked-reset', 'broken-chunked-reset', { status: 200, error: /truncated/, before });
});
