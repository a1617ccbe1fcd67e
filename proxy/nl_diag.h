/*
 * The UID at the other end of a local TCP connection, from the kernel's
 * sock_diag over netlink (SO_PEERCRED only works on Unix sockets; this
 * needs no privilege). Asynchronous: one netlink socket on the loop (nl.c),
 * answers matched by sequence number. System layer.
 */
#ifndef PROXY_NL_DIAG_H
#define PROXY_NL_DIAG_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "stat.h"

struct diag;
struct loop;
struct nl_stats;

#define DIAG_TIMEOUT_MS	200

/* A lookup's end: err 0 with uid, or -ENOENT (not a local socket),
 * -ETIMEDOUT, -EPROTO or another -errno. */
typedef void	(*diag_done_fn)(void *arg, uint64_t cookie, int err,
		    unsigned uid);

struct diag	*diag_open(struct loop *, diag_done_fn, void *arg);
void		 diag_close(struct diag *);
/*
 * Starts a lookup of the owner of the TCP socket whose source is peer and
 * destination local (as our accepting side sees the connection). 0: done()
 * runs later, never from inside this call. < 0: no callback.
 */
int		 diag_lookup(struct diag *, const struct sockaddr *local,
		    const struct sockaddr *peer, uint64_t cookie);
size_t		 diag_pending(const struct diag *);
/* The netlink socket's counters; diag_stat_table describes them. */
const struct nl_stats *diag_stats(const struct diag *);
extern const struct stat_table diag_stat_table;

#endif
