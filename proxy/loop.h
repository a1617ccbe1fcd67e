/*
 * The event loop: level-triggered epoll, a timer heap on a monotonic
 * millisecond clock (injectable for tests), a pre-sleep list for work that
 * is batched to once per wake-up, and a deferred-free list drained after
 * each dispatch pass so nothing is freed under a running callback.
 */
#ifndef PROXY_LOOP_H
#define PROXY_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

#define LOOP_READ	0x1u
#define LOOP_WRITE	0x2u

/* An fd watcher, embedded in its owner. EPOLLERR/EPOLLHUP are reported as
 * LOOP_READ|LOOP_WRITE so the next syscall reports the error. */
struct loop_io {
	int		 fd;		/* borrowed: the owner closes it */
	uint32_t	 events;	/* LOOP_READ|LOOP_WRITE wanted */
	bool		 active;	/* registered with epoll */
	void		(*cb)(struct loop_io *, uint32_t events);
	void		*arg;		/* borrowed: the owner */
};

/* A one-shot timer, embedded in its owner. */
struct loop_timer {
	uint64_t	 deadline_ms;	/* monotonic */
	size_t		 slot;		/* heap index + 1; 0 = not armed */
	uint64_t	 phase;		/* timer phase it was armed in */
	void		(*cb)(struct loop_timer *);
	void		*arg;		/* borrowed: the owner */
};

/* A pre-sleep hook, embedded in its owner; runs once before the next wait. */
struct loop_hook {
	struct loop_hook *next;		/* borrowed: list link */
	bool		 queued;
	void		(*cb)(struct loop_hook *);
	void		*arg;		/* borrowed: the owner */
};

/* Returns NULL with errno set on failure. now_fn may be NULL (real clock). */
struct loop	*loop_new(uint64_t (*now_fn)(void *), void *now_arg);
void		 loop_free(struct loop *);
uint64_t	 loop_now(const struct loop *);	/* cached per wake-up */
void		 loop_update_now(struct loop *);
/* The monotonic clock in microseconds, read now (for latency figures). */
uint64_t	 loop_clock_us(void);
/* The loop's own clock in microseconds, read now: loop_clock_us() with the
 * real clock, the injected clock's milliseconds otherwise, so that ages
 * measured in it agree with the loop's timers in tests too. */
uint64_t	 loop_now_us(const struct loop *);

int	loop_io_start(struct loop *, struct loop_io *, int fd, uint32_t events)
	    __attribute__((warn_unused_result));
int	loop_io_set(struct loop *, struct loop_io *, uint32_t events)
	    __attribute__((warn_unused_result));
void	loop_io_stop(struct loop *, struct loop_io *);

void	loop_timer_set(struct loop *, struct loop_timer *, uint64_t deadline_ms);
void	loop_timer_stop(struct loop *, struct loop_timer *);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->slot != 0; }

/* Queues a hook for the end of this wake-up (idempotent). */
void	loop_hook_queue(struct loop *, struct loop_hook *);
/* Unqueues a hook if it is queued. An object that embeds a hook must call
 * this before it is freed. */
void	loop_hook_cancel(struct loop *, struct loop_hook *);

/* Frees p with fn after the current dispatch pass. */
int	loop_defer_free(struct loop *, void (*fn)(void *), void *p)
	    __attribute__((warn_unused_result));

/* Runs one wake-up: hooks, wait (at most max_wait_ms, -1 = until a timer),
 * dispatch, timers, deferred frees. Returns 0 or -errno. */
int	loop_run_once(struct loop *, int max_wait_ms);

/* Calls before() just before the loop sleeps in epoll_wait and after()
 * as soon as it wakes: a worker thread (worker.c) drops its lock while
 * it sleeps, so the main thread may read its counters. NULL: none. */
void	loop_set_wait_hooks(struct loop *, void (*before)(void *),
	    void (*after)(void *), void *arg);

/* Number of armed timers (for tests and shutdown checks). */
size_t	loop_timer_count(const struct loop *);

#endif
