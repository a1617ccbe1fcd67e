/*
 * Conntrack lookups over netlink (see ct.h). System layer; the only file
 * that speaks ctnetlink. One request, one answer, parsed with libmnl's
 * bounds-checked attribute walkers.
 */
#include "ct.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>

struct ct {
	struct mnl_socket	*nl;		/* owned */
	unsigned		 portid;
	unsigned		 seq;
	uint8_t			 buf[8192];	/* one request or answer */
};

struct ct *
ct_open(void)
{
	struct timeval tv = { 0, 200000 };
	struct ct *c;
	int saved;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC)) == NULL)
		goto fail;
	if (mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	if (setsockopt(mnl_socket_get_fd(c->nl), SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)) == -1)
		goto fail;
	c->portid = mnl_socket_get_portid(c->nl);
	c->seq = (unsigned)time(NULL);
	return c;
fail:
	saved = errno;
	if (c->nl != NULL)
		mnl_socket_close(c->nl);
	free(c);
	errno = saved;
	return NULL;
}

void
ct_close(struct ct *c)
{
	if (c == NULL)
		return;
	mnl_socket_close(c->nl);
	free(c);
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

static uint16_t
port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)sa)->sin_port;
	return ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port;
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

struct ct_result {
	int			 family;
	struct sockaddr_storage	*out;
	socklen_t		*outlen;
	bool			 found;
};

static int
on_msg(const struct nlmsghdr *nlh, void *data)
{
	struct ct_result *r = data;
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };
	const struct nlattr *tt[CTA_MAX + 1] = { 0 };
	const struct nlattr *ti[CTA_MAX + 1] = { 0 };
	const struct nlattr *tp[CTA_MAX + 1] = { 0 };

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), collect, tb) < 0 ||
	    tb[CTA_TUPLE_ORIG] == NULL)
		return MNL_CB_ERROR;
	if (mnl_attr_parse_nested(tb[CTA_TUPLE_ORIG], collect, tt) < 0 ||
	    tt[CTA_TUPLE_IP] == NULL || tt[CTA_TUPLE_PROTO] == NULL)
		return MNL_CB_ERROR;
	if (mnl_attr_parse_nested(tt[CTA_TUPLE_IP], collect, ti) < 0 ||
	    mnl_attr_parse_nested(tt[CTA_TUPLE_PROTO], collect, tp) < 0 ||
	    tp[CTA_PROTO_DST_PORT] == NULL ||
	    mnl_attr_validate(tp[CTA_PROTO_DST_PORT], MNL_TYPE_U16) < 0)
		return MNL_CB_ERROR;
	memset(r->out, 0, sizeof(*r->out));
	if (r->family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)r->out;

		if (ti[CTA_IP_V4_DST] == NULL ||
		    mnl_attr_validate(ti[CTA_IP_V4_DST], MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = mnl_attr_get_u32(ti[CTA_IP_V4_DST]);
		s->sin_port = mnl_attr_get_u16(tp[CTA_PROTO_DST_PORT]);
		*r->outlen = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)r->out;

		if (ti[CTA_IP_V6_DST] == NULL ||
		    mnl_attr_validate2(ti[CTA_IP_V6_DST], MNL_TYPE_BINARY, 16) < 0)
			return MNL_CB_ERROR;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, mnl_attr_get_payload(ti[CTA_IP_V6_DST]), 16);
		s->sin6_port = mnl_attr_get_u16(tp[CTA_PROTO_DST_PORT]);
		*r->outlen = sizeof(*s);
	}
	r->found = true;
	return MNL_CB_OK;
}

int
ct_orig_dst(struct ct *c, const struct sockaddr *local,
    const struct sockaddr *peer, uint16_t zone, struct sockaddr_storage *out,
    socklen_t *outlen)
{
	struct ct_result res = { local->sa_family, out, outlen, false };
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct nlattr *tuple, *proto;
	unsigned seq;
	ssize_t n;
	int r;

	if (local->sa_family != peer->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	nlh = mnl_nlmsg_put_header(c->buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq = ++c->seq;
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
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(c->nl, c->buf, sizeof(c->buf));
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		r = mnl_cb_run(c->buf, (size_t)n, seq, c->portid, on_msg, &res);
		if (r < 0)
			return errno ? -errno : -EPROTO;
		if (r == MNL_CB_STOP)
			break;
	}
	return res.found ? 0 : -ENOENT;
}
