/*
 * Query pipeline (see query.h). Owns the query table: chunks of struct
 * query, a free list, and 64-bit handles (generation << 32 | index) so a
 * stale handle from a late answer or a closed client finds nothing. Owns
 * the upstream pool it created. Never frees a query from under a caller:
 * every path that ends a query delivers first, then releases it.
 */
#include "query.h"

#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ct.h"
#include "dns.h"
#include "errors.h"
#include "log.h"
#include "loop.h"
#include "plain.h"
#include "resolv.h"
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

enum q_state {
	Q_FREE = 0,		/* on the free list */
	Q_WAIT_UPSTREAM,	/* sent over DoT, waiting for an answer */
	Q_WAIT_LOCAL,		/* sent in plain DNS to a local resolver */
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
	struct cfg_zone		 zones[CFG_MAX_ZONES + RESOLV_MAX_SEARCH + 96];
	size_t			 nzones;	/* local zones, all sources */
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
};

const char *const query_qtype_names[QQ_N] = {
	"A", "AAAA", "PTR", "SRV", "TXT", "MX", "CNAME", "NS", "SOA", "HTTPS",
	"other",
};
const char *const query_source_names[QS_N] = {
	"upstream", "local", "synthesized",
};
const char *const query_capture_names[QC_N] = {
	"direct", "resolv_conf", "loopback", "private", "other", "unknown",
};

static int	q_on_answer(void *, uint64_t, const uint8_t *, size_t, int *);
static void	q_on_fail(void *, uint64_t, unsigned, bool, int);
static int	q_on_plain_answer(void *, uint64_t, const uint8_t *, size_t);
static void	q_on_reap(struct loop_timer *);
static enum query_capture q_classify(const struct query_table *,
		    const struct sockaddr *);
static void	q_on_plain_fail(void *, uint64_t, int);
static void	q_on_ct(void *, uint64_t, int, const struct sockaddr_storage *,
		    socklen_t);

/*
 * Reverse zones of address ranges that never leave a cluster or a host:
 * RFC 1918, loopback, link-local, ULA and IPv6 link-local (and, added in a
 * loop, the shared 100.64/10). Queries for them must not reach a public
 * resolver.
 */
static const char *const private_reverse[] = {
	"10.in-addr.arpa", "168.192.in-addr.arpa", "127.in-addr.arpa",
	"254.169.in-addr.arpa", "16.172.in-addr.arpa", "17.172.in-addr.arpa",
	"18.172.in-addr.arpa", "19.172.in-addr.arpa", "20.172.in-addr.arpa",
	"21.172.in-addr.arpa", "22.172.in-addr.arpa", "23.172.in-addr.arpa",
	"24.172.in-addr.arpa", "25.172.in-addr.arpa", "26.172.in-addr.arpa",
	"27.172.in-addr.arpa", "28.172.in-addr.arpa", "29.172.in-addr.arpa",
	"30.172.in-addr.arpa", "31.172.in-addr.arpa", "c.f.ip6.arpa",
	"d.f.ip6.arpa", "8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa",
	"b.e.f.ip6.arpa",
};

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
	qt->inflight++;
	return q;
}

static void
q_release(struct query *q)
{
	struct query_table *qt = q->qt;
	uint32_t idx = q->idx;

	loop_timer_stop(qt->loop, &q->deadline);
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

/* Answers q with SERVFAIL and ends it. */
static void
q_servfail(struct query *q)
{
	struct query_table *qt = q->qt;

	qt->stats.servfail_synth++;
	q_error(qt, &q->origin, &q->info, DNS_RCODE_SERVFAIL);
	hist_observe(&qt->stats.duration, loop_clock_us() - q->start_us);
	q_release(q);
}

static void
q_on_deadline(struct loop_timer *t)
{
	struct query *q = t->arg;

	q->qt->stats.timeouts++;
	q_servfail(q);
}

/* True if the question stays inside the cluster or host: a local zone,
 * or (transparent use) a single-label name. */
static bool
q_is_local(const struct query_table *qt, const struct dns_info *info)
{
	size_t i;

	if (qt->cfg->transparent && dns_name_labels(info->qname,
	    info->qname_len) == 1)
		return true;
	for (i = 0; i < qt->nzones; i++)
		if (dns_name_in_zone(info->qname, info->qname_len,
		    qt->zones[i].name, qt->zones[i].len))
			return true;
	return false;
}

/* True if sa is one of our own listen addresses (sending there loops). */
static bool
q_is_self(const struct query_table *qt, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < qt->cfg->nlisten; i++)
		if (sock_addr_equal(sa, (const struct sockaddr *)
		    &qt->cfg->listen[i].ss))
			return true;
	return false;
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

/* The per-query log line: dst is the plain resolver, NULL for DoT. */
static void
q_log_query(const struct query *q, const struct sockaddr_storage *dst)
{
	const struct query_table *qt = q->qt;
	char name[DNS_NAME_MAX * 4 + 1] = "-", to[80] = "dot";

	if (!log_enabled(LOG_LVL_DEBUG) && !qt->cfg->log_queries)
		return;
	if (qt->cfg->log_queries)
		(void)dns_name_to_text(q->info.qname, q->info.qname_len, name,
		    sizeof(name));
	if (dst != NULL)
		sock_addr_text((const struct sockaddr *)dst, to, sizeof(to));
	log_msg(qt->cfg->log_queries ? LOG_LVL_INFO : LOG_LVL_DEBUG, "query",
	    "name=%s qtype=%u transport=%s path=%s to=%s", name, q->info.qtype,
	    q->origin.tcp ? "tcp" : "udp", dst != NULL ? "local" : "dot", to);
}

/* Sends a local-zone query in plain DNS to dst. May end q. */
static void
q_send_local(struct query *q, const struct sockaddr_storage *dst,
    socklen_t dstlen)
{
	struct query_table *qt = q->qt;

	q->state = Q_WAIT_LOCAL;
	q_log_query(q, dst);
	if (plain_send(qt->plain, q_handle(q), (const struct sockaddr *)dst,
	    dstlen, q->up_msg, q->up_len) < 0)
		q_servfail(q);
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
		qt->stats.captured[q_classify(qt, (const struct sockaddr *)ct_dst)]++;
	else
		qt->stats.captured[QC_UNKNOWN]++;
	if (err == 0 && !q_is_self(qt, (const struct sockaddr *)ct_dst)) {
		qt->stats.orig_known++;
		q_send_local(q, ct_dst, ct_len);
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
	q_send_local(q, &dst, dstlen);
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

/* Sorts an original destination for the captured-queries counter. */
static enum query_capture
q_classify(const struct query_table *qt, const struct sockaddr *sa)
{
	size_t i;

	if (q_is_self(qt, sa))
		return QC_DIRECT;
	for (i = 0; i < qt->rc->nns; i++) {
		const struct sockaddr *ns = (const struct sockaddr *)&qt->rc->ns[i];

		if (sa->sa_family == ns->sa_family &&
		    (sa->sa_family == AF_INET ?
		    ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)(const void *)ns)->sin_addr.s_addr :
		    memcmp(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    &((const struct sockaddr_in6 *)(const void *)ns)->sin6_addr, 16) == 0))
			return QC_RESOLV;
	}
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);

		if ((a >> 24) == 127)
			return QC_LOOPBACK;
		if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 ||
		    (a >> 16) == 0xa9fe || (a >> 22) == (100u << 2 | 1))
			return QC_PRIVATE;
		return QC_OTHER;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		static const uint8_t lo[16] = { [15] = 1 };

		if (memcmp(b, lo, 16) == 0)
			return QC_LOOPBACK;
		if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
			return QC_PRIVATE;
		return QC_OTHER;
	}
	return QC_UNKNOWN;
}

int
query_submit(struct query_table *qt, const uint8_t *msg, size_t len,
    const struct query_origin *o)
{
	struct query_origin origin = *o;
	struct sockaddr_storage dst;
	socklen_t dstlen = 0;
	struct dns_info info;
	struct query *q;
	bool local, ct = false;
	size_t n;
	int r;

	if (o->tcp)
		qt->stats.queries_tcp++;
	else
		qt->stats.queries_udp++;
	memset(&info, 0, sizeof(info));
	r = dns_parse_query(msg, len, &info);
	origin.limit = o->tcp ? DNS_MSG_MAX : dns_client_limit(&info);
	if (origin.limit > Q_UDP_CAP && !o->tcp)
		origin.limit = Q_UDP_CAP;
	switch (r) {
	case 0:
		break;
	case -E_FORMERR:
		qt->stats.formerr++;
		q_error(qt, &origin, &info, DNS_RCODE_FORMERR);
		return 0;
	case -E_NOTIMP:
		qt->stats.formerr++;
		q_error(qt, &origin, &info, DNS_RCODE_NOTIMP);
		return 0;
	case -E_BADVERS:
		qt->stats.formerr++;
		q_error(qt, &origin, &info, DNS_RCODE_BADVERS);
		return 0;
	default:
		qt->stats.dropped++;
		return -E_DROP;
	}
	qt->stats.by_type[o->tcp][o->peer.ss_family == AF_INET6][q_qtype(info.qtype)]++;
	if (o->from_self || (!o->tcp && plain_inflight(qt->plain) > 0 &&
	    plain_owns_addr(qt->plain, (const struct sockaddr *)&o->peer))) {
		/* Our own query came back: the redirect does not exclude
		 * us. Answer rather than loop. */
		qt->stats.loops++;
		log_limited(&qt->loglim, loop_now(qt->loop), LOG_LVL_WARN,
		    "query from the proxy itself: forwarding loop",
		    "hint=\"run dotproxy as the UID dotproxy-init excludes\"");
		q_error(qt, &origin, &info, DNS_RCODE_SERVFAIL);
		qt->stats.servfail_synth++;
		return 0;
	}
	local = q_is_local(qt, &info);
	if (origin.orig_len > 0)
		qt->stats.captured[q_classify(qt, (const struct sockaddr *)&origin.orig)]++;
	else if (!o->tcp && !local)
		qt->stats.captured[QC_UNKNOWN]++;
	if (local && q_needs_ct(qt, &origin))
		ct = true;
	else if (local && q_local_dst(qt, &origin, &dst, &dstlen) < 0) {
		qt->stats.servfail_synth++;
		q_error(qt, &origin, &info, DNS_RCODE_SERVFAIL);
		return 0;
	}
	if ((q = q_alloc(qt)) == NULL) {
		qt->stats.overload++;
		q_error(qt, &origin, &info, DNS_RCODE_SERVFAIL);
		return 0;
	}
	q->origin = origin;
	q->info = info;
	q->start_ms = loop_now(qt->loop);
	q->start_us = loop_clock_us();
	q->state = local ? Q_WAIT_LOCAL : Q_WAIT_UPSTREAM;
	/* Padding and keepalive only on the TLS leg (RFC 7830 §6, 7828). */
	if (dns_build_query(msg, len, &info, 0, !local, !local, qt->upbuf,
	    sizeof(qt->upbuf), &n) < 0 ||
	    (q->msg = malloc(len)) == NULL || (q->up_msg = malloc(n)) == NULL) {
		q_servfail(q);
		return 0;
	}
	memcpy(q->msg, msg, len);
	q->msg_len = len;
	memcpy(q->up_msg, qt->upbuf, n);
	q->up_len = n;
	if (local && ct) {
		qt->stats.local++;
		q->state = Q_WAIT_CT;
		if ((r = ct_lookup(qt->ct, (const struct sockaddr *)&origin.local,
		    (const struct sockaddr *)&origin.peer, Q_CT_ZONE,
		    q_handle(q))) < 0) {
			/* Too many lookups in flight: resolv.conf. */
			qt->stats.captured[QC_UNKNOWN]++;
			if ((r = q_local_dst(qt, &origin, &dst, &dstlen)) == 0) {
				q->state = Q_WAIT_LOCAL;
				ct = false;
				r = plain_send(qt->plain, q_handle(q),
				    (const struct sockaddr *)&dst, dstlen,
				    q->up_msg, q->up_len);
			}
		}
	} else if (local) {
		qt->stats.local++;
		r = plain_send(qt->plain, q_handle(q),
		    (const struct sockaddr *)&dst, dstlen, q->up_msg, q->up_len);
	} else {
		qt->stats.dot++;
		r = up_send(qt->pool, q_handle(q), q->up_msg, q->up_len, 0);
	}
	if (r < 0) {
		q_servfail(q);
		return 0;
	}
	if (!ct)
		q_log_query(q, local ? &dst : NULL);
	loop_timer_set(qt->loop, &q->deadline, q->start_ms + qt->cfg->timeout_ms);
	return 0;
}

/* Checks an answer against q and delivers it. Returns 0 when q ended,
 * -E_MISMATCH when the answer is not for q (q goes on waiting). */
static int
q_answer(struct query *q, const uint8_t *msg, size_t len, int *keepalive)
{
	struct query_table *qt = q->qt;
	struct dns_info a;
	bool truncated = false;
	size_t n;

	if (dns_parse_answer(msg, len, &a) < 0 || !dns_question_equal(&q->info, &a))
		return -E_MISMATCH;
	if (keepalive != NULL)
		*keepalive = a.keepalive;
	if (dns_build_answer(msg, len, &a, q->msg, q->msg_len, &q->info,
	    q->origin.limit, qt->out, sizeof(qt->out), &n, &truncated) < 0) {
		q_servfail(q);
		return 0;
	}
	if (truncated)
		qt->stats.truncated++;
	qt->stats.answered++;
	q_deliver(qt, &q->origin, q->state == Q_WAIT_LOCAL ? QS_LOCAL :
	    QS_UPSTREAM, a.ext_rcode, qt->out, n);
	hist_observe(&qt->stats.duration, loop_clock_us() - q->start_us);
	q_release(q);
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
		q_servfail(q);
}

static void
q_on_fail(void *arg, uint64_t h, unsigned up, bool failed, int err)
{
	struct query_table *qt = arg;
	struct query *q = q_lookup(qt, h);

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
	if (++q->attempts >= Q_MAX_ATTEMPTS ||
	    up_send(qt->pool, h, q->up_msg, q->up_len, q->tried) < 0)
		q_servfail(q);
}

static void
q_add_zone(struct query_table *qt, const uint8_t *name, size_t len)
{
	if (qt->nzones == sizeof(qt->zones) / sizeof(qt->zones[0]))
		return;
	memcpy(qt->zones[qt->nzones].name, name, len);
	qt->zones[qt->nzones++].len = len;
}

struct query_table *
query_table_new(struct loop *loop, struct tls_ctx *tls,
    const struct config *cfg, const struct resolv *rc)
{
	struct query_table *qt;
	struct up_callbacks cb;
	struct plain_callbacks pcb;
	uint8_t wire[DNS_NAME_MAX];
	size_t i, wl;

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
	if ((qt->pool = up_pool_new(loop, tls, cfg, &cb)) == NULL ||
	    (qt->plain = plain_new(loop, cfg->timeout_ms, cfg->max_plain,
	    &pcb)) == NULL) {
		query_table_free(qt);
		return NULL;
	}
	for (i = 0; i < cfg->nzones; i++)
		q_add_zone(qt, cfg->zones[i].name, cfg->zones[i].len);
	if (cfg->transparent) {
		for (i = 0; i < rc->nsearch; i++)
			q_add_zone(qt, rc->search[i], rc->search_len[i]);
		for (i = 0; i < sizeof(private_reverse) / sizeof(private_reverse[0]); i++)
			if (dns_name_from_text(private_reverse[i], wire, &wl) == 0)
				q_add_zone(qt, wire, wl);
		/* 100.64.0.0/10, shared address space (RFC 6598). */
		for (i = 64; i < 128; i++) {
			char z[32];

			if (snprintf(z, sizeof(z), "%zu.100.in-addr.arpa", i) > 0 &&
			    dns_name_from_text(z, wire, &wl) == 0)
				q_add_zone(qt, wire, wl);
		}
	}
	/* Only needed, and only possible, for local zones in a namespace
	 * where we hold CAP_NET_ADMIN; a failure just means resolv.conf. */
	if (qt->nzones > 0 || cfg->transparent)
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
	up_pool_shutdown(r->pool);
	r->next = qt->retired;
	qt->retired = r;
	if (!loop_timer_armed(&qt->reap))
		loop_timer_set(qt->loop, &qt->reap, loop_now(qt->loop) + 500);
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
			free(q->msg);
			free(q->up_msg);
		}
		free(qt->chunks[c]);
	}
	up_pool_free(qt->pool);
	tls_ctx_free(qt->tls_owned);
	plain_free(qt->plain);
	ct_close(qt->ct);
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

const struct query_stats *
query_stats(const struct query_table *qt)
{
	return &qt->stats;
}
