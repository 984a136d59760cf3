// dns-server.mjs: a small authoritative DNS server on loopback UDP for the
// resolver tests. It answers A and AAAA questions from a table the test
// changes while it runs (addresses and TTL per name), counts every
// question it gets, and can go silent or answer SERVFAIL, so the tests can
// watch switchyard's cache, refreshes and stale answers from outside.
import dgram from 'node:dgram';
import net from 'node:net';

function readName(buf, off) {
  const labels = [];
  for (;;) {
    const len = buf[off];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return { name: labels.join('.').toLowerCase(), next: off + 1 };
    if ((len & 0xc0) !== 0) throw new Error('compressed name in question');
    labels.push(buf.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
}

function ipBytes(ip) {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // expand IPv6
  let [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const fill = ip.includes('::') ? new Array(8 - h.length - t.length).fill('0') : [];
  const groups = [...h, ...fill, ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export async function startDnsServer() {
  const sock = dgram.createSocket('udp4');
  const zone = new Map(); // name -> { addrs: [...], ttl }
  const queries = []; // { name, type }
  let mode = 'answer'; // 'answer' | 'silent' | 'servfail'

  sock.on('message', (msg, rinfo) => {
    let q;
    try {
      if (msg.length < 12) return;
      const qd = msg.readUInt16BE(4);
      if (qd !== 1) return;
      const { name, next } = readName(msg, 12);
      const type = msg.readUInt16BE(next);
      q = { id: msg.readUInt16BE(0), name, type, question: msg.subarray(12, next + 4), rd: msg[2] & 1 };
    } catch {
      return;
    }
    queries.push({ name: q.name, type: q.type === 1 ? 'A' : q.type === 28 ? 'AAAA' : String(q.type) });
    if (mode === 'silent') return;
    const entry = zone.get(q.name);
    let rcode = 0;
    const answers = [];
    if (mode === 'servfail') rcode = 2;
    else if (!entry) rcode = 3; // NXDOMAIN
    else {
      for (const ip of entry.addrs) {
        if ((q.type === 1 && net.isIPv4(ip)) || (q.type === 28 && net.isIPv6(ip))) {
          const rdata = ipBytes(ip);
          const rr = Buffer.alloc(12);
          rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
          rr.writeUInt16BE(q.type, 2);
          rr.writeUInt16BE(1, 4); // IN
          rr.writeUInt32BE(entry.ttl, 6);
          rr.writeUInt16BE(rdata.length, 10);
          answers.push(Buffer.concat([rr, rdata]));
        }
      }
    }
    const header = Buffer.alloc(12);
    header.writeUInt16BE(q.id, 0);
    header[2] = 0x84 | q.rd; // QR, AA, RD copied
    header[3] = 0x80 | rcode; // RA
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    sock.send(Buffer.concat([header, q.question, ...answers]), rinfo.port, rinfo.address);
  });

  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const { port } = sock.address();
  return {
    port,
    address: `127.0.0.1:${port}`,
    set(name, addrs, ttl = 60) {
      zone.set(name.toLowerCase(), { addrs, ttl });
    },
    setMode(m) {
      mode = m;
    },
    // Questions asked about name (every type), or all of them.
    count(name) {
      return name ? queries.filter((x) => x.name === name.toLowerCase()).length : queries.length;
    },
    close() {
      return new Promise((resolve) => sock.close(resolve));
    },
  };
}
