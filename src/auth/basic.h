/*
 * basic.h: HTTP Basic authentication (RFC 7617) against crypt(3) hashes,
 * split so the expensive part (one hash) can run off the event loop:
 * sy_basic_begin decides everything it can without hashing (malformed,
 * unknown user, throttled, a cached result) and otherwise hands back a job;
 * sy_basic_job_run hashes (any thread, touches only the job);
 * sy_basic_job_finish records the result in the caches and throttle.
 * Thread: sy_basic_users_build/free on the control plane; sy_basic_begin
 * and sy_basic_job_finish on the thread whose caches they use (a worker);
 * sy_basic_job_run on any thread. Pointers: the user table owns its
 * strings until sy_basic_users_free; a job owns copies of everything it
 * needs (it outlives the table, the request and the connection safely);
 * *user_out borrows from the table (sy_basic_begin) or the job.
 */
#ifndef SY_AUTH_BASIC_H
#define SY_AUTH_BASIC_H

#include <jansson.h>

#include "core/common.h"

typedef struct sy_basic_users sy_basic_users_t;
typedef struct sy_basic_job sy_basic_job_t;

/* Cost ceilings, refused at load: one check of a hash above them would
 * hold a thread for seconds to hours ($2y$31$ is 2^31 rounds). */
#define SY_BASIC_MAX_BCRYPT_COST 12             /* ~250 ms per check */
#define SY_BASIC_MAX_SHA_CRYPT_ROUNDS 500000    /* ~0.3 s ($5$, $6$; default 5000) */
#define SY_BASIC_MAX_YESCRYPT_BYTES (32u << 20) /* 128*r*N; libxcrypt cost <= 6 */

/* Caches per worker thread: verified and failed credentials (separate
 * tables, so a flood of wrong guesses never evicts a verified entry). */
#define SY_BASIC_CACHE_ENTRIES 256
#define SY_BASIC_CACHE_TTL_MS (5 * 60 * 1000)
#define SY_BASIC_FAILED_TTL_MS (60 * 1000)

/* Failure throttle per worker thread: after this many failures in a window
 * that opens at the first one, further attempts are answered 429 without
 * hashing until the window ends. */
#define SY_BASIC_THROTTLE_WINDOW_MS (60 * 1000)
#define SY_BASIC_THROTTLE_PER_ADDRESS 30
#define SY_BASIC_THROTTLE_PER_USER 10
#define SY_BASIC_THROTTLE_ENTRIES 1024

/* From the policy's "users" object (name -> crypt hash: $2y$, $2b$, $6$,
 * $5$, $y$), each within the cost ceilings. name: the policy name, part of
 * the cache and throttle keys. NULL with err ("users.alice: ..."). */
sy_basic_users_t *sy_basic_users_build(const char *name, const json_t *users, sy_error_t *err);
void sy_basic_users_free(sy_basic_users_t *users);
/* The user names as a new JSON array (for /config: never the hashes). */
json_t *sy_basic_users_names(const sy_basic_users_t *users);

/* NULL when hash is a crypt hash of an accepted scheme within the cost
 * ceilings; otherwise what is wrong, for an error message. */
const char *sy_basic_hash_problem(const char *hash, char *buf, size_t cap);

typedef enum {
    SY_BASIC_OK = 0,       /* verified by a hash */
    SY_BASIC_OK_CACHED,    /* verified from the cache, no hash */
    SY_BASIC_MISSING,      /* no usable Basic credentials */
    SY_BASIC_UNKNOWN_USER, /* no such user; no hash spent */
    SY_BASIC_WRONG,        /* the password did not match its hash */
    SY_BASIC_WRONG_CACHED, /* the same wrong password again, no hash */
    SY_BASIC_THROTTLED,    /* too many failures: *retry_after_s set */
    SY_BASIC_HASH_NEEDED,  /* *job set */
} sy_basic_status_t;

/* Decides without hashing when it can. peer: the client address for the
 * per-address throttle (NULL: none). now_ms: sy_now_ms(). On OK_CACHED
 * *user_out is the user name; on HASH_NEEDED *job is a new job that the
 * caller runs (sy_basic_job_run), then finishes and frees on this thread. */
sy_basic_status_t sy_basic_begin(const sy_basic_users_t *users, sy_slice_t authorization,
                                 const char *peer, uint64_t now_ms, const char **user_out,
                                 unsigned *retry_after_s, sy_basic_job_t **job);
/* The hash: seconds of CPU at the ceilings; any thread. */
void sy_basic_job_run(sy_basic_job_t *job);
/* OK or WRONG, recorded in this thread's cache and throttle (a failure
 * counts even when nobody waits for the answer any more). *user_out
 * borrows from the job. */
sy_basic_status_t sy_basic_job_finish(sy_basic_job_t *job, uint64_t now_ms, const char **user_out);
void sy_basic_job_free(sy_basic_job_t *job);

/* All of the above in one call on this thread (tests, tools): true when
 * verified. */
bool sy_basic_check(const sy_basic_users_t *users, sy_slice_t authorization, const char **user_out);

/* Forgets this thread's cached results and throttle counters. */
void sy_basic_thread_reset(void);

#endif
