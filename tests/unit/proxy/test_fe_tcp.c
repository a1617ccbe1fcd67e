/*
 * The TCP front end driven deterministically: the loop's clock is fake,
 * a real query table sits underneath with a local zone ("test") whose
 * queries go in plain DNS to a UDP responder inside this test on loopback
 * (answering at once, or holding queries until told), and the clients are
 * plain sockets of this process. Between loop passes the test pumps the
 * responder and reads the clients; no namespace, no sleep. What is checked:
 *   - a framed query is answered; pipelined ones are answered as they
 *     complete, out of order;
 *   - the idle timeout closes a connection with nothing in flight, measured
 *     from its last activity, not one with a query in flight; a half-sent
 *     prefix or message does not keep it open, nor does dripping it: a
 *     frame has the idle timeout from its first byte, and the next frame's
 *     time starts with its own first byte;
 *   - bad framing (a zero length, a length above the most we take) closes;
 *   - the per-connection pipeline bound: reading stops at it (the bytes
 *     stay in the kernel) and later queries are taken as answers go; a
 *     reset while reading is stopped closes the connection at once;
 *   - a client that stops reading: reading pauses at the write backlog and
 *     resumes when it reads; a backlog that overflows closes it; one that
 *     stays unread while nothing is in flight is closed at the idle timeout;
 *   - the connection cap and EMFILE: accepting pauses (counted), the
 *     backlog waits in the kernel and is taken when a slot frees or the
 *     pause ends;
 *   - a client that shuts its side still gets its answers;
 *   - stop: no new connections, idle clients closed at once, busy ones
 *     after their answers (frames already read included);
 *   - transparent use: the peer's UID from sock_diag, our own UID taken
 *     for a forwarding loop (answered, never forwarded);
 *   - a wildcard listener: a client that connected to it on any local
 *     address, not redirected, is not taken for a redirected one whose
 *     original destination is that address (which would loop back to us);
 *   - all of it under connection tracking: as root the test runs in a
 *     network namespace of its own with a "ct state new accept" rule, as
 *     on a host with a stateful firewall, where SO_ORIGINAL_DST answers
 *     for connections nothing redirected;
 *   - the counters, and the stat table that exports them.
 */
#include "proxy/fe_tcp.h"

#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>

#include <sched.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/loop.h"
#include "proxy/query.h"
#include "proxy/resolv.h"
#include "proxy/tls.h"
#include "tests/unit/proxy/dotsrv.h"
#include "tests/unit/tap.h"

#define IDLE_MS		1000
#define TIMEOUT_MS	3000
#define MAXHELD		512

static uint64_t fake_now = 100000;

static uint64_t
clock_fn(void *arg)
{
	(void)arg;
	return fake_now;
}

/* The local resolver: plain DNS on UDP, answering a TXT record of pad
 * bytes, at once or when told. */
struct held {
	uint8_t			msg[512];
	size_t			len;
	struct sockaddr_storage	from;
	socklen_t		fromlen;
};

static struct resp {
	int		fd;
	uint16_t	port;
	bool		hold;		/* keep queries until resp_answer */
	size_t		pad;		/* TXT bytes in each answer */
	int		received;
	struct held	q[MAXHELD];
	int		nheld;
} resp;

static void
resp_send(const struct held *h)
{
	static uint8_t a[DNS_MSG_MAX];
	size_t qend = 12, n, left, chunk;

	while (qend < h->len && h->msg[qend] != 0)
		qend += (size_t)h->msg[qend] + 1;
	qend += 1 + 4;
	if (qend > h->len)
		return;
	memcpy(a, h->msg, qend);
	a[2] = 0x81;	/* QR, RD */
	a[3] = 0x80;	/* RA, NOERROR */
	a[4] = 0; a[5] = 1;
	a[6] = 0; a[7] = 1;
	memset(a + 8, 0, 4);
	n = qend;
	a[n++] = 0xc0; a[n++] = 12;
	a[n++] = 0; a[n++] = DNS_TYPE_TXT;
	a[n++] = 0; a[n++] = 1;
	a[n++] = 0; a[n++] = 0; a[n++] = 0; a[n++] = 60;
	left = resp.pad > 0 ? resp.pad : 1;
	/* rdata: strings of at most 255 bytes, each with its length byte */
	{
		size_t rd = left + (left + 254) / 255;

		a[n++] = (uint8_t)(rd >> 8);
		a[n++] = (uint8_t)rd;
	}
	while (left > 0) {
		chunk = left > 255 ? 255 : left;
		a[n++] = (uint8_t)chunk;
		memset(a + n, 'x', chunk);
		n += chunk;
		left -= chunk;
	}
	(void)sendto(resp.fd, a, n, 0, (const struct sockaddr *)&h->from,
	    h->fromlen);
}

static void
resp_step(void)
{
	struct held h;
	ssize_t n;

	for (;;) {
		h.fromlen = sizeof(h.from);
		n = recvfrom(resp.fd, h.msg, sizeof(h.msg), 0,
		    (struct sockaddr *)&h.from, &h.fromlen);
		if (n <= 0)
			return;
		h.len = (size_t)n;
		resp.received++;
		if (!resp.hold)
			resp_send(&h);
		else if (resp.nheld < MAXHELD)
			resp.q[resp.nheld++] = h;
	}
}

/* Answers the i-th held query (in arrival order). */
static void
resp_answer(int i)
{
	if (i < resp.nheld)
		resp_send(&resp.q[i]);
}

static void
resp_reset(bool hold, size_t pad)
{
	resp_step();
	resp.hold = hold;
	resp.pad = pad;
	resp.received = 0;
	resp.nheld = 0;
}

static int
resp_open(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	resp.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (resp.fd == -1 || bind(resp.fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(resp.fd, (struct sockaddr *)&sa, &sl))
		return -1;
	resp.port = ntohs(sa.sin_port);
	return 0;
}

/* A client of the front end. */
struct cli {
	int		fd;
	uint8_t		in[1 << 17];
	size_t		inlen;
	int		answers;
	uint16_t	ids[256];	/* of the answers, in arrival order */
	int		rcode[256];
	size_t		bytes;		/* answer bytes received */
	bool		eof;		/* orderly close seen */
	bool		reset;		/* an error seen */
};

static struct loop *loop;

/* Reads what the client socket has; collects whole answers. */
static void
cli_poll(struct cli *c)
{
	ssize_t n;

	while (!c->eof && !c->reset) {
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (n == 0)
			c->eof = true;
		else if (n < 0) {
			if (errno != EAGAIN)
				c->reset = true;
			break;
		} else
			c->inlen += (size_t)n;
		while (c->inlen >= 2) {
			size_t fl = (size_t)c->in[0] << 8 | c->in[1];

			if (c->inlen < 2 + fl)
				break;
			if (fl >= 12 && c->answers < 256) {
				c->ids[c->answers] =
				    (uint16_t)(c->in[2] << 8 | c->in[3]);
				c->rcode[c->answers] = c->in[5] & 0x0f;
			}
			c->answers++;
			c->bytes += fl;
			memmove(c->in, c->in + 2 + fl, c->inlen - 2 - fl);
			c->inlen -= 2 + fl;
		}
	}
}

static int
cli_open(struct cli *c, const struct sockaddr_in *to, int rcvbuf)
{
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return -1;
	if (rcvbuf > 0)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		    sizeof(rcvbuf));
	/* No Nagle: a later query must not wait for a delayed ACK. */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Blocking: the kernel completes it from the listen backlog even
	 * when the front end does not accept. */
	if (connect(c->fd, (const struct sockaddr *)to, sizeof(*to)) == -1)
		return -errno;
	return fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

static void
cli_close(struct cli *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

/* Writes a query (framed) for a TXT record of name, with id. */
static size_t
query_make(uint8_t *out, uint16_t id, const char *name)
{
	size_t n = mkq(out + 2, id, name, DNS_TYPE_TXT, false);

	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	return n + 2;
}

static int
cli_query(struct cli *c, uint16_t id, const char *name)
{
	uint8_t m[300];
	size_t n = query_make(m, id, name);

	return send(c->fd, m, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static bool
cli_has(const struct cli *c, uint16_t id)
{
	int i;

	for (i = 0; i < c->answers && i < 256; i++)
		if (c->ids[i] == id)
			return true;
	return false;
}

/* Loop passes and responder steps, the fake clock standing still. */
static void
pump(int n)
{
	int i;

	for (i = 0; i < n; i++) {
		(void)loop_run_once(loop, 1);
		resp_step();
	}
}

/* Pumps until cond holds, for at most 10 s of real time (a loaded machine
 * under a sanitizer still gets there; the fake clock stands). */
#define PUMP_UNTIL(cond) do {						\
	uint64_t end_ = loop_clock_us() + 10000000;			\
	while (!(cond) && loop_clock_us() < end_)			\
		pump(1);						\
} while (0)

static void
at(uint64_t t)
{
	fake_now = t;
	loop_update_now(loop);
}

/* The accepted socket of client c, found among this process's fds by
 * its peer address. -1 if none. */
static int
server_fd_of(const struct cli *c)
{
	struct sockaddr_in me, peer;
	socklen_t sl = sizeof(me);
	int fd;

	if (getsockname(c->fd, (struct sockaddr *)&me, &sl) == -1)
		return -1;
	for (fd = 3; fd < 1024; fd++) {
		sl = sizeof(peer);
		if (fd == c->fd ||
		    getpeername(fd, (struct sockaddr *)&peer, &sl) == -1 ||
		    sl != sizeof(peer) || peer.sin_family != AF_INET)
			continue;
		if (peer.sin_port == me.sin_port &&
		    peer.sin_addr.s_addr == me.sin_addr.s_addr)
			return fd;
	}
	return -1;
}

/* Bytes the client sent that the front end has not read. */
static int
unread_at_server(const struct cli *c)
{
	int fd = server_fd_of(c), n = -1;

	if (fd == -1 || ioctl(fd, FIONREAD, &n) == -1)
		return -1;
	return n;
}

/* The front end and the query table under it. */
struct env {
	struct config		cfg;
	struct resolv		rc;
	struct query_table	*qt;
	struct fe_tcp		*fe;
	struct sockaddr_in	addr;	/* the listener */
};

static struct tls_ctx *tls;
static in_addr_t listen_addr;	/* network order; loopback unless changed */

/* The one listening TCP socket in this process: the front end's. */
static int
find_listener(struct sockaddr_in *out)
{
	socklen_t sl;
	int fd, v;

	for (fd = 3; fd < 1024; fd++) {
		sl = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &sl) == -1 ||
		    v == 0)
			continue;
		sl = sizeof(*out);
		if (getsockname(fd, (struct sockaddr *)out, &sl) == 0 &&
		    out->sin_family == AF_INET)
			return 0;
	}
	return -1;
}

static int
env_open_with(struct env *e, unsigned clients, unsigned pipeline,
    const char *extra)
{
	char nc[16], np[16], idle[16], tmo[16], err[256];
	struct sockaddr_in sa, *ns;
	char *argv[] = { (char *)(uintptr_t)"dotproxy",
	    (char *)(uintptr_t)"--upstream", (char *)(uintptr_t)"127.0.0.1@9#up.test",
	    (char *)(uintptr_t)"--local-zone", (char *)(uintptr_t)"test",
	    (char *)(uintptr_t)"--cache-size", (char *)(uintptr_t)"0",
	    (char *)(uintptr_t)"--client-idle-timeout", idle,
	    (char *)(uintptr_t)"--timeout", tmo,
	    (char *)(uintptr_t)"--max-clients", nc,
	    (char *)(uintptr_t)"--max-pipeline", np,
	    (char *)(uintptr_t)extra, NULL };

	(void)snprintf(nc, sizeof(nc), "%u", clients);
	(void)snprintf(np, sizeof(np), "%u", pipeline);
	(void)snprintf(idle, sizeof(idle), "%u", IDLE_MS);
	(void)snprintf(tmo, sizeof(tmo), "%u", TIMEOUT_MS);
	memset(e, 0, sizeof(*e));
	if (config_parse(&e->cfg, extra != NULL ? 16 : 15, argv, NULL, err,
	    sizeof(err)) != 0) {
		printf("# config: %s\n", err);
		return -1;
	}
	ns = (struct sockaddr_in *)(void *)&e->rc.ns[0];
	ns->sin_family = AF_INET;
	ns->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ns->sin_port = htons(resp.port);
	e->rc.ns_len[0] = sizeof(*ns);
	e->rc.nns = 1;
	if ((e->qt = query_table_new(loop, tls, &e->cfg, &e->rc)) == NULL ||
	    (e->fe = fe_tcp_new(loop, e->qt, &e->cfg)) == NULL)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = listen_addr;
	if (fe_tcp_listen(e->fe, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	return find_listener(&e->addr);
}

static int
env_open(struct env *e, unsigned clients, unsigned pipeline)
{
	return env_open_with(e, clients, pipeline, NULL);
}

static void
env_close(struct env *e)
{
	fe_tcp_free(e->fe);
	query_table_free(e->qt);
	pump(2);
}

static const struct fe_tcp_stats *
st(const struct env *e)
{
	return fe_tcp_stats(e->fe);
}

static struct cli c1, c2, c3, c4;

/* Answers, pipelining, idle, half-sent frames, framing errors. */
static void
test_basic(void)
{
	static struct env e;
	uint8_t m[300];
	uint64_t t0;
	size_t n;

	ok(env_open(&e, 4, 8) == 0, "front end on 127.0.0.1, table, local zone");
	resp_reset(false, 0);
	t0 = fake_now;

	ok(cli_open(&c1, &e.addr, 0) == 0, "client connects");
	ok(cli_query(&c1, 0x1111, "a1.test") == 0, "sends a framed query");
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
	is(c1.answers, 1, "one answer");
	is(c1.ids[0], 0x1111, "with the client's ID");
	is(c1.rcode[0], 0, "NOERROR from the local resolver");
	is(resp.received, 1, "the resolver saw the query");
	is(st(&e)->accepted, 1, "accepted counted");
	is(st(&e)->open, 1, "one open");
	is(fe_tcp_open(e.fe), 1, "fe_tcp_open agrees");
	is(query_stats(e.qt)->queries_tcp, 1, "the table saw a TCP query");
	is(query_stats(e.qt)->orig_fallback, 1,
	    "no original destination (not redirected): resolv.conf's server");

	/* Two in one segment, answered in the reverse order. */
	resp_reset(true, 0);
	n = query_make(m, 0x2222, "b1.test");
	n += query_make(m + n, 0x3333, "b2.test");
	ok(send(c1.fd, m, n, 0) == (ssize_t)n, "two pipelined queries");
	PUMP_UNTIL(resp.received == 2);
	is(resp.received, 2, "both went on before either was answered");
	resp_answer(1);
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 2));
	is(c1.answers, 2, "the second is answered first");
	is(c1.ids[1], 0x3333, "out of order");
	resp_answer(0);
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 3));
	is(c1.ids[2], 0x2222, "then the first");

	/* Idle: nothing in flight, closed IDLE_MS after the last activity. */
	at(t0 + IDLE_MS - 1);
	pump(3);
	cli_poll(&c1);
	ok(!c1.eof && st(&e)->open == 1, "open just before the idle timeout");
	is(st(&e)->closed_idle, 0, "no idle close yet");
	at(t0 + IDLE_MS);
	pump(3);
	cli_poll(&c1);
	ok(c1.eof, "closed at the idle timeout");
	is(st(&e)->closed_idle, 1, "counted as idle");
	is(st(&e)->open, 0, "none open");
	cli_close(&c1);

	/* A query in flight holds the connection open past the idle
	 * timeout; the clock starts again when it is answered. */
	t0 = fake_now;
	resp_reset(true, 0);
	ok(cli_open(&c1, &e.addr, 0) == 0 && cli_query(&c1, 0x4444, "c1.test") == 0,
	    "a query the resolver holds");
	PUMP_UNTIL(resp.received == 1);
	at(t0 + 2 * IDLE_MS);
	pump(3);
	cli_poll(&c1);
	ok(!c1.eof && st(&e)->open == 1, "not idle while a query is in flight");
	is(st(&e)->closed_idle, 1, "no idle close counted");
	resp_answer(0);
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
	is(c1.answers, 1, "answered late");
	at(t0 + 3 * IDLE_MS - 1);
	pump(3);
	cli_poll(&c1);
	ok(!c1.eof, "the idle clock restarted at the answer");
	at(t0 + 3 * IDLE_MS);
	pump(3);
	cli_poll(&c1);
	ok(c1.eof, "then idle closes it");
	is(st(&e)->closed_idle, 2, "counted");
	cli_close(&c1);

	/* A query never answered: SERVFAIL at the query timeout, then idle. */
	t0 = fake_now;
	resp_reset(true, 0);
	ok(cli_open(&c1, &e.addr, 0) == 0 && cli_query(&c1, 0x5555, "d1.test") == 0,
	    "a query never answered");
	PUMP_UNTIL(resp.received == 1);
	at(t0 + TIMEOUT_MS - 1);
	pump(3);
	cli_poll(&c1);
	is(c1.answers, 0, "nothing before the query timeout");
	ok(!c1.eof, "and still open");
	at(t0 + TIMEOUT_MS);
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
	is(c1.answers, 1, "an answer at the query timeout");
	is(c1.rcode[0], 2, "SERVFAIL");
	ok(!c1.eof, "the connection stays");
	at(t0 + TIMEOUT_MS + IDLE_MS);
	pump(3);
	cli_poll(&c1);
	ok(c1.eof, "idle closes it after");
	cli_close(&c1);

	/* Half a length prefix, then nothing. */
	resp_reset(false, 0);
	t0 = fake_now;
	ok(cli_open(&c1, &e.addr, 0) == 0 && send(c1.fd, "\0", 1, 0) == 1,
	    "one byte of a length prefix");
	pump(3);
	at(t0 + IDLE_MS - 1);
	pump(3);
	cli_poll(&c1);
	ok(!c1.eof, "open before the timeout");
	at(t0 + IDLE_MS);
	pump(3);
	cli_poll(&c1);
	ok(c1.eof, "a half prefix does not keep it open");
	cli_close(&c1);

	/* Half a message; more of it later buys no time: a frame has the
	 * idle timeout from its first byte (a byte dripped per timeout would
	 * otherwise hold the slot for ever). */
	t0 = fake_now;
	n = query_make(m, 0x6666, "e1.test");
	ok(cli_open(&c1, &e.addr, 0) == 0 && send(c1.fd, m, 6, 0) == 6,
	    "the prefix and 4 bytes of a message");
	pump(3);
	at(t0 + IDLE_MS / 2);
	ok(send(c1.fd, m + 6, 4, 0) == 4, "4 more bytes");
	pump(3);
	at(t0 + IDLE_MS - 1);
	ok(send(c1.fd, m + 10, 1, 0) == 1, "and one more");
	pump(3);
	cli_poll(&c1);
	ok(!c1.eof, "open until the frame's time is up");
	at(t0 + IDLE_MS);
	pump(3);
	cli_poll(&c1);
	ok(c1.eof, "a frame still incomplete an idle timeout after its first "
	    "byte is closed, however it drips");
	is(c1.answers, 0, "unanswered");
	is(resp.received, 0, "nothing went to the resolver");
	is(st(&e)->closed_idle, 5, "each counted as idle");
	cli_close(&c1);

	/* A frame completed in pieces is answered; the next frame's time
	 * starts with its own first byte, not the previous one's. */
	t0 = fake_now;
	n = query_make(m, 0x6767, "e2.test");
	ok(cli_open(&c1, &e.addr, 0) == 0 && send(c1.fd, m, 6, 0) == 6,
	    "a frame begun");
	pump(3);
	at(t0 + IDLE_MS - 1);
	ok(send(c1.fd, m + 6, n - 6, 0) == (ssize_t)(n - 6),
	    "and completed just in time");
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
	is(c1.answers, 1, "answered");
	ok(send(c1.fd, m, 6, 0) == 6, "the next frame begun");
	pump(3);
	at(t0 + IDLE_MS + 10);
	pump(3);
	cli_poll(&c1);
	ok(!c1.eof, "its time starts with its own first byte");
	at(t0 + 2 * IDLE_MS - 1);
	pump(3);
	cli_poll(&c1);
	ok(c1.eof, "and ends an idle timeout after it");
	is(st(&e)->closed_idle, 6, "counted as idle");
	cli_close(&c1);

	/* Framing errors. */
	ok(cli_open(&c1, &e.addr, 0) == 0 && send(c1.fd, "\0\0", 2, 0) == 2,
	    "a zero-length frame");
	PUMP_UNTIL((cli_poll(&c1), c1.eof || c1.reset));
	ok(c1.eof || c1.reset, "closes the connection");
	is(st(&e)->closed_bad, 1, "counted as framing");
	cli_close(&c1);
	ok(cli_open(&c1, &e.addr, 0) == 0 && send(c1.fd, "\x10\x01", 2, 0) == 2,
	    "a length of 4097, more than the front end takes");
	PUMP_UNTIL((cli_poll(&c1), c1.eof || c1.reset));
	ok(c1.eof || c1.reset, "closes the connection");
	is(st(&e)->closed_bad, 2, "counted as framing");
	cli_close(&c1);
	n = query_make(m, 0x7777, "f1.test");
	m[n++] = 0x10; m[n++] = 0x00;	/* 4096: the most, allowed */
	ok(cli_open(&c1, &e.addr, 0) == 0 && send(c1.fd, m, n, 0) == (ssize_t)n,
	    "a query, then a prefix of 4096 (the most taken)");
	resp_reset(false, 0);
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
	is(c1.answers, 1, "the query is answered");
	ok(!c1.eof && !c1.reset, "and 4096 is not a framing error");
	is(st(&e)->closed_bad, 2, "nothing more counted");
	cli_close(&c1);
	pump(3);

	/* A client that shuts its side still gets what it asked. */
	resp_reset(true, 0);
	ok(cli_open(&c1, &e.addr, 0) == 0 && cli_query(&c1, 0x7878, "g1.test") == 0 &&
	    shutdown(c1.fd, SHUT_WR) == 0, "a query, then the client shuts its side");
	PUMP_UNTIL(resp.received == 1);
	pump(3);
	cli_poll(&c1);
	ok(!c1.eof && st(&e)->open == 1, "kept open while the query is in flight");
	resp_answer(0);
	PUMP_UNTIL((cli_poll(&c1), c1.eof));
	is(c1.answers, 1, "answered");
	ok(c1.eof, "then closed");
	is(st(&e)->open, 0, "none open");
	cli_close(&c1);
	is(st(&e)->closed_slow, 0, "no slow-reader close in all this");
	is(st(&e)->accepted, 10, "ten accepted in all");
	env_close(&e);
}

/* The per-connection bound on queries in flight. */
static void
test_pipeline(void)
{
	static struct env e;
	uint8_t m[600];
	size_t n = 0;
	char name[32];
	int i;

	ok(env_open(&e, 4, 2) == 0, "front end with --max-pipeline 2");
	resp_reset(true, 0);
	for (i = 0; i < 4; i++) {
		(void)snprintf(name, sizeof(name), "p%d.test", i);
		n += query_make(m + n, (uint16_t)(0x100 + i), name);
	}
	ok(cli_open(&c1, &e.addr, 0) == 0 && send(c1.fd, m, n, 0) == (ssize_t)n,
	    "four queries in one segment");
	PUMP_UNTIL(resp.received == 2);
	pump(10);
	is(resp.received, 2, "only two go on");

	/* Reading stops at the bound: later bytes stay in the kernel. */
	n = query_make(m, 0x200, "p9.test");
	ok(send(c1.fd, m, n, 0) == (ssize_t)n, "a fifth");
	pump(10);
	is(unread_at_server(&c1), (int)n, "not read while two are in flight");

	resp_answer(0);
	PUMP_UNTIL(resp.received == 3);
	cli_poll(&c1);
	is(c1.answers, 1, "one answered");
	is(resp.received, 3, "so the third goes on");
	pump(10);
	is(resp.received, 3, "and no more");
	resp_answer(1);
	resp_answer(2);
	PUMP_UNTIL(resp.received == 5);
	is(resp.received, 5, "two answered: the fourth and the fifth go on");
	is(unread_at_server(&c1), 0, "the fifth was read");
	resp_answer(3);
	resp_answer(4);
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 5));
	is(c1.answers, 5, "all five answered");
	ok(cli_has(&c1, 0x100) && cli_has(&c1, 0x103) && cli_has(&c1, 0x200),
	    "each one");
	cli_close(&c1);

	/* At the bound with a 4096-byte frame waiting, the client resets: the
	 * reset wakes the front end, which reads the frame (its read buffer is
	 * then full) and must see the reset: closed at once, not kept (the
	 * loop woken again and again) until its queries end. */
	resp_reset(true, 0);
	n = query_make(m, 0x300, "r1.test");
	n += query_make(m + n, 0x301, "r2.test");
	ok(cli_open(&c2, &e.addr, 0) == 0 && send(c2.fd, m, n, 0) == (ssize_t)n,
	    "two queries: the bound");
	PUMP_UNTIL(resp.received == 2);
	{
		static uint8_t big[2 + 4096];
		struct linger lg = { 1, 0 };
		size_t off = 0;
		ssize_t w;

		(void)query_make(big, 0x302, "r3.test");
		big[0] = 0x10;		/* the frame says 4096: padded with zeros */
		big[1] = 0x00;
		for (i = 0; i < 100 && off < sizeof(big); i++) {
			w = send(c2.fd, big + off, sizeof(big) - off, 0);
			if (w > 0)
				off += (size_t)w;
			pump(1);
		}
		ok(off == sizeof(big), "then a frame of 4096 bytes");
		pump(5);
		is(unread_at_server(&c2), (int)sizeof(big),
		    "it waits in the kernel (reading paused at the bound)");
		ok(setsockopt(c2.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0,
		    "the client resets the connection");
	}
	cli_close(&c2);
	pump(5);
	is(st(&e)->open, 0, "closed at once");
	for (i = 0; i < 2; i++)
		resp_answer(i);
	pump(5);

	/* Queries the table answers itself (FORMERR, at once) or drops (QR
	 * set) give their room back: three of each, then a good one, all
	 * in one write with room for two. */
	resp_reset(false, 0);
	n = 0;
	for (i = 0; i < 3; i++) {
		uint8_t *h = m + n + 2;		/* the header */

		n += query_make(m + n, (uint16_t)(0x400 + i), "bad.test");
		h[5] = 0;			/* QDCOUNT 0 */
	}
	for (i = 0; i < 3; i++) {
		uint8_t *h = m + n + 2;

		n += query_make(m + n, (uint16_t)(0x500 + i), "qr.test");
		h[2] |= 0x80;			/* QR: an answer, dropped */
	}
	n += query_make(m + n, 0x600, "ok.test");
	ok(cli_open(&c3, &e.addr, 0) == 0 && send(c3.fd, m, n, 0) == (ssize_t)n,
	    "three malformed, three dropped, one good query");
	PUMP_UNTIL((cli_poll(&c3), c3.answers == 4));
	pump(5);
	cli_poll(&c3);
	is(c3.answers, 4, "three FORMERR and one answer, nothing for the dropped");
	ok(c3.answers >= 3 && c3.rcode[0] == 1 && c3.rcode[1] == 1 &&
	    c3.rcode[2] == 1, "FORMERR first");
	ok(cli_has(&c3, 0x600), "the good one answered: no room was lost");
	is(resp.received, 1, "only it went to the resolver");
	ok(!c3.eof && !c3.reset, "the connection stays");
	cli_close(&c3);
	env_close(&e);
}

/* Sends count queries named <prefix><i>.test in one write. */
static int
cli_burst(struct cli *c, const char *prefix, int first, int count)
{
	static uint8_t m[65536];
	char name[64];
	size_t n = 0;
	int i;

	for (i = first; i < first + count; i++) {
		(void)snprintf(name, sizeof(name), "%s%d.test", prefix, i);
		n += query_make(m + n, (uint16_t)i, name);
	}
	return send(c->fd, m, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Makes the kernel's share of c's backlog small: the front end's send
 * buffer for it (the client's receive buffer is set before connect). */
static int
small_sndbuf(const struct cli *c)
{
	int fd, v = 4096;

	if ((fd = server_fd_of(c)) == -1)
		return -1;
	return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

/* Clients that stop reading. */
static void
test_slow_reader(void)
{
	static struct env e;
	int sent = 0, i, last;
	uint64_t t0;

	ok(env_open(&e, 4, 128) == 0, "front end with --max-pipeline 128");

	/* Reading pauses at the backlog and resumes once the client reads. */
	resp_reset(false, 2000);
	ok(cli_open(&c1, &e.addr, 4096) == 0, "a client with a small receive buffer");
	pump(3);
	ok(small_sndbuf(&c1) == 0, "and a small send buffer at the front end");
	/* 2 KB answers, 8 at a time, never read: the answers stop being
	 * written, then the queries stop being read. */
	last = -1;
	for (i = 0; i < 60 && resp.received != last; i++) {
		last = resp.received;
		if (cli_burst(&c1, "s", sent, 8) < 0)
			break;
		sent += 8;
		pump(10);
	}
	ok(resp.received < sent, "queries stop going on (%d of %d)",
	    resp.received, sent);
	ok(resp.received * 2000 >= 65536, "only after 64 KiB of answers "
	    "(%d answers)", resp.received);
	last = resp.received;
	pump(20);
	is(resp.received, last, "reading stays paused");
	ok(unread_at_server(&c1) > 0, "the queries wait in the kernel");
	is(st(&e)->closed_slow, 0, "not closed: the backlog fits");
	/* The client reads: everything is answered. */
	for (i = 0; i < 2000 && c1.answers < sent; i++) {
		cli_poll(&c1);
		pump(1);
	}
	is(c1.answers, sent, "it reads: every query is answered");
	is(resp.received, sent, "the waiting ones went on");
	ok(!c1.eof && !c1.reset, "still open");
	is(st(&e)->closed_slow, 0, "nothing counted as slow");
	cli_close(&c1);
	pump(3);

	/* Answers pile up unread with nothing in flight: closed at the idle
	 * timeout, as a slow reader. */
	t0 = fake_now;
	resp_reset(false, 2000);
	ok(cli_open(&c2, &e.addr, 4096) == 0, "another client that never reads");
	pump(3);
	ok(small_sndbuf(&c2) == 0, "small buffers again");
	ok(cli_burst(&c2, "u", 0, 40) == 0, "forty queries");
	PUMP_UNTIL(resp.received == 40);
	pump(20);
	is(resp.received, 40, "all went on and were answered");
	is(st(&e)->open, 1, "open, the answers unread");
	at(t0 + IDLE_MS - 1);
	pump(3);
	is(st(&e)->open, 1, "still open before the idle timeout");
	at(t0 + IDLE_MS);
	pump(3);
	is(st(&e)->open, 0, "closed at the idle timeout: it does not read");
	is(st(&e)->closed_slow, 1, "counted as a slow reader");
	cli_close(&c2);

	/* More answers in flight than the backlog holds: closed. */
	resp_reset(true, 2000);
	ok(cli_open(&c3, &e.addr, 4096) == 0, "a third client");
	pump(3);
	ok(small_sndbuf(&c3) == 0, "small buffers again");
	ok(cli_burst(&c3, "v", 0, 100) == 0, "a hundred queries");
	PUMP_UNTIL(resp.received == 100);
	is(resp.received, 100, "all in flight (under the pipeline bound)");
	for (i = 0; i < 100; i++)
		resp_answer(i);
	PUMP_UNTIL(st(&e)->closed_slow == 2);
	is(st(&e)->closed_slow, 2, "200 KB of answers unread: closed as slow");
	is(st(&e)->open, 0, "none open");
	for (i = 0; i < 200 && !c3.eof && !c3.reset; i++)
		cli_poll(&c3);
	ok(c3.answers < 100, "the client got only part (%d)", c3.answers);
	ok(c3.eof || c3.reset, "then the end of the connection");
	cli_close(&c3);
	env_close(&e);
}

/* The connection cap and running out of descriptors. */
static void
test_cap(void)
{
	static struct env e;
	struct rlimit rl, low;
	uint64_t paused;
	int fd;

	ok(env_open(&e, 2, 8) == 0, "front end with --max-clients 2");
	resp_reset(false, 0);
	ok(cli_open(&c1, &e.addr, 0) == 0 && cli_open(&c2, &e.addr, 0) == 0 &&
	    cli_open(&c3, &e.addr, 0) == 0, "three clients connect");
	pump(5);
	is(st(&e)->accepted, 2, "two accepted");
	is(st(&e)->open, 2, "two open");
	ok(st(&e)->accept_paused >= 1, "accepting paused at the cap, counted");
	paused = st(&e)->accept_paused;
	ok(cli_query(&c3, 0x33, "x3.test") == 0, "the third sends a query");
	pump(20);
	cli_poll(&c3);
	is(c3.answers, 0, "it waits in the backlog: no answer");
	is(st(&e)->accept_paused, paused, "no spinning on the listener");
	ok(cli_query(&c1, 0x11, "x1.test") == 0, "the first sends a query");
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
	is(c1.answers, 1, "clients under the cap are served");
	cli_close(&c1);
	PUMP_UNTIL((cli_poll(&c3), c3.answers == 1));
	is(c3.answers, 1, "a slot freed: the third is taken and answered");
	is(st(&e)->accepted, 3, "three accepted");
	is(st(&e)->open, 2, "two open");
	cli_close(&c2);
	cli_close(&c3);
	pump(5);
	is(st(&e)->open, 0, "none open");

	/* No descriptor for accept: pause, no spin, resume after 100 ms. */
	ok(getrlimit(RLIMIT_NOFILE, &rl) == 0, "the descriptor limit");
	ok(cli_open(&c4, &e.addr, 0) == 0 && cli_query(&c4, 0x44, "x4.test") == 0,
	    "a client connects and asks");
	paused = st(&e)->accept_paused;
	fd = dup(0);
	close(fd);
	low = rl;
	low.rlim_cur = (rlim_t)fd;	/* every lower descriptor is in use */
	ok(fd > 0 && setrlimit(RLIMIT_NOFILE, &low) == 0, "no descriptor left");
	pump(20);
	(void)setrlimit(RLIMIT_NOFILE, &rl);
	is(st(&e)->accept_paused, paused + 1, "accept paused once (EMFILE)");
	is(st(&e)->accepted, 3, "nothing accepted");
	pump(20);
	is(st(&e)->accepted, 3, "not before the pause ends");
	at(fake_now + 100);
	PUMP_UNTIL((cli_poll(&c4), c4.answers == 1));
	is(st(&e)->accepted, 4, "taken after the pause");
	is(c4.answers, 1, "and answered");
	cli_close(&c4);
	env_close(&e);
}

/* Stop: the drain before exit. */
static void
test_stop(void)
{
	static struct env e;
	static struct cli late;
	uint8_t m[300];
	size_t n;

	ok(env_open(&e, 4, 1) == 0, "front end with --max-pipeline 1");
	resp_reset(true, 0);
	ok(cli_open(&c1, &e.addr, 0) == 0, "an idle client");
	ok(cli_open(&c2, &e.addr, 0) == 0 && cli_query(&c2, 0x22, "y2.test") == 0,
	    "a client with a query in flight");
	n = query_make(m, 0x31, "y3.test");
	n += query_make(m + n, 0x32, "y4.test");
	ok(cli_open(&c3, &e.addr, 0) == 0 && send(c3.fd, m, n, 0) == (ssize_t)n,
	    "a client with one in flight and one read but waiting");
	PUMP_UNTIL(resp.received == 2);
	is(resp.received, 2, "two went on");
	is(st(&e)->open, 3, "three open");

	fe_tcp_stop(e.fe);
	pump(3);
	cli_poll(&c1);
	ok(c1.eof, "stop closes the idle client");
	is(st(&e)->open, 2, "the busy ones stay");
	ok(cli_open(&late, &e.addr, 0) != 0, "no new connection after stop");
	cli_close(&late);
	cli_poll(&c2);
	cli_poll(&c3);
	ok(!c2.eof && !c3.eof, "busy clients not closed");

	resp_answer(0);
	resp_answer(1);
	PUMP_UNTIL((cli_poll(&c2), c2.eof));
	is(c2.answers, 1, "the query in flight is answered");
	ok(c2.eof, "then the client is closed");
	PUMP_UNTIL(resp.received == 3);
	is(resp.received, 3, "the frame already read goes on");
	resp_answer(2);
	PUMP_UNTIL((cli_poll(&c3), c3.eof));
	is(c3.answers, 2, "both of the third client's queries answered");
	ok(c3.eof, "then it is closed");
	is(st(&e)->open, 0, "none open: drained");
	is(st(&e)->closed_idle, 0, "none of it counted as idle");
	cli_close(&c1);
	cli_close(&c2);
	cli_close(&c3);
	env_close(&e);
}

/* Transparent use: the peer's UID comes from sock_diag before any query
 * goes on; a client running as our own UID is the proxy looping. */
static void
test_transparent(void)
{
	static struct env e;

	ok(env_open_with(&e, 4, 8, "--transparent") == 0,
	    "front end in transparent use");
	resp_reset(false, 0);
	ok(cli_open(&c1, &e.addr, 0) == 0 && cli_query(&c1, 0x99, "z1.test") == 0,
	    "a client of our own UID asks");
	PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
	is(c1.answers, 1, "answered");
	is(c1.rcode[0], 2, "SERVFAIL");
	is(query_stats(e.qt)->loops, 1, "taken for a forwarding loop (its UID is ours)");
	is(resp.received, 0, "not forwarded");
	is(st(&e)->diag_failed, 0, "the lookup did not fail");
	cli_close(&c1);
	env_close(&e);
}

/*
 * A wildcard listener (0.0.0.0): clients that connected to it on two
 * local addresses, nothing redirecting them. Under conntrack their
 * original destination is that address, never equal to a configured
 * listen address; the front end must know it as its own.
 */
static void
test_wildcard(void)
{
	static const char *const to[] = { "127.0.0.1", "127.0.0.2" };
	static struct env e;
	struct sockaddr_in sa;
	size_t i;

	listen_addr = htonl(INADDR_ANY);
	ok(env_open(&e, 4, 8) == 0, "front end on 0.0.0.0");
	listen_addr = htonl(INADDR_LOOPBACK);
	resp_reset(false, 0);
	for (i = 0; i < 2; i++) {
		sa = e.addr;
		(void)inet_pton(AF_INET, to[i], &sa.sin_addr);
		ok(cli_open(&c1, &sa, 0) == 0 && cli_query(&c1, 0x77, "w1.test") == 0,
		    "a client on %s, not redirected, asks a local-zone name", to[i]);
		PUMP_UNTIL((cli_poll(&c1), c1.answers == 1));
		is(c1.answers, 1, "(%s) answered", to[i]);
		is(c1.rcode[0], 0, "(%s) NOERROR, from the local resolver", to[i]);
		is(resp.received, (int)i + 1, "(%s) the resolver saw it", to[i]);
		is(query_stats(e.qt)->orig_fallback, i + 1,
		    "(%s) no original destination: resolv.conf's server", to[i]);
		cli_close(&c1);
	}
	is(query_stats(e.qt)->orig_known, 0, "never sent back to ourselves");
	env_close(&e);
}

/*
 * As root: a network namespace of this process's own, loopback up, and an
 * nftables table whose "ct state new accept" makes the kernel track every
 * connection in it, as a stateful firewall does. Then checks that
 * SO_ORIGINAL_DST answers for a plain loopback connection (what the front
 * end must cope with). Not root: says so and runs where it is.
 */
static void
conntrack_setup(void)
{
	static const char rules[] =
	    "table inet dotproxy_test_ct {\n"
	    "  chain in { type filter hook input priority 0; ct state new accept; }\n"
	    "}\n";
	struct sockaddr_in sa, od;
	struct ifreq ifr;
	socklen_t sl;
	int fd, lfd, cfd, afd;
	FILE *p;

	if (geteuid() != 0) {
		printf("# not root: no namespace of its own, conntrack as the "
		    "host has it\n");
		return;
	}
	if (!ok(unshare(CLONE_NEWNET) == 0, "a network namespace of its own"))
		return;
	memset(&ifr, 0, sizeof(ifr));
	(void)snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ok(fd != -1 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) == 0),
	    "loopback up");
	if (fd != -1)
		close(fd);
	p = popen("nft -f -", "w");
	ok(p != NULL && fputs(rules, p) >= 0 && pclose(p) == 0,
	    "nftables: ct state new accept");
	/* The proof that connections are tracked. */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sl = sizeof(sa);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	afd = -1;
	if (lfd != -1 && cfd != -1 &&
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    listen(lfd, 1) == 0 &&
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0 &&
	    connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		afd = accept(lfd, NULL, NULL);
	sl = sizeof(od);
	ok(afd != -1 && getsockopt(afd, SOL_IP, SO_ORIGINAL_DST, &od, &sl) == 0 &&
	    od.sin_port == sa.sin_port,
	    "conntrack follows loopback: SO_ORIGINAL_DST answers, not redirected");
	if (afd != -1)
		close(afd);
	if (cfd != -1)
		close(cfd);
	if (lfd != -1)
		close(lfd);
}

/* The stat table reads the right fields. */
static void
test_stat_table(void)
{
	struct fe_tcp_stats s = { .accepted = 11, .closed_idle = 12,
	    .closed_bad = 13, .closed_slow = 14, .accept_paused = 15,
	    .diag_failed = 16, .open = 17 };
	static const struct {
		const char *name, *labels;
		uint64_t want;
	} rows[] = {
		{ "dotproxy_tcp_connections", NULL, 17 },
		{ "dotproxy_tcp_accepted_total", NULL, 11 },
		{ "dotproxy_tcp_closed_total", "reason=\"idle\"", 12 },
		{ "dotproxy_tcp_closed_total", "reason=\"framing\"", 13 },
		{ "dotproxy_tcp_closed_total", "reason=\"slow_reader\"", 14 },
		{ "dotproxy_tcp_accept_paused_total", NULL, 15 },
		{ "dotproxy_tcp_peer_lookup_failed_total", NULL, 16 },
	};
	size_t i, j;
	int found;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		found = 0;
		for (j = 0; j < fe_tcp_stat_table.n; j++) {
			const struct stat_desc *d = &fe_tcp_stat_table.rows[j];

			if (strcmp(d->name, rows[i].name) != 0 ||
			    (d->labels == NULL) != (rows[i].labels == NULL) ||
			    (d->labels != NULL &&
			    strcmp(d->labels, rows[i].labels) != 0))
				continue;
			found = 1;
			is(stat_value(d, &s), rows[i].want, "%s%s%s%s",
			    rows[i].name, rows[i].labels ? "{" : "",
			    rows[i].labels ? rows[i].labels : "",
			    rows[i].labels ? "}" : "");
		}
		ok(found, "row %s is exported", rows[i].name);
	}
}

int
main(void)
{
	char err[256];

	log_setup(LOG_LVL_ERROR, LOG_FMT_TEXT);
	listen_addr = htonl(INADDR_LOOPBACK);
	conntrack_setup();
	loop = loop_new(clock_fn, NULL);
	ok(loop != NULL, "a loop on a fake clock");
	loop_update_now(loop);
	ok(resp_open() == 0, "a plain DNS responder on loopback");
	tls = tls_ctx_new(NULL, err, sizeof(err));
	ok(tls != NULL, "a TLS context (no upstream is ever reached)");

	test_basic();
	test_pipeline();
	test_slow_reader();
	test_cap();
	test_stop();
	test_transparent();
	test_wildcard();
	test_stat_table();

	tls_ctx_free(tls);
	close(resp.fd);
	loop_free(loop);
	return tap_done();
}
