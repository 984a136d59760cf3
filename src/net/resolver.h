/*
 * resolver.h: upstream names to addresses (SPEC §5 step 6). One cache per
 * process holds each name's last good answer for its TTL; each worker runs
 * its own c-ares channel on its own loop and fills the cache, so no worker
 * ever waits on another thread. The cache also holds what the connect path
 * learns about each address (refused, timed out: set aside with back-off),
 * so every worker spreads new connections over the addresses that work.
 * Thread: sy_resolver_global_* from main (before workers start / after they
 * stop); sy_resolver_new/close/resolve/cancel from the worker that owns the
 * resolver; sy_resolver_report, sy_resolver_address_current and the render
 * functions from any thread. Pointers: an entry handle lives until
 * sy_resolver_global_cleanup; a plan is a copy owned by the caller.
 */
#ifndef SY_NET_RESOLVER_H
#define SY_NET_RESOLVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>
#include <uv.h>

#include "core/common.h"

#define SY_RESOLVER_MAX_ADDRS 16
/* Answers are cached for their TTL, clamped to [MIN, MAX] seconds. */
#define SY_RESOLVER_MIN_TTL_S 1
#define SY_RESOLVER_MAX_TTL_S 3600
/* How long past its TTL a last good answer may serve while the DNS server
 * fails, is silent or answers with a refused address. */
#define SY_RESOLVER_STALE_MAX_S 3600

typedef struct sy_resolver sy_resolver_t;
typedef struct sy_resolver_entry sy_resolver_entry_t;

/* An address without the port (the destination's port is added at
 * connect time), small enough to copy into every connection attempt. */
typedef struct {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bytes[16];
} sy_ip_t;

/* The order in which one new connection tries a name's addresses: the
 * addresses not set aside, starting at the name's round-robin cursor, then
 * the set-aside ones (so when all are set aside, all are tried). */
typedef struct {
    sy_resolver_entry_t *entry;
    uint32_t generation; /* of the answer the plan came from */
    size_t count;
    sy_ip_t addrs[SY_RESOLVER_MAX_ADDRS];
    bool stale; /* served past its TTL because the DNS server failed */
} sy_resolver_plan_t;

typedef enum {
    SY_RESOLVE_OK = 0,
    SY_RESOLVE_FAILED,  /* no answer and no last good one */
    SY_RESOLVE_REFUSED, /* the only answer names an address the guard refuses */
} sy_resolve_status_t;

typedef struct sy_resolve_req sy_resolve_req_t;
/* Called on the resolver's loop; plan is valid during the call only. */
typedef void (*sy_resolve_cb)(sy_resolve_req_t *req, sy_resolve_status_t status,
                              const sy_resolver_plan_t *plan, const char *why);

/* A waiting lookup, embedded in its owner (an upstream connection). */
struct sy_resolve_req {
    sy_resolve_cb cb;
    void *data;
    struct sy_resolve_query *query; /* set while waiting */
    sy_resolve_req_t *next;
};

/* servers: NULL for /etc/resolv.conf, else c-ares' CSV form
 * ("10.0.0.2,127.0.0.1:5353,[::1]:53"), from --resolver. */
bool sy_resolver_global_init(const char *servers, sy_error_t *err);
void sy_resolver_global_cleanup(void);

sy_resolver_t *sy_resolver_new(uv_loop_t *loop, sy_error_t *err);
/* Cancels every waiting lookup without calling it back and closes the
 * channel's handles; the resolver is freed once they are closed. */
void sy_resolver_close(sy_resolver_t *r);

/* Resolves name (a host name, or an IPv4/bracketed-IPv6 literal, which is
 * its own answer). Returns true when answered now (*plan filled, cb never
 * called); false when req waits (cb is called once later, unless
 * cancelled). On a failure answered now, plan->count is 0 and *why says
 * why, with *status set. */
bool sy_resolve(sy_resolver_t *r, sy_resolve_req_t *req, const char *name, sy_resolver_plan_t *plan,
                sy_resolve_status_t *status, const char **why);
void sy_resolve_cancel(sy_resolve_req_t *req);

/* A request is about to use a pooled connection to e's name: refreshes the
 * answer in the background when it is due, so a name used only over
 * pooled connections is kept fresh too (and a pooled connection to an
 * address that left it is noticed). Costs one atomic load when nothing is
 * due. now: monotonic ms (uv_now). */
void sy_resolver_touch(sy_resolver_t *r, sy_resolver_entry_t *e, uint64_t now);

/* What one connection attempt to addr learned: ok false sets the address
 * aside (1 s, doubling up to 60 s), ok true clears it. moved counts a
 * connect that went on to the next address. */
void sy_resolver_report(sy_resolver_entry_t *e, const sy_ip_t *addr, bool ok);
void sy_resolver_count_moved(sy_resolver_entry_t *e);

/* Whether addr is still in the entry's current answer. generation is the
 * caller's cached answer generation, updated; the lock is taken only when
 * the answer changed since. */
bool sy_resolver_address_current(sy_resolver_entry_t *e, const sy_ip_t *addr, uint32_t *generation);

void sy_ip_to_sockaddr(const sy_ip_t *ip, uint16_t port, struct sockaddr_storage *out);
bool sy_ip_from_sockaddr(const struct sockaddr *sa, sy_ip_t *out);
void sy_ip_format(const sy_ip_t *ip, char *out, size_t cap); /* 46 bytes */

/* Prometheus text for every name, through write; and the /config view:
 * a JSON array of {host, ttl_seconds, ttl_left_seconds, stale, last_error,
 * addresses: [{address, set_aside_ms}]} (the caller owns it). */
typedef void (*sy_resolver_write_fn)(void *ctx, const char *text, size_t len);
void sy_resolver_render_metrics(sy_resolver_write_fn write, void *ctx);
json_t *sy_resolver_config_json(void);

#endif
