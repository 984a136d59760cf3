/*
 * test_jwt.c: the JWT path with keys made at test time: strict base64url,
 * every algorithm family round-trips and refuses tampering, the classic
 * attacks (alg none, HS256 keyed with the RSA public key, crit, duplicate
 * JSON keys, DER-encoded ECDSA), kid selection, claims at their boundary
 * seconds, and the whole policy path through sy_auth_check_at: 401/403,
 * subject, forward_claims headers and the drop list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "core/base64.h"

/* ---- minting ---- */

static const EVP_MD *md_for(const char *alg)
{
    if (strstr(alg, "384"))
        return EVP_sha384();
    if (strstr(alg, "512"))
        return EVP_sha512();
    return strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256();
}

/* Signs header.payload with alg; the result is malloc'd. For HS*, secret
 * is used; otherwise pkey. */
static char *mint(const char *alg, EVP_PKEY *pkey, const unsigned char *secret, size_t secret_len,
                  const char *header_json, const char *payload_json)
{
    size_t cap = 2 * (strlen(header_json) + strlen(payload_json)) + 2048;
    char *tok = malloc(cap);
    sy_base64_encode((const unsigned char *)header_json, strlen(header_json), true, false, tok);
    strcat(tok, ".");
    sy_base64_encode((const unsigned char *)payload_json, strlen(payload_json), true, false,
                     tok + strlen(tok));
    size_t input_len = strlen(tok);
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    if (alg[0] == 'H') {
        unsigned int n = 0;
        HMAC(md_for(alg), secret, (int)secret_len, (unsigned char *)tok, input_len, sig, &n);
        sig_len = n;
    } else {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md_for(alg), NULL, pkey), 1);
        if (alg[0] == 'P') {
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
        }
        assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)tok, input_len), 1);
        EVP_MD_CTX_free(ctx);
        if (alg[0] == 'E' && alg[1] == 'S') {
            /* DER -> raw r||s */
            size_t width = strstr(alg, "256") ? 32 : strstr(alg, "384") ? 48 : 66;
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
            assert_non_null(es);
            unsigned char raw[132];
            BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)width);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + width, (int)width);
            ECDSA_SIG_free(es);
            memcpy(sig, raw, 2 * width);
            sig_len = 2 * width;
        }
    }
    strcat(tok, ".");
    sy_base64_encode(sig, sig_len, true, false, tok + strlen(tok));
    return tok;
}

static void bn_member(json_t *jwk, const char *name, EVP_PKEY *pkey, const char *param)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, param, &bn), 1);
    unsigned char buf[1024];
    char text[1400];
    int n = BN_bn2bin(bn, buf);
    sy_base64_encode(buf, (size_t)n, true, false, text);
    json_object_set_new(jwk, name, json_string(text));
    BN_free(bn);
}

/* The public JWK of pkey, with kid (may be NULL). */
static json_t *jwk_of(EVP_PKEY *pkey, const char *kid)
{
    json_t *jwk = json_object();
    char text[400];
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        json_object_set_new(jwk, "kty", json_string("RSA"));
        bn_member(jwk, "n", pkey, OSSL_PKEY_PARAM_RSA_N);
        bn_member(jwk, "e", pkey, OSSL_PKEY_PARAM_RSA_E);
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        unsigned char pt[200];
        size_t len = 0;
        char group[64];
        assert_int_equal(
            EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len), 1);
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL);
        size_t w = (len - 1) / 2;
        json_object_set_new(jwk, "kty", json_string("EC"));
        json_object_set_new(jwk, "crv",
                            json_string(w == 32   ? "P-256"
                                        : w == 48 ? "P-384"
                                                  : "P-521"));
        sy_base64_encode(pt + 1, w, true, false, text);
        json_object_set_new(jwk, "x", json_string(text));
        sy_base64_encode(pt + 1 + w, w, true, false, text);
        json_object_set_new(jwk, "y", json_string(text));
    } else {
        unsigned char raw[32];
        size_t len = sizeof raw;
        assert_int_equal(EVP_PKEY_get_raw_public_key(pkey, raw, &len), 1);
        json_object_set_new(jwk, "kty", json_string("OKP"));
        json_object_set_new(jwk, "crv", json_string("Ed25519"));
        sy_base64_encode(raw, len, true, false, text);
        json_object_set_new(jwk, "x", json_string(text));
    }
    if (kid)
        json_object_set_new(jwk, "kid", json_string(kid));
    return jwk;
}

static sy_jwk_set_t *set_of(json_t *jwk_list_steal)
{
    json_t *doc = json_pack("{s:o}", "keys", jwk_list_steal);
    sy_error_t err;
    sy_jwk_set_t *set = sy_jwk_set_parse(doc, true, &err);
    if (!set)
        fail_msg("key set: %s", err.message);
    json_decref(doc);
    return set;
}

static EVP_PKEY *rsa2048, *p256, *p384, *p521, *ed25519;
static const unsigned char secret[48] = "0123456789abcdef0123456789abcdef0123456789abcdef";

static int setup(void **state)
{
    (void)state;
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return rsa2048 && p256 && p384 && p521 && ed25519 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(ed25519);
    return 0;
}

static sy_jwt_status_t verify(const char *token, const sy_jwk_set_t *keys, unsigned algs)
{
    sy_jws_t jws;
    sy_jwt_status_t s = sy_jws_parse(sy_slice_cstr(token), &jws);
    if (s != SY_JWT_OK)
        return s;
    s = sy_jws_verify(&jws, sy_slice_cstr(token), keys, algs);
    sy_jws_free(&jws);
    return s;
}

/* ---- tests ---- */

static void test_base64url_is_strict(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n;
    assert_true(sy_base64url_decode(SY_SLICE_LIT("QUJD"), out, sizeof out, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(out, "ABC", 3);
    assert_true(sy_base64url_decode(SY_SLICE_LIT("QQ"), out, sizeof out, &n));
    assert_int_equal(n, 1);
    assert_true(sy_base64url_decode(SY_SLICE_LIT("-_8"), out, sizeof out, &n));
    assert_int_equal(n, 2);
    assert_true(sy_base64url_decode(SY_SLICE_LIT(""), out, sizeof out, &n));
    assert_int_equal(n, 0);
    static const char *const bad[] = {"QQ==", "QQ=",    "+/8",  "Q",  "QUJ D",
                                      "QR",   "QUJD\n", "QU.D", "QUJ"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sy_base64url_decode(sy_slice_cstr(bad[i]), out, sizeof out, &n))
            fail_msg("accepted \"%s\"", bad[i]);
    /* "QUJ" has non-zero leftover bits; "QUE" is the canonical "AA". */
    assert_true(sy_base64url_decode(SY_SLICE_LIT("QUE"), out, sizeof out, &n));
    /* Capacity is honoured. */
    assert_false(sy_base64url_decode(SY_SLICE_LIT("QUJDQUJD"), out, 5, &n));
}

static void test_every_algorithm_round_trips(void **state)
{
    (void)state;
    static const char payload[] = "{\"sub\":\"u\",\"exp\":4102444800}";
    const struct {
        const char *alg;
        EVP_PKEY **key;
    } cases[] = {{"RS256", &rsa2048}, {"RS384", &rsa2048}, {"RS512", &rsa2048}, {"PS256", &rsa2048},
                 {"PS384", &rsa2048}, {"PS512", &rsa2048}, {"ES256", &p256},    {"ES384", &p384},
                 {"ES512", &p521},    {"EdDSA", &ed25519}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char header[64];
        snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"k\"}", cases[i].alg);
        char *tok = mint(cases[i].alg, *cases[i].key, NULL, 0, header, payload);
        sy_jwk_set_t *keys = set_of(json_pack("[o]", jwk_of(*cases[i].key, "k")));
        sy_jwt_alg_t alg;
        assert_true(sy_jwt_alg_parse(sy_slice_cstr(cases[i].alg), &alg));
        if (verify(tok, keys, SY_JWT_ALG_BIT(alg)) != SY_JWT_OK)
            fail_msg("%s did not verify", cases[i].alg);
        /* Not in the allowed list: refused before any key is tried. */
        assert_int_equal(verify(tok, keys, SY_JWT_ALL_ALGS & ~SY_JWT_ALG_BIT(alg)),
                         SY_JWT_ALG_REFUSED);
        /* One payload bit changed. */
        char *dot = strchr(tok, '.') + 1;
        dot[3] = dot[3] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(tok, keys, SY_JWT_ALL_ALGS), SY_JWT_BAD_SIGNATURE);
        free(tok);
        sy_jwk_set_release(keys);
    }
    char *tok = mint("HS384", NULL, secret, sizeof secret, "{\"alg\":\"HS384\"}", payload);
    sy_jwk_set_t *keys = sy_jwk_set_from_secret(secret, sizeof secret, NULL);
    assert_int_equal(verify(tok, keys, SY_JWT_ALL_ALGS), SY_JWT_OK);
    /* HS512 needs a 64-byte secret: this one is too short for it. */
    char *tok512 = mint("HS512", NULL, secret, sizeof secret, "{\"alg\":\"HS512\"}", payload);
    assert_int_equal(verify(tok512, keys, SY_JWT_ALL_ALGS), SY_JWT_NO_KEY);
    free(tok512);
    free(tok);
    sy_jwk_set_release(keys);
}

static void test_algorithm_confusion_is_refused(void **state)
{
    (void)state;
    static const char payload[] = "{\"exp\":4102444800}";
    sy_jwk_set_t *rsa = set_of(json_pack("[o]", jwk_of(rsa2048, NULL)));
    /* HS256 keyed with the RSA public key, in the encodings attackers try. */
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(rsa2048, &der);
    char *tok = mint("HS256", NULL, der, (size_t)der_len, "{\"alg\":\"HS256\"}", payload);
    assert_int_equal(verify(tok, rsa, SY_JWT_ALL_ALGS), SY_JWT_NO_KEY);
    free(tok);
    OPENSSL_free(der);
    /* An EC signature presented as RS256, and an RSA key asked for ES256. */
    tok = mint("ES256", p256, NULL, 0, "{\"alg\":\"RS256\"}", payload);
    assert_int_equal(verify(tok, rsa, SY_JWT_ALL_ALGS), SY_JWT_BAD_SIGNATURE);
    free(tok);
    tok = mint("ES256", p256, NULL, 0, "{\"alg\":\"ES256\"}", payload);
    assert_int_equal(verify(tok, rsa, SY_JWT_ALL_ALGS), SY_JWT_NO_KEY);
    /* P-384 key for an ES256 token. */
    sy_jwk_set_t *ec384 = set_of(json_pack("[o]", jwk_of(p384, NULL)));
    assert_int_equal(verify(tok, ec384, SY_JWT_ALL_ALGS), SY_JWT_NO_KEY);
    free(tok);
    /* A key that names its algorithm serves only that one. */
    json_t *jwk = jwk_of(rsa2048, NULL);
    json_object_set_new(jwk, "alg", json_string("PS256"));
    sy_jwk_set_t *pinned = set_of(json_pack("[o]", jwk));
    tok = mint("RS256", rsa2048, NULL, 0, "{\"alg\":\"RS256\"}", payload);
    assert_int_equal(verify(tok, rsa, SY_JWT_ALL_ALGS), SY_JWT_OK);
    assert_int_equal(verify(tok, pinned, SY_JWT_ALL_ALGS), SY_JWT_NO_KEY);
    free(tok);
    /* An encryption key never verifies. */
    jwk = jwk_of(rsa2048, NULL);
    json_object_set_new(jwk, "use", json_string("enc"));
    sy_jwk_set_t *enc = set_of(json_pack("[o]", jwk));
    tok = mint("RS256", rsa2048, NULL, 0, "{\"alg\":\"RS256\"}", payload);
    assert_int_equal(verify(tok, enc, SY_JWT_ALL_ALGS), SY_JWT_NO_KEY);
    free(tok);
    /* RSA below 2048 bits is refused when the key is loaded. */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    sy_jwk_t key;
    sy_error_t err;
    json_t *sj = jwk_of(small, NULL);
    assert_false(sy_jwk_parse(sj, &key, &err));
    assert_non_null(strstr(err.message, "2048"));
    json_decref(sj);
    EVP_PKEY_free(small);
    /* Mixed symmetric and public keys in one set are refused. */
    json_t *oct = json_pack("{s:s,s:s}", "kty", "oct", "k", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3");
    json_t *mixed = json_pack("{s:[o,o]}", "keys", oct, jwk_of(p256, NULL));
    assert_null(sy_jwk_set_parse(mixed, true, &err));
    /* A fetched set drops the secret and keeps the public key. */
    sy_jwk_set_t *fetched = sy_jwk_set_parse(mixed, false, &err);
    assert_non_null(fetched);
    assert_int_equal(fetched->count, 1);
    assert_int_equal(fetched->keys[0].kty, SY_JWK_EC);
    sy_jwk_set_release(fetched);
    json_decref(mixed);
    sy_jwk_set_release(rsa);
    sy_jwk_set_release(ec384);
    sy_jwk_set_release(pinned);
    sy_jwk_set_release(enc);
}

static void test_malformed_tokens(void **state)
{
    (void)state;
    static const char payload[] = "{\"exp\":4102444800}";
    sy_jwk_set_t *keys = sy_jwk_set_from_secret(secret, sizeof secret, NULL);
    const struct {
        const char *header;
        sy_jwt_status_t want;
    } headers[] = {
        {"{\"alg\":\"none\"}", SY_JWT_ALG_REFUSED},
        {"{\"alg\":\"None\"}", SY_JWT_ALG_REFUSED},
        {"{\"alg\":\"hs256\"}", SY_JWT_ALG_REFUSED},
        {"{\"typ\":\"JWT\"}", SY_JWT_ALG_REFUSED},
        {"{\"alg\":[\"HS256\"]}", SY_JWT_ALG_REFUSED},
        {"{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", SY_JWT_CRIT},
        {"{\"alg\":\"HS256\",\"crit\":[]}", SY_JWT_CRIT},
        {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", SY_JWT_MALFORMED},
        {"[\"HS256\"]", SY_JWT_MALFORMED},
        {"{\"alg\":\"HS256\"", SY_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"kid\":7}", SY_JWT_MALFORMED},
        {"{\"alg\":\"HS256\"}", SY_JWT_OK},
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *tok = mint("HS256", NULL, secret, sizeof secret, headers[i].header, payload);
        sy_jwt_status_t s = verify(tok, keys, SY_JWT_ALL_ALGS);
        if (s != headers[i].want)
            fail_msg("%s: got %s, want %s", headers[i].header, sy_jwt_status_name(s),
                     sy_jwt_status_name(headers[i].want));
        free(tok);
    }
    char *tok = mint("HS256", NULL, secret, sizeof secret, "{\"alg\":\"HS256\"}", payload);
    char buf[200];
    /* Extra or missing parts, an empty signature, padding. */
    snprintf(buf, sizeof buf, "%s.", tok);
    assert_int_equal(verify(buf, keys, SY_JWT_ALL_ALGS), SY_JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%.*s", (int)(strrchr(tok, '.') - tok + 1), tok);
    assert_int_equal(verify(buf, keys, SY_JWT_ALL_ALGS), SY_JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%.*s", (int)(strrchr(tok, '.') - tok), tok);
    assert_int_equal(verify(buf, keys, SY_JWT_ALL_ALGS), SY_JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%s=", tok);
    assert_int_equal(verify(buf, keys, SY_JWT_ALL_ALGS), SY_JWT_MALFORMED);
    free(tok);
    /* Size limit. */
    char *big = malloc(SY_JWT_MAX_TOKEN_BYTES + 2);
    memset(big, 'A', SY_JWT_MAX_TOKEN_BYTES + 1);
    big[SY_JWT_MAX_TOKEN_BYTES + 1] = '\0';
    assert_int_equal(verify(big, keys, SY_JWT_ALL_ALGS), SY_JWT_TOO_LARGE);
    free(big);
    /* ECDSA: a DER signature (what OpenSSL emits) instead of raw r||s. */
    sy_jwk_set_t *ec = set_of(json_pack("[o]", jwk_of(p256, NULL)));
    char *ok = mint("ES256", p256, NULL, 0, "{\"alg\":\"ES256\"}", payload);
    assert_int_equal(verify(ok, ec, SY_JWT_ALL_ALGS), SY_JWT_OK);
    {
        sy_jws_t jws;
        assert_int_equal(sy_jws_parse(sy_slice_cstr(ok), &jws), SY_JWT_OK);
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(jws.signature, 32, NULL),
                       BN_bin2bn(jws.signature + 32, 32, NULL));
        unsigned char *der = NULL;
        int der_len = i2d_ECDSA_SIG(es, &der);
        assert_false(sy_jws_verify_with_key(&ec->keys[0], SY_JWT_ES256, (const unsigned char *)ok,
                                            jws.signing_input_len, der, (size_t)der_len));
        /* r||s with a leading zero byte added: wrong width. */
        unsigned char longer[65] = {0};
        memcpy(longer + 1, jws.signature, 64);
        assert_false(sy_jws_verify_with_key(&ec->keys[0], SY_JWT_ES256, (const unsigned char *)ok,
                                            jws.signing_input_len, longer, sizeof longer));
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
        sy_jws_free(&jws);
    }
    free(ok);
    sy_jwk_set_release(ec);
    sy_jwk_set_release(keys);
}

static void test_kid_selection(void **state)
{
    (void)state;
    static const char payload[] = "{\"exp\":4102444800}";
    sy_jwk_set_t *keys = set_of(json_pack("[o,o]", jwk_of(p256, "a"), jwk_of(ed25519, "b")));
    char *tok = mint("EdDSA", ed25519, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"b\"}", payload);
    assert_int_equal(verify(tok, keys, SY_JWT_ALL_ALGS), SY_JWT_OK);
    free(tok);
    /* kid "a" is the EC key: EdDSA doesn't fit it. */
    tok = mint("EdDSA", ed25519, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"a\"}", payload);
    assert_int_equal(verify(tok, keys, SY_JWT_ALL_ALGS), SY_JWT_NO_KEY);
    free(tok);
    tok = mint("EdDSA", ed25519, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"new\"}", payload);
    assert_int_equal(verify(tok, keys, SY_JWT_ALL_ALGS), SY_JWT_UNKNOWN_KID);
    free(tok);
    /* No kid: every fitting key is tried. */
    tok = mint("ES256", p256, NULL, 0, "{\"alg\":\"ES256\"}", payload);
    assert_int_equal(verify(tok, keys, SY_JWT_ALL_ALGS), SY_JWT_OK);
    free(tok);
    sy_jwk_set_release(keys);
}

static sy_jwt_status_t claims_at(const char *json, const sy_jwt_rules_t *rules, int64_t now)
{
    json_t *c = sy_jwt_claims_parse((const unsigned char *)json, strlen(json));
    assert_non_null(c);
    sy_jwt_status_t s = sy_jwt_check_claims(c, rules, now);
    json_decref(c);
    return s;
}

static void test_claims_at_boundaries(void **state)
{
    (void)state;
    sy_jwt_rules_t r = {.require_exp = true};
    /* exp: valid strictly before it. */
    assert_int_equal(claims_at("{\"exp\":1000}", &r, 999), SY_JWT_OK);
    assert_int_equal(claims_at("{\"exp\":1000}", &r, 1000), SY_JWT_EXPIRED);
    assert_int_equal(claims_at("{\"exp\":1000.5}", &r, 1000), SY_JWT_OK);
    r.clock_skew_seconds = 60;
    assert_int_equal(claims_at("{\"exp\":1000}", &r, 1059), SY_JWT_OK);
    assert_int_equal(claims_at("{\"exp\":1000}", &r, 1060), SY_JWT_EXPIRED);
    /* nbf and iat: not after now + skew. */
    assert_int_equal(claims_at("{\"exp\":9999,\"nbf\":1060}", &r, 1000), SY_JWT_OK);
    assert_int_equal(claims_at("{\"exp\":9999,\"nbf\":1061}", &r, 1000), SY_JWT_NOT_YET_VALID);
    assert_int_equal(claims_at("{\"exp\":9999,\"iat\":1060}", &r, 1000), SY_JWT_OK);
    assert_int_equal(claims_at("{\"exp\":9999,\"iat\":1061}", &r, 1000), SY_JWT_ISSUED_IN_FUTURE);
    r.clock_skew_seconds = 0;
    assert_int_equal(claims_at("{\"exp\":9999,\"nbf\":1000}", &r, 1000), SY_JWT_OK);
    assert_int_equal(claims_at("{\"exp\":9999,\"nbf\":1000}", &r, 999), SY_JWT_NOT_YET_VALID);
    /* Types. */
    assert_int_equal(claims_at("{}", &r, 0), SY_JWT_EXP_MISSING);
    assert_int_equal(claims_at("{\"exp\":\"9999\"}", &r, 0), SY_JWT_BAD_CLAIM_TYPE);
    assert_int_equal(claims_at("{\"exp\":9999,\"nbf\":null}", &r, 0), SY_JWT_BAD_CLAIM_TYPE);
    assert_int_equal(claims_at("{\"exp\":true}", &r, 0), SY_JWT_BAD_CLAIM_TYPE);
    /* iss and aud. */
    json_t *auds = json_pack("[s,s]", "orders", "billing");
    json_t *req = json_pack("{s:s,s:i,s:b}", "token_use", "access", "tier", 2, "admin", 0);
    sy_jwt_rules_t full = {"https://issuer", auds, req, 0, true};
    const char *base = "\"exp\":9999,\"token_use\":\"access\",\"tier\":2,\"admin\":false";
    const struct {
        const char *extra;
        sy_jwt_status_t want;
    } cases[] = {
        {"\"iss\":\"https://issuer\",\"aud\":\"orders\"", SY_JWT_OK},
        {"\"iss\":\"https://issuer\",\"aud\":[\"x\",\"billing\"]", SY_JWT_OK},
        {"\"iss\":\"https://issuer/\",\"aud\":\"orders\"", SY_JWT_BAD_ISSUER},
        {"\"iss\":\"https://ISSUER\",\"aud\":\"orders\"", SY_JWT_BAD_ISSUER},
        {"\"aud\":\"orders\"", SY_JWT_BAD_ISSUER},
        {"\"iss\":\"https://issuer\",\"aud\":\"payments\"", SY_JWT_BAD_AUDIENCE},
        {"\"iss\":\"https://issuer\",\"aud\":[]", SY_JWT_BAD_AUDIENCE},
        {"\"iss\":\"https://issuer\",\"aud\":[1,\"orders\"]", SY_JWT_BAD_AUDIENCE},
        {"\"iss\":\"https://issuer\"", SY_JWT_BAD_AUDIENCE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[400];
        snprintf(json, sizeof json, "{%s,%s}", base, cases[i].extra);
        sy_jwt_status_t s = claims_at(json, &full, 100);
        if (s != cases[i].want)
            fail_msg("%s: got %s", json, sy_jwt_status_name(s));
    }
    /* required_claims: JSON equality, and only after everything else. */
    const char *ok = "\"iss\":\"https://issuer\",\"aud\":\"orders\",\"exp\":9999";
    const char *wrong[] = {"\"token_use\":\"id\",\"tier\":2,\"admin\":false",
                           "\"token_use\":\"access\",\"tier\":\"2\",\"admin\":false",
                           "\"token_use\":\"access\",\"tier\":2,\"admin\":0",
                           "\"token_use\":\"access\",\"tier\":2"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char json[400];
        snprintf(json, sizeof json, "{%s,%s}", ok, wrong[i]);
        assert_int_equal(claims_at(json, &full, 100), SY_JWT_CLAIM_MISMATCH);
        assert_int_equal(claims_at(json, &full, 99999), SY_JWT_EXPIRED);
    }
    json_decref(auds);
    json_decref(req);
}

/* ---- the policy path ---- */

static sy_http_header_t hdrs[4];
static sy_http_request_t request_with(const char *authorization)
{
    sy_http_request_t req = {0};
    req.headers = hdrs;
    if (authorization) {
        hdrs[0] = (sy_http_header_t){SY_SLICE_LIT("Authorization"), sy_slice_cstr(authorization),
                                     SY_HDR_AUTHORIZATION};
        req.header_count = 1;
    }
    return req;
}

static bool has_header(const sy_auth_result_t *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->add_count; i++)
        if (sy_slice_eq_cstr_nocase(r->add[i].name, name))
            return sy_slice_eq(r->add[i].value, sy_slice_cstr(value));
    return false;
}

static void test_policy_path(void **state)
{
    (void)state;
    json_t *config = json_pack(
        "{s:s,s:s,s:[s],s:{s:[o,o]},s:[s,s],s:i,s:{s:s},s:{s:s,s:s,s:s,s:s,s:s}}", "type", "jwt",
        "issuer", "https://issuer", "audiences", "orders", "jwks", "keys", jwk_of(rsa2048, "r1"),
        jwk_of(p256, "e1"), "algorithms", "RS256", "ES256", "clock_skew_seconds", 0,
        "required_claims", "token_use", "access", "forward_claims", "sub", "X-User-Sub", "tier",
        "X-Tier", "admin", "X-Admin", "groups", "X-Groups", "note", "X-Note");
    sy_error_t err;
    sy_auth_policy_t policy = {.name = "users", .type = SY_AUTH_JWT};
    if (!(policy.config = sy_auth_config_parse("users", config, "auth_policies.users", &err)))
        fail_msg("parse: %s", err.message);

    const char *claims = "{\"iss\":\"https://issuer\",\"aud\":\"orders\",\"exp\":2000,"
                         "\"sub\":\"user-42\",\"token_use\":\"access\",\"tier\":3,"
                         "\"admin\":true,\"groups\":[\"a\"],\"note\":\"a\\r\\nX-Evil: 1\"}";
    char *tok = mint("RS256", rsa2048, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims);
    char authz[4096];
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    sy_http_request_t req = request_with(authz);
    sy_auth_result_t *r = malloc(sizeof *r);
    for (int pass = 0; pass < 2; pass++) { /* the second pass hits the token cache */
        sy_auth_check_at(&policy, &req, 1999, r);
        assert_int_equal(r->status, 0);
        assert_string_equal(r->subject, "user-42");
        assert_int_equal(r->add_count, 3);
        assert_true(has_header(r, "X-User-Sub", "user-42"));
        assert_true(has_header(r, "X-Tier", "3"));
        assert_true(has_header(r, "X-Admin", "true"));
        /* Arrays and values with control bytes are never forwarded. */
        assert_false(has_header(r, "X-Groups", "[\"a\"]"));
        assert_int_equal(r->drop_count, 5);
    }
    /* Cached or not, the token expires at exp. */
    sy_auth_check_at(&policy, &req, 2000, r);
    assert_int_equal(r->status, 401);
    assert_string_equal(r->www_authenticate, "Bearer error=\"invalid_token\"");
    assert_int_equal(r->add_count, 0);
    assert_int_equal(r->drop_count, 5); /* forged copies are dropped even on refusal */
    free(tok);

    /* required_claims fail: 403. */
    tok = mint("ES256", p256, NULL, 0, "{\"alg\":\"ES256\"}",
               "{\"iss\":\"https://issuer\",\"aud\":\"orders\",\"exp\":2000,\"token_use\":\"id\"}");
    snprintf(authz, sizeof authz, "bearer  %s", tok);
    req = request_with(authz);
    sy_auth_check_at(&policy, &req, 1000, r);
    assert_int_equal(r->status, 403);
    free(tok);

    /* Missing, wrong scheme, two headers, an unlisted algorithm. */
    req = request_with(NULL);
    sy_auth_check_at(&policy, &req, 1000, r);
    assert_int_equal(r->status, 401);
    assert_non_null(strstr(r->www_authenticate, "invalid_token"));
    req = request_with("Basic dTpw");
    sy_auth_check_at(&policy, &req, 1000, r);
    assert_int_equal(r->status, 401);
    tok = mint("PS256", rsa2048, NULL, 0, "{\"alg\":\"PS256\"}",
               "{\"iss\":\"https://issuer\",\"aud\":\"orders\",\"exp\":2000,"
               "\"token_use\":\"access\"}");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    req = request_with(authz);
    sy_auth_check_at(&policy, &req, 1000, r);
    assert_int_equal(r->status, 401);
    hdrs[1] = hdrs[0];
    req.header_count = 2;
    sy_auth_check_at(&policy, &req, 1000, r);
    assert_int_equal(r->status, 401);
    free(tok);
    free(r);
    sy_auth_config_free(policy.config);
    json_decref(config);
}

static void test_prepare_refuses_unusable_keys(void **state)
{
    (void)state;
    sy_error_t err;
    /* RS256 allowed but the only key is EC: every RS256 token would fail. */
    json_t *config = json_pack("{s:s,s:s,s:{s:[o]},s:[s]}", "type", "jwt", "issuer", "i", "jwks",
                               "keys", jwk_of(p256, NULL), "algorithms", "RS256");
    assert_null(sy_auth_config_parse("p", config, "auth_policies.p", &err));
    assert_non_null(strstr(err.message, "auth_policies.p.algorithms: no key in jwks fits RS256"));
    json_decref(config);
    /* A malformed inline key is an error, not a silently missing key. */
    config =
        json_pack("{s:s,s:s,s:{s:[{s:s,s:s,s:s}]},s:[s]}", "type", "jwt", "issuer", "i", "jwks",
                  "keys", "kty", "OKP", "crv", "Ed25519", "x", "AA", "algorithms", "EdDSA");
    assert_null(sy_auth_config_parse("p", config, "auth_policies.p", &err));
    assert_non_null(strstr(err.message, "auth_policies.p.jwks.keys[0]"));
    json_decref(config);
    /* A policy without a configuration fails closed. */
    sy_auth_policy_t policy = {.name = "p", .type = SY_AUTH_JWT};
    sy_http_request_t req = request_with("Bearer a.b.c");
    sy_auth_result_t *r = malloc(sizeof *r);
    sy_auth_check(&policy, &req, r);
    assert_int_equal(r->status, 401);
    free(r);
}

static void test_jwks_sources_are_shared_by_uri(void **state)
{
    (void)state;
    sy_error_t err;
    /* Nothing listens on port 1: fetches fail fast and keep "no keys". */
    sy_jwks_source_t *a = sy_jwks_source_get("https://127.0.0.1:1/jwks.json", NULL, &err);
    sy_jwks_source_t *b = sy_jwks_source_get("https://127.0.0.1:1/jwks.json", NULL, &err);
    sy_jwks_source_t *c =
        sy_jwks_source_get("https://127.0.0.1:1/jwks.json", "/etc/ssl/ca.pem", &err);
    assert_non_null(a);
    assert_ptr_equal(a, b); /* a reload reuses the keys already fetched */
    assert_ptr_not_equal(a, c);
    assert_null(sy_jwks_source_acquire(a));
    /* Asking for a refetch never blocks, however often. */
    uint64_t t0 = sy_now_ms();
    for (int i = 0; i < 100000; i++)
        sy_jwks_source_request_refetch(a);
    assert_true(sy_now_ms() - t0 < 1000);
    assert_int_equal(sy_jwks_source_fetch_count(a), 0);
    sy_jwks_source_put(b);
    sy_jwks_source_put(c);
    sy_jwks_source_put(a);
    sy_jwks_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url_is_strict),
        cmocka_unit_test(test_every_algorithm_round_trips),
        cmocka_unit_test(test_algorithm_confusion_is_refused),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_kid_selection),
        cmocka_unit_test(test_claims_at_boundaries),
        cmocka_unit_test(test_policy_path),
        cmocka_unit_test(test_prepare_refuses_unusable_keys),
        cmocka_unit_test(test_jwks_sources_are_shared_by_uri),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
