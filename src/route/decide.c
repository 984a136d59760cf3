/*
 * decide.c: the I/O-free routing phases of SPEC §5 (host → path → route →
 * method) as one function returning a decision. The proxy and the admin
 * /explain endpoint both call it, so what /explain reports is exactly what
 * traffic gets.
 *
 * The order of the checks is part of the contract: a foreign host is a 421
 * before its path is even looked at, a bad path is a 400 before any route
 * lookup, and a rejected route answers 502 for its whole subtree instead of
 * letting a shorter route take over.
 */
#include "route/decide.h"

#include "route/path.h"

#include <stdio.h>
#include <string.h>

/* Longest DNS name (RFC 1035), plus room to tell "too long" apart. */
#define HOST_MAX 254

/* Decisions are made per request: their messages are literals or built
 * from lengths known in advance, never formatted. */
static void answer_len(sy_decision_t *out, int status, const char *message, size_t len)
{
    out->status = status;
    out->message = message;
    out->message_len = len;
}

#define answer(out, status, lit) answer_len((out), (status), (lit), sizeof(lit) - 1)

/* prefix + text into message_buf, cut where snprintf would cut it. */
static void answer_joined(sy_decision_t *out, int status, sy_slice_t prefix, sy_slice_t text)
{
    size_t room = sizeof out->message_buf - 1;
    size_t n = prefix.len < room ? prefix.len : room;
    memcpy(out->message_buf, prefix.ptr, n);
    size_t m = text.len < room - n ? text.len : room - n;
    memcpy(out->message_buf + n, text.ptr, m);
    out->message_buf[n + m] = '\0';
    answer_len(out, status, out->message_buf, n + m);
}

void sy_decide(const sy_snapshot_t *snap, sy_slice_t host_value, char *path_buf, size_t *path_len,
               sy_slice_t method, sy_decision_t *out)
{
    out->status = 0;
    out->message = NULL;
    out->message_len = 0;
    out->allow = NULL;
    out->allow_len = 0;
    out->route = NULL;
    out->matched_len = 0;
    out->message_buf[0] = '\0';

    /* First, before anything is decided or logged: one spelling per path. */
    *path_len = sy_path_canonicalize(path_buf, *path_len);
    sy_slice_t path = sy_slice(path_buf, *path_len);

    if (!snap || !snap->policy) {
        answer(out, 503, "configuration not loaded yet");
        return;
    }

    sy_slice_t host;
    uint16_t port;
    if (!sy_host_split(host_value, &host, &port) || host.len == 0 || host.len > HOST_MAX) {
        answer(out, 400, "invalid Host header");
        return;
    }
    /* Lower-cased once here so the matcher and the policy compare bytes. */
    char lowered[HOST_MAX + 1];
    for (size_t i = 0; i < host.len; i++) {
        char c = host.ptr[i];
        lowered[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    host = sy_slice(lowered, host.len);
    if (!sy_policy_domain_listed(snap->policy, host)) {
        answer(out, 421, "misdirected request: host is not served here");
        return;
    }

    const char *why = sy_path_check_request(path);
    if (!why && !snap->policy->allow_path_parameters)
        why = sy_path_check_parameters(path);
    if (why) {
        /* why is one of path.c's literals, not configuration. */
        answer_joined(out, 400, SY_SLICE_LIT("invalid path: "), sy_slice_cstr(why));
        return;
    }

    size_t matched_len = 0;
    const sy_route_t *route = sy_snapshot_match(snap, host, path, &matched_len);
    if (!route) {
        answer(out, 404, "no route for this path");
        return;
    }
    out->route = route;
    out->matched_len = matched_len;
    if (route->rejected_reason) {
        answer_joined(out, 502, SY_SLICE_LIT("route rejected: "),
                      sy_slice(route->rejected_reason, route->rejected_reason_len));
        return;
    }
    if (!sy_route_allows_method(route, method)) {
        answer(out, 405, "method not allowed");
        out->allow = route->allow_header;
        out->allow_len = route->allow_header ? route->allow_header_len : 0;
        return;
    }
}

sy_slice_t sy_decide_forward_path(const sy_route_t *route, size_t matched_len, sy_slice_t path)
{
    if (route && route->strip_prefix && matched_len <= path.len) {
        path.ptr += matched_len;
        path.len -= matched_len;
    }
    if (path.len == 0)
        return SY_SLICE_LIT("/");
    return path;
}

size_t sy_decide_upstream_path(char *out, size_t cap, const sy_route_t *route, size_t matched_len,
                               sy_slice_t path, bool has_query, sy_slice_t query)
{
    sy_slice_t base = sy_slice_cstr(route && route->base ? route->base : "");
    sy_slice_t rest = sy_decide_forward_path(route, matched_len, path);
    size_t len = base.len + rest.len + (has_query ? 1 + query.len : 0);
    if (len >= cap)
        return 0;
    char *p = out;
    memcpy(p, base.ptr, base.len);
    p += base.len;
    memcpy(p, rest.ptr, rest.len);
    p += rest.len;
    if (has_query) {
        *p++ = '?';
        if (query.len)
            memcpy(p, query.ptr, query.len);
        p += query.len;
    }
    *p = '\0';
    return len;
}
