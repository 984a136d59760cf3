// Issue 10: trust between teams. Destinations bind the route paths and the
// auth policies that may use them (allowed_paths, allowed_auth); a route
// breaking a binding is rejected like any other (owns its path, 502,
// /config and the log say which binding and which value, `check` exits 1,
// `routes put --check-policy` refuses it and writes nothing), against files
// and against DynamoDB (dynalite behind the verifying front). Every route
// change is on record (one "route change" log line each, a metric,
// changed_at in /config). `check` reports every problem of a bad policy in
// one run, and a destination written as an address the guard always
// refuses is refused at load in any spelling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import {
  startSwitchyard, makePolicy, get, adminGet, eventually, jsonLines, parseMetrics, runCli, tempDir,
  writeJsonAtomic, binAvailable, BIN, SLOW, REPO, sanitizerReport,
} from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, startSwitchyardAws, cleanAwsEnv,
} from './lib/aws-stores.mjs';
import { ScanCommand } from '@aws-sdk/client-dynamodb';

let echo, dir;
const running = [];

before(async () => {
  echo = await startEcho({ name: 'bind' });
  dir = tempDir('sy-bind-');
});

after(async () => {
  for (const sy of running) await sy.stopClean();
  await echo?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// Two teams' destinations on the same loopback backend (told apart by host
// name), one bound, one left unbound, and one bound wildcard destination.
function teamPolicy(port, { bindUsers = true } = {}) {
  const users = { scheme: 'http', host: 'users.internal.example', port, connect_to: `127.0.0.1:${port}` };
  if (bindUsers) Object.assign(users, { allowed_paths: ['/users'], allowed_auth: ['users-auth'] });
  return makePolicy({
    destinations: [
      users,
      { scheme: 'http', host: 'orders.internal.example', port, connect_to: `127.0.0.1:${port}`, allowed_paths: ['/orders'], allowed_auth: ['public'] },
      { scheme: 'http', host: '*.svc.internal.example', port, connect_to: `127.0.0.1:${port}`, allowed_paths: ['/svc'], allowed_auth: ['public', 'users-auth'] },
      { scheme: 'http', host: 'legacy.internal.example', port, connect_to: `127.0.0.1:${port}` },
    ],
    auth_policies: { public: { type: 'none' }, 'users-auth': { type: 'none' } },
    default_auth: 'public',
  });
}

const usersTarget = (port, base = '') => `http://users.internal.example:${port}${base}`;
const ordersTarget = (port) => `http://orders.internal.example:${port}`;

function goodRoutes(port) {
  return [
    { path: '/users', target: usersTarget(port, '/prod'), auth: 'users-auth', owner: 'users-team' },
    { path: '/users/v2', target: usersTarget(port), auth: 'users-auth', owner: 'users-team' },
    { path: '/orders', target: ordersTarget(port), owner: 'orders-team' },
    { path: '/svc/billing', target: `http://billing.svc.internal.example:${port}`, owner: 'billing-team' },
    { path: '/legacy', target: `http://legacy.internal.example:${port}`, auth: 'users-auth' },
  ];
}

// The three ways to break the users destination's bindings.
function breakingRoutes(port) {
  return [
    // The attack: the orders pipeline publishes the users API under its own path.
    { path: '/orders/leak', target: usersTarget(port, '/prod'), auth: 'users-auth', owner: 'orders-team', binding: 'allowed_paths', value: '/orders/leak' },
    // Segment boundary: /usersx is not under /users.
    { path: '/usersx', target: usersTarget(port), auth: 'users-auth', binding: 'allowed_paths', value: '/usersx' },
    // Right path, wrong auth (named).
    { path: '/users/open', target: usersTarget(port), auth: 'public', binding: 'allowed_auth', value: "'public'" },
    // Right path, no auth: judged by default_auth (public).
    { path: '/users/default', target: usersTarget(port), binding: 'allowed_auth', value: "'public' (the default_auth)" },
    // A wildcard destination's bindings hold for every host under it.
    { path: '/billing', target: `http://billing.svc.internal.example:${port}`, binding: 'allowed_paths', value: '/billing' },
  ];
}

const strip = ({ binding, value, ...r }) => r;

function files(name, policy, routes) {
  const p = path.join(dir, `${name}-policy.json`);
  const r = path.join(dir, `${name}-routes.json`);
  writeJsonAtomic(p, policy);
  writeJsonAtomic(r, routes);
  return [p, r];
}

// Asynchronous: the echo backend and the verifying fronts live in this process.
function run(args, env) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env || process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60000 * SLOW);
    p.on('exit', (code) => {
      clearTimeout(timer);
      const report = sanitizerReport(stderr);
      if (report) throw new Error(`sanitizer report from switchyard ${args.join(' ')}:\n${report}`);
      resolve({ code, stdout, stderr });
    });
  });
}

async function configRejected(sy) {
  const res = await adminGet(sy, '/config');
  assert.equal(res.status, 200);
  return Object.fromEntries(res.json().rejected_routes.map((r) => [r.path, r.reason]));
}

test('bound and unbound destinations serve routes within their bindings; check warns about the unbound one', { skip: !binAvailable() }, async () => {
  const policy = teamPolicy(echo.port);
  const sy = await startSwitchyard({ policy, routes: goodRoutes(echo.port) });
  running.push(sy);
  for (const p of ['/users/1', '/users/v2/1', '/orders/1', '/svc/billing/1', '/legacy/1']) {
    const r = await get(sy, p);
    assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`);
  }
  assert.equal((await get(sy, '/users/1')).json().url, '/prod/users/1');
  const config = (await adminGet(sy, '/config')).json();
  assert.deepEqual(config.rejected_routes, []);
  const byHost = Object.fromEntries(config.destinations.map((d) => [d.host, d]));
  assert.deepEqual(byHost['users.internal.example'].allowed_paths, ['/users']);
  assert.deepEqual(byHost['users.internal.example'].allowed_auth, ['users-auth']);
  assert.equal(byHost['legacy.internal.example'].allowed_paths, null);
  assert.equal(byHost['legacy.internal.example'].allowed_auth, null);

  const [p, r] = files('good', policy, goodRoutes(echo.port));
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  const warnings = res.stderr.split('\n').filter((l) => l.includes('warning:'));
  assert.equal(warnings.length, 1, res.stderr);
  assert.match(warnings[0], /destinations\[3\] \(http:\/\/legacy\.internal\.example:\d+\) has no allowed_paths and allowed_auth/);
  const json = JSON.parse(runCli(['check', '--policy', p, '--routes', r, '--json']).stdout);
  assert.equal(json.ok, true);
  assert.equal(json.warnings.length, 1);
});

test('a route breaking a binding: 502, /config and the log name the binding and the value, check exits 1', { skip: !binAvailable() }, async () => {
  const policy = teamPolicy(echo.port);
  const bad = breakingRoutes(echo.port);
  const routes = [...goodRoutes(echo.port), ...bad.map(strip)];
  const sy = await startSwitchyard({ policy, routes });
  running.push(sy);
  const before = echo.stats.requests;
  const reasons = await configRejected(sy);
  for (const b of bad) {
    const r = await get(sy, `${b.path}/x`);
    assert.equal(r.status, 502, `${b.path}: ${r.status} ${r.text}`);
    assert.match(r.json().message, /^route rejected/);
    const reason = reasons[b.path];
    assert.ok(reason, `${b.path} not among the rejected routes in /config`);
    assert.ok(reason.includes(b.binding), `${b.path}: reason "${reason}" does not name ${b.binding}`);
    assert.ok(reason.includes(b.value), `${b.path}: reason "${reason}" does not name ${b.value}`);
    const logged = jsonLines(sy.stderr()).find((l) => l.msg === 'route rejected' && l.path === b.path);
    assert.ok(logged && logged.reason === reason, `${b.path}: no log line with the reason`);
  }
  assert.equal(echo.stats.requests, before, 'a route breaking a binding reached the backend');
  // The good routes still serve next to them.
  assert.equal((await get(sy, '/users/1')).status, 200);

  const [p, r] = files('bad', policy, routes);
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 1, res.stdout + res.stderr);
  for (const b of bad) assert.match(res.stdout, new RegExp(`rejected  ${b.path}: .*${b.binding}`));
});

test('routes put --check-policy refuses a route breaking a binding (exit 1) and writes nothing', { skip: !binAvailable() }, async () => {
  const [p, r] = files('put', teamPolicy(echo.port), goodRoutes(echo.port));
  const original = fs.readFileSync(r, 'utf8');
  for (const b of breakingRoutes(echo.port)) {
    const args = ['routes', 'put', '--routes', r, '--path', b.path, '--target', b.target, '--check-policy', p];
    if (b.auth) args.push('--auth', b.auth);
    const res = runCli(args);
    assert.equal(res.code, 1, `${b.path}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, new RegExp(b.binding));
    assert.equal(fs.readFileSync(r, 'utf8'), original, `${b.path}: the routes file changed`);
  }
  const ok = runCli(['routes', 'put', '--routes', r, '--path', '/users/new', '--target', usersTarget(echo.port), '--auth', 'users-auth', '--check-policy', p]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(JSON.parse(fs.readFileSync(r, 'utf8')).some((x) => x.path === '/users/new'));
  // Without bindings the destination behaves as before: the same route is accepted.
  const [p2, r2] = files('put-unbound', teamPolicy(echo.port, { bindUsers: false }), []);
  const leak = runCli(['routes', 'put', '--routes', r2, '--path', '/orders/leak', '--target', usersTarget(echo.port), '--auth', 'public', '--check-policy', p2]);
  assert.equal(leak.code, 0, leak.stderr);
});

const changes = (sy) => jsonLines(sy.stderr()).filter((l) => l.msg === 'route change');

test('every route change is on record: added, changed, removed, rejected, accepted again', { skip: !binAvailable() }, async () => {
  const port = echo.port;
  const base = [
    { path: '/users', target: usersTarget(port), auth: 'users-auth', owner: 'users-team' },
    { path: '/orders', target: ordersTarget(port), owner: 'orders-team' },
    { path: '/svc/a', target: `http://a.svc.internal.example:${port}`, owner: 'a-team' },
  ];
  const sy = await startSwitchyard({ policy: teamPolicy(port), routes: base });
  running.push(sy);
  // The first load of a process writes no per-route lines (everything is new to it).
  assert.deepEqual(changes(sy), []);
  const firstConfig = (await adminGet(sy, '/config')).json();
  const changedAt0 = Object.fromEntries(firstConfig.active_routes.map((r) => [r.path, r.changed_at]));
  assert.ok(changedAt0['/users'] && changedAt0['/orders'], JSON.stringify(firstConfig.active_routes));

  // Add one, change one, remove one, leave one alone.
  await new Promise((r) => setTimeout(r, 1100)); // changed_at has one-second resolution
  writeJsonAtomic(sy.routesFile, [
    { path: '/users', target: usersTarget(port, '/v2'), auth: 'users-auth', owner: 'users-team' },
    { path: '/orders', target: ordersTarget(port), owner: 'orders-team' },
    { path: '/svc/b', target: `http://b.svc.internal.example:${port}`, owner: 'b-team' },
  ]);
  await eventually(() => changes(sy).length >= 3, { what: 'three route change lines' });
  const [added] = changes(sy).filter((l) => l.change === 'added');
  assert.equal(added.path, '/svc/b');
  assert.equal(added.owner, 'b-team');
  assert.equal(added.target, `http://b.svc.internal.example:${port}`);
  assert.equal(added.auth, 'public');
  const [changed] = changes(sy).filter((l) => l.change === 'changed');
  assert.equal(changed.path, '/users');
  assert.equal(changed.fields, 'target');
  assert.equal(changed.old_target, usersTarget(port));
  assert.equal(changed.new_target, usersTarget(port, '/v2'));
  assert.equal(changed.owner, 'users-team');
  assert.equal(changed.auth, 'users-auth');
  const [removed] = changes(sy).filter((l) => l.change === 'removed');
  assert.equal(removed.path, '/svc/a');
  assert.equal(removed.owner, 'a-team');
  assert.ok(!changes(sy).some((l) => l.path === '/orders'), 'an unchanged route was logged');
  const config = (await adminGet(sy, '/config')).json();
  const changedAt = Object.fromEntries(config.active_routes.map((r) => [r.path, r.changed_at]));
  assert.equal(changedAt['/orders'], changedAt0['/orders'], 'an unchanged route kept its changed_at');
  assert.ok(changedAt['/users'] > changedAt0['/users'], `changed_at moved: ${changedAt0['/users']} -> ${changedAt['/users']}`);

  // Newly rejected: the orders pipeline points /orders at the users API.
  const n = changes(sy).length;
  writeJsonAtomic(sy.routesFile, [
    { path: '/users', target: usersTarget(port, '/v2'), auth: 'users-auth', owner: 'users-team' },
    { path: '/orders', target: usersTarget(port), owner: 'orders-team' },
    { path: '/svc/b', target: `http://b.svc.internal.example:${port}`, owner: 'b-team' },
  ]);
  await eventually(() => changes(sy).length >= n + 2, { what: 'changed + rejected lines' });
  const later = changes(sy).slice(n);
  const ch = later.find((l) => l.change === 'changed');
  assert.equal(ch.path, '/orders');
  assert.equal(ch.fields, 'target');
  assert.equal(ch.new_target, usersTarget(port));
  const rej = later.find((l) => l.change === 'rejected');
  assert.equal(rej.path, '/orders');
  assert.equal(rej.level, 'warn');
  assert.equal(rej.old_state, 'active');
  assert.match(rej.reason, /allowed_paths \[\/users\]/);
  assert.equal((await get(sy, '/orders/1')).status, 502);

  // Accepted again: operations widen the users binding to /orders (a policy change).
  const m = changes(sy).length;
  const widened = teamPolicy(port);
  widened.destinations[0].allowed_paths = ['/users', '/orders'];
  widened.destinations[0].allowed_auth = ['users-auth', 'public'];
  writeJsonAtomic(sy.policyFile, widened);
  await eventually(() => changes(sy).slice(m).some((l) => l.change === 'accepted'), { what: 'accepted line' });
  const acc = changes(sy).slice(m).find((l) => l.change === 'accepted');
  assert.equal(acc.path, '/orders');
  assert.match(acc.old_reason, /allowed_paths/);
  assert.equal((await get(sy, '/orders/1')).status, 200);

  const metrics = parseMetrics((await adminGet(sy, '/metrics')).text).filter((x) => x.name === 'switchyard_route_changes_total');
  const count = Object.fromEntries(metrics.map((x) => [x.labels.change, x.value]));
  assert.deepEqual(count, { added: 1, changed: 2, removed: 1, rejected: 1, accepted: 1 });
});

test('check reports every problem of a bad policy in one run, each with its location, then exits 2', { skip: !binAvailable() }, async () => {
  const policy = teamPolicy(echo.port);
  policy.listen_domains.push('http://bad');
  policy.destinations[0].port = 0;
  policy.destinations[1].allowed_paths = ['orders'];
  policy.destinations[2].allowed_auth = ['nobody'];
  policy.destinations.push({ host: '2852039166' });
  policy.timeouts = { client_idle_ms: -1 };
  policy.typo_field = true;
  const [p, r] = files('multi', policy, []);
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 2, res.stdout + res.stderr);
  const lines = res.stderr.split('\n').filter((l) => l.startsWith(`switchyard: ${p}: `));
  const expected = [
    'typo_field: unknown field',
    'listen_domains[2]: expected a domain name',
    'destinations[0].port: expected an integer 1-65535',
    'destinations[1].allowed_paths[0]: ',
    'destinations[4].host: "2852039166" is 169.254.169.254, a cloud metadata address',
    "destinations[2].allowed_auth[0]: auth policy 'nobody' is not defined",
    'timeouts.client_idle_ms: expected an integer',
  ];
  assert.equal(lines.length, expected.length, res.stderr);
  for (const [i, e] of expected.entries()) assert.ok(lines[i].startsWith(`switchyard: ${p}: ${e}`), `line ${i}: ${lines[i]} (expected ${e})`);
  assert.match(res.stderr, /7 problems/);
  const json = JSON.parse(runCli(['check', '--policy', p, '--routes', r, '--json']).stdout);
  assert.equal(json.ok, false);
  assert.equal(json.errors.length, expected.length);
});

test('a destination at an address the guard always refuses is refused at load, in every spelling', { skip: !binAvailable() }, async () => {
  const spellings = [
    ['169.254.169.254', 'cloud metadata'], ['2852039166', 'cloud metadata'], ['0xa9fea9fe', 'cloud metadata'],
    ['0xA9.0xFE.0xA9.0xFE', 'cloud metadata'], ['0251.0376.0251.0376', 'cloud metadata'], ['169.254.43518', 'cloud metadata'],
    ['169.254.170.2', 'cloud metadata'], ['[::ffff:169.254.169.254]', 'cloud metadata'], ['[::ffff:a9fe:a9fe]', 'cloud metadata'],
    ['[fd00:ec2::254]', 'cloud metadata'], ['169.254.10.10', 'link-local'], ['[fe80::1]', 'link-local'],
    ['0.0.0.0', 'unspecified'], ['0', 'unspecified'], ['0.1.2.3', 'unspecified'],
  ];
  for (const [host, kind] of spellings) {
    for (const field of ['host', 'connect_to']) {
      const d = field === 'host' ? { scheme: 'http', host, port: 80 } : { scheme: 'http', host: 'meta.internal.example', port: 80, connect_to: `${host}:80` };
      const [p, r] = files('meta', makePolicy({ destinations: [d] }), []);
      const res = runCli(['check', '--policy', p, '--routes', r]);
      assert.equal(res.code, 2, `${field} ${host}: ${res.stdout}${res.stderr}`);
      assert.ok(res.stderr.includes(`destinations[0].${field}: "${host}" is `), `${field} ${host}: ${res.stderr}`);
      assert.ok(res.stderr.includes(`${kind} address`), `${field} ${host}: ${res.stderr}`);
    }
  }
  // serve refuses to start on it too (exit 2), instead of loading and failing every request.
  const [p, r] = files('meta-serve', makePolicy({ destinations: [{ scheme: 'http', host: '0xa9fea9fe', port: 80 }] }), []);
  const res = await run(['serve', '--policy', p, '--routes', r, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  assert.equal(res.code, 2, res.stderr);
  assert.match(res.stderr, /cloud metadata address/);
});

/* ---- the same against DynamoDB (routes) and S3 (policy) ---- */

const awsSkip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;

test('against DynamoDB: a route breaking a binding is 502 with the reason, check exits 1, routes put --check-policy writes nothing', { skip: awsSkip }, async () => {
  const CREDS = { accessKeyId: 'AKIDBINDINGS', secretAccessKey: 'bindings-secret' };
  const TABLE = 'bound-routes';
  const [ddbStore, s3Store] = await Promise.all([startStore('dynalite'), startStore('s3rver')]);
  const keys = new Map([[CREDS.accessKeyId, CREDS]]);
  const ddbFront = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port, keys });
  const s3Front = await startVerifyingFront({ service: 's3', targetPort: s3Store.port, keys });
  let sy;
  try {
    const ddb = dynamoClient(ddbStore);
    await createRoutesTable(ddb, TABLE);
    await createBucket(s3Client(s3Store), 'cfg');
    await putPolicy(s3Client(s3Store), 'cfg', 'policy.json', teamPolicy(echo.port));
    const env = cleanAwsEnv({
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
      AWS_ENDPOINT_URL_S3: s3Front.url,
      AWS_ENDPOINT_URL_DYNAMODB: ddbFront.url,
    });
    for (const r of goodRoutes(echo.port)) await putRoute(ddb, TABLE, r);
    const policyUri = 's3://cfg/policy.json';
    const routesUri = `dynamodb://${TABLE}`;

    // The pipeline's own check refuses every breaking route and writes nothing.
    const count = async () => (await ddb.send(new ScanCommand({ TableName: TABLE }))).Items.length;
    const before = await count();
    for (const b of breakingRoutes(echo.port)) {
      const args = ['routes', 'put', '--routes', routesUri, '--path', b.path, '--target', b.target, '--check-policy', policyUri];
      if (b.auth) args.push('--auth', b.auth);
      const res = await run(args, env);
      assert.equal(res.code, 1, `${b.path}: ${res.stdout}${res.stderr}`);
      assert.match(res.stderr, new RegExp(b.binding));
    }
    assert.equal(await count(), before, 'a refused route was written to the table');

    // A pipeline that skips the check (writes the item itself) still can't serve it.
    sy = await startSwitchyardAws({ policyUri, routesUri, env });
    assert.equal((await get(sy, '/users/1')).status, 200);
    for (const b of breakingRoutes(echo.port)) await putRoute(ddb, TABLE, strip(b));
    await eventually(async () => Object.keys(await configRejected(sy)).length === breakingRoutes(echo.port).length, { what: 'rejections in /config' });
    const reasons = await configRejected(sy);
    for (const b of breakingRoutes(echo.port)) {
      const r = await get(sy, `${b.path}/x`);
      assert.equal(r.status, 502, `${b.path}: ${r.status}`);
      assert.ok(reasons[b.path].includes(b.binding) && reasons[b.path].includes(b.value), `${b.path}: ${reasons[b.path]}`);
    }
    // The publish that brought them in logged each as added (and rejected).
    const added = jsonLines(sy.stderr()).filter((l) => l.msg === 'route change' && l.change === 'added');
    assert.deepEqual(added.map((l) => l.path).sort(), breakingRoutes(echo.port).map((b) => b.path).sort());
    assert.ok(added.every((l) => l.state === 'rejected' && l.reason));

    const check = await run(['check', '--policy', policyUri, '--routes', routesUri], env);
    assert.equal(check.code, 1, check.stdout + check.stderr);
    for (const b of breakingRoutes(echo.port)) assert.match(check.stdout, new RegExp(`rejected  ${b.path}: .*${b.binding}`));
    assert.deepEqual(ddbFront.stats.reasons, []);
    assert.deepEqual(s3Front.stats.reasons, []);
  } finally {
    await sy?.stopClean();
    await ddbFront.close();
    await s3Front.close();
    await ddbStore.kill();
    await s3Store.kill();
  }
});

test('the example and deploy policies bind every destination (check prints no warning)', { skip: !binAvailable() }, () => {
  for (const d of ['examples', 'deploy/config']) {
    const policyFile = path.join(REPO, d, 'policy.json');
    for (const dst of JSON.parse(fs.readFileSync(policyFile, 'utf8')).destinations) {
      assert.ok(dst.allowed_paths?.length > 0 && dst.allowed_auth?.length > 0, `${d}: ${dst.host} is unbound`);
    }
    const res = runCli(['check', '--policy', policyFile, '--routes', path.join(REPO, d, 'routes.json')]);
    assert.ok(res.code === 0 || res.code === 1, `${d}: ${res.stderr}`);
    assert.doesNotMatch(res.stderr, /warning/, `${d}: ${res.stderr}`);
  }
});
