/*
 * Netlink talk of dotproxy-init: one NETLINK_NETFILTER socket through
 * libmnl, sending a batch built by rules.c and reading every ACK back, and
 * dumping our table's chains and rules for --check.
 */
#ifndef INIT_NL_H
#define INIT_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "init/rules.h"

struct nftnl_chain_list;
struct nftnl_rule_list;

struct nl;

/* The outcome of one batch. */
struct nl_result {
	int		 err;	/* 0, or -errno of the first failure */
	const struct rules_msg *msg;	/* borrowed from the batch: the
					 * failing command, or NULL when the
					 * batch as a whole was refused */
	size_t		 nerr;	/* messages that failed */
};

/*
 * Opens a netfilter netlink socket. Returns it (free with nl_close), or
 * NULL with errno set (EPROTONOSUPPORT: no nfnetlink in this kernel).
 */
struct nl	*nl_open(void);
void		 nl_close(struct nl *nl);

/* A sequence number to start the next batch with. */
uint32_t	 nl_seq(const struct nl *nl);

/*
 * Sends the batch in buf (b->len bytes, messages described by b) and
 * reads the ACK of every message. Returns 0 when every message succeeded,
 * else the first failure as -errno, with res saying which command failed.
 * Gives up with -ETIMEDOUT when the kernel stays silent for 10 s.
 */
int		 nl_talk(struct nl *nl, const void *buf,
		    const struct rules_batch *b, struct nl_result *res);

/*
 * Reads back table inet <table>: *present says whether it exists, and
 * when it does *flags has its flags (NFT_TABLE_F_DORMANT ...: what
 * rules_check compares) and its chains and rules (in kernel order) are
 * appended to the caller's lists, which own them afterwards. Returns 0 or
 * -errno.
 */
int		 nl_read_table(struct nl *nl, const char *table, bool *present,
		    uint32_t *flags, struct nftnl_chain_list *chains,
		    struct nftnl_rule_list *rules);

/*
 * True when the current network namespace has IPv6 (not disabled, and
 * /proc/net/if_inet6 present): what --ipv6 auto and ipv6 "auto" mean.
 */
bool		 nl_ipv6_enabled(void);

#define NL_RESOLV_CONF	"/etc/resolv.conf"

/*
 * Reads the nameservers of the resolv.conf at path into spec (see
 * rules_ns_from_resolv). A missing or unreadable file leaves the list
 * empty: every captured packet is then marked "no listed nameserver".
 */
void		 nl_read_nameservers(const char *path, struct rules_spec *spec);

#endif
