/*
 * dynamodb.c: the route registry from DynamoDB. A poll is a full Scan,
 * page after page until LastEvaluatedKey is absent; the items are
 * unmarshalled into the plain JSON objects of the file form, so the routes
 * parser sees the same thing whichever store they came from.
 *
 * Scan order is not a contract, so the change check hashes a canonical
 * text (items sorted, keys sorted) instead of the raw answers: a table
 * nobody touched produces the same bytes and causes no rebuild.
 *
 * Throttling (ProvisionedThroughputExceededException, ThrottlingException)
 * and 5xx are retried with exponential backoff and full jitter, the AWS
 * guidance for many clients sharing one table: a fleet of switchyard
 * tasks must not retry in step.
 */
#include "aws/dynamodb.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/http.h"

#define MAX_ATTEMPTS 6

bool sy_dynamodb_parse_uri(const char *uri, char **table, sy_error_t *err)
{
    *table = NULL;
    if (strncmp(uri, "dynamodb://", 11) != 0) {
        sy_error_set(err, "%s: expected dynamodb://TABLE", uri);
        return false;
    }
    const char *t = uri + 11;
    size_t n = strlen(t);
    bool ok = n >= 3 && n <= 255;
    for (size_t i = 0; i < n && ok; i++)
        ok = isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '-' || t[i] == '.';
    if (!ok) {
        sy_error_set(err, "%s: expected dynamodb://TABLE (3-255 of A-Z a-z 0-9 _ - .)", uri);
        return false;
    }
    *table = strdup(t);
    if (!*table) {
        sy_error_set(err, "%s: out of memory", uri);
        return false;
    }
    return true;
}

/* ---- unmarshalling ---- */

static json_t *number_value(const char *s, sy_error_t *err)
{
    /* DynamoDB numbers: optional sign, digits, optional fraction and
     * exponent; up to 38 digits of precision, so large ones become reals. */
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    bool digits = false, fraction = false;
    while (isdigit((unsigned char)*p))
        p++, digits = true;
    if (*p == '.') {
        fraction = true;
        p++;
        while (isdigit((unsigned char)*p))
            p++, digits = true;
    }
    if (digits && (*p == 'e' || *p == 'E')) {
        fraction = true;
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!isdigit((unsigned char)*p))
            digits = false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (!digits || *p) {
        sy_error_set(err, "N: \"%.40s\" is not a number", s);
        return NULL;
    }
    if (!fraction) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0)
            return json_integer(v);
    }
    double d = strtod(s, NULL);
    if (!isfinite(d)) {
        sy_error_set(err, "N: \"%.40s\" is out of range", s);
        return NULL;
    }
    return json_real(d);
}

static json_t *unmarshal(json_t *v, int depth, sy_error_t *err)
{
    if (depth > 32) {
        sy_error_set(err, "nested deeper than 32 levels");
        return NULL;
    }
    if (!json_is_object(v) || json_object_size(v) != 1) {
        sy_error_set(err, "expected an attribute value with one type key");
        return NULL;
    }
    const char *type = json_object_iter_key(json_object_iter(v));
    json_t *x = json_object_iter_value(json_object_iter(v));
    if (strcmp(type, "S") == 0 || strcmp(type, "B") == 0) {
        if (!json_is_string(x))
            goto bad;
        return json_incref(x);
    }
    if (strcmp(type, "BOOL") == 0) {
        if (!json_is_boolean(x))
            goto bad;
        return json_incref(x);
    }
    if (strcmp(type, "NULL") == 0) {
        if (!json_is_true(x))
            goto bad;
        return json_null();
    }
    if (strcmp(type, "N") == 0) {
        if (!json_is_string(x))
            goto bad;
        return number_value(json_string_value(x), err);
    }
    if (strcmp(type, "SS") == 0 || strcmp(type, "BS") == 0 || strcmp(type, "NS") == 0) {
        if (!json_is_array(x) || json_array_size(x) == 0)
            goto bad;
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e)
        {
            json_t *one = !json_is_string(e) ? NULL
                          : type[0] == 'N'   ? number_value(json_string_value(e), err)
                                             : json_incref(e);
            if (!one || json_array_append_new(out, one) != 0) {
                json_decref(out);
                if (!err->message[0])
                    sy_error_set(err, "%s: expected an array of strings", type);
                return NULL;
            }
        }
        return out;
    }
    if (strcmp(type, "L") == 0) {
        if (!json_is_array(x))
            goto bad;
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e)
        {
            json_t *one = unmarshal(e, depth + 1, err);
            if (!one || json_array_append_new(out, one) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (strcmp(type, "M") == 0) {
        if (!json_is_object(x))
            goto bad;
        json_t *out = json_object();
        const char *k;
        json_t *e;
        json_object_foreach(x, k, e)
        {
            json_t *one = unmarshal(e, depth + 1, err);
            if (!one || json_object_set_new(out, k, one) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    sy_error_set(err, "unknown attribute type \"%.20s\"", type);
    return NULL;
bad:
    sy_error_set(err, "%s: malformed value", type);
    return NULL;
}

json_t *sy_dynamodb_unmarshal_value(json_t *value, sy_error_t *err)
{
    sy_error_clear(err);
    json_t *out = unmarshal(value, 0, err);
    return out ? out : json_null();
}

json_t *sy_dynamodb_unmarshal_item(json_t *item)
{
    json_t *out = json_object();
    if (!out || !json_is_object(item))
        return out;
    const char *k;
    json_t *v;
    json_object_foreach(item, k, v)
    {
        sy_error_t err = {{0}};
        json_object_set_new(out, k, sy_dynamodb_unmarshal_value(v, &err));
    }
    return out;
}

static json_t *marshal(json_t *v, int depth)
{
    if (depth > 32)
        return NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_pack("{s:O}", "S", v);
    case JSON_TRUE:
    case JSON_FALSE:
        return json_pack("{s:O}", "BOOL", v);
    case JSON_NULL:
        return json_pack("{s:b}", "NULL", 1);
    case JSON_INTEGER:
    case JSON_REAL: {
        char buf[64];
        if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else
            snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        return json_pack("{s:s}", "N", buf);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v), i, j;
        bool strings = n > 0;
        for (i = 0; i < n && strings; i++) {
            strings = json_is_string(json_array_get(v, i));
            for (j = 0; j < i && strings; j++)
                strings = !json_equal(json_array_get(v, i), json_array_get(v, j));
        }
        if (strings)
            return json_pack("{s:O}", "SS", v);
        json_t *list = json_array();
        json_t *e;
        json_array_foreach(v, i, e)
        {
            json_t *one = marshal(e, depth + 1);
            if (!one || json_array_append_new(list, one) != 0) {
                json_decref(list);
                return NULL;
            }
        }
        return json_pack("{s:o}", "L", list);
    }
    case JSON_OBJECT: {
        json_t *map = json_object();
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            json_t *one = marshal(e, depth + 1);
            if (!one || json_object_set_new(map, k, one) != 0) {
                json_decref(map);
                return NULL;
            }
        }
        return depth == 0 ? map : json_pack("{s:o}", "M", map);
    }
    }
    return NULL;
}

json_t *sy_dynamodb_marshal_item(json_t *plain)
{
    return json_is_object(plain) ? marshal(plain, 0) : NULL;
}

typedef struct {
    char *text;
    size_t len;
} canon_t;

static int canon_cmp(const void *a, const void *b)
{
    const canon_t *x = a, *y = b;
    return strcmp(x->text, y->text);
}

char *sy_dynamodb_items_text(json_t *items, size_t *len)
{
    size_t n = json_array_size(items), total = 2;
    canon_t *c = calloc(n ? n : 1, sizeof *c);
    if (!c)
        return NULL;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        c[i].text =
            json_dumps(json_array_get(items, i),
                       JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        ok = c[i].text != NULL;
        if (ok) {
            c[i].len = strlen(c[i].text);
            total += c[i].len + 2;
        }
    }
    char *out = ok ? malloc(total + 1) : NULL;
    if (out) {
        qsort(c, n, sizeof *c, canon_cmp);
        size_t o = 0;
        out[o++] = '[';
        for (size_t i = 0; i < n; i++) {
            if (i) {
                out[o++] = ',';
                out[o++] = '\n';
            }
            memcpy(out + o, c[i].text, c[i].len);
            o += c[i].len;
        }
        out[o++] = ']';
        out[o] = '\0';
        *len = o;
    }
    for (size_t i = 0; i < n; i++)
        free(c[i].text);
    free(c);
    return out;
}

/* ---- calls ---- */

json_t *sy_dynamodb_call(const char *operation, json_t *request, const char *what, sy_error_t *err)
{
    char region[64], endpoint_buf[512], url[600], target[96];
    sy_error_t rerr = {{0}};
    if (!sy_aws_region(region, sizeof region, &rerr)) {
        sy_error_set(err, "%s: %s", what, rerr.message);
        return NULL;
    }
    const char *endpoint = sy_aws_endpoint_override("DYNAMODB", endpoint_buf, sizeof endpoint_buf);
    if (endpoint)
        snprintf(url, sizeof url, "%s/", endpoint);
    else
        snprintf(url, sizeof url, "https://dynamodb.%s.amazonaws.com/", region);
    snprintf(target, sizeof target, "DynamoDB_20120810.%s", operation);
    char *body = json_dumps(request, JSON_COMPACT);
    if (!body) {
        sy_error_set(err, "%s: out of memory", what);
        return NULL;
    }
    const sy_sigv4_header_t headers[] = {{"Content-Type", "application/x-amz-json-1.0"},
                                         {"X-Amz-Target", target}};
    json_t *answer = NULL;
    bool refreshed = false;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        sy_aws_credentials_t creds;
        sy_error_t cerr = {{0}};
        if (!sy_aws_credentials_get(&creds, NULL, &cerr)) {
            sy_error_set(err, "%s: %s", what, cerr.message);
            break;
        }
        /* The key this attempt is signed with: a refusal drops only it. */
        char key_id[128];
        snprintf(key_id, sizeof key_id, "%s", creds.access_key_id ? creds.access_key_id : "");
        sy_aws_request_t req = {.method = "POST",
                                .url = url,
                                .headers = headers,
                                .header_count = 2,
                                .body = body,
                                .body_len = strlen(body),
                                .timeout_ms = SY_AWS_DYNAMODB_TIMEOUT_MS,
                                .connect_timeout_ms = SY_AWS_CONNECT_TIMEOUT_MS,
                                .creds = &creds,
                                .region = region,
                                .service = "dynamodb"};
        sy_aws_response_t resp;
        sy_error_t herr = {{0}};
        bool answered = sy_aws_http_perform(&req, &resp, &herr);
        sy_aws_credentials_free(&creds);
        bool retry;
        long retry_after = 0;
        if (!answered) {
            sy_error_set(err, "%s: %s", what, herr.message);
            /* A store that let the whole timeout pass is not asked again
             * in this poll: the error shows now, the next poll retries. */
            retry = !resp.timed_out && !resp.too_large && !sy_aws_http_aborted();
        } else if (resp.status == 200) {
            json_error_t jerr;
            /* \u0000 is legal JSON: an item holding it is judged (and
             * rejected) on its own later, never the whole answer. */
            answer = json_loadb(resp.body, resp.body_len, JSON_ALLOW_NUL, &jerr);
            if (!json_is_object(answer)) {
                sy_error_set(err, "%s: %s answer is not a JSON object%s%s", what, operation,
                             answer ? "" : ": ", answer ? "" : jerr.text);
                json_decref(answer);
                answer = NULL;
            }
            sy_aws_response_free(&resp);
            break;
        } else {
            sy_aws_error_message(&resp, what, err);
            retry = sy_aws_retryable(&resp);
            retry_after = resp.retry_after_ms;
            /* Credentials the service no longer knows (expired, rotated,
             * revoked): read the source once more, as the SDKs do. */
            if (!refreshed && resp.body &&
                (strstr(resp.body, "ExpiredToken") ||
                 strstr(resp.body, "UnrecognizedClientException") ||
                 strstr(resp.body, "InvalidClientTokenId"))) {
                sy_aws_credentials_refused(key_id, err->message);
                refreshed = retry = true;
            }
            sy_aws_response_free(&resp);
        }
        if (retry && sy_aws_throttle_deferred(retry_after, err))
            break;
        if (!retry || retry_after > SY_AWS_MAX_RETRY_AFTER_MS)
            break;
        long delay = sy_aws_retry_delay_ms(attempt, 100, 3000);
        if (retry_after > delay)
            delay = retry_after;
        if (attempt + 1 < MAX_ATTEMPTS && !sy_aws_sleep_ms(delay))
            break;
    }
    free(body);
    return answer;
}

/* A string holding a NUL byte anywhere in a plain value: C code downstream
 * would read a shorter string than the table holds, so such an item is
 * refused rather than silently truncated. */
static bool holds_nul(json_t *v, int depth)
{
    if (depth > 40)
        return false;
    if (json_is_string(v))
        return strlen(json_string_value(v)) != json_string_length(v);
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) if (holds_nul(e, depth + 1)) return true;
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, e) if (holds_nul(e, depth + 1)) return true;
    }
    return false;
}

/* A path for naming the item in a reason: printable ASCII kept, anything
 * else escaped, cut at 100 characters. */
static void item_name(json_t *path, char *out, size_t cap)
{
    const char *s = json_string_value(path);
    size_t n = s ? json_string_length(path) : 0, o = 0;
    if (!s) {
        snprintf(out, cap, "(no path)");
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < n && i < 100 && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
    }
    out[o++] = '"';
    out[o] = '\0';
}

json_t *sy_dynamodb_judge_item(json_t *item, size_t max_item_bytes)
{
    char reason[400] = "";
    json_t *raw_path = json_object_get(item, "path");
    json_t *path_value = json_is_object(raw_path) ? json_object_get(raw_path, "S") : NULL;
    if (!json_is_object(item)) {
        snprintf(reason, sizeof reason, "the item is not a JSON object");
    } else {
        size_t bytes = json_dumpb(item, NULL, 0, JSON_COMPACT);
        if (max_item_bytes && bytes > max_item_bytes)
            snprintf(reason, sizeof reason,
                     "the item is %zu bytes, over the %zu-byte limit for a route item", bytes,
                     max_item_bytes);
    }
    json_t *plain = NULL;
    if (!reason[0]) {
        plain = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(item, k, v)
        {
            sy_error_t err = {{0}};
            json_t *one = unmarshal(v, 0, &err);
            if (!one) {
                snprintf(reason, sizeof reason, "attribute \"%.60s\": %.300s", k, err.message);
                break;
            }
            if (holds_nul(one, 0)) {
                snprintf(reason, sizeof reason, "attribute \"%.60s\" contains a NUL byte", k);
                json_decref(one);
                break;
            }
            json_object_set_new(plain, k, one);
        }
    }
    if (!reason[0])
        return plain;
    json_decref(plain);
    /* The rejected item keeps its path when the path itself is clean, so
     * it still owns its path (SPEC §3) and shows under it in /config. */
    char name[128];
    item_name(path_value, name, sizeof name);
    char full[600];
    snprintf(full, sizeof full, "item %s: %s", name, reason);
    json_t *stub = json_object();
    if (json_is_string(path_value) &&
        strlen(json_string_value(path_value)) == json_string_length(path_value))
        json_object_set(stub, "path", path_value);
    json_object_set_new(stub, SY_DYNAMODB_REJECTED_KEY, json_string(full));
    return stub;
}

bool sy_dynamodb_get_marker(const char *table, char *generation, size_t cap, sy_error_t *err)
{
    char what[300];
    snprintf(what, sizeof what, "dynamodb://%s", table);
    json_t *req = json_pack("{s:s,s:{s:{s:s}},s:b,s:s}", "TableName", table, "Key", "path", "S",
                            SY_DYNAMODB_MARKER_PATH, "ConsistentRead", 1, "ProjectionExpression",
                            "generation");
    if (!req) {
        sy_error_set(err, "%s: out of memory", what);
        return false;
    }
    json_t *answer = sy_dynamodb_call("GetItem", req, what, err);
    json_decref(req);
    if (!answer)
        return false;
    json_t *n =
        json_object_get(json_object_get(json_object_get(answer, "Item"), "generation"), "N");
    /* No marker item yet (no writer has raised it): "" — still a state a
     * later write moves away from. */
    snprintf(generation, cap, "%s", json_is_string(n) ? json_string_value(n) : "");
    json_decref(answer);
    return true;
}

json_t *sy_dynamodb_scan_all(const char *table, const sy_dynamodb_scan_limits_t *limits,
                             unsigned *pages, sy_error_t *err)
{
    char what[300];
    snprintf(what, sizeof what, "dynamodb://%s", table);
    size_t max_items = limits && limits->max_items ? limits->max_items : (size_t)-1;
    size_t max_item_bytes = limits ? limits->max_item_bytes : 0;
    /* The most a table within the limits can weigh: past it, the reads are
     * not a table any more (a runaway writer, or a store repeating pages). */
    size_t max_bytes = max_item_bytes && max_items != (size_t)-1
                           ? max_items * (max_item_bytes + 64) + (1u << 20)
                           : (size_t)-1;
    size_t read_items = 0, read_bytes = 0;
    if (pages)
        *pages = 0;
    json_t *items = json_array();
    /* Every LastEvaluatedKey seen, by its canonical text: a key seen twice
     * means the pages would repeat forever (or cycle), and publishing what
     * they accumulated would be a table that doesn't exist. */
    json_t *seen_keys = json_object();
    json_t *start = NULL;
    if (!items || !seen_keys) {
        sy_error_set(err, "%s: out of memory", what);
        goto fail;
    }
    for (unsigned page = 0;; page++) {
        json_t *req = json_pack("{s:s,s:b}", "TableName", table, "ConsistentRead", 1);
        if (start)
            json_object_set_new(req, "ExclusiveStartKey", start);
        start = NULL;
        json_t *answer = sy_dynamodb_call("Scan", req, what, err);
        json_decref(req);
        if (!answer)
            goto fail;
        if (pages)
            (*pages)++;
        json_t *page_items = json_object_get(answer, "Items");
        if (!json_is_array(page_items)) {
            sy_error_set(err, "%s: Scan answer has no Items array", what);
            json_decref(answer);
            goto fail;
        }
        size_t i;
        json_t *it;
        json_array_foreach(page_items, i, it)
        {
            json_t *path = json_object_get(json_object_get(it, "path"), "S");
            if (json_is_string(path) &&
                strcmp(json_string_value(path), SY_DYNAMODB_MARKER_PATH) == 0)
                continue; /* the change marker is not a route */
            read_items++;
            read_bytes += json_dumpb(it, NULL, 0, JSON_COMPACT);
            if (read_items > max_items || read_bytes > max_bytes) {
                if (read_items > max_items)
                    sy_error_set(err,
                                 "%s: the table holds more than %zu route items "
                                 "(limits.max_routes %zu); refused whole, the last good routes "
                                 "keep serving",
                                 what, max_items, max_items);
                else
                    sy_error_set(err,
                                 "%s: the Scan read more than %zu bytes, more than %zu items of "
                                 "at most %zu bytes can hold; refused whole",
                                 what, max_bytes, max_items, max_item_bytes);
                json_decref(answer);
                goto fail;
            }
            json_t *plain = sy_dynamodb_judge_item(it, max_item_bytes);
            if (!plain || json_array_append_new(items, plain) != 0) {
                sy_error_set(err, "%s: out of memory", what);
                json_decref(answer);
                goto fail;
            }
        }
        json_t *lek = json_object_get(answer, "LastEvaluatedKey");
        if (lek && !json_is_object(lek)) {
            sy_error_set(err, "%s: LastEvaluatedKey is not an object", what);
            json_decref(answer);
            goto fail;
        }
        if (lek && json_object_size(lek)) {
            char *key = json_dumps(lek, JSON_COMPACT | JSON_SORT_KEYS);
            bool repeated = key && json_object_get(seen_keys, key) != NULL;
            if (!key || repeated || json_object_set_new(seen_keys, key, json_true()) != 0) {
                if (repeated)
                    sy_error_set(err,
                                 "%s: Scan page %u returned a LastEvaluatedKey already seen "
                                 "(%.120s): the pages would repeat; stopped, nothing published",
                                 what, page + 1, key);
                else
                    sy_error_set(err, "%s: out of memory", what);
                free(key);
                json_decref(answer);
                goto fail;
            }
            free(key);
            start = json_incref(lek);
        }
        json_decref(answer);
        if (!start)
            break;
    }
    json_decref(seen_keys);
    return items;
fail:
    json_decref(seen_keys);
    json_decref(items);
    return NULL;
}
