// sources: src/http/parser.c src/http/headers.c src/core/common.c
// covers: src/http/parser.c src/http/headers.c
// excludes: request_|valid_|aliases_known_name|chunk|hex_value|reject_|is_alpha|sy_header_[fn]
/*
 * fuzz_response.c: libFuzzer target for sy_http_response_parse(), the
 * parser that stands between upstreams and clients. Checks, besides
 * sanitizer reports: slices inside the head, the framing rules (no body for
 * HEAD, 1xx, 204, 304; until-close never keeps the connection), the head
 * alone parses the same, any prefix is INCOMPLETE or decides the same, and
 * the input fed to one resumed parse state one byte per call, in
 * pseudo-random pieces, and with the buffer moved halfway, gives exactly
 * the one-shot result.
 * The whole input is the response; it is parsed as the answer to a HEAD
 * and to a GET, under default and under tight limits.
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

static int same_slice(sy_slice_t a, const char *base_a, sy_slice_t b, const char *base_b)
{
    if (a.len != b.len || (a.ptr == NULL) != (b.ptr == NULL))
        return 0;
    return a.ptr == NULL || a.ptr - base_a == b.ptr - base_b;
}

/* A resumed parse (r, headers_c, over buf_b) gave exactly the one-shot
 * result (full, headers_a, over buf_a), whatever the verdict. */
static void check_same(sy_http_status_t full_st, sy_http_reject_t full_rej,
                       const sy_http_response_t *full, const char *buf_a, sy_http_status_t st,
                       sy_http_reject_t rej, const sy_http_response_t *r, const char *buf_b)
{
    if (st != full_st || rej != full_rej)
        abort();
    if (r->status != full->status || r->minor_version != full->minor_version ||
        !same_slice(r->reason, buf_b, full->reason, buf_a) ||
        r->header_count != full->header_count || r->body_kind != full->body_kind ||
        r->content_length != full->content_length || r->keep_alive != full->keep_alive ||
        r->head_len != full->head_len)
        abort();
    for (size_t i = 0; i < r->header_count; i++)
        if (!same_slice(headers_c[i].name, buf_b, headers_a[i].name, buf_a) ||
            !same_slice(headers_c[i].value, buf_b, headers_a[i].value, buf_a) ||
            headers_c[i].id != headers_a[i].id)
            abort();
}

/* One byte per call until the verdict, pseudo-random pieces, and a move to
 * another buffer at `cut`: each ends exactly like the one-shot parse, and
 * byte by byte examines each byte once. */
static void run_resumed(const char *buf, size_t len, const sy_http_limits_t *lim, bool head,
                        size_t cut, sy_http_status_t full_st, sy_http_reject_t full_rej,
                        const sy_http_response_t *full)
{
    sy_http_head_state_t state = {0};
    sy_http_response_t r;
    sy_http_reject_t rej = SY_REJECT_NONE;
    sy_http_status_t st = SY_HTTP_INCOMPLETE;
    size_t k = 0;
    for (; k <= len && st == SY_HTTP_INCOMPLETE; k++)
        st = sy_http_response_parse(&state, buf, k, lim, head, headers_c, SY_HTTP_MAX_HEADERS, &r,
                                    &rej);
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
        st = sy_http_response_parse(&state, buf, at, lim, head, headers_c, SY_HTTP_MAX_HEADERS, &r,
                                    &rej);
    } while (at < len && st == SY_HTTP_INCOMPLETE);
    if (at < len)
        st = sy_http_response_parse(&state, buf, len, lim, head, headers_c, SY_HTTP_MAX_HEADERS, &r,
                                    &rej);
    check_same(full_st, full_rej, full, buf, st, rej, &r, buf);

    char *moved = malloc(len ? len : 1);
    if (!moved)
        return;
    memcpy(moved, buf, len);
    sy_http_head_state_reset(&state);
    sy_http_response_parse(&state, buf, cut, lim, head, headers_c, SY_HTTP_MAX_HEADERS, &r, &rej);
    st = sy_http_response_parse(&state, moved, len, lim, head, headers_c, SY_HTTP_MAX_HEADERS, &r,
                                &rej);
    check_same(full_st, full_rej, full, buf, st, rej, &r, moved);
    free(moved);
}

static void run(const char *buf, size_t len, const sy_http_limits_t *lim, bool head, size_t cut)
{
    sy_http_response_t full, part;
    sy_http_reject_t full_rej, part_rej;
    sy_http_status_t full_st = sy_http_response_parse(NULL, buf, len, lim, head, headers_a,
                                                      SY_HTTP_MAX_HEADERS, &full, &full_rej);
    if ((full_st == SY_HTTP_ERROR) != (full_rej != SY_REJECT_NONE) || full_rej >= SY_REJECT__COUNT)
        abort();
    run_resumed(buf, len, lim, head, cut, full_st, full_rej, &full);
    if (full_st == SY_HTTP_OK) {
        size_t n = full.head_len;
        if (n > len || n < 14 || !inside(full.reason, buf, n))
            abort();
        if (full.status < 100 || full.status > 599)
            abort();
        for (size_t i = 0; i < full.header_count; i++)
            if (!inside(full.headers[i].name, buf, n) || !inside(full.headers[i].value, buf, n))
                abort();
        int s = full.status;
        bool no_body = head || s < 200 || s == 204 || s == 304;
        if (no_body != (full.body_kind == SY_BODY_NONE))
            abort();
        if (full.body_kind == SY_BODY_UNTIL_CLOSE && full.keep_alive)
            abort();
        sy_http_status_t st = sy_http_response_parse(NULL, buf, n, lim, head, headers_b,
                                                     SY_HTTP_MAX_HEADERS, &part, &part_rej);
        if (st != SY_HTTP_OK || part.head_len != n || part.status != full.status ||
            part.body_kind != full.body_kind || part.content_length != full.content_length ||
            part.keep_alive != full.keep_alive || part.header_count != full.header_count)
            abort();
        st = sy_http_response_parse(NULL, buf, n - 1, lim, head, headers_b, SY_HTTP_MAX_HEADERS,
                                    &part, &part_rej);
        if (st != SY_HTTP_INCOMPLETE)
            abort();
    }
    size_t cuts[2] = {len / 2, cut};
    for (int i = 0; i < 2; i++) {
        sy_http_status_t st = sy_http_response_parse(NULL, buf, cuts[i], lim, head, headers_b,
                                                     SY_HTTP_MAX_HEADERS, &part, &part_rej);
        if (st == SY_HTTP_INCOMPLETE)
            continue;
        if (st != full_st || part_rej != full_rej)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sy_http_limits_t normal = {8192, 32768, 100, 10485760};
    static const sy_http_limits_t tight = {24, 96, 3, 16};
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    size_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum = sum * 31 + data[i];
    size_t cut = size ? sum % size : 0;
    run(buf, size, &normal, false, cut);
    run(buf, size, &normal, true, cut);
    run(buf, size, &tight, false, cut);
    free(buf);
    return 0;
}
