/*
 * s3.c: the policy document from S3. One signed GetObject per poll, made
 * conditional with If-None-Match on the last ETag, so an unchanged object
 * costs a 304 and no rebuild.
 *
 * Addressing follows the SDKs: virtual-hosted on AWS, path-style when an
 * endpoint override is set (a local or S3-compatible server) or when the
 * bucket name holds a dot (the *.s3 certificate can't cover it).
 *
 * An expected bucket owner in the URI is sent as x-amz-expected-bucket-owner
 * so a bucket that changed hands (deleted and re-created by someone else)
 * is refused by S3 instead of being trusted as the policy source.
 */
#include "aws/s3.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/sigv4.h"

#define MAX_ATTEMPTS 4

static bool bucket_name_ok(const char *b, size_t n)
{
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
            return false;
    }
    return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

bool sy_s3_parse_uri(const char *uri, sy_s3_location_t *out, sy_error_t *err)
{
    *out = (sy_s3_location_t){0};
    if (strncmp(uri, "s3://", 5) != 0) {
        sy_error_set(err, "%s: expected s3://BUCKET/KEY", uri);
        return false;
    }
    const char *b = uri + 5;
    const char *slash = strchr(b, '/');
    const char *q = strchr(b, '?');
    if (!slash || (q && q < slash)) {
        sy_error_set(err, "%s: expected s3://BUCKET/KEY (no key)", uri);
        return false;
    }
    if (!bucket_name_ok(b, (size_t)(slash - b))) {
        sy_error_set(err, "%s: bad bucket name (3-63 of a-z 0-9 . - _)", uri);
        return false;
    }
    const char *key = slash + 1;
    size_t key_len = q ? (size_t)(q - key) : strlen(key);
    if (key_len == 0) {
        sy_error_set(err, "%s: expected s3://BUCKET/KEY (empty key)", uri);
        return false;
    }
    for (size_t i = 0; i < key_len; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f || key[i] == '#') {
            sy_error_set(err, "%s: the key holds a control byte or '#'", uri);
            return false;
        }
    if (q) {
        const char *p = q + 1;
        static const char param[] = "expected_bucket_owner=";
        if (strncmp(p, param, sizeof param - 1) != 0) {
            sy_error_set(err, "%s: unknown query parameter (only expected_bucket_owner=ACCOUNT)",
                         uri);
            return false;
        }
        p += sizeof param - 1;
        size_t n = strlen(p);
        bool digits = n == 12;
        for (size_t i = 0; i < n && digits; i++)
            digits = isdigit((unsigned char)p[i]);
        if (!digits) {
            sy_error_set(err, "%s: expected_bucket_owner must be a 12-digit account id", uri);
            return false;
        }
        out->expected_owner = strdup(p);
    }
    out->bucket = sy_slice_dup(sy_slice(b, (size_t)(slash - b)));
    out->key = sy_slice_dup(sy_slice(key, key_len));
    if (!out->bucket || !out->key || (q && !out->expected_owner)) {
        sy_s3_location_free(out);
        sy_error_set(err, "%s: out of memory", uri);
        return false;
    }
    return true;
}

void sy_s3_location_free(sy_s3_location_t *loc)
{
    free(loc->bucket);
    free(loc->key);
    free(loc->expected_owner);
    *loc = (sy_s3_location_t){0};
}

bool sy_s3_object_url(const sy_s3_location_t *loc, const char *region, const char *endpoint,
                      char *out, size_t cap)
{
    char *key = sy_sigv4_uri_encode(sy_slice_cstr(loc->key), true);
    if (!key)
        return false;
    int n;
    if (endpoint)
        n = snprintf(out, cap, "%s/%s/%s", endpoint, loc->bucket, key);
    else if (strchr(loc->bucket, '.'))
        n = snprintf(out, cap, "https://s3.%s.amazonaws.com/%s/%s", region, loc->bucket, key);
    else
        n = snprintf(out, cap, "https://%s.s3.%s.amazonaws.com/%s", loc->bucket, region, key);
    free(key);
    return n > 0 && (size_t)n < cap;
}

static bool expired_token(const sy_aws_response_t *resp)
{
    return resp->status == 400 || resp->status == 403
               ? resp->body && (strstr(resp->body, "<Code>ExpiredToken</Code>") ||
                                strstr(resp->body, "<Code>TokenRefreshRequired</Code>") ||
                                strstr(resp->body, "<Code>InvalidAccessKeyId</Code>") ||
                                strstr(resp->body, "<Code>InvalidToken</Code>"))
               : false;
}

sy_s3_result_t sy_s3_get_object(const char *uri, char etag[256], char **body, size_t *len,
                                sy_error_t *err)
{
    *body = NULL;
    *len = 0;
    sy_s3_location_t loc;
    if (!sy_s3_parse_uri(uri, &loc, err))
        return SY_S3_ERROR;
    char region[64], endpoint_buf[512], url[4096];
    sy_error_t rerr = {{0}};
    if (!sy_aws_region(region, sizeof region, &rerr)) {
        sy_error_set(err, "%s: %s", uri, rerr.message);
        sy_s3_location_free(&loc);
        return SY_S3_ERROR;
    }
    const char *endpoint = sy_aws_endpoint_override("S3", endpoint_buf, sizeof endpoint_buf);
    if (!sy_s3_object_url(&loc, region, endpoint, url, sizeof url)) {
        sy_error_set(err, "%s: the object URL is too long", uri);
        sy_s3_location_free(&loc);
        return SY_S3_ERROR;
    }
    sy_sigv4_header_t headers[2];
    size_t nh = 0;
    if (etag[0])
        headers[nh++] = (sy_sigv4_header_t){"If-None-Match", etag};
    if (loc.expected_owner)
        headers[nh++] = (sy_sigv4_header_t){"x-amz-expected-bucket-owner", loc.expected_owner};

    sy_s3_result_t result = SY_S3_ERROR;
    bool refreshed = false;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        sy_aws_credentials_t creds;
        sy_error_t cerr = {{0}};
        if (!sy_aws_credentials_get(&creds, NULL, &cerr)) {
            sy_error_set(err, "%s: %s", uri, cerr.message);
            break;
        }
        /* The key this attempt is signed with: a refusal drops only it. */
        char key_id[128];
        snprintf(key_id, sizeof key_id, "%s", creds.access_key_id ? creds.access_key_id : "");
        sy_aws_request_t req = {.method = "GET",
                                .url = url,
                                .headers = headers,
                                .header_count = nh,
                                .timeout_ms = SY_AWS_S3_TIMEOUT_MS,
                                .connect_timeout_ms = SY_AWS_CONNECT_TIMEOUT_MS,
                                .creds = &creds,
                                .region = region,
                                .service = "s3",
                                .s3 = true};
        sy_aws_response_t resp;
        sy_error_t herr = {{0}};
        bool answered = sy_aws_http_perform(&req, &resp, &herr);
        sy_aws_credentials_free(&creds);
        if (!answered) {
            sy_error_set(err, "%s: %s", uri, herr.message);
            /* A store that let the whole timeout pass is not asked again
             * in this poll: the error shows now, the next poll retries. */
            if (resp.too_large) {
                /* Not asked again in this poll, and its ETag handed back
                 * so the next polls are conditional on it. */
                snprintf(etag, 256, "%s", resp.etag);
                result = SY_S3_TOO_LARGE;
                break;
            }
            if (resp.timed_out || sy_aws_http_aborted())
                break;
            if (attempt + 1 < MAX_ATTEMPTS &&
                !sy_aws_sleep_ms(sy_aws_retry_delay_ms(attempt, 200, 2000)))
                break;
            continue;
        }
        if (resp.status == 200) {
            *body = resp.body;
            *len = resp.body_len;
            resp.body = NULL;
            /* No ETag (some S3-compatible servers): an empty one disables
             * the conditional GET and the caller hashes the content. */
            snprintf(etag, 256, "%s", resp.etag);
            result = SY_S3_OK;
            sy_aws_response_free(&resp);
            break;
        }
        if (resp.status == 304) {
            result = SY_S3_NOT_MODIFIED;
            sy_aws_response_free(&resp);
            break;
        }
        sy_aws_error_message(&resp, uri, err);
        bool retry = sy_aws_retryable(&resp);
        if (!refreshed && expired_token(&resp)) {
            /* Keys S3 no longer accepts (revoked, rotated, an expired
             * session): read the source once more, as the SDKs do. */
            sy_aws_credentials_refused(key_id, err->message);
            refreshed = true;
            retry = true;
        }
        long retry_after = resp.retry_after_ms;
        sy_aws_response_free(&resp);
        if (!retry)
            break;
        if (sy_aws_throttle_deferred(retry_after, err))
            break;
        /* Retry-After (503 SlowDown) is honoured when it fits a call;
         * longer, the call fails and the next poll asks again. */
        long delay = sy_aws_retry_delay_ms(attempt, 200, 2000);
        if (retry_after > SY_AWS_MAX_RETRY_AFTER_MS)
            break;
        if (retry_after > delay)
            delay = retry_after;
        if (attempt + 1 < MAX_ATTEMPTS && !sy_aws_sleep_ms(delay))
            break;
    }
    sy_s3_location_free(&loc);
    return result;
}
