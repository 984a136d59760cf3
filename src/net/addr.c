/*
 * addr.c: the last check before every upstream connect (SPEC §5.6). It looks
 * at the address the resolver produced, never at a name, so whatever
 * spelling reached getaddrinfo ("0x7f.1", "2130706433", a DNS name that
 * points at 169.254.169.254) is judged by where the socket would really go.
 *
 * IPv6 addresses that carry an IPv4 address and reach it when connected to
 * (IPv4-mapped ::ffff:a.b.c.d, the deprecated IPv4-compatible ::a.b.c.d,
 * IPv4-translated ::ffff:0:a.b.c.d of SIIT, the NAT64 well-known prefix
 * 64:ff9b::/96 and the local-use NAT64 prefix 64:ff9b:1::/48 with the
 * address in its last 32 bits) are judged by that IPv4 address, so
 * "::ffff:169.254.169.254" is the metadata service it is.
 */
#include "net/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char LOOPBACK[] = "loopback address (allow_loopback_destinations is false)";

/* a is in host byte order. */
static const char *ipv4_refusal(uint32_t a, bool allow_loopback)
{
    /* Instance metadata / credential endpoints: AWS IMDS, ECS task
     * credentials, Alibaba Cloud, Oracle Cloud. */
    if (a == 0xA9FEA9FEu || a == 0xA9FEAA02u || a == 0x646464C8u || a == 0xC00000C0u)
        return "cloud metadata address";
    if ((a >> 16) == 0xA9FEu)
        return "link-local address";
    if ((a >> 24) == 0)
        return "unspecified address";
    if ((a >> 24) == 127)
        return allow_loopback ? NULL : LOOPBACK;
    if (a == 0xFFFFFFFFu)
        return "broadcast address";
    if ((a >> 28) == 0xE)
        return "multicast address";
    if ((a >> 28) == 0xF)
        return "reserved address";
    return NULL;
}

static uint32_t ipv4_at(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static const char *ipv6_refusal(const uint8_t *b, bool allow_loopback)
{
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
    static const uint8_t siit[12] = {[8] = 0xff, [9] = 0xff};
    if (all_zero(b, 15)) {
        if (b[15] == 0)
            return "unspecified address";
        if (b[15] == 1)
            return allow_loopback ? NULL : LOOPBACK;
    }
    /* ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), ::ffff:0:a.b.c.d
     * (SIIT), 64:ff9b::a.b.c.d and 64:ff9b:1:…:a.b.c.d (NAT64). The local-use
     * prefix is judged by its last 32 bits whatever its length: refusing an
     * address a /48 translator would not map there is the safe mistake. */
    if ((all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff) || all_zero(b, 12) ||
        memcmp(b, siit, 12) == 0 || memcmp(b, nat64, 12) == 0 || memcmp(b, nat64_local, 6) == 0) {
        const char *why = ipv4_refusal(ipv4_at(b + 12), allow_loopback);
        if (why)
            return why;
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "link-local address";
    if (b[0] == 0xfd && b[1] == 0x00 && b[2] == 0x0e && b[3] == 0xc2)
        return "cloud metadata address"; /* fd00:ec2::/32, the EC2 IPv6 IMDS */
    if (b[0] == 0xff)
        return "multicast address";
    return NULL;
}

const char *sy_addr_refusal(const struct sockaddr *sa, bool allow_loopback)
{
    if (!sa)
        return "unsupported address family";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return ipv4_refusal(ntohl(in->sin_addr.s_addr), allow_loopback);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return ipv6_refusal(in6->sin6_addr.s6_addr, allow_loopback);
    }
    return "unsupported address family";
}

void sy_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    if (cap == 0)
        return;
    const char *ok = NULL;
    if (sa && sa->sa_family == AF_INET)
        ok = inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                       (socklen_t)cap);
    else if (sa && sa->sa_family == AF_INET6)
        ok = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                       (socklen_t)cap);
    if (!ok)
        snprintf(out, cap, "?");
}
