// Every status code of SPEC §5 a client can meet with file-based config:
// 200, 400 (malformed messages and paths), 404, 405 + Allow, 413, 414, 421,
// 431, 502 (rejected route, closed backend), 504; and that every answer
// switchyard makes itself is JSON {"message": ...}.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, dest, freePort, get, errorMessage, HOST, SLOW, sleep } from './lib/harness.mjs';
import { RawConn, rawExchange, rawJson } from './lib/rawhttp.mjs';
import { malformedMessages, badPaths, badHosts, pathRequest, badBodies } from './lib/malformed.mjs';

const MAX_BODY = 1024 * 1024;
let echo, sy, closedPort, strayPort;

before(async () => {
  echo = await startEcho({ name: 'status' });
  closedPort = await freePort(); // nothing listens here
  strayPort = await freePort(); // in no destination
  sy = await startSwitchyard({
    policy: makePolicy({
      destinations: [dest(echo.port), dest(closedPort)],
      limits: { max_request_line_bytes: 4096, max_header_bytes: 8192, max_headers: 40, max_body_bytes: MAX_BODY },
      timeouts: { upstream_response_ms: 1000 * SLOW, upstream_connect_ms: 2000 },
    }),
    routes: [
      route('/api', echo.port),
      route('/api/rejected', strayPort),
      route('/methods', echo.port, { methods: ['GET', 'POST'] }),
      route('/down', closedPort),
      route('/slow', echo.port),
    ],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

function assertJsonError(res, status) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  return errorMessage(res);
}

test('200 for a routed request', async () => {
  const r = await get(sy, '/api/hello');
  assert.equal(r.status, 200);
  assert.equal(r.json().url, '/api/hello');
});

test('400 for each malformed message', async () => {
  const failures = [];
  for (const [name, bytes] of malformedMessages('/api')) {
    const { res } = await rawExchange(sy.port, bytes, { endWrite: true });
    if (!res) failures.push(`${name}: connection closed without an answer`);
    else if (res.status !== 400) failures.push(`${name}: got ${res.status} ${res.text || ''}`);
    else {
      try {
        errorMessage({ status: res.status, headers: { 'content-type': res.header('content-type') }, text: res.text });
      } catch (e) {
        failures.push(`${name}: ${e.message}`);
      }
    }
  }
  assert.deepEqual(failures, []);
});

test('400 or 421 for a Host that is not a valid listen domain', async () => {
  const failures = [];
  for (const [name, bytes] of badHosts('/api')) {
    const { res } = await rawExchange(sy.port, bytes, { endWrite: true });
    if (!res || (res.status !== 400 && res.status !== 421)) failures.push(`${name}: ${res ? res.status : 'no answer'}`);
  }
  assert.deepEqual(failures, []);
});

test('400 for each bad path', async () => {
  const failures = [];
  for (const p of badPaths('/api')) {
    const { res } = await rawExchange(sy.port, pathRequest(p), { endWrite: true });
    if (!res) failures.push(`${JSON.stringify(p)}: connection closed without an answer`);
    else if (res.status !== 400) failures.push(`${JSON.stringify(p)}: got ${res.status}`);
    else if (!/^application\/json/i.test(res.header('content-type') || '')) failures.push(`${JSON.stringify(p)}: Content-Type ${res.header('content-type')}`);
  }
  assert.deepEqual(failures, []);
});

test('400 or a closed connection for a broken chunked body', async () => {
  for (const [name, bytes] of badBodies('/api')) {
    const { res } = await rawExchange(sy.port, bytes, { endWrite: true, waitClose: 5000 * SLOW });
    assert.ok(!res || res.status === 400, `${name}: got ${res && res.status} ${res && res.text}`);
  }
});

test('valid percent-encoded UTF-8 passes encoded; encoded unreserved characters are decoded (issue 9)', async () => {
  const { res } = await rawExchange(sy.port, pathRequest('/api/caf%c3%a9/%41b'));
  assert.equal(res.status, 200, res.text);
  assert.equal(rawJson(res).url, '/api/caf%C3%A9/Ab');
});

test('404 when no route matches', async () => {
  const r = await get(sy, '/nothing-here');
  const msg = assertJsonError(r, 404);
  assert.ok(msg.length > 0);
  assertJsonError(await get(sy, '/'), 404);
  assertJsonError(await get(sy, '/apix'), 404);
});

test('405 with Allow for a method the route does not allow', async () => {
  const r = await get(sy, '/methods/x', {}, { method: 'DELETE' });
  assertJsonError(r, 405);
  const allow = (r.headers.allow || '').split(',').map((s) => s.trim().toUpperCase());
  assert.ok(allow.includes('GET') && allow.includes('POST'), `Allow: ${r.headers.allow}`);
  assert.ok(!allow.includes('DELETE'));
  assert.equal((await get(sy, '/methods/x', {}, { method: 'POST', body: 'x' })).status, 200);
});

test('413 for a Content-Length over max_body_bytes, without reading the body', async () => {
  const before = echo.stats.requests;
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`POST /api/big HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n`);
    const res = await c.readFinal();
    assert.ok(res, 'no answer');
    assert.equal(res.status, 413, res.text);
    assert.ok(/^application\/json/.test(res.header('content-type')));
  } finally {
    c.close();
  }
  assert.equal(echo.stats.requests, before, 'the backend saw the oversized request');
});

test('413 (not 100 Continue) for Expect: 100-continue with an oversized Content-Length', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`POST /api/big HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: ${MAX_BODY * 4}\r\n\r\n`);
    const res = await c.readResponse();
    assert.ok(res, 'no answer');
    assert.equal(res.status, 413);
  } finally {
    c.close();
  }
});

test('413 or a closed connection when a chunked body grows past max_body_bytes', async () => {
  const c = await RawConn.open(sy.port);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
  try {
    await c.send(`POST /api/growing HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    let sent = 0;
    while (sent < MAX_BODY * 3 && !c.closed && c.buf.length === 0) {
      if (!(await c.send(frame))) break;
      sent += chunk.length;
    }
    if (!c.closed) await c.send('0\r\n\r\n');
    let res = null;
    try {
      res = await c.readFinal({ timeout: 10000 * SLOW });
    } catch (e) {
      if (/timeout/.test(e.message)) throw e;
    }
    assert.ok(res === null || res.status === 413, `got ${res && res.status}: ${res && res.text}`);
  } finally {
    c.close();
  }
  await sleep(200);
  const done = echo.stats.completed.filter((x) => x.url === '/api/growing');
  assert.deepEqual(done, [], 'the backend received a complete oversized body');
});

test('414 for a request line over max_request_line_bytes', async () => {
  const { res } = await rawExchange(sy.port, `GET /api/${'a'.repeat(5000)} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  assert.ok(res, 'no answer');
  assert.equal(res.status, 414);
  assert.ok(/^application\/json/.test(res.header('content-type')));
});

test('431 for a header block over max_header_bytes', async () => {
  const { res } = await rawExchange(sy.port, `GET /api/x HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'b'.repeat(9000)}\r\n\r\n`);
  assert.ok(res, 'no answer');
  assert.equal(res.status, 431);
  assert.ok(/^application\/json/.test(res.header('content-type')));
});

test('431 for more headers than max_headers', async () => {
  let hs = '';
  for (let i = 0; i < 60; i++) hs += `X-H${i}: ${i}\r\n`;
  const { res } = await rawExchange(sy.port, `GET /api/x HTTP/1.1\r\nHost: ${HOST}\r\n${hs}\r\n`);
  assert.ok(res, 'no answer');
  assert.equal(res.status, 431);
});

test('requests just inside the limits pass', async () => {
  const line = `GET /api/${'a'.repeat(3900)} HTTP/1.1`;
  let r = (await rawExchange(sy.port, `${line}\r\nHost: ${HOST}\r\n\r\n`)).res;
  assert.equal(r.status, 200, `a ${line.length}-byte request line with a 4096 limit: ${r.status}`);
  r = (await rawExchange(sy.port, `GET /api/x HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'b'.repeat(6000)}\r\n\r\n`)).res;
  assert.equal(r.status, 200, `a 6000-byte header with an 8192 limit: ${r.status}`);
  let hs = '';
  for (let i = 0; i < 30; i++) hs += `X-H${i}: ${i}\r\n`;
  r = (await rawExchange(sy.port, `GET /api/x HTTP/1.1\r\nHost: ${HOST}\r\n${hs}\r\n`)).res;
  assert.equal(r.status, 200, `31 headers with a limit of 40: ${r.status}`);
  r = (await rawExchange(sy.port, `POST /api/x HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${MAX_BODY}\r\n\r\n${'z'.repeat(MAX_BODY)}`)).res;
  assert.equal(r.status, 200, `a body of exactly max_body_bytes: ${r.status}`);
  assert.equal(rawJson(r).body_bytes, MAX_BODY);
});

test('421 for a Host that is not a listen domain', async () => {
  assertJsonError(await get(sy, '/api/x', {}, { host: 'evil.example.org' }), 421);
  assertJsonError(await get(sy, '/api/x', {}, { host: '127.0.0.1' }), 421);
  assertJsonError(await get(sy, '/api/x', {}, { host: 'apps.example.com' }), 421);
  assertJsonError(await get(sy, '/api/x', {}, { host: 'api.example.com.evil.org' }), 421);
  // a listen domain: case, port and a trailing dot do not matter
  assert.equal((await get(sy, '/api/x', {}, { host: 'API.Example.COM' })).status, 200);
  assert.equal((await get(sy, '/api/x', {}, { host: `${HOST}:8443` })).status, 200);
  assert.equal((await get(sy, '/api/x', {}, { host: `${HOST}.` })).status, 200);
  assert.equal((await get(sy, '/api/x', {}, { host: 'team.apps.example.com' })).status, 200);
});

test('502 for a rejected route, which never falls through to a shorter one', async () => {
  const before = echo.stats.requests;
  for (const p of ['/api/rejected', '/api/rejected/', '/api/rejected/deeper?x=1']) {
    const r = await get(sy, p);
    const msg = assertJsonError(r, 502);
    assert.match(msg, /^route rejected: ./, `message: ${msg}`);
  }
  assert.equal(echo.stats.requests, before, 'a rejected route reached the backend of /api');
  assert.equal((await get(sy, '/api/rejectedx')).status, 200, '/api/rejectedx belongs to /api');
});

test('502 when the backend port is closed', async () => {
  assertJsonError(await get(sy, '/down/x'), 502);
});

test('504 when the backend is slower than upstream_response_ms', async () => {
  const r = await get(sy, `/slow?ms=${4000 * SLOW}`);
  assertJsonError(r, 504);
});
