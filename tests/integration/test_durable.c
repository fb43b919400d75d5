/* test_durable.c - STORED is never sent before the commit that holds the
 * message is on the disk (issue 17), against the real secmsgd with an
 * LD_PRELOAD shim (tests/shim/syncshim.c) that makes every fsync() and
 * fdatasync() take SYNC_MS longer and logs when each returned
 * (CLOCK_MONOTONIC, the clock this test reads too).
 *
 * Each STORED must arrive after a flush that returned after its MESSAGE
 * was sent; a burst of messages shares flushes (group commit): fewer
 * flushes than messages.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "msg.h"
#include "tclient.h"
#include "testutil.h"

#define T 10000		/* ms to wait for an expected record */
#define SYNC_MS 40	/* each flush takes this much longer */
#define BURST 30

static struct tdaemon D;
static char sync_log[64];

static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* secmsgd under the shim (SECMSG_DAEMON_WRAPPER: env VAR=... secmsgd). */
static int setup(void **state)
{
	static char wrap[2048];
	const char *b = getenv("SECMSG_BUILD");
	const char *asan = getenv("ASAN_OPTIONS");
	char shim[1024], *abs, *old;
	int fd, r;

	(void)state;
	snprintf(shim, sizeof(shim), "%s/tests/shim/syncshim.so",
		 b ? b : "build");
	abs = realpath(shim, NULL);
	if (!abs) {
		print_error("no %s: make tests builds it\n", shim);
		return -1;
	}
	snprintf(sync_log, sizeof(sync_log), "/tmp/secmsg-sync-XXXXXX");
	fd = mkstemp(sync_log);
	if (fd < 0) {
		free(abs);
		return -1;
	}
	close(fd);
	/* The shim comes before the sanitizer's runtime in a sanitizer
	 * build of secmsgd: tell it that this is meant. */
	snprintf(wrap, sizeof(wrap), "env LD_PRELOAD=%s SYNCSHIM_LOG=%s "
		 "SYNCSHIM_DELAY_MS=%d ASAN_OPTIONS=%s%sverify_asan_link_order=0",
		 abs, sync_log, SYNC_MS, asan ? asan : "", asan ? ":" : "");
	free(abs);
	/* The shim replaces any other wrapper (valgrind) for this test's
	 * daemons only. */
	old = getenv("SECMSG_DAEMON_WRAPPER");
	old = old ? strdup(old) : NULL;
	setenv("SECMSG_DAEMON_WRAPPER", wrap, 1);
	r = td_start(&D, "messages_per_second = 1000\n"
		     "logins_per_minute = 0\n", false);
	if (old)
		setenv("SECMSG_DAEMON_WRAPPER", old, 1);
	else
		unsetenv("SECMSG_DAEMON_WRAPPER");
	free(old);
	return r;
}

static int teardown(void **state)
{
	int r;

	(void)state;
	r = td_stop(&D);
	unlink(sync_log);
	return r == 0 ? 0 : -1;
}

/* The flushes logged so far, in the order they returned. */
static size_t read_syncs(int64_t *v, size_t max)
{
	FILE *f = fopen(sync_log, "r");
	long long t;
	size_t n = 0;

	assert_non_null(f);
	while (n < max && fscanf(f, "sync %lld\n", &t) == 1)
		v[n++] = t;
	fclose(f);
	return n;
}

/* Flushes that returned in (from, to). */
static size_t syncs_between(int64_t from, int64_t to)
{
	static int64_t v[100000];
	size_t n = read_syncs(v, 100000), k = 0;

	for (size_t i = 0; i < n; i++)
		k += v[i] > from && v[i] < to;
	return k;
}

static void expect(struct tc *c, uint8_t op, struct msg *m)
{
	int r = tc_expect(c, op, m, T);

	if (r != 0)
		fail_msg("%s: no %s (%d)", c->name, opcode_name(op), r);
}

/* alice and bob make a conversation; bob goes offline. */
static void bob_offline(struct tc *a, struct tc *b)
{
	struct msg m;

	assert_int_equal(tc_login_v(a, D.port, "alice", 2), 0);
	assert_int_equal(tc_login_v(b, D.port, "bob", 2), 0);
	assert_int_equal(tc_conversation(a, b, T), 0);
	tc_close(b);
	expect(a, OP_PRESENCE, &m);
	assert_int_equal(m.online, 0);
}

static void send_message(struct tc *c, uint32_t ref)
{
	static const uint8_t e2e[64] = { 0xe2 };
	struct msg m = { .op = OP_MESSAGE, .ref = ref, .e2e = e2e,
			 .e2e_len = sizeof(e2e) };

	snprintf(m.peer, sizeof(m.peer), "bob");
	assert_int_equal(tc_send(c, &m), 0);
}

/* One at a time: each STORED comes after a flush that began after its
 * MESSAGE was sent. */
static void test_stored_after_flush(void **state)
{
	struct tc a, b;
	struct msg m;

	(void)state;
	bob_offline(&a, &b);
	for (uint32_t ref = 1; ref <= 10; ref++) {
		int64_t t0, t1;

		/* No flush of an earlier commit still on its way. */
		usleep(3 * SYNC_MS * 1000);
		t0 = now_ns();
		send_message(&a, ref);
		expect(&a, OP_STORED, &m);
		t1 = now_ns();
		assert_int_equal(m.ref, ref);
		if (syncs_between(t0, t1) == 0)
			fail_msg("STORED %u arrived with no flush since its "
				 "MESSAGE", ref);
		assert_true(t1 - t0 >= (int64_t)SYNC_MS * 1000000);
	}
	tc_close(&a);
}

/* A burst: every STORED after a flush, and the burst shares flushes. */
static void test_group_commit(void **state)
{
	struct tc a, b;
	struct msg m;
	int64_t t0, t1 = 0;
	size_t flushes;

	(void)state;
	bob_offline(&a, &b);
	usleep(3 * SYNC_MS * 1000);	/* the conversation's own flushes */
	t0 = now_ns();
	for (uint32_t ref = 1; ref <= BURST; ref++)
		send_message(&a, ref);
	for (uint32_t ref = 1; ref <= BURST; ref++) {
		expect(&a, OP_STORED, &m);
		t1 = now_ns();
		assert_int_equal(m.ref, ref);
		if (syncs_between(t0, t1) == 0)
			fail_msg("STORED %u arrived with no flush since the "
				 "burst began", ref);
	}
	flushes = syncs_between(t0, t1);
	print_message("%d messages stored with %zu flushes in %lld ms\n",
		      BURST, flushes, (long long)((t1 - t0) / 1000000));
	assert_true(flushes < BURST / 2);
	tc_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stored_after_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
