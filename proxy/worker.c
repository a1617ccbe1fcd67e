/*
 * Workers: N share-nothing event loops (see worker.h for the design and
 * its threading rules). Top layer, beside main.
 */
#include "worker.h"

#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "fe_tcp.h"
#include "fe_udp.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "tls.h"
#include "upstream.h"

struct worker {
	unsigned		 idx;
	bool			 threaded;
	struct loop		*loop;		/* owned when threaded */
	const struct config	*cfg;		/* borrowed */
	struct tls_ctx		*tls;		/* owned */
	struct query_table	*qt;		/* owned */
	struct fe_udp		*udp;		/* owned */
	struct fe_tcp		*tcp;		/* owned */
	int			 fds[WORKER_MAX_FDS];	/* listening, borrowed
						 * from the front ends */
	size_t			 nfds;

	/* Threaded only. Everything below mu is guarded by it. */
	pthread_t		 thread;
	bool			 running;	/* thread created */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	int			 wakefd;	/* eventfd, -1 inline */
	struct loop_io		 wakeio;
	bool			 started;	/* in its loop */
	bool			 stop;		/* asked to drain and end */
	struct config		*new_cfg;	/* owned: a reload to apply */
	struct tls_ctx		*new_tls;	/* owned: with it */
};

unsigned
worker_cpus(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == -1)
		return 1;
	n = CPU_COUNT(&set);
	return n < 1 ? 1 : (unsigned)n;
}

static void
worker_unlock_cb(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_unlock(&w->mu);
}

static void
worker_lock_cb(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->mu);
}

/* Applies a reload; called with the worker's state ours (its thread, or
 * inline). */
static void
worker_apply(struct worker *w, struct config *cfg, struct tls_ctx *tls)
{
	if (query_swap_upstreams(w->qt, tls, cfg) < 0) {
		tls_ctx_free(tls);
		log_warn("worker: reload not applied", "worker=%u error=\"out "
		    "of memory\"", w->idx);
	} else
		log_info("upstreams swapped", "worker=%u upstreams=%zu", w->idx,
		    cfg->nupstream);
	/* The cache settings (checked by the caller): in place, or a new
	 * shard when its size changed. */
	if (query_set_cache(w->qt, cfg) < 0)
		log_warn("cache settings not applied", "worker=%u error=\"out "
		    "of memory\"", w->idx);
	free(cfg);
}

/* The eventfd: a posted reload or stop. Runs in the worker's thread with
 * its lock held. */
static void
worker_on_wake(struct loop_io *io, uint32_t ev)
{
	struct worker *w = io->arg;
	uint64_t v;

	(void)ev;
	/* Nothing to read is a spurious wake-up: the flags tell. */
	if (read(w->wakefd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		v = 0;
	if (w->new_cfg != NULL) {
		struct config *c = w->new_cfg;
		struct tls_ctx *t = w->new_tls;

		w->new_cfg = NULL;
		w->new_tls = NULL;
		worker_apply(w, c, t);
	}
}

static void
worker_wake(struct worker *w)
{
	uint64_t one = 1;

	/* Only fails when the counter is full: a wake-up is pending. */
	if (write(w->wakefd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		return;
}

struct worker *
worker_new(unsigned idx, struct loop *main_loop, struct tls_ctx *tls,
    const struct config *cfg, const struct resolv *rc)
{
	struct worker *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		tls_ctx_free(tls);
		return NULL;
	}
	w->idx = idx;
	w->cfg = cfg;
	w->tls = tls;
	w->wakefd = -1;
	w->threaded = main_loop == NULL;
	if (!w->threaded)
		w->loop = main_loop;
	else {
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		if ((w->loop = loop_new(NULL, NULL)) == NULL ||
		    (w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
			goto fail;
		w->wakeio.cb = worker_on_wake;
		w->wakeio.arg = w;
		if (loop_io_start(w->loop, &w->wakeio, w->wakefd, LOOP_READ) < 0)
			goto fail;
	}
	if ((w->qt = query_table_new(w->loop, w->tls, cfg, rc)) == NULL ||
	    (w->udp = fe_udp_new(w->loop, w->qt)) == NULL ||
	    (w->tcp = fe_tcp_new(w->loop, w->qt, cfg)) == NULL)
		goto fail;
	/* A UDP mark names a nameserver of --resolv-conf (udp_mark.h); only
	 * the redirect's rules write one. */
	fe_udp_set_resolv(w->udp, rc);
	fe_udp_set_marks(w->udp, cfg->transparent);
	return w;
fail:
	worker_free(w);
	return NULL;
}

int
worker_adopt_udp(struct worker *w, int fd, const struct sockaddr *sa,
    socklen_t len)
{
	int r;

	if (w->nfds == WORKER_MAX_FDS)
		return -E_TOOBIG;
	if ((r = fe_udp_adopt(w->udp, fd, sa, len)) == 0)
		w->fds[w->nfds++] = fd;
	return r;
}

int
worker_adopt_tcp(struct worker *w, int fd)
{
	int r;

	if (w->nfds == WORKER_MAX_FDS)
		return -E_TOOBIG;
	if ((r = fe_tcp_adopt(w->tcp, fd)) == 0)
		w->fds[w->nfds++] = fd;
	return r;
}

size_t
worker_fds(const struct worker *w, int *fds, size_t cap)
{
	size_t n = w->nfds < cap ? w->nfds : cap;

	memcpy(fds, w->fds, n * sizeof(int));
	return n;
}

/* Stops the front ends, waits for what is in flight, closes TLS; on the
 * worker's own loop (its thread, or the main loop inline). */
static void
worker_finish(struct worker *w)
{
	uint64_t deadline;

	fe_udp_stop(w->udp);
	fe_tcp_stop(w->tcp);
	deadline = loop_now(w->loop) + w->cfg->timeout_ms;
	while ((query_inflight(w->qt) > 0 || fe_tcp_open(w->tcp) > 0) &&
	    loop_now(w->loop) < deadline)
		(void)loop_run_once(w->loop, 50);
	if (query_inflight(w->qt) > 0) {
		log_warn("answering the rest with SERVFAIL", "worker=%u "
		    "inflight=%zu", w->idx, query_inflight(w->qt));
		query_fail_all(w->qt);
	}
	up_pool_shutdown(query_pool(w->qt));
	deadline = loop_now(w->loop) + 1000;
	while (!up_pool_idle(query_pool(w->qt)) && loop_now(w->loop) < deadline)
		(void)loop_run_once(w->loop, 50);
	(void)loop_run_once(w->loop, 0);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	int r;

	pthread_mutex_lock(&w->mu);
	loop_set_wait_hooks(w->loop, worker_unlock_cb, worker_lock_cb, w);
	w->started = true;
	pthread_cond_signal(&w->cv);
	while (!w->stop) {
		if ((r = loop_run_once(w->loop, -1)) < 0) {
			/* As the main loop's failure: exit 1. A worker that
			 * stopped alone would leave its sockets in the
			 * reuseport group, their share of queries unread. */
			log_error("event loop failed", "worker=%u error=\"%s\"",
			    w->idx, proxy_strerror(r));
			_exit(1);
		}
	}
	worker_finish(w);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int
worker_start(struct worker *w)
{
	int r;

	if (!w->threaded)
		return 0;
	if ((r = pthread_create(&w->thread, NULL, worker_main, w)) != 0)
		return -r;
	w->running = true;
	pthread_mutex_lock(&w->mu);
	while (!w->started)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void
worker_reload(struct worker *w, struct config *cfg, struct tls_ctx *tls)
{
	if (!w->threaded || !w->running) {
		worker_apply(w, cfg, tls);
		return;
	}
	pthread_mutex_lock(&w->mu);
	/* A reload not yet applied is replaced by the newer one. */
	free(w->new_cfg);
	tls_ctx_free(w->new_tls);
	w->new_cfg = cfg;
	w->new_tls = tls;
	worker_wake(w);
	pthread_mutex_unlock(&w->mu);
}

void
worker_ask_stop(struct worker *w)
{
	if (!w->threaded || !w->running)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	worker_wake(w);
	pthread_mutex_unlock(&w->mu);
}

void
worker_drain(struct worker *w)
{
	if (!w->threaded) {
		worker_finish(w);
		return;
	}
	if (!w->running)
		return;
	worker_ask_stop(w);
	(void)pthread_join(w->thread, NULL);
	w->running = false;
}

void
worker_lock(struct worker *w, bool on)
{
	if (!w->threaded || !w->running)
		return;
	if (on)
		pthread_mutex_lock(&w->mu);
	else
		pthread_mutex_unlock(&w->mu);
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->running)
		worker_drain(w);
	fe_tcp_free(w->tcp);
	fe_udp_free(w->udp);
	query_table_free(w->qt);
	tls_ctx_free(w->tls);
	if (w->threaded) {
		free(w->new_cfg);
		tls_ctx_free(w->new_tls);
		if (w->wakefd != -1) {
			loop_io_stop(w->loop, &w->wakeio);
			close(w->wakefd);
		}
		loop_free(w->loop);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
	}
	free(w);
}

struct query_table *
worker_qt(const struct worker *w)
{
	return w->qt;
}

struct fe_udp *
worker_udp(const struct worker *w)
{
	return w->udp;
}

struct fe_tcp *
worker_tcp(const struct worker *w)
{
	return w->tcp;
}
