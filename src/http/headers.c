/*
 * headers.c: the table of header names switchyard acts on. The parser calls
 * sy_header_lookup() for every field line of every message, so the lookup
 * switches on the name's length first (no two known names of one length
 * share their first letter, which picks the single candidate), then does
 * one case-insensitive compare. Everything else reads flags from the table,
 * so forwarding rules stay data rather than code.
 */
#include "http/headers.h"

typedef struct {
    const char *name; /* canonical spelling */
    size_t len;
    unsigned flags;
} header_info_t;

#define ENTRY(s, f)                                                                                \
    {                                                                                              \
        (s), sizeof(s) - 1, (f)                                                                    \
    }

static const header_info_t header_table[SY_HDR__COUNT] = {
    [SY_HDR_OTHER] = {"", 0, 0},
    [SY_HDR_HOST] = ENTRY("Host", SY_HDR_FLAG_REWRITTEN),
    [SY_HDR_CONTENT_LENGTH] = ENTRY("Content-Length", SY_HDR_FLAG_FRAMING),
    [SY_HDR_TRANSFER_ENCODING] =
        ENTRY("Transfer-Encoding", SY_HDR_FLAG_HOP_BY_HOP | SY_HDR_FLAG_FRAMING),
    [SY_HDR_CONNECTION] = ENTRY("Connection", SY_HDR_FLAG_HOP_BY_HOP),
    [SY_HDR_KEEP_ALIVE] = ENTRY("Keep-Alive", SY_HDR_FLAG_HOP_BY_HOP),
    [SY_HDR_PROXY_CONNECTION] = ENTRY("Proxy-Connection", SY_HDR_FLAG_HOP_BY_HOP),
    [SY_HDR_TE] = ENTRY("TE", SY_HDR_FLAG_HOP_BY_HOP),
    [SY_HDR_TRAILER] = ENTRY("Trailer", SY_HDR_FLAG_HOP_BY_HOP),
    [SY_HDR_UPGRADE] = ENTRY("Upgrade", SY_HDR_FLAG_HOP_BY_HOP),
    [SY_HDR_PROXY_AUTHORIZATION] = ENTRY("Proxy-Authorization", SY_HDR_FLAG_HOP_BY_HOP),
    [SY_HDR_EXPECT] = ENTRY("Expect", 0),
    [SY_HDR_AUTHORIZATION] = ENTRY("Authorization", 0),
    [SY_HDR_X_FORWARDED_FOR] = ENTRY("X-Forwarded-For", SY_HDR_FLAG_REWRITTEN),
    [SY_HDR_X_FORWARDED_PROTO] = ENTRY("X-Forwarded-Proto", SY_HDR_FLAG_REWRITTEN),
    [SY_HDR_X_FORWARDED_HOST] = ENTRY("X-Forwarded-Host", SY_HDR_FLAG_REWRITTEN),
    [SY_HDR_X_REQUEST_ID] = ENTRY("X-Request-Id", 0),
};

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static bool matches(sy_slice_t name, sy_header_id_t id)
{
    const header_info_t *h = &header_table[id];
    if (name.len != h->len)
        return false;
    for (size_t i = 0; i < name.len; i++)
        if (lower((unsigned char)name.ptr[i]) != lower((unsigned char)h->name[i]))
            return false;
    return true;
}

sy_header_id_t sy_header_lookup(sy_slice_t name)
{
    if (name.len == 0 || !name.ptr)
        return SY_HDR_OTHER;
    unsigned char first = lower((unsigned char)name.ptr[0]);
    sy_header_id_t id = SY_HDR_OTHER;
    /* Length, then first letter, selects at most one candidate. */
    switch (name.len) {
    case 2:
        id = SY_HDR_TE;
        break;
    case 4:
        id = SY_HDR_HOST;
        break;
    case 6:
        id = SY_HDR_EXPECT;
        break;
    case 7:
        id = first == 't' ? SY_HDR_TRAILER : SY_HDR_UPGRADE;
        break;
    case 10:
        id = first == 'c' ? SY_HDR_CONNECTION : SY_HDR_KEEP_ALIVE;
        break;
    case 12:
        id = SY_HDR_X_REQUEST_ID;
        break;
    case 13:
        id = SY_HDR_AUTHORIZATION;
        break;
    case 14:
        id = SY_HDR_CONTENT_LENGTH;
        break;
    case 15:
        id = SY_HDR_X_FORWARDED_FOR;
        break;
    case 16:
        id = first == 'p' ? SY_HDR_PROXY_CONNECTION : SY_HDR_X_FORWARDED_HOST;
        break;
    case 17:
        id = first == 't' ? SY_HDR_TRANSFER_ENCODING : SY_HDR_X_FORWARDED_PROTO;
        break;
    case 19:
        id = SY_HDR_PROXY_AUTHORIZATION;
        break;
    default:
        return SY_HDR_OTHER;
    }
    return matches(name, id) ? id : SY_HDR_OTHER;
}

unsigned sy_header_flags(sy_header_id_t id)
{
    if ((unsigned)id >= SY_HDR__COUNT)
        return 0;
    return header_table[id].flags;
}

const char *sy_header_name(sy_header_id_t id)
{
    if ((unsigned)id >= SY_HDR__COUNT)
        return "";
    return header_table[id].name;
}

/* '-' for '_', lower case for upper: the CGI reading of a name's byte. */
static inline unsigned char cgi_fold(unsigned char c)
{
    return c == '_' ? '-' : lower(c);
}

bool sy_header_name_equiv(sy_slice_t a, sy_slice_t b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (cgi_fold((unsigned char)a.ptr[i]) != cgi_fold((unsigned char)b.ptr[i]))
            return false;
    return true;
}
