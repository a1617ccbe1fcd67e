/*
 * A fixed-bucket latency histogram in the Prometheus shape: cumulative
 * buckets are computed when rendering, observations only bump one counter.
 * Pure.
 */
#ifndef PROXY_HIST_H
#define PROXY_HIST_H

#include <stdint.h>

#define HIST_NBUCKETS	14

/* Upper bounds in microseconds, shared by every histogram. */
extern const uint64_t hist_bounds_us[HIST_NBUCKETS];

struct hist {
	uint64_t	counts[HIST_NBUCKETS + 1];	/* last = above all bounds */
	uint64_t	count;
	uint64_t	sum_us;
};

void	hist_observe(struct hist *, uint64_t us);
/* n observations of us each. */
void	hist_observe_n(struct hist *, uint64_t us, uint64_t n);

#endif
