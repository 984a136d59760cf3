/*
 * serialize.h: writes the heads switchyard sends: the request upstream, the
 * response to the client, and its own JSON error answers. This is where the
 * header rules of SPEC §5.7 and §5.9 live, as pure functions over a parsed
 * message, so they are unit-tested without sockets.
 * Thread: any; no shared state. Pointers: nothing is retained.
 */
#ifndef SY_HTTP_SERIALIZE_H
#define SY_HTTP_SERIALIZE_H

#include "core/common.h"
#include "http/parser.h"

typedef struct {
    sy_slice_t name;
    sy_slice_t value;
} sy_header_pair_t;

typedef struct {
    sy_slice_t host_header; /* Host sent upstream */
    sy_slice_t base;        /* target base path ("" or "/prod") */
    /* request path, or its rest after the root with strip_prefix
     * (sy_decide_forward_path), without the query: the request line's
     * target is base + path + "?" + req->query when req->has_query. */
    sy_slice_t path;
    sy_slice_t client_ip; /* appended to X-Forwarded-For */
    sy_slice_t proto;     /* "http" or "https": X-Forwarded-Proto */
    /* X-Request-Id switchyard chose (the client sent none, or one that was
     * not well-formed): it replaces any client copy. Empty: keep the client's. */
    sy_slice_t request_id;
    /* Client headers dropped besides the hop-by-hop ones (forward_claims
     * targets, x-apigw-api-id). Matched with sy_header_name_equiv: every
     * spelling a CGI-style backend reads as the same name is dropped. */
    const sy_slice_t *drop;
    size_t drop_count;
    /* Headers added by switchyard (x-apigw-api-id, forward_claims values).
     * The client's copies of these names (any equivalent spelling) are
     * dropped too, so the backend sees switchyard's value alone. */
    const sy_header_pair_t *add;
    size_t add_count;
} sy_forward_request_t;

/* A client X-Request-Id switchyard keeps (logs, echoes, forwards): 1 to 64
 * bytes of letters, digits and - _ . : / + = @. */
bool sy_http_request_id_well_formed(sy_slice_t value);

/*
 * Writes the upstream request head: "METHOD base+path[?query] HTTP/1.1",
 * Host, every client header except the hop-by-hop ones, those named in
 * Connection, Expect (switchyard answers 100-continue itself), `drop` and
 * the names in `add` (all matched as sy_header_name_equiv does);
 * X-Forwarded-For (client's value + ", " + client_ip, multiple client lines
 * merged in order), X-Forwarded-Proto, X-Forwarded-Host (the client's Host),
 * X-Request-Id (fw->request_id, else the client's first well-formed line
 * alone, even when Connection names it), `add`, then the framing for req->body_kind
 * (Content-Length: N or Transfer-Encoding: chunked).
 * Returns the length written, or 0 when it does not fit in cap.
 */
size_t sy_http_write_request_head(char *out, size_t cap, const sy_http_request_t *req,
                                  const sy_forward_request_t *fw);

typedef enum {
    SY_FRAME_NONE = 0, /* no body (HEAD, 204, 304) */
    SY_FRAME_LENGTH,   /* Content-Length: length */
    SY_FRAME_CHUNKED,  /* Transfer-Encoding: chunked (switchyard re-chunks) */
    SY_FRAME_CLOSE     /* body until the connection closes (HTTP/1.0 client) */
} sy_frame_t;

typedef struct {
    sy_frame_t frame;
    uint64_t length;  /* with SY_FRAME_LENGTH */
    bool keep_alive;  /* the client connection stays open after */
    int client_minor; /* the client's HTTP minor version */
    /* X-Request-Id for the client, replacing any upstream copy so the
     * answer carries exactly the id logged; empty: upstream's passes. */
    sy_slice_t request_id;
} sy_forward_response_t;

/* Writes the response head for the client: the status line (always
 * HTTP/1.1), every upstream header except the hop-by-hop ones and those
 * named in Connection, the framing, and Connection: close (or keep-alive for
 * an HTTP/1.0 client) as fw says. Returns the length, or 0 if it won't fit. */
size_t sy_http_write_response_head(char *out, size_t cap, const sy_http_response_t *resp,
                                   const sy_forward_response_t *fw);

/* Writes a complete response made by switchyard: JSON {"message": ...},
 * Content-Type application/json, Content-Length, Connection: close when
 * `close`, and `extra` (already "Name: value\r\n" lines, may be NULL), e.g.
 * Allow, WWW-Authenticate, Retry-After. head_only: omit the body (HEAD). */
size_t sy_http_write_error(char *out, size_t cap, int status, const char *message, bool close,
                           const char *extra, bool head_only);

/* The same answer for the request path, where nothing is formatted or
 * measured: the message as a slice (ptr NULL: the reason phrase) and the
 * extra headers as name/value pairs, each written "Name: value\r\n" after
 * Content-Length (e.g. WWW-Authenticate, Retry-After, X-Request-Id, Allow). */
size_t sy_http_write_answer(char *out, size_t cap, int status, sy_slice_t message, bool close,
                            const sy_header_pair_t *extra, size_t extra_count, bool head_only);

/* Standard reason phrase ("Not Found"); "Unknown" for others. */
const char *sy_http_reason(int status);

#endif
