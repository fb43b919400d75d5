/* test_relay.c - daemon/relay.c in process: every consent and limit rule of
 * secmsg-protocol(7) §5, the rate bucket and request expiry on a fake
 * clock, and what a login and a logout tell others.
 *
 * The relay runs against a fake environment: records delivered to a user
 * are kept per user; events are queued and applied in order to the
 * target's relay, as the workers would at the end of an iteration. The
 * registry is the real one, and so is the store (a database in a
 * temporary directory): what the relay asks of it runs, batch by batch,
 * after the events (as a worker hands it over), and its answers are
 * events like the others. Clients log in at version 1 or 2.
 */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/convs.h"
#include "daemon/queue.h"
#include "daemon/registry.h"
#include "daemon/relay.h"
#include "daemon/store.h"
#include "daemon/users.h"
#include "keys.h"
#include "msg.h"
#include "testutil.h"

#define NCLIENTS 8
#define NRECS 256
#define REC_MAX (E2E_MAX + 4096)

struct rec {
	size_t len;
	uint8_t pt[REC_MAX];
};

struct client {
	char name[NAME_MAX_LEN + 1];
	struct handle h;
	struct relay_user *u;
	sm_key *key;
	unsigned ver;		/* its session's protocol version */
	struct rec recs[NRECS];
	size_t head, tail;	/* records delivered, not yet looked at */
	unsigned takeovers, aborts;
};

struct qevent {
	struct event e;
	uint8_t payload[REC_MAX];
};

static struct client clients[NCLIENTS];
static struct qevent *queue;
static size_t nqueue, qcap;
static struct limits limits;
static struct worker_stats stats;
static uint32_t next_gen = 1;
static struct store *st;
static char stdir[64];
static struct store_req *sq;	/* asked of the store, not yet run */
static bool store_fails;	/* answer every request STORE_FAILED */
static bool store_hold;		/* pump() leaves the store's queue alone */

static void fake_deliver(void *ctx, void *owner, const uint8_t *pt, size_t len)
{
	struct client *c = owner;
	struct rec *r;

	(void)ctx;
	assert_true(c->tail - c->head < NRECS);
	assert_true(len <= REC_MAX);
	r = &c->recs[c->tail++ % NRECS];
	memcpy(r->pt, pt, len);
	r->len = len;
}

static int fake_emit(void *ctx, const struct event *e, const void *payload,
		     size_t len)
{
	(void)ctx;
	if (nqueue == qcap) {
		qcap = qcap ? qcap * 2 : 64;
		queue = realloc(queue, qcap * sizeof(*queue));
		assert_non_null(queue);
	}
	queue[nqueue].e = *e;
	queue[nqueue].e.len = (uint32_t)len;
	assert_true(len <= REC_MAX);
	if (len)
		memcpy(queue[nqueue].payload, payload, len);
	nqueue++;
	return 0;
}

static void fake_store(void *ctx, struct store_req *r)
{
	struct store_req **t = &sq;

	(void)ctx;
	while (*t)
		t = &(*t)->next;
	r->next = NULL;
	*t = r;
}

static void fake_answer(void *ctx, const struct event *e, const void *payload)
{
	fake_emit(ctx, e, payload, e->len);
}

static const struct relay_ops ops = {
	.deliver = fake_deliver,
	.emit = fake_emit,
	.store = fake_store,
};

static const struct store_ops sops = { .answer = fake_answer };

/* A database that fails: every request is answered STORE_FAILED. */
static void store_fail_all(struct store_req *list)
{
	for (struct store_req *r = list; r; r = r->next) {
		struct event e = { .type = EVT_STORED, .arg = STORE_FAILED,
				   .aux = r->op, .to = r->reply,
				   .from = r->peer, .ref = r->ref };

		if (!handle_valid(r->reply))
			continue;
		snprintf(e.from_name, sizeof(e.from_name), "%s", r->b);
		snprintf(e.to_name, sizeof(e.to_name), "%s", r->a);
		fake_emit(NULL, &e, r->data, r->op == STORE_CONV_CREATE ?
			  r->len : 0);
	}
	store_req_free_list(list);
}

static struct relay_env env = { .ops = &ops, .limits = &limits,
				.stats = &stats, .now_ms = 1000000 };

static struct client *by_handle(struct handle h)
{
	for (int i = 0; i < NCLIENTS; i++)
		if (clients[i].u && handle_eq(clients[i].h, h))
			return &clients[i];
	return NULL;
}

/* Apply every queued event in order, as the workers would. The event
 * payload is an event's payload: rebuild one contiguous event for it. */
static void pump_events(void)
{
	static _Alignas(8) uint8_t buf[EVENT_ALIGN(sizeof(struct event)) + REC_MAX];

	for (size_t i = 0; i < nqueue; i++) {
		struct event *e = (struct event *)buf;
		struct client *c;

		*e = queue[i].e;
		memcpy(buf + EVENT_ALIGN(sizeof(*e)), queue[i].payload, e->len);
		c = by_handle(e->to);
		if (e->type == EVT_TAKEOVER || e->type == EVT_ABORT) {
			if (c && e->type == EVT_TAKEOVER)
				c->takeovers++;
			if (c && e->type == EVT_ABORT)
				c->aborts++;
			continue;
		}
		if (c)
			relay_event(&env, c->u, e);
		else
			relay_event_lost(&env, e);
	}
	nqueue = 0;
}

/* Events, then the store's batch (its answers are events), until
 * nothing is left (with store_hold, the store's queue waits). */
static void pump(void)
{
	do {
		struct store_req *list;

		pump_events();
		if (store_hold || !sq)
			continue;
		list = sq;
		sq = NULL;
		if (store_fails)
			store_fail_all(list);
		else
			store_run(st, list);
	} while (nqueue || (sq && !store_hold));
}

static struct client *client_named(const char *name)
{
	for (int i = 0; i < NCLIENTS; i++)
		if (strcmp(clients[i].name, name) == 0)
			return &clients[i];
	for (int i = 0; i < NCLIENTS; i++)
		if (!clients[i].name[0]) {
			snprintf(clients[i].name, sizeof(clients[i].name), "%s", name);
			return &clients[i];
		}
	fail_msg("no room for %s", name);
	return NULL;
}

/* Log name in at version ver (its key from the fixture PKI); keep what
 * its client got at login. */
static struct client *login_keep(const char *name, unsigned ver)
{
	struct client *c = client_named(name);
	char path[64];

	if (!c->key) {
		snprintf(path, sizeof(path), "%s.pub", name);
		assert_int_equal(key_load_public(tu_pki_path(path), &c->key), 0);
	}
	c->ver = ver;
	c->h = (struct handle){ .worker = 0, .slot = next_gen, .gen = next_gen,
				.ver = (uint8_t)ver };
	next_gen++;
	assert_int_equal(relay_login(&env, name, c->key, c->h, c, &c->u), 0);
	pump();
	return c;
}

/* The same at version 1, dropping the login LIST. */
static struct client *login(const char *name)
{
	struct client *c = login_keep(name, 1);

	c->head = c->tail;
	return c;
}

/* A version 2 login; what it got (LIST, ENDs, CONVERSATIONS) dropped. */
static struct client *login2(const char *name)
{
	struct client *c = login_keep(name, 2);

	c->head = c->tail;
	return c;
}

static void logout(struct client *c, uint8_t reason)
{
	relay_logout(&env, c->u, reason);
	relay_user_free(c->u);
	c->u = NULL;
	pump();
	registry_closed(c->name, c->h, env.now_ms);
}

/* The next record c's client got, decoded into m (pointing into it). */
static void next(struct client *c, struct msg *m)
{
	struct rec *r;

	if (c->head == c->tail)
		fail_msg("%s got no record", c->name);
	r = &c->recs[c->head++ % NRECS];
	assert_int_equal(msg_decode_s2c_v(r->pt, r->len, c->ver ? c->ver : 1,
					  m), 0);
}

static void expect_op(struct client *c, uint8_t op, struct msg *m)
{
	next(c, m);
	if (m->op != op)
		fail_msg("%s got %s, not %s", c->name, opcode_name(m->op),
			 opcode_name(op));
}

static void expect_nothing(struct client *c)
{
	if (c->head != c->tail) {
		struct msg m;

		next(c, &m);
		fail_msg("%s got an unexpected %s", c->name, opcode_name(m.op));
	}
}

static void expect_error(struct client *c, uint16_t code)
{
	struct msg m;

	expect_op(c, OP_ERROR, &m);
	assert_int_equal(m.code, code);
}

static void expect_refuse(struct client *c, const char *peer, uint8_t reason)
{
	struct msg m;

	expect_op(c, OP_REFUSE, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.reason, reason);
}

static void expect_end(struct client *c, const char *peer, uint8_t reason)
{
	struct msg m;

	expect_op(c, OP_END, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.reason, reason);
}

/* c's client sends m; every event it causes is applied. */
static enum relay_verdict send_rec(struct client *c, const struct msg *m)
{
	uint8_t buf[REC_MAX];
	struct writer w;
	enum relay_verdict v;

	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s_v(m, c->ver ? c->ver : 1, &w), 0);
	v = relay_record(&env, c->u, buf, w.len);
	pump();
	return v;
}

static enum relay_verdict send_raw(struct client *c, const void *pt, size_t len)
{
	enum relay_verdict v = relay_record(&env, c->u, pt, len);

	pump();
	return v;
}

static void send_op(struct client *c, uint8_t op, const char *peer)
{
	static const uint8_t sig[64] = { 1 };
	static const uint8_t e2e[40] = { 2 };
	struct msg m = { .op = op, .sig = sig, .sig_len = sizeof(sig),
			 .e2e = e2e, .e2e_len = sizeof(e2e),
			 .reason = REFUSE_DECLINED, .ref = 7 };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_rec(c, &m);
}

static void assert_key_of(const struct msg *m, const struct client *c)
{
	size_t len;
	const uint8_t *spki = key_spki(c->key, &len);

	assert_int_equal(m->peer_key_len, len);
	assert_memory_equal(m->peer_key, spki, len);
}

/* a asks b, b accepts, a confirms. */
static void chat(struct client *a, struct client *b)
{
	struct msg m;

	send_op(a, OP_RTT, b->name);
	expect_op(b, OP_RTT, &m);
	assert_string_equal(m.peer, a->name);
	send_op(b, OP_ACCEPT, a->name);
	expect_op(a, OP_ACCEPT, &m);
	assert_string_equal(m.peer, b->name);
	assert_key_of(&m, b);
	send_op(a, OP_CONFIRM, b->name);
	expect_op(b, OP_CONFIRM, &m);
	assert_string_equal(m.peer, a->name);
	assert_key_of(&m, a);
	expect_nothing(a);
	expect_nothing(b);
}

/* The test's database directory and what SQLite put in it. */
static void rm_dir(const char *dir)
{
	static const char *const files[] = { STORE_FILE, STORE_FILE "-wal",
					     STORE_FILE "-shm",
					     STORE_FILE "-journal" };
	char path[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int setup(void **state)
{
	char why[512];

	(void)state;
	snprintf(stdir, sizeof(stdir), "/tmp/secmsg-relay-XXXXXX");
	assert_non_null(mkdtemp(stdir));
	if (store_open(stdir, &sops, NULL, &st, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	store_fails = store_hold = false;
	memset(&limits, 0, sizeof(limits));
	limits.request_timeout_ms = 60000;
	limits.max_chats = 3;
	limits.max_pending = 2;
	limits.messages_per_second = 50;
	limits.rate_burst = 100;
	limits.logins_per_minute = 0;
	limits.queue_max_messages = 1000;
	limits.queue_max_bytes = 1 << 20;
	limits.store_max_bytes = 1 << 20;
	return 0;
}

static struct users *users;
static const char *const enrolled[] = { "alice", "bob", "carol", "dave" };

/* The users directory of gate_on(), its files removed (each path). */
static void users_dir(char *out, size_t len, const char *name)
{
	if (name)
		snprintf(out, len, "%s/users/%s.pem", stdir, name);
	else
		snprintf(out, len, "%s/users", stdir);
}

/* Kept requests on (doc/first-contact.md): request_retention set and
 * the users table given; alice, bob, carol and dave enrolled (erin not). */
static void gate_on(void)
{
	char path[128];

	users_dir(path, sizeof(path), NULL);
	assert_int_equal(mkdir(path, 0700), 0);
	for (size_t i = 0; i < 4; i++) {
		char src[64], pem[4096];
		FILE *in, *out;
		size_t n;

		snprintf(src, sizeof(src), "%s.pub", enrolled[i]);
		in = fopen(tu_pki_path(src), "rb");
		assert_non_null(in);
		n = fread(pem, 1, sizeof(pem), in);
		fclose(in);
		users_dir(path, sizeof(path), enrolled[i]);
		out = fopen(path, "wb");
		assert_non_null(out);
		assert_int_equal(fwrite(pem, 1, n, out), n);
		fclose(out);
	}
	users_dir(path, sizeof(path), NULL);
	assert_int_equal(users_load(path, &users), 0);
	env.users = users;
	limits.request_retention_s = 3600;
}

static void gate_off(void)
{
	char path[128];

	env.users = NULL;
	if (!users)
		return;
	users_unref(users);
	users = NULL;
	for (size_t i = 0; i < 4; i++) {
		users_dir(path, sizeof(path), enrolled[i]);
		unlink(path);
	}
	users_dir(path, sizeof(path), NULL);
	rmdir(path);
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NCLIENTS; i++) {
		if (clients[i].u)
			logout(&clients[i], END_LEFT);
		key_unref(clients[i].key);
	}
	memset(clients, 0, sizeof(clients));
	store_hold = store_fails = false;
	pump();
	nqueue = 0;
	registry_free();
	store_close(st);
	convs_reset();
	queue_reset();
	gate_off();
	rm_dir(stdir);
	return 0;
}

/* ---- the tests ---- */

static void test_chat_and_message(void **state)
{
	struct client *a = login("alice"), *b = login("bob");
	static const uint8_t e2e[] = "ciphertext";
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = sizeof(e2e) };
	uint64_t in, out;

	(void)state;
	chat(a, b);
	snprintf(m.peer, sizeof(m.peer), "bob");
	send_rec(a, &m);
	expect_op(b, OP_MESSAGE, &m);
	assert_string_equal(m.peer, "alice");
	assert_memory_equal(m.e2e, e2e, sizeof(e2e));
	relay_user_counts(a->u, &in, &out);
	assert_int_equal(in, 1);
	relay_user_counts(b->u, &in, &out);
	assert_int_equal(out, 1);
	expect_nothing(a);
}

/* SECURITY.md §9 gap 8: MESSAGE while a request is open or accepted,
 * ACCEPT from the requester, CONFIRM from the target, and the records
 * that need no chat at all: ERROR 2 each, and the peer gets nothing. */
static void test_consent(void **state)
{
	struct client *a = login("alice"), *b = login("bob");
	struct msg m;

	(void)state;
	send_op(a, OP_MESSAGE, "bob");		/* no chat */
	expect_error(a, ERR_NO_CHAT);
	send_op(a, OP_ACCEPT, "bob");		/* no request */
	expect_error(a, ERR_NO_CHAT);
	send_op(a, OP_CONFIRM, "bob");
	expect_error(a, ERR_NO_CHAT);
	send_op(a, OP_REFUSE, "bob");
	expect_error(a, ERR_NO_CHAT);
	send_op(a, OP_END, "bob");
	expect_error(a, ERR_NO_CHAT);
	send_op(a, OP_RTT, "bob");
	expect_op(b, OP_RTT, &m);
	/* The request is open. */
	send_op(a, OP_MESSAGE, "bob");
	expect_error(a, ERR_NO_CHAT);
	send_op(b, OP_MESSAGE, "alice");
	expect_error(b, ERR_NO_CHAT);
	send_op(a, OP_ACCEPT, "bob");		/* the requester accepting */
	expect_error(a, ERR_NO_CHAT);
	send_op(b, OP_CONFIRM, "alice");	/* the target confirming */
	expect_error(b, ERR_NO_CHAT);
	send_op(a, OP_CONFIRM, "bob");		/* confirm before ACCEPT */
	expect_error(a, ERR_NO_CHAT);
	send_op(b, OP_ACCEPT, "alice");
	expect_op(a, OP_ACCEPT, &m);
	/* Accepted, not confirmed. */
	send_op(a, OP_MESSAGE, "bob");
	expect_error(a, ERR_NO_CHAT);
	send_op(b, OP_MESSAGE, "alice");
	expect_error(b, ERR_NO_CHAT);
	send_op(b, OP_ACCEPT, "alice");		/* accepting twice */
	expect_error(b, ERR_NO_CHAT);
	send_op(b, OP_CONFIRM, "alice");
	expect_error(b, ERR_NO_CHAT);
	send_op(a, OP_CONFIRM, "bob");
	expect_op(b, OP_CONFIRM, &m);
	send_op(a, OP_CONFIRM, "bob");		/* confirming twice */
	expect_error(a, ERR_NO_CHAT);
	/* Established; then ended: MESSAGE is refused again. */
	send_op(b, OP_END, "alice");
	expect_end(a, "bob", END_LEFT);
	send_op(a, OP_MESSAGE, "bob");
	expect_error(a, ERR_NO_CHAT);
	expect_nothing(a);
	expect_nothing(b);
}

/* The target's relay checks its own view again (rule 4): an ACCEPT from
 * a requester whose request the target never had does not reach it. */
static void test_consent_at_the_target(void **state)
{
	struct client *a = login("alice"), *b = login("bob");
	struct event e = { .type = EVT_MESSAGE, .to = b->h, .from = a->h };
	static const uint8_t rec[] = { OP_MESSAGE };

	(void)state;
	snprintf(e.from_name, sizeof(e.from_name), "alice");
	fake_emit(NULL, &e, rec, sizeof(rec));
	e.type = EVT_CONFIRM;
	fake_emit(NULL, &e, rec, sizeof(rec));
	e.type = EVT_ACCEPT;
	fake_emit(NULL, &e, rec, sizeof(rec));
	pump();
	expect_nothing(b);
	/* An event from an older connection of a peer is ignored (rule 3). */
	chat(a, b);
	e.type = EVT_MESSAGE;
	e.from.gen = 999;
	fake_emit(NULL, &e, rec, sizeof(rec));
	pump();
	expect_nothing(b);
}

static void test_refuse_reasons(void **state)
{
	struct client *a = login("alice"), *b = login("bob");
	struct msg m;

	(void)state;
	send_op(a, OP_RTT, "alice");
	expect_refuse(a, "alice", REFUSE_SELF);
	send_op(a, OP_RTT, "carol");
	expect_refuse(a, "carol", REFUSE_OFFLINE);
	send_op(a, OP_RTT, "bob");
	expect_op(b, OP_RTT, &m);
	send_op(a, OP_RTT, "bob");
	expect_refuse(a, "bob", REFUSE_EXISTS);
	send_op(b, OP_RTT, "alice");		/* bob asks back */
	expect_refuse(b, "alice", REFUSE_EXISTS);
	send_op(b, OP_REFUSE, "alice");
	expect_refuse(a, "bob", REFUSE_DECLINED);
	/* The target left between the lookup and the event: offline. */
	send_op(a, OP_RTT, "bob");
	expect_op(b, OP_RTT, &m);
	send_op(a, OP_END, "bob");
	expect_end(b, "alice", END_WITHDRAWN);
	relay_logout(&env, b->u, END_LEFT);
	send_op(a, OP_RTT, "bob");
	expect_refuse(a, "bob", REFUSE_OFFLINE);
	expect_nothing(a);
}

/* max_chats 3 and max_pending 2, both ways: the target's limits first
 * (REFUSE 3), then the requester's own (ERROR 3). */
static void test_limits(void **state)
{
	struct client *a = login("alice"), *b = login("bob"),
		      *c = login("carol"), *d = login("dave"),
		      *e = login("erin");
	struct msg m;

	(void)state;
	send_op(b, OP_RTT, "alice");
	expect_op(a, OP_RTT, &m);
	send_op(c, OP_RTT, "alice");
	expect_op(a, OP_RTT, &m);
	send_op(d, OP_RTT, "alice");		/* alice has 2 incoming */
	expect_refuse(d, "alice", REFUSE_BUSY);
	expect_nothing(a);
	send_op(a, OP_RTT, "dave");
	expect_op(d, OP_RTT, &m);
	send_op(a, OP_RTT, "erin");
	expect_op(e, OP_RTT, &m);
	send_op(a, OP_RTT, "erin");
	expect_refuse(a, "erin", REFUSE_EXISTS);
	send_op(d, OP_REFUSE, "alice");
	expect_refuse(a, "dave", REFUSE_DECLINED);
	send_op(e, OP_REFUSE, "alice");
	expect_refuse(a, "erin", REFUSE_DECLINED);
	send_op(a, OP_REFUSE, "bob");
	expect_refuse(b, "alice", REFUSE_DECLINED);
	send_op(a, OP_REFUSE, "carol");
	expect_refuse(c, "alice", REFUSE_DECLINED);
	/* Three chats: a fourth request is refused at either end. */
	chat(a, b);
	chat(a, c);
	chat(d, a);
	send_op(e, OP_RTT, "alice");
	expect_refuse(e, "alice", REFUSE_BUSY);
	send_op(a, OP_RTT, "erin");		/* alice at her own limit */
	expect_error(a, ERR_LIMIT);
	expect_nothing(e);
	/* Both at their limit: the target's comes first, REFUSE 3. */
	send_op(b, OP_END, "alice");
	expect_end(a, "bob", END_LEFT);
	chat(b, c);
	chat(b, d);
	chat(b, e);
	send_op(e, OP_END, "bob");
	expect_end(b, "erin", END_LEFT);
	chat(e, a);				/* alice at 3 again */
	chat(b, e);				/* bob at 3 too */
	send_op(b, OP_RTT, "alice");
	expect_refuse(b, "alice", REFUSE_BUSY);
}

/* 50 records a second, 100 deep: every record but QUIT costs a token
 * (PING, PONG, malformed and unknown ones too); ERROR 3 for each refused
 * one; QUIT is honoured with an empty bucket; the bucket refills. */
static void test_rate_limit(void **state)
{
	struct client *a = login("alice");
	static const uint8_t ping[9] = { OP_PING };
	static const uint8_t bad[] = { OP_RTT, 0xff };
	static const uint8_t unknown[] = { 200 };
	static const uint8_t pong[9] = { OP_PONG };
	struct msg m;

	(void)state;
	for (int i = 0; i < 97; i++)
		send_raw(a, ping, sizeof(ping));
	send_raw(a, bad, sizeof(bad));
	send_raw(a, unknown, sizeof(unknown));
	send_raw(a, pong, sizeof(pong));
	for (int i = 0; i < 97; i++)
		expect_op(a, OP_PONG, &m);
	expect_error(a, ERR_MALFORMED);
	expect_error(a, ERR_UNKNOWN_OP);
	expect_nothing(a);			/* a PONG needs no answer */
	send_raw(a, ping, sizeof(ping));
	expect_error(a, ERR_LIMIT);
	send_raw(a, bad, sizeof(bad));
	expect_error(a, ERR_LIMIT);
	send_raw(a, pong, sizeof(pong));
	expect_error(a, ERR_LIMIT);
	send_op(a, OP_LIST, "");
	expect_error(a, ERR_LIMIT);
	assert_int_equal(send_raw(a, (const uint8_t[]){ OP_QUIT }, 1), RELAY_QUIT);
	env.now_ms += 20;			/* one token */
	send_raw(a, ping, sizeof(ping));
	expect_op(a, OP_PONG, &m);
	send_raw(a, ping, sizeof(ping));
	expect_error(a, ERR_LIMIT);
	env.now_ms += 10000;			/* full again, not more */
	for (int i = 0; i < 100; i++)
		send_raw(a, ping, sizeof(ping));
	send_raw(a, ping, sizeof(ping));
	for (int i = 0; i < 100; i++)
		expect_op(a, OP_PONG, &m);
	expect_error(a, ERR_LIMIT);
}

/* request_timeout: the requester gets REFUSE 6, the target END 4; an
 * established chat does not expire. */
static void test_request_expiry(void **state)
{
	struct client *a = login("alice"), *b = login("bob"),
		      *c = login("carol");
	struct msg m;

	(void)state;
	chat(a, c);
	send_op(a, OP_RTT, "bob");
	expect_op(b, OP_RTT, &m);
	env.now_ms += limits.request_timeout_ms - 1;
	relay_tick(&env, a->u);
	pump();
	expect_nothing(a);
	env.now_ms += 1;
	relay_tick(&env, a->u);
	pump();
	expect_refuse(a, "bob", REFUSE_EXPIRED);
	expect_end(b, "alice", END_WITHDRAWN);
	send_op(b, OP_ACCEPT, "alice");
	expect_error(b, ERR_NO_CHAT);
	/* An accepted request expires too. */
	send_op(a, OP_RTT, "bob");
	expect_op(b, OP_RTT, &m);
	send_op(b, OP_ACCEPT, "alice");
	expect_op(a, OP_ACCEPT, &m);
	env.now_ms += limits.request_timeout_ms;
	relay_tick(&env, a->u);
	pump();
	expect_refuse(a, "bob", REFUSE_EXPIRED);
	expect_end(b, "alice", END_WITHDRAWN);
	relay_tick(&env, c->u);
	pump();
	expect_nothing(a);
	expect_nothing(c);
}

/* A logout tells each peer what its state calls for: END 2 for a chat,
 * END 2 for a request either way; they can ask each other again. */
static void test_logout(void **state)
{
	struct client *a = login("alice"), *b = login("bob"),
		      *c = login("carol"), *d = login("dave");
	struct msg m;

	(void)state;
	chat(a, b);
	send_op(a, OP_RTT, "carol");
	expect_op(c, OP_RTT, &m);
	send_op(d, OP_RTT, "alice");
	expect_op(a, OP_RTT, &m);
	logout(a, END_DISCONNECTED);
	expect_end(b, "alice", END_DISCONNECTED);
	expect_end(c, "alice", END_DISCONNECTED);
	expect_end(d, "alice", END_DISCONNECTED);
	send_op(b, OP_MESSAGE, "alice");
	expect_error(b, ERR_NO_CHAT);
	a = login("alice");
	chat(b, a);
}

/* A login elsewhere: the old session gets EVT_TAKEOVER; a third login
 * while the first still closes: the first gets EVT_ABORT. */
/* Whether the queue holds an event of type for h. */
static bool queued(uint16_t type, struct handle h)
{
	for (size_t i = 0; i < nqueue; i++)
		if (queue[i].e.type == type && handle_eq(queue[i].e.to, h))
			return true;
	return false;
}

static void test_takeover(void **state)
{
	struct client *c = client_named("alice");
	struct relay_user *u[3];
	struct handle h[3];

	(void)state;
	assert_int_equal(key_load_public(tu_pki_path("alice.pub"), &c->key), 0);
	for (int i = 0; i < 3; i++) {
		h[i] = (struct handle){ .slot = 300 + i, .gen = 300 + i };
		nqueue = 0;
		assert_int_equal(relay_login(&env, "alice", c->key, h[i], c,
					     &u[i]), 0);
		assert_true(handle_eq(registry_lookup("alice"), h[i]));
	}
	/* The third login: the second session is taken over, the first
	 * (still closing) aborted. */
	assert_true(queued(EVT_TAKEOVER, h[1]));
	assert_true(queued(EVT_ABORT, h[0]));
	for (int i = 0; i < 3; i++) {
		relay_logout(&env, u[i], END_DISCONNECTED);
		relay_user_free(u[i]);
	}
	nqueue = 0;
	c->tail = c->head = 0;
	assert_int_equal(registry_count(), 0);
}

static void test_login_rate(void **state)
{
	struct client *c = client_named("bob");
	struct relay_user *u[3];

	(void)state;
	limits.logins_per_minute = 2;
	assert_int_equal(key_load_public(tu_pki_path("bob.pub"), &c->key), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(relay_login(&env, "bob", c->key,
					     (struct handle){ .slot = 100 + i, .gen = 100 + i },
					     c, &u[i]), 0);
	assert_int_equal(relay_login(&env, "bob", c->key,
				     (struct handle){ .slot = 200, .gen = 200 }, c, &u[2]),
			 -EAGAIN);
	assert_null(u[2]);
	/* The refused login registered nothing. */
	assert_true(handle_eq(registry_lookup("bob"),
			      ((struct handle){ .slot = 101, .gen = 101 })));
	for (int i = 0; i < 2; i++) {
		relay_logout(&env, u[i], END_LEFT);
		relay_user_free(u[i]);
	}
	nqueue = 0;
	c->tail = c->head = 0;
	limits.logins_per_minute = 0;
}

/* LIST: everyone online but oneself, sorted; sent at login too. */
static void test_list(void **state)
{
	struct client *c = login("carol"), *a, *b;
	char name[NAME_MAX_LEN + 1];
	size_t off = 0;
	struct msg m;

	(void)state;
	a = login("alice");
	b = login("bob");
	send_op(c, OP_LIST, "");
	expect_op(c, OP_LIST, &m);
	assert_int_equal(m.last, 1);
	assert_int_equal(m.count, 2);
	assert_int_equal(msg_list_next(&m, &off, name), 1);
	assert_string_equal(name, "alice");
	assert_int_equal(msg_list_next(&m, &off, name), 1);
	assert_string_equal(name, "bob");
	assert_int_equal(msg_list_next(&m, &off, name), 0);
	(void)a;
	(void)b;
}

/* What the control plane sees: each chat reported once, by the
 * requester's side; both sides list their established peers. */
static void collect(void *arg, const struct relay_chat_info *ci)
{
	int *n = arg;

	(*n)++;
	assert_true(ci->requester);
}

static void test_admin_view(void **state)
{
	struct client *a = login("alice"), *b = login("bob");
	int na = 0, nb = 0;

	(void)state;
	chat(a, b);
	relay_user_each_chat(a->u, true, collect, &na);
	relay_user_each_chat(b->u, true, collect, &nb);
	assert_int_equal(na, 1);
	assert_int_equal(nb, 0);
	assert_string_equal(relay_user_name(b->u), "bob");
}

/* ---- version 2: conversations ---- */

/* The daemon restarted: the view is what the database holds. */
static void reopen(void)
{
	char why[512];

	pump();
	store_close(st);
	convs_reset();
	if (store_open(stdir, &sops, NULL, &st, why, sizeof(why)) < 0)
		fail_msg("%s", why);
}

static void expect_presence(struct client *c, const char *peer, bool online)
{
	struct msg m;

	expect_op(c, OP_PRESENCE, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.online, online);
}

/* ERROR code naming the refused record (version 2). */
static void expect_error_about(struct client *c, uint16_t code, uint8_t op,
			       uint32_t ref, const char *peer)
{
	struct msg m;

	expect_op(c, OP_ERROR, &m);
	assert_int_equal(m.code, code);
	assert_int_equal(m.err_op, op);
	assert_int_equal(m.ref, ref);
	assert_string_equal(m.peer, peer);
}

static void send_message(struct client *c, const char *peer, uint32_t ref)
{
	static const uint8_t e2e[] = "sealed";
	struct msg m = { .op = OP_MESSAGE, .ref = ref, .e2e = e2e,
			 .e2e_len = sizeof(e2e) };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_rec(c, &m);
}

static void expect_stored(struct client *c, const char *peer, uint32_t ref)
{
	struct msg m;

	expect_op(c, OP_STORED, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.ref, ref);
}

/* QUEUED(peer, seq) carrying send_message's e2e. */
static void expect_queued(struct client *c, const char *peer, uint64_t seq)
{
	struct msg m;

	expect_op(c, OP_QUEUED, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.seq, seq);
	assert_true(m.at > 1600000000);
	assert_int_equal(m.e2e_len, sizeof("sealed"));
	assert_memory_equal(m.e2e, "sealed", m.e2e_len);
}

static void send_ack(struct client *c, uint64_t seq)
{
	struct msg m = { .op = OP_ACK, .seq = seq };

	send_rec(c, &m);
}

static size_t queued_for(const char *name)
{
	size_t n, bytes;

	queue_count(name, &n, &bytes);
	return n;
}

static void send_end(struct client *c, const char *peer, const char *e2e)
{
	struct msg m = { .op = OP_END, .e2e = (const uint8_t *)e2e,
			 .e2e_len = strlen(e2e) };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_rec(c, &m);
}

/* a asks b, b accepts; the ACCEPT a got is in m. */
static void accepted(struct client *a, struct client *b, struct msg *m)
{
	send_op(a, OP_RTT, b->name);
	expect_op(b, OP_RTT, m);
	send_op(b, OP_ACCEPT, a->name);
	expect_op(a, OP_ACCEPT, m);
}

/* a asks b, b accepts, a confirms: each sees flags (persistent or not). */
static void chat_flags(struct client *a, struct client *b, uint8_t flags)
{
	struct msg m;

	accepted(a, b, &m);
	if (a->ver >= 2)
		assert_int_equal(m.flags, flags);
	send_op(a, OP_CONFIRM, b->name);
	expect_op(b, OP_CONFIRM, &m);
	assert_string_equal(m.peer, a->name);
	assert_key_of(&m, a);
	if (b->ver >= 2)
		assert_int_equal(m.flags, flags);
	expect_nothing(a);
	expect_nothing(b);
}

/* The persistent flag exactly when both sessions are of version 2, and
 * only then is there a conversation. */
static void test_v2_persistent_flag(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct client *c = login("carol"), *d = login2("dave");

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	assert_true(convs_exists("alice", "bob"));
	chat_flags(d, c, 0);	/* v2 asks v1 */
	chat_flags(c, a, 0);	/* v1 asks v2 */
	assert_false(convs_exists("carol", "dave"));
	assert_false(convs_exists("alice", "carol"));
	assert_int_equal(convs_total(), 1);
}

/* The conversation is on disk before its CONFIRM is relayed; what the
 * requester sends meanwhile waits and follows in order. */
static void test_v2_confirm_after_store(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct msg m;

	(void)state;
	accepted(a, b, &m);
	store_hold = true;
	send_op(a, OP_CONFIRM, "bob");
	send_message(a, "bob", 1);	/* HELLO right after CONFIRM */
	expect_nothing(b);
	expect_nothing(a);
	assert_false(convs_exists("alice", "bob"));
	store_hold = false;
	pump();
	assert_true(convs_exists("alice", "bob"));
	expect_op(b, OP_CONFIRM, &m);
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	expect_op(b, OP_MESSAGE, &m);
	assert_string_equal(m.peer, "alice");
	expect_nothing(a);
}

/* A commit that fails: ERROR 3 naming the CONFIRM, nothing relayed,
 * nothing stored, the request still accepted (CONFIRM may come again). */
static void test_v2_store_failure(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct msg m;

	(void)state;
	accepted(a, b, &m);
	store_fails = true;
	send_op(a, OP_CONFIRM, "bob");
	expect_error_about(a, ERR_LIMIT, OP_CONFIRM, 0, "bob");
	expect_nothing(b);
	assert_false(convs_exists("alice", "bob"));
	store_fails = false;
	send_op(a, OP_CONFIRM, "bob");
	expect_op(b, OP_CONFIRM, &m);
	assert_true(convs_exists("alice", "bob"));
}

/* Disconnect and reconnect: PRESENCE 0, the MESSAGE stored (STORED),
 * then at the next login CONVERSATIONS lists it, the stored MESSAGE
 * comes (QUEUED) and PRESENCE 1. */
static void test_v2_presence_and_offline(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct msg m;
	struct msg_conv e;
	size_t off = 0;
	uint64_t relayed;

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	expect_nothing(a);	/* no END 2: the conversation stays */
	relayed = atomic_load(&stats.messages_relayed);
	send_message(a, "bob", 42);
	expect_stored(a, "bob", 42);
	assert_int_equal(atomic_load(&stats.messages_relayed), relayed);
	reopen();	/* the conversation is on disk, and the message */
	assert_true(convs_exists("alice", "bob"));
	b = login_keep("bob", 2);
	expect_op(b, OP_LIST, &m);
	expect_op(b, OP_CONVERSATIONS, &m);
	assert_int_equal(m.count, 1);
	assert_int_equal(m.last, 1);
	assert_int_equal(msg_conv_next(&m, &off, &e), 1);
	assert_string_equal(e.peer, "alice");
	assert_int_equal(e.flags, CONV_FLAG_ONLINE);
	expect_queued(b, "alice", 1);
	expect_presence(a, "bob", true);
	send_message(a, "bob", 43);
	expect_op(b, OP_MESSAGE, &m);
	send_message(b, "alice", 1);
	expect_op(a, OP_MESSAGE, &m);
	/* QUIT and a kick do not end it either. */
	logout(b, END_LEFT);
	expect_presence(a, "bob", false);
	expect_nothing(a);
	assert_true(convs_exists("alice", "bob"));
}

/* ---- stored messages (issue 17) ---- */

/* alice and bob have a conversation; bob is offline. */
static struct client *bob_offline(struct client **b)
{
	struct client *a = login2("alice");

	*b = login2("bob");
	chat_flags(a, *b, MSG_FLAG_PERSISTENT);
	logout(*b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	return a;
}

/* bob logs in at version 2: LIST, CONVERSATIONS, then what is stored. */
static struct client *bob_back(void)
{
	struct client *b = login_keep("bob", 2);
	struct msg m;

	expect_op(b, OP_LIST, &m);
	expect_op(b, OP_CONVERSATIONS, &m);
	return b;
}

/* Stored in order, answered STORED each; a ref sent again is not stored
 * twice; the backlog comes at the login, in seq order, before live
 * records; ACK deletes up to its seq, and what was not acknowledged
 * comes again at the next login; seq never goes back, across a restart. */
static void test_v2_stored_in_order(void **state)
{
	struct client *b, *a = bob_offline(&b);
	struct msg m;

	(void)state;
	for (uint32_t ref = 1; ref <= 5; ref++) {
		send_message(a, "bob", ref);
		expect_stored(a, "bob", ref);
	}
	send_message(a, "bob", 3);	/* STORED was lost, say */
	expect_stored(a, "bob", 3);
	assert_int_equal(queued_for("bob"), 5);
	b = bob_back();
	for (uint64_t seq = 1; seq <= 5; seq++)
		expect_queued(b, "alice", seq);
	expect_nothing(b);
	expect_presence(a, "bob", true);
	send_message(a, "bob", 6);	/* live, after the backlog */
	expect_op(b, OP_MESSAGE, &m);
	send_ack(b, 6);			/* never sent: malformed */
	expect_error_about(b, ERR_MALFORMED, OP_ACK, 0, "");
	send_ack(b, 3);
	expect_nothing(b);
	assert_int_equal(queued_for("bob"), 2);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	reopen();
	assert_int_equal(queued_for("bob"), 2);
	b = bob_back();
	expect_queued(b, "alice", 4);
	expect_queued(b, "alice", 5);
	expect_presence(a, "bob", true);
	send_ack(b, 5);
	assert_int_equal(queued_for("bob"), 0);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	send_message(a, "bob", 7);
	expect_stored(a, "bob", 7);
	b = bob_back();
	expect_queued(b, "alice", 6);	/* 6: seq is never used twice */
	expect_nothing(b);
}

/* Everything stored so far is past retention: the store deletes it. */
static void expire_all(void)
{
	struct store_req *r = store_req_new(STORE_QUEUE_EXPIRE, NULL, NULL,
					    NULL, 0);

	r->since = (int64_t)time(NULL) + 1;
	store_run(st, r);
}

static void expect_expired(struct client *c, const char *peer, uint32_t ref)
{
	struct msg m;

	expect_op(c, OP_EXPIRED, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.ref, ref);
	assert_true(m.at > 0 && m.at <= (uint64_t)time(NULL));
}

/* A stored message that expires is reported to its sender (issue 17): at
 * once when online at version 2; held, on disk, when offline or when its
 * session went before the report reached it; at the next login of
 * version 2, before CONVERSATIONS, once. */
static void test_v2_expired_reported(void **state)
{
	struct client *b, *a = bob_offline(&b);
	struct msg m;

	(void)state;
	send_message(a, "bob", 1);
	expect_stored(a, "bob", 1);
	expire_all();
	pump();
	expect_expired(a, "bob", 1);
	expect_nothing(a);
	send_message(a, "bob", 2);
	expect_stored(a, "bob", 2);
	logout(a, END_DISCONNECTED);
	send_message(a = login2("carol"), "bob", 3);	/* no conversation */
	expect_error_about(a, ERR_NO_CHAT, OP_MESSAGE, 3, "bob");
	expire_all();
	pump();
	assert_int_equal(queued_for("bob"), 0);
	reopen();
	assert_int_equal(convs_held_total(), 1);
	a = login("alice");		/* version 1 does not see it */
	logout(a, END_DISCONNECTED);
	a = login_keep("alice", 2);
	expect_op(a, OP_LIST, &m);
	expect_expired(a, "bob", 2);
	expect_op(a, OP_CONVERSATIONS, &m);
	expect_nothing(a);
	logout(a, END_DISCONNECTED);
	reopen();
	assert_int_equal(convs_held_total(), 0);	/* delivered: deleted */
	/* The report finds alice's session gone: held for the next one. */
	a = login2("alice");
	send_message(a, "bob", 4);
	expect_stored(a, "bob", 4);
	expire_all();			/* its event waits in the queue */
	logout(a, END_DISCONNECTED);
	pump();
	a = login_keep("alice", 2);
	expect_op(a, OP_LIST, &m);
	expect_expired(a, "bob", 4);
	expect_op(a, OP_CONVERSATIONS, &m);
	expect_nothing(a);
}

/* A kept request a -> b in the store (the relay does not make them
 * yet: request_retention is the gate, doc/first-contact.md). */
static void kept_req(const char *a, const char *b)
{
	uint8_t rtt[CONVS_RTT_LEN] = { 0 };
	struct store_req *r = store_req_new(STORE_REQ_ADD, a, b, rtt,
					    sizeof(rtt));

	r->since = 1700000000;
	r->max_msgs = 16;
	store_run(st, r);
}

/* b declines a's kept request: REFUSE 1 to a, END 4 to b (rule 5's
 * records), run by the store at once; its events wait for pump(). */
static void kept_ended(const char *a, const char *b)
{
	struct store_req *r = store_req_new(STORE_REQ_DELETE, a, b, NULL, 0);

	r->tell = STORE_TELL_A | STORE_TELL_B;
	r->tell_op[0] = OP_REFUSE;
	r->tell_reason[0] = REFUSE_DECLINED;
	r->tell_op[1] = OP_END;
	r->tell_reason[1] = END_WITHDRAWN;
	store_run(st, r);
}

/* c logs in at version 2: LIST, then KEPT(at, op(peer, reason)), then
 * CONVERSATIONS and nothing else. */
static struct client *login_kept(const char *name, uint8_t op,
				 const char *peer, uint8_t reason)
{
	struct client *c = login_keep(name, 2);
	struct msg m;

	expect_op(c, OP_LIST, &m);
	expect_op(c, OP_KEPT, &m);
	assert_int_equal(m.rec_op, op);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.reason, reason);
	assert_true(m.at >= 1700000000);
	expect_op(c, OP_CONVERSATIONS, &m);
	expect_nothing(c);
	return c;
}

/* The end of a kept request, told by the store (doc/first-contact.md,
 * rules 5-7): a side online at version 2 gets the REFUSE or END at once;
 * one offline, or whose session ended before the event reached it, gets
 * KEPT(at, that record) at its next version 2 login, after the held
 * ENDs and before CONVERSATIONS, once; a version 1 login does not see
 * it. */
static void test_v2_kept_end_told(void **state)
{
	struct client *b = login2("bob"), *a;
	struct msg m;

	(void)state;
	kept_req("alice", "bob");
	kept_req("carol", "bob");
	kept_ended("alice", "bob");
	pump();
	expect_end(b, "alice", END_WITHDRAWN);
	expect_nothing(b);
	a = login("alice");		/* version 1 does not see it */
	expect_nothing(a);
	logout(a, END_DISCONNECTED);
	a = login_kept("alice", OP_REFUSE, "bob", REFUSE_DECLINED);
	logout(a, END_DISCONNECTED);
	a = login_keep("alice", 2);			/* once */
	expect_op(a, OP_LIST, &m);
	expect_op(a, OP_CONVERSATIONS, &m);
	expect_nothing(a);
	kept_ended("carol", "bob");	/* bob online at the lookup */
	logout(b, END_DISCONNECTED);	/* gone before the event */
	reopen();
	login_kept("bob", OP_END, "carol", END_WITHDRAWN);
	assert_int_equal(convs_req_total(), 0);
}

/* ---- kept requests, the gate on (doc/first-contact.md) ---- */

static void expect_waiting(struct client *c, const char *peer, uint8_t op)
{
	struct msg m;

	expect_op(c, OP_WAITING, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.rec_op, op);
}

/* c logs in at version 2: LIST, then KEPT(at, op) from peer, then
 * CONVERSATIONS; the KEPT record in m. */
static struct client *login_with_kept(const char *name, uint8_t op,
				      const char *peer, struct msg *m)
{
	struct client *c = login_keep(name, 2);
	struct msg l;

	expect_op(c, OP_LIST, &l);
	expect_op(c, OP_KEPT, m);
	assert_int_equal(m->rec_op, op);
	assert_string_equal(m->peer, peer);
	assert_true(m->at >= 1700000000);
	expect_op(c, OP_CONVERSATIONS, &l);
	expect_nothing(c);
	return c;
}

/* The gate on, alice (version 2) asks bob, who is offline: kept. */
static struct client *alice_asks_bob_away(void)
{
	struct client *a;

	gate_on();
	a = login2("alice");
	send_op(a, OP_RTT, "bob");
	expect_waiting(a, "bob", OP_RTT);
	return a;
}

/* Rule 1: an RTT of version 2 to a user enrolled and offline is kept
 * (WAITING(target, 2), on disk, no END at a disconnect); to one online
 * at version 2 it is kept and relayed; to one online at version 1 it is
 * a live request; to one not enrolled REFUSE 2; the limits count kept
 * requests. A version 1 requester keeps the rules of today. */
static void test_kept_rtt(void **state)
{
	struct client *a, *c, *d = login("dave"), *e;
	struct msg m;

	(void)state;
	a = alice_asks_bob_away();
	expect_nothing(a);
	assert_int_equal(convs_req_total(), 1);
	send_op(a, OP_RTT, "erin");			/* not enrolled */
	expect_refuse(a, "erin", REFUSE_OFFLINE);
	send_op(a, OP_RTT, "dave");			/* version 1: live */
	expect_op(d, OP_RTT, &m);
	assert_int_equal(convs_req_total(), 1);
	c = login2("carol");
	send_op(a, OP_RTT, "carol");			/* over max_pending */
	expect_error_about(a, ERR_LIMIT, OP_RTT, 0, "carol");
	send_op(a, OP_END, "dave");
	expect_end(d, "alice", END_WITHDRAWN);
	send_op(a, OP_RTT, "carol");			/* online, version 2 */
	expect_op(c, OP_RTT, &m);
	assert_string_equal(m.peer, "alice");
	expect_nothing(a);
	assert_int_equal(convs_req_total(), 2);
	send_op(c, OP_RTT, "alice");			/* one either way */
	expect_refuse(c, "alice", REFUSE_EXISTS);
	logout(a, END_DISCONNECTED);
	expect_nothing(c);				/* kept: no END */
	assert_int_equal(convs_req_total(), 2);
	e = login("erin");				/* version 1 rules */
	send_op(d, OP_RTT, "bob");
	expect_refuse(d, "bob", REFUSE_OFFLINE);
	expect_nothing(e);
}

/* Rule 2: at each version 2 login until it is answered, the target gets
 * KEPT(asked, RTT) after the held ENDs and before CONVERSATIONS; a
 * version 1 login does not; the target cannot ask the requester back. */
static void test_kept_login(void **state)
{
	struct client *a, *b;
	struct msg m;

	(void)state;
	a = alice_asks_bob_away();
	b = login_with_kept("bob", OP_RTT, "alice", &m);
	logout(b, END_DISCONNECTED);
	b = login("bob");
	expect_nothing(b);
	logout(b, END_DISCONNECTED);
	b = login_with_kept("bob", OP_RTT, "alice", &m);
	send_op(b, OP_RTT, "alice");			/* it is there */
	expect_refuse(b, "alice", REFUSE_EXISTS);
	expect_nothing(a);
}

/* Rule 3 and 8: ACCEPT of a kept request is stored, then relayed to the
 * requester online at version 2 (with the target's key and flag 1), or
 * WAITING(requester, 3) to the target and KEPT(accepted, ACCEPT) with
 * the key the server has at the requester's next login, every login
 * until it CONFIRMs; REFUSE reaches the requester live or held. */
static void test_kept_accept(void **state)
{
	struct client *a, *b, *c;
	struct msg m;

	(void)state;
	a = alice_asks_bob_away();
	logout(a, END_DISCONNECTED);
	b = login_with_kept("bob", OP_RTT, "alice", &m);
	send_op(b, OP_ACCEPT, "alice");
	expect_waiting(b, "alice", OP_ACCEPT);
	expect_nothing(b);
	a = login_with_kept("alice", OP_ACCEPT, "bob", &m);
	assert_key_of(&m, b);
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	assert_int_equal(m.sig_len, 64);
	logout(a, END_DISCONNECTED);
	a = login_with_kept("alice", OP_ACCEPT, "bob", &m);	/* again */
	/* live: carol online asks bob, bob accepts */
	c = login2("carol");
	accepted(c, b, &m);
	assert_key_of(&m, b);
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	expect_nothing(b);
	send_op(c, OP_END, "bob");		/* max_pending is 2 */
	expect_end(b, "carol", END_LEFT);
	/* REFUSE: dave asks bob and leaves; bob declines */
	logout(a, END_DISCONNECTED);
	a = login2("dave");
	send_op(a, OP_RTT, "bob");
	expect_op(b, OP_RTT, &m);
	logout(a, END_DISCONNECTED);
	send_op(b, OP_REFUSE, "dave");
	expect_nothing(b);
	login_with_kept("dave", OP_REFUSE, "bob", &m);
	assert_int_equal(m.reason, REFUSE_DECLINED);
}

/* Rule 4: CONFIRM of a kept request creates the conversation and deletes
 * the request in one transaction; the target online at version 2 gets
 * CONFIRM, one offline KEPT(at, CONFIRM) (with the requester's key, flag
 * 1) before CONVERSATIONS, which lists the conversation. */
static void test_kept_confirm(void **state)
{
	struct client *a, *b, *c;
	struct msg m;

	(void)state;
	gate_on();
	b = login2("bob");
	a = login2("alice");
	accepted(a, b, &m);
	logout(b, END_DISCONNECTED);
	send_op(a, OP_CONFIRM, "bob");
	expect_nothing(a);
	assert_true(convs_exists("alice", "bob"));
	assert_int_equal(convs_req_total(), 0);
	reopen();
	b = login_keep("bob", 2);
	expect_op(b, OP_LIST, &m);
	expect_op(b, OP_KEPT, &m);
	assert_int_equal(m.rec_op, OP_CONFIRM);
	assert_string_equal(m.peer, "alice");
	assert_key_of(&m, a);
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	expect_op(b, OP_CONVERSATIONS, &m);
	assert_int_equal(m.count, 1);
	expect_presence(a, "bob", true);
	send_message(a, "bob", 1);			/* a conversation */
	expect_op(b, OP_MESSAGE, &m);
	/* live: carol and bob both online */
	c = login2("carol");
	accepted(c, b, &m);
	send_op(c, OP_CONFIRM, "bob");
	expect_op(b, OP_CONFIRM, &m);
	assert_key_of(&m, c);
	assert_true(convs_exists("carol", "bob"));
}

/* Rule 5: END from the requester withdraws (END 4 to the target, here
 * held: KEPT(END) instead of the KEPT RTT); from the target of an
 * accepted request END 1 to the requester, live. */
static void test_kept_end(void **state)
{
	struct client *a, *b;
	struct msg m;

	(void)state;
	a = alice_asks_bob_away();
	send_op(a, OP_END, "bob");
	expect_nothing(a);
	assert_int_equal(convs_req_total(), 0);
	b = login_with_kept("bob", OP_END, "alice", &m);
	assert_int_equal(m.reason, END_WITHDRAWN);
	accepted(a, b, &m);
	send_op(b, OP_END, "alice");
	expect_end(a, "bob", END_LEFT);
	send_op(a, OP_CONFIRM, "bob");
	expect_error_about(a, ERR_NO_CHAT, OP_CONFIRM, 0, "bob");
	assert_int_equal(convs_req_total(), 0);
}

/* Every kept request expires now (the store thread's check, by hand). */
static void expire_kept(void)
{
	struct store_req *r = store_req_new(STORE_REQ_EXPIRE, NULL, NULL,
					    NULL, 0);

	r->since = (int64_t)time(NULL) + 1;
	store_run(st, r);
}

/* Rules 6 and 7: a kept request past request_retention goes (the store
 * thread's check, here run by hand), REFUSE 6 to the requester online
 * (its entry gone: END is then ERROR 2) and END 4 to the target at its
 * next login; a user removed (STORE_REQ_DROP, as the key check does at
 * a reload) takes its requests along, the requester told REFUSE 2. */
static void test_kept_expiry_and_removal(void **state)
{
	struct client *a, *c;
	struct msg m;

	(void)state;
	a = alice_asks_bob_away();
	expire_kept();
	pump();
	expect_refuse(a, "bob", REFUSE_EXPIRED);
	send_op(a, OP_END, "bob");
	expect_error_about(a, ERR_NO_CHAT, OP_END, 0, "bob");
	login_with_kept("bob", OP_END, "alice", &m);
	assert_int_equal(m.reason, END_WITHDRAWN);
	c = login2("carol");
	send_op(c, OP_RTT, "dave");
	expect_waiting(c, "dave", OP_RTT);
	store_run(st, store_req_new(STORE_REQ_DROP, "dave", NULL, NULL, 0));
	pump();
	expect_refuse(c, "dave", REFUSE_OFFLINE);
	assert_int_equal(convs_req_total(), 0);
}

/* A CONFIRM the store takes after the request expired makes no
 * conversation: the requester has REFUSE 6, nothing else. */
static void test_kept_confirm_after_expiry(void **state)
{
	struct client *a, *b;
	struct msg m;

	(void)state;
	a = alice_asks_bob_away();
	b = login_with_kept("bob", OP_RTT, "alice", &m);
	send_op(b, OP_ACCEPT, "alice");
	expect_op(a, OP_ACCEPT, &m);
	store_hold = true;
	send_op(a, OP_CONFIRM, "bob");		/* waits in the store's queue */
	expire_kept();				/* runs before it */
	store_hold = false;
	pump();
	expect_refuse(a, "bob", REFUSE_EXPIRED);
	expect_nothing(a);
	expect_end(b, "alice", END_WITHDRAWN);
	assert_false(convs_exists("alice", "bob"));
	assert_int_equal(convs_held_total(), 0);
}

/* Crossed requests, both online at version 2: alice's RTT is kept first
 * and reaches bob while his own RTT to her is still in the store's queue.
 * Bob gets REFUSE 5 for his, then alice's RTT (before the fix it was
 * dropped: alice waited with neither WAITING nor an answer, bob never
 * saw her request); accepting it works. */
static void test_kept_crossed(void **state)
{
	struct client *a, *b;
	struct store_req *list;
	struct msg m;

	(void)state;
	gate_on();
	a = login2("alice");
	b = login2("bob");
	store_hold = true;
	send_op(a, OP_RTT, "bob");
	list = sq;			/* alice's is committed alone */
	sq = NULL;
	store_run(st, list);
	send_op(b, OP_RTT, "alice");	/* its RTT_KEPT event comes now */
	store_hold = false;
	pump();
	expect_refuse(b, "alice", REFUSE_EXISTS);
	expect_op(b, OP_RTT, &m);
	assert_string_equal(m.peer, "alice");
	expect_nothing(b);
	expect_nothing(a);
	assert_int_equal(convs_req_total(), 1);
	send_op(b, OP_ACCEPT, "alice");
	expect_op(a, OP_ACCEPT, &m);
	assert_string_equal(m.peer, "bob");
}

/* The gate off (request_retention 0, the default): a version 2 RTT to a
 * user offline is REFUSE 2 as today, nothing is kept. */
static void test_kept_gate_off(void **state)
{
	struct client *a = login2("alice");

	(void)state;
	gate_on();
	limits.request_retention_s = 0;
	send_op(a, OP_RTT, "bob");
	expect_refuse(a, "bob", REFUSE_OFFLINE);
	assert_int_equal(convs_req_total(), 0);
}

/* While earlier messages are being stored, the next ones go to the store
 * too, even with the peer back online: a live record never overtakes a
 * stored one. Records stored after the login come at once (QUEUED). */
static void test_v2_stored_never_overtaken(void **state)
{
	struct client *b, *a = bob_offline(&b);
	struct msg m;

	(void)state;
	store_hold = true;
	send_message(a, "bob", 1);	/* being stored */
	b = bob_back();			/* its login sees nothing yet */
	expect_nothing(b);
	expect_presence(a, "bob", true);
	send_message(a, "bob", 2);	/* after 1, so stored as well */
	expect_nothing(b);
	store_hold = false;
	pump();
	expect_queued(b, "alice", 1);
	expect_queued(b, "alice", 2);
	expect_stored(a, "bob", 1);
	expect_stored(a, "bob", 2);
	send_message(a, "bob", 3);	/* nothing in the store: live */
	expect_op(b, OP_MESSAGE, &m);
	expect_nothing(b);
}

/* The limits, each named to the sender with the refused ref; nothing is
 * stored; a failing database is ERROR 9. */
static void test_v2_stored_limits(void **state)
{
	struct client *b, *a = bob_offline(&b);

	(void)state;
	limits.queue_max_messages = 2;
	send_message(a, "bob", 1);
	expect_stored(a, "bob", 1);
	send_message(a, "bob", 2);
	expect_stored(a, "bob", 2);
	send_message(a, "bob", 3);
	expect_error_about(a, ERR_QUOTA, OP_MESSAGE, 3, "bob");
	limits.queue_max_messages = 1000;
	limits.queue_max_bytes = 3 * sizeof("sealed") - 1;
	send_message(a, "bob", 4);
	expect_error_about(a, ERR_QUOTA, OP_MESSAGE, 4, "bob");
	limits.queue_max_bytes = 1 << 20;
	limits.store_max_bytes = 2 * sizeof("sealed");
	send_message(a, "bob", 5);
	expect_error_about(a, ERR_STORE_FULL, OP_MESSAGE, 5, "bob");
	limits.store_max_bytes = 1 << 20;
	store_fails = true;
	send_message(a, "bob", 6);
	expect_error_about(a, ERR_STORE_FAILED, OP_MESSAGE, 6, "bob");
	store_fails = false;
	expect_nothing(a);
	assert_int_equal(queued_for("bob"), 2);
	reopen();
	assert_int_equal(queued_for("bob"), 2);
}

/* A MESSAGE relayed live to a session that ends before it takes it is
 * stored on its sender's behalf: STORED, then QUEUED at the next login. */
static void test_v2_missed_is_stored(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	static const uint8_t e2e[] = "sealed";
	struct msg m = { .op = OP_MESSAGE, .ref = 9, .e2e = e2e,
			 .e2e_len = sizeof(e2e) };
	uint8_t buf[REC_MAX];
	struct writer w;

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	snprintf(m.peer, sizeof(m.peer), "bob");
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), 0);
	relay_record(&env, a->u, buf, w.len);	/* the event is in flight */
	logout(b, END_DISCONNECTED);		/* pumps: bob is gone */
	expect_presence(a, "bob", false);
	expect_stored(a, "bob", 9);
	b = bob_back();
	expect_queued(b, "alice", 1);
}

/* Ending the conversation for good drops what is queued in it. */
static void test_v2_end_drops_stored(void **state)
{
	struct client *b, *a = bob_offline(&b);

	(void)state;
	send_message(a, "bob", 1);
	expect_stored(a, "bob", 1);
	send_end(a, "bob", "");
	assert_int_equal(queued_for("bob"), 0);
	reopen();
	assert_int_equal(queued_for("bob"), 0);
	assert_false(convs_exists("alice", "bob"));
}

/* A takeover by a session of version 2 says nothing; one of version 1
 * counts as offline, and cannot use the conversation (ERROR 2, RTT
 * REFUSE 5). */
static void test_v2_takeover_and_v1(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct relay_user *old_u;
	struct handle old_h;
	struct msg m;

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	old_u = b->u;
	old_h = b->h;
	b = login2("bob");		/* takes over */
	relay_logout(&env, old_u, END_DISCONNECTED);	/* BYE 2 */
	relay_user_free(old_u);
	pump();
	registry_closed("bob", old_h, env.now_ms);
	expect_nothing(a);
	send_message(a, "bob", 5);
	expect_op(b, OP_MESSAGE, &m);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	b = login("bob");	/* version 1 */
	expect_nothing(a);	/* no PRESENCE: v1 counts as offline */
	send_message(a, "bob", 6);
	expect_stored(a, "bob", 6);	/* for bob's next v2 login */
	expect_nothing(b);
	send_op(b, OP_MESSAGE, "alice");
	expect_error(b, ERR_NO_CHAT);
	send_op(b, OP_END, "alice");
	expect_error(b, ERR_NO_CHAT);
	send_op(b, OP_RTT, "alice");
	expect_refuse(b, "alice", REFUSE_EXISTS);
	expect_nothing(a);
	assert_true(convs_exists("alice", "bob"));
}

/* Version 2's RTT order: a conversation is reported before presence. */
static void test_v2_rtt_order(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct client *c = login2("carol");

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	send_op(a, OP_RTT, "bob");
	expect_refuse(a, "bob", REFUSE_EXISTS);
	send_op(c, OP_RTT, "dave");
	expect_refuse(c, "dave", REFUSE_OFFLINE);
}

/* Conversations count as established chats for max_chats (3). */
static void test_v2_limit(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob"),
		      *c = login2("carol"), *d = login2("dave"),
		      *e = login2("erin");

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	chat_flags(a, c, MSG_FLAG_PERSISTENT);
	chat_flags(a, d, MSG_FLAG_PERSISTENT);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	send_op(e, OP_RTT, "alice");
	expect_refuse(e, "alice", REFUSE_BUSY);
}

/* END for good to a peer online: deleted, then END(user, 1, e2e). */
static void test_v2_end_online(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct msg m;

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	send_message(a, "bob", 9);
	send_end(a, "bob", "sealed end");
	expect_op(b, OP_MESSAGE, &m);	/* in order: the message first */
	expect_end(b, "alice", END_LEFT);
	assert_false(convs_exists("alice", "bob"));
	send_message(b, "alice", 2);
	expect_error_about(b, ERR_NO_CHAT, OP_MESSAGE, 2, "alice");
	expect_nothing(a);
}

/* END for good to a peer offline: held on disk, sent after its next
 * login of version 2 (LIST, the ENDs, CONVERSATIONS), then deleted. */
static void test_v2_end_held(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct msg m;

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	send_end(a, "bob", "sealed end");
	reopen();	/* on disk */
	assert_false(convs_exists("alice", "bob"));
	assert_int_equal(convs_held_total(), 1);
	b = login("bob");	/* version 1 does not see it */
	logout(b, END_DISCONNECTED);
	assert_int_equal(convs_held_total(), 1);
	b = login_keep("bob", 2);
	expect_op(b, OP_LIST, &m);
	expect_op(b, OP_END, &m);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.reason, END_LEFT);
	assert_int_equal(m.e2e_len, strlen("sealed end"));
	assert_memory_equal(m.e2e, "sealed end", m.e2e_len);
	expect_op(b, OP_CONVERSATIONS, &m);
	assert_int_equal(m.count, 0);
	expect_nothing(b);
	reopen();	/* delivered, so deleted on disk too */
	assert_int_equal(convs_held_total(), 0);
	logout(b, END_DISCONNECTED);
	b = login_keep("bob", 2);	/* not twice */
	expect_op(b, OP_LIST, &m);
	expect_op(b, OP_CONVERSATIONS, &m);
}

/* c's client refuses peer's key (REFUSE 7, version 2). */
static void refuse_key(struct client *c, const char *peer)
{
	struct msg m = { .op = OP_REFUSE, .reason = REFUSE_KEY_UNKNOWN };
	uint8_t buf[64];
	struct writer w;

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	if (c->ver >= 2) {
		send_rec(c, &m);
		return;
	}
	wr_init(&w, buf, sizeof(buf));	/* version 1 cannot encode it */
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), 0);
	send_raw(c, buf, w.len);
}

/* REFUSE 7: the client that does not know its peer's key stops, and the
 * peer is told why (END 6) when its session is of version 2, in each
 * place the stop happens: after ACCEPT (requester), after CONFIRM
 * (target, a conversation ended for good); a session of version 1 gets
 * END 1 and cannot send it (ERROR 1); with nothing to stop, ERROR 2. */
static void test_v2_key_unknown(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct client *c = login("carol");
	struct msg m;

	(void)state;
	accepted(a, b, &m);
	refuse_key(a, "bob");
	expect_end(b, "alice", END_KEY_UNKNOWN);
	expect_nothing(a);
	chat_flags(b, a, MSG_FLAG_PERSISTENT);	/* nothing of it was left */
	refuse_key(a, "bob");
	expect_end(b, "alice", END_KEY_UNKNOWN);
	assert_false(convs_exists("alice", "bob"));
	expect_nothing(a);
	accepted(a, c, &m);
	refuse_key(a, "carol");
	expect_end(c, "alice", END_LEFT);
	refuse_key(a, "carol");
	expect_error(a, ERR_NO_CHAT);
	accepted(c, a, &m);
	refuse_key(c, "alice");
	expect_error(c, ERR_MALFORMED);
	expect_nothing(a);
}

/* The server ends a conversation (a key changed): END 5 to the side
 * online, held for the other. */
static void test_v2_server_end(void **state)
{
	struct client *a = login2("alice"), *b = login2("bob");
	struct store_req *r;
	struct msg m;

	(void)state;
	chat_flags(a, b, MSG_FLAG_PERSISTENT);
	logout(b, END_DISCONNECTED);
	expect_presence(a, "bob", false);
	r = store_req_new(STORE_CONV_END, "bob", "alice", NULL, 0);
	r->reason = END_KEY_CHANGED;
	r->tell = STORE_TELL_A | STORE_TELL_B;
	fake_store(NULL, r);
	pump();
	expect_end(a, "bob", END_KEY_CHANGED);
	send_message(a, "bob", 3);
	expect_error_about(a, ERR_NO_CHAT, OP_MESSAGE, 3, "bob");
	b = login_keep("bob", 2);
	expect_op(b, OP_LIST, &m);
	expect_end(b, "alice", END_KEY_CHANGED);
}

/* ERROR names the refused record in version 2: the rate limit's
 * ERROR 3 (decoded first), a malformed record's peer and ref. */
static void test_v2_error_fields(void **state)
{
	struct client *a = login2("alice");
	uint8_t bad[] = { OP_MESSAGE, 3, 'b', 'o', 'b', 0, 0, 0, 9, 0xff };
	uint8_t unknown[] = { 99, 1, 2 };

	(void)state;
	send_raw(a, bad, sizeof(bad));	/* e2e length cut short */
	expect_error_about(a, ERR_MALFORMED, OP_MESSAGE, 9, "bob");
	send_raw(a, unknown, sizeof(unknown));
	expect_error_about(a, ERR_UNKNOWN_OP, 99, 0, "");
	limits.rate_burst = 0;
	send_message(a, "bob", 77);
	expect_error_about(a, ERR_LIMIT, OP_MESSAGE, 77, "bob");
	limits.rate_burst = 100;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chat_and_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consent_at_the_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_reasons, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_rate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_persistent_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_confirm_after_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_store_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_presence_and_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_takeover_and_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_rtt_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_end_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_key_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_end_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_expired_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_kept_end_told, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_rtt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_accept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_confirm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_expiry_and_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_confirm_after_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_crossed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_gate_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_server_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_error_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_stored_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_stored_never_overtaken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_stored_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_end_drops_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_missed_is_stored, setup, teardown),
	};

	return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
