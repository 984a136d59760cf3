/*
 * test_explain.c: the /explain query parser and method check (issue 9): a
 * method the data plane's parser refuses (empty, CR LF, space, CONNECT,
 * non-token bytes, too long) is refused by /explain with the same reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin/explain.h"

static const sy_http_limits_t LIMITS = {8192, 32768, 100, 10485760};

static void test_query_parse(void **state)
{
    (void)state;
    sy_explain_query_t q = {0};
    const char *why = NULL;
    assert_true(sy_explain_query_parse(
        SY_SLICE_LIT("x=1&host=api.example.com&path=%2Forders%2F%2561dmin%3Fa%3D1&method=G+T&y"),
        &q, &why));
    assert_string_equal(q.host, "api.example.com");
    assert_string_equal(q.path, "/orders/%61dmin?a=1");
    assert_int_equal(q.path_len, strlen("/orders/%61dmin?a=1"));
    assert_string_equal(q.method, "G+T");
    sy_explain_query_free(&q);

    static const struct {
        const char *query, *why;
    } bad[] = {
        {"path=/a&path=/b", "a query parameter is given twice"},
        {"host=a&host=", "a query parameter is given twice"},
        {"path=/a%2", "bad percent-encoding in the query"},
        {"path=/a%zz", "bad percent-encoding in the query"},
        {"path=/a%00", "bad percent-encoding in the query"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_explain_query_t b = {0};
        why = NULL;
        assert_false(sy_explain_query_parse(sy_slice_cstr(bad[i].query), &b, &why));
        assert_string_equal(why, bad[i].why);
        sy_explain_query_free(&b);
    }
    sy_explain_query_t raw = {0};
    assert_false(sy_explain_query_parse(sy_slice("path=/a\0b", 9), &raw, &why));
    sy_explain_query_free(&raw);
    sy_explain_query_t empty = {0};
    assert_true(sy_explain_query_parse(sy_slice(NULL, 0), &empty, &why));
    assert_null(empty.host);
    assert_null(empty.path);
}

static void test_method_check(void **state)
{
    (void)state;
    static const char *const ok[] = {"GET", "POST", "PATCH", "M-SEARCH", "get", "X!#$%&'*+.^_`|~1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (sy_explain_method_check(sy_slice_cstr(ok[i]), &LIMITS) != SY_REJECT_NONE)
            fail_msg("%s should be accepted", ok[i]);
    static const struct {
        const char *method;
        sy_http_reject_t reject;
    } refused[] = {
        {"", SY_REJECT_BAD_METHOD},
        {"G T", SY_REJECT_BAD_METHOD},
        {"GET ", SY_REJECT_BAD_METHOD},
        {"G@T", SY_REJECT_BAD_METHOD},
        {"G\"T", SY_REJECT_BAD_METHOD},
        {"CONNECT", SY_REJECT_CONNECT_METHOD},
        {"connect", SY_REJECT_CONNECT_METHOD},
        {"GET\r\nX: y", SY_REJECT_BAD_METHOD}, /* the space ends the method on the wire */
        {"GET\r\nX:y", SY_REJECT_BAD_REQUEST_LINE},
        {"GET\r\n", SY_REJECT_BAD_REQUEST_LINE},
        {"GET\n", SY_REJECT_BARE_LF},
        {"GET\r", SY_REJECT_BARE_CR},
        {"G\tT", SY_REJECT_CONTROL_BYTE},
        {"G\x7fT", SY_REJECT_CONTROL_BYTE},
        {"G\xc3\xa9T", SY_REJECT_BAD_METHOD},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        sy_http_reject_t r = sy_explain_method_check(sy_slice_cstr(refused[i].method), &LIMITS);
        if (r != refused[i].reject)
            fail_msg("method \"%s\": expected %s, got %s", refused[i].method,
                     sy_http_reject_name(refused[i].reject), sy_http_reject_name(r));
        assert_int_equal(sy_http_reject_status(r), 400);
    }
    /* A method that alone overflows the request line is a 414, as on the
     * wire. */
    char longest[9000];
    memset(longest, 'A', sizeof longest);
    sy_http_reject_t r = sy_explain_method_check(sy_slice(longest, sizeof longest), &LIMITS);
    assert_int_equal(sy_http_reject_status(r), 414);
}

/* Attack (docs/security.md, /explain row): a target traffic refuses as
 * bad_target (bytes outside RFC 3986, a '#') must not be explained as
 * "forward". The whole request line goes through the parser. */
static void test_request_check_target(void **state)
{
    (void)state;
    static const char *const ok[] = {"/orders/admin",     "/orders/%61dmin", "/o/a!$&'()*+,;=:@b",
                                     "/orders?x=1&y=%20", "/orders/admin;x", "/orders/~"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (sy_explain_request_check(SY_SLICE_LIT("GET"), sy_slice_cstr(ok[i]), &LIMITS) !=
            SY_REJECT_NONE)
            fail_msg("%s should be accepted", ok[i]);
    static const char *const bad[] = {"/orders/a\"b", "/orders/a<b",     "/orders/a{b",
                                      "/orders/a|b",  "/orders/a^b",     "/orders/a`b",
                                      "/orders/[x]",  "/orders/a#b",     "/orders?x#y",
                                      "/orders/a\\b", "/orders/\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_http_reject_t r =
            sy_explain_request_check(SY_SLICE_LIT("GET"), sy_slice_cstr(bad[i]), &LIMITS);
        if (r == SY_REJECT_NONE)
            fail_msg("target %s should be refused as traffic refuses it", bad[i]);
        assert_int_equal(sy_http_reject_status(r), 400);
    }
    /* A space, CR or LF in the target can't be sent as one target at all. */
    static const char *const unsendable[] = {"/a b", "/a\r\nX: y", "/a\n"};
    for (size_t i = 0; i < sizeof unsendable / sizeof unsendable[0]; i++)
        assert_int_not_equal(
            sy_explain_request_check(SY_SLICE_LIT("GET"), sy_slice_cstr(unsendable[i]), &LIMITS),
            SY_REJECT_NONE);
    /* The method is judged first, as on the wire. */
    assert_int_equal(
        sy_explain_request_check(SY_SLICE_LIT("CONNECT"), SY_SLICE_LIT("/a<b"), &LIMITS),
        SY_REJECT_CONNECT_METHOD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_parse),
        cmocka_unit_test(test_method_check),
        cmocka_unit_test(test_request_check_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
