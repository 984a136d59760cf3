/*
 * test_common.c: JSON escaping (every log line must stay valid JSON,
 * whatever bytes a client sent), slice helpers, hex digits, file URIs and
 * whole-file reads (the size cap, and errors that name the path).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void test_hex(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdefABCDEF";
    for (int i = 0; digits[i]; i++)
        assert_int_equal(sy_hex_value(digits[i]), i < 16 ? i : i - 6);
    assert_int_equal(sy_hex_value('g'), -1);
    assert_int_equal(sy_hex_value('G'), -1);
    assert_int_equal(sy_hex_value('/'), -1);
    assert_int_equal(sy_hex_value(':'), -1);
    assert_int_equal(sy_hex_value('@'), -1);
    assert_int_equal(sy_hex_value('`'), -1);
    assert_int_equal(sy_hex_value('\0'), -1);
    assert_int_equal(sy_hex_value((char)0xe1), -1);

    const unsigned char bytes[] = {0x00, 0x09, 0xa5, 0xff};
    char out[2 * sizeof bytes + 2];
    memset(out, 'Z', sizeof out);
    sy_hex_encode(bytes, sizeof bytes, out);
    assert_string_equal(out, "0009a5ff");
    assert_int_equal(out[sizeof out - 1], 'Z');
    sy_hex_encode(bytes, 0, out);
    assert_string_equal(out, "");
}

/* The formatters agree with printf over edges and a sweep of values. */
static void test_fmt_numbers(void **state)
{
    (void)state;
    uint64_t values[] = {0,
                         1,
                         9,
                         10,
                         15,
                         16,
                         99,
                         100,
                         999,
                         1000,
                         1001,
                         65535,
                         4294967296ULL,
                         UINT64_MAX / 10,
                         UINT64_MAX - 1,
                         UINT64_MAX};
    char out[SY_FMT_MILLI_MAX + 1], want[64];
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint64_t v = values[i];
        size_t n = sy_fmt_u64(out, v);
        out[n] = '\0';
        snprintf(want, sizeof want, "%llu", (unsigned long long)v);
        assert_string_equal(out, want);
        n = sy_fmt_hex(out, v);
        out[n] = '\0';
        snprintf(want, sizeof want, "%llx", (unsigned long long)v);
        assert_string_equal(out, want);
        n = sy_fmt_milli(out, v);
        out[n] = '\0';
        snprintf(want, sizeof want, "%llu.%03u", (unsigned long long)(v / 1000),
                 (unsigned)(v % 1000));
        assert_string_equal(out, want);
    }
    assert_int_equal(sy_fmt_u64(out, UINT64_MAX), SY_FMT_U64_MAX);
    assert_int_equal(sy_fmt_hex(out, UINT64_MAX), SY_FMT_HEX_MAX);
    assert_true(sy_fmt_milli(out, UINT64_MAX) <= SY_FMT_MILLI_MAX);
}

static void test_file_uri_path(void **state)
{
    (void)state;
    assert_string_equal(sy_file_uri_path("file:///etc/x.json"), "/etc/x.json");
    assert_string_equal(sy_file_uri_path("file://localhost/etc/x.json"), "/etc/x.json");
    assert_string_equal(sy_file_uri_path("/etc/x.json"), "/etc/x.json");
    assert_string_equal(sy_file_uri_path("relative.json"), "relative.json");
    assert_null(sy_file_uri_path("file://elsewhere/etc/x.json"));
    assert_null(sy_file_uri_path("file://relative.json"));
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_file_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/sy_common_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/doc", dir);
    sy_error_t err = {{0}};
    size_t len = 99;

    /* Bytes come back exactly, NUL inside included, NUL-terminated. */
    write_file(path, "a\0bc", 4);
    char *text = sy_file_read(path, 4, &len, &err);
    assert_non_null(text);
    assert_int_equal(len, 4);
    assert_memory_equal(text, "a\0bc", 5);
    free(text);

    /* One byte over the cap is refused, naming the path. */
    assert_null(sy_file_read(path, 3, &len, &err));
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "larger than 3 bytes"));

    /* Empty is a document of zero bytes; len may be omitted. */
    write_file(path, "", 0);
    text = sy_file_read(path, 0, NULL, &err);
    assert_non_null(text);
    assert_string_equal(text, "");
    free(text);

    /* Larger than the first guess: the buffer grows to fit. */
    size_t big = (1u << 20) + 1;
    char *bytes = malloc(big);
    assert_non_null(bytes);
    for (size_t i = 0; i < big; i++)
        bytes[i] = (char)('a' + i % 26);
    write_file(path, bytes, big);
    text = sy_file_read(path, 2u << 20, &len, &err);
    assert_non_null(text);
    assert_int_equal(len, big);
    assert_memory_equal(text, bytes, big);
    assert_int_equal(text[big], '\0');
    free(text);
    free(bytes);
    assert_null(sy_file_read(path, 1u << 20, &len, &err));
    assert_non_null(strstr(err.message, "larger than 1 MiB"));

    /* A directory and a missing file are errors that say which path. */
    assert_null(sy_file_read(dir, 1024, &len, &err));
    assert_non_null(strstr(err.message, dir));
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(unlink(path), 0);
    assert_null(sy_file_read(path, 1024, &len, &err));
    assert_non_null(strstr(err.message, path));
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape),   cmocka_unit_test(test_json_escape_never_overflows),
        cmocka_unit_test(test_slices),        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_file_uri_path), cmocka_unit_test(test_file_read),
        cmocka_unit_test(test_fmt_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
