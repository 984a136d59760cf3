// The shared-files profiles beyond plain keys (issue 12, item 4), against
// local stand-ins that check every request's SigV4 signature: role_arn with
// source_profile or credential_source (STS AssumeRole), credential_process
// and IAM Identity Center (SSO) from the AWS CLI's token cache. Each case runs
// `switchyard check --policy s3://… --routes dynamodb://…` with HOME pointed at
// a temporary directory holding ~/.aws; the store fronts accept only the keys
// the profile's last step handed out, so a pass proves those were used. Also
// the failures an operator must be able to act on: a source_profile loop, an
// expired SSO token, no region anywhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, eventually, SLOW, binAvailable, tempDir, BIN, sanitizerReport } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, startSwitchyardAws, cleanAwsEnv, startImds, REGION,
} from './lib/aws-stores.mjs';
import { startSts, startSsoPortal } from './lib/aws-sts-sso.mjs';

const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;
const TABLE = 'routes';
const SOURCE = { accessKeyId: 'AKIDSOURCE', secretAccessKey: 'source/secret+1' };

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

// Each test starts with fronts that know no keys at all: only what a
// stand-in hands out during the test is accepted.
function resetFronts() {
  for (const f of fronts) {
    f.requests.length = 0;
    f.stats.verified = 0;
    f.stats.rejected = 0;
    f.stats.reasons.length = 0;
    f.keys.clear();
  }
}

function keysSeen() {
  const ids = new Set();
  for (const f of fronts) for (const r of f.requests) {
    const m = /Credential=([^/]+)\//.exec(r.headers.authorization || '');
    if (m) ids.add(m[1]);
  }
  return [...ids];
}

// A HOME with ~/.aws/{config,credentials}; the environment has no AWS_
// settings but the store endpoints (and what the test adds).
function awsHome({ config = '', credentials = null }) {
  const home = tempDir('sy-home-');
  fs.mkdirSync(path.join(home, '.aws'));
  fs.writeFileSync(path.join(home, '.aws', 'config'), config);
  if (credentials !== null) fs.writeFileSync(path.join(home, '.aws', 'credentials'), credentials);
  return home;
}

function storeEnv(home, extra = {}) {
  return cleanAwsEnv({ HOME: home, AWS_ENDPOINT_URL_S3: s3Front.url, AWS_ENDPOINT_URL_DYNAMODB: ddbFront.url, ...extra });
}

// `switchyard check` with both stores; asynchronous, as the stand-ins live
// in this process.
const check = (env) => new Promise((resolve) => {
  const p = spawn(BIN, ['check', '--policy', 's3://cfg/policy.json', '--routes', `dynamodb://${TABLE}`], { env });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => p.kill('SIGKILL'), 60000 * SLOW);
  p.on('exit', (code) => {
    clearTimeout(timer);
    const report = sanitizerReport(stderr);
    if (report) throw new Error(`sanitizer report from switchyard check:\n${report}`);
    resolve({ code, stdout, stderr });
  });
});

function assertChecked(r) {
  assert.equal(r.code, 0, `check failed: ${r.stderr}${r.stdout}`);
  for (const f of fronts) {
    assert.deepEqual(f.stats.reasons, [], `${f.service} front refusals`);
    assert.ok(f.stats.verified > 0, `${f.service} front saw signed requests`);
  }
}

test('role_arn + source_profile: AssumeRole signed with the source keys, stores reached with the role', { skip }, async () => {
  resetFronts();
  const sts = await startSts({ sourceKeys: new Map([[SOURCE.accessKeyId, SOURCE]]), storeFronts: fronts });
  try {
    const home = awsHome({
      credentials: `[base]\naws_access_key_id = ${SOURCE.accessKeyId}\naws_secret_access_key = ${SOURCE.secretAccessKey}\n`,
      config: '[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/switchyard-ops\nsource_profile = base\n'
        + 'role_session_name = laptop-ops\nexternal_id = ext-42\nduration_seconds = 1800\n',
    });
    const r = await check(storeEnv(home, { AWS_PROFILE: 'deploy', AWS_ENDPOINT_URL_STS: sts.url }));
    assertChecked(r);
    assert.equal(sts.calls.length, 1, 'one AssumeRole for the whole run (cached)');
    const c = sts.calls[0];
    assert.equal(c.accessKeyId, SOURCE.accessKeyId);
    assert.equal(c.region, REGION);
    assert.deepEqual(c.form, {
      Action: 'AssumeRole', Version: '2011-06-15', RoleArn: 'arn:aws:iam::123456789012:role/switchyard-ops',
      RoleSessionName: 'laptop-ops', ExternalId: 'ext-42', DurationSeconds: '1800',
    });
    assert.deepEqual(sts.front.stats.reasons, []);
    assert.deepEqual(keysSeen(), ['ASIAROLE1']);
    // The session token went out as issued (entity-decoded).
    assert.ok(ddbFront.requests.every((q) => q.headers['x-amz-security-token'] === sts.issued[0].sessionToken));
  } finally {
    await sts.close();
  }
});

test('chained roles: source_profile -> role -> role, each AssumeRole signed by the previous credentials', { skip }, async () => {
  resetFronts();
  const sts = await startSts({ sourceKeys: new Map([[SOURCE.accessKeyId, SOURCE]]), storeFronts: fronts });
  try {
    const home = awsHome({
      config: `[profile base]\naws_access_key_id = ${SOURCE.accessKeyId}\naws_secret_access_key = ${SOURCE.secretAccessKey}\n`
        + '[profile hop]\nrole_arn = arn:aws:iam::111111111111:role/hop\nsource_profile = base\n'
        + '[profile target]\nrole_arn = arn:aws:iam::222222222222:role/target\nsource_profile = hop\n',
    });
    const r = await check(storeEnv(home, { AWS_PROFILE: 'target', AWS_ENDPOINT_URL_STS: sts.url }));
    assertChecked(r);
    assert.equal(sts.calls.length, 2);
    assert.equal(sts.calls[0].form.RoleArn, 'arn:aws:iam::111111111111:role/hop');
    assert.equal(sts.calls[0].accessKeyId, SOURCE.accessKeyId);
    assert.match(sts.calls[0].form.RoleSessionName, /^switchyard-\d+$/);
    assert.equal(sts.calls[1].form.RoleArn, 'arn:aws:iam::222222222222:role/target');
    assert.equal(sts.calls[1].accessKeyId, 'ASIAROLE1');
    assert.equal(sts.calls[1].securityToken, sts.issued[0].sessionToken);
    // Only the last role reached the stores (the fronts know ASIAROLE1 too,
    // so this checks which keys were used, not only which were accepted).
    assert.deepEqual(keysSeen(), ['ASIAROLE2']);
  } finally {
    await sts.close();
  }
});

test('role_arn + credential_source = Environment: the environment keys assume the role', { skip }, async () => {
  resetFronts();
  const sts = await startSts({ sourceKeys: new Map([[SOURCE.accessKeyId, SOURCE]]), storeFronts: fronts });
  try {
    const home = awsHome({ config: '[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\ncredential_source = Environment\n' });
    const r = await check(storeEnv(home, {
      AWS_PROFILE: 'ci', AWS_ENDPOINT_URL_STS: sts.url,
      AWS_ACCESS_KEY_ID: SOURCE.accessKeyId, AWS_SECRET_ACCESS_KEY: SOURCE.secretAccessKey,
    }));
    assertChecked(r);
    assert.equal(sts.calls.length, 1);
    assert.equal(sts.calls[0].accessKeyId, SOURCE.accessKeyId);
    assert.equal(sts.calls[0].form.RoleArn, 'arn:aws:iam::123456789012:role/ci');
    assert.deepEqual(keysSeen(), ['ASIAROLE1'], 'the environment keys were not used on the stores');
  } finally {
    await sts.close();
  }
});

test('serve with an assumed role: refreshed before the role credentials expire', { skip }, async () => {
  resetFronts();
  // Valid 5 min + 1.5 s: inside the refresh margin 1.5 s after each call,
  // so switchyard must assume the role again every poll or so.
  const sts = await startSts({ sourceKeys: new Map([[SOURCE.accessKeyId, SOURCE]]), storeFronts: fronts, validForMs: 301500 });
  const home = awsHome({
    credentials: `[base]\naws_access_key_id = ${SOURCE.accessKeyId}\naws_secret_access_key = ${SOURCE.secretAccessKey}\n`,
    config: '[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/router\nsource_profile = base\n',
  });
  const sy = await startSwitchyardAws({
    policyUri: 's3://cfg/policy.json', routesUri: `dynamodb://${TABLE}`, pollInterval: 0.3,
    env: storeEnv(home, { AWS_PROFILE: 'deploy', AWS_ENDPOINT_URL_STS: sts.url }),
  });
  try {
    assert.equal((await get(sy, '/orders/1')).status, 200);
    await eventually(() => sts.calls.length >= 3, { timeoutMs: 20000 * SLOW, what: 'three AssumeRole calls' });
    const seen = keysSeen();
    assert.ok(seen.length >= 2, `requests signed with refreshed role keys: ${seen}`);
    assert.ok(seen.every((id) => /^ASIAROLE\d+$/.test(id)), seen.join(','));
    assert.ok(sts.calls.every((c) => c.accessKeyId === SOURCE.accessKeyId));
    for (const f of fronts) assert.deepEqual(f.stats.reasons, []);
  } finally {
    await sy.stopClean();
    await sts.close();
  }
});

test('credential_process: Version 1 JSON from a program run without a shell', { skip }, async () => {
  resetFronts();
  const cred = { accessKeyId: 'ASIAPROCESS1', secretAccessKey: 'process-secret', sessionToken: 'process-token' };
  for (const f of fronts) f.keys.set(cred.accessKeyId, cred);
  const dir = tempDir('sy-proc dir-'); // a space in the path: quoted in the profile
  const script = path.join(dir, 'creds.mjs');
  const marker = path.join(dir, 'ran');
  fs.writeFileSync(script, `import fs from 'node:fs';
fs.writeFileSync(${JSON.stringify(marker)}, JSON.stringify(process.argv.slice(2)));
process.stdout.write(JSON.stringify({ Version: 1, AccessKeyId: ${JSON.stringify(cred.accessKeyId)},
  SecretAccessKey: ${JSON.stringify(cred.secretAccessKey)}, SessionToken: ${JSON.stringify(cred.sessionToken)},
  Expiration: new Date(Date.now() + 3600e3).toISOString() }));
`);
  const home = awsHome({ config: `[profile tool]\ncredential_process = "${process.execPath}" "${script}" --role "read only" $HOME\n` });
  const r = await check(storeEnv(home, { AWS_PROFILE: 'tool' }));
  assertChecked(r);
  assert.deepEqual(keysSeen(), ['ASIAPROCESS1']);
  // Arguments as written: the quoted one whole, $HOME not expanded.
  assert.deepEqual(JSON.parse(fs.readFileSync(marker, 'utf8')), ['--role', 'read only', '$HOME']);
});

function writeSsoToken(home, key, token, expiresAt) {
  const dir = path.join(home, '.aws', 'sso', 'cache');
  fs.mkdirSync(dir, { recursive: true });
  const name = crypto.createHash('sha1').update(key).digest('hex');
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({
    startUrl: 'https://example.awsapps.com/start', region: 'us-west-2', accessToken: token,
    expiresAt, clientId: 'c', clientSecret: 's', refreshToken: 'r',
  }));
}

const ssoConfig = '[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = RouterOps\nregion = eu-west-1\n'
  + '[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-west-2\n'
  + 'sso_registration_scopes = sso:account:access\n'
  + '[profile old]\nsso_start_url = https://legacy.awsapps.com/start\nsso_region = us-west-2\n'
  + 'sso_account_id = 210987654321\nsso_role_name = Legacy\n';

test('SSO: sso_session and legacy profiles, the access token from the CLI cache', { skip }, async () => {
  resetFronts();
  const portal = await startSsoPortal({ tokens: new Set(['corp-access-token', 'legacy-access-token']), storeFronts: fronts });
  try {
    const home = awsHome({ config: ssoConfig });
    writeSsoToken(home, 'corp', 'corp-access-token', new Date(Date.now() + 3600e3).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    writeSsoToken(home, 'https://legacy.awsapps.com/start', 'legacy-access-token', new Date(Date.now() + 3600e3).toISOString());
    const env = storeEnv(home, { AWS_PROFILE: 'dev', AWS_ENDPOINT_URL_SSO: portal.url });
    delete env.AWS_REGION; // from the profile
    let r = await check(env);
    assertChecked(r);
    assert.equal(portal.calls.length, 1);
    assert.deepEqual(portal.calls[0], { method: 'GET', path: '/federation/credentials', token: 'corp-access-token', accountId: '123456789012', roleName: 'RouterOps' });
    assert.deepEqual(keysSeen(), ['ASIASSO1']);
    assert.ok(ddbFront.requests.every((q) => q.headers.authorization.includes(`/${REGION}/dynamodb/aws4_request`)));

    resetFronts();
    r = await check(storeEnv(home, { AWS_PROFILE: 'old', AWS_ENDPOINT_URL_SSO: portal.url }));
    assertChecked(r);
    assert.equal(portal.calls[1].token, 'legacy-access-token');
    assert.equal(portal.calls[1].roleName, 'Legacy');
    assert.deepEqual(keysSeen(), ['ASIASSO2']);
    assert.equal(portal.refused, 0);
  } finally {
    await portal.close();
  }
});

test('SSO: an expired token, or one the portal refuses, says to run aws sso login', { skip }, async () => {
  resetFronts();
  const portal = await startSsoPortal({ tokens: new Set(), storeFronts: fronts });
  try {
    const home = awsHome({ config: ssoConfig });
    writeSsoToken(home, 'corp', 'stale-token', '2020-01-01T00:00:00Z');
    let r = await check(storeEnv(home, { AWS_PROFILE: 'dev', AWS_ENDPOINT_URL_SSO: portal.url }));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /SSO token expired at 2020-01-01T00:00:00Z: run `aws sso login --sso-session corp`/);
    assert.equal(portal.calls.length, 0, 'an expired token is not sent');

    // Unexpired in the cache, but revoked at the portal.
    writeSsoToken(home, 'corp', 'revoked-token', new Date(Date.now() + 3600e3).toISOString());
    r = await check(storeEnv(home, { AWS_PROFILE: 'dev', AWS_ENDPOINT_URL_SSO: portal.url }));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /SSO token was refused.*aws sso login --sso-session corp/);
    assert.equal(portal.refused, 1);
    for (const f of fronts) assert.equal(f.requests.length, 0, 'no store request without credentials');
  } finally {
    await portal.close();
  }
});

test('a source_profile loop is named, and nothing is called', { skip }, async () => {
  resetFronts();
  const sts = await startSts({ sourceKeys: new Map(), storeFronts: fronts });
  try {
    const home = awsHome({
      config: '[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n'
        + '[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = c\n'
        + '[profile c]\nrole_arn = arn:aws:iam::1:role/c\nsource_profile = a\n',
    });
    const r = await check(storeEnv(home, { AWS_PROFILE: 'a', AWS_ENDPOINT_URL_STS: sts.url }));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /source_profile loop: a -> b -> c -> a/);
    assert.equal(sts.calls.length + sts.front.stats.rejected, 0);
    for (const f of fronts) assert.equal(f.requests.length, 0);
  } finally {
    await sts.close();
  }
});

test('no region anywhere: a clear error, no request signed for a guessed region', { skip }, async () => {
  resetFronts();
  for (const f of fronts) f.keys.set(SOURCE.accessKeyId, SOURCE);
  const home = awsHome({ config: '[default]\noutput = json\n' });
  const env = storeEnv(home, { AWS_ACCESS_KEY_ID: SOURCE.accessKeyId, AWS_SECRET_ACCESS_KEY: SOURCE.secretAccessKey });
  delete env.AWS_REGION;
  const r = await check(env);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no AWS region: set AWS_REGION \(or AWS_DEFAULT_REGION\), or `region = \.\.\.`/);
  for (const f of fronts) assert.equal(f.requests.length, 0);
});

test('region from EC2 instance metadata when nothing else sets it', { skip }, async () => {
  resetFronts();
  for (const f of fronts) f.keys.set(SOURCE.accessKeyId, SOURCE);
  const imds = await startImds({ fronts, region: 'ap-southeast-2' });
  try {
    const env = storeEnv(awsHome({}), {
      AWS_ACCESS_KEY_ID: SOURCE.accessKeyId, AWS_SECRET_ACCESS_KEY: SOURCE.secretAccessKey,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
    });
    delete env.AWS_REGION;
    delete env.AWS_EC2_METADATA_DISABLED;
    const r = await check(env);
    assertChecked(r);
    assert.ok(imds.regionCalls >= 1);
    for (const f of fronts) {
      assert.ok(f.requests.every((q) => q.headers.authorization.includes(`/ap-southeast-2/${f.service}/aws4_request`)));
    }
  } finally {
    await imds.close();
  }
});

test('role_arn + web_identity_token_file in a profile: AssumeRoleWithWebIdentity, unsigned', { skip }, async () => {
  resetFronts();
  const dir = tempDir();
  const tokenFile = path.join(dir, 'oidc-token');
  fs.writeFileSync(tokenFile, 'eyJ.profile.token\n');
  const calls = [];
  const sts = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    calls.push({ authorization: req.headers.authorization, form: Object.fromEntries(new URLSearchParams(body)) });
    const cred = { accessKeyId: `ASIAWEBID${calls.length}`, secretAccessKey: 'web-secret', sessionToken: 'web-token' };
    for (const f of fronts) f.keys.set(cred.accessKeyId, cred);
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>
<AccessKeyId>${cred.accessKeyId}</AccessKeyId><SecretAccessKey>${cred.secretAccessKey}</SecretAccessKey>
<SessionToken>${cred.sessionToken}</SessionToken><Expiration>${new Date(Date.now() + 3600e3).toISOString()}</Expiration>
</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`);
  });
  await new Promise((r) => sts.listen(0, '127.0.0.1', r));
  try {
    const home = awsHome({ config: `[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci-oidc\nweb_identity_token_file = ${tokenFile}\nrole_session_name = pipeline-7\n` });
    const r = await check(storeEnv(home, { AWS_PROFILE: 'ci', AWS_ENDPOINT_URL_STS: `http://127.0.0.1:${sts.address().port}` }));
    assertChecked(r);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].authorization, undefined);
    assert.equal(calls[0].form.Action, 'AssumeRoleWithWebIdentity');
    assert.equal(calls[0].form.RoleArn, 'arn:aws:iam::123456789012:role/ci-oidc');
    assert.equal(calls[0].form.RoleSessionName, 'pipeline-7');
    assert.equal(calls[0].form.WebIdentityToken, 'eyJ.profile.token');
    assert.deepEqual(keysSeen(), ['ASIAWEBID1']);
  } finally {
    sts.closeAllConnections?.();
    await new Promise((r) => sts.close(r));
  }
});
