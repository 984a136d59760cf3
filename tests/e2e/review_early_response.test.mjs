// An upstream that answers before it has read the request body (a 200 or
// a 413 sent as soon as the head arrives) must never make switchyard take
// the tail of that body for the client's next request, nor pool an upstream
// connection that still has a request write in flight (SPEC §5.1, §5.6,
// §5.8). The race: the upstream's complete answer and the client's last body
// bytes reach switchyard in the same event-loop turn, so the answer's write
// to the client completes before the write carrying the body has called
// back. The test makes that
// turn happen for sure by stopping switchyard (SIGSTOP) while both arrive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSwitchyard, makePolicy, route, HOST, SLOW, sleep } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';

let backend, sy;
const seen = []; // request targets the backend received as requests
let onEarlyHead = null; // the test's hook: runs when /early's head arrives

// A raw backend: answers /early as soon as its head is in (before the body)
// and anything else normally; skips request bodies by Content-Length.
function startBackend() {
  return new Promise((resolve) => {
    const server = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      let skip = 0;
      sock.on('error', () => {});
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (skip > 0) {
            const n = Math.min(skip, buf.length);
            buf = buf.subarray(n);
            skip -= n;
            if (skip > 0) return;
          }
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          buf = buf.subarray(end + 4);
          const target = head.split(' ')[1];
          seen.push(target);
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          skip = m ? Number(m[1]) : 0;
          const answer = `HTTP/1.1 200 OK\r\nContent-Length: ${target.length}\r\n\r\n${target}`;
          if (target === '/early' && onEarlyHead) {
            const hook = onEarlyHead;
            onEarlyHead = null;
            hook(() => sock.write(answer));
          } else {
            sock.write(answer);
          }
        }
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

before(async () => {
  backend = await startBackend();
  const port = backend.address().port;
  sy = await startSwitchyard({ policy: makePolicy({ ports: [port] }), routes: [route('/', port)], workers: 1 });
});

after(async () => {
  if (sy) await sy.stopClean();
  backend?.close();
});

test('the tail of a body answered early is never parsed as a request', async () => {
  const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
  for (let i = 0; i < 5; i++) {
    const c = await RawConn.open(sy.port);
    try {
      const bodySent = new Promise((resolve) => {
        onEarlyHead = async (answer) => {
          await sleep(50 * SLOW); // switchyard is now waiting for the body
          sy.proc.kill('SIGSTOP');
          try {
            await sleep(20);
            answer(); // the complete early answer first...
            await sleep(20);
            c.sock.write(Buffer.from(smuggled, 'latin1')); // ...then the body
            await sleep(20);
          } finally {
            sy.proc.kill('SIGCONT');
          }
          resolve();
        };
      });
      await c.send(`POST /early HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${smuggled.length}\r\n\r\n`);
      await bodySent;
      const res = await c.readFinal();
      assert.ok(res, `attempt ${i}: no answer`);
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), '/early');
      // A second answer on this connection would be one the client never
      // asked for.
      await sleep(50 * SLOW);
      assert.equal(c.buf.length, 0, `attempt ${i}: an unrequested answer arrived: ${c.buf.toString('latin1')}`);
    } finally {
      c.close();
    }
    assert.ok(!seen.includes('/smuggled'), `attempt ${i}: the body was forwarded as a request: ${seen.join(' ')}`);
  }
  // The connection pool still works after all that.
  const c = await RawConn.open(sy.port);
  try {
    await c.send(`GET /after HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    const res = await c.readFinal();
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), '/after');
  } finally {
    c.close();
  }
});
