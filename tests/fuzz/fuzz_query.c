/*
 * libFuzzer target: a client query through dns_parse_query, then every
 * message the proxy would write from it (upstream query, error answers,
 * the client answer built from a reflected copy), each checked to parse
 * back. Any broken invariant aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dns.h"
#include "proxy/errors.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void
check_error_answer(const struct dns_info *q, unsigned rcode)
{
	uint8_t out[DNS_HDR_LEN + DNS_NAME_MAX + 4 + 11];
	struct dns_info r;
	size_t n = 0;

	CHECK(dns_build_error(q, rcode, out, sizeof(out), &n) == 0);
	CHECK(n <= sizeof(out));
	if (q->qname_len == 0)
		return;
	CHECK(dns_parse_answer(out, n, &r) == 0);
	CHECK(dns_question_equal(q, &r));
	CHECK(DNS_RCODE(r.flags) == (rcode & 0xf));
	CHECK(r.has_opt == (q->has_opt || rcode > 15));
}

static void
check_upstream_query(const uint8_t *data, size_t size,
    const struct dns_info *q)
{
	uint8_t out[1024];
	struct dns_info u;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < 4; i++) {
		bool ka = (i & 1) != 0, pad = (i & 2) != 0;

		CHECK(dns_build_query(data, size, q, 0xabcd, ka, pad, out,
		    sizeof(out), &n) == 0);
		CHECK(!pad || n % DNS_PAD_BLOCK == 0);
		CHECK(dns_parse_query(out, n, &u) == 0);
		CHECK(dns_question_equal(q, &u));
		CHECK(memcmp(q->qname, u.qname, q->qname_len) == 0);
		CHECK(u.has_opt && u.opt_last && u.udp_size == DNS_EDNS_UDP);
		CHECK(u.do_bit == q->do_bit && u.keepalive == -1);
		CHECK((u.flags & ~(DNS_FLAG_RD | DNS_FLAG_AD | DNS_FLAG_CD))
		    == 0);
	}
}

/* The query itself, QR set, stands in for an upstream answer. */
static void
check_reflected_answer(const uint8_t *data, size_t size,
    const struct dns_info *q)
{
	static uint8_t ans[DNS_MSG_MAX], out[DNS_MSG_MAX + 64];
	struct dns_info a, r;
	size_t n = 0;
	bool tc = false;

	memcpy(ans, data, size);
	ans[2] |= 0x80;
	if (dns_parse_answer(ans, size, &a) != 0)
		return;
	CHECK(dns_build_answer(ans, size, &a, data, size, q,
	    dns_client_limit(q), out, sizeof(out), &n, &tc) == 0);
	CHECK(n <= dns_client_limit(q));
	CHECK(dns_parse_answer(out, n, &r) == 0);
	CHECK(r.has_opt == q->has_opt);
	CHECK(dns_get_id(out) == q->id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_info q;
	char text[4 * DNS_NAME_MAX + 2];
	uint8_t back[DNS_NAME_MAX];
	size_t blen = 0;
	int rc;

	if (size > DNS_MSG_MAX)
		return 0;
	rc = dns_parse_query(data, size, &q);
	switch (rc) {
	case 0:
		CHECK(q.qname_len >= 1 && q.qname_len <= DNS_NAME_MAX);
		CHECK(dns_client_limit(&q) >= DNS_UDP_MIN);
		CHECK(dns_name_in_zone(q.qname, q.qname_len, q.qname,
		    q.qname_len));
		CHECK(dns_name_in_zone(q.qname, q.qname_len,
		    (const uint8_t *)"", 1));
		CHECK(dns_name_labels(q.qname, q.qname_len) <=
		    DNS_NAME_MAX / 2);
		CHECK(dns_name_to_text(q.qname, q.qname_len, text,
		    sizeof(text)) == 0);
		/* Text without escapes must come back to the same bytes. */
		if (strchr(text, '\\') == NULL) {
			CHECK(dns_name_from_text(text, back, &blen) == 0);
			CHECK(blen == q.qname_len &&
			    memcmp(back, q.qname, blen) == 0);
		}
		check_upstream_query(data, size, &q);
		check_error_answer(&q, DNS_RCODE_SERVFAIL);
		check_reflected_answer(data, size, &q);
		break;
	case -E_FORMERR:
		check_error_answer(&q, DNS_RCODE_FORMERR);
		break;
	case -E_NOTIMP:
		check_error_answer(&q, DNS_RCODE_NOTIMP);
		break;
	case -E_BADVERS:
		CHECK(q.has_opt);
		check_error_answer(&q, DNS_RCODE_BADVERS);
		break;
	case -E_DROP:
		break;
	default:
		abort();
	}
	return 0;
}
