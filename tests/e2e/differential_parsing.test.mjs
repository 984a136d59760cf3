// Differential parsing (issue 9, Evidence): every request head switchyard's
// parser accepts is parsed by llhttp too (Node's own HTTP parser, strict
// mode: no lenient flags), and the two agree on the method, the target, the
// version, the header fields (names, values, order), keep-alive and the body
// framing (none, Content-Length N, chunked). Where switchyard refuses what
// llhttp accepts, switchyard is stricter on purpose; that is counted, never
// a failure. A disagreement is the start of a request-smuggling or
// routing-confusion bug: switchyard and a Node backend would read one byte
// stream as two different requests.
//
// Inputs: the published vectors (llhttp's own markdown tests, the extracted
// llhttp/smuggler cases, the smuggler Transfer-Encoding mutations, the SSRF
// and Host cases; see tests/vectors/SOURCES.md), each also with a Host field
// added when it has none (most llhttp samples have none, and switchyard
// refuses those before any other question), plus a generated set: every
// single-byte insertion, replacement and deletion of a set of interesting
// bytes at every position of a few valid heads, and framing-header values
// written every way we know. Counts are printed and recorded in
// docs/testing.md.
//
// switchyard's side is build/tests/parse_dump (tests/unit/parse_dump.c, built
// by `make unit`), the parser exactly as the proxy calls it, with the
// policy's default limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { BIN, REPO } from './lib/harness.mjs';

const require = createRequire(import.meta.url);
// llhttp as Node binds it: the same parser every Node HTTP server runs.
// `_http_common` exports it on Node 18 (Debian 12) and 20 alike.
const { HTTPParser, methods } = require('_http_common');

const VECTORS = [process.env.SY_VECTORS, path.join(REPO, 'tests/vectors'), path.join(REPO, '../shared/vectors')]
  .filter(Boolean)
  .find((d) => fs.existsSync(path.join(d, 'http')));
const DUMP = path.join(path.dirname(BIN), 'tests', 'parse_dump');

// ---- llhttp's side ---------------------------------------------------------

function newParser() {
  const p = new HTTPParser();
  // 0: no lenient flags (strict); a max header size no head here reaches.
  p.initialize(HTTPParser.REQUEST, {}, 1 << 20, 0);
  const st = { head: null, complete: false, body: 0, headers: [], url: '' };
  // More than 32 fields arrive in pieces before the head completes.
  p[HTTPParser.kOnHeaders] = (headers, url) => {
    st.headers.push(...headers);
    st.url += url;
  };
  p[HTTPParser.kOnHeadersComplete] = (major, minor, headers, method, url, _s, _m, upgrade, keepAlive) => {
    const flat = headers ?? st.headers;
    const pairs = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]]);
    st.head = { method: methods[method], target: url ?? st.url, version: `${major}.${minor}`, headers: pairs, upgrade, keepAlive };
    return 0;
  };
  p[HTTPParser.kOnBody] = (b) => {
    st.body += b.length;
  };
  p[HTTPParser.kOnMessageComplete] = () => {
    st.complete = true;
  };
  return { p, st };
}

const failed = (r) => r instanceof Error;

// llhttp's verdict on the whole input (for counting only).
function llhttpAccepts(buf) {
  const { p, st } = newParser();
  const r = p.execute(buf);
  p.close?.();
  return !failed(r) && st.head !== null;
}

// Known, documented differences that are not disagreements about the
// request (docs/testing.md, "Differential parsing"). Each is counted.
//  - extension method: a method is any token (RFC 9110 §9.1) and switchyard
//    passes it on (routes restrict methods); llhttp knows a fixed table
//    (QUERY, for one, is missing from Node's). The rest of the request is
//    compared with the method spelled GET.
//  - upgrade: llhttp flags `Connection: upgrade` + `Upgrade`; switchyard
//    never forwards Upgrade (hop-by-hop) and never tunnels, so for it and its
//    upstream the bytes after the head stay HTTP. Framing is still compared.
//  - keep-alive: llhttp matches Connection tokens without stripping a
//    trailing tab, and in HTTP/1.0 lets keep-alive win over close. Connection
//    is hop-by-hop: it decides only whether switchyard reads another request
//    from this client, never what reaches a backend.
// Also counted: chunked bodies compared to their end, and chunked bodies
// switchyard's decoder refuses (stricter).
const NOTE_KINDS = ['extension method', 'upgrade', 'keep-alive', 'chunked body compared', 'chunked body refused'];

// Feeds llhttp exactly switchyard's head, then probes the body framing
// switchyard chose. Returns {diffs, notes}.
function compare(buf, sy, spelledGet = false) {
  const diffs = [];
  const notes = spelledGet ? ['extension method'] : [];
  const asGet = () => {
    const rest = buf.subarray(sy.method.length);
    return compare(Buffer.concat([Buffer.from('GET'), rest]), { ...sy, method: 'GET', head_len: sy.head_len - sy.method.length + 3 }, true);
  };
  if (!spelledGet && !methods.includes(sy.method)) return asGet();
  const { p, st } = newParser();
  const head = buf.subarray(0, sy.head_len);
  let r = p.execute(head);
  if (failed(r)) return { diffs: [`llhttp rejects the head: ${r.code} (${r.reason})`], notes };
  if (!st.head) return { diffs: ['llhttp needs more bytes to finish the head'], notes };
  const h = st.head;
  // Node's method table is shorter than llhttp's (QUERY parses, but has no
  // name in Node 20): an extension method as far as a Node backend goes.
  if (h.method === undefined && !spelledGet) return asGet();
  if (h.method !== sy.method) diffs.push(`method: llhttp ${JSON.stringify(h.method)}, switchyard ${JSON.stringify(sy.method)}`);
  if (h.target !== sy.target) diffs.push(`target: llhttp ${JSON.stringify(h.target)}, switchyard ${JSON.stringify(sy.target)}`);
  if (h.version !== sy.version) diffs.push(`version: llhttp ${h.version}, switchyard ${sy.version}`);
  if (JSON.stringify(h.headers) !== JSON.stringify(sy.headers)) {
    diffs.push(`headers: llhttp ${JSON.stringify(h.headers)}, switchyard ${JSON.stringify(sy.headers)}`);
  }
  if (h.keepAlive !== sy.keep_alive) notes.push('keep-alive');
  if (h.upgrade) notes.push('upgrade');
  // Body framing, by behaviour: does llhttp end the message where switchyard does?
  const length = sy.framing === 'length' ? sy.content_length : 0;
  if (sy.framing === 'none' || (sy.framing === 'length' && length === 0)) {
    if (!st.complete) diffs.push(`framing: switchyard reads no body, llhttp waits for one`);
  } else if (st.complete) {
    diffs.push(`framing: switchyard reads a ${sy.framing} body, llhttp none`);
  } else if (sy.framing === 'length') {
    if (length > 1) r = p.execute(Buffer.alloc(length - 1, 'x'));
    if (failed(r) || st.complete) diffs.push(`framing: llhttp ends the body before Content-Length ${length}`);
    else {
      r = p.execute(Buffer.from('x'));
      if (failed(r) || !st.complete || st.body !== length) diffs.push(`framing: llhttp does not end the body at Content-Length ${length}`);
    }
  } else if (sy.framing === 'chunked') {
    r = p.execute(Buffer.from('0\r\n\r\n'));
    if (failed(r) || !st.complete || st.body !== 0) diffs.push('framing: llhttp does not read the body as chunked');
    else diffs.push(...compareChunked(buf, sy, notes));
  } else {
    diffs.push(`framing: unexpected ${sy.framing}`);
  }
  p.close?.();
  return { diffs, notes };
}

// The chunked body that follows the head in the input, as switchyard's
// decoder read it: llhttp must end the message at the same byte with the same
// data. A body switchyard refuses is its own business (stricter, counted).
function compareChunked(buf, sy, notes) {
  const c = sy.chunked;
  if (c.verdict === 'reject') {
    notes.push('chunked body refused');
    return [];
  }
  const body = buf.subarray(sy.head_len, sy.head_len + c.consumed);
  const { p, st } = newParser();
  let r = p.execute(buf.subarray(0, sy.head_len));
  if (!failed(r) && body.length > 1) r = p.execute(body.subarray(0, body.length - 1));
  const early = st.complete;
  if (!failed(r) && body.length > 0) r = p.execute(body.subarray(body.length - 1));
  p.close?.();
  if (failed(r)) return [`chunked body: llhttp refuses what switchyard reads as ${c.verdict}: ${r.code} (${r.reason})`];
  if (early) return ['chunked body: llhttp ends the message before switchyard does'];
  if (c.verdict === 'done' && !st.complete) return ['chunked body: switchyard ends the message, llhttp reads on'];
  if (c.verdict === 'incomplete' && st.complete) return ['chunked body: llhttp ends the message, switchyard reads on'];
  if (st.body !== c.data_len) return [`chunked body: llhttp reads ${st.body} data bytes, switchyard ${c.data_len}`];
  if (c.verdict === 'done') notes.push('chunked body compared');
  return [];
}

// ---- switchyard's side -----------------------------------------------------

function switchyardParse(bufs) {
  const r = spawnSync(DUMP, [], { input: bufs.map((b) => b.toString('base64')).join('\n') + '\n', maxBuffer: 1 << 30 });
  assert.equal(r.status, 0, `parse_dump failed: ${r.stderr}`);
  const lines = r.stdout.toString('latin1').trim().split('\n');
  assert.equal(lines.length, bufs.length);
  return lines.map((l) => JSON.parse(l));
}

// ---- corpora ---------------------------------------------------------------

// llhttp's markdown tests, transformed as llhttp's own runner does
// (tests/vectors/SOURCES.md): trailing LF removed, LF -> CRLF, escapes decoded.
function llhttpMarkdown(dir) {
  const out = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.md')).sort()) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    const re = /<!-- meta=(\{.*?\}) -->\s*```http\n([\s\S]*?)\n```/g;
    let m;
    let i = 0;
    while ((m = re.exec(text))) {
      const meta = JSON.parse(m[1]);
      i++;
      if (meta.type && !meta.type.startsWith('request')) continue;
      const raw = m[2]
        .replace(/\n$/, '')
        .replace(/\n/g, '\r\n')
        .replace(/\\(?:r|n|t|f|x([0-9a-fA-F]{2})|([0-7]{1,3}))/g, (s, hex, oct) => {
          if (hex) return String.fromCharCode(parseInt(hex, 16));
          if (oct) return String.fromCharCode(parseInt(oct, 8));
          return { '\\r': '\r', '\\n': '\n', '\\t': '\t', '\\f': '\f' }[s];
        });
      out.push({ name: `llhttp-md/${f}#${i}${meta.type ? ` (${meta.type})` : ''}`, buf: Buffer.from(raw, 'utf8') });
    }
  }
  return out;
}

function jsonCases(file, prefix) {
  const doc = JSON.parse(fs.readFileSync(path.join(VECTORS, file), 'utf8'));
  return doc.cases.filter((c) => c.raw_request_b64).map((c) => ({ name: `${prefix}/${c.name}`, buf: Buffer.from(c.raw_request_b64, 'base64') }));
}

// The same request with "Host: example.com" after the request line, when it
// has no Host field and its request line ends in CRLF.
function withHost(c) {
  const s = c.buf.toString('latin1');
  const eol = s.indexOf('\r\n');
  if (eol < 0 || /\r\nhost\s*:/i.test(s)) return null;
  return { name: `${c.name} +Host`, buf: Buffer.from(`${s.slice(0, eol + 2)}Host: example.com\r\n${s.slice(eol + 2)}`, 'latin1') };
}

const BASES = [
  'GET /orders/42?x=1&y=2 HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\nX-Custom: a, b\r\n\r\n',
  'POST /orders HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
  'PUT /orders/1 HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
  'GET / HTTP/1.0\r\nHost: api.example.com:8443\r\nConnection: keep-alive\r\n\r\n',
  'DELETE /a/b HTTP/1.1\r\nhost: api.example.com\r\nconnection: close\r\nexpect: 100-continue\r\ncontent-length: 0\r\n\r\n',
  'POST /c HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n',
];
// Bytes where parsers are known to differ: whitespace, line ends, separators,
// controls, obs-text, and bytes that change a token's meaning.
const BYTES = [0x00, 0x01, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x22, 0x23, 0x25, 0x2c, 0x2f, 0x3a, 0x3b, 0x3d, 0x3f, 0x40, 0x5c, 0x5f, 0x61, 0x7f, 0x80, 0xff];

function generated() {
  const out = [];
  BASES.forEach((base, b) => {
    const buf = Buffer.from(base, 'latin1');
    for (let i = 0; i < buf.length; i++) {
      out.push({ name: `gen/${b}/delete@${i}`, buf: Buffer.concat([buf.subarray(0, i), buf.subarray(i + 1)]) });
      for (const x of BYTES) {
        out.push({ name: `gen/${b}/insert 0x${x.toString(16)}@${i}`, buf: Buffer.concat([buf.subarray(0, i), Buffer.from([x]), buf.subarray(i)]) });
        if (buf[i] !== x) {
          const r = Buffer.from(buf);
          r[i] = x;
          out.push({ name: `gen/${b}/replace 0x${x.toString(16)}@${i}`, buf: r });
        }
      }
    }
  });
  // Framing headers spelled every way: values, names, duplicates, pairs.
  const head = 'POST /f HTTP/1.1\r\nHost: api.example.com\r\n';
  const cl = ['5', '05', '+5', '-5', ' 5', '5 ', '5\t', '5,5', '5, 5', '0x5', '5.0', '', '99999999999999999999', '1e1', '٥'];
  const te = ['chunked', 'Chunked', 'CHUNKED', ' chunked', 'chunked ', 'chunked, chunked', 'gzip, chunked', 'chunked, gzip', 'identity', 'chunked;q=1', '"chunked"', 'chunked\t', 'xchunked', 'chunkedx', ''];
  const names = ['Content-Length', 'content-length', 'CONTENT-LENGTH', 'Content-Length ', ' Content-Length', 'Content_Length', 'Content-Lengthx'];
  const tenames = ['Transfer-Encoding', 'transfer-encoding', 'Transfer-Encoding ', 'Transfer_Encoding', 'Transfer-Encodings'];
  for (const n of names) for (const v of cl) out.push({ name: `gen/cl ${JSON.stringify(n)}: ${JSON.stringify(v)}`, buf: Buffer.from(`${head}${n}: ${v}\r\n\r\nhello`, 'utf8') });
  for (const n of tenames) for (const v of te) out.push({ name: `gen/te ${JSON.stringify(n)}: ${JSON.stringify(v)}`, buf: Buffer.from(`${head}${n}: ${v}\r\n\r\n0\r\n\r\n`, 'latin1') });
  for (const a of cl) for (const v of te) {
    out.push({ name: `gen/cl+te ${JSON.stringify(a)} ${JSON.stringify(v)}`, buf: Buffer.from(`${head}Content-Length: ${a}\r\nTransfer-Encoding: ${v}\r\n\r\n0\r\n\r\n`, 'utf8') });
    out.push({ name: `gen/te+te ${JSON.stringify(v)}`, buf: Buffer.from(`${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: ${v}\r\n\r\n0\r\n\r\n`, 'latin1') });
  }
  for (const c of ['close', 'keep-alive', 'Keep-Alive', 'close, keep-alive', 'upgrade', 'Upgrade', 'keep-alive, upgrade', 'TE', 'x', '']) {
    for (const v of ['1.0', '1.1']) {
      out.push({ name: `gen/connection ${v} ${JSON.stringify(c)}`, buf: Buffer.from(`GET /c HTTP/${v}\r\nHost: api.example.com\r\nConnection: ${c}\r\n\r\n`, 'latin1') });
      out.push({ name: `gen/upgrade ${v} ${JSON.stringify(c)}`, buf: Buffer.from(`GET /c HTTP/${v}\r\nHost: api.example.com\r\nUpgrade: websocket\r\nConnection: ${c}\r\n\r\n`, 'latin1') });
    }
  }
  // Many fields (llhttp hands them over in pieces past 32).
  const many = Array.from({ length: 90 }, (_, i) => `X-F${i}: v${i}\r\n`).join('');
  out.push({ name: 'gen/90 fields', buf: Buffer.from(`GET /m HTTP/1.1\r\nHost: api.example.com\r\n${many}\r\n`, 'latin1') });
  return out;
}

// ---- the test --------------------------------------------------------------

test('every request head switchyard accepts, llhttp reads the same way', { timeout: 300_000 }, (t) => {
  assert.ok(fs.existsSync(DUMP), `${DUMP} is missing: run make unit`);
  assert.ok(VECTORS, 'test vectors not found: set SY_VECTORS or add tests/vectors');
  const corpora = {
    'llhttp markdown': llhttpMarkdown(path.join(VECTORS, 'http/llhttp-md/request')),
    'http_request_cases.json': jsonCases('http/http_request_cases.json', 'cases'),
    'smuggler_te_mutations_full.json': jsonCases('http/smuggler_te_mutations_full.json', 'smuggler'),
    'ssrf_host_path_cases.json': jsonCases('ssrf/ssrf_host_path_cases.json', 'ssrf'),
  };
  for (const [name, cases] of Object.entries(corpora)) {
    const added = cases.map(withHost).filter(Boolean);
    if (added.length) corpora[`${name} +Host`] = added;
  }
  corpora.generated = generated();

  const all = Object.values(corpora).flat();
  const parsed = switchyardParse(all.map((c) => c.buf));
  const disagreements = [];
  const counts = {};
  const stricterReasons = {}; // switchyard's reason, where llhttp accepts
  let k = 0;
  for (const [corpus, cases] of Object.entries(corpora)) {
    const n = { cases: cases.length, accepted: 0, agreed: 0, stricter: 0, both_reject: 0, incomplete: 0 };
    for (const kind of NOTE_KINDS) n[kind] = 0;
    for (const c of cases) {
      const sy = parsed[k++];
      if (sy.verdict === 'accept') {
        n.accepted++;
        const { diffs, notes } = compare(c.buf, sy);
        for (const kind of notes) n[kind]++;
        if (diffs.length) disagreements.push(`${c.name}: ${diffs.join('; ')}\n    ${JSON.stringify(c.buf.toString('latin1').slice(0, 300))}`);
        else n.agreed++;
      } else if (sy.verdict === 'reject') {
        if (llhttpAccepts(c.buf)) {
          n.stricter++;
          stricterReasons[sy.reason] = (stricterReasons[sy.reason] ?? 0) + 1;
        }
        else n.both_reject++;
      } else {
        n.incomplete++;
      }
    }
    counts[corpus] = n;
  }
  const total = Object.values(counts).reduce((a, n) => {
    for (const [key, v] of Object.entries(n)) a[key] = (a[key] ?? 0) + v;
    return a;
  }, {});
  counts.total = total;
  t.diagnostic(`llhttp ${process.versions.llhttp}, node ${process.version}`);
  for (const [corpus, n] of Object.entries(counts)) t.diagnostic(`${corpus}: ${JSON.stringify(n)}`);
  t.diagnostic(`switchyard stricter, by reason: ${JSON.stringify(stricterReasons)}`);
  if (process.env.SY_DIFF_COUNTS) {
    fs.writeFileSync(process.env.SY_DIFF_COUNTS, JSON.stringify({ llhttp: process.versions.llhttp, node: process.version, counts, stricterReasons }, null, 2));
  }
  assert.deepEqual(disagreements, [], `${disagreements.length} accepted requests read differently by llhttp:\n${disagreements.slice(0, 40).join('\n')}`);
  // The comparison must have had something to compare.
  assert.ok(total.accepted > 1000, `only ${total.accepted} requests accepted`);
});
