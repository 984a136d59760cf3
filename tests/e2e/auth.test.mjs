// SPEC §5.5 auth as a client sees it in this version: "basic" and "jwt"
// routes fail closed (401 with WWW-Authenticate, nothing forwarded) for
// anything the tests can send; "iam" routes need a well-formed SigV4
// Authorization header and then pass it and every X-Amz-* header upstream
// byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, headerValues, errorMessage, HOST } from './lib/harness.mjs';
import { rawExchange, rawJson } from './lib/rawhttp.mjs';

const BCRYPT = '$2y$10$abcdefghijklmnopqrstuu5Ga2TgB8KGFmy1p8D4y1YWs1l8cGpPK';
const SIG = 'a'.repeat(16) + '0123456789abcdef'.repeat(3);
const AUTHZ = `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=${SIG}`;
let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'auth' });
  sy = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: {
        public: { type: 'none' },
        partners: { type: 'basic', realm: 'partners', users: { alice: BCRYPT } },
        users: {
          type: 'jwt',
          issuer: 'https://issuer.example.com',
          audiences: ['orders-api'],
          jwks_uri: 'https://issuer.example.com/.well-known/jwks.json',
          algorithms: ['RS256', 'ES256'],
        },
        aws: { type: 'iam' },
      },
    }),
    routes: [
      route('/public', echo.port),
      route('/basic', echo.port, { auth: 'partners' }),
      route('/jwt', echo.port, { auth: 'users' }),
      route('/iam', echo.port, { auth: 'aws' }),
    ],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

async function expect401(p, headers = {}) {
  const before = echo.stats.requests;
  const r = await get(sy, p, headers);
  assert.equal(r.status, 401, `${p} ${JSON.stringify(headers)} -> ${r.status} ${r.text}`);
  assert.ok(r.headers['www-authenticate'], `${p}: 401 without WWW-Authenticate`);
  errorMessage(r);
  assert.equal(echo.stats.requests, before, `${p}: an unauthenticated request reached the backend`);
  return r;
}

const b64 = (s) => Buffer.from(s).toString('base64');
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

test('a public route needs nothing', async () => {
  assert.equal((await get(sy, '/public/x')).status, 200);
});

test('basic: missing or wrong credentials get 401 with a Basic challenge', async () => {
  const r = await expect401('/basic/x');
  assert.match(r.headers['www-authenticate'], /^Basic\b/i);
  assert.match(r.headers['www-authenticate'], /realm="?partners"?/);
  await expect401('/basic/x', { Authorization: `Basic ${b64('alice:wrong')}` });
  await expect401('/basic/x', { Authorization: `Basic ${b64('mallory:x')}` });
  await expect401('/basic/x', { Authorization: `Basic ${b64('alice')}` });
  await expect401('/basic/x', { Authorization: 'Basic !!!notbase64' });
  await expect401('/basic/x', { Authorization: `Bearer ${b64('alice:wrong')}` });
  await expect401('/basic/x', { Authorization: `Basic ${b64(`alice:${BCRYPT}`)}` });
});

test('jwt: missing, garbage, unsigned and alg=none tokens get 401 with a Bearer challenge', async () => {
  const r = await expect401('/jwt/x');
  assert.match(r.headers['www-authenticate'], /^Bearer\b/i);
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: 'https://issuer.example.com', aud: 'orders-api', sub: 'u1', exp: now + 600, iat: now };
  await expect401('/jwt/x', { Authorization: 'Bearer garbage' });
  await expect401('/jwt/x', { Authorization: `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.` });
  await expect401('/jwt/x', { Authorization: `Bearer ${b64url({ alg: 'RS256', kid: 'k1' })}.${b64url(claims)}.${'A'.repeat(342)}` });
  await expect401('/jwt/x', { Authorization: `Bearer ${b64url({ alg: 'HS256' })}.${b64url(claims)}.c2lnbmF0dXJl` });
  await expect401('/jwt/x', { Authorization: `Basic ${b64('alice:x')}` });
});

test('iam: no Authorization, or a malformed one, gets 401', async () => {
  await expect401('/iam/x');
  const bad = [
    'Bearer abc',
    'AWS4-HMAC-SHA256',
    'AWS4-HMAC-SHA256 garbage',
    `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date`,
    `AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=${SIG}`,
    `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, Signature=${SIG}`,
    `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=xyz`,
    `AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=${SIG}`,
  ];
  for (const a of bad) await expect401('/iam/x', { Authorization: a, 'X-Amz-Date': '20260101T000000Z' });
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
  // the names keep their case, too
  const names = e.headers.map(([k]) => k);
  for (const [k] of amz) assert.ok(names.includes(k) || names.includes(k.toLowerCase()), `${k} missing`);
});

test('/explain shows the Host an iam client must sign for', async () => {
  const r = await get(sy, '/x', {}, { port: sy.adminPort, host: `127.0.0.1:${sy.adminPort}`, path: `/explain?host=${HOST}&path=/iam/x` });
  assert.equal(r.status, 200);
  assert.ok(r.text.includes(`127.0.0.1:${echo.port}`) || r.text.includes('"127.0.0.1"'), r.text);
  assert.match(r.text, /aws|iam/);
});
