/*
 * test_stream.c: writes over a plain TCP stream (net/stream.c) on a real
 * loop and socket pair: a write the socket takes at once completes after
 * the call returns, in the same loop turn, with every byte delivered; one
 * the socket cannot take whole completes once the rest is out; a stream
 * closed before its completion runs gets UV_ECANCELED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/stream.h"

typedef struct {
    uv_loop_t loop;
    sy_stream_completions_t q;
    sy_stream_t s;
    int peer; /* the other end of the socket pair, blocking */
    int calls;
    int status;
    bool inside_write; /* set while sy_stream_write runs */
    bool called_inside;
} fixture_t;

static void on_written(uv_write_t *req, int status)
{
    fixture_t *f = req->data;
    f->calls++;
    f->status = status;
    if (f->inside_write)
        f->called_inside = true;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sy_stream_completions_init(&f->loop, &f->q), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->s.tcp), 0);
    /* uv_tcp_open takes any stream socket; a UNIX pair keeps the test off
     * the network. */
    assert_int_equal(uv_tcp_open(&f->s.tcp, sv[0]), 0);
    f->peer = sv[1];
    *state = f;
    return 0;
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, close_cb);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    uv_walk(&f->loop, close_all, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sy_stream_completions_free(&f->q);
    close(f->peer);
    free(f);
    return 0;
}

static void read_exactly(int fd, char *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, out + got, n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
}

static void test_write_at_once_completes_after_return(void **state)
{
    fixture_t *f = *state;
    uv_write_t req = {.data = f};
    uv_buf_t bufs[] = {uv_buf_init("HTTP/1.1 200 OK\r\n", 17), uv_buf_init("\r\nhello", 7)};
    f->inside_write = true;
    assert_int_equal(sy_stream_write(&f->s, &f->q, &req, bufs, 2, on_written), 0);
    f->inside_write = false;
    assert_int_equal(f->calls, 0);
    char got[24];
    read_exactly(f->peer, got, 24);
    assert_memory_equal(got, "HTTP/1.1 200 OK\r\n\r\nhello", 24);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->status, 0);
    assert_false(f->called_inside);
}

/* More than the socket buffer holds: the rest goes through libuv's queue
 * and the callback waits for it. */
static void test_partial_write_finishes_later(void **state)
{
    fixture_t *f = *state;
    size_t len = 8 << 20;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + i % 26);
    uv_write_t req = {.data = f};
    uv_buf_t bufs[] = {uv_buf_init(big, 100), uv_buf_init(big + 100, (unsigned)(len - 100))};
    assert_int_equal(sy_stream_write(&f->s, &f->q, &req, bufs, 2, on_written), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 0); /* the peer has read nothing yet */
    char *got = malloc(len);
    size_t have = 0;
    while (have < len) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        ssize_t r = recv(f->peer, got + have, len - have, MSG_DONTWAIT);
        if (r > 0)
            have += (size_t)r;
    }
    while (f->calls == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->status, 0);
    assert_memory_equal(got, big, len);
    free(got);
    free(big);
}

static void test_closed_before_completion_is_cancelled(void **state)
{
    fixture_t *f = *state;
    uv_write_t req = {.data = f};
    uv_buf_t b = uv_buf_init("x", 1);
    assert_int_equal(sy_stream_write(&f->s, &f->q, &req, &b, 1, on_written), 0);
    sy_stream_close(&f->s, close_cb);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->status, UV_ECANCELED);
}

/* An owner freed by its close callback (as client.c and upstream.c free
 * theirs): a completion still queued when the stream is closed runs
 * before that callback, cancelled, while the owner is alive. */
typedef struct {
    sy_stream_t s;
    uv_write_t req;
    int *events; /* 1: completion, 2: close callback, in order */
    size_t *n;
    int status;
} owner_t;

static void owner_written(uv_write_t *req, int status)
{
    owner_t *o = req->data;
    o->status = status;
    o->events[(*o->n)++] = 1;
}

static void owner_closed(uv_handle_t *h)
{
    owner_t *o = h->data;
    o->events[(*o->n)++] = 2;
    assert_int_equal(o->status, UV_ECANCELED); /* its completion ran first */
    free(o);
}

static owner_t *owner_open(fixture_t *f, int fd, int *events, size_t *n)
{
    owner_t *o = calloc(1, sizeof *o);
    assert_int_equal(uv_tcp_init(&f->loop, &o->s.tcp), 0);
    assert_int_equal(uv_tcp_open(&o->s.tcp, fd), 0);
    o->s.tcp.data = o;
    o->req.data = o;
    o->events = events;
    o->n = n;
    o->status = 1;
    return o;
}

static void test_completion_runs_before_owner_is_freed(void **state)
{
    fixture_t *f = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int events[4];
    size_t n = 0;
    owner_t *o = owner_open(f, sv[0], events, &n);
    uv_buf_t b = uv_buf_init("x", 1);
    assert_int_equal(sy_stream_write(&o->s, &f->q, &o->req, &b, 1, owner_written), 0);
    sy_stream_close(&o->s, owner_closed);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(n, 2);
    assert_int_equal(events[0], 1);
    assert_int_equal(events[1], 2);
    close(sv[1]);
}

/* One completion closes another stream whose completion is queued after
 * it (a client closing its upstream): that one is cancelled, and runs
 * before the other's owner is freed. */
typedef struct {
    owner_t *other;
    int calls;
} closer_t;

static void close_other_written(uv_write_t *req, int status)
{
    closer_t *cl = req->data;
    assert_int_equal(status, 0);
    cl->calls++;
    sy_stream_close(&cl->other->s, owner_closed);
}

static void test_close_from_completion_cancels_a_later_one(void **state)
{
    fixture_t *f = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int events[4];
    size_t n = 0;
    owner_t *other = owner_open(f, sv[0], events, &n);
    closer_t cl = {.other = other};
    uv_write_t first = {.data = &cl};
    uv_buf_t b = uv_buf_init("y", 1);
    assert_int_equal(sy_stream_write(&f->s, &f->q, &first, &b, 1, close_other_written), 0);
    assert_int_equal(sy_stream_write(&other->s, &f->q, &other->req, &b, 1, owner_written), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(cl.calls, 1);
    assert_int_equal(n, 2);
    assert_int_equal(events[0], 1);
    assert_int_equal(events[1], 2);
    close(sv[1]);
}

/* A completion that writes again (the next pipelined answer): the new
 * write's completion runs in the same turn, after it, and the peer gets
 * the bytes in order. */
typedef struct {
    fixture_t *f;
    uv_write_t req;
    int calls;
} rewriter_t;

static void rewrite_written(uv_write_t *req, int status)
{
    rewriter_t *r = req->data;
    assert_int_equal(status, 0);
    if (r->calls++ < 3) {
        static char next[] = "123";
        uv_buf_t b = uv_buf_init(next + r->calls - 1, 1);
        assert_int_equal(sy_stream_write(&r->f->s, &r->f->q, &r->req, &b, 1, rewrite_written), 0);
    }
}

static void test_write_from_completion_completes_same_turn(void **state)
{
    fixture_t *f = *state;
    rewriter_t r = {.f = f};
    r.req.data = &r;
    uv_buf_t b = uv_buf_init("0", 1);
    assert_int_equal(sy_stream_write(&f->s, &f->q, &r.req, &b, 1, rewrite_written), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 4);
    char got[4];
    read_exactly(f->peer, got, 4);
    assert_memory_equal(got, "0123", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_at_once_completes_after_return, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_write_finishes_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_before_completion_is_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_completion_runs_before_owner_is_freed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_from_completion_cancels_a_later_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_from_completion_completes_same_turn, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
