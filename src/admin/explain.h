/*
 * explain.h: the pure parts of the admin /explain endpoint (SPEC §6): its
 * query-string parser and the method check, with no I/O so they are unit
 * tested and fuzzed on their own. admin.c turns the result into a decision
 * with sy_decide and answers it.
 * Thread: any; no shared state. Pointers: the query's strings are malloc'd
 * and owned by the sy_explain_query_t until sy_explain_query_free.
 */
#ifndef SY_ADMIN_EXPLAIN_H
#define SY_ADMIN_EXPLAIN_H

#include "core/common.h"
#include "http/parser.h"

typedef struct {
    char *host, *path, *method; /* percent-decoded, NUL-terminated; NULL when absent */
    size_t host_len, path_len, method_len;
} sy_explain_query_t;

/* Parses "host=...&path=...&method=..." (other keys are ignored). Values
 * are percent-decoded; '+' stays a literal '+' (these are paths and names,
 * not form fields). false with *why set when a known key is given twice or
 * its value is badly encoded or holds a NUL (raw or %00); q then still owns what
 * was decoded, so call sy_explain_query_free either way. */
bool sy_explain_query_parse(sy_slice_t query, sy_explain_query_t *q, const char **why);
void sy_explain_query_free(sy_explain_query_t *q);

/* Whether the data plane's parser accepts a request line with this
 * method: SY_REJECT_NONE when it does, else the parser's reason
 * (bad_method for an empty method or one with a space, CR, LF or another
 * non-token byte; connect_method; request_line_too_long). The method is run
 * through sy_http_request_parse itself, so the two never disagree.
 * sy_http_reject_status gives the status traffic gets. */
sy_http_reject_t sy_explain_method_check(sy_slice_t method, const sy_http_limits_t *limits);

/* The same for a whole request line, method and target (path and query, as
 * sent): SY_REJECT_NONE when the parser accepts "METHOD TARGET HTTP/1.1",
 * else its first reason (the method's, the line's length, bad_target for a
 * byte outside RFC 3986 or a '#'). A target holding a CR or LF can't be sent
 * as one target and is bad_target. */
sy_http_reject_t sy_explain_request_check(sy_slice_t method, sy_slice_t target,
                                          const sy_http_limits_t *limits);

#endif
