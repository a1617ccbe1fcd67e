/*
 * Unit tests for routing: local zones from flags, from resolv.conf's search
 * list and the private reverse zones in transparent use, single labels,
 * loops, our own addresses, and the sorting of original destinations.
 */
#include "proxy/route.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/resolv.h"
#include "tests/unit/tap.h"

static struct dns_info
question(const char *name)
{
	struct dns_info q;

	memset(&q, 0, sizeof(q));
	if (dns_name_from_text(name, q.qname, &q.qname_len) != 0)
		abort();
	q.qtype = DNS_TYPE_A;
	q.qclass = DNS_CLASS_IN;
	return q;
}

static struct sockaddr_storage
v4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &s->sin_addr) != 1)
		abort();
	return ss;
}

static struct sockaddr_storage
v6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	if (inet_pton(AF_INET6, ip, &s->sin6_addr) != 1)
		abort();
	return ss;
}

static enum route_kind
decide(const struct route *r, const char *name, bool self)
{
	struct dns_info q = question(name);

	return route_decide(r, &q, self);
}

#define SA(ss) ((const struct sockaddr *)&(ss))

int
main(void)
{
	static const char rc_text[] =
	    "nameserver 10.96.0.10\nnameserver 192.0.2.53\n"
	    "search ns.svc.cluster.local svc.cluster.local cluster.local\n"
	    "options ndots:5\n";
	static char a0[] = "dotproxy", a1[] = "--local-zone",
	    a2[] = "corp.example", a3[] = "--transparent";
	char *argv_plain[] = { a0, a1, a2, NULL };
	char *argv_tp[] = { a0, a3, NULL };
	static struct config cfg, tcfg;
	static struct route r, tr;
	struct sockaddr_storage ss;
	struct resolv rc;
	char err[256];

	memset(&rc, 0, sizeof(rc));
	resolv_parse(rc_text, sizeof(rc_text) - 1, &rc);
	is(config_parse(&cfg, 3, argv_plain, NULL, err, sizeof(err)), 0,
	    "config with a local zone");
	is(config_parse(&tcfg, 2, argv_tp, NULL, err, sizeof(err)), 0,
	    "transparent config");
	route_init(&r, &cfg, &rc);
	route_init(&tr, &tcfg, &rc);

	is(decide(&r, "www.example.com", false), ROUTE_DOT, "public name: DoT");
	is(decide(&r, "corp.example", false), ROUTE_LOCAL, "the zone itself: local");
	is(decide(&r, "Host.CORP.example", false), ROUTE_LOCAL,
	    "under the zone, any case: local");
	is(decide(&r, "notcorp.example", false), ROUTE_DOT,
	    "a name that only ends in the same letters: DoT");
	is(decide(&r, "corp.example.org", false), ROUTE_DOT,
	    "the zone's labels inside a longer name: DoT");
	is(decide(&r, "a.b.c.d.e.f.g.corp.example", false), ROUTE_LOCAL,
	    "deep under the zone: local");
	is(decide(&r, "web.svc.cluster.local", false), ROUTE_DOT,
	    "search list is not local outside transparent use");
	is(decide(&r, "web", false), ROUTE_DOT,
	    "single label is not local outside transparent use");
	is(decide(&r, "www.example.com", true), ROUTE_LOOP,
	    "a query from the proxy itself: loop, whatever the name");
	is(decide(&r, "host.corp.example", true), ROUTE_LOOP,
	    "a local name from the proxy itself: loop too");

	is(decide(&tr, "web.svc.cluster.local", false), ROUTE_LOCAL,
	    "transparent: search-list suffix is local");
	is(decide(&tr, "web", false), ROUTE_LOCAL, "transparent: single label is local");
	is(decide(&tr, "1.0.0.10.in-addr.arpa", false), ROUTE_LOCAL,
	    "transparent: 10/8 reverse is local");
	is(decide(&tr, "1.0.16.172.in-addr.arpa", false), ROUTE_LOCAL,
	    "transparent: 172.16/12 reverse is local");
	is(decide(&tr, "1.0.32.172.in-addr.arpa", false), ROUTE_DOT,
	    "transparent: 172.32 reverse is public");
	is(decide(&tr, "1.0.64.100.in-addr.arpa", false), ROUTE_LOCAL,
	    "transparent: 100.64/10 reverse is local");
	is(decide(&tr, "1.0.128.100.in-addr.arpa", false), ROUTE_DOT,
	    "transparent: 100.128 reverse is public");
	is(decide(&tr, "www.example.com", false), ROUTE_DOT,
	    "transparent: public name: DoT");

	{
		static char b1[] = "--local-zone", b2[] = "one.example,two.example,.";
		char *argv_root[] = { a0, b1, b2, NULL };
		static struct config rcfg;
		static struct route rr;

		is(config_parse(&rcfg, 3, argv_root, NULL, err, sizeof(err)), 0,
		    "config with the root as a local zone");
		route_init(&rr, &rcfg, &rc);
		is(rr.nzones, 3, "three zones");
		is(decide(&rr, "www.example.com", false), ROUTE_LOCAL,
		    "the root zone makes every name local");
	}

	ss = v4("127.0.0.1", 15353);
	ok(route_is_self(&r, SA(ss)), "our listen address is self");
	ss = v4("127.0.0.1", 53);
	ok(!route_is_self(&r, SA(ss)), "same address, other port: not self");
	ss = v6("::1", 15353);
	ok(route_is_self(&r, SA(ss)), "our IPv6 listen address is self");

	ss = v4("127.0.0.1", 15353);
	is(route_classify(&r, SA(ss)), QC_DIRECT, "sent to our listener: direct");
	ss = v4("10.96.0.10", 53);
	is(route_classify(&r, SA(ss)), QC_RESOLV, "resolv.conf nameserver");
	ss = v4("192.0.2.53", 5353);
	is(route_classify(&r, SA(ss)), QC_RESOLV, "nameserver on another port");
	ss = v4("127.0.0.53", 53);
	is(route_classify(&r, SA(ss)), QC_LOOPBACK, "other loopback");
	ss = v4("172.20.0.1", 53);
	is(route_classify(&r, SA(ss)), QC_PRIVATE, "RFC 1918");
	ss = v4("100.100.0.1", 53);
	is(route_classify(&r, SA(ss)), QC_PRIVATE, "shared 100.64/10");
	ss = v4("203.0.113.9", 53);
	is(route_classify(&r, SA(ss)), QC_OTHER, "anything else");
	ss = v6("fd00::1", 53);
	is(route_classify(&r, SA(ss)), QC_PRIVATE, "ULA");
	ss = v6("fe80::1", 53);
	is(route_classify(&r, SA(ss)), QC_PRIVATE, "IPv6 link-local");
	ss = v6("2001:db8::1", 53);
	is(route_classify(&r, SA(ss)), QC_OTHER, "global IPv6");
	return tap_done();
}
