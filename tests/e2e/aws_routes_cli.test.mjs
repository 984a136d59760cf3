// `switchyard routes put|delete|list` (SPEC §1) as a pipeline runs it
// against dynamodb://TABLE: every request it makes passes the verifying
// front; an invalid item or one the policy (in S3) would reject is refused
// with exit 1 before anything is written; a running switchyard serves the
// route within a poll; list --json reads the table back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, eventually, binAvailable, BIN, sanitizerReport } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, startSwitchyardAws, cleanAwsEnv,
} from './lib/aws-stores.mjs';
import { ScanCommand } from '@aws-sdk/client-dynamodb';

// The command exists once main dispatches it; until then this file skips.
const hasRoutesCommand = binAvailable() && !/unknown command/.test(spawnSync(BIN, ['routes', 'list'], { encoding: 'utf8' }).stderr || '');
const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing'
  : !hasRoutesCommand ? 'switchyard has no routes command yet' : false;
const TABLE = 'pipeline-routes';
const CREDS = { accessKeyId: 'AKIDPIPELINE', secretAccessKey: 'pipeline-secret' };

let a, ddbStore, s3Store, ddbFront, s3Front, env, ddb;

// Asynchronous: the verifying fronts live in this process and must keep
// answering while the command runs.
const cli = (...args) => new Promise((resolve) => {
  const p = spawn(BIN, ['routes', ...args], { env });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => p.kill('SIGKILL'), 60000);
  p.on('exit', (code) => {
    clearTimeout(timer);
    const report = sanitizerReport(stderr);
    if (report) throw new Error(`sanitizer report from switchyard routes ${args.join(' ')}:\n${report}`);
    resolve({ code, stdout, stderr });
  });
});

before(async () => {
  if (skip) return;
  a = await startEcho({ name: 'A' });
  [ddbStore, s3Store] = await Promise.all([startStore('dynalite'), startStore('s3rver')]);
  const keys = new Map([[CREDS.accessKeyId, CREDS]]);
  ddbFront = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port, keys });
  s3Front = await startVerifyingFront({ service: 's3', targetPort: s3Store.port, keys });
  ddb = dynamoClient(ddbStore);
  await createRoutesTable(ddb, TABLE);
  await createBucket(s3Client(s3Store), 'cfg');
  await putPolicy(s3Client(s3Store), 'cfg', 'policy.json', makePolicy({ destinations: [dest(a.port)] }));
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

test('put, list, delete against DynamoDB, served by a running switchyard', { skip }, async () => {
  const sy = await startSwitchyardAws({ policyUri: 's3://cfg/policy.json', routesUri: `dynamodb://${TABLE}`, pollInterval: 0.3, env });
  try {
    const put = await cli('put', '--routes', `dynamodb://${TABLE}`, '--path', '/orders', '--target', `http://127.0.0.1:${a.port}/prod`,
      '--methods', 'GET,POST', '--strip-prefix', '--check-policy', 's3://cfg/policy.json', '--json');
    assert.equal(put.code, 0, put.stderr);
    const out = JSON.parse(put.stdout);
    assert.equal(out.ok, true);
    assert.equal(out.item.path, '/orders');
    // Written as a pipeline would with the SDK: methods a string set.
    const scan = await ddb.send(new ScanCommand({ TableName: TABLE }));
    const routeItems = scan.Items.filter((i) => i.path.S !== '#generation');
    assert.equal(routeItems.length, 1);
    assert.deepEqual(routeItems[0].methods, { SS: ['GET', 'POST'] });
    assert.deepEqual(routeItems[0].strip_prefix, { BOOL: true });
    // The write raised the change marker (SPEC §3), so the poll sees it.
    const marker = scan.Items.find((i) => i.path.S === '#generation');
    assert.ok(marker && Number(marker.generation.N) >= 1, 'routes put raised the marker');
    await eventually(async () => (await get(sy, '/orders/1')).status === 200, { what: 'route served' });
    assert.equal((await get(sy, '/orders/1')).json().url, '/prod/1');

    const list = await cli('list', '--routes', `dynamodb://${TABLE}`, '--json');
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout).routes.map((r) => r.path), ['/orders']);

    const del = await cli('delete', '--routes', `dynamodb://${TABLE}`, '--path', '/orders', '--json');
    assert.equal(del.code, 0, del.stderr);
    assert.equal(JSON.parse(del.stdout).deleted, true);
    await eventually(async () => (await get(sy, '/orders/1')).status === 404, { what: 'route gone' });
    const again = await cli('delete', '--routes', `dynamodb://${TABLE}`, '--path', '/orders', '--json');
    assert.equal(again.code, 0);
    assert.equal(JSON.parse(again.stdout).deleted, false);
  } finally {
    await sy.stopClean();
  }
  assert.deepEqual(ddbFront.stats.reasons, []);
  assert.deepEqual(s3Front.stats.reasons, []);
  assert.ok(ddbFront.stats.verified > 0 && s3Front.stats.verified > 0);
});

test('refusals: invalid item, policy rejection (exit 1, nothing written); usage and store errors (exit 2)', { skip }, async () => {
  const before1 = (await ddb.send(new ScanCommand({ TableName: TABLE }))).Items.length;
  const bad = await cli('put', '--routes', `dynamodb://${TABLE}`, '--path', '/x/../y', '--target', `http://127.0.0.1:${a.port}`, '--json');
  assert.equal(bad.code, 1);
  assert.match(JSON.parse(bad.stdout).error, /dot segment/);
  const denied = await cli('put', '--routes', `dynamodb://${TABLE}`, '--path', '/evil', '--target', 'http://169.254.169.254', '--check-policy', 's3://cfg/policy.json');
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /not an allowed destination/);
  assert.equal((await ddb.send(new ScanCommand({ TableName: TABLE }))).Items.length, before1);
  assert.equal((await cli('put', '--routes', `dynamodb://${TABLE}`, '--path', '/a')).code, 2);
  const missing = await cli('list', '--routes', 'dynamodb://no-such-table');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /ResourceNotFoundException/);
  assert.deepEqual(ddbFront.stats.reasons, []);
});
