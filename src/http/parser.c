/*
 * parser.c: strict HTTP/1.1 heads and chunked bodies (RFC 9112), as pure
 * functions over the caller's bytes: no I/O, no allocation, no state kept
 * between calls of the head parsers.
 *
 * Shape: one left-to-right scan per call. An error is reported at the first
 * byte that makes the message invalid and depends only on the bytes before
 * it, so a head parsed all at once and the same head fed one byte at a time
 * give the same verdict and the same reason, and a hostile client is refused
 * as soon as its bytes allow (an over-long line is refused when the limit is
 * reached, not when the line ends). The price is that a head that arrives in
 * many small reads is rescanned from its start each time; the head is
 * bounded by the limits and by the client header timeout.
 *
 * Strictness is deliberate: switchyard sits between a CDN and private
 * backends, and any message two parsers could read differently is a request
 * smuggling or routing confusion risk. So anything the RFC lets a recipient
 * "handle" (obs-fold, bare LF, leading empty lines, CL and TE together,
 * duplicate Content-Length) is refused with a named reason instead.
 */
#include "http/parser.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- character classes ------------------------------------------------ */

#define C_TCHAR 0x01u  /* token (RFC 9110 5.6.2) */
#define C_TARGET 0x02u /* RFC 3986 pchar, "/" and "?": origin-form bytes */
#define C_VCHAR 0x04u  /* field-vchar: VCHAR or obs-text */
#define C_HOST 0x08u   /* reg-name bytes except "%" and "," */
#define C_HEX 0x10u
#define C_SCHEME 0x20u /* URI scheme bytes after the first letter */
#define C_QDTEXT 0x40u /* quoted-string text: HTAB SP and VCHAR but '"' and '\' */

static const unsigned char char_class[256] = {
    0,   0,   0,   0,   0,   0,   0,   0,   0,   64,  0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   64,  79,  4,   69,  79,  71,
    79,  79,  78,  78,  79,  111, 70,  111, 111, 70,  127, 127, 127, 127, 127, 127, 127, 127, 127,
    127, 70,  78,  68,  78,  68,  70,  70,  127, 127, 127, 127, 127, 127, 111, 111, 111, 111, 111,
    111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 68,  4,   68,  69,
    79,  69,  127, 127, 127, 127, 127, 127, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111,
    111, 111, 111, 111, 111, 111, 111, 111, 111, 68,  69,  68,  79,  0,   68,  68,  68,  68,  68,
    68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,
    68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,
    68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,
    68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,
    68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,
    68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,  68,
    68,  68,  68,  68,  68,  68,  68,  68,  68,
};

static inline bool is_class(char c, unsigned cls)
{
    return (char_class[(unsigned char)c] & cls) != 0;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool is_ctl(char c)
{
    unsigned char u = (unsigned char)c;
    return u < 0x20 || u == 0x7F;
}

static inline unsigned hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (unsigned)(c - 'a' + 10);
    return (unsigned)(c - 'A' + 10);
}

/* ---- reasons ------------------------------------------------------------ */

static const char *const reject_names[SY_REJECT__COUNT] = {
    [SY_REJECT_NONE] = "none",
    [SY_REJECT_BARE_CR] = "bare_cr",
    [SY_REJECT_BARE_LF] = "bare_lf",
    [SY_REJECT_CONTROL_BYTE] = "control_byte",
    [SY_REJECT_BAD_METHOD] = "bad_method",
    [SY_REJECT_CONNECT_METHOD] = "connect_method",
    [SY_REJECT_BAD_TARGET] = "bad_target",
    [SY_REJECT_ABSOLUTE_FORM] = "absolute_form",
    [SY_REJECT_ASTERISK_FORM] = "asterisk_form",
    [SY_REJECT_BAD_REQUEST_LINE] = "bad_request_line",
    [SY_REJECT_BAD_VERSION] = "bad_version",
    [SY_REJECT_REQUEST_LINE_TOO_LONG] = "request_line_too_long",
    [SY_REJECT_BAD_HEADER_NAME] = "bad_header_name",
    [SY_REJECT_SPACE_BEFORE_COLON] = "space_before_colon",
    [SY_REJECT_MISSING_COLON] = "missing_colon",
    [SY_REJECT_BAD_HEADER_VALUE] = "bad_header_value",
    [SY_REJECT_OBS_FOLD] = "obs_fold",
    [SY_REJECT_HEADERS_TOO_LARGE] = "headers_too_large",
    [SY_REJECT_TOO_MANY_HEADERS] = "too_many_headers",
    [SY_REJECT_MISSING_HOST] = "missing_host",
    [SY_REJECT_DUPLICATE_HOST] = "duplicate_host",
    [SY_REJECT_BAD_HOST] = "bad_host",
    [SY_REJECT_BAD_CONTENT_LENGTH] = "bad_content_length",
    [SY_REJECT_DUPLICATE_CONTENT_LENGTH] = "duplicate_content_length",
    [SY_REJECT_CONTENT_LENGTH_WITH_TE] = "content_length_with_te",
    [SY_REJECT_BAD_TRANSFER_ENCODING] = "bad_transfer_encoding",
    [SY_REJECT_TE_IN_HTTP10] = "te_in_http10",
    [SY_REJECT_BODY_TOO_LARGE] = "body_too_large",
    [SY_REJECT_EXPECTATION] = "expectation",
    [SY_REJECT_BAD_CHUNK_SIZE] = "bad_chunk_size",
    [SY_REJECT_CHUNK_SIZE_OVERFLOW] = "chunk_size_overflow",
    [SY_REJECT_BAD_CHUNK_EXTENSION] = "bad_chunk_extension",
    [SY_REJECT_BAD_CHUNK_DATA_END] = "bad_chunk_data_end",
    [SY_REJECT_BAD_TRAILER] = "bad_trailer",
    [SY_REJECT_BAD_STATUS_LINE] = "bad_status_line",
    [SY_REJECT_BAD_STATUS_CODE] = "bad_status_code",
};

const char *sy_http_reject_name(sy_http_reject_t reason)
{
    if ((unsigned)reason >= SY_REJECT__COUNT || !reject_names[reason])
        return "unknown";
    return reject_names[reason];
}

int sy_http_reject_status(sy_http_reject_t reason)
{
    switch (reason) {
    case SY_REJECT_REQUEST_LINE_TOO_LONG:
        return 414;
    case SY_REJECT_HEADERS_TOO_LARGE:
    case SY_REJECT_TOO_MANY_HEADERS:
        return 431;
    case SY_REJECT_BODY_TOO_LARGE:
        return 413;
    case SY_REJECT_EXPECTATION:
        return 417;
    default:
        return 400;
    }
}

/* ---- line primitives ----------------------------------------------------- */

typedef struct {
    sy_http_status_t status;
    sy_http_reject_t reject;
} verdict_t;

#define INCOMPLETE ((verdict_t){SY_HTTP_INCOMPLETE, SY_REJECT_NONE})
#define CONTINUE ((verdict_t){SY_HTTP_OK, SY_REJECT_NONE})

static inline verdict_t fail(sy_http_reject_t reason)
{
    return (verdict_t){SY_HTTP_ERROR, reason};
}

/*
 * A byte that is not allowed where it stands. A CR is judged by the byte
 * after it: CRLF means the line ended too early (at_crlf), anything else is
 * a bare CR, and a CR at the end of the input needs one more byte.
 */
static verdict_t bad_byte(const char *b, size_t n, size_t i, sy_http_reject_t at_crlf,
                          sy_http_reject_t other)
{
    char c = b[i];
    if (c == '\r') {
        if (i + 1 == n)
            return INCOMPLETE;
        return fail(b[i + 1] == '\n' ? at_crlf : SY_REJECT_BARE_CR);
    }
    if (c == '\n')
        return fail(SY_REJECT_BARE_LF);
    if (is_ctl(c))
        return fail(SY_REJECT_CONTROL_BYTE);
    return fail(other);
}

/* b[i] is CR: CRLF ends the line at i + 2. */
static verdict_t expect_lf(const char *b, size_t n, size_t i)
{
    if (i + 1 == n)
        return INCOMPLETE;
    if (b[i + 1] != '\n')
        return fail(SY_REJECT_BARE_CR);
    return CONTINUE;
}

/* ---- request line -------------------------------------------------------- */

/* request-line = method SP request-target SP HTTP-version CRLF, exactly one SP
 * between the parts, origin-form only. */
static verdict_t parse_request_line(const char *b, size_t n, sy_http_request_t *req, size_t *end)
{
    size_t i = 0;
    if (n == 0)
        return INCOMPLETE;
    /* RFC 9112 §2.2 lets a server skip empty lines before the request line.
     * We refuse them: a leading CRLF usually means the previous message's
     * body was longer than its framing said, which is exactly the
     * disagreement a smuggling attack relies on. */
    if (b[0] == '\r' || b[0] == '\n')
        return bad_byte(b, n, 0, SY_REJECT_BAD_REQUEST_LINE, SY_REJECT_BAD_REQUEST_LINE);

    while (i < n && is_class(b[i], C_TCHAR))
        i++;
    if (i == n)
        return INCOMPLETE;
    if (b[i] != ' ')
        return bad_byte(b, n, i, SY_REJECT_BAD_REQUEST_LINE, SY_REJECT_BAD_METHOD);
    if (i == 0)
        return fail(SY_REJECT_BAD_METHOD);
    req->method = sy_slice(b, i);
    /* CONNECT asks us to become a tunnel; a reverse proxy never is one.
     * Compared without case so no backend can read it as CONNECT either. */
    if (sy_slice_eq_cstr_nocase(req->method, "CONNECT"))
        return fail(SY_REJECT_CONNECT_METHOD);
    i++;

    size_t t = i;
    if (i == n)
        return INCOMPLETE;
    char c = b[i];
    if (c == '*')
        return fail(SY_REJECT_ASTERISK_FORM);
    if (c == ' ')
        return fail(SY_REJECT_BAD_REQUEST_LINE);
    if (c != '/') {
        if (!is_alpha(c))
            return bad_byte(b, n, i, SY_REJECT_BAD_TARGET, SY_REJECT_BAD_TARGET);
        /* scheme "://" is absolute-form; anything else (host:port,
         * urn:x) is no form we serve. */
        i++;
        while (i < n && is_class(b[i], C_SCHEME))
            i++;
        static const char sep[] = "://";
        for (size_t k = 0; k < 3; k++, i++) {
            if (i == n)
                return INCOMPLETE;
            if (b[i] != sep[k])
                return bad_byte(b, n, i, SY_REJECT_BAD_TARGET, SY_REJECT_BAD_TARGET);
        }
        return fail(SY_REJECT_ABSOLUTE_FORM);
    }
    size_t query = 0;
    while (i < n && is_class(b[i], C_TARGET)) {
        if (b[i] == '?' && query == 0)
            query = i;
        i++;
    }
    if (i == n)
        return INCOMPLETE;
    if (b[i] != ' ') {
        /* "GET /\r\n" is HTTP/0.9: no version at all. '#', '"', '\', '|',
         * non-ASCII and the like are not RFC 3986 and get no benefit of the
         * doubt. */
        return bad_byte(b, n, i, SY_REJECT_BAD_VERSION, SY_REJECT_BAD_TARGET);
    }
    req->target = sy_slice(b + t, i - t);
    if (query) {
        req->path = sy_slice(b + t, query - t);
        req->query = sy_slice(b + query + 1, i - query - 1);
        req->has_query = true;
    } else {
        req->path = req->target;
    }
    i++;

    static const char version[] = "HTTP/1.";
    for (size_t k = 0; k < sizeof version - 1; k++, i++) {
        if (i == n)
            return INCOMPLETE;
        if (b[i] != version[k]) {
            if (b[i] == ' ')
                return fail(SY_REJECT_BAD_REQUEST_LINE);
            return bad_byte(b, n, i, SY_REJECT_BAD_VERSION, SY_REJECT_BAD_VERSION);
        }
    }
    if (i == n)
        return INCOMPLETE;
    if (b[i] != '0' && b[i] != '1')
        return bad_byte(b, n, i, SY_REJECT_BAD_VERSION, SY_REJECT_BAD_VERSION);
    req->minor_version = b[i] - '0';
    i++;
    if (i == n)
        return INCOMPLETE;
    if (b[i] != '\r') {
        if (b[i] == ' ')
            return fail(SY_REJECT_BAD_REQUEST_LINE);
        return bad_byte(b, n, i, SY_REJECT_BAD_VERSION, SY_REJECT_BAD_VERSION);
    }
    verdict_t v = expect_lf(b, n, i);
    if (v.status != SY_HTTP_OK)
        return v;
    *end = i + 2;
    return CONTINUE;
}

/* ---- status line --------------------------------------------------------- */

/* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF; the second
 * SP may be missing too, because many servers send "HTTP/1.1 200\r\n". */
static verdict_t parse_status_line(const char *b, size_t n, sy_http_response_t *resp, size_t *end)
{
    size_t i = 0;
    static const char version[] = "HTTP/1.";
    for (size_t k = 0; k < sizeof version - 1; k++, i++) {
        if (i == n)
            return INCOMPLETE;
        if (b[i] != version[k])
            return bad_byte(b, n, i, SY_REJECT_BAD_STATUS_LINE,
                            k < 5 ? SY_REJECT_BAD_STATUS_LINE : SY_REJECT_BAD_VERSION);
    }
    if (i == n)
        return INCOMPLETE;
    if (b[i] != '0' && b[i] != '1')
        return bad_byte(b, n, i, SY_REJECT_BAD_VERSION, SY_REJECT_BAD_VERSION);
    resp->minor_version = b[i] - '0';
    i++;
    if (i == n)
        return INCOMPLETE;
    if (b[i] != ' ')
        return bad_byte(b, n, i, SY_REJECT_BAD_STATUS_LINE, SY_REJECT_BAD_VERSION);
    i++;
    int status = 0;
    for (int k = 0; k < 3; k++, i++) {
        if (i == n)
            return INCOMPLETE;
        if (!is_digit(b[i]))
            return bad_byte(b, n, i, SY_REJECT_BAD_STATUS_CODE, SY_REJECT_BAD_STATUS_CODE);
        status = status * 10 + (b[i] - '0');
    }
    if (status < 100 || status > 599)
        return fail(SY_REJECT_BAD_STATUS_CODE);
    resp->status = status;
    if (i == n)
        return INCOMPLETE;
    size_t reason_start = i, reason_end = i;
    if (b[i] == ' ') {
        i++;
        reason_start = i;
        while (i < n && (is_class(b[i], C_VCHAR) || is_ows(b[i])))
            i++;
        if (i == n)
            return INCOMPLETE;
        reason_end = i;
        if (b[i] != '\r')
            return bad_byte(b, n, i, SY_REJECT_BAD_STATUS_LINE, SY_REJECT_BAD_STATUS_LINE);
    } else if (b[i] != '\r') {
        return bad_byte(b, n, i, SY_REJECT_BAD_STATUS_CODE, SY_REJECT_BAD_STATUS_CODE);
    }
    verdict_t v = expect_lf(b, n, i);
    if (v.status != SY_HTTP_OK)
        return v;
    resp->reason = sy_slice(b + reason_start, reason_end - reason_start);
    *end = i + 2;
    return CONTINUE;
}

/* ---- field values with meaning ------------------------------------------ */

/* What the field lines said about framing and the connection. */
typedef struct {
    bool is_request;
    int minor_version;
    uint64_t max_body_bytes;
    bool has_content_length;
    bool has_transfer_encoding;
    bool has_host;
    bool has_expect;
    bool connection_close;
    bool connection_keep_alive;
    bool expect_continue;
    uint64_t content_length;
    sy_slice_t host;
} head_t;

/* Content-Length = 1*DIGIT. Leading zeros are digits; a list ("5, 5"), a
 * sign, spaces inside or an empty value are not. */
static bool parse_content_length(sy_slice_t v, uint64_t *out)
{
    if (v.len == 0)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (!is_digit(v.ptr[i]))
            return false;
        unsigned d = (unsigned)(v.ptr[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* Connection = #connection-option: tokens separated by commas with OWS;
 * empty elements are allowed (RFC 9110 §5.6.1.2), anything else is not. */
static bool parse_connection(sy_slice_t v, head_t *h)
{
    size_t i = 0;
    for (;;) {
        while (i < v.len && (is_ows(v.ptr[i]) || v.ptr[i] == ','))
            i++;
        if (i == v.len)
            return true;
        size_t start = i;
        while (i < v.len && is_class(v.ptr[i], C_TCHAR))
            i++;
        if (i == start)
            return false;
        sy_slice_t token = sy_slice(v.ptr + start, i - start);
        if (sy_slice_eq_cstr_nocase(token, "close"))
            h->connection_close = true;
        else if (sy_slice_eq_cstr_nocase(token, "keep-alive"))
            h->connection_keep_alive = true;
        while (i < v.len && is_ows(v.ptr[i]))
            i++;
        if (i < v.len && v.ptr[i] != ',')
            return false;
    }
}

static bool valid_port(const char *p, size_t len)
{
    if (len == 0 || len > 5)
        return false;
    unsigned port = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(p[i]))
            return false;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    return port <= 65535;
}

/* Host = uri-host [ ":" port ]; uri-host is an IP-literal in brackets or a
 * reg-name (which covers IPv4). No userinfo, no comma lists, no spaces,
 * no empty name: what is matched against listen_domains must be the only
 * way any backend could read it. */
static bool valid_host(sy_slice_t v)
{
    const char *p = v.ptr;
    size_t len = v.len, i = 0;
    if (len == 0)
        return false;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (!close)
            return false;
        size_t inner = (size_t)(close - p) - 1;
        char addr[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (inner == 0 || inner >= sizeof addr)
            return false;
        memcpy(addr, p + 1, inner);
        addr[inner] = '\0';
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            return false;
        i = inner + 2;
    } else {
        while (i < len) {
            if (is_class(p[i], C_HOST)) {
                i++;
            } else if (p[i] == '%') {
                if (i + 2 >= len || !is_class(p[i + 1], C_HEX) || !is_class(p[i + 2], C_HEX))
                    return false;
                i += 3;
            } else {
                break;
            }
        }
        if (i == 0)
            return false;
    }
    if (i == len)
        return true;
    if (p[i] != ':')
        return false;
    return valid_port(p + i + 1, len - i - 1);
}

/* Header names that a CGI-style backend would fold into a name we act on
 * ("Transfer_Encoding" is HTTP_TRANSFER_ENCODING like "Transfer-Encoding").
 * They are legal tokens, but forwarding one would let a client slip a
 * framing, Host or X-Forwarded-* header past our rules. */
static bool aliases_known_name(sy_slice_t name)
{
    char folded[32];
    if (name.len > sizeof folded || !memchr(name.ptr, '_', name.len))
        return false;
    for (size_t i = 0; i < name.len; i++)
        folded[i] = name.ptr[i] == '_' ? '-' : name.ptr[i];
    return sy_header_lookup(sy_slice(folded, name.len)) != SY_HDR_OTHER;
}

/* A tab in the whitespace after a value. RFC 9110 §5.5 allows it, but
 * llhttp (every Node backend) refuses "Content-Length: 5<TAB>" and
 * "Transfer-Encoding: chunked<TAB>": framing two parsers read differently
 * is refused (tests/e2e/differential_parsing.test.mjs). The line was
 * checked to end in CR, so the scan stops there. */
static bool tab_after_value(const sy_http_header_t *f)
{
    for (const char *p = f->value.ptr + f->value.len; *p == ' ' || *p == '\t'; p++)
        if (*p == '\t')
            return true;
    return false;
}

/* Applies one complete field line; the first reason found wins. */
static sy_http_reject_t apply_field(head_t *h, const sy_http_header_t *f)
{
    switch (f->id) {
    case SY_HDR_CONTENT_LENGTH: {
        /* Even equal duplicates are refused: RFC 9110 §8.6 would let us
         * merge them, but a peer that takes the first or the last one is
         * exactly how CL.CL desync starts. */
        if (h->has_content_length)
            return SY_REJECT_DUPLICATE_CONTENT_LENGTH;
        if (h->has_transfer_encoding)
            return SY_REJECT_CONTENT_LENGTH_WITH_TE;
        uint64_t n;
        if (!parse_content_length(f->value, &n) || tab_after_value(f))
            return SY_REJECT_BAD_CONTENT_LENGTH;
        h->has_content_length = true;
        h->content_length = n;
        if (h->is_request && n > h->max_body_bytes)
            return SY_REJECT_BODY_TOO_LARGE;
        return SY_REJECT_NONE;
    }
    case SY_HDR_TRANSFER_ENCODING:
        /* HTTP/1.0 has no chunked coding (RFC 9112 §6.1): a 1.0 message with
         * TE is framed differently by every implementation. */
        if (h->minor_version == 0)
            return SY_REJECT_TE_IN_HTTP10;
        if (h->has_content_length)
            return SY_REJECT_CONTENT_LENGTH_WITH_TE;
        /* Exactly one field line whose whole value is "chunked": lists,
         * repeats and other codings are where TE obfuscation lives, and
         * we decode only chunked anyway. */
        if (h->has_transfer_encoding || !sy_slice_eq_cstr_nocase(f->value, "chunked") ||
            tab_after_value(f))
            return SY_REJECT_BAD_TRANSFER_ENCODING;
        h->has_transfer_encoding = true;
        return SY_REJECT_NONE;
    case SY_HDR_CONNECTION:
        return parse_connection(f->value, h) ? SY_REJECT_NONE : SY_REJECT_BAD_HEADER_VALUE;
    case SY_HDR_HOST:
        if (!h->is_request)
            return SY_REJECT_NONE;
        if (h->has_host)
            return SY_REJECT_DUPLICATE_HOST;
        if (!valid_host(f->value))
            return SY_REJECT_BAD_HOST;
        h->has_host = true;
        h->host = f->value;
        return SY_REJECT_NONE;
    case SY_HDR_EXPECT:
        if (!h->is_request)
            return SY_REJECT_NONE;
        if (h->has_expect || !sy_slice_eq_cstr_nocase(f->value, "100-continue"))
            return SY_REJECT_EXPECTATION;
        h->has_expect = true;
        /* RFC 9110 §10.1.1: a 1.0 client cannot have meant it. */
        h->expect_continue = h->minor_version == 1;
        return SY_REJECT_NONE;
    default:
        if (h->is_request && f->id == SY_HDR_OTHER && aliases_known_name(f->name))
            return SY_REJECT_BAD_HEADER_NAME;
        return SY_REJECT_NONE;
    }
}

/* ---- field lines ---------------------------------------------------------- */

/*
 * Parses field lines from pos up to and including the empty line; n is the
 * input already cut at the header size limit. max_fields is the number of
 * field lines allowed (the policy limit and the caller's array, whichever
 * is smaller).
 */
static verdict_t parse_fields(const char *b, size_t n, size_t pos, head_t *h,
                              sy_http_header_t *headers, size_t max_fields, size_t *count,
                              size_t *head_len)
{
    for (;;) {
        if (pos == n)
            return INCOMPLETE;
        char c = b[pos];
        if (c == '\r') {
            verdict_t v = expect_lf(b, n, pos);
            if (v.status != SY_HTTP_OK)
                return v;
            *head_len = pos + 2;
            return CONTINUE;
        }
        if (c == '\n')
            return fail(SY_REJECT_BARE_LF);
        /* A line starting with whitespace is obs-fold (RFC 9112 §5.2), or,
         * right after the start line, a line some parsers ignore and some
         * join (§2.2). Both are refused. */
        if (is_ows(c))
            return fail(SY_REJECT_OBS_FOLD);
        if (*count >= max_fields)
            return fail(SY_REJECT_TOO_MANY_HEADERS);

        size_t name_start = pos;
        while (pos < n && is_class(b[pos], C_TCHAR))
            pos++;
        if (pos == n)
            return INCOMPLETE;
        if (b[pos] != ':') {
            if (is_ows(b[pos]))
                return fail(SY_REJECT_SPACE_BEFORE_COLON);
            return bad_byte(b, n, pos, SY_REJECT_MISSING_COLON, SY_REJECT_BAD_HEADER_NAME);
        }
        if (pos == name_start)
            return fail(SY_REJECT_BAD_HEADER_NAME);
        size_t name_end = pos++;

        while (pos < n && is_ows(b[pos]))
            pos++;
        size_t value_start = pos, value_end = pos;
        while (pos < n) {
            if (is_class(b[pos], C_VCHAR))
                value_end = ++pos;
            else if (is_ows(b[pos]))
                pos++;
            else
                break;
        }
        if (pos == n)
            return INCOMPLETE;
        if (b[pos] == '\n')
            return fail(SY_REJECT_BARE_LF);
        /* NUL, VT, FF, DEL...: values carry HTAB and visible bytes only. */
        if (b[pos] != '\r')
            return fail(SY_REJECT_BAD_HEADER_VALUE);
        verdict_t v = expect_lf(b, n, pos);
        if (v.status != SY_HTTP_OK)
            return v;

        sy_http_header_t *f = &headers[(*count)++];
        f->name = sy_slice(b + name_start, name_end - name_start);
        f->value = sy_slice(b + value_start, value_end - value_start);
        f->id = sy_header_lookup(f->name);
        sy_http_reject_t reject = apply_field(h, f);
        if (reject != SY_REJECT_NONE)
            return fail(reject);
        pos += 2;
    }
}

static size_t field_limit(const sy_http_limits_t *limits, size_t cap)
{
    size_t max = limits->max_headers;
    if (max > SY_HTTP_MAX_HEADERS)
        max = SY_HTTP_MAX_HEADERS;
    if (max > cap)
        max = cap;
    return max;
}

static size_t cut(size_t start, size_t limit, size_t len)
{
    if (start > len || limit > len - start)
        return len;
    return start + limit;
}

/* ---- public head parsers -------------------------------------------------- */

sy_http_status_t sy_http_request_parse(const char *buf, size_t len, const sy_http_limits_t *limits,
                                       sy_http_header_t *headers, size_t headers_cap,
                                       sy_http_request_t *req, sy_http_reject_t *reject)
{
    memset(req, 0, sizeof *req);
    req->headers = headers;
    *reject = SY_REJECT_NONE;

    /* The request line counts its CRLF: once max_request_line_bytes have
     * arrived without one, it can only be too long. */
    size_t line_n = cut(0, limits->max_request_line_bytes, len);
    size_t line_end = 0;
    verdict_t v = parse_request_line(buf, line_n, req, &line_end);
    if (v.status == SY_HTTP_INCOMPLETE && line_n == limits->max_request_line_bytes)
        v = fail(SY_REJECT_REQUEST_LINE_TOO_LONG);
    if (v.status != SY_HTTP_OK) {
        *reject = v.reject;
        return v.status;
    }

    head_t h = {.is_request = true,
                .minor_version = req->minor_version,
                .max_body_bytes = limits->max_body_bytes};
    size_t fields_n = cut(line_end, limits->max_header_bytes, len);
    size_t head_len = 0;
    v = parse_fields(buf, fields_n, line_end, &h, headers,
                     field_limit(limits, headers ? headers_cap : 0), &req->header_count, &head_len);
    if (v.status == SY_HTTP_INCOMPLETE && fields_n - line_end == limits->max_header_bytes)
        v = fail(SY_REJECT_HEADERS_TOO_LARGE);
    if (v.status == SY_HTTP_OK && !h.has_host)
        v = fail(SY_REJECT_MISSING_HOST);
    if (v.status != SY_HTTP_OK) {
        *reject = v.reject;
        return v.status;
    }

    req->host = h.host;
    if (h.has_transfer_encoding) {
        req->body_kind = SY_BODY_CHUNKED;
    } else if (h.has_content_length) {
        req->body_kind = SY_BODY_LENGTH;
        req->content_length = h.content_length;
    } else {
        req->body_kind = SY_BODY_NONE;
    }
    if (req->minor_version == 1)
        req->keep_alive = !h.connection_close;
    else
        req->keep_alive = h.connection_keep_alive && !h.connection_close;
    req->expect_continue = h.expect_continue;
    req->head_len = head_len;
    return SY_HTTP_OK;
}

sy_http_status_t sy_http_response_parse(const char *buf, size_t len, const sy_http_limits_t *limits,
                                        bool request_was_head, sy_http_header_t *headers,
                                        size_t headers_cap, sy_http_response_t *resp,
                                        sy_http_reject_t *reject)
{
    memset(resp, 0, sizeof *resp);
    resp->headers = headers;
    *reject = SY_REJECT_NONE;

    size_t line_n = cut(0, limits->max_request_line_bytes, len);
    size_t line_end = 0;
    verdict_t v = parse_status_line(buf, line_n, resp, &line_end);
    if (v.status == SY_HTTP_INCOMPLETE && line_n == limits->max_request_line_bytes)
        v = fail(SY_REJECT_BAD_STATUS_LINE);
    if (v.status != SY_HTTP_OK) {
        *reject = v.reject;
        return v.status;
    }

    head_t h = {.is_request = false, .minor_version = resp->minor_version};
    size_t fields_n = cut(line_end, limits->max_header_bytes, len);
    size_t head_len = 0;
    v = parse_fields(buf, fields_n, line_end, &h, headers,
                     field_limit(limits, headers ? headers_cap : 0), &resp->header_count,
                     &head_len);
    if (v.status == SY_HTTP_INCOMPLETE && fields_n - line_end == limits->max_header_bytes)
        v = fail(SY_REJECT_HEADERS_TOO_LARGE);
    if (v.status != SY_HTTP_OK) {
        *reject = v.reject;
        return v.status;
    }

    int s = resp->status;
    if (request_was_head || (s >= 100 && s < 200) || s == 204 || s == 304) {
        resp->body_kind = SY_BODY_NONE;
    } else if (h.has_transfer_encoding) {
        resp->body_kind = SY_BODY_CHUNKED;
    } else if (h.has_content_length) {
        resp->body_kind = SY_BODY_LENGTH;
        resp->content_length = h.content_length;
    } else {
        resp->body_kind = SY_BODY_UNTIL_CLOSE;
    }
    if (resp->minor_version == 1)
        resp->keep_alive = !h.connection_close;
    else
        resp->keep_alive = h.connection_keep_alive && !h.connection_close;
    if (resp->body_kind == SY_BODY_UNTIL_CLOSE)
        resp->keep_alive = false;
    resp->head_len = head_len;
    return SY_HTTP_OK;
}

/* ---- chunked bodies -------------------------------------------------------- */

/*
 * A byte-at-a-time state machine for the framing (size lines, extensions,
 * CRLFs, trailers) and bulk runs for the data, so it works on any split of
 * the input and never copies body bytes. A failed decoder keeps its reason
 * (stored as a negative state) so a caller that retries gets the same answer.
 */
enum {
    CH_SIZE_FIRST = 0, /* first hex digit of chunk-size */
    CH_SIZE,
    CH_EXT_NAME_START,
    CH_EXT_NAME,
    CH_EXT_VALUE_START,
    CH_EXT_TOKEN,
    CH_EXT_QUOTED,
    CH_EXT_QUOTED_ESCAPE,
    CH_EXT_AFTER_QUOTED,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE,
};

/* A size line with extensions longer than this is abuse, not a chunk. */
#define CHUNK_LINE_MAX 4096
/* 16 hex digits fill a uint64_t. */
#define CHUNK_SIZE_DIGITS_MAX 16

void sy_http_chunked_init(sy_http_chunked_t *dec, size_t max_trailer_bytes)
{
    memset(dec, 0, sizeof *dec);
    dec->state = CH_SIZE_FIRST;
    dec->max_trailer_bytes = max_trailer_bytes;
}

/* One framing byte; returns the reason when it is not acceptable. */
static sy_http_reject_t chunked_step(sy_http_chunked_t *dec, char c)
{
    int s = dec->state;
    if (c == '\n' && s != CH_SIZE_LF && s != CH_DATA_LF && s != CH_TRAILER_LF && s != CH_END_LF)
        return SY_REJECT_BARE_LF;
    if (s <= CH_SIZE_LF && ++dec->line_bytes > CHUNK_LINE_MAX)
        return SY_REJECT_BAD_CHUNK_EXTENSION;
    /* max_trailer_bytes bounds the trailer field lines; the empty line that
     * ends the body is not counted, so 0 means "no trailer fields". */
    if (s >= CH_TRAILER_START && s <= CH_TRAILER_LF && !(s == CH_TRAILER_START && c == '\r') &&
        ++dec->trailer_bytes > dec->max_trailer_bytes)
        return SY_REJECT_BAD_TRAILER;

    switch (s) {
    case CH_SIZE_FIRST:
        /* No leading whitespace, sign or "0x": 1*HEXDIG and nothing else. */
        if (!is_class(c, C_HEX))
            return SY_REJECT_BAD_CHUNK_SIZE;
        dec->chunk_remaining = hex_value(c);
        dec->size_digits = 1;
        dec->state = CH_SIZE;
        return SY_REJECT_NONE;
    /* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), but
     * the BWS is refused: RFC 9112 calls it bad whitespace, llhttp (every
     * Node backend) refuses it, and a size line two parsers read
     * differently is where chunked smuggling starts
     * (tests/e2e/differential_parsing.test.mjs). Extensions are dropped
     * when the body is re-framed, so nothing of value is lost. */
    case CH_SIZE:
        if (is_class(c, C_HEX)) {
            if (dec->size_digits == CHUNK_SIZE_DIGITS_MAX)
                return SY_REJECT_CHUNK_SIZE_OVERFLOW;
            dec->chunk_remaining = dec->chunk_remaining << 4 | hex_value(c);
            dec->size_digits++;
        } else if (c == ';') {
            dec->state = CH_EXT_NAME_START;
        } else if (c == '\r') {
            dec->state = CH_SIZE_LF;
        } else {
            return SY_REJECT_BAD_CHUNK_SIZE;
        }
        return SY_REJECT_NONE;
    case CH_EXT_NAME_START:
        if (!is_class(c, C_TCHAR))
            return SY_REJECT_BAD_CHUNK_EXTENSION;
        dec->state = CH_EXT_NAME;
        return SY_REJECT_NONE;
    case CH_EXT_NAME:
        if (is_class(c, C_TCHAR))
            return SY_REJECT_NONE;
        if (c == '=')
            dec->state = CH_EXT_VALUE_START;
        else if (c == ';')
            dec->state = CH_EXT_NAME_START;
        else if (c == '\r')
            dec->state = CH_SIZE_LF;
        else
            return SY_REJECT_BAD_CHUNK_EXTENSION;
        return SY_REJECT_NONE;
    case CH_EXT_VALUE_START:
        if (c == '"')
            dec->state = CH_EXT_QUOTED;
        else if (is_class(c, C_TCHAR))
            dec->state = CH_EXT_TOKEN;
        else
            return SY_REJECT_BAD_CHUNK_EXTENSION;
        return SY_REJECT_NONE;
    case CH_EXT_TOKEN:
        if (is_class(c, C_TCHAR))
            return SY_REJECT_NONE;
        if (c == ';')
            dec->state = CH_EXT_NAME_START;
        else if (c == '\r')
            dec->state = CH_SIZE_LF;
        else
            return SY_REJECT_BAD_CHUNK_EXTENSION;
        return SY_REJECT_NONE;
    case CH_EXT_QUOTED:
        if (c == '"')
            dec->state = CH_EXT_AFTER_QUOTED;
        else if (c == '\\')
            dec->state = CH_EXT_QUOTED_ESCAPE;
        else if (!is_class(c, C_QDTEXT))
            return SY_REJECT_BAD_CHUNK_EXTENSION;
        return SY_REJECT_NONE;
    case CH_EXT_QUOTED_ESCAPE:
        /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        if (!is_class(c, C_VCHAR) && !is_ows(c))
            return SY_REJECT_BAD_CHUNK_EXTENSION;
        dec->state = CH_EXT_QUOTED;
        return SY_REJECT_NONE;
    case CH_EXT_AFTER_QUOTED:
        if (c == ';')
            dec->state = CH_EXT_NAME_START;
        else if (c == '\r')
            dec->state = CH_SIZE_LF;
        else
            return SY_REJECT_BAD_CHUNK_EXTENSION;
        return SY_REJECT_NONE;
    case CH_SIZE_LF:
        if (c != '\n')
            return SY_REJECT_BARE_CR;
        dec->line_bytes = 0;
        if (dec->chunk_remaining == 0) {
            dec->trailer_bytes = 0;
            dec->state = CH_TRAILER_START;
        } else {
            dec->state = CH_DATA;
        }
        return SY_REJECT_NONE;
    case CH_DATA_CR:
        if (c != '\r')
            return SY_REJECT_BAD_CHUNK_DATA_END;
        dec->state = CH_DATA_LF;
        return SY_REJECT_NONE;
    case CH_DATA_LF:
        if (c != '\n')
            return SY_REJECT_BARE_CR;
        dec->state = CH_SIZE_FIRST;
        dec->line_bytes = 0;
        dec->size_digits = 0;
        return SY_REJECT_NONE;
    case CH_TRAILER_START:
        /* Trailer fields are checked like header fields (no obs-fold, no
         * whitespace before the colon), then dropped. */
        if (c == '\r')
            dec->state = CH_END_LF;
        else if (is_class(c, C_TCHAR))
            dec->state = CH_TRAILER_NAME;
        else
            return SY_REJECT_BAD_TRAILER;
        return SY_REJECT_NONE;
    case CH_TRAILER_NAME:
        if (c == ':')
            dec->state = CH_TRAILER_VALUE;
        else if (!is_class(c, C_TCHAR))
            return SY_REJECT_BAD_TRAILER;
        return SY_REJECT_NONE;
    case CH_TRAILER_VALUE:
        if (c == '\r')
            dec->state = CH_TRAILER_LF;
        else if (!is_class(c, C_VCHAR) && !is_ows(c))
            return SY_REJECT_BAD_TRAILER;
        return SY_REJECT_NONE;
    case CH_TRAILER_LF:
        if (c != '\n')
            return SY_REJECT_BARE_CR;
        dec->state = CH_TRAILER_START;
        return SY_REJECT_NONE;
    case CH_END_LF:
        if (c != '\n')
            return SY_REJECT_BARE_CR;
        dec->state = CH_DONE;
        return SY_REJECT_NONE;
    default:
        return SY_REJECT_BAD_CHUNK_SIZE;
    }
}

sy_chunked_result_t sy_http_chunked_decode(sy_http_chunked_t *dec, const char *in, size_t len,
                                           size_t *consumed, sy_slice_t *data,
                                           sy_http_reject_t *reject)
{
    *consumed = 0;
    *data = sy_slice(NULL, 0);
    *reject = SY_REJECT_NONE;
    if (dec->state < 0) {
        *reject = (sy_http_reject_t)-dec->state;
        return SY_CHUNKED_ERROR;
    }
    if (dec->state == CH_DONE)
        return SY_CHUNKED_DONE;

    size_t i = 0;
    while (i < len) {
        if (dec->state == CH_DATA) {
            size_t take = len - i;
            if ((uint64_t)take > dec->chunk_remaining)
                take = (size_t)dec->chunk_remaining;
            *data = sy_slice(in + i, take);
            dec->chunk_remaining -= take;
            if (dec->chunk_remaining == 0)
                dec->state = CH_DATA_CR;
            *consumed = i + take;
            return SY_CHUNKED_DATA;
        }
        sy_http_reject_t r = chunked_step(dec, in[i++]);
        if (r != SY_REJECT_NONE) {
            dec->state = -(int)r;
            *consumed = i;
            *reject = r;
            return SY_CHUNKED_ERROR;
        }
        if (dec->state == CH_DONE) {
            *consumed = i;
            return SY_CHUNKED_DONE;
        }
    }
    *consumed = len;
    return SY_CHUNKED_NEED_MORE;
}
