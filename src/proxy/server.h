/*
 * server.h: the data plane as main sees it: N worker threads, each an
 * event loop with its own SO_REUSEPORT listener per address, and graceful
 * draining.
 * Thread: main only. Pointers: the config is copied.
 */
#ifndef SY_PROXY_SERVER_H
#define SY_PROXY_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"

#define SY_MAX_LISTEN 16

typedef struct {
    const char *listen[SY_MAX_LISTEN]; /* "ADDR:PORT" or "[v6]:PORT" */
    size_t listen_count;
    const char *tls_listen[SY_MAX_LISTEN]; /* HTTPS listeners (sy_tls_server_load first) */
    size_t tls_listen_count;
    int workers;
} sy_server_config_t;

/* Binds every listener (once per worker) and starts the workers. */
bool sy_server_start(const sy_server_config_t *cfg, sy_error_t *err);

/* Stops accepting, closes idle connections, lets in-flight requests finish
 * (their connections close after the response). Returns when all workers
 * are idle or after timeout_s, closing what is left. */
void sy_server_drain(double timeout_s);

/* Parses "ADDR:PORT" / "[v6]:PORT" into a sockaddr. */
struct sockaddr_storage;
bool sy_parse_listen(const char *text, struct sockaddr_storage *out, sy_error_t *err);

#endif
