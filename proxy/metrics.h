/*
 * The operations endpoint: what /metrics (Prometheus text format 0.0.4),
 * /livez and /readyz (with ?verbose) say. The HTTP server itself is
 * http.c. Ops layer: reads the other modules only through their *_stats()
 * getters.
 */
#ifndef PROXY_METRICS_H
#define PROXY_METRICS_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fe_tcp;
struct fe_udp;
struct loop;
struct metrics;
struct query_table;

/* One event loop's modules (worker.h), read under its lock. */
struct metrics_worker {
	struct query_table	*qt;
	struct fe_udp		*udp;
	struct fe_tcp		*tcp;
	void			(*lock)(void *, bool on);	/* NULL: none */
	void			*lock_arg;
};

/* What the endpoint reports on; all borrowed, owned by main. With
 * workers, the series are their sums (and a few per worker); without,
 * qt, udp and tcp are the one loop's. */
struct metrics_sources {
	const struct metrics_worker *workers;
	size_t			 nworkers;
	struct query_table	*qt;
	struct fe_udp		*udp;
	struct fe_tcp		*tcp;
	const char		*version;
	const char		*revision;
	uint64_t		 start_wall_s;	/* process start, Unix time */
	bool			 listening;	/* DNS listeners bound */
	bool			 config_ok;	/* configuration loaded */
	bool			 lameduck;	/* shutting down: not ready */
	bool			 transparent;	/* behind a redirect: captured
						 * queries are counted */
	uint64_t		 reloads, reload_failures;
};

/* Listens on addr, or on fd when it is >= 0 (taken over from a
 * predecessor, owned from here on). NULL, with *err set to -errno, on
 * failure. */
struct metrics	*metrics_new(struct loop *, const struct sockaddr *, socklen_t,
		    int fd, struct metrics_sources *, int *err);
void		 metrics_free(struct metrics *);
/* The listening socket, for a handover; -1 once given up. */
int		 metrics_listen_fd(const struct metrics *);
/* A successor has the listening socket: stop accepting on it. */
void		 metrics_stop_listening(struct metrics *);

/*
 * Renders the Prometheus text into out (cap bytes). Returns the length, or
 * 0 if it did not fit. Exposed for tests and for the healthcheck.
 */
size_t		 metrics_render(struct metrics *, char *out, size_t cap);

#endif
