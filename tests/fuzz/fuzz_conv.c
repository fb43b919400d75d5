/* fuzz_conv.c - a conversation's chat messages (secmsg-protocol(7),
 * VERSION 2, "Chat messages in a conversation") through live ratchets.
 *
 * At start alice and bob (the keys of tests/vectors/e2e.json) run the
 * exchange with the fuzzers' counter randomness and make a conversation
 * (chat_init_v2); every input starts from copies of the two chats. The
 * input is a program of operations, one byte each plus arguments: bits
 * 0-2 the operation, bit 3 the direction (alice to bob, or back):
 *   0, 1  seal (bits 4-5: TEXT, RECEIPT, END, a second HELLO; bit 7 makes
 *         a TEXT longer); alice's first is HELLO;
 *   2     deliver a sealed message (index from the next byte), in the
 *         record its kind belongs in (END in END, the rest in MESSAGE);
 *   3     deliver it to its own sender (reflection);
 *   4     deliver a changed copy (a flipped byte, a cut, extra bytes);
 *   5     deliver raw input bytes, in a MESSAGE or an END record;
 *   6     deliver it in the wrong record (END for a MESSAGE kind, and
 *         back);
 *   7     deliver everything not yet accepted, last first.
 *
 * Properties (the page's rules, no bound is reached with 16 messages a
 * direction): a genuine message is accepted exactly once, in any order,
 * as soon as the receiver's HELLO rule lets it (bob takes nothing before
 * HELLO), and yields what was sealed; anything else (a second delivery,
 * a reflection, any change, a wrong record, forged bytes) is refused and
 * leaves the receiving chat exactly as it was, kept keys included; seal
 * calls fail only where the rules say they must.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "e2e.h"
#include "fuzz_common.h"
#include "keys.h"
#include "msg.h"
#include "vectors.h"

#define MAX_SENT 16
#define MAX_OPS 64

static sm_key *alice_key, *bob_key;
static struct chat base[2];	/* 0: alice (initiator), 1: bob */

struct sent {
	uint8_t e2e[E2E_MSG_MAX];
	size_t len;
	uint8_t kind;
	uint32_t id;
	uint8_t text[CHAT_TEXT_MAX + 256];
	size_t text_len;
	bool accepted;
};

static struct {
	struct chat c[2];
	struct sent sent[2][MAX_SENT];
	size_t n[2];
} S;

static void exchange(void)
{
	struct e2e_initiator a;
	struct e2e_responder b;
	struct ratchet ra, rb;
	uint8_t nonce_b[32], share_b[32], sig_a[SIG_MAX_LEN];
	size_t sig_a_len;

	fz_rand_reset();
	FZ_CHECK(e2e_initiator_start(&a, V_ALICE, V_BOB) == E2E_OK);
	FZ_CHECK(e2e_responder_accept(&b, V_BOB, V_ALICE, a.nonce_a, a.share_a,
				      bob_key, nonce_b, share_b) == E2E_OK);
	FZ_CHECK(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b,
				      b.sig_b_len, bob_key, alice_key, sig_a,
				      &sig_a_len, &ra) == E2E_OK);
	FZ_CHECK(e2e_responder_finish(&b, sig_a, sig_a_len, alice_key, &rb) ==
		 E2E_OK);
	chat_init_v2(&base[0], &ra, true);
	chat_init_v2(&base[1], &rb, false);
	e2e_initiator_clear(&a);
	e2e_responder_clear(&b);
}

/* Two chats hold the same state, kept keys included. */
static bool same(const struct chat *a, const struct chat *b)
{
	const struct ratchet *x = &a->r, *y = &b->r;

	return memcmp(x->rk, y->rk, 32) == 0 && memcmp(x->cks, y->cks, 32) == 0 &&
	       memcmp(x->ckr, y->ckr, 32) == 0 &&
	       memcmp(x->dhs_priv, y->dhs_priv, 32) == 0 &&
	       memcmp(x->dhs_pub, y->dhs_pub, 32) == 0 &&
	       memcmp(x->dhr, y->dhr, 32) == 0 && x->has_cks == y->has_cks &&
	       x->has_ckr == y->has_ckr && x->has_dhr == y->has_dhr &&
	       x->ns == y->ns && x->nr == y->nr && x->pn == y->pn &&
	       a->hello_done == b->hello_done &&
	       a->next_tx_id == b->next_tx_id && a->rx_high == b->rx_high &&
	       a->sk.n == b->sk.n &&
	       (a->sk.n == 0 ||
		memcmp(a->sk.k, b->sk.k, a->sk.n * sizeof(*a->sk.k)) == 0);
}

/* ---- sealing ---- */

static void fill_text(uint8_t *t, size_t len, uint8_t salt)
{
	for (size_t i = 0; i < len; i++)
		t[i] = (uint8_t)(i * 7 + salt);
}

static enum e2e_result seal_kind(struct fz_in *in, struct chat *c,
				 struct sent *m, uint8_t op)
{
	enum e2e_result r;
	int sub = (op >> 4) & 3;

	if (sub == 0) {
		size_t len = fz_u8(in);
		uint32_t want = c->next_tx_id;

		if (op & 0x80)
			len *= 17;	/* up to 4335: past the limit too */
		fill_text(m->text, len, (uint8_t)(want + 3));
		r = chat_seal_text(c, (const char *)m->text, len, &m->id,
				   m->e2e, &m->len);
		FZ_CHECK(r == (len <= CHAT_TEXT_MAX ? E2E_OK :
			       E2E_ERR_TOO_LARGE));
		FZ_CHECK(r != E2E_OK || m->id == want);
		m->kind = CHAT_TEXT;
		m->text_len = len;
	} else if (sub == 1) {
		uint32_t id = fz_u8(in);

		r = chat_seal_receipt(c, id, m->e2e, &m->len);
		FZ_CHECK(r == (id >= 1 && id <= c->rx_high ? E2E_OK :
			       E2E_ERR_STATE));
		m->kind = CHAT_RECEIPT;
		m->id = id;
	} else if (sub == 2) {
		r = chat_seal_end(c, m->e2e, &m->len);
		FZ_CHECK(r == E2E_OK);
		m->kind = CHAT_END;
	} else {
		r = chat_seal_hello(c, m->e2e, &m->len);
		FZ_CHECK(r == E2E_ERR_STATE);
	}
	return r;
}

static void op_seal(struct fz_in *in, int d, uint8_t op)
{
	struct chat *c = &S.c[d];
	struct sent *m;
	enum e2e_result r;

	if (S.n[d] == MAX_SENT)
		return;
	m = &S.sent[d][S.n[d]];
	memset(m, 0, sizeof(*m));
	if (!chat_can_send(c)) {
		uint32_t id;

		FZ_CHECK(chat_seal_text(c, "x", 1, &id, m->e2e, &m->len) ==
			 E2E_ERR_STATE);
		FZ_CHECK(chat_seal_end(c, m->e2e, &m->len) == E2E_ERR_STATE);
		r = chat_seal_hello(c, m->e2e, &m->len);
		FZ_CHECK(r == (d == 0 ? E2E_OK : E2E_ERR_STATE));
		m->kind = CHAT_HELLO;
	} else {
		r = seal_kind(in, c, m, op);
	}
	if (r == E2E_OK) {
		FZ_CHECK(m->len > E2E_HEADER_LEN + AEAD_TAG_LEN &&
			 m->len <= E2E_MSG_MAX);
		S.n[d]++;
	} else {
		FZ_CHECK(m->len == 0);
	}
}

/* ---- delivering ---- */

static enum e2e_result open_in(int to, const uint8_t *e2e, size_t len,
			       bool end, uint8_t *pt, struct chat_message *ev)
{
	return end ? chat_open_end(&S.c[to], e2e, len, pt, ev)
		   : chat_open(&S.c[to], e2e, len, pt, ev);
}

/* Give e2e to chat to: it must be refused, and change nothing. */
static void expect_refused(int to, const uint8_t *e2e, size_t len, bool end)
{
	static uint8_t pt[CHAT_PT_MAX];
	struct chat before;
	struct chat_message ev;

	FZ_CHECK(chat_copy(&before, &S.c[to]) == 0);
	FZ_CHECK(open_in(to, e2e, len, end, pt, &ev) != E2E_OK);
	FZ_CHECK(same(&before, &S.c[to]));
	FZ_CHECK(ev.kind == 0 && ev.id == 0 && ev.text == NULL);
	chat_clear(&before);
}

/* May the receiver of direction d take m now? (bob: HELLO first.) */
static bool acceptable(int d, const struct sent *m)
{
	const struct chat *rcv = &S.c[!d];

	if (m->accepted)
		return false;
	return rcv->hello_done || m->kind == CHAT_HELLO;
}

static void check_event(const struct sent *m, const struct chat_message *ev,
			const uint8_t *pt)
{
	FZ_CHECK(ev->kind == m->kind);
	if (m->kind == CHAT_TEXT) {
		FZ_CHECK(ev->id == m->id && ev->text_len == m->text_len);
		FZ_CHECK(ev->text_len == 0 ||
			 (ev->text >= pt && ev->text + ev->text_len <=
			  pt + CHAT_PT_MAX &&
			  memcmp(ev->text, m->text, m->text_len) == 0));
	} else {
		FZ_CHECK(ev->id == m->id && ev->text == NULL);
	}
}

/* Deliver message i of direction d to its receiver, in its record. */
static void deliver(int d, size_t i)
{
	static uint8_t pt[CHAT_PT_MAX];
	struct sent *m = &S.sent[d][i];
	bool end = m->kind == CHAT_END;
	struct chat_message ev;

	if (!acceptable(d, m)) {
		expect_refused(!d, m->e2e, m->len, end);
		return;
	}
	FZ_CHECK(open_in(!d, m->e2e, m->len, end, pt, &ev) == E2E_OK);
	check_event(m, &ev, pt);
	m->accepted = true;
	if (m->kind == CHAT_HELLO)
		FZ_CHECK(chat_can_send(&S.c[!d]));
}

static void op_mutate(struct fz_in *in, int d, size_t i)
{
	static uint8_t buf[E2E_MAX + 64];
	const struct sent *m = &S.sent[d][i];
	size_t len;

	memcpy(buf, m->e2e, m->len);
	len = fz_mutate(in, buf, m->len);
	expect_refused(!d, buf, len, m->kind == CHAT_END);
}

/* Raw bytes: refused, unless they are a genuine message the receiver
 * may take now, in its own record. */
static void op_raw(struct fz_in *in, int d, uint8_t op)
{
	static uint8_t pt[CHAT_PT_MAX];
	size_t want = (op & 0x80) ? fz_u16(in) % (E2E_MAX + 64) : fz_u8(in);
	bool end = op & 0x40;
	size_t got;
	const uint8_t *p = fz_bytes(in, want, &got);
	struct chat before;
	struct chat_message ev;

	FZ_CHECK(chat_copy(&before, &S.c[!d]) == 0);
	if (open_in(!d, p, got, end, pt, &ev) != E2E_OK) {
		FZ_CHECK(same(&before, &S.c[!d]));
		chat_clear(&before);
		return;
	}
	chat_clear(&before);
	for (size_t i = 0; i < S.n[d]; i++) {
		struct sent *m = &S.sent[d][i];

		if (got == m->len && memcmp(p, m->e2e, got) == 0) {
			FZ_CHECK(acceptable(d, m));
			FZ_CHECK(end == (m->kind == CHAT_END));
			check_event(m, &ev, pt);
			m->accepted = true;
			return;
		}
	}
	FZ_CHECK(!"forged bytes were accepted");
}

static void run_op(struct fz_in *in, uint8_t op, int d)
{
	size_t i = fz_u8(in) % S.n[d];
	const struct sent *m = &S.sent[d][i];

	switch (op & 7) {
	case 2:
		deliver(d, i);
		break;
	case 3:
		expect_refused(d, m->e2e, m->len, m->kind == CHAT_END);
		break;
	case 4:
		op_mutate(in, d, i);
		break;
	case 6:
		expect_refused(!d, m->e2e, m->len, m->kind != CHAT_END);
		break;
	default:
		for (size_t k = S.n[d]; k-- > 0;)
			deliver(d, k);
		break;
	}
}

static void run_program(struct fz_in *in)
{
	for (int k = 0; k < MAX_OPS && fz_in_left(in) > 0; k++) {
		uint8_t op = fz_u8(in);
		int d = (op >> 3) & 1;

		if ((op & 7) <= 1)
			op_seal(in, d, op);
		else if ((op & 7) == 5)
			op_raw(in, d, op);
		else if (S.n[d] > 0)
			run_op(in, op, d);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in;

	fz_rand_reset();
	fz_in_init(&in, data, size);
	memset(S.n, 0, sizeof(S.n));
	FZ_CHECK(chat_copy(&S.c[0], &base[0]) == 0);
	FZ_CHECK(chat_copy(&S.c[1], &base[1]) == 0);
	run_program(&in);
	chat_clear(&S.c[0]);
	chat_clear(&S.c[1]);
	return 0;
}

/* ---- seeds ---- */

static void seeds(void)
{
	/* HELLO; three TEXTs; the last first, then the others, then again;
	 * bob answers and ends; alice gets them backwards */
	static const uint8_t story[] = {
		0x00, 0x00, 5, 0x00, 9, 0x00, 200, 0x02, 0, 0x02, 3, 0x02, 1,
		0x02, 2, 0x02, 2, 0x08, 4, 0x18, 3, 0x28, 0x0f, 0x0a, 2,
	};
	/* the same with reflections, changes, wrong records, raw bytes */
	static const uint8_t hostile[] = {
		0x00, 0x00, 7, 0x00, 9, 0x02, 2, 0x03, 1, 0x04, 1, 0, 0, 40,
		0xff, 0x04, 2, 1, 0, 30, 0x06, 0, 0x02, 0, 0x20, 0x06, 3,
		0x05, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 0x07, 0x08, 4, 0x0b, 0, 0x0e, 0, 0x0f,
	};

	fz_seed("story", story, sizeof(story));
	fz_seed("hostile", hostile, sizeof(hostile));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	FZ_CHECK(key_from_ed25519_seed(v_alice_seed, &alice_key) == 0);
	FZ_CHECK(key_from_ed25519_seed(v_bob_seed, &bob_key) == 0);
	exchange();
	fz_maybe_write_seeds(seeds);
	return 0;
}
