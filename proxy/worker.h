/*
 * A worker: one event loop with its own query table (upstream pool, plain
 * forwarder, cache shard) and UDP and TCP front ends. --workers N runs N of
 * them, share-nothing, each on its own listening sockets of one
 * SO_REUSEPORT group per address, so the kernel spreads clients over them.
 *
 * Why threads and not processes: one process keeps one /metrics (the main
 * thread sums the workers under their locks), one signalfd, one seccomp
 * filter and one PID for the orchestrator, and SIGHUP reaches every
 * worker without a fan-out protocol. Nothing else is shared: a worker's
 * modules hang off its own loop (no globals but the log level), so the
 * threads never contend on the query path.
 *
 * Threading rules. A threaded worker's thread holds the worker's mutex
 * whenever it is not asleep in epoll_wait (loop_set_wait_hooks), so
 * another thread that holds the mutex sees its state still. The main
 * thread only reads counters that way (metrics); everything that changes
 * a worker (a reload, the stop) is posted under the mutex and done by the
 * worker's own thread, woken by an eventfd. With --workers 1 the one
 * worker runs inline on the main loop, without a thread or a lock: the
 * path of a query is then exactly the single-loop one.
 */
#ifndef PROXY_WORKER_H
#define PROXY_WORKER_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

struct config;
struct fe_tcp;
struct fe_udp;
struct loop;
struct query_table;
struct resolv;
struct tls_ctx;

struct worker;

#define WORKER_MAX_FDS	32	/* listening sockets of one worker */

/*
 * Makes worker idx. With main_loop it runs inline there (worker_start
 * does nothing); else it gets its own loop, run by a thread from
 * worker_start. tls becomes the worker's; cfg and rc are borrowed for its
 * life. NULL on failure (tls is then freed).
 */
struct worker	*worker_new(unsigned idx, struct loop *main_loop,
		    struct tls_ctx *tls, const struct config *cfg,
		    const struct resolv *rc);
/* Frees a stopped (or never started) worker and its sockets. */
void		 worker_free(struct worker *);

/* Serves a bound UDP socket / listening TCP socket; takes fd on success.
 * Before worker_start only. */
int		 worker_adopt_udp(struct worker *, int fd, const struct sockaddr *,
		    socklen_t);
int		 worker_adopt_tcp(struct worker *, int fd);
/* The worker's listening sockets (for a handover): up to cap into fds. */
size_t		 worker_fds(const struct worker *, int *fds, size_t cap);

/* Starts the thread of a threaded worker; returns when it runs its loop.
 * 0 or -errno. */
int		 worker_start(struct worker *);

/*
 * Hands the worker a reloaded configuration and a TLS context made from it
 * (both become the worker's): its upstream pool is swapped; queries in
 * flight finish on the old one.
 */
void		 worker_reload(struct worker *, struct config *, struct tls_ctx *);

/*
 * Stops taking queries, answers those in flight (at most the query
 * timeout, then SERVFAIL), closes TLS cleanly. Threaded: asks the thread
 * and waits for it to end; inline: runs the main loop until done.
 */
void		 worker_drain(struct worker *);
/* Asks a threaded worker to drain without waiting (so N drain at once);
 * worker_drain then waits. Nothing for an inline worker. */
void		 worker_ask_stop(struct worker *);

/* Holds (on) or releases the worker's lock for reading its counters from
 * another thread; nothing for an inline worker. */
void		 worker_lock(struct worker *, bool on);

struct query_table *worker_qt(const struct worker *);
struct fe_udp	*worker_udp(const struct worker *);
struct fe_tcp	*worker_tcp(const struct worker *);

/* The CPUs this process may run on (sched_getaffinity), at least 1. */
unsigned	 worker_cpus(void);

#endif
