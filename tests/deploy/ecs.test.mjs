// ecs.test.mjs: the ECS service, task definition, target group and ALB the
// CDK app (deploy/cdk) synthesizes, checked against the router and the
// image: Fargate's allowed task sizes, the relations that make the router
// behave behind an ALB (stop timeout > drain timeout, deregistration delay
// >= drain timeout, the policy's idle keep-alive > ALB idle timeout, health
// checks on the admin listener the command opens), the image's user; and
// the synthesized command is run through the image's entrypoint to prove
// switchyard accepts it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import {
  BIN, IMAGE_BIN, REPO, SKIP_NO_BIN, SKIP_NO_CDK, haveBin, haveCdk, lastOption, parseDockerfile,
  pollUntilZero, portOf, readJson, readText, resourcesOf, run, startEntrypoint, synthCdk,
} from './lib.mjs';

const skip = haveCdk() ? false : SKIP_NO_CDK;
const policy = readJson('deploy/config/policy.json');
const props = (type) => resourcesOf(synthCdk().main, type)[0][1].Properties;
const td = () => props('AWS::ECS::TaskDefinition');
const c = () => td().ContainerDefinitions.find((x) => x.Name === 'switchyard');
const cmd = () => c().Command;
const attrs = (list) => Object.fromEntries(list.map((a) => [a.Key, a.Value]));

// The defaults switchyard uses when an option or field is absent.
const DEFAULT_DRAIN_S = 20;
const DEFAULT_CLIENT_IDLE_MS = 75000;
const drainSeconds = () => Number(lastOption(cmd(), '--drain-timeout', String(DEFAULT_DRAIN_S)));
const adminAddr = () => lastOption(cmd(), '--admin-listen', '127.0.0.1:9901');
const listenAddr = () => lastOption(cmd(), '--listen', '0.0.0.0:8080');

// Fargate's task sizes: cpu units -> allowed memory (MiB).
const FARGATE_SIZES = {
  256: [512, 1024, 2048],
  512: [1024, 2048, 3072, 4096],
  1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
  2048: Array.from({ length: 13 }, (_, i) => 4096 + i * 1024),
  4096: Array.from({ length: 23 }, (_, i) => 8192 + i * 1024),
};

test('task definition: Fargate size, workers fit the task', { skip }, () => {
  const allowed = FARGATE_SIZES[Number(td().Cpu)];
  assert.ok(allowed, `cpu ${td().Cpu} is not a Fargate size`);
  assert.ok(allowed.includes(Number(td().Memory)), `memory ${td().Memory} is not allowed with cpu ${td().Cpu}`);
  const vcpus = Math.max(1, Number(td().Cpu) / 1024);
  const workers = Number(lastOption(cmd(), '--workers', 'NaN'));
  // Without --workers switchyard counts the host's CPUs, not the task's.
  assert.ok(Number.isInteger(workers) && workers >= 1 && workers <= vcpus, `--workers ${workers} with ${vcpus} vCPU`);
});

test('container: same user as the image, ports of the command, sources from the environment', { skip }, () => {
  const dockerUser = parseDockerfile(readText('deploy/container/Dockerfile')).at(-1).instructions
    .filter((i) => i.op === 'USER').at(-1).args;
  assert.equal(c().User, dockerUser, 'same user as the image');
  assert.deepEqual(c().PortMappings.map((p) => p.ContainerPort).sort(), [portOf(listenAddr()), portOf(adminAddr())].sort());
  assert.match(adminAddr(), /^0\.0\.0\.0:/, 'admin must be reachable by the ALB health check');
  const env = Object.fromEntries(c().Environment.map((e) => [e.Name, e.Value]));
  assert.equal(env.AWS_REGION, synthCdk().params.region);
  assert.ok(env.SWITCHYARD_POLICY && env.SWITCHYARD_ROUTES);
  for (const k of Object.keys(env)) assert.doesNotMatch(k, /SECRET|ACCESS_KEY|TOKEN/, 'credentials come from the task role');
  assert.ok(!cmd().includes('serve') && !cmd().includes('--policy'), 'the entrypoint says serve and names the sources');
  const nofile = c().Ulimits.find((u) => u.Name === 'nofile');
  assert.ok(nofile.SoftLimit >= 16384, 'room for thousands of concurrent proxied connections');
  assert.equal(c().LogConfiguration.LogDriver, 'awslogs');
  assert.equal(c().LogConfiguration.Options.mode, 'non-blocking');
});

test('container: stop timeout longer than the drain timeout, the drain covers one upstream response', { skip }, () => {
  const drain = drainSeconds();
  assert.ok(c().StopTimeout > drain && c().StopTimeout <= 120);
  const upstream = (policy.timeouts?.upstream_response_ms ?? 30000) / 1000;
  assert.ok(drain >= Math.min(upstream, 29), `--drain-timeout ${drain} covers one upstream response`);
});

test('target group: health check on the admin listener the command opens; deregistration >= drain', { skip }, () => {
  const tg = props('AWS::ElasticLoadBalancingV2::TargetGroup');
  assert.equal(tg.Port, portOf(listenAddr()));
  assert.equal(tg.HealthCheckPort, String(portOf(adminAddr())));
  assert.equal(tg.HealthCheckPath, '/readyz');
  assert.ok(tg.HealthCheckTimeoutSeconds < tg.HealthCheckIntervalSeconds);
  const v = Number(attrs(tg.TargetGroupAttributes)['deregistration_delay.timeout_seconds']);
  assert.ok(v >= drainSeconds(), `deregistration delay ${v} < --drain-timeout ${drainSeconds()}`);
});

test("router idle keep-alive (deploy/config/policy.json) outlives the ALB idle timeout", { skip }, () => {
  const lb = props('AWS::ElasticLoadBalancingV2::LoadBalancer');
  const albIdle = Number(attrs(lb.LoadBalancerAttributes)['idle_timeout.timeout_seconds']);
  const routerIdleMs = policy.timeouts?.client_idle_ms ?? DEFAULT_CLIENT_IDLE_MS;
  // The ALB must be the side that closes an idle connection; if the router
  // closed first, the ALB could send a request on a dying socket: a 502.
  assert.ok(routerIdleMs > albIdle * 1000, `policy timeouts.client_idle_ms ${routerIdleMs} must exceed ALB idle ${albIdle * 1000} ms`);
  assert.equal(synthCdk().params.clientIdleMs, routerIdleMs, 'the CDK parameter clientIdleMs is the policy\'s value');
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

test('switchyard accepts the synthesized command (through the image entrypoint)', { skip }, async (t) => {
  if (!haveBin()) return t.skip(SKIP_NO_BIN);
  const sy = await startEntrypoint(cmd(), {
    AWS_REGION: 'eu-west-1',
    SWITCHYARD_POLICY: path.join(REPO, 'deploy/config/policy.json'),
    SWITCHYARD_ROUTES: path.join(REPO, 'deploy/config/routes.json'),
  });
  try {
    const hc = c().HealthCheck.Command.slice(1).map((a) => (a === IMAGE_BIN ? BIN : a.startsWith('127.0.0.1:') ? sy.admin : a));
    const r = await pollUntilZero(hc, 15000);
    assert.equal(r.code, 0, `health check: ${r.err}\nswitchyard: ${sy.output()}`);
  } finally {
    sy.child.kill('SIGTERM');
  }
  const { code } = await sy.exited;
  assert.equal(code, 0, sy.output());
});
