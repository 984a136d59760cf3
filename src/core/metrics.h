/*
 * metrics.h: counters and histograms for /metrics (Prometheus text). Each
 * worker writes only its own slots (relaxed atomics, no sharing on the hot
 * path); the admin thread sums them when scraped.
 * Thread: sy_metrics_init on main before workers start; sy_metrics_route,
 * the epoch calls and sy_metrics_reload from the control plane; release
 * from any thread; the per-worker calls from worker `w` only; render from
 * the admin thread. Pointers: a route stats handle lives until its last
 * reference is released (route lists in snapshots hold one each).
 */
#ifndef SY_CORE_METRICS_H
#define SY_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SY_MAX_WORKERS 64

typedef struct sy_route_stats sy_route_stats_t;

void sy_metrics_init(int workers);

/* A new reference to the stats handle of a route path (created when no
 * snapshot holds the path yet; shared while one does, so counters stay
 * monotonic across reloads). O(1). NULL when out of memory. */
sy_route_stats_t *sy_metrics_route(const char *path);
/* Drops a reference; the last one frees the counters. NULL is a no-op. */
void sy_metrics_route_release(sy_route_stats_t *stats);

/* Which routes' series a scrape shows: after publishing a snapshot, the
 * control plane takes a new epoch, marks every route stats of the new
 * snapshot with it, then commits it. Stats marked with an older epoch
 * belong to routes that left the table: no longer shown (and freed once
 * the last old snapshot is released). Stats never marked are always shown. */
uint64_t sy_metrics_epoch_begin(void);
void sy_metrics_route_mark(sy_route_stats_t *stats, uint64_t epoch);
void sy_metrics_epoch_commit(uint64_t epoch);

/* One finished request. route may be NULL (no route matched). */
void sy_metrics_request(int worker, sy_route_stats_t *route, int status, double seconds);

typedef enum {
    SY_UPSTREAM_ERR_CONNECT = 0, /* refused, unreachable, reset before response */
    SY_UPSTREAM_ERR_RESOLVE,     /* DNS failure */
    SY_UPSTREAM_ERR_ADDRESS,     /* refused by the address guard */
    SY_UPSTREAM_ERR_TIMEOUT,     /* connect or response timeout */
    SY_UPSTREAM_ERR_MALFORMED,   /* malformed response */
    SY_UPSTREAM_ERR_TLS,         /* TLS handshake or certificate verification failed */
    SY_UPSTREAM_ERR__COUNT
} sy_upstream_error_t;

/* Counted under destination="(none)"; prefer sy_metrics_destination_error. */
void sy_metrics_upstream_error(int worker, sy_upstream_error_t kind);

/* Per destination host (a route's target host; NULL: "(none)"). The
 * first 256 hosts get their own label, later ones share "(other)", so a
 * policy can't grow the scrape without bound. A host's series are kept
 * for the process's life (the set is bounded by the policy). */
void sy_metrics_destination_error(int worker, const char *destination, sy_upstream_error_t kind);
/* Time from starting the upstream request to its response head. */
void sy_metrics_upstream_duration(int worker, const char *destination, double seconds);

/* The same series as a handle, for a caller that keeps it (an upstream
 * connection, a pool entry) so the request path neither hashes nor
 * compares the host name per request. Looked up (or created: "(other)"
 * past the first 256 hosts) like the calls above; a handle lives for the
 * process. NULL when out of memory, which the two calls below ignore. */
typedef struct sy_metrics_destination sy_metrics_destination_t;
sy_metrics_destination_t *sy_metrics_destination(const char *destination);
void sy_metrics_destination_count(int worker, sy_metrics_destination_t *destination,
                                  sy_upstream_error_t kind);
void sy_metrics_destination_observe(int worker, sy_metrics_destination_t *destination,
                                    double seconds);

/* Per-route labels on switchyard_requests_total and
 * switchyard_request_duration_seconds (default on). Off: every routed
 * request counts under route="(any)", for route tables too large to pay
 * ~21 series a route. Main thread, before the workers start. */
void sy_metrics_set_route_labels(bool on);

typedef enum {
    SY_GAUGE_CLIENT_CONNECTIONS = 0, /* open client connections */
    SY_GAUGE_UPSTREAM_CONNECTIONS,   /* open upstream connections */
    SY_GAUGE_POOL_IDLE,              /* idle pooled upstream connections */
    SY_GAUGE_ACCEPT_PAUSED,          /* workers not accepting right now (cap or out of fds) */
    SY_GAUGE__COUNT
} sy_gauge_t;

void sy_metrics_gauge_add(int worker, sy_gauge_t gauge, int64_t delta);

/* Why a worker stopped accepting for a while (connections wait in the
 * kernel backlog meanwhile). */
typedef enum {
    SY_ACCEPT_PAUSE_CAP = 0, /* at its connection cap */
    SY_ACCEPT_PAUSE_NO_FDS,  /* accept4 failed with EMFILE/ENFILE/ENOBUFS/ENOMEM */
    SY_ACCEPT_PAUSE_ERROR,   /* any other accept4 failure */
    SY_ACCEPT_PAUSE__COUNT
} sy_accept_pause_t;

void sy_metrics_accept_pause(int worker, sy_accept_pause_t why);

/* The fd limit and the per-worker connection cap derived from it (main,
 * once at start). */
void sy_metrics_set_fd_limits(uint64_t fd_limit, uint64_t worker_connection_cap);

/* One completed upstream TLS handshake; resumed: an earlier session was
 * reused (no full key exchange). */
void sy_metrics_tls_handshake(int worker, bool resumed);

/* Basic auth outcomes: which checks cost a password hash (verified,
 * failed) and which were answered without one. */
typedef enum {
    SY_BASIC_AUTH_VERIFIED = 0,    /* hashed, matched */
    SY_BASIC_AUTH_VERIFIED_CACHED, /* matched a cached verified credential */
    SY_BASIC_AUTH_FAILED,          /* hashed, did not match */
    SY_BASIC_AUTH_FAILED_CACHED,   /* the same wrong password again, from the cache */
    SY_BASIC_AUTH_UNKNOWN_USER,    /* no such user, no hash */
    SY_BASIC_AUTH_THROTTLED,       /* 429: too many failures */
    SY_BASIC_AUTH_BUSY,            /* 503: the worker's hash queue was full */
    SY_BASIC_AUTH_MISSING,         /* no or malformed credentials */
    SY_BASIC_AUTH__COUNT
} sy_basic_auth_outcome_t;

void sy_metrics_basic_auth(int worker, sy_basic_auth_outcome_t outcome);

/* Parser rejections by reason name (bounded set). */
void sy_metrics_rejected(int worker, int reject_reason);

/* Store reloads: store "policy" or "routes"; ok false counts a failure. */
void sy_metrics_reload(const char *store, bool ok);

/* Route changes the poller saw on a publish (src/control/sources.c). */
typedef enum {
    SY_ROUTE_ADDED = 0,
    SY_ROUTE_CHANGED,
    SY_ROUTE_REMOVED,
    SY_ROUTE_REJECTED, /* newly rejected: it served, or was disabled, before */
    SY_ROUTE_ACCEPTED, /* rejected before, active now */
    SY_ROUTE_CHANGE__COUNT
} sy_route_change_t;
/* "added", "changed", "removed", "rejected", "accepted". */
const char *sy_route_change_name(sy_route_change_t kind);
void sy_metrics_route_change(sy_route_change_t kind);

/* Renders everything as Prometheus text into a malloc'd string (*len set).
 * The caller passes the gauges only the control plane knows. */
typedef struct {
    size_t active_routes, rejected_routes;
    double policy_last_success, routes_last_success; /* unix seconds, 0 = never */
    double policy_last_error, routes_last_error;     /* unix seconds, 0 = never */
    unsigned policy_failures, routes_failures;       /* consecutive failed polls */
    bool ready;
} sy_metrics_config_view_t;

char *sy_metrics_render(const sy_metrics_config_view_t *view, size_t *len);

#endif
