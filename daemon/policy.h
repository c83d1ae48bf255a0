/*
 * policy: lists of CIDR networks (IPv4 and IPv6) and matching of socket
 * addresses against them.  Pure: no I/O, no logging.  IPv4 addresses
 * wrapped in IPv6 (mapped ::ffff:0:0/96, compatible ::/96, NAT64
 * 64:ff9b::/96, 6to4 2002::/16) are unwrapped and matched as IPv4 too, so
 * no spelling of an address slips past an IPv4 rule.
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
/* True when the address (or the IPv4 address it wraps) is in the list. */
bool policy_match(const struct policy *policy, const struct sockaddr *sa);
bool policy_match_text(const struct policy *policy, const char *addr);

#endif
