/*
 * worker.h: one data-plane worker: an event loop with its listeners, its
 * cached snapshot reference and resolver, the memory it lends to
 * connections (receive buffers, request state, scratch buffers), its list
 * of clients and its upstream pool's index. client.c and upstream.c read
 * and update the worker's fields (that is why the struct is here); the
 * pool entries and connections themselves are private to the files that
 * own them (upstream.c, client.c).
 * Thread: a worker and everything reachable from it belong to its own
 * thread and are touched only from its loop, except `request` and
 * `stop_sent` (main -> worker, atomic) and `client_count` (read by main
 * with atomic builtins). Pointers: `snap` is the worker's counted
 * reference, replaced by sy_worker_refresh_snapshot.
 */
#ifndef SY_PROXY_WORKER_H
#define SY_PROXY_WORKER_H

#include <stdatomic.h>
#include <uv.h>

#include "net/resolver.h"
#include "net/stream.h"
#include "net/tls.h"
#include "policy/snapshot.h"
#include "proxy/bufpool.h"

/* Where idle connections' reads land (and a TLS client's plaintext before
 * it has a buffer): at least what one TLS read decrypts to. */
#define SY_WORKER_SCRATCH 65536
/* Buffers and request states a worker keeps for reuse; more are freed. */
#define SY_WORKER_SPARE_BUFFERS 64
#define SY_WORKER_SPARE_REQUESTS 256

typedef struct sy_worker sy_worker_t;
typedef struct sy_client sy_client_t;         /* client.c */
typedef struct sy_request sy_request_t;       /* client.c */
typedef struct sy_pool_entry sy_pool_entry_t; /* upstream.c */

/* Buckets of a worker's pool index (a power of two). */
#define SY_POOL_BUCKETS 1024

/* What main asks of a worker (sy_worker_t.request), newest wins. */
enum { SY_WORKER_RUN = 0, SY_WORKER_DRAIN, SY_WORKER_STOP };

struct sy_worker {
    int id;
    uv_loop_t loop;
    uv_async_t wakeup;       /* main -> worker: look at `request` */
    _Atomic int request;     /* written by main, read by the worker in on_wakeup */
    atomic_bool stop_sent;   /* main's last uv_async_send is done: the loop may close */
    uv_poll_t listeners[32]; /* readable: accept4 on listener_fds[i] */
    int listener_fds[32];    /* listening sockets, owned (closed) by the worker */
    bool listener_tls[32];
    size_t listener_count;
    bool listening;          /* the listener polls are started */
    bool out_of_fds;         /* paused after EMFILE/ENFILE/ENOBUFS until a close or retry */
    uv_timer_t accept_retry; /* back-off after running out of fds */
    uint32_t accept_backoff_ms;
    uv_timer_t heartbeat;  /* proves to the admin thread that the loop runs */
    size_t max_clients;    /* connection cap (sy_server_plan_limits) */
    size_t fd_budget;      /* fds this worker may hold: clients + upstreams */
    uint64_t pause_log_ms; /* rate limit of the "accepting paused" log line */
    uint64_t pauses_unlogged;
    sy_snapshot_t *snap; /* the worker's cached reference */
    sy_resolver_t *resolver;
    uint64_t snap_generation;
    sy_pool_entry_t *pool;                        /* every pool entry */
    sy_pool_entry_t *pool_index[SY_POOL_BUCKETS]; /* the same, by key hash */
    uint64_t pool_generation; /* snapshot generation the pool was last swept for */
    size_t client_count;      /* written by the worker, read by main (atomic builtins) */
    sy_client_t *clients;     /* every open client (for draining) */
    uint64_t request_seq;
    char id_prefix[12];
    /* Worker thread only: copied from `request` by the worker itself, so
     * client.c and upstream.c read them without a data race. */
    bool draining, stopping;
    /* Memory lent to connections while they have work (bufpool.h): client
     * and upstream receive buffers, request state; and the scratch buffers
     * idle connections read into (a read callback uses them up at once). */
    sy_bufpool_t buffers;
    sy_stream_completions_t completions; /* writes that went out at once */
    sy_request_t *free_requests;
    size_t free_request_count;
    char *scratch;     /* SY_WORKER_SCRATCH plaintext bytes */
    char *tls_scratch; /* SY_TLS_READ_CHUNK ciphertext bytes */
    uv_thread_t thread;
};

/* The worker's snapshot reference is brought up to date (cheap when it is). */
void sy_worker_refresh_snapshot(sy_worker_t *w);
/* A client connection is gone (its handles closed): accepting may resume. */
void sy_worker_client_closed(sy_worker_t *w);

#endif
