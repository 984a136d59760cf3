// tls-backend.mjs: an HTTPS upstream for the TLS end-to-end tests, standing
// in for a private API Gateway behind a VPC endpoint. It presents whatever
// certificate the test issued and records, per request, what only the
// upstream can see: the SNI name the client sent, the Host and
// x-apigw-api-id headers (every copy, from the raw header list), the target,
// and the TLS socket's remote port and whether its session was resumed. That
// is how a test proves which name switchyard asked for, that it pooled
// connections (distinct remote ports) and that it resumed sessions.
import fs from 'node:fs';
import https from 'node:https';

function pairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function values(hdrs, name) {
  return hdrs.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
}

/*
 * startTlsBackend({cert, key, keepAliveTimeout, idleCloseMs, tlsOptions}) ->
 * {port, requests: [...], handshakes: {full, resumed, failed, errors},
 *  remotePorts(), close()}. Each request answers 200 with a JSON echo of
 * the record: {servername, host: [...], api_id: [...], url, method,
 * remote_port, reused, protocol, headers}. idleCloseMs closes (with
 * close_notify) a connection that stays idle that long after a response:
 * node's own keepAliveTimeout lets a socket live about a second longer
 * than asked, too loose for a test that waits for idle closes.
 */
export async function startTlsBackend({ cert, key, keepAliveTimeout = 120000, idleCloseMs = 0, tlsOptions = {} } = {}) {
  const requests = [];
  const handshakes = { full: 0, resumed: 0, failed: 0, errors: [] };
  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), ...tlsOptions }, (req, res) => {
    const hdrs = pairs(req.rawHeaders);
    const rec = {
      servername: req.socket.servername || null,
      host: values(hdrs, 'host'),
      api_id: values(hdrs, 'x-apigw-api-id'),
      url: req.url,
      method: req.method,
      remote_port: req.socket.remotePort,
      reused: req.socket.isSessionReused(),
      protocol: req.socket.getProtocol(),
      headers: hdrs,
    };
    requests.push(rec);
    clearTimeout(req.socket.syIdleTimer);
    req.resume();
    if (idleCloseMs > 0) {
      res.on('finish', () => {
        req.socket.syIdleTimer = setTimeout(() => req.socket.end(), idleCloseMs).unref();
      });
    }
    req.on('end', () => {
      const body = Buffer.from(JSON.stringify(rec));
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
      res.end(body);
    });
  });
  server.keepAliveTimeout = keepAliveTimeout;
  server.on('secureConnection', (s) => {
    if (s.isSessionReused()) handshakes.resumed++;
    else handshakes.full++;
  });
  server.on('tlsClientError', (e) => {
    handshakes.failed++;
    handshakes.errors.push(e.message);
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    requests,
    handshakes,
    remotePorts: () => new Set(requests.map((r) => r.remote_port)),
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
