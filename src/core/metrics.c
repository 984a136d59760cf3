/*
 * metrics.c: the counters behind /metrics. Writers are the worker threads,
 * one writer per slot: every worker owns a cache-line aligned slot in each
 * table (global counters, and one per route), so the hot path is a relaxed
 * atomic add on a line no other core writes, and a scrape sums the slots.
 * The adds are fetch_add rather than load+store so that a worker index
 * beyond the slots (folded with a modulo) still counts correctly, merely
 * with some sharing.
 *
 * Route stats are looked up by path in a hash table under a mutex; the
 * control plane does that once per route per build (O(1) each, so a build
 * of N routes is O(N); the old linked list made it quadratic), never a
 * worker. A path that stays in the table across reloads keeps its
 * counters (Prometheus counters must not go backwards). Each route list
 * inside a snapshot holds a reference; when the last snapshot holding a
 * path is freed, its counters are freed with it, so memory follows the
 * table, not every path ever configured. Counter slots are allocated by the
 * first request a route answers, and a scrape shows only routes that have
 * answered one and are in the table now (epoch marks set at publish).
 *
 * Latency is kept in integer nanoseconds so it can be summed atomically;
 * buckets are stored per bucket and made cumulative (`le`) when rendered.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "http/parser.h"

#ifndef SY_VERSION /* the Makefile passes the VERSION file */
#define SY_VERSION "0.0.0-dev"
#endif

#define CACHE_LINE 64

/* Up to 120 s: upstream_response_ms allows 30 s and a slow streaming
 * answer runs longer, which must not all land in +Inf. */
static const double bucket_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5,   1,      2.5,   5,    10,    30,   60,  120};
#define BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])
#define STATUS_CLASSES 5

/* One histogram's share written by one worker: BUCKETS finite buckets plus
 * one for +Inf, not cumulative. */
typedef struct {
    atomic_uint_fast64_t buckets[BUCKETS + 1];
    atomic_uint_fast64_t sum_ns;
    atomic_uint_fast64_t count;
} histogram_t;

typedef struct {
    alignas(CACHE_LINE) atomic_uint_fast64_t by_class[STATUS_CLASSES];
    histogram_t latency;
} route_slot_t;

struct sy_route_stats {
    char *path;
    uint64_t hash;
    unsigned refs;                 /* snapshots (route lists) holding it; under registry_lock */
    atomic_uint_fast64_t epoch;    /* 0: not managed by snapshots; else the last publish using it */
    _Atomic(route_slot_t *) slots; /* NULL until the route answers its first request */
    atomic_int slot_count;         /* with slots; written before they are published */
    struct sy_route_stats *next;   /* hash chain; under registry_lock */
};

typedef struct {
    alignas(CACHE_LINE) atomic_int_fast64_t gauges[SY_GAUGE__COUNT];
    atomic_uint_fast64_t rejected[SY_REJECT__COUNT];
    atomic_uint_fast64_t tls_handshakes[2]; /* [0] full, [1] resumed */
    atomic_uint_fast64_t accept_pauses[SY_ACCEPT_PAUSE__COUNT];
    atomic_uint_fast64_t basic_auth[SY_BASIC_AUTH__COUNT];
    histogram_t latency; /* every request, routed or not */
} worker_slot_t;

static worker_slot_t worker_slots[SY_MAX_WORKERS];

/* Until sy_metrics_init says otherwise, route tables get a slot for every
 * possible worker, so nothing is lost if a route is registered first. */
static int worker_count = SY_MAX_WORKERS;

/* path -> stats, chained; the control plane looks up every route of a
 * build here (O(1) each) and a scrape walks it. Workers never take the
 * lock: they reach their stats through the snapshot's routes. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sy_route_stats_t **registry;
static size_t registry_buckets, registry_count;
/* The epoch of the last publish: stats marked older belong to routes that
 * left the table, so their series are no longer shown. */
static atomic_uint_fast64_t epoch_committed, epoch_next;
/* Requests no route matched (404, 421, parse errors) count under this
 * label; a real route path always starts with '/', so it can't collide. */
static _Atomic(sy_route_stats_t *) no_route;
#define NO_ROUTE_LABEL "(none)"

static const char *const store_names[2] = {"policy", "routes"};
static atomic_uint_fast64_t reloads[2][2]; /* [store][ok] */
static atomic_uint_fast64_t route_changes[SY_ROUTE_CHANGE__COUNT];
static const char *const route_change_names[SY_ROUTE_CHANGE__COUNT] = {
    "added", "changed", "removed", "rejected", "accepted"};

static atomic_uint_fast64_t fd_limit, worker_connection_cap;

static const char *const accept_pause_names[SY_ACCEPT_PAUSE__COUNT] = {
    [SY_ACCEPT_PAUSE_CAP] = "connection_cap",
    [SY_ACCEPT_PAUSE_NO_FDS] = "out_of_fds",
    [SY_ACCEPT_PAUSE_ERROR] = "accept_error",
};

/* Destinations: an append-only open-addressed table, read lock-free by the
 * workers (entries are published with release and never freed), written
 * under dest_lock. */
#define DEST_MAX 256
#define DEST_TABLE 1024 /* power of two, well above DEST_MAX + the two fixed labels */
typedef struct {
    alignas(CACHE_LINE) atomic_uint_fast64_t errors[SY_UPSTREAM_ERR__COUNT];
    histogram_t duration;
} dest_slot_t;

typedef struct sy_metrics_destination {
    char *host;
    uint64_t hash;
    int slot_count;
    dest_slot_t *slots;
} dest_stats_t;

static _Atomic(dest_stats_t *) dest_table[DEST_TABLE];
static size_t dest_count; /* under dest_lock */
static pthread_mutex_t dest_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool route_labels = true;
static _Atomic(sy_route_stats_t *) any_route;
#define ANY_ROUTE_LABEL "(any)"

static const char *const upstream_error_names[SY_UPSTREAM_ERR__COUNT] = {
    [SY_UPSTREAM_ERR_CONNECT] = "connect",
    [SY_UPSTREAM_ERR_RESOLVE] = "resolve",
    [SY_UPSTREAM_ERR_ADDRESS] = "address_refused",
    [SY_UPSTREAM_ERR_TIMEOUT] = "timeout",
    [SY_UPSTREAM_ERR_MALFORMED] = "malformed_response",
    [SY_UPSTREAM_ERR_TLS] = "tls",
};

void sy_metrics_init(int workers)
{
    if (workers < 1)
        workers = 1;
    if (workers > SY_MAX_WORKERS)
        workers = SY_MAX_WORKERS;
    pthread_mutex_lock(&registry_lock);
    worker_count = workers;
    pthread_mutex_unlock(&registry_lock);
}

static int worker_index(int worker, int slots)
{
    if (worker < 0)
        worker = -worker;
    return worker % slots;
}

static uint64_t path_hash(const char *path)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

/* Doubles the bucket array when the chains would average more than one
 * entry: lookups stay O(1), so a build of N routes costs O(N). Called with
 * registry_lock held; on allocation failure the chains just grow longer. */
static void registry_grow(void)
{
    size_t buckets = registry_buckets ? registry_buckets * 2 : 1024;
    sy_route_stats_t **table = calloc(buckets, sizeof *table);
    if (!table)
        return;
    for (size_t i = 0; i < registry_buckets; i++) {
        sy_route_stats_t *next;
        for (sy_route_stats_t *s = registry[i]; s; s = next) {
            next = s->next;
            size_t b = (size_t)s->hash & (buckets - 1);
            s->next = table[b];
            table[b] = s;
        }
    }
    free(registry);
    registry = table;
    registry_buckets = buckets;
}

sy_route_stats_t *sy_metrics_route(const char *path)
{
    if (!path)
        return NULL;
    uint64_t hash = path_hash(path);
    pthread_mutex_lock(&registry_lock);
    if (registry_count >= registry_buckets)
        registry_grow();
    sy_route_stats_t *stats = NULL;
    if (registry_buckets) {
        for (stats = registry[hash & (registry_buckets - 1)]; stats; stats = stats->next)
            if (stats->hash == hash && strcmp(stats->path, path) == 0)
                break;
    }
    if (!stats && registry_buckets && (stats = calloc(1, sizeof *stats))) {
        stats->path = strdup(path);
        stats->hash = hash;
        if (!stats->path) {
            free(stats);
            stats = NULL;
        } else {
            size_t b = (size_t)hash & (registry_buckets - 1);
            stats->next = registry[b];
            registry[b] = stats;
            registry_count++;
        }
    }
    if (stats)
        stats->refs++;
    pthread_mutex_unlock(&registry_lock);
    return stats;
}

void sy_metrics_route_release(sy_route_stats_t *stats)
{
    if (!stats)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--stats->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    sy_route_stats_t **link = &registry[stats->hash & (registry_buckets - 1)];
    while (*link && *link != stats)
        link = &(*link)->next;
    if (*link)
        *link = stats->next;
    registry_count--;
    pthread_mutex_unlock(&registry_lock);
    /* No snapshot holds the route any more, so no worker can reach these
     * slots, and the scrape only reads them under the lock. */
    free(atomic_load_explicit(&stats->slots, memory_order_acquire));
    free(stats->path);
    free(stats);
}

uint64_t sy_metrics_epoch_begin(void)
{
    return atomic_fetch_add(&epoch_next, 1) + 1;
}

void sy_metrics_route_mark(sy_route_stats_t *stats, uint64_t epoch)
{
    if (stats)
        atomic_store_explicit(&stats->epoch, epoch, memory_order_relaxed);
}

void sy_metrics_epoch_commit(uint64_t epoch)
{
    uint64_t seen = atomic_load(&epoch_committed);
    while (seen < epoch && !atomic_compare_exchange_weak(&epoch_committed, &seen, epoch)) {
    }
}

/* The slots of a route, allocated by the first request it answers: a
 * route nobody calls costs no counters and no series. Two workers may race
 * here; the loser frees its copy. */
static route_slot_t *route_slots(sy_route_stats_t *stats)
{
    route_slot_t *slots = atomic_load_explicit(&stats->slots, memory_order_acquire);
    if (slots)
        return slots;
    int count = worker_count;
    size_t bytes = sizeof(route_slot_t) * (size_t)count;
    route_slot_t *fresh = aligned_alloc(CACHE_LINE, bytes);
    if (!fresh)
        return NULL;
    memset(fresh, 0, bytes);
    /* slot_count is written before the pointer is published (release), and
     * every reader loads the pointer (acquire) before the count. A racing
     * loser writes the same value. */
    atomic_store_explicit(&stats->slot_count, count, memory_order_relaxed);
    if (atomic_compare_exchange_strong_explicit(&stats->slots, &slots, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh);
    return slots;
}

static sy_route_stats_t *no_route_stats(void)
{
    /* Created on the first unrouted request; the lock makes that race-free
     * and the pointer is stable afterwards. */
    sy_route_stats_t *stats = atomic_load_explicit(&no_route, memory_order_acquire);
    if (stats)
        return stats;
    stats = sy_metrics_route(NO_ROUTE_LABEL);
    atomic_store_explicit(&no_route, stats, memory_order_release);
    return stats;
}

static void add(atomic_uint_fast64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static void histogram_observe(histogram_t *h, double seconds)
{
    if (!(seconds >= 0)) /* also catches NaN */
        seconds = 0;
    size_t b = 0;
    while (b < BUCKETS && seconds > bucket_bounds[b])
        b++;
    add(&h->buckets[b], 1);
    /* Clamp so a nonsense duration can't wrap the sum. */
    double ns = seconds * 1e9;
    add(&h->sum_ns, ns > 1e15 ? (uint64_t)1e15 : (uint64_t)ns);
    add(&h->count, 1);
}

void sy_metrics_set_route_labels(bool on)
{
    atomic_store(&route_labels, on);
}

static sy_route_stats_t *any_route_stats(void)
{
    sy_route_stats_t *stats = atomic_load_explicit(&any_route, memory_order_acquire);
    if (stats)
        return stats;
    stats = sy_metrics_route(ANY_ROUTE_LABEL);
    sy_route_stats_t *expected = NULL;
    if (!atomic_compare_exchange_strong(&any_route, &expected, stats)) {
        sy_metrics_route_release(stats);
        stats = expected;
    }
    return stats;
}

void sy_metrics_request(int worker, sy_route_stats_t *route, int status, double seconds)
{
    if (route && !atomic_load_explicit(&route_labels, memory_order_relaxed))
        route = any_route_stats();
    if (!route)
        route = no_route_stats();
    route_slot_t *slots = route ? route_slots(route) : NULL;
    if (slots) {
        route_slot_t *slot = &slots[worker_index(
            worker, atomic_load_explicit(&route->slot_count, memory_order_relaxed))];
        int cls = status / 100 - 1;
        if (cls < 0)
            cls = 0;
        if (cls >= STATUS_CLASSES)
            cls = STATUS_CLASSES - 1;
        add(&slot->by_class[cls], 1);
        histogram_observe(&slot->latency, seconds);
    }
    histogram_observe(&worker_slots[worker_index(worker, SY_MAX_WORKERS)].latency, seconds);
}

void sy_metrics_basic_auth(int worker, sy_basic_auth_outcome_t outcome)
{
    if ((unsigned)outcome < SY_BASIC_AUTH__COUNT)
        add(&worker_slots[worker_index(worker, SY_MAX_WORKERS)].basic_auth[outcome], 1);
}

void sy_metrics_tls_handshake(int worker, bool resumed)
{
    add(&worker_slots[worker_index(worker, SY_MAX_WORKERS)].tls_handshakes[resumed ? 1 : 0], 1);
}

static dest_stats_t *dest_probe(const char *host, uint64_t hash)
{
    for (size_t i = 0; i < DEST_TABLE; i++) {
        dest_stats_t *d =
            atomic_load_explicit(&dest_table[(hash + i) & (DEST_TABLE - 1)], memory_order_acquire);
        if (!d)
            return NULL;
        if (d->hash == hash && strcmp(d->host, host) == 0)
            return d;
    }
    return NULL;
}

static dest_stats_t *dest_insert(const char *host, uint64_t hash)
{
    dest_stats_t *d = calloc(1, sizeof *d);
    int count = worker_count;
    size_t bytes = sizeof(dest_slot_t) * (size_t)count;
    dest_slot_t *slots = d ? aligned_alloc(CACHE_LINE, bytes) : NULL;
    char *copy = slots ? strdup(host) : NULL;
    if (!copy) {
        free(slots);
        free(d);
        return NULL;
    }
    memset(slots, 0, bytes);
    *d = (dest_stats_t){copy, hash, count, slots};
    for (size_t i = 0; i < DEST_TABLE; i++) {
        size_t at = (hash + i) & (DEST_TABLE - 1);
        if (!atomic_load_explicit(&dest_table[at], memory_order_relaxed)) {
            atomic_store_explicit(&dest_table[at], d, memory_order_release);
            return d;
        }
    }
    free(copy);
    free(slots);
    free(d);
    return NULL;
}

/* The stats of a destination host: lock-free when it is known (every
 * request after the first), else created under the lock. */
static dest_stats_t *dest_find(const char *host)
{
    if (!host || !host[0])
        host = "(none)";
    uint64_t hash = path_hash(host);
    dest_stats_t *d = dest_probe(host, hash);
    if (!d) {
        pthread_mutex_lock(&dest_lock);
        d = dest_probe(host, hash);
        if (!d && dest_count >= DEST_MAX) {
            host = "(other)";
            hash = path_hash(host);
            d = dest_probe(host, hash);
        }
        if (!d && (d = dest_insert(host, hash)))
            dest_count++;
        pthread_mutex_unlock(&dest_lock);
    }
    return d;
}

static dest_slot_t *dest_slot(int worker, const char *host)
{
    dest_stats_t *d = dest_find(host);
    return d ? &d->slots[worker_index(worker, d->slot_count)] : NULL;
}

sy_metrics_destination_t *sy_metrics_destination(const char *host)
{
    return dest_find(host);
}

void sy_metrics_destination_count(int worker, sy_metrics_destination_t *d, sy_upstream_error_t kind)
{
    if (d && (unsigned)kind < SY_UPSTREAM_ERR__COUNT)
        add(&d->slots[worker_index(worker, d->slot_count)].errors[kind], 1);
}

void sy_metrics_destination_observe(int worker, sy_metrics_destination_t *d, double seconds)
{
    if (d)
        histogram_observe(&d->slots[worker_index(worker, d->slot_count)].duration, seconds);
}

void sy_metrics_destination_error(int worker, const char *destination, sy_upstream_error_t kind)
{
    if ((unsigned)kind >= SY_UPSTREAM_ERR__COUNT)
        return;
    dest_slot_t *slot = dest_slot(worker, destination);
    if (slot)
        add(&slot->errors[kind], 1);
}

void sy_metrics_upstream_error(int worker, sy_upstream_error_t kind)
{
    sy_metrics_destination_error(worker, NULL, kind);
}

void sy_metrics_upstream_duration(int worker, const char *destination, double seconds)
{
    dest_slot_t *slot = dest_slot(worker, destination);
    if (slot)
        histogram_observe(&slot->duration, seconds);
}

void sy_metrics_gauge_add(int worker, sy_gauge_t gauge, int64_t delta)
{
    if ((unsigned)gauge >= SY_GAUGE__COUNT)
        return;
    /* A gauge is the sum of every worker's deltas: a connection opened on
     * one worker and closed on another still nets to zero. */
    atomic_fetch_add_explicit(&worker_slots[worker_index(worker, SY_MAX_WORKERS)].gauges[gauge],
                              delta, memory_order_relaxed);
}

void sy_metrics_accept_pause(int worker, sy_accept_pause_t why)
{
    if ((unsigned)why >= SY_ACCEPT_PAUSE__COUNT)
        return;
    add(&worker_slots[worker_index(worker, SY_MAX_WORKERS)].accept_pauses[why], 1);
}

void sy_metrics_set_fd_limits(uint64_t limit, uint64_t cap)
{
    atomic_store_explicit(&fd_limit, limit, memory_order_relaxed);
    atomic_store_explicit(&worker_connection_cap, cap, memory_order_relaxed);
}

void sy_metrics_rejected(int worker, int reject_reason)
{
    if (reject_reason <= SY_REJECT_NONE || reject_reason >= SY_REJECT__COUNT)
        return;
    add(&worker_slots[worker_index(worker, SY_MAX_WORKERS)].rejected[reject_reason], 1);
}

void sy_metrics_reload(const char *store, bool ok)
{
    int s = (store && strcmp(store, "routes") == 0) ? 1 : 0;
    add(&reloads[s][ok ? 1 : 0], 1);
}

const char *sy_route_change_name(sy_route_change_t kind)
{
    return kind < SY_ROUTE_CHANGE__COUNT ? route_change_names[kind] : "unknown";
}

void sy_metrics_route_change(sy_route_change_t kind)
{
    if (kind < SY_ROUTE_CHANGE__COUNT)
        add(&route_changes[kind], 1);
}

/* ---- rendering ---- */

typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} buffer_t;

static bool buffer_reserve(buffer_t *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void buffer_printf(buffer_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buffer_printf(buffer_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buffer_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Label value escaping of the text exposition format: backslash, double
 * quote and line feed are the only characters that need it. */
static void buffer_label_value(buffer_t *b, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (!buffer_reserve(b, 2))
            return;
        if (*p == '\\' || *p == '"') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = *p;
        } else if (*p == '\n') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = 'n';
        } else {
            b->data[b->len++] = *p;
        }
    }
    b->data[b->len] = '\0';
}

static void header(buffer_t *b, const char *name, const char *type, const char *help)
{
    buffer_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t load(const atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

typedef struct {
    uint64_t buckets[BUCKETS + 1];
    uint64_t sum_ns, count;
} histogram_sum_t;

static void histogram_accumulate(histogram_sum_t *total, const histogram_t *h)
{
    for (size_t i = 0; i <= BUCKETS; i++)
        total->buckets[i] += load(&h->buckets[i]);
    total->sum_ns += load(&h->sum_ns);
    total->count += load(&h->count);
}

/* label: "" or `route="..."` already escaped, without braces. */
static void histogram_render(buffer_t *b, const char *name, const char *label,
                             const histogram_sum_t *h)
{
    const char *sep = label[0] ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        cumulative += h->buckets[i];
        buffer_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, bucket_bounds[i],
                      (unsigned long long)cumulative);
    }
    cumulative += h->buckets[BUCKETS];
    /* The scrape is not a consistent cut: a request observed between
     * reading the buckets and the count could make them disagree, so the
     * +Inf bucket and _count are both the bucket total. */
    buffer_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep,
                  (unsigned long long)cumulative);
    if (label[0])
        buffer_printf(b, "%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, label,
                      (double)h->sum_ns / 1e9, name, label, (unsigned long long)cumulative);
    else
        buffer_printf(b, "%s_sum %.9f\n%s_count %llu\n", name, (double)h->sum_ns / 1e9, name,
                      (unsigned long long)cumulative);
}

static char *escaped_label(const char *key, const char *value)
{
    buffer_t b = {0};
    buffer_printf(&b, "%s=\"", key);
    buffer_label_value(&b, value);
    buffer_printf(&b, "\"");
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* One route's counters summed over the workers, copied under the lock so
 * formatting happens outside it. */
typedef struct {
    char *label; /* route="..." escaped */
    uint64_t by_class[STATUS_CLASSES];
    histogram_sum_t latency;
} route_sum_t;

static void render_routes(buffer_t *b, size_t *series_routes, size_t *allocated)
{
    static const char *const class_names[STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    /* Only routes that have answered a request (slots allocated) and are in
     * the table now (marked by the last publish, or not managed by
     * snapshots at all, as "(none)"): a scrape's size follows the routes in
     * use, not the routes configured. */
    route_sum_t *sums = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&registry_lock);
    uint64_t committed = atomic_load(&epoch_committed);
    for (size_t i = 0; i < registry_buckets && !b->failed; i++) {
        for (sy_route_stats_t *r = registry[i]; r && !b->failed; r = r->next) {
            route_slot_t *slots = atomic_load_explicit(&r->slots, memory_order_acquire);
            uint64_t epoch = atomic_load_explicit(&r->epoch, memory_order_relaxed);
            if (slots)
                (*allocated)++;
            if (!slots || (epoch != 0 && epoch < committed))
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                route_sum_t *p = realloc(sums, ncap * sizeof *p);
                if (!p) {
                    b->failed = true;
                    break;
                }
                sums = p;
                cap = ncap;
            }
            route_sum_t *s = &sums[n];
            memset(s, 0, sizeof *s);
            if (!(s->label = escaped_label("route", r->path))) {
                b->failed = true;
                break;
            }
            n++;
            int slot_count = atomic_load_explicit(&r->slot_count, memory_order_relaxed);
            for (int w = 0; w < slot_count; w++) {
                for (int c = 0; c < STATUS_CLASSES; c++)
                    s->by_class[c] += load(&slots[w].by_class[c]);
                histogram_accumulate(&s->latency, &slots[w].latency);
            }
        }
    }
    pthread_mutex_unlock(&registry_lock);
    *series_routes = n;

    header(b, "switchyard_requests_total", "counter",
           "Requests answered, by route path and status class (route=\"(none)\": no route). "
           "Only routes that have answered a request and are still configured.");
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < STATUS_CLASSES; c++)
            buffer_printf(b, "switchyard_requests_total{%s,code_class=\"%s\"} %llu\n",
                          sums[i].label, class_names[c], (unsigned long long)sums[i].by_class[c]);
    header(b, "switchyard_request_duration_seconds", "histogram",
           "Time from the request head to the last response byte, by route path.");
    for (size_t i = 0; i < n; i++)
        histogram_render(b, "switchyard_request_duration_seconds", sums[i].label, &sums[i].latency);
    for (size_t i = 0; i < n; i++)
        free(sums[i].label);
    free(sums);
}

/* Upstream errors and time to response head, by destination host. The
 * table is append-only, so it is read without the lock. */
static void render_destinations(buffer_t *b)
{
    dest_stats_t *list[DEST_TABLE];
    size_t n = 0;
    for (size_t i = 0; i < DEST_TABLE; i++) {
        dest_stats_t *d = atomic_load_explicit(&dest_table[i], memory_order_acquire);
        if (d)
            list[n++] = d;
    }
    char *labels[DEST_TABLE];
    for (size_t i = 0; i < n; i++)
        if (!(labels[i] = escaped_label("destination", list[i]->host)))
            b->failed = true;
    header(b, "switchyard_upstream_errors_total", "counter",
           "Upstream failures, by destination host and kind (a 502 or 504 answer each).");
    for (size_t i = 0; i < n && !b->failed; i++) {
        uint64_t errors[SY_UPSTREAM_ERR__COUNT] = {0};
        for (int w = 0; w < list[i]->slot_count; w++)
            for (int k = 0; k < SY_UPSTREAM_ERR__COUNT; k++)
                errors[k] += load(&list[i]->slots[w].errors[k]);
        for (int k = 0; k < SY_UPSTREAM_ERR__COUNT; k++)
            buffer_printf(b, "switchyard_upstream_errors_total{%s,kind=\"%s\"} %llu\n", labels[i],
                          upstream_error_names[k], (unsigned long long)errors[k]);
    }
    header(b, "switchyard_upstream_duration_seconds", "histogram",
           "Time from sending the upstream request to its response head, by destination host.");
    for (size_t i = 0; i < n && !b->failed; i++) {
        histogram_sum_t h = {0};
        for (int w = 0; w < list[i]->slot_count; w++)
            histogram_accumulate(&h, &list[i]->slots[w].duration);
        histogram_render(b, "switchyard_upstream_duration_seconds", labels[i], &h);
    }
    for (size_t i = 0; i < n; i++)
        free(labels[i]);
}

/* process_* from /proc at scrape time (the names every Prometheus client
 * library uses), so the fd alarm of docs/operations.md has a series. */
static void render_process(buffer_t *b)
{
    size_t fds = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        for (struct dirent *e; (e = readdir(dir));)
            if (e->d_name[0] != '.')
                fds++;
        closedir(dir);
        fds = fds ? fds - 1 : 0; /* the descriptor opendir itself holds */
    }
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    header(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    buffer_printf(b, "process_open_fds %zu\n", fds);
    header(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    buffer_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);

    /* /proc/self/stat: fields after the command name (which may hold spaces
     * and parentheses, so parsing starts after the last ')'). */
    double utime = 0, stime = 0, start_ticks = 0, rss_pages = 0;
    char stat[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t got = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f)
        fclose(f);
    stat[got] = '\0';
    const char *p = strrchr(stat, ')');
    if (p) {
        /* Field 3 (state) is first; utime 14, stime 15, starttime 22, rss 24. */
        int field = 3;
        for (const char *q = p + 2; *q && field <= 24; field++) {
            double v = strtod(q, NULL);
            if (field == 14)
                utime = v;
            else if (field == 15)
                stime = v;
            else if (field == 22)
                start_ticks = v;
            else if (field == 24)
                rss_pages = v;
            q = strchr(q, ' ');
            if (!q)
                break;
            q++;
        }
    }
    double btime = 0;
    f = fopen("/proc/stat", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "btime ", 6) == 0)
                btime = strtod(line + 6, NULL);
        fclose(f);
    }
    double tck = (double)sysconf(_SC_CLK_TCK);
    if (tck <= 0)
        tck = 100;
    header(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent.");
    buffer_printf(b, "process_cpu_seconds_total %.2f\n", (utime + stime) / tck);
    header(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    buffer_printf(b, "process_resident_memory_bytes %.0f\n",
                  rss_pages * (double)sysconf(_SC_PAGESIZE));
    header(b, "process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch in seconds.");
    buffer_printf(b, "process_start_time_seconds %.2f\n", btime + start_ticks / tck);
}

/* A gauge with one sample per store. */
static void store_gauge(buffer_t *b, const char *name, const char *help, double policy,
                        double routes)
{
    header(b, name, "gauge", help);
    buffer_printf(b, "%s{store=\"policy\"} %.3f\n%s{store=\"routes\"} %.3f\n", name, policy, name,
                  routes);
}

char *sy_metrics_render(const sy_metrics_config_view_t *view, size_t *len)
{
    buffer_t b = {0};
    size_t series_routes = 0, allocated = 0;
    render_routes(&b, &series_routes, &allocated);

    histogram_sum_t all = {0};
    int64_t gauges[SY_GAUGE__COUNT] = {0};
    uint64_t rejected[SY_REJECT__COUNT] = {0};
    uint64_t handshakes[2] = {0};
    uint64_t pauses[SY_ACCEPT_PAUSE__COUNT] = {0};
    uint64_t basic_auth[SY_BASIC_AUTH__COUNT] = {0};
    for (int w = 0; w < SY_MAX_WORKERS; w++) {
        worker_slot_t *slot = &worker_slots[w];
        histogram_accumulate(&all, &slot->latency);
        for (int g = 0; g < SY_GAUGE__COUNT; g++)
            gauges[g] += atomic_load_explicit(&slot->gauges[g], memory_order_relaxed);
        for (int r = 0; r < SY_REJECT__COUNT; r++)
            rejected[r] += load(&slot->rejected[r]);
        handshakes[0] += load(&slot->tls_handshakes[0]);
        handshakes[1] += load(&slot->tls_handshakes[1]);
        for (int k = 0; k < SY_ACCEPT_PAUSE__COUNT; k++)
            pauses[k] += load(&slot->accept_pauses[k]);
        for (int k = 0; k < SY_BASIC_AUTH__COUNT; k++)
            basic_auth[k] += load(&slot->basic_auth[k]);
    }

    header(&b, "switchyard_all_request_duration_seconds", "histogram",
           "Time from the request head to the last response byte, every request.");
    histogram_render(&b, "switchyard_all_request_duration_seconds", "", &all);

    render_destinations(&b);

    header(&b, "switchyard_upstream_tls_handshakes_total", "counter",
           "Completed upstream TLS handshakes: full, or resumed from a cached session. Far fewer "
           "than requests when pooling works.");
    buffer_printf(&b,
                  "switchyard_upstream_tls_handshakes_total{kind=\"full\"} %llu\n"
                  "switchyard_upstream_tls_handshakes_total{kind=\"resumed\"} %llu\n",
                  (unsigned long long)handshakes[0], (unsigned long long)handshakes[1]);

    static const char *const basic_auth_names[SY_BASIC_AUTH__COUNT] = {
        "verified",     "verified_cached", "failed", "failed_cached",
        "unknown_user", "throttled",       "busy",   "missing"};
    header(&b, "switchyard_basic_auth_total", "counter",
           "Basic auth checks by outcome; only verified and failed cost a password hash.");
    for (int k = 0; k < SY_BASIC_AUTH__COUNT; k++)
        buffer_printf(&b, "switchyard_basic_auth_total{outcome=\"%s\"} %llu\n", basic_auth_names[k],
                      (unsigned long long)basic_auth[k]);

    static const struct {
        const char *name, *help;
    } gauge_info[SY_GAUGE__COUNT] = {
        [SY_GAUGE_CLIENT_CONNECTIONS] = {"switchyard_client_connections",
                                         "Open client connections."},
        [SY_GAUGE_UPSTREAM_CONNECTIONS] = {"switchyard_upstream_connections",
                                           "Open upstream connections, busy or pooled."},
        [SY_GAUGE_POOL_IDLE] = {"switchyard_upstream_pool_idle",
                                "Idle keep-alive upstream connections in the pools."},
        [SY_GAUGE_ACCEPT_PAUSED] = {"switchyard_accept_paused",
                                    "Workers not accepting right now (at their connection cap or "
                                    "out of file descriptors); new connections wait in the kernel "
                                    "backlog."},
    };
    for (int g = 0; g < SY_GAUGE__COUNT; g++) {
        header(&b, gauge_info[g].name, "gauge", gauge_info[g].help);
        /* Momentarily negative while a close is counted before its open
         * on another worker's slot is read; never show that. */
        buffer_printf(&b, "%s %lld\n", gauge_info[g].name,
                      (long long)(gauges[g] < 0 ? 0 : gauges[g]));
    }

    header(&b, "switchyard_accept_pauses_total", "counter",
           "Times a worker stopped accepting, by reason: connection_cap (at its cap), out_of_fds "
           "(accept failed with EMFILE/ENFILE/ENOBUFS/ENOMEM), accept_error.");
    for (int k = 0; k < SY_ACCEPT_PAUSE__COUNT; k++)
        buffer_printf(&b, "switchyard_accept_pauses_total{reason=\"%s\"} %llu\n",
                      accept_pause_names[k], (unsigned long long)pauses[k]);
    header(&b, "switchyard_fd_limit", "gauge",
           "The soft RLIMIT_NOFILE switchyard runs with (raised to the hard limit at start).");
    buffer_printf(&b, "switchyard_fd_limit %llu\n",
                  (unsigned long long)atomic_load_explicit(&fd_limit, memory_order_relaxed));
    header(&b, "switchyard_worker_connection_cap", "gauge",
           "Client connections each worker accepts at most (derived from the fd limit).");
    buffer_printf(
        &b, "switchyard_worker_connection_cap %llu\n",
        (unsigned long long)atomic_load_explicit(&worker_connection_cap, memory_order_relaxed));

    header(&b, "switchyard_rejected_requests_total", "counter",
           "Requests refused by the HTTP parser, by reason.");
    for (int r = SY_REJECT_NONE + 1; r < SY_REJECT__COUNT; r++) {
        const char *name = sy_http_reject_name((sy_http_reject_t)r);
        buffer_printf(&b, "switchyard_rejected_requests_total{reason=\"");
        buffer_label_value(&b, name ? name : "unknown");
        buffer_printf(&b, "\"} %llu\n", (unsigned long long)rejected[r]);
    }

    header(&b, "switchyard_config_reloads_total", "counter",
           "Loads of a changed configuration document, by store and result.");
    for (int s = 0; s < 2; s++)
        for (int ok = 1; ok >= 0; ok--)
            buffer_printf(&b, "switchyard_config_reloads_total{store=\"%s\",result=\"%s\"} %llu\n",
                          store_names[s], ok ? "success" : "failure",
                          (unsigned long long)load(&reloads[s][ok]));

    header(&b, "switchyard_route_changes_total", "counter",
           "Route changes seen on publish, by kind (one audit log line each).");
    for (int k = 0; k < SY_ROUTE_CHANGE__COUNT; k++)
        buffer_printf(&b, "switchyard_route_changes_total{change=\"%s\"} %llu\n",
                      route_change_names[k], (unsigned long long)load(&route_changes[k]));

    sy_metrics_config_view_t none = {0};
    if (!view)
        view = &none;
    store_gauge(&b, "switchyard_config_last_success_timestamp_seconds",
                "Unix time of the last successful fetch of each store (0: never).",
                view->policy_last_success, view->routes_last_success);
    store_gauge(&b, "switchyard_config_last_error_timestamp_seconds",
                "Unix time of the last failed read or parse of each store (0: never).",
                view->policy_last_error, view->routes_last_error);
    store_gauge(&b, "switchyard_config_consecutive_failures",
                "Failed polls of each store since its last success.", view->policy_failures,
                view->routes_failures);

    header(&b, "switchyard_routes", "gauge", "Routes in the serving configuration, by state.");
    buffer_printf(&b,
                  "switchyard_routes{state=\"active\"} %zu\n"
                  "switchyard_routes{state=\"rejected\"} %zu\n",
                  view->active_routes, view->rejected_routes);

    pthread_mutex_lock(&registry_lock);
    size_t tracked = registry_count;
    pthread_mutex_unlock(&registry_lock);
    header(
        &b, "switchyard_route_stats", "gauge",
        "Per-route counter sets held in memory (tracked: one per configured path, freed when "
        "the last snapshot holding the path is released; counting: with counters, i.e. the route "
        "has answered a request; series: shown in this scrape).");
    buffer_printf(&b,
                  "switchyard_route_stats{kind=\"tracked\"} %zu\n"
                  "switchyard_route_stats{kind=\"counting\"} %zu\n"
                  "switchyard_route_stats{kind=\"series\"} %zu\n",
                  tracked, allocated, series_routes);

    header(&b, "switchyard_ready", "gauge",
           "1 when both documents are loaded and the process is not draining.");
    buffer_printf(&b, "switchyard_ready %d\n", view->ready ? 1 : 0);

    header(&b, "switchyard_build_info", "gauge", "Always 1; the version running, as a label.");
    buffer_printf(&b, "switchyard_build_info{version=\"");
    buffer_label_value(&b, SY_VERSION);
    buffer_printf(&b, "\"} 1\n");
    render_process(&b);

    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}
