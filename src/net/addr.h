/*
 * addr.h: the resolved-address guard (SPEC §5.6). Every address switchyard
 * is about to connect to passes here after resolution, every time, so
 * neither DNS nor an odd numeric spelling ("0x7f.1", "2130706433",
 * "::ffff:169.254.169.254") can reach a metadata or loopback address.
 * Thread: any. Pointers: returned reasons are static strings.
 */
#ifndef SY_NET_ADDR_H
#define SY_NET_ADDR_H

#include <stdbool.h>
#include <sys/socket.h>

/* NULL when switchyard may connect to sa, else why not: "link-local
 * address", "cloud metadata address", "unspecified address", "multicast
 * address", "broadcast address", "loopback address (allow_loopback_destinations
 * is false)", "unsupported address family". IPv4-mapped and IPv4-compatible
 * IPv6 addresses are judged by the IPv4 address they carry. */
const char *sy_addr_refusal(const struct sockaddr *sa, bool allow_loopback);

/* Formats sa as "1.2.3.4" or "::1" into out (INET6_ADDRSTRLEN bytes). */
void sy_addr_format(const struct sockaddr *sa, char *out, size_t cap);

#endif
