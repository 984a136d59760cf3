/*
 * test_forward.c: the forward plan over real snapshots: connect target,
 * SNI and verify name, pool key (address guard and trust store contents
 * included), upstream Host, target and URL, headers added and dropped; and
 * the trust stores built with the snapshot (shared while unchanged).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/tls.h"
#include "route/decide.h"
#include "route/forward.h"

static const char POLICY[] =
    "{"
    "\"listen_domains\": [\"api.example.com\"],"
    "\"destinations\": ["
    "  {\"host\": \"orders.internal.example.com\", \"port\": 443},"
    "  {\"host\": \"gw.internal.example.com\", \"connect_to\": \"vpce-1.example.com:8443\","
    "   \"tls_verify_name\": \"*.execute-api.eu-west-1.amazonaws.com\","
    "   \"host_header\": \"abc123.execute-api.eu-west-1.amazonaws.com\", \"api_id\": \"abc123\"},"
    "  {\"host\": \"plain.internal\", \"port\": 8080, \"scheme\": \"http\"},"
    "  {\"host\": \"10.0.0.7\", \"port\": 443}"
    "],"
    "\"auth_policies\": {\"public\": {\"type\": \"none\"}},"
    "\"default_auth\": \"public\","
    "\"allow_loopback_destinations\": %s"
    "}";

static const char ROUTES[] =
    "["
    "{\"path\": \"/orders\", \"target\": \"https://orders.internal.example.com/prod\"},"
    "{\"path\": \"/more-orders\", \"target\": \"https://orders.internal.example.com\"},"
    "{\"path\": \"/gw\", \"target\": \"https://gw.internal.example.com/stage\","
    " \"strip_prefix\": true},"
    "{\"path\": \"/plain\", \"target\": \"http://plain.internal:8080\"},"
    "{\"path\": \"/ip\", \"target\": \"https://10.0.0.7\"}"
    "]";

static sy_snapshot_t *build(const char *policy_text, const char *routes_text)
{
    sy_error_t err;
    sy_error_clear(&err);
    sy_policy_t *policy = sy_policy_parse(policy_text, strlen(policy_text), "policy.json", &err);
    if (!policy)
        fail_msg("policy: %s", err.message);
    sy_route_list_t *routes =
        sy_routes_parse_json(routes_text, strlen(routes_text), "routes.json", &err);
    if (!routes)
        fail_msg("routes: %s", err.message);
    sy_snapshot_t *snap = sy_snapshot_build(policy, routes, &err);
    if (!snap)
        fail_msg("snapshot: %s", err.message);
    return snap;
}

static sy_snapshot_t *build_loopback(bool allow)
{
    char text[2048];
    snprintf(text, sizeof text, POLICY, allow ? "true" : "false");
    return build(text, ROUTES);
}

/* Decides host+path like the proxy, then plans; path_buf keeps the path. */
static char path_buf[1024];

static void plan_for(const sy_snapshot_t *snap, const char *target, const sy_auth_result_t *auth,
                     sy_forward_plan_t *plan)
{
    const char *q = strchr(target, '?');
    size_t len = q ? (size_t)(q - target) : strlen(target);
    snprintf(path_buf, sizeof path_buf, "%s", target);
    sy_decision_t d;
    sy_decide(snap, SY_SLICE_LIT("api.example.com"), path_buf, &len, SY_SLICE_LIT("GET"), &d);
    if (d.status != 0)
        fail_msg("%s: %d %s", target, d.status, d.message);
    sy_slice_t query = q ? sy_slice_cstr(path_buf + (q - target) + 1) : sy_slice(NULL, 0);
    assert_true(sy_forward_plan(snap, d.route, d.matched_len, sy_slice(path_buf, len), q != NULL,
                                query, auth, plan));
}

static void assert_slice(sy_slice_t s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.ptr, want);
}

static const char *url(const sy_forward_plan_t *plan, bool redact)
{
    static char out[512];
    sy_forward_url(plan, out, sizeof out, redact);
    return out;
}

static void test_https_target_with_base(void **state)
{
    sy_snapshot_t *snap = build_loopback(false);
    sy_forward_plan_t p;
    plan_for(snap, "/orders/42?api_key=secret&page=2", NULL, &p);
    const sy_forward_target_t *c = p.connect;
    assert_string_equal(c->host, "orders.internal.example.com");
    assert_int_equal(c->port, 443);
    assert_true(c->https);
    assert_string_equal(c->sni, "orders.internal.example.com");
    assert_string_equal(c->verify_name, "orders.internal.example.com");
    assert_string_equal(c->verify_check, "orders.internal.example.com");
    assert_non_null(c->trust);
    assert_null(c->trust->ca_file);
    assert_slice(p.host_header, "orders.internal.example.com");
    assert_slice(p.base, "/prod");
    assert_slice(p.path, "/orders/42");
    assert_string_equal(url(&p, false),
                        "https://orders.internal.example.com/prod/orders/42?api_key=secret&page=2");
    assert_string_equal(
        url(&p, true),
        "https://orders.internal.example.com/prod/orders/42?api_key=REDACTED&page=REDACTED");
    /* x-apigw-api-id from a client never passes. */
    assert_int_equal(p.add_count, 0);
    assert_int_equal(p.drop_count, 1);
    assert_slice(p.drop[0], "x-apigw-api-id");
    sy_snapshot_unref(snap);
}

static void test_connect_to_wildcard_verify_host_header_api_id(void **state)
{
    sy_snapshot_t *snap = build_loopback(false);
    sy_forward_plan_t p;
    plan_for(snap, "/gw", NULL, &p);
    const sy_forward_target_t *c = p.connect;
    assert_string_equal(c->host, "vpce-1.example.com");
    assert_int_equal(c->port, 8443);
    /* host_header is what the gateway serves: it is the SNI too. */
    assert_string_equal(c->sni, "abc123.execute-api.eu-west-1.amazonaws.com");
    assert_string_equal(c->verify_name, "*.execute-api.eu-west-1.amazonaws.com");
    assert_string_equal(c->verify_check, "sy--wildcard-probe.execute-api.eu-west-1.amazonaws.com");
    assert_slice(p.host_header, "abc123.execute-api.eu-west-1.amazonaws.com");
    /* strip_prefix leaves nothing: "/" after the base. */
    assert_slice(p.base, "/stage");
    assert_slice(p.path, "/");
    assert_string_equal(url(&p, true), "https://gw.internal.example.com/stage/");
    assert_int_equal(p.add_count, 1);
    assert_slice(p.add[0].name, "x-apigw-api-id");
    assert_slice(p.add[0].value, "abc123");
    sy_snapshot_unref(snap);
}

static void test_plain_and_ip_targets(void **state)
{
    sy_snapshot_t *snap = build_loopback(false);
    sy_forward_plan_t p;
    plan_for(snap, "/plain/x", NULL, &p);
    assert_false(p.connect->https);
    assert_null(p.connect->trust);
    assert_null(p.connect->sni);
    assert_slice(p.host_header, "plain.internal:8080");
    assert_string_equal(url(&p, true), "http://plain.internal:8080/plain/x");
    /* SNI carries names only. */
    plan_for(snap, "/ip", NULL, &p);
    assert_null(p.connect->sni);
    assert_string_equal(p.connect->verify_name, "10.0.0.7");
    sy_snapshot_unref(snap);
}

static void test_auth_headers_are_added_and_dropped(void **state)
{
    sy_snapshot_t *snap = build_loopback(false);
    static const sy_slice_t drops[] = {SY_SLICE_LIT("x-user"), SY_SLICE_LIT("x-tenant")};
    sy_auth_result_t auth;
    memset(&auth, 0, sizeof auth);
    auth.drop = drops;
    auth.drop_count = 2;
    auth.add[0] = (sy_header_pair_t){SY_SLICE_LIT("x-user"), SY_SLICE_LIT("alice")};
    auth.add_count = 1;
    sy_forward_plan_t p;
    plan_for(snap, "/gw/a", &auth, &p);
    assert_int_equal(p.add_count, 2);
    assert_slice(p.add[1].name, "x-user");
    assert_int_equal(p.drop_count, 3);
    assert_slice(p.drop[2], "x-tenant");
    sy_forward_request_t fw = {0};
    sy_forward_plan_request(&p, &fw);
    assert_ptr_equal(fw.add, p.add);
    assert_int_equal(fw.drop_count, 3);
    assert_slice(fw.path, "/a");
    sy_snapshot_unref(snap);
}

/* A header any jwt policy sets from its token is dropped from every
 * route's request, whatever the route's own auth: the public route of a
 * backend that also serves a JWT route must not pass "X-User-Sub: admin". */
static void test_claim_headers_dropped_on_every_route(void **state)
{
    static const char policy[] =
        "{\"listen_domains\": [\"api.example.com\"],"
        "\"destinations\": [{\"host\": \"orders.internal.example.com\", \"port\": 443}],"
        "\"auth_policies\": {\"public\": {\"type\": \"none\"},"
        "  \"a\": {\"type\": \"jwt\", \"issuer\": \"i\", \"algorithms\": [\"HS256\"],"
        "   \"hs_secret_base64\": \"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\","
        "   \"forward_claims\": {\"sub\": \"X-User-Sub\", \"tid\": \"X-Tenant\"}},"
        "  \"b\": {\"type\": \"jwt\", \"issuer\": \"j\", \"algorithms\": [\"HS256\"],"
        "   \"hs_secret_base64\": \"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\","
        "   \"forward_claims\": {\"sub\": \"x_user_sub\", \"role\": \"X-Role\"}}},"
        "\"default_auth\": \"public\"}";
    sy_snapshot_t *snap = build(
        policy, "[{\"path\": \"/orders\", \"target\": \"https://orders.internal.example.com\"}]");
    sy_forward_plan_t p;
    plan_for(snap, "/orders/1", NULL, &p);
    /* x-apigw-api-id, then each distinct name once (x_user_sub is X-User-Sub). */
    assert_int_equal(p.drop_count, 4);
    assert_slice(p.drop[1], "X-User-Sub");
    assert_slice(p.drop[2], "X-Tenant");
    assert_slice(p.drop[3], "X-Role");
    (void)state;
    sy_snapshot_unref(snap);
}

static void test_pool_key(void **state)
{
    sy_snapshot_t *strict = build_loopback(false), *open = build_loopback(true);
    sy_forward_plan_t a, b, c;
    plan_for(strict, "/orders", NULL, &a);
    plan_for(strict, "/more-orders", NULL, &b);
    /* Two routes to one destination share its target, computed once, and
     * so their connections. */
    assert_ptr_equal(a.connect, b.connect);
    assert_int_equal(strict->target_count, 4);
    assert_int_equal(a.connect->key_len, b.connect->key_len);
    assert_memory_equal(a.connect->key, b.connect->key, a.connect->key_len);
    assert_true(a.connect->key_hash == b.connect->key_hash);
    /* The address guard is part of what makes connections interchangeable:
     * a connection opened while loopback was allowed is not one for a
     * policy that refuses it. */
    plan_for(open, "/orders", NULL, &c);
    assert_true(c.connect->allow_loopback);
    assert_false(a.connect->allow_loopback);
    assert_false(a.connect->key_len == c.connect->key_len &&
                 memcmp(a.connect->key, c.connect->key, a.connect->key_len) == 0);
    /* Different destinations never share. */
    plan_for(strict, "/gw", NULL, &b);
    assert_false(a.connect->key_hash == b.connect->key_hash);
    /* Each snapshot knows its keys: a worker closes idle connections whose
     * key left the configuration. */
    assert_true(sy_snapshot_has_key(strict, a.connect->key_hash));
    assert_true(sy_snapshot_has_key(strict, b.connect->key_hash));
    assert_false(sy_snapshot_has_key(strict, c.connect->key_hash));
    assert_true(sy_snapshot_has_key(open, c.connect->key_hash));
    assert_int_equal(strict->key_hash_count, 4); /* orders (twice), gw, plain, ip */
    sy_snapshot_unref(strict);
    sy_snapshot_unref(open);
}

static void test_not_active_route_has_no_plan(void **state)
{
    sy_snapshot_t *snap = build_loopback(false);
    sy_route_t stranger = {0};
    sy_forward_plan_t p;
    assert_false(
        sy_forward_plan(snap, &stranger, 0, SY_SLICE_LIT("/"), false, sy_slice(NULL, 0), NULL, &p));
    sy_snapshot_unref(snap);
}

/* ---- trust stores --------------------------------------------------------- */

static char ca_path[64];

static void write_file(const char *path, const char *src_path, const char *extra)
{
    FILE *in = fopen(src_path, "rb"), *out = fopen(path, "wb");
    assert_non_null(out);
    if (in) {
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(in);
    }
    fputs(extra, out);
    fclose(out);
}

static sy_snapshot_t *build_with_ca(void)
{
    char policy[1024];
    snprintf(policy, sizeof policy,
             "{\"listen_domains\": [\"api.example.com\"],"
             "\"destinations\": [{\"host\": \"ca.internal\", \"ca_file\": \"%s\"},"
             "                   {\"host\": \"sys.internal\"}],"
             "\"auth_policies\": {\"public\": {\"type\": \"none\"}},"
             "\"default_auth\": \"public\"}",
             ca_path);
    return build(policy, "[{\"path\": \"/ca\", \"target\": \"https://ca.internal\"},"
                         " {\"path\": \"/sys\", \"target\": \"https://sys.internal\"}]");
}

static void test_trust_stores_built_with_the_snapshot(void **state)
{
    snprintf(ca_path, sizeof ca_path, "/tmp/sy-test-forward-%d.pem", (int)getpid());
    /* A real bundle: the system's, copied so the test can change it. */
    write_file(ca_path, "/etc/ssl/certs/ca-certificates.crt", "");
    sy_snapshot_t *first = build_with_ca();
    assert_int_equal(first->trust_count, 2);
    sy_forward_plan_t p;
    plan_for(first, "/ca", NULL, &p);
    const sy_tls_trust_t *ca = p.connect->trust;
    assert_string_equal(ca->ca_file, ca_path);
    if (!ca->ctx) /* a system without a bundle: nothing more to check */
        skip();
    assert_null(ca->error);
    assert_non_null(strstr(p.connect->key, ca->id));
    char first_key[1024];
    snprintf(first_key, sizeof first_key, "%s", p.connect->key);

    /* Unchanged contents: the next snapshot shares the context, and the
     * key (so pooled connections stay usable across the reload). */
    sy_snapshot_publish(first);
    sy_snapshot_t *second = build_with_ca();
    plan_for(second, "/ca", NULL, &p);
    assert_ptr_equal(p.connect->trust->ctx, ca->ctx);
    assert_string_equal(p.connect->key, first_key);

    /* Changed contents: a new store, a new key. */
    write_file(ca_path, "/etc/ssl/certs/ca-certificates.crt", "\n# changed\n");
    sy_snapshot_t *third = build_with_ca();
    plan_for(third, "/ca", NULL, &p);
    assert_ptr_not_equal(p.connect->trust->ctx, ca->ctx);
    assert_string_not_equal(p.connect->key, first_key);

    /* A file that holds no certificate: no context, and a reason. */
    write_file(ca_path, "/nonexistent", "not a certificate\n");
    sy_snapshot_t *fourth = build_with_ca();
    plan_for(fourth, "/ca", NULL, &p);
    assert_null(p.connect->trust->ctx);
    assert_non_null(strstr(p.connect->trust->error, "no certificate"));

    sy_snapshot_unref(second);
    sy_snapshot_unref(third);
    sy_snapshot_unref(fourth);
    sy_snapshot_reset_for_tests();
    unlink(ca_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_target_with_base),
        cmocka_unit_test(test_connect_to_wildcard_verify_host_header_api_id),
        cmocka_unit_test(test_plain_and_ip_targets),
        cmocka_unit_test(test_auth_headers_are_added_and_dropped),
        cmocka_unit_test(test_claim_headers_dropped_on_every_route),
        cmocka_unit_test(test_pool_key),
        cmocka_unit_test(test_not_active_route_has_no_plan),
        cmocka_unit_test(test_trust_stores_built_with_the_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
