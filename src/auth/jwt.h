/*
 * jwt.h: JWS compact tokens (RFC 7515) and JWT claims (RFC 7519) checked
 * the strict way: strict base64url, JSON objects without duplicate keys, a
 * size limit, an algorithm that is both allowed and fits the key, no
 * "none", no "crit", and claims checked against an injected clock.
 * Thread: any; no shared state. Pointers: a parsed token owns its JSON and
 * payload until sy_jws_free; slices borrow from the token text.
 */
#ifndef SY_AUTH_JWT_H
#define SY_AUTH_JWT_H

#include <jansson.h>

#include "auth/jwks.h"
#include "core/common.h"

typedef enum {
    SY_JWT_RS256 = 0,
    SY_JWT_RS384,
    SY_JWT_RS512,
    SY_JWT_PS256,
    SY_JWT_PS384,
    SY_JWT_PS512,
    SY_JWT_ES256,
    SY_JWT_ES384,
    SY_JWT_ES512,
    SY_JWT_EDDSA,
    SY_JWT_HS256,
    SY_JWT_HS384,
    SY_JWT_HS512,
    SY_JWT_ALG__COUNT
} sy_jwt_alg_t;

#define SY_JWT_ALG_BIT(a) (1u << (unsigned)(a))
#define SY_JWT_ALL_ALGS ((1u << SY_JWT_ALG__COUNT) - 1u)

/* Case-sensitive, as RFC 7515 says: "none", "None", "HS256 " are unknown. */
bool sy_jwt_alg_parse(sy_slice_t name, sy_jwt_alg_t *out);
const char *sy_jwt_alg_name(sy_jwt_alg_t alg);
/* Whether key may verify alg: kty, curve and size fit the algorithm, and the
 * key's own alg/use/key_ops allow it. The algorithm-confusion guard. */
bool sy_jwt_key_fits(const sy_jwk_t *key, sy_jwt_alg_t alg);

/* Strict base64url (RFC 7515 §2): alphabet A-Z a-z 0-9 - _, no padding,
 * no whitespace, and the unused bits of the last character zero (so every
 * byte string has exactly one encoding). false when malformed or when the
 * result would exceed cap. */
bool sy_base64url_decode(sy_slice_t in, unsigned char *out, size_t cap, size_t *out_len);

#define SY_JWT_MAX_TOKEN_BYTES 8192
#define SY_JWT_MAX_SIGNATURE_BYTES 1024 /* RSA-8192 */

typedef enum {
    SY_JWT_OK = 0,
    SY_JWT_MALFORMED, /* not JWS compact, bad base64url, not a JSON object */
    SY_JWT_TOO_LARGE,
    SY_JWT_ALG_REFUSED, /* unknown, "none", or not in the allowed set */
    SY_JWT_CRIT,        /* a "crit" header: no extension is understood */
    SY_JWT_UNKNOWN_KID, /* no key carries the token's kid */
    SY_JWT_NO_KEY,      /* no key fits the algorithm */
    SY_JWT_BAD_SIGNATURE,
    SY_JWT_EXP_MISSING,
    SY_JWT_EXPIRED,
    SY_JWT_NOT_YET_VALID,    /* nbf in the future */
    SY_JWT_ISSUED_IN_FUTURE, /* iat in the future */
    SY_JWT_BAD_CLAIM_TYPE,   /* exp/nbf/iat not numbers, iss/aud of the wrong type */
    SY_JWT_BAD_ISSUER,
    SY_JWT_BAD_AUDIENCE,
    SY_JWT_CLAIM_MISMATCH, /* required_claims: 403, not 401 */
    SY_JWT_STATUS__COUNT
} sy_jwt_status_t;

/* Stable snake_case name for tests and logs ("expired"). */
const char *sy_jwt_status_name(sy_jwt_status_t status);

typedef struct {
    json_t *header; /* owned */
    sy_jwt_alg_t alg;
    const char *kid;        /* borrowed from header; NULL when absent */
    unsigned char *payload; /* into payload_buf, NUL-terminated */
    size_t payload_len;
    size_t signing_input_len; /* token bytes before the second '.' */
    unsigned char signature[SY_JWT_MAX_SIGNATURE_BYTES];
    size_t signature_len;
    /* The decoded payload: a token is at most SY_JWT_MAX_TOKEN_BYTES, so
     * its payload fits here and decoding one costs no allocation. */
    unsigned char payload_buf[SY_JWT_MAX_TOKEN_BYTES / 4 * 3 + 3];
} sy_jws_t;

/* Splits and decodes a compact JWS: exactly three parts, strict
 * base64url, the header a JSON object with a known "alg" (never "none")
 * and without "crit". The payload is left as bytes. On error nothing needs
 * freeing. */
sy_jwt_status_t sy_jws_parse(sy_slice_t token, sy_jws_t *out);
void sy_jws_free(sy_jws_t *jws);

/* Checks the signature: jws->alg must be in allowed_algs; with a kid only
 * keys carrying it are tried (UNKNOWN_KID when none do), without one every
 * key that fits the algorithm. token is the text jws was parsed from. */
sy_jwt_status_t sy_jws_verify(const sy_jws_t *jws, sy_slice_t token, const sy_jwk_set_t *keys,
                              unsigned allowed_algs);

/* Verifies one signature with one key, no selection (tests, fuzzing). */
bool sy_jws_verify_with_key(const sy_jwk_t *key, sy_jwt_alg_t alg, const unsigned char *input,
                            size_t input_len, const unsigned char *sig, size_t sig_len);

typedef struct {
    const char *issuer;            /* NULL: iss not checked */
    const json_t *audiences;       /* array of strings, or NULL: aud not checked */
    const json_t *required_claims; /* object, or NULL */
    long clock_skew_seconds;
    bool require_exp;
} sy_jwt_rules_t;

/* Parses a payload as a JSON object without duplicate keys; NULL when it
 * isn't one. */
json_t *sy_jwt_claims_parse(const unsigned char *payload, size_t len);
/* Checks claims at `now` (seconds since the epoch): exp (now must be
 * before exp + skew), nbf and iat (not after now + skew), iss, aud, then
 * required_claims (JSON equality), so 403 only ever follows a token that
 * is otherwise valid. */
sy_jwt_status_t sy_jwt_check_claims(const json_t *claims, const sy_jwt_rules_t *rules, int64_t now);

#endif
