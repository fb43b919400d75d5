/* test_client_chat.c - the client's chat logic against an in-memory relay.
 *
 * Each user is a struct cchat whose records are captured (encoded as the
 * client would send them), turned by a tiny relay into what secmsgd would
 * send (peer names swapped, peer_key added) and handed to the other
 * user's cchat_handle() after a real decode. Events are batch lines in a
 * memory stream, so the tests read exactly what a script would.
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

#include "client/chat.h"
#include "client/out.h"
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
	struct cchat *c;
	struct cout out;
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

static int capture(void *ctx, const struct msg *m)
{
	struct writer w;
	int from = (int)(intptr_t)ctx;

	assert_true(qtail < QMAX);
	wr_init(&w, queue[qtail].pt, sizeof(queue[qtail].pt));
	assert_int_equal(msg_encode_c2s(m, &w), 0);
	queue[qtail].from = from;
	queue[qtail].len = w.len;
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

/* Encode as the server would, decode as the client does, hand it over. */
static int deliver(int to, const struct msg *m)
{
	uint8_t buf[CHAN_PT_MAX];
	struct writer w;
	struct msg d;

	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(m, &w), 0);
	assert_int_equal(msg_decode_s2c(buf, w.len, &d), 0);
	return cchat_handle(nodes[to].c, &d);
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

static void start_node(int i)
{
	char path[256];
	struct node *n = &nodes[i];

	n->of = open_memstream(&n->obuf, &n->olen);
	n->ef = open_memstream(&n->ebuf, &n->elen);
	assert_non_null(n->of);
	cout_init(&n->out, true, n->of, n->ef, -1);
	snprintf(path, sizeof(path), "%s/%s", dir, n->name);
	assert_int_equal(cchat_new(n->name, n->key, path, capture,
				   (void *)(intptr_t)i, &n->out, &n->c), 0);
	n->online = true;
	n->seen = 0;
}

static void stop_node(int i)
{
	struct node *n = &nodes[i];

	cchat_free(n->c);
	cout_destroy(&n->out);
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
	assert_int_equal(cchat_talk(nodes[a].c, nodes[b].name), 0);
	pump();
	EXPECT(&nodes[b], "request\t%s", nodes[a].name);
	assert_int_equal(cchat_accept(nodes[b].c, nodes[a].name), 0);
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
	assert_true(cchat_logged_in(a->c));
	forget_output();
	/* A reply of several records is merged into one line. */
	assert_int_equal(cchat_list(a->c), 0);
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
	assert_int_equal(cchat_talk(a->c, "bob"), 0);
	pump();
	EXPECT(b, "request\talice");
	assert_int_equal(cchat_accept(b->c, "alice"), 0);
	/* Bob types before alice's HELLO: held, sent after it. */
	assert_int_equal(cchat_send(b->c, "alice", "early", 5), 0);
	assert_false(printed(b, "sent\talice\t1"));
	pump();
	EXPECT(a, "chat\tbob\t%s", fpr_of(b->key));
	EXPECT(b, "chat\talice\t%s", fpr_of(a->key));
	EXPECT(b, "sent\talice\t1");
	EXPECT(a, "msg\tbob\t1\tearly");
	EXPECT(b, "delivered\talice\t1");
	/* Both ways, with escapes, ids counting per direction. */
	assert_int_equal(cchat_send(a->c, "bob", "one\ttwo\nthree\\", 14), 0);
	assert_int_equal(cchat_send(a->c, "bob", "second", 6), 0);
	assert_int_equal(cchat_send(b->c, "alice", "reply", 5), 0);
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
	assert_int_equal(cchat_end(b->c, "alice"), 0);
	pump();
	EXPECT(a, "ended\tbob\tleft");
	assert_true(cchat_send(a->c, "bob", "x", 1) < 0);
	EXPECT(a, "error\t0\tno chat with bob");
}

static void test_refusals(void **state)
{
	struct node *a = &nodes[0], *c = &nodes[2];

	(void)state;
	forget_output();
	assert_int_equal(cchat_talk(a->c, "carol"), 0);
	pump();
	EXPECT(c, "request\talice");
	assert_true(cchat_talk(a->c, "carol") < 0);
	EXPECT(a, "refused\tcarol\texists");
	assert_false(printed(a, "error\t0\ta chat or request with carol already exists"));
	assert_int_equal(qtail, 0);
	assert_true(cchat_send(a->c, "carol", "x", 1) < 0);
	EXPECT(a, "error\t0\tcarol has not accepted yet");
	assert_true(cchat_send(c->c, "alice", "x", 1) < 0);
	EXPECT(c, "error\t0\taccept alice's request first");
	assert_int_equal(cchat_refuse(c->c, "alice"), 0);
	qhead = qtail = 0; /* the relay would say REFUSE 1: */
	{
		struct msg m = { .op = OP_REFUSE, .reason = REFUSE_DECLINED };

		strcpy(m.peer, "carol");
		deliver(0, &m);
	}
	EXPECT(a, "refused\tcarol\tdeclined");
	assert_true(cchat_accept(c->c, "alice") < 0);
	EXPECT(c, "error\t0\tno request from alice");
	assert_true(cchat_refuse(c->c, "bob") < 0);
	assert_true(cchat_end(c->c, "bob") < 0);
	EXPECT(c, "error\t0\tno chat or request with bob");
	assert_true(cchat_trust(c->c, "bob") < 0);
	EXPECT(c, "error\t0\tno key change to trust for bob");
	/* A withdrawn request. */
	assert_int_equal(cchat_talk(a->c, "carol"), 0);
	pump();
	assert_int_equal(cchat_end(a->c, "carol"), 0);
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
	assert_int_equal(cchat_talk(a->c, "bob"), 0);
	pump();
	assert_int_equal(cchat_accept(b->c, "alice"), 0);
	pump();
	EXPECT(a, "keychange\tbob\t%s\t%s", old, new);
	assert_false(printed(a, "chat\tbob"));
	EXPECT(b, "ended\talice\tleft"); /* alice's END for the attempt */
	/* Nothing goes to bob until alice trusts the new key. */
	assert_true(cchat_talk(a->c, "bob") < 0);
	assert_int_equal(qtail, 0);
	EXPECT(a, "error\t0\tbob's key has changed; check its fingerprint "
		  "and use trust bob first");
	forget_output();
	assert_true(cchat_send(a->c, "bob", "x", 1) < 0);
	assert_int_equal(qtail, 0);
	EXPECT(a, "error\t0\tbob's key has changed; check its fingerprint "
		  "and use trust bob first");
	assert_int_equal(cchat_trust(a->c, "bob"), 0);
	establish(0, 1);
	EXPECT(a, "chat\tbob\t%s", new);
	assert_int_equal(cchat_end(a->c, "bob"), 0);
	pump();
}

static void test_key_change_responder(void **state)
{
	struct node *a = &nodes[0], *c = &nodes[2];
	char real[FPR_HEX_LEN + 1], fake_fpr[FPR_HEX_LEN + 1];
	sm_key *fake;

	(void)state;
	establish(0, 2);
	assert_int_equal(cchat_end(a->c, "carol"), 0);
	pump();
	forget_output();
	/* The server hands out a false key for alice; carol, who accepted,
	 * checks it when alice's CONFIRM arrives. */
	snprintf(real, sizeof(real), "%s", fpr_of(a->key));
	assert_int_equal(key_generate(KEY_ED25519, &fake), 0);
	key_unref(a->server_key);
	a->server_key = fake;
	snprintf(fake_fpr, sizeof(fake_fpr), "%s", fpr_of(fake));
	assert_int_equal(cchat_talk(a->c, "carol"), 0);
	pump();
	assert_int_equal(cchat_accept(c->c, "alice"), 0);
	pump();
	EXPECT(c, "keychange\talice\t%s\t%s", real, fake_fpr);
	assert_false(printed(c, "chat\talice"));
	EXPECT(a, "ended\tcarol\tleft");
	/* Carol sends alice nothing until she trusts a key. */
	assert_true(cchat_talk(c->c, "alice") < 0);
	assert_int_equal(qtail, 0);
	assert_int_equal(cchat_talk(a->c, "carol"), 0);
	pump();
	EXPECT(c, "request\talice");
	assert_true(cchat_accept(c->c, "alice") < 0);
	assert_int_equal(qtail, 0);
	assert_int_equal(cchat_end(c->c, "alice"), 0); /* declining is allowed */
	pump();
	EXPECT(a, "ended\tcarol\tleft");
	/* Trusting records the new key; when the server goes back to the
	 * real one, that is a key change again. */
	assert_int_equal(cchat_trust(c->c, "alice"), 0);
	key_unref(a->server_key);
	a->server_key = key_ref(a->key);
	forget_output();
	assert_int_equal(cchat_talk(c->c, "alice"), 0);
	pump();
	assert_int_equal(cchat_accept(a->c, "carol"), 0);
	pump();
	EXPECT(c, "keychange\talice\t%s\t%s", fake_fpr, real);
	assert_int_equal(cchat_trust(c->c, "alice"), 0);
	forget_output();
	establish(0, 2);
	assert_int_equal(cchat_end(a->c, "carol"), 0);
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
	assert_int_equal(cchat_send(a->c, "bob", "hi", 2), 0);
	pump();
	EXPECT(b, "ended\talice\tfailed");
	EXPECT(a, "ended\tbob\tleft");
	fflush(b->ef);
	assert_non_null(strstr(b->ebuf, "chat with alice failed"));
	assert_false(printed(b, "msg\talice\t1\thi"));
	/* A bad signature in ACCEPT fails the attempt on the requester. */
	forget_output();
	tamper_accept_sig = true;
	assert_int_equal(cchat_talk(a->c, "bob"), 0);
	pump();
	assert_int_equal(cchat_accept(b->c, "alice"), 0);
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
	struct cchat_info v[8];
	char cur[NAME_MAX_LEN + 1];
	size_t n;

	(void)state;
	establish(0, 1);
	assert_int_equal(cchat_talk(nodes[0].c, "carol"), 0);
	pump();
	n = cchat_snapshot(nodes[0].c, v, 8);
	assert_int_equal(n, 2);
	cchat_current(nodes[0].c, cur);
	assert_string_equal(cur, "bob");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, "bob") == 0) {
			assert_int_equal(v[i].state, CCHAT_ESTABLISHED);
			assert_true(v[i].current);
		} else {
			assert_int_equal(v[i].state, CCHAT_OUT_REQ);
			assert_false(v[i].current);
		}
	}
	assert_int_equal(cchat_set_current(nodes[0].c, "carol"), 0);
	assert_int_equal(cchat_set_current(nodes[0].c, "dave"), -ENOENT);
	cchat_end(nodes[0].c, "bob");
	cchat_end(nodes[0].c, "carol");
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
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
