// SPEC §2 destinations and §5.6 connect: only listed destinations are ever
// connected to; loopback only when allowed; link-local and metadata
// addresses never (literals refused at load); connect_to, host_header and api_id shape the upstream
// request; a route whose scheme, host or port matches no destination is
// rejected.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { startSwitchyard, makePolicy, route, dest, get, headerValues, errorMessage, adminGet, runCli, tempDir, writeJsonAtomic } from './lib/harness.mjs';

let echo;
const running = [];

before(async () => {
  echo = await startEcho({ name: 'dest' });
});

after(async () => {
  for (const sy of running) await sy.stopClean();
  await echo?.close();
});

async function start(policy, routes) {
  const sy = await startSwitchyard({ policy, routes });
  running.push(sy);
  return sy;
}

test('loopback destinations are refused unless allowed (502, backend never reached)', async () => {
  const sy = await start(makePolicy({ ports: [echo.port], allow_loopback_destinations: false }), [route('/ip', echo.port)]);
  const pol = makePolicy({ ports: [echo.port], allow_loopback_destinations: false });
  pol.destinations.push(dest(echo.port, { host: 'localhost' }));
  const sy2 = await start(pol, [{ path: '/name', target: `http://localhost:${echo.port}` }]);
  const before = echo.stats.requests;
  const a = await get(sy, '/ip/x');
  assert.equal(a.status, 502, a.text);
  errorMessage(a);
  const b = await get(sy2, '/name/x');
  assert.equal(b.status, 502, `localhost resolved to loopback must be refused: ${b.status} ${b.text}`);
  assert.equal(echo.stats.requests, before, 'a refused loopback destination was connected to');
});

test('link-local, metadata and unspecified addresses are refused at load even with loopback allowed', async () => {
  // Written as a literal (host or connect_to), such an address could never
  // serve: the policy is refused at load (exit 2) instead of loading and
  // answering 502 for every request. Names that resolve there are still
  // refused per request by the address guard. (issue 10)
  for (const d of [
    dest(80, { host: '169.254.169.254' }),
    dest(80, { host: '0.0.0.0' }),
    dest(echo.port, { host: 'meta.internal.example', connect_to: `169.254.169.254:${echo.port}` }),
    dest(echo.port, { host: 'zero.internal.example', connect_to: `0.0.0.0:${echo.port}` }),
  ]) {
    const dir = tempDir();
    const p = path.join(dir, 'policy.json');
    const r = path.join(dir, 'routes.json');
    writeJsonAtomic(p, makePolicy({ destinations: [d] }));
    writeJsonAtomic(r, []);
    const res = runCli(['check', '--policy', p, '--routes', r]);
    assert.equal(res.code, 2, `${JSON.stringify(d)}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, /destinations\[0\]\.(host|connect_to): .*(cloud metadata|unspecified) address/);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('connect_to opens the connection elsewhere; Host stays the target host', async () => {
  const pol = makePolicy({
    destinations: [dest(8443, { host: 'orders.internal.example', connect_to: `127.0.0.1:${echo.port}` })],
  });
  const sy = await start(pol, [{ path: '/orders', target: 'http://orders.internal.example:8443/prod' }]);
  const r = await get(sy, '/orders/1?x=y');
  assert.equal(r.status, 200, r.text);
  const e = r.json();
  assert.equal(e.url, '/prod/orders/1?x=y');
  const host = headerValues(e.headers, 'host');
  assert.equal(host.length, 1);
  assert.ok(['orders.internal.example:8443', 'orders.internal.example'].includes(host[0]), `Host upstream ${host[0]}`);
});

test('host_header and api_id are sent upstream', async () => {
  const pol = makePolicy({
    destinations: [
      dest(echo.port, { host: 'gw.internal.example', connect_to: `127.0.0.1:${echo.port}`, host_header: 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com', api_id: 'a1b2c3d4e5' }),
    ],
  });
  const sy = await start(pol, [{ path: '/gw', target: `http://gw.internal.example:${echo.port}/prod`, strip_prefix: true }]);
  const r = await get(sy, '/gw/items', { 'x-apigw-api-id': 'client-chosen' });
  assert.equal(r.status, 200, r.text);
  const e = r.json();
  assert.equal(e.url, '/prod/items');
  assert.deepEqual(headerValues(e.headers, 'host'), ['a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com']);
  assert.deepEqual(headerValues(e.headers, 'x-apigw-api-id'), ['a1b2c3d4e5']);
});

test('a wildcard destination admits any one-label host under it', async () => {
  const pol = makePolicy({
    destinations: [dest(echo.port, { host: '*.svc.internal.example', connect_to: `127.0.0.1:${echo.port}` })],
  });
  const sy = await start(pol, [
    { path: '/a', target: `http://billing.svc.internal.example:${echo.port}` },
    { path: '/b', target: `http://svc.internal.example:${echo.port}` },
    { path: '/c', target: `http://billing.svc.internal.example.evil.com:${echo.port}` },
  ]);
  assert.equal((await get(sy, '/a/x')).status, 200);
  for (const p of ['/b/x', '/c/x']) {
    const r = await get(sy, p);
    assert.equal(r.status, 502, `${p}: ${r.status}`);
    assert.match(r.json().message, /^route rejected: /);
  }
});

test('scheme and port must match a destination', async () => {
  const sy = await start(makePolicy({ ports: [echo.port] }), [
    route('/ok', echo.port),
    { path: '/https', target: `https://127.0.0.1:${echo.port}` },
    { path: '/port', target: `http://127.0.0.1:${echo.port + 1 === 65536 ? 1 : echo.port + 1}` },
    { path: '/default-port', target: 'http://127.0.0.1' },
  ]);
  assert.equal((await get(sy, '/ok/x')).status, 200);
  for (const p of ['/https/x', '/port/x', '/default-port/x']) {
    const r = await get(sy, p);
    assert.equal(r.status, 502, `${p}: ${r.status}`);
    assert.match(r.json().message, /^route rejected: /);
  }
  const cfg = (await adminGet(sy, '/config')).text;
  for (const p of ['/https', '/port', '/default-port']) assert.ok(cfg.includes(`"${p}"`), `${p} not in /config`);
});

test('malformed and conflicting routes are rejected one by one, not the whole file', async () => {
  const sy = await start(makePolicy({ ports: [echo.port] }), [
    route('/good', echo.port),
    route('/trailing/', echo.port),
    route('/dot/../x', echo.port),
    route('/empty//seg', echo.port),
    route('relative', echo.port),
    route('/baddomain', echo.port, { domain: 'not-listened.example.org' }),
    route('/good', echo.port, { base: '/dup' }),
    { path: '/notarget' },
    { path: '/badtarget', target: 'ftp://127.0.0.1/x' },
  ]);
  const r = await get(sy, '/good/x');
  assert.equal(r.status, 200);
  assert.equal(r.json().url, '/good/x', 'the later duplicate of /good took over');
  const cfg = (await adminGet(sy, '/config')).text;
  for (const p of ['/trailing/', '/dot/../x', '/empty//seg', 'relative', '/baddomain', '/notarget', '/badtarget']) {
    assert.ok(cfg.includes(p), `${p} is not reported in /config`);
  }
  // scoped to a domain switchyard does not answer for: never forwarded
  assert.notEqual((await get(sy, '/baddomain/x')).status, 200);
  // a rejected route still owns its path, whatever made it rejected
  for (const p of ['/badtarget/x', '/notarget/x']) assert.equal((await get(sy, p)).status, 502, `${p} did not get 502`);
});
