/*
 * Netlink request builders and reply parsers (see nl_parse.h). Pure layer:
 * libmnl's bounds-checked attribute walkers, no socket.
 */
#include "nl_parse.h"

#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include "errors.h"

static bool
family_ok(const struct sockaddr *a, const struct sockaddr *b)
{
	return a->sa_family == b->sa_family &&
	    (a->sa_family == AF_INET || a->sa_family == AF_INET6);
}

static uint16_t
port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)sa)->sin_port;
	return ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port;
}

static void
put_addr(struct nlmsghdr *nlh, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);

	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)src;
		const struct sockaddr_in *d = (const struct sockaddr_in *)(const void *)dst;

		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, s->sin_addr.s_addr);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, d->sin_addr.s_addr);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)src;
		const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)(const void *)dst;

		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, &s->sin6_addr);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, &d->sin6_addr);
	}
	mnl_attr_nest_end(nlh, ip);
}

int
ct_build_request(uint8_t *buf, size_t cap, const struct sockaddr *local,
    const struct sockaddr *peer, uint16_t zone, size_t *len)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct nlattr *tuple, *proto;

	if (!family_ok(local, peer))
		return -EAFNOSUPPORT;
	/* Header, nfgenmsg, two nests, two addresses, proto, zone. */
	if (cap < 256)
		return -E_TOOBIG;
	memset(buf, 0, 256);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	/* No ACK: a lookup gets exactly one message, the flow or an error. */
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)local->sa_family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	/* The reply direction of a redirected query: proxy -> client. */
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
	put_addr(nlh, local, peer);
	proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, port_of(local));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, port_of(peer));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
	if (zone != 0)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(zone));
	*len = nlh->nlmsg_len;
	return 0;
}

/* Collects the nested attributes of one level, bounds-checked by libmnl. */
static int
collect(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, CTA_MAX) > 0 && type <= CTA_MAX)
		tb[type] = a;
	return MNL_CB_OK;
}

/* The NLMSG_ERROR in msg as a status, or 1 if msg is not an error. */
static int
nl_error(const struct nlmsghdr *nlh, size_t len)
{
	const struct nlmsgerr *e;

	if (nlh->nlmsg_type != NLMSG_ERROR)
		return 1;
	if (len < NLMSG_LENGTH(sizeof(*e)))
		return -EPROTO;
	e = NLMSG_DATA(nlh);
	if (e->error > 0 || e->error < -4095)
		return -EPROTO;
	return e->error == 0 ? -ENOENT : e->error;
}

/* Checks the header of one message of len bytes. */
static const struct nlmsghdr *
header(const uint8_t *msg, size_t len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)(const void *)msg;

	if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) ||
	    nlh->nlmsg_len > len)
		return NULL;
	return nlh;
}

int
ct_parse_reply(const uint8_t *msg, size_t len, struct sockaddr_storage *out,
    socklen_t *outlen)
{
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };
	const struct nlattr *tt[CTA_MAX + 1] = { 0 };
	const struct nlattr *ti[CTA_MAX + 1] = { 0 };
	const struct nlattr *tp[CTA_MAX + 1] = { 0 };
	const struct nlmsghdr *nlh;
	const struct nfgenmsg *nfg;
	int e;

	if ((nlh = header(msg, len)) == NULL)
		return -EPROTO;
	if ((e = nl_error(nlh, nlh->nlmsg_len)) <= 0)
		return e;
	/* A lookup's answer is typed like the request (CT_GET); a dump's
	 * like an event (CT_NEW): either is a flow. */
	if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*nfg)))
		return -EPROTO;
	nfg = NLMSG_DATA(nlh);
	if (mnl_attr_parse(nlh, sizeof(*nfg), collect, tb) < 0 ||
	    tb[CTA_TUPLE_ORIG] == NULL ||
	    mnl_attr_parse_nested(tb[CTA_TUPLE_ORIG], collect, tt) < 0 ||
	    tt[CTA_TUPLE_IP] == NULL || tt[CTA_TUPLE_PROTO] == NULL ||
	    mnl_attr_parse_nested(tt[CTA_TUPLE_IP], collect, ti) < 0 ||
	    mnl_attr_parse_nested(tt[CTA_TUPLE_PROTO], collect, tp) < 0 ||
	    tp[CTA_PROTO_DST_PORT] == NULL ||
	    mnl_attr_validate(tp[CTA_PROTO_DST_PORT], MNL_TYPE_U16) < 0)
		return -EPROTO;
	memset(out, 0, sizeof(*out));
	if (nfg->nfgen_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)out;

		if (ti[CTA_IP_V4_DST] == NULL ||
		    mnl_attr_validate(ti[CTA_IP_V4_DST], MNL_TYPE_U32) < 0)
			return -EPROTO;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = mnl_attr_get_u32(ti[CTA_IP_V4_DST]);
		s->sin_port = mnl_attr_get_u16(tp[CTA_PROTO_DST_PORT]);
		*outlen = sizeof(*s);
	} else if (nfg->nfgen_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;

		if (ti[CTA_IP_V6_DST] == NULL ||
		    mnl_attr_validate2(ti[CTA_IP_V6_DST], MNL_TYPE_BINARY, 16) < 0)
			return -EPROTO;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, mnl_attr_get_payload(ti[CTA_IP_V6_DST]), 16);
		s->sin6_port = mnl_attr_get_u16(tp[CTA_PROTO_DST_PORT]);
		*outlen = sizeof(*s);
	} else
		return -EPROTO;
	return 0;
}

int
diag_build_request(uint8_t *buf, size_t cap, const struct sockaddr *local,
    const struct sockaddr *peer, size_t *len)
{
	struct {
		struct nlmsghdr		nlh;
		struct inet_diag_req_v2	r;
	} req;

	if (!family_ok(local, peer))
		return -EAFNOSUPPORT;
	if (cap < sizeof(req))
		return -E_TOOBIG;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = (uint8_t)local->sa_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	/* The peer's socket: its source is the peer, its destination us. */
	if (local->sa_family == AF_INET) {
		const struct sockaddr_in *l = (const struct sockaddr_in *)(const void *)local;
		const struct sockaddr_in *p = (const struct sockaddr_in *)(const void *)peer;

		req.r.id.idiag_sport = p->sin_port;
		req.r.id.idiag_dport = l->sin_port;
		memcpy(req.r.id.idiag_src, &p->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &l->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)(const void *)local;
		const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)(const void *)peer;

		req.r.id.idiag_sport = p->sin6_port;
		req.r.id.idiag_dport = l->sin6_port;
		memcpy(req.r.id.idiag_src, &p->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &l->sin6_addr, 16);
	}
	memcpy(buf, &req, sizeof(req));
	*len = sizeof(req);
	return 0;
}

int
diag_parse_reply(const uint8_t *msg, size_t len, unsigned *uid)
{
	const struct nlmsghdr *nlh;
	struct inet_diag_msg m;
	int e;

	if ((nlh = header(msg, len)) == NULL)
		return -EPROTO;
	if ((e = nl_error(nlh, nlh->nlmsg_len)) <= 0)
		return e;
	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(m)))
		return -EPROTO;
	memcpy(&m, NLMSG_DATA(nlh), sizeof(m));
	*uid = m.idiag_uid;
	return 0;
}
