/*
 * test_serialize.c: the header rules of SPEC §5.7 and §5.9 and the JSON
 * error answers of §5.10, checked as exact bytes where the whole head is
 * known, and rule by rule otherwise. Messages are built by hand (not by the
 * parser) so these tests pin the serializer alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/serialize.h"

#define MAX_TEST_HEADERS 64

typedef struct {
    sy_http_header_t headers[MAX_TEST_HEADERS];
    sy_http_request_t req;
} request_t;

/* Headers given as alternating name, value strings, NULL-terminated. */
static void set_headers(sy_http_header_t *headers, size_t *count, const char *const *nv)
{
    size_t n = 0;
    for (; nv[2 * n]; n++) {
        assert_true(n < MAX_TEST_HEADERS);
        headers[n].name = sy_slice_cstr(nv[2 * n]);
        headers[n].value = sy_slice_cstr(nv[2 * n + 1]);
        headers[n].id = sy_header_lookup(headers[n].name);
    }
    *count = n;
}

static void make_request(request_t *r, const char *method, const char *path, const char *query,
                         const char *const *nv)
{
    memset(r, 0, sizeof *r);
    r->req.method = sy_slice_cstr(method);
    r->req.path = sy_slice_cstr(path);
    r->req.has_query = query != NULL;
    r->req.query = sy_slice_cstr(query ? query : "");
    r->req.minor_version = 1;
    r->req.headers = r->headers;
    set_headers(r->headers, &r->req.header_count, nv);
    for (size_t i = 0; i < r->req.header_count; i++)
        if (r->headers[i].id == SY_HDR_HOST)
            r->req.host = r->headers[i].value;
}

static sy_forward_request_t default_forward(const char *path)
{
    return (sy_forward_request_t){
        .host_header = SY_SLICE_LIT("orders.internal"),
        .base = SY_SLICE_LIT(""),
        .path = sy_slice_cstr(path),
        .client_ip = SY_SLICE_LIT("203.0.113.7"),
        .proto = SY_SLICE_LIT("https"),
        .request_id = SY_SLICE_LIT("rid-1"),
    };
}

static char out[8192];

static const char *write_request(const request_t *r, const sy_forward_request_t *fw)
{
    size_t n = sy_http_write_request_head(out, sizeof out - 1, &r->req, fw);
    assert_true(n > 0);
    out[n] = '\0';
    return out;
}

/* True when the head has a line that is exactly `line` (without CRLF). */
static bool has_line(const char *head, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = head; (p = strstr(p, line)) != NULL; p++) {
        bool starts = p == head || (p >= head + 2 && p[-2] == '\r' && p[-1] == '\n');
        if (starts && p[len] == '\r' && p[len + 1] == '\n')
            return true;
    }
    return false;
}

/* True when some header line starts with "name:" (any case). */
static bool has_header(const char *head, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, len) == 0 && p[2 + len] == ':')
            return true;
    return false;
}

static int count_of(const char *head, const char *needle)
{
    int n = 0;
    for (const char *p = head; (p = strcasestr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_request_exact_minimal(void **state)
{
    (void)state;
    static const char *const nv[] = {"Host", "api.example.com", NULL};
    request_t r;
    make_request(&r, "GET", "/orders/1", NULL, nv);
    sy_forward_request_t fw = default_forward("/orders/1");
    assert_string_equal(write_request(&r, &fw), "GET /orders/1 HTTP/1.1\r\n"
                                                "Host: orders.internal\r\n"
                                                "X-Forwarded-For: 203.0.113.7\r\n"
                                                "X-Forwarded-Proto: https\r\n"
                                                "X-Forwarded-Host: api.example.com\r\n"
                                                "X-Request-Id: rid-1\r\n"
                                                "\r\n");
}

static void test_request_exact_full(void **state)
{
    (void)state;
    static const char *const nv[] = {"Accept",
                                     "application/json",
                                     "Host",
                                     "API.example.com:443",
                                     "Connection",
                                     "keep-alive, X-Secret",
                                     "X-Forwarded-For",
                                     "198.51.100.1",
                                     "x-secret",
                                     "s3cr3t",
                                     "Content-Length",
                                     "5",
                                     "X-Forwarded-Proto",
                                     "http",
                                     "Authorization",
                                     "Bearer abc",
                                     "X-Forwarded-For",
                                     "10.0.0.1, 10.0.0.2",
                                     "X-Forwarded-Host",
                                     "evil.example",
                                     "X-User-Sub",
                                     "forged",
                                     "Expect",
                                     "100-continue",
                                     "X-Request-Id",
                                     "client-id",
                                     "TE",
                                     "trailers",
                                     "Forwarded",
                                     "for=127.0.0.1;host=169.254.169.254",
                                     NULL};
    request_t r;
    make_request(&r, "POST", "/orders/v2/items", "a=1&b=%2F", nv);
    r.req.body_kind = SY_BODY_LENGTH;
    r.req.content_length = 5;
    sy_forward_request_t fw = default_forward("/v2/items");
    fw.base = SY_SLICE_LIT("/prod");
    static const sy_slice_t drop[] = {SY_SLICE_LIT("X-User-Sub")};
    static const sy_header_pair_t add[] = {
        {SY_SLICE_LIT("x-apigw-api-id"), SY_SLICE_LIT("a1b2c3")},
        {SY_SLICE_LIT("X-User-Sub"), SY_SLICE_LIT("user-42")},
    };
    fw.drop = drop;
    fw.drop_count = 1;
    fw.add = add;
    fw.add_count = 2;
    fw.request_id = SY_SLICE_LIT(""); /* the client's well-formed id is kept */
    assert_string_equal(write_request(&r, &fw),
                        "POST /prod/v2/items?a=1&b=%2F HTTP/1.1\r\n"
                        "Accept: application/json\r\n"
                        "Authorization: Bearer abc\r\n"
                        "X-Request-Id: client-id\r\n"
                        "Forwarded: for=127.0.0.1;host=169.254.169.254\r\n"
                        "Host: orders.internal\r\n"
                        "X-Forwarded-For: 198.51.100.1, 10.0.0.1, 10.0.0.2, 203.0.113.7\r\n"
                        "X-Forwarded-Proto: https\r\n"
                        "X-Forwarded-Host: API.example.com:443\r\n"
                        "x-apigw-api-id: a1b2c3\r\n"
                        "X-User-Sub: user-42\r\n"
                        "Content-Length: 5\r\n"
                        "\r\n");
}

/* Issue 9 item 4: a name switchyard sets or drops is matched the way a
 * CGI/WSGI backend reads it (HTTP_X_USER_SUB), so no client spelling of it
 * ("X_User_Sub", "x-user_sub", "X-USER-SUB") reaches the backend beside
 * switchyard's own value. */
static void test_request_set_names_drop_every_cgi_spelling(void **state)
{
    (void)state;
    static const char *const nv[] = {"Host",
                                     "h",
                                     "X_User_Sub",
                                     "spoof-1",
                                     "x-user_sub",
                                     "spoof-2",
                                     "X-USER-SUB",
                                     "spoof-3",
                                     "x_apigw_api_id",
                                     "spoof-4",
                                     "X-Apigw-Api-ID",
                                     "spoof-5",
                                     "X_Tenant",
                                     "spoof-6",
                                     "X-User-Subx",
                                     "kept-1",
                                     "X_User",
                                     "kept-2",
                                     "XUser-Sub",
                                     "kept-3",
                                     NULL};
    request_t r;
    make_request(&r, "GET", "/a", NULL, nv);
    sy_forward_request_t fw = default_forward("/a");
    /* X-Tenant only dropped (a claim the token lacks), X-User-Sub set,
     * x-apigw-api-id both dropped and set, as the proxy does. */
    static const sy_slice_t drop[] = {SY_SLICE_LIT("x-apigw-api-id"), SY_SLICE_LIT("X-Tenant")};
    static const sy_header_pair_t add[] = {
        {SY_SLICE_LIT("x-apigw-api-id"), SY_SLICE_LIT("a1b2c3")},
        {SY_SLICE_LIT("X-User-Sub"), SY_SLICE_LIT("bob")},
    };
    fw.drop = drop;
    fw.drop_count = 2;
    fw.add = add;
    fw.add_count = 2;
    const char *head = write_request(&r, &fw);
    assert_null(strstr(head, "spoof"));
    assert_true(has_line(head, "X-User-Sub: bob"));
    assert_true(has_line(head, "x-apigw-api-id: a1b2c3"));
    assert_int_equal(count_of(head, "user_sub"), 0);
    assert_int_equal(count_of(head, "\nx-user-sub:"), 1);
    assert_true(has_line(head, "X-User-Subx: kept-1"));
    assert_true(has_line(head, "X_User: kept-2"));
    assert_true(has_line(head, "XUser-Sub: kept-3"));

    /* An added name drops the client's copy even when not in `drop`. */
    fw.drop_count = 0;
    head = write_request(&r, &fw);
    assert_null(strstr(head, "spoof-1"));
    assert_null(strstr(head, "spoof-4"));
    assert_true(has_line(head, "X_Tenant: spoof-6"));

    /* A Connection token is matched the same way. */
    static const char *const nv2[] = {"Host",    "h",    "Connection", "x-hop_a",
                                      "X_Hop-A", "gone", NULL};
    make_request(&r, "GET", "/a", NULL, nv2);
    fw = default_forward("/a");
    head = write_request(&r, &fw);
    assert_null(strstr(head, "gone"));
}

static void test_header_name_equiv(void **state)
{
    (void)state;
    assert_true(sy_header_name_equiv(SY_SLICE_LIT("X-User-Sub"), SY_SLICE_LIT("x_user_SUB")));
    assert_true(sy_header_name_equiv(SY_SLICE_LIT("a_b"), SY_SLICE_LIT("A-B")));
    assert_true(sy_header_name_equiv(SY_SLICE_LIT(""), SY_SLICE_LIT("")));
    assert_false(sy_header_name_equiv(SY_SLICE_LIT("X-User-Sub"), SY_SLICE_LIT("X-User-Su")));
    assert_false(sy_header_name_equiv(SY_SLICE_LIT("X-User-Sub"), SY_SLICE_LIT("X.User.Sub")));
    assert_false(sy_header_name_equiv(SY_SLICE_LIT("ab"), SY_SLICE_LIT("a b")));
    /* Only ASCII letters fold: 0xC0 is not 0xE0, '[' is not '{'. */
    assert_false(sy_header_name_equiv(SY_SLICE_LIT("\xc0"), SY_SLICE_LIT("\xe0")));
    assert_false(sy_header_name_equiv(SY_SLICE_LIT("["), SY_SLICE_LIT("{")));
}

static void test_request_hop_by_hop_removed(void **state)
{
    (void)state;
    static const char *const names[] = {
        "Connection",
        "connection",
        "Keep-Alive",
        "KEEP-ALIVE",
        "Proxy-Connection",
        "TE",
        "te",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Authorization",
        "Content-Length",
        "content-length",
        "Expect",
        "X-Forwarded-Proto",
        "x-forwarded-host",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *nv[] = {"Host", "api.example.com", "X-Before", "1", names[i],
                            "zap",  "X-After",         "2",        NULL};
        request_t r;
        make_request(&r, "GET", "/a", NULL, nv);
        sy_forward_request_t fw = default_forward("/a");
        const char *head = write_request(&r, &fw);
        if (strstr(head, "zap"))
            fail_msg("%s was forwarded:\n%s", names[i], head);
        assert_true(has_line(head, "X-Before: 1"));
        assert_true(has_line(head, "X-After: 2"));
        assert_non_null(strstr(head, "X-Before: 1\r\nX-After: 2\r\n"));
    }
}

static void test_request_connection_named_removed(void **state)
{
    (void)state;
    static const char *const nv[] = {
        "Host",   "h",       "Connection", "close,, X-A ,\tx-b", "X-A", "gone-a", "X-B",
        "gone-b", "X-C",     "kept",       "Connection",         "X-D", "x-d",    "gone-d",
        "X-AB",   "kept-ab", NULL};
    request_t r;
    make_request(&r, "GET", "/a", NULL, nv);
    sy_forward_request_t fw = default_forward("/a");
    const char *head = write_request(&r, &fw);
    assert_null(strstr(head, "gone"));
    assert_null(strstr(head, "close"));
    assert_true(has_line(head, "X-C: kept"));
    assert_true(has_line(head, "X-AB: kept-ab"));

    /* More tokens than the fast path holds: still every one removed. */
    char connection[2048] = "";
    for (int i = 0; i < 60; i++) {
        char token[16];
        snprintf(token, sizeof token, "%sX-T%d", i ? ", " : "", i);
        strcat(connection, token);
    }
    const char *nv2[] = {"Host", "h",     "Connection", connection, "X-T0", "gone", "X-T59",
                         "gone", "X-T60", "kept",       "X-T33",    "gone", NULL};
    make_request(&r, "GET", "/a", NULL, nv2);
    head = write_request(&r, &fw);
    assert_null(strstr(head, "gone"));
    assert_true(has_line(head, "X-T60: kept"));

    /* A Connection token naming X-Forwarded-For drops the client's chain. */
    const char *nv3[] = {"Host",    "h", "Connection", "X-Forwarded-For", "X-Forwarded-For",
                         "1.1.1.1", NULL};
    make_request(&r, "GET", "/a", NULL, nv3);
    head = write_request(&r, &fw);
    assert_true(has_line(head, "X-Forwarded-For: 203.0.113.7"));
}

static void test_request_forwarded_headers(void **state)
{
    (void)state;
    request_t r;
    sy_forward_request_t fw = default_forward("/a");

    /* One client XFF: appended to. */
    const char *one[] = {"Host", "h", "x-forwarded-for", "127.0.0.1", NULL};
    make_request(&r, "GET", "/a", NULL, one);
    const char *head = write_request(&r, &fw);
    assert_true(has_line(head, "X-Forwarded-For: 127.0.0.1, 203.0.113.7"));
    assert_null(strstr(head, "x-forwarded-for"));

    /* Empty values contribute nothing. */
    const char *empty[] = {"Host", "h", "X-Forwarded-For", "", "X-Forwarded-For", "1.2.3.4", NULL};
    make_request(&r, "GET", "/a", NULL, empty);
    head = write_request(&r, &fw);
    assert_true(has_line(head, "X-Forwarded-For: 1.2.3.4, 203.0.113.7"));

    /* Client X-Forwarded-Proto / -Host replaced, never duplicated. */
    const char *spoof[] = {"Host", "api.example.com",  "X-Forwarded-Proto",
                           "http", "X-Forwarded-Host", "169.254.169.254",
                           NULL};
    make_request(&r, "GET", "/a", NULL, spoof);
    head = write_request(&r, &fw);
    assert_null(strstr(head, "169.254"));
    assert_true(has_line(head, "X-Forwarded-Proto: https"));
    assert_true(has_line(head, "X-Forwarded-Host: api.example.com"));
    assert_int_equal(count_of(head, "X-Forwarded-Proto"), 1);
    assert_int_equal(count_of(head, "X-Forwarded-Host"), 1);

    /* Host is rewritten to the destination's host header. */
    assert_true(has_line(head, "Host: orders.internal"));
    assert_false(has_line(head, "Host: api.example.com"));

    /* X-Request-Id: kept when sent (any case) and switchyard chose none,
     * replaced when switchyard chose one (the client's was not
     * well-formed), added when absent, omitted when neither. */
    const char *with_id[] = {"Host", "h", "x-request-id", "abc", NULL};
    make_request(&r, "GET", "/a", NULL, with_id);
    head = write_request(&r, &fw);
    assert_false(has_line(head, "x-request-id: abc"));
    assert_true(has_line(head, "X-Request-Id: rid-1"));
    assert_int_equal(count_of(head, "request-id"), 1);
    fw.request_id = SY_SLICE_LIT("");
    head = write_request(&r, &fw);
    assert_true(has_line(head, "x-request-id: abc"));
    assert_null(strstr(head, "rid-1"));
    fw.request_id = SY_SLICE_LIT("rid-1");
    const char *without_id[] = {"Host", "h", NULL};
    make_request(&r, "GET", "/a", NULL, without_id);
    head = write_request(&r, &fw);
    assert_true(has_line(head, "X-Request-Id: rid-1"));
    fw.request_id = SY_SLICE_LIT("");
    head = write_request(&r, &fw);
    assert_false(has_header(head, "X-Request-Id"));

    /* Several client lines: only the kept one (the first well-formed) goes
     * upstream, never a malformed one beside it, even when Connection names
     * it; with switchyard's own id, none of them. */
    const char *two_ids[] = {"Host",
                             "h",
                             "X-Request-Id",
                             "bad\"id}{x",
                             "x-request-id",
                             "good-1",
                             "X-Request-Id",
                             "good-2",
                             "Connection",
                             "X-Request-Id",
                             NULL};
    make_request(&r, "GET", "/a", NULL, two_ids);
    head = write_request(&r, &fw);
    assert_true(has_line(head, "x-request-id: good-1"));
    assert_int_equal(count_of(head, "request-id"), 1);
    fw.request_id = SY_SLICE_LIT("rid-1");
    head = write_request(&r, &fw);
    assert_true(has_line(head, "X-Request-Id: rid-1"));
    assert_int_equal(count_of(head, "request-id"), 1);
    assert_true(sy_http_request_id_well_formed(SY_SLICE_LIT("a-Z_0.9:/+=@")));
    assert_false(sy_http_request_id_well_formed(SY_SLICE_LIT("")));
    assert_false(sy_http_request_id_well_formed(SY_SLICE_LIT("a b")));
    assert_false(sy_http_request_id_well_formed(
        SY_SLICE_LIT("0123456789012345678901234567890123456789012345678901234567890123x")));
}

static void test_request_line_and_framing(void **state)
{
    (void)state;
    const char *nv[] = {"Host", "h", NULL};
    request_t r;
    make_request(&r, "DELETE", "/orders/1", "", nv);
    sy_forward_request_t fw = default_forward("/1");
    fw.base = SY_SLICE_LIT("/prod");
    const char *head = write_request(&r, &fw);
    assert_memory_equal(head, "DELETE /prod/1? HTTP/1.1\r\n", 26);
    assert_false(has_header(head, "Content-Length"));
    assert_false(has_header(head, "Transfer-Encoding"));

    /* Empty target: "/" rather than an invalid request line. */
    make_request(&r, "GET", "/", NULL, nv);
    fw.base = SY_SLICE_LIT("");
    fw.path = SY_SLICE_LIT("");
    head = write_request(&r, &fw);
    assert_memory_equal(head, "GET / HTTP/1.1\r\n", 16);

    r.req.body_kind = SY_BODY_LENGTH;
    r.req.content_length = 0;
    head = write_request(&r, &fw);
    assert_true(has_line(head, "Content-Length: 0"));
    r.req.content_length = UINT64_C(18446744073709551615);
    head = write_request(&r, &fw);
    assert_true(has_line(head, "Content-Length: 18446744073709551615"));
    r.req.body_kind = SY_BODY_CHUNKED;
    head = write_request(&r, &fw);
    assert_true(has_line(head, "Transfer-Encoding: chunked"));
    assert_false(has_header(head, "Content-Length"));
    /* The framing line is last. */
    size_t len = strlen(head);
    assert_string_equal(head + len - 30, "Transfer-Encoding: chunked\r\n\r\n");
}

/* For every cap shorter than the head: 0, and not a byte written past cap. */
static void test_request_truncation(void **state)
{
    (void)state;
    const char *nv[] = {"Host", "h", "X-Forwarded-For", "1.1.1.1", "X-A", "b", NULL};
    request_t r;
    make_request(&r, "GET", "/a", "q", nv);
    r.req.body_kind = SY_BODY_LENGTH;
    r.req.content_length = 12345;
    sy_forward_request_t fw = default_forward("/a");
    size_t full = sy_http_write_request_head(out, sizeof out, &r.req, &fw);
    assert_true(full > 100);
    char *buf = malloc(full + 16);
    for (size_t cap = 0; cap < full; cap++) {
        memset(buf, 0x5A, full + 16);
        assert_int_equal(sy_http_write_request_head(buf, cap, &r.req, &fw), 0);
        for (size_t k = cap; k < full + 16; k++)
            if ((unsigned char)buf[k] != 0x5A)
                fail_msg("cap %zu: byte %zu written", cap, k);
    }
    assert_int_equal(sy_http_write_request_head(buf, full, &r.req, &fw), full);
    assert_memory_equal(buf, out, full);
    free(buf);
}

/* --- responses ----------------------------------------------------------- */

typedef struct {
    sy_http_header_t headers[MAX_TEST_HEADERS];
    sy_http_response_t resp;
} response_t;

static void make_response(response_t *r, int status, const char *reason, const char *const *nv)
{
    memset(r, 0, sizeof *r);
    r->resp.status = status;
    r->resp.minor_version = 1;
    r->resp.reason = sy_slice_cstr(reason);
    r->resp.headers = r->headers;
    set_headers(r->headers, &r->resp.header_count, nv);
}

static const char *write_response(const response_t *r, sy_forward_response_t fw)
{
    size_t n = sy_http_write_response_head(out, sizeof out - 1, &r->resp, &fw);
    assert_true(n > 0);
    out[n] = '\0';
    return out;
}

/* The answer carries switchyard's X-Request-Id (the one logged), once:
 * an upstream copy is replaced; with none chosen, upstream's passes. */
static void test_response_request_id(void **state)
{
    (void)state;
    static const char *const nv[] = {"x-request-id", "upstream-id", "Content-Length", "0", NULL};
    response_t r;
    make_response(&r, 200, "OK", nv);
    sy_forward_response_t fw = {.frame = SY_FRAME_LENGTH,
                                .length = 0,
                                .keep_alive = true,
                                .client_minor = 1,
                                .request_id = SY_SLICE_LIT("rid-9")};
    const char *head = write_response(&r, fw);
    assert_true(has_line(head, "X-Request-Id: rid-9"));
    assert_int_equal(count_of(head, "request-id"), 1);
    fw.request_id = SY_SLICE_LIT("");
    head = write_response(&r, fw);
    assert_true(has_line(head, "x-request-id: upstream-id"));
    assert_int_equal(count_of(head, "request-id"), 1);
}

static void test_response_exact(void **state)
{
    (void)state;
    static const char *const nv[] = {"Content-Type",
                                     "application/json",
                                     "Connection",
                                     "keep-alive, X-Internal",
                                     "X-Internal",
                                     "secret",
                                     "Keep-Alive",
                                     "timeout=5",
                                     "Content-Length",
                                     "17",
                                     "Set-Cookie",
                                     "a=1",
                                     "Set-Cookie",
                                     "b=2",
                                     "Upgrade",
                                     "h2c",
                                     "X-Forwarded-For",
                                     "kept",
                                     NULL};
    response_t r;
    make_response(&r, 200, "Fine", nv);
    sy_forward_response_t fw = {
        .frame = SY_FRAME_LENGTH, .length = 17, .keep_alive = true, .client_minor = 1};
    assert_string_equal(write_response(&r, fw), "HTTP/1.1 200 Fine\r\n"
                                                "Content-Type: application/json\r\n"
                                                "Set-Cookie: a=1\r\n"
                                                "Set-Cookie: b=2\r\n"
                                                "X-Forwarded-For: kept\r\n"
                                                "Content-Length: 17\r\n"
                                                "\r\n");

    /* HTTP/1.0 client kept alive; empty reason uses the standard one. */
    make_response(&r, 404, "", nv);
    fw = (sy_forward_response_t){.frame = SY_FRAME_CLOSE, .keep_alive = true, .client_minor = 0};
    assert_string_equal(write_response(&r, fw), "HTTP/1.1 404 Not Found\r\n"
                                                "Content-Type: application/json\r\n"
                                                "Set-Cookie: a=1\r\n"
                                                "Set-Cookie: b=2\r\n"
                                                "X-Forwarded-For: kept\r\n"
                                                "Connection: keep-alive\r\n"
                                                "\r\n");

    /* Chunked, closing. */
    static const char *const te[] = {"Transfer-Encoding",
                                     "chunked",
                                     "Trailer",
                                     "X-Sum",
                                     "Proxy-Connection",
                                     "x",
                                     "TE",
                                     "y",
                                     NULL};
    make_response(&r, 500, "", te);
    fw = (sy_forward_response_t){.frame = SY_FRAME_CHUNKED, .keep_alive = false, .client_minor = 1};
    assert_string_equal(write_response(&r, fw), "HTTP/1.1 500 Internal Server Error\r\n"
                                                "Transfer-Encoding: chunked\r\n"
                                                "Connection: close\r\n"
                                                "\r\n");
}

static void test_response_bodyless_framing(void **state)
{
    (void)state;
    static const char *const nv[] = {"ETag", "\"x\"", "Content-Length", "1234", NULL};
    response_t r;
    sy_forward_response_t fw = {.frame = SY_FRAME_NONE, .keep_alive = true, .client_minor = 1};

    /* HEAD answer (200) and 304 keep the upstream's Content-Length. */
    make_response(&r, 200, "OK", nv);
    assert_string_equal(write_response(&r, fw),
                        "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n");
    make_response(&r, 304, "Not Modified", nv);
    assert_true(has_line(write_response(&r, fw), "Content-Length: 1234"));
    /* 204 and 1xx never carry one. */
    make_response(&r, 204, "No Content", nv);
    assert_string_equal(write_response(&r, fw), "HTTP/1.1 204 No Content\r\nETag: \"x\"\r\n\r\n");
    make_response(&r, 100, "Continue", nv);
    assert_false(has_header(write_response(&r, fw), "Content-Length"));
    /* Without an upstream Content-Length nothing is invented. */
    static const char *const bare[] = {"ETag", "\"x\"", NULL};
    make_response(&r, 200, "OK", bare);
    assert_false(has_header(write_response(&r, fw), "Content-Length"));
    /* CLOSE framing: no length even though the upstream sent one. */
    make_response(&r, 200, "OK", nv);
    fw.frame = SY_FRAME_CLOSE;
    fw.keep_alive = false;
    assert_string_equal(write_response(&r, fw),
                        "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nConnection: close\r\n\r\n");
    /* LENGTH framing overrides the upstream's value. */
    fw = (sy_forward_response_t){
        .frame = SY_FRAME_LENGTH, .length = 0, .keep_alive = true, .client_minor = 1};
    const char *head = write_response(&r, fw);
    assert_true(has_line(head, "Content-Length: 0"));
    assert_false(has_line(head, "Content-Length: 1234"));
}

static void test_response_truncation(void **state)
{
    (void)state;
    static const char *const nv[] = {"A", "1", "B", "2", NULL};
    response_t r;
    make_response(&r, 201, "Created", nv);
    sy_forward_response_t fw = {.frame = SY_FRAME_LENGTH, .length = 99, .keep_alive = false};
    size_t full = sy_http_write_response_head(out, sizeof out, &r.resp, &fw);
    assert_true(full > 40);
    char buf[256];
    for (size_t cap = 0; cap < full; cap++) {
        memset(buf, 0x5A, sizeof buf);
        assert_int_equal(sy_http_write_response_head(buf, cap, &r.resp, &fw), 0);
        for (size_t k = cap; k < sizeof buf; k++)
            assert_int_equal((unsigned char)buf[k], 0x5A);
    }
    assert_int_equal(sy_http_write_response_head(buf, full, &r.resp, &fw), full);
}

/* --- switchyard's own errors --------------------------------------------- */

static void test_error_exact(void **state)
{
    (void)state;
    char buf[1024];
    size_t n =
        sy_http_write_error(buf, sizeof buf - 1, 404, "no route for this path", false, NULL, false);
    buf[n] = '\0';
    assert_string_equal(buf, "HTTP/1.1 404 Not Found\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: 36\r\n"
                             "\r\n"
                             "{\"message\":\"no route for this path\"}");

    n = sy_http_write_error(buf, sizeof buf - 1, 405, "method not allowed", true,
                            "Allow: GET, POST\r\n", false);
    buf[n] = '\0';
    assert_string_equal(buf, "HTTP/1.1 405 Method Not Allowed\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: 32\r\n"
                             "Allow: GET, POST\r\n"
                             "Connection: close\r\n"
                             "\r\n"
                             "{\"message\":\"method not allowed\"}");

    /* HEAD: same head, same Content-Length, no body. */
    n = sy_http_write_error(buf, sizeof buf - 1, 405, "method not allowed", true,
                            "Allow: GET, POST\r\n", true);
    buf[n] = '\0';
    assert_string_equal(buf, "HTTP/1.1 405 Method Not Allowed\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: 32\r\n"
                             "Allow: GET, POST\r\n"
                             "Connection: close\r\n"
                             "\r\n");
}

static void test_error_escaping(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = sy_http_write_error(buf, sizeof buf - 1, 502, "route rejected: \"x\"\\\n\x01", false,
                                   NULL, false);
    buf[n] = '\0';
    const char *body = strstr(buf, "\r\n\r\n") + 4;
    assert_string_equal(body, "{\"message\":\"route rejected: \\\"x\\\"\\\\\\n\\u0001\"}");
    char expect_len[64];
    snprintf(expect_len, sizeof expect_len, "Content-Length: %zu", strlen(body));
    assert_true(has_line(buf, expect_len));
    assert_true(has_line(buf, "HTTP/1.1 502 Bad Gateway"));

    /* NULL message: the reason phrase. */
    n = sy_http_write_error(buf, sizeof buf - 1, 503, NULL, false, NULL, false);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "{\"message\":\"Service Unavailable\"}"));
}

static void test_error_truncation(void **state)
{
    (void)state;
    char ref[512], buf[512];
    size_t full = sy_http_write_error(ref, sizeof ref, 421, "misdirected \"request\"", true,
                                      "Retry-After: 1\r\n", false);
    assert_true(full > 0);
    for (size_t cap = 0; cap < full; cap++) {
        memset(buf, 0x5A, sizeof buf);
        assert_int_equal(sy_http_write_error(buf, cap, 421, "misdirected \"request\"", true,
                                             "Retry-After: 1\r\n", false),
                         0);
        for (size_t k = cap; k < sizeof buf; k++)
            if ((unsigned char)buf[k] != 0x5A)
                fail_msg("cap %zu: byte %zu written", cap, k);
    }
    assert_int_equal(sy_http_write_error(buf, full, 421, "misdirected \"request\"", true,
                                         "Retry-After: 1\r\n", false),
                     full);
    assert_memory_equal(buf, ref, full);
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(sy_http_reason(200), "OK");
    assert_string_equal(sy_http_reason(400), "Bad Request");
    assert_string_equal(sy_http_reason(404), "Not Found");
    assert_string_equal(sy_http_reason(413), "Content Too Large");
    assert_string_equal(sy_http_reason(421), "Misdirected Request");
    assert_string_equal(sy_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(sy_http_reason(502), "Bad Gateway");
    assert_string_equal(sy_http_reason(504), "Gateway Timeout");
    assert_string_equal(sy_http_reason(299), "Unknown");
    assert_string_equal(sy_http_reason(-1), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_exact_minimal),
        cmocka_unit_test(test_request_exact_full),
        cmocka_unit_test(test_request_hop_by_hop_removed),
        cmocka_unit_test(test_request_set_names_drop_every_cgi_spelling),
        cmocka_unit_test(test_header_name_equiv),
        cmocka_unit_test(test_request_connection_named_removed),
        cmocka_unit_test(test_request_forwarded_headers),
        cmocka_unit_test(test_request_line_and_framing),
        cmocka_unit_test(test_request_truncation),
        cmocka_unit_test(test_response_exact),
        cmocka_unit_test(test_response_request_id),
        cmocka_unit_test(test_response_bodyless_framing),
        cmocka_unit_test(test_response_truncation),
        cmocka_unit_test(test_error_exact),
        cmocka_unit_test(test_error_escaping),
        cmocka_unit_test(test_error_truncation),
        cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
