/*
 * s3.h: the policy source s3://BUCKET/KEY[?expected_bucket_owner=ACCOUNT]:
 * a SigV4-signed conditional GetObject.
 * Thread: the control plane (blocks on the network). Pointers: the body is
 * malloc'd and owned by the caller; a location owns its strings.
 */
#ifndef SY_AWS_S3_H
#define SY_AWS_S3_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"

typedef struct {
    char *bucket;
    char *key;
    char *expected_owner; /* NULL when not given */
} sy_s3_location_t;

/* Parses the URI. False with err naming the problem: missing bucket or
 * key, a bad bucket name, an unknown query parameter. */
bool sy_s3_parse_uri(const char *uri, sy_s3_location_t *out, sy_error_t *err);
void sy_s3_location_free(sy_s3_location_t *loc);

/* The GetObject URL: path-style ENDPOINT/BUCKET/KEY when endpoint is
 * given (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, e.g. a local S3), or when
 * the bucket name has dots (a virtual host would break the wildcard
 * certificate); otherwise virtual-hosted
 * https://BUCKET.s3.REGION.amazonaws.com/KEY. The key is encoded once,
 * '/' kept. False when it doesn't fit. */
bool sy_s3_object_url(const sy_s3_location_t *loc, const char *region, const char *endpoint,
                      char *out, size_t cap);

/* SY_S3_TOO_LARGE: the object is over the answer cap; etag is set to its
 * ETag (when it had one), so the caller can ask conditionally next time. */
typedef enum { SY_S3_OK = 0, SY_S3_NOT_MODIFIED, SY_S3_ERROR, SY_S3_TOO_LARGE } sy_s3_result_t;

/* GetObject with If-None-Match: etag when etag is non-empty. SY_S3_OK fills
 * body/len and etag (the new ETag, quotes included); SY_S3_NOT_MODIFIED
 * leaves them; SY_S3_ERROR sets err ("s3://b/k: AccessDenied: Access
 * Denied"). 5xx and throttling are retried with backoff. */
sy_s3_result_t sy_s3_get_object(const char *uri, char etag[256], char **body, size_t *len,
                                sy_error_t *err);

#endif
