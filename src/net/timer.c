/*
 * timer.c: lazy timeouts (see timer.h).
 */
#include "net/timer.h"

static void on_timer(uv_timer_t *h)
{
    sy_timer_t *t = (sy_timer_t *)h; /* timer is the first member */
    if (!t->deadline)
        return; /* stopped since it was armed */
    uint64_t now = uv_now(h->loop);
    if (now < t->deadline) {
        uv_timer_start(h, on_timer, t->deadline - now, 0);
        return;
    }
    t->deadline = 0;
    t->on_due(h);
}

int sy_timer_init(uv_loop_t *loop, sy_timer_t *t, uv_timer_cb on_due)
{
    t->deadline = 0;
    t->on_due = on_due;
    return uv_timer_init(loop, &t->timer);
}

void sy_timer_set(sy_timer_t *t, uint64_t ms)
{
    t->deadline = uv_now(t->timer.loop) + ms;
    if (uv_is_active((uv_handle_t *)&t->timer) && uv_timer_get_due_in(&t->timer) <= ms)
        return;
    uv_timer_start(&t->timer, on_timer, ms, 0);
}
