/*
 * test_sigv4.c: the SigV4 signer against AWS's own published answers: every
 * case of the aws-sig-v4-test-suite (.req in; .creq, .sts and .authz
 * compared byte for byte, normalize-path/ and post-sts-token/ included) and
 * the S3 worked examples (header auth, presigned URL, chunk signatures).
 * Vectors come from $SY_VECTORS; absent, the vector tests fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aws/sigv4.h"

static char vectors[1024];

static bool vectors_dir(const char *sub, char *out, size_t cap)
{
    const char *root = getenv("SY_VECTORS");
    if (!root || !*root)
        root = "tests/vectors";
    snprintf(out, cap, "%s/%s", root, sub);
    struct stat st;
    return stat(out, &st) == 0;
}

static char *read_file(const char *path, size_t *len)
{
    sy_error_t err;
    return sy_file_read(path, 1u << 20, len, &err);
}

/* ---- the .req format: request line, headers (a line starting with
 * whitespace continues the previous header as another value), blank line,
 * body. ---- */

typedef struct {
    char method[16];
    char *path, *query;
    sy_sigv4_header_t headers[32];
    char *names[32], *values[32];
    size_t count;
    const char *body;
    size_t body_len;
    char *text;
} parsed_req_t;

static void req_free(parsed_req_t *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->path);
    free(r->query);
    free(r->text);
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void req_parse(parsed_req_t *r, char *text, size_t len)
{
    memset(r, 0, sizeof *r);
    r->text = text;
    char *end = text + len;
    char *eol = memchr(text, '\n', len);
    assert_non_null(eol);
    char *sp1 = memchr(text, ' ', (size_t)(eol - text));
    char *sp2 = eol;
    while (sp2 > sp1 && *sp2 != ' ')
        sp2--;
    assert_true(sp1 && sp2 > sp1);
    memcpy(r->method, text, (size_t)(sp1 - text));
    char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    char *q = memchr(target, '?', tlen);
    r->path = dupn(target, q ? (size_t)(q - target) : tlen);
    r->query = q ? dupn(q + 1, (size_t)(sp2 - q - 1)) : NULL;
    char *line = eol + 1;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *lend = nl ? nl : end;
        if (lend == line) { /* blank line: the body follows */
            r->body = line + 1;
            r->body_len = (size_t)(end - line - 1);
            break;
        }
        if ((*line == ' ' || *line == '\t') && r->count > 0) {
            assert_true(r->count < 32);
            r->names[r->count] = strdup(r->names[r->count - 1]);
            r->values[r->count] = dupn(line, (size_t)(lend - line));
        } else {
            char *colon = memchr(line, ':', (size_t)(lend - line));
            assert_non_null(colon);
            assert_true(r->count < 32);
            r->names[r->count] = dupn(line, (size_t)(colon - line));
            r->values[r->count] = dupn(colon + 1, (size_t)(lend - colon - 1));
        }
        r->headers[r->count].name = r->names[r->count];
        r->headers[r->count].value = r->values[r->count];
        r->count++;
        if (!nl)
            break;
        line = nl + 1;
    }
}

static const char *req_header(const parsed_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

static int suite_cases, suite_failures;

static void compare_expected(const char *dir, const char *name, const char *ext, const char *got)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    char *want = read_file(path, NULL);
    assert_non_null(want);
    if (strcmp(want, got) != 0) {
        print_error("%s.%s differs\n--- want\n%s\n--- got\n%s\n", name, ext, want, got);
        suite_failures++;
    }
    free(want);
}

static void run_suite_case(const char *dir, const char *name)
{
    static sy_aws_credentials_t creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                         NULL};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.req", dir, name);
    size_t len;
    char *text = read_file(path, &len);
    assert_non_null(text);
    parsed_req_t r;
    req_parse(&r, text, len);
    const char *date = req_header(&r, "X-Amz-Date");
    assert_non_null(date);
    sy_sigv4_request_t req = {
        .method = r.method,
        .path = r.path,
        .query = r.query,
        .headers = r.headers,
        .header_count = r.count,
        .payload = r.body,
        .payload_len = r.body_len,
        .region = "us-east-1",
        .service = "service",
        .amz_date = date,
    };
    sy_sigv4_signature_t sig;
    sy_error_t err = {{0}};
    assert_true(sy_sigv4_sign(&req, &creds, &sig, &err));
    compare_expected(dir, name, "creq", sig.canonical_request);
    compare_expected(dir, name, "sts", sig.string_to_sign);
    compare_expected(dir, name, "authz", sig.authorization);
    suite_cases++;
    sy_sigv4_signature_free(&sig);
    req_free(&r);
}

/* A case is a folder NAME holding NAME.req; other folders are descended. */
static void walk_suite(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[2048], req[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        snprintf(req, sizeof req, "%s/%s.req", sub, e->d_name);
        if (stat(req, &st) == 0)
            run_suite_case(sub, e->d_name);
        else
            walk_suite(sub);
    }
    closedir(d);
}

static void test_aws_suite(void **state)
{
    (void)state;
    if (!vectors_dir("sigv4/aws-sig-v4-test-suite", vectors, sizeof vectors)) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    suite_cases = suite_failures = 0;
    walk_suite(vectors);
    print_message("aws-sig-v4-test-suite: %d cases, %d mismatches\n", suite_cases, suite_failures);
    /* SOURCES.md lists 31 cases (22 + 7 normalize-path + 2 post-sts-token):
     * fewer means the walk missed a folder. */
    assert_true(suite_cases >= 31);
    assert_int_equal(suite_failures, 0);
}

/* ---- S3 worked examples ---- */

static json_t *s3_examples(void)
{
    char path[1024];
    if (!vectors_dir("sigv4/s3-sigv4-examples.json", path, sizeof path))
        return NULL;
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    assert_non_null(doc);
    return doc;
}

static sy_aws_credentials_t s3_creds(json_t *doc)
{
    json_t *c = json_object_get(doc, "credentials");
    return (sy_aws_credentials_t){
        (char *)json_string_value(json_object_get(c, "access_key_id")),
        (char *)json_string_value(json_object_get(c, "secret_access_key")), NULL};
}

/* Splits "https://host/path?query" into path and query (malloc'd). */
static void split_url(const char *url, char **path, char **query)
{
    const char *p = strstr(url, "://");
    assert_non_null(p);
    p = strchr(p + 3, '/');
    assert_non_null(p);
    const char *q = strchr(p, '?');
    *path = q ? dupn(p, (size_t)(q - p)) : strdup(p);
    *query = q ? strdup(q + 1) : NULL;
}

/* "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…" → without the spaces
 * after commas, the form the S3 docs print (both are accepted by AWS). */
static void squeeze_commas(char *s)
{
    char *o = s;
    for (char *i = s; *i; i++) {
        *o++ = *i;
        if (*i == ',' && i[1] == ' ')
            i++;
    }
    *o = '\0';
}

static void sign_s3_case(json_t *doc, json_t *c, const char *query, sy_sigv4_signature_t *sig)
{
    sy_aws_credentials_t creds = s3_creds(doc);
    char *path, *url_query;
    split_url(json_string_value(json_object_get(c, "url")), &path, &url_query);
    json_t *hs = json_object_get(c, "canonical_headers");
    size_t n = json_array_size(hs);
    sy_sigv4_header_t headers[16];
    assert_true(n > 0 && n <= 16);
    for (size_t i = 0; i < n; i++) {
        headers[i].name = json_string_value(json_array_get(json_array_get(hs, i), 0));
        headers[i].value = json_string_value(json_array_get(json_array_get(hs, i), 1));
    }
    const char *body = json_string_value(json_object_get(c, "body"));
    const char *declared = json_string_value(json_object_get(c, "payload_hash"));
    bool hash_body = body && strlen(declared) == 64;
    sy_sigv4_request_t req = {
        .method = json_string_value(json_object_get(c, "method")),
        .path = path,
        .query = query ? query : url_query,
        .headers = headers,
        .header_count = n,
        /* Hash the body ourselves when there is one; a streaming or
         * unsigned payload is declared. */
        .payload_hash = hash_body ? NULL : declared,
        .payload = body,
        .payload_len = body ? strlen(body) : 0,
        .region = json_string_value(json_object_get(doc, "region")),
        .service = json_string_value(json_object_get(doc, "service")),
        .amz_date = json_string_value(json_object_get(doc, "amz_date")),
        .s3 = true,
    };
    sy_error_t err = {{0}};
    assert_true(sy_sigv4_sign(&req, &creds, sig, &err));
    if (hash_body) {
        char h[65];
        assert_true(sy_sigv4_sha256_hex(body, strlen(body), h));
        assert_string_equal(h, declared);
    }
    assert_string_equal(sig->canonical_request,
                        json_string_value(json_object_get(c, "canonical_request")));
    assert_string_equal(sig->string_to_sign,
                        json_string_value(json_object_get(c, "string_to_sign")));
    assert_string_equal(sig->signature,
                        json_string_value(json_object_get(c, "expected_signature")));
    free(path);
    free(url_query);
}

static void test_s3_header_examples(void **state)
{
    (void)state;
    json_t *doc = s3_examples();
    if (!doc) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    size_t i, done = 0;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c)
    {
        const char *authz = json_string_value(json_object_get(c, "expected_authorization"));
        if (!authz)
            continue;
        sy_sigv4_signature_t sig;
        sign_s3_case(doc, c, NULL, &sig);
        squeeze_commas(sig.authorization);
        assert_string_equal(sig.authorization, authz);
        sy_sigv4_signature_free(&sig);
        done++;
    }
    assert_true(done >= 4);
    json_decref(doc);
}

static void test_s3_presigned(void **state)
{
    (void)state;
    json_t *doc = s3_examples();
    if (!doc) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    size_t i, done = 0;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c)
    {
        const char *want_url = json_string_value(json_object_get(c, "expected_url"));
        if (!want_url)
            continue;
        const char *expires = strstr(want_url, "X-Amz-Expires=");
        assert_non_null(expires);
        sy_aws_credentials_t creds = s3_creds(doc);
        const char *date = json_string_value(json_object_get(doc, "amz_date"));
        const char *region = json_string_value(json_object_get(doc, "region"));
        /* Raw and out of order on purpose: the signer encodes and sorts. */
        char query[1024];
        snprintf(query, sizeof query,
                 "X-Amz-SignedHeaders=host&X-Amz-Expires=%ld&X-Amz-Date=%s&"
                 "X-Amz-Credential=%s/%.8s/%s/s3/aws4_request&X-Amz-Algorithm=AWS4-HMAC-SHA256",
                 strtol(expires + 14, NULL, 10), date, creds.access_key_id, date, region);
        sy_sigv4_signature_t sig;
        sign_s3_case(doc, c, query, &sig);
        /* The presigned URL: canonical query + the signature. */
        const char *cq = strchr(strchr(sig.canonical_request, '\n') + 1, '\n') + 1;
        size_t cq_len = (size_t)(strchr(cq, '\n') - cq);
        char url[2048];
        snprintf(url, sizeof url, "%s?%.*s&X-Amz-Signature=%s",
                 json_string_value(json_object_get(c, "url")), (int)cq_len, cq, sig.signature);
        assert_string_equal(url, want_url);
        sy_sigv4_signature_free(&sig);
        done++;
    }
    assert_true(done >= 1);
    json_decref(doc);
}

static void test_s3_chunk_signatures(void **state)
{
    (void)state;
    json_t *doc = s3_examples();
    if (!doc) {
        fail_msg("test vectors not found: set SY_VECTORS or run from the repository root "
                 "(tests/vectors)");
    }
    size_t i, done = 0;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c)
    {
        json_t *chunks = json_object_get(c, "chunks");
        if (!chunks)
            continue;
        sy_sigv4_signature_t sig;
        sign_s3_case(doc, c, NULL, &sig);
        sy_aws_credentials_t creds = s3_creds(doc);
        const char *date = json_string_value(json_object_get(doc, "amz_date"));
        const char *region = json_string_value(json_object_get(doc, "region"));
        char prev[65];
        memcpy(prev, sig.signature, 65);
        size_t k;
        json_t *ch;
        json_array_foreach(chunks, k, ch)
        {
            const char *what = json_string_value(json_object_get(ch, "chunk_data"));
            size_t n = strncmp(what, "empty", 5) == 0 ? 0 : strtoul(what, NULL, 10);
            char *data = malloc(n + 1);
            memset(data, 'a', n);
            char data_hash[65], sts[1024], got[65];
            assert_true(sy_sigv4_sha256_hex(data, n, data_hash));
            snprintf(sts, sizeof sts,
                     "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%.8s/%s/s3/aws4_request\n%s\n%s\n%s", date,
                     date, region, prev, SY_SIGV4_EMPTY_SHA256, data_hash);
            assert_string_equal(sts, json_string_value(json_object_get(ch, "string_to_sign")));
            assert_true(sy_sigv4_sign_string(&creds, "20130524", region, "s3", sts, got));
            assert_string_equal(got,
                                json_string_value(json_object_get(ch, "expected_chunk_signature")));
            memcpy(prev, got, 65);
            free(data);
        }
        sy_sigv4_signature_free(&sig);
        done++;
    }
    assert_true(done >= 1);
    json_decref(doc);
}

/* ---- behaviour the vectors don't pin ---- */

static sy_sigv4_signature_t sign_simple(const char *path, const char *query, bool s3,
                                        const char *secret)
{
    sy_aws_credentials_t creds = {"AKID", (char *)secret, NULL};
    sy_sigv4_header_t h[] = {{"Host", "h.example"}, {"X-Amz-Date", "20240101T000000Z"}};
    sy_sigv4_request_t req = {.method = "GET",
                              .path = path,
                              .query = query,
                              .headers = h,
                              .header_count = 2,
                              .payload_hash = SY_SIGV4_UNSIGNED_PAYLOAD,
                              .region = "eu-west-1",
                              .service = s3 ? "s3" : "dynamodb",
                              .amz_date = "20240101T000000Z",
                              .s3 = s3};
    sy_sigv4_signature_t sig;
    sy_error_t err = {{0}};
    assert_true(sy_sigv4_sign(&req, &creds, &sig, &err));
    return sig;
}

static const char *creq_line(const sy_sigv4_signature_t *sig, int n)
{
    static char line[512];
    const char *p = sig->canonical_request;
    while (n-- > 0)
        p = strchr(p, '\n') + 1;
    const char *e = strchr(p, '\n');
    snprintf(line, sizeof line, "%.*s", (int)(e - p), p);
    return line;
}

static void test_s3_path_rules(void **state)
{
    (void)state;
    /* S3: no normalisation, single encoding whether the key arrives raw or
     * already encoded. */
    sy_sigv4_signature_t a = sign_simple("/b/my-object//example//photo.user", NULL, true, "s");
    assert_string_equal(creq_line(&a, 1), "/b/my-object//example//photo.user");
    sy_sigv4_signature_t b = sign_simple("/b/a b$", NULL, true, "s");
    sy_sigv4_signature_t c = sign_simple("/b/a%20b%24", NULL, true, "s");
    assert_string_equal(creq_line(&b, 1), "/b/a%20b%24");
    assert_string_equal(b.signature, c.signature);
    /* Other services encode the wire form again. */
    sy_sigv4_signature_t d = sign_simple("/a%20b", NULL, false, "s");
    assert_string_equal(creq_line(&d, 1), "/a%2520b");
    /* Query: '+' is a literal plus, spaces are %20, '=' in a value encoded. */
    sy_sigv4_signature_t e = sign_simple("/", "b=x y&a=1+2&c=k=v&d", false, "s");
    assert_string_equal(creq_line(&e, 2), "a=1%2B2&b=x%20y&c=k%3Dv&d=");
    sy_sigv4_signature_free(&a);
    sy_sigv4_signature_free(&b);
    sy_sigv4_signature_free(&c);
    sy_sigv4_signature_free(&d);
    sy_sigv4_signature_free(&e);
}

static void test_key_cache_follows_secret(void **state)
{
    (void)state;
    /* Same key id and date, rotated secret: the cached key must not be
     * reused. */
    sy_sigv4_signature_t a = sign_simple("/", NULL, false, "secret-one");
    sy_sigv4_signature_t b = sign_simple("/", NULL, false, "secret-two");
    sy_sigv4_signature_t c = sign_simple("/", NULL, false, "secret-one");
    assert_string_not_equal(a.signature, b.signature);
    assert_string_equal(a.signature, c.signature);
    sy_sigv4_signature_free(&a);
    sy_sigv4_signature_free(&b);
    sy_sigv4_signature_free(&c);
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    sy_aws_credentials_t creds = {"AKID", "secret", NULL};
    sy_sigv4_header_t h[] = {{"X-Amz-Date", "20240101T000000Z"}};
    sy_sigv4_request_t req = {.method = "GET",
                              .path = "/",
                              .headers = h,
                              .header_count = 1,
                              .region = "us-east-1",
                              .service = "s3",
                              .amz_date = "20240101T000000Z"};
    sy_sigv4_signature_t sig;
    sy_error_t err = {{0}};
    assert_false(sy_sigv4_sign(&req, &creds, &sig, &err)); /* no Host */
    assert_non_null(strstr(err.message, "Host"));
    sy_sigv4_header_t h2[] = {{"Host", "x"}};
    req.headers = h2;
    req.amz_date = "2024-01-01";
    assert_false(sy_sigv4_sign(&req, &creds, &sig, &err));
    req.amz_date = "20240101T000000Z";
    sy_aws_credentials_t none = {"AKID", "", NULL};
    assert_false(sy_sigv4_sign(&req, &none, &sig, &err));
    assert_null(sig.authorization);
}

static void test_amz_date(void **state)
{
    (void)state;
    char d[17];
    sy_sigv4_amz_date(1440938160, d);
    assert_string_equal(d, "20150830T123600Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_suite),         cmocka_unit_test(test_s3_header_examples),
        cmocka_unit_test(test_s3_presigned),      cmocka_unit_test(test_s3_chunk_signatures),
        cmocka_unit_test(test_s3_path_rules),     cmocka_unit_test(test_key_cache_follows_secret),
        cmocka_unit_test(test_rejects_bad_input), cmocka_unit_test(test_amz_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
