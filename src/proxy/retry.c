/*
 * retry.c: the retry rule (see retry.h).
 *
 * A connect that is refused or times out has sent nothing, so moving on to
 * the next address is safe for every method. A request that met a dead
 * pooled connection is sent again once, on a fresh connection, only when
 * the server cannot have acted on it: a pooled connection the server
 * closed while idle (a race every keep-alive client meets), no response
 * byte seen, no body (a body may have been consumed and cannot be replayed
 * from here), and nothing sent to the client yet. A request whose write
 * failed never arrived whole, so any method qualifies; one that went out
 * whole and then met a close may have been processed, so it is sent again
 * only when doing so twice is harmless (RFC 9112 §9.3.1, RFC 9110 §9.2.2).
 */
#include "proxy/retry.h"

sy_retry_action_t sy_retry_decide(const sy_retry_facts_t *f)
{
    switch (f->fault) {
    case SY_FAULT_CONNECT:
        return f->addresses_left ? SY_RETRY_NEXT_ADDRESS : SY_RETRY_NO;
    case SY_FAULT_WRITE:
    case SY_FAULT_CLOSED_EARLY:
        if (!f->reused || f->response_bytes || f->has_body || f->retries > 0 || f->response_started)
            return SY_RETRY_NO;
        if (f->fault == SY_FAULT_CLOSED_EARLY && !f->idempotent)
            return SY_RETRY_NO;
        return SY_RETRY_NEW_CONNECTION;
    case SY_FAULT_OTHER:
        break;
    }
    return SY_RETRY_NO;
}

bool sy_retry_idempotent(sy_slice_t method)
{
    static const sy_slice_t methods[] = {SY_SLICE_LIT("GET"),     SY_SLICE_LIT("HEAD"),
                                         SY_SLICE_LIT("OPTIONS"), SY_SLICE_LIT("TRACE"),
                                         SY_SLICE_LIT("PUT"),     SY_SLICE_LIT("DELETE")};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (sy_slice_eq(method, methods[i]))
            return true;
    return false;
}
