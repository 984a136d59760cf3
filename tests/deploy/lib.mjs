// lib.mjs: helpers shared by the deployment tests (not a test file itself:
// node --test only runs *.test.mjs). Reads the deploy/ documents, parses the
// Dockerfile the way docker does for the instructions we use, and renders the
// ${Placeholder} templates with sample values.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEPLOY = path.join(REPO, 'deploy');
// Always the release build: it is what the image's build stage produces
// (an ASan build would need libasan, which the image rightly lacks).
export const BIN = path.join(REPO, 'build/switchyard');
export const haveBin = () => fs.existsSync(BIN);
export const SKIP_NO_BIN = 'build/switchyard not found: run `make` first';

export function readJson(rel) {
  const file = path.join(REPO, rel);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function readText(rel) {
  return fs.readFileSync(path.join(REPO, rel), 'utf8');
}

// Every ${Name} placeholder in a string.
export function placeholders(text) {
  return new Set([...text.matchAll(/\$\{([A-Za-z][A-Za-z0-9]*)\}/g)].map((m) => m[1]));
}

// Sample values: what an operator substitutes before running the AWS CLI.
export const SAMPLE = {
  AccountId: '123456789012',
  Region: 'eu-west-1',
  ImageTag: '0.1.0',
  PolicyBucket: 'acme-switchyard-config',
  PolicyKey: 'switchyard/policy.json',
  RoutesTable: 'switchyard-routes',
  ClusterName: 'edge',
  PrivateSubnetA: 'subnet-0a1b2c3d4e5f60001',
  PrivateSubnetB: 'subnet-0a1b2c3d4e5f60002',
  PrivateSubnetC: 'subnet-0a1b2c3d4e5f60003',
  RouterSecurityGroupId: 'sg-0a1b2c3d4e5f60001',
  VpcId: 'vpc-0a1b2c3d4e5f60001',
  TargetGroupId: '0123456789abcdef',
  LoadBalancerId: 'fedcba9876543210',
  TeamRootPath: '/orders',
};

export function render(text, values = SAMPLE) {
  return text.replace(/\$\{([A-Za-z][A-Za-z0-9]*)\}/g, (m, name) => {
    if (!(name in values)) throw new Error(`no sample value for placeholder \${${name}}`);
    return values[name];
  });
}

/*
 * Parses a Dockerfile into stages: [{from, name, instructions: [{op, args,
 * line}]}]. Handles line continuations and comment lines (also inside a
 * continuation, as docker does); parser directives are comments to us.
 */
export function parseDockerfile(text) {
  const logical = [];
  let cur = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (/^\s*#/.test(line)) return;
    if (cur === null) {
      if (line.trim() === '') return;
      cur = { text: '', line: i + 1 };
    }
    const cont = /\\\s*$/.test(line);
    cur.text += (cont ? line.replace(/\\\s*$/, '') : line) + ' ';
    if (!cont) {
      logical.push(cur);
      cur = null;
    }
  });
  if (cur) logical.push(cur);
  const stages = [];
  for (const { text: t, line } of logical) {
    const m = /^\s*([A-Za-z]+)\s+(.*?)\s*$/.exec(t);
    if (!m) throw new Error(`Dockerfile line ${line}: cannot parse '${t.trim()}'`);
    const op = m[1].toUpperCase();
    const args = m[2];
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile line ${line}: bad FROM`);
      stages.push({ from: f[1], name: f[2] || null, instructions: [] });
    } else {
      if (stages.length === 0) {
        if (op === 'ARG') continue;
        throw new Error(`Dockerfile line ${line}: ${op} before FROM`);
      }
      stages.at(-1).instructions.push({ op, args, line });
    }
  }
  return stages;
}

// Exec form (JSON array) of CMD/ENTRYPOINT/HEALTHCHECK CMD, or null.
export function execForm(args) {
  if (!args.trim().startsWith('[')) return null;
  return JSON.parse(args);
}

// Packages named by every `apt-get install` in a RUN's shell text.
export function aptInstalls(runText) {
  const pkgs = [];
  for (const part of runText.split(/&&|;|\|\|/)) {
    const words = part.trim().split(/\s+/);
    const apt = words.findIndex((w) => w === 'apt-get' || w === 'apt');
    const install = words.indexOf('install');
    if (apt < 0 || install < apt) continue;
    for (const w of words.slice(install + 1)) if (!w.startsWith('-')) pkgs.push(w);
  }
  return pkgs;
}

export function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...opts });
}

export function which(cmd) {
  return run('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

// Parses "--opt value" pairs from an argument list (all serve options
// take a value except --help).
export function optionPairs(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument '${argv[i]}'`);
    const eq = argv[i].indexOf('=');
    if (eq > 0) out.push([argv[i].slice(0, eq), argv[i].slice(eq + 1)]);
    else out.push([argv[i], argv[++i]]);
  }
  return out;
}

export function lastOption(argv, name, dflt) {
  const v = optionPairs(argv).filter(([k]) => k === name).map(([, x]) => x);
  return v.length ? v.at(-1) : dflt;
}

export function portOf(addr) {
  const m = /:(\d+)$/.exec(addr || '');
  if (!m) throw new Error(`no port in '${addr}'`);
  return Number(m[1]);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The runtime stage of deploy/container/Dockerfile.
export function runtimeStage() {
  return parseDockerfile(readText('deploy/container/Dockerfile')).at(-1);
}

export const IMAGE_BIN = '/usr/local/bin/switchyard';

/*
 * Starts the image's ENTRYPOINT as docker would (exec form, args appended),
 * with the image's binary path pointing at the local build. The listen and
 * admin addresses in args are rewritten to free loopback ports so the test
 * can run next to anything else; every other argument is kept. Returns
 * {child, admin, listen, output()}.
 */
export async function startEntrypoint(args, env) {
  const stage = runtimeStage();
  const ep = stage.instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1);
  const argv = execForm(ep.args).map((a) => a.split(IMAGE_BIN).join(BIN));
  const rewritten = [];
  let admin = null;
  let listen = null;
  for (const [k, v] of optionPairs(args)) {
    if (k === '--listen' || k === '--admin-listen') {
      const addr = `127.0.0.1:${await freePort()}`;
      if (k === '--admin-listen') admin = addr;
      else listen = listen || addr;
      rewritten.push(k, addr);
    } else {
      rewritten.push(k, v);
    }
  }
  const child = spawn(argv[0], [...argv.slice(1), ...rewritten], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  process.on('exit', () => child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, admin, listen, exited, output: () => stderr };
}

// Runs argv (an exec-form health check) until it exits 0 or time runs out.
export async function pollUntilZero(argv, ms) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await new Promise((resolve) => {
      const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
      p.on('exit', (code) => resolve({ code, err }));
    });
    if (last.code === 0 || Date.now() > end) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/* ---- the CDK app (deploy/cdk) ------------------------------------------- */

export const CDK = path.join(REPO, 'deploy/cdk');
export const haveCdk = () => fs.existsSync(path.join(CDK, 'node_modules/aws-cdk-lib/package.json'));
export const SKIP_NO_CDK = 'deploy/cdk/node_modules missing: run scripts/deps.sh (npm ci in deploy/cdk)';

// Compiles deploy/cdk with its pinned TypeScript when a source is newer than
// the last build (type errors fail the test), then loads the compiled app.
export function cdkModules() {
  const stamp = path.join(CDK, 'dist/.tsbuildinfo');
  const sources = ['bin', 'lib'].flatMap((d) => fs.readdirSync(path.join(CDK, d)).map((f) => path.join(CDK, d, f)));
  sources.push(path.join(CDK, 'tsconfig.json'), path.join(CDK, 'package-lock.json'));
  const stale = () => {
    const built = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
    return sources.some((f) => fs.statSync(f).mtimeMs > built) || !fs.existsSync(path.join(CDK, 'dist/lib/app.js'));
  };
  if (stale()) {
    // Test files may run in parallel processes: one compiles, the others
    // wait for it (mkdir is atomic), so nobody loads a half-written dist/.
    const lock = path.join(CDK, '.compile-lock');
    const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    for (let i = 0; ; i++) {
      try { fs.mkdirSync(lock); break; } catch (e) {
        if (e.code !== 'EEXIST') throw e;
        // A lock older than 10 minutes was left by a killed run.
        if (Date.now() - fs.statSync(lock).mtimeMs > 600000) fs.rmSync(lock, { recursive: true, force: true });
        sleep(200);
      }
    }
    try {
      if (stale()) {
        const r = spawnSync(process.execPath, [path.join(CDK, 'node_modules/typescript/bin/tsc'), '-p', CDK], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
        fs.utimesSync(stamp, new Date(), new Date());
      }
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
  const require = createRequire(path.join(CDK, 'package.json'));
  return {
    cdk: require('aws-cdk-lib'),
    assertions: require('aws-cdk-lib/assertions'),
    app: require(path.join(CDK, 'dist/lib/app.js')),
    params: require(path.join(CDK, 'dist/lib/params.js')),
    stack: require(path.join(CDK, 'dist/lib/switchyard-stack.js')),
    waf: require(path.join(CDK, 'dist/lib/waf-stack.js')),
    metrics: require(path.join(CDK, 'dist/lib/metrics.js')),
  };
}

// The sample parameters every deploy test synthesizes with.
export const CDK_SAMPLE = { account: '123456789012', region: 'eu-west-1' };

let synthCache = null;
// Synthesizes the app once per test process, in a temporary directory, with
// the cdk-nag AwsSolutions checks. Returns the modules, the built stacks, the
// templates (CloudFormation JSON) and the cloud assembly.
export function synthCdk() {
  if (synthCache) return synthCache;
  const m = cdkModules();
  const params = m.params.resolveParams(CDK_SAMPLE);
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-cdk-'));
  process.on('exit', () => fs.rmSync(outdir, { recursive: true, force: true }));
  const app = new m.cdk.App({ outdir });
  const built = m.app.build(params, { app });
  const assembly = app.synth();
  const template = (stack) => assembly.getStackByName(stack.stackName).template;
  synthCache = { m, params, built, assembly, main: template(built.main), waf: template(built.waf) };
  return synthCache;
}

// Resources of one type in a template, as [logicalId, resource].
export function resourcesOf(template, type) {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}
