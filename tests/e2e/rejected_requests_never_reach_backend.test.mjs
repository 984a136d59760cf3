// A request switchyard refuses must never reach a backend, even with a
// default route "/" that would take anything. The backend counts every
// request whose head it received; the count must not move while malformed
// messages, bad Hosts and bad paths are sent, and must move by exactly one
// for a good request sent afterwards (so the counter is really wired).
// With SY_VECTORS present, the published smuggling, SSRF and parser cases
// are replayed too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, REPO, HOST, SLOW } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';
import { malformedMessages, badPaths, badHosts, pathRequest } from './lib/malformed.mjs';

const VECTORS = process.env.SY_VECTORS || path.join(REPO, 'tests/vectors');
let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'catch-all' });
  sy = await startSwitchyard({
    // example.com is listened on so the smuggling probes (which carry
    // Host: example.com) are refused for their framing, not their Host.
    policy: makePolicy({ ports: [echo.port], listen_domains: [HOST, 'example.com'] }),
    routes: [route('/', echo.port)],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

// Sends each case on its own connection; returns the names of cases that
// reached the backend or got a success answer. Cases in firstMayPass start
// with a valid request that may be forwarded; only what follows it must not.
async function sendAll(cases, firstMayPass = new Set()) {
  const leaked = [];
  for (const [name, bytes] of cases) {
    if (firstMayPass.has(name)) {
      const before = echo.stats.requests;
      const target = Buffer.from(bytes).toString('latin1').split(' ')[1];
      await rawExchange(sy.port, bytes, { endWrite: true, timeout: 10000 * SLOW }).catch(() => null);
      const seen = echo.stats.urls.slice(before);
      if (seen.length > 1 || (seen.length === 1 && seen[0] !== target)) leaked.push(`${name}: the backend saw ${seen.join(' | ')}`);
      continue;
    }
    const before = echo.stats.requests;
    let res;
    try {
      ({ res } = await rawExchange(sy.port, bytes, { endWrite: true, timeout: 10000 * SLOW }));
    } catch (e) {
      leaked.push(`${name}: ${e.message}`);
      continue;
    }
    if (echo.stats.requests !== before) leaked.push(`${name}: reached the backend (${echo.stats.urls.slice(before).join(' | ')})`);
    else if (res && res.status < 400) leaked.push(`${name}: answered ${res.status}`);
  }
  return leaked;
}

async function assertCounterWorks() {
  const before = echo.stats.requests;
  const { res } = await rawExchange(sy.port, pathRequest('/still-works'));
  assert.equal(res.status, 200);
  assert.equal(echo.stats.requests, before + 1, 'a good request must reach the backend exactly once');
}

test('malformed messages never reach the backend', async () => {
  assert.deepEqual(await sendAll(malformedMessages('/api')), []);
  await assertCounterWorks();
});

test('bad Host values never reach the backend', async () => {
  const cases = [
    ...badHosts('/api'),
    ['not a listen domain', `GET /x HTTP/1.1\r\nHost: internal.example.net\r\n\r\n`],
    ['metadata address as Host', `GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n`],
  ];
  assert.deepEqual(await sendAll(cases), []);
  await assertCounterWorks();
});

test('bad paths never reach the backend', async () => {
  assert.deepEqual(await sendAll(badPaths('/api').map((p) => [JSON.stringify(p), pathRequest(p)])), []);
  await assertCounterWorks();
});

function loadVectors(file) {
  const f = path.join(VECTORS, file);
  if (!fs.existsSync(f)) return null;
  return JSON.parse(fs.readFileSync(f, 'utf8')).cases;
}

// Vector verdicts the SPEC overrides: a trailing dot on a listen domain is
// ignored (§2), and parentheses are legal path characters §5.3 keeps.
function specAccepts(c) {
  const raw = Buffer.from(c.raw_request_b64, 'base64').toString('latin1');
  if (/\r\nHost: api\.example\.com\.\r\n/.test(raw) && !/Host:.*\r\nHost:/s.test(raw)) return true;
  if (raw.includes('(S(X))')) return true;
  return false;
}

test('published SSRF / Host / path cases never reach the backend', async (t) => {
  const cases = loadVectors('ssrf/ssrf_host_path_cases.json');
  assert.ok(cases, `test vectors not found under ${VECTORS}`);
  const rejects = cases.filter((c) => c.expected === 'reject' && !specAccepts(c));
  assert.ok(rejects.length > 100);
  const leaked = await sendAll(rejects.map((c) => [c.name, Buffer.from(c.raw_request_b64, 'base64')]));
  assert.deepEqual(leaked, []);
  await assertCounterWorks();
});

test('published smuggling probes (every Transfer-Encoding mutation) never reach the backend', async (t) => {
  const cases = loadVectors('http/smuggler_te_mutations_full.json');
  assert.ok(cases, `test vectors not found under ${VECTORS}`);
  const leaked = await sendAll(cases.map((c) => [c.name, Buffer.from(c.raw_request_b64, 'base64')]));
  assert.deepEqual(leaked, []);
  await assertCounterWorks();
});

// Vector cases whose first request is valid under the SPEC, so it may be
// forwarded: an Upgrade request (Upgrade/Connection are hop-by-hop and
// dropped; the bytes after it are the refused part), and Content-Encoding:
// chunked, which is not a transfer coding.
const FIRST_MAY_PASS = new Set([
  'llhttp/connection: `upgrade` / Upgrade GET request',
  'llhttp/connection: `upgrade` / Upgrade POST request',
  'smuggler/contentEnc [CL.TE probe]',
]);

test('published parser cases refused by a strict proxy never reach the backend', async (t) => {
  const cases = loadVectors('http/http_request_cases.json');
  assert.ok(cases, `test vectors not found under ${VECTORS}`);
  const rejects = cases.filter((c) => c.expected === 'reject');
  const leaked = await sendAll(rejects.map((c) => [c.name, Buffer.from(c.raw_request_b64, 'base64')]), FIRST_MAY_PASS);
  assert.deepEqual(leaked, []);
  await assertCounterWorks();
});
