// SPEC §4: both files are polled; changes take effect without a restart, a
// broken document keeps the last good snapshot (visible in /config and
// /metrics), and no request fails because of a reload. A load of client
// loops runs against a stable route for the whole sequence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startEcho } from '../../examples/echo-backend.mjs';
import {
  startSwitchyard, makePolicy, route, dest, get, adminGet, eventually, writeJsonAtomic, parseMetrics, walkJson, httpRequest, sleep, SLOW,
} from './lib/harness.mjs';

let a, b, sy, policy, routes;
const load = { stop: false, ok: 0, failures: [], loops: [] };

before(async () => {
  a = await startEcho({ name: 'A' });
  b = await startEcho({ name: 'B' });
  policy = makePolicy({ destinations: [dest(a.port), dest(b.port)] });
  routes = [route('/stable', a.port), route('/victim', b.port)];
  sy = await startSwitchyard({ policy, routes, pollInterval: 0.2 });
  // four client loops on keep-alive connections for the whole file
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  for (let i = 0; i < 4; i++) {
    load.loops.push(
      (async () => {
        let n = 0;
        while (!load.stop) {
          try {
            // odd loops send bodies, so uploads straddle the swaps too
            const body = i % 2 ? Buffer.alloc(64 * 1024 + n, 0x62) : undefined;
            const r = await httpRequest({ port: sy.port, path: `/stable/loop${i}/${n++}`, agent, timeout: 10000 * SLOW, method: body ? 'POST' : 'GET', body });
            if (r.status === 200 && r.json().name === 'A' && r.json().body_bytes === (body ? body.length : 0)) load.ok++;
            else load.failures.push(`${r.status} ${r.text.slice(0, 200)}`);
          } catch (e) {
            load.failures.push(e.message);
          }
        }
        agent.destroy();
      })(),
    );
  }
});

after(async () => {
  load.stop = true;
  await Promise.all(load.loops);
  if (sy) await sy.stopClean();
  await a?.close();
  await b?.close();
});

const status = async (p) => (await get(sy, p)).status;
const writeRoutes = (r) => writeJsonAtomic(sy.routesFile, r);
const writePolicy = (p) => writeJsonAtomic(sy.policyFile, p);

async function reloadMetrics() {
  const m = parseMetrics((await adminGet(sy, '/metrics')).text);
  return m.filter((x) => /reload/.test(x.name) && !/_bucket$|_sum$|_time|_timestamp|_seconds$/.test(x.name));
}

function failedReloads(metrics, store) {
  return metrics
    .filter((x) => Object.values(x.labels).includes(store) && Object.values(x.labels).some((v) => /^(fail|failed|failure|error|err)$/i.test(v)))
    .reduce((s, x) => s + x.value, 0);
}

test('an added route is served without a restart', async () => {
  assert.equal(await status('/new/x'), 404);
  writeRoutes([...routes, route('/new', b.port)]);
  await eventually(async () => (await status('/new/x')) === 200, { timeoutMs: 10000 * SLOW, what: '/new served' });
  const r = await get(sy, '/new/x');
  assert.equal(r.json().name, 'B');
});

test('a removed route goes back to 404', async () => {
  writeRoutes(routes);
  await eventually(async () => (await status('/new/x')) === 404, { timeoutMs: 10000 * SLOW, what: '/new gone' });
});

test('a changed target takes effect', async () => {
  writeRoutes([route('/stable', a.port), route('/victim', a.port)]);
  await eventually(async () => (await get(sy, '/victim/x')).json().name === 'A', { what: '/victim moved to A' });
  writeRoutes(routes);
  await eventually(async () => (await get(sy, '/victim/x')).json().name === 'B', { what: '/victim back on B' });
});

test('a broken routes file keeps the last good config and is reported', async () => {
  const before = failedReloads(await reloadMetrics(), 'routes');
  fs.writeFileSync(sy.routesFile, '[{"path": "/broken", "target": ');
  // /config shows an error for the routes store (a non-empty string value)
  await eventually(
    async () => {
      const cfg = JSON.parse((await adminGet(sy, '/config')).text);
      const errs = [...walkJson(cfg)].filter(([k, v]) => typeof v === 'string' && /error/i.test(k || '') && v.length > 5);
      return errs.length > 0 && /routes/i.test(JSON.stringify(cfg));
    },
    { what: '/config reports the routes error' },
  );
  await eventually(async () => failedReloads(await reloadMetrics(), 'routes') > before, { what: 'a failed routes reload counted in /metrics' });
  // still serving the old snapshot
  assert.equal(await status('/stable/x'), 200);
  assert.equal(await status('/victim/x'), 200);
  assert.equal(await status('/broken/x'), 404);
  const ready = await adminGet(sy, '/readyz');
  assert.equal(ready.status, 200, 'a failed reload after a good load must not make the process unready');
});

test('fixing the routes file recovers', async () => {
  writeRoutes([...routes, route('/fixed', b.port)]);
  await eventually(async () => (await status('/fixed/x')) === 200, { what: '/fixed served after the fix' });
});

test('a routes file that disappears keeps the last good config', async () => {
  const before = failedReloads(await reloadMetrics(), 'routes');
  fs.rmSync(sy.routesFile);
  await eventually(async () => failedReloads(await reloadMetrics(), 'routes') > before, { what: 'a failed read counted' });
  assert.equal(await status('/stable/x'), 200);
  assert.equal(await status('/fixed/x'), 200);
  writeRoutes(routes);
  await eventually(async () => (await status('/fixed/x')) === 404, { what: 'the restored file loaded' });
});

test('a broken policy file keeps the last good config', async () => {
  fs.writeFileSync(sy.policyFile, '{"listen_domains": ["api.example.com"], "destinations": [');
  await eventually(async () => failedReloads(await reloadMetrics(), 'policy') > 0, { what: 'a failed policy reload counted' });
  assert.equal(await status('/stable/x'), 200);
  // unknown fields are an error too, and also keep the old policy
  writePolicy({ ...policy, listen_domainz: ['x.example.com'] });
  await sleep(1000);
  assert.equal(await status('/stable/x'), 200);
  writePolicy(policy);
});

test('a policy change that removes a destination rejects its routes (502)', async () => {
  assert.equal(await status('/victim/x'), 200);
  writePolicy({ ...policy, destinations: [dest(a.port)] });
  await eventually(async () => (await status('/victim/x')) === 502, { what: '/victim rejected' });
  const r = await get(sy, '/victim/x');
  assert.match(r.json().message, /^route rejected: /);
  const before = b.stats.requests;
  await get(sy, '/victim/y');
  assert.equal(b.stats.requests, before, 'a rejected route still reached its backend');
  writePolicy(policy);
  await eventually(async () => (await status('/victim/x')) === 200, { what: '/victim back after the policy is restored' });
});

test('a policy change of listen domains takes effect', async () => {
  assert.equal((await get(sy, '/stable/x', {}, { host: 'new.example.net' })).status, 421);
  writePolicy({ ...policy, listen_domains: [...policy.listen_domains, 'new.example.net'] });
  await eventually(async () => (await get(sy, '/stable/x', {}, { host: 'new.example.net' })).status === 200, { what: 'new listen domain' });
  writePolicy(policy);
  await eventually(async () => (await get(sy, '/stable/x', {}, { host: 'new.example.net' })).status === 421, { what: 'listen domain removed' });
});

test('rapid successive rewrites converge on the last one', async () => {
  for (let i = 0; i < 10; i++) {
    writeRoutes([...routes, route(`/gen${i}`, b.port)]);
    await sleep(30);
  }
  await eventually(async () => (await status('/gen9/x')) === 200, { what: 'last generation served' });
  assert.equal(await status('/gen3/x'), 404);
  writeRoutes(routes);
});

test('the stable route never failed during all of the above', async () => {
  await sleep(500);
  assert.ok(load.ok > 20, `only ${load.ok} load requests completed`);
  assert.deepEqual(load.failures.slice(0, 10), []);
});
