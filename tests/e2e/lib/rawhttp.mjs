// rawhttp.mjs: a byte-exact HTTP/1.1 client for the tests. It sends exactly
// the bytes given (malformed ones included) and parses what comes back
// without the tolerance or strictness of a real client: status line, raw
// header pairs, and a body framed by Content-Length, chunked or close.
import net from 'node:net';
import { SLOW } from './harness.mjs';

export class RawConn {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.error = null;
    this.waiters = [];
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this._wake();
    });
    sock.on('error', (e) => {
      this.error = e;
      this._wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this._wake();
    });
  }

  static open(port, host = '127.0.0.1', timeout = 10000 * SLOW) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host });
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${port} timed out`));
      }, timeout);
      sock.once('connect', () => {
        clearTimeout(t);
        sock.setNoDelay(true);
        resolve(new RawConn(sock));
      });
      sock.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  // Resolves when new data arrives, the peer closes, or ms pass (false).
  _wait(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  // Sends bytes (string as latin1); a write error is kept, not thrown, since
  // a server that rejects early may close before we finish writing.
  send(bytes) {
    if (this.closed || this.sock.destroyed) return Promise.resolve(false);
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    return new Promise((resolve) => {
      this.sock.write(b, (err) => resolve(!err));
    });
  }

  // Half-closes our side: the server sees EOF after what we sent.
  endWrite() {
    if (!this.sock.destroyed) this.sock.end();
  }

  close() {
    this.sock.destroy();
  }

  async _until(check, deadline, what) {
    for (;;) {
      const r = check();
      if (r !== undefined) return r;
      if (this.closed || (this.error && this.sock.destroyed)) {
        const again = check(true);
        if (again !== undefined) return again;
        return null;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; have ${this.buf.length} bytes: ${JSON.stringify(this.buf.subarray(0, 300).toString('latin1'))}`);
      await this._wait(left);
    }
  }

  /*
   * Reads one response. Returns null when the connection closed before a
   * complete status line + headers arrived. method HEAD (or status 1xx, 204,
   * 304) means no body. Result: {status, reason, version, headers (pairs),
   * body (Buffer), framing: 'length'|'chunked'|'close'|'none', trailers}.
   */
  async readResponse({ method = 'GET', timeout = 20000 * SLOW } = {}) {
    const deadline = Date.now() + timeout;
    const headEnd = await this._until(
      () => {
        const i = this.buf.indexOf('\r\n\r\n');
        return i >= 0 ? i : undefined;
      },
      deadline,
      'response head',
    );
    if (headEnd === null) return null;
    const head = this.buf.subarray(0, headEnd).toString('latin1');
    this.buf = this.buf.subarray(headEnd + 4);
    const lines = head.split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const status = Number(m[2]);
    const headers = lines.slice(1).map((l) => {
      const c = l.indexOf(':');
      return [l.slice(0, c), l.slice(c + 1).trim()];
    });
    const res = { status, reason: m[3] || '', version: m[1], headers, body: Buffer.alloc(0), framing: 'none', trailers: [] };
    res.header = (n) => {
      const v = headers.filter(([k]) => k.toLowerCase() === n.toLowerCase()).map(([, x]) => x);
      return v.length ? v.join(', ') : undefined;
    };
    if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) return res;
    const te = res.header('transfer-encoding');
    const cl = res.header('content-length');
    if (te && /chunked\s*$/i.test(te)) {
      res.framing = 'chunked';
      const parts = [];
      for (;;) {
        const lineEnd = await this._until(() => {
          const i = this.buf.indexOf('\r\n');
          return i >= 0 ? i : undefined;
        }, deadline, 'chunk size');
        if (lineEnd === null) throw new Error('connection closed inside chunked body');
        const size = parseInt(this.buf.subarray(0, lineEnd).toString('latin1').split(';')[0], 16);
        this.buf = this.buf.subarray(lineEnd + 2);
        if (size === 0) {
          for (;;) {
            const e = await this._until(() => {
              const i = this.buf.indexOf('\r\n');
              return i >= 0 ? i : undefined;
            }, deadline, 'trailer');
            if (e === null) throw new Error('connection closed inside trailers');
            const line = this.buf.subarray(0, e).toString('latin1');
            this.buf = this.buf.subarray(e + 2);
            if (line === '') break;
            res.trailers.push(line);
          }
          break;
        }
        const got = await this._until(() => (this.buf.length >= size + 2 ? true : undefined), deadline, 'chunk data');
        if (got === null) throw new Error('connection closed inside chunk data');
        parts.push(this.buf.subarray(0, size));
        this.buf = this.buf.subarray(size + 2);
      }
      res.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      res.framing = 'length';
      const n = Number(cl);
      const got = await this._until(() => (this.buf.length >= n ? true : undefined), deadline, `body of ${n} bytes`);
      if (got === null) throw new Error(`connection closed after ${this.buf.length} of ${n} body bytes`);
      res.body = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
    } else {
      res.framing = 'close';
      await this._until((final) => (final ? true : undefined), deadline, 'close-delimited body');
      res.body = this.buf;
      this.buf = Buffer.alloc(0);
    }
    res.text = res.body.toString('utf8');
    return res;
  }

  // Reads the final response, skipping (and recording) 1xx interim ones.
  async readFinal(opts = {}) {
    const interim = [];
    for (;;) {
      const r = await this.readResponse(opts);
      if (!r || r.status >= 200 || r.status === 101) {
        if (r) r.interim = interim;
        return r;
      }
      interim.push(r);
    }
  }

  // True if the peer closed within ms (any unread bytes stay in buf).
  async waitClosed(ms = 5000 * SLOW) {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this._wait(left);
    }
    return true;
  }
}

/*
 * Opens a connection, sends bytes, half-closes when endWrite (so a server
 * waiting for more sees EOF), reads one response, closes. Returns
 * {res (or null), closed: whether the server closed afterwards}.
 */
export async function rawExchange(port, bytes, { method, timeout = 10000 * SLOW, endWrite = false, waitClose = 0 } = {}) {
  const c = await RawConn.open(port);
  try {
    await c.send(bytes);
    if (endWrite) c.endWrite();
    let res;
    try {
      res = await c.readFinal({ method, timeout });
    } catch (e) {
      if (/timeout/.test(e.message)) throw e;
      res = null; // reset mid-response counts as no answer
    }
    const closed = waitClose ? await c.waitClosed(waitClose) : c.closed;
    return { res, closed };
  } finally {
    c.close();
  }
}

// JSON body of a raw response (throws with context on failure).
export function rawJson(res) {
  try {
    return JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new Error(`not JSON (status ${res.status}): ${res.body.toString('utf8').slice(0, 500)}`);
  }
}
