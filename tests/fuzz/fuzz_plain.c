/*
 * libFuzzer target: an answer from a plain resolver on the local-zone
 * path, checked as proxy/plain.c and proxy/query.c check it, against the
 * client query it answers. Input: one flags byte, a 2-byte length and the
 * client's query as it arrived, then the resolver's bytes. Flags: bit 0
 * reads the resolver's bytes as a TCP stream (the first frame is the
 * answer, as after a truncated UDP answer), bit 1 splices the client's
 * question into the answer after its 12-byte header so most answers reach
 * the build step, bits 2-3 pick the client's size limit.
 *
 * An answer with the wrong ID or without QR is not for us; one with TC over
 * UDP means a TCP retry. The rest goes through dns_parse_answer and
 * dns_question_equal (an error answer without a question matches any
 * query); an answer that matches must become a client answer
 * that fits the limit and parses back with the client's ID, the client's
 * question bytes (its case) and the answer's RCODE (or TC).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/buf.h"
#include "proxy/dns.h"
#include "proxy/errors.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define PLAIN_ID	0x7e57		/* the ID plain.c put on the wire */

/* A client query for when the input's does not parse. */
static const uint8_t fallback_query[] = {
	0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
	3, 'w', 'w', 'w', 3, 's', 'v', 'c', 7, 'c', 'l', 'u', 's', 't', 'e',
	'r', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 1, 0, 1
};

static void
check_delivered(const uint8_t *ans, size_t alen, const struct dns_info *a,
    const uint8_t *query, size_t qlen, const struct dns_info *q,
    size_t limit)
{
	static uint8_t out[DNS_MSG_MAX + 64];
	struct dns_info r;
	size_t n = 0;
	bool tc = false;
	int rc;

	rc = dns_build_answer(ans, alen, a, query, qlen, q, limit, out,
	    sizeof(out), &n, &tc);
	/* query.c answers SERVFAIL when this fails; it must not for a
	 * buffer of a whole message. */
	CHECK(rc == 0);
	CHECK(n >= DNS_HDR_LEN && n <= limit && n <= sizeof(out));
	CHECK(dns_parse_answer(out, n, &r) == 0);
	CHECK(dns_get_id(out) == dns_get_id(query));
	CHECK(dns_question_equal(q, &r));
	CHECK(r.qname_len == q->qname_len &&
	    memcmp(r.qname, q->qname, q->qname_len) == 0);
	CHECK(r.has_opt == q->has_opt);
	CHECK(!q->has_opt || r.ext_rcode == a->ext_rcode);
	if (!q->has_opt && a->ext_rcode != 0)
		CHECK(DNS_RCODE(r.flags) == DNS_RCODE_SERVFAIL);
	else
		CHECK(DNS_RCODE(r.flags) == DNS_RCODE(a->flags));
	CHECK(!tc || ((r.flags & DNS_FLAG_TC) && r.ancount == 0 &&
	    r.nscount == 0));
}

/* What plain.c and query.c do with one answer. */
static void
offer(const uint8_t *ans, size_t alen, bool tcp, const uint8_t *query,
    size_t qlen, const struct dns_info *q, size_t limit)
{
	struct dns_info a;
	int rc;

	if (alen < DNS_HDR_LEN || dns_get_id(ans) != PLAIN_ID ||
	    !(ans[2] & 0x80))
		return;				/* mismatched */
	if (!tcp && (ans[2] & 0x02))
		return;				/* retried over TCP */
	rc = dns_parse_answer(ans, alen, &a);
	CHECK(rc == 0 || rc == -E_MALFORMED);
	if (rc != 0 || !dns_question_equal(q, &a))
		return;				/* mismatched */
	/* One question, or a FORMERR/NOTIMP/REFUSED without any, which
	 * answers whatever query its ID matched. */
	CHECK(a.qdcount == 1 || (a.qdcount == 0 && dns_answer_questionless(&a)));
	check_delivered(ans, alen, &a, query, qlen, q, limit);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[] = { DNS_UDP_MIN, DNS_EDNS_UDP, 4096,
	    DNS_MSG_MAX };
	static uint8_t ans[DNS_MSG_MAX];
	const uint8_t *query, *rest;
	struct dns_info q;
	size_t qlen, rlen, alen, limit;
	unsigned flags;
	bool tcp;

	if (size < 3 || size > 3 + 2 * DNS_MSG_MAX)
		return 0;
	flags = data[0];
	qlen = (size_t)data[1] << 8 | data[2];
	if (qlen > size - 3)
		qlen = size - 3;
	query = data + 3;
	rest = data + 3 + qlen;
	rlen = size - 3 - qlen;
	if (dns_parse_query(query, qlen, &q) != 0) {
		query = fallback_query;
		qlen = sizeof(fallback_query);
		CHECK(dns_parse_query(query, qlen, &q) == 0);
	}
	/* The client's limit: its own, or a smaller one (a TCP client's is
	 * 65535, a UDP client's its EDNS size). */
	limit = limits[(flags >> 2) & 3];
	if (limit < dns_client_limit(&q) && !(flags & 0x10))
		limit = dns_client_limit(&q);

	alen = 0;
	if (flags & 2) {
		size_t hl = rlen < DNS_HDR_LEN ? rlen : DNS_HDR_LEN;
		size_t ql = q.question_end - DNS_HDR_LEN;

		memcpy(ans, rest, hl);
		alen = hl;
		if (hl == DNS_HDR_LEN && alen + ql <= sizeof(ans)) {
			memcpy(ans + alen, query + DNS_HDR_LEN, ql);
			alen += ql;
		}
		if (rlen > hl && alen + rlen - hl <= sizeof(ans)) {
			memcpy(ans + alen, rest + hl, rlen - hl);
			alen += rlen - hl;
		}
	} else {
		if (rlen > sizeof(ans))
			return 0;
		memcpy(ans, rest, rlen);
		alen = rlen;
	}

	tcp = (flags & 1) != 0;
	if (!tcp) {
		/* Exact-size copy: ASan sees reads past the datagram. */
		uint8_t *dgram = malloc(alen > 0 ? alen : 1);

		if (dgram == NULL)
			return 0;
		memcpy(dgram, ans, alen);
		offer(dgram, alen, false, query, qlen, &q, limit);
		free(dgram);
	} else {
		struct buf in;
		const uint8_t *msg;
		size_t len;
		int r;

		if (buf_init(&in, 2 + DNS_MSG_MAX) != 0)
			return 0;
		CHECK(buf_append(&in, ans, alen < buf_room(&in) ? alen :
		    buf_room(&in)) == 0);
		r = buf_frame(&in, &msg, &len);
		CHECK(r == 1 || r == 0 || r == -E_MALFORMED);
		if (r == 1) {
			CHECK(len >= 1 && len + 2 <= in.len);
			offer(msg, len, true, query, qlen, &q, limit);
		}
		buf_fini(&in);
	}
	return 0;
}
