// ecs.test.mjs: deploy/ecs/*.json. No AWS account is reachable, so the
// documents are checked two ways: a schema check of every field they use
// (types, required fields, Fargate's allowed values) plus the relations
// that make the router behave behind an ALB (stop timeout > drain timeout,
// deregistration delay >= drain timeout, router idle keep-alive > ALB idle
// timeout, health checks on the admin listener the command opens); and,
// where the AWS CLI is installed, the CLI's own parameter validation against
// a local stand-in endpoint. The task definition's command is also run
// through the image's entrypoint to prove switchyard accepts it.
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  BIN, IMAGE_BIN, REPO, SKIP_NO_BIN, execForm, haveBin, lastOption, optionPairs, parseDockerfile,
  pollUntilZero, portOf, readJson, readText, render, run, startEntrypoint, which,
} from './lib.mjs';

const td = readJson('deploy/ecs/task-definition.json');
const svc = readJson('deploy/ecs/service.json');
const tg = readJson('deploy/ecs/target-group.json');
const tgAttrs = readJson('deploy/ecs/target-group-attributes.json');
const lbAttrs = readJson('deploy/ecs/load-balancer-attributes.json');
const scalable = readJson('deploy/ecs/scalable-target.json');
const scaling = readJson('deploy/ecs/scaling-policy.json');
const policy = readJson('deploy/config/policy.json');
const c = td.containerDefinitions?.[0];
const cmd = c?.command ?? [];
const attr = (doc, key) => doc.Attributes.find((a) => a.Key === key)?.Value;

// The defaults switchyard uses when an option or field is absent (SPEC §1,
// §2): the relations below must hold for the effective values.
const DEFAULT_DRAIN_S = 20;
const DEFAULT_CLIENT_IDLE_MS = 75000;
const drainSeconds = () => Number(lastOption(cmd, '--drain-timeout', String(DEFAULT_DRAIN_S)));
const adminAddr = () => lastOption(cmd, '--admin-listen', '127.0.0.1:9901');
const listenAddr = () => lastOption(cmd, '--listen', '0.0.0.0:8080');

/* ---- schema of what we use ---------------------------------------------- */

// RegisterTaskDefinition request members (ECS API reference).
const TASKDEF_KEYS = new Set(['family', 'taskRoleArn', 'executionRoleArn', 'networkMode',
  'containerDefinitions', 'volumes', 'placementConstraints', 'requiresCompatibilities', 'cpu',
  'memory', 'tags', 'pidMode', 'ipcMode', 'proxyConfiguration', 'inferenceAccelerators',
  'ephemeralStorage', 'runtimePlatform', 'enableFaultInjection']);
// ContainerDefinition members used or plausible here; anything else is a typo.
const CONTAINER_KEYS = new Set(['name', 'image', 'repositoryCredentials', 'cpu', 'memory',
  'memoryReservation', 'links', 'portMappings', 'essential', 'restartPolicy', 'entryPoint', 'command',
  'environment', 'environmentFiles', 'mountPoints', 'volumesFrom', 'linuxParameters', 'secrets',
  'dependsOn', 'startTimeout', 'stopTimeout', 'versionConsistency', 'hostname', 'user',
  'workingDirectory', 'disableNetworking', 'privileged', 'readonlyRootFilesystem', 'dnsServers',
  'dnsSearchDomains', 'extraHosts', 'dockerSecurityOptions', 'interactive', 'pseudoTerminal',
  'dockerLabels', 'ulimits', 'logConfiguration', 'healthCheck', 'systemControls',
  'resourceRequirements', 'firelensConfiguration', 'credentialSpecs']);
// Fargate's task sizes: cpu units -> allowed memory (MiB).
const FARGATE_SIZES = {
  256: [512, 1024, 2048],
  512: [1024, 2048, 3072, 4096],
  1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
  2048: Array.from({ length: 13 }, (_, i) => 4096 + i * 1024),
  4096: Array.from({ length: 23 }, (_, i) => 8192 + i * 1024),
};
const int = (v, lo, hi, what) => {
  assert.ok(Number.isInteger(v), `${what} must be an integer (got ${JSON.stringify(v)})`);
  assert.ok(v >= lo && v <= hi, `${what} must be ${lo}-${hi} (got ${v})`);
};
const str = (v, what) => assert.ok(typeof v === 'string' && v.length > 0, `${what} must be a non-empty string`);

test('task definition: only known fields, Fargate with awsvpc and a valid size', () => {
  for (const k of Object.keys(td)) assert.ok(TASKDEF_KEYS.has(k), `unknown task definition field '${k}'`);
  str(td.family, 'family');
  assert.match(td.family, /^[A-Za-z0-9_-]{1,255}$/);
  assert.deepEqual(td.requiresCompatibilities, ['FARGATE']);
  assert.equal(td.networkMode, 'awsvpc', 'Fargate requires awsvpc');
  assert.equal(typeof td.cpu, 'string', 'cpu is a string in the API');
  assert.equal(typeof td.memory, 'string', 'memory is a string in the API');
  const allowed = FARGATE_SIZES[Number(td.cpu)];
  assert.ok(allowed, `cpu ${td.cpu} is not a Fargate size`);
  assert.ok(allowed.includes(Number(td.memory)), `memory ${td.memory} is not allowed with cpu ${td.cpu}`);
  assert.deepEqual(Object.keys(td.runtimePlatform).sort(), ['cpuArchitecture', 'operatingSystemFamily']);
  assert.equal(td.runtimePlatform.operatingSystemFamily, 'LINUX');
  assert.ok(['X86_64', 'ARM64'].includes(td.runtimePlatform.cpuArchitecture));
  assert.match(td.taskRoleArn, /^arn:aws:iam::\$\{AccountId\}:role\/switchyard-task$/);
  assert.match(td.executionRoleArn, /^arn:aws:iam::\$\{AccountId\}:role\/switchyard-execution$/);
  assert.equal(td.containerDefinitions.length, 1, 'one container: the router');
});

test('container: known fields, types, the image entrypoint is kept', () => {
  for (const k of Object.keys(c)) assert.ok(CONTAINER_KEYS.has(k), `unknown container field '${k}'`);
  str(c.name, 'name');
  str(c.image, 'image');
  assert.match(c.image, /^\$\{AccountId\}\.dkr\.ecr\.\$\{Region\}\.amazonaws\.com\/switchyard:\S+$/);
  assert.equal(c.essential, true);
  assert.equal(c.entryPoint, undefined, 'the image ENTRYPOINT adds serve and the env-driven sources');
  assert.ok(Array.isArray(cmd) && cmd.every((a) => typeof a === 'string'), 'command is a string array');
  const keys = optionPairs(cmd).map(([k]) => k);
  assert.ok(!keys.includes('--policy') && !keys.includes('--routes'),
    'sources come from SWITCHYARD_POLICY/SWITCHYARD_ROUTES, not the command');
  assert.ok(!cmd.includes('serve'), 'the entrypoint already says serve');
  assert.equal(c.readonlyRootFilesystem, true);
  assert.ok(c.user && !/^(0|root)(:|$)/.test(c.user), 'runs as non-root');
  const dockerUser = parseDockerfile(readText('deploy/container/Dockerfile')).at(-1).instructions
    .filter((i) => i.op === 'USER').at(-1).args;
  assert.equal(c.user, dockerUser, 'same user as the image');
  assert.equal(c.linuxParameters?.initProcessEnabled, true, 'an init reaps health-check processes');
  assert.deepEqual(c.linuxParameters?.capabilities?.drop, ['ALL']);
});

test('container: workers fit the task size', () => {
  const vcpus = Math.max(1, Number(td.cpu) / 1024);
  const workers = Number(lastOption(cmd, '--workers', 'NaN'));
  // Without --workers switchyard counts the host's CPUs, not the task's.
  assert.ok(Number.isInteger(workers), '--workers is set explicitly');
  assert.ok(workers >= 1 && workers <= vcpus, `--workers ${workers} with ${vcpus} vCPU`);
});

test('container: ports map the listener and the admin listener of the command', () => {
  const pm = c.portMappings;
  for (const p of pm) {
    int(p.containerPort, 1, 65535, 'containerPort');
    assert.equal(p.protocol, 'tcp');
    assert.ok(p.hostPort === undefined || p.hostPort === p.containerPort, 'awsvpc: hostPort = containerPort');
  }
  const ports = pm.map((p) => p.containerPort).sort();
  assert.deepEqual(ports, [portOf(listenAddr()), portOf(adminAddr())].sort());
  assert.match(adminAddr(), /^0\.0\.0\.0:/, 'admin must be reachable by the ALB health check');
});

test('container: stop timeout longer than the drain timeout', () => {
  const drain = drainSeconds();
  assert.ok(Number.isFinite(drain) && drain >= 0, '--drain-timeout parses');
  int(c.stopTimeout, 2, 120, 'stopTimeout (Fargate: at most 120 s)');
  assert.ok(c.stopTimeout > drain, `stopTimeout ${c.stopTimeout} must exceed --drain-timeout ${drain}`);
  // An API Gateway integration runs for at most 29 s; the drain should let
  // such a request finish.
  const upstream = (policy.timeouts?.upstream_response_ms ?? 30000) / 1000;
  assert.ok(drain >= Math.min(upstream, 29), `--drain-timeout ${drain} covers one upstream response`);
});

test('container: health check is switchyard healthcheck on the admin port', () => {
  const hc = c.healthCheck;
  assert.equal(hc.command[0], 'CMD', 'exec form: the image has no need for a shell here');
  assert.deepEqual(hc.command.slice(1), [IMAGE_BIN, 'healthcheck', '--admin', `127.0.0.1:${portOf(adminAddr())}`]);
  int(hc.interval, 5, 300, 'healthCheck.interval');
  int(hc.timeout, 2, 60, 'healthCheck.timeout');
  int(hc.retries, 1, 10, 'healthCheck.retries');
  int(hc.startPeriod, 0, 300, 'healthCheck.startPeriod');
  assert.ok(hc.timeout < hc.interval);
});

test('container: environment names the region and both sources', () => {
  const env = new Map();
  for (const e of c.environment) {
    assert.deepEqual(Object.keys(e).sort(), ['name', 'value']);
    assert.ok(!env.has(e.name), `duplicate environment variable ${e.name}`);
    env.set(e.name, e.value);
  }
  assert.equal(env.get('AWS_REGION'), '${Region}');
  assert.match(env.get('SWITCHYARD_POLICY'), /^s3:\/\/[^/]+\/.+$/);
  assert.match(env.get('SWITCHYARD_ROUTES'), /^dynamodb:\/\/[^/]+$/);
  for (const [k] of env) assert.doesNotMatch(k, /SECRET|ACCESS_KEY|TOKEN/, 'credentials come from the task role');
});

test('container: open files limit and awslogs', () => {
  const nofile = c.ulimits.find((u) => u.name === 'nofile');
  assert.ok(nofile, 'nofile ulimit set');
  int(nofile.softLimit, 1024, 1048576, 'nofile.softLimit');
  int(nofile.hardLimit, nofile.softLimit, 1048576, 'nofile.hardLimit');
  // One client and one upstream socket per in-flight request.
  assert.ok(nofile.softLimit >= 16384, 'room for thousands of concurrent proxied connections');
  const log = c.logConfiguration;
  assert.equal(log.logDriver, 'awslogs');
  for (const k of ['awslogs-group', 'awslogs-region', 'awslogs-stream-prefix']) str(log.options[k], k);
  assert.equal(log.options['awslogs-region'], '${Region}');
  for (const v of Object.values(log.options)) assert.equal(typeof v, 'string', 'log options are strings');
});

test('service: Fargate in private subnets behind the target group', () => {
  assert.equal(svc.launchType, 'FARGATE');
  assert.equal(svc.taskDefinition, td.family);
  assert.equal(svc.networkConfiguration.awsvpcConfiguration.assignPublicIp, 'DISABLED');
  assert.ok(svc.networkConfiguration.awsvpcConfiguration.subnets.length >= 2, 'at least two AZs');
  assert.equal(svc.loadBalancers.length, 1);
  const lb = svc.loadBalancers[0];
  assert.equal(lb.containerName, c.name);
  assert.equal(lb.containerPort, portOf(listenAddr()), 'the ALB sends traffic to the router listener');
  assert.match(lb.targetGroupArn, new RegExp(`:targetgroup/${tg.Name}/`));
  int(svc.desiredCount, scalable.MinCapacity, scalable.MaxCapacity, 'desiredCount');
  int(svc.healthCheckGracePeriodSeconds, 0, 2147483647, 'healthCheckGracePeriodSeconds');
  assert.ok(svc.deploymentConfiguration.minimumHealthyPercent >= 100, 'deploys never shrink capacity');
  assert.equal(svc.deploymentConfiguration.deploymentCircuitBreaker.rollback, true);
  assert.equal(svc.enableExecuteCommand, false);
});

test('target group: ip targets, health check on the admin listener /readyz', () => {
  assert.equal(tg.TargetType, 'ip', 'awsvpc tasks register by IP');
  assert.equal(tg.Protocol, 'HTTP');
  assert.equal(tg.Port, portOf(listenAddr()));
  assert.equal(tg.HealthCheckProtocol, 'HTTP');
  assert.equal(tg.HealthCheckPort, String(portOf(adminAddr())), 'HealthCheckPort is a string');
  assert.equal(tg.HealthCheckPath, '/readyz', '/readyz is 503 until loaded and while draining');
  assert.equal(tg.Matcher.HttpCode, '200');
  int(tg.HealthCheckIntervalSeconds, 5, 300, 'HealthCheckIntervalSeconds');
  int(tg.HealthCheckTimeoutSeconds, 2, 120, 'HealthCheckTimeoutSeconds');
  assert.ok(tg.HealthCheckTimeoutSeconds < tg.HealthCheckIntervalSeconds);
  int(tg.HealthyThresholdCount, 2, 10, 'HealthyThresholdCount');
  int(tg.UnhealthyThresholdCount, 2, 10, 'UnhealthyThresholdCount');
  assert.equal(tgAttrs.TargetGroupArn, svc.loadBalancers[0].targetGroupArn);
});

test('deregistration delay is at least the drain timeout', () => {
  const v = attr(tgAttrs, 'deregistration_delay.timeout_seconds');
  assert.match(v ?? '', /^\d+$/, 'deregistration_delay.timeout_seconds is set (a string)');
  int(Number(v), 0, 3600, 'deregistration delay');
  assert.ok(Number(v) >= drainSeconds(), `deregistration delay ${v} < --drain-timeout ${drainSeconds()}`);
  for (const a of tgAttrs.Attributes) assert.equal(typeof a.Value, 'string', `${a.Key}: values are strings`);
});

test('router idle keep-alive outlives the ALB idle timeout', () => {
  const albIdle = Number(attr(lbAttrs, 'idle_timeout.timeout_seconds'));
  int(albIdle, 1, 4000, 'idle_timeout.timeout_seconds');
  const routerIdleMs = policy.timeouts?.client_idle_ms ?? DEFAULT_CLIENT_IDLE_MS;
  // The ALB must be the side that closes an idle connection; if the router
  // closed first, the ALB could send a request on a dying socket: a 502.
  assert.ok(routerIdleMs > albIdle * 1000,
    `policy timeouts.client_idle_ms ${routerIdleMs} must exceed ALB idle ${albIdle * 1000} ms`);
  for (const a of lbAttrs.Attributes) assert.equal(typeof a.Value, 'string', `${a.Key}: values are strings`);
  assert.equal(attr(lbAttrs, 'routing.http.drop_invalid_header_fields.enabled'), 'true');
});

test('autoscaling: at least two tasks, target tracking on the service', () => {
  int(scalable.MinCapacity, 2, scalable.MaxCapacity, 'MinCapacity');
  assert.equal(scalable.ResourceId, `service/\${ClusterName}/${svc.serviceName}`);
  assert.equal(scaling.ResourceId, scalable.ResourceId);
  assert.equal(scaling.ScalableDimension, 'ecs:service:DesiredCount');
  const cfg = scaling.TargetTrackingScalingPolicyConfiguration;
  assert.ok(cfg.TargetValue > 0);
  assert.match(cfg.PredefinedMetricSpecification.ResourceLabel,
    new RegExp(`^app/[^/]+/[^/]+/targetgroup/${tg.Name}/[^/]+$`));
});

test('policy template: private chain destinations, and switchyard accepts it', (t) => {
  assert.equal(policy.allow_loopback_destinations, false);
  for (const d of policy.destinations) {
    assert.notEqual(d.scheme, 'http', `${d.host}: TLS to the API Gateways`);
    assert.match(d.connect_to, /^vpce-[0-9a-z-]+\.execute-api\.[a-z0-9-]+\.vpce\.amazonaws\.com(:443)?$/);
    assert.match(d.tls_verify_name, /^\*\.execute-api\.[a-z0-9-]+\.amazonaws\.com$/);
    assert.match(d.host_header, /^[a-z0-9]{10}\.execute-api\.[a-z0-9-]+\.amazonaws\.com$/);
    const region = /execute-api\.([a-z0-9-]+)\./;
    assert.equal(region.exec(d.connect_to)[1], region.exec(d.tls_verify_name)[1], 'one region');
    // Bound (issue 10): a team's pipeline can't point its routes at another team's API.
    assert.ok(Array.isArray(d.allowed_paths) && d.allowed_paths.length > 0, `${d.host}: allowed_paths`);
    assert.ok(Array.isArray(d.allowed_auth) && d.allowed_auth.length > 0, `${d.host}: allowed_auth`);
  }
  if (!haveBin()) return t.skip(SKIP_NO_BIN);
  const r = run(BIN, ['check', '--policy', path.join(REPO, 'deploy/config/policy.json'),
    '--routes', path.join(REPO, 'deploy/config/routes.json')]);
  assert.equal(r.status, 0, `switchyard check: ${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stderr, /warning/, 'every destination is bound');
});

test('switchyard accepts the task definition command (through the image entrypoint)', async (t) => {
  if (!haveBin()) return t.skip(SKIP_NO_BIN);
  const sy = await startEntrypoint(cmd, {
    AWS_REGION: 'eu-west-1',
    SWITCHYARD_POLICY: path.join(REPO, 'deploy/config/policy.json'),
    SWITCHYARD_ROUTES: path.join(REPO, 'deploy/config/routes.json'),
  });
  try {
    const hc = c.healthCheck.command.slice(1).map((a) => (a === IMAGE_BIN ? BIN : a.startsWith('127.0.0.1:') ? sy.admin : a));
    const r = await pollUntilZero(hc, 15000);
    assert.equal(r.code, 0, `health check: ${r.err}\nswitchyard: ${sy.output()}`);
  } finally {
    sy.child.kill('SIGTERM');
  }
  const { code } = await sy.exited;
  assert.equal(code, 0, sy.output());
});

/* ---- the AWS CLI's own validation, where it is installed ------------------ */

// Each document is the --cli-input-json of one CLI call.
const CLI_CALLS = [
  ['ecs', 'register-task-definition', 'deploy/ecs/task-definition.json'],
  ['ecs', 'create-service', 'deploy/ecs/service.json'],
  ['elbv2', 'create-target-group', 'deploy/ecs/target-group.json'],
  ['elbv2', 'modify-target-group-attributes', 'deploy/ecs/target-group-attributes.json'],
  ['elbv2', 'modify-load-balancer-attributes', 'deploy/ecs/load-balancer-attributes.json'],
  ['application-autoscaling', 'register-scalable-target', 'deploy/ecs/scalable-target.json'],
  ['application-autoscaling', 'put-scaling-policy', 'deploy/ecs/scaling-policy.json'],
];

test('every deploy/ecs document is the input of one AWS CLI call', () => {
  const files = fs.readdirSync(path.join(REPO, 'deploy/ecs')).filter((f) => f.endsWith('.json'));
  assert.deepEqual(files.map((f) => `deploy/ecs/${f}`).sort(), CLI_CALLS.map((x) => x[2]).sort());
  for (const [, , file] of CLI_CALLS) assert.doesNotThrow(() => JSON.parse(render(readText(file))), file);
});

test('AWS CLI parameter validation accepts every document', async (t) => {
  if (!which('aws')) return t.skip('AWS CLI not installed: the schema checks above stand in for it');
  // The CLI validates parameters before sending; a request that reaches this
  // stand-in endpoint passed validation. It answers an error so nothing
  // pretends to succeed.
  let hits = 0;
  const srv = http.createServer((req, res) => {
    hits++;
    req.resume();
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
    res.end('{"__type":"ValidationException","message":"stand-in"}');
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-deploy-'));
  try {
    for (const [service, op, file] of CLI_CALLS) {
      const rendered = path.join(dir, path.basename(file));
      fs.writeFileSync(rendered, render(readText(file)));
      const before = hits;
      const out = await new Promise((resolve) => {
        const p = spawn('aws', [service, op, '--cli-input-json', `file://${rendered}`,
          '--endpoint-url', `http://127.0.0.1:${srv.address().port}`, '--region', 'eu-west-1'], {
          env: { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x',
            AWS_SESSION_TOKEN: '', AWS_MAX_ATTEMPTS: '1', AWS_CONFIG_FILE: '/dev/null',
            AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_PAGER: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let err = '';
        p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
        p.on('exit', () => resolve(err));
      });
      assert.doesNotMatch(out, /Parameter validation failed|Unknown parameter|Invalid type/, `${file}: ${out}`);
      assert.ok(hits > before, `${file}: the CLI never sent the request: ${out}`);
    }
  } finally {
    srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
