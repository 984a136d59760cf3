// SPEC §6: the admin listener: /healthz, /readyz, /metrics (Prometheus,
// switchyard_ names, requests counted by route), /config (sources,
// versions, active and rejected routes with reasons, never a secret) and
// /explain (what traffic would get, for a forward, 404, 421, 502 and 400).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, freePort, get, adminGet, parseMetrics, walkJson, HOST } from './lib/harness.mjs';

const BCRYPT = '$2y$10$abcdefghijklmnopqrstuu5Ga2TgB8KGFmy1p8D4y1YWs1l8cGpPK';
let echo, sy, strayPort;

before(async () => {
  echo = await startEcho({ name: 'admin' });
  strayPort = await freePort();
  sy = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: { public: { type: 'none' }, partners: { type: 'basic', realm: 'partners', users: { alice: BCRYPT } } },
    }),
    routes: [
      route('/api', echo.port, { owner: 'team-api', description: 'the api' }),
      route('/partners', echo.port, { auth: 'partners' }),
      route('/ro', echo.port, { methods: ['GET'] }),
      route('/bad', strayPort),
      route('/badauth', echo.port, { auth: 'nobody' }),
    ],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

const allStrings = (j) => [...walkJson(j)].filter(([, v]) => typeof v === 'string').map(([, v]) => v);

test('/healthz and /readyz answer 200', async () => {
  assert.equal((await adminGet(sy, '/healthz')).status, 200);
  assert.equal((await adminGet(sy, '/readyz')).status, 200);
});

test('an unknown admin path is 404', async () => {
  assert.equal((await adminGet(sy, '/nope')).status, 404);
});

test('the admin listener does not serve routes, nor the router admin paths', async () => {
  const r = await get(sy, '/metrics');
  assert.notEqual(r.status, 200, 'the public listener exposes /metrics');
  assert.ok(!/switchyard_/.test(r.text));
  const c = await get(sy, '/config');
  assert.ok(!/"routes"|partners/.test(c.text), 'the public listener exposes /config');
});

function requestCount(metrics, routePath) {
  return metrics
    .filter((m) => m.labels.route === routePath && /request/.test(m.name) && !/_bucket$|_sum$|_count$|duration|latency|seconds|bytes/.test(m.name))
    .reduce((s, m) => s + m.value, 0);
}

test('/metrics is Prometheus text with switchyard_ names and counts requests by route', async () => {
  const first = await adminGet(sy, '/metrics');
  assert.equal(first.status, 200);
  assert.match(first.headers['content-type'] || '', /^text\/plain/);
  const m0 = parseMetrics(first.text);
  assert.ok(m0.length > 5, 'too few samples');
  // process_* are the standard names every Prometheus client exposes.
  for (const m of m0) assert.ok(m.name.startsWith('switchyard_') || m.name.startsWith('process_'), `metric without the switchyard_ prefix: ${m.name}`);
  const before = requestCount(m0, '/api');
  for (let i = 0; i < 3; i++) assert.equal((await get(sy, `/api/m${i}`)).status, 200);
  assert.equal((await get(sy, '/bad/x')).status, 502);
  const m1 = parseMetrics((await adminGet(sy, '/metrics')).text);
  assert.equal(requestCount(m1, '/api') - before, 3, 'three /api requests were not counted as three');
  assert.ok(requestCount(m1, '/bad') >= 1, 'the rejected route request was not counted');
  // route counts by status class
  const api2xx = m1.filter((m) => m.labels.route === '/api' && Object.values(m.labels).some((v) => /^2(xx)?$/.test(v)));
  assert.ok(api2xx.length > 0, 'no 2xx status class label for /api');
  // histograms, routes and reload gauges
  assert.ok(m1.some((m) => m.name.endsWith('_bucket')), 'no latency histogram');
  assert.ok(m1.some((m) => /reload/.test(m.name)), 'no reload metrics');
  const text = (await adminGet(sy, '/metrics')).text;
  assert.ok(/^# TYPE switchyard_\w+ (counter|gauge|histogram)$/m.test(text), 'no # TYPE lines');
});

test('/metrics shows active and rejected route counts', async () => {
  const m = parseMetrics((await adminGet(sy, '/metrics')).text);
  const about = (re) => m.filter((x) => { const all = x.name + ' ' + Object.values(x.labels).join(' '); return /route/.test(all) && re.test(all) && !/request/.test(x.name); });
  const active = about(/active/);
  const rejected = about(/rejected/);
  assert.ok(active.some((x) => x.value === 3), `active route count 3 not found: ${JSON.stringify(active)}`);
  assert.ok(rejected.some((x) => x.value === 2), `rejected route count 2 not found: ${JSON.stringify(rejected)}`);
});

test('/metrics covers the SPEC §6 families: upstream errors, pools, connections, reloads, load times', async () => {
  // Upstream series are per destination: one that has been used has them.
  assert.equal((await get(sy, '/api/families')).status, 200);
  const m = parseMetrics((await adminGet(sy, '/metrics')).text);
  const has = (re, what) => assert.ok(m.some((x) => re.test(x.name)), `no ${what} metric`);
  has(/upstream.*err/, 'upstream error');
  has(/pool/, 'pool size');
  has(/connection/, 'open connection');
  const reloads = m.filter((x) => /reload/.test(x.name));
  for (const store of ['policy', 'routes']) {
    assert.ok(reloads.some((x) => Object.values(x.labels).includes(store)), `no reload metric for ${store}`);
  }
  // last successful load time per store: unix seconds, recent
  const nowS = Date.now() / 1000;
  for (const store of ['policy', 'routes']) {
    const t = m.filter((x) => /last|success|load/.test(x.name) && !/reload/.test(x.name) && (Object.values(x.labels).includes(store) || x.name.includes(store)));
    assert.ok(t.some((x) => Math.abs(x.value - nowS) < 3600), `no recent last-load time for ${store}: ${JSON.stringify(t)}`);
  }
});

test('/metrics counts open client connections', async () => {
  const { RawConn } = await import('./lib/rawhttp.mjs');
  const conns = await Promise.all([1, 2, 3].map(() => RawConn.open(sy.port)));
  try {
    for (const c of conns) await c.send(`GET /api/open HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    for (const c of conns) assert.equal((await c.readFinal()).status, 200);
    const m = parseMetrics((await adminGet(sy, '/metrics')).text);
    const g = m.filter((x) => /client.*connection|connection.*client|open_connections/.test(x.name));
    assert.ok(g.reduce((s, x) => s + x.value, 0) >= 3, `open client connections: ${JSON.stringify(g)}`);
  } finally {
    for (const c of conns) c.close();
  }
});

test('/config lists sources, versions, active routes and rejected ones with reasons', async () => {
  const r = await adminGet(sy, '/config');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  const cfg = JSON.parse(r.text);
  const strings = allStrings(cfg);
  assert.ok(strings.some((s) => s.includes(sy.policyFile)), 'the policy source is not shown');
  assert.ok(strings.some((s) => s.includes(sy.routesFile)), 'the routes source is not shown');
  const objs = [...walkJson(cfg)].map(([, v]) => v).filter((v) => v && typeof v === 'object' && !Array.isArray(v));
  const withPath = (p) => objs.filter((o) => o.path === p);
  assert.ok(withPath('/api').length > 0, '/api not listed');
  assert.ok(strings.includes('team-api'), 'owner not shown');
  for (const p of ['/bad', '/badauth']) {
    const entries = withPath(p);
    assert.ok(entries.length > 0, `${p} not listed`);
    const reason = entries.flatMap((o) => Object.entries(o)).find(([k, v]) => /reason|error|rejected/i.test(k) && typeof v === 'string' && v.length > 3);
    assert.ok(reason, `${p} has no reason: ${JSON.stringify(entries)}`);
  }
  const reasonOf = (p) => JSON.stringify(withPath(p));
  assert.match(reasonOf('/bad'), /destination|target|allow/i);
  assert.match(reasonOf('/badauth'), /auth|nobody|polic/i);
  // a version per store: some hash- or ETag-like string
  assert.ok(strings.filter((s) => /^("?W\/)?"?[0-9a-zA-Z+/=_:-]{8,}"?$/.test(s) && !s.startsWith('/')).length >= 2, `no versions in ${r.text.slice(0, 1000)}`);
  // and a load time per store
  const recent = strings.filter((s) => /^\d{4}-\d\d-\d\dT/.test(s) && Math.abs(Date.parse(s) - Date.now()) < 3600e3);
  assert.ok(recent.length >= 2, 'no load times in /config');
});

test('secrets never appear in /config, /explain, /metrics or the log', async () => {
  const bodies = [
    (await adminGet(sy, '/config')).text,
    (await adminGet(sy, `/explain?host=${HOST}&path=/partners/x`)).text,
    (await adminGet(sy, '/metrics')).text,
  ];
  await get(sy, '/partners/x', { Authorization: 'Basic YWxpY2U6d3Jvbmc=' });
  bodies.push(sy.stderr(), sy.stdout());
  for (const b of bodies) {
    assert.ok(!b.includes(BCRYPT), 'the bcrypt hash leaked');
    assert.ok(!b.includes('uu5Ga2TgB8KGFmy1p8D4y1YWs1l8cGpPK'), 'part of the bcrypt hash leaked');
    assert.ok(!b.includes('YWxpY2U6d3Jvbmc='), 'Basic credentials leaked');
  }
});

async function explain(q) {
  const r = await adminGet(sy, `/explain?${q}`);
  let j;
  try {
    j = JSON.parse(r.text);
  } catch {
    assert.fail(`/explain?${q} is not JSON: ${r.status} ${r.text}`);
  }
  return { r, j, text: r.text };
}

const mentionsStatus = (j, code) => [...walkJson(j)].some(([, v]) => v === code || v === String(code));

test('/explain for a forward names the route, upstream URL and auth policy', async () => {
  const { r, j, text } = await explain(`host=${HOST}&path=${encodeURIComponent('/api/x?q=1')}&method=GET`);
  assert.equal(r.status, 200);
  assert.ok(allStrings(j).some((s) => s === '/api'), `route not named: ${text}`);
  assert.ok(allStrings(j).some((s) => s.startsWith(`http://127.0.0.1:${echo.port}/api/x`)), `upstream URL missing: ${text}`);
  assert.ok(allStrings(j).includes('public'), `auth policy missing: ${text}`);
});

test('/explain without a method still explains', async () => {
  const { j, text } = await explain(`host=${HOST}&path=/api/y`);
  assert.ok(allStrings(j).some((s) => s.startsWith(`http://127.0.0.1:${echo.port}/api/y`)), text);
});

test('/explain for no route says 404', async () => {
  const { j, text } = await explain(`host=${HOST}&path=/nowhere`);
  assert.ok(mentionsStatus(j, 404), text);
});

test('/explain for an unknown host says 421', async () => {
  const { j, text } = await explain(`host=evil.example.org&path=/api/x`);
  assert.ok(mentionsStatus(j, 421), text);
});

test('/explain for a rejected route says 502 and why', async () => {
  const { j, text } = await explain(`host=${HOST}&path=/bad/x`);
  assert.ok(mentionsStatus(j, 502), text);
  assert.match(text, /rejected/i);
});

test('/explain for a bad path says 400', async () => {
  const a = await explain(`host=${HOST}&path=${encodeURIComponent('/api/%2e%2e/x')}`);
  assert.ok(mentionsStatus(a.j, 400), a.text);
});

test('/explain for a method the route does not allow says 405', async () => {
  const a = await explain(`host=${HOST}&path=/ro/x&method=DELETE`);
  assert.ok(mentionsStatus(a.j, 405), a.text);
  const b = await explain(`host=${HOST}&path=/ro/x&method=GET`);
  assert.ok(!mentionsStatus(b.j, 405), b.text);
});

test('/explain for a basic-auth route names the policy', async () => {
  const { j, text } = await explain(`host=${HOST}&path=/partners/x`);
  assert.ok(allStrings(j).includes('partners'), text);
});
