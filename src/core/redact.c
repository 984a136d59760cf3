/*
 * redact.c: URLs and request targets made safe to print (see redact.h for
 * the rules and why each part is treated as it is).
 *
 * The writer appends into a bounded buffer and silently stops when full;
 * only kept bytes (scheme, host, path, parameter names) and the marker are
 * ever appended, so a cut-off result is still free of secrets.
 */
#include "core/redact.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t cap, len; /* cap excludes the NUL */
} writer_t;

static void put(writer_t *w, const char *s, size_t n)
{
    if (w->len + n > w->cap)
        n = w->cap - w->len;
    if (n == 0) /* also when there is no buffer at all (cap 0) */
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_marker(writer_t *w)
{
    put(w, SY_REDACTED, sizeof SY_REDACTED - 1);
}

static size_t finish(writer_t *w)
{
    if (w->buf)
        w->buf[w->len] = '\0';
    return w->len;
}

static writer_t writer(char *out, size_t cap)
{
    /* cap 0 leaves nowhere even for the NUL: write nothing at all. */
    return (writer_t){cap ? out : NULL, cap ? cap - 1 : 0, 0};
}

static void put_query(writer_t *w, sy_slice_t q)
{
    size_t i = 0;
    for (;;) {
        size_t end = i;
        while (end < q.len && q.ptr[end] != '&')
            end++;
        const char *eq = memchr(q.ptr + i, '=', end - i);
        if (eq) {
            put(w, q.ptr + i, (size_t)(eq - q.ptr) - i + 1); /* "name=" */
            if (eq + 1 < q.ptr + end)
                put_marker(w);
        } else if (end > i) {
            put_marker(w); /* a bare part is value-shaped: "?s3cr3t" */
        }
        if (end >= q.len)
            break;
        put(w, "&", 1);
        i = end + 1;
    }
}

size_t sy_redact_query(char *out, size_t cap, sy_slice_t query)
{
    writer_t w = writer(out, cap);
    if (query.ptr)
        put_query(&w, query);
    return finish(&w);
}

static bool is_scheme_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.';
}

/* Where the authority starts; *has is false for an origin-form target. */
static size_t authority_start(sy_slice_t s, bool *has)
{
    *has = true;
    if (s.len >= 2 && s.ptr[0] == '/' && s.ptr[1] == '/')
        return 2;
    if (s.len == 0 || s.ptr[0] == '/' || s.ptr[0] == '?' || s.ptr[0] == '#') {
        *has = false;
        return 0;
    }
    size_t i = 0;
    while (i < s.len && is_scheme_char(s.ptr[i]))
        i++;
    if (i > 0 && i + 3 <= s.len && memcmp(s.ptr + i, "://", 3) == 0)
        return i + 3;
    /* Not a URL we know ("user:pass@host/x"): read it as an authority
     * anyway, so a misplaced password is still caught. */
    return 0;
}

size_t sy_redact_url(char *out, size_t cap, sy_slice_t url)
{
    writer_t w = writer(out, cap);
    if (!url.ptr)
        return finish(&w);
    bool has_authority;
    size_t i = authority_start(url, &has_authority);
    put(&w, url.ptr, i); /* "scheme://" or "//" */
    if (has_authority) {
        size_t end = i;
        while (end < url.len && url.ptr[end] != '/' && url.ptr[end] != '?' && url.ptr[end] != '#')
            end++;
        /* The last '@' ends userinfo (RFC 3986 §3.2.1): a password with a
         * raw '@' in it is still redacted whole. */
        size_t at = end;
        while (at > i && url.ptr[at - 1] != '@')
            at--;
        if (at > i) {
            put_marker(&w);
            put(&w, "@", 1);
            i = at;
        }
        put(&w, url.ptr + i, end - i);
        i = end;
    }
    size_t path_end = i;
    while (path_end < url.len && url.ptr[path_end] != '?' && url.ptr[path_end] != '#')
        path_end++;
    put(&w, url.ptr + i, path_end - i);
    i = path_end;
    if (i < url.len && url.ptr[i] == '?') {
        size_t q_end = i + 1;
        while (q_end < url.len && url.ptr[q_end] != '#')
            q_end++;
        put(&w, "?", 1);
        put_query(&w, sy_slice(url.ptr + i + 1, q_end - i - 1));
        i = q_end;
    }
    if (i < url.len) { /* '#' */
        put(&w, "#", 1);
        if (i + 1 < url.len)
            put_marker(&w);
    }
    return finish(&w);
}

char *sy_redact_url_dup(const char *url)
{
    if (!url)
        return NULL;
    /* Every redacted part is replaced by at most the marker plus its
     * separator, so this bound always holds. */
    size_t len = strlen(url);
    size_t cap = len + (len + 1) * (sizeof SY_REDACTED) + 1;
    char *out = malloc(cap);
    if (out)
        sy_redact_url(out, cap, sy_slice(url, len));
    return out;
}
