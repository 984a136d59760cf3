/*
 * common.h: the small vocabulary every module shares: byte slices, errors as
 * values, JSON string escaping, hex digits, reading a small file whole.
 * Thread: any. Pointers: a slice borrows the bytes it points at; it lives as
 * long as those bytes do.
 */
#ifndef SY_COMMON_H
#define SY_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed run of bytes; not NUL-terminated. */
typedef struct {
    const char *ptr;
    size_t len;
} sy_slice_t;

#define SY_SLICE_LIT(s) ((sy_slice_t){(s), sizeof(s) - 1})

static inline sy_slice_t sy_slice(const char *ptr, size_t len)
{
    return (sy_slice_t){ptr, len};
}

sy_slice_t sy_slice_cstr(const char *s);
bool sy_slice_eq(sy_slice_t a, sy_slice_t b);
/* ASCII case-insensitive equality (HTTP header names, host names). */
bool sy_slice_eq_nocase(sy_slice_t a, sy_slice_t b);
/* a equals the NUL-terminated b (NULL counts as ""), without a strlen of b:
 * for comparing request bytes with configuration. */
bool sy_slice_eq_cstr(sy_slice_t a, const char *b);
bool sy_slice_eq_cstr_nocase(sy_slice_t a, const char *b);
/* A newly malloc'd NUL-terminated copy, or NULL when out of memory. */
char *sy_slice_dup(sy_slice_t s);

/* An error a user can act on: which document, line/column or item, which
 * field, what was expected. Filled by the failing function; empty means no
 * error. */
typedef struct {
    char message[512];
} sy_error_t;

void sy_error_set(sy_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sy_error_clear(sy_error_t *err);

/* Locations in a document for error messages: "auth_policies.jwt.issuer",
 * "destinations[2].host". Written into out (SY_WHERE_MAX bytes), truncated
 * rather than overflowing; a NULL or empty where gives the key alone.
 * Return out. */
#define SY_WHERE_MAX 256
const char *sy_where_key(char out[SY_WHERE_MAX], const char *where, const char *key);
const char *sy_where_index(char out[SY_WHERE_MAX], const char *where, size_t i);

/* Writes `s` JSON-escaped (without quotes) into out. Returns the number of
 * bytes the escaped form needs; writes nothing past cap. Bytes >= 0x80 that
 * are not valid UTF-8 are written as \u00XX so a log line is always JSON. */
size_t sy_json_escape(char *out, size_t cap, sy_slice_t s);

/* The value of one hex digit (either case), or -1 when c is not one. */
int sy_hex_value(char c);

/* Writes n bytes as 2n lowercase hex digits and a NUL (out holds 2n+1). */
void sy_hex_encode(const unsigned char *in, size_t n, char *out);

/* Number formatting for the request path, where snprintf's format parsing
 * and locale lookups cost more than the work: each writes the digits of v
 * at out (no NUL) and returns how many it wrote. */
#define SY_FMT_U64_MAX 20 /* digits of UINT64_MAX */
size_t sy_fmt_u64(char *out, uint64_t v);
/* Lowercase hex without leading zeros ("0" for 0): a chunk-size line. */
#define SY_FMT_HEX_MAX 16
size_t sy_fmt_hex(char *out, uint64_t v);
/* v / 1000 with three decimals ("12.345"): microseconds as milliseconds. */
#define SY_FMT_MILLI_MAX (SY_FMT_U64_MAX + 4)
size_t sy_fmt_milli(char *out, uint64_t v);

/* The path a local-file store URI names: "file:///abs/path" and
 * "file://localhost/abs/path" give "/abs/path", a plain path is itself.
 * NULL when a file URI names another host or a relative path. The result
 * points into uri. */
const char *sy_file_uri_path(const char *uri);

/* Reads the regular file at path whole into a malloc'd, NUL-terminated
 * buffer (*len, when len is not NULL, excludes the NUL). NULL with err
 * naming the path when it can't be opened, isn't a regular file, can't be
 * read, or holds more than max_bytes; the file may grow while it is read,
 * so the cap is checked on what was read, not only on its size. */
char *sy_file_read(const char *path, size_t max_bytes, size_t *len, sy_error_t *err);

/* Monotonic milliseconds and wall-clock time as RFC 3339 with milliseconds
 * (out must hold 32 bytes; NUL-terminated; returns the length). */
uint64_t sy_now_ms(void);
size_t sy_time_rfc3339(char out[32]);

#endif
