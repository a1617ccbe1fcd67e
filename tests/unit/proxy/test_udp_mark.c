/*
 * Unit tests for udp_mark.c: the packet mark dotproxy's rules write (tag
 * 0xd07d, digest of the nameserver list, slot) decoded into a UDP query's
 * original destination, IPv4 and IPv6; the marks that must not be taken
 * for one (none, other components' such as 0x539, another list's); and the
 * scenarios of issue 15: two IPv6 nameservers sharing their low 32 bits,
 * a query to an unlisted address with the same low bits, and to ::1. The
 * digests are pinned to the values tests/unit/init/test_rules.c pins for
 * rules_mark_sum, so init/ and proxy/ agree.
 */
#include "proxy/udp_mark.h"

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <string.h>

#include "proxy/resolv.h"
#include "tests/unit/tap.h"

static const char *
text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	if (ss->ss_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    buf, (socklen_t)cap);
	return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr,
	    buf, (socklen_t)cap);
}

static void
parse(const char *s, struct resolv *rc)
{
	resolv_parse(s, strlen(s), rc);
}

/* The mark our rules write for slot on a list with digest sum. */
static uint32_t
mk(uint8_t sum, unsigned slot)
{
	return 0xd07d0000u | (uint32_t)sum << 8 | slot;
}

/* Decodes and returns the address text, or "" on an error (in *rcode). */
static const char *
dst(int family, uint32_t mark, const struct resolv *rc, int *rcode,
    enum udp_mark_kind *kind)
{
	static char buf[64];
	struct sockaddr_storage out;
	socklen_t len = 0;
	uint16_t port;

	buf[0] = '\0';
	memset(&out, 0, sizeof(out));
	*rcode = udp_mark_dst(family, mark, rc, &out, &len, kind);
	if (*rcode != 0)
		return buf;
	port = out.ss_family == AF_INET ?
	    ntohs(((struct sockaddr_in *)&out)->sin_port) :
	    ntohs(((struct sockaddr_in6 *)&out)->sin6_port);
	if (out.ss_family != family || port != 53 ||
	    len != (family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6)))
		return "(bad sockaddr)";
	return text(&out, buf, sizeof(buf));
}

static void
test_digest(void)
{
	struct resolv rc;

	parse("", &rc);
	is(udp_mark_sum(&rc), 0xc5, "digest of no nameserver");
	is(udp_mark_sum(NULL), 0xc5, "NULL is the empty list");
	parse("nameserver 192.0.2.2\n", &rc);
	is(udp_mark_sum(&rc), 0x90, "digest of 192.0.2.2");
	parse("nameserver 192.0.2.2\nnameserver 192.0.2.3\n"
	    "nameserver 2001:db8::3\n", &rc);
	is(udp_mark_sum(&rc), 0xf0, "digest of the CNI test's three");
	parse("nameserver 2001:db8:213::53\nnameserver 2001:db8:213::1\n", &rc);
	is(udp_mark_sum(&rc), 0xed, "digest of the issue's two IPv6 servers");
	parse("nameserver 2001:db8:213::1\nnameserver 2001:db8:213::53\n", &rc);
	is(udp_mark_sum(&rc), 0xdd, "order matters (slots are positions)");
	/* test_rules.c parses the same text with init/rules.c. */
	parse("# kubelet\nsearch ns.svc.cluster.local\n"
	    "nameserver 192.0.2.2\n"
	    "nameserver\tnot-an-address\n"
	    "  nameserver 2001:db8::3%eth0\n"
	    "nameserver 192.0.2.8\r\n"
	    "nameserverx 192.0.2.7\n"
	    "nameserver 192.0.2.3\n"
	    "nameserver 192.0.2.4\n", &rc);
	is(udp_mark_sum(&rc), 0x62, "a messy resolv.conf: the digest init/ "
	    "computes from the same text");
}

static void
test_decode(void)
{
	struct resolv rc;
	enum udp_mark_kind kind;
	int r;

	parse("nameserver 192.0.2.2\nnameserver 192.0.2.3\n"
	    "nameserver 2001:db8::3\nnameserver 192.0.2.9\n", &rc);
	ok(strcmp(dst(AF_INET, mk(0xf0, 1), &rc, &r, &kind), "192.0.2.2") ==
	    0 && r == 0 && kind == UDP_MARK_NAMESERVER, "slot 1: 192.0.2.2");
	ok(strcmp(dst(AF_INET, mk(0xf0, 2), &rc, &r, &kind), "192.0.2.3") ==
	    0 && r == 0, "slot 2: 192.0.2.3 (not only the first)");
	ok(strcmp(dst(AF_INET6, mk(0xf0, 3), &rc, &r, &kind), "2001:db8::3")
	    == 0 && r == 0, "slot 3: 2001:db8::3, all 128 bits");
	dst(AF_INET, mk(0xf0, 0), &rc, &r, &kind);
	ok(r == -ENXIO && kind == UDP_MARK_OTHER,
	    "slot 0: ours, no listed nameserver: -ENXIO");
	dst(AF_INET, mk(0xf0, 4), &rc, &r, &kind);
	ok(r == -ESTALE && kind == UDP_MARK_STALE,
	    "slot 4: beyond the three servers: -ESTALE");
	dst(AF_INET, mk(0xf0, 3), &rc, &r, &kind);
	ok(r == -ESTALE, "slot of an IPv6 server on an IPv4 listener: -ESTALE");
	dst(AF_INET6, mk(0xf0, 1), &rc, &r, &kind);
	ok(r == -ESTALE, "slot of an IPv4 server on an IPv6 listener: -ESTALE");
	dst(AF_INET, mk(0x91, 1), &rc, &r, &kind);
	ok(r == -ESTALE && kind == UDP_MARK_STALE,
	    "a mark made for another list: -ESTALE, never its slot");
	dst(AF_INET, mk(0xc5, 0), &rc, &r, &kind);
	ok(r == -ENXIO && kind == UDP_MARK_OTHER, "slot 0 from rules given no "
	    "list (no dns capability): unknown destination, not stale");
	dst(AF_INET, mk(0xc5, 1), &rc, &r, &kind);
	ok(r == -ESTALE, "slot 1 from rules given no list: -ESTALE");
	dst(AF_UNIX, mk(0xf0, 1), &rc, &r, &kind);
	ok(r == -ENOENT && kind == UDP_MARK_NONE, "other family: -ENOENT");
	dst(AF_INET, mk(0xc5, 0), NULL, &r, &kind);
	ok(r == -ENXIO, "no resolv.conf, slot 0: -ENXIO");
	dst(AF_INET, mk(0xc5, 1), NULL, &r, &kind);
	ok(r == -ESTALE, "no resolv.conf, slot 1: -ESTALE");
}

static void
test_foreign(void)
{
	static const uint32_t foreign[] = { 0, 0x539, 0x4000, 0x8000, 0x1,
	    0xffffffff, 0xd07c0201, 0xd17d9001, 0x0000d07d, 0x00000290 };
	struct resolv rc;
	enum udp_mark_kind kind;
	size_t i;
	int r;

	parse("nameserver 192.0.2.2\n", &rc);
	for (i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
		dst(AF_INET, foreign[i], &rc, &r, &kind);
		ok(r == -ENOENT && kind == UDP_MARK_NONE,
		    "mark 0x%x is not ours: -ENOENT", (unsigned)foreign[i]);
	}
	/* Issue 15: 0x539 was read as 57.5.0.0. */
	ok(strcmp(dst(AF_INET, 0x539, &rc, &r, &kind), "") == 0,
	    "0x539 gives no address at all");
}

static void
test_issue_ipv6(void)
{
	struct resolv rc;
	enum udp_mark_kind kind;
	int r;

	/* Nameservers 2001:db8:213::53 and 2001:db8:213::1, as in the issue
	 * (fd00:213::53, fd00:213::1), with documentation addresses. */
	parse("nameserver 2001:db8:213::53\nnameserver 2001:db8:213::1\n", &rc);
	ok(strcmp(dst(AF_INET6, mk(0xed, 1), &rc, &r, &kind),
	    "2001:db8:213::53") == 0, "dig @2001:db8:213::53: that server");
	ok(strcmp(dst(AF_INET6, mk(0xed, 2), &rc, &r, &kind),
	    "2001:db8:213::1") == 0, "dig @2001:db8:213::1: that server");
	/* dig @2001:db8:214::53 and dig @::1: the rules match the full
	 * address, so both get slot 0, never a slot of a server that shares
	 * their low bits. */
	dst(AF_INET6, mk(0xed, 0), &rc, &r, &kind);
	ok(r == -ENXIO && kind == UDP_MARK_OTHER,
	    "dig @2001:db8:214::53 or @::1: unknown destination, no server");
	/* The old encoding of ::1 (low 32 bits 0x00000001 in memory order)
	 * and of ::53 mean nothing now. */
	dst(AF_INET6, 0x01000000, &rc, &r, &kind);
	ok(r == -ENOENT, "the old mark of ::1 is no address");
	dst(AF_INET6, 0x53000000, &rc, &r, &kind);
	ok(r == -ENOENT, "the old mark of ::53 is no address");
}

int
main(void)
{
	test_digest();
	test_decode();
	test_foreign();
	test_issue_ipv6();
	return tap_done();
}
