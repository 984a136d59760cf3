/*
 * proxy.h: the data plane's internal objects: the worker (one event loop),
 * the client connection and the upstream connection with its pool.
 * Thread: everything here belongs to one worker thread and is touched only
 * from its loop. Pointers: a client borrows its receive buffer and request
 * state from its worker while it has work and gives them back when idle;
 * the request state owns the request's snapshot reference; an upstream
 * connection belongs either to one client (while serving its request) or
 * to its worker's pool, never both, and holds a receive buffer only while
 * a response is expected.
 */
#ifndef SY_PROXY_PROXY_H
#define SY_PROXY_PROXY_H

#include <stdatomic.h>
#include <uv.h>

#include "auth/auth.h"
#include "http/parser.h"
#include "net/resolver.h"
#include "net/tls.h"
#include "proxy/bufpool.h"
#include "http/serialize.h"
#include "policy/snapshot.h"
#include "route/decide.h"

/* Largest upstream response head. */
#define SY_UPSTREAM_HEAD_MAX 65536
/* Receive buffer of an upstream connection: a head, plus room for what one
 * TLS read can decrypt to (see sy_upstream_can_read). */
#define SY_UPSTREAM_BUF (SY_UPSTREAM_HEAD_MAX + 2 * SY_TLS_READ_CHUNK)
/* Room kept after a client's request head for streaming its body. */
#define SY_CLIENT_BODY_ROOM 16384
/* Where idle connections' reads land (and a TLS client's plaintext before
 * it has a buffer): at least what one TLS read decrypts to. */
#define SY_WORKER_SCRATCH 65536
/* Buffers and request states a worker keeps for reuse; more are freed. */
#define SY_WORKER_SPARE_BUFFERS 64
#define SY_WORKER_SPARE_REQUESTS 256

typedef struct sy_worker sy_worker_t;
typedef struct sy_client sy_client_t;
typedef struct sy_upstream sy_upstream_t;
typedef struct sy_request sy_request_t;

/* Buckets of a worker's pool index (a power of two). */
#define SY_POOL_BUCKETS 1024

/* One pool key (sy_forward_target_t.key): the connections opened for it,
 * idle ones most recently used first, and its TLS sessions. Found through
 * the worker's hashed index; freed once it holds no connection and no
 * session (or, with sessions only, at the next snapshot change). */
typedef struct sy_pool_entry {
    sy_upstream_t *idle; /* list through sy_upstream_t.pool_next/pool_prev */
    size_t idle_count;
    size_t conns;                      /* connections attached to it, idle or serving */
    sy_tls_session_cache_t sessions;   /* TLS sessions for resumption */
    struct sy_pool_entry *next, *prev; /* every entry of the worker (sy_worker_t.pool) */
    struct sy_pool_entry *chain;       /* the index bucket's list */
    uint64_t hash;
    size_t key_len;
    char key[]; /* NUL-terminated */
} sy_pool_entry_t;

/* What main asks of a worker (sy_worker_t.request), newest wins. */
enum { SY_WORKER_RUN = 0, SY_WORKER_DRAIN, SY_WORKER_STOP };

struct sy_worker {
    int id;
    uv_loop_t loop;
    uv_async_t wakeup;       /* main -> worker: look at `request` */
    _Atomic int request;     /* written by main, read by the worker in on_wakeup */
    atomic_bool stop_sent;   /* main's last uv_async_send is done: the loop may close */
    uv_poll_t listeners[32]; /* readable: accept4 on listener_fds[i] */
    int listener_fds[32];    /* listening sockets, owned (closed) by the worker */
    bool listener_tls[32];
    size_t listener_count;
    bool listening;          /* the listener polls are started */
    bool out_of_fds;         /* paused after EMFILE/ENFILE/ENOBUFS until a close or retry */
    uv_timer_t accept_retry; /* back-off after running out of fds */
    uint32_t accept_backoff_ms;
    uv_timer_t heartbeat;  /* proves to the admin thread that the loop runs */
    size_t max_clients;    /* connection cap (sy_server_plan_limits) */
    size_t fd_budget;      /* fds this worker may hold: clients + upstreams */
    uint64_t pause_log_ms; /* rate limit of the "accepting paused" log line */
    uint64_t pauses_unlogged;
    sy_snapshot_t *snap; /* the worker's cached reference */
    sy_resolver_t *resolver;
    uint64_t snap_generation;
    sy_pool_entry_t *pool;                        /* every pool entry */
    sy_pool_entry_t *pool_index[SY_POOL_BUCKETS]; /* the same, by key hash */
    uint64_t pool_generation; /* snapshot generation the pool was last swept for */
    size_t client_count;      /* written by the worker, read by main (atomic builtins) */
    sy_client_t *clients;     /* every open client (for draining) */
    uint64_t request_seq;
    char id_prefix[12];
    /* Worker thread only: copied from `request` by the worker itself, so
     * client.c and upstream.c read them without a data race. */
    bool draining, stopping;
    /* Memory lent to connections while they have work (bufpool.h): client
     * and upstream receive buffers, request state; and the scratch buffers
     * idle connections read into (a read callback uses them up at once). */
    sy_bufpool_t buffers;
    sy_request_t *free_requests;
    size_t free_request_count;
    char *scratch;     /* SY_WORKER_SCRATCH plaintext bytes */
    char *tls_scratch; /* SY_TLS_READ_CHUNK ciphertext bytes */
    uv_thread_t thread;
};

typedef enum {
    SY_CLIENT_READING_HEAD = 0, /* waiting for (the rest of) a request head */
    SY_CLIENT_AUTHENTICATING,   /* waiting for a password hash (sy_auth_start) */
    SY_CLIENT_PROXYING,         /* a request is being forwarded */
    SY_CLIENT_RESPONDING,       /* writing an answer switchyard made itself */
    SY_CLIENT_LINGERING,        /* answered and closing: draining unread input */
    SY_CLIENT_CLOSING
} sy_client_state_t;

/* What one request needs, borrowed from the worker (free_requests)
 * when its first bytes arrive and given back when it ends: an idle
 * keep-alive connection holds none of it. The fields from `snap` up to
 * `head_store` are reset for every request (request_reset in client.c);
 * the arrays after it are written before they are read. */
struct sy_request {
    struct sy_request *next_free; /* in the worker's free list */
    uv_write_t write_req;
    uv_write_cb write_done; /* over TLS: what completes write_req */
    uv_shutdown_t shutdown_req;

    sy_snapshot_t *snap;
    sy_http_head_state_t req_parse; /* where the head parse stands between reads */
    sy_http_request_t req;
    const sy_route_t *route;
    sy_auth_pending_t *auth_pending; /* a queued password hash; abandoned on reset */
    size_t matched_len;              /* the route's matched prefix, for forwarding */
    uint64_t started_ns;
    uint64_t upstream_started_ns;
    size_t request_id_len;
    bool own_request_id;
    uint64_t bytes_in, bytes_out;
    int status;
    int upstream_status;
    const char *error; /* why switchyard answered itself */

    /* Request body, client -> upstream. */
    uint64_t req_remaining; /* SY_BODY_LENGTH */
    uint64_t req_total;
    sy_http_chunked_t req_chunked;
    bool req_body_done;
    enum { SY_UPWRITE_HEAD, SY_UPWRITE_BODY } upstream_write; /* what the in-flight write carries */
    size_t req_write_len; /* body bytes of [pos, end) the in-flight write covers */

    /* Response, upstream -> client. */
    bool resp_started; /* head written (or being written) to the client */
    bool resp_done;
    sy_frame_t resp_frame;
    char *req_head; /* the head for the upstream (in head_store) */
    size_t req_head_len;
    char *resp_head; /* the head for the client (in head_store) */
    size_t resp_head_len;
    bool resp_head_pending; /* goes out with the first body bytes */
    /* Where the upstream response head parse stands between reads; reset
     * for every response (a new connection, a retry, after a 1xx). */
    sy_http_head_state_t resp_parse;
    size_t resp_write_len; /* bytes of up->buf the in-flight client write covers */
    int retries;

    /* Kept with the request state between requests (grown, never shrunk):
     * the two rewritten heads, so no head costs a malloc once warm. */
    char *head_store[2];
    size_t head_store_cap[2];

    sy_http_header_t headers[SY_HTTP_MAX_HEADERS];      /* the request's */
    sy_http_header_t resp_headers[SY_HTTP_MAX_HEADERS]; /* the upstream response's */
    sy_auth_result_t auth;
    char request_id[72]; /* a kept client id is at most 64 bytes */
    char upstream_url[512];
    char upstream_addr[64]; /* the address connected to, for the access log */
    char message[320];      /* the JSON message of an answer switchyard made */
    char chunk_line[24];
    char out_chunk_line[24];
    char answer[2048]; /* answers switchyard makes itself */
};

/* A client connection: only what an idle keep-alive connection needs. The
 * request state (rq) and the receive buffer (buf) are borrowed from the
 * worker while a request is in progress, NULL while idle. */
struct sy_client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    sy_worker_t *worker;
    sy_client_t *prev, *next; /* worker's client list */
    sy_request_t *rq;         /* the request in progress, or NULL */
    sy_upstream_t *up;        /* the upstream serving it, or NULL */
    sy_tls_t *tls;            /* NULL on plain listeners */

    /* Receive buffer (NULL while idle): [0, head_len) is the current
     * request head (its slices point here), [pos, end) unread bytes. */
    char *buf;
    size_t cap, pos, end;

    sy_client_state_t state;
    int open_handles;
    bool https;
    bool reading;            /* uv_read_start is active */
    bool eof;                /* the client half-closed */
    bool writing;            /* a write to the client is in flight */
    bool close_after;        /* close once the current answer is written */
    bool head_clock_started; /* client_header_ms runs for the current head */
    char peer_ip[46];
};

typedef enum {
    SY_UP_RESOLVING = 0,
    SY_UP_CONNECTING,
    SY_UP_HANDSHAKING, /* TCP up, TLS handshake in progress */
    SY_UP_ACTIVE,      /* serving a client */
    SY_UP_IDLE,        /* in the pool */
    SY_UP_CLOSING
} sy_upstream_state_t;

struct sy_upstream {
    uv_tcp_t tcp;
    uv_timer_t timer;
    sy_resolve_req_t resolve_req;
    uv_connect_t connect_req;
    uv_write_t write_req;
    sy_worker_t *worker;
    sy_client_t *client;
    sy_upstream_t *pool_next, *pool_prev; /* the entry's idle list */
    sy_pool_entry_t *pool_entry;          /* its key's entry, from creation to free */
    sy_upstream_state_t state;
    int open_handles;
    bool tcp_open;
    bool reused;
    bool writing;
    bool reading;
    bool resolving;

    /* While connecting (its client holds the snapshot): the plan. */
    const sy_forward_target_t *dest;
    char connect_host[256]; /* for log lines */
    uint16_t connect_port;
    bool allow_loopback;
    uint32_t connect_timeout_ms;
    char peer[64]; /* the address in use, "ip:port" ("[ip]:port") */

    /* Where it connects: the answer's addresses in the order to try them,
     * the one tried now, and the answer generation it came from (a pooled
     * connection whose address left the answer is closed, not reused). */
    sy_resolver_plan_t plan;
    size_t attempt;
    sy_ip_t ip;
    uint32_t answer_generation;

    bool https;
    sy_tls_t *tls;

    char *buf; /* SY_UPSTREAM_BUF bytes while a response is expected, else NULL */
    size_t pos, end;
    uint64_t bytes_received; /* response bytes for this request */

    /* Response framing for the current request. */
    sy_http_response_t resp; /* its headers point into the client's request state */
    bool head_done;
    bool request_was_head;
    uint64_t body_remaining;
    sy_http_chunked_t chunked;
    bool body_done;
    bool eof;
};

/* worker.c */
void sy_worker_refresh_snapshot(sy_worker_t *w);
/* A client connection is gone (its handles closed): accepting may resume. */
void sy_worker_client_closed(sy_worker_t *w);

/* client.c */
/* Takes ownership of fd, a connected socket accept4()ed by the worker. */
void sy_client_accept(sy_worker_t *w, int fd, bool tls);
void sy_client_drain_idle(sy_worker_t *w);
/* Frees request state from the worker's free list (the worker's end). */
void sy_client_request_free(sy_request_t *rq);
void sy_client_close_all(sy_worker_t *w);

/* Called by upstream.c on the client that owns `up`. */
void sy_client_on_upstream_connected(sy_client_t *c);
void sy_client_on_upstream_failed(sy_client_t *c, int status, const char *why, int error_kind);
void sy_client_on_upstream_readable(sy_client_t *c); /* new bytes in up->buf, or up->eof */
void sy_client_on_upstream_write_done(sy_client_t *c, int status);

/* upstream.c */
/* Gets an idle pooled connection for dest->key (one whose key matches
 * whole: same target, TLS settings, trust store and address guard) or
 * starts a new one (fresh: never pooled); calls back
 * sy_client_on_upstream_connected / _failed. dest belongs to c->snap. */
void sy_upstream_acquire(sy_client_t *c, const sy_forward_target_t *dest,
                         uint32_t connect_timeout_ms, bool fresh);
/* The upstream's receive buffer has room for another read. */
bool sy_upstream_can_read(const sy_upstream_t *up);
/* Done with it: back to the pool when reusable, else closed. */
void sy_upstream_release(sy_upstream_t *up, bool reusable, uint32_t idle_ms);
void sy_upstream_close(sy_upstream_t *up);
void sy_upstream_read_start(sy_upstream_t *up);
void sy_upstream_read_stop(sy_upstream_t *up);
int sy_upstream_write(sy_upstream_t *up, const uv_buf_t *bufs, unsigned n);
void sy_upstream_set_timer(sy_upstream_t *up, uint32_t ms);
/* Takes up's receive buffer from the worker (a response is expected);
 * false when out of memory. */
bool sy_upstream_buffer_take(sy_upstream_t *up);
/* The response is over and up goes idle: gives back its receive buffer
 * and OpenSSL's and the memory BIOs' buffers. */
void sy_upstream_shed(sy_upstream_t *up);
void sy_pool_close_all(sy_worker_t *w);

#endif
