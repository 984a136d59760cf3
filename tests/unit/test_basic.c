/*
 * test_basic.c: Basic credentials against hashes made at test time with
 * libcrypt for every accepted scheme (bcrypt $2b$/$2y$, sha512-crypt,
 * sha256-crypt, yescrypt); wrong passwords, unknown users, malformed
 * headers; the verified-credential cache (a hit is far cheaper than a
 * bcrypt round, and a changed hash is never served from it); and the
 * policy path: 401 with the realm, the user as the subject.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/basic.h"
#include "core/base64.h"

static char *hash_with(const char *prefix, unsigned long cost, const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof setting))
        fail_msg("crypt_gensalt_rn(%s) failed", prefix);
    struct crypt_data *data = calloc(1, sizeof *data);
    char *h = crypt_rn(password, setting, data, (int)sizeof *data);
    assert_non_null(h);
    assert_true(h[0] == '$');
    char *copy = strdup(h);
    free(data);
    return copy;
}

static char *basic_header(const char *user_colon_password)
{
    size_t len = strlen(user_colon_password);
    char *out = malloc(6 + (len + 2) / 3 * 4 + 1);
    assert_non_null(out);
    memcpy(out, "Basic ", 6);
    sy_base64_encode((const unsigned char *)user_colon_password, len, false, true, out + 6);
    return out;
}

static bool check(const sy_basic_users_t *t, const char *creds, const char **user)
{
    char *h = basic_header(creds);
    bool ok = sy_basic_check(t, sy_slice_cstr(h), user);
    free(h);
    return ok;
}

static void test_every_scheme(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"$2b$", "$2y$", "$6$", "$5$", "$y$"};
    json_t *users = json_object();
    char name[16];
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(name, sizeof name, "user%zu", i);
        char pw[32];
        snprintf(pw, sizeof pw, "pw-%zu:with colon", i);
        char *h = hash_with(prefixes[i], prefixes[i][1] == '2' ? 4 : 0, pw);
        assert_int_equal(strncmp(h, prefixes[i], strlen(prefixes[i])), 0);
        json_object_set_new(users, name, json_string(h));
        free(h);
    }
    sy_error_t err;
    sy_basic_users_t *t = sy_basic_users_build("p", users, &err);
    assert_non_null(t);
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        char creds[64];
        const char *user = NULL;
        /* The password itself contains ':': only the first one splits. */
        snprintf(creds, sizeof creds, "user%zu:pw-%zu:with colon", i, i);
        if (!check(t, creds, &user))
            fail_msg("%s: right password refused", prefixes[i]);
        snprintf(name, sizeof name, "user%zu", i);
        assert_string_equal(user, name);
        snprintf(creds, sizeof creds, "user%zu:pw-%zu:with colon ", i, i);
        assert_false(check(t, creds, &user));
        assert_null(user);
        snprintf(creds, sizeof creds, "user%zu:pw-%zu", i, (i + 1) % 5);
        assert_false(check(t, creds, &user));
        /* Another user's password. */
        snprintf(creds, sizeof creds, "user%zu:pw-%zu:with colon", i, (i + 1) % 5);
        assert_false(check(t, creds, &user));
    }
    const char *user;
    assert_false(check(t, "nobody:pw-0:with colon", &user));
    assert_false(check(t, "USER0:pw-0:with colon", &user));
    assert_false(check(t, "user0", &user));
    assert_false(check(t, ":", &user));
    static const char *const malformed[] = {
        "Basic",
        "Basic ",
        "Bearer dXNlcjA6eA==",
        "Basic dXNlcjA6eA",
        "Basic dXNlcjA6eA=",
        "Basic dXNlcjA6eB==",
        "Basic !!!!",
        "Basic dXNl cjA6eA==",
        "Basicdxnlcja6ea==",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_false(sy_basic_check(t, sy_slice_cstr(malformed[i]), &user));
    sy_basic_users_free(t);
    json_decref(users);
}

static void test_plain_text_refused(void **state)
{
    (void)state;
    sy_error_t err;
    json_t *users = json_pack("{s:s}", "alice", "secret");
    assert_null(sy_basic_users_build("p", users, &err));
    assert_non_null(strstr(err.message, "crypt hash"));
    json_decref(users);
    users = json_pack("{s:s}", "alice", "$1$abc$def"); /* md5-crypt: not accepted */
    assert_null(sy_basic_users_build("p", users, &err));
    json_decref(users);
}

static double seconds(void)
{
    return (double)sy_now_ms() / 1000.0;
}

static void test_cache(void **state)
{
    (void)state;
    /* Cost 10: a few milliseconds per check, the reason the cache exists. */
    char *h = hash_with("$2b$", 10, "correct horse");
    json_t *users = json_pack("{s:s}", "alice", h);
    sy_error_t err;
    sy_basic_users_t *t = sy_basic_users_build("cached", users, &err);
    const char *user;
    double t0 = seconds();
    assert_true(check(t, "alice:correct horse", &user));
    double first = seconds() - t0;
    t0 = seconds();
    for (int i = 0; i < 10; i++)
        assert_true(check(t, "alice:correct horse", &user));
    double cached = (seconds() - t0) / 10;
    print_message("bcrypt check %.1f ms, cached %.3f ms\n", first * 1000, cached * 1000);
    assert_true(cached * 5 < first);
    /* Wrong passwords are never cached: each pays full price and fails. */
    assert_false(check(t, "alice:correct horsE", &user));
    sy_basic_users_free(t);

    /* A reload with a new hash for alice: the old password must stop
     * working at once, though it was just cached under the same name. */
    char *h2 = hash_with("$2b$", 4, "new password");
    json_object_set_new(users, "alice", json_string(h2));
    t = sy_basic_users_build("cached", users, &err);
    assert_false(check(t, "alice:correct horse", &user));
    assert_true(check(t, "alice:new password", &user));
    sy_basic_users_free(t);
    json_decref(users);
    free(h);
    free(h2);
}

static void test_policy_path(void **state)
{
    (void)state;
    char *h = hash_with("$6$", 0, "pw");
    json_t *config =
        json_pack("{s:s,s:s,s:{s:s}}", "type", "basic", "realm", "partners", "users", "bob", h);
    sy_auth_policy_t policy = {
        .name = "partners", .type = SY_AUTH_BASIC, .realm = "partners", .config = config};
    sy_error_t err;
    assert_true(sy_auth_prepare(&policy, &err));
    sy_http_header_t hdr = {SY_SLICE_LIT("authorization"), SY_SLICE_LIT(""), SY_HDR_AUTHORIZATION};
    sy_http_request_t req = {.headers = &hdr, .header_count = 1};
    sy_auth_result_t *r = malloc(sizeof *r);
    char *value = basic_header("bob:pw");
    hdr.value = sy_slice_cstr(value);
    sy_auth_check(&policy, &req, r);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->subject, "bob");
    assert_int_equal(r->add_count, 0);
    free(value);
    value = basic_header("bob:px");
    hdr.value = sy_slice_cstr(value);
    sy_auth_check(&policy, &req, r);
    assert_int_equal(r->status, 401);
    assert_string_equal(r->www_authenticate, "Basic realm=\"partners\"");
    assert_string_equal(r->subject, "");
    req.header_count = 0;
    sy_auth_check(&policy, &req, r);
    assert_int_equal(r->status, 401);
    free(value);
    free(r);
    sy_auth_release(&policy);
    json_decref(config);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_scheme),
        cmocka_unit_test(test_plain_text_refused),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_policy_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
