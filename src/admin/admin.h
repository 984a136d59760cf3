/*
 * admin.h: the admin listener (SPEC §6): /healthz, /readyz, /metrics,
 * /config, /explain. Runs its own event loop on its own thread so a scrape
 * never competes with traffic.
 * Thread: start/stop from main; the handlers run on the admin thread.
 */
#ifndef SY_ADMIN_ADMIN_H
#define SY_ADMIN_ADMIN_H

#include <stdbool.h>

#include "core/common.h"

/* listen: "ADDR:PORT". */
bool sy_admin_start(const char *listen, sy_error_t *err);
/* From then on /readyz answers 503 (draining). */
void sy_admin_set_draining(void);
void sy_admin_stop(void);

#endif
