/*
 * DoT upstream pool (see upstream.h). Domain layer. Owns the connections
 * and their buffers, the per-connection ID maps and the back-off state.
 * Connections are embedded in their upstream and never freed while the
 * pool lives, so a queued hook or timer can never point at freed memory;
 * a closed connection simply returns to UP_IDLE.
 */
#include "upstream.h"

#include <sys/random.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "dns.h"
#include "errors.h"
#include "idmap.h"
#include "log.h"
#include "loop.h"
#include "sock.h"
#include "tls.h"

#define UP_RBUF_CAP	(2 + DNS_MSG_MAX + 1024)
#define UP_SPREAD	16	/* in flight on one connection before opening another */
#define UP_BACKOFF_MIN_MS 250
#define UP_BACKOFF_MAX_MS 30000
/* Connections in a row that heard nothing for a whole timeout while
 * queries waited, before the upstream counts as down: one silent
 * connection can be a lost flow (a NAT or firewall forgot it), three in
 * a row is an upstream that takes TLS and never answers. */
#define UP_SILENT_DOWN	3

enum up_state {
	UP_IDLE = 0,		/* slot free, nothing open */
	UP_CONNECTING,		/* TCP connect in progress */
	UP_HANDSHAKING,		/* TLS handshake in progress */
	UP_READY,		/* queries flow */
	UP_DRAINING		/* no new queries; closes when the last answer is in */
};

static const char *const up_state_names[] = {
	"idle", "connecting", "handshaking", "ready", "draining"
};

struct upstream;

struct up_conn {
	enum up_state	 state;
	struct upstream	*up;		/* borrowed: owner */
	int		 fd;
	struct loop_io	 io;
	struct loop_timer timer;	/* connect, idle and dead-peer deadlines */
	struct loop_hook flush;		/* one write per wake-up */
	struct tls_conn	*tls;		/* owned */
	bool		 read_wants_write;
	bool		 write_wants_read;
	struct buf	 rbuf;		/* framed answers being read */
	struct buf	 wbuf;		/* framed queries not yet written */
	struct idmap	*ids;		/* owned: wire ID -> query handle */
	uint64_t	 progress_ms;	/* last answer, or when it became busy */
	uint64_t	 last_used_ms;
	uint64_t	 sent;		/* queries sent on this connection */
	unsigned	 idle_ms;	/* idle close, lowered by keepalive */
	bool		 timer_busy;	/* timer is the busy check, not idle */
	unsigned	 gen;		/* bumped on every close: a callback that
					 * sees it change must not touch the
					 * connection any more */
};

/*
 * Back-off: after a failed connect or handshake, fail_count grows and the
 * upstream is skipped by the selection until backoff_until, which doubles
 * from 250 ms up to 30 s. It is only a preference: when every upstream is
 * backing off, a fresh query still probes the one whose back-off ends
 * first (one connection attempt at a time), so service returns as soon as
 * the upstream does, without a restart.
 */
struct upstream {
	const struct cfg_upstream *cfg;	/* borrowed: the pool's config */
	struct up_pool	*pool;		/* borrowed: owner */
	unsigned	 idx;
	struct up_conn	*conns;		/* owned: cfg connections entries */
	struct tls_session *session;	/* owned: resumption slot */
	unsigned	 fail_count;
	uint64_t	 backoff_until_ms;
	unsigned	 silent;	/* connections in a row that went
					 * quiet with queries waiting; an
					 * accepted answer resets it */
	struct log_limit loglim;
	struct up_stats	 stats;
};

struct up_pool {
	struct loop		*loop;		/* borrowed */
	struct tls_ctx		*tls;		/* borrowed */
	struct config		*cfg;		/* owned copy: a reload makes a
						 * new pool, the old one drains
						 * with the settings it had */
	struct up_callbacks	 cb;
	struct upstream		*ups;		/* owned: cfg->nupstream */
	size_t			 nups;
	bool			 closing;
	uint8_t			 rnd[512];	/* getrandom pool */
	size_t			 rnd_off;
};

static void	conn_on_io(struct loop_io *, uint32_t);
static void	conn_on_timer(struct loop_timer *);
static void	conn_on_flush(struct loop_hook *);
static void	conn_lost(struct up_conn *, bool failed, int err,
		    const char *why);

static uint16_t
pool_random16(void *arg)
{
	struct up_pool *p = arg;
	uint16_t v;

	if (p->rnd_off + 2 > sizeof(p->rnd)) {
		ssize_t n = getrandom(p->rnd, sizeof(p->rnd), 0);

		/* getrandom only fails before the pool is seeded at boot. */
		BUG_ON(n != (ssize_t)sizeof(p->rnd));
		p->rnd_off = 0;
	}
	memcpy(&v, p->rnd + p->rnd_off, 2);
	p->rnd_off += 2;
	return v;
}

static const char *
conn_name(const struct up_conn *c)
{
	return c->up->cfg->text;
}

static void
conn_set_state(struct up_conn *c, enum up_state s)
{
	if (c->state == s)
		return;
	if (log_enabled(LOG_LVL_DEBUG))
		log_debug("upstream connection state", "upstream=%s conn=%td from=%s to=%s",
		    conn_name(c), c - c->up->conns, up_state_names[c->state],
		    up_state_names[s]);
	c->state = s;
}

static void
conn_arm_timer(struct up_conn *c)
{
	struct up_pool *p = c->up->pool;

	switch (c->state) {
	case UP_IDLE:
		loop_timer_stop(p->loop, &c->timer);
		break;
	case UP_CONNECTING:
	case UP_HANDSHAKING:
		/* Set once when the connect starts. */
		break;
	case UP_READY:
	case UP_DRAINING:
		/* Busy: the deadline is never pushed back, so the timer
		 * fires at least once a timeout to check for a dead peer
		 * and to drop IDs whose queries timed out. */
		if (idmap_count(c->ids) > 0) {
			if (!c->timer_busy || !loop_timer_armed(&c->timer))
				loop_timer_set(p->loop, &c->timer,
				    c->progress_ms + p->cfg->timeout_ms);
			c->timer_busy = true;
		} else {
			loop_timer_set(p->loop, &c->timer,
			    c->last_used_ms + c->idle_ms);
			c->timer_busy = false;
		}
		break;
	}
}

static int
conn_io_events(struct up_conn *c, uint32_t ev)
{
	int r = loop_io_set(c->up->pool->loop, &c->io, ev);

	if (r < 0)
		log_warn("epoll_ctl failed", "upstream=%s error=\"%s\"",
		    conn_name(c), proxy_strerror(r));
	return r;
}

/* Closes the connection and returns it to UP_IDLE. No callbacks. */
static void
conn_reset(struct up_conn *c, bool notify)
{
	struct up_pool *p = c->up->pool;

	if (c->state == UP_IDLE)
		return;
	if (c->tls != NULL && notify && c->state >= UP_READY)
		tls_close_notify(c->tls);
	loop_io_stop(p->loop, &c->io);
	loop_timer_stop(p->loop, &c->timer);
	tls_conn_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	c->fd = -1;
	c->up->stats.conns_open--;
	c->rbuf.head = c->rbuf.len = 0;
	c->wbuf.head = c->wbuf.len = 0;
	c->read_wants_write = c->write_wants_read = false;
	c->gen++;
	conn_set_state(c, UP_IDLE);
}

static void
upstream_failed(struct upstream *u, const char *why)
{
	struct up_pool *p = u->pool;
	uint64_t now = loop_now(p->loop), d;
	unsigned shift;

	u->fail_count++;
	shift = u->fail_count > 8 ? 7 : u->fail_count - 1;
	d = (uint64_t)UP_BACKOFF_MIN_MS << shift;
	if (d > UP_BACKOFF_MAX_MS)
		d = UP_BACKOFF_MAX_MS;
	u->backoff_until_ms = now + d;
	u->stats.up = false;
	log_limited(&u->loglim, now, LOG_LVL_WARN, "upstream unavailable",
	    "upstream=%s reason=\"%s\" failures=%u backoff_ms=%llu",
	    u->cfg->text, why, u->fail_count, (unsigned long long)d);
}

/* True if u has a connection other than c that is up or coming up. */
static bool
upstream_has_live(const struct upstream *u, const struct up_conn *c)
{
	unsigned i;

	for (i = 0; i < u->pool->cfg->connections; i++)
		if (&u->conns[i] != c && u->conns[i].state != UP_IDLE &&
		    u->conns[i].state != UP_DRAINING)
			return true;
	return false;
}

/*
 * Closes c and hands every query it carried back to the query layer
 * (failed: count the upstream as tried for them), which may resend them
 * at once (possibly on this same, now idle, connection).
 */
static void
conn_hand_back(struct up_conn *c, bool failed, int err)
{
	struct upstream *u = c->up;
	struct up_pool *p = u->pool;
	unsigned n, i;
	uint64_t *handles;

	n = idmap_count(c->ids);
	handles = malloc((n > 0 ? n : 1) * sizeof(*handles));
	/* Without memory the queries still end, by their own deadlines. */
	n = (unsigned)idmap_drain(c->ids, handles, handles != NULL ? n : 0);
	conn_reset(c, false);
	for (i = 0; i < n; i++)
		p->cb.on_fail(p->cb.arg, handles[i], u->idx, failed, err);
	free(handles);
}

static void
conn_log_lost(struct up_conn *c, const char *why)
{
	struct upstream *u = c->up;

	log_limited(&u->loglim, loop_now(u->pool->loop), LOG_LVL_INFO,
	    "upstream connection lost", "upstream=%s reason=\"%s\" inflight=%u",
	    u->cfg->text, why, idmap_count(c->ids));
}

/*
 * Ends a connection that failed (failed: it never worked) or was lost, and
 * hands its queries back. May be called from the connection's own
 * callbacks, which must return right after.
 */
static void
conn_lost(struct up_conn *c, bool failed, int err, const char *why)
{
	struct upstream *u = c->up;

	u->stats.errors++;
	/*
	 * A connection that failed to come up while a sibling is ready or
	 * coming up says little about the upstream: no back-off, and its
	 * queries retry here rather than count the upstream as tried. A
	 * failed check of the certificate always counts.
	 */
	if (failed && err != -E_VERIFY && upstream_has_live(u, c))
		failed = false;
	if (failed)
		upstream_failed(u, why);
	else
		conn_log_lost(c, why);
	conn_hand_back(c, failed, err);
}

/*
 * Ends a connection that had queries waiting and heard nothing for a whole
 * timeout. Health means answers, not handshakes: UP_SILENT_DOWN of these
 * in a row count against the upstream as a refused connection does (down,
 * back-off, its queries try another upstream), and only an accepted
 * answer brings it back (upstream_answered), whatever handshakes succeed
 * in between. The queries already past their deadline are counted
 * unanswered; the others are handed back with the time they have left.
 */
static void
conn_silent(struct up_conn *c, uint64_t now)
{
	struct upstream *u = c->up;
	struct up_pool *p = u->pool;
	uint64_t oldest;
	bool down;

	u->stats.errors++;
	/* Sent in the millisecond of now - timeout or before: the stamps
	 * have microseconds, the loop's clock (and the query's deadline)
	 * only milliseconds. */
	u->stats.unanswered += idmap_expire(c->ids,
	    (now - p->cfg->timeout_ms + 1) * 1000, &oldest);
	if (u->silent < UINT32_MAX)
		u->silent++;
	down = u->silent >= UP_SILENT_DOWN;
	if (down)
		upstream_failed(u, "no answer within the timeout");
	else
		conn_log_lost(c, "no answer within the timeout");
	conn_hand_back(c, down, -E_TIMEOUT);
}

/* An accepted answer: the upstream serves, whatever came before. */
static void
upstream_answered(struct upstream *u)
{
	if (u->silent == 0)
		return;
	if (u->silent >= UP_SILENT_DOWN) {
		u->fail_count = 0;
		u->backoff_until_ms = 0;
		u->stats.up = true;
		log_info("upstream answers again", "upstream=%s", u->cfg->text);
	}
	u->silent = 0;
}

/* Writes what is queued, as far as the socket takes it. */
static void
conn_flush(struct up_conn *c)
{
	size_t n;
	enum tls_status s;

	c->write_wants_read = false;
	while (c->wbuf.len > 0) {
		s = tls_write(c->tls, buf_start(&c->wbuf), c->wbuf.len, &n);
		if (s == TLS_OK) {
			buf_consume(&c->wbuf, n);
			continue;
		}
		if (s == TLS_WANT_WRITE) {
			(void)conn_io_events(c, LOOP_READ | LOOP_WRITE);
			return;
		}
		if (s == TLS_WANT_READ) {
			c->write_wants_read = true;
			return;
		}
		conn_lost(c, false, -E_TLS, tls_error(c->tls));
		return;
	}
	if (!c->read_wants_write)
		(void)conn_io_events(c, LOOP_READ);
}

static void
conn_on_flush(struct loop_hook *h)
{
	struct up_conn *c = h->arg;

	if (c->state == UP_READY || c->state == UP_DRAINING)
		conn_flush(c);
}

/*
 * Closes a draining connection once no query is outstanding on it. Bytes
 * still queued then belong to queries whose IDs are gone (timed out): a
 * peer that stopped reading must not keep the connection open for them.
 */
static void
conn_maybe_close_drained(struct up_conn *c)
{
	if (c->state == UP_DRAINING && idmap_count(c->ids) == 0)
		conn_reset(c, true);
}

/* Handles one framed answer. Returns 0, or -E_GONE if the connection ended. */
static int
conn_on_answer(struct up_conn *c, const uint8_t *msg, size_t len)
{
	struct up_pool *p = c->up->pool;
	uint64_t handle, sent_us;
	uint16_t id;
	int r, keepalive = -1;

	if (len < DNS_HDR_LEN) {
		conn_lost(c, false, -E_MALFORMED, "short message from upstream");
		return -E_GONE;
	}
	id = dns_get_id(msg);
	if (!idmap_find(c->ids, id, &handle, &sent_us)) {
		/* Not outstanding here: a stray or spoofed answer. */
		c->up->stats.mismatched++;
		return 0;
	}
	r = p->cb.on_answer(p->cb.arg, handle, msg, len, &keepalive);
	if (r == -E_MISMATCH) {
		/* A rejected answer is no sign that the peer is serving. */
		c->up->stats.mismatched++;
		return 0;
	}
	c->progress_ms = loop_now(p->loop);
	if (r == -E_GONE)
		c->up->stats.late++;
	else {
		c->up->stats.answers++;
		hist_observe(&c->up->stats.latency,
		    loop_now_us(p->loop) - sent_us);
		upstream_answered(c->up);
	}
	idmap_remove(c->ids, id);
	c->last_used_ms = c->progress_ms;
	if (keepalive == 0)
		conn_set_state(c, UP_DRAINING);
	else if (keepalive > 0) {
		unsigned ms = (unsigned)keepalive * 100;

		/* Close a little before the server would. */
		ms = ms > 1000 ? ms - 500 : ms / 2;
		if (ms < c->idle_ms)
			c->idle_ms = ms < 100 ? 100 : ms;
	}
	return 0;
}

static void
conn_read(struct up_conn *c)
{
	const uint8_t *msg;
	size_t n, len;
	enum tls_status s;
	int r;

	c->read_wants_write = false;
	for (;;) {
		if (buf_room(&c->rbuf) == 0)
			buf_compact(&c->rbuf);
		s = tls_read(c->tls, buf_tail(&c->rbuf), buf_room(&c->rbuf), &n);
		if (s == TLS_WANT_READ)
			break;
		if (s == TLS_WANT_WRITE) {
			c->read_wants_write = true;
			(void)conn_io_events(c, LOOP_READ | LOOP_WRITE);
			break;
		}
		if (s == TLS_CLOSED) {
			conn_lost(c, false, -E_UPSTREAM, "closed by upstream");
			return;
		}
		if (s != TLS_OK) {
			conn_lost(c, false, -E_TLS, tls_error(c->tls));
			return;
		}
		buf_produce(&c->rbuf, n);
		while ((r = buf_frame(&c->rbuf, &msg, &len)) == 1) {
			if (conn_on_answer(c, msg, len) < 0)
				return;
			buf_consume(&c->rbuf, 2 + len);
		}
		if (r < 0) {
			conn_lost(c, false, -E_MALFORMED, "zero-length frame");
			return;
		}
		/* Nothing buffered in OpenSSL: the socket is drained or
		 * nearly; epoll is level-triggered and wakes us for more,
		 * which saves an EAGAIN read on every wake-up. */
		if (!tls_pending(c->tls))
			break;
	}
	if (c->state == UP_DRAINING)
		conn_maybe_close_drained(c);
	if (c->state != UP_IDLE)
		conn_arm_timer(c);
}

static void
conn_handshake(struct up_conn *c)
{
	struct upstream *u = c->up;
	enum tls_status s = tls_handshake(c->tls);

	switch (s) {
	case TLS_OK:
		u->stats.handshakes++;
		if (tls_resumed(c->tls))
			u->stats.resumed++;
		/* An upstream that went silent stays down (and backing
		 * off) until it answers: a handshake proves little. */
		if (u->silent < UP_SILENT_DOWN) {
			u->fail_count = 0;
			u->backoff_until_ms = 0;
			u->stats.up = true;
		}
		log_debug("upstream connected", "upstream=%s version=%s resumed=%s",
		    u->cfg->text, tls_version(c->tls),
		    tls_resumed(c->tls) ? "yes" : "no");
		conn_set_state(c, u->pool->closing ? UP_DRAINING : UP_READY);
		c->progress_ms = c->last_used_ms = loop_now(u->pool->loop);
		conn_arm_timer(c);
		conn_flush(c);
		return;
	case TLS_WANT_READ:
		(void)conn_io_events(c, LOOP_READ);
		return;
	case TLS_WANT_WRITE:
		(void)conn_io_events(c, LOOP_WRITE);
		return;
	case TLS_CLOSED:
	case TLS_ERROR:
		conn_lost(c, true, strstr(tls_error(c->tls), "verify") ?
		    -E_VERIFY : -E_TLS, tls_error(c->tls));
		return;
	}
}

static void
conn_on_io(struct loop_io *io, uint32_t ev)
{
	struct up_conn *c = io->arg;
	struct up_pool *p = c->up->pool;
	unsigned gen;
	int err;

	switch (c->state) {
	case UP_IDLE:
		return;
	case UP_CONNECTING:
		if ((err = sock_error(c->fd)) != 0) {
			conn_lost(c, true, err, proxy_strerror(err));
			return;
		}
		c->tls = tls_conn_new(p->tls, c->fd, c->up->cfg->auth_name,
		    (const uint8_t (*)[32])c->up->cfg->pins, c->up->cfg->npins,
		    c->up->session);
		if (c->tls == NULL) {
			conn_lost(c, true, -ENOMEM, "cannot start TLS");
			return;
		}
		conn_set_state(c, UP_HANDSHAKING);
		conn_handshake(c);
		return;
	case UP_HANDSHAKING:
		conn_handshake(c);
		return;
	case UP_READY:
	case UP_DRAINING:
		gen = c->gen;
		if ((ev & LOOP_READ) || c->read_wants_write)
			conn_read(c);
		if (c->gen != gen)
			return;
		if ((ev & LOOP_WRITE) || c->write_wants_read)
			conn_flush(c);
		return;
	}
}

static void
conn_on_timer(struct loop_timer *t)
{
	struct up_conn *c = t->arg;

	switch (c->state) {
	case UP_IDLE:
		return;
	case UP_CONNECTING:
	case UP_HANDSHAKING:
		conn_lost(c, true, -E_TIMEOUT, "connect or handshake timed out");
		return;
	case UP_READY:
	case UP_DRAINING:
		if (idmap_count(c->ids) > 0) {
			struct up_pool *p = c->up->pool;
			uint64_t now = loop_now(p->loop), oldest_us;
			size_t n;

			if (now >= c->progress_ms + p->cfg->timeout_ms) {
				/* Queries outstanding and nothing heard for a
				 * whole timeout: the peer is gone without
				 * telling us, or never answers. */
				conn_silent(c, now);
				return;
			}
			/* Answers flow, but some queries were never
			 * answered: their queries are gone (SERVFAIL at their
			 * deadline); free their IDs. */
			n = idmap_expire(c->ids, (now - p->cfg->timeout_ms) * 1000,
			    &oldest_us);
			c->up->stats.unanswered += n;
			if (idmap_count(c->ids) > 0) {
				uint64_t d = oldest_us / 1000 + p->cfg->timeout_ms;

				if (d > c->progress_ms + p->cfg->timeout_ms)
					d = c->progress_ms + p->cfg->timeout_ms;
				/* Never at or before now: the timer would fire
				 * again in this same pass, for ever. */
				if (d <= now)
					d = now + 1;
				loop_timer_set(p->loop, &c->timer, d);
				return;
			}
			c->timer_busy = false;
			if (c->state == UP_DRAINING) {
				conn_maybe_close_drained(c);
				return;
			}
			conn_arm_timer(c);
			return;
		}
		log_debug("upstream idle close", "upstream=%s", conn_name(c));
		conn_reset(c, true);
		return;
	}
}

static int
conn_open(struct up_conn *c)
{
	struct up_pool *p = c->up->pool;
	const struct cfg_addr *a = &c->up->cfg->addr;
	int fd, r;

	fd = sock_connect((const struct sockaddr *)&a->ss, a->len);
	if (fd < 0)
		return fd;
	c->fd = fd;
	c->io.cb = conn_on_io;
	c->io.arg = c;
	if ((r = loop_io_start(p->loop, &c->io, fd, LOOP_WRITE)) < 0) {
		close(fd);
		c->fd = -1;
		return r;
	}
	c->up->stats.conns_open++;
	c->up->stats.conns_opened++;
	c->sent = 0;
	c->idle_ms = p->cfg->idle_timeout_ms;
	conn_set_state(c, UP_CONNECTING);
	loop_timer_set(p->loop, &c->timer, loop_now(p->loop) + p->cfg->timeout_ms);
	return 0;
}

/* Picks the connection of u that should take one more query, opening one
 * when that spreads load or none is open. NULL if none can. */
static struct up_conn *
upstream_pick_conn(struct upstream *u, bool probe, int *err)
{
	struct up_pool *p = u->pool;
	struct up_conn *best = NULL, *idle = NULL;
	bool opening = false;
	unsigned i;

	for (i = 0; i < p->cfg->connections; i++) {
		struct up_conn *c = &u->conns[i];

		if (c->state == UP_IDLE) {
			if (idle == NULL)
				idle = c;
			continue;
		}
		if (c->state == UP_CONNECTING || c->state == UP_HANDSHAKING)
			opening = true;
		if (c->state == UP_DRAINING || idmap_full(c->ids))
			continue;
		/*
		 * A ready connection whose write for this wake-up is already
		 * queued takes the query too: the wake-up's queries then go
		 * in one TLS record and one write, which costs both ends less
		 * than a record per connection. Load still spreads, since the
		 * first query of each wake-up picks by the counts below.
		 */
		if (c->state == UP_READY && c->flush.queued)
			return c;
		if (best == NULL || idmap_count(c->ids) < idmap_count(best->ids) ||
		    (idmap_count(c->ids) == idmap_count(best->ids) &&
		    c->state == UP_READY))
			best = c;
	}
	if (idle != NULL && !(probe && opening) &&
	    (best == NULL || idmap_count(best->ids) >= UP_SPREAD)) {
		if ((*err = conn_open(idle)) == 0)
			return idle;
		upstream_failed(u, proxy_strerror(*err));
	}
	return best;
}

/* True if a working connection has no room left for another query: a
 * send that finds no connection then failed for lack of room of ours,
 * not because the upstreams are down. */
static bool
pool_full(const struct up_pool *p)
{
	size_t i;
	unsigned j;

	for (i = 0; i < p->nups; i++)
		for (j = 0; j < p->cfg->connections; j++)
			if (p->ups[i].conns[j].state == UP_READY &&
			    idmap_full(p->ups[i].conns[j].ids))
				return true;
	return false;
}

int
up_send(struct up_pool *p, uint64_t handle, const uint8_t *msg, size_t len,
    uint32_t avoid)
{
	uint64_t now = loop_now(p->loop);
	struct upstream *u = NULL;
	struct up_conn *c = NULL;
	uint8_t hdr[2];
	uint16_t id;
	size_t i;
	int err = 0;

	if (len < DNS_HDR_LEN || len > DNS_MSG_MAX || p->closing)
		return -E_UPSTREAM;
	/* First the upstreams not backing off, in order; then, if none could
	 * take it, a probe of the one whose back-off ends first. */
	for (i = 0; i < p->nups && c == NULL; i++) {
		if (avoid & (1u << i))
			continue;
		u = &p->ups[i];
		if (u->backoff_until_ms > now)
			continue;
		c = upstream_pick_conn(u, false, &err);
		if (c == NULL && err != 0)
			avoid |= 1u << i;	/* it just failed: no probe */
		err = 0;
	}
	while (c == NULL) {
		struct upstream *pick = NULL;

		for (i = 0; i < p->nups; i++) {
			if (avoid & (1u << i))
				continue;
			if (pick == NULL ||
			    p->ups[i].backoff_until_ms < pick->backoff_until_ms)
				pick = &p->ups[i];
		}
		if (pick == NULL)
			return pool_full(p) ? -EBUSY : -E_UPSTREAM;
		u = pick;
		if ((c = upstream_pick_conn(u, true, &err)) == NULL)
			avoid |= 1u << u->idx;
	}
	if (c->wbuf.cap - c->wbuf.len < len + 2)
		return -EBUSY;		/* ours, not the upstream's */
	if (idmap_count(c->ids) == 0)
		c->progress_ms = now;
	if (idmap_add(c->ids, handle, loop_now_us(p->loop), pool_random16, p,
	    &id) < 0)
		return -EBUSY;
	hdr[0] = (uint8_t)(len >> 8);
	hdr[1] = (uint8_t)len;
	/* Room was checked above: neither append can fail. */
	BUG_ON(buf_append(&c->wbuf, hdr, 2) != 0);
	BUG_ON(buf_append(&c->wbuf, msg, len) != 0);
	dns_set_id(buf_tail(&c->wbuf) - len, id);
	u->stats.queries++;
	if (c->sent++ > 0)
		u->stats.reused++;
	c->last_used_ms = now;
	if (c->state == UP_READY || c->state == UP_DRAINING) {
		loop_hook_queue(p->loop, &c->flush);
		conn_arm_timer(c);
	}
	return (int)u->idx;
}

struct up_pool *
up_pool_new(struct loop *loop, struct tls_ctx *tls, const struct config *cfg,
    const struct up_callbacks *cb)
{
	struct up_pool *p;
	size_t i, j, wcap;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->loop = loop;
	p->tls = tls;
	if ((p->cfg = malloc(sizeof(*p->cfg))) == NULL) {
		free(p);
		return NULL;
	}
	memcpy(p->cfg, cfg, sizeof(*cfg));
	cfg = p->cfg;
	p->cb = *cb;
	p->rnd_off = sizeof(p->rnd);
	p->nups = cfg->nupstream;
	if ((p->ups = calloc(p->nups, sizeof(*p->ups))) == NULL)
		goto fail;
	/* Room for every slot's query, padded, with its length prefix. */
	wcap = (size_t)cfg->max_inflight * 320 + 2 + DNS_MSG_MAX;
	for (i = 0; i < p->nups; i++) {
		struct upstream *u = &p->ups[i];

		u->cfg = &cfg->upstream[i];
		u->pool = p;
		u->idx = (unsigned)i;
		/* Reachable until an attempt says otherwise. */
		u->stats.up = true;
		if ((u->session = tls_session_new()) == NULL)
			goto fail;
		if ((u->conns = calloc(cfg->connections, sizeof(*u->conns))) == NULL)
			goto fail;
		for (j = 0; j < cfg->connections; j++) {
			struct up_conn *c = &u->conns[j];

			c->up = u;
			c->fd = -1;
			c->timer.cb = conn_on_timer;
			c->timer.arg = c;
			c->flush.cb = conn_on_flush;
			c->flush.arg = c;
			if (buf_init(&c->rbuf, UP_RBUF_CAP) < 0 ||
			    buf_init(&c->wbuf, wcap) < 0)
				goto fail;
			if ((c->ids = idmap_new(cfg->max_inflight)) == NULL)
				goto fail;
		}
	}
	return p;
fail:
	up_pool_free(p);
	return NULL;
}

void
up_pool_free(struct up_pool *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; p->ups != NULL && i < p->nups; i++) {
		struct upstream *u = &p->ups[i];

		for (j = 0; u->conns != NULL && j < p->cfg->connections; j++) {
			struct up_conn *c = &u->conns[j];

			conn_reset(c, true);
			loop_hook_cancel(p->loop, &c->flush);
			buf_fini(&c->rbuf);
			buf_fini(&c->wbuf);
			idmap_free(c->ids);
		}
		free(u->conns);
		tls_session_free(u->session);
	}
	free(p->ups);
	free(p->cfg);
	free(p);
}

void
up_pool_shutdown(struct up_pool *p)
{
	size_t i, j;

	p->closing = true;
	for (i = 0; i < p->nups; i++)
		for (j = 0; j < p->cfg->connections; j++) {
			struct up_conn *c = &p->ups[i].conns[j];

			if (c->state == UP_IDLE)
				continue;
			if (idmap_count(c->ids) == 0 &&
			    c->state != UP_CONNECTING && c->state != UP_HANDSHAKING)
				conn_reset(c, true);
			else if (c->state == UP_READY)
				conn_set_state(c, UP_DRAINING);
		}
}

bool
up_pool_idle(const struct up_pool *p)
{
	size_t i;

	for (i = 0; i < p->nups; i++)
		if (p->ups[i].stats.conns_open > 0)
			return false;
	return true;
}

size_t
up_pool_count(const struct up_pool *p)
{
	return p->nups;
}

const struct up_stats *
up_pool_stats(const struct up_pool *p, unsigned up)
{
	return &p->ups[up].stats;
}

const char *
up_pool_name(const struct up_pool *p, unsigned up)
{
	return p->ups[up].cfg->text;
}
