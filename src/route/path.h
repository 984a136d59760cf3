/*
 * path.h: the request-path canonicaliser and the request-path and
 * route-path validators (SPEC §5.3, §3). A request path is first given its
 * one canonical spelling (sy_path_canonicalize), then accepted only when
 * switchyard and any backend must read it the same way; anything else that
 * could be normalised differently is refused, never rewritten.
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

/* Rewrites path[0..len) in place into its canonical form and returns the
 * new length (never more than len): percent-encoded unreserved characters
 * (RFC 3986 §2.3: ALPHA DIGIT - . _ ~) are decoded, the hex digits of every
 * other percent-encoding are upper-cased (§6.2.2.1-2). A path with a '%'
 * not followed by two hex digits is left as it is (sy_path_check_request
 * refuses it). Nothing else changes: no dot-segment removal, no case
 * folding. Idempotent. Run sy_path_check_request on the result. */
size_t sy_path_canonicalize(char *path, size_t len);

/* "path parameter" when path holds a ';' or an encoded one (%3B/%3b), else
 * NULL. Servlet containers and Spring drop ";x" before they match, so
 * "/orders/admin;x" would reach them as "/orders/admin"; refused unless the
 * policy's limits.allow_path_parameters says the APIs need them. */
const char *sy_path_check_parameters(sy_slice_t path);

/* Route path or target base from a document: starts with '/', no trailing
 * '/', no empty, "." or ".." segments, it passes the request check, it is in
 * canonical form (sy_path_canonicalize would not change it: "/%7Eu" or
 * "/%c3%a9" are refused with the reason, not rewritten, so the document says
 * what is matched) and it has no path parameter; "/" alone is allowed only
 * when allow_root. NULL when valid, else the reason. */
const char *sy_path_check_route(sy_slice_t path, bool allow_root);

#endif
