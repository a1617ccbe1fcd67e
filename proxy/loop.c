/*
 * epoll event loop, timer heap, pre-sleep hooks and deferred frees.
 * System layer: owns the epoll fd; knows nothing of DNS or TLS. All state
 * hangs off struct loop; there are no globals, so several loops could run
 * side by side in one process.
 */
#include "loop.h"

#include <sys/epoll.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOOP_EVENTS	256

struct loop_deferred {
	void	(*fn)(void *);
	void	*p;		/* owned until fn runs */
};

struct loop {
	int			 epfd;
	uint64_t		 now_ms;
	uint64_t		(*now_fn)(void *);
	void			*now_arg;	/* borrowed */
	struct loop_timer	**heap;		/* owned array of borrowed */
	uint64_t		 phase;		/* bumped each time timers run */
	size_t			 nheap, capheap;
	struct loop_hook	*hooks;		/* borrowed list */
	struct loop_deferred	*deferred;	/* owned array */
	size_t			 ndeferred, capdeferred;
	struct epoll_event	 events[LOOP_EVENTS];
	void			(*wait_before)(void *);	/* NULL: none */
	void			(*wait_after)(void *);
	void			*wait_arg;	/* borrowed */
};

static uint64_t
real_now(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
loop_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct loop *
loop_new(uint64_t (*now_fn)(void *), void *now_arg)
{
	struct loop *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->now_fn = now_fn != NULL ? now_fn : real_now;
	l->now_arg = now_arg;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		free(l);
		return NULL;
	}
	loop_update_now(l);
	return l;
}

void
loop_free(struct loop *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->ndeferred; i++)
		l->deferred[i].fn(l->deferred[i].p);
	free(l->deferred);
	free(l->heap);
	close(l->epfd);
	free(l);
}

uint64_t
loop_now(const struct loop *l)
{
	return l->now_ms;
}

uint64_t
loop_now_us(const struct loop *l)
{
	if (l->now_fn == real_now)
		return loop_clock_us();
	return l->now_fn(l->now_arg) * 1000;
}

void
loop_update_now(struct loop *l)
{
	l->now_ms = l->now_fn(l->now_arg);
}

static uint32_t
to_epoll(uint32_t ev)
{
	return ((ev & LOOP_READ) ? EPOLLIN : 0) | ((ev & LOOP_WRITE) ? EPOLLOUT : 0);
}

int
loop_io_start(struct loop *l, struct loop_io *io, int fd, uint32_t events)
{
	struct epoll_event e;

	memset(&e, 0, sizeof(e));
	io->fd = fd;
	io->events = events;
	e.events = to_epoll(events);
	e.data.ptr = io;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) == -1)
		return -errno;
	io->active = true;
	return 0;
}

int
loop_io_set(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event e;

	if (!io->active || io->events == events)
		return 0;
	memset(&e, 0, sizeof(e));
	e.events = to_epoll(events);
	e.data.ptr = io;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &e) == -1)
		return -errno;
	io->events = events;
	return 0;
}

void
loop_io_stop(struct loop *l, struct loop_io *io)
{
	size_t i;

	if (!io->active)
		return;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->active = false;
	/* Events already fetched for this watcher in this pass must not run. */
	for (i = 0; i < LOOP_EVENTS; i++)
		if (l->events[i].data.ptr == io)
			l->events[i].data.ptr = NULL;
}

/* Timer heap: a binary min-heap of deadlines; slot is index + 1. */
static void
heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->slot = a + 1;
	l->heap[b]->slot = b + 1;
}

static void
heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (l->heap[p]->deadline_ms <= l->heap[i]->deadline_ms)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void
heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;

		if (c < l->nheap && l->heap[c]->deadline_ms < l->heap[m]->deadline_ms)
			m = c;
		if (c + 1 < l->nheap &&
		    l->heap[c + 1]->deadline_ms < l->heap[m]->deadline_ms)
			m = c + 1;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

void
loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	size_t i;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->slot = i + 1;
	heap_down(l, i);
	heap_up(l, i);
}

void
loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t deadline_ms)
{
	t->phase = l->phase;
	if (t->slot != 0) {
		size_t i = t->slot - 1;

		t->deadline_ms = deadline_ms;
		heap_down(l, i);
		heap_up(l, i);
		return;
	}
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));

		/* Out of memory for timers cannot be handled sanely here. */
		BUG_ON(h == NULL);
		l->heap = h;
		l->capheap = cap;
	}
	t->deadline_ms = deadline_ms;
	l->heap[l->nheap] = t;
	t->slot = ++l->nheap;
	heap_up(l, l->nheap - 1);
}

size_t
loop_timer_count(const struct loop *l)
{
	return l->nheap;
}

void
loop_hook_queue(struct loop *l, struct loop_hook *h)
{
	if (h->queued)
		return;
	h->queued = true;
	h->next = l->hooks;
	l->hooks = h;
}

void
loop_hook_cancel(struct loop *l, struct loop_hook *h)
{
	struct loop_hook **pp;

	if (!h->queued)
		return;
	for (pp = &l->hooks; *pp != NULL; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	h->queued = false;
	h->next = NULL;
}

int
loop_defer_free(struct loop *l, void (*fn)(void *), void *p)
{
	if (l->ndeferred == l->capdeferred) {
		size_t cap = l->capdeferred ? l->capdeferred * 2 : 32;
		struct loop_deferred *d = realloc(l->deferred, cap * sizeof(*d));

		if (d == NULL)
			return -ENOMEM;
		l->deferred = d;
		l->capdeferred = cap;
	}
	l->deferred[l->ndeferred].fn = fn;
	l->deferred[l->ndeferred].p = p;
	l->ndeferred++;
	return 0;
}

static void
run_deferred(struct loop *l)
{
	size_t i;

	/* fn may defer more; those run on the next pass. */
	for (i = 0; i < l->ndeferred; i++)
		l->deferred[i].fn(l->deferred[i].p);
	l->ndeferred = 0;
}

static void
run_hooks(struct loop *l)
{
	/* Hooks may queue hooks (for the next wake-up). */
	while (l->hooks != NULL) {
		struct loop_hook *h = l->hooks;

		l->hooks = NULL;
		while (h != NULL) {
			struct loop_hook *next = h->next;

			h->queued = false;
			h->next = NULL;
			h->cb(h);
			h = next;
		}
	}
}

/*
 * Runs the timers that are due. A timer armed by a callback of this same
 * phase waits for the next pass, even if it is already due, so a callback
 * that re-arms its timer for "now" cannot keep this loop turning for ever.
 */
static void
run_timers(struct loop *l)
{
	l->phase++;
	while (l->nheap > 0 && l->heap[0]->deadline_ms <= l->now_ms &&
	    l->heap[0]->phase != l->phase) {
		struct loop_timer *t = l->heap[0];

		loop_timer_stop(l, t);
		t->cb(t);
	}
}

int
loop_run_once(struct loop *l, int max_wait_ms)
{
	int n, i, wait = max_wait_ms;

	run_hooks(l);
	run_deferred(l);
	if (l->nheap > 0) {
		loop_update_now(l);
		uint64_t d = l->heap[0]->deadline_ms;
		int until = d <= l->now_ms ? 0 :
		    (d - l->now_ms > 60000 ? 60000 : (int)(d - l->now_ms));

		if (wait < 0 || until < wait)
			wait = until;
	}
	if (l->wait_before != NULL)
		l->wait_before(l->wait_arg);
	n = epoll_wait(l->epfd, l->events, LOOP_EVENTS, wait);
	if (n == -1) {
		int err = errno;

		if (l->wait_after != NULL)
			l->wait_after(l->wait_arg);
		if (err == EINTR)
			return 0;
		return -err;
	}
	if (l->wait_after != NULL)
		l->wait_after(l->wait_arg);
	loop_update_now(l);
	for (i = 0; i < n; i++) {
		struct loop_io *io = l->events[i].data.ptr;
		uint32_t e = l->events[i].events, ev = 0;

		if (io == NULL)
			continue;
		if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
			ev |= LOOP_READ;
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			ev |= LOOP_WRITE;
		ev &= io->events | ((e & (EPOLLERR | EPOLLHUP)) ? LOOP_READ : 0);
		if (ev != 0)
			io->cb(io, ev);
	}
	for (i = 0; i < n; i++)
		l->events[i].data.ptr = NULL;
	run_timers(l);
	run_deferred(l);
	return 0;
}

void
loop_set_wait_hooks(struct loop *l, void (*before)(void *),
    void (*after)(void *), void *arg)
{
	l->wait_before = before;
	l->wait_after = after;
	l->wait_arg = arg;
}
