/*
 * http.h: the control plane's HTTP client for AWS (S3, DynamoDB, STS and
 * the credential endpoints): one blocking libcurl request, optionally SigV4
 * signed, with timeouts and a response size cap; endpoint overrides; and
 * the small strict XML reader S3 and STS answers need.
 * Thread: the poller thread or the CLI, never a worker (it blocks).
 * Pointers: a response owns its body until sy_aws_response_free.
 */
#ifndef SY_AWS_HTTP_H
#define SY_AWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/sigv4.h"
#include "core/common.h"

/* Control-plane timeouts: a store that accepts connections and never
 * answers shows as an error within one poll plus these, and is not asked
 * again in the same poll. */
#define SY_AWS_CONNECT_TIMEOUT_MS 3000L
#define SY_AWS_DYNAMODB_TIMEOUT_MS 10000L
#define SY_AWS_S3_TIMEOUT_MS 20000L /* a policy object may be large */
/* A Retry-After longer than this fails the call instead of waiting in it. */
#define SY_AWS_MAX_RETRY_AFTER_MS 10000L
/* The longest Retry-After a store poller honours between polls: a store (or
 * a proxy before it) asking for more would stall the configuration for
 * longer than an operator's staleness alarm allows. */
#define SY_AWS_MAX_DEFERRED_RETRY_AFTER_MS 60000L

typedef struct {
    const char *method;
    const char *url;                  /* scheme://host[:port]/path?query, path already encoded */
    const sy_sigv4_header_t *headers; /* extra headers, signed when signing */
    size_t header_count;
    const char *body;
    size_t body_len;
    long timeout_ms;         /* whole request; 0: 10 s */
    long connect_timeout_ms; /* 0: 3 s */
    /* Signing: NULL creds sends the request unsigned. */
    const sy_aws_credentials_t *creds;
    const char *region;
    const char *service;
    bool s3; /* S3 path rules and x-amz-content-sha256 */
} sy_aws_request_t;

typedef struct {
    long status;
    char *body; /* NUL-terminated */
    size_t body_len;
    char etag[256];
    char request_id[128];
    long retry_after_ms; /* Retry-After in seconds, as ms; 0 when absent */
    time_t date;         /* the server's Date header; 0 or -1 when absent */
    bool timed_out;      /* no answer within the timeout (with a false perform) */
    bool too_large;      /* the answer passed the size cap (with a false perform) */
} sy_aws_response_t;

/* Performs the request. False only when no HTTP answer came (DNS, connect,
 * timeout, TLS, too large), with err saying which; any HTTP status is
 * returned as true with resp->status set. A signed request answered with a
 * clock-skew error (RequestTimeTooSkewed, "Signature expired", ...) is
 * signed again once with the clock corrected by the server's Date, as the
 * AWS SDKs do; the correction is kept for later requests. */
bool sy_aws_http_perform(const sy_aws_request_t *req, sy_aws_response_t *resp, sy_error_t *err);
void sy_aws_response_free(sy_aws_response_t *resp);

/* The endpoint override for a service, the SDK way: AWS_ENDPOINT_URL_<ID>
 * (ID "S3", "DYNAMODB", "STS") else AWS_ENDPOINT_URL. Returned without a
 * trailing '/', copied into out; NULL when neither is set. */
const char *sy_aws_endpoint_override(const char *service_id, char *out, size_t cap);

/* The text of the element at `path` (outer to inner, e.g. {"Error",
 * "Code", NULL}), entity-decoded, malloc'd. NULL when the element is absent,
 * appears twice under its parent, or holds markup: answers are read
 * strictly so a surprising document is an error, not a guess. */
char *sy_aws_xml_text(const char *xml, size_t len, const char *const *path);

/* "s3://b/k: AccessDenied: Access Denied" style message from an AWS error
 * answer (XML <Error>/<ErrorResponse>, or JSON __type/message). Falls back to
 * the HTTP status. */
void sy_aws_error_message(const sy_aws_response_t *resp, const char *what, sy_error_t *err);

/* Retries: true for an answer worth repeating (5xx, throttling codes in
 * the body, 429); the delay before retry `attempt` (0-based) is full
 * jitter: uniform in [0, min(cap_ms, base_ms * 2^attempt)]. */
bool sy_aws_retryable(const sy_aws_response_t *resp);
long sy_aws_retry_delay_ms(int attempt, long base_ms, long cap_ms);
/* Sleeps ms, or less when sy_aws_http_abort_all is called: false then. */
bool sy_aws_sleep_ms(long ms);

/*
 * Throttling answers that carry Retry-After (S3's 503 SlowDown, a DynamoDB
 * ThrottlingException behind a proxy that adds it). On a thread that called
 * sy_aws_throttle_defer(true) (the store pollers), such an answer ends the
 * call at once, so the error shows in /config now rather than after the
 * retries, and the wait is handed to the caller: sy_aws_throttle_take()
 * returns the longest Retry-After noted on this thread since the last take
 * (ms, capped at SY_AWS_MAX_DEFERRED_RETRY_AFTER_MS; 0 when none), and the
 * caller asks that store again no sooner. Elsewhere (the CLI, `check`) the
 * call waits it out itself, up to SY_AWS_MAX_RETRY_AFTER_MS. Thread-local:
 * each poller speaks for its own store.
 */
void sy_aws_throttle_defer(bool on);
bool sy_aws_throttle_deferring(void);
/* Returns the wait noted for this answer (capped). */
long sy_aws_throttle_note(long retry_after_ms);
/* On a poller thread, a throttling answer with Retry-After ends the call:
 * notes the wait (sy_aws_throttle_note) and adds it to *err, so the error
 * shows now and the store is asked again no sooner than it said. True when
 * the call should stop; false (err untouched) elsewhere or without one. */
bool sy_aws_throttle_deferred(long retry_after_ms, sy_error_t *err);
long sy_aws_throttle_take(void);

/* Shutdown: every request in flight on any thread ends within about a
 * second with an error, later requests fail at once, and sleeps wake.
 * reset undoes it (tests). */
void sy_aws_http_abort_all(void);
void sy_aws_http_abort_reset(void);
bool sy_aws_http_aborted(void);

#endif
