/*
 * log.h: the JSON error log on stderr and the JSON access log (SPEC §7).
 * Each line is built in a local buffer and written with one write(2), so
 * lines from different threads never interleave.
 * Thread: any, after sy_log_init on the main thread. Pointers: none kept.
 */
#ifndef SY_CORE_LOG_H
#define SY_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SY_LOG_ERROR = 0, SY_LOG_WARN, SY_LOG_INFO, SY_LOG_DEBUG } sy_log_level_t;

/* "error", "warn", "info", "debug"; false for anything else. */
bool sy_log_level_parse(const char *name, sy_log_level_t *out);
void sy_log_set_level(sy_log_level_t level);
bool sy_log_enabled(sy_log_level_t level);

/* One JSON line: {"time":..,"level":..,"msg":msg, key: value, ...}. The
 * variadic part is NULL-terminated pairs of const char * key and value
 * (values are JSON strings). A key written SY_LOG_NUM("name") marks a
 * count: its value (still a string, e.g. from snprintf "%zu") is written
 * as a bare JSON number under "name" when it is one, else as a string, so
 * a log query can compare it without a cast. Never pass a secret. */
#define SY_LOG_NUM(key) "#" key
void sy_log(sy_log_level_t level, const char *msg, ...) __attribute__((sentinel));

/* Access log: path "-" (stdout), "off", or a file opened for append. */
bool sy_access_log_open(const char *path);
bool sy_access_log_enabled(void);

typedef struct {
    const char *request_id, *client_ip, *method, *host, *path, *route, *upstream, *upstream_addr,
        *auth, *subject, *error;
    size_t request_id_len, method_len, host_len, path_len;
    /* Lengths of the strings above when the caller knows them (route:
     * the decision's matched_len; auth: the policy's name), so no
     * configuration string is measured per request; 0: measured here. */
    size_t client_ip_len, route_len, upstream_len, upstream_addr_len, auth_len, error_len,
        protocol_len;
    /* From the client's headers, as received (NULL: absent); each is
     * written JSON-escaped and cut at SY_ACCESS_FIELD_MAX bytes. */
    const char *trace_id, *traceparent, *forwarded_for, *user_agent;
    size_t trace_id_len, traceparent_len, forwarded_for_len, user_agent_len;
    const char *protocol;        /* "HTTP/1.1", "HTTP/1.0"; NULL before a head was read */
    bool tls;                    /* the request came over the HTTPS listener */
    int status, upstream_status; /* upstream_status 0: none */
    uint64_t bytes_in, bytes_out;
    double duration_ms, upstream_ms; /* upstream_ms < 0: none */
} sy_access_entry_t;

/* The most of one client-supplied header value an access-log line carries:
 * enough for any real trace id or proxy chain, bounded so a client can't
 * fill the line and push out the fields after it. */
#define SY_ACCESS_FIELD_MAX 512

void sy_access_log_write(const sy_access_entry_t *entry);

#endif
