// Every answer carries X-Request-Id, proxied or made by switchyard itself:
// the client's own when well-formed, else one switchyard made (also sent
// upstream in place of the malformed one); error log lines about a request
// carry the same id as request_id.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, eventually, jsonLines, headerValues, freePort } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

let echo, sy, deadPort;

before(async () => {
  echo = await startEcho({ name: 'rid' });
  deadPort = await freePort(); // nothing listens: connect is refused
  sy = await startSwitchyard({
    policy: makePolicy({ ports: [echo.port, deadPort] }),
    routes: [route('/api', echo.port), route('/dead', deadPort)],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

test('a proxied answer echoes a well-formed client id', async () => {
  const r = await get(sy, '/api/x', { 'X-Request-Id': 'client-id-1' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-request-id'], 'client-id-1');
  assert.deepEqual(headerValues(r.json().headers, 'x-request-id'), ['client-id-1']);
});

test('a proxied answer without a client id carries the one sent upstream', async () => {
  const r = await get(sy, '/api/x');
  const sent = headerValues(r.json().headers, 'x-request-id');
  assert.equal(sent.length, 1);
  assert.equal(r.headers['x-request-id'], sent[0]);
});

test('a malformed client id is replaced, upstream and in the answer', async () => {
  const bad = 'has spaces and "quotes"';
  const r = await get(sy, '/api/x', { 'X-Request-Id': bad });
  const sent = headerValues(r.json().headers, 'x-request-id');
  assert.equal(sent.length, 1, JSON.stringify(sent));
  assert.notEqual(sent[0], bad);
  assert.equal(r.headers['x-request-id'], sent[0]);
  const long = 'a'.repeat(65);
  const r2 = await get(sy, '/api/x', { 'X-Request-Id': long });
  assert.notEqual(r2.headers['x-request-id'], long);
  assert.ok(r2.headers['x-request-id']);
});

test("switchyard's own answers carry X-Request-Id", async () => {
  const r = await get(sy, '/nowhere', { 'X-Request-Id': 'own-404' });
  assert.equal(r.status, 404);
  assert.equal(r.headers['x-request-id'], 'own-404');
  const r2 = await get(sy, '/nowhere');
  assert.equal(r2.status, 404);
  assert.ok(r2.headers['x-request-id'], JSON.stringify(r2.headers));
  // A request rejected before its head could be read still gets one.
  const { res } = await rawExchange(sy.port, 'GET /api HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
  assert.equal(res.status, 400);
  assert.ok(res.header('x-request-id')?.length, JSON.stringify(res.headers));
});

test('an upstream connect failure is logged with the request id', async () => {
  const r = await get(sy, '/dead/x', { 'X-Request-Id': 'dead-1' });
  assert.equal(r.status, 502);
  assert.equal(r.headers['x-request-id'], 'dead-1');
  await eventually(
    () => jsonLines(sy.stderr()).find((l) => l.level !== 'info' && /upstream/.test(l.msg) && l.request_id === 'dead-1'),
    { what: 'an error log line with request_id dead-1' },
  );
});

test('counts in the config lines are JSON numbers', async () => {
  const line = await eventually(() => jsonLines(sy.stderr()).find((l) => 'active_routes' in l), { what: 'a config load line' });
  assert.equal(typeof line.active_routes, 'number', JSON.stringify(line));
  assert.equal(line.active_routes, 2);
  assert.equal(typeof line.generation, 'number', JSON.stringify(line));
  assert.equal(typeof line.rejected_routes, 'number');
  const fd = jsonLines(sy.stderr()).find((l) => 'max_connections_per_worker' in l);
  assert.equal(typeof fd?.max_connections_per_worker, 'number', JSON.stringify(fd));
});
