/*
 * policy.c: the operations policy document (SPEC §2) from JSON text to a
 * validated sy_policy_t, plus the host-name helpers the rest of the config
 * code shares.
 *
 * Validation is strict and front-loaded: every field is type- and
 * range-checked here, unknown fields are refused, and the first problem
 * becomes one error naming the document, the field path and what was
 * expected ("policy.json: destinations[1].port: expected an integer
 * 1-65535"). Nothing downstream re-validates, so the data plane can trust
 * every value it reads. Host names are normalised once (lower case, one
 * trailing dot removed, IPv6 literals canonical) so that matching later is
 * plain string comparison.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/redact.h"
#include "net/addr.h"
#include "route/domains.h"
#include "route/path.h"

typedef struct {
    const char *source;
    sy_error_t *err;
    /* Every problem, in document order: parsing goes on past a bad
     * section, destination or listen domain so one run reports them all. */
    sy_problems_t problems;
    bool out_of_memory;
} parse_t;

/* Paths like "auth_policies.partners.users.alice" are built in buffers of
 * this size; a longer key is truncated in the message, never overflowed. */
#define WHERE_MAX SY_WHERE_MAX

static bool fail(parse_t *p, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(parse_t *p, const char *where, const char *fmt, ...)
{
    char msg[384], full[sizeof p->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (where && where[0])
        snprintf(full, sizeof full, "%s: %s: %s", p->source, where, msg);
    else
        snprintf(full, sizeof full, "%s: %s", p->source, msg);
    if (p->problems.count == 0)
        sy_error_set(p->err, "%s", full);
    char **grown = realloc(p->problems.items, (p->problems.count + 1) * sizeof *grown);
    char *copy = strdup(full);
    if (grown)
        p->problems.items = grown;
    if (!grown || !copy) {
        free(copy);
        p->out_of_memory = true;
        return false;
    }
    p->problems.items[p->problems.count++] = copy;
    return false;
}

static bool fail_oom(parse_t *p)
{
    return fail(p, NULL, "out of memory");
}

/* ---- host names ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static bool label_is_numeric(const char *s, size_t n)
{
    /* WHATWG's "ends in a number": all digits, or 0x followed by hex. Such a
     * name is an IPv4 address to some resolvers, so it must be canonical. */
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < n; i++)
            if (sy_hex_value(s[i]) < 0)
                return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return n > 0;
}

static bool ipv4_canonical(sy_slice_t s)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        unsigned value = 0;
        while (i < s.len && is_digit(s.ptr[i]) && i - start < 3)
            value = value * 10 + (unsigned)(s.ptr[i++] - '0');
        size_t n = i - start;
        if (n == 0 || value > 255 || (n > 1 && s.ptr[start] == '0'))
            return false;
        if (part < 3) {
            if (i >= s.len || s.ptr[i] != '.')
                return false;
            i++;
        }
    }
    return i == s.len;
}

typedef enum { NAME_BAD, NAME_DNS, NAME_IPV4 } name_kind_t;

static name_kind_t name_classify(sy_slice_t s)
{
    if (s.len == 0 || s.len > 253)
        return NAME_BAD;
    size_t start = 0, last_start = 0;
    for (size_t i = 0; i <= s.len; i++) {
        if (i == s.len || s.ptr[i] == '.') {
            size_t n = i - start;
            if (n == 0 || n > 63)
                return NAME_BAD;
            last_start = start;
            start = i + 1;
        } else if (!is_alnum(s.ptr[i]) && s.ptr[i] != '-' && s.ptr[i] != '_') {
            return NAME_BAD;
        }
    }
    if (label_is_numeric(s.ptr + last_start, s.len - last_start))
        return ipv4_canonical(s) ? NAME_IPV4 : NAME_BAD;
    return NAME_DNS;
}

/* "[v6]" → "[canonical v6]" (malloc'd), or NULL. Zone ids are refused: they
 * name a local interface, never a destination. */
static char *ipv6_normalise(sy_slice_t s)
{
    char inner[64], canon[INET6_ADDRSTRLEN];
    struct in6_addr addr;
    if (s.len < 4 || s.ptr[0] != '[' || s.ptr[s.len - 1] != ']' || s.len - 2 >= sizeof inner)
        return NULL;
    memcpy(inner, s.ptr + 1, s.len - 2);
    inner[s.len - 2] = '\0';
    for (size_t i = 0; inner[i]; i++)
        if (sy_hex_value(inner[i]) < 0 && inner[i] != ':' && inner[i] != '.')
            return NULL;
    if (inet_pton(AF_INET6, inner, &addr) != 1 || !inet_ntop(AF_INET6, &addr, canon, sizeof canon))
        return NULL;
    size_t n = strlen(canon);
    char *out = malloc(n + 3);
    if (!out)
        return NULL;
    out[0] = '[';
    memcpy(out + 1, canon, n);
    out[n + 1] = ']';
    out[n + 2] = '\0';
    return out;
}

char *sy_host_normalise(sy_slice_t host, unsigned flags)
{
    if (host.len == 0 || !host.ptr)
        return NULL;
    if (host.ptr[0] == '[')
        return (flags & SY_HOST_IP) ? ipv6_normalise(host) : NULL;
    size_t prefix = 0;
    if (host.len >= 2 && host.ptr[0] == '*' && host.ptr[1] == '.') {
        if (!(flags & SY_HOST_WILDCARD))
            return NULL;
        prefix = 2;
    }
    sy_slice_t name = sy_slice(host.ptr + prefix, host.len - prefix);
    if (name.len > 0 && name.ptr[name.len - 1] == '.')
        name.len--;
    name_kind_t kind = name_classify(name);
    if (kind == NAME_BAD || (kind == NAME_IPV4 && (prefix || !(flags & SY_HOST_IP))))
        return NULL;
    char *out = malloc(prefix + name.len + 1);
    if (!out)
        return NULL;
    memcpy(out, host.ptr, prefix);
    for (size_t i = 0; i < name.len; i++)
        out[prefix + i] = to_lower(name.ptr[i]);
    out[prefix + name.len] = '\0';
    return out;
}

static bool host_char(char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

bool sy_host_split(sy_slice_t value, sy_slice_t *host, uint16_t *port)
{
    size_t i, host_end;
    if (value.len == 0 || !value.ptr)
        return false;
    if (value.ptr[0] == '[') {
        const char *close = memchr(value.ptr, ']', value.len);
        if (!close)
            return false;
        host_end = (size_t)(close - value.ptr) + 1;
        if (host_end < 4) /* "[::]" is the shortest literal */
            return false;
        for (i = 1; i + 1 < host_end; i++)
            if (sy_hex_value(value.ptr[i]) < 0 && value.ptr[i] != ':' && value.ptr[i] != '.')
                return false;
        i = host_end;
    } else {
        for (i = 0; i < value.len && value.ptr[i] != ':'; i++)
            if (!host_char(value.ptr[i]))
                return false;
        host_end = i;
        if (host_end == 0)
            return false;
    }
    uint32_t p = 0;
    if (i < value.len) {
        if (value.ptr[i] != ':')
            return false;
        i++;
        /* An empty port ("host:") is legal in RFC 3986 but is exactly the
         * kind of spelling two parsers read differently: refuse it. */
        if (i == value.len || value.len - i > 5)
            return false;
        for (; i < value.len; i++) {
            if (!is_digit(value.ptr[i]))
                return false;
            p = p * 10 + (uint32_t)(value.ptr[i] - '0');
        }
        if (p == 0 || p > 65535)
            return false;
    }
    sy_slice_t h = sy_slice(value.ptr, host_end);
    if (h.ptr[0] != '[' && h.ptr[h.len - 1] == '.') {
        h.len--;
        /* One trailing dot is the root label; "localhost.." is no name. */
        if (h.len == 0 || h.ptr[h.len - 1] == '.')
            return false;
    }
    if (host)
        *host = h;
    if (port)
        *port = (uint16_t)p;
    return true;
}

bool sy_url_split(sy_slice_t url, sy_url_parts_t *out)
{
    static const char http[] = "http://", https[] = "https://";
    size_t i;
    memset(out, 0, sizeof *out);
    if (!url.ptr)
        return false;
    for (i = 0; i < url.len; i++)
        if ((unsigned char)url.ptr[i] <= 0x20 || (unsigned char)url.ptr[i] >= 0x7f)
            return false;
    if (url.len > 8 && sy_slice_eq_nocase(sy_slice(url.ptr, 8), SY_SLICE_LIT(https))) {
        out->https = true;
        i = 8;
    } else if (url.len > 7 && sy_slice_eq_nocase(sy_slice(url.ptr, 7), SY_SLICE_LIT(http))) {
        i = 7;
    } else {
        return false;
    }
    size_t start = i;
    while (i < url.len && url.ptr[i] != '/' && url.ptr[i] != '?' && url.ptr[i] != '#')
        i++;
    sy_slice_t authority = sy_slice(url.ptr + start, i - start);
    if (memchr(authority.ptr, '@', authority.len))
        return false;
    if (!sy_host_split(authority, &out->host, &out->port))
        return false;
    out->rest = sy_slice(url.ptr + i, url.len - i);
    return true;
}

/* "*.a.b" matches "x.a.b" (exactly one more label), never "a.b" or "y.x.a.b". */
static bool wildcard_matches(const char *pattern, sy_slice_t host)
{
    sy_slice_t suffix = sy_slice_cstr(pattern + 1); /* ".a.b" */
    if (host.len <= suffix.len)
        return false;
    size_t label = host.len - suffix.len;
    if (!sy_slice_eq_nocase(sy_slice(host.ptr + label, suffix.len), suffix))
        return false;
    return memchr(host.ptr, '.', label) == NULL;
}

static sy_slice_t strip_dot(sy_slice_t host)
{
    if (host.len > 0 && host.ptr[host.len - 1] == '.')
        host.len--;
    return host;
}

bool sy_policy_domain_listed(const sy_policy_t *policy, sy_slice_t host)
{
    host = strip_dot(host);
    if (!policy || host.len == 0)
        return false;
    return sy_domain_set_contains(policy->domain_set, host);
}

const sy_destination_t *sy_policy_destination_find(const sy_policy_t *policy, bool https,
                                                   sy_slice_t host, uint16_t port)
{
    host = strip_dot(host);
    if (!policy || host.len == 0)
        return NULL;
    const sy_destination_t *wildcard = NULL;
    for (size_t i = 0; i < policy->destination_count; i++) {
        const sy_destination_t *d = &policy->destinations[i];
        if (d->https != https || d->port != port)
            continue;
        /* An exact entry beats a wildcard, wherever either is listed: the
         * exact one is the more specific operations decision. */
        if (!d->host_wildcard) {
            if (sy_slice_eq_nocase(sy_slice_cstr(d->host), host))
                return d;
        } else if (!wildcard && wildcard_matches(d->host, host)) {
            wildcard = d;
        }
    }
    return wildcard;
}

const sy_auth_policy_t *sy_policy_auth_find(const sy_policy_t *policy, sy_slice_t name)
{
    if (!policy)
        return NULL;
    for (size_t i = 0; i < policy->auth_policy_count; i++)
        if (sy_slice_eq(sy_slice_cstr(policy->auth_policies[i].name), name))
            return &policy->auth_policies[i];
    return NULL;
}

/* ---- typed field access ---- */

static bool check_known(parse_t *p, json_t *obj, const char *where, const char *const known[])
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            char list[256] = "", w[WHERE_MAX];
            size_t used = 0;
            for (size_t i = 0; known[i] && used < sizeof list; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                         known[i]);
            return fail(p, sy_where_key(w, where, key), "unknown field (expected one of: %s)",
                        list);
        }
    }
    return true;
}

/* obj[key] as a string: *out NULL when absent and not required. */
static bool get_string(parse_t *p, json_t *obj, const char *where, const char *key, bool required,
                       const char **out)
{
    char w[WHERE_MAX];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return fail(p, sy_where_key(w, where, key), "required field is missing");
        return true;
    }
    if (!json_is_string(v))
        return fail(p, sy_where_key(w, where, key), "expected a string");
    *out = json_string_value(v);
    return true;
}

static bool get_int(parse_t *p, json_t *obj, const char *where, const char *key, json_int_t min,
                    json_int_t max, json_int_t def, json_int_t *out)
{
    char w[WHERE_MAX];
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(p, sy_where_key(w, where, key), "expected an integer %lld-%lld", (long long)min,
                    (long long)max);
    *out = json_integer_value(v);
    return true;
}

static bool get_bool(parse_t *p, json_t *obj, const char *where, const char *key, bool def,
                     bool *out)
{
    char w[WHERE_MAX];
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return fail(p, sy_where_key(w, where, key), "expected true or false");
    *out = json_is_true(v);
    return true;
}

static bool get_object(parse_t *p, json_t *obj, const char *where, const char *key, bool required,
                       json_t **out)
{
    char w[WHERE_MAX];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return fail(p, sy_where_key(w, where, key), "required field is missing");
        return true;
    }
    if (!json_is_object(v))
        return fail(p, sy_where_key(w, where, key), "expected an object");
    *out = v;
    return true;
}

static bool readable_file(parse_t *p, const char *where, const char *path)
{
    struct stat st;
    char buf[128];
    if (!path[0])
        return fail(p, where, "expected a file path");
    if (stat(path, &st) != 0 || access(path, R_OK) != 0)
        return fail(p, where, "cannot read %.200s: %s", path, strerror_r(errno, buf, sizeof buf));
    if (!S_ISREG(st.st_mode))
        return fail(p, where, "%.200s is not a regular file", path);
    return true;
}

/* A field that may be absent; when present it must be a readable file. */
static bool get_file(parse_t *p, json_t *obj, const char *where, const char *key, char **out)
{
    char w[WHERE_MAX];
    const char *s;
    if (!get_string(p, obj, where, key, false, &s))
        return false;
    if (!s)
        return true;
    if (!readable_file(p, sy_where_key(w, where, key), s))
        return false;
    *out = strdup(s);
    return *out ? true : fail_oom(p);
}

/* A host-name field normalised with sy_host_normalise. */
static bool get_host(parse_t *p, json_t *obj, const char *where, const char *key, unsigned flags,
                     const char *expected, char **out)
{
    char w[WHERE_MAX];
    const char *s;
    if (!get_string(p, obj, where, key, false, &s))
        return false;
    if (!s)
        return true;
    *out = sy_host_normalise(sy_slice_cstr(s), flags);
    if (!*out)
        return fail(p, sy_where_key(w, where, key), "expected %s (got \"%.100s\")", expected, s);
    return true;
}

/* ---- destinations ---- */

/* A host written as an address the guard refuses whatever the policy says
 * (metadata, link-local, unspecified, multicast, broadcast) could never
 * serve a request: refuse it at load, in every spelling a resolver accepts
 * ("2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518",
 * "[::ffff:169.254.169.254]", "[fd00:ec2::254]"). inet_aton reads IPv4 the
 * way getaddrinfo does; the guard itself (net/addr.c) judges the address,
 * so both places agree on what is refused. Loopback depends on
 * allow_loopback_destinations and is left to the guard. */
static bool address_allowed(parse_t *p, const char *where, sy_slice_t host)
{
    char text[72], shown[INET6_ADDRSTRLEN];
    struct sockaddr_storage ss;
    sy_slice_t written = host;
    memset(&ss, 0, sizeof ss);
    if (host.len > 0 && host.ptr[host.len - 1] == '.' && host.ptr[0] != '[')
        host.len--;
    if (host.len == 0 || host.len >= sizeof text)
        return true; /* too long for an address; the name check says why */
    if (host.ptr[0] == '[') {
        if (host.len < 3 || host.ptr[host.len - 1] != ']')
            return true;
        memcpy(text, host.ptr + 1, host.len - 2);
        text[host.len - 2] = '\0';
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
        in6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
            return true;
    } else {
        memcpy(text, host.ptr, host.len);
        text[host.len] = '\0';
        for (size_t i = 0; i < host.len; i++)
            if (!is_alnum(text[i]) && text[i] != '.')
                return true;
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ss;
        in->sin_family = AF_INET;
        if (inet_aton(text, &in->sin_addr) == 0)
            return true;
    }
    const char *why = sy_addr_refusal((const struct sockaddr *)&ss, true);
    if (!why)
        return true;
    sy_addr_format((const struct sockaddr *)&ss, shown, sizeof shown);
    return fail(p, where,
                "\"%.*s\" is %s, %s %s: switchyard never connects there (SPEC §5.6), so "
                "no route could use this destination",
                (int)written.len, written.ptr, shown, strchr("aeiou", why[0]) ? "an" : "a", why);
}

/* An optional non-empty array of distinct strings: root paths (paths) or
 * auth policy names (checked against auth_policies once those parsed:
 * check_binding_names). *out stays NULL when the field is absent. */
static bool get_names(parse_t *p, json_t *obj, const char *where, const char *key, bool paths,
                      char ***out, size_t *count)
{
    char w[WHERE_MAX], iw[WHERE_MAX];
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    sy_where_key(w, where, key);
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0)
        return fail(p, w,
                    paths ? "expected a non-empty array of root paths such as \"/users\""
                          : "expected a non-empty array of auth policy names");
    *out = calloc(n, sizeof **out);
    if (!*out)
        return fail_oom(p);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(v, i);
        const char *s = json_string_value(item);
        sy_where_index(iw, w, i);
        if (!s)
            return fail(p, iw, "expected a string");
        const char *why = paths ? sy_path_check_route(sy_slice(s, json_string_length(item)), true)
                                : (s[0] && strlen(s) <= 64 ? NULL : "expected an auth policy name");
        if (why)
            return fail(p, iw, "%s (got \"%.100s\")", why, s);
        for (size_t j = 0; j < *count; j++)
            if (strcmp((*out)[j], s) == 0)
                return fail(p, iw, "duplicates %s[%zu]", key, j);
        if (!((*out)[*count] = strdup(s)))
            return fail_oom(p);
        (*count)++;
    }
    return true;
}

static bool parse_destination(parse_t *p, json_t *obj, const char *where, sy_destination_t *d)
{
    static const char *const known[] = {
        "host",        "scheme", "port",    "connect_to",    "tls_verify_name", "sni",
        "host_header", "api_id", "ca_file", "allowed_paths", "allowed_auth",    NULL};
    char w[WHERE_MAX];
    const char *s;
    json_int_t port;
    if (!json_is_object(obj))
        return fail(p, where, "expected an object");
    if (!check_known(p, obj, where, known))
        return false;

    if (!get_string(p, obj, where, "host", true, &s))
        return false;
    if (!address_allowed(p, sy_where_key(w, where, "host"), sy_slice_cstr(s)))
        return false;
    d->host = sy_host_normalise(sy_slice_cstr(s), SY_HOST_WILDCARD | SY_HOST_IP);
    if (!d->host)
        return fail(p, sy_where_key(w, where, "host"),
                    "expected a host name, \"*.\" + a host name, or an IP address, without port "
                    "(got \"%.100s\")",
                    s);
    d->host_wildcard = d->host[0] == '*';

    if (!get_string(p, obj, where, "scheme", false, &s))
        return false;
    d->https = !s || strcmp(s, "https") == 0;
    if (s && !d->https && strcmp(s, "http") != 0)
        return fail(p, sy_where_key(w, where, "scheme"), "expected \"https\" or \"http\"");

    if (!get_int(p, obj, where, "port", 1, 65535, d->https ? 443 : 80, &port))
        return false;
    d->port = (uint16_t)port;

    if (!get_string(p, obj, where, "connect_to", false, &s))
        return false;
    if (s) {
        sy_slice_t host;
        uint16_t connect_port;
        char *name = NULL;
        if (sy_host_split(sy_slice_cstr(s), &host, &connect_port)) {
            if (!address_allowed(p, sy_where_key(w, where, "connect_to"), host))
                return false;
            name = sy_host_normalise(host, SY_HOST_IP);
        }
        if (!name)
            return fail(p, sy_where_key(w, where, "connect_to"),
                        "expected HOST or HOST:PORT, an IPv6 address in brackets (got \"%.100s\")",
                        s);
        if (name[0] == '[') { /* getaddrinfo wants the bare address */
            size_t n = strlen(name);
            memmove(name, name + 1, n - 2);
            name[n - 2] = '\0';
        }
        d->connect_host = name;
        d->connect_port = connect_port ? connect_port : d->port;
    } else if (d->host[0] == '[') {
        /* An IPv6 literal host can't go to getaddrinfo in its URL spelling;
         * connecting "to the target host" means its bare address. */
        size_t n = strlen(d->host);
        d->connect_host = sy_slice_dup(sy_slice(d->host + 1, n - 2));
        if (!d->connect_host)
            return fail_oom(p);
        d->connect_port = d->port;
    }

    if (!get_host(p, obj, where, "tls_verify_name", SY_HOST_WILDCARD,
                  "a DNS name or \"*.\" + a DNS name", &d->tls_verify_name) ||
        !get_host(p, obj, where, "sni", 0, "a DNS name (SNI carries no IP address or wildcard)",
                  &d->sni))
        return false;

    if (!get_string(p, obj, where, "host_header", false, &s))
        return false;
    if (s) {
        sy_slice_t host;
        char *name = NULL;
        if (sy_host_split(sy_slice_cstr(s), &host, NULL))
            name = sy_host_normalise(host, SY_HOST_IP);
        if (!name)
            return fail(p, sy_where_key(w, where, "host_header"),
                        "expected HOST or HOST:PORT (got \"%.100s\")", s);
        free(name);
        d->host_header = strdup(s);
        if (!d->host_header)
            return fail_oom(p);
        for (char *c = d->host_header; *c; c++)
            *c = to_lower(*c);
    }

    if (!get_string(p, obj, where, "api_id", false, &s))
        return false;
    if (s) {
        size_t n = strlen(s);
        bool ok = n >= 1 && n <= 64;
        for (size_t i = 0; i < n && ok; i++)
            ok = is_alnum(s[i]);
        if (!ok)
            return fail(p, sy_where_key(w, where, "api_id"), "expected 1-64 letters or digits");
        d->api_id = strdup(s);
        if (!d->api_id)
            return fail_oom(p);
    }
    return get_file(p, obj, where, "ca_file", &d->ca_file) &&
           get_names(p, obj, where, "allowed_paths", true, &d->allowed_paths,
                     &d->allowed_path_count) &&
           get_names(p, obj, where, "allowed_auth", false, &d->allowed_auth,
                     &d->allowed_auth_count);
}

static bool parse_destinations(parse_t *p, json_t *doc, sy_policy_t *pol)
{
    char w[WHERE_MAX];
    json_t *arr = json_object_get(doc, "destinations");
    if (!arr)
        return fail(p, "destinations", "required field is missing");
    if (!json_is_array(arr))
        return fail(p, "destinations", "expected an array of objects");
    size_t n = json_array_size(arr);
    if (n) {
        pol->destinations = calloc(n, sizeof *pol->destinations);
        if (!pol->destinations)
            return fail_oom(p);
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        sy_destination_t *d = &pol->destinations[i];
        pol->destination_count = i + 1; /* so a partly filled entry is freed */
        d->index = i;
        sy_where_index(w, "destinations", i);
        if (!parse_destination(p, json_array_get(arr, i), w, d)) {
            /* Go on with the next one (a later duplicate check skips this
             * one): `check` reports every bad destination at once. */
            ok = false;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            const sy_destination_t *o = &pol->destinations[j];
            if (o->host && o->https == d->https && o->port == d->port &&
                strcmp(o->host, d->host) == 0) {
                ok = fail(p, w, "duplicates destinations[%zu] (same scheme, host and port)", j);
                break;
            }
        }
    }
    return ok;
}

/* Every allowed_auth name must be an auth policy: a typo would otherwise
 * lock a destination silently. Run once auth_policies parsed. */
static bool check_binding_names(parse_t *p, const sy_policy_t *pol)
{
    char w[WHERE_MAX], dw[WHERE_MAX], aw[WHERE_MAX];
    bool ok = true;
    for (size_t i = 0; i < pol->destination_count; i++) {
        const sy_destination_t *d = &pol->destinations[i];
        sy_where_key(aw, sy_where_index(dw, "destinations", i), "allowed_auth");
        for (size_t k = 0; k < d->allowed_auth_count; k++)
            if (!sy_policy_auth_find(pol, sy_slice_cstr(d->allowed_auth[k])))
                ok =
                    fail(p, sy_where_index(w, aw, k),
                         "auth policy '%.64s' is not defined in auth_policies", d->allowed_auth[k]);
    }
    return ok;
}

bool sy_destination_allows_path(const sy_destination_t *d, const char *path)
{
    if (!d->allowed_paths)
        return true;
    size_t n = strlen(path);
    for (size_t i = 0; i < d->allowed_path_count; i++) {
        const char *root = d->allowed_paths[i];
        size_t r = strlen(root);
        if (r == 1) /* "/" */
            return true;
        /* Root paths never end in '/', so the segment boundary is the
         * character right after the root. */
        if (n >= r && memcmp(path, root, r) == 0 && (n == r || path[r] == '/'))
            return true;
    }
    return false;
}

bool sy_destination_allows_auth(const sy_destination_t *d, const char *auth)
{
    if (!d->allowed_auth)
        return true;
    for (size_t i = 0; auth && i < d->allowed_auth_count; i++)
        if (strcmp(d->allowed_auth[i], auth) == 0)
            return true;
    return false;
}

/* ---- auth policies ---- */

static bool policy_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(name[i]) && name[i] != '_' && name[i] != '-' && name[i] != '.')
            return false;
    return true;
}

static bool parse_auth_policies(parse_t *p, json_t *doc, sy_policy_t *pol)
{
    char w[WHERE_MAX];
    json_t *policies;
    if (!get_object(p, doc, NULL, "auth_policies", true, &policies))
        return false;
    size_t n = json_object_size(policies);
    if (n == 0)
        return fail(p, "auth_policies", "expected at least one auth policy");
    pol->auth_policies = calloc(n, sizeof *pol->auth_policies);
    if (!pol->auth_policies)
        return fail_oom(p);
    const char *name;
    json_t *obj;
    bool ok = true; /* one problem per policy, every policy checked */
    json_object_foreach(policies, name, obj)
    {
        sy_auth_policy_t *a = &pol->auth_policies[pol->auth_policy_count++];
        sy_where_key(w, "auth_policies", name);
        if (!policy_name_ok(name)) {
            ok = fail(p, w, "policy names are 1-64 letters, digits, '_', '-' or '.'");
            continue;
        }
        if (!(a->name = strdup(name)))
            return fail_oom(p);
        a->name_len = strlen(name);
        /* Each type's fields, defaults and keys belong to src/auth. */
        sy_error_t aerr;
        if (!(a->config = sy_auth_config_parse(name, obj, w, &aerr))) {
            ok = fail(p, NULL, "%s", aerr.message);
            continue;
        }
        a->type = sy_auth_config_type(a->config);
    }
    return ok;
}

/* ---- document ---- */

static bool parse_listen_domains(parse_t *p, json_t *doc, sy_policy_t *pol)
{
    char w[WHERE_MAX];
    json_t *arr = json_object_get(doc, "listen_domains");
    if (!arr)
        return fail(p, "listen_domains", "required field is missing");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0)
        return fail(p, "listen_domains", "expected a non-empty array of domain names");
    pol->listen_domains = calloc(n, sizeof *pol->listen_domains);
    pol->domain_set = sy_domain_set_new(n);
    if (!pol->listen_domains || !pol->domain_set)
        return fail_oom(p);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        sy_where_index(w, "listen_domains", i);
        if (!json_is_string(v)) {
            ok = fail(p, w, "expected a domain name string");
            continue;
        }
        char *name = sy_host_normalise(sy_slice(json_string_value(v), json_string_length(v)),
                                       SY_HOST_WILDCARD);
        if (!name) {
            ok = fail(p, w,
                      "expected a domain name or \"*.\" + a domain name, without port (got "
                      "\"%.100s\")",
                      json_string_value(v));
            continue;
        }
        pol->listen_domains[pol->listen_domain_count++] = name;
        size_t j;
        if (!sy_domain_set_add(pol->domain_set, name, i, &j)) {
            if (j == SIZE_MAX)
                return fail_oom(p);
            ok = fail(p, w, "duplicates \"%.100s\" listed before it", name);
        }
    }
    return ok;
}

static bool parse_limits(parse_t *p, json_t *doc, sy_policy_t *pol)
{
    static const char *const known[] = {
        "max_request_line_bytes", "max_header_bytes", "max_headers", "max_body_bytes",
        "allow_path_parameters",  "max_routes",       NULL};
    json_t *obj; /* NULL when absent: json_object_get(NULL, ...) is NULL, so defaults apply */
    json_int_t line, head, count, body, routes;
    if (!get_object(p, doc, NULL, "limits", false, &obj) ||
        (obj && !check_known(p, obj, "limits", known)) ||
        !get_int(p, obj, "limits", "max_request_line_bytes", 64, 1048576, 8192, &line) ||
        !get_int(p, obj, "limits", "max_header_bytes", 256, 1048576, 32768, &head) ||
        !get_int(p, obj, "limits", "max_headers", 1, SY_HTTP_MAX_HEADERS, 100, &count) ||
        !get_int(p, obj, "limits", "max_body_bytes", 0, (json_int_t)1 << 40, 10485760, &body) ||
        !get_bool(p, obj, "limits", "allow_path_parameters", false, &pol->allow_path_parameters) ||
        !get_int(p, obj, "limits", "max_routes", 1, 100000000, SY_POLICY_DEFAULT_MAX_ROUTES,
                 &routes))
        return false;
    pol->max_routes = (size_t)routes;
    pol->limits.max_request_line_bytes = (size_t)line;
    pol->limits.max_header_bytes = (size_t)head;
    pol->limits.max_headers = (size_t)count;
    pol->limits.max_body_bytes = (uint64_t)body;
    return true;
}

static bool parse_timeouts(parse_t *p, json_t *doc, sy_policy_t *pol)
{
    static const char *const known[] = {"client_header_ms",    "client_idle_ms",
                                        "upstream_connect_ms", "upstream_response_ms",
                                        "upstream_idle_ms",    NULL};
    static const json_int_t defaults[] = {10000, 75000, 3000, 30000, 50000};
    uint32_t *fields[] = {&pol->timeouts.client_header_ms, &pol->timeouts.client_idle_ms,
                          &pol->timeouts.upstream_connect_ms, &pol->timeouts.upstream_response_ms,
                          &pol->timeouts.upstream_idle_ms};
    json_t *obj;
    if (!get_object(p, doc, NULL, "timeouts", false, &obj))
        return false;
    if (obj && !check_known(p, obj, "timeouts", known))
        return false;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        json_int_t v;
        if (!get_int(p, obj, "timeouts", known[i], 1, 3600000, defaults[i], &v))
            return false;
        *fields[i] = (uint32_t)v;
    }
    return true;
}

static bool parse_document(parse_t *p, json_t *doc, sy_policy_t *pol)
{
    static const char *const known[] = {"listen_domains",
                                        "destinations",
                                        "auth_policies",
                                        "default_auth",
                                        "allow_loopback_destinations",
                                        "limits",
                                        "timeouts",
                                        NULL};
    const char *def;
    /* Each section is checked even when an earlier one failed, so one run
     * reports every problem; a check that needs another section (names of
     * auth policies) runs only when that section parsed. */
    bool ok = check_known(p, doc, NULL, known);
    ok = parse_listen_domains(p, doc, pol) && ok;
    ok = parse_destinations(p, doc, pol) && ok;
    bool auth_ok = parse_auth_policies(p, doc, pol);
    ok = auth_ok && ok;
    if (auth_ok) {
        ok = check_binding_names(p, pol) && ok;
        if (!get_string(p, doc, NULL, "default_auth", true, &def)) {
            ok = false;
        } else {
            pol->default_auth = sy_policy_auth_find(pol, sy_slice_cstr(def));
            if (!pol->default_auth)
                ok = fail(p, "default_auth", "auth policy '%.64s' is not defined in auth_policies",
                          def);
        }
    }
    ok = get_bool(p, doc, NULL, "allow_loopback_destinations", false, &pol->allow_loopback) && ok;
    ok = parse_limits(p, doc, pol) && ok;
    return parse_timeouts(p, doc, pol) && ok;
}

void sy_problems_free(sy_problems_t *problems)
{
    if (!problems)
        return;
    for (size_t i = 0; i < problems->count; i++)
        free(problems->items[i]);
    free(problems->items);
    problems->items = NULL;
    problems->count = 0;
}

/* err gets as many problems as fit, whole, joined by "; ", and how many
 * more there are. */
static void problems_join(const parse_t *p, sy_error_t *err)
{
    if (!err || p->problems.count < 2)
        return;
    size_t cap = sizeof err->message, used = 0, shown = 0;
    err->message[0] = '\0';
    for (; shown < p->problems.count; shown++) {
        const char *item = p->problems.items[shown];
        size_t n = strlen(item) + (shown ? 2 : 0);
        /* Room for the tail "; and 99999 more problems" (30 bytes). */
        if (used + n + 30 >= cap)
            break;
        used += (size_t)snprintf(err->message + used, cap - used, "%s%s", shown ? "; " : "", item);
    }
    if (shown == 0)
        snprintf(err->message, cap, "%s", p->problems.items[0]);
    else if (shown < p->problems.count)
        snprintf(err->message + used, cap - used, "; and %zu more problems",
                 p->problems.count - shown);
}

sy_policy_t *sy_policy_parse_report(const char *text, size_t len, const char *source_name,
                                    sy_error_t *err, sy_problems_t *problems)
{
    parse_t p = {.source = source_name ? source_name : "policy", .err = err};
    json_error_t jerr;
    sy_error_t scratch;
    char located[600];
    sy_policy_t *pol = NULL;
    if (!err)
        p.err = err = &scratch;
    sy_error_clear(err);
    if (problems)
        *problems = (sy_problems_t){0};
    json_t *doc = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        /* "policy.json:3:14: ...": the location joins the name. */
        snprintf(located, sizeof located, "%s:%d:%d", p.source, jerr.line, jerr.column);
        p.source = located;
        fail(&p, NULL, "%s", jerr.text);
        goto out;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        fail(&p, NULL, "expected a JSON object at the top level");
        goto out;
    }
    pol = calloc(1, sizeof *pol);
    if (!pol) {
        json_decref(doc);
        fail_oom(&p);
        goto out;
    }
    pol->document = doc;
    if (!parse_document(&p, doc, pol) || p.problems.count > 0) {
        sy_policy_free(pol);
        pol = NULL;
        goto out;
    }
out:
    problems_join(&p, err);
    if (p.out_of_memory && !pol)
        sy_error_set(err, "%s: out of memory", p.source);
    if (problems)
        *problems = p.problems;
    else
        sy_problems_free(&p.problems);
    return pol;
}

sy_policy_t *sy_policy_parse(const char *text, size_t len, const char *source_name, sy_error_t *err)
{
    return sy_policy_parse_report(text, len, source_name, err, NULL);
}

void sy_policy_free(sy_policy_t *policy)
{
    if (!policy)
        return;
    for (size_t i = 0; i < policy->listen_domain_count; i++)
        free(policy->listen_domains[i]);
    free(policy->listen_domains);
    sy_domain_set_free(policy->domain_set);
    for (size_t i = 0; i < policy->destination_count; i++) {
        sy_destination_t *d = &policy->destinations[i];
        free(d->host);
        free(d->connect_host);
        free(d->tls_verify_name);
        free(d->sni);
        free(d->host_header);
        free(d->api_id);
        free(d->ca_file);
        for (size_t k = 0; k < d->allowed_path_count; k++)
            free(d->allowed_paths[k]);
        free(d->allowed_paths);
        for (size_t k = 0; k < d->allowed_auth_count; k++)
            free(d->allowed_auth[k]);
        free(d->allowed_auth);
    }
    free(policy->destinations);
    for (size_t i = 0; i < policy->auth_policy_count; i++) {
        sy_auth_policy_t *a = &policy->auth_policies[i];
        sy_auth_config_free(a->config);
        free(a->name);
    }
    free(policy->auth_policies);
    json_decref(policy->document);
    free(policy);
}
