/*
 * test_parser.c: the strict HTTP/1.1 parser (src/http/parser.c) and the
 * header table (src/http/headers.c). Most cases are table rows, each run as
 * its own cmocka test so a failure names the row. Every request and response
 * row is also fed in pieces, and must decide exactly as all at once (same
 * status, same reason, same fields): every prefix alone (a fresh parse says
 * INCOMPLETE until the first prefix that decides), one byte per call on one
 * resumed state, split in two at every byte position, and in pseudo-random
 * splits. The work-counting tests show that a resumed parse examines each
 * byte once, however the head is split.
 * Chunked rows are decoded whole, byte by byte and in pseudo-random splits,
 * and must give the same bytes and the same verdict each way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/headers.h"
#include "http/parser.h"

#define OK SY_HTTP_OK
#define INC SY_HTTP_INCOMPLETE
#define ERR SY_HTTP_ERROR

static const sy_http_limits_t default_limits = {
    .max_request_line_bytes = 8192,
    .max_header_bytes = 32768,
    .max_headers = 100,
    .max_body_bytes = 10485760,
};

/* ---- helpers --------------------------------------------------------------- */

static bool slice_is(sy_slice_t s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static bool slice_inside(sy_slice_t s, const char *buf, size_t len)
{
    if (s.len == 0)
        return true;
    return s.ptr >= buf && s.ptr + s.len <= buf + len;
}

typedef struct {
    sy_http_status_t status;
    sy_http_reject_t reject;
    sy_http_request_t req;
    sy_http_header_t headers[SY_HTTP_MAX_HEADERS];
} req_result_t;

/* One-shot: buf from its start, no state kept. */
static void parse_request(const char *buf, size_t len, const sy_http_limits_t *limits,
                          req_result_t *out)
{
    out->status = sy_http_request_parse(NULL, buf, len, limits, out->headers, SY_HTTP_MAX_HEADERS,
                                        &out->req, &out->reject);
}

/* Resumed: st remembers what the previous calls on buf examined. */
static void parse_request_more(sy_http_head_state_t *st, const char *buf, size_t len,
                               const sy_http_limits_t *limits, req_result_t *out)
{
    out->status = sy_http_request_parse(st, buf, len, limits, out->headers, SY_HTTP_MAX_HEADERS,
                                        &out->req, &out->reject);
}

/* xorshift64 for the split points: deterministic, so a failing split can be
 * reproduced. */
static uint64_t split_rng = 0x9e3779b97f4a7c15ull;

static size_t split_next(size_t bound)
{
    split_rng ^= split_rng << 13;
    split_rng ^= split_rng >> 7;
    split_rng ^= split_rng << 17;
    return bound ? (size_t)(split_rng % bound) : 0;
}

/* Everything a caller reads from an OK request, compared between two parses
 * of the same bytes. */
static void assert_same_request(const req_result_t *a, const req_result_t *b)
{
    const sy_http_request_t *x = &a->req, *y = &b->req;
    assert_ptr_equal(x->method.ptr, y->method.ptr);
    assert_int_equal(x->method.len, y->method.len);
    assert_ptr_equal(x->target.ptr, y->target.ptr);
    assert_int_equal(x->target.len, y->target.len);
    assert_int_equal(x->path.len, y->path.len);
    assert_int_equal(x->query.len, y->query.len);
    assert_int_equal(x->has_query, y->has_query);
    assert_int_equal(x->minor_version, y->minor_version);
    assert_int_equal(x->header_count, y->header_count);
    assert_ptr_equal(x->host.ptr, y->host.ptr);
    assert_int_equal(x->host.len, y->host.len);
    assert_int_equal(x->body_kind, y->body_kind);
    assert_int_equal(x->content_length, y->content_length);
    assert_int_equal(x->keep_alive, y->keep_alive);
    assert_int_equal(x->expect_continue, y->expect_continue);
    assert_int_equal(x->head_len, y->head_len);
    for (size_t i = 0; i < x->header_count; i++) {
        assert_ptr_equal(a->headers[i].name.ptr, b->headers[i].name.ptr);
        assert_int_equal(a->headers[i].name.len, b->headers[i].name.len);
        assert_ptr_equal(a->headers[i].value.ptr, b->headers[i].value.ptr);
        assert_int_equal(a->headers[i].value.len, b->headers[i].value.len);
        assert_int_equal(a->headers[i].id, b->headers[i].id);
    }
}

/* Slices of an OK request lie inside the input, and the head alone parses
 * the same. */
static void assert_request_invariants(const char *buf, size_t len, const sy_http_limits_t *limits,
                                      const req_result_t *r)
{
    const sy_http_request_t *q = &r->req;
    assert_true(q->head_len <= len);
    assert_true(slice_inside(q->method, buf, q->head_len));
    assert_true(slice_inside(q->target, buf, q->head_len));
    assert_true(slice_inside(q->path, buf, q->head_len));
    assert_true(slice_inside(q->host, buf, q->head_len));
    assert_true(q->host.len > 0);
    assert_true(q->path.len > 0 && q->path.ptr[0] == '/');
    for (size_t i = 0; i < q->header_count; i++) {
        assert_true(slice_inside(r->headers[i].name, buf, q->head_len));
        assert_true(slice_inside(r->headers[i].value, buf, q->head_len));
        assert_int_equal(r->headers[i].id, sy_header_lookup(r->headers[i].name));
    }
    static req_result_t again;
    parse_request(buf, q->head_len, limits, &again);
    assert_int_equal(again.status, SY_HTTP_OK);
    assert_same_request(r, &again);
}

/* The verdict of a piecewise parse equals the all-at-once one. */
static void assert_same_verdict(const req_result_t *part, const req_result_t *full, const char *how,
                                size_t at, size_t len)
{
    if (part->status != full->status || part->reject != full->reject)
        fail_msg("%s %zu of %zu: status %d reason %s, all at once: %d %s", how, at, len,
                 part->status, sy_http_reject_name(part->reject), full->status,
                 sy_http_reject_name(full->reject));
    if (part->status == SY_HTTP_OK)
        assert_same_request(part, full);
}

/*
 * Feeds buf in pieces, four ways. Every prefix parsed alone, and the same
 * prefixes fed one byte per call to one resumed state, must be INCOMPLETE
 * until the first that decides; that one and every longer prefix must equal
 * the all-at-once verdict. Split in two at every position, and in
 * pseudo-random pieces, the whole input must give that verdict too.
 */
static void assert_request_incremental(const char *buf, size_t len, const sy_http_limits_t *limits,
                                       const req_result_t *full)
{
    static req_result_t part, resumed;
    sy_http_head_state_t st = {0};
    bool decided = false;
    for (size_t k = 0; k <= len; k++) {
        parse_request(buf, k, limits, &part);
        parse_request_more(&st, buf, k, limits, &resumed);
        if (part.status != resumed.status || part.reject != resumed.reject)
            fail_msg("prefix %zu of %zu: alone %d %s, resumed byte by byte %d %s", k, len,
                     part.status, sy_http_reject_name(part.reject), resumed.status,
                     sy_http_reject_name(resumed.reject));
        if (!decided && part.status == SY_HTTP_INCOMPLETE)
            continue;
        if (!decided && full->status == SY_HTTP_OK)
            assert_int_equal(k, full->req.head_len);
        decided = true;
        assert_same_verdict(&part, full, "prefix", k, len);
        assert_same_verdict(&resumed, full, "byte-by-byte prefix", k, len);
    }
    assert_true(decided || full->status == SY_HTTP_INCOMPLETE);

    for (size_t k = 0; k <= len; k++) {
        sy_http_head_state_reset(&st);
        parse_request_more(&st, buf, k, limits, &resumed);
        parse_request_more(&st, buf, len, limits, &resumed);
        assert_same_verdict(&resumed, full, "split at", k, len);
    }
    for (int round = 0; round < 8; round++) {
        sy_http_head_state_reset(&st);
        size_t at = 0;
        while (at < len) {
            at += 1 + split_next(len - at < 24 ? len - at : 24);
            parse_request_more(&st, buf, at, limits, &resumed);
        }
        parse_request_more(&st, buf, len, limits, &resumed);
        assert_same_verdict(&resumed, full, "random splits, round", (size_t)round, len);
    }
}

/* ---- request table ------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    sy_http_status_t status;
    sy_http_reject_t reject;
} req_case_t;

/* sizeof keeps embedded NUL bytes in the input. */
#define RQ(name, raw, status, reject)                                                              \
    {                                                                                              \
        name, raw, sizeof(raw) - 1, status, SY_REJECT_##reject                                     \
    }
#define HOST "Host: example.com\r\n"
#define GET11 "GET / HTTP/1.1\r\n"
#define POST11 "POST /p HTTP/1.1\r\n" HOST
#define SMUGGLE_TAIL HOST "Content-Length: 4\r\n\r\n1\r\nZ\r\n0\r\n\r\n"

static const req_case_t request_cases[] = {
    /* accepted */
    RQ("simple get", GET11 HOST "\r\n", OK, NONE),
    RQ("http/1.0 with host", "GET / HTTP/1.0\r\n" HOST "\r\n", OK, NONE),
    RQ("lower-case method token", "get / HTTP/1.1\r\n" HOST "\r\n", OK, NONE),
    RQ("extension method", "M-SEARCH /x HTTP/1.1\r\n" HOST "\r\n", OK, NONE),
    RQ("method with token symbols", "A!#$%&'*+-.^_`|~9 / HTTP/1.1\r\n" HOST "\r\n", OK, NONE),
    RQ("query with slash and question", "GET /a?b=/c?d HTTP/1.1\r\n" HOST "\r\n", OK, NONE),
    RQ("pchar sub-delims", "GET /a;b=c,d!$&'()*+:@~ HTTP/1.1\r\n" HOST "\r\n", OK, NONE),
    RQ("percent in target", "GET /a%20b HTTP/1.1\r\n" HOST "\r\n", OK, NONE),
    RQ("header with htab", GET11 HOST "X: a\tb\r\n\r\n", OK, NONE),
    RQ("header obs-text",
       GET11 HOST "X: D\xc3\xbc"
                  "sseldorf\r\n\r\n",
       OK, NONE),
    RQ("empty header value", GET11 HOST "X:\r\n\r\n", OK, NONE),
    RQ("whitespace only value", GET11 HOST "X:  \t \r\n\r\n", OK, NONE),
    RQ("content-length zero", POST11 "Content-Length: 0\r\n\r\n", OK, NONE),
    RQ("content-length leading zeros", POST11 "Content-Length: 003\r\n\r\nabc", OK, NONE),
    RQ("content-length surrounded by OWS", POST11 "Content-Length: \t 5  \r\n\r\n", OK, NONE),
    RQ("chunked", POST11 "Transfer-Encoding: chunked\r\n\r\n", OK, NONE),
    RQ("chunked any case", POST11 "TrAnSfEr-EnCoDiNg: cHuNkEd\r\n\r\n", OK, NONE),
    RQ("chunked with extra OWS", POST11 "Transfer-Encoding:  chunked \r\n\r\n", OK, NONE),
    RQ("chunked with leading tab", POST11 "Transfer-Encoding:\tchunked\r\n\r\n", OK, NONE),
    RQ("underscore header not aliasing", GET11 HOST "X_Custom_Thing: 1\r\n\r\n", OK, NONE),
    RQ("expect 100-continue", POST11 "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n", OK, NONE),
    RQ("expect any case", POST11 "Expect: 100-Continue\r\n\r\n", OK, NONE),
    RQ("connection list", GET11 HOST "Connection: keep-alive, Upgrade\r\n\r\n", OK, NONE),
    RQ("connection empty elements", GET11 HOST "Connection: , ,close,\r\n\r\n", OK, NONE),
    RQ("host ipv4 port", GET11 "Host: 10.0.0.1:8080\r\n\r\n", OK, NONE),
    RQ("host ipv6", GET11 "Host: [2001:db8::1]\r\n\r\n", OK, NONE),
    RQ("host ipv6 port", GET11 "Host: [::1]:80\r\n\r\n", OK, NONE),
    RQ("host ipv4-mapped", GET11 "Host: [::ffff:1.2.3.4]\r\n\r\n", OK, NONE),
    RQ("host sub-delims", GET11 "Host: 0.0.0.0=5000\r\n\r\n", OK, NONE),
    RQ("host pct-encoded", GET11 "Host: a%41b.example\r\n\r\n", OK, NONE),
    RQ("host upper case", GET11 "Host: API.EXAMPLE.COM\r\n\r\n", OK, NONE),
    RQ("host trailing dot", GET11 "Host: api.example.com.\r\n\r\n", OK, NONE),
    RQ("host port 65535", GET11 "Host: a:65535\r\n\r\n", OK, NONE),
    RQ("host lower-case name", GET11 "host: a\r\n\r\n", OK, NONE),
    RQ("body bytes after head", POST11 "Content-Length: 5\r\n\r\nhello", OK, NONE),
    RQ("content-length at limit", POST11 "Content-Length: 10485760\r\n\r\n", OK, NONE),

    /* incomplete: valid so far */
    RQ("empty input", "", INC, NONE),
    RQ("method only", "GET", INC, NONE),
    RQ("half version", "GET / HTT", INC, NONE),
    RQ("request line without LF", "GET / HTTP/1.1\r", INC, NONE),
    RQ("no final empty line", GET11 HOST, INC, NONE),
    RQ("final CR only", GET11 HOST "\r", INC, NONE),
    RQ("scheme prefix", "GET http:/", INC, NONE),

    /* leading empty lines (refused on purpose, see parser.c) */
    RQ("leading CRLF", "\r\n" GET11 HOST "\r\n", ERR, BAD_REQUEST_LINE),
    RQ("leading LF", "\n" GET11 HOST "\r\n", ERR, BARE_LF),
    RQ("leading bare CR", "\rGET / HTTP/1.1\r\n", ERR, BARE_CR),
    RQ("leading space", " GET / HTTP/1.1\r\n", ERR, BAD_METHOD),

    /* method */
    RQ("empty method", " / HTTP/1.1\r\n" HOST "\r\n", ERR, BAD_METHOD),
    RQ("method with @", "G@T / HTTP/1.1\r\n" HOST "\r\n", ERR, BAD_METHOD),
    RQ("method with slash", "GE/T / HTTP/1.1\r\n", ERR, BAD_METHOD),
    RQ("method with NUL", "GE\0T / HTTP/1.1\r\n", ERR, CONTROL_BYTE),
    RQ("method then tab", "GET\t/ HTTP/1.1\r\n", ERR, CONTROL_BYTE),
    RQ("method with non-ASCII", "G\xc3\x89T / HTTP/1.1\r\n", ERR, BAD_METHOD),
    RQ("method then CRLF", "GET\r\n", ERR, BAD_REQUEST_LINE),
    RQ("method then LF", "GET\n", ERR, BARE_LF),
    RQ("method with bare CR", "GET\rX", ERR, BARE_CR),
    RQ("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\n" HOST "\r\n", ERR, CONNECT_METHOD),
    RQ("connect lower case", "connect / HTTP/1.1\r\n", ERR, CONNECT_METHOD),
    RQ("CONNECT origin-form", "CONNECT / HTTP/1.1\r\n", ERR, CONNECT_METHOD),

    /* request-line spacing */
    RQ("two spaces after method", "GET  / HTTP/1.1\r\n", ERR, BAD_REQUEST_LINE),
    RQ("two spaces before version", "GET /  HTTP/1.1\r\n", ERR, BAD_REQUEST_LINE),
    RQ("trailing space", "GET / HTTP/1.1 \r\n" HOST "\r\n", ERR, BAD_REQUEST_LINE),
    RQ("tab between parts", "GET /\tHTTP/1.1\r\n", ERR, CONTROL_BYTE),
    RQ("space in target", "GET /foo bar/ HTTP/1.1\r\n", ERR, BAD_VERSION),
    RQ("HTTP/0.9", "GET /\r\n\r\n", ERR, BAD_VERSION),
    RQ("HTTP/0.9 with space", "GET / \r\n", ERR, BAD_VERSION),
    RQ("bare LF after target", "GET /\n", ERR, BARE_LF),
    RQ("LF line end", "GET / HTTP/1.1\n" HOST "\r\n", ERR, BARE_LF),
    RQ("bare CR line end", "GET / HTTP/1.1\rHost: a\r\n", ERR, BARE_CR),

    /* targets */
    RQ("asterisk", "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", ERR, ASTERISK_FORM),
    RQ("asterisk GET", "GET * HTTP/1.1\r\n", ERR, ASTERISK_FORM),
    RQ("PRI preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ERR, ASTERISK_FORM),
    RQ("absolute http", "GET http://example.com/ HTTP/1.1\r\n" HOST "\r\n", ERR, ABSOLUTE_FORM),
    RQ("absolute https upper", "GET HTTPS://example.com/ HTTP/1.1\r\n", ERR, ABSOLUTE_FORM),
    RQ("absolute other scheme", "GET gopher://127.0.0.1:6379/_ HTTP/1.1\r\n", ERR, ABSOLUTE_FORM),
    RQ("absolute no path", "GET http://a?x HTTP/1.1\r\n", ERR, ABSOLUTE_FORM),
    RQ("authority-form", "GET example.com:443 HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("scheme without slashes", "GET jar:http://x HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("port-like garbage", "GET localhost:+11211 HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("digit first", "GET 0://evil HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("relative path", "GET a/b HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("fragment", "GET /a#b HTTP/1.1\r\n" HOST "\r\n", ERR, BAD_TARGET),
    RQ("fragment after query", "GET /a?q=1#x HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("double quote", "GET /a\"b HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("backslash", "GET /a\\b HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("pipe in query", "GET /a?q=| HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("angle bracket", "GET /<script> HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("curly brace", "GET /a{b} HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("caret", "GET /a^b HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("backtick", "GET /a`b HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("square bracket", "GET /a[0] HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("utf-8 in target", "GET /\xce\xb4 HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("byte 0xff in target", "GET /\xff HTTP/1.1\r\n", ERR, BAD_TARGET),
    RQ("NUL in target", "GET /a\0b HTTP/1.1\r\n", ERR, CONTROL_BYTE),
    RQ("DEL in target", "GET /a\x7f HTTP/1.1\r\n", ERR, CONTROL_BYTE),
    RQ("VT in target", "GET /a\x0b HTTP/1.1\r\n", ERR, CONTROL_BYTE),

    /* versions */
    RQ("HTTP/1.2", "GET / HTTP/1.2\r\n", ERR, BAD_VERSION),
    RQ("HTTP/2.0", "GET / HTTP/2.0\r\n", ERR, BAD_VERSION),
    RQ("HTTP/0.9 explicit", "GET / HTTP/0.9\r\n", ERR, BAD_VERSION),
    RQ("HTTP/5.6", "GET / HTTP/5.6", ERR, BAD_VERSION),
    RQ("lower-case version", "GET / http/1.1\r\n", ERR, BAD_VERSION),
    RQ("HTTP/1.10", "GET / HTTP/1.10\r\n", ERR, BAD_VERSION),
    RQ("HTTP/1", "GET / HTTP/1\r\n", ERR, BAD_VERSION),
    RQ("HTTP/1.", "GET / HTTP/1.\r\n", ERR, BAD_VERSION),
    RQ("HTTP/ 1.1", "GET / HTTP/ 1.1\r\n", ERR, BAD_REQUEST_LINE),
    RQ("ICE/1.0", "GET / ICE/1.0\r\n", ERR, BAD_VERSION),
    RQ("RTSP/1.0", "OPTIONS / RTSP/1.0\r\n", ERR, BAD_VERSION),
    RQ("IHTTP/1.0", "GET / IHTTP/1.0\r\n", ERR, BAD_VERSION),
    RQ("NUL after version", "GET / HTTP/1.1\0\r\n", ERR, CONTROL_BYTE),
    RQ("version then bare CR", "GET / HTTP/1.1\rX", ERR, BARE_CR),

    /* field lines */
    RQ("obs-fold space", GET11 HOST "X: a\r\n b\r\n\r\n", ERR, OBS_FOLD),
    RQ("obs-fold tab", GET11 HOST "X: a\r\n\tb\r\n\r\n", ERR, OBS_FOLD),
    RQ("space-prefixed first line", GET11 " Host: a\r\n\r\n", ERR, OBS_FOLD),
    RQ("folded host", GET11 HOST " 169.254.169.254\r\n\r\n", ERR, OBS_FOLD),
    RQ("folded empty continuation", GET11 HOST "X:\r\n \r\n\r\n", ERR, OBS_FOLD),
    RQ("space before colon", GET11 "Host : a\r\n\r\n", ERR, SPACE_BEFORE_COLON),
    RQ("tab before colon", GET11 "Host\t: a\r\n\r\n", ERR, SPACE_BEFORE_COLON),
    RQ("space in name", GET11 "Transfer Encoding: chunked\r\n", ERR, SPACE_BEFORE_COLON),
    RQ("missing colon", GET11 HOST "X-Thing\r\n\r\n", ERR, MISSING_COLON),
    RQ("empty name", GET11 HOST ": value\r\n\r\n", ERR, BAD_HEADER_NAME),
    RQ("name with @", GET11 "Fo@: x\r\n", ERR, BAD_HEADER_NAME),
    RQ("name with slash", GET11 "A/B: x\r\n", ERR, BAD_HEADER_NAME),
    RQ("name with quote", GET11 "A\"B: x\r\n", ERR, BAD_HEADER_NAME),
    RQ("name with NUL", GET11 "A\0B: x\r\n", ERR, CONTROL_BYTE),
    RQ("name with SOH then tab", GET11 "Foo\x01\test: Bar\r\n", ERR, CONTROL_BYTE),
    RQ("name non-ASCII", GET11 "Transf\x82r-Encoding: chunked\r\n", ERR, BAD_HEADER_NAME),
    RQ("name with bare CR", GET11 "Content\rLength: 3\r\n", ERR, BARE_CR),
    RQ("name then CRLF", GET11 "Connection\r\n", ERR, MISSING_COLON),
    RQ("name with LF", GET11 "Foo\nBar: 1\r\n", ERR, BARE_LF),
    RQ("value NUL", GET11 HOST "X: a\0b\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("value SOH", GET11 HOST "X: \x01\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("value VT", GET11 HOST "X: a\x0b\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("value FF", GET11 HOST "X: hello\x0cworld\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("value ESC", GET11 HOST "X: \x1b[0m\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("value DEL", GET11 HOST "X: a\x7f\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("value bare CR", GET11 HOST "X: keep\ralive\r\n\r\n", ERR, BARE_CR),
    RQ("value CR CR LF", GET11 HOST "X: a\r\r\n\r\n", ERR, BARE_CR),
    RQ("value bare LF", GET11 HOST "X: a\nb\r\n\r\n", ERR, BARE_LF),
    RQ("field LF line end", GET11 "Host: a\n\r\n", ERR, BARE_LF),
    RQ("empty value then bare CR", GET11 HOST "x:\rTransfer-Encoding: chunked\r\n\r\n", ERR,
       BARE_CR),
    RQ("empty value then bare LF", GET11 HOST "x:\nTransfer-Encoding: chunked\r\n\r\n", ERR,
       BARE_LF),
    RQ("final LF", GET11 HOST "\n", ERR, BARE_LF),
    RQ("final CR then junk", GET11 HOST "\rZGET /evil HTTP/1.1\r\n", ERR, BARE_CR),
    RQ("all LF", "GET / HTTP/1.1\nHost: a\n\n", ERR, BARE_LF),

    /* Host */
    RQ("missing host 1.1", GET11 "\r\n", ERR, MISSING_HOST),
    RQ("missing host 1.0", "GET / HTTP/1.0\r\n\r\n", ERR, MISSING_HOST),
    RQ("missing host with others", GET11 "Accept: */*\r\n\r\n", ERR, MISSING_HOST),
    RQ("duplicate host", GET11 HOST HOST "\r\n", ERR, DUPLICATE_HOST),
    RQ("duplicate host differing", GET11 HOST "Host: 169.254.169.254\r\n\r\n", ERR, DUPLICATE_HOST),
    RQ("duplicate host case", GET11 HOST "HOST: example.com\r\n\r\n", ERR, DUPLICATE_HOST),
    RQ("empty host", GET11 "Host: \r\n\r\n", ERR, BAD_HOST),
    RQ("host list", GET11 "Host: a.example, b.example\r\n\r\n", ERR, BAD_HOST),
    RQ("host comma no space", GET11 "Host: a,b\r\n\r\n", ERR, BAD_HOST),
    RQ("host with space", GET11 "Host: a b\r\n\r\n", ERR, BAD_HOST),
    RQ("host with tab", GET11 "Host: a\tb\r\n\r\n", ERR, BAD_HOST),
    RQ("host userinfo", GET11 "Host: api.example.com@169.254.169.254\r\n\r\n", ERR, BAD_HOST),
    RQ("host path", GET11 "Host: a/b\r\n\r\n", ERR, BAD_HOST),
    RQ("host fragment", GET11 "Host: a#b\r\n\r\n", ERR, BAD_HOST),
    RQ("host query", GET11 "Host: a?b\r\n\r\n", ERR, BAD_HOST),
    RQ("host backslash", GET11 "Host: a\\b\r\n\r\n", ERR, BAD_HOST),
    RQ("host non-ASCII", GET11 "Host: \xc3\xa9.example\r\n\r\n", ERR, BAD_HOST),
    RQ("host empty port", GET11 "Host: a:\r\n\r\n", ERR, BAD_HOST),
    RQ("host bad port", GET11 "Host: api.example.com:evil\r\n\r\n", ERR, BAD_HOST),
    RQ("host port too big", GET11 "Host: a:65536\r\n\r\n", ERR, BAD_HOST),
    RQ("host port too long", GET11 "Host: a:000080\r\n\r\n", ERR, BAD_HOST),
    RQ("host two ports", GET11 "Host: a:1:2\r\n\r\n", ERR, BAD_HOST),
    RQ("host only port", GET11 "Host: :80\r\n\r\n", ERR, BAD_HOST),
    RQ("host bad pct", GET11 "Host: a%zz\r\n\r\n", ERR, BAD_HOST),
    RQ("host short pct", GET11 "Host: a%4\r\n\r\n", ERR, BAD_HOST),
    RQ("host ipv6 unclosed", GET11 "Host: [::1\r\n\r\n", ERR, BAD_HOST),
    RQ("host ipv6 bad", GET11 "Host: [zz::1]\r\n\r\n", ERR, BAD_HOST),
    RQ("host ipv6 junk after", GET11 "Host: [::1]x\r\n\r\n", ERR, BAD_HOST),
    RQ("host ipv6 zone", GET11 "Host: [fe80::1%25eth0]\r\n\r\n", ERR, BAD_HOST),
    RQ("host ipv6 empty", GET11 "Host: []\r\n\r\n", ERR, BAD_HOST),
    RQ("host bare ipv6", GET11 "Host: ::1\r\n\r\n", ERR, BAD_HOST),
    RQ("host NUL", GET11 "Host: a\0.evil\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("host underscore alias", GET11 HOST "Ho_st: evil\r\n\r\n", OK, NONE),

    /* Content-Length */
    RQ("CL plus sign", POST11 "Content-Length: +5\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL negative", POST11 "Content-Length: -1\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL hex", POST11 "Content-Length: 0x10\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL list", POST11 "Content-Length: 5,5\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL list spaced", POST11 "Content-Length: 5, 5\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL empty", POST11 "Content-Length:\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL blank", POST11 "Content-Length:   \r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL inner space", POST11 "Content-Length: 4 2\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL trailing letter", POST11 "Content-Length: 5a\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL decimal point", POST11 "Content-Length: 5.0\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL exponent", POST11 "Content-Length: 1e3\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL overflow 20 digits", POST11 "Content-Length: 99999999999999999999\r\n\r\n", ERR,
       BAD_CONTENT_LENGTH),
    RQ("CL overflow 2^64", POST11 "Content-Length: 18446744073709551616\r\n\r\n", ERR,
       BAD_CONTENT_LENGTH),
    RQ("CL overflow 22 digits", POST11 "Content-Length: 1000000000000000000000\r\n", ERR,
       BAD_CONTENT_LENGTH),
    RQ("CL uint64 max too large", POST11 "Content-Length: 18446744073709551615\r\n\r\n", ERR,
       BODY_TOO_LARGE),
    RQ("CL over limit", POST11 "Content-Length: 10485761\r\n\r\n", ERR, BODY_TOO_LARGE),
    RQ("CL VT suffix", POST11 "Content-Length: 5\x0b\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("CL quoted", POST11 "Content-Length: \"5\"\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    /* llhttp refuses a tab after the value: refused here too (differential test). */
    RQ("CL trailing tab", POST11 "Content-Length: 5\t\r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL trailing space tab", POST11 "Content-Length: 5 \t \r\n\r\n", ERR, BAD_CONTENT_LENGTH),
    RQ("CL leading tab", POST11 "Content-Length:\t5 \r\n\r\n", OK, NONE),
    RQ("TE trailing tab", POST11 "Transfer-Encoding: chunked\t\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("CL duplicate equal", POST11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", ERR,
       DUPLICATE_CONTENT_LENGTH),
    RQ("CL duplicate differing", POST11 "Content-Length: 1\r\nContent-Length: 2\r\n", ERR,
       DUPLICATE_CONTENT_LENGTH),
    RQ("CL alias underscore", POST11 "Content_Length: 5\r\n\r\n", ERR, BAD_HEADER_NAME),
    RQ("CL space before colon", POST11 "Content-Length : 4\r\n\r\n", ERR, SPACE_BEFORE_COLON),

    /* Transfer-Encoding and smuggling */
    RQ("CL.TE", POST11 "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", ERR,
       CONTENT_LENGTH_WITH_TE),
    RQ("TE.CL", POST11 "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", ERR,
       CONTENT_LENGTH_WITH_TE),
    RQ("CL with TE identity", POST11 "Content-Length: 1\r\nTransfer-Encoding: identity\r\n\r\n",
       ERR, CONTENT_LENGTH_WITH_TE),
    RQ("TE xchunked", POST11 "Transfer-Encoding: xchunked\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE chunkedchunked", POST11 "Transfer-Encoding: chunkedchunked\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE chunk", POST11 "Transfer-Encoding: chunk\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE identity", POST11 "Transfer-Encoding: identity\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE gzip", POST11 "Transfer-Encoding: gzip\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE pigeons", POST11 "Transfer-Encoding: pigeons\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE chunked twice in list", POST11 "Transfer-Encoding: chunked, chunked\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE gzip, chunked", POST11 "Transfer-Encoding: gzip, chunked\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE chunked, gzip", POST11 "Transfer-Encoding: chunked, gzip\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE leading comma", POST11 "Transfer-Encoding: ,chunked\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE trailing comma", POST11 "Transfer-Encoding: chunked,\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE parameter", POST11 "Transfer-Encoding: chunked;x\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE parameter spaced", POST11 "Transfer-Encoding: chunked ; q=1\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE quoted", POST11 "Transfer-Encoding: \"chunked\"\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE single quoted", POST11 "Transfer-Encoding: 'chunked'\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE inner space", POST11 "Transfer-Encoding: chun ked\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE nested", POST11 "Transfer-Encoding: cow chunked bar\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE empty", POST11 "Transfer-Encoding:\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE non-ASCII", POST11 "Transfer-Encoding: ch\x96nked\r\n\r\n", ERR, BAD_TRANSFER_ENCODING),
    RQ("TE nbsp prefix",
       POST11 "Transfer-Encoding: \xa0"
              "chunked\r\n\r\n",
       ERR, BAD_TRANSFER_ENCODING),
    RQ("TE VT suffix", POST11 "Transfer-Encoding: chunked\x0b\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("TE VT prefix",
       POST11 "Transfer-Encoding:\x0b"
              "chunked\r\n\r\n",
       ERR, BAD_HEADER_VALUE),
    RQ("TE FF suffix", POST11 "Transfer-Encoding: chunked\x0c\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("TE NUL suffix", POST11 "Transfer-Encoding: chunked\0\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("TE CR suffix", POST11 "Transfer-Encoding: chunked\r\r\n\r\n", ERR, BARE_CR),
    RQ("TE LF prefix", POST11 "Transfer-Encoding:\nchunked\r\n\r\n", ERR, BARE_LF),
    RQ("TE line-wrapped", POST11 "Transfer-Encoding:\r\n chunked\r\n\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE folded after value", POST11 "Transfer-Encoding: chunked\r\n  abc\r\n\r\n", ERR,
       OBS_FOLD),
    RQ("TE two lines", POST11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       ERR, BAD_TRANSFER_ENCODING),
    RQ("TE cow then chunked lines",
       POST11 "Transfer-Encoding: cow\r\nTransfer-Encoding: chunked\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE three empty lines", POST11 "Transfer-Encoding:\r\nTransfer-Encoding:\r\n", ERR,
       BAD_TRANSFER_ENCODING),
    RQ("TE space before colon", POST11 "Transfer-Encoding : chunked\r\n\r\n", ERR,
       SPACE_BEFORE_COLON),
    RQ("TE underscore", POST11 "Transfer_Encoding: chunked\r\n\r\n", ERR, BAD_HEADER_NAME),
    RQ("TE underscore lower", POST11 "transfer_encoding: chunked\r\n\r\n", ERR, BAD_HEADER_NAME),
    RQ("TE in HTTP/1.0", "POST / HTTP/1.0\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n", ERR,
       TE_IN_HTTP10),
    RQ("TE in HTTP/1.0 with CL",
       "POST / HTTP/1.0\r\n" HOST "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", ERR,
       TE_IN_HTTP10),
    RQ("smuggler CL.TE probe",
       "POST /?cb=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" SMUGGLE_TAIL, ERR,
       CONTENT_LENGTH_WITH_TE),
    RQ("smuggler tab prefix", "POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n" SMUGGLE_TAIL,
       ERR, CONTENT_LENGTH_WITH_TE),
    RQ("smuggler X-rout bare CR", "POST / HTTP/1.1\r\nX:X\rTransfer-Encoding: chunked\r\n", ERR,
       BARE_CR),
    RQ("smuggler X-nout bare LF", "POST / HTTP/1.1\r\nX:X\nTransfer-Encoding: chunked\r\n", ERR,
       BARE_LF),
    RQ("smuggler 0dspam", "POST / HTTP/1.1\r\nTransfer\r-Encoding: chunked\r\n", ERR, BARE_CR),
    RQ("smuggler prefix DEL", "POST / HTTP/1.1\r\n\x7fTransfer-Encoding: chunked\r\n", ERR,
       CONTROL_BYTE),
    RQ("smuggler prefix 0xff", "POST / HTTP/1.1\r\n\xffTransfer-Encoding: chunked\r\n", ERR,
       BAD_HEADER_NAME),
    RQ("smuggler postspace VT", "POST / HTTP/1.1\r\nTransfer-Encoding\x0b: chunked\r\n", ERR,
       CONTROL_BYTE),

    /* Expect */
    RQ("expect other", POST11 "Expect: 200-ok\r\n\r\n", ERR, EXPECTATION),
    RQ("expect with params", POST11 "Expect: 100-continue; x=1\r\n\r\n", ERR, EXPECTATION),
    RQ("expect empty", POST11 "Expect:\r\n\r\n", ERR, EXPECTATION),
    RQ("expect twice", POST11 "Expect: 100-continue\r\nExpect: 100-continue\r\n\r\n", ERR,
       EXPECTATION),

    /* Connection */
    RQ("connection space separated", GET11 HOST "Connection: close keep-alive\r\n\r\n", ERR,
       BAD_HEADER_VALUE),
    RQ("connection semicolon", GET11 HOST "Connection: close;\r\n\r\n", ERR, BAD_HEADER_VALUE),
    RQ("connection quoted", GET11 HOST "Connection: \"close\"\r\n\r\n", ERR, BAD_HEADER_VALUE),

    /* pipelined bytes after the head do not matter to the head */
    RQ("pipelined junk after head", GET11 HOST "\r\n\x01\x02garbage", OK, NONE),
};

static void run_request_case(void **state)
{
    const req_case_t *c = *state;
    static req_result_t full;
    parse_request(c->raw, c->len, &default_limits, &full);
    if (full.status != c->status || full.reject != c->reject)
        fail_msg("%s: got status %d reason %s, want %d %s", c->name, full.status,
                 sy_http_reject_name(full.reject), c->status, sy_http_reject_name(c->reject));
    if (full.status == SY_HTTP_OK)
        assert_request_invariants(c->raw, c->len, &default_limits, &full);
    assert_request_incremental(c->raw, c->len, &default_limits, &full);
}

/* ---- requests: exact fields ----------------------------------------------------- */

static void test_request_fields(void **state)
{
    (void)state;
    static const char raw[] = "POST /v1/items?x=1&y=/z HTTP/1.1\r\n"
                              "Host:  api.example.com:8443 \t\r\n"
                              "X-Empty:\r\n"
                              "Content-Length: 5\r\n"
                              "x-forwarded-for: 1.2.3.4\r\n"
                              "\r\n"
                              "hello";
    req_result_t r;
    parse_request(raw, sizeof raw - 1, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_int_equal(r.reject, SY_REJECT_NONE);
    const sy_http_request_t *q = &r.req;
    assert_true(slice_is(q->method, "POST"));
    assert_true(slice_is(q->target, "/v1/items?x=1&y=/z"));
    assert_true(slice_is(q->path, "/v1/items"));
    assert_true(q->has_query);
    assert_true(slice_is(q->query, "x=1&y=/z"));
    assert_int_equal(q->minor_version, 1);
    assert_true(slice_is(q->host, "api.example.com:8443"));
    assert_int_equal(q->header_count, 4);
    assert_ptr_equal(q->headers, r.headers);
    assert_true(slice_is(r.headers[0].name, "Host"));
    assert_int_equal(r.headers[0].id, SY_HDR_HOST);
    assert_true(slice_is(r.headers[1].name, "X-Empty"));
    assert_int_equal(r.headers[1].value.len, 0);
    assert_int_equal(r.headers[1].id, SY_HDR_OTHER);
    assert_true(slice_is(r.headers[2].value, "5"));
    assert_int_equal(r.headers[2].id, SY_HDR_CONTENT_LENGTH);
    assert_true(slice_is(r.headers[3].name, "x-forwarded-for"));
    assert_true(slice_is(r.headers[3].value, "1.2.3.4"));
    assert_int_equal(r.headers[3].id, SY_HDR_X_FORWARDED_FOR);
    assert_int_equal(q->body_kind, SY_BODY_LENGTH);
    assert_int_equal(q->content_length, 5);
    assert_true(q->keep_alive);
    assert_false(q->expect_continue);
    assert_int_equal(q->head_len, sizeof raw - 1 - 5);
    assert_memory_equal(raw + q->head_len, "hello", 5);
}

static void test_request_no_query(void **state)
{
    (void)state;
    static const char raw[] = "GET /a/b HTTP/1.0\r\nHost: h\r\n\r\n";
    req_result_t r;
    parse_request(raw, sizeof raw - 1, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.req.path, "/a/b"));
    assert_false(r.req.has_query);
    assert_int_equal(r.req.query.len, 0);
    assert_int_equal(r.req.minor_version, 0);
    assert_false(r.req.keep_alive);
    assert_int_equal(r.req.body_kind, SY_BODY_NONE);

    static const char empty_query[] = "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n";
    parse_request(empty_query, sizeof empty_query - 1, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(r.req.has_query);
    assert_int_equal(r.req.query.len, 0);
    assert_true(slice_is(r.req.path, "/a"));
}

static void test_request_value_trimming(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: h\r\nA: \t x \t y\t \r\nB:z\r\n\r\n";
    req_result_t r;
    parse_request(raw, sizeof raw - 1, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.headers[1].value, "x \t y"));
    assert_true(slice_is(r.headers[2].value, "z"));
}

typedef struct {
    const char *raw;
    bool keep_alive;
    bool expect_continue;
    sy_body_kind_t body;
} flags_case_t;

static void test_request_connection_flags(void **state)
{
    (void)state;
    static const flags_case_t cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true, false, SY_BODY_NONE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false, false, SY_BODY_NONE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false, false, SY_BODY_NONE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\t\r\n\r\n", false, false, SY_BODY_NONE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n", false, false, SY_BODY_NONE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true, false, SY_BODY_NONE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false,
         false, SY_BODY_NONE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true, false, SY_BODY_NONE},
        {"GET / HTTP/1.0\r\nHost: h\r\n\r\n", false, false, SY_BODY_NONE},
        {"GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true, false, SY_BODY_NONE},
        {"GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", true, false, SY_BODY_NONE},
        {"GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", false, false,
         SY_BODY_NONE},
        {"GET / HTTP/1.0\r\nHost: h\r\nKeep-Alive: 300\r\n\r\n", false, false, SY_BODY_NONE},
        {"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", true,
         true, SY_BODY_LENGTH},
        {"POST / HTTP/1.0\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", false,
         false, SY_BODY_LENGTH},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", true, false,
         SY_BODY_CHUNKED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req_result_t r;
        parse_request(cases[i].raw, strlen(cases[i].raw), &default_limits, &r);
        if (r.status != SY_HTTP_OK)
            fail_msg("case %zu rejected: %s", i, sy_http_reject_name(r.reject));
        if (r.req.keep_alive != cases[i].keep_alive)
            fail_msg("case %zu: keep_alive %d", i, r.req.keep_alive);
        assert_int_equal(r.req.expect_continue, cases[i].expect_continue);
        assert_int_equal(r.req.body_kind, cases[i].body);
    }
}

static void test_request_content_length_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint64_t want;
    } cases[] = {{"0", 0},
                 {"003", 3},
                 {" 5 ", 5},
                 {"\t42  ", 42},
                 {"10", 10},
                 {"1048576", 1048576},
                 {"00000000000000000000000000001", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char raw[256];
        int n = snprintf(raw, sizeof raw, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:%s\r\n\r\n",
                         cases[i].value);
        req_result_t r;
        parse_request(raw, (size_t)n, &default_limits, &r);
        if (r.status != SY_HTTP_OK)
            fail_msg("CL '%s' rejected: %s", cases[i].value, sy_http_reject_name(r.reject));
        assert_int_equal(r.req.body_kind, SY_BODY_LENGTH);
        assert_int_equal(r.req.content_length, cases[i].want);
    }
}

/* Two requests and a chunked one in one buffer: each head ends where its
 * body starts, and the next request parses from the end of the body. */
static void test_pipelining(void **state)
{
    (void)state;
    static const char raw[] = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nAAA"
                              "PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "4\r\nBBBB\r\n0\r\n\r\n"
                              "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    size_t len = sizeof raw - 1, off = 0;
    req_result_t r;

    parse_request(raw, len, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.req.path, "/a"));
    assert_int_equal(r.req.head_len,
                     strlen("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"));
    assert_memory_equal(raw + r.req.head_len, "AAA", 3);
    off = r.req.head_len + r.req.content_length;

    parse_request(raw + off, len - off, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.req.method, "PUT"));
    assert_true(slice_is(r.req.path, "/b"));
    assert_int_equal(r.req.body_kind, SY_BODY_CHUNKED);
    off += r.req.head_len;

    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, 1024);
    size_t consumed;
    sy_slice_t data;
    sy_http_reject_t rej;
    assert_int_equal(sy_http_chunked_decode(&dec, raw + off, len - off, &consumed, &data, &rej),
                     SY_CHUNKED_DATA);
    assert_true(slice_is(data, "BBBB"));
    off += consumed;
    assert_int_equal(sy_http_chunked_decode(&dec, raw + off, len - off, &consumed, &data, &rej),
                     SY_CHUNKED_DONE);
    off += consumed;

    parse_request(raw + off, len - off, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.req.path, "/c"));
    assert_false(r.req.keep_alive);
    assert_int_equal(off + r.req.head_len, len);
}

/* ---- limits ------------------------------------------------------------------------- */

static void test_limit_request_line(void **state)
{
    (void)state;
    sy_http_limits_t lim = default_limits;
    static const char raw[] = "GET /0123456789 HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t line = strlen("GET /0123456789 HTTP/1.1\r\n");
    req_result_t r;

    lim.max_request_line_bytes = line; /* the line fits exactly, CRLF included */
    parse_request(raw, sizeof raw - 1, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_OK);

    lim.max_request_line_bytes = line - 1;
    parse_request(raw, sizeof raw - 1, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_ERROR);
    assert_int_equal(r.reject, SY_REJECT_REQUEST_LINE_TOO_LONG);
    assert_int_equal(sy_http_reject_status(r.reject), 414);
    assert_request_incremental(raw, sizeof raw - 1, &lim, &r);

    /* Detected as soon as the limit is reached, long before any CRLF. */
    lim.max_request_line_bytes = 16;
    static const char slow[] = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    parse_request(slow, 15, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_INCOMPLETE);
    parse_request(slow, 16, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_ERROR);
    assert_int_equal(r.reject, SY_REJECT_REQUEST_LINE_TOO_LONG);

    /* A syntax error inside the allowed bytes is still named as such. */
    static const char bad[] = "GET /a#aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    parse_request(bad, sizeof bad - 1, &lim, &r);
    assert_int_equal(r.reject, SY_REJECT_BAD_TARGET);
}

static void test_limit_header_bytes(void **state)
{
    (void)state;
    sy_http_limits_t lim = default_limits;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789\r\n\r\n";
    size_t section = sizeof raw - 1 - strlen("GET / HTTP/1.1\r\n");
    req_result_t r;

    lim.max_header_bytes = section;
    parse_request(raw, sizeof raw - 1, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_OK);

    lim.max_header_bytes = section - 1;
    parse_request(raw, sizeof raw - 1, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_ERROR);
    assert_int_equal(r.reject, SY_REJECT_HEADERS_TOO_LARGE);
    assert_int_equal(sy_http_reject_status(r.reject), 431);
    assert_request_incremental(raw, sizeof raw - 1, &lim, &r);

    /* An endless header line is refused once the limit is reached. */
    lim.max_header_bytes = 20;
    static const char slow[] = "GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    parse_request(slow, 16 + 19, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_INCOMPLETE);
    parse_request(slow, 16 + 20, &lim, &r);
    assert_int_equal(r.reject, SY_REJECT_HEADERS_TOO_LARGE);
}

static void test_limit_header_count(void **state)
{
    (void)state;
    sy_http_limits_t lim = default_limits;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    req_result_t r;

    lim.max_headers = 3;
    parse_request(raw, sizeof raw - 1, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_int_equal(r.req.header_count, 3);

    lim.max_headers = 2;
    parse_request(raw, sizeof raw - 1, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_ERROR);
    assert_int_equal(r.reject, SY_REJECT_TOO_MANY_HEADERS);
    assert_int_equal(sy_http_reject_status(r.reject), 431);
    assert_request_incremental(raw, sizeof raw - 1, &lim, &r);

    /* The caller's array bounds it too, whatever the policy says. */
    sy_http_header_t small[2];
    sy_http_request_t req;
    sy_http_reject_t rej;
    assert_int_equal(
        sy_http_request_parse(NULL, raw, sizeof raw - 1, &default_limits, small, 2, &req, &rej),
        SY_HTTP_ERROR);
    assert_int_equal(rej, SY_REJECT_TOO_MANY_HEADERS);

    /* More than SY_HTTP_MAX_HEADERS is refused even with a looser limit. */
    lim.max_headers = 100000;
    static char many[16 + 9 + (SY_HTTP_MAX_HEADERS + 1) * 6 + 2];
    size_t n = 0;
    n += (size_t)sprintf(many + n, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < SY_HTTP_MAX_HEADERS; i++)
        n += (size_t)sprintf(many + n, "A: 1\r\n");
    n += (size_t)sprintf(many + n, "\r\n");
    lim.max_header_bytes = sizeof many;
    parse_request(many, n, &lim, &r);
    assert_int_equal(r.reject, SY_REJECT_TOO_MANY_HEADERS);
}

static void test_limit_body(void **state)
{
    (void)state;
    sy_http_limits_t lim = default_limits;
    lim.max_body_bytes = 100;
    req_result_t r;
    static const char ok[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n";
    static const char big[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n";
    parse_request(ok, sizeof ok - 1, &lim, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    parse_request(big, sizeof big - 1, &lim, &r);
    assert_int_equal(r.reject, SY_REJECT_BODY_TOO_LARGE);
    assert_int_equal(sy_http_reject_status(r.reject), 413);
    /* Known before the head ends: no need to wait for the empty line. */
    parse_request(big, strlen("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n"), &lim, &r);
    assert_int_equal(r.reject, SY_REJECT_BODY_TOO_LARGE);
}

/* ---- resumed parsing: work done and state ------------------------------------------ */

static const sy_http_limits_t roomy_limits = {
    .max_request_line_bytes = 65536,
    .max_header_bytes = 65536,
    .max_headers = SY_HTTP_MAX_HEADERS,
    .max_body_bytes = 10485760,
};

/* A request head of `lines` filler field lines of `value_len` value bytes
 * each (after the request line and Host); returns its length. */
static size_t build_head(char *buf, size_t cap, const char *start_line, size_t lines,
                         size_t value_len)
{
    size_t n = (size_t)snprintf(buf, cap, "%sHost: example.com\r\n", start_line);
    for (size_t i = 0; i < lines; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "X-Filler-%03zu: ", i);
        assert_true(n + value_len + 4 < cap);
        memset(buf + n, 'a' + (int)(i % 26), value_len);
        n += value_len;
        memcpy(buf + n, "\r\n", 2);
        n += 2;
    }
    assert_true(n + 2 <= cap);
    memcpy(buf + n, "\r\n", 2);
    return n + 2;
}

/* Feeds buf[0, len) in calls that add `step` bytes each to one state;
 * returns the bytes examined in all. */
static size_t feed_request(const char *buf, size_t len, size_t step, req_result_t *out)
{
    sy_http_head_state_t st = {0};
    for (size_t k = step < len ? step : len;; k = k + step < len ? k + step : len) {
        parse_request_more(&st, buf, k, &roomy_limits, out);
        if (k < len)
            assert_int_equal(out->status, SY_HTTP_INCOMPLETE);
        if (k == len)
            break;
    }
    return st.examined;
}

/*
 * A 32 KiB head trickled one byte per read costs one pass over its bytes:
 * the bytes examined over all 32,000-odd calls equal the head's length. A
 * parse that starts over on every call (what a stateless parser has to do,
 * and what a fresh state per call does) examines the square of it over 2;
 * the second half shows the counter sees that work.
 */
static void test_work_is_linear_byte_by_byte(void **state)
{
    (void)state;
    static char head[40000];
    size_t len = build_head(head, sizeof head, "GET /trickle HTTP/1.1\r\n", 200, 150);
    assert_true(len >= 32 * 1024);
    static req_result_t r, whole;
    size_t examined = feed_request(head, len, 1, &r);
    parse_request(head, len, &roomy_limits, &whole);
    assert_int_equal(whole.status, SY_HTTP_OK);
    assert_same_verdict(&r, &whole, "byte by byte", len, len);
    assert_int_equal(r.req.header_count, 201);
    assert_int_equal(examined, len);

    /* Starting over on every call: quadratic, shown on the first 4 KiB. */
    size_t small = 4096, rescanned = 0;
    for (size_t k = 1; k <= small; k++) {
        sy_http_head_state_t fresh = {0};
        parse_request_more(&fresh, head, k, &roomy_limits, &r);
        assert_int_equal(r.status, SY_HTTP_INCOMPLETE);
        rescanned += fresh.examined;
    }
    assert_int_equal(rescanned, small * (small + 1) / 2);
}

/* A 100-line head sent one line per packet: one pass in all, not one per
 * packet. */
static void test_work_is_linear_line_per_packet(void **state)
{
    (void)state;
    static char head[16384];
    size_t len = build_head(head, sizeof head, "GET /lines HTTP/1.1\r\n", 99, 60);
    sy_http_head_state_t st = {0};
    req_result_t r;
    size_t calls = 0;
    for (const char *p = head; p < head + len;) {
        const char *eol = memchr(p, '\n', (size_t)(head + len - p));
        assert_non_null(eol);
        p = eol + 1;
        parse_request_more(&st, head, (size_t)(p - head), &roomy_limits, &r);
        calls++;
    }
    assert_int_equal(calls, 102); /* request line, Host, 99 fillers, the empty line */
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_int_equal(r.req.head_len, len);
    assert_int_equal(st.examined, len);
}

/* Inside one line too: a 60 KiB request-target trickled byte by byte, and
 * the same for a status line's reason and a field value. Resuming only at
 * line starts would examine these lines once per byte. */
static void test_work_is_linear_inside_a_line(void **state)
{
    (void)state;
    static char head[70000];
    size_t n = (size_t)snprintf(head, sizeof head, "GET /");
    memset(head + n, 'p', 60000);
    n += 60000;
    n += (size_t)snprintf(head + n, sizeof head - n, " HTTP/1.1\r\nHost: h\r\n\r\n");
    req_result_t r;
    assert_int_equal(feed_request(head, n, 1, &r), n);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_int_equal(r.req.path.len, 60001);

    n = build_head(head, sizeof head, "GET / HTTP/1.1\r\n", 1, 60000);
    assert_int_equal(feed_request(head, n, 1, &r), n);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_int_equal(r.headers[1].value.len, 60000);

    n = (size_t)snprintf(head, sizeof head, "HTTP/1.1 200 ");
    memset(head + n, 'r', 60000);
    n += 60000;
    n += (size_t)snprintf(head + n, sizeof head - n, "\r\nContent-Length: 0\r\n\r\n");
    sy_http_head_state_t st = {0};
    static sy_http_header_t h[4];
    sy_http_response_t resp;
    sy_http_reject_t rej;
    for (size_t k = 1; k <= n; k++) {
        sy_http_status_t got =
            sy_http_response_parse(&st, head, k, &roomy_limits, false, h, 4, &resp, &rej);
        assert_int_equal(got, k < n ? SY_HTTP_INCOMPLETE : SY_HTTP_OK);
    }
    assert_int_equal(resp.reason.len, 60000);
    assert_int_equal(st.examined, n);
}

/* The limits trip as early as before when the head is trickled: the byte
 * that reaches a limit is refused, not a later one. */
static void test_resumed_limits_trip_early(void **state)
{
    (void)state;
    sy_http_limits_t lim = default_limits;
    lim.max_request_line_bytes = 64;
    static char head[4096];
    memset(head, 'a', sizeof head);
    memcpy(head, "GET /", 5);
    sy_http_head_state_t st = {0};
    req_result_t r;
    for (size_t k = 1; k < 64; k++) {
        parse_request_more(&st, head, k, &lim, &r);
        assert_int_equal(r.status, SY_HTTP_INCOMPLETE);
    }
    parse_request_more(&st, head, 64, &lim, &r);
    assert_int_equal(r.reject, SY_REJECT_REQUEST_LINE_TOO_LONG);
    assert_int_equal(st.examined, 64);

    lim = default_limits;
    lim.max_header_bytes = 100;
    size_t line = strlen("GET / HTTP/1.1\r\n");
    memcpy(head, "GET / HTTP/1.1\r\nX: ", line + 3);
    sy_http_head_state_reset(&st);
    for (size_t k = 1; k < line + 100; k++) {
        parse_request_more(&st, head, k, &lim, &r);
        assert_int_equal(r.status, SY_HTTP_INCOMPLETE);
    }
    parse_request_more(&st, head, line + 100, &lim, &r);
    assert_int_equal(r.reject, SY_REJECT_HEADERS_TOO_LARGE);
}

/*
 * What the state promises callers: reset per message for pipelining; a
 * buffer that moved, or a state not reset after its message was decided,
 * costs a rescan but never a wrong verdict.
 */
static void test_resumed_state_contract(void **state)
{
    (void)state;
    static const char two[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                              "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    size_t first = strlen("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    sy_http_head_state_t st = {0};
    static req_result_t r, whole;

    /* Pipelined: one state, reset between the messages. */
    for (size_t k = 1; k <= first; k++)
        parse_request_more(&st, two, k, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.req.path, "/a"));
    sy_http_head_state_reset(&st);
    for (size_t k = 1; k <= sizeof two - 1 - first; k++)
        parse_request_more(&st, two + first, k, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.req.path, "/b"));
    assert_int_equal(r.req.head_len, sizeof two - 1 - first);

    /* The buffer moves mid-head: the parse starts over on the new one and
     * its slices point there. */
    static char a[64], b[64];
    memcpy(a, two, first);
    memcpy(b, two, first);
    sy_http_head_state_reset(&st);
    parse_request_more(&st, a, 20, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_INCOMPLETE);
    parse_request_more(&st, b, first, &default_limits, &r);
    parse_request(b, first, &default_limits, &whole);
    assert_same_verdict(&r, &whole, "moved buffer", first, first);
    assert_ptr_equal(r.req.method.ptr, b);
    assert_int_equal(st.examined, 20 + first);

    /* Not reset after a decided message: a new message in the same buffer
     * is parsed from its start, not taken for the old one. */
    sy_http_head_state_reset(&st);
    memcpy(a, two, first);
    parse_request_more(&st, a, first, &default_limits, &r);
    assert_true(slice_is(r.req.path, "/a"));
    memcpy(a, "GET /z HTTP/1.1\r\nHost: z\r\n\r\n", first);
    parse_request_more(&st, a, first, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_true(slice_is(r.req.path, "/z"));
    assert_true(slice_is(r.req.host, "z"));

    /* Fewer bytes than last time: a fresh parse of what is there. */
    sy_http_head_state_reset(&st);
    parse_request_more(&st, a, 20, &default_limits, &r);
    parse_request_more(&st, a, 10, &default_limits, &r);
    assert_int_equal(r.status, SY_HTTP_INCOMPLETE);
    assert_true(slice_is(r.req.method, "GET"));
    assert_int_equal(st.pos, 10);

    /* A refused head stays refused, with the same reason. */
    sy_http_head_state_reset(&st);
    static const char bad[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n";
    for (size_t k = 1; k <= sizeof bad - 1; k++) {
        parse_request_more(&st, bad, k, &default_limits, &r);
        if (k >= strlen("GET / HTTP/1.1\r\nHost: h\r\nX: a\n"))
            assert_int_equal(r.reject, SY_REJECT_BARE_LF);
    }
}

/* ---- reasons ------------------------------------------------------------------------ */

static void test_reject_names_and_status(void **state)
{
    (void)state;
    assert_string_equal(sy_http_reject_name(SY_REJECT_NONE), "none");
    assert_string_equal(sy_http_reject_name(SY_REJECT_BARE_LF), "bare_lf");
    assert_string_equal(sy_http_reject_name(SY_REJECT_CONTENT_LENGTH_WITH_TE),
                        "content_length_with_te");
    assert_string_equal(sy_http_reject_name(SY_REJECT_TE_IN_HTTP10), "te_in_http10");
    assert_string_equal(sy_http_reject_name(SY_REJECT_BAD_STATUS_CODE), "bad_status_code");
    assert_string_equal(sy_http_reject_name(SY_REJECT__COUNT), "unknown");
    for (int a = 0; a < SY_REJECT__COUNT; a++) {
        const char *na = sy_http_reject_name((sy_http_reject_t)a);
        assert_string_not_equal(na, "unknown");
        for (const char *p = na; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
        for (int b = a + 1; b < SY_REJECT__COUNT; b++)
            assert_string_not_equal(na, sy_http_reject_name((sy_http_reject_t)b));
        int st = sy_http_reject_status((sy_http_reject_t)a);
        switch (a) {
        case SY_REJECT_REQUEST_LINE_TOO_LONG:
            assert_int_equal(st, 414);
            break;
        case SY_REJECT_HEADERS_TOO_LARGE:
        case SY_REJECT_TOO_MANY_HEADERS:
            assert_int_equal(st, 431);
            break;
        case SY_REJECT_BODY_TOO_LARGE:
            assert_int_equal(st, 413);
            break;
        case SY_REJECT_EXPECTATION:
            assert_int_equal(st, 417);
            break;
        default:
            assert_int_equal(st, 400);
        }
    }
}

/* ---- header table ------------------------------------------------------------------ */

static void test_header_table(void **state)
{
    (void)state;
    for (int id = 1; id < SY_HDR__COUNT; id++) {
        const char *name = sy_header_name((sy_header_id_t)id);
        size_t len = strlen(name);
        assert_true(len > 0);
        assert_int_equal(sy_header_lookup(sy_slice(name, len)), id);
        char buf[64];
        for (size_t i = 0; i < len; i++) /* upper and lower case both match */
            buf[i] = (char)((name[i] >= 'a' && name[i] <= 'z') ? name[i] - 32 : name[i]);
        assert_int_equal(sy_header_lookup(sy_slice(buf, len)), id);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)((buf[i] >= 'A' && buf[i] <= 'Z') ? buf[i] + 32 : buf[i]);
        assert_int_equal(sy_header_lookup(sy_slice(buf, len)), id);
        /* One byte off is another name. */
        buf[len - 1] = (char)(buf[len - 1] ^ 0x01);
        assert_int_equal(sy_header_lookup(sy_slice(buf, len)), SY_HDR_OTHER);
        assert_int_equal(sy_header_lookup(sy_slice(name, len - 1)), SY_HDR_OTHER);
    }
    static const char *const others[] = {"",
                                         "X",
                                         "Hosts",
                                         "Hos",
                                         "Content-Type",
                                         "Accept",
                                         "Te",
                                         "XE",
                                         "Transfer_Encoding",
                                         "Upgrade-Insecure-Requests",
                                         "Keep_Alive",
                                         "X-Forwarded-Fox",
                                         "Forwarded",
                                         "Cookie"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        sy_header_id_t id = sy_header_lookup(sy_slice_cstr(others[i]));
        if (i == 6) /* "Te" is TE */
            assert_int_equal(id, SY_HDR_TE);
        else
            assert_int_equal(id, SY_HDR_OTHER);
    }
    assert_int_equal(sy_header_lookup(sy_slice(NULL, 0)), SY_HDR_OTHER);
    assert_string_equal(sy_header_name(SY_HDR_X_FORWARDED_FOR), "X-Forwarded-For");
    assert_string_equal(sy_header_name(SY_HDR__COUNT), "");

    static const sy_header_id_t hop[] = {SY_HDR_CONNECTION,       SY_HDR_KEEP_ALIVE,
                                         SY_HDR_PROXY_CONNECTION, SY_HDR_TE,
                                         SY_HDR_TRAILER,          SY_HDR_TRANSFER_ENCODING,
                                         SY_HDR_UPGRADE,          SY_HDR_PROXY_AUTHORIZATION};
    static const sy_header_id_t rewritten[] = {SY_HDR_HOST, SY_HDR_X_FORWARDED_PROTO,
                                               SY_HDR_X_FORWARDED_HOST, SY_HDR_X_FORWARDED_FOR};
    for (int id = 0; id < SY_HDR__COUNT; id++) {
        unsigned f = sy_header_flags((sy_header_id_t)id);
        bool want_hop = false, want_rw = false;
        for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
            want_hop |= (int)hop[i] == id;
        for (size_t i = 0; i < sizeof rewritten / sizeof rewritten[0]; i++)
            want_rw |= (int)rewritten[i] == id;
        bool want_framing = id == SY_HDR_CONTENT_LENGTH || id == SY_HDR_TRANSFER_ENCODING;
        assert_int_equal((f & SY_HDR_FLAG_HOP_BY_HOP) != 0, want_hop);
        assert_int_equal((f & SY_HDR_FLAG_REWRITTEN) != 0, want_rw);
        assert_int_equal((f & SY_HDR_FLAG_FRAMING) != 0, want_framing);
    }
    assert_int_equal(sy_header_flags(SY_HDR__COUNT), 0);
}

/* ---- responses ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    bool head;
    sy_http_status_t status;
    sy_http_reject_t reject;
    int code;
    sy_body_kind_t body;
    uint64_t content_length;
    bool keep_alive;
} resp_case_t;

#define RS_OK(name, raw, head, code, body, cl, ka)                                                 \
    {                                                                                              \
        name, raw, sizeof(raw) - 1, head, OK, SY_REJECT_NONE, code, SY_BODY_##body, cl, ka         \
    }
#define RS_ERR(name, raw, reject)                                                                  \
    {                                                                                              \
        name, raw, sizeof(raw) - 1, false, ERR, SY_REJECT_##reject, 0, SY_BODY_NONE, 0, false      \
    }

static const resp_case_t response_cases[] = {
    RS_OK("200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200,
          LENGTH, 5, true),
    RS_OK("no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, 200, LENGTH, 0, true),
    RS_OK("empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, 404, LENGTH, 0,
          true),
    RS_OK("reason with obs-text and tab", "HTTP/1.1 200 O\tK \xc3\xa9\r\nContent-Length: 0\r\n\r\n",
          false, 200, LENGTH, 0, true),
    RS_OK("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, CHUNKED,
          0, true),
    RS_OK("until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false, 200,
          UNTIL_CLOSE, 0, false),
    RS_OK("204", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, NONE, 0, true),
    RS_OK("304 with length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, 304,
          NONE, 0, true),
    RS_OK("100 continue", "HTTP/1.1 100 Continue\r\n\r\n", false, 100, NONE, 0, true),
    RS_OK("103 early hints", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, 103, NONE, 0,
          true),
    RS_OK("HEAD response with length", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true, 200,
          NONE, 0, true),
    RS_OK("HEAD response chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true,
          200, NONE, 0, true),
    RS_OK("connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
          false, 200, LENGTH, 0, false),
    RS_OK("http/1.0 default", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", false, 200, LENGTH,
          2, false),
    RS_OK("http/1.0 keep-alive",
          "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", false, 200,
          LENGTH, 2, true),
    RS_OK("http/1.0 until close", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false, 200,
          UNTIL_CLOSE, 0, false),
    RS_OK("large length is not a request limit",
          "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", false, 200, LENGTH,
          99999999999ull, true),
    RS_OK("599", "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", false, 599, LENGTH, 0, true),
    RS_OK("host ignored in responses", "HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\n\r\n", false,
          200, UNTIL_CLOSE, 0, false),

    RS_ERR("two-digit code", "HTTP/1.1 20 OK\r\n\r\n", BAD_STATUS_CODE),
    RS_ERR("four-digit code", "HTTP/1.1 2000 OK\r\n\r\n", BAD_STATUS_CODE),
    RS_ERR("code 099", "HTTP/1.1 099 X\r\n\r\n", BAD_STATUS_CODE),
    RS_ERR("code 600", "HTTP/1.1 600 X\r\n\r\n", BAD_STATUS_CODE),
    RS_ERR("code letters", "HTTP/1.1 2x0 OK\r\n\r\n", BAD_STATUS_CODE),
    RS_ERR("two spaces before code", "HTTP/1.1  200 OK\r\n\r\n", BAD_STATUS_CODE),
    RS_ERR("HTTP/2", "HTTP/2 200 OK\r\n\r\n", BAD_VERSION),
    RS_ERR("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", BAD_VERSION),
    RS_ERR("not http", "ICY 200 OK\r\n\r\n", BAD_STATUS_LINE),
    RS_ERR("lower-case http", "http/1.1 200 OK\r\n\r\n", BAD_STATUS_LINE),
    RS_ERR("no code", "HTTP/1.1\r\n\r\n", BAD_STATUS_LINE),
    RS_ERR("LF status line", "HTTP/1.1 200 OK\n\r\n", BARE_LF),
    RS_ERR("bare CR status line", "HTTP/1.1 200 OK\rX", BARE_CR),
    RS_ERR("NUL in reason", "HTTP/1.1 200 O\0K\r\n\r\n", CONTROL_BYTE),
    RS_ERR("CL and TE",
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           CONTENT_LENGTH_WITH_TE),
    RS_ERR("TE and CL",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
           CONTENT_LENGTH_WITH_TE),
    RS_ERR("duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
           DUPLICATE_CONTENT_LENGTH),
    RS_ERR("bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\n", BAD_CONTENT_LENGTH),
    RS_ERR("TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
           BAD_TRANSFER_ENCODING),
    RS_ERR("TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TE_IN_HTTP10),
    RS_ERR("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", OBS_FOLD),
    RS_ERR("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
           SPACE_BEFORE_COLON),
    RS_ERR("bare LF header", "HTTP/1.1 200 OK\r\nX: a\n\r\n", BARE_LF),
    RS_ERR("NUL in value", "HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n", BAD_HEADER_VALUE),
    RS_ERR("CL with 204 still checked", "HTTP/1.1 204 OK\r\nContent-Length: x\r\n\r\n",
           BAD_CONTENT_LENGTH),
};

typedef struct {
    sy_http_status_t status;
    sy_http_reject_t reject;
    sy_http_response_t resp;
    sy_http_header_t headers[SY_HTTP_MAX_HEADERS];
} resp_result_t;

static void parse_response(const char *buf, size_t len, bool head, resp_result_t *out)
{
    out->status = sy_http_response_parse(NULL, buf, len, &default_limits, head, out->headers,
                                         SY_HTTP_MAX_HEADERS, &out->resp, &out->reject);
}

static void parse_response_more(sy_http_head_state_t *st, const char *buf, size_t len, bool head,
                                resp_result_t *out)
{
    out->status = sy_http_response_parse(st, buf, len, &default_limits, head, out->headers,
                                         SY_HTTP_MAX_HEADERS, &out->resp, &out->reject);
}

static void assert_same_response(const resp_result_t *part, const resp_result_t *full,
                                 const char *how, size_t at)
{
    if (part->status != full->status || part->reject != full->reject)
        fail_msg("%s %zu: %d %s, all at once %d %s", how, at, part->status,
                 sy_http_reject_name(part->reject), full->status,
                 sy_http_reject_name(full->reject));
    if (part->status != SY_HTTP_OK)
        return;
    const sy_http_response_t *x = &part->resp, *y = &full->resp;
    assert_int_equal(x->head_len, y->head_len);
    assert_int_equal(x->status, y->status);
    assert_int_equal(x->minor_version, y->minor_version);
    assert_ptr_equal(x->reason.ptr, y->reason.ptr);
    assert_int_equal(x->reason.len, y->reason.len);
    assert_int_equal(x->body_kind, y->body_kind);
    assert_int_equal(x->content_length, y->content_length);
    assert_int_equal(x->keep_alive, y->keep_alive);
    assert_int_equal(x->header_count, y->header_count);
    for (size_t i = 0; i < x->header_count; i++) {
        assert_ptr_equal(part->headers[i].name.ptr, full->headers[i].name.ptr);
        assert_int_equal(part->headers[i].name.len, full->headers[i].name.len);
        assert_ptr_equal(part->headers[i].value.ptr, full->headers[i].value.ptr);
        assert_int_equal(part->headers[i].value.len, full->headers[i].value.len);
        assert_int_equal(part->headers[i].id, full->headers[i].id);
    }
}

static void run_response_case(void **state)
{
    const resp_case_t *c = *state;
    static resp_result_t full, part, resumed;
    parse_response(c->raw, c->len, c->head, &full);
    if (full.status != c->status || full.reject != c->reject)
        fail_msg("%s: got %d %s", c->name, full.status, sy_http_reject_name(full.reject));
    if (full.status == SY_HTTP_OK) {
        assert_int_equal(full.resp.status, c->code);
        assert_int_equal(full.resp.body_kind, c->body);
        if (c->body == SY_BODY_LENGTH)
            assert_int_equal(full.resp.content_length, c->content_length);
        assert_int_equal(full.resp.keep_alive, c->keep_alive);
        assert_true(full.resp.head_len <= c->len);
        assert_true(slice_inside(full.resp.reason, c->raw, full.resp.head_len));
    }
    sy_http_head_state_t st = {0};
    bool decided = false;
    for (size_t k = 0; k <= c->len; k++) {
        parse_response(c->raw, k, c->head, &part);
        parse_response_more(&st, c->raw, k, c->head, &resumed);
        if (part.status != resumed.status || part.reject != resumed.reject)
            fail_msg("prefix %zu: alone %d %s, resumed byte by byte %d %s", k, part.status,
                     sy_http_reject_name(part.reject), resumed.status,
                     sy_http_reject_name(resumed.reject));
        if (!decided && part.status == SY_HTTP_INCOMPLETE)
            continue;
        if (!decided && full.status == SY_HTTP_OK)
            assert_int_equal(k, full.resp.head_len);
        decided = true;
        assert_same_response(&part, &full, "prefix", k);
        assert_same_response(&resumed, &full, "byte-by-byte prefix", k);
    }
    assert_true(decided);
    for (size_t k = 0; k <= c->len; k++) {
        sy_http_head_state_reset(&st);
        parse_response_more(&st, c->raw, k, c->head, &resumed);
        parse_response_more(&st, c->raw, c->len, c->head, &resumed);
        assert_same_response(&resumed, &full, "split at", k);
    }
    for (size_t round = 0; round < 8; round++) {
        sy_http_head_state_reset(&st);
        size_t at = 0;
        while (at < c->len) {
            at += 1 + split_next(c->len - at < 24 ? c->len - at : 24);
            parse_response_more(&st, c->raw, at, c->head, &resumed);
        }
        parse_response_more(&st, c->raw, c->len, c->head, &resumed);
        assert_same_response(&resumed, &full, "random splits, round", round);
    }
}

static void test_response_reason_slice(void **state)
{
    (void)state;
    static const char raw[] = "HTTP/1.1 418 I'm a teapot\r\nX: y\r\n\r\n";
    resp_result_t r;
    parse_response(raw, sizeof raw - 1, false, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_int_equal(r.resp.status, 418);
    assert_int_equal(r.resp.minor_version, 1);
    assert_true(slice_is(r.resp.reason, "I'm a teapot"));
    assert_int_equal(r.resp.header_count, 1);
    assert_true(slice_is(r.headers[0].value, "y"));
    assert_int_equal(r.resp.head_len, sizeof raw - 1);

    static const char no_reason[] = "HTTP/1.0 200\r\n\r\n";
    parse_response(no_reason, sizeof no_reason - 1, false, &r);
    assert_int_equal(r.status, SY_HTTP_OK);
    assert_int_equal(r.resp.reason.len, 0);
    assert_int_equal(r.resp.minor_version, 0);

    /* An endless status line is refused at the line limit. */
    sy_http_limits_t lim = default_limits;
    lim.max_request_line_bytes = 20;
    static const char endless[] = "HTTP/1.1 200 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    sy_http_response_t resp;
    sy_http_header_t h[4];
    sy_http_reject_t rej;
    assert_int_equal(
        sy_http_response_parse(NULL, endless, sizeof endless - 1, &lim, false, h, 4, &resp, &rej),
        SY_HTTP_ERROR);
    assert_int_equal(rej, SY_REJECT_BAD_STATUS_LINE);
}

/* ---- chunked ------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    sy_chunked_result_t result; /* DONE, ERROR or NEED_MORE at the end of the input */
    sy_http_reject_t reject;
    const char *data; /* decoded bytes */
    size_t data_len;
    size_t consumed; /* bytes used by the body when DONE; 0 = all of raw */
    size_t max_trailer;
} chunk_case_t;

#define CK(name, raw, result, reject, data)                                                        \
    {                                                                                              \
        name, raw, sizeof(raw) - 1, SY_CHUNKED_##result, SY_REJECT_##reject, data,                 \
            sizeof(data) - 1, 0, 1024                                                              \
    }
#define CK_TAIL(name, raw, data, consumed)                                                         \
    {                                                                                              \
        name, raw, sizeof(raw) - 1, SY_CHUNKED_DONE, SY_REJECT_NONE, data, sizeof(data) - 1,       \
            consumed, 1024                                                                         \
    }
#define CK_TRAILER(name, raw, result, reject, max)                                                 \
    {                                                                                              \
        name, raw, sizeof(raw) - 1, SY_CHUNKED_##result, SY_REJECT_##reject, "", 0, 0, max         \
    }

static const chunk_case_t chunk_cases[] = {
    CK("one chunk", "5\r\nhello\r\n0\r\n\r\n", DONE, NONE, "hello"),
    CK("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", DONE, NONE, "hello world"),
    CK("lower hex", "a\r\n0123456789\r\n0\r\n\r\n", DONE, NONE, "0123456789"),
    CK("upper hex", "A\r\n0123456789\r\n0\r\n\r\n", DONE, NONE, "0123456789"),
    CK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", DONE, NONE, "hello"),
    CK("empty body", "0\r\n\r\n", DONE, NONE, ""),
    CK("data with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", DONE, NONE, "\r\n\r\n"),
    CK("data with NUL", "3\r\na\0b\r\n0\r\n\r\n", DONE, NONE, "a\0b"),
    CK("extension", "5;ilovew3\r\nhello\r\n0\r\n\r\n", DONE, NONE, "hello"),
    CK("extension token value", "5;a=b;c=d\r\nhello\r\n0;e\r\n\r\n", DONE, NONE, "hello"),
    CK("extension quoted",
       "5;ilovew3=\"I \\\"love\\\"; \\\\extensions\\\\\";somuchlove=\"x\";blah;foo=bar\r\nhello\r\n"
       "0\r\n\r\n",
       DONE, NONE, "hello"),
    /* RFC 9112's BWS around ';' and '=' is refused, as llhttp refuses it
     * (tests/e2e/differential_parsing.test.mjs). */
    CK("extension BWS", "5 ;  a = b ; c\t=\t\"d\"\r\nhello\r\n0\r\n\r\n", ERROR, BAD_CHUNK_SIZE,
       ""),
    CK("BWS before ;", "5\t;a=b\r\nhello\r\n0\r\n\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("BWS after ;", "5; a=b\r\nhello\r\n0\r\n\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("BWS before =", "5;a =b\r\nhello\r\n0\r\n\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("BWS after =", "5;a=\tb\r\nhello\r\n0\r\n\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("BWS after value", "5;a=b ;c\r\nhello\r\n0\r\n\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("quoted then space then semicolon", "5;a=\"b\" ;c\r\nhello\r\n0\r\n\r\n", ERROR,
       BAD_CHUNK_EXTENSION, ""),
    CK("trailers", "5\r\nhello\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n", DONE, NONE,
       "hello"),
    CK("empty trailer value", "0\r\nX:\r\n\r\n", DONE, NONE, ""),
    CK("max size no data yet", "ffffffffffffffff\r\n", NEED_MORE, NONE, ""),
    CK("16 digits with data", "000000000000000A\r\n0123456789\r\n0\r\n\r\n", DONE, NONE,
       "0123456789"),
    CK("partial data", "a\r\n01234", NEED_MORE, NONE, "01234"),
    CK("empty input", "", NEED_MORE, NONE, ""),
    CK("waiting for final LF", "0\r\n\r", NEED_MORE, NONE, ""),
    CK_TAIL("stops at the body end", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "abc", 13),

    CK("leading space", " 5\r\nhello\r\n0\r\n\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("leading tab", "\t5\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("0x prefix", "0x5\r\nhello\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("plus sign", "+5\r\nhello\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("minus sign", "-5\r\nhello\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("empty size", "\r\nhello\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("not hex", "g\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("space after size", "a \r\n0123456789\r\n0\r\n\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("no semicolon before extension", "2 erfrferferf\r\naa\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("size then garbage", "5x\r\n", ERROR, BAD_CHUNK_SIZE, ""),
    CK("17 hex digits", "10000000000000000\r\n", ERROR, CHUNK_SIZE_OVERFLOW, ""),
    CK("17 digits leading zero", "00000000000000001\r\nX\r\n", ERROR, CHUNK_SIZE_OVERFLOW, ""),
    CK("huge size", "fffffffffffffffffffff\r\n", ERROR, CHUNK_SIZE_OVERFLOW, ""),
    CK("empty extension", "2;\r\naa\r\n0\r\n\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension without name", "2;=x\r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension empty value", "2;a=\r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension two names", "2;a b\r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension trailing space", "2;a=b \r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension name trailing space", "2;a \r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension bad char", "2;a@b\r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension unterminated quote", "5;a=\"abc;d=\"def; ghi\r\nhello\r\n", ERROR,
       BAD_CHUNK_EXTENSION, ""),
    CK("extension control in quote", "2;a=\"\x01\"\r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension junk after quote", "2;a=\"b\"c\r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("extension NUL", "2;a\0\r\naa\r\n", ERROR, BAD_CHUNK_EXTENSION, ""),
    CK("data too long", "5\r\nhelloX\r\n0\r\n\r\n", ERROR, BAD_CHUNK_DATA_END, "hello"),
    CK("data then size", "5\r\nABCDE0\r\n\r\n", ERROR, BAD_CHUNK_DATA_END, "ABCDE"),
    CK("missing last chunk", "3\r\nfoo\r\n\r\n", ERROR, BAD_CHUNK_SIZE, "foo"),
    CK("bare LF after size", "5\nhello\r\n", ERROR, BARE_LF, ""),
    CK("bare LF after data", "5\r\nhello\n0\r\n\r\n", ERROR, BARE_LF, "hello"),
    CK("bare LF after extension", "5;a\nhello", ERROR, BARE_LF, ""),
    CK("bare LF in quoted extension", "5;a=\"x\ny\"\r\n", ERROR, BARE_LF, ""),
    CK("bare LF end", "0\r\n\n", ERROR, BARE_LF, ""),
    CK("bare LF trailer", "0\r\nX: y\n\r\n", ERROR, BARE_LF, ""),
    CK("all LF", "5\nhello\n0\n\n", ERROR, BARE_LF, ""),
    CK("bare CR after size", "5\rhello", ERROR, BARE_CR, ""),
    CK("CR CR after size", "5\r\r\n;ABCD\r\n", ERROR, BARE_CR, ""),
    CK("bare CR after data", "5\r\nhello\rX", ERROR, BARE_CR, "hello"),
    CK("bare CR end", "0\r\n\rX", ERROR, BARE_CR, ""),
    CK("trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", ERROR, BAD_TRAILER, ""),
    CK("trailer leading space", "0\r\n X: y\r\n\r\n", ERROR, BAD_TRAILER, ""),
    CK("trailer space before colon", "0\r\nX : y\r\n\r\n", ERROR, BAD_TRAILER, ""),
    CK("trailer missing colon", "0\r\nX\r\n\r\n", ERROR, BAD_TRAILER, ""),
    CK("trailer NUL", "0\r\nX: a\0b\r\n\r\n", ERROR, BAD_TRAILER, ""),
    CK("trailer empty name", "0\r\n: y\r\n\r\n", ERROR, BAD_TRAILER, ""),
    CK_TRAILER("trailer within limit", "0\r\nAB: c\r\n\r\n", DONE, NONE, 7),
    CK_TRAILER("trailer over limit", "0\r\nAB: c\r\n\r\n", ERROR, BAD_TRAILER, 6),
    CK_TRAILER("no trailers allowed", "0\r\n\r\n", DONE, NONE, 0),
    CK_TRAILER("no trailers allowed but sent", "0\r\nX: y\r\n\r\n", ERROR, BAD_TRAILER, 0),
};

typedef struct {
    sy_chunked_result_t result;
    sy_http_reject_t reject;
    char data[256];
    size_t data_len;
    size_t consumed;
} chunk_outcome_t;

/*
 * Decodes raw fed in the pieces given by cuts (sorted offsets). Stops at
 * DONE or ERROR; checks that every data slice lies inside the piece given
 * and that a finished decoder keeps its verdict.
 */
static void decode_split(const chunk_case_t *c, const size_t *cuts, size_t ncuts,
                         chunk_outcome_t *out)
{
    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, c->max_trailer);
    memset(out, 0, sizeof *out);
    out->result = SY_CHUNKED_NEED_MORE;
    size_t start = 0;
    for (size_t p = 0; p <= ncuts; p++) {
        size_t end = p < ncuts ? cuts[p] : c->len;
        size_t off = start;
        for (;;) {
            size_t consumed = 99999;
            sy_slice_t data;
            sy_http_reject_t rej;
            sy_chunked_result_t r =
                sy_http_chunked_decode(&dec, c->raw + off, end - off, &consumed, &data, &rej);
            assert_true(consumed <= end - off);
            off += consumed;
            out->consumed = off;
            if (r == SY_CHUNKED_DATA) {
                assert_true(data.len > 0);
                assert_true(data.ptr >= c->raw + start && data.ptr + data.len <= c->raw + end);
                assert_true(out->data_len + data.len <= sizeof out->data);
                memcpy(out->data + out->data_len, data.ptr, data.len);
                out->data_len += data.len;
                continue;
            }
            assert_int_equal(data.len, 0);
            if (r == SY_CHUNKED_NEED_MORE) {
                assert_int_equal(off, end);
                break;
            }
            out->result = r;
            out->reject = rej;
            sy_http_reject_t again;
            sy_chunked_result_t r2 =
                sy_http_chunked_decode(&dec, "0\r\n\r\n", 5, &consumed, &data, &again);
            assert_int_equal(r2, r);
            assert_int_equal(again, rej);
            assert_int_equal(consumed, 0);
            return;
        }
        start = end;
    }
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64: deterministic, so a failing split can be reproduced. */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void assert_same_outcome(const chunk_outcome_t *a, const chunk_outcome_t *b,
                                const char *name, const char *how)
{
    if (a->result != b->result || a->reject != b->reject || a->data_len != b->data_len ||
        memcmp(a->data, b->data, a->data_len) != 0 || a->consumed != b->consumed)
        fail_msg("%s: %s gives result %d %s (%zu data bytes, %zu consumed), whole gives %d %s "
                 "(%zu, %zu)",
                 name, how, b->result, sy_http_reject_name(b->reject), b->data_len, b->consumed,
                 a->result, sy_http_reject_name(a->reject), a->data_len, a->consumed);
}

static void run_chunk_case(void **state)
{
    const chunk_case_t *c = *state;
    chunk_outcome_t whole, split;
    decode_split(c, NULL, 0, &whole);
    if (whole.result != c->result || whole.reject != c->reject)
        fail_msg("%s: got %d %s, want %d %s", c->name, whole.result,
                 sy_http_reject_name(whole.reject), c->result, sy_http_reject_name(c->reject));
    assert_int_equal(whole.data_len, c->data_len);
    if (c->data_len)
        assert_memory_equal(whole.data, c->data, c->data_len);
    if (c->result == SY_CHUNKED_DONE)
        assert_int_equal(whole.consumed, c->consumed ? c->consumed : c->len);

    /* one byte at a time */
    size_t cuts[512];
    assert_true(c->len < sizeof cuts / sizeof cuts[0]);
    for (size_t i = 0; i + 1 < c->len; i++)
        cuts[i] = i + 1;
    decode_split(c, cuts, c->len > 1 ? c->len - 1 : 0, &split);
    assert_same_outcome(&whole, &split, c->name, "byte by byte");

    /* every single cut point, then random splits */
    for (size_t k = 0; k <= c->len; k++) {
        cuts[0] = k;
        decode_split(c, cuts, 1, &split);
        assert_same_outcome(&whole, &split, c->name, "one cut");
    }
    rng_state = 0x9E3779B97F4A7C15ull ^ c->len;
    for (int round = 0; round < 50; round++) {
        size_t n = 0, pos = 0;
        while (c->len > 0) {
            pos += 1 + (size_t)(rng_next() % 7);
            if (pos >= c->len)
                break;
            cuts[n++] = pos;
        }
        decode_split(c, cuts, n, &split);
        assert_same_outcome(&whole, &split, c->name, "random split");
    }
}

/* A body larger than any buffer streams through in as many pieces as it
 * arrives in, without the decoder holding on to any of it. */
static void test_chunked_large(void **state)
{
    (void)state;
    static char body[70000];
    size_t n = (size_t)sprintf(body, "%x;big=\"yes\"\r\n", 65536u);
    memset(body + n, 'x', 65536);
    n += 65536;
    n += (size_t)sprintf(body + n, "\r\n0\r\n\r\n");
    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, 0);
    size_t off = 0, got = 0, consumed;
    sy_slice_t data;
    sy_http_reject_t rej;
    sy_chunked_result_t r;
    while ((r = sy_http_chunked_decode(&dec, body + off, n - off < 1000 ? n - off : 1000, &consumed,
                                       &data, &rej)) != SY_CHUNKED_DONE) {
        assert_int_not_equal(r, SY_CHUNKED_ERROR);
        if (r == SY_CHUNKED_DATA)
            got += data.len;
        off += consumed;
    }
    off += consumed;
    assert_int_equal(got, 65536);
    assert_int_equal(off, n);
}

static void test_chunked_line_limit(void **state)
{
    (void)state;
    static char line[8192];
    line[0] = '1';
    line[1] = ';';
    memset(line + 2, 'a', sizeof line - 2);
    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, 0);
    size_t consumed;
    sy_slice_t data;
    sy_http_reject_t rej;
    assert_int_equal(sy_http_chunked_decode(&dec, line, sizeof line, &consumed, &data, &rej),
                     SY_CHUNKED_ERROR);
    assert_int_equal(rej, SY_REJECT_BAD_CHUNK_EXTENSION);
    assert_true(consumed <= 4097);
}

/* ---- main ----------------------------------------------------------------------------- */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_no_query),
        cmocka_unit_test(test_request_value_trimming),
        cmocka_unit_test(test_request_connection_flags),
        cmocka_unit_test(test_request_content_length_values),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_limit_request_line),
        cmocka_unit_test(test_limit_header_bytes),
        cmocka_unit_test(test_limit_header_count),
        cmocka_unit_test(test_limit_body),
        cmocka_unit_test(test_work_is_linear_byte_by_byte),
        cmocka_unit_test(test_work_is_linear_line_per_packet),
        cmocka_unit_test(test_work_is_linear_inside_a_line),
        cmocka_unit_test(test_resumed_limits_trip_early),
        cmocka_unit_test(test_resumed_state_contract),
        cmocka_unit_test(test_reject_names_and_status),
        cmocka_unit_test(test_header_table),
        cmocka_unit_test(test_response_reason_slice),
        cmocka_unit_test(test_chunked_large),
        cmocka_unit_test(test_chunked_line_limit),
    };
    size_t total = COUNT(fixed) + COUNT(request_cases) + COUNT(response_cases) + COUNT(chunk_cases);
    struct CMUnitTest *tests = calloc(total, sizeof *tests);
    if (!tests)
        return 1;
    size_t n = 0;
    for (size_t i = 0; i < COUNT(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < COUNT(request_cases); i++)
        tests[n++] = (struct CMUnitTest){request_cases[i].name, run_request_case, NULL, NULL,
                                         (void *)&request_cases[i]};
    for (size_t i = 0; i < COUNT(response_cases); i++)
        tests[n++] = (struct CMUnitTest){response_cases[i].name, run_response_case, NULL, NULL,
                                         (void *)&response_cases[i]};
    for (size_t i = 0; i < COUNT(chunk_cases); i++)
        tests[n++] = (struct CMUnitTest){chunk_cases[i].name, run_chunk_case, NULL, NULL,
                                         (void *)&chunk_cases[i]};
    int failed = _cmocka_run_group_tests("parser", tests, n, NULL, NULL);
    free(tests);
    return failed ? 1 : 0;
}
