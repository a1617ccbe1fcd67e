/*
 * The packet cache: whole answers kept by question, aged on the way out.
 * Pure (domain layer without I/O): no sockets, no loop, no globals; time
 * comes in as a millisecond argument, so the unit tests drive it with a
 * fake clock.
 *
 * Key: the question (name folded to lower case, type, class), the query
 * bits that change the answer (RD, CD, DO) and the route the query took:
 * an empty route for the DoT upstreams, the resolver's address for a
 * local-zone query. A DoT answer therefore never answers a local-zone
 * question, and two local resolvers never share an entry.
 *
 * What is kept, and for how long:
 * - NOERROR with records of the qtype: the smallest TTL of its records
 *   (OPT aside), clamped to [min_ttl, max_ttl] (local routes:
 *   local_max_ttl). A record TTL of 0 means "do not cache" and is honoured.
 * - NXDOMAIN, NODATA and a CNAME chain ending in either: min(SOA TTL, SOA
 *   MINIMUM) from the authority section (RFC 2308 §5), no longer than the
 *   chain's records, capped at CACHE_NEG_MAX_TTL; without a SOA the answer
 *   is not kept at all.
 * - SERVFAIL and synthesized failures: fail_ttl, doubled for each failure
 *   in a row up to CACHE_FAIL_MAX_TTL (RFC 9520 §3.2), and only where no
 *   data is kept for the key: a failed refresh never replaces an older
 *   answer (RFC 8767 §4).
 * - Never: TC set, opcode other than QUERY, any other RCODE, an extended
 *   RCODE, a name (owner, or in the rdata of a type with names) that
 *   reads through a TTL field, which ageing rewrites.
 * A NOERROR or NXDOMAIN answer that is not kept still drops what was kept
 * for the key: the authority answered, so the stale window ends.
 * Stored: the answer without the upstream's OPT (hop-by-hop; each client's
 * is rebuilt) and without AA (a cached answer is not authoritative), each
 * RRset with one TTL, its smallest (RFC 2181 §5.2), clamped and never
 * below the entry's; TTLs are lowered by the entry's age when served. AD
 * is kept as the upstream set it, for the caller to give only to clients
 * that asked (RFC 6840 §5.7).
 *
 * Serve-stale (RFC 8767): an entry stays stale_max seconds past its expiry;
 * a lookup then says CACHE_STALE and the caller decides (serve it with TTL
 * 30 when the upstreams fail or are slow).
 *
 * Eviction is S3-FIFO (Yang et al., SOSP 2023): new keys enter a small
 * FIFO (a tenth of the room); one that is asked for again before it leaves
 * moves to the main FIFO, others leave and are remembered in a ghost table
 * of hashes, so a key that returns soon enters the main FIFO directly. The
 * main FIFO gives each entry asked for since its last pass another round
 * (CLOCK). A scan of one-off names therefore passes through the small FIFO
 * without flushing the hot set. A hit moves nothing: it sets a 2-bit count;
 * a key moved to main keeps the asks beyond the first, and a refresh keeps
 * the entry's queue and count.
 *
 * Memory: every byte is charged to max_bytes: the entry array, hash
 * buckets and ghost table up front (cache_fixed_bytes), and per entry its
 * one allocation (TTL offsets, key, answer) as malloc rounds it.
 */
#ifndef PROXY_CACHE_H
#define PROXY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "stat.h"

#define CACHE_KEY_MAX	(DNS_NAME_MAX + 8 + 32)
#define CACHE_NEG_MAX_TTL 3600		/* cap on negative TTLs (unbound's) */
#define CACHE_STALE_TTL	30		/* TTL of a stale answer, RFC 8767 §4 */
#define CACHE_ENTRY_MAX	16384		/* largest answer kept, bytes */
#define CACHE_FAIL_MAX_TTL 300		/* backoff cap, RFC 9520 §3.2 */

struct cache;

struct cache_params {
	size_t		max_entries;	/* 0: no cache */
	size_t		max_bytes;	/* everything, the tables included */
	uint32_t	min_ttl, max_ttl;	/* clamps, seconds */
	uint32_t	local_max_ttl;		/* clamp for local routes */
	uint32_t	fail_ttl;		/* SERVFAIL and timeouts */
	uint32_t	stale_max;		/* seconds past expiry; 0: none */
};

struct cache_key {
	uint64_t	hash;
	uint16_t	len;
	bool		local;		/* a local-zone route */
	uint8_t		buf[CACHE_KEY_MAX];
};

enum cache_result {
	CACHE_MISS = 0,
	CACHE_FRESH,		/* answer it; hit.failure: answer SERVFAIL */
	CACHE_STALE,		/* expired, within stale_max */
};

/* What a lookup found. Pointers are borrowed until the next call that
 * changes the cache. */
struct cache_hit {
	const uint8_t	*msg;		/* the stored answer, TTLs as stored */
	size_t		 len;
	const uint16_t	*ttl_off;	/* offsets of its record TTLs */
	size_t		 nttl;
	uint32_t	 age;		/* seconds since it was stored */
	uint32_t	 ttl;		/* its lifetime, seconds */
	bool		 failure;	/* a cached failure (no msg) */
	bool		 prefetch;	/* fresh, in the last tenth of a TTL of
					 * at least 10 s */
	bool		 refresh_failed;	/* stale, and a refresh failed
						 * less than fail_ttl ago */
};

struct cache_stats {
	uint64_t	hits;		/* fresh entries found */
	uint64_t	misses;		/* lookups without a fresh entry */
	uint64_t	inserts;
	uint64_t	evictions;	/* entries pushed out for room */
	uint64_t	expired;	/* entries dropped past their stale window */
	uint64_t	not_cacheable;	/* answers the rules keep out */
	uint64_t	entries;	/* now */
	uint64_t	bytes;		/* now */
};

/* NULL when p->max_entries is 0 or on allocation failure (errno set). */
struct cache	*cache_new(const struct cache_params *p);
void		 cache_free(struct cache *);
/* Drops every entry (the upstream set changed). Stats are kept. */
void		 cache_clear(struct cache *);
/* Bytes a cache of p takes before it holds anything (its entry array,
 * hash buckets and ghost table): charged to max_bytes. */
size_t		 cache_fixed_bytes(const struct cache_params *p);
/* Takes p's TTL settings (the sizes stay). Entries keep the lifetime they
 * were stored with. */
void		 cache_set_ttls(struct cache *, const struct cache_params *p);
/* Carries from's counters (not its gauges) over to to: a resize. */
void		 cache_take_stats(struct cache *to, const struct cache *from);

/* Builds the key for query q over a route (NULL/0 for DoT, else the
 * resolver's address bytes, at most 32). seed keys the hash (random per
 * process, so nobody can aim names at one hash chain). */
void		 cache_key_make(struct cache_key *, uint64_t seed,
		    const struct dns_info *q, const void *route,
		    size_t route_len);

enum cache_result cache_lookup(struct cache *, const struct cache_key *,
		    uint64_t now_ms, struct cache_hit *out);

/*
 * Offers an answer (already checked against the question; a its parse)
 * for key. Returns 0 when kept, -E_DROP when the rules keep it out, or
 * -ENOMEM.
 */
int		 cache_insert(struct cache *, const struct cache_key *,
		    const uint8_t *msg, size_t len, const struct dns_info *a,
		    uint64_t now_ms);
/* A resolution failure for key (upstream SERVFAIL, timeout, every
 * upstream down): kept as a failure entry where no data is, else noted on
 * the data so stale answers are served without asking again for a while. */
void		 cache_note_failure(struct cache *, const struct cache_key *,
		    uint64_t now_ms);

/*
 * Writes hit's answer to out with every record TTL lowered by its age, or
 * set to CACHE_STALE_TTL when stale. Returns the length, or 0 if cap is
 * too small.
 */
size_t		 cache_render(const struct cache_hit *, bool stale, uint8_t *out,
		    size_t cap);

const struct cache_stats *cache_stats(const struct cache *);
/* Describes struct cache_stats for metrics. */
extern const struct stat_table cache_stat_table;

#endif
