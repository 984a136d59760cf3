/*
 * forward.c: the forward plan (see forward.h).
 *
 * Everything a route's requests share is computed once, at snapshot build
 * (sy_forward_prepare): formatting the pool key, the Host and the URL
 * prefix per request would cost an snprintf and a strlen over the
 * configuration each time. Per request, sy_forward_plan only picks slices:
 * it allocates and formats nothing.
 */
#include "route/forward.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"
#include "net/tls.h"
#include "route/decide.h"

static const sy_slice_t api_id_header = SY_SLICE_LIT("x-apigw-api-id");

/* FNV-1a: the pool index only needs a spread, not resistance to
 * collisions (keys come from the policy, and entries compare whole keys). */
static uint64_t key_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static char *format_dup(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *format_dup(size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (!out)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len = (size_t)n;
    return out;
}

/* SNI carries names only (RFC 6066 §3): never an IP literal. */
static bool is_ip_literal(const char *s)
{
    return s[0] == '[' || strspn(s, "0123456789.") == strlen(s);
}

bool sy_forward_prepare(sy_forward_target_t *out, const sy_policy_t *policy, const sy_route_t *r,
                        const struct sy_tls_trust *trust)
{
    memset(out, 0, sizeof *out);
    const sy_destination_t *d = r->destination;
    out->host = d && d->connect_host ? d->connect_host : r->target_host;
    out->host_len = strlen(out->host);
    out->port = d && d->connect_host ? d->connect_port : r->target_port;
    out->https = r->target_https;
    out->allow_loopback = policy->allow_loopback;
    out->trust = out->https ? trust : NULL;
    if (out->https) {
        out->verify_name = d && d->tls_verify_name ? d->tls_verify_name : r->target_host;
        if (d && d->sni)
            out->sni = d->sni;
        else if (d && d->host_header)
            out->sni = d->host_header;
        else if (d && d->tls_verify_name && strncmp(d->tls_verify_name, "*.", 2) != 0)
            out->sni = d->tls_verify_name;
        else
            out->sni = r->target_host;
        if (is_ip_literal(out->sni))
            out->sni = NULL;
        char check[300];
        sy_tls_verify_host(check, sizeof check, out->verify_name);
        size_t n;
        if (!(out->verify_check = format_dup(&n, "%s", check)))
            goto oom;
    }
    out->key = format_dup(
        &out->key_len, "%s|%s|%u|%s|%s|%s|loopback=%d", out->https ? "https" : "http", out->host,
        (unsigned)out->port, out->sni ? out->sni : "", out->verify_name ? out->verify_name : "",
        trust && out->https && trust->id ? trust->id : "", out->allow_loopback ? 1 : 0);
    if (!out->key)
        goto oom;
    out->key_hash = key_hash(out->key, out->key_len);

    bool default_port = r->target_port == (r->target_https ? 443 : 80);
    char port[8] = "";
    if (!default_port)
        snprintf(port, sizeof port, ":%u", (unsigned)r->target_port);
    if (d && d->host_header)
        out->host_header = format_dup(&out->host_header_len, "%s", d->host_header);
    else
        out->host_header = format_dup(&out->host_header_len, "%s%s", r->target_host, port);
    out->url_prefix = format_dup(&out->url_prefix_len, "%s://%s%s",
                                 r->target_https ? "https" : "http", r->target_host, port);
    if (!out->host_header || !out->url_prefix)
        goto oom;
    out->api_id_len = d && d->api_id ? strlen(d->api_id) : 0;
    return true;
oom:
    sy_forward_release(out);
    return false;
}

void sy_forward_release(sy_forward_target_t *f)
{
    free(f->verify_check);
    free(f->key);
    free(f->host_header);
    free(f->url_prefix);
    memset(f, 0, sizeof *f);
}

/* Adds name to the plan's drop list unless an equivalent one is there;
 * false when the list is full. */
static bool drop_name(sy_forward_plan_t *out, sy_slice_t name)
{
    for (size_t i = 0; i < out->drop_count; i++)
        if (sy_header_name_equiv(out->drop[i], name))
            return true;
    if (out->drop_count == SY_FORWARD_MAX_DROP)
        return false;
    out->drop[out->drop_count++] = name;
    return true;
}

bool sy_forward_plan(const sy_snapshot_t *snap, const sy_route_t *route, size_t matched_len,
                     sy_slice_t path, bool has_query, sy_slice_t query,
                     const sy_auth_result_t *auth, sy_forward_plan_t *out)
{
    const sy_route_forward_t *rf = sy_snapshot_route_forward(snap, route);
    if (!rf)
        return false;
    const sy_forward_target_t *f = rf->target;
    out->connect = f;
    out->host_header = sy_slice(f->host_header, f->host_header_len);
    out->url_prefix = sy_slice(f->url_prefix, f->url_prefix_len);
    out->base = sy_slice(route->base ? route->base : "", rf->base_len);
    out->path = sy_decide_forward_path(route, matched_len, path);
    out->has_query = has_query;
    out->query = has_query ? query : sy_slice(NULL, 0);

    const sy_destination_t *d = route->destination;
    out->add_count = 0;
    out->drop_count = 0;
    if (d && d->api_id)
        out->add[out->add_count++] =
            (sy_header_pair_t){api_id_header, sy_slice(d->api_id, f->api_id_len)};
    /* x-apigw-api-id picks the API behind a VPC endpoint: a client's copy
     * would let it choose its own destination, so it never passes. */
    out->drop[out->drop_count++] = api_id_header;
    /* A header any policy sets from a token is the router's to vouch for
     * on every route: a backend serving a JWT route (X-User-Sub from the
     * token) and a public one must never get a client's "X-User-Sub:
     * admin" on the latter. */
    const sy_policy_t *policy = snap->policy;
    for (size_t p = 0; policy && p < policy->auth_policy_count; p++) {
        const sy_slice_t *names;
        size_t n = sy_auth_config_forward_headers(policy->auth_policies[p].config, &names);
        for (size_t i = 0; i < n; i++)
            if (!drop_name(out, names[i]))
                return false;
    }
    if (auth) {
        /* forward_claims: the auth phase's headers, after the client's
         * copies of them are dropped. */
        for (size_t i = 0; i < auth->add_count && out->add_count < SY_FORWARD_MAX_HEADERS; i++)
            out->add[out->add_count++] = auth->add[i];
        for (size_t i = 0; i < auth->drop_count; i++)
            if (!drop_name(out, auth->drop[i]))
                return false;
    }
    return true;
}

void sy_forward_plan_request(const sy_forward_plan_t *plan, sy_forward_request_t *fw)
{
    fw->host_header = plan->host_header;
    fw->base = plan->base;
    fw->path = plan->path;
    fw->add = plan->add;
    fw->add_count = plan->add_count;
    fw->drop = plan->drop;
    fw->drop_count = plan->drop_count;
}

static size_t put(char *out, size_t cap, size_t at, sy_slice_t s)
{
    size_t room = cap - 1 - at; /* at < cap always: the NUL has its byte */
    size_t n = s.len < room ? s.len : room;
    if (n)
        memcpy(out + at, s.ptr, n);
    return at + n;
}

size_t sy_forward_url(const sy_forward_plan_t *plan, char *out, size_t cap, bool redact)
{
    if (cap == 0)
        return 0;
    size_t n = 0;
    n = put(out, cap, n, plan->url_prefix);
    n = put(out, cap, n, plan->base);
    n = put(out, cap, n, plan->path);
    if (plan->has_query && n + 1 < cap) {
        out[n++] = '?';
        if (redact)
            n += sy_redact_query(out + n, cap - n, plan->query);
        else
            n = put(out, cap, n, plan->query);
    }
    out[n] = '\0';
    return n;
}
