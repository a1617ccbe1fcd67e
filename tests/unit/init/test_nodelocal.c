/*
 * Tests of init/nodelocal.c, no kernel needed: the flags' checks (what
 * must exit 2 before anything changes), the plan's order and content (the
 * fail-open design rests on it), the `nft -f` text, and the batch parsed
 * back with libnftnl (messages, ACK flags, sequence numbers, expressions).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "init/nodelocal.h"
#include "tests/unit/tap.h"

static uint8_t buf[RULES_BATCH_CAP];
static struct rules_batch batch;
static char why[256];

/* A spec from "addrs" and an upstream ("" for none). */
static int
spec_make(struct nodelocal_spec *s, const char *addrs, const char *up)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->ifname, sizeof(s->ifname), "%s", NODELOCAL_IFNAME);
	if (up[0] != '\0') {
		if (rules_cidr_parse(up, &s->upstream) != 0)
			return -1;
		s->has_upstream = true;
	}
	if (nodelocal_parse_addrs(s, addrs, why, sizeof(why)) != 0)
		return -1;
	return nodelocal_check(s, why, sizeof(why));
}

static void
test_parse(void)
{
	struct nodelocal_spec s;

	memset(&s, 0, sizeof(s));
	is(nodelocal_parse_addrs(&s, "169.254.20.10,,198.51.100.10,", why,
	    sizeof(why)), 0, "a comma list with empty items parses");
	is(s.naddr, 2, "two addresses");
	memset(&s, 0, sizeof(s));
	is(nodelocal_parse_addrs(&s, "198.51.100.0/24", why, sizeof(why)), -1,
	    "a prefix is refused");
	ok(strstr(why, "not an IPv4 or IPv6 address") != NULL, "why: %s", why);
	memset(&s, 0, sizeof(s));
	is(nodelocal_parse_addrs(&s, "kube-dns", why, sizeof(why)), -1,
	    "a name is refused");
	memset(&s, 0, sizeof(s));
	is(nodelocal_parse_addrs(&s, ",", why, sizeof(why)), -1,
	    "no address is refused");
	memset(&s, 0, sizeof(s));
	is(nodelocal_parse_addrs(&s, "192.0.2.1,192.0.2.2,192.0.2.3,"
	    "192.0.2.4,192.0.2.5,192.0.2.6,192.0.2.7,192.0.2.8,192.0.2.9", why,
	    sizeof(why)), -1, "more than %d addresses are refused",
	    NODELOCAL_MAX_ADDRS);
}

static void
test_check(void)
{
	static const struct {
		const char *addrs, *up, *want;
	} bad[] = {
		{ "198.51.100.10,198.51.100.10", "", "given twice" },
		{ "169.254.20.10,198.51.100.10", "198.51.100.10", "ask itself" },
		{ "169.254.20.10,198.51.100.10", "", "needs --node-local-upstream" },
		{ "169.254.20.10", "2001:db8::11", "needs --node-local-upstream" },
		{ "169.254.20.10,169.254.20.11", "198.51.100.11", "only one" },
		{ "169.254.20.10", "169.254.0.1", "link-local address cannot" },
		{ "127.0.0.1", "", "loopback" },
		{ "0.0.0.0", "", "unspecified" },
		{ "224.0.0.1", "", "multicast" },
		{ "255.255.255.255", "", "broadcast" },
		{ "::1", "", "loopback" },
		{ "ff02::1", "", "multicast" },
		{ "::ffff:192.0.2.1", "", "IPv4-mapped" },
		{ "198.51.100.10", "127.0.0.1", "loopback" },
	};
	struct nodelocal_spec s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		is(spec_make(&s, bad[i].addrs, bad[i].up), -1,
		    "refused: %s (upstream '%s')", bad[i].addrs, bad[i].up);
		ok(strstr(why, bad[i].want) != NULL && strchr(why, '\n') ==
		    NULL, "one line saying '%s': %s", bad[i].want, why);
	}
	is(spec_make(&s, "169.254.20.10,198.51.100.10", "198.51.100.11"), 0,
	    "the convention passes: %s", why);
	is(spec_make(&s, "198.51.100.10", ""), 0,
	    "a kube-dns IP alone needs no upstream");
	is(spec_make(&s, "fe80::a,2001:db8::10", "2001:db8::11"), 0,
	    "IPv6 passes: %s", why);
	snprintf(s.ifname, sizeof(s.ifname), "a/b");
	is(nodelocal_check(&s, why, sizeof(why)), -1, "a '/' in the name");
	ok(nodelocal_is_linklocal(&s.addr[0]), "fe80::a is link-local");
	ok(!nodelocal_is_linklocal(&s.addr[1]), "2001:db8::10 is not");
}

static size_t
count(const struct nodelocal_rule *r, size_t n, enum nodelocal_chain c)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += r[i].chain == c;
	return k;
}

static void
test_plan(void)
{
	struct nodelocal_rule r[NODELOCAL_MAX_RULES];
	struct nodelocal_spec s;
	size_t n, i, first_other = 0;
	bool seen_rewrite = false, order = true;

	spec_make(&s, "169.254.20.10,198.51.100.10", "198.51.100.11");
	is(nodelocal_plan(&s, r, NODELOCAL_MAX_RULES, &n), 0, "plan");
	is(n, 26, "26 rules for two addresses");
	is(count(r, n, NLC_PRE_RAW), 12, "prerouting: 12");
	is(count(r, n, NLC_OUT_RAW), 8, "output: 8");
	is(count(r, n, NLC_POST_NAT), 2, "postrouting nat: 2");
	is(count(r, n, NLC_POST_REPLY), 2, "postrouting reply: 2");
	is(count(r, n, NLC_IN_REPLY), 2, "input reply: 2");
	/* Fail-open order: every socket rule before any rewrite or track. */
	for (i = 0; i < n && r[i].chain == NLC_PRE_RAW; i++) {
		if (r[i].socket_bound || r[i].socket_any) {
			order = order && !seen_rewrite;
			ok(r[i].action == NLA_NOTRACK_ACCEPT,
			    "socket rule %zu ends the chain", i);
		} else
			seen_rewrite = true;
		if (r[i].action == NLA_SET_DADDR) {
			uint8_t ll[4] = { 169, 254, 20, 10 };

			ok(memcmp(r[i].daddr, ll, 4) == 0,
			    "only the link-local address is rewritten");
		}
		if (r[i].action == NLA_TRACK)
			ok(r[i].iif_lo, "only packets looped over lo are "
			    "tracked again");
		first_other = i + 1;
	}
	ok(order, "socket rules come first");
	ok(seen_rewrite, "rewrite and track rules follow");
	ok(first_other == 12, "prerouting rules are together");
	for (i = 0; i < n; i++)
		if (r[i].socket_any)
			ok(r[i].l4proto == IPPROTO_TCP, "the any-socket rule is "
			    "TCP only (past the SYN)");
	for (i = 0; i < n; i++)
		if (r[i].chain == NLC_OUT_RAW)
			ok(r[i].action == NLA_NOTRACK && !r[i].socket_bound,
			    "output rule %zu: notrack, no socket lookup", i);
	spec_make(&s, "198.51.100.10", "");
	is(nodelocal_plan(&s, r, NODELOCAL_MAX_RULES, &n), 0, "plan, K only");
	is(count(r, n, NLC_POST_REPLY) + count(r, n, NLC_IN_REPLY), 0,
	    "no reply rewrite without a link-local address");
	is(nodelocal_plan(&s, r, 3, &n), -ENOBUFS, "a short array: ENOBUFS");
}

static void
test_text(void)
{
	static const char *const want[] = {
		"add table inet dotproxy-nodelocal\n"
		"delete table inet dotproxy-nodelocal\n"
		"add table inet dotproxy-nodelocal\n",
		"add chain inet dotproxy-nodelocal prerouting { type filter "
		"hook prerouting priority -300; policy accept; }\n",
		"add chain inet dotproxy-nodelocal postrouting_nat { type nat "
		"hook postrouting priority 100; policy accept; }\n",
		"add chain inet dotproxy-nodelocal set_lo_accept_local\n",
		"add rule inet dotproxy-nodelocal prerouting ip daddr "
		"198.51.100.10 udp dport 53 socket wildcard 0 counter notrack "
		"accept\n",
		"add rule inet dotproxy-nodelocal prerouting ip daddr "
		"198.51.100.10 tcp dport 53 tcp flags & syn == 0 socket "
		"transparent 0 counter notrack accept\n",
		"add rule inet dotproxy-nodelocal prerouting ip daddr "
		"169.254.20.10 udp dport 53 counter ip daddr set 198.51.100.11\n",
		"add rule inet dotproxy-nodelocal prerouting iif \"lo\" ip daddr "
		"198.51.100.11 udp dport 53 counter ct zone set 0\n",
		"add rule inet dotproxy-nodelocal output ip saddr 198.51.100.10 "
		"udp sport 53 counter notrack\n",
		"add rule inet dotproxy-nodelocal output ip daddr 169.254.20.10 "
		"tcp dport 53 counter notrack\n",
		"add rule inet dotproxy-nodelocal postrouting_nat ip saddr "
		"169.254.20.10 ct status dnat counter masquerade\n",
		"add rule inet dotproxy-nodelocal postrouting_reply ip saddr "
		"198.51.100.11 udp sport 53 ct direction reply counter ip saddr "
		"set 169.254.20.10\n",
		"add rule inet dotproxy-nodelocal input_reply ip saddr "
		"198.51.100.11 ip daddr 169.254.20.10 udp sport 53 ct direction "
		"reply counter ip saddr set 169.254.20.10\n",
	};
	static char text[65536];
	struct nodelocal_spec s;
	size_t i;

	spec_make(&s, "169.254.20.10,198.51.100.10", "198.51.100.11");
	s.marker = true;
	is(nodelocal_text(&s, text, sizeof(text)), 0, "text renders");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ok(strstr(text, want[i]) != NULL, "text has line %zu", i);
	spec_make(&s, "fe80::a", "2001:db8::11");
	is(nodelocal_text(&s, text, sizeof(text)), 0, "IPv6 text renders");
	ok(strstr(text, "ip6 daddr fe80::a udp dport 53 counter ip6 daddr "
	    "set 2001:db8::11\n") != NULL, "IPv6 rewrite");
	ok(strstr(text, NODELOCAL_MARKER) == NULL, "no marker unless asked");
	is(nodelocal_text(&s, text, 100), -ENOBUFS, "a short buffer: ENOBUFS");
}

/* True if r has an expression named name. */
static bool
has_expr(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e;
	bool found = false;

	while ((e = nftnl_expr_iter_next(it)) != NULL)
		if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), name) == 0)
			found = true;
	nftnl_expr_iter_destroy(it);
	return found;
}

/* The payload set expression of r (one with an sreg), or NULL. */
static struct nftnl_expr *
payload_set(struct nftnl_rule *r)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e, *found = NULL;

	while ((e = nftnl_expr_iter_next(it)) != NULL)
		if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME),
		    "payload") == 0 && nftnl_expr_is_set(e,
		    NFTNL_EXPR_PAYLOAD_SREG))
			found = e;
	nftnl_expr_iter_destroy(it);
	return found;
}

static void
test_batch(void)
{
	struct nodelocal_rule plan[NODELOCAL_MAX_RULES];
	struct nodelocal_spec s;
	const struct nlmsghdr *nlh;
	struct nftnl_rule *r;
	struct nftnl_expr *e;
	size_t nplan, nrule = 0, nchain = 0, nmsg = 0, i;
	uint32_t seq0 = 1000;
	bool acks = true, seqs = true;
	int left;

	spec_make(&s, "169.254.20.10,198.51.100.10", "198.51.100.11");
	s.marker = true;
	nodelocal_plan(&s, plan, NODELOCAL_MAX_RULES, &nplan);
	is(nodelocal_batch_install(&s, seq0, buf, sizeof(buf), &batch), 0,
	    "install batch builds");
	is(batch.nmsg, 3 + NLC_COUNT + 1 + nplan, "messages: tables, chains, "
	    "marker, rules");
	is(batch.seq_next, seq0 + 2 + batch.nmsg, "sequence numbers used");
	ok(strcmp(batch.msg[0].what, "add table inet dotproxy-nodelocal") == 0,
	    "first command: %s", batch.msg[0].what);
	nlh = (const struct nlmsghdr *)buf;
	left = (int)batch.len;
	while (mnl_nlmsg_ok(nlh, left)) {
		if (NFNL_SUBSYS_ID(nlh->nlmsg_type) == NFNL_SUBSYS_NFTABLES) {
			acks = acks && (nlh->nlmsg_flags & NLM_F_ACK) != 0;
			seqs = seqs && nmsg < batch.nmsg &&
			    nlh->nlmsg_seq == batch.msg[nmsg].seq;
			nmsg++;
		}
		if (nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) |
		    NFT_MSG_NEWCHAIN))
			nchain++;
		if (nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) |
		    NFT_MSG_NEWRULE)) {
			r = nftnl_rule_alloc();
			ok(nftnl_rule_nlmsg_parse(nlh, r) == 0, "rule %zu parses",
			    nrule);
			if (nrule < nplan) {
				ok(has_expr(r, "counter"), "rule %zu counts",
				    nrule);
				if (plan[nrule].socket_bound ||
				    plan[nrule].socket_any)
					ok(has_expr(r, "socket") &&
					    has_expr(r, "notrack"), "rule %zu: "
					    "socket and notrack", nrule);
				if (plan[nrule].action == NLA_MASQ)
					ok(has_expr(r, "masq") && has_expr(r,
					    "ct"), "rule %zu: ct status, masq",
					    nrule);
				if (plan[nrule].action == NLA_SET_DADDR) {
					e = payload_set(r);
					ok(e != NULL && nftnl_expr_get_u32(e,
					    NFTNL_EXPR_PAYLOAD_OFFSET) == 16 &&
					    nftnl_expr_get_u32(e,
					    NFTNL_EXPR_PAYLOAD_CSUM_TYPE) ==
					    NFT_PAYLOAD_CSUM_INET &&
					    nftnl_expr_get_u32(e,
					    NFTNL_EXPR_PAYLOAD_CSUM_OFFSET) == 10 &&
					    nftnl_expr_get_u32(e,
					    NFTNL_EXPR_PAYLOAD_FLAGS) ==
					    NFT_PAYLOAD_L4CSUM_PSEUDOHDR,
					    "rule %zu: daddr set fixes both "
					    "checksums", nrule);
				}
			}
			nftnl_rule_free(r);
			nrule++;
		}
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	is(left, 0, "the batch parses to its end");
	ok(acks, "every command asks for an ACK");
	ok(seqs, "sequence numbers match the recorded commands");
	is(nchain, NLC_COUNT + 1, "five base chains and the marker");
	is(nrule, nplan, "one NEWRULE per planned rule");
	for (i = 3 + NLC_COUNT + 1; i < batch.nmsg; i++)
		if (strncmp(batch.msg[i].what, "add rule inet dotproxy-nodelocal",
		    32) != 0)
			ok(0, "message %zu is a rule: %s", i, batch.msg[i].what);
	is(nodelocal_batch_remove(1, buf, sizeof(buf), &batch), 0,
	    "remove batch builds");
	is(batch.nmsg, 2, "remove: add table, delete table");
	ok(strcmp(batch.msg[1].what, "delete table inet dotproxy-nodelocal") ==
	    0, "then delete: %s", batch.msg[1].what);
	is(nodelocal_batch_install(&s, 1, buf, 100, &batch), -ENOBUFS,
	    "a tiny buffer: ENOBUFS");
}

int
main(void)
{
	test_parse();
	test_check();
	test_plan();
	test_text();
	test_batch();
	return tap_done();
}
