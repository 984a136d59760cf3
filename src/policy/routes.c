/*
 * routes.c: the route registry (SPEC §3), one JSON object per route, into
 * sy_route_t items.
 *
 * The registry is written by many pipelines, so one bad item must never
 * take the others down: each item is checked on its own, and a malformed
 * one is kept with a reason ("[3].target: ...") instead of failing the
 * list. Only text that is not a JSON array at all is a document error.
 * The path is checked first and the domain and enabled flag next, because
 * those decide which requests a rejected route still owns (SPEC §3: a
 * rejected route answers 502 for its path rather than letting traffic fall
 * through to a shorter route). Checking against the policy happens later,
 * in snapshot.c.
 */
#include "policy/routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"
#include "core/metrics.h"
#include "route/path.h"

static bool reject(sy_route_t *route, const char *item_name, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static bool reject(sy_route_t *route, const char *item_name, const char *field, const char *fmt,
                   ...)
{
    char msg[320], full[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *item = item_name ? item_name : "";
    snprintf(full, sizeof full, "%s%s%s: %s", item, item[0] && field[0] ? "." : "", field, msg);
    free(route->rejected_reason);
    /* NULL when out of memory; snapshot.c still refuses the route, since
     * it has no target. */
    route->rejected_reason = strdup(full);
    return false;
}

/* item[key] as a string; *out NULL when absent. */
static bool field_string(sy_route_t *route, json_t *item, const char *item_name, const char *key,
                         const char **out)
{
    json_t *v = json_object_get(item, key);
    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v))
        return reject(route, item_name, key, "expected a string");
    *out = json_string_value(v);
    return true;
}

static bool field_bool(sy_route_t *route, json_t *item, const char *item_name, const char *key,
                       bool def, bool *out)
{
    json_t *v = json_object_get(item, key);
    *out = def;
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return reject(route, item_name, key, "expected true or false");
    *out = json_is_true(v);
    return true;
}

/* A copy of an optional informational string field. */
static bool field_copy(sy_route_t *route, json_t *item, const char *item_name, const char *key,
                       char **out)
{
    const char *s;
    if (!field_string(route, item, item_name, key, &s))
        return false;
    if (s && !(*out = strdup(s)))
        return reject(route, item_name, key, "out of memory");
    return true;
}

static bool parse_target(sy_route_t *route, const char *s, const char *item_name)
{
    static const char expected[] =
        "expected an http:// or https:// URL without userinfo, query or fragment";
    /* The reason is shown in /config, the log and check output: a
     * password or API key the operator wrote here must not be (redact.h). */
    char shown[104];
    sy_redact_url(shown, sizeof shown, sy_slice_cstr(s));
    sy_url_parts_t url;
    if (!sy_url_split(sy_slice_cstr(s), &url) || memchr(url.rest.ptr, '?', url.rest.len) ||
        memchr(url.rest.ptr, '#', url.rest.len))
        return reject(route, item_name, "target", "%s (got \"%s\")", expected, shown);
    route->target_https = url.https;
    route->target_port = url.port ? url.port : (url.https ? 443 : 80);
    route->target_host = sy_host_normalise(url.host, SY_HOST_IP);
    if (!route->target_host)
        return reject(route, item_name, "target",
                      "%s: the host must be a DNS name, an IPv4 address or an IPv6 address in "
                      "brackets (got \"%s\")",
                      expected, shown);
    /* "https://h/" means no base; anything longer must be a clean path,
     * since it is prefixed to every forwarded path byte for byte. */
    sy_slice_t base = url.rest;
    if (base.len == 1)
        base.len = 0;
    if (base.len) {
        const char *why = sy_path_check_route(base, false);
        if (why)
            return reject(route, item_name, "target", "base path: %s (got \"%s\")", why, shown);
    }
    route->base = sy_slice_dup(base);
    route->target = strdup(s);
    if (!route->base || !route->target)
        return reject(route, item_name, "target", "out of memory");
    return true;
}

static bool is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool parse_methods(sy_route_t *route, json_t *v, const char *item_name)
{
    size_t n = json_array_size(v), header_len = 0;
    if (!json_is_array(v) || n == 0)
        return reject(route, item_name, "methods", "expected a non-empty array of method names");
    route->methods = calloc(n, sizeof *route->methods);
    if (!route->methods)
        return reject(route, item_name, "methods", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        const char *s = json_string_value(m);
        char field[40];
        snprintf(field, sizeof field, "methods[%zu]", i);
        bool ok = s && s[0] && strlen(s) <= 32;
        for (const char *c = s; ok && *c; c++)
            ok = is_tchar(*c);
        if (!ok)
            return reject(route, item_name, field, "expected an HTTP method name such as \"GET\"");
        for (size_t j = 0; j < route->method_count; j++)
            if (strcmp(route->methods[j], s) == 0)
                return reject(route, item_name, field, "duplicate method %s", s);
        if (!(route->methods[route->method_count] = strdup(s)))
            return reject(route, item_name, "methods", "out of memory");
        route->method_count++;
        header_len += strlen(s) + 2;
    }
    route->allow_header = malloc(header_len + 1);
    if (!route->allow_header)
        return reject(route, item_name, "methods", "out of memory");
    route->allow_header[0] = '\0';
    for (size_t i = 0; i < route->method_count; i++) {
        if (i)
            strcat(route->allow_header, ", ");
        strcat(route->allow_header, route->methods[i]);
    }
    route->allow_header_len = strlen(route->allow_header);
    return true;
}

bool sy_route_from_json(sy_route_t *route, json_t *item, const char *item_name,
                        bool tolerate_unknown)
{
    static const char *const known[] = {"path",       "target",       "auth",    "domain",
                                        "methods",    "strip_prefix", "enabled", "owner",
                                        "updated_at", "description",  NULL};
    const char *s;
    memset(route, 0, sizeof *route);
    route->enabled = true;
    if (!json_is_object(item))
        return reject(route, item_name, "", "expected a JSON object");

    json_t *path = json_object_get(item, "path");
    if (!path)
        return reject(route, item_name, "path", "required field is missing");
    if (!json_is_string(path))
        return reject(route, item_name, "path", "expected a string");
    s = json_string_value(path);
    const char *why = sy_path_check_route(sy_slice(s, json_string_length(path)), true);
    if (why)
        return reject(route, item_name, "path", "%s (got \"%.100s\")", why, s);
    if (!(route->path = strdup(s)))
        return reject(route, item_name, "path", "out of memory");

    /* From here on the route owns its path even when rejected. */
    if (!field_bool(route, item, item_name, "enabled", true, &route->enabled) ||
        !field_string(route, item, item_name, "domain", &s))
        return false;
    if (s && !(route->domain = sy_host_normalise(sy_slice_cstr(s), 0)))
        return reject(route, item_name, "domain", "expected a domain name (got \"%.100s\")", s);

    if (!tolerate_unknown) {
        const char *key;
        json_t *v;
        json_object_foreach(item, key, v)
        {
            size_t k;
            for (k = 0; known[k] && strcmp(known[k], key) != 0; k++)
                ;
            if (!known[k])
                return reject(route, item_name, key,
                              "unknown field (expected one of: path, target, auth, domain, "
                              "methods, strip_prefix, enabled, owner, updated_at, description)");
        }
    }

    if (!field_string(route, item, item_name, "target", &s))
        return false;
    if (!s)
        return reject(route, item_name, "target", "required field is missing");
    if (!parse_target(route, s, item_name))
        return false;

    if (!field_string(route, item, item_name, "auth", &s))
        return false;
    if (s && !s[0])
        return reject(route, item_name, "auth", "expected an auth policy name");
    if (s && !(route->auth_name = strdup(s)))
        return reject(route, item_name, "auth", "out of memory");

    json_t *methods = json_object_get(item, "methods");
    if (methods && !parse_methods(route, methods, item_name))
        return false;

    return field_bool(route, item, item_name, "strip_prefix", false, &route->strip_prefix) &&
           field_copy(route, item, item_name, "owner", &route->owner) &&
           field_copy(route, item, item_name, "updated_at", &route->updated_at) &&
           field_copy(route, item, item_name, "description", &route->description);
}

sy_route_list_t *sy_routes_parse_json(const char *text, size_t len, const char *source_name,
                                      sy_error_t *err)
{
    const char *source = source_name ? source_name : "routes";
    json_error_t jerr;
    sy_error_clear(err);
    json_t *doc = json_loadb(text ? text : "", text ? len : 0,
                             JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!doc) {
        sy_error_set(err, "%s:%d:%d: %s", source, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_array(doc)) {
        json_decref(doc);
        sy_error_set(err, "%s: expected a JSON array of route objects", source);
        return NULL;
    }
    sy_route_list_t *list = calloc(1, sizeof *list);
    size_t n = json_array_size(doc);
    if (list && n)
        list->items = calloc(n, sizeof *list->items);
    if (!list || (n && !list->items)) {
        free(list);
        json_decref(doc);
        sy_error_set(err, "%s: out of memory", source);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "[%zu]", i);
        sy_route_t *route = &list->items[i];
        list->count++;
        /* Rejected without a reason only when even the reason could not be
         * allocated: then the list can't be trusted at all. */
        if (!sy_route_from_json(route, json_array_get(doc, i), name, false) &&
            !route->rejected_reason) {
            sy_route_list_free(list);
            json_decref(doc);
            sy_error_set(err, "%s: out of memory", source);
            return NULL;
        }
    }
    json_decref(doc);
    return list;
}

static void route_free(sy_route_t *r)
{
    /* The list holds one reference to the route's counters (set when it
     * entered a snapshot): the last list holding a path frees them. */
    sy_metrics_route_release(r->stats);
    free(r->path);
    free(r->target);
    free(r->target_host);
    free(r->base);
    free(r->auth_name);
    free(r->domain);
    for (size_t i = 0; i < r->method_count; i++)
        free(r->methods[i]);
    free(r->methods);
    free(r->allow_header);
    free(r->owner);
    free(r->updated_at);
    free(r->description);
    free(r->rejected_reason);
}

void sy_route_list_free(sy_route_list_t *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        route_free(&list->items[i]);
    free(list->items);
    free(list);
}

bool sy_route_allows_method(const sy_route_t *route, sy_slice_t method)
{
    if (!route->methods)
        return true;
    for (size_t i = 0; i < route->method_count; i++)
        if (sy_slice_eq_cstr(method, route->methods[i]))
            return true;
    return false;
}
