// sources: src/policy/*.c src/route/*.c src/auth/*.c src/core/*.c src/net/*.c
// src/http/headers.c src/http/parser.c
// covers: src/policy/*.c src/route/*.c
/*
 * fuzz_documents.c: libFuzzer target for the two configuration documents.
 * Both come from stores other teams write (S3, DynamoDB), so their parsers
 * must survive any bytes: no crash, no leak, no undefined behaviour, and a
 * snapshot built from whatever parses must answer lookups.
 *
 * Input layout: policy text, a NUL byte, routes text. Without a NUL the
 * whole input is fed to both parsers, so plain JSON seeds work as they are.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void probe(const sy_snapshot_t *snap, const char *host, const char *path)
{
    size_t matched = 0;
    const sy_route_t *r =
        sy_snapshot_match(snap, sy_slice_cstr(host), sy_slice_cstr(path), &matched);
    if (r && (!r->path || matched > strlen(path)))
        abort(); /* a matched route always owns a path no longer than the request's */
    if (r && !r->rejected_reason && (!r->destination || !r->auth))
        abort(); /* an active route always has a destination and an auth policy */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t policy_len = nul ? (size_t)(nul - text) : size;
    const char *routes_text = nul ? nul + 1 : text;
    size_t routes_len = nul ? size - policy_len - 1 : size;
    sy_error_t err;

    sy_policy_t *policy = sy_policy_parse(text, policy_len, "policy.json", &err);
    sy_route_list_t *routes = sy_routes_parse_json(routes_text, routes_len, "routes.json", &err);

    /* The host helpers see the raw bytes too: they parse request headers. */
    sy_slice_t host;
    uint16_t port;
    if (sy_host_split(sy_slice(text, policy_len), &host, &port)) {
        char *name = sy_host_normalise(host, SY_HOST_WILDCARD | SY_HOST_IP);
        free(name);
        if (policy)
            (void)sy_policy_domain_listed(policy, host);
    }

    if (policy && routes) {
        sy_snapshot_t *snap = sy_snapshot_build(policy, routes, &err);
        if (snap) {
            if (snap->active_count + snap->rejected_count + snap->disabled_count !=
                snap->routes->count)
                abort();
            for (size_t i = 0; i < snap->routes->count && i < 8; i++) {
                const sy_route_t *r = &snap->routes->items[i];
                if (r->path)
                    probe(snap, r->domain ? r->domain : "api.example.com", r->path);
            }
            probe(snap, "api.example.com", "/");
            probe(snap, "api.example.com", "/orders/1");
            sy_snapshot_unref(snap);
        }
    } else {
        sy_policy_free(policy);
        sy_route_list_free(routes);
    }
    return 0;
}
