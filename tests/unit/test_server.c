/*
 * test_server.c: the pure parts of the worker set-up: the rule that turns
 * the fd limit into a per-worker connection cap, and the heartbeat
 * comparison behind /healthz.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/server.h"

/* Two fds per client (client + upstream) must fit in what is left after
 * the reserve, summed over all workers. */
static void assert_fits(uint64_t fd_limit, int workers, size_t listeners)
{
    sy_server_limits_t l = sy_server_plan_limits(fd_limit, workers, listeners);
    assert_int_equal(l.fd_limit, fd_limit);
    assert_true(l.max_clients >= 1);
    if (!l.too_low) {
        assert_true(l.reserved + (uint64_t)workers * 2 * l.max_clients <= fd_limit);
        assert_true(2 * l.max_clients <= l.worker_budget);
        /* No more than rounding is left unused. */
        assert_true(fd_limit - l.reserved - (uint64_t)workers * l.worker_budget <
                    (uint64_t)workers);
    }
}

static void test_cap_rule(void **state)
{
    (void)state;
    /* The documented example: 256 fds, 2 workers, one listener. */
    sy_server_limits_t l = sy_server_plan_limits(256, 2, 1);
    assert_int_equal(l.reserved, SY_FD_RESERVE_BASE + 2 * (1 + SY_FD_RESERVE_PER_WORKER));
    assert_int_equal(l.reserved, 138);
    assert_int_equal(l.worker_budget, 59);
    assert_int_equal(l.max_clients, 29);
    assert_false(l.too_low);

    /* A typical container limit. */
    l = sy_server_plan_limits(1048576, 4, 2);
    assert_int_equal(l.max_clients, (1048576 - 128 - 4 * 6) / 4 / 2);

    for (uint64_t limit = 140; limit < 5000; limit += 37)
        for (int workers = 1; workers <= 8; workers++)
            assert_fits(limit, workers, 2);
}

static void test_cap_rule_limit_too_low(void **state)
{
    (void)state;
    /* Below the reserve: flagged, and still one connection per worker so
     * the process serves something rather than nothing. */
    sy_server_limits_t l = sy_server_plan_limits(64, 2, 1);
    assert_true(l.too_low);
    assert_int_equal(l.max_clients, 1);
    l = sy_server_plan_limits(0, 0, 0);
    assert_true(l.too_low);
    assert_int_equal(l.max_clients, 1);
    /* Just enough for one client and its upstream on the one worker. */
    l = sy_server_plan_limits(SY_FD_RESERVE_BASE + 1 + SY_FD_RESERVE_PER_WORKER + 2, 1, 1);
    assert_false(l.too_low);
    assert_int_equal(l.max_clients, 1);
}

static void test_stalest_worker(void **state)
{
    (void)state;
    uint64_t silent = 0;
    uint64_t beats[4] = {10000, 9900, 0, 9999};
    /* Everyone beat within the limit; worker 2 is not running. */
    assert_int_equal(sy_server_stalest(beats, 4, 10200, 5000, &silent), -1);
    /* Worker 1 went quiet: reported once past the limit, not at it. */
    assert_int_equal(sy_server_stalest(beats, 4, 9900 + 5000, 5000, &silent), -1);
    assert_int_equal(sy_server_stalest(beats, 4, 9900 + 5001, 5000, &silent), 1);
    assert_int_equal(silent, 5001);
    /* The stalest of several is named. */
    uint64_t more[3] = {1000, 500, 800};
    assert_int_equal(sy_server_stalest(more, 3, 9000, 5000, &silent), 1);
    assert_int_equal(silent, 8500);
    /* A beat newer than "now" (read between two clock reads) is fine. */
    uint64_t ahead[1] = {20000};
    assert_int_equal(sy_server_stalest(ahead, 1, 19999, 5000, &silent), -1);
    /* No worker running (before start, after stop): healthy. */
    uint64_t none[2] = {0, 0};
    assert_int_equal(sy_server_stalest(none, 2, 99999, 5000, NULL), -1);
}

static void test_no_workers_means_not_stalled(void **state)
{
    (void)state;
    int worker = -1;
    uint64_t silent = 0;
    assert_false(sy_server_find_stalled(1u << 30, SY_HEARTBEAT_STALL_MS, &worker, &silent));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_rule),
        cmocka_unit_test(test_cap_rule_limit_too_low),
        cmocka_unit_test(test_stalest_worker),
        cmocka_unit_test(test_no_workers_means_not_stalled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
