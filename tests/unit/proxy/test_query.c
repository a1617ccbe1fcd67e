/*
 * The query table driven deterministically: the loop's clock is fake, the
 * front end is a function that keeps what it is given, and the upstreams
 * are DoT servers inside this test on loopback (dotsrv.c), stepped between
 * loop passes; a refused upstream is a bound TCP port nobody listens on.
 * No namespace, no sleep: timeouts happen when the test moves the clock.
 * What is checked:
 *   - an answer is delivered once, with the client's ID and question case;
 *   - no answer: one SERVFAIL at the deadline, nothing left in flight, and
 *     no resend when the pool declares the connection dead at that moment;
 *   - retry on the other upstream after a refusal; a query is not sent
 *     again to an upstream that already failed it;
 *   - across a reload, the retired pool's upstream numbers are not applied
 *     to the new pool;
 *   - an OPT followed by a record that points into it is cut, not
 *     rewritten, and the client still gets its answer;
 *   - coalescing of identical questions, any number of them on one
 *     upstream query;
 *   - the cache: a hit, expiry, and a stale answer at the client-response
 *     timeout while the refresh goes on; prefetch; an upstream SERVFAIL
 *     and a deadline answered from the expired entry (waiters included);
 *     failures cached; a reload to other upstreams empties the cache and
 *     the old pool's late answer is not cached;
 *   - the local-zone path: plain DNS to the original resolver or to
 *     resolv.conf's, never to the DoT upstream; SERVFAIL at the deadline;
 *   - a REFUSED without a question answers at once; a big answer is cut
 *     to 512 bytes with TC for UDP and whole over TCP;
 *   - query_fail_all answers everything in flight with SERVFAIL.
 */
#include "proxy/query.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/loop.h"
#include "proxy/resolv.h"
#include "proxy/tls.h"
#include "proxy/upstream.h"
#include "tests/unit/proxy/dotsrv.h"
#include "tests/unit/tap.h"

#define NGOT	256

static uint64_t fake_now = 100000;
static struct loop *lp;
static struct dotsrv *srvs[2];
static char ca[300];

/* What the front end was given. */
struct got {
	unsigned	client;		/* origin.listener, the test's tag */
	size_t		len;
	uint8_t		msg[4096];
};
static struct got got[NGOT];
static int ngot;

static uint64_t
clock_fn(void *arg)
{
	(void)arg;
	return fake_now;
}

static void
deliver(void *arg, const struct query_origin *o, const uint8_t *msg,
    size_t len)
{
	(void)arg;
	if (ngot < NGOT && len <= sizeof(got[0].msg)) {
		got[ngot].client = o->listener;
		got[ngot].len = len;
		memcpy(got[ngot].msg, msg, len);
	}
	ngot++;
}

/* Loop passes and server steps, the fake clock standing still. */
static void
pump(int n)
{
	int i, k;

	for (i = 0; i < n; i++) {
		(void)loop_run_once(lp, 1);
		for (k = 0; k < 2; k++)
			if (srvs[k] != NULL)
				dotsrv_step(srvs[k]);
	}
}

/* Pumps until cond holds, for at most 10 s of real time (a slow, loaded
 * machine under a sanitizer still gets there; the fake clock stands). */
#define PUMP_UNTIL(cond) do {						\
	uint64_t end_ = loop_clock_us() + 10000000;			\
	while (!(cond) && loop_clock_us() < end_)			\
		pump(1);						\
} while (0)

static void
at(uint64_t t)
{
	fake_now = t;
	loop_update_now(lp);
}

/* Server s answers the k-th query it read. */
static int
answer(struct dotsrv *s, int k, uint32_t ttl)
{
	uint8_t a[DOTSRV_QLEN + 64];
	size_t n = mka(a, s->q[k].msg, s->q[k].len, ttl, true);

	return dotsrv_send(s, s->q[k].conn, a, n);
}

static uint16_t
id_of(const uint8_t *m)
{
	return (uint16_t)(m[0] << 8 | m[1]);
}

static unsigned
rcode_of(const struct got *g)
{
	return g->len >= 4 ? g->msg[3] & 0xf : 99;
}

/* The TTL of the first answer record of a delivered message. */
static uint32_t
ttl_of(const struct got *g)
{
	size_t o = qend(g->msg, g->len) + 6;

	if (o + 4 > g->len)
		return 0;
	return (uint32_t)g->msg[o] << 24 | (uint32_t)g->msg[o + 1] << 16 |
	    (uint32_t)g->msg[o + 2] << 8 | g->msg[o + 3];
}

static struct query_origin
origin(unsigned client)
{
	struct query_origin o;
	struct sockaddr_in *sin = (struct sockaddr_in *)&o.peer;

	memset(&o, 0, sizeof(o));
	o.listener = client;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons((uint16_t)(40000 + client));
	o.peer_len = sizeof(*sin);
	return o;
}

static int
submit(struct query_table *qt, unsigned client, const uint8_t *q, size_t n)
{
	struct query_origin o = origin(client);

	return query_submit(qt, q, n, &o);
}

/* A configuration: common flags, then extra (NULL-terminated). */
static int
mkcfg(struct config *cfg, const char *const *extra)
{
	const char *argv[40] = { "dotproxy", "--ca-file", ca, "--timeout",
	    "1000", "--connections", "1", "--listen", "127.0.0.1:1" };
	char err[256];
	int argc = 9;

	while (*extra != NULL && argc < 39)
		argv[argc++] = *extra++;
	argv[argc] = NULL;
	if (config_parse(cfg, argc, (char *const *)(uintptr_t)argv, NULL, err,
	    sizeof(err)) != 0) {
		printf("# config: %s\n", err);
		return -1;
	}
	return 0;
}

static struct query_table *
mktable(struct config *cfg, struct tls_ctx *tls, const struct resolv *rc,
    const char *const *extra)
{
	struct query_frontend fe = { deliver, NULL };
	struct query_table *qt;

	if (mkcfg(cfg, extra) != 0 ||
	    (qt = query_table_new(lp, tls, cfg, rc)) == NULL)
		return NULL;
	query_set_frontend(qt, false, &fe);
	query_set_frontend(qt, true, &fe);
	return qt;
}

/* "127.0.0.1@PORT#up.test" in a static buffer (one of four). */
static const char *
upname(uint16_t port)
{
	static char b[4][64];
	static int i;

	i = (i + 1) % 4;
	(void)snprintf(b[i], sizeof(b[i]), "127.0.0.1@%u#up.test", port);
	return b[i];
}

/* A TCP port bound on loopback where nobody listens: connects to it are
 * refused. Returns the socket (kept open so the port stays ours). */
static int
refused_port(uint16_t *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Ends a table and lets the loop see its connections go. */
static void
endtable(struct query_table *qt)
{
	query_table_free(qt);
	pump(5);
	ngot = 0;
}

static struct resolv rc;
static struct dotsrv sa_srv, sb_srv;

static void
test_answer_timeout_failall(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "0", NULL };
	static struct config cfg;
	struct query_table *qt;
	uint8_t q[512];
	size_t n, qe;
	uint64_t t0;
	int i, base;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table with one upstream, cache off");
	if (qt == NULL)
		return;

	/* An answer: once, with the client's ID and question case. */
	n = mkq(q, 0x1234, "MiXeD.ExAmPlE.tEsT", DNS_TYPE_A, true);
	qe = qend(q, n);
	is(submit(qt, 1, q, n), 0, "query taken");
	is(query_inflight(qt), 1, "one in flight");
	PUMP_UNTIL(sa_srv.queries == 1);
	is(sa_srv.queries, 1, "the upstream read it");
	is(answer(&sa_srv, 0, 300), 0, "the upstream answers, name lower-cased");
	PUMP_UNTIL(ngot > 0);
	pump(20);
	is(ngot, 1, "delivered once");
	is(got[0].client, 1, "to that client");
	is(id_of(got[0].msg), 0x1234, "with the client's ID");
	is(qend(got[0].msg, got[0].len), qe, "the question has the client's length");
	is_mem(got[0].msg + 12, q + 12, qe - 12, "and the client's case");
	is(rcode_of(&got[0]), DNS_RCODE_NOERROR, "NOERROR");
	is(ttl_of(&got[0]), 300, "the upstream's record");
	is(query_inflight(qt), 0, "nothing left in flight");

	/* No answer: one SERVFAIL at the deadline, not before. */
	ngot = 0;
	t0 = fake_now;
	n = mkq(q, 0x5678, "slow.test", DNS_TYPE_A, false);
	is(submit(qt, 2, q, n), 0, "query taken");
	PUMP_UNTIL(sa_srv.queries == 2);
	is(sa_srv.queries, 2, "the upstream read it and stays silent");
	at(t0 + 999);
	pump(10);
	is(ngot, 0, "nothing before the timeout");
	is(query_inflight(qt), 1, "still in flight");
	at(t0 + 1000);
	pump(10);
	is(ngot, 1, "at the timeout: one answer");
	is(rcode_of(&got[0]), DNS_RCODE_SERVFAIL, "a SERVFAIL");
	is(id_of(got[0].msg), 0x5678, "with the client's ID");
	is(query_inflight(qt), 0, "nothing left in flight");
	is(query_stats(qt)->timeouts, 1, "counted as a timeout");
	pump(20);
	is(sa_srv.queries, 2, "not sent again when the connection is "
	    "declared dead at the deadline");
	at(t0 + 5000);
	pump(10);
	is(ngot, 1, "and nothing more later");

	/* query_fail_all: everything in flight gets one SERVFAIL, waiters
	 * included; a late answer then goes nowhere. */
	ngot = 0;
	base = sa_srv.queries;
	for (i = 0; i < 3; i++) {
		static const char *const names[3] = { "f1.test", "f2.test",
		    "f1.test" };

		n = mkq(q, (uint16_t)(0x100 + i), names[i], DNS_TYPE_A, false);
		is(submit(qt, (unsigned)(10 + i), q, n), 0, "query %d taken", i);
	}
	is(query_inflight(qt), 3, "three in flight (one a waiter)");
	PUMP_UNTIL(sa_srv.queries >= base + 2);
	pump(10);
	is(sa_srv.queries, base + 2, "two went upstream");
	query_fail_all(qt);
	is(ngot, 3, "fail_all: three answers");
	for (i = 0; i < 3; i++) {
		int k, seen = 0;

		for (k = 0; k < ngot; k++)
			if (got[k].client == (unsigned)(10 + i) &&
			    rcode_of(&got[k]) == DNS_RCODE_SERVFAIL &&
			    id_of(got[k].msg) == 0x100 + i)
				seen++;
		is(seen, 1, "client %d: one SERVFAIL with its ID", i);
	}
	is(query_inflight(qt), 0, "nothing left in flight");
	(void)answer(&sa_srv, base, 60);
	(void)answer(&sa_srv, base + 1, 60);
	pump(30);
	at(fake_now + 2000);
	pump(10);
	is(ngot, 3, "late answers and deadlines deliver nothing more");
	endtable(qt);
}

static void
test_opt_cut(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "0", NULL };
	static struct config cfg;
	struct query_table *qt;
	struct dns_info ai;
	uint8_t q[512], a[1024];
	size_t n, qe, k, opt_off, rr_at;
	int base = sa_srv.queries;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table for the OPT test");
	if (qt == NULL)
		return;
	n = mkq(q, 0x4242, "Opt.TeSt", DNS_TYPE_A, true);
	qe = qend(q, n);
	is(submit(qt, 3, q, n), 0, "query with EDNS taken");
	PUMP_UNTIL(sa_srv.queries == base + 1);
	is(sa_srv.queries, base + 1, "the upstream read it");
	/*
	 * The answer: one A record, then an OPT whose option data reads as
	 * the name "abcd.", then a TXT record whose owner is a pointer to
	 * that name. Rewriting the OPT in place (its options become padding)
	 * would turn that owner into the root; the OPT and what follows it
	 * must be cut instead.
	 */
	k = mka(a, sa_srv.q[base].msg, sa_srv.q[base].len, 60, false);
	a[11] = 2;
	opt_off = k;
	{
		static const uint8_t opt[] = { 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0,
		    0, 10, 0xfd, 0xe9, 0, 6, 4, 'a', 'b', 'c', 'd', 0 };

		memcpy(a + k, opt, sizeof(opt));
		k += sizeof(opt);
	}
	rr_at = opt_off + 15;	/* the option data: "\4abcd\0" */
	a[k++] = (uint8_t)(0xc0 | rr_at >> 8);
	a[k++] = (uint8_t)rr_at;
	{
		static const uint8_t txt[] = { 0, 16, 0, 1, 0, 0, 0, 60, 0, 4,
		    3, 'x', 'y', 'z' };

		memcpy(a + k, txt, sizeof(txt));
		k += sizeof(txt);
	}
	ok(dns_parse_answer(a, k, &ai) == 0 && ai.has_opt && !ai.opt_last,
	    "the upstream answer parses, OPT not last");
	is(dotsrv_send(&sa_srv, sa_srv.q[base].conn, a, k), 0, "sent");
	PUMP_UNTIL(ngot > 0);
	is(ngot, 1, "the client gets one answer");
	if (ngot == 1) {
		ok(dns_parse_answer(got[0].msg, got[0].len, &ai) == 0,
		    "it parses");
		is(id_of(got[0].msg), 0x4242, "its ID");
		is(rcode_of(&got[0]), DNS_RCODE_NOERROR, "NOERROR");
		is(ai.ancount, 1, "the A record kept");
		is(ai.arcount, 1, "OPT and the record after it cut: only our OPT");
		ok(ai.has_opt && ai.opt_last, "our OPT, last");
		is(got[0].len, qe + 16 + 11, "nothing else");
		is_mem(got[0].msg + qe, a + qend(a, k), 16, "the A record as sent");
		is_mem(got[0].msg + 12, q + 12, qe - 12, "the client's case");
	}
	endtable(qt);
}

static void
test_coalesce(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "0", NULL };
	static struct config cfg;
	struct query_table *qt;
	uint8_t q[512];
	size_t n;
	int base = sa_srv.queries, i, k, bad;
	static int seen[200];

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table for coalescing");
	if (qt == NULL)
		return;
	/* Two identical questions (case aside): one goes upstream. */
	n = mkq(q, 0xa001, "same.test", DNS_TYPE_A, false);
	is(submit(qt, 1, q, n), 0, "first taken");
	n = mkq(q, 0xa002, "SAME.test", DNS_TYPE_A, false);
	is(submit(qt, 2, q, n), 0, "second taken");
	PUMP_UNTIL(sa_srv.queries > base);
	pump(20);
	is(sa_srv.queries, base + 1, "one upstream query for two clients");
	is(query_stats(qt)->coalesced, 1, "counted as coalesced");
	(void)answer(&sa_srv, base, 60);
	PUMP_UNTIL(ngot == 2);
	pump(10);
	is(ngot, 2, "both clients answered, once each");
	for (i = 0; i < ngot && i < 2; i++) {
		uint16_t want = got[i].client == 1 ? 0xa001 : 0xa002;

		is(id_of(got[i].msg), want, "client %u: its own ID", got[i].client);
		ok(memcmp(got[i].msg + 13, got[i].client == 1 ? "same" : "SAME",
		    4) == 0, "client %u: its own case", got[i].client);
		is(rcode_of(&got[i]), 0, "client %u: NOERROR", got[i].client);
	}
	is(query_inflight(qt), 0, "nothing left in flight");

	/* 200 identical: one leader and 199 waiters, no cliff. */
	ngot = 0;
	base = sa_srv.queries;
	for (i = 0; i < 200; i++) {
		n = mkq(q, (uint16_t)(0xb000 + i), "many.test", DNS_TYPE_A,
		    false);
		(void)submit(qt, (unsigned)(100 + i), q, n);
	}
	is(query_inflight(qt), 200, "200 in flight");
	is(query_stats(qt)->coalesced, 1 + 199, "199 joined the first");
	PUMP_UNTIL(sa_srv.queries >= base + 1);
	pump(20);
	is(sa_srv.queries, base + 1, "one upstream query for 200 clients");
	(void)answer(&sa_srv, base, 60);
	PUMP_UNTIL(ngot >= 200);
	pump(10);
	is(ngot, 200, "200 answers");
	memset(seen, 0, sizeof(seen));
	bad = 0;
	for (k = 0; k < ngot && k < NGOT; k++) {
		unsigned c = got[k].client - 100;

		if (c >= 200 || id_of(got[k].msg) != 0xb000 + c ||
		    rcode_of(&got[k]) != 0)
			bad++;
		else
			seen[c]++;
	}
	is(bad, 0, "each with its client's ID, NOERROR");
	for (k = 0; k < 200 && seen[k] == 1; k++)
		;
	is(k, 200, "each client exactly once");
	is(query_inflight(qt), 0, "nothing left in flight");
	endtable(qt);
}

static void
test_retry(struct tls_ctx *tls)
{
	static struct config cfg;
	struct query_table *qt;
	uint16_t rport;
	uint8_t q[512];
	size_t n;
	int rfd = refused_port(&rport), base = sa_srv.queries;
	const char *extra[] = { "--upstream", upname(rport), "--upstream",
	    upname(sa_srv.port), "--cache-size", "0", NULL };

	ok(rfd != -1, "a port that refuses connections");
	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table: upstream 0 refuses, upstream 1 answers");
	if (qt == NULL)
		return;
	n = mkq(q, 0x7001, "retry.test", DNS_TYPE_A, false);
	is(submit(qt, 4, q, n), 0, "query taken");
	PUMP_UNTIL(sa_srv.queries > base);
	is(sa_srv.queries, base + 1, "retried on upstream 1, which read it");
	is(up_pool_stats(query_pool(qt), 0)->queries, 1, "upstream 0 had it once");
	is(up_pool_stats(query_pool(qt), 0)->errors, 1, "and failed");
	(void)answer(&sa_srv, base, 60);
	PUMP_UNTIL(ngot > 0);
	pump(10);
	is(ngot, 1, "the client gets one answer");
	is(id_of(got[0].msg), 0x7001, "its ID");
	is(rcode_of(&got[0]), DNS_RCODE_NOERROR, "NOERROR, from upstream 1");
	is(up_pool_stats(query_pool(qt), 1)->answers, 1, "upstream 1 answered");
	is(query_inflight(qt), 0, "nothing left in flight");
	endtable(qt);
	close(rfd);
}

/*
 * Upstream 0 refuses; upstream 1 takes the connection and drops it before
 * the handshake, after upstream 0's back-off has ended. The query has then
 * failed on both: it must not go back to upstream 0 (its tried bits), and
 * the client gets a SERVFAIL at once, not at the deadline.
 */
static void
test_avoid(struct tls_ctx *tls)
{
	static struct config cfg;
	struct query_table *qt;
	uint16_t rport;
	uint8_t q[512];
	size_t n;
	uint64_t t0 = fake_now;
	int rfd = refused_port(&rport), acc;
	const char *extra[] = { "--upstream", upname(rport), "--upstream",
	    upname(sb_srv.port), "--cache-size", "0", NULL };

	sb_srv.tls = false;
	acc = sb_srv.accepted;
	qt = mktable(&cfg, tls, &rc, extra);
	ok(rfd != -1 && qt != NULL, "table: upstream 0 refuses, 1 never handshakes");
	if (qt == NULL)
		return;
	n = mkq(q, 0x7002, "avoid.test", DNS_TYPE_A, false);
	is(submit(qt, 5, q, n), 0, "query taken");
	PUMP_UNTIL(sb_srv.accepted > acc);
	is(sb_srv.accepted, acc + 1, "after upstream 0 refused, upstream 1 connected");
	is(up_pool_stats(query_pool(qt), 0)->errors, 1, "upstream 0 failed once");
	at(t0 + 600);		/* upstream 0's back-off (250 ms) is over */
	pump(3);
	is(ngot, 0, "nothing yet");
	{
		int i;

		for (i = 0; i < DOTSRV_CONNS; i++)
			if (sb_srv.c[i].fd != -1)
				dotsrv_drop(&sb_srv, i);
	}
	PUMP_UNTIL(ngot > 0);
	pump(10);
	is(ngot, 1, "one answer, well before the deadline");
	is(rcode_of(&got[0]), DNS_RCODE_SERVFAIL, "a SERVFAIL");
	is(fake_now, t0 + 600, "the clock did not move: no timeout involved");
	is(up_pool_stats(query_pool(qt), 0)->queries, 1,
	    "upstream 0, which failed this query, was not tried again");
	is(up_pool_stats(query_pool(qt), 1)->queries, 1,
	    "nor upstream 1");
	is(query_inflight(qt), 0, "nothing left in flight");
	sb_srv.tls = true;
	endtable(qt);
	close(rfd);
}

/*
 * A reload while a query waits on the old pool's upstream 0, which then
 * refuses: the retry goes to the new pool, whose upstream 0 is another,
 * working server. The old pool's "upstream 0 failed" must not keep the
 * query off the new pool's upstream 0.
 */
static void
test_reload(struct tls_ctx *tls)
{
	static struct config cfg, cfg2;
	struct query_table *qt;
	struct tls_ctx *tls2;
	uint16_t rport;
	uint8_t q[512];
	size_t n;
	char err[256];
	int rfd = refused_port(&rport), base = sa_srv.queries;
	const char *extra[] = { "--upstream", upname(rport), "--cache-size",
	    "0", NULL };
	const char *extra2[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "0", NULL };

	qt = mktable(&cfg, tls, &rc, extra);
	ok(rfd != -1 && qt != NULL, "table: its only upstream refuses");
	if (qt == NULL)
		return;
	n = mkq(q, 0x7003, "reload.test", DNS_TYPE_A, false);
	is(submit(qt, 6, q, n), 0, "query taken, sent to old upstream 0");
	is(up_pool_stats(query_pool(qt), 0)->queries, 1, "queued there");
	tls2 = tls_ctx_new(ca, err, sizeof(err));
	ok(tls2 != NULL && mkcfg(&cfg2, extra2) == 0 &&
	    query_swap_upstreams(qt, tls2, &cfg2) == 0,
	    "reload: the new pool's upstream 0 is a working server");
	PUMP_UNTIL(sa_srv.queries > base || ngot > 0);
	is(sa_srv.queries, base + 1, "the retry went to the new upstream 0");
	is(ngot, 0, "no SERVFAIL");
	if (sa_srv.queries > base) {
		(void)answer(&sa_srv, base, 60);
		PUMP_UNTIL(ngot > 0);
	}
	is(ngot, 1, "one answer");
	is(rcode_of(&got[0]), DNS_RCODE_NOERROR, "NOERROR");
	is(id_of(got[0].msg), 0x7003, "the client's ID");
	is(query_inflight(qt), 0, "nothing left in flight");
	endtable(qt);
	close(rfd);
}

/*
 * The cache on the fake clock: a hit answers without the upstream; after
 * the TTL the query goes upstream; when that upstream is slower than
 * --cache-client-timeout the client gets the expired answer (TTL 30) and
 * the refresh goes on without a second answer.
 */
static void
test_cache(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "100", "--cache-client-timeout", "300", NULL };
	static struct config cfg;
	struct query_table *qt;
	uint8_t q[512];
	size_t n;
	uint64_t t0, c0, b0, s0;
	int base = sa_srv.queries, i;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table with the cache on");
	if (qt == NULL)
		return;
	t0 = fake_now;
	n = mkq(q, 0xc001, "cached.test", DNS_TYPE_A, true);
	is(submit(qt, 7, q, n), 0, "first query taken");
	PUMP_UNTIL(sa_srv.queries > base);
	is(sa_srv.queries, base + 1, "it went upstream");
	(void)answer(&sa_srv, base, 100);
	PUMP_UNTIL(ngot > 0);
	is(ngot, 1, "answered");
	is(ttl_of(&got[0]), 100, "TTL 100");

	at(t0 + 40000);
	pump(2);
	n = mkq(q, 0xc002, "CACHED.test", DNS_TYPE_A, true);
	is(submit(qt, 8, q, n), 0, "the same question 40 s later");
	is(ngot, 2, "answered at once");
	is(id_of(got[1].msg), 0xc002, "with its ID");
	is(ttl_of(&got[1]), 60, "from the cache, TTL aged by 40 s");
	is(query_inflight(qt), 0, "nothing in flight");
	pump(20);
	is(sa_srv.queries, base + 1, "no upstream query");
	is(query_stats(qt)->responses[QS_CACHE][0], 1, "counted as a cache answer");

	/* Expired: upstream again; it is slow, the stale answer comes at
	 * the client-response timeout. */
	at(t0 + 101000);
	pump(2);
	n = mkq(q, 0xc003, "cached.test", DNS_TYPE_A, true);
	is(submit(qt, 9, q, n), 0, "the same question after the TTL");
	PUMP_UNTIL(sa_srv.queries > base + 1);
	is(sa_srv.queries, base + 2, "it went upstream");
	at(t0 + 101299);
	pump(5);
	is(ngot, 2, "nothing before the client-response timeout");
	at(t0 + 101300);
	pump(5);
	is(ngot, 3, "at 300 ms: an answer");
	is(id_of(got[2].msg), 0xc003, "with its ID");
	is(rcode_of(&got[2]), DNS_RCODE_NOERROR, "NOERROR");
	is(ttl_of(&got[2]), 30, "the stale entry, TTL 30");
	is(query_stats(qt)->cache_stale, 1, "counted as stale");
	is(query_inflight(qt), 1, "the refresh goes on");
	(void)answer(&sa_srv, base + 1, 200);
	PUMP_UNTIL(query_inflight(qt) == 0);
	pump(5);
	is(ngot, 3, "the fresh answer is not delivered again");
	is(query_inflight(qt), 0, "the refresh ended");
	n = mkq(q, 0xc004, "cached.test", DNS_TYPE_A, true);
	is(submit(qt, 10, q, n), 0, "the same question once more");
	is(ngot, 4, "answered at once");
	is(ttl_of(&got[3]), 200, "from the refreshed entry");
	pump(10);
	is(sa_srv.queries, base + 2, "no upstream query");

	/* In a batch (a front end's one read), the hits are timed together
	 * when it ends; outside one, each on its own. */
	c0 = query_stats(qt)->duration.count;
	b0 = query_stats(qt)->duration.counts[0];
	s0 = query_stats(qt)->duration.sum_us;
	query_batch_begin(qt);
	for (i = 0; i < 3; i++) {
		/* The read's time passes before the first hit: every hit
		 * of the batch is timed from the read, not from itself. */
		if (i == 0)
			(void)usleep(3000);
		n = mkq(q, (uint16_t)(0xc010 + i), "cached.test", DNS_TYPE_A,
		    true);
		(void)submit(qt, 11, q, n);
	}
	is(ngot, 7, "three hits in a batch answered at once");
	is(query_stats(qt)->duration.count, c0, "not timed before its end");
	query_batch_end(qt);
	is(query_stats(qt)->duration.count, c0 + 3, "each timed at its end");
	ok(query_stats(qt)->duration.sum_us - s0 >= 3 * 3000,
	    "each from the read, 3 ms before");
	is(query_stats(qt)->duration.counts[0], b0,
	    "none in the first bucket");
	query_batch_end(qt);
	is(query_stats(qt)->duration.count, c0 + 3, "a second end: no more");
	(void)submit(qt, 12, q, n);
	is(query_stats(qt)->duration.count, c0 + 4, "outside: timed at once");
	endtable(qt);
}

/* A UDP resolver on 127.0.0.1 for the local-zone path. */
static int
udp_resolver(struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*sl = sizeof(*sin);
	if (fd == -1 || bind(fd, (struct sockaddr *)sin, sizeof(*sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)sin, sl) != 0)
		return -1;
	return fd;
}

/* One datagram from fd, if any: its length (0: none), the sender. */
static size_t
udp_take(int fd, uint8_t *buf, size_t cap, struct sockaddr_storage *from,
    socklen_t *fl)
{
	ssize_t n;

	*fl = sizeof(*from);
	n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, fl);
	return n > 0 ? (size_t)n : 0;
}

/*
 * Local zones go in plain DNS to the client's original resolver, or to
 * resolv.conf's first nameserver when that is unknown; never to the DoT
 * upstream. No answer: one SERVFAIL at the deadline.
 */
static void
test_local(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--local-zone", "corp.test", "--cache-size", "0", NULL };
	static struct config cfg;
	struct query_table *qt;
	struct query_origin o;
	struct sockaddr_storage ra, rb, from;
	socklen_t ral, rbl, fl;
	uint8_t q[512], buf[2048], a[2048];
	size_t n, k, qe;
	uint64_t t0;
	int fa = udp_resolver(&ra, &ral), fb = udp_resolver(&rb, &rbl);
	int base = sa_srv.queries, i;

	ok(fa != -1 && fb != -1, "two UDP resolvers on loopback");
	memcpy(&rc.ns[0], &rb, rbl);
	rc.ns_len[0] = rbl;
	rc.nns = 1;
	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table with a local zone");
	if (qt == NULL || fa == -1 || fb == -1)
		goto out;

	/* The original destination known: there. */
	n = mkq(q, 0xd001, "Svc.Corp.Test", DNS_TYPE_A, true);
	qe = qend(q, n);
	o = origin(20);
	memcpy(&o.orig, &ra, ral);
	o.orig_len = ral;
	is(query_submit(qt, q, n, &o), 0, "local-zone query taken");
	k = 0;
	for (i = 0; i < 500 && k == 0; i++) {
		pump(1);
		k = udp_take(fa, buf, sizeof(buf), &from, &fl);
	}
	ok(k > 12, "the original resolver got it in plain DNS");
	if (k > 12) {
		size_t m = mka(a, buf, k, 30, true);

		ok(sendto(fa, a, m, 0, (struct sockaddr *)&from, fl) ==
		    (ssize_t)m, "it answers");
	}
	PUMP_UNTIL(ngot > 0);
	is(ngot, 1, "the client gets one answer");
	is(id_of(got[0].msg), 0xd001, "its ID");
	is(rcode_of(&got[0]), DNS_RCODE_NOERROR, "NOERROR");
	is_mem(got[0].msg + 12, q + 12, qe - 12, "its case");
	is(query_stats(qt)->orig_known, 1, "sent to the original destination");
	is(udp_take(fb, buf, sizeof(buf), &from, &fl), 0, "not to resolv.conf's");

	/* Unknown: resolv.conf's nameserver, which stays silent. */
	ngot = 0;
	t0 = fake_now;
	n = mkq(q, 0xd002, "db.corp.test", DNS_TYPE_A, false);
	is(submit(qt, 21, q, n), 0, "local-zone query, destination unknown");
	k = 0;
	for (i = 0; i < 500 && k == 0; i++) {
		pump(1);
		k = udp_take(fb, buf, sizeof(buf), &from, &fl);
	}
	ok(k > 12, "resolv.conf's nameserver got it");
	is(query_stats(qt)->orig_fallback, 1, "counted as a fallback");
	at(t0 + 999);
	pump(5);
	is(ngot, 0, "nothing before the timeout");
	at(t0 + 1000);
	pump(5);
	is(ngot, 1, "at the timeout: one answer");
	is(rcode_of(&got[0]), DNS_RCODE_SERVFAIL, "a SERVFAIL");
	is(id_of(got[0].msg), 0xd002, "with the client's ID");
	is(query_inflight(qt), 0, "nothing left in flight");
	pump(10);
	is(sa_srv.queries, base, "the DoT upstream saw none of it");
out:
	if (qt != NULL)
		endtable(qt);
	memset(&rc, 0, sizeof(rc));
	if (fa != -1)
		close(fa);
	if (fb != -1)
		close(fb);
}

/*
 * Error answers without a question (REFUSED here) answer the client at
 * once with that RCODE and its own question; a big answer is cut to a
 * UDP client's 512 bytes with TC and given whole over TCP.
 */
static void
test_refused_and_size(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "0", NULL };
	static struct config cfg;
	struct query_table *qt;
	struct query_origin o;
	uint8_t q[512], a[4096];
	size_t n, qe, k;
	int base = sa_srv.queries, i;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table for error answers and sizes");
	if (qt == NULL)
		return;
	n = mkq(q, 0xe001, "Refused.test", DNS_TYPE_A, true);
	qe = qend(q, n);
	is(submit(qt, 30, q, n), 0, "query taken");
	PUMP_UNTIL(sa_srv.queries > base);
	{
		uint8_t r[12] = { 0 };

		memcpy(r, sa_srv.q[base].msg, 2);
		r[2] = 0x81;
		r[3] = 0x80 | DNS_RCODE_REFUSED;
		is(dotsrv_send(&sa_srv, sa_srv.q[base].conn, r, sizeof(r)), 0,
		    "REFUSED with no question");
	}
	PUMP_UNTIL(ngot > 0);
	is(ngot, 1, "one answer, before any timeout");
	is(rcode_of(&got[0]), DNS_RCODE_REFUSED, "REFUSED");
	is(id_of(got[0].msg), 0xe001, "the client's ID");
	is(got[0].msg[5], 1, "with the client's question");
	is_mem(got[0].msg + 12, q + 12, qe - 12, "as the client wrote it");

	/* 40 A records: 12 + 15 + 40 * 16 bytes, more than 512. */
	ngot = 0;
	base = sa_srv.queries;
	n = mkq(q, 0xe002, "big.test", DNS_TYPE_A, false);
	is(submit(qt, 31, q, n), 0, "UDP query, no EDNS");
	o = origin(32);
	o.tcp = true;
	n = mkq(q, 0xe003, "big.test", DNS_TYPE_A, false);
	is(query_submit(qt, q, n, &o), 0, "the same over TCP (coalesced)");
	PUMP_UNTIL(sa_srv.queries > base);
	k = mka(a, sa_srv.q[base].msg, sa_srv.q[base].len, 60, false);
	for (i = 1; i < 40; i++) {
		memcpy(a + k, a + k - 16, 16);
		a[k + 15] = (uint8_t)(i + 1);
		k += 16;
	}
	a[7] = 40;
	is(dotsrv_send(&sa_srv, sa_srv.q[base].conn, a, k), 0, "a 667-byte answer");
	PUMP_UNTIL(ngot >= 2);
	is(ngot, 2, "both answered");
	for (i = 0; i < ngot && i < 2; i++) {
		if (got[i].client == 31) {
			ok(got[i].len <= 512, "UDP: at most 512 bytes");
			ok(got[i].msg[2] & 0x02, "UDP: TC set");
			is(id_of(got[i].msg), 0xe002, "UDP: its ID");
		} else {
			is(got[i].len, k, "TCP: the whole answer");
			ok(!(got[i].msg[2] & 0x02), "TCP: no TC");
			is(id_of(got[i].msg), 0xe003, "TCP: its ID");
		}
	}
	is(query_stats(qt)->truncated, 1, "one truncation counted");
	endtable(qt);
}

/* Server s answers the k-th query it read with SERVFAIL (question kept). */
static int
answer_servfail(struct dotsrv *s, int k)
{
	uint8_t a[DOTSRV_QLEN];
	size_t qe = qend(s->q[k].msg, s->q[k].len);

	memcpy(a, s->q[k].msg, qe);
	a[2] = 0x81;
	a[3] = 0x80 | DNS_RCODE_SERVFAIL;
	memset(a + 6, 0, 6);
	return dotsrv_send(s, s->q[k].conn, a, qe);
}

/* Submits name from client, returns the index of the new delivery or -1
 * when nothing was delivered at once. */
static int
ask(struct query_table *qt, unsigned client, uint16_t id, const char *name)
{
	uint8_t q[512];
	size_t n = mkq(q, id, name, DNS_TYPE_A, true);
	int before = ngot;

	if (submit(qt, client, q, n) != 0)
		return -2;
	return ngot > before ? ngot - 1 : -1;
}

/*
 * More of the cache at the table level, the client-response timer off
 * (--cache-client-timeout above --timeout) so each path stands alone:
 * prefetch in the last tenth of a TTL; an upstream SERVFAIL answered from
 * the expired entry, and later queries answered from it at once while the
 * failure is remembered; a leader and its waiter answered from the expired
 * entry at the deadline; a failure without data cached as SERVFAIL; a
 * reload to other upstreams empties the cache, and an answer from the old
 * pool is delivered but not cached.
 */
static void
test_cache_paths(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "100", "--cache-client-timeout", "5000",
	    "--cache-servfail-ttl", "5", NULL };
	const char *extra2[] = { "--upstream", upname(sb_srv.port),
	    "--cache-size", "100", "--cache-client-timeout", "5000",
	    "--cache-servfail-ttl", "5", NULL };
	static struct config cfg, cfg2;
	struct query_table *qt;
	struct tls_ctx *tls2;
	char err[256];
	uint64_t t0;
	int base = sa_srv.queries, g, i, bq;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table: cache on, client-response timer off");
	if (qt == NULL)
		return;

	/* Prefetch. */
	t0 = fake_now;
	is(ask(qt, 40, 0x9001, "pre.test"), -1, "pre.test goes upstream");
	PUMP_UNTIL(sa_srv.queries > base);
	(void)answer(&sa_srv, base, 100);
	PUMP_UNTIL(ngot > 0);
	is(ngot, 1, "answered, TTL 100");
	at(t0 + 95000);
	g = ask(qt, 41, 0x9002, "pre.test");
	ok(g >= 0, "5 s before expiry: answered at once");
	if (g >= 0)
		is(ttl_of(&got[g]), 5, "from the cache, TTL 5");
	is(query_stats(qt)->cache_prefetch, 1, "and a refresh started");
	is(query_inflight(qt), 1, "in the background");
	PUMP_UNTIL(sa_srv.queries > base + 1);
	is(sa_srv.queries, base + 2, "the refresh went upstream");
	(void)answer(&sa_srv, base + 1, 300);
	PUMP_UNTIL(query_inflight(qt) == 0);
	pump(5);
	is(ngot, 2, "the refresh answers no client");
	g = ask(qt, 42, 0x9003, "pre.test");
	ok(g >= 0, "next query answered at once");
	if (g >= 0)
		is(ttl_of(&got[g]), 300, "from the refreshed entry");

	/* Expired; the upstream answers SERVFAIL: the stale entry instead. */
	at(t0 + 95000 + 301000);
	pump(2);
	is(ask(qt, 43, 0x9004, "pre.test"), -1, "after expiry: upstream");
	PUMP_UNTIL(sa_srv.queries > base + 2);
	is(answer_servfail(&sa_srv, base + 2), 0, "which answers SERVFAIL");
	PUMP_UNTIL(ngot > 3);
	is(ngot, 4, "one answer");
	is(rcode_of(&got[3]), DNS_RCODE_NOERROR, "not the SERVFAIL");
	is(ttl_of(&got[3]), 30, "the stale entry, TTL 30");
	is(id_of(got[3].msg), 0x9004, "with the client's ID");
	g = ask(qt, 44, 0x9005, "pre.test");
	ok(g >= 0, "while the failure is remembered: stale at once");
	if (g >= 0)
		is(ttl_of(&got[g]), 30, "TTL 30");
	pump(10);
	is(sa_srv.queries, base + 3, "without asking the upstream");

	/* A leader and its waiter, the upstream silent: stale at the
	 * deadline for both. */
	t0 = fake_now;
	is(ask(qt, 45, 0x9006, "st.test"), -1, "st.test goes upstream");
	PUMP_UNTIL(sa_srv.queries > base + 3);
	(void)answer(&sa_srv, base + 3, 10);
	PUMP_UNTIL(ngot > 5);
	is(ngot, 6, "answered, TTL 10");
	at(t0 + 11000);
	pump(2);
	is(ask(qt, 46, 0x9007, "st.test"), -1, "expired: upstream");
	is(ask(qt, 47, 0x9008, "st.test"), -1, "an identical one joins it");
	PUMP_UNTIL(sa_srv.queries > base + 4);
	at(t0 + 11999);
	pump(5);
	is(ngot, 6, "nothing before the deadline");
	at(t0 + 12000);
	pump(5);
	is(ngot, 8, "at the deadline: both answered");
	for (i = 6; i < 8 && i < ngot; i++) {
		is(rcode_of(&got[i]), DNS_RCODE_NOERROR, "client %u: NOERROR",
		    got[i].client);
		is(ttl_of(&got[i]), 30, "client %u: the stale entry",
		    got[i].client);
		is(id_of(got[i].msg), got[i].client == 46 ? 0x9007 : 0x9008,
		    "client %u: its ID", got[i].client);
	}
	is(query_inflight(qt), 0, "nothing left in flight");

	/* No data at all: the failure is cached as SERVFAIL for 5 s. */
	t0 = fake_now;
	bq = sa_srv.queries;
	is(ask(qt, 48, 0x900a, "fail.test"), -1, "fail.test goes upstream");
	PUMP_UNTIL(sa_srv.queries > bq);
	at(t0 + 1000);
	pump(5);
	is(ngot, 9, "SERVFAIL at the deadline");
	is(rcode_of(&got[8]), DNS_RCODE_SERVFAIL, "SERVFAIL");
	at(t0 + 3000);
	g = ask(qt, 49, 0x900b, "fail.test");
	ok(g >= 0, "2 s later: answered at once");
	if (g >= 0)
		is(rcode_of(&got[g]), DNS_RCODE_SERVFAIL, "SERVFAIL from the cache");
	pump(10);
	is(sa_srv.queries, bq + 1, "without asking the upstream");
	at(t0 + 6100);
	pump(2);
	is(ask(qt, 50, 0x900c, "fail.test"), -1, "after 5 s: upstream again");
	PUMP_UNTIL(sa_srv.queries > bq + 1);
	is(sa_srv.queries, bq + 2, "it asked");
	(void)answer(&sa_srv, bq + 1, 60);
	PUMP_UNTIL(query_inflight(qt) == 0);
	is(ngot, 11, "answered");

	/* A reload to another upstream while r.test is in flight. */
	bq = sa_srv.queries;
	is(ask(qt, 51, 0x900d, "r.test"), -1, "r.test goes upstream");
	PUMP_UNTIL(sa_srv.queries > bq);
	tls2 = tls_ctx_new(ca, err, sizeof(err));
	ok(tls2 != NULL && mkcfg(&cfg2, extra2) == 0 &&
	    query_swap_upstreams(qt, tls2, &cfg2) == 0,
	    "reload: another upstream");
	{
		int sbq = sb_srv.queries;

		is(ask(qt, 54, 0x9010, "r.test"), -1, "r.test again");
		PUMP_UNTIL(sb_srv.queries > sbq);
		is(sb_srv.queries, sbq + 1, "it does not join the query sent "
		    "to the old upstream: it goes to the new one");
		(void)answer(&sa_srv, bq, 60);
		PUMP_UNTIL(ngot > 11);
		is(ngot, 12, "the old pool's answer is delivered");
		is(id_of(got[11].msg), 0x900d, "to its client only");
		is(ask(qt, 52, 0x900e, "r.test"), -1,
		    "but not cached: r.test is not answered at once");
		is(ask(qt, 53, 0x900f, "fail.test"), -1,
		    "and the cache was emptied: neither is fail.test");
		PUMP_UNTIL(sb_srv.queries >= sbq + 2);
		pump(10);
		is(sb_srv.queries, sbq + 2, "which goes to the new upstream "
		    "(the second r.test joined the first)");
		is(sa_srv.queries, bq + 1, "nothing more to the old one");
		(void)answer(&sb_srv, sbq, 60);
		(void)answer(&sb_srv, sbq + 1, 60);
		PUMP_UNTIL(ngot >= 15);
		is(ngot, 15, "all three answered");
	}
	is(query_inflight(qt), 0, "nothing left in flight");
	endtable(qt);
}

/* Server s answers the k-th query it read (one A record, TTL ttl), with
 * header bits set and cleared: [2] and [3] are the flag bytes. */
static int
answer_bits(struct dotsrv *s, int k, uint32_t ttl, uint8_t set2,
    uint8_t clr2, uint8_t set3)
{
	uint8_t a[DOTSRV_QLEN + 64];
	size_t n = mka(a, s->q[k].msg, s->q[k].len, ttl, true);

	a[2] = (uint8_t)((a[2] | set2) & ~clr2);
	a[3] |= set3;
	return dotsrv_send(s, s->q[k].conn, a, n);
}

/* Submits a query for name with extra header flags (byte 3: AD 0x20, CD
 * 0x10); returns the index of an answer delivered at once, or -1. */
static int
ask_flags(struct query_table *qt, unsigned client, uint16_t id,
    const char *name, uint8_t flags3)
{
	uint8_t q[512];
	size_t n = mkq(q, id, name, DNS_TYPE_A, false);
	int before = ngot;

	q[3] |= flags3;
	if (submit(qt, client, q, n) != 0)
		return -2;
	return ngot > before ? ngot - 1 : -1;
}

static const struct got *
got_for(unsigned client)
{
	int i;

	for (i = 0; i < ngot && i < NGOT; i++)
		if (got[i].client == client)
			return &got[i];
	return NULL;
}

/*
 * AD per RFC 6840 §5.7: asked for upstream on every query, given to a
 * client only when it asked with AD (or DO), from the leader's answer,
 * to waiters and from the cache alike.
 */
static void
test_ad(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port), NULL };
	static struct config cfg;
	struct query_table *qt;
	const struct got *g;
	int base = sa_srv.queries, i;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table for AD");
	if (qt == NULL)
		return;
	is(ask_flags(qt, 60, 0x7001, "ad.test", 0), -1, "AD=0 client first");
	is(ask_flags(qt, 61, 0x7002, "ad.test", DNS_FLAG_AD), -1,
	    "an AD=1 client joins it");
	PUMP_UNTIL(sa_srv.queries > base);
	ok(sa_srv.q[base].msg[3] & DNS_FLAG_AD, "AD asked for upstream");
	(void)answer_bits(&sa_srv, base, 300, 0, 0, DNS_FLAG_AD);
	PUMP_UNTIL(ngot >= 2);
	ok((g = got_for(60)) != NULL && !(g->msg[3] & DNS_FLAG_AD),
	    "the AD=0 leader gets no AD");
	ok((g = got_for(61)) != NULL && (g->msg[3] & DNS_FLAG_AD),
	    "the AD=1 waiter gets AD");
	i = ask_flags(qt, 62, 0x7003, "ad.test", DNS_FLAG_AD);
	ok(i >= 0 && (got[i].msg[3] & DNS_FLAG_AD), "AD=1 from the cache: AD");
	i = ask_flags(qt, 63, 0x7004, "ad.test", 0);
	ok(i >= 0 && !(got[i].msg[3] & DNS_FLAG_AD),
	    "AD=0 from the cache: no AD");
	ok(i >= 0 && !(got[i].msg[2] & (DNS_FLAG_AA >> 8)) ,
	    "and no AA from the cache");

	/* An AD=1 client first and an unvalidated answer: no AD later. */
	ngot = 0;
	base = sa_srv.queries;
	is(ask_flags(qt, 64, 0x7005, "noad.test", DNS_FLAG_AD), -1,
	    "AD=1 client first");
	PUMP_UNTIL(sa_srv.queries > base);
	(void)answer_bits(&sa_srv, base, 300, 0, 0, 0);
	PUMP_UNTIL(ngot >= 1);
	ok(!(got[0].msg[3] & DNS_FLAG_AD), "no AD when the answer has none");

	/* DO: the cached answer's OPT (rebuilt per client) keeps DO. */
	ngot = 0;
	base = sa_srv.queries;
	{
		uint8_t q[512], a[DOTSRV_QLEN + 64];
		size_t n = mkq(q, 0x7006, "do.test", DNS_TYPE_A, true), m;

		q[n - 4] |= 0x80;		/* DO */
		is(submit(qt, 65, q, n), 0, "DO=1 client");
		PUMP_UNTIL(sa_srv.queries > base);
		m = mka(a, sa_srv.q[base].msg, sa_srv.q[base].len, 300, true);
		a[m - 4] |= 0x80;		/* DO echoed */
		(void)dotsrv_send(&sa_srv, sa_srv.q[base].conn, a, m);
		PUMP_UNTIL(ngot >= 1);
		q[1] = 0x07;
		is(submit(qt, 66, q, n), 0, "another DO=1 client");
		ok(ngot == 2 && got[1].len > 11 &&
		    (got[1].msg[got[1].len - 4] & 0x80),
		    "answered from the cache with DO in its OPT");
	}
	endtable(qt);
}

/*
 * A late answer on a reused ID is checked for the key's bits: one whose
 * RD differs is another query's (not delivered); one whose CD differs is
 * delivered but not cached.
 */
static void
test_late_bits(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port), NULL };
	static struct config cfg;
	struct query_table *qt;
	uint64_t t0 = fake_now;
	int base = sa_srv.queries;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table for the late-answer bits");
	if (qt == NULL)
		return;
	is(ask_flags(qt, 70, 0x7101, "rd.test", 0), -1, "RD=1 query");
	PUMP_UNTIL(sa_srv.queries > base);
	(void)answer_bits(&sa_srv, base, 111, 0, 0x01, 0);
	(void)answer_bits(&sa_srv, base, 300, 0, 0, 0);
	PUMP_UNTIL(ngot >= 1);
	pump(20);
	is(ngot, 1, "one answer delivered");
	is(ttl_of(&got[0]), 300, "the real one, not the one with RD=0 before it");

	ngot = 0;
	base = sa_srv.queries;
	is(ask_flags(qt, 71, 0x7102, "cd.test", DNS_FLAG_CD), -1, "CD=1 query");
	PUMP_UNTIL(sa_srv.queries > base);
	(void)answer_bits(&sa_srv, base, 300, 0, 0, 0);	/* CD dropped */
	PUMP_UNTIL(ngot >= 1);
	is(ngot, 1, "an answer without CD is delivered");
	is(ask_flags(qt, 72, 0x7103, "cd.test", DNS_FLAG_CD), -1,
	    "but not cached under the CD=1 key");
	PUMP_UNTIL(sa_srv.queries > base + 1);
	(void)answer_bits(&sa_srv, base + 1, 300, 0, 0, DNS_FLAG_CD);
	PUMP_UNTIL(ngot >= 2);
	at(t0 + 1);
	endtable(qt);
}

/*
 * A local overload (the one connection's ID map full) answers SERVFAIL,
 * counted by cause, and is not remembered: the name goes upstream as soon
 * as there is room.
 */
static void
test_overload_not_cached(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--max-inflight", "1", NULL };
	static struct config cfg;
	struct query_table *qt;
	int base = sa_srv.queries, g;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table with one query in flight per connection");
	if (qt == NULL)
		return;
	is(ask_flags(qt, 80, 0x7201, "slow.test", 0), -1, "slow.test in flight");
	PUMP_UNTIL(sa_srv.queries > base);
	g = ask_flags(qt, 81, 0x7202, "victim.test", 0);
	ok(g >= 0, "victim.test: answered at once (no room)");
	if (g >= 0)
		is(rcode_of(&got[g]), DNS_RCODE_SERVFAIL, "with SERVFAIL");
	is(query_stats(qt)->overload_by[QO_DOT], 1, "counted: cause dot");
	(void)answer(&sa_srv, base, 60);
	PUMP_UNTIL(query_inflight(qt) == 0);
	is(ask_flags(qt, 82, 0x7203, "victim.test", 0), -1,
	    "victim.test again: not a cached failure, it goes upstream");
	PUMP_UNTIL(sa_srv.queries > base + 1);
	is(sa_srv.queries, base + 2, "the upstream sees it");
	(void)answer(&sa_srv, base + 1, 60);
	PUMP_UNTIL(query_inflight(qt) == 0);
	ok(ngot >= 3 && rcode_of(&got[ngot - 1]) == DNS_RCODE_NOERROR,
	    "and it resolves");
	endtable(qt);
}

/*
 * Serve-stale after any failed refresh (REFUSED here, with its question);
 * what does not fit a UDP client: additional records dropped, then
 * authority NS records, TC only when the answer section does not fit.
 */
static void
test_refresh_and_fit(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--cache-client-timeout", "5000", NULL };
	static struct config cfg;
	struct query_table *qt;
	uint8_t a[4096];
	size_t k, i;
	uint64_t t0 = fake_now;
	int base = sa_srv.queries;

	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table for refresh failures and fitting");
	if (qt == NULL)
		return;
	is(ask_flags(qt, 90, 0x7301, "ref.test", 0), -1, "ref.test upstream");
	PUMP_UNTIL(sa_srv.queries > base);
	(void)answer(&sa_srv, base, 10);
	PUMP_UNTIL(ngot >= 1);
	at(t0 + 11000);
	pump(2);
	is(ask_flags(qt, 91, 0x7302, "ref.test", 0), -1, "expired: upstream");
	PUMP_UNTIL(sa_srv.queries > base + 1);
	(void)answer_bits(&sa_srv, base + 1, 300, 0, 0, DNS_RCODE_REFUSED);
	PUMP_UNTIL(ngot >= 2);
	is(rcode_of(&got[1]), DNS_RCODE_NOERROR, "REFUSED: the stale answer");
	is(ttl_of(&got[1]), 30, "with TTL 30");

	/* One A record, 10 NS in authority, 40 A in additional. */
	ngot = 0;
	base = sa_srv.queries;
	is(ask_flags(qt, 92, 0x7303, "fit.test", 0), -1, "fit.test, no EDNS");
	PUMP_UNTIL(sa_srv.queries > base);
	k = mka(a, sa_srv.q[base].msg, sa_srv.q[base].len, 60, false);
	for (i = 0; i < 10; i++) {
		static const uint8_t ns[] = { 0xc0, 12, 0, 2, 0, 1, 0, 0, 0,
		    60, 0, 6, 3, 'n', 's', '0', 0xc0, 12 };

		memcpy(a + k, ns, sizeof(ns));
		a[k + 15] = (uint8_t)('0' + i);
		k += sizeof(ns);
	}
	for (i = 0; i < 40; i++) {
		memcpy(a + k, a + 12 + (qend(a, k) - 12), 16);
		a[k + 15] = (uint8_t)(i + 2);
		k += 16;
	}
	a[9] = 10;
	a[11] = 40;
	(void)dotsrv_send(&sa_srv, sa_srv.q[base].conn, a, k);
	PUMP_UNTIL(ngot >= 1);
	ok(ngot == 1 && got[0].len <= 512, "at most 512 bytes (of %zu)", k);
	ok(!(got[0].msg[2] & 0x02), "no TC: the answer itself fits");
	ok(got[0].msg[7] == 1 && got[0].msg[11] == 0,
	    "the answer kept, the additional records dropped");
	is(got[0].msg[9], 10, "the authority kept (it fits)");
	is(query_stats(qt)->truncated, 0, "nothing truncated");

	/* One A record and 30 NS: the authority goes too, still no TC. */
	ngot = 0;
	base = sa_srv.queries;
	is(ask_flags(qt, 93, 0x7304, "fit2.test", 0), -1, "fit2.test, no EDNS");
	PUMP_UNTIL(sa_srv.queries > base);
	k = mka(a, sa_srv.q[base].msg, sa_srv.q[base].len, 60, false);
	for (i = 0; i < 30; i++) {
		static const uint8_t ns[] = { 0xc0, 12, 0, 2, 0, 1, 0, 0, 0,
		    60, 0, 6, 3, 'n', 's', '0', 0xc0, 12 };

		memcpy(a + k, ns, sizeof(ns));
		a[k + 15] = (uint8_t)('0' + i);
		k += sizeof(ns);
	}
	a[9] = 30;
	(void)dotsrv_send(&sa_srv, sa_srv.q[base].conn, a, k);
	PUMP_UNTIL(ngot >= 1);
	ok(ngot == 1 && got[0].len <= 512, "at most 512 bytes (of %zu)", k);
	ok(!(got[0].msg[2] & 0x02), "no TC");
	ok(got[0].msg[7] == 1 && got[0].msg[9] == 0,
	    "the answer kept, the NS records dropped");
	endtable(qt);
}

/*
 * A reload's cache settings: TTL changes in place, a new size empties the
 * cache and keeps its counters; contradictory clamps, a servfail TTL of 0
 * and a byte bound below the tables' size are configuration errors.
 */
static void
test_cache_config(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port), NULL };
	const char *ttls[] = { "--upstream", upname(sa_srv.port),
	    "--cache-min-ttl", "10", NULL };
	const char *size[] = { "--upstream", upname(sa_srv.port),
	    "--cache-size", "200", NULL };
	const char *clamps[] = { "--cache-min-ttl", "3600", "--cache-max-ttl",
	    "60", NULL };
	const char *sf0[] = { "--cache-servfail-ttl", "0", NULL };
	const char *huge[] = { "--cache-size", "1000000", NULL };
	static struct config cfg, c2;
	struct query_table *qt;
	char err[256];
	uint64_t hits;
	int base = sa_srv.queries;

	ok(mkcfg(&c2, clamps) != 0, "--cache-min-ttl above --cache-max-ttl: "
	    "refused");
	ok(mkcfg(&c2, sf0) != 0, "--cache-servfail-ttl 0: refused");
	ok(mkcfg(&c2, huge) == 0 && query_cache_check(&c2, err,
	    sizeof(err)) < 0, "--cache-size 1000000 in 16 MiB: refused (%s)",
	    err);
	ok(mkcfg(&c2, extra) == 0 && query_cache_check(&c2, err,
	    sizeof(err)) == 0, "the defaults fit");
	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table for cache reloads");
	if (qt == NULL)
		return;
	is(ask_flags(qt, 95, 0x7401, "rl.test", 0), -1, "rl.test upstream");
	PUMP_UNTIL(sa_srv.queries > base);
	(void)answer(&sa_srv, base, 300);
	PUMP_UNTIL(ngot >= 1);
	ok(mkcfg(&c2, ttls) == 0 && query_set_cache(qt, &c2) == 0,
	    "reload: another min TTL");
	ok(ask_flags(qt, 96, 0x7402, "rl.test", 0) >= 0, "still cached");
	hits = query_cache_stats(qt)->hits;
	ok(mkcfg(&c2, size) == 0 && query_set_cache(qt, &c2) == 0,
	    "reload: another size");
	is(query_cache_stats(qt)->hits, hits, "the counters kept");
	is(ask_flags(qt, 97, 0x7403, "rl.test", 0), -1, "the cache emptied");
	PUMP_UNTIL(sa_srv.queries > base + 1);
	(void)answer(&sa_srv, base + 1, 300);
	PUMP_UNTIL(query_inflight(qt) == 0);
	endtable(qt);
}

/*
 * The plain cap (--max-plain) is an overload of ours too: SERVFAIL at
 * once, counted as cause plain, and not remembered for the name.
 */
static void
test_plain_overload(struct tls_ctx *tls)
{
	const char *extra[] = { "--upstream", upname(sa_srv.port),
	    "--local-zone", "corp.test", "--max-plain", "1", NULL };
	static struct config cfg;
	struct query_table *qt = NULL;
	struct query_origin o;
	struct sockaddr_storage ra, from;
	socklen_t ral, fl;
	uint8_t q[512], buf[2048], a[2048];
	size_t n, k = 0, m;
	int fa = udp_resolver(&ra, &ral), i;

	ok(fa != -1, "a UDP resolver on loopback");
	if (fa == -1)
		return;
	qt = mktable(&cfg, tls, &rc, extra);
	ok(qt != NULL, "table with --max-plain 1");
	if (qt == NULL)
		goto out;
	o = origin(110);
	memcpy(&o.orig, &ra, ral);
	o.orig_len = ral;
	n = mkq(q, 0x7501, "a.corp.test", DNS_TYPE_A, false);
	is(query_submit(qt, q, n, &o), 0, "a.corp.test sent");
	for (i = 0; i < 500 && k == 0; i++) {
		pump(1);
		k = udp_take(fa, buf, sizeof(buf), &from, &fl);
	}
	ok(k > 12, "the resolver has it");
	o.listener = 111;
	n = mkq(q, 0x7502, "victim.corp.test", DNS_TYPE_A, false);
	is(query_submit(qt, q, n, &o), 0, "victim.corp.test beyond the cap");
	ok(ngot == 1 && rcode_of(&got[0]) == DNS_RCODE_SERVFAIL,
	    "SERVFAIL at once");
	is(query_stats(qt)->overload_by[QO_PLAIN], 1, "counted: cause plain");
	if (k > 12) {
		m = mka(a, buf, k, 30, false);
		(void)sendto(fa, a, m, 0, (struct sockaddr *)&from, fl);
	}
	PUMP_UNTIL(query_inflight(qt) == 0);
	o.listener = 112;
	n = mkq(q, 0x7503, "victim.corp.test", DNS_TYPE_A, false);
	is(query_submit(qt, q, n, &o), 0, "victim.corp.test again");
	k = 0;
	for (i = 0; i < 500 && k == 0; i++) {
		pump(1);
		k = udp_take(fa, buf, sizeof(buf), &from, &fl);
	}
	ok(k > 12, "goes to the resolver: no failure was remembered");
out:
	if (qt != NULL)
		endtable(qt);
	close(fa);
}

int
main(void)
{
	char dir[] = "/tmp/dotproxy-test-query.XXXXXX", err[256];
	struct tls_ctx *tls;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	/* The proxy ignores SIGPIPE in main; so does this test, whose
	 * server writes to connections the pool has closed. */
	(void)signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_setup(LOG_LVL_ERROR, LOG_FMT_TEXT);
	lp = loop_new(clock_fn, NULL);
	loop_update_now(lp);
	memset(&rc, 0, sizeof(rc));
	ok(mkdtemp(dir) != NULL && dotsrv_cert(dir, &key, &cert, ca,
	    sizeof(ca)) == 0, "a throw-away CA and certificate for up.test");
	ok(dotsrv_open(&sa_srv, key, cert) == 0, "TLS server A on loopback");
	ok(dotsrv_open(&sb_srv, key, cert) == 0, "TLS server B on loopback");
	srvs[0] = &sa_srv;
	srvs[1] = &sb_srv;
	tls = tls_ctx_new(ca, err, sizeof(err));
	ok(tls != NULL, "client TLS context with that CA");
	if (tls == NULL)
		return tap_done();

	test_answer_timeout_failall(tls);
	test_opt_cut(tls);
	test_coalesce(tls);
	test_retry(tls);
	test_avoid(tls);
	test_reload(tls);
	test_cache(tls);
	test_cache_paths(tls);
	test_local(tls);
	test_refused_and_size(tls);
	test_ad(tls);
	test_late_bits(tls);
	test_overload_not_cached(tls);
	test_refresh_and_fit(tls);
	test_cache_config(tls);
	test_plain_overload(tls);

	tls_ctx_free(tls);
	dotsrv_close(&sa_srv);
	dotsrv_close(&sb_srv);
	loop_free(lp);
	X509_free(cert);
	EVP_PKEY_free(key);
	(void)unlink(ca);
	(void)rmdir(dir);
	return tap_done();
}
