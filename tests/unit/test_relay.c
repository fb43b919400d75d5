/* test_relay.c - daemon/relay.c in process: every consent and limit rule of
 * secmsg-protocol(7) §5, the rate bucket and request expiry on a fake
 * clock, and what a login and a logout tell others.
 *
 * The relay runs against a fake environment: records delivered to a user
 * are kept per user; events are queued and applied in order to the
 * target's relay, as the workers would at the end of an iteration. The
 * registry is the real one.
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

#include <cmocka.h>

#include "daemon/registry.h"
#include "daemon/relay.h"
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

static const struct relay_ops ops = {
	.deliver = fake_deliver,
	.emit = fake_emit,
};

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
static void pump(void)
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

/* Log name in (its key from the fixture PKI); drop the login LIST. */
static struct client *login(const char *name)
{
	struct client *c = client_named(name);
	char path[64];

	if (!c->key) {
		snprintf(path, sizeof(path), "%s.pub", name);
		assert_int_equal(key_load_public(tu_pki_path(path), &c->key), 0);
	}
	c->h = (struct handle){ .worker = 0, .slot = next_gen, .gen = next_gen };
	next_gen++;
	assert_int_equal(relay_login(&env, name, c->key, c->h, c, &c->u), 0);
	pump();
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
	assert_int_equal(msg_decode_s2c(r->pt, r->len, m), 0);
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
	assert_int_equal(msg_encode_c2s(m, &w), 0);
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
			 .reason = REFUSE_DECLINED };

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

static int setup(void **state)
{
	(void)state;
	memset(&limits, 0, sizeof(limits));
	limits.request_timeout_ms = 60000;
	limits.max_chats = 3;
	limits.max_pending = 2;
	limits.messages_per_second = 50;
	limits.rate_burst = 100;
	limits.logins_per_minute = 0;
	return 0;
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
	nqueue = 0;
	registry_free();
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
		h[i] = (struct handle){ 0, 300 + i, 300 + i };
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
					     (struct handle){ 0, 100 + i, 100 + i },
					     c, &u[i]), 0);
	assert_int_equal(relay_login(&env, "bob", c->key,
				     (struct handle){ 0, 200, 200 }, c, &u[2]),
			 -EAGAIN);
	assert_null(u[2]);
	/* The refused login registered nothing. */
	assert_true(handle_eq(registry_lookup("bob"),
			      ((struct handle){ 0, 101, 101 })));
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
	};

	return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
