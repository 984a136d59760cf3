/*
 * sources.h: the control plane. Reads the policy and routes sources (files,
 * s3:// and dynamodb://), builds snapshots off the request path,
 * publishes them, and polls each store every --poll-interval (jittered
 * ±10 %) from its own thread. A failed read or parse keeps the last good snapshot and is
 * recorded per store for /config, the log and metrics.
 * Thread: sy_sources_load_initial and sy_sources_start on main;
 * sy_sources_status from any thread (copies under a lock); each store's
 * poller runs on its own thread. Pointers: status copies are the caller's.
 */
#ifndef SY_CONTROL_SOURCES_H
#define SY_CONTROL_SOURCES_H

#include <stdbool.h>
#include <time.h>

#include "core/common.h"
#include "policy/policy.h"

typedef struct {
    const char *policy_uri;
    const char *routes_uri;
    double poll_interval_s;
    double resync_interval_s; /* full Scan of a DynamoDB table whose marker has not moved [300] */
    /* Leave remote stores to their pollers (serve: the listeners open
     * before a hanging store answers); else they are tried once here. */
    bool defer_remote;
} sy_sources_config_t;

/* Configures both stores and loads the local files (and, unless
 * defer_remote, tries the remote stores once); publishes the first
 * snapshot when both documents are in. A malformed URI, or a local file
 * that can't be read, parsed or built, is returned as a failure (the
 * caller exits 2). A remote store (S3, DynamoDB) that failed or was
 * deferred is left to its poller, which retries with backoff (1 s doubling
 * up to the poll interval); until then sy_snapshot_acquire() is NULL, so
 * /readyz and traffic answer 503. */
bool sy_sources_load_initial(const sy_sources_config_t *cfg, sy_error_t *err);

/* Starts one poller thread per store: a store that hangs never delays the
 * other. From here old snapshots are freed by the pollers, not by the
 * worker that drops the last reference. */
bool sy_sources_start(sy_error_t *err);
/* Aborts the control-plane calls in flight, then stops and joins the
 * pollers: returns within about a second even while a store hangs. */
void sy_sources_stop(void);

/* True once both stores have a good document (a snapshot was published). */
bool sy_sources_loaded_before(void);

/* Polls each store once now, on the calling thread (tests; an
 * admin-triggered reload). Serialised with each store's poller. False when
 * a store failed (the last good snapshot stays); true when every store was
 * read, changed or not. */
bool sy_sources_poll_now(void);

typedef struct {
    char source[512];
    char version[80];    /* content hash of the last good load */
    time_t last_success; /* 0 = never */
    time_t last_attempt;
    char last_error[512]; /* "" when the last attempt succeeded */
    time_t last_error_time;
    unsigned consecutive_failures;
    unsigned long reloads_ok, reloads_failed;
} sy_store_status_t;

/* Copies the status of "policy" (index 0) and "routes" (index 1). */
void sy_sources_status(sy_store_status_t out[2]);

/* Loads both documents and checks them without serving (the check
 * command). Returns NULL and fills err when a document can't be read or
 * parsed; else a snapshot the caller releases. */
struct sy_snapshot *sy_sources_load_once(const char *policy_uri, const char *routes_uri,
                                         sy_error_t *err);

/* sy_sources_load_once, also filling *problems (may be NULL) with every
 * problem of a policy that does not parse (sy_policy_parse_report), so
 * `check` reports them all in one run. Free with sy_problems_free. */
struct sy_snapshot *sy_sources_check_once(const char *policy_uri, const char *routes_uri,
                                          sy_error_t *err, sy_problems_t *problems);

#endif
