/*
 * tls.c: OpenSSL over memory BIOs, for libuv connections.
 *
 * Verification is never optional: every client context verifies the peer
 * (SSL_VERIFY_PEER) against a trust store and a host name, and nothing in
 * the policy or on the command line can turn that off. The name check uses
 * OpenSSL's own RFC 6125 matcher (X509_check_host via SSL_set1_host), with
 * partial wildcards ("f*.example.com") refused and the subject CN never
 * used as a name (RFC 9525; flags set where the name is, in upstream.c).
 *
 * Ciphertext goes out in heap-allocated write requests: a TLS connection
 * may need to send bytes the application never asked for (handshake
 * messages, alerts, key updates), so writes can't be tied to one
 * per-connection uv_write_t as plain connections do.
 */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- contexts ------------------------------------------------------------ */

typedef struct client_ctx {
    char *ca_file; /* "" for the system store */
    SSL_CTX *ctx;
    struct client_ctx *next;
} client_ctx_t;

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static client_ctx_t *client_ctxs;
static SSL_CTX *server_ctx;

static const char *openssl_error(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return "unknown error";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

static void cache_push(sy_tls_session_cache_t *cache, SSL_SESSION *session)
{
    if (cache->count == SY_TLS_SESSIONS) {
        SSL_SESSION_free(cache->sessions[0]); /* drop the oldest */
        memmove(cache->sessions, cache->sessions + 1,
                (SY_TLS_SESSIONS - 1) * sizeof cache->sessions[0]);
        cache->count--;
    }
    cache->sessions[cache->count++] = session;
}

/* Collects the sessions a server hands out; TLS 1.3 sends them after the
 * handshake, so this callback is the only reliable place to catch them. */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
    sy_tls_t *t = SSL_get_app_data(ssl);
    if (!t || !t->sessions)
        return 0;
    cache_push(t->sessions, session);
    return 1; /* we keep the reference */
}

void sy_tls_session_take(sy_tls_session_cache_t *cache, SSL *ssl)
{
    if (cache->count == 0)
        return;
    SSL_SESSION *session = cache->sessions[--cache->count];
    SSL_set_session(ssl, session); /* takes its own reference */
    SSL_SESSION_free(session);
}

void sy_tls_session_resumed(sy_tls_t *t)
{
    /* A TLS 1.2 session may be resumed again and no new ticket follows a
     * resumption, so it goes back; TLS 1.3 tickets are used once and the
     * server sends fresh ones. */
    if (t->sessions && SSL_version(t->ssl) < TLS1_3_VERSION) {
        SSL_SESSION *session = SSL_get1_session(t->ssl);
        if (session)
            cache_push(t->sessions, session);
    }
}

void sy_tls_session_cache_clear(sy_tls_session_cache_t *cache)
{
    while (cache->count > 0)
        SSL_SESSION_free(cache->sessions[--cache->count]);
}

SSL_CTX *sy_tls_client_ctx(const char *ca_file, sy_error_t *err)
{
    const char *key = ca_file ? ca_file : "";
    pthread_mutex_lock(&ctx_lock);
    for (client_ctx_t *c = client_ctxs; c; c = c->next) {
        if (strcmp(c->ca_file, key) == 0) {
            pthread_mutex_unlock(&ctx_lock);
            return c->ctx;
        }
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        SSL_CTX_free(ctx);
        goto fail;
    }
    /* Sessions are kept by the caller per destination (new-session
     * callback), not in OpenSSL's internal cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    client_ctx_t *c = calloc(1, sizeof *c);
    if (!c || !(c->ca_file = strdup(key))) {
        free(c);
        SSL_CTX_free(ctx);
        goto fail;
    }
    c->ctx = ctx;
    c->next = client_ctxs;
    client_ctxs = c;
    pthread_mutex_unlock(&ctx_lock);
    return ctx;
fail:
    pthread_mutex_unlock(&ctx_lock);
    sy_error_set(err, "TLS client context (ca_file %s): %s", ca_file ? ca_file : "system store",
                 openssl_error());
    return NULL;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *selected;
    if (SSL_select_next_proto(&selected, outlen, http11, sizeof http11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: carry on without ALPN */
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

bool sy_tls_server_load(const char *cert_file, const char *key_file, sy_error_t *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        sy_error_set(err, "TLS server context: %s", openssl_error());
        return false;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        sy_error_set(err, "--tls-cert %s: %s", cert_file, openssl_error());
        SSL_CTX_free(ctx);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        sy_error_set(err, "--tls-key %s: %s", key_file, openssl_error());
        SSL_CTX_free(ctx);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        sy_error_set(err, "--tls-key %s does not match --tls-cert %s", key_file, cert_file);
        SSL_CTX_free(ctx);
        return false;
    }
    pthread_mutex_lock(&ctx_lock);
    SSL_CTX *old = server_ctx;
    server_ctx = ctx;
    pthread_mutex_unlock(&ctx_lock);
    if (old)
        SSL_CTX_free(old); /* live connections hold their own references */
    return true;
}

SSL_CTX *sy_tls_server_ctx_acquire(void)
{
    pthread_mutex_lock(&ctx_lock);
    SSL_CTX *ctx = server_ctx;
    if (ctx)
        SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&ctx_lock);
    return ctx;
}

/* ---- connections ----------------------------------------------------------- */

bool sy_tls_init(sy_tls_t *t, SSL_CTX *ctx, uv_stream_t *stream, bool client)
{
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        t->ssl = NULL;
        return false;
    }
    /* An empty read BIO means "no data yet", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (client)
        SSL_set_connect_state(t->ssl);
    else
        SSL_set_accept_state(t->ssl);
    t->stream = stream;
    t->handshake_done = false;
    t->sessions = NULL;
    SSL_set_app_data(t->ssl, t);
    return true;
}

void sy_tls_free(sy_tls_t *t)
{
    /* OpenSSL invalidates the session of a connection freed without a
     * shutdown. Ours end by idle timeout or the peer closing, which is
     * normal for keep-alive: keep the session resumable. A connection that
     * never finished its handshake keeps the default. */
    if (t->ssl && t->handshake_done)
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    if (t->ssl)
        SSL_free(t->ssl); /* frees both BIOs */
    t->ssl = NULL;
}

void sy_tls_verify_host(char *out, size_t cap, const char *name)
{
    if (strncmp(name, "*.", 2) == 0)
        snprintf(out, cap, "sy--wildcard-probe%s", name + 1);
    else
        snprintf(out, cap, "%s", name);
}

void sy_tls_feed(sy_tls_t *t, const char *in, size_t len)
{
    if (len)
        BIO_write(t->rbio, in, (int)len);
}

int sy_tls_handshake(sy_tls_t *t)
{
    if (t->handshake_done)
        return 1;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshake_done = true;
        return 1;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return -1;
}

ssize_t sy_tls_read(sy_tls_t *t, char *out, size_t cap, bool *eof)
{
    size_t total = 0;
    while (total < cap) {
        ERR_clear_error();
        int rc = SSL_read(t->ssl, out + total, (int)(cap - total));
        if (rc > 0) {
            total += (size_t)rc;
            continue;
        }
        int e = SSL_get_error(t->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            *eof = true;
            break;
        }
        return total > 0 ? (ssize_t)total : -1;
    }
    return (ssize_t)total;
}

bool sy_tls_peer_closed(const sy_tls_t *t)
{
    return (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}

bool sy_tls_write(sy_tls_t *t, const uv_buf_t *bufs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (bufs[i].len == 0)
            continue;
        ERR_clear_error();
        if (SSL_write(t->ssl, bufs[i].base, (int)bufs[i].len) != (int)bufs[i].len)
            return false;
    }
    return true;
}

typedef struct {
    uv_write_t req;
    void (*cb)(void *arg, int status);
    void *arg;
    char data[];
} flush_t;

static void on_flushed(uv_write_t *req, int status)
{
    flush_t *f = (flush_t *)req;
    if (f->cb)
        f->cb(f->arg, status);
    free(f);
}

int sy_tls_flush(sy_tls_t *t, void (*cb)(void *arg, int status), void *arg)
{
    size_t pending = BIO_ctrl_pending(t->wbio);
    if (pending == 0)
        return 0;
    flush_t *f = malloc(sizeof *f + pending);
    if (!f)
        return UV_ENOMEM;
    int got = BIO_read(t->wbio, f->data, (int)pending);
    if (got <= 0) {
        free(f);
        return 0;
    }
    f->cb = cb;
    f->arg = arg;
    uv_buf_t b = uv_buf_init(f->data, (unsigned)got);
    int rc = uv_write(&f->req, t->stream, &b, 1, on_flushed);
    if (rc != 0)
        free(f);
    return rc;
}

const char *sy_tls_failure(sy_tls_t *t, char *detail, size_t cap)
{
    long v = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_error();
    if (v != X509_V_OK) {
        snprintf(detail, cap, "%s", X509_verify_cert_error_string(v));
        ERR_clear_error();
        switch (v) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
            return "name mismatch";
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return "expired";
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return "not yet valid";
        default:
            return "untrusted chain";
        }
    }
    if (e)
        ERR_error_string_n(e, detail, cap);
    else
        snprintf(detail, cap, "the peer did not complete a TLS handshake");
    ERR_clear_error();
    return "handshake failure";
}
