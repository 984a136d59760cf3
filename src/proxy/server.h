/*
 * server.h: the data plane as main sees it: N worker threads, each an
 * event loop with its own SO_REUSEPORT listener per address, a connection
 * cap derived from the fd limit, a heartbeat, and graceful draining.
 * Thread: start/drain from main only; sy_server_find_stalled from any
 * thread (the admin thread); the pure helpers from anywhere. Pointers: the
 * config is copied.
 */
#ifndef SY_PROXY_SERVER_H
#define SY_PROXY_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define SY_MAX_LISTEN 16

/* File descriptors kept for everything that is not a client or upstream
 * connection: stdio and logs, the admin listener and its 64 connections,
 * the control plane and JWKS fetches (libcurl), DNS lookups in libuv's
 * thread pool, certificate re-reads. Per worker on top of that: its
 * listening sockets plus its loop's own descriptors (epoll, eventfd). */
#define SY_FD_RESERVE_BASE 128
#define SY_FD_RESERVE_PER_WORKER 4

/* A worker bumps its heartbeat this often; /healthz fails once a worker's
 * is older than SY_HEARTBEAT_STALL_MS (its loop is stuck). */
#define SY_HEARTBEAT_MS 500
#define SY_HEARTBEAT_STALL_MS 5000

/* After the drain timeout, cutting what is left and stopping the threads
 * may take this long before main gives up on them and exits anyway. */
#define SY_STOP_GRACE_MS 2000

typedef struct {
    const char *listen[SY_MAX_LISTEN]; /* "ADDR:PORT" or "[v6]:PORT" */
    size_t listen_count;
    const char *tls_listen[SY_MAX_LISTEN]; /* HTTPS listeners (sy_tls_server_load first) */
    size_t tls_listen_count;
    int workers;
} sy_server_config_t;

typedef struct {
    uint64_t fd_limit;      /* soft RLIMIT_NOFILE the process runs with */
    uint64_t reserved;      /* kept for everything but client/upstream connections */
    uint64_t worker_budget; /* fds each worker may hold for clients and upstreams */
    uint64_t max_clients;   /* client connections per worker: worker_budget / 2 */
    bool too_low;           /* the limit does not even cover the reserve */
} sy_server_limits_t;

/* The cap rule (pure): every proxied request needs a client fd and an
 * upstream fd, so each worker gets an equal share of what the reserve
 * leaves and accepts at most half of it as clients; at least 1. */
sy_server_limits_t sy_server_plan_limits(uint64_t fd_limit, int threads, size_t listeners);

/* Raises the soft RLIMIT_NOFILE to the hard limit (logged), binds every
 * listener (once per worker) and starts the workers. */
bool sy_server_start(const sy_server_config_t *cfg, sy_error_t *err);

/* What sy_server_start settled on (for the start log line). */
sy_server_limits_t sy_server_limits(void);

/* Tells every worker to stop accepting, close idle connections and answer
 * in-flight requests with Connection: close. Returns at once. */
void sy_server_drain_begin(void);

/* Waits until every worker is idle or deadline_ms (sy_now_ms clock) has
 * passed, then cuts whatever is left and joins the workers. A wedged
 * worker blocks the join: main's shutdown watchdog covers that. */
void sy_server_drain(uint64_t deadline_ms);

/* Finds the worker whose heartbeat is oldest beyond stall_ms. Returns
 * false when every running worker beat recently. */
bool sy_server_find_stalled(uint64_t now_ms, uint64_t stall_ms, int *worker, uint64_t *silent_ms);

/* The comparison behind it (pure): beats[i] is worker i's last heartbeat,
 * 0 for a worker not running. Returns the index of the stalest worker
 * silent longer than stall_ms, or -1. */
int sy_server_stalest(const uint64_t *beats, int n, uint64_t now_ms, uint64_t stall_ms,
                      uint64_t *silent_ms);

/* Parses "ADDR:PORT" / "[v6]:PORT" into a sockaddr. */
struct sockaddr_storage;
bool sy_parse_listen(const char *text, struct sockaddr_storage *out, sy_error_t *err);

#endif
