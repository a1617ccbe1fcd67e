/*
 * Workers with their real parts: their own query tables, UDP front ends
 * on loopback sockets the test binds, the upstream a DoT server inside
 * this test (dotsrv.c) that the test steps and answers by hand. Clocks
 * are real: a threaded worker runs its loop in its own thread while this
 * one plays client and server. What is checked:
 *   - inline (--workers 1): no thread; a query goes up and its answer
 *     comes back through the main loop; a drain answers a query the
 *     upstream never answers with SERVFAIL, leaves nothing in flight,
 *     and stops reading the worker's socket while the main loop goes on;
 *   - threaded: each worker answers on its own socket; caches are not
 *     shared (a question one worker has cached goes upstream from the
 *     other); counters read under worker_lock;
 *   - a reload swaps a running worker's upstreams: a query in flight
 *     still gets the old upstream's answer, the next goes to the new one;
 *   - worker_ask_stop on each, then worker_drain: a query in flight when
 *     the stop was asked is still answered, and after the drain the
 *     sockets are not read;
 *   - a socket more than the front end takes: E_TOOBIG, and not listed
 *     by worker_fds, which lists the others in order; a threaded worker never started is freed;
 *   - worker_cpus follows the process's CPU affinity.
 */
#include "proxy/worker.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/errors.h"
#include "proxy/log.h"
#include "proxy/loop.h"
#include "proxy/query.h"
#include "proxy/resolv.h"
#include "proxy/tls.h"
#include "tests/unit/proxy/dotsrv.h"
#include "tests/unit/tap.h"

static struct dotsrv sa, sb;
static struct resolv rc;
static char ca[300];
static struct loop *mainlp;	/* stepped while waiting, when set */

/* One step of everything this thread drives. */
static void
step(void)
{
	if (mainlp != NULL)
		(void)loop_run_once(mainlp, 1);
	else
		(void)poll(NULL, 0, 1);
	dotsrv_step(&sa);
	dotsrv_step(&sb);
}

/* Steps until cond holds, for at most 10 s. */
#define STEP_UNTIL(cond) do {						\
	uint64_t end_ = loop_clock_us() + 10000000;			\
	while (!(cond) && loop_clock_us() < end_)			\
		step();							\
} while (0)

/* A configuration with upstream s; NULL on failure. */
static struct config *
mkcfg(const struct dotsrv *s)
{
	char up[64], err[256];
	const char *argv[] = { "dotproxy", "--ca-file", ca, "--timeout",
	    "1000", "--connections", "1", "--listen", "127.0.0.1:1",
	    "--upstream", up, NULL };
	struct config *cfg = calloc(1, sizeof(*cfg));

	(void)snprintf(up, sizeof(up), "127.0.0.1@%u#up.test", s->port);
	if (cfg == NULL || config_parse(cfg, 11,
	    (char *const *)(uintptr_t)argv, NULL, err, sizeof(err)) != 0) {
		printf("# config: %s\n", cfg != NULL ? err : "no memory");
		free(cfg);
		return NULL;
	}
	return cfg;
}

static struct tls_ctx *
mktls(void)
{
	char err[256];

	return tls_ctx_new(ca, err, sizeof(err));
}

/* A UDP socket bound on 127.0.0.1 (its port in *port), or -1. */
static int
udp_bound(uint16_t *port, struct sockaddr_in *sin)
{
	socklen_t sl = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)sin, sl) != 0 ||
	    getsockname(fd, (struct sockaddr *)sin, &sl) != 0) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	*port = ntohs(sin->sin_port);
	return fd;
}

/* A worker serving a new socket of its own; its port in *port. */
static int
adopt(struct worker *w, uint16_t *port)
{
	struct sockaddr_in sin;
	int fd = udp_bound(port, &sin);

	if (fd == -1)
		return -1;
	if (worker_adopt_udp(w, fd, (struct sockaddr *)&sin,
	    sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A client socket connected to 127.0.0.1:port. */
static int
client(uint16_t port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if (fd != -1 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
ask(int fd, uint16_t id, const char *name)
{
	uint8_t q[512];
	size_t n = mkq(q, id, name, DNS_TYPE_A, false);

	return send(fd, q, n, 0) == (ssize_t)n ? 0 : -1;
}

/* The next datagram on fd within ms, stepping meanwhile: its length, or
 * -1 (none; or the port refused it). */
static ssize_t
reply(int fd, uint8_t *buf, size_t cap, int ms)
{
	uint64_t end = loop_clock_us() + (uint64_t)ms * 1000;
	ssize_t n;

	do {
		if ((n = recv(fd, buf, cap, 0)) >= 0)
			return n;
		step();
	} while (loop_clock_us() < end);
	return -1;
}

/* As reply, skipping datagrams with another ID. */
static ssize_t
reply_id(int fd, unsigned id, uint8_t *buf, size_t cap, int ms)
{
	uint64_t end = loop_clock_us() + (uint64_t)ms * 1000;
	ssize_t n;

	do {
		n = reply(fd, buf, cap, 10);
		if (n >= 12 && (unsigned)(buf[0] << 8 | buf[1]) == id)
			return n;
	} while (loop_clock_us() < end);
	return -1;
}

/* Server s answers the k-th query it read, TTL 300. */
static int
answer(struct dotsrv *s, int k)
{
	uint8_t a[DOTSRV_QLEN + 64];
	size_t n = mka(a, s->q[k].msg, s->q[k].len, 300, false);

	return dotsrv_send(s, s->q[k].conn, a, n);
}

static unsigned
id_of(const uint8_t *m)
{
	return (unsigned)(m[0] << 8 | m[1]);
}

/* Client c asks name; upstream s reads the query and answers it. The ID
 * of the answer the client then gets, or 0. */
static unsigned
through(struct dotsrv *s, int c, uint16_t id, const char *name)
{
	uint8_t buf[1500];
	int k = s->queries;
	ssize_t n;

	if (ask(c, id, name) != 0)
		return 0;
	STEP_UNTIL(s->queries > k);
	if (s->queries <= k || answer(s, k) != 0)
		return 0;
	n = reply_id(c, id, buf, sizeof(buf), 5000);
	return n >= 12 ? id_of(buf) : 0;
}

/* A counter of worker w's table, read under its lock. */
static uint64_t
dot_sent(struct worker *w)
{
	uint64_t v;

	worker_lock(w, true);
	v = query_stats(worker_qt(w))->dot;
	worker_lock(w, false);
	return v;
}

static uint64_t
cache_answers(struct worker *w)
{
	uint64_t v;

	worker_lock(w, true);
	v = query_stats(worker_qt(w))->responses[QS_CACHE][0];
	worker_lock(w, false);
	return v;
}

static void
test_inline(void)
{
	struct config *cfg = mkcfg(&sa);
	struct worker *w;
	uint8_t buf[1500];
	uint16_t port;
	int lfd, c, base, fds[4];
	ssize_t n;

	mainlp = loop_new(NULL, NULL);
	if (cfg == NULL || mainlp == NULL ||
	    (w = worker_new(0, mainlp, mktls(), cfg, &rc)) == NULL) {
		ok(0, "an inline worker");
		goto out;
	}
	ok(1, "an inline worker");
	lfd = adopt(w, &port);
	ok(lfd != -1, "serving a socket of its own");
	is(worker_fds(w, fds, 4), 1, "one socket listed");
	is(fds[0], lfd, "that one");
	is(worker_start(w), 0, "started (inline: nothing to start)");
	is(worker_qt(w) != NULL && worker_udp(w) != NULL &&
	    worker_tcp(w) != NULL, 1, "its table and front ends");

	c = client(port);
	base = sa.queries;
	is(through(&sa, c, 0x1001, "inline.test"), 0x1001,
	    "a client's query answered through the upstream");
	is(sa.queries, base + 1, "one upstream query");

	/* Drained with a query the upstream never answers. */
	ok(ask(c, 0x1002, "silent.test") == 0, "a query nobody answers");
	STEP_UNTIL(sa.queries > base + 1);
	is(query_inflight(worker_qt(w)), 1, "in flight");
	worker_drain(w);
	is(query_inflight(worker_qt(w)), 0, "the drain leaves nothing in "
	    "flight");
	n = reply(c, buf, sizeof(buf), 1000);
	is(n >= 12 ? id_of(buf) : 0, 0x1002, "the client has an answer");
	is(n >= 4 ? buf[3] & 0xf : 99, DNS_RCODE_SERVFAIL, "SERVFAIL");
	/* The main loop goes on; the drained worker's socket is not read
	 * (a cached question would be answered at once). */
	(void)ask(c, 0x1003, "inline.test");
	is(reply(c, buf, sizeof(buf), 300), -1, "after the drain its socket "
	    "is not read");
	worker_free(w);
	close(c);
out:
	free(cfg);
	loop_free(mainlp);
	mainlp = NULL;
}

static void
test_threaded(void)
{
	struct config *cfg = mkcfg(&sa), *cfg2;
	struct worker *w[2] = { NULL, NULL };
	struct up_pool *old;
	uint8_t buf[1500];
	uint16_t port[2];
	int c[2] = { -1, -1 }, base, bbase, i;
	ssize_t n;

	for (i = 0; i < 2 && cfg != NULL; i++)
		if ((w[i] = worker_new((unsigned)i, NULL, mktls(), cfg,
		    &rc)) == NULL || adopt(w[i], &port[i]) == -1 ||
		    (c[i] = client(port[i])) == -1)
			break;
	ok(i == 2, "two threaded workers, a socket each");
	if (i != 2)
		goto out;
	is(worker_start(w[0]), 0, "worker 0 runs");
	is(worker_start(w[1]), 0, "worker 1 runs");

	/* Worker 0: upstream, then its cache. */
	base = sa.queries;
	is(through(&sa, c[0], 0x2001, "shared.test"), 0x2001,
	    "worker 0 answered through the upstream");
	is(sa.queries, base + 1, "one upstream query");
	(void)ask(c[0], 0x2002, "shared.test");
	n = reply(c[0], buf, sizeof(buf), 5000);
	is(n >= 12 ? id_of(buf) : 0, 0x2002, "again");
	is(cache_answers(w[0]), 1, "from worker 0's cache");
	is(dot_sent(w[0]), 1, "one DoT query from worker 0");

	/* Worker 1 has not seen it: share-nothing. */
	is(through(&sa, c[1], 0x2003, "shared.test"), 0x2003,
	    "worker 1 answered through the upstream");
	is(sa.queries, base + 2, "worker 1 asked upstream itself");
	is(cache_answers(w[1]), 0, "not from a cache");
	is(dot_sent(w[1]), 1, "its own DoT query");

	/* A reload to server B with a query in flight on A. */
	(void)ask(c[0], 0x2004, "inflight.test");
	STEP_UNTIL(sa.queries > base + 2);
	is(sa.queries, base + 3, "a query in flight on A");
	worker_lock(w[0], true);
	old = query_pool(worker_qt(w[0]));
	worker_lock(w[0], false);
	cfg2 = mkcfg(&sb);
	ok(cfg2 != NULL, "a reloaded configuration: upstream B");
	if (cfg2 == NULL)
		goto out;
	worker_reload(w[0], cfg2, mktls());
	{
		uint64_t end = loop_clock_us() + 10000000;
		struct up_pool *now = old;

		while (now == old && loop_clock_us() < end) {
			step();
			worker_lock(w[0], true);
			now = query_pool(worker_qt(w[0]));
			worker_lock(w[0], false);
		}
		ok(now != old, "worker 0 swapped its upstreams in its thread");
	}
	(void)answer(&sa, base + 2);
	n = reply(c[0], buf, sizeof(buf), 5000);
	is(n >= 12 ? id_of(buf) : 0, 0x2004, "the query in flight: answered "
	    "by A");
	bbase = sb.queries;
	is(through(&sb, c[0], 0x2005, "after.test"), 0x2005,
	    "the next goes to B");
	is(sb.queries, bbase + 1, "one query to B");
	is(sa.queries, base + 3, "none to A");

	/* Stop both, one query in flight on worker 1. */
	(void)ask(c[1], 0x2006, "late.test");
	STEP_UNTIL(sa.queries > base + 3);
	is(sa.queries, base + 4, "worker 1: a query in flight");
	worker_ask_stop(w[0]);
	worker_ask_stop(w[1]);
	/* Until worker 1 has stopped reading (a question it has cached is
	 * no longer answered at once), the upstream holds its answer: it
	 * must then be the drain that waits for it. */
	for (i = 0; i < 100; i++) {
		(void)ask(c[1], (uint16_t)(0x2100 + i), "shared.test");
		if (reply(c[1], buf, sizeof(buf), 50) == -1)
			break;
	}
	ok(i < 100, "worker 1 stops reading");
	(void)answer(&sa, base + 3);
	n = reply_id(c[1], 0x2006, buf, sizeof(buf), 5000);
	is(n >= 12 ? id_of(buf) : 0, 0x2006, "answered while stopping");
	is(n >= 4 ? buf[3] & 0xf : 99, DNS_RCODE_NOERROR, "by the upstream");
	worker_drain(w[0]);
	worker_drain(w[1]);
	ok(1, "both drained");
	(void)ask(c[0], 0x2007, "shared.test");
	(void)ask(c[1], 0x2008, "shared.test");
	is(reply(c[0], buf, sizeof(buf), 300), -1, "worker 0's socket is "
	    "not read");
	is(reply(c[1], buf, sizeof(buf), 300), -1, "nor worker 1's");
out:
	for (i = 0; i < 2; i++) {
		worker_free(w[i]);
		if (c[i] != -1)
			close(c[i]);
	}
	free(cfg);
}

static void
test_limits(void)
{
	struct config *cfg = mkcfg(&sa);
	struct worker *w;
	struct sockaddr_in sin;
	uint16_t port;
	int fds[WORKER_MAX_FDS + 1], got[WORKER_MAX_FDS], i, fd, r;
	size_t n;

	if (cfg == NULL ||
	    (w = worker_new(7, NULL, mktls(), cfg, &rc)) == NULL) {
		ok(0, "a threaded worker, not started");
		free(cfg);
		return;
	}
	/* A front end takes as many sockets as --listen has addresses. */
	for (i = 0; i < CFG_MAX_LISTEN; i++)
		if ((fds[i] = adopt(w, &port)) == -1)
			break;
	is(i, CFG_MAX_LISTEN, "CFG_MAX_LISTEN UDP sockets taken");
	fd = udp_bound(&port, &sin);
	r = worker_adopt_udp(w, fd, (struct sockaddr *)&sin, sizeof(sin));
	is(r, -E_TOOBIG, "one more: E_TOOBIG");
	if (r != 0 && fd != -1)
		close(fd);
	n = worker_fds(w, got, 3);
	is(n, 3, "worker_fds stops at its cap");
	is(got[0] == fds[0] && got[2] == fds[2], 1, "in the order taken");
	n = worker_fds(w, got, WORKER_MAX_FDS);
	is(n, CFG_MAX_LISTEN, "and lists them all, not the refused one");
	worker_drain(w);
	worker_free(w);
	ok(1, "a worker never started is freed");
	free(cfg);
}

static void
test_cpus(void)
{
	cpu_set_t set, one;
	int cpu = 0;

	ok(sched_getaffinity(0, sizeof(set), &set) == 0, "the affinity");
	is(worker_cpus(), (unsigned)CPU_COUNT(&set), "worker_cpus counts it");
	while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
		cpu++;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	ok(sched_setaffinity(0, sizeof(one), &one) == 0,
	    "narrowed to one CPU of them");
	is(worker_cpus(), 1, "worker_cpus: 1");
	(void)sched_setaffinity(0, sizeof(set), &set);
}

int
main(void)
{
	char dir[] = "/tmp/dotproxy-test-worker.XXXXXX";
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	(void)signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_setup(LOG_LVL_ERROR, LOG_FMT_TEXT);
	memset(&rc, 0, sizeof(rc));
	ok(mkdtemp(dir) != NULL && dotsrv_cert(dir, &key, &cert, ca,
	    sizeof(ca)) == 0, "a throw-away CA and certificate for up.test");
	ok(dotsrv_open(&sa, key, cert) == 0, "TLS server A on loopback");
	ok(dotsrv_open(&sb, key, cert) == 0, "TLS server B on loopback");

	test_inline();
	test_threaded();
	test_limits();
	test_cpus();

	dotsrv_close(&sa);
	dotsrv_close(&sb);
	X509_free(cert);
	EVP_PKEY_free(key);
	(void)unlink(ca);
	(void)rmdir(dir);
	return tap_done();
}
