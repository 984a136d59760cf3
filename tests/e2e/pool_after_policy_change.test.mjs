// Issue 11 (the snapshot is the only meeting point): a pooled upstream
// connection is keyed by everything that makes connections
// interchangeable, the address guard included. After a reload turns
// allow_loopback_destinations off, no request may flow over a keep-alive
// connection to a loopback backend opened while it was on: the request is
// refused (502, address refused) and the backend sees nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import {
  startSwitchyard, makePolicy, route, get, adminGet, eventually, writeJsonAtomic, errorMessage, SLOW,
} from './lib/harness.mjs';

let echo, sy, policy;

before(async () => {
  echo = await startEcho({ name: 'loop', keepAliveTimeout: 120000 });
  policy = makePolicy({ ports: [echo.port] });
  // One worker: the pooled connection and the next request meet there.
  sy = await startSwitchyard({ policy, routes: [route('/p', echo.port)], workers: 1, pollInterval: 0.2 });
});

after(async () => {
  await sy?.stopClean();
  await echo?.close();
});

const generation = async () => JSON.parse((await adminGet(sy, '/config')).text).generation;

// Writes the policy and waits until the data plane runs on it.
async function reload(doc) {
  const was = await generation();
  writeJsonAtomic(sy.policyFile, doc);
  await eventually(async () => (await generation()) > was, { timeoutMs: 10000 * SLOW, what: 'the reload' });
}

test('after allow_loopback_destinations turns false, the pooled loopback connection carries nothing', async () => {
  const first = await get(sy, '/p/1');
  assert.equal(first.status, 200, first.text);
  const before = echo.stats.requests;
  // A second request reuses the pooled connection (same remote port).
  const second = await get(sy, '/p/2');
  assert.equal(second.status, 200, second.text);
  assert.equal(second.json().remote_port, first.json().remote_port, 'the connection was not pooled');

  await reload({ ...policy, allow_loopback_destinations: false });

  const refused = await get(sy, '/p/3');
  assert.equal(refused.status, 502, `a request after the reload got ${refused.status}: ${refused.text}`);
  assert.match(errorMessage(refused), /address refused/);
  assert.ok(!echo.stats.urls.includes('/p/3'), 'the request reached the loopback backend');
  assert.equal(echo.stats.requests, before + 1);

  // Allowed again: served again.
  await reload(policy);
  const again = await get(sy, '/p/4');
  assert.equal(again.status, 200, again.text);
});
