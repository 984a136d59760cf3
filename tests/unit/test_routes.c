/*
 * test_routes.c: the route registry items (SPEC §3). A bad item must be
 * kept with a reason naming its index and field, and keep its path unless
 * the path itself is what is wrong; only a non-array is a document error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/routes.h"

static sy_route_list_t *parse(const char *text, sy_error_t *err)
{
    return sy_routes_parse_json(text, strlen(text), "routes.json", err);
}

/* Parses "[item]" and returns the list (one route). */
static sy_route_list_t *parse_one(const char *item)
{
    char text[2048];
    sy_error_t err = {{0}};
    snprintf(text, sizeof text, "[%s]", item);
    sy_route_list_t *list = parse(text, &err);
    if (!list)
        fail_msg("document refused: %s", err.message);
    assert_int_equal(list->count, 1);
    return list;
}

static void test_full_item(void **state)
{
    (void)state;
    sy_route_list_t *list = parse_one(
        "{\"path\": \"/orders/v2\", \"target\": \"https://Orders.Internal.example.com:8443/prod\","
        " \"auth\": \"users\", \"domain\": \"API.example.com.\", \"methods\": [\"GET\", \"POST\"],"
        " \"strip_prefix\": true, \"enabled\": false, \"owner\": \"team-orders\","
        " \"updated_at\": \"2026-11-26T10:00:00Z\", \"description\": \"orders v2\"}");
    const sy_route_t *r = &list->items[0];
    assert_null(r->rejected_reason);
    assert_string_equal(r->path, "/orders/v2");
    assert_string_equal(r->target, "https://Orders.Internal.example.com:8443/prod");
    assert_true(r->target_https);
    assert_string_equal(r->target_host, "orders.internal.example.com");
    assert_int_equal(r->target_port, 8443);
    assert_string_equal(r->base, "/prod");
    assert_string_equal(r->auth_name, "users");
    assert_string_equal(r->domain, "api.example.com");
    assert_int_equal(r->method_count, 2);
    assert_string_equal(r->methods[0], "GET");
    assert_string_equal(r->methods[1], "POST");
    assert_string_equal(r->allow_header, "GET, POST");
    assert_true(r->strip_prefix);
    assert_false(r->enabled);
    assert_string_equal(r->owner, "team-orders");
    assert_string_equal(r->updated_at, "2026-11-26T10:00:00Z");
    assert_string_equal(r->description, "orders v2");
    assert_null(r->destination);
    assert_null(r->auth);
    assert_true(sy_route_allows_method(r, SY_SLICE_LIT("GET")));
    assert_true(sy_route_allows_method(r, SY_SLICE_LIT("POST")));
    assert_false(sy_route_allows_method(r, SY_SLICE_LIT("get")));
    assert_false(sy_route_allows_method(r, SY_SLICE_LIT("PUT")));
    assert_false(sy_route_allows_method(r, SY_SLICE_LIT("GE")));
    assert_false(sy_route_allows_method(r, SY_SLICE_LIT("")));
    sy_route_list_free(list);
}

static void test_minimal_item_defaults(void **state)
{
    (void)state;
    sy_route_list_t *list = parse_one("{\"path\": \"/\", \"target\": \"http://10.0.0.5\"}");
    const sy_route_t *r = &list->items[0];
    assert_null(r->rejected_reason);
    assert_string_equal(r->path, "/");
    assert_false(r->target_https);
    assert_string_equal(r->target_host, "10.0.0.5");
    assert_int_equal(r->target_port, 80);
    assert_string_equal(r->base, "");
    assert_null(r->auth_name);
    assert_null(r->domain);
    assert_null(r->methods);
    assert_null(r->allow_header);
    assert_false(r->strip_prefix);
    assert_true(r->enabled);
    assert_null(r->owner);
    assert_true(sy_route_allows_method(r, SY_SLICE_LIT("DELETE")));
    assert_true(sy_route_allows_method(r, SY_SLICE_LIT("PROPFIND")));
    sy_route_list_free(list);

    static const struct {
        const char *target, *host, *base;
        bool https;
        uint16_t port;
    } targets[] = {
        {"https://a.example.com", "a.example.com", "", true, 443},
        {"https://a.example.com/", "a.example.com", "", true, 443},
        {"HTTPS://A.example.com./stage", "a.example.com", "/stage", true, 443},
        {"http://a.example.com:8080/a/b", "a.example.com", "/a/b", false, 8080},
        {"http://[::1]:9081/prod", "[::1]", "/prod", false, 9081},
        {"https://[0::1]", "[::1]", "", true, 443},
        {"https://a.example.com/v1%20x", "a.example.com", "/v1%20x", true, 443},
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char item[256];
        snprintf(item, sizeof item, "{\"path\": \"/x\", \"target\": \"%s\"}", targets[i].target);
        list = parse_one(item);
        r = &list->items[0];
        if (r->rejected_reason)
            fail_msg("%s rejected: %s", targets[i].target, r->rejected_reason);
        assert_string_equal(r->target_host, targets[i].host);
        assert_string_equal(r->base, targets[i].base);
        assert_int_equal(r->target_https, targets[i].https);
        assert_int_equal(r->target_port, targets[i].port);
        assert_string_equal(r->target, targets[i].target);
        sy_route_list_free(list);
    }
}

typedef struct {
    const char *item;
    const char *reason; /* the full expected prefix of rejected_reason */
    bool keeps_path;
} reject_case_t;

static void test_rejected_items(void **state)
{
    (void)state;
    static const reject_case_t cases[] = {
        /* No usable path: the item owns nothing. */
        {"\"/orders\"", "[0]: expected a JSON object", false},
        {"{\"target\": \"https://a.example.com\"}", "[0].path: required field is missing", false},
        {"{\"path\": 5, \"target\": \"https://a.example.com\"}", "[0].path: expected a string",
         false},
        {"{\"path\": \"/orders/\", \"target\": \"https://a.example.com\"}",
         "[0].path: must not end with '/'", false},
        {"{\"path\": \"orders\", \"target\": \"https://a.example.com\"}",
         "[0].path: must start with '/'", false},
        {"{\"path\": \"\", \"target\": \"https://a.example.com\"}", "[0].path: ", false},
        {"{\"path\": \"/a/../b\", \"target\": \"https://a.example.com\"}", "[0].path: dot segment",
         false},
        {"{\"path\": \"/a//b\", \"target\": \"https://a.example.com\"}", "[0].path: empty segment",
         false},
        {"{\"path\": \"/a%2fb\", \"target\": \"https://a.example.com\"}", "[0].path: encoded slash",
         false},
        {"{\"path\": \"/a?b\", \"target\": \"https://a.example.com\"}", "[0].path: ", false},
        /* Everything else: rejected, but the path stays owned. */
        {"{\"path\": \"/o\"}", "[0].target: required field is missing", true},
        {"{\"path\": \"/o\", \"target\": 443}", "[0].target: expected a string", true},
        {"{\"path\": \"/o\", \"target\": \"ftp://a.example.com\"}",
         "[0].target: expected an http:// or https:// URL without userinfo, query or fragment",
         true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com/prod?stage=1\"}",
         "[0].target: expected an http:// or https:// URL without userinfo, query or fragment",
         true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com/prod#x\"}",
         "[0].target: expected an http", true},
        {"{\"path\": \"/o\", \"target\": \"https://u:p@a.example.com/\"}",
         "[0].target: expected an http", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com:0\"}",
         "[0].target: expected an http", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com:99999\"}",
         "[0].target: expected an http", true},
        {"{\"path\": \"/o\", \"target\": \"a.example.com\"}", "[0].target: expected an http", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\\\\evil.com\"}",
         "[0].target: expected an http", true},
        {"{\"path\": \"/o\", \"target\": \"https://0x7f.1/\"}",
         "[0].target: expected an http:// or https:// URL without userinfo, query or fragment: "
         "the host must be",
         true},
        {"{\"path\": \"/o\", \"target\": \"https://*.a.example.com/\"}",
         "[0].target: expected an http", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com/prod/\"}",
         "[0].target: base path: must not end with '/'", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com/a/./b\"}",
         "[0].target: base path: dot segment", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com//b\"}",
         "[0].target: base path: empty segment", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"auth\": 1}",
         "[0].auth: expected a string", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"auth\": \"\"}",
         "[0].auth: expected an auth policy name", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"domain\": [\"a.com\"]}",
         "[0].domain: expected a string", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"domain\": \"*.a.com\"}",
         "[0].domain: expected a domain name", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"domain\": \"a.com:443\"}",
         "[0].domain: expected a domain name", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"methods\": \"GET\"}",
         "[0].methods: expected a non-empty array of method names", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"methods\": []}",
         "[0].methods: expected a non-empty array", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"methods\": [\"GET\", 1]}",
         "[0].methods[1]: expected an HTTP method name", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"methods\": [\"GE T\"]}",
         "[0].methods[0]: expected an HTTP method name", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"methods\": [\"\"]}",
         "[0].methods[0]: expected an HTTP method name", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\","
         " \"methods\": [\"GET\", \"POST\", \"GET\"]}",
         "[0].methods[2]: duplicate method GET", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"strip_prefix\": \"yes\"}",
         "[0].strip_prefix: expected true or false", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"enabled\": \"false\"}",
         "[0].enabled: expected true or false", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"enabled\": 0}",
         "[0].enabled: expected true or false", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"owner\": 7}",
         "[0].owner: expected a string", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"updated_at\": 7}",
         "[0].updated_at: expected a string", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"description\": null}",
         "[0].description: expected a string", true},
        {"{\"path\": \"/o\", \"target\": \"https://a.example.com\", \"targte\": \"x\"}",
         "[0].targte: unknown field (expected one of: path, target", true},
        {"{\"path\": \"/o\", \"targte\": \"https://a.example.com\"}", "[0].targte: unknown field",
         true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sy_route_list_t *list = parse_one(cases[i].item);
        const sy_route_t *r = &list->items[0];
        if (!r->rejected_reason)
            fail_msg("accepted %s", cases[i].item);
        if (strncmp(r->rejected_reason, cases[i].reason, strlen(cases[i].reason)) != 0)
            fail_msg("%s: reason \"%s\", expected \"%s...\"", cases[i].item, r->rejected_reason,
                     cases[i].reason);
        if (cases[i].keeps_path && (!r->path || strcmp(r->path, "/o") != 0))
            fail_msg("%s: lost its path", cases[i].item);
        if (!cases[i].keeps_path && r->path)
            fail_msg("%s: kept path %s", cases[i].item, r->path);
        sy_route_list_free(list);
    }
}

static void test_rejected_item_keeps_domain_and_enabled(void **state)
{
    (void)state;
    /* A rejected route owns its path on its own domain only, and a disabled
     * one is known to be disabled, whatever field is wrong later. */
    sy_route_list_t *list = parse_one("{\"path\": \"/o\", \"domain\": \"A.example.com\","
                                      " \"enabled\": false, \"target\": \"ftp://x\"}");
    const sy_route_t *r = &list->items[0];
    assert_non_null(r->rejected_reason);
    assert_string_equal(r->domain, "a.example.com");
    assert_false(r->enabled);
    sy_route_list_free(list);
}

static void test_reasons_name_the_item_index(void **state)
{
    (void)state;
    sy_error_t err = {{0}};
    sy_route_list_t *list = parse("[{\"path\": \"/a\", \"target\": \"https://a.example.com\"},\n"
                                  " {\"path\": \"/b\", \"target\": \"https://b.example.com\"},\n"
                                  " {\"path\": \"/c\", \"target\": \"https://c.example.com\"},\n"
                                  " {\"path\": \"/d\", \"target\": \"https://d.example.com/x?y\"}]",
                                  &err);
    assert_non_null(list);
    assert_int_equal(list->count, 4);
    for (size_t i = 0; i < 3; i++)
        assert_null(list->items[i].rejected_reason);
    assert_non_null(list->items[3].rejected_reason);
    assert_non_null(strstr(list->items[3].rejected_reason, "[3].target: expected an http"));
    assert_string_equal(list->items[2].path, "/c");
    sy_route_list_free(list);
}

static void test_document_errors(void **state)
{
    (void)state;
    sy_error_t err = {{0}};
    assert_null(parse("{\"path\": \"/a\"}", &err));
    assert_string_equal(err.message, "routes.json: expected a JSON array of route objects");
    assert_null(parse("\"/a\"", &err));
    assert_string_equal(err.message, "routes.json: expected a JSON array of route objects");
    assert_null(parse("[\n {\"path\": \"/a\",\n  \"target\" \"x\"}]", &err));
    if (strncmp(err.message, "routes.json:3:", 14) != 0)
        fail_msg("got \"%s\"", err.message);
    assert_null(parse("[{\"path\": \"/a\", \"path\": \"/b\"}]", &err));
    if (strncmp(err.message, "routes.json:1:", 14) != 0 || !strstr(err.message, "duplicate"))
        fail_msg("got \"%s\"", err.message);
    assert_null(parse("", &err));
    assert_non_null(strstr(err.message, "routes.json:1:"));

    sy_route_list_t *list = parse("[]", &err);
    assert_non_null(list);
    assert_int_equal(list->count, 0);
    assert_string_equal(err.message, "");
    sy_route_list_free(list);
    list = parse("  [ ]\n", &err);
    assert_non_null(list);
    sy_route_list_free(list);
}

/* Frees a route filled by sy_route_from_json, through the list API. */
static void route_free(const sy_route_t *route)
{
    sy_route_list_t *list = malloc(sizeof *list);
    assert_non_null(list);
    list->items = malloc(sizeof *route);
    assert_non_null(list->items);
    list->items[0] = *route;
    list->count = 1;
    sy_route_list_free(list);
}

static void test_route_from_json_directly(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *item = json_loads("{\"path\": \"/o\", \"target\": \"https://a.example.com\","
                              " \"ttl\": 12345, \"pipeline_run\": \"abc\"}",
                              0, &jerr);
    assert_non_null(item);
    sy_route_t route;
    /* DynamoDB items carry attributes the pipeline owns. */
    assert_true(sy_route_from_json(&route, item, "/o", true));
    assert_null(route.rejected_reason);
    assert_string_equal(route.target_host, "a.example.com");
    route_free(&route);

    assert_false(sy_route_from_json(&route, item, "/o", false));
    assert_non_null(route.rejected_reason);
    assert_non_null(strstr(route.rejected_reason, "/o.ttl: unknown field"));
    assert_string_equal(route.path, "/o");
    route_free(&route);

    /* Without an item name the reason starts with the field. */
    json_t *bad = json_loads("{\"path\": \"/o\"}", 0, &jerr);
    assert_non_null(bad);
    assert_false(sy_route_from_json(&route, bad, NULL, false));
    assert_string_equal(route.rejected_reason, "target: required field is missing");
    route_free(&route);
    json_decref(bad);
    json_decref(item);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_item),
        cmocka_unit_test(test_minimal_item_defaults),
        cmocka_unit_test(test_rejected_items),
        cmocka_unit_test(test_rejected_item_keeps_domain_and_enabled),
        cmocka_unit_test(test_reasons_name_the_item_index),
        cmocka_unit_test(test_document_errors),
        cmocka_unit_test(test_route_from_json_directly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
