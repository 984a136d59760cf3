// tls-ca.mjs: throwaway certificate authorities for the TLS end-to-end
// tests, made with the openssl CLI at test time so no key material lives in
// the repository. Leaf certificates are issued with `openssl ca` rather than
// `openssl x509 -req` because only `ca` can set an arbitrary validity window
// on Debian 12's OpenSSL 3.0 (x509 gained -not_before/-not_after in 3.4),
// and the expired-certificate test needs one that ended years ago. Every
// certificate gets a random serial, so a test can tell two apart by serial.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

function ossl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

// 16 random bytes, high bit clear (serials are positive), no leading zero.
function randomSerial() {
  const b = crypto.randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x10;
  return b.toString('hex').toUpperCase();
}

// Uppercase hex without leading zeros: how node's getPeerCertificate()
// spells serialNumber may differ in padding from openssl's.
export function normSerial(s) {
  return String(s).toUpperCase().replace(/^0+/, '');
}

/*
 * Creates a CA in dir/<label>/: ca.pem (certificate) and ca.key. Returns
 * {dir, cert, key, name, issue(opts)}; see issue() below.
 */
export function makeCa(dir, { label = 'ca', name = `switchyard test CA ${label}` } = {}) {
  const d = path.join(dir, label);
  fs.mkdirSync(path.join(d, 'newcerts'), { recursive: true });
  const cert = path.join(d, 'ca.pem');
  const key = path.join(d, 'ca.key');
  // Backdated is impossible with req -x509 on 3.0, so the CA starts now and
  // lasts long enough for any test; an expired leaf is still judged expired.
  ossl(['req', '-x509', ...EC_KEY, '-keyout', key, '-out', cert, '-days', '3', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash']);
  fs.writeFileSync(path.join(d, 'index.txt'), '');
  fs.writeFileSync(
    path.join(d, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = CA_default',
      '[CA_default]',
      `dir = ${d}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir/newcerts',
      'serial = $dir/serial',
      'default_md = sha256',
      'policy = policy_any',
      'unique_subject = no',
      'email_in_dn = no',
      'copy_extensions = none',
      '[policy_any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  let n = 0;
  const ca = {
    dir: d,
    cert,
    key,
    name,
    /*
     * Issues a server certificate. opts: {cn, dns: [...], ips: [...],
     * days (default 2), startdate/enddate ('YYYYMMDDHHMMSSZ', both or
     * neither), out (file stem, default leafN)}. Returns {cert, key,
     * serial (uppercase hex), cn}.
     */
    issue({ cn, dns = [], ips = [], days = 2, startdate, enddate, out } = {}) {
      n++;
      const stem = path.join(d, out || `leaf${n}`);
      const subjectCn = cn || dns[0] || ips[0] || `leaf${n}`;
      const serial = randomSerial();
      fs.writeFileSync(path.join(d, 'serial'), `${serial}\n`);
      ossl(['req', '-new', ...EC_KEY, '-keyout', `${stem}.key`, '-out', `${stem}.csr`, '-subj', `/CN=${subjectCn}`]);
      const san = [...dns.map((x) => `DNS:${x}`), ...ips.map((x) => `IP:${x}`)];
      fs.writeFileSync(
        `${stem}.ext`,
        [
          'basicConstraints = critical,CA:FALSE',
          'keyUsage = critical,digitalSignature',
          'extendedKeyUsage = serverAuth',
          'authorityKeyIdentifier = keyid',
          ...(san.length ? [`subjectAltName = ${san.join(',')}`] : []),
          '',
        ].join('\n'),
      );
      const validity = startdate ? ['-startdate', startdate, '-enddate', enddate] : ['-days', String(days)];
      ossl(['ca', '-config', path.join(d, 'ca.cnf'), '-batch', '-notext', '-in', `${stem}.csr`, '-out', `${stem}.pem`,
        '-cert', cert, '-keyfile', key, '-extfile', `${stem}.ext`, ...validity]);
      return { cert: `${stem}.pem`, key: `${stem}.key`, serial, cn: subjectCn };
    },
  };
  return ca;
}

// Subject CN, serial and validity of a PEM certificate file (for messages).
export function describeCert(file) {
  return ossl(['x509', '-in', file, '-noout', '-subject', '-serial', '-dates', '-ext', 'subjectAltName']).trim();
}
