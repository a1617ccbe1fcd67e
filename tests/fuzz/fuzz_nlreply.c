/*
 * libFuzzer target: netlink replies as the proxy reads them, through both
 * pure parsers of proxy/nl_parse.c: ct_parse_reply (conntrack: where a
 * redirected UDP flow was going) and diag_parse_reply (sock_diag: the UID
 * of a local TCP peer). The bytes come in a 4-byte aligned buffer of their
 * exact size, as from recv. Each parser returns one of its documented
 * results, and a success fills what it says.
 *
 * From the same bytes a well-formed conntrack reply is also built (family,
 * addresses, ports, attribute order and padding attributes chosen by the
 * input) and a sock_diag reply with a UID from the input: parsing them must
 * give back exactly what was put in.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include "proxy/nl_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define MSG_MAX		8192

static void
check_ct(int rc, const struct sockaddr_storage *ss, socklen_t len)
{
	if (rc == 0) {
		CHECK(ss->ss_family == AF_INET || ss->ss_family == AF_INET6);
		CHECK(len == (ss->ss_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)));
		return;
	}
	/* -ENOENT, -EPROTO, or the kernel's -errno from an NLMSG_ERROR. */
	CHECK(rc < 0 && rc >= -4095);
}

/* Builds a conntrack reply with the orig tuple from the input, parses it
 * and compares. */
static void
roundtrip_ct(const uint8_t *data, size_t size)
{
	static uint32_t buf[MSG_MAX / 4];
	struct sockaddr_storage ss;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct nlattr *orig, *ip, *proto;
	socklen_t sl = 0;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	bool v6, extra;

	if (size < 38)
		return;
	v6 = data[0] & 1;
	extra = data[0] & 2;
	memcpy(src, data + 1, 16);
	memcpy(dst, data + 17, 16);
	memcpy(&sport, data + 33, 2);
	memcpy(&dport, data + 35, 2);
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) |
	    (data[37] & 1 ? IPCTNL_MSG_CT_NEW : IPCTNL_MSG_CT_GET);
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = v6 ? AF_INET6 : AF_INET;
	nfg->version = NFNETLINK_V0;
	if (extra)
		mnl_attr_put_u32(nlh, CTA_MARK, 0x5a5a5a5a);
	orig = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (v6) {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, src);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, dst);
	} else {
		mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, src);
		mnl_attr_put(nlh, CTA_IP_V4_DST, 4, dst);
	}
	mnl_attr_nest_end(nlh, ip);
	proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, sport);
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, dport);
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, orig);
	if (extra) {
		/* A reply tuple with other addresses must not be read. */
		struct nlattr *r = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
		struct nlattr *rip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);

		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, 0x01020304);
		mnl_attr_nest_end(nlh, rip);
		mnl_attr_nest_end(nlh, r);
	}
	CHECK(ct_parse_reply((const uint8_t *)buf, nlh->nlmsg_len, &ss, &sl) == 0);
	if (v6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&ss;

		CHECK(ss.ss_family == AF_INET6 && sl == sizeof(*s));
		CHECK(memcmp(&s->sin6_addr, dst, 16) == 0);
		CHECK(s->sin6_port == dport);
	} else {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&ss;

		CHECK(ss.ss_family == AF_INET && sl == sizeof(*s));
		CHECK(memcmp(&s->sin_addr, dst, 4) == 0);
		CHECK(s->sin_port == dport);
	}
	/* Cut short: never a success that read past the end. */
	CHECK(ct_parse_reply((const uint8_t *)buf, nlh->nlmsg_len - 4, &ss,
	    &sl) != 0);
}

static void
roundtrip_diag(const uint8_t *data, size_t size)
{
	static uint32_t buf[64];
	struct nlmsghdr *nlh;
	struct inet_diag_msg *m;
	unsigned uid = 0, want;

	if (size < 4)
		return;
	memcpy(&want, data, sizeof(want));
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	m = mnl_nlmsg_put_extra_header(nlh, sizeof(*m));
	m->idiag_family = AF_INET;
	m->idiag_uid = want;
	CHECK(diag_parse_reply((const uint8_t *)buf, nlh->nlmsg_len, &uid) == 0);
	CHECK(uid == want);
	CHECK(diag_parse_reply((const uint8_t *)buf, nlh->nlmsg_len - 1,
	    &uid) != 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	uint32_t *msg;
	unsigned uid = 0;
	int rc;

	if (size > MSG_MAX)
		return 0;
	/* malloc'd: aligned, and exactly size bytes for ASan. */
	if ((msg = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(msg, data, size);
	rc = ct_parse_reply((const uint8_t *)msg, size, &ss, &sl);
	check_ct(rc, &ss, sl);
	rc = diag_parse_reply((const uint8_t *)msg, size, &uid);
	CHECK(rc == 0 || (rc < 0 && rc >= -4095));
	free(msg);
	roundtrip_ct(data, size);
	roundtrip_diag(data, size);
	return 0;
}
