/*
 * test_bufpool.c: the per-worker block cache. A block put back comes out
 * again for the same size; sizes never mix; at most max_free blocks per
 * size are kept; a new size takes over a class only once it is empty;
 * clear frees everything (ASan reports a leak otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/bufpool.h"

static void a_block_put_back_is_reused(void **state)
{
    sy_bufpool_t p;
    sy_bufpool_init(&p, 4);
    char *a = sy_bufpool_get(&p, 1000);
    assert_non_null(a);
    memset(a, 'x', 1000);
    sy_bufpool_put(&p, a, 1000);
    assert_int_equal(sy_bufpool_cached(&p, 1000), 1);
    char *b = sy_bufpool_get(&p, 1000);
    assert_ptr_equal(a, b);
    assert_int_equal(sy_bufpool_cached(&p, 1000), 0);
    sy_bufpool_put(&p, b, 1000);
    sy_bufpool_clear(&p);
    assert_int_equal(sy_bufpool_cached(&p, 1000), 0);
}

static void sizes_never_mix(void **state)
{
    sy_bufpool_t p;
    sy_bufpool_init(&p, 4);
    void *small = sy_bufpool_get(&p, 64);
    sy_bufpool_put(&p, small, 64);
    void *big = sy_bufpool_get(&p, 4096);
    assert_ptr_not_equal(big, small);
    memset(big, 0, 4096); /* ASan: really 4096 bytes */
    assert_int_equal(sy_bufpool_cached(&p, 64), 1);
    sy_bufpool_put(&p, big, 4096);
    assert_int_equal(sy_bufpool_cached(&p, 4096), 1);
    sy_bufpool_clear(&p);
}

static void at_most_max_free_are_kept(void **state)
{
    sy_bufpool_t p;
    sy_bufpool_init(&p, 2);
    void *b[5];
    for (int i = 0; i < 5; i++)
        b[i] = sy_bufpool_get(&p, 128);
    for (int i = 0; i < 5; i++)
        sy_bufpool_put(&p, b[i], 128);
    assert_int_equal(sy_bufpool_cached(&p, 128), 2);
    sy_bufpool_clear(&p);
}

static void a_new_size_takes_over_an_empty_class(void **state)
{
    sy_bufpool_t p;
    sy_bufpool_init(&p, 8);
    void *held[SY_BUFPOOL_CLASSES];
    /* Every class busy with one cached block of its own size. */
    for (size_t i = 0; i < SY_BUFPOOL_CLASSES; i++) {
        held[i] = sy_bufpool_get(&p, 100 + i);
        sy_bufpool_put(&p, held[i], 100 + i);
    }
    void *extra = sy_bufpool_get(&p, 999);
    sy_bufpool_put(&p, extra, 999); /* no empty class: freed */
    assert_int_equal(sy_bufpool_cached(&p, 999), 0);
    /* Emptied, the first class is free for the new size. */
    void *again = sy_bufpool_get(&p, 100);
    assert_ptr_equal(again, held[0]);
    free(again);
    void *fresh = sy_bufpool_get(&p, 999);
    sy_bufpool_put(&p, fresh, 999);
    assert_int_equal(sy_bufpool_cached(&p, 999), 1);
    assert_int_equal(sy_bufpool_cached(&p, 100), 0);
    sy_bufpool_clear(&p);
}

static void null_and_tiny_blocks(void **state)
{
    sy_bufpool_t p;
    sy_bufpool_init(&p, 2);
    sy_bufpool_put(&p, NULL, 64);
    assert_int_equal(sy_bufpool_cached(&p, 64), 0);
    void *t = sy_bufpool_get(&p, 1); /* room for the link all the same */
    sy_bufpool_put(&p, t, 1);
    assert_int_equal(sy_bufpool_cached(&p, 1), 1);
    sy_bufpool_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_block_put_back_is_reused),
        cmocka_unit_test(sizes_never_mix),
        cmocka_unit_test(at_most_max_free_are_kept),
        cmocka_unit_test(a_new_size_takes_over_an_empty_class),
        cmocka_unit_test(null_and_tiny_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
