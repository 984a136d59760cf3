// sources: src/aws/dynamodb.c src/aws/credentials.c src/aws/http.c src/aws/sigv4.c
// src/core/common.c src/core/log.c
// covers: src/aws/dynamodb.c
// excludes: sy_dynamodb_call|sy_dynamodb_scan_all|sy_dynamodb_parse_uri|sy_dynamodb_get_marker
/*
 * fuzz_dynamodb.c: libFuzzer target for the DynamoDB item decoder. Scan
 * answers come from a table other teams (and their pipelines) write, so
 * the typed-JSON unmarshaller must survive any document: no crash, no
 * leak, no undefined behaviour, no unbounded recursion.
 *
 * The input is JSON: a Scan answer ({"Items": [...]}), an array of items,
 * one item or one attribute value; each reading is tried. Besides crashes
 * and sanitizer reports it checks promises: an item always unmarshals to
 * an object with the item's attribute names; the canonical text of the
 * items is valid JSON and the same whatever order the items came in; and
 * plain JSON marshalled for a write unmarshals back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/dynamodb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_item(json_t *item, json_t *plain)
{
    if (!json_is_object(plain))
        abort();
    if (json_is_object(item) && json_object_size(plain) != json_object_size(item))
        abort();
}

/* marshal(plain) unmarshals back to plain, for documents without reals
 * (a real's %.17g spelling reads back as the same double, but one that is
 * integral, such as 1.0, comes back as an integer). */
static bool has_real(json_t *v, int depth)
{
    if (depth > 40 || json_is_real(v))
        return true;
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(v))
        json_array_foreach(v, i, e) if (has_real(e, depth + 1)) return true;
    if (json_is_object(v))
        json_object_foreach(v, k, e) if (has_real(e, depth + 1)) return true;
    return false;
}

static void round_trip(json_t *plain)
{
    json_t *typed = sy_dynamodb_marshal_item(plain);
    if (!typed)
        return; /* deeper than the writer allows */
    json_t *back = sy_dynamodb_unmarshal_item(typed);
    if (!has_real(plain, 0) && !json_equal(back, plain))
        abort();
    json_decref(back);
    json_decref(typed);
}

static void check_text(json_t *plain_items)
{
    size_t len = 0, rlen = 0;
    char *text = sy_dynamodb_items_text(plain_items, &len);
    if (!text)
        return;
    json_error_t jerr;
    json_t *parsed = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!json_is_array(parsed) || json_array_size(parsed) != json_array_size(plain_items))
        abort();
    json_decref(parsed);
    /* The same items in reverse order give the same bytes. */
    json_t *rev = json_array();
    for (size_t i = json_array_size(plain_items); i-- > 0;)
        json_array_append(rev, json_array_get(plain_items, i));
    char *rtext = sy_dynamodb_items_text(rev, &rlen);
    if (rtext && (rlen != len || memcmp(rtext, text, len) != 0))
        abort();
    free(rtext);
    json_decref(rev);
    free(text);
}

/* A Scan item judged alone (issue 16): always an object; refused, a stub
 * with a string reason and at most a clean path beside it; accepted, one
 * plain attribute per typed one. */
static void check_judged(json_t *item, size_t max_item_bytes)
{
    json_t *judged = sy_dynamodb_judge_item(item, max_item_bytes);
    if (!judged)
        return; /* out of memory */
    if (!json_is_object(judged))
        abort();
    json_t *why = json_object_get(judged, SY_DYNAMODB_REJECTED_KEY);
    if (why) {
        json_t *path = json_object_get(judged, "path");
        if (!json_is_string(why) || json_object_size(judged) > 2 ||
            (path && (!json_is_string(path) ||
                      strlen(json_string_value(path)) != json_string_length(path))))
            abort();
    } else if (json_object_size(judged) != json_object_size(item)) {
        abort();
    }
    json_decref(judged);
}

static void fuzz_items(json_t *items)
{
    json_t *plain_items = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        check_judged(item, i % 2 ? 0 : 256);
        json_t *plain = sy_dynamodb_unmarshal_item(item);
        check_item(item, plain);
        round_trip(plain);
        json_array_append_new(plain_items, plain);
    }
    check_text(plain_items);
    json_decref(plain_items);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!doc)
        return 0;
    json_t *items = json_object_get(doc, "Items");
    if (json_is_array(items))
        fuzz_items(items);
    else if (json_is_array(doc))
        fuzz_items(doc);
    if (json_is_object(doc)) {
        json_t *plain = sy_dynamodb_unmarshal_item(doc);
        check_item(doc, plain);
        round_trip(plain);
        json_decref(plain);
    }
    sy_error_t err = {{0}};
    json_t *value = sy_dynamodb_unmarshal_value(doc, &err);
    /* A value that fails becomes null with a message; one that decodes has
     * no message. */
    if (!value || (json_is_null(value) && !err.message[0] && !json_is_object(doc)))
        abort();
    json_decref(value);
    json_decref(doc);
    return 0;
}
