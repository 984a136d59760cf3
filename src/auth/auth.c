/*
 * auth.c: the auth phase. One entry point returns a decision; each policy
 * type is a small function behind it.
 *
 * Types that this build does not enforce yet (basic, jwt) fail closed with
 * 401: a route must never be opened by a missing feature. IAM is a
 * passthrough: switchyard checks that a well-formed SigV4 Authorization
 * header is present and leaves the signature check to API Gateway, which
 * holds the caller's credentials context; the header and every X-Amz-*
 * header travel upstream untouched.
 */
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>

static const sy_http_header_t *find_authorization(const sy_http_request_t *req, int *count)
{
    const sy_http_header_t *found = NULL;
    *count = 0;
    for (size_t i = 0; i < req->header_count; i++) {
        if (req->headers[i].id == SY_HDR_AUTHORIZATION) {
            found = &req->headers[i];
            (*count)++;
        }
    }
    return found;
}

static bool starts_with(sy_slice_t s, size_t at, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= at + n && memcmp(s.ptr + at, prefix, n) == 0;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request */
static bool credential_ok(sy_slice_t v)
{
    size_t i = 0, parts[5] = {0}, part = 0;
    for (; i < v.len; i++) {
        char c = v.ptr[i];
        if (c == '/') {
            if (++part > 4)
                return false;
            continue;
        }
        if (!is_alnum(c) && c != '-' && c != '_')
            return false;
        parts[part]++;
    }
    if (part != 4 || parts[0] == 0 || parts[1] != 8 || parts[2] == 0 || parts[3] == 0)
        return false;
    return v.len >= 13 && memcmp(v.ptr + v.len - 13, "/aws4_request", 13) == 0;
}

static bool signed_headers_ok(sy_slice_t v)
{
    if (v.len == 0)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == ';'))
            return false;
    }
    return v.ptr[0] != ';' && v.ptr[v.len - 1] != ';';
}

static bool signature_ok(sy_slice_t v)
{
    if (v.len != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = v.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=<64 hex>":
 * each component exactly once, in any order, separated by commas with
 * optional spaces. */
static bool sigv4_header_ok(sy_slice_t v)
{
    static const char scheme[] = "AWS4-HMAC-SHA256 ";
    if (!starts_with(v, 0, scheme))
        return false;
    size_t i = sizeof scheme - 1;
    bool have_cred = false, have_signed = false, have_sig = false;
    while (i < v.len) {
        while (i < v.len && v.ptr[i] == ' ')
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        sy_slice_t item = sy_slice(v.ptr + start, i - start);
        while (item.len && item.ptr[item.len - 1] == ' ')
            item.len--;
        if (i < v.len)
            i++; /* the comma */
        const char *eq = memchr(item.ptr, '=', item.len);
        if (!eq)
            return false;
        sy_slice_t key = sy_slice(item.ptr, (size_t)(eq - item.ptr));
        sy_slice_t val = sy_slice(eq + 1, item.len - key.len - 1);
        if (sy_slice_eq(key, SY_SLICE_LIT("Credential")) && !have_cred) {
            if (!credential_ok(val))
                return false;
            have_cred = true;
        } else if (sy_slice_eq(key, SY_SLICE_LIT("SignedHeaders")) && !have_signed) {
            if (!signed_headers_ok(val))
                return false;
            have_signed = true;
        } else if (sy_slice_eq(key, SY_SLICE_LIT("Signature")) && !have_sig) {
            if (!signature_ok(val))
                return false;
            have_sig = true;
        } else {
            return false;
        }
    }
    return have_cred && have_signed && have_sig;
}

static void deny(sy_auth_result_t *out, const char *message, const char *challenge)
{
    out->status = 401;
    out->message = message;
    snprintf(out->www_authenticate, sizeof out->www_authenticate, "%s", challenge);
}

void sy_auth_check(const sy_auth_policy_t *policy, const sy_http_request_t *req,
                   sy_auth_result_t *out)
{
    memset(out, 0, sizeof *out);
    int count;
    const sy_http_header_t *authz = find_authorization(req, &count);
    switch (policy->type) {
    case SY_AUTH_NONE:
        return;
    case SY_AUTH_IAM:
        if (count != 1 || !sigv4_header_ok(authz->value))
            deny(out, "missing or malformed AWS SigV4 Authorization header", "AWS4-HMAC-SHA256");
        return;
    case SY_AUTH_BASIC: {
        char challenge[160];
        snprintf(challenge, sizeof challenge, "Basic realm=\"%s\"",
                 policy->realm ? policy->realm : policy->name);
        deny(out, "authentication required", challenge);
        return;
    }
    case SY_AUTH_JWT:
        deny(out, "authentication required", "Bearer error=\"invalid_token\"");
        return;
    }
    deny(out, "authentication required", "Bearer");
}
