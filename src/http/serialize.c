/*
 * serialize.c: the heads switchyard writes (SPEC §5.7, §5.9, §5.10): the
 * request it sends upstream, the response head it sends the client, and
 * its own JSON error answers.
 *
 * The header rules are decided per header by its interned id (headers.h):
 * hop-by-hop and framing headers never cross a hop, Host and the
 * X-Forwarded-* trio are switchyard's to write, and a header named by a
 * Connection field is hop-by-hop for that message (RFC 9110 §7.6.1). A
 * name dropped or set by name is matched the way a CGI-style backend reads
 * it (case and '_' vs '-' ignored, sy_header_name_equiv). Every
 * other header is copied in the order received, so the backend sees what
 * the client sent. Output goes into a caller's fixed buffer; a head that
 * does not fit is an error (0), never a truncated head.
 */
#include "http/serialize.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    char *out;
    size_t cap;
    size_t len;
    bool overflow;
} writer_t;

static void put(writer_t *w, const char *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n)
        memcpy(w->out + w->len, p, n);
    w->len += n;
}

static void put_slice(writer_t *w, sy_slice_t s)
{
    put(w, s.ptr, s.len);
}

/* A string literal, its length known at compile time: the heads are
 * written per request, so nothing here runs strlen or snprintf. */
#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static void put_u64(writer_t *w, uint64_t v)
{
    char num[SY_FMT_U64_MAX];
    put(w, num, sy_fmt_u64(num, v));
}

/* A status code as "%03d" writes it: three digits for every real one. */
static void put_status(writer_t *w, int status)
{
    if (status >= 0 && status <= 999) {
        char d[3] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                     (char)('0' + status % 10)};
        put(w, d, 3);
    } else if (status > 999) {
        put_u64(w, (uint64_t)status);
    } else {
        char num[16]; /* nonsense from a caller: the cold path may format */
        int n = snprintf(num, sizeof num, "%03d", status);
        put(w, num, (size_t)n);
    }
}

static sy_slice_t reason_slice(int status);

static void put_header(writer_t *w, sy_slice_t name, sy_slice_t value)
{
    put_slice(w, name);
    put(w, ": ", 2);
    put_slice(w, value);
    put(w, "\r\n", 2);
}

static size_t finish(const writer_t *w)
{
    return w->overflow ? 0 : w->len;
}

/* --- Connection-named headers ------------------------------------------ */

/* The tokens of every Connection field of a message. Kept in a small fixed
 * array; a message naming more than fit is checked by rescanning the
 * Connection fields instead, so nothing is ever forwarded by mistake. */
#define MAX_CONNECTION_TOKENS 32

typedef struct {
    sy_slice_t tokens[MAX_CONNECTION_TOKENS];
    size_t count;
    bool overflow;
    const sy_http_header_t *headers;
    size_t header_count;
} connection_names_t;

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Calls back for every non-empty comma-separated token of value; stops and
 * returns true when the callback does. */
static bool each_token(sy_slice_t value, bool (*fn)(sy_slice_t token, void *ctx), void *ctx)
{
    size_t i = 0;
    while (i < value.len) {
        size_t start = i;
        while (i < value.len && value.ptr[i] != ',')
            i++;
        size_t end = i;
        while (start < end && is_ows(value.ptr[start]))
            start++;
        while (end > start && is_ows(value.ptr[end - 1]))
            end--;
        if (end > start && fn(sy_slice(value.ptr + start, end - start), ctx))
            return true;
        i++; /* past the comma */
    }
    return false;
}

static bool collect_token(sy_slice_t token, void *ctx)
{
    connection_names_t *cn = ctx;
    if (cn->count == MAX_CONNECTION_TOKENS) {
        cn->overflow = true;
        return true;
    }
    cn->tokens[cn->count++] = token;
    return false;
}

static void connection_names_init(connection_names_t *cn, const sy_http_header_t *headers,
                                  size_t count)
{
    memset(cn, 0, sizeof *cn);
    cn->headers = headers;
    cn->header_count = count;
    for (size_t i = 0; i < count && !cn->overflow; i++)
        if (headers[i].id == SY_HDR_CONNECTION)
            each_token(headers[i].value, collect_token, cn);
}

static bool token_is_name(sy_slice_t token, void *ctx)
{
    return sy_header_name_equiv(token, *(const sy_slice_t *)ctx);
}

static bool connection_names(const connection_names_t *cn, sy_slice_t name)
{
    if (!cn->overflow) {
        for (size_t i = 0; i < cn->count; i++)
            if (sy_header_name_equiv(cn->tokens[i], name))
                return true;
        return false;
    }
    for (size_t i = 0; i < cn->header_count; i++)
        if (cn->headers[i].id == SY_HDR_CONNECTION &&
            each_token(cn->headers[i].value, token_is_name, &name))
            return true;
    return false;
}

/* --- Request upstream --------------------------------------------------- */

/* A name switchyard drops or sets itself: the client's copy goes, under
 * every spelling a CGI-style backend folds to the same variable, or the
 * backend would see "admin,bob" for a claim switchyard vouches for. */
static bool set_or_dropped_by_us(const sy_forward_request_t *fw, sy_slice_t name)
{
    for (size_t i = 0; i < fw->drop_count; i++)
        if (sy_header_name_equiv(fw->drop[i], name))
            return true;
    for (size_t i = 0; i < fw->add_count; i++)
        if (sy_header_name_equiv(fw->add[i].name, name))
            return true;
    return false;
}

bool sy_http_request_id_well_formed(sy_slice_t v)
{
    if (v.len == 0 || v.len > 64)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.ptr[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch && strchr("-_.:/+=@", ch))))
            return false;
    }
    return true;
}

/* Whether a client header is dropped from the upstream request (and, for
 * X-Forwarded-For, from the merged value). */
static bool request_header_dropped(const sy_http_header_t *h, const connection_names_t *cn,
                                   const sy_forward_request_t *fw)
{
    if (sy_header_flags(h->id) & (SY_HDR_FLAG_HOP_BY_HOP | SY_HDR_FLAG_FRAMING))
        return true;
    switch (h->id) {
    case SY_HDR_HOST:
    case SY_HDR_EXPECT:
    case SY_HDR_X_FORWARDED_PROTO:
    case SY_HDR_X_FORWARDED_HOST:
        return true;
    default:
        break;
    }
    return connection_names(cn, h->name) || set_or_dropped_by_us(fw, h->name);
}

size_t sy_http_write_request_head(char *out, size_t cap, const sy_http_request_t *req,
                                  const sy_forward_request_t *fw)
{
    writer_t w = {out, cap, 0, false};
    connection_names_t cn;
    connection_names_init(&cn, req->headers, req->header_count);

    put_slice(&w, req->method);
    put(&w, " ", 1);
    if (fw->base.len + fw->path.len == 0)
        put(&w, "/", 1);
    put_slice(&w, fw->base);
    put_slice(&w, fw->path);
    if (req->has_query) {
        put(&w, "?", 1);
        put_slice(&w, req->query);
    }
    PUT_LIT(&w, " HTTP/1.1\r\n");

    bool has_request_id = false;
    for (size_t i = 0; i < req->header_count; i++) {
        const sy_http_header_t *h = &req->headers[i];
        /* Exactly one X-Request-Id goes upstream, the one switchyard logs
         * and echoes: its own, or else the client's first well-formed one
         * (the choice the client phase made). Another client line, even a
         * malformed one, would reach the backend beside it. End to end, so
         * a Connection field naming it does not drop it. */
        if (h->id == SY_HDR_X_REQUEST_ID) {
            if (fw->request_id.len || has_request_id || !sy_http_request_id_well_formed(h->value))
                continue;
            has_request_id = true;
            put_header(&w, h->name, h->value);
            continue;
        }
        if (request_header_dropped(h, &cn, fw) || h->id == SY_HDR_X_FORWARDED_FOR)
            continue;
        put_header(&w, h->name, h->value);
    }

    put_header(&w, SY_SLICE_LIT("Host"), fw->host_header);

    /* X-Forwarded-For: every client value in order, then the peer. */
    bool xff_started = false;
    for (size_t i = 0; i < req->header_count; i++) {
        const sy_http_header_t *h = &req->headers[i];
        if (h->id != SY_HDR_X_FORWARDED_FOR || h->value.len == 0 ||
            request_header_dropped(h, &cn, fw))
            continue;
        if (xff_started)
            PUT_LIT(&w, ", ");
        else
            PUT_LIT(&w, "X-Forwarded-For: ");
        put_slice(&w, h->value);
        xff_started = true;
    }
    if (fw->client_ip.len) {
        if (xff_started)
            PUT_LIT(&w, ", ");
        else
            PUT_LIT(&w, "X-Forwarded-For: ");
        put_slice(&w, fw->client_ip);
        xff_started = true;
    }
    if (xff_started)
        put(&w, "\r\n", 2);

    if (fw->proto.len)
        put_header(&w, SY_SLICE_LIT("X-Forwarded-Proto"), fw->proto);
    if (req->host.len)
        put_header(&w, SY_SLICE_LIT("X-Forwarded-Host"), req->host);
    if (!has_request_id && fw->request_id.len)
        put_header(&w, SY_SLICE_LIT("X-Request-Id"), fw->request_id);
    for (size_t i = 0; i < fw->add_count; i++)
        put_header(&w, fw->add[i].name, fw->add[i].value);

    if (req->body_kind == SY_BODY_LENGTH) {
        PUT_LIT(&w, "Content-Length: ");
        put_u64(&w, req->content_length);
        put(&w, "\r\n", 2);
    } else if (req->body_kind == SY_BODY_CHUNKED) {
        PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
    }
    put(&w, "\r\n", 2);
    return finish(&w);
}

/* --- Response to the client --------------------------------------------- */

size_t sy_http_write_response_head(char *out, size_t cap, const sy_http_response_t *resp,
                                   const sy_forward_response_t *fw)
{
    writer_t w = {out, cap, 0, false};
    connection_names_t cn;
    connection_names_init(&cn, resp->headers, resp->header_count);

    PUT_LIT(&w, "HTTP/1.1 ");
    put_status(&w, resp->status);
    put(&w, " ", 1);
    if (resp->reason.len)
        put_slice(&w, resp->reason);
    else
        put_slice(&w, reason_slice(resp->status));
    put(&w, "\r\n", 2);

    const sy_http_header_t *content_length = NULL;
    for (size_t i = 0; i < resp->header_count; i++) {
        const sy_http_header_t *h = &resp->headers[i];
        if (h->id == SY_HDR_CONTENT_LENGTH && !content_length)
            content_length = h;
        if (sy_header_flags(h->id) & (SY_HDR_FLAG_HOP_BY_HOP | SY_HDR_FLAG_FRAMING))
            continue;
        if (connection_names(&cn, h->name))
            continue;
        if (h->id == SY_HDR_X_REQUEST_ID && fw->request_id.len)
            continue;
        put_header(&w, h->name, h->value);
    }
    if (fw->request_id.len)
        put_header(&w, SY_SLICE_LIT("X-Request-Id"), fw->request_id);

    switch (fw->frame) {
    case SY_FRAME_LENGTH:
        PUT_LIT(&w, "Content-Length: ");
        put_u64(&w, fw->length);
        put(&w, "\r\n", 2);
        break;
    case SY_FRAME_CHUNKED:
        PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
        break;
    case SY_FRAME_NONE:
        /* No body follows, but a HEAD or 304 answer's Content-Length tells
         * the size the body would have (RFC 9110 §8.6), so it is kept. A
         * 1xx or 204 must not carry one. */
        if (content_length && resp->status >= 200 && resp->status != 204)
            put_header(&w, content_length->name, content_length->value);
        break;
    case SY_FRAME_CLOSE:
        break;
    }
    if (!fw->keep_alive)
        PUT_LIT(&w, "Connection: close\r\n");
    else if (fw->client_minor == 0)
        PUT_LIT(&w, "Connection: keep-alive\r\n");
    put(&w, "\r\n", 2);
    return finish(&w);
}

/* --- switchyard's own answers ------------------------------------------- */

/* The answer with its message and extra lines as slices: the one writer
 * behind both entry points below. */
static size_t write_answer(char *out, size_t cap, int status, sy_slice_t text, bool close,
                           sy_slice_t extra_lines, const sy_header_pair_t *extra,
                           size_t extra_count, bool head_only)
{
    writer_t w = {out, cap, 0, false};
    static const char open[] = "{\"message\":\"", shut[] = "\"}";
    size_t escaped = sy_json_escape(NULL, 0, text);
    size_t body_len = sizeof open - 1 + escaped + sizeof shut - 1;

    PUT_LIT(&w, "HTTP/1.1 ");
    put_status(&w, status);
    put(&w, " ", 1);
    put_slice(&w, reason_slice(status));
    PUT_LIT(&w, "\r\nContent-Type: application/json\r\nContent-Length: ");
    put_u64(&w, body_len);
    put(&w, "\r\n", 2);
    put_slice(&w, extra_lines);
    for (size_t i = 0; i < extra_count; i++)
        put_header(&w, extra[i].name, extra[i].value);
    if (close)
        PUT_LIT(&w, "Connection: close\r\n");
    put(&w, "\r\n", 2);
    if (!head_only) {
        put(&w, open, sizeof open - 1);
        if (!w.overflow && escaped <= w.cap - w.len) {
            sy_json_escape(w.out + w.len, escaped, text);
            w.len += escaped;
        } else {
            w.overflow = true;
        }
        put(&w, shut, sizeof shut - 1);
    }
    return finish(&w);
}

size_t sy_http_write_error(char *out, size_t cap, int status, const char *message, bool close,
                           const char *extra, bool head_only)
{
    sy_slice_t text = message ? sy_slice_cstr(message) : reason_slice(status);
    return write_answer(out, cap, status, text, close, sy_slice_cstr(extra), NULL, 0, head_only);
}

size_t sy_http_write_answer(char *out, size_t cap, int status, sy_slice_t message, bool close,
                            const sy_header_pair_t *extra, size_t extra_count, bool head_only)
{
    sy_slice_t text = message.ptr ? message : reason_slice(status);
    return write_answer(out, cap, status, text, close, sy_slice(NULL, 0), extra, extra_count,
                        head_only);
}

#define REASON(code, text)                                                                         \
    {                                                                                              \
        code, SY_SLICE_LIT(text)                                                                   \
    }
static const struct {
    int status;
    sy_slice_t reason;
} reasons[] = {
    REASON(100, "Continue"),
    REASON(101, "Switching Protocols"),
    REASON(200, "OK"),
    REASON(201, "Created"),
    REASON(202, "Accepted"),
    REASON(203, "Non-Authoritative Information"),
    REASON(204, "No Content"),
    REASON(205, "Reset Content"),
    REASON(206, "Partial Content"),
    REASON(300, "Multiple Choices"),
    REASON(301, "Moved Permanently"),
    REASON(302, "Found"),
    REASON(303, "See Other"),
    REASON(304, "Not Modified"),
    REASON(307, "Temporary Redirect"),
    REASON(308, "Permanent Redirect"),
    REASON(400, "Bad Request"),
    REASON(401, "Unauthorized"),
    REASON(402, "Payment Required"),
    REASON(403, "Forbidden"),
    REASON(404, "Not Found"),
    REASON(405, "Method Not Allowed"),
    REASON(406, "Not Acceptable"),
    REASON(407, "Proxy Authentication Required"),
    REASON(408, "Request Timeout"),
    REASON(409, "Conflict"),
    REASON(410, "Gone"),
    REASON(411, "Length Required"),
    REASON(412, "Precondition Failed"),
    REASON(413, "Content Too Large"),
    REASON(414, "URI Too Long"),
    REASON(415, "Unsupported Media Type"),
    REASON(416, "Range Not Satisfiable"),
    REASON(417, "Expectation Failed"),
    REASON(421, "Misdirected Request"),
    REASON(422, "Unprocessable Content"),
    REASON(425, "Too Early"),
    REASON(426, "Upgrade Required"),
    REASON(428, "Precondition Required"),
    REASON(429, "Too Many Requests"),
    REASON(431, "Request Header Fields Too Large"),
    REASON(500, "Internal Server Error"),
    REASON(501, "Not Implemented"),
    REASON(502, "Bad Gateway"),
    REASON(503, "Service Unavailable"),
    REASON(504, "Gateway Timeout"),
    REASON(505, "HTTP Version Not Supported"),
};

static sy_slice_t reason_slice(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return SY_SLICE_LIT("Unknown");
}

const char *sy_http_reason(int status)
{
    return reason_slice(status).ptr;
}
