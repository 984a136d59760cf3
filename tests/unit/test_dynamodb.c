/*
 * test_dynamodb.c: DynamoDB typed JSON into plain route objects (and back),
 * the canonical text behind the change check, and a paginated, throttled
 * Scan against a loopback stub.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aws/credentials.h"
#include "aws/dynamodb.h"
#include "aws_stub_server.h"
#include "policy/routes.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    assert_non_null(j);
    return j;
}

/* sy_route_list_free owns the list and its items array: hand it heap
 * copies. */
static void route_free(sy_route_t *route)
{
    sy_route_list_t *list = malloc(sizeof *list);
    list->items = malloc(sizeof *route);
    memcpy(list->items, route, sizeof *route);
    list->count = 1;
    sy_route_list_free(list);
}

static void test_unmarshal_route(void **state)
{
    (void)state;
    json_t *item =
        parse("{\"path\":{\"S\":\"/orders\"},"
              "\"target\":{\"S\":\"https://orders.internal.example.com/prod\"},"
              "\"methods\":{\"SS\":[\"GET\",\"POST\"]},"
              "\"strip_prefix\":{\"BOOL\":true},\"enabled\":{\"BOOL\":false},"
              "\"owner\":{\"S\":\"team-a\"},"
              "\"pipeline_run\":{\"N\":\"12345\"},"
              "\"tags\":{\"L\":[{\"S\":\"a\"},{\"N\":\"1.5\"},{\"NULL\":true}]},"
              "\"meta\":{\"M\":{\"k\":{\"BOOL\":false},\"n\":{\"NS\":[\"1\",\"-2\"]}}}}");
    json_t *plain = sy_dynamodb_unmarshal_item(item);
    json_t *want = parse("{\"path\":\"/orders\",\"target\":\"https://orders.internal.example.com/"
                         "prod\",\"methods\":[\"GET\",\"POST\"],\"strip_prefix\":true,"
                         "\"enabled\":false,\"owner\":\"team-a\",\"pipeline_run\":12345,"
                         "\"tags\":[\"a\",1.5,null],\"meta\":{\"k\":false,\"n\":[1,-2]}}");
    assert_true(json_equal(plain, want));
    /* The route parser accepts it, pipeline-owned extras tolerated. */
    sy_route_t route;
    assert_true(sy_route_from_json(&route, plain, "dynamodb://routes[/orders]", true));
    assert_string_equal(route.path, "/orders");
    assert_int_equal(route.method_count, 2);
    assert_true(route.strip_prefix);
    assert_false(route.enabled);
    route_free(&route);
    json_decref(item);
    json_decref(plain);
    json_decref(want);
}

static void test_malformed_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"S\":1}",           "{\"N\":\"12abc\"}",   "{\"N\":\"\"}",
        "{\"BOOL\":\"true\"}", "{\"SS\":[]}",         "{\"SS\":[\"a\",2]}",
        "{\"NULL\":false}",    "{\"X\":\"?\"}",       "{\"S\":\"a\",\"N\":\"1\"}",
        "\"plain\"",           "{\"L\":[{\"S\":1}]}", "{\"N\":\"1e99999\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = parse(bad[i][0] == '"' ? "[\"plain\"]" : bad[i]);
        json_t *in = bad[i][0] == '"' ? json_array_get(v, 0) : v;
        sy_error_t err = {{0}};
        json_t *out = sy_dynamodb_unmarshal_value(in, &err);
        assert_true(json_is_null(out));
        assert_true(err.message[0] != '\0');
        json_decref(out);
        json_decref(v);
    }
    /* A malformed route field rejects the item with a reason; a malformed
     * extra attribute does not. */
    json_t *item = parse("{\"path\":{\"S\":\"/a\"},\"target\":{\"N\":\"x\"}}");
    json_t *plain = sy_dynamodb_unmarshal_item(item);
    sy_route_t route;
    assert_false(sy_route_from_json(&route, plain, "item /a", true));
    assert_non_null(route.rejected_reason);
    assert_non_null(strstr(route.rejected_reason, "target"));
    route_free(&route);
    json_decref(item);
    json_decref(plain);
}

static void test_marshal_roundtrip(void **state)
{
    (void)state;
    json_t *plain = parse("{\"path\":\"/x\",\"methods\":[\"GET\"],\"strip_prefix\":false,"
                          "\"n\":3,\"mixed\":[\"a\",1],\"dups\":[\"a\",\"a\"],\"m\":{\"z\":null}}");
    json_t *typed = sy_dynamodb_marshal_item(plain);
    json_t *ss = parse("{\"SS\":[\"GET\"]}"), *n = parse("{\"N\":\"3\"}"),
           *list = parse("{\"L\":[{\"S\":\"a\"},{\"N\":\"1\"}]}");
    assert_true(json_equal(json_object_get(typed, "methods"), ss));
    assert_true(json_equal(json_object_get(typed, "n"), n));
    assert_true(json_equal(json_object_get(typed, "mixed"), list));
    assert_non_null(json_object_get(json_object_get(typed, "dups"), "L"));
    json_decref(ss);
    json_decref(n);
    json_decref(list);
    json_t *back = sy_dynamodb_unmarshal_item(typed);
    assert_true(json_equal(back, plain));
    json_decref(plain);
    json_decref(typed);
    json_decref(back);
}

static void test_items_text_is_canonical(void **state)
{
    (void)state;
    json_t *a = parse("[{\"path\":\"/b\",\"target\":\"https://b\"},"
                      "{\"target\":\"https://a\",\"path\":\"/a\"}]");
    json_t *b = parse("[{\"path\":\"/a\",\"target\":\"https://a\"},"
                      "{\"target\":\"https://b\",\"path\":\"/b\"}]");
    size_t la, lb;
    char *ta = sy_dynamodb_items_text(a, &la), *tb = sy_dynamodb_items_text(b, &lb);
    assert_string_equal(ta, tb);
    assert_int_equal(la, strlen(ta));
    json_t *again = parse(ta);
    assert_int_equal(json_array_size(again), 2);
    json_array_append_new(b, parse("{\"path\":\"/c\",\"target\":\"https://c\"}"));
    char *tc = sy_dynamodb_items_text(b, &lb);
    assert_string_not_equal(ta, tc);
    free(ta);
    free(tb);
    free(tc);
    json_decref(a);
    json_decref(b);
    json_decref(again);
}

static void test_parse_uri(void **state)
{
    (void)state;
    char *t;
    sy_error_t err = {{0}};
    assert_true(sy_dynamodb_parse_uri("dynamodb://switchyard-routes", &t, &err));
    assert_string_equal(t, "switchyard-routes");
    free(t);
    assert_false(sy_dynamodb_parse_uri("dynamodb://ab", &t, &err));
    assert_false(sy_dynamodb_parse_uri("dynamodb://a/b", &t, &err));
    assert_false(sy_dynamodb_parse_uri("s3://abc", &t, &err));
}

#define HDR                                                                                        \
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nConnection: close\r\n\r\n"

static void test_scan_pages_and_throttling(void **state)
{
    (void)state;
    stub_server_t s = {
        .answers = {HDR "{\"Items\":[{\"path\":{\"S\":\"/a\"}}],\"Count\":1,"
                        "\"LastEvaluatedKey\":{\"path\":{\"S\":\"/a\"}}}",
                    "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
                    "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                    "ProvisionedThroughputExceededException\",\"message\":\"slow down\"}",
                    "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n{}",
                    HDR "{\"Items\":[{\"path\":{\"S\":\"/b\"}},{\"path\":{\"S\":\"/c\"}}],"
                        "\"Count\":2}"},
        .answer_count = 4};
    stub_start(&s);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s.port);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_REGION", "eu-west-1", 1);
    sy_aws_credentials_reset();
    unsigned pages;
    sy_error_t err = {{0}};
    json_t *items = sy_dynamodb_scan_all("routes", NULL, &pages, &err);
    stub_stop(&s);
    assert_non_null(items);
    assert_int_equal(pages, 2);
    assert_int_equal(json_array_size(items), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 2), "path")), "/c");
    assert_int_equal(s.request_count, 4);
    const char *r0 = s.requests[0], *r3 = s.requests[3];
    assert_non_null(strstr(r0, "POST / HTTP/1.1\r\n"));
    assert_non_null(strcasestr(r0, "\r\nx-amz-target: DynamoDB_20120810.Scan\r\n"));
    assert_non_null(strcasestr(r0, "\r\ncontent-type: application/x-amz-json-1.0\r\n"));
    assert_non_null(strstr(r0, "/eu-west-1/dynamodb/aws4_request, SignedHeaders=content-type;"
                               "host;x-amz-date;x-amz-target, Signature="));
    assert_null(strstr(r0, "ExclusiveStartKey"));
    assert_non_null(strstr(r0, "\"ConsistentRead\":true"));
    assert_non_null(strstr(r3, "\"ExclusiveStartKey\":{\"path\":{\"S\":\"/a\"}}"));
    stub_free(&s);
    json_decref(items);
}

static void test_scan_error_message(void **state)
{
    (void)state;
    stub_server_t s = {.answers = {"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
                                   "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                                   "ResourceNotFoundException\",\"message\":\"Requested resource "
                                   "not found\"}"},
                       .answer_count = 1};
    stub_start(&s);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s.port);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint, 1);
    sy_error_t err = {{0}};
    json_t *items = sy_dynamodb_scan_all("missing", NULL, NULL, &err);
    stub_stop(&s);
    stub_free(&s);
    assert_null(items);
    assert_string_equal(
        err.message, "dynamodb://missing: ResourceNotFoundException: Requested resource not found");
}

static void use_stub(const stub_server_t *s)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", s->port);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    sy_aws_credentials_reset();
}

/* Issue 16: a store that keeps answering the same LastEvaluatedKey (or
 * cycles) must stop the Scan with an error, never loop or hand back the
 * pages it accumulated. */
static void test_scan_repeated_key_stops(void **state)
{
    (void)state;
    const char *page_a = HDR "{\"Items\":[{\"path\":{\"S\":\"/a\"}}],"
                             "\"LastEvaluatedKey\":{\"path\":{\"S\":\"/a\"}}}";
    const char *page_b = HDR "{\"Items\":[{\"path\":{\"S\":\"/b\"}}],"
                             "\"LastEvaluatedKey\":{\"path\":{\"S\":\"/b\"}}}";
    stub_server_t s = {.answers = {page_a, page_b, page_a}, .answer_count = 3};
    stub_start(&s);
    use_stub(&s);
    sy_error_t err = {{0}};
    unsigned pages = 0;
    json_t *items = sy_dynamodb_scan_all("routes", NULL, &pages, &err);
    stub_stop(&s);
    stub_free(&s);
    assert_null(items);
    assert_int_equal(pages, 3);
    assert_non_null(strstr(err.message, "LastEvaluatedKey already seen"));
}

static void test_scan_over_max_items_stops(void **state)
{
    (void)state;
    stub_server_t s = {.answers = {HDR "{\"Items\":[{\"path\":{\"S\":\"/a\"}},"
                                       "{\"path\":{\"S\":\"#generation\"},\"generation\":{\"N\":"
                                       "\"7\"}},{\"path\":{\"S\":\"/b\"}}],"
                                       "\"LastEvaluatedKey\":{\"path\":{\"S\":\"/b\"}}}",
                                   HDR "{\"Items\":[{\"path\":{\"S\":\"/c\"}}]}"},
                       .answer_count = 2};
    stub_start(&s);
    use_stub(&s);
    sy_error_t err = {{0}};
    sy_dynamodb_scan_limits_t limits = {.max_items = 2, .max_item_bytes = 1000};
    json_t *items = sy_dynamodb_scan_all("routes", &limits, NULL, &err);
    stub_stop(&s);
    stub_free(&s);
    assert_null(items);
    assert_non_null(strstr(err.message, "more than 2 route items (limits.max_routes 2)"));

    /* The marker is not a route and is not counted. */
    stub_server_t t = {.answers = {HDR "{\"Items\":[{\"path\":{\"S\":\"/a\"}},"
                                       "{\"path\":{\"S\":\"#generation\"},\"generation\":{\"N\":"
                                       "\"7\"}},{\"path\":{\"S\":\"/b\"}}]}"},
                       .answer_count = 1};
    stub_start(&t);
    use_stub(&t);
    items = sy_dynamodb_scan_all("routes", &limits, NULL, &err);
    stub_stop(&t);
    stub_free(&t);
    assert_non_null(items);
    assert_int_equal(json_array_size(items), 2);
    json_decref(items);
}

/* Issue 16: \u0000 is legal JSON; the item holding it is rejected alone. */
static void test_nul_item_judged_alone(void **state)
{
    (void)state;
    stub_server_t s = {
        .answers = {HDR
                    "{\"Items\":[{\"path\":{\"S\":\"/good\"},\"target\":{\"S\":"
                    "\"https://a.example.com\"}},{\"path\":{\"S\":\"/bad\"},\"owner\":{\"S\":"
                    "\"x\\u0000y\"}},{\"path\":{\"S\":\"/big\"},\"description\":{\"S\":"
                    "\"0123456789012345678901234567890123456789\"}},{\"path\":{\"S\":\"/typed\"},"
                    "\"target\":{\"S\":5}}]}"},
        .answer_count = 1};
    stub_start(&s);
    use_stub(&s);
    sy_error_t err = {{0}};
    sy_dynamodb_scan_limits_t limits = {.max_items = 10, .max_item_bytes = 80};
    json_t *items = sy_dynamodb_scan_all("routes", &limits, NULL, &err);
    stub_stop(&s);
    stub_free(&s);
    assert_non_null(items);
    assert_int_equal(json_array_size(items), 4);
    json_t *good = json_array_get(items, 0), *bad = json_array_get(items, 1),
           *big = json_array_get(items, 2), *typed = json_array_get(items, 3);
    assert_null(json_object_get(good, SY_DYNAMODB_REJECTED_KEY));
    assert_string_equal(json_string_value(json_object_get(bad, "path")), "/bad");
    assert_string_equal(json_string_value(json_object_get(bad, SY_DYNAMODB_REJECTED_KEY)),
                        "item \"/bad\": attribute \"owner\" contains a NUL byte");
    assert_non_null(
        strstr(json_string_value(json_object_get(big, SY_DYNAMODB_REJECTED_KEY)), "80-byte limit"));
    assert_non_null(strstr(json_string_value(json_object_get(typed, SY_DYNAMODB_REJECTED_KEY)),
                           "attribute \"target\""));
    json_decref(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmarshal_route),
        cmocka_unit_test(test_malformed_values),
        cmocka_unit_test(test_marshal_roundtrip),
        cmocka_unit_test(test_items_text_is_canonical),
        cmocka_unit_test(test_parse_uri),
        cmocka_unit_test(test_scan_pages_and_throttling),
        cmocka_unit_test(test_scan_error_message),
        cmocka_unit_test(test_scan_repeated_key_stops),
        cmocka_unit_test(test_scan_over_max_items_stops),
        cmocka_unit_test(test_nul_item_judged_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
