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

#include <openssl/buffer.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- contexts ------------------------------------------------------------ */

/* The listener's context, swapped by main on SIGHUP and taken by workers
 * for every TLS connection they accept, without a lock: a worker counts
 * itself in `server_readers` around loading the pointer and taking its
 * reference, and main, after swapping the pointer, frees the old context
 * only once no worker is in that window (sequentially consistent order:
 * a worker that loaded the old pointer was counted before the swap).
 * Client contexts are not global: each trust store belongs to the
 * snapshot that built it. */
static _Atomic(SSL_CTX *) server_ctx;
static atomic_uint server_readers;

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

/* A new client context: TLS 1.2+, the peer always verified. */
static SSL_CTX *client_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Sessions are kept by the caller per destination (new-session
     * callback), not in OpenSSL's internal cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return ctx;
}

/* The whole file, malloc'd; NULL with err set. A trust store is small: a
 * file over 16 MiB is a mistake, not a bundle. */
static char *read_small_file(const char *path, size_t *len, sy_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sy_error_set(err, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= (16u << 20)) {
            free(buf);
            fclose(f);
            sy_error_set(err, "larger than 16 MiB");
            return NULL;
        }
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    bool bad = buf && ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        sy_error_set(err, buf ? "read error" : "out of memory");
        return NULL;
    }
    *len = n;
    return buf;
}

/* Loads the PEM certificates and CRLs of bytes into ctx's store, as
 * SSL_CTX_load_verify_locations would from the file: from the bytes
 * digested, so the id names exactly what is trusted. */
static bool load_pem_store(SSL_CTX *ctx, const char *bytes, size_t len, sy_error_t *err)
{
    BIO *bio = BIO_new_mem_buf(bytes, (int)len);
    STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!infos) {
        sy_error_set(err, "%s", openssl_error());
        return false;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1)
            added++;
        if (info->crl && X509_STORE_add_crl(store, info->crl) == 1)
            added++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    if (added == 0) {
        sy_error_set(err, "no certificate or CRL found");
        return false;
    }
    return true;
}

bool sy_tls_trust_build(sy_tls_trust_t *t, const char *ca_file, const sy_tls_trust_t *reuse,
                        size_t reuse_count)
{
    memset(t, 0, sizeof *t);
    sy_error_t err = {{0}};
    char *bytes = NULL;
    size_t len = 0;
    char id[600];
    if (ca_file) {
        if (!(t->ca_file = strdup(ca_file)))
            return false;
        bytes = read_small_file(ca_file, &len, &err);
        if (bytes) {
            unsigned char md[32];
            unsigned int md_len = 0;
            EVP_Digest(bytes, len, md, &md_len, EVP_sha256(), NULL);
            char hex[17];
            for (int i = 0; i < 8; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            snprintf(id, sizeof id, "%s#%s", ca_file, hex);
        } else {
            snprintf(id, sizeof id, "%s#unreadable", ca_file);
        }
    } else {
        snprintf(id, sizeof id, "system");
    }
    if (!(t->id = strdup(id))) {
        free(bytes);
        sy_tls_trust_free(t);
        return false;
    }
    for (size_t i = 0; bytes && i < reuse_count; i++) {
        if (reuse[i].ctx && reuse[i].id && strcmp(reuse[i].id, id) == 0) {
            SSL_CTX_up_ref(reuse[i].ctx);
            t->ctx = reuse[i].ctx;
            free(bytes);
            return true;
        }
    }
    if (!ca_file) {
        for (size_t i = 0; i < reuse_count; i++) {
            if (reuse[i].ctx && !reuse[i].ca_file) {
                SSL_CTX_up_ref(reuse[i].ctx);
                t->ctx = reuse[i].ctx;
                return true;
            }
        }
    }
    if (ca_file && !bytes)
        goto failed;
    SSL_CTX *ctx = client_ctx_new();
    if (!ctx) {
        sy_error_set(&err, "%s", openssl_error());
        goto failed;
    }
    bool ok = ca_file ? load_pem_store(ctx, bytes, len, &err)
                      : SSL_CTX_set_default_verify_paths(ctx) == 1;
    if (!ok) {
        if (!ca_file)
            sy_error_set(&err, "%s", openssl_error());
        SSL_CTX_free(ctx);
        goto failed;
    }
    free(bytes);
    t->ctx = ctx;
    return true;
failed:
    free(bytes);
    {
        char message[1200];
        snprintf(message, sizeof message, "TLS client context (ca_file %s): %s",
                 ca_file ? ca_file : "system store", err.message);
        t->error = strdup(message);
    }
    if (!t->error) {
        sy_tls_trust_free(t);
        return false;
    }
    return true;
}

void sy_tls_trust_free(sy_tls_trust_t *t)
{
    if (t->ctx)
        SSL_CTX_free(t->ctx); /* connections still open hold their own references */
    free(t->ca_file);
    free(t->error);
    free(t->id);
    memset(t, 0, sizeof *t);
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
    SSL_CTX *old = atomic_exchange(&server_ctx, ctx);
    while (atomic_load(&server_readers) != 0)
        sched_yield(); /* a worker is between loading and referencing it */
    if (old)
        SSL_CTX_free(old); /* live connections hold their own references */
    return true;
}

SSL_CTX *sy_tls_server_ctx_acquire(void)
{
    atomic_fetch_add(&server_readers, 1);
    SSL_CTX *ctx = atomic_load(&server_ctx);
    if (ctx)
        SSL_CTX_up_ref(ctx);
    atomic_fetch_sub_explicit(&server_readers, 1, memory_order_release);
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
    /* Record buffers (~34 KiB) are freed whenever they are empty instead
     * of living as long as the connection: most connections are idle. */
    SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
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

bool sy_tls_server_init(sy_tls_t *t, uv_stream_t *stream)
{
    SSL_CTX *ctx = sy_tls_server_ctx_acquire();
    if (!ctx)
        return false;
    bool ok = sy_tls_init(t, ctx, stream, false);
    SSL_CTX_free(ctx); /* the connection holds its own reference */
    return ok;
}

bool sy_tls_client_setup(sy_tls_t *t, const char *sni, const char *verify_check,
                         sy_tls_session_cache_t *sessions)
{
    if (sni)
        SSL_set_tlsext_host_name(t->ssl, sni);
    /* The subject CN is never read as a name (RFC 9525 §6.3): a private CA
     * that also signs client or other non-server certificates with a
     * service's name as CN must not make them valid for that service. */
    SSL_set_hostflags(t->ssl,
                      X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (SSL_set1_host(t->ssl, verify_check) != 1)
        return false;
    if (sessions) {
        sy_tls_session_take(sessions, t->ssl);
        t->sessions = sessions;
    }
    return true;
}

bool sy_tls_resumed(const sy_tls_t *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

void sy_tls_close_notify(sy_tls_t *t)
{
    SSL_shutdown(t->ssl);
}

/* A memory BIO keeps its buffer at the largest size it ever held (a whole
 * response's ciphertext, for the write side). Above this, an empty one is
 * replaced by a fresh one when the connection goes idle. */
#define SY_TLS_BIO_KEEP 1024

static size_t bio_capacity(BIO *b)
{
    BUF_MEM *m = NULL;
    BIO_get_mem_ptr(b, &m);
    return m ? m->max : 0;
}

void sy_tls_shed(sy_tls_t *t)
{
    if (!t->ssl)
        return;
    if (BIO_ctrl_pending(t->rbio) == 0 && bio_capacity(t->rbio) > SY_TLS_BIO_KEEP) {
        BIO *fresh = BIO_new(BIO_s_mem());
        if (fresh) {
            BIO_set_mem_eof_return(fresh, -1);
            SSL_set0_rbio(t->ssl, fresh); /* frees the old one */
            t->rbio = fresh;
        }
    }
    if (BIO_ctrl_pending(t->wbio) == 0 && bio_capacity(t->wbio) > SY_TLS_BIO_KEEP) {
        BIO *fresh = BIO_new(BIO_s_mem());
        if (fresh) {
            SSL_set0_wbio(t->ssl, fresh);
            t->wbio = fresh;
        }
    }
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

typedef struct flush {
    uv_write_t req;
    void (*cb)(void *arg, int status);
    void *arg;
    bool spare_size;          /* a SY_TLS_FLUSH_BLOCK block: may be kept */
    struct flush *next_spare; /* in flush_spares */
    char data[];
} flush_t;

/* Ciphertext on its way out is copied from the write BIO into a flush
 * block. Blocks of SY_TLS_FLUSH_BLOCK bytes (every small answer's) are kept
 * per thread for reuse, so a request costs no malloc here; bigger flushes
 * are rare (a large body chunk) and allocated. Only event-loop threads
 * flush, each with its own spares (sy_tls_thread_cleanup frees them). */
#define SY_TLS_FLUSH_BLOCK 32768
#define SY_TLS_FLUSH_SPARES 16
static _Thread_local flush_t *flush_spares;
static _Thread_local int flush_spare_count;

static flush_t *flush_get(size_t pending)
{
    flush_t *f;
    if (sizeof(flush_t) + pending > SY_TLS_FLUSH_BLOCK) {
        f = malloc(sizeof(flush_t) + pending);
        if (f)
            f->spare_size = false;
        return f;
    }
    f = flush_spares;
    if (f) {
        flush_spares = f->next_spare;
        flush_spare_count--;
        return f;
    }
    f = malloc(SY_TLS_FLUSH_BLOCK);
    if (f)
        f->spare_size = true;
    return f;
}

static void flush_put(flush_t *f)
{
    if (!f->spare_size || flush_spare_count >= SY_TLS_FLUSH_SPARES) {
        free(f);
        return;
    }
    f->next_spare = flush_spares;
    flush_spares = f;
    flush_spare_count++;
}

void sy_tls_thread_cleanup(void)
{
    while (flush_spares) {
        flush_t *next = flush_spares->next_spare;
        free(flush_spares);
        flush_spares = next;
    }
    flush_spare_count = 0;
}

static void on_flushed(uv_write_t *req, int status)
{
    flush_t *f = (flush_t *)req;
    if (f->cb)
        f->cb(f->arg, status);
    flush_put(f);
}

int sy_tls_flush(sy_tls_t *t, void (*cb)(void *arg, int status), void *arg)
{
    size_t pending = BIO_ctrl_pending(t->wbio);
    if (pending == 0)
        return 1;
    flush_t *f = flush_get(pending);
    if (!f)
        return UV_ENOMEM;
    int got = BIO_read(t->wbio, f->data, (int)pending);
    if (got <= 0) {
        flush_put(f);
        return 1;
    }
    /* What the socket takes now needs no write request and no epoll
     * change (libuv re-arms epoll for every write it completes). */
    uv_buf_t b = uv_buf_init(f->data, (unsigned)got);
    int sent = uv_try_write(t->stream, &b, 1);
    if (sent == got) {
        flush_put(f);
        return 1;
    }
    if (sent > 0) {
        b.base += sent;
        b.len -= (size_t)sent;
    }
    f->cb = cb;
    f->arg = arg;
    int rc = uv_write(&f->req, t->stream, &b, 1, on_flushed);
    if (rc != 0)
        flush_put(f);
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
