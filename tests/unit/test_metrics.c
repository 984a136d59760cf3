/*
 * test_metrics.c: the /metrics counters: per-worker slots sum to the right
 * totals, histograms are cumulative, label values are escaped, and the
 * whole output is well-formed Prometheus text, checked line by line.
 * Counters are process-global, so each test uses its own route paths or
 * compares before and after.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/metrics.h"
#include "http/parser.h"

static char *render(const sy_metrics_config_view_t *view)
{
    size_t len = 0;
    char *text = sy_metrics_render(view, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* The value of the sample line that starts with exactly `series` followed
 * by a space; fails the test when there is none. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    fail_msg("series not found: %s", series);
    return NAN;
}

static double sample_or_zero(const char *series)
{
    char *text = render(NULL);
    size_t n = strlen(series);
    double v = 0;
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            v = strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(text);
    return v;
}

enum { PER_THREAD = 20000, THREADS = 4 };

typedef struct {
    int worker;
    sy_route_stats_t *route;
} worker_arg_t;

static void *worker_main(void *p)
{
    worker_arg_t *arg = p;
    for (int i = 0; i < PER_THREAD; i++)
        sy_metrics_request(arg->worker, arg->route, i % 4 == 0 ? 503 : 200, 0.002);
    sy_metrics_destination_error(arg->worker, "dest.example", SY_UPSTREAM_ERR_TIMEOUT);
    sy_metrics_gauge_add(arg->worker, SY_GAUGE_CLIENT_CONNECTIONS, 3);
    return NULL;
}

static void test_workers_sum(void **state)
{
    (void)state;
    sy_route_stats_t *route = sy_metrics_route("/workers");
    assert_non_null(route);
    assert_ptr_equal(route, sy_metrics_route("/workers"));
    assert_ptr_not_equal(route, sy_metrics_route("/workers/other"));

    double timeouts_before = sample_or_zero(
        "switchyard_upstream_errors_total{destination=\"dest.example\",kind=\"timeout\"}");
    double conns_before = sample_or_zero("switchyard_client_connections");

    pthread_t threads[THREADS];
    worker_arg_t args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        /* Worker 70 is past SY_MAX_WORKERS: folded, still counted. */
        args[t] = (worker_arg_t){t == 3 ? 70 : t, route};
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    char *text = render(NULL);
    double ok = sample(text, "switchyard_requests_total{route=\"/workers\",code_class=\"2xx\"}");
    double err = sample(text, "switchyard_requests_total{route=\"/workers\",code_class=\"5xx\"}");
    assert_true(ok == THREADS * PER_THREAD * 3 / 4);
    assert_true(err == THREADS * PER_THREAD / 4);
    assert_true(sample(text, "switchyard_requests_total{route=\"/workers\",code_class=\"4xx\"}") ==
                0);
    assert_true(sample(text, "switchyard_request_duration_seconds_count{route=\"/workers\"}") ==
                THREADS * PER_THREAD);
    double sum = sample(text, "switchyard_request_duration_seconds_sum{route=\"/workers\"}");
    assert_true(fabs(sum - THREADS * PER_THREAD * 0.002) < 1e-3);
    assert_true(sample(text, "switchyard_upstream_errors_total{destination=\"dest.example\","
                             "kind=\"timeout\"}") == timeouts_before + THREADS);
    assert_true(sample(text, "switchyard_client_connections") == conns_before + 3 * THREADS);
    free(text);

    for (int t = 0; t < THREADS; t++)
        sy_metrics_gauge_add(t + 10, SY_GAUGE_CLIENT_CONNECTIONS, -3);
    assert_true(sample_or_zero("switchyard_client_connections") == conns_before);
}

static void test_histogram_cumulative(void **state)
{
    (void)state;
    sy_route_stats_t *route = sy_metrics_route("/hist");
    const double observed[] = {0.0005, 0.001, 0.003, 0.2, 0.2, 9.9, 20};
    for (size_t i = 0; i < sizeof observed / sizeof observed[0]; i++)
        sy_metrics_request((int)i, route, 200, observed[i]);

    char *text = render(NULL);
    const struct {
        const char *le;
        double count;
    } want[] = {{"0.001", 2}, {"0.0025", 2}, {"0.005", 3}, {"0.1", 3},
                {"0.25", 5},  {"5", 5},      {"10", 6},    {"+Inf", 7}};
    char series[160];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(series, sizeof series,
                 "switchyard_request_duration_seconds_bucket{route=\"/hist\",le=\"%s\"}",
                 want[i].le);
        double got = sample(text, series);
        if (got != want[i].count)
            fail_msg("%s: got %g, want %g", series, got, want[i].count);
    }
    assert_true(sample(text, "switchyard_request_duration_seconds_count{route=\"/hist\"}") == 7);
    assert_true(fabs(sample(text, "switchyard_request_duration_seconds_sum{route=\"/hist\"}") -
                     30.3045) < 1e-6);

    /* Every bucket series, in every histogram, never decreases with le. */
    double previous = -1;
    char previous_key[256] = "";
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        const char *le = strstr(line, "le=\"");
        if (strstr(line, "_bucket{") && le && le < end) {
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(le - line), line);
            double v = strtod(strchr(line, ' ') + 1, NULL);
            if (strcmp(key, previous_key) == 0)
                assert_true(v >= previous);
            snprintf(previous_key, sizeof previous_key, "%s", key);
            previous = v;
        }
        line = end + 1;
    }
    free(text);
}

static void test_unrouted_requests(void **state)
{
    (void)state;
    const char *series = "switchyard_requests_total{route=\"(none)\",code_class=\"4xx\"}";
    double before = sample_or_zero(series);
    double all_before = sample_or_zero("switchyard_all_request_duration_seconds_count");
    sy_metrics_request(1, NULL, 404, 0.0001);
    sy_metrics_request(2, NULL, 421, 0.0001);
    assert_true(sample_or_zero(series) == before + 2);
    assert_true(sample_or_zero("switchyard_all_request_duration_seconds_count") == all_before + 2);
}

static void test_label_escaping(void **state)
{
    (void)state;
    sy_metrics_request(0, sy_metrics_route("/a\"b\\c\nd"), 302, 0.01);
    char *text = render(NULL);
    assert_true(sample(text, "switchyard_requests_total{route=\"/a\\\"b\\\\c\\nd\","
                             "code_class=\"3xx\"}") == 1);
    free(text);
}

static void test_rejections_reloads_view(void **state)
{
    (void)state;
    char series[160];
    snprintf(series, sizeof series, "switchyard_rejected_requests_total{reason=\"%s\"}",
             sy_http_reject_name(SY_REJECT_BARE_LF));
    double before = sample_or_zero(series);
    sy_metrics_rejected(5, SY_REJECT_BARE_LF);
    sy_metrics_rejected(6, SY_REJECT_BARE_LF);
    sy_metrics_rejected(6, SY_REJECT__COUNT + 5); /* ignored, no crash */
    sy_metrics_rejected(6, -1);
    assert_true(sample_or_zero(series) == before + 2);

    const char *ok = "switchyard_config_reloads_total{store=\"routes\",result=\"success\"}";
    const char *bad = "switchyard_config_reloads_total{store=\"policy\",result=\"failure\"}";
    double ok_before = sample_or_zero(ok), bad_before = sample_or_zero(bad);
    sy_metrics_reload("routes", true);
    sy_metrics_reload("policy", false);
    sy_metrics_reload("policy", false);

    sy_metrics_config_view_t view = {.active_routes = 7,
                                     .rejected_routes = 2,
                                     .policy_last_success = 1700000000.5,
                                     .routes_last_success = 0,
                                     .routes_last_error = 1700000100.25,
                                     .routes_failures = 3,
                                     .ready = true};
    char *text = render(&view);
    assert_true(sample(text, ok) == ok_before + 1);
    assert_true(sample(text, bad) == bad_before + 2);
    assert_true(sample(text, "switchyard_routes{state=\"active\"}") == 7);
    assert_true(sample(text, "switchyard_routes{state=\"rejected\"}") == 2);
    assert_true(sample(text, "switchyard_ready") == 1);
    assert_true(sample(text, "switchyard_config_consecutive_failures{store=\"routes\"}") == 3);
    assert_true(sample(text, "switchyard_config_consecutive_failures{store=\"policy\"}") == 0);
    assert_true(sample(text, "switchyard_config_last_error_timestamp_seconds{store=\"routes\"}") ==
                1700000100.25);
    assert_true(
        sample(text, "switchyard_config_last_success_timestamp_seconds{store=\"policy\"}") ==
        1700000000.5);
    free(text);
    text = render(NULL);
    assert_true(sample(text, "switchyard_ready") == 0);
    free(text);
}

/* ---- a small checker for the text exposition format ---- */

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

static size_t parse_name(const char *p)
{
    size_t n = 0;
    while (is_name_char(p[n], n == 0))
        n++;
    return n;
}

typedef struct {
    char name[128];
    char type[16];
} family_t;

/* Checks one sample line; returns false with why on failure. */
static bool check_sample(const char *line, size_t len, const family_t *family, char *why,
                         size_t why_cap)
{
    size_t n = parse_name(line);
    if (n == 0 || n >= 128) {
        snprintf(why, why_cap, "bad metric name");
        return false;
    }
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)n, line);
    bool ok_family = strcmp(name, family->name) == 0;
    if (!ok_family && strcmp(family->type, "histogram") == 0) {
        size_t fl = strlen(family->name);
        ok_family = strncmp(name, family->name, fl) == 0 &&
                    (strcmp(name + fl, "_bucket") == 0 || strcmp(name + fl, "_sum") == 0 ||
                     strcmp(name + fl, "_count") == 0);
    }
    if (!ok_family) {
        snprintf(why, why_cap, "sample %s outside its # TYPE family %s", name, family->name);
        return false;
    }
    const char *p = line + n, *end = line + len;
    bool saw_le = false;
    if (*p == '{') {
        p++;
        while (p < end && *p != '}') {
            size_t ln = parse_name(p);
            if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"') {
                snprintf(why, why_cap, "bad label");
                return false;
            }
            if (ln == 2 && strncmp(p, "le", 2) == 0)
                saw_le = true;
            p += ln + 2;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
                        snprintf(why, why_cap, "bad escape");
                        return false;
                    }
                    p++;
                }
                p++;
            }
            if (p >= end) {
                snprintf(why, why_cap, "unterminated label value");
                return false;
            }
            p++;
            if (*p == ',')
                p++;
        }
        if (p >= end || *p != '}') {
            snprintf(why, why_cap, "unterminated label set");
            return false;
        }
        p++;
    }
    size_t name_len = strlen(name);
    if (name_len > 7 && strcmp(name + name_len - 7, "_bucket") == 0 && !saw_le) {
        snprintf(why, why_cap, "bucket without le");
        return false;
    }
    if (*p != ' ') {
        snprintf(why, why_cap, "no space before the value");
        return false;
    }
    p++;
    char value[64];
    snprintf(value, sizeof value, "%.*s", (int)(end - p), p);
    char *stop;
    strtod(value, &stop);
    if (value[0] == '\0' || *stop != '\0' || strchr(value, ' ')) {
        snprintf(why, why_cap, "bad value '%s'", value);
        return false;
    }
    return true;
}

static void test_accept_pauses_and_fd_limits(void **state)
{
    (void)state;
    double cap0 = sample_or_zero("switchyard_accept_pauses_total{reason=\"connection_cap\"}");
    double fds0 = sample_or_zero("switchyard_accept_pauses_total{reason=\"out_of_fds\"}");
    sy_metrics_accept_pause(0, SY_ACCEPT_PAUSE_CAP);
    sy_metrics_accept_pause(3, SY_ACCEPT_PAUSE_CAP);
    sy_metrics_accept_pause(1, SY_ACCEPT_PAUSE_NO_FDS);
    sy_metrics_accept_pause(1, SY_ACCEPT_PAUSE__COUNT); /* ignored */
    sy_metrics_set_fd_limits(256, 29);
    sy_metrics_gauge_add(0, SY_GAUGE_ACCEPT_PAUSED, 1);
    sy_metrics_gauge_add(1, SY_GAUGE_ACCEPT_PAUSED, 1);
    sy_metrics_gauge_add(0, SY_GAUGE_ACCEPT_PAUSED, -1);
    char *text = render(NULL);
    assert_true(sample(text, "switchyard_accept_pauses_total{reason=\"connection_cap\"}") ==
                cap0 + 2);
    assert_true(sample(text, "switchyard_accept_pauses_total{reason=\"out_of_fds\"}") == fds0 + 1);
    assert_true(sample(text, "switchyard_fd_limit") == 256);
    assert_true(sample(text, "switchyard_worker_connection_cap") == 29);
    assert_true(sample(text, "switchyard_accept_paused") == 1);
    free(text);
    sy_metrics_gauge_add(1, SY_GAUGE_ACCEPT_PAUSED, -1);
}

static void test_output_format(void **state)
{
    (void)state;
    sy_metrics_route("/format");
    sy_metrics_upstream_duration(1, "format.example", 0.5);
    sy_metrics_upstream_error(0, SY_UPSTREAM_ERR_CONNECT);
    char *text = render(NULL);
    assert_true(text[strlen(text) - 1] == '\n');
    family_t family = {"", ""};
    char helped[128] = "";
    size_t samples = 0, families = 0;
    char **seen = NULL;
    size_t seen_count = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = (size_t)(end - line);
        char why[400] = "";
        if (strncmp(line, "# HELP ", 7) == 0) {
            size_t n = parse_name(line + 7);
            assert_true(n > 0 && line[7 + n] == ' ');
            snprintf(helped, sizeof helped, "%.*s", (int)n, line + 7);
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            size_t n = parse_name(line + 7);
            assert_true(n > 0 && line[7 + n] == ' ');
            snprintf(family.name, sizeof family.name, "%.*s", (int)n, line + 7);
            snprintf(family.type, sizeof family.type, "%.*s", (int)(len - 8 - n), line + 8 + n);
            assert_string_equal(family.name, helped); /* HELP comes right before TYPE */
            assert_true(strcmp(family.type, "counter") == 0 || strcmp(family.type, "gauge") == 0 ||
                        strcmp(family.type, "histogram") == 0);
            assert_true(strncmp(family.name, "switchyard_", 11) == 0 ||
                        strncmp(family.name, "process_", 8) == 0);
            if (strcmp(family.type, "counter") == 0)
                assert_true(strlen(family.name) > 6 &&
                            strcmp(family.name + strlen(family.name) - 6, "_total") == 0);
            families++;
        } else {
            if (!check_sample(line, len, &family, why, sizeof why))
                fail_msg("line '%.*s': %s", (int)len, line, why);
            /* No series appears twice. */
            const char *space = memchr(line, ' ', len);
            size_t key_len = (size_t)(space - line);
            for (size_t i = 0; i < seen_count; i++)
                if (strlen(seen[i]) == key_len && memcmp(seen[i], line, key_len) == 0)
                    fail_msg("duplicate series %.*s", (int)key_len, line);
            seen = realloc(seen, (seen_count + 1) * sizeof *seen);
            seen[seen_count++] = strndup(line, key_len);
            samples++;
        }
        line = end + 1;
    }
    assert_true(families >= 12);
    assert_true(samples > 50);
    for (size_t i = 0; i < seen_count; i++)
        free(seen[i]);
    free(seen);
    free(text);
}

static bool has_series(const char *text, const char *route)
{
    char needle[128];
    snprintf(needle, sizeof needle, "switchyard_requests_total{route=\"%s\",", route);
    return strstr(text, needle) != NULL;
}

/* Issue 14: series only for routes that answered a request and are still
 * in the table; a route's counters are shared while snapshots hold its
 * path, and freed with the last reference. */
static void test_series_follow_the_table(void **state)
{
    (void)state;
    double tracked0 = sample_or_zero("switchyard_route_stats{kind=\"tracked\"}");
    sy_route_stats_t *kept = sy_metrics_route("/kept"), *gone = sy_metrics_route("/gone"),
                     *idle = sy_metrics_route("/idle");
    assert_true(sample_or_zero("switchyard_route_stats{kind=\"tracked\"}") == tracked0 + 3);
    uint64_t e1 = sy_metrics_epoch_begin();
    sy_metrics_route_mark(kept, e1);
    sy_metrics_route_mark(gone, e1);
    sy_metrics_route_mark(idle, e1);
    sy_metrics_epoch_commit(e1);
    sy_metrics_request(0, kept, 200, 0.001);
    sy_metrics_request(1, gone, 200, 0.001);
    char *text = render(NULL);
    assert_true(has_series(text, "/kept"));
    assert_true(has_series(text, "/gone"));
    assert_false(has_series(text, "/idle")); /* never answered a request */
    free(text);

    /* The next table holds /kept (same counters) but not /gone. */
    sy_route_stats_t *kept_again = sy_metrics_route("/kept");
    assert_ptr_equal(kept_again, kept);
    uint64_t e2 = sy_metrics_epoch_begin();
    sy_metrics_route_mark(kept_again, e2);
    sy_metrics_epoch_commit(e2);
    sy_metrics_request(0, kept, 200, 0.001);
    text = render(NULL);
    assert_true(sample(text, "switchyard_requests_total{route=\"/kept\",code_class=\"2xx\"}") == 2);
    assert_false(has_series(text, "/gone"));
    free(text);

    /* The old table is released: its paths' counters go with it. */
    sy_metrics_route_release(kept);
    sy_metrics_route_release(gone);
    sy_metrics_route_release(idle);
    assert_true(sample_or_zero("switchyard_route_stats{kind=\"tracked\"}") == tracked0 + 1);
    sy_metrics_route_release(kept_again);
    assert_true(sample_or_zero("switchyard_route_stats{kind=\"tracked\"}") == tracked0);
    /* A path that comes back starts from zero counters. */
    sy_route_stats_t *back = sy_metrics_route("/gone");
    sy_metrics_request(0, back, 500, 0.001);
    text = render(NULL);
    assert_true(sample(text, "switchyard_requests_total{route=\"/gone\",code_class=\"2xx\"}") == 0);
    free(text);
    sy_metrics_route_release(back);
}

/* Issue 14: a build of N routes looks each up once; 200,000 distinct paths
 * must register (a quadratic registry would not finish in the test's time). */
static void test_many_routes(void **state)
{
    (void)state;
    enum { N = 200000 };
    sy_route_stats_t **all = calloc(N, sizeof *all);
    assert_non_null(all);
    char path[32];
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "/many/%d", i);
        all[i] = sy_metrics_route(path);
        assert_non_null(all[i]);
    }
    snprintf(path, sizeof path, "/many/%d", N / 2);
    sy_route_stats_t *again = sy_metrics_route(path);
    assert_ptr_equal(again, all[N / 2]);
    sy_metrics_route_release(again);
    for (int i = 0; i < N; i++)
        sy_metrics_route_release(all[i]);
    free(all);
}

/* Upstream errors and latency carry the destination host; the histogram
 * reaches past 60 s; errors with no destination count as "(none)". */
static void test_destinations(void **state)
{
    (void)state;
    sy_metrics_upstream_duration(0, "a.example", 0.2);
    sy_metrics_upstream_duration(1, "a.example", 45);
    /* A kept handle counts into the same series as the name. */
    sy_metrics_destination_t *b = sy_metrics_destination("b.example");
    assert_non_null(b);
    assert_ptr_equal(b, sy_metrics_destination("b.example"));
    sy_metrics_destination_observe(2, b, 0.001);
    sy_metrics_destination_count(0, b, SY_UPSTREAM_ERR_TLS);
    sy_metrics_upstream_duration(1, "b.example", 0.002);
    sy_metrics_destination_error(0, NULL, SY_UPSTREAM_ERR_RESOLVE);
    char *text = render(NULL);
    assert_true(
        sample(text, "switchyard_upstream_duration_seconds_count{destination=\"a.example\"}") == 2);
    assert_true(sample(text,
                       "switchyard_upstream_duration_seconds_bucket{destination=\"a.example\","
                       "le=\"30\"}") == 1);
    assert_true(sample(text,
                       "switchyard_upstream_duration_seconds_bucket{destination=\"a.example\","
                       "le=\"60\"}") == 2);
    assert_true(
        sample(text, "switchyard_upstream_duration_seconds_count{destination=\"b.example\"}") == 2);
    assert_true(sample(text, "switchyard_upstream_errors_total{destination=\"b.example\","
                             "kind=\"tls\"}") == 1);
    assert_true(sample(text, "switchyard_upstream_errors_total{destination=\"a.example\","
                             "kind=\"tls\"}") == 0);
    assert_true(sample(text, "switchyard_upstream_errors_total{destination=\"(none)\","
                             "kind=\"resolve\"}") >= 1);
    /* The request histograms reach 60 s too. */
    assert_non_null(strstr(text, "switchyard_all_request_duration_seconds_bucket{le=\"60\"}"));
    free(text);

    /* Past 256 hosts, new ones share "(other)": the scrape stays bounded. */
    char host[32];
    for (int i = 0; i < 300; i++) {
        snprintf(host, sizeof host, "h%d.example", i);
        sy_metrics_destination_error(0, host, SY_UPSTREAM_ERR_CONNECT);
    }
    text = render(NULL);
    assert_true(sample(text, "switchyard_upstream_errors_total{destination=\"(other)\","
                             "kind=\"connect\"}") >= 40);
    assert_null(strstr(text, "destination=\"h299.example\""));
    free(text);
}

/* build_info and the process_* series every Prometheus client exposes. */
static void test_build_and_process(void **state)
{
    (void)state;
    char *text = render(NULL);
    const char *info = strstr(text, "switchyard_build_info{version=\"");
    assert_non_null(info);
    assert_non_null(strstr(info, "\"} 1\n"));
    assert_true(sample(text, "process_open_fds") >= 3); /* stdin, stdout, stderr */
    assert_true(sample(text, "process_max_fds") >= sample(text, "process_open_fds"));
    assert_true(sample(text, "process_resident_memory_bytes") > 0);
    assert_true(sample(text, "process_cpu_seconds_total") >= 0);
    /* Started after 2020 and not in the future. */
    double start = sample(text, "process_start_time_seconds");
    assert_true(start > 1577836800.0 && start <= (double)time(NULL) + 1);
    free(text);
}

/* --route-metrics off: routed requests count under route="(any)", no
 * per-route series appear; unrouted ones stay "(none)". */
static void test_route_labels_off(void **state)
{
    (void)state;
    sy_route_stats_t *route = sy_metrics_route("/labels-off");
    sy_metrics_set_route_labels(false);
    sy_metrics_request(0, route, 200, 0.01);
    sy_metrics_request(0, NULL, 404, 0.01);
    char *text = render(NULL);
    sy_metrics_set_route_labels(true);
    assert_false(has_series(text, "/labels-off"));
    assert_true(sample(text, "switchyard_requests_total{route=\"(any)\",code_class=\"2xx\"}") >= 1);
    assert_true(sample(text, "switchyard_requests_total{route=\"(none)\",code_class=\"4xx\"}") >=
                1);
    free(text);
    sy_metrics_request(0, route, 200, 0.01);
    text = render(NULL);
    assert_true(has_series(text, "/labels-off"));
    free(text);
    sy_metrics_route_release(route);
}

int main(void)
{
    sy_metrics_init(8);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_sum),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_unrouted_requests),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_rejections_reloads_view),
        cmocka_unit_test(test_accept_pauses_and_fd_limits),
        cmocka_unit_test(test_output_format),
        cmocka_unit_test(test_series_follow_the_table),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_destinations),
        cmocka_unit_test(test_build_and_process),
        cmocka_unit_test(test_route_labels_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
