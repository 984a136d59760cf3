/*
 * test_routes_cli.c: `switchyard routes put|delete|list` against a file
 * store: validation before writing, --check-policy, replace-by-path,
 * idempotent delete, the atomic rewrite, and the exit codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/routes_cli.h"

static char dir[64], store[128], policy[128];

static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "routes";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    int saved = dup(1);
    FILE *devnull = fopen("/dev/null", "w");
    dup2(fileno(devnull), 1); /* keep the test output readable */
    int status = sy_routes_cli(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(devnull);
    return status;
}

static json_t *stored(void)
{
    json_error_t e;
    json_t *doc = json_load_file(store, 0, &e);
    assert_non_null(doc);
    return doc;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sy-routes-cli-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(store, sizeof store, "%s/routes.json", dir);
    snprintf(policy, sizeof policy, "%s/policy.json", dir);
    FILE *f = fopen(policy, "w");
    fputs("{\"listen_domains\":[\"api.example.com\"],"
          "\"destinations\":[{\"host\":\"orders.internal.example.com\",\"port\":443}],"
          "\"auth_policies\":{\"public\":{\"type\":\"none\"}},\"default_auth\":\"public\"}",
          f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(store);
    unlink(policy);
    rmdir(dir);
    return 0;
}

static void test_put_replace_delete(void **state)
{
    (void)state;
    char uri[160];
    snprintf(uri, sizeof uri, "file://%s", store);
    assert_int_equal(run("put", "--routes", uri, "--path", "/orders", "--target",
                         "https://orders.internal.example.com/prod", "--methods", "GET,POST",
                         "--strip-prefix", NULL),
                     0);
    assert_int_equal(run("put", "--routes", store, "--path", "/users", "--target",
                         "https://users.internal.example.com", NULL),
                     0);
    json_t *doc = stored();
    assert_int_equal(json_array_size(doc), 2);
    json_t *first = json_array_get(doc, 0);
    assert_string_equal(json_string_value(json_object_get(first, "path")), "/orders");
    assert_int_equal(json_array_size(json_object_get(first, "methods")), 2);
    assert_true(json_is_true(json_object_get(first, "strip_prefix")));
    assert_non_null(json_object_get(first, "updated_at"));
    json_decref(doc);

    /* Same path: replaced, not duplicated. */
    assert_int_equal(run("put", "--routes", store, "--path", "/orders", "--target",
                         "https://orders.internal.example.com/v2", NULL),
                     0);
    doc = stored();
    assert_int_equal(json_array_size(doc), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 0), "target")),
                        "https://orders.internal.example.com/v2");
    assert_null(json_object_get(json_array_get(doc, 0), "methods"));
    json_decref(doc);

    assert_int_equal(run("delete", "--routes", store, "--path", "/users", NULL), 0);
    assert_int_equal(run("delete", "--routes", store, "--path", "/users", NULL), 0);
    doc = stored();
    assert_int_equal(json_array_size(doc), 1);
    json_decref(doc);
    assert_int_equal(run("list", "--routes", store, "--json", NULL), 0);
    /* No temporary file left behind. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", dir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_refusals_and_usage(void **state)
{
    (void)state;
    unlink(store);
    /* Invalid items are refused before anything is written. */
    assert_int_equal(run("put", "--routes", store, "--path", "/a/../b", "--target",
                         "https://orders.internal.example.com", NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/a/", "--target",
                         "https://orders.internal.example.com", NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/a", "--target",
                         "ftp://orders.internal.example.com", NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/a", "--target",
                         "https://orders.internal.example.com", "--methods", "GET,,POST", NULL),
                     1);
    assert_int_not_equal(access(store, F_OK), 0);
    /* --check-policy: a destination the policy doesn't list, an unknown
     * auth policy, a domain it doesn't serve. */
    assert_int_equal(run("put", "--routes", store, "--path", "/a", "--target",
                         "https://elsewhere.example.com", "--check-policy", policy, NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/a", "--target",
                         "https://orders.internal.example.com", "--auth", "nope", "--check-policy",
                         policy, NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/a", "--target",
                         "https://orders.internal.example.com", "--domain", "other.example.com",
                         "--check-policy", policy, NULL),
                     1);
    assert_int_not_equal(access(store, F_OK), 0);
    assert_int_equal(run("put", "--routes", store, "--path", "/a", "--target",
                         "https://orders.internal.example.com", "--check-policy", policy, "--json",
                         NULL),
                     0);
    assert_int_equal(access(store, F_OK), 0);
    /* Usage and store errors: 2. */
    assert_int_equal(run("put", "--routes", store, "--path", "/a", NULL), 2);
    assert_int_equal(run("frobnicate", "--routes", store, NULL), 2);
    assert_int_equal(run("list", NULL), 2);
    assert_int_equal(run("list", "--routes", store, "--bogus", NULL), 2);
    assert_int_equal(run("delete", "--routes", store, "--path", "/a", "--target", "x", NULL), 2);
    assert_int_equal(run("list", "--routes", "/nonexistent/routes.json", NULL), 2);
    assert_int_equal(run("put", "--routes", store, "--path", "/b", "--target",
                         "https://orders.internal.example.com", "--check-policy",
                         "/nonexistent/policy.json", NULL),
                     2);
    FILE *f = fopen(store, "w");
    fputs("{\"not\":\"an array\"}", f);
    fclose(f);
    assert_int_equal(run("list", "--routes", store, NULL), 2);
    assert_int_equal(run("put", "--routes", store, "--path", "/b", "--target",
                         "https://orders.internal.example.com", NULL),
                     2);
}

/* --check-policy refuses a route breaking its destination's bindings
 * (a path outside allowed_paths, an auth outside allowed_auth, also through
 * default_auth) with exit 1 and leaves the store as it was. */
static void test_check_policy_bindings(void **state)
{
    (void)state;
    char bound[160];
    snprintf(bound, sizeof bound, "%s/bound.json", dir);
    FILE *f = fopen(bound, "w");
    assert_non_null(f);
    fputs("{\"listen_domains\":[\"api.example.com\"],"
          "\"destinations\":[{\"host\":\"users.internal.example.com\","
          "\"allowed_paths\":[\"/users\"],\"allowed_auth\":[\"users\"]}],"
          "\"auth_policies\":{\"public\":{\"type\":\"none\"},\"users\":{\"type\":\"iam\"}},"
          "\"default_auth\":\"public\"}",
          f);
    fclose(f);
    unlink(store);
    const char *target = "https://users.internal.example.com/prod";
    assert_int_equal(run("put", "--routes", store, "--path", "/orders/leak", "--target", target,
                         "--auth", "users", "--check-policy", bound, NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/usersx", "--target", target,
                         "--auth", "users", "--check-policy", bound, NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/users/v2", "--target", target,
                         "--auth", "public", "--check-policy", bound, NULL),
                     1);
    assert_int_equal(run("put", "--routes", store, "--path", "/users/v2", "--target", target,
                         "--check-policy", bound, NULL),
                     1); /* default_auth: public */
    assert_int_not_equal(access(store, F_OK), 0);
    assert_int_equal(run("put", "--routes", store, "--path", "/users/v2", "--target", target,
                         "--auth", "users", "--check-policy", bound, NULL),
                     0);
    json_t *doc = stored();
    assert_int_equal(json_array_size(doc), 1);
    json_decref(doc);
    unlink(store);
    unlink(bound);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_replace_delete),
        cmocka_unit_test(test_refusals_and_usage),
        cmocka_unit_test(test_check_policy_bindings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
