/*
 * Packet cache (see cache.h). Domain layer, pure. Entries live in one
 * array sized at creation, found through a chained hash table of indexes
 * and linked (by index) into one of the two S3-FIFO queues. Each entry owns
 * one allocation: its record-TTL offsets, its key bytes and its answer, in
 * that order. A lookup and a render allocate nothing.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define C_FREQ_MAX	3
#define C_NTTL_MAX	1024		/* records per answer we age */
#define C_PREFETCH_MIN	10		/* no prefetch for TTLs below, s */

enum c_queue { CQ_NONE = 0, CQ_SMALL, CQ_MAIN };

struct centry {
	uint64_t	hash;
	uint64_t	stored_ms;
	uint64_t	expire_ms;
	uint64_t	fail_until_ms;	/* a refresh failed: until then */
	uint8_t		*blob;		/* owned: offsets | key | answer */
	size_t		 size;		/* bytes charged for it */
	uint32_t	 hnext;		/* hash chain, index + 1 */
	uint32_t	 prev, next;	/* queue links, index + 1 */
	uint32_t	 msg_len;
	uint32_t	 ttl;		/* lifetime, s */
	uint16_t	 key_len;
	uint16_t	 nttl;
	uint8_t		 queue;		/* enum c_queue; CQ_NONE: free */
	uint8_t		 freq;
	bool		 failure;
};

struct cqueue {
	uint32_t	head, tail;	/* index + 1: head is the oldest */
	size_t		count;
};

struct cache {
	struct cache_params	 p;
	struct centry		*e;		/* owned: p.max_entries */
	uint32_t		*buckets;	/* owned: index + 1 */
	uint64_t		*ghost;		/* owned: hashes, direct-mapped */
	size_t			 mask;		/* buckets and ghost size - 1 */
	uint32_t		 free_head;	/* index + 1, linked by hnext */
	size_t			 unused;	/* entries never used yet start
						 * here (their pages untouched) */
	struct cqueue		 small, main;
	size_t			 small_target;
	struct cache_stats	 st;
};

static uint8_t
fold(uint8_t ch)
{
	return ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + ('a' - 'A')) : ch;
}

/* FNV-1a over the bytes, seeded, with a final avalanche (splitmix64). */
static uint64_t
key_hash(const uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

void
cache_key_make(struct cache_key *k, uint64_t seed, const struct dns_info *q,
    const void *route, size_t route_len)
{
	uint8_t *b = k->buf, bits = 0;
	size_t i, n = 0;

	if (route_len > 32)
		route_len = 32;
	if (q->flags & DNS_FLAG_RD)
		bits |= 1;
	if (q->flags & DNS_FLAG_CD)
		bits |= 2;
	if (q->do_bit)
		bits |= 4;
	b[n++] = bits;
	b[n++] = (uint8_t)(q->qtype >> 8);
	b[n++] = (uint8_t)q->qtype;
	b[n++] = (uint8_t)(q->qclass >> 8);
	b[n++] = (uint8_t)q->qclass;
	b[n++] = (uint8_t)route_len;
	if (route_len > 0)
		memcpy(b + n, route, route_len);
	n += route_len;
	for (i = 0; i < q->qname_len && i < DNS_NAME_MAX; i++)
		b[n++] = fold(q->qname[i]);
	k->len = (uint16_t)n;
	k->local = route_len > 0;
	k->hash = key_hash(b, n, seed);
}

static struct centry *
at(struct cache *c, uint32_t idx1)
{
	return &c->e[idx1 - 1];
}

static const uint8_t *
e_key(const struct centry *e)
{
	return e->blob + (size_t)e->nttl * 2;
}

static void
q_push(struct cache *c, struct cqueue *q, uint32_t i1, enum c_queue which)
{
	struct centry *e = at(c, i1);

	e->queue = (uint8_t)which;
	e->next = 0;
	e->prev = q->tail;
	if (q->tail != 0)
		at(c, q->tail)->next = i1;
	else
		q->head = i1;
	q->tail = i1;
	q->count++;
}

static struct cqueue *
q_of(struct cache *c, const struct centry *e)
{
	return e->queue == CQ_SMALL ? &c->small : &c->main;
}

static void
q_unlink(struct cache *c, uint32_t i1)
{
	struct centry *e = at(c, i1);
	struct cqueue *q = q_of(c, e);

	if (e->prev != 0)
		at(c, e->prev)->next = e->next;
	else
		q->head = e->next;
	if (e->next != 0)
		at(c, e->next)->prev = e->prev;
	else
		q->tail = e->prev;
	e->prev = e->next = 0;
	q->count--;
}

static uint32_t
find(struct cache *c, const struct cache_key *k)
{
	uint32_t i1;

	for (i1 = c->buckets[k->hash & c->mask]; i1 != 0; i1 = at(c, i1)->hnext) {
		const struct centry *e = at(c, i1);

		if (e->hash == k->hash && e->key_len == k->len &&
		    memcmp(e_key(e), k->buf, k->len) == 0)
			return i1;
	}
	return 0;
}

/* Takes entry i1 out of the hash, its queue and the byte count. */
static void
e_remove(struct cache *c, uint32_t i1)
{
	struct centry *e = at(c, i1);
	uint32_t *pp = &c->buckets[e->hash & c->mask];

	while (*pp != i1)
		pp = &at(c, *pp)->hnext;
	*pp = e->hnext;
	q_unlink(c, i1);
	free(e->blob);
	c->st.bytes -= e->size;
	c->st.entries--;
	memset(e, 0, sizeof(*e));
	e->hnext = c->free_head;
	c->free_head = i1;
}

/* Pushes one entry out (S3-FIFO). Returns false when the cache is empty. */
static bool
evict_one(struct cache *c)
{
	uint32_t i1;
	struct centry *e;

	for (;;) {
		if (c->small.count > 0 &&
		    (c->small.count >= c->small_target || c->main.count == 0)) {
			i1 = c->small.head;
			e = at(c, i1);
			if (e->freq > 0) {
				/* Asked for again while new: it stays. */
				e->freq = 0;
				q_unlink(c, i1);
				q_push(c, &c->main, i1, CQ_MAIN);
				continue;
			}
			c->ghost[e->hash & c->mask] = e->hash;
		} else if (c->main.count > 0) {
			i1 = c->main.head;
			e = at(c, i1);
			if (e->freq > 0) {
				e->freq--;
				q_unlink(c, i1);
				q_push(c, &c->main, i1, CQ_MAIN);
				continue;
			}
		} else
			return false;
		e_remove(c, i1);
		c->st.evictions++;
		return true;
	}
}

static size_t
pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

struct cache *
cache_new(const struct cache_params *p)
{
	struct cache *c;
	size_t nb;

	if (p->max_entries == 0 || p->max_entries > UINT32_MAX / 2) {
		errno = EINVAL;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->p = *p;
	nb = pow2_at_least(p->max_entries);
	c->mask = nb - 1;
	c->small_target = p->max_entries / 10 > 0 ? p->max_entries / 10 : 1;
	if ((c->e = calloc(p->max_entries, sizeof(*c->e))) == NULL ||
	    (c->buckets = calloc(nb, sizeof(*c->buckets))) == NULL ||
	    (c->ghost = calloc(nb, sizeof(*c->ghost))) == NULL) {
		cache_free(c);
		return NULL;
	}
	return c;
}

void
cache_clear(struct cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->unused; i++)
		if (c->e[i].queue != CQ_NONE)
			e_remove(c, (uint32_t)(i + 1));
	memset(c->ghost, 0, (c->mask + 1) * sizeof(*c->ghost));
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	if (c->e != NULL && c->buckets != NULL)
		cache_clear(c);
	free(c->e);
	free(c->buckets);
	free(c->ghost);
	free(c);
}

enum cache_result
cache_lookup(struct cache *c, const struct cache_key *k, uint64_t now_ms,
    struct cache_hit *out)
{
	uint32_t i1 = find(c, k);
	struct centry *e;

	memset(out, 0, sizeof(*out));
	if (i1 == 0) {
		c->st.misses++;
		return CACHE_MISS;
	}
	e = at(c, i1);
	if (now_ms < e->expire_ms) {
		if (e->freq < C_FREQ_MAX)
			e->freq++;
		c->st.hits++;
		out->failure = e->failure;
		out->age = (uint32_t)((now_ms - e->stored_ms) / 1000);
		out->ttl = e->ttl;
		out->prefetch = !e->failure && e->ttl >= C_PREFETCH_MIN &&
		    (e->expire_ms - now_ms) * 10 <= (uint64_t)e->ttl * 1000;
		out->msg = e->blob + (size_t)e->nttl * 2 + e->key_len;
		out->len = e->msg_len;
		out->ttl_off = (const uint16_t *)(const void *)e->blob;
		out->nttl = e->nttl;
		return CACHE_FRESH;
	}
	c->st.misses++;
	if (!e->failure && now_ms < e->expire_ms +
	    (uint64_t)c->p.stale_max * 1000) {
		if (e->freq < C_FREQ_MAX)
			e->freq++;
		out->age = (uint32_t)((now_ms - e->stored_ms) / 1000);
		out->ttl = e->ttl;
		out->refresh_failed = now_ms < e->fail_until_ms;
		out->msg = e->blob + (size_t)e->nttl * 2 + e->key_len;
		out->len = e->msg_len;
		out->ttl_off = (const uint16_t *)(const void *)e->blob;
		out->nttl = e->nttl;
		return CACHE_STALE;
	}
	e_remove(c, i1);
	c->st.expired++;
	return CACHE_MISS;
}

/*
 * Walks the records of an answer whose question parsed: collects the
 * offset of every TTL but OPT's, the smallest TTL and, for a negative
 * answer, min(SOA TTL, MINIMUM) of the first SOA in the authority section
 * (its offset in *soa_off). Returns the number of TTLs, or -1.
 */
static int
walk_ttls(const uint8_t *msg, size_t len, size_t qend, uint16_t *offs,
    uint32_t *min_ttl, size_t *soa_off, uint32_t *soa_neg)
{
	struct dns_cur c;
	uint16_t an, ns, ar, type, rdlen;
	uint32_t ttl, i, n = 0, total;
	size_t toff, rdend;

	if (len < DNS_HDR_LEN || qend > len)
		return -1;
	an = (uint16_t)(msg[6] << 8 | msg[7]);
	ns = (uint16_t)(msg[8] << 8 | msg[9]);
	ar = (uint16_t)(msg[10] << 8 | msg[11]);
	total = (uint32_t)an + ns + ar;
	*min_ttl = UINT32_MAX;
	*soa_off = 0;
	dns_cur_init(&c, msg, len);
	c.off = qend;
	for (i = 0; i < total; i++) {
		dns_cur_name(&c, NULL, NULL);
		type = dns_cur_u16(&c);
		(void)dns_cur_u16(&c);
		toff = c.off;
		ttl = dns_cur_u32(&c);
		rdlen = dns_cur_u16(&c);
		if (c.err != 0 || rdlen > c.len - c.off)
			return -1;
		rdend = c.off + rdlen;
		if (type != DNS_TYPE_OPT) {
			if (n == C_NTTL_MAX || toff > UINT16_MAX)
				return -1;
			offs[n++] = (uint16_t)toff;
			if (ttl > 0x7fffffffU)	/* RFC 2181 §8: treat as 0 */
				ttl = 0;
			if (ttl < *min_ttl)
				*min_ttl = ttl;
		}
		if (type == DNS_TYPE_SOA && i >= an && i < (uint32_t)an + ns &&
		    *soa_off == 0) {
			uint32_t minimum;

			dns_cur_name(&c, NULL, NULL);
			dns_cur_name(&c, NULL, NULL);
			dns_cur_skip(&c, 16);
			minimum = dns_cur_u32(&c);
			if (c.err != 0 || c.off != rdend)
				return -1;
			if (minimum > 0x7fffffffU)
				minimum = 0;
			*soa_off = toff;
			*soa_neg = ttl < minimum ? ttl : minimum;
		}
		c.off = rdend;
	}
	return (int)n;
}

/* True if a TTL field at one of offs (ascending) overlaps [a, b). */
static bool
hits_ttl(const uint16_t *offs, size_t n, size_t a, size_t b)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((size_t)offs[mid] + 4 <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && offs[lo] < b;
}

/*
 * True if a name could run through a TTL field: every byte pair from the
 * question on that looks like a compression pointer (in an owner name or
 * in any rdata) is followed, label by label. Ageing rewrites TTLs, so a
 * name reaching into one would change as the entry ages: such answers are
 * not cached (no real compressor writes them). Spurious pairs inside
 * rdata can only make an answer uncacheable, never wrong. The work is
 * bounded; past the bound the answer is not cached either.
 */
static bool
ttl_in_names(const uint8_t *m, size_t len, size_t from, const uint16_t *offs,
    size_t n)
{
	size_t i, pos, budget = 1u << 16;
	unsigned hops;
	uint8_t b;

	for (i = from; i + 1 < len; i++) {
		if ((m[i] & 0xc0) != 0xc0)
			continue;
		pos = (size_t)(m[i] & 0x3f) << 8 | m[i + 1];
		hops = 0;
		/* The parser takes no pointer into the header: a pair that
		 * points there is rdata, not a name, and the header's ID
		 * bytes read as labels would make keeping the answer depend
		 * on the upstream's random ID. */
		while (pos >= DNS_HDR_LEN && pos < len) {
			if (budget-- == 0)
				return true;
			b = m[pos];
			if ((b & 0xc0) == 0xc0) {
				if (pos + 1 >= len || ++hops > DNS_PTR_HOPS)
					break;
				if (hits_ttl(offs, n, pos, pos + 2))
					return true;
				pos = (size_t)(b & 0x3f) << 8 | m[pos + 1];
				continue;
			}
			if ((b & 0xc0) != 0)
				break;
			if (hits_ttl(offs, n, pos, pos + 1 + (size_t)b))
				return true;
			if (b == 0)
				break;
			pos += (size_t)b + 1;
		}
	}
	return false;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	if (v < lo)
		v = lo;
	return v > hi ? hi : v;
}

/* Finds or makes room for the entry of k; returns it (index + 1) with
 * its old data freed, or 0 when there is no room for size bytes. */
static uint32_t
slot_for(struct cache *c, const struct cache_key *k, size_t size)
{
	uint32_t i1 = find(c, k);
	struct centry *e;
	bool ghost;

	if (i1 != 0)
		e_remove(c, i1);
	if (size > c->p.max_bytes)
		return 0;
	while ((c->free_head == 0 && c->unused == c->p.max_entries) ||
	    c->st.bytes + size > c->p.max_bytes)
		if (!evict_one(c))
			break;
	if (c->st.bytes + size > c->p.max_bytes)
		return 0;
	if (c->free_head != 0) {
		i1 = c->free_head;
		c->free_head = at(c, i1)->hnext;
	} else if (c->unused < c->p.max_entries)
		i1 = (uint32_t)++c->unused;
	else
		return 0;
	e = at(c, i1);
	memset(e, 0, sizeof(*e));
	e->hash = k->hash;
	e->hnext = c->buckets[k->hash & c->mask];
	c->buckets[k->hash & c->mask] = i1;
	ghost = c->ghost[k->hash & c->mask] == k->hash;
	if (ghost)
		c->ghost[k->hash & c->mask] = 0;
	q_push(c, ghost ? &c->main : &c->small, i1, ghost ? CQ_MAIN : CQ_SMALL);
	c->st.entries++;
	return i1;
}

/* Stores a failure entry (no answer) for k. */
static void
put_failure(struct cache *c, const struct cache_key *k, uint64_t now_ms)
{
	size_t size = sizeof(struct centry) + k->len;
	struct centry *e;
	uint32_t i1;
	uint8_t *blob;

	if (c->p.fail_ttl == 0 || (blob = malloc(k->len)) == NULL)
		return;
	if ((i1 = slot_for(c, k, size)) == 0) {
		free(blob);
		return;
	}
	e = at(c, i1);
	memcpy(blob, k->buf, k->len);
	e->blob = blob;
	e->size = size;
	e->key_len = k->len;
	e->failure = true;
	e->ttl = c->p.fail_ttl;
	e->stored_ms = now_ms;
	e->expire_ms = now_ms + (uint64_t)c->p.fail_ttl * 1000;
	c->st.bytes += size;
	c->st.inserts++;
}

int
cache_insert(struct cache *c, const struct cache_key *k, const uint8_t *msg,
    size_t len, const struct dns_info *a, uint64_t now_ms)
{
	uint16_t offs[C_NTTL_MAX];
	uint32_t min_ttl, soa_neg = 0, ttl, hi, i1;
	unsigned rcode = DNS_RCODE(a->flags);
	size_t soa_off, size, i;
	struct centry *e;
	uint8_t *blob, *m;
	bool negative;
	int n;

	if (DNS_OPCODE(a->flags) != 0 || (a->flags & DNS_FLAG_TC) ||
	    a->ext_rcode != 0 || a->qdcount != 1 || len > CACHE_ENTRY_MAX) {
		c->st.not_cacheable++;
		return -E_DROP;
	}
	if (rcode == DNS_RCODE_SERVFAIL) {
		cache_note_failure(c, k, now_ms);
		return 0;
	}
	if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN) {
		c->st.not_cacheable++;
		return -E_DROP;
	}
	n = walk_ttls(msg, len, a->question_end, offs, &min_ttl, &soa_off,
	    &soa_neg);
	negative = rcode == DNS_RCODE_NXDOMAIN || a->ancount == 0;
	if (n < 0 || (negative && soa_off == 0) || (!negative && n == 0) ||
	    ttl_in_names(msg, len, DNS_HDR_LEN, offs, (size_t)n)) {
		c->st.not_cacheable++;
		return -E_DROP;
	}
	hi = k->local ? c->p.local_max_ttl : c->p.max_ttl;
	if (negative && hi > CACHE_NEG_MAX_TTL)
		hi = CACHE_NEG_MAX_TTL;
	ttl = negative && soa_neg < min_ttl ? soa_neg : min_ttl;
	if (ttl == 0 && c->p.min_ttl == 0) {
		c->st.not_cacheable++;
		return -E_DROP;
	}
	ttl = clamp(ttl, c->p.min_ttl, hi);
	if (ttl == 0) {
		c->st.not_cacheable++;
		return -E_DROP;
	}
	size = (size_t)n * 2 + k->len + len;
	if ((blob = malloc(size)) == NULL)
		return -ENOMEM;
	memcpy(blob, offs, (size_t)n * 2);
	memcpy(blob + (size_t)n * 2, k->buf, k->len);
	m = blob + (size_t)n * 2 + k->len;
	memcpy(m, msg, len);
	/* Stored TTLs: each record's, clamped, never below the entry's; the
	 * negative answer's SOA carries the negative TTL. */
	for (i = 0; i < (size_t)n; i++) {
		uint32_t t = get32(m + offs[i]);

		if (t > 0x7fffffffU)
			t = 0;
		if (negative && offs[i] == soa_off)
			t = ttl;
		put32(m + offs[i], clamp(t, ttl, hi > ttl ? hi : ttl));
	}
	if ((i1 = slot_for(c, k, size + sizeof(struct centry))) == 0) {
		free(blob);
		c->st.not_cacheable++;
		return -E_DROP;
	}
	e = at(c, i1);
	e->blob = blob;
	e->size = size + sizeof(struct centry);
	e->key_len = k->len;
	e->nttl = (uint16_t)n;
	e->msg_len = (uint32_t)len;
	e->ttl = ttl;
	e->stored_ms = now_ms;
	e->expire_ms = now_ms + (uint64_t)ttl * 1000;
	c->st.bytes += e->size;
	c->st.inserts++;
	return 0;
}

void
cache_note_failure(struct cache *c, const struct cache_key *k,
    uint64_t now_ms)
{
	uint32_t i1 = find(c, k);
	struct centry *e;

	if (i1 == 0) {
		put_failure(c, k, now_ms);
		return;
	}
	e = at(c, i1);
	if (e->failure)
		return;
	/* Keep the data (RFC 8767 §4): stale answers go on being served
	 * without asking again until the recheck time has passed. */
	e->fail_until_ms = now_ms + (uint64_t)c->p.fail_ttl * 1000;
}

size_t
cache_render(const struct cache_hit *h, bool stale, uint8_t *out, size_t cap)
{
	size_t i;

	if (h->msg == NULL || h->len > cap)
		return 0;
	memcpy(out, h->msg, h->len);
	for (i = 0; i < h->nttl; i++) {
		uint32_t t = get32(out + h->ttl_off[i]);

		if (stale)
			t = CACHE_STALE_TTL;
		else
			t = t > h->age ? t - h->age : 0;
		put32(out + h->ttl_off[i], t);
	}
	return h->len;
}

const struct cache_stats *
cache_stats(const struct cache *c)
{
	return &c->st;
}

#define CROW(name, type, field, help) \
	STAT_ROW(name, NULL, type, struct cache_stats, field, help)
static const struct stat_desc cache_rows[] = {
	CROW("dotproxy_cache_hits_total", STAT_COUNTER, hits,
	    "Lookups that found a fresh answer (or a remembered failure)."),
	CROW("dotproxy_cache_misses_total", STAT_COUNTER, misses,
	    "Lookups that found no fresh answer."),
	CROW("dotproxy_cache_inserts_total", STAT_COUNTER, inserts,
	    "Answers and failures stored."),
	CROW("dotproxy_cache_evictions_total", STAT_COUNTER, evictions,
	    "Entries pushed out to make room."),
	CROW("dotproxy_cache_expired_total", STAT_COUNTER, expired,
	    "Entries dropped once past their serve-stale window."),
	CROW("dotproxy_cache_uncacheable_total", STAT_COUNTER, not_cacheable,
	    "Answers the caching rules kept out (TC, TTL 0, no SOA, ...)."),
	CROW("dotproxy_cache_entries", STAT_GAUGE, entries,
	    "Entries in the cache."),
	CROW("dotproxy_cache_bytes", STAT_GAUGE, bytes,
	    "Bytes the cached answers and their bookkeeping hold."),
};
const struct stat_table cache_stat_table = STAT_TABLE(cache_rows);
