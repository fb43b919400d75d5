/* test_e2e_v2.c - a conversation's chat messages (secmsg-protocol(7),
 * VERSION 2, "Chat messages in a conversation").
 *
 * First the whole story of tests/vectors/v2.json is replayed byte for
 * byte with scripted randomness: every sealed message, every delivery
 * (accepted or refused), the state after each, the kept keys. Then each
 * rule and each bound with real randomness: a test per bound that fails if
 * the bound is removed, refusals that leave the state exactly as it was
 * and draw no randomness, kind END, TEXT ids, and the persisting rules
 * (a sender restored from its last saved state never reuses a key). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "crypto.h"
#include "e2e.h"
#include "msg.h"
#include "rand.h"
#include "tests/lib/testutil.h"
#include "tests/unit/chat_fixture.h"

static json_t *V, *C;	/* v2.json, its "conversation" */
static sm_key *ka, *kb;

/* ---- helpers ---- */

/* Two chats are the same state, kept keys included. */
static void assert_same_chat(const struct chat *a, const struct chat *b)
{
	const struct ratchet *x = &a->r, *y = &b->r;

	assert_memory_equal(x->rk, y->rk, 32);
	assert_memory_equal(x->cks, y->cks, 32);
	assert_memory_equal(x->ckr, y->ckr, 32);
	assert_memory_equal(x->dhs_priv, y->dhs_priv, 32);
	assert_memory_equal(x->dhs_pub, y->dhs_pub, 32);
	assert_memory_equal(x->dhr, y->dhr, 32);
	assert_memory_equal(x->ad, y->ad, 32);
	assert_int_equal(x->has_cks, y->has_cks);
	assert_int_equal(x->has_ckr, y->has_ckr);
	assert_int_equal(x->has_dhr, y->has_dhr);
	assert_int_equal(x->ns, y->ns);
	assert_int_equal(x->nr, y->nr);
	assert_int_equal(x->pn, y->pn);
	assert_int_equal(a->hello_done, b->hello_done);
	assert_int_equal(a->next_tx_id, b->next_tx_id);
	assert_int_equal(a->rx_high, b->rx_high);
	assert_int_equal(a->sk.n, b->sk.n);
	if (a->sk.n)
		assert_memory_equal(a->sk.k, b->sk.k, a->sk.n * sizeof(*a->sk.k));
}

/* Counts rand_bytes calls; serves a splitmix64 stream that never
 * repeats (so fresh pairs stay distinct across calls). */
static unsigned draws;
static uint64_t stream = 0x243f6a8885a308d3ull;

static int counting_source(void *ctx, void *buf, size_t len)
{
	uint8_t *p = buf;

	(void)ctx;
	draws++;
	for (size_t i = 0; i < len; i++) {
		uint64_t z = (stream += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		p[i] = (uint8_t)(z ^ (z >> 31));
	}
	return 0;
}

/* ---- the vectors ---- */

struct side {
	struct chat c;
	uint32_t next_ref;
};

static void vec_exchange(struct side *a, struct side *b)
{
	struct e2e_initiator ini;
	struct e2e_responder resp;
	struct ratchet ra, rb;
	uint8_t nonce_b[32], share_b[32], sig_a[SIG_MAX_LEN];
	size_t sig_a_len;

	tu_rand_reset();
	push_hex(C, "inputs.nonce_a");
	push_hex(C, "inputs.alice_exchange_private");
	assert_int_equal(e2e_initiator_start(&ini, "alice", "bob"), E2E_OK);
	assert_hex(C, "inputs.share_a", ini.share_a, 32);
	push_hex(C, "inputs.nonce_b");
	push_hex(C, "inputs.bob_exchange_private");
	assert_int_equal(e2e_responder_accept(&resp, "bob", "alice",
					      ini.nonce_a, ini.share_a, kb,
					      nonce_b, share_b), E2E_OK);
	assert_hex(C, "inputs.share_b", share_b, 32);
	assert_hex(C, "T", resp.t, resp.t_len);
	assert_hex(C, "sig_b", resp.sig_b, resp.sig_b_len);
	push_hex(C, "fresh_privates.alice.0");
	assert_int_equal(e2e_initiator_finish(&ini, nonce_b, share_b,
					      resp.sig_b, resp.sig_b_len, kb,
					      ka, sig_a, &sig_a_len, &ra),
			 E2E_OK);
	assert_hex(C, "sig_a", sig_a, sig_a_len);
	assert_int_equal(e2e_responder_finish(&resp, sig_a, sig_a_len, ka,
					      &rb), E2E_OK);
	assert_int_equal(tu_rand_left(), 0);
	assert_hex(C, "ad", ra.ad, 32);
	assert_hex(C, "rk0", rb.rk, 32);
	assert_hex(C, "alice_initial.RK", ra.rk, 32);
	assert_hex(C, "alice_initial.CKs", ra.cks, 32);
	chat_init_v2(&a->c, &ra, true);
	chat_init_v2(&b->c, &rb, false);
	a->next_ref = b->next_ref = 1;
	e2e_initiator_clear(&ini);
	e2e_responder_clear(&resp);
}

/* A kept key [dh, n, mk] of the vectors against one of ours. */
static void check_kept_entry(json_t *k, const struct skipped_key *got)
{
	size_t len;
	uint8_t *dh = tu_unhex(json_string_value(json_array_get(k, 0)), &len);
	uint8_t *mk = tu_unhex(json_string_value(json_array_get(k, 2)), &len);

	assert_memory_equal(dh, got->dh, 32);
	assert_int_equal(json_integer_value(json_array_get(k, 1)), got->n);
	assert_memory_equal(mk, got->mk, 32);
	free(dh);
	free(mk);
}

/* state_after of a delivery against the receiver. */
static void check_state(json_t *s, const struct chat *c)
{
	const struct ratchet *r = &c->r;
	json_t *sk;

	assert_hex(s, "RK", r->rk, 32);
	if (json_is_null(tu_get(s, "CKs")))
		assert_false(r->has_cks);
	else
		assert_hex(s, "CKs", r->cks, 32);
	if (json_is_null(tu_get(s, "CKr")))
		assert_false(r->has_ckr);
	else
		assert_hex(s, "CKr", r->ckr, 32);
	if (json_is_null(tu_get(s, "DHr")))
		assert_false(r->has_dhr);
	else
		assert_hex(s, "DHr", r->dhr, 32);
	assert_hex(s, "DHs_public", r->dhs_pub, 32);
	assert_int_equal(r->ns, int_at(s, "Ns"));
	assert_int_equal(r->nr, int_at(s, "Nr"));
	assert_int_equal(r->pn, int_at(s, "PN"));
	assert_int_equal(c->hello_done, json_is_true(tu_get(s, "hello_done")));
	assert_int_equal(c->next_tx_id, int_at(s, "next_text_id"));
	assert_int_equal(c->rx_high, int_at(s, "last_rx_text_id"));
	assert_int_equal(c->sk.n, int_at(s, "skipped_count"));
	if ((sk = json_object_get(s, "skipped"))) {
		for (size_t i = 0; i < json_array_size(sk); i++)
			check_kept_entry(json_array_get(sk, i), &c->sk.k[i]);
	} else {
		check_kept_entry(tu_get(s, "skipped_first"), &c->sk.k[0]);
		check_kept_entry(tu_get(s, "skipped_last"),
				 &c->sk.k[c->sk.n - 1]);
	}
}

/* The sealed messages of the story, by label. */
#define MAX_SEALED 64
static struct {
	char label[32];
	uint8_t e2e[E2E_MSG_MAX];
	size_t len;
} sealed[MAX_SEALED];
static size_t nsealed;

static void keep_sealed(const char *label, const uint8_t *e2e, size_t len)
{
	assert_true(nsealed < MAX_SEALED);
	snprintf(sealed[nsealed].label, sizeof(sealed[0].label), "%s", label);
	memcpy(sealed[nsealed].e2e, e2e, len);
	sealed[nsealed].len = len;
	nsealed++;
}

static size_t find_sealed(const char *label)
{
	for (size_t i = 0; i < nsealed; i++)
		if (strcmp(sealed[i].label, label) == 0)
			return i;
	fail_msg("no sealed message %s", label);
	return 0;
}

static void step_seal(json_t *st, struct side *s, const char *peer,
		      const char *self)
{
	uint8_t out[E2E_MSG_MAX], rec[E2E_MSG_MAX + 64], *pt;
	int kind = (int)int_at(st, "kind");
	size_t len, ptlen;
	struct writer w;
	struct msg m;
	uint32_t id;

	pt = tu_hex(st, "plaintext", &ptlen);
	assert_hex(st, "chain_key", s->c.r.cks, 32);
	if (kind == CHAT_HELLO) {
		assert_int_equal(chat_seal_hello(&s->c, out, &len), E2E_OK);
	} else if (kind == CHAT_TEXT) {
		assert_int_equal(chat_seal_text(&s->c, (const char *)pt + 7,
						ptlen - 7, &id, out, &len),
				 E2E_OK);
		assert_int_equal(id, be32_get(pt + 1));
	} else if (kind == CHAT_RECEIPT) {
		assert_int_equal(chat_seal_receipt(&s->c, be32_get(pt + 1), out,
						   &len), E2E_OK);
	} else {
		assert_int_equal(kind, CHAT_END);
		assert_int_equal(chat_seal_end(&s->c, out, &len), E2E_OK);
	}
	assert_hex(st, "e2e", out, len);
	assert_hex(st, "header.bytes", out, E2E_HEADER_LEN);
	keep_sealed(tu_str(st, "label"), out, len);
	memset(&m, 0, sizeof(m));
	m.e2e = out;
	m.e2e_len = len;
	for (int d = 0; d < 2; d++) {
		m.op = kind == CHAT_END ? OP_END : OP_MESSAGE;
		strcpy(m.peer, d ? self : peer);
		m.reason = END_LEFT;
		if (m.op == OP_MESSAGE && !d)
			m.ref = s->next_ref;
		wr_init(&w, rec, sizeof(rec));
		assert_int_equal(d ? msg_encode_s2c_v(&m, 2, &w)
				   : msg_encode_c2s_v(&m, 2, &w), 0);
		assert_hex(st, kind == CHAT_END ? (d ? "end_s2c" : "end_c2s")
			   : (d ? "message_s2c" : "message_c2s"), rec, w.len);
	}
	if (kind != CHAT_END) {
		assert_int_equal(s->next_ref, int_at(st, "ref"));
		s->next_ref++;
	}
	free(pt);
}

static void step_seal_many(json_t *st, struct side *s)
{
	json_t *listed = tu_get(st, "e2e");
	const char *fmt = tu_str(st, "text_format");
	const char *label = tu_str(st, "label");
	long long count = int_at(st, "count");
	size_t seen = 0;

	assert_int_equal(s->c.next_tx_id, int_at(st, "first_text_id"));
	assert_int_equal(s->c.r.ns, int_at(st, "first_n"));
	assert_hex(st, "dh", s->c.r.dhs_pub, 32);
	for (long long i = 0; i < count; i++) {
		char text[64], lab[64];
		uint8_t out[E2E_MSG_MAX];
		json_t *want;
		uint32_t id;
		size_t len;

		/* the format has one %d; built by hand to keep -Wformat=2 */
		snprintf(text, sizeof(text), "%.*s%lld",
			 (int)(strchr(fmt, '%') - fmt), fmt, i);
		assert_int_equal(chat_seal_text(&s->c, text, strlen(text), &id,
						out, &len), E2E_OK);
		s->next_ref++;
		snprintf(lab, sizeof(lab), "%s.%lld", label, i);
		if ((want = json_object_get(listed, lab))) {
			uint8_t *b = tu_unhex(json_string_value(want), &len);

			assert_memory_equal(b, out, len);
			keep_sealed(lab, out, len);
			free(b);
			seen++;
		}
	}
	assert_int_equal(seen, json_object_size(listed));
}

static enum e2e_result refusal(const char *why)
{
	static const struct {
		const char *why;
		enum e2e_result r;
	} map[] = {
		{ "HELLO first", E2E_ERR_PROTOCOL },
		{ "duplicate or too old", E2E_ERR_DUPLICATE },
		{ "too far ahead", E2E_ERR_TOO_FAR },
		{ "out of order", E2E_ERR_ORDER },
		{ "END outside an END record", E2E_ERR_PROTOCOL },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].why, why) == 0)
			return map[i].r;
	fail_msg("unknown refusal %s", why);
	return E2E_OK;
}

static void step_deliver(json_t *st, struct chat *to)
{
	size_t i = find_sealed(tu_str(st, "label"));
	bool end = json_is_true(json_object_get(st, "in_end_record"));
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	struct chat before;
	enum e2e_result r;
	bool step = json_is_true(tu_get(st, "accepted")) &&
		    json_is_true(tu_get(st, "dh_step"));

	assert_int_equal(chat_copy(&before, to), 0);
	tu_rand_reset();
	if (step)
		push_hex(st, "new_ratchet_private");
	else
		tu_rand_push((const uint8_t *)"", 0);	/* any draw dies */
	r = end ? chat_open_end(to, sealed[i].e2e, sealed[i].len, pt, &ev)
		: chat_open(to, sealed[i].e2e, sealed[i].len, pt, &ev);
	if (json_is_true(tu_get(st, "accepted"))) {
		size_t len;
		uint8_t *want = tu_hex(st, "plaintext", &len);

		assert_int_equal(r, E2E_OK);
		assert_int_equal(ev.kind, int_at(st, "kind"));
		assert_memory_equal(pt, want, len);
		if (ev.kind == CHAT_TEXT || ev.kind == CHAT_RECEIPT)
			assert_int_equal(ev.id, int_at(st, "id"));
		/* a kept key used, or the keys the message made us keep */
		if (json_is_true(tu_get(st, "from_skipped")))
			assert_int_equal(to->sk.n + 1, before.sk.n);
		else
			assert_true(to->sk.n >= before.sk.n ||
				    to->sk.n == E2E_MAX_KEPT);
		free(want);
	} else {
		assert_int_equal(r, refusal(tu_str(st, "refused")));
		assert_same_chat(to, &before);
	}
	/* the step's pair was drawn, or nothing (the empty buffer is left) */
	assert_int_equal(tu_rand_left(), step ? 0 : 1);
	tu_rand_reset();
	check_state(tu_get(st, "state_after"), to);
	chat_clear(&before);
}

static void test_vector_story(void **state)
{
	json_t *steps = tu_get(C, "steps");
	struct side a, b;
	size_t accepted = 0, refused = 0;

	(void)state;
	nsealed = 0;
	vec_exchange(&a, &b);
	for (size_t i = 0; i < json_array_size(steps); i++) {
		json_t *st = json_array_get(steps, i);
		const char *op = tu_str(st, "op");
		bool from_a = strcmp(tu_str(st, "op"), "deliver") == 0 ?
			      strcmp(tu_str(st, "to"), "bob") == 0 :
			      strcmp(tu_str(st, "sender"), "alice") == 0;

		if (strcmp(op, "seal") == 0)
			step_seal(st, from_a ? &a : &b, from_a ? "bob" : "alice",
				  from_a ? "alice" : "bob");
		else if (strcmp(op, "seal_many") == 0)
			step_seal_many(st, from_a ? &a : &b);
		else {
			step_deliver(st, from_a ? &b.c : &a.c);
			if (json_is_true(tu_get(st, "accepted")))
				accepted++;
			else
				refused++;
		}
	}
	assert_true(accepted >= 20 && refused >= 5);
	chat_clear(&a.c);
	chat_clear(&b.c);
}

/* ---- conversations with real randomness ---- */

struct conv {
	struct chat a, b;
};

static void conv_open(struct conv *c)
{
	tu_rand_reset();
	conv_make(ka, kb, &c->a, &c->b);
}

static void conv_clear(struct conv *c)
{
	chat_clear(&c->a);
	chat_clear(&c->b);
}

/* A sealed message kept for later delivery. */
struct sent {
	uint8_t e2e[E2E_MSG_MAX];
	size_t len;
	uint32_t id;
};

static void seal_text(struct chat *s, struct sent *m)
{
	char text[32];

	snprintf(text, sizeof(text), "text %u", s->next_tx_id);
	assert_int_equal(chat_seal_text(s, text, strlen(text), &m->id, m->e2e,
					&m->len), E2E_OK);
}

static void seal_hello(struct chat *a, struct sent *m)
{
	assert_int_equal(chat_seal_hello(a, m->e2e, &m->len), E2E_OK);
	m->id = 0;
}

/* Any refusal (the reason depends on which byte a test changed), and
 * any result at all. */
#define E2E_ERR_ANY ((enum e2e_result)-1)
#define E2E_ANY_RESULT ((enum e2e_result)-2)

/* Deliver m to r: expect res; on a refusal, r must be exactly as it was
 * and nothing drawn. */
static void deliver(struct chat *r, const struct sent *m, enum e2e_result res)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	struct chat before;
	enum e2e_result got;
	unsigned d0;

	assert_int_equal(chat_copy(&before, r), 0);
	draws = 0;
	rand_set(counting_source, NULL);
	d0 = draws;
	got = chat_open(r, m->e2e, m->len, pt, &ev);
	if (res == E2E_ERR_ANY)
		assert_int_not_equal(got, E2E_OK);
	else if (res != E2E_ANY_RESULT)
		assert_int_equal(got, res);
	if (got != E2E_OK) {
		assert_same_chat(r, &before);
		assert_int_equal(draws, d0);
		assert_int_equal(ev.kind, 0);
	} else if (ev.kind == CHAT_TEXT) {
		assert_int_equal(ev.id, m->id);
	}
	rand_set(NULL, NULL);
	chat_clear(&before);
}

/* A conversation with HELLO accepted. */
static void conv_hello(struct conv *c)
{
	struct sent h;

	conv_open(c);
	seal_hello(&c->a, &h);
	deliver(&c->b, &h, E2E_OK);
}

/* The bound of one chain: 1000 keys kept by one message, no more. */
static void test_bound_same_chain(void **state)
{
	static struct sent m[1003];
	struct conv c;

	(void)state;
	conv_hello(&c);
	for (int i = 0; i < 1003; i++)
		seal_text(&c.a, &m[i]);
	/* m[i] is at n = i + 1; bob's Nr is 1 */
	deliver(&c.b, &m[1001], E2E_ERR_TOO_FAR);	/* 1001 ahead */
	deliver(&c.b, &m[1002], E2E_ERR_TOO_FAR);
	deliver(&c.b, &m[1000], E2E_OK);		/* 1000 ahead */
	assert_int_equal(c.b.sk.n, 1000);
	deliver(&c.b, &m[1001], E2E_OK);
	deliver(&c.b, &m[1002], E2E_OK);
	for (int i = 999; i >= 0; i--)
		deliver(&c.b, &m[i], E2E_OK);		/* all late, all kept */
	assert_int_equal(c.b.sk.n, 0);
	deliver(&c.b, &m[500], E2E_ERR_DUPLICATE);	/* each key once */
	deliver(&c.b, &m[1002], E2E_ERR_DUPLICATE);
	conv_clear(&c);
}

/* The bounds at a DH step: the rest of the old chain and the gap of the
 * new one are each bounded by 1000. */
static void test_bound_at_step(void **state)
{
	static struct sent old[1002], fresh[1002];
	struct sent b1;
	struct conv c;

	(void)state;
	/* the old chain: alice's first, of which bob has HELLO only */
	conv_hello(&c);
	for (int i = 0; i < 1001; i++)
		seal_text(&c.a, &old[i]);	/* n = 1 .. 1001 */
	seal_text(&c.b, &b1);
	deliver(&c.a, &b1, E2E_OK);		/* alice steps: pn = 1002 */
	seal_text(&c.a, &fresh[0]);
	/* pn - Nr = 1002 - 1 = 1001 */
	deliver(&c.b, &fresh[0], E2E_ERR_TOO_FAR);
	deliver(&c.b, &old[0], E2E_OK);		/* now pn - Nr = 1000 */
	deliver(&c.b, &fresh[0], E2E_OK);
	assert_int_equal(c.b.sk.n, 1000);
	deliver(&c.b, &old[1000], E2E_OK);	/* kept at the step */
	deliver(&c.b, &old[1], E2E_OK);
	assert_int_equal(c.b.sk.n, 998);
	conv_clear(&c);

	/* the new chain: a first message more than 1000 in */
	conv_hello(&c);
	seal_text(&c.b, &b1);
	deliver(&c.a, &b1, E2E_OK);
	for (int i = 0; i < 1002; i++)
		seal_text(&c.a, &fresh[i]);	/* n = 0 .. 1001 */
	deliver(&c.b, &fresh[1001], E2E_ERR_TOO_FAR);
	deliver(&c.b, &fresh[1000], E2E_OK);
	assert_int_equal(c.b.sk.n, 1000);
	deliver(&c.b, &fresh[1001], E2E_OK);
	conv_clear(&c);
}

/* At most 2000 kept, the oldest dropped first. */
static void test_bound_kept(void **state)
{
	static struct sent a1[1002], a2[1002], a3[5];
	struct sent b1, b2;
	struct conv c;

	(void)state;
	conv_hello(&c);
	for (int i = 0; i < 1001; i++)
		seal_text(&c.a, &a1[i]);	/* n = 1 .. 1001 */
	deliver(&c.b, &a1[1000], E2E_OK);	/* keeps n = 1 .. 1000 */
	assert_int_equal(c.b.sk.n, 1000);
	seal_text(&c.b, &b1);
	deliver(&c.a, &b1, E2E_OK);
	for (int i = 0; i < 1001; i++)
		seal_text(&c.a, &a2[i]);	/* n = 0 .. 1000 */
	deliver(&c.b, &a2[1000], E2E_OK);	/* keeps 1000 more */
	assert_int_equal(c.b.sk.n, 2000);
	seal_text(&c.b, &b2);
	deliver(&c.a, &b2, E2E_OK);
	for (int i = 0; i < 5; i++)
		seal_text(&c.a, &a3[i]);
	deliver(&c.b, &a3[4], E2E_OK);		/* 4 more: 4 oldest dropped */
	assert_int_equal(c.b.sk.n, E2E_MAX_KEPT);
	for (int i = 0; i < 4; i++)	/* a1[0..3]: dropped, an old chain */
		deliver(&c.b, &a1[i], E2E_ERR_ORDER);
	deliver(&c.b, &a1[4], E2E_OK);		/* the next oldest is there */
	deliver(&c.b, &a2[0], E2E_OK);
	deliver(&c.b, &a3[0], E2E_OK);
	assert_int_equal(c.b.sk.n, E2E_MAX_KEPT - 3);
	conv_clear(&c);
}

/* Duplicates, reflection, tampering: refused, the conversation goes on. */
static void test_refusals_not_fatal(void **state)
{
	struct sent m[4], bad;
	struct conv c;

	(void)state;
	conv_hello(&c);
	for (int i = 0; i < 4; i++)
		seal_text(&c.a, &m[i]);
	deliver(&c.b, &m[0], E2E_OK);
	deliver(&c.b, &m[0], E2E_ERR_DUPLICATE);
	deliver(&c.a, &m[1], E2E_ERR_DECRYPT);	/* reflected to its sender */
	for (size_t i = 0; i < m[1].len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			bad = m[1];
			bad.e2e[i] ^= (uint8_t)(1u << bit);
			deliver(&c.b, &bad, E2E_ERR_ANY);
		}
	}
	bad = m[1];
	bad.len = E2E_HEADER_LEN + AEAD_TAG_LEN - 1;
	deliver(&c.b, &bad, E2E_ERR_MALFORMED);
	deliver(&c.b, &m[3], E2E_OK);
	deliver(&c.b, &m[1], E2E_OK);
	deliver(&c.b, &m[2], E2E_OK);
	deliver(&c.b, &m[2], E2E_ERR_DUPLICATE);
	assert_int_equal(c.b.rx_high, 4);
	conv_clear(&c);
}

/* Forge a plaintext with s's ratchet (bypassing the chat layer) and expect
 * r to refuse it, unchanged; s is rewound. */
static void forge(struct chat *s, struct chat *r, const uint8_t *pt,
		  size_t len, enum e2e_result res, bool end_record)
{
	struct ratchet saved = s->r;
	uint8_t out[E2E_MAX], back[CHAT_PT_MAX];
	struct chat_message ev;
	struct chat before;
	size_t n;

	assert_int_equal(chat_copy(&before, r), 0);
	assert_int_equal(ratchet_encrypt(&s->r, pt, len, out, &n), E2E_OK);
	draws = 0;
	rand_set(counting_source, NULL);
	assert_int_equal(end_record ? chat_open_end(r, out, n, back, &ev)
				    : chat_open(r, out, n, back, &ev), res);
	assert_int_equal(draws, 0);
	rand_set(NULL, NULL);
	if (res != E2E_OK) {
		assert_same_chat(r, &before);
		s->r = saved;
	}
	ratchet_clear(&saved);
	chat_clear(&before);
}

static void test_hello_rules(void **state)
{
	static const uint8_t text1[] = { 1, 0, 0, 0, 1, 0, 1, 'x' };
	static const uint8_t hello[] = { 3 };
	struct sent h, t;
	struct conv c;

	(void)state;
	conv_open(&c);
	/* B refuses anything before HELLO, keeps nothing, draws nothing;
	 * HELLO and then the text are still accepted */
	seal_hello(&c.a, &h);
	seal_text(&c.a, &t);
	deliver(&c.b, &t, E2E_ERR_PROTOCOL);
	assert_int_equal(c.b.sk.n, 0);
	assert_false(c.b.r.has_ckr);
	deliver(&c.b, &h, E2E_OK);
	deliver(&c.b, &t, E2E_OK);
	/* a second HELLO, a HELLO to A */
	forge(&c.a, &c.b, hello, 1, E2E_ERR_PROTOCOL, false);
	forge(&c.b, &c.a, hello, 1, E2E_ERR_PROTOCOL, false);
	forge(&c.a, &c.b, text1, sizeof(text1), E2E_ERR_PROTOCOL, true);
	conv_clear(&c);
}

static void test_text_ids(void **state)
{
	static const uint8_t id0[] = { 1, 0, 0, 0, 0, 0, 1, 'x' };
	static const uint8_t big[] = { 1, 0xff, 0xff, 0xff, 0xfe, 0, 1, 'x' };
	uint8_t out[E2E_MSG_MAX];
	struct sent m[3];
	struct conv c;
	size_t len;

	(void)state;
	conv_hello(&c);
	forge(&c.a, &c.b, id0, sizeof(id0), E2E_ERR_PROTOCOL, false);
	for (int i = 0; i < 3; i++)
		seal_text(&c.a, &m[i]);
	deliver(&c.b, &m[2], E2E_OK);
	assert_int_equal(c.b.rx_high, 3);
	/* receipts for any id up to the highest received */
	assert_int_equal(chat_seal_receipt(&c.b, 3, out, &len), E2E_OK);
	assert_int_equal(chat_seal_receipt(&c.b, 1, out, &len), E2E_OK);
	assert_int_equal(chat_seal_receipt(&c.b, 4, out, &len), E2E_ERR_STATE);
	assert_int_equal(chat_seal_receipt(&c.b, 0, out, &len), E2E_ERR_STATE);
	deliver(&c.b, &m[0], E2E_OK);
	assert_int_equal(c.b.rx_high, 3);
	/* any id: a peer's numbering is its own business */
	forge(&c.a, &c.b, big, sizeof(big), E2E_OK, false);
	assert_int_equal(c.b.rx_high, 0xfffffffe);
	deliver(&c.b, &m[1], E2E_OK);
	conv_clear(&c);
}

static void test_kind_end(void **state)
{
	static const uint8_t end_extra[] = { 4, 0 };
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	struct chat_message ev;
	struct sent e;
	struct chat v1;
	struct conv c;
	size_t len;

	(void)state;
	conv_open(&c);
	/* B cannot seal END before it may send */
	assert_int_equal(chat_seal_end(&c.b, out, &len), E2E_ERR_STATE);
	conv_clear(&c);
	conv_hello(&c);
	assert_int_equal(chat_seal_end(&c.a, e.e2e, &e.len), E2E_OK);
	e.id = 0;
	deliver(&c.b, &e, E2E_ERR_PROTOCOL);	/* not in a MESSAGE */
	assert_int_equal(chat_open_end(&c.b, e.e2e, e.len, pt, &ev), E2E_OK);
	assert_int_equal(ev.kind, CHAT_END);
	assert_int_equal(chat_open_end(&c.b, e.e2e, e.len, pt, &ev),
			 E2E_ERR_DUPLICATE);
	forge(&c.a, &c.b, end_extra, sizeof(end_extra), E2E_ERR_MALFORMED, true);
	/* and a chat of version 1 rules has none of it */
	memset(&v1, 0, sizeof(v1));
	v1.r = c.a.r;
	v1.initiator = true;
	v1.hello_done = true;
	v1.next_tx_id = 1;
	assert_int_equal(chat_seal_end(&v1, out, &len), E2E_ERR_STATE);
	assert_int_equal(chat_open_end(&v1, e.e2e, e.len, pt, &ev),
			 E2E_ERR_STATE);
	memset(&v1, 0, sizeof(v1));
	conv_clear(&c);
}

/* A dropped key and a duplicate are refused; a gap of one is not. */
static void test_bare_ratchet(void **state)
{
	uint8_t out[3][128], back[128];
	size_t len[3], n;
	struct skipped_keys sk = { 0 };
	struct conv c;

	(void)state;
	conv_open(&c);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratchet_encrypt(&c.a.r, (const uint8_t *)"hi",
						 2, out[i], &len[i]), E2E_OK);
	assert_int_equal(ratchet_decrypt_v2(&c.b.r, &sk, out[2], len[2], back,
					    &n), E2E_OK);
	assert_int_equal(n, 2);
	assert_int_equal(sk.n, 2);
	assert_int_equal(ratchet_decrypt_v2(&c.b.r, &sk, out[0], len[0], back,
					    &n), E2E_OK);
	assert_int_equal(ratchet_decrypt_v2(&c.b.r, &sk, out[0], len[0], back,
					    &n), E2E_ERR_DUPLICATE);
	assert_int_equal(n, 0);
	assert_int_equal(ratchet_decrypt_v2(&c.b.r, &sk, out[1], 10, back, &n),
			 E2E_ERR_MALFORMED);
	assert_int_equal(ratchet_decrypt_v2(&c.b.r, &sk, out[1], len[1], back,
					    &n), E2E_OK);
	assert_int_equal(sk.n, 0);
	skipped_keys_clear(&sk);
	conv_clear(&c);
}

/* chat_copy is deep: the copy keeps its keys when the original drops its. */
static void test_copy(void **state)
{
	struct sent m[3];
	struct chat copy;
	struct conv c;

	(void)state;
	conv_hello(&c);
	for (int i = 0; i < 3; i++)
		seal_text(&c.a, &m[i]);
	deliver(&c.b, &m[2], E2E_OK);
	assert_int_equal(chat_copy(&copy, &c.b), 0);
	assert_ptr_not_equal(copy.sk.k, c.b.sk.k);
	deliver(&c.b, &m[0], E2E_OK);
	deliver(&c.b, &m[1], E2E_OK);
	assert_int_equal(c.b.sk.n, 0);
	assert_int_equal(copy.sk.n, 2);
	deliver(&copy, &m[1], E2E_OK);
	chat_clear(&copy);
	conv_clear(&c);
}

/*
 * The persisting rules, in process. alice "saves" (chat_copy) after each
 * seal, as rule 1 asks, and "crashes" at random points back to her last
 * save; bob saves only now and then (rule 2 lets him: he acknowledges
 * nothing here) and crashes back to his save too, after which the
 * messages he had accepted since are delivered again (they were never
 * acknowledged, so a server would). No (ratchet key, n) header, hence no
 * (key, nonce), is ever sealed twice; every message is accepted, again
 * after a crash of bob's; lost ones leave gaps that the kept keys absorb.
 */
#define CRASH_MSGS 400

static bool header_seen(uint8_t (*seen)[E2E_HEADER_LEN], size_t n,
			const uint8_t *h)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(seen[i], h, X25519_LEN) == 0 &&
		    memcmp(seen[i] + X25519_LEN + 4, h + X25519_LEN + 4, 4) == 0)
			return true;
	return false;
}

struct crash {
	struct conv c;
	struct chat saved_a, saved_b;
	struct sent since[CRASH_MSGS];	/* accepted by bob since his save */
	size_t nsince;
	enum e2e_result want;
};

static void save(struct chat *saved, const struct chat *c)
{
	chat_clear(saved);
	assert_int_equal(chat_copy(saved, c), 0);
}

static void restore(struct chat *c, const struct chat *saved)
{
	chat_clear(c);
	assert_int_equal(chat_copy(c, saved), 0);
}

static void to_bob(struct crash *k, const struct sent *m)
{
	deliver(&k->c.b, m, k->want);
	k->since[k->nsince++] = *m;
}

static void bob_crashes(struct crash *k)
{
	restore(&k->c.b, &k->saved_b);
	for (size_t i = 0; i < k->nsince; i++)
		deliver(&k->c.b, &k->since[i], k->want);
}

static void bob_answers(struct crash *k)
{
	struct sent m;

	seal_text(&k->c.b, &m);
	save(&k->saved_b, &k->c.b);	/* rule 1 */
	k->nsince = 0;
	deliver(&k->c.a, &m, E2E_OK);
	save(&k->saved_a, &k->c.a);
}

static size_t crash_run(bool obey_rule_1)
{
	static uint8_t seen[CRASH_MSGS][E2E_HEADER_LEN];
	static struct crash k;
	struct sent m;
	size_t nseen = 0, reused = 0;
	uint64_t x = 88172645463325252ull;

	memset(&k, 0, sizeof(k));
	k.want = obey_rule_1 ? E2E_OK : E2E_ANY_RESULT;
	conv_open(&k.c);
	seal_hello(&k.c.a, &m);
	save(&k.saved_a, &k.c.a);
	deliver(&k.c.b, &m, E2E_OK);
	save(&k.saved_b, &k.c.b);
	for (int i = 0; i < CRASH_MSGS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (i % 10 == 9) {
			bob_answers(&k);
			continue;
		}
		seal_text(&k.c.a, &m);
		if (obey_rule_1 || x % 4 == 0)
			save(&k.saved_a, &k.c.a);
		if (header_seen(seen, nseen, m.e2e))
			reused++;
		memcpy(seen[nseen++], m.e2e, E2E_HEADER_LEN);
		if (x % 5 != 0)		/* lost otherwise */
			to_bob(&k, &m);
		if (x % 7 == 0)		/* alice crashes */
			restore(&k.c.a, &k.saved_a);
		if (x % 11 == 0)	/* bob crashes */
			bob_crashes(&k);
		if (x % 3 == 0) {	/* bob saves */
			save(&k.saved_b, &k.c.b);
			k.nsince = 0;
		}
	}
	chat_clear(&k.saved_a);
	chat_clear(&k.saved_b);
	conv_clear(&k.c);
	return reused;
}

static void test_persisting_rules(void **state)
{
	(void)state;
	assert_int_equal(crash_run(true), 0);
	/* and the check can see a reuse: a sender that does not save before
	 * sending seals the same header twice after a crash */
	assert_true(crash_run(false) > 0);
}

static int group_setup(void **state)
{
	uint8_t seed[32];

	(void)state;
	if (crypto_init() < 0)
		return -1;
	V = tu_load_vectors("v2.json");
	C = tu_get(V, "conversation");
	tu_hex_into(C, "inputs.alice_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &ka) < 0)
		return -1;
	tu_hex_into(C, "inputs.bob_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &kb) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	key_unref(ka);
	key_unref(kb);
	json_decref(V);
	tu_rand_reset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_story),
		cmocka_unit_test(test_bound_same_chain),
		cmocka_unit_test(test_bound_at_step),
		cmocka_unit_test(test_bound_kept),
		cmocka_unit_test(test_refusals_not_fatal),
		cmocka_unit_test(test_hello_rules),
		cmocka_unit_test(test_text_ids),
		cmocka_unit_test(test_kind_end),
		cmocka_unit_test(test_bare_ratchet),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_persisting_rules),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
