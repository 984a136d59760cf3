/*
 * test_base64.c: the shared strict base64 decoder. RFC 4648 §10's vectors
 * in both alphabets and both padding rules, then every way a spelling can
 * be refused: wrong alphabet, padding where it may not be (or missing where
 * it must be), a lone leftover character, non-zero trailing bits,
 * whitespace, and output that would not fit. The encoder writes exactly
 * the spelling the decoder accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"

/* Decodes text; NULL when refused, else the NUL-terminated result. */
static const char *decode(const char *text, bool url, bool padded)
{
    static unsigned char out[64];
    size_t n = 12345;
    memset(out, 0, sizeof out);
    if (!sy_base64_decode(sy_slice_cstr(text), url, padded, out, sizeof out - 1, &n)) {
        assert_int_equal(n, 12345); /* untouched on failure */
        return NULL;
    }
    assert_true(n < sizeof out);
    assert_int_equal(strlen((const char *)out), n);
    return (const char *)out;
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const vectors[][3] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        for (int url = 0; url < 2; url++) {
            const char *got = decode(vectors[i][1], url, true);
            assert_non_null(got);
            assert_string_equal(got, vectors[i][0]);
            got = decode(vectors[i][2], url, false);
            assert_non_null(got);
            assert_string_equal(got, vectors[i][0]);
        }
        /* And the encoder writes exactly those spellings. */
        char text[16];
        const unsigned char *raw = (const unsigned char *)vectors[i][0];
        size_t n = sy_base64_encode(raw, strlen(vectors[i][0]), false, true, text);
        assert_string_equal(text, vectors[i][1]);
        assert_int_equal(n, strlen(vectors[i][1]));
        n = sy_base64_encode(raw, strlen(vectors[i][0]), true, false, text);
        assert_string_equal(text, vectors[i][2]);
        assert_int_equal(n, strlen(vectors[i][2]));
    }
}

static void test_alphabets_are_kept_apart(void **state)
{
    (void)state;
    /* 0xfb 0xff: "+/8=" in base64, "-_8" in base64url. */
    static const unsigned char want[] = {0xfb, 0xff};
    unsigned char out[4];
    size_t n = 0;
    assert_true(sy_base64_decode(SY_SLICE_LIT("+/8="), false, true, out, sizeof out, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(out, want, 2);
    assert_true(sy_base64_decode(SY_SLICE_LIT("-_8"), true, false, out, sizeof out, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(out, want, 2);
    assert_null(decode("+/8=", true, true));
    assert_null(decode("-_8=", false, true));
    assert_null(decode("+/8", true, false));
}

static void test_padding_rules(void **state)
{
    (void)state;
    /* Padded: the length is a multiple of 4, with exactly the '=' needed. */
    assert_null(decode("Zg", false, true));
    assert_null(decode("Zg=", false, true));
    assert_null(decode("Zg===", false, true));
    assert_null(decode("Z===", false, true));
    assert_null(decode("====", false, true));
    assert_null(decode("Zm9v====", false, true));
    assert_null(decode("Zg==Zg==", false, true)); /* padding in the middle */
    assert_null(decode("Z=g=", false, true));
    /* Unpadded (JOSE): '=' is refused anywhere. */
    assert_null(decode("Zg==", true, false));
    assert_null(decode("Zm8=", true, false));
    assert_null(decode("=", true, false));
    /* One character left over is six bits, never a whole byte, even when
     * those bits are zero. */
    assert_null(decode("Z", true, false));
    assert_null(decode("A", true, false));
    assert_null(decode("Zm9vY", true, false));
    assert_null(decode("Zm9vA", true, false));
    assert_null(decode("Zm9vY===", false, true));
}

static void test_noncanonical_trailing_bits(void **state)
{
    (void)state;
    /* "Zh" and "Zm8" are 'f' and "fo" with unused bits set: a second
     * spelling of the same bytes. */
    assert_non_null(decode("Zg", true, false));
    assert_null(decode("Zh", true, false));
    assert_null(decode("Zh==", false, true));
    assert_null(decode("Zm9=", false, true));
    assert_null(decode("Zm9", true, false));
    assert_non_null(decode("Zm8", true, false));
}

static void test_foreign_characters(void **state)
{
    (void)state;
    assert_null(decode("Zm9v\n", false, true));
    assert_null(decode(" Zm9v", false, true));
    assert_null(decode("Zm 9v", true, false));
    assert_null(decode("Zm9v.", true, false));
    assert_null(decode("Zm\xc3\xa9", true, false));
    unsigned char out[4];
    size_t n;
    /* A NUL inside the slice is a foreign character too. */
    assert_false(sy_base64_decode(sy_slice("Zm\0v", 4), false, true, out, sizeof out, &n));
}

static void test_cap_is_respected(void **state)
{
    (void)state;
    unsigned char out[8];
    size_t n = 0;
    memset(out, 'Z', sizeof out);
    assert_false(sy_base64_decode(SY_SLICE_LIT("Zm9vYmFy"), false, true, out, 5, &n));
    assert_int_equal(out[0], 'Z'); /* nothing written when it can't fit */
    assert_true(sy_base64_decode(SY_SLICE_LIT("Zm9vYmFy"), false, true, out, 6, &n));
    assert_int_equal(n, 6);
    assert_memory_equal(out, "foobar", 6);
    assert_false(sy_base64_decode(SY_SLICE_LIT("Zm9vYg"), true, false, out, 3, &n));
    assert_true(sy_base64_decode(SY_SLICE_LIT("Zm9vYg"), true, false, out, 4, &n));
    assert_int_equal(n, 4);
}

/* Every byte string of every length up to 40 (a fixed pseudo-random
 * sequence, so a failure repeats) survives encode then decode, in both
 * alphabets, padded and not. */
static void test_round_trip(void **state)
{
    (void)state;
    uint32_t x = 2463534242u;
    unsigned char raw[40], back[40];
    char text[4 * sizeof raw / 3 + 8];
    for (size_t len = 0; len <= sizeof raw; len++) {
        for (int round = 0; round < 50; round++) {
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                raw[i] = (unsigned char)x;
            }
            for (int mode = 0; mode < 4; mode++) {
                bool url = mode & 1, padded = mode & 2;
                size_t n = sy_base64_encode(raw, len, url, padded, text);
                assert_int_equal(n, strlen(text));
                assert_int_equal(n, padded ? (len + 2) / 3 * 4 : (len * 4 + 2) / 3);
                size_t got = 0;
                assert_true(sy_base64_decode(sy_slice(text, n), url, padded, back, len, &got));
                assert_int_equal(got, len);
                assert_memory_equal(back, raw, len);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_alphabets_are_kept_apart),
        cmocka_unit_test(test_padding_rules),
        cmocka_unit_test(test_noncanonical_trailing_bits),
        cmocka_unit_test(test_foreign_characters),
        cmocka_unit_test(test_cap_is_respected),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
