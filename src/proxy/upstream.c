/*
 * upstream.c: connections to destinations and the per-worker keep-alive
 * pool.
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
#include "net/addr.h"
#include "proxy/proxy.h"

#define SY_POOL_MAX_IDLE_PER_KEY 512

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

/* The destination host of the request this connection serves (NULL when
 * none), the label of its upstream metrics. */
static const char *up_destination(const sy_upstream_t *up)
{
    return up->client && up->client->rq && up->client->rq->route
               ? up->client->rq->route->target_host
               : NULL;
}

/* The request this connection serves, for its log lines ("" when none). */
static const char *up_request_id(const sy_upstream_t *up)
{
    return up->client && up->client->rq && up->client->rq->request_id_len
               ? up->client->rq->request_id
               : "";
}

static void up_maybe_free(sy_upstream_t *up)
{
    if (up->open_handles == 0 && !up->resolving) {
        if (up->tls) {
            sy_tls_free(up->tls);
            free(up->tls);
        }
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
    up->client = NULL;
    if (up->resolving) {
        sy_resolve_cancel(&up->resolve_req);
        up->resolving = false;
    }
    uv_close((uv_handle_t *)&up->timer, up_on_handle_closed);
    if (up->tcp_open) {
        sy_metrics_gauge_add(up->worker->id, SY_GAUGE_UPSTREAM_CONNECTIONS, -1);
        uv_close((uv_handle_t *)&up->tcp, up_on_handle_closed);
    }
}

static void up_fail(sy_upstream_t *up, int status, const char *why, int kind)
{
    sy_client_t *c = up->client;
    sy_upstream_close(up);
    if (c) {
        c->up = NULL;
        sy_client_on_upstream_failed(c, status, why, kind);
    }
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
        sy_metrics_destination_error(up->worker->id, up_destination(up), SY_UPSTREAM_ERR_TIMEOUT);
        up_fail(up, 502, "upstream connect timed out", SY_UPSTREAM_ERR_TIMEOUT);
        break;
    case SY_UP_ACTIVE:
        sy_metrics_destination_error(up->worker->id, up_destination(up), SY_UPSTREAM_ERR_TIMEOUT);
        up_fail(up, 504, "upstream response timed out", SY_UPSTREAM_ERR_TIMEOUT);
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
        uv_timer_start(&up->timer, up_on_timer, ms, 0);
}

bool sy_upstream_can_read(const sy_upstream_t *up)
{
    /* Over TLS, everything one read returns is decrypted at once, and the
     * TLS layer may also hold a partial record from before: keep room for
     * both so no plaintext is ever left waiting inside OpenSSL. */
    size_t need = up->tls ? 2 * SY_TLS_READ_CHUNK : 1;
    return up->end + need <= SY_UPSTREAM_BUF;
}

/* Ciphertext lands in the worker's TLS scratch (fed to OpenSSL at once);
 * plaintext in the connection's buffer while a response is expected, else
 * (idle in the pool: any byte means the connection is done) in the
 * worker's scratch. */
static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    sy_upstream_t *up = h->data;
    if (up->tls) {
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

bool sy_upstream_buffer_take(sy_upstream_t *up)
{
    if (!up->buf)
        up->buf = sy_bufpool_get(&up->worker->buffers, SY_UPSTREAM_BUF);
    up->pos = up->end = 0;
    return up->buf != NULL;
}

void sy_upstream_shed(sy_upstream_t *up)
{
    sy_bufpool_put(&up->worker->buffers, up->buf, SY_UPSTREAM_BUF);
    up->buf = NULL;
    up->pos = up->end = 0;
    if (up->tls)
        sy_tls_shed(up->tls);
}

static void up_handshake_step(sy_upstream_t *up);

static void up_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    sy_upstream_t *up = s->data;
    if (nread == 0)
        return;
    if (up->state == SY_UP_IDLE) {
        /* Data or EOF on an idle connection: the server closed it or
         * misbehaved; either way it can't be reused. Over TLS, a record
         * that decrypts to nothing (a late session ticket) is harmless. */
        if (nread > 0 && up->tls) {
            bool eof = false;
            char scratch[256];
            sy_tls_feed(up->tls, b->base, (size_t)nread);
            if (sy_tls_read(up->tls, scratch, sizeof scratch, &eof) == 0 && !eof)
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
            sy_metrics_destination_error(up->worker->id, up_destination(up), SY_UPSTREAM_ERR_TLS);
            up_fail(up, 502, "upstream TLS handshake failed", SY_UPSTREAM_ERR_TLS);
            return;
        }
        sy_tls_feed(up->tls, b->base, (size_t)nread);
        up_handshake_step(up);
        return;
    }
    if (up->state != SY_UP_ACTIVE || !up->client)
        return;
    if (!up->buf) {
        /* Read before a response was expected (nothing was sent on it):
         * the connection cannot be trusted with one. */
        up_fail(up, 502, "upstream connection failed", SY_UPSTREAM_ERR_CONNECT);
        return;
    }
    if (nread > 0 && up->tls) {
        sy_tls_feed(up->tls, b->base, (size_t)nread);
        bool eof = false;
        nread = sy_tls_read(up->tls, up->buf + up->end, SY_UPSTREAM_BUF - up->end, &eof);
        sy_tls_flush(up->tls, NULL, NULL); /* post-handshake replies, if any */
        if (nread < 0 || (nread == 0 && eof)) {
            nread = UV_EOF;
        } else if (nread == 0) {
            return; /* a partial record: wait for the rest */
        }
    }
    if (nread < 0) {
        up->eof = true;
        sy_upstream_read_stop(up);
    } else {
        up->end += (size_t)nread;
        up->bytes_received += (uint64_t)nread;
        if (!sy_upstream_can_read(up))
            sy_upstream_read_stop(up);
    }
    sy_client_on_upstream_readable(up->client);
}

void sy_upstream_read_start(sy_upstream_t *up)
{
    if (up->reading || !up->tcp_open || up->state == SY_UP_CLOSING || up->eof)
        return;
    if (!sy_upstream_can_read(up))
        return;
    if (uv_read_start((uv_stream_t *)&up->tcp, up_alloc, up_on_read) == 0)
        up->reading = true;
}

void sy_upstream_read_stop(sy_upstream_t *up)
{
    if (!up->reading)
        return;
    uv_read_stop((uv_stream_t *)&up->tcp);
    up->reading = false;
}

static void up_on_write(uv_write_t *req, int status)
{
    sy_upstream_t *up = req->data;
    up->writing = false;
    if (up->state != SY_UP_ACTIVE || !up->client)
        return;
    sy_client_on_upstream_write_done(up->client, status);
}

static void up_on_tls_written(void *arg, int status)
{
    sy_upstream_t *up = arg;
    up->writing = false;
    if (up->state != SY_UP_ACTIVE || !up->client)
        return;
    sy_client_on_upstream_write_done(up->client, status);
}

int sy_upstream_write(sy_upstream_t *up, const uv_buf_t *bufs, unsigned n)
{
    if (up->tls) {
        if (!sy_tls_write(up->tls, bufs, n))
            return UV_EPROTO;
        int rc = sy_tls_flush(up->tls, up_on_tls_written, up);
        if (rc == 0)
            up->writing = true;
        return rc;
    }
    up->write_req.data = up;
    int rc = uv_write(&up->write_req, (uv_stream_t *)&up->tcp, bufs, n, up_on_write);
    if (rc == 0)
        up->writing = true;
    return rc;
}

static void up_tls_failed(sy_upstream_t *up, const char *reason, const char *detail)
{
    sy_log(SY_LOG_ERROR, "upstream TLS verification failed", "request_id", up_request_id(up),
           "upstream", up->peer, "host", up->connect_host, "verify_name",
           up->dest ? up->dest->verify_name : "", "reason", reason, "detail", detail, NULL);
    sy_metrics_destination_error(up->worker->id, up_destination(up), SY_UPSTREAM_ERR_TLS);
    up_fail(up, 502, "upstream TLS verification failed", SY_UPSTREAM_ERR_TLS);
}

static void up_handshake_step(sy_upstream_t *up)
{
    int rc = sy_tls_handshake(up->tls);
    sy_tls_flush(up->tls, NULL, NULL);
    if (rc == 0)
        return;
    if (rc < 0) {
        char detail[256];
        const char *reason = sy_tls_failure(up->tls, detail, sizeof detail);
        up_tls_failed(up, reason, detail);
        return;
    }
    bool resumed = sy_tls_resumed(up->tls);
    sy_metrics_tls_handshake(up->worker->id, resumed);
    if (resumed)
        sy_tls_session_resumed(up->tls);
    uv_timer_stop(&up->timer);
    up->state = SY_UP_ACTIVE;
    if (up->client)
        sy_client_on_upstream_connected(up->client);
}

/* TLS over the connection just made: the trust store's context was built
 * with the snapshot (no lock, no build here), SNI and the verify name come
 * from the plan, and sessions from the key's pool entry. */
static void up_start_tls(sy_upstream_t *up)
{
    const sy_forward_target_t *dest = up->dest;
    const sy_tls_trust_t *trust = dest ? dest->trust : NULL;
    up->tls = trust && trust->ctx ? calloc(1, sizeof *up->tls) : NULL;
    if (!up->tls || !sy_tls_init(up->tls, trust->ctx, (uv_stream_t *)&up->tcp, true)) {
        free(up->tls);
        up->tls = NULL;
        up_tls_failed(up, "handshake failure",
                      trust && trust->ctx     ? "out of memory"
                      : trust && trust->error ? trust->error
                                              : "no trust store");
        return;
    }
    if (!sy_tls_client_setup(up->tls, dest->sni, dest->verify_check, &up->pool_entry->sessions)) {
        up_tls_failed(up, "handshake failure", "invalid verify name");
        return;
    }
    up->state = SY_UP_HANDSHAKING;
    sy_upstream_read_start(up);
    up_handshake_step(up);
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
    uv_tcp_init(&up->worker->loop, &up->tcp);
    up->tcp.data = up;
    up->tcp_open = true;
    up->open_handles++;
    sy_metrics_gauge_add(up->worker->id, SY_GAUGE_UPSTREAM_CONNECTIONS, 1);
    uv_tcp_nodelay(&up->tcp, 1);
    up->state = SY_UP_CONNECTING;
    uv_timer_start(&up->timer, up_on_timer, up->connect_timeout_ms, 0);
    up->connect_req.data = up;
    int rc =
        uv_tcp_connect(&up->connect_req, &up->tcp, (const struct sockaddr *)&sa, up_on_connect);
    if (rc < 0)
        up_attempt_failed(up, uv_strerror(rc), false);
}

static void up_on_attempt_closed(uv_handle_t *h)
{
    sy_upstream_t *up = h->data;
    up->open_handles--;
    if (up->state == SY_UP_CLOSING || !up->client) {
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
    if (up->attempt + 1 < up->plan.count && up->client) {
        up->attempt++;
        sy_resolver_count_moved(up->plan.entry);
        up->state = SY_UP_RESOLVING; /* between two addresses */
        uv_timer_stop(&up->timer);
        up->tcp_open = false;
        sy_metrics_gauge_add(up->worker->id, SY_GAUGE_UPSTREAM_CONNECTIONS, -1);
        uv_close((uv_handle_t *)&up->tcp, up_on_attempt_closed);
        return;
    }
    if (timed_out) {
        sy_metrics_destination_error(up->worker->id, up_destination(up), SY_UPSTREAM_ERR_TIMEOUT);
        up_fail(up, 502, "upstream connect timed out", SY_UPSTREAM_ERR_TIMEOUT);
    } else {
        sy_metrics_destination_error(up->worker->id, up_destination(up), SY_UPSTREAM_ERR_CONNECT);
        up_fail(up, 502, "upstream connection failed", SY_UPSTREAM_ERR_CONNECT);
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
    uv_timer_stop(&up->timer);
    up->state = SY_UP_ACTIVE;
    if (up->client)
        sy_client_on_upstream_connected(up->client);
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
        sy_metrics_destination_error(up->worker->id, up_destination(up),
                                     refused ? SY_UPSTREAM_ERR_ADDRESS : SY_UPSTREAM_ERR_RESOLVE);
        up_fail(up, 502,
                refused ? "upstream address refused" : "upstream host could not be resolved",
                refused ? SY_UPSTREAM_ERR_ADDRESS : SY_UPSTREAM_ERR_RESOLVE);
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
            sy_metrics_destination_error(up->worker->id, up_destination(up),
                                         SY_UPSTREAM_ERR_ADDRESS);
            up_fail(up, 502, "upstream address refused", SY_UPSTREAM_ERR_ADDRESS);
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

void sy_upstream_acquire(sy_client_t *c, const sy_forward_target_t *dest,
                         uint32_t connect_timeout_ms, bool fresh)
{
    sy_worker_t *w = c->worker;
    /* Only forward: a request still running on an older snapshot (a
     * retry) must not sweep the newer one's keys. */
    if (c->rq->snap->generation > w->pool_generation) {
        w->pool_generation = c->rq->snap->generation;
        pool_sweep(w, c->rq->snap);
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
        uv_timer_stop(&up->timer);
        up->state = SY_UP_ACTIVE;
        up->reused = true;
        up->client = c;
        up->dest = dest;
        c->up = up;
        sy_client_on_upstream_connected(c);
        return;
    }
    if (!e)
        e = pool_create(w, dest);
    sy_upstream_t *up = e ? calloc(1, sizeof *up) : NULL;
    if (!up) {
        sy_client_on_upstream_failed(c, 502, "out of memory", SY_UPSTREAM_ERR_CONNECT);
        return;
    }
    up->worker = w;
    up->client = c;
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
    uv_timer_init(&w->loop, &up->timer);
    up->timer.data = up;
    up->open_handles = 1;
    c->up = up;
    up->state = SY_UP_RESOLVING;
    uv_timer_start(&up->timer, up_on_timer, connect_timeout_ms, 0);

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

void sy_upstream_release(sy_upstream_t *up, bool reusable, uint32_t idle_ms)
{
    sy_worker_t *w = up->worker;
    up->client = NULL;
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
    uv_timer_start(&up->timer, up_on_timer, idle_ms, 0);
    sy_upstream_read_start(up);
}

void sy_pool_close_all(sy_worker_t *w)
{
    for (sy_pool_entry_t *e = w->pool; e; e = e->next)
        while (e->idle)
            sy_upstream_close(e->idle);
}
