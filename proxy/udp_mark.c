/*
 * Packet-mark decoding of a UDP query's original destination (see
 * udp_mark.h). Pure layer: no I/O, no globals. The encoding is defined
 * once, in init/rules.c (RULES_MARK); this file must agree with it.
 */
#include "udp_mark.h"

#include <netinet/in.h>

#include <errno.h>
#include <string.h>

#include "resolv.h"

#define UDP_MARK_DNS_PORT	53

int
udp_mark_dst(int family, uint32_t mark, const struct resolv *rc,
    struct sockaddr_storage *out, socklen_t *len)
{
	const struct sockaddr_in6 *ns, *found = NULL;
	struct sockaddr_in *s4;
	uint8_t b[4];
	size_t i;

	if (mark == 0)
		return -ENOENT;
	/* The register held the address bytes; the mark is that memory. */
	memcpy(b, &mark, sizeof(b));
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		if (b[0] == 0 || b[0] >= 240)
			return -ENOENT;
		s4 = (struct sockaddr_in *)out;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(UDP_MARK_DNS_PORT);
		memcpy(&s4->sin_addr, b, sizeof(b));
		*len = sizeof(*s4);
		return 0;
	}
	if (family != AF_INET6 || rc == NULL)
		return -ENOENT;
	for (i = 0; i < rc->nns && i < RESOLV_MAX_NS; i++) {
		if (rc->ns[i].ss_family != AF_INET6)
			continue;
		ns = (const struct sockaddr_in6 *)&rc->ns[i];
		if (memcmp(ns->sin6_addr.s6_addr + 12, b, sizeof(b)) != 0)
			continue;
		if (found != NULL && memcmp(&found->sin6_addr, &ns->sin6_addr,
		    sizeof(ns->sin6_addr)) != 0)
			return -ENOENT;	/* ambiguous: leave it to the fallback */
		found = ns;
	}
	if (found == NULL)
		return -ENOENT;
	memcpy(out, found, sizeof(*found));
	((struct sockaddr_in6 *)out)->sin6_port = htons(UDP_MARK_DNS_PORT);
	*len = sizeof(*found);
	return 0;
}
