/*
 * bufpool.c: size-classed free lists. An idle connection gives its buffers
 * back here, so memory follows the requests in flight, not the connections
 * open (nginx and H2O do the same). The classes are exact sizes, not
 * powers of two: a worker uses two or three sizes, and rounding up would
 * only waste the tail of every buffer. When the policy's limits change the
 * client buffer size, a class that has run empty is taken over by the new
 * size, so the old one fades out as its blocks come back and are freed.
 */
#include <stdlib.h>

#include "proxy/bufpool.h"

void sy_bufpool_init(sy_bufpool_t *p, size_t max_free)
{
    for (size_t i = 0; i < SY_BUFPOOL_CLASSES; i++)
        p->classes[i] = (sy_bufpool_class_t){0};
    p->max_free = max_free;
}

static sy_bufpool_class_t *find_class(sy_bufpool_t *p, size_t size)
{
    for (size_t i = 0; i < SY_BUFPOOL_CLASSES; i++)
        if (p->classes[i].size == size)
            return &p->classes[i];
    return NULL;
}

void *sy_bufpool_get(sy_bufpool_t *p, size_t size)
{
    if (size < sizeof(void *))
        size = sizeof(void *);
    sy_bufpool_class_t *c = find_class(p, size);
    if (c && c->free) {
        void *block = c->free;
        c->free = *(void **)block;
        c->count--;
        return block;
    }
    return malloc(size);
}

void sy_bufpool_put(sy_bufpool_t *p, void *block, size_t size)
{
    if (!block)
        return;
    if (size < sizeof(void *))
        size = sizeof(void *);
    sy_bufpool_class_t *c = find_class(p, size);
    if (!c) {
        /* A new size takes over a class that holds nothing. */
        for (size_t i = 0; i < SY_BUFPOOL_CLASSES && !c; i++)
            if (p->classes[i].count == 0)
                c = &p->classes[i];
        if (c)
            c->size = size;
    }
    if (!c || c->count >= p->max_free) {
        free(block);
        return;
    }
    *(void **)block = c->free;
    c->free = block;
    c->count++;
}

size_t sy_bufpool_cached(const sy_bufpool_t *p, size_t size)
{
    if (size < sizeof(void *))
        size = sizeof(void *);
    for (size_t i = 0; i < SY_BUFPOOL_CLASSES; i++)
        if (p->classes[i].size == size)
            return p->classes[i].count;
    return 0;
}

void sy_bufpool_clear(sy_bufpool_t *p)
{
    for (size_t i = 0; i < SY_BUFPOOL_CLASSES; i++) {
        sy_bufpool_class_t *c = &p->classes[i];
        while (c->free) {
            void *next = *(void **)c->free;
            free(c->free);
            c->free = next;
        }
        *c = (sy_bufpool_class_t){0};
    }
}
