/*
 * log.c: JSON lines for the error log (stderr) and the access log.
 *
 * Each line is assembled in a stack buffer and written with a single
 * write(2) on an O_APPEND descriptor, so concurrent workers never interleave
 * partial lines and no lock is needed. A line that does not fit in the
 * buffer is truncated at a field boundary rather than split.
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

static atomic_int log_level = SY_LOG_INFO;
static int access_fd = 1;
static bool access_enabled = true;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const sy_slice_t level_slices[] = {SY_SLICE_LIT("error"), SY_SLICE_LIT("warn"),
                                          SY_SLICE_LIT("info"), SY_SLICE_LIT("debug")};

bool sy_log_level_parse(const char *name, sy_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (sy_log_level_t)i;
            return true;
        }
    }
    return false;
}

void sy_log_set_level(sy_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

bool sy_log_enabled(sy_log_level_t level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* A bounded line builder: appends stop silently once the line is full. */
typedef struct {
    char *buf;
    size_t cap, len;
} line_t;

static void put_raw(line_t *l, const char *s, size_t n)
{
    if (l->len + n > l->cap)
        n = l->len < l->cap ? l->cap - l->len : 0;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(line_t *l, sy_slice_t s)
{
    put_raw(l, "\"", 1);
    size_t room = l->cap > l->len + 2 ? l->cap - l->len - 2 : 0;
    size_t need = sy_json_escape(l->buf + l->len, room, s);
    if (need > room) {
        /* Re-escape a shorter prefix so no escape sequence is cut in half. */
        size_t keep = s.len;
        while (keep > 0 && sy_json_escape(NULL, 0, sy_slice(s.ptr, keep)) > room)
            keep = keep > 64 ? keep - keep / 4 : keep - 1;
        need = sy_json_escape(l->buf + l->len, room, sy_slice(s.ptr, keep));
    }
    l->len += need;
    put_raw(l, "\"", 1);
}

static void put_key_slice(line_t *l, sy_slice_t key)
{
    put_raw(l, ",\"", 2);
    put_raw(l, key.ptr, key.len);
    put_raw(l, "\":", 2);
}

/* Keys of the error log's variadic pairs: not the request path. */
static void put_key(line_t *l, const char *key)
{
    put_key_slice(l, sy_slice_cstr(key));
}

/* The access log's keys are literals: their length is known when compiled. */
#define KEY(lit) SY_SLICE_LIT(lit)

static void put_u64(line_t *l, uint64_t v)
{
    char num[SY_FMT_U64_MAX];
    put_raw(l, num, sy_fmt_u64(num, v));
}

static void put_int(line_t *l, int v)
{
    if (v < 0) {
        put_raw(l, "-", 1);
        put_u64(l, (uint64_t)0 - (uint64_t)(int64_t)v);
    } else {
        put_u64(l, (uint64_t)v);
    }
}

/* "%.3f" of a duration in milliseconds, without printf: the value rounded
 * to whole microseconds exactly as printf rounds (to nearest, ties to
 * even, on the exact binary value), then sy_fmt_milli. fma gives the exact
 * error of ms * 1000, so a value printf sees just below a half microsecond
 * is not rounded up here. Negative, NaN and huge values take printf. */
static void put_millis(line_t *l, double ms)
{
    char num[64];
    if (!(ms >= 0 && ms < 1e12) || signbit(ms)) {
        int n = snprintf(num, sizeof num, "%.3f", ms);
        put_raw(l, num, n < 0 ? 0 : (size_t)n < sizeof num ? (size_t)n : sizeof num - 1);
        return;
    }
    double y = ms * 1000.0;
    double err = fma(ms, 1000.0, -y); /* ms * 1000 == y + err exactly */
    double whole = floor(y);
    double frac = y - whole; /* exact: whole and y are close */
    uint64_t us = (uint64_t)whole;
    /* Whether frac + err is above, at or below one half: frac - 0.5 is
     * exact whenever err could matter (frac >= 0.25), and a rounded sum
     * keeps the sign of the exact one, and is 0 only when that is. */
    double above = (frac - 0.5) + err;
    if (above > 0 || (above == 0 && (us & 1)))
        us++;
    put_raw(l, num, sy_fmt_milli(num, us));
}

static void write_line(int fd, line_t *l)
{
    if (l->len >= l->cap)
        l->len = l->cap - 1;
    l->buf[l->len++] = '\n';
    const char *p = l->buf;
    size_t n = l->len;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Whether s is a JSON number (RFC 8259 §6): -? int frac? exp?, where int
 * has no leading zero. Anything else is logged as a string. */
static bool json_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0' && p - s < 64;
}

void sy_log(sy_log_level_t level, const char *msg, ...)
{
    if (!sy_log_enabled(level))
        return;
    char buf[4096];
    line_t l = {buf, sizeof buf - 2, 0};
    char now[32];
    size_t now_len = sy_time_rfc3339(now);
    if (now_len >= sizeof now) /* never: tells the compiler the bound */
        now_len = sizeof now - 1;
    put_raw(&l, "{\"time\":\"", 9);
    put_raw(&l, now, now_len);
    put_raw(&l, "\",\"level\":\"", 11);
    put_raw(&l, level_slices[level].ptr, level_slices[level].len);
    put_raw(&l, "\",\"msg\":", 8);
    put_str(&l, sy_slice_cstr(msg));
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *value = va_arg(ap, const char *);
        if (key[0] == '#') {
            put_key(&l, key + 1);
            if (value && json_number(value))
                put_raw(&l, value, strlen(value));
            else
                put_str(&l, sy_slice_cstr(value ? value : ""));
            continue;
        }
        put_key(&l, key);
        put_str(&l, sy_slice_cstr(value ? value : ""));
    }
    va_end(ap);
    put_raw(&l, "}", 1);
    write_line(2, &l);
}

bool sy_access_log_open(const char *path)
{
    if (strcmp(path, "off") == 0) {
        access_enabled = false;
        return true;
    }
    access_enabled = true;
    if (strcmp(path, "-") == 0) {
        access_fd = 1;
        return true;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return false;
    access_fd = fd;
    return true;
}

bool sy_access_log_enabled(void)
{
    return access_enabled;
}

static void put_opt(line_t *l, sy_slice_t key, const char *value, size_t len)
{
    put_key_slice(l, key);
    if (!value)
        put_raw(l, "null", 4);
    else
        put_str(l, sy_slice(value, len ? len : strlen(value)));
}

/* A client-supplied value: null when absent, else at most
 * SY_ACCESS_FIELD_MAX bytes of it (an empty header is ""). */
static void put_capped(line_t *l, sy_slice_t key, const char *value, size_t len)
{
    put_key_slice(l, key);
    if (!value)
        put_raw(l, "null", 4);
    else
        put_str(l, sy_slice(value, len < SY_ACCESS_FIELD_MAX ? len : SY_ACCESS_FIELD_MAX));
}

void sy_access_log_write(const sy_access_entry_t *e)
{
    if (!access_enabled)
        return;
    char buf[16384];
    line_t l = {buf, sizeof buf - 2, 0};
    char now[32];
    size_t now_len = sy_time_rfc3339(now);
    if (now_len >= sizeof now) /* never: tells the compiler the bound */
        now_len = sizeof now - 1;
    put_raw(&l, "{\"time\":\"", 9);
    put_raw(&l, now, now_len);
    put_raw(&l, "\"", 1);
    put_opt(&l, KEY("request_id"), e->request_id, e->request_id_len);
    put_opt(&l, KEY("client_ip"), e->client_ip, e->client_ip_len);
    put_opt(&l, KEY("method"), e->method, e->method_len);
    put_opt(&l, KEY("host"), e->host, e->host_len);
    put_opt(&l, KEY("path"), e->path, e->path_len);
    put_key_slice(&l, KEY("status"));
    put_int(&l, e->status);
    put_opt(&l, KEY("route"), e->route, e->route_len);
    put_opt(&l, KEY("upstream"), e->upstream, e->upstream_len);
    put_opt(&l, KEY("upstream_addr"), e->upstream_addr, e->upstream_addr_len);
    put_key_slice(&l, KEY("upstream_status"));
    if (e->upstream_status > 0)
        put_int(&l, e->upstream_status);
    else
        put_raw(&l, "null", 4);
    put_key_slice(&l, KEY("bytes_in"));
    put_u64(&l, e->bytes_in);
    put_key_slice(&l, KEY("bytes_out"));
    put_u64(&l, e->bytes_out);
    put_key_slice(&l, KEY("duration_ms"));
    put_millis(&l, e->duration_ms);
    put_key_slice(&l, KEY("upstream_ms"));
    if (e->upstream_ms >= 0)
        put_millis(&l, e->upstream_ms);
    else
        put_raw(&l, "null", 4);
    put_key_slice(&l, KEY("auth"));
    if (e->auth) {
        put_raw(&l, "{\"policy\":", 10);
        put_str(&l, sy_slice(e->auth, e->auth_len ? e->auth_len : strlen(e->auth)));
        if (e->subject && e->subject[0]) {
            put_raw(&l, ",\"subject\":", 11);
            put_str(&l, sy_slice_cstr(e->subject));
        }
        put_raw(&l, "}", 1);
    } else {
        put_raw(&l, "null", 4);
    }
    put_capped(&l, KEY("trace_id"), e->trace_id, e->trace_id_len);
    put_capped(&l, KEY("traceparent"), e->traceparent, e->traceparent_len);
    put_capped(&l, KEY("forwarded_for"), e->forwarded_for, e->forwarded_for_len);
    put_capped(&l, KEY("user_agent"), e->user_agent, e->user_agent_len);
    put_opt(&l, KEY("protocol"), e->protocol, e->protocol_len);
    put_key_slice(&l, KEY("tls"));
    put_raw(&l, e->tls ? "true" : "false", e->tls ? 4 : 5);
    if (e->error)
        put_opt(&l, KEY("error"), e->error, e->error_len);
    put_raw(&l, "}", 1);
    write_line(access_fd, &l);
}
