/*
 * test_decide.c: the routing decision (host → path → route → method) over a
 * real snapshot built from policy and route documents, each status and the
 * order in which they are decided; and the upstream path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/decide.h"

static const char POLICY[] = "{"
                             "\"listen_domains\": [\"api.example.com\", \"*.apps.example.com\"],"
                             "\"destinations\": ["
                             "  {\"host\": \"orders.internal.example.com\", \"port\": 443},"
                             "  {\"host\": \"*.svc.internal\"}"
                             "],"
                             "\"auth_policies\": {\"public\": {\"type\": \"none\"}},"
                             "\"default_auth\": \"public\""
                             "}";

static const char ROUTES[] =
    "["
    "{\"path\": \"/orders\", \"target\": \"https://orders.internal.example.com/prod\","
    " \"methods\": [\"GET\", \"POST\"]},"
    "{\"path\": \"/orders/admin\", \"target\": \"https://evil.example.net\"},"
    "{\"path\": \"/billing\", \"target\": \"https://billing.svc.internal/v1\","
    " \"strip_prefix\": true, \"domain\": \"api.example.com\"},"
    "{\"path\": \"/only-x\", \"target\": \"https://x.svc.internal\","
    " \"domain\": \"x.apps.example.com\"},"
    "{\"path\": \"/off\", \"target\": \"https://off.svc.internal\", \"enabled\": false},"
    "{\"path\": \"/plain\", \"target\": \"https://plain.svc.internal\"}"
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

static int setup(void **state)
{
    *state = build(POLICY, ROUTES);
    return 0;
}

static int teardown(void **state)
{
    sy_snapshot_unref(*state);
    return 0;
}

/* The decision is filled in place: its message may point into its own
 * message_buf, so a sy_decision_t must not be copied. */
#define decide(snap, host, path, method) decide_into(&(sy_decision_t){0}, snap, host, path, method)

/* The path the last decide() decided on (canonical form), NUL-terminated. */
static char decided_path[8192];

static sy_decision_t *decide_into(sy_decision_t *d, const sy_snapshot_t *snap, const char *host,
                                  const char *path, const char *method)
{
    memset(d, 0x5A, sizeof *d); /* nothing may be left unset */
    /* sy_decide canonicalises the path in place: hand it a copy, and keep
     * what it decided on for decided_path. */
    size_t len = strlen(path);
    assert_true(len < sizeof decided_path);
    memcpy(decided_path, path, len);
    sy_decide(snap, sy_slice_cstr(host), decided_path, &len, sy_slice_cstr(method), d);
    decided_path[len] = '\0';
    return d;
}

static void expect_status(const sy_snapshot_t *snap, const char *host, const char *path,
                          const char *method, int status, const char *message)
{
    sy_decision_t *d = decide(snap, host, path, method);
    if (d->status != status)
        fail_msg("%s %s %s: expected %d, got %d (%s)", method, host, path, status, d->status,
                 d->status ? d->message : "forward");
    if (status == 0) {
        assert_null(d->message);
        assert_non_null(d->route);
        return;
    }
    assert_non_null(d->message);
    if (message && strcmp(d->message, message) != 0)
        fail_msg("%s %s %s: expected \"%s\", got \"%s\"", method, host, path, message, d->message);
}

static void test_forwards_to_route(void **state)
{
    const sy_snapshot_t *snap = *state;
    sy_decision_t *d = decide(snap, "api.example.com", "/orders/1", "GET");
    assert_int_equal(d->status, 0);
    assert_string_equal(d->route->path, "/orders");
    assert_int_equal(d->matched_len, 7);
    assert_null(d->allow);

    d = decide(snap, "API.Example.COM:8443", "/orders/", "POST");
    assert_int_equal(d->status, 0);
    assert_string_equal(d->route->path, "/orders");
    d = decide(snap, "api.example.com.", "/orders", "GET");
    assert_int_equal(d->status, 0);
    d = decide(snap, "x.apps.example.com", "/only-x/a", "PUT");
    assert_int_equal(d->status, 0);
    assert_string_equal(d->route->path, "/only-x");
    d = decide(snap, "api.example.com", "/plain/a", "ANYTHING");
    assert_int_equal(d->status, 0);
    assert_string_equal(d->route->path, "/plain");
}

static void test_bad_host_is_400(void **state)
{
    const sy_snapshot_t *snap = *state;
    static const char *const hosts[] = {"",
                                        "api.example.com:evil",
                                        "api.example.com:99999",
                                        "api example.com",
                                        "api.example.com/x",
                                        "api.example.com@169.254.169.254"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        expect_status(snap, hosts[i], "/orders", "GET", 400, "invalid Host header");
}

static void test_foreign_host_is_421(void **state)
{
    const sy_snapshot_t *snap = *state;
    static const char *const hosts[] = {
        "evil.example.com", "example.com",          "169.254.169.254",          "127.0.0.1:8080",
        "apps.example.com", "a.b.apps.example.com", "api.example.com.evil.net", "localhost"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        expect_status(snap, hosts[i], "/orders", "GET", 421,
                      "misdirected request: host is not served here");
}

static void test_bad_path_is_400(void **state)
{
    const sy_snapshot_t *snap = *state;
    expect_status(snap, "api.example.com", "/orders/../admin", "GET", 400,
                  "invalid path: dot segment");
    expect_status(snap, "api.example.com", "/orders//1", "GET", 400, "invalid path: empty segment");
    expect_status(snap, "api.example.com", "/orders%2f1", "GET", 400,
                  "invalid path: encoded slash");
    expect_status(snap, "api.example.com", "/orders/%c0%ae", "GET", 400,
                  "invalid path: invalid UTF-8");
    expect_status(snap, "api.example.com", "orders", "GET", 400, NULL);
}

static void test_no_route_is_404(void **state)
{
    const sy_snapshot_t *snap = *state;
    expect_status(snap, "api.example.com", "/", "GET", 404, "no route for this path");
    expect_status(snap, "api.example.com", "/nothing", "GET", 404, "no route for this path");
    expect_status(snap, "api.example.com", "/ordersx", "GET", 404, NULL);
    expect_status(snap, "api.example.com", "/Orders", "GET", 404, NULL);
    /* Domain-scoped route on another domain, disabled route. */
    expect_status(snap, "api.example.com", "/only-x", "GET", 404, NULL);
    expect_status(snap, "y.apps.example.com", "/billing", "GET", 404, NULL);
    expect_status(snap, "api.example.com", "/off", "GET", 404, NULL);
}

static void test_rejected_route_is_502(void **state)
{
    const sy_snapshot_t *snap = *state;
    for (int i = 0; i < 3; i++) {
        const char *path =
            (const char *[]){"/orders/admin", "/orders/admin/", "/orders/admin/x"}[i];
        sy_decision_t *d = decide(snap, "api.example.com", path, "GET");
        assert_int_equal(d->status, 502);
        assert_non_null(d->route);
        assert_string_equal(d->route->path, "/orders/admin");
        assert_non_null(d->route->rejected_reason);
        char expected[320];
        snprintf(expected, sizeof expected, "route rejected: %s", d->route->rejected_reason);
        assert_string_equal(d->message, expected);
        /* The message lives in the decision itself. */
        assert_ptr_equal(d->message, d->message_buf);
    }
}

static void test_method_not_allowed_is_405(void **state)
{
    const sy_snapshot_t *snap = *state;
    static const char *const methods[] = {"DELETE", "PUT", "get", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        sy_decision_t *d = decide(snap, "api.example.com", "/orders/1", methods[i]);
        if (d->status != 405)
            fail_msg("%s: expected 405, got %d", methods[i], d->status);
        assert_string_equal(d->message, "method not allowed");
        assert_string_equal(d->allow, "GET, POST");
        assert_string_equal(d->route->path, "/orders");
    }
}

/* Host before path before route before method. */
static void test_phase_order(void **state)
{
    const sy_snapshot_t *snap = *state;
    expect_status(snap, "api.example.com:x", "/orders/../a", "DELETE", 400, "invalid Host header");
    expect_status(snap, "evil.com", "/orders/../a", "DELETE", 421, NULL);
    expect_status(snap, "api.example.com", "/orders/admin/../x", "DELETE", 400,
                  "invalid path: dot segment");
    sy_decision_t *d = decide(snap, "api.example.com", "/orders/admin", "DELETE");
    assert_int_equal(d->status, 502);
    expect_status(NULL, "api.example.com", "/orders", "GET", 503, NULL);
}

static void test_upstream_path(void **state)
{
    const sy_snapshot_t *snap = *state;
    char out[128];

    sy_decision_t *d = decide(snap, "api.example.com", "/orders/1", "GET");
    assert_int_equal(d->status, 0);
    size_t n = sy_decide_upstream_path(out, sizeof out, d->route, d->matched_len,
                                       SY_SLICE_LIT("/orders/1"), true, SY_SLICE_LIT("a=%2F&b"));
    assert_string_equal(out, "/prod/orders/1?a=%2F&b");
    assert_int_equal(n, strlen(out));

    d = decide(snap, "api.example.com", "/billing/invoices/7", "GET");
    assert_int_equal(d->status, 0);
    assert_true(d->route->strip_prefix);
    n = sy_decide_upstream_path(out, sizeof out, d->route, d->matched_len,
                                SY_SLICE_LIT("/billing/invoices/7"), false, SY_SLICE_LIT(""));
    assert_string_equal(out, "/v1/invoices/7");
    n = sy_decide_upstream_path(out, sizeof out, d->route, d->matched_len, SY_SLICE_LIT("/billing"),
                                true, SY_SLICE_LIT(""));
    assert_string_equal(out, "/v1/?");
    n = sy_decide_upstream_path(out, sizeof out, d->route, d->matched_len,
                                SY_SLICE_LIT("/billing/"), false, SY_SLICE_LIT(""));
    assert_string_equal(out, "/v1/");
    sy_slice_t rest = sy_decide_forward_path(d->route, d->matched_len, SY_SLICE_LIT("/billing/x"));
    assert_int_equal(rest.len, 2);
    assert_memory_equal(rest.ptr, "/x", 2);

    d = decide(snap, "api.example.com", "/plain", "GET");
    n = sy_decide_upstream_path(out, sizeof out, d->route, d->matched_len, SY_SLICE_LIT("/plain"),
                                false, SY_SLICE_LIT(""));
    assert_string_equal(out, "/plain");

    /* Exactly fitting (with the NUL), one byte short. */
    d = decide(snap, "api.example.com", "/orders/1", "GET");
    n = sy_decide_upstream_path(out, 19, d->route, d->matched_len, SY_SLICE_LIT("/orders/1"), true,
                                SY_SLICE_LIT("x=1"));
    assert_int_equal(n, 18);
    assert_string_equal(out, "/prod/orders/1?x=1");
    memset(out, 0x5A, sizeof out);
    n = sy_decide_upstream_path(out, 18, d->route, d->matched_len, SY_SLICE_LIT("/orders/1"), true,
                                SY_SLICE_LIT("x=1"));
    assert_int_equal(n, 0);
    for (size_t i = 18; i < sizeof out; i++)
        assert_int_equal((unsigned char)out[i], 0x5A);
}

/* Issue 9: the routes of the e2e test, one backend; allow_path_parameters
 * as given. */
static sy_snapshot_t *build_orders(bool allow_parameters)
{
    char policy[1024];
    snprintf(policy, sizeof policy,
             "{\"listen_domains\": [\"api.example.com\"],"
             "\"destinations\": [{\"host\": \"orders.svc.internal\"}],"
             "\"auth_policies\": {\"public\": {\"type\": \"none\"}},"
             "\"default_auth\": \"public\", \"limits\": {\"allow_path_parameters\": %s}}",
             allow_parameters ? "true" : "false");
    return build(policy,
                 "["
                 "{\"path\": \"/orders\", \"target\": \"https://orders.svc.internal\"},"
                 "{\"path\": \"/orders/admin\", \"target\": \"https://orders.svc.internal\"},"
                 "{\"path\": \"/orders/readonly\", \"target\": "
                 "\"https://orders.svc.internal\", \"methods\": [\"GET\"]}"
                 "]");
}

static void expect_route(const sy_snapshot_t *snap, const char *path, const char *method,
                         int status, const char *route, const char *canonical)
{
    sy_decision_t *d = decide(snap, "api.example.com", path, method);
    if (d->status != status)
        fail_msg("%s %s: expected %d, got %d (%s)", method, path, status, d->status,
                 d->status ? d->message : "forward");
    if (route && (!d->route || strcmp(d->route->path, route) != 0))
        fail_msg("%s %s: expected route %s, got %s", method, path, route,
                 d->route ? d->route->path : "none");
    if (strcmp(decided_path, canonical) != 0)
        fail_msg("%s: decided on \"%s\", expected \"%s\"", path, decided_path, canonical);
}

/* Every spelling of /orders/admin picks /orders/admin; every spelling of
 * /orders/readonly keeps its method rule; the path decided on is the
 * decoded one. */
static void test_equivalent_spellings_pick_the_same_route(void **state)
{
    (void)state;
    sy_snapshot_t *snap = build_orders(false);
    expect_route(snap, "/orders/%61dmin", "GET", 0, "/orders/admin", "/orders/admin");
    expect_route(snap, "/orders/admi%6E", "GET", 0, "/orders/admin", "/orders/admin");
    expect_route(snap, "/orders/admi%6e/x", "GET", 0, "/orders/admin", "/orders/admin/x");
    expect_route(snap, "/%6Frders/%61%64%6D%69%6E", "GET", 0, "/orders/admin", "/orders/admin");
    expect_route(snap, "/orders/%72eadonly", "POST", 405, "/orders/readonly", "/orders/readonly");
    expect_route(snap, "/orders/%72eadonly", "GET", 0, "/orders/readonly", "/orders/readonly");
    /* Reserved and non-ASCII encodings stay encoded, in upper-case hex. */
    expect_route(snap, "/orders/a%2cb%c3%a9", "GET", 0, "/orders", "/orders/a%2Cb%C3%A9");
    /* Decoded dots are dot segments; %25 stays double encoding. */
    expect_route(snap, "/orders/%2e%2E/admin", "GET", 400, NULL, "/orders/../admin");
    expect_route(snap, "/orders/%2561dmin", "GET", 400, NULL, "/orders/%2561dmin");
    expect_status(snap, "api.example.com", "/orders/%2561dmin", "GET", 400,
                  "invalid path: double encoding");
    /* A bad escape leaves the path as received: "%%36%31" must not become
     * "%61". */
    expect_route(snap, "/orders/%%36%31dmin", "GET", 400, NULL, "/orders/%%36%31dmin");
    sy_snapshot_unref(snap);
}

/* ';' (raw or %3B) is refused by default; when the policy allows it, the
 * parameters are left out of matching, never letting a weaker route win. */
static void test_path_parameters(void **state)
{
    (void)state;
    sy_snapshot_t *snap = build_orders(false);
    static const char *const spellings[] = {"/orders/admin;x",   "/orders/admin%3bx",
                                            "/orders/admin%3Bx", "/orders;x/admin",
                                            "/orders/a;b/c",     "/orders/%61dmin;x"};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++)
        expect_status(snap, "api.example.com", spellings[i], "GET", 400,
                      "invalid path: path parameter");
    sy_snapshot_unref(snap);

    snap = build_orders(true);
    expect_route(snap, "/orders/admin;x", "GET", 0, "/orders/admin", "/orders/admin;x");
    expect_route(snap, "/orders/admin%3bx", "GET", 0, "/orders/admin", "/orders/admin%3Bx");
    expect_route(snap, "/orders;x/admin", "GET", 0, "/orders/admin", "/orders;x/admin");
    expect_route(snap, "/orders;a=1/admin;b=2/x", "GET", 0, "/orders/admin",
                 "/orders;a=1/admin;b=2/x");
    expect_route(snap, "/orders/readonly;v=1", "POST", 405, "/orders/readonly",
                 "/orders/readonly;v=1");
    expect_route(snap, "/orders/adm;x", "GET", 0, "/orders", "/orders/adm;x");
    /* Still refused: a segment that is only a parameter, "..;x". */
    expect_route(snap, "/orders/;x/admin", "GET", 400, NULL, "/orders/;x/admin");
    expect_route(snap, "/orders/..;x/admin", "GET", 400, NULL, "/orders/..;x/admin");
    sy_snapshot_unref(snap);
}

/* One trailing dot is the DNS root; two are no name (issue 9). */
static void test_host_trailing_dots(void **state)
{
    const sy_snapshot_t *snap = *state;
    expect_status(snap, "api.example.com.", "/orders", "GET", 0, NULL);
    expect_status(snap, "api.example.com.:443", "/orders", "GET", 0, NULL);
    expect_status(snap, "api.example.com..", "/orders", "GET", 400, "invalid Host header");
    expect_status(snap, "api.example.com..:443", "/orders", "GET", 400, "invalid Host header");
    expect_status(snap, "api.example.com...", "/orders", "GET", 400, "invalid Host header");
}

/* A default route catches everything no longer route does, per domain. */
static void test_default_route(void **state)
{
    (void)state;
    sy_snapshot_t *snap = build(POLICY, "["
                                        "{\"path\": \"/\", \"target\": \"https://d.svc.internal\"},"
                                        "{\"path\": \"/a\", \"target\": \"https://a.svc.internal\","
                                        " \"domain\": \"x.apps.example.com\"}"
                                        "]");
    sy_decision_t *d = decide(snap, "api.example.com", "/a/b", "GET");
    assert_int_equal(d->status, 0);
    assert_string_equal(d->route->path, "/");
    assert_int_equal(d->matched_len, 0);
    d = decide(snap, "x.apps.example.com", "/a/b", "GET");
    assert_int_equal(d->status, 0);
    assert_string_equal(d->route->path, "/a");
    d = decide(snap, "api.example.com", "/", "GET");
    assert_int_equal(d->status, 0);
    assert_string_equal(d->route->path, "/");
    sy_snapshot_unref(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwards_to_route),
        cmocka_unit_test(test_bad_host_is_400),
        cmocka_unit_test(test_foreign_host_is_421),
        cmocka_unit_test(test_bad_path_is_400),
        cmocka_unit_test(test_no_route_is_404),
        cmocka_unit_test(test_rejected_route_is_502),
        cmocka_unit_test(test_method_not_allowed_is_405),
        cmocka_unit_test(test_phase_order),
        cmocka_unit_test(test_upstream_path),
        cmocka_unit_test(test_default_route),
        cmocka_unit_test(test_equivalent_spellings_pick_the_same_route),
        cmocka_unit_test(test_path_parameters),
        cmocka_unit_test(test_host_trailing_dots),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
