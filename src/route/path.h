/*
 * path.h: the request-path and route-path validators (SPEC §5.3, §3). A path
 * is accepted only when switchyard and any backend must read it the same
 * way; anything that could be normalised differently is refused, never
 * rewritten.
 * Thread: any. Pointers: returned reasons are static strings.
 */
#ifndef SY_ROUTE_PATH_H
#define SY_ROUTE_PATH_H

#include "core/common.h"

/* Request path (origin-form, without the query). NULL when acceptable, else
 * a short reason: "path must start with '/'", "dot segment" ("." or "..",
 * raw or %2e in any case, also before a ';' parameter: "..;x"), "empty
 * segment" ("//" anywhere, or a segment that is only a ";" parameter; one
 * trailing '/' is fine: "/orders/"), "encoded slash", "encoded backslash",
 * "backslash", "encoded NUL", "encoded control byte", "double encoding"
 * (%25), "bad percent-encoding", "invalid UTF-8" (percent-encoded bytes
 * >= 0x80 that are not well-formed UTF-8: overlong, surrogate, truncated),
 * "non-ASCII byte", "control byte or space", "fragment in path", "query in
 * path", "cookieless session segment" (ASP.NET "(S(x))", which such
 * backends strip). */
const char *sy_path_check_request(sy_slice_t path);

/* Route path or target base from a document: starts with '/', no trailing
 * '/', no empty, "." or ".." segments, and it passes the request check; "/"
 * alone is allowed only when allow_root. NULL when valid, else the reason. */
const char *sy_path_check_route(sy_slice_t path, bool allow_root);

#endif
