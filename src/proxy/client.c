/*
 * client.c: the client connection state machine. It sequences the request
 * phases (parse -> host/path/route -> auth -> connect -> forward -> log);
 * each phase's decision is made elsewhere (parser, decide, auth) and this
 * file only moves bytes between them.
 *
 * The upstream side is an HTTP/1 client (upstream.h): this file hands it
 * an exchange, writes the request to it, and is called back with the
 * parsed response head, body slices, the end, or an error; the retry rule
 * is retry.h's.
 *
 * Memory per request is fixed: one receive buffer sized from the policy's
 * head limits plus room for body streaming, the request state, and the
 * upstream's receive buffer, all borrowed from the worker while the
 * request is in progress; an idle keep-alive connection holds none of them
 * (see "borrowed memory" below). Bodies stream with exactly one write in flight per
 * direction: while a write is pending, the side feeding it is not read, so
 * a fast sender and a slow receiver never make switchyard buffer more.
 * Chunked bodies are decoded in place (the decoded bytes never outgrow the
 * encoded ones) and re-framed as one chunk per read, so extensions and
 * trailers — places where parsers disagree — never cross switchyard.
 *
 * The request head stays at the start of the receive buffer until the
 * request ends: its slices are the request's fields, no copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/redact.h"
#include "http/dechunk.h"
#include "http/parser.h"
#include "http/serialize.h"
#include "net/stream.h"
#include "net/timer.h"
#include "proxy/client.h"
#include "proxy/retry.h"
#include "proxy/upstream.h"
#include "route/decide.h"
#include "route/forward.h"

/* Room kept after a client's request head for streaming its body. */
#define SY_CLIENT_BODY_ROOM 16384

typedef enum {
    SY_CLIENT_READING_HEAD = 0, /* waiting for (the rest of) a request head */
    SY_CLIENT_AUTHENTICATING,   /* waiting for a password hash (sy_auth_start) */
    SY_CLIENT_PROXYING,         /* a request is being forwarded */
    SY_CLIENT_RESPONDING,       /* writing an answer switchyard made itself */
    SY_CLIENT_LINGERING,        /* answered and closing: draining unread input */
    SY_CLIENT_CLOSING
} sy_client_state_t;

/* What one request needs, borrowed from the worker (free_requests)
 * when its first bytes arrive and given back when it ends: an idle
 * keep-alive connection holds none of it. The fields from `snap` up to
 * `head_store` are reset for every request (request_reset in client.c);
 * the arrays after it are written before they are read. */
struct sy_request {
    struct sy_request *next_free; /* in the worker's free list */
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;

    sy_snapshot_t *snap;
    sy_http_head_state_t req_parse; /* where the head parse stands between reads */
    sy_http_request_t req;
    const sy_route_t *route;
    sy_auth_pending_t *auth_pending; /* a queued password hash; abandoned on reset */
    size_t matched_len;              /* the route's matched prefix, for forwarding */
    uint64_t started_ns;
    uint64_t upstream_started_ns;
    size_t request_id_len;
    bool own_request_id;
    uint64_t bytes_in, bytes_out;
    int status;
    int upstream_status;
    const char *error; /* why switchyard answered itself */

    /* Request body, client -> upstream. */
    uint64_t req_remaining; /* SY_BODY_LENGTH */
    uint64_t req_total;
    sy_http_chunked_t req_chunked;
    bool req_body_done;
    enum { SY_UPWRITE_HEAD, SY_UPWRITE_BODY } upstream_write; /* what the in-flight write carries */
    size_t req_write_len; /* body bytes of [pos, end) the in-flight write covers */

    /* Response, upstream -> client. */
    bool resp_started; /* head written (or being written) to the client */
    sy_frame_t resp_frame;
    char *req_head; /* the head for the upstream (in head_store) */
    size_t req_head_len;
    char *resp_head; /* the head for the client (in head_store) */
    size_t resp_head_len;
    bool resp_head_pending; /* goes out with the first body bytes */
    int retries;

    /* Kept with the request state between requests (grown, never shrunk):
     * the two rewritten heads, so no head costs a malloc once warm. */
    char *head_store[2];
    size_t head_store_cap[2];

    sy_http_header_t headers[SY_HTTP_MAX_HEADERS];      /* the request's */
    sy_http_header_t resp_headers[SY_HTTP_MAX_HEADERS]; /* the upstream response's */
    sy_h1_exchange_t exchange;                          /* what the upstream connection serves */
    sy_http_head_state_t resp_parse; /* the exchange's response head parse (upstream.c resets it) */
    sy_auth_result_t auth;
    char request_id[72]; /* a kept client id is at most 64 bytes */
    char upstream_url[512];
    size_t upstream_url_len;
    char upstream_addr[64]; /* the address connected to, for the access log */
    char message[320];      /* the JSON message of an answer switchyard made */
    char chunk_line[SY_FMT_HEX_MAX + 2];
    char out_chunk_line[SY_FMT_HEX_MAX + 2];
    char answer[2048]; /* answers switchyard makes itself */
};

/* A client connection: only what an idle keep-alive connection needs. The
 * request state (rq) and the receive buffer (buf) are borrowed from the
 * worker while a request is in progress, NULL while idle. */
struct sy_client {
    sy_stream_t stream; /* the connection: TCP, or TLS over it */
    sy_timer_t timer;   /* the current timeout (lazy: net/timer.h) */
    sy_worker_t *worker;
    sy_client_t *prev, *next; /* worker's client list */
    sy_request_t *rq;         /* the request in progress, or NULL */
    sy_upstream_t *up;        /* the upstream serving it, or NULL */

    /* Receive buffer (NULL while idle): [0, head_len) is the current
     * request head (its slices point here), [pos, end) unread bytes. */
    char *buf;
    size_t cap, pos, end;

    sy_client_state_t state;
    int open_handles;
    bool https;
    bool reading;            /* uv_read_start is active */
    bool eof;                /* the client half-closed */
    bool writing;            /* a write to the client is in flight */
    bool close_after;        /* close once the current answer is written */
    bool head_clock_started; /* client_header_ms runs for the current head */
    char peer_ip[46];
};

#define SY_LINGER_MS 2000

static const sy_http_limits_t default_limits = {8192, 32768, 100, 10485760};

static void client_parse(sy_client_t *c);
static void client_close(sy_client_t *c);
static void pump_request_body(sy_client_t *c);
static void client_gave_up_mid_body(sy_client_t *c);
static void finish_request(sy_client_t *c);
static void connect_upstream(sy_client_t *c, bool fresh);
static void client_answer(sy_client_t *c, int status, const char *message,
                          const sy_header_pair_t *extra, size_t extra_count, bool close);
static void request_body_written(sy_client_t *c);
static void request_free(sy_request_t *rq);

static const sy_policy_t *client_policy(sy_client_t *c)
{
    sy_snapshot_t *s = c->rq && c->rq->snap ? c->rq->snap : c->worker->snap;
    return s ? s->policy : NULL;
}

static const sy_http_limits_t *client_limits(sy_client_t *c)
{
    const sy_policy_t *p = client_policy(c);
    return p ? &p->limits : &default_limits;
}

static uint32_t timeout_ms(sy_client_t *c, int which)
{
    const sy_policy_t *p = client_policy(c);
    sy_timeouts_t t = p ? p->timeouts : (sy_timeouts_t){10000, 75000, 3000, 30000, 50000};
    switch (which) {
    case 0:
        return t.client_header_ms;
    case 1:
        return t.client_idle_ms;
    case 2:
        return t.upstream_connect_ms;
    case 3:
        return t.upstream_response_ms;
    default:
        return t.upstream_idle_ms;
    }
}
enum { TO_HEADER = 0, TO_IDLE, TO_CONNECT, TO_RESPONSE, TO_UPSTREAM_IDLE };

/* ---- borrowed memory ------------------------------------------------------ *
 *
 * An idle keep-alive connection holds no receive buffer and no request
 * state: both come from the worker when a request's first bytes arrive and
 * go back when it ends (and the connection has no bytes left over), so
 * memory follows the requests in flight, not the connections open. */

static size_t client_buffer_size(sy_client_t *c)
{
    const sy_http_limits_t *l = client_limits(c);
    return l->max_request_line_bytes + l->max_header_bytes + SY_CLIENT_BODY_ROOM +
           (sy_stream_is_tls(&c->stream) ? 2 * SY_TLS_READ_CHUNK : 0);
}

static void buffer_put(sy_client_t *c)
{
    if (!c->buf)
        return;
    sy_bufpool_put(&c->worker->buffers, c->buf, c->cap);
    c->buf = NULL;
    c->cap = c->pos = c->end = 0;
}

static void request_clear(sy_request_t *rq)
{
    memset(&rq->snap, 0, offsetof(sy_request_t, head_store) - offsetof(sy_request_t, snap));
    memset(&rq->auth, 0, sizeof rq->auth);
    rq->upstream_url[0] = '\0';
    rq->upstream_url_len = 0;
    rq->upstream_addr[0] = '\0';
    rq->message[0] = '\0';
}

/* Request state for c (kept when it has one); false when out of memory. */
static bool request_take(sy_client_t *c)
{
    if (c->rq)
        return true;
    sy_worker_t *w = c->worker;
    sy_request_t *rq = w->free_requests;
    if (rq) {
        w->free_requests = rq->next_free;
        w->free_request_count--;
    } else {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return false;
    }
    request_clear(rq);
    c->rq = rq;
    return true;
}

/* Gives c's request state back (its snapshot reference released first by
 * request_reset). */
static void request_put(sy_client_t *c)
{
    sy_request_t *rq = c->rq;
    if (!rq)
        return;
    c->rq = NULL;
    sy_worker_t *w = c->worker;
    if (rq->snap) {
        sy_snapshot_unref(rq->snap);
        rq->snap = NULL;
    }
    if (w->free_request_count >= SY_WORKER_SPARE_REQUESTS) {
        request_free(rq);
        return;
    }
    rq->next_free = w->free_requests;
    w->free_requests = rq;
    w->free_request_count++;
}

static void request_free(sy_request_t *rq)
{
    free(rq->head_store[0]);
    free(rq->head_store[1]);
    free(rq);
}

void sy_client_free_requests(sy_worker_t *w)
{
    while (w->free_requests) {
        sy_request_t *rq = w->free_requests;
        w->free_requests = rq->next_free;
        request_free(rq);
    }
    w->free_request_count = 0;
}

/* Room for a rewritten head (0: for the upstream, 1: for the client) in
 * the request state's own store, grown when a head needs more. */
static char *request_head_room(sy_client_t *c, int which, size_t cap)
{
    sy_request_t *rq = c->rq;
    if (rq->head_store_cap[which] < cap) {
        size_t want = cap < 4096 ? 4096 : cap;
        char *p = realloc(rq->head_store[which], want);
        if (!p)
            return NULL;
        rq->head_store[which] = p;
        rq->head_store_cap[which] = want;
    }
    return rq->head_store[which];
}

/* ---- handles, reading, closing ------------------------------------------ */

static void client_on_handle_closed(uv_handle_t *h)
{
    sy_client_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    sy_worker_t *w = c->worker;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    __atomic_fetch_sub(&w->client_count, 1, __ATOMIC_RELAXED);
    sy_metrics_gauge_add(w->id, SY_GAUGE_CLIENT_CONNECTIONS, -1);
    sy_stream_free_tls(&c->stream);
    buffer_put(c);
    request_put(c);
    free(c);
    sy_worker_client_closed(w); /* below its cap again: accepting may resume */
}

/* Ciphertext always lands in the worker's TLS scratch (it is fed to
 * OpenSSL at once); plaintext in the client's buffer when it has one, else
 * in the worker's scratch, and client_adopt_scratch keeps what matters. */
static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    sy_client_t *c = h->data;
    sy_worker_t *w = c->worker;
    if (sy_stream_is_tls(&c->stream)) {
        b->base = w->tls_scratch;
        b->len = SY_TLS_READ_CHUNK;
        return;
    }
    if (!c->buf) {
        size_t cap = client_buffer_size(c);
        b->base = w->scratch;
        b->len = cap < SY_WORKER_SCRATCH ? cap : SY_WORKER_SCRATCH;
        return;
    }
    b->base = c->buf + c->end;
    b->len = c->cap - c->end;
}

/* Room a read needs in the plaintext buffer: over TLS, all that one read
 * can decrypt to (see sy_upstream_can_read). */
static size_t read_room(const sy_client_t *c)
{
    return sy_stream_read_room(&c->stream);
}

/* Takes a receive buffer from the worker for bytes that must be kept (a
 * request head and what follows it). */
static bool buffer_take(sy_client_t *c)
{
    if (c->buf)
        return true;
    size_t cap = client_buffer_size(c);
    c->buf = sy_bufpool_get(&c->worker->buffers, cap);
    if (!c->buf)
        return false;
    c->cap = cap;
    c->pos = c->end = 0;
    return true;
}

/* Bytes read into the worker's scratch (n of them) go to the start of a
 * buffer of the client's own; the caller counts them in as if read there.
 * Returns false when out of memory. */
static bool client_adopt_scratch(sy_client_t *c, size_t n)
{
    if (!buffer_take(c))
        return false;
    memcpy(c->buf, c->worker->scratch, n);
    return true;
}

/* Writes bufs to the client; done(&c->rq->write_req, status) runs when they
 * are out. One write at a time (c->writing). */
static int client_write(sy_client_t *c, const uv_buf_t *bufs, unsigned n, uv_write_cb done)
{
    c->rq->write_req.data = c;
    return sy_stream_write(&c->stream, &c->worker->completions, &c->rq->write_req, bufs, n, done);
}

static void client_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void client_read_start(sy_client_t *c)
{
    if (c->reading || c->eof || c->state == SY_CLIENT_CLOSING)
        return;
    if (c->buf && c->end + read_room(c) > c->cap)
        return;
    if (sy_stream_read_start(&c->stream, client_alloc, client_on_read) == 0)
        c->reading = true;
}

static void client_read_stop(sy_client_t *c)
{
    if (!c->reading)
        return;
    sy_stream_read_stop(&c->stream);
    c->reading = false;
}

static void on_client_timer(uv_timer_t *t);

static void client_set_timer(sy_client_t *c, uint32_t ms)
{
    sy_timer_set(&c->timer, ms);
}

static void client_stop_timer(sy_client_t *c)
{
    sy_timer_stop(&c->timer);
}

/* ---- logging and metrics ------------------------------------------------ */

/* The client's tracing and provenance headers for the access log, as
 * received: the first X-Amzn-Trace-Id, traceparent and User-Agent, and
 * every X-Forwarded-For line joined with ", " (in xff) as the backend sees
 * them, before switchyard appends the peer. */
static void log_client_headers(const sy_client_t *c, sy_access_entry_t *e, char *xff, size_t cap)
{
    size_t xff_len = 0;
    for (size_t i = 0; i < c->rq->req.header_count; i++) {
        const sy_http_header_t *h = &c->rq->req.headers[i];
        if (h->id == SY_HDR_X_FORWARDED_FOR) {
            size_t sep = xff_len ? 2 : 0;
            if (xff_len + sep >= cap)
                continue;
            memcpy(xff + xff_len, ", ", sep);
            xff_len += sep;
            size_t n = h->value.len < cap - xff_len ? h->value.len : cap - xff_len;
            memcpy(xff + xff_len, h->value.ptr, n);
            xff_len += n;
            e->forwarded_for = xff;
            e->forwarded_for_len = xff_len;
        } else if (!e->trace_id && sy_slice_eq_cstr_nocase(h->name, "x-amzn-trace-id")) {
            e->trace_id = h->value.ptr;
            e->trace_id_len = h->value.len;
        } else if (!e->traceparent && sy_slice_eq_cstr_nocase(h->name, "traceparent")) {
            e->traceparent = h->value.ptr;
            e->traceparent_len = h->value.len;
        } else if (!e->user_agent && sy_slice_eq_cstr_nocase(h->name, "user-agent")) {
            e->user_agent = h->value.ptr;
            e->user_agent_len = h->value.len;
        }
    }
}

/* The destination host label of the request's upstream metrics. */
static const char *request_destination(const sy_client_t *c)
{
    return c->rq && c->rq->route ? c->rq->route->target_host : NULL;
}

static void log_request(sy_client_t *c)
{
    uint64_t now = uv_hrtime();
    double duration = (double)(now - c->rq->started_ns) / 1e6;
    sy_metrics_request(c->worker->id, c->rq->route ? c->rq->route->stats : NULL, c->rq->status,
                       duration / 1000.0);
    if (!sy_access_log_enabled())
        return;
    bool parsed = c->rq->req.head_len > 0;
    /* The target with its query values redacted (SPEC §7): names help an
     * operator, values are where API keys travel. */
    char path[4096], xff[SY_ACCESS_FIELD_MAX];
    sy_access_entry_t e = {0};
    e.request_id = c->rq->request_id;
    e.request_id_len = c->rq->request_id_len;
    e.client_ip = c->peer_ip;
    if (parsed) {
        e.method = c->rq->req.method.ptr;
        e.method_len = c->rq->req.method.len;
        e.host = c->rq->req.host.ptr;
        e.host_len = c->rq->req.host.len;
        /* The canonical path (the decision's, not the bytes received:
         * canonicalising rewrote them in place), then the redacted query. */
        size_t n = c->rq->req.path.len < sizeof path ? c->rq->req.path.len : sizeof path - 1;
        memcpy(path, c->rq->req.path.ptr, n);
        if (c->rq->req.has_query && n + 1 < sizeof path) {
            path[n++] = '?';
            n += sy_redact_query(path + n, sizeof path - n, c->rq->req.query);
        }
        e.path = path;
        e.path_len = n;
        e.protocol = c->rq->req.minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1";
        e.protocol_len = 8;
        log_client_headers(c, &e, xff, sizeof xff);
    }
    e.tls = c->https;
    e.status = c->rq->status;
    /* Lengths measured at load or when written: nothing configured is
     * measured per request. */
    if (c->rq->route) {
        e.route = c->rq->route->path;
        e.route_len = c->rq->route->path_len;
    }
    if (c->rq->upstream_url_len) {
        e.upstream = c->rq->upstream_url;
        e.upstream_len = c->rq->upstream_url_len;
    }
    e.upstream_addr = c->rq->upstream_addr[0] ? c->rq->upstream_addr : NULL;
    e.upstream_status = c->rq->upstream_status;
    e.bytes_in = c->rq->bytes_in;
    e.bytes_out = c->rq->bytes_out;
    e.duration_ms = duration;
    e.upstream_ms =
        c->rq->upstream_started_ns ? (double)(now - c->rq->upstream_started_ns) / 1e6 : -1;
    if (c->rq->route && c->rq->route->auth) {
        e.auth = c->rq->route->auth->name;
        e.auth_len = c->rq->route->auth->name_len;
    }
    e.subject = c->rq->auth.subject;
    e.error = c->rq->error;
    sy_access_log_write(&e);
}

/* Resets everything that belongs to one request (the request state is
 * kept: a lingering close still uses it, a pipelined request reuses it). */
static void request_reset(sy_client_t *c)
{
    c->head_clock_started = false;
    if (!c->rq)
        return;
    if (c->rq->snap) {
        sy_snapshot_unref(c->rq->snap);
        c->rq->snap = NULL;
    }
    /* A hash still running must never write into this client again: it may
     * be freed (or serving another request) by the time the hash is done. */
    sy_auth_abandon(c->rq->auth_pending);
    c->rq->auth_pending = NULL;
    request_clear(c->rq);
}

static void client_close(sy_client_t *c)
{
    if (c->state == SY_CLIENT_CLOSING)
        return;
    if (c->rq && c->rq->started_ns) {
        /* The request ends here without finish_request: the client went
         * away, or the response broke after its head. Either way it gets
         * its one access-log line and metric, with the status sent. */
        if (c->rq->status == 0)
            c->rq->status = c->rq->resp_started ? c->rq->upstream_status : 499;
        c->rq->error =
            c->rq->error ? c->rq->error : "connection closed before the response completed";
        log_request(c);
    }
    c->state = SY_CLIENT_CLOSING;
    if (c->up) {
        sy_upstream_close(c->up);
        c->up = NULL;
    }
    request_reset(c);
    sy_stream_close(&c->stream, client_on_handle_closed);
    uv_close((uv_handle_t *)&c->timer.timer, client_on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sy_client_t *c = req->data;
    if (status < 0)
        client_close(c);
}

/* Answered and closing: half-close our side and read what the client still
 * sends, so the kernel does not reset the connection and destroy the answer
 * before the client has read it (the "lingering close" of nginx/Apache). */
static void client_linger(sy_client_t *c)
{
    if (c->state == SY_CLIENT_CLOSING)
        return;
    c->state = SY_CLIENT_LINGERING;
    if (c->up) {
        sy_upstream_close(c->up);
        c->up = NULL;
    }
    request_reset(c);
    if (c->eof) {
        client_close(c);
        return;
    }
    c->rq->shutdown_req.data = c; /* close_notify first over TLS */
    if (sy_stream_shutdown(&c->stream, &c->rq->shutdown_req, on_shutdown) != 0) {
        client_close(c);
        return;
    }
    /* What still comes is discarded: it lands in the worker's scratch. */
    buffer_put(c);
    client_set_timer(c, SY_LINGER_MS);
    client_read_start(c);
}

/* ---- answers switchyard makes itself ------------------------------------ */

static void generate_request_id(sy_client_t *c);

static void on_answer_written(uv_write_t *req, int status)
{
    sy_client_t *c = req->data;
    c->writing = false;
    if (c->state == SY_CLIENT_CLOSING)
        return;
    if (status < 0) {
        client_close(c);
        return;
    }
    finish_request(c);
}

/* The message of a refused request: "bad request: <reason>", built in the
 * request state without formatting (it stays there for the log). */
static const char *bad_request_message(sy_client_t *c, sy_http_reject_t reject)
{
    static const char prefix[] = "bad request: ";
    const char *name = sy_http_reject_name(reject);
    size_t n = sizeof prefix - 1, len = strnlen(name, sizeof c->rq->message - n - 1);
    memcpy(c->rq->message, prefix, n);
    memcpy(c->rq->message + n, name, len);
    c->rq->message[n + len] = '\0';
    return c->rq->message;
}

/* An answer switchyard makes itself: status, a JSON message (a literal, or
 * text kept in the request state: the access log names it), the extra
 * header fields and the request's X-Request-Id. */
static void client_answer(sy_client_t *c, int status, const char *message,
                          const sy_header_pair_t *extra, size_t extra_count, bool close)
{
    if (!request_take(c)) {
        client_close(c);
        return;
    }
    if (c->up) {
        sy_upstream_close(c->up);
        c->up = NULL;
    }
    /* A body we have not read would be taken for the next request. */
    if (!c->rq->req_body_done || (c->rq->req.head_len && !c->rq->req.keep_alive))
        close = true;
    if (c->worker->draining)
        close = true;
    c->rq->status = status;
    c->rq->error = message;
    c->close_after = close;
    c->state = SY_CLIENT_RESPONDING;
    client_read_stop(c);
    bool head_only = c->rq->req.head_len && sy_slice_eq(c->rq->req.method, SY_SLICE_LIT("HEAD"));
    /* Every answer names its request, so a client's report can be found
     * in the logs; one rejected before its head was read gets a new id. */
    if (c->rq->request_id_len == 0)
        generate_request_id(c);
    sy_header_pair_t lines[4];
    size_t count = 0;
    for (size_t i = 0; i < extra_count && count < 3; i++)
        lines[count++] = extra[i];
    lines[count++] = (sy_header_pair_t){SY_SLICE_LIT("X-Request-Id"),
                                        sy_slice(c->rq->request_id, c->rq->request_id_len)};
    size_t n = sy_http_write_answer(c->rq->answer, sizeof c->rq->answer, status,
                                    sy_slice_cstr(message), close, lines, count, head_only);
    if (n == 0) {
        client_close(c);
        return;
    }
    c->rq->bytes_out += n;
    c->rq->resp_started = true;
    uv_buf_t b = uv_buf_init(c->rq->answer, (unsigned)n);
    /* A client that stops reading stalls this write: nothing else would
     * ever end the connection. */
    client_set_timer(c, timeout_ms(c, TO_IDLE));
    c->writing = true;
    if (client_write(c, &b, 1, on_answer_written) != 0) {
        c->writing = false;
        client_close(c);
    }
}

/* ---- timers -------------------------------------------------------------- */

static void on_client_timer(uv_timer_t *t)
{
    sy_client_t *c = t->data;
    switch (c->state) {
    case SY_CLIENT_READING_HEAD:
        if (c->end > c->pos) {
            if (!request_take(c)) {
                client_close(c);
                break;
            }
            c->rq->req_body_done = true;
            c->rq->started_ns = uv_hrtime();
            client_answer(c, 408, "request header timeout", NULL, 0, true);
        } else {
            client_close(c); /* idle keep-alive connection */
        }
        break;
    case SY_CLIENT_PROXYING:
        if (!c->rq->resp_started)
            client_answer(c, 408, "request body timeout", NULL, 0, true);
        else
            client_close(c);
        break;
    default:
        client_close(c);
        break;
    }
}

/* ---- the request phases --------------------------------------------------- */

static void generate_request_id(sy_client_t *c)
{
    /* prefix, worker number, "-", sequence in hex: at most 11 + 20 + 1 +
     * 16 bytes, well inside request_id. */
    sy_worker_t *w = c->worker;
    char *out = c->rq->request_id;
    size_t n = strnlen(w->id_prefix, sizeof w->id_prefix - 1);
    memcpy(out, w->id_prefix, n);
    n += sy_fmt_u64(out + n, (uint64_t)w->id);
    out[n++] = '-';
    n += sy_fmt_hex(out + n, ++w->request_seq);
    out[n] = '\0';
    c->rq->request_id_len = n;
    c->rq->own_request_id = true;
}

static void make_request_id(sy_client_t *c)
{
    for (size_t i = 0; i < c->rq->req.header_count; i++) {
        const sy_http_header_t *h = &c->rq->req.headers[i];
        if (h->id == SY_HDR_X_REQUEST_ID && sy_http_request_id_well_formed(h->value)) {
            memcpy(c->rq->request_id, h->value.ptr, h->value.len);
            c->rq->request_id[h->value.len] = '\0';
            c->rq->request_id_len = h->value.len;
            c->rq->own_request_id = false;
            return;
        }
    }
    generate_request_id(c);
}

static void start_forwarding(sy_client_t *c, size_t matched_len)
{
    const sy_policy_t *policy = c->rq->snap->policy;

    /* Everything route-dependent comes from the plan, the same function
     * /explain calls. */
    sy_forward_plan_t plan;
    if (!sy_forward_plan(c->rq->snap, c->rq->route, matched_len, c->rq->req.path,
                         c->rq->req.has_query, c->rq->req.query, &c->rq->auth, &plan)) {
        client_answer(c, 502, "route has no forward plan", NULL, 0, true);
        return;
    }
    /* For the log: the query goes upstream untouched, its values are not
     * written down. */
    c->rq->upstream_url_len =
        sy_forward_url(&plan, c->rq->upstream_url, sizeof c->rq->upstream_url, true);

    sy_forward_request_t fw = {
        .client_ip = sy_slice_cstr(c->peer_ip),
        .proto = c->https ? SY_SLICE_LIT("https") : SY_SLICE_LIT("http"),
        .request_id = c->rq->own_request_id ? sy_slice(c->rq->request_id, c->rq->request_id_len)
                                            : SY_SLICE_LIT(""),
    };
    sy_forward_plan_request(&plan, &fw);
    /* The head grows by the base, the Host, the added headers and the
     * X-Forwarded-* lines at most; the path only shrinks (strip_prefix). */
    size_t cap = c->rq->req.head_len + plan.base.len + plan.host_header.len + c->rq->req.path.len +
                 c->rq->req.query.len + 1024;
    for (size_t i = 0; i < plan.add_count; i++)
        cap += plan.add[i].name.len + plan.add[i].value.len + 4;
    c->rq->req_head = request_head_room(c, 0, cap);
    if (!c->rq->req_head) {
        client_answer(c, 500, "out of memory", NULL, 0, true);
        return;
    }
    c->rq->req_head_len = sy_http_write_request_head(c->rq->req_head, cap, &c->rq->req, &fw);
    if (c->rq->req_head_len == 0) {
        client_answer(c, 431, "request header fields too large", NULL, 0, true);
        return;
    }

    switch (c->rq->req.body_kind) {
    case SY_BODY_LENGTH:
        c->rq->req_remaining = c->rq->req.content_length;
        c->rq->req_body_done = c->rq->req_remaining == 0;
        break;
    case SY_BODY_CHUNKED:
        sy_http_chunked_init(&c->rq->req_chunked, policy->limits.max_header_bytes);
        c->rq->req_body_done = false;
        break;
    default:
        c->rq->req_body_done = true;
        break;
    }
    /* Expect: 100-continue is answered here, not forwarded: the route and
     * auth phases have passed, so the body is wanted. A tiny try-write; if
     * it can't go out at once the client sends the body after its own
     * short wait anyway. */
    if (c->rq->req.expect_continue && !c->rq->req_body_done && c->end == c->pos) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
        sy_stream_try_write(&c->stream, &b);
    }

    c->state = SY_CLIENT_PROXYING;
    c->rq->upstream_started_ns = uv_hrtime();
    connect_upstream(c, false);
}

/* The auth phase's decision, now or when a password hash finishes (then
 * the client is still open: closing it abandons the hash). */
static void on_auth_decided(void *arg)
{
    sy_client_t *c = arg;
    c->rq->auth_pending = NULL;
    if (c->rq->auth.status != 0) {
        sy_header_pair_t extra[2];
        size_t n = 0;
        char seconds[SY_FMT_U64_MAX];
        if (c->rq->auth.www_authenticate_len)
            extra[n++] = (sy_header_pair_t){
                SY_SLICE_LIT("WWW-Authenticate"),
                sy_slice(c->rq->auth.www_authenticate, c->rq->auth.www_authenticate_len)};
        if (c->rq->auth.retry_after)
            extra[n++] =
                (sy_header_pair_t){SY_SLICE_LIT("Retry-After"),
                                   sy_slice(seconds, sy_fmt_u64(seconds, c->rq->auth.retry_after))};
        client_answer(c, c->rq->auth.status, c->rq->auth.message, extra, n, false);
        return;
    }
    start_forwarding(c, c->rq->matched_len);
}

static void handle_request(sy_client_t *c)
{
    sy_worker_t *w = c->worker;
    sy_worker_refresh_snapshot(w);
    c->rq->started_ns = uv_hrtime();
    c->rq->bytes_in = c->rq->req.head_len;
    make_request_id(c);
    c->rq->req_body_done =
        c->rq->req.body_kind == SY_BODY_NONE ||
        (c->rq->req.body_kind == SY_BODY_LENGTH && c->rq->req.content_length == 0);
    if (!w->snap) {
        static const sy_header_pair_t retry = {SY_SLICE_LIT("Retry-After"), SY_SLICE_LIT("5")};
        client_answer(c, 503, "configuration not loaded yet", &retry, 1, false);
        return;
    }
    c->rq->snap = w->snap;
    sy_snapshot_ref(c->rq->snap);

    /* The path is canonicalised in place in c->buf (it only shrinks), so
     * the log and the upstream request carry the path that was decided on. */
    sy_decision_t d;
    size_t path_len = c->rq->req.path.len;
    sy_decide(c->rq->snap, c->rq->req.host, (char *)c->rq->req.path.ptr, &path_len,
              c->rq->req.method, &d);
    c->rq->req.path.len = path_len;
    c->rq->route = d.route;
    if (d.status != 0) {
        sy_header_pair_t allow = {SY_SLICE_LIT("Allow"), sy_slice(d.allow, d.allow_len)};
        bool has_allow = d.status == 405 && d.allow;
        /* d.message may live in d's own buffer: copy it to the client. */
        size_t len =
            d.message_len < sizeof c->rq->message ? d.message_len : sizeof c->rq->message - 1;
        memcpy(c->rq->message, d.message, len);
        c->rq->message[len] = '\0';
        client_answer(c, d.status, c->rq->message, &allow, has_allow, false);
        return;
    }

    /* The auth phase may wait for a password hash on the threadpool. */
    c->rq->matched_len = d.matched_len;
    c->state = SY_CLIENT_AUTHENTICATING;
    sy_auth_context_t ctx = {&w->loop, w->id, c->peer_ip};
    if (sy_auth_start(c->rq->route->auth, &c->rq->req, &ctx, &c->rq->auth, on_auth_decided, c,
                      &c->rq->auth_pending))
        on_auth_decided(c);
}

/* ---- reading requests --------------------------------------------------- */

static void client_parse(sy_client_t *c)
{
    if (c->state != SY_CLIENT_READING_HEAD)
        return;
    bool moved = c->pos > 0;
    if (moved) {
        memmove(c->buf, c->buf + c->pos, c->end - c->pos);
        c->end -= c->pos;
        c->pos = 0;
    }
    if (c->end == 0) {
        client_read_start(c);
        return;
    }
    if (!request_take(c)) {
        client_close(c);
        return;
    }
    /* Called on every read: the parse state resumes where the last read
     * left off, so the head costs one pass however it is split. Moved
     * bytes are a new head (request_reset already cleared the state). */
    if (moved)
        sy_http_head_state_reset(&c->rq->req_parse);
    sy_worker_refresh_snapshot(c->worker);
    sy_http_reject_t reject = SY_REJECT_NONE;
    sy_http_status_t st =
        sy_http_request_parse(&c->rq->req_parse, c->buf, c->end, client_limits(c), c->rq->headers,
                              SY_HTTP_MAX_HEADERS, &c->rq->req, &reject);
    if (st == SY_HTTP_INCOMPLETE) {
        if (c->eof) {
            /* The client half-closed inside a head: it can never end. */
            client_close(c);
            return;
        }
        if (c->end + read_room(c) > c->cap) {
            st = SY_HTTP_ERROR;
            reject = SY_REJECT_HEADERS_TOO_LARGE;
        } else {
            if (!c->head_clock_started) {
                /* First bytes of a new request: the header clock starts. */
                c->head_clock_started = true;
                client_set_timer(c, timeout_ms(c, TO_HEADER));
            }
            client_read_start(c);
            return;
        }
    }
    if (st == SY_HTTP_ERROR) {
        sy_metrics_rejected(c->worker->id, (int)reject);
        memset(&c->rq->req, 0, sizeof c->rq->req);
        c->rq->started_ns = uv_hrtime();
        c->rq->req_body_done = true;
        c->rq->request_id_len = 0;
        int status = sy_http_reject_status(reject);
        const char *message;
        switch (status) {
        case 413:
            message = "request body too large";
            break;
        case 414:
            message = "request line too long";
            break;
        case 417:
            message = "expectation not supported";
            break;
        case 431:
            message = "request header fields too large";
            break;
        default:
            message = bad_request_message(c, reject);
        }
        client_answer(c, status, message, NULL, 0, true);
        c->rq->error = sy_http_reject_name(reject);
        return;
    }
    client_stop_timer(c);
    /* Reading goes on: a client waiting for its answer sends nothing, and
     * stopping and restarting the read for every request would cost two
     * epoll_ctl calls. What does arrive (a body, a pipelined request)
     * stops reading once it is in the buffer. */
    c->pos = c->rq->req.head_len;
    handle_request(c);
}

/* Turns ciphertext just read into plaintext at buf + end. Returns the
 * plaintext length, 0 when there is none yet, or UV_EOF when the session
 * ended or broke. */
static ssize_t client_decrypt(sy_client_t *c, const uv_buf_t *b, ssize_t nread)
{
    if (nread < 0)
        return nread;
    if (!sy_stream_handshake_done(&c->stream)) {
        int rc = sy_stream_handshake(&c->stream, b->base, (size_t)nread);
        if (rc < 0) {
            char detail[256];
            const char *reason = sy_tls_failure(c->stream.tls, detail, sizeof detail);
            sy_log(SY_LOG_DEBUG, "client TLS handshake failed", "client_ip", c->peer_ip, "reason",
                   reason, "detail", detail, NULL);
            return UV_EOF;
        }
        if (rc == 0)
            return 0;
        nread = 0; /* fed already: read what the handshake left */
    }
    /* Without a buffer of its own, plaintext lands in the worker's scratch
     * like a plain read (client_on_read keeps it). */
    char *out = c->worker->scratch;
    size_t room = client_buffer_size(c);
    if (c->buf) {
        out = c->buf + c->end;
        room = c->cap - c->end;
    } else if (room > SY_WORKER_SCRATCH) {
        room = SY_WORKER_SCRATCH;
    }
    return sy_stream_decode(&c->stream, nread, b, out, room);
}

static void client_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    sy_client_t *c = s->data;
    if (sy_stream_is_tls(&c->stream) && c->state != SY_CLIENT_CLOSING)
        nread = client_decrypt(c, b, nread);
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        client_read_stop(c); /* buffer full: read again once it drains */
        return;
    }
    if (nread < 0) {
        c->eof = true;
        client_read_stop(c);
        switch (c->state) {
        case SY_CLIENT_PROXYING:
            /* A FIN is a half-close, not an abort (RFC 9112 §9.6): what
             * was sent in full is still answered, pipelined requests
             * included (finish_request). Whether the body is complete is
             * for pump_request_body to tell once it has used what is
             * buffered. A reset or a read error is an abort. */
            if (nread != UV_EOF) {
                c->rq->error = c->rq->error ? c->rq->error : "client connection reset";
                client_close(c);
            } else if (!c->rq->req_body_done && c->rq->req.body_kind == SY_BODY_LENGTH &&
                       c->end - c->pos - c->rq->req_write_len < c->rq->req_remaining) {
                client_gave_up_mid_body(c); /* short of its Content-Length for good */
            } else if (!c->rq->req_body_done) {
                pump_request_body(c);
            }
            break;
        case SY_CLIENT_RESPONDING:
            break; /* the answer is still being written */
        case SY_CLIENT_AUTHENTICATING:
            /* A half-close after a complete request still wants its answer;
             * a reset or a cut-off body ends it (abandoning the hash). */
            if (nread != UV_EOF || !c->rq->req_body_done)
                client_close(c);
            break;
        default:
            client_close(c);
            break;
        }
        return;
    }
    if (!c->buf) {
        /* Read into the worker's scratch: an idle connection's first bytes
         * of a request. Only then does it take a buffer of its own. */
        if (c->state == SY_CLIENT_LINGERING)
            return; /* discarded */
        if (!client_adopt_scratch(c, (size_t)nread)) {
            client_close(c);
            return;
        }
    }
    switch (c->state) {
    case SY_CLIENT_READING_HEAD:
        c->end += (size_t)nread;
        client_parse(c); /* examines only the new bytes (rq->req_parse) */
        break;
    case SY_CLIENT_PROXYING:
        c->end += (size_t)nread;
        c->rq->bytes_in += (uint64_t)nread;
        client_read_stop(c);
        /* The timer guards the wait for body bytes; while a write to the
         * client is out it guards that write, which bytes from the client
         * say nothing about. */
        if (!c->writing)
            client_stop_timer(c);
        pump_request_body(c);
        break;
    case SY_CLIENT_LINGERING:
        c->pos = c->end = 0; /* discard */
        break;
    default:
        c->end += (size_t)nread;
        client_read_stop(c);
        break;
    }
}

/* ---- request body: client -> upstream ------------------------------------ */

static void request_body_failed(sy_client_t *c, int status, const char *why)
{
    if (!c->rq->resp_started)
        client_answer(c, status, why, NULL, 0, true);
    else
        client_close(c);
}

/* The client half-closed before its body was complete: nothing more can
 * come, so the request is abandoned (logged 499, or the upstream's status
 * when an early answer has begun). */
static void client_gave_up_mid_body(sy_client_t *c)
{
    c->rq->error = c->rq->error ? c->rq->error : "client closed the connection mid-body";
    client_close(c);
}

/* Forwards the body bytes in [pos, end): a Content-Length body as is, a
 * chunked one decoded in place and re-framed as one chunk. */
static void pump_request_body(sy_client_t *c)
{
    sy_upstream_t *up = c->up;
    /* Not before the upstream is connected and the head is out: body bytes
     * that arrive earlier wait in the buffer. */
    if (!up || !sy_upstream_can_send(up) || c->rq->req_body_done || c->state != SY_CLIENT_PROXYING)
        return;
    uint64_t max_body = c->rq->snap->policy->limits.max_body_bytes;
    size_t avail = c->end - c->pos;
    uv_buf_t bufs[4];
    unsigned n = 0;
    if (c->rq->req.body_kind == SY_BODY_LENGTH) {
        size_t take = avail < c->rq->req_remaining ? avail : (size_t)c->rq->req_remaining;
        if (take == 0) {
            if (c->eof) {
                client_gave_up_mid_body(c);
                return;
            }
            /* Waiting on the client, not the upstream. */
            sy_upstream_stop_timer(up);
            client_set_timer(c, timeout_ms(c, TO_IDLE));
            client_read_start(c);
            return;
        }
        bufs[n++] = uv_buf_init(c->buf + c->pos, (unsigned)take);
        c->rq->req_remaining -= take;
        c->rq->req_total += take;
        if (c->rq->req_remaining == 0)
            c->rq->req_body_done = true;
        c->rq->req_write_len = take;
    } else {
        bool done = false;
        sy_http_reject_t reject = SY_REJECT_NONE;
        ssize_t decoded =
            sy_http_dechunk_in_place(&c->rq->req_chunked, c->buf, c->pos, &c->end, &done, &reject);
        if (decoded < 0) {
            sy_metrics_rejected(c->worker->id, (int)reject);
            request_body_failed(c, 400, bad_request_message(c, reject));
            return;
        }
        size_t data_len = (size_t)decoded;
        c->rq->req_total += data_len;
        if (c->rq->req_total > max_body) {
            request_body_failed(c, 413, "request body too large");
            return;
        }
        if (data_len > 0) {
            size_t len = sy_fmt_hex(c->rq->chunk_line, data_len);
            c->rq->chunk_line[len++] = '\r';
            c->rq->chunk_line[len++] = '\n';
            bufs[n++] = uv_buf_init(c->rq->chunk_line, (unsigned)len);
            bufs[n++] = uv_buf_init(c->buf + c->pos, (unsigned)data_len);
            bufs[n++] = uv_buf_init("\r\n", 2);
        }
        if (done) {
            bufs[n++] = uv_buf_init("0\r\n\r\n", 5);
            c->rq->req_body_done = true;
        }
        c->rq->req_write_len = data_len;
        if (n == 0) {
            if (c->eof) {
                client_gave_up_mid_body(c);
                return;
            }
            sy_upstream_stop_timer(up);
            client_set_timer(c, timeout_ms(c, TO_IDLE));
            client_read_start(c);
            return;
        }
    }
    c->rq->upstream_write = SY_UPWRITE_BODY;
    if (sy_upstream_write(up, bufs, n) != 0) {
        request_body_failed(c, 502, "upstream connection failed");
        return;
    }
    sy_upstream_set_timer(up, timeout_ms(c, TO_RESPONSE));
}

static void request_body_written(sy_client_t *c)
{
    size_t drop = c->rq->req_write_len;
    c->rq->req_write_len = 0;
    memmove(c->buf + c->pos, c->buf + c->pos + drop, c->end - c->pos - drop);
    c->end -= drop;
    if (!c->rq->req_body_done)
        pump_request_body(c);
}

/* ---- upstream events ------------------------------------------------------ */

/* The retry rule (retry.h) on what happened to this request: true when it
 * goes out again on a new connection. */
static bool should_retry(const sy_client_t *c, sy_retry_facts_t *f)
{
    f->has_body = c->rq->req.body_kind != SY_BODY_NONE;
    f->idempotent = sy_retry_idempotent(c->rq->req.method);
    f->response_started = c->rq->resp_started;
    f->retries = c->rq->retries;
    return sy_retry_decide(f) == SY_RETRY_NEW_CONNECTION;
}

static void retry_fresh(sy_client_t *c)
{
    if (c->up) {
        sy_upstream_close(c->up);
        c->up = NULL;
    }
    c->rq->retries++;
    connect_upstream(c, true);
}

/* The exchange failed before the response's head went out: the client is
 * answered (or, once part of an answer is out, the connection closed). */
static void upstream_failed(sy_client_t *c, int status, const char *why)
{
    if (c->state != SY_CLIENT_PROXYING)
        return;
    if (c->up) {
        sy_upstream_close(c->up);
        c->up = NULL;
    }
    if (c->rq->resp_started) {
        c->rq->error = why;
        client_close(c);
        return;
    }
    client_answer(c, status, why, NULL, 0, !c->rq->req_body_done);
}

/* The upstream response broke after its head was parsed (a malformed
 * chunk, EOF or a reset before the announced end). While that head has
 * not been handed to a write, the client still gets a clean 502; after,
 * closing without the framing's end is the only way to tell it the body
 * is incomplete (RFC 9112 §8), and client_close logs the status sent with
 * `why`. */
static void response_broke(sy_client_t *c, const char *why)
{
    sy_log(SY_LOG_WARN, "upstream response broke", "request_id", c->rq->request_id, "upstream",
           c->rq->upstream_url, "reason", why, NULL);
    if (c->rq->resp_head_pending) {
        c->rq->resp_head_pending = false;
        c->rq->resp_started = false;
        c->rq->status = 0;
        /* Closed after, as when the body broke later: the client sees
         * the same end of the connection either way. */
        client_answer(c, 502, why, NULL, 0, true);
        return;
    }
    c->rq->error = why;
    client_close(c);
}

static void on_upstream_error(void *arg, const sy_h1_error_t *e)
{
    sy_client_t *c = arg;
    c->up = NULL; /* closed already */
    if (c->state != SY_CLIENT_PROXYING)
        return;
    sy_retry_facts_t f = {
        .fault = e->fault, .reused = e->reused, .response_bytes = e->response_bytes};
    if (should_retry(c, &f)) {
        retry_fresh(c);
        return;
    }
    if (e->count)
        sy_metrics_destination_error(c->worker->id, request_destination(c), e->kind);
    if (e->broke)
        response_broke(c, e->why);
    else
        upstream_failed(c, e->status, e->why);
}

/* Writing the request failed: a dead pooled connection may be retried. */
static void upstream_write_failed(sy_client_t *c, bool count)
{
    sy_retry_facts_t f = {.fault = SY_FAULT_WRITE};
    sy_upstream_retry_facts(c->up, &f);
    if (should_retry(c, &f)) {
        retry_fresh(c);
        return;
    }
    if (count)
        sy_metrics_destination_error(c->worker->id, request_destination(c),
                                     SY_UPSTREAM_ERR_CONNECT);
    upstream_failed(c, 502, "upstream connection failed");
}

static void on_upstream_connected(void *arg, const char *peer)
{
    sy_client_t *c = arg;
    memcpy(c->rq->upstream_addr, peer, sizeof c->rq->upstream_addr);
    c->rq->upstream_write = SY_UPWRITE_HEAD;
    uv_buf_t b = uv_buf_init(c->rq->req_head, (unsigned)c->rq->req_head_len);
    if (sy_upstream_write(c->up, &b, 1) != 0)
        upstream_write_failed(c, false);
}

static void on_upstream_written(void *arg, int status)
{
    sy_client_t *c = arg;
    if (c->state != SY_CLIENT_PROXYING)
        return;
    if (status < 0) {
        upstream_write_failed(c, true);
        return;
    }
    if (c->rq->upstream_write == SY_UPWRITE_HEAD) {
        pump_request_body(c);
        return;
    }
    request_body_written(c);
}

/* ---- response: upstream -> client ---------------------------------------- */

static void on_response_written(uv_write_t *req, int status);

/* The upstream's head, rewritten for the client; it goes out with the
 * first body slice in one write. */
static void on_upstream_head(void *arg, const sy_http_response_t *resp)
{
    sy_client_t *c = arg;
    c->rq->upstream_status = resp->status;
    bool http10 = c->rq->req.minor_version == 0;
    sy_forward_response_t fw = {.client_minor = c->rq->req.minor_version,
                                .request_id = sy_slice(c->rq->request_id, c->rq->request_id_len)};
    switch (resp->body_kind) {
    case SY_BODY_NONE:
        fw.frame = SY_FRAME_NONE;
        break;
    case SY_BODY_LENGTH:
        fw.frame = SY_FRAME_LENGTH;
        fw.length = resp->content_length;
        break;
    case SY_BODY_CHUNKED:
    case SY_BODY_UNTIL_CLOSE:
        fw.frame = http10 ? SY_FRAME_CLOSE : SY_FRAME_CHUNKED;
        break;
    }
    c->rq->resp_frame = fw.frame;
    fw.keep_alive = c->rq->req.keep_alive && !c->worker->draining && fw.frame != SY_FRAME_CLOSE;
    if (!fw.keep_alive)
        c->close_after = true;
    size_t cap = resp->head_len + 512;
    c->rq->resp_head = request_head_room(c, 1, cap);
    size_t n = c->rq->resp_head ? sy_http_write_response_head(c->rq->resp_head, cap, resp, &fw) : 0;
    if (n == 0) {
        upstream_failed(c, 502, "malformed upstream response");
        return;
    }
    if (c->rq->upstream_started_ns)
        sy_metrics_upstream_duration(c->worker->id, request_destination(c),
                                     (double)(uv_hrtime() - c->rq->upstream_started_ns) / 1e9);
    c->rq->resp_started = true;
    c->rq->status = resp->status;
    c->rq->resp_head_len = n;
    c->rq->resp_head_pending = true;
}

/* A body slice (and the pending head, and the client-side framing) goes
 * out in one write; true while that write is out. */
static bool on_upstream_body(void *arg, char *data, size_t len, bool last)
{
    sy_client_t *c = arg;
    uv_buf_t bufs[6];
    unsigned n = 0;
    /* The head goes out with the first body bytes, and only once those
     * decoded cleanly: a malformed first chunk that came with the head is
     * still a 502 (response_broke). */
    if (c->rq->resp_head_pending) {
        bufs[n++] = uv_buf_init(c->rq->resp_head, (unsigned)c->rq->resp_head_len);
        c->rq->resp_head_pending = false;
        c->rq->bytes_out += c->rq->resp_head_len;
    }
    if (len > 0) {
        if (c->rq->resp_frame == SY_FRAME_CHUNKED) {
            size_t l = sy_fmt_hex(c->rq->out_chunk_line, len);
            c->rq->out_chunk_line[l++] = '\r';
            c->rq->out_chunk_line[l++] = '\n';
            bufs[n++] = uv_buf_init(c->rq->out_chunk_line, (unsigned)l);
            bufs[n++] = uv_buf_init(data, (unsigned)len);
            bufs[n++] = uv_buf_init("\r\n", 2);
            c->rq->bytes_out += (uint64_t)l + 2;
        } else {
            bufs[n++] = uv_buf_init(data, (unsigned)len);
        }
        c->rq->bytes_out += len;
    }
    if (last && c->rq->resp_frame == SY_FRAME_CHUNKED) {
        bufs[n++] = uv_buf_init("0\r\n\r\n", 5);
        c->rq->bytes_out += 5;
    }
    if (n == 0)
        return false;
    c->writing = true;
    if (client_write(c, bufs, n, on_response_written) != 0) {
        c->writing = false;
        client_close(c);
        return false;
    }
    /* After the last slice only the client can stall this write, and
     * nothing else would ever end the connection then. */
    if (last)
        client_set_timer(c, timeout_ms(c, TO_IDLE));
    return true;
}

static void on_upstream_done(void *arg)
{
    finish_request(arg);
}

static void on_response_written(uv_write_t *req, int status)
{
    sy_client_t *c = req->data;
    c->writing = false;
    if (c->state != SY_CLIENT_PROXYING)
        return;
    if (status < 0) {
        c->rq->error = "client connection lost";
        client_close(c);
        return;
    }
    if (!c->up) {
        client_close(c);
        return;
    }
    sy_upstream_body_written(c->up);
}

static const sy_h1_callbacks_t upstream_callbacks = {
    .connected = on_upstream_connected,
    .written = on_upstream_written,
    .head = on_upstream_head,
    .body = on_upstream_body,
    .done = on_upstream_done,
    .error = on_upstream_error,
};

/* Connects for the current route as its forward plan says: target, TLS
 * settings and pool key were all computed when the snapshot was built. */
static void connect_upstream(sy_client_t *c, bool fresh)
{
    const sy_route_forward_t *f = sy_snapshot_route_forward(c->rq->snap, c->rq->route);
    if (!f) {
        upstream_failed(c, 502, "route has no forward plan");
        return;
    }
    sy_h1_exchange_t *ex = &c->rq->exchange;
    *ex = (sy_h1_exchange_t){
        .cb = &upstream_callbacks,
        .arg = c,
        .slot = &c->up,
        .request_id = c->rq->request_id,
        .destination = request_destination(c),
        .url = c->rq->upstream_url,
        .head_request = sy_slice_eq(c->rq->req.method, SY_SLICE_LIT("HEAD")),
        .response_timeout_ms = timeout_ms(c, TO_RESPONSE),
        .headers = c->rq->resp_headers,
        .header_cap = SY_HTTP_MAX_HEADERS,
        .head_state = &c->rq->resp_parse,
    };
    sy_upstream_acquire(c->worker, c->rq->snap, f->target, timeout_ms(c, TO_CONNECT), fresh, ex);
}

/* ---- end of a request ------------------------------------------------------ */

static void finish_request(sy_client_t *c)
{
    log_request(c);
    /* After the client's FIN, requests already buffered are still
     * answered (a pipelined batch sent before end()); with none, done. */
    bool keep = !c->close_after && c->rq->req_body_done && !c->worker->draining &&
                (!c->eof || c->end > c->pos + c->rq->req_write_len);
    if (c->up) {
        sy_upstream_t *up = c->up;
        /* An upstream may answer before it has read the whole body, so the
         * answer can be complete while the write carrying the body's last
         * bytes has not called back: that connection is not reusable, and
         * closing it cancels the write, whose bytes are still at c->pos
         * and must go now, or the next parse takes the body's tail for a
         * request. */
        bool write_pending = sy_upstream_writing(up);
        c->up = NULL;
        sy_upstream_release(up, c->rq->req_body_done, timeout_ms(c, TO_UPSTREAM_IDLE));
        if (write_pending && c->rq->upstream_write == SY_UPWRITE_BODY) {
            memmove(c->buf + c->pos, c->buf + c->pos + c->rq->req_write_len,
                    c->end - c->pos - c->rq->req_write_len);
            c->end -= c->rq->req_write_len;
        }
        c->rq->req_write_len = 0;
    }
    if (!keep) {
        /* Never a plain close after an answer, proxied or not: a close
         * with input unread (a body the upstream answered before reading,
         * a request sent after "close") resets the connection, and the
         * reset destroys the answer before the client has read it (RFC
         * 9112 §9.6). client_linger closes at once after a client EOF. */
        client_linger(c);
        return;
    }
    uint32_t idle = timeout_ms(c, TO_IDLE);
    request_reset(c);
    c->state = SY_CLIENT_READING_HEAD;
    c->close_after = false;
    client_set_timer(c, idle);
    if (c->end > c->pos) {
        client_parse(c); /* a pipelined request is already here */
        return;
    }
    /* Idle: the request state and the buffer go back to the worker, and
     * OpenSSL's buffers are released; the next request's first bytes are
     * read into the worker's scratch. */
    request_put(c);
    buffer_put(c);
    sy_stream_shed(&c->stream);
    client_read_start(c);
}

/* ---- accepting and draining ----------------------------------------------- */

void sy_client_accept(sy_worker_t *w, int fd, bool tls)
{
    sy_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->worker = w;
    uv_tcp_init(&w->loop, &c->stream.tcp);
    c->stream.tcp.data = c;
    if (uv_tcp_open(&c->stream.tcp, fd) != 0) {
        close(fd);
        c->open_handles = 1;
        c->state = SY_CLIENT_CLOSING;
        c->next = w->clients;
        if (w->clients)
            w->clients->prev = c;
        w->clients = c;
        __atomic_fetch_add(&w->client_count, 1, __ATOMIC_RELAXED);
        sy_metrics_gauge_add(w->id, SY_GAUGE_CLIENT_CONNECTIONS, 1);
        sy_stream_close(&c->stream, client_on_handle_closed);
        return;
    }
    sy_timer_init(&w->loop, &c->timer, on_client_timer);
    c->timer.timer.data = c;
    c->open_handles = 2;
    sy_worker_refresh_snapshot(w); /* this connection's timeouts come from it */
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    __atomic_fetch_add(&w->client_count, 1, __ATOMIC_RELAXED);
    sy_metrics_gauge_add(w->id, SY_GAUGE_CLIENT_CONNECTIONS, 1);
    uv_tcp_nodelay(&c->stream.tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->stream.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer_ip, sizeof c->peer_ip);
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_ip, sizeof c->peer_ip);
    }
    if (tls) {
        if (!sy_stream_tls_server(&c->stream)) {
            client_close(c);
            return;
        }
        c->https = true;
    }
    c->state = SY_CLIENT_READING_HEAD;
    c->head_clock_started = true;
    client_set_timer(c, timeout_ms(c, TO_HEADER));
    client_read_start(c);
}

void sy_client_drain_idle(sy_worker_t *w)
{
    sy_client_t *next;
    for (sy_client_t *c = w->clients; c; c = next) {
        next = c->next;
        if (c->state == SY_CLIENT_READING_HEAD && c->end == c->pos)
            client_close(c);
    }
}

void sy_client_close_all(sy_worker_t *w)
{
    sy_client_t *next;
    for (sy_client_t *c = w->clients; c; c = next) {
        next = c->next;
        client_close(c);
    }
}
