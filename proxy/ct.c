/*
 * Conntrack lookups over netlink (see ct.h). System layer; the only file
 * that speaks ctnetlink to the kernel. Requests and replies are built and
 * parsed by nl_parse.c; nl.c carries them.
 */
#include "ct.h"

#include <linux/netlink.h>

#include <errno.h>
#include <stdlib.h>

#include "nl.h"
#include "nl_parse.h"

struct ct {
	struct nl	*nl;		/* owned */
	ct_done_fn	 done;
	void		*arg;		/* borrowed: done's */
	union {
		struct nlmsghdr	align;
		uint8_t		buf[512];
	} req;
};

static void
on_reply(void *arg, uint64_t cookie, int err, const uint8_t *msg, size_t len)
{
	struct ct *c = arg;
	struct sockaddr_storage dst;
	socklen_t dstlen = 0;

	if (err == 0)
		err = ct_parse_reply(msg, len, &dst, &dstlen);
	c->done(c->arg, cookie, err, err == 0 ? &dst : NULL, dstlen);
}

struct ct *
ct_open(struct loop *loop, ct_done_fn done, void *arg)
{
	struct ct *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->done = done;
	c->arg = arg;
	if ((c->nl = nl_open(loop, NETLINK_NETFILTER, CT_TIMEOUT_MS, on_reply,
	    c)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
ct_close(struct ct *c)
{
	if (c == NULL)
		return;
	nl_close(c->nl);
	free(c);
}

int
ct_lookup(struct ct *c, const struct sockaddr *local,
    const struct sockaddr *peer, uint16_t zone, uint64_t cookie)
{
	size_t len;
	int r;

	if ((r = ct_build_request(c->req.buf, sizeof(c->req.buf), local, peer,
	    zone, &len)) < 0)
		return r;
	return nl_request(c->nl, c->req.buf, len, cookie);
}

size_t
ct_pending(const struct ct *c)
{
	return nl_pending(c->nl);
}

const struct nl_stats *
ct_stats(const struct ct *c)
{
	return nl_stats(c->nl);
}

static const struct stat_desc ct_rows[] = { NL_STAT_ROWS("conntrack") };
const struct stat_table ct_stat_table = STAT_TABLE(ct_rows);
