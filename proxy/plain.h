/*
 * Plain DNS forwarding for local zones: one query per request, over UDP
 * from a fresh socket connected to the resolver (so the kernel picks a
 * random source port and drops datagrams from anyone else), with a random
 * ID, and over TCP when the UDP answer is truncated. The query layer checks
 * the question of every answer (RFC 5452). Domain layer.
 */
#ifndef PROXY_PLAIN_H
#define PROXY_PLAIN_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct plain;

struct plain_callbacks {
	/* An answer whose ID matched (msg borrowed). Return 0 to accept,
	 * -E_MISMATCH to keep waiting, -E_GONE if the handle is unknown. */
	int	(*on_answer)(void *arg, uint64_t handle, const uint8_t *msg,
		    size_t len);
	/* The request failed (err); the callee answers SERVFAIL. */
	void	(*on_fail)(void *arg, uint64_t handle, int err);
	void	*arg;
};

struct plain_stats {
	uint64_t	queries;
	uint64_t	answers;
	uint64_t	tcp_retries;	/* truncated over UDP, asked again over TCP */
	uint64_t	errors;
	uint64_t	mismatched;	/* wrong ID or question: ignored */
	uint64_t	overload;	/* refused: max requests in flight */
};

/* At most max requests (each one socket) in flight at once. */
struct plain	*plain_new(struct loop *, unsigned timeout_ms, unsigned max,
		    const struct plain_callbacks *);
/* Closes every request without callbacks. */
void		 plain_free(struct plain *);
/*
 * Sends msg (its ID is replaced by a random one) to dst for handle.
 * Returns 0, or -EBUSY when max requests are in flight, or -errno when no
 * socket could be made (no callback then).
 */
int		 plain_send(struct plain *, uint64_t handle,
		    const struct sockaddr *dst, socklen_t dstlen,
		    const uint8_t *msg, size_t len);
/* True if sa (address and port) is the source of one of our outstanding
 * UDP requests (a query arriving from it is our own, looping back). A
 * client elsewhere (another namespace, another address) that happens to
 * use the same port is not. */
bool		 plain_owns_addr(const struct plain *, const struct sockaddr *sa);
size_t		 plain_inflight(const struct plain *);
const struct plain_stats *plain_stats(const struct plain *);

#endif
