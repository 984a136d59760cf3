/*
 * config.h (private to src/auth/): the parsed, typed configuration of one
 * auth policy, the only place an auth policy's JSON is read (config.c).
 * auth.c checks requests against it.
 * Thread: parsed and freed on the control plane; jwks_source is set once
 * by sy_auth_activate before a snapshot holding the policy is published,
 * then read by workers; everything else is immutable after parsing.
 * Pointers: everything is owned by the config.
 */
#ifndef SY_AUTH_CONFIG_H
#define SY_AUTH_CONFIG_H

#include <jansson.h>
#include <stdatomic.h>

#include "auth/auth.h"
#include "auth/basic.h"
#include "auth/jwks.h"

struct sy_auth_config {
    sy_auth_type_t type;
    uint64_t id; /* unique per parsed policy: cache keys use it */

    /* basic */
    char *realm;
    char challenge[160];
    size_t challenge_len; /* measured at load: the 401 path never formats */
    sy_basic_users_t *users;

    /* jwt */
    unsigned algs; /* SY_JWT_ALG_BIT set */
    char *issuer;
    json_t *audiences, *required_claims; /* owned deep copies, or NULL */
    long skew;
    sy_jwk_set_t *static_keys; /* inline jwks or hs_secret_base64 */
    char *jwks_uri, *ca_file;  /* jwks_uri: fetched once activated */
    _Atomic(sy_jwks_source_t *) jwks_source;
    size_t forward_count;
    char *forward_claim[SY_AUTH_MAX_FORWARD];
    size_t forward_claim_len[SY_AUTH_MAX_FORWARD];
    sy_slice_t forward_header[SY_AUTH_MAX_FORWARD]; /* ptr malloc'd, NUL-terminated */
};

#endif
