/*
 * Unit tests for policy.c: CIDR parsing, prefix boundaries, and the
 * unwrapping of IPv4 addresses carried inside IPv6 ones, which is what
 * keeps "::ffff:169.254.169.254" from slipping past a 169.254.0.0/16 rule.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "check_run.h"

/* A policy built from a NULL-terminated list; fails the test on error. */
static void
build(struct policy *p, const char *const *cidrs)
{
	char err[256];

	memset(p, 0, sizeof(*p));
	for (; *cidrs != NULL; cidrs++)
		ck_assert_msg(policy_add(p, *cidrs, err, sizeof(err)) == 0,
		    "%s: %s", *cidrs, err);
}

static bool
match_one(const char *cidr, const char *addr)
{
	const char *const list[] = {cidr, NULL};
	struct policy p;
	bool hit;

	build(&p, list);
	hit = policy_match_text(&p, addr);
	policy_reset(&p);
	return hit;
}

START_TEST(parse_ipv4)
{
	struct policy_net net;
	char err[128];
	const uint8_t want[4] = {10, 0, 0, 0};

	ck_assert_int_eq(
	    policy_net_parse("10.0.0.0/8", &net, err, sizeof(err)), 0);
	ck_assert_int_eq(net.family, AF_INET);
	ck_assert_uint_eq(net.prefix, 8);
	ck_assert_mem_eq(net.addr, want, 4);
}
END_TEST

START_TEST(parse_ipv6)
{
	struct policy_net net;
	char err[128];
	uint8_t want[16] = {0xfe, 0x80};

	ck_assert_int_eq(
	    policy_net_parse("fe80::/10", &net, err, sizeof(err)), 0);
	ck_assert_int_eq(net.family, AF_INET6);
	ck_assert_uint_eq(net.prefix, 10);
	ck_assert_mem_eq(net.addr, want, 16);
}
END_TEST

START_TEST(parse_bare_address_is_full_length)
{
	struct policy_net net;
	char err[128];

	ck_assert_int_eq(
	    policy_net_parse("1.2.3.4", &net, err, sizeof(err)), 0);
	ck_assert_uint_eq(net.prefix, 32);
	ck_assert_int_eq(policy_net_parse("::1", &net, err, sizeof(err)), 0);
	ck_assert_int_eq(net.family, AF_INET6);
	ck_assert_uint_eq(net.prefix, 128);
	/* a mapped entry names an IPv4 address, and is stored as one */
	ck_assert_int_eq(
	    policy_net_parse("::ffff:1.2.3.4", &net, err, sizeof(err)), 0);
	ck_assert_int_eq(net.family, AF_INET);
	ck_assert_uint_eq(net.prefix, 32);
}
END_TEST

START_TEST(parse_host_bits_allowed_and_cleared)
{
	struct policy_net net;
	char err[128];
	const uint8_t want[4] = {10, 0, 0, 0};
	const uint8_t want12[4] = {172, 16, 0, 0};

	ck_assert_int_eq(
	    policy_net_parse("10.1.2.3/8", &net, err, sizeof(err)), 0);
	ck_assert_mem_eq(net.addr, want, 4);
	ck_assert_int_eq(
	    policy_net_parse("172.31.255.255/12", &net, err, sizeof(err)), 0);
	ck_assert_mem_eq(net.addr, want12, 4);
	ck_assert(match_one("10.1.2.3/8", "10.200.0.1"));
}
END_TEST

START_TEST(parse_prefix_edges)
{
	struct policy_net net;
	char err[128];

	ck_assert_int_eq(
	    policy_net_parse("0.0.0.0/0", &net, err, sizeof(err)), 0);
	ck_assert_uint_eq(net.prefix, 0);
	ck_assert_int_eq(
	    policy_net_parse("1.2.3.4/32", &net, err, sizeof(err)), 0);
	ck_assert_int_eq(policy_net_parse("::/0", &net, err, sizeof(err)), 0);
	ck_assert_int_eq(
	    policy_net_parse("::1/128", &net, err, sizeof(err)), 0);
}
END_TEST

static const char *const bad_cidrs[] = {
    "1.2.3.4/33",
    "::/129",
    "abc",
    "1.2.3/8",
    "",
    "1.2.3.4/",
    "/8",
    "1.2.3.4/-1",
    "1.2.3.4/+8",
    "1.2.3.4/8/8",
    "1.2.3.4 /8",
    " 1.2.3.4",
    "1.2.3.4/8 ",
    "1.2.3.4/x",
    "1.2.3.4/0008",
    "256.0.0.0/8",
    "01.2.3.4",
    "0xa9fea9fe",
    "169.254",
    "2130706433",
    "1:2:3:4:5:6:7:8:9",
    "fe80::1%eth0",
    "[::1]",
    "::1/64x",
    "1.2.3.4/99999999999999999999",
    "aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa/8",
};

START_TEST(parse_rejects_junk)
{
	struct policy_net net;
	char err[128] = "";

	ck_assert_msg(
	    policy_net_parse(bad_cidrs[_i], &net, err, sizeof(err)) == -1,
	    "accepted \"%s\"", bad_cidrs[_i]);
	ck_assert_msg(err[0] != '\0', "no reason for \"%s\"", bad_cidrs[_i]);
}
END_TEST

START_TEST(parse_reasons)
{
	struct policy_net net;
	char err[128];

	ck_assert_int_eq(
	    policy_net_parse("1.2.3.4/33", &net, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "prefix length must be 0 to 32");
	ck_assert_int_eq(
	    policy_net_parse("::/129", &net, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "prefix length must be 0 to 128");
	ck_assert_int_eq(policy_net_parse("abc", &net, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "not an IPv4 or IPv6 address");
	ck_assert_int_eq(policy_net_parse(NULL, &net, err, sizeof(err)), -1);
}
END_TEST

START_TEST(add_and_reset)
{
	struct policy p = {0};
	char err[128];

	ck_assert_int_eq(policy_add(&p, "10.0.0.0/8", err, sizeof(err)), 0);
	ck_assert_int_eq(policy_add(&p, "::1", err, sizeof(err)), 0);
	ck_assert_int_eq(policy_add(&p, "bogus", err, sizeof(err)), -1);
	ck_assert_uint_eq(p.count, 2);
	ck_assert(policy_match_text(&p, "10.9.9.9"));
	policy_reset(&p);
	ck_assert_uint_eq(p.count, 0);
	ck_assert_ptr_null(p.nets);
	ck_assert(!policy_match_text(&p, "10.9.9.9"));
	policy_reset(&p); /* twice is fine */
	ck_assert_int_eq(policy_add(&p, "192.0.2.0/24", err, sizeof(err)), 0);
	ck_assert(policy_match_text(&p, "192.0.2.7"));
	policy_reset(&p);
}
END_TEST

START_TEST(empty_policy_matches_nothing)
{
	struct policy p = {0};

	ck_assert(!policy_match_text(&p, "127.0.0.1"));
	ck_assert(!policy_match_text(&p, "::1"));
	ck_assert(!policy_match_text(NULL, "::1"));
	ck_assert(!policy_match(NULL, NULL));
}
END_TEST

START_TEST(ipv4_boundaries)
{
	ck_assert(match_one("10.0.0.0/8", "10.0.0.0"));
	ck_assert(match_one("10.0.0.0/8", "10.255.255.255"));
	ck_assert(!match_one("10.0.0.0/8", "9.255.255.255"));
	ck_assert(!match_one("10.0.0.0/8", "11.0.0.0"));
	/* a prefix that ends inside a byte */
	ck_assert(match_one("100.64.0.0/10", "100.64.0.0"));
	ck_assert(match_one("100.64.0.0/10", "100.127.255.255"));
	ck_assert(!match_one("100.64.0.0/10", "100.128.0.0"));
	ck_assert(!match_one("100.64.0.0/10", "100.63.255.255"));
	ck_assert(match_one("1.2.3.4", "1.2.3.4"));
	ck_assert(!match_one("1.2.3.4", "1.2.3.5"));
	ck_assert(match_one("0.0.0.0/0", "255.255.255.255"));
	ck_assert(match_one("192.0.2.128/31", "192.0.2.129"));
	ck_assert(!match_one("192.0.2.128/31", "192.0.2.130"));
}
END_TEST

START_TEST(ipv6_boundaries)
{
	ck_assert(match_one("fe80::/10", "fe80::"));
	ck_assert(
	    match_one("fe80::/10", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!match_one("fe80::/10", "fec0::"));
	ck_assert(!match_one("fe80::/10", "fe7f:ffff::1"));
	ck_assert(match_one("fd00:ec2::254/128", "fd00:ec2::254"));
	ck_assert(!match_one("fd00:ec2::254/128", "fd00:ec2::255"));
	ck_assert(match_one("2001:db8::/32", "2001:db8:ffff::1"));
	ck_assert(!match_one("2001:db8::/32", "2001:db9::"));
	ck_assert(match_one("::/0", "2001:db8::1"));
}
END_TEST

START_TEST(families_do_not_mix)
{
	/* 2001:db8::1 carries no IPv4 address, so no IPv4 rule applies */
	ck_assert(!match_one("0.0.0.0/0", "2001:db8::1"));
	ck_assert(!match_one("::/0", "1.2.3.4"));
	ck_assert(!match_one("::ffff:0:0/95", "1.2.3.4"));
}
END_TEST

/* A mapped entry matches the plain IPv4 address (issue 9, item 8). */
START_TEST(mapped_entry_matches_ipv4)
{
	ck_assert(match_one("::ffff:169.254.0.0/112", "169.254.169.254"));
	ck_assert(match_one("::ffff:169.254.0.0/112", "::ffff:169.254.1.1"));
	ck_assert(!match_one("::ffff:169.254.0.0/112", "169.255.0.1"));
	ck_assert(match_one("::ffff:0:0/96", "1.2.3.4"));
	ck_assert(match_one("::ffff:a9fe:a9fe", "169.254.169.254"));
}
END_TEST

/* Match text in allow-list mode. */
static bool
admits_one(const char *cidr, const char *addr)
{
	const char *const list[] = {cidr, NULL};
	struct sockaddr_storage ss;
	struct policy p;
	bool hit;

	build(&p, list);
	ck_assert_int_eq(policy_sockaddr_parse(addr, &ss), 0);
	hit = policy_match_in(
	    &p, (const struct sockaddr *)&ss, POLICY_ALLOW_LIST);
	policy_reset(&p);
	return hit;
}

/*
 * An allow list sees through the mapped form (the same host) and no other
 * wrapping: 10.0.0.0/8 must not admit 6to4, NAT64 or compatible addresses
 * that embed 10.x (issue 9, item 8).
 */
START_TEST(allow_list_unwraps_mapped_only)
{
	ck_assert(admits_one("10.0.0.0/8", "10.1.2.3"));
	ck_assert(admits_one("10.0.0.0/8", "::ffff:10.1.2.3"));
	ck_assert(!admits_one("10.0.0.0/8", "2002:a01:203::1"));
	ck_assert(!admits_one("10.0.0.0/8", "64:ff9b::10.1.2.3"));
	ck_assert(!admits_one("10.0.0.0/8", "::10.1.2.3"));
	/* the deny-list view of the same addresses does see them */
	ck_assert(match_one("10.0.0.0/8", "2002:a01:203::1"));
	ck_assert(match_one("10.0.0.0/8", "64:ff9b::10.1.2.3"));
	ck_assert(match_one("10.0.0.0/8", "::10.1.2.3"));
}
END_TEST

/* Each spelling of "this host" that Linux connects to loopback. */
static const char *const unspecified[] = {
    "0.0.0.0",
    "0.1.2.3",
    "0.255.255.255",
    "::",
    "::ffff:0.0.0.0",
    "::ffff:0.0.0.1",
    "64:ff9b::0.0.0.0",
    "2002:0:0::",
    "::0.0.0.2",
};

START_TEST(unspecified_is_never_a_target)
{
	const char *const all[] = {"0.0.0.0/0", "::/0", NULL};
	struct policy empty = {0}, every;
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;

	build(&every, all);
	ck_assert_int_eq(policy_sockaddr_parse(unspecified[_i], &ss), 0);
	ck_assert_msg(policy_is_unspecified(sa), "%s", unspecified[_i]);
	ck_assert_msg(!policy_target_allowed(&empty, &empty, sa),
	    "%s allowed by empty lists", unspecified[_i]);
	ck_assert_msg(!policy_target_allowed(&empty, &every, sa),
	    "%s allowed by an allow-everything list", unspecified[_i]);
	policy_reset(&every);
}
END_TEST

START_TEST(target_rule)
{
	const char *const deny[] = {"127.0.0.0/8", "::1/128", NULL};
	const char *const allow[] = {"10.0.0.0/8", NULL};
	struct policy d, a, empty = {0};
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;

	build(&d, deny);
	build(&a, allow);
	policy_sockaddr_parse("127.0.0.1", &ss);
	ck_assert(!policy_target_allowed(&d, &empty, sa));
	policy_sockaddr_parse("::ffff:127.0.0.1", &ss);
	ck_assert(!policy_target_allowed(&d, &empty, sa));
	policy_sockaddr_parse("::1", &ss);
	ck_assert(!policy_target_allowed(&d, &empty, sa));
	policy_sockaddr_parse("192.0.2.1", &ss);
	ck_assert(policy_target_allowed(&d, &empty, sa));
	ck_assert(!policy_target_allowed(&d, &a, sa));
	policy_sockaddr_parse("10.0.0.1", &ss);
	ck_assert(policy_target_allowed(&d, &a, sa));
	policy_sockaddr_parse("2002:a00:1::", &ss);
	ck_assert(!policy_target_allowed(&d, &a, sa));
	ck_assert_int_eq(policy_sockaddr_parse("not an address", &ss), -1);
	ck_assert_int_eq(policy_sockaddr_parse(NULL, &ss), -1);
	policy_reset(&d);
	policy_reset(&a);
}
END_TEST

/* Every IPv6 spelling of 169.254.169.254 must hit the IPv4 rule. */
static const char *const wrapped_metadata[] = {
    "::ffff:169.254.169.254",   /* mapped */
    "::ffff:a9fe:a9fe",         /* mapped, hex */
    "::169.254.169.254",        /* compatible */
    "::a9fe:a9fe",              /* compatible, hex */
    "64:ff9b::169.254.169.254", /* NAT64 */
    "64:ff9b::a9fe:a9fe",       /* NAT64, hex */
    "2002:a9fe:a9fe::",         /* 6to4 */
    "2002:a9fe:a9fe:1:2:3:4:5", /* 6to4, any host part */
};

START_TEST(unwrap_matches_ipv4_rule)
{
	ck_assert_msg(match_one("169.254.0.0/16", wrapped_metadata[_i]),
	    "%s slipped past 169.254.0.0/16", wrapped_metadata[_i]);
	ck_assert_msg(match_one("169.254.169.254", wrapped_metadata[_i]),
	    "%s slipped past 169.254.169.254/32", wrapped_metadata[_i]);
}
END_TEST

/* The same wrappings around an address outside the rule do not match. */
static const char *const wrapped_other[] = {
    "::ffff:8.8.8.8",
    "::8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::",
    "64:ff9b:1::a9fe:a9fe", /* not the /96 well-known prefix */
    "2003:a9fe:a9fe::",     /* not 2002::/16 */
    "::fffe:a9fe:a9fe",     /* not the mapped prefix */
    "fe80::a9fe:a9fe",
};

START_TEST(unwrap_non_match)
{
	ck_assert_msg(!match_one("169.254.0.0/16", wrapped_other[_i]),
	    "%s matched 169.254.0.0/16", wrapped_other[_i]);
}
END_TEST

START_TEST(unspecified_and_loopback_not_compatible)
{
	/* :: and ::1 are IPv6's own, not 0.0.0.0 and 0.0.0.1 */
	ck_assert(!match_one("0.0.0.0/8", "::"));
	ck_assert(!match_one("0.0.0.0/8", "::1"));
	ck_assert(match_one("0.0.0.0/8", "::2"));
	ck_assert(match_one("::1/128", "::1"));
}
END_TEST

START_TEST(ipv6_rule_matches_raw_wrapped)
{
	ck_assert(match_one("::ffff:0:0/96", "::ffff:10.0.0.1"));
	ck_assert(match_one("::ffff:0:0/96", "10.0.0.1"));
	ck_assert(match_one("2002::/16", "2002:a9fe:a9fe::"));
	ck_assert(match_one("64:ff9b::/96", "64:ff9b::1.2.3.4"));
}
END_TEST

START_TEST(match_sockaddr)
{
	const char *const list[] = {"169.254.0.0/16", "fe80::/10", NULL};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct policy p;

	build(&p, list);
	inet_pton(AF_INET, "169.254.169.254", &sin.sin_addr);
	ck_assert(policy_match(&p, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "169.255.0.1", &sin.sin_addr);
	ck_assert(!policy_match(&p, (struct sockaddr *)&sin));
	inet_pton(AF_INET6, "::ffff:169.254.1.1", &sin6.sin6_addr);
	ck_assert(policy_match(&p, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "64:ff9b::a9fe:0101", &sin6.sin6_addr);
	ck_assert(policy_match(&p, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "2002:a9fe:0101::", &sin6.sin6_addr);
	ck_assert(policy_match(&p, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr);
	sin6.sin6_scope_id = 2;
	ck_assert(policy_match(&p, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	ck_assert(!policy_match(&p, (struct sockaddr *)&sin6));
	ck_assert(!policy_match(&p, (struct sockaddr *)&sun));
	ck_assert(!policy_match(&p, NULL));
	policy_reset(&p);
}
END_TEST

START_TEST(match_text_edges)
{
	ck_assert(!match_one("0.0.0.0/0", "not an address"));
	ck_assert(!match_one("0.0.0.0/0", ""));
	ck_assert(!match_one("0.0.0.0/0", "0xa9fea9fe"));
	/* a zone names an interface, not a different network */
	ck_assert(match_one("fe80::/10", "fe80::1%eth0"));
	ck_assert(!match_one("0.0.0.0/0", "1.2.3.4%eth0"));
	ck_assert(!match_one(
	    "::/0", "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000"));
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *parse = tcase_create("parse");
	TCase *match = tcase_create("match");

	tcase_add_test(parse, parse_ipv4);
	tcase_add_test(parse, parse_ipv6);
	tcase_add_test(parse, parse_bare_address_is_full_length);
	tcase_add_test(parse, parse_host_bits_allowed_and_cleared);
	tcase_add_test(parse, parse_prefix_edges);
	tcase_add_loop_test(parse, parse_rejects_junk, 0,
	    sizeof(bad_cidrs) / sizeof(bad_cidrs[0]));
	tcase_add_test(parse, parse_reasons);
	tcase_add_test(parse, add_and_reset);
	suite_add_tcase(s, parse);

	tcase_add_test(match, empty_policy_matches_nothing);
	tcase_add_test(match, ipv4_boundaries);
	tcase_add_test(match, ipv6_boundaries);
	tcase_add_test(match, families_do_not_mix);
	tcase_add_test(match, mapped_entry_matches_ipv4);
	tcase_add_test(match, allow_list_unwraps_mapped_only);
	tcase_add_loop_test(match, unspecified_is_never_a_target, 0,
	    sizeof(unspecified) / sizeof(unspecified[0]));
	tcase_add_test(match, target_rule);
	tcase_add_loop_test(match, unwrap_matches_ipv4_rule, 0,
	    sizeof(wrapped_metadata) / sizeof(wrapped_metadata[0]));
	tcase_add_loop_test(match, unwrap_non_match, 0,
	    sizeof(wrapped_other) / sizeof(wrapped_other[0]));
	tcase_add_test(match, unspecified_and_loopback_not_compatible);
	tcase_add_test(match, ipv6_rule_matches_raw_wrapped);
	tcase_add_test(match, match_sockaddr);
	tcase_add_test(match, match_text_edges);
	suite_add_tcase(s, match);
	return s;
}

int
main(void)
{
	return check_run(policy_suite());
}
