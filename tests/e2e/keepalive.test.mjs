// Connection reuse on both sides: many requests on one client connection,
// pipelined requests answered in order, Connection: close and HTTP/1.0
// honoured, and upstream connections pooled (SPEC §5.6).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, httpRequest, HOST, SLOW } from './lib/harness.mjs';
import { RawConn, rawJson } from './lib/rawhttp.mjs';

let echo, sy;

before(async () => {
  echo = await startEcho({ name: 'ka' });
  sy = await startSwitchyard({ policy: makePolicy({ ports: [echo.port] }), routes: [route('/', echo.port)], workers: 2 });
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
});

test('twenty sequential requests on one client connection', async () => {
  const c = await RawConn.open(sy.port);
  try {
    for (let i = 0; i < 20; i++) {
      const body = `body-${i}`;
      await c.send(`POST /seq/${i} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const res = await c.readFinal();
      assert.ok(res, `connection closed before answer ${i}`);
      assert.equal(res.status, 200);
      const j = rawJson(res);
      assert.equal(j.url, `/seq/${i}`);
      assert.equal(j.body_bytes, body.length);
      assert.ok(!c.closed, `closed after request ${i}`);
    }
  } finally {
    c.close();
  }
});

test('pipelined requests in one write are answered in order', async () => {
  const c = await RawConn.open(sy.port);
  try {
    let bytes = `GET /slow?ms=300&n=0 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
    for (let i = 1; i < 6; i++) {
      bytes += i % 2 ? `GET /pipe/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n` : `POST /pipe/${i} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 3\r\n\r\nabc`;
    }
    await c.send(bytes);
    const urls = [];
    for (let i = 0; i < 6; i++) {
      const res = await c.readFinal();
      assert.ok(res, `connection closed after ${i} answers`);
      assert.equal(res.status, 200);
      urls.push(rawJson(res).url);
    }
    assert.deepEqual(urls, ['/slow?ms=300&n=0', '/pipe/1', '/pipe/2', '/pipe/3', '/pipe/4', '/pipe/5']);
  } finally {
    c.close();
  }
});

test('Connection: close is answered and then the connection closes', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /bye HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    const res = await c.readFinal();
    assert.equal(res.status, 200);
    assert.ok(await c.waitClosed(5000 * SLOW), 'connection stayed open after Connection: close');
  } finally {
    c.close();
  }
});

test('HTTP/1.0 without keep-alive is answered and closed', async () => {
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /old HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`);
    const res = await c.readFinal();
    assert.equal(res.status, 200);
    assert.equal(rawJson(res).url, '/old');
    assert.ok(await c.waitClosed(5000 * SLOW), 'HTTP/1.0 connection stayed open');
  } finally {
    c.close();
  }
});

test('upstream connections are pooled across requests', async () => {
  const before = echo.stats.connections;
  // sequential requests on one client connection
  const c = await RawConn.open(sy.port);
  try {
    for (let i = 0; i < 30; i++) {
      await c.send(`GET /pool/${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      assert.equal((await c.readFinal()).status, 200);
    }
  } finally {
    c.close();
  }
  // and sequential requests on fresh client connections
  for (let i = 0; i < 30; i++) {
    assert.equal((await httpRequest({ port: sy.port, path: `/pool2/${i}` })).status, 200);
  }
  const opened = echo.stats.connections - before;
  assert.ok(opened <= 6, `60 sequential requests opened ${opened} upstream connections`);
});

test('concurrent keep-alive clients all get their own answers', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const jobs = [];
    for (let i = 0; i < 200; i++) {
      jobs.push(
        httpRequest({ port: sy.port, path: `/many/${i}`, agent, method: 'POST', body: `payload-${i}` }).then((r) => {
          assert.equal(r.status, 200);
          const j = r.json();
          assert.equal(j.url, `/many/${i}`);
          assert.equal(j.body_bytes, `payload-${i}`.length);
        }),
      );
    }
    await Promise.all(jobs);
  } finally {
    agent.destroy();
  }
});
