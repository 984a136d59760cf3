// iam.test.mjs: the IAM policies the CDK app (deploy/cdk) synthesizes. Each
// role allows exactly the actions it needs on specific resources: the router
// reads one object and the routes table, the operations role publishes the
// policy object, a team's pipeline touches only items whose partition key is
// one of its root paths (checked by simulating IAM's StringLike) plus the
// #generation marker, and the trust policies admit only ECS tasks of this
// account or the team's CI through OIDC.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SKIP_NO_CDK, haveCdk, resourcesOf, synthCdk } from './lib.mjs';

const skip = haveCdk() ? false : SKIP_NO_CDK;
const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

// Role name → its logical id and the statements of every policy attached to it.
function roles() {
  const t = synthCdk().main;
  const out = {};
  for (const [id, r] of resourcesOf(t, 'AWS::IAM::Role')) {
    if (!r.Properties.RoleName) continue;
    out[r.Properties.RoleName] = { id, trust: r.Properties.AssumeRolePolicyDocument.Statement, statements: [] };
  }
  const byId = Object.fromEntries(Object.values(out).map((r) => [r.id, r]));
  for (const [, p] of resourcesOf(t, 'AWS::IAM::Policy')) {
    for (const ref of p.Properties.Roles) byId[ref.Ref]?.statements.push(...p.Properties.PolicyDocument.Statement);
  }
  for (const r of Object.values(out)) assert.equal(resourcesOf(t, 'AWS::IAM::ManagedPolicy').length, 0);
  return out;
}
const allowed = (role) => [...new Set(role.statements.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action)))].sort();
const ref = (type, pick = () => true) => {
  const [[id]] = resourcesOf(synthCdk().main, type).filter(([, r]) => pick(r));
  return id;
};

test('every role allows exactly what it needs, with no managed policies', { skip }, () => {
  const r = roles();
  const { params } = synthCdk();
  const expected = {
    'switchyard-task': ['dynamodb:GetItem', 'dynamodb:Scan', 'logs:CreateLogStream', 'logs:DescribeLogStreams',
      'logs:PutLogEvents', 's3:GetObject'],
    'switchyard-execution': ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage',
      'ecr:CreateRepository', 'ecr:GetAuthorizationToken', 'ecr:GetDownloadUrlForLayer', 'logs:CreateLogStream',
      'logs:PutLogEvents'],
    'switchyard-operations': ['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket', 's3:ListBucketVersions', 's3:PutObject'],
  };
  for (const team of params.teams)
    expected[`switchyard-pipeline-${team.name}`] = ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'];
  assert.deepEqual(Object.keys(r).sort(), Object.keys(expected).sort());
  for (const [name, actions] of Object.entries(expected)) {
    assert.deepEqual(allowed(r[name]), actions, name);
    for (const s of r[name].statements) {
      for (const a of list(s.Action)) assert.match(a, /^[a-z0-9-]+:[A-Za-z0-9]+$/, `${name}: '${a}' is one exact action`);
      if (list(s.Resource).includes('*'))
        assert.deepEqual(list(s.Action), ['ecr:GetAuthorizationToken'], `${name}: only the ECR login is on "*"`);
    }
  }
});

test('router task role: GetObject on the policy object only, Scan and GetItem on the table only', { skip }, () => {
  const { statements } = roles()['switchyard-task'];
  const { params } = synthCdk();
  const bucket = ref('AWS::S3::Bucket', (r) => r.Properties.VersioningConfiguration);
  const table = ref('AWS::DynamoDB::Table');
  const s3 = statements.find((s) => list(s.Action).includes('s3:GetObject'));
  assert.deepEqual(list(s3.Resource), [{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, `/${params.policyKey}`]] }]);
  const ddb = statements.find((s) => list(s.Action).includes('dynamodb:Scan'));
  assert.deepEqual(list(ddb.Action).sort(), ['dynamodb:GetItem', 'dynamodb:Scan']);
  assert.deepEqual(list(ddb.Resource), [{ 'Fn::GetAtt': [table, 'Arn'] }]);
  for (const s of statements) assert.equal(s.Condition, undefined);
});

test('task and execution roles: trusted by ECS tasks of this account only', { skip }, () => {
  for (const name of ['switchyard-task', 'switchyard-execution']) {
    const [s] = roles()[name].trust;
    assert.deepEqual(s.Principal, { Service: 'ecs-tasks.amazonaws.com' });
    assert.equal(s.Condition.StringEquals['aws:SourceAccount'], synthCdk().params.account);
  }
});

// IAM StringLike: * matches any run of characters (also "/"), ? one.
const stringLike = (pattern, value) =>
  new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
    .test(value);

test('pipelines: LeadingKeys limits a team to its root paths at segment boundaries, and #generation', { skip }, () => {
  const r = roles();
  const { params } = synthCdk();
  const orders = params.teams.find((t) => t.name === 'orders');
  assert.deepEqual(orders.rootPaths, ['/orders'], 'the sample has team orders owning /orders');
  for (const team of params.teams) {
    const { statements, trust } = r[`switchyard-pipeline-${team.name}`];
    const items = statements.find((s) => list(s.Action).includes('dynamodb:PutItem'));
    assert.deepEqual(Object.keys(items.Condition).sort(), ['ForAllValues:StringLike', 'Null']);
    // ForAllValues holds for an empty set; the Null check makes a request
    // without a partition key fail instead of pass.
    assert.deepEqual(items.Condition.Null, { 'dynamodb:LeadingKeys': 'false' });
    const patterns = list(items.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys']);
    assert.deepEqual(patterns.sort(), team.rootPaths.flatMap((p) => [p, `${p}/*`]).sort());
    const ok = (key) => patterns.some((p) => stringLike(p, key));
    for (const root of team.rootPaths) {
      for (const k of [root, `${root}/v2`, `${root}/v2/internal`]) assert.ok(ok(k), `${team.name}: ${k} allowed`);
      // "/orders*" would hand /ordersx and /orders-admin to the orders team.
      for (const k of [`${root}x`, `${root}-admin`, root.slice(0, -1), `/x${root}`, '/', '#generation'])
        assert.ok(!ok(k), `${team.name}: ${k} denied`);
    }
    for (const other of params.teams.filter((t) => t !== team))
      for (const root of other.rootPaths) assert.ok(!ok(root), `${team.name} cannot touch ${root}`);
    // The marker: UpdateItem on the key #generation only.
    const gen = statements.filter((s) => list(s.Action).includes('dynamodb:UpdateItem'));
    assert.equal(gen.length, 1);
    assert.deepEqual(list(gen[0].Action), ['dynamodb:UpdateItem']);
    assert.deepEqual(gen[0].Condition, {
      'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['#generation'] },
      Null: { 'dynamodb:LeadingKeys': 'false' },
    });
    // Trust: the CI's OIDC provider, this audience, these subjects.
    const [t] = trust;
    assert.equal(t.Action, 'sts:AssumeRoleWithWebIdentity');
    assert.deepEqual(t.Principal, { Federated: params.oidcProviderArn });
    const host = params.oidcProviderArn.split('oidc-provider/')[1];
    assert.equal(t.Condition.StringEquals[`${host}:aud`], params.oidcAudience);
    assert.deepEqual(list(t.Condition.StringLike[`${host}:sub`]), team.oidcSubjects);
    for (const s of team.oidcSubjects) assert.doesNotMatch(s, /^\*|^repo:\*/, 'a subject names a repository');
  }
});

test('operations role: the policy object, and listing only its own key', { skip }, () => {
  const { statements } = roles()['switchyard-operations'];
  const list2 = statements.find((s) => list(s.Action).includes('s3:ListBucket'));
  assert.deepEqual(list2.Condition, { StringEquals: { 's3:prefix': synthCdk().params.policyKey } });
  const put = statements.find((s) => list(s.Action).includes('s3:PutObject'));
  assert.equal(list(put.Resource).length, 1);
});
