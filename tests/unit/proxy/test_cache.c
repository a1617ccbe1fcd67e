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

/*
 * Case folding of the name in the key, eight bytes at a time: every byte
 * value at every position of a label longer than eight, against folding
 * byte by byte (A-Z only; 0x80 and up, '@' and '[' unchanged).
 */
static void
test_key_fold(void)
{
	struct cache_key a, b;
	struct dns_info q;
	unsigned pos, v, bad = 0;

	for (pos = 0; pos < 19; pos++) {
		for (v = 0; v < 256; v++) {
			memset(&q, 0, sizeof(q));
			q.qname[0] = 19;
			memset(q.qname + 1, 'Q', 19);
			q.qname[1 + pos] = (uint8_t)v;
			q.qname[20] = 0;
			q.qname_len = 21;
			q.qtype = DNS_TYPE_A;
			q.qclass = DNS_CLASS_IN;
			cache_key_make(&a, SEED, &q, NULL, 0);
			memset(q.qname + 1, 'q', 19);
			q.qname[1 + pos] = (uint8_t)(v >= 'A' && v <= 'Z' ?
			    v + 32 : v);
			cache_key_make(&b, SEED, &q, NULL, 0);
			if (a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0 ||
			    a.hash != b.hash)
				bad++;
		}
	}
	is(bad, 0, "key: every byte at every place folds as A-Z only");
	memset(&q, 0, sizeof(q));
	q.qname[0] = 19;
	memset(q.qname + 1, 'q', 19);
	q.qname_len = 21;
	cache_key_make(&a, SEED, &q, NULL, 0);
	q.qname[19] = 'r';
	cache_key_make(&b, SEED, &q, NULL, 0);
	ok(a.hash != b.hash, "key: a byte past the first eight counts");
	q.qname[19] = 'q';
	cache_key_make(&b, SEED + 1, &q, NULL, 0);
	ok(a.hash != b.hash, "key: the seed counts");
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
	test_key_fold();
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
	/* The hit path reads a stored answer back as one without OPT: an
	 * OPT that another record follows (say a TSIG) is not stored. */
	head(&m, "tc.example", DNS_TYPE_A, 0, 1, 0, 2);
	rr_a(&m, 300, 1);
	opt(&m);
	rr_a(&m, 300, 2);
	is(insert(c, &k, &m, 0), -E_DROP, "OPT not last: not kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_MISS, "still nothing there");
	head(&m, "tc.example", DNS_TYPE_A, 0, 1, 0, 1);
	rr_a(&m, 300, 1);
	opt(&m);
	is(insert(c, &k, &m, 0), 0, "OPT last: kept, without it");
	ok(cache_lookup(c, &k, 0, &h) == CACHE_FRESH &&
	    h.len == m.n - 11 && h.msg[11] == 0, "stored without the OPT");
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

/* A record of type at the question's name with rdata rd (rdlen bytes). */
static void
rr_raw(struct msg *m, uint16_t type, uint32_t ttl, const uint8_t *rd,
    size_t rdlen)
{
	p16(m, 0xc00c);
	p16(m, type);
	p16(m, DNS_CLASS_IN);
	p32(m, ttl);
	p16(m, (unsigned)rdlen);
	memcpy(m->b + m->n, rd, rdlen);
	m->n += rdlen;
}

/* xorshift64*: the random answers are the same on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint8_t
rnd8(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint8_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 56);
}

static void
rnd_bytes(uint8_t *p, size_t n)
{
	while (n-- > 0)
		*p++ = rnd8();
}

/* An RRSIG over type covered, signed by "example.", with a random
 * signature of siglen bytes. */
static void
rr_rrsig(struct msg *m, uint16_t covered, uint32_t ttl, size_t siglen)
{
	uint8_t rd[18 + 9 + 512];
	size_t n = 0, nl;

	rd[n++] = (uint8_t)(covered >> 8);
	rd[n++] = (uint8_t)covered;
	rd[n++] = 8;		/* RSASHA256 */
	rd[n++] = 2;
	rnd_bytes(rd + n, 14);	/* original TTL, times, key tag */
	n += 14;
	if (dns_name_from_text("example.", rd + n, &nl) != 0)
		abort();
	n += nl;
	rnd_bytes(rd + n, siglen);
	n += siglen;
	rr_raw(m, 46, ttl, rd, n);
}

/*
 * The guard against names running through TTL fields follows real names
 * only: random record data (addresses, signatures, keys) that happens to
 * hold bytes >= 0xc0 is no name, and such answers are all kept. Names
 * that do point into a TTL (an owner name, a CNAME or MX target) are not.
 */
static void
test_ttl_guard(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct msg m;
	uint8_t rd[600];
	unsigned cls, i, j, refused[4] = { 0 };
	size_t toff;
	static const char *const what[4] = { "8 A records", "4 AAAA records",
	    "RSA-signed A records", "DNSKEY sets" };
	static const uint8_t set[3][4] = { { 192, 50, 237, 52 },
	    { 48, 230, 5, 10 }, { 114, 144, 166, 45 } };

	p.max_entries = 4;
	key(&k, "r.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	for (cls = 0; cls < 4; cls++) {
		for (i = 0; i < 20000; i++) {
			switch (cls) {
			case 0:
				head(&m, "r.example", DNS_TYPE_A, 0, 8, 0, 0);
				for (j = 0; j < 8; j++) {
					rnd_bytes(rd, 4);
					rr_raw(&m, DNS_TYPE_A, 300, rd, 4);
				}
				break;
			case 1:
				head(&m, "r.example", DNS_TYPE_AAAA, 0, 4, 0, 0);
				for (j = 0; j < 4; j++) {
					rnd_bytes(rd, 16);
					rr_raw(&m, DNS_TYPE_AAAA, 300, rd, 16);
				}
				break;
			case 2:
				head(&m, "r.example", DNS_TYPE_A, 0, 3, 0, 0);
				for (j = 0; j < 2; j++) {
					rnd_bytes(rd, 4);
					rr_raw(&m, DNS_TYPE_A, 300, rd, 4);
				}
				rr_rrsig(&m, DNS_TYPE_A, 300, 256);
				break;
			default:
				head(&m, "r.example", 48, 0, 4, 0, 0);
				for (j = 0; j < 3; j++) {
					rd[0] = 1;
					rd[1] = j == 0 ? 1 : 0;
					rd[2] = 3;
					rd[3] = 8;
					rnd_bytes(rd + 4, 260);
					rr_raw(&m, 48, 300, rd, 264);
				}
				rr_rrsig(&m, 48, 300, 256);
				break;
			}
			if (cls == 1)
				key(&k, "r.example", DNS_TYPE_AAAA, DNS_FLAG_RD,
				    false, NULL);
			else if (cls == 3)
				key(&k, "r.example", 48, DNS_FLAG_RD, false, NULL);
			if (insert(c, &k, &m, 0) != 0)
				refused[cls]++;
		}
		is(refused[cls], 0, "random %s: none refused (of 20000)",
		    what[cls]);
	}
	key(&k, "r.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "r.example", DNS_TYPE_A, 0, 3, 0, 0);
	for (j = 0; j < 3; j++)
		rr_raw(&m, DNS_TYPE_A, 300, set[j], 4);
	is(insert(c, &k, &m, 0), 0,
	    "{192.50.237.52, 48.230.5.10, 114.144.166.45} is kept");

	/* A TTL that reads as the name "a.", and names that point at it. */
	head(&m, "r.example", DNS_TYPE_A, 0, 2, 0, 0);
	toff = m.n + 6;
	rr_a(&m, 0x01610000, 1);
	p16(&m, 0xc000 | (unsigned)toff);	/* owner name: the TTL */
	p16(&m, DNS_TYPE_A);
	p16(&m, DNS_CLASS_IN);
	p32(&m, 300);
	p16(&m, 4);
	p32(&m, 0xcb007101);
	is(insert(c, &k, &m, 0), -E_DROP, "an owner name through a TTL: refused");
	head(&m, "r.example", DNS_TYPE_A, 0, 2, 0, 0);
	toff = m.n + 6;
	rr_a(&m, 0x01610000, 1);
	rd[0] = (uint8_t)(0xc0 | toff >> 8);
	rd[1] = (uint8_t)toff;
	rr_raw(&m, DNS_TYPE_CNAME, 300, rd, 2);
	is(insert(c, &k, &m, 0), -E_DROP, "a CNAME target through a TTL: refused");
	head(&m, "r.example", DNS_TYPE_A, 0, 2, 0, 0);
	toff = m.n + 6;
	rr_a(&m, 0x01610000, 1);
	rd[0] = 0;
	rd[1] = 10;
	rd[2] = 3;
	memcpy(rd + 3, "mx1", 3);
	rd[6] = (uint8_t)(0xc0 | toff >> 8);
	rd[7] = (uint8_t)toff;
	rr_raw(&m, DNS_TYPE_MX, 300, rd, 8);
	is(insert(c, &k, &m, 0), -E_DROP,
	    "an MX target whose suffix is a TTL: refused");
	/* The same bytes in an A record's data are no name. */
	head(&m, "r.example", DNS_TYPE_A, 0, 2, 0, 0);
	toff = m.n + 6;
	rr_a(&m, 0x01610000, 1);
	rd[0] = (uint8_t)(0xc0 | toff >> 8);
	rd[1] = (uint8_t)toff;
	rd[2] = 0;
	rd[3] = 1;
	rr_raw(&m, DNS_TYPE_A, 300, rd, 4);
	is(insert(c, &k, &m, 0), 0, "the same pointer bytes as an address: kept");
	cache_free(c);
}

/* RFC 2308 §5 and 2181: a CNAME chain ending in NODATA or NXDOMAIN lives
 * as long as the SOA says; RRsets get one TTL; AA is not kept; nor is
 * the upstream's OPT. */
static void
test_rfc_details(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct cache_hit h;
	struct msg m;
	uint8_t rd[300], out[4096];
	size_t nl, n, before;
	unsigned rc;

	for (rc = 0; rc <= DNS_RCODE_NXDOMAIN; rc += DNS_RCODE_NXDOMAIN) {
		key(&k, "alias.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
		head(&m, "alias.example", DNS_TYPE_A, rc, 1, 1, 0);
		if (dns_name_from_text("target.example", rd, &nl) != 0)
			abort();
		rr_raw(&m, DNS_TYPE_CNAME, 3600, rd, nl);
		rr_soa(&m, 900, 60);
		is(insert(c, &k, &m, 0), 0, "CNAME to %s kept",
		    rc ? "NXDOMAIN" : "NODATA");
		is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
		is(h.ttl, 60, "CNAME to %s: the SOA's negative TTL, not the "
		    "CNAME's", rc ? "NXDOMAIN" : "NODATA");
		head(&m, "alias.example", DNS_TYPE_A, rc, 1, 0, 0);
		rr_raw(&m, DNS_TYPE_CNAME, 3600, rd, nl);
		is(insert(c, &k, &m, 0), -E_DROP, "CNAME to %s without SOA: "
		    "not kept", rc ? "NXDOMAIN" : "NODATA");
	}

	/* Two RRsets: each keeps its own TTL. */
	key(&k, "two.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "two.example", DNS_TYPE_A, 0, 3, 0, 0);
	if (dns_name_from_text("two.example", rd, &nl) != 0)
		abort();
	rr_raw(&m, DNS_TYPE_CNAME, 300, rd, nl);	/* same owner, other type */
	rr_a(&m, 200, 1);
	rr_a(&m, 100, 2);
	is(insert(c, &k, &m, 0), 0, "CNAME + A RRset kept");
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	is(rendered_ttl(&h, false, 0), 300, "the CNAME keeps its TTL");
	is(rendered_ttl(&h, false, 1), 100, "A 200 served at its RRset's 100");
	is(rendered_ttl(&h, false, 2), 100, "A 100 served at 100");

	/* AA and OPT. */
	key(&k, "aa.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "aa.example", DNS_TYPE_A, DNS_FLAG_AA, 1, 0, 1);
	rr_a(&m, 300, 1);
	/* OPT with 400 bytes of padding, as a DoT server sends it. */
	m.b[m.n++] = 0;
	p16(&m, DNS_TYPE_OPT);
	p16(&m, 1232);
	p32(&m, 0);
	p16(&m, 404);
	p16(&m, DNS_OPT_PADDING);
	p16(&m, 400);
	memset(m.b + m.n, 0, 400);
	m.n += 400;
	before = cache_stats(c)->bytes;
	is(insert(c, &k, &m, 0), 0, "answer with AA and a padded OPT kept");
	ok(cache_stats(c)->bytes - before < 200,
	    "the padding is not stored (%zu bytes charged)",
	    (size_t)(cache_stats(c)->bytes - before));
	is(cache_lookup(c, &k, 0, &h), CACHE_FRESH, "hit");
	n = cache_render(&h, false, out, sizeof(out));
	ok(n > 12 && !(out[2] & (DNS_FLAG_AA >> 8)), "AA cleared");
	ok(n > 12 && out[11] == 0 && n == m.n - 415, "OPT not stored");
	cache_free(c);
}

/*
 * Serve-stale ends when the authority answers, even with an answer that
 * cannot be kept (TTL 0). A refresh keeps the entry's queue and frequency.
 * The prefetch window is the last tenth, for TTLs of 10 s and more.
 */
static void
test_refresh_rules(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct cache_hit h;
	struct msg m;
	char name[32];
	unsigned i;

	key(&k, "s.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "s.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 10, 1);
	is(insert(c, &k, &m, 0), 0, "kept for 10 s");
	is(cache_lookup(c, &k, 11000, &h), CACHE_STALE, "stale at 11 s");
	head(&m, "s.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 0, 1);
	is(insert(c, &k, &m, 11000), -E_DROP, "the refresh says TTL 0");
	is(cache_lookup(c, &k, 11000, &h), CACHE_MISS,
	    "and the stale answer is gone (the authority answered)");
	head(&m, "s.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 10, 1);
	is(insert(c, &k, &m, 0), 0, "kept again");
	head(&m, "s.example", DNS_TYPE_A, DNS_RCODE_REFUSED, 0, 0, 0);
	is(insert(c, &k, &m, 11000), -E_DROP, "a REFUSED refresh");
	is(cache_lookup(c, &k, 11000, &h), CACHE_STALE,
	    "leaves the stale answer (a failed refresh)");

	/* Prefetch: TTL 100 from 90 s on, not at 89 s; none below 10 s. */
	key(&k, "pf.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "pf.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 100, 1);
	(void)insert(c, &k, &m, 0);
	(void)cache_lookup(c, &k, 89999, &h);
	ok(!h.prefetch, "TTL 100: no prefetch with 10.001 s left");
	(void)cache_lookup(c, &k, 90000, &h);
	ok(h.prefetch, "TTL 100: prefetch with 10 s left");
	head(&m, "pf.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 10, 1);
	(void)insert(c, &k, &m, 0);
	(void)cache_lookup(c, &k, 9500, &h);
	ok(h.prefetch, "TTL 10: prefetch in its last second");
	head(&m, "pf.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 9, 1);
	(void)insert(c, &k, &m, 0);
	(void)cache_lookup(c, &k, 8900, &h);
	ok(!h.prefetch, "TTL 9: no prefetch at all");

	/* The failure note on stale data lasts fail_ttl exactly. */
	key(&k, "fn.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "fn.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 10, 1);
	(void)insert(c, &k, &m, 0);
	cache_note_failure(c, &k, 20000);
	(void)cache_lookup(c, &k, 24999, &h);
	ok(h.refresh_failed, "the note holds for fail_ttl (5 s)...");
	(void)cache_lookup(c, &k, 25000, &h);
	ok(!h.refresh_failed, "...and no longer");
	cache_free(c);

	/* A hot name refreshed before it leaves the small FIFO. */
	p.max_entries = 10;		/* small FIFO: 1 entry */
	c = cache_new(&p);
	key(&k, "hot.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, "hot.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 300, 1);
	(void)insert(c, &k, &m, 0);
	(void)cache_lookup(c, &k, 0, &h);	/* asked for again */
	(void)insert(c, &k, &m, 1000);		/* the prefetch's answer */
	for (i = 0; i < 30; i++) {
		struct cache_key o;

		snprintf(name, sizeof(name), "once%u.example", i);
		key(&o, name, DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
		head(&m, name, DNS_TYPE_A, 0, 1, 0, 0);
		rr_a(&m, 300, 1);
		(void)insert(c, &o, &m, 1000);
	}
	is(cache_lookup(c, &k, 2000, &h), CACHE_FRESH,
	    "a refreshed hot name keeps its frequency through a scan");
	cache_free(c);
}

static void
put_name(struct cache *c, const char *name, uint64_t now)
{
	struct cache_key k;
	struct msg m;

	key(&k, name, DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	head(&m, name, DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 3600, 1);
	(void)insert(c, &k, &m, now);
}

static enum cache_result
get_name(struct cache *c, const char *name)
{
	struct cache_key k;
	struct cache_hit h;

	key(&k, name, DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	return cache_lookup(c, &k, 0, &h);
}

/*
 * S3-FIFO's details: a key that left the small FIFO unasked and comes
 * back soon enters the main FIFO (the ghost table); the main FIFO gives an
 * entry asked for since its last pass another round.
 */
static void
test_eviction_details(void)
{
	struct cache_params p = params();
	struct cache *c;

	p.max_entries = 4;		/* small FIFO: 1 entry */
	c = cache_new(&p);
	put_name(c, "f1.example", 0);
	put_name(c, "f2.example", 0);
	put_name(c, "f3.example", 0);
	(void)get_name(c, "f1.example");
	(void)get_name(c, "f2.example");
	(void)get_name(c, "f3.example");
	put_name(c, "x.example", 0);
	/* Full: f1..f3 (asked again) move to main, x leaves for the ghost
	 * table, y enters the small FIFO. */
	put_name(c, "y.example", 0);
	is(get_name(c, "x.example"), CACHE_MISS, "x left unasked");
	is(get_name(c, "f1.example"), CACHE_FRESH, "f1 moved to main");
	/* x again, soon: the ghost table sends it to main, y leaves. */
	put_name(c, "x.example", 0);
	put_name(c, "z.example", 0);
	put_name(c, "w.example", 0);
	is(get_name(c, "x.example"), CACHE_FRESH,
	    "a ghost's return enters main and outlives one-off names");
	/* Main: f1 (asked since its move), f2, f3, x. With the small FIFO
	 * below its share the main FIFO's head goes: f1 gets a second
	 * round, f2 leaves. */
	(void)get_name(c, "w.example");		/* w stays small, asked */
	put_name(c, "v.example", 0);
	put_name(c, "u.example", 0);
	is(get_name(c, "f1.example"), CACHE_FRESH,
	    "main: an entry asked for since its last pass gets another round");
	is(get_name(c, "f2.example"), CACHE_MISS,
	    "main: one not asked for leaves");
	cache_free(c);
}

/* RFC 9520 §3.2: a failure that persists is remembered for longer each
 * time, fail_ttl doubled up to CACHE_FAIL_MAX_TTL. */
static void
test_failure_backoff(void)
{
	struct cache_params p = params();
	struct cache *c = cache_new(&p);
	struct cache_key k;
	struct cache_hit h;
	struct msg m;
	uint64_t t = 0;
	uint32_t want = 5;
	unsigned i, bad = 0;

	key(&k, "down.example", DNS_TYPE_A, DNS_FLAG_RD, false, NULL);
	for (i = 0; i < 10; i++) {
		cache_note_failure(c, &k, t);
		if (cache_lookup(c, &k, t, &h) != CACHE_FRESH || !h.failure ||
		    h.ttl != want)
			bad++;
		if (i < 3)
			is(h.ttl, want, "failure %u in a row: kept %u s", i + 1,
			    want);
		t += (uint64_t)want * 1000;
		want = want * 2 > CACHE_FAIL_MAX_TTL ? CACHE_FAIL_MAX_TTL :
		    want * 2;
	}
	is(bad, 0, "doubling up to %u s", CACHE_FAIL_MAX_TTL);
	is(h.ttl, CACHE_FAIL_MAX_TTL, "and no further");
	head(&m, "down.example", DNS_TYPE_A, 0, 1, 0, 0);
	rr_a(&m, 1, 1);
	is(insert(c, &k, &m, t), 0, "an answer at last");
	(void)cache_lookup(c, &k, t + 2000, &h);
	cache_note_failure(c, &k, t + 2000);	/* noted on the stale data */
	(void)cache_lookup(c, &k, t + 1000 + 3600000 + 1, &h);	/* gone */
	cache_note_failure(c, &k, t + 1000 + 3600000 + 1);
	(void)cache_lookup(c, &k, t + 1000 + 3600000 + 1, &h);
	ok(h.failure && h.ttl == 5, "after an answer: back to fail_ttl (%u)",
	    h.ttl);
	/* Quiet for two periods: forgotten, the next failure starts over. */
	t += 1000 + 3600000 + 1;
	cache_note_failure(c, &k, t + 5000 + 10000);
	(void)cache_lookup(c, &k, t + 5000 + 10000, &h);
	ok(h.failure && h.ttl == 5, "after a quiet spell: fail_ttl again (%u)",
	    h.ttl);
	cache_free(c);
}

/* A scan of names each asked for twice (the miss, then one hit) moves
 * them to the main FIFO, where the hot set's frequency still wins. */
static void
test_scan_twice(void)
{
	struct cache_params p = params();
	struct cache *c;
	char name[64];
	unsigned i, j, hot_hits = 0;

	p.max_entries = 50;
	c = cache_new(&p);
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "hot%u.example", i);
		put_name(c, name, 0);
		(void)get_name(c, name);
		(void)get_name(c, name);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "scan%u.example", i);
		put_name(c, name, 0);
		(void)get_name(c, name);
		if (i % 10 == 0)
			for (j = 0; j < 20; j++) {
				snprintf(name, sizeof(name), "hot%u.example", j);
				(void)get_name(c, name);
			}
	}
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "hot%u.example", i);
		if (get_name(c, name) == CACHE_FRESH)
			hot_hits++;
	}
	is(hot_hits, 20, "a scan of names asked twice does not flush the hot set");
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
	test_ttl_guard();
	test_rfc_details();
	test_refresh_rules();
	test_eviction_details();
	test_failure_backoff();
	test_scan_twice();
	return tap_done();
}
