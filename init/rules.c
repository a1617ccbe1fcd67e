/*
 * Rule builder of dotproxy-init (pure: no sockets, no globals beyond the
 * constant chain table). Owns the one definition of our ruleset: the plan
 * (rules_plan), and the three renderings of it that must agree: libnftnl
 * objects in a netlink batch, `nft -f` text, and the canonical digest that
 * --check compares with what the kernel reports. It must not talk to the
 * kernel: nl.c does that.
 *
 * Conntrack and UDP (istio/istio#33469). The nat chain is consulted only
 * for the first packet of a conntrack entry. A UDP entry lives 30-120 s
 * after its last packet, so if the proxy's own plain query (not redirected,
 * proxy UID) from pod:X to 192.0.2.53:53 left an entry, an app that later
 * gets the same source port X and asks 192.0.2.53:53 rides that entry and
 * goes straight out, unencrypted; the reverse reuse loops the proxy's query
 * back to itself. The same holds for excluded UIDs, GIDs and CIDRs, for a
 * local resolver's answers, and for replies from upstream, whose entry's
 * reply tuple is exactly the app's query.
 *
 * Our choice: put the redirected flows, and only those, in their own zone.
 * A raw-priority chain (filter hook output priority -300, before conntrack
 * at -200) mirrors the nat chain: the same returns (proxy UID, excluded
 * UIDs, GIDs, CIDRs), then `udp dport 53 ct zone set 2` for the families
 * the nat chain redirects. Its first rule, `udp sport <proxy-port> ct zone
 * set 2`, puts the proxy's answers in zone 2 too, so they find the app's
 * entry and are un-NATted (the app sees the answer come from the address
 * it asked); without it the answer would start a fresh zone-0 entry and
 * arrive from 127.0.0.1:<proxy-port>, which stub resolvers drop. Everything
 * else (the proxy's upstream traffic, excluded traffic, inbound packets)
 * stays in zone 0 where no redirected flow can ever meet it. Redirected
 * flows never leave the host, and packets looping over lo keep the entry
 * they got in output (nft `ct zone set` does nothing on a tracked packet),
 * so no prerouting rule is needed, and we never re-zone someone else's
 * inbound replies (the mis-zoning bug istio/istio#46935).
 *
 * Why not `notrack` on the proxy's udp/53: the upstream's reply would
 * still create a zone-0 entry in prerouting, whose reply tuple is the next
 * app query from that port: the leak stays. It would also need a prerouting
 * notrack for every udp sport 53 packet (hitting excluded UIDs' replies and
 * any conntrack-based firewall in the pod) and has to be repeated for each
 * excluded UID/GID/CIDR. Zoning the redirected side needs neither.
 * Consequence for the proxy: its conntrack lookup of a UDP query's original
 * destination must ask in zone RULES_CT_ZONE. TCP is not zoned: a new SYN
 * never rides an old entry the way a UDP datagram does.
 *
 * The original destination without conntrack. Reading conntrack needs
 * CAP_NET_ADMIN, which the proxy does not have; the packet mark survives
 * the redirect over lo and the proxy reads it per datagram with
 * SO_RCVMARK, no capability needed. The raw chain sees every packet of a
 * flow (the nat chain only the first), so it writes the mark. Two
 * constraints shape what it writes. A mark has 32 bits: an IPv6 address
 * does not fit, and the low 32 bits of one are ambiguous (fd00:213::53 and
 * fd00:214::53, ::1 and fd00:213::1). And other components mark packets
 * too (0x539, 0x4000): a mark that is all address bits cannot be told from
 * theirs, so IPv4 cannot keep all 32 bits of its address either.
 *
 * So the mark names a nameserver instead of carrying an address: a 16-bit
 * tag, the digest of the nameserver list, and a slot (rules.h). The list
 * is the pod's resolv.conf (dotproxy-init reads it; the CNI plugin gets it
 * from the runtime's "dns" capability, which kubelet fills from the same
 * DNS config it writes resolv.conf from). Per family the chain first
 * writes slot 0 ("captured, no listed nameserver") on every captured
 * udp/53 packet, overwriting whatever mark it had, then one rule per
 * listed nameserver of that family (`ip6 daddr X/128 udp dport 53`)
 * writes its slot. Exact for every listed nameserver, IPv4 and IPv6; any
 * other destination is reported as such, never as a server that shares
 * some bits with it. The proxy accepts only marks with our tag and its own
 * list's digest. A chain that runs after ours (between -300 and the
 * redirect) can still overwrite the mark, since nftables lets no table own
 * the mark; that mark lacks our tag and reads as "no mark", never as an
 * address. A resolv.conf changed since the rules were built gives another
 * digest and reads as an unknown destination, never as another slot. The
 * CNI plugin without the dns capability knows no list: every mark is slot
 * 0 of the empty list, an unknown destination. Excluded traffic keeps its
 * mark. Only redirected udp/53 is marked; nothing leaving the pod is.
 *
 * Why not an nftables map (ip6 daddr map { ... : mark }): the same lookup,
 * but one set object more to build, dump and compare in --check, for at
 * most three addresses.
 */
#include "init/rules.h"
#include "init/nftb.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>

const struct rules_chain rules_chains[RULES_NCHAINS] = {
	{ RULES_CHAIN_NAT, "nat", NF_INET_LOCAL_OUT, RULES_PRIO_NAT },
	{ RULES_CHAIN_ZONE, "filter", NF_INET_LOCAL_OUT, RULES_PRIO_ZONE },
};

static void
rule_init(struct rules_rule *r, const char *chain)
{
	memset(r, 0, sizeof(*r));
	r->chain = chain;
}

/*
 * The matches shared by both chains: the proxy UID, then every exclusion,
 * each one a `return`. Order matters: these must come before any action.
 */
static int
plan_returns(const struct rules_spec *spec, const char *chain,
    struct rules_rule *rules, size_t cap, size_t *n)
{
	size_t i;

	if (cap - *n < 1 + spec->nexclude_uid + spec->nexclude_gid +
	    spec->nexclude_cidr)
		return -ENOBUFS;
	rule_init(&rules[*n], chain);
	rules[*n].has_uid = true;
	rules[*n].uid = spec->proxy_uid;
	(*n)++;
	for (i = 0; i < spec->nexclude_uid; i++) {
		rule_init(&rules[*n], chain);
		rules[*n].has_uid = true;
		rules[*n].uid = spec->exclude_uid[i];
		(*n)++;
	}
	for (i = 0; i < spec->nexclude_gid; i++) {
		rule_init(&rules[*n], chain);
		rules[*n].has_gid = true;
		rules[*n].gid = spec->exclude_gid[i];
		(*n)++;
	}
	for (i = 0; i < spec->nexclude_cidr; i++) {
		rule_init(&rules[*n], chain);
		rules[*n].has_daddr = true;
		rules[*n].daddr = spec->exclude_cidr[i];
		(*n)++;
	}
	return 0;
}

static int
plan_one(struct rules_rule *rules, size_t cap, size_t *n, const char *chain,
    uint8_t nfproto, uint8_t l4proto, enum rules_action action, uint16_t arg)
{
	struct rules_rule *r;

	if (*n >= cap)
		return -ENOBUFS;
	r = &rules[(*n)++];
	rule_init(r, chain);
	r->nfproto = nfproto;
	r->l4proto = l4proto;
	r->dport = RULES_DNS_PORT;
	r->action = action;
	r->arg = arg;
	return 0;
}

/*
 * The mark rules of one family: slot 0 on every captured udp/53 packet,
 * then each listed nameserver of the family its own slot (a later rule
 * overwrites the earlier mark).
 */
static int
plan_marks(const struct rules_spec *spec, uint8_t nfproto,
    struct rules_rule *rules, size_t cap, size_t *n)
{
	int family = nfproto == NFPROTO_IPV6 ? AF_INET6 : AF_INET;
	struct rules_rule *r;
	size_t i;
	int rc;

	if ((rc = plan_one(rules, cap, n, RULES_CHAIN_ZONE, nfproto,
	    IPPROTO_UDP, RULES_MARK, 0)) != 0)
		return rc;
	rules[*n - 1].mark = rules_mark(spec, 0);
	for (i = 0; i < spec->nns && i < RULES_MAX_NS; i++) {
		if (spec->ns[i].family != family)
			continue;
		if ((rc = plan_one(rules, cap, n, RULES_CHAIN_ZONE, nfproto,
		    IPPROTO_UDP, RULES_MARK, 0)) != 0)
			return rc;
		r = &rules[*n - 1];
		r->has_daddr = true;
		r->daddr.family = family;
		memcpy(r->daddr.addr, spec->ns[i].addr, sizeof(r->daddr.addr));
		r->daddr.prefix = family == AF_INET6 ? 128 : 32;
		r->mark = rules_mark(spec, (unsigned)i + 1);
	}
	return 0;
}

int
rules_ns_add(struct rules_spec *spec, const char *s)
{
	char host[INET6_ADDRSTRLEN + 1];
	struct rules_ns *ns;
	size_t len;

	if (spec->nns >= RULES_MAX_NS)
		return -ENOSPC;
	ns = &spec->ns[spec->nns];
	memset(ns, 0, sizeof(*ns));
	if (inet_pton(AF_INET, s, ns->addr) == 1) {
		ns->family = AF_INET;
		spec->nns++;
		return 0;
	}
	/* As proxy/resolv.c: at most 63 bytes, a scope id dropped. */
	len = strcspn(s, "%");
	if (strlen(s) >= 64 || len >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET6, host, ns->addr) != 1)
		return -EINVAL;
	ns->family = AF_INET6;
	spec->nns++;
	return 0;
}

/*
 * Copies the blank-separated word at p (before end) to w, truncated to
 * cap - 1; returns its end. The same words as proxy/resolv.c, so that both
 * sides keep the same list (a CR stays part of the word there too).
 */
static const char *
ns_word(const char *p, const char *end, char *w, size_t cap)
{
	size_t n = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (p < end && *p != ' ' && *p != '\t') {
		if (n + 1 < cap)
			w[n++] = *p;
		p++;
	}
	w[n] = '\0';
	return p;
}

void
rules_ns_from_resolv(struct rules_spec *spec, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *eol, *q;
	char key[16], w[258];	/* as proxy/resolv.c reads a word */

	spec->nns = 0;
	while (p < end) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		q = ns_word(p, eol, key, sizeof(key));
		if (strcmp(key, "nameserver") == 0) {
			(void)ns_word(q, eol, w, sizeof(w));
			(void)rules_ns_add(spec, w);	/* bad ones skipped */
		}
		p = eol + 1;
	}
}

uint8_t
rules_mark_sum(const struct rules_spec *spec)
{
	uint32_t h = 2166136261u;
	size_t i, k, alen;
	uint8_t tag;

	for (i = 0; i < spec->nns && i < RULES_MAX_NS; i++) {
		tag = spec->ns[i].family == AF_INET6 ? 6 : 4;
		alen = tag == 6 ? 16 : 4;
		h = (h ^ tag) * 16777619u;
		for (k = 0; k < alen; k++)
			h = (h ^ spec->ns[i].addr[k]) * 16777619u;
	}
	return (uint8_t)(h ^ h >> 8 ^ h >> 16 ^ h >> 24);
}

uint32_t
rules_mark(const struct rules_spec *spec, unsigned slot)
{
	return RULES_MARK_TAG |
	    (uint32_t)rules_mark_sum(spec) << RULES_MARK_SUM_SHIFT |
	    (slot & 0xff);
}

int
rules_plan(const struct rules_spec *spec, struct rules_rule *rules,
    size_t cap, size_t *n)
{
	static const uint8_t families[] = { NFPROTO_IPV4, NFPROTO_IPV6 };
	size_t i, nfam = spec->ipv6 ? 2 : 1;
	int rc;

	*n = 0;
	/* nat output: returns, then redirect udp and tcp per family. */
	if ((rc = plan_returns(spec, RULES_CHAIN_NAT, rules, cap, n)) != 0)
		return rc;
	for (i = 0; i < nfam; i++) {
		if ((rc = plan_one(rules, cap, n, RULES_CHAIN_NAT, families[i],
		    IPPROTO_UDP, RULES_REDIRECT, spec->proxy_port)) != 0 ||
		    (rc = plan_one(rules, cap, n, RULES_CHAIN_NAT, families[i],
		    IPPROTO_TCP, RULES_REDIRECT, spec->proxy_port)) != 0)
			return rc;
	}

	/* ct_zone: the proxy's answers, the same returns, then zone udp/53. */
	if (*n >= cap)
		return -ENOBUFS;
	rule_init(&rules[*n], RULES_CHAIN_ZONE);
	rules[*n].l4proto = IPPROTO_UDP;
	rules[*n].sport = spec->proxy_port;
	rules[*n].action = RULES_ZONE;
	rules[*n].arg = RULES_CT_ZONE;
	(*n)++;
	if ((rc = plan_returns(spec, RULES_CHAIN_ZONE, rules, cap, n)) != 0)
		return rc;
	for (i = 0; i < nfam; i++)
		if ((rc = plan_marks(spec, families[i], rules, cap, n)) != 0)
			return rc;
	for (i = 0; i < nfam; i++)
		if ((rc = plan_one(rules, cap, n, RULES_CHAIN_ZONE, families[i],
		    IPPROTO_UDP, RULES_ZONE, RULES_CT_ZONE)) != 0)
			return rc;
	return 0;
}

int
rules_cidr_parse(const char *s, struct rules_cidr *c)
{
	char addr[INET6_ADDRSTRLEN + 8], *end;
	unsigned long prefix;
	const char *slash;
	unsigned int i, max;
	size_t alen;

	memset(c, 0, sizeof(*c));
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else
		return -EINVAL;
	prefix = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -ERANGE;
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || prefix > max)
			return -ERANGE;
	}
	c->prefix = (unsigned int)prefix;
	for (i = c->prefix; i < max; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8)))
			return -EDOM;
	return 0;
}

static const char *
l4_name(uint8_t l4proto)
{
	return l4proto == IPPROTO_TCP ? "tcp" : "udp";
}

int
rules_rule_text(const struct rules_rule *r, char *buf, size_t cap)
{
	char addr[INET6_ADDRSTRLEN];
	size_t off = 0;
	int err = 0;

	if (cap == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	if (r->has_uid)
		nftb_text(buf, cap, &off, &err, "meta skuid %u ", r->uid);
	if (r->has_gid)
		nftb_text(buf, cap, &off, &err, "meta skgid %u ", r->gid);
	if (r->nfproto != 0 && !r->has_daddr)
		nftb_text(buf, cap, &off, &err, "meta nfproto %s ",
		    r->nfproto == NFPROTO_IPV6 ? "ipv6" : "ipv4");
	if (r->has_daddr) {
		if (inet_ntop(r->daddr.family, r->daddr.addr, addr,
		    sizeof(addr)) == NULL)
			return -EINVAL;
		nftb_text(buf, cap, &off, &err, "%s daddr %s/%u ",
		    r->daddr.family == AF_INET6 ? "ip6" : "ip", addr,
		    r->daddr.prefix);
	}
	if (r->l4proto != 0 && r->sport == 0 && r->dport == 0)
		nftb_text(buf, cap, &off, &err, "meta l4proto %s ",
		    l4_name(r->l4proto));
	if (r->sport != 0)
		nftb_text(buf, cap, &off, &err, "%s sport %u ",
		    l4_name(r->l4proto), r->sport);
	if (r->dport != 0)
		nftb_text(buf, cap, &off, &err, "%s dport %u ",
		    l4_name(r->l4proto), r->dport);
	nftb_text(buf, cap, &off, &err, "counter ");
	switch (r->action) {
	case RULES_RETURN:
		nftb_text(buf, cap, &off, &err, "return");
		break;
	case RULES_ZONE:
		nftb_text(buf, cap, &off, &err, "ct zone set %u", r->arg);
		break;
	case RULES_REDIRECT:
		nftb_text(buf, cap, &off, &err, "redirect to :%u", r->arg);
		break;
	case RULES_MARK:
		nftb_text(buf, cap, &off, &err, "meta mark set 0x%08x",
		    (unsigned int)r->mark);
		break;
	}
	return err;
}

static int
chain_cmd_text(const struct rules_chain *c, char *buf, size_t cap)
{
	size_t off = 0;
	int err = 0;

	nftb_text(buf, cap, &off, &err, "add chain inet %s %s { type %s hook "
	    "output priority %d; policy accept; }", RULES_TABLE, c->name,
	    c->type, (int)c->prio);
	return err;
}

static int
rule_cmd_text(const struct rules_rule *r, char *buf, size_t cap)
{
	char text[RULES_TEXT_MAX];
	size_t off = 0;
	int err = 0, rc;

	if ((rc = rules_rule_text(r, text, sizeof(text))) != 0)
		return rc;
	nftb_text(buf, cap, &off, &err, "add rule inet %s %s %s", RULES_TABLE,
	    r->chain, text);
	return err;
}

/*
 * ip/ip6 daddr in a prefix, as nft 1.0 encodes it: a byte-aligned prefix
 * loads just those bytes; any other loads the whole address and masks it.
 */
static int
add_daddr(struct nftnl_rule *r, const struct rules_cidr *c)
{
	uint8_t mask[16], nfproto;
	uint32_t alen, off, len;
	unsigned int i;
	int rc;

	if (c->family == AF_INET6) {
		nfproto = NFPROTO_IPV6;
		alen = 16;
		off = 24;	/* ip6 header: daddr */
	} else {
		nfproto = NFPROTO_IPV4;
		alen = 4;
		off = 16;	/* ip header: daddr */
	}
	if ((rc = nftb_meta_eq(r, NFT_META_NFPROTO, &nfproto, 1)) != 0)
		return rc;
	if (c->prefix % 8 == 0 && c->prefix != 0) {
		len = c->prefix / 8;
		if ((rc = nftb_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off,
		    len)) != 0)
			return rc;
		return nftb_cmp(r, NFT_CMP_EQ, c->addr, len);
	}
	if ((rc = nftb_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, alen)) != 0)
		return rc;
	memset(mask, 0, sizeof(mask));
	for (i = 0; i < c->prefix; i++)
		mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	if ((rc = nftb_mask(r, mask, alen)) != 0)
		return rc;
	return nftb_cmp(r, NFT_CMP_EQ, c->addr, alen);
}

static int
add_port(struct nftnl_rule *r, uint8_t l4proto, uint32_t offset,
    uint16_t port)
{
	uint16_t be = htons(port);
	int rc;

	if ((rc = nftb_meta_eq(r, NFT_META_L4PROTO, &l4proto, 1)) != 0 ||
	    (rc = nftb_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, offset, 2)) != 0)
		return rc;
	return nftb_cmp(r, NFT_CMP_EQ, &be, sizeof(be));
}

static int
add_action(struct nftnl_rule *r, enum rules_action action, uint16_t arg,
    uint32_t mark)
{
	struct nftnl_expr *e;
	uint16_t be;
	int rc;

	switch (action) {
	case RULES_RETURN:
		return nftb_verdict(r, NFT_RETURN);
	case RULES_ZONE:
		/* The zone is a host-order u16 in the register. */
		if ((rc = nftb_imm(r, &arg, sizeof(arg))) != 0)
			return rc;
		if ((e = nftnl_expr_alloc("ct")) == NULL)
			return -ENOMEM;
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_ZONE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
		return nftb_expr(r, e);
	case RULES_REDIRECT:
		/*
		 * The port is network order. nft sets PROTO_SPECIFIED and
		 * the kernel reports proto_max = proto_min: say both, so a
		 * read-back compares equal.
		 */
		be = htons(arg);
		if ((rc = nftb_imm(r, &be, sizeof(be))) != 0)
			return rc;
		if ((e = nftnl_expr_alloc("redir")) == NULL)
			return -ENOMEM;
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MAX, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS,
		    NF_NAT_RANGE_PROTO_SPECIFIED);
		return nftb_expr(r, e);
	case RULES_MARK:
		/* A host-order u32 in the register, as nft puts it there. */
		if ((rc = nftb_imm(r, &mark, sizeof(mark))) != 0)
			return rc;
		if ((e = nftnl_expr_alloc("meta")) == NULL)
			return -ENOMEM;
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
		return nftb_expr(r, e);
	}
	return -EINVAL;
}

struct nftnl_rule *
rules_rule_nftnl(const struct rules_rule *rr)
{
	struct nftnl_rule *r;
	uint8_t nfproto = rr->nfproto;
	int rc = 0;

	if ((r = nftnl_rule_alloc()) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	if (nftnl_rule_set_str(r, NFTNL_RULE_TABLE, RULES_TABLE) != 0 ||
	    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, rr->chain) != 0)
		rc = -ENOMEM;
	if (rc == 0 && rr->has_uid)
		rc = nftb_meta_eq(r, NFT_META_SKUID, &rr->uid, sizeof(rr->uid));
	if (rc == 0 && rr->has_gid)
		rc = nftb_meta_eq(r, NFT_META_SKGID, &rr->gid, sizeof(rr->gid));
	if (rc == 0 && nfproto != 0 && !rr->has_daddr)
		rc = nftb_meta_eq(r, NFT_META_NFPROTO, &nfproto, 1);
	if (rc == 0 && rr->has_daddr)
		rc = add_daddr(r, &rr->daddr);
	if (rc == 0 && rr->l4proto != 0 && rr->sport == 0 && rr->dport == 0)
		rc = nftb_meta_eq(r, NFT_META_L4PROTO, &rr->l4proto, 1);
	if (rc == 0 && rr->sport != 0)
		rc = add_port(r, rr->l4proto, 0, rr->sport);
	if (rc == 0 && rr->dport != 0)
		rc = add_port(r, rr->l4proto, 2, rr->dport);
	if (rc == 0)
		rc = nftb_expr(r, nftnl_expr_alloc("counter"));
	if (rc == 0)
		rc = add_action(r, rr->action, rr->arg, rr->mark);
	if (rc != 0) {
		nftnl_rule_free(r);
		errno = -rc;
		return NULL;
	}
	return r;
}

struct nftnl_chain *
rules_chain_nftnl(const struct rules_chain *c)
{
	struct nftnl_chain *ch;

	if ((ch = nftnl_chain_alloc()) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, RULES_TABLE) != 0 ||
	    nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c->name) != 0 ||
	    nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, c->type) != 0) {
		nftnl_chain_free(ch);
		errno = ENOMEM;
		return NULL;
	}
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, c->hooknum);
	nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c->prio);
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	return ch;
}

#define ADD_TABLE	"add table inet " RULES_TABLE
#define DEL_TABLE	"delete table inet " RULES_TABLE

int
rules_batch_install(const struct rules_spec *spec, uint32_t seq, void *buf,
    size_t cap, struct rules_batch *out)
{
	struct rules_rule plan[RULES_MAX_RULES];
	char what[RULES_WHAT_MAX];
	struct nftnl_chain *ch;
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;
	struct nftb bt;
	size_t nplan, i, k;
	int rc;

	if ((rc = rules_plan(spec, plan, RULES_MAX_RULES, &nplan)) != 0)
		return rc;
	if ((rc = nftb_start(&bt, seq, buf, cap, out)) != 0)
		return rc;
	/* add, delete, add: replaces any earlier copy in one transaction. */
	rc = nftb_table_replace(&bt, RULES_TABLE);
	for (k = 0; rc == 0 && k < RULES_NCHAINS; k++) {
		if ((rc = chain_cmd_text(&rules_chains[k], what,
		    sizeof(what))) != 0)
			break;
		if ((ch = rules_chain_nftnl(&rules_chains[k])) == NULL) {
			rc = -ENOMEM;
			break;
		}
		if ((nlh = nftb_msg(&bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
		    what)) == NULL)
			rc = -ENOBUFS;
		else {
			nftnl_chain_nlmsg_build_payload(nlh, ch);
			rc = nftb_next(&bt);
		}
		nftnl_chain_free(ch);
	}
	for (i = 0; rc == 0 && i < nplan; i++) {
		if ((rc = rule_cmd_text(&plan[i], what, sizeof(what))) != 0)
			break;
		if ((r = rules_rule_nftnl(&plan[i])) == NULL) {
			rc = -ENOMEM;
			break;
		}
		if ((nlh = nftb_msg(&bt, NFT_MSG_NEWRULE,
		    NLM_F_CREATE | NLM_F_APPEND, what)) == NULL)
			rc = -ENOBUFS;
		else {
			nftnl_rule_nlmsg_build_payload(nlh, r);
			rc = nftb_next(&bt);
		}
		nftnl_rule_free(r);
	}
	return nftb_finish(&bt, rc);
}

int
rules_batch_cleanup(uint32_t seq, void *buf, size_t cap,
    struct rules_batch *out)
{
	struct nftb bt;
	int rc;

	if ((rc = nftb_start(&bt, seq, buf, cap, out)) != 0)
		return rc;
	/* Adding first makes the delete succeed when the table is absent. */
	rc = nftb_table_remove(&bt, RULES_TABLE);
	return nftb_finish(&bt, rc);
}

int
rules_text(const struct rules_spec *spec, char *buf, size_t cap)
{
	struct rules_rule plan[RULES_MAX_RULES];
	char what[RULES_WHAT_MAX];
	size_t nplan, i, k, off = 0;
	int err = 0, rc;

	if ((rc = rules_plan(spec, plan, RULES_MAX_RULES, &nplan)) != 0)
		return rc;
	if (cap == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	nftb_text(buf, cap, &off, &err, "%s\n%s\n%s\n", ADD_TABLE, DEL_TABLE,
	    ADD_TABLE);
	for (k = 0; k < RULES_NCHAINS; k++) {
		if ((rc = chain_cmd_text(&rules_chains[k], what,
		    sizeof(what))) != 0)
			return rc;
		nftb_text(buf, cap, &off, &err, "%s\n", what);
	}
	for (i = 0; i < nplan; i++) {
		if ((rc = rule_cmd_text(&plan[i], what, sizeof(what))) != 0)
			return rc;
		nftb_text(buf, cap, &off, &err, "%s\n", what);
	}
	return err;
}

int
rules_rule_digest(const struct nftnl_rule *r, char *buf, size_t cap)
{
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	char one[512];
	const char *name;
	size_t off = 0;
	int err = 0;

	if (cap == 0)
		return -ENOBUFS;
	buf[0] = '\0';
	if ((it = nftnl_expr_iter_create(r)) == NULL)
		return -ENOMEM;
	while ((e = nftnl_expr_iter_next(it)) != NULL) {
		name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
		if (name == NULL)
			name = "?";
		/* Counter values change with traffic: compare presence only. */
		if (strcmp(name, "counter") == 0) {
			nftb_text(buf, cap, &off, &err, "[ counter ]");
			continue;
		}
		if (nftnl_expr_snprintf(one, sizeof(one), e,
		    NFTNL_OUTPUT_DEFAULT, 0) < 0)
			one[0] = '\0';
		nftb_text(buf, cap, &off, &err, "[ %s %s]", name, one);
	}
	nftnl_expr_iter_destroy(it);
	return err;
}

static bool
ours(const char *table, uint32_t family)
{
	return table != NULL && strcmp(table, RULES_TABLE) == 0 &&
	    family == NFPROTO_INET;
}

/* Checks the chain list; true when it holds exactly our base chains. */
static bool
check_chains(const struct nftnl_chain_list *chains, char *why, size_t cap)
{
	struct nftnl_chain_list_iter *it;
	const struct rules_chain *want;
	const struct nftnl_chain *c;
	bool seen[RULES_NCHAINS] = { false }, good = true;
	const char *name, *type;
	size_t k;

	if ((it = nftnl_chain_list_iter_create(chains)) == NULL) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	while (good && (c = nftnl_chain_list_iter_next(it)) != NULL) {
		if (!ours(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE),
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY)))
			continue;
		name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
		want = NULL;
		for (k = 0; k < RULES_NCHAINS; k++)
			if (name != NULL && strcmp(name, rules_chains[k].name) == 0) {
				want = &rules_chains[k];
				break;
			}
		if (want == NULL) {
			snprintf(why, cap, "unexpected chain %s",
			    name != NULL ? name : "?");
			good = false;
			break;
		}
		seen[k] = true;
		type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
		if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) ||
		    type == NULL || strcmp(type, want->type) != 0 ||
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) != want->hooknum ||
		    nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) != want->prio ||
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) != NF_ACCEPT) {
			snprintf(why, cap, "chain %s is not { type %s hook "
			    "output priority %d; policy accept; }", want->name,
			    want->type, (int)want->prio);
			good = false;
		}
	}
	nftnl_chain_list_iter_destroy(it);
	for (k = 0; good && k < RULES_NCHAINS; k++)
		if (!seen[k]) {
			snprintf(why, cap, "chain %s is missing",
			    rules_chains[k].name);
			good = false;
		}
	return good;
}

/* Compares the rules of one chain, in order, with the planned ones. */
static bool
check_chain_rules(const char *chain, const struct rules_rule *plan,
    size_t nplan, const struct nftnl_rule_list *rules, char *why, size_t cap)
{
	char want[2048], have[2048], text[RULES_TEXT_MAX];
	struct nftnl_rule_list_iter *it;
	const struct nftnl_rule *r;
	struct nftnl_rule *w;
	size_t i = 0, pos = 0;
	const char *cname;
	bool good = true;

	if ((it = nftnl_rule_list_iter_create(rules)) == NULL) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	while (good && (r = nftnl_rule_list_iter_next(it)) != NULL) {
		cname = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
		if (!ours(nftnl_rule_get_str(r, NFTNL_RULE_TABLE),
		    nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY)) ||
		    cname == NULL || strcmp(cname, chain) != 0)
			continue;
		pos++;
		while (i < nplan && strcmp(plan[i].chain, chain) != 0)
			i++;
		if (i >= nplan) {
			snprintf(why, cap, "chain %s has an unexpected extra "
			    "rule %zu", chain, pos);
			good = false;
			break;
		}
		if (rules_rule_text(&plan[i], text, sizeof(text)) != 0)
			text[0] = '\0';
		if ((w = rules_rule_nftnl(&plan[i])) == NULL) {
			snprintf(why, cap, "out of memory");
			good = false;
			break;
		}
		if (rules_rule_digest(w, want, sizeof(want)) != 0 ||
		    rules_rule_digest(r, have, sizeof(have)) != 0 ||
		    strcmp(want, have) != 0) {
			snprintf(why, cap, "chain %s rule %zu differs: want "
			    "'%s'", chain, pos, text);
			good = false;
		}
		nftnl_rule_free(w);
		i++;
	}
	nftnl_rule_list_iter_destroy(it);
	if (!good)
		return false;
	while (i < nplan && strcmp(plan[i].chain, chain) != 0)
		i++;
	if (i < nplan) {
		if (rules_rule_text(&plan[i], text, sizeof(text)) != 0)
			text[0] = '\0';
		snprintf(why, cap, "chain %s rule %zu is missing: want '%s'",
		    chain, pos + 1, text);
		return false;
	}
	return true;
}

/* Names the table flags set in flags, for --check's one line. */
static void
flags_text(uint32_t flags, char *buf, size_t cap)
{
	static const struct {
		uint32_t	 bit;
		const char	*name;
	} names[] = { { 0x1, "dormant" }, { 0x2, "owner" }, { 0x4, "persist" } };
	size_t off = 0, i;
	int err = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & names[i].bit)
			nftb_text(buf, cap, &off, &err, "%s%s", off > 0 ? "," :
			    "", names[i].name);
	nftb_text(buf, cap, &off, &err, "%s0x%x", off > 0 ? " " : "",
	    (unsigned int)flags);
}

bool
rules_check(const struct rules_spec *spec, uint32_t table_flags,
    const struct nftnl_chain_list *chains,
    const struct nftnl_rule_list *rules, char *why, size_t cap)
{
	struct rules_rule plan[RULES_MAX_RULES];
	char ftext[64];
	size_t nplan, k;

	if (cap > 0)
		why[0] = '\0';
	if (rules_plan(spec, plan, RULES_MAX_RULES, &nplan) != 0) {
		snprintf(why, cap, "too many rules");
		return false;
	}
	/* A dormant table keeps its rules but runs none of them. */
	if (table_flags != 0) {
		flags_text(table_flags, ftext, sizeof(ftext));
		snprintf(why, cap, "table inet %s has flags %s; want none",
		    RULES_TABLE, ftext);
		return false;
	}
	if (!check_chains(chains, why, cap))
		return false;
	for (k = 0; k < RULES_NCHAINS; k++)
		if (!check_chain_rules(rules_chains[k].name, plan, nplan,
		    rules, why, cap))
			return false;
	return true;
}
