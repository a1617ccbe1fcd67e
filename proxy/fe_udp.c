/*
 * UDP front end (see fe_udp.h). Edge layer. Owns the UDP listener sockets,
 * one batch of receive buffers for all of them (per-loop scratch: nothing
 * read escapes a callback; the query layer copies what it keeps) and one
 * batch of outgoing answers per listener, flushed before the loop sleeps.
 * Each listener asks for the packet mark (SO_RCVMARK, no capability
 * needed): the redirect rules name the query's original nameserver there,
 * and udp_mark.c turns it into origin.orig, which the query layer uses for
 * a local-zone query. Without a usable mark (none, another component's,
 * one for a destination that is no nameserver of resolv.conf, or one made
 * for another resolv.conf), origin.orig stays empty and the query layer
 * falls back to conntrack, then to resolv.conf's first nameserver.
 */
#include "fe_udp.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "resolv.h"
#include "sock.h"
#include "udp_mark.h"

#ifndef SO_RCVMARK
#define SO_RCVMARK	75	/* Linux 5.19 */
#endif

/* Room for one SO_MARK control message per datagram. */
union fe_udp_ctl {
	struct cmsghdr	hdr;
	uint8_t		buf[CMSG_SPACE(sizeof(uint32_t))];
};

#define FE_UDP_MAX	8	/* listeners */
#define FE_UDP_BATCH	32	/* datagrams per recvmmsg/sendmmsg */
#define FE_UDP_BUF	4096	/* largest query read / answer sent */

struct fe_udp_out {
	struct sockaddr_storage	peer;
	socklen_t		peer_len;
	size_t			len;
	uint8_t			data[FE_UDP_BUF];
};

struct fe_udp_listener {
	struct fe_udp		*fe;		/* borrowed: owner */
	unsigned		 idx;
	int			 fd;
	struct loop_io		 io;
	struct loop_hook	 flush;
	struct fe_udp_out	*out;		/* owned: FE_UDP_BATCH answers */
	struct sockaddr_storage	 addr;		/* where it listens */
	socklen_t		 addr_len;
	unsigned		 nout;
	bool			 marks;		/* SO_RCVMARK accepted */
	unsigned		 nlast;		/* entries the last read filled */
	struct mmsghdr		 rmsgs[FE_UDP_BATCH];	/* set up once */
	struct iovec		 riov[FE_UDP_BATCH];
};

struct fe_udp {
	struct loop		*loop;		/* borrowed */
	struct query_table	*qt;		/* borrowed */
	struct fe_udp_listener	 ls[FE_UDP_MAX];
	unsigned		 nls;
	bool			 no_marks;	/* fe_udp_set_marks(false) */
	struct fe_udp_stats	 stats;
	struct log_limit	 loglim;
	const struct resolv	*rc;		/* borrowed: fe_udp_set_resolv, or
						 * &own_rc */
	struct resolv		 own_rc;	/* /etc/resolv.conf at start */
	uint8_t			 in[FE_UDP_BATCH][FE_UDP_BUF];	/* scratch */
	struct sockaddr_storage	 peers[FE_UDP_BATCH];
	union fe_udp_ctl	 ctl[FE_UDP_BATCH];
};

/* The mark of one received datagram, or 0 when it has none. */
static uint32_t
fe_udp_mark(struct msghdr *mh)
{
	struct cmsghdr *c;
	uint32_t mark;

	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_MARK &&
		    c->cmsg_len >= CMSG_LEN(sizeof(mark))) {
			memcpy(&mark, CMSG_DATA(c), sizeof(mark));
			return mark;
		}
	return 0;
}

static void
fe_udp_flush(struct fe_udp_listener *l)
{
	struct mmsghdr msgs[FE_UDP_BATCH];
	struct iovec iov[FE_UDP_BATCH];
	unsigned i, done = 0;
	int n;

	if (l->nout == 0)
		return;
	memset(msgs, 0, sizeof(msgs[0]) * l->nout);
	for (i = 0; i < l->nout; i++) {
		iov[i].iov_base = l->out[i].data;
		iov[i].iov_len = l->out[i].len;
		msgs[i].msg_hdr.msg_name = &l->out[i].peer;
		msgs[i].msg_hdr.msg_namelen = l->out[i].peer_len;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (done < l->nout) {
		n = sendmmsg(l->fd, msgs + done, l->nout - done, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			/* The first one failed (buffer full, or the client's
			 * port is gone): skip it and go on with the rest. */
			l->fe->stats.send_errors++;
			log_limited(&l->fe->loglim, loop_now(l->fe->loop),
			    LOG_LVL_DEBUG, "UDP send failed", "error=\"%s\"",
			    strerror(errno));
			done++;
			continue;
		}
		done += (unsigned)n;
		l->fe->stats.sent += (unsigned)n;
	}
	l->nout = 0;
}

static void
fe_udp_on_flush(struct loop_hook *h)
{
	fe_udp_flush(h->arg);
}

static void
fe_udp_deliver(void *arg, const struct query_origin *o, const uint8_t *msg,
    size_t len)
{
	struct fe_udp *fe = arg;
	struct fe_udp_listener *l;
	struct fe_udp_out *out;

	if (o->listener >= fe->nls || len > FE_UDP_BUF)
		return;
	l = &fe->ls[o->listener];
	if (l->nout == FE_UDP_BATCH)
		fe_udp_flush(l);
	out = &l->out[l->nout++];
	memcpy(&out->peer, &o->peer, o->peer_len);
	out->peer_len = o->peer_len;
	memcpy(out->data, msg, len);
	out->len = len;
	loop_hook_queue(fe->loop, &l->flush);
}

/*
 * Sets o->orig from the datagram's mark, or leaves it empty; counts what
 * the mark said. A mark for another nameserver list means resolv.conf
 * changed after the rules were made: said once, as the fix is to re-run
 * dotproxy-init (or re-create the pod).
 */
static void
fe_udp_orig(struct fe_udp *fe, const struct fe_udp_listener *l,
    struct msghdr *mh, struct query_origin *o)
{
	enum udp_mark_kind kind = UDP_MARK_NONE;

	if (udp_mark_dst(l->addr.ss_family, fe_udp_mark(mh), fe->rc,
	    &o->orig, &o->orig_len, &kind) != 0)
		o->orig_len = 0;
	switch (kind) {
	case UDP_MARK_NAMESERVER:
		fe->stats.mark_ns++;
		break;
	case UDP_MARK_OTHER:
		fe->stats.mark_other++;
		break;
	case UDP_MARK_STALE:
		if (fe->stats.mark_stale++ == 0)
			log_warn("UDP packet mark made for other nameservers",
			    "reason=\"resolv.conf differs from the one the "
			    "rules were installed with\" fallback=unknown_"
			    "destination");
		break;
	case UDP_MARK_NONE:
	case UDP_MARK_NKINDS:
		fe->stats.mark_none++;
		break;
	}
}

static void
fe_udp_on_readable(struct loop_io *io, uint32_t ev)
{
	struct fe_udp_listener *l = io->arg;
	struct fe_udp *fe = l->fe;
	struct mmsghdr *msgs = l->rmsgs;
	struct query_origin o;
	int n, i, rounds;

	(void)ev;
	memset(&o, 0, sizeof(o));
	o.listener = l->idx;
	memcpy(&o.local, &l->addr, l->addr_len);
	o.local_len = l->addr_len;
	/* A few batches per wake-up, then let the other sockets have a turn. */
	for (rounds = 0; rounds < 4; rounds++) {
		/* Only what the last read changed is set back. */
		for (i = 0; i < (int)l->nlast; i++) {
			msgs[i].msg_hdr.msg_namelen = sizeof(fe->peers[i]);
			if (l->marks)
				msgs[i].msg_hdr.msg_controllen =
				    sizeof(fe->ctl[i].buf);
		}
		n = recvmmsg(l->fd, msgs, FE_UDP_BATCH, MSG_DONTWAIT, NULL);
		l->nlast = n > 0 ? (unsigned)n : 0;
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				log_limited(&fe->loglim, loop_now(fe->loop),
				    LOG_LVL_WARN, "UDP receive failed",
				    "error=\"%s\"", strerror(errno));
			return;
		}
		query_batch_begin(fe->qt);
		for (i = 0; i < n; i++) {
			fe->stats.received++;
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				fe->stats.oversize++;
				continue;
			}
			memcpy(&o.peer, &fe->peers[i], msgs[i].msg_hdr.msg_namelen);
			o.peer_len = msgs[i].msg_hdr.msg_namelen;
			o.orig_len = 0;
			if (l->marks)
				fe_udp_orig(fe, l, &msgs[i].msg_hdr, &o);
			(void)query_submit(fe->qt, fe->in[i], msgs[i].msg_len, &o);
		}
		query_batch_end(fe->qt);
		if (n < FE_UDP_BATCH)
			return;
	}
}

/*
 * The nameservers an IPv6 mark is matched against, until the caller hands
 * over its own copy (fe_udp_set_resolv): the default resolv.conf, read
 * once before the loop runs.
 */
static void
fe_udp_read_resolv(struct fe_udp *fe)
{
	char text[8192];
	size_t n = 0;
	FILE *f;

	if ((f = fopen("/etc/resolv.conf", "re")) != NULL) {
		n = fread(text, 1, sizeof(text), f);
		fclose(f);
	}
	resolv_parse(text, n, &fe->own_rc);
	fe->rc = &fe->own_rc;
}

void
fe_udp_set_marks(struct fe_udp *fe, bool on)
{
	fe->no_marks = !on;
}

void
fe_udp_set_resolv(struct fe_udp *fe, const struct resolv *rc)
{
	fe->rc = rc != NULL ? rc : &fe->own_rc;
}

struct fe_udp *
fe_udp_new(struct loop *loop, struct query_table *qt)
{
	struct query_frontend qf;
	struct fe_udp *fe;

	if ((fe = calloc(1, sizeof(*fe))) == NULL)
		return NULL;
	fe->loop = loop;
	fe->qt = qt;
	fe_udp_read_resolv(fe);
	qf.deliver = fe_udp_deliver;
	qf.arg = fe;
	query_set_frontend(qt, false, &qf);
	return fe;
}

int
fe_udp_listen(struct fe_udp *fe, const struct sockaddr *sa, socklen_t len)
{
	int fd, r;

	if (fe->nls == FE_UDP_MAX)
		return -E_TOOBIG;
	if ((fd = sock_listen(sa, len, SOCK_DGRAM)) < 0)
		return fd;
	if ((r = fe_udp_adopt(fe, fd, sa, len)) < 0)
		close(fd);
	return r;
}

int
fe_udp_adopt(struct fe_udp *fe, int fd, const struct sockaddr *sa,
    socklen_t len)
{
	struct fe_udp_listener *l;
	int r, rcvbuf = 4 << 20, one = 1;
	unsigned i;

	if (fe->nls == FE_UDP_MAX)
		return -E_TOOBIG;
	l = &fe->ls[fe->nls];
	if ((l->out = calloc(FE_UDP_BATCH, sizeof(*l->out))) == NULL)
		return -ENOMEM;
	/* Room for bursts: the default (about 200 KiB, some 250 small
	 * datagrams) drops a burst of 1000 queries. The kernel caps it at
	 * net.core.rmem_max; a refusal only leaves the default. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* Before Linux 5.19 there is no SO_RCVMARK: conntrack or resolv.conf
	 * then, as before. Without the redirect no rule marks anything, and
	 * a control message per datagram is work for nothing (a socket
	 * handed over by a process that asked for them stops too). */
	if (fe->no_marks) {
		int zero = 0;

		(void)setsockopt(fd, SOL_SOCKET, SO_RCVMARK, &zero,
		    sizeof(zero));
		l->marks = false;
	} else if (!(l->marks = setsockopt(fd, SOL_SOCKET, SO_RCVMARK, &one,
	    sizeof(one)) == 0))
		log_info("UDP packet marks unavailable", "error=\"%s\"",
		    strerror(errno));
	l->fe = fe;
	l->idx = fe->nls;
	l->fd = fd;
	memset(l->rmsgs, 0, sizeof(l->rmsgs));
	for (i = 0; i < FE_UDP_BATCH; i++) {
		l->riov[i].iov_base = fe->in[i];
		l->riov[i].iov_len = FE_UDP_BUF;
		l->rmsgs[i].msg_hdr.msg_name = &fe->peers[i];
		l->rmsgs[i].msg_hdr.msg_namelen = sizeof(fe->peers[i]);
		l->rmsgs[i].msg_hdr.msg_iov = &l->riov[i];
		l->rmsgs[i].msg_hdr.msg_iovlen = 1;
		if (l->marks) {
			l->rmsgs[i].msg_hdr.msg_control = fe->ctl[i].buf;
			l->rmsgs[i].msg_hdr.msg_controllen =
			    sizeof(fe->ctl[i].buf);
		}
	}
	memcpy(&l->addr, sa, len);
	l->addr_len = len;
	l->io.cb = fe_udp_on_readable;
	l->io.arg = l;
	l->flush.cb = fe_udp_on_flush;
	l->flush.arg = l;
	if ((r = loop_io_start(fe->loop, &l->io, fd, LOOP_READ)) < 0) {
		free(l->out);
		l->out = NULL;
		return r;
	}
	fe->nls++;
	return 0;
}

void
fe_udp_stop(struct fe_udp *fe)
{
	unsigned i;

	for (i = 0; i < fe->nls; i++)
		loop_io_stop(fe->loop, &fe->ls[i].io);
}

void
fe_udp_free(struct fe_udp *fe)
{
	unsigned i;

	if (fe == NULL)
		return;
	for (i = 0; i < fe->nls; i++) {
		fe_udp_flush(&fe->ls[i]);
		loop_hook_cancel(fe->loop, &fe->ls[i].flush);
		loop_io_stop(fe->loop, &fe->ls[i].io);
		close(fe->ls[i].fd);
		free(fe->ls[i].out);
	}
	free(fe);
}

const struct fe_udp_stats *
fe_udp_stats(const struct fe_udp *fe)
{
	return &fe->stats;
}

#define UROW(name, labels, field, help) \
	STAT_ROW(name, labels, STAT_COUNTER, struct fe_udp_stats, field, help)
static const struct stat_desc fe_udp_rows[] = {
	UROW("dotproxy_udp_received_total", NULL, received,
	    "Datagrams read from UDP clients."),
	UROW("dotproxy_udp_sent_total", NULL, sent,
	    "Answers sent to UDP clients."),
	UROW("dotproxy_malformed_total", "reason=\"udp_oversize\"", oversize,
	    NULL),
	UROW("dotproxy_dropped_total", "reason=\"udp_send\"", send_errors,
	    NULL),
	UROW("dotproxy_udp_marks_total", "mark=\"nameserver\"", mark_ns,
	    "UDP queries by what their packet mark said of the original "
	    "destination."),
	UROW("dotproxy_udp_marks_total", "mark=\"other_destination\"",
	    mark_other, NULL),
	UROW("dotproxy_udp_marks_total", "mark=\"stale\"", mark_stale, NULL),
	UROW("dotproxy_udp_marks_total", "mark=\"none\"", mark_none, NULL),
};
const struct stat_table fe_udp_stat_table = STAT_TABLE(fe_udp_rows);
