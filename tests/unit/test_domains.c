/*
 * test_domains.c: the listen-domain hash set (issue 9: 200,000 domains load
 * in linear time and each Host is one or two probes): exact names without
 * case, the one-label wildcard rule, duplicates, and a whole policy of
 * 200,000 listen_domains checked name by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "route/domains.h"

static bool contains(const sy_domain_set_t *set, const char *host)
{
    return sy_domain_set_contains(set, sy_slice_cstr(host));
}

static void test_exact_and_wildcard(void **state)
{
    (void)state;
    sy_domain_set_t *set = sy_domain_set_new(2);
    size_t dup;
    assert_true(sy_domain_set_add(set, "api.example.com", 0, &dup));
    assert_true(sy_domain_set_add(set, "*.apps.example.com", 1, &dup));
    /* The wildcard and the exact name of its domain are different keys. */
    assert_true(sy_domain_set_add(set, "apps.example.com", 2, &dup));
    assert_false(sy_domain_set_add(set, "api.example.com", 3, &dup));
    assert_int_equal(dup, 0);
    assert_false(sy_domain_set_add(set, "*.apps.example.com", 4, &dup));
    assert_int_equal(dup, 1);

    assert_true(contains(set, "api.example.com"));
    assert_true(contains(set, "API.Example.COM"));
    assert_true(contains(set, "x.apps.example.com"));
    assert_true(contains(set, "X-1.Apps.Example.Com"));
    assert_true(contains(set, "apps.example.com"));
    assert_false(contains(set, "y.x.apps.example.com"));
    assert_false(contains(set, ".apps.example.com"));
    assert_false(contains(set, "example.com"));
    assert_false(contains(set, "api.example.co"));
    assert_false(contains(set, "api.example.com.evil"));
    assert_false(contains(set, "xapi.example.com"));
    assert_false(contains(set, ""));
    assert_false(contains(set, "x."));
    assert_false(sy_domain_set_contains(NULL, SY_SLICE_LIT("api.example.com")));
    sy_domain_set_free(set);
}

/* 200,000 names (every tenth a wildcard) through the policy parser: each is
 * found, near misses are not, a duplicate is named. No timing is asserted:
 * the old quadratic duplicate check would just make this test slow. */
static void test_two_hundred_thousand_domains(void **state)
{
    (void)state;
    enum { N = 200000 };
    size_t cap = (size_t)N * 40 + 1024;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t o = (size_t)snprintf(doc, cap, "{\"listen_domains\": [");
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(doc + o, cap - o, "%s\"%st%d.example.com\"", i ? "," : "",
                              i % 10 == 0 ? "*." : "", i);
    o += (size_t)snprintf(doc + o, cap - o,
                          "], \"destinations\": [{\"host\": \"b.internal\"}],"
                          " \"auth_policies\": {\"p\": {\"type\": \"none\"}},"
                          " \"default_auth\": \"p\"}");
    sy_error_t err;
    sy_policy_t *p = sy_policy_parse(doc, o, "policy.json", &err);
    if (!p)
        fail_msg("%s", err.message);
    assert_int_equal(p->listen_domain_count, N);
    char host[64];
    for (int i = 0; i < N; i++) {
        if (i % 10 == 0) {
            snprintf(host, sizeof host, "a.t%d.example.com", i);
            assert_true(sy_policy_domain_listed(p, sy_slice_cstr(host)));
            snprintf(host, sizeof host, "t%d.example.com", i);
            assert_false(sy_policy_domain_listed(p, sy_slice_cstr(host)));
        } else {
            snprintf(host, sizeof host, "T%d.Example.com.", i);
            assert_true(sy_policy_domain_listed(p, sy_slice_cstr(host)));
            snprintf(host, sizeof host, "a.t%d.example.com", i);
            assert_false(sy_policy_domain_listed(p, sy_slice_cstr(host)));
        }
    }
    snprintf(host, sizeof host, "t%d.example.com", N);
    assert_false(sy_policy_domain_listed(p, sy_slice_cstr(host)));
    sy_policy_free(p);

    /* The same list with its last name repeated at the end. */
    o -= strlen("], \"destinations\": [{\"host\": \"b.internal\"}],"
                " \"auth_policies\": {\"p\": {\"type\": \"none\"}},"
                " \"default_auth\": \"p\"}");
    o += (size_t)snprintf(doc + o, cap - o,
                          ",\"T%d.example.com\"], \"destinations\": [{\"host\": \"b.internal\"}],"
                          " \"auth_policies\": {\"p\": {\"type\": \"none\"}},"
                          " \"default_auth\": \"p\"}",
                          N - 1);
    p = sy_policy_parse(doc, o, "policy.json", &err);
    assert_null(p);
    char want[128];
    snprintf(want, sizeof want,
             "listen_domains[%d]: duplicates \"t%d.example.com\" listed before it", N, N - 1);
    if (!strstr(err.message, want))
        fail_msg("expected \"%s\" in \"%s\"", want, err.message);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_wildcard),
        cmocka_unit_test(test_two_hundred_thousand_domains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
