// params.ts: every value an operator sets for a deployment, their defaults,
// and the checks that keep them consistent with each other and with the
// router's own limits. Nothing here looks anything up in AWS: synthesis is
// offline, so the account, region and Availability Zones are parameters.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Team {
  /** Short name: the pipeline role is `switchyard-pipeline-NAME`. */
  readonly name: string;
  /** Root paths the team owns in the routes table, e.g. `/orders` (its sub-paths come with it). */
  readonly rootPaths: string[];
  /** OIDC subjects allowed to assume the role, e.g. `repo:acme/orders:ref:refs/heads/main`. */
  readonly oidcSubjects: string[];
}

export interface SwitchyardParams {
  readonly account: string;
  readonly region: string;
  /** The VPC's Availability Zones (given, not looked up). Default: REGION + a, b, c. */
  readonly availabilityZones: string[];
  readonly vpcCidr: string;
  /** Client-facing names: CloudFront aliases and the policy's `listen_domains`. */
  readonly domains: string[];
  /** ACM certificate in us-east-1 covering `domains` (CloudFront). */
  readonly cloudFrontCertificateArn: string;
  /** ACM certificate in `region` covering `originDomain` (the ALB's HTTPS listener). */
  readonly albCertificateArn: string;
  /** The name CloudFront verifies the ALB's certificate against. Default: domains[0]. */
  readonly originDomain: string;
  /** The router image, in ECR of this account and region (tasks have no internet access). */
  readonly imageUri: string;
  /** The ADOT collector image (ECR Public, pulled through this account's ECR pull-through cache). */
  readonly collectorImageTag: string;
  readonly policyKey: string;
  readonly routesTableName: string;
  readonly clusterName: string;
  readonly serviceName: string;
  /** The policy's `max_body_bytes`: WAF must let bodies this large through. */
  readonly maxBodyBytes: number;
  /** `--drain-timeout`, seconds. */
  readonly drainTimeoutSeconds: number;
  /** `--poll-interval`, seconds. */
  readonly pollIntervalSeconds: number;
  /** ALB idle timeout, seconds: must stay below the policy's `timeouts.client_idle_ms`. */
  readonly albIdleTimeoutSeconds: number;
  /** The policy's `timeouts.client_idle_ms` (default 75000), checked against the ALB idle timeout. */
  readonly clientIdleMs: number;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly workers: number;
  readonly minTasks: number;
  readonly maxTasks: number;
  readonly requestsPerTargetPerMinute: number;
  readonly teams: Team[];
  /** IAM OIDC provider of the CI system (GitHub Actions by default). */
  readonly oidcProviderArn: string;
  readonly oidcAudience: string;
  /** Who may assume `switchyard-operations` (default: principals of this account allowed to). */
  readonly operationsPrincipalArns: string[];
  /** Once CloudFront has created `CloudFront-VPCOrigins-Service-SG`, its id: the ALB then admits only it. */
  readonly vpcOriginSecurityGroupId?: string;
  /** Alarm notifications by e-mail (optional; subscribe anything else to the topic). */
  readonly alarmEmail?: string;
  /** Latency alarm: ALB TargetResponseTime p99, seconds. */
  readonly latencyP99Seconds: number;
  /** WAF rate limit per client IP, requests per 5 minutes. */
  readonly wafRateLimitPer5Min: number;
}

export const ROUTER_USER = '10001:10001';
export const LISTEN_PORT = 8080;
export const ADMIN_PORT = 9901;
export const NOFILE = 65536;

export function defaults(account: string, region: string): SwitchyardParams {
  return {
    account,
    region,
    availabilityZones: ['a', 'b', 'c'].map((z) => `${region}${z}`),
    vpcCidr: '10.40.0.0/16',
    domains: ['api.example.com'],
    cloudFrontCertificateArn: `arn:aws:acm:us-east-1:${account}:certificate/00000000-0000-0000-0000-000000000000`,
    albCertificateArn: `arn:aws:acm:${region}:${account}:certificate/00000000-0000-0000-0000-000000000001`,
    originDomain: 'api.example.com',
    imageUri: `${account}.dkr.ecr.${region}.amazonaws.com/switchyard:0.1.0`,
    collectorImageTag: 'v0.43.3',
    policyKey: 'switchyard/policy.json',
    routesTableName: 'switchyard-routes',
    clusterName: 'edge',
    serviceName: 'switchyard',
    maxBodyBytes: 10485760,
    drainTimeoutSeconds: 30,
    pollIntervalSeconds: 10,
    albIdleTimeoutSeconds: 60,
    clientIdleMs: 75000,
    cpu: 2048,
    memoryMiB: 4096,
    workers: 2,
    minTasks: 3,
    maxTasks: 30,
    requestsPerTargetPerMinute: 3000,
    teams: [
      { name: 'orders', rootPaths: ['/orders'], oidcSubjects: ['repo:acme/orders:ref:refs/heads/main'] },
      { name: 'users', rootPaths: ['/users', '/accounts'], oidcSubjects: ['repo:acme/users:environment:prod'] },
    ],
    oidcProviderArn: `arn:aws:iam::${account}:oidc-provider/token.actions.githubusercontent.com`,
    oidcAudience: 'sts.amazonaws.com',
    operationsPrincipalArns: [`arn:aws:iam::${account}:root`],
    latencyP99Seconds: 2,
    wafRateLimitPer5Min: 2000,
  };
}

/** Merges overrides over the defaults and checks the result; throws with a message naming the parameter. */
export function resolveParams(over: Partial<SwitchyardParams> & { account: string; region: string }): SwitchyardParams {
  const d = defaults(over.account, over.region);
  const domains = over.domains ?? d.domains;
  const p: SwitchyardParams = {
    ...d,
    ...over,
    originDomain: over.originDomain ?? domains[0],
    availabilityZones: over.availabilityZones ?? d.availabilityZones,
  };
  check(p);
  return p;
}

function fail(msg: string): never {
  throw new Error(`switchyard CDK parameters: ${msg}`);
}

export function check(p: SwitchyardParams): void {
  if (!/^\d{12}$/.test(p.account)) fail(`account '${p.account}' must be a 12-digit AWS account id`);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(p.region)) fail(`region '${p.region}' is not a region name`);
  if (p.availabilityZones.length < 2) fail('availabilityZones: at least two, for an ALB and a spread service');
  for (const az of p.availabilityZones)
    if (!az.startsWith(p.region)) fail(`availability zone '${az}' is not in ${p.region}`);
  if (p.domains.length === 0) fail('domains: at least one client-facing name');
  if (!/^arn:aws:acm:us-east-1:/.test(p.cloudFrontCertificateArn))
    fail('cloudFrontCertificateArn must be an ACM certificate in us-east-1 (CloudFront uses only those)');
  if (!p.albCertificateArn.startsWith(`arn:aws:acm:${p.region}:`))
    fail(`albCertificateArn must be an ACM certificate in ${p.region}`);
  const ecr = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\/([a-z0-9._/-]+)(:[\w.-]+|@sha256:[0-9a-f]{64})$/.exec(p.imageUri);
  if (!ecr || ecr[1] !== p.account || ecr[2] !== p.region)
    fail(`imageUri '${p.imageUri}' must be in ECR of ${p.account} in ${p.region}: the tasks reach only this region's ECR endpoints`);
  if (!Number.isInteger(p.maxBodyBytes) || p.maxBodyBytes <= 0) fail('maxBodyBytes must be a positive integer');
  if (!Number.isInteger(p.drainTimeoutSeconds) || p.drainTimeoutSeconds < 0 || p.drainTimeoutSeconds > 105)
    fail('drainTimeoutSeconds must be 0..105 (Fargate stops a container at most 120 s after SIGTERM)');
  if (p.albIdleTimeoutSeconds * 1000 >= p.clientIdleMs)
    fail(`albIdleTimeoutSeconds ${p.albIdleTimeoutSeconds} must be below the policy's client_idle_ms ${p.clientIdleMs} / 1000: the ALB must close idle connections first`);
  if (p.workers < 1 || p.workers > Math.max(1, p.cpu / 1024)) fail(`workers ${p.workers} does not fit ${p.cpu / 1024} vCPU`);
  if (p.minTasks < 2 || p.minTasks > p.maxTasks) fail('minTasks must be at least 2 and at most maxTasks');
  const names = new Set<string>();
  const roots = new Map<string, string>();
  for (const t of p.teams) {
    if (!/^[a-z0-9-]{1,40}$/.test(t.name)) fail(`team name '${t.name}': lower-case letters, digits and '-'`);
    if (names.has(t.name)) fail(`team '${t.name}' given twice`);
    names.add(t.name);
    if (t.rootPaths.length === 0) fail(`team '${t.name}' has no root paths`);
    if (t.oidcSubjects.length === 0) fail(`team '${t.name}' has no OIDC subjects`);
    for (const r of t.rootPaths) {
      // IAM's StringLike treats * and ? as wildcards: a root holding one
      // would hand the team other teams' paths.
      if (!/^\/[A-Za-z0-9._~%!$&'()+,;=:@-]+(\/[A-Za-z0-9._~%!$&'()+,;=:@-]+)*$/.test(r))
        fail(`team '${t.name}' root path '${r}': '/' and segments without '*', '?' or a trailing '/'`);
      if (roots.has(r)) fail(`root path '${r}' is given to both '${roots.get(r)}' and '${t.name}'`);
      roots.set(r, t.name);
    }
    for (const s of t.oidcSubjects) if (s.trim() === '' || s === '*') fail(`team '${t.name}': an OIDC subject must name a repository`);
  }
  if (!/^arn:aws:iam::\d{12}:oidc-provider\/.+/.test(p.oidcProviderArn)) fail('oidcProviderArn is not an IAM OIDC provider ARN');
}

/** The ECR repository ARN and name of the router image. */
export function imageRepository(p: SwitchyardParams): { arn: string; name: string; tag: string } {
  const m = /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/([a-z0-9._/-]+)(?::([\w.-]+)|@(sha256:[0-9a-f]{64}))$/.exec(p.imageUri)!;
  return { arn: `arn:aws:ecr:${p.region}:${p.account}:repository/${m[1]}`, name: m[1], tag: m[2] ?? m[3] };
}

/** The router's command line: appended to `serve` by the image's entrypoint. */
export function routerCommand(p: SwitchyardParams): string[] {
  return [
    '--listen', `0.0.0.0:${LISTEN_PORT}`,
    '--admin-listen', `0.0.0.0:${ADMIN_PORT}`,
    '--workers', String(p.workers),
    '--poll-interval', String(p.pollIntervalSeconds),
    '--drain-timeout', String(p.drainTimeoutSeconds),
    '--access-log', '-',
    '--log-level', 'info',
  ];
}

/**
 * Parameters from the CDK context: `-c params=FILE.json` (relative to the
 * app's directory) merged with single values `-c account=… -c region=…`.
 */
export function paramsFromContext(get: (key: string) => unknown, baseDir: string): SwitchyardParams {
  let over: Record<string, unknown> = {};
  const file = get('params');
  if (typeof file === 'string' && file !== '') {
    over = JSON.parse(fs.readFileSync(path.resolve(baseDir, file), 'utf8'));
  }
  for (const k of ['account', 'region', 'imageUri', 'cloudFrontCertificateArn', 'albCertificateArn', 'alarmEmail',
    'vpcOriginSecurityGroupId', 'oidcProviderArn']) {
    const v = get(k);
    if (typeof v === 'string' && v !== '') over[k] = v;
  }
  for (const k of ['maxBodyBytes', 'drainTimeoutSeconds']) {
    const v = get(k);
    if (v !== undefined) over[k] = Number(v);
  }
  const domains = get('domains');
  if (typeof domains === 'string') over.domains = domains.split(',').map((s) => s.trim()).filter(Boolean);
  if (typeof over.account !== 'string' || typeof over.region !== 'string')
    fail('set account and region (in the params file or with -c account=… -c region=…); synthesis looks nothing up');
  return resolveParams(over as Partial<SwitchyardParams> & { account: string; region: string });
}
