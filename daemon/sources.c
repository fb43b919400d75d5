/* sources.c - connections still in their handshake, counted per source. */
#include "sources.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>

#include "rand.h"

static atomic_uint counters[SOURCES_BUCKETS];
/* Rate buckets: the low 32 bits the monotonic ms of the last update, the
 * high 32 bits the tokens in thousandths of a connection. */
static atomic_uint_fast64_t rates[SOURCES_BUCKETS];
#define RATE_BURST_S 4	/* a bucket holds four seconds' worth */
static uint8_t hash_key[16];

/* ---- SipHash-2-4 ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void sip_rounds(uint64_t v[4], int n)
{
	while (n-- > 0) {
		v[0] += v[1];
		v[1] = ROTL(v[1], 13) ^ v[0];
		v[0] = ROTL(v[0], 32);
		v[2] += v[3];
		v[3] = ROTL(v[3], 16) ^ v[2];
		v[0] += v[3];
		v[3] = ROTL(v[3], 21) ^ v[0];
		v[2] += v[1];
		v[1] = ROTL(v[1], 17) ^ v[2];
		v[2] = ROTL(v[2], 32);
	}
}

static void sip_block(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_rounds(v, 2);
	v[0] ^= m;
}

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v[4] = {
		k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
		k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull,
	};
	uint8_t last[8] = { 0 };
	size_t whole = len & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8)
		sip_block(v, le64(p + i));
	memcpy(last, p + whole, len - whole);
	last[7] = (uint8_t)len;
	sip_block(v, le64(last));
	v[2] ^= 0xff;
	sip_rounds(v, 4);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- the table ---- */

int sources_init(void)
{
	return rand_bytes(hash_key, sizeof(hash_key)) < 0 ? -EIO : 0;
}

void sources_init_key(const uint8_t key[16])
{
	memcpy(hash_key, key, sizeof(hash_key));
}

/* The source's bytes, tagged by kind so an IPv4 address and an IPv6
 * prefix differ: 4 and the address, or 6, the prefix length and the
 * address with the bits past it cleared. */
static size_t source_of(const struct sockaddr *sa, unsigned prefix6,
			uint8_t out[18])
{
	static const uint8_t v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};

	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)
					   ->sin6_addr.s6_addr;

		if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
			out[0] = 4;
			memcpy(out + 1, a + 12, 4);
			return 5;
		}
		if (prefix6 > 128)
			prefix6 = 128;
		out[0] = 6;
		out[1] = (uint8_t)prefix6;
		memset(out + 2, 0, 16);
		memcpy(out + 2, a, prefix6 / 8);
		if (prefix6 % 8)
			out[2 + prefix6 / 8] = a[prefix6 / 8] &
					       (uint8_t)(0xff00 >> (prefix6 % 8));
		return 18;
	}
	if (sa->sa_family == AF_INET) {
		out[0] = 4;
		memcpy(out + 1,
		       &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 5;
	}
	out[0] = 0;	/* not an IP socket: all such share a counter */
	return 1;
}

uint16_t sources_bucket(const struct sockaddr *sa, unsigned prefix6)
{
	uint8_t src[18];
	size_t n = source_of(sa, prefix6, src);

	return (uint16_t)(siphash24(hash_key, src, n) % SOURCES_BUCKETS);
}

/* Take one connection from bucket b's rate; false if it has none. */
static bool rate_take(uint16_t b, unsigned rate, int64_t now_ms)
{
	uint64_t cap = (uint64_t)rate * 1000 * RATE_BURST_S;
	uint32_t now = (uint32_t)now_ms;
	uint_fast64_t old = atomic_load_explicit(&rates[b], memory_order_relaxed);
	uint_fast64_t new;

	if (rate == 0)
		return true;
	do {
		uint64_t tokens = old >> 32;
		uint32_t then = (uint32_t)old;

		/* An empty word is a bucket never used: full. */
		tokens = old == 0 ? cap : tokens + (uint64_t)(now - then) * rate;
		if (tokens > cap)
			tokens = cap;
		if (tokens < 1000)
			return false;
		new = (tokens - 1000) << 32 | now;
	} while (!atomic_compare_exchange_weak_explicit(&rates[b], &old, new,
							memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

int sources_enter(const struct sockaddr *sa, const struct sources_policy *p,
		  int64_t now_ms, uint16_t *bucket)
{
	uint16_t b = sources_bucket(sa, p->prefix6);
	unsigned n = atomic_load_explicit(&counters[b], memory_order_relaxed);

	/* A compare-and-swap loop, so a counter never passes the limit even
	 * for a moment while other workers test it. */
	do {
		if (p->limit && n >= p->limit)
			return -EBUSY;
	} while (!atomic_compare_exchange_weak_explicit(&counters[b], &n, n + 1,
							memory_order_relaxed,
							memory_order_relaxed));
	if (!rate_take(b, p->rate, now_ms)) {
		sources_leave(b);
		return -EAGAIN;
	}
	*bucket = b;
	return 0;
}

void sources_leave(uint16_t bucket)
{
	atomic_fetch_sub_explicit(&counters[bucket % SOURCES_BUCKETS], 1,
				  memory_order_relaxed);
}

unsigned sources_count(uint16_t bucket)
{
	return atomic_load_explicit(&counters[bucket % SOURCES_BUCKETS],
				    memory_order_relaxed);
}
