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
 * a short reason: "dot segment", "empty segment", "encoded slash",
 * "backslash", "encoded NUL", "double encoding", "bad percent-encoding",
 * "invalid UTF-8", "non-ASCII byte", ... */
const char *sy_path_check_request(sy_slice_t path);

/* Route path or target base from a document: starts with '/', no trailing
 * '/', no empty, "." or ".." segments, and it passes the request check; "/"
 * alone is allowed only when allow_root. NULL when valid, else the reason. */
const char *sy_path_check_route(sy_slice_t path, bool allow_root);

#endif
