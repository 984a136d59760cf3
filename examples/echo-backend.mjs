#!/usr/bin/env node
// echo-backend.mjs: the small HTTP backend that `make run` puts behind
// switchyard and that the end-to-end tests use as their upstream. It answers
// every request with what it received (method, target, raw headers in order
// and with duplicates, a sha256 of the body), so a test can see exactly what
// switchyard forwarded. Bodies are hashed as they stream, never buffered, so
// multi-megabyte uploads cost no memory. A few paths shape the answer:
//
//   /download?bytes=N[&chunked=1]  N deterministic bytes (patternStream)
//   /slow?ms=N                     waits N ms, then echoes
//   /status?code=N                 answers with that status
//   /close?bytes=N                 HTTP/1.0-style body delimited by close
//   /pause-read?ms=N               stops reading the request body for N ms
//   /hop                           a response carrying hop-by-hop headers
//   /bad-response?kind=K           a broken answer (see BAD_RESPONSES)
//   /__stats                       counters (not counted themselves)
//
// Usage: node examples/echo-backend.mjs --port N [--name NAME]
// (port 0 picks a free one; the chosen port is printed as {"port": N}).
// Importable: startEcho({port, name, keepAliveTimeout}) ->
// Promise<{server, port, stats, close}>.
import http from 'node:http';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

// The download body repeats a block of a prime length, so a dropped or
// duplicated buffer (always a power-of-two size in practice) changes the
// hash instead of lining up with the period.
const PATTERN_PERIOD = 65521;
const PATTERN_BLOCK = (() => {
  const out = Buffer.alloc(PATTERN_PERIOD);
  let off = 0;
  for (let i = 0; off < PATTERN_PERIOD; i++) {
    const h = crypto.createHash('sha256').update(`switchyard-pattern-${i}`).digest();
    off += h.copy(out, off);
  }
  return out;
})();

// The bytes [offset, offset + length) of the pattern stream.
export function patternSlice(offset, length) {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const at = (offset + done) % PATTERN_PERIOD;
    done += PATTERN_BLOCK.copy(out, done, at, Math.min(PATTERN_PERIOD, at + (length - done)));
  }
  return out;
}

// sha256 (hex) of the first n pattern bytes, computed without holding them.
export function patternSha256(n) {
  const h = crypto.createHash('sha256');
  const step = PATTERN_PERIOD * 16;
  for (let off = 0; off < n; off += step) h.update(patternSlice(off, Math.min(step, n - off)));
  return h.digest('hex');
}

// Broken answers an upstream can give; the router must turn each into 502
// (or, once the head is out, a closed client connection).
const BAD_RESPONSES = {
  garbage: 'this is not http\r\n\r\n',
  'bad-status': 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n',
  'dup-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  'cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'bad-header': 'HTTP/1.1 200 OK\r\nX-Bad : yes\r\nContent-Length: 0\r\n\r\n',
  'nul-header': 'HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 0\r\n\r\n',
  'obs-fold': 'HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n',
  // after a valid head: the client sees a short body and a closed connection
  truncate: 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly-this',
  'bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n',
  reset: null, // closes without a byte
};
export const BAD_RESPONSE_KINDS = Object.keys(BAD_RESPONSES);

function pairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

// Writes n pattern bytes to a writable, respecting backpressure.
function writePattern(stream, n, done) {
  let off = 0;
  const step = 256 * 1024;
  const pump = () => {
    while (off < n) {
      const len = Math.min(step, n - off);
      const chunk = patternSlice(off, len);
      off += len;
      if (!stream.write(chunk)) {
        stream.once('drain', pump);
        return;
      }
    }
    done();
  };
  pump();
}

export function startEcho({ port = 0, host = '127.0.0.1', name = 'echo', keepAliveTimeout = 120000 } = {}) {
  const stats = {
    requests: 0, // 'request' events: the headers reached us
    completed: [], // {url, method, bytes} for every request whose body ended
    connections: 0,
    remotePorts: new Set(),
    urls: [],
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/__stats') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ ...stats, remotePorts: [...stats.remotePorts] }));
      return;
    }
    stats.requests++;
    stats.urls.push(req.url);
    stats.remotePorts.add(req.socket.remotePort);
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('error', () => {});
    res.on('error', () => {});
    if (url.pathname.endsWith('/pause-read')) {
      // a backend that stops reading the body for a while (backpressure)
      req.pause();
      setTimeout(() => req.resume(), Number(url.searchParams.get('ms') || 2000));
    }
    req.on('end', () => {
      stats.completed.push({ url: req.url, method: req.method, bytes });
      const echo = {
        name,
        method: req.method,
        url: req.url,
        http_version: req.httpVersion,
        headers: pairs(req.rawHeaders),
        body_sha256: hash.digest('hex'),
        body_bytes: bytes,
        remote_port: req.socket.remotePort,
      };
      respond(req, res, url, echo);
    });
  });
  const respond = (req, res, url, echo) => {
    const q = url.searchParams;
    const sendJson = (status, obj, extra = {}) => {
      const body = Buffer.from(JSON.stringify(obj));
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...extra });
      res.end(body);
    };
    if (url.pathname.endsWith('/download')) {
      const n = Number(q.get('bytes') || 0);
      const headers = { 'Content-Type': 'application/octet-stream', 'X-Echo-Name': name };
      if (q.get('chunked') !== '1') headers['Content-Length'] = n;
      res.writeHead(200, headers);
      if (req.method === 'HEAD') return res.end();
      writePattern(res, n, () => res.end());
      return;
    }
    if (url.pathname.endsWith('/slow')) {
      const t = setTimeout(() => sendJson(200, echo), Number(q.get('ms') || 1000));
      res.on('close', () => clearTimeout(t));
      return;
    }
    if (url.pathname.endsWith('/status')) {
      const code = Number(q.get('code') || 200);
      if (code === 204 || code === 304 || req.method === 'HEAD') {
        res.writeHead(code, { 'X-Echo-Name': name });
        return res.end();
      }
      return sendJson(code, echo);
    }
    if (url.pathname.endsWith('/close')) {
      // Raw bytes: a body with neither Content-Length nor chunked framing,
      // ended by closing the connection.
      const n = Number(q.get('bytes') || 1000);
      const sock = req.socket;
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n');
      writePattern(sock, n, () => sock.end());
      return;
    }
    if (url.pathname.endsWith('/bad-response')) {
      const kind = q.get('kind');
      const sock = req.socket;
      if (BAD_RESPONSES[kind]) sock.end(Buffer.from(BAD_RESPONSES[kind], 'latin1'));
      else sock.destroy();
      return;
    }
    if (url.pathname.endsWith('/hop')) {
      const body = Buffer.from(JSON.stringify(echo));
      const sock = req.socket;
      sock.write(
        'HTTP/1.1 200 OK\r\n' +
          'Content-Type: application/json\r\n' +
          `Content-Length: ${body.length}\r\n` +
          'Connection: close, X-Hop-Secret\r\n' +
          'X-Hop-Secret: must-not-pass\r\n' +
          'Keep-Alive: timeout=5\r\n' +
          'Proxy-Connection: keep-alive\r\n' +
          'Trailer: X-Trailer-Thing\r\n' +
          'Upgrade: h2c\r\n' +
          'X-Custom-Resp: kept\r\n' +
          'Set-Cookie: a=1; Path=/\r\n' +
          'Set-Cookie: b=2; Path=/; HttpOnly\r\n' +
          'Cache-Control: no-store\r\n' +
          '\r\n',
      );
      sock.end(body);
      return;
    }
    sendJson(200, echo, { 'X-Echo-Name': name });
  };
  server.on('connection', (sock) => {
    stats.connections++;
    sock.on('error', () => {});
  });
  server.on('clientError', (err, sock) => sock.destroy());
  // Keep pooled upstream connections open longer than the router's idle
  // timeout so the router, not the backend, decides when they close.
  // (a test passes a short keepAliveTimeout to make the backend close first)
  server.keepAliveTimeout = keepAliveTimeout;
  server.headersTimeout = Math.max(keepAliveTimeout + 10000, 60000);
  server.requestTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const chosen = server.address().port;
      resolve({
        server,
        port: chosen,
        name,
        stats,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

function parseArgs(argv) {
  const out = { port: 0, name: 'echo' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--name') out.name = argv[++i];
    else if (a === '--host') out.host = argv[++i];
    else {
      process.stderr.write(`echo-backend: unknown option ${a}\nusage: echo-backend.mjs --port N [--name NAME] [--host ADDR]\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    process.stderr.write('echo-backend: --port must be 0..65535\n');
    process.exit(2);
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  const opts = parseArgs(process.argv.slice(2));
  const echo = await startEcho(opts);
  process.stdout.write(JSON.stringify({ port: echo.port, name: echo.name }) + '\n');
  const stop = () => echo.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
