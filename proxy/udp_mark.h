/*
 * The original destination of a redirected UDP query, from its packet
 * mark: dotproxy's nftables table copies four bytes of the destination
 * address into the mark of every captured udp/53 packet (init/rules.c),
 * and the proxy reads them with SO_RCVMARK, which needs no capability.
 * Pure: decodes a mark the caller received.
 */
#ifndef PROXY_UDP_MARK_H
#define PROXY_UDP_MARK_H

#include <sys/socket.h>

#include <stdint.h>

struct resolv;

/*
 * Decodes mark, received on a listener of family (AF_INET or AF_INET6),
 * into the destination the client sent its query to (port 53), in out.
 * IPv4: the mark is the whole address (native byte order of the four
 * address bytes, as nftables copies them). Marks in 0.0.0.0/8 and
 * 240.0.0.0/4 are no destination (flag marks other software sets) and
 * give -ENOENT. IPv6: the mark is the address's last 32 bits, and the
 * address is the one nameserver of rc (may be NULL) that ends in them; no
 * such nameserver, or two different ones, give -ENOENT. A mark of 0 is
 * always -ENOENT. Returns 0 with out and *len set, or -ENOENT.
 */
int	udp_mark_dst(int family, uint32_t mark, const struct resolv *rc,
	    struct sockaddr_storage *out, socklen_t *len);

#endif
