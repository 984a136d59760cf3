/*
 * tls.h: TLS for the event loops, over memory BIOs. OpenSSL never touches a
 * socket: ciphertext read by libuv is fed in, plaintext comes out, and
 * ciphertext OpenSSL produces is flushed with ordinary uv_write calls. So a
 * handshake never blocks a worker and TLS and plain connections share one
 * read/write path.
 * Thread: a sy_tls_t belongs to the worker that owns its connection; the
 * context functions are safe from any thread. Pointers: contexts returned
 * by the *_ctx functions are cached for the life of the process, except
 * the server context, which the caller releases with SSL_CTX_free.
 * Every OpenSSL call of the data plane is made here: the proxy sees only
 * sy_tls_* functions.
 */
#ifndef SY_NET_TLS_H
#define SY_NET_TLS_H

#include <openssl/ssl.h>
#include <uv.h>

#include "core/common.h"

/* Ciphertext read size: one maximum TLS record plus slack (the caller's
 * read buffer; the worker's scratch). Plaintext buffers keep room for two
 * of these free before reading from a TLS socket, so everything read can
 * be decrypted at once. */
#define SY_TLS_READ_CHUNK 17408

/* Sessions for resuming connections to one destination. TLS 1.3 tickets
 * may be single-use, so each is taken once and servers send several. */
#define SY_TLS_SESSIONS 4
typedef struct {
    SSL_SESSION *sessions[SY_TLS_SESSIONS];
    int count;
} sy_tls_session_cache_t;

/* Sets the newest cached session on ssl (and forgets it). */
void sy_tls_session_take(sy_tls_session_cache_t *cache, SSL *ssl);
void sy_tls_session_cache_clear(sy_tls_session_cache_t *cache);

typedef struct {
    SSL *ssl;
    BIO *rbio; /* network -> OpenSSL */
    BIO *wbio; /* OpenSSL -> network */
    uv_stream_t *stream;
    bool handshake_done;
    /* Client side: where sessions from the server are kept for
     * resumption (one cache per destination), or NULL. */
    sy_tls_session_cache_t *sessions;
} sy_tls_t;

/* A trust store for upstream connections: the client context that
 * verifies chains against ca_file's certificates (NULL: the system store),
 * TLS 1.2 or newer, sessions handed to the caller's per-destination cache.
 * Built by the control plane when a snapshot is built, and owned by that
 * snapshot: workers only read it, so no lock is taken per connection. */
typedef struct sy_tls_trust {
    char *ca_file; /* NULL: the system store */
    SSL_CTX *ctx;  /* NULL when it could not be built: see error */
    char *error;   /* why ctx is NULL, for the log line of the 502 */
    /* Names this store's contents: "system", or the ca_file path with a
     * digest of the bytes loaded, so a store whose file changed is a new
     * store (a new pool key) while an unchanged one keeps its connections. */
    char *id;
} sy_tls_trust_t;

/* Builds t for ca_file (NULL: system store). When one of `reuse` (the
 * current snapshot's stores) has the same id, its context is shared
 * (SSL_CTX_up_ref) instead of built again. Returns false only when out of
 * memory; a store that fails to load has ctx NULL and error set. Control
 * plane only: reads the file. */
bool sy_tls_trust_build(sy_tls_trust_t *t, const char *ca_file, const sy_tls_trust_t *reuse,
                        size_t reuse_count);
void sy_tls_trust_free(sy_tls_trust_t *t);

/* (Re)loads the listener's certificate chain and key into a fresh context
 * and swaps it in; connections already open keep the old one. */
bool sy_tls_server_load(const char *cert_file, const char *key_file, sy_error_t *err);
/* A reference to the current server context (SSL_CTX_free it), or NULL. */
SSL_CTX *sy_tls_server_ctx_acquire(void);

/* Sets up t for a connection on stream. client: connect side (SNI and the
 * verify name are set by the caller on t->ssl). */
bool sy_tls_init(sy_tls_t *t, SSL_CTX *ctx, uv_stream_t *stream, bool client);
void sy_tls_free(sy_tls_t *t);
/* Sets up t as the server side of an accepted connection with the current
 * listener context (sy_tls_server_load). False when there is none or out
 * of memory. */
bool sy_tls_server_init(sy_tls_t *t, uv_stream_t *stream);
/* Client side, before the first handshake step: SNI (NULL: none), the
 * name the certificate must be valid for (as sy_tls_verify_host made it;
 * the subject CN is never read as a name, nor partial wildcards) and a
 * session to resume from `sessions`, where new ones are kept too. False
 * when the verify name cannot be set. */
bool sy_tls_client_setup(sy_tls_t *t, const char *sni, const char *verify_check,
                         sy_tls_session_cache_t *sessions);
/* After a completed handshake: whether it resumed a session. */
bool sy_tls_resumed(const sy_tls_t *t);
/* Queues close_notify (send it with sy_tls_flush) before a half-close. */
void sy_tls_close_notify(sy_tls_t *t);
/* The connection goes idle: frees the memory BIOs' buffers when nothing
 * is pending in them (OpenSSL's own record buffers are released by
 * SSL_MODE_RELEASE_BUFFERS, set by sy_tls_init), so an idle TLS connection
 * keeps only its session state. */
void sy_tls_shed(sy_tls_t *t);

/* The name a certificate must be valid for, as OpenSSL's host check takes
 * it: a leading "*." label is replaced by a probe label, so only a
 * certificate valid for the whole wildcard passes. */
void sy_tls_verify_host(char *out, size_t cap, const char *name);

/* After a handshake that resumed a session: keeps it for the next
 * connection when the protocol allows reuse (TLS 1.2). */
void sy_tls_session_resumed(sy_tls_t *t);

/* Feeds ciphertext read from the socket. */
void sy_tls_feed(sy_tls_t *t, const char *in, size_t len);

/* Drives the handshake: 1 done, 0 needs more input, -1 failed. */
int sy_tls_handshake(sy_tls_t *t);

/* Decrypts into out. Returns bytes (> 0), 0 when it needs more input, -1 on
 * a protocol error; *eof is set when the peer closed the TLS session. */
ssize_t sy_tls_read(sy_tls_t *t, char *out, size_t cap, bool *eof);

/* Whether the peer ended the session with close_notify: a TCP close
 * without it may be a truncation attack (RFC 8446 §6.1). */
bool sy_tls_peer_closed(const sy_tls_t *t);

/* Encrypts bufs (always entirely: memory BIOs never push back). */
bool sy_tls_write(sy_tls_t *t, const uv_buf_t *bufs, unsigned n);

/* Sends whatever ciphertext OpenSSL has produced: at once when the socket
 * takes it whole (returns 1, cb never runs; also when nothing is
 * pending), else queued (returns 0; cb, which may be NULL, runs with arg
 * once it is written). A negative libuv error when it cannot be sent. */
int sy_tls_flush(sy_tls_t *t, void (*cb)(void *arg, int status), void *arg);
/* Frees the calling thread's spare flush blocks; an event-loop thread that
 * flushed calls it as it ends. */
void sy_tls_thread_cleanup(void);

/* Why a failed handshake failed, for logs: "name mismatch", "untrusted
 * chain", "expired", "not yet valid", "handshake failure", with OpenSSL's
 * own words in detail. */
const char *sy_tls_failure(sy_tls_t *t, char *detail, size_t cap);

#endif
