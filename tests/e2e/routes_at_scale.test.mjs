// Issue 14: 100,000 routes are a normal day. A table generated here loads
// and routes correctly; /metrics holds series only for the routes that
// answered requests; a reload that renames every route drops the old
// routes' series and frees their counters (switchyard_route_stats), and
// resident memory stays within about 1 KiB per route across that churn.
// No durations are asserted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, adminGet, eventually, writeJsonAtomic, SLOW, BIN } from './lib/harness.mjs';

const TENANTS = 5000;
const SERVICES = 10; // two routes each: 100,000
const N = TENANTS * SERVICES * 2;
let a, sy;

function table(port, prefix) {
  const routes = [];
  for (let t = 0; t < TENANTS; t++) {
    for (let m = 0; m < SERVICES; m++) {
      routes.push(route(`/${prefix}${t}/svc${m}`, port, { base: `/${prefix}${t}-${m}` }));
      routes.push(route(`/${prefix}${t}/svc${m}/v2`, port, { base: `/${prefix}${t}-${m}-v2`, strip_prefix: true }));
    }
  }
  return routes;
}

const series = (text, name) => text.split('\n').filter((l) => l.startsWith(name)).length;
const sample = (text, s) => {
  const line = text.split('\n').find((l) => l.startsWith(`${s} `));
  assert.ok(line, `${s} present`);
  return Number(line.slice(s.length + 1));
};
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

before(async () => {
  a = await startEcho({ name: 'A' });
  sy = await startSwitchyard({
    policy: makePolicy({ ports: [a.port] }),
    routes: table(a.port, 't'),
    pollInterval: 0.3,
    accessLog: 'off',
    logLevel: 'warn',
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await a?.close();
});

const picks = [0, 1, 777, 2500, TENANTS - 1];

test(`${N} routes load and each request goes to its own route`, async () => {
  const c = (await adminGet(sy, '/config')).json();
  assert.equal(c.active_routes.length, N);
  assert.equal(c.rejected_routes.length, 0);
  for (const t of picks) {
    const r = await get(sy, `/t${t}/svc9/x`);
    assert.equal(r.status, 200);
    assert.equal(r.json().url, `/t${t}-9/t${t}/svc9/x`);
    assert.equal((await get(sy, `/t${t}/svc3/v2/y`)).json().url, `/t${t}-3-v2/y`);
  }
  assert.equal((await get(sy, `/t${TENANTS}/svc0/x`)).status, 404);
});

test('/metrics follows the routes in use, not the routes configured', async () => {
  const text = (await adminGet(sy, '/metrics')).text;
  // The routes asked above (two per pick) and "(none)" for the 404.
  const used = picks.length * 2 + 1;
  assert.equal(sample(text, 'switchyard_route_stats{kind="series"}'), used);
  assert.equal(series(text, 'switchyard_requests_total{'), used * 5);
  assert.equal(sample(text, 'switchyard_requests_total{route="/t777/svc9",code_class="2xx"}'), 1);
  assert.ok(sample(text, 'switchyard_route_stats{kind="tracked"}') >= N);
});

test('a reload renaming every route frees the old counters; memory stays flat', async () => {
  const tracked = async () => sample((await adminGet(sy, '/metrics')).text, 'switchyard_route_stats{kind="tracked"}');
  for (const [round, prefix] of [[1, 'u'], [2, 't'], [3, 'u']]) {
    writeJsonAtomic(sy.routesFile, table(a.port, prefix));
    await eventually(async () => (await get(sy, `/${prefix}${TENANTS - 1}/svc9/x`)).status === 200,
      { timeoutMs: 30000 * SLOW, what: `round ${round} live` });
    const gone = prefix === 'u' ? 't' : 'u';
    assert.equal((await get(sy, `/${gone}1/svc9/x`)).status, 404);
    // The old table's series are gone at once...
    const text = (await adminGet(sy, '/metrics')).text;
    assert.equal(series(text, `switchyard_requests_total{route="/${gone}`), 0, `round ${round}: old series`);
    // ...and its counters are freed once every worker has moved to the new
    // snapshot (a worker moves at its next request) and the poller has
    // collected the old one.
    await eventually(async () => {
      await get(sy, `/${prefix}0/svc0/x`);
      return (await tracked()) <= N + 1;
    }, { timeoutMs: 20000 * SLOW, what: `round ${round}: old counters freed` });
  }
  // Within about 1 KiB per route (sanitizer builds are bigger by design).
  if (SLOW === 1 && !/asan|sanit/i.test(BIN)) {
    const rss = rssKiB(sy.proc.pid);
    assert.ok(rss < N * 1.25 + 40 * 1024, `resident ${rss} KiB for ${N} routes`);
  }
});

test('SIGTERM while a 100,000-route rebuild may be running: drains and exits 0', async () => {
  // The poll (every 0.3 s) reads and rebuilds the renamed table right
  // after this write; the signal lands during the read, the parse or the
  // build, and the process must still drain and exit by itself.
  writeJsonAtomic(sy.routesFile, table(a.port, 'w'));
  await new Promise((r) => setTimeout(r, 350));
  const r = await sy.stop('SIGTERM', 15000 * SLOW);
  sy = null;
  assert.equal(r.hung, undefined, 'exited by itself');
  assert.equal(r.code, 0);
});
