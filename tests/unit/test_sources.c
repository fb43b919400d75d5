/* test_sources.c - daemon/sources.c: handshakes in progress per source,
 * and the SipHash-2-4 that picks each source's counter. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "daemon/sources.h"

static const uint8_t key[16] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
};

/* The reference implementation's vectors (messages 0, 1, 2, ... n-1),
 * cross-checked with `openssl mac -macopt size:8 SIPHASH`. */
static void test_siphash_vectors(void **state)
{
	static const struct {
		size_t len;
		uint64_t out;
	} v[] = {
		{ 0, 0x726fdb47dd0e0e31ull },  { 1, 0x74f839c593dc67fdull },
		{ 7, 0xab0200f58b01d137ull },  { 8, 0x93f5f5799a932462ull },
		{ 15, 0xa129ca6149be45e5ull }, { 16, 0x3f2acc7f57c29bdbull },
		{ 63, 0x958a324ceb064572ull },
	};
	uint8_t m[64];

	(void)state;
	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_true(siphash24(key, m, v[i].len) == v[i].out);
}

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* Count a connection from sa under a limit, no rate, IPv6 by /64. */
static bool enter(const struct sockaddr *sa, unsigned limit, uint16_t *b)
{
	struct sources_policy p = { .limit = limit, .prefix6 = 64 };

	return sources_enter(sa, &p, 0, b) == 0;
}

/* Take every counter of the source at once (the table is global). */
static void drain(const struct sockaddr *sa)
{
	uint16_t b = sources_bucket(sa, 64);

	while (sources_count(b) > 0)
		sources_leave(b);
}

static void test_limit_per_source(void **state)
{
	struct sockaddr_in a = v4("192.0.2.1", 1000), a2 = v4("192.0.2.1", 2000);
	uint16_t b1, b2, b3;

	(void)state;
	sources_init_key(key);
	drain(SA(a));
	assert_true(enter(SA(a), 2, &b1));
	assert_true(enter(SA(a2), 2, &b2));	/* another port, same source */
	assert_int_equal(b1, b2);
	assert_int_equal(sources_count(b1), 2);
	assert_false(enter(SA(a), 2, &b3));	/* at the limit */
	assert_int_equal(sources_count(b1), 2);		/* a refusal counts nothing */
	sources_leave(b1);
	assert_true(enter(SA(a), 2, &b3));	/* room again */
	sources_leave(b2);
	sources_leave(b3);
	assert_int_equal(sources_count(b1), 0);
}

/* Limit 0 refuses nobody but still counts, so a reload that sets a limit
 * finds the handshakes already in progress. */
static void test_no_limit_still_counts(void **state)
{
	struct sockaddr_in a = v4("198.51.100.7", 1);
	uint16_t b;

	(void)state;
	sources_init_key(key);
	drain(SA(a));
	for (int i = 0; i < 1000; i++)
		assert_true(enter(SA(a), 0, &b));
	assert_int_equal(sources_count(b), 1000);
	assert_false(enter(SA(a), 1000, &b));
	drain(SA(a));
}

static void test_ipv6_by_64(void **state)
{
	struct sockaddr_in6 a = v6("2001:db8:1:2::1", 1);
	struct sockaddr_in6 same = v6("2001:db8:1:2:ffff:ffff:ffff:ffff", 2);
	struct sockaddr_in6 other = v6("2001:db8:1:3::1", 1);
	uint16_t b;

	(void)state;
	sources_init_key(key);
	/* A whole /64 is one source. */
	assert_int_equal(sources_bucket(SA(a), 64), sources_bucket(SA(same), 64));
	/* Another /64 is another source (not a shared counter under this key). */
	assert_int_not_equal(sources_bucket(SA(a), 64), sources_bucket(SA(other), 64));
	drain(SA(a));
	drain(SA(other));
	assert_true(enter(SA(a), 1, &b));
	assert_false(enter(SA(same), 1, &b));
	assert_true(enter(SA(other), 1, &b));
	drain(SA(a));
	drain(SA(other));
}

/* With prefix 56, the /56 is one source; another /56 is another. */
static void test_ipv6_prefix(void **state)
{
	struct sockaddr_in6 a = v6("2001:db8:1:200::1", 1);
	struct sockaddr_in6 same = v6("2001:db8:1:2ff:ffff::1", 2);
	struct sockaddr_in6 other = v6("2001:db8:1:300::1", 1);

	(void)state;
	sources_init_key(key);
	assert_int_equal(sources_bucket(SA(a), 56), sources_bucket(SA(same), 56));
	assert_int_not_equal(sources_bucket(SA(a), 56),
			     sources_bucket(SA(other), 56));
	/* ... while by /64 they differ, and by /128 every address does. */
	assert_int_not_equal(sources_bucket(SA(a), 64), sources_bucket(SA(same), 64));
	assert_int_not_equal(sources_bucket(SA(a), 128),
			     sources_bucket(SA(a), 64));
}

/* A rate of 10 per second holds 40 at once; then one per 100 ms. A
 * refusal for the rate counts nothing; another source is not affected. */
static void test_rate(void **state)
{
	struct sockaddr_in a = v4("192.0.2.77", 1), o = v4("192.0.2.78", 1);
	struct sources_policy p = { .limit = 0, .rate = 10, .prefix6 = 64 };
	int64_t t = 5000;
	uint16_t b;

	(void)state;
	sources_init_key(key);
	drain(SA(a));
	for (int i = 0; i < 40; i++)
		assert_int_equal(sources_enter(SA(a), &p, t, &b), 0);
	assert_int_equal(sources_enter(SA(a), &p, t, &b), -EAGAIN);
	assert_int_equal(sources_count(b), 40);
	assert_int_equal(sources_enter(SA(a), &p, t + 99, &b), -EAGAIN);
	assert_int_equal(sources_enter(SA(a), &p, t + 100, &b), 0);
	assert_int_equal(sources_enter(SA(a), &p, t + 100, &b), -EAGAIN);
	assert_int_equal(sources_enter(SA(o), &p, t + 100, &b), 0);
	drain(SA(a));
	drain(SA(o));
	/* The limit is checked too (-EBUSY), before the rate. */
	p.limit = 1;
	assert_int_equal(sources_enter(SA(a), &p, t + 1000, &b), 0);
	assert_int_equal(sources_enter(SA(a), &p, t + 2000, &b), -EBUSY);
	drain(SA(a));
}

static void test_v4_mapped_is_v4(void **state)
{
	struct sockaddr_in a = v4("203.0.113.9", 1);
	struct sockaddr_in6 m = v6("::ffff:203.0.113.9", 2);
	struct sockaddr_in6 n = v6("::203.0.113.9", 2);	/* not mapped */

	(void)state;
	sources_init_key(key);
	assert_int_equal(sources_bucket(SA(a), 64), sources_bucket(SA(m), 64));
	assert_int_not_equal(sources_bucket(SA(a), 64), sources_bucket(SA(n), 64));
}

/* The key decides the counter: without it, nobody can pick a source that
 * shares a counter with somebody else's. */
static void test_key_moves_buckets(void **state)
{
	static const uint8_t other_key[16] = { 0xa5 };
	struct sockaddr_in a[8];
	uint16_t before[8];
	int moved = 0;

	(void)state;
	sources_init_key(key);
	for (int i = 0; i < 8; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		a[i] = v4(ip, 1);
		before[i] = sources_bucket(SA(a[i]), 64);
	}
	sources_init_key(other_key);
	for (int i = 0; i < 8; i++)
		moved += sources_bucket(SA(a[i]), 64) != before[i];
	assert_true(moved >= 7);
	assert_int_equal(sources_init(), 0);	/* a random key */
}

/* A socket that is not IP (a test's UNIX socket pair) is one source. */
static void test_other_family(void **state)
{
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	uint16_t b;

	(void)state;
	sources_init_key(key);
	drain(SA(u));
	assert_true(enter(SA(u), 1, &b));
	assert_false(enter(SA(u), 1, &b));
	drain(SA(u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_limit_per_source),
		cmocka_unit_test(test_no_limit_still_counts),
		cmocka_unit_test(test_ipv6_by_64),
		cmocka_unit_test(test_ipv6_prefix),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_v4_mapped_is_v4),
		cmocka_unit_test(test_key_moves_buckets),
		cmocka_unit_test(test_other_family),
	};

	return cmocka_run_group_tests_name("sources", tests, NULL, NULL);
}
