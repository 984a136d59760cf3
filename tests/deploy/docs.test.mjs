// docs.test.mjs: the operator documents stay true to the tree. Relative
// links (and #anchors) in the deployment docs resolve; every test file
// docs/security.md names as evidence exists; every metric docs/operations.md
// tells you to alarm on is one that src/core/metrics.c renders; every file in
// deploy/ is listed in deploy/README.md.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, readText } from './lib.mjs';

const DOCS = ['docs/deploy-aws.md', 'docs/operations.md', 'docs/security.md', 'docs/ci-cd.md',
  'deploy/README.md'];

// GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'.
const anchors = (md) => new Set(md.split('\n').filter((l) => /^#{1,6} /.test(l))
  .map((l) => l.replace(/^#+ /, '').trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')));

const stripCode = (md) => md.replace(/```[\s\S]*?```/g, '');

// Written in another issue; linked before it lands. Reported, not failed,
// while absent.
const PENDING = new Set(['docs/authentication.md']);

test('relative links and anchors in the deployment docs resolve', (t) => {
  const broken = [];
  for (const doc of DOCS) {
    const md = stripCode(readText(doc));
    for (const [, target] of md.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const [file, anchor] = target.split('#');
      const abs = file ? path.resolve(REPO, path.dirname(doc), file) : path.join(REPO, doc);
      if (!fs.existsSync(abs)) {
        if (PENDING.has(path.relative(REPO, abs))) t.diagnostic(`${doc}: ${target} not written yet`);
        else broken.push(`${doc}: ${target}`);
        continue;
      }
      if (anchor && abs.endsWith('.md') && !anchors(fs.readFileSync(abs, 'utf8')).has(anchor))
        broken.push(`${doc}: ${target} (no such heading)`);
    }
  }
  assert.deepEqual(broken, []);
});

test('every test file security.md cites exists', () => {
  const md = readText('docs/security.md');
  const cited = new Set([...md.matchAll(/`((?:tests|fuzz)\/[\w./-]+\.(?:c|mjs))`/g)].map((m) => m[1]));
  assert.ok(cited.size >= 10, 'security.md names its evidence');
  for (const f of cited) assert.ok(fs.existsSync(path.join(REPO, f)), `${f} does not exist`);
});

test('every metric operations.md names is rendered by src/core/metrics.c or the resolver', () => {
  const src = readText('src/core/metrics.c') + readText('src/net/resolver.c');
  const named = new Set([...readText('docs/operations.md').matchAll(/\bswitchyard_[a-z_]+[a-z]\b/g)].map((m) => m[0]));
  assert.ok(named.size >= 8, 'operations.md names the metrics to alarm on');
  for (const m of named) {
    const base = m.replace(/_(bucket|sum|count)$/, '');
    assert.ok(src.includes(`"${base}`), `${m} is not rendered by src/core/metrics.c nor src/net/resolver.c`);
  }
});

test('every file in deploy/ is listed in deploy/README.md and the guide names the real files', () => {
  const readme = readText('deploy/README.md');
  // Installed and generated trees of deploy/cdk are not sources.
  const generated = new Set(['node_modules', 'dist', 'cdk.out', '.compile-lock', 'cdk.context.json']);
  const walk = (d) => fs.readdirSync(path.join(REPO, d), { withFileTypes: true })
    .filter((e) => !generated.has(e.name) && !e.name.endsWith('.tsbuildinfo'))
    .flatMap((e) => (e.isDirectory() ? walk(`${d}/${e.name}`) : [`${d}/${e.name}`]));
  for (const f of walk('deploy')) {
    if (f === 'deploy/README.md') continue;
    assert.ok(readme.includes(f.slice('deploy/'.length)), `${f} is not listed in deploy/README.md`);
  }
  const guide = readText('docs/deploy-aws.md');
  for (const [, f] of guide.matchAll(/(?<![\w/])(deploy\/[\w./-]+\.json)/g))
    assert.ok(fs.existsSync(path.join(REPO, f)), `docs/deploy-aws.md names ${f}, which does not exist`);
  for (const [, f] of guide.matchAll(/\/tmp\/deploy\/([\w.-]+\.json)/g))
    assert.ok(walk('deploy').some((x) => x.endsWith(`/${f}`)), `docs/deploy-aws.md uses ${f}, which deploy/ lacks`);
});
