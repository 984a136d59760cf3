// Attack: Basic auth throttle bypasses and secrets leaking into logs
// (docs/security.md, "password hashes off the event loop, bounded and
// throttled", "credentials and tokens are never logged", "query values
// redacted"). One worker, so the per-worker limits are exact. A guesser
// rotates X-Forwarded-For, spells the user name in other cases, with
// Unicode look-alikes or trailing bytes, and sends Authorization twice;
// none of it buys more guesses or a hash. Then every password, credential
// and query value sent during the run, and an API key in a route that fails
// upstream, must be absent from the access log, the error log, /config and
// /metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, adminGet, parseMetrics, freePort, runCli, HOST } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

const PASSWORD = 'Correct-Horse-7781';
const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
const basic = (u, p) => `Basic ${b64(`${u}:${p}`)}`;
const SECRETS = [PASSWORD, b64(`alice:${PASSWORD}`), 'QSECRET-9d1f', 'WRONGPW-', 'DEADKEY-77c1'];

let echo, sy, deadPort;

before(async () => {
  echo = await startEcho({ name: 'auth' });
  deadPort = await freePort(); // nothing listens: the upstream fails
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: PASSWORD, encoding: 'utf8' }).trim();
  sy = await startSwitchyard({
    workers: 1,
    policy: makePolicy({
      ports: [echo.port, deadPort],
      auth_policies: { public: { type: 'none' }, partners: { type: 'basic', realm: 'partners', users: { alice: hash, bob: hash, carol: hash, dave: hash } } },
    }),
    routes: [route('/public', echo.port), route('/private', echo.port, { auth: 'partners' }), route('/dead', deadPort)],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

// One request from a chosen loopback source address.
function request(pathValue, headers, localAddress = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: sy.port, path: pathValue, localAddress, agent: false, headers: { Host: HOST, ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function hashes() {
  const m = parseMetrics((await adminGet(sy, '/metrics')).text).filter((x) => x.name === 'switchyard_basic_auth_total');
  return m.filter((x) => ['ok', 'wrong'].includes(x.labels.outcome)).reduce((s, x) => s + x.value, 0);
}

test('two Authorization headers are as none, even when one is right', async () => {
  for (const [a, b] of [[basic('alice', PASSWORD), basic('bob', 'WRONGPW-x')], [basic('bob', 'WRONGPW-y'), basic('alice', PASSWORD)], [basic('alice', PASSWORD), basic('alice', PASSWORD)]]) {
    const before = echo.stats.urls.length;
    const { res } = await rawExchange(sy.port, `GET /private/x HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: ${a}\r\nauthorization: ${b}\r\n\r\n`);
    assert.equal(res.status, 401);
    assert.equal(echo.stats.urls.length, before, 'reached the backend');
  }
});

test('user name spellings are other (unknown) users: no hash, no access', async () => {
  const before = await hashes();
  for (const u of ['ALICE', 'Alice', 'alice ', ' alice', 'alice\u200b', 'аlice' /* Cyrillic a */, 'alice\u0000', 'ali%63e']) {
    const r = await request('/private/x', { Authorization: basic(u, PASSWORD) }, '127.0.0.5');
    assert.equal(r.status, 401, `${JSON.stringify(u)}: ${r.status}`);
  }
  // Base64 without padding, or with spaces inside, is not a second spelling.
  for (const auth of [`Basic ${b64(`alice:${PASSWORD}1`).replace(/=+$/, '')}`, `Basic ${b64(`alice:${PASSWORD}x`).replace(/(.{4})/, '$1 ')}`]) {
    const r = await request('/private/x', { Authorization: auth }, '127.0.0.5');
    assert.ok(r.status === 401, `${auth}: ${r.status}`);
  }
  assert.equal(await hashes(), before, 'an unknown spelling of a user cost a hash');
});

test('rotating X-Forwarded-For does not reset the per-address throttle', async () => {
  let throttledAt = -1;
  for (let i = 0; i < 40; i++) {
    // Unknown users cost no hash but count against the address.
    const r = await request('/private/x', { Authorization: basic(`nobody${i}`, `WRONGPW-${i}`), 'X-Forwarded-For': `10.0.${i}.1` }, '127.0.0.2');
    if (r.status === 429) {
      throttledAt = i;
      assert.ok(Number(r.headers['retry-after']) > 0);
      break;
    }
    assert.equal(r.status, 401);
  }
  assert.equal(throttledAt, 30, 'the 31st failure from one address was not throttled');
  // The right password (never verified before) from the throttled address
  // is not even hashed.
  const before = await hashes();
  const r = await request('/private/x', { Authorization: basic('carol', PASSWORD), 'X-Forwarded-For': '1.2.3.4' }, '127.0.0.2');
  assert.equal(r.status, 429);
  assert.equal(await hashes(), before);
});

test('the per-user throttle holds across addresses and is not reset by other users', async () => {
  let throttled = false;
  for (let i = 0; i < 12 && !throttled; i++) {
    const r = await request('/private/x', { Authorization: basic('dave', `WRONGPW-u${i}`) }, `127.0.1.${i + 1}`);
    throttled = r.status === 429;
  }
  assert.ok(throttled, 'dave was never throttled');
  const before = await hashes();
  // A new address, the right password: dave is still throttled, unhashed.
  const r = await request('/private/x', { Authorization: basic('dave', PASSWORD) }, '127.0.2.1');
  assert.equal(r.status, 429);
  // Other users' failures from many addresses don't evict dave's window.
  for (let i = 0; i < 5; i++) await request('/private/x', { Authorization: basic('nobody', `WRONGPW-n${i}`) }, `127.0.3.${i + 1}`);
  assert.equal((await request('/private/x', { Authorization: basic('dave', PASSWORD) }, '127.0.2.2')).status, 429);
  assert.equal(await hashes(), before);
  // bob is a different user: unaffected.
  assert.equal((await request('/private/x', { Authorization: basic('bob', PASSWORD) }, '127.0.4.1')).status, 200);
});

test('no password, credential or query value reaches the logs, /config or /metrics', async () => {
  await request('/public/x?api_key=QSECRET-9d1f&page=2', {});
  await request('/dead/x?token=DEADKEY-77c1', { Authorization: basic('alice', PASSWORD) });
  await request('/private/x?k=QSECRET-9d1f', { Authorization: basic('alice', PASSWORD) }, '127.0.5.1');
  // A refused request whose head carries credentials.
  await rawExchange(sy.port, `GET /private/x?k=QSECRET-9d1f HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: ${basic('alice', PASSWORD)}\r\nBad Header: x\r\n\r\n`);
  await new Promise((r) => setTimeout(r, 300));
  const places = {
    'access log': fs.readFileSync(sy.accessLog, 'utf8'),
    'error log': sy.stderr(),
    '/config': (await adminGet(sy, '/config')).text,
    '/metrics': (await adminGet(sy, '/metrics')).text,
  };
  assert.match(places['access log'], /api_key=REDACTED/);
  for (const [where, text] of Object.entries(places)) {
    for (const s of SECRETS) assert.ok(!text.includes(s), `${where} holds ${s}`);
  }
});

test('password hashes and HMAC secrets from the policy never reach /config, the logs or check output', async () => {
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: PASSWORD, encoding: 'utf8' }).trim();
  const salt = hash.split('$')[2];
  const secret = Buffer.from('hmac-secret-for-attack-test-0123456789').toString('base64');
  const s = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: {
        public: { type: 'none' },
        b: { type: 'basic', users: { alice: hash } },
        j: { type: 'jwt', issuer: 'https://issuer.example', audiences: ['x'], algorithms: ['HS256'], hs_secret_base64: secret },
      },
    }),
    routes: [route('/b', echo.port, { auth: 'b' }), route('/j', echo.port, { auth: 'j' })],
  });
  try {
    const check = runCli(['check', '--policy', s.policyFile, '--routes', s.routesFile, '--json']);
    const texts = {
      '/config': (await adminGet(s, '/config')).text, '/metrics': (await adminGet(s, '/metrics')).text,
      'error log': s.stderr(), 'check': check.stdout + check.stderr,
    };
    for (const [where, text] of Object.entries(texts)) {
      for (const x of [salt, hash, secret]) assert.ok(!text.includes(x), `${where} holds ${x}`);
    }
  } finally {
    await s.stopClean();
  }
});
