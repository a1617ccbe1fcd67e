/*
 * The pure rule builder of dotproxy-init: a rule spec (what the flags ask
 * for) becomes an ordered plan of rules, libnftnl objects, one netlink
 * batch in a caller buffer, the equivalent `nft -f` text, and a comparison
 * against what the kernel reports. No sockets, no globals.
 */
#ifndef INIT_RULES_H
#define INIT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nftnl_chain;
struct nftnl_chain_list;
struct nftnl_rule;
struct nftnl_rule_list;

#define RULES_TABLE		"dotproxy"	/* table inet dotproxy */
#define RULES_CHAIN_NAT		"output"	/* nat hook output */
#define RULES_CHAIN_ZONE	"ct_zone"	/* filter hook output, raw prio */
#define RULES_PRIO_NAT		(-110)	/* before Docker/kube-proxy at -100 */
#define RULES_PRIO_ZONE		(-300)	/* raw: before conntrack at -200 */
/*
 * The conntrack zone of every UDP flow that the nat chain redirects (and of
 * the proxy's answers on it). The proxy's conntrack lookup of a query's
 * original destination must ask in this zone (CTA_ZONE).
 */
#define RULES_CT_ZONE		2
#define RULES_DNS_PORT		53
/*
 * The packet mark of a captured udp/53 packet says where it was going, for
 * a proxy without any capability (SO_RCVMARK). Layout, argued in rules.c:
 *   bits 31-16  RULES_MARK_TAG, so that no other component's mark is ever
 *               read as a destination;
 *   bits 15-8   the digest of the nameserver list the rules were built
 *               from (rules_mark_sum), so that a proxy whose resolv.conf
 *               lists other servers never maps a slot to the wrong one;
 *   bits 7-0    the slot: 0 = captured, but the destination is none of
 *               the listed nameservers; i + 1 = nameserver i of the list.
 * proxy/udp_mark.c decodes the same layout; the two must agree.
 */
#define RULES_MARK_TAG		0xd07d0000u
#define RULES_MARK_TAG_MASK	0xffff0000u
#define RULES_MARK_SUM_SHIFT	8
#define RULES_MAX_NS		3	/* resolv.conf servers glibc uses */

#define RULES_MAX_EXCLUDES	32	/* per kind: uid, gid, cidr */
/* Per chain: reply zone rule, proxy uid, excludes, 4 redirects (or 2
 * marks and 2 zones); plus one mark rule per listed nameserver. */
#define RULES_MAX_RULES		(2 * (2 + 3 * RULES_MAX_EXCLUDES + 4) + \
				    RULES_MAX_NS)
#define RULES_MAX_MSGS		(3 + 2 + RULES_MAX_RULES)
#define RULES_TEXT_MAX		128	/* one rule as nft text */
#define RULES_WHAT_MAX		192	/* one command as nft text */
#define RULES_MSG_SLACK		4096	/* room past the batch limit */
#define RULES_BATCH_CAP		(128 * 1024)	/* enough for any spec */

struct rules_cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network order, host bits zero */
	unsigned int	prefix;		/* 0..32 or 0..128 */
};

/* One nameserver of the pod (an address, no port). */
struct rules_ns {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network order */
};

/* What the flags ask for; filled by main, read-only here. */
struct rules_spec {
	uint16_t	proxy_port;	/* redirect target, host order */
	uint32_t	proxy_uid;	/* its traffic is never captured */
	uint32_t	exclude_uid[RULES_MAX_EXCLUDES];
	size_t		nexclude_uid;
	uint32_t	exclude_gid[RULES_MAX_EXCLUDES];
	size_t		nexclude_gid;
	struct rules_cidr exclude_cidr[RULES_MAX_EXCLUDES];
	size_t		nexclude_cidr;
	bool		ipv6;		/* also redirect IPv6 (auto resolved) */
	struct rules_ns	ns[RULES_MAX_NS];	/* the pod's nameservers, in
						 * resolv.conf order */
	size_t		nns;
};

struct rules_chain {
	const char	*name;		/* borrowed: static string */
	const char	*type;		/* "nat" or "filter" */
	uint32_t	 hooknum;	/* NF_INET_LOCAL_OUT */
	int32_t		 prio;
};

/* The chains of our table, in creation order. */
#define RULES_NCHAINS		2
extern const struct rules_chain rules_chains[RULES_NCHAINS];

enum rules_action {
	RULES_RETURN = 0,	/* leave the chain: not captured */
	RULES_ZONE,		/* ct zone set <arg> */
	RULES_REDIRECT,		/* redirect to :<arg> */
	RULES_MARK,		/* meta mark set <mark> */
};

/* One planned rule; all matches present are ANDed, counter always added. */
struct rules_rule {
	const char	*chain;		/* borrowed: rules_chains[i].name */
	bool		 has_uid;	/* meta skuid == uid */
	uint32_t	 uid;
	bool		 has_gid;	/* meta skgid == gid */
	uint32_t	 gid;
	uint8_t		 nfproto;	/* 0 any, NFPROTO_IPV4, NFPROTO_IPV6 */
	bool		 has_daddr;	/* ip/ip6 daddr in cidr */
	struct rules_cidr daddr;
	uint8_t		 l4proto;	/* 0 any, IPPROTO_UDP, IPPROTO_TCP */
	uint16_t	 sport;		/* 0 any, else with l4proto */
	uint16_t	 dport;		/* 0 any, else with l4proto */
	enum rules_action action;
	uint16_t	 arg;		/* zone id or redirect port */
	uint32_t	 mark;		/* RULES_MARK: the value */
};

/* One message of a batch that asked for an ACK, for error reports. */
struct rules_msg {
	uint32_t	seq;
	char		what[RULES_WHAT_MAX];	/* the nft command it carries */
};

struct rules_batch {
	struct rules_msg msg[RULES_MAX_MSGS];	/* in batch order */
	size_t		nmsg;
	size_t		len;		/* bytes of the batch in the buffer */
	uint32_t	seq_next;	/* first sequence number not used */
};

/*
 * Parses "ADDR[/PREFIX]" (IPv4 or IPv6; no prefix means a host) into c.
 * Returns 0, -EINVAL (not an address), -ERANGE (bad prefix length) or
 * -EDOM (host bits set after the prefix).
 */
int	rules_cidr_parse(const char *s, struct rules_cidr *c);

/*
 * Adds the nameserver s (an IPv4 or IPv6 address; an IPv6 scope id
 * "%eth0" is dropped, as the proxy does) to spec's list. Returns 0,
 * -EINVAL (not an address) or -ENOSPC (RULES_MAX_NS already listed).
 */
int	rules_ns_add(struct rules_spec *spec, const char *s);

/*
 * Fills spec's nameserver list from resolv.conf text (need not be
 * NUL-terminated): the first RULES_MAX_NS "nameserver" lines whose address
 * parses, in order, exactly the list proxy/resolv.c keeps. Never fails.
 */
void	rules_ns_from_resolv(struct rules_spec *spec, const char *text,
	    size_t len);

/*
 * The 8-bit digest of spec's nameserver list: FNV-1a (32 bits) over, per
 * server, one byte 4 or 6 and its 4 or 16 address bytes, folded by XOR of
 * its four bytes. proxy/udp_mark.c computes the same from resolv.conf.
 */
uint8_t	rules_mark_sum(const struct rules_spec *spec);

/* The mark of a packet to nameserver slot - 1 (slot 0: none of them). */
uint32_t rules_mark(const struct rules_spec *spec, unsigned slot);

/*
 * Fills rules[0..*n) with the ordered rules of both chains for spec (cap
 * entries available). Returns 0, or -ENOBUFS when cap is too small.
 */
int	rules_plan(const struct rules_spec *spec, struct rules_rule *rules,
	    size_t cap, size_t *n);

/* Writes one rule as nft text ("meta skuid 1 counter return"). */
int	rules_rule_text(const struct rules_rule *r, char *buf, size_t cap);

/*
 * Returns a new libnftnl rule for table inet dotproxy, owned by the caller
 * (nftnl_rule_free), or NULL with errno set.
 */
struct nftnl_rule *rules_rule_nftnl(const struct rules_rule *r);

/* Returns a new libnftnl base chain, owned by the caller, or NULL. */
struct nftnl_chain *rules_chain_nftnl(const struct rules_chain *c);

/*
 * Builds the install batch into buf (cap bytes, at least 2 *
 * RULES_MSG_SLACK): begin, add table, delete table, add table, the chains,
 * the rules, end. Every message but begin/end asks for an ACK and is
 * recorded in out with its sequence number (from seq upwards). Returns 0,
 * -ENOBUFS when buf is too small, or -ENOMEM.
 */
int	rules_batch_install(const struct rules_spec *spec, uint32_t seq,
	    void *buf, size_t cap, struct rules_batch *out);

/* Like rules_batch_install, for: add table, delete table (no error if absent). */
int	rules_batch_cleanup(uint32_t seq, void *buf, size_t cap,
	    struct rules_batch *out);

/*
 * Writes the install batch as `nft -f` text, NUL-terminated. Returns 0 or
 * -ENOBUFS.
 */
int	rules_text(const struct rules_spec *spec, char *buf, size_t cap);

/*
 * Writes the expressions of r in a canonical form for comparison: the
 * libnftnl text of each, with counter values left out. Returns 0 or
 * -ENOBUFS.
 */
int	rules_rule_digest(const struct nftnl_rule *r, char *buf, size_t cap);

/*
 * Compares what the kernel reports for table inet dotproxy (its flags, its
 * chains and rules in kernel order) with what spec asks for, ignoring
 * handles and counter values. Our table has no flags: any (dormant, whose
 * rules do nothing; owner; persist) is a difference. True when equal;
 * otherwise false with one line in why saying what differs.
 */
bool	rules_check(const struct rules_spec *spec, uint32_t table_flags,
	    const struct nftnl_chain_list *chains,
	    const struct nftnl_rule_list *rules, char *why, size_t cap);

#endif
