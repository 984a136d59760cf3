// An HTTPS upstream whose response head is larger than switchyard takes is
// answered with a prompt 502, as over plain HTTP, instead of the request
// hanging until upstream_response_ms turns it into a 504: over TLS the
// receive buffer stops reading while it still has room left, so "full"
// must mean "can't read more", not "every byte used" (SPEC §5.9).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import tls from 'node:tls';
import { startSwitchyard, makePolicy, tempDir, HOST, SLOW } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';
import { makeCa } from './lib/tls-ca.mjs';

const NAME = 'big-head.internal.example.com';
let dir, backend, sy;

before(async () => {
  dir = tempDir('sy-review-tls-');
  const ca = makeCa(dir, { label: 'ca' });
  const cert = ca.issue({ dns: [NAME] });
  // 96 headers of 1 KiB: past the 64 KiB head limit, within what plain
  // HTTP's buffer would hold.
  const big = Array.from({ length: 96 }, (_, i) => `X-Big-${i}: ${'a'.repeat(1000)}\r\n`).join('');
  backend = tls.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, (sock) => {
    let head = '';
    sock.on('error', () => {});
    sock.on('data', (d) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) sock.write(`HTTP/1.1 200 OK\r\n${big}Content-Length: 2\r\n\r\nok`);
    });
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const policy = makePolicy({
    destinations: [{ host: NAME, connect_to: `127.0.0.1:${backend.address().port}`, ca_file: ca.cert }],
    timeouts: { upstream_response_ms: 20000 },
  });
  sy = await startSwitchyard({ policy, routes: [{ path: '/big', target: `https://${NAME}` }] });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a response head too large over TLS is a prompt 502', async () => {
  const started = Date.now();
  const { res: r } = await rawExchange(sy.port, `GET /big HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, { timeout: 30000 * SLOW });
  const elapsed = Date.now() - started;
  assert.ok(r, 'no answer');
  assert.equal(r.status, 502, `got ${r.status} with ${r.headers.length} headers`);
  assert.ok(elapsed < 5000 * SLOW, `the 502 took ${elapsed} ms`);
});
