/*
 * Original destination of redirected UDP queries, from the kernel's
 * connection tracking table over netlink. The kernel offers no
 * SO_ORIGINAL_DST for UDP, so the proxy asks conntrack for the flow whose
 * reply tuple is (proxy listen address -> client). The kernel only answers
 * a process with CAP_NET_ADMIN in the namespace; without it the lookup
 * reports -EPERM and the caller falls back to resolv.conf. Asynchronous:
 * one netlink socket on the loop (nl.c), answers matched by sequence
 * number; nothing here blocks. System layer.
 */
#ifndef PROXY_CT_H
#define PROXY_CT_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "stat.h"

struct ct;
struct loop;
struct nl_stats;

#define CT_TIMEOUT_MS	200

/*
 * A lookup's end: err 0 with dst set (borrowed for the call), -ENOENT (no
 * such flow), -EPERM (no CAP_NET_ADMIN), -ETIMEDOUT, -EPROTO (a reply that
 * did not parse) or another -errno, with dst NULL.
 */
typedef void	(*ct_done_fn)(void *arg, uint64_t cookie, int err,
		    const struct sockaddr_storage *dst, socklen_t dstlen);

/* Opens the netlink socket. NULL with errno set on failure. */
struct ct	*ct_open(struct loop *, ct_done_fn, void *arg);
/* Closes it; lookups in flight end without a callback. */
void		 ct_close(struct ct *);
/*
 * Starts a lookup of the UDP flow whose reply goes from local to peer
 * (both with ports) in conntrack zone zone. 0: done() runs later with
 * cookie, never from inside this call. < 0 (-errno, -EBUSY when too many
 * are in flight): no callback.
 */
int		 ct_lookup(struct ct *, const struct sockaddr *local,
		    const struct sockaddr *peer, uint16_t zone, uint64_t cookie);
size_t		 ct_pending(const struct ct *);
/* The netlink socket's counters; ct_stat_table describes them. */
const struct nl_stats *ct_stats(const struct ct *);
extern const struct stat_table ct_stat_table;

#endif
