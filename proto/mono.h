/* mono.h - the monotonic clock every timeout, deadline and rate reads.
 *
 * CLOCK_MONOTONIC never jumps with the wall clock; callers keep int64_t
 * stamps and subtract them.
 */
#ifndef SECMSG_MONO_H
#define SECMSG_MONO_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds on the monotonic clock. */
static inline int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds on the monotonic clock. */
static inline int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

#endif
