// iam.test.mjs: deploy/iam/*.json. Each document must parse, use policy
// language 2012-10-17, and allow exactly the actions its role needs on
// specific resources: the router reads one object and scans one table, the
// operations role writes the policy object, a team's pipeline touches only
// items whose partition key is one of its root paths, and the bucket accepts
// only TLS and only operations' writes. Placeholders must be documented and
// render to well-formed ARNs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, SAMPLE, placeholders, readText, render } from './lib.mjs';

const DIR = 'deploy/iam';
// Exactly what each document may allow. A new document must be added here,
// with its reason, or the test fails.
const EXPECTED_ALLOW = {
  // Read the policy object; read the routes table's change marker each poll,
  // Scan it when the marker moved or at resync (SPEC §4).
  'router-task-role-policy.json': ['dynamodb:GetItem', 'dynamodb:Scan', 's3:GetObject'],
  'router-task-role-trust.json': ['sts:AssumeRole'],
  // Pull the image and write logs (ECS does this for the task, not the router).
  'execution-role-policy.json': ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage',
    'ecr:GetAuthorizationToken', 'ecr:GetDownloadUrlForLayer', 'logs:CreateLogStream',
    'logs:PutLogEvents'],
  'operations-role-policy.json': ['s3:PutObject'],
  // Their own root paths; and raising the change marker (SPEC §3).
  'pipeline-team-policy.json': ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem',
    'dynamodb:UpdateItem'],
  // A bucket policy that only denies: it grants nothing.
  's3-bucket-policy.json': [],
};
// The one action AWS offers only on "*": ECR's registry login.
const STAR_RESOURCE_OK = new Set(['ecr:GetAuthorizationToken']);

const files = fs.readdirSync(path.join(REPO, DIR)).filter((f) => f.endsWith('.json')).sort();
const doc = (f) => JSON.parse(readText(`${DIR}/${f}`));
const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const allows = (d) => d.Statement.filter((s) => s.Effect === 'Allow');

test('every IAM document is accounted for', () => {
  assert.deepEqual(files, Object.keys(EXPECTED_ALLOW).sort());
});

for (const f of Object.keys(EXPECTED_ALLOW)) {
  test(`${f}: parses, 2012-10-17, allows exactly ${EXPECTED_ALLOW[f].join(' ') || 'nothing'}`, () => {
    const d = doc(f);
    assert.equal(d.Version, '2012-10-17');
    assert.ok(Array.isArray(d.Statement) && d.Statement.length > 0);
    const sids = d.Statement.map((s) => s.Sid);
    assert.equal(new Set(sids).size, sids.length, 'Sids are unique');
    for (const s of d.Statement) {
      assert.ok(['Allow', 'Deny'].includes(s.Effect), `Effect ${s.Effect}`);
      assert.match(s.Sid ?? '', /^[A-Za-z0-9]+$/, 'every statement has an alphanumeric Sid');
      for (const k of ['NotAction', 'NotResource', 'NotPrincipal'])
        assert.equal(s[k], undefined, `${k} inverts a statement; say what is meant instead`);
    }
    const actions = allows(d).flatMap((s) => list(s.Action));
    for (const a of actions) {
      assert.match(a, /^[a-z0-9-]+:[A-Za-z0-9]+$/, `allowed action '${a}' must be one exact action`);
    }
    assert.deepEqual([...new Set(actions)].sort(), EXPECTED_ALLOW[f]);
    assert.equal(actions.length, new Set(actions).size, 'no action allowed twice');
  });
}

test('allowed resources are specific ARNs of the action\'s service', () => {
  for (const f of files) {
    for (const s of allows(doc(f))) {
      if (s.Principal) continue; // a trust policy names principals, not resources
      const resources = list(s.Resource);
      assert.ok(resources.length > 0, `${f} ${s.Sid}: Resource required`);
      for (const a of list(s.Action)) {
        const service = a.split(':')[0];
        for (const r of resources) {
          if (r === '*') {
            assert.ok(STAR_RESOURCE_OK.has(a), `${f} ${s.Sid}: ${a} on "*"`);
            continue;
          }
          assert.ok(r.startsWith(`arn:aws:${service}:`), `${f}: ${a} on ${r}`);
          const rendered = render(r);
          assert.doesNotMatch(rendered.replace(/:log-stream:\*$/, ''), /\*/, `${f}: wildcard in ${r}`);
        }
      }
    }
  }
});

test('router task role: GetObject on one object, Scan on one table, GetItem of its marker only', () => {
  const d = doc('router-task-role-policy.json');
  const byAction = Object.fromEntries(allows(d).flatMap((s) => list(s.Action).map((a) => [a, list(s.Resource)])));
  assert.deepEqual(byAction['s3:GetObject'], ['arn:aws:s3:::${PolicyBucket}/${PolicyKey}']);
  assert.deepEqual(byAction['dynamodb:Scan'], ['arn:aws:dynamodb:${Region}:${AccountId}:table/${RoutesTable}']);
  assert.deepEqual(byAction['dynamodb:GetItem'], ['arn:aws:dynamodb:${Region}:${AccountId}:table/${RoutesTable}']);
  for (const s of d.Statement) {
    if (list(s.Action).includes('dynamodb:GetItem')) {
      const req = (action, key) => ({ action, key, attributes: ['generation'] });
      assert.ok(simulate([s], req('dynamodb:GetItem', '#generation')), 'GetItem of the marker');
      assert.ok(!simulate([s], req('dynamodb:GetItem', '/orders')), 'GetItem of a route is not needed');
    } else {
      assert.equal(s.Condition, undefined);
    }
  }
});

test('operations role: PutObject on the policy object only', () => {
  const [s] = allows(doc('operations-role-policy.json'));
  assert.deepEqual(list(s.Resource), ['arn:aws:s3:::${PolicyBucket}/${PolicyKey}']);
});

test('task role trust: only ECS tasks of this account', () => {
  const [s] = doc('router-task-role-trust.json').Statement;
  assert.deepEqual(s.Principal, { Service: 'ecs-tasks.amazonaws.com' });
  assert.equal(s.Condition.StringEquals['aws:SourceAccount'], '${AccountId}');
});

// IAM StringLike: * matches any run of characters (also "/"), ? one.
const stringLike = (pattern, value) =>
  new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
    .test(value);

test('pipeline: LeadingKeys limits a team to its root paths at segment boundaries', () => {
  const [s] = allows(doc('pipeline-team-policy.json'));
  assert.deepEqual(list(s.Resource), ['arn:aws:dynamodb:${Region}:${AccountId}:table/${RoutesTable}']);
  assert.deepEqual(Object.keys(s.Condition).sort(), ['ForAllValues:StringLike', 'Null']);
  // ForAllValues is true for an empty set; the Null check makes a request
  // without a partition key fail instead of pass.
  assert.deepEqual(s.Condition.Null, { 'dynamodb:LeadingKeys': 'false' });
  const patterns = list(s.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys']);
  for (const p of patterns) {
    assert.match(p, /^\$\{TeamRootPath\}(\/\*)?$/, `pattern ${p}: the root itself or root + "/*"`);
  }
  const rendered = patterns.map((p) => render(p, { ...SAMPLE, TeamRootPath: '/orders' }));
  const allowed = (key) => rendered.some((p) => stringLike(p, key));
  for (const k of ['/orders', '/orders/v2', '/orders/v2/internal']) assert.ok(allowed(k), `${k} allowed`);
  // "/orders*" would hand /ordersx and /orders-admin to the orders team.
  for (const k of ['/ordersx', '/orders-admin', '/users', '/', '/order', '/x/orders'])
    assert.ok(!allowed(k), `${k} denied`);
});

/*
 * A small evaluator for the condition operators these documents use, on
 * one DynamoDB request {action, key, attributes, returnValues}: enough to
 * check what a statement lets through, the way the IAM policy simulator
 * would. Unknown operators fail the test rather than pass silently.
 */
function simulate(statements, reqIn, vars = SAMPLE) {
  const req = { attributes: [], returnValues: undefined, ...reqIn };
  const values = { 'dynamodb:LeadingKeys': [req.key], 'dynamodb:Attributes': req.attributes,
    'dynamodb:ReturnValues': req.returnValues === undefined ? undefined : [req.returnValues] };
  const ok = (s) => {
    if (s.Effect !== 'Allow' || !list(s.Action).includes(req.action)) return false;
    for (const [op, body] of Object.entries(s.Condition || {})) {
      for (const [key, want] of Object.entries(body)) {
        const have = values[key];
        const patterns = list(want).map((p) => render(p, vars));
        if (op === 'Null') {
          if ((have === undefined) !== (want === 'true')) return false;
        } else if (op === 'ForAllValues:StringLike') {
          if (have && !have.every((v) => patterns.some((p) => stringLike(p, v)))) return false;
        } else if (op === 'ForAllValues:StringEquals') {
          if (have && !have.every((v) => patterns.includes(v))) return false;
        } else if (op === 'StringEqualsIfExists') {
          if (have && !have.some((v) => patterns.includes(v))) return false;
        } else {
          throw new Error(`simulate: operator ${op} not modelled`);
        }
      }
    }
    return true;
  };
  return statements.some(ok);
}

test('pipeline: raises the change marker and may do nothing else to it', () => {
  const d = doc('pipeline-team-policy.json');
  const st = d.Statement;
  const vars = { ...SAMPLE, TeamRootPath: '/orders' };
  const can = (r) => simulate(st, r, vars);
  // What `switchyard routes put` and the documented update-item send.
  assert.ok(can({ action: 'dynamodb:UpdateItem', key: '#generation', attributes: ['generation'] }));
  assert.ok(can({ action: 'dynamodb:UpdateItem', key: '#generation', attributes: ['generation'], returnValues: 'UPDATED_NEW' }));
  // Nothing else on the marker item...
  for (const action of ['dynamodb:PutItem', 'dynamodb:DeleteItem']) {
    assert.ok(!can({ action, key: '#generation', attributes: ['generation'] }), `${action} on the marker`);
  }
  assert.ok(!can({ action: 'dynamodb:UpdateItem', key: '#generation', attributes: ['target'] }), 'another attribute');
  assert.ok(!can({ action: 'dynamodb:UpdateItem', key: '#generation', attributes: ['generation'], returnValues: 'ALL_OLD' }));
  // ...and UpdateItem on no other item: not a route of the team's, not another team's.
  for (const key of ['/orders', '/users', '#other']) {
    assert.ok(!can({ action: 'dynamodb:UpdateItem', key, attributes: ['generation'] }), `UpdateItem on ${key}`);
  }
  // The team's own writes still work, and only on its paths.
  assert.ok(can({ action: 'dynamodb:PutItem', key: '/orders/v2' }));
  assert.ok(!can({ action: 'dynamodb:PutItem', key: '/users' }));
});

test('bucket policy: TLS only, and only operations writes', () => {
  const d = doc('s3-bucket-policy.json');
  for (const s of d.Statement) assert.equal(s.Effect, 'Deny');
  const tls = d.Statement.find((s) => s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
  assert.ok(tls, 'a Deny on aws:SecureTransport false');
  assert.equal(tls.Principal, '*');
  assert.deepEqual(list(tls.Action), ['s3:*'], 'every S3 action: a deny may be broad');
  assert.deepEqual(list(tls.Resource).sort(),
    ['arn:aws:s3:::${PolicyBucket}', 'arn:aws:s3:::${PolicyBucket}/*']);
  const writes = d.Statement.find((s) => list(s.Action).includes('s3:PutObject'));
  assert.ok(writes, 'a Deny on writes');
  assert.equal(writes.Principal, '*');
  for (const a of ['s3:PutObject', 's3:DeleteObject']) assert.ok(list(writes.Action).includes(a), a);
  assert.deepEqual(list(writes.Resource), ['arn:aws:s3:::${PolicyBucket}/*']);
  assert.deepEqual(writes.Condition, {
    ArnNotEquals: { 'aws:PrincipalArn': 'arn:aws:iam::${AccountId}:role/switchyard-operations' },
  });
});

test('placeholders are documented and render to well-formed ARNs', () => {
  const readme = readText('deploy/README.md');
  const documented = new Set([...readme.matchAll(/`\$\{([A-Za-z0-9]+)\}`/g)].map((m) => m[1]));
  const deployFiles = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(path.join(REPO, d), { withFileTypes: true })) {
      const rel = `${d}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.json')) deployFiles.push(rel);
    }
  };
  walk('deploy');
  const used = new Set(deployFiles.flatMap((f) => [...placeholders(readText(f))]));
  for (const p of used) assert.ok(documented.has(p), `\${${p}} is used but not documented in deploy/README.md`);
  for (const p of documented) assert.ok(used.has(p), `\${${p}} is documented but unused`);
  const ARN = /^arn:aws:(s3:::[a-z0-9.-]{3,63}(\/.+)?|dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]{3,255}|iam::\d{12}:role\/[\w+=,.@-]+|ecr:[a-z0-9-]+:\d{12}:repository\/[a-z0-9/_.-]+|logs:[a-z0-9-]+:\d{12}:log-group:[^:]+(:log-stream:.*)?|ecs:[a-z0-9-]+:\d{12}:.*|elasticloadbalancing:[a-z0-9-]+:\d{12}:(targetgroup|loadbalancer)\/.+)$/;
  for (const f of deployFiles) {
    const text = render(readText(f));
    for (const m of text.matchAll(/"(arn:[^"]+)"/g)) assert.match(m[1], ARN, `${f}: ${m[1]}`);
    assert.doesNotMatch(text, /\$\{/, `${f}: a placeholder without a sample value`);
  }
});
