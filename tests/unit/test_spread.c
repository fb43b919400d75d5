/* test_spread.c - daemon/worker.c's spreading rule: when worker i > 0
 * starts and stops accepting new connections, from the load of worker
 * i - 1 and its own (percent of a CPU over the last 100 ms tick). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>

#include "daemon/worker.h"

/* One tick: returns whether the worker accepts afterwards. */
static bool tick(bool *on, int *calm, int prev, int own)
{
	*on = worker_spread_decide(*on, prev, own, calm);
	return *on;
}

static void test_starts_when_previous_busy(void **state)
{
	bool on = false;
	int calm = 0;

	(void)state;
	assert_false(tick(&on, &calm, 0, 0));
	assert_false(tick(&on, &calm, 74, 0));
	assert_false(tick(&on, &calm, 60, 60));	/* its own load does not count */
	assert_true(tick(&on, &calm, 75, 0));	/* SPREAD_BUSY_PCT */
	assert_true(tick(&on, &calm, 100, 0));	/* a worker whose heartbeat stopped */
}

static void test_stops_after_calm_ticks(void **state)
{
	bool on = true;
	int calm = 0;

	(void)state;
	/* Both together at most 50%: nine calm ticks keep it, the tenth ends it. */
	for (int i = 0; i < 9; i++)
		assert_true(tick(&on, &calm, 30, 20));
	assert_false(tick(&on, &calm, 30, 20));
	assert_int_equal(calm, 0);
	assert_false(tick(&on, &calm, 0, 0));
}

static void test_busy_tick_restarts_the_count(void **state)
{
	bool on = true;
	int calm = 0;

	(void)state;
	for (int i = 0; i < 9; i++)
		assert_true(tick(&on, &calm, 10, 10));
	assert_true(tick(&on, &calm, 40, 11));	/* 51% together: not calm */
	assert_int_equal(calm, 0);
	for (int i = 0; i < 9; i++)
		assert_true(tick(&on, &calm, 10, 10));
	assert_true(tick(&on, &calm, 80, 0));	/* busy again */
	assert_int_equal(calm, 0);
	for (int i = 0; i < 9; i++)
		assert_true(tick(&on, &calm, 0, 50));
	assert_false(tick(&on, &calm, 0, 50));
}

/* Between the two thresholds nothing changes: no flapping. */
static void test_hysteresis(void **state)
{
	bool on = false;
	int calm = 0;

	(void)state;
	for (int i = 0; i < 50; i++)
		assert_false(tick(&on, &calm, 70, 0));
	assert_true(tick(&on, &calm, 90, 0));
	for (int i = 0; i < 50; i++)
		assert_true(tick(&on, &calm, 40, 40));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starts_when_previous_busy),
		cmocka_unit_test(test_stops_after_calm_ticks),
		cmocka_unit_test(test_busy_tick_restarts_the_count),
		cmocka_unit_test(test_hysteresis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
