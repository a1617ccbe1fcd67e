/*
 * TCP front end (RFC 7766): client connections with 2-byte framing, many
 * queries per connection answered as they complete, idle timeout, a bound
 * on pending queries per connection (reading pauses at the bound), a cap on
 * connections, and a pause in accepting on EMFILE. Edge layer.
 */
#ifndef PROXY_FE_TCP_H
#define PROXY_FE_TCP_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "stat.h"

struct config;
struct fe_tcp;
struct loop;
struct nl_stats;
struct query_table;

struct fe_tcp_stats {
	uint64_t	accepted;
	uint64_t	closed_idle;
	uint64_t	closed_bad;	/* bad framing or absurd length */
	uint64_t	closed_slow;	/* answers piled up unread */
	uint64_t	accept_paused;	/* EMFILE or the connection cap */
	uint64_t	diag_failed;	/* sock_diag lookups that failed */
	unsigned	open;
};

struct fe_tcp	*fe_tcp_new(struct loop *, struct query_table *,
		    const struct config *);
int		 fe_tcp_listen(struct fe_tcp *, const struct sockaddr *,
		    socklen_t);
/* As fe_tcp_listen, on a listening socket made elsewhere; takes fd on
 * success only. */
int		 fe_tcp_adopt(struct fe_tcp *, int fd);
/* Stops accepting and closes idle clients; busy ones close once answered. */
void		 fe_tcp_stop(struct fe_tcp *);
size_t		 fe_tcp_open(const struct fe_tcp *);
void		 fe_tcp_free(struct fe_tcp *);
const struct fe_tcp_stats *fe_tcp_stats(const struct fe_tcp *);
/* Describes struct fe_tcp_stats for metrics. */
extern const struct stat_table fe_tcp_stat_table;
/* The sock_diag lookups' counters, or NULL when they are not in use. */
const struct nl_stats *fe_tcp_diag_stats(const struct fe_tcp *);

#endif
