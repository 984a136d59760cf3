// Issues 14 and 16: the control plane survives its stores. dynalite and
// s3rver sit behind SigV4-verifying fronts, and a fault-injecting front of
// our own (lib/fault-front.mjs) sits between switchyard and those. Each
// test asserts what the client sees (no failed request), what the operator
// sees (the error in /config and /metrics) and what the process does
// (listeners open, a clean exit on SIGTERM). No durations are asserted.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, adminGet, eventually, SLOW, BIN, binAvailable } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, deleteRoute, startSwitchyardAws, cleanAwsEnv,
} from './lib/aws-stores.mjs';
import { startFaultFront } from './lib/fault-front.mjs';
import { ScanCommand } from '@aws-sdk/client-dynamodb';

const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;
const CREDS = { accessKeyId: 'AKIDFAULT', secretAccessKey: 'fault-secret' };

let a, ddbStore, s3Store, ddbVerify, s3Verify, ddbFault, s3Fault, ddb, s3, env;
let tableNo = 0;

before(async () => {
  if (skip) return;
  a = await startEcho({ name: 'A' });
  [ddbStore, s3Store] = await Promise.all([startStore('dynalite'), startStore('s3rver')]);
  const keys = new Map([[CREDS.accessKeyId, CREDS]]);
  ddbVerify = await startVerifyingFront({ service: 'dynamodb', targetPort: ddbStore.port, keys });
  s3Verify = await startVerifyingFront({ service: 's3', targetPort: s3Store.port, keys });
  ddbFault = await startFaultFront({ targetPort: ddbVerify.port });
  s3Fault = await startFaultFront({ targetPort: s3Verify.port });
  ddb = dynamoClient(ddbStore);
  s3 = s3Client(s3Store);
  await createBucket(s3, 'cfg');
  env = cleanAwsEnv({
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    AWS_ENDPOINT_URL_S3: s3Fault.url,
    AWS_ENDPOINT_URL_DYNAMODB: ddbFault.url,
  });
});

after(async () => {
  if (skip) return;
  await ddbFault?.close();
  await s3Fault?.close();
  await ddbVerify?.close();
  await s3Verify?.close();
  await ddbStore?.kill();
  await s3Store?.kill();
  await a?.close();
});

beforeEach(() => {
  if (skip) return;
  for (const f of [ddbFault, s3Fault]) {
    f.release();
    f.deny = null;
    f.rewrite = null;
    f.respond = null;
    f.seen = [];
  }
});

const target = (p = '') => `http://127.0.0.1:${a.port}${p}`;

// A fresh table and policy object with the given routes; the policy may
// carry extra fields (limits...).
async function fixture(routes, policyExtra = {}) {
  const table = `t${++tableNo}-${process.pid}`;
  const key = `${table}.json`;
  await createRoutesTable(ddb, table);
  for (const r of routes) await putRoute(ddb, table, r);
  await putPolicy(s3, 'cfg', key, makePolicy({ destinations: [dest(a.port)], ...policyExtra }));
  return { table, key, policyUri: `s3://cfg/${key}`, routesUri: `dynamodb://${table}` };
}

const config = async (sy) => (await adminGet(sy, '/config')).json();
// The value of one exact series, e.g. 'switchyard_routes{state="active"}'.
const metric = async (sy, series) => {
  const text = (await adminGet(sy, '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `series ${series} present`);
  return Number(line.slice(series.length + 1));
};

test('the change marker drives the Scans: an unchanged table costs one GetItem per poll', { skip }, async () => {
  const fx = await fixture([{ path: '/orders', target: target() }]);
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.2, extraArgs: ['--resync-interval', '3600'] });
  try {
    const scans0 = ddbFault.calls.Scan || 0;
    const gets0 = ddbFault.calls.GetItem || 0;
    await eventually(async () => (ddbFault.calls.GetItem || 0) >= gets0 + 5, { what: 'five more polls' });
    assert.equal(ddbFault.calls.Scan || 0, scans0, 'no Scan while the marker stands still');

    // A write that raises the marker is read at the next poll.
    await putRoute(ddb, fx.table, { path: '/fresh', target: target() });
    await eventually(async () => (await get(sy, '/fresh/1')).status === 200, { what: 'marked write live' });
    assert.ok((ddbFault.calls.Scan || 0) > scans0, 'the moved marker caused a Scan');

    // A write without the marker waits for the resync (here: an hour).
    const scans1 = ddbFault.calls.Scan;
    await putRoute(ddb, fx.table, { path: '/unmarked', target: target() }, { marker: false });
    const gets1 = ddbFault.calls.GetItem;
    await eventually(async () => ddbFault.calls.GetItem >= gets1 + 5, { what: 'five more polls' });
    assert.equal(ddbFault.calls.Scan, scans1);
    assert.equal((await get(sy, '/unmarked/1')).status, 404);
    // Consistent reads, both of them.
    const c = await config(sy);
    assert.equal(c.routes.last_error, null);
  } finally {
    await sy.stopClean();
  }
  // A short resync picks up the unmarked write without any marker move.
  const sy2 = await startSwitchyardAws({ ...fx, env, pollInterval: 0.2, extraArgs: ['--resync-interval', '1'] });
  try {
    await putRoute(ddb, fx.table, { path: '/unmarked2', target: target() }, { marker: false });
    await eventually(async () => (await get(sy2, '/unmarked2/1')).status === 200, { what: 'resync picked it up' });
  } finally {
    await sy2.stopClean();
  }
});

test('a hung DynamoDB: S3 keeps its own polls, the hang shows, SIGTERM still drains and exits 0', { skip }, async () => {
  const fx = await fixture([{ path: '/orders', target: target() }]);
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3, drainTimeout: 2 });
  let exit;
  try {
    ddbFault.hang = true;
    // A policy change uploaded during the hang goes live.
    await putPolicy(s3, 'cfg', fx.key, makePolicy({ destinations: [dest(a.port)], listen_domains: ['api.example.com', 'new.example.com'] }));
    await eventually(async () => (await config(sy)).listen_domains.includes('new.example.com'),
      { what: 'policy applied while DynamoDB hangs', timeoutMs: 40000 * SLOW });
    // The hang itself shows as a routes error, within a poll plus the timeout.
    const c = await eventually(async () => {
      const cc = await config(sy);
      return cc.routes.last_error ? cc : null;
    }, { what: 'routes error in /config', timeoutMs: 40000 * SLOW });
    assert.match(c.routes.last_error, /dynamodb:\/\/.*(timed out|Timeout)/i);
    assert.equal(c.policy.last_error, null);
    assert.ok((await metric(sy, 'switchyard_config_consecutive_failures{store="routes"}')) >= 1);
    assert.equal((await get(sy, '/orders/1')).status, 200, 'traffic on the last good routes');
    // Shutdown follows while a GetItem hangs: drained and exited, not killed.
  } finally {
    exit = await sy.stop();
  }
  assert.equal(exit.hung, undefined, 'exited by itself');
  assert.equal(exit.code, 0);
});

test('started while DynamoDB hangs: listeners open, /healthz 200, /readyz and traffic 503, then ready', { skip }, async () => {
  const fx = await fixture([{ path: '/orders', target: target() }]);
  ddbFault.hang = true;
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3, waitReady: false });
  try {
    await eventually(async () => {
      try {
        return (await adminGet(sy, '/healthz')).status === 200;
      } catch {
        return false;
      }
    }, { what: 'admin listener open' });
    assert.equal((await adminGet(sy, '/readyz')).status, 503);
    const r = await get(sy, '/orders/1');
    assert.equal(r.status, 503);
    assert.ok(r.headers['retry-after'], 'Retry-After on traffic before the first load');
    ddbFault.release();
    await eventually(async () => (await adminGet(sy, '/readyz')).status === 200, { what: 'ready after the hang', timeoutMs: 40000 * SLOW });
    assert.equal((await get(sy, '/orders/1')).status, 200);
  } finally {
    await sy.stopClean();
  }
});

test('limits.max_routes: a table over it is refused whole, the last good routes keep serving', { skip }, async () => {
  const fx = await fixture([{ path: '/r0', target: target() }, { path: '/r1', target: target() }], { limits: { max_routes: 3 } });
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  try {
    const g0 = (await config(sy)).generation;
    for (const p of ['/r2', '/r3', '/r4']) await putRoute(ddb, fx.table, { path: p, target: target() });
    const c = await eventually(async () => {
      const cc = await config(sy);
      return cc.routes.last_error ? cc : null;
    }, { what: 'refusal shown' });
    assert.match(c.routes.last_error, /more than 3 route items \(limits\.max_routes 3\)/);
    assert.equal(c.generation, g0, 'nothing published');
    assert.equal((await get(sy, '/r1/x')).status, 200);
    assert.equal((await get(sy, '/r3/x')).status, 404);
    assert.ok((await metric(sy, 'switchyard_config_consecutive_failures{store="routes"}')) >= 1);
    await deleteRoute(ddb, fx.table, '/r4');
    await deleteRoute(ddb, fx.table, '/r3');
    await eventually(async () => (await get(sy, '/r2/x')).status === 200, { what: 'back under the limit' });
    assert.equal((await config(sy)).routes.last_error, null);
  } finally {
    await sy.stopClean();
  }
});

test('a Scan whose LastEvaluatedKey repeats stops with an error and publishes nothing', { skip }, async () => {
  const fx = await fixture([{ path: '/orders', target: target() }]);
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  try {
    const g0 = (await config(sy)).generation;
    let pages = 0;
    ddbFault.rewrite = (op, answer) => {
      if (op !== 'Scan') return undefined;
      pages++;
      return { ...answer, LastEvaluatedKey: { path: { S: '/same-every-page' } } };
    };
    await putRoute(ddb, fx.table, { path: '/new', target: target() }); // moves the marker: a Scan
    const c = await eventually(async () => {
      const cc = await config(sy);
      return cc.routes.last_error ? cc : null;
    }, { what: 'error shown' });
    assert.match(c.routes.last_error, /LastEvaluatedKey already seen/);
    assert.equal(c.generation, g0, 'nothing published');
    assert.equal(c.rejected_routes.length, 0);
    assert.ok(pages >= 2);
    assert.equal((await get(sy, '/orders/1')).status, 200);
    ddbFault.rewrite = null;
    await eventually(async () => (await get(sy, '/new/1')).status === 200, { what: 'recovered' });
  } finally {
    await sy.stopClean();
  }
});

test('an item with a NUL byte is rejected alone; its neighbours go live', { skip }, async () => {
  const fx = await fixture([{ path: '/orders', target: target() }]);
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  try {
    ddbFault.rewrite = (op, answer) => {
      if (op !== 'Scan') return undefined;
      answer.Items.push({ path: { S: '/nul' }, target: { S: target() }, owner: { S: 'team\u0000x' } });
      return answer;
    };
    await putRoute(ddb, fx.table, { path: '/neighbour', target: target() });
    await eventually(async () => (await get(sy, '/neighbour/1')).status === 200, { what: 'neighbour live' });
    const c = await config(sy);
    const bad = c.rejected_routes.find((r) => r.path === '/nul');
    assert.ok(bad, 'the NUL item is listed as rejected');
    assert.match(bad.reason, /item "\/nul": attribute "owner" contains a NUL byte/);
    assert.equal(c.routes.last_error, null);
    assert.equal((await get(sy, '/nul/1')).status, 502, 'a rejected route still owns its path');
    assert.equal(await metric(sy, 'switchyard_routes{state="rejected"}'), 1);
  } finally {
    await sy.stopClean();
  }
});

test('routes put whose marker update is denied: route written, exit 1 naming the permission', { skip }, async () => {
  const fx = await fixture([]);
  ddbFault.deny = (op) => op === 'UpdateItem';
  const out = await new Promise((resolve) => {
    const p = spawn(BIN, ['routes', 'put', '--routes', fx.routesUri, '--path', '/denied', '--target', target()], { env });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stderr }));
  });
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /the route is written/);
  assert.match(out.stderr, /Missing permission: dynamodb:UpdateItem on the item path="#generation"/);
  assert.match(out.stderr, /next full resync/);
  const items = (await ddb.send(new ScanCommand({ TableName: fx.table }))).Items;
  assert.ok(items.some((i) => i.path.S === '/denied'), 'the route item was written');
});

test('a clock-skew answer is corrected from the server\'s Date, as the SDKs do', { skip }, async () => {
  const fx = await fixture([{ path: '/orders', target: target() }]);
  const ahead = new Date(Date.now() + 2 * 3600 * 1000);
  let skewed = 0;
  s3Fault.respond = (op) => {
    if (op !== 'GET' || skewed) return undefined;
    skewed++;
    return {
      status: 403,
      headers: { 'content-type': 'application/xml', date: ahead.toUTCString() },
      body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>',
    };
  };
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3, waitReady: false });
  try {
    await eventually(async () => s3Fault.seen.filter((x) => x.op === 'GET').length >= 2, { what: 'the GET signed again' });
    const gets = s3Fault.seen.filter((x) => x.op === 'GET');
    const parse = (d) => Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15));
    const shift = parse(gets[1].amzDate) - parse(gets[0].amzDate);
    // Signed again with the server's clock: about two hours ahead.
    assert.ok(Math.abs(shift - 2 * 3600 * 1000) < 10 * 60 * 1000, `x-amz-date moved by ${shift} ms`);
  } finally {
    await sy.stopClean();
  }
});
