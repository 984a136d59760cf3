// An upstream that answers before reading the request body (a 200 or a 413
// sent as soon as the head is in) gets its whole answer to the client even
// though the client is still sending that body: switchyard must not close
// the connection abruptly with the body unread, since the kernel then
// resets it and throws away answer bytes not yet delivered (SPEC §5.8,
// §5.9; the same lingering close as for switchyard's own early answers).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSwitchyard, makePolicy, route, HOST, SLOW, sleep } from './lib/harness.mjs';

const ANSWER_BYTES = 3 * 1024 * 1024;
const BODY_BYTES = 8 * 1024 * 1024; // under the default max_body_bytes
let backend, sy;

// Reads the request head, answers at once with ANSWER_BYTES, never reads on.
function startBackend() {
  return new Promise((resolve) => {
    const server = net.createServer((sock) => {
      let head = '';
      sock.on('error', () => {});
      const onData = (d) => {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        sock.off('data', onData);
        sock.pause();
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${ANSWER_BYTES}\r\n\r\n`);
        sock.write(Buffer.alloc(ANSWER_BYTES, 'a'));
      };
      sock.on('data', onData);
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

test('an answer sent before the body was read reaches the client whole', async () => {
  const sock = net.connect({ port: sy.port, host: '127.0.0.1' });
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  let error = null;
  sock.on('error', (e) => (error = e));
  sock.pause(); // not reading yet: the answer piles up in the kernel buffers
  sock.write(`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`);
  // Keep sending body bytes while switchyard writes the answer out.
  const chunk = Buffer.alloc(64 * 1024, 'b');
  let sending = true;
  (async () => {
    // Stops one chunk short of the whole body: it is never complete.
    for (let sent = 0; sending && !sock.destroyed && sent + 2 * chunk.length <= BODY_BYTES; sent += chunk.length) {
      sock.write(chunk);
      await sleep(5);
    }
  })();
  await sleep(1500 * SLOW);
  sending = false;
  const parts = [];
  sock.on('data', (d) => parts.push(d));
  sock.resume();
  await new Promise((resolve) => {
    sock.once('close', resolve);
    setTimeout(resolve, 10000 * SLOW);
  });
  sock.destroy();
  const got = Buffer.concat(parts);
  const headEnd = got.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, `no answer head (error: ${error && error.code})`);
  assert.match(got.subarray(0, headEnd).toString('latin1'), /^HTTP\/1\.1 200/);
  assert.equal(got.length - headEnd - 4, ANSWER_BYTES, `answer body cut short (error: ${error && error.code})`);
});

test('a Connection: close answer reaches the client whole though it sent more', async () => {
  const sock = net.connect({ port: sy.port, host: '127.0.0.1' });
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  let error = null;
  sock.on('error', (e) => (error = e));
  sock.pause();
  // No body: the backend answers ANSWER_BYTES at once.
  sock.write(`GET /big HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
  // Bytes a client sends anyway after "close" (another pipelined request)
  // reach switchyard after it stopped reading.
  await sleep(200 * SLOW);
  sock.write(`GET /more HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  await sleep(1300 * SLOW);
  const parts = [];
  sock.on('data', (d) => parts.push(d));
  sock.resume();
  await new Promise((resolve) => {
    sock.once('close', resolve);
    setTimeout(resolve, 10000 * SLOW);
  });
  sock.destroy();
  const got = Buffer.concat(parts);
  const headEnd = got.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, `no answer head (error: ${error && error.code})`);
  assert.equal(got.length - headEnd - 4, ANSWER_BYTES, `answer body cut short (error: ${error && error.code})`);
});
