/* test_conv.c - persistent conversations (protocol version 2) against
 * the real secmsgd on loopback, driven by proto/ clients (tclient).
 *
 * Two version 2 users make a conversation and it outlives: a disconnect
 * (PRESENCE, the MESSAGE to the peer offline stored, CONVERSATIONS at the
 * next login, messages again with no new request), secmsgd stopped with
 * SIGTERM and killed with SIGKILL, and it ends for good with END (held
 * for a peer offline until its next login) or with a key change (END 5).
 * A version 1 user with a version 2 user: version 1 rules. A damaged
 * database stops secmsgd at start, naming the file. The version 2
 * ClientHello against the daemon (doc/SECURITY.md §9 gap 12).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "keys.h"
#include "msg.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000	/* ms to wait for an expected record */

static struct tdaemon D;

static const char *LIMITS =
	"messages_per_second = 2000\n"
	"rate_burst = 400\n"
	"logins_per_minute = 0\n";

static int setup(void **state)
{
	(void)state;
	return td_start(&D, LIMITS, false);
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

static void login2(struct tc *c, const char *user)
{
	assert_int_equal(tc_login_v(c, D.port, user, 2), 0);
	assert_int_equal(c->version, 2);
}

static void expect(struct tc *c, uint8_t op, struct msg *m)
{
	int r = tc_expect(c, op, m, T);

	if (r != 0)
		fail_msg("%s: no %s (%d)", c->name, opcode_name(op), r);
}

/* The CONVERSATIONS reply: its only entry is peer, online or not. */
static void expect_conversations(struct tc *c, const char *peer, bool online)
{
	struct msg m;
	struct msg_conv e;
	size_t off = 0;

	expect(c, OP_CONVERSATIONS, &m);
	assert_int_equal(m.last, 1);
	if (!peer) {
		assert_int_equal(m.count, 0);
		return;
	}
	assert_int_equal(m.count, 1);
	assert_int_equal(msg_conv_next(&m, &off, &e), 1);
	assert_string_equal(e.peer, peer);
	assert_int_equal(e.flags, online ? CONV_FLAG_ONLINE : 0);
	assert_true(e.since > 1600000000);
}

static void expect_presence(struct tc *c, const char *peer, bool online)
{
	struct msg m;

	expect(c, OP_PRESENCE, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.online, online);
}

static void send_rec(struct tc *c, uint8_t op, const char *peer)
{
	static const uint8_t sig[64] = { 1 };
	struct msg m = { .op = op, .sig = sig, .sig_len = sizeof(sig),
			 .reason = 1 };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	assert_int_equal(tc_send(c, &m), 0);
}

static void send_message(struct tc *c, const char *peer, uint32_t ref,
			 const char *text)
{
	struct msg m = { .op = OP_MESSAGE, .ref = ref,
			 .e2e = (const uint8_t *)text, .e2e_len = strlen(text) };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	assert_int_equal(tc_send(c, &m), 0);
}

/* from sends text to to, which gets it. */
static void relay_ok(struct tc *from, struct tc *to, uint32_t ref,
		     const char *text)
{
	struct msg m;

	send_message(from, to->name, ref, text);
	expect(to, OP_MESSAGE, &m);
	assert_string_equal(m.peer, from->name);
	assert_int_equal(m.e2e_len, strlen(text));
	assert_memory_equal(m.e2e, text, m.e2e_len);
}

/* a asks b; both see flags (persistent or not) in ACCEPT and CONFIRM. */
static void chat(struct tc *a, struct tc *b, uint8_t flags)
{
	struct msg m;

	send_rec(a, OP_RTT, b->name);
	expect(b, OP_RTT, &m);
	send_rec(b, OP_ACCEPT, a->name);
	expect(a, OP_ACCEPT, &m);
	if (a->version == 2)
		assert_int_equal(m.flags, flags);
	send_rec(a, OP_CONFIRM, b->name);
	expect(b, OP_CONFIRM, &m);
	if (b->version == 2)
		assert_int_equal(m.flags, flags);
}

/* Log in at version 2 and read the login's CONVERSATIONS. */
static void relogin(struct tc *c, const char *user, const char *peer,
		    bool online)
{
	login2(c, user);
	expect_conversations(c, peer, online);
}

/* alice and bob log in at version 2 and make a conversation. */
static void converse(struct tc *a, struct tc *b)
{
	relogin(a, "alice", NULL, false);
	relogin(b, "bob", NULL, false);
	chat(a, b, MSG_FLAG_PERSISTENT);
}

/* ---- the tests ---- */

/* doc/SECURITY.md §9 gap 12: the daemon answers a version 2 ClientHello
 * at version 2, a version 1 one at version 1. */
static void test_v2_hello(void **state)
{
	struct tc a, b;

	(void)state;
	login2(&a, "alice");
	expect_conversations(&a, NULL, false);
	assert_int_equal(tc_login_v(&b, D.port, "bob", 1), 0);
	assert_int_equal(b.version, 1);
	tc_close(&a);
	tc_close(&b);
}

static void test_survives_disconnect(void **state)
{
	struct tc a, b;
	struct msg m;

	(void)state;
	converse(&a, &b);
	relay_ok(&a, &b, 1, "hello");
	tc_close(&b);
	expect_presence(&a, "bob", false);
	send_message(&a, "bob", 77, "kept");	/* stored: test_queue.c */
	expect(&a, OP_STORED, &m);
	assert_int_equal(m.ref, 77);
	assert_string_equal(m.peer, "bob");
	relogin(&b, "bob", "alice", true);
	expect(&b, OP_QUEUED, &m);
	assert_string_equal(m.peer, "alice");
	assert_memory_equal(m.e2e, "kept", 4);
	expect_presence(&a, "bob", true);
	relay_ok(&a, &b, 2, "again");
	relay_ok(&b, &a, 1, "no new request");
	/* QUIT does not end it either. */
	assert_int_equal(tc_simple(&b, OP_QUIT, ""), 0);
	expect_presence(&a, "bob", false);
	tc_close(&b);
	relogin(&b, "bob", "alice", true);
	expect_presence(&a, "bob", true);
	tc_close(&a);
	tc_close(&b);
}

/* secmsgd stopped (SIGTERM) or killed (SIGKILL): still listed after. */
static void test_survives_restart(void **state)
{
	static const int sigs[] = { SIGTERM, SIGKILL };
	struct tc a, b;

	(void)state;
	converse(&a, &b);
	tc_close(&a);
	tc_close(&b);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(td_restart(&D, sigs[i]), 0);
		relogin(&a, "alice", "bob", false);
		relogin(&b, "bob", "alice", true);
		expect_presence(&a, "bob", true);
		relay_ok(&a, &b, 10 + (uint32_t)i, "after a restart");
		tc_close(&a);
		tc_close(&b);
	}
}

/* END for good to a peer offline: held, delivered at its next login
 * (LIST, END, CONVERSATIONS), also across a restart. */
static void test_end_held(void **state)
{
	struct tc a, b;
	struct msg m = { .op = OP_END, .e2e = (const uint8_t *)"kind END",
			 .e2e_len = 8 };

	(void)state;
	converse(&a, &b);
	tc_close(&b);
	expect_presence(&a, "bob", false);
	snprintf(m.peer, sizeof(m.peer), "bob");
	assert_int_equal(tc_send(&a, &m), 0);
	/* The END is on disk once the conversation is gone from alice's
	 * list (the store deletes and holds in one transaction). */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(tc_simple(&a, OP_CONVERSATIONS, ""), 0);
		expect(&a, OP_CONVERSATIONS, &m);
		if (m.count == 0)
			break;
		usleep(20000);
	}
	assert_int_equal(m.count, 0);
	tc_close(&a);
	assert_int_equal(td_restart(&D, SIGKILL), 0);
	login2(&b, "bob");
	expect(&b, OP_END, &m);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.reason, 1);
	assert_int_equal(m.e2e_len, 8);
	assert_memory_equal(m.e2e, "kind END", 8);
	expect_conversations(&b, NULL, false);
	tc_close(&b);
	relogin(&b, "bob", NULL, false);	/* delivered once */
	tc_close(&b);
}

/* A version 1 user and a version 2 user: version 1 rules. */
static void test_v1_and_v2(void **state)
{
	struct tc a, c;
	struct msg m;

	(void)state;
	relogin(&a, "alice", NULL, false);
	assert_int_equal(tc_login(&c, D.port, "carol"), 0);
	chat(&a, &c, 0);
	relay_ok(&c, &a, 1, "v1 says hi");
	tc_close(&c);
	expect(&a, OP_END, &m);		/* END 2, as in version 1 */
	assert_string_equal(m.peer, "carol");
	assert_int_equal(m.reason, 2);
	assert_int_equal(tc_simple(&a, OP_CONVERSATIONS, ""), 0);
	expect_conversations(&a, NULL, false);
	tc_close(&a);
}

static int copy(const char *from, const char *to)
{
	char buf[8192];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	close(in);
	return out >= 0 ? close(out) : -1;
}

/* A key change ends the conversation: END 5 to the side online, held for
 * the other (here the re-keyed user itself, sent BYE 7). */
static void test_key_change(void **state)
{
	struct tc a, b;
	struct msg m;

	(void)state;
	converse(&a, &b);
	assert_int_equal(copy(tu_pki_path("erin.pub"),
			      td_path(&D, "users/bob.pem")), 0);
	td_signal(&D, SIGHUP);
	expect(&b, OP_BYE, &m);
	assert_int_equal(m.reason, 7);
	expect(&a, OP_END, &m);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.reason, 5);
	assert_int_equal(tc_simple(&a, OP_CONVERSATIONS, ""), 0);
	expect_conversations(&a, NULL, false);
	tc_close(&a);
	tc_close(&b);
}

/* The fingerprint (hex) of a fixture user's key. */
static void fixture_fpr(const char *name, char fpr[FPR_HEX_LEN + 1])
{
	char path[64];
	sm_key *k;

	snprintf(path, sizeof(path), "%s.pub", name);
	assert_int_equal(key_load_public(tu_pki_path(path), &k), 0);
	assert_int_equal(key_fingerprint_hex(k, fpr), 0);
	key_unref(k);
}

/* Run sql on the database of the stopped daemon; the value of the first
 * column of its last row (0 if none). */
static int64_t db_sql(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	const char *tail = sql;
	int64_t v = 0;

	assert_int_equal(sqlite3_open(td_path(&D, "state/secmsgd.db"), &db),
			 SQLITE_OK);
	while (*tail) {
		assert_int_equal(sqlite3_prepare_v2(db, tail, -1, &s, &tail),
				 SQLITE_OK);
		while (s && sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

/* Kept requests (secmsg-protocol(7), First contact) of a user whose key
 * changed go at the daemon's next start (and reload): bob's is dropped,
 * carol's to dave stays. The rows are written while secmsgd is stopped,
 * asked now (older ones would expire: request_retention is on). */
static void test_kept_request_key_change(void **state)
{
	char fa[FPR_HEX_LEN + 1], fb[FPR_HEX_LEN + 1], fc[FPR_HEX_LEN + 1],
	     fd[FPR_HEX_LEN + 1], sql[1024];

	(void)state;
	fixture_fpr("alice", fa);
	fixture_fpr("bob", fb);
	fixture_fpr("carol", fc);
	fixture_fpr("dave", fd);
	td_signal(&D, SIGTERM);
	usleep(500000);
	snprintf(sql, sizeof(sql), "INSERT INTO requests (a, b, asked, fpr_a, "
		 "fpr_b, rtt) VALUES ('alice', 'bob', %lld, '%s', '%s', "
		 "zeroblob(64)), ('carol', 'dave', %lld, '%s', '%s', "
		 "zeroblob(64));", (long long)time(NULL), fa, fb,
		 (long long)time(NULL), fc, fd);
	db_sql(sql);
	assert_int_equal(copy(tu_pki_path("erin.pub"),
			      td_path(&D, "users/bob.pem")), 0);
	assert_int_equal(td_restart(&D, SIGTERM), 0);
	usleep(500000);		/* the store's commit */
	td_signal(&D, SIGTERM);
	usleep(500000);
	assert_int_equal(db_sql("SELECT count(*) FROM requests"), 1);
	assert_int_equal(db_sql("SELECT count(*) FROM requests WHERE "
				"a = 'carol' AND b = 'dave'"), 1);
	assert_int_equal(td_restart(&D, SIGTERM), 0);
}

/* A damaged database: secmsgd does not start (78), names the file, and
 * leaves it as it was. */
static void test_corrupt_database(void **state)
{
	char db[1024], junk[4096], log[65536];
	int fd, st;
	ssize_t n;

	(void)state;
	snprintf(db, sizeof(db), "%s", td_path(&D, "state/secmsgd.db"));
	memset(junk, 'J', sizeof(junk));
	assert_int_equal(td_restart(&D, SIGTERM), 0);	/* the file exists */
	td_signal(&D, SIGTERM);
	usleep(500000);
	unlink(td_path(&D, "state/secmsgd.db-wal"));
	unlink(td_path(&D, "state/secmsgd.db-shm"));
	fd = open(db, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);
	st = td_run_to_exit(&D, 20000);
	assert_int_equal(st, 78);
	fd = open(td_path(&D, "secmsgd.log"), O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	assert_true(n > 0);
	log[n] = '\0';
	if (!strstr(log, db))
		fail_msg("the log does not name %s:\n%s", db, log);
	fd = open(db, O_RDONLY);
	assert_int_equal(read(fd, log, sizeof(junk)), sizeof(junk));
	assert_memory_equal(log, junk, sizeof(junk));	/* not reset */
	close(fd);
	/* Put a good one back so that teardown's daemon can start. */
	unlink(db);
	assert_int_equal(td_restart(&D, SIGTERM), 0);
}

/* secmsgctl --json list-chats (ListChats): the conversation with each
 * side's presence and since; a text row too. */
static void test_list_chats(void **state)
{
	struct tc a, b;
	char out[8192];
	json_t *j, *c;
	json_error_t e;

	(void)state;
	converse(&a, &b);
	tc_close(&b);
	expect_presence(&a, "bob", false);
	assert_int_equal(td_ctl(&D, "--json list-chats", out, sizeof(out)), 0);
	j = json_loads(out, 0, &e);
	if (!j)
		fail_msg("not JSON: %s", out);
	c = json_array_get(json_object_get(j, "conversations"), 0);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "a")), "alice");
	assert_string_equal(json_string_value(json_object_get(c, "b")), "bob");
	assert_true(json_is_true(json_object_get(c, "a_online")));
	assert_true(json_is_false(json_object_get(c, "b_online")));
	assert_true(json_integer_value(json_object_get(c, "since")) > 1600000000);
	assert_int_equal(json_array_size(json_object_get(j, "chats")), 0);
	json_decref(j);
	assert_int_equal(td_ctl(&D, "list-chats", out, sizeof(out)), 0);
	if (!strstr(out, "conversation, alice online") ||
	    !strstr(out, "0 chats, 1 conversation."))
		fail_msg("list-chats:\n%s", out);
	tc_close(&a);
}

/*
 * Steps for tests/system/systemd.sh against an installed daemon (a
 * version 2 client until secmsg-client speaks it): "establish PORT"
 * makes the conversation alice - bob, "check PORT" logs alice in and
 * finds it listed. Exit status 0 when it went as expected.
 */
static int step(const char *what, const char *port)
{
	struct tc a, b;
	struct msg m;
	struct msg_conv e;
	size_t off = 0;
	int r;

	D.port = atoi(port);
	if (strcmp(what, "establish") == 0) {
		r = tc_login_v(&a, D.port, "alice", 2) < 0 ? 2 :
		    tc_login_v(&b, D.port, "bob", 2) < 0 ? 3 : 0;
		if (r == 0)
			chat(&a, &b, MSG_FLAG_PERSISTENT);
		tc_close(&a);
		if (r != 2)
			tc_close(&b);
		return r;
	}
	r = tc_login_v(&a, D.port, "alice", 2) < 0 ||
	    tc_expect(&a, OP_CONVERSATIONS, &m, T) < 0 ? 2 : 1;
	while (r == 1 && msg_conv_next(&m, &off, &e) == 1)
		if (strcmp(e.peer, "bob") == 0) {
			printf("alice - bob since %llu\n",
			       (unsigned long long)e.since);
			r = 0;
		}
	tc_close(&a);
	return r;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v2_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_disconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_and_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_request_key_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_chats, setup, teardown),
	};

	if (argc == 3)
		return step(argv[1], argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
