/*
 * test_common.c: JSON escaping (every log line must stay valid JSON,
 * whatever bytes a client sent) and slice helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"

static const char *esc(const char *in, size_t len)
{
    static char out[256];
    size_t n = sy_json_escape(out, sizeof out - 1, sy_slice(in, len));
    assert_true(n < sizeof out);
    out[n] = '\0';
    return out;
}

static void test_json_escape(void **state)
{
    (void)state;
    assert_string_equal(esc("plain", 5), "plain");
    assert_string_equal(esc("a\"b\\c", 5), "a\\\"b\\\\c");
    assert_string_equal(esc("\r\n\t", 3), "\\r\\n\\t");
    assert_string_equal(esc("\x01\x7f", 2), "\\u0001\\u007f");
    assert_string_equal(esc("\0x", 2), "\\u0000x");
    /* Valid UTF-8 passes; invalid bytes are escaped one by one. */
    assert_string_equal(esc("caf\xc3\xa9", 5), "caf\xc3\xa9");
    assert_string_equal(esc("\xc0\xae", 2), "\\u00c0\\u00ae");
    assert_string_equal(esc("\xed\xa0\x80", 3), "\\u00ed\\u00a0\\u0080");
    assert_string_equal(esc("\xf0\x9f\x98\x80", 4), "\xf0\x9f\x98\x80");
    assert_string_equal(esc("\xf0\x9f\x98", 3), "\\u00f0\\u009f\\u0098");
}

static void test_json_escape_never_overflows(void **state)
{
    (void)state;
    char out[8];
    memset(out, 'Z', sizeof out);
    size_t need = sy_json_escape(out, 4, SY_SLICE_LIT("\"\"\"\""));
    assert_int_equal(need, 8);
    assert_int_equal(out[4], 'Z');
}

static void test_slices(void **state)
{
    (void)state;
    assert_true(sy_slice_eq_nocase(SY_SLICE_LIT("Content-Length"), SY_SLICE_LIT("content-LENGTH")));
    assert_false(sy_slice_eq_nocase(SY_SLICE_LIT("Content-Length"), SY_SLICE_LIT("Content-Lengt")));
    assert_true(sy_slice_eq(SY_SLICE_LIT(""), SY_SLICE_LIT("")));
    assert_false(sy_slice_eq(SY_SLICE_LIT("a"), SY_SLICE_LIT("A")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_never_overflows),
        cmocka_unit_test(test_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
