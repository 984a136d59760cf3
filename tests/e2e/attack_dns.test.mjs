// Attack: a hostile DNS answer (docs/security.md, "address guard" and "every
// DNS answer guarded as it arrives"). A listed destination name is answered
// by a DNS server the attacker controls with the metadata service, link-local,
// unspecified, multicast or loopback addresses in every IPv6 spelling that
// carries an IPv4 address (mapped, compatible, SIIT-translated, NAT64
// well-known and local-use prefixes). Every such answer must be refused
// whole before any connect: 502 "upstream address refused", the security log
// line, and the refused-answers metric; nothing connects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSwitchyard, get, adminGet, parseMetrics, errorMessage, freePort } from './lib/harness.mjs';
import { startDnsServer } from './lib/dns-server.mjs';

// name -> answer. IPv6 written in hex groups (the test DNS server does not
// read a dotted tail).
const HOSTILE = {
  metadata: ['169.254.169.254'],
  ecs: ['169.254.170.2'],
  mapped: ['::ffff:a9fe:a9fe'],
  compat: ['::a9fe:a9fe'],
  siit: ['::ffff:0:a9fe:a9fe'],
  nat64: ['64:ff9b::a9fe:a9fe'],
  nat64local: ['64:ff9b:1::a9fe:a9fe'],
  ec2v6: ['fd00:ec2::254'],
  linklocal6: ['fe80::1'],
  zero: ['0.0.0.0'],
  zero8: ['0.1.2.3'],
  unspec6: ['::'],
  mcast: ['224.0.0.1'],
  mcast6: ['ff02::1'],
  bcast: ['255.255.255.255'],
  mappedloop: ['::ffff:7f00:1'],
  siitloop: ['::ffff:0:7f00:1'],
  loopback: ['127.0.0.1'],
  mixed: ['10.1.2.3', '169.254.169.254'],
};

let dns, sy, trap, trapHits = 0, port;

before(async () => {
  dns = await startDnsServer();
  for (const [n, a] of Object.entries(HOSTILE)) dns.set(`${n}.test`, a, 60);
  // Whatever the router might connect to on loopback would land here.
  trap = net.createServer((s) => {
    trapHits++;
    s.destroy();
  });
  await new Promise((r) => trap.listen(0, '127.0.0.1', r));
  port = trap.address().port;
  sy = await startSwitchyard({
    policy: {
      listen_domains: ['api.example.com'],
      destinations: Object.keys(HOSTILE).map((n) => ({ scheme: 'http', host: `${n}.test`, port })),
      auth_policies: { public: { type: 'none' } },
      default_auth: 'public',
      allow_loopback_destinations: false,
    },
    routes: Object.keys(HOSTILE).map((n) => ({ path: `/${n}`, target: `http://${n}.test:${port}` })),
    extraArgs: ['--resolver', dns.address],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await dns?.close();
  trap?.close();
});

for (const [name, answer] of Object.entries(HOSTILE)) {
  test(`a DNS answer ${answer.join(', ')} is refused before any connect`, async () => {
    const r = await get(sy, `/${name}`);
    assert.equal(r.status, 502, r.text);
    assert.match(errorMessage(r), /upstream address refused/);
    if (!/loop/.test(name)) {
      // Refused as it arrived (loopback is only refused per connect, since a
      // policy may allow it).
      assert.match(sy.stderr(), new RegExp(`"msg":"security: DNS answer refused","host":"${name}\\.test"`));
    }
    assert.equal(trapHits, 0, 'something connected to the loopback trap');
  });
}

test('refused answers are counted per host', async () => {
  for (const n of Object.keys(HOSTILE)) await get(sy, `/${n}`);
  const m = parseMetrics((await adminGet(sy, '/metrics')).text).filter((x) => x.name === 'switchyard_dns_refused_answers_total');
  for (const n of ['siit', 'nat64local', 'mapped', 'nat64', 'mixed']) {
    const v = m.filter((x) => x.labels.host === `${n}.test`).reduce((s, x) => s + x.value, 0);
    assert.ok(v >= 1, `${n}.test: ${JSON.stringify(m)}`);
  }
});
