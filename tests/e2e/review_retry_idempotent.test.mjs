// A request that went out on a pooled connection which then closed without
// an answer may have been processed: switchyard may send it again on a
// fresh connection only when its method is idempotent (RFC 9112 §9.3.1: a
// proxy MUST NOT automatically retry non-idempotent requests).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSwitchyard, makePolicy, route, HOST } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';

let backend, sy;
const seen = [];

// Answers every request with 200 (keep-alive), except /die*: it takes the
// request in (as if processing it) and closes without answering.
function startBackend() {
  return new Promise((resolve) => {
    const server = net.createServer((sock) => {
      let buf = '';
      sock.on('error', () => {});
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.slice(0, end);
          buf = buf.slice(end + 4);
          const [method, target] = head.split(' ');
          seen.push(`${method} ${target}`);
          if (target.startsWith('/die')) {
            sock.destroy();
            return;
          }
          sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        }
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

before(async () => {
  backend = await startBackend();
  const port = backend.address().port;
  sy = await startSwitchyard({ policy: makePolicy({ ports: [port] }), routes: [route('/', port)], workers: 1 });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
});

// Warms the pool with one keep-alive upstream connection, then sends req on
// it; returns the status the client got.
async function onPooledConnection(method, target) {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /warm HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    assert.equal((await c.readFinal()).status, 200);
    await c.send(`${method} ${target} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    const res = await c.readFinal();
    assert.ok(res, `${method} ${target}: no answer`);
    return res.status;
  } finally {
    c.close();
  }
}

test('a POST lost on a pooled connection is not sent again', async () => {
  const status = await onPooledConnection('POST', '/die-post');
  assert.equal(status, 502);
  assert.deepEqual(
    seen.filter((s) => s === 'POST /die-post'),
    ['POST /die-post'],
    `the backend got: ${seen.join(', ')}`,
  );
});

test('a GET lost on a pooled connection is retried once on a fresh one', async () => {
  const status = await onPooledConnection('GET', '/die-get');
  assert.equal(status, 502);
  assert.equal(seen.filter((s) => s === 'GET /die-get').length, 2, `the backend got: ${seen.join(', ')}`);
});
