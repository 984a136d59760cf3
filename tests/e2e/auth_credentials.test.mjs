// SPEC §2 auth policies with good and bad credentials: basic against every
// crypt hash family, and JWTs checked with hs_secret_base64 and an inline
// jwks (RS256, ES256): expiry and clock skew, nbf, iss, aud, allowed
// algorithms, required_claims (403), forward_claims (client copy removed).
// The hashes below were made with htpasswd, `openssl passwd` and libxcrypt
// for the passwords next to them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, headerValues, errorMessage, eventually, jsonLines, HOST } from './lib/harness.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

const USERS = {
  alice: ['$2y$04$THTU58oheOFT9e6J6z.cwuEqGCXTwKn1Qz4PZnjfMvg7m9vpqoBg2', 'open sesame'],
  bob: ['$2b$04$THTU58oheOFT9e6J6z.cwuEqGCXTwKn1Qz4PZnjfMvg7m9vpqoBg2', 'open sesame'],
  carol: ['$6$s4ltS4lt$UBOkVl5tLLGfgJdMCrUCZitFL7hgMVRwRpVtvQa32TVH6w/M5UO2UUjTQZZs4Bfn43.MeRlQxrJv0D42AbmCl.', 'c0rrect:horse'],
  dave: ['$5$s4ltS4lt$6GQnkDkTfkXjMEqm/bDww2hzi2VAYYDSBNXFNMxGUh8', 'p@ss wörd'],
  erin: ['$y$j9T$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6', 'yes-crypt'],
};
const ISS = 'https://issuer.example.com';
const HS_SECRET = crypto.randomBytes(32);
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaOther = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'creds' });
  const users = Object.fromEntries(Object.entries(USERS).map(([u, [h]]) => [u, h]));
  sy = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: {
        public: { type: 'none' },
        partners: { type: 'basic', realm: 'partners', users },
        hs: {
          type: 'jwt',
          issuer: ISS,
          audiences: ['orders-api'],
          hs_secret_base64: HS_SECRET.toString('base64'),
          algorithms: ['HS256'],
          clock_skew_seconds: 60,
          required_claims: { token_use: 'access' },
          forward_claims: { sub: 'X-User-Sub' },
        },
        keys: {
          type: 'jwt',
          issuer: ISS,
          audiences: ['orders-api'],
          jwks: {
            keys: [
              { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
              { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256', use: 'sig' },
            ],
          },
          algorithms: ['RS256', 'ES256'],
        },
      },
    }),
    routes: [route('/basic', echo.port, { auth: 'partners' }), route('/hs', echo.port, { auth: 'hs' }), route('/keys', echo.port, { auth: 'keys' })],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

const basic = (u, p) => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`, 'utf8').toString('base64')}` });
const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function sign(header, claims, { key, alg = header.alg } = {}) {
  const input = `${b64url(header)}.${b64url(claims)}`;
  let sig;
  if (alg === 'HS256') sig = crypto.createHmac('sha256', key ?? HS_SECRET).update(input).digest();
  else if (alg === 'HS512') sig = crypto.createHmac('sha512', key ?? HS_SECRET).update(input).digest();
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), key ?? rsa.privateKey);
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: key ?? ec.privateKey, dsaEncoding: 'ieee-p1363' });
  else sig = Buffer.alloc(0);
  return `${input}.${sig.toString('base64url')}`;
}

const claims = (extra = {}) => ({ iss: ISS, aud: 'orders-api', sub: 'user-42', token_use: 'access', iat: now(), exp: now() + 600, ...extra });
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

async function status(p, headers) {
  const before = echo.stats.requests;
  const r = await get(sy, p, headers);
  if (r.status === 401) {
    assert.ok(r.headers['www-authenticate'], '401 without WWW-Authenticate');
    errorMessage(r);
  }
  if (r.status === 401 || r.status === 403) assert.equal(echo.stats.requests, before, 'a refused request reached the backend');
  return r.status;
}

test('basic: every supported hash family accepts its password', async () => {
  for (const [u, [, p]] of Object.entries(USERS)) {
    assert.equal(await status('/basic/x', basic(u, p)), 200, `${u} (${USERS[u][0].slice(0, 4)}) was refused`);
  }
});

test('basic: wrong passwords, unknown users and odd forms are refused', async () => {
  assert.equal(await status('/basic/x', basic('alice', 'open sesamE')), 401);
  assert.equal(await status('/basic/x', basic('alice', 'open sesame ')), 401);
  assert.equal(await status('/basic/x', basic('alice', '')), 401);
  assert.equal(await status('/basic/x', basic('carol', 'c0rrect')), 401);
  assert.equal(await status('/basic/x', basic('mallory', 'open sesame')), 401);
  assert.equal(await status('/basic/x', basic('ALICE', 'open sesame')), 401);
  assert.equal(await status('/basic/x', basic('erin', USERS.erin[0])), 401);
  assert.equal(await status('/basic/x', { Authorization: 'Basic' }), 401);
  assert.equal(await status('/basic/x', { Authorization: 'Basic  ' }), 401);
});

test('basic: the subject is logged, the password never', async () => {
  await get(sy, '/basic/logged', { ...basic('dave', USERS.dave[1]), 'X-Request-Id': 'basic-subject' });
  const line = await eventually(() => jsonLines(fs.existsSync(sy.accessLog) ? fs.readFileSync(sy.accessLog, 'utf8') : '').find((l) => l.request_id === 'basic-subject'), { what: 'the access log line' });
  assert.match(JSON.stringify(line.auth ?? line), /dave/);
  const text = fs.readFileSync(sy.accessLog, 'utf8') + sy.stderr();
  for (const [, p] of Object.values(USERS)) assert.ok(!text.includes(p), `password ${p} logged`);
});

test('jwt (HS256): a valid token passes and forward_claims replaces the client header', async () => {
  const r = await get(sy, '/hs/x', { ...bearer(sign({ alg: 'HS256', typ: 'JWT' }, claims())), 'X-User-Sub': 'admin' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(headerValues(r.json().headers, 'x-user-sub'), ['user-42']);
});

test('jwt: the auth scheme name is case-insensitive', async () => {
  const t = sign({ alg: 'HS256' }, claims());
  assert.equal(await status('/hs/x', { Authorization: `bearer ${t}` }), 200);
});

test('jwt: exp is required and honoured, with clock_skew_seconds', async () => {
  const h = { alg: 'HS256' };
  assert.equal(await status('/hs/x', bearer(sign(h, claims({ exp: now() - 3600 })))), 401, 'expired an hour ago');
  assert.equal(await status('/hs/x', bearer(sign(h, claims({ exp: now() - 20 })))), 200, 'expired 20 s ago, within the 60 s skew');
  const noExp = claims();
  delete noExp.exp;
  assert.equal(await status('/hs/x', bearer(sign(h, noExp))), 401, 'no exp');
  assert.equal(await status('/hs/x', bearer(sign(h, claims({ exp: String(now() + 600) })))), 401, 'exp as a string');
});

test('jwt: nbf in the future is refused', async () => {
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS256' }, claims({ nbf: now() + 3600 })))), 401);
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS256' }, claims({ nbf: now() - 10 })))), 200);
});

test('jwt: iss and aud must match', async () => {
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS256' }, claims({ iss: 'https://evil.example.com' })))), 401);
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS256' }, claims({ aud: 'other-api' })))), 401);
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS256' }, claims({ aud: ['other-api', 'orders-api'] })))), 200);
  const noAud = claims();
  delete noAud.aud;
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS256' }, noAud))), 401);
});

test('jwt: required_claims failing on a valid token is 403', async () => {
  const r = await get(sy, '/hs/x', bearer(sign({ alg: 'HS256' }, claims({ token_use: 'id' }))));
  assert.equal(r.status, 403, r.text);
  errorMessage(r);
});

test('jwt: alg none, algorithms not allowed, bad signatures and key confusion are refused', async () => {
  const c = claims();
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'none' }, c))), 401);
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS512' }, c))), 401);
  assert.equal(await status('/hs/x', bearer(sign({ alg: 'HS256' }, c, { key: crypto.randomBytes(32) }))), 401);
  const good = sign({ alg: 'HS256' }, c);
  const [h, p] = good.split('.');
  assert.equal(await status('/hs/x', bearer(`${h}.${b64url({ ...c, sub: 'root' })}.${good.split('.')[2]}`)), 401, 'claims swapped under a valid signature');
  assert.equal(await status('/hs/x', bearer(`${h}.${p}`)), 401, 'two segments');
  // HS256 keyed with the RSA public key must not pass the RS256 policy
  const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' });
  assert.equal(await status('/keys/x', bearer(sign({ alg: 'HS256', kid: 'rsa-1' }, c, { key: pem }))), 401);
});

test('jwt (inline jwks): RS256 and ES256 pass; a foreign key or unknown kid does not', async () => {
  const c = claims();
  assert.equal(await status('/keys/x', bearer(sign({ alg: 'RS256', kid: 'rsa-1' }, c))), 200);
  assert.equal(await status('/keys/x', bearer(sign({ alg: 'ES256', kid: 'ec-1' }, c))), 200);
  assert.equal(await status('/keys/x', bearer(sign({ alg: 'RS256', kid: 'rsa-1' }, c, { key: rsaOther.privateKey }))), 401);
  assert.equal(await status('/keys/x', bearer(sign({ alg: 'RS256', kid: 'nope' }, c))), 401);
  assert.equal(await status('/keys/x', bearer(sign({ alg: 'ES256', kid: 'rsa-1' }, c))), 401, 'ES256 with the RSA key id');
});

test('Expect: 100-continue without credentials gets 401, not 100', async () => {
  for (const p of ['/basic/x', '/hs/x']) {
    const before = echo.stats.requests;
    const { res } = await rawExchange(sy.port, `POST ${p} HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n`);
    assert.ok(res, 'no answer');
    assert.deepEqual(res.interim.map((r) => r.status), [], `${p}: a 100 Continue invited the body of an unauthenticated request`);
    assert.equal(res.status, 401);
    assert.ok(res.header('www-authenticate'), 'no WWW-Authenticate');
    assert.equal(echo.stats.requests, before);
  }
});
