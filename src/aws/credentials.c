/*
 * credentials.c: the AWS default credential chain, in the SDKs' order:
 * environment, web identity (STS AssumeRoleWithWebIdentity), the shared
 * credentials/config files, the ECS container endpoint, EC2 IMDSv2.
 *
 * The first provider that is configured answers; a configured provider
 * that fails is an error rather than a silent fall-through to a weaker one
 * (the SDKs do the same for the explicit providers), except that the
 * shared files only count when they hold keys for the profile. IMDS is
 * tried last with short timeouts, as off EC2 it is simply unreachable.
 *
 * The result is cached with its Expiration and refreshed five minutes
 * early. If a refresh fails while the cached credentials are still valid,
 * they keep being used: a credential endpoint hiccup must not take the
 * stores down with it.
 *
 * The container endpoint's full URI is only accepted over https or to the
 * link-local container endpoints and loopback, as the SDKs require, so an
 * environment typo can't send the authorization token elsewhere in clear.
 */
#include "aws/credentials.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/http.h"
#include "core/log.h"

typedef enum { PROVIDER_SKIP = 0, PROVIDER_OK, PROVIDER_FAILED } provider_result_t;

/* ---- small helpers ---- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* A missing or unreadable file is a provider that doesn't apply, not an
 * error to report, so the reason is dropped. */
static char *read_small_file(const char *path, size_t max)
{
    sy_error_t ignored;
    return sy_file_read(path, max, NULL, &ignored);
}

static void trim_end(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

static bool creds_set(sy_aws_credentials_t *out, const char *id, const char *secret,
                      const char *token)
{
    out->access_key_id = strdup(id);
    out->secret_access_key = strdup(secret);
    out->session_token = token && *token ? strdup(token) : NULL;
    if (!out->access_key_id || !out->secret_access_key ||
        (token && *token && !out->session_token)) {
        sy_aws_credentials_free(out);
        return false;
    }
    return true;
}

static bool creds_copy(sy_aws_credentials_t *out, const sy_aws_credentials_t *in)
{
    return creds_set(out, in->access_key_id, in->secret_access_key, in->session_token);
}

time_t sy_aws_parse_time(const char *s)
{
    if (!s)
        return 0;
    struct tm tm = {0};
    int consumed = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19)
        return 0;
    const char *p = s + consumed;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    long offset = 0;
    if (*p == 'Z' && p[1] == '\0') {
        offset = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
               isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
               isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
        offset =
            ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L + ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
        if (*p == '-')
            offset = -offset;
    } else {
        return 0;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? 0 : t - offset;
}

/* ---- INI ---- */

char *sy_aws_ini_get(const char *text, const char *section, const char *key)
{
    if (!text)
        return NULL;
    bool in_section = false;
    const char *line = text;
    while (*line) {
        const char *eol = line + strcspn(line, "\n");
        const char *s = line, *e = eol;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s < e && *s == '[' && e[-1] == ']') {
            const char *ns = s + 1, *ne = e - 1;
            while (ns < ne && isspace((unsigned char)*ns))
                ns++;
            while (ne > ns && isspace((unsigned char)ne[-1]))
                ne--;
            in_section =
                (size_t)(ne - ns) == strlen(section) && memcmp(ns, section, (size_t)(ne - ns)) == 0;
        } else if (in_section && s < e && *s != '#' && *s != ';') {
            const char *eq = memchr(s, '=', (size_t)(e - s));
            if (eq) {
                const char *ke = eq;
                while (ke > s && isspace((unsigned char)ke[-1]))
                    ke--;
                const char *vs = eq + 1;
                while (vs < e && isspace((unsigned char)*vs))
                    vs++;
                if ((size_t)(ke - s) == strlen(key) && strncasecmp(s, key, (size_t)(ke - s)) == 0)
                    return sy_slice_dup(sy_slice(vs, (size_t)(e - vs)));
            }
        }
        line = *eol ? eol + 1 : eol;
    }
    return NULL;
}

/* The config file spells profiles "[profile NAME]", except "[default]". */
static char *config_get(const char *config_text, const char *profile, const char *key)
{
    char section[256];
    snprintf(section, sizeof section, "profile %s", profile);
    char *v = sy_aws_ini_get(config_text, section, key);
    if (!v && strcmp(profile, "default") == 0)
        v = sy_aws_ini_get(config_text, "default", key);
    return v;
}

bool sy_aws_parse_shared_files(const char *credentials_text, const char *config_text,
                               const char *profile, sy_aws_credentials_t *out, sy_error_t *err)
{
    *out = (sy_aws_credentials_t){0};
    char *id = sy_aws_ini_get(credentials_text, profile, "aws_access_key_id");
    char *secret = sy_aws_ini_get(credentials_text, profile, "aws_secret_access_key");
    char *token = sy_aws_ini_get(credentials_text, profile, "aws_session_token");
    if (!id && !secret) {
        free(token);
        id = config_get(config_text, profile, "aws_access_key_id");
        secret = config_get(config_text, profile, "aws_secret_access_key");
        token = config_get(config_text, profile, "aws_session_token");
    }
    bool ok = false;
    if (!id || !secret || !*id || !*secret)
        sy_error_set(err,
                     "shared files: profile \"%s\" has no aws_access_key_id and "
                     "aws_secret_access_key",
                     profile);
    else if (!(ok = creds_set(out, id, secret, token)))
        sy_error_set(err, "shared files: out of memory");
    free(id);
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    free(token);
    return ok;
}

/* ---- JSON (container endpoint, IMDS) ---- */

bool sy_aws_parse_credentials_json(const char *text, size_t len, sy_aws_credentials_t *out,
                                   time_t *expiration, sy_error_t *err)
{
    *out = (sy_aws_credentials_t){0};
    *expiration = 0;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!json_is_object(doc)) {
        sy_error_set(err, "credentials JSON: %s", doc ? "not an object" : jerr.text);
        json_decref(doc);
        return false;
    }
    const char *code = json_string_value(json_object_get(doc, "Code"));
    json_t *code_v = json_object_get(doc, "Code");
    if (code_v && (!code || strcmp(code, "Success") != 0)) {
        const char *msg = json_string_value(json_object_get(doc, "Message"));
        sy_error_set(err, "credentials JSON: Code %s%s%s", code ? code : "(not a string)",
                     msg ? ": " : "", msg ? msg : "");
        json_decref(doc);
        return false;
    }
    json_t *id = json_object_get(doc, "AccessKeyId");
    json_t *secret = json_object_get(doc, "SecretAccessKey");
    json_t *token = json_object_get(doc, "Token");
    json_t *exp = json_object_get(doc, "Expiration");
    bool ok = false;
    if (!json_is_string(id) || !json_is_string(secret) || !*json_string_value(id) ||
        !*json_string_value(secret))
        sy_error_set(err, "credentials JSON: AccessKeyId and SecretAccessKey must be non-empty "
                          "strings");
    else if (token && !json_is_string(token) && !json_is_null(token))
        sy_error_set(err, "credentials JSON: Token must be a string");
    else if (exp && !json_is_null(exp) &&
             (!json_is_string(exp) || !(*expiration = sy_aws_parse_time(json_string_value(exp)))))
        sy_error_set(err, "credentials JSON: Expiration must be an RFC 3339 time");
    else if (!(ok = creds_set(out, json_string_value(id), json_string_value(secret),
                              json_string_value(token))))
        sy_error_set(err, "credentials JSON: out of memory");
    json_decref(doc);
    return ok;
}

/* ---- STS XML ---- */

bool sy_aws_parse_sts_xml(const char *text, size_t len, sy_aws_credentials_t *out,
                          time_t *expiration, sy_error_t *err)
{
    *out = (sy_aws_credentials_t){0};
    *expiration = 0;
    static const char *const err_code[] = {"ErrorResponse", "Error", "Code", NULL};
    static const char *const err_msg[] = {"ErrorResponse", "Error", "Message", NULL};
    char *code = sy_aws_xml_text(text, len, err_code);
    if (code) {
        char *msg = sy_aws_xml_text(text, len, err_msg);
        sy_error_set(err, "STS: %s: %s", code, msg ? msg : "(no message)");
        free(code);
        free(msg);
        return false;
    }
    static const char *const p_id[] = {"AssumeRoleWithWebIdentityResponse",
                                       "AssumeRoleWithWebIdentityResult", "Credentials",
                                       "AccessKeyId", NULL};
    static const char *const p_secret[] = {"AssumeRoleWithWebIdentityResponse",
                                           "AssumeRoleWithWebIdentityResult", "Credentials",
                                           "SecretAccessKey", NULL};
    static const char *const p_token[] = {"AssumeRoleWithWebIdentityResponse",
                                          "AssumeRoleWithWebIdentityResult", "Credentials",
                                          "SessionToken", NULL};
    static const char *const p_exp[] = {"AssumeRoleWithWebIdentityResponse",
                                        "AssumeRoleWithWebIdentityResult", "Credentials",
                                        "Expiration", NULL};
    char *id = sy_aws_xml_text(text, len, p_id);
    char *secret = sy_aws_xml_text(text, len, p_secret);
    char *token = sy_aws_xml_text(text, len, p_token);
    char *exp = sy_aws_xml_text(text, len, p_exp);
    bool ok = false;
    if (!id || !secret || !token || !exp || !*id || !*secret || !*token)
        sy_error_set(err, "STS: the answer has no single AccessKeyId, SecretAccessKey, "
                          "SessionToken and Expiration under "
                          "AssumeRoleWithWebIdentityResult/Credentials");
    else if (!(*expiration = sy_aws_parse_time(exp)))
        sy_error_set(err, "STS: Expiration \"%s\" is not an RFC 3339 time", exp);
    else if (!(ok = creds_set(out, id, secret, token)))
        sy_error_set(err, "STS: out of memory");
    free(id);
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    free(token);
    free(exp);
    return ok;
}

/* ---- region ---- */

static char *home_file(const char *env_name, const char *rel)
{
    const char *v = env(env_name);
    if (v)
        return strdup(v);
    const char *home = env("HOME");
    if (!home)
        return NULL;
    size_t n = strlen(home) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", home, rel);
    return p;
}

static const char *profile_name(void)
{
    const char *p = env("AWS_PROFILE");
    return p ? p : "default";
}

void sy_aws_region(char *out, size_t cap)
{
    const char *r = env("AWS_REGION");
    if (!r)
        r = env("AWS_DEFAULT_REGION");
    if (r) {
        snprintf(out, cap, "%s", r);
        return;
    }
    char *path = home_file("AWS_CONFIG_FILE", ".aws/config");
    char *text = path ? read_small_file(path, 1 << 20) : NULL;
    char *region = text ? config_get(text, profile_name(), "region") : NULL;
    snprintf(out, cap, "%s", region && *region ? region : "us-east-1");
    free(region);
    free(text);
    free(path);
}

/* ---- providers ---- */

static provider_result_t from_environment(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
    if (!id && !secret)
        return PROVIDER_SKIP;
    if (!id || !secret) {
        sy_error_set(err, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both "
                          "be set");
        return PROVIDER_FAILED;
    }
    *exp = 0;
    if (!creds_set(out, id, secret, env("AWS_SESSION_TOKEN"))) {
        sy_error_set(err, "environment: out of memory");
        return PROVIDER_FAILED;
    }
    return PROVIDER_OK;
}

/* Appends key=value (value form-encoded) to a form body. */
static void form_add(char **body, size_t *len, const char *key, const char *value)
{
    if (!*body)
        return;
    char *enc = sy_sigv4_uri_encode(sy_slice_cstr(value), false);
    size_t need = *len + strlen(key) + (enc ? strlen(enc) : 0) + 3;
    char *p = enc ? realloc(*body, need) : NULL;
    if (!p) {
        free(*body);
        *body = NULL;
        free(enc);
        return;
    }
    *len += (size_t)snprintf(p + *len, need - *len, "%s%s=%s", *len ? "&" : "", key, enc);
    *body = p;
    free(enc);
}

static provider_result_t from_web_identity(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    const char *token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    if (!token_file || !role)
        return PROVIDER_SKIP;
    char *token = read_small_file(token_file, 64 * 1024);
    if (!token) {
        sy_error_set(err, "web identity: can't read AWS_WEB_IDENTITY_TOKEN_FILE %s", token_file);
        return PROVIDER_FAILED;
    }
    trim_end(token);
    char session[128];
    const char *session_env = env("AWS_ROLE_SESSION_NAME");
    if (session_env)
        snprintf(session, sizeof session, "%s", session_env);
    else
        snprintf(session, sizeof session, "switchyard-%ld", (long)time(NULL));
    char region[64], endpoint_buf[512], url[600];
    sy_aws_region(region, sizeof region);
    const char *endpoint = sy_aws_endpoint_override("STS", endpoint_buf, sizeof endpoint_buf);
    if (endpoint)
        snprintf(url, sizeof url, "%s/", endpoint);
    else
        snprintf(url, sizeof url, "https://sts.%s.amazonaws.com/", region);
    size_t len = 0;
    char *body = calloc(1, 1);
    form_add(&body, &len, "Action", "AssumeRoleWithWebIdentity");
    form_add(&body, &len, "Version", "2011-06-15");
    form_add(&body, &len, "RoleArn", role);
    form_add(&body, &len, "RoleSessionName", session);
    form_add(&body, &len, "WebIdentityToken", token);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (!body) {
        sy_error_set(err, "web identity: out of memory");
        return PROVIDER_FAILED;
    }
    static const sy_sigv4_header_t headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    /* Unsigned: the web identity token is the credential. */
    sy_aws_request_t req = {.method = "POST",
                            .url = url,
                            .headers = headers,
                            .header_count = 1,
                            .body = body,
                            .body_len = len,
                            .timeout_ms = 10000};
    sy_aws_response_t resp;
    sy_error_t herr = {{0}};
    bool ok = sy_aws_http_perform(&req, &resp, &herr);
    OPENSSL_cleanse(body, len);
    free(body);
    if (!ok) {
        sy_error_set(err, "web identity: %s", herr.message);
        return PROVIDER_FAILED;
    }
    ok = sy_aws_parse_sts_xml(resp.body, resp.body_len, out, exp, err);
    if (!ok && resp.status != 200 && !err->message[0])
        sy_error_set(err, "web identity: STS answered HTTP %ld", resp.status);
    sy_aws_response_free(&resp);
    return ok ? PROVIDER_OK : PROVIDER_FAILED;
}

static provider_result_t from_shared_files(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    char *cpath = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    char *fpath = home_file("AWS_CONFIG_FILE", ".aws/config");
    char *ctext = cpath ? read_small_file(cpath, 1 << 20) : NULL;
    char *ftext = fpath ? read_small_file(fpath, 1 << 20) : NULL;
    sy_error_t perr = {{0}};
    bool ok =
        (ctext || ftext) && sy_aws_parse_shared_files(ctext, ftext, profile_name(), out, &perr);
    if (ctext)
        OPENSSL_cleanse(ctext, strlen(ctext));
    if (ftext)
        OPENSSL_cleanse(ftext, strlen(ftext));
    free(ctext);
    free(ftext);
    free(cpath);
    free(fpath);
    *exp = 0;
    if (ok)
        return PROVIDER_OK;
    /* An explicitly named profile that isn't there is a mistake to report. */
    if (env("AWS_PROFILE")) {
        sy_error_set(err, "%s", perr.message[0] ? perr.message : "shared files: not readable");
        return PROVIDER_FAILED;
    }
    return PROVIDER_SKIP;
}

/* http:// is accepted only to loopback and the ECS/EKS link-local
 * endpoints; anything else must be https. */
static bool container_url_allowed(const char *url)
{
    if (strncmp(url, "https://", 8) == 0)
        return true;
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *host = url + 7;
    size_t n = strcspn(host, "/?#");
    static const char *const allowed[] = {"127.",          "localhost",      "[::1]",
                                          "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        size_t al = strlen(allowed[i]);
        if (n < al || strncasecmp(host, allowed[i], al) != 0)
            continue;
        char next = host[al];
        if (allowed[i][al - 1] == '.' || next == ':' || next == '/' || next == '\0' || next == '?')
            return true;
    }
    return false;
}

static provider_result_t from_container(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return PROVIDER_SKIP;
    char url[2048];
    if (rel)
        snprintf(url, sizeof url, "http://169.254.170.2%s%s", rel[0] == '/' ? "" : "/", rel);
    else
        snprintf(url, sizeof url, "%s", full);
    if (!rel && !container_url_allowed(url)) {
        sy_error_set(err, "container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI must be "
                          "https, or http to loopback or the ECS/EKS endpoint");
        return PROVIDER_FAILED;
    }
    char *auth = NULL;
    const char *auth_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (auth_file) {
        auth = read_small_file(auth_file, 16 * 1024);
        if (!auth) {
            sy_error_set(err,
                         "container credentials: can't read "
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
                         auth_file);
            return PROVIDER_FAILED;
        }
        trim_end(auth);
    } else if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        auth = strdup(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    }
    if (auth && strpbrk(auth, "\r\n")) {
        sy_error_set(err, "container credentials: the authorization token holds a line break");
        free(auth);
        return PROVIDER_FAILED;
    }
    sy_sigv4_header_t headers[1] = {{"Authorization", auth}};
    sy_aws_request_t req = {.method = "GET",
                            .url = url,
                            .headers = headers,
                            .header_count = auth ? 1 : 0,
                            .timeout_ms = 5000,
                            .connect_timeout_ms = 2000};
    sy_aws_response_t resp;
    sy_error_t herr = {{0}};
    bool ok = sy_aws_http_perform(&req, &resp, &herr);
    if (auth) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    if (!ok) {
        sy_error_set(err, "container credentials: %s", herr.message);
        return PROVIDER_FAILED;
    }
    if (resp.status != 200) {
        sy_error_set(err, "container credentials: %s answered HTTP %ld", url, resp.status);
        sy_aws_response_free(&resp);
        return PROVIDER_FAILED;
    }
    sy_error_t perr = {{0}};
    ok = sy_aws_parse_credentials_json(resp.body, resp.body_len, out, exp, &perr);
    sy_aws_response_free(&resp);
    if (!ok)
        sy_error_set(err, "container credentials: %s", perr.message);
    return ok ? PROVIDER_OK : PROVIDER_FAILED;
}

static bool imds_get(const char *url, const char *method, const sy_sigv4_header_t *header,
                     sy_aws_response_t *resp, sy_error_t *err)
{
    sy_aws_request_t req = {.method = method,
                            .url = url,
                            .headers = header,
                            .header_count = 1,
                            .timeout_ms = 2000,
                            .connect_timeout_ms = 1000};
    if (!sy_aws_http_perform(&req, resp, err))
        return false;
    if (resp->status != 200) {
        sy_error_set(err, "IMDS: %s %s answered HTTP %ld", method, url, resp->status);
        sy_aws_response_free(resp);
        return false;
    }
    return true;
}

static provider_result_t from_imds(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    const char *disabled = env("AWS_EC2_METADATA_DISABLED");
    if (disabled && strcasecmp(disabled, "true") == 0)
        return PROVIDER_SKIP;
    char base[512];
    const char *endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    snprintf(base, sizeof base, "%s", endpoint ? endpoint : "http://169.254.169.254");
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        base[--n] = '\0';
    char url[1024];
    sy_aws_response_t resp;
    sy_error_t herr = {{0}};
    /* IMDSv2: a session token first; v1 fallback is deliberately absent. */
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    sy_sigv4_header_t ttl = {"X-aws-ec2-metadata-token-ttl-seconds", "21600"};
    if (!imds_get(url, "PUT", &ttl, &resp, &herr)) {
        sy_error_set(err, "IMDS: no session token: %s", herr.message);
        return PROVIDER_FAILED;
    }
    char *token = strdup(resp.body);
    sy_aws_response_free(&resp);
    if (!token) {
        sy_error_set(err, "IMDS: out of memory");
        return PROVIDER_FAILED;
    }
    trim_end(token);
    sy_sigv4_header_t tok = {"X-aws-ec2-metadata-token", token};
    provider_result_t result = PROVIDER_FAILED;
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
    if (!imds_get(url, "GET", &tok, &resp, &herr)) {
        sy_error_set(err, "IMDS: no instance role: %s", herr.message);
        goto done;
    }
    char role[256];
    size_t rl = strcspn(resp.body, "\r\n");
    snprintf(role, sizeof role, "%.*s", (int)(rl < sizeof role ? rl : sizeof role - 1), resp.body);
    sy_aws_response_free(&resp);
    if (!role[0] || strpbrk(role, "/?#% ")) {
        sy_error_set(err, "IMDS: no usable instance role name");
        goto done;
    }
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base, role);
    if (!imds_get(url, "GET", &tok, &resp, &herr)) {
        sy_error_set(err, "IMDS: %s", herr.message);
        goto done;
    }
    sy_error_t perr = {{0}};
    if (sy_aws_parse_credentials_json(resp.body, resp.body_len, out, exp, &perr))
        result = PROVIDER_OK;
    else
        sy_error_set(err, "IMDS: %s", perr.message);
    sy_aws_response_free(&resp);
done:
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    return result;
}

/* ---- the chain and its cache ---- */

typedef provider_result_t (*provider_fn)(sy_aws_credentials_t *, time_t *, sy_error_t *);

static const struct {
    const char *name;
    provider_fn fn;
} chain[] = {
    {"environment", from_environment},
    {"web-identity", from_web_identity},
    {"shared-files", from_shared_files},
    {"container", from_container},
    {"imds", from_imds},
};

static struct {
    pthread_mutex_t lock;
    bool have;
    sy_aws_credentials_t creds;
    time_t expiration; /* 0: never */
    char source[32];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool resolve(sy_aws_credentials_t *out, time_t *exp, char source[32], sy_error_t *err)
{
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        sy_error_t perr = {{0}};
        provider_result_t r = chain[i].fn(out, exp, &perr);
        if (r == PROVIDER_OK) {
            snprintf(source, 32, "%s", chain[i].name);
            return true;
        }
        if (r == PROVIDER_FAILED) {
            sy_error_set(err, "AWS credentials: %s", perr.message);
            return false;
        }
    }
    sy_error_set(err, "AWS credentials: none found (environment, web identity, shared files, "
                      "container endpoint, IMDS)");
    return false;
}

bool sy_aws_credentials_get(sy_aws_credentials_t *out, char source[32], sy_error_t *err)
{
    *out = (sy_aws_credentials_t){0};
    pthread_mutex_lock(&cache.lock);
    time_t now = time(NULL);
    bool fresh = cache.have &&
                 (cache.expiration == 0 || now < cache.expiration - SY_AWS_CREDENTIALS_REFRESH_S);
    if (!fresh) {
        sy_aws_credentials_t next = {0};
        time_t exp = 0;
        char src[32] = "";
        sy_error_t rerr = {{0}};
        if (resolve(&next, &exp, src, &rerr)) {
            sy_aws_credentials_free(&cache.creds);
            cache.creds = next;
            cache.expiration = exp;
            cache.have = true;
            snprintf(cache.source, sizeof cache.source, "%s", src);
            if (exp)
                sy_log(SY_LOG_DEBUG, "AWS credentials refreshed", "source", src, NULL);
        } else if (cache.have && now < cache.expiration) {
            sy_log(SY_LOG_WARN, "AWS credentials refresh failed; using the current ones", "error",
                   rerr.message, NULL);
        } else {
            pthread_mutex_unlock(&cache.lock);
            sy_error_set(err, "%s", rerr.message);
            return false;
        }
    }
    bool ok = creds_copy(out, &cache.creds);
    if (source)
        snprintf(source, 32, "%s", cache.source);
    pthread_mutex_unlock(&cache.lock);
    if (!ok)
        sy_error_set(err, "AWS credentials: out of memory");
    return ok;
}

void sy_aws_credentials_reset(void)
{
    pthread_mutex_lock(&cache.lock);
    sy_aws_credentials_free(&cache.creds);
    cache.have = false;
    cache.expiration = 0;
    cache.source[0] = '\0';
    pthread_mutex_unlock(&cache.lock);
}
