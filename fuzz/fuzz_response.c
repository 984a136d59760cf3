// sources: src/http/parser.c src/http/headers.c src/core/common.c
// covers: src/http/parser.c src/http/headers.c
// excludes: request_|valid_|aliases_known_name|chunk|hex_value|reject_|is_alpha|sy_header_[fn]
/*
 * fuzz_response.c: libFuzzer target for sy_http_response_parse(), the
 * parser that stands between upstreams and clients. Checks, besides
 * sanitizer reports: slices inside the head, the framing rules (no body for
 * HEAD, 1xx, 204, 304; until-close never keeps the connection), the head
 * alone parses the same, and any prefix is INCOMPLETE or decides the same.
 * The whole input is the response; it is parsed as the answer to a HEAD
 * and to a GET, under default and under tight limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

static sy_http_header_t headers_a[SY_HTTP_MAX_HEADERS];
static sy_http_header_t headers_b[SY_HTTP_MAX_HEADERS];

static int inside(sy_slice_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + len);
}

static void run(const char *buf, size_t len, const sy_http_limits_t *lim, bool head, size_t cut)
{
    sy_http_response_t full, part;
    sy_http_reject_t full_rej, part_rej;
    sy_http_status_t full_st = sy_http_response_parse(buf, len, lim, head, headers_a,
                                                      SY_HTTP_MAX_HEADERS, &full, &full_rej);
    if ((full_st == SY_HTTP_ERROR) != (full_rej != SY_REJECT_NONE) || full_rej >= SY_REJECT__COUNT)
        abort();
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
        sy_http_status_t st = sy_http_response_parse(buf, n, lim, head, headers_b,
                                                     SY_HTTP_MAX_HEADERS, &part, &part_rej);
        if (st != SY_HTTP_OK || part.head_len != n || part.status != full.status ||
            part.body_kind != full.body_kind || part.content_length != full.content_length ||
            part.keep_alive != full.keep_alive || part.header_count != full.header_count)
            abort();
        st = sy_http_response_parse(buf, n - 1, lim, head, headers_b, SY_HTTP_MAX_HEADERS, &part,
                                    &part_rej);
        if (st != SY_HTTP_INCOMPLETE)
            abort();
    }
    size_t cuts[2] = {len / 2, cut};
    for (int i = 0; i < 2; i++) {
        sy_http_status_t st = sy_http_response_parse(buf, cuts[i], lim, head, headers_b,
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
