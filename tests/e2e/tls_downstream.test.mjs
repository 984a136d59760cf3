// Issue 4, SPEC §1 `--tls-listen ADDR:PORT --tls-cert F --tls-key F`: the
// downstream HTTPS listener. It answers curl over HTTPS verified with a test
// CA made by openssl at test time, next to a plain --listen; the backend
// sees X-Forwarded-Proto https (http on the plain listener); ALPN picks
// http/1.1; TLS 1.2 and 1.3 work and 1.1 is refused; SIGHUP re-reads the
// certificate and key without dropping connections (new connections get
// the new certificate, a keep-alive connection and an in-flight request
// from before carry on), and a broken replacement keeps the old one. Bad
// TLS options are usage errors (exit 2). When the binary does not know
// --tls-listen yet, every test here fails saying so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { startEcho } from '../../examples/echo-backend.mjs';
import {
  startSwitchyard, makePolicy, route, get, headerValues, freePort, tempDir, runCli, eventually, sleep, jsonLines, writeJsonAtomic, HOST, SLOW,
} from './lib/harness.mjs';
import { rawJson } from './lib/rawhttp.mjs';
import { makeCa, normSerial } from './lib/tls-ca.mjs';
import { curlHttps, tlsConnect, tlsRawConn, rawGet } from './lib/tls-client.mjs';

let dir, ca, cert1, cert2, echo, sy, tlsPort, certFile, keyFile;

// Replaces a file in one rename, as a certificate deployment would.
function replaceFile(file, content) {
  const tmp = `${file}.new-${process.pid}`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

async function startWithTls({ extra = [] } = {}) {
  tlsPort = await freePort();
  const args = ['--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', certFile, '--tls-key', keyFile, ...extra];
  try {
    return await startSwitchyard({
      policy: makePolicy({ ports: [echo.port] }),
      routes: [route('/orders', echo.port), route('/', echo.port)],
      extraArgs: args,
    });
  } catch (e) {
    if (/unknown option|unrecognized option|invalid option|--tls-listen/i.test(e.message)) {
      throw new Error(`switchyard does not support --tls-listen yet (serve ${args.join(' ')}):\n${e.message}`);
    }
    throw e;
  }
}

before(async () => {
  dir = tempDir('sy-tls-down-');
  ca = makeCa(dir, { label: 'ca' });
  cert1 = ca.issue({ cn: 'switchyard downstream one', dns: [HOST, '*.apps.example.com'], out: 'one' });
  cert2 = ca.issue({ cn: 'switchyard downstream two', dns: [HOST, '*.apps.example.com'], out: 'two' });
  certFile = path.join(dir, 'server.pem');
  keyFile = path.join(dir, 'server.key');
  fs.copyFileSync(cert1.cert, certFile);
  fs.copyFileSync(cert1.key, keyFile);
  echo = await startEcho({ name: 'tls-down' });
  sy = await startWithTls();
});

after(async () => {
  if (sy) await sy.stopClean();
  await echo?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function alive() {
  assert.equal(sy.exitInfo(), null, `switchyard exited ${JSON.stringify(sy.exitInfo())}; stderr:\n${sy.stderr().slice(-2000)}`);
}

test('curl over HTTPS with the test CA: 200, backend sees X-Forwarded-Proto https (a client copy replaced)', async () => {
  const r = await curlHttps({ port: tlsPort, path: '/orders/1?a=b', ca: ca.cert, args: ['-H', 'X-Forwarded-Proto: http'] });
  assert.equal(r.code, 0, `${r.cmd}\nexit ${r.code}: ${r.stderr}`);
  assert.equal(r.status, 200, `${r.cmd}\nstatus ${r.status}: ${r.stdout.toString().slice(0, 500)}`);
  const e = JSON.parse(r.stdout.toString());
  assert.equal(e.url, '/orders/1?a=b');
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-proto'), ['https']);
  // curl sends Host with the port; X-Forwarded-Host is the client's Host
  assert.deepEqual(headerValues(e.headers, 'x-forwarded-host'), [`${HOST}:${tlsPort}`]);
});

test('the plain listener keeps serving next to it, with X-Forwarded-Proto http', async () => {
  const r = await get(sy, '/orders/2', { 'X-Forwarded-Proto': 'https' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(headerValues(r.json().headers, 'x-forwarded-proto'), ['http'], 'a plain-HTTP client must not pass itself off as https');
});

test('the listener presents the configured certificate, valid for the listen domains', async () => {
  for (const servername of [HOST, 'shop.apps.example.com']) {
    const s = await tlsConnect({ port: tlsPort, ca: ca.cert, servername });
    try {
      assert.ok(s.authorized, `not authorized for ${servername}: ${s.authorizationError}`);
      const pc = s.getPeerCertificate();
      assert.equal(normSerial(pc.serialNumber), normSerial(cert1.serial), `serial ${pc.serialNumber}, want ${cert1.serial}`);
      assert.equal(pc.subject.CN, cert1.cn);
    } finally {
      s.destroy();
    }
  }
});

test('ALPN: http/1.1 is negotiated (curl -v and node offering h2 and http/1.1)', async () => {
  const s = await tlsConnect({ port: tlsPort, ca: ca.cert, ALPNProtocols: ['h2', 'http/1.1'] });
  try {
    assert.equal(s.alpnProtocol, 'http/1.1', `server selected ALPN ${JSON.stringify(s.alpnProtocol)} for an offer of [h2, http/1.1]`);
  } finally {
    s.destroy();
  }
  const r = await curlHttps({ port: tlsPort, path: '/orders/alpn', ca: ca.cert, args: ['-v'] });
  assert.equal(r.status, 200, `${r.cmd}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stderr, /ALPN[:,] server accepted (to use )?http\/1\.1/, `curl -v did not report ALPN http/1.1:\n${r.stderr.slice(0, 3000)}`);
});

for (const [label, ver, curlArgs] of [
  ['1.2', 'TLSv1.2', ['--tlsv1.2', '--tls-max', '1.2']],
  ['1.3', 'TLSv1.3', ['--tlsv1.3']],
]) {
  test(`TLS ${label} works (node reports ${ver}; curl ${curlArgs.join(' ')} gets 200)`, async () => {
    const c = await tlsRawConn({ port: tlsPort, ca: ca.cert, minVersion: ver, maxVersion: ver });
    try {
      assert.equal(c.sock.getProtocol(), ver);
      const res = await rawGet(c, `/orders/v${label}`);
      assert.ok(res, 'no response over the TLS connection');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(headerValues(rawJson(res).headers, 'x-forwarded-proto'), ['https']);
    } finally {
      c.close();
    }
    const r = await curlHttps({ port: tlsPort, path: `/orders/curl${label}`, ca: ca.cert, args: curlArgs });
    assert.equal(r.status, 200, `${r.cmd}\nexit ${r.code}: ${r.stderr}`);
  });
}

test('TLS 1.1 is refused (the same client completes a TLS 1.1 handshake with a server that allows it)', async () => {
  const legacy = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
  // Control: the client really offers TLS 1.1, so a failure below is the
  // listener refusing it, not the client being unable to try.
  const control = tls.createServer({ cert: fs.readFileSync(cert1.cert), key: fs.readFileSync(cert1.key), ...legacy }, (s) => s.end());
  await new Promise((r) => control.listen(0, '127.0.0.1', r));
  try {
    const s = await tlsConnect({ port: control.address().port, ca: ca.cert, ...legacy });
    assert.equal(s.getProtocol(), 'TLSv1.1');
    s.destroy();
  } finally {
    await new Promise((r) => control.close(r));
  }
  let sock = null;
  let err = null;
  try {
    sock = await tlsConnect({ port: tlsPort, ca: ca.cert, ...legacy });
  } catch (e) {
    err = e;
  }
  if (sock) {
    const proto = sock.getProtocol();
    sock.destroy();
    assert.fail(`the listener completed a handshake at ${proto} with a client offering at most TLS 1.1`);
  }
  assert.ok(err, 'no handshake error');
  alive();
  const r = await curlHttps({ port: tlsPort, path: '/orders/after-tls11', ca: ca.cert });
  assert.equal(r.status, 200, 'the listener stopped serving after refusing TLS 1.1');
});

test('a plain-HTTP request to the TLS port gets no HTTP answer and does not disturb the listener', async () => {
  const net = await import('node:net');
  const got = await new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: tlsPort }, () => s.write(`GET /orders/1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`));
    let data = Buffer.alloc(0);
    s.on('data', (d) => (data = Buffer.concat([data, d])));
    s.on('error', () => {});
    s.on('close', () => resolve(data));
    setTimeout(() => s.destroy(), 5000 * SLOW);
  });
  assert.ok(!got.toString('latin1').startsWith('HTTP/1.1 200'), `a plain request on the TLS port was served: ${got.toString('latin1').slice(0, 200)}`);
  alive();
  assert.equal((await curlHttps({ port: tlsPort, path: '/orders/after-plain', ca: ca.cert })).status, 200);
});

test('SIGHUP re-reads certificate and key: new connections get the new one, open and in-flight ones carry on', async () => {
  const old = await tlsRawConn({ port: tlsPort, ca: ca.cert });
  const inflight = await tlsRawConn({ port: tlsPort, ca: ca.cert });
  try {
    const first = await rawGet(old, '/orders/before-hup');
    assert.equal(first?.status, 200, 'request before SIGHUP');
    assert.equal(normSerial(old.sock.getPeerCertificate().serialNumber), normSerial(cert1.serial));
    // a request in flight across the reload
    await inflight.send(`GET /slow?ms=${1500 * SLOW} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    const pending = inflight.readFinal({ timeout: 20000 * SLOW });
    await sleep(200);

    replaceFile(certFile, fs.readFileSync(cert2.cert));
    replaceFile(keyFile, fs.readFileSync(cert2.key));
    process.kill(sy.proc.pid, 'SIGHUP');

    const serial = await eventually(
      async () => {
        const s = await tlsConnect({ port: tlsPort, ca: ca.cert });
        const sn = s.getPeerCertificate().serialNumber;
        s.destroy();
        return normSerial(sn) === normSerial(cert2.serial) ? sn : null;
      },
      { timeoutMs: 5000 * SLOW, what: `a new connection presenting the new certificate (serial ${cert2.serial}, CN ${cert2.cn}) after SIGHUP` },
    );
    assert.ok(serial);
    alive();
    const slow = await pending;
    assert.equal(slow?.status, 200, 'the request in flight during SIGHUP was dropped');
    assert.ok(!old.closed, 'the keep-alive connection opened before SIGHUP was closed');
    const second = await rawGet(old, '/orders/after-hup');
    assert.equal(second?.status, 200, 'a second request on the keep-alive connection opened before SIGHUP failed');
    assert.deepEqual(headerValues(rawJson(second).headers, 'x-forwarded-proto'), ['https']);
    const r = await curlHttps({ port: tlsPort, path: '/orders/after-hup', ca: ca.cert, args: ['-v'] });
    assert.equal(r.status, 200, `${r.cmd}\n${r.stderr.slice(-1500)}`);
    assert.match(r.stderr, new RegExp(`subject: CN=${cert2.cn}`), 'curl saw the old certificate after SIGHUP');
    assert.equal((await get(sy, '/orders/plain-after-hup')).status, 200, 'the plain listener after SIGHUP');
  } finally {
    old.close();
    inflight.close();
  }
});

test('a SIGHUP with a broken certificate keeps the last good one and keeps serving', async () => {
  const before = normSerial(cert2.serial);
  const logFrom = sy.stderr().length;
  // a certificate that does not match the key, then garbage
  replaceFile(certFile, fs.readFileSync(cert1.cert));
  replaceFile(keyFile, fs.readFileSync(cert2.key));
  process.kill(sy.proc.pid, 'SIGHUP');
  await sleep(500 * SLOW);
  replaceFile(certFile, 'not a certificate\n');
  process.kill(sy.proc.pid, 'SIGHUP');
  await sleep(500 * SLOW);
  alive();
  for (let i = 0; i < 3; i++) {
    const s = await tlsConnect({ port: tlsPort, ca: ca.cert });
    const sn = normSerial(s.getPeerCertificate().serialNumber);
    s.destroy();
    assert.equal(sn, before, `after a broken reload the listener presents serial ${sn}, want the last good ${before}`);
  }
  assert.equal((await curlHttps({ port: tlsPort, path: '/orders/after-bad-hup', ca: ca.cert })).status, 200);
  const lines = jsonLines(sy.stderr().slice(logFrom));
  assert.ok(lines.some((l) => l.level === 'error' || l.level === 'warn'), `no warn/error log line for the failed certificate reload:\n${sy.stderr().slice(logFrom)}`);
  // restore for anything that runs later
  replaceFile(certFile, fs.readFileSync(cert2.cert));
  replaceFile(keyFile, fs.readFileSync(cert2.key));
});

// Usage errors: exit 2 at start, naming what is wrong.
function serveArgs(d, tlsArgs) {
  const pf = path.join(d, 'policy.json');
  const rf = path.join(d, 'routes.json');
  writeJsonAtomic(pf, makePolicy({ ports: [echo.port] }));
  writeJsonAtomic(rf, [route('/orders', echo.port)]);
  return ['serve', '--policy', pf, '--routes', rf, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--access-log', 'off', ...tlsArgs];
}

test('bad TLS options are usage errors: exit 2 naming the problem', async () => {
  const d = tempDir('sy-tls-usage-');
  try {
    const p = await freePort();
    const cases = [
      { what: '--tls-listen without --tls-cert/--tls-key', args: ['--tls-listen', `127.0.0.1:${p}`], names: /tls-cert|tls-key/ },
      { what: 'a certificate file that does not exist', args: ['--tls-listen', `127.0.0.1:${p}`, '--tls-cert', path.join(d, 'missing.pem'), '--tls-key', cert1.key], names: /missing\.pem/ },
      { what: 'a key that does not match the certificate', args: ['--tls-listen', `127.0.0.1:${p}`, '--tls-cert', cert1.cert, '--tls-key', cert2.key], names: /key|cert/i },
    ];
    for (const c of cases) {
      const r = runCli(serveArgs(d, c.args), { timeout: 10000 * SLOW });
      assert.equal(r.code, 2, `${c.what}: serve exit ${r.code} signal ${r.signal}; stderr ${r.stderr.slice(0, 1500)}`);
      assert.match(r.stderr, c.names, `${c.what}: stderr does not name it: ${r.stderr.slice(0, 1500)}`);
    }
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});
