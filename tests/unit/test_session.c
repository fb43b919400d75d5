/* test_session.c - daemon/session.c in process: a real handshake over a
 * socket pair with a fake worker around it.
 *
 * - P1 "still enrolled at ClientAuth": a reload between ClientHello and
 *   ClientAuth that removes or changes the user's key makes the login
 *   fail (HandshakeError 3), though the signature verifies with the key
 *   looked up at ClientHello.
 * - P3 "traffic secrets are erased when the connection ends": this
 *   binary is linked with -Wl,--wrap=free (Makefile); every block that
 *   session_free() frees is searched for the connection's traffic
 *   secrets, keys and IVs, and one that still holds any fails the test.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "channel.h"
#include "daemon/identity.h"
#include "daemon/registry.h"
#include "daemon/session.h"
#include "daemon/users.h"
#include "frame.h"
#include "handshake.h"
#include "keys.h"
#include "testutil.h"

/* ---- free, watched ---- */

void __real_free(void *p);
void __wrap_free(void *p);

static bool watching;
static const uint8_t *secrets[8];
static size_t nsecrets;
static unsigned leaks;

void __wrap_free(void *p)
{
	if (watching && p) {
		size_t n = malloc_usable_size(p);

		for (size_t i = 0; i < nsecrets; i++)
			for (size_t off = 0; off + 16 <= n; off++)
				if (memcmp((uint8_t *)p + off, secrets[i], 16) == 0)
					leaks++;
	}
	__real_free(p);
}

/* ---- the fake worker ---- */

static struct session *pending_flush[4];
static int npending;
static bool released;

static void op_want_flush(void *ctx, struct session *s)
{
	(void)ctx;
	if (npending < 4)
		pending_flush[npending++] = s;
}

static void op_set_out(void *ctx, struct session *s, bool on)
{
	(void)ctx;
	(void)s;
	(void)on;
}

static void op_release(void *ctx, struct session *s)
{
	(void)ctx;
	close(session_fd(s));
	released = true;
}

static struct session_env env;

static void op_deliver(void *ctx, void *owner, const uint8_t *pt, size_t len)
{
	(void)ctx;
	session_deliver(&env, owner, pt, len);
}

static int op_emit(void *ctx, const struct event *e, const void *payload,
		   size_t len)
{
	(void)ctx;
	(void)e;
	(void)payload;
	(void)len;
	return 0;
}

static const struct session_ops sops = {
	.want_flush = op_want_flush, .set_out = op_set_out,
	.release = op_release,
};
static const struct relay_ops rops = { .deliver = op_deliver, .emit = op_emit };
static struct limits limits;
static struct worker_stats stats;
static struct log_budget hs_log, src_log;
static uint8_t rdbuf[256 * 1024];
static char users_dir[3][128];

static void flush_pending(void)
{
	for (int i = 0; i < npending; i++)
		session_flush(&env, pending_flush[i]);
	npending = 0;
}

static struct identity *load_identity(void)
{
	struct identity *id = calloc(1, sizeof(*id));

	assert_non_null(id);
	atomic_init(&id->refs, 1);
	assert_int_equal(cert_chain_load(tu_pki_path("server.pem"), &id->hs.chain), 0);
	assert_int_equal(key_load_private(tu_pki_path("server.key"), NULL,
					  &id->hs.key), 0);
	return id;
}

/* A users directory holding user.pem = key.pub for each pair. */
static void make_users(char *dir, size_t len, const char *const *pairs, int n)
{
	char cmd[1024];

	snprintf(dir, len, "/tmp/secmsg-session-XXXXXX");
	assert_non_null(mkdtemp(dir));
	for (int i = 0; i < n; i += 2) {
		snprintf(cmd, sizeof(cmd), "cp %s %s/%s.pem",
			 tu_pki_path(pairs[i + 1]), dir, pairs[i]);
		assert_int_equal(system(cmd), 0);
	}
}

static int setup(void **state)
{
	static const char *const good[] = { "alice", "alice.pub", "bob", "bob.pub" };
	static const char *const changed[] = { "alice", "bob.pub", "bob", "bob.pub" };
	static const char *const removed[] = { "bob", "bob.pub" };
	struct users *u;

	(void)state;
	limits.handshake_timeout_ms = 10000;
	limits.idle_timeout_ms = 300000;
	limits.request_timeout_ms = 60000;
	limits.max_chats = 4;
	limits.max_pending = 4;
	limits.messages_per_second = 50;
	limits.rate_burst = 100;
	limits.send_queue_bytes = 1 << 20;
	limits.ipv6_source_prefix = 56;
	env.relay = (struct relay_env){ .ops = &rops, .limits = &limits,
					.stats = &stats, .now_ms = 100000 };
	env.ops = &sops;
	env.rdbuf = rdbuf;
	env.rdcap = sizeof(rdbuf);
	env.hs_log = &hs_log;
	env.src_log = &src_log;
	env.ident = load_identity();
	make_users(users_dir[0], sizeof(users_dir[0]), good, 4);
	make_users(users_dir[1], sizeof(users_dir[1]), changed, 4);
	make_users(users_dir[2], sizeof(users_dir[2]), removed, 2);
	assert_int_equal(users_load(users_dir[0], &u), 0);
	env.users = u;
	return 0;
}

static int teardown(void **state)
{
	char cmd[sizeof(users_dir) + 16];

	(void)state;
	identity_unref(env.ident);
	users_unref(env.users);
	for (int i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", users_dir[i]);
		(void)!system(cmd);
	}
	registry_free();
	return 0;
}

/* ---- the client side ---- */

struct client {
	int fd;
	sm_key *key;
	trust *trust;
	struct hs_client_config cfg;
	struct hs_client hs;
	struct hs_secrets sec;
	struct framer fr;
};

/* The next whole frame the daemon wrote (it is all there: one thread). */
static const uint8_t *read_frame(struct client *c, size_t *len)
{
	uint8_t buf[4096];

	framer_consume(&c->fr);
	while (!framer_ready(&c->fr)) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
		long used;

		if (n <= 0)
			return NULL;
		used = framer_feed(&c->fr, buf, (size_t)n);
		assert_true(used >= 0);
		assert_int_equal(recv(c->fd, buf, (size_t)used, 0), used);
	}
	*len = FRAME_HDR + framer_body_len(&c->fr);
	return framer_frame(&c->fr);
}

static void send_frame(struct client *c, const uint8_t *body, size_t len)
{
	uint8_t frame[FRAME_HDR + FRAME_HS_MAX];

	frame_put_hdr(frame, (uint32_t)len);
	memcpy(frame + FRAME_HDR, body, len);
	assert_int_equal(write(c->fd, frame, FRAME_HDR + len),
			 (ssize_t)(FRAME_HDR + len));
}

/* A session for a new socket pair; the client's end in c. */
static struct session *start(struct client *c, const char *user,
			     const char *keyfile)
{
	static uint32_t gen = 1;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct handle h = { .worker = 0, .slot = gen, .gen = gen };
	struct session *s;
	int sv[2];

	gen++;
	memset(c, 0, sizeof(*c));
	framer_init(&c->fr, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	c->fd = sv[1];
	assert_int_equal(key_load_private(tu_pki_path(keyfile), NULL, &c->key), 0);
	assert_int_equal(trust_load(tu_pki_path("ca.pem"), NULL, &c->trust), 0);
	c->cfg = (struct hs_client_config){ .username = user, .key = c->key,
					    .trust = c->trust,
					    .server_name = "localhost" };
	hs_client_init(&c->hs, &c->cfg);
	released = false;
	assert_int_equal(session_accept(&env, sv[0], (struct sockaddr *)&sun, h,
					&s), 0);
	return s;
}

static void client_free(struct client *c)
{
	hs_client_clear(&c->hs);
	framer_free(&c->fr);
	key_unref(c->key);
	trust_free(c->trust);
	crypto_cleanse(&c->sec, sizeof(c->sec));
	close(c->fd);
}

/* ClientHello, then the ServerHello. */
static void hello(struct client *c, struct session *s)
{
	uint8_t out[FRAME_HS_MAX];
	const uint8_t *sh;
	struct writer w;
	size_t len;

	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_client_hello(&c->hs, &w), HS_OK);
	send_frame(c, out, w.len);
	session_readable(&env, s);
	flush_pending();
	sh = read_frame(c, &len);
	assert_non_null(sh);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_client_finish(&c->hs, sh + FRAME_HDR, len - FRAME_HDR,
					  &w, &c->sec), HS_OK);
	send_frame(c, out, w.len);
}

/* The daemon's answer to ClientAuth: 0 for a record (logged in), else
 * the HandshakeError code. */
static int auth_answer(struct client *c, struct session *s)
{
	const uint8_t *f;
	size_t len;

	session_readable(&env, s);
	flush_pending();
	f = read_frame(c, &len);
	assert_non_null(f);
	if (len == FRAME_HDR + 2 && f[FRAME_HDR] == HS_ERROR)
		return f[FRAME_HDR + 1];
	return 0;
}

static void finish(struct session *s)
{
	if (!released)
		session_shutdown(&env, s);
	flush_pending();
	session_free(&env, s);
}

/* ---- the tests ---- */

static void test_login(void **state)
{
	struct client c;
	struct session *s = start(&c, "alice", "alice.key");

	(void)state;
	hello(&c, s);
	assert_int_equal(auth_answer(&c, s), 0);
	assert_non_null(session_user(s));
	finish(s);
	client_free(&c);
}

/* A reload between ClientHello and ClientAuth removes alice, or changes
 * her key: her ClientAuth, valid for the key of the ClientHello, fails. */
static void test_still_enrolled_at_client_auth(void **state)
{
	struct users *before = env.users;

	(void)state;
	limits.auth_failure_delay_ms = 0;
	for (int i = 1; i <= 2; i++) {
		struct users *now;
		struct client c;
		struct session *s;

		assert_int_equal(users_load(users_dir[i], &now), 0);
		s = start(&c, "alice", "alice.key");
		hello(&c, s);
		env.users = now;	/* alice's key changed, or alice gone */
		assert_int_equal(auth_answer(&c, s), HSE_AUTH);
		assert_null(session_user(s));
		finish(s);
		client_free(&c);
		env.users = before;
		users_unref(now);
	}
}

/* The session's traffic secrets are cleansed before its memory is freed. */
static void test_secrets_erased(void **state)
{
	struct client c;
	struct session *s = start(&c, "alice", "alice.key");
	struct channel mine;

	(void)state;
	hello(&c, s);
	assert_int_equal(auth_answer(&c, s), 0);
	assert_int_equal(chan_init(&mine, c.sec.c2s, c.sec.s2c), 0);
	nsecrets = 0;
	secrets[nsecrets++] = c.sec.c2s;
	secrets[nsecrets++] = c.sec.s2c;
	secrets[nsecrets++] = mine.tx.key;
	secrets[nsecrets++] = mine.rx.key;
	session_shutdown(&env, s);
	flush_pending();
	assert_true(released);
	leaks = 0;
	watching = true;
	session_free(&env, s);
	watching = false;
	if (leaks)
		fail_msg("a block freed by session_free still held a traffic "
			 "secret or key (%u matches)", leaks);
	chan_clear(&mine);
	client_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_still_enrolled_at_client_auth),
		cmocka_unit_test(test_secrets_erased),
	};

	return cmocka_run_group_tests_name("session", tests, setup, teardown);
}
