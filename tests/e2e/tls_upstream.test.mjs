// Issue 4, SPEC §2 destination fields and §5.6/§5.9: HTTPS to a private API
// Gateway through a VPC endpoint. A backend presenting
// *.execute-api.us-east-1.amazonaws.com (from a CA made by openssl at test
// time) is reached through connect_to 127.0.0.1 for routes to
// https://*.internal.example.com; the backend records the SNI, Host and
// x-apigw-api-id it saw. Each way verification can fail (name mismatch,
// untrusted chain, expired, handshake failure) must give the client a 502
// JSON message that says nothing about the certificate, log the reason, and
// never send the request. Pooling and session resumption are checked from
// both ends: the backend's remote ports and handshake counts, and
// switchyard_upstream_tls_handshakes_total in /metrics. No option turns
// verification off: fields that try are unknown fields, rejected at load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import {
  startSwitchyard, makePolicy, get, adminGet, parseMetrics, errorMessage, jsonLines, eventually, runCli, tempDir, writeJsonAtomic, sleep, SLOW,
} from './lib/harness.mjs';
import { makeCa } from './lib/tls-ca.mjs';
import { startTlsBackend } from './lib/tls-backend.mjs';

const GW_WILDCARD = '*.execute-api.us-east-1.amazonaws.com';
const API_ID = 'abc123';
const GW_HOST = `${API_ID}.execute-api.us-east-1.amazonaws.com`;
const REASONS = ['name mismatch', 'untrusted chain', 'expired', 'handshake failure'];

let dir, ca, otherCa, certs;
const backends = {};
let plain;
let sy;
let policy, routes;

// One destination per scenario; every one is https on 443 (scheme and port
// omitted except for the first, to exercise the defaults) and reaches a
// loopback backend through connect_to.
function destinations() {
  const to = (b) => `127.0.0.1:${b.port}`;
  const gw = backends.gw;
  return [
    { host: 'orders.internal.example.com', port: 443, connect_to: to(gw), tls_verify_name: GW_WILDCARD, host_header: GW_HOST, api_id: API_ID, ca_file: ca.cert },
    { host: 'exact-name.internal.example.com', connect_to: to(gw), tls_verify_name: GW_HOST, ca_file: ca.cert },
    { host: 'wild-name.internal.example.com', connect_to: to(gw), tls_verify_name: GW_WILDCARD, ca_file: ca.cert },
    { host: 'explicit-sni.internal.example.com', connect_to: to(gw), tls_verify_name: GW_WILDCARD, sni: `xyz789.execute-api.us-east-1.amazonaws.com`, host_header: GW_HOST, ca_file: ca.cert },
    { host: 'direct.internal.example.com', connect_to: to(backends.direct), ca_file: ca.cert },
    // failures
    { host: 'other-region.internal.example.com', connect_to: to(gw), tls_verify_name: '*.execute-api.eu-west-1.amazonaws.com', host_header: GW_HOST, ca_file: ca.cert },
    { host: 'other-name.internal.example.com', connect_to: to(backends.otherName), tls_verify_name: GW_WILDCARD, host_header: GW_HOST, ca_file: ca.cert },
    { host: 'target-name.internal.example.com', connect_to: to(gw), ca_file: ca.cert },
    { host: 'two-labels.internal.example.com', connect_to: to(gw), tls_verify_name: `x.${GW_HOST}`, ca_file: ca.cert },
    { host: 'unknown-ca.internal.example.com', connect_to: to(backends.unknownCa), tls_verify_name: GW_WILDCARD, host_header: GW_HOST, ca_file: ca.cert },
    { host: 'system-store.internal.example.com', connect_to: to(gw), tls_verify_name: GW_WILDCARD, host_header: GW_HOST },
    { host: 'expired.internal.example.com', connect_to: to(backends.expired), tls_verify_name: GW_WILDCARD, host_header: GW_HOST, ca_file: ca.cert },
    { host: 'plain.internal.example.com', connect_to: `127.0.0.1:${plain.port}`, tls_verify_name: GW_WILDCARD, ca_file: ca.cert },
    { host: 'tls11.internal.example.com', connect_to: to(backends.tls11), tls_verify_name: GW_WILDCARD, ca_file: ca.cert },
  ];
}

const ROUTE_HOSTS = {
  '/orders': 'orders', '/exact-name': 'exact-name', '/wild-name': 'wild-name', '/explicit-sni': 'explicit-sni', '/direct': 'direct',
  '/other-region': 'other-region', '/other-name': 'other-name', '/target-name': 'target-name', '/two-labels': 'two-labels',
  '/unknown-ca': 'unknown-ca', '/system-store': 'system-store', '/expired': 'expired', '/plain': 'plain', '/tls11': 'tls11',
};

before(async () => {
  dir = tempDir('sy-tls-up-');
  ca = makeCa(dir, { label: 'ca' });
  otherCa = makeCa(dir, { label: 'other', name: 'some other CA' });
  certs = {
    gw: ca.issue({ dns: [GW_WILDCARD] }),
    direct: ca.issue({ dns: ['direct.internal.example.com'] }),
    otherName: ca.issue({ dns: ['other.internal.example.net'] }),
    unknownCa: otherCa.issue({ dns: [GW_WILDCARD] }),
    expired: ca.issue({ dns: [GW_WILDCARD], startdate: '20200101000000Z', enddate: '20200201000000Z' }),
  };
  backends.gw = await startTlsBackend(certs.gw);
  backends.direct = await startTlsBackend(certs.direct);
  backends.otherName = await startTlsBackend(certs.otherName);
  backends.unknownCa = await startTlsBackend(certs.unknownCa);
  backends.expired = await startTlsBackend(certs.expired);
  // TLS 1.1 only (security level 0 so OpenSSL 3 lets node speak it at all)
  backends.tls11 = await startTlsBackend({
    ...certs.gw,
    tlsOptions: { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' },
  });
  plain = await startEcho({ name: 'plain-http' });
  policy = makePolicy({ destinations: destinations() });
  routes = Object.entries(ROUTE_HOSTS).map(([p, h]) => ({ path: p, target: `https://${h}.internal.example.com/prod` }));
  fs.mkdirSync(path.join(dir, 'sy'));
  sy = await startSwitchyard({ policy, routes, dir: path.join(dir, 'sy') });
});

after(async () => {
  if (sy) await sy.stopClean();
  for (const b of Object.values(backends)) await b.close();
  await plain?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// The request the backend recorded for the response r (switchyard answers
// with the backend's JSON echo), with a readable failure otherwise.
function seen(r, what) {
  assert.equal(r.status, 200, `${what}: expected 200 from the TLS backend, got ${r.status} ${r.text}\nswitchyard stderr tail:\n${sy.stderr().slice(-1500)}`);
  return r.json();
}

test('`switchyard check` accepts every TLS destination field (all routes active)', () => {
  const r = runCli(['check', '--policy', sy.policyFile, '--routes', sy.routesFile, '--json']);
  assert.equal(r.code, 0, `check exit ${r.code}; stdout ${r.stdout.slice(0, 2000)} stderr ${r.stderr.slice(0, 2000)}`);
});

test('execute-api backend via connect_to: 200 with SNI and Host = host_header, x-apigw-api-id = api_id, base path /prod', async () => {
  const before = backends.gw.requests.length;
  const r = await get(sy, '/orders/1?x=y', { 'x-apigw-api-id': 'client-chosen' });
  const e = seen(r, 'GET /orders/1?x=y');
  assert.equal(backends.gw.requests.length, before + 1);
  assert.equal(e.servername, GW_HOST, `SNI sent upstream: expected ${GW_HOST} (host_header), got ${e.servername}`);
  assert.deepEqual(e.host, [GW_HOST], 'Host upstream must be host_header');
  assert.deepEqual(e.api_id, [API_ID], 'x-apigw-api-id must be the policy api_id only, never the client copy');
  assert.equal(e.url, '/prod/orders/1?x=y');
  assert.match(e.protocol, /^TLSv1\.[23]$/, `upstream TLS version ${e.protocol}`);
});

test('SNI defaults to tls_verify_name when it has no wildcard (exact name covered by the wildcard certificate)', async () => {
  const e = seen(await get(sy, '/exact-name/a'), 'GET /exact-name/a');
  assert.equal(e.servername, GW_HOST, `SNI: expected tls_verify_name ${GW_HOST}, got ${e.servername}`);
  assert.deepEqual(e.host, ['exact-name.internal.example.com'], 'Host defaults to the target host');
  assert.deepEqual(e.api_id, [], 'no api_id configured, so no x-apigw-api-id');
  assert.equal(e.url, '/prod/exact-name/a');
});

test('SNI defaults to the target host when tls_verify_name is a wildcard and host_header is unset', async () => {
  const e = seen(await get(sy, '/wild-name/a'), 'GET /wild-name/a');
  assert.equal(e.servername, 'wild-name.internal.example.com');
  assert.deepEqual(e.host, ['wild-name.internal.example.com']);
});

test('an explicit sni wins over host_header for SNI; Host is still host_header', async () => {
  const e = seen(await get(sy, '/explicit-sni/a'), 'GET /explicit-sni/a');
  assert.equal(e.servername, 'xyz789.execute-api.us-east-1.amazonaws.com');
  assert.deepEqual(e.host, [GW_HOST]);
});

test('without tls_verify_name the certificate is checked against the target host', async () => {
  const e = seen(await get(sy, '/direct/a'), 'GET /direct/a');
  assert.equal(e.servername, 'direct.internal.example.com');
  assert.deepEqual(e.host, ['direct.internal.example.com']);
});

// Every failure: 502 JSON with only a message, no certificate detail, the
// request never reaches the backend, and a log line with the reason.
const FAILURES = [
  { path: '/other-region', backend: 'gw', reason: 'name mismatch', what: 'tls_verify_name for another region (*.execute-api.eu-west-1)' },
  { path: '/other-name', backend: 'otherName', reason: 'name mismatch', what: 'a certificate for another name (other.internal.example.net)' },
  { path: '/target-name', backend: 'gw', reason: 'name mismatch', what: 'no tls_verify_name: the execute-api certificate does not cover the target host' },
  { path: '/two-labels', backend: 'gw', reason: 'name mismatch', what: 'a wildcard covers one label only (x.abc123.execute-api…)' },
  { path: '/unknown-ca', backend: 'unknownCa', reason: 'untrusted chain', what: 'a certificate from a CA other than ca_file' },
  { path: '/system-store', backend: 'gw', reason: 'untrusted chain', what: 'no ca_file: the test CA is not in the system store' },
  { path: '/expired', backend: 'expired', reason: 'expired', what: 'an expired certificate (2020-01-01..2020-02-01)' },
  { path: '/plain', backend: null, reason: 'handshake failure', what: 'the upstream speaks plain HTTP' },
  { path: '/tls11', backend: 'tls11', reason: 'handshake failure', what: 'the upstream speaks only TLS 1.1' },
];

for (const f of FAILURES) {
  test(`502 and "${f.reason}" logged: ${f.what}`, async () => {
    const b = f.backend && backends[f.backend];
    const beforeReq = b ? b.requests.length : 0;
    const beforePlain = plain.stats.requests;
    const logFrom = sy.stderr().length;
    const r = await get(sy, `${f.path}/secret-path?q=1`, { 'x-apigw-api-id': 'client-chosen' });
    assert.equal(r.status, 502, `GET ${f.path}/secret-path: expected 502 (${f.what}), got ${r.status} ${r.text}`);
    const msg = errorMessage(r);
    assert.deepEqual(Object.keys(r.json()), ['message'], `the 502 body has more than a message: ${r.text}`);
    for (const leak of ['amazonaws', 'example.net', 'test CA', 'other CA', 'CN=', 'BEGIN', '127.0.0.1', dir, '2020', 'serial']) {
      assert.ok(!r.text.includes(leak), `the client-facing 502 leaks "${leak}": ${r.text}`);
    }
    if (b) assert.equal(b.requests.length, beforeReq, 'the request reached a backend that failed verification');
    if (f.path === '/plain') assert.equal(plain.stats.requests, beforePlain, 'an HTTP request reached the plain-HTTP port');
    const lines = await eventually(
      () => {
        const fresh = jsonLines(sy.stderr().slice(logFrom)).map((l) => JSON.stringify(l));
        return fresh.some((l) => l.toLowerCase().includes(f.reason)) ? fresh : null;
      },
      { timeoutMs: 5000 * SLOW, what: `a log line containing "${f.reason}"` },
    ).catch((e) => {
      throw new Error(`${e.message}\nclient got: ${r.status} ${msg}\nnew stderr:\n${sy.stderr().slice(logFrom).slice(0, 3000)}`);
    });
    const wrong = REASONS.filter((x) => x !== f.reason && x !== 'handshake failure').filter((x) => lines.some((l) => l.toLowerCase().includes(x)));
    assert.deepEqual(wrong, [], `log names the wrong reason(s) too for ${f.what}:\n${lines.join('\n')}`);
  });
}

test('the router still serves TLS routes after the failures', async () => {
  const e = seen(await get(sy, '/orders/again'), 'GET /orders/again');
  assert.equal(e.servername, GW_HOST);
});

function handshakeCounts(text) {
  const m = parseMetrics(text).filter((x) => x.name === 'switchyard_upstream_tls_handshakes_total');
  const sum = (kind) => m.filter((x) => x.labels.kind === kind).reduce((a, x) => a + x.value, 0);
  return { found: m.length > 0, full: sum('full'), resumed: sum('resumed'), series: m };
}

test('50 sequential requests reuse a few pooled TLS connections; sessions resume after the backend closes idle ones', async () => {
  // A fresh switchyard, so its pools and counters start empty.
  const pool = await startTlsBackend(certs.gw);
  const shortKa = await startTlsBackend({ ...certs.gw, idleCloseMs: 200 });
  const pdir = tempDir('sy-tls-pool-');
  const workers = 2;
  const psy = await startSwitchyard({
    dir: pdir,
    workers,
    policy: makePolicy({
      destinations: [
        { host: 'orders.internal.example.com', connect_to: `127.0.0.1:${pool.port}`, tls_verify_name: GW_WILDCARD, host_header: GW_HOST, api_id: API_ID, ca_file: ca.cert },
        { host: 'resume.internal.example.com', connect_to: `127.0.0.1:${shortKa.port}`, tls_verify_name: GW_WILDCARD, host_header: GW_HOST, ca_file: ca.cert },
      ],
    }),
    routes: [
      { path: '/orders', target: 'https://orders.internal.example.com/prod' },
      { path: '/resume', target: 'https://resume.internal.example.com/prod' },
    ],
  });
  try {
    const N = 50;
    for (let i = 0; i < N; i++) {
      const r = await get(psy, `/orders/${i}`);
      assert.equal(r.status, 200, `request ${i}: GET /orders/${i} -> ${r.status} ${r.text}`);
    }
    assert.equal(pool.requests.length, N);
    const ports = pool.remotePorts();
    const maxConns = 2 * workers;
    assert.ok(ports.size <= maxConns, `${N} sequential requests used ${ports.size} upstream TLS connections (want <= ${maxConns}); backend handshakes ${JSON.stringify(pool.handshakes)}`);
    assert.ok(pool.handshakes.full + pool.handshakes.resumed <= maxConns, `backend counted ${JSON.stringify(pool.handshakes)} handshakes for ${N} requests`);

    const m1 = handshakeCounts((await adminGet(psy, '/metrics')).text);
    assert.ok(m1.found, 'switchyard_upstream_tls_handshakes_total not found in /metrics');
    assert.ok(m1.full >= 1, `handshakes{kind="full"} = ${m1.full} after ${N} TLS requests: ${JSON.stringify(m1.series)}`);
    assert.ok(m1.full + m1.resumed <= 10, `handshakes full+resumed = ${m1.full + m1.resumed} for ${N} requests (want a few): ${JSON.stringify(m1.series)}`);

    // The backend closes connections idle for 200 ms; each round needs a
    // new connection, which should resume the destination's session.
    const ROUNDS = 8;
    for (let i = 0; i < ROUNDS; i++) {
      const r = await get(psy, `/resume/${i}`);
      assert.equal(r.status, 200, `round ${i}: GET /resume/${i} -> ${r.status} ${r.text} (a backend closing idle pooled connections must not fail a request)`);
      await sleep(600);
    }
    const conns = shortKa.remotePorts().size;
    assert.ok(conns >= ROUNDS - 1, `the backend closed idle connections, yet ${ROUNDS} rounds used only ${conns} connections`);
    assert.ok(shortKa.handshakes.resumed > 0, `no upstream connection resumed its TLS session (backend saw ${JSON.stringify(shortKa.handshakes)})`);
    const m2 = handshakeCounts((await adminGet(psy, '/metrics')).text);
    assert.ok(m2.resumed > 0, `handshakes{kind="resumed"} = ${m2.resumed} after ${ROUNDS} reconnects: ${JSON.stringify(m2.series)}`);
    assert.ok(m2.resumed >= shortKa.handshakes.resumed, `metrics count ${m2.resumed} resumed handshakes, the backend saw ${shortKa.handshakes.resumed}`);
  } finally {
    await psy.stopClean();
    await pool.close();
    await shortKa.close();
    fs.rmSync(pdir, { recursive: true, force: true });
  }
});

// No option turns verification off; a policy that tries is rejected at load.
for (const [field, value] of [['tls_verify', false], ['insecure_skip_verify', true]]) {
  test(`a destination with "${field}": ${value} is rejected: check and serve exit 2 naming the field`, async () => {
    const d = tempDir('sy-tls-unknown-');
    try {
      const pol = makePolicy({
        destinations: [{ host: 'orders.internal.example.com', connect_to: '127.0.0.1:9', tls_verify_name: GW_WILDCARD, [field]: value }],
      });
      const pf = path.join(d, 'policy.json');
      const rf = path.join(d, 'routes.json');
      writeJsonAtomic(pf, pol);
      writeJsonAtomic(rf, [{ path: '/orders', target: 'https://orders.internal.example.com/prod' }]);
      const c = runCli(['check', '--policy', pf, '--routes', rf]);
      assert.equal(c.code, 2, `check exit ${c.code}; stderr ${c.stderr}`);
      assert.ok(c.stderr.includes(field), `check stderr does not name "${field}": ${c.stderr}`);
      const s = await startSwitchyard({ policy: pol, routes: [{ path: '/orders', target: 'https://orders.internal.example.com/prod' }], waitReady: false, dir: d });
      let timer;
      const ex = await Promise.race([s.exited, new Promise((r) => (timer = setTimeout(() => r(null), 10000 * SLOW)))]);
      clearTimeout(timer);
      if (!ex) {
        await s.stop('SIGKILL');
        assert.fail(`serve kept running with "${field}" in a destination`);
      }
      assert.equal(ex.code, 2, `serve exit ${JSON.stringify(ex)}; stderr ${s.stderr()}`);
      assert.ok(s.stderr().includes(field), `serve stderr does not name "${field}": ${s.stderr()}`);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
}
