// curl.mjs: runs the curl binary asynchronously (the echo backends live in
// the test process, so a synchronous spawn would block them and deadlock).
import { spawn } from 'node:child_process';
import { HOST, SLOW } from './harness.mjs';

/*
 * curl({port, path, args, host, timeoutMs, stdin}) -> {code, status,
 * stdout (Buffer), stderr}. Adds -sS, the Host header, and -w with the
 * status code on stderr's last line (so stdout stays the body).
 */
export function curl({ port, path = '/', args = [], host = HOST, timeoutMs = 60000 * SLOW, stdin } = {}) {
  const full = [
    '-sS',
    '--max-time', String(Math.ceil(timeoutMs / 1000)),
    '-H', `Host: ${host}`,
    '-w', '%{stderr}\nSTATUS=%{http_code}\n',
    ...args,
    `http://127.0.0.1:${port}${path}`,
  ];
  return new Promise((resolve, reject) => {
    const p = spawn('curl', full, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const m = /STATUS=(\d{3})\s*$/.exec(err);
      resolve({ code, status: m ? Number(m[1]) : 0, stdout: Buffer.concat(out), stderr: err, args: full });
    });
    if (stdin) {
      stdin.pipe(p.stdin);
      p.stdin.on('error', () => {});
    }
  });
}
