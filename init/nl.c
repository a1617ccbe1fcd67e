/*
 * Netlink talk of dotproxy-init (system layer of init/). Owns the libmnl
 * socket: sends one nf_tables batch, collects the ACK of every message and
 * ties each error to the command that caused it (by sequence number), and
 * dumps tables, chains and rules for --check. It builds no rules (rules.c
 * does) and prints nothing: main.c turns results into messages.
 */
#include "init/nl.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>

#define NL_TIMEOUT_MS	10000	/* the kernel answers in microseconds */
#define NL_RCVBUF	(64 * 1024)	/* one ACK or dump part per read */

struct nl {
	struct mnl_socket	*sock;		/* owned */
	uint32_t		 portid;	/* ours, for dump replies */
	uint32_t		 seq;		/* next sequence number */
	uint8_t			 rbuf[NL_RCVBUF];
};

struct nl *
nl_open(void)
{
	struct nl *nl;
	int saved;

	if ((nl = calloc(1, sizeof(*nl))) == NULL)
		return NULL;
	if ((nl->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC)) ==
	    NULL)
		goto fail;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) == -1)
		goto fail;
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	return nl;
fail:
	saved = errno;
	if (nl->sock != NULL)
		mnl_socket_close(nl->sock);
	free(nl);
	errno = saved;
	return NULL;
}

void
nl_close(struct nl *nl)
{
	if (nl == NULL)
		return;
	mnl_socket_close(nl->sock);
	free(nl);
}

uint32_t
nl_seq(const struct nl *nl)
{
	return nl->seq;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits for the next datagram until deadline and reads it into nl->rbuf.
 * Returns its length, or -errno (-ETIMEDOUT).
 */
static ssize_t
nl_recv(struct nl *nl, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	ssize_t n;
	int rc;

	pfd.fd = mnl_socket_get_fd(nl->sock);
	pfd.events = POLLIN;
	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&pfd, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1)
			return -errno;
		if (rc == 0)
			return -ETIMEDOUT;
		n = mnl_socket_recvfrom(nl->sock, nl->rbuf, sizeof(nl->rbuf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		return n;
	}
}

/*
 * Every message is ACKed in its own datagram, and each costs far more
 * receive buffer than its 36 bytes: make room for all of them, as nft does,
 * so a large batch that succeeded is not reported as ENOBUFS. Best effort:
 * FORCE needs CAP_NET_ADMIN, which the batch needs anyway.
 */
static void
nl_grow_rcvbuf(struct nl *nl, size_t nmsg)
{
	int fd = mnl_socket_get_fd(nl->sock), want;

	want = (int)(nmsg * 2048 + 65536);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want,
	    sizeof(want)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
}

/* Index of the batch message with sequence number seq, or -1. */
static ssize_t
msg_index(const struct rules_batch *b, uint32_t seq)
{
	uint32_t i;

	if (b->nmsg == 0)
		return -1;
	i = seq - b->msg[0].seq;
	if (i >= b->nmsg || b->msg[i].seq != seq)
		return -1;
	return (ssize_t)i;
}

int
nl_talk(struct nl *nl, const void *buf, const struct rules_batch *b,
    struct nl_result *res)
{
	bool acked[RULES_MAX_MSGS] = { false };
	const struct nlmsgerr *e;
	const struct nlmsghdr *nlh;
	size_t left = b->nmsg;
	int64_t deadline;
	ssize_t n, idx;
	int len;

	memset(res, 0, sizeof(*res));
	nl->seq = b->seq_next;
	nl_grow_rcvbuf(nl, b->nmsg);
	if (mnl_socket_sendto(nl->sock, buf, b->len) == -1) {
		res->err = -errno;
		return res->err;
	}
	deadline = now_ms() + NL_TIMEOUT_MS;
	while (left > 0) {
		if ((n = nl_recv(nl, deadline)) < 0) {
			if (res->err == 0)
				res->err = (int)n;
			return res->err;
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)nl->rbuf;
		    mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type != NLMSG_ERROR ||
			    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			idx = msg_index(b, nlh->nlmsg_seq);
			if (idx < 0) {
				/*
				 * An error on the batch begin message: the
				 * whole batch was refused before any command
				 * ran (no CAP_NET_ADMIN, no nf_tables).
				 */
				if (e->error == 0)
					continue;
				res->err = e->error;
				res->msg = NULL;
				res->nerr++;
				return res->err;
			}
			if (acked[idx])
				continue;
			acked[idx] = true;
			left--;
			if (e->error != 0) {
				res->nerr++;
				if (res->err == 0) {
					res->err = e->error;
					res->msg = &b->msg[idx];
				}
			}
		}
	}
	return res->err;
}

/* What a dump collects; ownership of parsed objects moves to the lists. */
struct dump {
	const char		*table;		/* borrowed */
	bool			*present;	/* borrowed */
	uint32_t		*flags;		/* borrowed: the table's */
	struct nftnl_chain_list	*chains;	/* borrowed */
	struct nftnl_rule_list	*rules;		/* borrowed */
};

static bool
is_ours(const struct dump *d, const char *table, uint32_t family)
{
	return table != NULL && strcmp(table, d->table) == 0 &&
	    family == NFPROTO_INET;
}

static int
table_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct dump *d = arg;
	struct nftnl_table *t;

	if ((t = nftnl_table_alloc()) == NULL)
		return MNL_CB_ERROR;
	if (nftnl_table_nlmsg_parse(nlh, t) == 0 &&
	    is_ours(d, nftnl_table_get_str(t, NFTNL_TABLE_NAME),
	    nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY))) {
		*d->present = true;
		*d->flags = nftnl_table_is_set(t, NFTNL_TABLE_FLAGS) ?
		    nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) : 0;
	}
	nftnl_table_free(t);
	return MNL_CB_OK;
}

static int
chain_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct dump *d = arg;
	struct nftnl_chain *c;

	if ((c = nftnl_chain_alloc()) == NULL)
		return MNL_CB_ERROR;
	if (nftnl_chain_nlmsg_parse(nlh, c) == 0 &&
	    is_ours(d, nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE),
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY))) {
		nftnl_chain_list_add_tail(c, d->chains);
		c = NULL;
	}
	if (c != NULL)
		nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int
rule_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct dump *d = arg;
	struct nftnl_rule *r;

	if ((r = nftnl_rule_alloc()) == NULL)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(nlh, r) == 0 &&
	    is_ours(d, nftnl_rule_get_str(r, NFTNL_RULE_TABLE),
	    nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY))) {
		nftnl_rule_list_add_tail(r, d->rules);
		r = NULL;
	}
	if (r != NULL)
		nftnl_rule_free(r);
	return MNL_CB_OK;
}

/* Sends one dump request of the given type and runs cb on every part. */
static int
nl_dump(struct nl *nl, uint16_t type, const char *table, mnl_cb_t cb,
    struct dump *d)
{
	char req[8192];	/* one small request */
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;
	uint32_t seq = nl->seq++;
	int64_t deadline;
	ssize_t n;
	int rc;

	nlh = nftnl_nlmsg_build_hdr(req, type, NFPROTO_INET, NLM_F_DUMP, seq);
	if (type == NFT_MSG_GETRULE) {
		/* Rule dumps can be narrowed to one table by the kernel. */
		if ((r = nftnl_rule_alloc()) == NULL)
			return -ENOMEM;
		if (nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table) != 0) {
			nftnl_rule_free(r);
			return -ENOMEM;
		}
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
	}
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) == -1)
		return -errno;
	deadline = now_ms() + NL_TIMEOUT_MS;
	for (;;) {
		if ((n = nl_recv(nl, deadline)) < 0)
			return (int)n;
		errno = 0;
		rc = mnl_cb_run(nl->rbuf, (size_t)n, seq, nl->portid, cb, d);
		if (rc == MNL_CB_STOP)
			return 0;
		if (rc == MNL_CB_ERROR)
			return errno != 0 ? -errno : -EIO;
	}
}

int
nl_read_table(struct nl *nl, const char *table, bool *present,
    uint32_t *flags, struct nftnl_chain_list *chains,
    struct nftnl_rule_list *rules)
{
	struct dump d = { table, present, flags, chains, rules };
	int rc;

	*present = false;
	*flags = 0;
	if ((rc = nl_dump(nl, NFT_MSG_GETTABLE, table, table_cb, &d)) != 0)
		return rc;
	if (!*present)
		return 0;
	if ((rc = nl_dump(nl, NFT_MSG_GETCHAIN, table, chain_cb, &d)) != 0)
		return rc;
	return nl_dump(nl, NFT_MSG_GETRULE, table, rule_cb, &d);
}

bool
nl_ipv6_enabled(void)
{
	FILE *f;
	int v = 1;

	/* /proc/sys/net and /proc/net show the namespace of the caller. */
	if ((f = fopen("/proc/sys/net/ipv6/conf/all/disable_ipv6", "re")) ==
	    NULL)
		return false;
	if (fscanf(f, "%d", &v) != 1)
		v = 1;
	fclose(f);
	return v == 0 && access("/proc/net/if_inet6", F_OK) == 0;
}

void
nl_read_nameservers(const char *path, struct rules_spec *spec)
{
	char text[8192];	/* the proxy reads as much (proxy/main.c) */
	size_t n = 0;
	FILE *f;

	if ((f = fopen(path, "re")) != NULL) {
		n = fread(text, 1, sizeof(text), f);
		fclose(f);
	}
	rules_ns_from_resolv(spec, text, n);
}
