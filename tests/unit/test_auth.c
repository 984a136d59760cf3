/*
 * test_auth.c: the auth phase and the typed configuration parsers. IAM
 * passthrough accepts only a well-formed SigV4 Authorization header; a
 * policy without a configuration fails closed; each type's parser refuses
 * bad fields with a message naming them; parsing a jwks_uri policy starts
 * no thread (only activation at publish does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "auth/auth.h"
#include "auth/jwks.h"

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
    sy_auth_policy_t policy = {.name = "partners", .type = type}; /* no configuration */
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

/* Parses `text` as the auth policy "p"; NULL with err filled. */
static sy_auth_config_t *parse(const char *text, sy_error_t *err)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    if (!obj)
        fail_msg("test JSON: %s: %s", text, jerr.text);
    sy_auth_config_t *c = sy_auth_config_parse("p", obj, "auth_policies.p", err);
    json_decref(obj);
    return c;
}

#define HS32 "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\""
#define JWT_HS "\"type\": \"jwt\", \"issuer\": \"i\", \"hs_secret_base64\": " HS32
#define JWT_URI "\"type\": \"jwt\", \"issuer\": \"i\", \"jwks_uri\": \"https://127.0.0.1:1/k.json\""

static void test_config_parsers_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"[]", "auth_policies.p: expected an object"},
        {"{}", "auth_policies.p.type: required field is missing"},
        {"{\"type\": 1}", "auth_policies.p.type: expected a string"},
        {"{\"type\": \"oauth\"}",
         "auth_policies.p.type: expected \"none\", \"basic\", \"jwt\" or \"iam\" (got \"oauth\")"},
        {"{\"type\": \"none\", \"realm\": \"x\"}",
         "auth_policies.p.realm: unknown field (expected one of: type)"},
        {"{\"type\": \"iam\", \"issuer\": \"x\"}", "auth_policies.p.issuer: unknown field"},
        /* basic */
        {"{\"type\": \"basic\"}", "auth_policies.p.users: required field is missing"},
        {"{\"type\": \"basic\", \"users\": []}", "auth_policies.p.users: expected an object"},
        {"{\"type\": \"basic\", \"users\": {}, \"realm\": \"a\\\"b\"}",
         "auth_policies.p.realm: expected 1-100 printable ASCII characters"},
        {"{\"type\": \"basic\", \"users\": {\"a:b\": \"x\"}}",
         "auth_policies.p.users.a:b: user names are 1-128 characters"},
        {"{\"type\": \"basic\", \"users\": {\"alice\": 5}}",
         "auth_policies.p.users.alice: expected a crypt hash string"},
        {"{\"type\": \"basic\", \"users\": {\"alice\": \"secret\"}}",
         "auth_policies.p.users.alice: plain-text password refused; use a crypt hash"},
        {"{\"type\": \"basic\", \"users\": {\"alice\": "
         "\"$2y$13$THTU58oheOFT9e6J6z.cwuEqGCXTwKn1Qz4PZnjfMvg7m9vpqoBg2\"}}",
         "auth_policies.p.users.alice: bcrypt cost 13 is above the maximum 12"},
        {"{\"type\": \"basic\", \"users\": {}, \"passwords\": {}}",
         "auth_policies.p.passwords: unknown field (expected one of: type, realm, users)"},
        /* jwt */
        {"{\"type\": \"jwt\"}", "auth_policies.p.issuer: required field is missing"},
        {"{" JWT_HS "}", "auth_policies.p.algorithms: required field is missing"},
        {"{" JWT_HS ", \"algorithms\": [\"HS256\", \"HS256\"]}",
         "auth_policies.p.algorithms[1]: duplicate algorithm HS256"},
        {"{" JWT_HS ", \"algorithms\": [\"none\"]}",
         "auth_policies.p.algorithms[0]: expected one of RS256"},
        {"{" JWT_HS ", \"algorithms\": [\"RS256\"]}",
         "auth_policies.p.algorithms[0]: RS256 needs jwks_uri or jwks, not hs_secret_base64"},
        {"{" JWT_HS ", \"algorithms\": [\"HS512\"]}",
         "auth_policies.p.hs_secret_base64: HS512 needs a secret of at least 64 bytes"},
        {"{" JWT_URI ", \"algorithms\": [\"HS256\"]}",
         "auth_policies.p.algorithms[0]: HS256 needs hs_secret_base64"},
        {"{" JWT_URI ", \"jwks\": {\"keys\": []}, \"algorithms\": [\"RS256\"]}",
         "auth_policies.p: exactly one key source is required"},
        {"{\"type\": \"jwt\", \"issuer\": \"i\", \"jwks_uri\": \"http://x/k\", "
         "\"algorithms\": [\"RS256\"]}",
         "auth_policies.p.jwks_uri: expected an https:// URL"},
        {"{" JWT_URI ", \"algorithms\": [\"RS256\"], \"clock_skew_seconds\": 601}",
         "auth_policies.p.clock_skew_seconds: expected an integer 0-600"},
        {"{" JWT_URI ", \"algorithms\": [\"RS256\"], \"required_claims\": {\"a\": {}}}",
         "auth_policies.p.required_claims.a: expected a string, integer or boolean"},
        {"{" JWT_URI ", \"algorithms\": [\"RS256\"], \"forward_claims\": {\"sub\": \"Host\"}}",
         "auth_policies.p.forward_claims.sub: header Host is set by switchyard"},
        {"{" JWT_URI ", \"algorithms\": [\"RS256\"], "
         "\"forward_claims\": {\"sub\": \"X-U\", \"email\": \"x-u\"}}",
         "auth_policies.p.forward_claims.email: header x-u is already set from claim sub"},
        {"{" JWT_URI ", \"algorithms\": [\"RS256\"], \"ca_file\": \"/nonexistent/ca.pem\"}",
         "auth_policies.p.ca_file: cannot read /nonexistent/ca.pem"},
        {"{" JWT_URI ", \"algorithms\": [\"RS256\"], \"audience\": [\"x\"]}",
         "auth_policies.p.audience: unknown field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sy_error_t err = {{0}};
        sy_auth_config_t *c = parse(cases[i].text, &err);
        if (c)
            fail_msg("accepted: %s", cases[i].text);
        if (!strstr(err.message, cases[i].message))
            fail_msg("%s\n  got:      %s\n  expected: %s", cases[i].text, err.message,
                     cases[i].message);
    }
}

static void test_config_defaults_live_in_one_place(void **state)
{
    (void)state;
    sy_error_t err;
    sy_auth_config_t *c = parse("{\"type\": \"basic\", \"users\": {}}", &err);
    assert_non_null(c);
    assert_int_equal(sy_auth_config_type(c), SY_AUTH_BASIC);
    assert_string_equal(sy_auth_config_realm(c), "p"); /* the policy name */
    json_t *shown = sy_auth_config_describe(c);
    assert_string_equal(json_string_value(json_object_get(shown, "realm")), "p");
    assert_int_equal(json_array_size(json_object_get(shown, "users")), 0);
    json_decref(shown);
    sy_auth_config_free(c);
    c = parse("{\"type\": \"iam\"}", &err);
    assert_int_equal(sy_auth_config_type(c), SY_AUTH_IAM);
    sy_auth_config_free(c);
}

static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static void test_parsing_a_jwks_uri_starts_nothing(void **state)
{
    (void)state;
    sy_error_t err;
    int before = thread_count();
    assert_true(before > 0);
    sy_auth_config_t *c = parse("{" JWT_URI ", \"algorithms\": [\"RS256\"]}", &err);
    assert_non_null(c);
    assert_int_equal(thread_count(), before); /* no fetcher thread */
    /* Unpublished, it refuses tokens (fail closed). */
    sy_auth_policy_t policy = {.name = "p", .type = SY_AUTH_JWT, .config = c};
    sy_http_header_t hdr = {SY_SLICE_LIT("authorization"), SY_SLICE_LIT("Bearer a.b.c"),
                            SY_HDR_AUTHORIZATION};
    sy_http_request_t req = {.headers = &hdr, .header_count = 1};
    sy_auth_result_t *r = malloc(sizeof *r);
    sy_auth_check(&policy, &req, r);
    assert_int_equal(r->status, 401);
    free(r);
    /* Publishing activates it: now the fetcher runs. */
    sy_auth_activate(&policy, 1);
    assert_int_equal(thread_count(), before + 1);
    sy_auth_activate(&policy, 1); /* idempotent */
    assert_int_equal(thread_count(), before + 1);
    sy_auth_config_free(c);
    sy_jwks_shutdown();
    assert_int_equal(thread_count(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_allows_everything),
        cmocka_unit_test(test_iam_accepts_well_formed),
        cmocka_unit_test(test_iam_refuses_malformed),
        cmocka_unit_test(test_unenforced_types_fail_closed),
        cmocka_unit_test(test_config_parsers_name_the_field),
        cmocka_unit_test(test_config_defaults_live_in_one_place),
        cmocka_unit_test(test_parsing_a_jwks_uri_starts_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
