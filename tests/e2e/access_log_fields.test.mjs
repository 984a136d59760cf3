// SPEC §7: the access log carries the client's trace ids (X-Amzn-Trace-Id
// as trace_id, W3C traceparent), its forwarded chain as received
// (forwarded_for), its user agent and the protocol; every value is
// JSON-escaped and length-capped, so a client can't forge fields or
// swell the line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, eventually, jsonLines } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'fields' });
  sy = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/api', echo.port)] });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

const readLog = () => (fs.existsSync(sy.accessLog) ? jsonLines(fs.readFileSync(sy.accessLog, 'utf8')) : []);
const find = (id) => eventually(() => readLog().find((l) => l.request_id === id), { what: `the access log line ${id}` });

test('trace ids, forwarded chain, user agent and protocol are logged', async () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const r = await get(sy, '/api/t', {
    'X-Request-Id': 'fields-1',
    'X-Amzn-Trace-Id': 'Root=1-67891233-abcdef012345678912345678',
    traceparent: tp,
    'X-Forwarded-For': '203.0.113.9, 10.0.0.7',
    'User-Agent': 'fields-test/1.0',
  });
  assert.equal(r.status, 200);
  const line = await find('fields-1');
  assert.equal(line.trace_id, 'Root=1-67891233-abcdef012345678912345678');
  assert.equal(line.traceparent, tp);
  assert.equal(line.forwarded_for, '203.0.113.9, 10.0.0.7');
  assert.equal(line.user_agent, 'fields-test/1.0');
  assert.equal(line.protocol, 'HTTP/1.1');
  assert.equal(line.tls, false);
  assert.equal(line.client_ip, '127.0.0.1');
});

test('absent headers are null; HTTP/1.0 is named', async () => {
  const { res } = await rawExchange(sy.port, 'GET /api/t HTTP/1.0\r\nHost: api.example.com\r\nX-Request-Id: fields-2\r\n\r\n');
  assert.equal(res.status, 200);
  const line = await find('fields-2');
  assert.equal(line.trace_id, null);
  assert.equal(line.traceparent, null);
  assert.equal(line.forwarded_for, null);
  assert.equal(line.user_agent, null);
  assert.equal(line.protocol, 'HTTP/1.0');
});

test('several X-Forwarded-For lines are joined in order', async () => {
  const { res } = await rawExchange(
    sy.port,
    'GET /api/t HTTP/1.1\r\nHost: api.example.com\r\nX-Request-Id: fields-3\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\nConnection: close\r\n\r\n',
  );
  assert.equal(res.status, 200);
  const line = await find('fields-3');
  assert.equal(line.forwarded_for, '198.51.100.1, 198.51.100.2');
});

test('values are escaped and capped: quotes cannot forge fields, a huge value is cut', async () => {
  const ua = 'x", "status": 999, "y": "' + 'u'.repeat(3000);
  const r = await get(sy, '/api/t', { 'X-Request-Id': 'fields-4', 'User-Agent': ua });
  assert.equal(r.status, 200);
  const line = await find('fields-4');
  assert.equal(line.status, 200);
  assert.ok(line.user_agent.startsWith('x", "status": 999'), line.user_agent.slice(0, 40));
  assert.ok(line.user_agent.length <= 512, `user_agent ${line.user_agent.length} bytes`);
  assert.ok(ua.startsWith(line.user_agent));
});
