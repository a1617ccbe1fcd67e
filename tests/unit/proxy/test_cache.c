/*
 * Unit tests for the packet cache on a fake clock: keys (case, bits,
 * route), TTL clamps and ageing, negative answers per RFC 2308, failures,
 * the never-cached cases, serve-stale, prefetch, the byte and entry bounds
 * and S3-FIFO's resistance to a scan.
 */
#include "proxy/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dns.h"
#include "proxy/errors.h"
#include "tests/unit/tap.h"

#define SEED 0x1234

/* A message under construction. */
struct msg {
	uint8_t	b[4096];
	size_t	n;
};

static void
p16(struct msg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)(v >> 8);
	m->b[m->n++] = (uint8_t)v;
}

static void
p32(struct msg *m, uint32_t v)
{
	p16(m, v >> 16);
	p16(m, v & 0xffff);
}

static void
pname(struct msg *m, const char *text)
{
	size_t len;

	if (dns_name_from_text(text, m->b + m->n, &len) != 0)
		abort();
	m->n += len;
}

/* Header + question. flags: QR|RD|RA plus what is given. */
static void
head(struct msg *m, const char *qname, uint16_t qtype, unsigned flags,
    unsigned an, unsigned ns, unsigned ar)
{
	m->n = 0;
	p16(m, 0xbeef);
	p16(m, 0x8180 | flags);
	p16(m, 1);
	p16(m, an);
	p16(m, ns);
	p16(m, ar);
	pname(m, qname);
	p16(m, qtype);
	p16(m, DNS_CLASS_IN);
}

static void
rr_a(struct msg *m, uint32_t ttl, uint8_t last)
{
	p16(m, 0xc00c);		/* the question's name */
	p16(m, DNS_TYPE_A);
	p16(m, DNS_CLASS_IN);
	p32(m, ttl);
	p16(m, 4);
	m->b[m->n++] = 192;
	m->b[m->n++] = 0;
	m->b[m->n++] = 2;
	m->b[m->n++] = last;
}

static void
rr_soa(struct msg *m, uint32_t ttl, uint32_t minimum)
{
	size_t rdl;

	pname(m, "example.");
	p16(m, DNS_TYPE_SOA);
	p16(m, DNS_CLASS_IN);
	p32(m, ttl);
	rdl = m->n;
	p16(m, 0);
	pname(m, "ns.example.");
	pname(m, "host.example.");
	p32(m, 1);
	p32(m, 7200);
	p32(m, 900);
	p32(m, 1209600);
	p32(m, minimum);
	m->b[rdl] = (uint8_t)((m->n - rdl - 2) >> 8);
	m->b[rdl + 1] = (uint8_t)(m->n - rdl - 2);
}

static void
opt(struct msg *m)
{
	m->b[m->n++] = 0;
	p16(m, DNS_TYPE_OPT);
	p16(m, 1232);
	p32(m, 0);
	p16(m, 0);
}

static struct cache_params
params(void)
{
	struct cache_params p = {
		.max_entries = 100, .max_bytes = 1 << 20, .min_ttl = 0,
		.max_ttl = 86400, .local_max_ttl = 5, .fail_ttl = 5,
		.stale_max = 3600,
	};

	return p;
}

/* The key of a query for qname/qtype with flags and optional route. */
static void
key(struct cache_key *k, const char *qname, uint16_t qtype, uint16_t flags,
    bool do_bit, const char *route)
{
	struct dns_info q;

	memset(&q, 0, sizeof(q));
	if (dns_name_from_text(qname, q.qname, &q.qname_len) != 0)
		abort();
	q.qtype = qtype;
	q.qclass = DNS_CLASS_IN;
	q.flags = flags;
	q.do_bit = do_bit;
	cache_key_make(k, SEED, &q, route, route ? strlen(route) : 0);
}

static int
insert(struct cache *c, const struct cache_key *k, struct msg *m,
    uint64_t now)
{
	struct dns_info a;

	if (dns_parse_answer(m->b, m->n, &a) != 0)
		abort();
	return cache_insert(c, k, m->b, m->n, &a, now);
}

static uint32_t
rendered_ttl(const struct cache_hit *h, bool stale, size_t rr)
{
	uint8_t out[4096];
	size_t n = cache_render(h, stale, out, sizeof(out));

	if (n == 0 || rr >= h->nttl)
		return 0xffffffff;
	return (uint32_t)out[h->ttl_off[rr]] << 24 |
	    (uint32_t)out[h->ttl_off[rr] + 1] << 16 |
	    (uint32_t)out[h->ttl_off[rr] + 2] << 8 | out[h->ttl_off[rr] + 3];
}

static void
test_keys(void)
{
	struct cache_key a, b;

	key(&a, "WwW.Example.COM", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	key(&b, "www.example.com", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	ok(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0 &&
	    a.hash == b.hash, "key: the name is compared without case");
	key(&b, "www.example.com", DNS_TYPE_AAAA, DNS_FLAG_RD, false, NULL);
	ok(a.hash != b.hash, "key: qtype counts");
	key(&b, "www.example.com", DNS_TYPE_A, DNS_FLAG_RD | DNS_FLAG_CD,
	    false, NULL);
	ok(a.hash != b.hash, "key: CD counts");
	key(&b, "www.example.com", DNS_TYPE_A, DNS_FLAG_RD, true, NULL);
	ok(a.hash != b.hash, "key: DO counts");
	key(&b, "www.example.com", DNS_TYPE_A, 0, false, NULL);
	ok(a.hash != b.hash, "key: RD counts");
	key(&b, "www.example.com", DNS_TYPE_A, DNS_FLAG_RD, false, "10.0.0.1");
	ok(a.hash != b.hash && b.local && !a.local,
	    "key: a local route differs from DoT");
	key(&a, "www.example.com", DNS_TYPE_A, DNS_FLAG_RD, false, "10.0.0.2");
	ok(a.hash != b.hash, "key: two local resolvers differ");
	key(&a, "www.example.com", DNS_TYPE_A, DNS_FLAG_AD | DNS_FLAG_RD, false,
	    NULL);
	key(&b, "www.example.com", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	ok(a.hash == b.hash, "key: AD does not count");
}

static void
test_positive(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct cache_hit h;
	struct msg m;

	key(&k, "www.example.com", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	is(cache_lookup(c, &k, 1000, &h), CACHE_MISS, "empty: miss");
	head(&m, "www.example.com", DNS_TYPE_A, 0, 2, 0, 1);
	rr_a(&m, 300, 1);
	rr_a(&m, 120, 2);
	opt(&m);
	is(insert(c, &k, &m, 1000), 0, "positive answer kept");
	is(cache_lookup(c, &k, 1000, &h), CACHE_FRESH, "then a hit");
	is(h.ttl, 120, "entry TTL is the smallest record TTL");
	is(h.nttl, 2, "OPT's TTL is not aged");
	is(rendered_ttl(&h, false, 0), 120,
	    "one TTL per RRset, its smallest (RFC 2181 §5.2)");
	is(cache_lookup(c, &k, 51000, &h), CACHE_FRESH, "hit at 50 s");
	is(h.age, 50, "age in seconds");
	is(rendered_ttl(&h, false, 0), 70, "the RRset's TTL aged at 50 s");
	is(rendered_ttl(&h, false, 1), 70, "TTL 120 served as 70 at 50 s");
	ok(!h.prefetch, "no prefetch at 50 of 120 s");
	is(cache_lookup(c, &k, 110000, &h), CACHE_FRESH, "hit at 109 s");
	ok(h.prefetch, "prefetch in the last tenth of the TTL");
	is(cache_lookup(c, &k, 121000, &h), CACHE_STALE, "expired: stale");
	is(rendered_ttl(&h, true, 0), CACHE_STALE_TTL, "stale answers say TTL 30");
	ok(!h.refresh_failed, "no failed refresh yet");
	cache_note_failure(c, &k, 121000);
	is(cache_lookup(c, &k, 122000, &h), CACHE_STALE, "a failure keeps the data");
	ok(h.refresh_failed, "and notes the failed refresh");
	is(cache_lookup(c, &k, 127000, &h), CACHE_STALE, "still stale after fail_ttl");
	ok(!h.refresh_failed, "the note expires after fail_ttl");
	is(cache_lookup(c, &k, 1000 + 120000 + 3600000, &h), CACHE_MISS,
	    "past stale_max: gone");
	is(cache_stats(c)->entries, 0, "and removed");
	is(cache_stats(c)->expired, 1, "counted as expired");
	cache_free(c);
}

static void
test_clamps(void)
{
	struct cache_params p = params();
	struct cache *c;
	struct cache_key k;
	struct cache_hit h;
	struct msg m;

	p.min_ttl = 60;
	p.max_ttl = 600;
	c = cache_new(&p);
	key(&k, "a.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "a.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 10, 1);
	is(insert(c, &k, &m, 0), 0, "short TTL kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	is(h.ttl, 60, "raised to --cache-min-ttl");
	is(rendered_ttl(&h, false, 0), 60, "served raised");
	head(&m, "a.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 100000, 1);
	is(insert(c, &k, &m, 0), 0, "long TTL kept (replaces)");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	is(h.ttl, 600, "capped at --cache-max-ttl");
	is(rendered_ttl(&h, false, 0), 600, "served capped");
	is(cache_stats(c)->entries, 1, "a replacement is one entry");
	key(&k, "a.example", DNS_TYPE_A, DNS_FLAG_RD, false, "192.0.2.1");
	is(insert(c, &k, &m, 0), 0, "local answer kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	is(h.ttl, 5, "local answers use --local-cache-max-ttl");
	cache_free(c);

	p = params();
	c = cache_new(&p);
	key(&k, "zero.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "zero.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 0, 1);
	is(insert(c, &k, &m, 0), -E_DROP, "TTL 0 is not cached");
	head(&m, "zero.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 0x80000000U, 1);
	is(insert(c, &k, &m, 0), -E_DROP, "TTL with the top bit is 0 (RFC 2181)");
	cache_free(c);
}

static void
test_negative(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct cache_hit h;
	struct msg m;

	key(&k, "nx.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "nx.example", DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0, 1, 0);
	rr_soa(&m, 900, 60);
	is(insert(c, &k, &m, 0), 0, "NXDOMAIN with SOA kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	is(h.ttl, 60, "negative TTL = min(SOA TTL, MINIMUM)");
	is(rendered_ttl(&h, false, 0), 60, "SOA served with the negative TTL");
	is(cache_lookup(c, &k, 30000, &h), CACHE_FRESH, "hit at 30 s");
	is(rendered_ttl(&h, false, 0), 30, "SOA TTL aged");
	head(&m, "nx.example", DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0, 1, 0);
	rr_soa(&m, 20, 600);
	is(insert(c, &k, &m, 0), 0, "NXDOMAIN kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	is(h.ttl, 20, "SOA TTL when below MINIMUM");
	head(&m, "nx.example", DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0, 1, 0);
	rr_soa(&m, 86400, 86400);
	is(insert(c, &k, &m, 0), 0, "NXDOMAIN kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	is(h.ttl, CACHE_NEG_MAX_TTL, "negative TTL capped");

	key(&k, "nodata.example", DNS_TYPE_AAAA, DNS_FLAG_RD, false, NULL);
	head(&m, "nodata.example", DNS_TYPE_AAAA, 0, 0, 1, 0);
	rr_soa(&m, 300, 300);
	is(insert(c, &k, &m, 0), 0, "NODATA with SOA kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "NODATA hit");

	key(&k, "nosoa.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "nosoa.example", DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0, 0, 0);
	is(insert(c, &k, &m, 0), -E_DROP, "NXDOMAIN without SOA not kept");
	head(&m, "nosoa.example", DNS_TYPE_A, 0, 0, 0, 0);
	is(insert(c, &k, &m, 0), -E_DROP, "NODATA without SOA not kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_MISS, "so a miss");
	cache_free(c);
}

static void
test_never(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct cache_hit h;
	struct msg m;

	key(&k, "tc.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "tc.example", DNS_TYPE_A, DNS_FLAG_TC, 1, 0, 0);
	rr_a(&m, 300, 1);
	is(insert(c, &k, &m, 0), -E_DROP, "TC answer not kept");
	head(&m, "tc.example", DNS_TYPE_A, DNS_RCODE_REFUSED, 0, 0, 0);
	is(insert(c, &k, &m, 0), -E_DROP, "REFUSED not kept");
	head(&m, "tc.example", DNS_TYPE_A, DNS_RCODE_FORMERR, 0, 0, 0);
	is(insert(c, &k, &m, 0), -E_DROP, "FORMERR not kept");
	head(&m, "tc.example", DNS_TYPE_A, 2u << 11, 1, 0, 0);
	rr_a(&m, 300, 1);
	is(insert(c, &k, &m, 0), -E_DROP, "other opcode not kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_MISS, "nothing there");
	is(cache_stats(c)->not_cacheable, 4, "each counted");
	cache_free(c);
}

static void
test_failure(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct cache_hit h;
	struct msg m;

	key(&k, "dead.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "dead.example", DNS_TYPE_A, DNS_RCODE_SERVFAIL, 0, 0, 0);
	is(insert(c, &k, &m, 0), 0, "SERVFAIL kept as a failure");
	is(cache_lookup(c, &k, 4999, &h), CACHE_FRESH, "within fail_ttl: hit");
	ok(h.failure, "a failure hit");
	is(cache_lookup(c, &k, 5000, &h), CACHE_MISS, "after fail_ttl: miss");
	cache_note_failure(c, &k, 6000);
	is(cache_lookup(c, &k, 6000, &h), CACHE_FRESH, "a timeout is kept too");
	ok(h.failure, "as a failure");
	head(&m, "dead.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 300, 1);
	is(insert(c, &k, &m, 7000), 0, "an answer replaces a failure");
	is(cache_lookup(c, &k, 7000, &h), CACHE_FRESH, "hit");
	ok(!h.failure, "with data");
	head(&m, "dead.example", DNS_TYPE_A, DNS_RCODE_SERVFAIL, 0, 0, 0);
	is(insert(c, &k, &m, 8000), 0, "a SERVFAIL later...");
	is(cache_lookup(c, &k, 8000, &h), CACHE_FRESH, "...keeps the data");
	ok(!h.failure && h.len > 0, "still the answer");
	cache_free(c);

	p.fail_ttl = 0;
	c = cache_new(&p);
	cache_note_failure(c, &k, 0);
	is(cache_lookup(c, &k, 0, &h), CACHE_MISS, "fail_ttl 0 keeps no failures");
	cache_free(c);
}

static void
test_bounds(void)
{
	struct cache_params p = params();
	struct cache *c;
	struct cache_key k;
	struct cache_hit h;
	struct msg m;
	char name[64];
	unsigned i, hot_hits = 0;

	p.max_entries = 50;
	c = cache_new(&p);
	/* A hot set of 20 names, asked for again and again. */
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "hot%u.example", i);
		key(&k, name, DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
		head(&m, name, DNS_TYPE_A, 0, 1, 0, 0);
		rr_a(&m, 3600, 1);
		(void)insert(c, &k, &m, 0);
		(void)cache_lookup(c, &k, 0, &h);
		(void)cache_lookup(c, &k, 0, &h);
	}
	/* A scan of 1000 one-off names. */
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "scan%u.example", i);
		key(&k, name, DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
		head(&m, name, DNS_TYPE_A, 0, 1, 0, 0);
		rr_a(&m, 3600, 1);
		(void)insert(c, &k, &m, 0);
		if (i % 50 == 0) {
			unsigned j;

			for (j = 0; j < 20; j++) {
				snprintf(name, sizeof(name), "hot%u.example", j);
				key(&k, name, DNS_TYPE_A, DNS_FLAG_RD, false,
				    NULL);
				(void)cache_lookup(c, &k, 0, &h);
			}
		}
	}
	ok(cache_stats(c)->entries <= 50, "never more than max_entries (%llu)",
	    (unsigned long long)cache_stats(c)->entries);
	ok(cache_stats(c)->evictions >= 950, "evictions counted (%llu)",
	    (unsigned long long)cache_stats(c)->evictions);
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "hot%u.example", i);
		key(&k, name, DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
		if (cache_lookup(c, &k, 0, &h) == CACHE_FRESH)
			hot_hits++;
	}
	is(hot_hits, 20, "a scan of one-off names does not flush the hot set");
	cache_free(c);

	/* Bytes: the tables are charged up front, each entry its answer,
	 * key and offsets as malloc takes them. */
	p = params();
	p.max_bytes = 2000;
	ok(cache_new(&p) == NULL, "max_bytes below the tables' size: refused");
	p.max_bytes = cache_fixed_bytes(&p) + 2000;
	c = cache_new(&p);
	is(cache_stats(c)->bytes, cache_fixed_bytes(&p),
	    "an empty cache is charged its tables");
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "b%u.example", i);
		key(&k, name, DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
		head(&m, name, DNS_TYPE_A, 0, 1, 0, 0);
		rr_a(&m, 3600, 1);
		(void)insert(c, &k, &m, 0);
	}
	ok(cache_stats(c)->bytes <= p.max_bytes && cache_stats(c)->entries > 3,
	    "max_bytes holds (%llu bytes, %llu entries)",
	    (unsigned long long)cache_stats(c)->bytes,
	    (unsigned long long)cache_stats(c)->entries);
	cache_clear(c);
	is(cache_stats(c)->entries, 0, "clear empties it");
	is(cache_stats(c)->bytes, cache_fixed_bytes(&p),
	    "and frees every byte the entries held");
	cache_free(c);

	p = params();
	p.max_entries = 0;
	ok(cache_new(&p) == NULL, "size 0: no cache");
}

/*
 * Record data that reads as a pointer into the header (an A record for
 * 192.0.x.x starts with 0xc0 0x00..0x0b) is no name: the walk that looks
 * for names through TTL fields must not read the wire ID as labels, or
 * whether an answer is kept depends on the upstream's random ID.
 */
static void
test_header_pointer(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct msg m;
	unsigned id, refused = 0;

	key(&k, "hdr.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "hdr.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 300, 1);
	for (id = 0; id < 65536; id++) {
		m.b[0] = (uint8_t)(id >> 8);
		m.b[1] = (uint8_t)id;
		if (insert(c, &k, &m, 0) != 0)
			refused++;
	}
	is(refused, 0, "an A record for 192.0.2.1 is kept whatever the wire ID");
	cache_free(c);
}

int
main(void)
{
	test_keys();
	test_positive();
	test_clamps();
	test_negative();
	test_never();
	test_failure();
	test_bounds();
	test_header_pointer();
	return tap_done();
}
