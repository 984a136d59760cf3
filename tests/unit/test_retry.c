/*
 * test_retry.c: the retry rule. A refused or timed-out connect moves on
 * while addresses are left; a dead pooled connection is retried once on a
 * fresh one only when the server cannot have acted on the request (no
 * response byte, no body, nothing sent to the client, and for a request
 * that went out whole, an idempotent method); everything else gives up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/retry.h"

/* A GET that met a pooled connection the server had closed. */
static sy_retry_facts_t stale_get(sy_retry_fault_t fault)
{
    return (sy_retry_facts_t){.fault = fault, .reused = true, .idempotent = true};
}

static void connect_failure_moves_on_while_addresses_are_left(void **state)
{
    sy_retry_facts_t f = {.fault = SY_FAULT_CONNECT, .addresses_left = true};
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NEXT_ADDRESS);
    f.addresses_left = false;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
    /* Nothing was sent: a body or a method does not matter. */
    f = (sy_retry_facts_t){.fault = SY_FAULT_CONNECT, .addresses_left = true, .has_body = true};
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NEXT_ADDRESS);
}

static void stale_pooled_connection_is_retried_once(void **state)
{
    sy_retry_facts_t f = stale_get(SY_FAULT_CLOSED_EARLY);
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NEW_CONNECTION);
    f.retries = 1;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
    f = stale_get(SY_FAULT_WRITE);
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NEW_CONNECTION);
}

static void fresh_connection_is_never_retried(void **state)
{
    sy_retry_facts_t f = stale_get(SY_FAULT_CLOSED_EARLY);
    f.reused = false;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
    f = stale_get(SY_FAULT_WRITE);
    f.reused = false;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
}

static void anything_the_server_may_have_acted_on_is_not_retried(void **state)
{
    sy_retry_facts_t f = stale_get(SY_FAULT_CLOSED_EARLY);
    f.response_bytes = true;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
    f = stale_get(SY_FAULT_CLOSED_EARLY);
    f.has_body = true;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
    f = stale_get(SY_FAULT_WRITE);
    f.has_body = true;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
    f = stale_get(SY_FAULT_CLOSED_EARLY);
    f.response_started = true;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
}

static void non_idempotent_request_is_retried_only_when_its_write_failed(void **state)
{
    sy_retry_facts_t f = stale_get(SY_FAULT_CLOSED_EARLY);
    f.idempotent = false;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
    f.fault = SY_FAULT_WRITE; /* never arrived whole */
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NEW_CONNECTION);
}

static void other_faults_are_never_retried(void **state)
{
    sy_retry_facts_t f = stale_get(SY_FAULT_OTHER);
    f.addresses_left = true;
    assert_int_equal(sy_retry_decide(&f), SY_RETRY_NO);
}

static void idempotent_methods(void **state)
{
    const char *yes[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    const char *no[] = {"POST", "PATCH", "CONNECT", "get", "GETX", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(sy_retry_idempotent(sy_slice_cstr(yes[i])));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(sy_retry_idempotent(sy_slice_cstr(no[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_failure_moves_on_while_addresses_are_left),
        cmocka_unit_test(stale_pooled_connection_is_retried_once),
        cmocka_unit_test(fresh_connection_is_never_retried),
        cmocka_unit_test(anything_the_server_may_have_acted_on_is_not_retried),
        cmocka_unit_test(non_idempotent_request_is_retried_only_when_its_write_failed),
        cmocka_unit_test(other_faults_are_never_retried),
        cmocka_unit_test(idempotent_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
