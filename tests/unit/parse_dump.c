/*
 * parse_dump.c: switchyard's reading of raw requests, one JSON line each, for
 * the differential test against llhttp (tests/e2e/differential_parsing.test.mjs).
 * Not a unit test: built by `make unit` beside them, run by the node test.
 *
 * Input (stdin): one request per line, base64 (standard alphabet, padded).
 * Output (stdout): one line per input line, in order:
 *   {"verdict":"accept","method":..,"target":..,"version":"1.1",
 *    "headers":[[name,value],..],"framing":"none"|"length"|"chunked",
 *    "content_length":N,"keep_alive":bool,"head_len":N
 *    [,"chunked":{"verdict":"done"|"reject"|"incomplete","reason":..,
 *                 "data_len":N,"consumed":N}]}   (the bytes after a chunked head)
 *   {"verdict":"reject","reason":"bare_lf","status":400}
 *   {"verdict":"incomplete"}
 * Strings are written byte for byte as Latin-1 (bytes >= 0x7f as \u00XX),
 * which is how Node's parser binding hands header bytes to JavaScript, so
 * the two sides compare as plain strings. Limits are the policy defaults.
 *
 * Each request is parsed twice, the way the proxy reads it from a client
 * that sends one byte per packet (one resumed parse state, one byte more per
 * call) and all at once; the two must agree in every field printed, or
 * parse_dump says so on stderr and exits 3 (the node test checks the exit
 * status), so the differential test covers the resumed parse too.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "http/parser.h"

static void put_string(sy_slice_t s)
{
    putchar('"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* A chunked body after the head, decoded as the proxy decodes a request
 * body (trailer bytes bounded by max_header_bytes): where it ends, how many
 * data bytes it carries, or why it is refused. */
static void dump_chunked(const char *in, size_t len, size_t max_trailer_bytes)
{
    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, max_trailer_bytes);
    size_t pos = 0, data_len = 0;
    sy_chunked_result_t r;
    sy_http_reject_t reject = SY_REJECT_NONE;
    do {
        size_t used = 0;
        sy_slice_t data = {0};
        r = sy_http_chunked_decode(&dec, in + pos, len - pos, &used, &data, &reject);
        pos += used;
        if (r == SY_CHUNKED_DATA)
            data_len += data.len;
    } while (r == SY_CHUNKED_DATA);
    static const char *const verdict[] = {"incomplete", "data", "done", "reject"};
    printf(",\"chunked\":{\"verdict\":\"%s\",\"reason\":\"%s\",\"data_len\":%zu,\"consumed\":%zu}",
           verdict[r], r == SY_CHUNKED_ERROR ? sy_http_reject_name(reject) : "", data_len, pos);
}

/* The defaults of the policy's "limits" (docs/configuration.md). */
static const sy_http_limits_t limits = {8192, 32768, 100, 10485760};

static bool same_slice(sy_slice_t a, sy_slice_t b)
{
    return a.ptr == b.ptr && a.len == b.len;
}

/* The parse of buf fed one byte per call to one state equals the one-shot
 * parse (st, req, reject): status, reason and every field dump() prints. */
static bool trickled_agrees(const char *buf, size_t len, sy_http_status_t st,
                            const sy_http_request_t *req, sy_http_reject_t reject)
{
    static sy_http_header_t headers[SY_HTTP_MAX_HEADERS];
    sy_http_head_state_t state = {0};
    sy_http_request_t r;
    sy_http_reject_t rej = SY_REJECT_NONE;
    sy_http_status_t got = SY_HTTP_INCOMPLETE;
    for (size_t k = 0; k <= len && got == SY_HTTP_INCOMPLETE; k++)
        got =
            sy_http_request_parse(&state, buf, k, &limits, headers, SY_HTTP_MAX_HEADERS, &r, &rej);
    if (got != st || rej != reject)
        return false;
    if (st != SY_HTTP_OK)
        return true;
    if (!same_slice(r.method, req->method) || !same_slice(r.target, req->target) ||
        r.minor_version != req->minor_version || r.header_count != req->header_count ||
        r.body_kind != req->body_kind || r.content_length != req->content_length ||
        r.keep_alive != req->keep_alive || r.head_len != req->head_len)
        return false;
    for (size_t i = 0; i < r.header_count; i++)
        if (!same_slice(r.headers[i].name, req->headers[i].name) ||
            !same_slice(r.headers[i].value, req->headers[i].value))
            return false;
    return true;
}

static bool dump(const char *buf, size_t len)
{
    static sy_http_header_t headers[SY_HTTP_MAX_HEADERS];
    sy_http_request_t req;
    sy_http_reject_t reject = SY_REJECT_NONE;
    sy_http_status_t st =
        sy_http_request_parse(NULL, buf, len, &limits, headers, SY_HTTP_MAX_HEADERS, &req, &reject);
    if (!trickled_agrees(buf, len, st, &req, reject)) {
        fprintf(stderr, "parse_dump: a request parsed byte by byte differs from all at once\n");
        return false;
    }
    if (st == SY_HTTP_INCOMPLETE) {
        puts("{\"verdict\":\"incomplete\"}");
        return true;
    }
    if (st == SY_HTTP_ERROR) {
        printf("{\"verdict\":\"reject\",\"reason\":\"%s\",\"status\":%d}\n",
               sy_http_reject_name(reject), sy_http_reject_status(reject));
        return true;
    }
    static const char *const framing[] = {"none", "length", "chunked", "close"};
    printf("{\"verdict\":\"accept\",\"method\":");
    put_string(req.method);
    printf(",\"target\":");
    put_string(req.target);
    printf(",\"version\":\"1.%d\",\"headers\":[", req.minor_version);
    for (size_t i = 0; i < req.header_count; i++) {
        printf("%s[", i ? "," : "");
        put_string(req.headers[i].name);
        putchar(',');
        put_string(req.headers[i].value);
        putchar(']');
    }
    printf("],\"framing\":\"%s\",\"content_length\":%llu,\"keep_alive\":%s,\"head_len\":%zu",
           framing[req.body_kind],
           (unsigned long long)(req.body_kind == SY_BODY_LENGTH ? req.content_length : 0),
           req.keep_alive ? "true" : "false", req.head_len);
    if (req.body_kind == SY_BODY_CHUNKED)
        dump_chunked(buf + req.head_len, len - req.head_len, limits.max_header_bytes);
    puts("}");
    return true;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        size_t max = (size_t)n / 4 * 3 + 3;
        unsigned char *raw = malloc(max ? max : 1);
        size_t len = 0;
        if (!raw || !sy_base64_decode(sy_slice(line, (size_t)n), false, true, raw, max, &len)) {
            fprintf(stderr, "parse_dump: a line is not base64\n");
            return 2;
        }
        if (!dump((const char *)raw, len))
            status = 3;
        free(raw);
    }
    free(line);
    return status;
}
