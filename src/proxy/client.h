/*
 * client.h: client connections (client.c): accepting them, draining and
 * closing them. A client sequences its requests' phases (parse, decide,
 * auth, forward through an upstream.h exchange, log) and owns its
 * connection object, its borrowed receive buffer and request state; the
 * structs are private to client.c.
 * Thread: the worker thread that owns the client, from its loop only.
 * Pointers: nothing returned outlives the call.
 */
#ifndef SY_PROXY_CLIENT_H
#define SY_PROXY_CLIENT_H

#include <stdbool.h>

#include "proxy/worker.h"

/* Takes ownership of fd, a connected socket accept4()ed by the worker. */
void sy_client_accept(sy_worker_t *w, int fd, bool tls);
/* Closes the worker's clients waiting for a request with nothing buffered. */
void sy_client_drain_idle(sy_worker_t *w);
void sy_client_close_all(sy_worker_t *w);
/* Frees the request states on the worker's free list (the worker's end,
 * once every client is gone). */
void sy_client_free_requests(sy_worker_t *w);

#endif
