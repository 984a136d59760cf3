/*
 * auth.c: the auth phase. One entry point returns a decision; each policy
 * type is a small function behind it, reading the typed configuration
 * config.c built once when the policy was parsed, never per request.
 *
 * IAM is a passthrough: switchyard checks that a well-formed SigV4
 * Authorization header is present and leaves the signature check to API
 * Gateway, which holds the caller's credentials context; the header and
 * every X-Amz-* header travel upstream untouched. (SigV4 signs the Host
 * header, so switchyard can't re-sign or alter it; the client signs for the
 * upstream Host that /explain shows.)
 *
 * Basic and JWT fail closed with 401 without a configuration, and a
 * jwks_uri policy refuses every token until its source is activated and
 * has keys: a route must never be opened by a missing step.
 *
 * JWT keeps a small per-worker cache of verified signatures keyed by the
 * SHA-256 of the token, the policy's identity and the key set generation:
 * a hit skips the signature check (the expensive part: an RSA verify is
 * tens of microseconds) but never the claim checks, so a cached token
 * still expires exactly at exp, and a key removed from the JWKS (a new
 * generation) stops matching at once.
 */
#include "auth/auth.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/basic.h"
#include "auth/config.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "core/metrics.h"

static const sy_http_header_t *find_authorization(const sy_http_request_t *req, int *count)
{
    const sy_http_header_t *found = NULL;
    *count = 0;
    for (size_t i = 0; i < req->header_count; i++) {
        if (req->headers[i].id == SY_HDR_AUTHORIZATION) {
            found = &req->headers[i];
            (*count)++;
        }
    }
    return found;
}

static bool starts_with(sy_slice_t s, size_t at, sy_slice_t prefix)
{
    return s.len >= at + prefix.len && memcmp(s.ptr + at, prefix.ptr, prefix.len) == 0;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request */
static bool credential_ok(sy_slice_t v)
{
    size_t i = 0, parts[5] = {0}, part = 0;
    for (; i < v.len; i++) {
        char c = v.ptr[i];
        if (c == '/') {
            if (++part > 4)
                return false;
            continue;
        }
        if (!is_alnum(c) && c != '-' && c != '_')
            return false;
        parts[part]++;
    }
    if (part != 4 || parts[0] == 0 || parts[1] != 8 || parts[2] == 0 || parts[3] == 0)
        return false;
    return v.len >= 13 && memcmp(v.ptr + v.len - 13, "/aws4_request", 13) == 0;
}

static bool signed_headers_ok(sy_slice_t v)
{
    if (v.len == 0)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == ';'))
            return false;
    }
    return v.ptr[0] != ';' && v.ptr[v.len - 1] != ';';
}

static bool signature_ok(sy_slice_t v)
{
    if (v.len != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = v.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=<64 hex>":
 * each component exactly once, in any order, separated by commas with
 * optional spaces. */
static bool sigv4_header_ok(sy_slice_t v)
{
    static const sy_slice_t scheme = SY_SLICE_LIT("AWS4-HMAC-SHA256 ");
    if (!starts_with(v, 0, scheme))
        return false;
    size_t i = scheme.len;
    bool have_cred = false, have_signed = false, have_sig = false;
    while (i < v.len) {
        while (i < v.len && v.ptr[i] == ' ')
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        sy_slice_t item = sy_slice(v.ptr + start, i - start);
        while (item.len && item.ptr[item.len - 1] == ' ')
            item.len--;
        if (i < v.len)
            i++; /* the comma */
        const char *eq = memchr(item.ptr, '=', item.len);
        if (!eq)
            return false;
        sy_slice_t key = sy_slice(item.ptr, (size_t)(eq - item.ptr));
        sy_slice_t val = sy_slice(eq + 1, item.len - key.len - 1);
        if (sy_slice_eq(key, SY_SLICE_LIT("Credential")) && !have_cred) {
            if (!credential_ok(val))
                return false;
            have_cred = true;
        } else if (sy_slice_eq(key, SY_SLICE_LIT("SignedHeaders")) && !have_signed) {
            if (!signed_headers_ok(val))
                return false;
            have_signed = true;
        } else if (sy_slice_eq(key, SY_SLICE_LIT("Signature")) && !have_sig) {
            if (!signature_ok(val))
                return false;
            have_sig = true;
        } else {
            return false;
        }
    }
    return have_cred && have_signed && have_sig;
}

/* ---- decisions ---- */

/* Every message and challenge is a literal or was built when the policy
 * was loaded: a denial formats and measures nothing. challenge must
 * outlive the result (a literal, the policy's, or out->challenge_buf). */
static void deny_len(sy_auth_result_t *out, int status, sy_slice_t message, sy_slice_t challenge)
{
    out->status = status;
    out->message = message.ptr;
    out->message_len = message.len;
    out->www_authenticate = challenge.ptr;
    out->www_authenticate_len = challenge.len;
}

#define deny(out, status, message_lit, challenge_lit)                                              \
    deny_len((out), (status), SY_SLICE_LIT(message_lit), SY_SLICE_LIT(challenge_lit))

static void copy_subject(sy_auth_result_t *out, const char *s, size_t len)
{
    if (len >= sizeof out->subject)
        len = sizeof out->subject - 1;
    memcpy(out->subject, s, len);
    out->subject[len] = '\0';
}

/* A NUL-terminated name (a Basic user from the policy): copied as far as
 * it goes, without measuring it first. */
static void copy_subject_cstr(sy_auth_result_t *out, const char *s)
{
    if (!memccpy(out->subject, s, '\0', sizeof out->subject - 1))
        out->subject[sizeof out->subject - 1] = '\0';
}

/* ---- Basic ---- */

/* Queued and running hashes of this worker (the pending's loop is this
 * thread's, so after_hash runs here too). */
static _Thread_local unsigned hashes_in_flight;

/* And of the whole process: libuv's one threadpool also runs getaddrinfo
 * for upstream connections, and a hash queued ahead of a resolution delays
 * every route that needs one. Keeping one pool thread free of hashes means
 * a password attack never stalls DNS, whatever the worker count. */
static _Atomic unsigned hashes_in_flight_total;
static unsigned pool_hash_limit;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void read_pool_size(void)
{
    /* libuv's own rule: UV_THREADPOOL_SIZE, default 4, clamped to 1-1024. */
    const char *env = getenv("UV_THREADPOOL_SIZE");
    long size = env ? strtol(env, NULL, 10) : 4;
    size = size < 1 ? 1 : size > 1024 ? 1024 : size;
    pool_hash_limit = size > 1 ? (unsigned)size - 1 : 1;
}

static bool reserve_pool_thread(void)
{
    pthread_once(&pool_once, read_pool_size);
    unsigned n = atomic_load(&hashes_in_flight_total);
    while (n < pool_hash_limit)
        if (atomic_compare_exchange_weak(&hashes_in_flight_total, &n, n + 1))
            return true;
    return false;
}

struct sy_auth_pending {
    uv_work_t work;
    sy_basic_job_t *job;
    sy_auth_result_t *out; /* NULL once abandoned */
    sy_auth_done_cb done;
    void *arg;
    int worker;
    char challenge[160];
    size_t challenge_len;
};

static void basic_decided(sy_basic_status_t s, const char *user, unsigned wait,
                          sy_slice_t challenge, int worker, sy_auth_result_t *out)
{
    static const sy_basic_auth_outcome_t outcome[] = {
        [SY_BASIC_OK] = SY_BASIC_AUTH_VERIFIED,
        [SY_BASIC_OK_CACHED] = SY_BASIC_AUTH_VERIFIED_CACHED,
        [SY_BASIC_MISSING] = SY_BASIC_AUTH_MISSING,
        [SY_BASIC_UNKNOWN_USER] = SY_BASIC_AUTH_UNKNOWN_USER,
        [SY_BASIC_WRONG] = SY_BASIC_AUTH_FAILED,
        [SY_BASIC_WRONG_CACHED] = SY_BASIC_AUTH_FAILED_CACHED,
        [SY_BASIC_THROTTLED] = SY_BASIC_AUTH_THROTTLED,
        [SY_BASIC_HASH_NEEDED] = SY_BASIC_AUTH_BUSY, /* only when it could not be queued */
    };
    sy_metrics_basic_auth(worker, outcome[s]);
    switch (s) {
    case SY_BASIC_OK:
    case SY_BASIC_OK_CACHED:
        copy_subject_cstr(out, user);
        return;
    case SY_BASIC_MISSING:
        deny_len(out, 401, SY_SLICE_LIT("authentication required"), challenge);
        return;
    case SY_BASIC_THROTTLED:
        /* No challenge: trying again now can't succeed. */
        deny(out, 429, "too many failed authentication attempts", "");
        out->retry_after = wait;
        return;
    case SY_BASIC_HASH_NEEDED:
        deny(out, 503, "too many password checks in progress", "");
        out->retry_after = 1;
        return;
    default:
        /* Unknown user and wrong password read the same to the client. */
        deny_len(out, 401, SY_SLICE_LIT("invalid credentials"), challenge);
        return;
    }
}

static void run_hash(uv_work_t *w)
{
    /* Threadpool thread: only the job, never the client or the policy. */
    sy_auth_pending_t *p = w->data;
    sy_basic_job_run(p->job);
}

static void after_hash(uv_work_t *w, int status)
{
    sy_auth_pending_t *p = w->data;
    hashes_in_flight--;
    atomic_fetch_sub(&hashes_in_flight_total, 1);
    const char *user = NULL;
    /* Nothing cancels the work, but a job that never ran must not pass. */
    sy_basic_status_t s =
        status == 0 ? sy_basic_job_finish(p->job, sy_now_ms(), &user) : SY_BASIC_HASH_NEEDED;
    if (p->out) {
        /* p is freed below: the result keeps its own copy of the challenge. */
        memcpy(p->out->challenge_buf, p->challenge, p->challenge_len);
        basic_decided(s, user, 0, sy_slice(p->out->challenge_buf, p->challenge_len), p->worker,
                      p->out);
        p->done(p->arg);
    } else {
        sy_metrics_basic_auth(p->worker,
                              s == SY_BASIC_OK ? SY_BASIC_AUTH_VERIFIED : SY_BASIC_AUTH_FAILED);
    }
    sy_basic_job_free(p->job);
    free(p);
}

void sy_auth_abandon(sy_auth_pending_t *p)
{
    if (p) {
        p->out = NULL;
        p->done = NULL;
        p->arg = NULL;
    }
}

/* true when decided now; false when a hash was queued (*pending set). */
static bool check_basic(const sy_auth_config_t *st, const sy_http_header_t *authz,
                        const sy_auth_context_t *ctx, sy_auth_result_t *out, sy_auth_done_cb done,
                        void *arg, sy_auth_pending_t **pending)
{
    const char *user;
    unsigned wait;
    sy_basic_job_t *job;
    sy_slice_t value = authz ? authz->value : SY_SLICE_LIT("");
    sy_slice_t challenge = sy_slice(st->challenge, st->challenge_len);
    sy_basic_status_t s =
        sy_basic_begin(st->users, value, ctx->peer, sy_now_ms(), &user, &wait, &job);
    if (s == SY_BASIC_HASH_NEEDED && !ctx->loop) {
        sy_basic_job_run(job);
        s = sy_basic_job_finish(job, sy_now_ms(), &user);
        basic_decided(s, user, 0, challenge, ctx->worker, out);
        sy_basic_job_free(job);
        return true;
    }
    if (s == SY_BASIC_HASH_NEEDED && hashes_in_flight < SY_AUTH_MAX_HASHES_IN_FLIGHT &&
        reserve_pool_thread()) {
        /* The one allocation of the auth phase, and only here: a password
         * hash leaves the loop for the threadpool, and its state must
         * outlive this call (and the client, if it goes away). Cached
         * outcomes, JWT and IAM never get here. */
        sy_auth_pending_t *p = calloc(1, sizeof *p);
        if (p) {
            p->work.data = p;
            p->job = job;
            p->out = out;
            p->done = done;
            p->arg = arg;
            p->worker = ctx->worker;
            /* Both buffers are 160 bytes and st->challenge_len < 160. */
            memcpy(p->challenge, st->challenge, st->challenge_len);
            p->challenge_len = st->challenge_len;
            if (uv_queue_work(ctx->loop, &p->work, run_hash, after_hash) == 0) {
                hashes_in_flight++;
                *pending = p;
                return false;
            }
            free(p);
        }
        atomic_fetch_sub(&hashes_in_flight_total, 1);
    }
    sy_basic_job_free(job);
    basic_decided(s, user, wait, challenge, ctx->worker, out);
    return true;
}

/* ---- JWT ---- */

#define TOKEN_CACHE_ENTRIES 512

/* A token whose signature verified, with its parsed claims: a hit skips
 * decoding, signature and JSON parsing; the claim checks (exp, nbf, aud,
 * required_claims) still run on every request, so expiry is exact. */
typedef struct {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    uint64_t config_id, key_generation;
    json_t *claims; /* owned; this thread's only */
} token_entry_t;

static _Thread_local token_entry_t token_cache[TOKEN_CACHE_ENTRIES];

void sy_auth_thread_cleanup(void)
{
    sy_basic_thread_reset();
    sy_jwks_thread_cleanup();
    for (size_t i = 0; i < TOKEN_CACHE_ENTRIES; i++) {
        json_decref(token_cache[i].claims);
        token_cache[i].claims = NULL;
    }
}

/* The token cache's key. OpenSSL 3.0's EVP digests (and SHA256(), built
 * on them) allocate a context on every init: three mallocs per request on
 * a path that should need none. The low-level SHA-256 functions keep their
 * state in a plain struct; deprecated since 3.0 but still provided, and the
 * bytes are the same. If a later OpenSSL drops them, EVP_Digest is the
 * drop-in (correct, only slower). */
static void token_digest(sy_slice_t token, unsigned char digest[SHA256_DIGEST_LENGTH])
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, token.ptr, token.len);
    SHA256_Final(digest, &ctx);
#pragma GCC diagnostic pop
}

static sy_slice_t jwt_message(sy_jwt_status_t s)
{
    switch (s) {
    case SY_JWT_TOO_LARGE:
        return SY_SLICE_LIT("bearer token too large");
    case SY_JWT_ALG_REFUSED:
        return SY_SLICE_LIT("token algorithm not accepted");
    case SY_JWT_UNKNOWN_KID:
    case SY_JWT_NO_KEY:
        return SY_SLICE_LIT("no key for this token");
    case SY_JWT_BAD_SIGNATURE:
        return SY_SLICE_LIT("invalid token signature");
    case SY_JWT_EXP_MISSING:
        return SY_SLICE_LIT("token has no expiry");
    case SY_JWT_EXPIRED:
        return SY_SLICE_LIT("token expired");
    case SY_JWT_NOT_YET_VALID:
    case SY_JWT_ISSUED_IN_FUTURE:
        return SY_SLICE_LIT("token not valid yet");
    case SY_JWT_BAD_ISSUER:
        return SY_SLICE_LIT("token issuer not accepted");
    case SY_JWT_BAD_AUDIENCE:
        return SY_SLICE_LIT("token audience not accepted");
    case SY_JWT_CLAIM_MISMATCH:
        return SY_SLICE_LIT("token claims do not allow this request");
    default:
        return SY_SLICE_LIT("invalid bearer token");
    }
}

/* A claim's value as a header value: strings of visible ASCII and spaces,
 * numbers and booleans. Anything else (objects, arrays, control bytes,
 * non-ASCII) is skipped rather than encoded: the backend must never see a
 * value it could misread. */
static size_t claim_text(const json_t *v, char *out, size_t cap)
{
    if (json_is_string(v)) {
        size_t len = json_string_length(v);
        const char *s = json_string_value(v);
        if (len == 0 || len >= cap || s[0] == ' ' || s[len - 1] == ' ')
            return 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                return 0;
        memcpy(out, s, len);
        return len;
    }
    char text[SY_FMT_U64_MAX + 1];
    size_t n;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        n = 0;
        if (i < 0)
            text[n++] = '-';
        /* The magnitude in unsigned arithmetic: -INT64_MIN overflows. */
        uint64_t magnitude = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        n += sy_fmt_u64(text + n, magnitude);
    } else if (json_is_true(v)) {
        n = 4;
        memcpy(text, "true", n);
    } else if (json_is_false(v)) {
        n = 5;
        memcpy(text, "false", n);
    } else if (json_is_real(v)) {
        /* Fractional claims are rare and "%.17g" has no cheap equal:
         * the one format left on this path. */
        int len = snprintf(out, cap, "%.17g", json_real_value(v));
        return len > 0 && (size_t)len < cap ? (size_t)len : 0;
    } else {
        return 0;
    }
    if (n >= cap)
        return 0;
    memcpy(out, text, n);
    return n;
}

static void forward_claims(const sy_auth_config_t *st, const json_t *claims, sy_auth_result_t *out)
{
    size_t used = 0;
    for (size_t i = 0; i < st->forward_count; i++) {
        size_t n =
            claim_text(json_object_getn(claims, st->forward_claim[i], st->forward_claim_len[i]),
                       out->add_buf + used, sizeof out->add_buf - used);
        if (n == 0)
            continue;
        out->add[out->add_count++] =
            (sy_header_pair_t){st->forward_header[i], sy_slice(out->add_buf + used, n)};
        used += n;
    }
}

/* "Bearer <token>": the scheme case-insensitive, the token68 syntax of
 * RFC 9110 §11.2 restricted to what a JWS compact token can contain. */
static bool bearer_token(const sy_http_header_t *authz, sy_slice_t *token)
{
    if (!authz)
        return false;
    sy_slice_t v = authz->value;
    if (v.len < 7 || !sy_slice_eq_cstr_nocase(sy_slice(v.ptr, 7), "Bearer "))
        return false;
    size_t i = 7;
    while (i < v.len && v.ptr[i] == ' ')
        i++;
    *token = sy_slice(v.ptr + i, v.len - i);
    if (token->len == 0)
        return false;
    for (size_t k = 0; k < token->len; k++) {
        char c = token->ptr[k];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

static void check_jwt(const sy_auth_config_t *st, const sy_http_header_t *authz, int64_t now,
                      sy_auth_result_t *out)
{
#define INVALID_TOKEN "Bearer error=\"invalid_token\""
    out->drop = st->forward_header;
    out->drop_count = st->forward_count;
    sy_slice_t token;
    if (!bearer_token(authz, &token)) {
        deny(out, 401, "bearer token required", INVALID_TOKEN);
        return;
    }
    if (token.len > SY_JWT_MAX_TOKEN_BYTES) {
        deny_len(out, 401, jwt_message(SY_JWT_TOO_LARGE), SY_SLICE_LIT(INVALID_TOKEN));
        return;
    }
    /* A jwks_uri policy's current keys, borrowed: the worker's cached
     * reference is reused while the source's generation is unchanged, so
     * no lock is taken per request. NULL before activation or the first
     * fetch: then every token is refused. */
    sy_jwks_source_t *remote = atomic_load_explicit(&st->jwks_source, memory_order_acquire);
    sy_jwk_set_t *keys =
        st->jwks_uri ? (remote ? sy_jwks_source_keys(remote) : NULL) : st->static_keys;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    token_digest(token, digest);
    token_entry_t *slot =
        &token_cache[(digest[0] | (unsigned)digest[1] << 8) % TOKEN_CACHE_ENTRIES];
    bool cached = keys && slot->claims && slot->config_id == st->id &&
                  slot->key_generation == keys->generation &&
                  memcmp(slot->digest, digest, sizeof digest) == 0;
    sy_jwt_status_t s = SY_JWT_OK;
    /* On this thread's stack (about 7 KiB, payload included), bounded by
     * SY_JWT_MAX_TOKEN_BYTES: a cache miss allocates only what jansson
     * needs for the header and claims. */
    sy_jws_t jws_storage;
    sy_jws_t *jws = NULL;
    json_t *claims = NULL;
    if (cached) {
        claims = json_incref(slot->claims);
    } else {
        jws = &jws_storage;
        s = sy_jws_parse(token, jws);
        if (s != SY_JWT_OK) {
            jws = NULL;
        } else {
            s = sy_jws_verify(jws, token, keys, st->algs);
            /* A kid we don't know may be a rotation: ask for a refetch (the
             * fetcher rate-limits it) and refuse this token now. */
            if (remote && (s == SY_JWT_UNKNOWN_KID || !keys))
                sy_jwks_source_request_refetch(remote);
        }
        if (s == SY_JWT_OK && !(claims = sy_jwt_claims_parse(jws->payload, jws->payload_len)))
            s = SY_JWT_MALFORMED;
    }
    if (s == SY_JWT_OK) {
        sy_jwt_rules_t rules = {st->issuer, st->audiences, st->required_claims, st->skew, true};
        s = sy_jwt_check_claims(claims, &rules, now);
    }
    if (s == SY_JWT_OK || s == SY_JWT_CLAIM_MISMATCH) {
        /* The signature is good either way: remember it. */
        if (!cached) {
            memcpy(slot->digest, digest, sizeof digest);
            slot->config_id = st->id;
            slot->key_generation = keys->generation;
            json_decref(slot->claims);
            slot->claims = json_incref(claims);
        }
        const json_t *sub = json_object_getn(claims, "sub", 3);
        if (json_is_string(sub))
            copy_subject(out, json_string_value(sub), json_string_length(sub));
    }
    if (s == SY_JWT_OK)
        forward_claims(st, claims, out);
    else if (s == SY_JWT_CLAIM_MISMATCH)
        deny_len(out, 403, jwt_message(s), SY_SLICE_LIT("Bearer error=\"insufficient_scope\""));
    else
        deny_len(out, 401, jwt_message(s), SY_SLICE_LIT(INVALID_TOKEN));
    json_decref(claims);
    if (jws)
        sy_jws_free(jws);
}

static void result_reset(sy_auth_result_t *out)
{
    out->status = 0;
    out->retry_after = 0;
    out->message = NULL;
    out->message_len = 0;
    out->www_authenticate = "";
    out->www_authenticate_len = 0;
    out->subject[0] = '\0';
    out->drop = NULL;
    out->drop_count = out->add_count = 0;
}

static bool auth_run(const sy_auth_policy_t *policy, const sy_http_request_t *req, int64_t now,
                     const sy_auth_context_t *ctx, sy_auth_result_t *out, sy_auth_done_cb done,
                     void *arg, sy_auth_pending_t **pending)
{
    result_reset(out);
    int count;
    const sy_http_header_t *authz = find_authorization(req, &count);
    const sy_auth_config_t *st = policy->config;
    if (count > 1)
        authz = NULL; /* two Authorization headers are ambiguous: as if none */
    switch (policy->type) {
    case SY_AUTH_NONE:
        return true;
    case SY_AUTH_IAM:
        if (!authz || !sigv4_header_ok(authz->value))
            deny(out, 401, "missing or malformed AWS SigV4 Authorization header",
                 "AWS4-HMAC-SHA256");
        return true;
    case SY_AUTH_BASIC:
        if (st)
            return check_basic(st, authz, ctx, out, done, arg, pending);
        /* No configuration (fails closed): the realm is the policy's
         * name, at most 100 bytes of it, as config.c would have built it. */
        {
            static const char open[] = "Basic realm=\"";
            size_t n = sizeof open - 1;
            memcpy(out->challenge_buf, open, n);
            const char *end = memchr(policy->name, '\0', 100);
            size_t name_len = end ? (size_t)(end - policy->name) : 100;
            memcpy(out->challenge_buf + n, policy->name, name_len);
            n += name_len;
            out->challenge_buf[n++] = '"';
            out->challenge_buf[n] = '\0';
            deny_len(out, 401, SY_SLICE_LIT("authentication required"),
                     sy_slice(out->challenge_buf, n));
        }
        return true;
    case SY_AUTH_JWT:
        if (st)
            check_jwt(st, authz, now, out);
        else
            deny(out, 401, "authentication required", "Bearer error=\"invalid_token\"");
        return true;
    }
    deny(out, 401, "authentication required", "Bearer");
    return true;
}

bool sy_auth_start(const sy_auth_policy_t *policy, const sy_http_request_t *req,
                   const sy_auth_context_t *ctx, sy_auth_result_t *out, sy_auth_done_cb done,
                   void *arg, sy_auth_pending_t **pending)
{
    *pending = NULL;
    return auth_run(policy, req, (int64_t)time(NULL), ctx, out, done, arg, pending);
}

void sy_auth_check_at(const sy_auth_policy_t *policy, const sy_http_request_t *req, int64_t now,
                      sy_auth_result_t *out)
{
    sy_auth_context_t inline_ctx = {NULL, 0, NULL};
    sy_auth_pending_t *pending = NULL;
    auth_run(policy, req, now, &inline_ctx, out, NULL, NULL, &pending);
}

void sy_auth_check(const sy_auth_policy_t *policy, const sy_http_request_t *req,
                   sy_auth_result_t *out)
{
    sy_auth_check_at(policy, req, (int64_t)time(NULL), out);
}
