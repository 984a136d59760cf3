/*
 * timer.h: a lazy timeout over one libuv timer. Re-arming libuv's timer is
 * a heap removal and an insert; a connection that moves its timeout for
 * every phase of every request (header, response, idle) would pay that each
 * time. Here the deadline moves freely and the libuv timer is re-armed only
 * when it would fire too late; one that fires before the deadline re-arms
 * for the rest (at most one extra wake-up per timeout), and a stopped
 * timeout only clears the deadline.
 * Thread: the loop's. Pointers: timer.data is the owner's; on_due gets
 * &timer, as a libuv timer callback would.
 */
#ifndef SY_NET_TIMER_H
#define SY_NET_TIMER_H

#include <stdint.h>
#include <uv.h>

typedef struct {
    uv_timer_t timer;  /* armed at or before `deadline` */
    uint64_t deadline; /* loop time the timeout ends; 0: none */
    uv_timer_cb on_due;
} sy_timer_t;

/* Like uv_timer_init; on_due runs once a deadline is reached. */
int sy_timer_init(uv_loop_t *loop, sy_timer_t *t, uv_timer_cb on_due);
/* The timeout ends ms from the loop's now (replacing any other). */
void sy_timer_set(sy_timer_t *t, uint64_t ms);
/* No timeout. */
static inline void sy_timer_stop(sy_timer_t *t)
{
    t->deadline = 0;
}

#endif
