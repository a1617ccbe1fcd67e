/*
 * The query pipeline: one struct query per client query in flight, found by
 * a 64-bit handle (never by pointer from outside). It parses the query,
 * answers malformed ones itself, sends the rest to the upstream pool, checks
 * the answer's question, builds the client's answer (ID, question case,
 * EDNS, truncation) and hands it to the front end that took the query.
 * Pipeline layer: calls upstream, loop and dns below it; front ends above
 * it only through the delivery callbacks they registered.
 */
#ifndef PROXY_QUERY_H
#define PROXY_QUERY_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "hist.h"
#include "route.h"
#include "stat.h"

struct config;
struct loop;
struct query_table;
struct resolv;
struct tls_ctx;
struct nl_stats;
struct plain_stats;
struct up_pool;

/* Where a query came from; the query layer keeps it and gives it back. */
struct query_origin {
	bool			tcp;		/* else UDP */
	uint64_t		conn;		/* TCP: the front end's client handle */
	unsigned		listener;	/* UDP: listener index */
	struct sockaddr_storage	peer;		/* UDP: the client */
	socklen_t		peer_len;
	size_t			limit;		/* most bytes the client takes */
	struct sockaddr_storage	local;		/* where the query arrived */
	socklen_t		local_len;
	struct sockaddr_storage	orig;		/* TCP: original destination */
	socklen_t		orig_len;	/* 0 when unknown */
	bool			from_self;	/* TCP: the peer is our own UID */
};

struct query_frontend {
	/* Sends msg (borrowed for the call) to the client of origin. */
	void	(*deliver)(void *arg, const struct query_origin *,
		    const uint8_t *msg, size_t len);
	void	*arg;		/* borrowed: the front end */
};

/* Label indexes for the counters below. */
enum query_qtype {
	QQ_A = 0, QQ_AAAA, QQ_PTR, QQ_SRV, QQ_TXT, QQ_MX, QQ_CNAME, QQ_NS,
	QQ_SOA, QQ_HTTPS, QQ_OTHER, QQ_N
};
enum query_source { QS_UPSTREAM = 0, QS_LOCAL, QS_SYNTH, QS_CACHE, QS_N };
/* Why a query was refused for lack of room of our own: the query table
 * full, every DoT connection's ID map or write buffer full, more than
 * --max-plain local queries in flight, or memory and descriptors. */
enum query_overload { QO_TABLE = 0, QO_DOT, QO_PLAIN, QO_MEMORY, QO_N };
extern const char *const query_overload_names[QO_N];

extern const char *const query_qtype_names[QQ_N];
extern const char *const query_source_names[QS_N];

struct query_stats {
	uint64_t	by_type[2][2][QQ_N];	/* [tcp][ipv6][qtype] */
	uint64_t	responses[QS_N][17];	/* [source][rcode; 16 = extended] */
	struct hist	duration;		/* arrival to answer sent */
	uint64_t	captured[QC_N];
	uint64_t	queries_udp, queries_tcp;
	uint64_t	answered;	/* upstream answers delivered */
	uint64_t	rcode[16];	/* answers sent, by RCODE (low 4 bits) */
	uint64_t	servfail_synth;	/* SERVFAILs we made */
	uint64_t	formerr;	/* FORMERR/NOTIMP/BADVERS we made */
	uint64_t	dropped;	/* malformed and dropped */
	uint64_t	truncated;	/* UDP answers sent with TC */
	uint64_t	timeouts;
	uint64_t	overload;	/* refused for lack of room */
	uint64_t	overload_by[QO_N];	/* ... by cause */
	uint64_t	local;		/* sent in plain DNS to a local resolver */
	uint64_t	dot;		/* sent over DoT */
	uint64_t	loops;		/* queries from the proxy itself */
	uint64_t	orig_known;	/* local queries with a known original dst */
	uint64_t	orig_fallback;	/* ... sent to resolv.conf instead */
	uint64_t	cache_stale;	/* answers served from expired entries */
	uint64_t	cache_prefetch;	/* background refreshes started */
	uint64_t	coalesced;	/* queries that joined one in flight */
};

/* Makes the table, its upstream pool and its plain forwarder. cfg, tls
 * and rc (resolv.conf as read at start) are borrowed for its life. NULL on
 * failure. */
struct query_table *query_table_new(struct loop *, struct tls_ctx *,
		    const struct config *, const struct resolv *rc);
/* Frees every query without answering and the pool. */
void		 query_table_free(struct query_table *);
void		 query_set_frontend(struct query_table *, bool tcp,
		    const struct query_frontend *);

/*
 * Takes one client query (msg borrowed for the call). Malformed queries
 * are answered or dropped at once (the answer may be delivered before this
 * returns); others are sent upstream. o->limit is set here (the most
 * bytes this client takes); the rest of *o is only read.
 * Returns 0 when exactly one answer has been or will be delivered, or
 * -E_DROP when none will.
 */
int		 query_submit(struct query_table *, const uint8_t *msg,
		    size_t len, struct query_origin *o);
/*
 * A front end that reads queries in batches brackets each batch with these.
 * The cache hits in it are then timed together, two clock reads for the
 * batch instead of two per hit: each is observed in the duration histogram
 * as the batch's time from its read to its end, which bounds its own.
 * Outside a batch each hit is timed on its own.
 */
void		 query_batch_begin(struct query_table *);
void		 query_batch_end(struct query_table *);
size_t		 query_inflight(const struct query_table *);
/*
 * Replaces the upstream pool with one built from cfg's upstreams over tls
 * (ownership of tls passes to the table). The old pool stops taking
 * queries, finishes those it carries and is freed, with its TLS context,
 * once idle. Returns 0 or -ENOMEM (nothing changed).
 */
int		 query_swap_upstreams(struct query_table *, struct tls_ctx *tls,
		    const struct config *cfg);
/* -E_USAGE with a line in err when cfg's cache byte bound cannot even
 * hold the cache's tables, else 0. */
int		 query_cache_check(const struct config *cfg, char *err,
		    size_t errlen);
/*
 * A reload's cache settings: TTL clamps, the failure and stale windows
 * and the client-response timer change in place; a new --cache-size or
 * --cache-bytes replaces the cache (emptied; its counters kept). Logs what
 * changed. Returns 0, or < 0 (nothing changed) when the new cache cannot
 * be made.
 */
int		 query_set_cache(struct query_table *, const struct config *cfg);
/* Answers every query in flight with SERVFAIL (shutdown deadline). */
void		 query_fail_all(struct query_table *);
struct up_pool	*query_pool(struct query_table *);
const struct query_stats *query_stats(const struct query_table *);
/* Describes the scalar counters of struct query_stats for metrics. */
extern const struct stat_table query_stat_table;
/* The plain forwarder's counters. */
const struct plain_stats *query_plain_stats(const struct query_table *);
/* The cache's counters, or NULL when the cache is off. */
const struct cache_stats *query_cache_stats(const struct query_table *);
/* The conntrack lookups' counters, or NULL when they are not in use. */
const struct nl_stats *query_ct_stats(const struct query_table *);

#endif
