/*
 * routes_cli.h: `switchyard routes put|delete|list` (SPEC §1), the command
 * pipelines run on deploy to register their route in the routes store
 * (dynamodb://TABLE or a JSON file).
 * Thread: main only (blocks on the network). Pointers: none kept.
 */
#ifndef SY_CONTROL_ROUTES_CLI_H
#define SY_CONTROL_ROUTES_CLI_H

/* argv[0] is "routes", argv[1] the action. Returns the exit status: 0 done,
 * 1 refused (the item is invalid, or the policy given with --check-policy
 * would reject it), 2 bad usage or a store that can't be read or written. */
int sy_routes_cli(int argc, char **argv);

#endif
