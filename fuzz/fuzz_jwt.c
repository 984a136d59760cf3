// sources: src/auth/jwt.c src/auth/jwks.c src/core/common.c src/core/base64.c src/core/log.c
// src/core/redact.c
// covers: src/auth/jwt.c src/auth/jwks.c src/core/base64.c
// excludes: fetch|on_body|publish|due_at|:same$|sy_jwks_source_|sy_jwks_shutdown
/*
 * fuzz_jwt.c: libFuzzer target for the JWT verifier. The first byte picks
 * what the rest is:
 *   0: a bearer token, parsed and verified against a fixed key set (an
 *      HMAC secret and a P-256 key), then its claims checked;
 *   1: a JWK set document, parsed both strictly and as if fetched;
 *   2: base64url text, decoded (and as padded standard base64).
 * Besides crashes and sanitizer reports it checks promises: a decoded
 * base64url (or padded base64) string re-encodes to exactly the input (one
 * spelling per byte string); a token that verifies was at most
 * SY_JWT_MAX_TOKEN_BYTES long and named an allowed algorithm; a parsed key
 * set is non-empty and never larger than SY_JWKS_MAX_KEYS; a fetched set
 * holds no secret keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "core/base64.h"

static sy_jwk_set_t *keys;

static void init_keys(void)
{
    static const char doc[] = "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\","
                              "\"x\":\"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY\","
                              "\"y\":\"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw\"}]}";
    json_t *j = json_loads(doc, 0, NULL);
    sy_error_t err;
    keys = sy_jwk_set_parse(j, true, &err);
    json_decref(j);
    if (!keys)
        abort();
}

static void fuzz_token(const char *text, size_t len)
{
    static const unsigned char secret[32] = "fuzz-secret-fuzz-secret-fuzz-sec";
    static sy_jwk_set_t *hs;
    if (!hs)
        hs = sy_jwk_set_from_secret(secret, sizeof secret, NULL);
    sy_slice_t token = sy_slice(text, len);
    sy_jws_t *jws = malloc(sizeof *jws);
    if (sy_jws_parse(token, jws) != SY_JWT_OK) {
        free(jws);
        return;
    }
    if (jws->signing_input_len >= len || (unsigned)jws->alg >= SY_JWT_ALG__COUNT)
        abort();
    unsigned allowed = SY_JWT_ALL_ALGS & ~SY_JWT_ALG_BIT(SY_JWT_RS256);
    sy_jwt_status_t a = sy_jws_verify(jws, token, keys, allowed);
    sy_jwt_status_t b = sy_jws_verify(jws, token, hs, allowed);
    if ((a == SY_JWT_OK || b == SY_JWT_OK) &&
        (len > SY_JWT_MAX_TOKEN_BYTES || jws->alg == SY_JWT_RS256))
        abort();
    json_t *claims = sy_jwt_claims_parse(jws->payload, jws->payload_len);
    if (claims) {
        json_t *aud = json_pack("[s]", "a");
        json_t *req = json_pack("{s:s}", "k", "v");
        sy_jwt_rules_t rules = {"iss", aud, req, 60, true};
        sy_jwt_check_claims(claims, &rules, 1700000000);
        json_decref(aud);
        json_decref(req);
        json_decref(claims);
    }
    sy_jws_free(jws);
    free(jws);
}

static void fuzz_jwks(const char *text, size_t len)
{
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!doc)
        return;
    for (int strict = 0; strict < 2; strict++) {
        sy_error_t err;
        sy_jwk_set_t *set = sy_jwk_set_parse(doc, strict, &err);
        if (!set)
            continue;
        if (set->count == 0 || set->count > SY_JWKS_MAX_KEYS)
            abort();
        for (size_t i = 0; i < set->count; i++)
            if (!strict && set->keys[i].kty == SY_JWK_OCT)
                abort();
        sy_jwk_set_release(set);
    }
    json_decref(doc);
}

static void fuzz_base64url(const char *text, size_t len)
{
    unsigned char *out = malloc(len + 1);
    char *again = malloc(len + 4);
    size_t n;
    if (sy_base64url_decode(sy_slice(text, len), out, len, &n)) {
        sy_base64_encode(out, n, true, false, again);
        if (strlen(again) != len || memcmp(again, text, len) != 0)
            abort();
    }
    /* The same promise for padded standard base64 (Basic credentials). */
    if (sy_base64_decode(sy_slice(text, len), false, true, out, len, &n)) {
        sy_base64_encode(out, n, false, true, again);
        if (strlen(again) != len || memcmp(again, text, len) != 0)
            abort();
    }
    free(again);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys)
        init_keys();
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 3) {
    case 0:
        fuzz_token(text, len);
        break;
    case 1:
        fuzz_jwks(text, len);
        break;
    default:
        fuzz_base64url(text, len);
        break;
    }
    return 0;
}
