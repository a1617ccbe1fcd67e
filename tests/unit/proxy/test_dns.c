/*
 * Unit tests for proxy/dns.c: the cursor and name checks against every
 * RFC 9267 anti-pattern, query and answer parsing, and byte-level checks
 * of the messages the proxy writes (upstream query with padding, client
 * answer with the OPT rebuilt or stripped and truncation, error answers).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy/dns.h"
#include "proxy/errors.h"
#include "tests/unit/tap.h"

/* A message under construction. */
struct mb {
	uint8_t	b[65536];
	size_t	n;
};

static struct mb M, A, Q;	/* scratch messages */
static uint8_t out[65536];

static void
mb_reset(struct mb *m)
{
	m->n = 0;
}

static void
mb_u8(struct mb *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)v;
}

static void
mb_u16(struct mb *m, unsigned v)
{
	mb_u8(m, v >> 8);
	mb_u8(m, v & 0xff);
}

static void
mb_u32(struct mb *m, uint32_t v)
{
	mb_u16(m, v >> 16);
	mb_u16(m, v & 0xffff);
}

static void
mb_bytes(struct mb *m, const void *p, size_t n)
{
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void
mb_hdr(struct mb *m, unsigned id, unsigned flags, unsigned qd, unsigned an,
    unsigned ns, unsigned ar)
{
	mb_reset(m);
	mb_u16(m, id);
	mb_u16(m, flags);
	mb_u16(m, qd);
	mb_u16(m, an);
	mb_u16(m, ns);
	mb_u16(m, ar);
}

/* Appends a name given as text ("." for the root). */
static void
mb_name(struct mb *m, const char *text)
{
	uint8_t w[DNS_NAME_MAX];
	size_t n = 0;

	if (dns_name_from_text(text, w, &n) != 0) {
		printf("# bad test name %s\n", text);
		return;
	}
	mb_bytes(m, w, n);
}

static void
mb_question(struct mb *m, const char *name, unsigned type)
{
	mb_name(m, name);
	mb_u16(m, type);
	mb_u16(m, DNS_CLASS_IN);
}

/* An OPT RR header (root owner); the caller appends rdlen bytes. */
static void
mb_opt(struct mb *m, unsigned udp, uint32_t ttl, unsigned rdlen)
{
	mb_u8(m, 0);
	mb_u16(m, DNS_TYPE_OPT);
	mb_u16(m, udp);
	mb_u32(m, ttl);
	mb_u16(m, rdlen);
}

/* An A record whose owner is a pointer to the question name. */
static void
mb_a_ptr(struct mb *m, unsigned i)
{
	mb_u16(m, 0xc000 | DNS_HDR_LEN);
	mb_u16(m, DNS_TYPE_A);
	mb_u16(m, DNS_CLASS_IN);
	mb_u32(m, 300);
	mb_u16(m, 4);
	mb_u32(m, 0xc0000200u | (i & 0xff));	/* 192.0.2.i */
}

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

/* Reads a name from m at off; returns the cursor error, fills name. */
static int
read_name(const struct mb *m, size_t off, uint8_t *name, size_t *nlen,
    size_t *end)
{
	struct dns_cur c;

	dns_cur_init(&c, m->b, m->n);
	c.off = off;
	dns_cur_name(&c, name, nlen);
	if (end != NULL)
		*end = c.off;
	return c.err;
}

static void
test_cursor(void)
{
	static const uint8_t bytes[] = { 1, 2, 3, 4, 5, 6, 7 };
	struct dns_cur c;

	dns_cur_init(&c, bytes, sizeof(bytes));
	is(dns_cur_u8(&c), 1, "cur u8");
	is(dns_cur_u16(&c), 0x0203, "cur u16 big-endian");
	is(dns_cur_u32(&c), 0x04050607, "cur u32 big-endian");
	is(c.err, 0, "cur no error after exact reads");
	is(dns_cur_u8(&c), 0, "cur u8 past end returns 0");
	is(c.err, -E_MALFORMED, "cur past end sets err");
	c.off = 0;
	is(dns_cur_u8(&c), 0, "cur error is sticky");
	is(c.off, 0, "cur sticky error does not move");

	dns_cur_init(&c, bytes, sizeof(bytes));
	dns_cur_skip(&c, 6);
	is(dns_cur_u16(&c), 0, "cur u16 with one byte left fails");
	ok(c.err != 0 && c.off == 6, "cur failed u16 does not move");
	dns_cur_init(&c, bytes, sizeof(bytes));
	dns_cur_skip(&c, (size_t)-1);
	ok(c.err != 0 && c.off == 0, "cur skip SIZE_MAX fails, no wrap");
	dns_cur_init(&c, bytes, sizeof(bytes));
	dns_cur_skip(&c, 7);
	ok(c.err == 0 && c.off == 7, "cur skip to the exact end");

	dns_cur_init(&c, bytes, 0);
	dns_cur_name(&c, NULL, NULL);
	ok(c.err != 0, "name in empty buffer fails");
}

static void
test_names(void)
{
	uint8_t name[DNS_NAME_MAX];
	size_t nlen = 0, end = 0, at, at2, at3, i;
	char buf[64];

	/* Plain and compressed. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_name(&M, "example.com");
	at = M.n;
	mb_u8(&M, 3);
	mb_bytes(&M, "www", 3);
	mb_u16(&M, 0xc000 | DNS_HDR_LEN);
	mb_u8(&M, 0xff);	/* a byte after, must not be consumed */
	is(read_name(&M, 12, name, &nlen, &end), 0, "plain name reads");
	is(nlen, 13, "plain name length");
	is(end, 25, "cursor past plain name");
	is_mem(name, "\7example\3com\0", 13, "plain name bytes");
	is(read_name(&M, at, name, &nlen, &end), 0, "compressed name reads");
	is(nlen, 17, "compressed name length");
	is(end, at + 6, "cursor just past the pointer");
	is_mem(name, "\3www\7example\3com\0", 17, "compressed name bytes");
	is(read_name(&M, at, NULL, NULL, &end), 0, "name with NULL out");

	/* Pointer to itself. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	at = M.n;
	mb_u16(&M, 0xc000 | at);
	ok(read_name(&M, at, name, &nlen, NULL) != 0, "pointer to itself");

	/* Pointer forward. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u16(&M, 0xc000 | (DNS_HDR_LEN + 2));
	mb_u8(&M, 0);
	ok(read_name(&M, 12, name, &nlen, NULL) != 0, "pointer forward");

	/* Pointer into the middle of its own name. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_name(&M, "example.com");
	at = M.n;
	mb_u8(&M, 1);
	mb_u8(&M, 'a');
	mb_u16(&M, 0xc000 | (at + 1));
	ok(read_name(&M, at, name, &nlen, NULL) != 0,
	    "pointer into the middle of its own name");
	M.b[M.n - 1] = (uint8_t)at;
	ok(read_name(&M, at, name, &nlen, NULL) != 0,
	    "pointer to its own name start (loop)");

	/* Mutual loop: a at X points to Y, Y points back to X. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_name(&M, "example.com");
	at = M.n;
	mb_u16(&M, 0);		/* patched below */
	at2 = M.n;
	mb_u8(&M, 1);
	mb_u8(&M, 'b');
	mb_u16(&M, 0xc000 | at);
	M.b[at] = 0xc0;
	M.b[at + 1] = (uint8_t)at2;
	ok(read_name(&M, at2, name, &nlen, NULL) != 0, "mutual pointer loop");
	ok(read_name(&M, at, name, &nlen, NULL) != 0,
	    "mutual pointer loop, other entry");

	/*
	 * Pointer backwards whose target's label runs over the pointer
	 * itself: at 12 a label of 2 covers the pointer at 13, which
	 * points to 12.
	 */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u8(&M, 2);
	mb_u16(&M, 0xc000 | 12);
	mb_u8(&M, 0);
	ok(read_name(&M, 13, name, &nlen, NULL) != 0,
	    "pointer target whose labels overlap the pointer");
	/* Same, the target's labels running past the pointer's record. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_name(&M, "a");
	mb_u8(&M, 4);		/* at 15: label of 4 over 16..19 */
	at = M.n;
	mb_u16(&M, 0xc000 | 15);
	mb_u16(&M, 0x0101);
	mb_u8(&M, 0);
	ok(read_name(&M, at, name, &nlen, NULL) != 0,
	    "pointer target whose labels run past the pointer");
	ok(read_name(&M, 15, name, &nlen, NULL) == 0 && nlen == 6,
	    "the same bytes read in place are a valid name");

	/* Pointer past the end and truncated pointer. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u16(&M, 0xc000 | 0x3fff);
	ok(read_name(&M, 12, name, &nlen, NULL) != 0, "pointer past the end");
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_name(&M, "a");
	at = M.n;
	mb_u8(&M, 0xc0);
	ok(read_name(&M, at, name, &nlen, NULL) != 0,
	    "pointer cut after its first byte");

	/* Pointer into the header. */
	mb_hdr(&M, 0x0100, 0, 1, 0, 0, 0);	/* id bytes 01 00: "\1" + ? */
	mb_u16(&M, 0xc000);
	ok(read_name(&M, 12, name, &nlen, NULL) != 0, "pointer into header");

	/* Label types 0x40 and 0x80, and lengths above 63. */
	for (i = 0; i < 3; i++) {
		static const uint8_t types[3] = { 0x40, 0x80, 0x41 };

		/* Exactly that many bytes then a root: only the type bits
		 * make it wrong (the length would fit in 255). */
		mb_hdr(&M, 1, 0, 1, 0, 0, 0);
		mb_u8(&M, types[i]);
		memset(M.b + M.n, '0', types[i]);
		M.n += types[i];
		mb_u8(&M, 0);
		snprintf(buf, sizeof(buf), "label type byte 0x%02x rejected",
		    types[i]);
		ok(read_name(&M, 12, name, &nlen, NULL) != 0, "%s", buf);
	}
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u8(&M, 63);
	memset(M.b + M.n, 'a', 63);
	M.n += 63;
	mb_u8(&M, 0);
	ok(read_name(&M, 12, name, &nlen, NULL) == 0 && nlen == 65,
	    "label of 63 accepted");

	/* Truncated label and missing root. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u8(&M, 10);
	mb_bytes(&M, "abcde", 5);
	ok(read_name(&M, 12, name, &nlen, NULL) != 0, "truncated label");
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u8(&M, 3);
	mb_bytes(&M, "com", 3);
	ok(read_name(&M, 12, name, &nlen, NULL) != 0, "name without root");

	/* Total length: 127 one-byte labels make 255, 128 make 257. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	for (i = 0; i < 127; i++) {
		mb_u8(&M, 1);
		mb_u8(&M, 'a');
	}
	mb_u8(&M, 0);
	ok(read_name(&M, 12, name, &nlen, NULL) == 0 && nlen == 255,
	    "name of exactly 255 bytes accepted");
	M.n--;
	mb_u8(&M, 1);
	mb_u8(&M, 'a');
	mb_u8(&M, 0);
	ok(read_name(&M, 12, name, &nlen, NULL) != 0,
	    "name of 257 bytes via many labels rejected");
	/* 3 x 63 + 61: 192 + 62 + 1 = 255; 3 x 63 + 62 = 256. */
	for (i = 61; i <= 62; i++) {
		size_t k;

		mb_hdr(&M, 1, 0, 1, 0, 0, 0);
		for (k = 0; k < 3; k++) {
			mb_u8(&M, 63);
			memset(M.b + M.n, 'x', 63);
			M.n += 63;
		}
		mb_u8(&M, (unsigned)i);
		memset(M.b + M.n, 'y', i);
		M.n += i;
		mb_u8(&M, 0);
		if (i == 61)
			ok(read_name(&M, 12, name, &nlen, NULL) == 0 &&
			    nlen == 255, "long labels, 255 bytes accepted");
		else
			ok(read_name(&M, 12, name, &nlen, NULL) != 0,
			    "long labels, 256 bytes rejected");
	}

	/* Over 255 via pointers: each name adds 64 bytes to the last. */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u8(&M, 63);
	memset(M.b + M.n, 'a', 63);
	M.n += 63;
	mb_u8(&M, 0);			/* 65 bytes at 12 */
	at = M.n;
	mb_u8(&M, 63);
	memset(M.b + M.n, 'b', 63);
	M.n += 63;
	mb_u16(&M, 0xc000 | 12);	/* 129 */
	at2 = M.n;
	mb_u8(&M, 63);
	memset(M.b + M.n, 'c', 63);
	M.n += 63;
	mb_u16(&M, 0xc000 | at);	/* 193 */
	at3 = M.n;
	mb_u8(&M, 63);
	memset(M.b + M.n, 'd', 63);
	M.n += 63;
	mb_u16(&M, 0xc000 | at2);	/* 257 */
	ok(read_name(&M, at2, name, &nlen, NULL) == 0 && nlen == 193,
	    "pointer chain of 193 bytes accepted");
	ok(read_name(&M, at3, name, &nlen, NULL) != 0,
	    "pointer chain over 255 bytes rejected");

	/*
	 * Hop cap: a root at 12 and a ladder of pointers, each to the one
	 * before, so targets strictly decrease and only the cap stops it.
	 */
	mb_hdr(&M, 1, 0, 1, 0, 0, 0);
	mb_u8(&M, 0);
	mb_u16(&M, 0xc000 | 12);
	for (i = 1; i < 40; i++)
		mb_u16(&M, 0xc000 | (13 + 2 * (i - 1)));
	/* The pointer at 13 + 2k is followed by k + 1 hops. */
	ok(read_name(&M, 13 + 2 * (DNS_PTR_HOPS - 1), name, &nlen, &end) == 0 &&
	    nlen == 1 && end == 13 + 2 * DNS_PTR_HOPS,
	    "DNS_PTR_HOPS pointers accepted");
	ok(read_name(&M, 13 + 2 * DNS_PTR_HOPS, name, &nlen, NULL) != 0,
	    "DNS_PTR_HOPS + 1 pointers rejected");
}

/* A query for name/type with optional OPT (ttl, options). */
static void
make_query(struct mb *m, unsigned id, unsigned flags, const char *name,
    unsigned type, bool opt, unsigned udp, uint32_t ttl,
    const uint8_t *opts, size_t optlen)
{
	mb_hdr(m, id, flags, 1, 0, 0, opt ? 1 : 0);
	mb_question(m, name, type);
	if (opt) {
		mb_opt(m, udp, ttl, (unsigned)optlen);
		if (optlen > 0)
			mb_bytes(m, opts, optlen);
	}
}

static void
test_parse_query(void)
{
	struct dns_info q;
	static const uint8_t ka_empty[] = { 0, 11, 0, 0 };
	static const uint8_t ka_val[] = { 0, 12, 0, 2, 0, 0, 0, 11, 0, 2,
	    0x01, 0x2c };
	static const uint8_t bad_opt[] = { 0, 12, 0, 9, 0, 0 };

	make_query(&Q, 0x1234, DNS_FLAG_RD, "Example.COM", DNS_TYPE_AAAA,
	    false, 0, 0, NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), 0, "query parses");
	is(q.id, 0x1234, "query id");
	is(q.flags, DNS_FLAG_RD, "query flags");
	is(q.qtype, DNS_TYPE_AAAA, "query qtype");
	is(q.qclass, DNS_CLASS_IN, "query qclass");
	is(q.qname_len, 13, "query qname length");
	is_mem(q.qname, "\7Example\3COM\0", 13, "query qname keeps case");
	is(q.question_end, Q.n, "query question_end");
	ok(!q.has_opt && q.udp_size == 0 && q.keepalive == -1,
	    "query without OPT");
	is(dns_client_limit(&q), 512, "limit 512 without OPT");

	/* Order of checks. */
	is(dns_parse_query(Q.b, 11, &q), -E_DROP, "11 bytes: drop");
	is(dns_parse_query(Q.b, 0, &q), -E_DROP, "0 bytes: drop");
	make_query(&Q, 1, DNS_FLAG_QR, "a.example", 1, false, 0, 0, NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_DROP, "QR set: drop");
	make_query(&Q, 1, DNS_FLAG_QR | 2 << 11, "a.example", 1, false, 0, 0,
	    NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_DROP, "QR before opcode: drop");
	make_query(&Q, 7, 2 << 11 | DNS_FLAG_RD, "a.example", 1, false, 0, 0,
	    NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_NOTIMP, "opcode STATUS: NOTIMP");
	ok(q.id == 7 && DNS_OPCODE(q.flags) == 2 && q.qname_len == 11,
	    "NOTIMP fills header and question");
	Q.b[5] = 0;	/* QDCOUNT 0 and opcode: NOTIMP first */
	is(dns_parse_query(Q.b, Q.n, &q), -E_NOTIMP, "opcode before QDCOUNT");
	make_query(&Q, 9, 0, "a.example", 1, false, 0, 0, NULL, 0);
	Q.b[5] = 0;
	is(dns_parse_query(Q.b, 12, &q), -E_FORMERR, "QDCOUNT 0: FORMERR");
	ok(q.id == 9 && q.qname_len == 0, "FORMERR fills header");
	Q.b[5] = 2;
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR, "QDCOUNT 2: FORMERR");
	make_query(&Q, 9, 0, "a.example", 1, false, 0, 0, NULL, 0);
	is(dns_parse_query(Q.b, Q.n - 1, &q), -E_FORMERR,
	    "truncated question: FORMERR");
	mb_u8(&Q, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "trailing byte: FORMERR");
	ok(q.qname_len == 11, "FORMERR after the question keeps it");

	/* Two OPTs, OPT in the wrong section, OPT owner not root. */
	make_query(&Q, 1, 0, "a.example", 1, true, 1232, 0, NULL, 0);
	Q.b[11] = 2;
	mb_opt(&Q, 1232, 0, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR, "two OPTs: FORMERR");
	ok(q.has_opt, "FORMERR with OPT says has_opt");
	make_query(&Q, 1, 0, "a.example", 1, true, 1232, 0, NULL, 0);
	Q.b[11] = 0;
	Q.b[7] = 1;	/* the OPT counted as an answer record */
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR, "OPT in answer section");
	Q.b[7] = 0;
	Q.b[9] = 1;
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "OPT in authority section");
	mb_hdr(&Q, 1, 0, 1, 0, 0, 1);
	mb_question(&Q, "a.example", 1);
	mb_u16(&Q, 0xc000 | 12);
	mb_u16(&Q, DNS_TYPE_OPT);
	mb_u16(&Q, 1232);
	mb_u32(&Q, 0);
	mb_u16(&Q, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR, "OPT owner not root");

	/* EDNS version 1: BADVERS, after the full walk. */
	make_query(&Q, 5, DNS_FLAG_RD, "a.example", 1, true, 1232,
	    0x00018000, NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_BADVERS, "OPT version 1: BADVERS");
	ok(q.has_opt && q.edns_version == 1 && q.qname_len == 11 &&
	    q.id == 5 && q.do_bit, "BADVERS fills header, question, OPT");
	mb_u8(&Q, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "version 1 with trailing bytes: FORMERR wins");

	/* OPT fields. */
	make_query(&Q, 1, 0, "a.example", 1, true, 4096, 0x00008000,
	    ka_empty, sizeof(ka_empty));
	is(dns_parse_query(Q.b, Q.n, &q), 0, "query with OPT parses");
	ok(q.has_opt && q.udp_size == 4096 && q.do_bit &&
	    q.edns_version == 0 && q.ext_rcode == 0, "OPT udp size and DO");
	is(q.keepalive, -1, "empty keepalive leaves -1");
	is(q.opt_off, Q.n - 15, "opt_off at the OPT owner");
	is(q.opt_end, Q.n, "opt_end past the OPT");
	ok(q.opt_last, "opt_last");
	is(dns_client_limit(&q), 4096, "limit is the EDNS size");
	make_query(&Q, 1, 0, "a.example", 1, true, 100, 0x12000000,
	    ka_val, sizeof(ka_val));
	is(dns_parse_query(Q.b, Q.n, &q), 0, "query with padding + keepalive");
	is(q.keepalive, 300, "keepalive value after a padding option");
	ok(!q.do_bit && q.ext_rcode == 0x12, "ext rcode from TTL, DO clear");
	is(dns_client_limit(&q), 512, "EDNS size below 512 clamps to 512");
	make_query(&Q, 1, 0, "a.example", 1, true, 65535, 0, NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), 0, "OPT without options");
	is(dns_client_limit(&q), 65535, "limit 65535");
	make_query(&Q, 1, 0, "a.example", 1, true, 1232, 0, bad_opt,
	    sizeof(bad_opt));
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "option longer than the rdata: FORMERR");
	make_query(&Q, 1, 0, "a.example", 1, true, 1232, 0, ka_empty, 3);
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "partial option header: FORMERR");

	/* Counts that claim more than the bytes, rdlen past the end. */
	make_query(&Q, 1, 0, "a.example", 1, false, 0, 0, NULL, 0);
	Q.b[6] = 0xff;
	Q.b[7] = 0xff;
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "ANCOUNT 65535 with no records: FORMERR");
	make_query(&Q, 1, 0, "a.example", 1, false, 0, 0, NULL, 0);
	Q.b[9] = 3;
	mb_a_ptr(&Q, 1);
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "NSCOUNT 3 with one record: FORMERR");
	Q.b[9] = 1;
	is(dns_parse_query(Q.b, Q.n, &q), 0, "NSCOUNT 1 with one record ok");
	Q.b[Q.n - 5] = 5;	/* rdlen 4 -> 5 */
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR, "rdlen past the end");
	make_query(&Q, 1, 0, "a.example", 1, false, 0, 0, NULL, 0);
	Q.b[12] = 0x40;
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "question label type 0x40: FORMERR");
	make_query(&Q, 1, 0, "a.example", 1, false, 0, 0, NULL, 0);
	Q.b[12] = 0xc0;
	Q.b[13] = 12;
	is(dns_parse_query(Q.b, Q.n, &q), -E_FORMERR,
	    "question pointer to itself: FORMERR");
}

static void
test_parse_answer(void)
{
	struct dns_info a;

	mb_hdr(&A, 1, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 2, 0, 1);
	mb_question(&A, "a.example", DNS_TYPE_A);
	mb_a_ptr(&A, 1);
	mb_a_ptr(&A, 2);
	mb_opt(&A, 1232, 0x01008000, 0);
	is(dns_parse_answer(A.b, A.n, &a), 0, "answer parses");
	ok(a.has_opt && a.opt_last && a.ext_rcode == 1 && a.do_bit &&
	    a.ancount == 2 && a.arcount == 1, "answer OPT fields");
	is(dns_parse_answer(A.b, A.n - 1, &a), -E_MALFORMED,
	    "answer cut in the OPT");
	A.b[A.n] = 0;
	is(dns_parse_answer(A.b, A.n + 1, &a), -E_MALFORMED,
	    "answer trailing byte");
	A.b[2] &= 0x7f;
	is(dns_parse_answer(A.b, A.n, &a), -E_MALFORMED, "answer without QR");
	A.b[2] |= 0x80;
	A.b[5] = 2;
	is(dns_parse_answer(A.b, A.n, &a), -E_MALFORMED, "answer QDCOUNT 2");
	A.b[5] = 1;
	A.b[7] = 3;
	is(dns_parse_answer(A.b, A.n, &a), -E_MALFORMED,
	    "answer count beyond the bytes");
	A.b[7] = 2;
	is(dns_parse_answer(A.b, 11, &a), -E_MALFORMED, "answer too short");

	/* OPT followed by another record: not last. */
	mb_hdr(&A, 1, DNS_FLAG_QR, 1, 0, 0, 2);
	mb_question(&A, "a.example", DNS_TYPE_A);
	mb_opt(&A, 1232, 0, 0);
	mb_a_ptr(&A, 1);
	is(dns_parse_answer(A.b, A.n, &a), 0, "answer OPT then a record");
	ok(a.has_opt && !a.opt_last && a.opt_end == A.n - 16,
	    "opt_last false when a record follows");
	A.b[A.n - 16] = 0x80;	/* the record's owner: label type 0x80 */
	ok(dns_parse_answer(A.b, A.n, &a) != 0, "bad record after OPT");
}

/* Checks that m is a padded upstream query as dns_build_query writes. */
static void
test_build_query(void)
{
	static const char *const names[] = { ".", "a", "example.com",
	    "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z",
	    "a-rather-long-label-that-goes-on-and-on-and-on-to-63-bytes-xxxx."
	    "example", NULL };
	struct dns_info q, u;
	size_t n = 0, i, k, namelen;
	char longname[300];
	int rc;

	make_query(&Q, 0xbeef, 0xffff & ~(DNS_FLAG_QR | 0x7800u | 0xf),
	    "ExAmple.com", DNS_TYPE_A, true, 4096, 0x00008000, NULL, 0);
	Q.b[3] |= 0x05;	/* rcode bits set by a sloppy client */
	is(dns_parse_query(Q.b, Q.n, &q), 0, "flag-heavy query parses");
	rc = dns_build_query(Q.b, Q.n, &q, 0x4242, false, false, out,
	    sizeof(out), &n);
	is(rc, 0, "build_query ok");
	{
		static const uint8_t want[] = {
			0x42, 0x42, 0x01, 0x30, 0, 1, 0, 0, 0, 0, 0, 1,
			7, 'E', 'x', 'A', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm',
			0, 0, 1, 0, 1,
			0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0 };

		is(n, sizeof(want), "build_query length, no options");
		is_mem(out, want, sizeof(want),
		    "build_query bytes: id, RD|AD|CD only, question, OPT");
	}
	rc = dns_build_query(Q.b, Q.n, &q, 1, true, true, out, sizeof(out),
	    &n);
	is(rc, 0, "build_query with keepalive and pad");
	is(n, 128, "padded to 128");
	{
		/* 12 + 17 + 11 = 40; keepalive 4 -> 44; pad 4 + 80. */
		static const uint8_t opt[] = { 0, 0, 41, 0x04, 0xd0, 0, 0,
		    0x80, 0, 0, 4 + 4 + 80, 0, 11, 0, 0, 0, 12, 0, 80 };
		static const uint8_t zero[80];

		is_mem(out + 29, opt, sizeof(opt),
		    "padded OPT: keepalive then padding header");
		is_mem(out + 29 + sizeof(opt), zero, 80, "padding is zeros");
	}
	is(dns_parse_query(out, n, &u), 0, "padded query parses back");
	ok(dns_question_equal(&q, &u) && u.keepalive == -1 &&
	    u.udp_size == DNS_EDNS_UDP && u.do_bit, "parsed back fields");
	is(dns_build_query(Q.b, Q.n, &q, 1, true, true, out, 127, &n),
	    -E_TOOBIG, "build_query cap too small");

	/* Many name lengths, with and without keepalive. */
	for (i = 0; names[i] != NULL; i++) {
		for (k = 0; k < 2; k++) {
			make_query(&Q, 1, DNS_FLAG_RD, names[i], DNS_TYPE_A,
			    false, 0, 0, NULL, 0);
			if (dns_parse_query(Q.b, Q.n, &q) != 0 ||
			    dns_build_query(Q.b, Q.n, &q, 9, k == 1, true, out,
			    sizeof(out), &n) != 0) {
				ok(0, "build padded query for %s", names[i]);
				continue;
			}
			ok(n % DNS_PAD_BLOCK == 0 && n > 0 &&
			    dns_parse_query(out, n, &u) == 0 &&
			    dns_question_equal(&q, &u) && !u.do_bit &&
			    u.keepalive == -1 && u.arcount == 1,
			    "padded query for %s (keepalive %zu): %zu bytes",
			    names[i], k, n);
		}
	}
	/* Every qname length from 1 to 255 bytes pads to a block. */
	for (namelen = 1, k = 0; namelen <= DNS_NAME_MAX; namelen++) {
		size_t left = namelen - 1, p = 0;

		/* Labels of up to 63 bytes, each needs at least 2 bytes. */
		while (left > 0) {
			size_t lab = left - 1 > 63 ? 63 : left - 1;

			if (left - (lab + 1) == 1)
				lab--;	/* never leave a single byte */
			if (lab == 0)
				break;
			memset(longname + p, 'q', lab);
			p += lab;
			longname[p++] = '.';
			left -= lab + 1;
		}
		if (left != 0)
			continue;
		longname[p] = '\0';
		make_query(&Q, 1, 0, p == 0 ? "." : longname, DNS_TYPE_A,
		    false, 0, 0, NULL, 0);
		if (dns_parse_query(Q.b, Q.n, &q) != 0 ||
		    q.qname_len != namelen ||
		    dns_build_query(Q.b, Q.n, &q, 9, (namelen & 1) != 0, true,
		    out, sizeof(out), &n) != 0 || n % DNS_PAD_BLOCK != 0 ||
		    dns_parse_query(out, n, &u) != 0) {
			printf("# qname length %zu failed\n", namelen);
			k++;
		}
	}
	is(k, 0, "all qname lengths 1..255 pad to a multiple of 128");
}

/*
 * Builds an answer for name/type: nrec A records (owner pointers), then
 * optionally an OPT (udp, ttl, opts) and extra records after it.
 */
static void
make_answer(struct mb *m, unsigned id, unsigned flags, const char *name,
    unsigned nrec, bool opt, uint32_t ttl, unsigned padlen, unsigned after)
{
	unsigned i;

	mb_hdr(m, id, DNS_FLAG_QR | flags, 1, nrec, 0,
	    (opt ? 1 : 0) + after);
	mb_question(m, name, DNS_TYPE_A);
	for (i = 0; i < nrec; i++)
		mb_a_ptr(m, i);
	if (opt) {
		mb_opt(m, 4096, ttl, padlen > 0 ? padlen + 4 : 0);
		if (padlen > 0) {
			mb_u16(m, DNS_OPT_PADDING);
			mb_u16(m, padlen);
			memset(m->b + m->n, 0, padlen);
			m->n += padlen;
		}
	}
	for (i = 0; i < after; i++)
		mb_a_ptr(m, 100 + i);
}

static void
test_build_answer(void)
{
	struct dns_info q, a, r;
	size_t n = 0;
	bool tc = true;
	int rc;

	/* Client without OPT, answer with OPT last: OPT stripped. */
	make_query(&Q, 0x1111, DNS_FLAG_RD, "WwW.ExAmPlE.cOm", DNS_TYPE_A,
	    false, 0, 0, NULL, 0);
	make_answer(&A, 0x9999, DNS_FLAG_RD | DNS_FLAG_RA, "www.example.com",
	    2, true, 0x00008000, 20, 0);
	ok(dns_parse_query(Q.b, Q.n, &q) == 0 &&
	    dns_parse_answer(A.b, A.n, &a) == 0, "inputs parse");
	ok(dns_question_equal(&q, &a), "question_equal ignores case");
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 512, out,
	    sizeof(out), &n, &tc);
	is(rc, 0, "build_answer ok");
	ok(!tc, "not truncated");
	is(n, A.n - 11 - 24, "length: answer minus OPT with padding");
	is(rd16(out), 0x1111, "client id restored");
	is_mem(out + 12, Q.b + 12, q.question_end - 12,
	    "client question case restored");
	is(rd16(out + 10), 0, "ARCOUNT 0 after OPT stripped");
	is(rd16(out + 6), 2, "ANCOUNT kept");
	is(rd16(out + 2), DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA,
	    "flags kept");
	is_mem(out + q.question_end, A.b + a.question_end, 32,
	    "records copied as is");
	ok(dns_parse_answer(out, n, &r) == 0 && !r.has_opt,
	    "result parses, no OPT");

	/* Client with OPT: ours replaces the upstream one. */
	make_query(&Q, 0x2222, DNS_FLAG_RD, "www.EXAMPLE.com", DNS_TYPE_A,
	    true, 1232, 0x00008000, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && !tc, "EDNS client answer ok");
	is(n, A.n - 24, "length: upstream OPT (with padding) -> our 11");
	{
		static const uint8_t want[] = { 0, 0, 41, 0x04, 0xd0, 0, 0,
		    0x80, 0, 0, 0 };

		is_mem(out + n - 11, want, 11, "our OPT: 1232, DO, rdlen 0");
	}
	is(rd16(out + 10), 1, "ARCOUNT 1");
	ok(dns_parse_answer(out, n, &r) == 0 && r.has_opt &&
	    r.udp_size == DNS_EDNS_UDP && r.opt_last, "result parses, OPT");

	/* Extended RCODE: BADCOOKIE (23) = ext 1, header 7. */
	make_answer(&A, 1, DNS_FLAG_RD | 7, "www.example.com", 0, true,
	    0x01000000, 0, 0);
	dns_parse_answer(A.b, A.n, &a);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && DNS_RCODE(rd16(out + 2)) == 7 &&
	    rd32(out + n - 6) == 0x01000000, "ext rcode kept for EDNS client");
	make_query(&Q, 3, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, false,
	    0, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 512, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && DNS_RCODE(rd16(out + 2)) == DNS_RCODE_SERVFAIL &&
	    rd16(out + 10) == 0 && n == q.question_end,
	    "ext rcode to a no-EDNS client becomes SERVFAIL");

	/* Answer without OPT to an EDNS client: OPT appended. */
	make_query(&Q, 4, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, true,
	    1232, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	make_answer(&A, 1, 0, "www.example.com", 1, false, 0, 0, 0);
	dns_parse_answer(A.b, A.n, &a);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && n == A.n + 11 && rd16(out + 10) == 1 &&
	    rd32(out + n - 6) == 0, "OPT appended when upstream had none");

	/* OPT not last, EDNS client: rewritten in place with padding. */
	make_answer(&A, 1, 0, "www.example.com", 1, true, 0x00008000, 6, 1);
	dns_parse_answer(A.b, A.n, &a);
	ok(a.has_opt && !a.opt_last, "OPT-not-last answer parses");
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && n == A.n && rd16(out + 10) == 2,
	    "OPT not last: same length, ARCOUNT kept");
	{
		static const uint8_t want[] = { 0, 0, 41, 0x04, 0xd0, 0, 0,
		    0x80, 0, 0, 10, 0, 12, 0, 6, 0, 0, 0, 0, 0, 0 };

		is_mem(out + a.opt_off, want, sizeof(want),
		    "OPT rewritten: our size, padding of equal length");
	}
	ok(dns_parse_answer(out, n, &r) == 0 && r.has_opt && !r.opt_last,
	    "rewritten answer parses");
	/* Same, client without OPT: cut at the OPT. */
	make_query(&Q, 5, DNS_FLAG_RD, "WWW.example.COM", DNS_TYPE_A, false,
	    0, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	mb_hdr(&A, 1, DNS_FLAG_QR, 1, 1, 0, 3);
	mb_question(&A, "www.example.com", DNS_TYPE_A);
	mb_a_ptr(&A, 1);
	mb_a_ptr(&A, 100);	/* additional, before the OPT */
	mb_opt(&A, 1232, 0, 0);
	mb_a_ptr(&A, 101);	/* additional, after it */
	ok(dns_parse_answer(A.b, A.n, &a) == 0 && !a.opt_last &&
	    a.arcount == 3, "answer with AR record, OPT, AR record");
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 512, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && n == a.opt_off && rd16(out + 10) == 1,
	    "no-EDNS client: cut at OPT, ARCOUNT = records before it");
	ok(dns_parse_answer(out, n, &r) == 0 && !r.has_opt,
	    "cut answer parses");

	/*
	 * OPT not last, and the record after it names a spot inside the
	 * OPT rdata: option code 0x0001 reads as "\1\0" + root, but our
	 * Padding code 0x000c would read as a 12-byte label. The rewrite
	 * must not produce that; the OPT and what follows are cut instead.
	 */
	make_query(&Q, 8, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, true,
	    1232, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	mb_hdr(&A, 1, DNS_FLAG_QR, 1, 0, 0, 2);
	mb_question(&A, "www.example.com", DNS_TYPE_A);
	mb_opt(&A, 1232, 0, 4);
	mb_u32(&A, 0x00010000);
	mb_u16(&A, 0xc000 | (A.n - 3));
	mb_u16(&A, DNS_TYPE_A);
	mb_u16(&A, DNS_CLASS_IN);
	mb_u32(&A, 60);
	mb_u16(&A, 4);
	mb_u32(&A, 0xc0000201);
	ok(dns_parse_answer(A.b, A.n, &a) == 0 && !a.opt_last,
	    "answer with a name inside the OPT rdata parses");
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && !tc && n == q.question_end + 11 &&
	    rd16(out + 10) == 1 && dns_parse_answer(out, n, &r) == 0 &&
	    r.has_opt && r.opt_last,
	    "unsafe OPT rewrite falls back to cut + our OPT");

	/* Truncation: 40 A records are 12 + 21 + 640 bytes. */
	make_query(&Q, 5, DNS_FLAG_RD, "WWW.example.COM", DNS_TYPE_A, false,
	    0, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	make_answer(&A, 1, DNS_FLAG_RD | DNS_FLAG_RA, "www.example.com", 40,
	    true, 0x00008000, 0, 0);
	dns_parse_answer(A.b, A.n, &a);
	ok(A.n > 512, "big answer is over 512 (%zu)", A.n);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 512, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && tc, "no-EDNS client: truncated");
	is(n, q.question_end, "truncated to header + question");
	ok(rd16(out + 2) & DNS_FLAG_TC, "TC set");
	ok(rd16(out + 4) == 1 && rd16(out + 6) == 0 && rd16(out + 8) == 0 &&
	    rd16(out + 10) == 0, "counts 1/0/0/0");
	ok(rd16(out) == 5, "truncated keeps the client id");
	is_mem(out + 12, Q.b + 12, q.question_end - 12,
	    "truncated answer has the client's question case");
	make_query(&Q, 6, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, true,
	    512, 0x8000, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q,
	    dns_client_limit(&q), out, sizeof(out), &n, &tc);
	ok(rc == 0 && tc && n == q.question_end + 11 && rd16(out + 10) == 1 &&
	    (rd16(out + 2) & DNS_FLAG_TC),
	    "EDNS 512 client: truncated, with OPT");
	ok(dns_parse_answer(out, n, &r) == 0 && r.has_opt && r.do_bit,
	    "truncated answer parses, OPT with DO");
	make_query(&Q, 6, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, true,
	    1232, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q,
	    dns_client_limit(&q), out, sizeof(out), &n, &tc);
	ok(rc == 0 && !tc && n == A.n && rd16(out + 6) == 40,
	    "EDNS 1232 client: whole answer");
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 65535, out, 600,
	    &n, &tc);
	ok(rc == 0 && tc, "cap below the answer: truncated");
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 65535, out, 20,
	    &n, &tc);
	is(rc, -E_TOOBIG, "cap below the truncated form: TOOBIG");

	/* Question mismatch refused. */
	make_query(&Q, 6, DNS_FLAG_RD, "www.example.org", DNS_TYPE_A, true,
	    1232, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
	    sizeof(out), &n, &tc);
	is(rc, -E_MISMATCH, "different question: MISMATCH");
}

static void
test_build_error(void)
{
	static const unsigned rcodes[] = { DNS_RCODE_FORMERR,
	    DNS_RCODE_SERVFAIL, DNS_RCODE_NOTIMP, DNS_RCODE_REFUSED };
	struct dns_info q, r;
	size_t n = 0, i;
	int rc;

	make_query(&Q, 0x7777, DNS_FLAG_RD | DNS_FLAG_CD, "a.example",
	    DNS_TYPE_MX, false, 0, 0, NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	for (i = 0; i < 4; i++) {
		rc = dns_build_error(&q, rcodes[i], out, sizeof(out), &n);
		ok(rc == 0 && n == q.question_end && rd16(out) == 0x7777 &&
		    rd16(out + 2) == (DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA |
		    rcodes[i]) && rd16(out + 4) == 1 && rd16(out + 6) == 0 &&
		    rd16(out + 8) == 0 && rd16(out + 10) == 0 &&
		    memcmp(out + 12, Q.b + 12, n - 12) == 0,
		    "error rcode %u: header and echoed question", rcodes[i]);
		ok(dns_parse_answer(out, n, &r) == 0 &&
		    DNS_RCODE(r.flags) == rcodes[i], "error %u parses",
		    rcodes[i]);
	}
	is(dns_build_error(&q, DNS_RCODE_SERVFAIL, out, 12, &n), -E_TOOBIG,
	    "error: cap too small");

	/* With OPT, DO copied. */
	make_query(&Q, 1, 0, "a.example", DNS_TYPE_A, true, 4096, 0x8000,
	    NULL, 0);
	dns_parse_query(Q.b, Q.n, &q);
	rc = dns_build_error(&q, DNS_RCODE_SERVFAIL, out, sizeof(out), &n);
	{
		static const uint8_t want[] = { 0, 0, 41, 0x04, 0xd0, 0, 0,
		    0x80, 0, 0, 0 };

		ok(rc == 0 && n == q.question_end + 11 &&
		    rd16(out + 10) == 1 && rd16(out + 2) == (DNS_FLAG_QR |
		    DNS_FLAG_RA | DNS_RCODE_SERVFAIL), "SERVFAIL with OPT");
		is_mem(out + n - 11, want, 11, "error OPT bytes, DO copied");
	}

	/* BADVERS: header 0, ext rcode 1 in OPT. */
	make_query(&Q, 2, DNS_FLAG_RD, "a.example", DNS_TYPE_A, true, 1232,
	    0x00010000, NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_BADVERS, "BADVERS query");
	rc = dns_build_error(&q, DNS_RCODE_BADVERS, out, sizeof(out), &n);
	ok(rc == 0 && DNS_RCODE(rd16(out + 2)) == 0 && rd16(out + 10) == 1 &&
	    out[n - 11 + 5] == 1 && out[n - 11 + 6] == 0,
	    "BADVERS: header rcode 0, OPT ext rcode 1, version 0");
	ok(dns_parse_answer(out, n, &r) == 0 && r.ext_rcode == 1,
	    "BADVERS answer parses");
	q.has_opt = false;
	rc = dns_build_error(&q, DNS_RCODE_BADVERS, out, sizeof(out), &n);
	ok(rc == 0 && rd16(out + 10) == 1, "BADVERS always has OPT");

	/* No question (QDCOUNT 0), opcode copied (NOTIMP). */
	make_query(&Q, 3, 5 << 11 | DNS_FLAG_RD, "a.example", DNS_TYPE_A,
	    false, 0, 0, NULL, 0);
	Q.b[5] = 0;
	is(dns_parse_query(Q.b, 12, &q), -E_NOTIMP, "UPDATE opcode: NOTIMP");
	rc = dns_build_error(&q, DNS_RCODE_NOTIMP, out, sizeof(out), &n);
	ok(rc == 0 && n == 12 && rd16(out + 4) == 0 &&
	    rd16(out + 2) == (DNS_FLAG_QR | 5 << 11 | DNS_FLAG_RD |
	    DNS_FLAG_RA | DNS_RCODE_NOTIMP),
	    "NOTIMP without question: QDCOUNT 0, opcode and RD copied");
}

static void
test_name_helpers(void)
{
	static const struct {
		const char *text;
		const char *back;
		size_t len;
	} rt[] = {
		{ ".", ".", 1 },
		{ "com", "com.", 5 },
		{ "example.com", "example.com.", 13 },
		{ "Example.COM.", "Example.COM.", 13 },
		{ "_dns._udp.x-y.example", "_dns._udp.x-y.example.", 23 },
		{ "a*b.c", "a\\042b.c.", 7 },
		{ "1.2.0.192.in-addr.arpa", "1.2.0.192.in-addr.arpa.", 24 },
	};
	static const char *const bad[] = { "", "a..b", ".com", "..", "a.b..",
	    "a b", "a\\.b", "a\tb", NULL };
	uint8_t w[DNS_NAME_MAX], z[DNS_NAME_MAX], dot[] = "\3a\0b\0";
	char text[1100], small[8];
	size_t n = 0, zn = 0, i;
	struct dns_info x, y;

	for (i = 0; i < sizeof(rt) / sizeof(rt[0]); i++) {
		ok(dns_name_from_text(rt[i].text, w, &n) == 0 &&
		    n == rt[i].len && dns_name_to_text(w, n, text,
		    sizeof(text)) == 0 && strcmp(text, rt[i].back) == 0,
		    "text round trip %s -> %s", rt[i].text, rt[i].back);
	}
	for (i = 0; bad[i] != NULL; i++)
		ok(dns_name_from_text(bad[i], w, &n) == -E_MALFORMED,
		    "from_text rejects \"%s\"", bad[i]);
	memset(text, 'a', 64);
	text[64] = '\0';
	ok(dns_name_from_text(text, w, &n) != 0, "from_text: label of 64");
	text[63] = '\0';
	ok(dns_name_from_text(text, w, &n) == 0 && n == 65,
	    "from_text: label of 63");
	/* 127 one-letter labels: 255 bytes; 128: 257. */
	for (i = 0; i < 128; i++) {
		text[2 * i] = 'a';
		text[2 * i + 1] = '.';
	}
	text[2 * 127] = '\0';
	ok(dns_name_from_text(text, w, &n) == 0 && n == 255,
	    "from_text: 255 bytes accepted");
	text[2 * 127] = 'a';
	text[2 * 127 + 1] = '\0';
	ok(dns_name_from_text(text, w, &n) != 0, "from_text: 257 rejected");
	text[2 * 127] = '\0';
	text[2 * 126 + 1] = '\0';
	text[2 * 126] = 'a';
	ok(dns_name_from_text(text, w, &n) == 0 && n == 255,
	    "from_text: 255 bytes, no trailing dot");
	/* 3 x 63 + 61 is 255 bytes; 3 x 63 + 62 is 256. */
	for (i = 0; i < 3; i++) {
		memset(text + 64 * i, 'c', 63);
		text[64 * i + 63] = '.';
	}
	memset(text + 192, 'd', 62);
	text[254] = '\0';
	ok(dns_name_from_text(text, w, &n) != 0,
	    "from_text: 256 bytes (last label 62) rejected");
	text[253] = '\0';
	ok(dns_name_from_text(text, w, &n) == 0 && n == 255,
	    "from_text: 255 bytes (last label 61) accepted");
	/* 4 labels of 63: 4 * 64 + 1 = 257 bytes. */
	for (i = 0; i < 4; i++) {
		memset(text + 64 * i, 'b', 63);
		text[64 * i + 63] = '.';
	}
	text[255] = '\0';
	ok(dns_name_from_text(text, w, &n) != 0,
	    "from_text: 4 labels of 63 rejected");

	/* to_text escapes and limits. */
	ok(dns_name_to_text(dot, 5, text, sizeof(text)) == 0 &&
	    strcmp(text, "a\\000b.") == 0, "to_text escapes NUL inside label");
	dot[0] = 3;
	dot[2] = '.';
	ok(dns_name_to_text(dot, 5, text, sizeof(text)) == 0 &&
	    strcmp(text, "a\\046b.") == 0, "to_text escapes a dot as \\046");
	ok(dns_name_to_text(dot, 5, small, 4) == -E_TOOBIG,
	    "to_text: cap too small");
	ok(dns_name_to_text(dot, 5, small, 8) == 0,
	    "to_text: cap exact (7 chars + NUL)");
	ok(dns_name_to_text(dot, 5, small, 7) == -E_TOOBIG,
	    "to_text: no room for the NUL");
	ok(dns_name_to_text((const uint8_t *)"", 1, small, 1) == -E_TOOBIG &&
	    dns_name_to_text((const uint8_t *)"", 1, small, 2) == 0 &&
	    strcmp(small, ".") == 0, "to_text root");
	memset(w, 0xff, 64);
	w[0] = 63;
	w[64] = 0;
	ok(dns_name_to_text(w, 65, text, sizeof(text)) == 0 &&
	    strlen(text) == 63 * 4 + 1, "to_text: all-escaped label fits");

	/* Labels. */
	dns_name_from_text("www.example.com", w, &n);
	is(dns_name_labels(w, n), 3, "labels of www.example.com");
	is(dns_name_labels((const uint8_t *)"", 1), 0, "labels of root");

	/* Zones. */
	dns_name_from_text("example.com", z, &zn);
	ok(dns_name_in_zone(w, n, z, zn), "www.example.com in example.com");
	ok(dns_name_in_zone(z, zn, z, zn), "example.com in example.com");
	dns_name_from_text("EXAMPLE.Com", w, &n);
	ok(dns_name_in_zone(w, n, z, zn), "in zone ignores case");
	dns_name_from_text("xexample.com", w, &n);
	ok(!dns_name_in_zone(w, n, z, zn), "xexample.com not in example.com");
	dns_name_from_text("a.xexample.com", w, &n);
	ok(!dns_name_in_zone(w, n, z, zn), "a.xexample.com not in zone");
	dns_name_from_text("com", w, &n);
	ok(!dns_name_in_zone(w, n, z, zn), "com not in example.com");
	dns_name_from_text("example.org", w, &n);
	ok(!dns_name_in_zone(w, n, z, zn), "example.org not in example.com");
	dns_name_from_text("example.com.evil", w, &n);
	ok(!dns_name_in_zone(w, n, z, zn), "example.com.evil not in zone");
	ok(dns_name_in_zone(w, n, (const uint8_t *)"", 1),
	    "root zone contains everything");
	ok(dns_name_in_zone((const uint8_t *)"", 1, (const uint8_t *)"", 1),
	    "root in root");
	ok(!dns_name_in_zone((const uint8_t *)"", 1, z, zn),
	    "root not in example.com");
	dns_name_from_text("cluster.local", z, &zn);
	dns_name_from_text("svc.ns.svc.CLUSTER.local", w, &n);
	ok(dns_name_in_zone(w, n, z, zn), "service in cluster.local");

	/* Question equality. */
	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	dns_name_from_text("Foo.Example", x.qname, &x.qname_len);
	dns_name_from_text("fOO.eXAMPLE", y.qname, &y.qname_len);
	x.qtype = y.qtype = DNS_TYPE_A;
	x.qclass = y.qclass = DNS_CLASS_IN;
	ok(dns_question_equal(&x, &y), "question_equal: case ignored");
	y.qtype = DNS_TYPE_AAAA;
	ok(!dns_question_equal(&x, &y), "question_equal: type differs");
	y.qtype = DNS_TYPE_A;
	y.qclass = 3;
	ok(!dns_question_equal(&x, &y), "question_equal: class differs");
	y.qclass = DNS_CLASS_IN;
	dns_name_from_text("foo.examplf", y.qname, &y.qname_len);
	ok(!dns_question_equal(&x, &y), "question_equal: name differs");
	dns_name_from_text("foo.example.", y.qname, &y.qname_len);
	ok(dns_question_equal(&x, &y), "question_equal: trailing dot same");

	/* IDs. */
	{
		uint8_t m[2] = { 0, 0 };

		dns_set_id(m, 0xabcd);
		ok(m[0] == 0xab && m[1] == 0xcd && dns_get_id(m) == 0xabcd,
		    "set_id/get_id big-endian");
	}
}

/*
 * Hostile or odd upstream answers (issue 9): error answers without a
 * question, a pointer into OPT bytes a rewrite would change while the
 * result still parses, and the client's OPT kept in a NOTIMP answer.
 */
static void
test_hostile_answers(void)
{
	static const unsigned codes[] = { DNS_RCODE_FORMERR,
	    DNS_RCODE_NOTIMP, DNS_RCODE_REFUSED };
	struct dns_info q, a, r;
	size_t n = 0, i, data_off;
	bool tc = true;
	int rc;

	make_query(&Q, 0x4242, DNS_FLAG_RD, "Www.Example.com", DNS_TYPE_A,
	    true, 1232, 0x00008000, NULL, 0);
	ok(dns_parse_query(Q.b, Q.n, &q) == 0, "EDNS query parses");
	for (i = 0; i < 3; i++) {
		mb_hdr(&A, 0x7777, DNS_FLAG_QR | DNS_FLAG_RD | codes[i], 0, 0, 0, 0);
		is(dns_parse_answer(A.b, A.n, &a), 0,
		    "rcode %u without a question parses", codes[i]);
		ok(dns_answer_questionless(&a) && dns_question_equal(&q, &a),
		    "and matches any question (the ID matched it)");
		rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
		    sizeof(out), &n, &tc);
		ok(rc == 0 && !tc && rd16(out) == 0x4242 &&
		    DNS_RCODE(rd16(out + 2)) == codes[i] && rd16(out + 4) == 1 &&
		    dns_parse_answer(out, n, &r) == 0 && r.has_opt &&
		    dns_question_equal(&q, &r),
		    "answered with rcode %u, the client's question and OPT",
		    codes[i]);
	}
	mb_hdr(&A, 1, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 0, 0, 0, 0);
	is(dns_parse_answer(A.b, A.n, &a), -E_MALFORMED,
	    "NXDOMAIN without a question: malformed");
	mb_hdr(&A, 1, DNS_FLAG_QR, 0, 0, 0, 0);
	is(dns_parse_answer(A.b, A.n, &a), -E_MALFORMED,
	    "NOERROR without a question: malformed");
	mb_hdr(&A, 1, DNS_FLAG_QR | DNS_RCODE_REFUSED, 0, 0, 0, 1);
	mb_opt(&A, 1232, 0x01000000, 0);
	is(dns_parse_answer(A.b, A.n, &a), -E_MALFORMED,
	    "questionless error with an extended RCODE: malformed");
	mb_hdr(&A, 1, DNS_RCODE_REFUSED, 0, 0, 0, 0);
	is(dns_parse_answer(A.b, A.n, &a), -E_MALFORMED,
	    "questionless REFUSED without QR: malformed");

	/*
	 * OPT not last; its option data holds "\3foo\0", and the record
	 * after the OPT has an owner pointing there. Rewritten, those bytes
	 * become zero padding, the owner would read as the root and the
	 * result would still parse: the rewrite must be refused.
	 */
	mb_hdr(&A, 1, DNS_FLAG_QR, 1, 0, 0, 2);
	mb_question(&A, "www.example.com", DNS_TYPE_A);
	mb_opt(&A, 1232, 0, 9);
	mb_u16(&A, 65001);
	mb_u16(&A, 5);
	data_off = A.n;
	mb_bytes(&A, "\3foo\0", 5);
	mb_u16(&A, 0xc000 | data_off);
	mb_u16(&A, DNS_TYPE_A);
	mb_u16(&A, DNS_CLASS_IN);
	mb_u32(&A, 60);
	mb_u16(&A, 4);
	mb_u32(&A, 0xc0000201);
	ok(dns_parse_answer(A.b, A.n, &a) == 0 && !a.opt_last,
	    "answer with a record named by a pointer into the OPT parses");
	rc = dns_build_answer(A.b, A.n, &a, Q.b, Q.n, &q, 1232, out,
	    sizeof(out), &n, &tc);
	ok(rc == 0 && n == q.question_end + 11 && rd16(out + 10) == 1 &&
	    dns_parse_answer(out, n, &r) == 0 && r.opt_last,
	    "pointer into the rewritten OPT bytes: OPT and what follows cut");

	/* NOTIMP to an unknown opcode keeps the client's OPT. */
	make_query(&Q, 9, (5u << 11) | DNS_FLAG_RD, "example.com",
	    DNS_TYPE_SOA, true, 1232, 0x00008000, NULL, 0);
	is(dns_parse_query(Q.b, Q.n, &q), -E_NOTIMP, "opcode 5: NOTIMP");
	ok(q.has_opt && q.do_bit, "its OPT was read");
	rc = dns_build_error(&q, DNS_RCODE_NOTIMP, out, sizeof(out), &n);
	ok(rc == 0 && dns_parse_answer(out, n, &r) == 0 && r.has_opt &&
	    r.do_bit && rd16(out + 10) == 1,
	    "NOTIMP answer carries an OPT with DO");
	Q.b[Q.n - 2] = 0xff;	/* the OPT rdlength runs past the end */
	is(dns_parse_query(Q.b, Q.n, &q), -E_NOTIMP, "broken records: NOTIMP");
	ok(!q.has_opt && q.qname_len > 0,
	    "question kept, the broken OPT ignored");
}

/*
 * dns_parse_stored against a full parse of the same stored answer: the
 * same header, counts and question without a walk; refused when the header
 * or the length says it is not one.
 */
static void
test_parse_stored(void)
{
	struct dns_info full, st;

	mb_hdr(&A, 0xbeef, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA |
	    DNS_FLAG_AD, 1, 2, 0, 0);
	mb_question(&A, "WwW.Example.COM", DNS_TYPE_A);
	mb_a_ptr(&A, 1);
	mb_a_ptr(&A, 2);
	is(dns_parse_answer(A.b, A.n, &full), 0, "stored: the full parse");
	is(dns_parse_stored(A.b, A.n, full.qname_len, &st), 0,
	    "stored: read back");
	ok(st.id == full.id && st.flags == full.flags &&
	    st.qdcount == 1 && st.ancount == 2 && st.nscount == 0 &&
	    st.arcount == 0, "stored: header and counts as parsed");
	ok(st.qname_len == full.qname_len &&
	    memcmp(st.qname, full.qname, st.qname_len) == 0 &&
	    st.qtype == DNS_TYPE_A && st.qclass == DNS_CLASS_IN &&
	    st.question_end == full.question_end, "stored: the question");
	ok(!st.has_opt && st.ext_rcode == 0 && !st.do_bit &&
	    st.keepalive == -1, "stored: no OPT");
	ok(dns_question_equal(&st, &full), "stored: questions equal");
	ok(dns_parse_stored(A.b, A.n, 0, &st) != 0, "stored: no name");
	ok(dns_parse_stored(A.b, full.question_end - 1, full.qname_len,
	    &st) != 0, "stored: too short for the question");
	ok(dns_parse_stored(A.b, sizeof(A.b), DNS_NAME_MAX + 1, &st) != 0,
	    "stored: name longer than a name, in room enough for it");
	A.b[2] &= (uint8_t)~(DNS_FLAG_QR >> 8);
	ok(dns_parse_stored(A.b, A.n, full.qname_len, &st) != 0,
	    "stored: not an answer");
	A.b[2] |= (uint8_t)(DNS_FLAG_QR >> 8);
	A.b[5] = 2;
	ok(dns_parse_stored(A.b, A.n, full.qname_len, &st) != 0,
	    "stored: two questions");
}

int
main(void)
{
	test_cursor();
	test_names();
	test_parse_query();
	test_parse_answer();
	test_parse_stored();
	test_build_query();
	test_build_answer();
	test_build_error();
	test_name_helpers();
	test_hostile_answers();
	return tap_done();
}
