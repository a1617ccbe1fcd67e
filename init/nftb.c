/* Netlink batches and expressions shared by the rule builders (nftb.h). */
#include "init/nftb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>

int
nftb_start(struct nftb *bt, uint32_t seq, void *buf, size_t cap,
    struct rules_batch *out)
{
	bt->b = NULL;
	if (cap < 2 * RULES_MSG_SLACK)
		return -ENOBUFS;
	memset(out, 0, sizeof(*out));
	bt->out = out;
	bt->seq = seq;
	if ((bt->b = mnl_nlmsg_batch_start(buf, cap - RULES_MSG_SLACK)) ==
	    NULL)
		return -ENOMEM;
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), bt->seq++);
	if (!mnl_nlmsg_batch_next(bt->b)) {
		mnl_nlmsg_batch_stop(bt->b);
		bt->b = NULL;
		return -ENOBUFS;
	}
	return 0;
}

struct nlmsghdr *
nftb_msg(struct nftb *bt, uint16_t type, uint16_t flags, const char *what)
{
	struct rules_msg *m;
	size_t n;

	if (bt->out->nmsg >= RULES_MAX_MSGS)
		return NULL;
	m = &bt->out->msg[bt->out->nmsg++];
	m->seq = bt->seq;
	/* Only for error messages: a long command may be cut. */
	n = strlen(what);
	if (n >= sizeof(m->what))
		n = sizeof(m->what) - 1;
	memcpy(m->what, what, n);
	m->what[n] = '\0';
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type,
	    NFPROTO_INET, flags | NLM_F_ACK, bt->seq++);
}

int
nftb_next(struct nftb *bt)
{
	return mnl_nlmsg_batch_next(bt->b) ? 0 : -ENOBUFS;
}

static int
table_msg(struct nftb *bt, const char *table, uint16_t type, uint16_t flags,
    const char *verb)
{
	char what[RULES_WHAT_MAX];
	struct nftnl_table *t;
	struct nlmsghdr *nlh;

	if (snprintf(what, sizeof(what), "%s table inet %s", verb, table) >=
	    (int)sizeof(what))
		return -ENOBUFS;
	if ((t = nftnl_table_alloc()) == NULL)
		return -ENOMEM;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if (nftnl_table_set_str(t, NFTNL_TABLE_NAME, table) != 0) {
		nftnl_table_free(t);
		return -ENOMEM;
	}
	if ((nlh = nftb_msg(bt, type, flags, what)) == NULL) {
		nftnl_table_free(t);
		return -ENOBUFS;
	}
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return nftb_next(bt);
}

int
nftb_table_remove(struct nftb *bt, const char *table)
{
	int rc;

	if ((rc = table_msg(bt, table, NFT_MSG_NEWTABLE, NLM_F_CREATE,
	    "add")) != 0)
		return rc;
	return table_msg(bt, table, NFT_MSG_DELTABLE, 0, "delete");
}

int
nftb_table_replace(struct nftb *bt, const char *table)
{
	int rc;

	if ((rc = nftb_table_remove(bt, table)) != 0)
		return rc;
	return table_msg(bt, table, NFT_MSG_NEWTABLE, NLM_F_CREATE, "add");
}

int
nftb_finish(struct nftb *bt, int rc)
{
	if (rc == 0) {
		nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->seq++);
		if (!mnl_nlmsg_batch_next(bt->b))
			rc = -ENOBUFS;
	}
	if (rc == 0) {
		bt->out->len = mnl_nlmsg_batch_size(bt->b);
		bt->out->seq_next = bt->seq;
	}
	mnl_nlmsg_batch_stop(bt->b);
	bt->b = NULL;
	return rc;
}

int
nftb_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (e == NULL)
		return -ENOMEM;
	nftnl_rule_add_expr(r, e);
	return 0;
}

int
nftb_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e;

	if ((e = nftnl_expr_alloc("cmp")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	return nftb_expr(r, e);
}

int
nftb_meta_eq(struct nftnl_rule *r, uint32_t key, const void *data,
    uint32_t len)
{
	struct nftnl_expr *e;

	if ((e = nftnl_expr_alloc("meta")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	if (nftb_expr(r, e) != 0)
		return -ENOMEM;
	return nftb_cmp(r, NFT_CMP_EQ, data, len);
}

int
nftb_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e;

	if ((e = nftnl_expr_alloc("payload")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	return nftb_expr(r, e);
}

int
nftb_mask(struct nftnl_rule *r, const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e;

	if (len > sizeof(zero))
		return -EINVAL;
	if ((e = nftnl_expr_alloc("bitwise")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	return nftb_expr(r, e);
}

int
nftb_imm(struct nftnl_rule *r, const void *data, uint32_t len)
{
	struct nftnl_expr *e;

	if ((e = nftnl_expr_alloc("immediate")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	return nftb_expr(r, e);
}

int
nftb_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e;

	if ((e = nftnl_expr_alloc("immediate")) == NULL)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	return nftb_expr(r, e);
}

void
nftb_text(char *buf, size_t cap, size_t *off, int *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*err != 0)
		return;
	if (*off >= cap) {
		*err = -ENOBUFS;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, cap - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *off)
		*err = -ENOBUFS;
	else
		*off += (size_t)n;
}
