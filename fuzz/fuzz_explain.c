// sources: src/admin/explain.c src/http/parser.c src/http/headers.c src/core/common.c
/*
 * fuzz_explain.c: libFuzzer target for the admin /explain query string
 * parser and its method check (issue 9). The input is the query string.
 * Properties checked on every input:
 *  - no crash, leak or undefined behaviour; on failure a reason is given;
 *  - every decoded value is no longer than the input and holds no NUL;
 *  - round trip: the decoded values, percent-encoded byte by byte into a
 *    fresh query, parse back to the same values;
 *  - the method check agrees with the request parser on a whole request
 *    line, and refuses an empty method and any method with a space, CR,
 *    LF or other control byte, and CONNECT in any case.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/explain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t encode(char *out, const char *key, const char *value, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = (size_t)sprintf(out, "%s=", key);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        out[o++] = '%';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
    }
    out[o++] = '&';
    return o;
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return alen == blen && memcmp(a, b, alen) == 0 && a[alen] == '\0';
}

static void check_method(const char *m, size_t len)
{
    static const sy_http_limits_t limits = {8192, 32768, 100, 1 << 20};
    sy_http_reject_t r = sy_explain_method_check(sy_slice(m, len), &limits);
    bool must_refuse = len == 0 || (len == 7 && strncasecmp(m, "CONNECT", 7) == 0);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)m[i] <= 0x20 || (unsigned char)m[i] >= 0x7F)
            must_refuse = true;
    if (must_refuse && r == SY_REJECT_NONE)
        abort(); /* /explain would say "forward" for a method traffic never gets through */
    if (r == SY_REJECT_NONE) {
        /* The parser, on a request line of its own, takes the whole method. */
        char line[1024];
        if (len > 900)
            return;
        int n = snprintf(line, sizeof line, "%.*s /x HTTP/1.1\r\nHost: h\r\n\r\n", (int)len, m);
        sy_http_header_t headers[4];
        sy_http_request_t req;
        sy_http_reject_t reject;
        if (sy_http_request_parse(NULL, line, (size_t)n, &limits, headers, 4, &req, &reject) !=
                SY_HTTP_OK ||
            req.method.len != len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *query = malloc(size + 1);
    if (!query)
        abort();
    memcpy(query, data, size);
    query[size] = '\0';
    sy_explain_query_t q = {0};
    const char *why = "unset";
    bool ok = sy_explain_query_parse(sy_slice(query, size), &q, &why);
    if (!ok && (!why || !*why))
        abort();
    if (ok) {
        const char *values[] = {q.host, q.path, q.method};
        size_t lens[] = {q.host_len, q.path_len, q.method_len};
        for (int i = 0; i < 3; i++)
            if (values[i] && (lens[i] > size || memchr(values[i], '\0', lens[i])))
                abort();
        char *again = malloc(size * 3 + 64);
        if (!again)
            abort();
        size_t n = 0;
        if (q.host)
            n += encode(again + n, "host", q.host, q.host_len);
        if (q.path)
            n += encode(again + n, "path", q.path, q.path_len);
        if (q.method)
            n += encode(again + n, "method", q.method, q.method_len);
        sy_explain_query_t r = {0};
        if (!sy_explain_query_parse(sy_slice(again, n), &r, &why) ||
            !same(r.host, r.host_len, q.host, q.host_len) ||
            !same(r.path, r.path_len, q.path, q.path_len) ||
            !same(r.method, r.method_len, q.method, q.method_len))
            abort(); /* the round trip lost or changed a value */
        sy_explain_query_free(&r);
        free(again);
        if (q.method)
            check_method(q.method, q.method_len);
    }
    sy_explain_query_free(&q);
    /* The raw input as a method too: CR LF, spaces, NULs and all. */
    check_method(query, size);
    free(query);
    return 0;
}
