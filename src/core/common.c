/*
 * common.c: slices, errors, JSON escaping, hex digits and whole-file reads
 * shared by every module. Each helper is here because two modules needed
 * the same thing; keep it that way (one caller's helper stays private).
 */
#include "core/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

sy_slice_t sy_slice_cstr(const char *s)
{
    return (sy_slice_t){s, s ? strlen(s) : 0};
}

bool sy_slice_eq(sy_slice_t a, sy_slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool sy_slice_eq_nocase(sy_slice_t a, sy_slice_t b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)b.ptr[i]))
            return false;
    return true;
}

/* Both walk b only as far as a is long (never strlen): b is usually
 * configuration, compared once per request. A NUL inside a never equals. */
bool sy_slice_eq_cstr(sy_slice_t a, const char *b)
{
    if (!b)
        return a.len == 0;
    for (size_t i = 0; i < a.len; i++)
        if (b[i] == '\0' || b[i] != a.ptr[i])
            return false;
    return b[a.len] == '\0';
}

bool sy_slice_eq_cstr_nocase(sy_slice_t a, const char *b)
{
    if (!b)
        return a.len == 0;
    for (size_t i = 0; i < a.len; i++)
        if (b[i] == '\0' || lower((unsigned char)a.ptr[i]) != lower((unsigned char)b[i]))
            return false;
    return b[a.len] == '\0';
}

char *sy_slice_dup(sy_slice_t s)
{
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

void sy_error_set(sy_error_t *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void sy_error_clear(sy_error_t *err)
{
    if (err)
        err->message[0] = '\0';
}

/* Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n, size_t i)
{
    unsigned char c = s[i];
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Bytes a JSON string carries as they are: printable ASCII but '"' and
 * '\\' (one table lookup per byte in the copy loop below). */
static const bool json_plain[256] = {
    [' '] = 1,
    ['!'] = 1,
    ['#' ... '['] = 1,
    [']' ... '~'] = 1,
};

size_t sy_json_escape(char *out, size_t cap, sy_slice_t s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t o = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o < cap)                                                                               \
            out[o] = (char)(ch);                                                                   \
        o++;                                                                                       \
    } while (0)
    for (size_t i = 0; i < s.len; i++) {
        /* Most of a log line's bytes need no escape: copy them by runs (an
         * access-log line escapes every field, per request). */
        size_t run = i;
        while (run < s.len && json_plain[p[run]])
            run++;
        if (run > i) {
            size_t n = run - i;
            if (o < cap)
                memcpy(out + o, p + i, n < cap - o ? n : cap - o);
            o += n;
            i = run - 1;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT(c);
        } else if (c == '\n') {
            PUT('\\');
            PUT('n');
        } else if (c == '\r') {
            PUT('\\');
            PUT('r');
        } else if (c == '\t') {
            PUT('\\');
            PUT('t');
        } else if (c < 0x20 || c == 0x7F) {
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        } else if (c < 0x80) {
            PUT(c);
        } else {
            size_t len = utf8_seq_len(p, s.len, i);
            if (len == 0) {
                PUT('\\');
                PUT('u');
                PUT('0');
                PUT('0');
                PUT(hex[c >> 4]);
                PUT(hex[c & 15]);
            } else {
                for (size_t k = 0; k < len; k++)
                    PUT(p[i + k]);
                i += len - 1;
            }
        }
    }
#undef PUT
    return o;
}

uint64_t sy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

size_t sy_time_rfc3339(char out[32])
{
    /* Every log line needs the time: the date and time of day are
     * formatted once per second per thread, the milliseconds per call. */
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[26];
    static _Thread_local size_t cached_len;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        cached_len = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = tv.tv_sec;
    }
    memcpy(out, cached, cached_len);
    unsigned ms = (unsigned)(tv.tv_usec / 1000) % 1000u;
    char *p = out + cached_len;
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - out);
}

int sy_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void sy_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t sy_fmt_u64(char *out, uint64_t v)
{
    char tmp[SY_FMT_U64_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t sy_fmt_hex(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[SY_FMT_HEX_MAX];
    size_t n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t sy_fmt_milli(char *out, uint64_t v)
{
    size_t n = sy_fmt_u64(out, v / 1000);
    unsigned frac = (unsigned)(v % 1000);
    out[n++] = '.';
    out[n++] = (char)('0' + frac / 100);
    out[n++] = (char)('0' + frac / 10 % 10);
    out[n++] = (char)('0' + frac % 10);
    return n;
}

const char *sy_file_uri_path(const char *uri)
{
    if (strncmp(uri, "file://", 7) != 0)
        return uri;
    const char *rest = uri + 7;
    if (strncmp(rest, "localhost/", 10) == 0)
        rest += 9;
    return rest[0] == '/' ? rest : NULL;
}

static void set_too_large(sy_error_t *err, const char *path, size_t max_bytes)
{
    if (max_bytes >= (1u << 20) && max_bytes % (1u << 20) == 0)
        sy_error_set(err, "%s: larger than %zu MiB", path, max_bytes >> 20);
    else
        sy_error_set(err, "%s: larger than %zu bytes", path, max_bytes);
}

char *sy_file_read(const char *path, size_t max_bytes, size_t *len, sy_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sy_error_set(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* A directory opens fine and a FIFO or device may never end: only a
     * regular file has a whole to read. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        sy_error_set(err, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        set_too_large(err, path, max_bytes);
        fclose(f);
        return NULL;
    }
    /* Read to EOF rather than trusting st_size: the file may be rewritten
     * while we read it. One spare byte past the size is what tells "grew"
     * from "exactly this long" without a second read. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || n > max_bytes)
            break;
        cap *= 2;
        char *grown = realloc(buf, cap + 1);
        if (!grown)
            free(buf);
        buf = grown;
    }
    bool read_error = ferror(f);
    fclose(f);
    if (!buf || read_error || n > max_bytes) {
        if (!buf)
            sy_error_set(err, "%s: out of memory", path);
        else if (read_error)
            sy_error_set(err, "%s: read error", path);
        else
            set_too_large(err, path, max_bytes);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Appends the parts into out, truncating (never overflowing); out may not
 * alias a part. Hand-rolled because snprintf here trips GCC's truncation
 * warning, and truncating a long path in a message is exactly the intent. */
static const char *where_join(char out[SY_WHERE_MAX], const char *a, const char *sep, const char *b,
                              const char *end)
{
    const char *parts[] = {a, sep, b, end};
    size_t used = 0;
    for (size_t k = 0; k < 4; k++)
        for (const char *c = parts[k]; c && *c && used + 1 < SY_WHERE_MAX; c++)
            out[used++] = *c;
    out[used] = '\0';
    return out;
}

const char *sy_where_key(char out[SY_WHERE_MAX], const char *where, const char *key)
{
    bool top = !where || !where[0];
    return where_join(out, top ? "" : where, top ? "" : ".", key, NULL);
}

const char *sy_where_index(char out[SY_WHERE_MAX], const char *where, size_t i)
{
    char digits[24];
    snprintf(digits, sizeof digits, "[%zu", i);
    return where_join(out, where, digits, "]", NULL);
}
