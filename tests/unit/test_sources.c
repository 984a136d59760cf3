/*
 * test_sources.c: the control plane on file sources. Loads two temp files,
 * edits them (also keeping the mtime, so only the content hash can tell),
 * runs poll cycles directly, and checks what gets published: a new
 * generation on a change, nothing on no change, the last good snapshot
 * kept (with the error in the status) while a file is broken, and recovery
 * once it is fixed. The poller thread is checked for start/stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/credentials.h"
#include "aws_stub_server.h"
#include "control/sources.h"
#include "core/log.h"
#include "core/metrics.h"
#include "policy/snapshot.h"

typedef struct {
    char dir[64];
    char policy[128];
    char routes[128];
} files_t;

static const char policy_a[] =
    "{\"listen_domains\": [\"api.example.com\"],\n"
    " \"destinations\": [{\"host\": \"orders.internal.example.com\", \"port\": 443},\n"
    "                    {\"host\": \"users.internal.example.com\", \"port\": 443}],\n"
    " \"auth_policies\": {\"public\": {\"type\": \"none\"}},\n"
    " \"default_auth\": \"public\"}\n";

/* Drops users.internal: /users becomes rejected. */
static const char policy_b[] =
    "{\"listen_domains\": [\"api.example.com\"],\n"
    " \"destinations\": [{\"host\": \"orders.internal.example.com\", \"port\": 443}],\n"
    " \"auth_policies\": {\"public\": {\"type\": \"none\"}},\n"
    " \"default_auth\": \"public\"}\n";

static const char routes_a[] =
    "[{\"path\": \"/orders\", \"target\": \"https://orders.internal.example.com/prod\"},\n"
    " {\"path\": \"/users\", \"target\": \"https://users.internal.example.com\"}]\n";

/* Same length as routes_a, one byte different: /orderz. */
static const char routes_b[] =
    "[{\"path\": \"/orderz\", \"target\": \"https://orders.internal.example.com/prod\"},\n"
    " {\"path\": \"/users\", \"target\": \"https://users.internal.example.com\"}]\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Rewrites a file and puts its old mtime back, as a copy tool that keeps
 * timestamps would: only the content can show the change. */
static void write_file_same_mtime(const char *path, const char *text)
{
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    write_file(path, text);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    assert_int_equal(after.st_size, before.st_size);
}

static int setup(void **state)
{
    files_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sy_sources_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->policy, sizeof f->policy, "%s/policy.json", f->dir);
    snprintf(f->routes, sizeof f->routes, "%s/routes.json", f->dir);
    write_file(f->policy, policy_a);
    write_file(f->routes, routes_a);
    sy_snapshot_reset_for_tests();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    files_t *f = *state;
    sy_sources_stop();
    sy_snapshot_reset_for_tests();
    unlink(f->policy);
    unlink(f->routes);
    rmdir(f->dir);
    free(f);
    return 0;
}

static bool load(files_t *f, sy_error_t *err)
{
    char policy_uri[160];
    snprintf(policy_uri, sizeof policy_uri, "file://%s", f->policy); /* both URI forms */
    sy_sources_config_t cfg = {policy_uri, f->routes, 60, 300, false};
    return sy_sources_load_initial(&cfg, err);
}

static bool serves(const sy_snapshot_t *snap, const char *path)
{
    size_t matched = 0;
    const sy_route_t *r =
        sy_snapshot_match(snap, SY_SLICE_LIT("api.example.com"), sy_slice_cstr(path), &matched);
    return r && !r->rejected_reason;
}

static void test_initial_load(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    assert_null(sy_snapshot_acquire());
    assert_true(load(f, &err));
    sy_snapshot_t *snap = sy_snapshot_acquire();
    assert_non_null(snap);
    assert_int_equal(snap->active_count, 2);
    assert_int_equal(snap->rejected_count, 0);
    assert_true(serves(snap, "/orders/1"));
    assert_true(strncmp(snap->policy_version.version, "sha256:", 7) == 0);
    assert_int_equal(strlen(snap->policy_version.version), 7 + 16);
    assert_string_not_equal(snap->policy_version.version, snap->routes_version.version);
    assert_true(snap->routes_version.loaded_at > 0);
    assert_string_equal(snap->routes_version.source, f->routes);
    /* Every route with a path carries its metrics handle. */
    for (size_t i = 0; i < snap->routes->count; i++)
        assert_ptr_equal(snap->routes->items[i].stats,
                         sy_metrics_route(snap->routes->items[i].path));

    sy_store_status_t st[2];
    sy_sources_status(st);
    assert_true(strstr(st[0].source, "policy.json") != NULL);
    assert_string_equal(st[0].version, snap->policy_version.version);
    assert_string_equal(st[1].version, snap->routes_version.version);
    assert_true(st[0].last_success > 0 && st[1].last_success > 0);
    assert_string_equal(st[0].last_error, "");
    assert_int_equal(st[0].consecutive_failures, 0);
    sy_snapshot_unref(snap);
}

static void test_unchanged_poll_publishes_nothing(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    assert_true(load(f, &err));
    uint64_t gen = sy_snapshot_current_generation();
    sy_store_status_t before[2], after[2];
    sy_sources_status(before);
    assert_true(sy_sources_poll_now());
    assert_true(sy_sources_poll_now());
    assert_int_equal(sy_snapshot_current_generation(), gen);
    sy_sources_status(after);
    assert_int_equal(after[0].reloads_ok, before[0].reloads_ok);
    assert_int_equal(after[1].reloads_ok, before[1].reloads_ok);
    assert_int_equal(after[1].reloads_failed, 0);
    assert_true(after[1].last_attempt >= before[1].last_attempt);
}

static void test_content_change_same_mtime(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    assert_true(load(f, &err));
    sy_snapshot_t *old = sy_snapshot_acquire();
    uint64_t gen = sy_snapshot_current_generation();

    write_file_same_mtime(f->routes, routes_b);
    assert_true(sy_sources_poll_now());
    assert_int_equal(sy_snapshot_current_generation(), gen + 1);
    sy_snapshot_t *snap = sy_snapshot_acquire();
    assert_ptr_not_equal(snap, old);
    assert_true(serves(snap, "/orderz"));
    assert_false(serves(snap, "/orders"));
    /* The old snapshot a request may still hold is untouched. */
    assert_true(serves(old, "/orders"));
    assert_string_not_equal(snap->routes_version.version, old->routes_version.version);
    assert_string_equal(snap->policy_version.version, old->policy_version.version);

    sy_store_status_t st[2];
    sy_sources_status(st);
    assert_int_equal(st[1].reloads_ok, 2); /* initial load + this change */
    assert_int_equal(st[0].reloads_ok, 1);
    assert_string_equal(st[1].version, snap->routes_version.version);
    sy_snapshot_unref(snap);
    sy_snapshot_unref(old);
}

static void test_policy_change_reuses_routes(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    assert_true(load(f, &err));
    write_file(f->policy, policy_b);
    assert_true(sy_sources_poll_now());
    sy_snapshot_t *snap = sy_snapshot_acquire();
    /* The routes were re-parsed from the kept text and checked against the
     * new policy: /users' destination is gone. */
    assert_int_equal(snap->routes->count, 2);
    assert_int_equal(snap->active_count, 1);
    assert_int_equal(snap->rejected_count, 1);
    assert_true(serves(snap, "/orders"));
    assert_false(serves(snap, "/users"));
    sy_store_status_t st[2];
    sy_sources_status(st);
    assert_int_equal(st[0].reloads_ok, 2);
    assert_int_equal(st[1].reloads_ok, 1);
    sy_snapshot_unref(snap);
}

static void test_broken_file_keeps_last_good(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    assert_true(load(f, &err));
    sy_snapshot_t *good = sy_snapshot_acquire();
    uint64_t gen = sy_snapshot_current_generation();

    write_file(f->policy, "{\"listen_domains\": [\"api.example.com\"],\n  oops }\n");
    assert_false(sy_sources_poll_now());
    assert_false(sy_sources_poll_now());
    assert_int_equal(sy_snapshot_current_generation(), gen);
    sy_snapshot_t *snap = sy_snapshot_acquire();
    assert_ptr_equal(snap, good);
    sy_snapshot_unref(snap);

    sy_store_status_t st[2];
    sy_sources_status(st);
    assert_true(strstr(st[0].last_error, "policy.json") != NULL);
    assert_true(st[0].last_error_time > 0);
    assert_int_equal(st[0].consecutive_failures, 2);
    assert_int_equal(st[0].reloads_failed, 2);
    assert_string_equal(st[0].version, good->policy_version.version);
    /* The other store is fine. */
    assert_string_equal(st[1].last_error, "");
    assert_int_equal(st[1].consecutive_failures, 0);

    /* While the policy is broken, a routes change still applies, with the
     * last good policy. */
    write_file(f->routes, routes_b);
    assert_false(sy_sources_poll_now());
    assert_int_equal(sy_snapshot_current_generation(), gen + 1);
    snap = sy_snapshot_acquire();
    assert_true(serves(snap, "/orderz"));
    assert_string_equal(snap->policy_version.version, good->policy_version.version);
    sy_snapshot_unref(snap);

    /* A file that disappears is an error too, naming the file. */
    unlink(f->routes);
    assert_false(sy_sources_poll_now());
    sy_sources_status(st);
    assert_true(strstr(st[1].last_error, "routes.json") != NULL);
    assert_int_equal(st[1].consecutive_failures, 1);
    assert_int_equal(st[0].consecutive_failures, 4);

    /* Fixed: recovers, errors clear, a new generation is served. */
    write_file(f->policy, policy_b);
    write_file(f->routes, routes_a);
    assert_true(sy_sources_poll_now());
    sy_sources_status(st);
    assert_string_equal(st[0].last_error, "");
    assert_string_equal(st[1].last_error, "");
    assert_int_equal(st[0].consecutive_failures, 0);
    assert_int_equal(st[1].consecutive_failures, 0);
    assert_int_equal(st[0].reloads_failed, 4);
    snap = sy_snapshot_acquire();
    /* Each store is polled (and applied) on its own: the policy fix and
     * the routes fix are one publish each. */
    assert_int_equal(snap->generation, gen + 3);
    assert_true(serves(snap, "/orders"));
    assert_false(serves(snap, "/users")); /* policy_b is in force */
    assert_string_not_equal(snap->policy_version.version, good->policy_version.version);
    sy_snapshot_unref(snap);
    sy_snapshot_unref(good);
}

static void test_initial_failure_publishes_nothing(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    write_file(f->routes, "[{\"path\": \"/a\", \"target\": \"https://x\"},\n");
    assert_false(load(f, &err));
    assert_true(strstr(err.message, "routes.json") != NULL);
    assert_null(sy_snapshot_acquire());
    sy_store_status_t st[2];
    sy_sources_status(st);
    assert_int_equal(st[1].consecutive_failures, 1);
    /* The policy was fine and is kept for when the routes load; nothing
     * was published. */
    assert_string_equal(st[0].last_error, "");

    /* A poll after the fix completes the initial load. */
    write_file(f->routes, routes_a);
    assert_true(sy_sources_poll_now());
    sy_snapshot_t *snap = sy_snapshot_acquire();
    assert_non_null(snap);
    assert_int_equal(snap->active_count, 2);
    sy_snapshot_unref(snap);
}

static void test_bad_and_missing_sources(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    /* Malformed URIs are usage errors at once, never retried. */
    sy_sources_config_t cfg = {"s3://bucket", f->routes, 10, 300, false};
    assert_false(sy_sources_load_initial(&cfg, &err));
    assert_true(strstr(err.message, "s3://bucket") != NULL);

    cfg = (sy_sources_config_t){"dynamodb://table", f->routes, 10, 300, false};
    assert_false(sy_sources_load_initial(&cfg, &err));
    assert_true(strstr(err.message, "holds routes") != NULL);

    cfg = (sy_sources_config_t){f->policy, "ftp://x/routes.json", 10, 300, false};
    assert_false(sy_sources_load_initial(&cfg, &err));
    assert_true(strstr(err.message, "ftp://") != NULL);

    cfg = (sy_sources_config_t){f->policy, "file://otherhost/routes.json", 10, 300, false};
    assert_false(sy_sources_load_initial(&cfg, &err));
    assert_true(strstr(err.message, "file://otherhost") != NULL);

    cfg = (sy_sources_config_t){"/nonexistent/policy.json", f->routes, 10, 300, false};
    assert_false(sy_sources_load_initial(&cfg, &err));
    assert_true(strstr(err.message, "/nonexistent/policy.json") != NULL);
    assert_null(sy_snapshot_acquire());
}

static void test_load_once(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    write_file(f->policy, policy_b);
    sy_snapshot_t *snap = sy_sources_load_once(f->policy, f->routes, &err);
    assert_non_null(snap);
    assert_int_equal(snap->active_count, 1);
    assert_int_equal(snap->rejected_count, 1);
    assert_true(strncmp(snap->routes_version.version, "sha256:", 7) == 0);
    assert_null(sy_snapshot_acquire()); /* never published */
    sy_snapshot_unref(snap);

    write_file(f->policy, "{\"listen_domains\": [], \"bogus\": 1}");
    assert_null(sy_sources_load_once(f->policy, f->routes, &err));
    assert_true(strstr(err.message, "policy.json") != NULL);
}

/* ---- remote stores, against a loopback stub ---- */

#define JSON_OK                                                                                    \
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nConnection: close\r\n\r\n"

static void use_stub(const char *variable, const stub_server_t *stub)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", stub->port);
    setenv(variable, endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_REGION", "eu-west-1", 1);
    sy_aws_credentials_reset();
}

static char *s3_answer(const char *etag, const char *body)
{
    char *out = NULL;
    assert_true(asprintf(&out,
                         "HTTP/1.1 200 OK\r\nETag: %s\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s",
                         etag, strlen(body), body) > 0);
    return out;
}

static void test_s3_policy_conditional_get(void **state)
{
    files_t *f = *state;
    char *v1 = s3_answer("\"v1\"", policy_a), *v2 = s3_answer("\"v2\"", policy_b);
    stub_server_t stub = {.answers = {v1,
                                      "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n"
                                      "Connection: close\r\n\r\n",
                                      v2},
                          .answer_count = 3};
    stub_start(&stub);
    use_stub("AWS_ENDPOINT_URL_S3", &stub);

    sy_error_t err = {{0}};
    sy_sources_config_t cfg = {"s3://config-bucket/policy.json", f->routes, 60, 300, false};
    assert_true(sy_sources_load_initial(&cfg, &err));
    sy_snapshot_t *snap = sy_snapshot_acquire();
    assert_non_null(snap);
    assert_string_equal(snap->policy_version.version, "\"v1\"");
    assert_string_equal(snap->policy_version.source, "s3://config-bucket/policy.json");
    assert_int_equal(snap->active_count, 2);
    sy_snapshot_unref(snap);
    uint64_t gen = sy_snapshot_current_generation();

    assert_true(sy_sources_poll_now()); /* 304: nothing to do */
    assert_int_equal(sy_snapshot_current_generation(), gen);
    assert_true(sy_sources_poll_now()); /* v2 */
    assert_int_equal(sy_snapshot_current_generation(), gen + 1);
    snap = sy_snapshot_acquire();
    assert_string_equal(snap->policy_version.version, "\"v2\"");
    assert_int_equal(snap->rejected_count, 1); /* routes re-checked against v2 */
    sy_snapshot_unref(snap);

    stub_stop(&stub);
    assert_int_equal(stub.request_count, 3);
    assert_null(strcasestr(stub.requests[0], "if-none-match"));
    assert_non_null(strcasestr(stub.requests[1], "\r\nif-none-match: \"v1\"\r\n"));
    assert_non_null(strcasestr(stub.requests[2], "\r\nif-none-match: \"v1\"\r\n"));
    stub_free(&stub);
    free(v1);
    free(v2);
}

/* Issue 16: the same bytes under a new ETag are no change (no rebuild),
 * and the next GET is conditional on the new ETag; a 304 to an
 * unconditional GET is an error of the S3 store. */
static void test_s3_new_etag_same_bytes(void **state)
{
    files_t *f = *state;
    char *v1 = s3_answer("\"v1\"", policy_a), *v2 = s3_answer("\"v2\"", policy_a);
    stub_server_t stub = {.answers = {v1, v2,
                                      "HTTP/1.1 304 Not Modified\r\nETag: \"v2\"\r\n"
                                      "Connection: close\r\n\r\n"},
                          .answer_count = 3};
    stub_start(&stub);
    use_stub("AWS_ENDPOINT_URL_S3", &stub);
    sy_error_t err = {{0}};
    sy_sources_config_t cfg = {"s3://config-bucket/policy.json", f->routes, 60, 300, false};
    assert_true(sy_sources_load_initial(&cfg, &err));
    uint64_t gen = sy_snapshot_current_generation();
    assert_true(sy_sources_poll_now()); /* v2, same bytes */
    assert_int_equal(sy_snapshot_current_generation(), gen);
    assert_true(sy_sources_poll_now()); /* 304 on v2 */
    assert_int_equal(sy_snapshot_current_generation(), gen);
    stub_stop(&stub);
    assert_int_equal(stub.request_count, 3);
    assert_non_null(strcasestr(stub.requests[2], "\r\nif-none-match: \"v2\"\r\n"));
    stub_free(&stub);
    free(v1);
    free(v2);
    sy_sources_stop();

    stub_server_t odd = {.answers = {"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"},
                         .answer_count = 1};
    stub_start(&odd);
    use_stub("AWS_ENDPOINT_URL_S3", &odd);
    assert_true(sy_sources_load_initial(&cfg, &err));
    sy_store_status_t st[2];
    sy_sources_status(st);
    assert_non_null(strstr(st[0].last_error, "304 Not Modified to an unconditional GET"));
    assert_string_equal(st[1].last_error, "");
    stub_stop(&odd);
    stub_free(&odd);
}

static void test_remote_failure_at_start_is_retried(void **state)
{
    files_t *f = *state;
    char *ok = s3_answer("\"v1\"", policy_a);
    stub_server_t stub = {.answers = {"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
                                      "Connection: close\r\n\r\n<Error><Code>AccessDenied</Code>"
                                      "<Message>Access Denied</Message></Error>",
                                      ok},
                          .answer_count = 2};
    stub_start(&stub);
    use_stub("AWS_ENDPOINT_URL_S3", &stub);

    sy_error_t err = {{0}};
    sy_sources_config_t cfg = {"s3://config-bucket/policy.json", f->routes, 60, 300, false};
    /* Not a start failure: the store may be back in a moment. */
    assert_true(sy_sources_load_initial(&cfg, &err));
    assert_null(sy_snapshot_acquire());
    sy_store_status_t st[2];
    sy_sources_status(st);
    assert_true(strstr(st[0].last_error, "s3://config-bucket/policy.json") != NULL);
    assert_int_equal(st[0].consecutive_failures, 1);

    assert_true(sy_sources_poll_now());
    sy_snapshot_t *snap = sy_snapshot_acquire();
    assert_non_null(snap);
    assert_int_equal(snap->active_count, 2);
    sy_snapshot_unref(snap);
    stub_stop(&stub);
    stub_free(&stub);
    free(ok);
}

#define MARKER(n) JSON_OK "{\"Item\":{\"generation\":{\"N\":\"" n "\"}}}"

static void test_dynamodb_routes(void **state)
{
    files_t *f = *state;
    /* Each poll reads the change marker; the table is Scanned at start
     * and when the marker moved. The same table in a different order is
     * no change; the pipeline's own attribute (build_id) is tolerated. */
    stub_server_t stub = {
        .answers = {MARKER("1"),
                    JSON_OK "{\"Items\":[{\"path\":{\"S\":\"/orders\"},\"target\":{\"S\":"
                            "\"https://orders.internal.example.com/prod\"},\"build_id\":{\"N\":"
                            "\"42\"}},{\"path\":{\"S\":\"/users\"},\"target\":{\"S\":"
                            "\"https://users.internal.example.com\"},\"enabled\":{\"BOOL\":true}},"
                            "{\"path\":{\"S\":\"#generation\"},\"generation\":{\"N\":\"1\"}}],"
                            "\"Count\":3}",
                    MARKER("2"),
                    JSON_OK "{\"Items\":[{\"enabled\":{\"BOOL\":true},\"target\":{\"S\":"
                            "\"https://users.internal.example.com\"},\"path\":{\"S\":\"/users\"}},"
                            "{\"path\":{\"S\":\"/orders\"},\"target\":{\"S\":"
                            "\"https://orders.internal.example.com/prod\"},\"build_id\":{\"N\":"
                            "\"42\"}}],\"Count\":2}",
                    MARKER("2"), MARKER("3"),
                    JSON_OK "{\"Items\":[{\"path\":{\"S\":\"/orders\"},\"target\":{\"S\":"
                            "\"https://elsewhere.example.com\"}}],\"Count\":1}"},
        .answer_count = 7};
    stub_start(&stub);
    use_stub("AWS_ENDPOINT_URL_DYNAMODB", &stub);

    sy_error_t err = {{0}};
    sy_sources_config_t cfg = {f->policy, "dynamodb://routes-table", 60, 300, false};
    assert_true(sy_sources_load_initial(&cfg, &err));
    sy_snapshot_t *snap = sy_snapshot_acquire();
    assert_non_null(snap);
    assert_int_equal(snap->active_count, 2); /* the marker is not a route */
    assert_int_equal(snap->rejected_count, 0);
    assert_true(serves(snap, "/orders/1"));
    assert_true(strncmp(snap->routes_version.version, "sha256:", 7) == 0);
    sy_snapshot_unref(snap);
    uint64_t gen = sy_snapshot_current_generation();

    assert_true(sy_sources_poll_now()); /* marker moved; same items, other order */
    assert_int_equal(sy_snapshot_current_generation(), gen);
    assert_true(sy_sources_poll_now()); /* marker still: no Scan */
    assert_int_equal(sy_snapshot_current_generation(), gen);
    assert_true(sy_sources_poll_now()); /* marker moved: Scan, changed */
    assert_int_equal(sy_snapshot_current_generation(), gen + 1);
    snap = sy_snapshot_acquire();
    assert_int_equal(snap->routes->count, 1);
    assert_int_equal(snap->rejected_count, 1); /* not an allowed destination */
    sy_snapshot_unref(snap);
    stub_stop(&stub);
    assert_int_equal(stub.request_count, 7);
    static const char *const expected[] = {"GetItem", "Scan",    "GetItem", "Scan",
                                           "GetItem", "GetItem", "Scan"};
    for (int i = 0; i < 7; i++) {
        char target[64];
        snprintf(target, sizeof target, "x-amz-target: DynamoDB_20120810.%s\r\n", expected[i]);
        assert_non_null(strcasestr(stub.requests[i], target));
        assert_non_null(strstr(stub.requests[i], "\"ConsistentRead\":true"));
    }
    assert_non_null(strstr(stub.requests[0], "\"#generation\""));
    stub_free(&stub);
}

static void test_poller_thread(void **state)
{
    files_t *f = *state;
    sy_error_t err = {{0}};
    sy_sources_config_t cfg = {f->policy, f->routes, 0.02, 300, false};
    assert_true(sy_sources_load_initial(&cfg, &err));
    uint64_t gen = sy_snapshot_current_generation();
    assert_true(sy_sources_start(&err));
    write_file(f->routes, routes_b);
    /* The poller runs every ~20 ms; give it up to 5 s. */
    for (int i = 0; i < 500 && sy_snapshot_current_generation() == gen; i++)
        usleep(10000);
    assert_int_equal(sy_snapshot_current_generation(), gen + 1);

    /* Stop wakes a long sleep at once instead of waiting it out. */
    sy_sources_stop();
    cfg.poll_interval_s = 3600;
    assert_true(sy_sources_load_initial(&cfg, &err));
    assert_true(sy_sources_start(&err));
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    sy_sources_stop();
    gettimeofday(&t1, NULL);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
    assert_true(took < 1.0);
}

int main(void)
{
    sy_log_set_level(SY_LOG_ERROR);
    sy_metrics_init(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_initial_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_new_etag_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_poll_publishes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_change_same_mtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_change_reuses_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_file_keeps_last_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initial_failure_publishes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_and_missing_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_policy_conditional_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_failure_at_start_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dynamodb_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poller_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
