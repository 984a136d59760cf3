/*
 * policy.h: the operations policy document (SPEC §2) parsed and validated
 * into an immutable structure. Unknown fields are errors: a typo must never
 * silently weaken security.
 * Thread: parsed on the control plane (poller or main); read-only afterwards
 * and then safe from any thread. Pointers: everything lives as long as the
 * sy_policy_t.
 */
#ifndef SY_POLICY_POLICY_H
#define SY_POLICY_POLICY_H

#include <jansson.h>

#include "core/common.h"
#include "http/parser.h"

typedef enum { SY_AUTH_NONE = 0, SY_AUTH_BASIC, SY_AUTH_JWT, SY_AUTH_IAM } sy_auth_type_t;

/* An auth policy's settings, parsed and owned by src/auth (auth.h). */
typedef struct sy_auth_config sy_auth_config_t;

typedef struct {
    char *name;
    sy_auth_type_t type;
    sy_auth_config_t *config; /* sy_auth_config_parse; NULL only in tests (fails closed) */
    size_t name_len; /* measured at load, for the access log (0 in tests: measured there) */
} sy_auth_policy_t;

/* Host spellings: `host` and a route's target_host are written as in a URL
 * authority (lower-case, IPv6 literals in brackets: "[::1]"), so they can
 * be compared and put in a Host header as they are; connect_host is an
 * address for getaddrinfo (IPv6 without brackets). */
typedef struct {
    char *host;         /* lower-case; "*.x.y" for a wildcard */
    bool host_wildcard; /* host is "*." + suffix */
    bool https;         /* scheme */
    uint16_t port;
    char *connect_host; /* connect_to host (also set, bare, for an IPv6 literal host), or NULL
                           to connect to the target host */
    uint16_t connect_port;
    char *tls_verify_name, *sni, *host_header, *api_id, *ca_file; /* NULL when absent */
    /* Bindings (operations own them): which route paths may target this
     * destination and with which auth policies. NULL: unbound (any path,
     * any auth), as before bindings existed; `check` warns about it. */
    char **allowed_paths; /* root paths: "/users" allows "/users" and "/users/v2" */
    size_t allowed_path_count;
    char **allowed_auth; /* auth policy names, each defined in auth_policies */
    size_t allowed_auth_count;
    size_t index; /* position in destinations[], for messages */
} sy_destination_t;

#define SY_POLICY_DEFAULT_MAX_ROUTES 250000

typedef struct {
    uint32_t client_header_ms, client_idle_ms, upstream_connect_ms, upstream_response_ms,
        upstream_idle_ms;
} sy_timeouts_t;

struct sy_domain_set;

typedef struct {
    char **listen_domains; /* lower-case, trailing dot removed; "*.x" for wildcards */
    size_t listen_domain_count;
    struct sy_domain_set *domain_set; /* the same names hashed: O(1) Host checks */
    sy_destination_t *destinations;
    size_t destination_count;
    sy_auth_policy_t *auth_policies;
    size_t auth_policy_count;
    const sy_auth_policy_t *default_auth;
    bool allow_loopback;
    sy_http_limits_t limits;
    bool allow_path_parameters; /* limits.allow_path_parameters: ';' in paths (default false) */
    size_t max_routes;          /* limits.max_routes: a larger route table is refused whole */
    sy_timeouts_t timeouts;
    json_t *document; /* the whole parsed document */
} sy_policy_t;

/* Parses and validates a policy document. source_name ("policy.json",
 * "s3://b/k") prefixes every error: "policy.json:3:14: ..." for syntax,
 * "policy.json: destinations[1].port: expected an integer 1-65535" for
 * fields. NULL on error, with err filled. */
sy_policy_t *sy_policy_parse(const char *text, size_t len, const char *source_name,
                             sy_error_t *err);
void sy_policy_free(sy_policy_t *policy);

/* Every problem one document has, each "policy.json: where: what", in
 * document order: `check` reports them all in one run. */
typedef struct {
    char **items;
    size_t count;
} sy_problems_t;
void sy_problems_free(sy_problems_t *problems);

/* sy_policy_parse, also filling *problems (may be NULL) with every
 * problem found. err then holds as many of them as fit, joined by "; ". */
sy_policy_t *sy_policy_parse_report(const char *text, size_t len, const char *source_name,
                                    sy_error_t *err, sy_problems_t *problems);

/* The destination binding rules. True when a route with this path (a valid
 * route path) may target d: it equals one of d's allowed_paths or lies under
 * one at a segment boundary ("/users" allows "/users/v2", never "/usersx";
 * "/" allows every path). Always true for an unbound destination. Cost: the
 * length of d's lists, independent of the number of routes. */
bool sy_destination_allows_path(const sy_destination_t *d, const char *path);
/* True when d allows the auth policy named auth (the route's effective
 * auth: its own, else default_auth). */
bool sy_destination_allows_auth(const sy_destination_t *d, const char *auth);

/* host: the Host value without port; case-insensitive; a trailing dot is
 * ignored. "*.api.example.com" matches exactly one more label. */
bool sy_policy_domain_listed(const sy_policy_t *policy, sy_slice_t host);
/* The destination a target (scheme, host, port) is allowed by, or NULL. */
const sy_destination_t *sy_policy_destination_find(const sy_policy_t *policy, bool https,
                                                   sy_slice_t host, uint16_t port);
const sy_auth_policy_t *sy_policy_auth_find(const sy_policy_t *policy, sy_slice_t name);

/* Splits a Host value into host and port (port 0 when absent), lower-cases
 * nothing; strips one trailing dot. false when malformed. */
bool sy_host_split(sy_slice_t value, sy_slice_t *host, uint16_t *port);

/* What sy_host_normalise accepts besides a DNS name (labels of letters,
 * digits, '-' and '_'; a name whose last label is numeric must be a
 * canonical dotted-quad, so "0x7f.1" or "2130706433" never pass as names). */
#define SY_HOST_WILDCARD 0x1u /* one leading "*." label */
#define SY_HOST_IP 0x2u       /* a dotted-quad IPv4 or a bracketed IPv6 literal */
/* A malloc'd lower-case copy of host with one trailing dot removed, or NULL
 * when it is not acceptable under flags. */
char *sy_host_normalise(sy_slice_t host, unsigned flags);

/* An http(s) URL split into parts (slices into the input). */
typedef struct {
    bool https;
    sy_slice_t host; /* as written; "[v6]" keeps its brackets */
    uint16_t port;   /* 0 when absent */
    sy_slice_t rest; /* path, query and fragment: "" or starting with '/', '?' or '#' */
} sy_url_parts_t;

/* Splits "http[s]://host[:port][rest]"; false for another scheme, userinfo,
 * a malformed authority, or bytes outside visible ASCII. */
bool sy_url_split(sy_slice_t url, sy_url_parts_t *out);

#endif
