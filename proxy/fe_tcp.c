/*
 * TCP front end (see fe_tcp.h). Edge layer. Owns the listening sockets and
 * the client connections. A client is found by handle (generation << 32 |
 * slot) so an answer for a closed client finds nothing. Closing only marks
 * the client and hands it to the loop's deferred-free list; nothing is
 * freed under a running callback. The receive side (RX_LEN, RX_BODY as the
 * framing in the buffer shows) is independent of the answers queued to go.
 */
#include "fe_tcp.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "dns.h"
#include "errors.h"
#include "log.h"
#include "loop.h"
#include "nl_diag.h"
#include "query.h"
#include "sock.h"

#define FE_TCP_MAX_LISTEN	8
#define FE_TCP_RX_CAP		(2 + 4096)	/* longest query we take */
#define FE_TCP_TX_CAP		(2 * (2 + DNS_MSG_MAX))
#define FE_TCP_TX_PAUSE		(2 + DNS_MSG_MAX)	/* stop reading above */
#define FE_TCP_ACCEPT_PAUSE_MS	100

struct fe_tcp_client {
	struct fe_tcp		*fe;		/* borrowed: owner */
	uint32_t		 slot;
	uint32_t		 gen;
	int			 fd;
	struct loop_io		 io;
	struct loop_timer	 idle;
	struct loop_hook	 flush;
	struct buf		 rx;		/* framed queries being read */
	struct buf		 tx;		/* framed answers to write */
	unsigned		 pending;	/* queries sent on, not answered */
	bool			 eof;		/* the client shut its side */
	bool			 closing;
	struct sockaddr_storage	 peer;
	socklen_t		 peer_len;
	struct sockaddr_storage	 local;		/* where it connected */
	socklen_t		 local_len;
	struct sockaddr_storage	 orig;		/* before the redirect */
	socklen_t		 orig_len;	/* 0 when unknown */
	bool			 from_self;	/* peer runs as our UID */
	bool			 learning;	/* waiting for sock_diag */
	uint64_t		 frame_from_ms;	/* first byte of the frame being
						 * read came; 0: no such frame */
};

struct fe_tcp_listener {
	struct fe_tcp	*fe;		/* borrowed: owner */
	int		 fd;
	struct loop_io	 io;
};

struct fe_tcp {
	struct loop		*loop;		/* borrowed */
	struct query_table	*qt;		/* borrowed */
	const struct config	*cfg;		/* borrowed */
	struct fe_tcp_listener	 ls[FE_TCP_MAX_LISTEN];
	unsigned		 nls;
	bool			 paused;	/* accepting paused */
	bool			 stopped;	/* no more accepting, ever */
	struct loop_timer	 resume;	/* EMFILE pause */
	struct fe_tcp_client	**clients;	/* owned: max_clients slots */
	uint32_t		*gens;		/* owned: generation per slot */
	uint32_t		 nfree;
	uint32_t		*free_slots;	/* owned: stack of free slots */
	struct diag		*diag;		/* owned; NULL unless transparent */
	unsigned		 euid;
	struct fe_tcp_stats	 stats;
	struct log_limit	 loglim;
};

static void	client_close(struct fe_tcp_client *);
static void	client_update(struct fe_tcp_client *);
static void	client_process(struct fe_tcp_client *);
static void	fe_tcp_set_accepting(struct fe_tcp *, bool);

static uint64_t
client_handle(const struct fe_tcp_client *c)
{
	return (uint64_t)c->gen << 32 | c->slot;
}

static void
client_free(void *p)
{
	struct fe_tcp_client *c = p;

	buf_fini(&c->rx);
	buf_fini(&c->tx);
	free(c);
}

/* Marks c closed: unregisters it, closes the fd, frees it after this pass.
 * Callers must not touch c afterwards. */
static void
client_close(struct fe_tcp_client *c)
{
	struct fe_tcp *fe = c->fe;

	if (c->closing)
		return;
	c->closing = true;
	loop_io_stop(fe->loop, &c->io);
	loop_timer_stop(fe->loop, &c->idle);
	loop_hook_cancel(fe->loop, &c->flush);
	close(c->fd);
	c->fd = -1;
	fe->clients[c->slot] = NULL;
	fe->gens[c->slot]++;
	fe->free_slots[fe->nfree++] = c->slot;
	fe->stats.open--;
	if (loop_defer_free(fe->loop, client_free, c) < 0)
		log_warn("cannot defer free", "client=%u", c->slot);
	if (fe->paused && !fe->stopped && !loop_timer_armed(&fe->resume))
		fe_tcp_set_accepting(fe, true);
}

/* Writes queued answers. Returns -E_GONE if the client was closed. */
static int
client_flush(struct fe_tcp_client *c)
{
	ssize_t n;

	while (c->tx.len > 0) {
		n = send(c->fd, buf_start(&c->tx), c->tx.len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			client_close(c);
			return -E_GONE;
		}
		buf_consume(&c->tx, (size_t)n);
	}
	return 0;
}

static void
client_on_flush(struct loop_hook *h)
{
	struct fe_tcp_client *c = h->arg;

	if (c->closing)
		return;
	if (client_flush(c) < 0)
		return;
	/* Answers freed pipeline room: take the frames already read. */
	client_process(c);
	client_update(c);
}

/* Sets the events wanted and the idle timer from the client's state;
 * closes a client that is done. */
static void
client_update(struct fe_tcp_client *c)
{
	struct fe_tcp *fe = c->fe;
	const uint8_t *msg;
	uint32_t ev = 0;
	size_t len;

	if (c->closing)
		return;
	if ((c->eof || fe->stopped) && c->pending == 0 && c->tx.len == 0 &&
	    (fe->stopped || buf_frame(&c->rx, &msg, &len) != 1)) {
		client_close(c);
		return;
	}
	if (!c->eof && !fe->stopped && !c->learning &&
	    c->pending < fe->cfg->max_pipeline &&
	    c->tx.len < FE_TCP_TX_PAUSE)
		ev |= LOOP_READ;
	if (c->tx.len > 0)
		ev |= LOOP_WRITE;
	if (loop_io_set(fe->loop, &c->io, ev) < 0) {
		client_close(c);
		return;
	}
	/* Nothing owed to the client: it has client_idle_ms to do something,
	 * whether to send a query or to read answers waiting in tx (one that
	 * never reads must not hold its slot forever). */
	if (c->pending == 0) {
		uint64_t at = loop_now(fe->loop) + fe->cfg->client_idle_ms;

		/* A frame has client_idle_ms from its first byte: one byte
		 * dripped per timeout must not hold a slot for ever. */
		if (c->frame_from_ms != 0 &&
		    c->frame_from_ms + fe->cfg->client_idle_ms < at)
			at = c->frame_from_ms + fe->cfg->client_idle_ms;
		loop_timer_set(fe->loop, &c->idle, at);
	} else
		loop_timer_stop(fe->loop, &c->idle);
}

static void
client_on_idle(struct loop_timer *t)
{
	struct fe_tcp_client *c = t->arg;

	if (c->tx.len > 0)
		c->fe->stats.closed_slow++;	/* its answers sat unread */
	else
		c->fe->stats.closed_idle++;
	client_close(c);
}

static void
fe_tcp_deliver(void *arg, const struct query_origin *o, const uint8_t *msg,
    size_t len)
{
	struct fe_tcp *fe = arg;
	uint32_t slot = (uint32_t)o->conn;
	struct fe_tcp_client *c;
	uint8_t hdr[2];

	if (slot >= fe->cfg->max_clients || (c = fe->clients[slot]) == NULL ||
	    client_handle(c) != o->conn || c->closing)
		return;		/* the client went away meanwhile */
	c->pending--;
	hdr[0] = (uint8_t)(len >> 8);
	hdr[1] = (uint8_t)len;
	if (c->tx.cap - c->tx.len < len + 2) {
		/* It asks but does not read: drop it rather than grow. */
		fe->stats.closed_slow++;
		client_close(c);
		return;
	}
	BUG_ON(buf_append(&c->tx, hdr, 2) != 0);
	BUG_ON(buf_append(&c->tx, msg, len) != 0);
	loop_hook_queue(fe->loop, &c->flush);
}

/* Submits the whole frames in rx, up to the pipeline bound. May close c. */
static void
client_process(struct fe_tcp_client *c)
{
	struct fe_tcp *fe = c->fe;
	struct query_origin o;
	const uint8_t *msg;
	size_t len;
	int r;

	if (c->learning)
		return;		/* who the peer is comes first */
	memset(&o, 0, sizeof(o));
	o.tcp = true;
	o.conn = client_handle(c);
	o.local = c->local;
	o.local_len = c->local_len;
	o.orig = c->orig;
	o.orig_len = c->orig_len;
	o.from_self = c->from_self;
	while (!c->closing && c->pending < fe->cfg->max_pipeline &&
	    (r = buf_frame(&c->rx, &msg, &len)) != 0) {
		if (r < 0) {
			fe->stats.closed_bad++;
			client_close(c);
			return;
		}
		c->pending++;
		if (query_submit(fe->qt, msg, len, &o) < 0)
			c->pending--;
		buf_consume(&c->rx, 2 + len);
		c->frame_from_ms = 0;
	}
	if (c->rx.len > 0 && c->frame_from_ms == 0)
		c->frame_from_ms = loop_now(fe->loop);
	/* A length prefix we will never take in: stop here. */
	if (!c->closing && c->rx.len >= 2) {
		const uint8_t *p = buf_start(&c->rx);
		size_t want = (size_t)p[0] << 8 | p[1];

		if (want + 2 > c->rx.cap) {
			fe->stats.closed_bad++;
			client_close(c);
		}
	}
}

/* Reads what the socket has and submits whole frames. May close c. */
static void
client_read(struct fe_tcp_client *c)
{
	ssize_t n;

	if (buf_room(&c->rx) == 0)
		buf_compact(&c->rx);
	if (buf_room(&c->rx) > 0) {
		n = recv(c->fd, buf_tail(&c->rx), buf_room(&c->rx), 0);
		if (n == 0)
			c->eof = true;
		else if (n == -1) {
			if (errno != EAGAIN && errno != EINTR) {
				client_close(c);
				return;
			}
		} else
			buf_produce(&c->rx, (size_t)n);
	}
	client_process(c);
}

static void
client_on_io(struct loop_io *io, uint32_t ev)
{
	struct fe_tcp_client *c = io->arg;

	if ((ev & LOOP_READ) && !(io->events & LOOP_READ)) {
		/* Not reading, so an error or a hangup (a reset): nothing can
		 * reach the client now, and level-triggered it would wake the
		 * loop on every pass until its queries end. */
		client_close(c);
		return;
	}
	if ((ev & LOOP_READ) && !c->closing)
		client_read(c);
	if ((ev & LOOP_WRITE) && !c->closing && client_flush(c) < 0)
		return;
	client_update(c);
}

/*
 * True if the original destination o is the connection's own local address
 * l: the client connected to us, nothing redirected it. A v4-mapped local
 * address (a [::] listener) equals its IPv4 address.
 */
static bool
orig_is_local(const struct sockaddr_storage *o, const struct sockaddr_storage *l)
{
	const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)(const void *)l;
	const struct sockaddr_in *o4 = (const struct sockaddr_in *)(const void *)o;

	if (o->ss_family == AF_INET && l->ss_family == AF_INET) {
		const struct sockaddr_in *l4 = (const struct sockaddr_in *)(const void *)l;

		return o4->sin_port == l4->sin_port &&
		    o4->sin_addr.s_addr == l4->sin_addr.s_addr;
	}
	if (o->ss_family == AF_INET6 && l->ss_family == AF_INET6) {
		const struct sockaddr_in6 *o6 = (const struct sockaddr_in6 *)(const void *)o;

		return o6->sin6_port == l6->sin6_port &&
		    memcmp(&o6->sin6_addr, &l6->sin6_addr, 16) == 0;
	}
	return o->ss_family == AF_INET && l->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr) &&
	    o4->sin_port == l6->sin6_port &&
	    memcmp(&o4->sin_addr, &l6->sin6_addr.s6_addr[12], 4) == 0;
}

/* Where the client meant to go and who it is (transparent use). The UID
 * comes later, from sock_diag; until then the client's queries wait. */
static void
client_learn(struct fe_tcp_client *c)
{
	struct fe_tcp *fe = c->fe;

	c->local_len = sizeof(c->local);
	if (getsockname(c->fd, (struct sockaddr *)&c->local, &c->local_len) == -1)
		c->local_len = 0;
	/*
	 * Wherever conntrack follows connections (a NAT table such as
	 * dotproxy-init's, or any stateful firewall), one that was not
	 * redirected has an original destination too: the address it reached,
	 * our own. The loop check of the query layer knows the listen
	 * addresses as configured, which a wildcard (0.0.0.0, [::]) or an
	 * ephemeral port never equals, and would send a local-zone query back
	 * to us. Compared with the accepted socket's own address, it is known
	 * on every local address: such a connection has no original
	 * destination, as without conntrack.
	 */
	if (sock_orig_dst(c->fd, c->peer.ss_family, &c->orig, &c->orig_len) < 0 ||
	    (c->local_len > 0 && orig_is_local(&c->orig, &c->local)))
		c->orig_len = 0;
	/* A loop shows as our own UID at the other end (transparent use).
	 * The other end sees the address it connected to: the original
	 * destination when the connection was redirected. */
	if (fe->cfg->transparent && fe->diag != NULL && c->local_len > 0 &&
	    diag_lookup(fe->diag, (const struct sockaddr *)(c->orig_len > 0 ?
	    &c->orig : &c->local), (const struct sockaddr *)&c->peer,
	    client_handle(c)) == 0)
		c->learning = true;
}

/* The sock_diag answer for a client: now its queries may go. */
static void
fe_tcp_on_diag(void *arg, uint64_t handle, int err, unsigned uid)
{
	struct fe_tcp *fe = arg;
	uint32_t slot = (uint32_t)handle;
	struct fe_tcp_client *c;

	if (slot >= fe->cfg->max_clients || (c = fe->clients[slot]) == NULL ||
	    client_handle(c) != handle || c->closing || !c->learning)
		return;		/* closed meanwhile */
	c->learning = false;
	c->from_self = err == 0 && uid == fe->euid;
	if (err != 0 && err != -ENOENT)
		fe->stats.diag_failed++;
	client_update(c);
}

static void
fe_tcp_accept(struct fe_tcp_listener *l)
{
	struct fe_tcp *fe = l->fe;
	struct fe_tcp_client *c;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, i;

	for (i = 0; i < 64; i++) {
		if (fe->nfree == 0) {
			/* At the cap: leave the rest in the backlog. */
			fe->stats.accept_paused++;
			fe_tcp_set_accepting(fe, false);
			return;
		}
		sl = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: pause, do not spin. */
				fe->stats.accept_paused++;
				log_limited(&fe->loglim, loop_now(fe->loop),
				    LOG_LVL_WARN, "accept paused",
				    "error=\"%s\" pause_ms=%d", strerror(errno),
				    FE_TCP_ACCEPT_PAUSE_MS);
				fe_tcp_set_accepting(fe, false);
				loop_timer_set(fe->loop, &fe->resume,
				    loop_now(fe->loop) + FE_TCP_ACCEPT_PAUSE_MS);
			}
			return;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL ||
		    buf_init(&c->rx, FE_TCP_RX_CAP) < 0 ||
		    buf_init(&c->tx, FE_TCP_TX_CAP) < 0) {
			if (c != NULL)
				client_free(c);
			close(fd);
			continue;
		}
		c->fe = fe;
		c->fd = fd;
		c->slot = fe->free_slots[--fe->nfree];
		c->gen = fe->gens[c->slot];
		c->peer = ss;
		c->peer_len = sl;
		client_learn(c);
		c->io.cb = client_on_io;
		c->io.arg = c;
		c->idle.cb = client_on_idle;
		c->idle.arg = c;
		c->flush.cb = client_on_flush;
		c->flush.arg = c;
		fe->clients[c->slot] = c;
		fe->stats.open++;
		fe->stats.accepted++;
		if (loop_io_start(fe->loop, &c->io, fd, LOOP_READ) < 0) {
			client_close(c);
			continue;
		}
		client_update(c);
	}
}

static void
fe_tcp_on_listen(struct loop_io *io, uint32_t ev)
{
	(void)ev;
	fe_tcp_accept(io->arg);
}

static void
fe_tcp_set_accepting(struct fe_tcp *fe, bool on)
{
	unsigned i;

	if (on && fe->stopped)
		return;
	fe->paused = !on;
	for (i = 0; i < fe->nls; i++)
		if (loop_io_set(fe->loop, &fe->ls[i].io, on ? LOOP_READ : 0) < 0)
			log_warn("epoll_ctl failed", "listener=%u", i);
}

static void
fe_tcp_on_resume(struct loop_timer *t)
{
	struct fe_tcp *fe = t->arg;

	if (fe->nfree > 0)
		fe_tcp_set_accepting(fe, true);
}

struct fe_tcp *
fe_tcp_new(struct loop *loop, struct query_table *qt, const struct config *cfg)
{
	struct query_frontend qf;
	struct fe_tcp *fe;
	uint32_t i;

	if ((fe = calloc(1, sizeof(*fe))) == NULL)
		return NULL;
	fe->loop = loop;
	fe->qt = qt;
	fe->cfg = cfg;
	fe->resume.cb = fe_tcp_on_resume;
	fe->resume.arg = fe;
	fe->clients = calloc(cfg->max_clients, sizeof(*fe->clients));
	fe->gens = calloc(cfg->max_clients, sizeof(*fe->gens));
	fe->free_slots = calloc(cfg->max_clients, sizeof(*fe->free_slots));
	if (fe->clients == NULL || fe->gens == NULL || fe->free_slots == NULL) {
		fe_tcp_free(fe);
		return NULL;
	}
	for (i = 0; i < cfg->max_clients; i++)
		fe->free_slots[i] = cfg->max_clients - 1 - i;
	fe->euid = geteuid();
	if (cfg->transparent &&
	    (fe->diag = diag_open(loop, fe_tcp_on_diag, fe)) == NULL)
		log_warn("no sock_diag socket: TCP loop detection off",
		    "%s", "");
	fe->nfree = cfg->max_clients;
	qf.deliver = fe_tcp_deliver;
	qf.arg = fe;
	query_set_frontend(qt, true, &qf);
	return fe;
}

int
fe_tcp_listen(struct fe_tcp *fe, const struct sockaddr *sa, socklen_t len)
{
	int fd, r;

	if (fe->nls == FE_TCP_MAX_LISTEN)
		return -E_TOOBIG;
	if ((fd = sock_listen(sa, len, SOCK_STREAM)) < 0)
		return fd;
	if ((r = fe_tcp_adopt(fe, fd)) < 0)
		close(fd);
	return r;
}

int
fe_tcp_adopt(struct fe_tcp *fe, int fd)
{
	struct fe_tcp_listener *l;
	int r;

	if (fe->nls == FE_TCP_MAX_LISTEN)
		return -E_TOOBIG;
	l = &fe->ls[fe->nls];
	l->fe = fe;
	l->fd = fd;
	l->io.cb = fe_tcp_on_listen;
	l->io.arg = l;
	if ((r = loop_io_start(fe->loop, &l->io, fd, LOOP_READ)) < 0)
		return r;
	fe->nls++;
	return 0;
}

void
fe_tcp_stop(struct fe_tcp *fe)
{
	uint32_t i;

	fe->stopped = true;
	loop_timer_stop(fe->loop, &fe->resume);
	for (i = 0; i < fe->nls; i++) {
		loop_io_stop(fe->loop, &fe->ls[i].io);
		close(fe->ls[i].fd);
	}
	fe->nls = 0;
	for (i = 0; i < fe->cfg->max_clients; i++)
		if (fe->clients[i] != NULL)
			client_update(fe->clients[i]);
}

size_t
fe_tcp_open(const struct fe_tcp *fe)
{
	return fe->stats.open;
}

void
fe_tcp_free(struct fe_tcp *fe)
{
	uint32_t i;

	if (fe == NULL)
		return;
	for (i = 0; i < fe->nls; i++) {
		loop_io_stop(fe->loop, &fe->ls[i].io);
		close(fe->ls[i].fd);
	}
	for (i = 0; fe->clients != NULL && i < fe->cfg->max_clients; i++) {
		struct fe_tcp_client *c = fe->clients[i];

		if (c == NULL)
			continue;
		loop_io_stop(fe->loop, &c->io);
		loop_timer_stop(fe->loop, &c->idle);
		loop_hook_cancel(fe->loop, &c->flush);
		close(c->fd);
		client_free(c);
	}
	loop_timer_stop(fe->loop, &fe->resume);
	diag_close(fe->diag);
	free(fe->clients);
	free(fe->gens);
	free(fe->free_slots);
	free(fe);
}

const struct fe_tcp_stats *
fe_tcp_stats(const struct fe_tcp *fe)
{
	return &fe->stats;
}

const struct nl_stats *
fe_tcp_diag_stats(const struct fe_tcp *fe)
{
	return fe->diag != NULL ? diag_stats(fe->diag) : NULL;
}

#define TROW(name, labels, field, help) \
	STAT_ROW(name, labels, STAT_COUNTER, struct fe_tcp_stats, field, help)
static const struct stat_desc fe_tcp_rows[] = {
	STAT_ROW_UINT("dotproxy_tcp_connections", NULL, STAT_GAUGE,
	    struct fe_tcp_stats, open, "Client TCP connections open."),
	TROW("dotproxy_tcp_accepted_total", NULL, accepted,
	    "Client TCP connections accepted."),
	TROW("dotproxy_tcp_closed_total", "reason=\"idle\"", closed_idle,
	    "Client TCP connections the proxy closed, by reason."),
	TROW("dotproxy_tcp_closed_total", "reason=\"framing\"", closed_bad,
	    NULL),
	TROW("dotproxy_tcp_closed_total", "reason=\"slow_reader\"",
	    closed_slow, NULL),
	TROW("dotproxy_tcp_accept_paused_total", NULL, accept_paused,
	    "Accepts put off: descriptors exhausted or the client cap reached."),
	TROW("dotproxy_tcp_peer_lookup_failed_total", NULL, diag_failed,
	    "Transparent TCP clients whose peer UID sock_diag could not tell."),
	TROW("dotproxy_malformed_total", "reason=\"tcp_framing\"", closed_bad,
	    NULL),
	TROW("dotproxy_dropped_total", "reason=\"tcp_slow_reader\"",
	    closed_slow, NULL),
};
const struct stat_table fe_tcp_stat_table = STAT_TABLE(fe_tcp_rows);
