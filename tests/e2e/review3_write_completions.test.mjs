// Review 3 of the write path (net/stream.c): a write the socket takes whole
// completes from the loop's check phase, after the reads of the same loop
// turn. These guard the orderings that matter: a pipelined batch read
// while a response's completion waits is answered whole and in order
// (proxied answers and switchyard's own mixed, the pooled upstream
// connection handed from one request to the next), a half-close after the
// batch still gets every answer, clients that reset with completions
// pending leave nothing behind (the sanitizer build reports any use after
// free at stopClean), and a stop with a response write stalled in flight
// ends cleanly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { startSwitchyard, makePolicy, route, freePort, tempDir, HOST } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';
import { makeCa } from './lib/tls-ca.mjs';
import { tlsRawConn } from './lib/tls-client.mjs';

let backend, tlsBackend, sy, ca, tlsPort;
const BIG = 8 << 20;

// Answers every request (pipelined ones too) with its own target as the
// body, keep-alive; /big answers with BIG bytes.
function serve(sock) {
  let buf = '';
  sock.on('error', () => {});
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      buf = buf.slice(end + 4);
      const target = head.split(' ')[1];
      if (target === '/big') {
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
        sock.write(Buffer.alloc(BIG, 0x61));
        continue;
      }
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(target)}\r\n\r\n${target}`);
    }
  });
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  backend = await listen(net.createServer(serve));
  const port = backend.address().port;
  const dir = tempDir('sy-review3-');
  ca = makeCa(dir, { label: 'ca' });
  const cert = ca.issue({ dns: [HOST], out: 'server' });
  const upCert = ca.issue({ dns: ['tls.internal.example'], out: 'upstream' });
  tlsBackend = await listen(tls.createServer({ cert: fs.readFileSync(upCert.cert), key: fs.readFileSync(upCert.key) }, serve));
  const tlsDest = {
    scheme: 'https', host: 'tls.internal.example', port: 443,
    connect_to: `127.0.0.1:${tlsBackend.address().port}`, ca_file: ca.cert,
  };
  tlsPort = await freePort();
  const policy = makePolicy({ ports: [port] });
  policy.destinations.push(tlsDest);
  sy = await startSwitchyard({
    policy,
    routes: [route('/', port), { path: '/tls', target: 'https://tls.internal.example' }],
    workers: 1,
    drainTimeout: 1,
    extraArgs: ['--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', cert.cert, '--tls-key', cert.key],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
  tlsBackend?.close();
});

// n requests in one write: odd ones go to a foreign Host (switchyard's own
// 421), even ones are proxied.
function batch(tag, n) {
  let out = '';
  for (let i = 0; i < n; i++) {
    const host = i % 2 ? 'foreign.example' : HOST;
    out += `GET /${tag}/${i} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  }
  return out;
}

async function expectBatch(c, tag, n) {
  for (let i = 0; i < n; i++) {
    const res = await c.readFinal();
    assert.ok(res, `${tag}/${i}: no answer`);
    if (i % 2) {
      assert.equal(res.status, 421, `${tag}/${i}`);
    } else {
      assert.equal(res.status, 200, `${tag}/${i}`);
      assert.equal(res.body.toString(), `/${tag}/${i}`);
    }
  }
}

test('a pipelined batch read while completions wait is answered whole and in order', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(batch('a', 16));
    await expectBatch(c, 'a', 16);
    await c.send(batch('b', 16));
    await expectBatch(c, 'b', 16);
    assert.equal(c.closed, false);
  } finally {
    c.close();
  }
});

test('a half-close right after a pipelined batch still gets every answer, then the close', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(batch('h', 12));
    c.endWrite();
    await expectBatch(c, 'h', 12);
    assert.equal(await c.waitClosed(), true);
  } finally {
    c.close();
  }
});

test('clients that reset with answers in flight leave the worker serving', async () => {
  for (let round = 0; round < 40; round++) {
    const c = await RawConn.open(sy.port);
    await c.send(batch(`r${round}`, 6));
    // Wait for part of the answers, so writes and their completions are
    // in flight, then reset.
    if (round % 2) await c.readFinal();
    c.sock.resetAndDestroy();
  }
  const c = await RawConn.open(sy.port);
  try {
    await c.send(batch('after', 4));
    await expectBatch(c, 'after', 4);
  } finally {
    c.close();
  }
});

// Over TLS a write the socket takes whole completes from the check phase
// too (tls.c's flush returns "written at once").
test('over TLS: pipelined batches, a half-close and resets with answers in flight', async () => {
  const c = await tlsRawConn({ port: tlsPort, ca: ca.cert });
  try {
    await c.send(batch('t', 16));
    await expectBatch(c, 't', 16);
    await c.send(batch('u', 16));
    await expectBatch(c, 'u', 16);
  } finally {
    c.close();
  }
  for (let round = 0; round < 20; round++) {
    const r = await tlsRawConn({ port: tlsPort, ca: ca.cert });
    await r.send(batch(`tr${round}`, 6));
    if (round % 2) await r.readFinal();
    r.sock.destroy();
  }
  const h = await tlsRawConn({ port: tlsPort, ca: ca.cert });
  try {
    await h.send(batch('th', 8));
    h.endWrite();
    await expectBatch(h, 'th', 8);
  } finally {
    h.close();
  }
});

// TLS upstream: the request head's ciphertext goes out at once and its
// completion waits for the check phase while the pooled connection serves
// the pipelined batch one request after another.
test('over a TLS upstream: pipelined batches on the pooled connection, resets in flight', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(batch('tls/a', 16));
    await expectBatch(c, 'tls/a', 16);
    await c.send(batch('tls/b', 16));
    await expectBatch(c, 'tls/b', 16);
  } finally {
    c.close();
  }
  for (let round = 0; round < 20; round++) {
    const r = await RawConn.open(sy.port);
    await r.send(batch(`tls/r${round}`, 6));
    if (round % 2) await r.readFinal();
    r.sock.resetAndDestroy();
  }
  const h = await RawConn.open(sy.port);
  try {
    await h.send(batch('tls/h', 8));
    h.endWrite();
    await expectBatch(h, 'tls/h', 8);
  } finally {
    h.close();
  }
});

test('over TLS: a pipelined flood larger than the receive buffer is answered whole', async () => {
  const c = await tlsRawConn({ port: tlsPort, ca: ca.cert });
  try {
    const pad = 'x'.repeat(3000);
    let out = '';
    const n = 60;
    for (let i = 0; i < n; i++) out += `GET /flood/${i} HTTP/1.1\r\nHost: ${HOST}\r\nX-Pad: ${pad}\r\n\r\n`;
    await c.send(out);
    for (let i = 0; i < n; i++) {
      const res = await c.readFinal();
      assert.ok(res, `flood/${i}: no answer`);
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), `/flood/${i}`);
    }
  } finally {
    c.close();
  }
});

// The upstream FINs right behind each answer: the next pipelined request,
// taken up in the completion of the previous answer's write, either finds
// the connection already closed or meets the close on it and is sent again
// on a fresh one (GET): every request is answered, in order.
test('pipelined GETs over upstream connections that close behind every answer', async () => {
  for (let round = 0; round < 10; round++) {
    const c = await RawConn.open(sy.port);
    try {
      let out = '';
      for (let i = 0; i < 4; i++) out += `GET /fin/${round}/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
      await c.send(out);
      for (let i = 0; i < 4; i++) {
        const res = await c.readFinal();
        assert.ok(res, `fin/${round}/${i}: no answer`);
        assert.equal(res.status, 200, `fin/${round}/${i}`);
        assert.equal(res.body.toString(), `/fin/${round}/${i}`);
      }
    } finally {
      c.close();
    }
  }
});

test('over TLS: a near-limit head with pipelined requests behind it is answered whole', async () => {
  for (let round = 0; round < 12; round++) {
    const c = await tlsRawConn({ port: tlsPort, ca: ca.cert });
    try {
      const big = 'y'.repeat(7000);
      let head = `GET /near/${round}/0 HTTP/1.1\r\nHost: ${HOST}\r\n`;
      for (let k = 0; k < 4; k++) head += `X-Big-${k}: ${big}\r\n`;
      head += '\r\n';
      let out = head;
      const n = 10 + round;
      for (let i = 1; i < n; i++) out += `GET /near/${round}/${i} HTTP/1.1\r\nHost: ${HOST}\r\nX-Pad: ${'z'.repeat(3000 + 97 * round)}\r\n\r\n`;
      await c.send(out);
      for (let i = 0; i < n; i++) {
        const res = await c.readFinal();
        assert.ok(res, `near/${round}/${i}: no answer`);
        assert.equal(res.status, 200, `near/${round}/${i}`);
        assert.equal(res.body.toString(), `/near/${round}/${i}`);
      }
    } finally {
      c.close();
    }
  }
});

test('a stop with a response write stalled in flight ends cleanly', async () => {
  const c = await RawConn.open(sy.port);
  c.sock.pause(); // reads nothing: the write to it stalls
  await c.send(`GET /big HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  await new Promise((r) => setTimeout(r, 300));
  const s = sy;
  sy = null;
  await s.stopClean(); // exit 0, no sanitizer report
  c.close();
});
