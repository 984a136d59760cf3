/*
 * retry.h: the one rule that decides whether a failed attempt to reach an
 * upstream is tried again, and how. Pure: it looks only at the facts it is
 * given, so it is unit-tested on its own (tests/unit/test_retry.c).
 * Thread: any. Pointers: none kept.
 *
 * Two callers ask it: upstream.c when a connect to one address of the
 * name's answer is refused or times out (another address may be tried),
 * and client.c when a request meets a dead connection (a new connection
 * may be opened).
 */
#ifndef SY_PROXY_RETRY_H
#define SY_PROXY_RETRY_H

#include <stdbool.h>

#include "core/common.h"

typedef enum {
    SY_FAULT_OTHER = 0,   /* anything else: never retried */
    SY_FAULT_CONNECT,     /* a TCP connect was refused or timed out */
    SY_FAULT_WRITE,       /* writing the request failed */
    SY_FAULT_CLOSED_EARLY /* the connection closed before a whole response head */
} sy_retry_fault_t;

typedef enum {
    SY_RETRY_NO = 0,        /* give up: answer the client with the error */
    SY_RETRY_NEXT_ADDRESS,  /* connect to the next address of the answer */
    SY_RETRY_NEW_CONNECTION /* send the request again on a fresh connection */
} sy_retry_action_t;

typedef struct {
    sy_retry_fault_t fault;
    bool addresses_left;   /* SY_FAULT_CONNECT: an untried address remains */
    bool reused;           /* the connection came from the idle pool */
    bool response_bytes;   /* any byte of a response arrived on it */
    bool has_body;         /* the request carries a body */
    bool idempotent;       /* sending the request twice is harmless */
    bool response_started; /* the client has been sent part of an answer */
    int retries;           /* new connections opened for this request so far */
} sy_retry_facts_t;

sy_retry_action_t sy_retry_decide(const sy_retry_facts_t *f);

/* Whether a method is idempotent (RFC 9110 §9.2.2). */
bool sy_retry_idempotent(sy_slice_t method);

#endif
