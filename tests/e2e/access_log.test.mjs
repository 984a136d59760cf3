// SPEC §7: the access log is one JSON object per request with the listed
// fields, written to a file, to stdout with "-", or not at all with "off";
// it never contains a password, token or credential.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, eventually, jsonLines, headerValues, sleep, HOST } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

const BCRYPT = '$2y$10$abcdefghijklmnopqrstuu5Ga2TgB8KGFmy1p8D4y1YWs1l8cGpPK';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0b3Atc2VjcmV0In0.c2lnbmF0dXJlLXNlY3JldA';
const BASIC = 'YWxpY2U6aHVudGVyMg=='; // alice:hunter2
let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'log' });
  sy = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: { public: { type: 'none' }, partners: { type: 'basic', realm: 'partners', users: { alice: BCRYPT } } },
    }),
    routes: [route('/api', echo.port), route('/partners', echo.port, { auth: 'partners' })],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

const readLog = () => (fs.existsSync(sy.accessLog) ? jsonLines(fs.readFileSync(sy.accessLog, 'utf8')) : []);
const find = (pred) => eventually(() => readLog().find(pred), { what: 'the access log line' });

test('one JSON line per request with the SPEC fields', async () => {
  const r = await get(sy, '/api/logged?q=1', { 'X-Request-Id': 'log-test-1', Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'text/plain' }, { method: 'POST', body: 'hello' });
  assert.equal(r.status, 200);
  const line = await find((l) => l.request_id === 'log-test-1');
  for (const f of ['time', 'request_id', 'client_ip', 'method', 'host', 'path', 'status', 'route', 'upstream', 'upstream_status', 'bytes_in', 'bytes_out', 'duration_ms', 'upstream_ms', 'auth']) {
    assert.ok(f in line, `field ${f} missing: ${JSON.stringify(line)}`);
  }
  assert.equal(line.method, 'POST');
  assert.equal(line.client_ip, '127.0.0.1');
  assert.match(String(line.host), /^api\.example\.com/);
  assert.equal(line.path, '/api/logged?q=REDACTED'); // query values never logged (SPEC §7)
  assert.equal(line.status, 200);
  assert.equal(line.upstream_status, 200);
  assert.equal(line.route, '/api');
  assert.match(String(line.upstream), new RegExp(`127\\.0\\.0\\.1:${echo.port}`));
  assert.equal(typeof line.duration_ms, 'number');
  assert.ok(line.bytes_in >= 5, `bytes_in ${line.bytes_in}`);
  assert.ok(line.bytes_out >= r.body.length, `bytes_out ${line.bytes_out} < body ${r.body.length}`);
  assert.ok(!Number.isNaN(Date.parse(line.time)) || typeof line.time === 'number', `time ${line.time}`);
  assert.ok(!line.error, `error set on a forwarded request: ${line.error}`);
  assert.match(JSON.stringify(line.auth), /public/);
});

test('the request id in the log is the one sent upstream', async () => {
  const r = await get(sy, '/api/rid');
  const sent = headerValues(r.json().headers, 'x-request-id')[0];
  assert.ok(sent);
  await find((l) => l.request_id === sent && l.status === 200);
});

test('answers switchyard makes itself carry an error and no upstream status', async () => {
  await get(sy, '/nowhere', { 'X-Request-Id': 'log-test-404' });
  const line = await find((l) => l.request_id === 'log-test-404');
  assert.equal(line.status, 404);
  assert.ok(typeof line.error === 'string' && line.error.length > 0, JSON.stringify(line));
  assert.ok(line.upstream_status === undefined || line.upstream_status === null || line.upstream_status === 0, JSON.stringify(line));
});

test('a malformed request is logged with status 400', async () => {
  await rawExchange(sy.port, `GET /api/%2e%2e/x HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: log-test-400\r\n\r\n`);
  await eventually(() => readLog().some((l) => l.status === 400), { what: 'a 400 line' });
});

test('tokens and credentials never appear in the log', async () => {
  await get(sy, '/api/tok', { Authorization: `Bearer ${TOKEN}`, 'X-Request-Id': 'log-test-tok' });
  await get(sy, '/partners/x', { Authorization: `Basic ${BASIC}`, 'X-Request-Id': 'log-test-basic' });
  await find((l) => l.request_id === 'log-test-basic');
  await find((l) => l.request_id === 'log-test-tok');
  await sleep(200);
  const text = fs.readFileSync(sy.accessLog, 'utf8') + sy.stderr() + sy.stdout();
  for (const secret of [TOKEN, TOKEN.split('.')[2], BASIC, 'hunter2', BCRYPT]) {
    assert.ok(!text.includes(secret), `${secret} appears in the logs`);
  }
  const basicLine = readLog().find((l) => l.request_id === 'log-test-basic');
  assert.equal(basicLine.status, 401);
});

test('every line is valid JSON', async () => {
  const lines = readLog();
  assert.ok(lines.length >= 5);
  for (const l of lines) assert.ok(!l._raw, `not JSON: ${l._raw}`);
});

test('--access-log - writes to stdout, off writes nothing', async () => {
  const out = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/api', echo.port)], accessLog: '-' });
  const off = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/api', echo.port)], accessLog: 'off' });
  try {
    await get(out, '/api/x', { 'X-Request-Id': 'stdout-line' });
    await get(off, '/api/x', { 'X-Request-Id': 'off-line' });
    await eventually(() => jsonLines(out.stdout()).some((l) => l.request_id === 'stdout-line'), { what: 'the stdout access log line' });
    await sleep(300);
    assert.ok(!off.stdout().includes('off-line'), 'access log off still wrote a line');
    assert.ok(!off.stderr().includes('off-line'), 'access log off wrote to stderr');
    assert.ok(!out.stderr().includes('"stdout-line"'), 'the access log went to stderr');
  } finally {
    await out.stopClean();
    await off.stopClean();
  }
});
