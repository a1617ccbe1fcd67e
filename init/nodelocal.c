/*
 * Node-local mode of dotproxy-init, the pure part (no sockets, no
 * globals beyond constant tables): the flags' checks, the plan of table
 * inet dotproxy-nodelocal, and its two renderings, `nft -f` text and one
 * libnftnl batch. nodelocal_sys.c talks to the kernel.
 *
 * The addresses (by convention the link-local 169.254.20.10 and the
 * kube-dns Service IP K) sit on an interface of their own, so they are
 * local. What keeps a query to them away from kube-proxy's DNAT and from
 * conntrack is `notrack` before conntrack (raw priority), and only while a
 * socket is bound to the address: that is what makes the mode fail open
 * without any controller.
 *
 * Pods (prerouting). `ip daddr A th dport 53 socket wildcard 0 notrack
 * accept`: the socket lookup finds a socket bound to A:53 (not 0.0.0.0:53,
 * hence wildcard 0) exactly while a dotproxy listens. When none does, a
 * query to K is tracked and kube-proxy DNATs it to CoreDNS as if we were
 * not there. kube-proxy knows nothing of a link-local address, so a query
 * to one is rewritten, statelessly and before conntrack, to the
 * kube-dns-upstream Service IP U, which kube-proxy then DNATs; its answer
 * gets its source set back from U to the link-local address after the
 * un-DNAT (postrouting, priority 200), so the stub sees the address it
 * asked. (So a pod that asks U itself sees answers from the link-local
 * address: U is for the node-local proxy only, as in NodeLocal DNSCache.)
 *
 * The node itself (output: hostNetwork pods, the kubelet). In output the
 * socket expression looks at the sending socket, not at a listener, so it
 * cannot tell whether dotproxy is up. Instead every query the node sends
 * to A:53 is untracked in output (so kube-proxy's output DNAT never sees
 * it) and loops over lo into prerouting, where the lookup works: with a
 * listener it is accepted as above; without one `ct zone set 0` makes the
 * untracked packet tracked again (the ct expression attaches a template to
 * a packet that has no conntrack entry), the link-local rewrite applies,
 * and kube-proxy's prerouting DNAT sends it to CoreDNS. Such a packet
 * arrives on lo with a local source address and must be forwarded, which
 * the kernel refuses as martian unless lo's accept_local is 1: install
 * sets it (and removal restores it; the marker chain remembers who set
 * it), and postrouting masquerades these flows so answers find the way
 * back. Answers to link-local queries get their source rewritten in input.
 *
 * The proxy's own answers (sport 53 from A) are untracked in output too:
 * tracked, each would leave a conntrack entry whose reply tuple is the
 * pod's next query from that port, and a pod asking after the proxy died
 * would ride that entry (no DNAT) into a closed port for up to 180 s.
 */
#include "init/nodelocal.h"
#include "init/nftb.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>

#define LOOPBACK_IFINDEX	1	/* lo is 1 in every namespace */

struct chain_def {
	const char	*name;
	const char	*type;
	uint32_t	 hook;
	int32_t		 prio;
	const char	*hookname;
};

static const struct chain_def chains[NLC_COUNT] = {
	[NLC_PRE_RAW] = { "prerouting", "filter", NF_INET_PRE_ROUTING, -300,
	    "prerouting" },
	[NLC_OUT_RAW] = { "output", "filter", NF_INET_LOCAL_OUT, -300,
	    "output" },
	[NLC_POST_NAT] = { "postrouting_nat", "nat", NF_INET_POST_ROUTING, 100,
	    "postrouting" },
	[NLC_POST_REPLY] = { "postrouting_reply", "filter",
	    NF_INET_POST_ROUTING, 200, "postrouting" },
	[NLC_IN_REPLY] = { "input_reply", "filter", NF_INET_LOCAL_IN, 200,
	    "input" },
};

__attribute__((format(printf, 3, 4))) static int
fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static size_t
alen(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

static void
addr_str(int family, const uint8_t *a, char *buf, size_t cap)
{
	if (inet_ntop(family, a, buf, (socklen_t)cap) == NULL)
		snprintf(buf, cap, "?");
}

bool
nodelocal_is_linklocal(const struct rules_cidr *a)
{
	if (a->family == AF_INET)
		return a->addr[0] == 169 && a->addr[1] == 254;
	return a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80;
}

int
nodelocal_parse_addrs(struct nodelocal_spec *spec, const char *list,
    char *why, size_t cap)
{
	char *copy, *p, *tok;
	int rc = 0;

	if ((copy = strdup(list)) == NULL)
		return fail(why, cap, "out of memory");
	p = copy;
	while (rc == 0 && (tok = strsep(&p, ",")) != NULL) {
		if (tok[0] == '\0')
			continue;
		if (spec->naddr >= NODELOCAL_MAX_ADDRS)
			rc = fail(why, cap, "--node-local: more than %d "
			    "addresses", NODELOCAL_MAX_ADDRS);
		else if (strchr(tok, '/') != NULL ||
		    rules_cidr_parse(tok, &spec->addr[spec->naddr]) != 0)
			rc = fail(why, cap, "--node-local '%s': not an IPv4 or "
			    "IPv6 address", tok);
		else
			spec->naddr++;
	}
	free(copy);
	if (rc == 0 && spec->naddr == 0)
		rc = fail(why, cap, "--node-local: no address given");
	return rc;
}

/* Why a cannot be assigned as a node-local address, or NULL. */
static const char *
unassignable(const struct rules_cidr *a)
{
	static const uint8_t zero[16];
	const uint8_t *b = a->addr;

	if (memcmp(b, zero, alen(a->family)) == 0)
		return "the unspecified address";
	if (a->family == AF_INET) {
		if (b[0] == 127)
			return "a loopback address";
		if (b[0] >= 224 && b[0] <= 239)
			return "a multicast address";
		if (b[0] >= 240)
			return "a reserved or broadcast address";
		return NULL;
	}
	if (memcmp(b, zero, 15) == 0 && b[15] == 1)
		return "the loopback address";
	if (b[0] == 0xff)
		return "a multicast address";
	if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
		return "an IPv4-mapped address";
	return NULL;
}

int
nodelocal_check(const struct nodelocal_spec *spec, char *why, size_t cap)
{
	char s[INET6_ADDRSTRLEN], u[INET6_ADDRSTRLEN];
	const struct rules_cidr *a, *up = &spec->upstream;
	const char *bad;
	size_t i, j;
	int nll[2] = { 0, 0 };

	if (spec->naddr == 0)
		return fail(why, cap, "--node-local: no address given");
	if (spec->has_upstream) {
		addr_str(up->family, up->addr, u, sizeof(u));
		if ((bad = unassignable(up)) != NULL)
			return fail(why, cap, "--node-local-upstream %s: %s",
			    u, bad);
		if (nodelocal_is_linklocal(up))
			return fail(why, cap, "--node-local-upstream %s: a "
			    "link-local address cannot be a Service IP", u);
	}
	for (i = 0; i < spec->naddr; i++) {
		a = &spec->addr[i];
		addr_str(a->family, a->addr, s, sizeof(s));
		if ((bad = unassignable(a)) != NULL)
			return fail(why, cap, "--node-local %s: %s, not one "
			    "to assign to an interface", s, bad);
		for (j = 0; j < i; j++)
			if (spec->addr[j].family == a->family &&
			    memcmp(spec->addr[j].addr, a->addr,
			    alen(a->family)) == 0)
				return fail(why, cap, "--node-local %s: given "
				    "twice (the kube-dns IP and the link-local "
				    "address must differ)", s);
		if (spec->has_upstream && up->family == a->family &&
		    memcmp(up->addr, a->addr, alen(a->family)) == 0)
			return fail(why, cap, "--node-local-upstream %s is also "
			    "a node-local address: the proxy would ask "
			    "itself", u);
		if (nodelocal_is_linklocal(a)) {
			if (++nll[a->family == AF_INET6] > 1)
				return fail(why, cap, "--node-local %s: only "
				    "one link-local address per family", s);
			if (!spec->has_upstream || up->family != a->family)
				return fail(why, cap, "--node-local %s: a "
				    "link-local address needs "
				    "--node-local-upstream (the kube-dns-upstream "
				    "Service IP, same family) to fall back to", s);
		}
	}
	if (strlen(spec->ifname) == 0 || strchr(spec->ifname, '/') != NULL ||
	    strchr(spec->ifname, ' ') != NULL || strcmp(spec->ifname, ".") == 0 ||
	    strcmp(spec->ifname, "..") == 0)
		return fail(why, cap, "--node-local-interface '%s': not an "
		    "interface name", spec->ifname);
	return 0;
}

static int
push(struct nodelocal_rule *rules, size_t cap, size_t *n,
    const struct nodelocal_rule *r)
{
	if (*n >= cap)
		return -ENOBUFS;
	rules[(*n)++] = *r;
	return 0;
}

int
nodelocal_plan(const struct nodelocal_spec *spec, struct nodelocal_rule *rules,
    size_t cap, size_t *n)
{
	static const uint8_t protos[2] = { IPPROTO_UDP, IPPROTO_TCP };
	const struct rules_cidr *a, *up = &spec->upstream;
	struct nodelocal_rule r;
	size_t i, p;
	bool ll;
	int rc;

#define RULE(...) do {							\
	memset(&r, 0, sizeof(r));					\
	r.family = a->family;						\
	r.l4proto = protos[p];						\
	__VA_ARGS__;							\
	if ((rc = push(rules, cap, n, &r)) != 0)			\
		return rc;						\
} while (0)
#define EACH for (i = 0; i < spec->naddr; i++)				\
	for (a = &spec->addr[i], ll = nodelocal_is_linklocal(a), p = 0;	\
	    p < 2; p++)

	*n = 0;
	/* prerouting: a listener takes it; else fall back (rewrite, track). */
	EACH RULE(r.chain = NLC_PRE_RAW; r.daddr = a->addr;
	    r.socket_bound = true; r.action = NLA_NOTRACK_ACCEPT);
	/*
	 * The wildcard key needs a full socket: the ACK that completes a
	 * handshake finds a request socket, a late FIN a time-wait one, and
	 * would be tracked and DNATed away. Past the SYN, any socket of ours
	 * for that tuple takes the packet (transparent 0: none of ours is).
	 */
	for (i = 0; i < spec->naddr; i++) {
		a = &spec->addr[i];
		p = 1;
		RULE(r.chain = NLC_PRE_RAW; r.daddr = a->addr;
		    r.socket_any = true; r.action = NLA_NOTRACK_ACCEPT);
	}
	EACH if (ll) RULE(r.chain = NLC_PRE_RAW; r.daddr = a->addr;
	    r.action = NLA_SET_DADDR; r.arg = up->addr);
	EACH RULE(r.chain = NLC_PRE_RAW; r.iif_lo = true;
	    r.daddr = ll ? up->addr : a->addr; r.action = NLA_TRACK);
	/* output: the proxy's answers, then the node's own queries. */
	EACH RULE(r.chain = NLC_OUT_RAW; r.saddr = a->addr; r.sport53 = true;
	    r.action = NLA_NOTRACK);
	EACH RULE(r.chain = NLC_OUT_RAW; r.daddr = a->addr;
	    r.action = NLA_NOTRACK);
	/* The node's queries that fell back leave with a routable source. */
	for (i = 0; i < spec->naddr; i++) {
		a = &spec->addr[i];
		memset(&r, 0, sizeof(r));
		r.chain = NLC_POST_NAT;
		r.family = a->family;
		r.saddr = a->addr;
		r.ct_dnat = true;
		r.action = NLA_MASQ;
		if ((rc = push(rules, cap, n, &r)) != 0)
			return rc;
	}
	/* Answers to link-local queries that fell back: source back to it. */
	EACH if (ll) RULE(r.chain = NLC_POST_REPLY; r.saddr = up->addr;
	    r.sport53 = true; r.ct_reply = true; r.action = NLA_SET_SADDR;
	    r.arg = a->addr);
	EACH if (ll) RULE(r.chain = NLC_IN_REPLY; r.saddr = up->addr;
	    r.daddr = a->addr; r.sport53 = true; r.ct_reply = true;
	    r.action = NLA_SET_SADDR; r.arg = a->addr);
#undef EACH
#undef RULE
	return 0;
}

int
nodelocal_rule_text(const struct nodelocal_rule *r, char *buf, size_t cap)
{
	const char *ip = r->family == AF_INET6 ? "ip6" : "ip";
	const char *l4 = r->l4proto == IPPROTO_TCP ? "tcp" : "udp";
	char s[INET6_ADDRSTRLEN];
	size_t off = 0;
	int err = 0;

	if (cap == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	if (r->iif_lo)
		nftb_text(buf, cap, &off, &err, "iif \"lo\" ");
	if (r->saddr != NULL) {
		addr_str(r->family, r->saddr, s, sizeof(s));
		nftb_text(buf, cap, &off, &err, "%s saddr %s ", ip, s);
	}
	if (r->daddr != NULL) {
		addr_str(r->family, r->daddr, s, sizeof(s));
		nftb_text(buf, cap, &off, &err, "%s daddr %s ", ip, s);
	}
	if (r->l4proto != 0)
		nftb_text(buf, cap, &off, &err, "%s %s 53 ", l4,
		    r->sport53 ? "sport" : "dport");
	if (r->socket_bound)
		nftb_text(buf, cap, &off, &err, "socket wildcard 0 ");
	if (r->socket_any)
		nftb_text(buf, cap, &off, &err, "tcp flags & syn == 0 socket "
		    "transparent 0 ");
	if (r->ct_dnat)
		nftb_text(buf, cap, &off, &err, "ct status dnat ");
	if (r->ct_reply)
		nftb_text(buf, cap, &off, &err, "ct direction reply ");
	nftb_text(buf, cap, &off, &err, "counter ");
	if (r->arg != NULL)
		addr_str(r->family, r->arg, s, sizeof(s));
	switch (r->action) {
	case NLA_NOTRACK_ACCEPT:
		nftb_text(buf, cap, &off, &err, "notrack accept");
		break;
	case NLA_NOTRACK:
		nftb_text(buf, cap, &off, &err, "notrack");
		break;
	case NLA_SET_DADDR:
		nftb_text(buf, cap, &off, &err, "%s daddr set %s", ip, s);
		break;
	case NLA_SET_SADDR:
		nftb_text(buf, cap, &off, &err, "%s saddr set %s", ip, s);
		break;
	case NLA_TRACK:
		nftb_text(buf, cap, &off, &err, "ct zone set 0");
		break;
	case NLA_MASQ:
		nftb_text(buf, cap, &off, &err, "masquerade");
		break;
	}
	return err;
}

static int
chain_text(const struct chain_def *c, char *buf, size_t cap)
{
	size_t off = 0;
	int err = 0;

	nftb_text(buf, cap, &off, &err, "add chain inet %s %s { type %s hook %s "
	    "priority %d; policy accept; }", NODELOCAL_TABLE, c->name, c->type,
	    c->hookname, (int)c->prio);
	return err;
}

#define ADD_TABLE	"add table inet " NODELOCAL_TABLE
#define DEL_TABLE	"delete table inet " NODELOCAL_TABLE
#define ADD_MARKER	"add chain inet " NODELOCAL_TABLE " " NODELOCAL_MARKER

int
nodelocal_text(const struct nodelocal_spec *spec, char *buf, size_t cap)
{
	struct nodelocal_rule plan[NODELOCAL_MAX_RULES];
	char one[NODELOCAL_TEXT_MAX];
	size_t n, i, k, off = 0;
	int err = 0, rc;

	if ((rc = nodelocal_plan(spec, plan, NODELOCAL_MAX_RULES, &n)) != 0)
		return rc;
	if (cap == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	nftb_text(buf, cap, &off, &err, "%s\n%s\n%s\n", ADD_TABLE, DEL_TABLE,
	    ADD_TABLE);
	for (k = 0; k < NLC_COUNT; k++) {
		if ((rc = chain_text(&chains[k], one, sizeof(one))) != 0)
			return rc;
		nftb_text(buf, cap, &off, &err, "%s\n", one);
	}
	if (spec->marker)
		nftb_text(buf, cap, &off, &err, "%s\n", ADD_MARKER);
	for (i = 0; i < n; i++) {
		if ((rc = nodelocal_rule_text(&plan[i], one, sizeof(one))) != 0)
			return rc;
		nftb_text(buf, cap, &off, &err, "add rule inet %s %s %s\n",
		    NODELOCAL_TABLE, chains[plan[i].chain].name, one);
	}
	return err;
}

static int
add_load(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len,
    const void *data)
{
	int rc;

	if ((rc = nftb_payload(r, base, off, len)) != 0)
		return rc;
	return nftb_cmp(r, NFT_CMP_EQ, data, len);
}

static int
add_ct(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e;

	if ((e = nftnl_expr_alloc("ct")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	return nftb_expr(r, e);
}

/* ip/ip6 saddr or daddr := a, fixing the checksums as nft does. */
static int
add_set_addr(struct nftnl_rule *r, int family, bool dst, const uint8_t *a)
{
	uint32_t len = (uint32_t)alen(family), off;
	struct nftnl_expr *e;
	int rc;

	if (family == AF_INET6)
		off = dst ? 24 : 8;
	else
		off = dst ? 16 : 12;
	if ((rc = nftb_imm(r, a, len)) != 0)
		return rc;
	if ((e = nftnl_expr_alloc("payload")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE,
	    NFT_PAYLOAD_NETWORK_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	/* IPv4 has a header checksum (at 10); both fix the L4 one. */
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_TYPE,
	    family == AF_INET ? NFT_PAYLOAD_CSUM_INET : NFT_PAYLOAD_CSUM_NONE);
	if (family == AF_INET)
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_OFFSET, 10);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_FLAGS,
	    NFT_PAYLOAD_L4CSUM_PSEUDOHDR);
	return nftb_expr(r, e);
}

/* tcp flags & mask == 0 (the l4proto is matched already). */
static int
add_tcp_nosyn(struct nftnl_rule *r, uint8_t mask)
{
	uint8_t zero = 0;
	int rc;

	if ((rc = nftb_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1)) != 0 ||
	    (rc = nftb_mask(r, &mask, 1)) != 0)
		return rc;
	return nftb_cmp(r, NFT_CMP_EQ, &zero, 1);
}

static int
rule_exprs(struct nftnl_rule *r, const struct nodelocal_rule *nr)
{
	uint8_t nfproto = nr->family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
	uint32_t len = (uint32_t)alen(nr->family), lo = LOOPBACK_IFINDEX;
	uint32_t dnat = IPS_DST_NAT, zero32 = 0;
	uint16_t port = htons(RULES_DNS_PORT), zone = 0;
	uint8_t zero8 = 0, reply = 1;	/* IP_CT_DIR_REPLY */
	struct nftnl_expr *e;
	int rc = 0;

	if (nr->iif_lo)
		rc = nftb_meta_eq(r, NFT_META_IIF, &lo, sizeof(lo));
	if (rc == 0)
		rc = nftb_meta_eq(r, NFT_META_NFPROTO, &nfproto, 1);
	if (rc == 0 && nr->saddr != NULL)
		rc = add_load(r, NFT_PAYLOAD_NETWORK_HEADER,
		    nr->family == AF_INET6 ? 8 : 12, len, nr->saddr);
	if (rc == 0 && nr->daddr != NULL)
		rc = add_load(r, NFT_PAYLOAD_NETWORK_HEADER,
		    nr->family == AF_INET6 ? 24 : 16, len, nr->daddr);
	if (rc == 0 && nr->l4proto != 0) {
		rc = nftb_meta_eq(r, NFT_META_L4PROTO, &nr->l4proto, 1);
		if (rc == 0)
			rc = add_load(r, NFT_PAYLOAD_TRANSPORT_HEADER,
			    nr->sport53 ? 0 : 2, 2, &port);
	}
	if (rc == 0 && nr->socket_bound) {
		if ((e = nftnl_expr_alloc("socket")) == NULL)
			return -ENOMEM;
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY,
		    NFT_SOCKET_WILDCARD);
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
		if ((rc = nftb_expr(r, e)) == 0)
			rc = nftb_cmp(r, NFT_CMP_EQ, &zero8, 1);
	}
	if (rc == 0 && nr->socket_any) {
		uint8_t syn = 0x02;

		if ((rc = add_tcp_nosyn(r, syn)) != 0)
			return rc;
		if ((e = nftnl_expr_alloc("socket")) == NULL)
			return -ENOMEM;
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY,
		    NFT_SOCKET_TRANSPARENT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
		if ((rc = nftb_expr(r, e)) == 0)
			rc = nftb_cmp(r, NFT_CMP_EQ, &zero8, 1);
	}
	if (rc == 0 && nr->ct_dnat) {
		if ((rc = add_ct(r, NFT_CT_STATUS)) != 0)
			return rc;
		if ((rc = nftb_mask(r, &dnat, 4)) == 0)
			rc = nftb_cmp(r, NFT_CMP_NEQ, &zero32, 4);
	}
	if (rc == 0 && nr->ct_reply) {
		if ((rc = add_ct(r, NFT_CT_DIRECTION)) == 0)
			rc = nftb_cmp(r, NFT_CMP_EQ, &reply, 1);
	}
	if (rc == 0)
		rc = nftb_expr(r, nftnl_expr_alloc("counter"));
	if (rc != 0)
		return rc;
	switch (nr->action) {
	case NLA_NOTRACK_ACCEPT:
		if ((rc = nftb_expr(r, nftnl_expr_alloc("notrack"))) != 0)
			return rc;
		return nftb_verdict(r, NF_ACCEPT);
	case NLA_NOTRACK:
		return nftb_expr(r, nftnl_expr_alloc("notrack"));
	case NLA_SET_DADDR:
	case NLA_SET_SADDR:
		return add_set_addr(r, nr->family, nr->action == NLA_SET_DADDR,
		    nr->arg);
	case NLA_TRACK:
		/* The zone is a host-order u16 in the register. */
		if ((rc = nftb_imm(r, &zone, sizeof(zone))) != 0)
			return rc;
		if ((e = nftnl_expr_alloc("ct")) == NULL)
			return -ENOMEM;
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_ZONE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
		return nftb_expr(r, e);
	case NLA_MASQ:
		return nftb_expr(r, nftnl_expr_alloc("masq"));
	}
	return -EINVAL;
}

/* A base chain (c) or, with c NULL, the marker chain. */
static int
batch_chain(struct nftb *bt, const struct chain_def *c)
{
	char what[RULES_WHAT_MAX];
	struct nftnl_chain *ch;
	struct nlmsghdr *nlh;
	int rc;

	if (c != NULL) {
		if ((rc = chain_text(c, what, sizeof(what))) != 0)
			return rc;
	} else
		snprintf(what, sizeof(what), "%s", ADD_MARKER);
	if ((ch = nftnl_chain_alloc()) == NULL)
		return -ENOMEM;
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, NODELOCAL_TABLE) != 0 ||
	    nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c != NULL ? c->name :
	    NODELOCAL_MARKER) != 0 || (c != NULL &&
	    nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, c->type) != 0)) {
		nftnl_chain_free(ch);
		return -ENOMEM;
	}
	if (c != NULL) {
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, c->hook);
		nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c->prio);
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	if ((nlh = nftb_msg(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE, what)) ==
	    NULL) {
		nftnl_chain_free(ch);
		return -ENOBUFS;
	}
	nftnl_chain_nlmsg_build_payload(nlh, ch);
	nftnl_chain_free(ch);
	return nftb_next(bt);
}

static int
batch_rule(struct nftb *bt, const struct nodelocal_rule *nr)
{
	char what[NODELOCAL_TEXT_MAX + 64], one[NODELOCAL_TEXT_MAX];
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;
	int rc;

	if ((rc = nodelocal_rule_text(nr, one, sizeof(one))) != 0)
		return rc;
	if (snprintf(what, sizeof(what), "add rule inet %s %s %s",
	    NODELOCAL_TABLE, chains[nr->chain].name, one) >= (int)sizeof(what))
		return -ENOBUFS;
	if ((r = nftnl_rule_alloc()) == NULL)
		return -ENOMEM;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	if (nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NODELOCAL_TABLE) != 0 ||
	    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN,
	    chains[nr->chain].name) != 0)
		rc = -ENOMEM;
	if (rc == 0)
		rc = rule_exprs(r, nr);
	if (rc == 0 && (nlh = nftb_msg(bt, NFT_MSG_NEWRULE,
	    NLM_F_CREATE | NLM_F_APPEND, what)) == NULL)
		rc = -ENOBUFS;
	if (rc == 0) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		rc = nftb_next(bt);
	}
	nftnl_rule_free(r);
	return rc;
}

int
nodelocal_batch_install(const struct nodelocal_spec *spec, uint32_t seq,
    void *buf, size_t cap, struct rules_batch *out)
{
	struct nodelocal_rule plan[NODELOCAL_MAX_RULES];
	struct nftb bt;
	size_t n, i, k;
	int rc;

	if ((rc = nodelocal_plan(spec, plan, NODELOCAL_MAX_RULES, &n)) != 0)
		return rc;
	if ((rc = nftb_start(&bt, seq, buf, cap, out)) != 0)
		return rc;
	/* add, delete, add: replaces an earlier copy in one transaction. */
	rc = nftb_table_replace(&bt, NODELOCAL_TABLE);
	for (k = 0; rc == 0 && k < NLC_COUNT; k++)
		rc = batch_chain(&bt, &chains[k]);
	if (rc == 0 && spec->marker)
		rc = batch_chain(&bt, NULL);
	for (i = 0; rc == 0 && i < n; i++)
		rc = batch_rule(&bt, &plan[i]);
	return nftb_finish(&bt, rc);
}

int
nodelocal_batch_remove(uint32_t seq, void *buf, size_t cap,
    struct rules_batch *out)
{
	struct nftb bt;
	int rc;

	if ((rc = nftb_start(&bt, seq, buf, cap, out)) != 0)
		return rc;
	rc = nftb_table_remove(&bt, NODELOCAL_TABLE);
	return nftb_finish(&bt, rc);
}
