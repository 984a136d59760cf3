/*
 * admin.c: the admin listener (SPEC §6). One thread runs its own libuv loop
 * with one TCP listener, so a slow scrape or a big /config never takes a
 * worker's time, and the data plane has nothing to know about it.
 *
 * The HTTP side is deliberately small: the request head is parsed with the
 * same strict parser as traffic, one request is answered at a time per
 * connection (reading pauses while an answer is written, which also keeps
 * pipelined requests in order), and every answer is built whole in memory;
 * the largest, /config, is proportional to the route table. Request bodies
 * are never read: a request that carries one is answered and the connection
 * closed. Only GET and HEAD exist.
 *
 * Every answer reads the configuration through one snapshot reference, so
 * /config and /explain describe exactly one generation, the same way a
 * request sees exactly one.
 */
#include "admin/admin.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "auth/auth.h"
#include "control/sources.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/redact.h"
#include "http/parser.h"
#include "http/serialize.h"
#include "net/resolver.h"
#include "policy/snapshot.h"
#include "proxy/server.h"
#include "admin/explain.h"
#include "net/tls.h"
#include "route/forward.h"
#include "route/decide.h"
#include "route/path.h"

#define CONN_BUFFER_BYTES 16384
#define MAX_CONNECTIONS 64
#define IDLE_TIMEOUT_MS 30000
#define ADMIN_MAX_HEADERS 64

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles; /* freed when both handles have closed */
    bool closing;
    bool close_after_write;
    size_t len;
    char buf[CONN_BUFFER_BYTES];
} conn_t;

typedef struct {
    uv_write_t req;
    conn_t *conn;
    char *data;
} write_t;

static struct {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t stop_async;
    uv_thread_t thread;
    bool running;
    int connections; /* admin thread only */
} admin;

static atomic_bool draining;

static const sy_http_limits_t admin_limits = {
    .max_request_line_bytes = 8192,
    .max_header_bytes = 8192,
    .max_headers = ADMIN_MAX_HEADERS,
    .max_body_bytes = 1u << 20,
};

/* ---- connection lifetime ---- */

static void conn_handle_closed(uv_handle_t *handle)
{
    conn_t *conn = handle->data;
    if (--conn->open_handles == 0) {
        admin.connections--;
        free(conn);
    }
}

static void conn_close(conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, conn_handle_closed);
}

static void conn_idle(uv_timer_t *timer)
{
    conn_close(timer->data);
}

static void conn_process(conn_t *conn);
static void conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    conn_t *conn = handle->data;
    buf->base = conn->buf + conn->len;
    buf->len = sizeof conn->buf - conn->len;
}

static void conn_written(uv_write_t *req, int status)
{
    write_t *w = (write_t *)req;
    conn_t *conn = w->conn;
    free(w->data);
    free(w);
    if (conn->closing)
        return;
    if (status < 0 || conn->close_after_write) {
        conn_close(conn);
        return;
    }
    /* A pipelined request may already be in the buffer. */
    if (conn->len > 0)
        conn_process(conn);
    else
        uv_read_start((uv_stream_t *)&conn->tcp, conn_alloc, conn_read);
}

/* Sends a complete answer; takes ownership of body (may be NULL). */
static void respond(conn_t *conn, int status, const char *content_type, char *body, size_t body_len,
                    bool head_only, bool keep_alive, const char *extra)
{
    char head[512];
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 %d %s\r\n"
                            "Content-Type: %s\r\n"
                            "Content-Length: %zu\r\n"
                            "Cache-Control: no-store\r\n"
                            "%s"
                            "Connection: %s\r\n\r\n",
                            status, sy_http_reason(status), content_type, body_len,
                            extra ? extra : "", keep_alive ? "keep-alive" : "close");
    size_t send_body = head_only ? 0 : body_len;
    write_t *w = malloc(sizeof *w);
    char *data = malloc((size_t)head_len + send_body);
    if (!w || !data || head_len < 0 || (size_t)head_len >= sizeof head) {
        free(w);
        free(data);
        free(body);
        conn_close(conn);
        return;
    }
    memcpy(data, head, (size_t)head_len);
    if (send_body)
        memcpy(data + head_len, body, send_body);
    free(body);
    w->conn = conn;
    w->data = data;
    conn->close_after_write = !keep_alive;
    uv_read_stop((uv_stream_t *)&conn->tcp);
    uv_buf_t buf = uv_buf_init(data, (unsigned)((size_t)head_len + send_body));
    if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1, conn_written) != 0) {
        free(data);
        free(w);
        conn_close(conn);
    }
}

/* ---- JSON helpers ---- */

/* Serialises and releases obj. */
static char *json_body(json_t *obj, size_t *len)
{
    char *text = obj ? json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *with_newline = realloc(text, n + 2);
    if (!with_newline) {
        free(text);
        return NULL;
    }
    with_newline[n] = '\n';
    with_newline[n + 1] = '\0';
    *len = n + 1;
    return with_newline;
}

/* json_string fails on invalid UTF-8; document strings are valid JSON
 * already, but a request's bytes may not be, so those go through here. */
static json_t *json_bytes(const char *ptr, size_t len)
{
    json_t *s = json_stringn(ptr, len);
    if (s)
        return s;
    char *copy = malloc(len + 1);
    if (!copy)
        return json_null();
    for (size_t i = 0; i < len; i++)
        copy[i] = (unsigned char)ptr[i] < 0x80 ? ptr[i] : '?';
    copy[len] = '\0';
    s = json_string(copy);
    free(copy);
    return s ? s : json_null();
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_bytes(s, strlen(s)) : json_null();
}

static json_t *json_time(time_t t)
{
    if (t == 0)
        return json_null();
    struct tm tm;
    char out[32];
    gmtime_r(&t, &tm);
    strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(out);
}

static void respond_json(conn_t *conn, const sy_http_request_t *req, int status, json_t *obj,
                         const char *extra)
{
    size_t len = 0;
    char *body = json_body(obj, &len);
    if (!body) {
        conn_close(conn);
        return;
    }
    bool head_only = sy_slice_eq(req->method, SY_SLICE_LIT("HEAD"));
    respond(conn, status, "application/json", body, len, head_only, req->keep_alive, extra);
}

static void respond_message(conn_t *conn, const sy_http_request_t *req, int status,
                            const char *message, const char *extra)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "message", json_string(message));
    respond_json(conn, req, status, obj, extra);
}

/* ---- /healthz, /readyz, /metrics ---- */

/* Liveness: every worker loop has run recently (its heartbeat timer fired
 * within SY_HEARTBEAT_STALL_MS). A loop stuck in one callback answers
 * nothing, so a load balancer must take the task out of service. */
static void handle_healthz(conn_t *conn, const sy_http_request_t *req)
{
    int worker = -1;
    uint64_t silent_ms = 0;
    json_t *obj = json_object();
    if (sy_server_find_stalled(sy_now_ms(), SY_HEARTBEAT_STALL_MS, &worker, &silent_ms)) {
        char message[128];
        snprintf(message, sizeof message,
                 "worker %d event loop has not run for %.1f s (limit %.1f s)", worker,
                 (double)silent_ms / 1000.0, SY_HEARTBEAT_STALL_MS / 1000.0);
        json_object_set_new(obj, "status", json_string("stalled"));
        json_object_set_new(obj, "message", json_string(message));
        json_object_set_new(obj, "worker", json_integer(worker));
        json_object_set_new(obj, "silent_ms", json_integer((json_int_t)silent_ms));
        respond_json(conn, req, 503, obj, NULL);
        return;
    }
    json_object_set_new(obj, "status", json_string("ok"));
    respond_json(conn, req, 200, obj, NULL);
}

static void handle_readyz(conn_t *conn, const sy_http_request_t *req)
{
    sy_snapshot_t *snap = sy_snapshot_acquire();
    bool loaded = snap != NULL;
    if (snap)
        sy_snapshot_unref(snap);
    if (atomic_load(&draining)) {
        respond_message(conn, req, 503, "draining", NULL);
    } else if (!loaded) {
        respond_message(conn, req, 503, "configuration not loaded yet", NULL);
    } else {
        json_t *obj = json_object();
        json_object_set_new(obj, "status", json_string("ready"));
        respond_json(conn, req, 200, obj, NULL);
    }
}

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} strbuf_t;

static void strbuf_write(void *ctx, const char *text, size_t n)
{
    strbuf_t *sb = ctx;
    if (sb->failed)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = (sb->len + n + 1) * 2;
        char *p = realloc(sb->buf, cap);
        if (!p) {
            sb->failed = true;
            return;
        }
        sb->buf = p;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, text, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

static void handle_metrics(conn_t *conn, const sy_http_request_t *req)
{
    sy_metrics_config_view_t view = {0};
    sy_snapshot_t *snap = sy_snapshot_acquire();
    if (snap) {
        view.active_routes = snap->active_count;
        view.rejected_routes = snap->rejected_count;
        sy_snapshot_unref(snap);
    }
    sy_store_status_t status[2];
    sy_sources_status(status);
    view.policy_last_success = (double)status[0].last_success;
    view.routes_last_success = (double)status[1].last_success;
    view.policy_last_error = (double)status[0].last_error_time;
    view.routes_last_error = (double)status[1].last_error_time;
    view.policy_failures = status[0].consecutive_failures;
    view.routes_failures = status[1].consecutive_failures;
    view.ready = snap != NULL && !atomic_load(&draining);
    size_t len = 0;
    char *text = sy_metrics_render(&view, &len);
    if (text) {
        /* The resolver's per-name series follow the route metrics. */
        strbuf_t sb = {text, len, len + 1, false};
        sy_resolver_render_metrics(strbuf_write, &sb);
        text = sb.failed ? (free(sb.buf), NULL) : sb.buf;
        len = sb.len;
    }
    if (!text) {
        respond_message(conn, req, 500, "out of memory", NULL);
        return;
    }
    respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len,
            sy_slice_eq(req->method, SY_SLICE_LIT("HEAD")), req->keep_alive, NULL);
}

/* ---- /config ---- */

static const char *auth_type_name(sy_auth_type_t type)
{
    switch (type) {
    case SY_AUTH_NONE:
        return "none";
    case SY_AUTH_BASIC:
        return "basic";
    case SY_AUTH_JWT:
        return "jwt";
    case SY_AUTH_IAM:
        return "iam";
    }
    return "unknown";
}

static json_t *store_json(const sy_store_version_t *v, const sy_store_status_t *s)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "source", json_str_or_null(s->source[0] ? s->source : NULL));
    /* The serving snapshot's version, which is also the last good one. */
    const char *version = v ? v->version : s->version;
    json_object_set_new(obj, "version", json_str_or_null(version[0] ? version : NULL));
    json_object_set_new(obj, "loaded_at", v ? json_time(v->loaded_at) : json_null());
    json_object_set_new(obj, "last_success", json_time(s->last_success));
    json_object_set_new(obj, "last_attempt", json_time(s->last_attempt));
    json_object_set_new(obj, "last_error",
                        json_str_or_null(s->last_error[0] ? s->last_error : NULL));
    json_object_set_new(obj, "last_error_time", json_time(s->last_error_time));
    json_object_set_new(obj, "consecutive_failures", json_integer(s->consecutive_failures));
    json_object_set_new(obj, "reloads_ok", json_integer((json_int_t)s->reloads_ok));
    json_object_set_new(obj, "reloads_failed", json_integer((json_int_t)s->reloads_failed));
    return obj;
}

static json_t *host_port_json(const char *host, uint16_t port)
{
    if (!host)
        return json_null();
    char out[300];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, sizeof out, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    return json_string(out);
}

static json_t *names_json(char *const *names, size_t count)
{
    if (!names)
        return json_null();
    json_t *list = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(list, json_str_or_null(names[i]));
    return list;
}

static json_t *destinations_json(const sy_policy_t *policy)
{
    json_t *list = json_array();
    for (size_t i = 0; i < policy->destination_count; i++) {
        const sy_destination_t *d = &policy->destinations[i];
        json_t *obj = json_object();
        json_object_set_new(obj, "host", json_str_or_null(d->host));
        json_object_set_new(obj, "scheme", json_string(d->https ? "https" : "http"));
        json_object_set_new(obj, "port", json_integer(d->port));
        json_object_set_new(obj, "connect_to", host_port_json(d->connect_host, d->connect_port));
        json_object_set_new(obj, "tls_verify_name", json_str_or_null(d->tls_verify_name));
        json_object_set_new(obj, "sni", json_str_or_null(d->sni));
        json_object_set_new(obj, "host_header", json_str_or_null(d->host_header));
        json_object_set_new(obj, "api_id", json_str_or_null(d->api_id));
        /* The bindings; null when the destination is unbound. */
        json_object_set_new(obj, "allowed_paths",
                            names_json(d->allowed_paths, d->allowed_path_count));
        json_object_set_new(obj, "allowed_auth",
                            names_json(d->allowed_auth, d->allowed_auth_count));
        json_array_append_new(list, obj);
    }
    return list;
}

/* Only what helps an operator tell policies apart. Never hashes, secrets
 * or keys: the user names of a basic policy, the issuer and audiences of a
 * jwt one, nothing else from the document. */
static json_t *auth_policies_json(const sy_policy_t *policy)
{
    json_t *all = json_object();
    for (size_t i = 0; i < policy->auth_policy_count; i++) {
        const sy_auth_policy_t *a = &policy->auth_policies[i];
        /* src/auth decides what of a policy may be shown. */
        json_t *obj = sy_auth_config_describe(a->config);
        json_object_set_new(obj, "type", json_string(auth_type_name(a->type)));
        json_object_set_new(all, a->name ? a->name : "", obj);
    }
    return all;
}

static const sy_auth_policy_t *route_auth(const sy_snapshot_t *snap, const sy_route_t *r)
{
    return r->auth ? r->auth : snap->policy->default_auth;
}

static json_t *route_json(const sy_snapshot_t *snap, const sy_route_t *r, bool full)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "path", json_str_or_null(r->path));
    /* Redacted even though the loader refuses userinfo and queries in a
     * target: /config is the page operators paste into tickets. */
    char *target = sy_redact_url_dup(r->target);
    json_object_set_new(obj, "target", json_str_or_null(target));
    free(target);
    /* When this router last saw the route change (the audit log has what). */
    json_object_set_new(obj, "changed_at", json_time(r->changed_at));
    if (!full) {
        if (r->rejected_reason)
            json_object_set_new(obj, "reason", json_str_or_null(r->rejected_reason));
        return obj;
    }
    const sy_auth_policy_t *auth = route_auth(snap, r);
    json_object_set_new(obj, "auth", json_str_or_null(auth ? auth->name : r->auth_name));
    json_object_set_new(obj, "domain", json_str_or_null(r->domain));
    json_t *methods = json_null();
    if (r->methods) {
        methods = json_array();
        for (size_t m = 0; m < r->method_count; m++)
            json_array_append_new(methods, json_str_or_null(r->methods[m]));
    }
    json_object_set_new(obj, "methods", methods);
    json_object_set_new(obj, "strip_prefix", json_boolean(r->strip_prefix));
    json_object_set_new(obj, "owner", json_str_or_null(r->owner));
    json_object_set_new(obj, "updated_at", json_str_or_null(r->updated_at));
    json_object_set_new(obj, "description", json_str_or_null(r->description));
    return obj;
}

static void handle_config(conn_t *conn, const sy_http_request_t *req)
{
    sy_store_status_t status[2];
    sy_sources_status(status);
    sy_snapshot_t *snap = sy_snapshot_acquire();
    json_t *root = json_object();
    json_object_set_new(root, "policy",
                        store_json(snap ? &snap->policy_version : NULL, &status[0]));
    json_object_set_new(root, "routes",
                        store_json(snap ? &snap->routes_version : NULL, &status[1]));
    json_object_set_new(root, "ready", json_boolean(snap && !atomic_load(&draining)));
    if (snap) {
        const sy_policy_t *policy = snap->policy;
        json_object_set_new(root, "generation", json_integer((json_int_t)snap->generation));
        json_t *domains = json_array();
        for (size_t i = 0; i < policy->listen_domain_count; i++)
            json_array_append_new(domains, json_str_or_null(policy->listen_domains[i]));
        json_object_set_new(root, "listen_domains", domains);
        json_object_set_new(root, "destinations", destinations_json(policy));
        json_object_set_new(root, "upstream_names", sy_resolver_config_json());
        json_object_set_new(root, "auth_policies", auth_policies_json(policy));
        json_object_set_new(
            root, "default_auth",
            json_str_or_null(policy->default_auth ? policy->default_auth->name : NULL));
        json_t *active = json_array(), *rejected = json_array(), *disabled = json_array();
        for (size_t i = 0; i < snap->routes->count; i++) {
            const sy_route_t *r = &snap->routes->items[i];
            /* The same order as the snapshot's counts: a disabled route is
             * disabled even when malformed, since it owns no path either way. */
            if (r->path && !r->enabled)
                json_array_append_new(disabled, route_json(snap, r, true));
            else if (r->rejected_reason)
                json_array_append_new(rejected, route_json(snap, r, false));
            else
                json_array_append_new(active, route_json(snap, r, true));
        }
        json_object_set_new(root, "active_routes", active);
        json_object_set_new(root, "rejected_routes", rejected);
        json_object_set_new(root, "disabled_routes", disabled);
        sy_snapshot_unref(snap);
    } else {
        json_object_set_new(root, "generation", json_null());
    }
    respond_json(conn, req, 200, root, NULL);
}

/* ---- /explain ---- */

static void handle_explain(conn_t *conn, const sy_http_request_t *req)
{
    sy_explain_query_t q = {0};
    const char *why = NULL;
    if (!sy_explain_query_parse(req->has_query ? req->query : sy_slice(NULL, 0), &q, &why)) {
        sy_explain_query_free(&q);
        respond_message(conn, req, 400, why, NULL);
        return;
    }
    if (!q.host || !q.path || q.host_len == 0 || q.path_len == 0) {
        sy_explain_query_free(&q);
        respond_message(conn, req, 400, "host and path query parameters are required", NULL);
        return;
    }
    sy_snapshot_t *snap = sy_snapshot_acquire();
    if (!snap) {
        sy_explain_query_free(&q);
        respond_message(conn, req, 503, "configuration not loaded yet", NULL);
        return;
    }

    /* The path may carry its own query (percent-encoded as %3F): it is
     * forwarded, so it belongs in the upstream URL. */
    json_t *given_path = json_bytes(q.path, q.path_len);
    char *qmark = memchr(q.path, '?', q.path_len);
    size_t path_len = qmark ? (size_t)(qmark - q.path) : q.path_len;
    sy_slice_t path_query =
        qmark ? sy_slice(qmark + 1, q.path_len - path_len - 1) : sy_slice(NULL, 0);
    sy_slice_t method = q.method ? sy_slice(q.method, q.method_len) : SY_SLICE_LIT("GET");

    /* The parser refuses a bad method or target before any routing phase:
     * so does /explain, with the same reason. Otherwise the decision canonicalises
     * the path in place, as it does for traffic. */
    sy_decision_t d;
    sy_http_reject_t method_reject =
        sy_explain_request_check(method, sy_slice(q.path, q.path_len), &snap->policy->limits);
    if (method_reject != SY_REJECT_NONE) {
        memset(&d, 0, sizeof d);
        d.status = sy_http_reject_status(method_reject);
        if (d.status == 414)
            snprintf(d.message_buf, sizeof d.message_buf, "request line too long");
        else
            snprintf(d.message_buf, sizeof d.message_buf, "bad request: %s",
                     sy_http_reject_name(method_reject));
        d.message = d.message_buf;
        path_len = sy_path_canonicalize(q.path, path_len); /* as the log would show it */
    } else {
        /* The parser leaves spaces and tabs around a field value out of it
         * (RFC 9110 §5.5): "Host: name " is the name, here as on the wire. */
        sy_slice_t host = sy_slice(q.host, q.host_len);
        while (host.len && (host.ptr[0] == ' ' || host.ptr[0] == '\t'))
            host.ptr++, host.len--;
        while (host.len && (host.ptr[host.len - 1] == ' ' || host.ptr[host.len - 1] == '\t'))
            host.len--;
        sy_decide(snap, host, q.path, &path_len, method, &d);
    }
    sy_slice_t path = sy_slice(q.path, path_len);

    json_t *obj = json_object();
    json_object_set_new(obj, "host", json_bytes(q.host, q.host_len));
    json_object_set_new(obj, "path", given_path);
    /* What the router matched, logs and forwards (SPEC §5.3). */
    char *canonical = malloc(q.path_len + 1);
    if (canonical) {
        memcpy(canonical, path.ptr, path.len);
        size_t n = path.len;
        if (qmark) {
            canonical[n++] = '?';
            memcpy(canonical + n, path_query.ptr, path_query.len);
            n += path_query.len;
        }
        json_object_set_new(obj, "canonical_path", json_bytes(canonical, n));
        free(canonical);
    }
    json_object_set_new(obj, "method", json_bytes(method.ptr, method.len));
    json_object_set_new(obj, "status", json_integer(d.status ? d.status : 200));
    json_object_set_new(obj, "decision", json_string(d.status ? "refuse" : "forward"));
    if (d.status)
        json_object_set_new(obj, "message", json_str_or_null(d.message));
    if (d.allow)
        json_object_set_new(obj, "allow", json_string(d.allow));
    if (d.route)
        json_object_set_new(obj, "route", json_str_or_null(d.route->path));
    sy_forward_plan_t plan;
    if (d.status == 0 && d.route &&
        sy_forward_plan(snap, d.route, d.matched_len, path, qmark != NULL, path_query, NULL,
                        &plan)) {
        const sy_route_t *r = d.route;
        /* Everything below comes from the forward plan the proxy uses for
         * the same request: URL, Host, headers and where it connects. */
        size_t cap = plan.url_prefix.len + plan.base.len + plan.path.len + plan.query.len + 16;
        char *url = malloc(cap);
        if (url) {
            size_t n = sy_forward_url(&plan, url, cap, false);
            json_object_set_new(obj, "upstream", json_bytes(url, n));
            /* As the access log writes it: query values redacted. */
            n = sy_forward_url(&plan, url, cap, true);
            json_object_set_new(obj, "upstream_logged", json_bytes(url, n));
            free(url);
        }
        /* The Host a SigV4 client must sign for is the one sent upstream. */
        json_object_set_new(obj, "upstream_host_header",
                            json_bytes(plan.host_header.ptr, plan.host_header.len));
        const sy_destination_t *dest = r->destination;
        json_object_set_new(obj, "connect_to",
                            dest ? host_port_json(dest->connect_host, dest->connect_port)
                                 : json_null());
        const sy_forward_target_t *f = plan.connect;
        json_t *connect = json_object();
        json_object_set_new(connect, "host", json_str_or_null(f->host));
        json_object_set_new(connect, "port", json_integer(f->port));
        json_object_set_new(connect, "tls", json_boolean(f->https));
        if (f->https) {
            json_object_set_new(connect, "sni", json_str_or_null(f->sni));
            json_object_set_new(connect, "verify_name", json_str_or_null(f->verify_name));
            json_object_set_new(
                connect, "trust_store",
                json_str_or_null(f->trust && f->trust->ca_file ? f->trust->ca_file : "system"));
            if (f->trust && f->trust->error)
                json_object_set_new(connect, "trust_store_error",
                                    json_str_or_null(f->trust->error));
        }
        json_object_set_new(connect, "allow_loopback", json_boolean(f->allow_loopback));
        json_object_set_new(connect, "pool_key", json_bytes(f->key, f->key_len));
        json_object_set_new(obj, "connect", connect);
        /* Headers switchyard sets and drops for every request of the
         * route; an auth policy's forward_claims add theirs per token. */
        json_t *set = json_object(), *dropped = json_array();
        for (size_t i = 0; i < plan.add_count; i++) {
            char name[128];
            size_t n =
                plan.add[i].name.len < sizeof name - 1 ? plan.add[i].name.len : sizeof name - 1;
            memcpy(name, plan.add[i].name.ptr, n);
            name[n] = '\0';
            json_object_set_new(set, name,
                                json_bytes(plan.add[i].value.ptr, plan.add[i].value.len));
        }
        for (size_t i = 0; i < plan.drop_count; i++)
            json_array_append_new(dropped, json_bytes(plan.drop[i].ptr, plan.drop[i].len));
        json_object_set_new(obj, "upstream_headers_set", set);
        json_object_set_new(obj, "upstream_headers_dropped", dropped);
        const sy_auth_policy_t *auth = route_auth(snap, r);
        json_object_set_new(obj, "auth", json_str_or_null(auth ? auth->name : NULL));
        json_object_set_new(obj, "auth_type",
                            auth ? json_string(auth_type_name(auth->type)) : json_null());
    }
    sy_snapshot_unref(snap);
    sy_explain_query_free(&q);
    respond_json(conn, req, 200, obj, NULL);
}

/* ---- dispatch ---- */

static void handle_request(conn_t *conn, const sy_http_request_t *req)
{
    if (!sy_slice_eq(req->method, SY_SLICE_LIT("GET")) &&
        !sy_slice_eq(req->method, SY_SLICE_LIT("HEAD"))) {
        respond_message(conn, req, 405, "method not allowed", "Allow: GET, HEAD\r\n");
        return;
    }
    sy_slice_t path = req->path;
    if (sy_slice_eq(path, SY_SLICE_LIT("/healthz"))) {
        handle_healthz(conn, req);
    } else if (sy_slice_eq(path, SY_SLICE_LIT("/readyz"))) {
        handle_readyz(conn, req);
    } else if (sy_slice_eq(path, SY_SLICE_LIT("/metrics"))) {
        handle_metrics(conn, req);
    } else if (sy_slice_eq(path, SY_SLICE_LIT("/config"))) {
        handle_config(conn, req);
    } else if (sy_slice_eq(path, SY_SLICE_LIT("/explain"))) {
        handle_explain(conn, req);
    } else {
        respond_message(conn, req, 404, "not found", NULL);
    }
}

static void conn_process(conn_t *conn)
{
    sy_http_header_t headers[ADMIN_MAX_HEADERS];
    sy_http_request_t req;
    sy_http_reject_t reject = SY_REJECT_NONE;
    sy_http_status_t st = sy_http_request_parse(NULL, conn->buf, conn->len, &admin_limits, headers,
                                                ADMIN_MAX_HEADERS, &req, &reject);
    if (st == SY_HTTP_INCOMPLETE && conn->len < sizeof conn->buf) {
        uv_read_start((uv_stream_t *)&conn->tcp, conn_alloc, conn_read);
        return;
    }
    if (st != SY_HTTP_OK) {
        int status = st == SY_HTTP_ERROR ? sy_http_reject_status(reject) : 431;
        char message[128];
        snprintf(message, sizeof message, "bad request: %s",
                 st == SY_HTTP_ERROR ? sy_http_reject_name(reject) : "request head too large");
        sy_http_request_t bare = {.method = SY_SLICE_LIT("GET"), .keep_alive = false};
        conn->len = 0;
        respond_message(conn, &bare, status, message, NULL);
        return;
    }
    /* A body is never read; answering and closing keeps its bytes from
     * being taken for the next request. */
    bool has_body = req.body_kind == SY_BODY_CHUNKED ||
                    (req.body_kind == SY_BODY_LENGTH && req.content_length > 0);
    if (has_body)
        req.keep_alive = false;
    /* The answer is built before the buffer moves: req points into it. */
    handle_request(conn, &req);
    if (has_body) {
        conn->len = 0;
    } else {
        memmove(conn->buf, conn->buf + req.head_len, conn->len - req.head_len);
        conn->len -= req.head_len;
    }
}

static void conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *conn = stream->data;
    if (nread < 0) {
        conn_close(conn);
        return;
    }
    if (nread == 0)
        return;
    conn->len += (size_t)nread;
    uv_timer_again(&conn->timer);
    uv_read_stop(stream);
    conn_process(conn);
}

static void server_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    conn_t *conn = malloc(sizeof *conn);
    if (!conn)
        return;
    conn->len = 0;
    conn->closing = false;
    conn->close_after_write = false;
    conn->open_handles = 2;
    uv_tcp_init(&admin.loop, &conn->tcp);
    uv_timer_init(&admin.loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    admin.connections++;
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0 || admin.connections > MAX_CONNECTIONS) {
        /* Over the cap: a scraper stuck in a loop must not exhaust fds. */
        conn_close(conn);
        return;
    }
    uv_timer_start(&conn->timer, conn_idle, IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS);
    uv_read_start((uv_stream_t *)&conn->tcp, conn_alloc, conn_read);
}

/* ---- thread and lifetime ---- */

static void close_any(uv_handle_t *handle, void *arg)
{
    if (uv_is_closing(handle))
        return;
    if (handle->data)
        conn_close(handle->data);
    else
        uv_close(handle, NULL);
}

static void stop_requested(uv_async_t *async)
{
    uv_walk(&admin.loop, close_any, NULL);
}

static void admin_thread(void *arg)
{
    uv_run(&admin.loop, UV_RUN_DEFAULT);
}

bool sy_admin_start(const char *listen, sy_error_t *err)
{
    if (admin.running) {
        sy_error_set(err, "admin listener already running");
        return false;
    }
    struct sockaddr_storage addr;
    if (!sy_parse_listen(listen, &addr, err))
        return false;
    atomic_store(&draining, false);
    int rc = uv_loop_init(&admin.loop);
    if (rc != 0) {
        sy_error_set(err, "admin listener: %s", uv_strerror(rc));
        return false;
    }
    uv_tcp_init(&admin.loop, &admin.server);
    admin.server.data = NULL;
    rc = uv_tcp_bind(&admin.server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&admin.server, 64, server_connection);
    if (rc == 0) {
        rc = uv_async_init(&admin.loop, &admin.stop_async, stop_requested);
        admin.stop_async.data = NULL;
    }
    if (rc == 0)
        rc = uv_thread_create(&admin.thread, admin_thread, NULL);
    if (rc != 0) {
        sy_error_set(err, "--admin-listen %s: %s", listen, uv_strerror(rc));
        uv_walk(&admin.loop, close_any, NULL);
        uv_run(&admin.loop, UV_RUN_DEFAULT);
        uv_loop_close(&admin.loop);
        return false;
    }
    admin.running = true;
    sy_log(SY_LOG_INFO, "admin listening", "address", listen, NULL);
    return true;
}

void sy_admin_set_draining(void)
{
    atomic_store(&draining, true);
}

void sy_admin_stop(void)
{
    if (!admin.running)
        return;
    uv_async_send(&admin.stop_async);
    uv_thread_join(&admin.thread);
    uv_loop_close(&admin.loop);
    admin.running = false;
}
