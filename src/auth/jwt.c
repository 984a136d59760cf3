/*
 * jwt.c: JWS compact verification and JWT claim checks.
 *
 * Every step refuses rather than repairs. Base64url goes through the strict
 * decoder in core/base64.c, unpadded: the common decoders accept padding,
 * whitespace or non-zero trailing bits, which gives one token several
 * spellings (and a cache keyed by the token text several entries). The
 * algorithm comes from the header, so it is trusted only after two
 * independent checks: it is in the policy's list, and the key it selects
 * fits it (sy_jwt_key_fits). The second check is what stops the classic
 * confusions: an RSA public key used as an HMAC secret, an EC key asked to
 * verify RSA, a 1024-bit RSA key.
 *
 * ECDSA signatures in JOSE are raw r||s of fixed width; OpenSSL wants DER,
 * so they are converted here after checking the width exactly (a longer
 * or shorter string is a malleability vector, not a formatting accident).
 * Claims are checked against an injected clock so tests can pin the
 * boundaries (exp itself is already expired: RFC 7519 §4.1.4 says the
 * current time must be before it).
 */
#include "auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

static const char *const alg_names[SY_JWT_ALG__COUNT] = {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
};

bool sy_jwt_alg_parse(sy_slice_t name, sy_jwt_alg_t *out)
{
    for (int i = 0; i < SY_JWT_ALG__COUNT; i++) {
        if (sy_slice_eq(name, sy_slice_cstr(alg_names[i]))) {
            *out = (sy_jwt_alg_t)i;
            return true;
        }
    }
    return false;
}

const char *sy_jwt_alg_name(sy_jwt_alg_t alg)
{
    return (unsigned)alg < SY_JWT_ALG__COUNT ? alg_names[alg] : "?";
}

static const EVP_MD *alg_md(sy_jwt_alg_t alg)
{
    switch (alg) {
    case SY_JWT_RS256:
    case SY_JWT_PS256:
    case SY_JWT_ES256:
    case SY_JWT_HS256:
        return EVP_sha256();
    case SY_JWT_RS384:
    case SY_JWT_PS384:
    case SY_JWT_ES384:
    case SY_JWT_HS384:
        return EVP_sha384();
    case SY_JWT_RS512:
    case SY_JWT_PS512:
    case SY_JWT_ES512:
    case SY_JWT_HS512:
        return EVP_sha512();
    default:
        return NULL; /* EdDSA hashes internally */
    }
}

bool sy_jwt_key_fits(const sy_jwk_t *key, sy_jwt_alg_t alg)
{
    if (!key->verify_allowed)
        return false;
    /* A key that names its algorithm serves that one only (RFC 8725 §3.1). */
    if (key->alg[0] && strcmp(key->alg, sy_jwt_alg_name(alg)) != 0)
        return false;
    switch (alg) {
    case SY_JWT_RS256:
    case SY_JWT_RS384:
    case SY_JWT_RS512:
    case SY_JWT_PS256:
    case SY_JWT_PS384:
    case SY_JWT_PS512:
        return key->kty == SY_JWK_RSA && key->bits >= 2048 && key->pkey;
    case SY_JWT_ES256:
        return key->kty == SY_JWK_EC && key->curve_nid == NID_X9_62_prime256v1 && key->pkey;
    case SY_JWT_ES384:
        return key->kty == SY_JWK_EC && key->curve_nid == NID_secp384r1 && key->pkey;
    case SY_JWT_ES512:
        return key->kty == SY_JWK_EC && key->curve_nid == NID_secp521r1 && key->pkey;
    case SY_JWT_EDDSA:
        return key->kty == SY_JWK_OKP && key->curve_nid == NID_ED25519 && key->pkey;
    case SY_JWT_HS256:
    case SY_JWT_HS384:
    case SY_JWT_HS512:
        /* RFC 7518 §3.2: the secret is at least as long as the hash. */
        return key->kty == SY_JWK_OCT && key->secret &&
               key->secret_len >= (size_t)EVP_MD_get_size(alg_md(alg));
    default:
        return false;
    }
}

/* ---- base64url ---- */

/* Kept for jwt.h's callers (auth, jwks, tests): JOSE's spelling of the
 * shared strict decoder. */
bool sy_base64url_decode(sy_slice_t in, unsigned char *out, size_t cap, size_t *out_len)
{
    return sy_base64_decode(in, true, false, out, cap, out_len);
}

/* ---- JWS ---- */

const char *sy_jwt_status_name(sy_jwt_status_t status)
{
    static const char *const names[SY_JWT_STATUS__COUNT] = {
        "ok",
        "malformed",
        "too_large",
        "alg_refused",
        "crit",
        "unknown_kid",
        "no_key",
        "bad_signature",
        "exp_missing",
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "bad_claim_type",
        "bad_issuer",
        "bad_audience",
        "claim_mismatch",
    };
    return (unsigned)status < SY_JWT_STATUS__COUNT ? names[status] : "?";
}

json_t *sy_jwt_claims_parse(const unsigned char *payload, size_t len)
{
    json_error_t jerr;
    /* JSON_REJECT_DUPLICATES: {"sub":"a","sub":"admin"} means different
     * things to different parsers, so it means nothing here. NUL inside
     * strings is refused by jansson unless asked for. */
    json_t *v = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

void sy_jws_free(sy_jws_t *jws)
{
    json_decref(jws->header);
    jws->header = NULL;
    jws->payload = NULL;
}

sy_jwt_status_t sy_jws_parse(sy_slice_t token, sy_jws_t *out)
{
    memset(out, 0, offsetof(sy_jws_t, signature));
    out->signature_len = 0;
    if (token.len > SY_JWT_MAX_TOKEN_BYTES)
        return SY_JWT_TOO_LARGE;
    const char *dot1 = memchr(token.ptr, '.', token.len);
    if (!dot1)
        return SY_JWT_MALFORMED;
    size_t rest = token.len - (size_t)(dot1 + 1 - token.ptr);
    const char *dot2 = memchr(dot1 + 1, '.', rest);
    if (!dot2 || memchr(dot2 + 1, '.', token.len - (size_t)(dot2 + 1 - token.ptr)))
        return SY_JWT_MALFORMED;
    sy_slice_t h = sy_slice(token.ptr, (size_t)(dot1 - token.ptr));
    sy_slice_t p = sy_slice(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    sy_slice_t s = sy_slice(dot2 + 1, token.len - (size_t)(dot2 + 1 - token.ptr));
    if (h.len == 0 || s.len == 0)
        return SY_JWT_MALFORMED;

    unsigned char hbuf[SY_JWT_MAX_TOKEN_BYTES];
    size_t hlen;
    if (!sy_base64url_decode(h, hbuf, sizeof hbuf, &hlen) ||
        !sy_base64url_decode(s, out->signature, sizeof out->signature, &out->signature_len))
        return SY_JWT_MALFORMED;
    /* p.len < token.len <= SY_JWT_MAX_TOKEN_BYTES (checked above), so
     * p.len / 4 * 3 + 2 bytes and the NUL fit in payload_buf. */
    out->payload = out->payload_buf;
    if (!sy_base64url_decode(p, out->payload, p.len / 4 * 3 + 2, &out->payload_len)) {
        sy_jws_free(out);
        return SY_JWT_MALFORMED;
    }
    out->payload[out->payload_len] = '\0';
    out->header = sy_jwt_claims_parse(hbuf, hlen);
    if (!out->header) {
        sy_jws_free(out);
        return SY_JWT_MALFORMED;
    }
    json_t *alg = json_object_get(out->header, "alg");
    if (!json_is_string(alg) ||
        !sy_jwt_alg_parse(sy_slice(json_string_value(alg), json_string_length(alg)), &out->alg)) {
        sy_jws_free(out);
        return SY_JWT_ALG_REFUSED;
    }
    /* RFC 7515 §4.1.11: a recipient must refuse a token whose "crit" names
     * an extension it does not understand. It understands none, and an
     * empty or malformed "crit" is itself invalid. */
    if (json_object_get(out->header, "crit")) {
        sy_jws_free(out);
        return SY_JWT_CRIT;
    }
    json_t *kid = json_object_get(out->header, "kid");
    if (kid &&
        (!json_is_string(kid) || json_string_length(kid) != strlen(json_string_value(kid)))) {
        sy_jws_free(out);
        return SY_JWT_MALFORMED;
    }
    out->kid = kid ? json_string_value(kid) : NULL;
    out->signing_input_len = (size_t)(dot2 - token.ptr);
    return SY_JWT_OK;
}

static bool verify_hmac(const sy_jwk_t *key, const EVP_MD *md, const unsigned char *input,
                        size_t input_len, const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(md, key->secret, (int)key->secret_len, input, input_len, mac, &mac_len))
        return false;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

/* JOSE r||s (each exactly the field width) to the DER that EVP verifies. */
static unsigned char *ecdsa_der(const unsigned char *sig, size_t sig_len, size_t width,
                                int *der_len)
{
    if (sig_len != 2 * width)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)width, NULL);
    BIGNUM *s = BN_bin2bn(sig + width, (int)width, NULL);
    unsigned char *der = NULL;
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    *der_len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (*der_len <= 0) {
        OPENSSL_free(der);
        return NULL;
    }
    return der;
}

bool sy_jws_verify_with_key(const sy_jwk_t *key, sy_jwt_alg_t alg, const unsigned char *input,
                            size_t input_len, const unsigned char *sig, size_t sig_len)
{
    if (!sy_jwt_key_fits(key, alg))
        return false;
    const EVP_MD *md = alg_md(alg);
    if (key->kty == SY_JWK_OCT)
        return verify_hmac(key, md, input, input_len, sig, sig_len);

    unsigned char *der = NULL;
    const unsigned char *check = sig;
    size_t check_len = sig_len;
    if (key->kty == SY_JWK_EC) {
        int der_len = 0;
        der = ecdsa_der(sig, sig_len, (size_t)(key->bits + 7) / 8, &der_len);
        if (!der)
            return false;
        check = der;
        check_len = (size_t)der_len;
    } else if (key->kty == SY_JWK_RSA) {
        /* Exactly the modulus width: no leading-zero or truncated forms. */
        if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey))
            return false;
    } else if (sig_len != 64) {
        return false; /* Ed25519 */
    }

    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (ctx && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey) == 1) {
        bool setup = true;
        if (alg >= SY_JWT_PS256 && alg <= SY_JWT_PS512) {
            /* RFC 7518 §3.5: MGF1 with the same hash, salt as long as it. */
            setup = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
                    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0 &&
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
        } else if (key->kty == SY_JWK_RSA) {
            setup = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
        }
        ok = setup && EVP_DigestVerify(ctx, check, check_len, input, input_len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

sy_jwt_status_t sy_jws_verify(const sy_jws_t *jws, sy_slice_t token, const sy_jwk_set_t *keys,
                              unsigned allowed_algs)
{
    if (!(allowed_algs & SY_JWT_ALG_BIT(jws->alg)))
        return SY_JWT_ALG_REFUSED;
    if (!keys)
        return jws->kid ? SY_JWT_UNKNOWN_KID : SY_JWT_NO_KEY;
    const unsigned char *input = (const unsigned char *)token.ptr;
    bool kid_seen = false, fit_seen = false;
    for (size_t i = 0; i < keys->count; i++) {
        const sy_jwk_t *k = &keys->keys[i];
        if (jws->kid) {
            if (!k->has_kid || strcmp(k->kid, jws->kid) != 0)
                continue;
            kid_seen = true;
        }
        if (!sy_jwt_key_fits(k, jws->alg))
            continue;
        fit_seen = true;
        if (sy_jws_verify_with_key(k, jws->alg, input, jws->signing_input_len, jws->signature,
                                   jws->signature_len))
            return SY_JWT_OK;
    }
    if (jws->kid && !kid_seen)
        return SY_JWT_UNKNOWN_KID;
    return fit_seen ? SY_JWT_BAD_SIGNATURE : SY_JWT_NO_KEY;
}

/* ---- claims ---- */

static bool numeric_date(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return true;
    }
    return false;
}

static bool audience_ok(const json_t *aud, const json_t *wanted)
{
    size_t i, j;
    json_t *a, *w;
    if (json_is_string(aud)) {
        json_array_foreach(wanted, j, w) if (json_equal(aud, w)) return true;
        return false;
    }
    json_array_foreach(aud, i, a)
    {
        if (!json_is_string(a))
            return false;
        json_array_foreach(wanted, j, w) if (json_equal(a, w)) return true;
    }
    return false;
}

sy_jwt_status_t sy_jwt_check_claims(const json_t *claims, const sy_jwt_rules_t *rules, int64_t now)
{
    double t, skew = (double)rules->clock_skew_seconds, n = (double)now;
    const json_t *v = json_object_getn(claims, "exp", 3);
    if (v) {
        if (!numeric_date(v, &t))
            return SY_JWT_BAD_CLAIM_TYPE;
        if (n >= t + skew)
            return SY_JWT_EXPIRED;
    } else if (rules->require_exp) {
        return SY_JWT_EXP_MISSING;
    }
    if ((v = json_object_getn(claims, "nbf", 3))) {
        if (!numeric_date(v, &t))
            return SY_JWT_BAD_CLAIM_TYPE;
        if (t > n + skew)
            return SY_JWT_NOT_YET_VALID;
    }
    if ((v = json_object_getn(claims, "iat", 3))) {
        if (!numeric_date(v, &t))
            return SY_JWT_BAD_CLAIM_TYPE;
        if (t > n + skew)
            return SY_JWT_ISSUED_IN_FUTURE;
    }
    if (rules->issuer) {
        v = json_object_getn(claims, "iss", 3);
        /* Compared as bytes with their lengths: a NUL inside either never
         * makes a prefix equal, and the configured issuer is not measured. */
        if (!json_is_string(v) ||
            !sy_slice_eq_cstr(sy_slice(json_string_value(v), json_string_length(v)), rules->issuer))
            return SY_JWT_BAD_ISSUER;
    }
    if (rules->audiences) {
        v = json_object_getn(claims, "aud", 3);
        if (!v || (!json_is_string(v) && !json_is_array(v)) || !audience_ok(v, rules->audiences))
            return SY_JWT_BAD_AUDIENCE;
    }
    if (rules->required_claims) {
        /* With each name's stored length: configuration is not measured
         * per request. */
        const char *name;
        size_t name_len;
        json_t *want;
        json_object_keylen_foreach((json_t *)rules->required_claims, name, name_len, want)
        {
            if (!json_equal(json_object_getn(claims, name, name_len), want))
                return SY_JWT_CLAIM_MISMATCH;
        }
    }
    return SY_JWT_OK;
}
