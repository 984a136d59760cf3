/*
 * basic.h: HTTP Basic authentication (RFC 7617) against crypt(3) hashes,
 * with a bounded per-thread cache of recently verified credentials.
 * Thread: sy_basic_users_build on the control plane; sy_basic_check from
 * any thread (its cache and crypt scratch space are thread-local).
 * Pointers: the user table owns its strings until sy_basic_users_free;
 * *user_out borrows from it.
 */
#ifndef SY_AUTH_BASIC_H
#define SY_AUTH_BASIC_H

#include <jansson.h>

#include "core/common.h"

typedef struct sy_basic_users sy_basic_users_t;

/* From the policy's "users" object (name -> crypt hash: $2y$, $2b$, $6$,
 * $5$, $y$). name: the policy name, part of the cache key. NULL with err. */
sy_basic_users_t *sy_basic_users_build(const char *name, const json_t *users, sy_error_t *err);
void sy_basic_users_free(sy_basic_users_t *users);

/* Checks an Authorization header value ("Basic base64(user:password)").
 * true when the user exists and the password matches its hash; *user_out
 * is then the user name (borrowed from the table). */
bool sy_basic_check(const sy_basic_users_t *users, sy_slice_t authorization, const char **user_out);

/* Cache sizing: entries per thread and how long a success is remembered. */
#define SY_BASIC_CACHE_ENTRIES 256
#define SY_BASIC_CACHE_TTL_MS (5 * 60 * 1000)

#endif
