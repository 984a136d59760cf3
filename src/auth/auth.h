/*
 * auth.h: the auth phase (SPEC §5.5) as one call that returns a decision.
 * The proxy and /explain call only this; each policy type is a module
 * behind it (none and iam here, basic.c, jwt.c + jwks.c).
 * Thread: sy_auth_prepare/sy_auth_release on the control plane (policy
 * parse/free); sy_auth_check on workers. Pointers: the decision's strings
 * are static, borrow from the policy, or point into the result itself (do
 * not copy a result whose add_count is non-zero; use it in place).
 */
#ifndef SY_AUTH_AUTH_H
#define SY_AUTH_AUTH_H

#include <stdint.h>

#include "http/parser.h"
#include "http/serialize.h"
#include "policy/policy.h"

/* forward_claims per policy at most, and the bytes their values may take. */
#define SY_AUTH_MAX_FORWARD 16
#define SY_AUTH_FORWARD_BYTES 2048

typedef struct {
    int status;                 /* 0: allowed; 401 or 403 */
    const char *message;        /* JSON message */
    char www_authenticate[160]; /* the WWW-Authenticate value with 401 */
    char subject[128];          /* the authenticated subject, when known */
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

/* Builds the policy's parsed state (users, algorithms, keys, audiences,
 * forward_claims) into policy->state, off the request path: call once per
 * auth policy after it is parsed, before it is published. For jwks_uri it
 * registers the URI with the key fetcher. false with err filled (the
 * message names the field, without the policy prefix). A policy without
 * state (not prepared) is refused by sy_auth_check for basic and jwt. */
bool sy_auth_prepare(sy_auth_policy_t *policy, sy_error_t *err);
/* Frees the calling thread's caches; a worker calls it as it ends. */
void sy_auth_thread_cleanup(void);
/* Frees policy->state (call before freeing the policy). Idempotent. */
void sy_auth_release(sy_auth_policy_t *policy);

void sy_auth_check(const sy_auth_policy_t *policy, const sy_http_request_t *req,
                   sy_auth_result_t *out);
/* The same at an explicit time (seconds since the epoch), for tests. */
void sy_auth_check_at(const sy_auth_policy_t *policy, const sy_http_request_t *req, int64_t now,
                      sy_auth_result_t *out);

#endif
