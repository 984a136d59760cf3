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
 *
 * A shared-files profile is resolved to a plan first (pure, unit-tested):
 * a source (keys, credential_source, SSO, credential_process), then the
 * roles of its source_profile chain assumed one after the other with STS
 * AssumeRole, each signed with the previous credentials. The result is
 * cached like any other with the last role's Expiration, so the whole
 * chain is walked again only near expiry. credential_process runs without
 * a shell (the AWS documentation's quoting rules, no variables or ~), with
 * a timeout and an output cap; SSO reads the AWS CLI's token cache and
 * never logs in itself: an expired token is an error saying to run
 * `aws sso login`.
 */
#include "aws/credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The value of key in section (NULL key: just look for the section);
 * *seen says whether the section header appeared. */
static char *ini_scan(const char *text, const char *section, const char *key, bool *seen)
{
    *seen = false;
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
            *seen = *seen || in_section;
        } else if (key && in_section && s < e && *s != '#' && *s != ';') {
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

char *sy_aws_ini_get(const char *text, const char *section, const char *key)
{
    bool seen;
    return ini_scan(text, section, key, &seen);
}

static bool ini_has_section(const char *text, const char *section)
{
    bool seen;
    ini_scan(text, section, NULL, &seen);
    return seen;
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

bool sy_aws_parse_sts_answer(const char *text, size_t len, const char *action,
                             sy_aws_credentials_t *out, time_t *expiration, sy_error_t *err)
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
    char response[96], result[96];
    snprintf(response, sizeof response, "%sResponse", action);
    snprintf(result, sizeof result, "%sResult", action);
    const char *p_id[] = {response, result, "Credentials", "AccessKeyId", NULL};
    const char *p_secret[] = {response, result, "Credentials", "SecretAccessKey", NULL};
    const char *p_token[] = {response, result, "Credentials", "SessionToken", NULL};
    const char *p_exp[] = {response, result, "Credentials", "Expiration", NULL};
    char *id = sy_aws_xml_text(text, len, p_id);
    char *secret = sy_aws_xml_text(text, len, p_secret);
    char *token = sy_aws_xml_text(text, len, p_token);
    char *exp = sy_aws_xml_text(text, len, p_exp);
    bool ok = false;
    if (!id || !secret || !token || !exp || !*id || !*secret || !*token)
        sy_error_set(err,
                     "STS: the answer has no single AccessKeyId, SecretAccessKey, "
                     "SessionToken and Expiration under %s/Credentials",
                     result);
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

bool sy_aws_parse_sts_xml(const char *text, size_t len, sy_aws_credentials_t *out,
                          time_t *expiration, sy_error_t *err)
{
    return sy_aws_parse_sts_answer(text, len, "AssumeRoleWithWebIdentity", out, expiration, err);
}

/* ---- region ---- */

/* HOME/rel, malloc'd; NULL without HOME. */
static char *home_path(const char *rel)
{
    const char *home = env("HOME");
    if (!home)
        return NULL;
    size_t n = strlen(home) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", home, rel);
    return p;
}

/* The file an environment variable names, else HOME/rel. */
static char *home_file(const char *env_name, const char *rel)
{
    const char *v = env(env_name);
    return v ? strdup(v) : home_path(rel);
}

static const char *profile_name(void)
{
    const char *p = env("AWS_PROFILE");
    return p ? p : "default";
}

static bool imds_disabled(void)
{
    const char *disabled = env("AWS_EC2_METADATA_DISABLED");
    return disabled && strcasecmp(disabled, "true") == 0;
}

static void imds_base(char *base, size_t cap)
{
    const char *endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    snprintf(base, cap, "%s", endpoint ? endpoint : "http://169.254.169.254");
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        base[--n] = '\0';
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

/* IMDSv2: a session token first; v1 fallback is deliberately absent. The
 * token is malloc'd. */
static char *imds_token(const char *base, sy_error_t *err)
{
    char url[600];
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    sy_sigv4_header_t ttl = {"X-aws-ec2-metadata-token-ttl-seconds", "21600"};
    sy_aws_response_t resp;
    sy_error_t herr = {{0}};
    if (!imds_get(url, "PUT", &ttl, &resp, &herr)) {
        sy_error_set(err, "IMDS: no session token: %s", herr.message);
        return NULL;
    }
    char *token = strdup(resp.body);
    sy_aws_response_free(&resp);
    if (!token)
        sy_error_set(err, "IMDS: out of memory");
    else
        trim_end(token);
    return token;
}

/* A region goes into host names and signatures: letters, digits, '-'. */
static bool region_valid(const char *r)
{
    if (!*r || strlen(r) > 40)
        return false;
    for (const char *p = r; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

/* The instance's region from IMDS, asked once per process: it can't
 * change under a running instance. A failure is remembered for a minute,
 * so off EC2 every store call doesn't wait for the metadata connect
 * timeout again. */
static struct {
    pthread_mutex_t lock;
    char region[64];
    time_t failed_at;
} imds_region = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool region_from_imds(char *out, size_t cap)
{
    if (imds_disabled())
        return false;
    pthread_mutex_lock(&imds_region.lock);
    time_t now = time(NULL);
    if (!imds_region.region[0] && !(imds_region.failed_at && now >= imds_region.failed_at &&
                                    now - imds_region.failed_at < 60)) {
        char base[512], url[600];
        imds_base(base, sizeof base);
        sy_error_t ierr = {{0}};
        char *token = imds_token(base, &ierr);
        if (token) {
            sy_sigv4_header_t tok = {"X-aws-ec2-metadata-token", token};
            sy_aws_response_t resp;
            snprintf(url, sizeof url, "%s/latest/meta-data/placement/region", base);
            if (imds_get(url, "GET", &tok, &resp, &ierr)) {
                trim_end(resp.body);
                if (region_valid(resp.body))
                    snprintf(imds_region.region, sizeof imds_region.region, "%s", resp.body);
                sy_aws_response_free(&resp);
            }
            free(token);
        }
        imds_region.failed_at = imds_region.region[0] ? 0 : now;
    }
    bool ok = imds_region.region[0] != '\0';
    if (ok)
        snprintf(out, cap, "%s", imds_region.region);
    pthread_mutex_unlock(&imds_region.lock);
    return ok;
}

bool sy_aws_region(char *out, size_t cap, sy_error_t *err)
{
    const char *r = env("AWS_REGION");
    const char *from = "AWS_REGION";
    if (!r) {
        r = env("AWS_DEFAULT_REGION");
        from = "AWS_DEFAULT_REGION";
    }
    if (r) {
        if (!region_valid(r)) {
            sy_error_set(err, "%s \"%.64s\" is not an AWS region name (e.g. eu-west-1)", from, r);
            return false;
        }
        snprintf(out, cap, "%s", r);
        return true;
    }
    char *path = home_file("AWS_CONFIG_FILE", ".aws/config");
    char *text = path ? read_small_file(path, 1 << 20) : NULL;
    char *region = text ? config_get(text, profile_name(), "region") : NULL;
    bool ok = region && *region;
    if (ok && !region_valid(region)) {
        sy_error_set(err, "%s: the region \"%.64s\" of profile \"%s\" is not an AWS region name",
                     path, region, profile_name());
        ok = false;
        free(region);
        free(text);
        free(path);
        return false;
    }
    if (ok)
        snprintf(out, cap, "%s", region);
    free(region);
    free(text);
    free(path);
    if (ok || region_from_imds(out, cap))
        return true;
    sy_error_set(err,
                 "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or `region = ...` in "
                 "the profile \"%s\" of ~/.aws/config (AWS_CONFIG_FILE); on EC2 it comes from "
                 "instance metadata",
                 profile_name());
    return false;
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

/* The regional STS endpoint (the SDKs' default), or AWS_ENDPOINT_URL_STS. */
static bool sts_url(char *region, size_t rcap, char *url, size_t ucap, sy_error_t *err)
{
    if (!sy_aws_region(region, rcap, err))
        return false;
    char endpoint_buf[512];
    const char *endpoint = sy_aws_endpoint_override("STS", endpoint_buf, sizeof endpoint_buf);
    if (endpoint)
        snprintf(url, ucap, "%s/", endpoint);
    else
        snprintf(url, ucap, "https://sts.%s.amazonaws.com/", region);
    return true;
}

/* AssumeRoleWithWebIdentity with the token in token_file: from the
 * environment (AWS_WEB_IDENTITY_TOKEN_FILE) or a profile
 * (web_identity_token_file). */
static provider_result_t web_identity(const char *token_file, const char *role,
                                      const char *session_env, sy_aws_credentials_t *out,
                                      time_t *exp, sy_error_t *err)
{
    char *token = read_small_file(token_file, 64 * 1024);
    if (!token) {
        sy_error_set(err, "web identity: can't read the token file %s", token_file);
        return PROVIDER_FAILED;
    }
    trim_end(token);
    char session[128];
    if (session_env)
        snprintf(session, sizeof session, "%s", session_env);
    else
        snprintf(session, sizeof session, "switchyard-%ld", (long)time(NULL));
    char region[64], url[600];
    sy_error_t rerr = {{0}};
    if (!sts_url(region, sizeof region, url, sizeof url, &rerr)) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
        sy_error_set(err, "web identity: %s", rerr.message);
        return PROVIDER_FAILED;
    }
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

static provider_result_t from_web_identity(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    const char *token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    if (!token_file || !role)
        return PROVIDER_SKIP;
    return web_identity(token_file, role, env("AWS_ROLE_SESSION_NAME"), out, exp, err);
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

static provider_result_t from_imds(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    if (imds_disabled())
        return PROVIDER_SKIP;
    char base[512];
    imds_base(base, sizeof base);
    char url[1024];
    sy_aws_response_t resp;
    sy_error_t herr = {{0}};
    char *token = imds_token(base, err);
    if (!token)
        return PROVIDER_FAILED;
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

/* ---- profiles: resolution ---- */

/* A key of the profile, the credentials file's section first (it wins key
 * by key, as in the AWS CLI), then the config file's; an empty value is
 * absent. */
static char *pget(const char *ctext, const char *ftext, const char *profile, const char *key)
{
    char *v = sy_aws_ini_get(ctext, profile, key);
    if (!v)
        v = config_get(ftext, profile, key);
    if (v && !*v) {
        free(v);
        v = NULL;
    }
    return v;
}

static bool phas(const char *ctext, const char *ftext, const char *profile, const char *key)
{
    char *v = pget(ctext, ftext, profile, key);
    bool has = v != NULL;
    free(v);
    return has;
}

static bool profile_exists(const char *ctext, const char *ftext, const char *profile)
{
    char section[256];
    snprintf(section, sizeof section, "profile %s", profile);
    return ini_has_section(ctext, profile) || ini_has_section(ftext, section) ||
           (strcmp(profile, "default") == 0 && ini_has_section(ftext, "default"));
}

void sy_aws_profile_plan_free(sy_aws_profile_plan_t *plan)
{
    if (!plan)
        return;
    sy_aws_credentials_free(&plan->creds);
    free(plan->process);
    free(plan->web_identity_token_file);
    free(plan->sso_start_url);
    free(plan->sso_region);
    free(plan->sso_account_id);
    free(plan->sso_role_name);
    free(plan->sso_session);
    for (size_t i = 0; i < plan->role_count; i++) {
        free(plan->roles[i].role_arn);
        free(plan->roles[i].session_name);
        free(plan->roles[i].external_id);
    }
    *plan = (sy_aws_profile_plan_t){0};
}

/* One role_arn profile → a step; false with err on a setting that can't
 * work unattended. */
static bool role_step(const char *ctext, const char *ftext, const char *profile, char *role_arn,
                      sy_aws_role_step_t *step, sy_error_t *err)
{
    *step = (sy_aws_role_step_t){.role_arn = role_arn};
    snprintf(step->profile, sizeof step->profile, "%s", profile);
    if (phas(ctext, ftext, profile, "mfa_serial")) {
        sy_error_set(err,
                     "profile \"%s\": mfa_serial needs a code typed at a prompt, which "
                     "switchyard can't ask for; use a role without MFA for switchyard, or "
                     "export the session's keys (AWS_ACCESS_KEY_ID, ...) yourself",
                     profile);
        return false;
    }
    step->session_name = pget(ctext, ftext, profile, "role_session_name");
    step->external_id = pget(ctext, ftext, profile, "external_id");
    char *d = pget(ctext, ftext, profile, "duration_seconds");
    if (d) {
        char *end;
        long v = strtol(d, &end, 10);
        bool bad = end == d || *end || v < 900 || v > 43200;
        if (bad)
            sy_error_set(err,
                         "profile \"%s\": duration_seconds \"%.32s\" must be a whole number of "
                         "seconds from 900 to 43200",
                         profile, d);
        free(d);
        if (bad)
            return false;
        step->duration_s = v;
    }
    return true;
}

/* The SSO settings of a leaf profile: sso_session naming an
 * [sso-session NAME] section, or the legacy keys in the profile. */
static bool sso_plan(const char *ctext, const char *ftext, const char *profile,
                     sy_aws_profile_plan_t *out, sy_error_t *err)
{
    out->kind = SY_AWS_SOURCE_SSO;
    out->sso_session = pget(ctext, ftext, profile, "sso_session");
    out->sso_account_id = pget(ctext, ftext, profile, "sso_account_id");
    out->sso_role_name = pget(ctext, ftext, profile, "sso_role_name");
    if (out->sso_session) {
        char section[256];
        snprintf(section, sizeof section, "sso-session %s", out->sso_session);
        if (!ini_has_section(ftext, section)) {
            sy_error_set(err,
                         "profile \"%s\": sso_session \"%s\" has no [sso-session %s] section in "
                         "the config file",
                         profile, out->sso_session, out->sso_session);
            return false;
        }
        out->sso_start_url = sy_aws_ini_get(ftext, section, "sso_start_url");
        out->sso_region = sy_aws_ini_get(ftext, section, "sso_region");
    } else {
        out->sso_start_url = pget(ctext, ftext, profile, "sso_start_url");
        out->sso_region = pget(ctext, ftext, profile, "sso_region");
    }
    if (!out->sso_start_url || !*out->sso_start_url || !out->sso_region || !*out->sso_region ||
        !out->sso_account_id || !out->sso_role_name) {
        sy_error_set(err,
                     "profile \"%s\": an SSO profile needs sso_account_id and sso_role_name, and "
                     "sso_start_url and sso_region (in its [sso-session NAME] section, or in the "
                     "profile for the legacy form)",
                     profile);
        return false;
    }
    if (!region_valid(out->sso_region)) {
        sy_error_set(err, "profile \"%s\": sso_region \"%.64s\" is not an AWS region name", profile,
                     out->sso_region);
        return false;
    }
    return true;
}

bool sy_aws_profile_plan(const char *ctext, const char *ftext, const char *profile,
                         sy_aws_profile_plan_t *out, sy_error_t *err)
{
    *out = (sy_aws_profile_plan_t){0};
    char visited[SY_AWS_MAX_ROLE_CHAIN + 1][128];
    size_t nv = 0;
    char cur[128];
    snprintf(cur, sizeof cur, "%s", profile);
    bool ok = false;
    for (;;) {
        for (size_t i = 0; i < nv; i++) {
            if (strcmp(visited[i], cur) != 0)
                continue;
            char path[600] = "";
            size_t o = 0;
            for (size_t k = 0; k < nv && o < sizeof path; k++)
                o += (size_t)snprintf(path + o, sizeof path - o, "%s -> ", visited[k]);
            if (o < sizeof path)
                snprintf(path + o, sizeof path - o, "%s", cur);
            sy_error_set(err, "profile \"%s\": source_profile loop: %s", profile, path);
            goto done;
        }
        if (nv > SY_AWS_MAX_ROLE_CHAIN) {
            sy_error_set(err, "profile \"%s\": more than %d source_profile hops", profile,
                         SY_AWS_MAX_ROLE_CHAIN);
            goto done;
        }
        if (nv > 0 && !profile_exists(ctext, ftext, cur)) {
            sy_error_set(err, "profile \"%s\": source_profile \"%s\" is in neither file",
                         visited[nv - 1], cur);
            goto done;
        }
        snprintf(visited[nv++], sizeof visited[0], "%s", cur);
        char *role = pget(ctext, ftext, cur, "role_arn");
        if (role) {
            if (out->role_count == SY_AWS_MAX_ROLE_CHAIN) {
                free(role);
                sy_error_set(err, "profile \"%s\": more than %d roles chained", profile,
                             SY_AWS_MAX_ROLE_CHAIN);
                goto done;
            }
            sy_aws_role_step_t *step = &out->roles[out->role_count++];
            if (!role_step(ctext, ftext, cur, role, step, err))
                goto done;
            char *sp = pget(ctext, ftext, cur, "source_profile");
            char *cs = pget(ctext, ftext, cur, "credential_source");
            char *wi = pget(ctext, ftext, cur, "web_identity_token_file");
            if ((sp != NULL) + (cs != NULL) + (wi != NULL) != 1) {
                sy_error_set(err,
                             "profile \"%s\": role_arn needs exactly one of source_profile, "
                             "credential_source and web_identity_token_file",
                             cur);
                free(sp);
                free(cs);
                free(wi);
                goto done;
            }
            if (wi) {
                /* This role is assumed with the token, not signed. */
                out->kind = SY_AWS_SOURCE_WEB_IDENTITY;
                out->web_identity_token_file = wi;
                snprintf(out->source_profile, sizeof out->source_profile, "%s", cur);
                ok = true;
                goto done;
            }
            if (cs) {
                static const struct {
                    const char *name;
                    sy_aws_source_kind_t kind;
                } sources[] = {{"Environment", SY_AWS_SOURCE_ENVIRONMENT},
                               {"Ec2InstanceMetadata", SY_AWS_SOURCE_IMDS},
                               {"EcsContainer", SY_AWS_SOURCE_CONTAINER}};
                for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
                    if (strcmp(cs, sources[i].name) == 0)
                        out->kind = sources[i].kind;
                if (!out->kind)
                    sy_error_set(err,
                                 "profile \"%s\": credential_source \"%.64s\" is not one of "
                                 "Environment, Ec2InstanceMetadata, EcsContainer",
                                 cur, cs);
                snprintf(out->source_profile, sizeof out->source_profile, "%s", cur);
                free(cs);
                ok = out->kind != SY_AWS_SOURCE_NONE;
                goto done;
            }
            /* A profile naming itself as its source uses its own keys for
             * the role (the AWS CLI allows this one self-reference). */
            bool self = strcmp(sp, cur) == 0 && phas(ctext, ftext, cur, "aws_access_key_id");
            snprintf(cur, sizeof cur, "%s", sp);
            free(sp);
            if (!self)
                continue;
        } else if (phas(ctext, ftext, cur, "sso_session") ||
                   phas(ctext, ftext, cur, "sso_start_url")) {
            snprintf(out->source_profile, sizeof out->source_profile, "%s", cur);
            ok = sso_plan(ctext, ftext, cur, out, err);
            goto done;
        }
        /* The leaf: keys, else a credential process. */
        snprintf(out->source_profile, sizeof out->source_profile, "%s", cur);
        if (phas(ctext, ftext, cur, "aws_access_key_id") ||
            phas(ctext, ftext, cur, "aws_secret_access_key")) {
            out->kind = SY_AWS_SOURCE_STATIC;
            ok = sy_aws_parse_shared_files(ctext, ftext, cur, &out->creds, err);
        } else if ((out->process = pget(ctext, ftext, cur, "credential_process"))) {
            out->kind = SY_AWS_SOURCE_PROCESS;
            ok = true;
        } else if (out->role_count) {
            sy_error_set(err,
                         "profile \"%s\": its source_profile \"%s\" has no credentials "
                         "(aws_access_key_id, role_arn, sso_session or credential_process)",
                         visited[nv > 1 ? nv - 2 : 0], cur);
        } else {
            ok = true; /* kind NONE */
        }
        goto done;
    }
done:
    if (!ok) {
        sy_aws_profile_plan_free(out);
        return false;
    }
    /* Collected outermost first; assumed innermost first. */
    for (size_t i = 0; i < out->role_count / 2; i++) {
        sy_aws_role_step_t t = out->roles[i];
        out->roles[i] = out->roles[out->role_count - 1 - i];
        out->roles[out->role_count - 1 - i] = t;
    }
    return true;
}

/* ---- credential_process ---- */

/* A credential process gets this long and this much output: it usually
 * reads a keychain or calls a vault, and a wedged one must not hold the
 * poller for ever. */
#define PROCESS_TIMEOUT_MS 60000
#define PROCESS_MAX_STDOUT (64 * 1024)
#define PROCESS_MAX_STDERR 4096

void sy_aws_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

char **sy_aws_split_command(const char *cmd, sy_error_t *err)
{
    size_t n = strlen(cmd);
    /* At most n/2+1 words; each word no longer than the command. */
    char **argv = calloc(n / 2 + 2, sizeof *argv);
    char *word = malloc(n + 1);
    size_t argc = 0;
    if (!argv || !word) {
        free(argv);
        free(word);
        sy_error_set(err, "credential_process: out of memory");
        return NULL;
    }
    const char *p = cmd;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t w = 0;
        char quote = 0;
        while (*p && (quote || (*p != ' ' && *p != '\t'))) {
            if (quote == '\'' && *p == '\'') {
                quote = 0;
            } else if (quote == '\'') {
                word[w++] = *p;
            } else if (*p == '\\' && p[1]) {
                p++;
                word[w++] = *p;
            } else if (quote == '"' && *p == '"') {
                quote = 0;
            } else if (!quote && (*p == '"' || *p == '\'')) {
                quote = *p;
            } else {
                word[w++] = *p;
            }
            p++;
        }
        if (quote) {
            sy_error_set(err, "credential_process: unterminated %c quote", quote);
            goto fail;
        }
        word[w] = '\0';
        if (!(argv[argc++] = strdup(word))) {
            sy_error_set(err, "credential_process: out of memory");
            goto fail;
        }
    }
    free(word);
    if (!argc) {
        sy_error_set(err, "credential_process is empty");
        sy_aws_argv_free(argv);
        return NULL;
    }
    return argv;
fail:
    free(word);
    sy_aws_argv_free(argv);
    return NULL;
}

bool sy_aws_parse_process_json(const char *text, size_t len, sy_aws_credentials_t *out,
                               time_t *expiration, sy_error_t *err)
{
    *out = (sy_aws_credentials_t){0};
    *expiration = 0;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!json_is_object(doc)) {
        sy_error_set(err, "credential_process output: %s", doc ? "not a JSON object" : "not JSON");
        json_decref(doc);
        return false;
    }
    json_t *version = json_object_get(doc, "Version");
    json_t *id = json_object_get(doc, "AccessKeyId");
    json_t *secret = json_object_get(doc, "SecretAccessKey");
    json_t *token = json_object_get(doc, "SessionToken");
    json_t *exp = json_object_get(doc, "Expiration");
    bool ok = false;
    if (!json_is_integer(version) || json_integer_value(version) != 1)
        sy_error_set(err, "credential_process output: \"Version\" must be 1");
    else if (!json_is_string(id) || !json_is_string(secret) || !*json_string_value(id) ||
             !*json_string_value(secret))
        sy_error_set(err, "credential_process output: AccessKeyId and SecretAccessKey must be "
                          "non-empty strings");
    else if (token && !json_is_string(token) && !json_is_null(token))
        sy_error_set(err, "credential_process output: SessionToken must be a string");
    else if (exp && !json_is_null(exp) &&
             (!json_is_string(exp) || !(*expiration = sy_aws_parse_time(json_string_value(exp)))))
        sy_error_set(err, "credential_process output: Expiration must be an ISO 8601 time");
    else if (!(ok = creds_set(out, json_string_value(id), json_string_value(secret),
                              json_string_value(token))))
        sy_error_set(err, "credential_process output: out of memory");
    json_decref(doc);
    return ok;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line of what the process said on stderr, for the error. */
static void stderr_line(const char *text, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    while (n < len && text[n] != '\n' && text[n] != '\r')
        n++;
    if (n > 200)
        n = 200;
    snprintf(out, cap, "%s%.*s", n ? ": " : "", (int)n, text);
}

/* Runs the command without a shell, its stdin /dev/null, in its own
 * process group (killed whole on timeout); stdout is returned. */
static bool run_process(const char *cmd, char **stdout_text, size_t *stdout_len, sy_error_t *err)
{
    *stdout_text = NULL;
    *stdout_len = 0;
    char **argv = sy_aws_split_command(cmd, err);
    if (!argv)
        return false;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    char *buf = malloc(PROCESS_MAX_STDOUT + 1);
    char ebuf[PROCESS_MAX_STDERR];
    size_t olen = 0, elen = 0;
    bool ok = false;
    pid_t pid = -1;
    if (!buf || pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        sy_error_set(err, "credential_process: can't create pipes: %s", strerror(errno));
        goto done;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    /* Listening sockets and store connections stay in switchyard. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(out_pipe[1]);
    close(err_pipe[1]);
    out_pipe[1] = err_pipe[1] = -1;
    if (rc != 0) {
        pid = -1;
        sy_error_set(err, "credential_process: can't run %.200s: %s", argv[0], strerror(rc));
        goto done;
    }
    long deadline = now_ms() + PROCESS_TIMEOUT_MS;
    bool out_open = true, err_open = true, too_large = false, timed_out = false;
    while (out_open || err_open) {
        long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd fds[2] = {{out_open ? out_pipe[0] : -1, POLLIN, 0},
                                {err_open ? err_pipe[0] : -1, POLLIN, 0}};
        int pr = poll(fds, 2, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        if (fds[0].revents) {
            char tmp[4096];
            ssize_t r = read(out_pipe[0], tmp, sizeof tmp);
            if (r <= 0 && !(r < 0 && errno == EINTR)) {
                out_open = false;
            } else if (r > 0) {
                if (olen + (size_t)r > PROCESS_MAX_STDOUT) {
                    too_large = true;
                    break;
                }
                memcpy(buf + olen, tmp, (size_t)r);
                olen += (size_t)r;
            }
        }
        if (fds[1].revents) {
            char tmp[1024];
            ssize_t r = read(err_pipe[0], tmp, sizeof tmp);
            if (r <= 0 && !(r < 0 && errno == EINTR)) {
                err_open = false;
            } else if (r > 0 && elen < sizeof ebuf) {
                size_t take = (size_t)r < sizeof ebuf - elen ? (size_t)r : sizeof ebuf - elen;
                memcpy(ebuf + elen, tmp, take);
                elen += take;
            }
        }
    }
    int status = 0;
    if (timed_out || too_large) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        sy_error_set(err,
                     too_large ? "credential_process: more than %d bytes of output; killed"
                               : "credential_process: no answer within %d ms; killed",
                     too_large ? PROCESS_MAX_STDOUT : PROCESS_TIMEOUT_MS);
        goto done;
    }
    /* Both pipes closed: the process is exiting; give it the rest of the
     * time to do so. */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            sy_error_set(err, "credential_process: waitpid: %s", strerror(errno));
            goto done;
        }
        if (now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            sy_error_set(err, "credential_process: did not exit within %d ms; killed",
                         PROCESS_TIMEOUT_MS);
            goto done;
        }
        sy_aws_sleep_ms(10);
    }
    char why[240];
    stderr_line(ebuf, elen, why, sizeof why);
    if (WIFSIGNALED(status)) {
        sy_error_set(err, "credential_process %.200s: killed by signal %d%s", argv[0],
                     WTERMSIG(status), why);
        goto done;
    }
    if (WEXITSTATUS(status) != 0) {
        sy_error_set(err, "credential_process %.200s: exit status %d%s", argv[0],
                     WEXITSTATUS(status), why);
        goto done;
    }
    buf[olen] = '\0';
    *stdout_text = buf;
    *stdout_len = olen;
    buf = NULL;
    ok = true;
done:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    if (buf) {
        OPENSSL_cleanse(buf, olen);
        free(buf);
    }
    sy_aws_argv_free(argv);
    return ok;
}

static provider_result_t from_process(const char *profile, const char *cmd,
                                      sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    char *text;
    size_t len;
    sy_error_t perr = {{0}};
    if (!run_process(cmd, &text, &len, &perr)) {
        sy_error_set(err, "profile \"%s\": %s", profile, perr.message);
        return PROVIDER_FAILED;
    }
    bool ok = sy_aws_parse_process_json(text, len, out, exp, &perr);
    OPENSSL_cleanse(text, len);
    free(text);
    if (!ok) {
        sy_error_set(err, "profile \"%s\": %s", profile, perr.message);
        return PROVIDER_FAILED;
    }
    return PROVIDER_OK;
}

/* ---- SSO (IAM Identity Center) ---- */

void sy_aws_sso_cache_name(const char *key, char out[46])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(key, strlen(key), md, &n, EVP_sha1(), NULL) != 1 || n != 20) {
        out[0] = '\0';
        return;
    }
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    snprintf(out + 40, 6, ".json");
}

bool sy_aws_parse_sso_token(const char *text, size_t len, char **token, time_t *expires_at,
                            sy_error_t *err)
{
    *token = NULL;
    *expires_at = 0;
    json_t *doc = json_loadb(text, len, 0, NULL);
    const char *t = json_string_value(json_object_get(doc, "accessToken"));
    const char *e = json_string_value(json_object_get(doc, "expiresAt"));
    bool ok = false;
    if (!t || !*t || !e) {
        sy_error_set(err, "the SSO token cache file has no accessToken and expiresAt");
    } else {
        /* The CLI v1 wrote "2019-11-14T04:05:45UTC". */
        char fixed[64];
        snprintf(fixed, sizeof fixed, "%s", e);
        size_t n = strlen(fixed);
        if (n > 3 && strcmp(fixed + n - 3, "UTC") == 0)
            snprintf(fixed + n - 3, 4, "Z");
        if (!(*expires_at = sy_aws_parse_time(fixed)))
            sy_error_set(err, "the SSO token cache file's expiresAt \"%.64s\" is not a time", e);
        else if (!(*token = strdup(t)))
            sy_error_set(err, "out of memory");
        else
            ok = true;
    }
    json_decref(doc);
    return ok;
}

bool sy_aws_parse_sso_credentials(const char *text, size_t len, sy_aws_credentials_t *out,
                                  time_t *expiration, sy_error_t *err)
{
    *out = (sy_aws_credentials_t){0};
    *expiration = 0;
    json_t *doc = json_loadb(text, len, 0, NULL);
    json_t *rc = json_object_get(doc, "roleCredentials");
    const char *id = json_string_value(json_object_get(rc, "accessKeyId"));
    const char *secret = json_string_value(json_object_get(rc, "secretAccessKey"));
    const char *token = json_string_value(json_object_get(rc, "sessionToken"));
    json_t *exp = json_object_get(rc, "expiration");
    bool ok = false;
    if (!id || !secret || !token || !*id || !*secret || !*token || !json_is_integer(exp) ||
        json_integer_value(exp) <= 0)
        sy_error_set(err, "SSO GetRoleCredentials: the answer has no roleCredentials with "
                          "accessKeyId, secretAccessKey, sessionToken and expiration");
    else if (!(ok = creds_set(out, id, secret, token)))
        sy_error_set(err, "SSO: out of memory");
    else
        *expiration = (time_t)(json_integer_value(exp) / 1000);
    json_decref(doc);
    return ok;
}

static provider_result_t from_sso(const char *profile, const sy_aws_profile_plan_t *plan,
                                  sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    char login[300];
    if (plan->sso_session)
        snprintf(login, sizeof login, "run `aws sso login --sso-session %s`", plan->sso_session);
    else
        snprintf(login, sizeof login, "run `aws sso login --profile %s`", profile);
    char name[46], rel[80];
    sy_aws_sso_cache_name(plan->sso_session ? plan->sso_session : plan->sso_start_url, name);
    snprintf(rel, sizeof rel, ".aws/sso/cache/%s", name);
    char *path = home_path(rel); /* where the AWS CLI writes it: no variable moves it */
    char *text = path ? read_small_file(path, 1 << 20) : NULL;
    if (!text) {
        sy_error_set(err, "profile \"%s\": no SSO token (%s is missing): %s", profile,
                     path ? path : "~/.aws/sso/cache", login);
        free(path);
        return PROVIDER_FAILED;
    }
    char *token = NULL;
    time_t expires_at;
    sy_error_t perr = {{0}};
    bool ok = sy_aws_parse_sso_token(text, strlen(text), &token, &expires_at, &perr);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (!ok) {
        sy_error_set(err, "profile \"%s\": %s (%s): %s", profile, perr.message, path, login);
        free(path);
        return PROVIDER_FAILED;
    }
    free(path);
    if (time(NULL) >= expires_at) {
        char when[32];
        struct tm tm;
        gmtime_r(&expires_at, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        sy_error_set(err, "profile \"%s\": the SSO token expired at %s: %s", profile, when, login);
        OPENSSL_cleanse(token, strlen(token));
        free(token);
        return PROVIDER_FAILED;
    }
    char endpoint_buf[512], base[600], url[1400];
    const char *endpoint = sy_aws_endpoint_override("SSO", endpoint_buf, sizeof endpoint_buf);
    if (endpoint)
        snprintf(base, sizeof base, "%s", endpoint);
    else
        snprintf(base, sizeof base, "https://portal.sso.%s.amazonaws.com", plan->sso_region);
    char *acct = sy_sigv4_uri_encode(sy_slice_cstr(plan->sso_account_id), false);
    char *role = sy_sigv4_uri_encode(sy_slice_cstr(plan->sso_role_name), false);
    if (acct && role)
        snprintf(url, sizeof url, "%s/federation/credentials?account_id=%s&role_name=%s", base,
                 acct, role);
    free(acct);
    free(role);
    if (!acct || !role || strpbrk(token, "\r\n")) {
        sy_error_set(err, "profile \"%s\": unusable SSO settings or token", profile);
        OPENSSL_cleanse(token, strlen(token));
        free(token);
        return PROVIDER_FAILED;
    }
    sy_sigv4_header_t headers[] = {{"x-amz-sso_bearer_token", token}};
    sy_aws_request_t req = {
        .method = "GET", .url = url, .headers = headers, .header_count = 1, .timeout_ms = 10000};
    sy_aws_response_t resp;
    sy_error_t herr = {{0}};
    ok = sy_aws_http_perform(&req, &resp, &herr);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (!ok) {
        sy_error_set(err, "profile \"%s\": SSO GetRoleCredentials: %s", profile, herr.message);
        return PROVIDER_FAILED;
    }
    if (resp.status == 401 || resp.status == 403) {
        sy_error_t aerr = {{0}};
        sy_aws_error_message(&resp, "SSO GetRoleCredentials", &aerr);
        sy_error_set(err, "profile \"%s\": the SSO token was refused (%s): %s", profile,
                     aerr.message, login);
        sy_aws_response_free(&resp);
        return PROVIDER_FAILED;
    }
    if (resp.status != 200) {
        sy_error_t aerr = {{0}};
        sy_aws_error_message(&resp, "SSO GetRoleCredentials", &aerr);
        sy_error_set(err, "profile \"%s\": %s", profile, aerr.message);
        sy_aws_response_free(&resp);
        return PROVIDER_FAILED;
    }
    ok = sy_aws_parse_sso_credentials(resp.body, resp.body_len, out, exp, &perr);
    sy_aws_response_free(&resp);
    if (!ok) {
        sy_error_set(err, "profile \"%s\": %s", profile, perr.message);
        return PROVIDER_FAILED;
    }
    return PROVIDER_OK;
}

/* ---- STS AssumeRole ---- */

static provider_result_t assume_role(const sy_aws_role_step_t *step,
                                     const sy_aws_credentials_t *source, sy_aws_credentials_t *out,
                                     time_t *exp, sy_error_t *err)
{
    char region[64], url[600];
    sy_error_t rerr = {{0}};
    if (!sts_url(region, sizeof region, url, sizeof url, &rerr)) {
        sy_error_set(err, "profile \"%s\": AssumeRole: %s", step->profile, rerr.message);
        return PROVIDER_FAILED;
    }
    char session[128], duration[16];
    if (step->session_name)
        snprintf(session, sizeof session, "%s", step->session_name);
    else
        snprintf(session, sizeof session, "switchyard-%ld", (long)time(NULL));
    size_t len = 0;
    char *body = calloc(1, 1);
    form_add(&body, &len, "Action", "AssumeRole");
    form_add(&body, &len, "Version", "2011-06-15");
    form_add(&body, &len, "RoleArn", step->role_arn);
    form_add(&body, &len, "RoleSessionName", session);
    if (step->external_id)
        form_add(&body, &len, "ExternalId", step->external_id);
    if (step->duration_s) {
        snprintf(duration, sizeof duration, "%ld", step->duration_s);
        form_add(&body, &len, "DurationSeconds", duration);
    }
    if (!body) {
        sy_error_set(err, "profile \"%s\": AssumeRole: out of memory", step->profile);
        return PROVIDER_FAILED;
    }
    static const sy_sigv4_header_t headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    sy_aws_request_t req = {.method = "POST",
                            .url = url,
                            .headers = headers,
                            .header_count = 1,
                            .body = body,
                            .body_len = len,
                            .timeout_ms = 10000,
                            .creds = source,
                            .region = region,
                            .service = "sts"};
    sy_aws_response_t resp;
    sy_error_t herr = {{0}};
    bool ok = sy_aws_http_perform(&req, &resp, &herr);
    free(body);
    if (!ok) {
        sy_error_set(err, "profile \"%s\": AssumeRole %s: %s", step->profile, step->role_arn,
                     herr.message);
        return PROVIDER_FAILED;
    }
    sy_error_t perr = {{0}};
    ok = sy_aws_parse_sts_answer(resp.body, resp.body_len, "AssumeRole", out, exp, &perr);
    if (!ok && resp.status != 200 && !strstr(perr.message, "STS: "))
        sy_error_set(&perr, "STS answered HTTP %ld", resp.status);
    sy_aws_response_free(&resp);
    if (!ok) {
        sy_error_set(err, "profile \"%s\": AssumeRole %s: %s", step->profile, step->role_arn,
                     perr.message);
        return PROVIDER_FAILED;
    }
    return PROVIDER_OK;
}

/* ---- the shared-files provider ---- */

/* The name of what answered for the profile ("shared-files",
 * "assume-role", "sso", "process"): written by from_shared_files, read by
 * resolve, both under the cache lock. */
static char profile_source[32];

static provider_result_t run_plan(const sy_aws_profile_plan_t *plan, sy_aws_credentials_t *out,
                                  time_t *exp, sy_error_t *err)
{
    sy_aws_credentials_t cur = {0};
    provider_result_t r = PROVIDER_FAILED;
    sy_error_t serr = {{0}};
    const char *p = plan->source_profile;
    *exp = 0;
    switch (plan->kind) {
    case SY_AWS_SOURCE_STATIC:
        r = creds_copy(&cur, &plan->creds) ? PROVIDER_OK : PROVIDER_FAILED;
        if (r != PROVIDER_OK)
            sy_error_set(err, "profile \"%s\": out of memory", p);
        snprintf(profile_source, sizeof profile_source, "shared-files");
        break;
    case SY_AWS_SOURCE_ENVIRONMENT:
    case SY_AWS_SOURCE_IMDS:
    case SY_AWS_SOURCE_CONTAINER: {
        static const char *const what[] = {
            [SY_AWS_SOURCE_ENVIRONMENT] = "Environment: AWS_ACCESS_KEY_ID and "
                                          "AWS_SECRET_ACCESS_KEY are not set",
            [SY_AWS_SOURCE_IMDS] = "Ec2InstanceMetadata: AWS_EC2_METADATA_DISABLED is true",
            [SY_AWS_SOURCE_CONTAINER] = "EcsContainer: neither "
                                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
                                        "AWS_CONTAINER_CREDENTIALS_FULL_URI is set"};
        r = plan->kind == SY_AWS_SOURCE_ENVIRONMENT ? from_environment(&cur, exp, &serr)
            : plan->kind == SY_AWS_SOURCE_IMDS      ? from_imds(&cur, exp, &serr)
                                                    : from_container(&cur, exp, &serr);
        if (r == PROVIDER_SKIP) {
            sy_error_set(err, "profile \"%s\": credential_source %s", p, what[plan->kind]);
            r = PROVIDER_FAILED;
        } else if (r == PROVIDER_FAILED) {
            sy_error_set(err, "profile \"%s\": credential_source: %s", p, serr.message);
        }
        break;
    }
    case SY_AWS_SOURCE_PROCESS:
        r = from_process(p, plan->process, &cur, exp, err);
        snprintf(profile_source, sizeof profile_source, "process");
        break;
    case SY_AWS_SOURCE_SSO:
        r = from_sso(p, plan, &cur, exp, err);
        snprintf(profile_source, sizeof profile_source, "sso");
        break;
    case SY_AWS_SOURCE_WEB_IDENTITY:
        /* roles[0] is the profile's own role, assumed with the token. */
        r = web_identity(plan->web_identity_token_file, plan->roles[0].role_arn,
                         plan->roles[0].session_name, &cur, exp, &serr);
        if (r != PROVIDER_OK)
            sy_error_set(err, "profile \"%s\": %s", p, serr.message);
        snprintf(profile_source, sizeof profile_source, "web-identity");
        break;
    case SY_AWS_SOURCE_NONE:
        sy_error_set(err, "profile \"%s\": no credentials", p);
        break;
    }
    size_t first = plan->kind == SY_AWS_SOURCE_WEB_IDENTITY ? 1 : 0;
    for (size_t i = first; r == PROVIDER_OK && i < plan->role_count; i++) {
        sy_aws_credentials_t next = {0};
        r = assume_role(&plan->roles[i], &cur, &next, exp, err);
        sy_aws_credentials_free(&cur);
        cur = next;
        snprintf(profile_source, sizeof profile_source, "assume-role");
    }
    if (r == PROVIDER_OK)
        *out = cur;
    else
        sy_aws_credentials_free(&cur);
    return r;
}

static provider_result_t from_shared_files(sy_aws_credentials_t *out, time_t *exp, sy_error_t *err)
{
    char *cpath = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    char *fpath = home_file("AWS_CONFIG_FILE", ".aws/config");
    char *ctext = cpath ? read_small_file(cpath, 1 << 20) : NULL;
    char *ftext = fpath ? read_small_file(fpath, 1 << 20) : NULL;
    sy_aws_profile_plan_t plan;
    sy_error_t perr = {{0}};
    bool explicit = env("AWS_PROFILE") != NULL;
    bool planned =
        (ctext || ftext) && sy_aws_profile_plan(ctext, ftext, profile_name(), &plan, &perr);
    if (ctext)
        OPENSSL_cleanse(ctext, strlen(ctext));
    if (ftext)
        OPENSSL_cleanse(ftext, strlen(ftext));
    free(ctext);
    free(ftext);
    free(cpath);
    free(fpath);
    *exp = 0;
    provider_result_t r;
    if (!planned && perr.message[0]) {
        sy_error_set(err, "shared files: %s", perr.message);
        r = PROVIDER_FAILED;
    } else if (!planned || plan.kind == SY_AWS_SOURCE_NONE) {
        /* An explicitly named profile that isn't usable is a mistake to
         * report; an absent default profile just doesn't apply. */
        if (explicit)
            sy_error_set(err,
                         "shared files: profile \"%s\" has no aws_access_key_id and "
                         "aws_secret_access_key, role_arn, sso_session or credential_process%s",
                         profile_name(), planned ? "" : " (no credentials or config file)");
        r = explicit ? PROVIDER_FAILED : PROVIDER_SKIP;
    } else {
        r = run_plan(&plan, out, exp, err);
    }
    if (planned)
        sy_aws_profile_plan_free(&plan);
    return r;
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
        /* An explicit AWS_PROFILE names the credentials to use: the
         * environment keys don't override it (the JavaScript v3 and Go v2
         * SDKs' rule), and they stay available to credential_source =
         * Environment. */
        if (chain[i].fn == from_environment && env("AWS_PROFILE"))
            continue;
        sy_error_t perr = {{0}};
        profile_source[0] = '\0';
        provider_result_t r = chain[i].fn(out, exp, &perr);
        if (r == PROVIDER_OK) {
            snprintf(source, 32, "%s", profile_source[0] ? profile_source : chain[i].name);
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

bool sy_aws_credentials_refused(const char *access_key_id, const char *why)
{
    pthread_mutex_lock(&cache.lock);
    bool drop = cache.have && access_key_id && cache.creds.access_key_id &&
                strcmp(cache.creds.access_key_id, access_key_id) == 0;
    char source[32];
    snprintf(source, sizeof source, "%s", cache.source);
    if (drop) {
        sy_aws_credentials_free(&cache.creds);
        cache.have = false;
        cache.expiration = 0;
        cache.source[0] = '\0';
    }
    pthread_mutex_unlock(&cache.lock);
    if (drop)
        sy_log(SY_LOG_WARN, "AWS credentials refused by the service; reading them again once",
               "source", source, "error", why ? why : "", NULL);
    return drop;
}
