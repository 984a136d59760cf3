// A registry the size a large organisation has: thousands of routes, some
// nested, loaded at start and replaced by a reload, each still matched to
// its own longest prefix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, eventually, writeJsonAtomic, SLOW } from './lib/harness.mjs';

const N = 5000;
let a, b, sy;

function table(port, tag) {
  const routes = [];
  for (let i = 0; i < N; i++) {
    routes.push(route(`/svc${i}`, port, { base: `/${tag}${i}` }));
    if (i % 10 === 0) routes.push(route(`/svc${i}/v2`, port, { base: `/${tag}${i}-v2`, strip_prefix: true }));
  }
  return routes;
}

before(async () => {
  a = await startEcho({ name: 'A' });
  b = await startEcho({ name: 'B' });
  sy = await startSwitchyard({ policy: makePolicy({ ports: [a.port, b.port] }), routes: table(a.port, 'a') });
});

after(async () => {
  if (sy) await sy.stopClean();
  await a?.close();
  await b?.close();
});

const picks = [0, 1, 9, 10, 11, 99, 100, 1234, 2500, 4990, N - 1];

test(`${N} routes: each request goes to its own route`, async () => {
  for (const i of picks) {
    const r = await get(sy, `/svc${i}/x`);
    assert.equal(r.status, 200);
    assert.equal(r.json().url, `/a${i}/svc${i}/x`);
    if (i % 10 === 0) assert.equal((await get(sy, `/svc${i}/v2/y`)).json().url, `/a${i}-v2/y`);
    else assert.equal((await get(sy, `/svc${i}/v2/y`)).json().url, `/a${i}/svc${i}/v2/y`);
  }
  assert.equal((await get(sy, `/svc${N}/x`)).status, 404);
  assert.equal((await get(sy, '/svc12345/x')).status, 404);
  assert.equal((await get(sy, '/svc1x')).status, 404);
});

test(`reloading all ${N} routes to a new backend switches every one`, async () => {
  writeJsonAtomic(sy.routesFile, table(b.port, 'b'));
  await eventually(async () => (await get(sy, `/svc${N - 1}/x`)).json().name === 'B', { timeoutMs: 20000 * SLOW, what: 'the new table' });
  for (const i of picks) {
    const r = await get(sy, `/svc${i}/x`);
    assert.equal(r.json().name, 'B', `/svc${i} still on the old table`);
    assert.equal(r.json().url, `/b${i}/svc${i}/x`);
  }
});
