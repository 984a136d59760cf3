/*
 * test_hotpath.c: what a proxied request runs per request allocates
 * nothing once warm (issue 11, item 6): the serializer (request and
 * response heads, switchyard's own answers), the access-log line, the
 * routing decision for every status, the forward plan, the auth phase on
 * a cached JWT and on IAM/none, and the metrics observers once their
 * series exist.
 *
 * Allocations are counted by replacing malloc and its family in this
 * binary (glibc routes every caller through the replacement, OpenSSL,
 * jansson and libc itself included), which -Wl,--wrap=malloc would not:
 * it sees only calls from our own objects. Under AddressSanitizer the
 * sanitizer owns malloc: there the same calls run and their results are
 * checked, but allocations are not counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <crypt.h>
#include <jansson.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "core/base64.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/serialize.h"
#include "route/decide.h"
#include "route/forward.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNTING 0
#endif
#endif
#ifndef COUNTING
#define COUNTING 1
#endif

/* Plain globals, not thread-locals: malloc may run before TLS is set up,
 * and these tests are single-threaded. */
static volatile int counting;
static volatile size_t allocations;

#if COUNTING
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static void note(void)
{
    if (counting)
        allocations = allocations + 1;
}

void *malloc(size_t size)
{
    note();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    note();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    note();
    return __libc_realloc(p, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    note();
    return __libc_memalign(align, size);
}

void *memalign(size_t align, size_t size)
{
    note();
    return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    note();
    void *p = __libc_memalign(align, size);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void free(void *p)
{
    __libc_free(p);
}
#endif

#define ROUNDS 200

/* Runs `body` once to warm up (first-use caches, lazily created series),
 * then ROUNDS times counting allocations, and fails naming `what` when any
 * happened. Without counting (AddressSanitizer) the rounds still run, so
 * the results are still checked, under the sanitizer. */
#define EXPECT_NO_ALLOCATION(what, body)                                                           \
    do {                                                                                           \
        {                                                                                          \
            body;                                                                                  \
        }                                                                                          \
        allocations = 0;                                                                           \
        counting = 1;                                                                              \
        for (int round_ = 0; round_ < ROUNDS; round_++) {                                          \
            body;                                                                                  \
        }                                                                                          \
        counting = 0;                                                                              \
        if (COUNTING && allocations)                                                               \
            fail_msg("%s: %zu allocations in %d requests", what, (size_t)allocations, ROUNDS);     \
    } while (0)

/* ---- a small configuration ---- */

#define HS32 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
static const char HS_SECRET[] = "0123456789abcdef0123456789abcdef";

/* %s: the Basic user's crypt hash, made at test time. */
static const char POLICY[] =
    "{"
    "\"listen_domains\": [\"api.example.com\"],"
    "\"destinations\": [{\"host\": \"orders.internal.example.com\", \"port\": 8443,"
    "                    \"api_id\": \"abc123\"}],"
    "\"auth_policies\": {\"public\": {\"type\": \"none\"},"
    "  \"users\": {\"type\": \"jwt\", \"issuer\": \"https://issuer\", \"hs_secret_base64\": \"" HS32
    "\", \"algorithms\": [\"HS256\"], \"forward_claims\": {\"sub\": \"X-User\", \"tier\": "
    "\"X-Tier\", \"admin\": \"X-Admin\"}},"
    "  \"aws\": {\"type\": \"iam\"},"
    "  \"partners\": {\"type\": \"basic\", \"users\": {\"alice\": \"%s\"}}},"
    "\"default_auth\": \"public\""
    "}";

static const char ROUTES[] =
    "["
    "{\"path\": \"/orders\", \"target\": \"https://orders.internal.example.com:8443/prod\","
    " \"methods\": [\"GET\", \"POST\"]},"
    "{\"path\": \"/me\", \"target\": \"https://orders.internal.example.com:8443\","
    " \"auth\": \"users\", \"strip_prefix\": true},"
    "{\"path\": \"/aws\", \"target\": \"https://orders.internal.example.com:8443\","
    " \"auth\": \"aws\"},"
    "{\"path\": \"/basic\", \"target\": \"https://orders.internal.example.com:8443\","
    " \"auth\": \"partners\"},"
    "{\"path\": \"/gone\", \"target\": \"https://elsewhere.example.net\"}"
    "]";

static sy_snapshot_t *snap;

static int setup(void **state)
{
    (void)state;
    sy_error_t err;
    sy_error_clear(&err);
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$5$", 0, NULL, 0, setting, sizeof setting))
        fail_msg("crypt_gensalt_rn failed");
    static struct crypt_data data;
    const char *hash = crypt_rn("secret", setting, &data, (int)sizeof data);
    assert_non_null(hash);
    static char policy_text[4096];
    snprintf(policy_text, sizeof policy_text, POLICY, hash);
    sy_policy_t *policy = sy_policy_parse(policy_text, strlen(policy_text), "policy.json", &err);
    if (!policy)
        fail_msg("policy: %s", err.message);
    sy_route_list_t *routes = sy_routes_parse_json(ROUTES, strlen(ROUTES), "routes.json", &err);
    if (!routes)
        fail_msg("routes: %s", err.message);
    snap = sy_snapshot_build(policy, routes, &err);
    if (!snap)
        fail_msg("snapshot: %s", err.message);
    sy_metrics_init(1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sy_auth_thread_cleanup();
    sy_snapshot_unref(snap);
    return 0;
}

/* ---- a request ---- */

typedef struct {
    sy_http_header_t headers[8];
    sy_http_request_t req;
    char path[256];
} request_t;

static void add_header(request_t *r, const char *name, const char *value)
{
    sy_http_header_t *h = &r->headers[r->req.header_count++];
    h->name = sy_slice_cstr(name);
    h->value = sy_slice_cstr(value);
    h->id = sy_header_lookup(h->name);
    if (h->id == SY_HDR_HOST)
        r->req.host = h->value;
}

static void make_request(request_t *r, const char *method, const char *path)
{
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->req.method = sy_slice_cstr(method);
    r->req.path = sy_slice_cstr(r->path);
    r->req.has_query = true;
    r->req.query = SY_SLICE_LIT("id=7&key=secret");
    r->req.minor_version = 1;
    r->req.headers = r->headers;
    r->req.body_kind = SY_BODY_LENGTH;
    r->req.content_length = 1234567;
    add_header(r, "Host", "api.example.com");
    add_header(r, "User-Agent", "test/1.0");
    add_header(r, "X-Forwarded-For", "203.0.113.9");
    add_header(r, "Connection", "keep-alive, X-Drop-Me");
    add_header(r, "X-Drop-Me", "1");
}

/* The decision as the proxy makes it: the path is canonicalised in place,
 * so each call gets a fresh copy (a memcpy, no allocation). */
static void decide(const char *host, const char *path, const char *method, sy_decision_t *d,
                   char *buf, size_t *len)
{
    *len = strlen(path);
    memcpy(buf, path, *len);
    sy_decide(snap, sy_slice_cstr(host), buf, len, sy_slice_cstr(method), d);
}

/* ---- tests ---- */

static void test_decisions_allocate_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *host, *path, *method;
        int status;
    } cases[] = {
        {"api.example.com", "/orders/42", "GET", 0},
        {"API.example.com.", "/orders/42/", "POST", 0},
        {"other.example.com", "/orders", "GET", 421},
        {"api.example.com", "/orders/%2e%2e/x", "GET", 400},
        {"api.example.com", "/nothing", "GET", 404},
        {"api.example.com", "/orders", "DELETE", 405},
        {"api.example.com", "/gone/x", "GET", 502},
        {"", "/orders", "GET", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sy_decision_t d;
        char buf[256];
        size_t len;
        decide(cases[i].host, cases[i].path, cases[i].method, &d, buf, &len);
        if (d.status != cases[i].status)
            fail_msg("%s %s: %d, expected %d", cases[i].host, cases[i].path, d.status,
                     cases[i].status);
        if (d.status) /* the length handed out is the message's */
            assert_int_equal(d.message_len, strlen(d.message));
        if (d.status == 405)
            assert_int_equal(d.allow_len, strlen(d.allow));
        if (d.route) /* measured once, at snapshot build, for the access log */
            assert_int_equal(d.route->path_len, strlen(d.route->path));
        EXPECT_NO_ALLOCATION(cases[i].path,
                             decide(cases[i].host, cases[i].path, cases[i].method, &d, buf, &len));
    }
}

static void test_forward_plan_and_heads_allocate_nothing(void **state)
{
    (void)state;
    request_t r;
    make_request(&r, "POST", "/orders/42");
    static char out[8192], url[2048];
    sy_decision_t d;
    char buf[256];
    size_t len;
    sy_forward_plan_t plan;
    size_t head_len = 0;
    EXPECT_NO_ALLOCATION("forward plan and request head", {
        decide("api.example.com", "/orders/42", "POST", &d, buf, &len);
        assert_int_equal(d.status, 0);
        assert_true(sy_forward_plan(snap, d.route, d.matched_len, sy_slice(buf, len), true,
                                    r.req.query, NULL, &plan));
        sy_forward_request_t fw = {0};
        sy_forward_plan_request(&plan, &fw);
        fw.client_ip = SY_SLICE_LIT("198.51.100.7");
        fw.proto = SY_SLICE_LIT("https");
        fw.request_id = SY_SLICE_LIT("sy-1-2a");
        head_len = sy_http_write_request_head(out, sizeof out, &r.req, &fw);
        sy_forward_url(&plan, url, sizeof url, true);
    });
    assert_true(head_len > 0);
    out[head_len] = '\0';
    assert_non_null(strstr(out, "POST /prod/orders/42?id=7&key=secret HTTP/1.1\r\n"));
    assert_non_null(strstr(out, "Content-Length: 1234567\r\n"));
    assert_non_null(strstr(out, "x-apigw-api-id: abc123\r\n"));
    assert_null(strstr(out, "X-Drop-Me"));
    assert_string_equal(
        url, "https://orders.internal.example.com:8443/prod/orders/42?id=REDACTED&key=REDACTED");
}

static void test_response_heads_and_answers_allocate_nothing(void **state)
{
    (void)state;
    sy_http_header_t headers[3] = {
        {SY_SLICE_LIT("Content-Type"), SY_SLICE_LIT("application/json"), SY_HDR_OTHER},
        {SY_SLICE_LIT("Content-Length"), SY_SLICE_LIT("17"), SY_HDR_CONTENT_LENGTH},
        {SY_SLICE_LIT("ETag"), SY_SLICE_LIT("\"x\""), SY_HDR_OTHER},
    };
    for (size_t i = 0; i < 3; i++)
        headers[i].id = sy_header_lookup(headers[i].name);
    sy_http_response_t resp = {0};
    resp.status = 200;
    resp.headers = headers;
    resp.header_count = 3;
    sy_forward_response_t fw = {SY_FRAME_LENGTH, 17, true, 0, SY_SLICE_LIT("sy-1-2a")};
    static char out[4096];
    size_t n = 0;
    EXPECT_NO_ALLOCATION("response head",
                         n = sy_http_write_response_head(out, sizeof out, &resp, &fw));
    out[n] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Connection: keep-alive\r\n"));

    sy_header_pair_t extra[2] = {
        {SY_SLICE_LIT("WWW-Authenticate"), SY_SLICE_LIT("Bearer error=\"invalid_token\"")},
        {SY_SLICE_LIT("X-Request-Id"), SY_SLICE_LIT("sy-1-2a")},
    };
    EXPECT_NO_ALLOCATION("answer", n = sy_http_write_answer(out, sizeof out, 401,
                                                            SY_SLICE_LIT("token expired"), false,
                                                            extra, 2, false));
    /* Byte for byte what the string entry point writes. */
    static char legacy[4096];
    size_t m = sy_http_write_error(legacy, sizeof legacy, 401, "token expired", false,
                                   "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
                                   "X-Request-Id: sy-1-2a\r\n",
                                   false);
    assert_int_equal(n, m);
    assert_memory_equal(out, legacy, n);
    EXPECT_NO_ALLOCATION("error answer",
                         n = sy_http_write_error(out, sizeof out, 404, NULL, true, NULL, false));
    out[n] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(out, "{\"message\":\"Not Found\"}"));
}

static void test_access_log_line_allocates_nothing(void **state)
{
    (void)state;
    assert_true(sy_access_log_open("/dev/null"));
    sy_access_entry_t e = {0};
    e.request_id = "sy-1-2a";
    e.client_ip = "198.51.100.7";
    e.method = "GET";
    e.host = "api.example.com";
    e.path = "/orders/42?id=7&key=";
    e.status = 200;
    e.route = "/orders";
    e.route_len = 7;
    e.upstream = "https://orders.internal.example.com:8443/prod/orders/42";
    e.upstream_status = 200;
    e.bytes_in = 512;
    e.bytes_out = 1 << 20;
    e.duration_ms = 12.3456;
    e.upstream_ms = 11.0005;
    e.auth = "users";
    e.subject = "user-42";
    e.user_agent = "test/1.0";
    e.user_agent_len = 8;
    e.protocol = "HTTP/1.1";
    EXPECT_NO_ALLOCATION("access log line", sy_access_log_write(&e));
    sy_access_log_open("-");
}

static char *mint_hs256(const char *payload_json)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *tok = malloc(4096);
    size_t n = sy_base64_encode((const unsigned char *)header, strlen(header), true, false, tok);
    tok[n++] = '.';
    n += sy_base64_encode((const unsigned char *)payload_json, strlen(payload_json), true, false,
                          tok + n);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), HS_SECRET, (int)strlen(HS_SECRET), (unsigned char *)tok, n, mac, &mac_len);
    tok[n++] = '.';
    n += sy_base64_encode(mac, mac_len, true, false, tok + n);
    tok[n] = '\0';
    return tok;
}

static const sy_auth_policy_t *route_auth(const char *path)
{
    sy_decision_t d;
    char buf[256];
    size_t len;
    decide("api.example.com", path, "GET", &d, buf, &len);
    assert_int_equal(d.status, 0);
    assert_non_null(d.route->auth);
    return d.route->auth;
}

static void test_auth_on_a_cached_token_allocates_nothing(void **state)
{
    (void)state;
    const sy_auth_policy_t *users = route_auth("/me");
    assert_int_equal(users->name_len, strlen(users->name)); /* the access log's auth.policy */
    char *tok = mint_hs256("{\"iss\":\"https://issuer\",\"exp\":4000000000,\"sub\":\"user-42\","
                           "\"tier\":-9223372036854775807,\"admin\":false}");
    static char authz[4200];
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    request_t r;
    make_request(&r, "GET", "/me");
    add_header(&r, "Authorization", authz);
    static sy_auth_result_t out;
    /* The first check verifies the signature and fills the token cache
     * (jansson's claims are allocated then); every later one is a hit. */
    EXPECT_NO_ALLOCATION("JWT on a cached token", sy_auth_check_at(users, &r.req, 1000, &out));
    assert_int_equal(out.status, 0);
    assert_string_equal(out.subject, "user-42");
    assert_int_equal(out.add_count, 3);
    assert_true(sy_slice_eq(out.add[1].value, SY_SLICE_LIT("-9223372036854775807")));
    assert_true(sy_slice_eq(out.add[2].value, SY_SLICE_LIT("false")));

    /* A refused token: the challenge and message are handed out with
     * their lengths, nothing formatted. */
    EXPECT_NO_ALLOCATION("JWT expired", sy_auth_check_at(users, &r.req, 4000100000, &out));
    assert_int_equal(out.status, 401);
    assert_int_equal(out.www_authenticate_len, strlen(out.www_authenticate));
    assert_int_equal(out.message_len, strlen(out.message));
    free(tok);

    const sy_auth_policy_t *aws = route_auth("/aws");
    make_request(&r, "GET", "/aws");
    EXPECT_NO_ALLOCATION("IAM without a signature", sy_auth_check_at(aws, &r.req, 1000, &out));
    assert_int_equal(out.status, 401);
    assert_string_equal(out.www_authenticate, "AWS4-HMAC-SHA256");
}

static void test_basic_on_a_cached_password_allocates_nothing(void **state)
{
    (void)state;
    const sy_auth_policy_t *partners = route_auth("/basic");
    request_t r;
    make_request(&r, "GET", "/basic");
    add_header(&r, "Authorization", "Basic YWxpY2U6c2VjcmV0"); /* alice:secret */
    static sy_auth_result_t out;
    /* The first check hashes (inline: no loop) and fills the verified
     * cache; later ones are hits, keyed by an HMAC per request. */
    EXPECT_NO_ALLOCATION("Basic on a cached password",
                         sy_auth_check_at(partners, &r.req, 1000, &out));
    assert_int_equal(out.status, 0);
    assert_string_equal(out.subject, "alice");

    make_request(&r, "GET", "/basic");
    EXPECT_NO_ALLOCATION("Basic without credentials",
                         sy_auth_check_at(partners, &r.req, 1000, &out));
    assert_int_equal(out.status, 401);
    assert_string_equal(out.www_authenticate, "Basic realm=\"partners\"");
    assert_int_equal(out.www_authenticate_len, strlen(out.www_authenticate));
}

static void test_metrics_observers_allocate_nothing_once_a_series_exists(void **state)
{
    (void)state;
    sy_route_stats_t *route = sy_metrics_route("/orders");
    assert_non_null(route);
    sy_metrics_destination_t *orders = sy_metrics_destination("orders.internal.example.com");
    assert_non_null(orders);
    EXPECT_NO_ALLOCATION("metrics", {
        sy_metrics_request(0, route, 200, 0.0123);
        sy_metrics_request(0, NULL, 404, 0.0001);
        sy_metrics_upstream_duration(0, "orders.internal.example.com", 0.01);
        sy_metrics_destination_error(0, "orders.internal.example.com", SY_UPSTREAM_ERR_CONNECT);
        sy_metrics_basic_auth(0, SY_BASIC_AUTH_VERIFIED_CACHED);
        sy_metrics_destination_observe(0, orders, 0.01);
        sy_metrics_destination_count(0, orders, SY_UPSTREAM_ERR_TIMEOUT);
    });
    sy_metrics_route_release(route);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions_allocate_nothing),
        cmocka_unit_test(test_forward_plan_and_heads_allocate_nothing),
        cmocka_unit_test(test_response_heads_and_answers_allocate_nothing),
        cmocka_unit_test(test_access_log_line_allocates_nothing),
        cmocka_unit_test(test_auth_on_a_cached_token_allocates_nothing),
        cmocka_unit_test(test_basic_on_a_cached_password_allocates_nothing),
        cmocka_unit_test(test_metrics_observers_allocate_nothing_once_a_series_exists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
