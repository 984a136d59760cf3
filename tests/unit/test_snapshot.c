/*
 * test_snapshot.c: routes checked against the policy (every rejection
 * reason of SPEC §3), rejected routes still owning their paths, duplicates
 * and disabled routes, and the refcounted publish/acquire lifecycle,
 * including readers racing a publisher (run under ASan to catch a
 * use-after-free or a leak).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "policy/snapshot.h"

static const char policy_text[] =
    "{\"listen_domains\": [\"api.example.com\", \"*.apps.example.com\", \"other.example.com\"],"
    " \"destinations\": ["
    "   {\"host\": \"orders.internal.example.com\"},"
    "   {\"host\": \"*.svc.example.com\"},"
    "   {\"host\": \"127.0.0.1\", \"scheme\": \"http\", \"port\": 9081}],"
    " \"auth_policies\": {\"public\": {\"type\": \"none\"}, \"aws\": {\"type\": \"iam\"}},"
    " \"default_auth\": \"public\"}";

/* Index: expectation. */
static const char routes_text[] =
    "["
    /* 0 */ "{\"path\": \"/orders\", \"target\": \"https://orders.internal.example.com/prod\"},"
    /* 1 */ "{\"path\": \"/orders/v2\", \"target\": \"https://v2.svc.example.com\", \"auth\": "
    "\"aws\"},"
    /* 2 */ "{\"path\": \"/admin\", \"target\": \"https://evil.example.com\"},"
    /* 3 */ "{\"path\": \"/billing\", \"target\": \"https://orders.internal.example.com:8443\"},"
    /* 4 */ "{\"path\": \"/auth\", \"target\": \"https://orders.internal.example.com\", \"auth\": "
    "\"nobody\"},"
    /* 5 */ "{\"path\": \"/dom\", \"target\": \"https://orders.internal.example.com\", "
    "\"domain\": \"elsewhere.example.com\"},"
    /* 6 */ "{\"path\": \"/dom2\", \"target\": \"https://orders.internal.example.com\", "
    "\"domain\": \"x.apps.example.com\"},"
    /* 7 */ "{\"path\": \"/orders\", \"target\": \"https://a.svc.example.com\"},"
    /* 8 */ "{\"path\": \"/off\", \"target\": \"https://a.svc.example.com\", \"enabled\": false},"
    /* 9 */ "{\"path\": \"/bad\", \"target\": \"ftp://orders.internal.example.com\"},"
    /* 10 */ "{\"path\": \"/x/\", \"target\": \"https://orders.internal.example.com\"},"
    /* 11 */ "{\"path\": \"/plain\", \"target\": \"http://127.0.0.1:9081/stage\"},"
    /* 12 */ "{\"path\": \"/plain2\", \"target\": \"https://127.0.0.1:9081\"},"
    /* 13 */ "{\"path\": \"/wild\", \"target\": \"https://a.b.svc.example.com\"},"
    /* 14 */ "{\"path\": \"/off\", \"target\": \"https://b.svc.example.com\"},"
    /* 15 */ "{\"path\": \"/gone\", \"target\": \"ftp://x\", \"enabled\": false},"
    /* 16 */ "{\"path\": \"/\", \"target\": \"https://default.svc.example.com\", \"methods\": "
    "[\"GET\"]},"
    /* 17 */ "{\"path\": \"/other\", \"target\": \"https://orders.internal.example.com\", "
    "\"domain\": \"other.example.com\"}"
    "]";

static sy_snapshot_t *build(const char *ptext, const char *rtext)
{
    sy_error_t err = {{0}};
    sy_policy_t *policy = sy_policy_parse(ptext, strlen(ptext), "policy.json", &err);
    if (!policy)
        fail_msg("policy: %s", err.message);
    sy_route_list_t *routes = sy_routes_parse_json(rtext, strlen(rtext), "routes.json", &err);
    if (!routes)
        fail_msg("routes: %s", err.message);
    sy_snapshot_t *snap = sy_snapshot_build(policy, routes, &err);
    if (!snap)
        fail_msg("build: %s", err.message);
    return snap;
}

static const sy_route_t *match(const sy_snapshot_t *snap, const char *host, const char *path,
                               size_t *matched_len)
{
    return sy_snapshot_match(snap, sy_slice_cstr(host), sy_slice_cstr(path), matched_len);
}

static void expect_reason(const sy_snapshot_t *snap, size_t i, const char *reason)
{
    const sy_route_t *r = &snap->routes->items[i];
    if (!reason) {
        if (r->rejected_reason)
            fail_msg("route [%zu] rejected: %s", i, r->rejected_reason);
        return;
    }
    if (!r->rejected_reason || strcmp(r->rejected_reason, reason) != 0)
        fail_msg("route [%zu]: reason \"%s\", expected \"%s\"", i,
                 r->rejected_reason ? r->rejected_reason : "(active)", reason);
}

static void test_routes_checked_against_policy(void **state)
{
    (void)state;
    sy_snapshot_t *snap = build(policy_text, routes_text);
    assert_int_equal(snap->routes->count, 18);
    assert_int_equal(snap->active_count, 7);   /* 0 1 6 11 14 16 17 */
    assert_int_equal(snap->rejected_count, 9); /* 2 3 4 5 7 9 10 12 13 */
    assert_int_equal(snap->disabled_count, 2); /* 8 15 */

    expect_reason(snap, 0, NULL);
    expect_reason(snap, 1, NULL);
    expect_reason(snap, 2, "target https://evil.example.com:443 is not an allowed destination");
    expect_reason(snap, 3,
                  "target https://orders.internal.example.com:8443 is not an allowed destination");
    expect_reason(snap, 4, "auth policy 'nobody' is not defined");
    expect_reason(snap, 5, "domain elsewhere.example.com is not a listen domain");
    expect_reason(snap, 6, NULL);
    expect_reason(snap, 7, "duplicate path");
    expect_reason(snap, 11, NULL);
    expect_reason(snap, 12, "target https://127.0.0.1:9081 is not an allowed destination");
    expect_reason(snap, 13, "target https://a.b.svc.example.com:443 is not an allowed destination");
    expect_reason(snap, 14, NULL);
    expect_reason(snap, 16, NULL);
    expect_reason(snap, 17, NULL);
    assert_non_null(strstr(snap->routes->items[9].rejected_reason, "[9].target: expected an http"));
    assert_non_null(strstr(snap->routes->items[10].rejected_reason, "[10].path: "));

    const sy_policy_t *p = snap->policy;
    const sy_route_t *items = snap->routes->items;
    assert_ptr_equal(items[0].destination, &p->destinations[0]);
    assert_ptr_equal(items[0].auth, p->default_auth);
    assert_string_equal(items[0].auth->name, "public");
    assert_ptr_equal(items[1].destination, &p->destinations[1]);
    assert_string_equal(items[1].auth->name, "aws");
    assert_ptr_equal(items[11].destination, &p->destinations[2]);
    assert_null(items[2].destination);
    sy_snapshot_unref(snap);
}

static void test_matching_including_rejected_routes(void **state)
{
    (void)state;
    sy_snapshot_t *snap = build(policy_text, routes_text);
    const sy_route_t *items = snap->routes->items;
    size_t len = 99;

    assert_ptr_equal(match(snap, "api.example.com", "/orders", &len), &items[0]);
    assert_int_equal(len, 7);
    assert_ptr_equal(match(snap, "api.example.com", "/orders/", NULL), &items[0]);
    assert_ptr_equal(match(snap, "api.example.com", "/orders/1", NULL), &items[0]);
    assert_ptr_equal(match(snap, "api.example.com", "/orders/v2/x", &len), &items[1]);
    assert_int_equal(len, 10);
    /* Not a segment boundary: falls to the default route. */
    assert_ptr_equal(match(snap, "api.example.com", "/ordersx", &len), &items[16]);
    assert_int_equal(len, 0);
    assert_ptr_equal(match(snap, "api.example.com", "/Orders", NULL), &items[16]);

    /* Rejected routes own their paths: no fall-through to "/". */
    const sy_route_t *r = match(snap, "api.example.com", "/admin/users", NULL);
    assert_ptr_equal(r, &items[2]);
    assert_non_null(r->rejected_reason);
    assert_ptr_equal(match(snap, "api.example.com", "/billing", NULL), &items[3]);
    assert_ptr_equal(match(snap, "api.example.com", "/auth/x", NULL), &items[4]);
    assert_ptr_equal(match(snap, "api.example.com", "/bad", NULL), &items[9]);
    assert_ptr_equal(match(snap, "api.example.com", "/wild", NULL), &items[13]);
    /* ... on their own domain only. */
    assert_ptr_equal(match(snap, "elsewhere.example.com", "/dom", NULL), &items[5]);
    assert_ptr_equal(match(snap, "api.example.com", "/dom", NULL), &items[16]);

    /* Domain routes. */
    assert_ptr_equal(match(snap, "x.apps.example.com", "/dom2/a", NULL), &items[6]);
    assert_ptr_equal(match(snap, "X.Apps.Example.com.", "/dom2", NULL), &items[6]);
    assert_ptr_equal(match(snap, "y.apps.example.com", "/dom2", NULL), &items[16]);
    assert_ptr_equal(match(snap, "other.example.com", "/other", NULL), &items[17]);
    assert_ptr_equal(match(snap, "api.example.com", "/other", NULL), &items[16]);

    /* The duplicate owns nothing; the first keeps the path. A disabled
     * route owns nothing either, so a later enabled one is no duplicate. */
    assert_ptr_equal(match(snap, "api.example.com", "/off", NULL), &items[14]);
    assert_ptr_equal(match(snap, "api.example.com", "/gone", NULL), &items[16]);
    /* An item without a usable path owns nothing. */
    assert_null(items[10].path);
    assert_ptr_equal(match(snap, "api.example.com", "/x/y", NULL), &items[16]);
    sy_snapshot_unref(snap);
}

static void test_without_default_route_nothing_matches(void **state)
{
    (void)state;
    sy_snapshot_t *snap = build(
        policy_text, "[{\"path\": \"/a\", \"target\": \"https://orders.internal.example.com\"}]");
    assert_non_null(match(snap, "api.example.com", "/a/b", NULL));
    assert_null(match(snap, "api.example.com", "/b", NULL));
    assert_null(match(snap, "api.example.com", "/", NULL));
    sy_snapshot_unref(snap);

    snap = build(policy_text, "[]");
    assert_int_equal(snap->active_count + snap->rejected_count + snap->disabled_count, 0);
    assert_null(match(snap, "api.example.com", "/", NULL));
    sy_snapshot_unref(snap);
}

static void test_build_edge_cases(void **state)
{
    (void)state;
    sy_error_t err = {{0}};
    sy_route_list_t *routes = sy_routes_parse_json("[]", 2, "routes.json", &err);
    assert_null(sy_snapshot_build(NULL, routes, &err)); /* routes freed: LSan checks */
    assert_string_not_equal(err.message, "");

    sy_policy_t *policy = sy_policy_parse(policy_text, strlen(policy_text), "p", &err);
    assert_non_null(policy);
    sy_snapshot_t *snap = sy_snapshot_build(policy, NULL, &err);
    assert_non_null(snap);
    assert_non_null(snap->routes);
    assert_int_equal(snap->routes->count, 0);
    assert_int_equal(atomic_load(&snap->refs), 1);
    sy_snapshot_unref(snap);
    sy_snapshot_unref(NULL);
    sy_snapshot_ref(NULL);
}

static void test_publish_and_acquire_lifecycle(void **state)
{
    (void)state;
    sy_snapshot_reset_for_tests();
    assert_null(sy_snapshot_acquire());
    uint64_t g0 = sy_snapshot_current_generation();

    sy_snapshot_t *first = build(policy_text, routes_text);
    sy_snapshot_publish(first);
    uint64_t g1 = sy_snapshot_current_generation();
    assert_true(g1 > g0);
    assert_int_equal(first->generation, g1);

    sy_snapshot_t *held = sy_snapshot_acquire();
    assert_ptr_equal(held, first);
    assert_int_equal(atomic_load(&held->refs), 2);

    sy_snapshot_t *second =
        build(policy_text, "[{\"path\": \"/new\", \"target\": \"https://n.svc.example.com\"}]");
    sy_snapshot_publish(second);
    assert_true(sy_snapshot_current_generation() > g1);
    assert_int_equal(second->generation, sy_snapshot_current_generation());

    /* The old snapshot stays whole while a request still holds it. */
    assert_int_equal(atomic_load(&held->refs), 1);
    assert_non_null(match(held, "api.example.com", "/orders/1", NULL));
    assert_ptr_equal(match(held, "api.example.com", "/new", NULL), &held->routes->items[16]);
    assert_string_equal(held->routes->items[0].path, "/orders");

    sy_snapshot_t *now = sy_snapshot_acquire();
    assert_ptr_equal(now, second);
    assert_non_null(match(now, "api.example.com", "/new", NULL));
    assert_null(match(now, "api.example.com", "/orders", NULL));
    sy_snapshot_unref(now);
    sy_snapshot_unref(held); /* frees the first: ASan flags any later use */

    /* Publishing the same snapshot again keeps it alive. */
    sy_snapshot_ref(second);
    sy_snapshot_publish(second);
    now = sy_snapshot_acquire();
    assert_ptr_equal(now, second);
    sy_snapshot_unref(now);

    sy_snapshot_publish(NULL);
    assert_null(sy_snapshot_acquire());
    sy_snapshot_reset_for_tests();
}

typedef struct {
    atomic_bool stop;
    atomic_ulong reads;
} race_t;

static void *reader(void *arg)
{
    race_t *race = arg;
    uint64_t seen = 0;
    sy_snapshot_t *cached = NULL;
    while (!atomic_load(&race->stop)) {
        /* The worker pattern: re-acquire only when the generation moved. */
        uint64_t g = sy_snapshot_current_generation();
        if (g != seen || !cached) {
            sy_snapshot_unref(cached);
            cached = sy_snapshot_acquire();
            seen = g;
        }
        if (cached) {
            const sy_route_t *r = match(cached, "api.example.com", "/orders/1", NULL);
            if (!r || strcmp(r->path, "/orders") != 0)
                abort();
            atomic_fetch_add(&race->reads, 1);
        }
    }
    sy_snapshot_unref(cached);
    return NULL;
}

static void test_readers_race_publisher(void **state)
{
    (void)state;
    race_t race;
    atomic_init(&race.stop, false);
    atomic_init(&race.reads, 0);
    pthread_t threads[4];
    sy_snapshot_publish(build(policy_text, routes_text));
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, reader, &race), 0);
    for (int i = 0; i < 60; i++)
        sy_snapshot_publish(build(policy_text, routes_text));
    atomic_store(&race.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_true(atomic_load(&race.reads) > 0);
    sy_snapshot_reset_for_tests();
    assert_null(sy_snapshot_acquire());
}

/* Destination bindings: allowed_paths at segment boundaries, allowed_auth
 * judged on the effective auth (default_auth when the route names none),
 * a wildcard destination's bindings for every host under it, and an exact
 * destination's own bindings beating the wildcard's. */
static void test_destination_bindings(void **state)
{
    (void)state;
    static const char bound_policy[] =
        "{\"listen_domains\": [\"api.example.com\"],"
        " \"destinations\": ["
        "   {\"host\": \"users.internal.example.com\", \"allowed_paths\": [\"/users\", \"/me\"],"
        "    \"allowed_auth\": [\"users-jwt\"]},"
        "   {\"host\": \"*.svc.example.com\", \"allowed_paths\": [\"/svc\"],"
        "    \"allowed_auth\": [\"public\", \"aws\"]},"
        "   {\"host\": \"special.svc.example.com\", \"allowed_paths\": [\"/special\"]},"
        "   {\"host\": \"open.internal.example.com\"},"
        "   {\"host\": \"root.internal.example.com\", \"allowed_paths\": [\"/\"]}],"
        " \"auth_policies\": {\"public\": {\"type\": \"none\"}, \"aws\": {\"type\": \"iam\"},"
        "   \"users-jwt\": {\"type\": \"iam\"}},"
        " \"default_auth\": \"public\"}";
    static const char bound_routes[] =
        "["
        /* 0 */ "{\"path\": \"/users\", \"target\": \"https://users.internal.example.com\", "
        "\"auth\": \"users-jwt\"},"
        /* 1 */ "{\"path\": \"/users/v2/x\", \"target\": \"https://users.internal.example.com\", "
        "\"auth\": \"users-jwt\"},"
        /* 2 */ "{\"path\": \"/usersx\", \"target\": \"https://users.internal.example.com\", "
        "\"auth\": \"users-jwt\"},"
        /* 3 */ "{\"path\": \"/orders/leak\", \"target\": "
        "\"https://users.internal.example.com/prod\", \"auth\": \"users-jwt\"},"
        /* 4 */ "{\"path\": \"/users/open\", \"target\": \"https://users.internal.example.com\", "
        "\"auth\": \"public\"},"
        /* 5: no auth: judged by default_auth (public) */
        "{\"path\": \"/me\", \"target\": \"https://users.internal.example.com\"},"
        /* 6 */ "{\"path\": \"/svc/a\", \"target\": \"https://a.svc.example.com\"},"
        /* 7 */ "{\"path\": \"/svc/b\", \"target\": \"https://b.svc.example.com\", \"auth\": "
        "\"aws\"},"
        /* 8 */ "{\"path\": \"/other\", \"target\": \"https://c.svc.example.com\"},"
        /* 9 */ "{\"path\": \"/svc/c\", \"target\": \"https://d.svc.example.com\", \"auth\": "
        "\"users-jwt\"},"
        /* 10: the exact entry's bindings, not the wildcard's */
        "{\"path\": \"/special/x\", \"target\": \"https://special.svc.example.com\", \"auth\": "
        "\"users-jwt\"},"
        /* 11 */ "{\"path\": \"/svc/special\", \"target\": \"https://special.svc.example.com\"},"
        /* 12: unbound destination: as before */
        "{\"path\": \"/anything\", \"target\": \"https://open.internal.example.com\", \"auth\": "
        "\"aws\"},"
        /* 13: \"/\" allows every path */
        "{\"path\": \"/deep/er\", \"target\": \"https://root.internal.example.com\"},"
        /* 14: both bindings broken: both named */
        "{\"path\": \"/orders/leak2\", \"target\": \"https://users.internal.example.com\", "
        "\"auth\": \"public\"}"
        "]";
    sy_snapshot_t *snap = build(bound_policy, bound_routes);
    expect_reason(snap, 0, NULL);
    expect_reason(snap, 1, NULL);
    expect_reason(snap, 2,
                  "path /usersx is outside destinations[0] (users.internal.example.com) "
                  "allowed_paths [/users, /me]: that destination serves only routes under those "
                  "paths");
    expect_reason(snap, 3,
                  "path /orders/leak is outside destinations[0] (users.internal.example.com) "
                  "allowed_paths [/users, /me]: that destination serves only routes under those "
                  "paths");
    expect_reason(snap, 4,
                  "auth 'public' is not in destinations[0] (users.internal.example.com) "
                  "allowed_auth [users-jwt]");
    expect_reason(snap, 5,
                  "auth 'public' (the default_auth) is not in destinations[0] "
                  "(users.internal.example.com) allowed_auth [users-jwt]");
    expect_reason(snap, 6, NULL);
    expect_reason(snap, 7, NULL);
    expect_reason(snap, 8,
                  "path /other is outside destinations[1] (*.svc.example.com) allowed_paths "
                  "[/svc]: that destination serves only routes under those paths");
    expect_reason(snap, 9,
                  "auth 'users-jwt' is not in destinations[1] (*.svc.example.com) allowed_auth "
                  "[public, aws]");
    expect_reason(snap, 10, NULL);
    assert_non_null(strstr(snap->routes->items[11].rejected_reason,
                           "path /svc/special is outside destinations[2]"));
    expect_reason(snap, 12, NULL);
    expect_reason(snap, 13, NULL);
    expect_reason(snap, 14,
                  "path /orders/leak2 is outside destinations[0] (users.internal.example.com) "
                  "allowed_paths [/users, /me]: that destination serves only routes under those "
                  "paths; auth 'public' is not in destinations[0] (users.internal.example.com) "
                  "allowed_auth [users-jwt]");
    /* A route breaking a binding still owns its path: 502, no fall-through. */
    const sy_route_t *r = match(snap, "api.example.com", "/orders/leak/secrets", NULL);
    assert_ptr_equal(r, &snap->routes->items[3]);
    assert_non_null(r->rejected_reason);
    assert_int_equal(snap->active_count, 7);
    assert_int_equal(snap->rejected_count, 8);
    sy_snapshot_unref(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_checked_against_policy),
        cmocka_unit_test(test_matching_including_rejected_routes),
        cmocka_unit_test(test_without_default_route_nothing_matches),
        cmocka_unit_test(test_build_edge_cases),
        cmocka_unit_test(test_destination_bindings),
        cmocka_unit_test(test_publish_and_acquire_lifecycle),
        cmocka_unit_test(test_readers_race_publisher),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
