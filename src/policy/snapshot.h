/*
 * snapshot.h: one immutable, reference-counted configuration: a policy,
 * the routes checked against it, and the matcher over them. The control
 * plane builds a snapshot off the request path and publishes it with an
 * atomic swap; a request holds a reference from start to end, so it runs on
 * exactly one snapshot and a reload never disturbs it.
 * Thread: build on the control plane; publish from the control plane;
 * acquire/release from any thread. Pointers: everything reachable from a
 * snapshot lives until its last reference is released.
 */
#ifndef SY_POLICY_SNAPSHOT_H
#define SY_POLICY_SNAPSHOT_H

#include <stdatomic.h>
#include <time.h>

#include "policy/policy.h"
#include "policy/routes.h"
#include "route/matcher.h"

typedef struct {
    char source[512]; /* URI as given */
    char version[80]; /* content hash or ETag */
    time_t loaded_at; /* wall clock of the successful load */
} sy_store_version_t;

typedef struct sy_snapshot {
    atomic_uint refs;
    uint64_t generation;
    sy_policy_t *policy;
    sy_route_list_t *routes;
    sy_matcher_t *matcher;
    size_t active_count;
    size_t rejected_count;
    size_t disabled_count;
    sy_store_version_t policy_version, routes_version;
    struct sy_snapshot *garbage_next; /* on the deferred-free list (sy_snapshot_collect) */
} sy_snapshot_t;

/*
 * Checks every route against the policy and builds the matcher. Takes
 * ownership of policy and routes (also on failure). A route is rejected
 * (reason set, still owning its path) when its target matches no
 * destination, its auth names no policy, its domain is not a listen domain,
 * it breaks its destination's bindings (allowed_paths, allowed_auth: the
 * reason names the binding and the value), or it was malformed; a later duplicate of a path is rejected and owns
 * nothing. Disabled routes (enabled: false) are left out of the matcher.
 * Returns NULL only when out of memory.
 */
sy_snapshot_t *sy_snapshot_build(sy_policy_t *policy, sy_route_list_t *routes, sy_error_t *err);

void sy_snapshot_ref(sy_snapshot_t *snap);
void sy_snapshot_unref(sy_snapshot_t *snap);

/* The route serving host+path (longest match), or NULL. The route may be
 * rejected: it still owns its path (SPEC §3). */
const sy_route_t *sy_snapshot_match(const sy_snapshot_t *snap, sy_slice_t host, sy_slice_t path,
                                    size_t *matched_len);

/* Publishes snap as the current snapshot (the caller's reference moves to
 * the global slot; the previous one is released). NULL empties the slot
 * (shutdown), so the last snapshot is freed once its readers let go. */
void sy_snapshot_publish(sy_snapshot_t *snap);
/* A new reference to the current snapshot, or NULL before the first publish. */
sy_snapshot_t *sy_snapshot_acquire(void);
/* Increases on every publish: lets a worker keep its cached reference until
 * something changed, without touching the shared refcount per request. */
uint64_t sy_snapshot_current_generation(void);

/* Deferred frees: while on, a snapshot whose last reference is dropped is
 * only put on a list (one atomic exchange), and sy_snapshot_collect frees
 * the list on the control plane. Freeing a snapshot costs time linear in
 * its routes; the last reference is usually dropped by a worker swapping
 * to a newer snapshot, which must cost it nothing that grows with the
 * table. Off (the default), the last unref frees at once. Collect returns
 * how many snapshots it freed; call it from the control plane only. */
void sy_snapshot_defer_frees(bool on);
size_t sy_snapshot_collect(void);

/* Empties the global slot, as sy_snapshot_publish(NULL): lets a test end
 * with nothing allocated. */
void sy_snapshot_reset_for_tests(void);

#endif
