/*
 * upstream.h: the HTTP/1 client of the data plane (upstream.c): a
 * connection to a destination (resolve, connect trying each address,
 * TLS), the per-worker keep-alive pool, and the response side of one
 * exchange on it. It owns the connection object, its receive buffer and
 * the response's parsing and framing (status line and headers, 1xx,
 * Content-Length / chunked / until-close); the caller (client.c) sends the
 * request bytes and is told, through callbacks, what happened: connected,
 * written, the response head, body slices (one at a time: reading stops
 * until the caller says the slice is written), done, or an error.
 * Thread: the worker thread that owns the connection, from its loop only.
 * Pointers: sy_upstream_t is private to upstream.c; an exchange
 * (sy_h1_exchange_t) is the caller's and must live until the connection
 * is released or closed; slices and the parsed head handed to callbacks
 * live until the slice is acknowledged (sy_upstream_body_written) or the
 * connection is released or closed.
 */
#ifndef SY_PROXY_UPSTREAM_H
#define SY_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http/parser.h"
#include "policy/snapshot.h"
#include "proxy/retry.h"
#include "proxy/worker.h"

/* Largest upstream response head. */
#define SY_UPSTREAM_HEAD_MAX 65536

typedef struct sy_upstream sy_upstream_t;

/* Why an exchange failed. The connection is closed already. */
typedef struct {
    int status;      /* for the client's answer: 502, or 504 (response timeout) */
    const char *why; /* for the answer and the access log (static text) */
    int kind;        /* SY_UPSTREAM_ERR_* (core/metrics.h) */
    bool count;      /* a destination error to count, unless the request is retried */
    bool broke;      /* the response broke after its head was handed over */
    /* The facts the retry rule (retry.h) looks at. */
    sy_retry_fault_t fault;
    bool reused;
    bool response_bytes;
} sy_h1_error_t;

typedef struct {
    /* Ready for the request: send its head with sy_upstream_write. peer is
     * the address in use ("ip:port"). */
    void (*connected)(void *arg, const char *peer);
    /* A sy_upstream_write completed (status < 0: it failed). */
    void (*written)(void *arg, int status);
    /* The final response head (interim 1xx responses are skipped). */
    void (*head)(void *arg, const sy_http_response_t *resp);
    /* The next body slice, [data, data + len), decoded from its framing;
     * last: the body ends with it. Called once after the head even when
     * no body bytes are there yet (len 0). Returns true when the caller is
     * writing the slice: it then calls sy_upstream_body_written once it is
     * out, and until then nothing more is read. False: nothing to write. */
    bool (*body)(void *arg, char *data, size_t len, bool last);
    /* The response is complete and every slice acknowledged. */
    void (*done)(void *arg);
    /* The exchange failed (see sy_h1_error_t). */
    void (*error)(void *arg, const sy_h1_error_t *err);
} sy_h1_callbacks_t;

/* One request/response exchange, as the caller describes it. */
typedef struct {
    const sy_h1_callbacks_t *cb;
    void *arg;
    /* Kept current by upstream.c: the connection serving the exchange
     * (set when one is attached, cleared before an error callback). */
    sy_upstream_t **slot;
    const char *request_id;  /* for log lines */
    const char *destination; /* the metrics label (route's target host) */
    const char *url;         /* for log lines */
    bool head_request;       /* the request was HEAD: no body follows */
    uint32_t response_timeout_ms;
    sy_http_header_t *headers; /* where the response head's header slices go */
    size_t header_cap;
    /* Where the response head's parse stands between reads (the caller's
     * storage; upstream.c resets it for every response, so a head trickled
     * in costs one pass over its bytes). */
    sy_http_head_state_t *head_state;
} sy_h1_exchange_t;

/* Gets an idle pooled connection for dest->key (one whose key matches
 * whole: same target, TLS settings, trust store and address guard) or
 * starts a new one (fresh: never pooled), and attaches ex to it: its
 * callbacks run from here on (connected or error, maybe before this
 * returns). dest belongs to snap, which the caller holds. */
void sy_upstream_acquire(sy_worker_t *w, const sy_snapshot_t *snap, const sy_forward_target_t *dest,
                         uint32_t connect_timeout_ms, bool fresh, const sy_h1_exchange_t *ex);
/* Writes request bytes (one write at a time); `written` is called back.
 * Returns 0 or a libuv error (then nothing is called back). */
int sy_upstream_write(sy_upstream_t *up, const uv_buf_t *bufs, unsigned n);
/* A write is in flight. */
bool sy_upstream_writing(const sy_upstream_t *up);
/* Connected and no write in flight: request bytes may be written. */
bool sy_upstream_can_send(const sy_upstream_t *up);
/* The retry rule's facts about the connection (reused, response bytes). */
void sy_upstream_retry_facts(const sy_upstream_t *up, sy_retry_facts_t *f);
/* The slice last handed to `body` is written: the exchange goes on. */
void sy_upstream_body_written(sy_upstream_t *up);
/* The connection's timer (the response timeout while waiting on it). */
void sy_upstream_set_timer(sy_upstream_t *up, uint32_t ms);
void sy_upstream_stop_timer(sy_upstream_t *up);
/* Done with it: back to the pool, buffers shed, when the request went out
 * whole (request_complete) and the response ended cleanly on a
 * keep-alive connection; else closed. No callback runs after this. */
void sy_upstream_release(sy_upstream_t *up, bool request_complete, uint32_t idle_ms);
/* Closes it (no callback runs after this). */
void sy_upstream_close(sy_upstream_t *up);

/* The pool: idle connections beyond `keep` are closed (the worker is at
 * its fd budget); every idle one is closed; entries are freed at the
 * worker's end. */
void sy_pool_trim(sy_worker_t *w, size_t keep);
void sy_pool_close_all(sy_worker_t *w);
void sy_pool_free_all(sy_worker_t *w);

#endif
