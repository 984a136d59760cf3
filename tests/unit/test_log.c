/*
 * test_log.c: the error log's typed values (SY_LOG_NUM: counts written as
 * JSON numbers, anything not a number still a string) and the access
 * log's client-supplied fields (escaped, capped, null when absent). Each
 * test points the stream at a temporary file and reads the line back.
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

#include "core/log.h"

static char line[32768];

/* Runs fn with fd `target` pointed at a temporary file; the first line
 * written ends up in `line`. */
static void capture(int target, void (*fn)(void))
{
    char path[] = "/tmp/sy-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(target);
    dup2(fd, target);
    fn();
    dup2(saved, target);
    close(saved);
    ssize_t n = pread(fd, line, sizeof line - 1, 0);
    close(fd);
    assert_true(n > 0);
    line[n] = '\0';
}

static void log_counts(void)
{
    sy_log(SY_LOG_INFO, "reloaded", SY_LOG_NUM("generation"), "42", SY_LOG_NUM("active_routes"),
           "0", SY_LOG_NUM("ratio"), "-1.5e3", SY_LOG_NUM("bad"), "12abc",
           SY_LOG_NUM("leading_zero"), "007", SY_LOG_NUM("empty"), "", "plain", "7", NULL);
}

static void test_numbers(void **state)
{
    (void)state;
    sy_log_set_level(SY_LOG_INFO);
    capture(2, log_counts);
    assert_non_null(strstr(line, "\"generation\":42,"));
    assert_non_null(strstr(line, "\"active_routes\":0,"));
    assert_non_null(strstr(line, "\"ratio\":-1.5e3,"));
    /* Not a JSON number: still a string, so the line stays valid JSON. */
    assert_non_null(strstr(line, "\"bad\":\"12abc\""));
    assert_non_null(strstr(line, "\"leading_zero\":\"007\""));
    assert_non_null(strstr(line, "\"empty\":\"\""));
    /* Untyped keys are unchanged. */
    assert_non_null(strstr(line, "\"plain\":\"7\""));
    assert_null(strchr(line, '#'));
}

static void access_fields(void)
{
    static char ua[2000];
    memset(ua, 'u', sizeof ua);
    memcpy(ua, "a\"b\\", 4);
    sy_access_entry_t e = {0};
    e.request_id = "rid-1";
    e.status = 200;
    e.upstream_ms = -1;
    e.user_agent = ua;
    e.user_agent_len = sizeof ua;
    e.forwarded_for = "203.0.113.9, 10.0.0.1";
    e.forwarded_for_len = strlen(e.forwarded_for);
    e.trace_id = "Root=1-abc";
    e.trace_id_len = 0; /* an empty header is "" */
    e.protocol = "HTTP/1.0";
    e.tls = true;
    sy_access_log_write(&e);
}

static void test_access_fields(void **state)
{
    (void)state;
    assert_true(sy_access_log_open("-"));
    capture(1, access_fields);
    assert_non_null(strstr(line, "\"forwarded_for\":\"203.0.113.9, 10.0.0.1\""));
    assert_non_null(strstr(line, "\"trace_id\":\"\""));
    assert_non_null(strstr(line, "\"traceparent\":null"));
    assert_non_null(strstr(line, "\"protocol\":\"HTTP/1.0\""));
    assert_non_null(strstr(line, "\"tls\":true"));
    const char *ua = strstr(line, "\"user_agent\":\"a\\\"b\\\\");
    assert_non_null(ua);
    /* Capped: SY_ACCESS_FIELD_MAX bytes of the value (2 of them escaped). */
    const char *start = ua + strlen("\"user_agent\":\"");
    const char *end = strstr(start, "\",");
    assert_non_null(end);
    assert_int_equal((size_t)(end - start), SY_ACCESS_FIELD_MAX + 2);
}

/* The access log writes numbers without printf; each must read exactly as
 * printf wrote it: %d, %llu and %.3f (round to nearest, ties to even, on
 * the exact binary value). Durations as the proxy makes them (nanoseconds
 * / 1e6), exact ties (0.0625 ms), values a hair either side of a half
 * microsecond, and large ones. */
static double durations[4000];
static size_t duration_count;

static void duration_lines(void)
{
    for (size_t i = 0; i < duration_count; i++) {
        sy_access_entry_t e = {0};
        e.status = (int)(i % 600);
        e.upstream_status = i % 3 ? 502 : 0;
        e.bytes_in = i * 7919;
        e.bytes_out = i ? UINT64_MAX / i : UINT64_MAX;
        e.duration_ms = durations[i];
        e.upstream_ms = i % 5 ? durations[i] / 3 : -1;
        sy_access_log_write(&e);
    }
}

static void test_numbers_read_as_printf_wrote_them(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t n = 0;
    static const double fixed[] = {
        0,       0.0005,  0.0015,         0.0625,    1.0625,        2.5e-4,
        0.00049, 0.00051, 999.9995,       1234.5675, 86400000.0005, 1e-9,
        0.1,     0.7,     123456789.0125, -0.0,      1e12,          5e15};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        durations[n++] = fixed[i];
    while (n < sizeof durations / sizeof durations[0]) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t ns = x % (n % 2 ? 10000000ull : 100000000000ull);
        durations[n++] = (double)ns / 1e6;
    }
    duration_count = n;
    assert_true(sy_access_log_open("-"));
    char path[] = "/tmp/sy-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(1);
    dup2(fd, 1);
    duration_lines();
    dup2(saved, 1);
    close(saved);
    FILE *f = fdopen(fd, "r");
    assert_non_null(f);
    rewind(f);
    static char text[4096];
    for (size_t i = 0; i < duration_count; i++) {
        assert_non_null(fgets(text, sizeof text, f));
        char want[512];
        snprintf(want, sizeof want, "\"status\":%d,", (int)(i % 600));
        assert_non_null(strstr(text, want));
        if (i % 3)
            assert_non_null(strstr(text, "\"upstream_status\":502,"));
        else
            assert_non_null(strstr(text, "\"upstream_status\":null,"));
        snprintf(want, sizeof want, "\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f,",
                 (unsigned long long)(i * 7919),
                 (unsigned long long)(i ? UINT64_MAX / i : UINT64_MAX), durations[i]);
        if (!strstr(text, want))
            fail_msg("line %zu: want %s in %s", i, want, text);
        if (i % 5)
            snprintf(want, sizeof want, "\"upstream_ms\":%.3f,", durations[i] / 3);
        else
            snprintf(want, sizeof want, "\"upstream_ms\":null,");
        if (!strstr(text, want))
            fail_msg("line %zu: want %s in %s", i, want, text);
    }
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_access_fields),
        cmocka_unit_test(test_numbers_read_as_printf_wrote_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
