// Attack review 2: forged tokens and hostile route targets against the real
// binary (docs/security.md, "auth per route" and "A compromised pipeline").
//
// Tokens: alg none in odd casings, HS256 keyed with the RSA public key
// (inline set and a fetched set that lists HS256 as allowed), kid path
// traversal and NUL, embedded jwk/jku/x5u headers, crit and b64:false,
// nested JWTs, duplicate claim and header names, exp/nbf/iat at the edges of
// what JSON can write, DER and zero-padded signatures, a fetched set with
// two keys under one kid or a published HMAC secret, a jwks_uri that
// redirects (never followed), and the verified-token cache shared between
// two policies with different audiences.
//
// Targets: a pipeline writes route items to DynamoDB whose target is the
// metadata service or loopback in every literal spelling (decimal, octal,
// hex, short, IPv4-mapped IPv6, 0.0.0.0, [::]), with userinfo or a
// fragment, as a non-string attribute, or a name under a wildcard
// destination that the (attacker's) DNS answers with a refused address.
// Nothing may ever connect to the loopback trap.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import * as jose from 'jose';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, get, adminGet, eventually, sleep, tempDir, binAvailable, runCli, SLOW } from './lib/harness.mjs';
import { makeTestPki, makeKey, startJwksServer } from './lib/auth-issuer.mjs';
import { startDnsServer } from './lib/dns-server.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, createRoutesTable, putRoute, startSwitchyardAws, cleanAwsEnv,
} from './lib/aws-stores.mjs';

const ISS = 'https://issuer.review2';
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra = {}) => ({ iss: ISS, aud: 'orders-api', sub: 'user-1', iat: now(), exp: now() + 600, ...extra });
const b64url = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

let echo, sy, keys, attacker, issuer, issuer2, redirector, pki;

// Signs raw header and payload text (so duplicate names and odd numbers
// survive) with a node KeyObject, as JOSE does.
function signRaw(headerText, payloadText, key, alg) {
  const input = `${Buffer.from(headerText).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`;
  let sig;
  if (alg.startsWith('HS')) sig = crypto.createHmac(`sha${alg.slice(2)}`, key).update(input).digest();
  else if (alg.startsWith('ES')) sig = crypto.sign(`sha${alg.slice(2)}`, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  else sig = crypto.sign(`sha${alg.slice(2)}`, Buffer.from(input), key);
  return `${input}.${sig.toString('base64url')}`;
}
const rs = (header, payload, key = keys.rsa.privateKey) => signRaw(header, payload, key, 'RS256');

before(async () => {
  const dir = tempDir('sy-review2-tok-');
  pki = makeTestPki(dir);
  keys = {
    rsa: await makeKey('RS256', 'rsa-1', { modulusLength: 2048 }),
    ec: await makeKey('ES256', 'ec-1'),
    dupA: await makeKey('RS256', 'dup', { modulusLength: 2048 }),
    dupB: await makeKey('RS256', 'dup', { modulusLength: 2048 }),
  };
  attacker = await makeKey('RS256', 'rsa-1', { modulusLength: 2048 });
  const hsSecret = crypto.randomBytes(32);
  keys.hs = { kid: 'hs', secret: hsSecret, jwk: { kty: 'oct', k: hsSecret.toString('base64url'), kid: 'hs', alg: 'HS256' } };
  issuer = await startJwksServer(pki, [keys.rsa, keys.dupA, keys.dupB, keys.hs]);
  // A second issuer a redirect points at: it must never be fetched.
  issuer2 = await startJwksServer(pki, [keys.rsa]);
  redirector = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) }, (req, res) => {
    redirector.hits = (redirector.hits || 0) + 1;
    res.writeHead(302, { Location: issuer2.uri, 'Content-Length': 0 }).end();
  });
  await new Promise((r) => redirector.listen(0, '127.0.0.1', r));
  echo = await startEcho({ name: 'review2-tokens' });
  const jwt = (extra) => ({ type: 'jwt', issuer: ISS, audiences: ['orders-api'], ...extra });
  sy = await startSwitchyard({
    dir,
    policy: makePolicy({
      ports: [echo.port],
      auth_policies: {
        public: { type: 'none' },
        inline: jwt({ jwks: { keys: [keys.rsa.jwk, keys.ec.jwk] }, algorithms: ['RS256', 'ES256'], forward_claims: { sub: 'X-User-Sub' } }),
        other: jwt({ jwks: { keys: [keys.rsa.jwk] }, algorithms: ['RS256'], audiences: ['payments-api'] }),
        fetched: jwt({ jwks_uri: issuer.uri, ca_file: pki.ca, algorithms: ['RS256'] }),
        redirected: jwt({ jwks_uri: `https://127.0.0.1:${redirector.address().port}/jwks.json`, ca_file: pki.ca, algorithms: ['RS256'] }),
      },
    }),
    routes: [
      route('/inline', echo.port, { auth: 'inline' }),
      route('/other', echo.port, { auth: 'other' }),
      route('/fetched', echo.port, { auth: 'fetched' }),
      route('/redirected', echo.port, { auth: 'redirected' }),
      route('/public', echo.port),
    ],
  });
  // The fetched set arrives after start.
  const good = await new jose.SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).sign(keys.rsa.privateKey);
  await eventually(async () => (await get(sy, '/fetched/x', bearer(good))).status === 200, { what: 'the fetched JWKS' });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
  await issuer?.close();
  await issuer2?.close();
  redirector?.close();
});

async function refused(p, token, what) {
  const before = echo.stats.requests;
  const r = await get(sy, p, bearer(token));
  assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
  assert.equal(echo.stats.requests, before, `${what} reached the backend`);
}

test('the good tokens are accepted (so each refusal below is about its forgery)', async () => {
  for (const [p, k] of [['/inline', keys.rsa], ['/inline', keys.ec], ['/fetched', keys.dupA]]) {
    const t = await new jose.SignJWT(claims()).setProtectedHeader({ alg: k.alg, kid: k.kid }).sign(k.privateKey);
    const r = await get(sy, `${p}/x`, bearer(t));
    assert.equal(r.status, 200, `${p} ${k.kid}: ${r.text}`);
  }
  // A raw-signed token with a plain header and payload passes too.
  assert.equal((await get(sy, '/inline/x', bearer(rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(claims()))))).status, 200);
});

test('alg none, in any casing or spacing, with or without a signature', async () => {
  const p = b64url(claims());
  const good = rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(claims()));
  const sig = good.split('.')[2];
  for (const alg of ['none', 'NONE', 'nOnE', 'None', 'none ', ' none', 'none\u0000', '', null, 'RS256 ', 'rs256', 'Rs256', 'RS256\u0000', ['RS256'], { RS256: 1 }]) {
    for (const s of ['', sig]) {
      const h = b64url({ alg, kid: 'rsa-1' });
      await refused('/inline/x', `${h}.${p}.${s}`, `alg ${JSON.stringify(alg)} sig ${s ? 'kept' : 'empty'}`);
    }
  }
});

test('HS256 keyed with the RSA public key is refused, also where HS256 is an allowed algorithm', async () => {
  const pub = keys.rsa.publicKey;
  const secrets = [
    pub.export({ type: 'spki', format: 'pem' }), pub.export({ type: 'pkcs1', format: 'pem' }), pub.export({ type: 'spki', format: 'der' }),
    Buffer.from(keys.rsa.jwk.n, 'base64url'), JSON.stringify(keys.rsa.jwk), keys.rsa.jwk.n,
  ];
  for (const secret of secrets) {
    for (const header of [{ alg: 'HS256', kid: 'rsa-1' }, { alg: 'HS256' }, { alg: 'HS256', kid: 'dup' }]) {
      for (const p of ['/inline/x', '/fetched/x']) await refused(p, signRaw(JSON.stringify(header), JSON.stringify(claims()), secret, 'HS256'), `${p} HS256 ${JSON.stringify(header)}`);
    }
  }
});

test('a policy cannot list HS256 beside a JWK set (inline or fetched): check refuses it', () => {
  const dir = tempDir('sy-review2-hs-');
  const pf = path.join(dir, 'policy.json');
  const rf = path.join(dir, 'routes.json');
  fs.writeFileSync(rf, '[]');
  for (const keySource of [{ jwks_uri: 'https://127.0.0.1:1/jwks.json' }, { jwks: { keys: [keys.rsa.jwk] } }]) {
    fs.writeFileSync(pf, JSON.stringify(makePolicy({ auth_policies: { public: { type: 'none' }, j: { type: 'jwt', issuer: ISS, algorithms: ['RS256', 'HS256'], ...keySource } } })));
    const r = runCli(['check', '--policy', pf, '--routes', rf]);
    assert.equal(r.code, 2, `${Object.keys(keySource)}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /HS256/);
  }
});

test('an HMAC secret published in a fetched key set is never used', async () => {
  for (const header of [{ alg: 'HS256', kid: 'hs' }, { alg: 'HS256' }]) {
    await refused('/fetched/x', signRaw(JSON.stringify(header), JSON.stringify(claims()), keys.hs.secret, 'HS256'), `published oct key ${JSON.stringify(header)}`);
  }
});

test('two keys under one kid in a fetched set: only the first verifies', async () => {
  const tb = await new jose.SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'dup' }).sign(keys.dupB.privateKey);
  await refused('/fetched/x', tb, 'the second key under a duplicate kid');
});

test('kid tricks and embedded keys never select a key outside the set', async () => {
  const body = JSON.stringify(claims());
  const headers = [
    '{"alg":"RS256","kid":"../../../../../../dev/null"}', '{"alg":"RS256","kid":"/etc/ssl/private/key.pem"}', '{"alg":"RS256","kid":"rsa-1\\u0000x"}',
    '{"alg":"RS256","kid":"rsa-1 "}', '{"alg":"RS256","kid":"RSA-1"}', '{"alg":"RS256","kid":1}', '{"alg":"RS256","kid":["rsa-1"]}',
    '{"alg":"RS256","kid":"x\' OR \'1\'=\'1"}', '{"alg":"RS256","kid":""}',
  ];
  // Signed by the attacker's key; some name the real kid.
  for (const h of headers) await refused('/inline/x', rs(h, body, attacker.privateKey), `kid ${h}`);
  const ajwk = { ...attacker.jwk, kid: 'rsa-1' };
  for (const extra of [{ jwk: ajwk }, { jku: `${issuer.uri}?evil` }, { x5u: 'https://evil.example/x.pem' }, { jwk: ajwk, kid: 'evil' }]) {
    const h = JSON.stringify({ alg: 'RS256', kid: 'rsa-1', ...extra });
    await refused('/inline/x', rs(h, body, attacker.privateKey), `embedded ${Object.keys(extra).join(',')}`);
  }
});

test('crit, b64:false and nested JWTs are refused', async () => {
  const c = claims();
  await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1","crit":["b64"],"b64":false}', JSON.stringify(c)), 'crit b64');
  await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1","crit":[]}', JSON.stringify(c)), 'empty crit');
  await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}', JSON.stringify(c)), 'crit exp');
  // b64:false signed over the raw payload, as RFC 7797 would.
  const h = b64url({ alg: 'RS256', kid: 'rsa-1', b64: false, crit: ['b64'] });
  const raw = JSON.stringify(c);
  const sig = crypto.sign('sha256', Buffer.from(`${h}.${raw}`), keys.rsa.privateKey).toString('base64url');
  await refused('/inline/x', `${h}.${b64url(raw)}.${sig}`, 'b64:false over the raw payload');
  // Nested: the payload is itself a good signed JWT, not claims.
  const inner = rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(c));
  await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1","cty":"JWT"}', inner), 'nested JWT');
  await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1","cty":"JWT"}', JSON.stringify(inner)), 'nested JWT as a JSON string');
});

test('duplicate claim or header names, and claims that are not an object, are refused', async () => {
  const c = claims();
  const base = JSON.stringify(c).slice(0, -1);
  for (const payload of [
    `${base},"sub":"admin"}`, `${base},"exp":${now() + 99999}}`, `${base},"aud":"payments-api"}`, `${base},"iss":"${ISS}"}`,
    '[]', '"x"', 'null', `${JSON.stringify(c)} `.replace(/ $/, ' {}'), `\ufeff${JSON.stringify(c)}`,
  ]) {
    await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1"}', payload), `payload ${payload.slice(-40)}`);
  }
  for (const header of ['{"alg":"RS256","kid":"rsa-1","alg":"none"}', '{"alg":"none","alg":"RS256","kid":"rsa-1"}', '{"alg":"RS256","kid":"ec-1","kid":"rsa-1"}', '[]']) {
    await refused('/inline/x', rs(header, JSON.stringify(c)), `header ${header}`);
  }
});

test('exp, nbf and iat at the edges of JSON numbers', async () => {
  const t = now();
  const tok = (fields) => rs('{"alg":"RS256","kid":"rsa-1"}', `{"iss":"${ISS}","aud":"orders-api","sub":"u",${fields}}`);
  const refusedCases = [
    '"exp":-1', '"exp":0', '"exp":-9223372036854775808', '"exp":1e400', '"exp":-1e400', '"exp":9223372036854775808', '"exp":"99999999999"',
    '"exp":true', '"exp":null', '"exp":[99999999999]', '"exp":{}', `"exp":${t - 600}.5`, `"exp":${t + 600},"nbf":1e300`,
    `"exp":${t + 600},"nbf":"0"`, `"exp":${t + 600},"iat":1e300`, `"exp":${t + 600},"iat":9223372036854775807`, `"exp":${t + 600},"nbf":${t + 600}`,
    `"exp":${t + 600},"nbf":null`, '"nbf":0',
  ];
  for (const f of refusedCases) await refused('/inline/x', tok(f), f);
  // Far-future expiries are the issuer's choice; they must not wrap round.
  for (const f of ['"exp":9223372036854775807', '"exp":1e300', `"exp":${t + 600},"nbf":-1e300`, `"exp":${t + 600}.999,"nbf":-9223372036854775808`]) {
    const r = await get(sy, '/inline/x', bearer(tok(f)));
    assert.equal(r.status, 200, `${f}: ${r.text}`);
  }
});

test('audience and issuer spellings that only look right are refused', async () => {
  for (const extra of [{ aud: [] }, { aud: {} }, { aud: ['ORDERS-API'] }, { aud: 'orders-api ' }, { aud: [['orders-api']] }, { aud: null },
    { iss: `${ISS}/` }, { iss: ISS.toUpperCase() }, { iss: [ISS] }, { iss: ` ${ISS}` }]) {
    await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(claims(extra))), JSON.stringify(extra));
  }
  await refused('/inline/x', rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(claims()).replace(`"${ISS}"`, `"${ISS}\\u0000"`)), 'issuer with a NUL');
});

test('signature spellings: DER ECDSA, a zero-padded RSA signature, trailing bits, padding', async () => {
  const c = JSON.stringify(claims());
  const hEc = b64url({ alg: 'ES256', kid: 'ec-1' });
  const input = `${hEc}.${b64url(c)}`;
  const der = crypto.sign('sha256', Buffer.from(input), { key: keys.ec.privateKey, dsaEncoding: 'der' }).toString('base64url');
  await refused('/inline/x', `${input}.${der}`, 'DER ECDSA signature');
  const good = rs('{"alg":"RS256","kid":"rsa-1"}', c);
  const [h, p, s] = good.split('.');
  await refused('/inline/x', `${h}.${p}.${Buffer.concat([Buffer.from([0]), Buffer.from(s, 'base64url')]).toString('base64url')}`, 'zero-padded RSA signature');
  await refused('/inline/x', `${h}.${p}.${s}=`, 'padded signature');
  await refused('/inline/x', `${h}.${p}.${s.slice(0, -1)}${String.fromCharCode(s.charCodeAt(s.length - 1) ^ 1)}`, 'flipped last character');
  await refused('/inline/x', `${h}.${p}.${s}.`, 'a fourth part');
  await refused('/inline/x', `${h}..${s}`, 'empty payload');
  const std = /[-_]/.test(s) ? s.replace(/-/g, '+').replace(/_/g, '/') : `${s.slice(0, -1)}+`;
  await refused('/inline/x', `${h}.${p}.${std}`, 'standard base64 alphabet');
});

// Hole found by this review: the client's copy of a forward_claims header
// was dropped only on routes of the policy that sets it. A backend that
// serves a JWT route (X-User-Sub set by switchyard) and a public or other
// route trusted "X-User-Sub: admin" sent by anyone on the latter.
test('identity headers any policy forwards claims into are dropped on every route, whatever its auth', async () => {
  const t = rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(claims()));
  const tOther = rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(claims({ aud: 'payments-api' })));
  for (const [p, headers] of [['/public/x', {}], ['/other/x', bearer(tOther)], ['/fetched/x', bearer(t)]]) {
    const { rawExchange: rx, rawJson: rj } = await import('./lib/rawhttp.mjs');
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const { res } = await rx(sy.port, `GET ${p} HTTP/1.1\r\nHost: api.example.com\r\n${extra}X-User-Sub: admin\r\nx_user_sub: admin\r\nX-USER-SUB: admin\r\n\r\n`);
    assert.equal(res.status, 200, `${p}: ${res.status} ${res.text}`);
    const forged = rj(res).headers.filter(([k]) => /^x[-_]user[-_]sub$/i.test(k));
    assert.deepEqual(forged, [], `${p}: a forged identity header reached the backend`);
  }
  // The policy that sets it still sets it, from the token.
  const r = await get(sy, '/inline/x', { ...bearer(t), 'X-User-Sub': 'admin' });
  assert.deepEqual(r.json().headers.filter(([k]) => /^x-user-sub$/i.test(k)).map(([, v]) => v), ['user-1']);
});

test('a token verified for one policy is not accepted by another through the cache', async () => {
  const t = rs('{"alg":"RS256","kid":"rsa-1"}', JSON.stringify(claims()));
  assert.equal((await get(sy, '/inline/x', bearer(t))).status, 200);
  await refused('/other/x', t, 'the same token on a policy with another audience');
  assert.equal((await get(sy, '/inline/x', bearer(t))).status, 200);
});

test('a jwks_uri that redirects is not followed', async () => {
  await sleep(300);
  const t = await new jose.SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).sign(keys.rsa.privateKey);
  await eventually(() => redirector.hits >= 1, { what: 'the redirected JWKS fetch' });
  await refused('/redirected/x', t, 'a token whose keys sit behind a redirect');
  assert.equal(issuer2.fetches, 0, 'switchyard followed the JWKS redirect');
});

// ---- route targets written by a pipeline -------------------------------------

const awsSkip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;

test('DynamoDB route items aimed at the metadata service or loopback, in any spelling, never connect', { skip: awsSkip }, async () => {
  const CREDS = { accessKeyId: 'AKIDREVIEW2', secretAccessKey: 'review2-secret' };
  const TABLE = 'review2-routes';
  const dns = await startDnsServer();
  const trap = net.createServer((s) => {
    trap.hits = (trap.hits || 0) + 1;
    s.destroy();
  });
  await new Promise((r) => trap.listen(0, '127.0.0.1', r));
  const tp = trap.address().port;
  for (const [n, a] of Object.entries({
    meta: ['169.254.169.254'], ecs: ['169.254.170.2'], loop: ['127.0.0.1'], mapped: ['::ffff:7f00:1'], mappedmeta: ['::ffff:a9fe:a9fe'],
    zero: ['0.0.0.0'], unspec: ['::'], ec2v6: ['fd00:ec2::254'], mixed: ['192.0.2.10', '127.0.0.1'],
  })) dns.set(`${n}.dyn.test`, a, 300);
  const ddbStore = await startStore('dynalite');
  const ddbFront = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port, keys: new Map([[CREDS.accessKeyId, CREDS]]) });
  const dir = tempDir('sy-review2-ddb-');
  let s;
  try {
    const ddb = dynamoClient(ddbStore);
    await createRoutesTable(ddb, TABLE);
    const policyFile = path.join(dir, 'policy.json');
    fs.writeFileSync(policyFile, JSON.stringify({
      listen_domains: ['api.example.com'],
      destinations: [
        { scheme: 'http', host: '*.dyn.test', port: tp, allowed_paths: ['/p'], allowed_auth: ['public'] },
        { scheme: 'http', host: 'orders.internal.example', port: tp, allowed_paths: ['/p'], allowed_auth: ['public'] },
        // Operations' connect_to through a name the DNS answers with a refused address: guarded the same way.
        { scheme: 'http', host: 'via-meta.internal.example', port: tp, connect_to: `meta.dyn.test:${tp}`, allowed_paths: ['/p'], allowed_auth: ['public'] },
        { scheme: 'http', host: 'via-loop.internal.example', port: tp, connect_to: `localhost:${tp}`, allowed_paths: ['/p'], allowed_auth: ['public'] },
        { scheme: 'http', host: 'via-mapped.internal.example', port: tp, connect_to: `mapped.dyn.test:${tp}`, allowed_paths: ['/p'], allowed_auth: ['public'] },
      ],
      auth_policies: { public: { type: 'none' } },
      default_auth: 'public',
      allow_loopback_destinations: false,
    }));
    // Names under the wildcard: listed, so active; the guard refuses the answer.
    const guarded = ['meta', 'ecs', 'loop', 'mapped', 'mappedmeta', 'zero', 'unspec', 'ec2v6', 'mixed'].map((n) => ({ path: `/p/${n}`, target: `http://${n}.dyn.test:${tp}` }));
    // A trailing dot is the same DNS name: it matches the wildcard and is guarded the same way.
    guarded.push({ path: '/p/dot', target: `http://meta.dyn.test.:${tp}` });
    for (const v of ['meta', 'loop', 'mapped']) guarded.push({ path: `/p/via-${v}`, target: `http://via-${v}.internal.example:${tp}` });
    // Literal spellings: no destination lists them, so rejected.
    const literal = [
      '169.254.169.254', '2852039166', '0xa9fea9fe', '0251.0376.0251.0376', '169.254.43518', '[::ffff:169.254.169.254]', '[::ffff:a9fe:a9fe]',
      '[fd00:ec2::254]', '127.0.0.1', '127.1', '2130706433', '0x7f000001', '0177.0.0.1', '0x7f.0.0.1', '017700000001', '[::1]', '[::ffff:127.0.0.1]',
      '[0:0:0:0:0:ffff:7f00:1]', '0.0.0.0', '0', '[::]', 'localhost', 'localhost.', 'a.meta.dyn.test', '169.254.169.254.dyn.test',
      'orders.internal.example@169.254.169.254', 'orders.internal.example%40169.254.169.254', '[::ffff:7f00:1]',
    ].map((h, i) => ({ path: `/p/lit${i}`, target: `http://${h}:${tp}` }));
    const odd = [
      { path: '/p/frag', target: `http://169.254.169.254:${tp}#@orders.internal.example` },
      { path: '/p/query', target: `http://169.254.169.254:${tp}?@orders.internal.example` },
      { path: '/p/back', target: `http://169.254.169.254:${tp}\\@orders.internal.example` },
      { path: '/p/num', target: { $raw: { N: '2130706433' } } },
      { path: '/p/set', target: { $raw: { SS: [`http://meta.dyn.test:${tp}`] } } },
      { path: '/p/list', target: { $raw: { L: [{ S: `http://meta.dyn.test:${tp}` }] } } },
      { path: '/p/map', target: { $raw: { M: { S: { S: `http://meta.dyn.test:${tp}` } } } } },
      { path: '/p/bytes', target: { $raw: { B: Buffer.from(`http://meta.dyn.test:${tp}`) } } },
      { path: '/p/nul', target: `http://orders.internal.example:${tp}\u0000@169.254.169.254` },
      { path: '/p/ctl', target: `http://orders.internal.example:${tp}/\r\nHost: 169.254.169.254` },
    ];
    // An item carrying a policy-only field: the field is ignored, never used.
    const withConnectTo = { path: '/p/connect', target: `http://orders.internal.example:${tp}`, connect_to: `127.0.0.1:${tp}`, host_header: '169.254.169.254' };
    for (const r of [...guarded, ...literal, ...odd, withConnectTo]) await putRoute(ddb, TABLE, r);
    const env = cleanAwsEnv({ AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey, AWS_ENDPOINT_URL_DYNAMODB: ddbFront.url });
    s = await startSwitchyardAws({ policyUri: policyFile, routesUri: `dynamodb://${TABLE}`, env, extraArgs: ['--resolver', dns.address] });
    const cfg = (await adminGet(s, '/config')).json();
    const active = new Set(cfg.active_routes.map((r) => r.path));
    assert.deepEqual([...literal, ...odd].filter((r) => active.has(r.path)).map((r) => r.target), [], 'literal targets became active routes');
    for (const r of [...guarded, ...literal, ...odd, withConnectTo]) {
      const res = await get(s, `${r.path}/latest/meta-data/`);
      assert.equal(res.status, 502, `${r.path} -> ${JSON.stringify(r.target)}: ${res.status} ${res.text}`);
    }
    // /explain asks no DNS question and connects nowhere.
    const asked = dns.count();
    for (const r of guarded) {
      const e = (await adminGet(s, `/explain?host=api.example.com&path=${r.path}/x`)).json();
      assert.equal(e.route, r.path);
    }
    assert.equal(dns.count(), asked, '/explain made a DNS query');
    // Every refused answer is on record; nothing reached the trap.
    await sleep(200);
    assert.equal(trap.hits || 0, 0, 'something connected to the loopback trap');
    assert.doesNotMatch(s.stderr(), /\r\nHost: 169/);
  } finally {
    await s?.stopClean();
    await ddbFront.close();
    await ddbStore.kill();
    await dns.close();
    trap.close();
  }
});

test('routes put --check-policy refuses literal metadata and loopback targets and writes nothing', { skip: !binAvailable() }, () => {
  const dir = tempDir('sy-review2-put-');
  const pf = path.join(dir, 'policy.json');
  const rf = path.join(dir, 'routes.json');
  fs.writeFileSync(pf, JSON.stringify(makePolicy({ destinations: [{ scheme: 'http', host: '*.dyn.test', port: 80 }], allow_loopback_destinations: false })));
  fs.writeFileSync(rf, '[]');
  for (const host of ['169.254.169.254', '2852039166', '0xa9fea9fe', '[::ffff:a9fe:a9fe]', '127.1', '0', '[::]', 'localhost']) {
    const r = runCli(['routes', 'put', '--routes', rf, '--path', '/p', '--target', `http://${host}`, '--check-policy', pf]);
    assert.notEqual(r.code, 0, `${host}: ${r.stdout}${r.stderr}`);
    assert.equal(fs.readFileSync(rf, 'utf8').trim(), '[]', `${host} was written`);
  }
});

test('route fields a pipeline writes cannot inject headers into answers or lines into the logs', { skip: !binAvailable() }, async () => {
  const port = echo.port;
  const s = await startSwitchyard({ policy: makePolicy({ ports: [port] }), routes: [route('/a', port)] });
  try {
    const hostile = [
      route('/m1', port, { methods: ['GET', 'POST\r\nSet-Cookie: injected=1'] }),
      route('/m2', port, { methods: ['GET, DELETE'] }),
      route('/m3', port, { methods: ['get'] }),
      route('/m4', port, { methods: ['G T'] }),
      route('/m5', port, { methods: ['GET'], owner: 'o"}\n{"msg":"forged","level":"error', description: 'd\r\nSet-Cookie: injected=1', updated_at: '\u2028"' }),
    ];
    fs.writeFileSync(`${s.routesFile}.tmp`, JSON.stringify([route('/a', port), ...hostile]));
    fs.renameSync(`${s.routesFile}.tmp`, s.routesFile);
    await eventually(async () => (await adminGet(s, '/config')).json().active_routes.some((r) => r.path === '/m5'), { what: 'the reload' });
    // A lowercase method is another method (tokens are case-sensitive): GET is not "get".
    assert.equal((await get(s, '/m3')).status, 405);
    for (const p of ['/m1', '/m2', '/m4']) {
      const r = await get(s, p, {}, { method: 'PUT' });
      assert.equal(r.status, 502, `${p}: ${r.status} ${r.text}`);
      assert.equal(r.headers['set-cookie'], undefined);
    }
    const r = await get(s, '/m5', {}, { method: 'DELETE' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET');
    assert.equal(r.headers['set-cookie'], undefined);
    const cfg = (await adminGet(s, '/config')).json();
    assert.equal(cfg.active_routes.find((x) => x.path === '/m5').owner, 'o"}\n{"msg":"forged","level":"error');
    await sleep(100);
    const lines = s.stderr().split('\n').filter(Boolean);
    for (const l of lines) {
      const j = JSON.parse(l);
      assert.notEqual(j.msg, 'forged', 'a route field forged a log line');
    }
    assert.ok(lines.some((l) => /"msg":"route change"/.test(l) && l.includes('/m5')), 'the change to /m5 was not logged');
  } finally {
    await s.stopClean();
  }
});
