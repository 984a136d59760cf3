/*
 * stream.c: one read/write/half-close/close path for TCP and TLS streams
 * (see stream.h). TLS ciphertext never sits in a per-connection buffer:
 * what is read is fed to OpenSSL at once and what it produces is flushed
 * with ordinary writes (tls.c).
 */
#include "net/stream.h"

#include <stdlib.h>

size_t sy_stream_read_room(const sy_stream_t *s)
{
    return s->tls ? 2 * SY_TLS_READ_CHUNK : 1;
}

bool sy_stream_tls_server(sy_stream_t *s)
{
    s->tls = calloc(1, sizeof *s->tls);
    if (!s->tls || !sy_tls_server_init(s->tls, (uv_stream_t *)&s->tcp)) {
        free(s->tls);
        s->tls = NULL;
        return false;
    }
    return true;
}

bool sy_stream_tls_client(sy_stream_t *s, SSL_CTX *ctx, const char *sni, const char *verify_check,
                          sy_tls_session_cache_t *sessions, const char **why)
{
    s->tls = calloc(1, sizeof *s->tls);
    if (!s->tls || !sy_tls_init(s->tls, ctx, (uv_stream_t *)&s->tcp, true)) {
        free(s->tls);
        s->tls = NULL;
        *why = "out of memory";
        return false;
    }
    if (!sy_tls_client_setup(s->tls, sni, verify_check, sessions)) {
        *why = "invalid verify name";
        return false; /* s->tls stays: freed with the stream */
    }
    return true;
}

void sy_stream_free_tls(sy_stream_t *s)
{
    if (!s->tls)
        return;
    sy_tls_free(s->tls);
    free(s->tls);
    s->tls = NULL;
}

int sy_stream_handshake(sy_stream_t *s, const char *in, size_t len)
{
    if (len)
        sy_tls_feed(s->tls, in, len);
    int rc = sy_tls_handshake(s->tls);
    sy_tls_flush(s->tls, NULL, NULL);
    return rc;
}

bool sy_stream_handshake_done(const sy_stream_t *s)
{
    return !s->tls || s->tls->handshake_done;
}

ssize_t sy_stream_decode(sy_stream_t *s, ssize_t nread, const uv_buf_t *b, char *out, size_t cap)
{
    if (!s->tls || nread < 0)
        return nread;
    if (nread > 0)
        sy_tls_feed(s->tls, b->base, (size_t)nread);
    bool eof = false;
    ssize_t n = sy_tls_read(s->tls, out, cap, &eof);
    sy_tls_flush(s->tls, NULL, NULL); /* post-handshake replies, if any */
    if (n < 0 || (n == 0 && eof))
        return UV_EOF;
    return n;
}

bool sy_stream_peer_closed(const sy_stream_t *s)
{
    return !s->tls || sy_tls_peer_closed(s->tls);
}

/* A TLS write is done when the ciphertext it produced is out. */
static void on_tls_written(void *arg, int status)
{
    uv_write_t *req = arg;
    req->cb(req, status);
}

struct sy_stream_done {
    uv_write_t *req;
    uv_write_cb cb;
    sy_stream_t *stream;
};

static void completions_run(uv_check_t *check)
{
    sy_stream_completions_t *q = check->data;
    /* A callback may write again and append: the loop sees those too. */
    for (size_t i = 0; i < q->count; i++) {
        struct sy_stream_done d = q->items[i];
        bool closing = uv_is_closing((uv_handle_t *)&d.stream->tcp);
        d.cb(d.req, closing ? UV_ECANCELED : 0);
    }
    q->count = 0;
    uv_check_stop(&q->check);
    uv_idle_stop(&q->idle);
}

static void completions_idle(uv_idle_t *idle)
{
    (void)idle; /* only there so the poll does not block */
}

int sy_stream_completions_init(uv_loop_t *loop, sy_stream_completions_t *q)
{
    *q = (sy_stream_completions_t){0};
    int rc = uv_check_init(loop, &q->check);
    if (rc == 0)
        rc = uv_idle_init(loop, &q->idle);
    if (rc != 0)
        return rc;
    q->check.data = q;
    return 0;
}

void sy_stream_completions_free(sy_stream_completions_t *q)
{
    free(q->items);
    q->items = NULL;
    q->count = q->cap = 0;
}

/* Room for one more completion; false when out of memory. */
static bool completions_reserve(sy_stream_completions_t *q)
{
    if (q->count < q->cap)
        return true;
    size_t cap = q->cap ? 2 * q->cap : 64;
    struct sy_stream_done *items = realloc(q->items, cap * sizeof *items);
    if (!items)
        return false;
    q->items = items;
    q->cap = cap;
    return true;
}

/* After completions_reserve: req's callback runs from the check phase. */
static void completions_push(sy_stream_completions_t *q, sy_stream_t *s, uv_write_t *req,
                             uv_write_cb cb)
{
    q->items[q->count++] = (struct sy_stream_done){req, cb, s};
    uv_check_start(&q->check, completions_run);
    uv_idle_start(&q->idle, completions_idle);
}

/* Plain TCP: what the socket takes now goes out with one write(v) and no
 * epoll change; only a remainder is queued with libuv. */
static int tcp_write(sy_stream_t *s, sy_stream_completions_t *q, uv_write_t *req,
                     const uv_buf_t *bufs, unsigned n, uv_write_cb cb)
{
    uv_buf_t rest[8];
    if (n > sizeof rest / sizeof rest[0] || !completions_reserve(q))
        return uv_write(req, (uv_stream_t *)&s->tcp, bufs, n, cb);
    int sent = uv_try_write((uv_stream_t *)&s->tcp, bufs, n);
    if (sent < 0) /* EAGAIN, or an error uv_write reports the usual way */
        return uv_write(req, (uv_stream_t *)&s->tcp, bufs, n, cb);
    size_t skip = (size_t)sent;
    unsigned i = 0;
    while (i < n && skip >= bufs[i].len)
        skip -= bufs[i++].len;
    if (i == n) {
        completions_push(q, s, req, cb);
        return 0;
    }
    for (unsigned k = i; k < n; k++)
        rest[k - i] = bufs[k];
    rest[0].base += skip;
    rest[0].len -= skip;
    return uv_write(req, (uv_stream_t *)&s->tcp, rest, n - i, cb);
}

int sy_stream_write(sy_stream_t *s, sy_stream_completions_t *q, uv_write_t *req,
                    const uv_buf_t *bufs, unsigned n, uv_write_cb cb)
{
    if (!s->tls)
        return tcp_write(s, q, req, bufs, n, cb);
    if (!completions_reserve(q))
        return UV_ENOMEM;
    if (!sy_tls_write(s->tls, bufs, n))
        return UV_EPROTO;
    req->cb = cb; /* req itself never goes to libuv here */
    int rc = sy_tls_flush(s->tls, on_tls_written, req);
    if (rc != 1)
        return rc;
    completions_push(q, s, req, cb);
    return 0;
}

void sy_stream_try_write(sy_stream_t *s, const uv_buf_t *b)
{
    if (!s->tls) {
        uv_try_write((uv_stream_t *)&s->tcp, b, 1);
        return;
    }
    if (sy_tls_write(s->tls, b, 1))
        sy_tls_flush(s->tls, NULL, NULL);
}

int sy_stream_shutdown(sy_stream_t *s, uv_shutdown_t *req, uv_shutdown_cb cb)
{
    if (s->tls) {
        sy_tls_close_notify(s->tls);
        sy_tls_flush(s->tls, NULL, NULL);
    }
    return uv_shutdown(req, (uv_stream_t *)&s->tcp, cb);
}

void sy_stream_shed(sy_stream_t *s)
{
    if (s->tls)
        sy_tls_shed(s->tls);
}

int sy_stream_read_start(sy_stream_t *s, uv_alloc_cb alloc, uv_read_cb read)
{
    return uv_read_start((uv_stream_t *)&s->tcp, alloc, read);
}

void sy_stream_read_stop(sy_stream_t *s)
{
    uv_read_stop((uv_stream_t *)&s->tcp);
}

void sy_stream_close(sy_stream_t *s, uv_close_cb cb)
{
    uv_close((uv_handle_t *)&s->tcp, cb);
}
