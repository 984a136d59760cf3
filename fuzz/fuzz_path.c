// sources: src/route/path.c src/route/matcher.c src/core/common.c
/*
 * fuzz_path.c: libFuzzer target for the request-path canonicaliser (issue
 * 9). The input is a request path. Properties checked on every input:
 *  - the canonical form is never longer than the input, and canonicalising
 *    it again changes nothing (idempotent);
 *  - it holds no percent-encoded unreserved character and no lower-case hex
 *    digit in an escape, unless the input had a broken escape, in which
 *    case it is the input unchanged;
 *  - sy_path_check_request gives the same verdict and reason before and
 *    after: canonicalising never turns a refused path into an accepted one;
 *  - for an accepted path, the route picked for the canonical form is the
 *    route a backend picks after decoding every escape and dropping ";x"
 *    path parameters (what Spring or a servlet container does), over a
 *    table of /orders, /orders/admin, /orders/readonly and /a/b. That is
 *    the security property: no spelling reaches a weaker route.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route/matcher.h"
#include "route/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sy_matcher_t *routes;

static const char *const route_paths[] = {"/orders", "/orders/admin", "/orders/readonly", "/a/b",
                                          "/%C3%A9"};

static bool unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool broken_escape(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%')
            continue;
        if (i + 2 >= n || sy_hex_value(p[i + 1]) < 0 || sy_hex_value(p[i + 2]) < 0)
            return true;
        i += 2;
    }
    return false;
}

/* What a backend matches on: every escape decoded, then ";..." dropped up
 * to the end of each segment. Returns the length written to out. */
static size_t backend_reading(const char *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n) {
            out[o++] = (char)(sy_hex_value(p[i + 1]) * 16 + sy_hex_value(p[i + 2]));
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    size_t w = 0;
    bool in_parameter = false;
    for (size_t i = 0; i < o; i++) {
        if (out[i] == '/')
            in_parameter = false;
        else if (out[i] == ';')
            in_parameter = true;
        if (!in_parameter)
            out[w++] = out[i];
    }
    return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!routes) {
        routes = sy_matcher_new(8);
        for (size_t i = 0; i < sizeof route_paths / sizeof route_paths[0]; i++)
            if (!sy_matcher_add(routes, sy_slice_cstr(route_paths[i]), NULL,
                                (void *)route_paths[i]))
                abort();
    }
    char *in = malloc(size + 1), *path = malloc(size + 1), *again = malloc(size + 1);
    char *decoded = malloc(size + 1);
    if (!in || !path || !again || !decoded)
        abort();
    memcpy(in, data, size);
    memcpy(path, data, size);

    size_t n = sy_path_canonicalize(path, size);
    if (n > size)
        abort();
    memcpy(again, path, n);
    if (sy_path_canonicalize(again, n) != n || memcmp(again, path, n) != 0)
        abort(); /* not idempotent */

    if (broken_escape(in, size)) {
        if (n != size || memcmp(in, path, size) != 0)
            abort(); /* a broken escape must leave the path as received */
    } else {
        for (size_t i = 0; i < n; i++) {
            if (path[i] != '%')
                continue;
            int b = sy_hex_value(path[i + 1]) * 16 + sy_hex_value(path[i + 2]);
            if (unreserved(b) || (path[i + 1] >= 'a' && path[i + 1] <= 'f') ||
                (path[i + 2] >= 'a' && path[i + 2] <= 'f'))
                abort(); /* an escape left in non-canonical form */
            i += 2;
        }
    }

    const char *before = sy_path_check_request(sy_slice(in, size));
    const char *after = sy_path_check_request(sy_slice(path, n));
    if ((before == NULL) != (after == NULL) || (before && strcmp(before, after) != 0))
        abort(); /* canonicalising changed the verdict */

    if (!after) {
        size_t ours = 0, theirs = 0;
        const char *route = sy_matcher_lookup(routes, SY_SLICE_LIT("h"), sy_slice(path, n), &ours);
        size_t d = backend_reading(path, n, decoded);
        const char *backend =
            sy_matcher_lookup(routes, SY_SLICE_LIT("h"), sy_slice(decoded, d), &theirs);
        /* "/%C3%A9" is a route written encoded: a backend decoding it sees
         * bytes no route path holds, so compare only ASCII routes there. */
        bool encoded_route = route && strchr(route, '%');
        if (!encoded_route && route != backend)
            abort(); /* this spelling picks another route than the backend reads */
        if (ours > n)
            abort();
    }
    free(in);
    free(path);
    free(again);
    free(decoded);
    return 0;
}
