/*
 * parser.h: strict HTTP/1.1 message parsing (RFC 9112) as pure functions
 * with no I/O: request heads, response heads, chunked bodies. Every rejection
 * has a named reason so tests, logs and metrics can tell them apart. Nothing
 * ambiguous is ever accepted: the parser refuses rather than guesses.
 * Head parsing resumes where the previous call stopped (sy_http_head_state_t),
 * so a head that arrives in many reads costs one pass over its bytes.
 * Thread: any; no shared state (a head state belongs to its caller).
 * Pointers: every slice in a parsed message points into the caller's input
 * buffer and lives as long as it does.
 */
#ifndef SY_HTTP_PARSER_H
#define SY_HTTP_PARSER_H

#include "core/common.h"
#include "http/headers.h"

/* Hard upper bound of headers per message; the policy's max_headers may be
 * lower, never higher. */
#define SY_HTTP_MAX_HEADERS 256

typedef struct {
    size_t max_request_line_bytes; /* 414 past it */
    size_t max_header_bytes;       /* 431 past it: the whole head after the request line */
    size_t max_headers;            /* 431 past it; <= SY_HTTP_MAX_HEADERS */
    uint64_t max_body_bytes;       /* 413 past it (Content-Length checked by the parser) */
} sy_http_limits_t;

typedef enum {
    SY_HTTP_OK = 0,     /* a complete head was parsed */
    SY_HTTP_INCOMPLETE, /* valid so far; call again with more bytes */
    SY_HTTP_ERROR       /* rejected: see the reason */
} sy_http_status_t;

/* Named rejection reasons. sy_http_reject_name() gives a stable snake_case
 * name for logs and tests; sy_http_reject_status() the HTTP status. */
typedef enum {
    SY_REJECT_NONE = 0,
    SY_REJECT_BARE_CR,
    SY_REJECT_BARE_LF,
    SY_REJECT_CONTROL_BYTE,          /* NUL or another control byte where none may be */
    SY_REJECT_BAD_METHOD,            /* not a token */
    SY_REJECT_CONNECT_METHOD,        /* CONNECT: authority-form is not served */
    SY_REJECT_BAD_TARGET,            /* not origin-form, or disallowed byte in it */
    SY_REJECT_ABSOLUTE_FORM,         /* http://host/... */
    SY_REJECT_ASTERISK_FORM,         /* * */
    SY_REJECT_BAD_REQUEST_LINE,      /* wrong spacing, missing parts */
    SY_REJECT_BAD_VERSION,           /* HTTP/0.9, HTTP/2.0, malformed version */
    SY_REJECT_REQUEST_LINE_TOO_LONG, /* 414 */
    SY_REJECT_BAD_HEADER_NAME,       /* not a token, empty */
    SY_REJECT_SPACE_BEFORE_COLON,
    SY_REJECT_MISSING_COLON,
    SY_REJECT_BAD_HEADER_VALUE,  /* control or other disallowed byte in a value */
    SY_REJECT_OBS_FOLD,          /* a header line starting with SP/HTAB */
    SY_REJECT_HEADERS_TOO_LARGE, /* 431 */
    SY_REJECT_TOO_MANY_HEADERS,  /* 431 */
    SY_REJECT_MISSING_HOST,
    SY_REJECT_DUPLICATE_HOST,
    SY_REJECT_BAD_HOST,           /* Host value is not host[:port] */
    SY_REJECT_BAD_CONTENT_LENGTH, /* not 1*DIGIT, overflow */
    SY_REJECT_DUPLICATE_CONTENT_LENGTH,
    SY_REJECT_CONTENT_LENGTH_WITH_TE,
    SY_REJECT_BAD_TRANSFER_ENCODING, /* anything but a single final "chunked" */
    SY_REJECT_TE_IN_HTTP10,
    SY_REJECT_BODY_TOO_LARGE, /* 413 */
    SY_REJECT_EXPECTATION,    /* Expect other than 100-continue: 417 */
    SY_REJECT_BAD_CHUNK_SIZE,
    SY_REJECT_CHUNK_SIZE_OVERFLOW,
    SY_REJECT_BAD_CHUNK_EXTENSION,
    SY_REJECT_BAD_CHUNK_DATA_END, /* chunk data not followed by CRLF */
    SY_REJECT_BAD_TRAILER,
    SY_REJECT_BAD_STATUS_LINE, /* responses */
    SY_REJECT_BAD_STATUS_CODE, /* responses */
    SY_REJECT__COUNT
} sy_http_reject_t;

const char *sy_http_reject_name(sy_http_reject_t reason);
/* 400, 413, 414, 417 or 431. */
int sy_http_reject_status(sy_http_reject_t reason);

typedef struct {
    sy_slice_t name;
    sy_slice_t value; /* leading/trailing OWS removed */
    sy_header_id_t id;
} sy_http_header_t;

typedef enum {
    SY_BODY_NONE = 0,
    SY_BODY_LENGTH,     /* content_length bytes follow */
    SY_BODY_CHUNKED,    /* decode with sy_http_chunked_* */
    SY_BODY_UNTIL_CLOSE /* responses only: read until the upstream closes */
} sy_body_kind_t;

typedef struct {
    sy_slice_t method;
    sy_slice_t target; /* the whole request-target as received */
    sy_slice_t path;   /* target up to '?' */
    sy_slice_t query;  /* after '?', without it; valid when has_query */
    bool has_query;
    int minor_version;         /* 0 or 1 */
    sy_http_header_t *headers; /* the caller's array */
    size_t header_count;
    sy_slice_t host;          /* the Host field value (exactly one, syntax checked) */
    sy_body_kind_t body_kind; /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;  /* when body_kind == SY_BODY_LENGTH */
    bool keep_alive;          /* from version and Connection */
    bool expect_continue;     /* Expect: 100-continue */
    size_t head_len;          /* bytes of the head, through the final CRLF CRLF */
} sy_http_request_t;

/*
 * Where a head parse stands between calls, so no byte is examined twice: a
 * head that arrives one byte per read, or one line per packet, costs one pass
 * over its bytes in all, not one pass per read. The caller keeps it with the
 * message (120 bytes) and zeroes it (sy_http_head_state_reset, or a
 * memset/calloc) before the first call for each message: after a head was
 * parsed and consumed, before the next pipelined one, and after a 1xx
 * interim response. The fields are parser.c's.
 *
 * Between calls on one state the caller passes the same buffer address, the
 * same header array and the same bytes grown at their end (a read appends
 * to the buffer). A different buffer or header array, fewer bytes, or a
 * state whose message was already decided starts the parse over from the
 * first byte: correct, only not free, so a caller that moves its buffer
 * or forgets a reset gets the right verdict at the old cost.
 */
typedef struct {
    size_t pos;          /* the next byte to examine */
    size_t examined;     /* bytes examined by all calls on this state, rescans included */
    uintptr_t base;      /* the buffer address of the previous call */
    const void *headers; /* the header array of the previous call */
    size_t line_end;     /* end of the start line (CRLF included); 0 until it ended */
    size_t mark[3];      /* request: method end, '?' (0: none), target end; response: reason */
    size_t field[4];     /* the field line being read: start, name end, value start, value end */
    uint64_t content_length;
    uint32_t header_count;
    uint32_t host_index; /* the Host field line (requests) */
    uint16_t flags;
    uint16_t status; /* responses: the status code once checked */
    uint8_t phase;
    uint8_t pending; /* the reason a CR stands for when an LF follows it */
    uint8_t reject;
    uint8_t minor_version;
} sy_http_head_state_t;

/* A fresh state: the next call parses a new message from its first byte. */
static inline void sy_http_head_state_reset(sy_http_head_state_t *state)
{
    *state = (sy_http_head_state_t){0};
}

/*
 * Parses the request head at the start of buf. Call again with the same
 * buffer grown by newly received bytes and the same state: each call
 * examines only the bytes after those it already examined. state NULL parses
 * buf from its start, for one-shot callers (a complete head, or a small
 * bounded buffer). The verdict depends only on the bytes, never on how they
 * were split between calls. Errors are detected as early as the bytes allow
 * (a bare LF, an over-long request line) so a slow or hostile client cannot
 * hold a connection open by never finishing.
 * headers/headers_cap: storage for the parsed header slices.
 * On SY_HTTP_ERROR, *reject names the reason.
 */
sy_http_status_t sy_http_request_parse(sy_http_head_state_t *state, const char *buf, size_t len,
                                       const sy_http_limits_t *limits, sy_http_header_t *headers,
                                       size_t headers_cap, sy_http_request_t *req,
                                       sy_http_reject_t *reject);

typedef struct {
    int status;
    int minor_version;
    sy_slice_t reason;
    sy_http_header_t *headers;
    size_t header_count;
    sy_body_kind_t body_kind; /* NONE for HEAD requests, 1xx, 204, 304 */
    uint64_t content_length;
    bool keep_alive; /* the upstream allows reusing the connection */
    size_t head_len;
} sy_http_response_t;

/* Parses an upstream response head, as strictly as requests (a malformed
 * response becomes a 502), resuming with state like sy_http_request_parse
 * (NULL: one-shot). request_was_head: the response has no body. */
sy_http_status_t sy_http_response_parse(sy_http_head_state_t *state, const char *buf, size_t len,
                                        const sy_http_limits_t *limits, bool request_was_head,
                                        sy_http_header_t *headers, size_t headers_cap,
                                        sy_http_response_t *resp, sy_http_reject_t *reject);

/* Incremental chunked-body decoder (RFC 9112 §7.1). Chunk extensions are
 * validated and dropped; trailer fields are validated and dropped; only
 * data reaches the caller, which re-frames it for the next hop. */
typedef struct {
    int state;
    uint64_t chunk_remaining;
    size_t line_bytes;    /* bytes of the current size/extension/trailer line */
    size_t trailer_bytes; /* total trailer bytes, bounded by max_trailer_bytes */
    size_t max_trailer_bytes;
    unsigned size_digits;
} sy_http_chunked_t;

typedef enum {
    SY_CHUNKED_NEED_MORE = 0, /* all input consumed, no data in it */
    SY_CHUNKED_DATA,          /* *data is body bytes inside the input */
    SY_CHUNKED_DONE,          /* last chunk and trailers read */
    SY_CHUNKED_ERROR
} sy_chunked_result_t;

void sy_http_chunked_init(sy_http_chunked_t *dec, size_t max_trailer_bytes);
/*
 * Decodes from in[0..len). *consumed is how many input bytes were used
 * (always set). Returns DATA with *data pointing into `in` at the next run
 * of body bytes (call again with the rest), NEED_MORE when the input ran out,
 * DONE when the body ended (bytes after it are the next message), ERROR with
 * *reject set.
 */
sy_chunked_result_t sy_http_chunked_decode(sy_http_chunked_t *dec, const char *in, size_t len,
                                           size_t *consumed, sy_slice_t *data,
                                           sy_http_reject_t *reject);

#endif
