/*
 * auth.h: the auth phase (SPEC §5.5) as one call that returns a decision.
 * The proxy and /explain call only this; each policy type is a module
 * behind it (none and iam here; basic and jwt fail closed until enforced).
 * Thread: workers. Pointers: the decision's strings are static or borrow
 * from the policy.
 */
#ifndef SY_AUTH_AUTH_H
#define SY_AUTH_AUTH_H

#include "http/parser.h"
#include "policy/policy.h"

typedef struct {
    int status;                   /* 0: allowed; 401 or 403 */
    const char *message;          /* JSON message */
    char www_authenticate[160];   /* the WWW-Authenticate value with 401 */
    char subject[128];            /* the authenticated subject, when known */
} sy_auth_result_t;

void sy_auth_check(const sy_auth_policy_t *policy, const sy_http_request_t *req,
                   sy_auth_result_t *out);

#endif
