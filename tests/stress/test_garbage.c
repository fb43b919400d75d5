/* tests/stress/test_garbage.c - 100 MB of random bytes on 100 connections
 * (issue 8, hostile load).
 *
 * 100 connections at a time send random bytes as fast as the daemon takes
 * them, in four kinds of 25:
 *  - from the first byte, before any handshake;
 *  - frames of a valid handshake length (1..16384) with random bodies;
 *  - after a valid ClientHello (the daemon waits for ClientAuth);
 *  - after a complete login (the record layer).
 * The daemon must close every one of them (§2, §3, §4: a bad length, a
 * malformed handshake message, a record that fails to decrypt): a send
 * fails with EPIPE or ECONNRESET. Each closed connection is replaced by a
 * new one of its kind until 100 MiB have been sent in all (the daemon
 * closes a connection at its first bad frame, so one connection alone
 * never carries a megabyte). The daemon must stay unaffected: a chat
 * established before keeps relaying throughout, a new user logs in and
 * chats afterwards, and its count is back to the chatting users.
 *
 * The ASan daemon: correctness; a sanitizer report or a leak makes it exit
 * non-zero (test_clean_exit).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "rand.h"
#include "stress.h"
#include "tclient.h"
#include "testutil.h"

#define CONNS 100		/* at a time */
#define TOTAL (100u << 20)	/* bytes sent in all */
#define USERS 400		/* g00000... for the after-login kind */
#define CHUNK 16384
#define T 10000

static struct tdaemon D;
static struct st_cred cred;
static const char *build;

enum kind { K_RAW, K_HS_FRAMES, K_AFTER_HELLO, K_AFTER_LOGIN, K_MAX };

struct conn {
	int fd;
	enum kind kind;
	size_t accepted;		/* bytes taken by the kernel */
	bool closed;
	uint8_t buf[CHUNK];
	size_t off, len;		/* unsent part of buf */
};

static int setup(void **state)
{
	(void)state;
	build = st_daemon(false);
	if (st_nofile(CONNS + 100) < 0)
		return -1;
	/* Connections closed for their garbage are opened again at once, from
	 * one address, as the same few users: not what the per-source rate
	 * and the per-user login limit are tested with (test_sources,
	 * test_relay, test_linger). */
	if (td_start(&D, "handshake_timeout = 1m\n"
		     "handshake_rate_per_source = 0\nlogins_per_minute = 0\n",
		     false) < 0)
		return -1;
	if (st_enrol(&D, "g", USERS) < 0)
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

/* The next chunk of garbage for c. */
static void refill(struct conn *c)
{
	rand_bytes(c->buf, CHUNK);
	if (c->kind == K_HS_FRAMES) {
		/* Back-to-back frames of 1..16384 random bytes. */
		for (size_t off = 0; off + FRAME_HDR < CHUNK;) {
			uint32_t r = be32_get(c->buf + off);
			uint32_t body = 1 + r % FRAME_HS_MAX;

			frame_put_hdr(c->buf + off, body);
			off += FRAME_HDR + body;
		}
	}
	c->off = 0;
	c->len = CHUNK;
}

/* Open c, of kind k, in its kind's state. */
static void open_conn(struct conn *c, enum kind k)
{
	static int user;	/* a fresh name each time, so no takeover */
	char name[16];

	memset(c, 0, sizeof(*c));
	c->kind = k;
	if (c->kind == K_AFTER_LOGIN) {
		struct tc t;

		st_name(name, sizeof(name), "g", user++ % USERS);
		assert_int_equal(st_login(&t, D.port, name, &cred), 0);
		c->fd = t.fd;
		t.fd = -1;
		tc_close(&t);
	} else {
		c->fd = tc_connect(D.port);
		assert_true(c->fd >= 0);
	}
	if (c->kind == K_AFTER_HELLO) {
		struct hs_client_config cfg = { .username = "g00000",
						.key = cred.key,
						.trust = cred.trust,
						.server_name = "localhost" };
		uint8_t frame[FRAME_HDR + 256], sh[FRAME_HDR + FRAME_HS_MAX];
		struct hs_client hs;
		struct writer w;

		hs_client_init(&hs, &cfg);
		wr_init(&w, frame + FRAME_HDR, sizeof(frame) - FRAME_HDR);
		assert_int_equal(hs_client_hello(&hs, &w), HS_OK);
		frame_put_hdr(frame, (uint32_t)w.len);
		assert_int_equal(send(c->fd, frame, FRAME_HDR + w.len, 0),
				 (ssize_t)(FRAME_HDR + w.len));
		assert_true(st_read_frame(c->fd, sh, sizeof(sh), T) > 0);
		hs_client_clear(&hs);
	}
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

/* Send c garbage until the socket is full (true) or the daemon closed it
 * (false: a send failed with EPIPE or ECONNRESET). */
static bool pump(struct conn *c, size_t *total)
{
	for (;;) {
		ssize_t n;

		if (c->off == c->len)
			refill(c);
		n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			c->closed = true;
			return false;
		}
		c->off += (size_t)n;
		c->accepted += (size_t)n;
		*total += (size_t)n;
	}
}

static void chat_ping(struct tc *a, struct tc *b, uint32_t n)
{
	struct msg m;

	assert_int_equal(st_send_msg(a, b->name, (const uint8_t *)&n,
				     sizeof(n)), 0);
	assert_int_equal(tc_expect(b, OP_MESSAGE, &m, T), 0);
	assert_int_equal(m.e2e_len, sizeof(n));
	assert_memory_equal(m.e2e, &n, sizeof(n));
}

static void test_random_bytes(void **state)
{
	static struct conn conns[CONNS];
	struct pollfd p[CONNS];
	struct tc a, b, c, d;
	size_t total = 0, kind_acc[K_MAX] = { 0 };
	int kind_closed[K_MAX] = { 0 }, closed = 0, open = CONNS;
	uint32_t relayed = 0;
	int64_t t0;

	(void)state;
	assert_int_equal(tc_login(&a, D.port, "alice"), 0);
	assert_int_equal(tc_login(&b, D.port, "bob"), 0);
	assert_int_equal(st_chat(&a, &b, T), 0);
	for (int i = 0; i < CONNS; i++)
		open_conn(&conns[i], (enum kind)(i % K_MAX));
	assert_int_equal(st_wait_status(&D, 2 + CONNS / K_MAX, 1, 2 + CONNS,
					T), 0);

	t0 = st_now_us();
	while (open > 0) {
		int n = 0;

		for (int i = 0; i < CONNS; i++) {
			struct conn *k = &conns[i];

			if (k->fd < 0)
				continue;
			if (pump(k, &total)) {
				p[n++] = (struct pollfd){ .fd = k->fd,
							  .events = POLLOUT };
				continue;
			}
			/* Closed by the daemon: another of its kind, until
			 * 100 MiB went out. */
			kind_closed[k->kind]++;
			kind_acc[k->kind] += k->accepted;
			closed++;
			close(k->fd);
			k->fd = -1;
			if (total < TOTAL) {
				open_conn(k, k->kind);
				p[n++] = (struct pollfd){ .fd = k->fd,
							  .events = POLLOUT };
			} else {
				open--;
			}
		}
		/* The chat goes on meanwhile. */
		chat_ping(&a, &b, relayed++);
		if (n > 0)
			poll(p, (nfds_t)n, 10);
		if (st_now_us() - t0 > 120000000)
			fail_msg("%d connections not closed by the daemon "
				 "after 120 s (%zu MiB sent)", open,
				 total >> 20);
	}
	/* Unaffected: the chat still relays, a new user logs in and chats. */
	chat_ping(&b, &a, relayed++);
	assert_int_equal(tc_login(&c, D.port, "carol"), 0);
	assert_int_equal(tc_login(&d, D.port, "dave"), 0);
	assert_int_equal(st_chat(&c, &d, T), 0);
	chat_ping(&c, &d, 1);
	assert_int_equal(st_wait_status(&D, 4, 2, 4, T), 0);
	print_message("garbage (%s daemon): %zu MiB of random bytes sent in "
		      "%.1f s on %d connections at a time, %d connections in "
		      "all, each closed by the daemon (raw: %d, %zu KiB; "
		      "handshake-sized frames: %d, %zu KiB; after ClientHello: "
		      "%d, %zu KiB; after login: %d, %zu KiB); a chat relayed "
		      "%u messages meanwhile; new logins and chats work "
		      "after\n",
		      build, total >> 20, (double)(st_now_us() - t0) / 1e6,
		      CONNS, closed, kind_closed[K_RAW], kind_acc[K_RAW] >> 10,
		      kind_closed[K_HS_FRAMES], kind_acc[K_HS_FRAMES] >> 10,
		      kind_closed[K_AFTER_HELLO], kind_acc[K_AFTER_HELLO] >> 10,
		      kind_closed[K_AFTER_LOGIN], kind_acc[K_AFTER_LOGIN] >> 10,
		      relayed);
	assert_true(total >= TOTAL);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
	tc_close(&d);
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
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_clean_exit),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	return cmocka_run_group_tests_name("stress: random bytes", tests, setup,
					   teardown);
}
