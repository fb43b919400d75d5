/* test_client_retry.c - when the client connects again, and how soon:
 * the waits stay within their bounds, are spread at random, grow up to
 * the configured longest wait, start over after a login, and stop for
 * good after BYE 1, 2 or 7, an authentication failure or a version
 * refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "client/retry.h"
#include "msg.h"

/* A small generator of its own: the test does not depend on rand(). */
static uint32_t next_rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*s >> 32);
}

/* Every wait is in [cap/2, cap], the cap 1 s doubling up to max. */
static void test_bounds(void **state)
{
	static const unsigned maxes[] = { 60000, 250, 1000, 3600000, 1 };
	uint64_t seed = 42;
	struct retry t;

	(void)state;
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		unsigned max = maxes[m], want = RETRY_BASE_MS;

		retry_init(&t, max);
		for (unsigned k = 0; k < 40; k++) {
			unsigned cap = want < max ? want : max, w;
			uint32_t r = k % 3 == 0 ? 0 : k % 3 == 1 ?
				     UINT32_MAX : next_rnd(&seed);

			assert_int_equal(retry_cap(&t), cap);
			w = retry_next(&t, r);
			if (w < cap / 2 || w > cap)
				fail_msg("max %u, attempt %u: wait %u outside "
					 "[%u, %u]", max, k, w, cap / 2, cap);
			if (want < 0x40000000u)
				want *= 2;
		}
		assert_int_equal(retry_cap(&t), max);
	}
}

/* The waits of clients that lost the same server at the same time are
 * spread over the whole range, not one value. */
static void test_jitter(void **state)
{
	uint64_t seed = 7;
	unsigned low = 0, high = 0, lo = UINT32_MAX, hi = 0;
	struct retry t;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		unsigned w;

		retry_init(&t, 60000);
		w = retry_next(&t, next_rnd(&seed));
		if (w < 750)
			low++;
		else
			high++;
		lo = w < lo ? w : lo;
		hi = w > hi ? w : hi;
	}
	/* Uniform over [500, 1000]: about half below 750. */
	assert_true(low > 400 && high > 400);
	assert_true(lo < 520 && hi > 980);
}

/* A login starts the waits over. */
static void test_reset(void **state)
{
	struct retry t;

	(void)state;
	retry_init(&t, 60000);
	for (int i = 0; i < 5; i++)
		retry_next(&t, 0);
	assert_int_equal(retry_cap(&t), 32000);
	retry_reset(&t);
	assert_int_equal(retry_cap(&t), RETRY_BASE_MS);
	assert_int_equal(retry_next(&t, 0), RETRY_BASE_MS / 2);
}

/* What stops reconnecting for good. */
static void test_stop(void **state)
{
	(void)state;
	assert_false(retry_after_bye(BYE_KICKED));
	assert_false(retry_after_bye(BYE_ELSEWHERE));
	assert_false(retry_after_bye(BYE_REMOVED));
	assert_true(retry_after_bye(BYE_SHUTDOWN));
	assert_true(retry_after_bye(BYE_IDLE));
	assert_true(retry_after_bye(BYE_OVERFLOW));
	assert_true(retry_after_bye(BYE_VIOLATION));
	assert_true(retry_after_bye(0));
	/* cnet_hs_explain's 3: an authentication failure, ours or theirs. */
	assert_false(retry_after_login(3, HS_ERR_SERVER_SIG, 0));
	assert_false(retry_after_login(3, HS_ERR_PEER_ERROR, HSE_AUTH));
	assert_false(retry_after_login(1, HS_ERR_PEER_ERROR, HSE_AUTH));
	assert_false(retry_after_login(1, HS_ERR_PEER_ERROR, HSE_VERSION));
	assert_false(retry_after_login(1, HS_ERR_VERSION, 0));
	/* The network, a busy or restarting server: try again. */
	assert_true(retry_after_login(1, HS_ERR_INTERNAL, 0));
	assert_true(retry_after_login(1, HS_ERR_PEER_ERROR, HSE_BUSY));
	assert_true(retry_after_login(1, HS_ERR_PEER_ERROR, HSE_TIMEOUT));
	assert_true(retry_after_login(1, HS_ERR_MALFORMED, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
