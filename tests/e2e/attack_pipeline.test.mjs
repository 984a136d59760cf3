// Attack: a compromised pipeline (docs/security.md, "A compromised
// pipeline"). The orders pipeline writes route items under its own paths
// that try to reach the users API (bound to /users with a strong auth) or
// any other host: target spellings (case, trailing dot, userinfo, leading
// zeros in the port, percent-encoded host, IPv6, decimal IPv4, a base path
// with dot segments, query, fragment, a backslash), paths at the edge of a
// binding (/usersx, /Users, /%75sers) and a weaker auth. Every one must be
// rejected (502 on its path, listed in /config rejected_routes, never
// forwarded) while the legitimate routes keep serving. Operations' own
// mistakes, a destination written as a metadata address in a translated
// IPv6 spelling, fail the load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, get, adminGet, runCli, tempDir } from './lib/harness.mjs';

let echo, sy, p;

function policy(port) {
  const via = { port, connect_to: `127.0.0.1:${port}` };
  return makePolicy({
    destinations: [
      { scheme: 'http', host: 'users.internal.example', ...via, allowed_paths: ['/users'], allowed_auth: ['strong'] },
      { scheme: 'http', host: 'orders.internal.example', ...via, allowed_paths: ['/orders'], allowed_auth: ['public'] },
      { scheme: 'http', host: '*.svc.internal.example', ...via, allowed_paths: ['/svc'], allowed_auth: ['public'] },
    ],
    auth_policies: { public: { type: 'none' }, strong: { type: 'none' } },
    default_auth: 'public',
  });
}

const hostile = (port) => [
  ['/orders/leak', `http://users.internal.example:${port}`],
  ['/orders/case', `http://USERS.INTERNAL.EXAMPLE:${port}`],
  ['/orders/dot', `http://users.internal.example.:${port}`],
  ['/orders/userinfo', `http://x@users.internal.example:${port}`],
  ['/orders/userinfo2', `http://orders.internal.example:${port}@users.internal.example:${port}`],
  ['/orders/zeroport', `http://users.internal.example:0${port}`],
  ['/orders/plusport', `http://users.internal.example:+${port}`],
  ['/orders/noport', 'http://users.internal.example'],
  ['/orders/pct', `http://users%2einternal.example:${port}`],
  ['/orders/backslash', `http://orders.internal.example:${port}\\@users.internal.example`],
  ['/orders/space', `http://users.internal.example :${port}`],
  ['/orders/query', `http://orders.internal.example:${port}?x=@users.internal.example`],
  ['/orders/fragment', `http://orders.internal.example:${port}#@users.internal.example`],
  ['/orders/dotbase', `http://orders.internal.example:${port}/../users`],
  ['/orders/pctbase', `http://orders.internal.example:${port}/%2e%2e/users`],
  ['/orders/ipv6', `http://[::1]:${port}`],
  ['/orders/ipv4', `http://127.0.0.1:${port}`],
  ['/orders/decimal', `http://2130706433:${port}`],
  ['/orders/wild', `http://a.svc.internal.example:${port}`],
  ['/orders/scheme', `https://orders.internal.example:${port}`],
  ['/orders/zone', `http://[fe80::1%25lo]:${port}`],
  ['/usersx', `http://users.internal.example:${port}`, 'strong'],
  ['/Users', `http://users.internal.example:${port}`, 'strong'],
  ['/%75sers', `http://users.internal.example:${port}`, 'strong'],
  ['/users/weak', `http://users.internal.example:${port}`, 'public'],
  ['/users/default', `http://users.internal.example:${port}`],
  ['/svcx', `http://a.svc.internal.example:${port}`],
  ['/svc/apex', `http://svc.internal.example:${port}`],
  ['/svc/deep', `http://a.b.svc.internal.example:${port}`],
  ['/svc/empty', `http://.svc.internal.example:${port}`],
].map(([pathValue, target, auth]) => ({ path: pathValue, target, ...(auth ? { auth } : {}) }));

const legit = (port) => [
  { path: '/orders', target: `http://orders.internal.example:${port}` },
  { path: '/users', target: `http://users.internal.example:${port}`, auth: 'strong' },
  { path: '/users/x', target: `http://users.internal.example:${port}/base`, auth: 'strong' },
  { path: '/svc', target: `http://a.svc.internal.example:${port}` },
];

before(async () => {
  echo = await startEcho({ name: 'pipeline' });
  p = echo.port;
  sy = await startSwitchyard({ policy: policy(p), routes: [...legit(p), ...hostile(p)] });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

test('every hostile route item is rejected and never forwarded', async () => {
  const cfg = (await adminGet(sy, '/config')).json();
  const rejected = new Map(cfg.rejected_routes.map((r) => [r.path, r.reason]));
  for (const r of hostile(p)) {
    // A path that isn't canonical owns nothing: it is listed without a path,
    // its reason quoting it.
    const listed = rejected.has(r.path) || cfg.rejected_routes.some((x) => x.path === null && x.reason.includes(`"${r.path}"`));
    assert.ok(listed, `${r.path} -> ${r.target} (${r.auth || 'default auth'}) was not rejected`);
    const before = echo.stats.urls.length;
    const res = await get(sy, r.path === '/%75sers' ? '/usersx' : r.path);
    if (r.path !== '/%75sers') assert.equal(res.status, 502, `${r.path}: ${res.status} ${res.text}`);
    assert.deepEqual(echo.stats.urls.slice(before), [], `${r.path} reached a backend`);
  }
});

test('the legitimate routes around them keep serving', async () => {
  for (const [pathValue, upstream] of [['/orders/1', '/orders/1'], ['/users', '/users'], ['/users/x/1', '/base/users/x/1'], ['/svc/a', '/svc/a']]) {
    const res = await get(sy, pathValue);
    assert.equal(res.status, 200, `${pathValue}: ${res.text}`);
    assert.equal(res.json().url, upstream);
  }
  // /Users is not /users: case is never folded onto a binding (nothing serves it).
  assert.equal((await get(sy, '/Users')).status, 502);
});

test('a destination written as the metadata service in a translated IPv6 spelling fails the load', () => {
  const dir = tempDir('sy-attack-pipe-');
  try {
    for (const host of ['[::ffff:0:a9fe:a9fe]', '[64:ff9b:1::a9fe:a9fe]', '[64:ff9b::a9fe:a9fe]', '[::a9fe:a9fe]', '[::FFFF:A9FE:A9FE]', '169.254.169.254.', '0x0a9.0376.0251.0376']) {
      for (const field of ['host', 'connect_to']) {
        const d = field === 'host' ? { scheme: 'http', host, port: 80 } : { scheme: 'http', host: 'meta.internal.example', port: 80, connect_to: `${host}:80` };
        const pf = path.join(dir, 'policy.json');
        const rf = path.join(dir, 'routes.json');
        fs.writeFileSync(pf, JSON.stringify(makePolicy({ destinations: [d] })));
        fs.writeFileSync(rf, '[]');
        const res = runCli(['check', '--policy', pf, '--routes', rf]);
        assert.equal(res.code, 2, `${field} ${host}: ${res.stdout}${res.stderr}`);
        assert.match(res.stderr, /cloud metadata address/, `${field} ${host}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a route item cannot carry policy-only fields, nor a non-canonical path or base path', async () => {
  const t = `http://orders.internal.example:${p}`;
  const items = [
    { path: '/orders/a', target: t, connect_to: '169.254.169.254:80' }, { path: '/orders/b', target: t, tls_verify_name: 'x' },
    { path: '/orders/c', target: t, sni: 'x' }, { path: '/orders/d', target: t, host_header: 'users.internal.example' },
    { path: '/orders/e', target: t, ca_file: '/etc/passwd' }, { path: '/orders/f', target: t, api_id: 'abc' },
    { path: '/orders/g/', target: t }, { path: '/orders/h;x', target: t }, { path: '/orders//i', target: t }, { path: '/orders/./j', target: t },
    { path: '/orders/k%2Fl', target: t }, { path: '/orders/m', target: `${t}/base;x` }, { path: '/orders/n', target: `${t}/%2e%2e` },
    { path: '/orders/o', target: `${t}/a\r\nX: y` }, { path: '/orders/q', target: `${t}/ba se` },
  ];
  const s = await startSwitchyard({ policy: policy(p), routes: [{ path: '/orders', target: t }, ...items] });
  try {
    const cfg = (await adminGet(s, '/config')).json();
    assert.equal(cfg.active_routes.length, 1, JSON.stringify(cfg.active_routes.map((r) => r.path)));
    assert.equal(cfg.rejected_routes.length, items.length, JSON.stringify(cfg.rejected_routes));
    for (const r of cfg.rejected_routes) assert.ok(!/\r|\n/.test(JSON.stringify(r.reason).replace(/\\[rn]/g, '')));
    assert.ok(!/\r\nX: y/.test(s.stderr()), 'a raw CR LF from a route item reached the log');
  } finally {
    await s.stopClean();
  }
});
