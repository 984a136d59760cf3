/*
 * test_s3.c: the S3 policy source: URI parsing, addressing, and a signed
 * conditional GetObject against a loopback stub (ETag, 304, error bodies,
 * expected bucket owner, retry on 5xx).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/s3.h"
#include "aws_stub_server.h"

static void test_parse_uri(void **state)
{
    (void)state;
    sy_s3_location_t loc;
    sy_error_t err = {{0}};
    assert_true(sy_s3_parse_uri("s3://my-bucket/config/policy.json", &loc, &err));
    assert_string_equal(loc.bucket, "my-bucket");
    assert_string_equal(loc.key, "config/policy.json");
    assert_null(loc.expected_owner);
    sy_s3_location_free(&loc);
    assert_true(
        sy_s3_parse_uri("s3://b.with.dots/k?expected_bucket_owner=123456789012", &loc, &err));
    assert_string_equal(loc.expected_owner, "123456789012");
    sy_s3_location_free(&loc);
    static const char *const bad[] = {
        "s3://bucket",
        "s3://bucket/",
        "s3://Bucket/k",
        "s3://ab/k",
        "http://bucket/k",
        "s3://bucket/k?x=1",
        "s3:///k",
        "s3://-bucket/k",
        "s3://bucket/k?expected_bucket_owner=12ab",
        "s3://bucket/k#frag",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_error_clear(&err);
        assert_false(sy_s3_parse_uri(bad[i], &loc, &err));
        assert_non_null(strstr(err.message, bad[i]));
    }
}

static void test_addressing(void **state)
{
    (void)state;
    sy_s3_location_t loc;
    sy_error_t err = {{0}};
    char url[512];
    assert_true(sy_s3_parse_uri("s3://cfg/dir/policy v1$.json", &loc, &err));
    assert_true(sy_s3_object_url(&loc, "eu-west-1", NULL, url, sizeof url));
    assert_string_equal(url, "https://cfg.s3.eu-west-1.amazonaws.com/dir/policy%20v1%24.json");
    assert_true(sy_s3_object_url(&loc, "eu-west-1", "http://127.0.0.1:4569", url, sizeof url));
    assert_string_equal(url, "http://127.0.0.1:4569/cfg/dir/policy%20v1%24.json");
    sy_s3_location_free(&loc);
    assert_true(sy_s3_parse_uri("s3://a.b.c/k", &loc, &err));
    assert_true(sy_s3_object_url(&loc, "us-east-1", NULL, url, sizeof url));
    assert_string_equal(url, "https://s3.us-east-1.amazonaws.com/a.b.c/k");
    sy_s3_location_free(&loc);
}

static void use_stub(stub_server_t *s)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s->port);
    setenv("AWS_ENDPOINT_URL_S3", endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_SESSION_TOKEN", "session-tok", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    sy_aws_credentials_reset();
}

static void test_get_object(void **state)
{
    (void)state;
    stub_server_t s = {.answers = {"HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 7\r\n"
                                   "Connection: close\r\n\r\n{\"a\":1}",
                                   "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n"
                                   "Connection: close\r\n\r\n"},
                       .answer_count = 2};
    stub_start(&s);
    use_stub(&s);
    char etag[256] = "", *body;
    size_t len;
    sy_error_t err = {{0}};
    const char *uri = "s3://cfg/policy.json?expected_bucket_owner=123456789012";
    assert_int_equal(sy_s3_get_object(uri, etag, &body, &len, &err), SY_S3_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(body, "{\"a\":1}", 7);
    assert_string_equal(etag, "\"abc\"");
    free(body);
    assert_int_equal(sy_s3_get_object(uri, etag, &body, &len, &err), SY_S3_NOT_MODIFIED);
    assert_null(body);
    stub_stop(&s);
    const char *r0 = s.requests[0], *r1 = s.requests[1];
    assert_non_null(strstr(r0, "GET /cfg/policy.json HTTP/1.1\r\n"));
    assert_null(strcasestr(r0, "if-none-match"));
    assert_non_null(strcasestr(r0, "\r\nx-amz-expected-bucket-owner: 123456789012\r\n"));
    assert_non_null(strcasestr(r0, "\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"));
    assert_non_null(strcasestr(r0, "\r\nx-amz-security-token: session-tok\r\n"));
    assert_non_null(strstr(r0, "Credential=AKIDTEST/"));
    assert_non_null(strstr(r0, "/eu-west-1/s3/aws4_request, SignedHeaders=host;"
                               "x-amz-content-sha256;x-amz-date;x-amz-expected-bucket-owner;"
                               "x-amz-security-token, Signature="));
    /* Nothing unsigned but curl's own framing and the User-Agent. */
    assert_null(strcasestr(r0, "\r\naccept:"));
    assert_non_null(strcasestr(r1, "\r\nif-none-match: \"abc\"\r\n"));
    assert_non_null(strstr(r1, "SignedHeaders=host;if-none-match;"));
    stub_free(&s);
}

static void test_errors(void **state)
{
    (void)state;
    stub_server_t s = {
        .answers = {"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
                    "Connection: close\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
                    "<RequestId>R</RequestId></Error>"},
        .answer_count = 2};
    stub_start(&s);
    use_stub(&s);
    char etag[256] = "", *body;
    size_t len;
    sy_error_t err = {{0}};
    assert_int_equal(sy_s3_get_object("s3://cfg/k", etag, &body, &len, &err), SY_S3_ERROR);
    assert_string_equal(err.message, "s3://cfg/k: AccessDenied: Access Denied");
    stub_stop(&s);
    assert_int_equal(s.request_count, 2); /* the 503 was retried */
    stub_free(&s);
}

/* On a poller thread (deferring), a throttling answer with Retry-After ends
 * the call at once and hands the wait over; elsewhere it is waited out. */
static void test_retry_after_deferred(void **state)
{
    (void)state;
    static const char slow_down[] =
        "HTTP/1.1 503 Slow Down\r\nRetry-After: 2\r\nContent-Type: application/xml\r\n"
        "Connection: close\r\n\r\n<Error><Code>SlowDown</Code><Message>Please reduce your "
        "request rate.</Message></Error>";
    stub_server_t s = {.answers = {slow_down}, .answer_count = 1};
    stub_start(&s);
    use_stub(&s);
    char etag[256] = "", *body;
    size_t len;
    sy_error_t err = {{0}};
    sy_aws_throttle_defer(true);
    assert_int_equal(sy_s3_get_object("s3://cfg/k", etag, &body, &len, &err), SY_S3_ERROR);
    assert_int_equal(sy_aws_throttle_take(), 2000);
    assert_int_equal(sy_aws_throttle_take(), 0); /* taken once */
    sy_aws_throttle_defer(false);
    assert_string_equal(err.message, "s3://cfg/k: SlowDown: Please reduce your request rate. "
                                     "(throttled: Retry-After 2 s, not asked again before then)");
    stub_stop(&s);
    assert_int_equal(s.request_count, 1); /* not retried within the call */
    stub_free(&s);

    /* A Retry-After past the cap is held to it. */
    sy_aws_throttle_defer(true);
    assert_int_equal(sy_aws_throttle_note(3600000L), SY_AWS_MAX_DEFERRED_RETRY_AFTER_MS);
    assert_int_equal(sy_aws_throttle_note(5000L), 5000L);
    assert_int_equal(sy_aws_throttle_take(), SY_AWS_MAX_DEFERRED_RETRY_AFTER_MS);
    sy_aws_throttle_defer(false);
    assert_false(sy_aws_throttle_deferring());
}

static void test_xml_reader(void **state)
{
    (void)state;
    const char *x = "<a><b>1</b><c><b>2</b></c><d/><e>x &lt;y&gt; &amp; &quot;z&quot;</e></a>";
    static const char *const pb[] = {"a", "c", "b", NULL};
    static const char *const pd[] = {"a", "d", NULL};
    static const char *const pe[] = {"a", "e", NULL};
    static const char *const pc[] = {"a", "c", NULL};
    char *v = sy_aws_xml_text(x, strlen(x), pb);
    assert_string_equal(v, "2");
    free(v);
    v = sy_aws_xml_text(x, strlen(x), pd);
    assert_string_equal(v, "");
    free(v);
    v = sy_aws_xml_text(x, strlen(x), pe);
    assert_string_equal(v, "x <y> & \"z\"");
    free(v);
    assert_null(sy_aws_xml_text(x, strlen(x), pc)); /* holds markup */
    const char *twice = "<a><b>1</b><b>2</b></a>";
    static const char *const pab[] = {"a", "b", NULL};
    assert_null(sy_aws_xml_text(twice, strlen(twice), pab));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_uri),
        cmocka_unit_test(test_addressing),
        cmocka_unit_test(test_get_object),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_retry_after_deferred),
        cmocka_unit_test(test_xml_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
