// SPEC §5.7 and §5.9: which headers reach the backend and which reach the
// client. The echo backend reports the raw header list it received, in
// order and with duplicates.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, dest, headerValues, HOST } from './lib/harness.mjs';
import { rawExchange, rawJson } from './lib/rawhttp.mjs';

let echo, echo2, sy;

before(async () => {
  echo = await startEcho({ name: 'h' });
  echo2 = await startEcho({ name: 'h2' });
  sy = await startSwitchyard({
    policy: makePolicy({
      destinations: [dest(echo.port), dest(echo2.port, { host_header: 'backend.internal.example' })],
    }),
    routes: [route('/h', echo.port), route('/custom-host', echo2.port)],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
  await echo2?.close();
});

async function echoOf(requestBytes) {
  const { res } = await rawExchange(sy.port, requestBytes);
  assert.ok(res, 'no answer');
  assert.equal(res.status, 200, res.text);
  return { res, echo: rawJson(res) };
}

const names = (hs) => hs.map(([k]) => k.toLowerCase());

test('client headers are forwarded, hop-by-hop and Connection-named ones are not', async () => {
  const req =
    `GET /h/x?y=1 HTTP/1.1\r\n` +
    `Host: ${HOST}\r\n` +
    `User-Agent: e2e-agent/1.0\r\n` +
    `X-Custom: one\r\n` +
    `X-Custom: two\r\n` +
    `X-Mixed-Case-Header: Value With  Spaces\r\n` +
    `Cookie: a=1; b=2\r\n` +
    `Accept: application/json\r\n` +
    `Connection: keep-alive, X-Drop-Me\r\n` +
    `X-Drop-Me: secret\r\n` +
    `Keep-Alive: timeout=5\r\n` +
    `Proxy-Connection: keep-alive\r\n` +
    `TE: trailers\r\n` +
    `Trailer: X-Whatever\r\n` +
    `Proxy-Authorization: Basic Zm9vOmJhcg==\r\n` +
    `X-Host: evil.example\r\n` +
    `Forwarded: for=192.0.2.60;host=evil.example;proto=http\r\n` +
    `X-Forwarded-Server: evil.example\r\n` +
    `\r\n`;
  const { echo: e } = await echoOf(req);
  const hs = e.headers;
  assert.equal(e.url, '/h/x?y=1');
  assert.deepEqual(headerValues(hs, 'user-agent'), ['e2e-agent/1.0']);
  assert.equal(headerValues(hs, 'x-custom').join(', '), 'one, two');
  assert.deepEqual(headerValues(hs, 'x-mixed-case-header'), ['Value With  Spaces']);
  assert.deepEqual(headerValues(hs, 'cookie'), ['a=1; b=2']);
  assert.deepEqual(headerValues(hs, 'accept'), ['application/json']);
  assert.deepEqual(headerValues(hs, 'x-host'), ['evil.example']);
  assert.deepEqual(headerValues(hs, 'forwarded'), ['for=192.0.2.60;host=evil.example;proto=http']);
  assert.deepEqual(headerValues(hs, 'x-forwarded-server'), ['evil.example']);
  for (const h of ['x-drop-me', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authorization', 'transfer-encoding', 'upgrade']) {
    assert.ok(!names(hs).includes(h), `${h} was forwarded: ${JSON.stringify(hs)}`);
  }
  for (const v of headerValues(hs, 'connection')) assert.ok(!/x-drop-me/i.test(v), `Connection upstream names client tokens: ${v}`);
});

test('Host is rewritten to the destination, exactly once', async () => {
  const { echo: e } = await echoOf(`GET /h/host HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  const hosts = headerValues(e.headers, 'host');
  assert.equal(hosts.length, 1, JSON.stringify(hosts));
  assert.ok([`127.0.0.1:${echo.port}`, '127.0.0.1'].includes(hosts[0]), `Host upstream: ${hosts[0]}`);
});

test("Host is the destination's host_header when set", async () => {
  const { echo: e } = await echoOf(`GET /custom-host/x HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.equal(e.name, 'h2');
  assert.deepEqual(headerValues(e.headers, 'host'), ['backend.internal.example']);
});

test('X-Forwarded-For gets the peer appended; Proto and Host are replaced', async () => {
  const req =
    `GET /h/xff HTTP/1.1\r\nHost: ${HOST}\r\n` +
    `X-Forwarded-For: 203.0.113.7\r\n` +
    `X-Forwarded-Proto: https-bogus\r\n` +
    `X-Forwarded-Host: evil.example\r\n\r\n`;
  const { echo: e } = await echoOf(req);
  const xff = headerValues(e.headers, 'x-forwarded-for').join(', ').split(/\s*,\s*/);
  assert.deepEqual(xff, ['203.0.113.7', '127.0.0.1']);
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-proto'), ['http']);
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-host'), [HOST]);
});

test('X-Forwarded-For is created when absent', async () => {
  const { echo: e } = await echoOf(`GET /h/xff2 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-for'), ['127.0.0.1']);
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-proto'), ['http']);
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-host'), [HOST]);
});

test('X-Forwarded-Host is the Host the client sent', async () => {
  const { echo: e } = await echoOf(`GET /h/xfh HTTP/1.1\r\nHost: team.apps.example.com\r\n\r\n`);
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-host'), ['team.apps.example.com']);
});

test('X-Request-Id is added when absent, unique, and kept when present', async () => {
  const a = (await echoOf(`GET /h/id1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).echo;
  const b = (await echoOf(`GET /h/id2 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).echo;
  const ida = headerValues(a.headers, 'x-request-id');
  const idb = headerValues(b.headers, 'x-request-id');
  assert.equal(ida.length, 1);
  assert.equal(idb.length, 1);
  assert.ok(ida[0].length >= 8, `short request id ${ida[0]}`);
  assert.notEqual(ida[0], idb[0]);
  const c = (await echoOf(`GET /h/id3 HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: my-id-123\r\n\r\n`)).echo;
  assert.deepEqual(headerValues(c.headers, 'x-request-id'), ['my-id-123']);
});

test('request bodies carry their own framing upstream, not the client Transfer-Encoding header', async () => {
  const req = `POST /h/te HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`;
  const { echo: e } = await echoOf(req);
  assert.equal(e.body_bytes, 11);
  assert.equal(e.body_sha256, 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
});

test('response hop-by-hop headers are removed, others forwarded, Set-Cookie kept apart', async () => {
  const { res } = await rawExchange(sy.port, `GET /h/hop HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.equal(res.status, 200);
  const hs = res.headers;
  assert.deepEqual(headerValues(hs, 'set-cookie'), ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
  assert.deepEqual(headerValues(hs, 'x-custom-resp'), ['kept']);
  assert.deepEqual(headerValues(hs, 'cache-control'), ['no-store']);
  for (const h of ['x-hop-secret', 'keep-alive', 'proxy-connection', 'trailer', 'upgrade']) {
    assert.ok(!names(hs).includes(h), `${h} reached the client: ${JSON.stringify(hs)}`);
  }
  for (const v of headerValues(hs, 'connection')) assert.ok(!/x-hop-secret/i.test(v), `Connection: ${v}`);
  assert.equal(rawJson(res).url, '/h/hop');
});

test("the backend's Keep-Alive header does not reach the client", async () => {
  const { res } = await rawExchange(sy.port, `GET /h/ka HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.equal(res.status, 200);
  // node's http server sends "Keep-Alive: timeout=120" on every answer
  assert.ok(!headerValues(res.headers, 'keep-alive').some((v) => /timeout=120/.test(v)), JSON.stringify(res.headers));
  assert.deepEqual(headerValues(res.headers, 'x-echo-name'), ['h']);
});
