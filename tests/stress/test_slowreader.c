/* tests/stress/test_slowreader.c - 1,000 chat messages a second to a user whose
 * client stops reading (issue 8, hostile load).
 *
 * alice sends bob MSG_SIZE-byte messages at 1,000 a second; bob reads
 * nothing. Kernel buffers fill, then the daemon's send queue for bob
 * (send_queue_bytes = 1M, the default) passes its bound: bob gets BYE 5
 * and alice END 2 (§5). As soon as alice sees END, bob starts reading,
 * within the daemon's 5 s linger after the BYE: he must find messages
 * 0, 1, 2 ... without a gap, then the BYE 5 as the very last record, then
 * the close. The daemon's RSS, sampled every 20 ms throughout, at END
 * and once bob is gone, must stay under its baseline + send_queue_bytes
 * + 4 MiB.
 *
 * Runs the release daemon ($SECMSG_RELEASE) when there is one: memory is
 * the figure here (ASan's quarantine would hide it).
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

#define RATE 1000		/* messages a second */
#define MSG_SIZE 4000		/* e2e bytes each */
#define QUEUE (1024 * 1024)	/* send_queue_bytes */
#define MAX_SECONDS 30
#define T 10000

static struct tdaemon D;
static const char *build;

static int setup(void **state)
{
	(void)state;
	build = st_daemon(true);
	if (!build)
		return -1;
	return td_start(&D, "messages_per_second = 2000\nrate_burst = 2000\n"
			"send_queue_bytes = 1M\n", false);
}

static int teardown(void **state)
{
	(void)state;
	/* After a failure only: test_clean_exit stopped it. */
	return D.pid > 0 && td_stop(&D) != 0 ? -1 : 0;
}

static void test_slow_reader(void **state)
{
	static uint8_t e2e[MSG_SIZE];
	struct tc a, b, w;
	struct msg m;
	long base, rss, max_rss = 0;
	int64_t t0, t_end = 0, next_sample = 0, t_bye = 0;
	uint32_t sent = 0, got = 0;
	int after_end = 0, r;
	bool ended = false, bye = false;

	(void)state;
	/* Warm-up: a chat with a few messages, so the baseline has what
	 * every relayed message needs. */
	assert_int_equal(tc_login(&a, D.port, "alice"), 0);
	assert_int_equal(tc_login(&b, D.port, "bob"), 0);
	assert_int_equal(tc_login(&w, D.port, "carol"), 0);
	assert_int_equal(st_chat(&w, &b, T), 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(st_send_msg(&w, "bob", e2e, sizeof(e2e)), 0);
		assert_int_equal(tc_expect(&b, OP_MESSAGE, &m, T), 0);
	}
	tc_close(&w);
	assert_int_equal(tc_expect(&b, OP_END, &m, T), 0);
	base = st_settled_rss(&D, 3000);

	assert_int_equal(st_chat(&a, &b, T), 0);
	t0 = st_now_us();
	while (!ended) {
		int64_t now = st_now_us();
		int64_t due = t0 + (int64_t)sent * 1000000 / RATE;

		if (now - t0 > (int64_t)MAX_SECONDS * 1000000)
			fail_msg("no END after %d s and %u messages",
				 MAX_SECONDS, sent);
		if (now >= next_sample) {
			rss = td_rss_kib(&D);
			if (rss > max_rss)
				max_rss = rss;
			next_sample = now + 20000;
		}
		if (now < due) {
			usleep((useconds_t)(due - now < 1000 ? due - now
							      : 1000));
		} else {
			memcpy(e2e, &sent, sizeof(sent));
			assert_int_equal(st_send_msg(&a, "bob", e2e,
						     sizeof(e2e)), 0);
			sent++;
		}
		while ((r = st_try_recv(&a, &m)) == 0) {
			if (m.op == OP_END) {
				assert_string_equal(m.peer, "bob");
				assert_int_equal(m.reason, END_DISCONNECTED);
				ended = true;
				t_end = st_now_us();
				rss = td_rss_kib(&D);
				if (rss > max_rss)
					max_rss = rss;
			} else if (m.op == OP_ERROR) {
				/* MESSAGEs sent after bob was gone, before
				 * alice heard it: no such chat. */
				assert_int_equal(m.code, ERR_NO_CHAT);
				after_end++;
			} else {
				fail_msg("alice got op %d", m.op);
			}
		}
		assert_int_equal(r, -EAGAIN);
	}
	/* bob reads now: messages without a gap, BYE 5 last, then closed. */
	for (;;) {
		r = tc_recv(&b, &m, T);
		if (r == -ECONNRESET)
			break;
		assert_int_equal(r, 0);
		assert_false(bye);	/* nothing after the BYE */
		if (m.op == OP_BYE) {
			assert_int_equal(m.reason, BYE_OVERFLOW);
			bye = true;
			t_bye = st_now_us();
			continue;
		}
		assert_int_equal(m.op, OP_MESSAGE);
		assert_int_equal(m.e2e_len, MSG_SIZE);
		assert_memory_equal(m.e2e, &got, sizeof(got));
		got++;
	}
	assert_true(bye);
	rss = st_settled_rss(&D, 3000);
	if (rss > max_rss)
		max_rss = rss;
	print_message("slow reader (%s daemon): alice sent %u messages of %d "
		      "bytes at %d/s; after %.1f s she got END 2 (then %d "
		      "ERROR 2 for messages already on their way); bob, "
		      "reading from then on, got messages 0..%u without a "
		      "gap, then BYE 5 (%.0f ms after END), then the close; "
		      "daemon RSS baseline %ld KiB, peak %ld KiB (+%ld KiB; "
		      "send queue bound %d KiB), %ld KiB once bob was gone\n",
		      build, sent, MSG_SIZE, RATE, (double)(t_end - t0) / 1e6,
		      after_end, got - 1, (double)(t_bye - t_end) / 1000, base,
		      max_rss, max_rss - base, QUEUE / 1024, rss);
	assert_true(got > 0 && got <= sent);
	assert_true(max_rss < base + QUEUE / 1024 + 4096);
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
		cmocka_unit_test(test_slow_reader),
		cmocka_unit_test(test_clean_exit),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	return cmocka_run_group_tests_name("stress: slow reader", tests, setup,
					   teardown);
}
