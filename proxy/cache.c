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
	uint8_t		 fails;		/* failure: how many in a row */
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

/*
 * Eight bytes at a time: xor in, multiply by an odd constant, fold the
 * high half down (each step a bijection of the state), the length and
 * the random seed in the start state, and a final avalanche (splitmix64)
 * so that the low bits that pick a bucket depend on every byte.
 */
static uint64_t
key_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xff51afd7ed558ccdULL;
	return h ^ h >> 32;
}

static uint64_t
key_hash(const uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t h = seed ^ (uint64_t)n * 0x9e3779b97f4a7c15ULL, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = key_mix(h, w);
	}
	if (i < n) {
		w = 0;
		memcpy(&w, p + i, n - i);
		h = key_mix(h, w);
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/*
 * ASCII A-Z to a-z in eight bytes at once; every other byte (0x80 and up
 * included) unchanged. Per byte, with its top bit masked off: adding 0x3f
 * sets bit 7 from 'A' up, adding 0x25 from past 'Z'; neither add carries
 * into the next byte.
 */
static uint64_t
fold8(uint64_t x)
{
	const uint64_t hi = 0x8080808080808080ULL;
	uint64_t low7 = x & ~hi;
	uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3fULL;
	uint64_t gt_z = low7 + 0x2525252525252525ULL;
	uint64_t upper = (ge_a ^ gt_z) & ~x & hi;

	return x | upper >> 2;
}

void
cache_key_make(struct cache_key *k, uint64_t seed, const struct dns_info *q,
    const void *route, size_t route_len)
{
	uint8_t *b = k->buf, bits = 0;
	size_t i, n = 0, len;

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
	len = q->qname_len < DNS_NAME_MAX ? q->qname_len : DNS_NAME_MAX;
	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, q->qname + i, 8);
		w = fold8(w);
		memcpy(b + n + i, &w, 8);
	}
	for (; i < len; i++)
		b[n + i] = fold(q->qname[i]);
	n += len;
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
				/* Asked for again while new: it stays, with
				 * credit for the asks beyond the first. A
				 * count reset to 0 would leave a hot name at
				 * the main FIFO's head with no second round
				 * when a burst of new names moves there right
				 * behind it. */
				e->freq--;
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

size_t
cache_fixed_bytes(const struct cache_params *p)
{
	size_t nb = pow2_at_least(p->max_entries);

	return sizeof(struct cache) + p->max_entries * sizeof(struct centry) +
	    nb * (sizeof(uint32_t) + sizeof(uint64_t));
}

struct cache *
cache_new(const struct cache_params *p)
{
	struct cache *c;
	size_t nb;

	if (p->max_entries == 0 || p->max_entries > UINT32_MAX / 2 ||
	    cache_fixed_bytes(p) >= p->max_bytes) {
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
	/* Every byte held counts against max_bytes, the tables too. */
	c->st.bytes = cache_fixed_bytes(p);
	return c;
}

void
cache_set_ttls(struct cache *c, const struct cache_params *p)
{
	c->p.min_ttl = p->min_ttl;
	c->p.max_ttl = p->max_ttl;
	c->p.local_max_ttl = p->local_max_ttl;
	c->p.fail_ttl = p->fail_ttl;
	c->p.stale_max = p->stale_max;
}

void
cache_take_stats(struct cache *to, const struct cache *from)
{
	to->st.hits = from->st.hits;
	to->st.misses = from->st.misses;
	to->st.inserts = from->st.inserts;
	to->st.evictions = from->st.evictions;
	to->st.expired = from->st.expired;
	to->st.not_cacheable = from->st.not_cacheable;
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
		/* Prefetch in the last tenth: unbound's prefetch window. */
		out->prefetch = !e->failure && e->ttl >= C_PREFETCH_MIN &&
		    (e->expire_ms - now_ms) * 10 <= (uint64_t)e->ttl * 1000;
		out->msg = e->blob + (size_t)e->nttl * 2 + e->key_len;
		out->len = e->msg_len;
		out->ttl_off = (const uint16_t *)(const void *)e->blob;
		out->nttl = e->nttl;
		return CACHE_FRESH;
	}
	c->st.misses++;
	if (e->failure && now_ms < e->expire_ms + (uint64_t)e->ttl * 1000)
		return CACHE_MISS;	/* kept to back off if it fails again */
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

/* What one walk over an answer's records found. */
struct walk {
	uint16_t	offs[C_NTTL_MAX];	/* TTL offsets, OPT's aside */
	uint64_t	set[C_NTTL_MAX];	/* RRset of each: section, owner,
						 * type and class hashed */
	uint32_t	min_ttl;	/* smallest TTL, RFC 2181 §8 applied */
	size_t		soa_off;	/* first authority SOA's TTL, or 0 */
	uint32_t	soa_neg;	/* its min(TTL, MINIMUM) */
	bool		has_qtype;	/* an answer record of the qtype */
	size_t		n;
};

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
 * Reads the name at c (validated by the cursor, which also moves past it)
 * and says whether any byte a reader decompressing it would read lies in
 * a TTL field collected so far. Pointers go strictly backwards, so every
 * TTL such a name can reach is already in offs. Ageing rewrites TTLs: a
 * name running through one would change as the entry ages. *h, when not
 * NULL, gets the name's hash (case folded) for the RRset grouping.
 */
static bool
name_hits_ttl(struct dns_cur *c, const uint16_t *offs, size_t n, uint64_t *h)
{
	uint8_t name[DNS_NAME_MAX];
	size_t pos = c->off, nlen = 0, i;
	unsigned hops = 0;
	uint8_t b;

	dns_cur_name(c, name, &nlen);
	if (c->err != 0)
		return false;
	if (h != NULL) {
		*h = 0xcbf29ce484222325ULL;
		for (i = 0; i < nlen; i++) {
			*h ^= fold(name[i]);
			*h *= 0x100000001b3ULL;
		}
	}
	for (;;) {	/* the cursor checked the bounds and hops */
		b = c->p[pos];
		/* Only bytes reached through a pointer can be a TTL: the
		 * name's own first labels are in place, between fields. */
		if (hops > 0 && hits_ttl(offs, n, pos, pos +
		    ((b & 0xc0) == 0xc0 ? 2 : 1 + (size_t)b)))
			return true;
		if ((b & 0xc0) == 0xc0) {
			hops++;
			pos = (size_t)(b & 0x3f) << 8 | c->p[pos + 1];
			continue;
		}
		if (b == 0)
			return false;
		pos += (size_t)b + 1;
	}
}

/* The RRset a record belongs to: its section, owner, type and class. */
static uint64_t
rrset_of(uint64_t owner, uint16_t type, uint16_t class, unsigned section)
{
	uint8_t b[13];

	memcpy(b, &owner, 8);
	b[8] = (uint8_t)(type >> 8);
	b[9] = (uint8_t)type;
	b[10] = (uint8_t)(class >> 8);
	b[11] = (uint8_t)class;
	b[12] = (uint8_t)section;
	return key_hash(b, sizeof(b), 0);
}

/*
 * The names in the rdata of the types a reader decompresses (RFC 3597 §4:
 * those of RFC 1035 and the few it lists; DNAME, RRSIG and NSEC as well,
 * whose names are uncompressed but harmless to walk). fixed: bytes before
 * the first name; names: how many follow it back to back; skip_txt: the
 * character-strings NAPTR has between its fixed part and its name.
 */
static bool
rdata_names(uint16_t type, size_t *fixed, unsigned *names, unsigned *txt)
{
	*fixed = 0;
	*names = 1;
	*txt = 0;
	switch (type) {
	case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12:
	case 39:	/* NS MD MF CNAME MB MG MR PTR DNAME */
		return true;
	case 6: case 14: case 17:	/* SOA MINFO RP */
		*names = 2;
		return true;
	case 15: case 18: case 21:	/* MX AFSDB RT */
		*fixed = 2;
		return true;
	case 26:			/* PX */
		*fixed = 2;
		*names = 2;
		return true;
	case 33:			/* SRV */
		*fixed = 6;
		return true;
	case 35:			/* NAPTR */
		*fixed = 4;
		*txt = 3;
		return true;
	case 24: case 46:		/* SIG RRSIG */
		*fixed = 18;
		return true;
	case 30: case 47:		/* NXT NSEC */
		return true;
	default:
		return false;
	}
}

/*
 * Walks the records of an answer whose question parsed (a: its parse):
 * collects the offset of every TTL but OPT's with its RRset, the smallest
 * TTL, whether the answer section holds the qtype and, for a negative
 * answer, min(SOA TTL, MINIMUM) of the first SOA in the authority section.
 * Returns 0, -1 when the answer is malformed or too long to age, or 1 when
 * a name (an owner name, or one in the rdata of a type that has names)
 * reads through a TTL field.
 */
static int
walk_answer(const uint8_t *msg, size_t len, const struct dns_info *a,
    struct walk *w)
{
	struct dns_cur c;
	uint16_t an, ns, ar, type, class, rdlen;
	uint32_t ttl, i, total;
	uint64_t h = 0;
	size_t toff, rdend, fixed;
	unsigned names, txt, j;

	if (len < DNS_HDR_LEN || a->question_end > len)
		return -1;
	an = (uint16_t)(msg[6] << 8 | msg[7]);
	ns = (uint16_t)(msg[8] << 8 | msg[9]);
	ar = (uint16_t)(msg[10] << 8 | msg[11]);
	total = (uint32_t)an + ns + ar;
	w->min_ttl = UINT32_MAX;
	w->soa_off = 0;
	w->soa_neg = 0;
	w->n = 0;
	w->has_qtype = a->qtype == 255;	/* ANY: whatever came */
	dns_cur_init(&c, msg, len);
	c.off = a->question_end;
	for (i = 0; i < total; i++) {
		if (name_hits_ttl(&c, w->offs, w->n, &h))
			return 1;
		type = dns_cur_u16(&c);
		class = dns_cur_u16(&c);
		toff = c.off;
		ttl = dns_cur_u32(&c);
		rdlen = dns_cur_u16(&c);
		if (c.err != 0 || rdlen > c.len - c.off)
			return -1;
		rdend = c.off + rdlen;
		if (i < an && type == a->qtype)
			w->has_qtype = true;
		if (type != DNS_TYPE_OPT) {
			if (w->n == C_NTTL_MAX || toff > UINT16_MAX)
				return -1;
			if (ttl > 0x7fffffffU)	/* RFC 2181 §8: treat as 0 */
				ttl = 0;
			if (ttl < w->min_ttl)
				w->min_ttl = ttl;
			w->set[w->n] = rrset_of(h, type, class, i < an ? 0 :
			    i < (uint32_t)an + ns ? 1 : 2);
			w->offs[w->n++] = (uint16_t)toff;
		}
		if (rdata_names(type, &fixed, &names, &txt)) {
			struct dns_cur r = c;

			/* The rdata alone bounds its names' in-place part. */
			r.len = rdend;
			dns_cur_skip(&r, fixed);
			for (j = 0; j < txt; j++)
				dns_cur_skip(&r, dns_cur_u8(&r));
			for (j = 0; j < names && r.err == 0; j++)
				if (name_hits_ttl(&r, w->offs, w->n, NULL))
					return 1;
			/* rdata we cannot read as its type says: kept out,
			 * as its names cannot be checked. */
			if (r.err != 0)
				return -1;
		}
		if (type == DNS_TYPE_SOA && i >= an && i < (uint32_t)an + ns &&
		    w->soa_off == 0) {
			uint32_t minimum;

			dns_cur_name(&c, NULL, NULL);
			dns_cur_name(&c, NULL, NULL);
			dns_cur_skip(&c, 16);
			minimum = dns_cur_u32(&c);
			if (c.err != 0 || c.off != rdend)
				return -1;
			if (minimum > 0x7fffffffU)
				minimum = 0;
			w->soa_off = toff;
			w->soa_neg = ttl < minimum ? ttl : minimum;
		}
		c.off = rdend;
	}
	return 0;
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

/* Bytes malloc really takes for a block of n (glibc: an 8-byte header,
 * 16-byte granules, 32 at least): what an entry is charged. */
static size_t
malloc_size(size_t n)
{
	n = (n + 8 + 15) & ~(size_t)15;
	return n < 32 ? 32 : n;
}

/*
 * Finds or makes room for the entry of k; returns it (index + 1) with its
 * old data freed, or 0 when there is no room for size bytes. A key already
 * kept (a refresh, a failure turned answer) keeps its queue and its
 * frequency: it is the same name asked for again, and putting it back in
 * the small FIFO at frequency 0 would make a hot name that is refreshed
 * before it expires look like a one-off.
 */
static uint32_t
slot_for(struct cache *c, const struct cache_key *k, size_t size)
{
	uint32_t i1 = find(c, k);
	enum c_queue queue = CQ_NONE;
	uint8_t freq = 0;
	struct centry *e;
	bool ghost;

	if (i1 != 0) {
		queue = (enum c_queue)at(c, i1)->queue;
		freq = at(c, i1)->freq;
		e_remove(c, i1);
	}
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
	if (queue == CQ_NONE) {
		ghost = c->ghost[k->hash & c->mask] == k->hash;
		if (ghost)
			c->ghost[k->hash & c->mask] = 0;
		queue = ghost ? CQ_MAIN : CQ_SMALL;
	}
	q_push(c, queue == CQ_MAIN ? &c->main : &c->small, i1, queue);
	e->freq = freq;
	c->st.entries++;
	return i1;
}

/* How long the fails-th failure in a row is remembered: fail_ttl doubled
 * for each one before it, up to CACHE_FAIL_MAX_TTL (RFC 9520 §3.2). */
static uint32_t
fail_period(const struct cache *c, unsigned fails)
{
	uint64_t t = c->p.fail_ttl;

	while (fails-- > 1 && t < CACHE_FAIL_MAX_TTL)
		t *= 2;
	if (t > CACHE_FAIL_MAX_TTL)
		t = CACHE_FAIL_MAX_TTL;
	return t < c->p.fail_ttl ? c->p.fail_ttl : (uint32_t)t;
}

/* Stores a failure entry (no answer) for k, the fails-th in a row. */
static void
put_failure(struct cache *c, const struct cache_key *k, uint64_t now_ms,
    unsigned fails)
{
	size_t size = malloc_size(k->len);
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
	e->fails = (uint8_t)(fails > 255 ? 255 : fails);
	e->ttl = fail_period(c, fails);
	e->stored_ms = now_ms;
	e->expire_ms = now_ms + (uint64_t)e->ttl * 1000;
	c->st.bytes += size;
	c->st.inserts++;
}

/* An answer the rules keep out. When the authority answered (NOERROR or
 * NXDOMAIN), what it said replaces what was kept: an older answer is
 * dropped and no longer served stale (RFC 8767 §4 serves stale data only
 * when a refresh fails). */
static int
refuse(struct cache *c, const struct cache_key *k, bool authoritative)
{
	uint32_t i1;

	if (authoritative && (i1 = find(c, k)) != 0)
		e_remove(c, i1);
	c->st.not_cacheable++;
	return -E_DROP;
}

int
cache_insert(struct cache *c, const struct cache_key *k, const uint8_t *msg,
    size_t len, const struct dns_info *a, uint64_t now_ms)
{
	struct walk w;
	uint32_t ttl, hi, i1, t;
	unsigned rcode = DNS_RCODE(a->flags);
	size_t size, slen, i, j;
	struct centry *e;
	uint8_t *blob, *m;
	bool negative;

	/* An OPT with records after it (say a TSIG) is not cut here: the
	 * hit path reads a stored answer back as one without OPT. */
	if (DNS_OPCODE(a->flags) != 0 || (a->flags & DNS_FLAG_TC) ||
	    a->ext_rcode != 0 || a->qdcount != 1 ||
	    (a->has_opt && !a->opt_last))
		return refuse(c, k, false);
	if (rcode == DNS_RCODE_SERVFAIL) {
		cache_note_failure(c, k, now_ms);
		return 0;
	}
	if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN)
		return refuse(c, k, false);
	if (len > CACHE_ENTRY_MAX || walk_answer(msg, len, a, &w) != 0)
		return refuse(c, k, true);
	/* RFC 2308 §5: NXDOMAIN, NODATA and a CNAME chain that ends in
	 * either live as long as the SOA says (and no longer than the
	 * chain's records). */
	negative = rcode == DNS_RCODE_NXDOMAIN || !w.has_qtype;
	if ((negative && w.soa_off == 0) || (!negative && w.n == 0))
		return refuse(c, k, true);
	hi = k->local ? c->p.local_max_ttl : c->p.max_ttl;
	if (negative && hi > CACHE_NEG_MAX_TTL)
		hi = CACHE_NEG_MAX_TTL;
	ttl = negative && w.soa_neg < w.min_ttl ? w.soa_neg : w.min_ttl;
	if (ttl == 0 && c->p.min_ttl == 0)
		return refuse(c, k, true);
	ttl = clamp(ttl, c->p.min_ttl, hi);
	if (ttl == 0)
		return refuse(c, k, true);
	/* The upstream's OPT is hop-by-hop (padding, cookies, EDE): the
	 * client's is built anew for each client. It is cut when it is the
	 * last record, as every server puts it. */
	slen = a->has_opt && a->opt_last ? a->opt_off : len;
	size = w.n * 2 + k->len + slen;
	if ((blob = malloc(size)) == NULL)
		return -ENOMEM;
	memcpy(blob, w.offs, w.n * 2);
	memcpy(blob + w.n * 2, k->buf, k->len);
	m = blob + w.n * 2 + k->len;
	memcpy(m, msg, slen);
	if (slen != len) {
		uint16_t ar = (uint16_t)((m[10] << 8 | m[11]) - 1);

		m[10] = (uint8_t)(ar >> 8);
		m[11] = (uint8_t)ar;
	}
	/* A cached answer is not the authority speaking (RFC 1035 §4.1.1). */
	m[2] &= (uint8_t)~(DNS_FLAG_AA >> 8);
	/*
	 * Stored TTLs: one per RRset, its smallest (RFC 2181 §5.2), clamped
	 * and never below the entry's; the negative answer's SOA carries the
	 * negative TTL.
	 */
	for (i = 0; i < w.n; i++) {
		uint32_t set_min = UINT32_MAX;

		for (j = 0; j < w.n; j++) {
			if (w.set[j] != w.set[i])
				continue;
			t = get32(msg + w.offs[j]);
			if (t > 0x7fffffffU)
				t = 0;
			if (t < set_min)
				set_min = t;
		}
		if (negative && w.offs[i] == w.soa_off)
			set_min = ttl;
		put32(m + w.offs[i], clamp(set_min, ttl, hi > ttl ? hi : ttl));
	}
	if ((i1 = slot_for(c, k, malloc_size(size))) == 0) {
		free(blob);
		c->st.not_cacheable++;
		return -E_DROP;
	}
	e = at(c, i1);
	e->blob = blob;
	e->size = malloc_size(size);
	e->key_len = k->len;
	e->nttl = (uint16_t)w.n;
	e->msg_len = (uint32_t)slen;
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
		put_failure(c, k, now_ms, 1);
		return;
	}
	e = at(c, i1);
	if (e->failure) {
		/* A failure again within a period after the last one ran
		 * out doubles the wait; after a quiet spell it starts over. */
		if (now_ms >= e->expire_ms)
			put_failure(c, k, now_ms, now_ms < e->expire_ms +
			    (uint64_t)e->ttl * 1000 ? (unsigned)e->fails + 1 : 1);
		return;
	}
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
