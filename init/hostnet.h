/*
 * Is this the node's own network namespace? dotproxy-init asks before it
 * installs anything (see hostnet.c for what is checked and why).
 */
#ifndef INIT_HOSTNET_H
#define INIT_HOSTNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTNET_MAX_IPS		8	/* per list: a dual-stack pod has 2 */

/* One IPv4 or IPv6 address, compared by value. */
struct hostnet_ip {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* 4 or 16 bytes used */
};

/* What the caller was told: the downward API's status.podIP(s) and
 * status.hostIP(s). Either list may be empty (not given). */
struct hostnet_in {
	struct hostnet_ip	pod[HOSTNET_MAX_IPS];
	size_t			npod;
	struct hostnet_ip	host[HOSTNET_MAX_IPS];
	size_t			nhost;
};

/*
 * Parses an IPv4 or IPv6 address (no prefix, no brackets) into *ip.
 * Returns 0, or -EINVAL if s is not one.
 */
int	hostnet_ip_parse(const char *s, struct hostnet_ip *ip);

/*
 * Pure: true if an address is on both lists (a hostNetwork pod's IP is
 * its node's). Writes one sentence saying which into why (cap bytes).
 */
bool	hostnet_same_ip(const struct hostnet_in *in, char *why, size_t cap);

/*
 * True if one of the host addresses is assigned to an interface of the
 * calling thread's network namespace (getifaddrs). Writes why as above.
 * An error reading the addresses counts as "not seen" (false).
 */
bool	hostnet_host_ip_local(const struct hostnet_in *in, char *why,
	    size_t cap);

/*
 * True if the calling thread is in the kernel's initial network namespace,
 * judged from the sysctls under proc (normally "/proc") that the kernel
 * registers for that namespace only. Writes why as above. Missing or
 * unreadable files count as "not seen" (false).
 */
bool	hostnet_initial_netns(const char *proc, char *why, size_t cap);

#endif
