/*
 * libFuzzer target: the byte stream a DoT upstream sends, cut at arbitrary
 * points, read as proxy/upstream.c reads it: chunks land in a read buffer
 * of UP_RBUF_CAP bytes (compacted when full), complete frames are taken off
 * with buf_frame, a frame shorter than a header or of length zero ends the
 * connection, an ID not outstanding is a stray, and an answer for an
 * outstanding ID is checked against that query's question (as query.c
 * does) and, when it matches, built into the client's answer and its ID
 * freed.
 *
 * Input: a byte of how many queries are outstanding (IDs 0x1000 up, query
 * i asks "q<i>.example." type A), 4 bytes seeding the cut points, then the
 * stream. The stream is read twice, whole and in cuts; both reads must
 * see the same events in the same order and leave the same IDs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/buf.h"
#include "proxy/dns.h"
#include "proxy/errors.h"
#include "proxy/idmap.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define RBUF_CAP	(2 + DNS_MSG_MAX + 1024)	/* UP_RBUF_CAP */
#define QUERIES_MAX	16
#define EVENTS_MAX	4096

enum ev { EV_STRAY = 1, EV_MISMATCH, EV_ANSWER, EV_LOST };

struct run {
	struct idmap	*ids;
	struct dns_info	q[QUERIES_MAX];
	uint8_t		qmsg[QUERIES_MAX][64];
	size_t		qlen[QUERIES_MAX];
	uint32_t	events[EVENTS_MAX];	/* ev << 16 | id */
	size_t		nevents;
	size_t		consumed;
	bool		lost;
};

static uint16_t
next_id(void *arg)
{
	uint16_t *n = arg;

	return (*n)++;
}

static void
run_init(struct run *r, unsigned nq)
{
	uint16_t counter = 0x1000, id;
	unsigned i;

	memset(r, 0, sizeof(*r));
	CHECK((r->ids = idmap_new(QUERIES_MAX)) != NULL);
	for (i = 0; i < nq; i++) {
		uint8_t *m = r->qmsg[i];
		size_t n = 0;

		memset(m, 0, DNS_HDR_LEN);
		m[0] = 0x51; m[1] = (uint8_t)i; m[2] = 0x01; m[5] = 1;
		n = DNS_HDR_LEN;
		m[n++] = (uint8_t)(i < 10 ? 2 : 3);
		m[n++] = 'q';
		if (i >= 10)
			m[n++] = '1';
		m[n++] = (uint8_t)('0' + i % 10);
		memcpy(m + n, "\007example\000\000\001\000\001", 13);
		n += 13;
		r->qlen[i] = n;
		CHECK(dns_parse_query(m, n, &r->q[i]) == 0);
		CHECK(idmap_add(r->ids, i, i, next_id, &counter, &id) == 0);
		CHECK(id == 0x1000 + i);
	}
}

static void
record(struct run *r, enum ev e, uint16_t id)
{
	CHECK(r->nevents < EVENTS_MAX);
	r->events[r->nevents++] = (uint32_t)e << 16 | id;
}

/* conn_on_answer + q_answer. Returns false when the connection ends. */
static bool
on_frame(struct run *r, const uint8_t *msg, size_t len)
{
	static uint8_t out[DNS_MSG_MAX + 64];
	struct dns_info a, back;
	uint64_t handle, stamp;
	uint16_t id;
	size_t n = 0;
	bool tc = false;

	if (len < DNS_HDR_LEN) {
		record(r, EV_LOST, 0);
		return false;
	}
	id = dns_get_id(msg);
	if (!idmap_find(r->ids, id, &handle, &stamp)) {
		record(r, EV_STRAY, id);
		return true;
	}
	CHECK(handle < QUERIES_MAX && stamp == handle);
	if (dns_parse_answer(msg, len, &a) < 0 ||
	    !dns_question_equal(&r->q[handle], &a)) {
		record(r, EV_MISMATCH, id);
		return true;
	}
	CHECK(dns_build_answer(msg, len, &a, r->qmsg[handle], r->qlen[handle],
	    &r->q[handle], DNS_MSG_MAX, out, sizeof(out), &n, &tc) == 0);
	CHECK(dns_parse_answer(out, n, &back) == 0);
	CHECK(dns_get_id(out) == dns_get_id(r->qmsg[handle]));
	CHECK(dns_question_equal(&r->q[handle], &back));
	record(r, EV_ANSWER, id);
	idmap_remove(r->ids, id);
	return true;
}

/* Reads data in chunks of the sizes cut() gives (0: all at once). */
static void
read_stream(struct run *r, const uint8_t *data, size_t size, uint32_t seed)
{
	struct buf b;
	const uint8_t *msg;
	size_t off = 0, len, n;
	int rc;

	CHECK(buf_init(&b, RBUF_CAP) == 0);
	while (off < size && !r->lost) {
		if (buf_room(&b) == 0)
			buf_compact(&b);
		CHECK(buf_room(&b) > 0);
		n = size - off;
		if (seed != 0) {
			/* xorshift: cuts of 1..64 bytes, now and then 1..4K */
			seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5;
			n = (seed & 0x300) == 0x300 ? seed % 4096 + 1 :
			    seed % 64 + 1;
			if (n > size - off)
				n = size - off;
		}
		if (n > buf_room(&b))
			n = buf_room(&b);
		memcpy(buf_tail(&b), data + off, n);
		buf_produce(&b, n);
		off += n;
		while ((rc = buf_frame(&b, &msg, &len)) == 1) {
			CHECK(len >= 1 && len + 2 <= b.len);
			if (!on_frame(r, msg, len)) {
				r->lost = true;
				break;
			}
			buf_consume(&b, 2 + len);
			r->consumed += 2 + len;
		}
		if (!r->lost && rc < 0) {
			CHECK(rc == -E_MALFORMED);
			record(r, EV_LOST, 1);
			r->lost = true;
		}
	}
	/* A frame never waits for more than the buffer can hold. */
	CHECK(r->lost || b.len < RBUF_CAP);
	CHECK(r->lost || r->consumed + b.len == size);
	buf_fini(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, cut;
	unsigned nq, i;
	uint32_t seed;
	uint64_t h1, h2;

	if (size < 5 || size > 8 * 65537)
		return 0;
	nq = data[0] % (QUERIES_MAX + 1);
	seed = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
	    (uint32_t)data[3] << 8 | data[4];
	seed |= 1;
	run_init(&whole, nq);
	run_init(&cut, nq);
	read_stream(&whole, data + 5, size - 5, 0);
	read_stream(&cut, data + 5, size - 5, seed);
	CHECK(whole.nevents == cut.nevents);
	CHECK(memcmp(whole.events, cut.events,
	    whole.nevents * sizeof(whole.events[0])) == 0);
	CHECK(whole.lost == cut.lost && whole.consumed == cut.consumed);
	CHECK(idmap_count(whole.ids) == idmap_count(cut.ids));
	for (i = 0; i < nq; i++)
		CHECK(idmap_find(whole.ids, (uint16_t)(0x1000 + i), &h1, NULL) ==
		    idmap_find(cut.ids, (uint16_t)(0x1000 + i), &h2, NULL));
	idmap_free(whole.ids);
	idmap_free(cut.ids);
	return 0;
}
