/*
 * basic.c: Basic credentials checked against crypt(3) hashes.
 *
 * crypt_rn hashes the offered password with the stored hash's own setting
 * (scheme, cost, salt) and the result is compared with CRYPTO_memcmp.
 *
 * A hash takes milliseconds to hundreds of milliseconds by design, so it
 * must never run on a worker's event loop (issue 9: eight clients sending
 * wrong passwords stalled every route). This file therefore splits a check
 * into a cheap decision on the worker (sy_basic_begin) and a job that
 * hashes on another thread. Everything that can be answered without a
 * hash is answered here:
 *
 * - an unknown user is refused at once. This tells a prober which names
 *   exist (by timing as well as by throttle behaviour); user names are not
 *   secrets here, passwords are, and spending a hash on every made-up name
 *   would hand an attacker the router's CPU for free.
 * - recent results are cached per worker thread in small direct-mapped
 *   tables, verified ones for SY_BASIC_CACHE_TTL_MS and failed ones for
 *   SY_BASIC_FAILED_TTL_MS. A slot holds HMAC-SHA256 under a random
 *   per-process key of (policy, user, stored hash, password) -- never a
 *   password, and nothing a memory dump lets anyone test guesses against
 *   without the key. Including the stored hash means a changed password (a
 *   reload with a new hash) stops matching old entries at once.
 * - failures are counted per client address and per (policy, user) in a
 *   fixed window; past the limit the answer is "throttled" without a hash.
 *   A cached verified credential is honoured before the throttle is
 *   consulted, so an attack on a user (or on everyone behind one load
 *   balancer address) does not lock out clients that already proved their
 *   password.
 *
 * The per-thread tables need no locks; their limits are per worker (the
 * kernel spreads connections over workers), which docs/authentication.md
 * states. Slot indexes come from the keyed MACs, so nobody can aim a
 * collision to evict a counter or an entry on purpose.
 */
#include "auth/basic.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

/* RFC 7617 user-pass as decoded, at most. */
#define CREDENTIALS_MAX 1024

typedef struct {
    char *name;
    size_t name_len;
    char *hash;
    size_t hash_len;
} basic_user_t;

struct sy_basic_users {
    char *policy;
    size_t policy_len;
    size_t count;
    basic_user_t users[];
};

struct sy_basic_job {
    char *hash;     /* copy of the stored hash */
    char *password; /* copy, cleansed when done */
    char user[129];
    unsigned char mac[32]; /* cache key */
    bool cacheable;
    unsigned char address_key[32], user_key[32];
    bool has_address;
    bool matched;
};

typedef struct {
    unsigned char mac[32];
    uint64_t expires_ms;
} cache_entry_t;

typedef struct {
    unsigned char key[32];
    uint64_t window_end_ms;
    uint32_t failures;
} throttle_entry_t;

/* Per worker: no locks, no sharing. crypt_data is ~32 KiB, too big for a
 * stack frame; each thread that hashes has its own. */
static _Thread_local cache_entry_t verified_cache[SY_BASIC_CACHE_ENTRIES];
static _Thread_local cache_entry_t failed_cache[SY_BASIC_CACHE_ENTRIES];
static _Thread_local throttle_entry_t throttle[SY_BASIC_THROTTLE_ENTRIES];
static _Thread_local struct crypt_data crypt_scratch;

static unsigned char process_key[32];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

/* HMAC-SHA256 under process_key (RFC 2104) with the key's two padded
 * blocks absorbed once: a per-request MAC is then two SHA-256 runs from a
 * copied state. OpenSSL 3.0's HMAC() allocates its contexts on every call
 * (three MACs, nine mallocs, per cached Basic check); the low-level
 * SHA-256 state is a plain struct (deprecated since 3.0, still provided). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static SHA256_CTX mac_inner, mac_outer;

static void mac_run(const unsigned char *data, size_t n, unsigned char mac[32])
{
    SHA256_CTX c = mac_inner;
    unsigned char inner[32];
    SHA256_Update(&c, data, n);
    SHA256_Final(inner, &c);
    c = mac_outer;
    SHA256_Update(&c, inner, sizeof inner);
    SHA256_Final(mac, &c);
    OPENSSL_cleanse(inner, sizeof inner);
}

static void make_key(void)
{
    key_ok = RAND_bytes(process_key, sizeof process_key) == 1;
    unsigned char ipad[64], opad[64];
    for (size_t i = 0; i < 64; i++) {
        unsigned char k = i < sizeof process_key ? process_key[i] : 0;
        ipad[i] = k ^ 0x36;
        opad[i] = k ^ 0x5c;
    }
    SHA256_Init(&mac_inner);
    SHA256_Update(&mac_inner, ipad, sizeof ipad);
    SHA256_Init(&mac_outer);
    SHA256_Update(&mac_outer, opad, sizeof opad);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    /* Checked once against OpenSSL's HMAC: a mismatch fails closed (no
     * Basic policy loads), never a silently different key. */
    static const unsigned char probe[] = "switchyard";
    unsigned char want[32], got[32];
    unsigned int want_len = 0;
    mac_run(probe, sizeof probe, got);
    if (!HMAC(EVP_sha256(), process_key, sizeof process_key, probe, sizeof probe, want,
              &want_len) ||
        want_len != 32 || CRYPTO_memcmp(want, got, 32) != 0)
        key_ok = false;
}
#pragma GCC diagnostic pop

/* ---- hash settings and their cost ---- */

static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int itoa64_index(char c)
{
    const char *p = c ? strchr(itoa64, c) : NULL;
    return p ? (int)(p - itoa64) : -1;
}

static bool hash_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '/' || c == '$' || c == '=';
}

/* $5$/$6$: an optional "rounds=N$" (default 5000). */
static const char *sha_crypt_problem(const char *params, char *buf, size_t cap)
{
    if (strncmp(params, "rounds=", 7) != 0)
        return NULL;
    const char *d = params + 7;
    unsigned long long rounds = 0;
    size_t digits = 0;
    for (; d[digits] >= '0' && d[digits] <= '9'; digits++)
        if (digits < 12)
            rounds = rounds * 10 + (unsigned)(d[digits] - '0');
    if (digits == 0 || d[digits] != '$')
        return "malformed sha-crypt rounds";
    if (digits >= 12 || rounds > SY_BASIC_MAX_SHA_CRYPT_ROUNDS) {
        snprintf(buf, cap,
                 "sha-crypt rounds=%.*s is above the maximum %d (one check would hold a "
                 "thread too long); rehash with fewer rounds",
                 (int)(digits < 12 ? digits : 12), d, SY_BASIC_MAX_SHA_CRYPT_ROUNDS);
        return buf;
    }
    return NULL;
}

/* $y$: libxcrypt writes the parameters as one flavour character ('j',
 * the standard yescrypt), then N as log2(N)-1 and r as r-1, one itoa64
 * character each ("j9T": N = 4096, r = 32, 16 MiB). Other shapes (p, t, g
 * and ROM parameters, multi-character values) are refused rather than
 * guessed at: their cost could not be bounded here. */
static const char *yescrypt_problem(const char *params, char *buf, size_t cap)
{
    const char *end = strchr(params, '$');
    if (!end || end - params != 3 || params[0] != 'j')
        return "unsupported yescrypt parameters (expected the standard form, e.g. $y$j9T$)";
    int n = itoa64_index(params[1]), r = itoa64_index(params[2]);
    if (n < 0 || n >= 47 || r < 0 || r >= 47 || n + 1 > 40)
        return "unsupported yescrypt parameters (expected the standard form, e.g. $y$j9T$)";
    unsigned long long bytes = 128ull * (unsigned)(r + 1) << (n + 1);
    if (bytes > SY_BASIC_MAX_YESCRYPT_BYTES) {
        snprintf(buf, cap,
                 "yescrypt parameters %.3s need %llu MiB per check, above the maximum %u MiB; "
                 "rehash with a lower cost",
                 params, bytes >> 20, SY_BASIC_MAX_YESCRYPT_BYTES >> 20);
        return buf;
    }
    return NULL;
}

const char *sy_basic_hash_problem(const char *h, char *buf, size_t cap)
{
    static const char *const prefixes[] = {"$2y$", "$2b$", "$6$", "$5$", "$y$"};
    size_t n = strlen(h), prefix = 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !prefix; i++)
        if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
            prefix = strlen(prefixes[i]);
    if (!prefix)
        return h[0] == '$' ? "unsupported hash scheme" : "plain-text password refused";
    for (size_t i = 0; i < n; i++)
        if (!hash_char_ok(h[i]))
            return "malformed crypt hash";
    if (h[1] == '2') {
        /* bcrypt: $2y$NN$ + 22 salt + 31 hash characters. */
        if (n != 60 || h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$')
            return "malformed bcrypt hash";
        int cost = (h[4] - '0') * 10 + (h[5] - '0');
        if (cost < 4 || cost > 31)
            return "malformed bcrypt hash (cost must be 04-31)";
        if (cost > SY_BASIC_MAX_BCRYPT_COST) {
            snprintf(buf, cap,
                     "bcrypt cost %d is above the maximum %d (each extra point doubles the time "
                     "of a check); rehash with cost %d or less",
                     cost, SY_BASIC_MAX_BCRYPT_COST, SY_BASIC_MAX_BCRYPT_COST);
            return buf;
        }
        return NULL;
    }
    const char *problem = h[1] == 'y' ? yescrypt_problem(h + prefix, buf, cap)
                                      : sha_crypt_problem(h + prefix, buf, cap);
    if (problem)
        return problem;
    const char *last = strrchr(h, '$');
    if (last == h + prefix - 1 || last[1] == '\0')
        return "malformed crypt hash";
    return NULL;
}

/* ---- the user table ---- */

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
    t->policy_len = strlen(name);
    const char *user;
    json_t *hash;
    json_object_foreach((json_t *)users, user, hash)
    {
        const char *h = json_string_value(hash);
        char why[200];
        const char *problem = h ? sy_basic_hash_problem(h, why, sizeof why) : "expected a string";
        if (problem) {
            /* A cost message says what to do itself; a shape one gets the
             * list of what is accepted. */
            sy_error_set(err, "users.%.128s: %s%s", user, problem,
                         problem == why ? "" : "; use a crypt hash ($2y$, $2b$, $6$, $5$ or $y$)");
            sy_basic_users_free(t);
            return NULL;
        }
        if (strlen(user) > 128) {
            sy_error_set(err, "users: user names are at most 128 characters");
            sy_basic_users_free(t);
            return NULL;
        }
        basic_user_t *u = &t->users[t->count++];
        u->name = strdup(user);
        u->name_len = strlen(user);
        u->hash = strdup(h);
        u->hash_len = strlen(h);
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

json_t *sy_basic_users_names(const sy_basic_users_t *t)
{
    json_t *names = json_array();
    for (size_t i = 0; t && names && i < t->count; i++)
        json_array_append_new(names, json_string(t->users[i].name));
    return names;
}

/* ---- keys, caches, throttle ---- */

/* HMAC over NUL-separated parts (none of them can contain a NUL). false
 * when too long to key (then: always hash, never cache). */
static bool keyed_mac(const char *const *parts, const size_t *lens, int count,
                      unsigned char mac[32])
{
    unsigned char buf[64 + 1 + 128 + 1 + 256 + 1 + CREDENTIALS_MAX + 1];
    size_t n = 0;
    memset(mac, 0, 32);
    for (int i = 0; i < count; i++) {
        if (n + lens[i] + 1 > sizeof buf)
            return false;
        memcpy(buf + n, parts[i], lens[i]);
        n += lens[i];
        buf[n++] = '\0';
    }
    mac_run(buf, n, mac);
    OPENSSL_cleanse(buf, n);
    return true;
}

static size_t slot_of(const unsigned char mac[32], size_t entries)
{
    return ((size_t)mac[0] | (size_t)mac[1] << 8 | (size_t)mac[2] << 16) % entries;
}

static bool cache_hit(cache_entry_t *table, const unsigned char mac[32], uint64_t now)
{
    cache_entry_t *e = &table[slot_of(mac, SY_BASIC_CACHE_ENTRIES)];
    return e->expires_ms > now && CRYPTO_memcmp(e->mac, mac, 32) == 0;
}

static void cache_put(cache_entry_t *table, const unsigned char mac[32], uint64_t expires)
{
    cache_entry_t *e = &table[slot_of(mac, SY_BASIC_CACHE_ENTRIES)];
    memcpy(e->mac, mac, 32);
    e->expires_ms = expires;
}

/* The throttle entry of key, probing SY_BASIC_THROTTLE_PROBE slots from its
 * own. With create, a key without one takes a free or expired slot, else
 * the active one with the fewest failures: failures of other users or from
 * other addresses must not be able to evict (and so reset) a key that is
 * being throttled, as a direct-mapped table would let them. */
#define SY_BASIC_THROTTLE_PROBE 8
static throttle_entry_t *throttle_find(const unsigned char key[32], uint64_t now, bool create)
{
    size_t base = slot_of(key, SY_BASIC_THROTTLE_ENTRIES);
    throttle_entry_t *victim = NULL;
    for (size_t i = 0; i < SY_BASIC_THROTTLE_PROBE; i++) {
        throttle_entry_t *e = &throttle[(base + i) % SY_BASIC_THROTTLE_ENTRIES];
        bool active = e->window_end_ms > now;
        if (active && memcmp(e->key, key, 32) == 0)
            return e;
        bool victim_active = victim && victim->window_end_ms > now;
        if (!victim || (victim_active && (!active || e->failures < victim->failures)))
            victim = e;
    }
    if (!create)
        return NULL;
    memcpy(victim->key, key, 32);
    victim->window_end_ms = now + SY_BASIC_THROTTLE_WINDOW_MS;
    victim->failures = 0;
    return victim;
}

/* 0 when key may try now, else the seconds until its window ends. */
static unsigned throttled_for(const unsigned char key[32], uint32_t limit, uint64_t now)
{
    const throttle_entry_t *e = throttle_find(key, now, false);
    if (!e || e->failures < limit)
        return 0;
    return (unsigned)((e->window_end_ms - now + 999) / 1000);
}

static void throttle_fail(const unsigned char key[32], uint64_t now)
{
    throttle_find(key, now, true)->failures++;
}

static bool address_key(const char *peer, unsigned char key[32])
{
    const char *parts[2] = {"address", peer};
    size_t lens[2] = {7, strlen(peer)};
    return keyed_mac(parts, lens, 2, key);
}

static bool user_key(const sy_basic_users_t *t, const basic_user_t *u, unsigned char key[32])
{
    const char *parts[3] = {"user", t->policy, u->name};
    size_t lens[3] = {4, t->policy_len, u->name_len};
    return keyed_mac(parts, lens, 3, key);
}

void sy_basic_thread_reset(void)
{
    memset(verified_cache, 0, sizeof verified_cache);
    memset(failed_cache, 0, sizeof failed_cache);
    memset(throttle, 0, sizeof throttle);
}

/* ---- checks ---- */

static bool hash_matches(const char *stored, const char *password)
{
    char *got = crypt_rn(password, stored, &crypt_scratch, (int)sizeof crypt_scratch);
    /* Failure is NULL or a string starting with '*' (never a valid hash). */
    bool ok = got && got[0] != '*' && strlen(got) == strlen(stored) &&
              CRYPTO_memcmp(got, stored, strlen(stored)) == 0;
    OPENSSL_cleanse(crypt_scratch.output, sizeof crypt_scratch.output);
    return ok;
}

/* "Basic base64(user:password)" decoded into buf (NUL-terminated). */
static bool decode_credentials(sy_slice_t authorization, char *buf, size_t cap, size_t *len)
{
    /* The scheme name is case-insensitive (RFC 9110 §11.1). */
    if (authorization.len < 6 || !sy_slice_eq_cstr_nocase(sy_slice(authorization.ptr, 6), "Basic "))
        return false;
    sy_slice_t b64 = sy_slice(authorization.ptr + 6, authorization.len - 6);
    while (b64.len && b64.ptr[0] == ' ')
        b64.ptr++, b64.len--;
    /* Padded standard base64 (RFC 7617 §2), one spelling per credential. */
    if (!sy_base64_decode(b64, false, true, (unsigned char *)buf, cap - 1, len))
        return false;
    buf[*len] = '\0';
    return memchr(buf, ':', *len) && !memchr(buf, '\0', *len);
}

sy_basic_status_t sy_basic_begin(const sy_basic_users_t *t, sy_slice_t authorization,
                                 const char *peer, uint64_t now, const char **user_out,
                                 unsigned *retry_after_s, sy_basic_job_t **job)
{
    *user_out = NULL;
    *retry_after_s = 0;
    *job = NULL;
    char decoded[CREDENTIALS_MAX + 1];
    size_t n;
    if (!t || !decode_credentials(authorization, decoded, sizeof decoded, &n))
        return SY_BASIC_MISSING;
    sy_basic_status_t status;
    char *colon = memchr(decoded, ':', n);
    size_t user_len = (size_t)(colon - decoded);
    const char *password = colon + 1;
    size_t password_len = n - user_len - 1;

    unsigned char addr[32];
    bool has_addr = peer && peer[0] && address_key(peer, addr);
    unsigned wait = has_addr ? throttled_for(addr, SY_BASIC_THROTTLE_PER_ADDRESS, now) : 0;

    const basic_user_t *u = NULL;
    for (size_t i = 0; i < t->count && !u; i++)
        if (t->users[i].name_len == user_len && memcmp(t->users[i].name, decoded, user_len) == 0)
            u = &t->users[i];
    unsigned char mac[32], ukey[32];
    const char *parts[4] = {t->policy, u ? u->name : "", u ? u->hash : "", password};
    size_t lens[4] = {t->policy_len, u ? u->name_len : 0, u ? u->hash_len : 0, password_len};
    bool cacheable = u && keyed_mac(parts, lens, 4, mac);
    if (u && !user_key(t, u, ukey)) {
        status = SY_BASIC_MISSING; /* no HMAC: fail closed */
        goto out;
    }
    if (cacheable && cache_hit(verified_cache, mac, now)) {
        /* Before the throttle: see the file comment. */
        *user_out = u->name;
        status = SY_BASIC_OK_CACHED;
        goto out;
    }
    if (!wait && u)
        wait = throttled_for(ukey, SY_BASIC_THROTTLE_PER_USER, now);
    if (wait) {
        *retry_after_s = wait;
        status = SY_BASIC_THROTTLED;
        goto out;
    }
    if (!u || (cacheable && cache_hit(failed_cache, mac, now))) {
        if (has_addr)
            throttle_fail(addr, now);
        if (u)
            throttle_fail(ukey, now);
        status = u ? SY_BASIC_WRONG_CACHED : SY_BASIC_UNKNOWN_USER;
        goto out;
    }
    sy_basic_job_t *j = calloc(1, sizeof *j);
    if (!j || !(j->hash = strdup(u->hash)) || !(j->password = strdup(password))) {
        if (j)
            free(j->hash);
        free(j);
        status = SY_BASIC_MISSING; /* out of memory: fail closed */
        goto out;
    }
    memcpy(j->user, u->name, u->name_len + 1);
    memcpy(j->mac, mac, sizeof mac);
    j->cacheable = cacheable;
    memcpy(j->user_key, ukey, sizeof ukey);
    if ((j->has_address = has_addr))
        memcpy(j->address_key, addr, sizeof addr);
    *job = j;
    status = SY_BASIC_HASH_NEEDED;
out:
    OPENSSL_cleanse(decoded, sizeof decoded);
    return status;
}

void sy_basic_job_run(sy_basic_job_t *job)
{
    job->matched = hash_matches(job->hash, job->password);
    OPENSSL_cleanse(job->password, strlen(job->password));
}

sy_basic_status_t sy_basic_job_finish(sy_basic_job_t *job, uint64_t now, const char **user_out)
{
    *user_out = NULL;
    if (job->matched) {
        if (job->cacheable)
            cache_put(verified_cache, job->mac, now + SY_BASIC_CACHE_TTL_MS);
        *user_out = job->user;
        return SY_BASIC_OK;
    }
    if (job->cacheable)
        cache_put(failed_cache, job->mac, now + SY_BASIC_FAILED_TTL_MS);
    if (job->has_address)
        throttle_fail(job->address_key, now);
    throttle_fail(job->user_key, now);
    return SY_BASIC_WRONG;
}

void sy_basic_job_free(sy_basic_job_t *job)
{
    if (!job)
        return;
    if (job->password) {
        OPENSSL_cleanse(job->password, strlen(job->password));
        free(job->password);
    }
    free(job->hash);
    OPENSSL_cleanse(job, sizeof *job);
    free(job);
}

bool sy_basic_check(const sy_basic_users_t *t, sy_slice_t authorization, const char **user_out)
{
    unsigned wait;
    sy_basic_job_t *job;
    sy_basic_status_t s =
        sy_basic_begin(t, authorization, NULL, sy_now_ms(), user_out, &wait, &job);
    if (s != SY_BASIC_HASH_NEEDED)
        return s == SY_BASIC_OK_CACHED;
    sy_basic_job_run(job);
    const char *user;
    s = sy_basic_job_finish(job, sy_now_ms(), &user);
    /* The job's name copy dies with it: answer with the table's. */
    for (size_t i = 0; s == SY_BASIC_OK && i < t->count; i++)
        if (strcmp(t->users[i].name, user) == 0)
            *user_out = t->users[i].name;
    sy_basic_job_free(job);
    return s == SY_BASIC_OK;
}
