/*
 * Unit tests for udp_mark.c: the packet mark the redirect rules write
 * (four bytes of the destination address, as they are in the packet)
 * decoded into a UDP query's original destination, IPv4 and IPv6, and the
 * marks that must not be taken for one.
 */
#include "proxy/udp_mark.h"

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <string.h>

#include "proxy/resolv.h"
#include "tests/unit/tap.h"

/* The mark nftables writes for addr: its bytes, read as a host u32. */
static uint32_t
mark_of(int family, const char *addr)
{
	uint8_t b[16];
	uint32_t m;

	inet_pton(family, addr, b);
	memcpy(&m, family == AF_INET ? b : b + 12, sizeof(m));
	return m;
}

static const char *
text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	if (ss->ss_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    buf, (socklen_t)cap);
	return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr,
	    buf, (socklen_t)cap);
}

int
main(void)
{
	static const char two[] =
	    "nameserver 2001:db8::2\nnameserver 2001:db8::3\n"
	    "nameserver 192.0.2.2\n";
	static const char clash[] =
	    "nameserver 2001:db8:1::53\nnameserver 2001:db8:2::53\n";
	struct sockaddr_storage out;
	struct resolv rc, rc2;
	socklen_t len = 0;
	char buf[64];

	resolv_parse(two, sizeof(two) - 1, &rc);
	resolv_parse(clash, sizeof(clash) - 1, &rc2);

	is(udp_mark_dst(AF_INET, mark_of(AF_INET, "192.0.2.3"), NULL, &out,
	    &len), 0, "IPv4: the mark is the address");
	ok(out.ss_family == AF_INET && len == sizeof(struct sockaddr_in) &&
	    strcmp(text(&out, buf, sizeof(buf)), "192.0.2.3") == 0 &&
	    ntohs(((struct sockaddr_in *)&out)->sin_port) == 53,
	    "IPv4: 192.0.2.3 port 53 (got %s)", buf);
	is(udp_mark_dst(AF_INET, mark_of(AF_INET, "203.0.113.9"), &rc, &out,
	    &len), 0, "IPv4: any address, not only resolv.conf's");
	is(udp_mark_dst(AF_INET, 0, &rc, &out, &len), -ENOENT, "no mark");
	is(udp_mark_dst(AF_INET, 0x4000, &rc, &out, &len), -ENOENT,
	    "a small flag mark (0x4000) is no address");
	is(udp_mark_dst(AF_INET, mark_of(AF_INET, "0.0.5.57"), &rc, &out, &len),
	    -ENOENT, "0.0.0.0/8 is no destination");
	is(udp_mark_dst(AF_INET, mark_of(AF_INET, "255.255.0.1"), &rc, &out,
	    &len), -ENOENT, "240.0.0.0/4 is no destination");

	is(udp_mark_dst(AF_INET6, mark_of(AF_INET6, "2001:db8::3"), &rc, &out,
	    &len), 0, "IPv6: the nameserver ending in the mark");
	ok(out.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6) &&
	    strcmp(text(&out, buf, sizeof(buf)), "2001:db8::3") == 0 &&
	    ntohs(((struct sockaddr_in6 *)&out)->sin6_port) == 53,
	    "IPv6: 2001:db8::3 port 53 (got %s)", buf);
	is(udp_mark_dst(AF_INET6, mark_of(AF_INET6, "2001:db8::2"), &rc, &out,
	    &len), 0, "IPv6: the other one");
	ok(strcmp(text(&out, buf, sizeof(buf)), "2001:db8::2") == 0,
	    "IPv6: 2001:db8::2");
	is(udp_mark_dst(AF_INET6, mark_of(AF_INET6, "2001:db8::99"), &rc, &out,
	    &len), -ENOENT, "IPv6: no nameserver ends so");
	is(udp_mark_dst(AF_INET6, mark_of(AF_INET6, "2001:db8::3"), NULL, &out,
	    &len), -ENOENT, "IPv6: no resolv.conf");
	is(udp_mark_dst(AF_INET6, mark_of(AF_INET6, "2001:db8:1::53"), &rc2,
	    &out, &len), -ENOENT, "IPv6: two nameservers end so: ambiguous");
	is(udp_mark_dst(AF_INET6, mark_of(AF_INET, "192.0.2.2"), &rc, &out,
	    &len), -ENOENT, "IPv6 mark never matches an IPv4 nameserver");
	is(udp_mark_dst(AF_UNIX, 1, &rc, &out, &len), -ENOENT, "other family");
	return tap_done();
}
