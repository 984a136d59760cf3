/*
 * domains.c: listen domains in an open-addressing hash table. Exact names
 * and wildcards ("*.a.b", stored by their domain "a.b") share one table
 * with a flag, so a lookup is at most two probes: the host itself, then the
 * host without its first label as a wildcard domain. That is the whole
 * wildcard rule: "*.a.b" matches exactly one more label.
 *
 * Keys are hashed without case (FNV-1a over lower-cased bytes with a random
 * per-set seed and a final mix, as in matcher.c): the names come from the
 * policy document, the hosts from clients, and a seed keeps a client from
 * aiming at one chain.
 */
#include "route/domains.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct {
    const char *name; /* NULL: empty slot; the domain part for a wildcard */
    size_t len;
    uint64_t hash;
    size_t index;
    bool wildcard;
} slot_t;

struct sy_domain_set {
    slot_t *slots;
    size_t capacity; /* a power of two, at least twice the count */
    size_t count;
    uint64_t seed;
};

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static uint64_t hash_name(uint64_t seed, sy_slice_t s, bool wildcard)
{
    uint64_t h = seed ^ (wildcard ? 0x9e3779b97f4a7c15ULL : 0);
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ lower((unsigned char)s.ptr[i])) * 0x100000001b3ULL;
    h ^= (uint64_t)s.len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&ts;
    }
    return seed ^ 0xcbf29ce484222325ULL;
}

sy_domain_set_t *sy_domain_set_new(size_t expected_names)
{
    sy_domain_set_t *set = calloc(1, sizeof *set);
    if (!set)
        return NULL;
    size_t cap = 16;
    while (cap < expected_names * 2 && cap < (SIZE_MAX >> 2))
        cap <<= 1;
    set->slots = calloc(cap, sizeof *set->slots);
    if (!set->slots) {
        free(set);
        return NULL;
    }
    set->capacity = cap;
    set->seed = random_seed();
    return set;
}

void sy_domain_set_free(sy_domain_set_t *set)
{
    if (!set)
        return;
    free(set->slots);
    free(set);
}

/* The slot holding (name, wildcard), or the empty slot where it would go. */
static slot_t *find(slot_t *slots, size_t capacity, uint64_t hash, sy_slice_t name, bool wildcard)
{
    size_t mask = capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        slot_t *s = &slots[i];
        if (!s->name)
            return s;
        if (s->hash == hash && s->wildcard == wildcard && s->len == name.len &&
            sy_slice_eq_nocase(sy_slice(s->name, s->len), name))
            return s;
    }
}

static bool grow(sy_domain_set_t *set)
{
    size_t capacity = set->capacity * 2;
    slot_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < set->capacity; i++) {
        slot_t *s = &set->slots[i];
        if (s->name)
            *find(slots, capacity, s->hash, sy_slice(s->name, s->len), s->wildcard) = *s;
    }
    free(set->slots);
    set->slots = slots;
    set->capacity = capacity;
    return true;
}

bool sy_domain_set_add(sy_domain_set_t *set, const char *name, size_t index, size_t *duplicate_of)
{
    *duplicate_of = SIZE_MAX;
    bool wildcard = name[0] == '*' && name[1] == '.';
    sy_slice_t key = sy_slice_cstr(wildcard ? name + 2 : name);
    if ((set->count + 1) * 2 > set->capacity && !grow(set))
        return false;
    uint64_t hash = hash_name(set->seed, key, wildcard);
    slot_t *s = find(set->slots, set->capacity, hash, key, wildcard);
    if (s->name) {
        *duplicate_of = s->index;
        return false;
    }
    *s = (slot_t){key.ptr, key.len, hash, index, wildcard};
    set->count++;
    return true;
}

static bool has(const sy_domain_set_t *set, sy_slice_t key, bool wildcard)
{
    uint64_t hash = hash_name(set->seed, key, wildcard);
    return find(set->slots, set->capacity, hash, key, wildcard)->name != NULL;
}

bool sy_domain_set_contains(const sy_domain_set_t *set, sy_slice_t host)
{
    if (!set || host.len == 0)
        return false;
    if (has(set, host, false))
        return true;
    const char *dot = memchr(host.ptr, '.', host.len);
    /* The wildcard's label must be a real one: ".a.b" is not "x.a.b". */
    if (!dot || dot == host.ptr)
        return false;
    size_t skip = (size_t)(dot - host.ptr) + 1;
    return skip < host.len && has(set, sy_slice(dot + 1, host.len - skip), true);
}
