/*
 * matcher.h: longest root-path match at segment boundaries (SPEC §3). Routes
 * are kept in a hash table keyed by path; a lookup probes the request
 * path's own prefixes from longest to shortest, so its cost depends on the
 * request path's segment count, never on the number of routes.
 * Thread: built by the control plane, then read-only and safe to read from
 * every worker at once. Pointers: values are the caller's and must outlive
 * the matcher.
 */
#ifndef SY_ROUTE_MATCHER_H
#define SY_ROUTE_MATCHER_H

#include "core/common.h"

typedef struct sy_matcher sy_matcher_t;

sy_matcher_t *sy_matcher_new(size_t expected_routes);
void sy_matcher_free(sy_matcher_t *m);

/* Adds a route: path as in SPEC §3 ("/" is the default route); domain NULL
 * means every listen domain. A path is added at most once (the route table's
 * key); returns false on a duplicate path or out of memory. Strings are
 * copied. */
bool sy_matcher_add(sy_matcher_t *m, sy_slice_t path, const char *domain, void *value);

/* The value of the longest route path that is a segment-boundary prefix of
 * `path` ("/orders" matches "/orders", "/orders/", "/orders/1", never
 * "/ordersx") and whose domain is NULL or equals `host` case-insensitively.
 * Case-sensitive on paths. Path parameters (";x" or "%3Bx" up to the end
 * of their segment) are ignored for matching: "/orders/admin;x" matches
 * "/orders/admin". *matched_len (may be NULL) is the matched route
 * path's length (0 for "/") as it is spelt in `path` (parameters of the
 * matched segments included). NULL when nothing matches. */
void *sy_matcher_lookup(const sy_matcher_t *m, sy_slice_t host, sy_slice_t path,
                        size_t *matched_len);

#endif
