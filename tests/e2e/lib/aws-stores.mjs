// aws-stores.mjs: the AWS side of the end-to-end tests, all on loopback:
//  - dynalite (DynamoDB) and s3rver (S3), each in a child process so a test
//    can kill one and bring it back with its data;
//  - a verifying front before each: it recomputes every request's SigV4
//    signature with the AWS SDK's own signer (@smithy/signature-v4) from
//    the credentials it knows, answers 403 on any mismatch, unsigned
//    request or stale date, and counts what it saw;
//  - the AWS SDK clients the tests write documents with, as operators and
//    pipelines do (they talk to the stores directly, not through the front);
//  - a container-credentials endpoint that hands out new keys on every
//    call, and an IMDSv2 stand-in;
//  - starting switchyard with s3:// and dynamodb:// sources and an AWS
//    environment.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { DynamoDBClient, CreateTableCommand, DescribeTableCommand, PutItemCommand, DeleteItemCommand, BatchWriteItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { S3Client, CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { BIN, freePort, tempDir, sleep, SLOW, waitForReady, sanitizerReport } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REGION = 'eu-west-1';

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

export function awsModulesAvailable() {
  return fs.existsSync(path.join(HERE, '../node_modules/dynalite')) && fs.existsSync(path.join(HERE, '../node_modules/s3rver'));
}

/* ---- the stores ---- */

// Starts dynalite or s3rver in a child process; {port, dir, kill(), start()}.
export async function startStore(kind) {
  const store = { kind, port: await freePort(), dir: tempDir(`sy-${kind}-`), proc: null };
  store.start = async () => {
    const proc = spawn(process.execPath, [path.join(HERE, 'aws-store-child.mjs'), kind, String(store.port), store.dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(proc);
    proc.on('exit', () => children.delete(proc));
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${kind} did not start: ${err}`)), 20000 * SLOW);
      proc.stdout.setEncoding('utf8').on('data', (d) => {
        out += d;
        if (out.includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on('exit', (code) => reject(new Error(`${kind} exited ${code}: ${err}`)));
    });
    store.proc = proc;
  };
  store.kill = async () => {
    const p = store.proc;
    if (!p) return;
    store.proc = null;
    const gone = new Promise((r) => p.on('exit', r));
    p.kill('SIGKILL');
    await gone;
  };
  await store.start();
  return store;
}

/* ---- the verifying front ---- */

function parseAuthorization(value) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(value || '');
  if (!m) return null;
  return { accessKeyId: m[1], date: m[2], region: m[3], service: m[4], signedHeaders: m[5].split(';'), signature: m[6] };
}

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : null;
}

/*
 * A front for one store: {port, keys (Map accessKeyId -> {secretAccessKey,
 * sessionToken}), stats {verified, rejected, reasons[]}, requests[]}.
 * service: "s3" or "dynamodb". Requests that verify are forwarded to
 * 127.0.0.1:targetPort (for s3rver without the signature, which it can't
 * check); the others get 403 and never reach the store. With handle
 * (req, res, body, auth) instead of targetPort, a verified request is
 * answered by it: a stand-in for a signed AWS API such as STS.
 */
export async function startVerifyingFront({ service, targetPort, keys = new Map(), handle = null }) {
  const front = { service, keys, stats: { verified: 0, rejected: 0, reasons: [] }, requests: [] };
  const reject = (res, why) => {
    front.stats.rejected++;
    front.stats.reasons.push(why);
    const body = service === 's3'
      ? `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>${why.replace(/[<&>]/g, '')}</Message></Error>`
      : service === 'sts'
      ? `<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>${why.replace(/[<&>]/g, '')}</Message></Error></ErrorResponse>`
      : JSON.stringify({ __type: 'com.amazon.coral.service#InvalidSignatureException', message: why });
    res.writeHead(403, { 'content-type': service === 'dynamodb' ? 'application/x-amz-json-1.0' : 'application/xml' });
    res.end(body);
  };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    front.requests.push({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth) return reject(res, `unsigned or malformed Authorization: ${req.headers.authorization || '(none)'}`);
    const cred = front.keys.get(auth.accessKeyId);
    if (!cred) return reject(res, `unknown access key ${auth.accessKeyId}`);
    if (auth.service !== service) return reject(res, `signed for service ${auth.service}, expected ${service}`);
    const date = parseAmzDate(req.headers['x-amz-date']);
    if (!date || Math.abs(Date.now() - date.getTime()) > 15 * 60 * 1000) return reject(res, `bad or stale x-amz-date ${req.headers['x-amz-date']}`);
    if (cred.sessionToken && req.headers['x-amz-security-token'] !== cred.sessionToken) return reject(res, 'missing or wrong session token');
    const headers = {};
    for (const name of auth.signedHeaders) {
      if (!(name in req.headers)) return reject(res, `signed header ${name} is not in the request`);
      headers[name] = req.headers[name];
    }
    if (!headers.host) return reject(res, 'Host is not signed');
    const url = new URL(req.url, 'http://x');
    const query = {};
    for (const [k, v] of url.searchParams) query[k] = k in query ? [].concat(query[k], v) : v;
    const signer = new SignatureV4({
      credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: cred.secretAccessKey, sessionToken: cred.sessionToken },
      region: auth.region,
      service,
      sha256: Sha256,
      uriEscapePath: service !== 's3',
      applyChecksum: service === 's3',
    });
    let expected;
    try {
      const signed = await signer.sign(
        { method: req.method, protocol: 'http:', hostname: '127.0.0.1', path: url.pathname, query, headers, body: body.length ? body : undefined },
        { signingDate: date },
      );
      expected = parseAuthorization(signed.headers.authorization);
    } catch (e) {
      return reject(res, `signer error: ${e.message}`);
    }
    if (!expected || expected.signature !== auth.signature || expected.signedHeaders.join(';') !== auth.signedHeaders.join(';')) {
      return reject(res, `signature mismatch for ${req.method} ${req.url}: got ${req.headers.authorization}, expected ${expected && `SignedHeaders=${expected.signedHeaders.join(';')}, Signature=${expected.signature}`}`);
    }
    front.stats.verified++;
    if (handle) return handle(req, res, body, auth);
    // Forward. s3rver checks signatures against its own fixed keys, so it
    // gets the request without one (it was verified here).
    const fwd = { ...req.headers, host: `127.0.0.1:${targetPort}` };
    if (service === 's3') {
      for (const h of ['authorization', 'x-amz-security-token', 'x-amz-date', 'x-amz-content-sha256']) delete fwd[h];
    }
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: fwd }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => {
      // The store is down: a closed connection, as a dead endpoint gives.
      front.stats.forwardErrors = (front.stats.forwardErrors || 0) + 1;
      res.destroy(e);
    });
    up.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  front.port = server.address().port;
  front.url = `http://127.0.0.1:${front.port}`;
  front.close = () => new Promise((r) => {
    server.closeAllConnections?.();
    server.close(r);
  });
  return front;
}

/* ---- SDK clients (the writers) ---- */

// No keep-alive: a pooled socket would keep the test process alive after
// its last test, and a killed store would leave dead sockets in the pool.
const noKeepAlive = () => ({ httpAgent: new http.Agent({ keepAlive: false }) });

export function dynamoClient(store) {
  return new DynamoDBClient({
    endpoint: `http://127.0.0.1:${store.port}`,
    requestHandler: noKeepAlive(),
    region: REGION,
    credentials: { accessKeyId: 'pipeline', secretAccessKey: 'pipeline-secret' },
  });
}

export function s3Client(store) {
  return new S3Client({
    endpoint: `http://127.0.0.1:${store.port}`,
    requestHandler: noKeepAlive(),
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
}

export async function createRoutesTable(ddb, table) {
  await ddb.send(new CreateTableCommand({
    TableName: table,
    AttributeDefinitions: [{ AttributeName: 'path', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'path', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
  }));
  // dynalite makes the table ACTIVE on a timer (even with createTableMs 0):
  // a write before that is "Requested resource not found".
  for (let i = 0; i < 200; i++) {
    const d = await ddb.send(new DescribeTableCommand({ TableName: table }));
    if (d.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`table ${table} never became ACTIVE`);
}

// A plain route object -> DynamoDB item (methods as a string set).
export function toItem(r) {
  const item = {};
  for (const [k, v] of Object.entries(r)) {
    if (typeof v === 'string') item[k] = { S: v };
    else if (typeof v === 'boolean') item[k] = { BOOL: v };
    else if (typeof v === 'number') item[k] = { N: String(v) };
    else if (Array.isArray(v)) item[k] = { SS: v };
    else if (v && typeof v === 'object' && v.$raw) item[k] = v.$raw; // a typed value as is
    else throw new Error(`toItem: unsupported ${k}`);
  }
  return item;
}

// Raises the change marker, as docs/ci-cd.md tells pipelines that write
// items themselves to do after each write (SPEC §3).
export async function raiseMarker(ddb, table) {
  await ddb.send(new UpdateItemCommand({
    TableName: table,
    Key: { path: { S: '#generation' } },
    UpdateExpression: 'ADD generation :one',
    ExpressionAttributeValues: { ':one': { N: '1' } },
  }));
}

// marker: false writes the way a pipeline that forgot the marker does.
export async function putRoute(ddb, table, r, { marker = true } = {}) {
  await ddb.send(new PutItemCommand({ TableName: table, Item: toItem(r) }));
  if (marker) await raiseMarker(ddb, table);
}

export async function deleteRoute(ddb, table, p, { marker = true } = {}) {
  await ddb.send(new DeleteItemCommand({ TableName: table, Key: { path: { S: p } } }));
  if (marker) await raiseMarker(ddb, table);
}

export async function putRoutesBatch(ddb, table, routes) {
  for (let i = 0; i < routes.length; i += 25) {
    let items = routes.slice(i, i + 25).map((r) => ({ PutRequest: { Item: toItem(r) } }));
    while (items.length) {
      const out = await ddb.send(new BatchWriteItemCommand({ RequestItems: { [table]: items } }));
      items = out.UnprocessedItems?.[table] || [];
    }
  }
  await raiseMarker(ddb, table);
}

export async function createBucket(s3, bucket) {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function putPolicy(s3, bucket, key, policy) {
  await s3.send(new PutObjectCommand({
    Bucket: bucket,
    Key: key,
    Body: typeof policy === 'string' ? policy : JSON.stringify(policy, null, 2),
    ContentType: 'application/json',
  }));
}

/* ---- credential endpoints ---- */

const isoIn = (ms) => new Date(Date.now() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/*
 * The ECS container-credentials endpoint: every call hands out a new key
 * pair and session token (registered with the fronts), valid for
 * validForMs, and requires the Authorization token when one is given.
 */
export async function startContainerCredentials({ fronts, authToken = null, validForMs = 6 * 60 * 1000, path: credPath = '/v2/credentials/test' }) {
  const ep = { calls: 0, issued: [], refused: 0 };
  const server = http.createServer((req, res) => {
    if (req.url !== credPath || req.method !== 'GET') {
      res.writeHead(404);
      return res.end();
    }
    if (authToken && req.headers.authorization !== authToken) {
      ep.refused++;
      res.writeHead(401);
      return res.end('{"message":"bad token"}');
    }
    ep.calls++;
    const n = ep.calls;
    const cred = { accessKeyId: `ASIACONTAINER${n}`, secretAccessKey: `container-secret-${n}-${Math.random().toString(36).slice(2)}`, sessionToken: `container-token-${n}` };
    for (const f of fronts) f.keys.set(cred.accessKeyId, cred);
    ep.issued.push(cred.accessKeyId);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      RoleArn: 'arn:aws:iam::123456789012:role/switchyard',
      AccessKeyId: cred.accessKeyId,
      SecretAccessKey: cred.secretAccessKey,
      Token: cred.sessionToken,
      Expiration: isoIn(validForMs),
    }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  ep.url = `http://127.0.0.1:${server.address().port}${credPath}`;
  ep.close = () => new Promise((r) => {
    server.closeAllConnections?.();
    server.close(r);
  });
  return ep;
}

// An IMDSv2 stand-in: a token from PUT /latest/api/token is required for
// every metadata GET (IMDSv1 requests get 401, as with http-tokens=required).
// It also tells the instance's region (placement/region).
export async function startImds({ fronts, role = 'switchyard-role', validForMs = 6 * 60 * 60 * 1000, region = REGION }) {
  const imds = { tokenCalls: 0, credentialCalls: 0, v1Refused: 0 };
  const tokens = new Set();
  const server = http.createServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!(ttl >= 1 && ttl <= 21600)) {
        res.writeHead(400);
        return res.end();
      }
      imds.tokenCalls++;
      const t = `imds-token-${imds.tokenCalls}`;
      tokens.add(t);
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(t);
    }
    if (!tokens.has(req.headers['x-aws-ec2-metadata-token'])) {
      imds.v1Refused++;
      res.writeHead(401);
      return res.end();
    }
    if (req.method === 'GET' && req.url === '/latest/meta-data/placement/region') {
      imds.regionCalls = (imds.regionCalls || 0) + 1;
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(region);
    }
    if (req.method === 'GET' && req.url === '/latest/meta-data/iam/security-credentials/') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(`${role}\n`);
    }
    if (req.method === 'GET' && req.url === `/latest/meta-data/iam/security-credentials/${role}`) {
      imds.credentialCalls++;
      const n = imds.credentialCalls;
      const cred = { accessKeyId: `ASIAIMDS${n}`, secretAccessKey: `imds-secret-${n}`, sessionToken: `imds-token-value-${n}` };
      for (const f of fronts) f.keys.set(cred.accessKeyId, cred);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({
        Code: 'Success',
        LastUpdated: isoIn(0),
        Type: 'AWS-HMAC',
        AccessKeyId: cred.accessKeyId,
        SecretAccessKey: cred.secretAccessKey,
        Token: cred.sessionToken,
        Expiration: isoIn(validForMs),
      }));
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  imds.url = `http://127.0.0.1:${server.address().port}`;
  imds.close = () => new Promise((r) => {
    server.closeAllConnections?.();
    server.close(r);
  });
  return imds;
}

/* ---- switchyard with AWS sources ---- */

// An environment with no AWS settings from the developer's machine leaking in.
export function cleanAwsEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  env.HOME = tempDir('sy-home-');
  env.AWS_EC2_METADATA_DISABLED = 'true';
  env.AWS_REGION = REGION;
  return { ...env, ...extra };
}

/*
 * Starts `switchyard serve --policy POLICY_URI --routes ROUTES_URI` with the
 * given environment; waits for /readyz unless waitReady is false. Same
 * handle shape as harness.startSwitchyard.
 */
export async function startSwitchyardAws({ policyUri, routesUri, env, pollInterval = 0.3, workers = 2, waitReady = true, logLevel = 'info', extraArgs = [], drainTimeout = 3 }) {
  const port = await freePort();
  const adminPort = await freePort();
  const args = [
    'serve', '--policy', policyUri, '--routes', routesUri,
    '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`,
    '--workers', String(workers), '--poll-interval', String(pollInterval),
    '--access-log', 'off', '--log-level', logLevel, '--drain-timeout', String(drainTimeout),
    ...extraArgs,
  ];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.add(proc);
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  const sy = {
    port, adminPort, args, proc, exited,
    stdout: () => out,
    stderr: () => err,
    exitInfo: () => exitInfo,
    async stop() {
      if (exitInfo) return exitInfo;
      proc.kill('SIGTERM');
      let timer;
      const t = new Promise((resolve) => (timer = setTimeout(() => resolve(null), 20000 * SLOW)));
      const r = await Promise.race([exited, t]);
      clearTimeout(timer);
      if (r) return r;
      proc.kill('SIGKILL');
      return { ...(await exited), hung: true };
    },
    async stopClean() {
      const r = await sy.stop();
      const report = sanitizerReport(err);
      if (report) throw new Error(`sanitizer report from switchyard:\n${report}`);
      if (r.code !== 0) throw new Error(`switchyard exited ${JSON.stringify(r)}; stderr tail:\n${err.slice(-3000)}`);
      return r;
    },
  };
  if (waitReady) {
    try {
      await waitForReady(sy, 30000 * SLOW);
    } catch (e) {
      proc.kill('SIGKILL');
      await exited;
      throw e;
    }
  }
  return sy;
}
