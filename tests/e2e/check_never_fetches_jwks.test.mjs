// Issue 9 item 7 / issue 10 item 2: parsing a policy starts no thread and
// does no network I/O. `switchyard check` (and `routes put --check-policy`)
// on a policy whose jwt auth has a jwks_uri must never connect to that URI,
// and must exit cleanly every time (it used to start the JWKS fetcher and
// never stop it; under ASan it crashed at exit one run in three). A served
// snapshot does fetch: the same server sees connections from `serve`, so
// the "no connection" assertion can fail. (The old fetcher thread usually
// lost the race against check's exit, so the deterministic proof that
// parsing starts no thread is in tests/unit/test_auth.c.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { makeTestPki, makeKey } from './lib/auth-issuer.mjs';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, runCli, tempDir, sanitizerReport, eventually } from './lib/harness.mjs';

let server, connections = 0, fetches = 0, dir, policyFile, routesFile, echo;

before(async () => {
  dir = tempDir();
  const pki = makeTestPki(dir);
  const key = await makeKey('RS256', 'k1');
  server = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) }, (req, res) => {
    fetches++;
    const body = JSON.stringify({ keys: [key.jwk] });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  // Any TCP connection counts, even one that never finishes a handshake.
  server.on('connection', () => connections++);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  echo = await startEcho({ name: 'jwks-check' });
  const policy = makePolicy({
    ports: [echo.port],
    auth_policies: {
      public: { type: 'none' },
      users: {
        type: 'jwt',
        issuer: 'https://issuer.example.com',
        jwks_uri: `https://127.0.0.1:${server.address().port}/jwks.json`,
        ca_file: pki.ca,
        algorithms: ['RS256'],
      },
    },
  });
  policyFile = path.join(dir, 'policy.json');
  routesFile = path.join(dir, 'routes.json');
  fs.writeFileSync(policyFile, JSON.stringify(policy));
  fs.writeFileSync(routesFile, JSON.stringify([route('/orders', echo.port, { auth: 'users' })]));
});

after(async () => {
  await new Promise((r) => server?.close(r));
  await echo?.close();
});

test('check on a jwks_uri policy connects to nothing and exits cleanly, every run', () => {
  for (let i = 0; i < 5; i++) {
    const r = runCli(['check', '--policy', policyFile, '--routes', routesFile]);
    assert.equal(r.signal, null, `check killed by ${r.signal}`);
    assert.equal(r.code, 0, `check exited ${r.code}:\n${r.stderr}`);
    assert.equal(sanitizerReport(r.stderr), null);
    assert.match(r.stdout, /\/orders/);
  }
  const routes2 = path.join(dir, 'routes2.json');
  fs.copyFileSync(routesFile, routes2);
  const put = runCli(['routes', 'put', '--routes', routes2, '--path', '/orders/v2', '--target', `http://127.0.0.1:${echo.port}`, '--auth', 'users', '--check-policy', policyFile]);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(sanitizerReport(put.stderr), null);
  assert.equal(connections, 0, 'check or routes put connected to the jwks_uri');
  assert.equal(fetches, 0);
});

test('serving the same policy does fetch its jwks_uri (the server is reachable)', async () => {
  const before = fetches;
  const sy = await startSwitchyard({ policy: JSON.parse(fs.readFileSync(policyFile, 'utf8')), routes: JSON.parse(fs.readFileSync(routesFile, 'utf8')) });
  try {
    await eventually(() => fetches > before, { what: 'a JWKS fetch by serve' });
  } finally {
    await sy.stopClean();
  }
});
