/*
 * routes_cli.c: `switchyard routes put|delete|list`, for pipelines.
 *
 * An item is validated with the same parser the router uses before it is
 * written (path syntax, target URL, field types), so a pipeline learns at
 * deploy time, with an exit status it can act on, what the router would
 * otherwise only report in /config. --check-policy goes one step further
 * and builds a snapshot of the policy with this one route, refusing a
 * route whose target, auth or domain the policy would reject, or that
 * breaks its destination's bindings (allowed_paths, allowed_auth).
 *
 * A file store is rewritten whole through a temporary file and rename(2),
 * so a router polling the file never reads half a document. DynamoDB
 * writes are single-item PutItem/DeleteItem calls: pipelines of different
 * services never contend for the same item.
 */
#include "control/routes_cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/dynamodb.h"
#include "aws/s3.h"
#include "core/redact.h"
#include "policy/policy.h"
#include "policy/routes.h"
#include "policy/snapshot.h"

enum { EXIT_DONE = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

#define MAX_FILE_BYTES (64u << 20)

typedef struct {
    const char *action;
    const char *routes;
    const char *path, *target, *auth, *domain, *methods, *check_policy;
    bool strip_prefix, json;
} cli_t;

/* ---- output ---- */

static int finish(const cli_t *cli, int status, json_t *result, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prints the outcome: a JSON object with --json (result, plus "ok" and
 * "error"), else the message on stdout (success) or stderr. Consumes
 * result. */
static int finish(const cli_t *cli, int status, json_t *result, const char *fmt, ...)
{
    char msg[2560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cli->json) {
        if (!result)
            result = json_object();
        json_object_set_new(result, "ok", json_boolean(status == EXIT_DONE));
        if (status != EXIT_DONE)
            json_object_set_new(result, "error", json_string(msg));
        json_dumpf(result, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    }
    if (status != EXIT_DONE)
        fprintf(stderr, "switchyard routes %s: %s\n", cli->action, msg);
    else if (!cli->json && msg[0])
        printf("%s\n", msg);
    json_decref(result);
    return status;
}

/* ---- file store ---- */

/* The file's array; a missing file is an empty registry (the first put
 * creates it). */
static json_t *file_load(const char *path, bool missing_ok, sy_error_t *err)
{
    struct stat st;
    if (missing_ok && stat(path, &st) != 0 && errno == ENOENT)
        return json_array();
    size_t len;
    char *text = sy_file_read(path, MAX_FILE_BYTES, &len, err);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!doc) {
        sy_error_set(err, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_array(doc)) {
        sy_error_set(err, "%s: expected a JSON array of routes", path);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* Writes the array next to the file, fsyncs, and renames over it. */
static bool file_store(const char *path, json_t *items, sy_error_t *err)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        sy_error_set(err, "%s: out of memory", path);
        return false;
    }
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        sy_error_set(err, "%s: can't create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return false;
    }
    struct stat st;
    if (stat(path, &st) == 0)
        fchmod(fd, st.st_mode & 07777);
    else
        fchmod(fd, 0644);
    FILE *f = fdopen(fd, "w");
    bool ok = f && json_dumpf(items, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF &&
              fflush(f) == 0 && fsync(fd) == 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    else
        close(fd);
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        sy_error_set(err, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

static ssize_t find_path(json_t *items, const char *path)
{
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v)
    {
        const char *p = json_string_value(json_object_get(v, "path"));
        if (p && strcmp(p, path) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* ---- stores ---- */

static bool is_dynamodb(const char *uri)
{
    return strncmp(uri, "dynamodb://", 11) == 0;
}

/* The file a non-DynamoDB store URI names; NULL with err otherwise. */
static const char *store_file_path(const char *uri, sy_error_t *err)
{
    const char *path = sy_file_uri_path(uri);
    if (!path)
        sy_error_set(err, "%s: expected dynamodb://TABLE, file:///abs/path.json or a path", uri);
    return path;
}

/* Every item of the store as plain JSON objects. */
static json_t *store_list(const char *uri, sy_error_t *err)
{
    if (is_dynamodb(uri)) {
        char *table;
        if (!sy_dynamodb_parse_uri(uri, &table, err))
            return NULL;
        json_t *items = sy_dynamodb_scan_all(table, NULL, NULL, err);
        free(table);
        return items;
    }
    const char *path = store_file_path(uri, err);
    if (!path)
        return NULL;
    return file_load(path, false, err);
}

/* Sends req, which it takes, to DynamoDB. NULL req is the caller's
 * json_pack running out of memory. */
static json_t *dynamodb_send(const char *operation, json_t *req, const char *uri, sy_error_t *err)
{
    if (!req) {
        sy_error_set(err, "%s: out of memory", uri);
        return NULL;
    }
    json_t *answer = sy_dynamodb_call(operation, req, uri, err);
    json_decref(req);
    return answer;
}

static bool store_put(const char *uri, json_t *item, sy_error_t *err)
{
    if (is_dynamodb(uri)) {
        char *table;
        if (!sy_dynamodb_parse_uri(uri, &table, err))
            return false;
        json_t *answer = dynamodb_send(
            "PutItem",
            json_pack("{s:s,s:o}", "TableName", table, "Item", sy_dynamodb_marshal_item(item)), uri,
            err);
        free(table);
        bool ok = answer != NULL;
        json_decref(answer);
        return ok;
    }
    const char *path = store_file_path(uri, err);
    if (!path)
        return false;
    json_t *items = file_load(path, true, err);
    if (!items)
        return false;
    ssize_t at = find_path(items, json_string_value(json_object_get(item, "path")));
    if (at >= 0)
        json_array_set(items, (size_t)at, item);
    else
        json_array_append(items, item);
    bool ok = file_store(path, items, err);
    json_decref(items);
    return ok;
}

/* *existed says whether there was an item to delete. */
static bool store_delete(const char *uri, const char *route_path, bool *existed, sy_error_t *err)
{
    *existed = false;
    if (is_dynamodb(uri)) {
        char *table;
        if (!sy_dynamodb_parse_uri(uri, &table, err))
            return false;
        json_t *answer =
            dynamodb_send("DeleteItem",
                          json_pack("{s:s,s:{s:{s:s}},s:s}", "TableName", table, "Key", "path", "S",
                                    route_path, "ReturnValues", "ALL_OLD"),
                          uri, err);
        free(table);
        *existed = answer && json_object_get(answer, "Attributes");
        bool ok = answer != NULL;
        json_decref(answer);
        return ok;
    }
    const char *path = store_file_path(uri, err);
    if (!path)
        return false;
    json_t *items = file_load(path, false, err);
    if (!items)
        return false;
    ssize_t at = find_path(items, route_path);
    bool ok = true;
    if (at >= 0) {
        *existed = true;
        json_array_remove(items, (size_t)at);
        ok = file_store(path, items, err);
    }
    json_decref(items);
    return ok;
}

/* Raises the table's change marker (SPEC §3) after a write, so every
 * switchyard reads the table at its next poll instead of the next resync.
 * Files need none: their content hash is the change check. */
static bool store_raise_marker(const char *uri, sy_error_t *err)
{
    if (!is_dynamodb(uri))
        return true;
    char *table;
    if (!sy_dynamodb_parse_uri(uri, &table, err))
        return false;
    json_t *answer = dynamodb_send("UpdateItem",
                                   json_pack("{s:s,s:{s:{s:s}},s:s,s:{s:{s:s}}}", "TableName",
                                             table, "Key", "path", "S", SY_DYNAMODB_MARKER_PATH,
                                             "UpdateExpression", "ADD generation :one",
                                             "ExpressionAttributeValues", ":one", "N", "1"),
                                   uri, err);
    free(table);
    bool ok = answer != NULL;
    json_decref(answer);
    return ok;
}

/* The write went through but the marker did not move: say so, with what
 * to fix, and fail the step so the pipeline notices. */
static int finish_marker_failed(const cli_t *cli, json_t *result, const char *done,
                                const sy_error_t *err)
{
    const char *table = strncmp(cli->routes, "dynamodb://", 11) == 0 ? cli->routes + 11 : "";
    bool denied = strstr(err->message, "AccessDenied") != NULL;
    return finish(cli, EXIT_REFUSED, result,
                  "%s, but the change marker was not raised: %s. The change goes live only at "
                  "the next full resync of each switchyard (--resync-interval, 300 s by "
                  "default), not at its next poll. %s: dynamodb:UpdateItem on the item "
                  "path=\"%s\" of table %s (see deploy/iam)",
                  done, err->message, denied ? "Missing permission" : "Needed permission",
                  SY_DYNAMODB_MARKER_PATH, table);
}

/* ---- policy check ---- */

static char *fetch_document(const char *uri, size_t *len, sy_error_t *err)
{
    if (strncmp(uri, "s3://", 5) == 0) {
        char etag[256] = "", *body = NULL;
        if (sy_s3_get_object(uri, etag, &body, len, err) != SY_S3_OK)
            return NULL;
        return body;
    }
    const char *path = sy_file_uri_path(uri);
    if (!path) {
        sy_error_set(err, "%s: expected s3://BUCKET/KEY, file:///abs/path.json or a path", uri);
        return NULL;
    }
    return sy_file_read(path, MAX_FILE_BYTES, len, err);
}

/* EXIT_DONE when the policy accepts the route, EXIT_REFUSED with the
 * reason, EXIT_USAGE when the policy can't be read. */
static int check_against_policy(const char *policy_uri, json_t *item, char *reason, size_t cap)
{
    sy_error_t err = {{0}};
    size_t len = 0;
    char *text = fetch_document(policy_uri, &len, &err);
    if (!text) {
        snprintf(reason, cap, "%s", err.message);
        return EXIT_USAGE;
    }
    sy_policy_t *policy = sy_policy_parse(text, len, policy_uri, &err);
    free(text);
    if (!policy) {
        snprintf(reason, cap, "%s", err.message);
        return EXIT_USAGE;
    }
    sy_route_list_t *list = calloc(1, sizeof *list);
    if (list)
        list->items = calloc(1, sizeof *list->items);
    if (!list || !list->items) {
        free(list);
        sy_policy_free(policy);
        snprintf(reason, cap, "out of memory");
        return EXIT_USAGE;
    }
    list->count = 1;
    sy_route_from_json(&list->items[0], item, "route", false);
    sy_snapshot_t *snap = sy_snapshot_build(policy, list, &err);
    if (!snap) {
        snprintf(reason, cap, "%s", err.message);
        return EXIT_USAGE;
    }
    const char *why = snap->routes->items[0].rejected_reason;
    int status = why ? EXIT_REFUSED : EXIT_DONE;
    if (why)
        snprintf(reason, cap, "the policy %s would reject it: %s", policy_uri, why);
    sy_snapshot_unref(snap);
    return status;
}

/* ---- actions ---- */

static json_t *build_item(const cli_t *cli, char *reason, size_t cap)
{
    json_t *item = json_object();
    json_object_set_new(item, "path", json_string(cli->path));
    json_object_set_new(item, "target", json_string(cli->target));
    if (cli->auth)
        json_object_set_new(item, "auth", json_string(cli->auth));
    if (cli->domain)
        json_object_set_new(item, "domain", json_string(cli->domain));
    if (cli->methods) {
        json_t *methods = json_array();
        const char *p = cli->methods;
        while (*p) {
            size_t n = strcspn(p, ",");
            json_array_append_new(methods, json_stringn(p, n));
            p += n;
            if (*p == ',')
                p++;
        }
        json_object_set_new(item, "methods", methods);
    }
    if (cli->strip_prefix)
        json_object_set_new(item, "strip_prefix", json_true());
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(item, "updated_at", json_string(now));

    /* The router's own item parser: what it refuses, we refuse to write. */
    sy_route_list_t *list = calloc(1, sizeof *list);
    sy_route_t *route = calloc(1, sizeof *route);
    bool valid = list && route && sy_route_from_json(route, item, "route", false);
    if (!valid)
        snprintf(reason, cap, "%s",
                 route && route->rejected_reason ? route->rejected_reason : "out of memory");
    if (list && route) {
        list->items = route;
        list->count = 1;
        sy_route_list_free(list);
    } else {
        free(list);
        free(route);
    }
    if (!valid) {
        json_decref(item);
        return NULL;
    }
    return item;
}

static int do_put(const cli_t *cli)
{
    if (!cli->path || !cli->target)
        return finish(cli, EXIT_USAGE, NULL, "--path and --target are required");
    char reason[1024];
    json_t *item = build_item(cli, reason, sizeof reason);
    if (!item)
        return finish(cli, EXIT_REFUSED, NULL, "refused: %s", reason);
    if (cli->check_policy) {
        int status = check_against_policy(cli->check_policy, item, reason, sizeof reason);
        if (status != EXIT_DONE) {
            json_t *r = json_pack("{s:O}", "item", item);
            json_decref(item);
            return finish(cli, status, r, "%s%s", status == EXIT_REFUSED ? "refused: " : "",
                          reason);
        }
    }
    sy_error_t err = {{0}};
    if (!store_put(cli->routes, item, &err)) {
        json_decref(item);
        return finish(cli, EXIT_USAGE, NULL, "%s", err.message);
    }
    json_t *r = json_pack("{s:s,s:O}", "action", "put", "item", item);
    json_decref(item);
    char *target = sy_redact_url_dup(cli->target);
    if (!store_raise_marker(cli->routes, &err)) {
        char done[1200];
        snprintf(done, sizeof done, "put %s -> %s in %s: the route is written", cli->path,
                 target ? target : "(target)", cli->routes);
        free(target);
        return finish_marker_failed(cli, r, done, &err);
    }
    int status = finish(cli, EXIT_DONE, r, "put %s -> %s in %s", cli->path,
                        target ? target : "(target)", cli->routes);
    free(target);
    return status;
}

static int do_delete(const cli_t *cli)
{
    if (!cli->path)
        return finish(cli, EXIT_USAGE, NULL, "--path is required");
    sy_error_t err = {{0}};
    bool existed;
    if (!store_delete(cli->routes, cli->path, &existed, &err))
        return finish(cli, EXIT_USAGE, NULL, "%s", err.message);
    json_t *r =
        json_pack("{s:s,s:s,s:b}", "action", "delete", "path", cli->path, "deleted", existed);
    if (existed && !store_raise_marker(cli->routes, &err)) {
        char done[1200];
        snprintf(done, sizeof done, "deleted %s from %s", cli->path, cli->routes);
        return finish_marker_failed(cli, r, done, &err);
    }
    /* Deleting an absent route succeeds: teardown steps must be safe to
     * re-run. */
    return finish(cli, EXIT_DONE, r, "%s %s from %s", existed ? "deleted" : "no route", cli->path,
                  cli->routes);
}

static int do_list(const cli_t *cli)
{
    sy_error_t err = {{0}};
    json_t *items = store_list(cli->routes, &err);
    if (!items)
        return finish(cli, EXIT_USAGE, NULL, "%s", err.message);
    size_t len;
    char *canonical = sy_dynamodb_items_text(items, &len); /* sorted, whatever the store */
    json_decref(items);
    items = canonical ? json_loadb(canonical, len, 0, NULL) : NULL;
    free(canonical);
    if (!items)
        return finish(cli, EXIT_USAGE, NULL, "out of memory");
    size_t i;
    json_t *v;
    /* A store is read by more people than write it: a credential someone
     * put in a target (the router refuses such routes) is not repeated. */
    json_array_foreach(items, i, v)
    {
        const char *target = json_string_value(json_object_get(v, "target"));
        char *shown = sy_redact_url_dup(target);
        if (shown)
            json_object_set_new(v, "target", json_string(shown));
        free(shown);
    }
    if (cli->json)
        return finish(cli, EXIT_DONE, json_pack("{s:o}", "routes", items), "%s", "");
    json_array_foreach(items, i, v)
    {
        sy_route_t route;
        char name[32];
        snprintf(name, sizeof name, "[%zu]", i);
        bool valid = sy_route_from_json(&route, v, name, true);
        const char *path = json_string_value(json_object_get(v, "path"));
        const char *target = json_string_value(json_object_get(v, "target"));
        const char *auth = json_string_value(json_object_get(v, "auth"));
        printf("%-30s %-50s auth=%s%s%s%s\n", path ? path : "(no path)", target ? target : "-",
               auth ? auth : "(default)", valid && !route.enabled ? "  (disabled)" : "",
               valid ? "" : "  INVALID: ",
               valid ? "" : (route.rejected_reason ? route.rejected_reason : ""));
        sy_route_list_t *one = calloc(1, sizeof *one);
        if (one) {
            one->items = malloc(sizeof route);
            if (one->items) {
                memcpy(one->items, &route, sizeof route);
                one->count = 1;
            }
            sy_route_list_free(one);
        }
    }
    size_t n = json_array_size(items);
    json_decref(items);
    return finish(cli, EXIT_DONE, NULL, "%zu routes in %s", n, cli->routes);
}

int sy_routes_cli(int argc, char **argv)
{
    cli_t cli = {.action = argc > 1 ? argv[1] : ""};
    static const struct option opts[] = {
        {"routes", required_argument, 0, 'r'}, {"path", required_argument, 0, 'p'},
        {"target", required_argument, 0, 't'}, {"auth", required_argument, 0, 'a'},
        {"domain", required_argument, 0, 'd'}, {"methods", required_argument, 0, 'm'},
        {"strip-prefix", no_argument, 0, 's'}, {"check-policy", required_argument, 0, 'c'},
        {"json", no_argument, 0, 'j'},         {0, 0, 0, 0}};
    bool known = strcmp(cli.action, "put") == 0 || strcmp(cli.action, "delete") == 0 ||
                 strcmp(cli.action, "list") == 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli.json = true;
    if (!known)
        return finish(&cli, EXIT_USAGE, NULL,
                      "expected put, delete or list (switchyard routes put --routes URI --path "
                      "/p --target https://...)");
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            cli.routes = optarg;
            break;
        case 'p':
            cli.path = optarg;
            break;
        case 't':
            cli.target = optarg;
            break;
        case 'a':
            cli.auth = optarg;
            break;
        case 'd':
            cli.domain = optarg;
            break;
        case 'm':
            cli.methods = optarg;
            break;
        case 's':
            cli.strip_prefix = true;
            break;
        case 'c':
            cli.check_policy = optarg;
            break;
        case 'j':
            cli.json = true;
            break;
        default:
            return finish(&cli, EXIT_USAGE, NULL, "unknown or incomplete option '%s'",
                          argv[optind]);
        }
    }
    if (optind < argc - 1)
        return finish(&cli, EXIT_USAGE, NULL, "unexpected argument '%s'", argv[optind + 1]);
    if (!cli.routes)
        return finish(&cli, EXIT_USAGE, NULL, "--routes URI is required");
    bool put = strcmp(cli.action, "put") == 0;
    if (!put && (cli.target || cli.auth || cli.domain || cli.methods || cli.strip_prefix ||
                 cli.check_policy))
        return finish(&cli, EXIT_USAGE, NULL,
                      "--target, --auth, --domain, --methods, --strip-prefix and "
                      "--check-policy belong to put");
    if (strcmp(cli.action, "list") == 0 && cli.path)
        return finish(&cli, EXIT_USAGE, NULL, "list takes no --path");
    if (put)
        return do_put(&cli);
    if (strcmp(cli.action, "delete") == 0)
        return do_delete(&cli);
    return do_list(&cli);
}
