/*
 * explain.c: the /explain query string and method, as pure functions.
 *
 * The method check does not restate the parser's token rule: it runs a
 * minimal request line with that method through sy_http_request_parse, so
 * an empty method, one with a CR LF or a space in it, or CONNECT gets from
 * /explain exactly the refusal traffic gets.
 */
#include "admin/explain.h"

#include <stdlib.h>
#include <string.h>

/* Percent-decodes s into a malloc'd string; NULL on bad encoding or a NUL,
 * raw or decoded: the values are used as C strings too. */
static char *percent_decode(sy_slice_t s, size_t *out_len)
{
    char *out = malloc(s.len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '\0') {
            free(out);
            return NULL;
        }
        if (s.ptr[i] != '%') {
            out[o++] = s.ptr[i];
            continue;
        }
        int hi = i + 2 < s.len ? sy_hex_value(s.ptr[i + 1]) : -1;
        int lo = hi >= 0 ? sy_hex_value(s.ptr[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

void sy_explain_query_free(sy_explain_query_t *q)
{
    free(q->host);
    free(q->path);
    free(q->method);
    q->host = q->path = q->method = NULL;
}

bool sy_explain_query_parse(sy_slice_t query, sy_explain_query_t *q, const char **why)
{
    const char *p = query.ptr, *end = query.ptr + query.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        sy_slice_t key = sy_slice(p, (size_t)((eq ? eq : stop) - p));
        sy_slice_t value = eq ? sy_slice(eq + 1, (size_t)(stop - eq - 1)) : sy_slice(stop, 0);
        char **slot = NULL;
        size_t *slot_len = NULL;
        if (sy_slice_eq(key, SY_SLICE_LIT("host"))) {
            slot = &q->host;
            slot_len = &q->host_len;
        } else if (sy_slice_eq(key, SY_SLICE_LIT("path"))) {
            slot = &q->path;
            slot_len = &q->path_len;
        } else if (sy_slice_eq(key, SY_SLICE_LIT("method"))) {
            slot = &q->method;
            slot_len = &q->method_len;
        }
        if (slot) {
            if (*slot) {
                *why = "a query parameter is given twice";
                return false;
            }
            *slot = percent_decode(value, slot_len);
            if (!*slot) {
                *why = "bad percent-encoding in the query";
                return false;
            }
        }
        p = stop + 1;
    }
    return true;
}

sy_http_reject_t sy_explain_request_check(sy_slice_t method, sy_slice_t target,
                                          const sy_http_limits_t *limits)
{
    /* A space ends the method on the wire: whatever follows it would be
     * read as the target, so such a method can never be sent at all. */
    if (method.len == 0 || memchr(method.ptr, ' ', method.len))
        return SY_REJECT_BAD_METHOD;
    static const char rest[] = " HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t len = method.len + 1 + target.len + sizeof rest - 1;
    char *line = malloc(len + 1);
    if (!line)
        return SY_REJECT_HEADERS_TOO_LARGE; /* out of memory: refuse rather than guess */
    memcpy(line, method.ptr, method.len);
    line[method.len] = ' ';
    if (target.len)
        memcpy(line + method.len + 1, target.ptr, target.len);
    memcpy(line + method.len + 1 + target.len, rest, sizeof rest);
    /* The parser's first complaint is the one the wire would get: about the
     * method, the line's length, or the target's bytes (RFC 3986 only, no
     * '#'), so /explain never says "forward" for a target traffic refuses. */
    sy_http_header_t headers[2];
    sy_http_request_t req;
    sy_http_reject_t reject = SY_REJECT_NONE;
    sy_http_status_t st = sy_http_request_parse(NULL, line, len, limits, headers, 2, &req, &reject);
    free(line);
    if (st == SY_HTTP_OK)
        return SY_REJECT_NONE;
    /* Incomplete: a CR or LF in the target ended the line early, so this
     * target can't be sent as one. */
    return st == SY_HTTP_ERROR ? reject : SY_REJECT_BAD_TARGET;
}

sy_http_reject_t sy_explain_method_check(sy_slice_t method, const sy_http_limits_t *limits)
{
    sy_http_reject_t r = sy_explain_request_check(method, SY_SLICE_LIT("/"), limits);
    /* With "/" as the target, anything left unfinished is the method's. */
    return r == SY_REJECT_BAD_TARGET ? SY_REJECT_BAD_METHOD : r;
}
