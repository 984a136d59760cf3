/*
 * test_auth.c: the auth phase. IAM passthrough accepts only a well-formed
 * SigV4 Authorization header; types not enforced in this build fail closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"

static sy_auth_result_t check(sy_auth_type_t type, const char *authorization, int copies)
{
    sy_http_header_t headers[3];
    sy_http_request_t req = {0};
    req.headers = headers;
    for (int i = 0; authorization && i < copies; i++) {
        headers[i].name = SY_SLICE_LIT("Authorization");
        headers[i].value = sy_slice_cstr(authorization);
        headers[i].id = SY_HDR_AUTHORIZATION;
        req.header_count++;
    }
    sy_auth_policy_t policy = {.name = "p", .type = type, .realm = "partners"};
    sy_auth_result_t out;
    sy_auth_check(&policy, &req, &out);
    return out;
}

#define SIG "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
#define CRED "Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request"
#define GOOD "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;x-amz-date, Signature=" SIG

static void test_none_allows_everything(void **state)
{
    (void)state;
    assert_int_equal(check(SY_AUTH_NONE, NULL, 0).status, 0);
    assert_int_equal(check(SY_AUTH_NONE, "Basic Zm9vOmJhcg==", 1).status, 0);
}

static void test_iam_accepts_well_formed(void **state)
{
    (void)state;
    assert_int_equal(check(SY_AUTH_IAM, GOOD, 1).status, 0);
    /* Components in another order, no spaces after commas. */
    assert_int_equal(
        check(SY_AUTH_IAM, "AWS4-HMAC-SHA256 Signature=" SIG ",SignedHeaders=host," CRED, 1).status,
        0);
}

static void test_iam_refuses_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host",
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature=abc",
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature=" SIG "0",
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature=" SIG ", Signature=" SIG,
        "AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/s/aws4_request, SignedHeaders=host, "
        "Signature=" SIG,
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s/aws5_request, SignedHeaders=host, "
        "Signature=" SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=Host, Signature=" SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=;host, Signature=" SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature=" SIG ", Extra=1",
        "aws4-hmac-sha256 " CRED ", SignedHeaders=host, Signature=" SIG,
        "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, "
        "Signature=FE5F80F77D5FA3BECA038A248FF027D0445342FE2855DDC963176630326F1024",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_auth_result_t r = check(SY_AUTH_IAM, bad[i], 1);
        if (r.status != 401)
            fail_msg("accepted: %s", bad[i]);
        assert_string_equal(r.www_authenticate, "AWS4-HMAC-SHA256");
    }
    assert_int_equal(check(SY_AUTH_IAM, NULL, 0).status, 401);
    /* Two Authorization headers are ambiguous. */
    assert_int_equal(check(SY_AUTH_IAM, GOOD, 2).status, 401);
}

static void test_unenforced_types_fail_closed(void **state)
{
    (void)state;
    sy_auth_result_t r = check(SY_AUTH_BASIC, "Basic YWxpY2U6c2VjcmV0", 1);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.www_authenticate, "Basic realm=\"partners\"");
    r = check(SY_AUTH_JWT, "Bearer eyJhbGciOiJub25lIn0.e30.", 1);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.www_authenticate, "Bearer"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_allows_everything),
        cmocka_unit_test(test_iam_accepts_well_formed),
        cmocka_unit_test(test_iam_refuses_malformed),
        cmocka_unit_test(test_unenforced_types_fail_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
