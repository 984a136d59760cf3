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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "http/headers.h"

typedef struct {
    const char *source;
    sy_error_t *err;
} parse_t;

/* Paths like "auth_policies.partners.users.alice" are built in buffers of
 * this size; a longer key is truncated in the message, never overflowed. */
#define WHERE_MAX 256

static bool fail(parse_t *p, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(parse_t *p, const char *where, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (where && where[0])
        sy_error_set(p->err, "%s: %s: %s", p->source, where, msg);
    else
        sy_error_set(p->err, "%s: %s", p->source, msg);
    return false;
}

static bool fail_oom(parse_t *p)
{
    return fail(p, NULL, "out of memory");
}

/* Appends the parts into out, truncating (never overflowing); out may not
 * alias a part. Hand-rolled because snprintf here trips GCC's truncation
 * warning, and truncating a long path in a message is exactly the intent. */
static const char *join(char out[WHERE_MAX], const char *a, const char *sep, const char *b,
                        const char *end)
{
    const char *parts[] = {a, sep, b, end};
    size_t used = 0;
    for (size_t k = 0; k < 4; k++)
        for (const char *c = parts[k]; c && *c && used + 1 < WHERE_MAX; c++)
            out[used++] = *c;
    out[used] = '\0';
    return out;
}

static const char *at_key(char out[WHERE_MAX], const char *where, const char *key)
{
    bool top = !where || !where[0];
    return join(out, top ? "" : where, top ? "" : ".", key, NULL);
}

static const char *at_index(char out[WHERE_MAX], const char *where, size_t i)
{
    char digits[24];
    snprintf(digits, sizeof digits, "[%zu", i);
    return join(out, where, digits, "]", NULL);
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
        if (h.len == 0)
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

static bool name_matches(const char *pattern, sy_slice_t host)
{
    if (pattern[0] == '*')
        return wildcard_matches(pattern, host);
    return sy_slice_eq_nocase(sy_slice_cstr(pattern), host);
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
    for (size_t i = 0; i < policy->listen_domain_count; i++)
        if (name_matches(policy->listen_domains[i], host))
            return true;
    return false;
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
            return fail(p, at_key(w, where, key), "unknown field (expected one of: %s)", list);
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
            return fail(p, at_key(w, where, key), "required field is missing");
        return true;
    }
    if (!json_is_string(v))
        return fail(p, at_key(w, where, key), "expected a string");
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
        return fail(p, at_key(w, where, key), "expected an integer %lld-%lld", (long long)min,
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
        return fail(p, at_key(w, where, key), "expected true or false");
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
            return fail(p, at_key(w, where, key), "required field is missing");
        return true;
    }
    if (!json_is_object(v))
        return fail(p, at_key(w, where, key), "expected an object");
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
    if (!readable_file(p, at_key(w, where, key), s))
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
        return fail(p, at_key(w, where, key), "expected %s (got \"%.100s\")", expected, s);
    return true;
}

static bool is_tchar(char c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if (!is_tchar(*s))
            return false;
    return true;
}

/* ---- destinations ---- */

static bool parse_destination(parse_t *p, json_t *obj, const char *where, sy_destination_t *d)
{
    static const char *const known[] = {
        "host", "scheme",      "port",   "connect_to", "tls_verify_name",
        "sni",  "host_header", "api_id", "ca_file",    NULL};
    char w[WHERE_MAX];
    const char *s;
    json_int_t port;
    if (!json_is_object(obj))
        return fail(p, where, "expected an object");
    if (!check_known(p, obj, where, known))
        return false;

    if (!get_string(p, obj, where, "host", true, &s))
        return false;
    d->host = sy_host_normalise(sy_slice_cstr(s), SY_HOST_WILDCARD | SY_HOST_IP);
    if (!d->host)
        return fail(p, at_key(w, where, "host"),
                    "expected a host name, \"*.\" + a host name, or an IP address, without port "
                    "(got \"%.100s\")",
                    s);
    d->host_wildcard = d->host[0] == '*';

    if (!get_string(p, obj, where, "scheme", false, &s))
        return false;
    d->https = !s || strcmp(s, "https") == 0;
    if (s && !d->https && strcmp(s, "http") != 0)
        return fail(p, at_key(w, where, "scheme"), "expected \"https\" or \"http\"");

    if (!get_int(p, obj, where, "port", 1, 65535, d->https ? 443 : 80, &port))
        return false;
    d->port = (uint16_t)port;

    if (!get_string(p, obj, where, "connect_to", false, &s))
        return false;
    if (s) {
        sy_slice_t host;
        uint16_t connect_port;
        char *name = NULL;
        if (sy_host_split(sy_slice_cstr(s), &host, &connect_port))
            name = sy_host_normalise(host, SY_HOST_IP);
        if (!name)
            return fail(p, at_key(w, where, "connect_to"),
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
            return fail(p, at_key(w, where, "host_header"),
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
            return fail(p, at_key(w, where, "api_id"), "expected 1-64 letters or digits");
        d->api_id = strdup(s);
        if (!d->api_id)
            return fail_oom(p);
    }
    return get_file(p, obj, where, "ca_file", &d->ca_file);
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
    for (size_t i = 0; i < n; i++) {
        sy_destination_t *d = &pol->destinations[i];
        pol->destination_count = i + 1; /* so a partly filled entry is freed */
        at_index(w, "destinations", i);
        if (!parse_destination(p, json_array_get(arr, i), w, d))
            return false;
        for (size_t j = 0; j < i; j++) {
            const sy_destination_t *o = &pol->destinations[j];
            if (o->https == d->https && o->port == d->port && strcmp(o->host, d->host) == 0)
                return fail(p, w, "duplicates destinations[%zu] (same scheme, host and port)", j);
        }
    }
    return true;
}

/* ---- auth policies ---- */

static const char *const accepted_hashes = "$2y$, $2b$, $6$, $5$ or $y$";

/* NULL when h looks like a crypt(3) hash of a scheme we accept. Only the
 * shape is checked: hashing a probe at load would cost up to a bcrypt round
 * per user on every poll. */
static const char *crypt_hash_problem(const char *h)
{
    static const char *const prefixes[] = {"$2y$", "$2b$", "$6$", "$5$", "$y$"};
    size_t n = strlen(h), prefix = 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !prefix; i++)
        if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
            prefix = strlen(prefixes[i]);
    if (!prefix)
        return h[0] == '$' ? "unsupported hash scheme" : "plain-text password refused";
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(h[i]) && h[i] != '.' && h[i] != '/' && h[i] != '$' && h[i] != '=')
            return "malformed crypt hash";
    if (h[1] == '2') {
        /* bcrypt: $2y$NN$ + 22 salt + 31 hash characters. */
        if (n != 60 || !is_digit(h[4]) || !is_digit(h[5]) || h[6] != '$')
            return "malformed bcrypt hash";
        return NULL;
    }
    const char *last = strrchr(h, '$');
    if (last == h + prefix - 1 || last[1] == '\0')
        return "malformed crypt hash";
    return NULL;
}

static bool parse_basic(parse_t *p, json_t *obj, const char *where, sy_auth_policy_t *a)
{
    static const char *const known[] = {"type", "realm", "users", NULL};
    char w[WHERE_MAX], uw[WHERE_MAX];
    const char *s;
    json_t *users;
    if (!check_known(p, obj, where, known))
        return false;
    if (!get_string(p, obj, where, "realm", false, &s))
        return false;
    if (s) {
        /* The realm goes inside a quoted-string of WWW-Authenticate. */
        size_t n = strlen(s);
        bool ok = n >= 1 && n <= 100;
        for (size_t i = 0; i < n && ok; i++)
            ok = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\';
        if (!ok)
            return fail(p, at_key(w, where, "realm"),
                        "expected 1-100 printable ASCII characters without '\"' or '\\'");
    }
    a->realm = strdup(s ? s : a->name);
    if (!a->realm)
        return fail_oom(p);
    if (!get_object(p, obj, where, "users", true, &users))
        return false;
    at_key(uw, where, "users");
    const char *user;
    json_t *hash;
    json_object_foreach(users, user, hash)
    {
        bool ok = user[0] != '\0' && strlen(user) <= 128;
        for (const char *c = user; *c && ok; c++)
            ok = (unsigned char)*c >= 0x20 && *c != 0x7f && *c != ':';
        if (!ok)
            return fail(p, at_key(w, uw, user),
                        "user names are 1-128 characters without ':' or control characters");
        if (!json_is_string(hash))
            return fail(p, at_key(w, uw, user), "expected a crypt hash string");
        const char *problem = crypt_hash_problem(json_string_value(hash));
        if (problem)
            return fail(p, at_key(w, uw, user), "%s; use a crypt hash (%s)", problem,
                        accepted_hashes);
    }
    return true;
}

static const char *const jwt_algorithms[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                             "PS512", "ES256", "ES384", "ES512", "EdDSA",
                                             "HS256", "HS384", "HS512", NULL};

/* Decoded length of base64 or base64url text (padding optional), or -1. */
static long base64_decoded_len(const char *s)
{
    size_t n = strlen(s), data = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
        } else if (pad || !(is_alnum(c) || c == '+' || c == '/' || c == '-' || c == '_')) {
            return -1;
        } else {
            data++;
        }
    }
    if (pad > 2 || data % 4 == 1 || (pad && (data + pad) % 4 != 0))
        return -1;
    return (long)(data * 6 / 8);
}

static bool jwks_uri_ok(const char *s)
{
    sy_url_parts_t url;
    if (!sy_url_split(sy_slice_cstr(s), &url) || !url.https)
        return false;
    char *host = sy_host_normalise(url.host, SY_HOST_IP);
    bool ok = host != NULL && !memchr(url.rest.ptr, '#', url.rest.len);
    free(host);
    return ok;
}

static bool parse_jwt(parse_t *p, json_t *obj, const char *where, sy_auth_policy_t *a)
{
    static const char *const known[] = {"type",
                                        "issuer",
                                        "audiences",
                                        "jwks_uri",
                                        "jwks",
                                        "hs_secret_base64",
                                        "algorithms",
                                        "clock_skew_seconds",
                                        "required_claims",
                                        "forward_claims",
                                        "ca_file",
                                        NULL};
    char w[WHERE_MAX], iw[WHERE_MAX];
    const char *s, *jwks_uri, *secret;
    json_t *v, *jwks, *claims;
    json_int_t skew;
    char *ca_file = NULL;
    if (!check_known(p, obj, where, known))
        return false;

    if (!get_string(p, obj, where, "issuer", true, &s))
        return false;
    if (!s[0])
        return fail(p, at_key(w, where, "issuer"), "expected a non-empty string");

    at_key(w, where, "audiences");
    v = json_object_get(obj, "audiences");
    if (v) {
        if (!json_is_array(v) || json_array_size(v) == 0)
            return fail(p, w, "expected a non-empty array of strings");
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *aud = json_array_get(v, i);
            if (!json_is_string(aud) || json_string_length(aud) == 0)
                return fail(p, at_index(iw, w, i), "expected a non-empty string");
        }
    }

    if (!get_string(p, obj, where, "jwks_uri", false, &jwks_uri) ||
        !get_object(p, obj, where, "jwks", false, &jwks) ||
        !get_string(p, obj, where, "hs_secret_base64", false, &secret))
        return false;
    if ((jwks_uri != NULL) + (jwks != NULL) + (secret != NULL) != 1)
        return fail(p, where,
                    "exactly one key source is required: jwks_uri, jwks or hs_secret_base64");
    if (jwks_uri && !jwks_uri_ok(jwks_uri))
        return fail(p, at_key(w, where, "jwks_uri"),
                    "expected an https:// URL without userinfo or fragment (got \"%.100s\")",
                    jwks_uri);
    if (jwks) {
        at_key(w, where, "jwks");
        json_t *keys = json_object_get(jwks, "keys");
        if (!json_is_array(keys) || json_array_size(keys) == 0)
            return fail(p, w, "expected a JWK set: {\"keys\": [...]} with at least one key");
        for (size_t i = 0; i < json_array_size(keys); i++) {
            json_t *key = json_array_get(keys, i);
            char kw[WHERE_MAX];
            if (!json_is_object(key) || !json_is_string(json_object_get(key, "kty")))
                return fail(p, at_index(iw, at_key(kw, w, "keys"), i),
                            "expected a JWK object with a \"kty\" string");
        }
    }
    long secret_len = secret ? base64_decoded_len(secret) : 0;
    if (secret && secret_len < 0)
        return fail(p, at_key(w, where, "hs_secret_base64"), "expected base64 text");

    /* Algorithms are pinned per key source: an HMAC algorithm next to a
     * public key set is the classic confusion attack (the public key used
     * as an HMAC secret). */
    at_key(w, where, "algorithms");
    v = json_object_get(obj, "algorithms");
    if (!v)
        return fail(p, w, "required field is missing");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(p, w, "expected a non-empty array of algorithm names");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *alg = json_array_get(v, i);
        const char *name = json_string_value(alg);
        size_t k;
        at_index(iw, w, i);
        for (k = 0; name && jwt_algorithms[k] && strcmp(name, jwt_algorithms[k]) != 0; k++)
            ;
        if (!name || !jwt_algorithms[k])
            return fail(p, iw,
                        "expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, "
                        "ES384, ES512, EdDSA, HS256, HS384, HS512 (\"none\" is never "
                        "accepted)");
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_array_get(v, j)), name) == 0)
                return fail(p, iw, "duplicate algorithm %s", name);
        bool hmac = name[0] == 'H';
        if (hmac && !secret)
            return fail(p, iw, "%s needs hs_secret_base64 (HMAC algorithms never use a JWK set)",
                        name);
        if (!hmac && secret)
            return fail(p, iw, "%s needs jwks_uri or jwks, not hs_secret_base64", name);
        long need = atol(name + 2) / 8; /* RFC 7518 §3.2: key at least the hash size */
        if (hmac && secret_len < need)
            return fail(p, at_key(iw, where, "hs_secret_base64"),
                        "%s needs a secret of at least %ld bytes (RFC 7518 §3.2); this one has "
                        "%ld",
                        name, need, secret_len);
    }

    if (!get_int(p, obj, where, "clock_skew_seconds", 0, 600, 60, &skew))
        return false;

    if (!get_object(p, obj, where, "required_claims", false, &claims))
        return false;
    if (claims) {
        const char *claim;
        at_key(w, where, "required_claims");
        json_object_foreach(claims, claim, v)
        {
            if (!claim[0])
                return fail(p, w, "claim names must not be empty");
            if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v))
                return fail(p, at_key(iw, w, claim), "expected a string, integer or boolean");
        }
    }

    if (!get_object(p, obj, where, "forward_claims", false, &claims))
        return false;
    if (claims) {
        const char *claim;
        at_key(w, where, "forward_claims");
        json_object_foreach(claims, claim, v)
        {
            at_key(iw, w, claim);
            if (!claim[0])
                return fail(p, w, "claim names must not be empty");
            const char *header = json_string_value(v);
            if (!header || !is_token(header))
                return fail(p, iw, "expected a header name");
            /* Claims must never choose framing, routing or the headers
             * switchyard itself vouches for upstream. */
            if (sy_header_lookup(sy_slice_cstr(header)) != SY_HDR_OTHER)
                return fail(p, iw, "header %s is set by switchyard and can't carry a claim",
                            header);
            const char *other;
            json_t *ov;
            json_object_foreach(claims, other, ov)
            {
                if (ov == v)
                    break;
                if (sy_slice_eq_nocase(sy_slice_cstr(json_string_value(ov)), sy_slice_cstr(header)))
                    return fail(p, iw, "header %s is already set from claim %s", header, other);
            }
        }
    }

    if (!get_file(p, obj, where, "ca_file", &ca_file))
        return false;
    free(ca_file);
    return true;
}

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
    static const char *const bare[] = {"type", NULL};
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
    json_object_foreach(policies, name, obj)
    {
        sy_auth_policy_t *a = &pol->auth_policies[pol->auth_policy_count++];
        const char *type;
        at_key(w, "auth_policies", name);
        if (!policy_name_ok(name))
            return fail(p, w, "policy names are 1-64 letters, digits, '_', '-' or '.'");
        if (!json_is_object(obj))
            return fail(p, w, "expected an object");
        a->name = strdup(name);
        if (!a->name)
            return fail_oom(p);
        a->config = json_incref(obj);
        if (!get_string(p, obj, w, "type", true, &type))
            return false;
        if (strcmp(type, "none") == 0 || strcmp(type, "iam") == 0) {
            a->type = type[0] == 'n' ? SY_AUTH_NONE : SY_AUTH_IAM;
            if (!check_known(p, obj, w, bare))
                return false;
        } else if (strcmp(type, "basic") == 0) {
            a->type = SY_AUTH_BASIC;
            if (!parse_basic(p, obj, w, a))
                return false;
        } else if (strcmp(type, "jwt") == 0) {
            a->type = SY_AUTH_JWT;
            if (!parse_jwt(p, obj, w, a))
                return false;
        } else {
            char tw[WHERE_MAX];
            return fail(p, at_key(tw, w, "type"),
                        "expected \"none\", \"basic\", \"jwt\" or \"iam\" (got \"%.40s\")", type);
        }
    }
    return true;
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
    if (!pol->listen_domains)
        return fail_oom(p);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        at_index(w, "listen_domains", i);
        if (!json_is_string(v))
            return fail(p, w, "expected a domain name string");
        char *name = sy_host_normalise(sy_slice(json_string_value(v), json_string_length(v)),
                                       SY_HOST_WILDCARD);
        if (!name)
            return fail(p, w,
                        "expected a domain name or \"*.\" + a domain name, without port (got "
                        "\"%.100s\")",
                        json_string_value(v));
        pol->listen_domains[pol->listen_domain_count++] = name;
        for (size_t j = 0; j < i; j++)
            if (strcmp(pol->listen_domains[j], name) == 0)
                return fail(p, w, "duplicates listen_domains[%zu]", j);
    }
    return true;
}

static bool parse_limits(parse_t *p, json_t *doc, sy_policy_t *pol)
{
    static const char *const known[] = {"max_request_line_bytes", "max_header_bytes", "max_headers",
                                        "max_body_bytes",         "max_routes",       NULL};
    json_t *obj; /* NULL when absent: json_object_get(NULL, ...) is NULL, so defaults apply */
    json_int_t line, head, count, body, routes;
    if (!get_object(p, doc, NULL, "limits", false, &obj) ||
        (obj && !check_known(p, obj, "limits", known)) ||
        !get_int(p, obj, "limits", "max_request_line_bytes", 64, 1048576, 8192, &line) ||
        !get_int(p, obj, "limits", "max_header_bytes", 256, 1048576, 32768, &head) ||
        !get_int(p, obj, "limits", "max_headers", 1, SY_HTTP_MAX_HEADERS, 100, &count) ||
        !get_int(p, obj, "limits", "max_body_bytes", 0, (json_int_t)1 << 40, 10485760, &body) ||
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
    if (!check_known(p, doc, NULL, known) || !parse_listen_domains(p, doc, pol) ||
        !parse_destinations(p, doc, pol) || !parse_auth_policies(p, doc, pol))
        return false;
    if (!get_string(p, doc, NULL, "default_auth", true, &def))
        return false;
    pol->default_auth = sy_policy_auth_find(pol, sy_slice_cstr(def));
    if (!pol->default_auth)
        return fail(p, "default_auth", "auth policy '%.64s' is not defined in auth_policies", def);
    return get_bool(p, doc, NULL, "allow_loopback_destinations", false, &pol->allow_loopback) &&
           parse_limits(p, doc, pol) && parse_timeouts(p, doc, pol);
}

sy_policy_t *sy_policy_parse(const char *text, size_t len, const char *source_name, sy_error_t *err)
{
    parse_t p = {source_name ? source_name : "policy", err};
    json_error_t jerr;
    sy_error_clear(err);
    json_t *doc = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        sy_error_set(err, "%s:%d:%d: %s", p.source, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        fail(&p, NULL, "expected a JSON object at the top level");
        return NULL;
    }
    sy_policy_t *pol = calloc(1, sizeof *pol);
    if (!pol) {
        json_decref(doc);
        fail_oom(&p);
        return NULL;
    }
    pol->document = doc;
    if (!parse_document(&p, doc, pol)) {
        sy_policy_free(pol);
        return NULL;
    }
    /* The auth module's parsed state (users, keys, algorithms) is built
     * here, once per document, never on the request path. */
    for (size_t i = 0; i < pol->auth_policy_count; i++) {
        sy_auth_policy_t *a = &pol->auth_policies[i];
        sy_error_t aerr;
        if (!sy_auth_prepare(a, &aerr)) {
            /* aerr names the field: "jwks.keys[0]: ..." */
            fail(&p, NULL, "auth_policies.%s.%s", a->name, aerr.message);
            sy_policy_free(pol);
            return NULL;
        }
    }
    return pol;
}

void sy_policy_free(sy_policy_t *policy)
{
    if (!policy)
        return;
    for (size_t i = 0; i < policy->listen_domain_count; i++)
        free(policy->listen_domains[i]);
    free(policy->listen_domains);
    for (size_t i = 0; i < policy->destination_count; i++) {
        sy_destination_t *d = &policy->destinations[i];
        free(d->host);
        free(d->connect_host);
        free(d->tls_verify_name);
        free(d->sni);
        free(d->host_header);
        free(d->api_id);
        free(d->ca_file);
    }
    free(policy->destinations);
    for (size_t i = 0; i < policy->auth_policy_count; i++) {
        sy_auth_policy_t *a = &policy->auth_policies[i];
        sy_auth_release(a);
        free(a->name);
        free(a->realm);
        json_decref(a->config);
    }
    free(policy->auth_policies);
    json_decref(policy->document);
    free(policy);
}
