/*
 * sigv4.c: AWS Signature Version 4. Builds the canonical request exactly as
 * the AWS test suite spells it (paths, query, headers), hashes it into the
 * string to sign and signs that with a key derived from the secret, the
 * date, the region and the service.
 *
 * The derived key only changes once a day per (credentials, region,
 * service), and deriving it costs four HMACs, so it is cached in a tiny
 * table under a mutex. The cache is keyed by the access key id and a hash of
 * the secret, so rotated credentials never reuse a stale key, and the secret
 * itself is not copied.
 *
 * Path rules differ by service and are the usual source of signature
 * mismatches: S3 signs the object key encoded once and never normalises it
 * ("a//b" is a different key from "a/b"); every other service normalises
 * the path and encodes the already-encoded wire form a second time.
 */
#include "aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable string ---- */

typedef struct {
    char *ptr;
    size_t len, cap;
    bool failed;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->ptr, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->ptr = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->ptr + b->len, s, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_char(buf_t *b, char c)
{
    buf_add(b, &c, 1);
}

/* The finished string (never NULL unless out of memory); the buffer is
 * emptied. */
static char *buf_take(buf_t *b)
{
    if (b->failed) {
        free(b->ptr);
        *b = (buf_t){0};
        return NULL;
    }
    if (!b->ptr)
        buf_add(b, "", 0);
    char *p = b->ptr;
    *b = (buf_t){0};
    return p;
}

/* ---- encoding ---- */

static const char hex_upper[] = "0123456789ABCDEF";

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void encode_into(buf_t *b, const char *s, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            buf_char(b, (char)c);
        } else {
            char e[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
            buf_add(b, e, 3);
        }
    }
}

char *sy_sigv4_uri_encode(sy_slice_t s, bool keep_slash)
{
    buf_t b = {0};
    encode_into(&b, s.ptr, s.len, keep_slash);
    return buf_take(&b);
}

/* Percent-decodes; a '%' not followed by two hex digits stays literal (it is
 * then encoded as %25, which is what the SDKs sign for such input). */
static char *percent_decode(const char *s, size_t n, size_t *out_len)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = sy_hex_value(s[i + 1])) >= 0 &&
            (lo = sy_hex_value(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* ---- canonical pieces ---- */

/* Non-S3 path normalisation: remove empty and "." segments, resolve "..";
 * keep a trailing slash when the path ends in a directory. */
static void canonical_path_normalised(buf_t *b, const char *path)
{
    size_t n = strlen(path);
    /* Segment boundaries of the kept segments, as offsets into path. */
    size_t *starts = malloc((n + 1) * sizeof *starts);
    size_t *lens = malloc((n + 1) * sizeof *lens);
    if (!starts || !lens) {
        free(starts);
        free(lens);
        b->failed = true;
        return;
    }
    size_t count = 0;
    bool trailing = false;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t len = j - i;
        bool last = j >= n;
        if (len == 0 || (len == 1 && path[i] == '.')) {
            if (last)
                trailing = true;
        } else if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (count)
                count--;
            if (last)
                trailing = true;
        } else {
            starts[count] = i;
            lens[count] = len;
            count++;
            if (last)
                trailing = false;
        }
        i = j + 1;
    }
    for (size_t k = 0; k < count; k++) {
        buf_char(b, '/');
        encode_into(b, path + starts[k], lens[k], false);
    }
    if (count == 0 || trailing)
        buf_char(b, '/');
    free(starts);
    free(lens);
}

static void canonical_path(buf_t *b, const char *path, bool s3)
{
    if (!path || !*path) {
        buf_char(b, '/');
        return;
    }
    if (!s3) {
        canonical_path_normalised(b, path);
        return;
    }
    size_t len;
    char *decoded = percent_decode(path, strlen(path), &len);
    if (!decoded) {
        b->failed = true;
        return;
    }
    encode_into(b, decoded, len, true);
    free(decoded);
}

typedef struct {
    char *key, *value; /* encoded */
} param_t;

static int param_cmp(const void *a, const void *b)
{
    const param_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

static char *encode_component(const char *s, size_t n)
{
    size_t len;
    char *decoded = percent_decode(s, n, &len);
    if (!decoded)
        return NULL;
    char *enc = sy_sigv4_uri_encode(sy_slice(decoded, len), false);
    free(decoded);
    return enc;
}

/* Each parameter is decoded then encoded per AWS rules, so a query given
 * raw or already encoded signs the same; sorted by key, then value. */
static void canonical_query(buf_t *b, const char *query)
{
    if (!query || !*query)
        return;
    size_t n = strlen(query), count = 0;
    param_t *params = calloc(n / 2 + 2, sizeof *params);
    if (!params) {
        b->failed = true;
        return;
    }
    const char *p = query, *end = query + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) {
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *kend = eq ? eq : stop;
            param_t *pr = &params[count++];
            pr->key = encode_component(p, (size_t)(kend - p));
            pr->value = eq ? encode_component(eq + 1, (size_t)(stop - eq - 1)) : strdup("");
            if (!pr->key || !pr->value)
                b->failed = true;
        }
        p = stop + 1;
    }
    if (!b->failed) {
        qsort(params, count, sizeof *params, param_cmp);
        for (size_t i = 0; i < count; i++) {
            if (i)
                buf_char(b, '&');
            buf_str(b, params[i].key);
            buf_char(b, '=');
            buf_str(b, params[i].value);
        }
    }
    for (size_t i = 0; i < count; i++) {
        free(params[i].key);
        free(params[i].value);
    }
    free(params);
}

typedef struct {
    char *name; /* lower-case */
    const char *value;
    size_t order; /* input position: values of a repeated header keep it */
} hdr_t;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Trims the value and collapses runs of whitespace (also inside quotes, as
 * the suite's get-header-value-trim requires). */
static void header_value(buf_t *b, const char *v)
{
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
        v++;
    bool space = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
            space = true;
            continue;
        }
        if (space)
            buf_char(b, ' ');
        space = false;
        buf_char(b, *v);
    }
}

/* Writes the canonical headers block and fills signed (the SignedHeaders
 * list). */
static bool canonical_headers(buf_t *b, buf_t *signed_list, const sy_sigv4_header_t *headers,
                              size_t count, sy_error_t *err)
{
    hdr_t *h = calloc(count ? count : 1, sizeof *h);
    if (!h) {
        sy_error_set(err, "sigv4: out of memory");
        return false;
    }
    bool ok = true, have_host = false;
    for (size_t i = 0; i < count && ok; i++) {
        const char *name = headers[i].name;
        size_t len = name ? strlen(name) : 0;
        if (!len || !headers[i].value) {
            sy_error_set(err, "sigv4: header %zu has no name or value", i);
            ok = false;
            break;
        }
        h[i].name = malloc(len + 1);
        if (!h[i].name) {
            ok = false;
            sy_error_set(err, "sigv4: out of memory");
            break;
        }
        for (size_t k = 0; k <= len; k++) {
            char c = name[k];
            h[i].name[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        h[i].value = headers[i].value;
        h[i].order = i;
        if (strcmp(h[i].name, "host") == 0)
            have_host = true;
    }
    if (ok && !have_host) {
        sy_error_set(err, "sigv4: the Host header must be signed");
        ok = false;
    }
    if (ok) {
        qsort(h, count, sizeof *h, hdr_cmp);
        for (size_t i = 0; i < count; i++) {
            bool repeat = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
            if (repeat) {
                buf_char(b, ',');
            } else {
                if (i)
                    buf_char(b, '\n');
                buf_str(b, h[i].name);
                buf_char(b, ':');
                if (signed_list->len)
                    buf_char(signed_list, ';');
                buf_str(signed_list, h[i].name);
            }
            header_value(b, h[i].value);
        }
        buf_char(b, '\n');
    }
    for (size_t i = 0; i < count; i++)
        free(h[i].name);
    free(h);
    return ok;
}

/* ---- crypto ---- */

static bool hmac(const void *key, size_t key_len, const void *data, size_t data_len,
                 unsigned char out[32])
{
    size_t out_len = 0;
    return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, data, data_len, out, 32,
                     &out_len) != NULL &&
           out_len == 32;
}

bool sy_sigv4_sha256_hex(const void *data, size_t len, char out_hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(data ? data : "", len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
        return false;
    sy_hex_encode(md, 32, out_hex);
    return true;
}

/* The signing-key cache. Small and linear: a switchyard signs for two
 * services in one region. */
#define KEY_CACHE_SIZE 8

typedef struct {
    bool used;
    char date[9];
    char region[32];
    char service[32];
    char access_key_id[129];
    unsigned char secret_hash[32];
    unsigned char key[32];
    unsigned long last_use;
} key_entry_t;

static struct {
    pthread_mutex_t lock;
    key_entry_t entries[KEY_CACHE_SIZE];
    unsigned long clock;
} key_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool derive_key(const sy_aws_credentials_t *creds, const char *date8, const char *region,
                       const char *service, unsigned char out[32])
{
    size_t slen = strlen(creds->secret_access_key);
    char *k = malloc(slen + 5);
    if (!k)
        return false;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, creds->secret_access_key, slen + 1);
    unsigned char a[32], b[32];
    bool ok = hmac(k, slen + 4, date8, strlen(date8), a) &&
              hmac(a, 32, region, strlen(region), b) && hmac(b, 32, service, strlen(service), a) &&
              hmac(a, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(k, slen + 4);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    free(k);
    return ok;
}

static bool signing_key(const sy_aws_credentials_t *creds, const char *date8, const char *region,
                        const char *service, unsigned char out[32])
{
    unsigned char secret_hash[32];
    unsigned int md_len = 0;
    if (!EVP_Digest(creds->secret_access_key, strlen(creds->secret_access_key), secret_hash,
                    &md_len, EVP_sha256(), NULL))
        return false;
    bool cacheable = strlen(date8) < 9 && strlen(region) < 32 && strlen(service) < 32 &&
                     strlen(creds->access_key_id) < 129;
    if (cacheable) {
        pthread_mutex_lock(&key_cache.lock);
        for (int i = 0; i < KEY_CACHE_SIZE; i++) {
            key_entry_t *e = &key_cache.entries[i];
            if (e->used && strcmp(e->date, date8) == 0 && strcmp(e->region, region) == 0 &&
                strcmp(e->service, service) == 0 &&
                strcmp(e->access_key_id, creds->access_key_id) == 0 &&
                CRYPTO_memcmp(e->secret_hash, secret_hash, 32) == 0) {
                memcpy(out, e->key, 32);
                e->last_use = ++key_cache.clock;
                pthread_mutex_unlock(&key_cache.lock);
                return true;
            }
        }
        pthread_mutex_unlock(&key_cache.lock);
    }
    if (!derive_key(creds, date8, region, service, out))
        return false;
    if (cacheable) {
        pthread_mutex_lock(&key_cache.lock);
        key_entry_t *victim = &key_cache.entries[0];
        for (int i = 0; i < KEY_CACHE_SIZE; i++) {
            key_entry_t *e = &key_cache.entries[i];
            if (!e->used) {
                victim = e;
                break;
            }
            if (e->last_use < victim->last_use)
                victim = e;
        }
        victim->used = true;
        snprintf(victim->date, sizeof victim->date, "%s", date8);
        snprintf(victim->region, sizeof victim->region, "%s", region);
        snprintf(victim->service, sizeof victim->service, "%s", service);
        snprintf(victim->access_key_id, sizeof victim->access_key_id, "%s", creds->access_key_id);
        memcpy(victim->secret_hash, secret_hash, 32);
        memcpy(victim->key, out, 32);
        victim->last_use = ++key_cache.clock;
        pthread_mutex_unlock(&key_cache.lock);
    }
    return true;
}

bool sy_sigv4_sign_string(const sy_aws_credentials_t *creds, const char *date8, const char *region,
                          const char *service, const char *string_to_sign, char out_hex[65])
{
    unsigned char key[32], sig[32];
    if (!signing_key(creds, date8, region, service, key))
        return false;
    bool ok = hmac(key, 32, string_to_sign, strlen(string_to_sign), sig);
    OPENSSL_cleanse(key, sizeof key);
    if (ok)
        sy_hex_encode(sig, 32, out_hex);
    return ok;
}

static bool valid_amz_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return false;
    return true;
}

bool sy_sigv4_sign(const sy_sigv4_request_t *req, const sy_aws_credentials_t *creds,
                   sy_sigv4_signature_t *out, sy_error_t *err)
{
    *out = (sy_sigv4_signature_t){0};
    if (!creds || !creds->access_key_id || !*creds->access_key_id || !creds->secret_access_key ||
        !*creds->secret_access_key) {
        sy_error_set(err, "sigv4: no credentials");
        return false;
    }
    if (!valid_amz_date(req->amz_date) || !req->method || !req->region || !*req->region ||
        !req->service || !*req->service) {
        sy_error_set(err, "sigv4: method, region, service and a YYYYMMDDTHHMMSSZ date are "
                          "required");
        return false;
    }
    for (const char *s = req->region; *s; s++)
        if (*s == '/' || *s == '\n') {
            sy_error_set(err, "sigv4: bad region \"%s\"", req->region);
            return false;
        }
    char payload_hash[65];
    const char *ph = req->payload_hash;
    if (!ph) {
        if (!sy_sigv4_sha256_hex(req->payload, req->payload_len, payload_hash)) {
            sy_error_set(err, "sigv4: SHA-256 failed");
            return false;
        }
        ph = payload_hash;
    }

    buf_t creq = {0}, signed_list = {0};
    buf_str(&creq, req->method);
    buf_char(&creq, '\n');
    canonical_path(&creq, req->path, req->s3);
    buf_char(&creq, '\n');
    canonical_query(&creq, req->query);
    buf_char(&creq, '\n');
    if (!canonical_headers(&creq, &signed_list, req->headers, req->header_count, err)) {
        free(buf_take(&creq));
        free(buf_take(&signed_list));
        return false;
    }
    buf_char(&creq, '\n');
    buf_str(&creq, signed_list.ptr ? signed_list.ptr : "");
    buf_char(&creq, '\n');
    buf_str(&creq, ph);
    out->canonical_request = buf_take(&creq);
    out->signed_headers = buf_take(&signed_list);

    char date8[9];
    memcpy(date8, req->amz_date, 8);
    date8[8] = '\0';
    char creq_hash[65];
    buf_t sts = {0};
    if (out->canonical_request &&
        sy_sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hash)) {
        buf_str(&sts, "AWS4-HMAC-SHA256\n");
        buf_str(&sts, req->amz_date);
        buf_char(&sts, '\n');
        buf_str(&sts, date8);
        buf_char(&sts, '/');
        buf_str(&sts, req->region);
        buf_char(&sts, '/');
        buf_str(&sts, req->service);
        buf_str(&sts, "/aws4_request\n");
        buf_str(&sts, creq_hash);
        out->string_to_sign = buf_take(&sts);
    }
    if (!out->canonical_request || !out->signed_headers || !out->string_to_sign ||
        !sy_sigv4_sign_string(creds, date8, req->region, req->service, out->string_to_sign,
                              out->signature)) {
        sy_error_set(err, "sigv4: out of memory or OpenSSL failure");
        sy_sigv4_signature_free(out);
        return false;
    }
    buf_t authz = {0};
    buf_str(&authz, "AWS4-HMAC-SHA256 Credential=");
    buf_str(&authz, creds->access_key_id);
    buf_char(&authz, '/');
    buf_str(&authz, date8);
    buf_char(&authz, '/');
    buf_str(&authz, req->region);
    buf_char(&authz, '/');
    buf_str(&authz, req->service);
    buf_str(&authz, "/aws4_request, SignedHeaders=");
    buf_str(&authz, out->signed_headers);
    buf_str(&authz, ", Signature=");
    buf_str(&authz, out->signature);
    out->authorization = buf_take(&authz);
    if (!out->authorization) {
        sy_error_set(err, "sigv4: out of memory");
        sy_sigv4_signature_free(out);
        return false;
    }
    return true;
}

void sy_sigv4_signature_free(sy_sigv4_signature_t *sig)
{
    if (!sig)
        return;
    free(sig->canonical_request);
    free(sig->string_to_sign);
    free(sig->authorization);
    free(sig->signed_headers);
    *sig = (sy_sigv4_signature_t){0};
}

void sy_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void sy_aws_credentials_free(sy_aws_credentials_t *creds)
{
    if (!creds)
        return;
    if (creds->secret_access_key)
        OPENSSL_cleanse(creds->secret_access_key, strlen(creds->secret_access_key));
    if (creds->session_token)
        OPENSSL_cleanse(creds->session_token, strlen(creds->session_token));
    free(creds->access_key_id);
    free(creds->secret_access_key);
    free(creds->session_token);
    *creds = (sy_aws_credentials_t){0};
}
