/*
 * jwks.h: JSON Web Keys (RFC 7517) turned into verification keys, immutable
 * refcounted key sets, and the shared cache of key sets fetched from
 * jwks_uri endpoints by one control-plane thread.
 * Thread: parse on any thread; sources are created when a snapshot is
 * published and dropped when its policy is freed (control plane), and read
 * from workers. Pointers: a key
 * set lives until its last sy_jwk_set_release; a source until its last
 * sy_jwks_source_put.
 */
#ifndef SY_AUTH_JWKS_H
#define SY_AUTH_JWKS_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>

#include "core/common.h"

typedef enum { SY_JWK_RSA = 1, SY_JWK_EC, SY_JWK_OKP, SY_JWK_OCT } sy_jwk_kty_t;

/* One verification key. Which algorithms it may serve is decided in
 * sy_jwt_key_fits (jwt.c): kty, curve, size, and the key's own alg/use/key_ops. */
typedef struct {
    sy_jwk_kty_t kty;
    int curve_nid; /* EC: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1; OKP: NID_ED25519 */
    int bits;      /* RSA modulus bits; EC field bits; oct secret bits */
    char kid[256]; /* "" when absent */
    bool has_kid;
    char alg[16];          /* the JWK "alg" member, "" when absent */
    bool verify_allowed;   /* false when "use" is not "sig" or "key_ops" lacks "verify" */
    EVP_PKEY *pkey;        /* RSA, EC, OKP */
    unsigned char *secret; /* oct */
    size_t secret_len;
} sy_jwk_t;

typedef struct {
    atomic_uint refs;
    uint64_t generation; /* unique per set: verified-token caches key on it */
    size_t count;
    sy_jwk_t keys[];
} sy_jwk_set_t;

/* Keys in one set at most: a verifier tries at most this many per token. */
#define SY_JWKS_MAX_KEYS 32

/* Parses one JWK object into *out (public parts only; private members are
 * ignored). false with err filled when it is malformed or of a kind that
 * switchyard never verifies with (unknown kty/crv, RSA below 2048 bits,
 * an EC point off its curve). */
bool sy_jwk_parse(const json_t *jwk, sy_jwk_t *out, sy_error_t *err);
void sy_jwk_clear(sy_jwk_t *key);

/* A key set from {"keys": [...]}. strict: every key must parse (inline
 * jwks in a policy: a typo must not silently drop a key); otherwise keys
 * that don't parse are skipped (issuers publish encryption keys too) but
 * at least one must. NULL with err filled. Refcount 1. */
sy_jwk_set_t *sy_jwk_set_parse(const json_t *jwks, bool strict, sy_error_t *err);
/* A set holding one oct key (hs_secret_base64). */
sy_jwk_set_t *sy_jwk_set_from_secret(const unsigned char *secret, size_t len, sy_error_t *err);
void sy_jwk_set_ref(sy_jwk_set_t *set);
void sy_jwk_set_release(sy_jwk_set_t *set);

/* ---- jwks_uri sources ---- */

typedef struct sy_jwks_source sy_jwks_source_t;

/* Fetch schedule (milliseconds). */
#define SY_JWKS_REFRESH_MS (5 * 60 * 1000) /* routine refresh; SPEC: at least every 10 min */
#define SY_JWKS_REFETCH_MIN_MS (30 * 1000) /* at most one fetch per source in this window */
#define SY_JWKS_MAX_BYTES (512 * 1024)     /* a JWKS document larger than this is refused */

/* The shared source for (uri, ca_file), created on first use, with one more
 * reference. Sources are keyed by URI so a policy reload that keeps the
 * same jwks_uri reuses the keys already fetched. Starts the fetcher thread
 * on first use. ca_file may be NULL (system trust store). */
sy_jwks_source_t *sy_jwks_source_get(const char *uri, const char *ca_file, sy_error_t *err);
void sy_jwks_source_put(sy_jwks_source_t *source);
/* The current key set with a reference (release it), or NULL before the
 * first successful fetch. Never blocks on the fetcher: the lock it takes is
 * held only for a pointer copy and an increment. */
sy_jwk_set_t *sy_jwks_source_acquire(sy_jwks_source_t *source);
/* The same for a worker's request path: borrowed, no lock while the
 * source's key set is unchanged (one atomic load). The pointer stays valid
 * until this thread's next sy_jwks_source_keys or sy_jwks_thread_cleanup. */
sy_jwk_set_t *sy_jwks_source_keys(sy_jwks_source_t *source);
/* Drops this thread's references taken by sy_jwks_source_keys. */
void sy_jwks_thread_cleanup(void);
/* Asks the fetcher for a refetch (a token named a kid the set lacks).
 * Non-blocking; coalesced; honoured at most once per SY_JWKS_REFETCH_MIN_MS. */
void sy_jwks_source_request_refetch(sy_jwks_source_t *source);
/* Number of successful fetches so far (tests, /metrics). */
uint64_t sy_jwks_source_fetch_count(const sy_jwks_source_t *source);

/* Stops and joins the fetcher thread (process shutdown). Sources still
 * referenced stay usable with their last keys. */
void sy_jwks_shutdown(void);

#endif
