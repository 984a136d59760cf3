// container.test.mjs: deploy/container/Dockerfile without a Docker engine.
// Parses the Dockerfile and checks the image contract (stages, non-root
// user, ports, stop signal, health check), proves the runtime stage's
// package list is complete for the binary the build stage makes (every
// library `ldd build/switchyard` loads is owned, per dpkg, by a package the
// runtime stage installs, by what apt pulls in with them, or by the base
// image), and runs the image's ENTRYPOINT and HEALTHCHECK commands against
// the local build.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  BIN, IMAGE_BIN, REPO, SKIP_NO_BIN, aptInstalls, execForm, haveBin, lastOption, optionPairs,
  parseDockerfile, pollUntilZero, portOf, readText, run, startEntrypoint, which,
} from './lib.mjs';

const stages = parseDockerfile(readText('deploy/container/Dockerfile'));
const build = stages[0];
const runtime = stages.at(-1);
const ops = (stage, op) => stage.instructions.filter((i) => i.op === op);
const installs = (stage) => ops(stage, 'RUN').flatMap((i) => aptInstalls(i.args));
const RUNTIME_PKGS = installs(runtime);
const CMD = execForm(ops(runtime, 'CMD').at(-1).args);

// What debian:12-slim already contains and the binary may load without the
// Dockerfile naming it. The slim image is a debootstrap "minbase": the
// Essential and Priority-required packages plus everything they depend on
// (since Debian 12 libraries such as libc6 are Priority optional and come in
// as dependencies). A test below rebuilds that set from the local dpkg
// database, so this list can't silently drift. Only packages that a
// switchyard build links directly belong here; libraries that the installed
// packages depend on are found by walking their Depends, as apt would.
const BASE_PKGS = ['libc6', 'libgcc-s1', 'gcc-12-base'];
// Installed for what they carry, not for a library: the CA bundle that
// verifies S3, DynamoDB, STS and upstream certificates.
const DATA_PKGS = ['ca-certificates'];

test('two stages: debian:12 builds with make, debian:12-slim runs', () => {
  assert.equal(stages.length, 2, 'exactly a build stage and a runtime stage');
  assert.match(build.from, /^debian:(12|bookworm)(@sha256:[0-9a-f]{64})?$/);
  assert.match(runtime.from, /^debian:(12|bookworm)-slim(@sha256:[0-9a-f]{64})?$/);
  assert.ok(build.name, 'the build stage is named so the runtime stage can copy from it');
  const buildPkgs = new Set(installs(build));
  for (const p of ['build-essential', 'pkg-config', 'libuv1-dev', 'libc-ares-dev', 'libjansson-dev', 'libssl-dev',
    'libcurl4-openssl-dev', 'libcrypt-dev'])
    assert.ok(buildPkgs.has(p), `build stage installs ${p}`);
  assert.ok(ops(build, 'RUN').some((i) => /(^|&&\s*)make\b/.test(i.args)), 'build stage runs make');
  const copied = ops(build, 'COPY').map((i) => i.args.split(/\s+/)[0]);
  assert.ok(copied.includes('Makefile'), 'build stage copies the Makefile');
  assert.ok(copied.some((c) => /^src\/?$/.test(c)), 'build stage copies src/');
  const fromBuild = ops(runtime, 'COPY').filter((i) => i.args.startsWith(`--from=${build.name} `));
  assert.equal(fromBuild.length, 1, 'the runtime stage copies one thing from the build stage');
  const [, src, dst] = fromBuild[0].args.split(/\s+/);
  assert.match(src, /\/build\/switchyard$/);
  assert.equal(dst, IMAGE_BIN);
});

test('runtime stage installs only runtime packages, minimally', () => {
  assert.ok(RUNTIME_PKGS.length > 0, 'runtime stage installs its libraries');
  for (const p of RUNTIME_PKGS) {
    assert.doesNotMatch(p, /-dev$|^(build-essential|gcc|g\+\+|make|pkg-config|curl|wget)$/,
      `${p} does not belong in the runtime image`);
    assert.doesNotMatch(p, /[=*]/, `${p}: no version pins or globs that break on a security update`);
  }
  const run_ = ops(runtime, 'RUN').find((i) => aptInstalls(i.args).length > 0).args;
  assert.match(run_, /apt-get update/, 'updates the package index in the same layer');
  assert.match(run_, /--no-install-recommends/, 'no recommended extras');
  assert.match(run_, /rm -rf \/var\/lib\/apt\/lists/, 'drops the package index from the layer');
});

test('runs as a non-root user that the image creates', () => {
  const users = ops(runtime, 'USER');
  assert.ok(users.length > 0, 'runtime stage sets USER');
  const [user, group] = users.at(-1).args.split(':');
  assert.notEqual(user, 'root');
  assert.notEqual(user, '0');
  if (group !== undefined) assert.ok(group !== '0' && group !== 'root', 'group is not root');
  if (/^\d+$/.test(user)) {
    const created = ops(runtime, 'RUN').some((i) =>
      new RegExp(`useradd\\b[^&;]*--uid ${user}\\b`).test(i.args));
    assert.ok(created, `uid ${user} is created with useradd --uid ${user}`);
  }
});

test('ports, stop signal and health check agree with the command', () => {
  const exposed = new Set(ops(runtime, 'EXPOSE').flatMap((i) => i.args.split(/\s+/))
    .map((p) => Number(p.replace(/\/tcp$/, ''))));
  const listen = lastOption(CMD, '--listen', '0.0.0.0:8080');
  const admin = lastOption(CMD, '--admin-listen', '127.0.0.1:9901');
  assert.deepEqual([...exposed].sort(), [portOf(listen), portOf(admin)].sort());
  assert.ok(exposed.has(8080) && exposed.has(9901), 'EXPOSE 8080 9901');
  // Inside a container, 127.0.0.1 would hide the admin port from the load
  // balancer's health check.
  assert.match(admin, /^0\.0\.0\.0:/, 'admin listens on all interfaces of the task');
  assert.equal(ops(runtime, 'STOPSIGNAL').at(-1)?.args, 'SIGTERM');
  const hc = ops(runtime, 'HEALTHCHECK').at(-1);
  assert.ok(hc, 'HEALTHCHECK is set');
  const m = /^(.*?)\bCMD\s+(\[.*\])$/.exec(hc.args);
  assert.ok(m, 'HEALTHCHECK uses the exec form (no shell needed)');
  const argv = JSON.parse(m[2]);
  assert.deepEqual(argv.slice(0, 4), [IMAGE_BIN, 'healthcheck', '--admin', `127.0.0.1:${portOf(admin)}`]);
  const timeout = /--timeout=(\d+)s/.exec(m[1]);
  const interval = /--interval=(\d+)s/.exec(m[1]);
  assert.ok(timeout && interval && Number(timeout[1]) < Number(interval[1]),
    'health check timeout shorter than its interval');
  assert.ok(Number(lastOption(CMD, '--drain-timeout', '20')) >= 0);
});

test('.dockerignore sends only what the build reads', () => {
  const patterns = readText('.dockerignore').split('\n').map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  // Docker's rule: the last matching pattern wins; a pattern that matches a
  // directory covers everything under it.
  const glob = (p) => new RegExp('^' + p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*\*/g, '\u0000')
    .replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*') + '(/.*)?$');
  const excluded = (file) => {
    let ex = false;
    for (const p of patterns) {
      const neg = p.startsWith('!');
      if (glob((neg ? p.slice(1) : p).replace(/^\/+|\/+$/g, '')).test(file)) ex = !neg;
    }
    return ex;
  };
  for (const f of ['Makefile', 'src/main.c', 'src/core/common.h'])
    assert.equal(excluded(f), false, `${f} is in the build context`);
  for (const f of ['build/switchyard', '.git/config', 'node_modules/x/index.js', 'tests/run.sh',
    '.env', 'bench/results.md'])
    assert.equal(excluded(f), true, `${f} stays out of the build context`);
});

/* ---- the runtime libraries, from the binary ------------------------------ */

function dpkgOwner(file) {
  // Debian 12 has merged /usr: ldd may say /lib/x86_64-linux-gnu/libuv.so.1
  // while dpkg recorded /usr/lib/..., or the other way round (libc6 ships
  // /lib64/ld-linux-x86-64.so.2). Try every spelling and the real path.
  const cands = new Set([file]);
  try { cands.add(fs.realpathSync(file)); } catch { /* reported below */ }
  for (const c of [...cands]) {
    if (/^\/(lib|lib64|bin|sbin)\//.test(c)) cands.add('/usr' + c);
    if (/^\/usr\/(lib|lib64|bin|sbin)\//.test(c)) cands.add(c.slice(4));
  }
  for (const c of cands) {
    const r = run('dpkg', ['-S', c]);
    if (r.status !== 0) continue;
    for (const line of r.stdout.split('\n')) {
      const m = /^(.+): (\/\S+)$/.exec(line);
      if (m && m[2] === c && !m[1].startsWith('diversion')) return m[1].split(', ')[0].replace(/:.*$/, '');
    }
  }
  return null;
}

function lddLibraries(bin) {
  const r = run('ldd', [bin]);
  assert.equal(r.status, 0, `ldd ${bin}: ${r.stderr}`);
  const libs = [];
  for (const line of r.stdout.split('\n')) {
    if (/not found/.test(line)) assert.fail(`ldd: ${line.trim()}`);
    const m = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(/.exec(line) || /^\s*((\/\S+))\s+\(/.exec(line);
    if (m) libs.push({ soname: path.basename(m[1]), file: m[2] });
  }
  return libs;
}

function neededSonames(bin) {
  const r = run('readelf', ['-d', '--wide', bin]);
  if (r.status !== 0) return null;
  return [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

function installed(pkg) {
  const r = run('dpkg-query', ['-W', '-f=${db:Status-Status}', pkg]);
  return r.status === 0 && r.stdout.trim() === 'installed';
}

// The packages apt installs for `pkgs` on this Debian 12 machine: the
// Depends/Pre-Depends closure, taking the first installed alternative.
function dependencyClosure(pkgs) {
  const seen = new Set();
  const todo = [...pkgs];
  while (todo.length) {
    const p = todo.pop();
    if (seen.has(p)) continue;
    seen.add(p);
    const r = run('dpkg-query', ['-W', '-f=${Depends}, ${Pre-Depends}', p]);
    if (r.status !== 0) continue;
    for (const group of r.stdout.split(',').map((g) => g.trim()).filter(Boolean)) {
      const alts = group.split('|').map((a) => a.trim().split(/[\s(]/)[0].replace(/:any$/, ''));
      todo.push(alts.find(installed) || alts[0]);
    }
  }
  return seen;
}

test('every library the binary loads comes from a package the runtime stage has', (t) => {
  if (!haveBin()) return t.skip(SKIP_NO_BIN);
  if (!which('dpkg') || !which('ldd')) return t.skip('dpkg or ldd not available: not a Debian machine');
  const libs = lddLibraries(BIN);
  assert.ok(libs.some((l) => l.soname.startsWith('libc.so')), 'ldd output was understood');
  const explicit = new Set([...RUNTIME_PKGS, ...BASE_PKGS]);
  const closure = dependencyClosure(explicit);
  const needed = neededSonames(BIN);
  const problems = [];
  for (const lib of libs) {
    const pkg = dpkgOwner(lib.file);
    if (!pkg) { problems.push(`${lib.file}: no Debian package owns it`); continue; }
    const direct = needed ? needed.includes(lib.soname) : true;
    // A library the binary links directly must be named (or be in the base
    // image): relying on another package's dependency would break the
    // image the day that package drops it.
    if (direct && !explicit.has(pkg))
      problems.push(`${lib.soname} (${pkg}) is linked directly; install ${pkg} in the runtime stage`);
    else if (!closure.has(pkg))
      problems.push(`${lib.soname} (${pkg}) is not pulled in by ${[...explicit].join(' ')}`);
  }
  assert.deepEqual(problems, []);
});

test('every library the Makefile links has its runtime package, and nothing else is installed', (t) => {
  if (!which('dpkg') || !which('pkg-config') || !which('gcc'))
    return t.skip('dpkg, pkg-config or gcc missing: not a Debian build machine');
  const mk = readText('Makefile');
  const mods = /^PKGS\s*:?=\s*(.*)$/m.exec(mk)[1].trim().split(/\s+/);
  const flags = run('pkg-config', ['--libs-only-l', ...mods]);
  assert.equal(flags.status, 0, flags.stderr);
  const extra = /^LDLIBS_ALL\s*:?=.*$/m.exec(mk)[0].match(/-l[\w+-]+/g) || [];
  const libsWanted = new Set([...flags.stdout.trim().split(/\s+/), ...extra].map((f) => f.slice(2)));
  const owners = new Map();
  for (const l of libsWanted) {
    const so = run('gcc', [`-print-file-name=lib${l}.so`]).stdout.trim();
    let real = null;
    try { real = fs.realpathSync(so); } catch { /* not a file */ }
    // libpthread/libm are in libc6; their .so may be a linker script.
    const pkg = real && /\.so\.\d/.test(path.basename(real)) ? dpkgOwner(real) : 'libc6';
    assert.ok(pkg, `-l${l}: ${real} has no owning package`);
    owners.set(l, pkg);
  }
  const runtime = new Set(RUNTIME_PKGS);
  for (const [l, pkg] of owners)
    assert.ok(runtime.has(pkg) || BASE_PKGS.includes(pkg), `-l${l} needs ${pkg} in the runtime stage`);
  const justified = new Set([...owners.values(), ...DATA_PKGS]);
  for (const p of RUNTIME_PKGS) assert.ok(justified.has(p), `${p} is installed but nothing needs it`);
});

test('the base packages the test relies on really are in debian:12-slim (minbase)', (t) => {
  if (!which('dpkg-query')) return t.skip('dpkg-query not available');
  const r = run('dpkg-query', ['-W', '-f=${Package} ${Essential} ${Priority}\\n']);
  assert.equal(r.status, 0, r.stderr);
  const seeds = r.stdout.split('\n').map((l) => l.split(' '))
    .filter(([pkg, ess, prio]) => pkg && (ess === 'yes' || prio === 'required')).map(([pkg]) => pkg);
  assert.ok(seeds.includes('dpkg') && seeds.includes('base-files'), 'found the Essential packages');
  const minbase = dependencyClosure(seeds);
  for (const p of BASE_PKGS) assert.ok(minbase.has(p), `${p} is not part of a Debian minbase`);
});

/* ---- the entrypoint and health check, run for real ------------------------ */

function healthcheckArgv(admin, extra = []) {
  const hc = ops(runtime, 'HEALTHCHECK').at(-1);
  const argv = JSON.parse(/\bCMD\s+(\[.*\])$/.exec(hc.args)[1]);
  return [BIN, ...argv.slice(1).map((a) => (/^127\.0\.0\.1:\d+$/.test(a) ? admin : a)), ...extra];
}

const SOURCES = {
  SWITCHYARD_POLICY: path.join(REPO, 'deploy/config/policy.json'),
  SWITCHYARD_ROUTES: path.join(REPO, 'deploy/config/routes.json'),
};

test('the entrypoint serves with env-driven sources, the health check passes, SIGTERM exits 0', async (t) => {
  if (!haveBin()) return t.skip(SKIP_NO_BIN);
  const sy = await startEntrypoint(CMD, SOURCES);
  try {
    const health = await pollUntilZero(healthcheckArgv(sy.admin), 15000);
    assert.equal(health.code, 0, `healthcheck: ${health.err}\nswitchyard: ${sy.output()}`);
    const ready = await pollUntilZero(healthcheckArgv(sy.admin, ['--ready']), 15000);
    assert.equal(ready.code, 0, `healthcheck --ready: ${ready.err}`);
  } finally {
    sy.child.kill('SIGTERM');
  }
  const drain = Number(lastOption(CMD, '--drain-timeout', '20'));
  const timer = setTimeout(() => sy.child.kill('SIGKILL'), (drain + 10) * 1000);
  const { code, signal } = await sy.exited;
  clearTimeout(timer);
  assert.equal(signal, null, `switchyard must exit by itself on SIGTERM: ${sy.output()}`);
  assert.equal(code, 0, sy.output());
});

test('the health check fails when nothing answers', async (t) => {
  if (!haveBin()) return t.skip(SKIP_NO_BIN);
  const { freePort } = await import('./lib.mjs');
  const r = await pollUntilZero(healthcheckArgv(`127.0.0.1:${await freePort()}`), 0);
  assert.notEqual(r.code, 0);
});

test('the entrypoint refuses to start without its sources, naming the variable', async (t) => {
  if (!haveBin()) return t.skip(SKIP_NO_BIN);
  const sy = await startEntrypoint(CMD, { SWITCHYARD_ROUTES: SOURCES.SWITCHYARD_ROUTES });
  const { code } = await sy.exited;
  assert.notEqual(code, 0);
  assert.match(sy.output(), /SWITCHYARD_POLICY/);
  assert.deepEqual(optionPairs(CMD).filter(([k]) => k === '--policy' || k === '--routes'), [],
    'sources come from the environment, not from CMD');
});
