/*
 * main.c: the command line (SPEC §1). Parses options, wires the planes
 * together and owns the process lifetime: only main exits.
 *
 * Signals are blocked in every thread (the mask is set before any thread
 * starts) and taken synchronously with sigwait here, so no handler ever
 * runs inside an event loop.
 *
 * Shutdown is bounded: from SIGTERM/SIGINT, in-flight requests get
 * --drain-timeout, then stopping gets SY_STOP_GRACE_MS. A watchdog thread
 * enforces that whatever the other threads do (a wedged worker, a config
 * fetch that hangs): past it, it logs what main was waiting for and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/admin.h"
#include "auth/jwks.h"
#include "control/routes_cli.h"
#include "control/sources.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/redact.h"
#include "policy/snapshot.h"
#include "net/resolver.h"
#include "net/tls.h"
#include "proxy/server.h"

#ifndef SY_VERSION /* the Makefile passes the VERSION file */
#define SY_VERSION "0.0.0-dev"
#endif

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
    fputs("switchyard " SY_VERSION " - one front door for many private API Gateways\n"
          "\n"
          "usage:\n"
          "  switchyard serve  --policy URI --routes URI [options]\n"
          "  switchyard check  --policy URI --routes URI [--json]\n"
          "  switchyard routes put    --routes URI --path /orders --target URL [--auth NAME]\n"
          "                           [--domain D] [--methods GET,POST] [--strip-prefix]\n"
          "                           [--check-policy URI] [--json]\n"
          "  switchyard routes delete --routes URI --path /orders [--json]\n"
          "  switchyard routes list   --routes URI [--json]\n"
          "  switchyard healthcheck [--admin ADDR:PORT] [--ready]\n"
          "  switchyard --version | --help\n"
          "\n"
          "URIs: s3://bucket/key, dynamodb://table, file:///abs/path.json or a plain path.\n"
          "\n"
          "serve options:\n"
          "  --listen ADDR:PORT        plain HTTP listener, repeatable [0.0.0.0:8080]\n"
          "  --tls-listen ADDR:PORT    HTTPS listener, repeatable (with --tls-cert, --tls-key)\n"
          "  --tls-cert FILE           PEM certificate chain; re-read on SIGHUP\n"
          "  --tls-key FILE            PEM private key; re-read on SIGHUP\n"
          "  --admin-listen ADDR:PORT  admin endpoints [127.0.0.1:9901]\n"
          "  --workers N               event-loop threads [number of CPUs]\n"
          "  --poll-interval S         seconds between polls of each store [10]\n"
          "  --access-log PATH         JSON lines; - is stdout, off disables [-]\n"
          "  --log-level L             error warn info debug [info]\n"
          "  --drain-timeout S         on SIGTERM/SIGINT: finish in-flight, then exit [20]\n"
          "  --resolver ADDR[:PORT]    DNS server for upstream names, repeatable\n"
          "                            (IPv6 as [ADDR]:PORT) [/etc/resolv.conf]\n"
          "  --resync-interval S       full read of a DynamoDB table whose change marker has\n"
          "                            not moved [300]\n"
          "  --route-metrics on|off    per-route metric labels; off counts every route as\n"
          "                            route=\"(any)\" for very large route tables [on]\n",
          out);
}

/* `switchyard CMD --help` (or -h anywhere among CMD's arguments): that
 * command's usage on stdout, exit 0. serve's options are the main usage. */
static bool command_help(const char *cmd, int argc, char **argv)
{
    bool asked = false;
    for (int i = 1; i < argc && !asked; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        asked = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    }
    if (!asked)
        return false;
    const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : "";
    if (strcmp(cmd, "serve") == 0) {
        usage(stdout);
    } else if (strcmp(cmd, "check") == 0) {
        fputs("usage: switchyard check --policy URI --routes URI [--json]\n"
              "\n"
              "Loads both documents as serve would, prints every active, rejected and\n"
              "disabled route and every problem found, and warns about destinations\n"
              "without bindings. Exit 0: both documents load and no route is rejected;\n"
              "1: a route is rejected; 2: a document can't be read or parsed (all of\n"
              "its problems are listed). --json prints the same as one JSON object.\n"
              "URIs: s3://bucket/key, dynamodb://table, file:///abs/path.json or a path.\n",
              stdout);
    } else if (strcmp(cmd, "healthcheck") == 0) {
        fputs("usage: switchyard healthcheck [--admin ADDR:PORT] [--ready]\n"
              "\n"
              "Asks the admin listener [127.0.0.1:9901] for /healthz (/readyz with\n"
              "--ready). Exit 0 on 200, 1 otherwise: the container health check.\n",
              stdout);
    } else if (strcmp(sub, "put") == 0) {
        fputs("usage: switchyard routes put --routes URI --path /orders --target URL\n"
              "           [--auth NAME] [--domain D] [--methods GET,POST] [--strip-prefix]\n"
              "           [--check-policy URI] [--json]\n"
              "\n"
              "Writes one route item (replacing the item with the same path). With\n"
              "--check-policy, the route is first judged against that policy (allowed\n"
              "destination, bindings, auth, domain) and nothing is written when it would\n"
              "be rejected (exit 1). Exit 2: bad arguments or the store can't be read.\n",
              stdout);
    } else if (strcmp(sub, "delete") == 0) {
        fputs("usage: switchyard routes delete --routes URI --path /orders [--json]\n"
              "\n"
              "Deletes the route item with that path (exit 0 also when none existed).\n",
              stdout);
    } else if (strcmp(sub, "list") == 0) {
        fputs("usage: switchyard routes list --routes URI [--json]\n"
              "\n"
              "Prints every route item of the registry (targets shown redacted).\n",
              stdout);
    } else {
        fputs("usage:\n"
              "  switchyard routes put    --routes URI --path /orders --target URL [--auth NAME]\n"
              "                           [--domain D] [--methods GET,POST] [--strip-prefix]\n"
              "                           [--check-policy URI] [--json]\n"
              "  switchyard routes delete --routes URI --path /orders [--json]\n"
              "  switchyard routes list   --routes URI [--json]\n"
              "\n"
              "switchyard routes put --help (delete, list) says more about each.\n",
              stdout);
    }
    return true;
}

__attribute__((format(printf, 1, 2))) static int fail_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "switchyard: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'switchyard --help'.\n");
    va_end(ap);
    return EXIT_USAGE;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- shutdown watchdog ------------------------------------------------------ */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC, like sy_now_ms */
    bool done;
    uint64_t deadline_ms;
    double drain_s;
    _Atomic(const char *) step; /* what main is waiting for */
} watchdog = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *watchdog_main(void *arg)
{
    struct timespec at = {(time_t)(watchdog.deadline_ms / 1000),
                          (long)(watchdog.deadline_ms % 1000) * 1000000L};
    pthread_mutex_lock(&watchdog.lock);
    while (!watchdog.done) {
        int rc = pthread_cond_timedwait(&watchdog.cond, &watchdog.lock, &at);
        if (rc == ETIMEDOUT && !watchdog.done) {
            char drain[32];
            snprintf(drain, sizeof drain, "%g", watchdog.drain_s);
            sy_log(SY_LOG_ERROR, "shutdown did not finish in time; exiting without waiting further",
                   "waiting_for", atomic_load(&watchdog.step), "drain_timeout_s", drain, NULL);
            _exit(EXIT_RUNTIME); /* the threads we would wait for cannot be trusted */
        }
    }
    pthread_mutex_unlock(&watchdog.lock);
    return NULL;
}

static bool watchdog_start(uint64_t deadline_ms, double drain_s)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&watchdog.cond, &attr);
    pthread_condattr_destroy(&attr);
    watchdog.deadline_ms = deadline_ms;
    watchdog.drain_s = drain_s;
    atomic_store(&watchdog.step, "starting the drain");
    return pthread_create(&watchdog.thread, NULL, watchdog_main, NULL) == 0;
}

static void watchdog_step(const char *what)
{
    atomic_store(&watchdog.step, what);
}

static void watchdog_stop(bool started)
{
    if (!started)
        return;
    pthread_mutex_lock(&watchdog.lock);
    watchdog.done = true;
    pthread_cond_signal(&watchdog.cond);
    pthread_mutex_unlock(&watchdog.lock);
    pthread_join(watchdog.thread, NULL);
    pthread_cond_destroy(&watchdog.cond);
}

/* ---- serve ---------------------------------------------------------------- */

static int cmd_serve(int argc, char **argv)
{
    sy_server_config_t server = {0};
    const char *policy = NULL, *routes = NULL, *admin = "127.0.0.1:9901", *access_log = "-";
    double poll = 10, drain = 20, resync = 300;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    server.workers = cpus > 0 ? (int)cpus : 1;
    sy_log_level_t level = SY_LOG_INFO;

    /* clang-format off */
    static const struct option opts[] = {
        {"policy", required_argument, 0, 'p'},        {"routes", required_argument, 0, 'r'},
        {"listen", required_argument, 0, 'l'},        {"admin-listen", required_argument, 0, 'a'},
        {"workers", required_argument, 0, 'w'},       {"poll-interval", required_argument, 0, 'i'},
        {"access-log", required_argument, 0, 'A'},    {"log-level", required_argument, 0, 'L'},
        {"drain-timeout", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
        {"tls-listen", required_argument, 0, 'T'},    {"tls-cert", required_argument, 0, 'C'},
        {"tls-key", required_argument, 0, 'K'},       {"resync-interval", required_argument, 0, 'R'},
        {"resolver", required_argument, 0, 'N'},      {"route-metrics", required_argument, 0, 'M'},
        {0, 0, 0, 0}};
    /* clang-format on */
    const char *tls_cert = NULL, *tls_key = NULL;
    char resolvers[1024] = "";
    optind = 1;
    opterr = 0;
    int ch;
    double workers;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            policy = optarg;
            break;
        case 'r':
            routes = optarg;
            break;
        case 'l':
            if (server.listen_count == SY_MAX_LISTEN)
                return fail_usage("too many --listen addresses (at most 16)");
            server.listen[server.listen_count++] = optarg;
            break;
        case 'a':
            admin = optarg;
            break;
        case 'T':
            if (server.tls_listen_count == SY_MAX_LISTEN)
                return fail_usage("too many --tls-listen addresses (at most 16)");
            server.tls_listen[server.tls_listen_count++] = optarg;
            break;
        case 'C':
            tls_cert = optarg;
            break;
        case 'K':
            tls_key = optarg;
            break;
        case 'w':
            if (!parse_double(optarg, 1, SY_MAX_WORKERS, &workers) || workers != (int)workers)
                return fail_usage("--workers: expected an integer 1-64, got '%s'", optarg);
            server.workers = (int)workers;
            break;
        case 'i':
            if (!parse_double(optarg, 0.05, 86400, &poll))
                return fail_usage("--poll-interval: expected seconds 0.05-86400, got '%s'", optarg);
            break;
        case 'R':
            if (!parse_double(optarg, 1, 86400, &resync))
                return fail_usage("--resync-interval: expected seconds 1-86400, got '%s'", optarg);
            break;
        case 'A':
            access_log = optarg;
            break;
        case 'L':
            if (!sy_log_level_parse(optarg, &level))
                return fail_usage("--log-level: expected error, warn, info or debug, got '%s'",
                                  optarg);
            break;
        case 'd':
            if (!parse_double(optarg, 0, 3600, &drain))
                return fail_usage("--drain-timeout: expected seconds 0-3600, got '%s'", optarg);
            break;
        case 'N': {
            size_t used = strlen(resolvers);
            if (!optarg[0] || strchr(optarg, ',') || used + strlen(optarg) + 2 > sizeof resolvers)
                return fail_usage("--resolver: expected ADDR[:PORT], got '%s'", optarg);
            snprintf(resolvers + used, sizeof resolvers - used, "%s%s", used ? "," : "", optarg);
            break;
        }
        case 'M':
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                return fail_usage("--route-metrics: expected on or off, got '%s'", optarg);
            sy_metrics_set_route_labels(strcmp(optarg, "on") == 0);
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            return fail_usage("serve: unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("serve: unexpected argument '%s'", argv[optind]);
    if (!policy || !routes)
        return fail_usage("serve: --policy and --routes are required");
    if (server.tls_listen_count > 0 && (!tls_cert || !tls_key))
        return fail_usage("--tls-listen needs --tls-cert and --tls-key");
    if (server.tls_listen_count == 0 && (tls_cert || tls_key))
        return fail_usage("--tls-cert and --tls-key go with --tls-listen");
    if (server.listen_count == 0 && server.tls_listen_count == 0)
        server.listen[server.listen_count++] = "0.0.0.0:8080";
    if (server.workers > SY_MAX_WORKERS)
        server.workers = SY_MAX_WORKERS;

    sy_error_t err = {{0}};
    struct sockaddr_storage ss;
    for (size_t i = 0; i < server.listen_count; i++)
        if (!sy_parse_listen(server.listen[i], &ss, &err))
            return fail_usage("--listen: %s", err.message);
    for (size_t i = 0; i < server.tls_listen_count; i++)
        if (!sy_parse_listen(server.tls_listen[i], &ss, &err))
            return fail_usage("--tls-listen: %s", err.message);
    if (tls_cert && !sy_tls_server_load(tls_cert, tls_key, &err)) {
        fprintf(stderr, "switchyard: %s\n", err.message);
        return EXIT_USAGE;
    }
    if (!sy_parse_listen(admin, &ss, &err))
        return fail_usage("--admin-listen: %s", err.message);

    sy_log_set_level(level);
    if (!sy_access_log_open(access_log)) {
        fprintf(stderr, "switchyard: --access-log %s: %s\n", access_log, strerror(errno));
        return EXIT_USAGE;
    }

    /* Block the signals we wait for, in this thread and every thread it
     * starts from here on. */
    sigset_t wait_set;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGTERM);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &wait_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sy_metrics_init(server.workers);
    if (!sy_resolver_global_init(resolvers, &err))
        return fail_usage("%s", err.message);
    /* Local files are read here (a typo exits 2 before anything listens);
     * remote stores are left to their pollers, started after the
     * listeners, so a store that hangs at start leaves a task that answers
     * /healthz 200, /readyz 503 and traffic 503 with Retry-After, not one
     * that refuses connections (SPEC §4). */
    sy_sources_config_t sources = {.policy_uri = policy,
                                   .routes_uri = routes,
                                   .poll_interval_s = poll,
                                   .resync_interval_s = resync,
                                   .defer_remote = true};
    if (!sy_sources_load_initial(&sources, &err)) {
        fprintf(stderr, "switchyard: %s\n", err.message);
        sy_log(SY_LOG_ERROR, "configuration cannot be used", "error", err.message, NULL);
        return EXIT_USAGE;
    }
    if (!sy_server_start(&server, &err)) {
        fprintf(stderr, "switchyard: %s\n", err.message);
        sy_log(SY_LOG_ERROR, "cannot start listeners", "error", err.message, NULL);
        return EXIT_RUNTIME;
    }
    if (!sy_admin_start(admin, &err)) {
        fprintf(stderr, "switchyard: %s\n", err.message);
        sy_log(SY_LOG_ERROR, "cannot start admin listener", "error", err.message, NULL);
        return EXIT_RUNTIME;
    }
    if (!sy_sources_start(&err)) {
        fprintf(stderr, "switchyard: %s\n", err.message);
        return EXIT_RUNTIME;
    }
    char workers_str[16], fd_limit[24], cap[24];
    snprintf(workers_str, sizeof workers_str, "%d", server.workers);
    sy_server_limits_t limits = sy_server_limits();
    snprintf(fd_limit, sizeof fd_limit, "%llu", (unsigned long long)limits.fd_limit);
    snprintf(cap, sizeof cap, "%llu", (unsigned long long)limits.max_clients);
    sy_log(SY_LOG_INFO, "switchyard started", "version", SY_VERSION, "listen", server.listen[0],
           "admin", admin, "workers", workers_str, "fd_limit", fd_limit,
           "max_connections_per_worker", cap, NULL);

    int sig = 0;
    for (;;) {
        if (sigwait(&wait_set, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        /* SIGHUP: re-read the listener certificate and key. New connections
         * get them; open ones keep the context they started with. */
        if (!tls_cert) {
            sy_log(SY_LOG_INFO, "SIGHUP: no TLS listener, nothing to reload", NULL);
        } else if (sy_tls_server_load(tls_cert, tls_key, &err)) {
            sy_log(SY_LOG_INFO, "TLS certificate reloaded", "cert", tls_cert, NULL);
        } else {
            sy_log(SY_LOG_ERROR, "TLS certificate reload failed; keeping the previous one", "error",
                   err.message, NULL);
        }
    }
    sy_log(SY_LOG_INFO, "draining", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    uint64_t drain_deadline = sy_now_ms() + (uint64_t)(drain * 1000.0);
    bool watched = watchdog_start(drain_deadline + SY_STOP_GRACE_MS, drain);
    if (!watched)
        sy_log(SY_LOG_WARN, "cannot start the shutdown watchdog; the drain is not bounded", NULL);
    sy_admin_set_draining();
    /* Workers stop accepting first: a control-plane fetch that takes its
     * time must not keep them taking new connections. */
    sy_server_drain_begin();
    watchdog_step("the configuration poller to stop (a fetch in progress)");
    sy_sources_stop();
    watchdog_step("the workers to finish in-flight requests and stop");
    sy_server_drain(drain_deadline);
    watchdog_step("the admin listener to stop");
    sy_admin_stop();
    sy_snapshot_publish(NULL); /* release the last snapshot: leak checks stay meaningful */
    watchdog_step("the JWKS fetcher to stop (a fetch in progress)");
    sy_jwks_shutdown();
    sy_resolver_global_cleanup();
    watchdog_stop(watched);
    sy_log(SY_LOG_INFO, "stopped", NULL);
    return EXIT_OK;
}

/* ---- check ---------------------------------------------------------------- */

/* One warning per destination without bindings: any route may target it,
 * with any auth, which is what bindings exist to prevent. */
static json_t *check_warnings(const sy_policy_t *policy)
{
    json_t *warnings = json_array();
    for (size_t i = 0; i < policy->destination_count; i++) {
        const sy_destination_t *d = &policy->destinations[i];
        const char *missing = !d->allowed_paths && !d->allowed_auth
                                  ? "allowed_paths and allowed_auth"
                              : !d->allowed_paths ? "allowed_paths"
                              : !d->allowed_auth  ? "allowed_auth"
                                                  : NULL;
        if (!missing)
            continue;
        char text[400];
        snprintf(text, sizeof text,
                 "destinations[%zu] (%s://%s:%u) has no %s: a route at any path, with any auth, "
                 "may target it",
                 i, d->https ? "https" : "http", d->host, (unsigned)d->port, missing);
        json_array_append_new(warnings, json_string(text));
    }
    return warnings;
}

static int cmd_check(int argc, char **argv)
{
    const char *policy = NULL, *routes = NULL;
    bool json = false;
    static const struct option opts[] = {{"policy", required_argument, 0, 'p'},
                                         {"routes", required_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            policy = optarg;
            break;
        case 'r':
            routes = optarg;
            break;
        case 'j':
            json = true;
            break;
        default:
            return fail_usage("check: unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("check: unexpected argument '%s'", argv[optind]);
    if (!policy || !routes)
        return fail_usage("check: --policy and --routes are required");

    sy_error_t err = {{0}};
    sy_problems_t problems = {0};
    sy_snapshot_t *snap = sy_sources_check_once(policy, routes, &err, &problems);
    if (!snap) {
        /* Every problem of a bad policy, one per line, so one run is
         * enough to fix them all. */
        json_t *errors = json_array();
        for (size_t i = 0; i < problems.count; i++)
            json_array_append_new(errors, json_string(problems.items[i]));
        if (problems.count == 0)
            json_array_append_new(errors, json_string(err.message));
        if (json) {
            json_t *o = json_pack("{s:b,s:s,s:O}", "ok", 0, "error", err.message, "errors", errors);
            json_dumpf(o, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
            json_decref(o);
        }
        size_t i;
        json_t *v;
        json_array_foreach(errors, i, v)
        {
            fprintf(stderr, "switchyard: %s\n", json_string_value(v));
        }
        if (json_array_size(errors) > 1)
            fprintf(stderr, "switchyard: %zu problems\n", json_array_size(errors));
        json_decref(errors);
        sy_problems_free(&problems);
        return EXIT_USAGE;
    }
    json_t *warnings = check_warnings(snap->policy);
    json_t *active = json_array(), *rejected = json_array(), *disabled = json_array();
    for (size_t i = 0; i < snap->routes->count; i++) {
        const sy_route_t *r = &snap->routes->items[i];
        const char *path = r->path ? r->path : "(invalid path)";
        char target_buf[600]; /* check output lands in CI logs: no credentials */
        const char *target = NULL;
        if (r->target) {
            sy_redact_url(target_buf, sizeof target_buf, sy_slice_cstr(r->target));
            target = target_buf;
        }
        if (r->rejected_reason)
            json_array_append_new(rejected, json_pack("{s:s,s:s?,s:s}", "path", path, "target",
                                                      target, "reason", r->rejected_reason));
        else if (!r->enabled)
            json_array_append_new(disabled, json_pack("{s:s}", "path", path));
        else
            json_array_append_new(active,
                                  json_pack("{s:s,s:s?,s:s?}", "path", path, "target", target,
                                            "auth", r->auth ? r->auth->name : NULL));
    }
    size_t nrejected = json_array_size(rejected);
    if (json) {
        json_t *o = json_pack("{s:b,s:o,s:o,s:o,s:O}", "ok", nrejected == 0, "active", active,
                              "rejected", rejected, "disabled", disabled, "warnings", warnings);
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(active, i, v)
        {
            printf("active    %s -> %s (auth %s)\n", json_string_value(json_object_get(v, "path")),
                   json_string_value(json_object_get(v, "target")),
                   json_string_value(json_object_get(v, "auth")));
        }
        json_array_foreach(disabled, i, v)
        {
            printf("disabled  %s\n", json_string_value(json_object_get(v, "path")));
        }
        json_array_foreach(rejected, i, v)
        {
            printf("rejected  %s: %s\n", json_string_value(json_object_get(v, "path")),
                   json_string_value(json_object_get(v, "reason")));
        }
        printf("%zu active, %zu rejected, %zu disabled\n", json_array_size(active), nrejected,
               json_array_size(disabled));
        json_decref(active);
        json_decref(rejected);
        json_decref(disabled);
    }
    size_t i;
    json_t *v;
    json_array_foreach(warnings, i, v)
    {
        fprintf(stderr, "switchyard: warning: %s\n", json_string_value(v));
    }
    json_decref(warnings);
    sy_snapshot_unref(snap);
    return nrejected == 0 ? EXIT_OK : 1;
}

/* ---- healthcheck ------------------------------------------------------------ */

static int cmd_healthcheck(int argc, char **argv)
{
    const char *admin = "127.0.0.1:9901";
    bool ready = false;
    static const struct option opts[] = {
        {"admin", required_argument, 0, 'a'}, {"ready", no_argument, 0, 'r'}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'a')
            admin = optarg;
        else if (ch == 'r')
            ready = true;
        else
            return fail_usage("healthcheck: unknown or incomplete option '%s'", argv[optind - 1]);
    }
    struct sockaddr_storage ss;
    sy_error_t err = {{0}};
    if (!sy_parse_listen(admin, &ss, &err))
        return fail_usage("--admin: %s", err.message);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return EXIT_RUNTIME;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    socklen_t len =
        ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        fprintf(stderr, "switchyard healthcheck: %s: %s\n", admin, strerror(errno));
        close(fd);
        return EXIT_RUNTIME;
    }
    char req[128];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 ready ? "/readyz" : "/healthz");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return EXIT_RUNTIME;
    }
    char resp[64] = {0};
    ssize_t got = 0;
    while (got < 12) {
        ssize_t r = read(fd, resp + got, sizeof resp - 1 - (size_t)got);
        if (r <= 0)
            break;
        got += r;
    }
    close(fd);
    bool ok = got >= 12 && strncmp(resp, "HTTP/1.1 200", 12) == 0;
    if (!ok)
        fprintf(stderr, "switchyard healthcheck: %s not ready\n", admin);
    return ok ? EXIT_OK : EXIT_RUNTIME;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("switchyard %s\n", SY_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if ((strcmp(cmd, "serve") == 0 || strcmp(cmd, "check") == 0 ||
         strcmp(cmd, "healthcheck") == 0 || strcmp(cmd, "routes") == 0) &&
        command_help(cmd, argc - 1, argv + 1))
        return EXIT_OK;
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "healthcheck") == 0)
        return cmd_healthcheck(argc - 1, argv + 1);
    if (strcmp(cmd, "routes") == 0)
        return sy_routes_cli(argc - 1, argv + 1);
    fprintf(stderr, "switchyard: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
