/*
 * test_ssrf_vectors.c: the published SSRF / host-injection / path
 * normalisation cases ($SY_VECTORS/ssrf/ssrf_host_path_cases.json) run
 * through the real pipeline pieces:
 *
 *  - ip_literal_forms: each literal through getaddrinfo(AI_NUMERICHOST)
 *    (must agree with the file's glibc interpretation), then the address
 *    guard; and the literal as a Host header, which must never be served.
 *  - cases: each raw request through the parser, then sy_decide (host,
 *    path, route) against a policy that serves only api.example.com; the
 *    file's accept/reject verdict must hold, except for two documented
 *    places where SPEC.md decides otherwise (pinned the SPEC's way).
 *  - whatwg_host_path_reference: every path this router accepts must be
 *    one a WHATWG URL parser leaves unchanged, so a backend using one
 *    routes the same path switchyard did.
 *
 * Skipped (passing) when the vectors are absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>

#include "http/serialize.h"
#include "net/addr.h"
#include "route/decide.h"
#include "route/path.h"

static json_t *vectors;
static sy_snapshot_t *snapshot;

static const char POLICY[] = "{\"listen_domains\": [\"api.example.com\"],"
                             "\"destinations\": [{\"host\": \"backend.svc.internal\"}],"
                             "\"auth_policies\": {\"public\": {\"type\": \"none\"}},"
                             "\"default_auth\": \"public\"}";
static const char ROUTES[] = "[{\"path\": \"/\", \"target\": \"https://backend.svc.internal\"}]";

static int setup(void **state)
{
    (void)state;
    const char *dir = getenv("SY_VECTORS");
    char file[1024];
    snprintf(file, sizeof file, "%s/ssrf/ssrf_host_path_cases.json",
             dir && *dir ? dir : "tests/vectors");
    vectors = json_load_file(file, 0, NULL);

    sy_error_t err;
    sy_policy_t *policy = sy_policy_parse(POLICY, strlen(POLICY), "policy.json", &err);
    sy_route_list_t *routes = sy_routes_parse_json(ROUTES, strlen(ROUTES), "routes.json", &err);
    if (!policy || !routes)
        return -1;
    snapshot = sy_snapshot_build(policy, routes, &err);
    return snapshot ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(vectors);
    sy_snapshot_unref(snapshot);
    return 0;
}

static json_t *section(const char *key)
{
    if (!vectors) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    json_t *v = json_object_get(vectors, key);
    if (!v)
        fail_msg("vectors: no \"%s\"", key);
    return v;
}

static const char *str_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

#define LOOPBACK "loopback address (allow_loopback_destinations is false)"
#define METADATA "cloud metadata address"

/* What the guard must say about each address the file's literals lead to.
 * An address missing here fails the test, so new vectors get a verdict. */
static const struct {
    const char *address;
    const char *refusal;
} oracle[] = {
    {"169.254.169.254", METADATA},
    {"127.0.0.1", LOOPBACK},
    {"0.0.0.0", "unspecified address"},
    /* Private: VPC endpoints live there, so the guard allows it; the file's
     * "reject" holds one level up, where the literal is refused as a Host. */
    {"192.168.0.1", NULL},
    {"::ffff:169.254.169.254", METADATA},
    {"::169.254.169.254", METADATA},
    {"fd00:ec2::254", METADATA},
    {"::1", LOOPBACK},
    {"::", "unspecified address"},
};

static bool same_address(const struct sockaddr *sa, const char *text)
{
    unsigned char want[16];
    if (sa->sa_family == AF_INET && inet_pton(AF_INET, text, want) == 1)
        return memcmp(&((const struct sockaddr_in *)(const void *)sa)->sin_addr, want, 4) == 0;
    if (sa->sa_family == AF_INET6 && inet_pton(AF_INET6, text, want) == 1)
        return memcmp(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, want, 16) == 0;
    return false;
}

static bool resolve(const char *literal, struct sockaddr_storage *out)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(literal, "80", &hints, &res) != 0)
        return false;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
}

static void test_ip_literal_forms(void **state)
{
    (void)state;
    json_t *items = json_object_get(section("ip_literal_forms"), "items");
    assert_true(json_array_size(items) > 0);
    size_t index, resolved = 0, refused_by_glibc = 0;
    json_t *item;
    json_array_foreach(items, index, item)
    {
        const char *literal = str_field(item, "literal");
        assert_non_null(literal);
        char bare[128];
        size_t len = strlen(literal);
        if (len >= 2 && literal[0] == '[' && literal[len - 1] == ']')
            snprintf(bare, sizeof bare, "%.*s", (int)(len - 2), literal + 1);
        else
            snprintf(bare, sizeof bare, "%s", literal);

        /* Whatever the literal is, it is never a Host switchyard serves. */
        sy_decision_t d;
        char path[] = "/latest/meta-data/";
        size_t path_len = sizeof path - 1;
        sy_decide(snapshot, sy_slice_cstr(literal), path, &path_len, SY_SLICE_LIT("GET"), &d);
        if (d.status != 400 && d.status != 421)
            fail_msg("Host: %s got %d", literal, d.status);

        const char *glibc = str_field(item, "glibc_inet_aton");
        const char *ipv6 = str_field(item, "ipv6");
        struct sockaddr_storage ss;
        bool ok = resolve(bare, &ss);
        if (glibc && strcmp(glibc, "failure") == 0) {
            if (ok)
                fail_msg("getaddrinfo accepted \"%s\", glibc inet_aton refused it", bare);
            refused_by_glibc++;
            continue;
        }
        const char *expected_address = glibc ? glibc : ipv6;
        if (!expected_address)
            fail_msg("item %zu: neither glibc_inet_aton nor ipv6", index);
        if (!ok)
            fail_msg("getaddrinfo refused \"%s\"", bare);
        const struct sockaddr *sa = (const struct sockaddr *)&ss;
        if (!same_address(sa, expected_address))
            fail_msg("\"%s\" did not resolve to %s", bare, expected_address);
        resolved++;

        const char *why = sy_addr_refusal(sa, false);
        bool known = false;
        for (size_t k = 0; k < sizeof oracle / sizeof oracle[0]; k++) {
            if (!same_address(sa, oracle[k].address))
                continue;
            known = true;
            if ((why == NULL) != (oracle[k].refusal == NULL) ||
                (why && strcmp(why, oracle[k].refusal) != 0))
                fail_msg("\"%s\" (%s): expected %s, got %s", literal, oracle[k].address,
                         oracle[k].refusal ? oracle[k].refusal : "allowed", why ? why : "allowed");
        }
        if (!known)
            fail_msg("\"%s\" resolves to an address this test has no verdict for", literal);

        /* A mapped address is judged exactly as the IPv4 address it carries. */
        const char *mapped = str_field(item, "ipv4_mapped");
        if (mapped) {
            struct sockaddr_storage v4;
            assert_true(resolve(mapped, &v4));
            const char *v4_why = sy_addr_refusal((const struct sockaddr *)&v4, false);
            assert_non_null(why);
            assert_non_null(v4_why);
            assert_string_equal(why, v4_why);
        }
    }
    printf("ip_literal_forms: %zu resolved and classified, %zu refused by getaddrinfo\n", resolved,
           refused_by_glibc);
    assert_true(resolved > 0);
}

/* Base64 (standard alphabet, padded) into a malloc'd buffer. */
static unsigned char *base64_decode(const char *text, size_t *out_len)
{
    size_t len = strlen(text);
    unsigned char *out = malloc(len / 4 * 3 + 4);
    assert_non_null(out);
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    assert_true(n >= 0);
    size_t size = (size_t)n;
    for (size_t i = len; i > 0 && text[i - 1] == '='; i--)
        size--; /* EVP_DecodeBlock counts padding as zero bytes */
    *out_len = size;
    return out;
}

/* Where SPEC.md decides a case differently from the file. Each is pinned
 * the SPEC's way so a change of either is noticed. */
static const struct {
    const char *request_prefix;
    bool spec_accepts;
    const char *why;
} deviations[] = {
    {"GET https://api.example.com/v1/items HTTP/1.1\r\n", false,
     "SPEC §5.1: every non-origin-form target is a 400, even one naming us"},
    {"GET / HTTP/1.1\r\nHost: api.example.com.\r\n\r\n", true,
     "SPEC §2: a trailing dot in the Host is ignored"},
    {"GET /api/items;jsessionid=ABC123 ", false,
     "issue 9: path parameters are refused unless limits.allow_path_parameters (servlet "
     "containers drop them before they match)"},
};

typedef struct {
    bool accepted;
    char detail[160];
    sy_http_request_t req;
    sy_http_header_t headers[SY_HTTP_MAX_HEADERS];
} outcome_t;

static void run_request(const unsigned char *raw, size_t len, outcome_t *o)
{
    const sy_http_limits_t limits = {8192, 32768, 100, 10485760};
    sy_http_reject_t reject = SY_REJECT_NONE;
    sy_http_status_t st = sy_http_request_parse(NULL, (const char *)raw, len, &limits, o->headers,
                                                SY_HTTP_MAX_HEADERS, &o->req, &reject);
    o->accepted = false;
    if (st == SY_HTTP_ERROR) {
        snprintf(o->detail, sizeof o->detail, "parser: %s", sy_http_reject_name(reject));
        return;
    }
    if (st == SY_HTTP_INCOMPLETE) {
        snprintf(o->detail, sizeof o->detail, "parser: incomplete head (never forwarded)");
        return;
    }
    sy_decision_t d;
    char path[8192];
    size_t path_len = o->req.path.len < sizeof path ? o->req.path.len : sizeof path;
    memcpy(path, o->req.path.ptr, path_len);
    sy_decide(snapshot, o->req.host, path, &path_len, o->req.method, &d);
    if (d.status) {
        snprintf(o->detail, sizeof o->detail, "%d %s", d.status, d.message);
        return;
    }
    o->accepted = true;
    snprintf(o->detail, sizeof o->detail, "forwarded to %s", d.route->path);
}

/* An accepted request's upstream head: Host is ours, X-Forwarded-Host is
 * the client's Host, X-Forwarded-For ends with the real peer. */
static void check_upstream_head(const outcome_t *o, const char *name)
{
    static char head[16384];
    sy_forward_request_t fw = {
        .host_header = SY_SLICE_LIT("backend.svc.internal"),
        .path = o->req.path,
        .client_ip = SY_SLICE_LIT("192.0.2.1"),
        .proto = SY_SLICE_LIT("https"),
        .request_id = SY_SLICE_LIT("r"),
    };
    size_t n = sy_http_write_request_head(head, sizeof head - 1, &o->req, &fw);
    assert_true(n > 0);
    head[n] = '\0';
    char want[300];
    snprintf(want, sizeof want, "\r\nX-Forwarded-Host: %.*s\r\n", (int)o->req.host.len,
             o->req.host.ptr);
    if (!strstr(head, "\r\nHost: backend.svc.internal\r\n") || !strstr(head, want))
        fail_msg("%s: upstream head:\n%s", name, head);
    const char *xff = strstr(head, "\r\nX-Forwarded-For: ");
    assert_non_null(xff);
    const char *eol = strstr(xff + 2, "\r\n");
    assert_true(eol - xff > 11 && memcmp(eol - 9, "192.0.2.1", 9) == 0);
    /* Exactly one of each header switchyard owns. */
    assert_null(strstr(strstr(head, "\r\nX-Forwarded-Host: ") + 2, "\r\nX-Forwarded-Host:"));
    assert_null(strstr(xff + 2, "\r\nX-Forwarded-For:"));
    assert_null(strcasestr(strcasestr(head, "\r\nHost:") + 2, "\r\nHost:"));
}

static void test_request_cases(void **state)
{
    (void)state;
    json_t *cases = section("cases");
    assert_true(json_array_size(cases) > 0);
    size_t index, rejected = 0, accepted = 0, deviated = 0;
    json_t *c;
    outcome_t *o = malloc(sizeof *o);
    assert_non_null(o);
    json_array_foreach(cases, index, c)
    {
        const char *name = str_field(c, "name");
        const char *b64 = str_field(c, "raw_request_b64");
        const char *expected = str_field(c, "expected");
        assert_non_null(b64);
        assert_non_null(expected);
        size_t len;
        unsigned char *raw = base64_decode(b64, &len);
        bool want_accept = strcmp(expected, "accept") == 0;
        for (size_t k = 0; k < sizeof deviations / sizeof deviations[0]; k++) {
            size_t plen = strlen(deviations[k].request_prefix);
            if (len >= plen && memcmp(raw, deviations[k].request_prefix, plen) == 0) {
                assert_true(want_accept != deviations[k].spec_accepts);
                want_accept = deviations[k].spec_accepts;
                printf("deviation: %s -> %s (%s)\n", name, want_accept ? "accept" : "reject",
                       deviations[k].why);
                deviated++;
            }
        }
        run_request(raw, len, o);
        if (o->accepted != want_accept)
            fail_msg("case %zu \"%s\" (%s): expected %s, got %s", index, name,
                     str_field(c, "category"), want_accept ? "accept" : "reject", o->detail);
        if (o->accepted) {
            check_upstream_head(o, name);
            accepted++;
        } else {
            rejected++;
        }
        free(raw);
    }
    free(o);
    printf("request cases: %zu rejected, %zu accepted, %zu per SPEC deviation\n", rejected,
           accepted, deviated);
    assert_int_equal(deviated, sizeof deviations / sizeof deviations[0]);
}

/* WHATWG percent-encodes these in paths; a backend sees them encoded, which
 * decodes to the same bytes, so they are not a disagreement. */
static bool whatwg_path_encodes(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' ||
           c == '}';
}

static void test_whatwg_paths(void **state)
{
    (void)state;
    json_t *items = json_object_get(section("whatwg_host_path_reference"), "items");
    assert_true(json_array_size(items) > 0);
    size_t index, compared = 0, refused = 0;
    json_t *item;
    json_array_foreach(items, index, item)
    {
        const char *input = str_field(item, "input");
        const char *pathname = str_field(item, "pathname");
        if (!input || !pathname || json_is_true(json_object_get(item, "failure")))
            continue;
        const char *p = NULL;
        if (strncasecmp(input, "http://", 7) == 0)
            p = input + 7;
        else if (strncasecmp(input, "https://", 8) == 0)
            p = input + 8;
        if (!p)
            continue;
        /* The origin-form path a client would send: from the end of the
         * authority up to the query or fragment. */
        size_t start = strcspn(p, "/\\?#");
        size_t end = start + strcspn(p + start, "?#");
        if (end == start)
            continue;
        sy_slice_t raw = sy_slice(p + start, end - start);
        if (sy_path_check_request(raw)) {
            refused++;
            continue;
        }
        char encoded[512];
        size_t n = 0;
        for (size_t i = 0; i < raw.len && n + 4 < sizeof encoded; i++) {
            unsigned char ch = (unsigned char)raw.ptr[i];
            n += (size_t)(whatwg_path_encodes(ch) ? snprintf(encoded + n, 4, "%%%02X", ch)
                                                  : snprintf(encoded + n, 2, "%c", ch));
        }
        if (strcmp(encoded, pathname) != 0)
            fail_msg("accepted %.*s, but a WHATWG parser reads it as %s (input %s)", (int)raw.len,
                     raw.ptr, pathname, input);
        compared++;
    }
    printf("whatwg paths: %zu accepted and unchanged by WHATWG, %zu refused\n", compared, refused);
    assert_true(compared + refused > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_literal_forms),
        cmocka_unit_test(test_request_cases),
        cmocka_unit_test(test_whatwg_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
