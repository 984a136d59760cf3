// Issue 9: equivalent spellings of a path never pick a weaker route. Routes
// /orders (public), /orders/admin (Basic) and /orders/readonly (GET only)
// share one echo backend. Percent-encoded unreserved characters are decoded
// before matching (RFC 3986 §6.2.2.2) and the backend receives the decoded
// path; path parameters (';', %3B) are refused unless the policy allows
// them, and then they never let /orders win over /orders/admin. /explain
// says exactly what traffic gets, including for methods the parser refuses;
// "Host: name.." is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, adminGet, eventually, jsonLines, HOST } from './lib/harness.mjs';
import { rawExchange, rawJson } from './lib/rawhttp.mjs';

const PASSWORD = 'orders-admin-pw';
const basic = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
let echo, sy, lax;

function policy(port, limits) {
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: PASSWORD, encoding: 'utf8' }).trim();
  return makePolicy({
    ports: [port],
    auth_policies: {
      public: { type: 'none' },
      admins: { type: 'basic', realm: 'admins', users: { admin: hash } },
    },
    ...(limits ? { limits } : {}),
  });
}

const routes = (port) => [
  route('/orders', port),
  route('/orders/admin', port, { auth: 'admins' }),
  route('/orders/readonly', port, { methods: ['GET'] }),
];

before(async () => {
  echo = await startEcho({ name: 'orders' });
  sy = await startSwitchyard({ policy: policy(echo.port), routes: routes(echo.port) });
  lax = await startSwitchyard({ policy: policy(echo.port, { allow_path_parameters: true }), routes: routes(echo.port) });
});

after(async () => {
  if (sy) await sy.stopClean();
  if (lax) await lax.stopClean();
  await echo?.close();
});

async function send(target, { method = 'GET', host = HOST, auth, port = sy.port } = {}) {
  const headers = auth ? `Authorization: ${auth}\r\n` : '';
  const body = method === 'POST' ? 'Content-Length: 0\r\n' : '';
  const { res } = await rawExchange(port, `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${headers}${body}\r\n`);
  assert.ok(res, `no answer for ${method} ${target}`);
  return res;
}

async function explain(query) {
  const r = await adminGet(sy, `/explain?${query}`);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text);
}

// The targets the backend received while fn ran.
async function backendHits(fn) {
  const before = echo.stats.urls.length;
  await fn();
  return echo.stats.urls.slice(before);
}

test('encoded spellings of /orders/admin need its Basic credentials', async () => {
  for (const spelling of ['/orders/%61dmin', '/orders/admi%6E', '/orders/admi%6e/x', '/%6Frders/%61dmin']) {
    const hits = await backendHits(async () => {
      const res = await send(spelling);
      assert.equal(res.status, 401, `${spelling} -> ${res.status} ${res.text}`);
      assert.match(res.header('www-authenticate'), /^Basic realm="admins"$/);
    });
    assert.deepEqual(hits, [], `${spelling} reached the backend without credentials`);
  }
});

test('with credentials the backend receives the decoded path', async () => {
  const res = await send('/orders/%61dmin/x?q=%61', { auth: basic });
  assert.equal(res.status, 200, res.text);
  // The query is forwarded byte for byte; only the path is canonical.
  assert.equal(rawJson(res).url, '/orders/admin/x?q=%61');
  const res2 = await send('/orders/a%2cb%c3%a9');
  assert.equal(res2.status, 200, res2.text);
  assert.equal(rawJson(res2).url, '/orders/a%2Cb%C3%A9');
});

test('an encoded spelling of /orders/readonly keeps its method rule', async () => {
  const hits = await backendHits(async () => {
    const res = await send('/orders/%72eadonly', { method: 'POST' });
    assert.equal(res.status, 405, res.text);
    assert.equal(res.header('allow'), 'GET');
  });
  assert.deepEqual(hits, []);
  const res = await send('/orders/%72eadonly');
  assert.equal(res.status, 200, res.text);
  assert.equal(rawJson(res).url, '/orders/readonly');
});

test('path parameters are refused by default', async () => {
  for (const spelling of ['/orders/admin;x', '/orders/admin%3bx', '/orders/admin%3Bx', '/orders;x/admin']) {
    const hits = await backendHits(async () => {
      const res = await send(spelling);
      assert.equal(res.status, 400, `${spelling} -> ${res.status} ${res.text}`);
      assert.match(res.text, /path parameter/);
    });
    assert.deepEqual(hits, [], `${spelling} reached the backend`);
  }
});

test('allowed path parameters still pick /orders/admin, never /orders', async () => {
  for (const spelling of ['/orders/admin;x', '/orders/admin%3bx', '/orders;x/admin']) {
    const hits = await backendHits(async () => {
      const res = await send(spelling, { port: lax.port });
      assert.equal(res.status, 401, `${spelling} -> ${res.status} ${res.text}`);
    });
    assert.deepEqual(hits, [], `${spelling} reached the backend without credentials`);
  }
  const res = await send('/orders/admin;jsessionid=1', { port: lax.port, auth: basic });
  assert.equal(res.status, 200, res.text);
  assert.equal(rawJson(res).url, '/orders/admin;jsessionid=1');
  const ro = await send('/orders/readonly;v=1', { port: lax.port, method: 'POST' });
  assert.equal(ro.status, 405, ro.text);
});

test('the access log records the canonical path', async () => {
  await send('/orders/%6C%6Fgged');
  const line = await eventually(() => jsonLines(fs.readFileSync(sy.accessLog, 'utf8')).find((l) => l.path === '/orders/logged'), {
    what: 'an access-log line for /orders/logged',
  });
  assert.equal(line.route, '/orders');
});

test('/explain says what traffic gets for each spelling', async () => {
  const cases = [
    ['/orders/%61dmin', 'GET', 200, '/orders/admin', '/orders/admin'],
    ['/orders/admi%6E', 'GET', 200, '/orders/admin', '/orders/admin'],
    ['/orders/%72eadonly', 'POST', 405, '/orders/readonly', '/orders/readonly'],
    ['/orders/admin;x', 'GET', 400, null, '/orders/admin;x'],
    ['/orders/admin%3bx', 'GET', 400, null, '/orders/admin%3Bx'],
  ];
  for (const [p, method, status, routePath, canonical] of cases) {
    const j = await explain(`host=${HOST}&path=${encodeURIComponent(p)}&method=${method}`);
    assert.equal(j.status, status, `${method} ${p}: ${JSON.stringify(j)}`);
    assert.equal(j.path, p);
    assert.equal(j.canonical_path, canonical, JSON.stringify(j));
    if (routePath) assert.equal(j.route, routePath, JSON.stringify(j));
    if (status === 200) {
      assert.equal(j.auth, 'admins', JSON.stringify(j));
      assert.equal(j.upstream, `http://127.0.0.1:${echo.port}/orders/admin`);
    }
    if (status === 400) assert.match(j.message, /path parameter/);
  }
});

test('/explain refuses methods the parser refuses, as traffic does', async () => {
  for (const [method, reason] of [
    ['', 'bad_method'],
    ['GET\r\nX: y', null],
    ['G T', 'bad_method'],
    ['GET\r\n', null],
    ['CONNECT', 'connect_method'],
    ['connect', 'connect_method'],
    ['G@T', 'bad_method'],
  ]) {
    const j = await explain(`host=${HOST}&path=/orders/1&method=${encodeURIComponent(method)}`);
    assert.equal(j.status, 400, `${JSON.stringify(method)}: ${JSON.stringify(j)}`);
    assert.equal(j.decision, 'refuse');
    if (reason) assert.equal(j.message, `bad request: ${reason}`);
  }
  // And the data plane indeed refuses those it can be sent.
  for (const m of ['CONNECT', 'G@T']) {
    const { res } = await rawExchange(sy.port, `${m} /orders/1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    assert.equal(res?.status, 400, m);
  }
  const ok = await explain(`host=${HOST}&path=/orders/1&method=PATCH`);
  assert.equal(ok.status, 200, JSON.stringify(ok));
});

test('Host with two trailing dots is refused; one is the DNS root', async () => {
  const hits = await backendHits(async () => {
    for (const host of [`${HOST}..`, `${HOST}..:80`, 'localhost..']) {
      const res = await send('/orders/1', { host });
      assert.equal(res.status, 400, `Host ${host} -> ${res.status} ${res.text}`);
      const j = await explain(`host=${encodeURIComponent(host)}&path=/orders/1`);
      assert.equal(j.status, 400, JSON.stringify(j));
    }
  });
  assert.deepEqual(hits, []);
  const res = await send('/orders/1', { host: `${HOST}.` });
  assert.equal(res.status, 200, res.text);
});
