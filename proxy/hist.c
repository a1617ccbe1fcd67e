/*
 * Latency histograms (see hist.h). Pure layer: the bounds are constant,
 * the counters belong to the caller.
 */
#include "hist.h"

const uint64_t hist_bounds_us[HIST_NBUCKETS] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000, 5000000,
};

void
hist_observe_n(struct hist *h, uint64_t us, uint64_t n)
{
	unsigned i;

	for (i = 0; i < HIST_NBUCKETS && us > hist_bounds_us[i]; i++)
		;
	h->counts[i] += n;
	h->count += n;
	h->sum_us += us * n;
}

void
hist_observe(struct hist *h, uint64_t us)
{
	hist_observe_n(h, us, 1);
}
