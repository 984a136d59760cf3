/*
 * jwks.c: JWKs to OpenSSL keys, immutable key sets, and the jwks_uri cache.
 *
 * Keys are built with EVP_PKEY_fromdata from the JWK's public members only;
 * an EC point is checked to lie on its curve, an RSA modulus must have at
 * least 2048 bits. A key set never changes once built: a rotation makes a
 * new set, published by swapping one pointer, so a worker verifying with
 * the old set finishes with it undisturbed.
 *
 * Fetching is the control plane's job. One thread owns every jwks_uri
 * source: it fetches each on first use, refreshes it every
 * SY_JWKS_REFRESH_MS, and refetches early when a worker saw an unknown kid
 * (rotation) -- but never twice within SY_JWKS_REFETCH_MIN_MS, so tokens
 * with made-up kids can't turn switchyard into a flood against the issuer.
 * Workers never wait for it: they ask through an atomic flag and one
 * non-blocking byte on a pipe, and refuse the token at hand; the fetcher
 * wakes, fetches, publishes, and the next request finds the key. A failed
 * fetch keeps the previous keys (an issuer outage must not lock everyone
 * out) and is retried on the same 30 s rhythm.
 *
 * Sources are shared by (uri, ca_file) and refcounted by the policies that
 * use them: a reload builds the new policy (one more reference) before
 * freeing the old, so keys survive reloads without a refetch.
 */
#include "auth/jwks.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "core/log.h"
#include "core/redact.h"

static _Atomic uint64_t next_generation = 1;

/* ---- one JWK ---- */

/* Decodes a base64url member into a malloc'd buffer. */
static unsigned char *member_bytes(const json_t *jwk, const char *name, size_t max, size_t *len)
{
    const json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v))
        return NULL;
    size_t n = json_string_length(v);
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return NULL;
    if (!sy_base64url_decode(sy_slice(json_string_value(v), n), buf, n / 4 * 3 + 3, len) ||
        *len == 0 || *len > max) {
        free(buf);
        return NULL;
    }
    return buf;
}

static bool copy_string_member(const json_t *jwk, const char *name, char *out, size_t cap,
                               bool *present, sy_error_t *err)
{
    const json_t *v = json_object_get(jwk, name);
    if (present)
        *present = v != NULL;
    out[0] = '\0';
    if (!v)
        return true;
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        json_string_length(v) != strlen(json_string_value(v))) {
        sy_error_set(err, "\"%s\": expected a string of at most %zu characters", name, cap - 1);
        return false;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static bool parse_rsa(const json_t *jwk, sy_jwk_t *out, sy_error_t *err)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n = member_bytes(jwk, "n", 2048, &n_len);
    unsigned char *e = member_bytes(jwk, "e", 16, &e_len);
    BIGNUM *bn_n = n ? BN_bin2bn(n, (int)n_len, NULL) : NULL;
    BIGNUM *bn_e = e ? BN_bin2bn(e, (int)e_len, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    bool ok = false;
    if (!bn_n || !bn_e) {
        sy_error_set(err, "RSA key: \"n\" and \"e\" must be base64url big-endian integers");
    } else if (BN_num_bits(bn_n) < 2048) {
        sy_error_set(err, "RSA key: %d-bit modulus; at least 2048 bits are required",
                     BN_num_bits(bn_n));
    } else if (!BN_is_odd(bn_e) || BN_is_one(bn_e)) {
        sy_error_set(err, "RSA key: invalid public exponent");
    } else if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
               OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
               (out->pkey = pkey_fromdata("RSA", bld))) {
        out->bits = BN_num_bits(bn_n);
        ok = true;
    } else {
        sy_error_set(err, "RSA key: OpenSSL refused it");
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return ok;
}

static bool parse_ec(const json_t *jwk, sy_jwk_t *out, sy_error_t *err)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const char *group;
    size_t width;
    if (crv && strcmp(crv, "P-256") == 0) {
        group = SN_X9_62_prime256v1, width = 32, out->curve_nid = NID_X9_62_prime256v1;
        out->bits = 256;
    } else if (crv && strcmp(crv, "P-384") == 0) {
        group = SN_secp384r1, width = 48, out->curve_nid = NID_secp384r1, out->bits = 384;
    } else if (crv && strcmp(crv, "P-521") == 0) {
        group = SN_secp521r1, width = 66, out->curve_nid = NID_secp521r1, out->bits = 521;
    } else {
        sy_error_set(err, "EC key: \"crv\" must be P-256, P-384 or P-521");
        return false;
    }
    size_t x_len = 0, y_len = 0;
    unsigned char *x = member_bytes(jwk, "x", width, &x_len);
    unsigned char *y = member_bytes(jwk, "y", width, &y_len);
    bool ok = false;
    /* RFC 7518 §6.2.1.2: coordinates are exactly the field width. */
    if (!x || !y || x_len != width || y_len != width) {
        sy_error_set(err, "EC key: \"x\" and \"y\" must be %zu-byte base64url values", width);
    } else {
        unsigned char point[1 + 2 * 66];
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, x, width);
        memcpy(point + 1 + width, y, width);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * width))
            out->pkey = pkey_fromdata("EC", bld);
        OSSL_PARAM_BLD_free(bld);
        /* fromdata already refuses most bad points; public_check makes
         * "on the curve, not infinity" explicit (invalid-curve attacks). */
        EVP_PKEY_CTX *ctx = out->pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, out->pkey, NULL) : NULL;
        ok = ctx && EVP_PKEY_public_check(ctx) == 1;
        EVP_PKEY_CTX_free(ctx);
        if (!ok)
            sy_error_set(err, "EC key: the point is not on curve %s", crv);
    }
    free(x);
    free(y);
    return ok;
}

static bool parse_okp(const json_t *jwk, sy_jwk_t *out, sy_error_t *err)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    if (!crv || strcmp(crv, "Ed25519") != 0) {
        sy_error_set(err, "OKP key: only \"crv\": \"Ed25519\" is supported");
        return false;
    }
    size_t x_len = 0;
    unsigned char *x = member_bytes(jwk, "x", 32, &x_len);
    if (x && x_len == 32)
        out->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
    free(x);
    if (!out->pkey) {
        sy_error_set(err, "OKP key: \"x\" must be a 32-byte base64url value");
        return false;
    }
    out->curve_nid = NID_ED25519;
    out->bits = 256;
    return true;
}

static bool parse_oct(const json_t *jwk, sy_jwk_t *out, sy_error_t *err)
{
    out->secret = member_bytes(jwk, "k", 1024, &out->secret_len);
    if (!out->secret) {
        sy_error_set(err, "oct key: \"k\" must be a base64url secret of 1-1024 bytes");
        return false;
    }
    out->bits = (int)(out->secret_len * 8);
    return true;
}

bool sy_jwk_parse(const json_t *jwk, sy_jwk_t *out, sy_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(jwk)) {
        sy_error_set(err, "expected a JWK object");
        return false;
    }
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    char use[16];
    bool has_use;
    if (!copy_string_member(jwk, "kid", out->kid, sizeof out->kid, &out->has_kid, err) ||
        !copy_string_member(jwk, "alg", out->alg, sizeof out->alg, NULL, err) ||
        !copy_string_member(jwk, "use", use, sizeof use, &has_use, err))
        return false;
    /* RFC 7517 §4.2/4.3: a key meant for encryption never verifies. */
    out->verify_allowed = !has_use || strcmp(use, "sig") == 0;
    const json_t *ops = json_object_get(jwk, "key_ops");
    if (ops) {
        bool verify = false;
        size_t i;
        json_t *op;
        if (!json_is_array(ops)) {
            sy_error_set(err, "\"key_ops\": expected an array of strings");
            return false;
        }
        json_array_foreach(ops, i, op)
        {
            if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
                verify = true;
        }
        out->verify_allowed = out->verify_allowed && verify;
    }
    bool ok;
    if (kty && strcmp(kty, "RSA") == 0) {
        out->kty = SY_JWK_RSA;
        ok = parse_rsa(jwk, out, err);
    } else if (kty && strcmp(kty, "EC") == 0) {
        out->kty = SY_JWK_EC;
        ok = parse_ec(jwk, out, err);
    } else if (kty && strcmp(kty, "OKP") == 0) {
        out->kty = SY_JWK_OKP;
        ok = parse_okp(jwk, out, err);
    } else if (kty && strcmp(kty, "oct") == 0) {
        out->kty = SY_JWK_OCT;
        ok = parse_oct(jwk, out, err);
    } else {
        sy_error_set(err, "\"kty\" must be RSA, EC, OKP or oct");
        ok = false;
    }
    if (!ok)
        sy_jwk_clear(out);
    return ok;
}

void sy_jwk_clear(sy_jwk_t *key)
{
    EVP_PKEY_free(key->pkey);
    if (key->secret)
        OPENSSL_clear_free(key->secret, key->secret_len);
    memset(key, 0, sizeof *key);
}

/* ---- key sets ---- */

static sy_jwk_set_t *set_new(size_t cap)
{
    sy_jwk_set_t *set = calloc(1, sizeof *set + cap * sizeof set->keys[0]);
    if (!set)
        return NULL;
    atomic_init(&set->refs, 1);
    set->generation = atomic_fetch_add(&next_generation, 1);
    return set;
}

sy_jwk_set_t *sy_jwk_set_parse(const json_t *jwks, bool strict, sy_error_t *err)
{
    const json_t *keys = json_object_get(jwks, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        sy_error_set(err, "keys: expected a non-empty array of JWKs");
        return NULL;
    }
    size_t n = json_array_size(keys);
    if (n > SY_JWKS_MAX_KEYS) {
        if (strict) {
            sy_error_set(err, "keys: at most %d keys are accepted", SY_JWKS_MAX_KEYS);
            return NULL;
        }
        n = SY_JWKS_MAX_KEYS;
    }
    sy_jwk_set_t *set = set_new(n);
    if (!set) {
        sy_error_set(err, "out of memory");
        return NULL;
    }
    sy_error_t key_err;
    size_t symmetric = 0;
    for (size_t i = 0; i < n; i++) {
        sy_jwk_t *k = &set->keys[set->count];
        if (!sy_jwk_parse(json_array_get(keys, i), k, &key_err)) {
            if (strict) {
                sy_error_set(err, "keys[%zu]: %s", i, key_err.message);
                sy_jwk_set_release(set);
                return NULL;
            }
            continue;
        }
        /* Two keys under one kid make "which key?" ambiguous; a fetched set
         * keeps the first, an inline one is an error. */
        bool duplicate = false;
        for (size_t j = 0; j < set->count && !duplicate; j++)
            duplicate = k->has_kid && set->keys[j].has_kid && strcmp(k->kid, set->keys[j].kid) == 0;
        /* A secret published at a URL is no secret: fetched sets never
         * contribute HMAC keys. */
        bool secret_on_wire = !strict && k->kty == SY_JWK_OCT;
        if (duplicate && strict) {
            sy_error_set(err, "keys[%zu]: kid \"%s\" appears twice", i, k->kid);
            sy_jwk_clear(k);
            sy_jwk_set_release(set);
            return NULL;
        }
        if (duplicate || secret_on_wire) {
            snprintf(key_err.message, sizeof key_err.message, "keys[%zu]: %s", i,
                     duplicate ? "duplicate kid" : "symmetric key in a published set");
            sy_jwk_clear(k);
            continue;
        }
        symmetric += k->kty == SY_JWK_OCT;
        set->count++;
    }
    /* Mixing HMAC secrets with public keys in one set invites the confusion
     * where a public key is tried as a secret: refuse the whole set. */
    if (symmetric && symmetric != set->count) {
        sy_error_set(err, "keys: symmetric (oct) and public keys can't share a set");
        sy_jwk_set_release(set);
        return NULL;
    }
    if (set->count == 0) {
        sy_error_set(err, "no usable key in the set (first problem: %s)", key_err.message);
        sy_jwk_set_release(set);
        return NULL;
    }
    return set;
}

sy_jwk_set_t *sy_jwk_set_from_secret(const unsigned char *secret, size_t len, sy_error_t *err)
{
    sy_jwk_set_t *set = set_new(1);
    if (!set || !(set->keys[0].secret = malloc(len ? len : 1))) {
        free(set);
        sy_error_set(err, "out of memory");
        return NULL;
    }
    memcpy(set->keys[0].secret, secret, len);
    set->keys[0].secret_len = len;
    set->keys[0].kty = SY_JWK_OCT;
    set->keys[0].bits = (int)(len * 8);
    set->keys[0].verify_allowed = true;
    set->count = 1;
    return set;
}

void sy_jwk_set_ref(sy_jwk_set_t *set)
{
    atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
}

void sy_jwk_set_release(sy_jwk_set_t *set)
{
    if (!set || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < set->count; i++)
        sy_jwk_clear(&set->keys[i]);
    free(set);
}

/* ---- jwks_uri sources and the fetcher ---- */

struct sy_jwks_source {
    struct sy_jwks_source *next; /* in `sources`, under sources_lock */
    unsigned users;              /* policies holding it, under sources_lock */
    char *uri, *ca_file;
    pthread_mutex_t keys_lock; /* held for a pointer copy + increment only */
    sy_jwk_set_t *keys;
    /* keys->generation (0 without keys), stored after keys under the lock:
     * a worker whose cached reference has this generation needs no lock. */
    _Atomic uint64_t generation;
    atomic_bool refetch_wanted;
    _Atomic uint64_t fetches;
    /* Fetcher-thread only: */
    uint64_t last_attempt_ms, last_success_ms;
    bool attempted;
};

static pthread_mutex_t sources_lock = PTHREAD_MUTEX_INITIALIZER;
static sy_jwks_source_t *sources;
static pthread_t fetcher;
static bool fetcher_running;
static int wake_pipe[2] = {-1, -1};
static atomic_bool stopping;

static void wake_fetcher(void)
{
    /* A full pipe already holds a wake-up: EAGAIN is fine. */
    if (wake_pipe[1] >= 0) {
        ssize_t r = write(wake_pipe[1], "x", 1);
        (void)r;
    }
}

typedef struct {
    char *data;
    size_t len;
    bool too_big;
} body_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_t *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > SY_JWKS_MAX_BYTES) {
        b->too_big = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* One GET of the source's URI; the new key set or NULL with err. */
static sy_jwk_set_t *fetch_keys(const sy_jwks_source_t *s, sy_error_t *err)
{
    body_t body = {0};
    CURL *curl = curl_easy_init();
    if (!curl) {
        sy_error_set(err, "curl_easy_init failed");
        return NULL;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, s->uri);
    /* https only, no redirects: the policy names the exact endpoint. */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "switchyard-jwks");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);

    sy_jwk_set_t *set = NULL;
    if (body.too_big) {
        sy_error_set(err, "response larger than %d bytes", SY_JWKS_MAX_BYTES);
    } else if (rc != CURLE_OK) {
        sy_error_set(err, "%s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
    } else if (status != 200) {
        sy_error_set(err, "HTTP status %ld", status);
    } else {
        json_error_t jerr;
        json_t *doc =
            json_loadb(body.data ? body.data : "", body.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
            sy_error_set(err, "invalid JSON at %d:%d: %s", jerr.line, jerr.column, jerr.text);
        else
            set = sy_jwk_set_parse(doc, false, err);
        json_decref(doc);
    }
    free(body.data);
    return set;
}

static void publish(sy_jwks_source_t *s, sy_jwk_set_t *set)
{
    pthread_mutex_lock(&s->keys_lock);
    sy_jwk_set_t *old = s->keys;
    s->keys = set;
    atomic_store_explicit(&s->generation, set ? set->generation : 0, memory_order_release);
    pthread_mutex_unlock(&s->keys_lock);
    sy_jwk_set_release(old); /* outside the lock: freeing is never under it */
}

/* When s is next due, in monotonic ms. */
static uint64_t due_at(const sy_jwks_source_t *s)
{
    if (!s->attempted)
        return 0;
    uint64_t retry = s->last_attempt_ms + SY_JWKS_REFETCH_MIN_MS;
    if (atomic_load(&s->refetch_wanted) || s->last_success_ms < s->last_attempt_ms)
        return retry;
    return s->last_success_ms + SY_JWKS_REFRESH_MS;
}

static void *fetcher_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        uint64_t now = sy_now_ms(), next = now + SY_JWKS_REFRESH_MS;
        sy_jwks_source_t *todo = NULL;
        pthread_mutex_lock(&sources_lock);
        for (sy_jwks_source_t *s = sources; s; s = s->next) {
            uint64_t due = due_at(s);
            if (due <= now && !todo) {
                todo = s;
                s->users++; /* keep it alive while fetching without the lock */
            } else if (due < next) {
                next = due;
            }
        }
        pthread_mutex_unlock(&sources_lock);

        if (todo) {
            sy_error_t err;
            atomic_store(&todo->refetch_wanted, false);
            todo->attempted = true;
            todo->last_attempt_ms = sy_now_ms();
            sy_jwk_set_t *set = fetch_keys(todo, &err);
            /* A jwks_uri may carry a query with a key in it: logged redacted. */
            char shown_uri[512];
            sy_redact_url(shown_uri, sizeof shown_uri, sy_slice_cstr(todo->uri));
            if (set) {
                todo->last_success_ms = sy_now_ms();
                atomic_fetch_add(&todo->fetches, 1);
                publish(todo, set);
                char count[24];
                snprintf(count, sizeof count, "%zu", set->count);
                sy_log(SY_LOG_INFO, "jwks fetched", "uri", shown_uri, SY_LOG_NUM("keys"), count,
                       NULL);
            } else {
                sy_log(SY_LOG_WARN, "jwks fetch failed; keeping the previous keys", "uri",
                       shown_uri, "error", err.message, NULL);
            }
            sy_jwks_source_put(todo);
            continue; /* look again: others may be due */
        }

        now = sy_now_ms();
        int timeout = next > now ? (int)(next - now < 60000 ? next - now : 60000) : 0;
        struct pollfd pfd = {.fd = wake_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, timeout) > 0) {
            char drain[64];
            while (read(wake_pipe[0], drain, sizeof drain) > 0)
                ;
        }
    }
    return NULL;
}

/* Called with sources_lock held. */
static bool start_fetcher(sy_error_t *err)
{
    if (fetcher_running)
        return true;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (wake_pipe[0] < 0 && pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        sy_error_set(err, "jwks fetcher: pipe: %s", strerror(errno));
        return false;
    }
    atomic_store(&stopping, false);
    if (pthread_create(&fetcher, NULL, fetcher_main, NULL) != 0) {
        sy_error_set(err, "jwks fetcher: cannot start its thread");
        return false;
    }
    fetcher_running = true;
    return true;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

sy_jwks_source_t *sy_jwks_source_get(const char *uri, const char *ca_file, sy_error_t *err)
{
    pthread_mutex_lock(&sources_lock);
    sy_jwks_source_t *s;
    for (s = sources; s; s = s->next)
        if (strcmp(s->uri, uri) == 0 && same(s->ca_file, ca_file))
            break;
    if (s) {
        s->users++;
        pthread_mutex_unlock(&sources_lock);
        return s;
    }
    if (!start_fetcher(err)) {
        pthread_mutex_unlock(&sources_lock);
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->uri = strdup(uri)) || (ca_file && !(s->ca_file = strdup(ca_file)))) {
        if (s)
            free(s->uri);
        free(s);
        pthread_mutex_unlock(&sources_lock);
        sy_error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->keys_lock, NULL);
    s->users = 1;
    s->next = sources;
    sources = s;
    pthread_mutex_unlock(&sources_lock);
    wake_fetcher();
    return s;
}

void sy_jwks_source_put(sy_jwks_source_t *source)
{
    if (!source)
        return;
    pthread_mutex_lock(&sources_lock);
    if (--source->users > 0) {
        pthread_mutex_unlock(&sources_lock);
        return;
    }
    for (sy_jwks_source_t **p = &sources; *p; p = &(*p)->next) {
        if (*p == source) {
            *p = source->next;
            break;
        }
    }
    pthread_mutex_unlock(&sources_lock);
    sy_jwk_set_release(source->keys);
    pthread_mutex_destroy(&source->keys_lock);
    free(source->uri);
    free(source->ca_file);
    free(source);
}

sy_jwk_set_t *sy_jwks_source_acquire(sy_jwks_source_t *source)
{
    pthread_mutex_lock(&source->keys_lock);
    sy_jwk_set_t *set = source->keys;
    if (set)
        sy_jwk_set_ref(set);
    pthread_mutex_unlock(&source->keys_lock);
    return set;
}

/* Per worker: the key set each recently used source had when last looked
 * at, with a reference. Direct-mapped; a collision only costs a lock. A
 * freed source's address may be reused by a new one, which is harmless:
 * generations are unique per set, so a stale entry can only match a new
 * source while both have no keys (generation 0, set NULL). */
#define HELD_ENTRIES 16
static _Thread_local struct {
    const sy_jwks_source_t *source;
    uint64_t generation;
    sy_jwk_set_t *set;
} held[HELD_ENTRIES];

sy_jwk_set_t *sy_jwks_source_keys(sy_jwks_source_t *source)
{
    uint64_t generation = atomic_load_explicit(&source->generation, memory_order_acquire);
    size_t i = ((uintptr_t)source >> 4) % HELD_ENTRIES;
    if (held[i].source == source && held[i].generation == generation)
        return held[i].set;
    sy_jwk_set_t *set = sy_jwks_source_acquire(source);
    sy_jwk_set_release(held[i].set);
    held[i].source = source;
    held[i].generation = set ? set->generation : 0;
    held[i].set = set;
    return set;
}

void sy_jwks_thread_cleanup(void)
{
    for (size_t i = 0; i < HELD_ENTRIES; i++) {
        sy_jwk_set_release(held[i].set);
        held[i].source = NULL;
        held[i].generation = 0;
        held[i].set = NULL;
    }
}

void sy_jwks_source_request_refetch(sy_jwks_source_t *source)
{
    /* Only the first asker since the last fetch writes to the pipe; the
     * fetcher applies the 30 s floor. */
    if (!atomic_exchange(&source->refetch_wanted, true))
        wake_fetcher();
}

uint64_t sy_jwks_source_fetch_count(const sy_jwks_source_t *source)
{
    return atomic_load(&((sy_jwks_source_t *)source)->fetches);
}

void sy_jwks_shutdown(void)
{
    pthread_mutex_lock(&sources_lock);
    bool running = fetcher_running;
    fetcher_running = false;
    pthread_mutex_unlock(&sources_lock);
    if (!running)
        return;
    atomic_store(&stopping, true);
    wake_fetcher();
    pthread_join(fetcher, NULL);
}
