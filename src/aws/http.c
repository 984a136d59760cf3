/*
 * http.c: one blocking HTTP request for the control plane, on libcurl.
 *
 * When the request is signed, the Host header is set explicitly to the
 * URL's authority, the same string the signature covers, rather than left
 * to curl: a default port or an IPv6 literal could otherwise be spelled
 * differently on the wire than in the canonical request. curl's own
 * Accept and form Content-Type defaults are suppressed for the same
 * reason: only headers we chose are sent, and all of them are signed.
 *
 * Responses are capped (a configuration document, a Scan page or a
 * credentials answer is never near the cap) so a misbehaving endpoint
 * can't exhaust memory on the poller thread.
 */
#include "aws/http.h"

#include <curl/curl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "core/log.h"

#define MAX_RESPONSE_BYTES (64u << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* Set by sy_aws_http_abort_all at shutdown: every transfer in flight ends
 * at its next progress callback (libcurl calls it at least about once a
 * second, also while a server sends nothing), and every retry sleep wakes.
 * This is what lets SIGTERM end a poll stuck on a store that accepts
 * connections and never answers. */
static atomic_bool aborting;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_wake = PTHREAD_COND_INITIALIZER;

/* Per thread: whether throttling waits are handed to the caller, and the
 * longest one noted since the last take. */
static _Thread_local bool throttle_defer;
static _Thread_local long throttle_wait_ms;

void sy_aws_throttle_defer(bool on)
{
    throttle_defer = on;
    throttle_wait_ms = 0;
}

bool sy_aws_throttle_deferring(void)
{
    return throttle_defer;
}

long sy_aws_throttle_note(long retry_after_ms)
{
    if (retry_after_ms > SY_AWS_MAX_DEFERRED_RETRY_AFTER_MS)
        retry_after_ms = SY_AWS_MAX_DEFERRED_RETRY_AFTER_MS;
    if (retry_after_ms > throttle_wait_ms)
        throttle_wait_ms = retry_after_ms;
    return retry_after_ms;
}

bool sy_aws_throttle_deferred(long retry_after_ms, sy_error_t *err)
{
    if (retry_after_ms <= 0 || !sy_aws_throttle_deferring())
        return false;
    char said[sizeof err->message];
    snprintf(said, sizeof said, "%s", err->message);
    long wait = sy_aws_throttle_note(retry_after_ms);
    sy_error_set(err, "%.400s (throttled: Retry-After %ld s, not asked again before then)", said,
                 (wait + 999) / 1000);
    return true;
}

long sy_aws_throttle_take(void)
{
    long ms = throttle_wait_ms;
    throttle_wait_ms = 0;
    return ms;
}

void sy_aws_http_abort_all(void)
{
    pthread_mutex_lock(&sleep_lock);
    atomic_store(&aborting, true);
    pthread_cond_broadcast(&sleep_wake);
    pthread_mutex_unlock(&sleep_lock);
}

void sy_aws_http_abort_reset(void)
{
    atomic_store(&aborting, false);
}

bool sy_aws_http_aborted(void)
{
    return atomic_load(&aborting);
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)user, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load(&aborting) ? 1 : 0;
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct {
    sy_aws_response_t *resp;
    size_t cap;
    bool too_large;
} sink_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    sink_t *s = user;
    size_t n = size * nmemb;
    sy_aws_response_t *r = s->resp;
    if (r->body_len + n > MAX_RESPONSE_BYTES) {
        s->too_large = true;
        return 0;
    }
    if (r->body_len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p)
            return 0;
        r->body = p;
        s->cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static void header_copy(char *out, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
    sink_t *s = user;
    size_t n = size * nmemb;
    if (n > 5 && strncasecmp(data, "etag:", 5) == 0)
        header_copy(s->resp->etag, sizeof s->resp->etag, data + 5, n - 5);
    else if (n > 17 && strncasecmp(data, "x-amz-request-id:", 17) == 0)
        header_copy(s->resp->request_id, sizeof s->resp->request_id, data + 17, n - 17);
    else if (n > 17 && strncasecmp(data, "x-amzn-requestid:", 17) == 0)
        header_copy(s->resp->request_id, sizeof s->resp->request_id, data + 17, n - 17);
    else if (n > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
        char v[32];
        header_copy(v, sizeof v, data + 12, n - 12);
        char *end;
        long secs = strtol(v, &end, 10);
        if (end != v && *end == '\0' && secs >= 0)
            s->resp->retry_after_ms = secs > 3600 ? 3600000L : secs * 1000L;
    } else if (n > 5 && strncasecmp(data, "date:", 5) == 0) {
        char v[64];
        header_copy(v, sizeof v, data + 5, n - 5);
        s->resp->date = curl_getdate(v, NULL);
    }
    return n;
}

/* Splits a URL into authority, path and query (pointers into url). */
static bool url_parts(const char *url, sy_slice_t *authority, sy_slice_t *path, sy_slice_t *query)
{
    const char *p = strstr(url, "://");
    if (!p)
        return false;
    p += 3;
    const char *end = p + strcspn(p, "/?#");
    if (end == p || *end == '#')
        return false;
    *authority = sy_slice(p, (size_t)(end - p));
    const char *q = strchr(end, '?');
    if (*end == '/')
        *path = sy_slice(end, q ? (size_t)(q - end) : strlen(end));
    else
        *path = sy_slice("/", 1);
    *query = q ? sy_slice_cstr(q + 1) : sy_slice("", 0);
    return true;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value,
                                     bool *failed)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line) {
        *failed = true;
        return list;
    }
    /* "Name;" is curl's spelling of a header with an empty value. */
    if (*value)
        snprintf(line, n, "%s: %s", name, value);
    else
        snprintf(line, n, "%s;", name);
    struct curl_slist *l = curl_slist_append(list, line);
    free(line);
    if (!l)
        *failed = true;
    return l ? l : list;
}

/* Seconds to add to the local clock when signing: learnt from a server
 * that said our clock is off. */
static atomic_long clock_offset_s;

static bool perform_once(const sy_aws_request_t *req, sy_aws_response_t *resp, sy_error_t *err)
{
    pthread_once(&curl_once, curl_init_once);
    *resp = (sy_aws_response_t){0};
    sy_slice_t authority, path, query;
    if (!url_parts(req->url, &authority, &path, &query)) {
        sy_error_set(err, "%s: not an http(s) URL", req->url);
        return false;
    }
    bool failed = false;
    struct curl_slist *list = NULL;
    /* "Name:" removes a header curl would add by default. */
    list = curl_slist_append(list, "Accept:");
    list = curl_slist_append(list, "Expect:");
    bool have_type = false;
    for (size_t i = 0; i < req->header_count; i++)
        if (strcasecmp(req->headers[i].name, "content-type") == 0)
            have_type = true;
    if (!have_type)
        list = curl_slist_append(list, "Content-Type:");
    for (size_t i = 0; i < req->header_count; i++)
        list = add_header(list, req->headers[i].name, req->headers[i].value, &failed);

    sy_sigv4_signature_t sig = {0};
    if (req->creds) {
        char *host = sy_slice_dup(authority), *path_c = sy_slice_dup(path),
             *query_c = sy_slice_dup(query);
        char amz_date[17], payload_hash[65];
        sy_sigv4_amz_date(time(NULL) + (time_t)atomic_load(&clock_offset_s), amz_date);
        if (req->s3)
            snprintf(payload_hash, sizeof payload_hash, "%s", SY_SIGV4_UNSIGNED_PAYLOAD);
        if (!req->s3 || req->body_len)
            sy_sigv4_sha256_hex(req->body, req->body_len, payload_hash);
        size_t n = req->header_count + 4;
        sy_sigv4_header_t *all = calloc(n, sizeof *all);
        bool ok = host && path_c && query_c && all;
        if (ok) {
            size_t k = 0;
            for (size_t i = 0; i < req->header_count; i++)
                all[k++] = req->headers[i];
            all[k++] = (sy_sigv4_header_t){"host", host};
            all[k++] = (sy_sigv4_header_t){"x-amz-date", amz_date};
            if (req->s3)
                all[k++] = (sy_sigv4_header_t){"x-amz-content-sha256", payload_hash};
            if (req->creds->session_token && *req->creds->session_token)
                all[k++] = (sy_sigv4_header_t){"x-amz-security-token", req->creds->session_token};
            sy_sigv4_request_t sreq = {
                .method = req->method,
                .path = path_c,
                .query = query_c,
                .headers = all,
                .header_count = k,
                .payload_hash = payload_hash,
                .region = req->region,
                .service = req->service,
                .amz_date = amz_date,
                .s3 = req->s3,
            };
            ok = sy_sigv4_sign(&sreq, req->creds, &sig, err);
            if (ok) {
                for (size_t i = req->header_count; i < k; i++)
                    list = add_header(list, all[i].name, all[i].value, &failed);
                list = add_header(list, "Authorization", sig.authorization, &failed);
            }
        } else {
            sy_error_set(err, "%s: out of memory", req->url);
        }
        free(host);
        free(path_c);
        free(query_c);
        free(all);
        sy_sigv4_signature_free(&sig);
        if (!ok) {
            curl_slist_free_all(list);
            return false;
        }
    }
    if (failed) {
        curl_slist_free_all(list);
        sy_error_set(err, "%s: out of memory", req->url);
        return false;
    }

    CURL *curl = curl_easy_init();
    if (!curl) {
        curl_slist_free_all(list);
        sy_error_set(err, "%s: curl_easy_init failed", req->url);
        return false;
    }
    sink_t sink = {.resp = resp};
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (req->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 10000L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 3000L);
    /* Never follow redirects: a signed request must not be replayed
     * elsewhere, and a credentials endpoint must answer itself. */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "switchyard");
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    if (atomic_load(&aborting)) {
        curl_easy_cleanup(curl);
        curl_slist_free_all(list);
        sy_error_set(err, "%s %s: stopped (shutting down)", req->method, req->url);
        return false;
    }
    CURLcode rc = curl_easy_perform(curl);
    bool ok = rc == CURLE_OK;
    if (ok) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        if (!resp->body) {
            resp->body = calloc(1, 1);
            ok = resp->body != NULL;
            if (!ok)
                sy_error_set(err, "%s: out of memory", req->url);
        }
    } else {
        resp->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        resp->too_large = sink.too_large;
        sy_error_set(err, "%s %s: %s", req->method, req->url,
                     rc == CURLE_ABORTED_BY_CALLBACK ? "stopped (shutting down)"
                     : sink.too_large                ? "response too large"
                     : curl_err[0]                   ? curl_err
                                                     : curl_easy_strerror(rc));
    }
    curl_easy_cleanup(curl);
    curl_slist_free_all(list);
    if (!ok) {
        bool timed_out = resp->timed_out, too_large = resp->too_large;
        char etag[sizeof resp->etag];
        memcpy(etag, resp->etag, sizeof etag);
        sy_aws_response_free(resp);
        resp->timed_out = timed_out;
        resp->too_large = too_large;
        memcpy(resp->etag, etag, sizeof etag);
    }
    return ok;
}

static bool clock_skew_answer(const sy_aws_response_t *resp)
{
    if ((resp->status != 400 && resp->status != 403) || !resp->body)
        return false;
    return strstr(resp->body, "RequestTimeTooSkewed") || strstr(resp->body, "Signature expired") ||
           strstr(resp->body, "Signature not yet current") ||
           strstr(resp->body, "InvalidSignatureException") != NULL;
}

bool sy_aws_http_perform(const sy_aws_request_t *req, sy_aws_response_t *resp, sy_error_t *err)
{
    if (!perform_once(req, resp, err))
        return false;
    if (!req->creds || !clock_skew_answer(resp) || resp->date <= 0)
        return true;
    long offset = (long)(resp->date - time(NULL));
    /* Only a real skew (over a minute) is corrected: a signature error
     * with a good clock is something else and must stay an error. */
    if (labs(offset - atomic_load(&clock_offset_s)) < 60)
        return true;
    atomic_store(&clock_offset_s, offset);
    /* Logged each time the correction changes: the task's clock is wrong,
     * and everything else on it that signs or checks times is too. */
    char offset_text[24];
    snprintf(offset_text, sizeof offset_text, "%ld", offset);
    sy_log(SY_LOG_WARN,
           "local clock differs from the AWS service's Date; signing with the service's time",
           "url", req->url, SY_LOG_NUM("offset_s"), offset_text, NULL);
    sy_aws_response_t again;
    sy_error_t again_err = {{0}};
    if (!perform_once(req, &again, &again_err))
        return true; /* keep the first answer: it says what was wrong */
    sy_aws_response_free(resp);
    *resp = again;
    return true;
}

void sy_aws_response_free(sy_aws_response_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    *resp = (sy_aws_response_t){0};
}

const char *sy_aws_endpoint_override(const char *service_id, char *out, size_t cap)
{
    char name[64];
    snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", service_id);
    const char *v = getenv(name);
    if (!v || !*v)
        v = getenv("AWS_ENDPOINT_URL");
    if (!v || !*v)
        return NULL;
    snprintf(out, cap, "%s", v);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return out;
}

/* ---- strict minimal XML ---- */

/* Finds the element `name` directly or deeply inside [p, end) and returns
 * its content range; *count says how many such elements start at the
 * same nesting level as the first. Attributes are allowed on the open tag;
 * a self-closing tag is an empty element. */
static bool xml_find(const char *p, const char *end, const char *name, const char **cstart,
                     const char **cend, int *count)
{
    size_t nlen = strlen(name);
    *count = 0;
    const char *found_start = NULL, *found_end = NULL;
    int depth = 0, found_depth = -1;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt)
            break;
        if (lt + 1 < end && (lt[1] == '?' || lt[1] == '!')) {
            const char *gt = memchr(lt, '>', (size_t)(end - lt));
            if (!gt)
                return false;
            p = gt + 1;
            continue;
        }
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        if (!gt)
            return false;
        bool closing = lt[1] == '/';
        bool self_closing = gt[-1] == '/';
        const char *nm = lt + (closing ? 2 : 1);
        size_t len = strcspn(nm, " \t\r\n/>");
        if (nm + len > gt)
            len = (size_t)(gt - nm);
        if (closing) {
            depth--;
            if (found_start && !found_end && depth == found_depth && len == nlen &&
                memcmp(nm, name, nlen) == 0)
                found_end = lt;
        } else {
            if (len == nlen && memcmp(nm, name, nlen) == 0) {
                if (!found_start) {
                    found_start = gt + 1;
                    found_depth = depth;
                    (*count)++;
                    if (self_closing)
                        found_start = found_end = gt;
                } else if (depth == found_depth) {
                    (*count)++;
                }
            }
            if (!self_closing)
                depth++;
        }
        p = gt + 1;
    }
    if (!found_start || !found_end)
        return false;
    *cstart = found_start;
    *cend = found_end;
    return true;
}

char *sy_aws_xml_text(const char *xml, size_t len, const char *const *path)
{
    const char *start = xml, *end = xml + len;
    for (size_t i = 0; path[i]; i++) {
        const char *cs, *ce;
        int count;
        if (!xml_find(start, end, path[i], &cs, &ce, &count) || count != 1)
            return NULL;
        start = cs;
        end = ce;
    }
    if (memchr(start, '<', (size_t)(end - start)))
        return NULL;
    char *out = malloc((size_t)(end - start) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (const char *p = start; p < end; p++) {
        if (*p != '&') {
            out[o++] = *p;
            continue;
        }
        bool done = false;
        for (size_t k = 0; k < sizeof ents / sizeof ents[0] && !done; k++) {
            size_t el = strlen(ents[k].ent);
            if ((size_t)(end - p) >= el && memcmp(p, ents[k].ent, el) == 0) {
                out[o++] = ents[k].c;
                p += el - 1;
                done = true;
            }
        }
        if (!done) { /* numeric references are not expected in these answers */
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    return out;
}

void sy_aws_error_message(const sy_aws_response_t *resp, const char *what, sy_error_t *err)
{
    char *code = NULL, *message = NULL;
    if (resp->body_len && resp->body[0] == '<') {
        static const char *const s3_code[] = {"Error", "Code", NULL};
        static const char *const s3_msg[] = {"Error", "Message", NULL};
        code = sy_aws_xml_text(resp->body, resp->body_len, s3_code);
        message = sy_aws_xml_text(resp->body, resp->body_len, s3_msg);
    } else if (resp->body_len && resp->body[0] == '{') {
        json_t *doc = json_loadb(resp->body, resp->body_len, 0, NULL);
        const char *type = json_string_value(json_object_get(doc, "__type"));
        const char *msg = json_string_value(json_object_get(doc, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(doc, "Message"));
        if (type) {
            /* "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException" */
            const char *hash = strrchr(type, '#');
            code = strdup(hash ? hash + 1 : type);
        }
        if (msg)
            message = strdup(msg);
        json_decref(doc);
    }
    if (code && message && *message)
        sy_error_set(err, "%s: %s: %s", what, code, message);
    else if (code)
        sy_error_set(err, "%s: %s (HTTP %ld)", what, code, resp->status);
    else
        sy_error_set(err, "%s: HTTP %ld", what, resp->status);
    free(code);
    free(message);
}

bool sy_aws_retryable(const sy_aws_response_t *resp)
{
    if (resp->status >= 500 || resp->status == 429)
        return true;
    if (resp->status != 400 && resp->status != 503)
        return false;
    static const char *const codes[] = {"ProvisionedThroughputExceededException",
                                        "ThrottlingException", "RequestLimitExceeded", "SlowDown",
                                        "Throttling"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (resp->body && strstr(resp->body, codes[i]))
            return true;
    return false;
}

long sy_aws_retry_delay_ms(int attempt, long base_ms, long cap_ms)
{
    long ceiling = base_ms;
    for (int i = 0; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    unsigned int r;
    /* Not security-relevant; RAND_bytes avoids a shared rand() state. */
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (unsigned int)time(NULL);
    return (long)(r % (unsigned long)(ceiling + 1));
}

bool sy_aws_sleep_ms(long ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sleep_lock);
    while (!atomic_load(&aborting) &&
           pthread_cond_timedwait(&sleep_wake, &sleep_lock, &deadline) == 0) {
    }
    pthread_mutex_unlock(&sleep_lock);
    return !atomic_load(&aborting);
}
