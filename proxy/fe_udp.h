/*
 * UDP front end: listeners that read queries in batches (recvmmsg) and send
 * answers in batches (sendmmsg) once per wake-up. Edge layer.
 */
#ifndef PROXY_FE_UDP_H
#define PROXY_FE_UDP_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stdint.h>

#include "stat.h"

struct fe_udp;
struct loop;
struct query_table;
struct resolv;

struct fe_udp_stats {
	uint64_t	received;	/* datagrams read */
	uint64_t	sent;		/* answers sent */
	uint64_t	send_errors;	/* answers the kernel refused */
	uint64_t	oversize;	/* queries larger than our buffer */
	/* Marks of queries read on listeners with SO_RCVMARK, by what they
	 * said (udp_mark.h): */
	uint64_t	mark_ns;	/* a resolv.conf nameserver */
	uint64_t	mark_other;	/* ours: no listed nameserver */
	uint64_t	mark_stale;	/* ours, for another nameserver list */
	uint64_t	mark_none;	/* none, or another component's */
};

/* NULL on allocation failure. Registers itself with the query table. */
struct fe_udp	*fe_udp_new(struct loop *, struct query_table *);
/*
 * The nameservers a packet mark's slot names (see udp_mark.h),
 * borrowed until the next call or fe_udp_free; NULL goes back to the
 * /etc/resolv.conf that fe_udp_new read.
 */
void		 fe_udp_set_resolv(struct fe_udp *, const struct resolv *rc);
/* Whether listeners bound from now on read packet marks (default: yes).
 * Only the redirect (--transparent) writes them. */
void		 fe_udp_set_marks(struct fe_udp *, bool on);
/* Binds one more listener. 0 or -errno. */
int		 fe_udp_listen(struct fe_udp *, const struct sockaddr *,
		    socklen_t);
/* Stops reading; answers still go out. */
/* As fe_udp_listen, on a bound socket made elsewhere (another worker's
 * address, or one handed over by the process being replaced); takes fd
 * on success only. */
int		 fe_udp_adopt(struct fe_udp *, int fd, const struct sockaddr *,
		    socklen_t);
void		 fe_udp_stop(struct fe_udp *);
void		 fe_udp_free(struct fe_udp *);
const struct fe_udp_stats *fe_udp_stats(const struct fe_udp *);
/* Describes struct fe_udp_stats for metrics. */
extern const struct stat_table fe_udp_stat_table;

#endif
