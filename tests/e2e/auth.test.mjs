// SPEC §2 auth policies and §5.5 as a client sees them: JWTs minted by the
// `jose` package with RSA (RS256, PS256), EC (ES256), Ed25519 and HMAC keys,
// verified against keys switchyard fetches from a local HTTPS JWKS endpoint
// (test CA, the policy's ca_file) that rotates its keys mid-test; the
// classic forgeries refused; forward_claims headers set and forged copies
// dropped; Basic users made by `htpasswd -B` and `openssl passwd -6`; IAM
// requests passed byte for byte. Nothing refused ever reaches the backend,
// and the access log names the subject but never a token or password.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, headerValues, errorMessage, eventually, sleep, tempDir, jsonLines, HOST, SLOW } from './lib/harness.mjs';
import { rawExchange, rawJson } from './lib/rawhttp.mjs';
import { makeTestPki, makeKey, mint, mintHs256, startJwksServer } from './lib/auth-issuer.mjs';

const ISS = 'https://issuer.test';
const SIG = 'a'.repeat(16) + '0123456789abcdef'.repeat(3);
const AUTHZ = `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=${SIG}`;
const HS_SECRET = crypto.randomBytes(32);
const PASSWORDS = { alice: 'alice pw: bcrypt', bob: 'bob-pw-sha512' };

let echo, sy, issuer, pki, keys;

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra = {}) => ({ iss: ISS, aud: 'orders-api', sub: 'user-1', token_use: 'access', iat: now(), exp: now() + 600, ...extra });
const b64 = (s) => Buffer.from(s).toString('base64');
const b64url = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

function htpasswdBcrypt(user, password) {
  // "user:$2y$..." from apache2-utils; -C 5 keeps the test quick.
  const line = execFileSync('htpasswd', ['-nbB', '-C', '5', user, password], { encoding: 'utf8' }).trim();
  return line.slice(line.indexOf(':') + 1);
}

function opensslSha512(password) {
  return execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: password, encoding: 'utf8' }).trim();
}

before(async () => {
  const dir = tempDir('sy-auth-');
  pki = makeTestPki(dir);
  keys = {
    rsa: await makeKey('RS256', 'rsa-1', { modulusLength: 2048 }),
    pss: await makeKey('PS256', 'pss-1', { modulusLength: 2048 }),
    ec: await makeKey('ES256', 'ec-1'),
    ed: await makeKey('EdDSA', 'ed-1', { crv: 'Ed25519' }),
  };
  issuer = await startJwksServer(pki, [keys.rsa, keys.pss, keys.ec, keys.ed]);
  echo = await startEcho({ name: 'auth' });
  sy = await startSwitchyard({
    dir,
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: {
        public: { type: 'none' },
        partners: {
          type: 'basic',
          realm: 'partners',
          users: { alice: htpasswdBcrypt('alice', PASSWORDS.alice), bob: opensslSha512(PASSWORDS.bob) },
        },
        users: {
          type: 'jwt',
          issuer: ISS,
          audiences: ['orders-api', 'billing-api'],
          jwks_uri: issuer.uri,
          ca_file: pki.ca,
          algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          clock_skew_seconds: 5,
          required_claims: { token_use: 'access' },
          forward_claims: { sub: 'X-User-Sub', tier: 'X-Tier' },
        },
        hmac: {
          type: 'jwt',
          issuer: ISS,
          hs_secret_base64: HS_SECRET.toString('base64'),
          algorithms: ['HS256'],
          forward_claims: { sub: 'X-User-Sub' },
        },
        aws: { type: 'iam' },
      },
    }),
    routes: [
      route('/public', echo.port),
      route('/basic', echo.port, { auth: 'partners' }),
      route('/jwt', echo.port, { auth: 'users' }),
      route('/hmac', echo.port, { auth: 'hmac' }),
      route('/iam', echo.port, { auth: 'aws' }),
    ],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
  await issuer?.close();
});

async function expectRefused(p, headers = {}, status = 401) {
  const before = echo.stats.requests;
  const r = await get(sy, p, headers);
  assert.equal(r.status, status, `${p} ${JSON.stringify(headers).slice(0, 200)} -> ${r.status} ${r.text}`);
  if (status === 401) assert.ok(r.headers['www-authenticate'], `${p}: 401 without WWW-Authenticate`);
  errorMessage(r);
  assert.equal(echo.stats.requests, before, `${p}: a refused request reached the backend`);
  return r;
}

// The first JWKS fetch runs on the control plane after start: wait for it.
async function okWhenKeysArrive(p, headers) {
  return eventually(async () => {
    const r = await get(sy, p, headers);
    return r.status === 200 ? r : null;
  }, { timeoutMs: 10000 * SLOW, what: `${p} accepted` });
}

test('a public route needs nothing', async () => {
  assert.equal((await get(sy, '/public/x')).status, 200);
});

test('jwt: RS256, PS256, ES256 and EdDSA tokens from the JWKS endpoint are accepted', async () => {
  for (const k of [keys.rsa, keys.pss, keys.ec, keys.ed]) {
    const tok = await mint(k, claims({ sub: `sub-${k.kid}` }));
    const r = await okWhenKeysArrive('/jwt/x', bearer(tok));
    const e = r.json();
    assert.deepEqual(headerValues(e.headers, 'x-user-sub'), [`sub-${k.kid}`], k.alg);
  }
  // An array audience containing one of ours.
  const tok = await mint(keys.ec, claims({ aud: ['other', 'billing-api'] }));
  assert.equal((await get(sy, '/jwt/x', bearer(tok))).status, 200);
  assert.ok(issuer.fetches >= 1);
});

test('jwt: forward_claims headers arrive and client-forged copies do not', async () => {
  const tok = await mint(keys.rsa, claims({ sub: 'real-user', tier: 3 }));
  const req = `GET /jwt/fw HTTP/1.1\r\nHost: ${HOST}\r\nX-User-Sub: forged\r\nx-user-sub: forged-too\r\nX-TIER: 99\r\nAuthorization: Bearer ${tok}\r\n\r\n`;
  const { res } = await rawExchange(sy.port, req);
  assert.equal(res.status, 200, res.text);
  const e = rawJson(res);
  assert.deepEqual(headerValues(e.headers, 'x-user-sub'), ['real-user']);
  assert.deepEqual(headerValues(e.headers, 'x-tier'), ['3']);
  // The bearer token itself still goes upstream (the backend may want it).
  assert.equal(headerValues(e.headers, 'authorization').length, 1);
  // A token without the claim: the forged header is dropped, none is added.
  const tok2 = await mint(keys.rsa, claims({ sub: 'real-user' }));
  const r2 = await get(sy, '/jwt/fw', { ...bearer(tok2), 'X-Tier': 'admin' });
  assert.equal(r2.status, 200);
  assert.deepEqual(headerValues(r2.json().headers, 'x-tier'), []);
});

test('jwt: expired, not yet valid, wrong issuer, wrong audience, tampered and alg none are refused', async () => {
  const cases = {
    expired: await mint(keys.rsa, claims({ exp: now() - 60 })),
    'not yet valid': await mint(keys.rsa, claims({ nbf: now() + 300 })),
    'issued in the future': await mint(keys.rsa, claims({ iat: now() + 300 })),
    'no exp': await mint(keys.rsa, (({ exp, ...c }) => c)(claims())),
    'wrong issuer': await mint(keys.ec, claims({ iss: 'https://evil.test' })),
    'wrong audience': await mint(keys.ec, claims({ aud: 'payments-api' })),
    'unknown kid': await mint({ ...keys.ec, kid: 'nope' }, claims()),
  };
  const good = await mint(keys.rsa, claims());
  const [h, p, s] = good.split('.');
  cases.tampered = `${h}.${b64url({ ...claims(), sub: 'admin' })}.${s}`;
  cases['alg none'] = `${b64url({ alg: 'none', typ: 'JWT' })}.${p}.`;
  cases['alg None with the signature'] = `${b64url({ alg: 'None', kid: 'rsa-1' })}.${p}.${s}`;
  cases['crit header'] = await mint(keys.rsa, claims(), { crit: ['exp'] }).catch(() => null);
  cases['padded'] = `${good}==`;
  cases.garbage = 'garbage';
  for (const [what, tok] of Object.entries(cases)) {
    if (!tok) continue;
    const r = await expectRefused('/jwt/x', bearer(tok));
    assert.match(r.headers['www-authenticate'], /^Bearer error="invalid_token"/, what);
  }
  const r = await expectRefused('/jwt/x');
  assert.match(r.headers['www-authenticate'], /^Bearer\b/);
  await expectRefused('/jwt/x', { Authorization: `Basic ${b64('alice:x')}` });
});

test('jwt: HS256 signed with the RSA public key (algorithm confusion) is refused', async () => {
  const pub = keys.rsa.publicKey; // a node KeyObject
  const payload = b64url(claims());
  for (const secret of [
    pub.export({ type: 'spki', format: 'pem' }),
    pub.export({ type: 'pkcs1', format: 'pem' }),
    JSON.stringify(keys.rsa.jwk),
  ]) {
    for (const header of [{ alg: 'HS256', kid: 'rsa-1' }, { alg: 'HS256' }]) {
      const input = `${b64url(header)}.${payload}`;
      const sig = crypto.createHmac('sha256', secret).update(input).digest('base64url');
      await expectRefused('/jwt/x', bearer(`${input}.${sig}`));
    }
  }
});

test('jwt: a valid token failing required_claims gets 403', async () => {
  const tok = await mint(keys.ed, claims({ token_use: 'id' }));
  const r = await expectRefused('/jwt/x', bearer(tok), 403);
  assert.match(errorMessage(r), /claim/);
});

test('jwt: HS256 with the policy secret works; another secret does not', async () => {
  const tok = await mintHs256(HS_SECRET, claims({ sub: 'svc' }));
  const r = await get(sy, '/hmac/x', bearer(tok));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(headerValues(r.json().headers, 'x-user-sub'), ['svc']);
  await expectRefused('/hmac/x', bearer(await mintHs256(crypto.randomBytes(32), claims())));
  // The RSA route never takes HMAC tokens, even with its own secret.
  await expectRefused('/jwt/x', bearer(tok));
});

test('jwt: rotated keys are picked up without a restart, and unknown kids cannot flood the issuer', async () => {
  const fresh = await makeKey('RS256', 'rsa-2', { modulusLength: 2048 });
  const oldTok = await mint(keys.rsa, claims({ sub: 'old' }));
  assert.equal((await get(sy, '/jwt/x', bearer(oldTok))).status, 200);
  issuer.publish([fresh, keys.ec]);
  const tok = await mint(fresh, claims({ sub: 'rotated' }));
  // The first request with the new kid is refused and asks for a refetch;
  // one is allowed every 30 s per issuer, so this can take that long.
  const started = Date.now();
  const r = await eventually(async () => {
    const x = await get(sy, '/jwt/x', bearer(tok));
    return x.status === 200 ? x : null;
  }, { timeoutMs: 45000 * SLOW, intervalMs: 500, what: 'the rotated key accepted' });
  assert.deepEqual(headerValues(r.json().headers, 'x-user-sub'), ['rotated']);
  console.log(`rotation picked up after ${Date.now() - started} ms`);
  // The removed key no longer verifies, though its token was cached.
  await expectRefused('/jwt/x', bearer(oldTok));
  // Tokens with made-up kids: each asks for a refetch, none gets one now.
  const fetches = issuer.fetches;
  for (let i = 0; i < 20; i++) await expectRefused('/jwt/x', bearer(await mint({ ...fresh, kid: `made-up-${i}` }, claims())));
  await sleep(1500);
  assert.equal(issuer.fetches, fetches, 'unknown kids triggered fetches inside the 30 s window');
});

test('basic: htpasswd -B and openssl passwd -6 users get in; everything else gets 401', async () => {
  for (const [user, pw] of Object.entries(PASSWORDS)) {
    const r = await get(sy, '/basic/x', { Authorization: `Basic ${b64(`${user}:${pw}`)}` });
    assert.equal(r.status, 200, `${user}: ${r.text}`);
    // The credentials themselves travel on (the backend may check them too).
    assert.equal(headerValues(r.json().headers, 'authorization').length, 1);
  }
  const r = await expectRefused('/basic/x');
  assert.match(r.headers['www-authenticate'], /^Basic realm="partners"$/);
  await expectRefused('/basic/x', { Authorization: `Basic ${b64('alice:wrong')}` });
  await expectRefused('/basic/x', { Authorization: `Basic ${b64(`bob:${PASSWORDS.alice}`)}` });
  await expectRefused('/basic/x', { Authorization: `Basic ${b64(`mallory:${PASSWORDS.alice}`)}` });
  await expectRefused('/basic/x', { Authorization: `Basic ${b64('alice')}` });
  await expectRefused('/basic/x', { Authorization: 'Basic !!!notbase64' });
  await expectRefused('/basic/x', { Authorization: `Bearer ${b64(`alice:${PASSWORDS.alice}`)}` });
});

test('iam: no Authorization, or a malformed one, gets 401', async () => {
  await expectRefused('/iam/x');
  const bad = [
    'Bearer abc',
    'AWS4-HMAC-SHA256',
    'AWS4-HMAC-SHA256 garbage',
    `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date`,
    `AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=${SIG}`,
    `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=xyz`,
    `AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=${SIG}`,
  ];
  for (const a of bad) await expectRefused('/iam/x', { Authorization: a, 'X-Amz-Date': '20260101T000000Z' });
});

test('iam: a well-formed SigV4 header and every X-Amz-* header pass byte for byte', async () => {
  const amz = [
    ['X-Amz-Date', '20260101T000000Z'],
    ['X-Amz-Security-Token', 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+/=='],
    ['X-Amz-Content-Sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['x-amz-user-agent', 'aws-sdk-js/3.0  (odd  spacing)'],
  ];
  const req = `GET /iam/items?b=2&a=1 HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: ${AUTHZ}\r\n` + amz.map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  const { res } = await rawExchange(sy.port, req);
  assert.equal(res.status, 200, res.text);
  const e = rawJson(res);
  assert.equal(e.url, '/iam/items?b=2&a=1');
  assert.deepEqual(headerValues(e.headers, 'authorization'), [AUTHZ]);
  for (const [k, v] of amz) assert.deepEqual(headerValues(e.headers, k), [v], k);
  const names = e.headers.map(([k]) => k);
  for (const [k] of amz) assert.ok(names.includes(k) || names.includes(k.toLowerCase()), `${k} missing`);
});

test('/explain shows the Host an iam client must sign for', async () => {
  const r = await get(sy, '/x', {}, { port: sy.adminPort, host: `127.0.0.1:${sy.adminPort}`, path: `/explain?host=${HOST}&path=/iam/x` });
  assert.equal(r.status, 200);
  assert.ok(r.text.includes(`127.0.0.1:${echo.port}`) || r.text.includes('"127.0.0.1"'), r.text);
  assert.match(r.text, /aws|iam/);
});

test('the access log names the policy and subject, never a token or password', async () => {
  const tok = await mint(keys.ec, claims({ sub: 'log-subject' }));
  assert.equal((await get(sy, '/jwt/log', bearer(tok))).status, 200);
  assert.equal((await get(sy, '/basic/log', { Authorization: `Basic ${b64(`alice:${PASSWORDS.alice}`)}` })).status, 200);
  const lines = await eventually(() => {
    const l = jsonLines(fs.readFileSync(sy.accessLog, 'utf8'));
    return l.some((x) => x.path === '/basic/log') ? l : null;
  }, { what: 'access log lines' });
  const jwtLine = lines.find((x) => x.path === '/jwt/log');
  assert.deepEqual(jwtLine.auth, { policy: 'users', subject: 'log-subject' });
  assert.deepEqual(lines.find((x) => x.path === '/basic/log').auth, { policy: 'partners', subject: 'alice' });
  const all = fs.readFileSync(sy.accessLog, 'utf8') + sy.stderr() + sy.stdout();
  assert.ok(!all.includes(tok.split('.')[2]), 'a token signature is in the logs');
  assert.ok(!all.includes(tok.split('.')[1]), 'a token payload is in the logs');
  for (const pw of Object.values(PASSWORDS)) assert.ok(!all.includes(pw), 'a password is in the logs');
  assert.ok(!all.includes(HS_SECRET.toString('base64')), 'the HMAC secret is in the logs');
});
