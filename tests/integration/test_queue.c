/* test_queue.c - messages to offline users (issue 17, secmsg-protocol(7)
 * VERSION 2, Stored messages) against the real secmsgd on loopback,
 * driven by proto/ clients (tclient).
 *
 * A conversation's MESSAGE to a peer offline is stored and answered
 * STORED; the peer gets the backlog at its next login in order (QUEUED),
 * again until it acknowledges (ACK), and its answers go back the same way
 * when the sender is offline in turn. secmsgd stopped (SIGTERM) and killed
 * (SIGKILL, at 200 or more random moments) in the middle of a stream of
 * stored messages: every message the sender saw STORED is delivered, none
 * twice (the sender sends again, with the same ref, what it saw no STORED
 * for). The limits reach the
 * sender as ERROR 7 and 8 naming the refused record.
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
#include <jansson.h>

#include "msg.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000		/* ms to wait for an expected record */

static struct tdaemon D;

static const char *LIMITS =
	"messages_per_second = 5000\n"
	"rate_burst = 2000\n"
	"logins_per_minute = 0\n";

static int setup(void **state)
{
	(void)state;
	return td_start(&D, LIMITS, false);
}

static int setup_quota(void **state)
{
	(void)state;
	return td_start(&D, "logins_per_minute = 0\n"
			"queue_max_messages = 3\n", false);
}

static int setup_full(void **state)
{
	(void)state;
	return td_start(&D, "logins_per_minute = 0\n"
			"queue_max_bytes = 1G\n"
			"store_max_bytes = 64K\n", false);
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

/* A kill costs a restart, and the sanitizers' start is the dearer part:
 * the stream runs the release secmsgd ($SECMSG_RELEASE) when there is
 * one (SECMSG_BUILD is set back at teardown_stream). */
static char san_build[512];

static int setup_stream(void **state)
{
	const char *rel = getenv("SECMSG_RELEASE"), *b = getenv("SECMSG_BUILD");
	char bin[600];

	snprintf(san_build, sizeof(san_build), "%s", b ? b : "build");
	snprintf(bin, sizeof(bin), "%s/secmsgd", rel ? rel : "");
	if (rel && access(bin, X_OK) == 0)
		setenv("SECMSG_BUILD", rel, 1);
	print_message("the stream runs %s/secmsgd\n", getenv("SECMSG_BUILD"));
	return setup(state);
}

static int teardown_stream(void **state)
{
	int r = teardown(state);

	setenv("SECMSG_BUILD", san_build, 1);
	return r;
}

static void expect(struct tc *c, uint8_t op, struct msg *m)
{
	int r = tc_expect(c, op, m, T);

	if (r != 0)
		fail_msg("%s: no %s (%d)", c->name, opcode_name(op), r);
}

/* Log in at version 2 and read the login's CONVERSATIONS. */
static void login(struct tc *c, const char *user)
{
	int r = tc_login_conv(c, D.port, user, T);

	if (r != 0)
		fail_msg("%s: no login at version 2 (%d)", user, r);
}

/* alice and bob make a conversation; bob goes offline. */
static void bob_offline(struct tc *a, struct tc *b)
{
	struct msg m;

	login(a, "alice");
	login(b, "bob");
	assert_int_equal(tc_conversation(a, b, T), 0);
	tc_close(b);
	expect(a, OP_PRESENCE, &m);
	assert_int_equal(m.online, 0);
}

/* MESSAGE(peer, ref) whose e2e is "<tag><ref>", padded to len bytes. */
static int send_ref(struct tc *c, const char *peer, char tag, uint32_t ref,
		    size_t len)
{
	static uint8_t e2e[E2E_MAX];
	struct msg m = { .op = OP_MESSAGE, .ref = ref, .e2e = e2e };
	int n = snprintf((char *)e2e, sizeof(e2e), "%c%u", tag, ref);

	m.e2e_len = len > (size_t)n ? len : (size_t)n;
	memset(e2e + n, '.', m.e2e_len - (size_t)n);
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return tc_send(c, &m);
}

static void expect_stored(struct tc *c, const char *peer, uint32_t ref)
{
	struct msg m;

	expect(c, OP_STORED, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.ref, ref);
}

/* The ref in a QUEUED record's e2e (tag, then the number). */
static uint32_t queued_ref(const struct msg *m, char tag)
{
	char s[16];
	size_t n = m->e2e_len < sizeof(s) - 1 ? m->e2e_len : sizeof(s) - 1;

	memcpy(s, m->e2e, n);
	s[n] = '\0';
	if (s[0] != tag)
		fail_msg("QUEUED from %s: e2e %s, not tag %c", m->peer, s, tag);
	return (uint32_t)strtoul(s + 1, NULL, 10);
}

/*
 * Read what c gets until a PONG: every QUEUED goes into refs (in order,
 * at most max), checked to come from peer with increasing seq; no other
 * MESSAGE may come. Returns the count; *last is the last seq.
 */
static size_t drain(struct tc *c, const char *peer, char tag, uint32_t *refs,
		    size_t max, uint64_t *last)
{
	struct msg m = { .op = OP_PING, .cookie = 0x5e9 };
	size_t n = 0;

	*last = 0;
	assert_int_equal(tc_send(c, &m), 0);
	for (;;) {
		assert_int_equal(tc_recv(c, &m, T), 0);
		if (m.op == OP_PONG && m.cookie == 0x5e9)
			return n;
		if (m.op == OP_MESSAGE)
			fail_msg("%s: a live MESSAGE among the stored ones",
				 c->name);
		if (m.op != OP_QUEUED)
			continue;
		assert_string_equal(m.peer, peer);
		assert_true(m.seq > *last);
		assert_true(m.at > 1600000000);
		*last = m.seq;
		assert_true(n < max);
		refs[n++] = queued_ref(&m, tag);
	}
}

static void ack(struct tc *c, uint64_t seq)
{
	struct msg m = { .op = OP_ACK, .seq = seq };

	assert_int_equal(tc_send(c, &m), 0);
}

/* Offline delivery in order, again until acknowledged, and the answers
 * back to a sender who is offline in turn. */
static void test_offline_in_order(void **state)
{
	struct tc a, b;
	uint32_t refs[64];
	uint64_t last;

	(void)state;
	bob_offline(&a, &b);
	for (uint32_t ref = 1; ref <= 20; ref++)
		assert_int_equal(send_ref(&a, "bob", 'm', ref, 0), 0);
	for (uint32_t ref = 1; ref <= 20; ref++)
		expect_stored(&a, "bob", ref);
	for (int round = 0; round < 2; round++) {	/* no ACK: again */
		login(&b, "bob");
		assert_int_equal(drain(&b, "alice", 'm', refs, 64, &last), 20);
		for (uint32_t i = 0; i < 20; i++)
			assert_int_equal(refs[i], i + 1);
		if (round == 0)
			tc_close(&b);
	}
	ack(&b, last);
	tc_close(&a);
	for (uint32_t ref = 1; ref <= 20; ref++)	/* receipts, say */
		assert_int_equal(send_ref(&b, "alice", 'r', ref, 0), 0);
	for (uint32_t ref = 1; ref <= 20; ref++)
		expect_stored(&b, "alice", ref);
	login(&a, "alice");
	assert_int_equal(drain(&a, "bob", 'r', refs, 64, &last), 20);
	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(refs[i], i + 1);
	ack(&a, last);
	tc_close(&a);
	tc_close(&b);
	/* The ACKs are durable once secmsgd has stopped. */
	assert_int_equal(td_restart(&D, SIGTERM), 0);
	login(&a, "alice");
	login(&b, "bob");
	assert_int_equal(drain(&a, "bob", 'r', refs, 64, &last), 0);
	assert_int_equal(drain(&b, "alice", 'm', refs, 64, &last), 0);
	tc_close(&a);
	tc_close(&b);
}

/* The stream's kill moments come from this generator, seeded from the
 * clock (or SECMSG_SEED) and printed, so a failing run can be repeated. */
static uint64_t rnd_state;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return n ? (uint32_t)(rnd_state >> 33) % n : 0;
}

static void rnd_seed(void)
{
	const char *s = getenv("SECMSG_SEED");

	rnd_state = s ? strtoull(s, NULL, 10) : (uint64_t)tc_now_ms();
	print_message("kill moments: SECMSG_SEED=%llu\n",
		      (unsigned long long)rnd_state);
}

/*
 * One round of the stream: send refs from..to (the ones without STORED
 * from the rounds before first, with the same refs), read STORED until
 * cut of them came (0: none, CUT_ALL: up to to's), wait delay_us, then
 * restart secmsgd with sig.
 */
#define CUT_ALL UINT32_MAX
static uint32_t stream_round(struct tc *a, bool *stored, uint32_t from,
			     uint32_t to, uint32_t cut, unsigned delay_us,
			     int sig)
{
	struct msg m;
	unsigned seen = 0;

	login(a, "alice");
	for (uint32_t ref = 1; ref <= to; ref++)
		if (ref >= from || !stored[ref])
			assert_int_equal(send_ref(a, "bob", 'm', ref, 200), 0);
	while (seen < cut && tc_recv(a, &m, T) == 0) {
		if (m.op == OP_ERROR)	/* a ref sent again is STORED too */
			fail_msg("ERROR %u for ref %u", m.code, m.ref);
		if (m.op != OP_STORED)
			continue;
		assert_string_equal(m.peer, "bob");
		assert_true(m.ref >= 1 && m.ref <= to);
		stored[m.ref] = true;
		seen++;
		if (cut == CUT_ALL && m.ref == to)
			break;
	}
	/* Later STOREDs are unread, their records committed or not. */
	usleep(delay_us);
	assert_int_equal(td_restart(&D, sig), 0);
	tc_close(a);
	return to + 1;
}

/*
 * secmsgd stopped (SIGTERM, one round in 16) and killed (SIGKILL: at
 * least 200 kill points) during a stream of stored messages, at a random
 * moment: before any STORED, after some, or after all of a round's, then
 * 0 to 3 ms later (a commit of a round takes about that). What alice saw
 * STORED is all delivered, in order, none twice. A kill costs a restart:
 * this test runs the release secmsgd when there is one (setup_stream).
 */
#define ROUNDS 216
#define PER_ROUND 8
#define MAXREF (ROUNDS * PER_ROUND)
static void test_restart_during_stream(void **state)
{
	static bool stored[MAXREF + 1], got[MAXREF + 1];
	static uint32_t refs[MAXREF * 2];
	struct tc a, b;
	uint32_t next = 1, prev = 0;
	unsigned kills = 0;
	int64_t t0 = tc_now_ms();
	uint64_t last;
	size_t n;

	(void)state;
	rnd_seed();
	bob_offline(&a, &b);
	tc_close(&a);
	for (unsigned i = 0; i < ROUNDS; i++) {
		bool term = i % 16 == 1;
		uint32_t cut = rnd(PER_ROUND + 2);

		if (term || cut > PER_ROUND)
			cut = CUT_ALL;
		next = stream_round(&a, stored, next, next + PER_ROUND - 1,
				    cut, rnd(3000), term ? SIGTERM : SIGKILL);
		kills += !term;
	}
	login(&b, "bob");
	n = drain(&b, "alice", 'm', refs, MAXREF * 2, &last);
	for (size_t i = 0; i < n; i++) {
		assert_true(refs[i] > prev);	/* in order, none twice */
		prev = refs[i];
		got[refs[i]] = true;
	}
	for (uint32_t ref = 1; ref < next; ref++)
		if (stored[ref] && !got[ref])
			fail_msg("message %u was STORED, never delivered", ref);
	ack(&b, last);
	tc_close(&b);
	print_message("%u kill points (SIGKILL), %u stops (SIGTERM), %zu "
		      "messages delivered, in %lld ms\n", kills, ROUNDS - kills,
		      n, (long long)(tc_now_ms() - t0));
	assert_true(kills >= 200);
}

/* A backlog larger than send_queue_bytes (1M) comes whole at the login,
 * with no BYE 5: the login may queue what is stored for it. */
static void test_big_backlog(void **state)
{
	static uint32_t refs[300];
	struct tc a, b;
	uint64_t last;
	size_t n;

	(void)state;
	bob_offline(&a, &b);
	for (uint32_t ref = 1; ref <= 250; ref++) {
		assert_int_equal(send_ref(&a, "bob", 'm', ref, 8000), 0);
		if (ref % 50 == 0)	/* within rate_burst */
			for (uint32_t k = ref - 49; k <= ref; k++)
				expect_stored(&a, "bob", k);
	}
	login(&b, "bob");
	n = drain(&b, "alice", 'm', refs, 300, &last);
	assert_int_equal(n, 250);
	for (uint32_t i = 0; i < 250; i++)
		assert_int_equal(refs[i], i + 1);
	tc_close(&a);
	tc_close(&b);
}

/* secmsgctl --json status: the stored messages, their bytes, the oldest. */
static json_t *status(void)
{
	char out[4096];
	json_error_t e;
	json_t *j;

	assert_int_equal(td_ctl(&D, "--json status", out, sizeof(out)), 0);
	j = json_loads(out, 0, &e);
	if (!j)
		fail_msg("not JSON: %s", out);
	return j;
}

static json_int_t field(json_t *j, const char *k)
{
	return json_integer_value(json_object_get(j, k));
}

/* Over the recipient's quota: ERROR 7 naming the record; nothing is
 * stored. secmsgctl status counts what is. */
static void test_quota(void **state)
{
	struct tc a, b;
	uint32_t refs[8];
	uint64_t last;
	struct msg m;
	json_t *j, *q;
	json_error_t e;
	char out[4096];

	(void)state;
	bob_offline(&a, &b);
	for (uint32_t ref = 1; ref <= 5; ref++)
		assert_int_equal(send_ref(&a, "bob", 'm', ref, 0), 0);
	for (uint32_t ref = 1; ref <= 3; ref++)
		expect_stored(&a, "bob", ref);
	for (uint32_t ref = 4; ref <= 5; ref++) {
		expect(&a, OP_ERROR, &m);
		assert_int_equal(m.code, ERR_QUOTA);
		assert_int_equal(m.err_op, OP_MESSAGE);
		assert_int_equal(m.ref, ref);
		assert_string_equal(m.peer, "bob");
	}
	/* The journal hears of the run of refusals once. */
	assert_int_equal(td_log_count(&D, "a message from alice to bob was "
				      "not stored: the recipient's queue is "
				      "full"), 1);
	j = status();
	assert_int_equal(field(j, "stored_messages"), 3);
	assert_int_equal(field(j, "stored_bytes"), 6);	/* m1 m2 m3 */
	assert_true(field(j, "stored_oldest") > 1600000000);
	/* Stored, not relayed: each counted once, in its own counter. */
	assert_int_equal(field(j, "messages_stored"), 3);
	assert_int_equal(field(j, "messages_relayed"), 0);
	json_decref(j);
	assert_int_equal(td_ctl(&D, "--json list-queues", out, sizeof(out)),
			 0);
	j = json_loads(out, 0, &e);
	assert_non_null(j);
	q = json_array_get(json_object_get(j, "queues"), 0);
	assert_string_equal(json_string_value(json_object_get(q, "name")),
			    "bob");
	assert_int_equal(field(q, "messages"), 3);
	assert_int_equal(field(q, "bytes"), 6);
	assert_int_equal(json_array_size(json_object_get(j, "queues")), 1);
	json_decref(j);
	assert_int_equal(td_ctl(&D, "list-queues", out, sizeof(out)), 0);
	if (!strstr(out, "1 user with stored messages.") || !strstr(out, "bob"))
		fail_msg("list-queues:\n%s", out);
	login(&b, "bob");
	assert_int_equal(drain(&b, "alice", 'm', refs, 8, &last), 3);
	ack(&b, last);
	tc_close(&a);
	tc_close(&b);
	assert_int_equal(td_restart(&D, SIGTERM), 0);	/* the ACK is done */
	j = status();
	assert_int_equal(field(j, "stored_messages"), 0);
	assert_int_equal(field(j, "stored_oldest"), 0);
	json_decref(j);
}

/* secmsgctl purge: what is stored for bob goes, on disk (a SIGKILL
 * later it is still gone), and his login brings nothing. */
static void test_purge(void **state)
{
	uint32_t refs[8];
	char out[4096];
	struct tc a, b;
	uint64_t last;
	json_t *j;

	(void)state;
	bob_offline(&a, &b);
	for (uint32_t ref = 1; ref <= 3; ref++)
		assert_int_equal(send_ref(&a, "bob", 'm', ref, 0), 0);
	for (uint32_t ref = 1; ref <= 3; ref++)
		expect_stored(&a, "bob", ref);
	assert_int_equal(td_ctl(&D, "purge bob", out, sizeof(out)), 0);
	assert_string_equal(out, "Deleted 3 stored messages for bob.\n");
	tc_close(&a);
	assert_int_equal(td_restart(&D, SIGKILL), 0);
	j = status();
	assert_int_equal(field(j, "stored_messages"), 0);
	json_decref(j);
	login(&b, "bob");
	assert_int_equal(drain(&b, "alice", 'm', refs, 8, &last), 0);
	tc_close(&b);
	assert_int_equal(td_ctl(&D, "--json purge bob", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"messages\": 0"));
}

/* Over the store's size: ERROR 8. */
static void test_store_full(void **state)
{
	struct tc a, b;
	struct msg m;

	(void)state;
	bob_offline(&a, &b);
	for (uint32_t ref = 1; ref <= 9; ref++)
		assert_int_equal(send_ref(&a, "bob", 'm', ref, 8000), 0);
	for (uint32_t ref = 1; ref <= 8; ref++)
		expect_stored(&a, "bob", ref);
	expect(&a, OP_ERROR, &m);
	assert_int_equal(m.code, ERR_STORE_FULL);
	assert_int_equal(m.ref, 9);
	assert_string_equal(m.peer, "bob");
	tc_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_offline_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_during_stream, setup_stream, teardown_stream),
		cmocka_unit_test_setup_teardown(test_big_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup_quota, teardown),
		cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_full, setup_full, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
