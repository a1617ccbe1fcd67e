/*
 * Routing: which way a question goes. Pure (pipeline layer, no I/O): the
 * local zones (flags, and in transparent use the resolv.conf search list,
 * single-label names and the private reverse zones), our own listen
 * addresses, and the sorting of original destinations for the captured-
 * queries counter. The query pipeline asks it, then acts: the cache and
 * the DoT pool, a local resolver in plain DNS, or an answer of its own for
 * a query that came back from the proxy itself.
 */
#ifndef PROXY_ROUTE_H
#define PROXY_ROUTE_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "dns.h"
#include "resolv.h"

enum route_kind {
	ROUTE_DOT = 0,	/* cache, then the DoT upstreams */
	ROUTE_LOCAL,	/* cache by resolver, then plain DNS to it */
	ROUTE_LOOP,	/* our own query came back: answer, never forward */
};

/* Where a captured query was originally going. */
enum route_capture {
	QC_DIRECT = 0,	/* not redirected: sent to our listener itself */
	QC_RESOLV,	/* a nameserver of resolv.conf */
	QC_LOOPBACK,	/* some other loopback address */
	QC_PRIVATE,	/* RFC 1918, ULA, link-local, shared */
	QC_OTHER,	/* anything else (a public resolver) */
	QC_UNKNOWN,	/* UDP without a conntrack lookup */
	QC_N
};

extern const char *const route_capture_names[QC_N];

#define ROUTE_MAX_ZONES	(CFG_MAX_ZONES + RESOLV_MAX_SEARCH + 96)
#define ROUTE_ZT	512	/* zone hash slots, > 2 * ROUTE_MAX_ZONES */

struct route {
	const struct config	*cfg;		/* borrowed */
	const struct resolv	*rc;		/* borrowed */
	struct cfg_zone		 zones[ROUTE_MAX_ZONES];
	size_t			 nzones;
	/* Zones by the hash of their folded name (index + 1, linear
	 * probing): a question is looked up once per label, not compared
	 * with every zone. */
	uint16_t		 zt[ROUTE_ZT];
};

/* Fills r from cfg and rc (both borrowed for r's life). */
void		route_init(struct route *r, const struct config *cfg,
		    const struct resolv *rc);

/*
 * The way for question q. from_self: the client is the proxy itself (TCP:
 * its peer UID; UDP: its source is one of our own plain sockets).
 */
enum route_kind	route_decide(const struct route *, const struct dns_info *q,
		    bool from_self);
/* True if q stays inside the cluster or host (a local zone). */
bool		route_is_local(const struct route *, const struct dns_info *q);
/* True if sa is one of our own listen addresses (sending there loops). */
bool		route_is_self(const struct route *, const struct sockaddr *sa);
/* Sorts an original destination for the captured-queries counter. */
enum route_capture route_classify(const struct route *,
		    const struct sockaddr *sa);
/* Address and port equal, AF_INET or AF_INET6. */
bool		route_addr_equal(const struct sockaddr *, const struct sockaddr *);

#endif
