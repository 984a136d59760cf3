/*
 * upstream.c: connections to destinations and the per-worker keep-alive
 * pool.
 *
 * A new connection resolves its host on libuv's thread pool (the worker
 * never blocks), then checks EVERY resolved address against the address
 * guard before connecting: a DNS answer that includes a metadata or
 * link-local address refuses the whole destination rather than skipping to
 * the next address, because such an answer is itself a sign of an attack.
 * The guard runs on each new connection, so a DNS change can't slip a bad
 * address in later.
 *
 * Idle pooled connections keep a read posted: any byte or EOF on an idle
 * connection means the server closed it or broke protocol, and it is
 * closed at once instead of being handed to the next request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "net/addr.h"
#include "proxy/proxy.h"

#define SY_POOL_MAX_IDLE_PER_KEY 512

static void up_maybe_free(sy_upstream_t *up)
{
    if (up->open_handles == 0 && !up->resolving)
        free(up);
}

static void up_on_handle_closed(uv_handle_t *h)
{
    sy_upstream_t *up = h->data;
    up->open_handles--;
    up_maybe_free(up);
}

static void pool_unlink(sy_upstream_t *up)
{
    sy_pool_entry_t *e = up->pool_entry;
    if (!e)
        return;
    for (sy_upstream_t **p = &e->idle; *p; p = &(*p)->pool_next) {
        if (*p == up) {
            *p = up->pool_next;
            e->idle_count--;
            sy_metrics_gauge_add(up->worker->id, SY_GAUGE_POOL_IDLE, -1);
            break;
        }
    }
    up->pool_next = NULL;
    up->pool_entry = NULL;
}

void sy_upstream_close(sy_upstream_t *up)
{
    if (up->state == SY_UP_CLOSING)
        return;
    if (up->state == SY_UP_IDLE)
        pool_unlink(up);
    up->state = SY_UP_CLOSING;
    up->client = NULL;
    if (up->resolving)
        uv_cancel((uv_req_t *)&up->resolve_req);
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

static void up_on_timer(uv_timer_t *t)
{
    sy_upstream_t *up = t->data;
    switch (up->state) {
    case SY_UP_RESOLVING:
    case SY_UP_CONNECTING:
        sy_metrics_upstream_error(up->worker->id, SY_UPSTREAM_ERR_TIMEOUT);
        up_fail(up, 502, "upstream connect timed out", SY_UPSTREAM_ERR_TIMEOUT);
        break;
    case SY_UP_ACTIVE:
        sy_metrics_upstream_error(up->worker->id, SY_UPSTREAM_ERR_TIMEOUT);
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

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    sy_upstream_t *up = h->data;
    b->base = up->buf + up->end;
    b->len = SY_UPSTREAM_BUF - up->end;
}

static void up_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    sy_upstream_t *up = s->data;
    if (nread == 0)
        return;
    if (up->state == SY_UP_IDLE) {
        /* Data or EOF on an idle connection: the server closed it or
         * misbehaved; either way it can't be reused. */
        sy_upstream_close(up);
        return;
    }
    if (up->state != SY_UP_ACTIVE || !up->client)
        return;
    if (nread < 0) {
        up->eof = true;
        sy_upstream_read_stop(up);
    } else {
        up->end += (size_t)nread;
        up->bytes_received += (uint64_t)nread;
        if (up->end == SY_UPSTREAM_BUF)
            sy_upstream_read_stop(up);
    }
    sy_client_on_upstream_readable(up->client);
}

void sy_upstream_read_start(sy_upstream_t *up)
{
    if (up->reading || !up->tcp_open || up->state == SY_UP_CLOSING || up->eof)
        return;
    if (up->end == SY_UPSTREAM_BUF)
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

int sy_upstream_write(sy_upstream_t *up, const uv_buf_t *bufs, unsigned n)
{
    up->write_req.data = up;
    int rc = uv_write(&up->write_req, (uv_stream_t *)&up->tcp, bufs, n, up_on_write);
    if (rc == 0)
        up->writing = true;
    return rc;
}

static void up_on_connect(uv_connect_t *req, int status)
{
    sy_upstream_t *up = req->data;
    if (up->state == SY_UP_CLOSING)
        return;
    if (status < 0) {
        sy_log(SY_LOG_WARN, "upstream connect failed", "upstream", up->peer, "error",
               uv_strerror(status), NULL);
        sy_metrics_upstream_error(up->worker->id, SY_UPSTREAM_ERR_CONNECT);
        up_fail(up, 502, "upstream connection failed", SY_UPSTREAM_ERR_CONNECT);
        return;
    }
    uv_timer_stop(&up->timer);
    up->state = SY_UP_ACTIVE;
    if (up->client)
        sy_client_on_upstream_connected(up->client);
}

static void up_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sy_upstream_t *up = req->data;
    up->resolving = false;
    if (up->state == SY_UP_CLOSING) {
        uv_freeaddrinfo(res);
        up_maybe_free(up);
        return;
    }
    if (status < 0 || !res) {
        sy_log(SY_LOG_WARN, "upstream resolve failed", "host", up->connect_host, "error",
               uv_strerror(status), NULL);
        uv_freeaddrinfo(res);
        sy_metrics_upstream_error(up->worker->id, SY_UPSTREAM_ERR_RESOLVE);
        up_fail(up, 502, "upstream host could not be resolved", SY_UPSTREAM_ERR_RESOLVE);
        return;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const char *refusal = sy_addr_refusal(ai->ai_addr, up->allow_loopback);
        if (refusal) {
            char addr[64];
            sy_addr_format(ai->ai_addr, addr, sizeof addr);
            sy_log(SY_LOG_ERROR, "upstream address refused", "host", up->connect_host, "address",
                   addr, "reason", refusal, NULL);
            uv_freeaddrinfo(res);
            sy_metrics_upstream_error(up->worker->id, SY_UPSTREAM_ERR_ADDRESS);
            up_fail(up, 502, "upstream address refused", SY_UPSTREAM_ERR_ADDRESS);
            return;
        }
    }
    sy_addr_format(res->ai_addr, up->peer, sizeof up->peer);
    uv_tcp_init(&up->worker->loop, &up->tcp);
    up->tcp.data = up;
    up->tcp_open = true;
    up->open_handles++;
    sy_metrics_gauge_add(up->worker->id, SY_GAUGE_UPSTREAM_CONNECTIONS, 1);
    uv_tcp_nodelay(&up->tcp, 1);
    up->state = SY_UP_CONNECTING;
    up->connect_req.data = up;
    int rc = uv_tcp_connect(&up->connect_req, &up->tcp, res->ai_addr, up_on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        sy_metrics_upstream_error(up->worker->id, SY_UPSTREAM_ERR_CONNECT);
        up_fail(up, 502, "upstream connection failed", SY_UPSTREAM_ERR_CONNECT);
    }
}

static sy_pool_entry_t *pool_entry(sy_worker_t *w, const char *key, bool create)
{
    for (sy_pool_entry_t *e = w->pool; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    if (!create)
        return NULL;
    sy_pool_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->next = w->pool;
    w->pool = e;
    return e;
}

void sy_upstream_acquire(sy_client_t *c, const char *key, const char *host, uint16_t port,
                         bool allow_loopback, uint32_t connect_timeout_ms)
{
    sy_worker_t *w = c->worker;
    sy_pool_entry_t *e = c->retries == 0 ? pool_entry(w, key, false) : NULL;
    if (e && e->idle) {
        sy_upstream_t *up = e->idle;
        pool_unlink(up);
        uv_timer_stop(&up->timer);
        up->state = SY_UP_ACTIVE;
        up->reused = true;
        up->client = c;
        c->up = up;
        sy_client_on_upstream_connected(c);
        return;
    }
    sy_upstream_t *up = calloc(1, sizeof *up);
    if (!up) {
        sy_client_on_upstream_failed(c, 502, "out of memory", SY_UPSTREAM_ERR_CONNECT);
        return;
    }
    up->worker = w;
    up->client = c;
    snprintf(up->key, sizeof up->key, "%s", key);
    snprintf(up->connect_host, sizeof up->connect_host, "%s", host);
    snprintf(up->peer, sizeof up->peer, "%s", host);
    up->connect_port = port;
    up->allow_loopback = allow_loopback;
    uv_timer_init(&w->loop, &up->timer);
    up->timer.data = up;
    up->open_handles = 1;
    c->up = up;
    up->state = SY_UP_RESOLVING;
    uv_timer_start(&up->timer, up_on_timer, connect_timeout_ms, 0);

    /* IPv6 literals arrive bracketed from URLs; getaddrinfo wants them bare. */
    char name[256];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
        snprintf(name, sizeof name, "%.*s", (int)(hl - 2), host + 1);
    else
        snprintf(name, sizeof name, "%s", host);
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    up->resolve_req.data = up;
    up->resolving = true;
    int rc = uv_getaddrinfo(&w->loop, &up->resolve_req, up_on_resolved, name, service, &hints);
    if (rc < 0) {
        up->resolving = false;
        up_fail(up, 502, "upstream host could not be resolved", SY_UPSTREAM_ERR_RESOLVE);
    }
}

void sy_upstream_release(sy_upstream_t *up, bool reusable, uint32_t idle_ms)
{
    sy_worker_t *w = up->worker;
    up->client = NULL;
    sy_pool_entry_t *e = reusable && !w->draining ? pool_entry(w, up->key, true) : NULL;
    if (!e || e->idle_count >= SY_POOL_MAX_IDLE_PER_KEY || up->state != SY_UP_ACTIVE) {
        sy_upstream_close(up);
        return;
    }
    up->state = SY_UP_IDLE;
    up->pos = up->end = 0;
    up->bytes_received = 0;
    up->reused = false;
    up->pool_entry = e;
    up->pool_next = e->idle;
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
