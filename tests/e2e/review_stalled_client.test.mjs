// A client that sends requests but never reads the answers must not hold a
// connection (and its upstream) forever: once switchyard's write to it
// stalls, client_idle_ms closes it, whether the stalled answer is one
// switchyard made itself or the last bytes of a proxied response.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, adminGet, parseMetrics, eventually, HOST, SLOW, sleep } from './lib/harness.mjs';

let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'stall' });
  sy = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port],
      timeouts: { client_header_ms: 1000, client_idle_ms: 1000, upstream_response_ms: 1500 },
    }),
    routes: [route('/', echo.port)],
    workers: 1,
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

async function clientConnections() {
  const r = await adminGet(sy, '/metrics');
  const m = parseMetrics(r.text).find((x) => x.name === 'switchyard_client_connections');
  return m ? m.value : NaN;
}

// Opens a connection that never reads and pipelines `count` copies of req.
async function nonReader(req, count) {
  const sock = net.connect({ port: sy.port, host: '127.0.0.1' });
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => {});
  sock.pause(); // never read: the kernel buffers fill up, then switchyard's writes stall
  sock.write(Buffer.from(req.repeat(count), 'latin1'));
  return sock;
}

async function expectClosedByServer(sock, what) {
  // Wait until switchyard is surely stuck writing, then for the timeout.
  await eventually(async () => (await clientConnections()) === 1, { what: `${what}: the connection is open` });
  await sleep(500 * SLOW);
  try {
    await eventually(async () => (await clientConnections()) === 0, {
      timeoutMs: 8000 * SLOW,
      what: `${what}: switchyard closes the stalled connection`,
    });
  } finally {
    sock.destroy();
  }
}

test('a client that never reads switchyard-made answers is closed (client_idle_ms)', async () => {
  // Unknown host: 421 answered by switchyard itself, connection kept open.
  const sock = await nonReader('GET /x HTTP/1.1\r\nHost: unknown.example.org\r\n\r\n', 200000);
  await expectClosedByServer(sock, 'answers');
  assert.equal(await clientConnections(), 0);
});

test('a client that never reads proxied answers is closed (client_idle_ms)', async () => {
  // Small answers fit in one write each, so the write that stalls is the
  // one that ends a response.
  const sock = await nonReader(`GET /download?bytes=4000 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 8000);
  await expectClosedByServer(sock, 'proxied');
  assert.equal(await clientConnections(), 0);
});
