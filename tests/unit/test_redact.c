/*
 * test_redact.c: what of a URL or request target may be printed. Query
 * values, bare query parts, userinfo (with or without a password) and
 * fragments are replaced; names, hosts (IPv6 included), ports and paths
 * are kept byte for byte; a small buffer cuts the result short but never
 * lets a secret byte through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/redact.h"

static const char *url(const char *in)
{
    static char out[512];
    size_t n = sy_redact_url(out, sizeof out, sy_slice_cstr(in));
    assert_int_equal(n, strlen(out));
    return out;
}

static const char *query(const char *in)
{
    static char out[512];
    size_t n = sy_redact_query(out, sizeof out, sy_slice_cstr(in));
    assert_int_equal(n, strlen(out));
    return out;
}

static void test_query_values(void **state)
{
    assert_string_equal(query("api_key=s3cr3t&page=2"), "api_key=REDACTED&page=REDACTED");
    assert_string_equal(query(""), "");
    assert_string_equal(query("a"), "REDACTED");   /* bare part: value-shaped */
    assert_string_equal(query("a="), "a=");        /* nothing to hide */
    assert_string_equal(query("=x"), "=REDACTED"); /* no name, still a value */
    assert_string_equal(query("="), "=");
    assert_string_equal(query("a=1&&b=2"), "a=REDACTED&&b=REDACTED");
    assert_string_equal(query("&"), "&");
    assert_string_equal(query("a=1&"), "a=REDACTED&");
    assert_string_equal(query("a=b=c"), "a=REDACTED");       /* first '=' ends the name */
    assert_string_equal(query("a%3Db=c"), "a%3Db=REDACTED"); /* encoded '=' is name */
    assert_string_equal(query("k=%3D%26secret"), "k=REDACTED");
    assert_string_equal(query("a[]=1&a[]=2"), "a[]=REDACTED&a[]=REDACTED");
    assert_string_equal(query("a=1;b=2"), "a=REDACTED"); /* ';' is not a separator */
}

static void test_origin_form(void **state)
{
    assert_string_equal(url("/orders?api_key=s3cr3t"), "/orders?api_key=REDACTED");
    assert_string_equal(url("/orders"), "/orders");
    assert_string_equal(url("/orders?"), "/orders?");
    assert_string_equal(url("/a@b/c"), "/a@b/c"); /* '@' in a path is not userinfo */
    assert_string_equal(url("/p?a=1#frag"), "/p?a=REDACTED#REDACTED");
    assert_string_equal(url("/p#"), "/p#");
    assert_string_equal(url("?x=1"), "?x=REDACTED");
    assert_string_equal(url(""), "");
}

static void test_userinfo(void **state)
{
    assert_string_equal(url("https://user:pass@api.example.com/x"),
                        "https://REDACTED@api.example.com/x");
    /* A user name alone is often a token. */
    assert_string_equal(url("https://ghp_token@github.com/"), "https://REDACTED@github.com/");
    assert_string_equal(url("https://@h/"), "https://REDACTED@h/");
    /* A raw '@' in the password: the last '@' ends userinfo. */
    assert_string_equal(url("http://u:p@ss@h:8080/x"), "http://REDACTED@h:8080/x");
    /* '@' after the authority is path, not userinfo. */
    assert_string_equal(url("https://h/users/@me"), "https://h/users/@me");
    assert_string_equal(url("https://h?x=@y"), "https://h?x=REDACTED");
    assert_string_equal(url("//u:p@h/x"), "//REDACTED@h/x");
    /* Not a URL at all, still caught. */
    assert_string_equal(url("user:pass@host/x"), "REDACTED@host/x");
    assert_string_equal(url("HTTPS://U:P@H"), "HTTPS://REDACTED@H");
}

static void test_hosts_and_ports_kept(void **state)
{
    assert_string_equal(url("http://[::1]:8080/x?a=1"), "http://[::1]:8080/x?a=REDACTED");
    assert_string_equal(url("http://u:p@[2001:db8::1]/"), "http://REDACTED@[2001:db8::1]/");
    assert_string_equal(url("https://api.example.com"), "https://api.example.com");
    assert_string_equal(url("http://127.0.0.1:9081/prod"), "http://127.0.0.1:9081/prod");
    assert_string_equal(url("https://h/x?api_key=s3cr3t&page=2#t=1"),
                        "https://h/x?api_key=REDACTED&page=REDACTED#REDACTED");
    assert_string_equal(url("https://h#a?b=c"), "https://h#REDACTED");
}

/* No prefix of the output may contain a secret byte sequence, whatever the
 * buffer size. */
static void test_small_buffers_never_leak(void **state)
{
    const char *in = "https://us3cr3t:s3cr3t@h/p?k=s3cr3t&s3cr3t#s3cr3t";
    char full[256];
    size_t n = sy_redact_url(full, sizeof full, sy_slice_cstr(in));
    assert_null(strstr(full, "s3cr3t"));
    for (size_t cap = 0; cap <= n + 1; cap++) {
        char out[256];
        memset(out, 'Z', sizeof out);
        size_t got = sy_redact_url(out, cap, sy_slice_cstr(in));
        if (cap == 0) {
            assert_int_equal(got, 0);
            assert_int_equal(out[0], 'Z');
            continue;
        }
        assert_int_equal(got, cap - 1 < n ? cap - 1 : n);
        assert_int_equal(out[got], '\0');
        assert_memory_equal(out, full, got);
    }
    assert_int_equal(sy_redact_url(NULL, 0, sy_slice_cstr(in)), 0);
}

static void test_dup(void **state)
{
    char *s = sy_redact_url_dup("http://a:b@h/?x&x&x&x&x&x&x&x&x&x&x");
    assert_non_null(s);
    assert_string_equal(
        s, "http://REDACTED@h/?REDACTED&REDACTED&REDACTED&REDACTED&REDACTED&REDACTED&REDACTED&"
           "REDACTED&REDACTED&REDACTED&REDACTED");
    free(s);
    assert_null(sy_redact_url_dup(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_values),
        cmocka_unit_test(test_origin_form),
        cmocka_unit_test(test_userinfo),
        cmocka_unit_test(test_hosts_and_ports_kept),
        cmocka_unit_test(test_small_buffers_never_leak),
        cmocka_unit_test(test_dup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
