// Issue 9 item 4: headers switchyard sets by name (forward_claims targets,
// x-apigw-api-id) cannot be spoofed with another spelling. A CGI/WSGI
// backend reads "X_User_Sub", "x-user_sub" and "X-User-Sub" all as
// HTTP_X_USER_SUB and joins them ("admin,bob"), so the client's copies are
// dropped under every spelling that folds to the same name, and the
// backend sees switchyard's value alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, dest, get } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

const ISS = 'https://issuer.example.com';
const HS_SECRET = crypto.randomBytes(32);
const GW = 'gw.internal.example';
let echo, sy;

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
function token(claims) {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${input}.${crypto.createHmac('sha256', HS_SECRET).update(input).digest('base64url')}`;
}
const bob = () => token({ iss: ISS, aud: 'orders-api', sub: 'bob', iat: now(), exp: now() + 600 });

// What a WSGI/CGI server makes of the raw header list (PEP 3333, RFC 3875
// §4.1.18): HTTP_ + upper case with '-' as '_', repeats joined by ','.
function cgiEnviron(pairs) {
  const env = {};
  for (const [name, value] of pairs) {
    const key = `HTTP_${name.toUpperCase().replaceAll('-', '_')}`;
    env[key] = key in env ? `${env[key]},${value}` : value;
  }
  return env;
}

before(async () => {
  echo = await startEcho({ name: 'spellings' });
  sy = await startSwitchyard({
    policy: makePolicy({
      destinations: [dest(echo.port), dest(echo.port, { host: GW, connect_to: `127.0.0.1:${echo.port}`, api_id: 'a1b2c3d4e5' })],
      auth_policies: {
        public: { type: 'none' },
        users: {
          type: 'jwt',
          issuer: ISS,
          audiences: ['orders-api'],
          hs_secret_base64: HS_SECRET.toString('base64'),
          algorithms: ['HS256'],
          forward_claims: { sub: 'X-User-Sub', tier: 'X-Tier' },
        },
      },
    }),
    routes: [
      { path: '/jwt', target: `http://127.0.0.1:${echo.port}`, auth: 'users' },
      { path: '/gw', target: `http://${GW}:${echo.port}`, auth: 'users' },
    ],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

test('a forward_claims header spelled with _ does not reach the backend beside the claim', async () => {
  const r = await get(sy, '/jwt/me', { Authorization: `Bearer ${bob()}`, X_User_Sub: 'admin' });
  assert.equal(r.status, 200, r.text);
  const env = cgiEnviron(r.json().headers);
  assert.equal(env.HTTP_X_USER_SUB, 'bob');
});

test('every case and _/- spelling of a claim header is dropped, other names pass', async () => {
  const head =
    `GET /jwt/me HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer ${bob()}\r\n` +
    'x_user_sub: admin-1\r\nX-USER_SUB: admin-2\r\nx-User-Sub: admin-3\r\n' +
    // The token has no tier claim: X-Tier is not set, yet the client's
    // copies still go (a backend must not take them for a verified claim).
    'X_Tier: gold\r\nx-tier: platinum\r\n' +
    'X_User: kept\r\nConnection: close\r\n\r\n';
  const { res } = await rawExchange(sy.port, head);
  assert.equal(res.status, 200);
  const pairs = JSON.parse(res.body.toString('utf8')).headers;
  const env = cgiEnviron(pairs);
  assert.equal(env.HTTP_X_USER_SUB, 'bob');
  assert.equal(env.HTTP_X_TIER, undefined);
  assert.equal(env.HTTP_X_USER, 'kept');
  assert.ok(!JSON.stringify(pairs).includes('admin'), JSON.stringify(pairs));
});

test('x-apigw-api-id spelled with _ does not reach the backend', async () => {
  const r = await get(sy, '/gw/items', { Authorization: `Bearer ${bob()}`, x_apigw_api_id: 'client-chosen', 'X-Apigw-Api_Id': 'client-2' });
  assert.equal(r.status, 200, r.text);
  const env = cgiEnviron(r.json().headers);
  assert.equal(env.HTTP_X_APIGW_API_ID, 'a1b2c3d4e5');
  assert.equal(env.HTTP_X_USER_SUB, 'bob');
});
