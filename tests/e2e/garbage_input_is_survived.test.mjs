// Mutated and random bytes on the client side, and split at every odd
// boundary: switchyard answers or closes, never crashes, never mixes up a
// later request (the ASan pass turns any memory error here into a failure
// through the clean-exit check).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, sleep, HOST, SLOW } from './lib/harness.mjs';
import { RawConn, rawExchange, rawJson } from './lib/rawhttp.mjs';

let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'garbage' });
  sy = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/', echo.port)] });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

// Deterministic pseudo-random bytes, so a failure can be replayed.
function prng(seed) {
  let counter = 0;
  let pool = Buffer.alloc(0);
  return (n) => {
    while (pool.length < n) pool = Buffer.concat([pool, crypto.createHash('sha256').update(`${seed}:${counter++}`).digest()]);
    const out = pool.subarray(0, n);
    pool = pool.subarray(n);
    return Buffer.from(out);
  };
}

const VALID = Buffer.from(`POST /api/items?x=1 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 'latin1');

async function assertAlive(tag) {
  const { res } = await rawExchange(sy.port, `GET /alive/${tag} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.ok(res, `no answer after ${tag}`);
  assert.equal(res.status, 200);
  assert.equal(rawJson(res).url, `/alive/${tag}`);
}

test('mutated requests are answered or closed, and the router lives on', async () => {
  const rnd = prng('mutate');
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(VALID);
    const edits = 1 + (rnd(1)[0] % 4);
    for (let e = 0; e < edits; e++) {
      const at = rnd(2).readUInt16BE() % b.length;
      b[at] = rnd(1)[0];
    }
    const { res } = await rawExchange(sy.port, b, { endWrite: true, timeout: 10000 * SLOW });
    if (res) assert.ok(res.status >= 200 && res.status < 600, `case ${i}: status ${res.status}`);
  }
  await assertAlive('mutated');
});

test('random bytes are answered or closed, and the router lives on', async () => {
  const rnd = prng('random');
  for (let i = 0; i < 100; i++) {
    const len = 1 + (rnd(2).readUInt16BE() % 4000);
    await rawExchange(sy.port, rnd(len), { endWrite: true, timeout: 10000 * SLOW });
  }
  await assertAlive('random');
});

test('a valid request split at every byte boundary still parses', async () => {
  for (let cut = 1; cut < VALID.length; cut += 7) {
    const c = await RawConn.open(sy.port);
    try {
      await c.send(VALID.subarray(0, cut));
      await sleep(2);
      await c.send(VALID.subarray(cut));
      const res = await c.readFinal();
      assert.ok(res, `cut at ${cut}: no answer`);
      assert.equal(res.status, 200, `cut at ${cut}`);
      const j = rawJson(res);
      assert.equal(j.url, '/api/items?x=1');
      assert.equal(j.body_bytes, 5);
    } finally {
      c.close();
    }
  }
});

test('a valid request sent one byte at a time still parses', async () => {
  const c = await RawConn.open(sy.port);
  try {
    for (let i = 0; i < VALID.length; i++) {
      await c.send(VALID.subarray(i, i + 1));
      await sleep(1); // separate reads on the router side
    }
    const res = await c.readFinal();
    assert.equal(res.status, 200);
    assert.equal(rawJson(res).body_bytes, 5);
  } finally {
    c.close();
  }
});

test('garbage after a valid request on the same connection does not disturb its answer', async () => {
  const rnd = prng('tail');
  for (let i = 0; i < 30; i++) {
    const c = await RawConn.open(sy.port);
    try {
      await c.send(Buffer.concat([Buffer.from(`GET /first/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`), rnd(1 + (i * 37) % 500)]));
      const res = await c.readFinal();
      assert.ok(res, `case ${i}: no answer to the valid request`);
      assert.equal(res.status, 200);
      assert.equal(rawJson(res).url, `/first/${i}`);
    } finally {
      c.close();
    }
  }
  await assertAlive('tail');
});
