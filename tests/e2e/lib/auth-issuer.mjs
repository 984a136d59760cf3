// auth-issuer.mjs: a token issuer for the auth end-to-end tests. It makes a
// throwaway CA and a server certificate with the openssl CLI (so
// switchyard's jwks_uri fetch verifies a real chain through the policy's
// ca_file), serves the current JWK set over HTTPS, counts fetches, and
// mints tokens with the `jose` package. Keys can be rotated while the
// server runs, which is what the JWKS cache must cope with.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import * as jose from 'jose';

// CA + server certificate for 127.0.0.1, written into dir.
export function makeTestPki(dir) {
  const f = (n) => path.join(dir, n);
  const ossl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=switchyard test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ossl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

// A signing key: {kid, alg, privateKey, jwk (public, with kid/alg/use)}.
export async function makeKey(alg, kid, options = {}) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...options });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, jwk };
}

export async function mint(key, claims, header = {}) {
  return new jose.SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
}

export async function mintHs256(secretBytes, claims) {
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secretBytes);
}

// HTTPS server publishing {keys: [...]} at /jwks.json.
export async function startJwksServer(pki, keys) {
  let current = keys;
  const server = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) }, (req, res) => {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    issuer.fetches++;
    const body = JSON.stringify({ keys: current.map((k) => k.jwk) });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const issuer = {
    fetches: 0,
    port: server.address().port,
    get uri() {
      return `https://127.0.0.1:${issuer.port}/jwks.json`;
    },
    publish(newKeys) {
      current = newKeys;
    },
    close: () => new Promise((r) => server.close(r)),
  };
  return issuer;
}
