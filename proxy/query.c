/*
 * Query pipeline (see query.h). Owns the query table: chunks of struct
 * query, a free list, and 64-bit handles (generation << 32 | index) so a
 * stale handle from a late answer or a closed client finds nothing. Owns
 * the upstream pool it created. Never frees a query from under a caller:
 * every path that ends a query delivers first, then releases it.
 */
#include "query.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "errors.h"
#include "log.h"
#include "loop.h"
#include "upstream.h"

#define Q_CHUNK		256
#define Q_MAX_CHUNKS	256		/* 65536 queries in flight at most */
#define Q_MAX_ATTEMPTS	3
#define Q_UDP_CAP	4096		/* most we send a UDP client */

enum q_state {
	Q_FREE = 0,		/* on the free list */
	Q_WAIT_UPSTREAM,	/* sent, waiting for an answer */
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
	uint32_t		 tried;		/* upstreams that failed it */
	unsigned		 attempts;
};

struct query_table {
	struct loop		*loop;		/* borrowed */
	const struct config	*cfg;		/* borrowed */
	struct up_pool		*pool;		/* owned */
	struct query		*chunks[Q_MAX_CHUNKS];	/* owned */
	size_t			 nchunks;
	uint32_t		 free_head;	/* index + 1 */
	size_t			 inflight;
	struct query_frontend	 fe[2];		/* [0] UDP, [1] TCP */
	struct query_stats	 stats;
	uint8_t			 out[DNS_MSG_MAX];	/* scratch answer */
	uint8_t			 upbuf[DNS_MSG_MAX];	/* scratch query */
};

static int	q_on_answer(void *, uint64_t, const uint8_t *, size_t, int *);
static void	q_on_fail(void *, uint64_t, unsigned, bool, int);

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
	q->state = Q_WAIT_UPSTREAM;
	q->gen++;
	q->tried = 0;
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
    const uint8_t *msg, size_t len)
{
	const struct query_frontend *fe = &qt->fe[o->tcp ? 1 : 0];

	if (len >= 4)
		qt->stats.rcode[msg[3] & 0xf]++;
	fe->deliver(fe->arg, o, msg, len);
}

/* Sends an error answer for info to o. */
static void
q_error(struct query_table *qt, const struct query_origin *o,
    const struct dns_info *info, unsigned rcode)
{
	size_t n;

	if (dns_build_error(info, rcode, qt->out, sizeof(qt->out), &n) == 0)
		q_deliver(qt, o, qt->out, n);
}

/* Answers q with SERVFAIL and ends it. */
static void
q_servfail(struct query *q)
{
	struct query_table *qt = q->qt;

	qt->stats.servfail_synth++;
	q_error(qt, &q->origin, &q->info, DNS_RCODE_SERVFAIL);
	q_release(q);
}

static void
q_on_deadline(struct loop_timer *t)
{
	struct query *q = t->arg;

	q->qt->stats.timeouts++;
	q_servfail(q);
}

int
query_submit(struct query_table *qt, const uint8_t *msg, size_t len,
    const struct query_origin *o)
{
	struct query_origin origin = *o;
	struct dns_info info;
	struct query *q;
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
	if ((q = q_alloc(qt)) == NULL) {
		qt->stats.overload++;
		q_error(qt, &origin, &info, DNS_RCODE_SERVFAIL);
		return 0;
	}
	q->origin = origin;
	q->info = info;
	q->start_ms = loop_now(qt->loop);
	if (dns_build_query(msg, len, &info, 0, true, true, qt->upbuf,
	    sizeof(qt->upbuf), &n) < 0 ||
	    (q->msg = malloc(len)) == NULL || (q->up_msg = malloc(n)) == NULL) {
		q_servfail(q);
		return 0;
	}
	memcpy(q->msg, msg, len);
	q->msg_len = len;
	memcpy(q->up_msg, qt->upbuf, n);
	q->up_len = n;
	if (up_send(qt->pool, q_handle(q), q->up_msg, q->up_len, 0) < 0) {
		q_servfail(q);
		return 0;
	}
	loop_timer_set(qt->loop, &q->deadline, q->start_ms + qt->cfg->timeout_ms);
	return 0;
}

static int
q_on_answer(void *arg, uint64_t h, const uint8_t *msg, size_t len,
    int *keepalive)
{
	struct query_table *qt = arg;
	struct query *q = q_lookup(qt, h);
	struct dns_info a;
	bool truncated = false;
	size_t n;

	if (q == NULL)
		return -E_GONE;
	if (dns_parse_answer(msg, len, &a) < 0 || !dns_question_equal(&q->info, &a))
		return -E_MISMATCH;
	*keepalive = a.keepalive;
	if (dns_build_answer(msg, len, &a, q->msg, q->msg_len, &q->info,
	    q->origin.limit, qt->out, sizeof(qt->out), &n, &truncated) < 0) {
		q_servfail(q);
		return 0;
	}
	if (truncated)
		qt->stats.truncated++;
	qt->stats.answered++;
	q_deliver(qt, &q->origin, qt->out, n);
	q_release(q);
	return 0;
}

static void
q_on_fail(void *arg, uint64_t h, unsigned up, bool failed, int err)
{
	struct query_table *qt = arg;
	struct query *q = q_lookup(qt, h);

	(void)err;
	if (q == NULL)
		return;
	if (failed && up < 32)
		q->tried |= 1u << up;
	if (++q->attempts >= Q_MAX_ATTEMPTS ||
	    up_send(qt->pool, h, q->up_msg, q->up_len, q->tried) < 0)
		q_servfail(q);
}

struct query_table *
query_table_new(struct loop *loop, struct tls_ctx *tls, const struct config *cfg)
{
	struct query_table *qt;
	struct up_callbacks cb;

	if ((qt = calloc(1, sizeof(*qt))) == NULL)
		return NULL;
	qt->loop = loop;
	qt->cfg = cfg;
	cb.on_answer = q_on_answer;
	cb.on_fail = q_on_fail;
	cb.arg = qt;
	if ((qt->pool = up_pool_new(loop, tls, cfg, &cb)) == NULL) {
		free(qt);
		return NULL;
	}
	return qt;
}

void
query_table_free(struct query_table *qt)
{
	size_t c, i;

	if (qt == NULL)
		return;
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
