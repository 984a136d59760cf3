// SPEC §5.9: an upstream that can't be reached or answers with a malformed
// response gets the client a 502; a body cut short after the head was sent
// closes the client connection instead of leaving it hanging or reusable;
// a backend that closes idle pooled connections costs no failed request;
// upstream errors show in /metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, dest, get, adminGet, parseMetrics, errorMessage, sleep, HOST, SLOW } from './lib/harness.mjs';
import { RawConn, rawJson } from './lib/rawhttp.mjs';

let echo, shortKa, sy;

before(async () => {
  echo = await startEcho({ name: 'up' });
  shortKa = await startEcho({ name: 'short-ka', keepAliveTimeout: 150 });
  sy = await startSwitchyard({
    policy: makePolicy({ destinations: [dest(echo.port), dest(shortKa.port)] }),
    routes: [route('/', echo.port), route('/short', shortKa.port)],
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
  await shortKa?.close();
});

for (const kind of ['garbage', 'bad-status', 'dup-cl', 'cl-te', 'bad-header', 'nul-header', 'obs-fold', 'reset']) {
  test(`502 for an upstream answer that is ${kind}`, async () => {
    const r = await get(sy, `/bad-response?kind=${kind}`);
    assert.equal(r.status, 502, `${kind}: ${r.status} ${r.text}`);
    errorMessage(r);
  });
}

for (const kind of ['truncate', 'bad-chunk']) {
  test(`a body cut short upstream (${kind}) closes the client connection`, async () => {
    const c = await RawConn.open(sy.port);
    try {
      await c.send(`GET /bad-response?kind=${kind} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      let res = null;
      let err = null;
      try {
        res = await c.readFinal({ timeout: 15000 * SLOW });
      } catch (e) {
        err = e;
      }
      if (err) assert.ok(!/timeout/.test(err.message), `client left hanging: ${err.message}`);
      if (res) assert.equal(res.status, 502, `a broken upstream body was passed off as complete: ${res.status} ${res.text}`);
      assert.ok(await c.waitClosed(10000 * SLOW), 'the client connection stayed open after a broken upstream body');
    } finally {
      c.close();
    }
  });
}

test('the router still serves after all of the above', async () => {
  assert.equal((await get(sy, '/fine')).status, 200);
});

test('a backend closing idle pooled connections costs no failed request', async () => {
  for (let i = 0; i < 8; i++) {
    const r = await get(sy, `/short/${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.text}`);
    assert.equal(r.json().name, 'short-ka');
    await sleep(400); // the backend closes the idle connection after 150 ms
  }
});

test('POST bodies go through to a backend that closes idle connections', async () => {
  for (let i = 0; i < 4; i++) {
    const r = await get(sy, `/short/post${i}`, {}, { method: 'POST', body: `body-${i}` });
    assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.text}`);
    assert.equal(r.json().body_bytes, `body-${i}`.length);
    await sleep(400);
  }
});

test('upstream errors are counted in /metrics', async () => {
  const m = parseMetrics((await adminGet(sy, '/metrics')).text);
  const errs = m.filter((x) => /upstream/.test(x.name) && /err|fail/.test(x.name + JSON.stringify(x.labels)));
  assert.ok(errs.reduce((s, x) => s + x.value, 0) >= 8, `upstream error metrics: ${JSON.stringify(errs)}`);
});

test('a keep-alive client connection survives an upstream 502', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /bad-response?kind=garbage HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    const r1 = await c.readFinal();
    assert.equal(r1.status, 502);
    if (!c.closed) {
      await c.send(`GET /after HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      const r2 = await c.readFinal();
      if (r2) assert.equal(rawJson(r2).url, '/after');
    }
  } finally {
    c.close();
  }
});
