// malformed.mjs: the requests SPEC §5.1 and §5.3 say switchyard must answer
// with 400 and never forward. Each case is exact bytes; `prefix` is a route
// path so that, were the request accepted, it would reach a backend.
import { HOST } from './harness.mjs';

const H = `Host: ${HOST}\r\n`;

// Message-level (framing/syntax) errors: rejected before anything is sent
// upstream. All of them must get 400.
export function malformedMessages(prefix = '/api') {
  const p = `${prefix}/x`;
  return [
    ['Content-Length and Transfer-Encoding', `POST ${p} HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['Transfer-Encoding and Content-Length', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`],
    ['two differing Content-Length fields', `POST ${p} HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`],
    ['Content-Length list with differing values', `POST ${p} HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello!`],
    ['negative Content-Length', `POST ${p} HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`],
    ['Content-Length with a sign', `POST ${p} HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`],
    ['non-numeric Content-Length', `POST ${p} HTTP/1.1\r\n${H}Content-Length: 5x\r\n\r\nhello`],
    ['hex Content-Length', `POST ${p} HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`],
    ['Transfer-Encoding gzip only', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`],
    ['Transfer-Encoding identity', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`],
    ['Transfer-Encoding chunked not last', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`],
    ['Transfer-Encoding xchunked', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`],
    ['Transfer-Encoding with a vertical tab', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n`],
    ['Transfer-Encoding twice, second not chunked', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n`],
    ['obs-fold continuation line', `GET ${p} HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n`],
    ['obs-fold with a tab', `GET ${p} HTTP/1.1\r\n${H}X-Folded: a\r\n\tb\r\n\r\n`],
    ['space before the colon', `GET ${p} HTTP/1.1\r\n${H}X-Space : b\r\n\r\n`],
    ['tab before the colon', `GET ${p} HTTP/1.1\r\n${H}X-Tab\t: b\r\n\r\n`],
    ['bare LF line endings', `GET ${p} HTTP/1.1\n${H.replace('\r\n', '\n')}\n`],
    ['bare LF inside the header block', `GET ${p} HTTP/1.1\r\n${H}X-A: 1\nX-B: 2\r\n\r\n`],
    ['bare CR inside a header value', `GET ${p} HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`],
    ['NUL in a header value', `GET ${p} HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`],
    ['control byte 0x01 in a header value', `GET ${p} HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`],
    ['DEL in a header name', `GET ${p} HTTP/1.1\r\n${H}X-\x7fA: b\r\n\r\n`],
    ['separator in a header name', `GET ${p} HTTP/1.1\r\n${H}X(A): b\r\n\r\n`],
    ['empty header name', `GET ${p} HTTP/1.1\r\n${H}: b\r\n\r\n`],
    ['header line without a colon', `GET ${p} HTTP/1.1\r\n${H}X-No-Colon\r\n\r\n`],
    ['absolute-form target', `GET http://${HOST}${p} HTTP/1.1\r\n${H}\r\n`],
    ['absolute-form target naming another host', `GET http://127.0.0.1:1${p} HTTP/1.1\r\n${H}\r\n`],
    ['authority-form target (CONNECT)', `CONNECT ${HOST}:443 HTTP/1.1\r\n${H}\r\n`],
    ['asterisk-form target', `OPTIONS * HTTP/1.1\r\n${H}\r\n`],
    ['HTTP/0.9 request line', `GET ${p}\r\n\r\n`],
    ['HTTP/2.0 version', `GET ${p} HTTP/2.0\r\n${H}\r\n`],
    ['HTTP/1.2 version', `GET ${p} HTTP/1.2\r\n${H}\r\n`],
    ['lowercase version', `GET ${p} http/1.1\r\n${H}\r\n`],
    ['two spaces in the request line', `GET  ${p} HTTP/1.1\r\n${H}\r\n`],
    ['invalid method token', `G@T ${p} HTTP/1.1\r\n${H}\r\n`],
    ['missing Host (HTTP/1.1)', `GET ${p} HTTP/1.1\r\nX-A: b\r\n\r\n`],
    ['two Host fields', `GET ${p} HTTP/1.1\r\n${H}${H}\r\n`],
    ['two differing Host fields', `GET ${p} HTTP/1.1\r\n${H}Host: other.example.com\r\n\r\n`],
  ];
}

// Host values that are not a valid listen domain either way: 400 (invalid
// field) or 421 (not a listen domain) are both a refusal.
export function badHosts(prefix = '/api') {
  const p = `${prefix}/x`;
  return [
    ['empty Host', `GET ${p} HTTP/1.1\r\nHost: \r\n\r\n`],
    ['Host with userinfo', `GET ${p} HTTP/1.1\r\nHost: user@${HOST}\r\n\r\n`],
    ['Host with a path', `GET ${p} HTTP/1.1\r\nHost: ${HOST}/x\r\n\r\n`],
    ['Host with a bad port', `GET ${p} HTTP/1.1\r\nHost: ${HOST}:evil\r\n\r\n`],
    ['Host with a space', `GET ${p} HTTP/1.1\r\nHost: ${HOST} x\r\n\r\n`],
  ];
}

// Path errors (SPEC §5.3): valid messages whose path must be refused.
export function badPaths(prefix = '/api') {
  return [
    `${prefix}/../x`,
    `${prefix}/..`,
    `${prefix}/./x`,
    `${prefix}/.`,
    `${prefix}/%2e%2e/x`,
    `${prefix}/%2E%2E/x`,
    `${prefix}/.%2e/x`,
    `${prefix}/%2e/x`,
    `${prefix}//x`,
    `${prefix}/a%2fb`,
    `${prefix}/a%2Fb`,
    `${prefix}/a%5cb`,
    `${prefix}/a%5Cb`,
    `${prefix}/a\\b`,
    `${prefix}/a%00b`,
    `${prefix}/a%252e%252e`,
    `${prefix}/%c0%ae%c0%ae/x`,
    `${prefix}/a%ffb`,
    `${prefix}/a%zzb`,
    `${prefix}/a%u2215b`,
    `${prefix}/a%`,
    `${prefix}/a%2`,
    `${prefix}/..;/x`,
    `${prefix}/.;/x`,
    `${prefix}/..;jsessionid=1/x`,
    `${prefix}/caf\xc3\xa9`,
    `${prefix}/a\x7fb`,
    `${prefix}/a\x01b`,
    'x/no-leading-slash',
  ];
}

export function pathRequest(p) {
  return `GET ${p} HTTP/1.1\r\n${H}\r\n`;
}

// Body framing errors: the head is fine, the body is not. switchyard may
// already have forwarded the head, so the backend must merely never see a
// complete request; the client gets 400 or a closed connection.
export function badBodies(prefix = '/api') {
  const p = `${prefix}/x`;
  return [
    ['non-hex chunk size', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`],
    ['chunk size overflow', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n`],
    ['chunk data longer than its size', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`],
    ['chunk size with a bare LF', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`],
    ['chunk size with a leading space', `POST ${p} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n`],
  ];
}
