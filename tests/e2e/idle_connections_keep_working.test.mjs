// Issue 11 item 1: an idle keep-alive connection gives its receive buffer
// and request state back to its worker, and its next bytes are read into a
// scratch buffer the worker shares between connections; pooled upstream
// connections hold no buffer either. This pins what a user sees: with
// hundreds of connections idle on one worker, every one of them still
// serves its next request, a head split across writes and interleaved with
// the other connections' heads (what a shared scratch buffer would mix up)
// included, as do pipelined requests, bodies and large responses, over
// plain TCP and TLS. Correctness only: memory is measured by `make bench`
// (the idle scenario), never asserted here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, freePort, tempDir, HOST } from './lib/harness.mjs';
import { RawConn, rawJson } from './lib/rawhttp.mjs';
import { makeCa } from './lib/tls-ca.mjs';
import { tlsRawConn } from './lib/tls-client.mjs';

const PLAIN = 200;
const TLS = 40;

let dir, ca, echo, sy, tlsPort;

before(async () => {
  dir = tempDir('sy-idle-');
  ca = makeCa(dir, { label: 'idle' });
  const cert = ca.issue({ cn: 'switchyard idle', dns: [HOST], out: 'srv' });
  echo = await startEcho({ name: 'idle' });
  tlsPort = await freePort();
  sy = await startSwitchyard({
    policy: makePolicy({ ports: [echo.port] }),
    routes: [route('/', echo.port)],
    workers: 1, // every connection on one worker: one scratch, one pool
    extraArgs: ['--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', cert.cert, '--tls-key', cert.key],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function alive() {
  assert.equal(sy.exitInfo(), null, `switchyard exited ${JSON.stringify(sy.exitInfo())}; stderr:\n${sy.stderr().slice(-2000)}`);
}

async function expectUrl(conn, url, what) {
  const res = await conn.readFinal();
  assert.ok(res, `${what}: connection closed before the answer for ${url}`);
  assert.equal(res.status, 200, `${what}: ${url}`);
  assert.equal(rawJson(res).url, url, `${what}: answer on the wrong connection or mixed bytes`);
  assert.ok(!conn.closed, `${what}: closed after ${url}`);
}

// Opens n connections, one request each, so all of them are idle after.
async function openIdle(n, open, tag) {
  const conns = [];
  for (let i = 0; i < n; i++) conns.push(await open());
  await Promise.all(conns.map(async (c, i) => {
    await c.send(`GET /${tag}/first/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    await expectUrl(c, `/${tag}/first/${i}`, 'first request');
  }));
  return conns;
}

async function exercise(conns, tag) {
  // Every connection sends the first half of a head (no line end: it waits
  // in the connection's own buffer), then the halves are completed in
  // reverse order.
  for (let i = 0; i < conns.length; i++) {
    await conns[i].send(`GET /${tag}/split/${i}?conn=${i}&pad=${'x'.repeat(i % 7)} HT`);
  }
  for (let i = conns.length - 1; i >= 0; i--) {
    await conns[i].send(`TP/1.1\r\nHost: ${HOST}\r\nX-Conn: ${i}\r\n\r\n`);
  }
  await Promise.all(conns.map((c, i) => expectUrl(c, `/${tag}/split/${i}?conn=${i}&pad=${'x'.repeat(i % 7)}`, 'split head')));

  // From idle again: a body, a pipelined pair, a large response, by turns.
  await Promise.all(conns.map(async (c, i) => {
    switch (i % 3) {
      case 0: {
        const body = `body-${i}-${'b'.repeat(i)}`;
        await c.send(`POST /${tag}/post/${i} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        const res = await c.readFinal();
        assert.equal(res?.status, 200, `POST on connection ${i}`);
        const j = rawJson(res);
        assert.equal(j.url, `/${tag}/post/${i}`);
        assert.equal(j.body_bytes, body.length);
        break;
      }
      case 1:
        await c.send(`GET /${tag}/pipe/${i}/a HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /${tag}/pipe/${i}/b HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        await expectUrl(c, `/${tag}/pipe/${i}/a`, 'pipelined');
        await expectUrl(c, `/${tag}/pipe/${i}/b`, 'pipelined');
        break;
      default: {
        const n = 200000 + i;
        await c.send(`GET /${tag}/download?bytes=${n} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        const res = await c.readFinal();
        assert.equal(res?.status, 200, `download on connection ${i}`);
        assert.equal(res.body.length, n, `download size on connection ${i}`);
      }
    }
  }));

  // And once more each, after everything went idle.
  await Promise.all(conns.map(async (c, i) => {
    await c.send(`GET /${tag}/last/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    await expectUrl(c, `/${tag}/last/${i}`, 'last request');
  }));
}

test(`${PLAIN} idle plain connections on one worker all serve their next requests`, async () => {
  const conns = await openIdle(PLAIN, () => RawConn.open(sy.port), 'plain');
  try {
    await exercise(conns, 'plain');
    alive();
  } finally {
    for (const c of conns) c.close();
  }
});

test(`${TLS} idle TLS connections on one worker all serve their next requests`, async () => {
  const conns = await openIdle(TLS, () => tlsRawConn({ port: tlsPort, ca: ca.cert }), 'tls');
  try {
    await exercise(conns, 'tls');
    alive();
  } finally {
    for (const c of conns) c.close();
  }
});
