/*
 * policy: CIDR lists and address matching.
 *
 * A network is stored canonically (host bits cleared) as 4 or 16 bytes plus
 * a prefix length, so matching is a byte compare and one masked byte.  The
 * deny list is a security boundary: an IPv6 address that carries an IPv4
 * address (mapped, compatible, NAT64, 6to4) is matched both as itself and
 * as the IPv4 address it wraps, so "::ffff:169.254.169.254" cannot slip past
 * a "169.254.0.0/16" rule.  Allow lists are the other boundary and must not
 * grow: they see through the mapped form only.  The unspecified addresses
 * (0.0.0.0/8, ::) are never a target, whatever the lists say.  Pure: no
 * I/O, no logging; the caller reports.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/* Longest accepted text: a full IPv6 literal with an IPv4 tail plus /128. */
#define CIDR_TEXT_MAX (INET6_ADDRSTRLEN + 4)

static const uint8_t v4mapped_prefix[12] = {[10] = 0xff, [11] = 0xff};
static const uint8_t nat64_prefix[12] = {0x00, 0x64, 0xff, 0x9b};

/* Parse the decimal prefix length after '/'; -1 on anything but 1-3 digits. */
static int
parse_prefix(const char *s, unsigned int max)
{
	unsigned int v = 0;
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9' || n == 3)
			return -1;
		v = v * 10 + (unsigned int)(s[n] - '0');
	}
	if (n == 0 || v > max)
		return -1;
	return (int)v;
}

/* Clear the bits past the prefix, so equal networks compare equal. */
static void
clear_host_bits(uint8_t *addr, size_t len, unsigned int prefix)
{
	size_t i;

	for (i = prefix / 8; i < len; i++) {
		if (i == prefix / 8 && prefix % 8 != 0)
			addr[i] &= (uint8_t)(0xff << (8 - prefix % 8));
		else
			addr[i] = 0;
	}
}

/*
 * An IPv4-mapped entry (::ffff:a.b.c.d/96+n) names IPv4 addresses: store
 * it as a.b.c.d/n, so that it matches the plain IPv4 address too, which
 * is what an operator writing ::ffff:169.254.0.0/112 means.
 */
static void
policy_net_unmap(struct policy_net *net)
{
	if (net->family != AF_INET6 || net->prefix < 96 ||
	    memcmp(net->addr, v4mapped_prefix, 12) != 0)
		return;
	memmove(net->addr, net->addr + 12, 4);
	memset(net->addr + 4, 0, 12);
	net->family = AF_INET;
	net->prefix -= 96;
}

int
policy_net_parse(
    const char *text, struct policy_net *net, char *err, size_t errlen)
{
	char buf[CIDR_TEXT_MAX + 1];
	char *slash;
	unsigned int max;
	int prefix;
	size_t len;

	len = text != NULL ? strlen(text) : 0;
	if (len == 0 || len > CIDR_TEXT_MAX) {
		snprintf(err, errlen, "%s",
		    len == 0 ? "empty network" : "network text too long");
		return -1;
	}
	memcpy(buf, text, len + 1);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';

	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "not an IPv4 or IPv6 address");
		return -1;
	}

	prefix = slash != NULL ? parse_prefix(slash + 1, max) : (int)max;
	if (prefix < 0) {
		snprintf(err, errlen, "prefix length must be 0 to %u", max);
		return -1;
	}
	net->prefix = (unsigned int)prefix;
	clear_host_bits(net->addr, max / 8, net->prefix);
	policy_net_unmap(net);
	return 0;
}

int
policy_add(struct policy *policy, const char *text, char *err, size_t errlen)
{
	struct policy_net net, *nets;

	if (policy_net_parse(text, &net, err, errlen) == -1)
		return -1;
	nets = reallocarray(policy->nets, policy->count + 1, sizeof(*nets));
	if (nets == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	nets[policy->count++] = net;
	policy->nets = nets;
	return 0;
}

void
policy_reset(struct policy *policy)
{
	free(policy->nets);
	policy->nets = NULL;
	policy->count = 0;
}

/* True when the first prefix bits of a and b agree. */
static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned int prefix)
{
	size_t whole = prefix / 8;
	unsigned int rest = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static bool
match_bytes(const struct policy *policy, int family, const uint8_t *addr)
{
	size_t i;

	for (i = 0; i < policy->count; i++) {
		const struct policy_net *net = &policy->nets[i];

		if (net->family == family &&
		    prefix_equal(net->addr, addr, net->prefix))
			return true;
	}
	return false;
}

/*
 * Find the IPv4 address an IPv6 address carries, if any.  Mapped
 * (::ffff:a.b.c.d) is the same host in every mode; the other wrappings
 * (compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) lead to that
 * host only through a translator, so only deny lists see through them:
 * an allow entry 10.0.0.0/8 must not admit 2002:a00:1::.  Compatible
 * addresses exclude :: and ::1, IPv6's own unspecified and loopback
 * addresses.
 */
static bool
unwrap_v4(const uint8_t *a6, enum policy_unwrap mode, uint8_t *a4)
{
	static const uint8_t zero[12];
	const uint8_t *src = NULL;

	if (memcmp(a6, v4mapped_prefix, 12) == 0)
		src = a6 + 12;
	else if (mode == POLICY_ALLOW_LIST)
		return false;
	else if (memcmp(a6, nat64_prefix, 12) == 0)
		src = a6 + 12;
	else if (memcmp(a6, zero, 12) == 0 &&
	         !(a6[12] == 0 && a6[13] == 0 && a6[14] == 0 && a6[15] <= 1))
		src = a6 + 12;
	else if (a6[0] == 0x20 && a6[1] == 0x02)
		src = a6 + 2; /* 6to4: 2002:AABB:CCDD::/48 */
	if (src == NULL)
		return false;
	memcpy(a4, src, 4);
	return true;
}

/* Match raw IPv6 bytes, then the IPv4 address they wrap, if any. */
static bool
match_v6(
    const struct policy *policy, const uint8_t *a6, enum policy_unwrap mode)
{
	uint8_t a4[4];

	if (match_bytes(policy, AF_INET6, a6))
		return true;
	return unwrap_v4(a6, mode, a4) && match_bytes(policy, AF_INET, a4);
}

bool
policy_match_in(const struct policy *policy, const struct sockaddr *sa,
    enum policy_unwrap mode)
{
	if (policy == NULL || sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		return match_bytes(
		    policy, AF_INET, (const uint8_t *)&sin->sin_addr);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;

		return match_v6(policy, sin6->sin6_addr.s6_addr, mode);
	}
	return false;
}

bool
policy_match(const struct policy *policy, const struct sockaddr *sa)
{
	return policy_match_in(policy, sa, POLICY_DENY_LIST);
}

/*
 * The unspecified addresses: 0.0.0.0/8 and ::, alone or wrapped.  Linux
 * connects 0.0.0.0 and :: to the local host, so whatever the lists say,
 * a target there is the loopback interface in disguise.
 */
bool
policy_is_unspecified(const struct sockaddr *sa)
{
	static const uint8_t zero[16];
	const uint8_t *a6;
	uint8_t a4[4];

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)sa)
		               ->sin_addr)[0] == 0;
	if (sa->sa_family != AF_INET6)
		return false;
	a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (memcmp(a6, zero, 16) == 0)
		return true;
	return unwrap_v4(a6, POLICY_DENY_LIST, a4) && a4[0] == 0;
}

bool
policy_target_allowed(const struct policy *deny, const struct policy *allow,
    const struct sockaddr *sa)
{
	if (policy_is_unspecified(sa) ||
	    policy_match_in(deny, sa, POLICY_DENY_LIST))
		return false;
	return allow == NULL || allow->count == 0 ||
	       policy_match_in(allow, sa, POLICY_ALLOW_LIST);
}

/*
 * Text that is not an address is no address.  A "%zone" suffix (as in
 * fe80::1%eth0) is ignored: zones do not change which network it is.
 */
int
policy_sockaddr_parse(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN];
	size_t len;

	memset(ss, 0, sizeof(*ss));
	if (addr == NULL)
		return -1;
	len = strchr(addr, ':') != NULL ? strcspn(addr, "%") : strlen(addr);
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, addr, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

bool
policy_match_text(const struct policy *policy, const char *addr)
{
	struct sockaddr_storage ss;

	return policy_sockaddr_parse(addr, &ss) == 0 &&
	       policy_match(policy, (const struct sockaddr *)&ss);
}

bool
policy_equal(const struct policy *a, const struct policy *b)
{
	return a->count == b->count &&
	       (a->count == 0 ||
	           memcmp(a->nets, b->nets, a->count * sizeof(*a->nets)) == 0);
}
