/*
 * The plain local-zone path driven deterministically: a fake clock for the
 * loop, a UDP socket on loopback as the resolver, no namespace, no sleep.
 * The cap on requests in flight (-EBUSY above it, counted), the timeout on
 * the fake clock, an answer with the wrong ID ignored, a right one
 * delivered, and loop detection by source address and port.
 */
#include "proxy/plain.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "proxy/dns.h"
#include "proxy/errors.h"
#include "proxy/loop.h"
#include "tests/unit/tap.h"

static uint64_t fake_now;
static int answers, fails, last_err;
static uint64_t last_handle;

static uint64_t
clock_fn(void *arg)
{
	(void)arg;
	return fake_now;
}

static int
on_answer(void *arg, uint64_t h, const uint8_t *msg, size_t len)
{
	(void)arg;
	(void)msg;
	(void)len;
	answers++;
	last_handle = h;
	return 0;
}

static void
on_fail(void *arg, uint64_t h, int err)
{
	(void)arg;
	fails++;
	last_handle = h;
	last_err = err;
}

static void
spin(struct loop *l, uint64_t t)
{
	fake_now = t;
	loop_update_now(l);
	(void)loop_run_once(l, 0);
	(void)loop_run_once(l, 0);
}

int
main(void)
{
	static const uint8_t query[] = { 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
	    1, 'a', 0, 0, 1, 0, 1 };
	struct plain_callbacks cb = { on_answer, on_fail, NULL };
	struct sockaddr_in res, from, other;
	socklen_t rl = sizeof(res), fl;
	struct loop *l;
	struct plain *pl;
	uint8_t buf[512];
	ssize_t n;
	int rs, i;

	fake_now = 1000;
	l = loop_new(clock_fn, NULL);
	loop_update_now(l);
	pl = plain_new(l, 500, 3, &cb);
	ok(l != NULL && pl != NULL, "loop and plain path");
	rs = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&res, 0, sizeof(res));
	res.sin_family = AF_INET;
	res.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok(rs != -1 && bind(rs, (struct sockaddr *)&res, sizeof(res)) == 0 &&
	    getsockname(rs, (struct sockaddr *)&res, &rl) == 0,
	    "a resolver socket on loopback");

	for (i = 0; i < 3; i++)
		is(plain_send(pl, 100 + (uint64_t)i, (struct sockaddr *)&res,
		    sizeof(res), query, sizeof(query)), 0, "request %d sent", i);
	is(plain_send(pl, 200, (struct sockaddr *)&res, sizeof(res), query,
	    sizeof(query)), -EBUSY, "a fourth over the cap of 3: -EBUSY");
	is(plain_stats(pl)->overload, 1, "counted as overload");
	is(plain_inflight(pl), 3, "three in flight");

	/* The resolver gets the first query; answer it with a wrong ID
	 * first, then the right one. */
	fl = sizeof(from);
	n = recvfrom(rs, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	ok(n == (ssize_t)sizeof(query), "the resolver got a query");
	ok(plain_owns_addr(pl, (struct sockaddr *)&from),
	    "its source is ours (a loop if it came back)");
	other = from;
	other.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1);
	ok(!plain_owns_addr(pl, (struct sockaddr *)&other),
	    "the same port from another address is not ours");
	buf[2] |= 0x80;
	buf[0] ^= 0xff;
	(void)sendto(rs, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	spin(l, 1010);
	is(answers, 0, "an answer with the wrong ID is ignored");
	is(plain_stats(pl)->mismatched, 1, "and counted");
	buf[0] ^= 0xff;
	(void)sendto(rs, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	spin(l, 1020);
	is(answers, 1, "the right ID is delivered");
	spin(l, 1030);
	is(plain_inflight(pl), 2, "two left");
	is(plain_send(pl, 300, (struct sockaddr *)&res, sizeof(res), query,
	    sizeof(query)), 0, "room again under the cap");

	/* No answer for the rest: they time out on the fake clock. */
	spin(l, 1499);
	is(fails, 0, "nothing timed out before 500 ms");
	spin(l, 1500);
	is(fails, 2, "the two older requests time out at 500 ms");
	is(last_err, -E_TIMEOUT, "with -E_TIMEOUT");
	spin(l, 1530);
	is(fails, 3, "the later one 500 ms after it was sent");
	spin(l, 1540);
	is(plain_inflight(pl), 0, "nothing left in flight");
	plain_free(pl);
	close(rs);
	spin(l, 2000);
	loop_free(l);
	return tap_done();
}
