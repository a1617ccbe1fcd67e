/*
 * Node-local mode of dotproxy-init (--node-local): the pure part. Parses
 * and checks the flags, plans table inet dotproxy-nodelocal, renders it as
 * `nft -f` text and as one libnftnl batch. No sockets, no globals: the
 * system side (links, addresses, the sysctl, sending the batch) is in
 * nodelocal_sys.c.
 */
#ifndef INIT_NODELOCAL_H
#define INIT_NODELOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "init/rules.h"

#define NODELOCAL_TABLE		"dotproxy-nodelocal"
#define NODELOCAL_IFNAME	"dotproxy0"
#define NODELOCAL_MAX_ADDRS	8
/* An empty chain whose presence says: install set lo's accept_local. */
#define NODELOCAL_MARKER	"set_lo_accept_local"
#define NODELOCAL_MAX_RULES	(NODELOCAL_MAX_ADDRS * 16 + 8)
#define NODELOCAL_TEXT_MAX	256

struct nodelocal_spec {
	char		 ifname[16];	/* IFNAMSIZ */
	struct rules_cidr addr[NODELOCAL_MAX_ADDRS];	/* hosts */
	size_t		 naddr;
	bool		 has_upstream;	/* kube-dns-upstream Service IP */
	struct rules_cidr upstream;
	bool		 marker;	/* add the NODELOCAL_MARKER chain */
};

/*
 * Parses "ADDR[,ADDR...]" into spec->addr (appending). Returns 0, or -1
 * with one line in why.
 */
int	nodelocal_parse_addrs(struct nodelocal_spec *spec, const char *list,
	    char *why, size_t cap);

/*
 * Checks a parsed spec on its own (no kernel state): host addresses that
 * can be assigned (not unspecified, loopback, multicast or broadcast), no
 * duplicates, an upstream that is none of the addresses, and one for
 * every family that has a link-local address. Returns 0, or -1 with one
 * line in why.
 */
int	nodelocal_check(const struct nodelocal_spec *spec, char *why,
	    size_t cap);

/* True for 169.254.0.0/16 and fe80::/10: addresses kube-proxy never serves. */
bool	nodelocal_is_linklocal(const struct rules_cidr *a);

/* The chains of table inet dotproxy-nodelocal. */
enum nodelocal_chain {
	NLC_PRE_RAW = 0,	/* filter prerouting -300 */
	NLC_OUT_RAW,		/* filter output -300 */
	NLC_POST_NAT,		/* nat postrouting 100 */
	NLC_POST_REPLY,		/* filter postrouting 200 */
	NLC_IN_REPLY,		/* filter input 200 */
	NLC_COUNT
};

enum nodelocal_action {
	NLA_NOTRACK_ACCEPT = 0,
	NLA_NOTRACK,
	NLA_SET_DADDR,		/* stateless: daddr := arg */
	NLA_SET_SADDR,		/* stateless: saddr := arg */
	NLA_TRACK,		/* ct zone set 0: track an untracked packet */
	NLA_MASQ,
};

struct nodelocal_rule {
	enum nodelocal_chain chain;
	int		 family;	/* AF_INET or AF_INET6 */
	bool		 iif_lo;	/* meta iif lo */
	const uint8_t	*saddr;		/* borrowed, or NULL */
	const uint8_t	*daddr;		/* borrowed, or NULL */
	uint8_t		 l4proto;	/* IPPROTO_UDP or IPPROTO_TCP */
	bool		 sport53;	/* th sport 53, else th dport 53 */
	bool		 socket_bound;	/* socket wildcard 0 */
	bool		 socket_any;	/* tcp flags & syn == 0 socket
					 * transparent 0: any socket, half-open
					 * and time-wait ones too */
	bool		 ct_dnat;	/* ct status dnat */
	bool		 ct_reply;	/* ct direction reply */
	enum nodelocal_action action;
	const uint8_t	*arg;		/* borrowed: address to set */
};

/* Plans every rule, in order. Returns 0 or -ENOBUFS. */
int	nodelocal_plan(const struct nodelocal_spec *spec,
	    struct nodelocal_rule *rules, size_t cap, size_t *n);

/* One rule as nft text. Returns 0 or -ENOBUFS. */
int	nodelocal_rule_text(const struct nodelocal_rule *r, char *buf,
	    size_t cap);

/* The whole install as `nft -f` text, NUL-terminated. 0 or -ENOBUFS. */
int	nodelocal_text(const struct nodelocal_spec *spec, char *buf,
	    size_t cap);

/*
 * Builds the install batch (add, delete, add table, chains, rules) into
 * buf, recording each message in out as rules_batch_install does, so
 * nl_talk can send it. Returns 0, -ENOBUFS or -ENOMEM.
 */
int	nodelocal_batch_install(const struct nodelocal_spec *spec,
	    uint32_t seq, void *buf, size_t cap, struct rules_batch *out);

/* The removal batch: add table, delete table (no error if absent). */
int	nodelocal_batch_remove(uint32_t seq, void *buf, size_t cap,
	    struct rules_batch *out);

/*
 * The command entry (nodelocal_sys.c): true when argv asks for node-local
 * mode, and its main, which returns the exit status.
 */
bool	nodelocal_wanted(int argc, char **argv);
int	nodelocal_main(int argc, char **argv);

#endif
