/*
 * test_policy.c: the policy document (SPEC §2). Every validation error is
 * provoked by changing one field of a valid document, and the message must
 * name the document and the field path; the matching helpers are pinned on
 * their edge cases (wildcards match exactly one label, exact beats wildcard).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "policy/policy.h"

/* A valid document using every field; the tests mutate one field at a time. */
static const char base_doc[] =
    "{\n"
    "  \"listen_domains\": [\"api.example.com\", \"*.api.example.com\"],\n"
    "  \"destinations\": [\n"
    "    {\"host\": \"orders.internal.example.com\", \"port\": 443,\n"
    "     \"connect_to\": \"vpce-0a1b2c-d3e4.execute-api.eu-west-1.vpce.amazonaws.com:443\",\n"
    "     \"tls_verify_name\": \"*.execute-api.eu-west-1.amazonaws.com\",\n"
    "     \"sni\": \"a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com\",\n"
    "     \"host_header\": \"a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com\",\n"
    "     \"api_id\": \"a1b2c3d4e5\"},\n"
    "    {\"host\": \"*.svc.internal.example.com\"},\n"
    "    {\"host\": \"127.0.0.1\", \"scheme\": \"http\", \"port\": 9081}\n"
    "  ],\n"
    "  \"auth_policies\": {\n"
    "    \"public\": {\"type\": \"none\"},\n"
    "    \"users\": {\"type\": \"jwt\", \"issuer\": \"https://issuer.example.com\",\n"
    "              \"audiences\": [\"orders-api\"],\n"
    "              \"jwks_uri\": \"https://issuer.example.com/.well-known/jwks.json\",\n"
    "              \"algorithms\": [\"RS256\", \"ES256\"], \"clock_skew_seconds\": 60,\n"
    "              \"required_claims\": {\"token_use\": \"access\"},\n"
    "              \"forward_claims\": {\"sub\": \"X-User-Sub\"}},\n"
    "    \"partners\": {\"type\": \"basic\", \"realm\": \"partners\", \"users\": {\n"
    "      \"alice\": \"$2b$04$yiOk00M8W.6QdKbs9Ztm7OnbGE9Rtsv8pWbVXCv6JnA1SYsRoG.lS\",\n"
    "      \"bob\": "
    "\"$6$q38QFzllXtg7/XcP$ti4qjkj1mPTTI9NOd9Lq6S1xYYrpg4/"
    "IQFn74XrFP6r01JHhS6tHwIcygHqWdZYrp724PeZ0TYwNqaoXYfQAc1\",\n"
    "      \"carol\": \"$5$saltsaltsalt$9qdLV9t2u5ivegYxpCYofoIfcF9z6Tifa9JnS7cUgh9\",\n"
    "      \"dave\": "
    "\"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$wAfDpu8wV6TrqRh6kNE13avyKIoIJavt6efEtNirXLA\"}},\n"
    "    \"aws\": {\"type\": \"iam\"}\n"
    "  },\n"
    "  \"default_auth\": \"users\",\n"
    "  \"allow_loopback_destinations\": false,\n"
    "  \"limits\": {\"max_request_line_bytes\": 4096, \"max_header_bytes\": 16384,\n"
    "             \"max_headers\": 50, \"max_body_bytes\": 1048576},\n"
    "  \"timeouts\": {\"client_header_ms\": 5000, \"client_idle_ms\": 60000,\n"
    "               \"upstream_connect_ms\": 2000, \"upstream_response_ms\": 20000,\n"
    "               \"upstream_idle_ms\": 40000}\n"
    "}\n";

/* Sets (value != NULL, JSON text) or deletes the node at path, written as
 * "a.b[1].c", in doc. */
static void doc_set(json_t *doc, const char *path, const char *value)
{
    struct {
        char key[128];
        long index; /* -1 for a key */
    } steps[16];
    size_t n = 0;
    const char *p = path;
    while (*p) {
        assert_true(n < 16);
        if (*p == '.') {
            p++;
        } else if (*p == '[') {
            steps[n].index = strtol(p + 1, (char **)&p, 10);
            assert_int_equal(*p, ']');
            p++;
            n++;
        } else {
            size_t k = 0;
            while (*p && *p != '.' && *p != '[' && k + 1 < sizeof steps[n].key)
                steps[n].key[k++] = *p++;
            steps[n].key[k] = '\0';
            steps[n].index = -1;
            n++;
        }
    }
    assert_true(n > 0);
    json_t *node = doc;
    for (size_t i = 0; i + 1 < n; i++) {
        node = steps[i].index < 0 ? json_object_get(node, steps[i].key)
                                  : json_array_get(node, (size_t)steps[i].index);
        if (!node)
            fail_msg("test path %s does not exist in the base document", path);
    }
    json_t *v = NULL;
    if (value) {
        json_error_t jerr;
        v = json_loads(value, JSON_DECODE_ANY, &jerr);
        if (!v)
            fail_msg("bad test value %s: %s", value, jerr.text);
    }
    const char *key = steps[n - 1].key;
    long index = steps[n - 1].index;
    if (index < 0) {
        if (v)
            json_object_set_new(node, key, v);
        else
            json_object_del(node, key);
    } else if (v) {
        if ((size_t)index < json_array_size(node))
            json_array_set_new(node, (size_t)index, v);
        else
            json_array_append_new(node, v);
    } else {
        json_array_remove(node, (size_t)index);
    }
}

static json_t *base_json(void)
{
    json_error_t jerr;
    json_t *doc = json_loads(base_doc, 0, &jerr);
    if (!doc)
        fail_msg("base document: %d:%d: %s", jerr.line, jerr.column, jerr.text);
    return doc;
}

static sy_policy_t *parse_json(json_t *doc, sy_error_t *err)
{
    char *text = json_dumps(doc, 0);
    assert_non_null(text);
    sy_policy_t *policy = sy_policy_parse(text, strlen(text), "policy.json", err);
    free(text);
    return policy;
}

static sy_policy_t *parse_text(const char *text, sy_error_t *err)
{
    return sy_policy_parse(text, strlen(text), "policy.json", err);
}

/* The base document with path set to value must be refused with an error
 * containing every needle. */
static void expect_error(const char *path, const char *value, const char *needle)
{
    sy_error_t err = {{0}};
    json_t *doc = base_json();
    doc_set(doc, path, value);
    sy_policy_t *policy = parse_json(doc, &err);
    json_decref(doc);
    if (policy) {
        sy_policy_free(policy);
        fail_msg("accepted %s = %s, expected an error with \"%s\"", path, value ? value : "(none)",
                 needle);
    }
    if (!strstr(err.message, needle))
        fail_msg("%s = %s: error \"%s\" lacks \"%s\"", path, value ? value : "(none)", err.message,
                 needle);
    if (strncmp(err.message, "policy.json: ", 13) != 0)
        fail_msg("error \"%s\" does not start with the source name", err.message);
}

/* The base document with path set to value must parse; returned for checks. */
static sy_policy_t *expect_ok(const char *path, const char *value)
{
    sy_error_t err = {{0}};
    json_t *doc = base_json();
    if (path)
        doc_set(doc, path, value);
    sy_policy_t *policy = parse_json(doc, &err);
    json_decref(doc);
    if (!policy)
        fail_msg("%s = %s refused: %s", path ? path : "base", value ? value : "(none)",
                 err.message);
    return policy;
}

static void test_base_document_parses_every_field(void **state)
{
    (void)state;
    sy_policy_t *p = expect_ok(NULL, NULL);
    assert_int_equal(p->listen_domain_count, 2);
    assert_string_equal(p->listen_domains[0], "api.example.com");
    assert_string_equal(p->listen_domains[1], "*.api.example.com");

    assert_int_equal(p->destination_count, 3);
    const sy_destination_t *d = &p->destinations[0];
    assert_string_equal(d->host, "orders.internal.example.com");
    assert_false(d->host_wildcard);
    assert_true(d->https);
    assert_int_equal(d->port, 443);
    assert_string_equal(d->connect_host,
                        "vpce-0a1b2c-d3e4.execute-api.eu-west-1.vpce.amazonaws.com");
    assert_int_equal(d->connect_port, 443);
    assert_string_equal(d->tls_verify_name, "*.execute-api.eu-west-1.amazonaws.com");
    assert_string_equal(d->sni, "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com");
    assert_string_equal(d->host_header, "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com");
    assert_string_equal(d->api_id, "a1b2c3d4e5");
    assert_null(d->ca_file);

    d = &p->destinations[1];
    assert_string_equal(d->host, "*.svc.internal.example.com");
    assert_true(d->host_wildcard);
    assert_true(d->https);
    assert_int_equal(d->port, 443);
    assert_null(d->connect_host);
    assert_null(d->tls_verify_name);
    assert_null(d->sni);
    assert_null(d->host_header);
    assert_null(d->api_id);

    d = &p->destinations[2];
    assert_false(d->https);
    assert_int_equal(d->port, 9081);
    assert_string_equal(d->host, "127.0.0.1");

    assert_int_equal(p->auth_policy_count, 4);
    const sy_auth_policy_t *a = sy_policy_auth_find(p, SY_SLICE_LIT("users"));
    assert_non_null(a);
    assert_int_equal(a->type, SY_AUTH_JWT);
    assert_ptr_equal(p->default_auth, a);
    json_t *shown = sy_auth_config_describe(a->config);
    assert_string_equal(json_string_value(json_object_get(shown, "issuer")),
                        "https://issuer.example.com");
    json_decref(shown);
    a = sy_policy_auth_find(p, SY_SLICE_LIT("partners"));
    assert_int_equal(a->type, SY_AUTH_BASIC);
    assert_string_equal(sy_auth_config_realm(a->config), "partners");
    assert_int_equal(sy_policy_auth_find(p, SY_SLICE_LIT("public"))->type, SY_AUTH_NONE);
    assert_int_equal(sy_policy_auth_find(p, SY_SLICE_LIT("aws"))->type, SY_AUTH_IAM);
    assert_null(sy_policy_auth_find(p, SY_SLICE_LIT("Public")));
    assert_null(sy_policy_auth_find(p, SY_SLICE_LIT("")));

    assert_false(p->allow_loopback);
    assert_int_equal(p->limits.max_request_line_bytes, 4096);
    assert_int_equal(p->limits.max_header_bytes, 16384);
    assert_int_equal(p->limits.max_headers, 50);
    assert_int_equal(p->limits.max_body_bytes, 1048576);
    assert_int_equal(p->timeouts.client_header_ms, 5000);
    assert_int_equal(p->timeouts.client_idle_ms, 60000);
    assert_int_equal(p->timeouts.upstream_connect_ms, 2000);
    assert_int_equal(p->timeouts.upstream_response_ms, 20000);
    assert_int_equal(p->timeouts.upstream_idle_ms, 40000);
    sy_policy_free(p);
}

static void test_minimal_document_gets_defaults(void **state)
{
    (void)state;
    sy_error_t err = {{0}};
    const char *text = "{\"listen_domains\": [\"API.Example.COM.\"],"
                       " \"destinations\": [{\"host\": \"A.example.com\", \"scheme\": \"http\"},"
                       "   {\"host\": \"b.example.com\", \"connect_to\": \"[::1]\"},"
                       "   {\"host\": \"[0:0::1]\", \"connect_to\": \"10.0.0.1:8443\"},"
                       "   {\"host\": \"[FD00::5]\", \"scheme\": \"http\", \"port\": 8080}],"
                       " \"auth_policies\": {\"p\": {\"type\": \"basic\", \"users\": {}}},"
                       " \"default_auth\": \"p\"}";
    sy_policy_t *p = parse_text(text, &err);
    if (!p)
        fail_msg("%s", err.message);
    assert_string_equal(p->listen_domains[0], "api.example.com");
    assert_string_equal(p->destinations[0].host, "a.example.com");
    assert_false(p->destinations[0].https);
    assert_int_equal(p->destinations[0].port, 80);
    assert_true(p->destinations[1].https);
    assert_int_equal(p->destinations[1].port, 443);
    assert_string_equal(p->destinations[1].connect_host, "::1"); /* bare, for getaddrinfo */
    assert_int_equal(p->destinations[1].connect_port, 443);
    assert_string_equal(p->destinations[2].host, "[::1]"); /* canonical, in brackets */
    assert_string_equal(p->destinations[2].connect_host, "10.0.0.1");
    assert_int_equal(p->destinations[2].connect_port, 8443);
    /* Without connect_to, an IPv6 literal still gets a connectable spelling. */
    assert_string_equal(p->destinations[3].host, "[fd00::5]");
    assert_string_equal(p->destinations[3].connect_host, "fd00::5");
    assert_int_equal(p->destinations[3].connect_port, 8080);
    assert_false(p->destinations[3].https);
    /* realm defaults to the name */
    assert_string_equal(sy_auth_config_realm(p->auth_policies[0].config), "p");
    assert_false(p->allow_loopback);
    assert_int_equal(p->limits.max_request_line_bytes, 8192);
    assert_int_equal(p->limits.max_header_bytes, 32768);
    assert_int_equal(p->limits.max_headers, 100);
    assert_int_equal(p->limits.max_body_bytes, 10485760);
    assert_int_equal(p->max_routes, 250000); /* limits.max_routes default */
    assert_int_equal(p->timeouts.client_header_ms, 10000);
    assert_int_equal(p->timeouts.client_idle_ms, 75000);
    assert_int_equal(p->timeouts.upstream_connect_ms, 3000);
    assert_int_equal(p->timeouts.upstream_response_ms, 30000);
    assert_int_equal(p->timeouts.upstream_idle_ms, 50000);
    assert_string_equal(err.message, "");
    sy_policy_free(p);
}

static void test_syntax_errors_give_line_and_column(void **state)
{
    (void)state;
    sy_error_t err = {{0}};
    assert_null(parse_text("{\n  \"listen_domains\": [\n  ,\n", &err));
    if (strncmp(err.message, "policy.json:3:3: ", 17) != 0)
        fail_msg("got \"%s\"", err.message);

    assert_null(parse_text("{\"default_auth\": \"a\",\n \"default_auth\": \"b\"}", &err));
    if (strncmp(err.message, "policy.json:2:", 14) != 0 || !strstr(err.message, "duplicate"))
        fail_msg("duplicate keys: got \"%s\"", err.message);

    assert_null(parse_text("", &err));
    assert_non_null(strstr(err.message, "policy.json:1:"));

    assert_null(parse_text("[]", &err));
    assert_string_equal(err.message, "policy.json: expected a JSON object at the top level");

    /* A NUL inside a string would cut names short in C. */
    assert_null(sy_policy_parse("{\"a\\u0000b\": 1}", 15, "policy.json", &err));
    assert_non_null(strstr(err.message, "policy.json:1:"));

    /* The source name is whatever the caller says, e.g. an S3 URI. */
    assert_null(sy_policy_parse("{", 1, "s3://bucket/policy.json", &err));
    assert_non_null(strstr(err.message, "s3://bucket/policy.json:1:"));
}

typedef struct {
    const char *path, *value, *needle;
} error_case_t;

static void run_cases(const error_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(cases[i].path, cases[i].value, cases[i].needle);
}

static void test_top_level_fields(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"listen_domain", "[\"x.com\"]", "policy.json: listen_domain: unknown field"},
        {"comment", "\"hi\"", "comment: unknown field (expected one of: listen_domains,"},
        {"listen_domains", NULL, "policy.json: listen_domains: required field is missing"},
        {"listen_domains", "[]", "listen_domains: expected a non-empty array of domain names"},
        {"listen_domains", "\"api.example.com\"", "listen_domains: expected a non-empty array"},
        {"listen_domains[0]", "7", "listen_domains[0]: expected a domain name string"},
        {"listen_domains[0]", "\"api.example.com:443\"",
         "listen_domains[0]: expected a domain name or \"*.\" + a domain name, without port (got "
         "\"api.example.com:443\")"},
        {"listen_domains[0]", "\"*.*.example.com\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"a.*.example.com\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"*\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"api..example.com\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"api example.com\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"127.0.0.1\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"[::1]\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[0]", "\"http://api.example.com\"", "listen_domains[0]: expected a domain"},
        {"listen_domains[1]", "\"API.Example.com.\"",
         "listen_domains[1]: duplicates \"api.example.com\" listed before it"},
        {"destinations", NULL, "policy.json: destinations: required field is missing"},
        {"destinations", "{}", "destinations: expected an array"},
        {"auth_policies", NULL, "policy.json: auth_policies: required field is missing"},
        {"auth_policies", "[]", "auth_policies: expected an object"},
        {"auth_policies", "{}", "auth_policies: expected at least one auth policy"},
        {"default_auth", NULL, "policy.json: default_auth: required field is missing"},
        {"default_auth", "1", "default_auth: expected a string"},
        {"default_auth", "\"nobody\"", "default_auth: auth policy 'nobody' is not defined"},
        {"default_auth", "\"Users\"", "default_auth: auth policy 'Users' is not defined"},
        {"allow_loopback_destinations", "\"yes\"",
         "allow_loopback_destinations: expected true or false"},
        {"allow_loopback_destinations", "1", "allow_loopback_destinations: expected true or false"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
    sy_policy_t *p = expect_ok("allow_loopback_destinations", "true");
    assert_true(p->allow_loopback);
    sy_policy_free(p);
    p = expect_ok("destinations", "[]");
    assert_int_equal(p->destination_count, 0);
    sy_policy_free(p);
}

static void test_destination_fields(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"destinations[0]", "\"orders.example.com\"", "destinations[0]: expected an object"},
        {"destinations[0].hots", "\"x.com\"", "policy.json: destinations[0].hots: unknown field"},
        {"destinations[1].tls_verify", "true", "destinations[1].tls_verify: unknown field"},
        {"destinations[0].host", NULL, "destinations[0].host: required field is missing"},
        {"destinations[0].host", "5", "destinations[0].host: expected a string"},
        {"destinations[0].host", "\"orders.example.com:443\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"a.*.example.com\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"*.*.example.com\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"*.10.0.0.1\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"0x7f.1\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"2130706433\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"127.000.0.1\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"256.0.0.1\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"[fe80::1%eth0]\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"[::1\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"user@orders.example.com\"", "destinations[0].host: expected"},
        {"destinations[0].host", "\"\"", "destinations[0].host: expected"},
        {"destinations[1].scheme", "\"ftp\"", "destinations[1].scheme: expected \"https\" or"},
        {"destinations[1].scheme", "\"HTTPS\"", "destinations[1].scheme: expected \"https\""},
        {"destinations[1].scheme", "true", "destinations[1].scheme: expected a string"},
        {"destinations[1].port", "0",
         "policy.json: destinations[1].port: expected an integer "
         "1-65535"},
        {"destinations[1].port", "65536", "destinations[1].port: expected an integer 1-65535"},
        {"destinations[1].port", "\"443\"", "destinations[1].port: expected an integer 1-65535"},
        {"destinations[1].port", "443.0", "destinations[1].port: expected an integer 1-65535"},
        {"destinations[1].port", "-443", "destinations[1].port: expected an integer 1-65535"},
        {"destinations[0].connect_to", "\"vpce.example.com:0\"",
         "destinations[0].connect_to: expected HOST or HOST:PORT"},
        {"destinations[0].connect_to", "\"vpce.example.com:65536\"",
         "destinations[0].connect_to: expected"},
        {"destinations[0].connect_to", "\"vpce.example.com:\"",
         "destinations[0].connect_to: expected"},
        {"destinations[0].connect_to", "\"::1\"", "destinations[0].connect_to: expected"},
        {"destinations[0].connect_to", "\"[::1]x\"", "destinations[0].connect_to: expected"},
        {"destinations[0].connect_to", "\"u@vpce.example.com\"",
         "destinations[0].connect_to: expected"},
        {"destinations[0].connect_to", "\"*.example.com\"", "destinations[0].connect_to: expected"},
        {"destinations[0].connect_to", "\"https://vpce.example.com\"",
         "destinations[0].connect_to: expected"},
        {"destinations[0].connect_to", "443", "destinations[0].connect_to: expected a string"},
        {"destinations[0].tls_verify_name", "\"*.*.amazonaws.com\"",
         "destinations[0].tls_verify_name: expected a DNS name"},
        {"destinations[0].tls_verify_name", "\"10.0.0.1\"",
         "destinations[0].tls_verify_name: expected"},
        {"destinations[0].sni", "\"*.amazonaws.com\"", "destinations[0].sni: expected a DNS name"},
        {"destinations[0].sni", "\"10.0.0.1\"", "destinations[0].sni: expected"},
        {"destinations[0].host_header", "\"a b.example.com\"",
         "destinations[0].host_header: expected HOST or HOST:PORT"},
        {"destinations[0].host_header", "\"a.example.com\\r\\nX: y\"",
         "destinations[0].host_header: expected"},
        {"destinations[0].host_header", "\"a.example.com:0\"",
         "destinations[0].host_header: expected"},
        {"destinations[0].api_id", "\"\"", "destinations[0].api_id: expected 1-64 letters"},
        {"destinations[0].api_id", "\"abc\\r\\nx\"", "destinations[0].api_id: expected"},
        {"destinations[0].api_id", "\"abc-def\"", "destinations[0].api_id: expected"},
        {"destinations[0].ca_file", "\"/nonexistent/ca.pem\"",
         "destinations[0].ca_file: cannot read /nonexistent/ca.pem"},
        {"destinations[0].ca_file", "\"/\"", "destinations[0].ca_file: / is not a regular file"},
        {"destinations[0].ca_file", "\"\"", "destinations[0].ca_file: expected a file path"},
        {"destinations[3]", "{\"host\": \"Orders.Internal.Example.com.\", \"port\": 443}",
         "destinations[3]: duplicates destinations[0] (same scheme, host and port)"},
        {"destinations[3]", "{\"host\": \"127.0.0.1\", \"scheme\": \"http\", \"port\": 9081}",
         "destinations[3]: duplicates destinations[2]"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);

    /* Same host, different scheme or port: distinct destinations. */
    sy_policy_t *p = expect_ok("destinations[3]", "{\"host\": \"orders.internal.example.com\", "
                                                  "\"scheme\": \"http\", \"port\": 443}");
    assert_int_equal(p->destination_count, 4);
    sy_policy_free(p);

    /* ca_file: a readable regular file is kept as given. */
    char path[] = "/tmp/sy_test_ca_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char value[64];
    snprintf(value, sizeof value, "\"%s\"", path);
    p = expect_ok("destinations[0].ca_file", value);
    assert_string_equal(p->destinations[0].ca_file, path);
    sy_policy_free(p);
    unlink(path);

    p = expect_ok("destinations[0].host_header", "\"API.Example.com:8443\"");
    assert_string_equal(p->destinations[0].host_header, "api.example.com:8443");
    sy_policy_free(p);
}

static void test_auth_policy_common_fields(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"auth_policies.public", "\"none\"", "auth_policies.public: expected an object"},
        {"auth_policies.public.type", NULL, "auth_policies.public.type: required field is missing"},
        {"auth_policies.public.type", "\"oauth\"",
         "auth_policies.public.type: expected \"none\", \"basic\", \"jwt\" or \"iam\""},
        {"auth_policies.public.type", "1", "auth_policies.public.type: expected a string"},
        {"auth_policies.public.realm", "\"x\"", "auth_policies.public.realm: unknown field"},
        {"auth_policies.aws.issuer", "\"x\"", "auth_policies.aws.issuer: unknown field"},
        {"auth_policies.bad name", "{\"type\": \"none\"}",
         "auth_policies.bad name: policy names are 1-64"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_basic_policy_fields(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"auth_policies.partners.users.alice", "\"secret\"",
         "policy.json: auth_policies.partners.users.alice: plain-text password refused; use a "
         "crypt hash ($2y$, $2b$, $6$, $5$ or $y$)"},
        {"auth_policies.partners.users.alice", "\"\"", "plain-text password refused"},
        {"auth_policies.partners.users.alice", "\"$1$abcdefgh$abcdefghijklmnopqrstuv\"",
         "auth_policies.partners.users.alice: unsupported hash scheme; use a crypt hash"},
        {"auth_policies.partners.users.alice", "\"$apr1$abcdefgh$abcdefghijklmnopqrstuv\"",
         "unsupported hash scheme"},
        {"auth_policies.partners.users.alice",
         "\"$2a$04$yiOk00M8W.6QdKbs9Ztm7OnbGE9Rtsv8pWbVXCv6JnA1SYsRoG.lS\"",
         "unsupported hash scheme"},
        {"auth_policies.partners.users.alice", "\"$2b$04$yiOk00M8W.6Qd\"",
         "auth_policies.partners.users.alice: malformed bcrypt hash"},
        {"auth_policies.partners.users.alice", "\"$6$saltsalt$\"", "malformed crypt hash"},
        {"auth_policies.partners.users.alice", "\"$6$\"", "malformed crypt hash"},
        {"auth_policies.partners.users.alice", "\"$6$salt salt$abc\"", "malformed crypt hash"},
        {"auth_policies.partners.users.alice", "5",
         "auth_policies.partners.users.alice: expected a crypt hash string"},
        {"auth_policies.partners.users.a:b", "\"$5$saltsaltsalt$9qdLV9t2u5ivegYxpCYofoIfcF9z6Ti\"",
         "auth_policies.partners.users.a:b: user names are 1-128 characters without ':'"},
        {"auth_policies.partners.users", NULL,
         "auth_policies.partners.users: required field is missing"},
        {"auth_policies.partners.users", "[]", "auth_policies.partners.users: expected an object"},
        {"auth_policies.partners.realm", "\"a\\\"b\"",
         "auth_policies.partners.realm: expected 1-100 printable ASCII characters"},
        {"auth_policies.partners.realm", "\"\"", "auth_policies.partners.realm: expected 1-100"},
        {"auth_policies.partners.realm", "\"a\\nb\"", "auth_policies.partners.realm: expected"},
        {"auth_policies.partners.realm", "7", "auth_policies.partners.realm: expected a string"},
        {"auth_policies.partners.passwords", "{}",
         "auth_policies.partners.passwords: unknown field (expected one of: type, realm, users)"},
        {"auth_policies.partners.issuer", "\"x\"", "auth_policies.partners.issuer: unknown field"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_jwt_policy_fields(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"auth_policies.users.issuer", NULL,
         "auth_policies.users.issuer: required field is missing"},
        {"auth_policies.users.issuer", "\"\"", "auth_policies.users.issuer: expected a non-empty"},
        {"auth_policies.users.issuer", "[]", "auth_policies.users.issuer: expected a string"},
        {"auth_policies.users.audiences", "\"orders-api\"",
         "auth_policies.users.audiences: expected a non-empty array of strings"},
        {"auth_policies.users.audiences", "[]", "auth_policies.users.audiences: expected"},
        {"auth_policies.users.audiences[1]", "3",
         "auth_policies.users.audiences[1]: expected a non-empty string"},
        {"auth_policies.users.jwks_uri", NULL,
         "auth_policies.users: exactly one key source is "
         "required: jwks_uri, jwks or hs_secret_base64"},
        {"auth_policies.users.jwks", "{\"keys\": [{\"kty\": \"RSA\"}]}", "exactly one key source"},
        {"auth_policies.users.hs_secret_base64", "\"c2VjcmV0\"", "exactly one key source"},
        {"auth_policies.users.jwks_uri", "\"http://issuer.example.com/jwks.json\"",
         "auth_policies.users.jwks_uri: expected an https:// URL"},
        {"auth_policies.users.jwks_uri", "\"https://u:p@issuer.example.com/jwks.json\"",
         "auth_policies.users.jwks_uri: expected an https:// URL"},
        {"auth_policies.users.jwks_uri", "\"https://issuer.example.com/jwks.json#x\"",
         "auth_policies.users.jwks_uri: expected"},
        {"auth_policies.users.jwks_uri", "\"https:///jwks.json\"",
         "auth_policies.users.jwks_uri: expected"},
        {"auth_policies.users.jwks_uri", "\"issuer.example.com/jwks.json\"",
         "auth_policies.users.jwks_uri: expected"},
        {"auth_policies.users.jwks_uri", "7", "auth_policies.users.jwks_uri: expected a string"},
        {"auth_policies.users.algorithms", NULL,
         "auth_policies.users.algorithms: required field is missing"},
        {"auth_policies.users.algorithms", "[]",
         "auth_policies.users.algorithms: expected a non-empty array"},
        {"auth_policies.users.algorithms", "\"RS256\"", "auth_policies.users.algorithms: expected"},
        {"auth_policies.users.algorithms[1]", "\"none\"",
         "auth_policies.users.algorithms[1]: expected one of RS256"},
        {"auth_policies.users.algorithms[1]", "\"rs256\"", "algorithms[1]: expected one of"},
        {"auth_policies.users.algorithms[1]", "7", "algorithms[1]: expected one of"},
        {"auth_policies.users.algorithms[1]", "\"RS256\"",
         "auth_policies.users.algorithms[1]: duplicate algorithm RS256"},
        {"auth_policies.users.algorithms[1]", "\"HS256\"",
         "auth_policies.users.algorithms[1]: HS256 needs hs_secret_base64"},
        {"auth_policies.users.clock_skew_seconds", "601",
         "auth_policies.users.clock_skew_seconds: expected an integer 0-600"},
        {"auth_policies.users.clock_skew_seconds", "-1", "clock_skew_seconds: expected an integer"},
        {"auth_policies.users.clock_skew_seconds", "\"60\"", "clock_skew_seconds: expected"},
        {"auth_policies.users.required_claims", "[]",
         "auth_policies.users.required_claims: expected an object"},
        {"auth_policies.users.required_claims.token_use", "{}",
         "auth_policies.users.required_claims.token_use: expected a string, integer or boolean"},
        {"auth_policies.users.forward_claims", "\"sub\"",
         "auth_policies.users.forward_claims: expected an object"},
        {"auth_policies.users.forward_claims.sub", "\"X User\"",
         "auth_policies.users.forward_claims.sub: expected a header name"},
        {"auth_policies.users.forward_claims.sub", "1", "forward_claims.sub: expected a header"},
        {"auth_policies.users.forward_claims.sub", "\"Host\"",
         "auth_policies.users.forward_claims.sub: header Host is set by switchyard"},
        {"auth_policies.users.forward_claims.sub", "\"x-forwarded-for\"", "is set by switchyard"},
        {"auth_policies.users.forward_claims.sub", "\"Transfer-Encoding\"", "set by switchyard"},
        {"auth_policies.users.forward_claims.email", "\"x-user-sub\"",
         "auth_policies.users.forward_claims.email: header x-user-sub is already set from claim "
         "sub"},
        {"auth_policies.users.ca_file", "\"/nonexistent/ca.pem\"",
         "auth_policies.users.ca_file: cannot read /nonexistent/ca.pem"},
        {"auth_policies.users.realm", "\"x\"", "auth_policies.users.realm: unknown field"},
        {"auth_policies.users.audience", "[\"x\"]", "auth_policies.users.audience: unknown field"},
        {"auth_policies.users.jwks", "{\"keys\": []}", "exactly one key source"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_jwt_key_sources(void **state)
{
    (void)state;
    /* 32 bytes of secret, base64 and base64url without padding. */
    static const char hs32[] = "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"";
    static const char hs32url[] = "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"";
    char obj[512];
    sy_policy_t *p;

    snprintf(obj, sizeof obj,
             "{\"type\": \"jwt\", \"issuer\": \"i\", \"hs_secret_base64\": %s,"
             " \"algorithms\": [\"HS256\"]}",
             hs32);
    p = expect_ok("auth_policies.users", obj);
    assert_int_equal(sy_policy_auth_find(p, SY_SLICE_LIT("users"))->type, SY_AUTH_JWT);
    sy_policy_free(p);
    snprintf(obj, sizeof obj,
             "{\"type\": \"jwt\", \"issuer\": \"i\", \"hs_secret_base64\": %s,"
             " \"algorithms\": [\"HS256\"]}",
             hs32url);
    p = expect_ok("auth_policies.users", obj);
    sy_policy_free(p);

    /* RFC 7518 §3.2: the key is at least as long as the hash. */
    snprintf(obj, sizeof obj,
             "{\"type\": \"jwt\", \"issuer\": \"i\", \"hs_secret_base64\": %s,"
             " \"algorithms\": [\"HS256\", \"HS512\"]}",
             hs32);
    expect_error("auth_policies.users", obj,
                 "auth_policies.users.hs_secret_base64: HS512 needs a secret of at least 64 bytes");
    expect_error("auth_policies.users",
                 "{\"type\": \"jwt\", \"issuer\": \"i\", \"hs_secret_base64\": \"c2VjcmV0\","
                 " \"algorithms\": [\"HS256\"]}",
                 "HS256 needs a secret of at least 32 bytes (RFC 7518 §3.2); this one has 6");
    expect_error("auth_policies.users",
                 "{\"type\": \"jwt\", \"issuer\": \"i\", \"hs_secret_base64\": \"not base64!\","
                 " \"algorithms\": [\"HS256\"]}",
                 "auth_policies.users.hs_secret_base64: expected base64 text");
    /* Algorithm confusion: an asymmetric algorithm with an HMAC secret. */
    snprintf(obj, sizeof obj,
             "{\"type\": \"jwt\", \"issuer\": \"i\", \"hs_secret_base64\": %s,"
             " \"algorithms\": [\"HS256\", \"RS256\"]}",
             hs32);
    expect_error("auth_policies.users", obj,
                 "auth_policies.users.algorithms[1]: RS256 needs jwks_uri or jwks");

    /* Inline JWK set. */
    p = expect_ok("auth_policies.users",
                  "{\"type\": \"jwt\", \"issuer\": \"i\", \"algorithms\": [\"EdDSA\"],"
                  " \"jwks\": {\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": "
                  "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}}");
    sy_policy_free(p);
    expect_error("auth_policies.users",
                 "{\"type\": \"jwt\", \"issuer\": \"i\", \"algorithms\": [\"EdDSA\"],"
                 " \"jwks\": {\"keys\": [{\"crv\": \"Ed25519\"}]}}",
                 "auth_policies.users.jwks.keys[0]: expected a JWK object with a \"kty\" string");
    expect_error("auth_policies.users",
                 "{\"type\": \"jwt\", \"issuer\": \"i\", \"algorithms\": [\"EdDSA\"],"
                 " \"jwks\": {\"key\": []}}",
                 "auth_policies.users.jwks: expected a JWK set");
    expect_error("auth_policies.users",
                 "{\"type\": \"jwt\", \"issuer\": \"i\", \"algorithms\": [\"EdDSA\"],"
                 " \"jwks\": [1]}",
                 "auth_policies.users.jwks: expected an object");
}

static void test_limits_and_timeouts(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"limits", "[]", "policy.json: limits: expected an object"},
        {"limits.max_body", "1", "limits.max_body: unknown field"},
        {"limits.max_headers", "257", "limits.max_headers: expected an integer 1-256"},
        {"limits.max_headers", "0", "limits.max_headers: expected an integer 1-256"},
        {"limits.max_request_line_bytes", "0",
         "limits.max_request_line_bytes: expected an integer"},
        {"limits.max_request_line_bytes", "\"8k\"", "limits.max_request_line_bytes: expected"},
        {"limits.max_header_bytes", "10", "limits.max_header_bytes: expected an integer"},
        {"limits.max_body_bytes", "-1", "limits.max_body_bytes: expected an integer 0-"},
        {"limits.max_body_bytes", "1.5", "limits.max_body_bytes: expected an integer"},
        {"limits.max_routes", "0", "limits.max_routes: expected an integer 1-"},
        {"limits.max_routes", "\"many\"", "limits.max_routes: expected an integer"},
        {"timeouts", "5", "timeouts: expected an object"},
        {"timeouts.idle_ms", "5", "timeouts.idle_ms: unknown field"},
        {"timeouts.client_header_ms", "0",
         "policy.json: timeouts.client_header_ms: expected an integer 1-3600000"},
        {"timeouts.client_idle_ms", "3600001", "timeouts.client_idle_ms: expected an integer"},
        {"timeouts.upstream_connect_ms", "true", "timeouts.upstream_connect_ms: expected"},
        {"timeouts.upstream_response_ms", "-5", "timeouts.upstream_response_ms: expected"},
        {"timeouts.upstream_idle_ms", "0", "timeouts.upstream_idle_ms: expected"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);

    sy_policy_t *p = expect_ok("limits", "{\"max_headers\": 256, \"max_body_bytes\": 0}");
    assert_int_equal(p->limits.max_headers, SY_HTTP_MAX_HEADERS);
    assert_int_equal(p->limits.max_body_bytes, 0);
    assert_int_equal(p->limits.max_request_line_bytes, 8192); /* unset fields keep defaults */
    sy_policy_free(p);
    p = expect_ok("timeouts", "{\"upstream_response_ms\": 3600000}");
    assert_int_equal(p->timeouts.upstream_response_ms, 3600000);
    assert_int_equal(p->timeouts.client_header_ms, 10000);
    sy_policy_free(p);
}

static sy_policy_t *matching_policy(void)
{
    sy_error_t err = {{0}};
    /* The wildcard is listed first: exact must still win. */
    const char *text =
        "{\"listen_domains\": [\"api.example.com\", \"*.apps.example.com\", \"localhost\"],"
        " \"destinations\": ["
        "   {\"host\": \"*.svc.example.com\", \"port\": 443, \"api_id\": \"wild\"},"
        "   {\"host\": \"orders.svc.example.com\", \"port\": 443, \"api_id\": \"exact\"},"
        "   {\"host\": \"orders.svc.example.com\", \"scheme\": \"http\", \"api_id\": \"plain\"},"
        "   {\"host\": \"[::1]\", \"port\": 8443, \"api_id\": \"v6\"}],"
        " \"auth_policies\": {\"public\": {\"type\": \"none\"}, \"aws\": {\"type\": \"iam\"}},"
        " \"default_auth\": \"public\"}";
    sy_policy_t *p = parse_text(text, &err);
    if (!p)
        fail_msg("%s", err.message);
    return p;
}

static void test_domain_listed(void **state)
{
    (void)state;
    sy_policy_t *p = matching_policy();
    static const struct {
        const char *host;
        bool listed;
    } cases[] = {
        {"api.example.com", true},
        {"API.Example.COM", true},
        {"api.example.com.", true},
        {"localhost", true},
        {"LOCALHOST.", true},
        {"x.apps.example.com", true},
        {"X.Apps.Example.com.", true},
        {"apps.example.com", false},
        {"y.x.apps.example.com", false},
        {".apps.example.com", false},
        {"xapps.example.com", false},
        {"x.apps.example.co", false},
        {"api.example.com..", false},
        {"example.com", false},
        {"", false},
        {".", false},
        {"api.example.com:443", false},
        {"www.api.example.com", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sy_policy_domain_listed(p, sy_slice_cstr(cases[i].host)) != cases[i].listed)
            fail_msg("%s: expected listed=%d", cases[i].host, cases[i].listed);
    sy_policy_free(p);
}

static void test_destination_find(void **state)
{
    (void)state;
    sy_policy_t *p = matching_policy();
    static const struct {
        bool https;
        const char *host;
        uint16_t port;
        const char *api_id; /* NULL: no destination */
    } cases[] = {
        {true, "orders.svc.example.com", 443, "exact"},
        {true, "ORDERS.svc.example.com.", 443, "exact"},
        {true, "users.svc.example.com", 443, "wild"},
        {true, "Users.SVC.example.com", 443, "wild"},
        {true, "a.users.svc.example.com", 443, NULL},
        {true, "svc.example.com", 443, NULL},
        {true, "xsvc.example.com", 443, NULL},
        {true, "users.svc.example.com", 8443, NULL},
        {false, "users.svc.example.com", 443, NULL},
        {false, "orders.svc.example.com", 80, "plain"},
        {false, "orders.svc.example.com", 443, NULL},
        {true, "orders.svc.example.com", 80, NULL},
        {true, "[::1]", 8443, "v6"},
        {true, "[::1]", 443, NULL},
        {true, "", 443, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sy_destination_t *d = sy_policy_destination_find(
            p, cases[i].https, sy_slice_cstr(cases[i].host), cases[i].port);
        if (!cases[i].api_id && d)
            fail_msg("%s:%u matched %s", cases[i].host, cases[i].port, d->host);
        if (cases[i].api_id && (!d || strcmp(d->api_id, cases[i].api_id) != 0))
            fail_msg("%s:%u: expected %s, got %s", cases[i].host, cases[i].port, cases[i].api_id,
                     d ? d->api_id : "nothing");
    }
    sy_policy_free(p);
}

static void test_host_split(void **state)
{
    (void)state;
    static const struct {
        const char *value, *host;
        uint16_t port;
    } ok[] = {
        {"api.example.com", "api.example.com", 0},
        {"api.example.com:8080", "api.example.com", 8080},
        {"api.example.com.", "api.example.com", 0},
        {"api.example.com.:443", "api.example.com", 443},
        {"API.Example.com", "API.Example.com", 0}, /* lower-cases nothing */
        {"[::1]", "[::1]", 0},
        {"[::1]:65535", "[::1]", 65535},
        {"127.0.0.1:1", "127.0.0.1", 1},
        {"my_host", "my_host", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        sy_slice_t host = {0};
        uint16_t port = 99;
        if (!sy_host_split(sy_slice_cstr(ok[i].value), &host, &port))
            fail_msg("refused %s", ok[i].value);
        if (!sy_slice_eq(host, sy_slice_cstr(ok[i].host)) || port != ok[i].port)
            fail_msg("%s: got %.*s port %u", ok[i].value, (int)host.len, host.ptr, port);
    }
    static const char *const bad[] = {
        "",
        ":80",
        "api.example.com:",
        "api.example.com:0",
        "a:65536",
        "a:123456",
        "a:8o",
        "a:-1",
        "a:+80",
        "a:80:80",
        "::1",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[]",
        "[::g]",
        "[a]",
        "u@host",
        "host/path",
        "host name",
        "host\r",
        "ho%41st",
        ".",
        "host\\x",
        "host:80 ",
        " host",
        "[::1]:0",
        "h\xc3\xa9.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_slice_t host;
        uint16_t port;
        if (sy_host_split(sy_slice_cstr(bad[i]), &host, &port))
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_host_normalise(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned flags;
        const char *out; /* NULL: refused */
    } cases[] = {
        {"Api.Example.COM.", 0, "api.example.com"},
        {"*.Example.com", SY_HOST_WILDCARD, "*.example.com"},
        {"*.example.com", 0, NULL},
        {"*.example.com.", SY_HOST_WILDCARD, "*.example.com"},
        {"10.1.2.3", SY_HOST_IP, "10.1.2.3"},
        {"10.1.2.3", 0, NULL},
        {"10.1.2.3.", SY_HOST_IP, "10.1.2.3"},
        {"10.1.2", SY_HOST_IP, NULL},
        {"010.1.2.3", SY_HOST_IP, NULL},
        {"0x0a.1.2.3", SY_HOST_IP, NULL},
        {"host.0x10", SY_HOST_IP, NULL},
        {"host.123", SY_HOST_IP, NULL},
        {"123.host", 0, "123.host"},
        {"4294967295", SY_HOST_IP, NULL},
        {"[::1]", SY_HOST_IP, "[::1]"},
        {"[0:0:0:0:0:0:0:1]", SY_HOST_IP, "[::1]"},
        {"[::FFFF:10.0.0.1]", SY_HOST_IP, "[::ffff:10.0.0.1]"},
        {"[::1]", 0, NULL},
        {"[fe80::1%25eth0]", SY_HOST_IP, NULL},
        {"*.[::1]", SY_HOST_IP | SY_HOST_WILDCARD, NULL},
        {"-", 0, "-"},
        {"a-b_c.example", 0, "a-b_c.example"},
        {"a..b", 0, NULL},
        {".a", 0, NULL},
        {"a.", 0, "a"},
        {"a..", 0, NULL},
        {"", 0, NULL},
        {"*.", SY_HOST_WILDCARD, NULL},
        {"xn--bcher-kva.example", 0, "xn--bcher-kva.example"},
        {"b\xc3\xbc"
         "cher.example",
         0, NULL},
        {"a.b:1", SY_HOST_IP, NULL},
        {"0123456789012345678901234567890123456789012345678901234567890123.com", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = sy_host_normalise(sy_slice_cstr(cases[i].in), cases[i].flags);
        bool same = (!got && !cases[i].out) || (got && cases[i].out && !strcmp(got, cases[i].out));
        if (!same)
            fail_msg("%s (flags %u): expected %s, got %s", cases[i].in, cases[i].flags,
                     cases[i].out ? cases[i].out : "refusal", got ? got : "refusal");
        free(got);
    }
}

static void test_url_split(void **state)
{
    (void)state;
    sy_url_parts_t u;
    assert_true(sy_url_split(SY_SLICE_LIT("https://Orders.example.com:8443/prod?x#y"), &u));
    assert_true(u.https);
    assert_true(sy_slice_eq(u.host, SY_SLICE_LIT("Orders.example.com")));
    assert_int_equal(u.port, 8443);
    assert_true(sy_slice_eq(u.rest, SY_SLICE_LIT("/prod?x#y")));
    assert_true(sy_url_split(SY_SLICE_LIT("HTTP://[::1]"), &u));
    assert_false(u.https);
    assert_true(sy_slice_eq(u.host, SY_SLICE_LIT("[::1]")));
    assert_int_equal(u.port, 0);
    assert_int_equal(u.rest.len, 0);
    static const char *const bad[] = {
        "ftp://a.com/",          "https//a.com",     "https://",         "https:///x",
        "https://u@a.com/",      "https://a.com:0/", "https://a.com:x/", "https://a b.com/",
        "https://a.com/\x7f",    "//a.com/",         "https:/a.com",     "https://a.com\\x",
        "http://a.com/\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sy_url_split(sy_slice_cstr(bad[i]), &u))
            fail_msg("accepted %s", bad[i]);
}

/* ---- destination bindings ---- */

static void test_binding_fields(void **state)
{
    (void)state;
    static const struct {
        const char *path, *value, *needle;
    } cases[] = {
        {"destinations[0].allowed_paths", "[]",
         "destinations[0].allowed_paths: expected a non-empty array of root paths"},
        {"destinations[0].allowed_paths", "\"/orders\"",
         "destinations[0].allowed_paths: expected a non-empty array"},
        {"destinations[0].allowed_paths", "[1]",
         "destinations[0].allowed_paths[0]: expected a string"},
        {"destinations[0].allowed_paths", "[\"orders\"]", "destinations[0].allowed_paths[0]: "},
        {"destinations[0].allowed_paths", "[\"/orders/\"]", "destinations[0].allowed_paths[0]: "},
        {"destinations[0].allowed_paths", "[\"/a/../b\"]", "destinations[0].allowed_paths[0]: "},
        {"destinations[0].allowed_paths", "[\"/a\", \"/a\"]",
         "destinations[0].allowed_paths[1]: duplicates allowed_paths[0]"},
        {"destinations[0].allowed_auth", "[]",
         "destinations[0].allowed_auth: expected a non-empty array of auth policy names"},
        {"destinations[0].allowed_auth", "[\"\"]",
         "destinations[0].allowed_auth[0]: expected an auth policy name"},
        {"destinations[0].allowed_auth", "[\"public\", \"nobody\"]",
         "destinations[0].allowed_auth[1]: auth policy 'nobody' is not defined in auth_policies"},
        {"destinations[0].allowed_auth", "[\"users\", \"users\"]",
         "destinations[0].allowed_auth[1]: duplicates allowed_auth[0]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].path, cases[i].value, cases[i].needle);

    sy_error_t err = {{0}};
    json_t *doc = base_json();
    doc_set(doc, "destinations[0].allowed_paths", "[\"/orders\", \"/\"]");
    doc_set(doc, "destinations[0].allowed_auth", "[\"users\", \"aws\"]");
    sy_policy_t *policy = parse_json(doc, &err);
    json_decref(doc);
    if (!policy)
        fail_msg("%s", err.message);
    const sy_destination_t *d = &policy->destinations[0];
    assert_int_equal(d->allowed_path_count, 2);
    assert_string_equal(d->allowed_paths[0], "/orders");
    assert_int_equal(d->allowed_auth_count, 2);
    assert_string_equal(d->allowed_auth[1], "aws");
    assert_null(policy->destinations[1].allowed_paths); /* unbound */
    assert_null(policy->destinations[1].allowed_auth);
    sy_policy_free(policy);
}

static sy_destination_t bound(char **paths, size_t npaths, char **auth, size_t nauth)
{
    sy_destination_t d;
    memset(&d, 0, sizeof d);
    d.allowed_paths = paths;
    d.allowed_path_count = npaths;
    d.allowed_auth = auth;
    d.allowed_auth_count = nauth;
    return d;
}

static void test_binding_rule(void **state)
{
    (void)state;
    char *users[] = {"/users", "/accounts/v2"};
    char *root[] = {"/"};
    char *auths[] = {"users-jwt", "aws"};
    sy_destination_t d = bound(users, 2, auths, 2);
    /* Segment boundaries: equal, or under at a '/', never a longer segment. */
    assert_true(sy_destination_allows_path(&d, "/users"));
    assert_true(sy_destination_allows_path(&d, "/users/v2"));
    assert_true(sy_destination_allows_path(&d, "/users/v2/deep"));
    assert_false(sy_destination_allows_path(&d, "/usersx"));
    assert_false(sy_destination_allows_path(&d, "/users-admin"));
    assert_false(sy_destination_allows_path(&d, "/user"));
    assert_false(sy_destination_allows_path(&d, "/"));
    assert_false(sy_destination_allows_path(&d, "/orders/users"));
    assert_false(sy_destination_allows_path(&d, "/Users"));
    assert_true(sy_destination_allows_path(&d, "/accounts/v2/x"));
    assert_false(sy_destination_allows_path(&d, "/accounts"));
    assert_false(sy_destination_allows_path(&d, "/accounts/v20"));
    /* "/" allows everything. */
    sy_destination_t all = bound(root, 1, NULL, 0);
    assert_true(sy_destination_allows_path(&all, "/"));
    assert_true(sy_destination_allows_path(&all, "/anything/at/all"));
    /* Auth: exact names, case-sensitive. */
    assert_true(sy_destination_allows_auth(&d, "users-jwt"));
    assert_true(sy_destination_allows_auth(&d, "aws"));
    assert_false(sy_destination_allows_auth(&d, "public"));
    assert_false(sy_destination_allows_auth(&d, "AWS"));
    assert_false(sy_destination_allows_auth(&d, "users"));
    assert_false(sy_destination_allows_auth(&d, NULL));
    /* Unbound: as before bindings existed. */
    sy_destination_t none = bound(NULL, 0, NULL, 0);
    assert_true(sy_destination_allows_path(&none, "/usersx"));
    assert_true(sy_destination_allows_auth(&none, "public"));
    /* all has paths but no auth list: any auth. */
    assert_true(sy_destination_allows_auth(&all, "public"));
}

/* ---- every problem at once ---- */

static void test_every_problem_reported(void **state)
{
    (void)state;
    json_t *doc = base_json();
    doc_set(doc, "listen_domains[0]", "\"http://bad\"");
    doc_set(doc, "destinations[0].port", "0");
    doc_set(doc, "destinations[1].host", "\"2852039166\"");
    doc_set(doc, "destinations[2].allowed_paths", "[\"nope\"]");
    doc_set(doc, "limits.max_headers", "0");
    doc_set(doc, "timeouts.client_idle_ms", "\"soon\"");
    doc_set(doc, "unknown_top", "1");
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    sy_error_t err = {{0}};
    sy_problems_t problems;
    sy_policy_t *policy =
        sy_policy_parse_report(text, strlen(text), "policy.json", &err, &problems);
    free(text);
    assert_null(policy);
    static const char *const expected[] = {
        "policy.json: unknown_top: unknown field",
        "policy.json: listen_domains[0]: expected a domain name",
        "policy.json: destinations[0].port: expected an integer 1-65535",
        "policy.json: destinations[1].host: \"2852039166\" is 169.254.169.254, a cloud metadata "
        "address",
        "policy.json: destinations[2].allowed_paths[0]: ",
        "policy.json: limits.max_headers: expected an integer",
        "policy.json: timeouts.client_idle_ms: expected an integer",
    };
    size_t n = sizeof expected / sizeof expected[0];
    if (problems.count != n) {
        for (size_t i = 0; i < problems.count; i++)
            printf("problem %zu: %s\n", i, problems.items[i]);
        fail_msg("%zu problems, expected %zu", problems.count, n);
    }
    for (size_t i = 0; i < n; i++)
        if (strncmp(problems.items[i], expected[i], strlen(expected[i])) != 0)
            fail_msg("problem %zu: \"%s\", expected it to start \"%s\"", i, problems.items[i],
                     expected[i]);
    /* The single message starts with the first and says how many more. */
    assert_non_null(strstr(err.message, expected[0]));
    assert_non_null(strstr(err.message, "; "));
    sy_problems_free(&problems);

    /* A single problem stays a single message, as before. */
    doc = base_json();
    doc_set(doc, "destinations[0].port", "0");
    text = json_dumps(doc, 0);
    json_decref(doc);
    policy = sy_policy_parse_report(text, strlen(text), "policy.json", &err, &problems);
    free(text);
    assert_null(policy);
    assert_int_equal(problems.count, 1);
    assert_string_equal(err.message, problems.items[0]);
    sy_problems_free(&problems);

    /* Many problems: the message keeps whole ones and counts the rest. */
    doc = base_json();
    for (int i = 0; i < 40; i++) {
        char path[64];
        snprintf(path, sizeof path, "destinations[%d]", i);
        doc_set(doc, path, "{\"host\": \"bad host\"}");
    }
    text = json_dumps(doc, 0);
    json_decref(doc);
    policy = sy_policy_parse_report(text, strlen(text), "policy.json", &err, &problems);
    free(text);
    assert_null(policy);
    assert_int_equal(problems.count, 40);
    assert_non_null(strstr(err.message, "more problems"));
    sy_problems_free(&problems);
}

/* ---- addresses the guard always refuses are refused at load ---- */

static void test_metadata_spellings_refused(void **state)
{
    (void)state;
    static const struct {
        const char *host, *needle;
    } cases[] = {
        {"169.254.169.254", "is 169.254.169.254, a cloud metadata address"},
        {"2852039166", "is 169.254.169.254, a cloud metadata address"},
        {"0xa9fea9fe", "is 169.254.169.254, a cloud metadata address"},
        {"0xA9FEA9FE", "is 169.254.169.254, a cloud metadata address"},
        {"0xA9.0xFE.0xA9.0xFE", "is 169.254.169.254, a cloud metadata address"},
        {"0251.0376.0251.0376", "is 169.254.169.254, a cloud metadata address"},
        {"0251.00376.000251.0000376", "is 169.254.169.254, a cloud metadata address"},
        {"0251.254.169.254", "is 169.254.169.254, a cloud metadata address"},
        {"169.254.43518", "is 169.254.169.254, a cloud metadata address"},
        {"169.254.169.254.", "is 169.254.169.254, a cloud metadata address"},
        {"169.254.170.2", "is 169.254.170.2, a cloud metadata address"},
        {"169.254.1.1", "is 169.254.1.1, a link-local address"},
        {"0.0.0.0", "is 0.0.0.0, an unspecified address"},
        {"0", "is 0.0.0.0, an unspecified address"},
        {"0.1.2.3", "is 0.1.2.3, an unspecified address"},
        {"[::ffff:169.254.169.254]", "is ::ffff:169.254.169.254, a cloud metadata address"},
        {"[::ffff:a9fe:a9fe]", "is ::ffff:169.254.169.254, a cloud metadata address"},
        {"[0:0:0:0:0:ffff:169.254.169.254]", "a cloud metadata address"},
        {"[::169.254.169.254]", "a cloud metadata address"},
        {"[64:ff9b::169.254.169.254]", "a cloud metadata address"},
        {"[fd00:ec2::254]", "is fd00:ec2::254, a cloud metadata address"},
        {"[FD00:EC2::254]", "a cloud metadata address"},
        {"[fe80::1]", "a link-local address"},
        {"[::]", "an unspecified address"},
        {"224.0.0.1", "a multicast address"},
        {"255.255.255.255", "a broadcast address"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char value[128], needle[256];
        snprintf(value, sizeof value, "\"%s\"", cases[i].host);
        snprintf(needle, sizeof needle, "destinations[2].host: \"%s", cases[i].host);
        expect_error("destinations[2].host", value, needle);
        expect_error("destinations[2].host", value, cases[i].needle);
        expect_error("destinations[2].host", value, "switchyard never connects there");
        /* connect_to is judged the same way. */
        char connect[160];
        snprintf(connect, sizeof connect, "\"%s:80\"", cases[i].host);
        if (strcmp(cases[i].host, "169.254.169.254.") != 0)
            expect_error("destinations[0].connect_to", connect, cases[i].needle);
    }
    /* Addresses the guard judges by policy or allows still load: loopback
     * (allow_loopback_destinations decides), private ranges, and names. */
    static const char *const fine[] = {"\"127.0.0.1\"",     "\"10.1.2.3\"",
                                       "\"192.168.0.1\"",   "\"[::1]\"",
                                       "\"[2001:db8::1]\"", "\"metadata.example.com\""};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        sy_error_t err = {{0}};
        json_t *doc = base_json();
        doc_set(doc, "destinations[2].host", fine[i]);
        sy_policy_t *policy = parse_json(doc, &err);
        json_decref(doc);
        if (!policy)
            fail_msg("%s refused: %s", fine[i], err.message);
        sy_policy_free(policy);
    }
    /* A non-canonical spelling of an address the guard allows is still
     * refused, by the name rule. */
    expect_error("destinations[2].host", "\"2130706433\"", "expected a host name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_document_parses_every_field),
        cmocka_unit_test(test_minimal_document_gets_defaults),
        cmocka_unit_test(test_syntax_errors_give_line_and_column),
        cmocka_unit_test(test_top_level_fields),
        cmocka_unit_test(test_destination_fields),
        cmocka_unit_test(test_auth_policy_common_fields),
        cmocka_unit_test(test_basic_policy_fields),
        cmocka_unit_test(test_jwt_policy_fields),
        cmocka_unit_test(test_jwt_key_sources),
        cmocka_unit_test(test_limits_and_timeouts),
        cmocka_unit_test(test_domain_listed),
        cmocka_unit_test(test_destination_find),
        cmocka_unit_test(test_host_split),
        cmocka_unit_test(test_host_normalise),
        cmocka_unit_test(test_url_split),
        cmocka_unit_test(test_binding_fields),
        cmocka_unit_test(test_binding_rule),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_metadata_spellings_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
