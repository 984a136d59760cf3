/*
 * upstream.c: the HTTP/1 client of the data plane: connections to
 * destinations, the per-worker keep-alive pool, and the response side of
 * each exchange (see upstream.h for the callbacks).
 *
 * The response head is parsed in one place (h1_parse_head), interim 1xx
 * responses are skipped, and the body is handed to the caller one slice
 * at a time, decoded from its framing in place in the connection's receive
 * buffer; reading stops while a slice is out. The caller never sees the
 * buffer, the framing or the parser.
 *
 * A new connection asks the resolver (net/resolver.h) for its host: a
 * cached answer is used at once, otherwise the worker's own c-ares channel
 * looks it up without blocking the loop. EVERY address of the answer is
 * checked against the address guard before connecting: an answer that
 * includes a metadata or link-local address refuses the whole destination
 * rather than skipping to the next address, because such an answer is
 * itself a sign of an attack (the resolver already refuses those answers
 * as they arrive; loopback depends on the policy, so it is checked here).
 *
 * The answer's addresses are tried in the resolver's order (round robin,
 * set-aside addresses last). A connect that is refused or times out goes
 * on to the next address: nothing has been sent, so this is safe for every
 * method. A TLS failure does not move on: the address answered, and a
 * certificate problem is the destination's, not the address's.
 *
 * Idle pooled connections keep a read posted: any byte or EOF on an idle
 * connection means the server closed it or broke protocol, and it is
 * closed at once instead of being handed to the next request. A pooled
 * connection whose address has left the name's answer is closed when it
 * would be reused.
 *
 * The pool is indexed by the forward plan's pool key (route/forward.h),
 * computed with the snapshot: everything that makes two connections
 * interchangeable, the address guard included, so a connection opened
 * under an older policy is never handed to a request the current one
 * would not connect. Where and how to connect (host, SNI, verify name,
 * the trust store's context) comes from that plan too: nothing here builds
 * a TLS context or takes a lock for one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "http/dechunk.h"
#include "net/addr.h"
#include "net/stream.h"
#include "net/timer.h"
#include "proxy/upstream.h"

#define SY_POOL_MAX_IDLE_PER_KEY 512
/* Receive buffer of an upstream connection: a head, plus room for what one
 * TLS read can decrypt to (see up_can_read). */
#define SY_UPSTREAM_BUF (SY_UPSTREAM_HEAD_MAX + 2 * SY_TLS_READ_CHUNK)

/* One pool key (sy_forward_target_t.key): the connections opened for it,
 * idle ones most recently used first, and its TLS sessions. Found through
 * the worker's hashed index; freed once it holds no connection and no
 * session (or, with sessions only, at the next snapshot change). */
struct sy_pool_entry {
    sy_upstream_t *idle; /* list through sy_upstream_t.pool_next/pool_prev */
    size_t idle_count;
    size_t conns;                      /* connections attached to it, idle or serving */
    sy_tls_session_cache_t sessions;   /* TLS sessions for resumption */
    struct sy_pool_entry *next, *prev; /* every entry of the worker (sy_worker_t.pool) */
    struct sy_pool_entry *chain;       /* the index bucket's list */
    uint64_t hash;
    size_t key_len;
    char key[]; /* NUL-terminated */
};

typedef enum {
    SY_UP_RESOLVING = 0,
    SY_UP_CONNECTING,
    SY_UP_HANDSHAKING, /* TCP up, TLS handshake in progress */
    SY_UP_ACTIVE,      /* serving a client */
    SY_UP_IDLE,        /* in the pool */
    SY_UP_CLOSING
} sy_upstream_state_t;

struct sy_upstream {
    sy_stream_t stream; /* the connection: TCP, or TLS over it */
    sy_timer_t timer;   /* the current timeout (lazy: net/timer.h) */
    sy_resolve_req_t resolve_req;
    uv_connect_t connect_req;
    uv_write_t write_req;
    sy_worker_t *worker;
    const sy_h1_exchange_t *ex;           /* the exchange it serves, or NULL */
    sy_upstream_t *pool_next, *pool_prev; /* the entry's idle list */
    sy_pool_entry_t *pool_entry;          /* its key's entry, from creation to free */
    sy_upstream_state_t state;
    int open_handles;
    bool tcp_open;
    bool reused;
    bool writing;
    bool reading;
    bool resolving;

    /* While connecting (the exchange's owner holds the snapshot): the plan. */
    const sy_forward_target_t *dest;
    char connect_host[256]; /* for log lines */
    uint16_t connect_port;
    bool allow_loopback;
    uint32_t connect_timeout_ms;
    char peer[64]; /* the address in use, "ip:port" ("[ip]:port") */

    /* Where it connects: the answer's addresses in the order to try them,
     * the one tried now, and the answer generation it came from (a pooled
     * connection whose address left the answer is closed, not reused). */
    sy_resolver_plan_t plan;
    size_t attempt;
    sy_ip_t ip;
    uint32_t answer_generation;

    bool https;

    /* The HTTP/1 client's side: the receive buffer and the response. */
    char *buf; /* SY_UPSTREAM_BUF bytes while a response is expected, else NULL */
    size_t pos, end;
    uint64_t bytes_received; /* response bytes for this request */
    sy_http_response_t resp; /* its headers point into the exchange's array */
    bool head_done;
    bool body_done;
    bool eof;
    bool delivering;         /* a body slice is with the caller (body callback) */
    size_t deliver_len;      /* bytes of buf [pos, ...) that slice used */
    uint64_t body_remaining; /* SY_BODY_LENGTH */
    sy_http_chunked_t chunked;
};

/* ---- the pool index ------------------------------------------------------

 * Entries are found by the key's hash (computed once per forward target
 * when the snapshot is built) and compared whole, so a lookup costs one bucket walk
 * and one memcmp, and formats nothing. */

static sy_pool_entry_t **bucket(sy_worker_t *w, uint64_t hash)
{
    return &w->pool_index[hash & (SY_POOL_BUCKETS - 1)];
}

static sy_pool_entry_t *pool_find(sy_worker_t *w, const sy_forward_target_t *dest)
{
    for (sy_pool_entry_t *e = *bucket(w, dest->key_hash); e; e = e->chain)
        if (e->hash == dest->key_hash && e->key_len == dest->key_len &&
            memcmp(e->key, dest->key, dest->key_len) == 0)
            return e;
    return NULL;
}

/* Creates the entry for dest's key: once per key and worker, when its
 * first connection is opened. */
static sy_pool_entry_t *pool_create(sy_worker_t *w, const sy_forward_target_t *dest)
{
    sy_pool_entry_t *e = calloc(1, sizeof *e + dest->key_len + 1);
    if (!e)
        return NULL;
    memcpy(e->key, dest->key, dest->key_len);
    e->key_len = dest->key_len;
    e->hash = dest->key_hash;
    sy_pool_entry_t **b = bucket(w, e->hash);
    e->chain = *b;
    *b = e;
    e->next = w->pool;
    if (w->pool)
        w->pool->prev = e;
    w->pool = e;
    return e;
}

static void pool_free(sy_worker_t *w, sy_pool_entry_t *e)
{
    for (sy_pool_entry_t **p = bucket(w, e->hash); *p; p = &(*p)->chain) {
        if (*p == e) {
            *p = e->chain;
            break;
        }
    }
    if (e->prev)
        e->prev->next = e->next;
    else
        w->pool = e->next;
    if (e->next)
        e->next->prev = e->prev;
    sy_tls_session_cache_clear(&e->sessions);
    free(e);
}

/* After a snapshot change: a key no route of the new snapshot connects
 * with (its target, TLS settings, trust store or address guard changed)
 * loses its idle connections at once instead of holding their fds until
 * upstream_idle_ms; entries without connections go, sessions and all, so
 * keys do not pile up across reloads. Connections serving a request
 * finish it and are then closed (their entry is no longer the snapshot's)
 * or pooled. */
static void pool_sweep(sy_worker_t *w, const sy_snapshot_t *snap)
{
    sy_pool_entry_t *next;
    for (sy_pool_entry_t *e = w->pool; e; e = next) {
        next = e->next;
        if (!sy_snapshot_has_key(snap, e->hash))
            while (e->idle)
                sy_upstream_close(e->idle); /* frees nothing yet: handles close later */
        if (e->conns == 0)
            pool_free(w, e);
    }
}

/* The request this connection serves, for its log lines ("" when none). */
static const char *up_request_id(const sy_upstream_t *up)
{
    return up->ex && up->ex->request_id ? up->ex->request_id : "";
}

static void up_maybe_free(sy_upstream_t *up)
{
    if (up->open_handles == 0 && !up->resolving) {
        sy_stream_free_tls(&up->stream);
        sy_bufpool_put(&up->worker->buffers, up->buf, SY_UPSTREAM_BUF);
        sy_pool_entry_t *e = up->pool_entry;
        /* An entry nobody uses any more is freed, unless it keeps TLS
         * sessions for the next connection (those go at the next sweep). */
        if (e && --e->conns == 0 && e->sessions.count == 0)
            pool_free(up->worker, e);
        free(up);
    }
}

static void up_on_handle_closed(uv_handle_t *h)
{
    sy_upstream_t *up = h->data;
    up->open_handles--;
    up_maybe_free(up);
}

/* Takes an idle connection out of its entry's idle list. */
static void pool_unlink(sy_upstream_t *up)
{
    sy_pool_entry_t *e = up->pool_entry;
    if (up->pool_prev)
        up->pool_prev->pool_next = up->pool_next;
    else
        e->idle = up->pool_next;
    if (up->pool_next)
        up->pool_next->pool_prev = up->pool_prev;
    up->pool_next = up->pool_prev = NULL;
    e->idle_count--;
    sy_metrics_gauge_add(up->worker->id, SY_GAUGE_POOL_IDLE, -1);
}

void sy_upstream_close(sy_upstream_t *up)
{
    if (up->state == SY_UP_CLOSING)
        return;
    if (up->state == SY_UP_IDLE)
        pool_unlink(up);
    up->state = SY_UP_CLOSING;
    up->ex = NULL;
    if (up->resolving) {
        sy_resolve_cancel(&up->resolve_req);
        up->resolving = false;
    }
    uv_close((uv_handle_t *)&up->timer.timer, up_on_handle_closed);
    if (up->tcp_open) {
        sy_metrics_gauge_add(up->worker->id, SY_GAUGE_UPSTREAM_CONNECTIONS, -1);
        sy_stream_close(&up->stream, up_on_handle_closed);
    }
}

/* Ends the exchange with an error: the connection is closed first, so the
 * caller may open another at once (a retry). */
static void up_error(sy_upstream_t *up, sy_h1_error_t *e)
{
    const sy_h1_exchange_t *ex = up->ex;
    e->reused = up->reused;
    e->response_bytes = up->bytes_received > 0;
    sy_upstream_close(up);
    if (ex) {
        if (ex->slot)
            *ex->slot = NULL;
        ex->cb->error(ex->arg, e);
    }
}

/* A failure the retry rule never retries; count: a destination error for
 * the metrics. */
static void up_fail(sy_upstream_t *up, int status, const char *why, int kind, bool count)
{
    sy_h1_error_t e = {.status = status, .why = why, .kind = kind, .count = count};
    up_error(up, &e);
}

static void up_attempt_failed(sy_upstream_t *up, const char *error, bool timed_out);

static void up_on_timer(uv_timer_t *t)
{
    sy_upstream_t *up = t->data;
    switch (up->state) {
    case SY_UP_CONNECTING:
        up_attempt_failed(up, "timed out", true);
        break;
    case SY_UP_RESOLVING:
    case SY_UP_HANDSHAKING:
        sy_log(SY_LOG_WARN, "upstream connect timed out", "request_id", up_request_id(up),
               "upstream", up->peer, "phase",
               up->state == SY_UP_HANDSHAKING ? "tls handshake" : "connect", NULL);
        up_fail(up, 502, "upstream connect timed out", SY_UPSTREAM_ERR_TIMEOUT, true);
        break;
    case SY_UP_ACTIVE:
        up_fail(up, 504, "upstream response timed out", SY_UPSTREAM_ERR_TIMEOUT, true);
        break;
    case SY_UP_IDLE:
        sy_upstream_close(up);
        break;
    case SY_UP_CLOSING:
        break;
    }
}

void sy_upstream_set_timer(sy_upstream_t *up, uint32_t ms)
{
    if (up->state != SY_UP_CLOSING)
        sy_timer_set(&up->timer, ms);
}

void sy_upstream_stop_timer(sy_upstream_t *up)
{
    sy_timer_stop(&up->timer);
}

/* The receive buffer has room for another read. */
static bool up_can_read(const sy_upstream_t *up)
{
    /* Over TLS, everything one read returns is decrypted at once, and the
     * TLS layer may also hold a partial record from before: keep room for
     * both so no plaintext is ever left waiting inside OpenSSL. */
    return up->end + sy_stream_read_room(&up->stream) <= SY_UPSTREAM_BUF;
}

/* Ciphertext lands in the worker's TLS scratch (fed to OpenSSL at once);
 * plaintext in the connection's buffer while a response is expected, else
 * (idle in the pool: any byte means the connection is done) in the
 * worker's scratch. */
static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    sy_upstream_t *up = h->data;
    if (sy_stream_is_tls(&up->stream)) {
        b->base = up->worker->tls_scratch;
        b->len = SY_TLS_READ_CHUNK;
        return;
    }
    if (!up->buf) {
        b->base = up->worker->scratch;
        b->len = SY_WORKER_SCRATCH;
        return;
    }
    b->base = up->buf + up->end;
    b->len = SY_UPSTREAM_BUF - up->end;
}

/* The response is over and the connection goes idle: its receive buffer
 * goes back to the worker, and OpenSSL's and the memory BIOs' buffers are
 * released. */
static void up_shed(sy_upstream_t *up)
{
    sy_bufpool_put(&up->worker->buffers, up->buf, SY_UPSTREAM_BUF);
    up->buf = NULL;
    up->pos = up->end = 0;
    sy_stream_shed(&up->stream);
}

static void up_handshake_step(sy_upstream_t *up, const char *in, size_t len);
static void up_read_start(sy_upstream_t *up);
static void up_read_stop(sy_upstream_t *up);
static void h1_pump(sy_upstream_t *up);

static void up_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    sy_upstream_t *up = s->data;
    if (nread == 0)
        return;
    if (up->state == SY_UP_IDLE) {
        /* Data or EOF on an idle connection: the server closed it or
         * misbehaved; either way it can't be reused. Over TLS, a record
         * that decrypts to nothing (a late session ticket) is harmless. */
        if (nread > 0 && sy_stream_is_tls(&up->stream)) {
            char scratch[256];
            if (sy_stream_decode(&up->stream, nread, b, scratch, sizeof scratch) == 0)
                return;
        }
        sy_upstream_close(up);
        return;
    }
    if (up->state == SY_UP_HANDSHAKING) {
        if (nread < 0) {
            sy_log(SY_LOG_WARN, "upstream TLS handshake failed", "request_id", up_request_id(up),
                   "upstream", up->peer, "reason", "handshake failure", "detail",
                   "connection closed during the handshake", NULL);
            up_fail(up, 502, "upstream TLS handshake failed", SY_UPSTREAM_ERR_TLS, true);
            return;
        }
        up_handshake_step(up, b->base, (size_t)nread);
        return;
    }
    if (up->state != SY_UP_ACTIVE || !up->ex)
        return;
    if (!up->buf) {
        /* Read before a response was expected (nothing was sent on it):
         * the connection cannot be trusted with one. */
        up_fail(up, 502, "upstream connection failed", SY_UPSTREAM_ERR_CONNECT, false);
        return;
    }
    if (nread > 0 && sy_stream_is_tls(&up->stream)) {
        nread =
            sy_stream_decode(&up->stream, nread, b, up->buf + up->end, SY_UPSTREAM_BUF - up->end);
        if (nread == 0)
            return; /* a partial record: wait for the rest */
    }
    if (nread < 0) {
        up->eof = true;
        up_read_stop(up);
    } else {
        up->end += (size_t)nread;
        up->bytes_received += (uint64_t)nread;
        if (!up_can_read(up))
            up_read_stop(up);
    }
    sy_upstream_set_timer(up, up->ex->response_timeout_ms);
    h1_pump(up);
}

static void up_read_start(sy_upstream_t *up)
{
    if (up->reading || !up->tcp_open || up->state == SY_UP_CLOSING || up->eof)
        return;
    if (!up_can_read(up))
        return;
    if (sy_stream_read_start(&up->stream, up_alloc, up_on_read) == 0)
        up->reading = true;
}

static void up_read_stop(sy_upstream_t *up)
{
    if (!up->reading)
        return;
    sy_stream_read_stop(&up->stream);
    up->reading = false;
}

static void up_written(sy_upstream_t *up, int status)
{
    up->writing = false;
    if (up->state != SY_UP_ACTIVE || !up->ex)
        return;
    up->ex->cb->written(up->ex->arg, status);
}

static void up_on_write(uv_write_t *req, int status)
{
    up_written(req->data, status);
}

int sy_upstream_write(sy_upstream_t *up, const uv_buf_t *bufs, unsigned n)
{
    up->write_req.data = up;
    int rc = sy_stream_write(&up->stream, &up->worker->completions, &up->write_req, bufs, n,
                             up_on_write);
    if (rc == 0)
        up->writing = true;
    return rc;
}

bool sy_upstream_writing(const sy_upstream_t *up)
{
    return up->writing;
}

bool sy_upstream_can_send(const sy_upstream_t *up)
{
    return up->state == SY_UP_ACTIVE && !up->writing;
}

void sy_upstream_retry_facts(const sy_upstream_t *up, sy_retry_facts_t *f)
{
    f->reused = up->reused;
    f->response_bytes = up->bytes_received > 0;
}

/* ---- the HTTP/1 client: one response --------------------------------------

 * The response head is parsed in exactly one place (h1_parse_head); the
 * body is cut into slices, one at a time, each decoded from its framing in
 * place in the receive buffer: while the caller writes a slice, nothing is
 * read, so a slow receiver never makes switchyard buffer more. */

/* The connection is ready for a request (connected, or taken from the
 * pool): a response is expected from here on, so it takes a buffer. */
static void h1_ready(sy_upstream_t *up)
{
    const sy_h1_exchange_t *ex = up->ex;
    if (!ex)
        return;
    if (!up->buf)
        up->buf = sy_bufpool_get(&up->worker->buffers, SY_UPSTREAM_BUF);
    if (!up->buf) {
        up_fail(up, 502, "out of memory", SY_UPSTREAM_ERR_CONNECT, false);
        return;
    }
    up->pos = up->end = 0;
    up->bytes_received = 0;
    up->head_done = up->body_done = up->eof = up->delivering = false;
    up->deliver_len = 0;
    if (ex->head_state)
        sy_http_head_state_reset(ex->head_state); /* a new response, a retry's included */
    ex->cb->connected(ex->arg, up->peer);
    if (up->ex != ex || up->state != SY_UP_ACTIVE)
        return; /* the caller gave up on it (a failed write, a retry) */
    sy_upstream_set_timer(up, ex->response_timeout_ms);
    up_read_start(up);
}

/* A response failed: truncated, malformed, or closed before its head. */
static void h1_fail(sy_upstream_t *up, int status, const char *why, int kind, bool count,
                    bool broke, sy_retry_fault_t fault)
{
    sy_h1_error_t e = {
        .status = status, .why = why, .kind = kind, .count = count, .broke = broke, .fault = fault};
    up_error(up, &e);
}

/* Parses the response head at buf + pos, skipping interim 1xx responses.
 * True when a final head is parsed (in up->resp); false when more bytes
 * are needed (reading goes on) or the exchange failed. */
static bool h1_parse_head(sy_upstream_t *up)
{
    const sy_h1_exchange_t *ex = up->ex;
    for (;;) {
        sy_http_reject_t reject = SY_REJECT_NONE;
        static const sy_http_limits_t resp_limits = {16384, SY_UPSTREAM_HEAD_MAX,
                                                     SY_HTTP_MAX_HEADERS, UINT64_MAX};
        /* The parser sees at most SY_UPSTREAM_HEAD_MAX bytes, so a head
         * (through its final CRLF CRLF) of that size passes and one byte
         * more does not, however much the buffer holds. */
        size_t avail = up->end - up->pos;
        size_t len = avail < SY_UPSTREAM_HEAD_MAX ? avail : SY_UPSTREAM_HEAD_MAX;
        sy_http_status_t st = sy_http_response_parse(ex->head_state, up->buf + up->pos, len,
                                                     &resp_limits, ex->head_request, ex->headers,
                                                     ex->header_cap, &up->resp, &reject);
        if (st == SY_HTTP_INCOMPLETE && len == SY_UPSTREAM_HEAD_MAX) {
            st = SY_HTTP_ERROR;
            reject = SY_REJECT_HEADERS_TOO_LARGE;
        }
        if (st == SY_HTTP_INCOMPLETE) {
            if (up->eof) {
                /* A pooled connection the server closed as the request
                 * arrived: the retry rule may send it again. */
                h1_fail(up, 502, "upstream closed the connection early", SY_UPSTREAM_ERR_CONNECT,
                        true, false, SY_FAULT_CLOSED_EARLY);
                return false;
            }
            /* Over TLS reading stops while some room is left (see
             * up_can_read): "full" is "can't read more", or the request
             * would wait for upstream_response_ms. */
            if (!up_can_read(up)) {
                h1_fail(up, 502, "upstream response head too large", SY_UPSTREAM_ERR_MALFORMED,
                        true, false, SY_FAULT_OTHER);
                return false;
            }
            up_read_start(up);
            return false;
        }
        if (st == SY_HTTP_ERROR) {
            bool too_large = reject == SY_REJECT_HEADERS_TOO_LARGE;
            sy_log(SY_LOG_WARN, "malformed upstream response", "request_id", up_request_id(up),
                   "upstream", ex->url ? ex->url : "", "reason", sy_http_reject_name(reject), NULL);
            h1_fail(up, 502,
                    too_large ? "upstream response head too large" : "malformed upstream response",
                    SY_UPSTREAM_ERR_MALFORMED, true, false, SY_FAULT_OTHER);
            return false;
        }
        if (up->resp.status >= 100 && up->resp.status < 200) {
            if (up->resp.status == 101) {
                h1_fail(up, 502, "upstream switched protocols unasked", SY_UPSTREAM_ERR_MALFORMED,
                        false, false, SY_FAULT_OTHER);
                return false;
            }
            /* An interim response is not forwarded. What follows it moves
             * to the buffer's start, so the final head has the whole
             * SY_UPSTREAM_HEAD_MAX and the buffer's read room. */
            size_t rest = up->end - up->pos - up->resp.head_len;
            memmove(up->buf, up->buf + up->pos + up->resp.head_len, rest);
            up->pos = 0;
            up->end = rest;
            if (ex->head_state)
                sy_http_head_state_reset(ex->head_state); /* the final head starts anew */
            continue;
        }
        return true;
    }
}

/* The head is parsed: the body's framing starts after it. */
static void h1_start_body(sy_upstream_t *up)
{
    const sy_http_response_t *resp = &up->resp;
    switch (resp->body_kind) {
    case SY_BODY_NONE:
        up->body_done = true;
        break;
    case SY_BODY_LENGTH:
        up->body_remaining = resp->content_length;
        up->body_done = resp->content_length == 0;
        break;
    case SY_BODY_CHUNKED:
        sy_http_chunked_init(&up->chunked, 65536);
        break;
    case SY_BODY_UNTIL_CLOSE:
        break;
    }
    up->pos += resp->head_len;
    up->head_done = true;
}

/* Parses what has arrived and hands the caller the head, then the next
 * body slice; with a slice out, waits for sy_upstream_body_written. */
static void h1_pump(sy_upstream_t *up)
{
    const sy_h1_exchange_t *ex = up->ex;
    if (!ex || up->delivering || up->state != SY_UP_ACTIVE)
        return;
    if (!up->head_done) {
        if (!h1_parse_head(up))
            return;
        h1_start_body(up);
        ex->cb->head(ex->arg, &up->resp);
        if (up->ex != ex || up->state != SY_UP_ACTIVE)
            return;
    }
    size_t avail = up->end - up->pos;
    size_t consumed = 0;
    char *data = up->buf + up->pos;
    bool finished = up->body_done;
    if (!up->body_done) {
        switch (up->resp.body_kind) {
        case SY_BODY_LENGTH: {
            size_t take = avail < up->body_remaining ? avail : (size_t)up->body_remaining;
            consumed = take;
            up->body_remaining -= take;
            if (up->body_remaining == 0)
                finished = true;
            break;
        }
        case SY_BODY_CHUNKED: {
            sy_http_reject_t reject = SY_REJECT_NONE;
            ssize_t decoded = sy_http_dechunk_in_place(&up->chunked, up->buf, up->pos, &up->end,
                                                       &finished, &reject);
            if (decoded < 0) {
                h1_fail(up, 502, "malformed upstream chunked body", SY_UPSTREAM_ERR_MALFORMED, true,
                        true, SY_FAULT_OTHER);
                return;
            }
            consumed = (size_t)decoded;
            break;
        }
        case SY_BODY_UNTIL_CLOSE:
            consumed = avail;
            /* Over TLS only close_notify ends the body: a bare TCP close
             * may have cut it short, and the client must not be told,
             * with a last chunk, that it is whole (RFC 9112 §9.8). */
            if (up->eof && sy_stream_peer_closed(&up->stream))
                finished = true;
            break;
        default:
            finished = true;
            break;
        }
    }
    up->body_done = finished;
    if (!finished && up->eof && consumed == 0) {
        /* The upstream closed (or reset) before the body it announced was
         * complete. */
        h1_fail(up, 502, "upstream response truncated", SY_UPSTREAM_ERR_MALFORMED, true, true,
                SY_FAULT_OTHER);
        return;
    }
    bool pending = ex->cb->body(ex->arg, data, consumed, finished);
    if (up->ex != ex || up->state != SY_UP_ACTIVE)
        return;
    if (!pending) {
        if (finished) {
            /* The end of the body carried nothing to write (the last
             * chunk, or EOF). */
            sy_upstream_stop_timer(up);
            ex->cb->done(ex->arg);
            return;
        }
        up->pos = up->end = 0;
        up_read_start(up);
        return;
    }
    /* The consumed bytes are released when the slice is written. While it
     * is out, the upstream is not read (its buffer is what is being
     * written), unless the response is complete: then anything more is a
     * protocol error that release sees, and the idle pool wants the read
     * posted anyway. */
    up->delivering = true;
    up->deliver_len = consumed;
    if (!finished) {
        up_read_stop(up);
        sy_upstream_set_timer(up, ex->response_timeout_ms);
    } else {
        /* The upstream is done; only the caller's write can stall now. */
        sy_upstream_stop_timer(up);
    }
}

void sy_upstream_body_written(sy_upstream_t *up)
{
    const sy_h1_exchange_t *ex = up->ex;
    if (!ex || !up->delivering || up->state != SY_UP_ACTIVE)
        return;
    up->delivering = false;
    up->pos += up->deliver_len;
    up->deliver_len = 0;
    if (up->pos == up->end)
        up->pos = up->end = 0;
    if (up->body_done) {
        ex->cb->done(ex->arg);
        return;
    }
    if (up->end > up->pos || up->eof)
        h1_pump(up);
    else
        up_read_start(up);
}

/* The response ended cleanly on a connection the server keeps open, with
 * nothing left over and no write in flight (a write holds write_req, and
 * maybe the caller's buffer). */
static bool h1_reusable(const sy_upstream_t *up)
{
    return up->head_done && up->resp.keep_alive && up->body_done && !up->eof &&
           up->pos == up->end && up->resp.body_kind != SY_BODY_UNTIL_CLOSE && !up->writing;
}

static void up_tls_failed(sy_upstream_t *up, const char *reason, const char *detail)
{
    sy_log(SY_LOG_ERROR, "upstream TLS verification failed", "request_id", up_request_id(up),
           "upstream", up->peer, "host", up->connect_host, "verify_name",
           up->dest ? up->dest->verify_name : "", "reason", reason, "detail", detail, NULL);
    up_fail(up, 502, "upstream TLS verification failed", SY_UPSTREAM_ERR_TLS, true);
}

/* Feeds what was read (len may be 0) and drives the handshake. */
static void up_handshake_step(sy_upstream_t *up, const char *in, size_t len)
{
    sy_tls_t *tls = up->stream.tls;
    int rc = sy_stream_handshake(&up->stream, in, len);
    if (rc == 0)
        return;
    if (rc < 0) {
        char detail[256];
        const char *reason = sy_tls_failure(tls, detail, sizeof detail);
        up_tls_failed(up, reason, detail);
        return;
    }
    bool resumed = sy_tls_resumed(tls);
    sy_metrics_tls_handshake(up->worker->id, resumed);
    if (resumed)
        sy_tls_session_resumed(tls);
    sy_upstream_stop_timer(up);
    up->state = SY_UP_ACTIVE;
    h1_ready(up);
}

/* TLS over the connection just made: the trust store's context was built
 * with the snapshot (no lock, no build here), SNI and the verify name come
 * from the plan, and sessions from the key's pool entry. */
static void up_start_tls(sy_upstream_t *up)
{
    const sy_forward_target_t *dest = up->dest;
    const sy_tls_trust_t *trust = dest ? dest->trust : NULL;
    if (!trust || !trust->ctx) {
        up_tls_failed(up, "handshake failure",
                      trust && trust->error ? trust->error : "no trust store");
        return;
    }
    const char *why = NULL;
    if (!sy_stream_tls_client(&up->stream, trust->ctx, dest->sni, dest->verify_check,
                              &up->pool_entry->sessions, &why)) {
        up_tls_failed(up, "handshake failure", why);
        return;
    }
    up->state = SY_UP_HANDSHAKING;
    up_read_start(up);
    up_handshake_step(up, NULL, 0);
}

static void up_on_connect(uv_connect_t *req, int status);

static void up_connect_next(sy_upstream_t *up)
{
    const sy_ip_t *ip = &up->plan.addrs[up->attempt];
    struct sockaddr_storage sa;
    sy_ip_to_sockaddr(ip, up->connect_port, &sa);
    up->ip = *ip;
    char text[48];
    sy_ip_format(ip, text, sizeof text);
    snprintf(up->peer, sizeof up->peer, ip->family == AF_INET6 ? "[%s]:%u" : "%s:%u", text,
             (unsigned)up->connect_port);
    uv_tcp_init(&up->worker->loop, &up->stream.tcp);
    up->stream.tcp.data = up;
    up->tcp_open = true;
    up->open_handles++;
    sy_metrics_gauge_add(up->worker->id, SY_GAUGE_UPSTREAM_CONNECTIONS, 1);
    uv_tcp_nodelay(&up->stream.tcp, 1);
    up->state = SY_UP_CONNECTING;
    sy_upstream_set_timer(up, up->connect_timeout_ms);
    up->connect_req.data = up;
    int rc = uv_tcp_connect(&up->connect_req, &up->stream.tcp, (const struct sockaddr *)&sa,
                            up_on_connect);
    if (rc < 0)
        up_attempt_failed(up, uv_strerror(rc), false);
}

static void up_on_attempt_closed(uv_handle_t *h)
{
    sy_upstream_t *up = h->data;
    up->open_handles--;
    if (up->state == SY_UP_CLOSING || !up->ex) {
        if (up->state != SY_UP_CLOSING)
            sy_upstream_close(up);
        up_maybe_free(up);
        return;
    }
    up_connect_next(up);
}

/* The address being connected refused or timed out: set it aside and go
 * on to the next one, or fail when none is left. */
static void up_attempt_failed(sy_upstream_t *up, const char *error, bool timed_out)
{
    sy_resolver_report(up->plan.entry, &up->ip, false);
    sy_log(SY_LOG_WARN, timed_out ? "upstream connect timed out" : "upstream connect failed",
           "request_id", up_request_id(up), "upstream", up->peer, "host", up->connect_host, "error",
           error, NULL);
    sy_retry_facts_t facts = {.fault = SY_FAULT_CONNECT,
                              .addresses_left = up->attempt + 1 < up->plan.count && up->ex};
    if (sy_retry_decide(&facts) == SY_RETRY_NEXT_ADDRESS) {
        up->attempt++;
        sy_resolver_count_moved(up->plan.entry);
        up->state = SY_UP_RESOLVING; /* between two addresses */
        sy_upstream_stop_timer(up);
        up->tcp_open = false;
        sy_metrics_gauge_add(up->worker->id, SY_GAUGE_UPSTREAM_CONNECTIONS, -1);
        sy_stream_close(&up->stream, up_on_attempt_closed);
        return;
    }
    if (timed_out) {
        up_fail(up, 502, "upstream connect timed out", SY_UPSTREAM_ERR_TIMEOUT, true);
    } else {
        up_fail(up, 502, "upstream connection failed", SY_UPSTREAM_ERR_CONNECT, true);
    }
}

static void up_on_connect(uv_connect_t *req, int status)
{
    sy_upstream_t *up = req->data;
    if (up->state == SY_UP_CLOSING || status == UV_ECANCELED)
        return;
    if (status < 0) {
        up_attempt_failed(up, uv_strerror(status), false);
        return;
    }
    sy_resolver_report(up->plan.entry, &up->ip, true);
    up->answer_generation = up->plan.generation;
    if (up->https) {
        up_start_tls(up);
        return;
    }
    sy_upstream_stop_timer(up);
    up->state = SY_UP_ACTIVE;
    h1_ready(up);
}

/* The resolver answered (now or later): check every address, then
 * connect to the first in the plan. */
static void up_use_plan(sy_upstream_t *up, sy_resolve_status_t status,
                        const sy_resolver_plan_t *plan, const char *why)
{
    if (status != SY_RESOLVE_OK || !plan->count) {
        bool refused = status == SY_RESOLVE_REFUSED;
        sy_log(SY_LOG_WARN, refused ? "upstream DNS answer refused" : "upstream resolve failed",
               "request_id", up_request_id(up), "host", up->connect_host, "error",
               why ? why : "no address", NULL);
        up_fail(up, 502,
                refused ? "upstream address refused" : "upstream host could not be resolved",
                refused ? SY_UPSTREAM_ERR_ADDRESS : SY_UPSTREAM_ERR_RESOLVE, true);
        return;
    }
    if (plan != &up->plan)
        up->plan = *plan;
    for (size_t i = 0; i < up->plan.count; i++) {
        struct sockaddr_storage sa;
        sy_ip_to_sockaddr(&up->plan.addrs[i], up->connect_port, &sa);
        const char *refusal = sy_addr_refusal((const struct sockaddr *)&sa, up->allow_loopback);
        if (refusal) {
            char addr[64];
            sy_ip_format(&up->plan.addrs[i], addr, sizeof addr);
            sy_log(SY_LOG_ERROR, "upstream address refused", "request_id", up_request_id(up),
                   "host", up->connect_host, "address", addr, "reason", refusal, NULL);
            up_fail(up, 502, "upstream address refused", SY_UPSTREAM_ERR_ADDRESS, true);
            return;
        }
    }
    up->attempt = 0;
    up_connect_next(up);
}

static void up_on_resolved(sy_resolve_req_t *req, sy_resolve_status_t status,
                           const sy_resolver_plan_t *plan, const char *why)
{
    sy_upstream_t *up = req->data;
    up->resolving = false;
    if (up->state == SY_UP_CLOSING) {
        up_maybe_free(up);
        return;
    }
    up_use_plan(up, status, plan, why);
}

void sy_upstream_acquire(sy_worker_t *w, const sy_snapshot_t *snap, const sy_forward_target_t *dest,
                         uint32_t connect_timeout_ms, bool fresh, const sy_h1_exchange_t *ex)
{
    /* Only forward: a request still running on an older snapshot (a
     * retry) must not sweep the newer one's keys. */
    if (snap->generation > w->pool_generation) {
        w->pool_generation = snap->generation;
        pool_sweep(w, snap);
    }
    sy_pool_entry_t *e = pool_find(w, dest);
    if (!fresh && e && e->idle)
        sy_resolver_touch(w->resolver, e->idle->plan.entry, uv_now(&w->loop));
    /* An idle connection to an address that has left the answer is
     * closed, not reused: the name moved away from it. */
    while (!fresh && e && e->idle &&
           !sy_resolver_address_current(e->idle->plan.entry, &e->idle->ip,
                                        &e->idle->answer_generation))
        sy_upstream_close(e->idle);
    if (!fresh && e && e->idle) {
        /* Same key: same target, TLS settings, trust store contents and
         * address guard, so the current policy would have opened it too. */
        sy_upstream_t *up = e->idle;
        pool_unlink(up);
        sy_upstream_stop_timer(up);
        up->state = SY_UP_ACTIVE;
        up->reused = true;
        up->ex = ex;
        up->dest = dest;
        *ex->slot = up;
        h1_ready(up);
        return;
    }
    if (!e)
        e = pool_create(w, dest);
    sy_upstream_t *up = e ? calloc(1, sizeof *up) : NULL;
    if (!up) {
        sy_h1_error_t err = {
            .status = 502, .why = "out of memory", .kind = SY_UPSTREAM_ERR_CONNECT};
        ex->cb->error(ex->arg, &err);
        return;
    }
    up->worker = w;
    up->ex = ex;
    up->pool_entry = e;
    e->conns++;
    up->dest = dest;
    size_t n =
        dest->host_len < sizeof up->connect_host - 1 ? dest->host_len : sizeof up->connect_host - 1;
    memcpy(up->connect_host, dest->host, n);
    up->connect_host[n] = '\0';
    memcpy(up->peer, up->connect_host, n < sizeof up->peer - 1 ? n : sizeof up->peer - 1);
    up->connect_port = dest->port;
    up->connect_timeout_ms = connect_timeout_ms;
    up->allow_loopback = dest->allow_loopback;
    up->https = dest->https;
    sy_timer_init(&w->loop, &up->timer, up_on_timer);
    up->timer.timer.data = up;
    up->open_handles = 1;
    *ex->slot = up;
    up->state = SY_UP_RESOLVING;
    sy_upstream_set_timer(up, connect_timeout_ms);

    up->resolve_req.cb = up_on_resolved;
    up->resolve_req.data = up;
    sy_resolve_status_t status;
    const char *why;
    if (sy_resolve(w->resolver, &up->resolve_req, dest->host, &up->plan, &status, &why)) {
        up_use_plan(up, status, &up->plan, why);
        return;
    }
    up->resolving = true;
}

void sy_upstream_release(sy_upstream_t *up, bool request_complete, uint32_t idle_ms)
{
    sy_worker_t *w = up->worker;
    bool reusable = request_complete && h1_reusable(up);
    if (reusable)
        up_shed(up); /* an idle connection holds no buffers */
    up->ex = NULL;
    up->dest = NULL; /* the plan belongs to the request's snapshot */
    sy_pool_entry_t *e = up->pool_entry;
    /* A write still in flight holds write_req (and maybe the client's
     * buffer): such a connection is never pooled; nor one whose key no
     * route of the current snapshot connects with any more. */
    if (!reusable || w->draining || !e || e->idle_count >= SY_POOL_MAX_IDLE_PER_KEY ||
        up->state != SY_UP_ACTIVE || up->writing ||
        (w->snap && !sy_snapshot_has_key(w->snap, e->hash))) {
        sy_upstream_close(up);
        return;
    }
    up->state = SY_UP_IDLE;
    up->pos = up->end = 0;
    up->bytes_received = 0;
    up->reused = false;
    up->pool_prev = NULL;
    up->pool_next = e->idle;
    if (e->idle)
        e->idle->pool_prev = up;
    e->idle = up;
    e->idle_count++;
    sy_metrics_gauge_add(w->id, SY_GAUGE_POOL_IDLE, 1);
    sy_upstream_set_timer(up, idle_ms);
    up_read_start(up);
}

void sy_pool_close_all(sy_worker_t *w)
{
    for (sy_pool_entry_t *e = w->pool; e; e = e->next)
        while (e->idle)
            sy_upstream_close(e->idle);
}

/* Idle pooled upstream connections hold fds too. When the worker reaches
 * its cap, the budget left after two fds per client bounds them. */
void sy_pool_trim(sy_worker_t *w, size_t keep)
{
    size_t idle = 0;
    for (sy_pool_entry_t *e = w->pool; e; e = e->next)
        idle += e->idle_count;
    for (sy_pool_entry_t *e = w->pool; e && idle > keep; e = e->next)
        while (e->idle && idle > keep) {
            sy_upstream_close(e->idle);
            idle--;
        }
}

void sy_pool_free_all(sy_worker_t *w)
{
    sy_pool_entry_t *next;
    for (sy_pool_entry_t *e = w->pool; e; e = next) {
        next = e->next;
        sy_tls_session_cache_clear(&e->sessions);
        free(e);
    }
    w->pool = NULL;
}
