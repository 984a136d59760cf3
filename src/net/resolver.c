/*
 * resolver.c: upstream name resolution, cached per process for each
 * answer's TTL, with the last good answer kept when DNS fails.
 *
 * Why this shape: an API Gateway VPC endpoint's name answers with one
 * address per Availability Zone, and the VPC resolver drops what an
 * interface sends beyond 1,024 packets a second. getaddrinfo gives neither
 * TTLs nor a way to stay off the worker loop, so each worker runs a c-ares
 * channel on its own loop (no cross-thread hand-off, no resolver thread to
 * wake) and all of them share one cache. The cache lock is taken only when
 * a new upstream connection is planned or an address fails, never for a
 * request on a pooled connection.
 *
 * Policy of an entry, in the order sy_resolve checks it:
 * - fresh answer: served; within the last tenth of its TTL (at least 1 s,
 *   at most half of it) a background refresh starts, so a name in use
 *   never expires and costs one lookup per TTL;
 * - past its TTL (a refresh failed, the DNS server is silent, or the name
 *   was idle): the last good answer is served at once, counted as stale,
 *   while a background refresh runs (at most one a second), for up to
 *   SY_RESOLVER_STALE_MAX_S: a silent DNS server never delays a request;
 * - no answer yet: the lookup waits for one query per worker per name, and
 *   concurrent lookups of the name on that worker join it. A failed lookup
 *   with no answer to fall back on is remembered for a second, so a name
 *   that does not resolve costs one query a second, not one a connection.
 *
 * The address guard runs on every answer as it arrives: an answer naming
 * any address switchyard never connects to (metadata, link-local, ...) is
 * refused whole and logged as a security event; the previous answer keeps
 * serving. Loopback depends on the policy, so the connect path checks that
 * per connection.
 */
#include "net/resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/addr.h"

typedef struct {
    sy_ip_t ip;
    unsigned failures;
    uint64_t set_aside_until; /* monotonic ms; 0 or past: usable */
} addr_state_t;

struct sy_resolver_entry {
    char name[256];
    bool literal;
    size_t count;
    addr_state_t addrs[SY_RESOLVER_MAX_ADDRS];
    bool has_answer;
    uint64_t received_ms, expires_ms;
    uint32_t ttl_s;
    _Atomic uint32_t generation; /* bumped when the address set changes */
    _Atomic uint64_t refresh_at; /* when sy_resolver_touch should refresh (lock-free check) */
    bool refreshing;             /* a background query is in flight */
    bool failing;                /* the last query failed or was refused */
    bool refused;                /* ... because its answer was refused */
    uint64_t last_attempt_ms;
    char last_error[200];
    unsigned rr;
    uint64_t lookups, failures, stale_served, refused_answers, set_aside, moved;
    struct sy_resolver_entry *next;
};

#define BUCKETS 256

static struct {
    pthread_mutex_t lock;
    sy_resolver_entry_t *buckets[BUCKETS];
    char *servers;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct sy_resolve_query {
    sy_resolver_t *r;
    sy_resolver_entry_t *entry;
    sy_resolve_req_t *waiters;
    bool starting; /* inside ares_getaddrinfo: a synchronous answer is read by sy_resolve */
    bool done;
    struct sy_resolve_query *next;
} query_t;

typedef struct sock_poll {
    uv_poll_t poll;
    ares_socket_t fd;
    sy_resolver_t *r;
    struct sock_poll *next;
} sock_poll_t;

struct sy_resolver {
    uv_loop_t *loop;
    ares_channel channel;
    bool channel_open;
    uv_timer_t timer;
    sock_poll_t *polls;
    query_t *queries;
    int open_handles;
    bool closing;
};

/* ---- addresses --------------------------------------------------------- */

void sy_ip_to_sockaddr(const sy_ip_t *ip, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (ip->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, ip->bytes, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        memcpy(&in6->sin6_addr, ip->bytes, 16);
    }
}

bool sy_ip_from_sockaddr(const struct sockaddr *sa, sy_ip_t *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        out->family = AF_INET;
        memcpy(out->bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        out->family = AF_INET6;
        memcpy(out->bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

void sy_ip_format(const sy_ip_t *ip, char *out, size_t cap)
{
    if (!inet_ntop(ip->family == AF_INET ? AF_INET : AF_INET6, ip->bytes, out, (socklen_t)cap))
        snprintf(out, cap, "?");
}

static bool ip_eq(const sy_ip_t *a, const sy_ip_t *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, 16) == 0;
}

/* An IPv4 literal or a bracketed (or bare) IPv6 literal. */
static bool parse_literal(const char *name, sy_ip_t *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, name, out->bytes) == 1) {
        out->family = AF_INET;
        return true;
    }
    char bare[64];
    size_t n = strlen(name);
    if (n >= 2 && n - 2 < sizeof bare && name[0] == '[' && name[n - 1] == ']') {
        memcpy(bare, name + 1, n - 2);
        bare[n - 2] = '\0';
        name = bare;
    }
    if (inet_pton(AF_INET6, name, out->bytes) == 1) {
        out->family = AF_INET6;
        return true;
    }
    return false;
}

/* ---- the cache (callers hold cache.lock) -------------------------------- */

static size_t name_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h % BUCKETS;
}

static sy_resolver_entry_t *entry_get(const char *name)
{
    size_t b = name_hash(name);
    for (sy_resolver_entry_t *e = cache.buckets[b]; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    sy_resolver_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->next = cache.buckets[b];
    cache.buckets[b] = e;
    return e;
}

static void plan_fill(sy_resolver_entry_t *e, uint64_t now, sy_resolver_plan_t *plan)
{
    plan->entry = e;
    plan->generation = atomic_load_explicit(&e->generation, memory_order_relaxed);
    plan->count = 0;
    if (!e->count)
        return;
    size_t start = e->rr++ % e->count;
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < e->count; k++) {
            const addr_state_t *a = &e->addrs[(start + k) % e->count];
            bool usable = a->set_aside_until <= now;
            if (usable == (pass == 0))
                plan->addrs[plan->count++] = a->ip;
        }
}

/* The smallest TTL of the answer's records (CNAMEs included). */
static uint32_t answer_ttl(const struct ares_addrinfo *ai)
{
    long ttl = SY_RESOLVER_MAX_TTL_S;
    for (const struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next)
        if (n->ai_ttl < ttl)
            ttl = n->ai_ttl;
    for (const struct ares_addrinfo_cname *c = ai->cnames; c; c = c->next)
        if (c->ttl < ttl)
            ttl = c->ttl;
    if (ttl < SY_RESOLVER_MIN_TTL_S)
        ttl = SY_RESOLVER_MIN_TTL_S;
    return (uint32_t)ttl;
}

static void entry_failed(sy_resolver_entry_t *e, uint64_t now, const char *why)
{
    e->failures++;
    snprintf(e->last_error, sizeof e->last_error, "%s", why);
    if (e->has_answer && !e->failing)
        sy_log(SY_LOG_WARN, "DNS lookup failed; the last good answer keeps serving", "host",
               e->name, "error", why, NULL);
    else if (!e->has_answer && !e->failing)
        sy_log(SY_LOG_WARN, "DNS lookup failed", "host", e->name, "error", why, NULL);
    e->failing = true;
    (void)now;
}

/* When a fresh answer should be refreshed: in the last tenth of its TTL
 * (at least 1 s before it runs out, at most half the TTL), so a name in
 * use never expires and still costs one lookup per TTL. */
static uint64_t refresh_time(const sy_resolver_entry_t *e)
{
    uint64_t ttl_ms = (uint64_t)e->ttl_s * 1000, margin = ttl_ms / 10;
    if (margin < 1000)
        margin = 1000;
    if (margin > ttl_ms / 2)
        margin = ttl_ms / 2;
    return e->expires_ms - margin;
}

/* Applies a finished query's result to its entry. */
static void entry_apply(sy_resolver_entry_t *e, int status, const struct ares_addrinfo *ai,
                        uint64_t now)
{
    e->refreshing = false;
    e->last_attempt_ms = now;
    e->refused = false;
    /* After a failure, the next refresh is due in a second. */
    atomic_store_explicit(&e->refresh_at, now + 1000, memory_order_relaxed);
    if (status != ARES_SUCCESS || !ai || !ai->nodes) {
        entry_failed(e, now, status == ARES_SUCCESS ? "empty answer" : ares_strerror(status));
        return;
    }
    sy_ip_t found[SY_RESOLVER_MAX_ADDRS];
    size_t n = 0;
    for (const struct ares_addrinfo_node *node = ai->nodes; node; node = node->ai_next) {
        sy_ip_t ip;
        if (!sy_ip_from_sockaddr(node->ai_addr, &ip))
            continue;
        /* Loopback is the policy's to allow, per connection; the rest of
         * the guard's refusals are final for any policy. */
        const char *refusal = sy_addr_refusal(node->ai_addr, true);
        if (refusal) {
            char text[64];
            sy_ip_format(&ip, text, sizeof text);
            e->refused_answers++;
            e->failures++;
            e->failing = true;
            e->refused = true;
            snprintf(e->last_error, sizeof e->last_error, "answer names %s (%s); refused whole",
                     text, refusal);
            sy_log(SY_LOG_ERROR, "security: DNS answer refused", "host", e->name, "address", text,
                   "reason", refusal, "kept", e->has_answer ? "last good answer" : "none", NULL);
            return;
        }
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup = dup || ip_eq(&found[k], &ip);
        if (!dup && n < SY_RESOLVER_MAX_ADDRS)
            found[n++] = ip;
    }
    if (!n) {
        entry_failed(e, now, "answer has no IPv4 or IPv6 address");
        return;
    }
    /* Keep what was learned about addresses that stay. */
    addr_state_t next[SY_RESOLVER_MAX_ADDRS];
    bool changed = n != e->count;
    for (size_t k = 0; k < n; k++) {
        next[k] = (addr_state_t){.ip = found[k]};
        bool kept = false;
        for (size_t j = 0; j < e->count; j++)
            if (ip_eq(&e->addrs[j].ip, &found[k])) {
                next[k] = e->addrs[j];
                kept = true;
            }
        changed = changed || !kept;
    }
    memcpy(e->addrs, next, n * sizeof *next);
    e->count = n;
    if (changed)
        atomic_fetch_add_explicit(&e->generation, 1, memory_order_release);
    if (e->failing && e->has_answer)
        sy_log(SY_LOG_INFO, "DNS answers again", "host", e->name, NULL);
    e->failing = false;
    e->last_error[0] = '\0';
    e->has_answer = true;
    e->ttl_s = answer_ttl(ai);
    e->received_ms = now;
    e->expires_ms = now + (uint64_t)e->ttl_s * 1000;
    atomic_store_explicit(&e->refresh_at, refresh_time(e), memory_order_relaxed);
}

/* ---- c-ares on a libuv loop --------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm_timer(sy_resolver_t *r)
{
    struct timeval tv, *tvp = r->channel_open ? ares_timeout(r->channel, NULL, &tv) : NULL;
    if (!tvp) {
        uv_timer_stop(&r->timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
    uv_timer_start(&r->timer, on_timer, ms ? ms : 1, 0);
}

static void on_timer(uv_timer_t *t)
{
    sy_resolver_t *r = t->data;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timer(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    sy_resolver_t *r;
    if (h->type == UV_POLL) {
        sock_poll_t *sp = h->data;
        r = sp->r;
        free(sp);
    } else {
        r = h->data;
    }
    if (--r->open_handles == 0)
        free(r);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_poll_t *sp = p->data;
    sy_resolver_t *r = sp->r;
    /* An error is passed on as readable: c-ares then reads, sees the
     * error and fails over to the next server. */
    ares_socket_t rfd = (status < 0 || (events & UV_READABLE)) ? sp->fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (status >= 0 && (events & UV_WRITABLE)) ? sp->fd : ARES_SOCKET_BAD;
    ares_process_fd(r->channel, rfd, wfd);
    arm_timer(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    sy_resolver_t *r = data;
    sock_poll_t **link = &r->polls, *sp;
    while ((sp = *link) && sp->fd != fd)
        link = &sp->next;
    if (!readable && !writable) {
        if (sp) {
            *link = sp->next;
            uv_poll_stop(&sp->poll);
            uv_close((uv_handle_t *)&sp->poll, on_handle_closed);
        }
        return;
    }
    if (!sp) {
        sp = calloc(1, sizeof *sp);
        if (!sp || uv_poll_init_socket(r->loop, &sp->poll, fd) != 0) {
            free(sp);
            return; /* c-ares times the query out */
        }
        sp->fd = fd;
        sp->r = r;
        sp->poll.data = sp;
        r->open_handles++;
        sp->next = r->polls;
        r->polls = sp;
    }
    uv_poll_start(&sp->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

/* ---- lookups ------------------------------------------------------------ */

static void query_unlink(query_t *q)
{
    for (query_t **link = &q->r->queries; *link; link = &(*link)->next)
        if (*link == q) {
            *link = q->next;
            return;
        }
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    (void)timeouts;
    query_t *q = arg;
    q->done = true;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        pthread_mutex_lock(&cache.lock);
        q->entry->refreshing = false;
        atomic_store_explicit(&q->entry->refresh_at, 0, memory_order_relaxed);
        pthread_mutex_unlock(&cache.lock);
        ares_freeaddrinfo(ai);
        query_unlink(q);
        free(q);
        return;
    }
    uint64_t now = sy_now_ms();
    pthread_mutex_lock(&cache.lock);
    entry_apply(q->entry, status, ai, now);
    pthread_mutex_unlock(&cache.lock);
    ares_freeaddrinfo(ai);
    if (q->starting)
        return; /* answered synchronously: sy_resolve reads the entry */
    query_unlink(q);
    sy_resolve_req_t *w = q->waiters;
    q->waiters = NULL;
    while (w) {
        sy_resolve_req_t *next = w->next;
        w->query = NULL;
        w->next = NULL;
        sy_resolver_plan_t plan;
        sy_resolve_status_t st = SY_RESOLVE_OK;
        const char *why = NULL;
        char reason[200];
        pthread_mutex_lock(&cache.lock);
        sy_resolver_entry_t *e = q->entry;
        bool usable = e->has_answer &&
                      now < e->received_ms + ((uint64_t)e->ttl_s + SY_RESOLVER_STALE_MAX_S) * 1000;
        if (usable) {
            plan_fill(e, now, &plan);
            plan.stale = e->failing;
            if (e->failing)
                e->stale_served++;
        } else {
            plan.count = 0;
            plan.entry = e;
            st = e->refused ? SY_RESOLVE_REFUSED : SY_RESOLVE_FAILED;
            snprintf(reason, sizeof reason, "%s", e->last_error);
            why = reason;
        }
        pthread_mutex_unlock(&cache.lock);
        w->cb(w, st, &plan, why);
        w = next;
    }
    free(q);
}

/* Starts a query for e on r (cache.lock not held). Returns the query, or
 * NULL when it finished synchronously (the entry is updated) or could not
 * start. */
static query_t *query_start(sy_resolver_t *r, sy_resolver_entry_t *e, bool *sync_done)
{
    *sync_done = false;
    if (!r || r->closing)
        return NULL;
    query_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->r = r;
    q->entry = e;
    q->starting = true;
    q->next = r->queries;
    r->queries = q;
    struct ares_addrinfo_hints hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(r->channel, e->name, NULL, &hints, on_addrinfo, q);
    q->starting = false;
    if (q->done) {
        query_unlink(q);
        free(q);
        *sync_done = true;
        return NULL;
    }
    arm_timer(r);
    return q;
}

static query_t *query_find(sy_resolver_t *r, sy_resolver_entry_t *e)
{
    for (query_t *q = r->queries; q; q = q->next)
        if (q->entry == e && !q->done)
            return q;
    return NULL;
}

typedef enum { DECIDE_SERVE, DECIDE_WAIT, DECIDE_FAIL } decision_t;

/* What a lookup of e at now gets; sets *refresh when a background query
 * should start. Called with cache.lock held. */
static decision_t entry_decide(sy_resolver_entry_t *e, uint64_t now, bool *refresh, bool *stale)
{
    *refresh = false;
    *stale = false;
    if (e->literal)
        return DECIDE_SERVE;
    if (e->has_answer && now < e->expires_ms) {
        if (now >= refresh_time(e) && !e->refreshing &&
            (!e->failing || now >= e->last_attempt_ms + 1000))
            *refresh = true;
        return DECIDE_SERVE;
    }
    bool usable = e->has_answer &&
                  now < e->received_ms + ((uint64_t)e->ttl_s + SY_RESOLVER_STALE_MAX_S) * 1000;
    if (usable) {
        /* Past its TTL: served at once (a silent DNS server must not delay
         * requests), refreshed in the background at most once a second. */
        *stale = true;
        if (!e->refreshing && now >= e->last_attempt_ms + 1000)
            *refresh = true;
        return DECIDE_SERVE;
    }
    if (e->failing && now < e->last_attempt_ms + 1000)
        return DECIDE_FAIL; /* failed a moment ago: don't ask again per connection */
    return DECIDE_WAIT;
}

bool sy_resolve(sy_resolver_t *r, sy_resolve_req_t *req, const char *name, sy_resolver_plan_t *plan,
                sy_resolve_status_t *status, const char **why)
{
    static __thread char reason[200];
    *status = SY_RESOLVE_OK;
    *why = NULL;
    req->query = NULL;
    req->next = NULL;
    plan->count = 0;
    plan->stale = false;
    sy_ip_t literal;
    bool is_literal = parse_literal(name, &literal);
    for (int round = 0; round < 2; round++) {
        uint64_t now = sy_now_ms();
        pthread_mutex_lock(&cache.lock);
        sy_resolver_entry_t *e = entry_get(name);
        if (!e) {
            pthread_mutex_unlock(&cache.lock);
            *status = SY_RESOLVE_FAILED;
            *why = "out of memory";
            return true;
        }
        if (is_literal && !e->literal) {
            e->literal = true;
            atomic_store_explicit(&e->refresh_at, UINT64_MAX, memory_order_relaxed);
            e->has_answer = true;
            e->count = 1;
            e->addrs[0] = (addr_state_t){.ip = literal};
        }
        bool refresh, stale;
        decision_t d = entry_decide(e, now, &refresh, &stale);
        if (d == DECIDE_WAIT && round == 1) {
            /* a synchronous answer that left nothing usable */
            d = DECIDE_FAIL;
        }
        if (d == DECIDE_SERVE) {
            plan_fill(e, now, plan);
            plan->stale = stale;
            if (stale)
                e->stale_served++;
            if (refresh) {
                e->refreshing = true;
                atomic_store_explicit(&e->refresh_at, UINT64_MAX, memory_order_relaxed);
                e->lookups++;
            }
        } else if (d == DECIDE_FAIL) {
            plan->entry = e;
            *status = e->refused ? SY_RESOLVE_REFUSED : SY_RESOLVE_FAILED;
            snprintf(reason, sizeof reason, "%s", e->last_error[0] ? e->last_error : "no answer");
            *why = reason;
        } else if (!query_find(r, e)) {
            e->lookups++;
        }
        pthread_mutex_unlock(&cache.lock);
        if (d == DECIDE_SERVE) {
            if (refresh) {
                bool sync_done;
                if (!query_start(r, e, &sync_done) && !sync_done) {
                    pthread_mutex_lock(&cache.lock);
                    e->refreshing = false;
                    pthread_mutex_unlock(&cache.lock);
                }
            }
            return true;
        }
        if (d == DECIDE_FAIL)
            return true;
        query_t *q = query_find(r, e);
        if (!q) {
            bool sync_done;
            q = query_start(r, e, &sync_done);
            if (!q && sync_done)
                continue; /* the entry changed: decide again */
            if (!q) {
                *status = SY_RESOLVE_FAILED;
                *why = r && !r->closing ? "out of memory" : "DNS resolver not running";
                return true;
            }
        }
        req->query = q;
        req->next = q->waiters;
        q->waiters = req;
        return false;
    }
    return true; /* not reached */
}

void sy_resolve_cancel(sy_resolve_req_t *req)
{
    query_t *q = req->query;
    if (!q)
        return;
    for (sy_resolve_req_t **link = &q->waiters; *link; link = &(*link)->next)
        if (*link == req) {
            *link = req->next;
            break;
        }
    req->query = NULL;
    req->next = NULL;
}

void sy_resolver_touch(sy_resolver_t *r, sy_resolver_entry_t *e, uint64_t now)
{
    if (!e || now < atomic_load_explicit(&e->refresh_at, memory_order_relaxed))
        return;
    bool refresh, stale;
    pthread_mutex_lock(&cache.lock);
    entry_decide(e, now, &refresh, &stale);
    if (refresh) {
        e->refreshing = true;
        atomic_store_explicit(&e->refresh_at, UINT64_MAX, memory_order_relaxed);
        e->lookups++;
    }
    pthread_mutex_unlock(&cache.lock);
    if (refresh) {
        bool sync_done;
        if (!query_start(r, e, &sync_done) && !sync_done) {
            pthread_mutex_lock(&cache.lock);
            e->refreshing = false;
            pthread_mutex_unlock(&cache.lock);
        }
    }
}

/* ---- what connections learn ---------------------------------------------- */

void sy_resolver_report(sy_resolver_entry_t *e, const sy_ip_t *addr, bool ok)
{
    if (!e)
        return;
    uint64_t now = sy_now_ms();
    pthread_mutex_lock(&cache.lock);
    for (size_t k = 0; k < e->count; k++) {
        addr_state_t *a = &e->addrs[k];
        if (!ip_eq(&a->ip, addr))
            continue;
        if (ok) {
            a->failures = 0;
            a->set_aside_until = 0;
        } else {
            unsigned shift = a->failures < 6 ? a->failures : 6;
            uint64_t backoff = (uint64_t)1000 << shift; /* 1 s, 2 s, ... 64 s */
            if (backoff > 60000)
                backoff = 60000;
            a->failures++;
            a->set_aside_until = now + backoff;
            e->set_aside++;
            char text[64], ms[24];
            sy_ip_format(addr, text, sizeof text);
            snprintf(ms, sizeof ms, "%llu", (unsigned long long)backoff);
            sy_log(SY_LOG_WARN, "upstream address set aside", "host", e->name, "address", text,
                   "for_ms", ms, NULL);
        }
    }
    pthread_mutex_unlock(&cache.lock);
}

void sy_resolver_count_moved(sy_resolver_entry_t *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&cache.lock);
    e->moved++;
    pthread_mutex_unlock(&cache.lock);
}

bool sy_resolver_address_current(sy_resolver_entry_t *e, const sy_ip_t *addr, uint32_t *generation)
{
    if (!e)
        return true;
    uint32_t g = atomic_load_explicit(&e->generation, memory_order_acquire);
    if (g == *generation)
        return true;
    bool found = false;
    pthread_mutex_lock(&cache.lock);
    for (size_t k = 0; k < e->count && !found; k++)
        found = ip_eq(&e->addrs[k].ip, addr);
    pthread_mutex_unlock(&cache.lock);
    if (found)
        *generation = g;
    return found;
}

/* ---- lifecycle ------------------------------------------------------------ */

bool sy_resolver_global_init(const char *servers, sy_error_t *err)
{
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        sy_error_set(err, "c-ares: %s", ares_strerror(rc));
        return false;
    }
    free(cache.servers);
    cache.servers = servers && *servers ? strdup(servers) : NULL;
    if (servers && *servers) {
        /* Validate the list once, here, so a typo fails the start. */
        ares_channel probe;
        if (ares_init(&probe) != ARES_SUCCESS) {
            sy_error_set(err, "c-ares: could not initialise");
            return false;
        }
        rc = ares_set_servers_ports_csv(probe, servers);
        ares_destroy(probe);
        if (rc != ARES_SUCCESS) {
            sy_error_set(err, "--resolver %s: expected ADDR[:PORT] (IPv6 as [ADDR]:PORT): %s",
                         servers, ares_strerror(rc));
            return false;
        }
    }
    return true;
}

void sy_resolver_global_cleanup(void)
{
    pthread_mutex_lock(&cache.lock);
    for (size_t b = 0; b < BUCKETS; b++) {
        sy_resolver_entry_t *e = cache.buckets[b];
        while (e) {
            sy_resolver_entry_t *next = e->next;
            free(e);
            e = next;
        }
        cache.buckets[b] = NULL;
    }
    free(cache.servers);
    cache.servers = NULL;
    pthread_mutex_unlock(&cache.lock);
    ares_library_cleanup();
}

sy_resolver_t *sy_resolver_new(uv_loop_t *loop, sy_error_t *err)
{
    sy_resolver_t *r = calloc(1, sizeof *r);
    if (!r) {
        sy_error_set(err, "out of memory");
        return NULL;
    }
    r->loop = loop;
    struct ares_options opts = {0};
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = r;
    opts.timeout = 1000; /* ms per try; a silent server costs 2 tries */
    opts.tries = 2;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int rc = ares_init_options(&r->channel, &opts, mask);
    if (rc == ARES_SUCCESS && cache.servers)
        rc = ares_set_servers_ports_csv(r->channel, cache.servers);
    if (rc != ARES_SUCCESS) {
        sy_error_set(err, "DNS resolver: %s", ares_strerror(rc));
        if (r->channel)
            ares_destroy(r->channel);
        free(r);
        return NULL;
    }
    r->channel_open = true;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->open_handles = 1;
    return r;
}

void sy_resolver_close(sy_resolver_t *r)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    for (query_t *q = r->queries; q; q = q->next) {
        for (sy_resolve_req_t *w = q->waiters; w; w = w->next)
            w->query = NULL;
        q->waiters = NULL;
    }
    r->channel_open = false;
    ares_destroy(r->channel); /* queries end with ARES_EDESTRUCTION, sockets close */
    while (r->polls) {
        sock_poll_t *sp = r->polls;
        r->polls = sp->next;
        uv_poll_stop(&sp->poll);
        uv_close((uv_handle_t *)&sp->poll, on_handle_closed);
    }
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
}

/* ---- views ------------------------------------------------------------------ */

static const struct {
    const char *name, *help;
    size_t offset;
} counters[] = {
    {"switchyard_dns_lookups_total", "DNS lookups started, per upstream name",
     offsetof(sy_resolver_entry_t, lookups)},
    {"switchyard_dns_failures_total", "DNS lookups that failed, timed out or were refused",
     offsetof(sy_resolver_entry_t, failures)},
    {"switchyard_dns_stale_answers_total",
     "connections planned on an answer past its TTL (DNS failing, silent, or the name idle)",
     offsetof(sy_resolver_entry_t, stale_served)},
    {"switchyard_dns_refused_answers_total",
     "DNS answers refused whole because they named an address the guard refuses",
     offsetof(sy_resolver_entry_t, refused_answers)},
    {"switchyard_upstream_addresses_set_aside_total",
     "upstream addresses set aside after a refused or timed-out connect",
     offsetof(sy_resolver_entry_t, set_aside)},
    {"switchyard_upstream_connects_moved_total",
     "connects that moved on to the next address of the answer",
     offsetof(sy_resolver_entry_t, moved)},
};

void sy_resolver_render_metrics(sy_resolver_write_fn write, void *ctx)
{
    char line[512];
    pthread_mutex_lock(&cache.lock);
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name,
                         counters[c].help, counters[c].name);
        write(ctx, line, (size_t)n);
        for (size_t b = 0; b < BUCKETS; b++)
            for (sy_resolver_entry_t *e = cache.buckets[b]; e; e = e->next) {
                if (e->literal)
                    continue;
                uint64_t v = *(const uint64_t *)((const char *)e + counters[c].offset);
                n = snprintf(line, sizeof line, "%s{host=\"%s\"} %llu\n", counters[c].name, e->name,
                             (unsigned long long)v);
                if (n > 0 && (size_t)n < sizeof line)
                    write(ctx, line, (size_t)n);
            }
    }
    int n = snprintf(line, sizeof line,
                     "# HELP switchyard_dns_addresses addresses in the current answer, per name\n"
                     "# TYPE switchyard_dns_addresses gauge\n");
    write(ctx, line, (size_t)n);
    for (size_t b = 0; b < BUCKETS; b++)
        for (sy_resolver_entry_t *e = cache.buckets[b]; e; e = e->next) {
            if (e->literal)
                continue;
            n = snprintf(line, sizeof line, "switchyard_dns_addresses{host=\"%s\"} %zu\n", e->name,
                         e->has_answer ? e->count : (size_t)0);
            if (n > 0 && (size_t)n < sizeof line)
                write(ctx, line, (size_t)n);
        }
    pthread_mutex_unlock(&cache.lock);
}

json_t *sy_resolver_config_json(void)
{
    json_t *names = json_array();
    uint64_t now = sy_now_ms();
    pthread_mutex_lock(&cache.lock);
    for (size_t b = 0; b < BUCKETS && names; b++)
        for (sy_resolver_entry_t *e = cache.buckets[b]; e; e = e->next) {
            if (e->literal)
                continue;
            json_t *addrs = json_array();
            for (size_t k = 0; k < e->count; k++) {
                char text[64];
                sy_ip_format(&e->addrs[k].ip, text, sizeof text);
                uint64_t until = e->addrs[k].set_aside_until;
                json_array_append_new(addrs,
                                      json_pack("{s:s, s:I}", "address", text, "set_aside_ms",
                                                (json_int_t)(until > now ? until - now : 0)));
            }
            long ttl_left = e->has_answer ? (long)((int64_t)(e->expires_ms - now) / 1000) : 0;
            json_array_append_new(
                names, json_pack("{s:s, s:I, s:I, s:b, s:o, s:o}", "host", e->name, "ttl_seconds",
                                 (json_int_t)e->ttl_s, "ttl_left_seconds", (json_int_t)ttl_left,
                                 "stale", e->has_answer && e->failing, "last_error",
                                 e->last_error[0] ? json_string(e->last_error) : json_null(),
                                 "addresses", addrs));
        }
    pthread_mutex_unlock(&cache.lock);
    return names;
}
