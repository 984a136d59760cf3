// sources: src/http/parser.c src/http/headers.c src/core/common.c
// covers: src/http/parser.c src/http/headers.c
// excludes: sy_http_response_parse|scan_status_line|chunk|hex_value|sy_header_[fn]
/*
 * fuzz_request.c: libFuzzer target for sy_http_request_parse(). Besides
 * crashes and sanitizer reports it checks the parser's promises: an OK head
 * lies inside the input and its slices inside the head; the head alone
 * parses the same; any prefix of the input is INCOMPLETE or gives the same
 * verdict; the input fed to one resumed parse state one byte per call, in
 * pseudo-random pieces, and with the buffer moved halfway, gives exactly
 * the one-shot result (so the fuzzer checks the resumable scanner against
 * itself at every split it can think of); every reason has a name and a
 * status. The whole input is the message (the seeds are plain requests);
 * each input is parsed under the default limits and under tight ones, so
 * the 413, 414 and 431 paths get exercised as often as the syntax ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

static sy_http_header_t headers_a[SY_HTTP_MAX_HEADERS];
static sy_http_header_t headers_b[SY_HTTP_MAX_HEADERS];
static sy_http_header_t headers_c[SY_HTTP_MAX_HEADERS];

static int inside(sy_slice_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + len);
}

static void check_reason(sy_http_status_t st, sy_http_reject_t rej)
{
    if (st == SY_HTTP_ERROR) {
        if (rej <= SY_REJECT_NONE || rej >= SY_REJECT__COUNT)
            abort();
        if (strcmp(sy_http_reject_name(rej), "unknown") == 0)
            abort();
        int code = sy_http_reject_status(rej);
        if (code != 400 && code != 413 && code != 414 && code != 417 && code != 431)
            abort();
    } else if (rej != SY_REJECT_NONE) {
        abort();
    }
}

static void check_ok(const char *buf, const sy_http_request_t *r, const sy_http_limits_t *lim)
{
    size_t n = r->head_len;
    if (n < 18 || !inside(r->method, buf, n) || !inside(r->target, buf, n) ||
        !inside(r->path, buf, n) || !inside(r->query, buf, n) || !inside(r->host, buf, n))
        abort();
    if (r->path.len == 0 || r->path.ptr[0] != '/' || r->host.len == 0 || r->method.len == 0)
        abort();
    if (r->minor_version != 0 && r->minor_version != 1)
        abort();
    if (r->header_count > lim->max_headers || r->header_count > SY_HTTP_MAX_HEADERS)
        abort();
    for (size_t i = 0; i < r->header_count; i++) {
        if (!inside(r->headers[i].name, buf, n) || !inside(r->headers[i].value, buf, n))
            abort();
        if (r->headers[i].name.len == 0 || r->headers[i].id != sy_header_lookup(r->headers[i].name))
            abort();
    }
    if (r->body_kind == SY_BODY_UNTIL_CLOSE)
        abort();
    if (r->body_kind == SY_BODY_LENGTH && r->content_length > lim->max_body_bytes)
        abort();
    if (r->body_kind == SY_BODY_CHUNKED && r->minor_version != 1)
        abort();
    if (buf[n - 1] != '\n' || buf[n - 2] != '\r' || buf[n - 3] != '\n' || buf[n - 4] != '\r')
        abort();
}

/* Slices equal up to the buffer they point into (base_a vs base_b). */
static int same_slice(sy_slice_t a, const char *base_a, sy_slice_t b, const char *base_b)
{
    if (a.len != b.len || (a.ptr == NULL) != (b.ptr == NULL))
        return 0;
    return a.ptr == NULL || a.ptr - base_a == b.ptr - base_b;
}

/* A resumed parse (r, headers_c, over buf_b) gave exactly the one-shot
 * result (full, headers_a, over buf_a), whatever the verdict. */
static void check_same(sy_http_status_t full_st, sy_http_reject_t full_rej,
                       const sy_http_request_t *full, const char *buf_a, sy_http_status_t st,
                       sy_http_reject_t rej, const sy_http_request_t *r, const char *buf_b)
{
    if (st != full_st || rej != full_rej)
        abort();
    if (!same_slice(r->method, buf_b, full->method, buf_a) ||
        !same_slice(r->target, buf_b, full->target, buf_a) ||
        !same_slice(r->path, buf_b, full->path, buf_a) ||
        !same_slice(r->query, buf_b, full->query, buf_a) ||
        !same_slice(r->host, buf_b, full->host, buf_a) || r->has_query != full->has_query ||
        r->minor_version != full->minor_version || r->header_count != full->header_count ||
        r->body_kind != full->body_kind || r->content_length != full->content_length ||
        r->keep_alive != full->keep_alive || r->expect_continue != full->expect_continue ||
        r->head_len != full->head_len)
        abort();
    for (size_t i = 0; i < r->header_count; i++)
        if (!same_slice(headers_c[i].name, buf_b, headers_a[i].name, buf_a) ||
            !same_slice(headers_c[i].value, buf_b, headers_a[i].value, buf_a) ||
            headers_c[i].id != headers_a[i].id)
            abort();
}

/*
 * Feeds buf to one resumed state in pieces: one byte per call until the
 * verdict, then in pseudo-random pieces (seeded by the input), then split at
 * `cut` with the bytes moved to another buffer in between (the parse starts
 * over there). Each must end exactly like the one-shot parse, and a byte by
 * byte feed must examine each byte once.
 */
static void run_resumed(const char *buf, size_t len, const sy_http_limits_t *lim, size_t cut,
                        sy_http_status_t full_st, sy_http_reject_t full_rej,
                        const sy_http_request_t *full)
{
    sy_http_head_state_t state = {0};
    sy_http_request_t r;
    sy_http_reject_t rej = SY_REJECT_NONE;
    sy_http_status_t st = SY_HTTP_INCOMPLETE;
    size_t k = 0;
    for (; k <= len && st == SY_HTTP_INCOMPLETE; k++)
        st = sy_http_request_parse(&state, buf, k, lim, headers_c, SY_HTTP_MAX_HEADERS, &r, &rej);
    check_same(full_st, full_rej, full, buf, st, rej, &r, buf);
    if (state.examined + 1 > k)
        abort(); /* a byte examined twice (k is one past the last prefix fed) */

    sy_http_head_state_reset(&state);
    size_t seed = cut * 2654435761u + len, at = 0;
    do {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        at += (seed >> 33) % 64;
        if (at > len)
            at = len;
        st = sy_http_request_parse(&state, buf, at, lim, headers_c, SY_HTTP_MAX_HEADERS, &r, &rej);
    } while (at < len && st == SY_HTTP_INCOMPLETE);
    if (at < len) /* decided early: the rest of the input changes nothing */
        st = sy_http_request_parse(&state, buf, len, lim, headers_c, SY_HTTP_MAX_HEADERS, &r, &rej);
    check_same(full_st, full_rej, full, buf, st, rej, &r, buf);

    char *moved = malloc(len ? len : 1);
    if (!moved)
        return;
    memcpy(moved, buf, len);
    sy_http_head_state_reset(&state);
    sy_http_request_parse(&state, buf, cut, lim, headers_c, SY_HTTP_MAX_HEADERS, &r, &rej);
    st = sy_http_request_parse(&state, moved, len, lim, headers_c, SY_HTTP_MAX_HEADERS, &r, &rej);
    check_same(full_st, full_rej, full, buf, st, rej, &r, moved);
    free(moved);
}

static void run(const char *buf, size_t len, const sy_http_limits_t *lim, size_t cut)
{
    sy_http_request_t full, part;
    sy_http_reject_t full_rej, part_rej;
    sy_http_status_t full_st = sy_http_request_parse(NULL, buf, len, lim, headers_a,
                                                     SY_HTTP_MAX_HEADERS, &full, &full_rej);
    check_reason(full_st, full_rej);
    run_resumed(buf, len, lim, cut, full_st, full_rej, &full);
    if (full_st == SY_HTTP_OK) {
        if (full.head_len > len)
            abort();
        check_ok(buf, &full, lim);
        /* The head alone gives the same message; one byte less is not enough. */
        sy_http_status_t st = sy_http_request_parse(NULL, buf, full.head_len, lim, headers_b,
                                                    SY_HTTP_MAX_HEADERS, &part, &part_rej);
        if (st != SY_HTTP_OK || part.head_len != full.head_len ||
            part.header_count != full.header_count || part.body_kind != full.body_kind ||
            part.content_length != full.content_length || part.keep_alive != full.keep_alive ||
            part.host.ptr != full.host.ptr || part.target.len != full.target.len)
            abort();
        st = sy_http_request_parse(NULL, buf, full.head_len - 1, lim, headers_b,
                                   SY_HTTP_MAX_HEADERS, &part, &part_rej);
        if (st != SY_HTTP_INCOMPLETE)
            abort();
    }
    /* A prefix alone is INCOMPLETE or decides exactly the same. */
    size_t cuts[3] = {len / 2, cut, len ? len - 1 : 0};
    for (int i = 0; i < 3; i++) {
        sy_http_status_t st = sy_http_request_parse(NULL, buf, cuts[i], lim, headers_b,
                                                    SY_HTTP_MAX_HEADERS, &part, &part_rej);
        check_reason(st, part_rej);
        if (st == SY_HTTP_INCOMPLETE)
            continue;
        if (st != full_st || part_rej != full_rej)
            abort();
        if (st == SY_HTTP_OK && part.head_len != full.head_len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sy_http_limits_t normal = {8192, 32768, 100, 10485760};
    static const sy_http_limits_t tight = {40, 96, 3, 16};
    /* A copy of the exact size: any read past the end is an ASan report. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    /* A cut point chosen by the input itself. */
    size_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum = sum * 31 + data[i];
    size_t cut = size ? sum % size : 0;
    run(buf, size, &normal, cut);
    run(buf, size, &tight, cut);
    free(buf);
    return 0;
}
