/*
 * Asynchronous netlink requests on the event loop: one non-blocking
 * netlink socket, registered with the loop, carrying many requests at once.
 * Each request gets its own sequence number and is matched to its reply by
 * it; a request ends with its first reply message (an answer or an
 * NLMSG_ERROR) or with its timeout, and anything that arrives for a
 * sequence number no longer pending (late, duplicate, after an error) is
 * counted and dropped, so one bad or slow reply never shifts the replies
 * of later requests. System layer; conntrack (ct.c) and sock_diag
 * (nl_diag.c) are built on it.
 */
#ifndef PROXY_NL_H
#define PROXY_NL_H

#include <stddef.h>
#include <stdint.h>

#include "stat.h"

struct loop;
struct nl;

#define NL_MAX_PENDING	256	/* requests in flight per socket */
#define NL_MSG_MAX	8192	/* largest request or reply datagram */

/*
 * A request's end: err 0 with its reply message (msg borrowed for the call,
 * 4-byte aligned, the netlink header included), or err < 0 with msg NULL
 * (-ETIMEDOUT when no reply came in time). An NLMSG_ERROR reply comes as
 * err 0 with the message: the parser of the reply reads the error.
 */
typedef void	(*nl_reply_fn)(void *arg, uint64_t cookie, int err,
		    const uint8_t *msg, size_t len);

struct nl_stats {
	uint64_t	requests;	/* sent, waiting or done */
	uint64_t	replies;	/* matched to a pending request */
	uint64_t	timeouts;
	uint64_t	stale;		/* replies for no pending request */
	uint64_t	busy;		/* refused: NL_MAX_PENDING in flight */
	uint64_t	send_errors;	/* refused: sendto failed */
	uint64_t	overruns;	/* ENOBUFS: the kernel dropped replies */
	uint64_t	pending;	/* gauge: requests waiting for a reply */
};

/*
 * The rows describing one socket's struct nl_stats, labelled by the kind
 * of lookup it carries (a label value, quoted): ct.c and nl_diag.c each
 * export a table of these for their socket, and metrics.c renders both
 * under the same series.
 */
#define NL_STAT_ROW(name, kind, type, field, help) \
	STAT_ROW(name, "lookup=\"" kind "\"", type, struct nl_stats, field, help)
#define NL_STAT_ROWS(kind) \
	NL_STAT_ROW("dotproxy_netlink_requests_total", kind, STAT_COUNTER, \
	    requests, "Netlink lookups sent, by kind: conntrack (the original " \
	    "destination of a local-zone UDP query), sock_diag (the owner of " \
	    "a transparent TCP client)."), \
	NL_STAT_ROW("dotproxy_netlink_replies_total", kind, STAT_COUNTER, \
	    replies, "Netlink replies matched to a pending lookup (answers " \
	    "and kernel errors alike)."), \
	NL_STAT_ROW("dotproxy_netlink_timeouts_total", kind, STAT_COUNTER, \
	    timeouts, "Netlink lookups that got no reply in time; the query " \
	    "goes on without the answer."), \
	NL_STAT_ROW("dotproxy_netlink_stale_replies_total", kind, \
	    STAT_COUNTER, stale, "Netlink replies dropped: no pending lookup " \
	    "has their sequence number (late, duplicate or never asked)."), \
	NL_STAT_ROW("dotproxy_netlink_busy_total", kind, STAT_COUNTER, busy, \
	    "Netlink lookups not sent: too many already waiting for a reply."), \
	NL_STAT_ROW("dotproxy_netlink_send_errors_total", kind, STAT_COUNTER, \
	    send_errors, "Netlink lookups not sent: the socket refused the " \
	    "request."), \
	NL_STAT_ROW("dotproxy_netlink_overruns_total", kind, STAT_COUNTER, \
	    overruns, "Netlink receive buffer overruns: the kernel dropped " \
	    "replies, whose lookups then time out."), \
	NL_STAT_ROW("dotproxy_netlink_pending_lookups", kind, STAT_GAUGE, \
	    pending, "Netlink lookups waiting for a reply.")

/* Opens a netlink socket of protocol proto. NULL with errno set. */
struct nl	*nl_open(struct loop *, int proto, unsigned timeout_ms,
		    nl_reply_fn, void *arg);
/* Closes it; pending requests end without a callback. */
void		 nl_close(struct nl *);
/*
 * Sends req (len bytes, starting with a struct nlmsghdr whose nlmsg_seq is
 * set here). Returns 0 (the callback will run exactly once, never from
 * inside this call) or -errno / -EBUSY (no callback).
 */
int		 nl_request(struct nl *, uint8_t *req, size_t len, uint64_t cookie);
size_t		 nl_pending(const struct nl *);
const struct nl_stats *nl_stats(const struct nl *);
/*
 * Feeds one received datagram through the matcher, as if it came from the
 * socket (for tests). Exposed so the matching is tested without a kernel.
 */
void		 nl_input(struct nl *, const uint8_t *buf, size_t len);

#endif
