/*
 * Packet-mark decoding of a UDP query's original destination (see
 * udp_mark.h). Pure layer: no I/O, no globals. The encoding is defined
 * once, in init/rules.c (rules_mark); init/ and proxy/ share no code, so
 * the digest is written twice and both unit tests pin it to the same
 * values.
 */
#include "udp_mark.h"

#include <netinet/in.h>

#include <errno.h>
#include <string.h>

#include "resolv.h"

#define UDP_MARK_DNS_PORT	53
#define UDP_MARK_SUM_SHIFT	8

uint8_t
udp_mark_sum(const struct resolv *rc)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;
	const uint8_t *a;
	uint32_t h = 2166136261u;
	size_t i, k, alen;
	uint8_t tag;

	for (i = 0; rc != NULL && i < rc->nns && i < RESOLV_MAX_NS; i++) {
		if (rc->ns[i].ss_family == AF_INET6) {
			s6 = (const struct sockaddr_in6 *)&rc->ns[i];
			a = s6->sin6_addr.s6_addr;
			tag = 6;
			alen = 16;
		} else {
			s4 = (const struct sockaddr_in *)&rc->ns[i];
			a = (const uint8_t *)&s4->sin_addr;
			tag = 4;
			alen = 4;
		}
		h = (h ^ tag) * 16777619u;
		for (k = 0; k < alen; k++)
			h = (h ^ a[k]) * 16777619u;
	}
	return (uint8_t)(h ^ h >> 8 ^ h >> 16 ^ h >> 24);
}

int
udp_mark_dst(int family, uint32_t mark, const struct resolv *rc,
    struct sockaddr_storage *out, socklen_t *len, enum udp_mark_kind *kind)
{
	enum udp_mark_kind k;
	unsigned slot;
	size_t nns;
	int r;

	nns = rc != NULL ? rc->nns : 0;
	slot = mark & 0xff;
	if ((mark & UDP_MARK_TAG_MASK) != UDP_MARK_TAG ||
	    (family != AF_INET && family != AF_INET6)) {
		k = UDP_MARK_NONE;
		r = -ENOENT;
	} else if (slot == 0 && (uint8_t)(mark >> UDP_MARK_SUM_SHIFT) ==
	    udp_mark_sum(NULL)) {
		/* Rules that knew no nameserver (a runtime without the dns
		 * capability): nothing stale, the destination is unknown. */
		k = UDP_MARK_OTHER;
		r = -ENXIO;
	} else if ((uint8_t)(mark >> UDP_MARK_SUM_SHIFT) != udp_mark_sum(rc)) {
		k = UDP_MARK_STALE;
		r = -ESTALE;
	} else if (slot == 0) {
		k = UDP_MARK_OTHER;
		r = -ENXIO;
	} else if (slot > nns || slot > RESOLV_MAX_NS ||
	    rc->ns[slot - 1].ss_family != family) {
		/* Our rules never write that for this list: not trusted. */
		k = UDP_MARK_STALE;
		r = -ESTALE;
	} else {
		memset(out, 0, sizeof(*out));
		memcpy(out, &rc->ns[slot - 1], rc->ns_len[slot - 1]);
		if (family == AF_INET)
			((struct sockaddr_in *)out)->sin_port =
			    htons(UDP_MARK_DNS_PORT);
		else
			((struct sockaddr_in6 *)out)->sin6_port =
			    htons(UDP_MARK_DNS_PORT);
		*len = rc->ns_len[slot - 1];
		k = UDP_MARK_NAMESERVER;
		r = 0;
	}
	if (kind != NULL)
		*kind = k;
	return r;
}
