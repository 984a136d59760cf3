/*
 * redact.h: the one place that decides what of a URL or request target may
 * appear in a log line, /config or CLI output (SPEC §7: query values are
 * redacted, names kept; never a password, token or secret).
 * Thread: any (pure functions, no state). Pointers: nothing is kept; out
 * belongs to the caller.
 *
 * What is replaced by SY_REDACTED:
 *   - userinfo, whole ("https://REDACTED@host/"): a user name alone is
 *     often a token (https://ghp_xxx@github.com/...);
 *   - each query value ("?api_key=REDACTED&page=REDACTED"), even when it
 *     looks harmless, so no list of "secret" names has to be kept right;
 *     an empty value stays empty ("?a=" -> "?a=");
 *   - a query part without '=' ("?s3cr3t"), whole: it is value-shaped and
 *     APIs do put bare keys there;
 *   - a fragment, whole ("#REDACTED"): OAuth puts tokens there.
 * Parameter names, empty parts ("a=1&&b=2") and percent-encoding of what is
 * kept are copied byte for byte; only '&' separates parameters, and the
 * first raw '=' ends a name ("a%3Db=c": the name is "a%3Db").
 * No byte of a redacted part is ever copied, so truncating the output (a
 * small cap) can shorten the result but never reveal a secret.
 */
#ifndef SY_CORE_REDACT_H
#define SY_CORE_REDACT_H

#include <stddef.h>

#include "core/common.h"

#define SY_REDACTED "REDACTED"

/* A URL ("scheme://[userinfo@]host[:port]/path?query#fragment"), an
 * origin-form target ("/path?query"), a network-path reference
 * ("//userinfo@host/...") or any other string an operator wrote where a URL
 * was expected ("user:pass@host/x"), redacted as above. Writes at most
 * cap - 1 bytes and a NUL (when cap > 0); returns the length written. */
size_t sy_redact_url(char *out, size_t cap, sy_slice_t url);

/* A query string without its '?', redacted as above. Same contract. */
size_t sy_redact_query(char *out, size_t cap, sy_slice_t query);

/* sy_redact_url into a malloc'd string (the caller frees it); NULL when
 * url is NULL or memory runs out. */
char *sy_redact_url_dup(const char *url);

#endif
