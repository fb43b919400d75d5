/* sources.h - connections still in their handshake, counted per source.
 *
 * One host must not hold all of max_connections with handshakes it never
 * finishes (doc/SECURITY.md, W3). Every worker counts the connections it
 * accepts here until their handshake ends, by source: the IPv4 address,
 * or the /64 prefix of an IPv6 address (a host usually has a whole /64;
 * an IPv4-mapped IPv6 address counts as the IPv4 address). A source at
 * the limit is refused.
 *
 * The counters are a fixed table of atomics shared by the workers, indexed
 * by SipHash-2-4 of the source under a key drawn at start: unrelated
 * sources may share a counter (the limit is then reached sooner, never
 * later), and without the key nobody can choose sources that share one
 * with somebody else's.
 */
#ifndef SECMSG_SOURCES_H
#define SECMSG_SOURCES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define SOURCES_BUCKETS 4096	/* counters: 16 KiB */

/* Draw the hash key: once, before the workers start. 0 or -EIO. */
int sources_init(void);
/* The same with a given key (tests). */
void sources_init_key(const uint8_t key[16]);

/* What a source may do (config.h's limits of the same names). */
struct sources_policy {
	unsigned limit;		/* connections not logged in; 0: any */
	unsigned rate;		/* connections begun per second; 0: any */
	unsigned prefix6;	/* an IPv6 source is its /prefix6 */
};

/*
 * Count one more connection from sa, unless its source has p->limit of
 * them not logged in yet (-EBUSY) or has begun more than its rate allows
 * (-EAGAIN: a bucket of 4 s' worth refilled at p->rate per second; now_ms
 * the monotonic clock). 0 and *bucket set if counted; the caller then
 * owes one sources_leave(*bucket).
 */
int sources_enter(const struct sockaddr *sa, const struct sources_policy *p,
		  int64_t now_ms, uint16_t *bucket);
/* That connection's handshake ended (logged in, refused or closed). */
void sources_leave(uint16_t bucket);
/* The counter sa's source uses (its /prefix6 if IPv6), and its value
 * (tests, statistics). */
uint16_t sources_bucket(const struct sockaddr *sa, unsigned prefix6);
unsigned sources_count(uint16_t bucket);

/* SipHash-2-4 (Aumasson and Bernstein), 64-bit output. */
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
