/*
 * sources.c: the control plane. It fetches the policy and routes documents,
 * validates them, builds a snapshot and publishes it; one poller thread
 * per store then does the same every poll interval, jittered so a fleet of
 * tasks doesn't hit S3 and DynamoDB in step.
 *
 * Each store has a fetch function chosen by URI scheme (a small table: file,
 * s3://, dynamodb://). A fetch answers "unchanged", "new bytes + version",
 * or an error. For S3 the version is the ETag and the GET is conditional on
 * it; for files and DynamoDB it is a hash of the content (for DynamoDB, of
 * the items in a canonical order), never an mtime. DynamoDB is read through
 * its change marker (SPEC §3, §4): each poll is one consistent GetItem of
 * the `#generation` item, and the table is Scanned only at start, when the
 * marker moved, and every --resync-interval.
 *
 * The stores are polled independently, each on its own thread: a store
 * that hangs (every call has a connect and a total timeout, and shutdown
 * aborts calls in flight) never delays the other. A new document is built
 * into a snapshot together with the newest good document of the other
 * store, under one build lock, so builds never interleave. That needs both
 * parsed documents for every build, and a snapshot owns the documents it
 * was built from, so the raw text of each store's last good document is
 * kept and re-parsed: parsing is linear and cheap next to a poll interval,
 * and it keeps the snapshot the only owner of anything parsed.
 *
 * Until both stores have a good document nothing is published, so /readyz
 * answers 503 and traffic gets 503 with Retry-After (SPEC §4).
 */
#include "control/sources.h"

#include <errno.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/dynamodb.h"
#include "aws/http.h"
#include "aws/s3.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/redact.h"
#include "policy/snapshot.h"

/* A document bigger than this is a mistake, not a configuration. */
#define MAX_DOCUMENT_BYTES (64u << 20)
/* One DynamoDB route item, as read: a route is a few hundred bytes, so
 * anything near this is a runaway writer; it is rejected alone. */
#define MAX_ROUTE_ITEM_BYTES 16384

typedef enum { FETCH_UNCHANGED = 0, FETCH_NEW, FETCH_ERROR } fetch_result_t;

typedef struct {
    char *bytes; /* malloc'd, NUL-terminated; with FETCH_NEW */
    size_t len;
    char version[80];
    /* DynamoDB: the marker read by this poll, remembered once the poll
     * succeeded (a failed build must be retried, so it is not). */
    bool marker_read, scanned;
    char marker[48];
} fetched_t;

struct store;
typedef fetch_result_t (*fetch_fn)(struct store *store, fetched_t *out, sy_error_t *err);

typedef struct {
    const char *prefix; /* URI scheme prefix; "" matches a plain path */
    /* Remote: unreachable or bad at start is retried by the poller, with
     * /readyz at 503, rather than failing the start (SPEC §4). */
    bool remote;
    /* DynamoDB items may carry attributes the pipelines own: unknown
     * fields are tolerated there, never in a file. */
    bool routes_only, tolerate_unknown_fields;
    /* Checks the URI's shape once, at configuration (a typo is a usage
     * error, not something to retry). NULL: nothing to check. */
    bool (*check_uri)(const char *uri, sy_error_t *err);
    fetch_fn fetch;
} source_kind_t;

typedef struct store {
    const char *name; /* "policy" or "routes" */
    char *uri;        /* as given */
    char *label;      /* prefixes parse errors: the file path, or the URI */
    const source_kind_t *kind;
    /* The last good document, re-parsed for every build. Written under
     * build_lock by this store's own poll (which also holds poll_lock). */
    char *good_text;
    size_t good_len;
    char good_version[80];
    char good_hash[80]; /* content hash of good_text (the version may be an ETag) */
    time_t good_loaded_at;
    atomic_bool has_good;
    char oversize_etag[256]; /* S3: the ETag of an object over the size cap */
    /* This store's poll: one at a time (its thread, or sy_sources_poll_now). */
    pthread_mutex_t poll_lock;
    bool marker_known;
    char marker[48];
    double next_resync; /* monotonic seconds */
    /* Monotonic ms before which this store is not asked again: its last
     * answer was a throttling one with Retry-After (0: none). */
    atomic_llong not_before_ms;
    uint64_t jitter_state;
    pthread_t thread;
    bool thread_started;
    sy_store_status_t status; /* under status_lock */
} store_t;

enum { POLICY = 0, ROUTES = 1 };

static struct {
    pthread_mutex_t build_lock;  /* builds and publishes; the stores' good documents */
    pthread_mutex_t status_lock; /* store.status */
    pthread_mutex_t wake_lock;   /* stopping, with `wake` */
    pthread_cond_t wake;
    bool stopping, running;
    double interval_s, resync_s;
    /* limits.max_routes of the newest good policy: bounds the DynamoDB
     * Scan before a table is even built. */
    atomic_size_t max_routes;
    store_t stores[2];
} ctl = {
    .build_lock = PTHREAD_MUTEX_INITIALIZER,
    .status_lock = PTHREAD_MUTEX_INITIALIZER,
    .wake_lock = PTHREAD_MUTEX_INITIALIZER,
    .max_routes = SY_POLICY_DEFAULT_MAX_ROUTES,
    .stores = {{.name = "policy", .poll_lock = PTHREAD_MUTEX_INITIALIZER},
               {.name = "routes", .poll_lock = PTHREAD_MUTEX_INITIALIZER}},
};

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Uniform in [0.9, 1.1) (xorshift64*; each store's state is used by its
 * own poll only). */
static double jitter(store_t *store)
{
    uint64_t x = store->jitter_state ? store->jitter_state : 0x9E3779B97F4A7C15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    store->jitter_state = x;
    double unit = (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / (double)(1ULL << 53);
    return 0.9 + 0.2 * unit;
}

/* ---- fetchers ---- */

static void content_version(const char *bytes, size_t len, char out[80])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(bytes, len, md, &md_len, EVP_sha256(), NULL) || md_len < 8) {
        /* Never equal to a real hash: the document is treated as changed. */
        snprintf(out, 80, "sha256:unavailable");
        return;
    }
    int prefix = snprintf(out, 80, "sha256:");
    sy_hex_encode(md, 8, out + prefix);
}

static bool check_file_uri(const char *uri, sy_error_t *err)
{
    if (sy_file_uri_path(uri))
        return true;
    sy_error_set(err, "%s: expected file:///absolute/path", uri);
    return false;
}

static fetch_result_t fetch_file(store_t *store, fetched_t *out, sy_error_t *err)
{
    const char *uri = store->uri, *previous_version = store->good_version;
    const char *path = sy_file_uri_path(uri);
    if (!path) {
        sy_error_set(err, "%s: expected file:///absolute/path", uri);
        return FETCH_ERROR;
    }
    size_t len;
    char *bytes = sy_file_read(path, MAX_DOCUMENT_BYTES, &len, err);
    if (!bytes)
        return FETCH_ERROR;
    content_version(bytes, len, out->version);
    if (strcmp(out->version, previous_version) == 0) {
        free(bytes);
        return FETCH_UNCHANGED;
    }
    out->bytes = bytes;
    out->len = len;
    return FETCH_NEW;
}

static bool check_s3_uri(const char *uri, sy_error_t *err)
{
    sy_s3_location_t loc;
    bool ok = sy_s3_parse_uri(uri, &loc, err);
    sy_s3_location_free(&loc);
    return ok;
}

/* The version is the ETag, and the request is conditional on the last good
 * one: an unchanged object costs a 304, not a download. An object whose
 * ETag changed but whose bytes did not (a re-upload of the same file) is
 * no change either: compared by content hash, it costs no rebuild. An
 * object over the size cap is asked for conditionally on its own ETag, so
 * it is not downloaded again until it changes, and stays an error. */
static fetch_result_t fetch_s3(store_t *store, fetched_t *out, sy_error_t *err)
{
    const char *uri = store->uri, *previous_version = store->good_version;
    char etag[256];
    snprintf(etag, sizeof etag, "%s",
             store->oversize_etag[0] ? store->oversize_etag : previous_version);
    char *body = NULL;
    size_t len = 0;
    switch (sy_s3_get_object(uri, etag, &body, &len, err)) {
    case SY_S3_NOT_MODIFIED:
        if (store->oversize_etag[0]) {
            sy_error_set(err,
                         "%s: the object is still over the %u MiB limit (ETag %s); it is not "
                         "downloaded again until it changes",
                         uri, MAX_DOCUMENT_BYTES >> 20, store->oversize_etag);
            return FETCH_ERROR;
        }
        if (!previous_version[0]) {
            sy_error_set(err, "%s: S3 answered 304 Not Modified to an unconditional GET", uri);
            return FETCH_ERROR;
        }
        return FETCH_UNCHANGED;
    case SY_S3_OK:
        store->oversize_etag[0] = '\0';
        break;
    case SY_S3_TOO_LARGE:
        snprintf(store->oversize_etag, sizeof store->oversize_etag, "%s", etag);
        sy_error_set(err,
                     "%s: the object is over the %u MiB limit (ETag %s); refused, and not "
                     "downloaded again until it changes",
                     uri, MAX_DOCUMENT_BYTES >> 20, etag[0] ? etag : "none");
        return FETCH_ERROR;
    default:
        return FETCH_ERROR;
    }
    if (etag[0] == '\0' || strlen(etag) >= sizeof out->version) {
        /* No usable ETag (an S3-compatible store may omit it): fall back to
         * the content hash so changes are still told apart. */
        content_version(body ? body : "", len, out->version);
    } else {
        memcpy(out->version, etag, strlen(etag) + 1); /* length checked above */
    }
    if (strcmp(out->version, previous_version) == 0) {
        free(body);
        return FETCH_UNCHANGED;
    }
    char hash[80];
    content_version(body ? body : "", len, hash);
    if (store->good_hash[0] && strcmp(hash, store->good_hash) == 0) {
        /* Same bytes under a new ETag: remember the ETag for the next
         * conditional GET; nothing to build. */
        free(body);
        pthread_mutex_lock(&ctl.build_lock);
        snprintf(store->good_version, sizeof store->good_version, "%s", out->version);
        pthread_mutex_unlock(&ctl.build_lock);
        return FETCH_UNCHANGED;
    }
    out->bytes = body;
    out->len = len;
    return FETCH_NEW;
}

static bool check_dynamodb_uri(const char *uri, sy_error_t *err)
{
    char *table = NULL;
    bool ok = sy_dynamodb_parse_uri(uri, &table, err);
    free(table);
    return ok;
}

/* Each poll reads only the change marker; the table is Scanned when
 * nothing good is loaded yet, when the marker moved, and when the resync
 * interval is up (writes that did not raise the marker). A Scan has no
 * version of its own: the items are written out in a canonical order and
 * hashed, so the same table gives the same version whatever order the
 * pages came in. */
static fetch_result_t fetch_dynamodb(store_t *store, fetched_t *out, sy_error_t *err)
{
    char *table = NULL;
    if (!sy_dynamodb_parse_uri(store->uri, &table, err))
        return FETCH_ERROR;
    if (!sy_dynamodb_get_marker(table, out->marker, sizeof out->marker, err)) {
        free(table);
        return FETCH_ERROR;
    }
    out->marker_read = true;
    bool due = !atomic_load(&store->has_good) || !store->marker_known ||
               strcmp(out->marker, store->marker) != 0 || monotonic_seconds() >= store->next_resync;
    if (!due) {
        free(table);
        return FETCH_UNCHANGED;
    }
    out->scanned = true;
    sy_dynamodb_scan_limits_t limits = {.max_items = atomic_load(&ctl.max_routes),
                                        .max_item_bytes = MAX_ROUTE_ITEM_BYTES};
    json_t *items = sy_dynamodb_scan_all(table, &limits, NULL, err);
    free(table);
    if (!items)
        return FETCH_ERROR;
    size_t len = 0;
    char *text = sy_dynamodb_items_text(items, &len);
    json_decref(items);
    if (!text) {
        sy_error_set(err, "%s: out of memory", store->uri);
        return FETCH_ERROR;
    }
    content_version(text, len, out->version);
    if (strcmp(out->version, store->good_version) == 0) {
        free(text);
        return FETCH_UNCHANGED;
    }
    out->bytes = text;
    out->len = len;
    return FETCH_NEW;
}

/* After a successful poll: the marker it read is the one the serving
 * routes reflect. */
static void marker_commit(store_t *store, const fetched_t *f)
{
    if (!f->marker_read)
        return;
    store->marker_known = true;
    snprintf(store->marker, sizeof store->marker, "%s", f->marker);
    if (f->scanned)
        store->next_resync = monotonic_seconds() + ctl.resync_s * jitter(store);
}

static const source_kind_t source_kinds[] = {
    {"s3://", true, false, false, check_s3_uri, fetch_s3},
    {"dynamodb://", true, true, true, check_dynamodb_uri, fetch_dynamodb},
    {"file://", false, false, false, check_file_uri, fetch_file},
    {"", false, false, false, NULL, fetch_file},
};

static const source_kind_t *source_kind_find(const char *uri, sy_error_t *err)
{
    for (size_t i = 0; i < sizeof source_kinds / sizeof source_kinds[0]; i++) {
        const source_kind_t *kind = &source_kinds[i];
        if (strncmp(uri, kind->prefix, strlen(kind->prefix)) != 0)
            continue;
        /* A plain path must not look like some other URI scheme. */
        if (kind->prefix[0] == '\0' && strstr(uri, "://")) {
            sy_error_set(err,
                         "%s: unknown source type (expected s3://, dynamodb://, file:// "
                         "or a path)",
                         uri);
            return NULL;
        }
        return kind;
    }
    return NULL;
}

/* ---- stores ---- */

static void store_reset(store_t *store)
{
    free(store->uri);
    free(store->label);
    free(store->good_text);
    store->uri = store->label = store->good_text = NULL;
    store->kind = NULL;
    store->good_len = 0;
    store->good_version[0] = '\0';
    store->good_hash[0] = '\0';
    store->oversize_etag[0] = '\0';
    store->good_loaded_at = 0;
    atomic_store(&store->has_good, false);
    store->marker_known = false;
    store->marker[0] = '\0';
    store->next_resync = 0;
    atomic_store(&store->not_before_ms, 0);
    memset(&store->status, 0, sizeof store->status);
}

static bool store_configure(store_t *store, const char *uri, sy_error_t *err)
{
    store_reset(store);
    if (!uri || !uri[0]) {
        sy_error_set(err, "no %s source given", store->name);
        return false;
    }
    store->kind = source_kind_find(uri, err);
    if (!store->kind || (store->kind->check_uri && !store->kind->check_uri(uri, err)))
        return false;
    if (store->kind->routes_only && strcmp(store->name, "routes") != 0) {
        sy_error_set(err, "%s: a DynamoDB table holds routes; the %s comes from s3:// or a file",
                     uri, store->name);
        return false;
    }
    const char *path = store->kind->fetch == fetch_file ? sy_file_uri_path(uri) : NULL;
    store->uri = strdup(uri);
    store->label = strdup(path ? path : uri);
    if (!store->uri || !store->label) {
        sy_error_set(err, "out of memory");
        return false;
    }
    snprintf(store->status.source, sizeof store->status.source, "%s", uri);
    return true;
}

/* What one store brought to a poll. Parsed documents are handed to the
 * snapshot build, which owns them from then on. */
typedef struct {
    fetch_result_t result;
    fetched_t fetched;
    sy_error_t error;
    sy_policy_t *policy;
    sy_route_list_t *routes;
} attempt_t;

/* The routes of a DynamoDB table, in the canonical text the fetch made:
 * like the file form, but each item may carry attributes the pipelines
 * own, and an item judged unusable on its own (dynamodb.c) arrives as a
 * stub carrying its reason. Items are named by their path. */
static sy_route_list_t *routes_parse_tolerant(const char *text, size_t len, const char *label,
                                              sy_error_t *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!doc || !json_is_array(doc)) {
        sy_error_set(err, "%s: the table could not be read back as route items: %s", label,
                     doc ? "not an array" : jerr.text);
        json_decref(doc);
        return NULL;
    }
    size_t n = json_array_size(doc);
    sy_route_list_t *list = calloc(1, sizeof *list);
    if (list && n && !(list->items = calloc(n, sizeof *list->items))) {
        free(list);
        list = NULL;
    }
    for (size_t i = 0; list && i < n; i++) {
        json_t *item = json_array_get(doc, i);
        sy_route_t *route = &list->items[i];
        list->count++;
        bool ok = sy_route_from_json(route, item, NULL, true);
        const char *judged = json_string_value(json_object_get(item, SY_DYNAMODB_REJECTED_KEY));
        if (judged) {
            free(route->rejected_reason);
            route->rejected_reason = strdup(judged);
            ok = false;
        }
        /* False without a reason only when out of memory: then the list
         * can't be trusted at all. */
        if (!ok && !route->rejected_reason) {
            sy_route_list_free(list);
            list = NULL;
        }
    }
    json_decref(doc);
    if (!list)
        sy_error_set(err, "%s: out of memory", label);
    return list;
}

/* problems (may be NULL): every problem of a bad policy (the check command). */
static void attempt_parse(const store_t *store, int index, const char *text, size_t len,
                          attempt_t *a, sy_problems_t *problems)
{
    if (index == POLICY)
        a->policy = sy_policy_parse_report(text, len, store->label, &a->error, problems);
    else if (store->kind->tolerate_unknown_fields)
        a->routes = routes_parse_tolerant(text, len, store->label, &a->error);
    else
        a->routes = sy_routes_parse_json(text, len, store->label, &a->error);
    if (!a->policy && !a->routes) {
        if (!a->error.message[0])
            sy_error_set(&a->error, "%s: could not be parsed", store->label);
        a->result = FETCH_ERROR;
    }
}

static void attempt_clear(attempt_t *a)
{
    free(a->fetched.bytes);
    sy_policy_free(a->policy);
    sy_route_list_free(a->routes);
    memset(a, 0, sizeof *a);
}

static void version_fill(sy_store_version_t *v, const store_t *store)
{
    snprintf(v->source, sizeof v->source, "%s", store->uri);
    snprintf(v->version, sizeof v->version, "%s", store->good_version);
    v->loaded_at = store->good_loaded_at;
}

/* ---- route audit ----
 *
 * Every publish compares the new snapshot's routes with the serving one's,
 * by path, and logs one "route change" line per route added, changed,
 * removed, newly rejected or accepted again (and counts it in
 * switchyard_route_changes_total). The previous routes are put in a hash
 * table by path first, so the diff is linear in the number of routes. */

typedef struct {
    const sy_route_t **slots; /* open addressing, NULL = empty */
    size_t mask;
} route_index_t;

static uint64_t path_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* The slot holding path, or the empty slot where it would go. */
static const sy_route_t **index_slot(const route_index_t *ix, const char *path)
{
    size_t i = (size_t)path_hash(path) & ix->mask;
    while (ix->slots[i] && strcmp(ix->slots[i]->path, path) != 0)
        i = (i + 1) & ix->mask;
    return &ix->slots[i];
}

/* The route each path stands for: the one that owns it (the earliest
 * enabled item, as the build decides), else the earliest disabled one.
 * false when out of memory. */
static bool index_build(route_index_t *ix, const sy_route_list_t *routes)
{
    size_t cap = 16;
    while (cap < routes->count * 2)
        cap <<= 1;
    ix->mask = cap - 1;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots)
        return false;
    for (size_t i = 0; i < routes->count; i++) {
        const sy_route_t *r = &routes->items[i];
        if (!r->path)
            continue;
        const sy_route_t **slot = index_slot(ix, r->path);
        if (!*slot || (!(*slot)->enabled && r->enabled))
            *slot = r;
    }
    return true;
}

typedef enum { STATE_ACTIVE, STATE_REJECTED, STATE_DISABLED } route_state_t;

static route_state_t route_state(const sy_route_t *r)
{
    return !r->enabled ? STATE_DISABLED : r->rejected_reason ? STATE_REJECTED : STATE_ACTIVE;
}

static const char *const state_names[] = {"active", "rejected", "disabled"};

/* The auth a route runs under: its own, else the policy's default_auth. */
static const char *route_auth_name(const sy_route_t *r)
{
    return r->auth ? r->auth->name : r->auth_name ? r->auth_name : "";
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* Pairs for sy_log, NULL-terminated; at most AUDIT_PAIRS pairs. */
#define AUDIT_PAIRS 26
typedef struct {
    const char *kv[AUDIT_PAIRS * 2 + 2];
    size_t n;
} audit_line_t;

static void audit_put(audit_line_t *l, const char *key, const char *value)
{
    if (l->n + 2 < sizeof l->kv / sizeof l->kv[0]) {
        l->kv[l->n++] = key;
        l->kv[l->n++] = value ? value : "";
    }
}

static void audit_emit(sy_route_change_t kind, const sy_route_t *r, audit_line_t *extra)
{
    audit_line_t l = {{0}, 0};
    /* A rejected target may hold userinfo or a query: never logged as is. */
    char target[512];
    sy_redact_url(target, sizeof target, sy_slice_cstr(str_or_empty(r->target)));
    audit_put(&l, "change", sy_route_change_name(kind));
    audit_put(&l, "path", r->path);
    audit_put(&l, "owner", str_or_empty(r->owner));
    audit_put(&l, "target", target);
    audit_put(&l, "auth", route_auth_name(r));
    audit_put(&l, "state", state_names[route_state(r)]);
    if (r->rejected_reason && kind != SY_ROUTE_REMOVED)
        audit_put(&l, "reason", r->rejected_reason);
    for (size_t i = 0; extra && i + 1 < extra->n; i += 2)
        audit_put(&l, extra->kv[i], extra->kv[i + 1]);
    const char **kv = l.kv; /* unused tail entries are NULL: they end the pairs */
    sy_log(kind == SY_ROUTE_REJECTED || kind == SY_ROUTE_REMOVED ? SY_LOG_WARN : SY_LOG_INFO,
           "route change", kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6], kv[7], kv[8], kv[9],
           kv[10], kv[11], kv[12], kv[13], kv[14], kv[15], kv[16], kv[17], kv[18], kv[19], kv[20],
           kv[21], kv[22], kv[23], kv[24], kv[25], kv[26], kv[27], kv[28], kv[29], kv[30], kv[31],
           kv[32], kv[33], kv[34], kv[35], kv[36], kv[37], kv[38], kv[39], kv[40], kv[41], kv[42],
           kv[43], kv[44], kv[45], kv[46], kv[47], kv[48], kv[49], kv[50], kv[51], NULL);
    sy_metrics_route_change(kind);
}

/* Compares the fields a pipeline or the policy decides; fills diff with
 * "fields" (comma-separated) and old_X/new_X pairs. buf holds the
 * formatted booleans. Returns whether anything differed. */
static bool route_diff(const sy_route_t *was, const sy_route_t *now, audit_line_t *diff,
                       char fields[160], char old_target[512], char new_target[512])
{
    sy_redact_url(old_target, 512, sy_slice_cstr(str_or_empty(was->target)));
    sy_redact_url(new_target, 512, sy_slice_cstr(str_or_empty(now->target)));
    struct {
        const char *name, *old_key, *new_key, *old_value, *new_value;
    } f[] = {
        {"target", "old_target", "new_target", old_target, new_target},
        {"auth", "old_auth", "new_auth", route_auth_name(was), route_auth_name(now)},
        {"owner", "old_owner", "new_owner", str_or_empty(was->owner), str_or_empty(now->owner)},
        {"domain", "old_domain", "new_domain", str_or_empty(was->domain),
         str_or_empty(now->domain)},
        {"methods", "old_methods", "new_methods", str_or_empty(was->allow_header),
         str_or_empty(now->allow_header)},
        {"strip_prefix", "old_strip_prefix", "new_strip_prefix",
         was->strip_prefix ? "true" : "false", now->strip_prefix ? "true" : "false"},
        {"enabled", "old_enabled", "new_enabled", was->enabled ? "true" : "false",
         now->enabled ? "true" : "false"},
    };
    size_t used = 0;
    fields[0] = '\0';
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (strcmp(f[i].old_value, f[i].new_value) == 0)
            continue;
        used += (size_t)snprintf(fields + used, 160 - used, "%s%s", used ? "," : "", f[i].name);
        audit_put(diff, f[i].old_key, f[i].old_value);
        audit_put(diff, f[i].new_key, f[i].new_value);
    }
    return used > 0;
}

/* Logs what changed from prev (NULL: the first publish of this process,
 * where every route is new to it and only the summary line is written)
 * to snap, and sets each route's changed_at. */
static void audit_routes(const sy_snapshot_t *prev, sy_snapshot_t *snap, time_t now)
{
    route_index_t old_ix = {0}, new_ix = {0};
    bool *seen = NULL;
    if (prev && (!index_build(&old_ix, prev->routes) || !index_build(&new_ix, snap->routes) ||
                 !(seen = calloc(old_ix.mask + 1, sizeof *seen)))) {
        sy_log(SY_LOG_ERROR, "route audit skipped: out of memory", NULL);
        prev = NULL;
    }
    for (size_t i = 0; i < snap->routes->count; i++) {
        sy_route_t *r = &snap->routes->items[i];
        r->changed_at = now;
        if (!prev || !r->path || *index_slot(&new_ix, r->path) != r)
            continue; /* not the route its path stands for (a later duplicate) */
        const sy_route_t **slot = index_slot(&old_ix, r->path);
        const sy_route_t *was = *slot;
        if (!was) {
            audit_emit(SY_ROUTE_ADDED, r, NULL);
            continue;
        }
        seen[slot - old_ix.slots] = true;
        audit_line_t diff = {{0}, 0};
        char fields[160], old_target[512], new_target[512];
        bool changed = route_diff(was, r, &diff, fields, old_target, new_target);
        route_state_t before = route_state(was), after = route_state(r);
        if (changed) {
            audit_line_t extra = {{0}, 0};
            audit_put(&extra, "fields", fields);
            for (size_t k = 0; k + 1 < diff.n; k += 2)
                audit_put(&extra, diff.kv[k], diff.kv[k + 1]);
            audit_emit(SY_ROUTE_CHANGED, r, &extra);
        }
        if (after == STATE_REJECTED && before != STATE_REJECTED) {
            audit_line_t extra = {{0}, 0};
            audit_put(&extra, "old_state", state_names[before]);
            audit_emit(SY_ROUTE_REJECTED, r, &extra);
        } else if (after == STATE_ACTIVE && before == STATE_REJECTED) {
            audit_line_t extra = {{0}, 0};
            audit_put(&extra, "old_reason", was->rejected_reason);
            audit_emit(SY_ROUTE_ACCEPTED, r, &extra);
        }
        if (!changed && before == after && was->changed_at)
            r->changed_at = was->changed_at;
    }
    for (size_t i = 0; prev && i <= old_ix.mask; i++)
        if (old_ix.slots[i] && !seen[i])
            audit_emit(SY_ROUTE_REMOVED, old_ix.slots[i], NULL);
    free(seen);
    free(old_ix.slots);
    free(new_ix.slots);
}

static void log_snapshot(const char *msg, const sy_snapshot_t *snap, uint64_t generation)
{
    for (size_t i = 0; i < snap->routes->count; i++) {
        const sy_route_t *r = &snap->routes->items[i];
        if (r->rejected_reason) {
            char *target = sy_redact_url_dup(r->target);
            sy_log(SY_LOG_WARN, "route rejected", "path", r->path ? r->path : "", "target",
                   target ? target : "", "reason", r->rejected_reason, NULL);
            free(target);
        }
    }
    char gen[24], active[24], rejected[24], disabled[24];
    snprintf(gen, sizeof gen, "%llu", (unsigned long long)generation);
    snprintf(active, sizeof active, "%zu", snap->active_count);
    snprintf(rejected, sizeof rejected, "%zu", snap->rejected_count);
    snprintf(disabled, sizeof disabled, "%zu", snap->disabled_count);
    sy_log(SY_LOG_INFO, msg, "policy_version", snap->policy_version.version, "routes_version",
           snap->routes_version.version, SY_LOG_NUM("generation"), gen, SY_LOG_NUM("active_routes"),
           active, SY_LOG_NUM("rejected_routes"), rejected, SY_LOG_NUM("disabled_routes"), disabled,
           NULL);
}

static void status_record(store_t *store, const attempt_t *a, time_t now)
{
    pthread_mutex_lock(&ctl.status_lock);
    sy_store_status_t *s = &store->status;
    s->last_attempt = now;
    if (a->result == FETCH_ERROR) {
        snprintf(s->last_error, sizeof s->last_error, "%s", a->error.message);
        s->last_error_time = now;
        s->consecutive_failures++;
        s->reloads_failed++;
    } else {
        s->last_success = now;
        s->last_error[0] = '\0';
        s->consecutive_failures = 0;
        if (a->result == FETCH_NEW) {
            s->reloads_ok++;
            snprintf(s->version, sizeof s->version, "%s", store->good_version);
        }
    }
    pthread_mutex_unlock(&ctl.status_lock);
    if (a->result != FETCH_UNCHANGED)
        sy_metrics_reload(store->name, a->result == FETCH_NEW);
}

/* A route table over the policy's limits.max_routes is refused whole: a
 * runaway pipeline must not exhaust memory, and half a table is worse
 * than the last good one. */
static bool routes_within_limit(const sy_policy_t *policy, const sy_route_list_t *routes,
                                const char *label, sy_error_t *err)
{
    if (!routes || routes->count <= policy->max_routes)
        return true;
    sy_error_set(err,
                 "%s: %zu routes exceed limits.max_routes %zu; the table is refused whole and "
                 "the last good routes keep serving",
                 label, routes->count, policy->max_routes);
    return false;
}

/* Every route that can carry traffic gets its counters (shared with the
 * previous snapshot when it held the same path), and after the publish
 * the counters of this table are marked as the ones a scrape shows. */
static void stats_attach(sy_snapshot_t *snap)
{
    for (size_t r = 0; r < snap->routes->count; r++) {
        sy_route_t *route = &snap->routes->items[r];
        if (route->path && route->enabled && !route->stats)
            route->stats = sy_metrics_route(route->path);
    }
}

static void stats_mark(const sy_snapshot_t *snap)
{
    uint64_t epoch = sy_metrics_epoch_begin();
    for (size_t r = 0; r < snap->routes->count; r++)
        sy_metrics_route_mark(snap->routes->items[r].stats, epoch);
    sy_metrics_epoch_commit(epoch);
}

/* The new document becomes the store's last good one (build_lock held). */
static void keep_good(store_t *store, attempt_t *a, time_t now)
{
    free(store->good_text);
    store->good_text = a->fetched.bytes;
    store->good_len = a->fetched.len;
    a->fetched.bytes = NULL;
    snprintf(store->good_version, sizeof store->good_version, "%s", a->fetched.version);
    content_version(store->good_text ? store->good_text : "", store->good_len, store->good_hash);
    store->good_loaded_at = now;
}

/*
 * Applies a store's new, parsed document, with build_lock held: builds a
 * snapshot with the other store's newest good document and publishes it,
 * or, while the other store has none yet, only keeps it as this store's
 * good document. False with a->error set (the document is not kept) when
 * the build failed.
 */
static bool apply_locked(int index, attempt_t *a, time_t now)
{
    store_t *store = &ctl.stores[index], *other = &ctl.stores[1 - index];
    attempt_t again = {0};
    if (other->good_text) {
        attempt_parse(other, 1 - index, other->good_text, other->good_len, &again, NULL);
        if (again.result == FETCH_ERROR) {
            sy_error_set(&a->error, "%s: the last good %s document could not be parsed again",
                         store->label, other->name);
            attempt_clear(&again);
            return false;
        }
    }
    sy_policy_t *policy = index == POLICY ? a->policy : again.policy;
    sy_route_list_t *routes = index == ROUTES ? a->routes : again.routes;
    size_t limit = policy ? policy->max_routes : atomic_load(&ctl.max_routes);
    if (routes && routes->count > limit) {
        sy_error_set(&a->error,
                     "%s: %zu routes exceed limits.max_routes %zu; the table is refused whole and "
                     "the last good routes keep serving",
                     index == ROUTES ? store->label : other->label, routes->count, limit);
        attempt_clear(&again);
        return false;
    }
    if (!other->good_text) {
        attempt_clear(&again);
    } else {
        sy_error_t build_error = {{0}};
        sy_snapshot_t *snap = sy_snapshot_build(policy, routes, &build_error);
        /* The build owns them now, also when it failed. */
        a->policy = NULL;
        a->routes = NULL;
        again.policy = NULL;
        again.routes = NULL;
        if (!snap) {
            sy_error_set(&a->error, "%s: snapshot build failed: %s", store->label,
                         build_error.message[0] ? build_error.message : "out of memory");
            return false;
        }
        keep_good(store, a, now);
        version_fill(&snap->policy_version, &ctl.stores[POLICY]);
        version_fill(&snap->routes_version, &ctl.stores[ROUTES]);
        stats_attach(snap);
        bool first = !sy_sources_loaded_before();
        /* Only one build runs at a time (build_lock), so the current
         * snapshot is the one this one replaces. */
        sy_snapshot_t *prev = sy_snapshot_acquire();
        audit_routes(prev, snap, now);
        sy_snapshot_unref(prev);
        sy_snapshot_ref(snap); /* kept for the log line below */
        sy_snapshot_publish(snap);
        stats_mark(snap);
        log_snapshot(first ? "config loaded" : "config reloaded", snap,
                     sy_snapshot_current_generation());
        sy_snapshot_unref(snap);
        atomic_store(&store->has_good, true);
        if (index == POLICY)
            atomic_store(&ctl.max_routes, limit);
        return true;
    }
    /* Kept until the other store has loaded. */
    if (index == POLICY)
        atomic_store(&ctl.max_routes, a->policy->max_routes);
    keep_good(store, a, now);
    atomic_store(&store->has_good, true);
    return true;
}

static bool stopping_now(void)
{
    pthread_mutex_lock(&ctl.wake_lock);
    bool stopping = ctl.stopping;
    pthread_mutex_unlock(&ctl.wake_lock);
    return stopping;
}

/* One poll of one store: fetch (no lock but the store's own), parse, and
 * when the document is new, build and publish under build_lock. False
 * when the store failed; err (may be NULL) then says why. */
static bool store_poll(int index, sy_error_t *err)
{
    store_t *store = &ctl.stores[index];
    pthread_mutex_lock(&store->poll_lock);
    if (!store->kind) {
        pthread_mutex_unlock(&store->poll_lock);
        return false;
    }
    attempt_t a;
    memset(&a, 0, sizeof a);
    (void)sy_aws_throttle_take(); /* a wait noted by anything before is not this store's */
    a.result = store->kind->fetch(store, &a.fetched, &a.error);
    /* A throttling answer with Retry-After ended the fetch (on a poller
     * thread): the error shows now, and this store waits as asked. */
    long throttle_ms = sy_aws_throttle_take();
    atomic_store(&store->not_before_ms,
                 throttle_ms > 0 ? (long long)(monotonic_seconds() * 1000.0) + throttle_ms : 0);
    if (a.result == FETCH_NEW)
        attempt_parse(store, index, a.fetched.bytes, a.fetched.len, &a, NULL);
    time_t now = time(NULL);
    bool a_new = a.result == FETCH_NEW;
    if (a.result == FETCH_NEW && stopping_now()) {
        /* Shutting down: a build now would only delay the drain. */
        attempt_clear(&a);
        pthread_mutex_unlock(&store->poll_lock);
        return true;
    }
    if (a.result == FETCH_NEW) {
        pthread_mutex_lock(&ctl.build_lock);
        if (!apply_locked(index, &a, now))
            a.result = FETCH_ERROR;
        pthread_mutex_unlock(&ctl.build_lock);
    }
    if (a.result != FETCH_ERROR)
        marker_commit(store, &a.fetched);
    status_record(store, &a, now);
    bool ok = a.result != FETCH_ERROR;
    if (!ok) {
        bool loaded = sy_sources_loaded_before();
        sy_log(SY_LOG_ERROR, loaded ? "config reload failed" : "config load failed", "store",
               store->name, "source", store->uri, "error", a.error.message, NULL);
        if (err)
            sy_error_set(err, "%s", a.error.message);
    }
    attempt_clear(&a);
    pthread_mutex_unlock(&store->poll_lock);
    /* Old snapshots the workers let go of are freed here, off their loops,
     * and the heap a large parse and build left behind goes back to the
     * system, so resident memory follows the table, not its peak. */
    if (sy_snapshot_collect() > 0 || a_new)
        malloc_trim(0);
    return ok;
}

bool sy_sources_loaded_before(void)
{
    return atomic_load(&ctl.stores[POLICY].has_good) && atomic_load(&ctl.stores[ROUTES].has_good);
}

bool sy_sources_load_initial(const sy_sources_config_t *cfg, sy_error_t *err)
{
    sy_aws_http_abort_reset();
    pthread_mutex_lock(&ctl.wake_lock);
    ctl.stopping = false; /* a configuration after a stop (tests) starts afresh */
    pthread_mutex_unlock(&ctl.wake_lock);
    for (int i = 0; i < 2; i++)
        pthread_mutex_lock(&ctl.stores[i].poll_lock);
    pthread_mutex_lock(&ctl.build_lock);
    pthread_mutex_lock(&ctl.status_lock);
    bool ok = store_configure(&ctl.stores[POLICY], cfg->policy_uri, err) &&
              store_configure(&ctl.stores[ROUTES], cfg->routes_uri, err);
    pthread_mutex_unlock(&ctl.status_lock);
    pthread_mutex_unlock(&ctl.build_lock);
    for (int i = 0; i < 2; i++)
        pthread_mutex_unlock(&ctl.stores[i].poll_lock);
    ctl.interval_s = cfg->poll_interval_s > 0 ? cfg->poll_interval_s : 10;
    ctl.resync_s = cfg->resync_interval_s > 0 ? cfg->resync_interval_s : 300;
    atomic_store(&ctl.max_routes, SY_POLICY_DEFAULT_MAX_ROUTES);
    if (!ok)
        return false;
    /* Local files first: a typo in one is the operator's own and fails the
     * start (exit 2). A remote store that fails is retried by its poller
     * while /readyz says 503 (SPEC §4); with defer_remote it is not even
     * tried here, so the listeners open before a hanging store answers. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 2; i++) {
            store_t *store = &ctl.stores[i];
            if (store->kind->remote != (pass == 1) || (store->kind->remote && cfg->defer_remote))
                continue;
            sy_error_t e = {{0}};
            if (store_poll(i, &e))
                continue;
            if (!store->kind->remote) {
                sy_error_set(err, "%s", e.message);
                return false;
            }
            sy_log(SY_LOG_WARN, "config not loaded yet; retrying in the background", "error",
                   e.message, NULL);
        }
    }
    /* A local document whose build failed with the other store's document
     * (e.g. over limits.max_routes) is a start failure too. */
    return true;
}

bool sy_sources_poll_now(void)
{
    bool ok = true;
    for (int i = 0; i < 2; i++)
        if (!store_poll(i, NULL))
            ok = false;
    return ok;
}

/* ---- the poller threads ---- */

/* The poll interval, or while this store has no good document yet a
 * backoff from 1 s doubling per failure up to it; jittered; and never
 * before the store's Retry-After is up. */
static double store_wait(store_t *store)
{
    double throttled = 0;
    long long not_before = atomic_load(&store->not_before_ms);
    if (not_before > 0)
        throttled = ((double)not_before - monotonic_seconds() * 1000.0) / 1000.0;
    double wait = ctl.interval_s;
    if (!atomic_load(&store->has_good)) {
        sy_store_status_t st[2];
        sy_sources_status(st);
        unsigned failures = st[store == &ctl.stores[ROUTES]].consecutive_failures;
        double backoff = (double)(1u << (failures > 1 ? (failures > 11 ? 10 : failures - 1) : 0));
        if (backoff < wait)
            wait = backoff;
    }
    wait *= jitter(store);
    return throttled > wait ? throttled : wait;
}

/* Waits `wait` seconds or until stopping; true when stopping. */
static bool wait_or_stop(double wait)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    time_t whole = (time_t)wait;
    long nanos = deadline.tv_nsec + (long)((wait - (double)whole) * 1e9);
    deadline.tv_sec += whole + nanos / 1000000000L;
    deadline.tv_nsec = nanos % 1000000000L;
    pthread_mutex_lock(&ctl.wake_lock);
    while (!ctl.stopping &&
           pthread_cond_timedwait(&ctl.wake, &ctl.wake_lock, &deadline) != ETIMEDOUT) {
    }
    bool stopping = ctl.stopping;
    pthread_mutex_unlock(&ctl.wake_lock);
    return stopping;
}

static void *poller_main(void *arg)
{
    store_t *store = arg;
    int index = store == &ctl.stores[ROUTES] ? ROUTES : POLICY;
    /* Retry-After ends a call on this thread and is waited out here,
     * between polls, so the error shows at once (aws/http.h). */
    sy_aws_throttle_defer(true);
    /* A store not loaded at start (remote, deferred or failed) is asked at
     * once; a loaded one after one interval. */
    bool now = !atomic_load(&store->has_good);
    for (;;) {
        if (!now && wait_or_stop(store_wait(store)))
            break;
        now = false;
        if (stopping_now())
            break;
        store_poll(index, NULL);
    }
    return NULL;
}

bool sy_sources_start(sy_error_t *err)
{
    if (ctl.running)
        return true;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* Monotonic: a wall-clock step must not stall or rush the pollers. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ctl.wake, &attr);
    pthread_condattr_destroy(&attr);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ctl.stopping = false;
    sy_snapshot_defer_frees(true);
    for (int i = 0; i < 2; i++) {
        store_t *store = &ctl.stores[i];
        store->jitter_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                              ((uint64_t)getpid() << (8 * i)) ^ (uint64_t)(i + 1);
        int rc = pthread_create(&store->thread, NULL, poller_main, store);
        if (rc != 0) {
            sy_error_set(err, "could not start the %s poller: %s", store->name, strerror(rc));
            ctl.running = true;
            sy_sources_stop();
            return false;
        }
        store->thread_started = true;
    }
    ctl.running = true;
    return true;
}

void sy_sources_stop(void)
{
    if (ctl.running) {
        /* Calls in flight end within about a second, retry sleeps wake: a
         * store that hangs can't hold up the drain. */
        sy_aws_http_abort_all();
        pthread_mutex_lock(&ctl.wake_lock);
        ctl.stopping = true;
        pthread_cond_broadcast(&ctl.wake);
        pthread_mutex_unlock(&ctl.wake_lock);
        for (int i = 0; i < 2; i++) {
            if (ctl.stores[i].thread_started)
                pthread_join(ctl.stores[i].thread, NULL);
            ctl.stores[i].thread_started = false;
        }
        pthread_cond_destroy(&ctl.wake);
        ctl.running = false;
    }
    /* The kept documents are only needed for the next poll; status stays
     * readable. */
    for (int i = 0; i < 2; i++)
        pthread_mutex_lock(&ctl.stores[i].poll_lock);
    pthread_mutex_lock(&ctl.build_lock);
    for (int i = 0; i < 2; i++) {
        store_t *store = &ctl.stores[i];
        free(store->good_text);
        store->good_text = NULL;
        store->good_len = 0;
        store->good_version[0] = '\0';
        store->good_hash[0] = '\0';
        store->oversize_etag[0] = '\0';
        store->kind = NULL;
        store->marker_known = false;
        atomic_store(&store->has_good, false);
    }
    pthread_mutex_unlock(&ctl.build_lock);
    for (int i = 0; i < 2; i++)
        pthread_mutex_unlock(&ctl.stores[i].poll_lock);
    /* From here the last references are dropped by the drain and main:
     * free at once again, and free what is waiting. */
    sy_snapshot_defer_frees(false);
    sy_snapshot_collect();
}

void sy_sources_status(sy_store_status_t out[2])
{
    pthread_mutex_lock(&ctl.status_lock);
    out[0] = ctl.stores[POLICY].status;
    out[1] = ctl.stores[ROUTES].status;
    pthread_mutex_unlock(&ctl.status_lock);
}

struct sy_snapshot *sy_sources_load_once(const char *policy_uri, const char *routes_uri,
                                         sy_error_t *err)
{
    return sy_sources_check_once(policy_uri, routes_uri, err, NULL);
}

struct sy_snapshot *sy_sources_check_once(const char *policy_uri, const char *routes_uri,
                                          sy_error_t *err, sy_problems_t *problems)
{
    store_t stores[2] = {{.name = "policy"}, {.name = "routes"}};
    attempt_t attempts[2] = {{0}};
    sy_snapshot_t *snap = NULL;
    const char *uris[2] = {policy_uri, routes_uri};
    time_t now = time(NULL);
    int i;
    for (i = 0; i < 2; i++) {
        if (!store_configure(&stores[i], uris[i], err))
            break;
        store_t *store = &stores[i];
        attempt_t *a = &attempts[i];
        a->result = store->kind->fetch(store, &a->fetched, &a->error);
        if (a->result == FETCH_NEW)
            attempt_parse(store, i, a->fetched.bytes, a->fetched.len, a,
                          i == POLICY ? problems : NULL);
        if (a->result == FETCH_ERROR) {
            sy_error_set(err, "%s", a->error.message);
            break;
        }
    }
    if (i == 2 && routes_within_limit(attempts[POLICY].policy, attempts[ROUTES].routes,
                                      stores[ROUTES].label, err)) {
        snap = sy_snapshot_build(attempts[POLICY].policy, attempts[ROUTES].routes, err);
        attempts[POLICY].policy = NULL;
        attempts[ROUTES].routes = NULL;
        if (snap) {
            for (int k = 0; k < 2; k++) {
                snprintf(stores[k].good_version, sizeof stores[k].good_version, "%s",
                         attempts[k].fetched.version);
                stores[k].good_loaded_at = now;
            }
            version_fill(&snap->policy_version, &stores[POLICY]);
            version_fill(&snap->routes_version, &stores[ROUTES]);
        } else if (!err->message[0]) {
            sy_error_set(err, "out of memory building the snapshot");
        }
    }
    for (i = 0; i < 2; i++) {
        attempt_clear(&attempts[i]);
        store_reset(&stores[i]);
    }
    return snap;
}
