/*
 * routes.h: the route registry (SPEC §3) as a list of items. Parsing checks
 * each item on its own; checking against the policy happens when a
 * snapshot is built. A bad item is never fatal to the list: it is kept,
 * marked rejected with its reason, and still owns its path.
 * Thread: control plane; read-only once inside a snapshot. Pointers: owned
 * by the sy_route_list_t.
 */
#ifndef SY_POLICY_ROUTES_H
#define SY_POLICY_ROUTES_H

#include <time.h>

#include "core/common.h"
#include "policy/policy.h"

typedef struct sy_route {
    char *path;   /* as given; NULL when the item had no usable path */
    char *target; /* as given */
    bool target_https;
    char *target_host; /* lower-case */
    uint16_t target_port;
    char *base;      /* "" or "/prod" */
    char *auth_name; /* NULL: the policy's default_auth */
    char *domain;    /* NULL: every listen domain; lower-case */
    char **methods;  /* NULL: all methods */
    size_t method_count;
    char *allow_header; /* "GET, POST" when methods are set */
    size_t allow_header_len;
    bool strip_prefix;
    bool enabled;
    char *owner, *updated_at, *description;

    /* Set when the snapshot is built: */
    const sy_destination_t *destination;
    const sy_auth_policy_t *auth;
    char *rejected_reason; /* NULL when the route is active */
    /* Lengths of path and rejected_reason, measured once when the snapshot
     * is built so the request path (decide, the access log) never does. */
    size_t path_len, rejected_reason_len;
    struct sy_route_stats *stats; /* metrics handle (core/metrics.h), set by the poller; the
                                   * list owns one reference */
    time_t changed_at; /* wall clock of this route's last change seen by this process (the
                          poller's audit); 0 when never published */
} sy_route_t;

typedef struct {
    sy_route_t *items;
    size_t count;
} sy_route_list_t;

/* Parses the file form: a JSON array of route objects (SPEC §3). A syntax
 * error or a non-array is a document error (NULL, err says
 * "routes.json:4:2: ..."); a bad item is kept with rejected_reason set, e.g.
 * "routes.json: [3].target: expected http:// or https:// URL". Unknown fields
 * reject the item: a misspelt field must not be silently ignored. */
sy_route_list_t *sy_routes_parse_json(const char *text, size_t len, const char *source_name,
                                      sy_error_t *err);

/* Fills one route from a JSON object (shared by the file form and, later,
 * unmarshalled DynamoDB items). item_name prefixes reasons. tolerate_unknown:
 * DynamoDB items carry pipeline-owned extra attributes. Returns false and
 * sets route->rejected_reason when the item is malformed. *route is
 * overwritten (it must own nothing yet); release it with the list it ends
 * up in. */
bool sy_route_from_json(sy_route_t *route, json_t *item, const char *item_name,
                        bool tolerate_unknown);

void sy_route_list_free(sy_route_list_t *list);

/* True when the route allows the method (case-sensitive, as HTTP is). */
bool sy_route_allows_method(const sy_route_t *route, sy_slice_t method);

#endif
