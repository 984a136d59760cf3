/*
 * path.c: decides whether a request path (or a route path from a document)
 * is one that switchyard and every backend must read the same way. The path
 * is never rewritten: it is matched and forwarded byte for byte, so the only
 * safe answer to anything a server could normalise (dot segments, encoded
 * separators, double encoding, overlong UTF-8, ...) is a refusal.
 *
 * One left-to-right pass over the bytes. Each segment is also looked at in
 * its decoded form, because "%2e%2e", ".%2E" and "..;x" are dot segments to
 * some servers (WHATWG URL parsers, Tomcat/Spring path parameters). Every
 * percent-encoded run that decodes to bytes >= 0x80 must be valid UTF-8 on
 * its own, which refuses overlong forms such as %c0%ae.
 */
#include "route/path.h"

#include <string.h>

/* Decodes "%XX" at p[i]; -1 when it is not two hex digits. */
static int pct_byte(const unsigned char *p, size_t n, size_t i)
{
    if (i + 2 >= n)
        return -1;
    int hi = sy_hex_value((char)p[i + 1]), lo = sy_hex_value((char)p[i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi * 16 + lo;
}

/*
 * Checks the percent-encoded UTF-8 sequence whose lead byte `lead` was
 * decoded at p[i]; the continuation bytes must follow as "%XX" too, since a
 * raw byte >= 0x80 is refused anyway. Returns how many input bytes the whole
 * sequence spans, or 0 when it is not valid UTF-8 (lone continuation byte,
 * overlong form, surrogate, above U+10FFFF, truncated).
 */
static size_t pct_utf8_span(const unsigned char *p, size_t n, size_t i, unsigned lead)
{
    size_t len;
    uint32_t cp, min;
    if (lead >= 0xC2 && lead <= 0xDF) {
        len = 2;
        cp = lead & 0x1F;
        min = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3;
        cp = lead & 0x0F;
        min = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4;
        cp = lead & 0x07;
        min = 0x10000;
    } else {
        return 0; /* 0x80-0xC1 (continuation or overlong lead), 0xF5-0xFF */
    }
    for (size_t k = 1; k < len; k++) {
        size_t at = i + 3 * k;
        if (at >= n || p[at] != '%')
            return 0;
        int b = pct_byte(p, n, at);
        if (b < 0 || (b & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | ((unsigned)b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return 3 * len;
}

/* What one segment looks like once decoded, as far as the checks care. */
typedef struct {
    size_t decoded_len;    /* decoded bytes before the first ';' (path parameter) */
    bool all_dots;         /* every one of those is '.' */
    unsigned char head[3]; /* the first decoded bytes of the whole segment */
    unsigned char tail[2]; /* the last two decoded bytes of the whole segment */
    size_t total_decoded;
    bool in_params;
} segment_t;

static void segment_reset(segment_t *s)
{
    memset(s, 0, sizeof *s);
    s->all_dots = true;
}

static void segment_push(segment_t *s, unsigned char c)
{
    if (c == ';')
        s->in_params = true;
    if (!s->in_params) {
        s->decoded_len++;
        if (c != '.')
            s->all_dots = false;
    }
    if (s->total_decoded < sizeof s->head)
        s->head[s->total_decoded] = c;
    s->tail[0] = s->tail[1];
    s->tail[1] = c;
    s->total_decoded++;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Called at the end of each segment (at '/' or at the end of the path). */
static const char *segment_finish(const segment_t *s, bool last)
{
    if (s->total_decoded == 0)
        return last ? NULL : "empty segment"; /* "/orders/" is fine, "//" is not */
    /* ";x" alone: servers that strip path parameters see an empty segment. */
    if (s->decoded_len == 0)
        return "empty segment";
    if (s->all_dots && s->decoded_len <= 2)
        return "dot segment";
    /* ASP.NET cookieless-session segments "(S(id))" are stripped by those
     * backends, which would then see a different path than we routed. */
    if (s->total_decoded >= 5 && s->head[0] == '(' && is_alpha(s->head[1]) && s->head[2] == '(' &&
        s->tail[0] == ')' && s->tail[1] == ')')
        return "cookieless session segment";
    return NULL;
}

const char *sy_path_check_request(sy_slice_t path)
{
    const unsigned char *p = (const unsigned char *)path.ptr;
    size_t n = path.len;
    if (n == 0 || p[0] != '/')
        return "path must start with '/'";
    segment_t seg;
    segment_reset(&seg);
    for (size_t i = 1; i < n; i++) {
        unsigned char c = p[i];
        if (c == '/') {
            const char *why = segment_finish(&seg, false);
            if (why)
                return why;
            segment_reset(&seg);
            continue;
        }
        if (c >= 0x80)
            return "non-ASCII byte";
        if (c <= 0x20 || c == 0x7F)
            return "control byte or space";
        if (c == '\\')
            return "backslash";
        if (c == '#')
            return "fragment in path";
        if (c == '?')
            return "query in path";
        if (c != '%') {
            segment_push(&seg, c);
            continue;
        }
        int b = pct_byte(p, n, i);
        if (b < 0)
            return "bad percent-encoding";
        switch (b) {
        case 0x00:
            return "encoded NUL";
        case '/':
            return "encoded slash";
        case '\\':
            return "encoded backslash";
        case '%':
            return "double encoding";
        /* A backend that decodes the path and then splits it again (Apache
         * mod_rewrite before 2.4.60, CVE-2024-38474; servlet filters that
         * decode twice) reads "/orders/admin%3Fx" as "/orders/admin" with
         * a query, while we matched "/orders/admin?x" literally, perhaps
         * to a weaker route. Like %2F, the only safe answer is no. */
        case '?':
            return "encoded question mark";
        case '#':
            return "encoded number sign";
        default:
            break;
        }
        if (b < 0x20 || b == 0x7F)
            return "encoded control byte";
        if (b >= 0x80) {
            size_t span = pct_utf8_span(p, n, i, (unsigned)b);
            if (span == 0)
                return "invalid UTF-8";
            /* A non-ASCII character is neither a dot nor a separator. */
            segment_push(&seg, 0x80);
            i += span - 1;
            continue;
        }
        segment_push(&seg, (unsigned char)b);
        i += 2;
    }
    return segment_finish(&seg, true);
}

/* RFC 3986 §2.3: the characters whose encoding means nothing. */
static bool is_unreserved(int c)
{
    return is_alpha((unsigned char)c) || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

size_t sy_path_canonicalize(char *path, size_t len)
{
    const unsigned char *p = (const unsigned char *)path;
    /* First pass: a '%' not followed by two hex digits leaves the path as
     * received, for the check to refuse. Rewriting around it could build a
     * new escape: "%%36%31" would become "%61", which a backend decodes. */
    bool any = false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '%')
            continue;
        if (pct_byte(p, len, i) < 0)
            return len;
        any = true;
        i += 2;
    }
    if (!any)
        return len;
    static const char upper[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (path[i] != '%') {
            path[o++] = path[i];
            continue;
        }
        int b = pct_byte(p, len, i);
        i += 2;
        if (is_unreserved(b)) {
            path[o++] = (char)b;
        } else {
            path[o++] = '%';
            path[o++] = upper[b >> 4];
            path[o++] = upper[b & 15];
        }
    }
    return o;
}

const char *sy_path_check_parameters(sy_slice_t path)
{
    for (size_t i = 0; i < path.len; i++) {
        if (path.ptr[i] == ';')
            return "path parameter";
        if (path.ptr[i] == '%' && i + 2 < path.len && path.ptr[i + 1] == '3' &&
            (path.ptr[i + 2] == 'B' || path.ptr[i + 2] == 'b'))
            return "path parameter";
    }
    return NULL;
}

/* True when sy_path_canonicalize would leave path as it is. */
static bool is_canonical(sy_slice_t path)
{
    const unsigned char *p = (const unsigned char *)path.ptr;
    for (size_t i = 0; i < path.len; i++) {
        if (p[i] != '%')
            continue;
        int b = pct_byte(p, path.len, i);
        if (b < 0)
            return true; /* the request check refuses it */
        if (is_unreserved(b) || (p[i + 1] >= 'a' && p[i + 1] <= 'f') ||
            (p[i + 2] >= 'a' && p[i + 2] <= 'f'))
            return false;
        i += 2;
    }
    return true;
}

const char *sy_path_check_route(sy_slice_t path, bool allow_root)
{
    if (path.len == 0 || path.ptr[0] != '/')
        return "must start with '/'";
    if (path.len == 1)
        return allow_root ? NULL : "\"/\" is not allowed here";
    if (path.ptr[path.len - 1] == '/')
        return "must not end with '/'";
    const char *why = sy_path_check_request(path);
    if (why)
        return why;
    /* Requests are matched in canonical form, so a route written any other
     * way could never match: say so at load instead. */
    if (!is_canonical(path))
        return "not in canonical form (write unreserved characters A-Z a-z 0-9 - . _ ~ "
               "unencoded and other percent-encodings in upper-case hex)";
    return sy_path_check_parameters(path);
}
