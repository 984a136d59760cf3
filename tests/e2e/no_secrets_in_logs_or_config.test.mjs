// SPEC §6/§7, issue 9 item 6, issue 10 item 4: query strings go upstream
// untouched but the access log shows only parameter names; a route target
// carrying credentials (userinfo, a query key, a fragment token) is refused
// at load, and none of /config, the error log, `check` (text and --json)
// and `routes list` repeats the secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, adminGet, eventually, jsonLines, runCli, tempDir } from './lib/harness.mjs';

const SECRETS = ['s3cr3t', 'hunter2', 'tok3n', 'fr4g', 'ghp_4bcd', 'k3y'];
const leaks = (text) => SECRETS.filter((s) => text.includes(s));

let echo, sy;
let routes;

before(async () => {
  echo = await startEcho({ name: 'redact' });
  routes = [
    route('/api', echo.port),
    { path: '/userinfo', target: `http://admin:hunter2@127.0.0.1:${echo.port}/x` },
    { path: '/username', target: `http://ghp_4bcd@127.0.0.1:${echo.port}/x` },
    { path: '/query', target: `http://127.0.0.1:${echo.port}/x?api_key=s3cr3t&tok=tok3n` },
    { path: '/fragment', target: `http://127.0.0.1:${echo.port}/x#access_token=fr4g` },
    { path: '/v6', target: `http://user:hunter2@[::1]:${echo.port}/x` },
  ];
  // A jwks_uri with a key in its query (nothing listens on port 1, so the
  // fetch fails and is logged).
  const policy = makePolicy({ ports: [echo.port] });
  policy.auth_policies.keyed = { type: 'jwt', issuer: 'https://issuer.example', audiences: ['a'], jwks_uri: 'https://127.0.0.1:1/jwks.json?key=k3y', algorithms: ['RS256'] };
  sy = await startSwitchyard({ policy, routes, logLevel: 'debug' });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

const readLog = () => (fs.existsSync(sy.accessLog) ? jsonLines(fs.readFileSync(sy.accessLog, 'utf8')) : []);

test('a query secret reaches the backend unchanged and the access log shows only names', async () => {
  const r = await get(sy, '/api/items?api_key=s3cr3t&page=2&flag&empty=', { 'X-Request-Id': 'redact-1' });
  assert.equal(r.status, 200);
  assert.equal(r.json().url, '/api/items?api_key=s3cr3t&page=2&flag&empty=');
  const line = await eventually(() => readLog().find((l) => l.request_id === 'redact-1'), { what: 'the access log line' });
  assert.equal(line.path, '/api/items?api_key=REDACTED&page=REDACTED&REDACTED&empty=');
  assert.match(String(line.upstream), /\/api\/items\?api_key=REDACTED&page=REDACTED&REDACTED&empty=$/);
  assert.deepEqual(leaks(fs.readFileSync(sy.accessLog, 'utf8')), []);
});

test('a refused request with a query secret is logged without it', async () => {
  // 404: no route; the path field is still written, redacted.
  const r = await get(sy, '/nowhere?token=tok3n', { 'X-Request-Id': 'redact-2' });
  assert.equal(r.status, 404);
  const line = await eventually(() => readLog().find((l) => l.request_id === 'redact-2'), { what: 'the access log line' });
  assert.equal(line.path, '/nowhere?token=REDACTED');
  assert.deepEqual(leaks(fs.readFileSync(sy.accessLog, 'utf8')), []);
});

test('targets with credentials are refused, and /config and the log never show them', async () => {
  const c = (await adminGet(sy, '/config')).json();
  const text = JSON.stringify(c);
  assert.deepEqual(leaks(text), [], text);
  const rejected = JSON.stringify(c.rejected_routes ?? c.routes?.rejected ?? c);
  for (const p of ['/userinfo', '/username', '/query', '/fragment', '/v6']) assert.ok(rejected.includes(p), `${p} not rejected: ${rejected}`);
  // The reason still says what was wrong, with the secret replaced.
  assert.match(text, /REDACTED@127\.0\.0\.1/);
  assert.match(text, /api_key=REDACTED/);
  // A rejected route answers 502 and its secret is in no answer either.
  const r = await get(sy, '/userinfo/a');
  assert.equal(r.status, 502);
  assert.deepEqual(leaks(r.text), []);
  await eventually(() => /route rejected/.test(sy.stderr()), { what: 'the "route rejected" log line' });
  assert.deepEqual(leaks(sy.stderr() + sy.stdout()), []);
});

test('a jwks_uri query key is logged redacted', async () => {
  await eventually(() => /jwks fetch failed/.test(sy.stderr()), { what: 'the "jwks fetch failed" log line' });
  assert.match(sy.stderr(), /jwks\.json\?key=REDACTED/);
  assert.deepEqual(leaks(sy.stderr() + sy.stdout()), []);
});

test('check and routes list never print the credentials', () => {
  for (const args of [
    ['check', '--policy', sy.policyFile, '--routes', sy.routesFile],
    ['check', '--json', '--policy', sy.policyFile, '--routes', sy.routesFile],
    ['routes', 'list', '--routes', sy.routesFile],
    ['routes', 'list', '--json', '--routes', sy.routesFile],
  ]) {
    const r = runCli(args);
    assert.ok(r.stdout.length > 0, `${args.join(' ')} printed nothing: ${r.stderr}`);
    assert.match(r.stdout, /REDACTED/, `${args.join(' ')}: ${r.stdout}`);
    assert.deepEqual(leaks(r.stdout + r.stderr), [], `${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  }
  assert.equal(runCli(['check', '--policy', sy.policyFile, '--routes', sy.routesFile]).code, 1);
});

test('routes put refuses a target with credentials without repeating them', () => {
  const dir = tempDir();
  const file = path.join(dir, 'routes.json');
  fs.writeFileSync(file, '[]');
  for (const target of [`http://admin:hunter2@127.0.0.1:${echo.port}/`, `http://127.0.0.1:${echo.port}/?api_key=s3cr3t`]) {
    const r = runCli(['routes', 'put', '--routes', file, '--path', '/x', '--target', target]);
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /REDACTED/);
    assert.deepEqual(leaks(r.stdout + r.stderr), [], r.stdout + r.stderr);
  }
  assert.equal(fs.readFileSync(file, 'utf8'), '[]');
});
