/*
 * matcher.c: longest root-path match at segment boundaries (SPEC §3).
 *
 * Routes live in an open-addressing hash table keyed by their path, with
 * the default route "/" kept aside. A lookup walks the request path once,
 * left to right, extending one running hash; at every segment boundary
 * ("/orders" in "/orders/1") and at the end (minus one trailing '/') it
 * probes the table with the hash it has so far. The last hit whose domain
 * fits is the longest match. So a lookup costs O(length of the request path)
 * plus one probe per segment, whatever the number of routes, and allocates
 * nothing. Path parameters (";x") are left out of the key (see
 * starts_parameter). The walk stops once it is past the longest route path, so a
 * hostile path of thousands of segments costs no more than a short one.
 *
 * The hash is FNV-1a with a per-matcher random seed and a final avalanche:
 * route paths come from pipelines, not clients, but a seed keeps even them
 * from building a table of colliding keys.
 */
#include "route/matcher.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct {
    uint64_t hash;
    char *path; /* NULL: empty slot */
    size_t len;
    char *domain; /* NULL: every domain */
    void *value;
} entry_t;

struct sy_matcher {
    entry_t *slots;
    size_t capacity; /* a power of two, kept at least twice the count */
    size_t count;
    size_t max_len; /* longest route path: lookups never hash past it */
    uint64_t seed;
    bool has_root;
    char *root_domain;
    void *root_value;
};

#define FNV_PRIME 0x100000001b3ULL

static uint64_t hash_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

/* The running FNV state is extended byte by byte; this finaliser (the
 * MurmurHash3 fmix64 mixer) spreads it over the bits used as an index. */
static uint64_t hash_finish(uint64_t h, size_t len)
{
    h ^= (uint64_t)len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_path(uint64_t seed, sy_slice_t path)
{
    uint64_t h = seed;
    for (size_t i = 0; i < path.len; i++)
        h = hash_step(h, (unsigned char)path.ptr[i]);
    return hash_finish(h, path.len);
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* Early boot without entropy: still different per process and matcher. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&ts;
    }
    return seed ^ 0xcbf29ce484222325ULL; /* FNV offset basis */
}

static size_t capacity_for(size_t routes)
{
    size_t cap = 16;
    while (cap < routes * 2 && cap < (SIZE_MAX >> 2))
        cap <<= 1;
    return cap;
}

sy_matcher_t *sy_matcher_new(size_t expected_routes)
{
    sy_matcher_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->capacity = capacity_for(expected_routes);
    m->slots = calloc(m->capacity, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->seed = random_seed();
    return m;
}

void sy_matcher_free(sy_matcher_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->capacity; i++) {
        free(m->slots[i].path);
        free(m->slots[i].domain);
    }
    free(m->slots);
    free(m->root_domain);
    free(m);
}

/* The slot holding path, or the empty slot where it would go. */
static entry_t *find_slot(entry_t *slots, size_t capacity, uint64_t hash, sy_slice_t path)
{
    size_t mask = capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        entry_t *e = &slots[i];
        if (!e->path)
            return e;
        if (e->hash == hash && e->len == path.len && memcmp(e->path, path.ptr, path.len) == 0)
            return e;
    }
}

static bool grow(sy_matcher_t *m)
{
    size_t capacity = m->capacity * 2;
    entry_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < m->capacity; i++) {
        entry_t *e = &m->slots[i];
        if (e->path)
            *find_slot(slots, capacity, e->hash, sy_slice(e->path, e->len)) = *e;
    }
    free(m->slots);
    m->slots = slots;
    m->capacity = capacity;
    return true;
}

bool sy_matcher_add(sy_matcher_t *m, sy_slice_t path, const char *domain, void *value)
{
    if (path.len == 0)
        return false;
    char *domain_copy = NULL;
    if (domain && !(domain_copy = sy_slice_dup(sy_slice_cstr(domain))))
        return false;
    if (path.len == 1 && path.ptr[0] == '/') {
        if (m->has_root) {
            free(domain_copy);
            return false;
        }
        m->has_root = true;
        m->root_domain = domain_copy;
        m->root_value = value;
        return true;
    }
    if ((m->count + 1) * 2 > m->capacity && !grow(m)) {
        free(domain_copy);
        return false;
    }
    uint64_t hash = hash_path(m->seed, path);
    entry_t *e = find_slot(m->slots, m->capacity, hash, path);
    if (e->path) {
        free(domain_copy);
        return false;
    }
    char *path_copy = sy_slice_dup(path);
    if (!path_copy) {
        free(domain_copy);
        return false;
    }
    *e = (entry_t){hash, path_copy, path.len, domain_copy, value};
    m->count++;
    if (path.len > m->max_len)
        m->max_len = path.len;
    return true;
}

/* The Host value as routes compare it: no ":port", no trailing dot. An
 * IPv6 literal keeps its brackets (its colons are not a port). */
static sy_slice_t host_bare(sy_slice_t host)
{
    size_t from = 0, end = host.len;
    if (host.len && host.ptr[0] == '[') {
        const char *close = memchr(host.ptr, ']', host.len);
        if (close)
            from = (size_t)(close - host.ptr);
    }
    const char *colon = memchr(host.ptr + from, ':', host.len - from);
    if (colon)
        end = (size_t)(colon - host.ptr);
    if (end > 0 && host.ptr[end - 1] == '.')
        end--;
    return sy_slice(host.ptr, end);
}

static bool domain_fits(const char *domain, sy_slice_t host)
{
    return !domain || sy_slice_eq_cstr_nocase(host, domain);
}

/* Path parameters (";x" up to the end of its segment, also written
 * "%3Bx") are not part of the key a request path is matched by: servers
 * that honour them (servlet containers, Spring) drop them before they
 * match, so "/orders/admin;x" and "/orders;x/admin" must pick the route a
 * backend will serve them as, "/orders/admin". sy_decide refuses them
 * before a lookup unless the policy allows them; route paths never hold
 * them. */
static bool starts_parameter(const char *path, size_t n, size_t i)
{
    if (path[i] == ';')
        return true;
    return path[i] == '%' && i + 2 < n && path[i + 1] == '3' &&
           (path[i + 2] == 'B' || path[i + 2] == 'b');
}

/* Whether path[0..end), without its parameters, equals key[0..len). */
static bool key_equals(const char *key, size_t len, const char *path, size_t end)
{
    size_t k = 0;
    bool in_parameter = false;
    for (size_t i = 0; i < end; i++) {
        if (path[i] == '/')
            in_parameter = false;
        else if (!in_parameter && starts_parameter(path, end, i))
            in_parameter = true;
        if (in_parameter)
            continue;
        if (k == len || key[k] != path[i])
            return false;
        k++;
    }
    return k == len;
}

/* Looks up the key hashed into `running` (key_len bytes of path[0..end)
 * once its parameters are left out). */
static const entry_t *probe(const sy_matcher_t *m, uint64_t running, size_t key_len,
                            const char *path, size_t end)
{
    uint64_t hash = hash_finish(running, key_len);
    size_t mask = m->capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        const entry_t *e = &m->slots[i];
        if (!e->path)
            return NULL;
        if (e->hash == hash && e->len == key_len && key_equals(e->path, e->len, path, end))
            return e;
    }
}

void *sy_matcher_lookup(const sy_matcher_t *m, sy_slice_t host, sy_slice_t path,
                        size_t *matched_len)
{
    sy_slice_t bare = host.ptr ? host_bare(host) : sy_slice("", 0);
    void *best = NULL;
    size_t best_len = 0;
    if (m->has_root && domain_fits(m->root_domain, bare))
        best = m->root_value;

    /* "/orders/" is looked up as "/orders": one trailing '/' only. */
    size_t n = path.len;
    if (n > 1 && path.ptr[n - 1] == '/')
        n--;
    if (m->count > 0 && n > 1 && path.ptr[0] == '/') {
        uint64_t h = hash_step(m->seed, '/');
        size_t key_len = 1;
        bool in_parameter = false;
        for (size_t i = 1; i <= n; i++) {
            /* A prefix is a candidate where a segment ends: before a '/' or
             * at the end of the (trimmed) path. */
            if (i == n || path.ptr[i] == '/') {
                const entry_t *e = probe(m, h, key_len, path.ptr, i);
                if (e && domain_fits(e->domain, bare)) {
                    best = e->value;
                    best_len = i;
                }
                if (i == n)
                    break;
                in_parameter = false;
            } else if (!in_parameter && starts_parameter(path.ptr, n, i)) {
                in_parameter = true;
            }
            if (in_parameter)
                continue;
            /* Past the longest route path no probe can hit any more. */
            if (key_len == m->max_len)
                break;
            h = hash_step(h, (unsigned char)path.ptr[i]);
            key_len++;
        }
    }
    if (matched_len)
        *matched_len = best ? best_len : 0;
    return best;
}
