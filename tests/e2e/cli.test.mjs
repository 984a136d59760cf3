// SPEC §1 command line: `check` exit codes 0/1/2 with messages naming the
// file and the field, `serve` refusing bad usage and unusable files with
// exit 2, `healthcheck`, --version and --help.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { runCli, startSwitchyard, makePolicy, route, tempDir, writeJsonAtomic, freePort, httpRequest, jsonLines, BIN, SLOW } from './lib/harness.mjs';
import { spawn } from 'node:child_process';

let dir, echo;

before(async () => {
  dir = tempDir();
  echo = await startEcho({ name: 'cli' });
});

after(async () => {
  await echo?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function files(name, policy, routes) {
  const p = path.join(dir, `${name}-policy.json`);
  const r = path.join(dir, `${name}-routes.json`);
  writeJsonAtomic(p, policy);
  writeJsonAtomic(r, routes);
  return [p, r];
}

// Runs the binary asynchronously (the echo backend lives in this process).
function runAsync(args, timeoutMs = 30000 * SLOW) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const good = () => makePolicy({ ports: [8081] });

test('check: every route active -> exit 0', () => {
  const [p, r] = files('ok', good(), [route('/orders', 8081), route('/', 8081)]);
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
});

test('check: a rejected route -> exit 1, naming the route and the reason', () => {
  const [p, r] = files('rej', good(), [route('/orders', 8081), route('/stray', 9999), route('/noauth', 8081, { auth: 'ghost' })]);
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 1, res.stdout + res.stderr);
  const out = res.stdout + res.stderr;
  assert.match(out, /\/stray/);
  assert.match(out, /\/noauth/);
  assert.match(out, /ghost|auth/i);
});

test('check --json prints JSON that lists the rejected route', () => {
  const [p, r] = files('json', good(), [route('/orders', 8081), route('/stray', 9999)]);
  const res = runCli(['check', '--policy', p, '--routes', r, '--json']);
  assert.equal(res.code, 1, res.stderr);
  const j = JSON.parse(res.stdout);
  assert.match(JSON.stringify(j), /\/stray/);
  assert.match(JSON.stringify(j), /\/orders/);
});

test('check: malformed routes JSON -> exit 2, naming the file and where', () => {
  const [p, r] = files('badjson', good(), []);
  fs.writeFileSync(r, '[\n  {"path": "/orders",\n   "target": }\n]\n');
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 2, res.stdout + res.stderr);
  assert.ok(res.stderr.includes(r) || res.stderr.includes(path.basename(r)), `stderr does not name ${r}: ${res.stderr}`);
  assert.match(res.stderr, /line\D*3|:3[:\s]|3:\d/i, `no line number: ${res.stderr}`);
});

test('check: an unknown policy field -> exit 2, naming the file and the field', () => {
  const [p, r] = files('unknown', { ...good(), listen_domainz: ['x.example.com'] }, []);
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 2, res.stdout + res.stderr);
  assert.ok(res.stderr.includes(path.basename(p)), `stderr does not name the policy file: ${res.stderr}`);
  assert.match(res.stderr, /listen_domainz/);
});

test('check: a plain-text basic password -> exit 2', () => {
  const pol = { ...good(), auth_policies: { public: { type: 'none' }, partners: { type: 'basic', realm: 'p', users: { alice: 'hunter2' } } } };
  const [p, r] = files('plain', pol, []);
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 2, res.stdout + res.stderr);
  assert.match(res.stderr, /alice|users|password|hash/i);
  assert.ok(!res.stderr.includes('hunter2'), 'the password was echoed');
});

test('check: default_auth missing -> exit 2 naming default_auth', () => {
  const pol = good();
  delete pol.default_auth;
  const [p, r] = files('noauth', pol, []);
  const res = runCli(['check', '--policy', p, '--routes', r]);
  assert.equal(res.code, 2, res.stdout + res.stderr);
  assert.match(res.stderr, /default_auth/);
});

test('check: a missing file -> exit 2 naming it', () => {
  const [p] = files('missing', good(), []);
  const res = runCli(['check', '--policy', p, '--routes', path.join(dir, 'nope.json')]);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /nope\.json/);
});

test('check: file:// URIs work', () => {
  const [p, r] = files('uri', good(), [route('/orders', 8081)]);
  const res = runCli(['check', '--policy', `file://${p}`, '--routes', `file://${r}`]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
});

test('serve with a broken policy exits 2 naming the file', async () => {
  const [p, r] = files('servebad', good(), []);
  fs.writeFileSync(p, '{"listen_domains": [');
  const res = await runAsync(['serve', '--policy', p, '--routes', r, '--listen', `127.0.0.1:${await freePort()}`, '--admin-listen', `127.0.0.1:${await freePort()}`]);
  assert.equal(res.code, 2, res.stderr);
  assert.ok(res.stderr.includes(path.basename(p)), res.stderr);
});

test('serve with a route-level problem still starts (the route is rejected, not the file)', async () => {
  const sy = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/a', echo.port), route('/b', 1)] });
  await sy.stopClean();
});

test('serve with a missing routes file exits 2', async () => {
  const [p] = files('servemissing', good(), []);
  const res = await runAsync(['serve', '--policy', p, '--routes', path.join(dir, 'absent.json'), '--listen', `127.0.0.1:${await freePort()}`, '--admin-listen', `127.0.0.1:${await freePort()}`]);
  assert.equal(res.code, 2, res.stderr);
  assert.match(res.stderr, /absent\.json/);
});

test('bad usage exits 2', async () => {
  const [p, r] = files('usage', good(), []);
  const cases = [
    [],
    ['frobnicate'],
    ['serve', '--policy', p, '--routes', r, '--no-such-option'],
    ['serve', '--policy', p],
    ['serve', '--policy', p, '--routes', r, '--workers', 'many'],
    ['serve', '--policy', p, '--routes', r, '--listen', 'not-an-address'],
    ['serve', '--policy', p, '--routes', r, '--log-level', 'chatty'],
    ['serve', '--policy', p, '--routes', r, '--poll-interval', '-1'],
    ['check', '--policy', p],
  ];
  for (const args of cases) {
    const res = await runAsync(args, 10000 * SLOW);
    assert.equal(res.code, 2, `${JSON.stringify(args)} -> ${res.code} ${res.signal || ''} ${res.stderr}`);
    assert.ok(res.stderr.trim().length > 0, `${JSON.stringify(args)}: no message on stderr`);
  }
});

test('--version and --help exit 0', () => {
  const v = runCli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout + v.stderr, /\d+\.\d+/);
  const h = runCli(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /serve/);
  assert.match(h.stdout, /check/);
});

test('--help and -h on every subcommand print its usage and exit 0', () => {
  const cases = [
    [['serve', '--help'], /--poll-interval/],
    [['serve', '-h'], /--resolver/],
    [['check', '--help'], /usage: switchyard check/],
    [['check', '--policy', 'x.json', '-h'], /usage: switchyard check/],
    [['healthcheck', '-h'], /usage: switchyard healthcheck/],
    [['routes', '--help'], /routes put .*\n.*\n.*\n.*routes delete/],
    [['routes', 'put', '--help'], /usage: switchyard routes put/],
    [['routes', 'delete', '-h'], /usage: switchyard routes delete/],
    [['routes', 'list', '--help'], /usage: switchyard routes list/],
    [['-h'], /usage:/],
  ];
  for (const [args, want] of cases) {
    const r = runCli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stdout, want, args.join(' '));
    assert.equal(r.stderr, '', args.join(' '));
  }
});

test('healthcheck: 0 against a live admin, 1 when nothing listens', async () => {
  const sy = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/a', echo.port)] });
  try {
    const ok = await runAsync(['healthcheck', '--admin', `127.0.0.1:${sy.adminPort}`]);
    assert.equal(ok.code, 0, ok.stderr);
    const ready = await runAsync(['healthcheck', '--admin', `127.0.0.1:${sy.adminPort}`, '--ready']);
    assert.equal(ready.code, 0, ready.stderr);
  } finally {
    await sy.stopClean();
  }
  const down = await runAsync(['healthcheck', '--admin', `127.0.0.1:${await freePort()}`]);
  assert.equal(down.code, 1, down.stderr);
});

test('--listen is repeatable: every listener serves', async () => {
  const extra = await freePort();
  const sy = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/a', echo.port)], extraArgs: ['--listen', `127.0.0.1:${extra}`] });
  try {
    assert.equal((await httpRequest({ port: sy.port, path: '/a/1' })).status, 200);
    assert.equal((await httpRequest({ port: extra, path: '/a/2' })).status, 200);
  } finally {
    await sy.stopClean();
  }
});

test('the error log is JSON lines on stderr, and --log-level error silences info', async () => {
  const info = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/a', echo.port)] });
  await info.stopClean();
  const lines = jsonLines(info.stderr());
  assert.ok(lines.length > 0, 'nothing logged at info');
  for (const l of lines) {
    assert.ok(!l._raw, `not JSON: ${l._raw}`);
    assert.ok(l.level && l.msg && l.time, `missing time/level/msg: ${JSON.stringify(l)}`);
  }
  const quiet = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/a', echo.port)], logLevel: 'error' });
  await quiet.stopClean();
  const q = jsonLines(quiet.stderr());
  assert.ok(q.every((l) => l.level === 'error'), `non-error lines at --log-level error: ${quiet.stderr().slice(0, 500)}`);
});
