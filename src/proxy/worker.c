/*
 * worker.c: the data-plane threads. Each worker is one libuv loop with its
 * own listening socket per address, all bound with SO_REUSEPORT so the
 * kernel spreads connections across workers with no shared accept lock and
 * no cross-thread hand-off. A worker touches shared state in exactly two
 * places: the snapshot (when its generation changed) and its own metrics
 * slots.
 *
 * Accepting is the worker's own (accept4 on a uv_poll_t per listening
 * socket), so it can pause: at its connection cap, derived from the fd
 * limit (sy_server_plan_limits), and after EMFILE & co. Paused, new
 * connections wait in the kernel backlog; nothing spins.
 *
 * A heartbeat timer stamps the time into a slot the admin thread reads for
 * /healthz: a loop stuck in one callback stops stamping.
 *
 * Draining: main stores the request (drain, then stop) in an atomic and
 * wakes each worker through its uv_async; the worker copies it into its own
 * `draining`/`stopping`, which only its thread reads. It closes its
 * listeners (new connections are refused by the kernel once every worker
 * has closed), closes idle keep-alive connections, and lets in-flight
 * requests finish with Connection: close; on stop it cuts what is left and
 * its loop ends.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "auth/auth.h"
#include "core/metrics.h"
#include "proxy/client.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "proxy/server.h"

/* Connections the kernel completes for a worker that has not accepted them
 * yet (paused at its cap, or between turns of its loop). */
#define SY_LISTEN_BACKLOG 1024

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

/* ---- accepting ----------------------------------------------------------- *
 *
 * The worker owns accepting instead of uv_listen: libuv cannot pause a
 * listener, and its EMFILE fallback (a spare fd it closes to accept and
 * drop the connection) fails once another thread takes that fd, leaving
 * the loop spinning in accept4. Here every listening socket has a uv_poll_t
 * that is stopped while the worker is at its connection cap or out of fds,
 * so waiting connections stay in the kernel backlog and nothing spins:
 * accepting resumes when a client closes, or after a back-off for an fd
 * shortage caused elsewhere in the process. */

/* Accepts per readable event and listener, so a flood of new connections
 * cannot starve the ones already open (the poll is level-triggered: what
 * is left is taken on the next turn of the loop). */
#define SY_ACCEPT_BATCH 64
#define SY_ACCEPT_BACKOFF_MIN_MS 50
#define SY_ACCEPT_BACKOFF_MAX_MS 1000
#define SY_PAUSE_LOG_INTERVAL_MS 10000

static void on_listener_readable(uv_poll_t *p, int status, int events);

static void listening_set(sy_worker_t *w, bool on)
{
    if (w->listening == on)
        return;
    for (size_t i = 0; i < w->listener_count; i++) {
        if (uv_is_closing((uv_handle_t *)&w->listeners[i]))
            continue;
        if (on)
            uv_poll_start(&w->listeners[i], UV_READABLE, on_listener_readable);
        else
            uv_poll_stop(&w->listeners[i]);
    }
    w->listening = on;
    sy_metrics_gauge_add(w->id, SY_GAUGE_ACCEPT_PAUSED, on ? -1 : 1);
}

static void pause_log(sy_worker_t *w, const char *why, const char *error)
{
    /* A worker can pause and resume once per connection at its cap: one
     * line per interval, saying how many pauses it stands for. */
    w->pauses_unlogged++;
    uint64_t now = sy_now_ms();
    if (w->pause_log_ms && now - w->pause_log_ms < SY_PAUSE_LOG_INTERVAL_MS)
        return;
    char id[16], cap[24], open[24], count[24];
    snprintf(id, sizeof id, "%d", w->id);
    snprintf(cap, sizeof cap, "%zu", w->max_clients);
    snprintf(open, sizeof open, "%zu", __atomic_load_n(&w->client_count, __ATOMIC_RELAXED));
    snprintf(count, sizeof count, "%llu", (unsigned long long)w->pauses_unlogged);
    const char *msg = "accepting paused; new connections wait in the kernel backlog";
    if (error)
        sy_log(SY_LOG_WARN, msg, SY_LOG_NUM("worker"), id, "reason", why, "error", error,
               SY_LOG_NUM("connections"), open, SY_LOG_NUM("cap"), cap, SY_LOG_NUM("pauses"), count,
               NULL);
    else
        sy_log(SY_LOG_WARN, msg, SY_LOG_NUM("worker"), id, "reason", why, SY_LOG_NUM("connections"),
               open, SY_LOG_NUM("cap"), cap, SY_LOG_NUM("pauses"), count, NULL);
    w->pause_log_ms = now;
    w->pauses_unlogged = 0;
}

static void pause_at_cap(sy_worker_t *w)
{
    listening_set(w, false);
    sy_metrics_accept_pause(w->id, SY_ACCEPT_PAUSE_CAP);
    size_t clients = __atomic_load_n(&w->client_count, __ATOMIC_RELAXED);
    sy_pool_trim(w, w->fd_budget > 2 * clients ? w->fd_budget - 2 * clients : 0);
    pause_log(w, "connection cap reached", NULL);
}

static void on_accept_retry(uv_timer_t *t)
{
    sy_worker_t *w = t->data;
    w->out_of_fds = false;
    sy_worker_client_closed(w); /* resumes unless at the cap */
}

static void pause_out_of_fds(sy_worker_t *w, int error)
{
    listening_set(w, false);
    w->out_of_fds = true;
    bool fds = error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
    sy_metrics_accept_pause(w->id, fds ? SY_ACCEPT_PAUSE_NO_FDS : SY_ACCEPT_PAUSE_ERROR);
    /* Our own idle upstream connections are the fds we can give back. */
    if (fds)
        sy_pool_trim(w, 0);
    pause_log(w, fds ? "out of file descriptors" : "accept failed", strerror(error));
    /* Another thread may hold the fds (a config fetch, the admin plane), so
     * a close on this worker may never come: retry on a timer too. */
    uint32_t ms = w->accept_backoff_ms ? w->accept_backoff_ms : SY_ACCEPT_BACKOFF_MIN_MS;
    w->accept_backoff_ms = ms * 2 > SY_ACCEPT_BACKOFF_MAX_MS ? SY_ACCEPT_BACKOFF_MAX_MS : ms * 2;
    uv_timer_start(&w->accept_retry, on_accept_retry, ms, 0);
}

void sy_worker_client_closed(sy_worker_t *w)
{
    if (w->listening || w->draining)
        return;
    if (__atomic_load_n(&w->client_count, __ATOMIC_RELAXED) >= w->max_clients)
        return;
    /* A close freed an fd: worth trying even during an fd back-off. */
    if (w->out_of_fds) {
        uv_timer_stop(&w->accept_retry);
        w->out_of_fds = false;
    }
    listening_set(w, true);
}

static void on_listener_readable(uv_poll_t *p, int status, int events)
{
    sy_worker_t *w = p->data;
    size_t index = (size_t)(p - w->listeners);
    if (w->draining || !w->listening)
        return;
    if (status < 0) {
        pause_out_of_fds(w, -status);
        return;
    }
    for (int n = 0; n < SY_ACCEPT_BATCH; n++) {
        if (__atomic_load_n(&w->client_count, __ATOMIC_RELAXED) >= w->max_clients) {
            pause_at_cap(w);
            return;
        }
        int fd = accept4(w->listener_fds[index], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case EPERM: /* refused by a firewall rule: that connection is gone */
                continue;
            default:
                /* EMFILE & co leave the connection in the backlog, so the
                 * socket stays readable: without a pause this would spin. */
                pause_out_of_fds(w, errno);
                return;
            }
        }
        w->accept_backoff_ms = 0;
        sy_client_accept(w, fd, w->listener_tls[index]);
        if (w->draining || !w->listening)
            return;
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    sy_worker_t *w = h->data;
    size_t index = (size_t)((uv_poll_t *)h - w->listeners);
    if (w->listener_fds[index] >= 0) {
        close(w->listener_fds[index]);
        w->listener_fds[index] = -1;
    }
}

static void on_closed_noop(uv_handle_t *h) {}

static void close_listeners(sy_worker_t *w)
{
    if (!w->listening) /* paused: count it as resumed, the gauge nets to 0 */
        sy_metrics_gauge_add(w->id, SY_GAUGE_ACCEPT_PAUSED, -1);
    w->listening = true; /* no pause from here on */
    for (size_t i = 0; i < w->listener_count; i++)
        if (!uv_is_closing((uv_handle_t *)&w->listeners[i]))
            uv_close((uv_handle_t *)&w->listeners[i], on_listener_closed);
    uv_timer_stop(&w->accept_retry);
    w->out_of_fds = false;
}

/* ---- heartbeat ------------------------------------------------------------ */

/* Last beat per worker (sy_now_ms), 0 while a worker is not running. Lives
 * outside the worker array so the admin thread may read it at any time. */
static _Atomic uint64_t heartbeats[SY_MAX_WORKERS];

static void on_heartbeat(uv_timer_t *t)
{
    sy_worker_t *w = t->data;
    atomic_store_explicit(&heartbeats[w->id], sy_now_ms(), memory_order_relaxed);
}

int sy_server_stalest(const uint64_t *beats, int n, uint64_t now_ms, uint64_t stall_ms,
                      uint64_t *silent_ms)
{
    int worst = -1;
    uint64_t worst_silent = 0;
    for (int i = 0; i < n; i++) {
        if (beats[i] == 0 || beats[i] >= now_ms)
            continue;
        uint64_t silent = now_ms - beats[i];
        if (silent > stall_ms && silent > worst_silent) {
            worst = i;
            worst_silent = silent;
        }
    }
    if (worst >= 0 && silent_ms)
        *silent_ms = worst_silent;
    return worst;
}

bool sy_server_find_stalled(uint64_t now_ms, uint64_t stall_ms, int *worker, uint64_t *silent_ms)
{
    uint64_t beats[SY_MAX_WORKERS];
    for (int i = 0; i < SY_MAX_WORKERS; i++)
        beats[i] = atomic_load_explicit(&heartbeats[i], memory_order_relaxed);
    int i = sy_server_stalest(beats, SY_MAX_WORKERS, now_ms, stall_ms, silent_ms);
    if (i < 0)
        return false;
    if (worker)
        *worker = i;
    return true;
}

/* ---- drain and stop --------------------------------------------------------- */

static void on_wakeup(uv_async_t *a)
{
    sy_worker_t *w = a->data;
    int request = atomic_load_explicit(&w->request, memory_order_acquire);
    if (request == SY_WORKER_RUN)
        return;
    w->draining = true;
    if (request == SY_WORKER_STOP)
        w->stopping = true;
    close_listeners(w);
    if (w->stopping) {
        /* Past the drain timeout: whatever is left is cut off. Only now are
         * the wakeup handle and the timers closed (the loop then ends);
         * main sends nothing after asking to stop. */
        sy_client_close_all(w);
        uv_close((uv_handle_t *)&w->accept_retry, on_closed_noop);
        uv_close((uv_handle_t *)&w->heartbeat, on_closed_noop);
        if (!uv_is_closing((uv_handle_t *)&w->wakeup))
            uv_close((uv_handle_t *)&w->wakeup, on_closed_noop);
    } else {
        sy_client_drain_idle(w);
    }
    sy_pool_close_all(w);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void worker_main(void *arg)
{
    sy_worker_t *w = arg;
    sy_error_t rerr;
    w->resolver = sy_resolver_new(&w->loop, &rerr);
    if (!w->resolver)
        sy_log(SY_LOG_ERROR, "DNS resolver could not start; upstream names will not resolve",
               "error", rerr.message, NULL);
    /* Named for operators (top -H, /proc/PID/task/TID/comm) and tests. */
    char name[16];
    snprintf(name, sizeof name, "sy-worker-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    size_t kept = 0;
    for (size_t i = 0; i < w->listener_count; i++) {
        int rc = uv_poll_init(&w->loop, &w->listeners[kept], w->listener_fds[i]);
        if (rc != 0) {
            sy_log(SY_LOG_ERROR, "listen failed", "error", uv_strerror(rc), NULL);
            close(w->listener_fds[i]);
            continue;
        }
        w->listener_fds[kept] = w->listener_fds[i];
        w->listener_tls[kept] = w->listener_tls[i];
        w->listeners[kept].data = w;
        uv_poll_start(&w->listeners[kept], UV_READABLE, on_listener_readable);
        kept++;
    }
    w->listener_count = kept;
    w->listening = true;
    uv_timer_init(&w->loop, &w->accept_retry);
    w->accept_retry.data = w;
    uv_unref((uv_handle_t *)&w->accept_retry);
    uv_timer_init(&w->loop, &w->heartbeat);
    w->heartbeat.data = w;
    uv_timer_start(&w->heartbeat, on_heartbeat, SY_HEARTBEAT_MS, SY_HEARTBEAT_MS);
    uv_unref((uv_handle_t *)&w->heartbeat);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    sy_resolver_close(w->resolver);
    w->resolver = NULL;
    /* Handles closed during the last iteration still need their callbacks;
     * anything still open (it should not be) is closed so the loop can go. */
    uv_walk(&w->loop, close_leftover, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    atomic_store_explicit(&heartbeats[w->id], 0, memory_order_relaxed);
    /* The stop may have been seen through an earlier wakeup, before main's
     * own uv_async_send for it returned; that send writes to the loop's
     * eventfd, so the loop is closed only after it (a few instructions). */
    while (!atomic_load_explicit(&w->stop_sent, memory_order_acquire))
        sched_yield();
    if (w->snap) {
        sy_snapshot_unref(w->snap);
        w->snap = NULL;
    }
    sy_auth_thread_cleanup();
    sy_tls_thread_cleanup();
    sy_pool_free_all(w);
    /* Every connection is gone: what it borrowed is back here. */
    sy_client_free_requests(w);
    sy_bufpool_clear(&w->buffers);
    sy_stream_completions_free(&w->completions);
    free(w->scratch);
    free(w->tls_scratch);
    w->scratch = w->tls_scratch = NULL;
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

sy_server_limits_t sy_server_plan_limits(uint64_t fd_limit, int threads, size_t listeners)
{
    sy_server_limits_t l = {.fd_limit = fd_limit};
    if (threads < 1)
        threads = 1;
    l.reserved = SY_FD_RESERVE_BASE + (uint64_t)threads * (listeners + SY_FD_RESERVE_PER_WORKER);
    uint64_t spare = fd_limit > l.reserved ? fd_limit - l.reserved : 0;
    l.worker_budget = spare / (uint64_t)threads;
    l.max_clients = l.worker_budget / 2;
    if (l.max_clients == 0) {
        l.too_low = true;
        l.max_clients = 1;
        l.worker_budget = 2;
    }
    return l;
}

static sy_server_limits_t limits;

sy_server_limits_t sy_server_limits(void)
{
    return limits;
}

static void u64_text(char out[24], uint64_t v)
{
    snprintf(out, 24, "%llu", (unsigned long long)v);
}

/* The fd limit decides the connection cap, so use all the kernel allows:
 * the soft limit (often 1024) goes up to the hard one. */
static uint64_t raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        sy_log(SY_LOG_WARN, "cannot read the file descriptor limit; assuming 1024", "error",
               strerror(errno), NULL);
        return 1024;
    }
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
        else
            sy_log(SY_LOG_WARN, "cannot raise the file descriptor limit to the hard limit", "error",
                   strerror(errno), NULL);
    }
    char soft_before[24], hard[24], soft[24];
    u64_text(soft_before, before == RLIM_INFINITY ? UINT64_MAX : (uint64_t)before);
    u64_text(hard, rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max);
    u64_text(soft, rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
    sy_log(SY_LOG_INFO, "file descriptor limit", SY_LOG_NUM("soft_at_start"), soft_before,
           SY_LOG_NUM("hard"), hard, SY_LOG_NUM("soft"), soft, NULL);
    /* RLIM_INFINITY would make the cap meaningless; the kernel never hands
     * out more than fs.nr_open anyway. */
    return rl.rlim_cur == RLIM_INFINITY ? 1048576 : (uint64_t)rl.rlim_cur;
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
    limits = sy_server_plan_limits(raise_fd_limit(), worker_count, count);
    char limit_text[24], reserved_text[24], budget_text[24], cap_text[24];
    u64_text(limit_text, limits.fd_limit);
    u64_text(reserved_text, limits.reserved);
    u64_text(budget_text, limits.worker_budget);
    u64_text(cap_text, limits.max_clients);
    sy_log(limits.too_low ? SY_LOG_WARN : SY_LOG_INFO,
           limits.too_low ? "file descriptor limit too low: one connection per worker; raise "
                            "ulimit -n (LimitNOFILE=, ECS ulimits nofile)"
                          : "connection cap per worker derived from the file descriptor limit",
           SY_LOG_NUM("fd_limit"), limit_text, SY_LOG_NUM("reserved"), reserved_text,
           SY_LOG_NUM("fds_per_worker"), budget_text, SY_LOG_NUM("max_connections_per_worker"),
           cap_text, NULL);
    sy_metrics_set_fd_limits(limits.fd_limit, limits.max_clients);
    unsigned char rnd[4] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0x5a, sizeof rnd);
    for (int i = 0; i < worker_count; i++) {
        sy_worker_t *w = &workers[i];
        w->id = i;
        w->max_clients = (size_t)limits.max_clients;
        w->fd_budget = (size_t)limits.worker_budget;
        atomic_init(&w->request, SY_WORKER_RUN);
        atomic_init(&w->stop_sent, false);
        sy_bufpool_init(&w->buffers, SY_WORKER_SPARE_BUFFERS);
        w->scratch = malloc(SY_WORKER_SCRATCH);
        w->tls_scratch = malloc(SY_TLS_READ_CHUNK);
        if (!w->scratch || !w->tls_scratch) {
            sy_error_set(err, "out of memory for worker %d's read buffers", i);
            return false;
        }
        snprintf(w->id_prefix, sizeof w->id_prefix, "%02x%02x%02x%02x-", rnd[0], rnd[1], rnd[2],
                 rnd[3]);
        for (size_t k = 0; k < count; k++) {
            int fd = bind_listener(&addrs[k], err, texts[k]);
            if (fd < 0)
                return false;
            /* The worker accepts itself (see "accepting" above); what it
             * has not taken yet waits here. */
            if (listen(fd, SY_LISTEN_BACKLOG) != 0) {
                sy_error_set(err, "listen %s: %s", texts[k], strerror(errno));
                close(fd);
                return false;
            }
            w->listener_tls[w->listener_count] = k >= cfg->listen_count;
            w->listener_fds[w->listener_count++] = fd;
        }
        if (uv_loop_init(&w->loop) != 0) {
            sy_error_set(err, "event loop init failed");
            return false;
        }
        uv_async_init(&w->loop, &w->wakeup, on_wakeup);
        w->wakeup.data = w;
        if (sy_stream_completions_init(&w->loop, &w->completions) != 0) {
            sy_error_set(err, "event loop init failed");
            return false;
        }
    }
    for (int i = 0; i < worker_count; i++) {
        atomic_store_explicit(&heartbeats[i], sy_now_ms(), memory_order_relaxed);
        if (uv_thread_create(&workers[i].thread, worker_main, &workers[i]) != 0) {
            atomic_store_explicit(&heartbeats[i], 0, memory_order_relaxed);
            sy_error_set(err, "cannot start worker thread %d", i);
            return false;
        }
    }
    return true;
}

static void request_all(int request)
{
    for (int i = 0; i < worker_count; i++) {
        atomic_store_explicit(&workers[i].request, request, memory_order_release);
        uv_async_send(&workers[i].wakeup);
        if (request == SY_WORKER_STOP) /* main sends nothing after this */
            atomic_store_explicit(&workers[i].stop_sent, true, memory_order_release);
    }
}

void sy_server_drain_begin(void)
{
    if (workers)
        request_all(SY_WORKER_DRAIN);
}

void sy_server_drain(uint64_t deadline_ms)
{
    if (!workers)
        return;
    /* Wait for the workers to go idle, up to the deadline. The nudges make
     * each worker close connections that have gone idle since. */
    for (;;) {
        size_t busy = 0;
        for (int i = 0; i < worker_count; i++)
            busy += __atomic_load_n(&workers[i].client_count, __ATOMIC_RELAXED);
        if (busy == 0 || sy_now_ms() >= deadline_ms)
            break;
        usleep(20000);
        for (int i = 0; i < worker_count; i++)
            uv_async_send(&workers[i].wakeup);
    }
    request_all(SY_WORKER_STOP);
    for (int i = 0; i < worker_count; i++)
        uv_thread_join(&workers[i].thread);
    free(workers);
    workers = NULL;
}
