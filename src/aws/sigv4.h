/*
 * sigv4.h: AWS Signature Version 4 (header-based and presigned-query), the
 * canonical request, the string to sign and the derived signing key.
 * Thread: any; the signing-key cache is shared under a mutex. Pointers: the
 * strings in sy_sigv4_signature_t are malloc'd and freed with
 * sy_sigv4_signature_free; inputs are borrowed for the call only.
 */
#ifndef SY_AWS_SIGV4_H
#define SY_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/common.h"

/* SHA-256 of the empty string, the payload hash of a GET. */
#define SY_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SY_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* A set of AWS credentials. session_token is NULL or "" for long-term keys. */
typedef struct {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
} sy_aws_credentials_t;

typedef struct {
    const char *name; /* any case; lower-cased when signed */
    const char *value;
} sy_sigv4_header_t;

typedef struct {
    const char *method;
    const char *path;  /* as sent on the request line, without the query */
    const char *query; /* without '?'; NULL or "" when none */
    /* Every header to sign; must include Host. X-Amz-Date is not added here:
     * put it in headers (header auth) or in the query (presigned). */
    const sy_sigv4_header_t *headers;
    size_t header_count;
    /* Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". NULL: computed from
     * payload/payload_len. */
    const char *payload_hash;
    const void *payload;
    size_t payload_len;
    const char *region;
    const char *service;
    const char *amz_date; /* "20150830T123600Z" */
    /* S3 rules: the path is neither normalised nor double-encoded (it is
     * decoded and encoded once, so "$" and "%24" both sign as "%24"). Other
     * services: dot segments and repeated slashes are removed and the wire
     * path is encoded again. */
    bool s3;
} sy_sigv4_request_t;

typedef struct {
    char *canonical_request;
    char *string_to_sign;
    char *authorization; /* "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…" */
    char *signed_headers;
    char signature[65];
} sy_sigv4_signature_t;

/* Signs the request. False (err set) on malformed input or an OpenSSL
 * failure; out is then empty. */
bool sy_sigv4_sign(const sy_sigv4_request_t *req, const sy_aws_credentials_t *creds,
                   sy_sigv4_signature_t *out, sy_error_t *err);
void sy_sigv4_signature_free(sy_sigv4_signature_t *sig);

/* HMAC-SHA256 of `data` under the signing key for (date, region, service),
 * as lower-case hex: the chunk signatures of aws-chunked uploads and any
 * other string-to-sign built by hand. */
bool sy_sigv4_sign_string(const sy_aws_credentials_t *creds, const char *date8, const char *region,
                          const char *service, const char *string_to_sign, char out_hex[65]);

/* Lower-case hex SHA-256 of data. */
bool sy_sigv4_sha256_hex(const void *data, size_t len, char out_hex[65]);

/* "YYYYMMDDTHHMMSSZ" for t (UTC). */
void sy_sigv4_amz_date(time_t t, char out[17]);

/* Appends `s` percent-encoded per AWS rules (unreserved A-Z a-z 0-9 - . _ ~
 * kept; everything else %XX upper-case; '/' kept when keep_slash) to a
 * malloc'd string: the caller frees. NULL when out of memory. */
char *sy_sigv4_uri_encode(sy_slice_t s, bool keep_slash);

void sy_aws_credentials_free(sy_aws_credentials_t *creds);

#endif
