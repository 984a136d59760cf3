// /metrics: upstream errors and time to response head by destination host,
// process_* and build info, and --route-metrics off folding every route
// into route="(any)" for very large route tables.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, adminGet, parseMetrics, freePort, runCli } from './lib/harness.mjs';

let echo, sy, off, deadPort;

before(async () => {
  echo = await startEcho({ name: 'metrics' });
  deadPort = await freePort();
  const policy = makePolicy({ ports: [echo.port, deadPort] });
  sy = await startSwitchyard({ policy, routes: [route('/api', echo.port), route('/dead', deadPort)] });
  off = await startSwitchyard({ policy, routes: [route('/api', echo.port), route('/other', echo.port)], extraArgs: ['--route-metrics', 'off'] });
});

after(async () => {
  if (sy) await sy.stopClean();
  if (off) await off.stopClean();
  await echo?.close();
});

const scrape = async (s) => {
  const r = await adminGet(s, '/metrics');
  assert.equal(r.status, 200);
  return { text: r.text, all: parseMetrics(r.text) };
};

test('upstream latency and errors are labelled with the destination host', async () => {
  assert.equal((await get(sy, '/api/x')).status, 200);
  assert.equal((await get(sy, '/dead/x')).status, 502);
  const { all } = await scrape(sy);
  const count = all.find((m) => m.name === 'switchyard_upstream_duration_seconds_count' && m.labels.destination === '127.0.0.1');
  assert.ok(count && count.value >= 1, 'no upstream_duration_seconds for 127.0.0.1');
  assert.ok(all.some((m) => m.name === 'switchyard_upstream_duration_seconds_bucket' && m.labels.le === '60'), 'buckets stop before 60 s');
  const errors = all.filter((m) => m.name === 'switchyard_upstream_errors_total');
  assert.ok(errors.length > 0 && errors.every((m) => 'destination' in m.labels), JSON.stringify(errors));
  const connect = errors.find((m) => m.labels.destination === '127.0.0.1' && m.labels.kind === 'connect');
  assert.ok(connect && connect.value >= 1, JSON.stringify(errors));
});

test('process_* and build info are exposed', async () => {
  const { all, text } = await scrape(sy);
  for (const name of ['process_open_fds', 'process_max_fds', 'process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_start_time_seconds']) {
    const m = all.find((x) => x.name === name);
    assert.ok(m, `${name} missing`);
    assert.ok(Number.isFinite(m.value) && m.value >= 0, `${name} ${m.value}`);
    assert.match(text, new RegExp(`# TYPE ${name} (gauge|counter)`));
  }
  assert.ok(all.find((x) => x.name === 'process_open_fds').value > 3);
  assert.ok(all.find((x) => x.name === 'process_resident_memory_bytes').value > 1e5);
  const version = runCli(['--version']).stdout.trim().split(/\s+/).pop();
  const info = all.find((x) => x.name === 'switchyard_build_info');
  assert.ok(info, 'switchyard_build_info missing');
  assert.equal(info.value, 1);
  assert.equal(info.labels.version, version);
});

test('no series appears twice', async () => {
  const { text } = await scrape(sy);
  const keys = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
  assert.equal(new Set(keys).size, keys.length);
});

test('--route-metrics off: no per-route series, every route counted as (any)', async () => {
  assert.equal((await get(off, '/api/x')).status, 200);
  assert.equal((await get(off, '/other/x')).status, 200);
  const { all } = await scrape(off);
  const routes = new Set(all.filter((m) => m.name === 'switchyard_requests_total').map((m) => m.labels.route));
  assert.ok(!routes.has('/api') && !routes.has('/other'), [...routes].join());
  const any = all.find((m) => m.name === 'switchyard_requests_total' && m.labels.route === '(any)' && m.labels.code_class === '2xx');
  assert.ok(any && any.value >= 2, JSON.stringify(any));
});

test('--route-metrics takes only on or off', () => {
  const r = runCli(['serve', '--route-metrics', 'some', '--policy', 'p.json', '--routes', 'r.json']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--route-metrics/);
});
