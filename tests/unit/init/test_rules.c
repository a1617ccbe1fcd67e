/*
 * Round-trip tests of init/rules.c, no kernel needed: build the batch into
 * a buffer, parse every message back with libnftnl, and check the table
 * add/delete/add sequence, the chains, the rules in order with their
 * expressions, ACK flags and sequence numbers, the dry-run text, and
 * rules_check against lists parsed from the batch itself.
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
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>

#include "init/rules.h"
#include "tests/unit/tap.h"

#define MAXMSG	256

static uint8_t buf[RULES_BATCH_CAP];
static struct rules_batch batch;

/* The batch split into messages. */
struct parsed {
	const struct nlmsghdr	*msg[MAXMSG];
	size_t			 n;
	struct nftnl_rule	*rule[MAXMSG];	/* owned, NEWRULE order */
	size_t			 nrule;
	struct nftnl_chain_list	*chains;	/* owned */
	struct nftnl_rule_list	*rules;		/* owned: a second copy */
};

static uint16_t
msg_type(const struct nlmsghdr *nlh)
{
	return NFNL_MSG_TYPE(nlh->nlmsg_type);
}

static void
parse_batch(const void *b, size_t len, struct parsed *p)
{
	const struct nlmsghdr *nlh = b;
	struct nftnl_chain *c;
	struct nftnl_rule *r;
	int left = (int)len;

	memset(p, 0, sizeof(*p));
	p->chains = nftnl_chain_list_alloc();
	p->rules = nftnl_rule_list_alloc();
	while (mnl_nlmsg_ok(nlh, left) && p->n < MAXMSG) {
		p->msg[p->n++] = nlh;
		if (nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) |
		    NFT_MSG_NEWCHAIN)) {
			c = nftnl_chain_alloc();
			if (nftnl_chain_nlmsg_parse(nlh, c) == 0)
				nftnl_chain_list_add_tail(c, p->chains);
			else
				nftnl_chain_free(c);
		}
		if (nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) |
		    NFT_MSG_NEWRULE)) {
			r = nftnl_rule_alloc();
			if (nftnl_rule_nlmsg_parse(nlh, r) == 0)
				p->rule[p->nrule++] = r;
			r = nftnl_rule_alloc();
			if (nftnl_rule_nlmsg_parse(nlh, r) == 0)
				nftnl_rule_list_add_tail(r, p->rules);
		}
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	ok(left == 0, "batch parses to its end (%d bytes left)", left);
}

static void
parsed_free(struct parsed *p)
{
	size_t i;

	for (i = 0; i < p->nrule; i++)
		nftnl_rule_free(p->rule[i]);
	nftnl_chain_list_free(p->chains);
	nftnl_rule_list_free(p->rules);
}

/* The idx-th expression of r, or NULL. */
static struct nftnl_expr *
expr_at(const struct nftnl_rule *r, size_t idx)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e;
	size_t i = 0;

	while ((e = nftnl_expr_iter_next(it)) != NULL && i < idx)
		i++;
	nftnl_expr_iter_destroy(it);
	return e;
}

static size_t
expr_count(const struct nftnl_rule *r)
{
	size_t n = 0;

	while (expr_at(r, n) != NULL)
		n++;
	return n;
}

static bool
expr_is(const struct nftnl_expr *e, const char *name)
{
	const char *n;

	if (e == NULL)
		return false;
	n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	return n != NULL && strcmp(n, name) == 0;
}

static bool
has_counter(const struct nftnl_rule *r)
{
	size_t i;

	for (i = 0; expr_at(r, i) != NULL; i++)
		if (expr_is(expr_at(r, i), "counter"))
			return true;
	return false;
}

static const char *
rule_chain(const struct nftnl_rule *r)
{
	return nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
}

/* Last expression's kind: "return", "redir", "ct". */
static const char *
rule_action(const struct nftnl_rule *r)
{
	struct nftnl_expr *e = expr_at(r, expr_count(r) - 1);

	if (expr_is(e, "immediate") &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) == NFT_REG_VERDICT &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT) == (uint32_t)NFT_RETURN)
		return "return";
	if (expr_is(e, "redir"))
		return "redir";
	if (expr_is(e, "ct"))
		return "ct";
	if (expr_is(e, "meta") &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_MARK &&
	    nftnl_expr_is_set(e, NFTNL_EXPR_META_SREG))
		return "mark";
	return "?";
}

/* True if r has a "meta nfproto == v" match. */
static bool
has_nfproto(const struct nftnl_rule *r, uint8_t v)
{
	const uint8_t *d;
	struct nftnl_expr *e;
	uint32_t len;
	size_t i;

	for (i = 0; (e = expr_at(r, i)) != NULL; i++) {
		if (!expr_is(e, "meta") ||
		    nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) != NFT_META_NFPROTO)
			continue;
		d = nftnl_expr_get(expr_at(r, i + 1), NFTNL_EXPR_CMP_DATA, &len);
		if (d != NULL && len == 1 && d[0] == v)
			return true;
	}
	return false;
}

static void
spec_default(struct rules_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->proxy_port = 15353;
	s->proxy_uid = 15353;
	s->ipv6 = true;
}

static void
test_table_sequence(void)
{
	struct rules_spec s;
	struct nftnl_table *t;
	struct parsed p;
	static const uint16_t want[] = { NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE,
	    NFT_MSG_NEWTABLE };
	size_t i;
	int rc;

	spec_default(&s);
	rc = rules_batch_install(&s, 1000, buf, sizeof(buf), &batch);
	is(rc, 0, "install batch builds");
	parse_batch(buf, batch.len, &p);
	ok(p.n == batch.nmsg + 2, "begin + %zu messages + end", batch.nmsg);
	is(p.msg[0]->nlmsg_type, NFNL_MSG_BATCH_BEGIN, "starts with begin");
	is(p.msg[p.n - 1]->nlmsg_type, NFNL_MSG_BATCH_END, "ends with end");
	is(p.msg[0]->nlmsg_seq, 1000, "begin has the first seq");
	is(batch.seq_next, 1000 + p.n, "seq_next follows the end message");
	for (i = 0; i < 3; i++) {
		is(msg_type(p.msg[1 + i]), want[i], "message %zu: %s", i + 1,
		    i == 1 ? "delete table" : "add table");
		t = nftnl_table_alloc();
		is(nftnl_table_nlmsg_parse(p.msg[1 + i], t), 0, "table parses");
		ok(strcmp(nftnl_table_get_str(t, NFTNL_TABLE_NAME),
		    "dotproxy") == 0, "table name dotproxy");
		is(nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY), NFPROTO_INET,
		    "table family inet");
		nftnl_table_free(t);
	}
	ok((p.msg[1]->nlmsg_flags & NLM_F_CREATE) != 0 &&
	    (p.msg[1]->nlmsg_flags & NLM_F_EXCL) == 0,
	    "add table creates without EXCL (re-run converges)");
	/* Every command message asks for an ACK and is recorded. */
	for (i = 1; i + 1 < p.n; i++) {
		if (!(p.msg[i]->nlmsg_flags & NLM_F_ACK) ||
		    p.msg[i]->nlmsg_seq != batch.msg[i - 1].seq)
			break;
	}
	ok(i + 1 == p.n, "every command has NLM_F_ACK and its recorded seq");
	ok(strcmp(batch.msg[0].what, "add table inet dotproxy") == 0 &&
	    strcmp(batch.msg[1].what, "delete table inet dotproxy") == 0,
	    "commands are named for error messages");
	ok(strcmp(batch.msg[5].what, "add rule inet dotproxy output meta "
	    "skuid 15353 counter return") == 0, "rule command named: %s",
	    batch.msg[5].what);
	parsed_free(&p);
}

static void
test_chains(void)
{
	struct nftnl_chain_list_iter *it;
	struct nftnl_chain *c;
	struct rules_spec s;
	struct parsed p;
	int n = 0;

	spec_default(&s);
	is(rules_batch_install(&s, 1, buf, sizeof(buf), &batch), 0, "builds");
	parse_batch(buf, batch.len, &p);
	it = nftnl_chain_list_iter_create(p.chains);
	while ((c = nftnl_chain_list_iter_next(it)) != NULL) {
		const char *name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
		const char *type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);

		n++;
		is(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
		    NF_INET_LOCAL_OUT, "chain %s hooks output", name);
		is(nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY), NF_ACCEPT,
		    "chain %s policy accept", name);
		if (strcmp(name, "output") == 0) {
			ok(strcmp(type, "nat") == 0, "output is type nat");
			is(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), -110,
			    "output priority -110 (before -100)");
		} else {
			ok(strcmp(name, "ct_zone") == 0, "second chain ct_zone");
			ok(strcmp(type, "filter") == 0, "ct_zone is type filter");
			is(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), -300,
			    "ct_zone priority -300 (raw, before conntrack)");
		}
	}
	nftnl_chain_list_iter_destroy(it);
	is(n, 2, "two chains");
	parsed_free(&p);
}

static void
test_rules_order(void)
{
	struct rules_spec s;
	struct nftnl_expr *e;
	struct parsed p;
	const uint8_t *d;
	uint32_t len, uid;
	size_t i, last_return[2] = { 0, 0 }, first_action[2] = { 0, 0 };
	size_t nredir = 0, nzone = 0, nmark = 0;
	bool counters = true;
	int k;

	spec_default(&s);
	s.proxy_port = 5300;
	s.exclude_uid[s.nexclude_uid++] = 1001;
	s.exclude_gid[s.nexclude_gid++] = 2002;
	s.exclude_cidr[0].family = AF_INET;
	inet_pton(AF_INET, "198.51.100.0", s.exclude_cidr[0].addr);
	s.exclude_cidr[0].prefix = 24;
	s.exclude_cidr[1].family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::", s.exclude_cidr[1].addr);
	s.exclude_cidr[1].prefix = 33;
	s.nexclude_cidr = 2;
	is(rules_batch_install(&s, 1, buf, sizeof(buf), &batch), 0, "builds");
	parse_batch(buf, batch.len, &p);
	/* nat: 5 returns + 4 redirects; zone: 1 + 5 returns + 2 marks + 2. */
	is(p.nrule, 9 + 10, "19 rules");

	/* First rule of output: the proxy UID returns. */
	e = expr_at(p.rule[0], 0);
	ok(strcmp(rule_chain(p.rule[0]), "output") == 0, "rule 1 in output");
	ok(expr_is(e, "meta") &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_SKUID,
	    "rule 1 loads meta skuid");
	e = expr_at(p.rule[0], 1);
	d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	memcpy(&uid, d, sizeof(uid));
	ok(expr_is(e, "cmp") && len == 4 && uid == 15353,
	    "rule 1 compares it with 15353");
	ok(strcmp(rule_action(p.rule[0]), "return") == 0, "rule 1 returns");
	e = expr_at(p.rule[1], 1);
	d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	memcpy(&uid, d, sizeof(uid));
	ok(uid == 1001, "rule 2 is the excluded uid");
	e = expr_at(p.rule[2], 0);
	ok(nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_SKGID,
	    "rule 3 matches meta skgid");
	ok(has_nfproto(p.rule[3], NFPROTO_IPV4) &&
	    expr_is(expr_at(p.rule[3], 2), "payload") &&
	    nftnl_expr_get_u32(expr_at(p.rule[3], 2),
	    NFTNL_EXPR_PAYLOAD_LEN) == 3, "rule 4: ip daddr /24 loads 3 bytes");
	ok(has_nfproto(p.rule[4], NFPROTO_IPV6) &&
	    expr_is(expr_at(p.rule[4], 3), "bitwise"),
	    "rule 5: ip6 daddr /33 is masked");
	{
		static const uint8_t want[16] = { 0xff, 0xff, 0xff, 0xff, 0x80 };
		static const uint8_t zero[16];
		const void *m, *x;
		uint32_t mlen = 0, xlen = 0;

		e = expr_at(p.rule[4], 3);
		m = e != NULL ? nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK,
		    &mlen) : NULL;
		x = e != NULL ? nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR,
		    &xlen) : NULL;
		ok(m != NULL && mlen == 16 && memcmp(m, want, 16) == 0,
		    "its mask: 33 bits of 128");
		ok(x != NULL && xlen == 16 && memcmp(x, zero, 16) == 0,
		    "its xor: zero");
		ok(e != NULL && nftnl_expr_get_u32(e,
		    NFTNL_EXPR_BITWISE_LEN) == 16, "its length: 16");
	}

	for (i = 0; i < p.nrule; i++) {
		const char *act = rule_action(p.rule[i]);

		k = strcmp(rule_chain(p.rule[i]), "output") == 0 ? 0 : 1;
		if (!has_counter(p.rule[i]))
			counters = false;
		/* Actions after the first return (the zone chain opens
		 * with its proxy-answer rule, which is no capture). */
		if (strcmp(act, "return") == 0)
			last_return[k] = i;
		else if (first_action[k] == 0 && last_return[k] != 0)
			first_action[k] = i;
		if (strcmp(act, "redir") == 0) {
			nredir++;
			/* [..., counter, immediate reg1 port, redir] */
			e = expr_at(p.rule[i], expr_count(p.rule[i]) - 2);
			d = nftnl_expr_get(e, NFTNL_EXPR_IMM_DATA, &len);
			ok(expr_is(e, "immediate") && len == 2 &&
			    d[0] == 5300 >> 8 && d[1] == (5300 & 0xff) &&
			    nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) ==
			    NFT_REG_1, "rule %zu: port 5300 in reg 1", i + 1);
			e = expr_at(p.rule[i], expr_count(p.rule[i]) - 1);
			ok(nftnl_expr_get_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN)
			    == NFT_REG_1 && nftnl_expr_get_u32(e,
			    NFTNL_EXPR_REDIR_FLAGS) == NF_NAT_RANGE_PROTO_SPECIFIED,
			    "rule %zu: redirect proto_min reg 1", i + 1);
			ok(expr_is(expr_at(p.rule[i], expr_count(p.rule[i]) -
			    3), "counter"), "rule %zu: counter before the "
			    "action", i + 1);
		}
		if (strcmp(act, "mark") == 0) {
			uint32_t m = 0;

			nmark++;
			/* [..., counter, immediate reg1 mark, meta mark] */
			e = expr_at(p.rule[i], expr_count(p.rule[i]) - 2);
			d = nftnl_expr_get(e, NFTNL_EXPR_IMM_DATA, &len);
			if (d != NULL && len == 4)
				memcpy(&m, d, 4);
			ok(expr_is(e, "immediate") && len == 4 &&
			    m == (0xd07d0000u | 0xc5u << 8),
			    "rule %zu: mark 0xd07dc500 (tag, empty list, slot "
			    "0), got 0x%x", i + 1, (unsigned)m);
			ok(strcmp(rule_chain(p.rule[i]), "ct_zone") == 0 &&
			    i + 2 < p.nrule && strcmp(rule_action(p.rule[i + 2]),
			    "ct") == 0, "rule %zu: marks in the raw chain, "
			    "before the zone rules", i + 1);
		}
		if (strcmp(act, "ct") == 0) {
			nzone++;
			e = expr_at(p.rule[i], expr_count(p.rule[i]) - 1);
			ok(nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY) ==
			    NFT_CT_ZONE, "rule %zu: ct zone set", i + 1);
		}
	}
	ok(counters, "every rule has a counter");
	is(nredir, 4, "udp+tcp x ipv4+ipv6 redirects");
	is(nzone, 3, "zone: proxy answers + udp v4 + udp v6");
	is(nmark, 2, "mark: udp v4 + udp v6");
	ok(last_return[0] < first_action[0], "nat: exclusions before "
	    "redirects (%zu < %zu)", last_return[0], first_action[0]);
	ok(last_return[1] < first_action[1], "zone: exclusions before zoning");
	ok(strcmp(rule_chain(p.rule[9]), "ct_zone") == 0 &&
	    strcmp(rule_action(p.rule[9]), "ct") == 0,
	    "ct_zone starts with the proxy-answer zone rule");
	parsed_free(&p);
}

static void
test_ipv6_off(void)
{
	struct rules_spec s;
	struct parsed p;
	size_t i, v4 = 0, v6 = 0;

	spec_default(&s);
	s.ipv6 = false;
	is(rules_batch_install(&s, 1, buf, sizeof(buf), &batch), 0, "builds");
	parse_batch(buf, batch.len, &p);
	for (i = 0; i < p.nrule; i++) {
		if (strcmp(rule_action(p.rule[i]), "redir") != 0)
			continue;
		v4 += has_nfproto(p.rule[i], NFPROTO_IPV4);
		v6 += has_nfproto(p.rule[i], NFPROTO_IPV6);
	}
	is(v4, 2, "ipv6 off: two IPv4 redirects (udp, tcp)");
	is(v6, 0, "ipv6 off: no IPv6 redirect");
	parsed_free(&p);
}

static const char want_text[] =
"add table inet dotproxy\n"
"delete table inet dotproxy\n"
"add table inet dotproxy\n"
"add chain inet dotproxy output { type nat hook output priority -110; policy accept; }\n"
"add chain inet dotproxy ct_zone { type filter hook output priority -300; policy accept; }\n"
"add rule inet dotproxy output meta skuid 15353 counter return\n"
"add rule inet dotproxy output meta skuid 1001 counter return\n"
"add rule inet dotproxy output meta skgid 2002 counter return\n"
"add rule inet dotproxy output ip daddr 198.51.100.0/24 counter return\n"
"add rule inet dotproxy output ip6 daddr 2001:db8::/32 counter return\n"
"add rule inet dotproxy output meta nfproto ipv4 udp dport 53 counter redirect to :15353\n"
"add rule inet dotproxy output meta nfproto ipv4 tcp dport 53 counter redirect to :15353\n"
"add rule inet dotproxy ct_zone udp sport 15353 counter ct zone set 2\n"
"add rule inet dotproxy ct_zone meta skuid 15353 counter return\n"
"add rule inet dotproxy ct_zone meta skuid 1001 counter return\n"
"add rule inet dotproxy ct_zone meta skgid 2002 counter return\n"
"add rule inet dotproxy ct_zone ip daddr 198.51.100.0/24 counter return\n"
"add rule inet dotproxy ct_zone ip6 daddr 2001:db8::/32 counter return\n"
"add rule inet dotproxy ct_zone meta nfproto ipv4 udp dport 53 counter meta mark set 0xd07dfe00\n"
"add rule inet dotproxy ct_zone ip daddr 192.0.2.2/32 udp dport 53 counter meta mark set 0xd07dfe01\n"
"add rule inet dotproxy ct_zone ip daddr 192.0.2.3/32 udp dport 53 counter meta mark set 0xd07dfe02\n"
"add rule inet dotproxy ct_zone meta nfproto ipv4 udp dport 53 counter ct zone set 2\n";

static void
test_text(void)
{
	struct rules_spec s;
	char text[8192], small[64];

	spec_default(&s);
	s.ipv6 = false;
	s.exclude_uid[s.nexclude_uid++] = 1001;
	s.exclude_gid[s.nexclude_gid++] = 2002;
	s.exclude_cidr[0].family = AF_INET;
	inet_pton(AF_INET, "198.51.100.0", s.exclude_cidr[0].addr);
	s.exclude_cidr[0].prefix = 24;
	s.exclude_cidr[1].family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::", s.exclude_cidr[1].addr);
	s.exclude_cidr[1].prefix = 32;
	s.nexclude_cidr = 2;
	is(rules_ns_add(&s, "192.0.2.2"), 0, "nameserver 192.0.2.2");
	is(rules_ns_add(&s, "192.0.2.3"), 0, "nameserver 192.0.2.3");
	is(rules_text(&s, text, sizeof(text)), 0, "dry-run text renders");
	ok(strcmp(text, want_text) == 0, "dry-run text is exact");
	if (strcmp(text, want_text) != 0)
		printf("# got:\n%s", text);
	is(rules_text(&s, small, sizeof(small)), -ENOBUFS,
	    "text: a small buffer is -ENOBUFS, not truncation");
}

static void
test_check(void)
{
	struct nftnl_rule_list_iter *it;
	struct nftnl_rule *r;
	struct rules_spec s, other;
	struct parsed p;
	char why[512];
	size_t i;

	spec_default(&s);
	s.exclude_uid[s.nexclude_uid++] = 1001;
	is(rules_batch_install(&s, 1, buf, sizeof(buf), &batch), 0, "builds");
	parse_batch(buf, batch.len, &p);
	ok(rules_check(&s, 0, p.chains, p.rules, why, sizeof(why)),
	    "check: the batch matches its own spec (%s)", why);
	other = s;
	other.proxy_port = 5300;
	ok(!rules_check(&other, 0, p.chains, p.rules, why, sizeof(why)) &&
	    strstr(why, "redirect to :5300") != NULL,
	    "check: another port differs: %s", why);
	other = s;
	other.nexclude_uid = 0;
	ok(!rules_check(&other, 0, p.chains, p.rules, why, sizeof(why)),
	    "check: a missing exclusion differs: %s", why);
	other = s;
	other.ipv6 = false;
	ok(!rules_check(&other, 0, p.chains, p.rules, why, sizeof(why)) &&
	    strstr(why, "extra") != NULL,
	    "check: ipv6 off against on differs: %s", why);
	/* Counter values do not matter. */
	it = nftnl_rule_list_iter_create(p.rules);
	while ((r = nftnl_rule_list_iter_next(it)) != NULL)
		for (i = 0; expr_at(r, i) != NULL; i++)
			if (expr_is(expr_at(r, i), "counter"))
				nftnl_expr_set_u64(expr_at(r, i),
				    NFTNL_EXPR_CTR_PACKETS, 42);
	nftnl_rule_list_iter_destroy(it);
	ok(rules_check(&s, 0, p.chains, p.rules, why, sizeof(why)),
	    "check: counter values are ignored (%s)", why);
	/* Issue 15: a dormant table runs none of its rules. */
	ok(!rules_check(&s, NFT_TABLE_F_DORMANT, p.chains, p.rules, why,
	    sizeof(why)) && strcmp(why, "table inet dotproxy has flags "
	    "dormant 0x1; want none") == 0,
	    "check: flags dormant differ: %s", why);
	ok(!rules_check(&s, 0x2, p.chains, p.rules, why, sizeof(why)) &&
	    strstr(why, "owner 0x2") != NULL, "check: flags owner differ: %s",
	    why);
	ok(!rules_check(&s, 0x5, p.chains, p.rules, why, sizeof(why)) &&
	    strstr(why, "dormant,persist 0x5") != NULL,
	    "check: several flags are named: %s", why);
	ok(!rules_check(&s, 0x80, p.chains, p.rules, why, sizeof(why)) &&
	    strstr(why, "flags 0x80;") != NULL,
	    "check: an unknown flag differs too: %s", why);
	other = s;
	is(rules_ns_add(&other, "192.0.2.2"), 0, "a nameserver");
	ok(!rules_check(&other, 0, p.chains, p.rules, why, sizeof(why)),
	    "check: another nameserver list differs: %s", why);
	/* Remove the third rule. */
	it = nftnl_rule_list_iter_create(p.rules);
	nftnl_rule_list_iter_next(it);
	nftnl_rule_list_iter_next(it);
	r = nftnl_rule_list_iter_next(it);
	nftnl_rule_list_iter_destroy(it);
	nftnl_rule_list_del(r);
	nftnl_rule_free(r);
	ok(!rules_check(&s, 0, p.chains, p.rules, why, sizeof(why)) &&
	    strstr(why, "chain output rule 3") != NULL,
	    "check: a deleted rule is named: %s", why);
	parsed_free(&p);
}

static void
test_cleanup_and_limits(void)
{
	static uint8_t tiny[2 * RULES_MSG_SLACK + 64];
	struct rules_spec s;
	struct parsed p;
	size_t i;

	is(rules_batch_cleanup(7, buf, sizeof(buf), &batch), 0,
	    "cleanup batch builds");
	parse_batch(buf, batch.len, &p);
	is(p.n, 4, "cleanup: begin, add table, delete table, end");
	is(msg_type(p.msg[1]), NFT_MSG_NEWTABLE, "cleanup adds first");
	is(msg_type(p.msg[2]), NFT_MSG_DELTABLE, "then deletes");
	parsed_free(&p);

	spec_default(&s);
	for (i = 0; i < RULES_MAX_EXCLUDES; i++) {
		s.exclude_uid[i] = (uint32_t)(1000 + i);
		s.exclude_gid[i] = (uint32_t)(2000 + i);
		s.exclude_cidr[i].family = AF_INET6;
		s.exclude_cidr[i].addr[0] = 0x20;
		s.exclude_cidr[i].addr[1] = 0x01;
		s.exclude_cidr[i].addr[2] = 0x0d;
		s.exclude_cidr[i].addr[3] = 0xb8;
		s.exclude_cidr[i].addr[4] = (uint8_t)i;
		s.exclude_cidr[i].prefix = 127;
	}
	s.nexclude_uid = s.nexclude_gid = s.nexclude_cidr = RULES_MAX_EXCLUDES;
	is(rules_batch_install(&s, 1, buf, sizeof(buf), &batch), 0,
	    "the largest spec fits RULES_BATCH_CAP (%zu bytes)", batch.len);
	ok(batch.len < 200 * 1024, "and stays under a netlink send buffer");
	is(rules_batch_install(&s, 1, tiny, sizeof(tiny), &batch), -ENOBUFS,
	    "a small buffer is -ENOBUFS");
	is(rules_batch_install(&s, 1, tiny, RULES_MSG_SLACK, &batch), -ENOBUFS,
	    "a buffer below the slack is refused");
}

static void
test_nameservers(void)
{
	static const char conf[] =
	    "# kubelet\nsearch ns.svc.cluster.local\n"
	    "nameserver 192.0.2.2\n"
	    "nameserver\tnot-an-address\n"
	    "  nameserver 2001:db8::3%eth0\n"
	    "nameserver 192.0.2.8\r\n"
	    "nameserverx 192.0.2.7\n"
	    "nameserver 192.0.2.3\n"
	    "nameserver 192.0.2.4\n";
	struct rules_spec s;
	char a[INET6_ADDRSTRLEN];

	spec_default(&s);
	rules_ns_from_resolv(&s, conf, sizeof(conf) - 1);
	is(s.nns, 3, "resolv.conf: three nameservers kept (glibc's MAXNS)");
	ok(s.ns[0].family == AF_INET && strcmp(inet_ntop(AF_INET, s.ns[0].addr,
	    a, sizeof(a)), "192.0.2.2") == 0, "first: 192.0.2.2");
	ok(s.ns[1].family == AF_INET6 && strcmp(inet_ntop(AF_INET6,
	    s.ns[1].addr, a, sizeof(a)), "2001:db8::3") == 0,
	    "second: 2001:db8::3, scope id dropped, bad lines skipped (a CR "
	    "too, as the proxy skips it)");
	ok(s.ns[2].family == AF_INET && strcmp(inet_ntop(AF_INET, s.ns[2].addr,
	    a, sizeof(a)), "192.0.2.3") == 0, "third: 192.0.2.3");
	is(rules_mark_sum(&s), 0x62, "its digest (test_udp_mark.c: the same text, "
	    "the same digest from proxy/resolv.c)");
	is(rules_ns_add(&s, "192.0.2.5"), -ENOSPC, "a fourth: -ENOSPC");
	spec_default(&s);
	is(rules_ns_add(&s, "192.0.2.999"), -EINVAL, "a bad address: -EINVAL");
	is(s.nns, 0, "and nothing added");
	rules_ns_from_resolv(&s, "", 0);
	is(s.nns, 0, "an empty file: no nameserver");

	/* Pinned: tests/unit/proxy/test_udp_mark.c pins the same digests for
	 * udp_mark_sum, so init/ and proxy/ agree on the encoding. */
	is(rules_mark_sum(&s), 0xc5, "digest of no nameserver");
	rules_ns_from_resolv(&s, "nameserver 192.0.2.2\n", 21);
	is(rules_mark_sum(&s), 0x90, "digest of 192.0.2.2");
	rules_ns_from_resolv(&s, "nameserver 192.0.2.2\nnameserver 192.0.2.3\n"
	    "nameserver 2001:db8::3\n", 65);
	is(rules_mark_sum(&s), 0xf0, "digest of the CNI test's three");
	spec_default(&s);
	rules_ns_add(&s, "2001:db8:213::53");
	rules_ns_add(&s, "2001:db8:213::1");
	is(rules_mark_sum(&s), 0xed, "digest of the issue's two IPv6 servers");
	is(rules_mark(&s, 0), 0xd07ded00u, "mark of slot 0");
	is(rules_mark(&s, 2), 0xd07ded02u, "mark of slot 2");
}

/* The mark rules' value, or 0 for another rule. */
static uint32_t
mark_value(const struct nftnl_rule *r)
{
	const uint8_t *d;
	uint32_t len, m = 0;

	if (strcmp(rule_action(r), "mark") != 0)
		return 0;
	d = nftnl_expr_get(expr_at(r, expr_count(r) - 2), NFTNL_EXPR_IMM_DATA,
	    &len);
	if (d != NULL && len == 4)
		memcpy(&m, d, 4);
	return m;
}

static void
test_mark_rules(void)
{
	static const char want[] =
"add rule inet dotproxy ct_zone meta nfproto ipv4 udp dport 53 counter meta mark set 0xd07ded00\n"
"add rule inet dotproxy ct_zone meta nfproto ipv6 udp dport 53 counter meta mark set 0xd07ded00\n"
"add rule inet dotproxy ct_zone ip6 daddr 2001:db8:213::53/128 udp dport 53 counter meta mark set 0xd07ded01\n"
"add rule inet dotproxy ct_zone ip6 daddr 2001:db8:213::1/128 udp dport 53 counter meta mark set 0xd07ded02\n"
"add rule inet dotproxy ct_zone meta nfproto ipv4 udp dport 53 counter ct zone set 2\n";
	struct rules_spec s;
	struct parsed p;
	char text[8192], why[256];
	const struct nftnl_expr *e;
	const uint8_t *d;
	uint32_t len;
	size_t i, n = 0, at = 0;

	/* Issue 15's pod: nameservers fd00:213::53 and fd00:213::1. */
	spec_default(&s);
	rules_ns_add(&s, "2001:db8:213::53");
	rules_ns_add(&s, "2001:db8:213::1");
	is(rules_text(&s, text, sizeof(text)), 0, "text renders");
	ok(strstr(text, want) != NULL, "mark rules: slot 0 per family first, "
	    "then each IPv6 server by its whole address");
	if (strstr(text, want) == NULL)
		printf("# got:\n%s", text);
	is(rules_batch_install(&s, 1, buf, sizeof(buf), &batch), 0, "builds");
	parse_batch(buf, batch.len, &p);
	for (i = 0; i < p.nrule; i++) {
		if (mark_value(p.rule[i]) == 0)
			continue;
		n++;
		if (mark_value(p.rule[i]) != 0xd07ded01u)
			continue;
		at = i;
	}
	is(n, 4, "four mark rules");
	/* [nfproto, cmp, payload nh 24 16, cmp addr, l4proto, cmp, payload
	 * th 2 2, cmp, counter, immediate, meta] */
	e = expr_at(p.rule[at], 2);
	ok(has_nfproto(p.rule[at], NFPROTO_IPV6) && expr_is(e, "payload") &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET) == 24 &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN) == 16,
	    "slot 1 loads all 16 bytes of the ip6 daddr");
	d = nftnl_expr_get(expr_at(p.rule[at], 3), NFTNL_EXPR_CMP_DATA, &len);
	ok(d != NULL && len == 16 && d[0] == 0x20 && d[1] == 0x01 &&
	    d[4] == 0x02 && d[5] == 0x13 && d[15] == 0x53,
	    "and compares them with 2001:db8:213::53");
	ok(strcmp(rule_action(p.rule[at - 1]), "mark") == 0 &&
	    mark_value(p.rule[at - 1]) == 0xd07ded00u,
	    "after the slot-0 rule, which it overwrites");
	ok(rules_check(&s, 0, p.chains, p.rules, why, sizeof(why)),
	    "check: matches its own batch (%s)", why);
	parsed_free(&p);
}

int
main(void)
{
	test_table_sequence();
	test_chains();
	test_rules_order();
	test_ipv6_off();
	test_text();
	test_check();
	test_nameservers();
	test_mark_rules();
	test_cleanup_and_limits();
	return tap_done();
}
