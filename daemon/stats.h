/* stats.h - the counters a worker keeps.
 *
 * Written only by the worker thread that owns them (relaxed atomics), read
 * by anyone: the control socket's Stats, the main thread's STATUS line.
 */
#ifndef SECMSGD_STATS_H
#define SECMSGD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct worker_stats {
	atomic_uint_fast64_t handshakes_ok;
	atomic_uint_fast64_t handshakes_failed;
	atomic_uint_fast64_t messages_relayed;
	atomic_uint_fast64_t bytes_relayed;
	atomic_uint connections;
};

static inline void stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif
