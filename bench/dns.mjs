// bench/dns.mjs: the DNS side of `make bench` (SCENARIOS=dns). switchyard
// resolves its upstream's name through a DNS server started here on
// loopback (tests/e2e/lib/dns-server.mjs, TTL 60 s, two addresses), and a
// backend that closes every connection after its answer forces a new
// upstream connection per request. wrk loads it for DURATION; the result
// is the DNS questions the server saw per 1,000 new upstream connections,
// beside the requests/s, as a markdown section on stdout.
//
// Usage: node bench/dns.mjs SWITCHYARD_BIN [DURATION] [CONNECTIONS]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDnsServer } from '../tests/e2e/lib/dns-server.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.argv[2] || path.join(repo, 'build/switchyard');
const duration = process.argv[3] || '10s';
const connections = process.argv[4] || '20';

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const dns = await startDnsServer();
dns.set('api.bench', ['127.0.0.2', '127.0.0.3'], 60);
const port = await freePort();
let hits = 0;
const backends = [];
for (const a of ['127.0.0.2', '127.0.0.3']) {
  const srv = http.createServer((req, res) => {
    hits++;
    res.setHeader('Connection', 'close');
    res.end('ok\n');
  });
  await new Promise((r) => srv.listen(port, a, r));
  backends.push(srv);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-dns-'));
fs.writeFileSync(path.join(dir, 'policy.json'), JSON.stringify({
  listen_domains: ['api.example.com'],
  destinations: [{ scheme: 'http', host: 'api.bench', port }],
  auth_policies: { public: { type: 'none' } },
  default_auth: 'public',
  allow_loopback_destinations: true,
}));
fs.writeFileSync(path.join(dir, 'routes.json'), JSON.stringify([{ path: '/', target: `http://api.bench:${port}` }]));
const listen = await freePort();
const admin = await freePort();
const sy = spawn(bin, ['serve', '--policy', path.join(dir, 'policy.json'), '--routes', path.join(dir, 'routes.json'),
  '--listen', `127.0.0.1:${listen}`, '--admin-listen', `127.0.0.1:${admin}`, '--workers', '1',
  '--access-log', 'off', '--log-level', 'warn', '--resolver', dns.address], { stdio: 'ignore' });
const stopAll = () => { try { sy.kill('SIGTERM'); } catch {} };
process.on('exit', stopAll);
for (let i = 0; i < 100; i++) {
  const ok = await new Promise((resolve) => {
    http.get({ port: admin, path: '/readyz' }, (r) => { r.resume(); resolve(r.statusCode === 200); }).on('error', () => resolve(false));
  });
  if (ok) break;
  await new Promise((r) => setTimeout(r, 100));
}
const before = dns.count('api.bench');
const hitsBefore = hits;
const wrkOut = await new Promise((resolve, reject) => {
  const w = spawn('wrk', ['-t1', `-c${connections}`, `-d${duration}`, '-H', 'Host: api.example.com',
    `http://127.0.0.1:${listen}/`]);
  let out = '';
  w.stdout.on('data', (d) => (out += d));
  w.on('error', reject);
  w.on('exit', () => resolve(out));
});
const rps = Number((/Requests\/sec:\s+([\d.]+)/.exec(wrkOut) || [])[1] || 0);
const non2xx = Number((/Non-2xx or 3xx responses:\s+(\d+)/.exec(wrkOut) || [])[1] || 0);
const conns = hits - hitsBefore;
const questions = dns.count('api.bench') - before;
stopAll();
await new Promise((r) => sy.once('exit', r));
for (const b of backends) b.close();
await dns.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log('## DNS: queries per new upstream connection');
console.log('');
console.log(`switchyard (1 worker) resolving its upstream \`api.bench\` (two addresses, TTL 60 s) through a DNS server on loopback; the backend closes every connection, so each request opens a new upstream connection. wrk \`-t1 -c${connections} -d${duration}\`.`);
console.log('');
console.log('| new upstream connections | DNS questions (A + AAAA) | questions per 1,000 connections | requests/s | non-2xx |');
console.log('|---:|---:|---:|---:|---:|');
console.log(`| ${conns} | ${questions} | ${conns ? ((questions * 1000) / conns).toFixed(2) : 'n/a'} | ${rps.toFixed(0)} | ${non2xx} |`);
console.log('');
console.log('Before the resolver (getaddrinfo per connection) this was 2,000 questions per 1,000 connections.');
