// SPEC §5 step 6 and §1 --resolver: upstream names are resolved by
// switchyard's own resolver against a real DNS server (started here on
// loopback UDP), cached for their TTL, refreshed while in use, kept when the
// DNS server goes silent, refused whole when an answer names a forbidden
// address; new connections spread over every address, and an address that
// refuses connections is skipped without failing a request.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startDnsServer } from './lib/dns-server.mjs';
import {
  startSwitchyard, get, adminGet, parseMetrics, freePort, sleep, eventually, errorMessage, jsonLines, SLOW,
} from './lib/harness.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// A backend on one loopback address that closes every connection after its
// answer, so each request makes switchyard open a new upstream connection.
async function backend(address, port, name, { keepAlive = false } = {}) {
  const srv = http.createServer((req, res) => {
    srv.hits++;
    if (!keepAlive) res.setHeader('Connection', 'close');
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ backend: name, path: req.url }));
  });
  srv.hits = 0;
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, address, resolve);
  });
  cleanups.push(() => new Promise((r) => srv.close(r)));
  return srv;
}

async function setup({ name = 'api.test', addrs, ttl = 60, backends = [], keepAlive = false }) {
  const dns = await startDnsServer();
  cleanups.push(() => dns.close());
  dns.set(name, addrs, ttl);
  const port = await freePort();
  const servers = {};
  for (const a of backends) servers[a] = await backend(a, port, a, { keepAlive });
  const sy = await startSwitchyard({
    policy: {
      listen_domains: ['api.example.com'],
      destinations: [{ scheme: 'http', host: name, port }],
      auth_policies: { public: { type: 'none' } },
      default_auth: 'public',
      allow_loopback_destinations: true,
    },
    routes: [{ path: '/', target: `http://${name}:${port}` }],
    extraArgs: ['--resolver', dns.address],
  });
  cleanups.push(() => sy.stopClean());
  return { dns, sy, servers, port, name };
}

async function metric(sy, family) {
  const m = parseMetrics((await adminGet(sy, '/metrics')).text);
  return m.filter((x) => x.name === family).reduce((s, x) => s + x.value, 0);
}

test('a name costs one lookup per TTL, not two per connection', async () => {
  const { dns, sy, servers } = await setup({ addrs: ['127.0.0.2'], backends: ['127.0.0.2'] });
  for (let i = 0; i < 30; i++) {
    const r = await get(sy, `/one/${i}`);
    assert.equal(r.status, 200, r.text);
  }
  assert.equal(servers['127.0.0.2'].hits, 30, 'every request opened a new upstream connection');
  // A and AAAA for the first connection of each worker at most.
  assert.ok(dns.count('api.test') <= 4, `DNS questions for 30 connections: ${dns.count('api.test')}`);
  assert.ok(dns.count('api.test') >= 1);
  const config = JSON.parse((await adminGet(sy, '/config')).text);
  const entry = config.upstream_names.find((n) => n.host === 'api.test');
  assert.ok(entry, JSON.stringify(config.upstream_names));
  assert.deepEqual(entry.addresses.map((a) => a.address), ['127.0.0.2']);
  assert.ok(entry.ttl_left_seconds <= 60 && entry.ttl_left_seconds > 0);
  assert.ok((await metric(sy, 'switchyard_dns_lookups_total')) >= 1);
});

test('new connections spread over every address of the answer', async () => {
  const addrs = ['127.0.0.2', '127.0.0.3'];
  const { sy, servers, port } = await setup({ addrs, backends: addrs });
  for (let i = 0; i < 20; i++) {
    const r = await get(sy, `/spread/${i}`);
    assert.equal(r.status, 200, r.text);
  }
  for (const a of addrs) assert.ok(servers[a].hits >= 3, `${a} got ${servers[a].hits} of 20`);
  // The access log names the address each request used.
  await eventually(() => {
    const used = new Set(jsonLines(fs.readFileSync(sy.accessLog, 'utf8'))
      .filter((l) => l.path?.startsWith('/spread/')).map((l) => l.upstream_addr));
    return addrs.every((a) => used.has(`${a}:${port}`));
  }, { what: 'upstream_addr in the access log' });
});

test('an address that refuses connections is skipped: no failed request', async () => {
  // Nothing listens on 127.0.0.4 at the backend's port.
  const { sy, servers } = await setup({ addrs: ['127.0.0.4', '127.0.0.2'], backends: ['127.0.0.2'] });
  for (let i = 0; i < 20; i++) {
    const r = await get(sy, `/refusing/${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.text}`);
  }
  assert.equal(servers['127.0.0.2'].hits, 20);
  assert.ok((await metric(sy, 'switchyard_upstream_connects_moved_total')) >= 1);
  assert.ok((await metric(sy, 'switchyard_upstream_addresses_set_aside_total')) >= 1);
  const config = JSON.parse((await adminGet(sy, '/config')).text);
  const entry = config.upstream_names.find((n) => n.host === 'api.test');
  const refusing = entry.addresses.find((a) => a.address === '127.0.0.4');
  assert.ok(refusing, JSON.stringify(entry));
  // Set aside after it failed (the back-off may already have run out on a slow machine).
  assert.equal(typeof refusing.set_aside_ms, 'number');
});

test('a changed answer is followed once its TTL runs out', async () => {
  const { dns, sy, servers } = await setup({ addrs: ['127.0.0.2'], ttl: 1, backends: ['127.0.0.2', '127.0.0.3'] });
  assert.equal((await get(sy, '/before')).status, 200);
  assert.ok(servers['127.0.0.2'].hits >= 1);
  const asked = dns.count('api.test');
  dns.set('api.test', ['127.0.0.3'], 1);
  await eventually(async () => {
    const r = await get(sy, '/after');
    assert.equal(r.status, 200);
    return servers['127.0.0.3'].hits > 0;
  }, { what: 'requests reaching the new address', timeoutMs: 15000 * SLOW, intervalMs: 200 });
  assert.ok(dns.count('api.test') > asked, 'the name was looked up again');
});

test('a silent DNS server: the last good answer keeps serving, without delay or failure', async () => {
  const { dns, sy, servers } = await setup({ addrs: ['127.0.0.2'], ttl: 1, backends: ['127.0.0.2'] });
  assert.equal((await get(sy, '/warm')).status, 200);
  dns.setMode('silent');
  await sleep(1500); // past the TTL
  for (let i = 0; i < 10; i++) {
    const r = await get(sy, `/silent/${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.text}`);
  }
  assert.equal(servers['127.0.0.2'].hits, 11);
  assert.ok((await metric(sy, 'switchyard_dns_stale_answers_total')) >= 1);
  await eventually(async () => (await metric(sy, 'switchyard_dns_failures_total')) >= 1, {
    what: 'the silent refresh counted as a failure',
    timeoutMs: 20000 * SLOW,
  });
  const config = JSON.parse((await adminGet(sy, '/config')).text);
  const entry = config.upstream_names.find((n) => n.host === 'api.test');
  assert.equal(entry.stale, true, JSON.stringify(entry));
  assert.ok(entry.last_error, JSON.stringify(entry));
});

test('an answer that adds a metadata address is refused whole; the last good one keeps serving', async () => {
  const { dns, sy, servers } = await setup({ addrs: ['127.0.0.2'], ttl: 1, backends: ['127.0.0.2'] });
  assert.equal((await get(sy, '/good')).status, 200);
  dns.set('api.test', ['127.0.0.2', '169.254.169.254'], 1);
  await eventually(async () => {
    const r = await get(sy, '/poisoned');
    assert.equal(r.status, 200, r.text);
    return (await metric(sy, 'switchyard_dns_refused_answers_total')) >= 1;
  }, { what: 'the poisoned answer refused', timeoutMs: 15000 * SLOW, intervalMs: 200 });
  for (let i = 0; i < 5; i++) assert.equal((await get(sy, `/after/${i}`)).status, 200);
  assert.ok(servers['127.0.0.2'].hits >= 7);
  assert.match(sy.stderr(), /security: DNS answer refused.*169\.254\.169\.254/);
});

test('a first answer naming a metadata address fails the request with 502', async () => {
  const { sy } = await setup({ addrs: ['169.254.169.254'] });
  const r = await get(sy, '/x');
  assert.equal(r.status, 502);
  assert.match(errorMessage(r), /upstream address refused/);
});

test('a name that does not resolve gets 502, and is not asked again per connection', async () => {
  const { dns, sy } = await setup({ name: 'api.test', addrs: ['127.0.0.2'] });
  dns.setMode('servfail');
  const r = await get(sy, '/x');
  assert.equal(r.status, 502);
  assert.match(errorMessage(r), /could not be resolved/);
});

test('IPv4 and IPv6 addresses of one name are both used', async () => {
  const port = await freePort();
  const dns = await startDnsServer();
  cleanups.push(() => dns.close());
  dns.set('mixed.test', ['127.0.0.2', '::1'], 60);
  const v4 = await backend('127.0.0.2', port, 'v4');
  const v6 = await backend('::1', port, 'v6');
  const sy = await startSwitchyard({
    policy: {
      listen_domains: ['api.example.com'],
      destinations: [{ scheme: 'http', host: 'mixed.test', port }],
      auth_policies: { public: { type: 'none' } },
      default_auth: 'public',
      allow_loopback_destinations: true,
    },
    routes: [{ path: '/', target: `http://mixed.test:${port}` }],
    extraArgs: ['--resolver', dns.address],
  });
  cleanups.push(() => sy.stopClean());
  for (let i = 0; i < 12; i++) assert.equal((await get(sy, `/m/${i}`)).status, 200);
  assert.ok(v4.hits >= 2 && v6.hits >= 2, `v4 ${v4.hits}, v6 ${v6.hits}`);
  const config = JSON.parse((await adminGet(sy, '/config')).text);
  const entry = config.upstream_names.find((n) => n.host === 'mixed.test');
  assert.deepEqual(entry.addresses.map((a) => a.address).sort(), ['127.0.0.2', '::1']);
});

test('a pooled connection to an address that left the answer is not reused', async () => {
  const { dns, sy, servers } = await setup({
    addrs: ['127.0.0.2'], ttl: 1, backends: ['127.0.0.2', '127.0.0.3'], keepAlive: true,
  });
  for (let i = 0; i < 3; i++) assert.equal((await get(sy, `/pooled/${i}`)).status, 200);
  dns.set('api.test', ['127.0.0.3'], 60);
  // Once the refreshed answer is in, no request goes to 127.0.0.2 again,
  // although idle keep-alive connections to it sit in the pool.
  await eventually(async () => {
    assert.equal((await get(sy, '/moved')).status, 200);
    return servers['127.0.0.3'].hits > 0;
  }, { what: 'requests on the new address', timeoutMs: 15000 * SLOW, intervalMs: 200 });
  const before = servers['127.0.0.2'].hits;
  for (let i = 0; i < 10; i++) assert.equal((await get(sy, `/after/${i}`)).status, 200);
  assert.equal(servers['127.0.0.2'].hits, before, 'the old address got no request after the change');
});
