// A response body delimited by the connection's close is complete over TLS
// only when the upstream ended the session with close_notify: a TCP close
// without it may be an attacker (or a crash) cutting the body short, and
// switchyard must not tell the client, with a final zero-length chunk, that
// the body is whole (RFC 9112 §9.8, RFC 8446 §6.1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import tls from 'node:tls';
import { startSwitchyard, makePolicy, tempDir, HOST, SLOW } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';
import { makeCa } from './lib/tls-ca.mjs';

const NAME = 'close-delimited.internal.example.com';
let dir, backend, sy;

before(async () => {
  dir = tempDir('sy-review-tls-');
  const ca = makeCa(dir, { label: 'ca' });
  const cert = ca.issue({ dns: [NAME] });
  // HTTP/1.0-style answers with no Content-Length: the body ends at close.
  // /clean ends the TLS session properly; /cut drops the TCP connection.
  backend = tls.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, (sock) => {
    let head = '';
    sock.on('error', () => {});
    sock.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const target = head.split(' ')[1];
      sock.write(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody of ${target}`, () => {
        if (target === '/cut') setTimeout(() => sock.destroy(), 50); // no close_notify
        else sock.end(); // close_notify, then FIN
      });
    });
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const policy = makePolicy({
    destinations: [{ host: NAME, connect_to: `127.0.0.1:${backend.address().port}`, ca_file: ca.cert }],
  });
  sy = await startSwitchyard({ policy, routes: [{ path: '/', target: `https://${NAME}` }] });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function fetchRaw(target) {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    try {
      return await c.readFinal({ timeout: 10000 * SLOW });
    } catch (e) {
      return { error: e.message };
    }
  } finally {
    c.close();
  }
}

test('a close-delimited body ended by close_notify is forwarded whole', async () => {
  const r = await fetchRaw('/clean');
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal(r.body.toString(), 'body of /clean');
});

test('a close-delimited body cut without close_notify is not passed off as complete', async () => {
  const r = await fetchRaw('/cut');
  assert.ok(!r || r.error, `the client got a complete body: ${r && r.body && r.body.toString()}`);
});
