/*
 * test_dechunk.c: in-place chunked decoding. The data moves down over its
 * framing, bytes after the body (the next message) follow the data, a body
 * split anywhere decodes to the same bytes, and malformed framing is an
 * error with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/dechunk.h"

static void whole_body_then_next_message(void **state)
{
    char buf[64];
    const char *in = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /";
    size_t end = strlen(in);
    memcpy(buf, in, end);
    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, 1024);
    bool done = false;
    sy_http_reject_t reject = SY_REJECT_NONE;
    ssize_t n = sy_http_dechunk_in_place(&dec, buf, 0, &end, &done, &reject);
    assert_int_equal(n, 11);
    assert_true(done);
    assert_memory_equal(buf, "hello world", 11);
    /* The next message follows the data. */
    assert_int_equal(end, 11 + 5);
    assert_memory_equal(buf + 11, "GET /", 5);
}

static void split_anywhere_gives_the_same_bytes(void **state)
{
    const char *in = "3\r\nabc\r\na\r\n0123456789\r\n0\r\n\r\n";
    size_t len = strlen(in);
    for (size_t cut = 1; cut < len; cut++) {
        char buf[64], out[64];
        size_t out_len = 0;
        sy_http_chunked_t dec;
        sy_http_chunked_init(&dec, 1024);
        bool done = false;
        sy_http_reject_t reject = SY_REJECT_NONE;
        /* First part, then the second appended after what is left. */
        size_t end = cut;
        memcpy(buf, in, cut);
        ssize_t n = sy_http_dechunk_in_place(&dec, buf, 0, &end, &done, &reject);
        assert_true(n >= 0);
        memcpy(out, buf, (size_t)n);
        out_len = (size_t)n;
        size_t rest = end - (size_t)n; /* undecoded bytes kept after the data */
        memmove(buf, buf + n, rest);
        memcpy(buf + rest, in + cut, len - cut);
        end = rest + len - cut;
        n = sy_http_dechunk_in_place(&dec, buf, 0, &end, &done, &reject);
        assert_true(n >= 0);
        memcpy(out + out_len, buf, (size_t)n);
        out_len += (size_t)n;
        assert_true(done);
        assert_int_equal(out_len, 13);
        assert_memory_equal(out, "abc0123456789", 13);
    }
}

static void malformed_size_is_an_error(void **state)
{
    char buf[32];
    const char *in = "zz\r\nhello\r\n";
    size_t end = strlen(in);
    memcpy(buf, in, end);
    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, 1024);
    bool done = false;
    sy_http_reject_t reject = SY_REJECT_NONE;
    assert_int_equal(sy_http_dechunk_in_place(&dec, buf, 0, &end, &done, &reject), -1);
    assert_int_not_equal(reject, SY_REJECT_NONE);
    assert_false(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_body_then_next_message),
        cmocka_unit_test(split_anywhere_gives_the_same_bytes),
        cmocka_unit_test(malformed_size_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
