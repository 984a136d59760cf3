// Heads that arrive in many small pieces, both ways. The parser resumes
// where the previous read stopped (src/http/parser.h, sy_http_head_state_t),
// so switchyard parses on every read: a limit trips at the byte that reaches
// it, a keep-alive connection's next head starts from a fresh parse state,
// and an upstream that writes its response head a byte at a time (after an
// interim 103) is read like one that writes it at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEcho } from '../../examples/echo-backend.mjs';
import { startSwitchyard, makePolicy, route, sleep, HOST, SLOW } from './lib/harness.mjs';
import { RawConn, rawJson } from './lib/rawhttp.mjs';

const LINE_LIMIT = 1000;
let echo, slowBackend, sy;

// Answers every request with an interim 103 and a final 200 whose head it
// writes one byte per packet.
function startSlowBackend() {
  return new Promise((resolve) => {
    const server = net.createServer((sock) => {
      sock.setNoDelay(true);
      sock.on('error', () => {});
      let buf = Buffer.alloc(0);
      sock.on('data', async (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        buf = buf.subarray(end + 4);
        const body = 'trickled';
        let head = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n';
        head += `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Slow: yes\r\n`;
        for (let i = 0; i < 20; i++) head += `X-Filler-${i}: ${'f'.repeat(30)}\r\n`;
        head += `Content-Length: ${body.length}\r\n\r\n`;
        for (let i = 0; i < head.length; i++) {
          if (sock.destroyed) return;
          sock.write(head[i]);
          await sleep(1);
        }
        sock.write(body);
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

before(async () => {
  echo = await startEcho({ name: 'trickle' });
  slowBackend = await startSlowBackend();
  const slowPort = slowBackend.address().port;
  sy = await startSwitchyard({
    policy: makePolicy({
      ports: [echo.port, slowPort],
      limits: { max_request_line_bytes: LINE_LIMIT, max_header_bytes: 32768, max_headers: 150, max_body_bytes: 1048576 },
    }),
    routes: [route('/slow', slowPort), route('/', echo.port)],
    workers: 1,
  });
});

after(async () => {
  if (sy) await sy.stopClean();
  slowBackend?.close();
  await echo?.close();
});

test('a request line trickled in pieces is refused (414) when the limit is reached, with no line end yet', async () => {
  // 1000 bytes in 10 packets: no CRLF, and not a KiB boundary either (the
  // old reader parsed only at line ends or every KiB, and waited for more).
  const line = `GET /${'a'.repeat(LINE_LIMIT)}`.slice(0, LINE_LIMIT);
  const c = await RawConn.open(sy.port);
  try {
    for (let i = 0; i < LINE_LIMIT; i += 100) {
      await c.send(line.slice(i, i + 100));
      await sleep(2);
    }
    const res = await c.readFinal({ timeout: 8000 * SLOW });
    assert.ok(res, 'no answer');
    assert.equal(res.status, 414);
  } finally {
    c.close();
  }
});

test('a 100-line head sent a line per packet, then one sent a byte per packet on the same connection', async () => {
  let fields = '';
  for (let i = 0; i < 100; i++) fields += `X-Line-${i}: value-${i}\r\n`;
  const first = `GET /lines/1 HTTP/1.1\r\nHost: ${HOST}\r\n${fields}\r\n`;
  const second = `GET /bytes/2?q=1 HTTP/1.1\r\nHost: ${HOST}\r\nX-Second: yes\r\n\r\n`;
  const c = await RawConn.open(sy.port);
  try {
    for (const l of first.split(/(?<=\r\n)/)) {
      await c.send(l);
      await sleep(1);
    }
    let res = await c.readFinal();
    assert.equal(res.status, 200);
    let j = rawJson(res);
    assert.equal(j.url, '/lines/1');
    for (let i = 0; i < 100; i++) assert.ok(j.headers.some(([k, v]) => k === `X-Line-${i}` && v === `value-${i}`), `X-Line-${i} forwarded`);

    for (let i = 0; i < second.length; i++) {
      await c.send(second[i]);
      await sleep(1);
    }
    res = await c.readFinal();
    assert.equal(res.status, 200);
    j = rawJson(res);
    assert.equal(j.url, '/bytes/2?q=1');
    assert.ok(j.headers.some(([k, v]) => k === 'X-Second' && v === 'yes'));
    assert.ok(!j.headers.some(([k]) => k.startsWith('X-Line-')), 'nothing of the first head leaks into the second');
  } finally {
    c.close();
  }
});

test('an upstream response head written a byte per packet, after a 103, is proxied whole', async () => {
  for (let round = 0; round < 2; round++) {
    const c = await RawConn.open(sy.port);
    try {
      await c.send(`GET /slow/${round} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      const res = await c.readFinal({ timeout: 20000 * SLOW });
      assert.ok(res, 'no answer');
      assert.equal(res.status, 200);
      assert.equal(res.header('x-slow'), 'yes');
      assert.equal(res.header('x-filler-19'), 'f'.repeat(30));
      assert.equal(res.body.toString(), 'trickled');
    } finally {
      c.close();
    }
  }
});
