/*
 * test_parser_vectors.c: the parser against published request-smuggling and
 * parsing vectors ($SY_VECTORS/http, see SOURCES.md there): 245 cases from
 * llhttp's tests and defparam/smuggler, and all 1,606 smuggler byte-loop TE
 * mutations.
 *
 * A vector is a whole byte string, possibly several pipelined messages, so
 * it is judged like a connection would be: parse a head, skip or decode its
 * body, go on with the next message; bytes after a message that closes the
 * connection are an error (llhttp's "Data after Connection: close"); bytes
 * that end mid-message are fine. That gives two verdicts:
 *   - parser: heads and bodies alone, compared with `expected_parser`;
 *   - strict: the same plus sy_path_check_request() on every path, compared
 *     with `expected`, the strict-proxy verdict.
 * Where our parser refuses a message that `expected_parser` accepts because
 * of a strict-proxy rule the parser owns (missing Host, CONNECT, absolute-
 * and asterisk-form, see SPEC §5.1), that is not a disagreement as long as
 * `expected` rejects it too. Where a vector disagrees with SPEC §5.1, the
 * case is listed in `exceptions` below with the reason; SPEC wins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/base64.h"
#include "http/parser.h"
#include "route/path.h"

static const sy_http_limits_t limits = {
    .max_request_line_bytes = 8192,
    .max_header_bytes = 32768,
    .max_headers = 100,
    .max_body_bytes = 10485760,
};

/*
 * Vector cases where SPEC §5.1 (our contract) and the vector disagree.
 * `field` names the verdict that differs: "parser" (expected_parser) or
 * "strict" (expected) or "both".
 */
typedef struct {
    const char *name;
    const char *field;
    const char *why;
} vector_exception_t;

static const vector_exception_t exceptions[] = {
    /* Leading empty lines: RFC 9112 §2.2 says SHOULD ignore at least one
     * CRLF before a request line; switchyard refuses them (parser.c), since
     * a CRLF after a body usually means two parsers disagree on where the
     * body ended. */
    {"llhttp/connection: `keep-alive` / CRLF between requests, implicit `keep-alive`", "both",
     "CRLF before the pipelined request line is refused, not skipped"},
    {"llhttp/sample: Prefix newline", "parser", "leading CRLF refused"},
    {"llhttp/sample: Request starting with CRLF", "parser", "leading CRLF refused"},
    /* SPEC §5.1 refuses a missing Host for every version: switchyard routes
     * on Host, and a 1.0 request without one cannot be routed. RFC 9112
     * §3.2's MUST applies to 1.1 only, hence the vector's accept. */
    {"llhttp/content-length: Funky `Content-Length` with body", "both",
     "HTTP/1.0 without Host is refused (missing_host)"},
    /* A method is any token (RFC 9110 §9.1); llhttp refuses ANNOUNCE over
     * HTTP only because its fixed method table files it under RTSP. */
    {"llhttp/invalid: HTTP protocol and ANNOUNCE method", "both",
     "ANNOUNCE is a valid token method; routes restrict methods, not the parser"},
    /* A tab after a framing value: RFC 9110 allows it and llhttp at the
     * vectors' commit accepted it, but llhttp 9.3 (Node 20) refuses it, so
     * switchyard does too (tests/e2e/differential_parsing.test.mjs). */
    {"llhttp/content-length: Spaces in `Content-Length` (surrounding) / Tabs in "
     "`Content-Length` (surrounding)",
     "parser", "a tab after the Content-Length value is refused (bad_content_length)"},
    /* Upgrade is not implemented: Upgrade is a hop-by-hop header we drop, so
     * the bytes after the head are the next request, and they are not one. */
    {"llhttp/connection: `upgrade` / Upgrade GET request", "parser",
     "no Upgrade pass-through: the trailing bytes parse as a bad next request"},
    {"llhttp/connection: `upgrade` / Upgrade POST request", "parser",
     "no Upgrade pass-through: the trailing bytes parse as a bad next request"},
};

static const vector_exception_t *find_exception(const char *name)
{
    for (size_t i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++)
        if (strcmp(exceptions[i].name, name) == 0)
            return &exceptions[i];
    return NULL;
}

/* ---- helpers ------------------------------------------------------------------- */

static const char *vectors_dir(void)
{
    const char *dir = getenv("SY_VECTORS");
    return dir && *dir ? dir : "tests/vectors";
}

static json_t *load_vectors(const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/http/%s", vectors_dir(), file);
    json_error_t err;
    return json_load_file(path, 0, &err);
}

/* Decodes padded standard base64 into a malloc'd buffer; NULL on bad input. */
static char *b64_decode(const char *in, size_t *out_len)
{
    size_t n = strlen(in);
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (out && !sy_base64_decode(sy_slice(in, n), false, true, out, n / 4 * 3, out_len)) {
        free(out);
        return NULL;
    }
    return (char *)out;
}

typedef struct {
    bool parser_reject;      /* framing/syntax verdict */
    bool strict_reject;      /* plus the path check */
    sy_http_reject_t reason; /* when the parser rejected */
    const char *stage;       /* "head", "chunked", "after close" */
    const char *path_reason; /* first path refusal */
    unsigned message;        /* index of the message that decided */
} stream_verdict_t;

/* Judges buf as the bytes of one client connection. */
static stream_verdict_t judge_stream(const char *buf, size_t len)
{
    stream_verdict_t v = {0};
    static sy_http_header_t headers[SY_HTTP_MAX_HEADERS];
    size_t off = 0;
    for (unsigned msg = 0; off < len; msg++) {
        v.message = msg;
        sy_http_request_t req;
        sy_http_reject_t rej;
        sy_http_status_t st = sy_http_request_parse(NULL, buf + off, len - off, &limits, headers,
                                                    SY_HTTP_MAX_HEADERS, &req, &rej);
        if (st == SY_HTTP_INCOMPLETE)
            break;
        if (st == SY_HTTP_ERROR) {
            v.parser_reject = true;
            v.reason = rej;
            v.stage = "head";
            break;
        }
        const char *why = sy_path_check_request(req.path);
        if (why && !v.path_reason)
            v.path_reason = why;
        off += req.head_len;
        if (req.body_kind == SY_BODY_LENGTH) {
            if (len - off < req.content_length)
                break;
            off += (size_t)req.content_length;
        } else if (req.body_kind == SY_BODY_CHUNKED) {
            sy_http_chunked_t dec;
            sy_http_chunked_init(&dec, limits.max_header_bytes);
            sy_chunked_result_t r;
            do {
                size_t consumed;
                sy_slice_t data;
                r = sy_http_chunked_decode(&dec, buf + off, len - off, &consumed, &data, &rej);
                off += consumed;
            } while (r == SY_CHUNKED_DATA);
            if (r == SY_CHUNKED_ERROR) {
                v.parser_reject = true;
                v.reason = rej;
                v.stage = "chunked";
                break;
            }
            if (r == SY_CHUNKED_NEED_MORE)
                break;
        }
        if (!req.keep_alive && off < len) {
            v.parser_reject = true;
            v.reason = SY_REJECT_NONE;
            v.stage = "after close";
            break;
        }
    }
    v.strict_reject = v.parser_reject || v.path_reason != NULL;
    return v;
}

/* The verdict on the first message does not depend on how its bytes were
 * split: every prefix parsed alone, and every prefix fed one byte per call
 * to one resumed state, must be INCOMPLETE or give the all-at-once verdict,
 * and the whole input split in two at any position must give it. Returns
 * false on a difference. */
static bool prefixes_agree(const char *buf, size_t len)
{
    static sy_http_header_t h1[SY_HTTP_MAX_HEADERS], h2[SY_HTTP_MAX_HEADERS],
        h3[SY_HTTP_MAX_HEADERS];
    sy_http_request_t full, part, resumed;
    sy_http_reject_t full_rej, part_rej, resumed_rej;
    sy_http_status_t full_st =
        sy_http_request_parse(NULL, buf, len, &limits, h1, SY_HTTP_MAX_HEADERS, &full, &full_rej);
    sy_http_head_state_t state = {0};
    for (size_t k = 0; k < len; k++) {
        sy_http_status_t st =
            sy_http_request_parse(NULL, buf, k, &limits, h2, SY_HTTP_MAX_HEADERS, &part, &part_rej);
        sy_http_status_t rst = sy_http_request_parse(&state, buf, k, &limits, h3,
                                                     SY_HTTP_MAX_HEADERS, &resumed, &resumed_rej);
        if (rst != st || resumed_rej != part_rej)
            return false;
        if (st == SY_HTTP_INCOMPLETE)
            continue;
        if (st != full_st || part_rej != full_rej)
            return false;
        if (st == SY_HTTP_OK &&
            (part.head_len != full.head_len || resumed.head_len != full.head_len ||
             resumed.header_count != full.header_count))
            return false;
    }
    for (size_t k = 0; k <= len; k++) {
        sy_http_head_state_reset(&state);
        sy_http_request_parse(&state, buf, k, &limits, h3, SY_HTTP_MAX_HEADERS, &resumed,
                              &resumed_rej);
        sy_http_status_t rst = sy_http_request_parse(&state, buf, len, &limits, h3,
                                                     SY_HTTP_MAX_HEADERS, &resumed, &resumed_rej);
        if (rst != full_st || resumed_rej != full_rej)
            return false;
        if (rst == SY_HTTP_OK &&
            (resumed.head_len != full.head_len || resumed.header_count != full.header_count ||
             resumed.content_length != full.content_length))
            return false;
    }
    return true;
}

/* Parser-owned strict-proxy rules: reasons for which `expected_parser`
 * (framing and syntax only) accepts but SPEC §5.1 refuses. */
static bool is_strict_proxy_rule(sy_http_reject_t r)
{
    return r == SY_REJECT_MISSING_HOST || r == SY_REJECT_CONNECT_METHOD ||
           r == SY_REJECT_ABSOLUTE_FORM || r == SY_REJECT_ASTERISK_FORM;
}

static bool is_reject(json_t *c, const char *key)
{
    const char *s = json_string_value(json_object_get(c, key));
    return s && strcmp(s, "reject") == 0;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_http_request_cases(void **state)
{
    (void)state;
    json_t *root = load_vectors("http_request_cases.json");
    if (!root) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_is_array(cases));
    size_t n = json_array_size(cases), failures = 0, parser_agree = 0, strict_agree = 0,
           owned_rule = 0, excepted = 0, accepted = 0;
    bool used[sizeof exceptions / sizeof exceptions[0]] = {false};
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *b64 = json_string_value(json_object_get(c, "raw_request_b64"));
        assert_non_null(name);
        assert_non_null(b64);
        size_t len;
        char *buf = b64_decode(b64, &len);
        assert_non_null(buf);
        stream_verdict_t v = judge_stream(buf, len);
        if (!prefixes_agree(buf, len)) {
            printf("PREFIX MISMATCH %s\n", name);
            failures++;
        }
        free(buf);
        bool want_parser = is_reject(c, "expected_parser");
        bool want_strict = is_reject(c, "expected");
        const vector_exception_t *ex = find_exception(name);
        bool counted = false;
        accepted += !v.strict_reject;

        bool parser_ok = v.parser_reject == want_parser;
        if (parser_ok)
            parser_agree++;
        else if (v.parser_reject && want_strict && is_strict_proxy_rule(v.reason) &&
                 strcmp(v.stage, "head") == 0)
            parser_ok = true, owned_rule++;
        else if (ex && (strcmp(ex->field, "parser") == 0 || strcmp(ex->field, "both") == 0))
            parser_ok = counted = true;

        bool strict_ok = v.strict_reject == want_strict;
        if (strict_ok)
            strict_agree++;
        else if (ex && (strcmp(ex->field, "strict") == 0 || strcmp(ex->field, "both") == 0))
            strict_ok = counted = true;
        excepted += counted;
        if (counted)
            used[ex - exceptions] = true; /* an exception nobody needs is stale */

        if (!parser_ok || !strict_ok) {
            failures++;
            printf("MISMATCH %s: ours parser=%s strict=%s (%s %s, message %u%s%s); "
                   "expected_parser=%s expected=%s\n",
                   name, v.parser_reject ? "reject" : "accept",
                   v.strict_reject ? "reject" : "accept", v.stage ? v.stage : "-",
                   sy_http_reject_name(v.reason), v.message, v.path_reason ? ", path: " : "",
                   v.path_reason ? v.path_reason : "", want_parser ? "reject" : "accept",
                   want_strict ? "reject" : "accept");
        }
    }
    printf("http_request_cases: %zu cases, parser verdict equal %zu, strict verdict equal %zu, "
           "rejected by a parser-owned strict rule %zu, cases passed by a listed exception %zu, "
           "accepted %zu, "
           "mismatches %zu\n",
           n, parser_agree, strict_agree, owned_rule, excepted, accepted, failures);
    for (size_t i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++)
        if (!used[i])
            printf("stale exception (case agrees or is gone): %s\n", exceptions[i].name);
    json_decref(root);
    assert_int_equal(failures, 0);
    for (size_t i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++)
        assert_true(used[i]);
}

static void test_smuggler_mutations(void **state)
{
    (void)state;
    json_t *root = load_vectors("smuggler_te_mutations_full.json");
    if (!root) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_is_array(cases));
    size_t n = json_array_size(cases), rejected = 0;
    size_t by_reason[SY_REJECT__COUNT + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        size_t len;
        char *buf = b64_decode(json_string_value(json_object_get(c, "raw_request_b64")), &len);
        assert_non_null(buf);
        assert_true(is_reject(c, "expected"));
        stream_verdict_t v = judge_stream(buf, len);
        assert_true(prefixes_agree(buf, len));
        free(buf);
        if (v.parser_reject) {
            rejected++;
            by_reason[v.reason]++;
        } else {
            printf("ACCEPTED smuggler mutation %s\n", name);
        }
    }
    printf("smuggler_te_mutations_full: %zu cases, %zu rejected by the parser; by reason:", n,
           rejected);
    for (int r = 0; r < SY_REJECT__COUNT; r++)
        if (by_reason[r])
            printf(" %s=%zu", sy_http_reject_name((sy_http_reject_t)r), by_reason[r]);
    printf("\n");
    json_decref(root);
    assert_true(n > 0);
    assert_int_equal(rejected, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_request_cases),
        cmocka_unit_test(test_smuggler_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
