// Attack: a malicious client (docs/security.md, "A malicious client"). Routes
// /orders (public), /orders/admin (Basic) and /orders/ro (GET only) share one
// echo backend, once with the default limits and once with
// allow_path_parameters. Every spelling of /orders/admin a backend might
// decode back to it must need the Basic credentials or be refused, never
// reach the backend unauthenticated; /explain must answer what traffic gets
// for every target, including the ones the parser refuses; Host tricks,
// framing-header spellings, x-apigw-api-id spellings, request ids with
// control bytes and forwarding headers must not change where a request goes
// or what the backend is told about it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, dest, adminGet, jsonLines, HOST } from './lib/harness.mjs';
import { rawExchange, rawJson } from './lib/rawhttp.mjs';

const PASSWORD = 'attack-admin-pw';
let echo, sy, lax;

function policy(port, limits) {
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: PASSWORD, encoding: 'utf8' }).trim();
  return makePolicy({
    destinations: [dest(port, { api_id: 'ordersapi1' })],
    auth_policies: { public: { type: 'none' }, admins: { type: 'basic', realm: 'admins', users: { admin: hash } } },
    ...(limits ? { limits } : {}),
  });
}
const routes = (port) => [route('/orders', port), route('/orders/admin', port, { auth: 'admins' }), route('/orders/ro', port, { methods: ['GET'] })];

before(async () => {
  echo = await startEcho({ name: 'attack' });
  sy = await startSwitchyard({ policy: policy(echo.port), routes: routes(echo.port) });
  lax = await startSwitchyard({ policy: policy(echo.port, { allow_path_parameters: true }), routes: routes(echo.port) });
});

after(async () => {
  if (sy) await sy.stopClean();
  if (lax) await lax.stopClean();
  await echo?.close();
});

async function send(port, head) {
  const before = echo.stats.urls.length;
  const { res } = await rawExchange(port, Buffer.from(head, 'latin1'));
  assert.ok(res, `no answer for ${JSON.stringify(head)}`);
  return { res, hits: echo.stats.urls.slice(before) };
}
const get = (port, target, extra = '', host = HOST) => send(port, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`);

// Spellings of /orders/admin (or of a path that leaves it) that a decoding,
// parameter-stripping, backslash-folding backend could serve as
// /orders/admin.
const ADMIN_SPELLINGS = [
  '/orders/%61dmin', '/orders/%61%64%6D%69%6E', '/orders/admi%6e', '/%6Frders/admin', '/orders/admin/', '/orders/admin?x=1',
  '/orders/%2e%2e/orders/admin', '/orders/.%2e/orders/admin', '/orders/%2E/admin', '/orders/x/../admin', '/orders/./admin',
  '/orders/admin%3Bx', '/orders/admin%3bx', '/orders/admin;x', '/orders;x/admin', '/orders%3B/admin', '/orders/admin;',
  '/orders/%C0%AFadmin', '/orders/%c0%ae%c0%ae/orders/admin', '/orders/%E0%80%AE%E0%80%AE/admin', '/orders/%F0%80%80%AE/admin',
  '/orders//admin', '/orders/%2Fadmin', '/orders/%2fadmin', '/orders/%5Cadmin', '/orders/\\admin', '/orders/%252e%252e/admin',
  '/orders/%2561dmin', '/orders/%%36%31dmin', '/orders/%u0061dmin', '/orders/admin%00', '/orders/admin%09', '/orders/admin#x',
  'http://api.example.com/orders/admin', '//orders/admin', '/orders/adm%69n%3B', '/orders/%ED%A0%80/../admin',
];

test('no spelling of /orders/admin reaches the backend without credentials (default limits)', async () => {
  for (const t of ADMIN_SPELLINGS) {
    const { res, hits } = await get(sy.port, t);
    assert.ok(res.status === 401 || res.status === 400, `${t} -> ${res.status} ${res.body}`);
    assert.deepEqual(hits, [], `${t} reached the backend`);
  }
});

test('with allow_path_parameters, ";" and %3B never let /orders win over /orders/admin', async () => {
  for (const t of [...ADMIN_SPELLINGS, '/orders/admin%3B%2e%2e', '/orders/admin;/x', '/orders;/admin;/', '/orders%3b%3b/admin']) {
    const { res, hits } = await get(lax.port, t);
    assert.ok(res.status === 401 || res.status === 400, `${t} -> ${res.status} ${res.body}`);
    assert.deepEqual(hits, [], `${t} reached the backend`);
  }
  // A method rule holds through parameters too.
  const { res } = await send(lax.port, `POST /orders/ro;x HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`);
  assert.equal(res.status, 405);
});

// Targets whose /explain answer used to be "forward" while traffic got 400
// (bytes outside RFC 3986, a '#' in the query), plus the usual spellings.
const EXPLAIN_TARGETS = [
  '/orders/a"b', '/orders/a<b', '/orders/a{b', '/orders/a|b', '/orders/a^b', '/orders/a`b', '/orders/[x]', '/orders/admin?x#y',
  '/orders/admin#x', '/orders/\\admin', '/orders/%61dmin', '/orders/admin;x', '/orders;x/admin', '/orders/admin%3B', '/orders/ro;x',
  '/orders/%2e%2e/admin', '/orders/%zz', '/orders/ADMIN', '/orders/admin.', '/orders/a!$&\'()*+,=:@b', '/orders/admin?q=%20', '/orders/\u00e9',
];

for (const [name, which] of [['default limits', () => sy], ['allow_path_parameters', () => lax]]) {
  test(`/explain answers what traffic gets for every target (${name})`, async () => {
    const s = which();
    for (const t of EXPLAIN_TARGETS) {
      for (const method of ['GET', 'POST']) {
        const r = await adminGet(s, `/explain?host=${HOST}&path=${encodeURIComponent(t)}&method=${method}`);
        assert.equal(r.status, 200, r.text);
        const j = JSON.parse(r.text);
        const { res } = await send(s.port, Buffer.from(`${method} ${t} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`, 'utf8').toString('latin1'));
        // Traffic without credentials: the Basic route answers 401.
        const expected = j.status === 200 && j.route === '/orders/admin' ? 401 : j.status;
        assert.equal(res.status, expected, `${method} ${t}: /explain ${JSON.stringify(j)}, traffic ${res.status} ${res.body}`);
      }
    }
  });
}

test('Host spellings: only listed names are served; a port, case or one trailing dot is the same name', async () => {
  for (const host of ['api.example.com:8080', 'API.Example.COM', 'api.example.com.', 'x.apps.example.com']) {
    const { res } = await get(sy.port, '/orders/1', '', host);
    assert.equal(res.status, 200, `${host}: ${res.status}`);
  }
  for (const [host, status] of [
    ['evil.com', 421], ['xn--api-example.com', 421], ['a.b.apps.example.com', 421], ['.apps.example.com', 421], ['apps.example.com', 421],
    ['[::1]', 421], ['u@api.example.com', 400], ['api.example.com:', 400], ['api.example.com,evil.com', 400], ['api.example.com..', 400],
    ['api.example.com:80:80', 400], ['api.example.com/x', 400], ['api.example.com%2e', 400], ['api.example.com\\', 400],
  ]) {
    const { res, hits } = await get(sy.port, '/orders/1', '', host);
    assert.equal(res.status, status, `Host ${host}: ${res.status} ${res.body}`);
    assert.deepEqual(hits, []);
  }
  // Two Host headers, or an absolute-form target naming another host.
  let r = await send(sy.port, `GET /orders/1 HTTP/1.1\r\nHost: ${HOST}\r\nHost: evil.com\r\n\r\n`);
  assert.equal(r.res.status, 400);
  r = await send(sy.port, `GET http://evil.com/orders/1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.equal(r.res.status, 400);
  assert.deepEqual(r.hits, []);
});

test('framing and identity headers in "_" or odd spellings are refused, never forwarded', async () => {
  for (const h of ['Transfer_Encoding: chunked', 'transfer_encoding: chunked', 'Content_Length: 5', 'X_Forwarded_For: 6.6.6.6',
    'X_Forwarded_Host: evil.com', 'Proxy_Connection: close', 'X_Request_Id: x', 'Transfer-Encoding : chunked', 'Content-Length\t: 0',
    'Transfer-Encoding: identity', 'Transfer-Encoding: chunked, identity', 'X-Request-Id: a\x01b', 'X-Request-Id: a\x7fb']) {
    const { res, hits } = await get(sy.port, '/orders/1', `${h}\r\n`);
    assert.equal(res.status, 400, `${JSON.stringify(h)}: ${res.status}`);
    assert.deepEqual(hits, [], `${JSON.stringify(h)} reached the backend`);
  }
});

test('a client never chooses x-apigw-api-id, in any spelling, nor through Connection', async () => {
  for (const h of ['x-apigw-api-id: evil', 'X-APIGW-API-ID: evil', 'x_apigw_api_id: evil', 'X_Apigw-Api_Id: evil', 'Connection: x-apigw-api-id\r\nx-apigw-api-id: evil']) {
    const { res } = await get(sy.port, '/orders/1', `${h}\r\n`);
    assert.equal(res.status, 200, `${h}: ${res.status}`);
    const echoed = rawJson(res).headers.filter(([k]) => /^x[-_]apigw[-_]api[-_]id$/i.test(k));
    assert.deepEqual(echoed, [['x-apigw-api-id', 'ordersapi1']], `${JSON.stringify(h)}: ${JSON.stringify(echoed)}`);
  }
});

test('forwarding claims from the client are replaced or appended, never trusted for routing', async () => {
  const { res } = await get(sy.port, '/orders/1',
    'X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.com\r\nX-Forwarded-Proto: https\r\nForwarded: for=1.1.1.1;host=evil.com\r\nX-Host: evil.com\r\n');
  assert.equal(res.status, 200);
  const h = rawJson(res).headers;
  const one = (n) => h.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  assert.deepEqual(one('x-forwarded-for'), ['6.6.6.6, 127.0.0.1']);
  assert.deepEqual(one('x-forwarded-host'), [HOST]);
  assert.deepEqual(one('x-forwarded-proto'), ['http']);
  assert.deepEqual(one('host'), [`127.0.0.1:${echo.port}`]);
});

// Documented residual risk (docs/security.md, what stays backend-specific):
// path-override headers pass through untouched and never change the route.
test('X-Original-URL and X-Rewrite-URL never change the route; they are forwarded as they are', async () => {
  const { res, hits } = await get(sy.port, '/orders/1', 'X-Original-URL: /orders/admin\r\nX-Rewrite-URL: /orders/admin\r\n');
  assert.equal(res.status, 200);
  assert.deepEqual(hits, ['/orders/1']);
  const h = rawJson(res).headers;
  assert.deepEqual(h.filter(([k]) => /^x-(original|rewrite)-url$/i.test(k)).map(([, v]) => v), ['/orders/admin', '/orders/admin']);
});

test('hostile request ids and header bytes keep every access log line valid JSON', async () => {
  await get(sy.port, '/orders/1', 'X-Request-Id: a\xff\xfe"}\\\\u0000{\r\n');
  await get(sy.port, '/orders/1', `X-Request-Id: ${'r'.repeat(6000)}\r\n`);
  await get(sy.port, '/orders/%C3%A9?k=\xff"', '');
  const lines = await (async () => {
    for (let i = 0; i < 50; i++) {
      const text = fs.existsSync(sy.accessLog) ? fs.readFileSync(sy.accessLog, 'utf8') : '';
      if (text.includes('rrrrrrrr')) return text;
      await new Promise((r) => setTimeout(r, 100));
    }
    return fs.readFileSync(sy.accessLog, 'utf8');
  })();
  for (const l of jsonLines(lines)) assert.ok(!l._raw, `access log line is not JSON: ${l._raw?.slice(0, 200)}`);
});

// A refused head never reaches the backend; a body refused mid-stream (a
// bad chunk) may have had its head forwarded already, but the backend never
// gets a complete request from it.
test('ambiguous framing is refused with 400 and never makes a complete request upstream', async () => {
  const H = `POST /orders/FRAMING HTTP/1.1\r\nHost: ${HOST}\r\n`;
  const cases = [
    `${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: chunked \r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`,
    `${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`,
    `${H}Content-Length: 3, 3\r\n\r\nabc`,
    `${H}Content-Length: +3\r\n\r\nabc`,
    `${H}Content-Length: 0x3\r\n\r\nabc`,
    `${H}Content-Length: 3 3\r\n\r\nabc`,
    `${H}Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n`,
    `${H}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: chunked\r\n\r\n3;\rx\r\nabc\r\n0\r\n\r\n`,
    `${H}Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n`,
    `GET /orders/FRAMING HTTP/1.1\r\nHost: ${HOST}\nX: y\r\n\r\n`,
    `GET /orders/1 HTTP/1.1\r\nHost: ${HOST}\r\nX: y\rZ: w\r\n\r\n`,
    `GET /orders/1 HTTP/1.1\r\n Host: ${HOST}\r\n\r\n`,
    `GET /orders/1 HTTP/1.1\r\nHost : ${HOST}\r\n\r\n`,
    `GET /orders/1 HTTP/1.0\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    `GET  /orders/1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    `GET /orders/1 HTTP/1.1 \r\nHost: ${HOST}\r\n\r\n`,
    `GET /orders/1 HTTP/1.10\r\nHost: ${HOST}\r\n\r\n`,
    `GET /orders/1 http/1.1\r\nHost: ${HOST}\r\n\r\n`,
  ];
  for (const [i, c] of cases.entries()) {
    const raw = c.replaceAll('/orders/1 ', '/orders/FRAMING ').replace('/orders/FRAMING', `/orders/f${i}`);
    const { res } = await send(sy.port, raw);
    assert.equal(res.status, 400, `${JSON.stringify(raw)} -> ${res.status} ${res.body}`);
  }
  await new Promise((r) => setTimeout(r, 300));
  const done = echo.stats.completed.map((x) => x.url).filter((u) => /^\/orders\/f\d+$/.test(u));
  assert.deepEqual(done, [], 'a refused request completed at the backend');
});

test('a request smuggled in a body is never read as a second request', async () => {
  const inner = `GET /orders/admin HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
  const { res, hits } = await send(sy.port, `POST /orders/carrier HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`);
  assert.equal(res.status, 200);
  assert.ok(!hits.includes('/orders/admin'), JSON.stringify(hits));
  assert.equal(rawJson(res).body_bytes, inner.length);
});

test('a client naming framing or forwarding headers in Connection cannot strip what switchyard sends', async () => {
  const cases = [
    [`POST /orders/c1 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello`, 5],
    [`POST /orders/c2 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 5],
    [`GET /orders/c3 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: host, x-forwarded-for, x-request-id, x-forwarded-proto, x-forwarded-host, x-apigw-api-id\r\n\r\n`, 0],
  ];
  for (const [raw, bytes] of cases) {
    const { res } = await send(sy.port, raw);
    assert.equal(res.status, 200, raw);
    const j = rawJson(res);
    assert.equal(j.body_bytes, bytes, raw);
    const names = j.headers.map(([k]) => k.toLowerCase());
    for (const n of ['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'x-apigw-api-id']) {
      assert.ok(names.includes(n), `${n} missing upstream after ${JSON.stringify(raw.split('\r\n')[2])}`);
    }
  }
});

test('/explain judges every Host spelling as traffic does (whitespace around it is not part of it)', async () => {
  for (const host of ['api.example.com:8080', 'API.Example.COM', 'api.example.com.', 'ApI.eXaMpLe.CoM.:443', 'x.APPS.example.com.', 'evil.com',
    'a.b.apps.example.com', '[::1]', '127.0.0.1', 'u@api.example.com', 'api.example.com:', 'api.example.com..', 'api.example.com:99999',
    'api.example.com:0', 'api.example.com:+80', 'api.example.com:080', '*.apps.example.com', 'api.exa mple.com', 'api.example.com ',
    'api.example.com\t', ' api.example.com', '\tapi.example.com \t']) {
    const j = JSON.parse((await adminGet(sy, `/explain?host=${encodeURIComponent(host)}&path=/orders/1`)).text);
    const { res } = await send(sy.port, `GET /orders/1 HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    assert.equal(j.status, res.status, `Host ${JSON.stringify(host)}: /explain ${JSON.stringify(j)}, traffic ${res.status}`);
  }
});
