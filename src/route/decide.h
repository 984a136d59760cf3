/*
 * decide.h: the routing phases of SPEC §5 that need no I/O (host, path,
 * route, method) as one pure decision, shared by the proxy and by the admin
 * /explain endpoint so that what /explain says is what traffic gets.
 * Thread: any, with a snapshot reference held. Pointers: the decision
 * borrows from the snapshot and from its own message buffer.
 */
#ifndef SY_ROUTE_DECIDE_H
#define SY_ROUTE_DECIDE_H

#include "policy/snapshot.h"

typedef struct {
    int status;          /* 0: forward to route; else the answer's status */
    const char *message; /* the JSON message when status != 0 */
    size_t message_len;  /* its length (sy_http_write_answer takes slices) */
    const char *allow;   /* with 405: the Allow header value */
    size_t allow_len;
    const sy_route_t *route; /* the matched route, when one matched */
    size_t matched_len;      /* length of the matched route path */
    char message_buf[320];
} sy_decision_t; /* message may point into message_buf: fill in place, never copy */

/*
 * host_value: the Host field as received (port and one trailing dot
 * allowed). path_buf[0..*path_len): the request path without its query; it
 * is first rewritten in place into its canonical form
 * (sy_path_canonicalize) and *path_len shortened, whatever the decision, so
 * the caller matches, logs and forwards exactly the path decided on.
 * 421 when the host is not a listen domain, 400 when the canonical path
 * fails sy_path_check_request or carries a path parameter the policy does
 * not allow (sy_path_check_parameters), 404 with no route, 502 for a
 * rejected route ("route rejected: REASON"), 405 when the method isn't
 * allowed. The method is taken as the parser accepted it.
 */
void sy_decide(const sy_snapshot_t *snap, sy_slice_t host_value, char *path_buf, size_t *path_len,
               sy_slice_t method, sy_decision_t *out);

/* The part of the request path forwarded after the route's base: the path
 * itself, or with strip_prefix its rest after the matched root ("/" when
 * that leaves nothing). Borrows from path (or is the static "/"). This is
 * what the proxy passes as sy_forward_request_t.path, with route->base as
 * .base. */
sy_slice_t sy_decide_forward_path(const sy_route_t *route, size_t matched_len, sy_slice_t path);

/* Writes base + sy_decide_forward_path() + "?" + query when has_query, NUL
 * terminated (for /explain and logs). Returns the length without the NUL,
 * or 0 if it (and the NUL) does not fit in cap. */
size_t sy_decide_upstream_path(char *out, size_t cap, const sy_route_t *route, size_t matched_len,
                               sy_slice_t path, bool has_query, sy_slice_t query);

#endif
