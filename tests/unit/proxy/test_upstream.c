/*
 * The DoT upstream pool driven deterministically: the loop's clock is
 * fake, the upstream is a TLS server inside this test on loopback (a
 * throw-away certificate made here), pumped between loop passes; no
 * namespace, no sleep. What is checked:
 *   - an upstream never tried is "up"; one that refuses connections is not;
 *   - answers the query layer rejects (wrong question) are no sign of life:
 *     a connection that only sends those is declared dead after a timeout
 *     and its query, past its deadline, counted unanswered;
 *   - an accepted answer is delivered once, and a duplicate is not;
 *   - the queries of one wake-up go on one connection (one write, one TLS
 *     record), and the next wake-up's go to the least busy one;
 *   - an upstream that completes TLS and never answers: each silent
 *     connection counts its expired queries unanswered, three in a row
 *     mark it down and make queries avoid it, new handshakes do not bring
 *     it back, an accepted answer does.
 */
#include "proxy/upstream.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/errors.h"
#include "proxy/log.h"
#include "proxy/loop.h"
#include "proxy/tls.h"
#include "tests/unit/proxy/dotsrv.h"
#include "tests/unit/tap.h"

static uint64_t fake_now;
static int answers, fails, answer_rc;
static uint64_t fail_handle;
static bool fail_failed;

static uint64_t
clock_fn(void *arg)
{
	(void)arg;
	return fake_now;
}

static int
on_answer(void *arg, uint64_t h, const uint8_t *msg, size_t len, int *ka)
{
	(void)arg;
	(void)h;
	(void)msg;
	(void)len;
	(void)ka;
	if (answer_rc == 0)
		answers++;
	return answer_rc;
}

static void
on_fail(void *arg, uint64_t h, unsigned up, bool failed, int err)
{
	(void)arg;
	(void)up;
	(void)err;
	fails++;
	fail_failed = failed;
	fail_handle = h;
}

/* Sends an answer with the last query's ID (its content does not matter
 * to the pool: the test's on_answer judges it). */
static void
srv_answer(struct dotsrv *s)
{
	uint8_t m[2 + 12] = { 0, 12 };

	m[2] = (uint8_t)(s->last_id >> 8);
	m[3] = (uint8_t)s->last_id;
	m[4] = 0x81;
	m[5] = 0x80;
	(void)dotsrv_send(s, s->last_conn, m + 2, sizeof(m) - 2);
}

/* Answers queries [from, s->queries) on the connection each came on. */
static void
srv_answer_all(struct dotsrv *s, int from)
{
	uint8_t m[12] = { 0, 0, 0x81, 0x80 };
	int i;

	for (i = from; i < s->queries; i++) {
		m[0] = s->q[i].msg[0];
		m[1] = s->q[i].msg[1];
		(void)dotsrv_send(s, s->q[i].conn, m, sizeof(m));
	}
}

/* Loop passes and server steps, the fake clock standing still. */
static void
pump(struct loop *l, struct dotsrv *s, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		(void)loop_run_once(l, 1);
		if (s != NULL)
			dotsrv_step(s);
	}
}

static void
at(struct loop *l, uint64_t t)
{
	fake_now = t;
	loop_update_now(l);
}

static struct up_pool *
pool_for(struct loop *l, struct tls_ctx *tls, struct config *cfg,
    const char *up, const char *ca, const char *conns,
    const struct up_callbacks *cb)
{
	char err[256];
	char *argv[] = { (char *)(uintptr_t)"dotproxy",
	    (char *)(uintptr_t)"--upstream", (char *)(uintptr_t)up,
	    (char *)(uintptr_t)"--ca-file", (char *)(uintptr_t)ca,
	    (char *)(uintptr_t)"--timeout", (char *)(uintptr_t)"1000",
	    (char *)(uintptr_t)"--connections", (char *)(uintptr_t)conns, NULL };

	if (config_parse(cfg, 9, argv, NULL, err, sizeof(err)) != 0) {
		printf("# config: %s\n", err);
		return NULL;
	}
	return up_pool_new(l, tls, cfg, cb);
}

/* Loop passes until the server has read want queries (bounded). */
static void
pump_until_read(struct loop *l, struct dotsrv *s, int want)
{
	int i;

	for (i = 0; i < 800 && s->queries < want; i++)
		pump(l, s, 1);
}

/*
 * Upstream 0 takes TLS and never answers; upstream 1 answers. Three silent
 * connections in a row: down, queries go to upstream 1, a new handshake on
 * 0 does not bring it up, its answer does.
 */
static void
test_silent(struct loop *l, struct tls_ctx *tls, const char *ca, EVP_PKEY *key,
    X509 *cert, const struct up_callbacks *cb)
{
	static const uint8_t q[] = { 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
	    1, 'a', 0, 0, 1, 0, 1 };
	static struct dotsrv s0, s1;
	static struct config cfg;
	char up0[64], up1[64], err[256];
	char *argv[] = { (char *)(uintptr_t)"dotproxy",
	    (char *)(uintptr_t)"--upstream", up0,
	    (char *)(uintptr_t)"--upstream", up1,
	    (char *)(uintptr_t)"--ca-file", (char *)(uintptr_t)ca,
	    (char *)(uintptr_t)"--timeout", (char *)(uintptr_t)"1000",
	    (char *)(uintptr_t)"--connections", (char *)(uintptr_t)"1", NULL };
	struct up_pool *p;
	uint64_t t0 = fake_now;
	int round, i;

	if (dotsrv_open(&s0, key, cert) != 0 || dotsrv_open(&s1, key, cert) != 0) {
		ok(0, "two TLS servers");
		return;
	}
	(void)snprintf(up0, sizeof(up0), "127.0.0.1@%u#up.test", s0.port);
	(void)snprintf(up1, sizeof(up1), "127.0.0.1@%u#up.test", s1.port);
	if (config_parse(&cfg, 11, argv, NULL, err, sizeof(err)) != 0 ||
	    (p = up_pool_new(l, tls, &cfg, cb)) == NULL) {
		ok(0, "pool: %s", err);
		return;
	}
	answer_rc = 0;
	fails = answers = 0;
	for (round = 1; round <= 3; round++) {
		uint64_t t = t0 + (uint64_t)(round - 1) * 1000;

		/* A at t, B half a timeout later, on the same connection. */
		is(up_send(p, 500 + (uint64_t)round, q, sizeof(q), 0), 0,
		    "silent round %d: query A goes to upstream 0", round);
		pump_until_read(l, &s0, 2 * round - 1);
		is(up_pool_stats(p, 0)->handshakes, (uint64_t)round,
		    "silent round %d: over a new TLS connection", round);
		at(l, t + 500);
		is(up_send(p, 550 + (uint64_t)round, q, sizeof(q), 0), 0,
		    "silent round %d: query B too", round);
		pump_until_read(l, &s0, 2 * round);
		is(s0.queries, 2 * round, "silent round %d: both read", round);
		at(l, t + 999);
		pump(l, &s0, 3);
		is(up_pool_stats(p, 0)->unanswered, (uint64_t)round - 1,
		    "silent round %d: nothing before the timeout", round);
		at(l, t + 1000);
		pump(l, &s0, 3);
		is(up_pool_stats(p, 0)->unanswered, (uint64_t)round,
		    "silent round %d: A, past its deadline, counted unanswered",
		    round);
		is(fails, round, "silent round %d: B handed back", round);
		is(fail_handle, 550 + (uint64_t)round,
		    "silent round %d: (it is B)", round);
		is(up_pool_stats(p, 0)->up, round < 3,
		    round < 3 ? "silent round %d: still up (hysteresis)" :
		    "silent round %d: down", round);
		is(fail_failed, round == 3, round < 3 ?
		    "silent round %d: B may retry on the same upstream" :
		    "silent round %d: B is told to avoid it", round);
	}
	is(up_pool_stats(p, 1)->unanswered, 0, "upstream 1: nothing unanswered");
	/* Backing off: a fresh query goes to upstream 1, which answers. */
	is(up_send(p, 600, q, sizeof(q), 0), 1, "down: the next query avoids it");
	pump_until_read(l, &s1, 1);
	srv_answer(&s1);
	for (i = 0; i < 800 && answers == 0; i++)
		pump(l, &s1, 1);
	is(answers, 1, "upstream 1 answers it");
	is(up_pool_stats(p, 1)->up, true, "upstream 1 up");
	/* After the back-off a query probes upstream 0 again: the handshake
	 * alone does not bring it up, the answer does. */
	at(l, t0 + 3000 + 30000);
	is(up_send(p, 601, q, sizeof(q), 0), 0, "back-off over: upstream 0 probed");
	pump_until_read(l, &s0, 7);
	is(s0.queries, 7, "the probe is read over a new TLS connection");
	is(up_pool_stats(p, 0)->handshakes, 4, "four handshakes in all");
	ok(!up_pool_stats(p, 0)->up, "a handshake does not bring it up");
	srv_answer(&s0);
	for (i = 0; i < 800 && answers == 1; i++)
		pump(l, &s0, 1);
	is(answers, 2, "upstream 0 answers the probe");
	ok(up_pool_stats(p, 0)->up, "an answer brings it up");
	is(up_send(p, 602, q, sizeof(q), 0), 0, "and queries go to it again");
	up_pool_free(p);
	dotsrv_close(&s0);
	dotsrv_close(&s1);
}

int
main(void)
{
	static const uint8_t q[] = { 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
	    1, 'a', 0, 0, 1, 0, 1 };
	struct up_callbacks cb = { on_answer, on_fail, NULL };
	char dir[] = "/tmp/dotproxy-test-up.XXXXXX", ca[300], up[64], err[256];
	static struct config cfg, cfg2, cfg3;
	struct up_pool *p, *p2;
	struct tls_ctx *tls;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	static struct dotsrv s;
	struct loop *l;
	int i, first, same;

	/* The test's server answers a close with a close of its own, to a
	 * socket the pool may have closed already (the proxy ignores it too). */
	(void)signal(SIGPIPE, SIG_IGN);
	log_setup(LOG_LVL_ERROR, LOG_FMT_TEXT);
	fake_now = 10000;
	l = loop_new(clock_fn, NULL);
	loop_update_now(l);
	ok(mkdtemp(dir) != NULL && dotsrv_cert(dir, &key, &cert, ca, sizeof(ca)) == 0,
	    "a throw-away CA and certificate for up.test");
	ok(dotsrv_open(&s, key, cert) == 0, "a TLS server on loopback");
	tls = tls_ctx_new(ca, err, sizeof(err));
	ok(tls != NULL, "client TLS context with that CA");

	/* An upstream that refuses connections: up until tried, then not. */
	p2 = pool_for(l, tls, &cfg2, "127.0.0.1@9#up.test", ca, "1", &cb);
	ok(p2 != NULL && up_pool_stats(p2, 0)->up, "never tried: up");
	(void)up_send(p2, 7, q, sizeof(q), 0);
	for (i = 0; i < 50 && fails == 0; i++)
		pump(l, NULL, 1);
	is(fails, 1, "the refused connect hands the query back");
	ok(!up_pool_stats(p2, 0)->up, "refused: down");
	up_pool_free(p2);
	fails = 0;

	(void)snprintf(up, sizeof(up), "127.0.0.1@%u#up.test", s.port);
	p = pool_for(l, tls, &cfg, up, ca, "1", &cb);
	ok(p != NULL, "pool for the test server");
	is(up_send(p, 42, q, sizeof(q), 0), 0, "query sent to upstream 0");
	for (i = 0; i < 400 && s.queries == 0; i++)
		pump(l, &s, 1);
	is(s.queries, 1, "the server read the query over TLS");
	ok(up_pool_stats(p, 0)->up, "handshake done: up");

	/* Only rejected answers, every 100 ms of fake time. */
	answer_rc = -E_MISMATCH;
	for (i = 1; i <= 9; i++) {
		uint64_t before = up_pool_stats(p, 0)->mismatched;
		int k;

		srv_answer(&s);
		for (k = 0; k < 400 && up_pool_stats(p, 0)->mismatched == before; k++)
			pump(l, &s, 1);
		at(l, 10000 + (uint64_t)i * 100);
		pump(l, &s, 2);
	}
	is(fails, 0, "no verdict before the timeout");
	is(up_pool_stats(p, 0)->mismatched, 9, "nine answers rejected");
	srv_answer(&s);
	pump(l, &s, 20);
	at(l, 11001);
	pump(l, &s, 5);
	is(up_pool_stats(p, 0)->unanswered, 1,
	    "rejected answers are no progress: dead after the timeout");
	is(fails, 0, "its query, past its deadline, is counted, not handed back");
	is(up_pool_stats(p, 0)->errors, 1, "counted as a lost connection");

	/* A fresh connection; an accepted answer, then a duplicate. */
	answer_rc = 0;
	dotsrv_close(&s);
	ok(dotsrv_open(&s, key, cert) == 0, "server again");
	up_pool_free(p);
	(void)snprintf(up, sizeof(up), "127.0.0.1@%u#up.test", s.port);
	p = pool_for(l, tls, &cfg, up, ca, "1", &cb);
	is(up_send(p, 43, q, sizeof(q), 0), 0, "query sent");
	for (i = 0; i < 400 && s.queries == 0; i++)
		pump(l, &s, 1);
	srv_answer(&s);
	for (i = 0; i < 400 && answers == 0; i++)
		pump(l, &s, 1);
	is(answers, 1, "the answer is delivered");
	srv_answer(&s);
	for (i = 0; i < 400 && up_pool_stats(p, 0)->mismatched == 0; i++)
		pump(l, &s, 1);
	is(answers, 1, "a duplicate is not");
	is(up_pool_stats(p, 0)->mismatched, 1, "it is counted as a stray");

	/* Two connections: a wake-up's queries share one. */
	up_pool_free(p);
	dotsrv_close(&s);
	ok(dotsrv_open(&s, key, cert) == 0, "server again");
	(void)snprintf(up, sizeof(up), "127.0.0.1@%u#up.test", s.port);
	p = pool_for(l, tls, &cfg3, up, ca, "2", &cb);
	answers = 0;
	for (i = 0; i < 17; i++)
		(void)up_send(p, 100 + (uint64_t)i, q, sizeof(q), 0);
	for (i = 0; i < 800 && s.queries < 17; i++)
		pump(l, &s, 1);
	is(s.queries, 17, "17 queries read");
	is(s.accepted, 2, "the 17th opened a second connection");
	srv_answer_all(&s, 0);
	for (i = 0; i < 800 && answers < 17; i++)
		pump(l, &s, 1);
	is(answers, 17, "all answered: both connections idle and ready");
	for (i = 0; i < 8; i++)
		(void)up_send(p, 200 + (uint64_t)i, q, sizeof(q), 0);
	for (i = 0; i < 800 && s.queries < 25; i++)
		pump(l, &s, 1);
	first = s.q[17].conn;
	for (i = 18, same = 0; i < s.queries; i++)
		same += s.q[i].conn == first;
	is(same, 7, "one wake-up's 8 queries went on one connection");
	for (i = 0; i < 8; i++)
		(void)up_send(p, 300 + (uint64_t)i, q, sizeof(q), 0);
	for (i = 0; i < 800 && s.queries < 33; i++)
		pump(l, &s, 1);
	for (i = 25, same = 0; i < s.queries; i++)
		same += s.q[i].conn != first;
	is(same, 8, "the next wake-up's 8 went on the other, less busy one");

	up_pool_free(p);
	dotsrv_close(&s);
	test_silent(l, tls, ca, key, cert, &cb);
	tls_ctx_free(tls);
	loop_free(l);
	X509_free(cert);
	EVP_PKEY_free(key);
	(void)unlink(ca);
	(void)rmdir(dir);
	return tap_done();
}
