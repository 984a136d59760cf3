// SPEC §4 when the stores misbehave: with S3 and DynamoDB down (their
// servers killed), traffic keeps flowing on the last good snapshot and
// /config shows the errors; when they come back, polling recovers and
// changes made meanwhile are picked up. A switchyard started while a store
// is unreachable doesn't exit: /readyz stays 503 while it retries, and it
// becomes ready once the store answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, adminGet, eventually, sleep, SLOW, binAvailable, parseMetrics } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, startSwitchyardAws, cleanAwsEnv,
} from './lib/aws-stores.mjs';

const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;
const TABLE = 'routes';
const CREDS = { accessKeyId: 'AKIDOUTAGE', secretAccessKey: 'outage-secret' };

let a, ddbStore, s3Store, ddbFront, s3Front, env;

before(async () => {
  if (skip) return;
  a = await startEcho({ name: 'A' });
  [ddbStore, s3Store] = await Promise.all([startStore('dynalite'), startStore('s3rver')]);
  const keys = new Map([[CREDS.accessKeyId, CREDS]]);
  ddbFront = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port, keys });
  s3Front = await startVerifyingFront({ service: 's3', targetPort: s3Store.port, keys });
  await createRoutesTable(dynamoClient(ddbStore), TABLE);
  await createBucket(s3Client(s3Store), 'cfg');
  await putPolicy(s3Client(s3Store), 'cfg', 'policy.json', makePolicy({ destinations: [dest(a.port)] }));
  await putRoute(dynamoClient(ddbStore), TABLE, { path: '/orders', target: `http://127.0.0.1:${a.port}` });
  env = cleanAwsEnv({
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    AWS_ENDPOINT_URL_S3: s3Front.url,
    AWS_ENDPOINT_URL_DYNAMODB: ddbFront.url,
  });
});

after(async () => {
  if (skip) return;
  await ddbFront?.close();
  await s3Front?.close();
  await ddbStore?.kill();
  await s3Store?.kill();
  await a?.close();
});

test('stores killed: traffic continues, errors in /config and metrics, then recovery', { skip }, async () => {
  const sy = await startSwitchyardAws({ policyUri: 's3://cfg/policy.json', routesUri: `dynamodb://${TABLE}`, pollInterval: 0.3, env });
  try {
    assert.equal((await get(sy, '/orders/1')).status, 200);
    await Promise.all([ddbStore.kill(), s3Store.kill()]);
    // Requests during the outage: every one served from the last snapshot.
    const deadline = Date.now() + 1500;
    let served = 0;
    const failures = [];
    const c = await eventually(async () => {
      const r = await get(sy, `/orders/${served}`);
      if (r.status === 200) served++;
      else failures.push(r.status);
      const conf = (await adminGet(sy, '/config')).json();
      return conf.routes.last_error && conf.policy.last_error && Date.now() > deadline ? conf : null;
    }, { timeoutMs: 40000 * SLOW, intervalMs: 100, what: 'both store errors reported' });
    assert.deepEqual(failures, []);
    assert.ok(served > 5);
    assert.match(c.routes.last_error, /dynamodb:\/\/routes/);
    assert.match(c.policy.last_error, /s3:\/\/cfg\/policy\.json/);
    assert.ok(c.routes.consecutive_failures >= 1 && c.policy.consecutive_failures >= 1);
    assert.ok(c.active_routes.some((r) => r.path === '/orders'));
    assert.equal((await adminGet(sy, '/readyz')).status, 200, 'still ready: it has a good snapshot');
    const failed = parseMetrics((await adminGet(sy, '/metrics')).text).filter(
      (m) => m.name === 'switchyard_config_reloads_total' && m.labels.result === 'failure' && m.value > 0,
    );
    assert.ok(failed.length >= 1, 'failed reloads counted in metrics');
    const streak = parseMetrics((await adminGet(sy, '/metrics')).text).filter(
      (m) => m.name === 'switchyard_config_consecutive_failures' && m.value >= 1,
    );
    assert.equal(streak.length, 2, 'both stores show a failure streak in metrics');

    // Back up, with a change made while switchyard couldn't see it.
    await Promise.all([ddbStore.start(), s3Store.start()]);
    await putRoute(dynamoClient(ddbStore), TABLE, { path: '/during', target: `http://127.0.0.1:${a.port}` });
    await eventually(async () => (await get(sy, '/during')).status === 200, { timeoutMs: 30000 * SLOW, what: 'change picked up after recovery' });
    await eventually(async () => {
      const conf = (await adminGet(sy, '/config')).json();
      return conf.routes.last_error === null && conf.policy.last_error === null && conf.routes.consecutive_failures === 0;
    }, { timeoutMs: 30000 * SLOW, what: 'errors cleared' });
    assert.deepEqual(ddbFront.stats.reasons, []);
    assert.deepEqual(s3Front.stats.reasons, []);
  } finally {
    await sy.stopClean();
  }
});

test('a store unreachable at start: /readyz 503 while retrying, then ready (no exit 2)', { skip }, async () => {
  await ddbStore.kill();
  const sy = await startSwitchyardAws({ policyUri: 's3://cfg/policy.json', routesUri: `dynamodb://${TABLE}`, pollInterval: 0.3, env, waitReady: false });
  try {
    await eventually(async () => (await adminGet(sy, '/healthz')).status === 200, { what: 'admin up' });
    await sleep(1500 * SLOW);
    assert.equal(sy.exitInfo(), null, `switchyard exited: ${sy.stderr()}`);
    assert.equal((await adminGet(sy, '/readyz')).status, 503);
    const early = await get(sy, '/orders/1');
    assert.equal(early.status, 503);
    assert.ok(early.headers['retry-after'], 'Retry-After on 503 before the first load');
    await ddbStore.start();
    await eventually(async () => (await adminGet(sy, '/readyz')).status === 200, { timeoutMs: 40000 * SLOW, what: 'ready after the store came back' });
    assert.equal((await get(sy, '/orders/1')).status, 200);
  } finally {
    await sy.stopClean();
  }
});
