/*
 * domains.h: the set of listen domains (SPEC §2) as a hash table, so a
 * request's Host is checked in O(1) whatever the number of domains and a
 * policy of 200,000 names loads in linear time.
 * Thread: built by the control plane while a policy is parsed, then
 * read-only and safe from every worker at once. Pointers: names are
 * borrowed and must outlive the set (the policy owns them).
 */
#ifndef SY_ROUTE_DOMAINS_H
#define SY_ROUTE_DOMAINS_H

#include "core/common.h"

typedef struct sy_domain_set sy_domain_set_t;

sy_domain_set_t *sy_domain_set_new(size_t expected_names);
void sy_domain_set_free(sy_domain_set_t *set);

/* Adds name: lower-case, no trailing dot, "*." + a domain for a wildcard.
 * index is what a later duplicate reports. false when name is already in
 * the set (*duplicate_of: the index it was added with) or out of memory
 * (*duplicate_of: SIZE_MAX). */
bool sy_domain_set_add(sy_domain_set_t *set, const char *name, size_t index, size_t *duplicate_of);

/* host: without port or trailing dot, any case. True when it equals a name
 * or is exactly one label more than a wildcard's domain ("*.a.b" takes
 * "x.a.b", never "a.b" or "y.x.a.b"). */
bool sy_domain_set_contains(const sy_domain_set_t *set, sy_slice_t host);

#endif
