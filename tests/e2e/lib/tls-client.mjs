// tls-client.mjs: clients for switchyard's downstream HTTPS listener. curl
// is what an operator would try first, so the main checks use it (with the
// test CA and --resolve, the way a real name would be verified); node:tls
// covers what curl can't report in 7.88: the negotiated protocol version and
// ALPN, the presented certificate's serial, and a keep-alive connection
// held open across a SIGHUP (RawConn speaks HTTP over the TLS socket).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import tls from 'node:tls';
import { HOST, SLOW } from './harness.mjs';
import { RawConn } from './rawhttp.mjs';

/*
 * curl over HTTPS to https://HOST:port/path, HOST resolved to 127.0.0.1 and
 * verified against ca. Returns {code, status, stdout (Buffer), stderr,
 * args}. status is 0 when no response came.
 */
export function curlHttps({ port, path = '/', ca, args = [], host = HOST, timeoutMs = 20000 * SLOW } = {}) {
  const full = [
    '-sS',
    '--max-time', String(Math.ceil(timeoutMs / 1000)),
    ...(ca ? ['--cacert', ca] : []),
    '--resolve', `${host}:${port}:127.0.0.1`,
    '-w', '%{stderr}\nSTATUS=%{http_code}\n',
    ...args,
    `https://${host}:${port}${path}`,
  ];
  return new Promise((resolve, reject) => {
    const p = spawn('curl', full, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const all = [...err.matchAll(/STATUS=(\d{3})/g)];
      const status = all.length ? Number(all[all.length - 1][1]) : 0;
      resolve({ code, status, stdout: Buffer.concat(out), stderr: err, args: full, cmd: `curl ${full.join(' ')}` });
    });
  });
}

/*
 * Opens a TLS connection to 127.0.0.1:port. opts go to tls.connect
 * (minVersion, maxVersion, ALPNProtocols, ciphers, ...); ca is a PEM file;
 * servername defaults to HOST. Resolves with the TLSSocket once the
 * handshake is done, rejects on a handshake error or after timeoutMs.
 */
export function tlsConnect({ port, ca, servername = HOST, timeoutMs = 10000 * SLOW, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername, ...(ca ? { ca: fs.readFileSync(ca) } : {}), ...opts });
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`TLS handshake with 127.0.0.1:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('secureConnect', () => {
      clearTimeout(t);
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    sock.once('close', () => {
      clearTimeout(t);
      reject(new Error('connection closed during the TLS handshake'));
    });
  });
}

// A RawConn (HTTP/1.1 byte client) over a fresh TLS connection; .sock is
// the TLSSocket.
export async function tlsRawConn(opts) {
  const sock = await tlsConnect(opts);
  return new RawConn(sock);
}

// One GET on an open RawConn; the response (see rawhttp.mjs).
export async function rawGet(conn, path, { host = HOST, headers = {}, timeout = 20000 * SLOW } = {}) {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  await conn.send(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`);
  return conn.readFinal({ timeout });
}
