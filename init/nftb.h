/*
 * What rules.c and nodelocal.c both need to put a ruleset into one
 * netlink batch (pure: builds messages in the caller's buffer, never
 * talks to the kernel): the batch itself, with every message recorded by
 * sequence number and nft command for error reports, the table messages,
 * the libnftnl expressions both use, and the bounded text appender of
 * their `nft -f` renderings. Each keeps its own plan and its own rules.
 */
#ifndef INIT_NFTB_H
#define INIT_NFTB_H

#include <stddef.h>
#include <stdint.h>

#include "init/rules.h"

struct mnl_nlmsg_batch;
struct nftnl_expr;
struct nftnl_rule;
struct nlmsghdr;

/* One batch under construction. */
struct nftb {
	struct mnl_nlmsg_batch	*b;	/* owned */
	struct rules_batch	*out;	/* borrowed: the caller's */
	uint32_t		 seq;	/* next sequence number */
};

/*
 * Starts a batch in buf (cap bytes, at least 2 * RULES_MSG_SLACK) with its
 * begin message, sequence numbers from seq, out emptied. 0, -ENOBUFS or
 * -ENOMEM; on failure nothing is left to stop.
 */
int		 nftb_start(struct nftb *, uint32_t seq, void *buf, size_t cap,
		    struct rules_batch *out);
/* The header of the next message (asking for an ACK), recorded in out
 * with what, the nft command it carries; NULL when out is full. */
struct nlmsghdr	*nftb_msg(struct nftb *, uint16_t type, uint16_t flags,
		    const char *what);
/* Closes the message nftb_msg started: 0 or -ENOBUFS. */
int		 nftb_next(struct nftb *);
/* add table inet table, delete it, and add it again: one transaction
 * replaces any earlier copy. 0, -ENOBUFS or -ENOMEM. */
int		 nftb_table_replace(struct nftb *, const char *table);
/* add table inet table, then delete it: no error when it is absent. */
int		 nftb_table_remove(struct nftb *, const char *table);
/* Ends the batch when rc is 0 (out->len and out->seq_next then set) and
 * stops it either way. Returns rc, or -ENOBUFS. */
int		 nftb_finish(struct nftb *, int rc);

/* Expressions; each returns 0 or -ENOMEM. */
int		 nftb_expr(struct nftnl_rule *, struct nftnl_expr *);
/* register 1 op data (op: NFT_CMP_*). */
int		 nftb_cmp(struct nftnl_rule *, uint32_t op, const void *data,
		    uint32_t len);
/* meta key == data. */
int		 nftb_meta_eq(struct nftnl_rule *, uint32_t key, const void *data,
		    uint32_t len);
/* len bytes at off of header base into register 1. */
int		 nftb_payload(struct nftnl_rule *, uint32_t base, uint32_t off,
		    uint32_t len);
/* register 1 &= mask (len bytes). */
int		 nftb_mask(struct nftnl_rule *, const void *mask, uint32_t len);
/* data into register 1. */
int		 nftb_imm(struct nftnl_rule *, const void *data, uint32_t len);
/* The verdict (NF_ACCEPT, NFT_RETURN, ...). */
int		 nftb_verdict(struct nftnl_rule *, int verdict);

/* Appends printf output to buf at *off; a sticky -ENOBUFS in *err when
 * it does not fit (nothing more is then appended). */
__attribute__((format(printf, 5, 6)))
void		 nftb_text(char *buf, size_t cap, size_t *off, int *err,
		    const char *fmt, ...);

#endif
