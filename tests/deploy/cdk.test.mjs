// cdk.test.mjs: the CDK app in deploy/cdk synthesizes offline (no context
// lookups, no credentials) and what it synthesizes holds the properties the
// chain depends on (docs/deploy-aws.md). cdk-nag's AwsSolutions pack runs
// on the same synthesis: no unsuppressed finding, every suppression with a
// reason. One synthesis is shared by every test of this file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CDK_SAMPLE, REPO, SKIP_NO_CDK, haveCdk, readText, resourcesOf, synthCdk } from './lib.mjs';

const skip = haveCdk() ? false : SKIP_NO_CDK;
const S = () => synthCdk();
const T = (which = 'main') => S().m.assertions.Template.fromJSON(S()[which]);
const Match = () => S().m.assertions.Match;
const one = (template, type) => {
  const rs = resourcesOf(template, type);
  assert.equal(rs.length, 1, `one ${type}`);
  return rs[0][1].Properties;
};
const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

test('synthesizes offline: no missing context, both stacks', { skip }, () => {
  const { assembly, params } = S();
  assert.equal(assembly.manifest.missing, undefined, 'a context lookup would need AWS credentials');
  assert.deepEqual(assembly.stacks.map((s) => s.stackName).sort(), ['Switchyard', 'SwitchyardWaf']);
  assert.equal(assembly.getStackByName('SwitchyardWaf').environment.region, 'us-east-1',
    'a CLOUDFRONT web ACL can only be created in us-east-1');
  assert.equal(assembly.getStackByName('Switchyard').environment.region, params.region);
});

test('cdk-nag AwsSolutions: no unsuppressed finding, every suppression has a reason', { skip }, () => {
  const { assembly } = S();
  const findings = [];
  for (const st of assembly.stacks) {
    for (const [where, entries] of Object.entries(st.manifest.metadata ?? {})) {
      for (const e of entries) {
        if ((e.type === 'aws:cdk:error' || e.type === 'aws:cdk:warning') && /AwsSolutions-|CdkNag/.test(String(e.data)))
          findings.push(`${where}: ${String(e.data).slice(0, 160)}`);
      }
    }
  }
  assert.deepEqual(findings, []);
  let suppressions = 0;
  for (const which of ['main', 'waf']) {
    for (const [id, r] of Object.entries(S()[which].Resources)) {
      for (const s of r.Metadata?.cdk_nag?.rules_to_suppress ?? []) {
        suppressions++;
        assert.ok(typeof s.reason === 'string' && s.reason.length >= 40, `${id} ${s.id}: a reason someone can check`);
      }
    }
  }
  assert.ok(suppressions > 0, 'the suppressions are found where cdk-nag records them');
});

test('VPC: private subnets only, no NAT, an internet gateway attached (VPC origins need it) and not routed', { skip }, () => {
  const t = S().main;
  assert.equal(resourcesOf(t, 'AWS::EC2::NatGateway').length, 0);
  const subnets = resourcesOf(t, 'AWS::EC2::Subnet').map(([, r]) => r.Properties);
  assert.ok(subnets.length >= 2);
  for (const s of subnets) assert.notEqual(s.MapPublicIpOnLaunch, true);
  assert.equal(new Set(subnets.map((s) => s.AvailabilityZone)).size, subnets.length, 'one subnet per AZ');
  assert.equal(resourcesOf(t, 'AWS::EC2::InternetGateway').length, 1);
  const [[igwId]] = resourcesOf(t, 'AWS::EC2::InternetGateway');
  assert.deepEqual(one(t, 'AWS::EC2::VPCGatewayAttachment').InternetGatewayId, { Ref: igwId });
  for (const [, r] of resourcesOf(t, 'AWS::EC2::Route'))
    assert.equal(r.Properties.GatewayId, undefined, 'no route to the internet gateway');
  assert.equal(resourcesOf(t, 'AWS::EC2::FlowLog').length, 1);
});

test('VPC endpoints: execute-api with private DNS off, S3 and DynamoDB gateways, ECR and Logs interfaces', { skip }, () => {
  const eps = resourcesOf(S().main, 'AWS::EC2::VPCEndpoint').map(([, r]) => r.Properties);
  const name = (e) => JSON.stringify(e.ServiceName).match(/com\.amazonaws\.[^"]*?\.?([a-z.-]+)"/)?.[1]
    ?? JSON.stringify(e.ServiceName);
  const svc = (suffix) => eps.filter((e) => JSON.stringify(e.ServiceName).includes(suffix));
  const [api] = svc('execute-api');
  assert.ok(api, 'an execute-api endpoint');
  assert.equal(api.VpcEndpointType, 'Interface');
  assert.equal(api.PrivateDnsEnabled, false, 'private DNS on would capture every *.execute-api name in the VPC');
  for (const s of ['.s3', '.dynamodb']) {
    const [e] = svc(s);
    assert.equal(e?.VpcEndpointType, 'Gateway', `${s} gateway endpoint`);
  }
  for (const s of ['ecr.api', 'ecr.dkr', '.logs']) {
    const [e] = svc(s);
    assert.equal(e?.VpcEndpointType, 'Interface', `${s} interface endpoint`);
    assert.equal(e.PrivateDnsEnabled, true, `${s}: called by its usual name`);
  }
  assert.equal(svc('.sts').length, 0, 'task credentials come from the ECS agent, not STS');
  assert.ok(eps.every((e) => name(e)));
});

test('policy bucket: versioned, private, TLS only, writes only by operations, reads only by router and operations', { skip }, () => {
  const t = S().main;
  const buckets = resourcesOf(t, 'AWS::S3::Bucket');
  const [[bucketId, bucket]] = buckets.filter(([, r]) => r.Properties.VersioningConfiguration);
  assert.equal(bucket.Properties.VersioningConfiguration.Status, 'Enabled');
  assert.deepEqual(bucket.Properties.PublicAccessBlockConfiguration,
    { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
  const [[, pol]] = resourcesOf(t, 'AWS::S3::BucketPolicy').filter(([, r]) => r.Properties.Bucket.Ref === bucketId);
  const st = pol.Properties.PolicyDocument.Statement;
  assert.ok(st.every((s) => s.Effect === 'Deny'), 'the bucket policy only denies');
  const tls = st.find((s) => s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
  assert.deepEqual(list(tls.Action), ['s3:*']);
  const roleArn = (name) => {
    const [[id]] = resourcesOf(t, 'AWS::IAM::Role').filter(([, r]) => r.Properties.RoleName === name);
    return { 'Fn::GetAtt': [id, 'Arn'] };
  };
  const writes = st.find((s) => list(s.Action).includes('s3:PutObject'));
  for (const a of ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion']) assert.ok(list(writes.Action).includes(a));
  assert.deepEqual(writes.Condition, { ArnNotEquals: { 'aws:PrincipalArn': roleArn('switchyard-operations') } });
  const reads = st.find((s) => list(s.Action).includes('s3:GetObject'));
  assert.deepEqual(reads.Condition.ArnNotEquals['aws:PrincipalArn'],
    [roleArn('switchyard-operations'), roleArn('switchyard-task')]);
});

test('routes table: partition key path only, on demand, point-in-time recovery, deletion protection', { skip }, () => {
  const p = one(S().main, 'AWS::DynamoDB::Table');
  assert.deepEqual(p.KeySchema, [{ AttributeName: 'path', KeyType: 'HASH' }]);
  assert.deepEqual(p.AttributeDefinitions, [{ AttributeName: 'path', AttributeType: 'S' }]);
  assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
  assert.equal(p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true);
  assert.equal(p.DeletionProtectionEnabled, true);
});

test('task definition: the router locked down, its command, health check and drain', { skip }, () => {
  const { params, m } = S();
  const td = one(S().main, 'AWS::ECS::TaskDefinition');
  const c = td.ContainerDefinitions.find((x) => x.Name === 'switchyard');
  assert.deepEqual(c.Command, m.params.routerCommand(params));
  assert.equal(c.ReadonlyRootFilesystem, true);
  assert.equal(c.User, '10001:10001');
  assert.deepEqual(c.LinuxParameters.Capabilities.Drop, ['ALL']);
  assert.equal(c.LinuxParameters.InitProcessEnabled, true);
  assert.deepEqual(c.HealthCheck.Command, ['CMD', '/usr/local/bin/switchyard', 'healthcheck', '--admin', '127.0.0.1:9901']);
  assert.ok(c.StopTimeout > params.drainTimeoutSeconds && c.StopTimeout <= 120);
  assert.equal(c.Essential, true);
  assert.equal(c.EntryPoint, undefined, 'the image entrypoint adds serve and the sources');
  assert.equal(td.NetworkMode, 'awsvpc');
  assert.deepEqual(td.RequiresCompatibilities, ['FARGATE']);
});

test('ADOT sidecar: scrapes the admin /metrics, config inline, publishes every metric an alarm uses', { skip }, () => {
  const td = one(S().main, 'AWS::ECS::TaskDefinition');
  const col = td.ContainerDefinitions.find((x) => x.Name === 'adot-collector');
  assert.ok(col, 'a collector container');
  assert.equal(col.Essential, false, 'losing metrics never stops the router');
  assert.equal(col.ReadonlyRootFilesystem, true);
  assert.deepEqual(col.LinuxParameters.Capabilities.Drop, ['ALL']);
  const cfgText = col.Environment.find((e) => e.Name === 'AOT_CONFIG_CONTENT').Value;
  assert.equal(typeof cfgText, 'string', 'the configuration is a literal, not a lookup');
  assert.deepEqual(col.Command, ['--config=env:AOT_CONFIG_CONTENT']);
  const cfg = JSON.parse(cfgText);
  const [sc] = cfg.receivers.prometheus.config.scrape_configs;
  assert.equal(sc.metrics_path, '/metrics');
  assert.deepEqual(sc.static_configs[0].targets, ['127.0.0.1:9901']);
  assert.doesNotMatch(cfgText, /\$(?!\$)/, 'no "$": the collector would expand it as an environment variable');
  const published = new Set(cfg.exporters.awsemf.metric_declarations.flatMap((d) => d.metric_name_selectors)
    .map((s) => s.replace(/^\^/, '')));
  const alarms = resourcesOf(S().main, 'AWS::CloudWatch::Alarm').map(([, r]) => r.Properties);
  const used = new Set();
  for (const a of alarms) {
    const metrics = a.Metrics ? a.Metrics.filter((x) => x.MetricStat).map((x) => x.MetricStat.Metric) : [a];
    for (const x of metrics) if (x.Namespace === 'Switchyard') used.add(x.MetricName);
  }
  assert.ok(used.size >= 8);
  const src = fs.readdirSync(path.join(REPO, 'src'), { recursive: true }).filter((f) => f.endsWith('.c'))
    .map((f) => readText(`src/${f}`)).join('\n');
  for (const name of used) {
    assert.ok(published.has(name), `alarm metric ${name} is published by the collector`);
    assert.ok(src.includes(`"${name}`), `alarm metric ${name} is rendered by the router`);
  }
});

test('service: Fargate in the private subnets, no public IP, circuit breaker, autoscaling', { skip }, () => {
  const t = S().main;
  const svc = one(t, 'AWS::ECS::Service');
  assert.equal(svc.LaunchType, 'FARGATE');
  assert.equal(svc.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp, 'DISABLED');
  assert.deepEqual(svc.DeploymentConfiguration.DeploymentCircuitBreaker, { Enable: true, Rollback: true });
  assert.ok(svc.DeploymentConfiguration.MinimumHealthyPercent >= 100);
  assert.equal(svc.LoadBalancers[0].ContainerPort, 8080);
  const target = one(t, 'AWS::ApplicationAutoScaling::ScalableTarget');
  assert.ok(target.MinCapacity >= 2 && target.MaxCapacity >= target.MinCapacity);
  const pol = one(t, 'AWS::ApplicationAutoScaling::ScalingPolicy');
  assert.equal(pol.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType,
    'ALBRequestCountPerTarget');
});

test('internal ALB: idle timeout below the router keep-alive, strictest desync, invalid headers dropped', { skip }, () => {
  const { params } = S();
  const lb = one(S().main, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  assert.equal(lb.Scheme, 'internal');
  const attr = Object.fromEntries(lb.LoadBalancerAttributes.map((a) => [a.Key, a.Value]));
  assert.ok(Number(attr['idle_timeout.timeout_seconds']) * 1000 < params.clientIdleMs);
  assert.equal(attr['routing.http.desync_mitigation_mode'], 'strictest');
  assert.equal(attr['routing.http.drop_invalid_header_fields.enabled'], 'true');
  assert.equal(attr['access_logs.s3.enabled'], 'true');
  const tg = one(S().main, 'AWS::ElasticLoadBalancingV2::TargetGroup');
  assert.equal(tg.TargetType, 'ip');
  assert.equal(tg.Port, 8080);
  assert.equal(tg.HealthCheckPath, '/readyz');
  assert.equal(tg.HealthCheckPort, '9901');
  const tga = Object.fromEntries(tg.TargetGroupAttributes.map((a) => [a.Key, a.Value]));
  assert.ok(Number(tga['deregistration_delay.timeout_seconds']) >= params.drainTimeoutSeconds);
  assert.equal(tga['load_balancing.algorithm.type'], 'least_outstanding_requests');
  const listener = one(S().main, 'AWS::ElasticLoadBalancingV2::Listener');
  assert.equal(listener.Protocol, 'HTTPS');
  for (const [, sg] of resourcesOf(S().main, 'AWS::EC2::SecurityGroup'))
    for (const r of sg.Properties.SecurityGroupIngress ?? []) assert.notEqual(r.CidrIp, '0.0.0.0/0');
});

test('CloudFront: VPC origin to the ALB over HTTPS, caching off, all viewer headers, the web ACL', { skip }, () => {
  const t = S().main;
  const vo = one(t, 'AWS::CloudFront::VpcOrigin').VpcOriginEndpointConfig;
  const [[albId]] = resourcesOf(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  assert.deepEqual(vo.Arn, { Ref: albId });
  assert.equal(vo.OriginProtocolPolicy, 'https-only');
  const d = one(t, 'AWS::CloudFront::Distribution').DistributionConfig;
  assert.deepEqual(d.Aliases, S().params.domains);
  assert.ok(d.Origins[0].VpcOriginConfig, 'the origin is the VPC origin');
  assert.equal(d.DefaultCacheBehavior.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', 'Managed-CachingDisabled');
  assert.equal(d.DefaultCacheBehavior.OriginRequestPolicyId, '216adef6-5c7f-47e4-b989-5492eafa07d3', 'Managed-AllViewer');
  assert.equal(d.DefaultCacheBehavior.ViewerProtocolPolicy, 'redirect-to-https');
  assert.equal(d.ViewerCertificate.MinimumProtocolVersion, 'TLSv1.2_2021');
  assert.ok(d.WebACLId, 'the web ACL is attached');
});

test('WAF: CLOUDFRONT scope, managed rules, SizeRestrictions_BODY counted so bodies up to max_body_bytes pass', { skip }, () => {
  const acl = one(S().waf, 'AWS::WAFv2::WebACL');
  assert.equal(acl.Scope, 'CLOUDFRONT');
  const groups = acl.Rules.filter((r) => r.Statement.ManagedRuleGroupStatement)
    .map((r) => r.Statement.ManagedRuleGroupStatement);
  assert.deepEqual(groups.map((g) => g.Name).sort(), ['AWSManagedRulesAmazonIpReputationList',
    'AWSManagedRulesCommonRuleSet', 'AWSManagedRulesKnownBadInputsRuleSet']);
  const common = groups.find((g) => g.Name === 'AWSManagedRulesCommonRuleSet');
  assert.ok(S().params.maxBodyBytes > 8192);
  assert.deepEqual(common.RuleActionOverrides, [{ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } }]);
  assert.ok(acl.Rules.some((r) => r.Statement.RateBasedStatement?.AggregateKeyType === 'IP'));
  // With max_body_bytes within the rule's 8 KB, the rule keeps blocking.
  const { m } = S();
  const app = new m.cdk.App();
  const small = new m.waf.SwitchyardWafStack(app, 'Small', {
    env: { account: CDK_SAMPLE.account, region: 'us-east-1' },
    params: m.params.resolveParams({ ...CDK_SAMPLE, maxBodyBytes: 8192 }),
  });
  const rules = m.assertions.Template.fromStack(small).toJSON().Resources;
  const c2 = Object.values(rules).find((r) => r.Type === 'AWS::WAFv2::WebACL').Properties.Rules
    .find((r) => r.Name === 'AWSManagedRulesCommonRuleSet').Statement.ManagedRuleGroupStatement;
  assert.equal(c2.RuleActionOverrides, undefined);
});

test('alarms: each notifies the SNS topic; the topic is encrypted and TLS-only', { skip }, () => {
  const t = S().main;
  const [[topicId]] = resourcesOf(t, 'AWS::SNS::Topic');
  const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm');
  assert.ok(alarms.length >= 15);
  for (const [id, a] of alarms) assert.deepEqual(a.Properties.AlarmActions, [{ Ref: topicId }], id);
  assert.ok(one(t, 'AWS::SNS::Topic').KmsMasterKeyId);
  const names = alarms.map(([, a]) => a.Properties.AlarmName);
  for (const n of ['switchyard-router-5xx-rate', 'switchyard-alb-5xx', 'switchyard-latency-p99',
    'switchyard-upstream-errors-address-refused', 'switchyard-upstream-errors-tls', 'switchyard-config-reload-failing-policy',
    'switchyard-config-reload-failing-routes', 'switchyard-rejected-routes', 'switchyard-not-ready',
    'switchyard-unhealthy-targets', 'switchyard-dns-refused-answers'])
    assert.ok(names.includes(n), `alarm ${n}`);
  T().hasResourceProperties('AWS::CloudWatch::Alarm', {
    AlarmName: 'switchyard-not-ready', TreatMissingData: 'breaching', ComparisonOperator: 'LessThanThreshold',
  });
  void Match;
});

test('parameters are checked before anything is synthesized', { skip }, () => {
  const { m } = S();
  const bad = (over, re) => assert.throws(() => m.params.resolveParams({ ...CDK_SAMPLE, ...over }), re);
  bad({ teams: [{ name: 'orders', rootPaths: ['/orders*'], oidcSubjects: ['repo:a/b:ref:refs/heads/main'] }] }, /root path/);
  bad({ teams: [{ name: 'orders', rootPaths: ['/orders/'], oidcSubjects: ['repo:a/b:ref:refs/heads/main'] }] }, /root path/);
  bad({ teams: [{ name: 'a', rootPaths: ['/x'], oidcSubjects: ['s'] }, { name: 'b', rootPaths: ['/x'], oidcSubjects: ['s'] }] },
    /both/);
  bad({ albIdleTimeoutSeconds: 75 }, /client_idle_ms/);
  bad({ imageUri: 'docker.io/library/switchyard:1' }, /ECR/);
  bad({ cloudFrontCertificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/x' }, /us-east-1/);
  bad({ drainTimeoutSeconds: 200 }, /drainTimeoutSeconds/);
});

test('security groups: each admits only the hop before it', { skip }, () => {
  const t = S().main;
  const sgId = (prefix) => resourcesOf(t, 'AWS::EC2::SecurityGroup').find(([id]) => id.startsWith(prefix))[0];
  const [alb, router, vpce, eps] = ['AlbSg', 'RouterSg', 'ExecuteApiEndpointSg', 'AwsEndpointsSg'].map(sgId);
  const ingress = (group) => resourcesOf(t, 'AWS::EC2::SecurityGroupIngress')
    .map(([, r]) => r.Properties).filter((p) => p.GroupId['Fn::GetAtt'][0] === group)
    .map((p) => `${p.SourceSecurityGroupId['Fn::GetAtt'][0]}:${p.FromPort}-${p.ToPort}`).sort();
  assert.deepEqual(ingress(router), [`${alb}:8080-8080`, `${alb}:9901-9901`], 'the tasks: traffic and health check from the ALB');
  assert.deepEqual(ingress(vpce), [`${router}:443-443`], 'execute-api endpoint: the tasks only');
  assert.deepEqual(ingress(eps), [`${router}:443-443`], 'AWS endpoints: the tasks only');
  const albRules = resourcesOf(t, 'AWS::EC2::SecurityGroup').find(([id]) => id === alb)[1].Properties.SecurityGroupIngress;
  assert.deepEqual(albRules.map((r) => [r.FromPort, r.ToPort]), [[443, 443]]);
  assert.deepEqual(albRules[0].CidrIp, { 'Fn::GetAtt': [resourcesOf(t, 'AWS::EC2::VPC')[0][0], 'CidrBlock'] },
    'until vpcOriginSecurityGroupId is set: the VPC, never the internet');
});
