// Attack: something in the VPC impersonating an API over TLS (docs/security.md,
// "TLS chain and name always verified"). Certificates from the destination's
// own ca_file that should not be accepted for the name: the name only in the
// subject CN with no subjectAltName (RFC 9525 §6.3: a client must not use the
// CN), an IP SAN for a host name, a DNS SAN spelling an IP for an IP target,
// wildcards over a TLD, a bare "*" and a partial wildcard. Each must be a 502
// that never sends the request; the good certificate (also matched through
// case and a trailing dot in tls_verify_name) keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startSwitchyard, makePolicy, get, errorMessage, tempDir } from './lib/harness.mjs';
import { makeCa } from './lib/tls-ca.mjs';
import { startTlsBackend } from './lib/tls-backend.mjs';

let dir, sy;
const b = {};

before(async () => {
  dir = tempDir('sy-attack-tls-');
  const ca = makeCa(dir);
  const certs = {
    cnonly: ca.issue({ cn: 'cn.internal.example', dns: [] }),
    ipsan: ca.issue({ cn: 'x', ips: ['127.0.0.1'] }),
    dnsip: ca.issue({ dns: ['127.0.0.1'] }),
    wildtld: ca.issue({ dns: ['*.example'] }),
    star: ca.issue({ dns: ['*'] }),
    partial: ca.issue({ dns: ['a*.internal.example'] }),
    ok: ca.issue({ dns: ['ok.internal.example'] }),
  };
  for (const [k, c] of Object.entries(certs)) b[k] = await startTlsBackend(c);
  const via = (k) => ({ connect_to: `127.0.0.1:${b[k].port}`, ca_file: ca.cert });
  const dests = [
    { host: 'cn.internal.example', ...via('cnonly') },
    { host: 'ipsan.internal.example', ...via('ipsan') },
    { host: '127.0.0.1', port: b.dnsip.port, ca_file: ca.cert },
    { host: 'wildtld.example', ...via('wildtld') },
    { host: 'star.internal.example', ...via('star') },
    { host: 'abc.internal.example', ...via('partial') },
    { host: 'ok.internal.example', ...via('ok') },
    { host: 'okcase.internal.example', ...via('ok'), tls_verify_name: 'OK.INTERNAL.EXAMPLE' },
    { host: 'okdot.internal.example', ...via('ok'), tls_verify_name: 'ok.internal.example.' },
  ].map((d) => ({ scheme: 'https', port: 443, ...d }));
  const routes = [
    ['/cn', 'https://cn.internal.example'], ['/ipsan', 'https://ipsan.internal.example'], ['/dnsip', `https://127.0.0.1:${b.dnsip.port}`],
    ['/wildtld', 'https://wildtld.example'], ['/star', 'https://star.internal.example'], ['/partial', 'https://abc.internal.example'],
    ['/ok', 'https://ok.internal.example'], ['/okcase', 'https://okcase.internal.example'], ['/okdot', 'https://okdot.internal.example'],
  ].map(([p, target]) => ({ path: p, target }));
  sy = await startSwitchyard({ policy: makePolicy({ destinations: dests }), routes });
});

after(async () => {
  if (sy) await sy.stopClean();
  for (const v of Object.values(b)) await v.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

for (const [p, backend, what] of [
  ['/cn', 'cnonly', 'the name only in the subject CN, no subjectAltName'],
  ['/ipsan', 'ipsan', 'an IP subjectAltName for a host name'],
  ['/dnsip', 'dnsip', 'a DNS subjectAltName "127.0.0.1" for an IP target'],
  ['/wildtld', 'wildtld', 'a wildcard over a top-level label (*.example)'],
  ['/star', 'star', 'a bare "*"'],
  ['/partial', 'partial', 'a partial wildcard (a*.internal.example)'],
]) {
  test(`502, request never sent: ${what}`, async () => {
    const before = b[backend].requests.length;
    const r = await get(sy, `${p}/x`);
    assert.equal(r.status, 502, `${p}: ${r.status} ${r.text}`);
    assert.match(errorMessage(r), /TLS verification failed/);
    assert.equal(b[backend].requests.length, before, 'the request reached the backend');
  });
}

test('the right certificate serves, whatever the case or root dot of tls_verify_name', async () => {
  for (const p of ['/ok', '/okcase', '/okdot']) {
    const r = await get(sy, `${p}/x`);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.equal(r.json().servername, 'ok.internal.example');
  }
});
