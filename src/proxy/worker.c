/*
 * worker.c: the data-plane threads. Each worker is one libuv loop with its
 * own listening socket per address, all bound with SO_REUSEPORT so the
 * kernel spreads connections across workers with no shared accept lock and
 * no cross-thread hand-off. A worker touches shared state in exactly two
 * places: the snapshot (when its generation changed) and its own metrics
 * slots.
 *
 * Draining: main wakes each worker through its uv_async. The worker closes
 * its listeners (new connections are refused by the kernel once every
 * worker has closed), closes idle keep-alive connections, and lets
 * in-flight requests finish with Connection: close; the loop ends when its
 * last client is gone.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/proxy.h"
#include "proxy/server.h"

static sy_worker_t *workers;
static int worker_count;

bool sy_parse_listen(const char *text, struct sockaddr_storage *out, sy_error_t *err)
{
    char host[128];
    const char *port_str;
    memset(out, 0, sizeof *out);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            goto bad;
        snprintf(host, sizeof host, "%.*s", (int)(close - text - 1), text + 1);
        port_str = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            goto bad;
        snprintf(host, sizeof host, "%.*s", (int)(colon - text), text);
        port_str = colon + 1;
    }
    char *end;
    long port = strtol(port_str, &end, 10);
    if (*port_str == '\0' || *end != '\0' || port < 0 || port > 65535)
        goto bad;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0)
        return true;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0)
        return true;
bad:
    sy_error_set(err, "listen address '%s': expected ADDR:PORT or [IPv6]:PORT", text);
    return false;
}

void sy_worker_refresh_snapshot(sy_worker_t *w)
{
    uint64_t generation = sy_snapshot_current_generation();
    if (w->snap && generation == w->snap_generation)
        return;
    sy_snapshot_t *s = sy_snapshot_acquire();
    if (!s)
        return;
    if (w->snap)
        sy_snapshot_unref(w->snap);
    w->snap = s;
    w->snap_generation = generation;
}

static void on_connection(uv_stream_t *listener, int status)
{
    sy_worker_t *w = listener->data;
    if (status < 0 || w->draining)
        return;
    size_t index = (size_t)((uv_tcp_t *)listener - w->listeners);
    sy_client_accept(w, listener, w->listener_tls[index]);
}

static void on_closed_noop(uv_handle_t *h) {}

static void close_listeners(sy_worker_t *w)
{
    for (size_t i = 0; i < w->listener_count; i++)
        if (!uv_is_closing((uv_handle_t *)&w->listeners[i]))
            uv_close((uv_handle_t *)&w->listeners[i], on_closed_noop);
}

static void on_wakeup(uv_async_t *a)
{
    sy_worker_t *w = a->data;
    if (!w->draining && !w->stopping)
        return;
    close_listeners(w);
    if (w->stopping) {
        /* Past the drain timeout: whatever is left is cut off. Only now is
         * the wakeup handle closed; main sends nothing after `stopping`. */
        sy_client_close_all(w);
        if (!uv_is_closing((uv_handle_t *)&w->wakeup))
            uv_close((uv_handle_t *)&w->wakeup, on_closed_noop);
    } else {
        sy_client_drain_idle(w);
    }
    sy_pool_close_all(w);
}

static void worker_main(void *arg)
{
    sy_worker_t *w = arg;
    sy_error_t rerr;
    w->resolver = sy_resolver_new(&w->loop, &rerr);
    if (!w->resolver)
        sy_log(SY_LOG_ERROR, "DNS resolver could not start; upstream names will not resolve",
               "error", rerr.message, NULL);
    for (size_t i = 0; i < w->listener_count; i++) {
        uv_tcp_init(&w->loop, &w->listeners[i]);
        w->listeners[i].data = w;
        int rc = uv_tcp_open(&w->listeners[i], w->listener_fds[i]);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&w->listeners[i], 1024, on_connection);
        if (rc != 0)
            sy_log(SY_LOG_ERROR, "listen failed", "error", uv_strerror(rc), NULL);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    sy_resolver_close(w->resolver);
    w->resolver = NULL;
    /* Handles closed during the last iteration still need their callbacks. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (w->snap) {
        sy_snapshot_unref(w->snap);
        w->snap = NULL;
    }
    sy_auth_thread_cleanup();
    sy_pool_entry_t *next;
    for (sy_pool_entry_t *e = w->pool; e; e = next) {
        next = e->next;
        sy_tls_session_cache_clear(&e->sessions);
        free(e);
    }
    w->pool = NULL;
    uv_loop_close(&w->loop);
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static int bind_listener(const struct sockaddr_storage *ss, sy_error_t *err, const char *text)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sy_error_set(err, "listen %s: socket: %s", text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* One socket per worker on the same address: the kernel balances. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        sy_error_set(err, "listen %s: SO_REUSEPORT: %s", text, strerror(errno));
        close(fd);
        return -1;
    }
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, addr_len(ss)) != 0) {
        sy_error_set(err, "listen %s: %s", text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* SO_REUSEPORT would let us bind a port another process already serves and
 * silently split its traffic. A plain bind first proves the port is free. */
static bool probe_free(const struct sockaddr_storage *ss, const char *text, sy_error_t *err)
{
    struct sockaddr_storage probe = *ss;
    bool any_port = (ss->ss_family == AF_INET && ((struct sockaddr_in *)ss)->sin_port == 0) ||
                    (ss->ss_family == AF_INET6 && ((struct sockaddr_in6 *)ss)->sin6_port == 0);
    if (any_port)
        return true;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true; /* the real bind reports it */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (const struct sockaddr *)&probe, addr_len(ss));
    int saved = errno;
    close(fd);
    if (rc != 0 && saved == EADDRINUSE) {
        sy_error_set(err, "listen %s: address already in use", text);
        return false;
    }
    return true;
}

bool sy_server_start(const sy_server_config_t *cfg, sy_error_t *err)
{
    worker_count = cfg->workers;
    workers = calloc((size_t)worker_count, sizeof *workers);
    if (!workers) {
        sy_error_set(err, "out of memory");
        return false;
    }
    /* Plain listeners first, then TLS ones: listener_tls tells them apart. */
    struct sockaddr_storage addrs[2 * SY_MAX_LISTEN];
    const char *texts[2 * SY_MAX_LISTEN];
    size_t count = 0;
    for (size_t i = 0; i < cfg->listen_count; i++)
        texts[count++] = cfg->listen[i];
    for (size_t i = 0; i < cfg->tls_listen_count; i++)
        texts[count++] = cfg->tls_listen[i];
    for (size_t i = 0; i < count; i++) {
        if (!sy_parse_listen(texts[i], &addrs[i], err))
            return false;
        if (!probe_free(&addrs[i], texts[i], err))
            return false;
    }
    unsigned char rnd[4] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0x5a, sizeof rnd);
    for (int i = 0; i < worker_count; i++) {
        sy_worker_t *w = &workers[i];
        w->id = i;
        snprintf(w->id_prefix, sizeof w->id_prefix, "%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2],
                 rnd[3]);
        for (size_t k = 0; k < count; k++) {
            int fd = bind_listener(&addrs[k], err, texts[k]);
            if (fd < 0)
                return false;
            w->listener_tls[w->listener_count] = k >= cfg->listen_count;
            w->listener_fds[w->listener_count++] = fd;
        }
        if (uv_loop_init(&w->loop) != 0) {
            sy_error_set(err, "event loop init failed");
            return false;
        }
        uv_async_init(&w->loop, &w->wakeup, on_wakeup);
        w->wakeup.data = w;
    }
    for (int i = 0; i < worker_count; i++) {
        if (uv_thread_create(&workers[i].thread, worker_main, &workers[i]) != 0) {
            sy_error_set(err, "cannot start worker thread %d", i);
            return false;
        }
    }
    return true;
}

void sy_server_drain(double timeout_s)
{
    for (int i = 0; i < worker_count; i++) {
        workers[i].draining = true;
        uv_async_send(&workers[i].wakeup);
    }
    /* Wait for the workers to go idle, up to the drain timeout. */
    uint64_t deadline = sy_now_ms() + (uint64_t)(timeout_s * 1000.0);
    for (;;) {
        size_t busy = 0;
        for (int i = 0; i < worker_count; i++)
            busy += __atomic_load_n(&workers[i].client_count, __ATOMIC_RELAXED);
        if (busy == 0 || sy_now_ms() >= deadline)
            break;
        usleep(20000);
        for (int i = 0; i < worker_count; i++)
            uv_async_send(&workers[i].wakeup);
    }
    for (int i = 0; i < worker_count; i++) {
        workers[i].stopping = true;
        uv_async_send(&workers[i].wakeup);
    }
    for (int i = 0; i < worker_count; i++)
        uv_thread_join(&workers[i].thread);
    free(workers);
    workers = NULL;
}
