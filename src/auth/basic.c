/*
 * basic.c: Basic credentials checked against crypt(3) hashes.
 *
 * crypt_rn hashes the offered password with the stored hash's own setting
 * (scheme, cost, salt) and the result is compared with CRYPTO_memcmp. An
 * unknown user still costs one hash (with the first user's setting), so
 * response time doesn't tell which user names exist.
 *
 * bcrypt at cost 10 takes milliseconds by design, which would make a busy
 * Basic route CPU-bound. Each worker thread therefore remembers recent
 * successes for SY_BASIC_CACHE_TTL_MS in a small direct-mapped table. The
 * table holds HMAC-SHA256 digests under a random per-process key of
 * (policy, user, stored hash, password) -- never a password, and nothing an
 * offline attacker with a memory dump could test guesses against without
 * the key. Including the stored hash means a changed password (a reload
 * with a new hash) stops matching old entries at once. Failures are never
 * cached: a wrong guess always pays the full hash.
 */
#include "auth/basic.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

typedef struct {
    char *name;
    size_t name_len;
    char *hash;
} basic_user_t;

struct sy_basic_users {
    char *policy;
    size_t count;
    basic_user_t users[];
};

typedef struct {
    unsigned char mac[32];
    uint64_t expires_ms;
} cache_entry_t;

/* Per worker: no locks, no sharing. crypt_data is ~32 KiB, too big for a
 * worker's stack frame. */
static _Thread_local cache_entry_t cache[SY_BASIC_CACHE_ENTRIES];
static _Thread_local struct crypt_data crypt_scratch;

static unsigned char process_key[32];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

static void make_key(void)
{
    key_ok = RAND_bytes(process_key, sizeof process_key) == 1;
}

sy_basic_users_t *sy_basic_users_build(const char *name, const json_t *users, sy_error_t *err)
{
    pthread_once(&key_once, make_key);
    if (!key_ok) {
        sy_error_set(err, "no randomness for the credential cache key");
        return NULL;
    }
    /* No users is allowed: the route then refuses everyone (fail closed). */
    if (!json_is_object(users)) {
        sy_error_set(err, "users: expected an object");
        return NULL;
    }
    size_t n = json_object_size(users);
    sy_basic_users_t *t = calloc(1, sizeof *t + n * sizeof t->users[0]);
    if (!t || !(t->policy = strdup(name))) {
        free(t);
        sy_error_set(err, "out of memory");
        return NULL;
    }
    const char *user;
    json_t *hash;
    json_object_foreach((json_t *)users, user, hash)
    {
        const char *h = json_string_value(hash);
        /* The policy parser checked the shape; this is the same rule kept
         * here so the module never hashes against a plain-text "hash". */
        if (!h || (strncmp(h, "$2y$", 4) && strncmp(h, "$2b$", 4) && strncmp(h, "$6$", 3) &&
                   strncmp(h, "$5$", 3) && strncmp(h, "$y$", 3))) {
            sy_error_set(err, "users.%s: expected a crypt hash ($2y$, $2b$, $6$, $5$ or $y$)",
                         user);
            sy_basic_users_free(t);
            return NULL;
        }
        basic_user_t *u = &t->users[t->count++];
        u->name = strdup(user);
        u->name_len = strlen(user);
        u->hash = strdup(h);
        if (!u->name || !u->hash) {
            sy_basic_users_free(t);
            sy_error_set(err, "out of memory");
            return NULL;
        }
    }
    return t;
}

void sy_basic_users_free(sy_basic_users_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++) {
        free(t->users[i].name);
        free(t->users[i].hash);
    }
    free(t->policy);
    free(t);
}

static bool hash_matches(const char *stored, const char *password)
{
    char *got = crypt_rn(password, stored, &crypt_scratch, (int)sizeof crypt_scratch);
    /* Failure is NULL or a string starting with '*' (never a valid hash). */
    if (!got || got[0] == '*')
        return false;
    size_t a = strlen(got), b = strlen(stored);
    return a == b && CRYPTO_memcmp(got, stored, a) == 0;
}

static bool cache_mac(const sy_basic_users_t *t, const basic_user_t *u, const char *password,
                      size_t password_len, unsigned char mac[32])
{
    /* NUL separators: none of the parts can contain one. */
    unsigned char buf[64 + 1 + 128 + 1 + 256 + 1 + 1024];
    size_t n = 0, parts_len[4] = {strlen(t->policy) + 1, u->name_len + 1, strlen(u->hash) + 1,
                                  password_len};
    const char *parts[4] = {t->policy, u->name, u->hash, password};
    unsigned int mac_len = 32;
    memset(mac, 0, 32);
    for (int i = 0; i < 4; i++) {
        if (n + parts_len[i] > sizeof buf)
            return false; /* too long to cache: always hash */
        memcpy(buf + n, parts[i], parts_len[i]);
        n += parts_len[i];
    }
    bool ok = HMAC(EVP_sha256(), process_key, sizeof process_key, buf, n, mac, &mac_len) != NULL;
    OPENSSL_cleanse(buf, n);
    return ok && mac_len == 32;
}

bool sy_basic_check(const sy_basic_users_t *t, sy_slice_t authorization, const char **user_out)
{
    *user_out = NULL;
    if (!t || t->count == 0)
        return false;
    /* The scheme name is case-insensitive (RFC 9110 §11.1). */
    if (authorization.len < 6 || !sy_slice_eq_cstr_nocase(sy_slice(authorization.ptr, 6), "Basic "))
        return false;
    sy_slice_t b64 = sy_slice(authorization.ptr + 6, authorization.len - 6);
    while (b64.len && b64.ptr[0] == ' ')
        b64.ptr++, b64.len--;
    char decoded[1024 + 1];
    size_t n;
    /* Padded standard base64 (RFC 7617 §2), one spelling per credential. */
    if (!sy_base64_decode(b64, false, true, (unsigned char *)decoded, sizeof decoded - 1, &n))
        return false;
    decoded[n] = '\0';
    char *colon = memchr(decoded, ':', n);
    if (!colon || memchr(decoded, '\0', n))
        return false;
    size_t user_len = (size_t)(colon - decoded);
    const char *password = colon + 1;
    size_t password_len = n - user_len - 1;

    const basic_user_t *u = NULL;
    for (size_t i = 0; i < t->count && !u; i++)
        if (t->users[i].name_len == user_len && memcmp(t->users[i].name, decoded, user_len) == 0)
            u = &t->users[i];
    if (!u) {
        /* Spend what a real check costs, so timing doesn't reveal names. */
        hash_matches(t->users[0].hash, password);
        OPENSSL_cleanse(decoded, sizeof decoded);
        return false;
    }

    unsigned char mac[32];
    bool cacheable = cache_mac(t, u, password, password_len, mac);
    cache_entry_t *slot = &cache[(mac[0] | (unsigned)mac[1] << 8) % SY_BASIC_CACHE_ENTRIES];
    uint64_t now = sy_now_ms();
    bool ok;
    if (cacheable && slot->expires_ms > now && CRYPTO_memcmp(slot->mac, mac, sizeof mac) == 0) {
        ok = true;
    } else {
        ok = hash_matches(u->hash, password);
        if (ok && cacheable) {
            memcpy(slot->mac, mac, sizeof mac);
            slot->expires_ms = now + SY_BASIC_CACHE_TTL_MS;
        }
    }
    OPENSSL_cleanse(decoded, sizeof decoded);
    if (ok)
        *user_out = u->name;
    return ok;
}
