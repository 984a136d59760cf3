// fault-front.mjs: a fault-injecting HTTP front of our own, between
// switchyard and a store (or the store's verifying front). It passes
// requests through, counts them by DynamoDB operation (X-Amz-Target) or
// HTTP method, and on demand:
//  - hang: accepts each new request and never answers (the socket stays
//    open, as a store that accepts connections and then stalls);
//  - deny(operation): answers AccessDeniedException for that operation;
//  - rewrite(operation, answer): edits a DynamoDB JSON answer before it
//    reaches switchyard (a repeating LastEvaluatedKey, an item holding a
//    NUL byte, ...);
//  - respond(operation, req): answers a request itself (a clock-skew error,
//    throttling, ...);
//  - editHeaders(operation, status, headers): edits the headers of an answer
//    passed through (a new ETag for the same body, a server Date that is
//    off, ...).
// Every request is recorded in `seen` with when it arrived and, once
// answered, the status and the size of the body sent.
// Only loopback; answers are buffered so they can be rewritten.
import http from 'node:http';

export async function startFaultFront({ targetPort }) {
  const front = {
    calls: {},
    hang: false,
    deny: null, // (operation) => bool
    rewrite: null, // (operation, answerObject) => answerObject
    respond: null, // (operation, req) => {status, headers, body} to answer instead, or undefined
    editHeaders: null, // (operation, status, headers) => void, on answers passed through
    seen: [], // {op, method, amzDate, accessKeyId, at, status, bytes} of every request, in order
    hungSockets: new Set(),
  };
  const count = (op) => (front.calls[op] = (front.calls[op] || 0) + 1);
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const target = req.headers['x-amz-target'];
    const op = target ? target.replace(/^DynamoDB_20120810\./, '') : req.method;
    count(op);
    const key = /Credential=([^/]+)\//.exec(req.headers.authorization || '');
    const entry = { op, method: req.method, amzDate: req.headers['x-amz-date'], accessKeyId: key && key[1], at: Date.now(), status: 0, bytes: 0 };
    front.seen.push(entry);
    const own = front.respond && front.respond(op, req);
    if (own) {
      entry.status = own.status;
      entry.bytes = Buffer.byteLength(own.body || '');
      res.writeHead(own.status, own.headers || {});
      return res.end(own.body || '');
    }
    if (front.hang) {
      front.hungSockets.add(req.socket);
      req.socket.on('close', () => front.hungSockets.delete(req.socket));
      return; // never answered
    }
    if (front.deny && front.deny(op)) {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      return res.end(JSON.stringify({
        __type: 'com.amazon.coral.service#AccessDeniedException',
        message: `User: arn:aws:sts::123456789012:assumed-role/pipeline/ci is not authorized to perform: dynamodb:${op} on resource: table`,
      }));
    }
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, async (ur) => {
      const parts = [];
      for await (const c of ur) parts.push(c);
      let out = Buffer.concat(parts);
      const headers = { ...ur.headers };
      if (front.rewrite && target && ur.statusCode === 200) {
        const edited = front.rewrite(op, JSON.parse(out.toString('utf8')));
        if (edited !== undefined) {
          out = Buffer.from(JSON.stringify(edited));
          delete headers['x-amz-crc32'];
        }
      }
      delete headers['transfer-encoding'];
      headers['content-length'] = String(out.length);
      if (front.editHeaders) front.editHeaders(op, ur.statusCode, headers);
      entry.status = ur.statusCode;
      entry.bytes = out.length;
      res.writeHead(ur.statusCode, headers);
      res.end(out);
    });
    up.on('error', (e) => res.destroy(e));
    up.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  front.port = server.address().port;
  front.url = `http://127.0.0.1:${front.port}`;
  front.release = () => {
    front.hang = false;
    for (const s of front.hungSockets) s.destroy();
    front.hungSockets.clear();
  };
  front.close = () => new Promise((r) => {
    front.release();
    server.closeAllConnections?.();
    server.close(r);
  });
  return front;
}
