/*
 * Query pipeline (see query.h). Owns the query table: chunks of struct
 * query, a free list, and 64-bit handles (generation << 32 | index) so a
 * stale handle from a late answer or a closed client finds nothing. Owns
 * the upstream pool it created and the packet cache. Never frees a query
 * from under a caller: every path that ends a query delivers first, then
 * releases it.
 *
 * Cache and coalescing. A query that misses the cache becomes the leader
 * of its key: it is the only one sent, and later identical questions join
 * it as waiters (any number: the table bounds them) instead of going
 * upstream. Its answer is offered to the cache and delivered to the
 * leader's client and to every waiter, each with its own ID, question
 * case, EDNS, size and AD bit (AD is asked for upstream on every query and
 * given only to clients that asked for it, RFC 6840 §5.7). A leader
 * may have no client of its own: a prefetch of an entry in the last tenth
 * of its TTL, or the refresh that goes on after a stale answer. When the
 * upstreams fail (or the client-response timer passes first) a query with
 * an expired entry at hand is answered from it (RFC 8767).
 */
#include "query.h"

#include <sys/random.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "ct.h"
#include "dns.h"
#include "errors.h"
#include "log.h"
#include "loop.h"
#include "plain.h"
#include "resolv.h"
#include "route.h"
#include "sock.h"
#include "tls.h"
#include "upstream.h"

#define Q_CHUNK		256
#define Q_MAX_CHUNKS	256		/* 65536 queries in flight at most */
#define Q_MAX_ATTEMPTS	3
#define Q_UDP_CAP	4096		/* most we send a UDP client */
/* The conntrack zone dotproxy-init puts redirected UDP flows in (its
 * RULES_CT_ZONE; init/ shares no code with proxy/, so it is repeated). */
#define Q_CT_ZONE	2
#define Q_LMAP		4096		/* in-flight leaders: hash buckets */

enum q_state {
	Q_FREE = 0,		/* on the free list */
	Q_WAIT_UPSTREAM,	/* sent over DoT, waiting for an answer */
	Q_WAIT_LOCAL,		/* sent in plain DNS to a local resolver */
	Q_WAIT_LEADER,		/* joined an identical query in flight */
	Q_WAIT_CT,		/* local, waiting for conntrack's answer */
};

struct query {
	enum q_state		 state;
	uint32_t		 gen;		/* handle generation */
	uint32_t		 next_free;	/* free list link, index + 1 */
	uint32_t		 idx;		/* place in the table */
	struct query_table	*qt;		/* borrowed: owner */
	struct query_origin	 origin;
	struct dns_info		 info;		/* the client's query */
	uint8_t			*msg;		/* owned: the client's query */
	size_t			 msg_len;
	uint8_t			*up_msg;	/* owned: what goes upstream */
	size_t			 up_len;
	struct loop_timer	 deadline;
	uint64_t		 start_ms;
	uint64_t		 start_us;	/* for the duration histogram */
	uint32_t		 tried;		/* upstreams that failed it */
	const struct up_pool	*tried_pool;	/* borrowed: whose numbers */
	unsigned		 attempts;
	struct cache_key	 key;		/* valid when has_key */
	bool			 has_key;
	bool			 local;		/* route: plain DNS */
	bool			 background;	/* no client (prefetch, refresh) */
	bool			 leader;	/* in the in-flight map */
	bool			 stale_ok;	/* an expired entry was at hand */
	uint32_t		 epoch;		/* cache epoch when sent */
	uint32_t		 lnext;		/* in-flight map chain, idx + 1 */
	uint32_t		 whead;		/* leader: first waiter, idx + 1 */
	uint32_t		 wnext, wprev;	/* waiter links, idx + 1 */
	uint32_t		 lead;		/* waiter: its leader, idx + 1 */
	unsigned		 nwaiters;
	struct loop_timer	 stale_timer;	/* client-response timer */
};

/* A pool replaced by a reload, draining before it is freed. */
struct q_retired {
	struct q_retired	*next;
	struct up_pool		*pool;		/* owned */
	struct tls_ctx		*tls_owned;	/* owned: the pool's, after a
						 * swap; NULL before (main owns
						 * the first) */
	struct tls_ctx		*tls;		/* owned */
	unsigned		 idle_ticks;	/* reaper ticks seen idle */
};

struct query_table {
	struct loop		*loop;		/* borrowed */
	const struct config	*cfg;		/* borrowed */
	struct up_pool		*pool;		/* owned */
	struct tls_ctx		*tls_owned;	/* owned: the pool's, after a
						 * swap; NULL before (main owns
						 * the first) */
	struct plain		*plain;		/* owned */
	struct ct		*ct;		/* owned */
	bool			 ct_refused;	/* no CAP_NET_ADMIN: not asked */
	const struct resolv	*rc;		/* borrowed */
	struct route		 route;
	struct cache		*cache;		/* owned; NULL when off */
	uint64_t		 batch_us;	/* query_batch_begin's clock */
	uint64_t		 batch_hits;	/* hits since then */
	bool			 in_batch;
	struct cache_params	 cp;		/* its settings */
	unsigned		 client_timeout_ms;	/* serve-stale timer */
	uint64_t		 seed;		/* keys the cache hash */
	uint32_t		 epoch;		/* bumped when the cache empties */
	struct cfg_upstream	 ups[CFG_MAX_UPSTREAMS];	/* the pool's set */
	size_t			 nups;
	uint32_t		 lmap[Q_LMAP];	/* in-flight leaders, idx + 1 */
	struct log_limit	 loglim;
	struct q_retired	*retired;	/* owned list: pools draining */
	struct loop_timer	 reap;		/* frees idle retired pools */
	struct query		*chunks[Q_MAX_CHUNKS];	/* owned */
	size_t			 nchunks;
	uint32_t		 free_head;	/* index + 1 */
	size_t			 inflight;
	struct query_frontend	 fe[2];		/* [0] UDP, [1] TCP */
	struct query_stats	 stats;
	uint8_t			 out[DNS_MSG_MAX];	/* scratch answer */
	uint8_t			 upbuf[DNS_MSG_MAX];	/* scratch query */
	uint8_t			 fit[DNS_MSG_MAX];	/* scratch: an answer
							 * cut to fit */
};

const char *const query_qtype_names[QQ_N] = {
	"A", "AAAA", "PTR", "SRV", "TXT", "MX", "CNAME", "NS", "SOA", "HTTPS",
	"other",
};
const char *const query_source_names[QS_N] = {
	"upstream", "local", "synthesized", "cache",
};

static int	q_on_answer(void *, uint64_t, const uint8_t *, size_t, int *);
static void	q_on_fail(void *, uint64_t, unsigned, bool, int);
static int	q_on_plain_answer(void *, uint64_t, const uint8_t *, size_t);
static void	q_on_reap(struct loop_timer *);
static void	q_on_plain_fail(void *, uint64_t, int);
static void	q_on_stale_timer(struct loop_timer *);
static void	q_on_ct(void *, uint64_t, int, const struct sockaddr_storage *,
		    socklen_t);

static struct query *
q_at(struct query_table *qt, uint32_t idx)
{
	return &qt->chunks[idx / Q_CHUNK][idx % Q_CHUNK];
}

static uint64_t
q_handle(const struct query *q)
{
	return (uint64_t)q->gen << 32 | q->idx;
}

static struct query *
q_lookup(struct query_table *qt, uint64_t h)
{
	uint32_t idx = (uint32_t)h;
	struct query *q;

	if (idx / Q_CHUNK >= qt->nchunks)
		return NULL;
	q = q_at(qt, idx);
	if (q->state == Q_FREE || q->gen != (uint32_t)(h >> 32))
		return NULL;
	return q;
}

static void
q_on_deadline(struct loop_timer *t);

static struct query *
q_alloc(struct query_table *qt)
{
	struct query *q;
	size_t i, base;

	if (qt->free_head == 0) {
		if (qt->nchunks == Q_MAX_CHUNKS)
			return NULL;
		if ((q = calloc(Q_CHUNK, sizeof(*q))) == NULL)
			return NULL;
		base = qt->nchunks * Q_CHUNK;
		qt->chunks[qt->nchunks++] = q;
		for (i = 0; i < Q_CHUNK; i++) {
			q[i].qt = qt;
			q[i].idx = (uint32_t)(base + i);
			q[i].deadline.cb = q_on_deadline;
			q[i].deadline.arg = &q[i];
			q[i].stale_timer.cb = q_on_stale_timer;
			q[i].stale_timer.arg = &q[i];
			q[i].next_free = i + 1 < Q_CHUNK ?
			    (uint32_t)(base + i + 2) : qt->free_head;
		}
		qt->free_head = (uint32_t)base + 1;
	}
	q = q_at(qt, qt->free_head - 1);
	qt->free_head = q->next_free;
	q->state = Q_WAIT_UPSTREAM;	/* the caller sets the path */
	q->gen++;
	q->tried = 0;
	q->tried_pool = qt->pool;
	q->attempts = 0;
	q->has_key = q->local = q->background = q->leader = false;
	q->stale_ok = false;
	q->lnext = q->whead = q->wnext = q->wprev = q->lead = 0;
	q->nwaiters = 0;
	qt->inflight++;
	return q;
}

/* The in-flight leader for key k, or NULL. */
static struct query *
q_find_leader(struct query_table *qt, const struct cache_key *k)
{
	uint32_t i1;

	for (i1 = qt->lmap[k->hash % Q_LMAP]; i1 != 0; i1 = q_at(qt, i1 - 1)->lnext) {
		struct query *l = q_at(qt, i1 - 1);

		if (l->key.hash == k->hash && l->key.len == k->len &&
		    l->epoch == qt->epoch &&
		    memcmp(l->key.buf, k->buf, k->len) == 0)
			return l;
	}
	return NULL;
}

static void
q_lead(struct query *q)
{
	struct query_table *qt = q->qt;
	uint32_t *b = &qt->lmap[q->key.hash % Q_LMAP];

	q->leader = true;
	q->lnext = *b;
	*b = q->idx + 1;
}

static void
q_unlead(struct query *q)
{
	struct query_table *qt = q->qt;
	uint32_t *pp = &qt->lmap[q->key.hash % Q_LMAP];

	while (*pp != 0 && *pp != q->idx + 1)
		pp = &q_at(qt, *pp - 1)->lnext;
	if (*pp != 0)
		*pp = q->lnext;
	q->leader = false;
	q->lnext = 0;
}

/* Adds waiter w to leader l. */
static void
q_join(struct query *l, struct query *w)
{
	struct query_table *qt = l->qt;

	w->state = Q_WAIT_LEADER;
	w->lead = l->idx + 1;
	w->wprev = 0;
	w->wnext = l->whead;
	if (l->whead != 0)
		q_at(qt, l->whead - 1)->wprev = w->idx + 1;
	l->whead = w->idx + 1;
	l->nwaiters++;
}

/* Takes waiter w off its leader's list. */
static void
q_leave(struct query *w)
{
	struct query_table *qt = w->qt;
	struct query *l;

	if (w->lead == 0)
		return;
	l = q_at(qt, w->lead - 1);
	if (w->wprev != 0)
		q_at(qt, w->wprev - 1)->wnext = w->wnext;
	else
		l->whead = w->wnext;
	if (w->wnext != 0)
		q_at(qt, w->wnext - 1)->wprev = w->wprev;
	l->nwaiters--;
	w->lead = w->wnext = w->wprev = 0;
}

static void	q_fail_why(struct query *, bool remember);

/* A resolution failure (see q_fail_why). */
static void
q_fail(struct query *q)
{
	q_fail_why(q, true);
}

static void
q_release(struct query *q)
{
	struct query_table *qt = q->qt;
	uint32_t idx = q->idx;

	loop_timer_stop(qt->loop, &q->deadline);
	loop_timer_stop(qt->loop, &q->stale_timer);
	if (q->leader)
		q_unlead(q);
	q_leave(q);
	/* Waiters left behind fail on their own (stale or SERVFAIL). */
	while (q->whead != 0) {
		struct query *w = q_at(qt, q->whead - 1);

		q_leave(w);
		q_fail(w);
	}
	free(q->msg);
	free(q->up_msg);
	q->msg = q->up_msg = NULL;
	q->state = Q_FREE;
	q->gen++;
	q->next_free = qt->free_head;
	qt->free_head = idx + 1;
	qt->inflight--;
}

static void
q_deliver(struct query_table *qt, const struct query_origin *o,
    enum query_source src, unsigned ext_rcode, const uint8_t *msg, size_t len)
{
	const struct query_frontend *fe = &qt->fe[o->tcp ? 1 : 0];

	if (len >= 4) {
		qt->stats.rcode[msg[3] & 0xf]++;
		qt->stats.responses[src][ext_rcode ? 16 : msg[3] & 0xf]++;
	}
	fe->deliver(fe->arg, o, msg, len);
}

/* Sends an error answer for info to o. */
static void
q_error(struct query_table *qt, const struct query_origin *o,
    const struct dns_info *info, unsigned rcode)
{
	size_t n;

	if (dns_build_error(info, rcode, qt->out, sizeof(qt->out), &n) == 0)
		q_deliver(qt, o, QS_SYNTH, rcode > 15, qt->out, n);
}

/*
 * Copies answer msg (parsed as a) to qt->fit without its additional
 * records (its OPT kept) and, when drop_ns, without its authority
 * records: names only point backwards, so what is kept stays whole.
 * Returns the new length, or 0 when the authority must stay (RFC 2181 §9:
 * the SOA of a negative answer, the DNSSEC proofs a DO client asked for)
 * or nothing would be dropped.
 */
static size_t
q_cut(struct query_table *qt, const uint8_t *msg, size_t len,
    const struct dns_info *a, bool drop_ns, bool keep_proofs)
{
	struct dns_cur c;
	size_t an_end = 0, end, n, i;
	bool ns_needed = keep_proofs;
	uint16_t type, rdlen;

	dns_cur_init(&c, msg, len);
	c.off = a->question_end;
	for (i = 0; i < (size_t)a->ancount + a->nscount; i++) {
		if (i == a->ancount)
			an_end = c.off;
		dns_cur_name(&c, NULL, NULL);
		type = dns_cur_u16(&c);
		dns_cur_skip(&c, 6);
		rdlen = dns_cur_u16(&c);
		dns_cur_skip(&c, rdlen);
		if (c.err != 0)
			return 0;
		if (i >= a->ancount && type == DNS_TYPE_SOA)
			ns_needed = true;
	}
	if (a->nscount == 0)
		an_end = c.off;
	if (drop_ns) {
		if (ns_needed || a->nscount == 0)
			return 0;
		end = an_end;
	} else {
		if (a->arcount == (a->has_opt ? 1 : 0))
			return 0;
		end = c.off;
	}
	memcpy(qt->fit, msg, end);
	n = end;
	if (drop_ns)
		qt->fit[8] = qt->fit[9] = 0;
	qt->fit[10] = 0;
	qt->fit[11] = 0;
	if (a->has_opt) {
		memcpy(qt->fit + n, msg + a->opt_off, a->opt_end - a->opt_off);
		n += a->opt_end - a->opt_off;
		qt->fit[11] = 1;
	}
	return n;
}

/*
 * Builds the answer for one client (its ID, question case, EDNS and size)
 * from answer msg (parsed as a) and delivers it. What does not fit a UDP
 * client goes in RFC 2181 §9's order: the additional records, then the
 * authority records where the answer does not need them; TC only when the
 * answer section itself does not fit. AD only to a client that asked for
 * it with AD or DO (RFC 6840 §5.7). Returns 0, or -E_TOOBIG when it cannot
 * be built (the caller answers SERVFAIL).
 */
static int
q_send_answer(struct query_table *qt, const struct query_origin *o,
    const uint8_t *cmsg, size_t clen, const struct dns_info *ci,
    const uint8_t *msg, size_t len, const struct dns_info *a,
    enum query_source src)
{
	struct dns_info fa;
	bool truncated = false;
	size_t n, fl;
	int step;

	if (dns_build_answer(msg, len, a, cmsg, clen, ci, o->limit, qt->out,
	    sizeof(qt->out), &n, &truncated) < 0)
		return -E_TOOBIG;
	for (step = 0; truncated && !o->tcp && step < 2; step++) {
		if ((fl = q_cut(qt, msg, len, a, step == 1, ci->do_bit)) == 0 ||
		    dns_parse_answer(qt->fit, fl, &fa) < 0)
			continue;
		if (dns_build_answer(qt->fit, fl, &fa, cmsg, clen, ci, o->limit,
		    qt->out, sizeof(qt->out), &n, &truncated) < 0)
			return -E_TOOBIG;
	}
	if (truncated)
		qt->stats.truncated++;
	if (!(ci->flags & DNS_FLAG_AD) && !ci->do_bit)
		qt->out[3] &= (uint8_t)~DNS_FLAG_AD;
	q_deliver(qt, o, src, a->ext_rcode, qt->out, n);
	return 0;
}

/*
 * Answers one client from a cache entry: the stored answer with its TTLs
 * aged (or 30 when stale) is parsed again and fitted to this client as a
 * fresh one would be. No allocation: the scratch buffers of the table.
 * Returns 0, or -E_TOOBIG (nothing sent).
 */
static int
q_send_cached(struct query_table *qt, const struct query_origin *o,
    const uint8_t *cmsg, size_t clen, const struct dns_info *ci,
    const struct cache_hit *h, bool stale)
{
	struct dns_info a;
	size_t n;

	/* Checked when it was stored: read back without a walk. */
	if ((n = cache_render(h, stale, qt->upbuf, sizeof(qt->upbuf))) == 0 ||
	    dns_parse_stored(qt->upbuf, n, ci->qname_len, &a) < 0)
		return -E_TOOBIG;
	/* Stored without the upstream's OPT; the key holds DO. */
	a.do_bit = ci->do_bit;
	return q_send_answer(qt, o, cmsg, clen, ci, qt->upbuf, n, &a,
	    QS_CACHE);
}

/* Logs a stale answer, at most a few lines a second. */
static void
q_log_stale(struct query_table *qt, const struct dns_info *info,
    const char *why)
{
	char name[DNS_NAME_MAX * 4 + 1] = "-";

	if (qt->cfg->log_queries)
		(void)dns_name_to_text(info->qname, info->qname_len, name,
		    sizeof(name));
	log_limited(&qt->loglim, loop_now(qt->loop), LOG_LVL_INFO,
	    "answered from the cache with a stale entry",
	    "name=%s qtype=%u reason=%s ttl=%d", name, info->qtype, why,
	    CACHE_STALE_TTL);
}

/* Answers q's client (not a background query's) with the stale entry of
 * its key. Returns 0 when it did. */
static int
q_answer_stale(struct query *q, const char *why)
{
	struct query_table *qt = q->qt;
	struct cache_hit h;

	if (q->background || !q->has_key || qt->cache == NULL ||
	    cache_lookup(qt->cache, &q->key, loop_now(qt->loop), &h) ==
	    CACHE_MISS || h.failure ||
	    q_send_cached(qt, &q->origin, q->msg, q->msg_len, &q->info, &h,
	    true) < 0)
		return -1;
	qt->stats.cache_stale++;
	q_log_stale(qt, &q->info, why);
	return 0;
}

/* Answers q with SERVFAIL and ends it. */
static void
q_servfail(struct query *q)
{
	struct query_table *qt = q->qt;

	if (!q->background) {
		qt->stats.servfail_synth++;
		q_error(qt, &q->origin, &q->info, DNS_RCODE_SERVFAIL);
		hist_observe(&qt->stats.duration, loop_clock_us() - q->start_us);
	}
	q_release(q);
}

/*
 * q could not be resolved: answer q and its waiters from a stale entry
 * where there is one, else SERVFAIL, and end them. remember: a real
 * resolution failure (every upstream failed, the deadline passed, an
 * upstream SERVFAIL), which the cache remembers; a local overload is not
 * one, and says nothing about the name.
 */
static void
q_fail_why(struct query *q, bool remember)
{
	struct query_table *qt = q->qt;

	if (remember && q->has_key && qt->cache != NULL &&
	    q->state != Q_WAIT_LEADER && q->epoch == qt->epoch)
		cache_note_failure(qt->cache, &q->key, loop_now(qt->loop));
	while (q->whead != 0) {
		struct query *w = q_at(qt, q->whead - 1);

		q_leave(w);
		q_fail_why(w, false);
	}
	if (q_answer_stale(q, "upstream_failed") == 0) {
		hist_observe(&qt->stats.duration, loop_clock_us() - q->start_us);
		q_release(q);
		return;
	}
	q_servfail(q);
}

/* The overload cause of a failed send, or -1 when it is no overload of
 * ours (every upstream down, the local resolver unreachable). */
static int
q_overload_cause(bool local, int err)
{
	if (err == -EBUSY)
		return local ? QO_PLAIN : QO_DOT;
	if (err == -ENOMEM || err == -EMFILE || err == -ENFILE ||
	    err == -ENOBUFS)
		return QO_MEMORY;
	return -1;
}

static void	q_log_overload(struct query_table *, const struct query_origin *,
		    const struct dns_info *, bool local, unsigned cause);

/* Counts and logs an overload of ours (cause: enum query_overload). */
static void
q_count_overload(struct query_table *qt, const struct query_origin *o,
    const struct dns_info *info, bool local, unsigned cause)
{
	qt->stats.overload++;
	qt->stats.overload_by[cause]++;
	q_log_overload(qt, o, info, local, cause);
}

/*
 * q could not be sent (err from q_send or up_send): a local overload
 * answers SERVFAIL (or stale) without being remembered, anything else is
 * a resolution failure.
 */
static void
q_send_failed(struct query *q, int err)
{
	int cause = q_overload_cause(q->local, err);

	if (cause < 0) {
		q_fail(q);
		return;
	}
	q_count_overload(q->qt, &q->origin, &q->info, q->local,
	    (unsigned)cause);
	q_fail_why(q, false);
}

static void
q_on_deadline(struct loop_timer *t)
{
	struct query *q = t->arg;

	q->qt->stats.timeouts++;
	q_fail(q);
}

/* The client-response timer (RFC 8767 §5): an expired answer now, the
 * fresh one, if it comes, to the cache. */
static void
q_on_stale_timer(struct loop_timer *t)
{
	struct query *q = t->arg;
	struct query_table *qt = q->qt;

	if (q_answer_stale(q, "slow_upstream") < 0)
		return;
	hist_observe(&qt->stats.duration, loop_clock_us() - q->start_us);
	if (q->state == Q_WAIT_LEADER)
		q_release(q);
	else
		q->background = true;	/* the refresh goes on */
}

/* True if sa is one of our own listen addresses (sending there loops). */
static bool
q_is_self(const struct query_table *qt, const struct sockaddr *sa)
{
	return route_is_self(&qt->route, sa);
}

/*
 * Where a local-zone query goes: the address the client originally sent it
 * to (TCP: SO_ORIGINAL_DST; UDP: conntrack, asked asynchronously: see
 * q_needs_ct and q_on_ct), else the first nameserver of resolv.conf.
 * Returns 0 with *dst set, or -E_UPSTREAM when there is none.
 */
static int
q_local_dst(struct query_table *qt, const struct query_origin *o,
    struct sockaddr_storage *dst, socklen_t *dstlen)
{
	if (o->orig_len > 0 &&
	    !q_is_self(qt, (const struct sockaddr *)&o->orig)) {
		memcpy(dst, &o->orig, o->orig_len);
		*dstlen = o->orig_len;
		qt->stats.orig_known++;
		return 0;
	}
	if (!o->tcp && (qt->ct == NULL || qt->ct_refused))
		qt->stats.captured[QC_UNKNOWN]++;
	if (qt->rc->nns == 0 ||
	    q_is_self(qt, (const struct sockaddr *)&qt->rc->ns[0]))
		return -E_UPSTREAM;
	memcpy(dst, &qt->rc->ns[0], qt->rc->ns_len[0]);
	*dstlen = qt->rc->ns_len[0];
	qt->stats.orig_fallback++;
	return 0;
}

/* True if a local-zone query's destination must come from conntrack. */
static bool
q_needs_ct(const struct query_table *qt, const struct query_origin *o)
{
	return !o->tcp && o->orig_len == 0 && qt->ct != NULL &&
	    !qt->ct_refused && o->local_len > 0;
}

static enum query_qtype
q_qtype(uint16_t t)
{
	switch (t) {
	case DNS_TYPE_A: return QQ_A;
	case DNS_TYPE_AAAA: return QQ_AAAA;
	case DNS_TYPE_PTR: return QQ_PTR;
	case DNS_TYPE_SRV: return QQ_SRV;
	case DNS_TYPE_TXT: return QQ_TXT;
	case DNS_TYPE_MX: return QQ_MX;
	case DNS_TYPE_CNAME: return QQ_CNAME;
	case DNS_TYPE_NS: return QQ_NS;
	case DNS_TYPE_SOA: return QQ_SOA;
	case DNS_TYPE_HTTPS: return QQ_HTTPS;
	default: return QQ_OTHER;
	}
}

/* The route part of a cache key: empty for DoT, the resolver's address
 * and port for plain DNS. */
static size_t
q_route_bytes(const struct sockaddr_storage *dst, uint8_t *out)
{
	if (dst->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)dst;

		out[0] = 4;
		memcpy(out + 1, &s->sin_addr, 4);
		memcpy(out + 5, &s->sin_port, 2);
		return 7;
	}
	if (dst->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)dst;

		out[0] = 6;
		memcpy(out + 1, &s->sin6_addr, 16);
		memcpy(out + 17, &s->sin6_port, 2);
		return 19;
	}
	return 0;
}

static void
q_log(struct query_table *qt, const struct query_origin *o,
    const struct dns_info *info, bool local, const struct sockaddr_storage *dst,
    const char *cache)
{
	char name[DNS_NAME_MAX * 4 + 1], to[80];

	/* Before anything else: this runs for every answer, cache hits
	 * included, and the buffers' initialisers alone cost a kilobyte of
	 * stores. */
	if (!log_enabled(LOG_LVL_DEBUG) && !qt->cfg->log_queries)
		return;
	memcpy(name, "-", 2);
	memcpy(to, "dot", 4);
	if (qt->cfg->log_queries)
		(void)dns_name_to_text(info->qname, info->qname_len, name,
		    sizeof(name));
	if (local)
		sock_addr_text((const struct sockaddr *)dst, to, sizeof(to));
	log_msg(qt->cfg->log_queries ? LOG_LVL_INFO : LOG_LVL_DEBUG,
	    "query", "name=%s qtype=%u transport=%s path=%s to=%s cache=%s",
	    name, info->qtype, o == NULL ? "-" : o->tcp ? "tcp" : "udp",
	    local ? "local" : "dot", to, cache);
}

const char *const query_overload_names[QO_N] = {
	"table", "dot", "plain", "memory",
};

/* The query log's line for a query refused for lack of room of ours. */
static void
q_log_overload(struct query_table *qt, const struct query_origin *o,
    const struct dns_info *info, bool local, unsigned cause)
{
	char name[DNS_NAME_MAX * 4 + 1];

	if (!log_enabled(LOG_LVL_DEBUG) && !qt->cfg->log_queries)
		return;
	memcpy(name, "-", 2);
	if (qt->cfg->log_queries)
		(void)dns_name_to_text(info->qname, info->qname_len, name,
		    sizeof(name));
	log_msg(qt->cfg->log_queries ? LOG_LVL_INFO : LOG_LVL_DEBUG,
	    "query", "name=%s qtype=%u transport=%s path=%s cache=- "
	    "rcode=SERVFAIL overload=%s", name, info->qtype,
	    o->tcp ? "tcp" : "udp", local ? "local" : "dot",
	    query_overload_names[cause]);
}

/*
 * Sends q (msg, info, route set) to the DoT pool or its local resolver.
 * Returns 0, or < 0 with q untouched (the caller ends it).
 */
static int
q_send(struct query *q, const struct sockaddr_storage *dst, socklen_t dstlen)
{
	struct query_table *qt = q->qt;
	size_t n;

	/* Padding and keepalive only on the TLS leg (RFC 7830 §6, 7828). */
	if (dns_build_query(q->msg, q->msg_len, &q->info, 0, !q->local,
	    !q->local, qt->upbuf, sizeof(qt->upbuf), &n) < 0 ||
	    (q->up_msg = malloc(n)) == NULL)
		return -ENOMEM;
	/* AD asked for on every query (RFC 6840 §5.7): the answer then
	 * says whether the data was validated, whoever asked first; each
	 * client gets AD only when it asked (q_send_answer). */
	qt->upbuf[3] |= DNS_FLAG_AD;
	memcpy(q->up_msg, qt->upbuf, n);
	q->up_len = n;
	q->epoch = qt->epoch;
	if (q->local) {
		q->state = Q_WAIT_LOCAL;
		qt->stats.local++;
		return plain_send(qt->plain, q_handle(q),
		    (const struct sockaddr *)dst, dstlen, q->up_msg, q->up_len);
	}
	q->state = Q_WAIT_UPSTREAM;
	qt->stats.dot++;
	return up_send(qt->pool, q_handle(q), q->up_msg, q->up_len, 0);
}

/* Copies the client's query into q. */
static int
q_take(struct query *q, const uint8_t *msg, size_t len,
    const struct dns_info *info)
{
	if ((q->msg = malloc(len)) == NULL)
		return -ENOMEM;
	memcpy(q->msg, msg, len);
	q->msg_len = len;
	q->info = *info;
	q->start_ms = loop_now(q->qt->loop);
	q->start_us = loop_clock_us();
	return 0;
}

/* Starts a query with no client that refreshes key (prefetch), unless
 * one is in flight already. */
static void
q_refresh(struct query_table *qt, const struct cache_key *key,
    const uint8_t *msg, size_t len, const struct dns_info *info, bool local,
    const struct sockaddr_storage *dst, socklen_t dstlen)
{
	struct query *q;

	if (q_find_leader(qt, key) != NULL || (q = q_alloc(qt)) == NULL)
		return;
	q->background = true;
	q->local = local;
	q->key = *key;
	q->has_key = true;
	if (q_take(q, msg, len, info) < 0 || q_send(q, dst, dstlen) < 0) {
		q_release(q);
		return;
	}
	qt->stats.cache_prefetch++;
	q_lead(q);
	loop_timer_set(qt->loop, &q->deadline, q->start_ms + qt->cfg->timeout_ms);
}

/* Arms q's client-response timer when an expired answer is at hand. */
static void
q_arm_stale(struct query *q)
{
	struct query_table *qt = q->qt;

	if (q->stale_ok && qt->client_timeout_ms < qt->cfg->timeout_ms)
		loop_timer_set(qt->loop, &q->stale_timer, q->start_ms +
		    qt->client_timeout_ms);
}

/*
 * A local-zone query whose resolver is now known (after conntrack): the
 * cache, a leader in flight, or the resolver. Ends q or leaves it waiting.
 */
static void
q_route_known(struct query *q, const struct sockaddr_storage *dst,
    socklen_t dstlen)
{
	struct query_table *qt = q->qt;
	enum cache_result cr = CACHE_MISS;
	struct cache_hit hit;
	struct query *l;
	int r;
	uint8_t rb[32];

	cache_key_make(&q->key, qt->seed, &q->info, rb, q_route_bytes(dst, rb));
	q->has_key = true;
	if (qt->cache != NULL)
		cr = cache_lookup(qt->cache, &q->key, loop_now(qt->loop), &hit);
	if (cr == CACHE_FRESH && hit.failure) {
		q_log(qt, &q->origin, &q->info, true, dst, "failure");
		q_servfail(q);
		return;
	}
	if (cr == CACHE_FRESH || (cr == CACHE_STALE && hit.refresh_failed)) {
		q_log(qt, &q->origin, &q->info, true, dst,
		    cr == CACHE_STALE ? "stale" : "hit");
		if (q_send_cached(qt, &q->origin, q->msg, q->msg_len, &q->info,
		    &hit, cr == CACHE_STALE) < 0) {
			q_servfail(q);
			return;
		}
		if (cr == CACHE_STALE) {
			qt->stats.cache_stale++;
			q_log_stale(qt, &q->info, "refresh_failed");
		}
		hist_observe(&qt->stats.duration, loop_clock_us() - q->start_us);
		q->has_key = false;
		q_release(q);
		return;
	}
	q->stale_ok = cr == CACHE_STALE;
	l = q_find_leader(qt, &q->key);
	if (l != NULL) {
		qt->stats.coalesced++;
		q_join(l, q);
		q_log(qt, &q->origin, &q->info, true, dst, "coalesced");
	} else {
		if ((r = q_send(q, dst, dstlen)) < 0) {
			q_send_failed(q, r);
			return;
		}
		if (l == NULL)
			q_lead(q);
		q_log(qt, &q->origin, &q->info, true, dst, qt->cache == NULL ?
		    "off" : cr == CACHE_STALE ? "expired" : "miss");
	}
	q_arm_stale(q);
}

/* A local-zone UDP query waits for conntrack to name its resolver. */
static int
q_start_ct(struct query_table *qt, const struct query_origin *o,
    const uint8_t *msg, size_t len, const struct dns_info *info)
{
	struct sockaddr_storage dst;
	socklen_t dstlen = 0;
	struct query *q;

	if ((q = q_alloc(qt)) == NULL) {
		q_count_overload(qt, o, info, true, QO_TABLE);
		qt->stats.servfail_synth++;
		q_error(qt, o, info, DNS_RCODE_SERVFAIL);
		return 0;
	}
	q->origin = *o;
	q->local = true;
	if (q_take(q, msg, len, info) < 0) {
		q_servfail(q);
		return 0;
	}
	q->state = Q_WAIT_CT;
	loop_timer_set(qt->loop, &q->deadline, q->start_ms + qt->cfg->timeout_ms);
	if (ct_lookup(qt->ct, (const struct sockaddr *)&o->local,
	    (const struct sockaddr *)&o->peer, Q_CT_ZONE, q_handle(q)) == 0)
		return 0;
	/* Too many lookups in flight: resolv.conf. */
	qt->stats.captured[QC_UNKNOWN]++;
	if (q_local_dst(qt, o, &dst, &dstlen) < 0) {
		q_servfail(q);
		return 0;
	}
	q_route_known(q, &dst, dstlen);
	return 0;
}

/* Conntrack's answer for a local-zone UDP query: now it can go. */
static void
q_on_ct(void *arg, uint64_t h, int err, const struct sockaddr_storage *ct_dst,
    socklen_t ct_len)
{
	struct query_table *qt = arg;
	struct query *q = q_lookup(qt, h);
	struct sockaddr_storage dst;
	socklen_t dstlen = 0;

	if (q == NULL || q->state != Q_WAIT_CT)
		return;		/* timed out meanwhile */
	if (err == 0)
		qt->stats.captured[route_classify(&qt->route,
		    (const struct sockaddr *)ct_dst)]++;
	else
		qt->stats.captured[QC_UNKNOWN]++;
	if (err == 0 && !q_is_self(qt, (const struct sockaddr *)ct_dst)) {
		qt->stats.orig_known++;
		q_route_known(q, ct_dst, ct_len);
		return;
	}
	if (err == -EPERM && !qt->ct_refused) {
		log_info("UDP original destination unavailable",
		    "reason=\"conntrack needs CAP_NET_ADMIN\" "
		    "fallback=resolv.conf");
		qt->ct_refused = true;
	}
	if (qt->rc->nns == 0 ||
	    q_is_self(qt, (const struct sockaddr *)&qt->rc->ns[0])) {
		q_servfail(q);
		return;
	}
	memcpy(&dst, &qt->rc->ns[0], qt->rc->ns_len[0]);
	dstlen = qt->rc->ns_len[0];
	qt->stats.orig_fallback++;
	q_route_known(q, &dst, dstlen);
}

int
query_submit(struct query_table *qt, const uint8_t *msg, size_t len,
    struct query_origin *o)
{
	struct sockaddr_storage dst;
	socklen_t dstlen = 0;
	struct dns_info info;
	struct cache_key key;
	struct cache_hit hit;
	struct query *q, *l = NULL;
	enum route_kind rk;
	enum cache_result cr = CACHE_MISS;
	uint8_t rb[32];
	size_t rlen = 0;
	bool local;
	int r;

	if (o->tcp)
		qt->stats.queries_tcp++;
	else
		qt->stats.queries_udp++;
	r = dns_parse_query(msg, len, &info);
	o->limit = o->tcp ? DNS_MSG_MAX : dns_client_limit(&info);
	if (o->limit > Q_UDP_CAP && !o->tcp)
		o->limit = Q_UDP_CAP;
	switch (r) {
	case 0:
		break;
	case -E_FORMERR:
		qt->stats.formerr++;
		q_error(qt, o, &info, DNS_RCODE_FORMERR);
		return 0;
	case -E_NOTIMP:
		qt->stats.formerr++;
		q_error(qt, o, &info, DNS_RCODE_NOTIMP);
		return 0;
	case -E_BADVERS:
		qt->stats.formerr++;
		q_error(qt, o, &info, DNS_RCODE_BADVERS);
		return 0;
	default:
		qt->stats.dropped++;
		return -E_DROP;
	}
	qt->stats.by_type[o->tcp][o->peer.ss_family == AF_INET6][q_qtype(info.qtype)]++;
	rk = route_decide(&qt->route, &info, o->from_self || (!o->tcp &&
	    plain_inflight(qt->plain) > 0 && plain_owns_addr(qt->plain,
	    (const struct sockaddr *)&o->peer)));
	if (rk == ROUTE_LOOP) {
		/* Our own query came back: the redirect does not exclude
		 * us. Answer rather than loop. */
		qt->stats.loops++;
		log_limited(&qt->loglim, loop_now(qt->loop), LOG_LVL_WARN,
		    "query from the proxy itself: forwarding loop",
		    "hint=\"run dotproxy as the UID dotproxy-init excludes\"");
		q_error(qt, o, &info, DNS_RCODE_SERVFAIL);
		qt->stats.servfail_synth++;
		return 0;
	}
	local = rk == ROUTE_LOCAL;
	if (o->orig_len > 0)
		qt->stats.captured[route_classify(&qt->route,
		    (const struct sockaddr *)&o->orig)]++;
	else if (!o->tcp && !local)
		qt->stats.captured[QC_UNKNOWN]++;
	if (local && q_needs_ct(qt, o))
		return q_start_ct(qt, o, msg, len, &info);
	if (local && q_local_dst(qt, o, &dst, &dstlen) < 0) {
		qt->stats.servfail_synth++;
		q_error(qt, o, &info, DNS_RCODE_SERVFAIL);
		return 0;
	}
	if (local)
		rlen = q_route_bytes(&dst, rb);
	cache_key_make(&key, qt->seed, &info, rb, rlen);
	if (qt->cache != NULL)
		cr = cache_lookup(qt->cache, &key, loop_now(qt->loop), &hit);
	if (cr == CACHE_FRESH && hit.failure) {
		q_log(qt, o, &info, local, &dst, "failure");
		qt->stats.servfail_synth++;
		q_error(qt, o, &info, DNS_RCODE_SERVFAIL);
		return 0;
	}
	if (cr == CACHE_FRESH || (cr == CACHE_STALE && hit.refresh_failed)) {
		uint64_t t0 = qt->in_batch ? 0 : loop_clock_us();

		if (q_send_cached(qt, o, msg, len, &info, &hit,
		    cr == CACHE_STALE) < 0) {
			qt->stats.servfail_synth++;
			q_error(qt, o, &info, DNS_RCODE_SERVFAIL);
			return 0;
		}
		if (qt->in_batch)
			qt->batch_hits++;
		else
			hist_observe(&qt->stats.duration, loop_clock_us() - t0);
		q_log(qt, o, &info, local, &dst, cr == CACHE_STALE ? "stale" :
		    "hit");
		if (cr == CACHE_STALE) {
			qt->stats.cache_stale++;
			q_log_stale(qt, &info, "refresh_failed");
		} else if (hit.prefetch)
			q_refresh(qt, &key, msg, len, &info, local, &dst, dstlen);
		return 0;
	}
	l = q_find_leader(qt, &key);
	if ((q = q_alloc(qt)) == NULL) {
		q_count_overload(qt, o, &info, local, QO_TABLE);
		qt->stats.servfail_synth++;
		q_error(qt, o, &info, DNS_RCODE_SERVFAIL);
		return 0;
	}
	q->origin = *o;
	q->local = local;
	q->key = key;
	q->has_key = true;
	q->stale_ok = cr == CACHE_STALE;
	if (q_take(q, msg, len, &info) < 0) {
		q_servfail(q);
		return 0;
	}
	if (l != NULL) {
		qt->stats.coalesced++;
		q_join(l, q);
		q_log(qt, o, &info, local, &dst, "coalesced");
	} else {
		if ((r = q_send(q, &dst, dstlen)) < 0) {
			q_send_failed(q, r);
			return 0;
		}
		if (l == NULL)
			q_lead(q);
		q_log(qt, o, &info, local, &dst, qt->cache == NULL ? "off" :
		    cr == CACHE_STALE ? "expired" : "miss");
	}
	loop_timer_set(qt->loop, &q->deadline, q->start_ms + qt->cfg->timeout_ms);
	q_arm_stale(q);
	return 0;
}

void
query_batch_begin(struct query_table *qt)
{
	qt->in_batch = true;
	qt->batch_hits = 0;
	qt->batch_us = loop_clock_us();
}

void
query_batch_end(struct query_table *qt)
{
	if (!qt->in_batch)
		return;
	qt->in_batch = false;
	if (qt->batch_hits > 0)
		hist_observe_n(&qt->stats.duration,
		    loop_clock_us() - qt->batch_us, qt->batch_hits);
}

/* Delivers a's answer to q's client (when it has one) and every waiter,
 * and ends them. */
static void
q_finish(struct query *q, const uint8_t *msg, size_t len,
    const struct dns_info *a)
{
	struct query_table *qt = q->qt;
	enum query_source src = q->local ? QS_LOCAL : QS_UPSTREAM;

	while (q->whead != 0) {
		struct query *w = q_at(qt, q->whead - 1);

		q_leave(w);
		if (q_send_answer(qt, &w->origin, w->msg, w->msg_len, &w->info,
		    msg, len, a, src) < 0) {
			q_servfail(w);
			continue;
		}
		qt->stats.answered++;
		hist_observe(&qt->stats.duration, loop_clock_us() - w->start_us);
		q_release(w);
	}
	if (q->background) {
		q_release(q);
		return;
	}
	if (q_send_answer(qt, &q->origin, q->msg, q->msg_len, &q->info, msg,
	    len, a, src) < 0) {
		q_servfail(q);
		return;
	}
	qt->stats.answered++;
	hist_observe(&qt->stats.duration, loop_clock_us() - q->start_us);
	q_release(q);
}

/* Checks an answer against q and delivers it. Returns 0 when q ended,
 * -E_MISMATCH when the answer is not for q (q goes on waiting). */
static int
q_answer(struct query *q, const uint8_t *msg, size_t len, int *keepalive)
{
	struct query_table *qt = q->qt;
	struct dns_info a;

	unsigned rcode;
	bool bits_match;

	if (dns_parse_answer(msg, len, &a) < 0 || !dns_question_equal(&q->info, &a))
		return -E_MISMATCH;
	/*
	 * The key holds RD, CD and DO besides the question: a late answer
	 * on a reused ID to a query that differed in them must not be
	 * stored under this one's key. Every server copies RD (RFC 1035),
	 * so an RD that differs is another query's answer; CD (RFC 4035
	 * §3.2.2) and DO (RFC 3225) some servers drop, so those answers are
	 * delivered but not cached.
	 */
	if (!dns_answer_questionless(&a) &&
	    ((a.flags ^ q->info.flags) & DNS_FLAG_RD))
		return -E_MISMATCH;
	bits_match = dns_answer_questionless(&a) ||
	    (!((a.flags ^ q->info.flags) & DNS_FLAG_CD) &&
	    (a.has_opt ? a.do_bit == q->info.do_bit : !q->info.do_bit));
	if (keepalive != NULL)
		*keepalive = a.keepalive;
	rcode = DNS_RCODE(a.flags);
	if (q->has_key && qt->cache != NULL && q->epoch == qt->epoch) {
		/* Any RCODE but NOERROR and NXDOMAIN is a failed refresh:
		 * an expired answer at hand is better (RFC 8767 §4). */
		if (((rcode != DNS_RCODE_NOERROR &&
		    rcode != DNS_RCODE_NXDOMAIN) || a.ext_rcode != 0) &&
		    cache_lookup(qt->cache, &q->key, loop_now(qt->loop),
		    &(struct cache_hit){ 0 }) == CACHE_STALE) {
			q_fail(q);
			return 0;
		}
		if (bits_match)
			(void)cache_insert(qt->cache, &q->key, msg, len, &a,
			    loop_now(qt->loop));
	}
	q_finish(q, msg, len, &a);
	return 0;
}

static int
q_on_answer(void *arg, uint64_t h, const uint8_t *msg, size_t len,
    int *keepalive)
{
	struct query *q = q_lookup(arg, h);

	if (q == NULL || q->state != Q_WAIT_UPSTREAM)
		return -E_GONE;
	return q_answer(q, msg, len, keepalive);
}

static int
q_on_plain_answer(void *arg, uint64_t h, const uint8_t *msg, size_t len)
{
	struct query *q = q_lookup(arg, h);

	if (q == NULL || q->state != Q_WAIT_LOCAL)
		return -E_GONE;
	return q_answer(q, msg, len, NULL);
}

static void
q_on_plain_fail(void *arg, uint64_t h, int err)
{
	struct query *q = q_lookup(arg, h);

	(void)err;
	if (q != NULL && q->state == Q_WAIT_LOCAL)
		q_fail(q);
}

static void
q_on_fail(void *arg, uint64_t h, unsigned up, bool failed, int err)
{
	struct query_table *qt = arg;
	struct query *q = q_lookup(qt, h);
	int r;

	(void)err;
	if (q == NULL || q->state != Q_WAIT_UPSTREAM)
		return;
	if (q->tried_pool != qt->pool) {
		/* It failed on a pool a reload retired: that pool's upstream
		 * numbers mean nothing in the new one. */
		q->tried = 0;
		q->tried_pool = qt->pool;
	} else if (failed && up < 32)
		q->tried |= 1u << up;
	if (loop_now(qt->loop) >= q->start_ms + qt->cfg->timeout_ms) {
		/* The pool's dead-peer timer ran out with our deadline: no
		 * time is left for another try, do not send it again. */
		qt->stats.timeouts++;
		q_fail(q);
		return;
	}
	if (++q->attempts >= Q_MAX_ATTEMPTS) {
		q_fail(q);
		return;
	}
	if ((r = up_send(qt->pool, h, q->up_msg, q->up_len, q->tried)) < 0)
		q_send_failed(q, r);
}

/* The cache's settings from the configuration. */
static struct cache_params
q_cache_params(const struct config *cfg)
{
	struct cache_params p = {
		.max_entries = cfg->cache_size,
		.max_bytes = cfg->cache_bytes,
		.min_ttl = cfg->cache_min_ttl,
		.max_ttl = cfg->cache_max_ttl,
		.local_max_ttl = cfg->local_cache_max_ttl,
		.fail_ttl = cfg->cache_servfail_ttl,
		.stale_max = cfg->cache_stale_max,
	};

	return p;
}

/* Remembers the upstream set the cache's answers came from. */
static void
q_keep_upstreams(struct query_table *qt, const struct config *cfg)
{
	memcpy(qt->ups, cfg->upstream, sizeof(qt->ups));
	qt->nups = cfg->nupstream;
}

struct query_table *
query_table_new(struct loop *loop, struct tls_ctx *tls,
    const struct config *cfg, const struct resolv *rc)
{
	struct query_table *qt;
	struct up_callbacks cb;
	struct plain_callbacks pcb;
	struct cache_params cp = q_cache_params(cfg);

	if ((qt = calloc(1, sizeof(*qt))) == NULL)
		return NULL;
	qt->loop = loop;
	qt->cfg = cfg;
	qt->rc = rc;
	qt->reap.cb = q_on_reap;
	qt->reap.arg = qt;
	cb.on_answer = q_on_answer;
	cb.on_fail = q_on_fail;
	cb.arg = qt;
	pcb.on_answer = q_on_plain_answer;
	pcb.on_fail = q_on_plain_fail;
	pcb.arg = qt;
	if (getrandom(&qt->seed, sizeof(qt->seed), 0) != sizeof(qt->seed))
		qt->seed = loop_clock_us();	/* only before boot seeding */
	if ((qt->pool = up_pool_new(loop, tls, cfg, &cb)) == NULL ||
	    (qt->plain = plain_new(loop, cfg->timeout_ms, cfg->max_plain,
	    &pcb)) == NULL ||
	    (cp.max_entries > 0 && (qt->cache = cache_new(&cp)) == NULL)) {
		query_table_free(qt);
		return NULL;
	}
	q_keep_upstreams(qt, cfg);
	qt->cp = cp;
	qt->client_timeout_ms = cfg->cache_client_timeout_ms;
	route_init(&qt->route, cfg, rc);
	/* Only needed, and only possible, for local zones in a namespace
	 * where we hold CAP_NET_ADMIN; a failure just means resolv.conf. */
	if (qt->route.nzones > 0 || cfg->transparent)
		qt->ct = ct_open(loop, q_on_ct, qt);
	return qt;
}

/*
 * Frees retired pools that have been idle for two ticks: a tick apart, no
 * hook or callback of theirs can still be queued in the loop.
 */
static void
q_on_reap(struct loop_timer *t)
{
	struct query_table *qt = t->arg;
	struct q_retired **pp = &qt->retired, *r;

	while ((r = *pp) != NULL) {
		if (up_pool_idle(r->pool) && ++r->idle_ticks >= 2) {
			*pp = r->next;
			up_pool_free(r->pool);
			tls_ctx_free(r->tls);
			free(r);
			continue;
		}
		pp = &r->next;
	}
	if (qt->retired != NULL)
		loop_timer_set(qt->loop, &qt->reap, loop_now(qt->loop) + 500);
}

int
query_swap_upstreams(struct query_table *qt, struct tls_ctx *tls,
    const struct config *cfg)
{
	struct up_callbacks cb;
	struct q_retired *r;
	struct up_pool *np;

	cb.on_answer = q_on_answer;
	cb.on_fail = q_on_fail;
	cb.arg = qt;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	if ((np = up_pool_new(qt->loop, tls, cfg, &cb)) == NULL) {
		free(r);
		return -ENOMEM;
	}
	r->pool = qt->pool;
	r->tls = qt->tls_owned;
	qt->pool = np;
	qt->tls_owned = tls;
	/* Answers from another set of upstreams are not ours to keep. */
	if (qt->cache != NULL && (cfg->nupstream != qt->nups ||
	    memcmp(cfg->upstream, qt->ups, sizeof(qt->ups)) != 0)) {
		cache_clear(qt->cache);
		qt->epoch++;
		log_info("cache emptied", "reason=\"the upstreams changed\"");
	}
	q_keep_upstreams(qt, cfg);
	up_pool_shutdown(r->pool);
	r->next = qt->retired;
	qt->retired = r;
	if (!loop_timer_armed(&qt->reap))
		loop_timer_set(qt->loop, &qt->reap, loop_now(qt->loop) + 500);
	return 0;
}

int
query_cache_check(const struct config *cfg, char *err, size_t errlen)
{
	struct cache_params p = q_cache_params(cfg);
	size_t fixed;

	if (p.max_entries == 0 || (fixed = cache_fixed_bytes(&p)) < p.max_bytes)
		return 0;
	(void)snprintf(err, errlen, "--cache-bytes %zu leaves nothing for "
	    "answers: the tables of --cache-size %zu take %zu bytes",
	    p.max_bytes, p.max_entries, fixed);
	return -E_USAGE;
}

int
query_set_cache(struct query_table *qt, const struct config *cfg)
{
	struct cache_params np = q_cache_params(cfg);
	struct cache *nc = NULL;

	qt->client_timeout_ms = cfg->cache_client_timeout_ms;
	if (np.max_entries == qt->cp.max_entries &&
	    np.max_bytes == qt->cp.max_bytes) {
		if (memcmp(&np, &qt->cp, sizeof(np)) == 0)
			return 0;
		/* Lifetimes change in place; entries keep the one they were
		 * stored with. */
		if (qt->cache != NULL)
			cache_set_ttls(qt->cache, &np);
		qt->cp = np;
		log_info("cache settings applied", "min_ttl=%u max_ttl=%u "
		    "local_max_ttl=%u servfail_ttl=%u stale_max=%u",
		    np.min_ttl, np.max_ttl, np.local_max_ttl, np.fail_ttl,
		    np.stale_max);
		return 0;
	}
	if (np.max_entries > 0 && (nc = cache_new(&np)) == NULL)
		return errno == EINVAL ? -E_USAGE : -ENOMEM;
	/* A new size is a new cache: the old answers go, the counters
	 * stay (they only ever grow). */
	if (nc != NULL && qt->cache != NULL)
		cache_take_stats(nc, qt->cache);
	cache_free(qt->cache);
	qt->cache = nc;
	qt->cp = np;
	qt->epoch++;
	log_info("cache resized and emptied", "entries=%zu bytes=%zu",
	    np.max_entries, np.max_bytes);
	return 0;
}

void
query_table_free(struct query_table *qt)
{
	size_t c, i;

	if (qt == NULL)
		return;
	loop_timer_stop(qt->loop, &qt->reap);
	while (qt->retired != NULL) {
		struct q_retired *r = qt->retired;

		qt->retired = r->next;
		up_pool_free(r->pool);
		tls_ctx_free(r->tls);
		free(r);
	}
	for (c = 0; c < qt->nchunks; c++) {
		for (i = 0; i < Q_CHUNK; i++) {
			struct query *q = &qt->chunks[c][i];

			loop_timer_stop(qt->loop, &q->deadline);
			loop_timer_stop(qt->loop, &q->stale_timer);
			free(q->msg);
			free(q->up_msg);
		}
		free(qt->chunks[c]);
	}
	up_pool_free(qt->pool);
	tls_ctx_free(qt->tls_owned);
	plain_free(qt->plain);
	ct_close(qt->ct);
	cache_free(qt->cache);
	free(qt);
}

void
query_set_frontend(struct query_table *qt, bool tcp,
    const struct query_frontend *fe)
{
	qt->fe[tcp ? 1 : 0] = *fe;
}

size_t
query_inflight(const struct query_table *qt)
{
	return qt->inflight;
}

void
query_fail_all(struct query_table *qt)
{
	size_t c, i;

	for (c = 0; c < qt->nchunks; c++)
		for (i = 0; i < Q_CHUNK; i++)
			if (qt->chunks[c][i].state != Q_FREE)
				q_servfail(&qt->chunks[c][i]);
}

struct up_pool *
query_pool(struct query_table *qt)
{
	return qt->pool;
}

#define QROW(name, labels, field, help) \
	STAT_ROW(name, labels, STAT_COUNTER, struct query_stats, field, help)
static const struct stat_desc query_rows[] = {
	QROW("dotproxy_truncated_total", NULL, truncated,
	    "UDP answers cut to the client's size with TC set."),
	QROW("dotproxy_timeouts_total", NULL, timeouts,
	    "Queries whose deadline passed before an answer came."),
	QROW("dotproxy_servfail_synthesized_total", NULL, servfail_synth,
	    "SERVFAIL answers the proxy made itself (failures, overload, loops)."),
	QROW("dotproxy_malformed_total", "reason=\"formerr\"", formerr,
	    "Bad input answered with an error or dropped, by reason."),
	QROW("dotproxy_malformed_total", "reason=\"dropped\"", dropped, NULL),
	QROW("dotproxy_dropped_total", "reason=\"overload\"", overload,
	    "Queries or clients given up on, by reason."),
	QROW("dotproxy_dropped_total", "reason=\"loop\"", loops, NULL),
	QROW("dotproxy_overload_total", "cause=\"table\"", overload_by[QO_TABLE],
	    "Queries answered SERVFAIL for lack of room of ours, by cause "
	    "(never remembered by the cache)."),
	QROW("dotproxy_overload_total", "cause=\"dot\"", overload_by[QO_DOT],
	    NULL),
	QROW("dotproxy_overload_total", "cause=\"plain\"",
	    overload_by[QO_PLAIN], NULL),
	QROW("dotproxy_overload_total", "cause=\"memory\"",
	    overload_by[QO_MEMORY], NULL),
	QROW("dotproxy_forwarded_total", "path=\"dot\"", dot,
	    "Queries sent on, by path (DoT upstreams or a local resolver)."),
	QROW("dotproxy_forwarded_total", "path=\"local\"", local, NULL),
	QROW("dotproxy_local_queries_total", "resolver=\"original\"",
	    orig_known,
	    "Local-zone queries sent in plain DNS, by how the resolver was chosen."),
	QROW("dotproxy_local_queries_total", "resolver=\"resolv_conf\"",
	    orig_fallback, NULL),
	QROW("dotproxy_cache_stale_total", NULL, cache_stale,
	    "Answers served from an expired cache entry (RFC 8767)."),
	QROW("dotproxy_cache_prefetches_total", NULL, cache_prefetch,
	    "Background refreshes of cache entries near their expiry."),
	QROW("dotproxy_cache_coalesced_total", NULL, coalesced,
	    "Queries that joined an identical one in flight."),
};
const struct stat_table query_stat_table = STAT_TABLE(query_rows);

const struct query_stats *
query_stats(const struct query_table *qt)
{
	return &qt->stats;
}

const struct plain_stats *
query_plain_stats(const struct query_table *qt)
{
	return plain_stats(qt->plain);
}

const struct cache_stats *
query_cache_stats(const struct query_table *qt)
{
	return qt->cache != NULL ? cache_stats(qt->cache) : NULL;
}

const struct nl_stats *
query_ct_stats(const struct query_table *qt)
{
	return qt->ct != NULL ? ct_stats(qt->ct) : NULL;
}
