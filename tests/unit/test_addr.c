/*
 * test_addr.c: the resolved-address guard (SPEC §5.6). Each literal goes
 * through the real getaddrinfo(AI_NUMERICHOST), as a destination name
 * would, and the resulting address is classified; so the odd numeric
 * spellings glibc accepts ("0x7f.1", "2130706433", "0177.0.0.1") are judged
 * by where they really lead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include "net/addr.h"

#define LOOPBACK "loopback address (allow_loopback_destinations is false)"
#define METADATA "cloud metadata address"
#define LINK_LOCAL "link-local address"
#define UNSPECIFIED "unspecified address"
#define MULTICAST "multicast address"
#define BROADCAST "broadcast address"
#define RESERVED "reserved address"

typedef struct {
    const char *literal;   /* as given to getaddrinfo */
    const char *canonical; /* what it resolves to (inet_ntop) */
    const char *refusal;   /* NULL: allowed */
} addr_case_t;

static const addr_case_t cases[] = {
    /* loopback, every spelling glibc accepts */
    {"127.0.0.1", "127.0.0.1", LOOPBACK},
    {"2130706433", "127.0.0.1", LOOPBACK},
    {"0x7f000001", "127.0.0.1", LOOPBACK},
    {"0X7F000001", "127.0.0.1", LOOPBACK},
    {"017700000001", "127.0.0.1", LOOPBACK},
    {"0177.0.0.1", "127.0.0.1", LOOPBACK},
    {"0177.0000.0000.0001", "127.0.0.1", LOOPBACK},
    {"0x7f.1", "127.0.0.1", LOOPBACK},
    {"0x7f.0.0.1", "127.0.0.1", LOOPBACK},
    {"127.1", "127.0.0.1", LOOPBACK},
    {"127.0.1", "127.0.0.1", LOOPBACK},
    {"127.255.255.254", "127.255.255.254", LOOPBACK},
    {"127.123.45.67", "127.123.45.67", LOOPBACK},
    {"::1", "::1", LOOPBACK},
    {"0:0:0:0:0:0:0:1", "::1", LOOPBACK},
    {"0000::1", "::1", LOOPBACK},
    {"::ffff:127.0.0.1", "::ffff:127.0.0.1", LOOPBACK},
    {"::ffff:7f00:1", "::ffff:127.0.0.1", LOOPBACK},
    {"::127.0.0.1", "::127.0.0.1", LOOPBACK},
    {"64:ff9b::127.0.0.1", "64:ff9b::7f00:1", LOOPBACK},
    {"::ffff:0:127.0.0.1", "::ffff:0:7f00:1", LOOPBACK},
    {"64:ff9b:1::7f00:1", "64:ff9b:1::7f00:1", LOOPBACK},
    /* cloud metadata */
    {"169.254.169.254", "169.254.169.254", METADATA},
    {"2852039166", "169.254.169.254", METADATA},
    {"0xa9fea9fe", "169.254.169.254", METADATA},
    {"0xA9FEA9FE", "169.254.169.254", METADATA},
    {"0xa9.0xfe.0xa9.0xfe", "169.254.169.254", METADATA},
    {"0251.0376.0251.0376", "169.254.169.254", METADATA},
    {"0251.254.169.254", "169.254.169.254", METADATA},
    {"169.254.43518", "169.254.169.254", METADATA},
    {"169.16689662", "169.254.169.254", METADATA},
    {"169.254.170.2", "169.254.170.2", METADATA},
    {"100.100.100.200", "100.100.100.200", METADATA},
    {"192.0.0.192", "192.0.0.192", METADATA},
    {"::ffff:169.254.169.254", "::ffff:169.254.169.254", METADATA},
    {"::ffff:a9fe:a9fe", "::ffff:169.254.169.254", METADATA},
    {"0:0:0:0:0:ffff:a9fe:a9fe", "::ffff:169.254.169.254", METADATA},
    {"::169.254.169.254", "::169.254.169.254", METADATA},
    {"64:ff9b::169.254.169.254", "64:ff9b::a9fe:a9fe", METADATA},
    {"64:ff9b::a9fe:aa02", "64:ff9b::a9fe:aa02", METADATA},
    /* IPv4-translated (SIIT, RFC 6145 ::ffff:0:0/96) and the local-use
     * NAT64 prefix (RFC 8215 64:ff9b:1::/48, with a /96 translator) reach
     * the embedded IPv4 address through a translator just as 64:ff9b::/96. */
    {"::ffff:0:169.254.169.254", "::ffff:0:a9fe:a9fe", METADATA},
    {"::ffff:0:a9fe:aa02", "::ffff:0:a9fe:aa02", METADATA},
    {"64:ff9b:1::169.254.169.254", "64:ff9b:1::a9fe:a9fe", METADATA},
    {"64:ff9b:1:ffff::a9fe:a9fe", "64:ff9b:1:ffff::a9fe:a9fe", METADATA},
    {"fd00:ec2::254", "fd00:ec2::254", METADATA},
    {"fd00:ec2::23", "fd00:ec2::23", METADATA},
    {"FD00:0EC2:0000::0254", "fd00:ec2::254", METADATA},
    /* link-local */
    {"169.254.0.1", "169.254.0.1", LINK_LOCAL},
    {"169.254.255.255", "169.254.255.255", LINK_LOCAL},
    {"::ffff:169.254.1.1", "::ffff:169.254.1.1", LINK_LOCAL},
    {"fe80::1", "fe80::1", LINK_LOCAL},
    {"fe80::1%1", "fe80::1", LINK_LOCAL},
    {"febf:ffff::1", "febf:ffff::1", LINK_LOCAL},
    /* unspecified */
    {"0.0.0.0", "0.0.0.0", UNSPECIFIED},
    {"0", "0.0.0.0", UNSPECIFIED},
    {"0x0", "0.0.0.0", UNSPECIFIED},
    {"0.1.2.3", "0.1.2.3", UNSPECIFIED},
    {"::", "::", UNSPECIFIED},
    {"0:0:0:0:0:0:0:0", "::", UNSPECIFIED},
    {"::ffff:0.0.0.0", "::ffff:0.0.0.0", UNSPECIFIED},
    /* multicast, broadcast, reserved */
    {"224.0.0.1", "224.0.0.1", MULTICAST},
    {"239.255.255.250", "239.255.255.250", MULTICAST},
    {"0xe0000001", "224.0.0.1", MULTICAST},
    {"ff02::1", "ff02::1", MULTICAST},
    {"ff0e::1234", "ff0e::1234", MULTICAST},
    {"::ffff:224.0.0.251", "::ffff:224.0.0.251", MULTICAST},
    {"255.255.255.255", "255.255.255.255", BROADCAST},
    {"4294967295", "255.255.255.255", BROADCAST},
    {"240.0.0.1", "240.0.0.1", RESERVED},
    {"255.255.255.254", "255.255.255.254", RESERVED},
    /* allowed: private (VPC endpoints live there), public, global IPv6 */
    {"10.0.0.1", "10.0.0.1", NULL},
    {"172.31.255.255", "172.31.255.255", NULL},
    {"192.168.0.1", "192.168.0.1", NULL},
    {"3232235521", "192.168.0.1", NULL},
    {"100.64.0.1", "100.64.0.1", NULL},
    {"100.100.100.201", "100.100.100.201", NULL},
    {"169.253.255.255", "169.253.255.255", NULL},
    {"169.255.0.1", "169.255.0.1", NULL},
    {"128.0.0.1", "128.0.0.1", NULL},
    {"126.255.255.255", "126.255.255.255", NULL},
    {"1.0.0.0", "1.0.0.0", NULL},
    {"8.8.8.8", "8.8.8.8", NULL},
    {"223.255.255.255", "223.255.255.255", NULL},
    {"2001:db8::1", "2001:db8::1", NULL},
    {"2600:1f18::1", "2600:1f18::1", NULL},
    {"fd00:ec3::254", "fd00:ec3::254", NULL},
    {"fc00::1", "fc00::1", NULL},
    {"fec0::1", "fec0::1", NULL},
    {"fe7f::1", "fe7f::1", NULL},
    {"::2:1:1", "::2:1:1", NULL},
    {"::ffff:10.1.2.3", "::ffff:10.1.2.3", NULL},
    {"64:ff9b::8.8.8.8", "64:ff9b::808:808", NULL},
    {"::ffff:0:10.1.2.3", "::ffff:0:a01:203", NULL},
    {"64:ff9b:1::808:808", "64:ff9b:1::808:808", NULL},
    {"64:ff9b:2::a9fe:a9fe", "64:ff9b:2::a9fe:a9fe", NULL},
    {"64:ff9c::169.254.169.254", "64:ff9c::a9fe:a9fe", NULL},
};

/* Resolves literal numerically; returns false when glibc refuses it. */
static bool resolve(const char *literal, struct sockaddr_storage *out)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(literal, "443", &hints, &res) != 0)
        return false;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
}

static void test_literals_through_getaddrinfo(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const addr_case_t *c = &cases[i];
        struct sockaddr_storage ss;
        if (!resolve(c->literal, &ss))
            fail_msg("getaddrinfo refused \"%s\"", c->literal);
        char text[INET6_ADDRSTRLEN];
        sy_addr_format((struct sockaddr *)&ss, text, sizeof text);
        if (strcmp(text, c->canonical) != 0)
            fail_msg("\"%s\" resolved to %s, expected %s", c->literal, text, c->canonical);
        const char *why = sy_addr_refusal((struct sockaddr *)&ss, false);
        if ((why == NULL) != (c->refusal == NULL) || (why && strcmp(why, c->refusal) != 0))
            fail_msg("\"%s\" (%s): expected %s, got %s", c->literal, text,
                     c->refusal ? c->refusal : "allowed", why ? why : "allowed");
        /* allow_loopback lifts exactly the loopback refusal. */
        const char *with_loopback = sy_addr_refusal((struct sockaddr *)&ss, true);
        if (c->refusal && strcmp(c->refusal, LOOPBACK) == 0)
            assert_null(with_loopback);
        else if ((with_loopback == NULL) != (why == NULL))
            fail_msg("\"%s\": allow_loopback changed the verdict to %s", c->literal,
                     with_loopback ? with_loopback : "allowed");
    }
}

/* Spellings glibc refuses never reach the guard at all. */
static void test_literals_glibc_refuses(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "7147006462",
        "0x41414141A9FEA9FE",
        "425.510.425.510",
        "0xa9fe.0xa9fe",
        "127.0.0.1.",
        "[::1]",
        "::ffff:999.1.1.1",
        "1.2.3.4.5",
        "0x",
        "08.0.0.1",
        "127.0.0.1 ",
        " 127.0.0.1",
        "",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct sockaddr_storage ss;
        if (resolve(refused[i], &ss)) {
            char text[INET6_ADDRSTRLEN];
            sy_addr_format((struct sockaddr *)&ss, text, sizeof text);
            fail_msg("getaddrinfo accepted \"%s\" as %s", refused[i], text);
        }
    }
}

static void test_other_families_and_format(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    assert_string_equal(sy_addr_refusal((struct sockaddr *)&ss, true),
                        "unsupported address family");
    assert_string_equal(sy_addr_refusal(NULL, true), "unsupported address family");
    char text[INET6_ADDRSTRLEN];
    sy_addr_format((struct sockaddr *)&ss, text, sizeof text);
    assert_string_equal(text, "?");

    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(0x0a000001);
    sy_addr_format((struct sockaddr *)&in, text, sizeof text);
    assert_string_equal(text, "10.0.0.1");
    /* Too small a buffer: no overflow, still a C string. */
    char tiny[4] = "zzz";
    sy_addr_format((struct sockaddr *)&in, tiny, sizeof tiny);
    assert_true(memchr(tiny, '\0', sizeof tiny) != NULL);
}

/* Every IPv4 address in a /8 boundary sweep: a refusal exactly inside the
 * documented ranges (sampled: the first, last and a middle address of every
 * /8). */
static void test_ipv4_range_edges(void **state)
{
    (void)state;
    for (uint32_t top = 0; top < 256; top++) {
        const uint32_t samples[] = {top << 24, (top << 24) | 0x00A9FE01u, (top << 24) | 0xFFFFFEu};
        for (size_t k = 0; k < 3; k++) {
            uint32_t a = samples[k];
            struct sockaddr_in in = {.sin_family = AF_INET};
            in.sin_addr.s_addr = htonl(a);
            const char *why = sy_addr_refusal((struct sockaddr *)&in, false);
            bool expect_refused = top == 0 || top == 127 || top >= 224;
            if (expect_refused != (why != NULL))
                fail_msg("%u.%u.%u.%u: %s", top, (a >> 16) & 255, (a >> 8) & 255, a & 255,
                         why ? why : "allowed");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_through_getaddrinfo),
        cmocka_unit_test(test_literals_glibc_refuses),
        cmocka_unit_test(test_other_families_and_format),
        cmocka_unit_test(test_ipv4_range_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
