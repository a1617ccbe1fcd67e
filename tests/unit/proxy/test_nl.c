/*
 * Unit tests for the asynchronous netlink matcher (nl.c) on a fake clock,
 * with replies fed in by nl_input (no kernel), and for the conntrack and
 * sock_diag request builders and reply parsers (nl_parse.c): replies out
 * of order, a late reply after a timeout, a duplicate, a reply to nothing,
 * an error reply, truncated and malformed messages. The desynchronisation
 * of the old blocking code (a late reply read as the next lookup's answer)
 * must not happen. The counters move as the matcher sees each case, and
 * the tables that export them (ct_stat_table, diag_stat_table) read them
 * back under their series names; a real sock_diag socket shows a kernel
 * reply and a refused send counted the same way.
 */
#include "proxy/nl.h"
#include "proxy/ct.h"
#include "proxy/nl_diag.h"
#include "proxy/nl_parse.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include "proxy/errors.h"
#include "proxy/loop.h"
#include "tests/unit/tap.h"

static uint64_t fake_now;

static uint64_t
clock_fn(void *arg)
{
	(void)arg;
	return fake_now;
}

#define MAXGOT 32
static struct got {
	uint64_t	cookie;
	int		err;
	uint32_t	seq;
} got[MAXGOT];
static int ngot;

static void
on_reply(void *arg, uint64_t cookie, int err, const uint8_t *msg, size_t len)
{
	struct nlmsghdr h;

	(void)arg;
	if (ngot == MAXGOT)
		return;
	got[ngot].cookie = cookie;
	got[ngot].err = err;
	got[ngot].seq = 0;
	if (msg != NULL && len >= sizeof(h)) {
		memcpy(&h, msg, sizeof(h));
		got[ngot].seq = h.nlmsg_seq;
	}
	ngot++;
}

/* A bare reply message with seq (type 0x100, no payload). */
static size_t
reply(uint8_t *buf, uint32_t seq)
{
	struct nlmsghdr h;

	memset(&h, 0, sizeof(h));
	h.nlmsg_len = sizeof(h);
	h.nlmsg_type = 0x100;
	h.nlmsg_seq = seq;
	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

static uint32_t
sent_seq(const uint8_t *req)
{
	struct nlmsghdr h;

	memcpy(&h, req, sizeof(h));
	return h.nlmsg_seq;
}

/* The value the table exports for series name over st; ~0 if no row. */
static uint64_t
series(const struct stat_table *t, const char *name, const struct nl_stats *st)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].name, name) == 0)
			return stat_value(&t->rows[i], st);
	return ~(uint64_t)0;
}

/* The conntrack table's reading of n's counters. */
static uint64_t
ctv(const struct nl *n, const char *name)
{
	return series(&ct_stat_table, name, nl_stats(n));
}

static void
run_until(struct loop *l, uint64_t t)
{
	fake_now = t;
	loop_update_now(l);
	/* Twice: a timer armed in this pass runs in the next. */
	(void)loop_run_once(l, 0);
	(void)loop_run_once(l, 0);
}

static void
test_matcher(void)
{
	union { struct nlmsghdr a; uint8_t b[64]; } r1, r2, r3, in;
	struct loop *l = loop_new(clock_fn, NULL);
	struct nl *n;
	uint32_t s1, s2, s3;
	size_t k, i;

	fake_now = 1000;
	loop_update_now(l);
	n = nl_open(l, -1, 200, on_reply, NULL);
	ok(n != NULL, "nl_open without a socket (test mode)");
	memset(&r1, 0, sizeof(r1));
	r1.a.nlmsg_len = sizeof(r1.a);
	r2 = r1;
	r3 = r1;
	is(nl_request(n, r1.b, sizeof(r1.a), 11), 0, "request 1");
	is(nl_request(n, r2.b, sizeof(r2.a), 22), 0, "request 2");
	s1 = sent_seq(r1.b);
	s2 = sent_seq(r2.b);
	ok(s1 != s2, "each request has its own sequence number");
	is(ngot, 0, "no callback from inside nl_request");
	is(ctv(n, "dotproxy_netlink_requests_total"), 2, "requests_total 2");
	is(ctv(n, "dotproxy_netlink_pending_lookups"), 2, "pending_lookups 2");
	is(ctv(n, "dotproxy_netlink_stale_replies_total"), 0, "stale 0");
	is(ctv(n, "dotproxy_netlink_timeouts_total"), 0, "timeouts 0");

	/* Out of order: 2's reply first. */
	k = reply(in.b, s2);
	nl_input(n, in.b, k);
	is(ngot, 1, "reply 2 ends request 2");
	is(got[0].cookie, 22, "with request 2's cookie");
	is(got[0].seq, s2, "and its message");
	is(ctv(n, "dotproxy_netlink_replies_total"), 1, "replies_total 1");
	is(ctv(n, "dotproxy_netlink_pending_lookups"), 1, "pending_lookups 1");
	nl_input(n, in.b, k);
	is(ngot, 1, "a duplicate of reply 2 is dropped");
	is(nl_stats(n)->stale, 1, "and counted stale");
	is(ctv(n, "dotproxy_netlink_stale_replies_total"), 1,
	    "stale_replies_total 1 after the duplicate");
	is(ctv(n, "dotproxy_netlink_replies_total"), 1, "replies_total still 1");
	k = reply(in.b, s2 + 1000);
	nl_input(n, in.b, k);
	is(ngot, 1, "a reply to a request never sent is dropped");
	is(ctv(n, "dotproxy_netlink_stale_replies_total"), 2,
	    "stale_replies_total 2 after a reply to nothing");

	/* Request 1 times out; its late reply must not answer request 3. */
	run_until(l, 1199);
	is(ngot, 1, "not timed out at 199 ms");
	run_until(l, 1200);
	is(ngot, 2, "request 1 times out at 200 ms");
	is(got[1].cookie, 11, "request 1's cookie");
	is(got[1].err, -ETIMEDOUT, "with -ETIMEDOUT");
	is(nl_pending(n), 0, "nothing pending");
	is(ctv(n, "dotproxy_netlink_timeouts_total"), 1, "timeouts_total 1");
	is(ctv(n, "dotproxy_netlink_pending_lookups"), 0, "pending_lookups 0");
	is(nl_request(n, r3.b, sizeof(r3.a), 33), 0, "request 3");
	s3 = sent_seq(r3.b);
	/* One datagram: the late reply 1, then reply 3. */
	k = reply(in.b, s1);
	k += reply(in.b + k, s3);
	nl_input(n, in.b, k);
	is(ngot, 3, "one callback for the datagram");
	is(got[2].cookie, 33, "request 3 gets reply 3, not the late reply 1");
	is(got[2].seq, s3, "reply 3's message");
	is(nl_stats(n)->timeouts, 1, "one timeout counted");
	is(ctv(n, "dotproxy_netlink_stale_replies_total"), 3,
	    "the late reply 1 counted stale (3)");
	is(ctv(n, "dotproxy_netlink_replies_total"), 2, "replies_total 2");

	/* A broken length stops the datagram, nothing is misread. */
	is(nl_request(n, r1.b, sizeof(r1.a), 44), 0, "request 4");
	k = reply(in.b, sent_seq(r1.b));
	in.a.nlmsg_len = 4000;
	nl_input(n, in.b, k);
	is(ngot, 3, "a message longer than its datagram is dropped");
	nl_input(n, in.b, 3);
	is(ngot, 3, "a datagram shorter than a header is dropped");

	/* The ring is bounded. */
	for (i = 0; i < NL_MAX_PENDING - 1; i++)
		if (nl_request(n, r1.b, sizeof(r1.a), 100 + i) != 0)
			break;
	is(i, NL_MAX_PENDING - 1, "fills to NL_MAX_PENDING");
	is(ctv(n, "dotproxy_netlink_busy_total"), 0, "busy_total 0 while full");
	is(nl_request(n, r1.b, sizeof(r1.a), 999), -EBUSY, "then -EBUSY");
	is(ctv(n, "dotproxy_netlink_busy_total"), 1, "busy_total 1");
	is(ctv(n, "dotproxy_netlink_pending_lookups"), NL_MAX_PENDING,
	    "pending_lookups at the cap");
	run_until(l, 5000);
	is(nl_pending(n), 0, "all of them time out");
	is(ctv(n, "dotproxy_netlink_timeouts_total"), 1 + NL_MAX_PENDING,
	    "timeouts_total counts each of them");
	is(ctv(n, "dotproxy_netlink_requests_total"), 3 + NL_MAX_PENDING,
	    "requests_total: the refused one is not a request");
	is(nl_request(n, r1.b, sizeof(r1.a), 999), 0, "and the ring takes more");
	nl_close(n);
	loop_free(l);
}

/*
 * Both tables: every field of struct nl_stats is exported by exactly one
 * row, under the Prometheus naming rules, with the lookup's label.
 */
static void
test_tables(void)
{
	const struct stat_table *tabs[2] = { &ct_stat_table, &diag_stat_table };
	const char *labels[2] = { "lookup=\"conntrack\"", "lookup=\"sock_diag\"" };
	const size_t nfields = sizeof(struct nl_stats) / sizeof(uint64_t);
	struct nl_stats st;
	uint64_t v[sizeof(struct nl_stats) / sizeof(uint64_t)];
	unsigned seen, bad;
	size_t t, i, j, len;

	for (i = 0; i < nfields; i++)
		v[i] = 100 + i;
	memcpy(&st, v, sizeof(st));
	for (t = 0; t < 2; t++) {
		const struct stat_table *tab = tabs[t];

		is(tab->n, nfields, "table %zu: one row per field", t);
		seen = bad = 0;
		for (i = 0; i < tab->n; i++) {
			const struct stat_desc *d = &tab->rows[i];
			uint64_t x = stat_value(d, &st);

			len = strlen(d->name);
			if (x < 100 || x >= 100 + nfields || (seen >> (x - 100)) & 1)
				bad++;
			else
				seen |= 1u << (x - 100);
			if (strncmp(d->name, "dotproxy_netlink_", 17) != 0 ||
			    d->labels == NULL || strcmp(d->labels, labels[t]) != 0 ||
			    d->help == NULL || d->help[0] == '\0')
				bad++;
			if ((d->type == STAT_COUNTER) != (len > 6 &&
			    strcmp(d->name + len - 6, "_total") == 0))
				bad++;
			for (j = 0; j < i; j++)
				if (strcmp(tab->rows[j].name, d->name) == 0)
					bad++;
		}
		is(bad, 0, "table %zu: names, labels, help and types", t);
		is(seen, (1u << nfields) - 1, "table %zu: every field read once", t);
	}
	for (i = 0; i < ct_stat_table.n; i++)
		if (strcmp(ct_stat_table.rows[i].name,
		    diag_stat_table.rows[i].name) != 0)
			break;
	is(i, ct_stat_table.n, "both tables export the same series");
}

/*
 * A real sock_diag socket: a lookup of a socket that does not exist gets
 * the kernel's NLMSG_ERROR, which ends the request as a reply; a request
 * the socket refuses (larger than its send buffer) is counted as a send
 * error, not as a request.
 */
static void
test_kernel(void)
{
	union { struct nlmsghdr a; uint8_t b[256]; } m;
	struct sockaddr_in lo = { 0 }, peer = { 0 };
	struct loop *l = loop_new(clock_fn, NULL);
	const size_t huge = 8u << 20;
	uint8_t *big;
	struct nl *n;
	size_t len;
	int k;

	fake_now = 1000;
	loop_update_now(l);
	ngot = 0;
	n = nl_open(l, NETLINK_SOCK_DIAG, 200, on_reply, NULL);
	ok(n != NULL, "nl_open NETLINK_SOCK_DIAG");
	if (n == NULL) {
		loop_free(l);
		return;
	}
	lo.sin_family = peer.sin_family = AF_INET;
	lo.sin_port = htons(9);
	peer.sin_port = htons(9);
	inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
	is(diag_build_request(m.b, sizeof(m.b), (struct sockaddr *)&lo,
	    (struct sockaddr *)&peer, &len), 0, "a lookup of no socket");
	is(nl_request(n, m.b, len, 7), 0, "sent to the kernel");
	for (k = 0; k < 50 && ngot == 0; k++)
		(void)loop_run_once(l, 100);
	is(ngot, 1, "the kernel's reply ends it");
	is(got[0].cookie, 7, "its cookie");
	is(ctv(n, "dotproxy_netlink_replies_total"), 1, "replies_total 1");
	is(ctv(n, "dotproxy_netlink_pending_lookups"), 0, "pending_lookups 0");

	if ((big = calloc(1, huge)) == NULL) {
		ok(0, "no memory for the large request");
	} else {
		memcpy(big, m.b, sizeof(struct nlmsghdr));
		((struct nlmsghdr *)(void *)big)->nlmsg_len = (uint32_t)huge;
		ok(nl_request(n, big, huge, 8) < 0, "a request larger than the "
		    "send buffer is refused");
		is(ctv(n, "dotproxy_netlink_send_errors_total"), 1,
		    "send_errors_total 1");
		is(ctv(n, "dotproxy_netlink_requests_total"), 1,
		    "requests_total still 1");
		is(ctv(n, "dotproxy_netlink_pending_lookups"), 0,
		    "nothing pending");
		free(big);
	}
	nl_close(n);
	loop_free(l);
}

/* Builds a conntrack answer with the original destination dst:port. */
static size_t
ct_answer(uint8_t *buf, uint16_t type, int family, const void *dst, size_t alen,
    uint16_t port)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	struct nlattr *t, *ip, *pr;

	nlh->nlmsg_type = type;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)family;
	t = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (alen > 0)
		mnl_attr_put(nlh, family == AF_INET ? CTA_IP_V4_DST :
		    CTA_IP_V6_DST, alen, dst);
	mnl_attr_nest_end(nlh, ip);
	pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(port));
	mnl_attr_nest_end(nlh, pr);
	mnl_attr_nest_end(nlh, t);
	return nlh->nlmsg_len;
}

static size_t
err_answer(uint8_t *buf, int error)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));

	nlh->nlmsg_type = NLMSG_ERROR;
	e->error = error;
	return nlh->nlmsg_len;
}

static void
test_ct(void)
{
	union { struct nlmsghdr a; uint8_t b[512]; } m;
	struct sockaddr_in lo = { 0 }, peer = { 0 };
	struct sockaddr_in6 lo6 = { 0 };
	struct sockaddr_storage out;
	socklen_t ol = 0;
	struct in_addr a4;
	struct in6_addr a6;
	size_t len, i;
	int bad = 0;

	lo.sin_family = peer.sin_family = AF_INET;
	lo.sin_port = htons(15353);
	peer.sin_port = htons(40000);
	inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
	lo6.sin6_family = AF_INET6;
	is(ct_build_request(m.b, sizeof(m.b), (struct sockaddr *)&lo,
	    (struct sockaddr *)&peer, 2, &len), 0, "ct request builds");
	ok(len > sizeof(struct nlmsghdr) && len == m.a.nlmsg_len, "its length is the header's");
	ok(!(m.a.nlmsg_flags & NLM_F_ACK), "no ACK asked: one message per lookup");
	is(ct_build_request(m.b, sizeof(m.b), (struct sockaddr *)&lo,
	    (struct sockaddr *)&lo6, 2, &len), -EAFNOSUPPORT, "mixed families refused");
	is(ct_build_request(m.b, 16, (struct sockaddr *)&lo,
	    (struct sockaddr *)&peer, 2, &len), -E_TOOBIG, "small buffer refused");

	inet_pton(AF_INET, "192.0.2.53", &a4);
	len = ct_answer(m.b, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET,
	    AF_INET, &a4, 4, 53);
	is(ct_parse_reply(m.b, len, &out, &ol), 0, "IPv4 flow parses");
	ok(ol == sizeof(struct sockaddr_in) &&
	    ((struct sockaddr_in *)&out)->sin_addr.s_addr == a4.s_addr &&
	    ((struct sockaddr_in *)&out)->sin_port == htons(53),
	    "original destination 192.0.2.53:53");
	inet_pton(AF_INET6, "2001:db8::53", &a6);
	len = ct_answer(m.b, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW,
	    AF_INET6, &a6, 16, 5353);
	is(ct_parse_reply(m.b, len, &out, &ol), 0, "IPv6 flow parses");
	ok(ol == sizeof(struct sockaddr_in6) && memcmp(&((struct sockaddr_in6 *)
	    &out)->sin6_addr, &a6, 16) == 0, "original destination 2001:db8::53");
	len = ct_answer(m.b, NFNL_SUBSYS_CTNETLINK << 8, AF_INET6, &a6, 4, 53);
	is(ct_parse_reply(m.b, len, &out, &ol), -EPROTO, "IPv6 address of 4 bytes: bad");
	len = ct_answer(m.b, NFNL_SUBSYS_CTNETLINK << 8, AF_INET, &a4, 0, 53);
	is(ct_parse_reply(m.b, len, &out, &ol), -EPROTO, "no address: bad");
	len = ct_answer(m.b, 0x0500, AF_INET, &a4, 4, 53);
	is(ct_parse_reply(m.b, len, &out, &ol), -EPROTO, "another subsystem: bad");
	len = ct_answer(m.b, NFNL_SUBSYS_CTNETLINK << 8, AF_INET, &a4, 4, 53);
	for (i = 0; i < len; i++)
		if (ct_parse_reply(m.b, i, &out, &ol) == 0)
			bad++;
	is(bad, 0, "no truncation of a good answer parses");
	len = err_answer(m.b, -EPERM);
	is(ct_parse_reply(m.b, len, &out, &ol), -EPERM, "NLMSG_ERROR EPERM");
	len = err_answer(m.b, -ENOENT);
	is(ct_parse_reply(m.b, len, &out, &ol), -ENOENT, "NLMSG_ERROR ENOENT");
	len = err_answer(m.b, 0);
	is(ct_parse_reply(m.b, len, &out, &ol), -ENOENT, "a bare ACK: no flow");
	len = err_answer(m.b, 5);
	is(ct_parse_reply(m.b, len, &out, &ol), -EPROTO, "a positive error: bad");
	is(ct_parse_reply(m.b, sizeof(struct nlmsghdr) + 2, &out, &ol), -EPROTO,
	    "an error message too short for its error: bad");
}

static void
test_diag(void)
{
	union { struct nlmsghdr a; uint8_t b[512]; } m;
	struct sockaddr_in lo = { 0 }, peer = { 0 };
	struct inet_diag_req_v2 req;
	struct inet_diag_msg dm;
	unsigned uid = 0;
	size_t len;

	lo.sin_family = peer.sin_family = AF_INET;
	lo.sin_port = htons(53);
	peer.sin_port = htons(40000);
	is(diag_build_request(m.b, sizeof(m.b), (struct sockaddr *)&lo,
	    (struct sockaddr *)&peer, &len), 0, "diag request builds");
	memcpy(&req, m.b + sizeof(struct nlmsghdr), sizeof(req));
	ok(req.id.idiag_sport == htons(40000) && req.id.idiag_dport == htons(53),
	    "asks for the peer's socket (source = peer)");
	memset(&m, 0, sizeof(m));
	m.a.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	m.a.nlmsg_len = NLMSG_LENGTH(sizeof(dm));
	memset(&dm, 0, sizeof(dm));
	dm.idiag_uid = 15353;
	memcpy(NLMSG_DATA(&m.a), &dm, sizeof(dm));
	is(diag_parse_reply(m.b, m.a.nlmsg_len, &uid), 0, "diag answer parses");
	is(uid, 15353, "its UID");
	is(diag_parse_reply(m.b, m.a.nlmsg_len - 1, &uid), -EPROTO, "truncated: bad");
	m.a.nlmsg_len = NLMSG_LENGTH(sizeof(dm)) - 4;
	is(diag_parse_reply(m.b, sizeof(m.b), &uid), -EPROTO, "short message: bad");
	len = err_answer(m.b, -ENOENT);
	is(diag_parse_reply(m.b, len, &uid), -ENOENT, "no such socket");
}

int
main(void)
{
	test_matcher();
	test_tables();
	test_kernel();
	test_ct();
	test_diag();
	return tap_done();
}
