/* test_idle.c - what an idle authenticated connection costs the daemon.
 *
 * 10,000 users log in and stay idle; the daemon's RSS growth per
 * connection must stay under 16 KiB (issue: heap under 16 KiB per
 * connection; RSS is the stricter measure). Run against the release
 * build ($SECMSG_RELEASE) when there is one, since sanitizers inflate
 * every allocation. Then all close and the daemon must serve again.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "tclient.h"
#include "testutil.h"

#define N 10000
#define USER_FMT "u%05d"

static struct tdaemon D;
static int fds[N];

/* Enrol N users, all with alice's public key (the key is not the point). */
static int enrol(void)
{
	char path[512], *pem;
	size_t len;
	FILE *f = fopen(tu_pki_path("alice.pub"), "r");

	if (!f)
		return -1;
	pem = malloc(4096);
	len = fread(pem, 1, 4096, f);
	fclose(f);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%s/users/" USER_FMT ".pem", D.dir, i);
		f = fopen(path, "w");
		if (!f || fwrite(pem, 1, len, f) != len || fclose(f) != 0) {
			free(pem);
			return -1;
		}
	}
	free(pem);
	return 0;
}

static int setup(void **state)
{
	const char *rel = getenv("SECMSG_RELEASE");
	char bin[512];
	struct rlimit rl;
	unsigned mark;

	(void)state;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	snprintf(bin, sizeof(bin), "%s/secmsgd", rel ? rel : "");
	if (rel && access(bin, X_OK) == 0)
		setenv("SECMSG_BUILD", rel, 1);
	if (td_start(&D, "max_connections = 20000\nidle_timeout = 1h\n"
		     "handshake_rate_per_source = 0\n", false) < 0)
		return -1;
	if (enrol() < 0)
		return -1;
	mark = td_notify_mark(&D);
	td_signal(&D, SIGHUP);
	return td_wait_notify_since(&D, mark, "READY=1", 10000);
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

/* Read and drop whatever the server sent (LIST replies) on every fd. */
static void drain(int n)
{
	static struct pollfd p[N];
	char buf[65536];

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	while (poll(p, (nfds_t)n, 50) > 0)
		for (int i = 0; i < n; i++)
			if (p[i].revents & POLLIN)
				if (read(p[i].fd, buf, sizeof(buf)) <= 0)
					p[i].fd = -1;
}

static void test_idle_cost(void **state)
{
	long before, after;
	double per;
	char user[16];

	(void)state;
	sleep(1);
	before = td_rss_kib(&D);
	for (int i = 0; i < N; i++) {
		struct tc c;

		snprintf(user, sizeof(user), USER_FMT, i);
		if (tc_login_raw(&c, D.port, user, tu_pki_path("alice.key")) != 0)
			fail_msg("login %d (%s) failed", i, user);
		fds[i] = c.fd;
		if (i % 500 == 499)
			drain(i + 1);
	}
	drain(N);
	/* Let the workers' timers release per-connection buffers. */
	usleep(500000);
	drain(N);
	assert_int_equal(td_wait_notify(&D, "10000 users online", 10000), 0);
	after = td_rss_kib(&D);
	per = (double)(after - before) * 1024 / N;
	print_message("idle: RSS %ld KiB -> %ld KiB with %d authenticated idle "
		      "connections: %.0f bytes each\n", before, after, N, per);
	assert_true(per < 16 * 1024);
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

static void test_still_serving(void **state)
{
	struct tc a;

	(void)state;
	assert_int_equal(td_wait_notify(&D, "0 users online", 20000), 0);
	assert_int_equal(tc_login(&a, D.port, "alice"), 0);
	tc_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_cost),
		cmocka_unit_test(test_still_serving),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	return cmocka_run_group_tests_name("idle", tests, setup, teardown);
}
