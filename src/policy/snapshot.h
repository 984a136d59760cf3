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

struct sy_tls_trust; /* net/tls.h */

/*
 * Where the requests of the routes to one destination and target host go,
 * computed once when the snapshot is built (sy_forward_prepare,
 * route/forward.h) and shared by those routes, so the request path
 * formats nothing: where and how to connect, the pool key, the Host sent
 * upstream and the start of the URL that is logged.
 */
typedef struct {
    /* Connect target: connect_to, else the target host and port. */
    const char *host;
    size_t host_len;
    uint16_t port;
    bool https;
    bool allow_loopback;              /* the address guard's setting it was planned under */
    const char *sni;                  /* https: the SNI, NULL to send none */
    const char *verify_name;          /* https: the name the certificate must be valid for */
    char *verify_check;               /* verify_name as OpenSSL's host check takes it */
    const struct sy_tls_trust *trust; /* https: the trust store (snapshot->trusts) */
    /* Everything that makes two connections interchangeable, address
     * guard included, and its hash: the per-worker pool index. */
    char *key;
    size_t key_len;
    uint64_t key_hash;
    /* The request: Host sent upstream, and "scheme://host[:port]" (the
     * port only when not the scheme's default) that starts the logged
     * and /explain'ed upstream URL. */
    char *host_header;
    size_t host_header_len;
    char *url_prefix;
    size_t url_prefix_len;
    size_t api_id_len; /* the destination's api_id, when it has one */
} sy_forward_target_t;

/* A route's part of the forward plan: its target and its base's length. */
typedef struct {
    const sy_forward_target_t *target; /* NULL unless the route is active */
    size_t base_len;
} sy_route_forward_t;

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
    /* forward[i] belongs to routes->items[i] (target set for active
     * routes); targets: one per (destination, target host) in use. */
    sy_route_forward_t *forward;
    sy_forward_target_t *targets;
    size_t target_count;
    /* One per distinct trust store of an https destination; the client
     * contexts workers connect with (no process-wide cache, no lock). */
    struct sy_tls_trust *trusts;
    size_t trust_count;
    /* The pool keys of this snapshot's routes, as sorted unique hashes: a
     * worker closes idle connections whose key left the configuration. */
    uint64_t *key_hashes;
    size_t key_hash_count;
} sy_snapshot_t;

/*
 * Checks every route against the policy and builds the matcher. Takes
 * ownership of policy and routes (also on failure). A route is rejected
 * (reason set, still owning its path) when its target matches no
 * destination, its auth names no policy, its domain is not a listen domain,
 * it breaks its destination's bindings (allowed_paths, allowed_auth: the
 * reason names the binding and the value), or it was malformed; a later duplicate of a path is
 * rejected and owns nothing. Disabled routes (enabled: false) are left out of the matcher. Then
 * each active route's forward data is prepared, and the trust store of each https destination built
 * (its ca_file read; a store that fails to load makes its requests 502 with the reason, as a failed
 * handshake would), sharing the client contexts of the current snapshot's stores whose contents are
 * unchanged. Returns NULL only when out of memory.
 */
sy_snapshot_t *sy_snapshot_build(sy_policy_t *policy, sy_route_list_t *routes, sy_error_t *err);

/* The forward data of a route of this snapshot (NULL when not active). */
const sy_route_forward_t *sy_snapshot_route_forward(const sy_snapshot_t *snap,
                                                    const sy_route_t *route);

/* Whether some route of snap connects with a pool key of this hash. */
bool sy_snapshot_has_key(const sy_snapshot_t *snap, uint64_t key_hash);

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
