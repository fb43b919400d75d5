/* tests/stress/test_flood.c - a flood of RTTs, LISTs and MESSAGEs from one user
 * (issue 8, hostile load).
 *
 * With the default rate limit (messages_per_second = 50, rate_burst = 100)
 * alice sends RTT (to a user who does not exist), LIST and MESSAGE (in a
 * chat with dave) at FLOOD_RATE records a second for FLOOD_SECONDS, reading
 * her replies as she goes. Every record must be accounted for: answered
 * (REFUSE 2, LIST), relayed (dave gets the MESSAGE) or refused with
 * ERROR 3, never dropped silently; at most burst + rate x time are carried
 * out, and ERROR 3 replies do arrive. Meanwhile three other pairs chat at
 * 20 messages a second each: every message arrives in order, none of them
 * gets an ERROR, and their latency p99 stays under 50 ms.
 *
 * The ASan daemon: this is about the daemon's behaviour under abuse; a
 * sanitizer report or a leak makes it exit non-zero (test_clean_exit).
 */
#include <errno.h>
#include <pthread.h>
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

#define FLOOD_RATE 5000		/* records a second, 100 x the limit */
#define FLOOD_SECONDS 3
#define RATE 50
#define BURST 100
#define OTHERS 6
#define OTHER_US 50000		/* each other user sends every 50 ms */
#define ROUNDS ((FLOOD_SECONDS + 1) * 1000000 / OTHER_US)
#define T 10000

static struct tdaemon D;
static struct st_cred cred;
static const char *build;

struct flood {
	struct tc alice, dave;
	int sent[3];		/* RTT, LIST, MESSAGE */
	int errors, refused, lists, relayed, other;
	int64_t start, end, done;
	char why[256];
};

static int setup(void **state)
{
	(void)state;
	build = st_daemon(false);
	if (td_start(&D, "messages_per_second = 50\nrate_burst = 100\n",
		     false) < 0)
		return -1;
	if (st_enrol(&D, "o", OTHERS) < 0)
		return -1;
	return st_cred_load(&cred, "alice");
}

static int teardown(void **state)
{
	(void)state;
	st_cred_free(&cred);
	/* After a failure only: test_clean_exit stopped it. */
	return D.pid > 0 && td_stop(&D) != 0 ? -1 : 0;
}

/* What alice and dave received so far; false (and f->why) on anything
 * that should not be there. */
static bool flood_read(struct flood *f)
{
	struct msg m;
	int r;

	while ((r = st_try_recv(&f->alice, &m)) == 0) {
		if (m.op == OP_ERROR && m.code == ERR_LIMIT)
			f->errors++;
		else if (m.op == OP_REFUSE && m.reason == REFUSE_OFFLINE)
			f->refused++;
		else if (m.op == OP_LIST && m.last)
			f->lists++;
		else if (m.op != OP_LIST) {
			snprintf(f->why, sizeof(f->why), "alice got op %d "
				 "(code %u reason %u)", m.op, m.code, m.reason);
			return false;
		}
	}
	if (r != -EAGAIN) {
		snprintf(f->why, sizeof(f->why), "alice: receive failed (%d)",
			 r);
		return false;
	}
	while ((r = st_try_recv(&f->dave, &m)) == 0) {
		if (m.op != OP_MESSAGE) {
			snprintf(f->why, sizeof(f->why), "dave got op %d",
				 m.op);
			return false;
		}
		f->relayed++;
	}
	if (r != -EAGAIN) {
		snprintf(f->why, sizeof(f->why), "dave: receive failed (%d)",
			 r);
		return false;
	}
	return true;
}

static int flood_total(const struct flood *f)
{
	return f->sent[0] + f->sent[1] + f->sent[2];
}

static int answered(const struct flood *f)
{
	return f->errors + f->refused + f->lists + f->relayed;
}

static void *flooder(void *arg)
{
	static const uint8_t e2e[100] = { 0xf1 };
	struct flood *f = arg;
	int64_t deadline;

	f->start = st_now_us();
	for (int64_t k = 0; k < (int64_t)FLOOD_RATE * FLOOD_SECONDS; k++) {
		int64_t due = f->start + k * 1000000 / FLOOD_RATE;
		int op = (int)(k % 3), r;
		int64_t now;

		if (!flood_read(f))
			return NULL;
		if ((now = st_now_us()) < due)
			usleep((useconds_t)(due - now));
		if (op == 0)
			r = tc_rtt(&f->alice, "nobody");
		else if (op == 1)
			r = tc_send_pt(&f->alice, (const uint8_t *)"\x01", 1);
		else
			r = st_send_msg(&f->alice, "dave", e2e, sizeof(e2e));
		if (r < 0) {
			snprintf(f->why, sizeof(f->why), "send failed (%d)", r);
			return NULL;
		}
		f->sent[op]++;
	}
	f->end = st_now_us();
	deadline = f->end + (int64_t)T * 1000;
	while (answered(f) < flood_total(f) && st_now_us() < deadline) {
		if (!flood_read(f))
			return NULL;
		usleep(1000);
	}
	f->done = st_now_us();
	return NULL;
}

static void test_flood(void **state)
{
	struct tc others[OTHERS], *ps[OTHERS];
	struct flood f = { 0 };
	struct st_load l;
	struct msg m;
	double secs, p99, max;
	long allowed;
	pthread_t th;
	char name[16];
	int r;

	(void)state;
	assert_int_equal(tc_login(&f.alice, D.port, "alice"), 0);
	assert_int_equal(tc_login(&f.dave, D.port, "dave"), 0);
	assert_int_equal(st_chat(&f.alice, &f.dave, T), 0);
	for (int i = 0; i < OTHERS; i++) {
		st_name(name, sizeof(name), "o", i);
		assert_int_equal(st_login(&others[i], D.port, name, &cred), 0);
		ps[i] = &others[i];
	}
	for (int i = 0; i < OTHERS; i += 2)
		assert_int_equal(st_chat(&others[i], &others[i + 1], T), 0);
	/* A full bucket for alice (the chat took two tokens). */
	usleep(200000);

	assert_int_equal(pthread_create(&th, NULL, flooder, &f), 0);
	r = st_load_run(&l, ps, OTHERS, ROUNDS, OTHER_US, 64, T);
	pthread_join(th, NULL);
	if (f.why[0])
		fail_msg("flood: %s", f.why);

	secs = (double)(f.end - f.start) / 1e6;
	/* The bucket holds at most BURST when the flood starts and refills
	 * at RATE until the last record was answered. */
	allowed = BURST + (long)(RATE * (double)(f.done - f.start) / 1e6) + 1;
	p99 = st_quantile(l.lat, (size_t)l.got, 0.99);
	max = l.got ? l.lat[l.got - 1] : 0;
	print_message("flood (%s daemon): alice sent %d records in %.1f s (%d "
		      "RTT, %d LIST, %d MESSAGE; limit %d/s, burst %d): %d "
		      "carried out (%d REFUSE 2, %d LIST replies, %d messages "
		      "relayed; at most %ld allowed), %d ERROR 3, %d "
		      "unaccounted\n", build, flood_total(&f), secs, f.sent[0],
		      f.sent[1], f.sent[2], RATE, BURST,
		      f.refused + f.lists + f.relayed, f.refused, f.lists,
		      f.relayed, allowed, f.errors,
		      flood_total(&f) - answered(&f));
	print_message("flood: meanwhile %d other users sent %d messages: %d "
		      "delivered in order, %d other records; latency p50 %.2f "
		      "ms, p99 %.2f ms, max %.2f ms\n", OTHERS, l.sent, l.got,
		      l.other, st_quantile(l.lat, (size_t)l.got, 0.5), p99,
		      max);
	if (r < 0)
		fail_msg("other users: %s", l.why);
	assert_int_equal(answered(&f), flood_total(&f));
	assert_true(f.errors > 0);
	assert_true(f.refused + f.lists + f.relayed >= BURST);
	assert_true(f.refused + f.lists + f.relayed <= allowed);
	assert_int_equal(l.other, 0);
	assert_true(p99 < 50.0);
	st_load_free(&l);
	/* The bucket refills: alice is served again after a pause. */
	usleep(200000);
	assert_int_equal(tc_send_pt(&f.alice, (const uint8_t *)"\x01", 1), 0);
	assert_int_equal(tc_expect(&f.alice, OP_LIST, &m, T), 0);
	tc_close(&f.alice);
	tc_close(&f.dave);
	for (int i = 0; i < OTHERS; i++)
		tc_close(&others[i]);
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
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_clean_exit),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	return cmocka_run_group_tests_name("stress: request flood", tests,
					   setup, teardown);
}
