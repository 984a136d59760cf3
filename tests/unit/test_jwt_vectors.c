/*
 * test_jwt_vectors.c: the JWS/JWT verifier against published vectors in
 * $SY_VECTORS/jwt: jwt_vectors.json (RFC 7515/7520/8037 examples,
 * Wycheproof picks, derived attacks: alg none, HS256 with the RSA public
 * key, expired), the whole Wycheproof JWS file, and the JOSE cookbook.
 *
 * The verifier is run the way an over-permissive policy would configure it
 * (every algorithm allowed), so a rejection comes from the token and key
 * themselves, not from a narrow allow-list. A handful of Wycheproof "valid"
 * cases are refused on purpose, each for a stated rule (see `stricter`);
 * the test fails if one of them is ever accepted, so the list can't rot.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwks.h"
#include "auth/jwt.h"

static char dir[1024];

static bool vectors_dir(void)
{
    const char *env = getenv("SY_VECTORS");
    snprintf(dir, sizeof dir, "%s/jwt", env && env[0] ? env : "tests/vectors");
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/jwt_vectors.json", dir);
    FILE *f = fopen(probe, "r");
    if (!f)
        return false;
    fclose(f);
    return true;
}

static json_t *load(const char *rel)
{
    char path[1200];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        fail_msg("%s: %s", path, jerr.text);
    return doc;
}

static sy_jwk_set_t *single_key_set(const json_t *jwk)
{
    if (!json_is_object(jwk))
        return NULL;
    json_t *doc = json_pack("{s:[O]}", "keys", jwk);
    sy_error_t err;
    sy_jwk_set_t *set = sy_jwk_set_parse(doc, true, &err);
    json_decref(doc);
    return set;
}

/* The outcome of a JWS (and optionally JWT claims at now) check. */
static sy_jwt_status_t verify(const char *token, const sy_jwk_set_t *keys, bool claims, int64_t now)
{
    sy_jws_t jws;
    sy_slice_t t = sy_slice_cstr(token);
    sy_jwt_status_t s = sy_jws_parse(t, &jws);
    if (s != SY_JWT_OK)
        return s;
    s = sy_jws_verify(&jws, t, keys, SY_JWT_ALL_ALGS);
    if (s == SY_JWT_OK && claims) {
        json_t *c = sy_jwt_claims_parse(jws.payload, jws.payload_len);
        if (!c) {
            s = SY_JWT_MALFORMED;
        } else {
            sy_jwt_rules_t rules = {.require_exp = true};
            s = sy_jwt_check_claims(c, &rules, now);
            json_decref(c);
        }
    }
    sy_jws_free(&jws);
    return s;
}

static void test_jwt_vectors(void **state)
{
    (void)state;
    if (!vectors_dir()) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    json_t *doc = load("jwt_vectors.json");
    json_t *cases = json_object_get(doc, "cases");
    size_t i, accepted = 0, rejected = 0, failures = 0;
    json_t *c;
    assert_true(json_array_size(cases) > 0);
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *token = json_string_value(json_object_get(c, "token"));
        const char *check = json_string_value(json_object_get(c, "check"));
        bool want = strcmp(json_string_value(json_object_get(c, "expected")), "accept") == 0;
        sy_jwk_set_t *keys = single_key_set(json_object_get(c, "jwk_public"));
        sy_jwt_status_t s =
            verify(token, keys, strstr(check, "claims") != NULL, (int64_t)time(NULL));
        sy_jwk_set_release(keys);
        if ((s == SY_JWT_OK) != want) {
            print_error("%s: expected %s, got %s\n", name, want ? "accept" : "reject",
                        sy_jwt_status_name(s));
            failures++;
        }
        if (s == SY_JWT_OK)
            accepted++;
        else
            rejected++;
    }
    print_message("jwt_vectors.json: %zu accepted, %zu rejected\n", accepted, rejected);
    assert_int_equal(failures, 0);
    json_decref(doc);
}

/* Wycheproof "valid" cases that switchyard refuses by design. */
static const struct {
    int tc;
    const char *why;
} stricter[] = {
    {346, "the key says alg PS256; a key serves only the algorithm it names (RFC 8725 3.1)"},
    {350, "the key says alg PS256; a key serves only the algorithm it names"},
    {347, "the key says alg ES521 (no such algorithm); the token is ES512"},
    {351, "the key says alg ES521 (no such algorithm); the token is ES512"},
    {372, "'?' inside the header: strict base64url refuses characters outside its alphabet"},
    {373, "'?' inside the payload: strict base64url"},
};

static const char *stricter_reason(int tc)
{
    for (size_t i = 0; i < sizeof stricter / sizeof stricter[0]; i++)
        if (stricter[i].tc == tc)
            return stricter[i].why;
    return NULL;
}

static void test_wycheproof_jws(void **state)
{
    (void)state;
    if (!vectors_dir()) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    json_t *doc = load("wycheproof/json_web_signature_test.json");
    size_t gi, ti, total = 0, failures = 0, strict_seen = 0, contradictory = 0;
    const char *valid_357 = NULL;
    json_t *g, *t;
    json_array_foreach(json_object_get(doc, "testGroups"), gi, g)
    {
        json_t *jwk = json_object_get(g, "public");
        if (!jwk)
            jwk = json_object_get(g, "private"); /* oct keys only come as "private" */
        sy_jwk_set_t *keys = single_key_set(jwk);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            int tc = (int)json_integer_value(json_object_get(t, "tcId"));
            const char *result = json_string_value(json_object_get(t, "result"));
            bool want = strcmp(result, "valid") == 0;
            sy_jwt_status_t s =
                verify(json_string_value(json_object_get(t, "jws")), keys, false, 0);
            const char *why = stricter_reason(tc);
            total++;
            /* tc 367 and 370 ("invalidBase64Padding...") are byte-identical
             * to tc 357, which is valid: no verifier can satisfy both. Check
             * that this is still so, then skip them. */
            if ((tc == 367 || tc == 370) && valid_357 &&
                strcmp(valid_357, json_string_value(json_object_get(t, "jws"))) == 0) {
                contradictory++;
                continue;
            }
            if (tc == 357)
                valid_357 = json_string_value(json_object_get(t, "jws"));
            if (why) {
                strict_seen++;
                if (s == SY_JWT_OK) {
                    print_error("tc %d accepted, but should be refused: %s\n", tc, why);
                    failures++;
                }
                continue;
            }
            if ((s == SY_JWT_OK) != want) {
                print_error("tc %d (%s): expected %s, got %s\n", tc,
                            json_string_value(json_object_get(t, "comment")), result,
                            sy_jwt_status_name(s));
                failures++;
            }
        }
        sy_jwk_set_release(keys);
    }
    print_message("wycheproof JWS: %zu cases, %zu refused by stricter rules, %zu contradictory\n",
                  total, strict_seen, contradictory);
    assert_int_equal(strict_seen, sizeof stricter / sizeof stricter[0]);
    assert_true(total >= 400);
    assert_int_equal(failures, 0);
    json_decref(doc);
}

/* Wycheproof key-set cases switchyard does not detect. */
static const struct {
    int tc;
    const char *why;
} unsupported_jwk[] = {
    {7, "ROCA-weak RSA moduli are not fingerprinted"},
};

static void test_wycheproof_jwk(void **state)
{
    (void)state;
    if (!vectors_dir()) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    /* Key-set vectors: ambiguous sets (duplicate kid, secret and public
     * keys mixed), short or empty secrets, keys for the wrong curve, use or
     * algorithm must never verify; sound sets must. */
    json_t *doc = load("wycheproof/json_web_key_test.json");
    size_t gi, ti, failures = 0, total = 0;
    json_t *g, *t;
    json_array_foreach(json_object_get(doc, "testGroups"), gi, g)
    {
        json_t *jwks = json_object_get(g, "public");
        if (!jwks)
            jwks = json_object_get(g, "private");
        sy_error_t err;
        sy_jwk_set_t *keys = sy_jwk_set_parse(jwks, true, &err);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            int tc = (int)json_integer_value(json_object_get(t, "tcId"));
            bool skip_tc = false;
            for (size_t k = 0; k < sizeof unsupported_jwk / sizeof unsupported_jwk[0]; k++)
                skip_tc = skip_tc || unsupported_jwk[k].tc == tc;
            if (skip_tc)
                continue;
            const char *result = json_string_value(json_object_get(t, "result"));
            sy_jwt_status_t s =
                verify(json_string_value(json_object_get(t, "jws")), keys, false, 0);
            total++;
            if ((s == SY_JWT_OK) != (strcmp(result, "valid") == 0)) {
                print_error("jwk tc %d (%s): expected %s, got %s\n", tc,
                            json_string_value(json_object_get(t, "comment")), result,
                            sy_jwt_status_name(s));
                failures++;
            }
        }
        sy_jwk_set_release(keys);
    }
    print_message("wycheproof JWK: %zu cases\n", total);
    assert_true(total >= 20);
    assert_int_equal(failures, 0);
    json_decref(doc);
}

static void test_cookbook(void **state)
{
    (void)state;
    if (!vectors_dir()) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    static const char *const compact[] = {
        "jose-cookbook/jws/4_1.rsa_v15_signature.json",
        "jose-cookbook/jws/4_2.rsa-pss_signature.json",
        "jose-cookbook/jws/4_3.ecdsa_signature.json",
        "jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json",
        "jose-cookbook/curve25519/jws.json",
    };
    for (size_t i = 0; i < sizeof compact / sizeof compact[0]; i++) {
        json_t *doc = load(compact[i]);
        json_t *in = json_object_get(doc, "input");
        sy_jwk_set_t *keys = single_key_set(json_object_get(in, "key"));
        if (!keys)
            fail_msg("%s: key did not parse", compact[i]);
        const char *token =
            json_string_value(json_object_get(json_object_get(doc, "output"), "compact"));
        sy_jwt_status_t s = verify(token, keys, false, 0);
        if (s != SY_JWT_OK)
            fail_msg("%s: %s", compact[i], sy_jwt_status_name(s));
        /* The same token with one signature bit flipped must fail. */
        char *bad = strdup(token);
        char *last = bad + strlen(bad) - 2;
        *last = *last == 'A' ? 'B' : 'A';
        assert_int_not_equal(verify(bad, keys, false, 0), SY_JWT_OK);
        free(bad);
        /* And the key must not serve another algorithm family. */
        sy_jws_t jws;
        assert_int_equal(sy_jws_parse(sy_slice_cstr(token), &jws), SY_JWT_OK);
        sy_jwt_alg_t other = jws.alg == SY_JWT_HS256 ? SY_JWT_RS256 : SY_JWT_HS256;
        assert_false(sy_jws_verify_with_key(&keys->keys[0], other, (const unsigned char *)token,
                                            jws.signing_input_len, jws.signature,
                                            jws.signature_len));
        sy_jws_free(&jws);
        sy_jwk_set_release(keys);
        json_decref(doc);
    }
    /* Detached content (4.5): the compact form has an empty payload and the
     * signature covers content we never receive: it must not verify. */
    json_t *doc = load("jose-cookbook/jws/4_5.signature_with_detached_content.json");
    sy_jwk_set_t *keys = single_key_set(json_object_get(json_object_get(doc, "input"), "key"));
    assert_non_null(keys);
    assert_int_not_equal(
        verify(json_string_value(json_object_get(json_object_get(doc, "output"), "compact")), keys,
               false, 0),
        SY_JWT_OK);
    sy_jwk_set_release(keys);
    json_decref(doc);
    /* Every published public key parses. */
    static const char *const jwks[] = {
        "jose-cookbook/jwk/3_1.ec_public_key.json",
        "jose-cookbook/jwk/3_3.rsa_public_key.json",
        "jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json",
    };
    for (size_t i = 0; i < sizeof jwks / sizeof jwks[0]; i++) {
        doc = load(jwks[i]);
        sy_jwk_t key;
        sy_error_t err;
        if (!sy_jwk_parse(doc, &key, &err))
            fail_msg("%s: %s", jwks[i], err.message);
        sy_jwk_clear(&key);
        json_decref(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_vectors),
        cmocka_unit_test(test_wycheproof_jws),
        cmocka_unit_test(test_wycheproof_jwk),
        cmocka_unit_test(test_cookbook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
