// SPEC §1-§4 with the real stores: the policy in S3 (s3rver), the routes in
// DynamoDB (dynalite), both written with the AWS SDK as operators and
// pipelines do, read by switchyard through a front that recomputes every
// request's SigV4 signature with the SDK's own signer. Covers the first
// load, routes added/changed/deleted, a policy change, an unchanged poll
// that rebuilds nothing (S3 answers 304), a malformed item rejected while
// the rest loads, and the expected bucket owner header.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, adminGet, eventually, sleep, SLOW, binAvailable, errorMessage, httpRequest } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, deleteRoute, startSwitchyardAws, cleanAwsEnv,
} from './lib/aws-stores.mjs';

const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;
const TABLE = 'switchyard-routes';
const BUCKET = 'ops-config';
const KEY = 'switchyard/policy.json';
const OWNER = '123456789012';
const CREDS = { accessKeyId: 'AKIDSWITCHYARDTEST', secretAccessKey: 'switchyard/secret+key', sessionToken: 'session-token-e2e' };
const POLL = 0.3;

let a, b, ddbStore, s3Store, ddbFront, s3Front, ddb, s3, sy, policy;

const config = async () => (await adminGet(sy, '/config')).json();
const statusOf = async (p) => (await get(sy, p)).status;
const nameOf = async (p) => {
  const r = await get(sy, p);
  return r.status === 200 ? r.json().name : r.status;
};

before(async () => {
  if (skip) return;
  a = await startEcho({ name: 'A' });
  b = await startEcho({ name: 'B' });
  [ddbStore, s3Store] = await Promise.all([startStore('dynalite'), startStore('s3rver')]);
  const keys = new Map([[CREDS.accessKeyId, CREDS]]);
  ddbFront = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port, keys });
  s3Front = await startVerifyingFront({ service: 's3', targetPort: s3Store.port, keys });
  ddb = dynamoClient(ddbStore);
  s3 = s3Client(s3Store);
  await createRoutesTable(ddb, TABLE);
  await createBucket(s3, BUCKET);
  policy = makePolicy({ destinations: [dest(a.port)] });
  await putPolicy(s3, BUCKET, KEY, policy);
  await putRoute(ddb, TABLE, { path: '/orders', target: `http://127.0.0.1:${a.port}/prod`, methods: ['GET', 'POST'], owner: 'orders-pipeline', pipeline_run: 42 });
  await putRoute(ddb, TABLE, { path: '/users', target: `http://127.0.0.1:${a.port}`, strip_prefix: true });
  sy = await startSwitchyardAws({
    policyUri: `s3://${BUCKET}/${KEY}?expected_bucket_owner=${OWNER}`,
    routesUri: `dynamodb://${TABLE}`,
    pollInterval: POLL,
    env: cleanAwsEnv({
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
      AWS_SESSION_TOKEN: CREDS.sessionToken,
      AWS_ENDPOINT_URL_S3: s3Front.url,
      AWS_ENDPOINT_URL_DYNAMODB: ddbFront.url,
    }),
  });
});

after(async () => {
  if (skip) return;
  if (sy) await sy.stopClean();
  await ddbFront?.close();
  await s3Front?.close();
  await ddbStore?.kill();
  await s3Store?.kill();
  await a?.close();
  await b?.close();
});

test('first load: policy from S3 and routes from DynamoDB serve traffic', { skip }, async () => {
  const r = await get(sy, '/orders/42');
  assert.equal(r.status, 200);
  assert.equal(r.json().name, 'A');
  assert.equal(await statusOf('/users/7'), 200);
  assert.equal(await statusOf('/nothing'), 404);
  const c = await config();
  assert.equal(c.policy.source, `s3://${BUCKET}/${KEY}?expected_bucket_owner=${OWNER}`);
  assert.equal(c.routes.source, `dynamodb://${TABLE}`);
  assert.match(c.policy.version, /^"[0-9a-f]+"$/, 'the policy version is the S3 ETag');
  assert.equal(c.policy.last_error, null);
  assert.equal(c.routes.last_error, null);
  const orders = c.active_routes.find((x) => x.path === '/orders');
  assert.deepEqual(orders.methods, ['GET', 'POST']);
  assert.equal(orders.owner, 'orders-pipeline');
  // The method list came through as a string set.
  assert.equal((await get(sy, '/orders/1', {}, { method: 'DELETE' })).status, 405);
});

test('every request switchyard made was signed correctly and carried what S3 needs', { skip }, async () => {
  await sleep(3 * POLL * 1000);
  assert.deepEqual(ddbFront.stats.reasons, []);
  assert.deepEqual(s3Front.stats.reasons, []);
  assert.ok(ddbFront.stats.verified >= 2, `dynamodb requests verified: ${ddbFront.stats.verified}`);
  assert.ok(s3Front.stats.verified >= 2, `s3 requests verified: ${s3Front.stats.verified}`);
  const scan = ddbFront.requests.find((r) => r.headers['x-amz-target'] === 'DynamoDB_20120810.Scan');
  assert.ok(scan, 'a Scan was made');
  assert.equal(scan.headers['content-type'], 'application/x-amz-json-1.0');
  assert.equal(JSON.parse(scan.body).TableName, TABLE);
  const get0 = s3Front.requests[0];
  assert.equal(get0.method, 'GET');
  assert.equal(get0.url, `/${BUCKET}/${KEY}`, 'path-style with an endpoint override');
  assert.equal(get0.headers['x-amz-expected-bucket-owner'], OWNER);
  assert.equal(get0.headers['x-amz-security-token'], CREDS.sessionToken);
  assert.match(get0.headers['x-amz-content-sha256'], /^(UNSIGNED-PAYLOAD|e3b0c4[0-9a-f]{58})$/);
  // Later polls are conditional on the ETag.
  const later = s3Front.requests.slice(1);
  assert.ok(later.length >= 1);
  for (const r of later) assert.ok(r.headers['if-none-match'], 'conditional GET');
});

test('an unchanged table and object cause no rebuild', { skip }, async () => {
  const before1 = await config();
  const s3Count = s3Front.requests.length;
  const ddbCount = ddbFront.requests.length;
  await sleep(5 * POLL * 1000 * SLOW);
  await eventually(() => s3Front.requests.length > s3Count && ddbFront.requests.length > ddbCount,
    { what: 'both stores polled again', timeoutMs: 30000 * SLOW });
  const after1 = await config();
  assert.equal(after1.generation, before1.generation, 'no new snapshot');
  assert.equal(after1.routes.reloads_ok, before1.routes.reloads_ok);
  assert.equal(after1.policy.reloads_ok, before1.policy.reloads_ok);
  assert.ok(after1.routes.last_success >= before1.routes.last_success);
});

test('a route added, changed and deleted with the SDK shows up within a poll', { skip }, async () => {
  const within = { timeoutMs: (POLL * 1000 + 3000) * SLOW, intervalMs: 50 };
  await putRoute(ddb, TABLE, { path: '/new', target: `http://127.0.0.1:${a.port}`, description: 'added by a pipeline' });
  await eventually(async () => (await statusOf('/new/x')) === 200, { ...within, what: 'added route served' });
  // Changed: to a target the policy doesn't allow yet -> rejected, still owns its path.
  await putRoute(ddb, TABLE, { path: '/new', target: `http://127.0.0.1:${b.port}` });
  await eventually(async () => (await statusOf('/new/x')) === 502, { ...within, what: 'changed route rejected' });
  const r = await get(sy, '/new/x');
  assert.match(errorMessage(r), /route rejected/);
  await deleteRoute(ddb, TABLE, '/new');
  await eventually(async () => (await statusOf('/new/x')) === 404, { ...within, what: 'deleted route gone' });
});

test('a policy change in S3 is applied (new ETag), and routes waiting on it go live', { skip }, async () => {
  await putRoute(ddb, TABLE, { path: '/b-service', target: `http://127.0.0.1:${b.port}` });
  await eventually(async () => (await statusOf('/b-service')) === 502, { what: 'route to B rejected before the policy allows B' });
  const oldVersion = (await config()).policy.version;
  policy = makePolicy({ destinations: [dest(a.port), dest(b.port)] });
  await putPolicy(s3, BUCKET, KEY, policy);
  await eventually(async () => (await nameOf('/b-service')) === 'B', { what: 'route to B served after the policy change' });
  const c = await config();
  assert.notEqual(c.policy.version, oldVersion);
  assert.equal(c.policy.last_error, null);
});

test('a malformed item is rejected with its reason while the rest loads', { skip }, async () => {
  await putRoute(ddb, TABLE, { path: '/typo', target: 'not a url' });
  await putRoute(ddb, TABLE, { path: '/wrongtype', target: { $raw: { N: '12' } } });
  await putRoute(ddb, TABLE, { path: '/fine', target: `http://127.0.0.1:${a.port}` });
  await eventually(async () => (await statusOf('/fine')) === 200, { what: 'the good item loaded' });
  const c = await config();
  const typo = c.rejected_routes.find((x) => x.path === '/typo');
  const wrong = c.rejected_routes.find((x) => x.path === '/wrongtype');
  assert.ok(typo && /target/.test(typo.reason), JSON.stringify(c.rejected_routes));
  assert.ok(wrong && /target/.test(wrong.reason), JSON.stringify(c.rejected_routes));
  assert.equal(await statusOf('/typo/1'), 502);
  assert.equal(await statusOf('/orders/1'), 200);
  assert.equal(c.routes.last_error, null, 'a bad item is not a store failure');
});

test('a malformed policy object keeps the last good snapshot, with the error in /config', { skip }, async () => {
  await putPolicy(s3, BUCKET, KEY, '{"listen_domains": [');
  await eventually(async () => (await config()).policy.last_error, { what: 'policy error reported', timeoutMs: 30000 * SLOW });
  const c = await config();
  assert.match(c.policy.last_error, /s3:\/\//);
  assert.ok(c.policy.consecutive_failures >= 1);
  assert.equal(await statusOf('/orders/1'), 200, 'traffic continues on the last good policy');
  await putPolicy(s3, BUCKET, KEY, policy);
  await eventually(async () => (await config()).policy.last_error === null, { what: 'policy recovered' });
});

test('the verifying front can tell: a replayed request verifies, a tampered one is refused', { skip }, async () => {
  const scan = ddbFront.requests.find((r) => r.headers['x-amz-target'] === 'DynamoDB_20120810.Scan');
  // Marked with an unsigned header so they can be told from switchyard's
  // own polls, which go on meanwhile.
  const send = (body) => httpRequest({ port: ddbFront.port, method: 'POST', path: scan.url, headers: { ...scan.headers, 'x-test-replay': '1', 'content-length': Buffer.byteLength(body) }, host: null, body });
  const verified = ddbFront.stats.verified;
  assert.equal((await send(scan.body)).status, 200);
  assert.ok(ddbFront.stats.verified >= verified + 1);
  const tampered = await send(scan.body.replace(TABLE, 'other-table'));
  assert.equal(tampered.status, 403);
  const reason = ddbFront.stats.reasons.findIndex((r) => /signature mismatch/.test(r));
  assert.ok(reason >= 0);
  ddbFront.stats.reasons.splice(reason, 1);
  ddbFront.stats.rejected--;
  // The two requests of this test are not switchyard's.
  for (let i = ddbFront.requests.length - 1; i >= 0; i--) {
    if (ddbFront.requests[i].headers['x-test-replay']) ddbFront.requests.splice(i, 1);
  }
  ddbFront.stats.verified--;
});

test('the verifying front refused nothing', { skip }, async () => {
  assert.deepEqual(ddbFront.stats.reasons, []);
  assert.deepEqual(s3Front.stats.reasons, []);
  assert.equal(ddbFront.stats.rejected + s3Front.stats.rejected, 0);
  assert.equal(ddbFront.stats.verified, ddbFront.requests.length);
  assert.equal(s3Front.stats.verified, s3Front.requests.length);
});
