/* test_client_chat.c - the client's chat table against an in-memory relay.
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
#include "channel.h"
#include "crypto.h"
#include "e2e.h"
#include "keys.h"
#include "msg.h"

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
};

static struct node nodes[NODES];
static char dir[128];

/* Records sent by the clients, in order: who sent it and the plaintext. */
static struct {
	int from;
	size_t len;
	uint8_t pt[CHAN_PT_MAX];
} *queue;
static int qhead, qtail;

/* Tamper hooks: flip a byte of the next MESSAGE / ACCEPT signature. */
static bool tamper_message, tamper_accept_sig;
static int pings, pongs;

static int capture(void *ctx, const uint8_t *pt, size_t len, bool keep)
{
	(void)keep;
	int from = (int)(intptr_t)ctx;

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
	assert_int_equal(msg_encode_s2c(m, &w), 0);
	return chats_receive(nodes[to].c, buf, w.len);
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
		break;
	case OP_CONFIRM:
		add_key(&r, from);
		break;
	case OP_MESSAGE:
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

		assert_int_equal(msg_decode_c2s(queue[i].pt, queue[i].len, &m), 0);
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
	char path[256];
	struct node *n = &nodes[i];

	n->of = open_memstream(&n->obuf, &n->olen);
	n->ef = open_memstream(&n->ebuf, &n->elen);
	assert_non_null(n->of);
	n->out = (struct front){ .ops = &node_ops, .ctx = n, .fd = -1 };
	snprintf(path, sizeof(path), "%s/%s", dir, n->name);
	assert_int_equal(chats_new(n->name, n->key, path, NULL, capture,
				   (void *)(intptr_t)i, &n->out, &n->c), 0);
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
	fclose(n->of);
	fclose(n->ef);
	free(n->obuf);
	free(n->ebuf);
	n->obuf = n->ebuf = NULL;
	n->online = false;
}

static int setup(void **state)
{
	static const char *names[NODES] = { "alice", "bob", "carol" };

	(void)state;
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
		relay_list(i);
	return 0;
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
	EXPECT(a, "error\t0\tno chat with bob");
}

static void test_refusals(void **state)
{
	struct node *a = &nodes[0], *c = &nodes[2];

	(void)state;
	forget_output();
	assert_int_equal(chats_talk(a->c, "carol"), 0);
	pump();
	EXPECT(c, "request\talice");
	assert_true(chats_talk(a->c, "carol") < 0);
	EXPECT(a, "refused\tcarol\texists");
	assert_false(printed(a, "error\t0\ta chat or request with carol already exists"));
	assert_int_equal(qtail, 0);
	assert_true(chats_send(a->c, "carol", "x", 1) < 0);
	EXPECT(a, "error\t0\tcarol has not accepted yet");
	assert_true(chats_send(c->c, "alice", "x", 1) < 0);
	EXPECT(c, "error\t0\taccept alice's request first");
	assert_int_equal(chats_refuse(c->c, "alice"), 0);
	qhead = qtail = 0; /* the relay would say REFUSE 1: */
	{
		struct msg m = { .op = OP_REFUSE, .reason = REFUSE_DECLINED };

		strcpy(m.peer, "carol");
		deliver(0, &m);
	}
	EXPECT(a, "refused\tcarol\tdeclined");
	assert_true(chats_accept(c->c, "alice") < 0);
	EXPECT(c, "error\t0\tno request from alice");
	assert_true(chats_refuse(c->c, "bob") < 0);
	assert_true(chats_end(c->c, "bob") < 0);
	EXPECT(c, "error\t0\tno chat or request with bob");
	assert_true(chats_trust(c->c, "bob") < 0);
	EXPECT(c, "error\t0\tno key change to trust for bob");
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
		  "and use trust bob first");
	forget_output();
	assert_true(chats_send(a->c, "bob", "x", 1) < 0);
	assert_int_equal(qtail, 0);
	EXPECT(a, "error\t0\tbob's key has changed; check its fingerprint "
		  "and use trust bob first");
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
	EXPECT(a, "error\t3\tlimit\\treached");
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
	EXPECT(a, "error\t0\tcarol has not accepted yet");
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
	EXPECT(a, "error\t0\tno chat or request with dave");
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
		  "/to NAME first");
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
	m = (struct msg){ .op = OP_RTT };	/* a new RTT replaces it */
	strcpy(m.peer, "bob");
	deliver(0, &m);
	EXPECT(a, "gone\tbob");
	EXPECT(a, "request\tbob");
	assert_int_equal(chats_end(a->c, "bob"), 0);
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

	return cmocka_run_group_tests(tests, setup, teardown);
}
