/* tests/stress/test_conns.c - 10,000 concurrent authenticated connections
 * (issue 8, hostile load): all held at once, then closed; the daemon's
 * RSS must come back within 10% of its baseline, taken after a warm-up
 * of 100 logins so that the allocator's arenas exist.
 *
 * Runs the release daemon ($SECMSG_RELEASE) when there is one: RSS is the
 * figure here, and ASan's quarantine and shadow memory would make it
 * meaningless (as in test_idle). Correctness under ASan is what the other
 * stress tests check. SECMSG_STRESS_ROUNDS=N repeats the 10,000 logins
 * and closes N times, printing the RSS after each (high-water or leak?).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "stress.h"
#include "tclient.h"
#include "testutil.h"

#define N 10000
#define WARMUP 100
#define T 10000

static struct tdaemon D;
static struct st_cred alice;
static int fds[N];
static const char *build;

static int setup(void **state)
{
	(void)state;
	if (st_nofile(N + 500) < 0)
		return -1;
	build = st_daemon(true);
	if (!build)
		return -1;
	if (td_start(&D, "max_connections = 20000\nidle_timeout = 1h\n"
		     "handshake_timeout = 1m\nhandshake_rate_per_source = 0\n", false) < 0)
		return -1;
	if (st_enrol(&D, "s", N) < 0 || st_cred_load(&alice, "alice") < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	st_cred_free(&alice);
	/* After a failure only: test_clean_exit stopped it. */
	return D.pid > 0 && td_stop(&D) != 0 ? -1 : 0;
}

static void close_all(int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Log in n users (s00000...) in batches, reading their LIST replies. */
static void login_many(int n)
{
	int failed = -1;

	for (int i = 0; i < n; i += 500) {
		int k = n - i < 500 ? n - i : 500;

		if (st_login_fds(D.port, "s", i, k, &alice, 100, fds + i,
				 &failed) < 0)
			fail_msg("login of s%05d failed", failed);
		assert_int_equal(st_drain(fds, i + k, 20), 0);
	}
}

/*
 * One round: N logins held, checked, closed; the settled RSS after it.
 * *held gets the RSS while they were held.
 */
static long one_round(long *held, double *secs)
{
	int64_t t0, t1;
	struct tc a;

	t0 = st_now_us();
	login_many(N);
	t1 = st_now_us();
	*secs = (double)(t1 - t0) / 1e6;
	assert_int_equal(st_drain(fds, N, 200), 0);
	/* The daemon's own count: all authenticated, none lost. */
	assert_int_equal(st_wait_status(&D, N, 0, N, T), 0);
	*held = st_settled_rss(&D, 5000);
	/* Held: no connection was closed by the daemon meanwhile, and it
	 * still logs a user in (whose LIST names all 10,000). */
	assert_int_equal(st_login(&a, D.port, "alice", &alice), 0);
	tc_close(&a);
	assert_int_equal(st_drain(fds, N, 100), 0);
	close_all(N);
	assert_int_equal(st_wait_status(&D, 0, 0, 0, 20000), 0);
	return st_settled_rss(&D, 10000);
}

static void test_10k_held_then_closed(void **state)
{
	const char *env = getenv("SECMSG_STRESS_ROUNDS");
	int rounds = env ? atoi(env) : 1;
	long base, held = 0, after = 0;
	double per, ret, secs = 0;

	(void)state;
	/* Warm-up: 100 logins, closed; then the baseline. */
	login_many(WARMUP);
	close_all(WARMUP);
	assert_int_equal(st_wait_status(&D, 0, 0, 0, T), 0);
	base = st_settled_rss(&D, 5000);
	for (int r = 0; r < (rounds > 0 ? rounds : 1); r++) {
		after = one_round(&held, &secs);
		per = (double)(held - base) * 1024 / N;
		ret = 100.0 * (double)(after - base) / (double)base;
		print_message("conns (%s daemon), round %d: %d authenticated "
			      "connections held (logged in in %.1f s, %.0f/s); "
			      "RSS baseline %ld KiB, held %ld KiB (%.0f bytes "
			      "per connection), after close %ld KiB (%+.1f%% "
			      "of baseline)\n", build, r + 1, N, secs, N / secs,
			      base, held, per, after, ret);
	}
	assert_true(per < 16 * 1024);
	assert_true(after <= base + base / 10);
}

static void test_still_serving(void **state)
{
	struct tc a, b;
	struct msg m;

	(void)state;
	assert_int_equal(st_login(&a, D.port, "alice", &alice), 0);
	assert_int_equal(st_login(&b, D.port, "s00001", &alice), 0);
	assert_int_equal(st_chat(&a, &b, T), 0);
	assert_int_equal(st_send_msg(&a, "s00001", (const uint8_t *)"hi", 2),
			 0);
	assert_int_equal(tc_expect(&b, OP_MESSAGE, &m, T), 0);
	assert_int_equal(m.e2e_len, 2);
	tc_close(&a);
	tc_close(&b);
}

/*
 * The daemon exits 0 on SIGTERM: no sanitizer report, no leak (a test of
 * its own: cmocka does not count a failing group teardown).
 */
static void test_clean_exit(void **state)
{
	(void)state;
	assert_int_equal(td_stop(&D), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_10k_held_then_closed),
		cmocka_unit_test(test_still_serving),
		cmocka_unit_test(test_clean_exit),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	return cmocka_run_group_tests_name("stress: 10,000 connections", tests,
					   setup, teardown);
}
