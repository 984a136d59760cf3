// SPEC §1's credential chain against local stand-ins, each one proving
// itself through the verifying fronts (only the keys a provider handed out
// can sign requests that pass): ECS container credentials that rotate on
// every refresh (full URI + authorization token file), EC2 IMDSv2 (token
// first), web identity through an STS stand-in, and a shared credentials
// file with AWS_PROFILE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, eventually, sleep, SLOW, binAvailable, tempDir } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, startSwitchyardAws, cleanAwsEnv, startContainerCredentials, startImds,
} from './lib/aws-stores.mjs';

const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;
const TABLE = 'routes';

let a, ddbStore, s3Store, ddbFront, s3Front, fronts;

before(async () => {
  if (skip) return;
  a = await startEcho({ name: 'A' });
  [ddbStore, s3Store] = await Promise.all([startStore('dynalite'), startStore('s3rver')]);
  ddbFront = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port });
  s3Front = await startVerifyingFront({ service: 's3', targetPort: s3Store.port });
  fronts = [ddbFront, s3Front];
  await createRoutesTable(dynamoClient(ddbStore), TABLE);
  await createBucket(s3Client(s3Store), 'cfg');
  await putPolicy(s3Client(s3Store), 'cfg', 'policy.json', makePolicy({ destinations: [dest(a.port)] }));
  await putRoute(dynamoClient(ddbStore), TABLE, { path: '/orders', target: `http://127.0.0.1:${a.port}` });
});

after(async () => {
  if (skip) return;
  await ddbFront?.close();
  await s3Front?.close();
  await ddbStore?.kill();
  await s3Store?.kill();
  await a?.close();
});

const storeEnv = (extra) => cleanAwsEnv({ AWS_ENDPOINT_URL_S3: s3Front.url, AWS_ENDPOINT_URL_DYNAMODB: ddbFront.url, ...extra });

function keysSeen() {
  const ids = new Set();
  for (const f of fronts) for (const r of f.requests) {
    const m = /Credential=([^/]+)\//.exec(r.headers.authorization || '');
    if (m) ids.add(m[1]);
  }
  return ids;
}

function resetFronts() {
  for (const f of fronts) {
    f.requests.length = 0;
    f.stats.verified = 0;
    f.stats.rejected = 0;
    f.stats.reasons.length = 0;
    f.keys.clear();
  }
}

async function run(env, check) {
  resetFronts();
  const sy = await startSwitchyardAws({ policyUri: 's3://cfg/policy.json', routesUri: `dynamodb://${TABLE}`, pollInterval: 0.3, env });
  try {
    assert.equal((await get(sy, '/orders/1')).status, 200);
    await check(sy);
    for (const f of fronts) assert.deepEqual(f.stats.reasons, [], `${f.service} front refusals`);
  } finally {
    await sy.stopClean();
  }
}

test('ECS container credentials: token from a file, keys rotated before they expire', { skip }, async () => {
  const dir = tempDir();
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'container-auth-token\n');
  // Valid for 5 min + 1.5 s: inside the 5-minute refresh margin 1.5 s after
  // each fetch, so switchyard must come back for new keys every poll or so.
  const ep = await startContainerCredentials({ fronts, authToken: 'container-auth-token', validForMs: 301500 });
  try {
    await run(storeEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: ep.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile }), async () => {
      await eventually(() => ep.calls >= 3, { timeoutMs: 20000 * SLOW, what: 'three credential fetches' });
      await sleep(1000);
      assert.equal(ep.refused, 0, 'the authorization token was sent');
      const seen = keysSeen();
      assert.ok(seen.size >= 3, `requests signed with rotated keys: ${[...seen]}`);
      for (const id of seen) assert.match(id, /^ASIACONTAINER\d+$/);
      for (const f of fronts) assert.ok(f.stats.verified > 0);
    });
  } finally {
    await ep.close();
  }
});

test('ECS container credentials: a refused authorization token keeps it unready, no fallthrough', { skip }, async () => {
  const ep = await startContainerCredentials({ fronts, authToken: 'right-token' });
  resetFronts();
  const sy = await startSwitchyardAws({
    policyUri: 's3://cfg/policy.json', routesUri: `dynamodb://${TABLE}`, pollInterval: 0.3, waitReady: false,
    env: storeEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: ep.url, AWS_CONTAINER_AUTHORIZATION_TOKEN: 'wrong-token' }),
  });
  try {
    await eventually(() => ep.refused >= 1, { what: 'the endpoint refused the wrong token' });
    await sleep(500);
    assert.equal(sy.exitInfo(), null);
    assert.equal((await get(sy, '/orders/1')).status, 503, 'not ready without credentials');
    for (const f of fronts) assert.equal(f.stats.verified, 0);
  } finally {
    await sy.stopClean();
    await ep.close();
  }
});

test('EC2 IMDSv2: session token first, then the role credentials', { skip }, async () => {
  const imds = await startImds({ fronts });
  try {
    const env = storeEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
    delete env.AWS_EC2_METADATA_DISABLED;
    await run(env, async () => {
      assert.ok(imds.tokenCalls >= 1);
      assert.ok(imds.credentialCalls >= 1);
      assert.equal(imds.v1Refused, 0, 'never an IMDSv1 request');
      const seen = keysSeen();
      assert.ok([...seen].every((id) => /^ASIAIMDS\d+$/.test(id)), [...seen].join(','));
      assert.ok(seen.size >= 1);
    });
  } finally {
    await imds.close();
  }
});

test('web identity: AssumeRoleWithWebIdentity on an STS stand-in', { skip }, async () => {
  const dir = tempDir();
  const tokenFile = path.join(dir, 'web-identity-token');
  fs.writeFileSync(tokenFile, 'eyJ.web.identity\n');
  const calls = [];
  const sts = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const form = new URLSearchParams(body);
    calls.push({ method: req.method, authorization: req.headers.authorization, form: Object.fromEntries(form) });
    const n = calls.length;
    const cred = { accessKeyId: `ASIASTS${n}`, secretAccessKey: `sts-secret-${n}`, sessionToken: `sts-token-${n}&more` };
    for (const f of fronts) f.keys.set(cred.accessKeyId, cred);
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>${cred.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${cred.secretAccessKey}</SecretAccessKey>
      <SessionToken>${cred.sessionToken.replace('&', '&amp;')}</SessionToken>
      <Expiration>${new Date(Date.now() + 3600e3).toISOString()}</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>`);
  });
  await new Promise((r) => sts.listen(0, '127.0.0.1', r));
  try {
    await run(storeEnv({
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/switchyard',
      AWS_ROLE_SESSION_NAME: 'e2e-session',
      AWS_ENDPOINT_URL_STS: `http://127.0.0.1:${sts.address().port}`,
    }), async () => {
      assert.ok(calls.length >= 1);
      const c = calls[0];
      assert.equal(c.method, 'POST');
      assert.equal(c.authorization, undefined, 'AssumeRoleWithWebIdentity is unsigned');
      assert.equal(c.form.Action, 'AssumeRoleWithWebIdentity');
      assert.equal(c.form.RoleArn, 'arn:aws:iam::123456789012:role/switchyard');
      assert.equal(c.form.RoleSessionName, 'e2e-session');
      assert.equal(c.form.WebIdentityToken, 'eyJ.web.identity');
      const seen = keysSeen();
      assert.ok([...seen].every((id) => /^ASIASTS\d+$/.test(id)) && seen.size >= 1, [...seen].join(','));
      // The session token went out entity-decoded.
      assert.ok(ddbFront.requests.some((r) => r.headers['x-amz-security-token'] === 'sts-token-1&more'));
    });
  } finally {
    sts.closeAllConnections?.();
    await new Promise((r) => sts.close(r));
  }
});

test('shared credentials file with AWS_PROFILE', { skip }, async () => {
  const home = tempDir('sy-home-');
  fs.mkdirSync(path.join(home, '.aws'));
  fs.writeFileSync(path.join(home, '.aws', 'credentials'), '[default]\naws_access_key_id = AKIDDEFAULTPROFILE\naws_secret_access_key = default-secret\n\n[deploy]\naws_access_key_id = AKIDDEPLOYPROFILE\naws_secret_access_key = deploy/secret+x\n');
  fs.writeFileSync(path.join(home, '.aws', 'config'), `[profile deploy]\nregion = eu-west-1\n`);
  const env = storeEnv({ HOME: home, AWS_PROFILE: 'deploy' });
  delete env.AWS_REGION;
  resetFronts();
  for (const f of fronts) f.keys.set('AKIDDEPLOYPROFILE', { secretAccessKey: 'deploy/secret+x' });
  const sy = await startSwitchyardAws({ policyUri: 's3://cfg/policy.json', routesUri: `dynamodb://${TABLE}`, pollInterval: 0.3, env });
  try {
    assert.equal((await get(sy, '/orders/1')).status, 200);
    assert.deepEqual([...keysSeen()], ['AKIDDEPLOYPROFILE']);
    // The region came from the profile in the config file.
    assert.ok(ddbFront.requests.every((r) => r.headers.authorization.includes('/eu-west-1/dynamodb/aws4_request')));
    for (const f of fronts) assert.deepEqual(f.stats.reasons, []);
  } finally {
    await sy.stopClean();
  }
});
