// bench/idle.mjs: the idle scenario of `make bench` (SCENARIOS=idle). What
// an idle keep-alive client connection costs a proxy: COUNT connections are
// opened to it, each sends one small GET, reads the answer and then stays
// open, idle. The proxy's resident memory (VmRSS summed over its process
// tree, as bench/run.sh measures it) is read before and after; the growth
// divided by COUNT is the cost of one idle connection. Kernel socket memory
// is not in RSS, so it is left out alike for every proxy.
//
// Before measuring, WARMUP connections in the same batches are opened and
// closed, so the proxy's free lists and pools are as warm as under traffic
// and only what an idle connection keeps is counted.
//
// Usage: node bench/idle.mjs PID PORT COUNT TLS(0|1) [HOST_HEADER] [PATH]
// Prints one JSON line: {count, tls, before_kb, after_kb, bytes_per_conn}.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [pid, port, countArg, tlsArg, host = 'api.example.com', path = '/bench'] = process.argv.slice(2);
const COUNT = Number(countArg);
const TLS = tlsArg === '1';
const BATCH = 50;
const WARMUP = 2 * BATCH;
const REQUEST = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

function treePids(root) {
  const pids = [String(root)];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (ppid === String(root)) pids.push(d);
    } catch {
      /* gone */
    }
  }
  return pids;
}

function rssKb(root) {
  let total = 0;
  for (const p of treePids(root)) {
    try {
      const m = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return total;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One connection, one request, the whole answer read; resolves with the
// open socket.
function openOne() {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port: Number(port) };
    const sock = TLS ? tls.connect({ ...opts, rejectUnauthorized: false }) : net.connect(opts);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within 20 s on port ${port}`));
    }, 20000);
    sock.once(TLS ? 'secureConnect' : 'connect', () => sock.write(REQUEST));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!/^HTTP\/1\.1 200 /.test(head) || !m) {
        sock.destroy();
        clearTimeout(timer);
        reject(new Error(`unexpected answer: ${head.split('\r\n')[0]}`));
        return;
      }
      if (buf.length >= end + 4 + Number(m[1])) {
        clearTimeout(timer);
        sock.removeAllListeners('data');
        sock.on('data', () => {});
        resolve(sock);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function openMany(n) {
  const socks = [];
  for (let i = 0; i < n; i += BATCH) {
    const k = Math.min(BATCH, n - i);
    socks.push(...(await Promise.all(Array.from({ length: k }, openOne))));
  }
  return socks;
}

async function closeAll(socks) {
  await Promise.all(socks.map((s) => new Promise((r) => {
    if (s.destroyed) return r();
    s.once('close', r);
    s.destroy();
  })));
}

await closeAll(await openMany(WARMUP));
await sleep(1000);
const before = rssKb(pid);
const socks = await openMany(COUNT);
await sleep(1000); // let the proxy settle: every answer written, every buffer back
const after = rssKb(pid);
const closed = socks.filter((s) => s.destroyed).length;
await closeAll(socks);
if (closed > 0) {
  console.error(`idle: ${closed} of ${COUNT} connections were closed by the proxy before the measurement`);
  process.exit(1);
}
console.log(JSON.stringify({
  count: COUNT,
  tls: TLS,
  before_kb: before,
  after_kb: after,
  bytes_per_conn: Math.round(((after - before) * 1024) / COUNT),
}));
