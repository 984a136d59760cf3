// SPEC §3 matching and forwarded paths: longest match at segment
// boundaries, case-sensitive, base path and strip_prefix, query bytes
// unchanged, domain-scoped routes, methods, disabled routes, and headers
// that must never influence routing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, HOST } from './lib/harness.mjs';
import { rawExchange, rawJson } from './lib/rawhttp.mjs';

let a, b, d, e, sy;

before(async () => {
  [a, b, d, e] = await Promise.all(['A', 'B', 'D', 'E'].map((name) => startEcho({ name })));
  sy = await startSwitchyard({
    policy: makePolicy({ ports: [a.port, b.port, d.port, e.port] }),
    routes: [
      route('/', d.port),
      route('/orders', a.port),
      route('/orders/v2', b.port, { base: '/stage' }),
      route('/strip', a.port, { base: '/base', strip_prefix: true }),
      route('/nobase', a.port, { strip_prefix: true }),
      route('/deep/er/path', b.port),
      route('/shop', e.port, { domain: 'shop.apps.example.com' }),
      route('/ro', a.port, { methods: ['GET', 'HEAD'] }),
      route('/off', a.port, { enabled: false }),
    ],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await Promise.all([a, b, d, e].map((x) => x?.close()));
});

// -> [backend name, forwarded target]
async function where(p, { host = HOST, method = 'GET', headers = '' } = {}) {
  const { res } = await rawExchange(sy.port, `${method} ${p} HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n`);
  assert.ok(res, `no answer for ${p}`);
  assert.equal(res.status, 200, `${method} ${p} (Host ${host}) -> ${res.status} ${res.text}`);
  const j = rawJson(res);
  return [j.name, j.url];
}

test('longest match at segment boundaries', async () => {
  assert.deepEqual(await where('/orders'), ['A', '/orders']);
  assert.deepEqual(await where('/orders/'), ['A', '/orders/']);
  assert.deepEqual(await where('/orders/1'), ['A', '/orders/1']);
  assert.deepEqual(await where('/orders/v2'), ['B', '/stage/orders/v2']);
  assert.deepEqual(await where('/orders/v2/'), ['B', '/stage/orders/v2/']);
  assert.deepEqual(await where('/orders/v2/items/9'), ['B', '/stage/orders/v2/items/9']);
  assert.deepEqual(await where('/orders/v2x'), ['A', '/orders/v2x']);
  assert.deepEqual(await where('/orders/v'), ['A', '/orders/v']);
  assert.deepEqual(await where('/ordersx'), ['D', '/ordersx']);
  assert.deepEqual(await where('/order'), ['D', '/order']);
  assert.deepEqual(await where('/'), ['D', '/']);
  assert.deepEqual(await where('/deep/er/path/x'), ['B', '/deep/er/path/x']);
  assert.deepEqual(await where('/deep/er'), ['D', '/deep/er']);
  assert.deepEqual(await where('/deep/er/pat'), ['D', '/deep/er/pat']);
});

test('matching is case-sensitive', async () => {
  assert.deepEqual(await where('/Orders'), ['D', '/Orders']);
  assert.deepEqual(await where('/ORDERS/1'), ['D', '/ORDERS/1']);
});

test('strip_prefix drops the matched root before the base path', async () => {
  assert.deepEqual(await where('/strip/x/y'), ['A', '/base/x/y']);
  assert.deepEqual(await where('/strip/'), ['A', '/base/']);
  const [n, u] = await where('/strip');
  assert.equal(n, 'A');
  assert.ok(['/base', '/base/'].includes(u), u);
  assert.deepEqual(await where('/nobase/x'), ['A', '/x']);
  assert.deepEqual(await where('/nobase'), ['A', '/']);
  assert.deepEqual(await where('/nobase/'), ['A', '/']);
  assert.deepEqual(await where('/stripx'), ['D', '/stripx']);
});

test('the query string is forwarded byte for byte', async () => {
  const q = '?b=2&a=1&a=%2F&plus=a+b&semi=1;2&empty=&slash=/x/../y&enc=%C3%A9&tilde=~';
  assert.deepEqual(await where(`/orders/q${q}`), ['A', `/orders/q${q}`]);
  assert.deepEqual(await where(`/orders/v2/q${q}`), ['B', `/stage/orders/v2/q${q}`]);
  assert.deepEqual(await where(`/strip/q${q}`), ['A', `/base/q${q}`]);
  assert.deepEqual(await where('/orders?x'), ['A', '/orders?x']);
});

test('an empty query keeps its question mark', async () => {
  assert.deepEqual(await where('/orders/e?'), ['A', '/orders/e?']);
});

test('the path is matched and forwarded in canonical form (issue 9)', async () => {
  assert.deepEqual(await where('/orders/%41%62c'), ['A', '/orders/Abc']);
  assert.deepEqual(await where('/orders/a%20b'), ['A', '/orders/a%20b']);
  assert.deepEqual(await where('/orders/a%2cb'), ['A', '/orders/a%2Cb']);
  assert.deepEqual(await where('/orders/%76%32'), ['B', '/stage/orders/v2'], 'an encoded v2 is the /orders/v2 route');
});

test('a domain-scoped route serves only its domain', async () => {
  assert.deepEqual(await where('/shop/x', { host: 'shop.apps.example.com' }), ['E', '/shop/x']);
  assert.deepEqual(await where('/shop/x', { host: 'SHOP.Apps.Example.COM' }), ['E', '/shop/x']);
  assert.deepEqual(await where('/shop/x', { host: 'shop.apps.example.com:8080' }), ['E', '/shop/x']);
  assert.deepEqual(await where('/shop/x', { host: HOST }), ['D', '/shop/x']);
  assert.deepEqual(await where('/shop/x', { host: 'other.apps.example.com' }), ['D', '/shop/x']);
  // routes without a domain serve every listen domain
  assert.deepEqual(await where('/orders/1', { host: 'shop.apps.example.com' }), ['A', '/orders/1']);
});

test('X-Forwarded-Host, X-Host and Forwarded never influence routing', async () => {
  const headers =
    'X-Forwarded-Host: shop.apps.example.com\r\nX-Host: shop.apps.example.com\r\n' +
    'Forwarded: host=shop.apps.example.com\r\nX-Original-URL: /orders\r\nX-Rewrite-URL: /orders\r\n';
  assert.deepEqual(await where('/shop/x', { headers }), ['D', '/shop/x']);
});

test('methods restrict a route; other routes take every method', async () => {
  assert.deepEqual(await where('/ro/x'), ['A', '/ro/x']);
  const r = await get(sy, '/ro/x', {}, { method: 'POST', body: 'x' });
  assert.equal(r.status, 405);
  assert.ok(/\bGET\b/.test(r.headers.allow || ''), `Allow: ${r.headers.allow}`);
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const res = await get(sy, '/orders/m', {}, { method: m, body: m === 'OPTIONS' ? undefined : 'x' });
    assert.equal(res.status, 200, m);
    assert.equal(res.json().method, m);
  }
});

test('a disabled route is out of service', async () => {
  assert.deepEqual(await where('/off/x'), ['D', '/off/x']);
});
