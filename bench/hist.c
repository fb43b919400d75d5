/* hist.c - a log-linear histogram of latencies in nanoseconds.
 *
 * Values below 128 ns have a bucket each; above, every power of two is cut
 * into 128 buckets, so a value is known to within 1/256 of itself once it
 * is reported as its bucket's midpoint. Memory is fixed (about 60 KB), so
 * a run can record every message however long it lasts.
 */
#include "bench.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The midpoint of a bucket. */
static double bucket_value(unsigned i)
{
	unsigned shift;
	uint64_t lo;

	if (i < HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	lo = (uint64_t)(i % HIST_SUB + HIST_SUB) << shift;
	return (double)lo + (double)((uint64_t)1 << shift) / 2.0;
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_add(struct hist *h, uint64_t v)
{
	h->b[bucket_of(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

double hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;
	double v;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			v = bucket_value(i);
			/* The exact extremes are known: never report past them. */
			if (v > (double)h->max)
				v = (double)h->max;
			if (v < (double)h->min)
				v = (double)h->min;
			return v;
		}
	}
	return (double)h->max;
}
