/*
 * forward.h: the forward plan, the one pure function that says how a
 * decided request goes upstream: the connect target (host, port, SNI,
 * verify name, trust store) and its pool key, the Host and target sent,
 * the headers added and dropped, and the upstream URL to log. The proxy
 * (src/proxy/client.c) and /explain (src/admin/admin.c) both call it, so
 * /explain shows exactly what traffic gets, phase by phase.
 * Thread: any, with a snapshot reference held. Pointers: a plan borrows
 * from the snapshot, the request's path and query, and the auth result it
 * was given; it lives no longer than the shortest of them.
 */
#ifndef SY_ROUTE_FORWARD_H
#define SY_ROUTE_FORWARD_H

#include "auth/auth.h"
#include "http/serialize.h"
#include "policy/snapshot.h"

/* x-apigw-api-id plus the auth phase's forward_claims. */
#define SY_FORWARD_MAX_HEADERS (1 + SY_AUTH_MAX_FORWARD)
/* Dropped: x-apigw-api-id plus every distinct forward_claims header of
 * every policy. More distinct names than this and no plan is made (the
 * request fails closed with 502) rather than let one pass. */
#define SY_FORWARD_MAX_DROP 256

typedef struct {
    const sy_forward_target_t *connect; /* where and how to connect; key = pool key */
    sy_slice_t host_header;             /* Host sent upstream */
    sy_slice_t url_prefix;              /* "scheme://host[:port]" of the logged URL */
    /* The request target: base + path [+ "?" + query]. */
    sy_slice_t base;
    sy_slice_t path; /* after strip_prefix; "/" when that leaves nothing */
    bool has_query;
    sy_slice_t query;
    /* Headers set upstream (the client's copies of these names are dropped
     * by the serializer too), and client headers dropped. */
    sy_header_pair_t add[SY_FORWARD_MAX_HEADERS];
    size_t add_count;
    sy_slice_t drop[SY_FORWARD_MAX_DROP];
    size_t drop_count;
} sy_forward_plan_t;

/*
 * Plans the forward of a request the decision sent to `route` (active, of
 * `snap`), matched_len from the decision, path the canonical path without
 * its query. auth: the auth phase's result (NULL: none, as /explain
 * without credentials). false when the route has no forward data (not
 * active in this snapshot). Writes nothing but *out; no allocation.
 */
bool sy_forward_plan(const sy_snapshot_t *snap, const sy_route_t *route, size_t matched_len,
                     sy_slice_t path, bool has_query, sy_slice_t query,
                     const sy_auth_result_t *auth, sy_forward_plan_t *out);

/* Fills the route-dependent fields of the serializer's input (host_header,
 * base, path, add, drop) from the plan; the caller sets the client's. */
void sy_forward_plan_request(const sy_forward_plan_t *plan, sy_forward_request_t *fw);

/* The upstream URL: prefix + base + path [+ "?" + query], with the query's
 * values redacted when `redact` (the access log; SPEC §7). NUL-terminated,
 * cut short to fit cap; returns the length written. */
size_t sy_forward_url(const sy_forward_plan_t *plan, char *out, size_t cap, bool redact);

/* Computes, at snapshot build (control plane), the target shared by every
 * route to route's destination and target host: the connect target, SNI
 * and verify name (SPEC §2), the pool key with the policy's address-guard
 * setting, the upstream Host and URL prefix. trust: the https
 * destination's trust store (NULL for http). false when out of memory. */
bool sy_forward_prepare(sy_forward_target_t *out, const sy_policy_t *policy,
                        const sy_route_t *route, const struct sy_tls_trust *trust);
void sy_forward_release(sy_forward_target_t *f);

#endif
