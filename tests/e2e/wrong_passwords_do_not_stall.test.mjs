// Issue 9 item 3: wrong Basic passwords must not stall the router. Password
// hashes run off the event loop with a bounded queue; repeated results come
// from a cache; failures are throttled per client address and per user
// (429 with Retry-After, no hash); unknown users cost no hash; hashes above
// the cost ceilings are refused at load. Outcomes and metrics are asserted,
// never durations. Each test starts its own switchyard (throttle counters
// are per process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, adminGet, parseMetrics, eventually, runCli, tempDir, sanitizerReport, sleep, HOST, SLOW } from './lib/harness.mjs';

// bcrypt cost 12 (the ceiling): ~250 ms of CPU per check, the cost that
// stalled every route when it ran on the loop.
const SLOW_HASH = '$2b$12$hRNuuFUg3M/iRE6NFV8pbeXSbGwl70XfC2KkKgObL0oIl2M598LYi';
const FAST_HASH = '$2b$04$bfnPha.ifqWEl7y5le6oSekSe44A0YhYQzTX3IQXVL0uVkpXys07a';
const PASSWORD = 'open sesame';
// src/auth/basic.h and auth.h
const PER_USER = 10;
const PER_ADDRESS = 30;
const IN_FLIGHT = 2;

const basic = (u, p) => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`, 'utf8').toString('base64')}` });

async function start(echo, users) {
  return startSwitchyard({
    workers: 1, // the throttle counts per worker: one makes the limits exact
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: { public: { type: 'none' }, partners: { type: 'basic', realm: 'partners', users } },
    }),
    routes: [route('/public', echo.port), route('/private', echo.port, { auth: 'partners' })],
  });
}

async function basicMetrics(sy) {
  const r = await adminGet(sy, '/metrics');
  assert.equal(r.status, 200);
  const out = {};
  for (const m of parseMetrics(r.text)) if (m.name === 'switchyard_basic_auth_total') out[m.labels.outcome] = m.value;
  return out;
}

test('wrong passwords in flight: the public route keeps answering, the throttle answers 429 without hashing', async () => {
  const echo = await startEcho({ name: 'stall' });
  const sy = await start(echo, { alice: SLOW_HASH });
  try {
    // Eight clients guessing alice's password, each guess different (no
    // cache help), each until the throttle answers it (or a cap).
    let guess = 0;
    const outcomes = [];
    // A 503 (hash queue full) comes back at once; the attacker keeps going
    // (with a short pause) until enough guesses were hashed and failed for
    // the throttle, however slow hashing is on this build (ASan).
    const giveUp = Date.now() + 120000 * SLOW;
    const attackers = Array.from({ length: 8 }, async () => {
      while (Date.now() < giveUp) {
        const r = await get(sy, '/private/x', basic('alice', `wrong-${guess++}`));
        outcomes.push({ status: r.status, retryAfter: r.headers['retry-after'] });
        if (r.status === 429) return true;
        if (r.status === 503) await sleep(50);
      }
      return false;
    });
    // Meanwhile the public route answers every request.
    const publicStatuses = [];
    const publicClient = (async () => {
      for (let i = 0; i < 20; i++) publicStatuses.push((await get(sy, '/public/ping')).status);
    })();
    const [throttledAll] = await Promise.all([Promise.all(attackers), publicClient]);
    assert.deepEqual(throttledAll, Array(8).fill(true), 'an attacker was never answered 429');

    assert.deepEqual(publicStatuses, Array(20).fill(200));
    for (const o of outcomes) assert.ok([401, 429, 503].includes(o.status), `unexpected ${o.status}`);
    const throttled = outcomes.filter((o) => o.status === 429);
    assert.ok(throttled.length > 0, 'no 429 after more failures than the per-user limit');
    for (const o of outcomes.filter((x) => x.status === 429 || x.status === 503)) {
      assert.match(o.retryAfter ?? '', /^[1-9][0-9]*$/, `${o.status} without a Retry-After`);
    }
    // Hashes spent: the limit, plus what was already queued when it tripped.
    const m = await basicMetrics(sy);
    assert.ok(m.failed >= PER_USER, `failed=${m.failed}`);
    assert.ok(m.failed <= PER_USER + IN_FLIGHT, `hashed ${m.failed} wrong passwords, limit ${PER_USER}`);
    assert.equal(m.throttled, throttled.length);
    assert.equal(m.busy ?? 0, outcomes.filter((o) => o.status === 503).length);
    assert.ok(echo.stats.requests >= 20);
  } finally {
    await sy.stopClean();
    await echo.close();
  }
});

test('unknown users cost no hash and trip the per-address throttle; repeats come from the cache', async () => {
  const echo = await startEcho({ name: 'cache' });
  const sy = await start(echo, { bob: FAST_HASH, carol: FAST_HASH });
  try {
    // A right password: hashed once, then served from the cache.
    for (let i = 0; i < 5; i++) assert.equal((await get(sy, '/private/ok', basic('bob', PASSWORD))).status, 200);
    // The same wrong password: hashed once, then a cached failure.
    for (let i = 0; i < 3; i++) assert.equal((await get(sy, '/private/no', basic('carol', 'nope'))).status, 401);
    let m = await basicMetrics(sy);
    assert.equal(m.verified, 1);
    assert.equal(m.verified_cached, 4);
    assert.equal(m.failed, 1);
    assert.equal(m.failed_cached, 2);

    // Unknown users: 401 without a hash, until the address has used its
    // failures (carol's three count too); then 429.
    const statuses = [];
    for (let i = 0; i < PER_ADDRESS; i++) {
      const r = await get(sy, '/private/who', basic(`nobody-${i}`, 'x'));
      statuses.push(r.status);
      if (r.status === 401) assert.match(r.headers['www-authenticate'], /^Basic realm="partners"/);
    }
    assert.deepEqual(statuses, [...Array(PER_ADDRESS - 3).fill(401), 429, 429, 429]);
    m = await basicMetrics(sy);
    assert.equal(m.unknown_user, PER_ADDRESS - 3);
    assert.equal(m.failed, 1, 'an unknown user cost a hash');
    // bob's verified credential still passes from the throttled address.
    assert.equal((await get(sy, '/private/ok', basic('bob', PASSWORD))).status, 200);
    const r = await get(sy, '/private/who', basic('bob', 'not-cached'));
    assert.equal(r.status, 429);
    assert.match(r.headers['retry-after'], /^[1-9][0-9]*$/);
    assert.equal((await basicMetrics(sy)).failed, 1);
  } finally {
    await sy.stopClean();
    await echo.close();
  }
});

test('a client that leaves while its hash runs is handled safely, and its failure still counts', async () => {
  const echo = await startEcho({ name: 'leave' });
  const sy = await start(echo, { alice: SLOW_HASH });
  try {
    const header = basic('alice', 'wrong').Authorization;
    // As many as one worker hashes at once (more would be answered 503).
    for (let i = 0; i < IN_FLIGHT; i++) {
      await new Promise((resolve, reject) => {
        const s = net.connect(sy.port, '127.0.0.1', () => {
          s.write(`GET /private/x HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Basic ${Buffer.from(`alice:gone-${i}`).toString('base64')}\r\n\r\n`, () => {
            setTimeout(() => {
              s.resetAndDestroy();
              resolve();
            }, 20);
          });
        });
        s.on('error', reject);
      });
    }
    const m = await eventually(async () => {
      const x = await basicMetrics(sy);
      return x.failed === IN_FLIGHT ? x : null;
    }, { what: 'the abandoned hashes counted as failures' });
    assert.equal(m.failed, IN_FLIGHT);
    assert.equal(m.busy ?? 0, 0);
    // The worker is healthy.
    assert.equal((await get(sy, '/public/after')).status, 200);
    assert.equal((await get(sy, '/private/x', { Authorization: header })).status, 401);
  } finally {
    await sy.stopClean();
    await echo.close();
  }
  assert.equal(sanitizerReport(sy.stderr()), null);
});

test('check refuses hashes above the cost ceilings with a clear error', () => {
  const dir = tempDir();
  const cases = [
    ['$2y$31$THTU58oheOFT9e6J6z.cwuEqGCXTwKn1Qz4PZnjfMvg7m9vpqoBg2', /users\.alice: bcrypt cost 31 is above the maximum 12/],
    ['$6$rounds=999999999$saltsalt$abcdefghijklmnop', /users\.alice: sha-crypt rounds=999999999 is above the maximum 500000/],
    ['$y$jFT$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6', /users\.alice: yescrypt parameters jFT need 1024 MiB per check/],
  ];
  fs.writeFileSync(path.join(dir, 'routes.json'), '[]');
  for (const [hash, re] of cases) {
    const policy = makePolicy({ ports: [9], auth_policies: { public: { type: 'none' }, b: { type: 'basic', users: { alice: hash } } } });
    fs.writeFileSync(path.join(dir, 'policy.json'), JSON.stringify(policy));
    const r = runCli(['check', '--policy', path.join(dir, 'policy.json'), '--routes', path.join(dir, 'routes.json')]);
    assert.notEqual(r.code, 0, `${hash} accepted:\n${r.stdout}`);
    assert.match(r.stderr, re);
    assert.equal(sanitizerReport(r.stderr), null);
  }
  // At the ceiling: accepted.
  const policy = makePolicy({ ports: [9], auth_policies: { public: { type: 'none' }, b: { type: 'basic', users: { alice: SLOW_HASH } } } });
  fs.writeFileSync(path.join(dir, 'policy.json'), JSON.stringify(policy));
  const ok = runCli(['check', '--policy', path.join(dir, 'policy.json'), '--routes', path.join(dir, 'routes.json')]);
  assert.equal(ok.code, 0, ok.stderr);
});
