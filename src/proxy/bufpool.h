/*
 * bufpool.h: a per-worker cache of memory blocks by size, so receive
 * buffers and request state go back to their worker when a connection
 * goes idle and come out again for the next request without malloc.
 * Thread: a pool belongs to one worker and is used only from its loop (no
 * lock). Pointers: a block from sy_bufpool_get is the caller's until it is
 * handed back with sy_bufpool_put (with the size it was asked for);
 * sy_bufpool_clear frees what the pool holds, never blocks still out.
 */
#ifndef SY_PROXY_BUFPOOL_H
#define SY_PROXY_BUFPOOL_H

#include <stddef.h>

/* Sizes kept at once: a client buffer (plain and TLS, whose size follows
 * the policy's head limits), an upstream buffer, one spare for a policy
 * change. A block of any other size is simply freed when put back. */
#define SY_BUFPOOL_CLASSES 4

typedef struct {
    size_t size;  /* 0: unused */
    void *free;   /* blocks, linked through their first word */
    size_t count; /* blocks in `free` */
} sy_bufpool_class_t;

typedef struct {
    sy_bufpool_class_t classes[SY_BUFPOOL_CLASSES];
    size_t max_free; /* blocks kept per size; more are freed */
} sy_bufpool_t;

/* An empty pool keeping at most max_free blocks of each size. */
void sy_bufpool_init(sy_bufpool_t *p, size_t max_free);
/* A block of `size` bytes (>= sizeof(void *)), uninitialised: a cached one
 * when there is one, else malloc'd. NULL when out of memory. */
void *sy_bufpool_get(sy_bufpool_t *p, size_t size);
/* Hands back a block from sy_bufpool_get(p, size); NULL is ignored. */
void sy_bufpool_put(sy_bufpool_t *p, void *block, size_t size);
/* Blocks of `size` the pool holds now. */
size_t sy_bufpool_cached(const sy_bufpool_t *p, size_t size);
/* Frees every cached block; the pool stays usable. */
void sy_bufpool_clear(sy_bufpool_t *p);

#endif
