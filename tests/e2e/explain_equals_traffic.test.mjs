// Issue 11 (a pure forward plan): /explain and the proxy call the same
// function for the forward phase, so for every request /explain's upstream
// URL, Host header, headers set, connect target and SNI equal what the
// backend actually received and what the access log records. Covered:
// strip_prefix, base paths, connect_to, host_header, api_id (a client's own
// copy never passes), query strings (redacted in the log), and TLS
// destinations (SNI from host_header or from tls_verify_name).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startEcho } from '../../examples/echo-backend.mjs';
import {
  startSwitchyard, makePolicy, dest, get, adminGet, headerValues, jsonLines, eventually, tempDir, HOST,
} from './lib/harness.mjs';
import { makeCa } from './lib/tls-ca.mjs';
import { startTlsBackend } from './lib/tls-backend.mjs';

const GW_WILDCARD = '*.execute-api.us-east-1.amazonaws.com';
const GW_HOST = 'abc123.execute-api.us-east-1.amazonaws.com';

let echo, tls, sy, ca, badCa;

before(async () => {
  echo = await startEcho({ name: 'plain' });
  const dir = tempDir('sy-explain-');
  ca = makeCa(dir, { label: 'ca' });
  badCa = `${dir}/not-a-ca.pem`;
  fs.writeFileSync(badCa, 'not a certificate\n');
  tls = await startTlsBackend(ca.issue({ dns: [GW_WILDCARD] }));
  const to = (port) => `127.0.0.1:${port}`;
  const policy = makePolicy({
    destinations: [
      dest(echo.port),
      dest(8443, { host: 'orders.internal.example', connect_to: to(echo.port) }),
      dest(8081, { host: 'gw.internal.example', connect_to: to(echo.port), host_header: 'abc.execute-api.example.com', api_id: 'abc' }),
      { scheme: 'https', host: 'tls-gw.internal.example.com', port: 443, connect_to: to(tls.port), tls_verify_name: GW_WILDCARD, host_header: GW_HOST, api_id: 'abc123', ca_file: ca.cert },
      { scheme: 'https', host: 'tls-exact.internal.example.com', port: 8443, connect_to: to(tls.port), tls_verify_name: GW_HOST, ca_file: ca.cert },
      { scheme: 'https', host: 'bad-ca.internal.example.com', connect_to: to(tls.port), tls_verify_name: GW_WILDCARD, ca_file: badCa },
    ],
  });
  const routes = [
    { path: '/svc', target: `http://127.0.0.1:${echo.port}/base`, strip_prefix: true },
    { path: '/v1base', target: `http://127.0.0.1:${echo.port}/v1` },
    { path: '/plain', target: `http://127.0.0.1:${echo.port}` },
    { path: '/orders', target: 'http://orders.internal.example:8443/prod' },
    { path: '/gw', target: 'http://gw.internal.example:8081/stage', strip_prefix: true },
    { path: '/tls-gw', target: 'https://tls-gw.internal.example.com/prod', strip_prefix: true },
    { path: '/tls-exact', target: 'https://tls-exact.internal.example.com:8443' },
    { path: '/bad-ca', target: 'https://bad-ca.internal.example.com' },
  ];
  sy = await startSwitchyard({ policy, routes });
});

after(async () => {
  await sy?.stopClean();
  await echo?.close();
  await tls?.close();
});

const readLog = () => (fs.existsSync(sy.accessLog) ? jsonLines(fs.readFileSync(sy.accessLog, 'utf8')) : []);

async function explain(path) {
  const r = await adminGet(sy, `/explain?host=${HOST}&path=${encodeURIComponent(path)}`);
  assert.equal(r.status, 200, r.text);
  const j = JSON.parse(r.text);
  assert.equal(j.decision, 'forward', r.text);
  return j;
}

// What the backend saw: {url, host: [...], api_id: [...], servername}.
function received(res) {
  const e = res.json();
  if (e.headers && !Array.isArray(e.host)) {
    return { url: e.url, host: headerValues(e.headers, 'host'), api_id: headerValues(e.headers, 'x-apigw-api-id'), servername: null };
  }
  return { url: e.url, host: e.host, api_id: e.api_id, servername: e.servername };
}

const CASES = [
  { path: '/svc/x/y?q=1&token=s3cret', backend: () => echo.port },
  { path: '/svc', backend: () => echo.port },
  { path: '/v1base/a/b', backend: () => echo.port },
  { path: '/plain/p?empty=', backend: () => echo.port },
  { path: '/orders/1?x=y', backend: () => echo.port },
  { path: '/gw/items/7', backend: () => echo.port, forgedApiId: true },
  { path: '/tls-gw/pets?limit=5', backend: () => tls.port, forgedApiId: true },
  { path: '/tls-exact/z', backend: () => tls.port },
];

for (const c of CASES) {
  test(`/explain equals traffic for ${c.path}`, async () => {
    const plan = await explain(c.path);
    const id = `explain-eq-${Math.random().toString(36).slice(2)}`;
    const headers = { 'x-request-id': id };
    if (c.forgedApiId) headers['x-apigw-api-id'] = 'forged';
    const res = await get(sy, c.path, headers);
    assert.equal(res.status, 200, res.text);
    const got = received(res);

    // The URL: what /explain says goes upstream is what arrived.
    const u = new URL(plan.upstream);
    assert.equal(u.pathname + u.search, got.url, `explain ${plan.upstream} vs backend ${got.url}`);
    // The Host sent upstream.
    assert.deepEqual(got.host, [plan.upstream_host_header]);
    // Headers set: switchyard's x-apigw-api-id alone, never the client's.
    const apiId = plan.upstream_headers_set['x-apigw-api-id'];
    assert.deepEqual(got.api_id, apiId ? [apiId] : []);
    assert.ok(plan.upstream_headers_dropped.includes('x-apigw-api-id'));
    // Where it connected.
    assert.equal(plan.connect.host, '127.0.0.1');
    assert.equal(plan.connect.port, c.backend());
    assert.equal(plan.connect.tls, u.protocol === 'https:');
    if (plan.connect.tls) {
      assert.equal(got.servername, plan.connect.sni);
      assert.equal(plan.connect.trust_store, ca.cert);
    }
    // The access log line of that request says the same.
    const line = await eventually(() => readLog().find((l) => l.request_id === id), { what: `log line ${id}` });
    assert.equal(line.upstream, plan.upstream_logged);
    assert.equal(line.upstream_addr, `${plan.connect.host}:${plan.connect.port}`);
  });
}

test('the logged URL redacts query values; /explain shows both forms', async () => {
  const plan = await explain('/svc/x?token=s3cret');
  assert.equal(plan.upstream, `http://127.0.0.1:${echo.port}/base/x?token=s3cret`);
  assert.equal(plan.upstream_logged, `http://127.0.0.1:${echo.port}/base/x?token=REDACTED`);
  const tlsPlan = await explain('/tls-gw/a');
  // The default port is not written, as in a URL; SNI is the host_header.
  assert.equal(tlsPlan.upstream, 'https://tls-gw.internal.example.com/prod/a');
  assert.equal(tlsPlan.connect.sni, GW_HOST);
  assert.equal(tlsPlan.connect.verify_name, GW_WILDCARD);
  const exact = await explain('/tls-exact/a');
  assert.equal(exact.upstream, 'https://tls-exact.internal.example.com:8443/tls-exact/a');
  assert.equal(exact.upstream_host_header, 'tls-exact.internal.example.com:8443');
  assert.equal(exact.connect.sni, GW_HOST);
});

test('a trust store that fails to load: /explain says why, the request is a 502 that never reaches the backend', async () => {
  const plan = await explain('/bad-ca/x');
  assert.equal(plan.connect.trust_store, badCa);
  assert.match(plan.connect.trust_store_error, /no certificate/);
  const before = tls.requests.length;
  const r = await get(sy, '/bad-ca/x');
  assert.equal(r.status, 502, r.text);
  assert.equal(tls.requests.length, before);
  await eventually(() => /upstream TLS verification failed[^\n]*no certificate/.test(sy.stderr() + sy.stdout()), { what: 'the log line with the reason' });
});
