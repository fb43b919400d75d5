/* stats.h - the counters a worker keeps.
 *
 * Written only by the worker thread that owns them, read by anyone: the
 * control socket's Stats (admin.c), the main thread's STATUS line and
 * the metrics endpoint (httpd.c, rendered by metrics.c). Because each
 * has one writer, an add is a relaxed load and a relaxed store, not a
 * locked read-modify-write: on the hot path a counter costs what a plain
 * add does, and a reader still sees each value whole (never torn).
 * Counters only grow; sums over workers are taken by the reader.
 */
#ifndef SECMSGD_STATS_H
#define SECMSGD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Why a connection ended before its user logged in. */
enum stat_hs_fail {
	HSF_AUTH,		/* HandshakeError 3: unknown user or bad signature */
	HSF_MALFORMED,		/* HandshakeError 2, or a frame length outside 1..65536 */
	HSF_VERSION,		/* HandshakeError 1 */
	HSF_TIMEOUT,		/* HandshakeError 5: handshake_timeout */
	HSF_CLIENT,		/* the client closed, reset or sent HandshakeError */
	HSF_BUSY,		/* HandshakeError 4: max_connections */
	HSF_SOURCE_LIMIT,	/* HandshakeError 4: max_handshakes_per_source */
	HSF_SOURCE_RATE,	/* HandshakeError 4: handshake_rate_per_source */
	HSF_LOGIN_RATE,		/* HandshakeError 4: logins_per_minute */
	HSF_INTERNAL,		/* out of memory, a crypto failure */
	HSF_COUNT
};

/* BYE reasons 1..7 (secmsg-protocol(7) §4) at index reason - 1. */
#define STAT_BYE_COUNT 7

/*
 * Histogram buckets: upper bounds in nanoseconds, the last one +Inf. The
 * bounds themselves are in metrics.c (the renderer prints them) and are
 * handed to stat_observe() by its callers through stat_bounds_*.
 */
#define STAT_HIST_BOUNDS 13
struct stat_hist {
	atomic_uint_fast64_t bucket[STAT_HIST_BOUNDS + 1];	/* not cumulative */
	atomic_uint_fast64_t sum_ns;
};

/* Handshake duration (accept to login), relay latency (the iteration
 * that read a MESSAGE to the one that queued it for its target). */
extern const int64_t stat_bounds_handshake[STAT_HIST_BOUNDS];
extern const int64_t stat_bounds_relay[STAT_HIST_BOUNDS];

struct worker_stats {
	atomic_uint_fast64_t accepted;		/* TCP connections accepted */
	atomic_uint_fast64_t handshakes_ok;	/* logins */
	atomic_uint_fast64_t handshakes_failed[HSF_COUNT];
	atomic_uint_fast64_t records_in;	/* from logged-in clients */
	atomic_uint_fast64_t records_out;	/* queued for logged-in clients */
	atomic_uint_fast64_t bytes_in;		/* whole frames received */
	atomic_uint_fast64_t bytes_out;		/* frames queued (records as sealed) */
	atomic_uint_fast64_t messages_relayed;
	atomic_uint_fast64_t bytes_relayed;	/* their e2e payloads */
	atomic_uint_fast64_t rate_limited;	/* records refused: ERROR 3 */
	atomic_uint_fast64_t byes[STAT_BYE_COUNT];
	struct stat_hist handshake_time;
	struct stat_hist relay_latency;
	atomic_uint connections;		/* open now (a gauge) */
};

/* Add n to a counter of the calling worker's own stats. */
static inline void stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t stat_get(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* A handshake that failed for reason why. */
static inline void stat_hs_failed(struct worker_stats *s, enum stat_hs_fail why)
{
	stat_add(&s->handshakes_failed[why], 1);
}

/* All failed handshakes, whatever the reason. */
static inline uint64_t stat_hs_failed_total(const struct worker_stats *s)
{
	uint64_t n = 0;

	for (int i = 0; i < HSF_COUNT; i++)
		n += stat_get(&s->handshakes_failed[i]);
	return n;
}

/* A BYE the server sent (reason 1..7; others are not counted). */
static inline void stat_bye(struct worker_stats *s, unsigned reason)
{
	if (reason >= 1 && reason <= STAT_BYE_COUNT)
		stat_add(&s->byes[reason - 1], 1);
}

/* One observation of ns nanoseconds (below 0 counts as 0). A short scan:
 * most observations land in the first buckets. */
static inline void stat_observe(struct stat_hist *h, const int64_t *bounds,
				int64_t ns)
{
	int i = 0;

	if (ns < 0)
		ns = 0;
	while (i < STAT_HIST_BOUNDS && ns > bounds[i])
		i++;
	stat_add(&h->bucket[i], 1);
	stat_add(&h->sum_ns, (uint64_t)ns);
}

#endif
