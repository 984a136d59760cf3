// SPEC §4 at scale: 2,500+ routes in DynamoDB span several Scan pages
// (dynalite, like DynamoDB, stops a page at 1 MB); switchyard follows
// LastEvaluatedKey to the end, serves every route, and an unchanged
// multi-page table still causes no rebuild.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, adminGet, eventually, SLOW, binAvailable } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, putRoutesBatch, startSwitchyardAws, cleanAwsEnv,
} from './lib/aws-stores.mjs';

const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;
const TABLE = 'big-routes';
const COUNT = 2600;
const CREDS = { accessKeyId: 'AKIDPAGES', secretAccessKey: 'pages-secret' };
// ~1.2 KB per item: 2,600 items are ~3 MB, at least three Scan pages.
const PADDING = 'x'.repeat(1200);

let a, ddbStore, s3Store, ddbFront, s3Front, ddb, sy;

before(async () => {
  if (skip) return;
  a = await startEcho({ name: 'A' });
  [ddbStore, s3Store] = await Promise.all([startStore('dynalite'), startStore('s3rver')]);
  const keys = new Map([[CREDS.accessKeyId, CREDS]]);
  ddbFront = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port, keys });
  s3Front = await startVerifyingFront({ service: 's3', targetPort: s3Store.port, keys });
  ddb = dynamoClient(ddbStore);
  const s3 = s3Client(s3Store);
  await createRoutesTable(ddb, TABLE);
  await createBucket(s3, 'cfg');
  await putPolicy(s3, 'cfg', 'policy.json', makePolicy({ destinations: [dest(a.port)] }));
  const routes = [];
  for (let i = 0; i < COUNT; i++) routes.push({ path: `/svc-${i}`, target: `http://127.0.0.1:${a.port}/s${i}`, description: PADDING });
  await putRoutesBatch(ddb, TABLE, routes);
  sy = await startSwitchyardAws({
    policyUri: 's3://cfg/policy.json',
    routesUri: `dynamodb://${TABLE}`,
    pollInterval: 0.5,
    env: cleanAwsEnv({
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1', // the per-service overrides win
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
});

test(`all ${COUNT} routes load across several Scan pages`, { skip }, async () => {
  const c = (await adminGet(sy, '/config')).json();
  assert.equal(c.active_routes.length, COUNT);
  assert.equal(c.rejected_routes.length, 0);
  for (const i of [0, 1, 999, 1000, 1777, COUNT - 1]) {
    const r = await get(sy, `/svc-${i}/ping`);
    assert.equal(r.status, 200, `/svc-${i}`);
    assert.equal(r.json().url, `/s${i}/svc-${i}/ping`, 'forwarded to this item\'s own target');
  }
  const scans = ddbFront.requests.filter((r) => r.headers['x-amz-target'] === 'DynamoDB_20120810.Scan');
  const continued = scans.filter((r) => JSON.parse(r.body).ExclusiveStartKey);
  assert.ok(continued.length >= 2, `pages after the first: ${continued.length} of ${scans.length} Scans`);
  assert.deepEqual(ddbFront.stats.reasons, []);
  assert.deepEqual(s3Front.stats.reasons, []);
});

test('an unchanged multi-page table causes no rebuild; one more item does', { skip }, async () => {
  const g0 = (await adminGet(sy, '/config')).json().generation;
  const scans0 = ddbFront.requests.length;
  // Polls go on (each reads the change marker) without a rebuild.
  await eventually(() => ddbFront.requests.length >= scans0 + 3, { what: 'polls going on', timeoutMs: 30000 * SLOW });
  assert.equal((await adminGet(sy, '/config')).json().generation, g0);
  await putRoute(ddb, TABLE, { path: '/svc-last', target: `http://127.0.0.1:${a.port}` });
  // A multi-page Scan of dynalite is slow on a loaded machine: allow a few.
  await eventually(async () => (await get(sy, '/svc-last')).status === 200, { what: 'new route after the last page', timeoutMs: 40000 * SLOW });
  const c = (await adminGet(sy, '/config')).json();
  assert.equal(c.active_routes.length, COUNT + 1);
  assert.ok(c.generation > g0);
  assert.deepEqual(ddbFront.stats.reasons, []);
});
