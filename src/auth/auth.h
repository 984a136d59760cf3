/*
 * auth.h: the auth phase (SPEC §5.5) as one call that returns a decision.
 * The proxy calls only this; each policy type is a module behind it (none
 * and iam here, basic.c, jwt.c + jwks.c), configured by config.c.
 * Thread: sy_auth_config_* and sy_auth_activate on the control plane
 * (policy parse/free, snapshot publish); sy_auth_start, sy_auth_abandon and sy_auth_check on
 * workers (a password hash runs on libuv's threadpool, see sy_auth_start).
 * Pointers: the decision's strings are static, borrow from the policy, or
 * point into the result itself (www_authenticate and the add values: do
 * not copy a result; use it in place).
 */
#ifndef SY_AUTH_AUTH_H
#define SY_AUTH_AUTH_H

#include <stdint.h>
#include <uv.h>

#include "http/parser.h"
#include "http/serialize.h"
#include "policy/policy.h"

/* forward_claims per policy at most, and the bytes their values may take. */
#define SY_AUTH_MAX_FORWARD 16
#define SY_AUTH_FORWARD_BYTES 2048

typedef struct {
    int status;           /* 0: allowed; 401, 403, 429 or 503 */
    unsigned retry_after; /* seconds for Retry-After with 429 and 503, else 0 */
    const char *message;  /* JSON message */
    size_t message_len;
    /* The WWW-Authenticate value with 401 ("" when none): a literal, the
     * policy's challenge (built at policy load) or challenge_buf; never
     * NULL once decided. */
    const char *www_authenticate;
    size_t www_authenticate_len;
    char challenge_buf[160];
    char subject[128]; /* the authenticated subject, when known */
    /* Headers for the upstream request (sy_forward_request_t drop/add):
     * `drop` names every forward_claims header, set whenever the policy has
     * any, so a client's forged copy never passes (borrowed from the
     * policy); `add` the claim values of this token (slices into add_buf). */
    const sy_slice_t *drop;
    size_t drop_count;
    sy_header_pair_t add[SY_AUTH_MAX_FORWARD];
    size_t add_count;
    char add_buf[SY_AUTH_FORWARD_BYTES];
} sy_auth_result_t;

/* ---- configuration (control plane) ---- */

/* Parses one auth_policies entry (its "type" and every field of that
 * type) into a typed, immutable configuration: Basic users, JWT
 * algorithms, keys, audiences, claim rules. The one reader of an auth
 * policy's JSON. where: the entry's location ("auth_policies.partners"),
 * which prefixes every message ("auth_policies.partners.realm: ...").
 * No network I/O, no thread: a jwks_uri is only recorded. NULL with err. */
sy_auth_config_t *sy_auth_config_parse(const char *name, const json_t *obj, const char *where,
                                       sy_error_t *err);
void sy_auth_config_free(sy_auth_config_t *config);
sy_auth_type_t sy_auth_config_type(const sy_auth_config_t *config);
/* jwt: the header names its forward_claims set (borrowed from the config,
 * which lives as long as the policy); 0 for every other type. Every route
 * drops the client's copies of every policy's names (forward.c). */
size_t sy_auth_config_forward_headers(const sy_auth_config_t *config, const sy_slice_t **names);
/* basic: the WWW-Authenticate realm (defaults to the policy name). */
const char *sy_auth_config_realm(const sy_auth_config_t *config);
/* What /config shows (a new object): a basic policy's realm and user
 * names, a jwt policy's issuer and audiences; never hashes, keys, secrets. */
json_t *sy_auth_config_describe(const sy_auth_config_t *config);
/* Registers the policies' jwks_uri sources with the key fetcher (starting
 * it on first use). Call on the control plane before publishing a snapshot
 * that holds them; idempotent. Until then a jwks_uri policy refuses every
 * token: parsing alone (check, the routes CLI, fuzzers) never fetches. */
void sy_auth_activate(const sy_auth_policy_t *policies, size_t count);

/* Frees the calling thread's caches and key set references; a worker
 * calls it as it ends. */
void sy_auth_thread_cleanup(void);

/* Password hashes one worker may have queued or running on libuv's
 * threadpool at once; past it (or past the pool's size minus one for the
 * whole process, so getaddrinfo on the same pool always finds a free
 * thread) a Basic check that needs a hash is answered 503 + Retry-After. */
#define SY_AUTH_MAX_HASHES_IN_FLIGHT 2

/* Where the auth phase runs: the worker's loop (NULL: hash inline, for
 * tests and tools), its metrics slot and the client's address (the
 * per-address failure throttle's key). */
typedef struct {
    uv_loop_t *loop;
    int worker;
    const char *peer;
} sy_auth_context_t;

typedef struct sy_auth_pending sy_auth_pending_t;
typedef void (*sy_auth_done_cb)(void *arg);

/* Runs the auth phase. true: decided, *out filled. false: a password hash
 * was queued; *pending is set and done(arg) runs later on ctx->loop with
 * *out filled, unless sy_auth_abandon(*pending) is called first. *out must
 * stay valid until then. */
bool sy_auth_start(const sy_auth_policy_t *policy, const sy_http_request_t *req,
                   const sy_auth_context_t *ctx, sy_auth_result_t *out, sy_auth_done_cb done,
                   void *arg, sy_auth_pending_t **pending);
/* The caller goes away (the client closed): done will not run and *out is
 * not touched again. The hash finishes on its thread and its result still
 * counts in the cache and throttle (disconnecting must not dodge them). */
void sy_auth_abandon(sy_auth_pending_t *pending);

/* sy_auth_start inline (no loop), for tests and tools. */
void sy_auth_check(const sy_auth_policy_t *policy, const sy_http_request_t *req,
                   sy_auth_result_t *out);
/* The same at an explicit time (seconds since the epoch), for tests. */
void sy_auth_check_at(const sy_auth_policy_t *policy, const sy_http_request_t *req, int64_t now,
                      sy_auth_result_t *out);

#endif
