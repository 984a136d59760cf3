/*
 * snapshot.c: builds the one immutable configuration the data plane reads
 * (policy + routes checked against it + matcher), and the single global
 * slot it is published through.
 *
 * Build order matters and is spelled out in sy_snapshot_build: duplicates
 * are settled first (the earliest item keeps the path), then each route is
 * checked against the policy. A rejected route still goes into the matcher,
 * so its requests get 502 instead of silently falling through to a shorter
 * route; only a later duplicate, a disabled route, or an item without a
 * usable path own nothing.
 *
 * Publishing: the slot is a pointer behind a mutex plus an atomic
 * generation counter. Workers poll the counter (one relaxed-cost atomic
 * load per request) and take the mutex only when it moved, to swap their
 * cached reference; the mutex is held for a pointer copy and a refcount
 * increment, never across a free or any I/O.
 */
#include "policy/snapshot.h"

#include "auth/auth.h"
#include "net/tls.h"
#include "route/forward.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static sy_snapshot_t *current;
static _Atomic uint64_t current_generation;
/* Snapshots waiting to be freed by the control plane (a Treiber stack:
 * pushed by whoever drops the last reference, taken whole by collect). */
static _Atomic(sy_snapshot_t *) garbage;
static atomic_bool defer_frees;

static bool set_reason(sy_route_t *route, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool set_reason(sy_route_t *route, const char *fmt, ...)
{
    char buf[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(route->rejected_reason);
    route->rejected_reason = strdup(buf);
    return route->rejected_reason != NULL;
}

/* Sorting pointers to routes by (path, position) puts every duplicate right
 * after the item that keeps the path. */
static int by_path_then_position(const void *a, const void *b)
{
    const sy_route_t *ra = *(const sy_route_t *const *)a, *rb = *(const sy_route_t *const *)b;
    int c = strcmp(ra->path, rb->path);
    return c ? c : (ra < rb ? -1 : ra > rb);
}

/* Marks later duplicates among the routes that would enter the matcher.
 * false when out of memory. */
static bool mark_duplicates(sy_route_list_t *routes, bool *duplicate)
{
    const sy_route_t **order = malloc((routes->count ? routes->count : 1) * sizeof *order);
    size_t n = 0;
    if (!order)
        return false;
    for (size_t i = 0; i < routes->count; i++)
        if (routes->items[i].path && routes->items[i].enabled)
            order[n++] = &routes->items[i];
    qsort(order, n, sizeof *order, by_path_then_position);
    for (size_t k = 1; k < n; k++)
        if (strcmp(order[k]->path, order[k - 1]->path) == 0)
            duplicate[order[k] - routes->items] = true;
    free(order);
    return true;
}

/* "a, b, c" (at most about 200 bytes, then "...") for a reason. */
static void list_text(char out[224], char *const *items, size_t count)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count && used < 200; i++)
        used += (size_t)snprintf(out + used, 224 - used, "%s%s", i ? ", " : "", items[i]);
    if (used >= 200)
        snprintf(out + 196, 28, "...");
}

/* The destination's bindings (issue: pipelines own routes, operations own
 * destinations): the route's path must lie under one of its allowed_paths
 * and its effective auth be one of its allowed_auth. Costs the length of
 * the destination's own lists, so a build stays linear in the routes.
 * false when out of memory. */
static bool check_bindings(sy_route_t *r)
{
    const sy_destination_t *d = r->destination;
    char list[224], path_why[640] = "", auth_why[640] = "";
    if (!sy_destination_allows_path(d, r->path)) {
        list_text(list, d->allowed_paths, d->allowed_path_count);
        /* A very long path is cut short in the message: that is the intent. */
        snprintf(path_why, sizeof path_why,
                 "path %s is outside destinations[%zu] (%s) allowed_paths [%s]: that destination "
                 "serves only routes under those paths",
                 r->path, d->index, d->host, list);
    }
    if (!sy_destination_allows_auth(d, r->auth->name)) {
        list_text(list, d->allowed_auth, d->allowed_auth_count);
        snprintf(auth_why, sizeof auth_why,
                 "auth '%s'%s is not in destinations[%zu] (%s) allowed_auth [%s]", r->auth->name,
                 r->auth_name ? "" : " (the default_auth)", d->index, d->host, list);
    }
    /* Both at once when both are broken: one fix, not two round trips. */
    if (path_why[0] || auth_why[0])
        return set_reason(r, "%s%s%s", path_why, path_why[0] && auth_why[0] ? "; " : "", auth_why);
    return true;
}

/* Checks a well-formed, enabled route against the policy; sets destination
 * and auth when found (also for /config when something else fails). false
 * when out of memory. */
static bool check_route(const sy_policy_t *policy, sy_route_t *r)
{
    r->destination = sy_policy_destination_find(policy, r->target_https,
                                                sy_slice_cstr(r->target_host), r->target_port);
    r->auth = r->auth_name ? sy_policy_auth_find(policy, sy_slice_cstr(r->auth_name))
                           : policy->default_auth;
    if (!r->destination)
        return set_reason(r, "target %s://%s:%u is not an allowed destination",
                          r->target_https ? "https" : "http", r->target_host,
                          (unsigned)r->target_port);
    if (!r->auth)
        return set_reason(r, "auth policy '%s' is not defined", r->auth_name);
    if (r->domain && !sy_policy_domain_listed(policy, sy_slice_cstr(r->domain)))
        return set_reason(r, "domain %s is not a listen domain", r->domain);
    return check_bindings(r);
}

static void snapshot_free(sy_snapshot_t *snap)
{
    for (size_t i = 0; i < snap->target_count; i++)
        sy_forward_release(&snap->targets[i]);
    free(snap->targets);
    free(snap->forward);
    for (size_t i = 0; i < snap->trust_count; i++)
        sy_tls_trust_free(&snap->trusts[i]);
    free(snap->trusts);
    free(snap->key_hashes);
    sy_matcher_free(snap->matcher);
    sy_route_list_free(snap->routes);
    sy_policy_free(snap->policy);
    free(snap);
}

/* The trust store for ca_file (NULL: system), built once per snapshot.
 * by_dest remembers each destination's, so this scan runs once per
 * destination, not once per route. */
static const sy_tls_trust_t *trust_for(sy_snapshot_t *snap, const sy_destination_t *d,
                                       const sy_tls_trust_t **by_dest,
                                       const sy_snapshot_t *previous, bool *oom)
{
    if (by_dest[d->index])
        return by_dest[d->index];
    const char *ca_file = d->ca_file;
    for (size_t i = 0; i < snap->trust_count; i++) {
        const char *have = snap->trusts[i].ca_file;
        if ((!have && !ca_file) || (have && ca_file && strcmp(have, ca_file) == 0))
            return by_dest[d->index] = &snap->trusts[i];
    }
    /* Room for one per destination was reserved: pointers stay valid. */
    sy_tls_trust_t *t = &snap->trusts[snap->trust_count];
    if (!sy_tls_trust_build(t, ca_file, previous ? previous->trusts : NULL,
                            previous ? previous->trust_count : 0)) {
        *oom = true;
        return NULL;
    }
    snap->trust_count++;
    return by_dest[d->index] = t;
}

static int by_hash(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool active(const sy_route_t *r)
{
    return r->path && r->enabled && !r->rejected_reason && r->destination && r->target_host;
}

/* Routes with the same destination and target host share a target: the
 * target's port and scheme are the destination's, so nothing else differs. */
static int by_target(const void *a, const void *b)
{
    const sy_route_t *x = *(const sy_route_t *const *)a, *y = *(const sy_route_t *const *)b;
    if (x->destination->index != y->destination->index)
        return x->destination->index < y->destination->index ? -1 : 1;
    return strcmp(x->target_host, y->target_host);
}

/* Each active route's forward data (route/forward.h): one target per
 * destination and target host in use, and the trust store of each https
 * destination, sharing the contexts of the current snapshot's unchanged
 * stores. false when out of memory. */
static bool prepare_forwarding(sy_snapshot_t *snap)
{
    size_t n = snap->routes->count, dests = snap->policy->destination_count;
    snap->forward = calloc(n ? n : 1, sizeof *snap->forward);
    snap->trusts = calloc(dests ? dests : 1, sizeof *snap->trusts);
    const sy_tls_trust_t **by_dest = calloc(dests ? dests : 1, sizeof *by_dest);
    sy_route_t **order = malloc((n ? n : 1) * sizeof *order);
    if (!snap->forward || !snap->trusts || !by_dest || !order) {
        free(by_dest);
        free(order);
        return false;
    }
    size_t count = 0, groups = 0;
    for (size_t i = 0; i < n; i++)
        if (active(&snap->routes->items[i]))
            order[count++] = &snap->routes->items[i];
    qsort(order, count, sizeof *order, by_target);
    for (size_t i = 0; i < count; i++)
        if (i == 0 || by_target(&order[i - 1], &order[i]) != 0)
            groups++;
    snap->targets = calloc(groups ? groups : 1, sizeof *snap->targets);
    snap->key_hashes = calloc(groups ? groups : 1, sizeof *snap->key_hashes);
    bool oom = !snap->targets || !snap->key_hashes;
    sy_snapshot_t *previous = oom ? NULL : sy_snapshot_acquire();
    sy_forward_target_t *target = NULL;
    for (size_t i = 0; i < count && !oom; i++) {
        const sy_route_t *r = order[i];
        if (i == 0 || by_target(&order[i - 1], &order[i]) != 0) {
            const sy_tls_trust_t *trust =
                r->target_https ? trust_for(snap, r->destination, by_dest, previous, &oom) : NULL;
            target = &snap->targets[snap->target_count];
            if (oom || !sy_forward_prepare(target, snap->policy, r, trust)) {
                oom = true;
                break;
            }
            snap->key_hashes[snap->target_count++] = target->key_hash;
        }
        sy_route_forward_t *f = &snap->forward[r - snap->routes->items];
        f->target = target;
        f->base_len = r->base ? strlen(r->base) : 0;
    }
    sy_snapshot_unref(previous);
    free(by_dest);
    free(order);
    if (oom)
        return false;
    /* Two destinations can share a key (the same connect_to): unique. */
    qsort(snap->key_hashes, snap->target_count, sizeof *snap->key_hashes, by_hash);
    size_t unique = 0;
    for (size_t i = 0; i < snap->target_count; i++)
        if (unique == 0 || snap->key_hashes[unique - 1] != snap->key_hashes[i])
            snap->key_hashes[unique++] = snap->key_hashes[i];
    snap->key_hash_count = unique;
    return true;
}

bool sy_snapshot_has_key(const sy_snapshot_t *snap, uint64_t key_hash)
{
    size_t lo = 0, hi = snap ? snap->key_hash_count : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (snap->key_hashes[mid] == key_hash)
            return true;
        if (snap->key_hashes[mid] < key_hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

const sy_route_forward_t *sy_snapshot_route_forward(const sy_snapshot_t *snap,
                                                    const sy_route_t *route)
{
    if (!snap || !route || !snap->forward || route < snap->routes->items ||
        route >= snap->routes->items + snap->routes->count)
        return NULL;
    const sy_route_forward_t *f = &snap->forward[route - snap->routes->items];
    return f->target ? f : NULL;
}

sy_snapshot_t *sy_snapshot_build(sy_policy_t *policy, sy_route_list_t *routes, sy_error_t *err)
{
    sy_error_clear(err);
    if (!policy) {
        sy_route_list_free(routes);
        sy_error_set(err, "no policy to build a snapshot from");
        return NULL;
    }
    if (!routes)
        routes = calloc(1, sizeof *routes);
    sy_snapshot_t *snap = calloc(1, sizeof *snap);
    bool *duplicate = routes ? calloc(routes->count ? routes->count : 1, sizeof *duplicate) : NULL;
    if (!snap || !duplicate) {
        free(snap);
        free(duplicate);
        sy_route_list_free(routes);
        sy_policy_free(policy);
        sy_error_set(err, "out of memory building the configuration snapshot");
        return NULL;
    }
    atomic_init(&snap->refs, 1);
    snap->policy = policy;
    snap->routes = routes;
    snap->matcher = sy_matcher_new(routes->count);
    if (!snap->matcher || !mark_duplicates(routes, duplicate))
        goto oom;

    for (size_t i = 0; i < routes->count; i++) {
        sy_route_t *r = &routes->items[i];
        if (!r->path) {
            /* Malformed beyond owning anything. */
            if (!r->rejected_reason && !set_reason(r, "malformed route"))
                goto oom;
            snap->rejected_count++;
            continue;
        }
        if (!r->enabled) {
            /* Left out even when malformed: whoever disabled it wants
             * traffic to go elsewhere, so it must not hold its path. */
            snap->disabled_count++;
            continue;
        }
        if (duplicate[i]) {
            if (!r->rejected_reason && !set_reason(r, "duplicate path"))
                goto oom;
            snap->rejected_count++;
            continue;
        }
        /* target_host is the last thing a fully parsed route lacks when
         * its reason could not be allocated: never let such a route serve. */
        if (!r->rejected_reason && !r->target_host && !set_reason(r, "malformed route"))
            goto oom;
        if (!r->rejected_reason && !check_route(policy, r))
            goto oom;
        r->path_len = strlen(r->path);
        r->rejected_reason_len = r->rejected_reason ? strlen(r->rejected_reason) : 0;
        if (!sy_matcher_add(snap->matcher, sy_slice(r->path, r->path_len), r->domain, r))
            goto oom; /* duplicates were settled above, so this is memory */
        if (r->rejected_reason)
            snap->rejected_count++;
        else
            snap->active_count++;
    }
    free(duplicate);
    if (!prepare_forwarding(snap))
        goto oom_built;
    return snap;

oom:
    free(duplicate);
oom_built:
    snapshot_free(snap);
    sy_error_set(err, "out of memory building the configuration snapshot");
    return NULL;
}

void sy_snapshot_ref(sy_snapshot_t *snap)
{
    if (snap)
        atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
}

void sy_snapshot_unref(sy_snapshot_t *snap)
{
    if (!snap)
        return;
    /* acq_rel: every read other threads made through their references
     * happens before the free. (A release decrement plus an acquire fence
     * would do too, but ThreadSanitizer does not model fences.) */
    if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (!atomic_load_explicit(&defer_frees, memory_order_acquire)) {
        snapshot_free(snap);
        return;
    }
    sy_snapshot_t *head = atomic_load_explicit(&garbage, memory_order_relaxed);
    do {
        snap->garbage_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&garbage, &head, snap, memory_order_release,
                                                    memory_order_relaxed));
}

void sy_snapshot_defer_frees(bool on)
{
    atomic_store_explicit(&defer_frees, on, memory_order_release);
}

size_t sy_snapshot_collect(void)
{
    /* Taking the whole stack at once: no ABA, since nothing pops singly. */
    sy_snapshot_t *list = atomic_exchange_explicit(&garbage, NULL, memory_order_acquire);
    size_t n = 0;
    while (list) {
        sy_snapshot_t *next = list->garbage_next;
        snapshot_free(list);
        list = next;
        n++;
    }
    return n;
}

const sy_route_t *sy_snapshot_match(const sy_snapshot_t *snap, sy_slice_t host, sy_slice_t path,
                                    size_t *matched_len)
{
    if (!snap || !snap->matcher)
        return NULL;
    if (host.len > 0 && host.ptr[host.len - 1] == '.')
        host.len--;
    return sy_matcher_lookup(snap->matcher, host, path, matched_len);
}

void sy_snapshot_publish(sy_snapshot_t *snap)
{
    /* Only a policy that is about to serve gets its jwks_uri sources
     * fetched: parsing one (check, the routes CLI) never touches the
     * network. Before the store below, so workers see the sources set. */
    if (snap && snap->policy)
        sy_auth_activate(snap->policy->auth_policies, snap->policy->auth_policy_count);
    pthread_mutex_lock(&current_lock);
    sy_snapshot_t *old = current;
    uint64_t generation = atomic_load(&current_generation) + 1;
    current = snap;
    if (snap)
        snap->generation = generation;
    /* Stored under the lock after the pointer: a worker that sees the new
     * generation and then takes the lock gets this snapshot or a newer one. */
    atomic_store(&current_generation, generation);
    pthread_mutex_unlock(&current_lock);
    sy_snapshot_unref(old); /* may free: outside the lock */
    /* Once frees are no longer deferred (shutdown), nothing may be left
     * waiting: a reference dropped while the switch happened lands here. */
    if (!atomic_load_explicit(&defer_frees, memory_order_acquire))
        sy_snapshot_collect();
}

sy_snapshot_t *sy_snapshot_acquire(void)
{
    pthread_mutex_lock(&current_lock);
    sy_snapshot_t *snap = current;
    sy_snapshot_ref(snap);
    pthread_mutex_unlock(&current_lock);
    return snap;
}

uint64_t sy_snapshot_current_generation(void)
{
    return atomic_load(&current_generation);
}

void sy_snapshot_reset_for_tests(void)
{
    sy_snapshot_publish(NULL);
}
