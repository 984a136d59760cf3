// Issue 9 item 8: the 64 KiB limit on an upstream response head is exact.
// A head of 65,536 bytes (status line through the final CRLF CRLF) passes;
// one byte more is a 502, as is the ~70 KB head that used to slip through
// because the check looked at the receive buffer's size, not the limit.
// Interim (1xx) heads before the final one do not eat into its room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { startSwitchyard, makePolicy, dest, tempDir, HOST } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';
import { makeCa } from './lib/tls-ca.mjs';

const LIMIT = 65536;
const NAME = 'heads.internal.example.com';
let dir, backend, tlsBackend, sy;

// A response head of exactly `size` bytes, Content-Length: 2 and body "ok".
function headOf(size) {
  const start = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n';
  let head = start;
  let i = 0;
  // 1 KiB filler lines, then one line padded to land exactly on size.
  while (size - head.length - 2 > 1100) head += `X-Fill-${i++}: ${'a'.repeat(1000)}\r\n`;
  const name = `X-Pad-${i}: `;
  const left = size - head.length - 2 - name.length - 2;
  assert.ok(left >= 1);
  head += `${name}${'b'.repeat(left)}\r\n\r\n`;
  assert.equal(head.length, size);
  return head;
}

function answer(sock) {
  let req = '';
  sock.on('error', () => {});
  sock.on('data', (d) => {
    req += d.toString('latin1');
    if (!req.includes('\r\n\r\n')) return;
    const m = /^GET \/(?:head|tls)\/(\d+)(\/interim)? /.exec(req);
    req = '';
    if (!m) return sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    const interim = m[2] ? 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' : '';
    sock.write(`${interim}${headOf(Number(m[1]))}ok`);
  });
}

before(async () => {
  dir = tempDir('sy-head-limit-');
  const ca = makeCa(dir, { label: 'ca' });
  const cert = ca.issue({ dns: [NAME] });
  tlsBackend = tls.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, answer);
  await new Promise((r) => tlsBackend.listen(0, '127.0.0.1', r));
  backend = net.createServer(answer);
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const port = backend.address().port;
  const policy = makePolicy({
    destinations: [dest(port), { host: NAME, connect_to: `127.0.0.1:${tlsBackend.address().port}`, ca_file: ca.cert }],
  });
  sy = await startSwitchyard({
    policy,
    routes: [
      { path: '/head', target: `http://127.0.0.1:${port}` },
      { path: '/tls', target: `https://${NAME}` },
    ],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
  tlsBackend?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function statusFor(size, interim = false, prefix = 'head') {
  const { res } = await rawExchange(sy.port, `GET /${prefix}/${size}${interim ? '/interim' : ''} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
  assert.ok(res, `no answer for a ${size}-byte head`);
  if (res.status === 200) assert.equal(res.text, 'ok');
  return res.status;
}

test('a head of 64 KiB - 1 and of exactly 64 KiB passes', async () => {
  assert.equal(await statusFor(LIMIT - 1), 200);
  assert.equal(await statusFor(LIMIT), 200);
});

test('a head of 64 KiB + 1, and of ~70 KB, is a 502', async () => {
  assert.equal(await statusFor(LIMIT + 1), 502);
  assert.equal(await statusFor(70 * 1024), 502);
});

test('interim responses before it do not change the limit of the final head', async () => {
  assert.equal(await statusFor(LIMIT, true), 200);
  assert.equal(await statusFor(LIMIT + 1, true), 502);
});

test('over TLS the limit is the same: 64 KiB passes, 64 KiB + 1 is a 502', async () => {
  assert.equal(await statusFor(LIMIT - 1, false, 'tls'), 200);
  assert.equal(await statusFor(LIMIT, false, 'tls'), 200);
  assert.equal(await statusFor(LIMIT + 1, false, 'tls'), 502);
});
