/*
 * stream.h: a byte stream over TCP with or without TLS, so the proxy's
 * connections (client.c, upstream.c) read, write, half-close and close the
 * same way either way; TLS runs over memory BIOs (tls.h) on the same loop.
 * Thread: a stream belongs to the worker that owns its connection and is
 * used from its loop only. Pointers: the stream owns its sy_tls_t (freed by
 * sy_stream_free_tls, after the handle closed); tcp.data is the owner's,
 * and the owner's libuv callbacks get &tcp as their handle.
 */
#ifndef SY_NET_STREAM_H
#define SY_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "net/tls.h"

typedef struct {
    uv_tcp_t tcp;
    sy_tls_t *tls; /* NULL: plain TCP */
} sy_stream_t;

/* Whether the stream runs TLS. */
static inline bool sy_stream_is_tls(const sy_stream_t *s)
{
    return s->tls != NULL;
}

/* Plaintext room a read needs: over TLS, everything one read (at most
 * SY_TLS_READ_CHUNK bytes of ciphertext into a scratch buffer) decrypts
 * to, plus a partial record from before, so no plaintext is ever left
 * waiting inside OpenSSL; over TCP, one byte. */
size_t sy_stream_read_room(const sy_stream_t *s);

/* Server side of an accepted TLS connection, with the listener's current
 * context. False when out of memory or there is no context. */
bool sy_stream_tls_server(sy_stream_t *s);
/* Client side of TLS over the connected stream: ctx the trust store's
 * context, sni (NULL: none), the name the certificate must be valid for
 * and the destination's session cache. False with *why set when it cannot
 * be set up. */
bool sy_stream_tls_client(sy_stream_t *s, SSL_CTX *ctx, const char *sni, const char *verify_check,
                          sy_tls_session_cache_t *sessions, const char **why);
/* Frees the TLS state (after the handle has closed). */
void sy_stream_free_tls(sy_stream_t *s);

/* Feeds len ciphertext bytes (may be 0) and drives the handshake, sending
 * what it produces: 1 done, 0 needs more input, -1 failed (see
 * sy_tls_failure on s->tls). */
int sy_stream_handshake(sy_stream_t *s, const char *in, size_t len);
bool sy_stream_handshake_done(const sy_stream_t *s);

/* What a read callback got, as plaintext: over TCP the bytes are already
 * where the alloc callback put them and nread is returned as is; over TLS
 * the ciphertext in b is fed to OpenSSL and what it decrypts to is written
 * to out (at most cap bytes). Returns the plaintext length, 0 when there is
 * none yet, or a negative libuv error (UV_EOF when the session ended or
 * broke). The handshake must be done; nread 0 over TLS reads what was fed
 * before (by sy_stream_handshake). */
ssize_t sy_stream_decode(sy_stream_t *s, ssize_t nread, const uv_buf_t *b, char *out, size_t cap);
/* Whether the peer ended the stream cleanly: always over TCP; over TLS
 * only with close_notify (a bare TCP close may be a truncation). */
bool sy_stream_peer_closed(const sy_stream_t *s);

/* Writes that went out whole at once complete from the loop's check phase,
 * right after the poll that started them, as libuv's own would: a caller
 * never sees its callback run inside the write call. libuv completes a
 * write it made at once the same way but re-arms epoll to do it, one
 * epoll_ctl per write; this costs none. One per worker loop. */
typedef struct {
    uv_check_t check;
    uv_idle_t idle; /* keeps the poll from blocking while completions wait */
    struct sy_stream_done *items;
    size_t count, cap;
} sy_stream_completions_t;

/* Sets up q on loop; 0 or a libuv error. Its handles are active (keep the
 * loop alive) only while completions wait. They are closed with the
 * loop's others; sy_stream_completions_free frees the rest after. */
int sy_stream_completions_init(uv_loop_t *loop, sy_stream_completions_t *q);
void sy_stream_completions_free(sy_stream_completions_t *q);

/* Writes bufs; cb(req, status) runs once they are out (req->data is the
 * caller's), never before this returns (q: the loop's completions).
 * Returns 0 or a libuv error (then cb never runs). A stream closed before
 * its completion runs gets UV_ECANCELED, as with libuv. */
int sy_stream_write(sy_stream_t *s, sy_stream_completions_t *q, uv_write_t *req,
                    const uv_buf_t *bufs, unsigned n, uv_write_cb cb);
/* Writes b now if the socket takes it at once; else drops it. */
void sy_stream_try_write(sy_stream_t *s, const uv_buf_t *b);
/* Half-closes our side: close_notify first over TLS, then the TCP FIN. */
int sy_stream_shutdown(sy_stream_t *s, uv_shutdown_t *req, uv_shutdown_cb cb);
/* The connection goes idle: TLS buffers are released. */
void sy_stream_shed(sy_stream_t *s);

int sy_stream_read_start(sy_stream_t *s, uv_alloc_cb alloc, uv_read_cb read);
void sy_stream_read_stop(sy_stream_t *s);
void sy_stream_close(sy_stream_t *s, uv_close_cb cb);

#endif
