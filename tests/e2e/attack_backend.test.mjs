// Attack: a hostile backend (docs/security.md, "A compromised backend"). A
// raw TCP server answers each request path with a crafted response: header
// injection through a bare CR, LF-only lines, conflicting or signed
// lengths, framing headers in "_" spelling, obs-fold, NUL bytes, an endless
// head, bogus status lines and versions, an unasked 101 followed by a
// request, chunk sizes that overflow, hop-by-hop headers, headers it names
// in Connection, and a second response smuggled after the first. Each
// malformed one must be a 502 without anything of it reaching the client,
// and a smuggled response must never answer the client's next request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSwitchyard, makePolicy, route, HOST } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';

const RESPONSES = {
  // malformed: 502, nothing forwarded
  split: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\rSet-Cookie: evil=1\r\n\r\nok',
  lfonly: 'HTTP/1.1 200 OK\nContent-Length: 2\nSet-Cookie: evil=1\n\nok',
  clte: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  twocl: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
  negcl: 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok',
  pluscl: 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok',
  hugecl: 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nok',
  nul: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\x00b\r\n\r\nok',
  obsfold: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=b\r\n evil=1\r\n\r\nok',
  spacecolon: 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok',
  nocolon: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie evil\r\n\r\nok',
  status999: 'HTTP/1.1 999 OK\r\nContent-Length: 2\r\n\r\nok',
  status1000: 'HTTP/1.1 1000 OK\r\nContent-Length: 2\r\n\r\nok',
  version: 'HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
  tegzip: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  chunkedgzip: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok',
  chunkoverflow: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nok\r\n0\r\n\r\n',
  upgrade101: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /x HTTP/1.1\r\nHost: evil\r\n\r\n',
  bighead: `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: ${'a'.repeat(200000)}\r\n\r\nok`,
  manyheaders: `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${'X-H: 1\r\n'.repeat(5000)}\r\nok`,
  // well-formed but hostile: forwarded without what is hop-by-hop
  hop: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=1\r\nUpgrade: h2c\r\nTrailer: X-T\r\nProxy-Connection: close\r\nConnection: Set-Cookie, X-Named\r\nSet-Cookie: a=b\r\nX-Named: 1\r\nX-Kept: yes\r\n\r\nok',
  smuggle: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nSMUGGLE',
  second: 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond',
};

let backend, sy;

before(async () => {
  backend = net.createServer((s) => {
    let buf = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /^[A-Z]+ \/([a-z0-9]+)/.exec(buf)[1];
        buf = buf.slice(end + 4);
        s.write(Buffer.from(RESPONSES[key], 'latin1'));
      }
    });
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const port = backend.address().port;
  sy = await startSwitchyard({ policy: makePolicy({ ports: [port] }), routes: [route('/', port)], workers: 1 });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
});

async function exchange(conn, key) {
  await conn.send(`GET /${key} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  return conn.readFinal({ timeout: 10000 });
}

for (const key of Object.keys(RESPONSES).filter((k) => !['hop', 'smuggle', 'second'].includes(k))) {
  test(`a malformed upstream response (${key}) is a 502 and nothing of it reaches the client`, async () => {
    const c = await RawConn.open(sy.port);
    try {
      const res = await exchange(c, key);
      assert.equal(res.status, 502, `${key}: ${res.status} ${res.body}`);
      assert.equal(res.header('set-cookie'), undefined);
      assert.equal(res.header('upgrade'), undefined);
      assert.doesNotMatch(res.body.toString('latin1'), /evil|ok$/);
    } finally {
      c.close();
    }
  });
}

test('hop-by-hop headers and headers the backend names in Connection are removed; others kept', async () => {
  const c = await RawConn.open(sy.port);
  try {
    const res = await exchange(c, 'hop');
    assert.equal(res.status, 200);
    for (const h of ['keep-alive', 'upgrade', 'trailer', 'proxy-connection', 'set-cookie', 'x-named']) {
      assert.equal(res.header(h), undefined, `${h} crossed the hop`);
    }
    assert.equal(res.header('x-kept'), 'yes');
  } finally {
    c.close();
  }
});

test('a response smuggled after the first never answers the next request', async () => {
  const c = await RawConn.open(sy.port);
  try {
    const first = await exchange(c, 'smuggle');
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), 'ok');
    for (let i = 0; i < 3; i++) {
      const next = await exchange(c, 'second');
      assert.equal(next.status, 200);
      assert.equal(next.body.toString(), 'second', 'the smuggled response answered a later request');
    }
  } finally {
    c.close();
  }
});
