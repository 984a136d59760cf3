/*
 * parser.c: strict HTTP/1.1 heads and chunked bodies (RFC 9112), as pure
 * functions over the caller's bytes: no I/O, no allocation; what a head parse
 * keeps between calls is in the caller's sy_http_head_state_t.
 *
 * Shape: one left-to-right scan, resumable at any byte. An error is reported
 * at the first byte that makes the message invalid and depends only on the
 * bytes before it, so a head parsed all at once and the same head fed one
 * byte at a time give the same verdict and the same reason, and a hostile
 * client is refused as soon as its bytes allow (an over-long line is refused
 * when the limit is reached, not when the line ends). Each scanner is a
 * switch over the phase it stopped in, with tight loops inside a phase, and
 * keeps every position it needs as an offset in the state, so a call starts
 * at the first byte no call has examined: a head read in many small pieces
 * costs what it costs read at once (test_parser's work-counting tests).
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

/* ---- scan state ------------------------------------------------------------ */

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
 * The construct the next byte belongs to. A call resumes in the phase the
 * previous one stopped in, at st->pos; every position a phase needs (where
 * the target began, where a value's last visible byte was) is in the state
 * as an offset, so nothing before st->pos is looked at again. 0 is a fresh
 * state.
 */
enum {
    P_FRESH = 0,
    /* request-line */
    P_METHOD,
    P_TARGET,     /* first byte of the request-target */
    P_SCHEME,     /* a letter began it: the rest of a scheme */
    P_SCHEME_SEP, /* "://" after the scheme; field[0] is where it starts */
    P_PATH,       /* origin-form */
    P_VERSION,    /* "HTTP/1." */
    P_MINOR,
    P_LINE_CR,
    P_LINE_LF,
    /* status-line */
    P_ST_VERSION,
    P_ST_MINOR,
    P_ST_SP,
    P_ST_CODE,
    P_ST_AFTER_CODE,
    P_ST_REASON,
    P_ST_LF,
    /* field lines */
    P_FIELD_START,
    P_FIELD_NAME,
    P_FIELD_OWS,
    P_FIELD_VALUE,
    P_FIELD_LF,
    P_END_LF,
    /* A CR where a line may not end yet: CRLF means the line ended too early
     * (st->pending names how), anything else is a bare CR. */
    P_CR_JUDGE,
    P_DONE,
    P_FAILED,
};

/* What the field lines said about framing and the connection. */
#define F_CONTENT_LENGTH 0x01u
#define F_TRANSFER_ENCODING 0x02u
#define F_HOST 0x04u
#define F_EXPECT 0x08u
#define F_CONNECTION_CLOSE 0x10u
#define F_CONNECTION_KEEP_ALIVE 0x20u
#define F_EXPECT_CONTINUE 0x40u

/* What a call is parsing: the same for every call on one message. */
typedef struct {
    bool is_request;
    uint64_t max_body_bytes;
    sy_http_header_t *headers;
    size_t max_fields; /* the policy limit and the caller's array, whichever is smaller */
} head_ctx_t;

/* The reason for byte c where it may not stand, c not being CR (a CR is
 * judged by the byte after it, in P_CR_JUDGE). */
static inline sy_http_reject_t misplaced(char c, sy_http_reject_t other)
{
    if (c == '\n')
        return SY_REJECT_BARE_LF;
    if (is_ctl(c))
        return SY_REJECT_CONTROL_BYTE;
    return other;
}

/* Inside the start-line scanners: i is the next byte, n the end of what may be read
 * (the input cut at the section's limit). */
#define NEED_BYTE()                                                                                \
    do {                                                                                           \
        if (i >= n)                                                                                \
            goto suspend;                                                                          \
    } while (0)
#define FAIL(reason)                                                                               \
    do {                                                                                           \
        st->pos = i;                                                                               \
        return fail(reason);                                                                       \
    } while (0)
/* b[i] may not stand here: at_crlf if it is the CR of a CRLF, else other. A
 * plain block, not do-while(0), so its `continue` resumes the scanner's loop
 * in P_CR_JUDGE; never follow it with `else`. */
#define BAD_BYTE(at_crlf, other)                                                                   \
    {                                                                                              \
        if (b[i] == '\r') {                                                                        \
            st->pending = (uint8_t)(at_crlf);                                                      \
            st->phase = P_CR_JUDGE;                                                                \
            i++;                                                                                   \
            continue;                                                                              \
        }                                                                                          \
        FAIL(misplaced(b[i], other));                                                              \
    }

/* ---- request line -------------------------------------------------------- */

/* request-line = method SP request-target SP HTTP-version CRLF, exactly one SP
 * between the parts, origin-form only. Returns CONTINUE once the line and its
 * CRLF were read (st->line_end). */
static verdict_t scan_request_line(sy_http_head_state_t *st, const char *b, size_t n)
{
    static const char version[] = "HTTP/1.";
    static const char sep[] = "://";
    size_t i = st->pos;
    for (;;) {
        switch (st->phase) {
        case P_FRESH:
            st->phase = P_METHOD;
            /* fall through */
        case P_METHOD:
            /* RFC 9112 §2.2 lets a server skip empty lines before the
             * request line. We refuse them (a CR or LF is no method byte):
             * a leading CRLF usually means the previous message's body was
             * longer than its framing said, which is exactly the
             * disagreement a smuggling attack relies on. */
            while (i < n && is_class(b[i], C_TCHAR))
                i++;
            NEED_BYTE();
            if (b[i] != ' ')
                BAD_BYTE(SY_REJECT_BAD_REQUEST_LINE, SY_REJECT_BAD_METHOD);
            if (i == 0)
                FAIL(SY_REJECT_BAD_METHOD);
            st->mark[0] = i;
            /* CONNECT asks us to become a tunnel; a reverse proxy never is
             * one. Compared without case so no backend can read it as
             * CONNECT either. */
            if (sy_slice_eq_cstr_nocase(sy_slice(b, i), "CONNECT"))
                FAIL(SY_REJECT_CONNECT_METHOD);
            i++;
            st->phase = P_TARGET;
            /* fall through */
        case P_TARGET: {
            NEED_BYTE();
            char c = b[i];
            if (c == '*')
                FAIL(SY_REJECT_ASTERISK_FORM);
            if (c == ' ')
                FAIL(SY_REJECT_BAD_REQUEST_LINE);
            if (c == '/') {
                st->phase = P_PATH;
                continue;
            }
            if (!is_alpha(c))
                BAD_BYTE(SY_REJECT_BAD_TARGET, SY_REJECT_BAD_TARGET);
            /* scheme "://" is absolute-form; anything else (host:port,
             * urn:x) is no form we serve. */
            i++;
            st->phase = P_SCHEME;
        }
            /* fall through */
        case P_SCHEME:
            while (i < n && is_class(b[i], C_SCHEME))
                i++;
            NEED_BYTE();
            st->field[0] = i;
            st->phase = P_SCHEME_SEP;
            /* fall through */
        case P_SCHEME_SEP:
            for (size_t k = i - st->field[0]; k < 3; k++, i++) {
                NEED_BYTE();
                if (b[i] != sep[k])
                    break;
            }
            if (i - st->field[0] < 3)
                BAD_BYTE(SY_REJECT_BAD_TARGET, SY_REJECT_BAD_TARGET);
            FAIL(SY_REJECT_ABSOLUTE_FORM);
        case P_PATH:
            while (i < n && is_class(b[i], C_TARGET)) {
                if (b[i] == '?' && st->mark[1] == 0)
                    st->mark[1] = i;
                i++;
            }
            NEED_BYTE();
            /* "GET /\r\n" is HTTP/0.9: no version at all. '#', '"', '\',
             * '|', non-ASCII and the like are not RFC 3986 and get no
             * benefit of the doubt. */
            if (b[i] != ' ')
                BAD_BYTE(SY_REJECT_BAD_VERSION, SY_REJECT_BAD_TARGET);
            st->mark[2] = i++;
            st->phase = P_VERSION;
            /* fall through */
        case P_VERSION:
            for (size_t k = i - st->mark[2] - 1; k < sizeof version - 1; k++, i++) {
                NEED_BYTE();
                if (b[i] != version[k])
                    break;
            }
            if (i - st->mark[2] - 1 < sizeof version - 1) {
                if (b[i] == ' ')
                    FAIL(SY_REJECT_BAD_REQUEST_LINE);
                BAD_BYTE(SY_REJECT_BAD_VERSION, SY_REJECT_BAD_VERSION);
            }
            st->phase = P_MINOR;
            /* fall through */
        case P_MINOR:
            NEED_BYTE();
            if (b[i] != '0' && b[i] != '1')
                BAD_BYTE(SY_REJECT_BAD_VERSION, SY_REJECT_BAD_VERSION);
            st->minor_version = (uint8_t)(b[i++] - '0');
            st->phase = P_LINE_CR;
            /* fall through */
        case P_LINE_CR:
            NEED_BYTE();
            if (b[i] != '\r') {
                if (b[i] == ' ')
                    FAIL(SY_REJECT_BAD_REQUEST_LINE);
                FAIL(misplaced(b[i], SY_REJECT_BAD_VERSION));
            }
            i++;
            st->phase = P_LINE_LF;
            /* fall through */
        case P_LINE_LF:
            NEED_BYTE();
            if (b[i] != '\n')
                FAIL(SY_REJECT_BARE_CR);
            st->pos = st->line_end = i + 1;
            st->phase = P_FIELD_START;
            return CONTINUE;
        case P_CR_JUDGE:
            NEED_BYTE();
            FAIL(b[i] == '\n' ? (sy_http_reject_t)st->pending : SY_REJECT_BARE_CR);
        default:
            FAIL(SY_REJECT_BAD_REQUEST_LINE); /* not reached: a response state */
        }
    }
suspend:
    st->pos = i;
    return INCOMPLETE;
}

/* ---- status line --------------------------------------------------------- */

/* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF; the second
 * SP may be missing too, because many servers send "HTTP/1.1 200\r\n". The
 * reason is mark[0, 1). */
static verdict_t scan_status_line(sy_http_head_state_t *st, const char *b, size_t n)
{
    static const char version[] = "HTTP/1.";
    enum { CODE_START = sizeof version - 1 + 2 }; /* "HTTP/1.1 " */
    size_t i = st->pos;
    for (;;) {
        switch (st->phase) {
        case P_FRESH:
            st->phase = P_ST_VERSION;
            /* fall through */
        case P_ST_VERSION:
            for (; i < sizeof version - 1; i++) {
                NEED_BYTE();
                if (b[i] != version[i])
                    break;
            }
            if (i < sizeof version - 1)
                BAD_BYTE(SY_REJECT_BAD_STATUS_LINE,
                         i < 5 ? SY_REJECT_BAD_STATUS_LINE : SY_REJECT_BAD_VERSION);
            st->phase = P_ST_MINOR;
            /* fall through */
        case P_ST_MINOR:
            NEED_BYTE();
            if (b[i] != '0' && b[i] != '1')
                BAD_BYTE(SY_REJECT_BAD_VERSION, SY_REJECT_BAD_VERSION);
            st->minor_version = (uint8_t)(b[i++] - '0');
            st->phase = P_ST_SP;
            /* fall through */
        case P_ST_SP:
            NEED_BYTE();
            if (b[i] != ' ')
                BAD_BYTE(SY_REJECT_BAD_STATUS_LINE, SY_REJECT_BAD_VERSION);
            i++;
            st->phase = P_ST_CODE;
            /* fall through */
        case P_ST_CODE: {
            for (; i < CODE_START + 3; i++) {
                NEED_BYTE();
                if (!is_digit(b[i]))
                    break;
            }
            if (i < CODE_START + 3)
                BAD_BYTE(SY_REJECT_BAD_STATUS_CODE, SY_REJECT_BAD_STATUS_CODE);
            int status = (b[CODE_START] - '0') * 100 + (b[CODE_START + 1] - '0') * 10 +
                         (b[CODE_START + 2] - '0');
            if (status < 100 || status > 599)
                FAIL(SY_REJECT_BAD_STATUS_CODE);
            st->status = (uint16_t)status;
            st->phase = P_ST_AFTER_CODE;
        }
            /* fall through */
        case P_ST_AFTER_CODE:
            NEED_BYTE();
            if (b[i] == ' ') {
                st->mark[0] = ++i;
                st->phase = P_ST_REASON;
                continue;
            }
            if (b[i] != '\r')
                FAIL(misplaced(b[i], SY_REJECT_BAD_STATUS_CODE));
            st->mark[0] = st->mark[1] = i++;
            st->phase = P_ST_LF;
            continue;
        case P_ST_REASON:
            while (i < n && (is_class(b[i], C_VCHAR) || is_ows(b[i])))
                i++;
            NEED_BYTE();
            if (b[i] != '\r')
                FAIL(misplaced(b[i], SY_REJECT_BAD_STATUS_LINE));
            st->mark[1] = i++;
            st->phase = P_ST_LF;
            /* fall through */
        case P_ST_LF:
            NEED_BYTE();
            if (b[i] != '\n')
                FAIL(SY_REJECT_BARE_CR);
            st->pos = st->line_end = i + 1;
            st->phase = P_FIELD_START;
            return CONTINUE;
        case P_CR_JUDGE:
            NEED_BYTE();
            FAIL(b[i] == '\n' ? (sy_http_reject_t)st->pending : SY_REJECT_BARE_CR);
        default:
            FAIL(SY_REJECT_BAD_STATUS_LINE); /* not reached: a request state */
        }
    }
suspend:
    st->pos = i;
    return INCOMPLETE;
}

/* ---- field values with meaning ------------------------------------------ */

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
static bool parse_connection(sy_slice_t v, sy_http_head_state_t *st)
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
            st->flags |= F_CONNECTION_CLOSE;
        else if (sy_slice_eq_cstr_nocase(token, "keep-alive"))
            st->flags |= F_CONNECTION_KEEP_ALIVE;
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

/* Applies one complete field line, headers[index]; the first reason found
 * wins. */
static sy_http_reject_t apply_field(sy_http_head_state_t *st, const head_ctx_t *cx,
                                    const sy_http_header_t *f, uint32_t index)
{
    switch (f->id) {
    case SY_HDR_CONTENT_LENGTH: {
        /* Even equal duplicates are refused: RFC 9110 §8.6 would let us
         * merge them, but a peer that takes the first or the last one is
         * exactly how CL.CL desync starts. */
        if (st->flags & F_CONTENT_LENGTH)
            return SY_REJECT_DUPLICATE_CONTENT_LENGTH;
        if (st->flags & F_TRANSFER_ENCODING)
            return SY_REJECT_CONTENT_LENGTH_WITH_TE;
        uint64_t n;
        if (!parse_content_length(f->value, &n) || tab_after_value(f))
            return SY_REJECT_BAD_CONTENT_LENGTH;
        st->flags |= F_CONTENT_LENGTH;
        st->content_length = n;
        if (cx->is_request && n > cx->max_body_bytes)
            return SY_REJECT_BODY_TOO_LARGE;
        return SY_REJECT_NONE;
    }
    case SY_HDR_TRANSFER_ENCODING:
        /* HTTP/1.0 has no chunked coding (RFC 9112 §6.1): a 1.0 message with
         * TE is framed differently by every implementation. */
        if (st->minor_version == 0)
            return SY_REJECT_TE_IN_HTTP10;
        if (st->flags & F_CONTENT_LENGTH)
            return SY_REJECT_CONTENT_LENGTH_WITH_TE;
        /* Exactly one field line whose whole value is "chunked": lists,
         * repeats and other codings are where TE obfuscation lives, and
         * we decode only chunked anyway. */
        if ((st->flags & F_TRANSFER_ENCODING) || !sy_slice_eq_cstr_nocase(f->value, "chunked") ||
            tab_after_value(f))
            return SY_REJECT_BAD_TRANSFER_ENCODING;
        st->flags |= F_TRANSFER_ENCODING;
        return SY_REJECT_NONE;
    case SY_HDR_CONNECTION:
        return parse_connection(f->value, st) ? SY_REJECT_NONE : SY_REJECT_BAD_HEADER_VALUE;
    case SY_HDR_HOST:
        if (!cx->is_request)
            return SY_REJECT_NONE;
        if (st->flags & F_HOST)
            return SY_REJECT_DUPLICATE_HOST;
        if (!valid_host(f->value))
            return SY_REJECT_BAD_HOST;
        st->flags |= F_HOST;
        st->host_index = index;
        return SY_REJECT_NONE;
    case SY_HDR_EXPECT:
        if (!cx->is_request)
            return SY_REJECT_NONE;
        if ((st->flags & F_EXPECT) || !sy_slice_eq_cstr_nocase(f->value, "100-continue"))
            return SY_REJECT_EXPECTATION;
        st->flags |= F_EXPECT;
        /* RFC 9110 §10.1.1: a 1.0 client cannot have meant it. */
        if (st->minor_version == 1)
            st->flags |= F_EXPECT_CONTINUE;
        return SY_REJECT_NONE;
    default:
        if (cx->is_request && f->id == SY_HDR_OTHER && aliases_known_name(f->name))
            return SY_REJECT_BAD_HEADER_NAME;
        return SY_REJECT_NONE;
    }
}

/* ---- field lines ---------------------------------------------------------- */

/*
 * Field lines from st->pos up to and including the empty line; n is the
 * input cut at the header section's size limit. Each complete line is
 * stored in the caller's array and applied at once, so a framing conflict
 * is refused as soon as its line ends. Returns CONTINUE at the end of the
 * head (st->pos is then its length). The phase, the line's offsets and the
 * count live in locals while the loop runs (stores into the header array
 * could alias the state, which would reload them at every byte) and go back
 * into the state when the call returns.
 */
static verdict_t scan_fields(sy_http_head_state_t *st, const char *b, size_t n,
                             const head_ctx_t *cx)
{
    size_t i = st->pos;
    unsigned phase = st->phase;
    size_t line = st->field[0], name_end = st->field[1], value_start = st->field[2],
           value_end = st->field[3];
    uint32_t count = st->header_count;
    verdict_t v;
    for (;;) {
        switch (phase) {
        case P_FIELD_START: {
            if (i >= n)
                goto suspend;
            char c = b[i];
            if (c == '\r') {
                i++;
                phase = P_END_LF;
                continue;
            }
            if (c == '\n') {
                v = fail(SY_REJECT_BARE_LF);
                goto out;
            }
            /* A line starting with whitespace is obs-fold (RFC 9112 §5.2),
             * or, right after the start line, a line some parsers ignore
             * and some join (§2.2). Both are refused. */
            if (is_ows(c)) {
                v = fail(SY_REJECT_OBS_FOLD);
                goto out;
            }
            if (count >= cx->max_fields) {
                v = fail(SY_REJECT_TOO_MANY_HEADERS);
                goto out;
            }
            line = i;
            phase = P_FIELD_NAME;
        }
            /* fall through */
        case P_FIELD_NAME:
            while (i < n && is_class(b[i], C_TCHAR))
                i++;
            if (i >= n)
                goto suspend;
            if (b[i] != ':') {
                if (is_ows(b[i])) {
                    v = fail(SY_REJECT_SPACE_BEFORE_COLON);
                    goto out;
                }
                if (b[i] == '\r') {
                    st->pending = SY_REJECT_MISSING_COLON;
                    phase = P_CR_JUDGE;
                    i++;
                    continue;
                }
                v = fail(misplaced(b[i], SY_REJECT_BAD_HEADER_NAME));
                goto out;
            }
            if (i == line) {
                v = fail(SY_REJECT_BAD_HEADER_NAME);
                goto out;
            }
            name_end = i++;
            phase = P_FIELD_OWS;
            /* fall through */
        case P_FIELD_OWS:
            while (i < n && is_ows(b[i]))
                i++;
            if (i >= n)
                goto suspend;
            value_start = value_end = i;
            phase = P_FIELD_VALUE;
            /* fall through */
        case P_FIELD_VALUE:
            while (i < n) {
                if (is_class(b[i], C_VCHAR))
                    value_end = ++i;
                else if (is_ows(b[i]))
                    i++;
                else
                    break;
            }
            if (i >= n)
                goto suspend;
            if (b[i] == '\n') {
                v = fail(SY_REJECT_BARE_LF);
                goto out;
            }
            /* NUL, VT, FF, DEL...: values carry HTAB and visible bytes only. */
            if (b[i] != '\r') {
                v = fail(SY_REJECT_BAD_HEADER_VALUE);
                goto out;
            }
            i++;
            phase = P_FIELD_LF;
            /* fall through */
        case P_FIELD_LF: {
            if (i >= n)
                goto suspend;
            if (b[i] != '\n') {
                v = fail(SY_REJECT_BARE_CR);
                goto out;
            }
            sy_http_header_t *f = &cx->headers[count++];
            f->name = sy_slice(b + line, name_end - line);
            f->value = sy_slice(b + value_start, value_end - value_start);
            f->id = sy_header_lookup(f->name);
            sy_http_reject_t reject = apply_field(st, cx, f, count - 1);
            if (reject != SY_REJECT_NONE) {
                v = fail(reject);
                goto out;
            }
            i++;
            phase = P_FIELD_START;
            continue;
        }
        case P_END_LF:
            if (i >= n)
                goto suspend;
            if (b[i] != '\n') {
                v = fail(SY_REJECT_BARE_CR);
                goto out;
            }
            i++;
            phase = P_DONE;
            v = CONTINUE;
            goto out;
        case P_CR_JUDGE:
            if (i >= n)
                goto suspend;
            v = fail(b[i] == '\n' ? (sy_http_reject_t)st->pending : SY_REJECT_BARE_CR);
            goto out;
        default:
            v = fail(SY_REJECT_BAD_HEADER_NAME); /* not reached */
            goto out;
        }
    }
suspend:
    v = INCOMPLETE;
out:
    st->pos = i;
    st->phase = (uint8_t)phase;
    st->field[0] = line;
    st->field[1] = name_end;
    st->field[2] = value_start;
    st->field[3] = value_end;
    st->header_count = count;
    return v;
}

#undef NEED_BYTE
#undef FAIL
#undef BAD_BYTE

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

/*
 * Readies st for a call on buf[0, len): a state that decided its message, or
 * saw another buffer, another header array or more bytes than there are now,
 * starts over (only the work counter is kept).
 */
static void head_resume(sy_http_head_state_t *st, const char *buf, size_t len,
                        const sy_http_header_t *headers)
{
    if (st->phase == P_DONE || st->phase == P_FAILED || st->base != (uintptr_t)buf ||
        st->headers != headers || st->pos > len) {
        size_t examined = st->examined;
        sy_http_head_state_reset(st);
        st->examined = examined;
    }
    st->base = (uintptr_t)buf;
    st->headers = headers;
}

/*
 * Runs the start-line scanner and then the field scanner over what is new,
 * each bounded by its limit: once a limit's worth of bytes has arrived
 * without the construct ending, it can only be too long. Both scanners stop
 * at the first byte that decides, so the verdict depends only on the bytes
 * before it, however they were split between calls.
 */
static verdict_t head_scan(sy_http_head_state_t *st, const char *buf, size_t len,
                           const sy_http_limits_t *limits, const head_ctx_t *cx)
{
    size_t before = st->pos;
    verdict_t v = CONTINUE;
    if (st->line_end == 0) {
        /* The start line counts its CRLF. */
        size_t line_n = cut(0, limits->max_request_line_bytes, len);
        v = cx->is_request ? scan_request_line(st, buf, line_n) : scan_status_line(st, buf, line_n);
        if (v.status == SY_HTTP_INCOMPLETE && line_n == limits->max_request_line_bytes)
            v = fail(cx->is_request ? SY_REJECT_REQUEST_LINE_TOO_LONG : SY_REJECT_BAD_STATUS_LINE);
    }
    if (v.status == SY_HTTP_OK) {
        size_t fields_n = cut(st->line_end, limits->max_header_bytes, len);
        v = scan_fields(st, buf, fields_n, cx);
        if (v.status == SY_HTTP_INCOMPLETE && fields_n - st->line_end == limits->max_header_bytes)
            v = fail(SY_REJECT_HEADERS_TOO_LARGE);
    }
    st->examined += st->pos - before;
    if (v.status == SY_HTTP_ERROR) {
        st->phase = P_FAILED;
        st->reject = (uint8_t)v.reject;
    }
    return v;
}

sy_http_status_t sy_http_request_parse(sy_http_head_state_t *state, const char *buf, size_t len,
                                       const sy_http_limits_t *limits, sy_http_header_t *headers,
                                       size_t headers_cap, sy_http_request_t *req,
                                       sy_http_reject_t *reject)
{
    sy_http_head_state_t one_shot = {0};
    sy_http_head_state_t *st = state ? state : &one_shot;
    head_resume(st, buf, len, headers);
    head_ctx_t cx = {.is_request = true,
                     .max_body_bytes = limits->max_body_bytes,
                     .headers = headers,
                     .max_fields = field_limit(limits, headers ? headers_cap : 0)};
    verdict_t v = head_scan(st, buf, len, limits, &cx);
    if (v.status == SY_HTTP_OK && !(st->flags & F_HOST)) {
        v = fail(SY_REJECT_MISSING_HOST);
        st->phase = P_FAILED;
        st->reject = (uint8_t)v.reject;
    }

    /* What is known so far, as far as the bytes went. */
    memset(req, 0, sizeof *req);
    req->headers = headers;
    req->header_count = st->header_count;
    req->minor_version = st->minor_version;
    if (st->mark[0])
        req->method = sy_slice(buf, st->mark[0]);
    if (st->mark[2]) {
        size_t t = st->mark[0] + 1, q = st->mark[1], end = st->mark[2];
        req->target = sy_slice(buf + t, end - t);
        if (q) {
            req->path = sy_slice(buf + t, q - t);
            req->query = sy_slice(buf + q + 1, end - q - 1);
            req->has_query = true;
        } else {
            req->path = req->target;
        }
    }
    *reject = v.reject;
    if (v.status != SY_HTTP_OK)
        return v.status;

    req->host = headers[st->host_index].value;
    if (st->flags & F_TRANSFER_ENCODING) {
        req->body_kind = SY_BODY_CHUNKED;
    } else if (st->flags & F_CONTENT_LENGTH) {
        req->body_kind = SY_BODY_LENGTH;
        req->content_length = st->content_length;
    } else {
        req->body_kind = SY_BODY_NONE;
    }
    bool close = st->flags & F_CONNECTION_CLOSE;
    if (req->minor_version == 1)
        req->keep_alive = !close;
    else
        req->keep_alive = (st->flags & F_CONNECTION_KEEP_ALIVE) && !close;
    req->expect_continue = st->flags & F_EXPECT_CONTINUE;
    req->head_len = st->pos;
    return SY_HTTP_OK;
}

sy_http_status_t sy_http_response_parse(sy_http_head_state_t *state, const char *buf, size_t len,
                                        const sy_http_limits_t *limits, bool request_was_head,
                                        sy_http_header_t *headers, size_t headers_cap,
                                        sy_http_response_t *resp, sy_http_reject_t *reject)
{
    sy_http_head_state_t one_shot = {0};
    sy_http_head_state_t *st = state ? state : &one_shot;
    head_resume(st, buf, len, headers);
    head_ctx_t cx = {.is_request = false,
                     .headers = headers,
                     .max_fields = field_limit(limits, headers ? headers_cap : 0)};
    verdict_t v = head_scan(st, buf, len, limits, &cx);

    memset(resp, 0, sizeof *resp);
    resp->headers = headers;
    resp->header_count = st->header_count;
    resp->minor_version = st->minor_version;
    resp->status = st->status;
    if (st->line_end)
        resp->reason = sy_slice(buf + st->mark[0], st->mark[1] - st->mark[0]);
    *reject = v.reject;
    if (v.status != SY_HTTP_OK)
        return v.status;

    int s = resp->status;
    bool close = st->flags & F_CONNECTION_CLOSE;
    if (request_was_head || (s >= 100 && s < 200) || s == 204 || s == 304) {
        resp->body_kind = SY_BODY_NONE;
    } else if (st->flags & F_TRANSFER_ENCODING) {
        resp->body_kind = SY_BODY_CHUNKED;
    } else if (st->flags & F_CONTENT_LENGTH) {
        resp->body_kind = SY_BODY_LENGTH;
        resp->content_length = st->content_length;
    } else {
        resp->body_kind = SY_BODY_UNTIL_CLOSE;
    }
    if (resp->minor_version == 1)
        resp->keep_alive = !close;
    else
        resp->keep_alive = (st->flags & F_CONNECTION_KEEP_ALIVE) && !close;
    if (resp->body_kind == SY_BODY_UNTIL_CLOSE)
        resp->keep_alive = false;
    resp->head_len = st->pos;
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
