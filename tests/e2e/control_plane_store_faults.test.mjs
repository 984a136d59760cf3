// Issue 16, item 5: how switchyard answers a store that throttles, refuses
// its credentials, holds an over-size object, re-tags an unchanged object,
// answers 304 to a first GET, or runs on another clock. dynalite and s3rver
// sit behind SigV4-verifying fronts, and a fault-injecting front of our own
// (lib/fault-front.mjs) sits between switchyard and those, recording every
// request (when it came, its key, the status and body size answered).
//
// Each test asserts what the client sees (no failed request), what the
// operator sees (the error in /config and /metrics as soon as the call
// failed) and what switchyard did to the store (requests counted and
// ordered at the front). The only time figures are lower bounds on the
// gaps switchyard itself must leave (Retry-After), with margin: a slow
// build can only widen them.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEcho } from '../../examples/echo-backend.mjs';
import { makePolicy, dest, get, adminGet, eventually, sleep, SLOW, binAvailable, tempDir } from './lib/harness.mjs';
import {
  awsModulesAvailable, startStore, startVerifyingFront, dynamoClient, s3Client, createRoutesTable, createBucket,
  putPolicy, putRoute, startSwitchyardAws, cleanAwsEnv, startContainerCredentials,
} from './lib/aws-stores.mjs';
import { startFaultFront } from './lib/fault-front.mjs';
import { PutObjectCommand } from '@aws-sdk/client-s3';

const skip = !binAvailable() || !awsModulesAvailable() ? 'switchyard binary or tests/e2e node_modules missing' : false;
const CREDS = { accessKeyId: 'AKIDSTOREFAULT', secretAccessKey: 'store-fault-secret' };

let a, ddbStore, s3Store, ddbVerify, s3Verify, ddbFault, s3Fault, ddb, s3, env;
let fixtureNo = 0;

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
    f.editHeaders = null;
    f.seen = [];
  }
});

const target = (p = '') => `http://127.0.0.1:${a.port}${p}`;

// A fresh table and policy object holding /orders.
async function fixture(policyExtra = {}) {
  const table = `sf${++fixtureNo}-${process.pid}`;
  const key = `${table}.json`;
  await createRoutesTable(ddb, table);
  await putRoute(ddb, table, { path: '/orders', target: target() });
  await putPolicy(s3, 'cfg', key, makePolicy({ destinations: [dest(a.port)], ...policyExtra }));
  return { table, key, policyUri: `s3://cfg/${key}`, routesUri: `dynamodb://${table}` };
}

const config = async (sy) => (await adminGet(sy, '/config')).json();
const metric = async (sy, series) => {
  const text = (await adminGet(sy, '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `series ${series} present`);
  return Number(line.slice(series.length + 1));
};

// Client traffic for the whole test: every answer must be a 200.
function traffic(sy) {
  const t = { served: 0, failures: [], stopped: false };
  t.done = (async () => {
    while (!t.stopped) {
      try {
        const r = await get(sy, `/orders/${t.served}`);
        if (r.status === 200) t.served++;
        else t.failures.push(r.status);
      } catch (e) {
        t.failures.push(e.message);
      }
      await sleep(50);
    }
  })();
  t.stop = async () => {
    t.stopped = true;
    await t.done;
    return t;
  };
  return t;
}

// The gaps, in ms, between consecutive entries.
const gaps = (entries) => entries.slice(1).map((e, i) => e.at - entries[i].at);
const between = (entries, from, to) => entries.filter((e) => e.at > from && e.at < to).length;

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
const ddbError = (type, message) => JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });

/* ---- throttling ---- */

test('S3 503 SlowDown with Retry-After: shown at once, no GET before Retry-After, DynamoDB keeps polling, then recovery', { skip }, async () => {
  const fx = await fixture();
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  const t = traffic(sy);
  try {
    const throttled = [];
    s3Fault.respond = (op) => {
      if (op !== 'GET') return undefined;
      throttled.push({ at: Date.now() });
      return { status: 503, headers: { 'content-type': 'application/xml', 'retry-after': '3' }, body: SLOW_DOWN };
    };
    // The error is in /config and the metrics before the store is asked again.
    const c = await eventually(async () => {
      const cc = await config(sy);
      return cc.policy.last_error ? cc : null;
    }, { what: 'SlowDown in /config' });
    const seenWhenShown = throttled.length;
    assert.match(c.policy.last_error, /s3:\/\/cfg\/.*SlowDown/);
    assert.match(c.policy.last_error, /Retry-After/i, 'the error says it waits as asked');
    assert.ok((await metric(sy, 'switchyard_config_consecutive_failures{store="policy"}')) >= 1);
    assert.equal(seenWhenShown, 1, 'shown after the first throttled answer, not after retries');
    assert.equal(c.routes.last_error, null, 'DynamoDB is not blamed');

    // A policy change uploaded while throttled goes live once S3 answers.
    await putPolicy(s3, 'cfg', fx.key, makePolicy({ destinations: [dest(a.port)], listen_domains: ['api.example.com', 'later.example.com'] }));
    await eventually(async () => throttled.length >= 3, { what: 'three throttled GETs', timeoutMs: 30000 * SLOW });
    for (const gap of gaps(throttled)) assert.ok(gap >= 2500, `a GET came ${gap} ms after a Retry-After: 3 answer`);
    // DynamoDB kept its own cadence meanwhile (every poll is a GetItem).
    const ddbPolls = ddbFault.seen.filter((e) => e.op === 'GetItem');
    assert.ok(between(ddbPolls, throttled[0].at, throttled[1].at) >= 2, 'DynamoDB polled while S3 was waiting');

    s3Fault.respond = null;
    await eventually(async () => (await config(sy)).listen_domains.includes('later.example.com'),
      { what: 'policy change live after the throttling', timeoutMs: 20000 * SLOW });
    const after = await config(sy);
    assert.equal(after.policy.last_error, null);
    assert.equal(await metric(sy, 'switchyard_config_consecutive_failures{store="policy"}'), 0);
  } finally {
    await t.stop();
    await sy.stopClean();
  }
  assert.deepEqual(t.failures, []);
  assert.ok(t.served > 5);
});

test('DynamoDB ThrottlingException with Retry-After on the marker read: shown at once, waited out, S3 keeps polling', { skip }, async () => {
  const fx = await fixture();
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  const t = traffic(sy);
  try {
    const throttled = [];
    ddbFault.respond = (op) => {
      if (op !== 'GetItem') return undefined;
      throttled.push({ at: Date.now() });
      return { status: 400, headers: { 'content-type': 'application/x-amz-json-1.0', 'retry-after': '3' }, body: ddbError('ThrottlingException', 'Rate of requests exceeds the allowed throughput.') };
    };
    const c = await eventually(async () => {
      const cc = await config(sy);
      return cc.routes.last_error ? cc : null;
    }, { what: 'ThrottlingException in /config' });
    const seenWhenShown = throttled.length;
    assert.match(c.routes.last_error, /dynamodb:\/\/.*ThrottlingException/);
    assert.equal(seenWhenShown, 1, 'shown after the first throttled answer');
    assert.ok((await metric(sy, 'switchyard_config_consecutive_failures{store="routes"}')) >= 1);
    assert.equal(c.policy.last_error, null);

    await putRoute(ddb, fx.table, { path: '/while-throttled', target: target() });
    await eventually(async () => throttled.length >= 3, { what: 'three throttled GetItems', timeoutMs: 30000 * SLOW });
    for (const gap of gaps(throttled)) assert.ok(gap >= 2500, `a GetItem came ${gap} ms after a Retry-After: 3 answer`);
    const s3Polls = s3Fault.seen.filter((e) => e.op === 'GET');
    assert.ok(between(s3Polls, throttled[0].at, throttled[1].at) >= 2, 'S3 polled while DynamoDB was waiting');

    ddbFault.respond = null;
    await eventually(async () => (await get(sy, '/while-throttled/1')).status === 200, { what: 'route written meanwhile live', timeoutMs: 20000 * SLOW });
    assert.equal((await config(sy)).routes.last_error, null);
  } finally {
    await t.stop();
    await sy.stopClean();
  }
  assert.deepEqual(t.failures, []);
});

test('DynamoDB ProvisionedThroughputExceededException without Retry-After on a Scan: bounded retries, shown, then the change loads', { skip }, async () => {
  const fx = await fixture();
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  const t = traffic(sy);
  try {
    const g0 = (await config(sy)).generation;
    let scans = 0;
    ddbFault.respond = (op) => {
      if (op !== 'Scan') return undefined;
      scans++;
      return { status: 400, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: ddbError('ProvisionedThroughputExceededException', 'The level of configured provisioned throughput for the table was exceeded.') };
    };
    await putRoute(ddb, fx.table, { path: '/after-throttle', target: target() }); // moves the marker: a Scan
    const c = await eventually(async () => {
      const cc = await config(sy);
      return cc.routes.last_error ? cc : null;
    }, { what: 'throttled Scan in /config', timeoutMs: 20000 * SLOW });
    assert.match(c.routes.last_error, /ProvisionedThroughputExceededException/);
    assert.equal(c.generation, g0, 'nothing published');
    // Each failed poll retried the page a bounded number of times.
    await eventually(async () => (await config(sy)).routes.consecutive_failures >= 2, { what: 'two failed polls', timeoutMs: 30000 * SLOW });
    const failed = (await config(sy)).routes.consecutive_failures;
    assert.ok(scans <= 6 * (failed + 1), `${scans} Scans for ${failed} failed polls`);
    ddbFault.respond = null;
    await eventually(async () => (await get(sy, '/after-throttle/1')).status === 200, { what: 'change loaded', timeoutMs: 20000 * SLOW });
    assert.equal((await config(sy)).routes.last_error, null);
  } finally {
    await t.stop();
    await sy.stopClean();
  }
  assert.deepEqual(t.failures, []);
});

/* ---- invalid credentials ---- */

const UNRECOGNIZED = ddbError('UnrecognizedClientException', 'The security token included in the request is invalid.');
const s3Error = (code, message) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;

// Both fault fronts refuse the keys `refused(accessKeyId)` names, as AWS
// does once keys are revoked or their session expired.
function refuseKeys(refused, { s3Code = 'InvalidAccessKeyId', s3Status = 403 } = {}) {
  ddbFault.respond = (op, req) => {
    const key = /Credential=([^/]+)\//.exec(req.headers.authorization || '');
    if (!key || !refused(key[1])) return undefined;
    return { status: 400, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: UNRECOGNIZED };
  };
  s3Fault.respond = (op, req) => {
    const key = /Credential=([^/]+)\//.exec(req.headers.authorization || '');
    if (!key || !refused(key[1])) return undefined;
    const message = s3Code === 'ExpiredToken' ? 'The provided token has expired.' : 'The AWS Access Key Id you provided does not exist in our records.';
    return { status: s3Status, headers: { 'content-type': 'application/xml' }, body: s3Error(s3Code, message) };
  };
}

const answeredWith = (front, key) => front.seen.filter((e) => e.accessKeyId === key && (e.status === 200 || e.status === 304));

test('keys refused by both stores (UnrecognizedClientException, InvalidAccessKeyId): exactly one credentials refresh, then the calls succeed', { skip }, async () => {
  const fx = await fixture();
  const ep = await startContainerCredentials({ fronts: [ddbVerify, s3Verify], validForMs: 60 * 60 * 1000 });
  const credEnv = cleanAwsEnv({ AWS_ENDPOINT_URL_S3: s3Fault.url, AWS_ENDPOINT_URL_DYNAMODB: ddbFault.url, AWS_CONTAINER_CREDENTIALS_FULL_URI: ep.url });
  const sy = await startSwitchyardAws({ ...fx, env: credEnv, pollInterval: 0.3 });
  const t = traffic(sy);
  try {
    assert.equal(ep.calls, 1, 'one credentials fetch at start');
    const first = ep.issued[0];
    refuseKeys((k) => k === first);
    await eventually(async () => ep.calls >= 2, { what: 'credentials fetched again' });
    const second = ep.issued[1];
    // Both stores answer the new keys, and keep doing so, with no further fetch.
    await eventually(async () => answeredWith(ddbFault, second).length >= 5 && answeredWith(s3Fault, second).length >= 5,
      { what: 'both stores polled five times with the new keys', timeoutMs: 20000 * SLOW });
    assert.equal(ep.calls, 2, `exactly one refresh: keys issued ${ep.issued.join(', ')}`);
    // Each store was refused at most once (the call in flight when the keys were revoked).
    for (const f of [ddbFault, s3Fault]) {
      const refused = f.seen.filter((e) => e.accessKeyId === first && e.status >= 400).length;
      assert.ok(refused <= 1, `${refused} refused requests at one store`);
    }
    const c = await config(sy);
    assert.equal(c.routes.last_error, null, 'the refreshed call succeeded within the poll');
    assert.equal(c.policy.last_error, null);
    assert.match(sy.stderr(), /AWS credentials refused/, 'the refusal is logged');
  } finally {
    await t.stop();
    await sy.stopClean();
    await ep.close();
  }
  assert.deepEqual(t.failures, []);
});

test('a credentials source that keeps handing out refused keys: one refresh per refused call, never a loop, and good keys work', { skip }, async () => {
  const fx = await fixture();
  const ep = await startContainerCredentials({ fronts: [ddbVerify, s3Verify], validForMs: 60 * 60 * 1000 });
  const credEnv = cleanAwsEnv({ AWS_ENDPOINT_URL_S3: s3Fault.url, AWS_ENDPOINT_URL_DYNAMODB: ddbFault.url, AWS_CONTAINER_CREDENTIALS_FULL_URI: ep.url });
  const sy = await startSwitchyardAws({ ...fx, env: credEnv, pollInterval: 0.3 });
  const t = traffic(sy);
  try {
    // Every key the endpoint hands out until the outage ends is refused
    // (an ExpiredToken at S3); the ones after it are good.
    let goodFrom = Infinity;
    const bad = (k) => ep.issued.indexOf(k) < goodFrom;
    refuseKeys(bad, { s3Code: 'ExpiredToken', s3Status: 400 });
    await eventually(async () => {
      const c = await config(sy);
      return c.routes.consecutive_failures >= 3 && c.policy.consecutive_failures >= 3;
    }, { what: 'three failed polls at each store', timeoutMs: 30000 * SLOW });
    const c = await config(sy);
    assert.match(c.policy.last_error, /ExpiredToken/);
    assert.match(c.routes.last_error, /UnrecognizedClientException/);
    // At most one fetch per refused call: the retry with the fresh keys,
    // refused too, is not followed by another fetch.
    const refused = [ddbFault, s3Fault].flatMap((f) => f.seen.filter((e) => e.accessKeyId && e.status >= 400));
    assert.ok(ep.calls - 1 <= refused.length / 2 + 2, `${ep.calls} fetches for ${refused.length} refused requests`);
    // Good keys again: the next fetch is accepted and the errors clear.
    goodFrom = ep.issued.length;
    await eventually(async () => {
      const cc = await config(sy);
      return cc.routes.last_error === null && cc.policy.last_error === null;
    }, { what: 'recovered with good keys', timeoutMs: 20000 * SLOW });
    const good = ep.issued.slice(goodFrom);
    assert.ok(good.length >= 1 && good.length <= 2, `fresh keys fetched after the outage: ${good.join(', ')}`);
  } finally {
    await t.stop();
    await sy.stopClean();
    await ep.close();
  }
  assert.deepEqual(t.failures, []);
});

test('keys rotated in the shared credentials file: the refused old keys make switchyard read the file once more', { skip }, async () => {
  const fx = await fixture();
  const home = tempDir('sy-home-');
  fs.mkdirSync(path.join(home, '.aws'));
  const file = path.join(home, '.aws', 'credentials');
  const OLD = { accessKeyId: 'AKIDFILEOLD', secretAccessKey: 'file-old-secret' };
  const NEW = { accessKeyId: 'AKIDFILENEW', secretAccessKey: 'file-new-secret' };
  for (const f of [ddbVerify, s3Verify]) {
    f.keys.set(OLD.accessKeyId, OLD);
    f.keys.set(NEW.accessKeyId, NEW);
  }
  const write = (k) => fs.writeFileSync(file, `[default]\naws_access_key_id = ${k.accessKeyId}\naws_secret_access_key = ${k.secretAccessKey}\n`);
  write(OLD);
  const fileEnv = { ...cleanAwsEnv({ AWS_ENDPOINT_URL_S3: s3Fault.url, AWS_ENDPOINT_URL_DYNAMODB: ddbFault.url }), HOME: home };
  const sy = await startSwitchyardAws({ ...fx, env: fileEnv, pollInterval: 0.3 });
  const t = traffic(sy);
  try {
    write(NEW);
    // The file changed, but switchyard holds static keys: it reads the
    // file again only when a store refuses the old ones.
    refuseKeys((k) => k === OLD.accessKeyId);
    await eventually(async () => answeredWith(ddbFault, NEW.accessKeyId).length >= 3 && answeredWith(s3Fault, NEW.accessKeyId).length >= 3,
      { what: 'both stores answered with the new keys', timeoutMs: 20000 * SLOW });
    const after = (f) => f.seen.slice(f.seen.findIndex((e) => e.accessKeyId === NEW.accessKeyId));
    for (const f of [ddbFault, s3Fault]) assert.ok(after(f).every((e) => e.accessKeyId === NEW.accessKeyId), 'never back to the old keys');
    const c = await config(sy);
    assert.equal(c.routes.last_error, null);
    assert.equal(c.policy.last_error, null);
  } finally {
    await t.stop();
    await sy.stopClean();
    for (const f of [ddbVerify, s3Verify]) {
      f.keys.delete(OLD.accessKeyId);
      f.keys.delete(NEW.accessKeyId);
    }
  }
  assert.deepEqual(t.failures, []);
});

/* ---- S3 objects ---- */

test('an S3 object over the 64 MiB cap: refused with a clear error, not downloaded again until it changes, a valid one goes live', { skip }, async () => {
  const fx = await fixture();
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  const t = traffic(sy);
  try {
    const g0 = (await config(sy)).generation;
    // Valid JSON, padded past the cap: only its size is wrong.
    const pad = Buffer.alloc(65 * 1024 * 1024, 0x20);
    const big = Buffer.concat([Buffer.from('{"version":1,'), pad, Buffer.from('"x":1}')]);
    await s3.send(new PutObjectCommand({ Bucket: 'cfg', Key: fx.key, Body: big, ContentType: 'application/json' }));
    const c = await eventually(async () => {
      const cc = await config(sy);
      return cc.policy.last_error ? cc : null;
    }, { what: 'size error in /config', timeoutMs: 30000 * SLOW });
    assert.match(c.policy.last_error, /s3:\/\/cfg\/.*: the object is over the 64 MiB limit \(ETag "[0-9a-f]+"\); refused/);
    assert.equal(c.generation, g0);
    const downloads = () => s3Fault.seen.filter((e) => e.method === 'GET' && e.status === 200 && e.bytes > 0);
    const bigDownloads = () => downloads().filter((e) => e.bytes > 64 * 1024 * 1024).length;
    const asked = s3Fault.seen.length;
    await eventually(async () => s3Fault.seen.length >= asked + 5, { what: 'five more polls', timeoutMs: 20000 * SLOW });
    assert.equal(bigDownloads(), 1, 'the over-size body was fetched once');
    const later = await config(sy);
    assert.match(later.policy.last_error, /over the 64 MiB limit.*not downloaded again until it changes/);
    assert.ok(later.policy.consecutive_failures >= 3);
    assert.ok((await metric(sy, 'switchyard_config_consecutive_failures{store="policy"}')) >= 3);

    await putPolicy(s3, 'cfg', fx.key, makePolicy({ destinations: [dest(a.port)], listen_domains: ['api.example.com', 'small.example.com'] }));
    await eventually(async () => (await config(sy)).listen_domains.includes('small.example.com'), { what: 'small policy live', timeoutMs: 20000 * SLOW });
    assert.equal((await config(sy)).policy.last_error, null);
    assert.equal(bigDownloads(), 1);
  } finally {
    await t.stop();
    await sy.stopClean();
  }
  assert.deepEqual(t.failures, []);
});

test('a new ETag over the same bytes rebuilds nothing', { skip }, async () => {
  const fx = await fixture();
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
  try {
    // Every body S3 sends carries a new ETag, as a store that tags by
    // upload rather than by content does: switchyard's next GET, conditional
    // on that tag, gets the same bytes again under yet another one.
    let n = 0;
    s3Fault.editHeaders = (op, status, headers) => {
      if (op === 'GET' && status === 200) headers.etag = `"upload-${++n}"`;
    };
    // One real change first (S3 answers 304 until the object changes).
    await putPolicy(s3, 'cfg', fx.key, makePolicy({ destinations: [dest(a.port)], listen_domains: ['api.example.com', 'tagged.example.com'] }));
    await eventually(async () => (await config(sy)).listen_domains.includes('tagged.example.com'), { what: 'change applied' });
    const c0 = await config(sy);
    const bodies = () => s3Fault.seen.filter((e) => e.op === 'GET' && e.status === 200).length;
    const seen = bodies();
    await eventually(async () => bodies() >= seen + 5, { what: 'five more re-tagged bodies downloaded', timeoutMs: 20000 * SLOW });
    const c = await config(sy);
    assert.equal(c.generation, c0.generation, 'no snapshot built for the same bytes');
    assert.equal(c.policy.last_error, null);
    assert.equal(c.policy.consecutive_failures, 0);
    // A real change under a new tag is still applied.
    await putPolicy(s3, 'cfg', fx.key, makePolicy({ destinations: [dest(a.port)], listen_domains: ['api.example.com', 'retag.example.com'] }));
    await eventually(async () => (await config(sy)).listen_domains.includes('retag.example.com'), { what: 'changed body applied' });
    assert.ok((await config(sy)).generation > c0.generation);
  } finally {
    await sy.stopClean();
  }
});

test('a 304 to the first, unconditional GET is blamed on the policy store, not the routes', { skip }, async () => {
  const fx = await fixture();
  s3Fault.respond = (op) => (op === 'GET' ? { status: 304, headers: {} } : undefined);
  const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3, waitReady: false });
  try {
    const c = await eventually(async () => {
      try {
        const cc = await config(sy);
        return cc.policy.last_error ? cc : null;
      } catch {
        return null;
      }
    }, { what: 'policy error in /config' });
    assert.match(c.policy.last_error, /s3:\/\/cfg\/.*304 Not Modified/);
    assert.equal(c.routes.last_error, null, 'the routes store is not blamed');
    assert.equal((await adminGet(sy, '/readyz')).status, 503);
    s3Fault.respond = null;
    await eventually(async () => (await adminGet(sy, '/readyz')).status === 200, { what: 'ready once S3 answers', timeoutMs: 20000 * SLOW });
    assert.equal((await get(sy, '/orders/1')).status, 200);
  } finally {
    await sy.stopClean();
  }
});

/* ---- clock skew ---- */

const amzTime = (d) => Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15));
const amzStamp = (ms) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

// Both stores run on a clock offsetMs ahead of (or behind) ours: every
// answer's Date says so, and a request whose X-Amz-Date is more than 5 min
// off that clock is refused as AWS refuses it. The verifying fronts behind
// accept 15 min either way, so a corrected request passes them too.
function skewedStores(offsetMs) {
  const refused = { s3: 0, ddb: 0 };
  const serverNow = () => Date.now() + offsetMs;
  const off = (req) => Math.abs(amzTime(req.headers['x-amz-date'] || '') - serverNow()) > 5 * 60 * 1000;
  s3Fault.respond = (op, req) => {
    if (!off(req)) return undefined;
    refused.s3++;
    return {
      status: 403,
      headers: { 'content-type': 'application/xml', date: new Date(serverNow()).toUTCString() },
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><RequestTime>${req.headers['x-amz-date']}</RequestTime><ServerTime>${new Date(serverNow()).toISOString()}</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds></Error>`,
    };
  };
  ddbFault.respond = (op, req) => {
    if (!off(req)) return undefined;
    refused.ddb++;
    const ahead = offsetMs > 0;
    return {
      status: 400,
      headers: { 'content-type': 'application/x-amz-json-1.0', date: new Date(serverNow()).toUTCString() },
      body: ddbError('InvalidSignatureException', ahead
        ? `Signature expired: ${req.headers['x-amz-date']} is now earlier than ${amzStamp(serverNow() - 5 * 60 * 1000)} (${amzStamp(serverNow())} - 5 min.)`
        : `Signature not yet current: ${req.headers['x-amz-date']} is still later than ${amzStamp(serverNow() + 5 * 60 * 1000)} (${amzStamp(serverNow())} + 5 min.)`),
    };
  };
  for (const f of [s3Fault, ddbFault]) f.editHeaders = (op, status, headers) => (headers.date = new Date(serverNow()).toUTCString());
  return refused;
}

for (const minutes of [10, -10]) {
  test(`stores whose clock is ${Math.abs(minutes)} min ${minutes > 0 ? 'ahead' : 'behind'}: the skew answer is corrected from Date, both stores load and stay loaded`, { skip }, async () => {
    const fx = await fixture();
    const refused = skewedStores(minutes * 60 * 1000);
    const sy = await startSwitchyardAws({ ...fx, env, pollInterval: 0.3 });
    try {
      assert.ok(refused.s3 + refused.ddb >= 1, 'a request signed with our clock was refused');
      assert.equal((await get(sy, '/orders/1')).status, 200);
      const before = refused.s3 + refused.ddb;
      const asked = s3Fault.seen.length + ddbFault.seen.length;
      await eventually(async () => s3Fault.seen.length + ddbFault.seen.length >= asked + 10, { what: 'ten more calls' });
      assert.equal(refused.s3 + refused.ddb, before, 'the correction is kept for later calls');
      const c = await config(sy);
      assert.equal(c.policy.last_error, null);
      assert.equal(c.routes.last_error, null);
      // Signed with the stores' clock, within a minute.
      const last = ddbFault.seen.at(-1);
      assert.ok(Math.abs(amzTime(last.amzDate) - (last.at + minutes * 60 * 1000)) < 60 * 1000, `X-Amz-Date ${last.amzDate}`);
      const warned = sy.stderr().split('\n').filter((l) => l.includes('local clock differs from the AWS service'));
      assert.ok(warned.length >= 1, 'the skew is logged');
      const offset = JSON.parse(warned[0]).offset_s;
      assert.ok(Math.abs(offset - minutes * 60) < 60, `offset_s ${offset}`);
    } finally {
      await sy.stopClean();
    }
  });
}
