/*
 * sock_diag lookups (see nl_diag.h). System layer. Requests and replies
 * are built and parsed by nl_parse.c; nl.c carries them.
 */
#include "nl_diag.h"

#include <linux/netlink.h>

#include <errno.h>
#include <stdlib.h>

#include "nl.h"
#include "nl_parse.h"

struct diag {
	struct nl	*nl;		/* owned */
	diag_done_fn	 done;
	void		*arg;		/* borrowed: done's */
	union {
		struct nlmsghdr	align;
		uint8_t		buf[256];
	} req;
};

static void
on_reply(void *arg, uint64_t cookie, int err, const uint8_t *msg, size_t len)
{
	struct diag *d = arg;
	unsigned uid = 0;

	if (err == 0)
		err = diag_parse_reply(msg, len, &uid);
	d->done(d->arg, cookie, err, uid);
}

struct diag *
diag_open(struct loop *loop, diag_done_fn done, void *arg)
{
	struct diag *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->done = done;
	d->arg = arg;
	if ((d->nl = nl_open(loop, NETLINK_SOCK_DIAG, DIAG_TIMEOUT_MS,
	    on_reply, d)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void
diag_close(struct diag *d)
{
	if (d == NULL)
		return;
	nl_close(d->nl);
	free(d);
}

int
diag_lookup(struct diag *d, const struct sockaddr *local,
    const struct sockaddr *peer, uint64_t cookie)
{
	size_t len;
	int r;

	if ((r = diag_build_request(d->req.buf, sizeof(d->req.buf), local,
	    peer, &len)) < 0)
		return r;
	return nl_request(d->nl, d->req.buf, len, cookie);
}

size_t
diag_pending(const struct diag *d)
{
	return nl_pending(d->nl);
}

const struct nl_stats *
diag_stats(const struct diag *d)
{
	return nl_stats(d->nl);
}

static const struct stat_desc diag_rows[] = { NL_STAT_ROWS("sock_diag") };
const struct stat_table diag_stat_table = STAT_TABLE(diag_rows);
