/* test_daemon.c - the real secmsgd on loopback, driven by a proto/ client.
 *
 * Every opcode path of PROTOCOL.md §5 with its exact reply, several users
 * across workers, takeover, expiry, rate limit, timeouts, shutdown and
 * reload. The whole list runs twice: secmsgd binding its own socket, and
 * secmsgd started by systemd-socket-activate.
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "keys.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000	/* ms to wait for an expected record */

static struct tdaemon D;
static bool activated;

static const char *LIMITS =
	"request_timeout = 2s\n"
	"messages_per_second = 2000\n"
	"rate_burst = 400\n"
	"max_chats = 3\n"
	"max_pending = 2\n"
	"send_queue_bytes = 64K\n"
	"handshake_timeout = 3s\n"
	"logins_per_minute = 0\n";

static int setup(void **state)
{
	(void)state;
	return td_start(&D, LIMITS, activated);
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

static void login(struct tc *c, const char *user)
{
	assert_int_equal(tc_login(c, D.port, user), 0);
}

static void expect(struct tc *c, uint8_t op, struct msg *m)
{
	assert_int_equal(tc_expect(c, op, m, T), 0);
}

static void expect_refuse(struct tc *c, const char *peer, uint8_t reason)
{
	struct msg m;

	expect(c, OP_REFUSE, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.reason, reason);
}

static void expect_end(struct tc *c, const char *peer, uint8_t reason)
{
	struct msg m;

	expect(c, OP_END, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.reason, reason);
}

static void expect_error(struct tc *c, uint16_t code)
{
	struct msg m;

	expect(c, OP_ERROR, &m);
	assert_int_equal(m.code, code);
}

static void expect_bye(struct tc *c, uint8_t reason)
{
	struct msg m;

	expect(c, OP_BYE, &m);
	assert_int_equal(m.reason, reason);
	assert_true(tc_closed(c, T));
}

/* The SPKI the daemon holds for user (from the fixture .pub). */
static void assert_peer_key(const struct msg *m, const char *user)
{
	char path[64];
	sm_key *k;
	const uint8_t *spki;
	size_t len;

	snprintf(path, sizeof(path), "%s.pub", user);
	assert_int_equal(key_load_public(tu_pki_path(path), &k), 0);
	spki = key_spki(k, &len);
	assert_int_equal(m->peer_key_len, len);
	assert_memory_equal(m->peer_key, spki, len);
	key_unref(k);
}

/* a asks b, b accepts, a confirms: an established chat. */
static void chat(struct tc *a, struct tc *b)
{
	struct msg m, acc = { .op = OP_ACCEPT }, conf = { .op = OP_CONFIRM };
	uint8_t sig[64] = { 1, 2, 3 };

	assert_int_equal(tc_rtt(a, b->name), 0);
	expect(b, OP_RTT, &m);
	assert_string_equal(m.peer, a->name);
	snprintf(acc.peer, sizeof(acc.peer), "%s", a->name);
	memset(acc.nonce, 7, sizeof(acc.nonce));
	memset(acc.share, 9, sizeof(acc.share));
	acc.sig = sig;
	acc.sig_len = sizeof(sig);
	assert_int_equal(tc_send(b, &acc), 0);
	expect(a, OP_ACCEPT, &m);
	assert_string_equal(m.peer, b->name);
	assert_memory_equal(m.nonce, acc.nonce, 32);
	assert_memory_equal(m.share, acc.share, 32);
	assert_int_equal(m.sig_len, sizeof(sig));
	assert_memory_equal(m.sig, sig, sizeof(sig));
	assert_peer_key(&m, b->name);
	snprintf(conf.peer, sizeof(conf.peer), "%s", b->name);
	conf.sig = sig;
	conf.sig_len = 40;
	assert_int_equal(tc_send(a, &conf), 0);
	expect(b, OP_CONFIRM, &m);
	assert_string_equal(m.peer, a->name);
	assert_int_equal(m.sig_len, 40);
	assert_peer_key(&m, a->name);
}

static void send_message(struct tc *from, struct tc *to, const uint8_t *e2e,
			 size_t len)
{
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = len };

	snprintf(m.peer, sizeof(m.peer), "%s", to->name);
	assert_int_equal(tc_send(from, &m), 0);
	expect(to, OP_MESSAGE, &m);
	assert_string_equal(m.peer, from->name);
	assert_int_equal(m.e2e_len, len);
	assert_memory_equal(m.e2e, e2e, len);
}

static void test_login_list(void **state)
{
	struct tc a, b, c;
	struct msg m;
	char name[NAME_MAX_LEN + 1];
	size_t off = 0;

	(void)state;
	login(&c, "carol");
	login(&a, "alice");
	login(&b, "bob");
	assert_int_equal(tc_send_pt(&b, (const uint8_t *)"\x01", 1), 0);
	expect(&b, OP_LIST, &m);
	assert_int_equal(m.last, 1);
	assert_int_equal(m.count, 2);
	assert_int_equal(msg_list_next(&m, &off, name), 1);
	assert_string_equal(name, "alice");
	assert_int_equal(msg_list_next(&m, &off, name), 1);
	assert_string_equal(name, "carol");
	assert_int_equal(msg_list_next(&m, &off, name), 0);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
}

static void test_chat_relay(void **state)
{
	struct tc a, b;
	uint8_t e2e[8192 + 5];
	struct msg m;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	chat(&a, &b);
	for (size_t i = 0; i < sizeof(e2e); i++)
		e2e[i] = (uint8_t)(i * 7);
	send_message(&a, &b, e2e, 100);
	send_message(&b, &a, e2e + 5, 8192);
	send_message(&a, &b, e2e, 1);
	/* END from an established chat: the other side gets END 1. */
	assert_int_equal(tc_simple(&a, OP_END, "bob"), 0);
	expect_end(&b, "alice", 1);
	/* The chat is gone: MESSAGE is now a consent violation. */
	m = (struct msg){ .op = OP_MESSAGE, .e2e = e2e, .e2e_len = 4 };
	snprintf(m.peer, sizeof(m.peer), "bob");
	assert_int_equal(tc_send(&a, &m), 0);
	expect_error(&a, 2);
	tc_close(&a);
	tc_close(&b);
}

static void test_refuse_reasons(void **state)
{
	struct tc a, b, c;
	struct msg m;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	assert_int_equal(tc_rtt(&a, "alice"), 0);
	expect_refuse(&a, "alice", 4);
	assert_int_equal(tc_rtt(&a, "dave"), 0);	/* enrolled, offline */
	expect_refuse(&a, "dave", 2);
	assert_int_equal(tc_rtt(&a, "nobody"), 0);	/* unknown */
	expect_refuse(&a, "nobody", 2);
	assert_int_equal(tc_rtt(&a, "bob"), 0);
	expect(&b, OP_RTT, &m);
	assert_int_equal(tc_rtt(&a, "bob"), 0);	/* exists, same way */
	expect_refuse(&a, "bob", 5);
	assert_int_equal(tc_rtt(&b, "alice"), 0);	/* exists, other way */
	expect_refuse(&b, "alice", 5);
	/* The target declines: REFUSE 1 to the requester. */
	assert_int_equal(tc_simple(&b, OP_REFUSE, "alice"), 0);
	expect_refuse(&a, "bob", 1);
	/* END from the target of an open request declines it too. */
	assert_int_equal(tc_rtt(&a, "bob"), 0);
	expect(&b, OP_RTT, &m);
	assert_int_equal(tc_simple(&b, OP_END, "alice"), 0);
	expect_refuse(&a, "bob", 1);
	/* END from the requester withdraws it: END 4 to the target. */
	assert_int_equal(tc_rtt(&a, "bob"), 0);
	expect(&b, OP_RTT, &m);
	assert_int_equal(tc_simple(&a, OP_END, "bob"), 0);
	expect_end(&b, "alice", 4);
	/* END between ACCEPT and CONFIRM: the other side gets END 1. */
	login(&c, "carol");
	assert_int_equal(tc_rtt(&c, "bob"), 0);
	expect(&b, OP_RTT, &m);
	m.op = OP_ACCEPT;
	snprintf(m.peer, sizeof(m.peer), "carol");
	m.sig = (const uint8_t *)"sig";
	m.sig_len = 3;
	assert_int_equal(tc_send(&b, &m), 0);
	expect(&c, OP_ACCEPT, &m);
	assert_int_equal(tc_simple(&b, OP_END, "carol"), 0);
	expect_end(&c, "bob", 1);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
}

static void test_limits(void **state)
{
	struct tc a, b, c, d, e;
	struct msg m;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	login(&c, "carol");
	login(&d, "dave");
	login(&e, "erin");
	/* max_pending = 2 incoming for bob: the third requester is refused 3. */
	assert_int_equal(tc_rtt(&a, "bob"), 0);
	expect(&b, OP_RTT, &m);
	assert_int_equal(tc_rtt(&c, "bob"), 0);
	expect(&b, OP_RTT, &m);
	assert_int_equal(tc_rtt(&d, "bob"), 0);
	expect_refuse(&d, "bob", 3);
	/* erin asks two (her own pending limit), the third gets ERROR 3. */
	assert_int_equal(tc_rtt(&e, "alice"), 0);
	expect(&a, OP_RTT, &m);
	assert_int_equal(tc_rtt(&e, "carol"), 0);
	expect(&c, OP_RTT, &m);
	assert_int_equal(tc_rtt(&e, "dave"), 0);
	expect_error(&e, 3);
	/* ... but a busy target is reported before her own limit. */
	assert_int_equal(tc_rtt(&e, "bob"), 0);
	expect_refuse(&e, "bob", 3);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
	tc_close(&d);
	tc_close(&e);
}

static void test_consent_and_errors(void **state)
{
	static const uint8_t unknown[] = { 13 }, error[] = { 8, 0, 1, 0, 0 },
			     bye[] = { 9, 1, 0, 0 }, bad_refuse[] = { 4, 3, 'b', 'o', 'b', 2 },
			     trailing[] = { 1, 0 };
	struct tc a, b;
	struct msg m = { .op = OP_ACCEPT, .sig = (const uint8_t *)"s", .sig_len = 1 };
	uint8_t big[9000] = { 0 };

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	snprintf(m.peer, sizeof(m.peer), "bob");
	assert_int_equal(tc_send(&a, &m), 0);		/* ACCEPT, no request */
	expect_error(&a, 2);
	m.op = OP_CONFIRM;
	assert_int_equal(tc_send(&a, &m), 0);		/* CONFIRM, no ACCEPT */
	expect_error(&a, 2);
	assert_int_equal(tc_simple(&a, OP_END, "bob"), 0);
	expect_error(&a, 2);
	assert_int_equal(tc_simple(&a, OP_REFUSE, "bob"), 0);
	expect_error(&a, 2);
	assert_int_equal(tc_send_pt(&a, unknown, sizeof(unknown)), 0);
	expect_error(&a, 4);
	assert_int_equal(tc_send_pt(&a, error, sizeof(error)), 0);
	expect_error(&a, 4);
	assert_int_equal(tc_send_pt(&a, bye, sizeof(bye)), 0);
	expect_error(&a, 4);
	assert_int_equal(tc_send_pt(&a, bad_refuse, sizeof(bad_refuse)), 0);
	expect_error(&a, 1);
	assert_int_equal(tc_send_pt(&a, trailing, sizeof(trailing)), 0);
	expect_error(&a, 1);
	/* An e2e field over 8192 bytes: ERROR 5. */
	big[0] = OP_MESSAGE;
	big[1] = 3;
	memcpy(big + 2, "bob", 3);
	big[5] = 8193 >> 8;
	big[6] = 8193 & 0xff;
	assert_int_equal(tc_send_pt(&a, big, 7 + 8193), 0);
	expect_error(&a, 5);
	/* PING gets PONG with the same cookie; the connection stays up. */
	m = (struct msg){ .op = OP_PING, .cookie = 0x0102030405060708ull };
	assert_int_equal(tc_send(&a, &m), 0);
	expect(&a, OP_PONG, &m);
	assert_true(m.cookie == 0x0102030405060708ull);
	tc_close(&a);
	tc_close(&b);
}

static void test_key_update(void **state)
{
	static const uint8_t ku[] = { OP_KEY_UPDATE };
	struct tc a, b;
	struct msg m = { .op = OP_PING, .cookie = 5 };

	(void)state;
	login(&a, "alice");
	assert_int_equal(tc_send_pt(&a, ku, 1), 0);
	assert_int_equal(tc_send(&a, &m), 0);
	expect(&a, OP_PONG, &m);
	assert_true(m.cookie == 5);
	/* KEY_UPDATE with a payload, and an empty record: BYE 6. */
	assert_int_equal(tc_send_unchecked(&a, (const uint8_t *)"\x0a\x00", 2), 0);
	expect_bye(&a, 6);
	login(&b, "bob");
	assert_int_equal(tc_send_unchecked(&b, NULL, 0), 0);
	expect_bye(&b, 6);
	tc_close(&a);
	tc_close(&b);
}

static void test_quit_and_disconnect(void **state)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	struct tc a, b, c;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	login(&c, "carol");
	chat(&a, &b);
	chat(&c, &a);
	/* QUIT: every peer gets END 1; the quitter is closed without BYE. */
	assert_int_equal(tc_send_pt(&a, (const uint8_t *)"\x00", 1), 0);
	expect_end(&b, "alice", 1);
	expect_end(&c, "alice", 1);
	assert_true(tc_closed(&a, T));
	/* A broken connection: END 2. */
	chat(&b, &c);
	tc_close(&b);
	expect_end(&c, "bob", 2);
	tc_close(&a);
	/* A reset (the daemon closes it on EPOLLERR, without a read): END 2. */
	login(&a, "alice");
	chat(&a, &c);
	assert_int_equal(setsockopt(a.fd, SOL_SOCKET, SO_LINGER, &reset,
				    sizeof(reset)), 0);
	tc_close(&a);
	expect_end(&c, "alice", 2);
	tc_close(&c);
}

static void test_takeover(void **state)
{
	struct tc a1, a2, b;
	struct msg m;

	(void)state;
	login(&a1, "alice");
	login(&b, "bob");
	chat(&a1, &b);
	login(&a2, "alice");
	expect_bye(&a1, 2);
	expect_end(&b, "alice", 2);
	/* The new session works. */
	m = (struct msg){ .op = OP_PING, .cookie = 1 };
	assert_int_equal(tc_send(&a2, &m), 0);
	expect(&a2, OP_PONG, &m);
	chat(&a2, &b);
	tc_close(&a1);
	tc_close(&a2);
	tc_close(&b);
}

static void test_request_expiry(void **state)
{
	struct tc a, b;
	struct msg m;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	assert_int_equal(tc_rtt(&a, "bob"), 0);
	expect(&b, OP_RTT, &m);
	/* request_timeout = 2 s */
	expect_refuse(&a, "bob", 6);
	expect_end(&b, "alice", 4);
	tc_close(&a);
	tc_close(&b);
}

static void test_rate_limit(void **state)
{
	struct tc a;
	struct msg m;
	int errors = 0, lists = 0;

	(void)state;
	login(&a, "alice");
	for (int i = 0; i < 600; i++)
		assert_int_equal(tc_send_pt(&a, (const uint8_t *)"\x01", 1), 0);
	while (errors + lists < 600 && tc_recv(&a, &m, T) == 0) {
		if (m.op == OP_ERROR) {
			assert_int_equal(m.code, 3);
			errors++;
		} else if (m.op == OP_LIST) {
			lists++;
		}
	}
	/* burst 400 at 2000/s: some are refused, none dropped silently. */
	assert_int_equal(errors + lists, 600);
	assert_true(errors > 0);
	assert_true(lists >= 400);
	/* PING costs a token too (issue 13): right after the burst it gets
	 * PONG or, with the bucket empty, ERROR 3, never silence; once the
	 * bucket has refilled (2000/s), PONG. QUIT is honoured whatever the
	 * bucket holds (tc_close sends it). */
	m = (struct msg){ .op = OP_PING, .cookie = 77 };
	assert_int_equal(tc_send(&a, &m), 0);
	assert_int_equal(tc_recv(&a, &m, T), 0);
	if (m.op == OP_ERROR) {
		assert_int_equal(m.code, 3);
		usleep(100 * 1000);
		m = (struct msg){ .op = OP_PING, .cookie = 77 };
		assert_int_equal(tc_send(&a, &m), 0);
		assert_int_equal(tc_recv(&a, &m, T), 0);
	}
	assert_int_equal(m.op, OP_PONG);
	assert_true(m.cookie == 77);
	tc_close(&a);
}

/* Whether the daemon's log has a line with both strings. */
static bool log_has(const char *a, const char *b)
{
	char path[128], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/secmsgd.log", D.dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, a) && strstr(line, b);
	fclose(f);
	return found;
}

static void test_many_users(void **state)
{
	static const char *names[] = { "alice", "bob", "carol", "dave", "erin" };
	struct tc c[5];
	uint8_t e2e[32];

	(void)state;
	for (int i = 0; i < 5; i++)
		login(&c[i], names[i]);
	/* The first group deals connections to the workers in turn (test
	 * hook); the second leaves them to worker 0 while it is not busy. */
	assert_true(log_has("[w0] ", " logged in from "));
	if (!activated)
		assert_true(log_has("[w1] ", " logged in from "));
	/* a ring of chats (across both workers in the first group), messages
	 * both ways */
	for (int i = 0; i < 5; i++)
		chat(&c[i], &c[(i + 1) % 5]);
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 5; i++) {
			memset(e2e, round * 5 + i, sizeof(e2e));
			send_message(&c[i], &c[(i + 1) % 5], e2e, sizeof(e2e));
			send_message(&c[(i + 1) % 5], &c[i], e2e, 10);
		}
	}
	for (int i = 0; i < 5; i++)
		tc_close(&c[i]);
}

static void test_bad_auth(void **state)
{
	struct tc x, y;

	(void)state;
	/* Unknown user and a wrong key answer alike: HandshakeError 3. */
	assert_int_equal(tc_login_key(&x, D.port, "mallory", tu_pki_path("alice.key")),
			 -EACCES);
	assert_int_equal(x.peer_code, 3);
	assert_int_equal(tc_login_key(&y, D.port, "bob", tu_pki_path("alice.key")),
			 -EACCES);
	assert_int_equal(y.peer_code, 3);
	tc_close(&x);
	tc_close(&y);
}

static void restart_with(const char *limits);


/*
 * A login as user with keyfile's key: how long the server took to answer
 * the ClientAuth (ms), and in *code its HandshakeError code (0: logged
 * in). With extra, a HandshakeError frame follows the ClientAuth at once.
 */
static long auth_answer_ms(const char *user, const char *keyfile, bool extra,
			   int *code)
{
	struct tc c;
	sm_key *key = NULL;
	trust *t = NULL;
	int64_t t0;
	int r;

	memset(&c, 0, sizeof(c));
	framer_init(&c.fr, 0);
	c.fd = tc_connect(D.port);
	assert_true(c.fd >= 0);
	assert_int_equal(key_load_private(tu_pki_path(keyfile), NULL, &key), 0);
	assert_int_equal(trust_load(tu_pki_path("ca.pem"), NULL, &t), 0);
	assert_int_equal(tc_handshake(&c, user, key, t, T), 0);
	/* From just before the ClientAuth was written: the server cannot
	 * have had it earlier. A clock read after the write may come late
	 * on a busy machine (make check measured under 400 ms once, against
	 * the TSan daemon, while other tests ran beside it). */
	t0 = c.auth_sent_ms;
	if (extra)
		assert_int_equal(tc_write(&c, "\0\0\0\x02\x0f\x01", 6), 0);
	r = tc_await_list(&c, T);
	t0 = tc_now_ms() - t0;
	*code = r == 0 ? 0 : r == -EACCES ? c.peer_code : -1;
	key_unref(key);
	trust_free(t);
	tc_close(&c);
	return (long)t0;
}

/*
 * auth_failure_delay (SECURITY.md W1): an unknown user and an enrolled
 * user with the wrong key both get HandshakeError 3, and no sooner than
 * the delay after their ClientAuth, so the answer's timing does not tell
 * them apart; what the client sends meanwhile is dropped (a HandshakeError
 * from the client would otherwise close the connection without an
 * answer). A good login is not delayed.
 */
static void test_auth_failure_delay(void **state)
{
	int code;

	(void)state;
	restart_with("auth_failure_delay = 400ms\n");
	assert_true(auth_answer_ms("mallory", "alice.key", false, &code) >= 400);
	assert_int_equal(code, 3);
	assert_true(auth_answer_ms("bob", "alice.key", false, &code) >= 400);
	assert_int_equal(code, 3);
	assert_true(auth_answer_ms("bob", "alice.key", true, &code) >= 400);
	assert_int_equal(code, 3);
	auth_answer_ms("alice", "alice.key", false, &code);
	assert_int_equal(code, 0);
	restart_with("auth_failure_delay = 0\n");
	auth_answer_ms("mallory", "alice.key", false, &code);
	assert_int_equal(code, 3);
	restart_with(LIMITS);
}

static void test_tamper_replay(void **state)
{
	struct tc a, b;
	uint8_t out[128];
	long n;
	struct msg m;

	(void)state;
	login(&a, "alice");
	n = chan_seal(&a.chan.tx, (const uint8_t *)"\x01", 1, out);
	assert_true(n > 0);
	out[n - 1] ^= 1;
	assert_int_equal(tc_write(&a, out, (size_t)n), 0);
	assert_true(tc_closed(&a, T));
	/* Replay: a record sent twice fails the second time. */
	login(&b, "bob");
	n = chan_seal(&b.chan.tx, (const uint8_t *)"\x01", 1, out);
	assert_int_equal(tc_write(&b, out, (size_t)n), 0);
	expect(&b, OP_LIST, &m);
	assert_int_equal(tc_write(&b, out, (size_t)n), 0);
	assert_true(tc_closed(&b, T));
	tc_close(&a);
	tc_close(&b);
}

static void test_hostile_frames(void **state)
{
	static const uint8_t zero[] = { 0, 0, 0, 0 }, huge[] = { 0, 1, 0, 1 },
			     hs_big[] = { 0, 0, 0x40, 1 };
	struct tc x = { .fd = -1 }, a;

	(void)state;
	x.fd = tc_connect(D.port);
	assert_int_equal(tc_write(&x, zero, 4), 0);
	assert_true(tc_closed(&x, T));
	tc_close(&x);
	x.fd = tc_connect(D.port);
	assert_int_equal(tc_write(&x, huge, 4), 0);
	assert_true(tc_closed(&x, T));
	tc_close(&x);
	/* A handshake frame of 16385 bytes: HandshakeError 2, closed. */
	x.fd = tc_connect(D.port);
	framer_init(&x.fr, 0);
	assert_int_equal(tc_write(&x, hs_big, 4), 0);
	assert_int_equal(tc_recv(&x, &(struct msg){ 0 }, T), -EBADMSG);
	assert_int_equal(be32_get(x.rec), 2);
	assert_int_equal(x.rec[4], HS_ERROR);
	assert_int_equal(x.rec[5], 2);
	assert_true(tc_closed(&x, T));
	tc_close(&x);
	/* A HandshakeError of a length other than 2: HandshakeError 2. */
	x.fd = tc_connect(D.port);
	framer_init(&x.fr, 0);
	assert_int_equal(tc_write(&x, "\0\0\0\x03\x0f\x01\x00", 7), 0);
	assert_int_equal(tc_recv(&x, &(struct msg){ 0 }, T), -EBADMSG);
	assert_int_equal(be32_get(x.rec), 2);
	assert_int_equal(x.rec[4], HS_ERROR);
	assert_int_equal(x.rec[5], 2);
	assert_true(tc_closed(&x, T));
	tc_close(&x);
	/* Garbage, then a frame cut midway. */
	x.fd = tc_connect(D.port);
	assert_int_equal(tc_write(&x, "GET / HTTP/1.1\r\n\r\n", 18), 0);
	assert_true(tc_closed(&x, T));
	tc_close(&x);
	x.fd = tc_connect(D.port);
	assert_int_equal(tc_write(&x, "\0\0\0\x40\x01SMSG", 9), 0);
	tc_close(&x);
	/* The daemon still serves. */
	login(&a, "alice");
	tc_close(&a);
}

static void test_slowloris(void **state)
{
	enum { N = 500 };
	static struct tc idle[N];
	struct tc a, b;

	(void)state;
	/* From four other hosts, 125 each: under max_handshakes_per_source
	 * (256) even if two share a counter of the keyed hash. */
	for (int i = 0; i < N; i++) {
		char src[16];

		snprintf(src, sizeof(src), "127.0.0.%d", 2 + i % 4);
		idle[i].fd = tc_connect_from(D.port, src);
		assert_true(idle[i].fd >= 0);
		framer_init(&idle[i].fr, 0);
		if (i % 2)
			assert_int_equal(tc_write(&idle[i], "\0\0\0\x40\x01", 5), 0);
	}
	login(&a, "alice");
	login(&b, "bob");
	chat(&a, &b);
	send_message(&a, &b, (const uint8_t *)"hello", 5);
	/* handshake_timeout = 3 s: each gets HandshakeError 5 and is closed */
	for (int i = 0; i < N; i++) {
		assert_int_equal(tc_recv(&idle[i], &(struct msg){ 0 }, 8000),
				 -EBADMSG);
		assert_int_equal(be32_get(idle[i].rec), 2);
		assert_int_equal(idle[i].rec[4], HS_ERROR);
		assert_int_equal(idle[i].rec[5], 5);
		assert_true(tc_closed(&idle[i], T));
		tc_close(&idle[i]);
	}
	tc_close(&a);
	tc_close(&b);
}

static void test_slow_reader(void **state)
{
	struct tc a, b;
	uint8_t e2e[8192] = { 0 };
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = sizeof(e2e) };
	int bye = 0, ended = 0;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	chat(&a, &b);
	snprintf(m.peer, sizeof(m.peer), "bob");
	/* bob never reads: socket buffers and the 64K queue fill, then
	 * bob gets BYE 5 and alice END 2 (bounded: 20 s at most). */
	for (int i = 0; i < 20000 && !ended; i++) {
		struct msg r;

		m.op = OP_MESSAGE;
		if (tc_send(&a, &m) < 0)
			break;
		while (tc_recv(&a, &r, 5) == 0)
			if (r.op == OP_END && strcmp(r.peer, "bob") == 0) {
				assert_int_equal(r.reason, 2);
				ended = 1;
			}
	}
	assert_true(ended);
	while (tc_recv(&b, &m, T) == 0)
		if (m.op == OP_BYE) {
			assert_int_equal(m.reason, 5);
			bye = 1;
		}
	assert_true(bye);
	tc_close(&a);
	tc_close(&b);
}

static void test_reload_removes_user(void **state)
{
	struct tc a, b;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	chat(&a, &b);
	assert_int_equal(unlink(td_path(&D, "users/bob.pem")), 0);
	td_signal(&D, SIGHUP);
	expect_bye(&b, 7);
	expect_end(&a, "bob", 2);
	tc_close(&b);
	assert_int_not_equal(tc_login(&b, D.port, "bob"), 0);
	tc_close(&a);
	tc_close(&b);
}

static void test_shutdown(void **state)
{
	struct tc a, b;

	(void)state;
	login(&a, "alice");
	login(&b, "carol");
	chat(&a, &b);
	assert_int_equal(td_stop(&D), 0);
	expect_bye(&a, 3);
	expect_bye(&b, 3);
	tc_close(&a);
	tc_close(&b);
	/* the group teardown starts nothing: restart for it */
	assert_int_equal(td_start(&D, LIMITS, activated), 0);
}

/* Restart the daemon with other limits for the tests below. */
static void restart_with(const char *limits)
{
	assert_int_equal(td_stop(&D), 0);
	assert_int_equal(td_start(&D, limits, activated), 0);
}

static void test_idle_timeout(void **state)
{
	struct tc a;

	(void)state;
	restart_with("idle_timeout = 1s\n");
	login(&a, "alice");
	expect_bye(&a, 4);
	tc_close(&a);
	restart_with(LIMITS);
}

/* A connection the server refuses at once: HandshakeError 4, then closed. */
static void expect_busy(int fd)
{
	struct tc x;

	memset(&x, 0, sizeof(x));
	framer_init(&x.fr, 0);
	x.fd = fd;
	assert_true(x.fd >= 0);
	assert_int_equal(tc_recv(&x, &(struct msg){ 0 }, T), -EBADMSG);
	assert_int_equal(be32_get(x.rec), 2);
	assert_int_equal(x.rec[4], HS_ERROR);
	assert_int_equal(x.rec[5], 4);
	assert_true(tc_closed(&x, T));
	tc_close(&x);
}

static void test_max_connections(void **state)
{
	struct tc a, b;

	(void)state;
	restart_with("max_connections = 2\n");
	login(&a, "alice");
	login(&b, "bob");
	/* HandshakeError 4 right away, then the server closes. */
	expect_busy(tc_connect(D.port));
	tc_close(&a);
	tc_close(&b);
	restart_with(LIMITS);
}

/*
 * n connections that never speak: the daemon refuses exactly one of them
 * (which one depends on the order its workers count them in: the first
 * group deals connections to both workers). Closes that one; the others
 * stay open and silent for another 300 ms. Returns its index.
 */
static int one_refused(int *fd, int n)
{
	struct pollfd p[8];
	int got = -1;

	assert_true(n <= 8);
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
	assert_int_equal(poll(p, (nfds_t)n, T), 1);
	for (int i = 0; i < n; i++)
		if (p[i].revents)
			got = i;
	expect_busy(fd[got]);
	fd[got] = -1;
	for (int i = 0; i < n; i++)
		p[i].fd = fd[i];
	assert_int_equal(poll(p, (nfds_t)n, 300), 0);
	return got;
}

/* Log in, retrying while the source is still at its limit (the daemon
 * counts a closed handshake out when it sees the close). */
static void login_when_room(struct tc *c, const char *user)
{
	for (int i = 0; i < 100; i++) {
		int r = tc_login(c, D.port, user);

		if (r == 0)
			return;
		if (c->peer_code != 4)
			fail_msg("%s: login failed: %d (%s), HandshakeError %d",
				 user, r, strerror(-r), c->peer_code);
		tc_close(c);
		usleep(50000);
	}
	fail_msg("%s: still refused after 5 s", user);
}

/*
 * max_handshakes_per_source: connections still in their handshake count
 * against their source address; logged-in users and ended handshakes do
 * not, and other sources have their own count.
 */
static void test_handshakes_per_source(void **state)
{
	struct tc a, b, c, other;
	int fd[3], k;

	(void)state;
	restart_with("max_handshakes_per_source = 2\n");
	login(&a, "alice");		/* logged in: not counted */
	login(&b, "bob");
	for (int i = 0; i < 3; i++)
		fd[i] = tc_connect(D.port);
	k = one_refused(fd, 3);		/* two fit, not three */
	/* Another host is not held back by this one. */
	assert_int_equal(tc_login_from(&other, D.port, "dave", "127.0.0.2"), 0);
	tc_close(&other);
	/* One half-open connection closes: room for one login again. */
	close(fd[(k + 1) % 3]);
	login_when_room(&c, "carol");
	/* carol's handshake has ended: one more half-open fits, not two. */
	fd[k] = tc_connect(D.port);
	fd[(k + 1) % 3] = tc_connect(D.port);
	one_refused(fd, 3);
	for (int i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	assert_true(log_has(" refused: ", "max_handshakes_per_source (2)"));
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
	restart_with(LIMITS);
}

/*
 * A failed ClientAuth keeps counting against its source until its
 * delayed answer is out and the connection closed: while one is waiting
 * for its refusal, a second connection from that source (limit 1) is
 * refused; after it, there is room again.
 */
static void test_refusal_still_counts(void **state)
{
	struct tc c, x;
	sm_key *key = NULL;
	trust *t = NULL;

	(void)state;
	restart_with("max_handshakes_per_source = 1\n"
		     "auth_failure_delay = 1s\n");
	memset(&c, 0, sizeof(c));
	framer_init(&c.fr, 0);
	c.fd = tc_connect(D.port);
	assert_true(c.fd >= 0);
	assert_int_equal(key_load_private(tu_pki_path("alice.key"), NULL, &key), 0);
	assert_int_equal(trust_load(tu_pki_path("ca.pem"), NULL, &t), 0);
	assert_int_equal(tc_handshake(&c, "mallory", key, t, T), 0);
	usleep(200000);		/* the ClientAuth has been checked: refusing */
	expect_busy(tc_connect(D.port));
	assert_int_equal(tc_await_list(&c, T), -EACCES);
	assert_int_equal(c.peer_code, 3);
	assert_true(tc_closed(&c, T));
	tc_close(&c);
	login_when_room(&x, "alice");
	tc_close(&x);
	key_unref(key);
	trust_free(t);
	restart_with(LIMITS);
}

static void test_handshake_timeout(void **state)
{
	struct tc x;
	long n;

	(void)state;
	memset(&x, 0, sizeof(x));
	framer_init(&x.fr, 0);
	x.fd = tc_connect(D.port);
	/* handshake_timeout = 3 s: HandshakeError 5, then closed. */
	n = tc_recv(&x, &(struct msg){ 0 }, 8000);
	assert_int_equal(n, -EBADMSG);
	assert_int_equal(x.rec[4], HS_ERROR);
	assert_int_equal(x.rec[5], 5);
	assert_true(tc_closed(&x, T));
	tc_close(&x);
}

static void test_status(void **state)
{
	struct tc a, b;

	(void)state;
	login(&a, "alice");
	login(&b, "carol");
	chat(&a, &b);
	/* STATUS= is refreshed every 2 s with users and chats. */
	assert_int_equal(td_wait_notify(&D, "STATUS=2 users online, 1 chats", 6000), 0);
	tc_close(&a);
	tc_close(&b);
}

static int run(bool act, const char *name)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_list),
		cmocka_unit_test(test_chat_relay),
		cmocka_unit_test(test_refuse_reasons),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_consent_and_errors),
		cmocka_unit_test(test_key_update),
		cmocka_unit_test(test_quit_and_disconnect),
		cmocka_unit_test(test_takeover),
		cmocka_unit_test(test_request_expiry),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_many_users),
		cmocka_unit_test(test_bad_auth),
		cmocka_unit_test(test_auth_failure_delay),
		cmocka_unit_test(test_tamper_replay),
		cmocka_unit_test(test_hostile_frames),
		cmocka_unit_test(test_slowloris),
		cmocka_unit_test(test_slow_reader),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_handshakes_per_source),
		cmocka_unit_test(test_refusal_still_counts),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_reload_removes_user),
		cmocka_unit_test(test_shutdown),
	};

	activated = act;
	return _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof(tests[0]),
				       setup, teardown);
}

int main(void)
{
	int failed;

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	if (getenv("SECMSG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("SECMSG_TEST_FILTER"));
	/* Users on both workers: the events between workers are exercised
	 * (under TSan too: tests/run.sh runs this against a TSan secmsgd). */
	setenv("SECMSG_TEST_HOOKS", "round-robin", 1);
	failed = run(false, "daemon");
	unsetenv("SECMSG_TEST_HOOKS");
	failed += run(true, "daemon (socket activation)");
	return failed;
}
