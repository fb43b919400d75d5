/* fuzz_e2e.c - the end-to-end path (§6, §7) through a live ratchet.
 *
 * At start alice and bob (the keys of tests/vectors/e2e.json) run the
 * exchange with the fuzzers' counter randomness; every input starts from
 * copies of the two chats so made (the counter restarts too, so an input
 * always does the same). The first byte picks a mode:
 *
 *   0, 1  a program of chat operations (below) on the two live chats;
 *   2     bob's side of the exchange: e2e_responder_accept with nonce_a
 *         and share_a from the input, then e2e_responder_finish with sig_a
 *         from the input;
 *   3     alice's side: e2e_initiator_finish with nonce_b, share_b, sig_b
 *         and (bit 2 of the mode byte) bob's real key or an SPKI from the
 *         input.
 *
 * A program is a list of operations, one byte each plus arguments: bits
 * 0-2 the operation, bit 3 the direction (alice to bob, or back):
 *   0, 1  seal (bits 4-5: TEXT, TEXT, RECEIPT, a second HELLO; bit 7
 *         makes a TEXT longer); alice's first is HELLO;
 *   2     deliver a sealed message (index from the next byte);
 *   3     deliver it to its own sender (reflection);
 *   4     deliver a mutated copy (a flipped byte, a cut, extra bytes);
 *   5     deliver raw input bytes as the e2e field;
 *   6     deliver one message's header with another's body;
 *   7     deliver everything pending, in order.
 *
 * Properties: the next message of a direction, unmodified, is accepted
 * and yields what was sealed; anything else (replay, gap, reorder,
 * reflection, any change, a header spliced onto another body, forged
 * bytes) is refused and leaves the receiving chat exactly as it was;
 * seal calls fail only where §7 says they must. In the exchange modes
 * only the genuine values are accepted.
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

#define MAX_SENT 12
#define MAX_OPS 64

static sm_key *alice_key, *bob_key;
static struct chat base[2];	/* 0: alice (initiator), 1: bob */

/* The exchange's genuine values, for modes 2 and 3 and the seeds. */
static struct {
	uint8_t nonce_a[32], share_a[32], nonce_b[32], share_b[32];
	uint8_t sig_a[SIG_MAX_LEN], sig_b[SIG_MAX_LEN];
	size_t sig_a_len, sig_b_len;
} X;

struct sent {
	uint8_t e2e[E2E_MSG_MAX];
	size_t len;
	uint8_t kind;
	uint32_t id;
	uint8_t text[CHAT_TEXT_MAX + 256];
	size_t text_len;
};

/* Messages sealed in each direction (0: alice to bob), in order, and how
 * many of them the receiver accepted. */
static struct {
	struct chat c[2];
	struct sent sent[2][MAX_SENT];
	size_t n[2], acc[2];
} S;

/* ---- the exchange, once ---- */

static void exchange(void)
{
	struct e2e_initiator a;
	struct e2e_responder b;
	struct ratchet ra, rb;

	fz_rand_reset();
	FZ_CHECK(e2e_initiator_start(&a, V_ALICE, V_BOB) == E2E_OK);
	memcpy(X.nonce_a, a.nonce_a, 32);
	memcpy(X.share_a, a.share_a, 32);
	FZ_CHECK(e2e_responder_accept(&b, V_BOB, V_ALICE, a.nonce_a, a.share_a,
				      bob_key, X.nonce_b, X.share_b) == E2E_OK);
	memcpy(X.sig_b, b.sig_b, b.sig_b_len);
	X.sig_b_len = b.sig_b_len;
	FZ_CHECK(e2e_initiator_finish(&a, X.nonce_b, X.share_b, X.sig_b,
				      X.sig_b_len, bob_key, alice_key, X.sig_a,
				      &X.sig_a_len, &ra) == E2E_OK);
	FZ_CHECK(e2e_responder_finish(&b, X.sig_a, X.sig_a_len, alice_key,
				      &rb) == E2E_OK);
	chat_init(&base[0], &ra, true);
	chat_init(&base[1], &rb, false);
	e2e_initiator_clear(&a);
	e2e_responder_clear(&b);
}

/* ---- chat programs ---- */

static void fill_text(uint8_t *t, size_t len, uint8_t salt)
{
	for (size_t i = 0; i < len; i++)
		t[i] = (uint8_t)(i * 7 + salt);
}

static void op_seal(struct fz_in *in, int d, uint8_t op)
{
	struct chat *c = &S.c[d];
	struct sent *m;
	enum e2e_result r;
	int sub = (op >> 4) & 3;

	if (S.n[d] == MAX_SENT)
		return;
	m = &S.sent[d][S.n[d]];
	memset(m, 0, sizeof(*m));
	if (!chat_can_send(c)) {
		/* Only alice may start, with HELLO; TEXT is refused first. */
		uint32_t id;

		FZ_CHECK(chat_seal_text(c, "x", 1, &id, m->e2e, &m->len) ==
			 E2E_ERR_STATE);
		r = chat_seal_hello(c, m->e2e, &m->len);
		FZ_CHECK(r == (d == 0 ? E2E_OK : E2E_ERR_STATE));
		m->kind = CHAT_HELLO;
	} else if (sub < 2) {
		size_t len = fz_u8(in);
		uint32_t want = c->next_tx_id;

		if (op & 0x80)
			len *= 17;	/* up to 4335: past the limit too */
		fill_text(m->text, len, (uint8_t)S.n[d]);
		r = chat_seal_text(c, (const char *)m->text, len, &m->id,
				   m->e2e, &m->len);
		FZ_CHECK(r == (len <= CHAT_TEXT_MAX ? E2E_OK :
			       E2E_ERR_TOO_LARGE));
		FZ_CHECK(r != E2E_OK || m->id == want);
		m->kind = CHAT_TEXT;
		m->text_len = len;
	} else if (sub == 2) {
		uint32_t id = fz_u8(in);

		r = chat_seal_receipt(c, id, m->e2e, &m->len);
		FZ_CHECK(r == (id >= 1 && id < c->next_rx_id ? E2E_OK :
			       E2E_ERR_STATE));
		m->kind = CHAT_RECEIPT;
		m->id = id;
	} else {
		r = chat_seal_hello(c, m->e2e, &m->len);
		FZ_CHECK(r == E2E_ERR_STATE);
	}
	if (r == E2E_OK) {
		FZ_CHECK(m->len > E2E_HEADER_LEN + AEAD_TAG_LEN &&
			 m->len <= E2E_MSG_MAX);
		S.n[d]++;
	} else {
		FZ_CHECK(m->len == 0);
	}
}

/* Give e2e to the chat c; it must be refused, and change nothing. */
static void expect_refused(int c, const uint8_t *e2e, size_t len)
{
	static uint8_t pt[CHAT_PT_MAX];
	struct chat before = S.c[c];
	struct chat_message ev;
	enum e2e_result r;

	r = chat_open(&S.c[c], e2e, len, pt, &ev);
	FZ_CHECK(r != E2E_OK);
	FZ_CHECK(memcmp(&before, &S.c[c], sizeof(before)) == 0);
	FZ_CHECK(ev.kind == 0 && ev.id == 0 && ev.text == NULL);
}

/* Deliver message i of direction d to its receiver. */
static void deliver(int d, size_t i)
{
	static uint8_t pt[CHAT_PT_MAX];
	const struct sent *m = &S.sent[d][i];
	struct chat *c = &S.c[!d];
	struct chat_message ev;
	enum e2e_result r;

	if (i != S.acc[d]) {
		expect_refused(!d, m->e2e, m->len);
		return;
	}
	r = chat_open(c, m->e2e, m->len, pt, &ev);
	FZ_CHECK(r == E2E_OK);
	FZ_CHECK(ev.kind == m->kind);
	if (m->kind == CHAT_TEXT) {
		FZ_CHECK(ev.id == m->id && ev.text_len == m->text_len);
		FZ_CHECK(ev.text_len == 0 ||
			 (ev.text >= pt && ev.text + ev.text_len <=
			  pt + sizeof(pt) &&
			  memcmp(ev.text, m->text, m->text_len) == 0));
	} else {
		FZ_CHECK(ev.id == m->id && ev.text == NULL);
	}
	S.acc[d]++;
	if (m->kind == CHAT_HELLO)
		FZ_CHECK(chat_can_send(c));
}

static void op_mutate(struct fz_in *in, int d, size_t i)
{
	static uint8_t buf[E2E_MAX + 64];
	const struct sent *m = &S.sent[d][i];
	size_t len = m->len;
	uint8_t how = fz_u8(in);

	memcpy(buf, m->e2e, len);
	switch (how % 3) {
	case 0: {
		size_t off = fz_u16(in) % len;
		uint8_t x = fz_u8(in);

		buf[off] ^= x ? x : 0x80;
		break;
	}
	case 1:
		len = fz_u16(in) % len;
		break;
	default: {
		size_t k = 1 + fz_u8(in) % 64;

		memset(buf + len, fz_u8(in), k);
		len += k;
		break;
	}
	}
	expect_refused(!d, buf, len);
}

static void op_raw(struct fz_in *in, int d, uint8_t op)
{
	static uint8_t pt[CHAT_PT_MAX];
	size_t want = (op & 0x80) ? fz_u16(in) % (E2E_MAX + 64) : fz_u8(in);
	size_t got;
	const uint8_t *p = fz_bytes(in, want, &got);
	int to = (op & 0x40) ? d : !d;
	struct chat before = S.c[to];
	struct chat_message ev;
	const struct sent *next;

	if (chat_open(&S.c[to], p, got, pt, &ev) != E2E_OK) {
		FZ_CHECK(memcmp(&before, &S.c[to], sizeof(before)) == 0);
		return;
	}
	/* Only the genuine next message to that chat can pass: the next
	 * one of direction !to (whose receiver is chat to). */
	d = !to;
	FZ_CHECK(S.acc[d] < S.n[d]);
	next = &S.sent[d][S.acc[d]];
	FZ_CHECK(got == next->len && memcmp(p, next->e2e, got) == 0);
	S.acc[d]++;
}

static void op_splice(struct fz_in *in, int d)
{
	static uint8_t buf[E2E_MAX];
	size_t i = fz_u8(in) % S.n[d], j = fz_u8(in) % S.n[d];
	const struct sent *h = &S.sent[d][i], *b = &S.sent[d][j];
	size_t len = b->len;

	if (i == j)
		return;
	memcpy(buf, h->e2e, E2E_HEADER_LEN);
	memcpy(buf + E2E_HEADER_LEN, b->e2e + E2E_HEADER_LEN,
	       len - E2E_HEADER_LEN);
	expect_refused(!d, buf, len);
}

static void run_program(struct fz_in *in)
{
	for (int k = 0; k < MAX_OPS && fz_in_left(in) > 0; k++) {
		uint8_t op = fz_u8(in);
		int d = (op >> 3) & 1;

		switch (op & 7) {
		case 0:
		case 1:
			op_seal(in, d, op);
			continue;
		case 5:
			op_raw(in, d, op);
			continue;
		default:
			break;
		}
		if (S.n[d] == 0)
			continue;
		switch (op & 7) {
		case 2:
			deliver(d, fz_u8(in) % S.n[d]);
			break;
		case 3: {
			const struct sent *m = &S.sent[d][fz_u8(in) % S.n[d]];

			expect_refused(d, m->e2e, m->len);
			break;
		}
		case 4:
			op_mutate(in, d, fz_u8(in) % S.n[d]);
			break;
		case 6:
			op_splice(in, d);
			break;
		default:
			while (S.acc[d] < S.n[d])
				deliver(d, S.acc[d]);
			break;
		}
	}
}

/* ---- the exchange with hostile fields ---- */

static void read_into(struct fz_in *in, uint8_t *out, size_t n)
{
	size_t got;
	const uint8_t *p = fz_bytes(in, n, &got);

	memset(out, 0, n);
	memcpy(out, p, got);
}

/* Bob gets RTT(nonce_a, share_a), then CONFIRM(sig_a), from the input. */
static void mode_responder(struct fz_in *in)
{
	struct e2e_initiator a;
	struct e2e_responder b;
	struct ratchet r;
	uint8_t nonce_a[32], share_a[32], nonce_b[32], share_b[32];
	size_t sig_len;
	const uint8_t *sig;
	enum e2e_result res;
	bool genuine;

	/* Alice's draws first, so bob's are the ones made at start. */
	FZ_CHECK(e2e_initiator_start(&a, V_ALICE, V_BOB) == E2E_OK);
	e2e_initiator_clear(&a);
	read_into(in, nonce_a, 32);
	read_into(in, share_a, 32);
	sig = fz_bytes(in, fz_in_left(in), &sig_len);
	res = e2e_responder_accept(&b, V_BOB, V_ALICE, nonce_a, share_a,
				   bob_key, nonce_b, share_b);
	if (res != E2E_OK) {
		FZ_CHECK(res == E2E_ERR_ZERO_SHARE);
		return;
	}
	FZ_CHECK(memcmp(nonce_b, X.nonce_b, 32) == 0);
	genuine = memcmp(nonce_a, X.nonce_a, 32) == 0 &&
		  memcmp(share_a, X.share_a, 32) == 0 &&
		  sig_len == X.sig_a_len && memcmp(sig, X.sig_a, sig_len) == 0;
	res = e2e_responder_finish(&b, sig, sig_len, alice_key, &r);
	FZ_CHECK((res == E2E_OK) == genuine);
	if (res == E2E_OK)
		FZ_CHECK(memcmp(r.rk, base[1].r.rk, 32) == 0);
	ratchet_clear(&r);
	e2e_responder_clear(&b);
}

/* Alice gets ACCEPT(nonce_b, share_b, sig_b, peer_key) from the input. */
static void mode_initiator(struct fz_in *in, uint8_t mode)
{
	struct e2e_initiator a;
	struct ratchet r;
	uint8_t nonce_b[32], share_b[32], sig_a[SIG_MAX_LEN];
	size_t sig_len, spki_len, sig_a_len = 0;
	const uint8_t *sig, *spki;
	sm_key *peer = NULL;
	enum e2e_result res;
	bool genuine;

	FZ_CHECK(e2e_initiator_start(&a, V_ALICE, V_BOB) == E2E_OK);
	read_into(in, nonce_b, 32);
	read_into(in, share_b, 32);
	sig = fz_bytes(in, fz_u16(in), &sig_len);
	spki = fz_bytes(in, fz_in_left(in), &spki_len);
	if (mode & 4) {
		if (key_from_spki(spki, spki_len, &peer) < 0)
			peer = NULL;
	} else {
		peer = key_ref(bob_key);
	}
	genuine = peer && key_equal(peer, bob_key) &&
		  memcmp(nonce_b, X.nonce_b, 32) == 0 &&
		  memcmp(share_b, X.share_b, 32) == 0 &&
		  sig_len == X.sig_b_len && memcmp(sig, X.sig_b, sig_len) == 0;
	res = e2e_initiator_finish(&a, nonce_b, share_b, sig, sig_len, peer,
				   alice_key, sig_a, &sig_a_len, &r);
	FZ_CHECK((res == E2E_OK) == genuine);
	if (res == E2E_OK)
		FZ_CHECK(sig_a_len == X.sig_a_len &&
			 memcmp(sig_a, X.sig_a, sig_a_len) == 0);
	else
		FZ_CHECK(sig_a_len == 0);
	key_unref(peer);
	ratchet_clear(&r);
	e2e_initiator_clear(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in;
	uint8_t mode;

	if (size < 1)
		return 0;
	fz_rand_reset();
	fz_in_init(&in, data, size);
	mode = fz_u8(&in);
	switch (mode & 3) {
	case 2:
		mode_responder(&in);
		break;
	case 3:
		mode_initiator(&in, mode);
		break;
	default:
		memset(S.n, 0, sizeof(S.n));
		memset(S.acc, 0, sizeof(S.acc));
		S.c[0] = base[0];
		S.c[1] = base[1];
		run_program(&in);
		chat_clear(&S.c[0]);
		chat_clear(&S.c[1]);
		break;
	}
	return 0;
}

/* ---- seeds ---- */

static void seeds(void)
{
	/* HELLO, deliver; TEXT both ways; deliver all; RECEIPT; deliver. */
	static const uint8_t chat[] = {
		0x00, 0x00, 0x02, 0x00, 0x00, 5, 0x00, 200, 0x08, 3,
		0x07, 0x0f, 0x28, 1, 0x0f, 0x80, 250, 0x07,
	};
	/* The same with a reorder, a replay, a reflection, a mutation, a
	 * splice and raw bytes along the way. */
	static const uint8_t hostile[] = {
		0x00, 0x00, 0x00, 7, 0x00, 9, 0x02, 1, 0x02, 0, 0x02, 0,
		0x03, 0, 0x04, 1, 0, 0, 40, 0xff, 0x04, 2, 1, 0, 30,
		0x06, 1, 2, 0x05, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
		13, 14, 15, 16, 0x07, 0x08, 4, 0x0f, 0x38, 0x07,
	};
	uint8_t buf[1 + 64 + 2 + SIG_MAX_LEN + 64];
	size_t n;

	fz_seed("chat", chat, sizeof(chat));
	fz_seed("hostile", hostile, sizeof(hostile));

	buf[0] = 2;
	memcpy(buf + 1, X.nonce_a, 32);
	memcpy(buf + 33, X.share_a, 32);
	memcpy(buf + 65, X.sig_a, X.sig_a_len);
	fz_seed("responder", buf, 65 + X.sig_a_len);

	buf[0] = 3;
	memcpy(buf + 1, X.nonce_b, 32);
	memcpy(buf + 33, X.share_b, 32);
	buf[65] = (uint8_t)(X.sig_b_len >> 8);
	buf[66] = (uint8_t)X.sig_b_len;
	memcpy(buf + 67, X.sig_b, X.sig_b_len);
	n = 67 + X.sig_b_len;
	fz_seed("initiator", buf, n);
	{
		size_t spki_len;
		const uint8_t *spki = key_spki(bob_key, &spki_len);

		buf[0] = 7;
		memcpy(buf + n, spki, spki_len);
		fz_seed("initiator-spki", buf, n + spki_len);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	if (key_from_ed25519_seed(v_alice_seed, &alice_key) < 0 ||
	    key_from_ed25519_seed(v_bob_seed, &bob_key) < 0)
		abort();
	exchange();
	fz_maybe_write_seeds(seeds);
	return 0;
}
