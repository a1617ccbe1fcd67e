/*
 * Plain DNS forwarder (see plain.h). Domain layer. Owns one socket per
 * request and the request itself; a request ends (and is freed after the
 * dispatch pass) on an accepted answer, a failure or its own timer, and
 * reports to the query layer only through the registered callbacks.
 */
#include "plain.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "dns.h"
#include "errors.h"
#include "log.h"
#include "loop.h"
#include "route.h"
#include "sock.h"

enum plain_state {
	PL_DONE = 0,		/* finished; waiting to be freed */
	PL_UDP,			/* datagram sent, waiting for the answer */
	PL_TCP_CONNECTING,	/* retrying over TCP after TC */
	PL_TCP_WAIT		/* query written (or being written), reading */
};

struct plain_req {
	struct plain		*pl;		/* borrowed: owner */
	struct plain_req	*prev, *next;	/* list of live requests */
	enum plain_state	 state;
	uint64_t		 handle;
	int			 fd;
	struct loop_io		 io;
	struct loop_timer	 timer;
	struct sockaddr_storage	 dst;
	socklen_t		 dstlen;
	uint16_t		 id;
	struct sockaddr_storage	 local;		/* UDP source address and port */
	socklen_t		 local_len;
	int			 family;
	struct buf		 out;		/* the query (framed for TCP) */
	size_t			 out_off;	/* bytes of out already sent */
	struct buf		 in;		/* TCP answer being read; empty
						 * until a TCP retry */
};

struct plain {
	struct loop		*loop;		/* borrowed */
	unsigned		 timeout_ms;
	unsigned		 max;		/* requests in flight at most */
	struct plain_callbacks	 cb;
	struct plain_req	*reqs;		/* owned list */
	size_t			 n;
	struct plain_stats	 stats;
	uint8_t			 rbuf[DNS_MSG_MAX];	/* UDP scratch */
};

static void	req_on_io(struct loop_io *, uint32_t);

static void
req_free(void *p)
{
	struct plain_req *r = p;

	buf_fini(&r->out);
	buf_fini(&r->in);
	free(r);
}

/* Ends r: unlinks it, closes its socket, frees it after this pass. */
static void
req_end(struct plain_req *r)
{
	struct plain *pl = r->pl;

	if (r->state == PL_DONE)
		return;
	r->state = PL_DONE;
	loop_io_stop(pl->loop, &r->io);
	loop_timer_stop(pl->loop, &r->timer);
	if (r->fd != -1)
		close(r->fd);
	r->fd = -1;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		pl->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	pl->n--;
	if (loop_defer_free(pl->loop, req_free, r) < 0)
		log_warn("cannot defer free", "%s", "what=plain");
}

static void
req_fail(struct plain_req *r, int err)
{
	struct plain *pl = r->pl;
	uint64_t h = r->handle;

	pl->stats.errors++;
	req_end(r);
	pl->cb.on_fail(pl->cb.arg, h, err);
}

static void
req_on_timer(struct loop_timer *t)
{
	req_fail(t->arg, -E_TIMEOUT);
}

/* Offers one answer to the query layer. Returns true when r ended. */
static bool
req_answer(struct plain_req *r, const uint8_t *msg, size_t len)
{
	struct plain *pl = r->pl;
	int v;

	if (len < DNS_HDR_LEN || dns_get_id(msg) != r->id ||
	    !(msg[2] & 0x80)) {
		pl->stats.mismatched++;
		return false;
	}
	if (r->state == PL_UDP && (msg[2] & 0x02)) {
		/* Truncated: ask again over TCP, as a stub would. */
		int fd = sock_connect((const struct sockaddr *)&r->dst, r->dstlen);

		pl->stats.tcp_retries++;
		if (fd < 0) {
			req_fail(r, fd);
			return true;
		}
		/* Only a TCP retry needs room for a whole answer. */
		if (buf_init(&r->in, 2 + DNS_MSG_MAX) < 0) {
			close(fd);
			req_fail(r, -ENOMEM);
			return true;
		}
		loop_io_stop(pl->loop, &r->io);
		close(r->fd);
		r->fd = fd;
		r->out_off = 0;
		r->state = PL_TCP_CONNECTING;
		if (loop_io_start(pl->loop, &r->io, fd, LOOP_WRITE) < 0) {
			req_fail(r, -EIO);
			return true;
		}
		return false;
	}
	v = pl->cb.on_answer(pl->cb.arg, r->handle, msg, len);
	if (v == -E_MISMATCH) {
		pl->stats.mismatched++;
		return false;
	}
	pl->stats.answers++;
	req_end(r);
	return true;
}

static void
req_udp_read(struct plain_req *r)
{
	struct plain *pl = r->pl;
	ssize_t n;

	for (;;) {
		/* A connected socket only takes datagrams from dst. */
		n = recv(r->fd, pl->rbuf, sizeof(pl->rbuf), 0);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			req_fail(r, -errno);	/* e.g. ECONNREFUSED */
			return;
		}
		if (req_answer(r, pl->rbuf, (size_t)n) || r->state != PL_UDP)
			return;
	}
}

static void
req_tcp(struct plain_req *r, uint32_t ev)
{
	const uint8_t *msg;
	size_t len;
	ssize_t n;
	int err;

	if (r->state == PL_TCP_CONNECTING) {
		if ((err = sock_error(r->fd)) != 0) {
			req_fail(r, err);
			return;
		}
		r->state = PL_TCP_WAIT;
	}
	if ((ev & LOOP_WRITE) && r->out_off < r->out.len) {
		n = send(r->fd, buf_start(&r->out) + r->out_off,
		    r->out.len - r->out_off, MSG_NOSIGNAL);
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			req_fail(r, -errno);
			return;
		}
		if (n > 0)
			r->out_off += (size_t)n;
		if (r->out_off == r->out.len &&
		    loop_io_set(r->pl->loop, &r->io, LOOP_READ) < 0) {
			req_fail(r, -EIO);
			return;
		}
	}
	if (!(ev & LOOP_READ))
		return;
	n = recv(r->fd, buf_tail(&r->in), buf_room(&r->in), 0);
	if (n == 0) {
		req_fail(r, -E_UPSTREAM);
		return;
	}
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			req_fail(r, -errno);
		return;
	}
	buf_produce(&r->in, (size_t)n);
	if (buf_frame(&r->in, &msg, &len) == 1 && !req_answer(r, msg, len)) {
		/* Wrong ID or question on our own TCP connection: give up. */
		req_fail(r, -E_MISMATCH);
	}
}

static void
req_on_io(struct loop_io *io, uint32_t ev)
{
	struct plain_req *r = io->arg;

	switch (r->state) {
	case PL_DONE:
		return;
	case PL_UDP:
		req_udp_read(r);
		return;
	case PL_TCP_CONNECTING:
	case PL_TCP_WAIT:
		req_tcp(r, ev);
		return;
	}
}

int
plain_send(struct plain *pl, uint64_t handle, const struct sockaddr *dst,
    socklen_t dstlen, const uint8_t *msg, size_t len)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	struct plain_req *r;
	uint8_t hdr[2];
	int err = -ENOMEM;

	if (len < DNS_HDR_LEN || len > DNS_MSG_MAX || dstlen > sizeof(r->dst))
		return -EINVAL;
	if (pl->n >= pl->max) {
		pl->stats.overload++;
		return -EBUSY;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->fd = -1;
	if (buf_init(&r->out, len + 2) < 0)
		goto fail;
	if (getrandom(&r->id, sizeof(r->id), 0) != sizeof(r->id)) {
		err = -EIO;
		goto fail;
	}
	/* Framed, for a TCP retry; UDP sends from offset 2. */
	hdr[0] = (uint8_t)(len >> 8);
	hdr[1] = (uint8_t)len;
	if (buf_append(&r->out, hdr, 2) < 0 || buf_append(&r->out, msg, len) < 0)
		goto fail;
	dns_set_id(buf_start(&r->out) + 2, r->id);
	r->fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd == -1 || connect(r->fd, dst, dstlen) == -1 ||
	    getsockname(r->fd, (struct sockaddr *)&local, &ll) == -1) {
		err = -errno;
		goto fail;
	}
	memcpy(&r->local, &local, ll < sizeof(local) ? ll : sizeof(local));
	r->local_len = ll;
	if (send(r->fd, buf_start(&r->out) + 2, len, 0) == -1) {
		err = -errno;
		goto fail;
	}
	r->pl = pl;
	r->handle = handle;
	r->family = dst->sa_family;
	memcpy(&r->dst, dst, dstlen);
	r->dstlen = dstlen;
	r->io.cb = req_on_io;
	r->io.arg = r;
	r->timer.cb = req_on_timer;
	r->timer.arg = r;
	if ((err = loop_io_start(pl->loop, &r->io, r->fd, LOOP_READ)) < 0)
		goto fail;
	r->state = PL_UDP;
	loop_timer_set(pl->loop, &r->timer, loop_now(pl->loop) + pl->timeout_ms);
	r->next = pl->reqs;
	if (pl->reqs != NULL)
		pl->reqs->prev = r;
	pl->reqs = r;
	pl->n++;
	pl->stats.queries++;
	return 0;
fail:
	if (r->fd != -1)
		close(r->fd);
	req_free(r);
	pl->stats.errors++;
	return err;
}

struct plain *
plain_new(struct loop *loop, unsigned timeout_ms, unsigned max,
    const struct plain_callbacks *cb)
{
	struct plain *pl;

	if ((pl = calloc(1, sizeof(*pl))) == NULL)
		return NULL;
	pl->loop = loop;
	pl->timeout_ms = timeout_ms;
	pl->max = max > 0 ? max : 1;
	pl->cb = *cb;
	return pl;
}

void
plain_free(struct plain *pl)
{
	if (pl == NULL)
		return;
	while (pl->reqs != NULL) {
		struct plain_req *r = pl->reqs;

		pl->reqs = r->next;
		loop_io_stop(pl->loop, &r->io);
		loop_timer_stop(pl->loop, &r->timer);
		if (r->fd != -1)
			close(r->fd);
		req_free(r);
	}
	free(pl);
}

bool
plain_owns_addr(const struct plain *pl, const struct sockaddr *sa)
{
	const struct plain_req *r;

	for (r = pl->reqs; r != NULL; r = r->next)
		if (r->state == PL_UDP && route_addr_equal((const struct sockaddr *)
		    &r->local, sa))
			return true;
	return false;
}

size_t
plain_inflight(const struct plain *pl)
{
	return pl->n;
}

const struct plain_stats *
plain_stats(const struct plain *pl)
{
	return &pl->stats;
}

#define PROW(name, labels, field, help) \
	STAT_ROW(name, labels, STAT_COUNTER, struct plain_stats, field, help)
static const struct stat_desc plain_rows[] = {
	PROW("dotproxy_local_sent_total", NULL, queries,
	    "Queries sent in plain DNS to a local resolver."),
	PROW("dotproxy_local_answers_total", NULL, answers,
	    "Answers accepted from local resolvers."),
	PROW("dotproxy_local_tcp_retries_total", NULL, tcp_retries,
	    "Truncated local answers asked for again over TCP."),
	PROW("dotproxy_local_errors_total", NULL, errors,
	    "Local queries that failed (socket errors, timeouts)."),
	PROW("dotproxy_local_mismatched_total", NULL, mismatched,
	    "Local answers ignored: wrong ID, address or question."),
	PROW("dotproxy_dropped_total", "reason=\"local_overload\"", overload,
	    NULL),
};
const struct stat_table plain_stat_table = STAT_TABLE(plain_rows);
