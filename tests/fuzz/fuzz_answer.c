/*
 * libFuzzer target: an upstream answer through dns_parse_answer, every
 * name position through dns_cur_name, and, for answers that parse, the
 * client answer built for an EDNS and a plain client at several size
 * limits, which must parse back with the client's id, question case and
 * OPT presence. Any broken invariant aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dns.h"
#include "proxy/errors.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* Reads a name at every offset; whatever parses must be a sane name. */
static void
check_names(const uint8_t *data, size_t size)
{
	uint8_t name[DNS_NAME_MAX];
	char text[4 * DNS_NAME_MAX + 2];
	struct dns_cur c;
	size_t off, nlen;

	for (off = DNS_HDR_LEN; off < size && off < 512; off++) {
		dns_cur_init(&c, data, size);
		c.off = off;
		nlen = 0;
		dns_cur_name(&c, name, &nlen);
		if (c.err != 0) {
			CHECK(c.err == -E_MALFORMED);
			continue;
		}
		CHECK(c.off > off && c.off <= size);
		CHECK(nlen >= 1 && nlen <= DNS_NAME_MAX);
		CHECK(dns_name_to_text(name, nlen, text, sizeof(text)) == 0);
		CHECK(dns_name_in_zone(name, nlen, (const uint8_t *)"", 1));
	}
}

/* Flips the case of the letters, as a client using 0x20 would. */
static void
flip_case(uint8_t *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((name[i] | 0x20) >= 'a' && (name[i] | 0x20) <= 'z')
			name[i] ^= 0x20;
}

static void
check_client_answer(const uint8_t *data, size_t size,
    const struct dns_info *a, bool edns)
{
	static const size_t limits[] = { DNS_UDP_MIN, DNS_EDNS_UDP, 4096,
	    DNS_MSG_MAX };
	static uint8_t out[DNS_MSG_MAX + 64];
	uint8_t query[1024];
	struct dns_info q, r;
	size_t qlen = 0, n = 0, i;
	bool tc = false;

	/* The client's query: our upstream form, minus OPT if plain. */
	CHECK(dns_build_query(NULL, 0, a, 0x5151, false, false, query,
	    sizeof(query), &qlen) == 0);
	flip_case(query + DNS_HDR_LEN, a->qname_len);
	if (!edns) {
		qlen -= 11;
		query[11] = 0;
	}
	CHECK(dns_parse_query(query, qlen, &q) == 0);
	CHECK(q.has_opt == edns);
	CHECK(dns_question_equal(a, &q));
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		CHECK(dns_build_answer(data, size, a, query, qlen, &q,
		    limits[i], out, sizeof(out), &n, &tc) == 0);
		CHECK(n <= limits[i]);
		CHECK(dns_parse_answer(out, n, &r) == 0);
		CHECK(dns_get_id(out) == 0x5151);
		CHECK(r.qname_len == q.qname_len &&
		    memcmp(r.qname, q.qname, q.qname_len) == 0);
		CHECK(r.has_opt == edns);
		CHECK(!edns || (r.udp_size == DNS_EDNS_UDP &&
		    r.ext_rcode == a->ext_rcode));
		CHECK(edns || a->ext_rcode == 0 ||
		    DNS_RCODE(r.flags) == DNS_RCODE_SERVFAIL);
		CHECK(tc == ((r.flags & DNS_FLAG_TC) != 0) ||
		    (a->flags & DNS_FLAG_TC));
		CHECK(!tc || (r.ancount == 0 && r.nscount == 0));
		CHECK(tc || (r.ancount == a->ancount &&
		    r.nscount == a->nscount));
	}
	/* A buffer too small for even the truncated form. */
	CHECK(dns_build_answer(data, size, a, query, qlen, &q, DNS_MSG_MAX,
	    out, DNS_HDR_LEN, &n, &tc) == -E_TOOBIG);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_info a;
	int rc;

	if (size > DNS_MSG_MAX)
		return 0;
	check_names(data, size);
	rc = dns_parse_answer(data, size, &a);
	CHECK(rc == 0 || rc == -E_MALFORMED);
	if (rc != 0)
		return 0;
	if (dns_answer_questionless(&a)) {
		/* FORMERR, NOTIMP or REFUSED without a question: no name. */
		CHECK(a.qdcount == 0 && a.qname_len == 0);
		CHECK(DNS_RCODE(a.flags) == DNS_RCODE_FORMERR ||
		    DNS_RCODE(a.flags) == DNS_RCODE_NOTIMP ||
		    DNS_RCODE(a.flags) == DNS_RCODE_REFUSED);
		return 0;
	}
	CHECK(a.qdcount == 1);
	CHECK(a.question_end <= size && a.qname_len >= 1);
	CHECK(!a.has_opt || (a.opt_off < a.opt_end && a.opt_end <= size &&
	    a.opt_last == (a.opt_end == size)));
	check_client_answer(data, size, &a, true);
	check_client_answer(data, size, &a, false);
	return 0;
}
