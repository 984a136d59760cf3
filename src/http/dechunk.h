/*
 * dechunk.h: decoding a chunked body in place in a receive buffer, for
 * both directions of the proxy (a client's request body, an upstream's
 * response body): the data moves down over its framing, which is dropped.
 * Thread: any (pure over the caller's buffer and decoder). Pointers: none
 * kept.
 */
#ifndef SY_HTTP_DECHUNK_H
#define SY_HTTP_DECHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http/parser.h"

/* Decodes the chunked bytes in buf[from, *end) in place: body data moves
 * down to start at `from` (decoded bytes never outgrow encoded ones), the
 * framing is dropped, and bytes after the body's end (the next message)
 * follow the data. Returns the data length, or -1 with *reject set; *done
 * when the last chunk and trailers were read. */
ssize_t sy_http_dechunk_in_place(sy_http_chunked_t *dec, char *buf, size_t from, size_t *end,
                                 bool *done, sy_http_reject_t *reject);

#endif
