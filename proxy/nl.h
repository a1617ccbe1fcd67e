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
	uint64_t	requests;
	uint64_t	replies;
	uint64_t	timeouts;
	uint64_t	stale;		/* replies for no pending request */
	uint64_t	busy;		/* refused: NL_MAX_PENDING in flight */
	uint64_t	overruns;	/* ENOBUFS: the kernel dropped replies */
};

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
