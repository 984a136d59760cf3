/*
 * dynamodb.h: the routes source dynamodb://TABLE: a paginated, signed Scan
 * of the route table, its items unmarshalled from DynamoDB's typed JSON
 * into plain JSON objects (the file form of SPEC §3); and the item writes
 * the `routes` command makes.
 * Thread: the control plane or the CLI (blocks on the network). Pointers:
 * returned json_t references and strings belong to the caller.
 */
#ifndef SY_AWS_DYNAMODB_H
#define SY_AWS_DYNAMODB_H

#include <jansson.h>
#include <stdbool.h>

#include "core/common.h"

/* "dynamodb://TABLE" → TABLE (malloc'd). False with err for anything else
 * (a table name is 3-255 of A-Z a-z 0-9 _ - .). */
bool sy_dynamodb_parse_uri(const char *uri, char **table, sy_error_t *err);

/* One attribute value ({"S": "x"}, {"BOOL": true}, {"SS": [...]}, {"L":
 * [...]}, {"M": {...}}, {"N": "1"}, {"NULL": true}, B/BS/NS) as plain JSON
 * (string, boolean, array, object, number, null). A malformed value becomes
 * JSON null with err set: a route field holding it is then rejected by the
 * route parser, and an unknown (pipeline-owned) attribute holding it stays
 * harmless. */
json_t *sy_dynamodb_unmarshal_value(json_t *value, sy_error_t *err);

/* An item (attribute name → value) as a plain JSON object. */
json_t *sy_dynamodb_unmarshal_item(json_t *item);

/* The reverse, for writes: string → S, boolean → BOOL, a non-empty array
 * of distinct strings → SS, other arrays → L, object → M, number → N,
 * null → NULL. NULL when out of memory. */
json_t *sy_dynamodb_marshal_item(json_t *plain);

/* Plain items as canonical text: items sorted by their canonical form
 * (keys sorted, compact), joined as a JSON array; the text the routes
 * parser reads, and whose hash is the change check: the same table always
 * gives the same bytes, whatever order Scan returned. malloc'd; NULL when
 * out of memory. */
char *sy_dynamodb_items_text(json_t *items, size_t *len);

/* The change marker (SPEC §3): the item whose path is this; its number
 * attribute `generation` is raised by every writer. Never a route. */
#define SY_DYNAMODB_MARKER_PATH "#generation"
/* The key a judged item carries when it was refused on its own. */
#define SY_DYNAMODB_REJECTED_KEY "#rejected"

/* The marker's `generation` as DynamoDB wrote it ("" when there is no
 * marker item), read with one consistent GetItem. */
bool sy_dynamodb_get_marker(const char *table, char *generation, size_t cap, sy_error_t *err);

/* One raw Scan item judged alone: its plain form, or, when it can't be a
 * route (a NUL byte in any attribute, a malformed typed value, over
 * max_item_bytes (0: no limit)), a stub {"path": P, "#rejected": REASON}
 * so it is rejected alone and its neighbours still load. NULL when out of
 * memory. */
json_t *sy_dynamodb_judge_item(json_t *item, size_t max_item_bytes);

typedef struct {
    size_t max_items;      /* route items (the marker not counted); 0: no limit */
    size_t max_item_bytes; /* per item, its JSON as read; 0: no limit */
} sy_dynamodb_scan_limits_t;

/* Every item of the table (consistent reads), following LastEvaluatedKey
 * until absent, as a JSON array of judged plain objects, the marker left
 * out. Throttling and 5xx are retried with exponential backoff and full
 * jitter. Bounded and self-checking: a LastEvaluatedKey seen before, more
 * than max_items items or more bytes than they can hold stop the Scan with
 * an error, so nothing built from repeated pages is ever returned.
 * *pages (optional) counts the Scan calls that succeeded. NULL with err on
 * failure. */
json_t *sy_dynamodb_scan_all(const char *table, const sy_dynamodb_scan_limits_t *limits,
                             unsigned *pages, sy_error_t *err);

/* One DynamoDB_20120810 call (PutItem, DeleteItem, Scan...): request body
 * in, parsed answer out (a new reference). Retries as above. NULL with err
 * ("dynamodb://t: ResourceNotFoundException: ...") on failure. */
json_t *sy_dynamodb_call(const char *operation, json_t *request, const char *what, sy_error_t *err);

#endif
