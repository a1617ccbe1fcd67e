/*
 * The original destination of a redirected UDP query, from its packet
 * mark, which the proxy reads with SO_RCVMARK (no capability needed).
 * Pure: decodes a mark the caller received.
 *
 * The mark is written by dotproxy's own nftables rules (init/rules.c,
 * where the choice is argued) and names a nameserver instead of carrying
 * an address, because 32 bits hold neither an IPv6 address nor an IPv4
 * address plus a sign that the mark is ours:
 *   bits 31-16  UDP_MARK_TAG (0xd07d): anything else is another
 *               component's mark and is never read as an address;
 *   bits 15-8   the digest of the nameserver list the rules were built
 *               from (udp_mark_sum), compared with our resolv.conf's;
 *   bits 7-0    the slot: 0 = captured, the destination is none of the
 *               listed nameservers; i + 1 = the i-th nameserver.
 * So every nameserver of resolv.conf (IPv4 or IPv6) is known exactly.
 * Any other destination is never mapped to a listed server that shares
 * bits with it: the caller treats it as an unknown destination, which for
 * a local-zone query means conntrack when the proxy has CAP_NET_ADMIN,
 * else the documented fallback, the first nameserver of resolv.conf
 * (README "The exact UDP original destination"), counted apart.
 */
#ifndef PROXY_UDP_MARK_H
#define PROXY_UDP_MARK_H

#include <sys/socket.h>

#include <stdint.h>

struct resolv;

#define UDP_MARK_TAG		0xd07d0000u	/* = RULES_MARK_TAG */
#define UDP_MARK_TAG_MASK	0xffff0000u

/* What a mark said; the udp_mark_dst result for each. */
enum udp_mark_kind {
	UDP_MARK_NONE = 0,	/* no mark, or not ours: -ENOENT */
	UDP_MARK_NAMESERVER,	/* a listed nameserver: 0, out set */
	UDP_MARK_OTHER,		/* ours, destination not listed: -ENXIO */
	UDP_MARK_STALE,		/* ours, for another list: -ESTALE */
	UDP_MARK_NKINDS
};

/*
 * The 8-bit digest of rc's nameserver list: FNV-1a (32 bits) over, per
 * server in order, one byte 4 or 6 and its 4 or 16 address bytes, folded
 * by XOR of its four bytes. Must equal init/rules.c rules_mark_sum.
 */
uint8_t	udp_mark_sum(const struct resolv *rc);

/*
 * Decodes mark, received on a listener of family (AF_INET or AF_INET6),
 * against rc (the proxy's resolv.conf; NULL is an empty one). Returns 0
 * with out (port 53) and *len set: the query went to that nameserver.
 * -ENOENT: no mark of ours (none, or another component's). -ENXIO: ours,
 * and the destination is none of the listed nameservers (or the rules
 * were given no list at all). -ESTALE: ours,
 * but made for another nameserver list (resolv.conf changed since the
 * rules were installed), or a slot that does not fit rc or family.
 * *kind (may be NULL) gets the enum udp_mark_kind of the answer.
 */
int	udp_mark_dst(int family, uint32_t mark, const struct resolv *rc,
	    struct sockaddr_storage *out, socklen_t *len,
	    enum udp_mark_kind *kind);

#endif
