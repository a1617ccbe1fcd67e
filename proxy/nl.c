/*
 * Asynchronous netlink requests (see nl.h). System layer. Pending requests
 * sit in a ring indexed by sequence number: sequence numbers are handed out
 * in order, so the oldest pending request is at the tail and one timer for
 * the tail's deadline covers them all.
 */
#include "nl.h"

#include <sys/socket.h>
#include <linux/netlink.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

struct nl_pending {
	uint32_t	seq;
	bool		live;
	uint64_t	cookie;
	uint64_t	deadline_ms;
};

struct nl {
	struct loop		*loop;		/* borrowed */
	int			 fd;
	struct loop_io		 io;
	struct loop_timer	 timer;
	unsigned		 timeout_ms;
	nl_reply_fn		 cb;
	void			*arg;		/* borrowed: cb's */
	uint32_t		 head;		/* next sequence number */
	uint32_t		 tail;		/* oldest maybe pending */
	struct nl_pending	 ring[NL_MAX_PENDING];
	struct nl_stats		 stats;
	union {
		struct nlmsghdr	 align;
		uint8_t		 buf[NL_MSG_MAX];
	} rx;
};

static struct nl_pending *
slot(struct nl *n, uint32_t seq)
{
	return &n->ring[seq % NL_MAX_PENDING];
}

/* Moves the tail past finished requests and arms the timer for it. */
static void
advance(struct nl *n)
{
	while (n->tail != n->head && !slot(n, n->tail)->live)
		n->tail++;
	if (n->tail == n->head)
		loop_timer_stop(n->loop, &n->timer);
	else
		loop_timer_set(n->loop, &n->timer, slot(n, n->tail)->deadline_ms);
}

/* The pending request of seq, or NULL (late, duplicate or never sent). */
static struct nl_pending *
find(struct nl *n, uint32_t seq)
{
	struct nl_pending *p;

	if ((uint32_t)(seq - n->tail) >= (uint32_t)(n->head - n->tail))
		return NULL;
	p = slot(n, seq);
	return p->live && p->seq == seq ? p : NULL;
}

static void
finish(struct nl *n, struct nl_pending *p, int err, const uint8_t *msg,
    size_t len)
{
	uint64_t cookie = p->cookie;

	p->live = false;
	n->stats.pending--;
	advance(n);
	n->cb(n->arg, cookie, err, msg, len);
}

void
nl_input(struct nl *n, const uint8_t *buf, size_t len)
{
	struct nlmsghdr h;
	struct nl_pending *p;
	size_t off = 0, mlen;

	while (len - off >= sizeof(h)) {
		memcpy(&h, buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			break;		/* a broken datagram: drop the rest */
		mlen = h.nlmsg_len;
		if ((p = find(n, h.nlmsg_seq)) == NULL)
			n->stats.stale++;
		else {
			n->stats.replies++;
			finish(n, p, 0, buf + off, mlen);
		}
		off += NLMSG_ALIGN(mlen);
		if (off > len)
			break;
	}
}

static void
on_io(struct loop_io *io, uint32_t ev)
{
	struct nl *n = io->arg;
	ssize_t r;
	int k;

	(void)ev;
	for (k = 0; k < 64; k++) {
		r = recv(n->fd, n->rx.buf, sizeof(n->rx.buf), MSG_DONTWAIT);
		if (r == -1) {
			if (errno == ENOBUFS) {
				/* Replies were lost; their requests time out. */
				n->stats.overruns++;
				continue;
			}
			return;		/* EAGAIN, or nothing to do about it */
		}
		nl_input(n, n->rx.buf, (size_t)r);
	}
}

static void
on_timer(struct loop_timer *t)
{
	struct nl *n = t->arg;
	uint64_t now = loop_now(n->loop);
	struct nl_pending *p;

	while (n->tail != n->head) {
		p = slot(n, n->tail);
		if (p->live && p->deadline_ms > now)
			break;
		if (p->live) {
			n->stats.timeouts++;
			p->live = false;
			n->stats.pending--;
			n->tail++;
			n->cb(n->arg, p->cookie, -ETIMEDOUT, NULL, 0);
			continue;
		}
		n->tail++;
	}
	advance(n);
}

int
nl_request(struct nl *n, uint8_t *req, size_t len, uint64_t cookie)
{
	struct sockaddr_nl sa;
	struct nlmsghdr h;
	struct nl_pending *p;

	if (len < sizeof(h))
		return -EINVAL;
	if (n->head - n->tail >= NL_MAX_PENDING) {
		n->stats.busy++;
		return -EBUSY;
	}
	memcpy(&h, req, sizeof(h));
	h.nlmsg_seq = n->head;
	memcpy(req, &h, sizeof(h));
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (n->fd != -1 && sendto(n->fd, req, len, 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1) {
		n->stats.send_errors++;
		return -errno;
	}
	p = slot(n, n->head);
	p->seq = n->head++;
	p->live = true;
	p->cookie = cookie;
	p->deadline_ms = loop_now(n->loop) + n->timeout_ms;
	n->stats.pending++;
	n->stats.requests++;
	if (!loop_timer_armed(&n->timer))
		loop_timer_set(n->loop, &n->timer, p->deadline_ms);
	return 0;
}

struct nl *
nl_open(struct loop *loop, int proto, unsigned timeout_ms, nl_reply_fn cb,
    void *arg)
{
	struct sockaddr_nl sa;
	int rcvbuf = 1 << 20, saved, r;
	struct nl *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->loop = loop;
	n->timeout_ms = timeout_ms;
	n->cb = cb;
	n->arg = arg;
	n->io.cb = on_io;
	n->io.arg = n;
	n->timer.cb = on_timer;
	n->timer.arg = n;
	/* Any start will do: only equality with the reply's matters. */
	n->head = n->tail = (uint32_t)time(NULL);
	n->fd = -1;
	if (proto < 0)
		return n;	/* tests: no socket, replies come by nl_input */
	n->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (n->fd == -1)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	(void)setsockopt(n->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto fail;
	if ((r = loop_io_start(loop, &n->io, n->fd, LOOP_READ)) < 0) {
		errno = -r;
		goto fail;
	}
	return n;
fail:
	saved = errno;
	if (n->fd != -1)
		close(n->fd);
	free(n);
	errno = saved;
	return NULL;
}

void
nl_close(struct nl *n)
{
	if (n == NULL)
		return;
	loop_io_stop(n->loop, &n->io);
	loop_timer_stop(n->loop, &n->timer);
	if (n->fd != -1)
		close(n->fd);
	free(n);
}

size_t
nl_pending(const struct nl *n)
{
	return (size_t)n->stats.pending;
}

const struct nl_stats *
nl_stats(const struct nl *n)
{
	return &n->stats;
}
