/*
 * test_timer.c: lazy timeouts (net/timer.c) on a real loop: a deadline
 * moved later is honoured (never fires before it), one moved earlier fires
 * at the earlier time, a stopped timeout never fires, and each timeout fires
 * once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "net/timer.h"

typedef struct {
    sy_timer_t t;
    int fired;
    uint64_t fired_at;
} fixture_t;

static void on_due(uv_timer_t *h)
{
    fixture_t *f = h->data;
    f->fired++;
    f->fired_at = uv_now(h->loop);
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

/* Runs the loop until the timer handle is idle (fired or never armed
 * again), then closes it. */
static void run_and_close(uv_loop_t *loop, fixture_t *f)
{
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&f->t.timer, closed);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void start(uv_loop_t *loop, fixture_t *f)
{
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(sy_timer_init(loop, &f->t, on_due), 0);
    f->t.timer.data = f;
}

static void test_moved_later_waits_for_the_new_deadline(void **state)
{
    (void)state;
    uv_loop_t loop;
    fixture_t f = {0};
    start(&loop, &f);
    uint64_t t0 = uv_now(&loop);
    sy_timer_set(&f.t, 20);
    sy_timer_set(&f.t, 120); /* the libuv timer stays at 20 ms: lazy */
    run_and_close(&loop, &f);
    assert_int_equal(f.fired, 1);
    assert_true(f.fired_at >= t0 + 120);
}

static void test_moved_earlier_fires_earlier(void **state)
{
    (void)state;
    uv_loop_t loop;
    fixture_t f = {0};
    start(&loop, &f);
    uint64_t t0 = uv_now(&loop);
    sy_timer_set(&f.t, 60000);
    sy_timer_set(&f.t, 10);
    run_and_close(&loop, &f); /* would hang for a minute if the timer stayed */
    assert_int_equal(f.fired, 1);
    assert_true(f.fired_at >= t0 + 10);
}

static void test_stopped_never_fires(void **state)
{
    (void)state;
    uv_loop_t loop;
    fixture_t f = {0};
    start(&loop, &f);
    sy_timer_set(&f.t, 10);
    sy_timer_stop(&f.t);
    run_and_close(&loop, &f);
    assert_int_equal(f.fired, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moved_later_waits_for_the_new_deadline),
        cmocka_unit_test(test_moved_earlier_fires_earlier),
        cmocka_unit_test(test_stopped_never_fires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
