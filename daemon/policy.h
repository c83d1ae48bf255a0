/*
 * policy: lists of CIDR networks (IPv4 and IPv6), matching of socket
 * addresses against them, and the target rule built from them.  Pure: no
 * I/O, no logging.
 *
 * A deny list sees through every IPv6 wrapping of an IPv4 address
 * (mapped ::ffff:0:0/96, compatible ::/96, NAT64 64:ff9b::/96, 6to4
 * 2002::/16), so no spelling slips past an IPv4 rule.  An allow list sees
 * only through the mapped form, which is the same host; the others would
 * widen it.  A mapped entry (::ffff:a.b.c.d/96+n) is stored as IPv4.
 */
#ifndef FANOUTD_POLICY_H
#define FANOUTD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct policy_net {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned int prefix;
};

struct policy {
	struct policy_net *nets;
	size_t count;
};

/* Parse "a.b.c.d/len", "x::y/len" or a bare address (full length). */
int policy_net_parse(
    const char *text, struct policy_net *net, char *err, size_t errlen);
/* Parse text and append it; 0 or -1 with err filled. */
int policy_add(
    struct policy *policy, const char *text, char *err, size_t errlen);
/* Free the list; the struct itself may be reused. */
void policy_reset(struct policy *policy);
enum policy_unwrap {
	POLICY_DENY_LIST,  /* every wrapped IPv4 address counts */
	POLICY_ALLOW_LIST, /* only the mapped form counts */
};

/* True when the address, or an IPv4 address it wraps, is in the list. */
bool policy_match_in(const struct policy *policy, const struct sockaddr *sa,
    enum policy_unwrap mode);
/* policy_match_in(..., POLICY_DENY_LIST). */
bool policy_match(const struct policy *policy, const struct sockaddr *sa);
bool policy_match_text(const struct policy *policy, const char *addr);
/* 0.0.0.0/8 or ::, also wrapped in IPv6. */
bool policy_is_unspecified(const struct sockaddr *sa);
/*
 * May a fetch connect to sa?  Never to an unspecified address, never to
 * one deny matches; and when allow is not empty, only to one it admits.
 */
bool policy_target_allowed(const struct policy *deny,
    const struct policy *allow, const struct sockaddr *sa);
/* "a.b.c.d", "x::y" or "x::y%zone" -> address; 0, or -1 when not one. */
int policy_sockaddr_parse(const char *addr, struct sockaddr_storage *ss);
/* Same networks in the same order. */
bool policy_equal(const struct policy *a, const struct policy *b);

#endif
