/*
 * test_basic.c: Basic credentials against hashes made at test time with
 * libcrypt for every accepted scheme (bcrypt $2b$/$2y$, sha512-crypt,
 * sha256-crypt, yescrypt); wrong passwords, unknown users, malformed
 * headers; the verified and failed caches (a hit needs no hash, a changed
 * hash is never served from them); unknown users answered without a hash;
 * the per-address and per-user failure throttles; the cost ceilings
 * refused at load; and the policy path: 401 with the realm, the user as
 * the subject, a hash queued on a loop and a client that leaves mid-hash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <pthread.h>
#include <uv.h>
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

static sy_basic_status_t begin_at(const sy_basic_users_t *t, const char *creds, const char *peer,
                                  uint64_t now, unsigned *wait, sy_basic_job_t **job)
{
    char *h = basic_header(creds);
    const char *user;
    sy_basic_status_t s = sy_basic_begin(t, sy_slice_cstr(h), peer, now, &user, wait, job);
    free(h);
    return s;
}

/* A whole check at `now`: the hash runs here when one is needed. */
static sy_basic_status_t check_at(const sy_basic_users_t *t, const char *creds, const char *peer,
                                  uint64_t now, unsigned *wait)
{
    sy_basic_job_t *job;
    unsigned w;
    sy_basic_status_t s = begin_at(t, creds, peer, now, wait ? wait : &w, &job);
    if (s == SY_BASIC_HASH_NEEDED) {
        const char *user;
        sy_basic_job_run(job);
        s = sy_basic_job_finish(job, now, &user);
        sy_basic_job_free(job);
    }
    return s;
}

static sy_basic_users_t *one_user(const char *policy, const char *user, const char *hash)
{
    json_t *users = json_pack("{s:s}", user, hash);
    sy_error_t err;
    sy_basic_users_t *t = sy_basic_users_build(policy, users, &err);
    if (!t)
        fail_msg("%s", err.message);
    json_decref(users);
    return t;
}

static void test_cache(void **state)
{
    (void)state;
    sy_basic_thread_reset();
    char *h = hash_with("$2b$", 4, "correct horse");
    sy_basic_users_t *t = one_user("cached", "alice", h);
    uint64_t now = 1000000;
    /* The first check hashes; repeats within the TTL do not. */
    assert_int_equal(check_at(t, "alice:correct horse", NULL, now, NULL), SY_BASIC_OK);
    assert_int_equal(check_at(t, "alice:correct horse", NULL, now + 1, NULL), SY_BASIC_OK_CACHED);
    assert_int_equal(
        check_at(t, "alice:correct horse", NULL, now + SY_BASIC_CACHE_TTL_MS - 1, NULL),
        SY_BASIC_OK_CACHED);
    assert_int_equal(
        check_at(t, "alice:correct horse", NULL, now + SY_BASIC_CACHE_TTL_MS + 1, NULL),
        SY_BASIC_OK);
    /* A wrong password hashes once, then is answered from the failed
     * cache; another wrong password hashes again. */
    assert_int_equal(check_at(t, "alice:correct horsE", NULL, now, NULL), SY_BASIC_WRONG);
    assert_int_equal(check_at(t, "alice:correct horsE", NULL, now + 1, NULL),
                     SY_BASIC_WRONG_CACHED);
    assert_int_equal(check_at(t, "alice:correct horsF", NULL, now + 1, NULL), SY_BASIC_WRONG);
    assert_int_equal(
        check_at(t, "alice:correct horsE", NULL, now + SY_BASIC_FAILED_TTL_MS + 1, NULL),
        SY_BASIC_WRONG);
    sy_basic_users_free(t);

    /* A reload with a new hash for alice: the old password must stop
     * working at once, though it was just cached under the same name. */
    char *h2 = hash_with("$2b$", 4, "new password");
    t = one_user("cached", "alice", h2);
    assert_int_equal(check_at(t, "alice:correct horse", NULL, now + 2, NULL), SY_BASIC_WRONG);
    assert_int_equal(check_at(t, "alice:new password", NULL, now + 1, NULL), SY_BASIC_OK);
    sy_basic_users_free(t);
    free(h);
    free(h2);
}

static void test_unknown_user_costs_no_hash(void **state)
{
    (void)state;
    sy_basic_thread_reset();
    char *h = hash_with("$2b$", 4, "pw");
    sy_basic_users_t *t = one_user("p", "alice", h);
    unsigned wait;
    sy_basic_job_t *job = (sy_basic_job_t *)1;
    assert_int_equal(begin_at(t, "mallory:pw", NULL, 1000, &wait, &job), SY_BASIC_UNKNOWN_USER);
    assert_null(job);
    assert_int_equal(begin_at(t, "ALICE:pw", NULL, 1000, &wait, &job), SY_BASIC_UNKNOWN_USER);
    assert_int_equal(begin_at(t, "alice", NULL, 1000, &wait, &job), SY_BASIC_MISSING);
    assert_int_equal(begin_at(t, "alice:pw", NULL, 1000, &wait, &job), SY_BASIC_HASH_NEEDED);
    assert_non_null(job);
    /* The job owns copies: it survives the table (a reload mid-hash). */
    sy_basic_users_free(t);
    sy_basic_job_run(job);
    const char *user;
    assert_int_equal(sy_basic_job_finish(job, 1000, &user), SY_BASIC_OK);
    assert_string_equal(user, "alice");
    sy_basic_job_free(job);
    free(h);
}

static void test_throttle_per_address(void **state)
{
    (void)state;
    sy_basic_thread_reset();
    char *h = hash_with("$2b$", 4, "pw");
    sy_basic_users_t *t = one_user("p", "alice", h);
    uint64_t now = 5000000;
    unsigned wait = 0;
    /* alice signs in once from the attacked address: cached from now on. */
    assert_int_equal(check_at(t, "alice:pw", "192.0.2.1", now, NULL), SY_BASIC_OK);
    /* Unknown names count against the address too (they cost no hash). */
    for (int i = 0; i < SY_BASIC_THROTTLE_PER_ADDRESS; i++) {
        char creds[32];
        snprintf(creds, sizeof creds, "nobody%d:x", i);
        assert_int_equal(check_at(t, creds, "192.0.2.1", now + (uint64_t)i, NULL),
                         SY_BASIC_UNKNOWN_USER);
    }
    assert_int_equal(check_at(t, "nobody:x", "192.0.2.1", now + 1000, &wait), SY_BASIC_THROTTLED);
    assert_true(wait >= 1 && wait <= SY_BASIC_THROTTLE_WINDOW_MS / 1000);
    /* Throttled means no hash either, even for a right password... */
    sy_basic_job_t *job;
    sy_basic_users_t *t2 = one_user("p", "bob", h);
    assert_int_equal(begin_at(t2, "bob:pw", "192.0.2.1", now + 1000, &wait, &job),
                     SY_BASIC_THROTTLED);
    assert_null(job);
    /* ...but a verified, cached credential still passes. */
    assert_int_equal(check_at(t, "alice:pw", "192.0.2.1", now + 1000, NULL), SY_BASIC_OK_CACHED);
    /* Another address is not affected; the window ends. */
    assert_int_equal(check_at(t, "nobody:x", "192.0.2.2", now + 1000, NULL), SY_BASIC_UNKNOWN_USER);
    assert_int_equal(check_at(t, "nobody:x", "192.0.2.1", now + SY_BASIC_THROTTLE_WINDOW_MS, NULL),
                     SY_BASIC_UNKNOWN_USER);
    sy_basic_users_free(t);
    sy_basic_users_free(t2);
    free(h);
}

static void test_throttle_per_user(void **state)
{
    (void)state;
    sy_basic_thread_reset();
    char *h = hash_with("$2b$", 4, "pw");
    json_t *users = json_pack("{s:s,s:s}", "alice", h, "bob", h);
    sy_error_t err;
    sy_basic_users_t *t = sy_basic_users_build("p", users, &err);
    uint64_t now = 9000000;
    unsigned wait = 0;
    /* Wrong passwords for alice from many addresses (a botnet). */
    for (int i = 0; i < SY_BASIC_THROTTLE_PER_USER; i++) {
        char peer[32];
        snprintf(peer, sizeof peer, "198.51.100.%d", i);
        sy_basic_status_t s = check_at(t, "alice:wrong", peer, now, NULL);
        assert_true(s == SY_BASIC_WRONG || s == SY_BASIC_WRONG_CACHED);
    }
    assert_int_equal(check_at(t, "alice:pw", "203.0.113.9", now + 1, &wait), SY_BASIC_THROTTLED);
    assert_true(wait >= 1);
    /* bob is not affected. */
    assert_int_equal(check_at(t, "bob:pw", "203.0.113.9", now + 1, NULL), SY_BASIC_OK);
    /* A failure reported after its client left still counts: the job's
     * finish does the counting, not the answer. */
    sy_basic_thread_reset();
    for (int i = 0; i < SY_BASIC_THROTTLE_PER_USER; i++) {
        char creds[32];
        sy_basic_job_t *job;
        snprintf(creds, sizeof creds, "bob:wrong%d", i);
        assert_int_equal(begin_at(t, creds, NULL, now, &wait, &job), SY_BASIC_HASH_NEEDED);
        sy_basic_job_run(job);
        const char *user;
        assert_int_equal(sy_basic_job_finish(job, now, &user), SY_BASIC_WRONG);
        sy_basic_job_free(job);
    }
    assert_int_equal(check_at(t, "bob:pw", NULL, now + 1, NULL), SY_BASIC_THROTTLED);
    sy_basic_users_free(t);
    json_decref(users);
    free(h);
}

/* A syntactically fine hash of `prefix` followed by filler. */
static void expect_refused(const char *hash, const char *needle)
{
    json_t *users = json_pack("{s:s}", "alice", hash);
    sy_error_t err;
    sy_basic_users_t *t = sy_basic_users_build("p", users, &err);
    if (t)
        fail_msg("%s: accepted", hash);
    if (!strstr(err.message, needle))
        fail_msg("%s: message \"%s\" lacks \"%s\"", hash, err.message, needle);
    assert_non_null(strstr(err.message, "users.alice"));
    json_decref(users);
}

static void expect_accepted(const char *hash)
{
    json_t *users = json_pack("{s:s}", "alice", hash);
    sy_error_t err;
    sy_basic_users_t *t = sy_basic_users_build("p", users, &err);
    if (!t)
        fail_msg("%s: %s", hash, err.message);
    sy_basic_users_free(t);
    json_decref(users);
}

static void test_cost_limits(void **state)
{
    (void)state;
    static const char bcrypt_tail[] = "THTU58oheOFT9e6J6z.cwuEqGCXTwKn1Qz4PZnjfMvg7m9vpqoBg2";
    char h[128];
    snprintf(h, sizeof h, "$2y$12$%s", bcrypt_tail);
    expect_accepted(h);
    snprintf(h, sizeof h, "$2b$13$%s", bcrypt_tail);
    expect_refused(h, "bcrypt cost 13 is above the maximum 12");
    snprintf(h, sizeof h, "$2y$31$%s", bcrypt_tail);
    expect_refused(h, "bcrypt cost 31");
    snprintf(h, sizeof h, "$2y$03$%s", bcrypt_tail);
    expect_refused(h, "malformed bcrypt hash");

    expect_accepted("$6$rounds=500000$saltsalt$abcdefghijklmnop");
    expect_accepted("$5$rounds=1000$saltsalt$abcdefghijklmnop");
    expect_accepted("$6$saltsalt$abcdefghijklmnop"); /* default 5000 */
    expect_refused("$6$rounds=500001$saltsalt$abcdefghijklmnop",
                   "sha-crypt rounds=500001 is above the maximum 500000");
    expect_refused("$6$rounds=999999999$saltsalt$abcdefghijklmnop", "rounds=999999999");
    expect_refused("$5$rounds=99999999999999999999$salt$abcdefghijklmnop", "above the maximum");
    expect_refused("$6$rounds=$salt$abcdefghijklmnop", "malformed sha-crypt rounds");

    expect_accepted("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6");
    expect_accepted("$y$jAT$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6");
    expect_refused("$y$jBT$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6",
                   "need 64 MiB per check, above the maximum 32 MiB");
    expect_refused("$y$jFT$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6",
                   "yescrypt parameters jFT");
    expect_refused("$y$j9T5$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6",
                   "unsupported yescrypt parameters");
    expect_refused("$y$z9T$F5Jx5fExrKuPp53xLKQ..1$92Sl/2WF.Q3oRU6U.rRSj/hsUskGst80a9w5.2xK/y6",
                   "unsupported yescrypt parameters");

    /* Hashes made by libxcrypt at the ceilings verify. */
    char *made = hash_with("$2b$", SY_BASIC_MAX_BCRYPT_COST, "pw");
    expect_accepted(made);
    free(made);
    made = hash_with("$y$", 6, "pw");
    expect_accepted(made);
    free(made);
    made = hash_with("$y$", 7, "pw");
    expect_refused(made, "above the maximum");
    free(made);
}

static void test_policy_path(void **state)
{
    (void)state;
    char *h = hash_with("$6$", 0, "pw");
    json_t *config =
        json_pack("{s:s,s:s,s:{s:s}}", "type", "basic", "realm", "partners", "users", "bob", h);
    sy_error_t err;
    sy_auth_policy_t policy = {.name = "partners", .type = SY_AUTH_BASIC};
    policy.config = sy_auth_config_parse("partners", config, "auth_policies.partners", &err);
    assert_non_null(policy.config);
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
    sy_auth_config_free(policy.config);
    json_decref(config);
    free(h);
}

static int done_calls;

static void on_done(void *arg)
{
    (void)arg;
    done_calls++;
}

/* The worker's path: the hash is queued on the loop's threadpool, the
 * answer arrives through done; a client gone before the hash finishes is
 * never called back, yet its failure still counts. */
static void test_queued_on_loop(void **state)
{
    (void)state;
    sy_basic_thread_reset();
    char *h = hash_with("$2b$", 4, "pw");
    json_t *config = json_pack("{s:s,s:{s:s}}", "type", "basic", "users", "bob", h);
    sy_error_t err;
    sy_auth_policy_t policy = {.name = "q", .type = SY_AUTH_BASIC};
    policy.config = sy_auth_config_parse("q", config, "auth_policies.q", &err);
    assert_non_null(policy.config);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sy_auth_context_t ctx = {&loop, 0, "192.0.2.7"};
    sy_http_header_t hdr = {SY_SLICE_LIT("authorization"), SY_SLICE_LIT(""), SY_HDR_AUTHORIZATION};
    sy_http_request_t req = {.headers = &hdr, .header_count = 1};
    sy_auth_result_t *r = calloc(SY_AUTH_MAX_HASHES_IN_FLIGHT + 1, sizeof *r);
    sy_auth_pending_t *pending;

    char *good = basic_header("bob:pw");
    hdr.value = sy_slice_cstr(good);
    done_calls = 0;
    assert_false(sy_auth_start(&policy, &req, &ctx, &r[0], on_done, NULL, &pending));
    assert_non_null(pending);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done_calls, 1);
    assert_int_equal(r[0].status, 0);
    assert_string_equal(r[0].subject, "bob");
    /* Now cached: decided at once. */
    assert_true(sy_auth_start(&policy, &req, &ctx, &r[0], on_done, NULL, &pending));
    assert_null(pending);
    assert_int_equal(r[0].status, 0);

    /* The queue is bounded: one more than fits is answered 503 at once. */
    char creds[32];
    char *bad[SY_AUTH_MAX_HASHES_IN_FLIGHT + 1];
    sy_auth_pending_t *p[SY_AUTH_MAX_HASHES_IN_FLIGHT + 1];
    done_calls = 0;
    for (int i = 0; i <= SY_AUTH_MAX_HASHES_IN_FLIGHT; i++) {
        snprintf(creds, sizeof creds, "bob:wrong%d", i);
        bad[i] = basic_header(creds);
        hdr.value = sy_slice_cstr(bad[i]);
        bool now = sy_auth_start(&policy, &req, &ctx, &r[i], on_done, NULL, &p[i]);
        assert_int_equal(now, i == SY_AUTH_MAX_HASHES_IN_FLIGHT);
    }
    assert_int_equal(r[SY_AUTH_MAX_HASHES_IN_FLIGHT].status, 503);
    assert_int_equal(r[SY_AUTH_MAX_HASHES_IN_FLIGHT].retry_after, 1);
    /* The first client leaves before its hash is done. */
    sy_auth_abandon(p[0]);
    memset(&r[0], 0xAA, sizeof r[0]);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done_calls, SY_AUTH_MAX_HASHES_IN_FLIGHT - 1);
    assert_int_equal(r[0].status, (int)0xAAAAAAAA); /* untouched */
    for (int i = 1; i < SY_AUTH_MAX_HASHES_IN_FLIGHT; i++) {
        assert_int_equal(r[i].status, 401);
        assert_string_equal(r[i].www_authenticate, "Basic realm=\"q\"");
    }
    /* Every failure counted, the abandoned one included: the user
     * throttle trips after SY_BASIC_THROTTLE_PER_USER of them. */
    for (int i = SY_AUTH_MAX_HASHES_IN_FLIGHT; i < SY_BASIC_THROTTLE_PER_USER; i++) {
        snprintf(creds, sizeof creds, "bob:again%d", i);
        char *v = basic_header(creds);
        hdr.value = sy_slice_cstr(v);
        if (!sy_auth_start(&policy, &req, &ctx, &r[1], on_done, NULL, &pending))
            uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(r[1].status, 401);
        free(v);
    }
    char *v = basic_header("bob:another");
    hdr.value = sy_slice_cstr(v);
    assert_true(sy_auth_start(&policy, &req, &ctx, &r[1], on_done, NULL, &pending));
    assert_int_equal(r[1].status, 429);
    assert_true(r[1].retry_after >= 1);
    assert_string_equal(r[1].www_authenticate, "");
    /* bob's cached right password still passes. */
    hdr.value = sy_slice_cstr(good);
    assert_true(sy_auth_start(&policy, &req, &ctx, &r[1], on_done, NULL, &pending));
    assert_int_equal(r[1].status, 0);
    free(v);

    for (int i = 0; i <= SY_AUTH_MAX_HASHES_IN_FLIGHT; i++)
        free(bad[i]);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(good);
    free(r);
    sy_auth_config_free(policy.config);
    json_decref(config);
    free(h);
}

typedef struct {
    const sy_auth_policy_t *policy;
    const char *creds[2];
    bool decided_now[2];
    int status[2];
} other_worker_t;

/* Another worker thread with its own loop: two wrong passwords. */
static void *other_worker(void *arg)
{
    other_worker_t *o = arg;
    uv_loop_t loop;
    uv_loop_init(&loop);
    sy_auth_context_t ctx = {&loop, 1, "192.0.2.99"};
    sy_auth_result_t *r = calloc(2, sizeof *r);
    char *v[2];
    for (int i = 0; i < 2; i++) {
        sy_http_header_t hdr = {SY_SLICE_LIT("authorization"), SY_SLICE_LIT(""),
                                SY_HDR_AUTHORIZATION};
        sy_http_request_t req = {.headers = &hdr, .header_count = 1};
        sy_auth_pending_t *pending;
        v[i] = basic_header(o->creds[i]);
        hdr.value = sy_slice_cstr(v[i]);
        o->decided_now[i] = sy_auth_start(o->policy, &req, &ctx, &r[i], on_done, NULL, &pending);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 2; i++) {
        o->status[i] = r[i].status;
        free(v[i]);
    }
    uv_loop_close(&loop);
    free(r);
    sy_basic_thread_reset();
    return NULL;
}

/* One pool thread always stays free of hashes for getaddrinfo: with the
 * default pool of 4, two workers together queue at most 3. */
static void test_pool_keeps_a_thread_for_dns(void **state)
{
    (void)state;
    unsetenv("UV_THREADPOOL_SIZE");
    sy_basic_thread_reset();
    char *h = hash_with("$2b$", 4, "pw");
    json_t *config = json_pack("{s:s,s:{s:s}}", "type", "basic", "users", "bob", h);
    sy_error_t err;
    sy_auth_policy_t policy = {.name = "pool", .type = SY_AUTH_BASIC};
    policy.config = sy_auth_config_parse("pool", config, "auth_policies.pool", &err);
    assert_non_null(policy.config);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sy_auth_context_t ctx = {&loop, 0, "192.0.2.98"};
    sy_auth_result_t *r = calloc(2, sizeof *r);
    char *v[2];
    done_calls = 0;
    /* This worker queues its 2; their slots stay taken until its loop
     * runs after_hash, so the count below is exact. */
    for (int i = 0; i < 2; i++) {
        sy_http_header_t hdr = {SY_SLICE_LIT("authorization"), SY_SLICE_LIT(""),
                                SY_HDR_AUTHORIZATION};
        sy_http_request_t req = {.headers = &hdr, .header_count = 1};
        sy_auth_pending_t *pending;
        v[i] = basic_header(i ? "bob:w1" : "bob:w0");
        hdr.value = sy_slice_cstr(v[i]);
        assert_false(sy_auth_start(&policy, &req, &ctx, &r[i], on_done, NULL, &pending));
    }
    other_worker_t o = {&policy, {"bob:w2", "bob:w3"}, {true, true}, {0, 0}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_worker, &o), 0);
    pthread_join(t, NULL);
    assert_false(o.decided_now[0]); /* the pool's third hash */
    assert_true(o.decided_now[1]);  /* a fourth would leave no thread for DNS */
    assert_int_equal(o.status[0], 401);
    assert_int_equal(o.status[1], 503);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done_calls, 3); /* the other worker's one (joined above) and our two */
    assert_int_equal(r[0].status, 401);
    assert_int_equal(r[1].status, 401);
    for (int i = 0; i < 2; i++)
        free(v[i]);
    free(r);
    uv_loop_close(&loop);
    sy_auth_config_free(policy.config);
    json_decref(config);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_scheme),
        cmocka_unit_test(test_plain_text_refused),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_unknown_user_costs_no_hash),
        cmocka_unit_test(test_throttle_per_address),
        cmocka_unit_test(test_throttle_per_user),
        cmocka_unit_test(test_cost_limits),
        cmocka_unit_test(test_queued_on_loop),
        cmocka_unit_test(test_pool_keeps_a_thread_for_dns),
        cmocka_unit_test(test_policy_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
