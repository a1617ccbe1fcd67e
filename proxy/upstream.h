/*
 * The DoT upstream pool: for each configured upstream a few persistent TLS
 * connections, each carrying many queries at once with its own random wire
 * IDs, answers matched by ID on that connection and handed to the query
 * layer, which checks the question. Back-off on failure, with a fresh query
 * always allowed to probe again. Domain layer: calls loop, sock and tls
 * below it, and the query layer only through the callbacks it registered.
 */
#ifndef PROXY_UPSTREAM_H
#define PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct config;
struct loop;
struct tls_ctx;
struct up_pool;

struct up_callbacks {
	/*
	 * An answer arrived for handle on a connection where that wire ID
	 * was outstanding. msg is borrowed for the call. Return 0 to accept
	 * it, -E_MISMATCH to reject it (the query stays outstanding), or
	 * -E_GONE when the handle is no longer known (a late answer). Set
	 * *keepalive to the answer's edns-tcp-keepalive (100 ms units) or
	 * leave it -1.
	 */
	int	(*on_answer)(void *arg, uint64_t handle, const uint8_t *msg,
		    size_t len, int *keepalive);
	/*
	 * The query could not be completed on upstream up: its connection
	 * failed to open or authenticate (failed true) or was lost after it
	 * worked (failed false). The callee may call up_send() again.
	 */
	void	(*on_fail)(void *arg, uint64_t handle, unsigned up, bool failed,
		    int err);
	void	*arg;		/* borrowed: the query table */
};

/* Per-upstream counters, read by metrics. */
struct up_stats {
	uint64_t	queries;	/* sent on a connection */
	uint64_t	answers;	/* accepted */
	uint64_t	errors;		/* connection failures and losses */
	uint64_t	handshakes;	/* completed */
	uint64_t	resumed;	/* of those, session resumptions */
	uint64_t	reused;		/* queries sent on an already-used connection */
	uint64_t	late;		/* answers for queries already gone */
	uint64_t	unanswered;	/* IDs freed: no answer within the timeout */
	uint64_t	mismatched;	/* answers whose question did not match */
	uint64_t	conns_opened;
	unsigned	conns_open;	/* now */
	bool		up;		/* reachable: never tried, or the last
					 * connect and handshake worked; false
					 * while failing or backing off */
	struct hist	latency;	/* send to accepted answer */
};

/* Returns NULL on allocation failure. The pool keeps its own copy of the
 * upstream settings of cfg; tls is borrowed for the life of the pool. */
struct up_pool	*up_pool_new(struct loop *, struct tls_ctx *,
		    const struct config *, const struct up_callbacks *);
/* Closes every connection at once (no callbacks) and frees the pool. */
void		 up_pool_free(struct up_pool *);

/*
 * Queues msg (an upstream query; its ID is overwritten) for handle on the
 * best connection of the first usable upstream not in avoid_mask (bit i =
 * upstream i), opening one if needed. Returns the index of the upstream
 * used, -E_UPSTREAM when none can take it now, or -EBUSY when the
 * connection picked has no room (ID map or write buffer full: an
 * overload of ours, not the upstream's). Never calls back synchronously.
 */
int		 up_send(struct up_pool *, uint64_t handle, const uint8_t *msg,
		    size_t len, uint32_t avoid_mask);

/* Starts a graceful shutdown: idle connections close with close_notify,
 * busy ones when their last answer is in. */
void		 up_pool_shutdown(struct up_pool *);
/* True when no connection is open. */
bool		 up_pool_idle(const struct up_pool *);
size_t		 up_pool_count(const struct up_pool *);
const struct up_stats *up_pool_stats(const struct up_pool *, unsigned up);
const char	*up_pool_name(const struct up_pool *, unsigned up);

#endif
