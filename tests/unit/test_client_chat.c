/* test_client_chat.c - the client's chat table against an in-memory relay.
 *
 * The second group runs the relay at protocol version 2: every chat is a
 * conversation (both users speak version 2), each user has a store (its
 * state file in a directory of its own), and the capture function checks,
 * when asked, that what a record was sealed with is on disk before the
 * record is handed over (the persisting rules).
 *
 * Each user is a struct chats whose records are captured (the plaintexts
 * the client would seal), turned by a tiny relay into what secmsgd would
 * send (peer names swapped, peer_key added) and handed, encoded as the
 * server encodes them, to the other user's chats_receive(). Events are
 * batch lines in a memory stream, so the tests read exactly what a script
 * would; the test's front end adds a "gone NAME" line when a row of the
 * table goes away (the event the interactive client's current chat
 * follows), and runs commands with a current chat of its own.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/batch.h"
#include "client/chats.h"
#include "client/cmd.h"
#include "client/front.h"
#include "client/store.h"
#include "channel.h"
#include "crypto.h"
#include "e2e.h"
#include "keys.h"
#include "msg.h"
#include "state.h"

#define NODES 3
#define QMAX 256

struct node {
	const char *name;
	sm_key *key;		/* the user's own key */
	sm_key *server_key;	/* what the relay hands out as this user's key */
	struct chats *c;
	struct front out;
	struct cmd_env env;
	struct focus focus;	/* the current chat, as ui.c keeps it */
	FILE *of, *ef;
	char *obuf, *ebuf;
	size_t olen, elen;
	size_t seen;		/* output already looked at by expect() */
	bool online;
	/* Version 2. */
	struct cstore store;
	bool absent;		/* the relay answers ERROR 6 for it */
};

static struct node nodes[NODES];
static char dir[128];

/* Records sent by the clients, in order: who sent it and the plaintext. */
struct rec {
	int from;
	size_t len;
	uint8_t pt[CHAN_PT_MAX];
};
static struct rec *queue;
static int qhead, qtail;

/* Tamper hooks: flip a byte of the next MESSAGE / ACCEPT signature. */
static bool tamper_message, tamper_accept_sig;
static int pings, pongs;

/* The protocol version of every session (the second group: 2). */
static unsigned version = 1;
/* Check the persisting rules at each record handed over. */
static bool check_saved;
static unsigned checked;	/* how many records it checked */
/* Refuse the nth MESSAGE of node 0 from now (1: the next) with ERROR 6. */
static int refuse_nth;
/* The keep flag of the last record captured. */
static bool last_keep;
static int send_fails;	/* capture's answer, when not 0 (-EPIPE...) */
/* Copy the next MESSAGE node 0 hands over. */
static bool keep_first_msg;
static uint8_t first_msg[CHAN_PT_MAX];
static size_t first_msg_len;

/* The header (dh, n) of an e2e field. */
static uint32_t e2e_n(const uint8_t *e2e)
{
	return be32_get(e2e + X25519_LEN + 4);
}

/*
 * The persisting rules, seen from the send function: a MESSAGE of a
 * conversation leaves only once the state file holds its chain past the
 * key it used (the same ratchet key, Ns > n) and its ref taken; an END
 * sealed with kind END only once the file no longer holds the
 * conversation.
 */
static void check_rule1(int from, const uint8_t *pt, size_t len)
{
	struct state st;
	struct state_conv *sc;
	struct msg m;

	assert_int_equal(msg_decode_c2s_v(pt, len, 2, &m), 0);
	if (m.op != OP_MESSAGE && !(m.op == OP_END && m.e2e_len > 0))
		return;
	assert_int_equal(state_load(nodes[from].store.path, nodes[from].key,
				    &st), 0);
	sc = state_find(&st, m.peer);
	if (m.op == OP_END) {
		if (sc)
			fail_msg("END to %s left before the state without the "
				 "conversation was saved", m.peer);
	} else if (!sc || memcmp(sc->chat.r.dhs_pub, m.e2e, X25519_LEN) != 0 ||
		   sc->chat.r.ns <= e2e_n(m.e2e) || sc->next_ref <= m.ref) {
		fail_msg("MESSAGE %u to %s left before its chain was saved "
			 "(saved Ns %u)", e2e_n(m.e2e), m.peer,
			 sc ? sc->chat.r.ns : 0);
	}
	checked++;
	state_free(&st);
}

static int capture(void *ctx, const uint8_t *pt, size_t len, bool keep)
{
	int from = (int)(intptr_t)ctx;

	if (send_fails)
		return send_fails;
	last_keep = keep;
	if (check_saved)
		check_rule1(from, pt, len);
	if (keep_first_msg && from == 0 && pt[0] == OP_MESSAGE) {
		memcpy(first_msg, pt, len);
		first_msg_len = len;
		keep_first_msg = false;
	}

	assert_true(qtail < QMAX);
	assert_true(len <= sizeof(queue[qtail].pt));
	memcpy(queue[qtail].pt, pt, len);
	queue[qtail].from = from;
	queue[qtail].len = len;
	qtail++;
	return 0;
}

static int find(const char *name)
{
	for (int i = 0; i < NODES; i++)
		if (strcmp(nodes[i].name, name) == 0)
			return i;
	return -1;
}

/* Encode as the server would and hand it over, as the client's loop does. */
static int deliver(int to, const struct msg *m)
{
	uint8_t buf[CHAN_PT_MAX];
	struct writer w;

	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c_v(m, version, &w), 0);
	return chats_receive(nodes[to].c, buf, w.len);
}

/* What the server answers a refused record (version 2: op, ref, peer). */
static void refuse(int to, const struct msg *m, uint16_t code)
{
	struct msg e = { .op = OP_ERROR, .code = code, .err_op = m->op,
			 .ref = m->ref, .text = (const uint8_t *)"peer offline",
			 .text_len = 12 };

	snprintf(e.peer, sizeof(e.peer), "%s", m->peer);
	deliver(to, &e);
}

static void relay_list(int from)
{
	uint8_t names[NODES * (NAME_MAX_LEN + 1)];
	struct msg r = { .op = OP_LIST, .last = 1 };
	struct writer w;

	wr_init(&w, names, sizeof(names));
	for (int i = 0; i < NODES; i++) {
		if (i != from && nodes[i].online) {
			wr_name(&w, nodes[i].name);
			r.count++;
		}
	}
	r.names = names;
	r.names_len = w.len;
	deliver(from, &r);
}

static void add_key(struct msg *r, int whose)
{
	r->peer_key = key_spki(nodes[whose].server_key, &r->peer_key_len);
}

/* What secmsgd would do with one record (a friendly, simplified relay). */
static void relay_one(int from, struct msg *m)
{
	int to = m->op == OP_LIST || m->op == OP_PING || m->op == OP_QUIT ||
		 m->op == OP_PONG ?
			 from : find(m->peer);
	struct msg r = *m;
	uint8_t sig[SIG_MAX_LEN], e2e[E2E_MAX];

	assert_true(to >= 0);
	snprintf(r.peer, sizeof(r.peer), "%s", nodes[from].name);
	switch (m->op) {
	case OP_LIST:
		relay_list(from);
		return;
	case OP_PING:
		pings++;
		r.op = OP_PONG;
		deliver(from, &r);
		return;
	case OP_PONG:
		pongs++;
		return;
	case OP_QUIT:
		return;
	case OP_ACCEPT:
		if (tamper_accept_sig) {
			memcpy(sig, m->sig, m->sig_len);
			sig[3] ^= 1;
			r.sig = sig;
			tamper_accept_sig = false;
		}
		add_key(&r, from);
		r.flags = version >= 2 ? MSG_FLAG_PERSISTENT : 0;
		break;
	case OP_CONFIRM:
		add_key(&r, from);
		r.flags = version >= 2 ? MSG_FLAG_PERSISTENT : 0;
		break;
	case OP_MESSAGE:
		if (nodes[to].absent ||
		    (from == 0 && refuse_nth > 0 && --refuse_nth == 0)) {
			refuse(from, m, ERR_OFFLINE);
			return;
		}
		if (tamper_message) {
			memcpy(e2e, m->e2e, m->e2e_len);
			e2e[m->e2e_len - 1] ^= 0x80;
			r.e2e = e2e;
			tamper_message = false;
		}
		break;
	case OP_END:
		r.reason = END_LEFT;
		break;
	default:
		break;
	}
	deliver(to, &r);
}

/* Run the relay until nobody has anything more to say. */
static void pump(void)
{
	struct msg m;

	while (qhead < qtail) {
		int i = qhead++;

		assert_int_equal(msg_decode_c2s_v(queue[i].pt, queue[i].len,
						  version, &m), 0);
		relay_one(queue[i].from, &m);
	}
	qhead = qtail = 0;
}

/* Was a line exactly `line` printed by n since the last expect_reset? */
static bool printed(struct node *n, const char *line)
{
	size_t len = strlen(line);
	const char *p;

	fflush(n->of);
	for (p = n->obuf + n->seen; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, line, len) == 0 && p[len] == '\n')
			return true;
	}
	return false;
}

#define EXPECT(n, ...)                                                   \
	do {                                                             \
		char want_[512];                                         \
		snprintf(want_, sizeof(want_), __VA_ARGS__);             \
		if (!printed(n, want_))                                  \
			fail_msg("%s did not print '%s'; it printed:\n%s", \
				 (n)->name, want_, (n)->obuf + (n)->seen); \
	} while (0)

static void forget_output(void)
{
	for (int i = 0; i < NODES; i++) {
		fflush(nodes[i].of);
		nodes[i].seen = nodes[i].olen;
	}
}

static const char *fpr_of(sm_key *k)
{
	static char hex[2][FPR_HEX_LEN + 1];
	static int which;

	which ^= 1;
	key_fingerprint_hex(k, hex[which]);
	return hex[which];
}

/* The test's front end: batch lines, notices on ef, "gone NAME" lines. */
static void node_event(void *fe, const struct cev *ev)
{
	struct node *n = fe;
	char *line;
	size_t len;

	if (ev->kind == CEV_NOTICE) {
		fprintf(n->ef, "secmsg-client: %.*s\n", (int)ev->text_len,
			ev->text);
		return;
	}
	if (ev->kind == CEV_GONE) {
		fprintf(n->of, "gone\t%s\n", ev->peer);
		return;
	}
	len = batch_format(ev, &line);
	if (line)
		fwrite(line, 1, len, n->of);
	free(line);
}

static const struct front_ops node_ops = { .event = node_event };

static void start_node(int i)
{
	char path[256], err[512];
	struct node *n = &nodes[i];

	n->of = open_memstream(&n->obuf, &n->olen);
	n->ef = open_memstream(&n->ebuf, &n->elen);
	assert_non_null(n->of);
	n->out = (struct front){ .ops = &node_ops, .ctx = n, .fd = -1 };
	snprintf(path, sizeof(path), "%s/%s", dir, n->name);
	if (version >= 2 && cstore_open(&n->store, dir, n->name, n->key, err,
					sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(chats_new(n->name, n->key, path,
				   version >= 2 ? &n->store : NULL, capture,
				   (void *)(intptr_t)i, &n->out, &n->c), 0);
	chats_session(n->c, version);
	n->focus.name[0] = '\0';
	n->env = (struct cmd_env){ .chats = n->c, .out = &n->out,
				   .focus = &n->focus, .user = n->name };
	n->online = true;
	n->seen = 0;
}

static void stop_node(int i)
{
	struct node *n = &nodes[i];

	chats_free(n->c);
	cstore_close(&n->store);
	fclose(n->of);
	fclose(n->ef);
	free(n->obuf);
	free(n->ebuf);
	n->obuf = n->ebuf = NULL;
	n->online = false;
}

/* The login's CONVERSATIONS reply (version 2): the n peers listed, each
 * online when its node is and the relay delivers to it. */
static void send_convs(int to, const char *const *peers, size_t n)
{
	uint8_t buf[NODES * 64];
	struct msg r = { .op = OP_CONVERSATIONS, .last = 1 };
	struct writer w;
	int j;

	wr_init(&w, buf, sizeof(buf));
	for (size_t i = 0; i < n; i++) {
		j = find(peers[i]);
		msg_conv_put(&w, peers[i], 1700000000 + i,
			     j >= 0 && nodes[j].online && !nodes[j].absent ?
				     CONV_FLAG_ONLINE : 0);
		r.count++;
	}
	assert_false(wr_error(&w));
	r.convs = buf;
	r.convs_len = w.len;
	deliver(to, &r);
}

/* Log node i in: the first LIST reply (and an empty CONVERSATIONS). */
static void log_in(int i)
{
	relay_list(i);
	if (version >= 2)
		send_convs(i, NULL, 0);
	assert_true(chats_logged_in(nodes[i].c));
}

static int setup_version(unsigned v)
{
	static const char *names[NODES] = { "alice", "bob", "carol" };

	version = v;
	assert_int_equal(crypto_init(), 0);
	snprintf(dir, sizeof(dir), "/tmp/secmsg-cchat-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	queue = calloc(QMAX, sizeof(*queue));
	for (int i = 0; i < NODES; i++) {
		nodes[i].name = names[i];
		assert_int_equal(key_generate(KEY_ED25519, &nodes[i].key), 0);
		nodes[i].server_key = key_ref(nodes[i].key);
		start_node(i);
	}
	/* Log every node in: the first LIST reply is the login. */
	for (int i = 0; i < NODES; i++)
		log_in(i);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_version(1);
}

static int setup_v2(void **state)
{
	(void)state;
	return setup_version(2);
}

static int teardown(void **state)
{
	char cmd[200];

	(void)state;
	for (int i = 0; i < NODES; i++) {
		stop_node(i);
		key_unref(nodes[i].key);
		key_unref(nodes[i].server_key);
	}
	free(queue);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Alice asks bob, bob accepts: both see `chat`. */
static void establish(int a, int b)
{
	assert_int_equal(chats_talk(nodes[a].c, nodes[b].name), 0);
	pump();
	EXPECT(&nodes[b], "request\t%s", nodes[a].name);
	assert_int_equal(chats_accept(nodes[b].c, nodes[a].name), 0);
	pump();
	EXPECT(&nodes[a], "chat\t%s\t%s", nodes[b].name,
	       fpr_of(nodes[b].server_key));
	EXPECT(&nodes[b], "chat\t%s\t%s", nodes[a].name,
	       fpr_of(nodes[a].server_key));
}

static void test_login(void **state)
{
	struct node *a = &nodes[0];
	uint8_t names[64];
	struct writer w;
	struct msg m = { .op = OP_LIST, .last = 0 };

	(void)state;
	EXPECT(&nodes[0], "ready\talice");
	EXPECT(&nodes[2], "ready\tcarol");
	assert_true(chats_logged_in(a->c));
	forget_output();
	/* A reply of several records is merged into one line. */
	assert_int_equal(chats_list(a->c), 0);
	assert_int_equal(qtail, 1);
	qhead = qtail = 0;
	wr_init(&w, names, sizeof(names));
	wr_name(&w, "bob");
	m.count = 1;
	m.names = names;
	m.names_len = w.len;
	deliver(0, &m);
	assert_false(printed(a, "users\tbob"));
	wr_init(&w, names, sizeof(names));
	wr_name(&w, "carol");
	wr_name(&w, "dave");
	m.count = 2;
	m.names_len = w.len;
	m.last = 1;
	deliver(0, &m);
	EXPECT(a, "users\tbob,carol,dave");
	m.count = 0;
	m.names_len = 0;
	deliver(0, &m);
	EXPECT(a, "users\t");
}

static void test_chat_flow(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	char path[256], *text = NULL;
	size_t len;
	FILE *f;

	(void)state;
	forget_output();
	assert_int_equal(chats_talk(a->c, "bob"), 0);
	pump();
	EXPECT(b, "request\talice");
	assert_int_equal(chats_accept(b->c, "alice"), 0);
	/* Bob types before alice's HELLO: held, sent after it. */
	assert_int_equal(chats_send(b->c, "alice", "early", 5), 0);
	assert_false(printed(b, "sent\talice\t1"));
	pump();
	EXPECT(a, "chat\tbob\t%s", fpr_of(b->key));
	EXPECT(b, "chat\talice\t%s", fpr_of(a->key));
	EXPECT(b, "sent\talice\t1");
	EXPECT(a, "msg\tbob\t1\tearly");
	EXPECT(b, "delivered\talice\t1");
	/* Both ways, with escapes, ids counting per direction. */
	assert_int_equal(chats_send(a->c, "bob", "one\ttwo\nthree\\", 14), 0);
	assert_int_equal(chats_send(a->c, "bob", "second", 6), 0);
	assert_int_equal(chats_send(b->c, "alice", "reply", 5), 0);
	EXPECT(a, "sent\tbob\t1");
	EXPECT(a, "sent\tbob\t2");
	pump();
	EXPECT(b, "msg\talice\t1\tone\\ttwo\\nthree\\\\");
	EXPECT(b, "msg\talice\t2\tsecond");
	EXPECT(a, "msg\tbob\t2\treply");
	EXPECT(a, "delivered\tbob\t1");
	EXPECT(a, "delivered\tbob\t2");
	EXPECT(b, "delivered\talice\t2");
	/* Both recorded each other's key. */
	snprintf(path, sizeof(path), "%s/alice", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	assert_non_null(strstr(text, "bob "));
	assert_non_null(strstr(text, fpr_of(b->key)));
	free(text);
	/* Bob leaves. */
	assert_int_equal(chats_end(b->c, "alice"), 0);
	pump();
	EXPECT(a, "ended\tbob\tleft");
	assert_true(chats_send(a->c, "bob", "x", 1) < 0);
	EXPECT(a, "error\t0\tno chat with bob\t");
}

static void test_refusals(void **state)
{
	struct node *a = &nodes[0], *c = &nodes[2];

	(void)state;
	forget_output();
	/* To oneself: refused here, nothing sent (the server would say
	 * REFUSE 4; the user is not first told that it was asked). */
	assert_true(chats_talk(a->c, "alice") < 0);
	EXPECT(a, "refused\talice\tself");
	assert_int_equal(qtail, 0);
	assert_int_equal(chats_talk(a->c, "carol"), 0);
	pump();
	EXPECT(c, "request\talice");
	assert_true(chats_talk(a->c, "carol") < 0);
	EXPECT(a, "refused\tcarol\texists");
	assert_false(printed(a, "error\t0\ta chat or request with carol already exists\t"));
	assert_int_equal(qtail, 0);
	assert_true(chats_send(a->c, "carol", "x", 1) < 0);
	EXPECT(a, "error\t0\tcarol has not accepted yet\t");
	assert_true(chats_send(c->c, "alice", "x", 1) < 0);
	EXPECT(c, "error\t0\taccept alice's request first\t");
	assert_int_equal(chats_refuse(c->c, "alice"), 0);
	qhead = qtail = 0; /* the relay would say REFUSE 1: */
	{
		struct msg m = { .op = OP_REFUSE, .reason = REFUSE_DECLINED };

		strcpy(m.peer, "carol");
		deliver(0, &m);
	}
	EXPECT(a, "refused\tcarol\tdeclined");
	assert_true(chats_accept(c->c, "alice") < 0);
	EXPECT(c, "error\t0\tno request from alice\t");
	assert_true(chats_refuse(c->c, "bob") < 0);
	assert_true(chats_end(c->c, "bob") < 0);
	EXPECT(c, "error\t0\tno chat or request with bob\t");
	assert_true(chats_trust(c->c, "bob") < 0);
	EXPECT(c, "error\t0\tno key change to trust for bob\t");
	/* A withdrawn request. */
	assert_int_equal(chats_talk(a->c, "carol"), 0);
	pump();
	assert_int_equal(chats_end(a->c, "carol"), 0);
	qhead = qtail = 0;
	{
		struct msg m = { .op = OP_END, .reason = END_WITHDRAWN };

		strcpy(m.peer, "alice");
		deliver(2, &m);
	}
	EXPECT(c, "ended\talice\twithdrawn");
}

static void test_key_change_initiator(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	char old[FPR_HEX_LEN + 1], new[FPR_HEX_LEN + 1];
	sm_key *k;

	(void)state;
	forget_output();
	snprintf(old, sizeof(old), "%s", fpr_of(b->key));
	/* Bob gets a new key; the server hands it out. */
	assert_int_equal(key_generate(KEY_ED25519, &k), 0);
	stop_node(1);
	key_unref(b->key);
	key_unref(b->server_key);
	b->key = k;
	b->server_key = key_ref(k);
	start_node(1);
	relay_list(1);
	snprintf(new, sizeof(new), "%s", fpr_of(k));
	assert_int_equal(chats_talk(a->c, "bob"), 0);
	pump();
	assert_int_equal(chats_accept(b->c, "alice"), 0);
	pump();
	EXPECT(a, "keychange\tbob\t%s\t%s", old, new);
	assert_false(printed(a, "chat\tbob"));
	EXPECT(b, "ended\talice\tleft"); /* alice's END for the attempt */
	/* Nothing goes to bob until alice trusts the new key. */
	assert_true(chats_talk(a->c, "bob") < 0);
	assert_int_equal(qtail, 0);
	EXPECT(a, "error\t0\tbob's key has changed; check its fingerprint "
		  "and use trust bob first\t");
	forget_output();
	assert_true(chats_send(a->c, "bob", "x", 1) < 0);
	assert_int_equal(qtail, 0);
	EXPECT(a, "error\t0\tbob's key has changed; check its fingerprint "
		  "and use trust bob first\t");
	assert_int_equal(chats_trust(a->c, "bob"), 0);
	establish(0, 1);
	EXPECT(a, "chat\tbob\t%s", new);
	assert_int_equal(chats_end(a->c, "bob"), 0);
	pump();
}

static void test_key_change_responder(void **state)
{
	struct node *a = &nodes[0], *c = &nodes[2];
	char real[FPR_HEX_LEN + 1], fake_fpr[FPR_HEX_LEN + 1];
	sm_key *fake;

	(void)state;
	establish(0, 2);
	assert_int_equal(chats_end(a->c, "carol"), 0);
	pump();
	forget_output();
	/* The server hands out a false key for alice; carol, who accepted,
	 * checks it when alice's CONFIRM arrives. */
	snprintf(real, sizeof(real), "%s", fpr_of(a->key));
	assert_int_equal(key_generate(KEY_ED25519, &fake), 0);
	key_unref(a->server_key);
	a->server_key = fake;
	snprintf(fake_fpr, sizeof(fake_fpr), "%s", fpr_of(fake));
	assert_int_equal(chats_talk(a->c, "carol"), 0);
	pump();
	assert_int_equal(chats_accept(c->c, "alice"), 0);
	pump();
	EXPECT(c, "keychange\talice\t%s\t%s", real, fake_fpr);
	assert_false(printed(c, "chat\talice"));
	EXPECT(a, "ended\tcarol\tleft");
	/* Carol sends alice nothing until she trusts a key. */
	assert_true(chats_talk(c->c, "alice") < 0);
	assert_int_equal(qtail, 0);
	assert_int_equal(chats_talk(a->c, "carol"), 0);
	pump();
	EXPECT(c, "request\talice");
	assert_true(chats_accept(c->c, "alice") < 0);
	assert_int_equal(qtail, 0);
	assert_int_equal(chats_end(c->c, "alice"), 0); /* declining is allowed */
	pump();
	EXPECT(a, "ended\tcarol\tleft");
	/* Trusting records the new key; when the server goes back to the
	 * real one, that is a key change again. */
	assert_int_equal(chats_trust(c->c, "alice"), 0);
	key_unref(a->server_key);
	a->server_key = key_ref(a->key);
	forget_output();
	assert_int_equal(chats_talk(c->c, "alice"), 0);
	pump();
	assert_int_equal(chats_accept(a->c, "carol"), 0);
	pump();
	EXPECT(c, "keychange\talice\t%s\t%s", fake_fpr, real);
	assert_int_equal(chats_trust(c->c, "alice"), 0);
	forget_output();
	establish(0, 2);
	assert_int_equal(chats_end(a->c, "carol"), 0);
	pump();
}

static void test_failures(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];

	(void)state;
	/* A tampered chat message ends the chat on the receiving side. */
	establish(0, 1);
	forget_output();
	tamper_message = true;
	assert_int_equal(chats_send(a->c, "bob", "hi", 2), 0);
	pump();
	EXPECT(b, "ended\talice\tfailed");
	EXPECT(a, "ended\tbob\tleft");
	fflush(b->ef);
	assert_non_null(strstr(b->ebuf, "chat with alice failed"));
	assert_false(printed(b, "msg\talice\t1\thi"));
	/* A bad signature in ACCEPT fails the attempt on the requester. */
	forget_output();
	tamper_accept_sig = true;
	assert_int_equal(chats_talk(a->c, "bob"), 0);
	pump();
	assert_int_equal(chats_accept(b->c, "alice"), 0);
	pump();
	EXPECT(a, "ended\tbob\tfailed");
	EXPECT(b, "ended\talice\tleft");
	assert_false(printed(a, "chat\tbob"));
}

static void test_server_records(void **state)
{
	struct node *a = &nodes[0];
	struct msg m = { .op = OP_PING, .cookie = 42 };

	(void)state;
	forget_output();
	assert_int_equal(deliver(0, &m), 0);
	assert_int_equal(qtail, 1);
	pongs = 0;
	pump();
	assert_int_equal(pongs, 1);
	m = (struct msg){ .op = OP_ERROR, .code = 3,
			  .text = (const uint8_t *)"limit\treached", .text_len = 13 };
	assert_int_equal(deliver(0, &m), 0);
	EXPECT(a, "error\t3\tlimit\\treached\t");
	/* A MESSAGE outside any chat is ignored (and said so on stderr). */
	m = (struct msg){ .op = OP_MESSAGE, .e2e = (const uint8_t *)"x",
			  .e2e_len = 1 };
	strcpy(m.peer, "carol");
	assert_int_equal(deliver(0, &m), 0);
	assert_int_equal(qtail, 0);
	m = (struct msg){ .op = OP_BYE, .reason = BYE_SHUTDOWN,
			  .text = (const uint8_t *)"bye", .text_len = 3 };
	assert_int_equal(deliver(0, &m), 1);
	EXPECT(a, "bye\tshutdown\tbye");
}

static void test_snapshot(void **state)
{
	struct chats_row v[8];
	size_t n;

	(void)state;
	establish(0, 1);
	assert_int_equal(chats_talk(nodes[0].c, "carol"), 0);
	pump();
	n = chats_snapshot(nodes[0].c, v, 8);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, "bob") == 0)
			assert_int_equal(v[i].state, PEER_ESTABLISHED);
		else
			assert_int_equal(v[i].state, PEER_OUT_REQ);
		assert_false(v[i].key_changed);
	}
	assert_int_equal(chats_state(nodes[0].c, "bob"), PEER_ESTABLISHED);
	assert_int_equal(chats_state(nodes[0].c, "carol"), PEER_OUT_REQ);
	assert_int_equal(chats_state(nodes[0].c, "dave"), -ENOENT);
	assert_int_equal(chats_snapshot(nodes[0].c, v, 1), 2);
	chats_end(nodes[0].c, "bob");
	chats_end(nodes[0].c, "carol");
	pump();
}

/* An interactive command line, run as ui.c runs it. */
static int ui_cmd(struct node *n, const char *line)
{
	struct ccmd c;

	ccmd_parse_interactive(line, strlen(line), &c);
	return ccmd_run(&n->env, &c);
}

/* Issue 13 §6: plain text goes to the chat the user last picked. */
static void test_current_chat(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];

	(void)state;
	forget_output();
	assert_int_equal(ui_cmd(a, "/talk bob"), 0);
	assert_string_equal(a->focus.name, "bob");
	pump();
	assert_int_equal(chats_accept(b->c, "alice"), 0);
	pump();
	assert_int_equal(ui_cmd(a, "for bob"), 0);
	pump();
	EXPECT(b, "msg\talice\t1\tfor bob");
	/* Chatting with bob, alice asks carol: carol is current at once,
	 * and a line before carol accepts goes nowhere. */
	assert_int_equal(ui_cmd(a, "/talk carol"), 0);
	assert_string_equal(a->focus.name, "carol");
	assert_int_equal(qtail, 1);		/* the RTT */
	assert_int_equal(ui_cmd(a, "too early"), 0);
	assert_int_equal(qtail, 1);
	EXPECT(a, "error\t0\tcarol has not accepted yet\t");
	pump();
	assert_int_equal(chats_accept(c->c, "alice"), 0);
	pump();
	assert_int_equal(ui_cmd(a, "for carol"), 0);
	pump();
	EXPECT(c, "msg\talice\t1\tfor carol");
	assert_false(printed(b, "msg\talice\t2\tfor carol"));
	/* /msg: one line to bob; carol stays current. */
	assert_int_equal(ui_cmd(a, "/msg bob one line\\n for bob"), 0);
	pump();
	EXPECT(b, "msg\talice\t2\tone line\\\\n for bob");
	assert_string_equal(a->focus.name, "carol");
	/* /to needs a chat or request; a failed /to changes nothing. */
	assert_int_equal(ui_cmd(a, "/to dave"), 0);
	EXPECT(a, "error\t0\tno chat or request with dave\tto dave");
	assert_string_equal(a->focus.name, "carol");
	assert_int_equal(ui_cmd(a, "/to bob"), 0);
	assert_string_equal(a->focus.name, "bob");
	/* A failed /talk (the chat exists) leaves the current chat alone. */
	assert_int_equal(ui_cmd(a, "/talk carol"), 0);
	EXPECT(a, "refused\tcarol\texists");
	assert_string_equal(a->focus.name, "bob");
	/* A chat accepted becomes current. */
	assert_int_equal(ui_cmd(a, "/end carol"), 0);
	pump();
	assert_int_equal(chats_talk(c->c, "alice"), 0);
	pump();
	assert_int_equal(ui_cmd(a, "/accept carol"), 0);
	assert_string_equal(a->focus.name, "carol");
	pump();
	/* /end without a name ends the current chat; ui.c then hears
	 * "gone" and clears it. */
	forget_output();
	assert_int_equal(ui_cmd(a, "/end"), 0);
	EXPECT(a, "gone\tcarol");
	pump();
	a->focus.name[0] = '\0';
	assert_int_equal(ui_cmd(a, "nobody gets this"), 0);
	EXPECT(a, "error\t0\tno current chat: /talk NAME, /accept NAME or "
		  "/to NAME first\t");
	assert_int_equal(qtail, 0);
	assert_int_equal(ui_cmd(a, "/quit"), FRONT_QUIT);
	chats_end(a->c, "bob");
	pump();
}

/* Every way a row leaves the table says so (CEV_GONE): the interactive
 * client's current chat depends on it. */
static void test_gone(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	struct msg m = { .op = OP_END, .reason = END_LEFT };

	(void)state;
	forget_output();
	establish(0, 1);
	assert_int_equal(chats_end(b->c, "alice"), 0);
	pump();
	EXPECT(a, "gone\tbob");			/* END from the peer */
	EXPECT(b, "gone\talice");		/* our own end */
	assert_int_equal(chats_talk(a->c, "bob"), 0);
	pump();
	forget_output();
	assert_int_equal(chats_talk(a->c, "bob"), -EEXIST); /* kept */
	assert_false(printed(a, "gone\tbob"));
	assert_int_equal(chats_refuse(b->c, "alice"), 0);
	EXPECT(b, "gone\talice");		/* our refusal */
	qhead = qtail = 0;
	m = (struct msg){ .op = OP_REFUSE, .reason = REFUSE_DECLINED };
	strcpy(m.peer, "bob");
	deliver(0, &m);
	EXPECT(a, "gone\tbob");			/* their refusal */
	assert_int_equal(chats_talk(a->c, "bob"), 0);
	pump();
	forget_output();
	assert_int_equal(chats_talk(a->c, "bob") < 0, 1);
	m = (struct msg){ .op = OP_RTT };	/* crossed: kept, no prompt */
	strcpy(m.peer, "bob");
	deliver(0, &m);
	assert_false(printed(a, "gone\tbob"));
	assert_false(printed(a, "request\tbob"));
	assert_int_equal(chats_end(a->c, "bob"), 0);
	EXPECT(a, "gone\tbob");
	qhead = qtail = 0;
}

/* A record that does not decode: for a known peer, its attempt or chat
 * fails at once (END sent); anything else is reported and dropped. */
static void test_malformed(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	uint8_t pt[64];
	struct writer w;
	struct msg m;

	(void)state;
	establish(0, 1);
	forget_output();
	wr_init(&w, pt, sizeof(pt));
	wr_u8(&w, OP_MESSAGE);
	wr_name(&w, "bob");
	wr_u16(&w, 20);				/* 20 bytes announced, 3 sent */
	wr_bytes(&w, "abc", 3);
	assert_int_equal(chats_receive(a->c, pt, w.len), 0);
	EXPECT(a, "ended\tbob\tfailed");
	EXPECT(a, "gone\tbob");
	assert_int_equal(qtail, 1);
	assert_int_equal(msg_decode_c2s(queue[0].pt, queue[0].len, &m), 0);
	assert_int_equal(m.op, OP_END);
	assert_string_equal(m.peer, "bob");
	pump();
	EXPECT(b, "ended\talice\tleft");
	/* No such peer, or no name at all: nothing is sent. */
	assert_int_equal(chats_receive(a->c, pt, w.len), 0);
	pt[1] = 0;
	assert_int_equal(chats_receive(a->c, pt, w.len), 0);
	assert_int_equal(chats_receive(a->c, (const uint8_t *)"\x09", 1), 0);
	assert_int_equal(qtail, 0);
	fflush(a->ef);
	assert_non_null(strstr(a->ebuf, "malformed MESSAGE record from the "
				       "server was ignored"));
}


/* ---- version 2: conversations ---- */

static void swap_queue(int i, int j)
{
	static struct rec t;

	t = queue[i];
	queue[i] = queue[j];
	queue[j] = t;
}

/* Was a line starting with prefix printed by n since the last reset? */
static bool printed_prefix(struct node *n, const char *prefix)
{
	const char *p;

	fflush(n->of);
	for (p = n->obuf + n->seen; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

/* Does node i's state file hold a conversation with peer? */
static bool saved_conv(int i, const char *peer)
{
	struct state st;
	bool found;

	assert_int_equal(state_load(nodes[i].store.path, nodes[i].key, &st), 0);
	found = state_find(&st, peer) != NULL;
	state_free(&st);
	return found;
}

/* How many outbox records to peer node i's state file holds is n? */
static bool saved_out(int i, const char *peer, size_t n)
{
	struct state st;
	size_t k = 0;

	assert_int_equal(state_load(nodes[i].store.path, nodes[i].key, &st), 0);
	for (size_t j = 0; j < st.nout; j++)
		k += strcmp(st.out[j].peer, peer) == 0;
	state_free(&st);
	return k == n;
}

/* Restart node i (its table and its store read back from disk) and log it
 * in with a CONVERSATIONS reply listing peers. */
static void restart(int i, const char *const *peers, size_t n)
{
	stop_node(i);
	start_node(i);
	relay_list(i);
	send_convs(i, peers, n);
	assert_true(chats_logged_in(nodes[i].c));
}

static void presence(int to, const char *peer, bool online)
{
	struct msg m = { .op = OP_PRESENCE, .online = online };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	deliver(to, &m);
}

/* A conversation begins, and every record sealed with a sending chain
 * (HELLO, TEXT, RECEIPT) is handed over only once the state file holds
 * that chain past its key (check_rule1, in capture). */
static void test_conv_flow(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];

	(void)state;
	forget_output();
	check_saved = true;
	checked = 0;
	establish(0, 1);
	assert_true(printed_prefix(a, "conversation\tbob\t"));
	assert_true(printed_prefix(b, "conversation\talice\t"));
	assert_int_equal(checked, 1);			/* A's HELLO */
	assert_true(saved_conv(0, "bob"));
	assert_true(saved_conv(1, "alice"));
	assert_int_equal(chats_send(a->c, "bob", "one", 3), 0);
	assert_true(last_keep);		/* sent again after a reconnect */
	assert_int_equal(chats_send(b->c, "alice", "two", 3), 0);
	pump();
	EXPECT(b, "msg\talice\t1\tone");
	EXPECT(a, "msg\tbob\t1\ttwo");
	EXPECT(a, "delivered\tbob\t1");
	EXPECT(b, "delivered\talice\t1");
	assert_int_equal(checked, 5);	/* two TEXTs, two RECEIPTs */
	check_saved = false;
}

/* ERROR 6 names the refused record by its ref: the client says which of
 * its messages was not sent, and the others still arrive (the receiver
 * keeps the key of the gap). */
static void test_conv_error_ref(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	struct msg m, stored = { .op = OP_STORED, .peer = "bob" };

	(void)state;
	forget_output();
	refuse_nth = 2;
	assert_int_equal(chats_send(a->c, "bob", "first", 5), 0);
	assert_int_equal(chats_send(a->c, "bob", "second", 6), 0);
	assert_int_equal(chats_send(a->c, "bob", "third", 5), 0);
	pump();
	EXPECT(a, "error\t6\tpeer offline\tsend bob 3");
	EXPECT(a, "notsent\tbob\t3\toffline");
	assert_false(printed_prefix(a, "notsent\tbob\t2"));
	assert_false(printed_prefix(a, "notsent\tbob\t4"));
	EXPECT(b, "msg\talice\t2\tfirst");
	EXPECT(b, "msg\talice\t4\tthird");
	assert_false(printed_prefix(b, "msg\talice\t3"));
	EXPECT(a, "delivered\tbob\t4");
	/* bob is offline: a message goes to the server all the same, which
	 * stores it for him and says so by its ref (STORED, issue 17). */
	assert_int_equal(chats_send(a->c, "bob", "x", 1), 0);
	assert_int_equal(qtail, 1);
	assert_int_equal(msg_decode_c2s_v(queue[0].pt, queue[0].len, version,
					  &m), 0);
	qhead = qtail = 0;	/* the server keeps it */
	stored.ref = m.ref;
	deliver(0, &stored);
	EXPECT(a, "stored\tbob\t5");
	presence(0, "bob", true);
	EXPECT(a, "presence\tbob\tonline");
	assert_int_equal(chats_send(a->c, "bob", "back", 4), 0);
	pump();
	EXPECT(b, "msg\talice\t6\tback");	/* 5 comes later, stored */
}

/* A message this client refuses is dropped, and said so; the
 * conversation goes on (no END), and a later message is read. */
static void test_conv_dropped(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];

	(void)state;
	forget_output();
	tamper_message = true;
	assert_int_equal(chats_send(a->c, "bob", "bad", 3), 0);
	pump();
	EXPECT(b, "dropped\talice\tdecrypt");
	assert_false(printed_prefix(b, "ended"));
	assert_false(printed_prefix(a, "ended"));
	assert_int_equal(chats_state(b->c, "alice"), PEER_ESTABLISHED);
	assert_true(saved_conv(1, "alice"));
	assert_int_equal(chats_send(a->c, "bob", "good", 4), 0);
	pump();
	EXPECT(b, "msg\talice\t8\tgood");
	/* Out of order: the later one first, then the earlier. */
	forget_output();
	assert_int_equal(chats_send(a->c, "bob", "m8", 2), 0);
	assert_int_equal(chats_send(a->c, "bob", "m9", 2), 0);
	assert_int_equal(qtail, 2);
	swap_queue(0, 1);
	pump();
	EXPECT(b, "msg\talice\t10\tm9");
	EXPECT(b, "msg\talice\t9\tm8");
	/* The same record again: refused as a duplicate, dropped. */
	assert_int_equal(chats_send(a->c, "bob", "m10", 3), 0);
	queue[1] = queue[0];
	qtail = 2;
	pump();
	EXPECT(b, "msg\talice\t11\tm10");
	EXPECT(b, "dropped\talice\tduplicate");
}

/* A conversation outlives its client: the table and the store are read
 * back, the server's CONVERSATIONS reply reconciles them (what it does
 * not list is forgotten, what this client has no state for is ended),
 * and the ratchet goes on where it was. */
static void test_conv_restart(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	static const char *const listed[] = { "bob", "dave" };
	struct msg m;

	(void)state;
	establish(0, 2);		/* alice and carol */
	assert_true(saved_conv(0, "carol"));
	restart(0, listed, 2);
	/* dave: listed, no state here: END with an empty e2e, told. */
	assert_int_equal(qtail, 1);
	assert_int_equal(msg_decode_c2s_v(queue[0].pt, queue[0].len, 2, &m),
			 0);
	assert_int_equal(m.op, OP_END);
	assert_string_equal(m.peer, "dave");
	assert_int_equal(m.e2e_len, 0);
	qhead = qtail = 0;
	EXPECT(a, "ended\tdave\tlost");
	/* carol: not listed: forgotten, here and in the file. */
	EXPECT(a, "ended\tcarol\tforgotten");
	assert_false(saved_conv(0, "carol"));
	assert_int_equal(chats_state(a->c, "carol"), -ENOENT);
	/* bob: listed with its presence and since. */
	EXPECT(a, "conversation\tbob\t1700000000\tonline");
	assert_true(saved_conv(0, "bob"));
	forget_output();
	check_saved = true;
	assert_int_equal(chats_send(a->c, "bob", "after", 5), 0);
	assert_int_equal(chats_send(b->c, "alice", "to you", 6), 0);
	pump();
	check_saved = false;
	EXPECT(b, "msg\talice\t12\tafter");
	EXPECT(a, "msg\tbob\t2\tto you");
	EXPECT(a, "delivered\tbob\t12");
	EXPECT(b, "delivered\talice\t2");
	/* carol still holds hers: her next login would forget it. */
	restart(2, NULL, 0);
	EXPECT(&nodes[2], "ended\talice\tforgotten");
}

/* /end: kind END sealed, the state saved without the conversation, then
 * sent; the peer checks it (left) or says it cannot (server). */
static void test_conv_end(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	struct msg m = { .op = OP_END, .reason = END_LEFT };

	(void)state;
	forget_output();
	check_saved = true;
	assert_int_equal(chats_end(b->c, "alice"), 0);
	assert_true(last_keep);
	pump();
	check_saved = false;
	EXPECT(a, "ended\tbob\tleft");
	EXPECT(a, "gone\tbob");
	assert_false(saved_conv(0, "bob"));
	assert_false(saved_conv(1, "alice"));
	assert_int_equal(chats_state(b->c, "alice"), -ENOENT);
	/* An END 1 the peer did not seal: the server says so, no more. */
	establish(0, 1);
	forget_output();
	strcpy(m.peer, "bob");
	deliver(0, &m);
	EXPECT(a, "ended\tbob\tserver");
	assert_false(saved_conv(0, "bob"));
	/* An END 1 whose e2e is not the peer's kind END: the same. */
	m.e2e = (const uint8_t *)"not a sealed kind END, just bytes, long "
				 "enough to be looked at";
	m.e2e_len = 60;
	strcpy(m.peer, "alice");
	deliver(1, &m);
	EXPECT(b, "ended\talice\tserver");
	assert_false(saved_conv(1, "alice"));
	/* END 5: the server ended it. */
	establish(0, 1);
	forget_output();
	m = (struct msg){ .op = OP_END, .reason = END_KEY_CHANGED };
	strcpy(m.peer, "bob");
	deliver(0, &m);
	EXPECT(a, "ended\tbob\tremoved");
	assert_false(saved_conv(0, "bob"));
	chats_end(b->c, "alice");
	qhead = qtail = 0;
}

/* A's HELLO refused (bob went offline at once): kept, and sent again,
 * the same bytes and ref, when bob is back; bob's held text follows. */
static void test_conv_hello_again(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];

	(void)state;
	forget_output();
	assert_int_equal(chats_talk(a->c, "bob"), 0);
	pump();
	assert_int_equal(chats_accept(b->c, "alice"), 0);
	nodes[1].absent = true;
	keep_first_msg = true;
	pump();			/* ACCEPT; CONFIRM; HELLO refused: ERROR 6 */
	assert_true(first_msg_len > 0);
	EXPECT(a, "error\t6\tpeer offline\t");	/* HELLO: no command */
	assert_false(printed_prefix(a, "notsent"));	/* not a TEXT */
	EXPECT(b, "chat\talice\t%s", fpr_of(a->key));
	assert_int_equal(chats_send(b->c, "alice", "early", 5), 0);
	assert_int_equal(qtail, 0);			/* held */
	nodes[1].absent = false;
	presence(0, "bob", true);
	assert_int_equal(qtail, 1);
	assert_int_equal(queue[0].len, first_msg_len);
	assert_memory_equal(queue[0].pt, first_msg, first_msg_len);
	pump();
	EXPECT(a, "msg\tbob\t1\tearly");
	EXPECT(b, "delivered\talice\t1");
	/* B answered: the HELLO is not sent again. */
	presence(0, "bob", true);
	assert_int_equal(qtail, 0);
	chats_end(a->c, "bob");
	pump();
}

/* The connection ends: requests and chats of version 1 rules end with it,
 * a conversation's records that never left are sent again (the same
 * bytes) after the next login, text to the conversation is typed (sealed,
 * saved in the outbox) and goes after them, and commands that need the
 * server wait. */
static void test_conv_reconnect(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];
	uint8_t kept[CHAN_PT_MAX];
	size_t kept_len;

	(void)state;
	establish(0, 1);
	assert_int_equal(chats_talk(a->c, "carol"), 0);
	qhead = qtail = 0;			/* the RTT: lost */
	forget_output();
	assert_int_equal(chats_send(a->c, "bob", "in flight", 9), 0);
	assert_int_equal(qtail, 1);
	kept_len = queue[0].len;
	memcpy(kept, queue[0].pt, kept_len);
	qhead = qtail = 0;
	chats_unsent(a->c, kept, kept_len);	/* never written */
	chats_disconnected(a->c);
	EXPECT(a, "ended\tcarol\tconnection");
	assert_false(chats_connected(a->c));
	assert_int_equal(ui_cmd(a, "/talk carol"), 0);
	EXPECT(a, "error\t0\tnot connected to the server (reconnecting)\ttalk carol");
	forget_output();
	assert_int_equal(ui_cmd(a, "/msg carol no conversation"), 0);
	EXPECT(a, "error\t0\tnot connected to the server (reconnecting)\tmsg carol");
	assert_int_equal(ui_cmd(a, "/msg bob typed now"), 0);
	EXPECT(a, "typed\tbob\t2");
	assert_int_equal(qtail, 0);
	assert_int_equal(a->store.st.nout, 1);	/* in the outbox, saved */
	assert_true(saved_out(0, "bob", 1));
	chats_session(a->c, 2);
	relay_list(0);
	assert_false(chats_logged_in(a->c));
	check_saved = true;
	send_convs(0, (const char *const[]){ "bob" }, 1);
	check_saved = false;
	assert_true(chats_logged_in(a->c));
	EXPECT(a, "ready\talice");
	EXPECT(a, "sent\tbob\t2");
	assert_int_equal(qtail, 2);	/* sealed first, sent first */
	assert_memory_equal(queue[0].pt, kept, kept_len);
	pump();
	EXPECT(b, "msg\talice\t1\tin flight");
	EXPECT(b, "msg\talice\t2\ttyped now");
	EXPECT(a, "delivered\tbob\t2");
	assert_int_equal(a->store.st.nout, 0);	/* bob online: relayed */
	chats_end(a->c, "bob");
	pump();
}

/* The connection broke before the loop saw it (the send function says
 * -EPIPE): a TEXT to a peer online is typed too, kept in the outbox and
 * saved, and goes after the next login. */
static void test_conv_typed_broken(void **state)
{
	struct node *a = &nodes[0], *b = &nodes[1];

	(void)state;
	establish(0, 1);
	forget_output();
	send_fails = -EPIPE;
	assert_int_equal(chats_send(a->c, "bob", "into a broken pipe", 18), 0);
	send_fails = 0;
	EXPECT(a, "typed\tbob\t1");
	assert_false(printed_prefix(a, "sent\t"));
	assert_true(saved_out(0, "bob", 1));
	chats_disconnected(a->c);
	chats_session(a->c, 2);
	relay_list(0);
	check_saved = true;
	send_convs(0, (const char *const[]){ "bob" }, 1);
	check_saved = false;
	EXPECT(a, "sent\tbob\t1");
	pump();
	EXPECT(b, "msg\talice\t1\tinto a broken pipe");
	EXPECT(a, "delivered\tbob\t1");
	chats_end(a->c, "bob");
	pump();
}

/* The known peers hold another key than the one a conversation began
 * with: the key-change gate stops it until `trust`. */
static void test_conv_key_gate(void **state)
{
	struct node *a = &nodes[0];
	char path[256], good[FPR_HEX_LEN + 1];
	FILE *f;

	(void)state;
	establish(0, 1);
	snprintf(good, sizeof(good), "%s", fpr_of(nodes[1].key));
	snprintf(path, sizeof(path), "%s/alice", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "bob %064d\n", 7);
	fclose(f);
	restart(0, (const char *const[]){ "bob", "carol" }, 1);
	EXPECT(a, "keychange\tbob\t%064d\t%s", 7, good);
	assert_true(chats_send(a->c, "bob", "x", 1) < 0);
	EXPECT(a, "error\t0\tbob's key has changed; check its fingerprint "
		  "and use trust bob first\t");
	assert_int_equal(qtail, 0);
	assert_int_equal(chats_trust(a->c, "bob"), 0);
	assert_int_equal(chats_send(a->c, "bob", "ok", 2), 0);
	pump();
	EXPECT(&nodes[1], "msg\talice\t1\tok");
	chats_end(a->c, "bob");
	pump();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_chat_flow),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_key_change_initiator),
		cmocka_unit_test(test_key_change_responder),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_server_records),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_current_chat),
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_malformed),
	};

	const struct CMUnitTest v2[] = {
		cmocka_unit_test(test_conv_flow),
		cmocka_unit_test(test_conv_error_ref),
		cmocka_unit_test(test_conv_dropped),
		cmocka_unit_test(test_conv_restart),
		cmocka_unit_test(test_conv_end),
		cmocka_unit_test(test_conv_hello_again),
		cmocka_unit_test(test_conv_reconnect),
		cmocka_unit_test(test_conv_typed_broken),
		cmocka_unit_test(test_conv_key_gate),
	};

	int failed = cmocka_run_group_tests(tests, setup, teardown);

	return failed + cmocka_run_group_tests(v2, setup_v2, teardown);
}
