/* test_linger.c - what a session the server ends may still cost, against
 * the real secmsgd (doc/SECURITY.md §7.11; issue 13, finding 2).
 *
 * A session the server ends (BYE) stops reading and lingers until its
 * BYE is out. What it had queued and not yet started to send is dropped
 * (the BYE must not wait behind a backlog its reader will never see
 * through), the kernel may hold only a little for it, and one user
 * cannot stack up ended sessions by logging in again and again.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "keys.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000

static struct tdaemon D;

/* RSS is measured on the release build ($SECMSG_RELEASE) when there is
 * one: the sanitizers' allocator keeps freed memory in quarantine. */
static int setup(void **state)
{
	const char *rel = getenv("SECMSG_RELEASE");
	char bin[512];

	(void)state;
	snprintf(bin, sizeof(bin), "%s/secmsgd", rel ? rel : "");
	if (rel && access(bin, X_OK) == 0)
		setenv("SECMSG_BUILD", rel, 1);
	return td_start(&D, "messages_per_second = 100000\n"
			    "rate_burst = 100000\n"
			    "send_queue_bytes = 256K\n", false);
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

/* Log in over a socket whose receive buffer is rcvbuf bytes (set before
 * connecting, so the window the daemon sees is small from the start). */
static void login_small(struct tc *c, const char *user, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)D.port) };
	char path[64];
	sm_key *key;
	trust *t;

	memset(c, 0, sizeof(*c));
	framer_init(&c->fr, 0);
	snprintf(c->name, sizeof(c->name), "%s", user);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	snprintf(path, sizeof(path), "%s.key", user);
	assert_int_equal(key_load_private(tu_pki_path(path), NULL, &key), 0);
	assert_int_equal(trust_load(tu_pki_path("ca.pem"), NULL, &t), 0);
	assert_int_equal(tc_handshake(c, user, key, t, T), 0);
	assert_int_equal(tc_await_list(c, T), 0);
	key_unref(key);
	trust_free(t);
}

static void expect(struct tc *c, uint8_t op, struct msg *m)
{
	assert_int_equal(tc_expect(c, op, m, T), 0);
}

/* a asks b, b accepts, a confirms (the daemon does not look inside). */
static void chat(struct tc *a, struct tc *b)
{
	struct msg m, acc = { .op = OP_ACCEPT }, conf = { .op = OP_CONFIRM };
	uint8_t sig[64] = { 1 };

	assert_int_equal(tc_rtt(a, b->name), 0);
	expect(b, OP_RTT, &m);
	snprintf(acc.peer, sizeof(acc.peer), "%s", a->name);
	acc.sig = sig;
	acc.sig_len = sizeof(sig);
	assert_int_equal(tc_send(b, &acc), 0);
	expect(a, OP_ACCEPT, &m);
	snprintf(conf.peer, sizeof(conf.peer), "%s", b->name);
	conf.sig = sig;
	conf.sig_len = sizeof(sig);
	assert_int_equal(tc_send(a, &conf), 0);
	expect(b, OP_CONFIRM, &m);
}

/* Read c's records for ms at about rate bytes per second; true at BYE
 * (its reason in *reason). */
static bool read_slowly(struct tc *c, int ms, long rate, long *taken,
			int64_t start, uint8_t *reason)
{
	int64_t end = tc_now_ms() + ms;
	struct msg m;

	while (tc_now_ms() < end) {
		int64_t due = start + *taken * 1000 / rate;

		if (tc_now_ms() < due) {
			usleep(5000);
			continue;
		}
		if (tc_recv(c, &m, 20) != 0)
			continue;
		*taken += FRAME_HDR + (long)be32_get(c->rec);
		if (m.op == OP_BYE) {
			*reason = m.reason;
			return true;
		}
	}
	return false;
}

/* True once a has END from peer (records drained without waiting). */
static bool ended(struct tc *a, const char *peer)
{
	struct msg m;

	while (tc_recv(a, &m, 1) == 0)
		if (m.op == OP_END && strcmp(m.peer, peer) == 0)
			return true;
	return false;
}

/* bob reads at 40 KB/s; alice writes to him faster. Once his queue
 * passes 256K he is dropped (alice gets END 2): his BYE 5 must reach him
 * within 2 s, not after the backlog the daemon had queued for him. */
static void test_dropped_reader_sees_bye(void **state)
{
	static uint8_t e2e[1000];
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = sizeof(e2e) };
	struct tc a, b;
	const long rate = 40000;
	long taken = 0;
	int64_t start, dropped = 0;
	uint8_t reason = 0;
	bool bye = false;

	(void)state;
	assert_int_equal(tc_login(&a, D.port, "alice"), 0);
	login_small(&b, "bob", 4096);
	chat(&a, &b);
	snprintf(m.peer, sizeof(m.peer), "bob");
	start = tc_now_ms();
	while (!bye && tc_now_ms() - start < 60000) {
		if (!dropped) {
			for (int i = 0; i < 100; i++)
				assert_int_equal(tc_send(&a, &m), 0);
			if (ended(&a, "bob"))
				dropped = tc_now_ms();
		}
		bye = read_slowly(&b, 50, rate, &taken, start, &reason);
		if (dropped && !bye && tc_now_ms() - dropped > 10000)
			break;
	}
	assert_true(dropped > 0);
	assert_true(bye);
	assert_int_equal(reason, BYE_OVERFLOW);
	fprintf(stderr, "BYE 5 reached the reader %lld ms after the drop "
		"(%ld bytes read in all)\n", (long long)(tc_now_ms() - dropped),
		taken);
	assert_true(tc_now_ms() - dropped <= 2000);
	tc_close(&a);
	tc_close(&b);
}

/* TCP memory in pages (/proc/net/sockstat "TCP: ... mem N"). */
static long tcp_mem_pages(void)
{
	FILE *f = fopen("/proc/net/sockstat", "r");
	char line[256];
	long mem = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "TCP:", 4) == 0) {
			char *p = strstr(line, " mem ");

			if (p)
				mem = atol(p + 5);
		}
	fclose(f);
	return mem;
}

/* Send PINGs without reading until about bytes of them are out or the
 * socket would block. */
static void ping_flood(struct tc *c, size_t bytes)
{
	uint8_t pt[9] = { OP_PING }, frame[FRAME_HDR + 64];
	size_t sent = 0;
	int fl = fcntl(c->fd, F_GETFL);

	fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
	while (sent < bytes) {
		long n = chan_seal(&c->chan.tx, pt, sizeof(pt), frame);
		ssize_t w;

		assert_true(n > 0);
		w = send(c->fd, frame, (size_t)n, MSG_NOSIGNAL);
		if (w < n)
			break;	/* blocked (a torn frame is fine: never used again) */
		sent += (size_t)n;
	}
}

/*
 * One user logs in 12 times in about 4 s; each session is flooded with
 * PINGs and never read. What the daemon and the kernel hold for it stays
 * within a bound: RSS grows by at most 4 MiB and TCP memory (the whole
 * machine's, so the bound leaves room for others) by at most 1,024 pages
 * (4 MiB) while it lasts, and is back within 256 pages of where it was
 * once the sessions' linger has passed. Before these bounds (the kernel
 * kept each session's backlog, 12 sessions lived at once) the same
 * storm took TCP memory from 626 to 8,863 pages.
 */
static void test_login_storm(void **state)
{
	struct tc c[12];
	long rss0, mem0, rss_max = 0, mem_max = 0, mem_after;
	int logged = 0;

	(void)state;
	rss0 = td_rss_kib(&D);
	mem0 = tcp_mem_pages();
	for (int i = 0; i < 12; i++) {
		login_small(&c[i], "erin", 4096);
		logged++;
		ping_flood(&c[i], 2u << 20);
		usleep(300000);
		if (td_rss_kib(&D) > rss_max)
			rss_max = td_rss_kib(&D);
		if (tcp_mem_pages() > mem_max)
			mem_max = tcp_mem_pages();
	}
	for (int i = 0; i < 10; i++) {
		usleep(100000);
		if (td_rss_kib(&D) > rss_max)
			rss_max = td_rss_kib(&D);
		if (tcp_mem_pages() > mem_max)
			mem_max = tcp_mem_pages();
	}
	for (int i = 0; i < logged; i++)
		tc_close(&c[i]);
	sleep(7);	/* past the 5 s linger */
	mem_after = tcp_mem_pages();
	fprintf(stderr, "login storm: RSS %ld -> max %ld KiB, TCP memory "
		"%ld -> max %ld -> %ld pages\n", rss0, rss_max, mem0, mem_max,
		mem_after);
	assert_true(rss_max - rss0 <= 4 * 1024);
	assert_true(mem_max - mem0 <= 1024);
	assert_true(mem_after - mem0 <= 256);
}

/* Lines of the daemon's log containing what. */
static int log_count(const char *what)
{
	FILE *f = fopen(td_path(&D, "secmsgd.log"), "r");
	char line[1024];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

/*
 * 100 failed handshakes in a burst: each worker logs at most 20 of them
 * one by one in 10 s, then one line with the count of the others, so a
 * flood cannot push journald into its own rate limit.
 */
static void test_failed_handshakes_logged_within_budget(void **state)
{
	int before = log_count("handshake from"), lines, summary = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		int fd = tc_connect(D.port);

		assert_true(fd >= 0);
		assert_int_equal(tc_send_frame(fd, (const uint8_t *)"\x01junk", 5), 0);
		close(fd);
	}
	for (int i = 0; i < 150 && !summary; i++) {
		usleep(100000);
		summary = log_count("more failed handshakes");
	}
	lines = log_count("handshake from") - before;
	fprintf(stderr, "100 failed handshakes: %d logged one by one, then "
		"%d summary line(s)\n", lines, summary);
	assert_true(lines <= 2 * 20);
	assert_true(summary >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dropped_reader_sees_bye),
		cmocka_unit_test(test_login_storm),
		cmocka_unit_test(test_failed_handshakes_logged_within_budget),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
