/*
 * libFuzzer target: an upstream answer offered to the cache, then looked
 * up fresh, aged, near expiry and stale. Whatever the cache keeps must come
 * back out as an answer that parses, with the same question and record
 * counts, TTLs never above what was stored and exactly 30 when stale, and
 * the byte and entry counts must stay within the bounds (the tables
 * included). A second insert of the same key replaces the first without
 * growing the cache. The upstream's OPT is not kept, AA never is, the
 * records of one RRset come back with one TTL, and dns_parse_stored reads
 * each stored answer back as the full parse does.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cache.h"
#include "proxy/dns.h"
#include "proxy/errors.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Renders a hit and checks the result against the stored answer. */
static void
check_hit(const struct cache_hit *h, const struct dns_info *a, bool stale)
{
	static uint8_t out[CACHE_ENTRY_MAX];
	struct dns_info r, s;
	size_t n, i;

	CHECK(h->msg != NULL && h->len > 0);
	n = cache_render(h, stale, out, sizeof(out));
	CHECK(n == h->len);
	CHECK(dns_parse_answer(out, n, &r) == 0);
	CHECK(dns_question_equal(a, &r));
	/* The hit path's read-back without a walk agrees with the parse:
	 * no OPT stored, the same header and question. */
	CHECK(!r.has_opt);
	CHECK(dns_parse_stored(out, n, a->qname_len, &s) == 0);
	CHECK(s.flags == r.flags && s.qdcount == r.qdcount &&
	    s.ancount == r.ancount && s.nscount == r.nscount &&
	    s.arcount == r.arcount && s.question_end == r.question_end &&
	    s.qtype == r.qtype && s.qclass == r.qclass &&
	    s.qname_len == r.qname_len &&
	    memcmp(s.qname, r.qname, s.qname_len) == 0);
	CHECK(r.ancount == a->ancount && r.nscount == a->nscount &&
	    r.arcount == a->arcount - (a->has_opt && a->opt_last ? 1 : 0));
	CHECK(!(r.flags & DNS_FLAG_AA));
	for (i = 0; i < h->nttl; i++) {
		uint32_t t = get32(out + h->ttl_off[i]);

		CHECK((size_t)h->ttl_off[i] + 4 <= n);
		if (stale)
			CHECK(t == CACHE_STALE_TTL);
		else
			CHECK(t <= get32(h->msg + h->ttl_off[i]));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cache_params p = {
		.max_entries = 4, .max_bytes = 80 * 1024, .min_ttl = 0,
		.max_ttl = 86400, .local_max_ttl = 5, .fail_ttl = 5,
		.stale_max = 3600,
	};
	struct cache *c;
	struct cache_key k;
	struct cache_hit h;
	struct dns_info a;
	enum cache_result r;
	uint64_t t0 = 1000000, ttl_ms;
	int rc;

	if (size > DNS_MSG_MAX || dns_parse_answer(data, size, &a) != 0)
		return 0;
	if (size > 0 && (data[size - 1] & 1))
		p.min_ttl = 60;	/* the clamps too, sometimes */
	CHECK((c = cache_new(&p)) != NULL);
	cache_key_make(&k, 7, &a, data[0] & 1 ? "\x04\xc0\x00\x02\x01" : NULL,
	    data[0] & 1 ? 5 : 0);
	rc = cache_insert(c, &k, data, size, &a, t0);
	CHECK(rc == 0 || rc == -E_DROP);
	CHECK(cache_stats(c)->bytes <= p.max_bytes);
	CHECK(cache_stats(c)->entries <= p.max_entries);
	r = cache_lookup(c, &k, t0, &h);
	if (rc == -E_DROP) {
		CHECK(r == CACHE_MISS);
		cache_free(c);
		return 0;
	}
	CHECK(r == CACHE_FRESH);
	if (h.failure) {
		CHECK(DNS_RCODE(a.flags) == DNS_RCODE_SERVFAIL);
		cache_free(c);
		return 0;
	}
	CHECK(h.ttl >= 1 && h.ttl <= (k.local ? p.local_max_ttl : p.max_ttl));
	check_hit(&h, &a, false);
	ttl_ms = (uint64_t)h.ttl * 1000;
	CHECK(cache_lookup(c, &k, t0 + ttl_ms - 1, &h) == CACHE_FRESH);
	check_hit(&h, &a, false);
	CHECK(h.age == h.ttl - 1 || ttl_ms < 1000);
	CHECK(cache_lookup(c, &k, t0 + ttl_ms, &h) == CACHE_STALE);
	check_hit(&h, &a, true);
	/* The same answer again: one entry, the same bytes. */
	CHECK(cache_insert(c, &k, data, size, &a, t0) == 0);
	CHECK(cache_stats(c)->entries == 1);
	cache_clear(c);
	CHECK(cache_stats(c)->entries == 0 &&
	    cache_stats(c)->bytes == cache_fixed_bytes(&p));
	cache_free(c);
	return 0;
}
