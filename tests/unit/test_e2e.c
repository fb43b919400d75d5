/* test_e2e.c - the e2e exchange (§6), the Double Ratchet and chats (§7).
 *
 * First every value of tests/vectors/e2e.json is reproduced byte for byte
 * with scripted randomness; then the ratchet and the chat rules are pushed
 * through orderings, forgeries and limits with real randomness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "crypto.h"
#include "crypto_int.h"	/* key_wrap: an RSA key of the smallest allowed size */
#include "e2e.h"
#include "msg.h"
#include "tests/lib/testutil.h"
#include "tests/unit/chat_fixture.h"

static json_t *V;
static sm_key *ed_a, *ed_b, *ec_a, *rsa_a, *rsa2048;

/* ---- helpers ---- */

static sm_key *seed_key(const char *path)
{
	uint8_t seed[32];
	sm_key *k;

	tu_hex_into(V, path, seed, sizeof(seed));
	assert_int_equal(key_from_ed25519_seed(seed, &k), 0);
	return k;
}

static void sha256_2(const void *a, size_t al, const void *b, size_t bl,
		     uint8_t out[SHA256_LEN])
{
	struct iov_c v[2] = { { a, al }, { b, bl } };

	assert_int_equal(crypto_sha256(v, 2, out), 0);
}

/* label 0x00 || h, the exact bytes an exchange signature covers. */
static size_t label_hash(uint8_t *out, const char *label,
			 const uint8_t h[SHA256_LEN])
{
	size_t n = strlen(label) + 1;

	memcpy(out, label, n);
	memcpy(out + n, h, SHA256_LEN);
	return n + SHA256_LEN;
}

/* Compare a struct ratchet with state_after.<who> of the vectors. */
static void assert_state(const struct ratchet *r, json_t *s)
{
	json_t *ckr = tu_get(s, "CKr");

	assert_hex(s, "DHs_public", r->dhs_pub, 32);
	assert_hex(s, "DHr", r->dhr, 32);
	assert_true(r->has_dhr);
	assert_hex(s, "RK", r->rk, 32);
	assert_true(r->has_cks);
	assert_hex(s, "CKs", r->cks, 32);
	if (json_is_null(ckr))
		assert_false(r->has_ckr);
	else
		assert_hex(s, "CKr", r->ckr, 32);
	assert_int_equal(r->ns, int_at(s, "Ns"));
	assert_int_equal(r->nr, int_at(s, "Nr"));
	assert_int_equal(r->pn, int_at(s, "PN"));
	assert_hex(V, "ad", r->ad, 32);
}

/* ---- the vectors: exchange ---- */

struct vec_run {
	struct e2e_initiator a;
	struct e2e_responder b;
	struct ratchet ra, rb;
	uint8_t nonce_b[32], share_b[32];
	uint8_t sig_a[SIG_MAX_LEN];
	size_t sig_a_len;
};

static void vec_exchange(struct vec_run *v)
{
	tu_rand_reset();
	push_hex(V, "inputs.nonce_a");
	push_hex(V, "inputs.alice_ephemeral_private");
	assert_int_equal(e2e_initiator_start(&v->a, "alice", "bob"), E2E_OK);
	push_hex(V, "inputs.nonce_b");
	push_hex(V, "inputs.bob_ephemeral_private");
	assert_int_equal(e2e_responder_accept(&v->b, "bob", "alice",
					      v->a.nonce_a, v->a.share_a, ed_b,
					      v->nonce_b, v->share_b), E2E_OK);
	push_hex(V, "inputs.ratchet_privates.alice.0");
	assert_int_equal(e2e_initiator_finish(&v->a, v->nonce_b, v->share_b,
					      v->b.sig_b, v->b.sig_b_len, ed_b,
					      ed_a, v->sig_a, &v->sig_a_len,
					      &v->ra), E2E_OK);
	assert_int_equal(e2e_responder_finish(&v->b, v->sig_a, v->sig_a_len,
					      ed_a, &v->rb), E2E_OK);
}

static void vec_clear(struct vec_run *v)
{
	e2e_initiator_clear(&v->a);
	e2e_responder_clear(&v->b);
	ratchet_clear(&v->ra);
	ratchet_clear(&v->rb);
	tu_rand_reset();
}

static void test_vector_keys(void **state)
{
	const uint8_t *spki;
	size_t len;

	(void)state;
	spki = key_spki(ed_a, &len);
	assert_hex(V, "inputs.alice_spki", spki, len);
	spki = key_spki(ed_b, &len);
	assert_hex(V, "inputs.bob_spki", spki, len);
}

/* Every exchange value of e2e.json, in the order A and B produce them. */
static void test_vector_exchange(void **state)
{
	struct vec_run v;
	uint8_t h[SHA256_LEN], in[64], z[32], z2[32], salt[32], sk[32], rk0[32];
	uint8_t priv[32], pub[32];
	size_t n;

	(void)state;
	tu_rand_reset();
	push_hex(V, "inputs.nonce_a");
	push_hex(V, "inputs.alice_ephemeral_private");
	assert_int_equal(e2e_initiator_start(&v.a, "alice", "bob"), E2E_OK);
	assert_hex(V, "inputs.nonce_a", v.a.nonce_a, 32);
	assert_hex(V, "inputs.share_a", v.a.share_a, 32);
	assert_hex(V, "inputs.alice_ephemeral_private", v.a.eph_priv, 32);

	push_hex(V, "inputs.nonce_b");
	push_hex(V, "inputs.bob_ephemeral_private");
	assert_int_equal(e2e_responder_accept(&v.b, "bob", "alice", v.a.nonce_a,
					      v.a.share_a, ed_b, v.nonce_b,
					      v.share_b), E2E_OK);
	assert_hex(V, "inputs.nonce_b", v.nonce_b, 32);
	assert_hex(V, "inputs.share_b", v.share_b, 32);
	assert_hex(V, "T", v.b.t, v.b.t_len);
	sha256_2(v.b.t, v.b.t_len, NULL, 0, h);
	assert_hex(V, "sha256_T", h, 32);
	n = label_hash(in, "secmsg/1 e2e accept", h);
	assert_hex(V, "accept_signature_input", in, n);
	assert_hex(V, "sig_b", v.b.sig_b, v.b.sig_b_len);
	assert_int_equal(key_verify(ed_b, in, n, v.b.sig_b, v.b.sig_b_len), 0);

	push_hex(V, "inputs.ratchet_privates.alice.0");
	assert_int_equal(e2e_initiator_finish(&v.a, v.nonce_b, v.share_b,
					      v.b.sig_b, v.b.sig_b_len, ed_b,
					      ed_a, v.sig_a, &v.sig_a_len,
					      &v.ra), E2E_OK);
	sha256_2(v.b.t, v.b.t_len, v.b.sig_b, v.b.sig_b_len, h);
	n = label_hash(in, "secmsg/1 e2e confirm", h);
	assert_hex(V, "confirm_signature_input", in, n);
	assert_hex(V, "sig_a", v.sig_a, v.sig_a_len);

	/* Z from both sides, then SK and RK0 as §6 derives them. */
	assert_int_equal(crypto_x25519(v.a.eph_priv, v.share_b, z), 0);
	assert_int_equal(crypto_x25519(v.b.eph_priv, v.a.share_a, z2), 0);
	assert_hex(V, "z", z, 32);
	assert_memory_equal(z, z2, 32);
	{
		struct iov_c iv[3] = { { v.b.t, v.b.t_len },
				       { v.b.sig_b, v.b.sig_b_len },
				       { v.sig_a, v.sig_a_len } };

		assert_int_equal(crypto_sha256(iv, 3, salt), 0);
	}
	assert_hex(V, "sk_salt", salt, 32);
	assert_int_equal(crypto_hkdf_extract(salt, 32, z, 32, sk), 0);
	assert_hex(V, "sk", sk, 32);
	assert_int_equal(crypto_hkdf_expand(sk, "secmsg/1 e2e root", rk0, 32), 0);
	assert_hex(V, "rk0", rk0, 32);

	/* A's initial ratchet. */
	assert_hex(V, "alice_initial.DHs_private", v.ra.dhs_priv, 32);
	assert_hex(V, "alice_initial.DHs_public", v.ra.dhs_pub, 32);
	assert_hex(V, "alice_initial.DHr", v.ra.dhr, 32);
	assert_hex(V, "alice_initial.RK", v.ra.rk, 32);
	assert_hex(V, "alice_initial.CKs", v.ra.cks, 32);
	assert_hex(V, "ad", v.ra.ad, 32);
	assert_true(v.ra.has_cks && v.ra.has_dhr && !v.ra.has_ckr);
	assert_int_equal(v.ra.ns + v.ra.nr + v.ra.pn, 0);
	assert_int_equal(crypto_x25519(v.ra.dhs_priv, v.ra.dhr, z), 0);
	assert_hex(V, "alice_initial.dh_out", z, 32);

	/* B's, once CONFIRM is checked. */
	assert_int_equal(e2e_responder_finish(&v.b, v.sig_a, v.sig_a_len, ed_a,
					      &v.rb), E2E_OK);
	assert_hex(V, "bob_initial.DHs_private", v.rb.dhs_priv, 32);
	assert_hex(V, "bob_initial.RK", v.rb.rk, 32);
	assert_hex(V, "rk0", v.rb.rk, 32);
	assert_hex(V, "ad", v.rb.ad, 32);
	tu_hex_into(V, "bob_initial.DHs_private", priv, 32);
	assert_int_equal(crypto_x25519_public(priv, pub), 0);
	assert_memory_equal(v.rb.dhs_pub, pub, 32);
	assert_false(v.rb.has_cks || v.rb.has_ckr || v.rb.has_dhr);
	assert_int_equal(v.rb.ns + v.rb.nr + v.rb.pn, 0);
	assert_int_equal(tu_rand_left(), 0);
	vec_clear(&v);
}

/* The RTT, ACCEPT and CONFIRM records built from the exchange's outputs. */
static void test_vector_records(void **state)
{
	struct vec_run v;
	struct msg m;
	uint8_t buf[4096];
	struct writer w;
	size_t spki_len;
	const uint8_t *spki;

	(void)state;
	vec_exchange(&v);
	memset(&m, 0, sizeof(m));
	m.op = OP_RTT;
	strcpy(m.peer, "bob");
	memcpy(m.nonce, v.a.nonce_a, 32);
	memcpy(m.share, v.a.share_a, 32);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_hex(V, "records.rtt_c2s", buf, w.len);
	strcpy(m.peer, "alice");
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_hex(V, "records.rtt_s2c", buf, w.len);

	m.op = OP_ACCEPT;
	strcpy(m.peer, "alice");
	memcpy(m.nonce, v.nonce_b, 32);
	memcpy(m.share, v.share_b, 32);
	m.sig = v.b.sig_b;
	m.sig_len = v.b.sig_b_len;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_hex(V, "records.accept_c2s", buf, w.len);
	strcpy(m.peer, "bob");
	spki = key_spki(ed_b, &spki_len);
	m.peer_key = spki;
	m.peer_key_len = spki_len;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_hex(V, "records.accept_s2c", buf, w.len);

	memset(&m, 0, sizeof(m));
	m.op = OP_CONFIRM;
	strcpy(m.peer, "bob");
	m.sig = v.sig_a;
	m.sig_len = v.sig_a_len;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_hex(V, "records.confirm_c2s", buf, w.len);
	strcpy(m.peer, "alice");
	m.peer_key = key_spki(ed_a, &spki_len);
	m.peer_key_len = spki_len;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_hex(V, "records.confirm_s2c", buf, w.len);
	vec_clear(&v);
}

/* The per-message values that the ratchet does not expose. */
static void check_message_keys(json_t *msg, const struct ratchet *snd)
{
	static const uint8_t one = 1;
	uint8_t mk[32], prk[32], km[44], aad[SHA256_LEN + E2E_HEADER_LEN];
	static const uint8_t zero[32];

	assert_hex(msg, "chain_key", snd->cks, 32);
	assert_hex(msg, "sender_ratchet_private", snd->dhs_priv, 32);
	assert_int_equal(crypto_hmac_sha256(snd->cks, 32, &one, 1, mk), 0);
	assert_hex(msg, "message_key", mk, 32);
	assert_int_equal(crypto_hkdf_extract(zero, 32, mk, 32, prk), 0);
	assert_int_equal(crypto_hkdf_expand(prk, "secmsg/1 message", km, 44), 0);
	assert_hex(msg, "aes_key", km, 32);
	assert_hex(msg, "aes_nonce", km + 32, 12);
	memcpy(aad, snd->ad, SHA256_LEN);
	memcpy(aad + SHA256_LEN, snd->dhs_pub, 32);
	be32_put(aad + SHA256_LEN + 32, snd->pn);
	be32_put(aad + SHA256_LEN + 36, snd->ns);
	assert_hex(msg, "aad", aad, sizeof(aad));
	assert_hex(msg, "header.bytes", aad + SHA256_LEN, E2E_HEADER_LEN);
	assert_hex(msg, "header.dh", snd->dhs_pub, 32);
	assert_int_equal(snd->pn, int_at(msg, "header.pn"));
	assert_int_equal(snd->ns, int_at(msg, "header.n"));
}

/* The MESSAGE records that carry an e2e field, both ways. */
static void check_message_records(json_t *msg, const char *from,
				  const char *to, const uint8_t *e2e, size_t len)
{
	struct msg m;
	uint8_t buf[E2E_MSG_MAX + 64];
	struct writer w;

	memset(&m, 0, sizeof(m));
	m.op = OP_MESSAGE;
	m.e2e = e2e;
	m.e2e_len = len;
	strcpy(m.peer, to);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_hex(msg, "message_c2s", buf, w.len);
	strcpy(m.peer, from);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_hex(msg, "message_s2c", buf, w.len);
}

/* Each message of the vectors through the bare ratchet. */
static void test_vector_messages(void **state)
{
	struct vec_run v;
	json_t *msgs = tu_get(V, "messages");
	size_t i;

	(void)state;
	vec_exchange(&v);
	for (i = 0; i < json_array_size(msgs); i++) {
		json_t *msg = json_array_get(msgs, i);
		bool from_a = strcmp(tu_str(msg, "sender"), "alice") == 0;
		struct ratchet *snd = from_a ? &v.ra : &v.rb;
		struct ratchet *rcv = from_a ? &v.rb : &v.ra;
		uint8_t *pt, out[E2E_MSG_MAX], back[E2E_MSG_MAX];
		size_t pt_len, out_len, back_len;

		pt = tu_hex(msg, "plaintext", &pt_len);
		check_message_keys(msg, snd);
		assert_int_equal(ratchet_encrypt(snd, pt, pt_len, out, &out_len),
				 E2E_OK);
		assert_hex(msg, "e2e", out, out_len);
		check_message_records(msg, from_a ? "alice" : "bob",
				      from_a ? "bob" : "alice", out, out_len);
		if (json_is_true(tu_get(msg, "receiver_dh_step")))
			push_hex(msg, "receiver_new_ratchet_private");
		assert_int_equal(ratchet_decrypt(rcv, out, out_len, back,
						 &back_len), E2E_OK);
		assert_int_equal(back_len, pt_len);
		assert_memory_equal(back, pt, pt_len);
		assert_int_equal(tu_rand_left(), 0);
		assert_state(&v.ra, tu_get(msg, "state_after.alice"));
		assert_state(&v.rb, tu_get(msg, "state_after.bob"));
		if (json_is_true(tu_get(msg, "receiver_dh_step")))
			assert_hex(msg, "receiver_new_ratchet_private",
				   rcv->dhs_priv, 32);
		free(pt);
	}
	vec_clear(&v);
}

/* The same conversation through the chat layer gives the same bytes. */
static void test_vector_chat(void **state)
{
	struct vec_run v;
	struct chat ca, cb;
	json_t *msgs = tu_get(V, "messages");
	size_t i;

	(void)state;
	vec_exchange(&v);
	chat_init(&ca, &v.ra, true);
	chat_init(&cb, &v.rb, false);
	for (i = 0; i < json_array_size(msgs); i++) {
		json_t *msg = json_array_get(msgs, i);
		bool from_a = strcmp(tu_str(msg, "sender"), "alice") == 0;
		struct chat *snd = from_a ? &ca : &cb, *rcv = from_a ? &cb : &ca;
		uint8_t *pt, out[E2E_MSG_MAX], back[CHAT_PT_MAX];
		struct chat_message ev;
		size_t pt_len, out_len;
		uint32_t id;

		pt = tu_hex(msg, "plaintext", &pt_len);
		assert_int_equal(pt[0], int_at(msg, "chat_kind"));
		if (pt[0] == CHAT_HELLO) {
			assert_int_equal(chat_seal_hello(snd, out, &out_len), E2E_OK);
		} else {
			assert_int_equal(chat_seal_text(snd, (char *)pt + 7,
							pt_len - 7, &id, out,
							&out_len), E2E_OK);
			assert_int_equal(id, be32_get(pt + 1));
		}
		assert_hex(msg, "e2e", out, out_len);
		if (json_is_true(tu_get(msg, "receiver_dh_step")))
			push_hex(msg, "receiver_new_ratchet_private");
		assert_int_equal(chat_open(rcv, out, out_len, back, &ev), E2E_OK);
		assert_int_equal(ev.kind, pt[0]);
		if (pt[0] == CHAT_TEXT) {
			assert_int_equal(ev.id, be32_get(pt + 1));
			assert_int_equal(ev.text_len, pt_len - 7);
			assert_memory_equal(ev.text, pt + 7, pt_len - 7);
			assert_ptr_equal(ev.text, back + 7);
		}
		assert_state(&ca.r, tu_get(msg, "state_after.alice"));
		assert_state(&cb.r, tu_get(msg, "state_after.bob"));
		free(pt);
	}
	chat_clear(&ca);
	chat_clear(&cb);
	vec_clear(&v);
}

/* ---- an exchange with real randomness ---- */

struct pair {
	struct ratchet a, b;
};

static void exchange(sm_key *ka, sm_key *kb, struct pair *p)
{
	struct e2e_initiator a;
	struct e2e_responder b;
	uint8_t nonce_b[32], share_b[32], sig_a[SIG_MAX_LEN];
	size_t sig_a_len;

	tu_rand_reset();
	assert_int_equal(e2e_initiator_start(&a, "alice", "bob"), E2E_OK);
	assert_int_equal(e2e_responder_accept(&b, "bob", "alice", a.nonce_a,
					      a.share_a, kb, nonce_b, share_b),
			 E2E_OK);
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b,
					      b.sig_b_len, kb, ka, sig_a,
					      &sig_a_len, &p->a), E2E_OK);
	assert_int_equal(e2e_responder_finish(&b, sig_a, sig_a_len, ka, &p->b),
			 E2E_OK);
	e2e_initiator_clear(&a);
	e2e_responder_clear(&b);
}

static void pair_clear(struct pair *p)
{
	ratchet_clear(&p->a);
	ratchet_clear(&p->b);
}

/* Send one message from s to r and check it arrives intact. */
static void xfer(struct ratchet *s, struct ratchet *r, uint32_t tag)
{
	uint8_t pt[64], out[64 + 56], back[64];
	size_t out_len, back_len, len = 1 + tag % 60;

	for (size_t i = 0; i < len; i++)
		pt[i] = (uint8_t)(tag + i);
	assert_int_equal(ratchet_encrypt(s, pt, len, out, &out_len), E2E_OK);
	assert_int_equal(out_len, len + 56);
	assert_int_equal(ratchet_decrypt(r, out, out_len, back, &back_len),
			 E2E_OK);
	assert_int_equal(back_len, len);
	assert_memory_equal(back, pt, len);
}

static void test_key_types(void **state)
{
	sm_key *keys[4] = { ed_a, ec_a, rsa2048, rsa_a };
	struct pair p;

	(void)state;
	assert_int_equal(key_type(ec_a), KEY_ECDSA_P256);
	assert_int_equal(key_type(rsa_a), KEY_RSA);
	assert_int_equal(key_type(rsa2048), KEY_RSA);
	assert_int_equal(key_bits(rsa2048), 2048);
	for (int i = 0; i < 4; i++) {
		for (int j = 0; j < 4; j++) {
			exchange(keys[i], keys[j], &p);
			xfer(&p.a, &p.b, 1);
			xfer(&p.b, &p.a, 2);
			xfer(&p.a, &p.b, 3);
			pair_clear(&p);
		}
	}
}

static void test_alternating(void **state)
{
	struct pair p;

	(void)state;
	exchange(ed_a, ed_b, &p);
	for (uint32_t i = 0; i < 200; i++) {
		xfer(&p.a, &p.b, 2 * i);
		xfer(&p.b, &p.a, 2 * i + 1);
	}
	/* Every message starts a new chain of one. */
	assert_int_equal(p.a.ns, 0);
	assert_int_equal(p.a.pn, 1);
	assert_int_equal(p.a.nr, 1);
	assert_int_equal(p.b.ns, 1);
	assert_int_equal(p.b.pn, 1);
	pair_clear(&p);
}

static void test_bursts(void **state)
{
	static const int bursts[] = { 1, 5, 7, 1, 1, 13, 2, 40, 3, 1 };
	struct pair p;
	uint32_t t = 0;

	(void)state;
	exchange(ed_a, ed_b, &p);
	for (size_t i = 0; i < sizeof(bursts) / sizeof(bursts[0]); i++) {
		struct ratchet *s = i % 2 ? &p.b : &p.a;
		struct ratchet *r = i % 2 ? &p.a : &p.b;

		for (int k = 0; k < bursts[i]; k++)
			xfer(s, r, t++);
		assert_int_equal(s->ns, bursts[i]);
		assert_int_equal(r->nr, bursts[i]);
	}
	pair_clear(&p);
}

static void test_one_way_10000(void **state)
{
	struct pair p;

	(void)state;
	exchange(ed_a, ed_b, &p);
	for (uint32_t i = 0; i < 10000; i++)
		xfer(&p.a, &p.b, i);
	assert_int_equal(p.a.ns, 10000);
	assert_int_equal(p.b.nr, 10000);
	xfer(&p.b, &p.a, 1);
	assert_int_equal(p.b.pn, 0);
	xfer(&p.a, &p.b, 2);
	assert_int_equal(p.a.pn, 10000);
	pair_clear(&p);
}

/* Two in-order queues, one per direction, as the server relays them. */
#define QMAX 64
struct queue {
	uint8_t m[QMAX][128];
	size_t len[QMAX];
	uint8_t pt[QMAX][64];
	size_t pt_len[QMAX];
	size_t head, tail;
};

static void q_send(struct ratchet *s, struct queue *q, uint32_t tag)
{
	size_t i = q->tail++ % QMAX;

	assert_true(q->tail - q->head <= QMAX);
	q->pt_len[i] = 1 + tag % 60;
	for (size_t k = 0; k < q->pt_len[i]; k++)
		q->pt[i][k] = (uint8_t)(tag * 7 + k);
	assert_int_equal(ratchet_encrypt(s, q->pt[i], q->pt_len[i], q->m[i],
					 &q->len[i]), E2E_OK);
}

static void q_recv(struct ratchet *r, struct queue *q)
{
	size_t i = q->head++ % QMAX, n;
	uint8_t back[64];

	assert_true(q->head <= q->tail);
	assert_int_equal(ratchet_decrypt(r, q->m[i], q->len[i], back, &n),
			 E2E_OK);
	assert_int_equal(n, q->pt_len[i]);
	assert_memory_equal(back, q->pt[i], n);
}

/* A script: a/b send, A/B receive the next message waiting for them. */
static void run_script(struct pair *p, struct queue *ab, struct queue *ba,
		       const char *s)
{
	for (uint32_t t = 0; *s; s++, t++) {
		switch (*s) {
		case 'a':
			q_send(&p->a, ab, t);
			break;
		case 'b':
			q_send(&p->b, ba, t);
			break;
		case 'A':
			q_recv(&p->a, ba);
			break;
		case 'B':
			q_recv(&p->b, ab);
			break;
		default:
			break;
		}
	}
}

static void test_simultaneous(void **state)
{
	static const char *const scripts[] = {
		"aB ab BA",		/* both send, both receive */
		"aB aabb BBAA ab BA",
		"aB aaa bbb AAA BBB aa b BB A",
		"aB ab ab ab BBB AAA",
		"aB b a A B b a B A b b a a A A B B",
	};
	struct queue *ab = calloc(1, sizeof(*ab)), *ba = calloc(1, sizeof(*ba));
	struct pair p;

	(void)state;
	assert_non_null(ab);
	assert_non_null(ba);
	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		exchange(ed_a, ed_b, &p);
		memset(ab, 0, sizeof(*ab));
		memset(ba, 0, sizeof(*ba));
		run_script(&p, ab, ba, scripts[i]);
		assert_int_equal(ab->head, ab->tail);
		assert_int_equal(ba->head, ba->tail);
		pair_clear(&p);
	}
	free(ab);
	free(ba);
}

/* Random interleavings of sends and in-order deliveries. */
static void test_random_interleaving(void **state)
{
	struct queue *ab = calloc(1, sizeof(*ab)), *ba = calloc(1, sizeof(*ba));
	struct pair p;
	uint32_t x = 12345;

	(void)state;
	assert_non_null(ab);
	assert_non_null(ba);
	exchange(ed_a, ed_b, &p);
	run_script(&p, ab, ba, "aB");
	for (uint32_t t = 0; t < 3000; t++) {
		x = x * 1103515245u + 12345u;
		switch ((x >> 16) % 4) {
		case 0:
			if (ab->tail - ab->head < QMAX)
				q_send(&p.a, ab, t);
			break;
		case 1:
			if (ba->tail - ba->head < QMAX)
				q_send(&p.b, ba, t);
			break;
		case 2:
			if (ba->head < ba->tail)
				q_recv(&p.a, ba);
			break;
		default:
			if (ab->head < ab->tail)
				q_recv(&p.b, ab);
			break;
		}
	}
	while (ab->head < ab->tail)
		q_recv(&p.b, ab);
	while (ba->head < ba->tail)
		q_recv(&p.a, ba);
	pair_clear(&p);
	free(ab);
	free(ba);
}

/* ---- failures leave the state as it was ---- */

/* Deliver e2e to r, expect res, and check r did not change. */
static void expect_fail(struct ratchet *r, const uint8_t *e2e, size_t len,
			enum e2e_result res)
{
	struct ratchet before = *r;
	uint8_t back[E2E_MAX];
	size_t n = 99;

	assert_int_equal(ratchet_decrypt(r, e2e, len, back, &n), res);
	assert_int_equal(n, 0);
	assert_memory_equal(&before, r, sizeof(before));
	ratchet_clear(&before);
}

static void decrypt_ok(struct ratchet *r, const uint8_t *e2e, size_t len)
{
	uint8_t back[E2E_MAX];
	size_t n;

	assert_int_equal(ratchet_decrypt(r, e2e, len, back, &n), E2E_OK);
}

/* What tampering with byte i of a message must give (see ratchet_decrypt):
 * a changed dh forces a DH step, which needs pn == Nr; a changed pn only
 * matters on a step; a changed n never matches; anything else is caught
 * by the tag (the header is in the AAD). */
static enum e2e_result tamper_result(const struct ratchet *r,
				     const uint8_t *e2e, size_t i, bool step)
{
	uint32_t pn = be32_get(e2e + 32);

	if (i < 32)
		return step || pn == r->nr ? E2E_ERR_DECRYPT : E2E_ERR_ORDER;
	if (i < 36)
		return step ? E2E_ERR_ORDER : E2E_ERR_DECRYPT;
	if (i < 40)
		return E2E_ERR_ORDER;
	return E2E_ERR_DECRYPT;
}

static void tamper_all(struct ratchet *r, const uint8_t *e2e, size_t len,
		       bool step)
{
	uint8_t bad[E2E_MAX];

	for (size_t i = 0; i < len; i++) {
		static const uint8_t flips[] = { 0x01, 0x80, 0xff };

		for (size_t f = 0; f < sizeof(flips); f++) {
			memcpy(bad, e2e, len);
			bad[i] ^= flips[f];
			expect_fail(r, bad, len, tamper_result(r, e2e, i, step));
		}
	}
	/* Cut or extended: the tag no longer matches; too short to parse. */
	memcpy(bad, e2e, len);
	bad[len] = 0;
	expect_fail(r, bad, len - 1, E2E_ERR_DECRYPT);
	expect_fail(r, bad, len + 1, E2E_ERR_DECRYPT);
	expect_fail(r, bad, 55, E2E_ERR_MALFORMED);
	expect_fail(r, bad, 0, E2E_ERR_MALFORMED);
}

static void test_tamper(void **state)
{
	struct pair p;
	uint8_t m1[128], m2[128], m3[128];
	size_t l1, l2, l3;
	const uint8_t pt[] = "tamper with every byte";

	(void)state;
	exchange(ed_a, ed_b, &p);
	/* m1 makes B step; m2 follows in the same chain. */
	assert_int_equal(ratchet_encrypt(&p.a, pt, sizeof(pt), m1, &l1), E2E_OK);
	assert_int_equal(ratchet_encrypt(&p.a, pt, sizeof(pt), m2, &l2), E2E_OK);
	tamper_all(&p.b, m1, l1, true);
	decrypt_ok(&p.b, m1, l1);
	tamper_all(&p.b, m2, l2, false);
	decrypt_ok(&p.b, m2, l2);
	/* B answers: A steps on m3 (pn 0, A's Nr 0 at the time). */
	assert_int_equal(ratchet_encrypt(&p.b, pt, sizeof(pt), m3, &l3), E2E_OK);
	tamper_all(&p.a, m3, l3, true);
	decrypt_ok(&p.a, m3, l3);
	xfer(&p.a, &p.b, 5);
	pair_clear(&p);
}

static void test_replay(void **state)
{
	struct pair p;
	uint8_t m0[128], m1[128], m2[128], mb[128];
	size_t l0, l1, l2, lb;
	const uint8_t pt[] = "replay";

	(void)state;
	exchange(ed_a, ed_b, &p);
	assert_int_equal(ratchet_encrypt(&p.a, pt, 6, m0, &l0), E2E_OK);
	decrypt_ok(&p.b, m0, l0);
	expect_fail(&p.b, m0, l0, E2E_ERR_ORDER);	/* n 0, Nr 1 */
	assert_int_equal(ratchet_encrypt(&p.a, pt, 6, m1, &l1), E2E_OK);
	decrypt_ok(&p.b, m1, l1);
	expect_fail(&p.b, m1, l1, E2E_ERR_ORDER);
	expect_fail(&p.b, m0, l0, E2E_ERR_ORDER);
	assert_int_equal(ratchet_encrypt(&p.b, pt, 6, mb, &lb), E2E_OK);
	decrypt_ok(&p.a, mb, lb);
	expect_fail(&p.a, mb, lb, E2E_ERR_ORDER);
	/* A's new chain; then replays of the old chain at B. */
	assert_int_equal(ratchet_encrypt(&p.a, pt, 6, m2, &l2), E2E_OK);
	decrypt_ok(&p.b, m2, l2);
	expect_fail(&p.b, m0, l0, E2E_ERR_ORDER);	/* old dh, pn 0 != Nr 1 */
	expect_fail(&p.b, m1, l1, E2E_ERR_ORDER);
	expect_fail(&p.b, m2, l2, E2E_ERR_ORDER);
	xfer(&p.a, &p.b, 9);
	xfer(&p.b, &p.a, 10);
	pair_clear(&p);
}

static void test_gap_and_reorder(void **state)
{
	struct pair p;
	uint8_t m[4][128], mb[128], mc[128];
	size_t l[4], lb, lc;
	const uint8_t pt[] = "order";

	(void)state;
	exchange(ed_a, ed_b, &p);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ratchet_encrypt(&p.a, pt, 5, m[i], &l[i]), E2E_OK);
	/* B's first message must step with pn 0 == Nr 0; skipping m0 is a gap
	 * in the header's n. */
	expect_fail(&p.b, m[1], l[1], E2E_ERR_ORDER);
	expect_fail(&p.b, m[3], l[3], E2E_ERR_ORDER);
	decrypt_ok(&p.b, m[0], l[0]);
	expect_fail(&p.b, m[2], l[2], E2E_ERR_ORDER);	/* gap */
	decrypt_ok(&p.b, m[1], l[1]);
	expect_fail(&p.b, m[3], l[3], E2E_ERR_ORDER);	/* reorder */
	decrypt_ok(&p.b, m[2], l[2]);
	decrypt_ok(&p.b, m[3], l[3]);
	/* B answers; A's next chain says how long its old one was. */
	assert_int_equal(ratchet_encrypt(&p.b, pt, 5, mb, &lb), E2E_OK);
	decrypt_ok(&p.a, mb, lb);
	assert_int_equal(ratchet_encrypt(&p.a, pt, 5, mc, &lc), E2E_OK);
	assert_int_equal(be32_get(mc + 32), 4);		/* pn = A's old Ns */
	decrypt_ok(&p.b, mc, lc);
	pair_clear(&p);
}

/* A gap across a chain: pn says messages of the old chain are missing. */
static void test_gap_across_step(void **state)
{
	struct pair p;
	uint8_t a0[128], a1[128], b0[128], a2[128];
	size_t l0, l1, lb, l2;
	const uint8_t pt[] = "x";

	(void)state;
	exchange(ed_a, ed_b, &p);
	assert_int_equal(ratchet_encrypt(&p.a, pt, 1, a0, &l0), E2E_OK);
	decrypt_ok(&p.b, a0, l0);
	assert_int_equal(ratchet_encrypt(&p.a, pt, 1, a1, &l1), E2E_OK);
	assert_int_equal(ratchet_encrypt(&p.b, pt, 1, b0, &lb), E2E_OK);
	decrypt_ok(&p.a, b0, lb);
	assert_int_equal(ratchet_encrypt(&p.a, pt, 1, a2, &l2), E2E_OK);
	assert_int_equal(be32_get(a2 + 32), 2);
	expect_fail(&p.b, a2, l2, E2E_ERR_ORDER);	/* a1 never arrived */
	decrypt_ok(&p.b, a1, l1);
	decrypt_ok(&p.b, a2, l2);
	pair_clear(&p);
}

static void test_zero_share(void **state)
{
	struct e2e_initiator a;
	struct e2e_responder b;
	uint8_t nonce[32], share[32], zero[32] = { 0 }, one[32] = { 1 };
	uint8_t sig_a[SIG_MAX_LEN], e2e[128];
	size_t sig_a_len;
	struct ratchet r;
	struct pair p;

	(void)state;
	tu_rand_reset();
	assert_int_equal(e2e_initiator_start(&a, "alice", "bob"), E2E_OK);
	/* B refuses a low-order share_a before it signs anything. */
	assert_int_equal(e2e_responder_accept(&b, "bob", "alice", a.nonce_a,
					      zero, ed_b, nonce, share),
			 E2E_ERR_ZERO_SHARE);
	assert_int_equal(b.sig_b_len, 0);
	assert_int_equal(e2e_responder_accept(&b, "bob", "alice", a.nonce_a,
					      one, ed_b, nonce, share),
			 E2E_ERR_ZERO_SHARE);

	/* A low-order share_b signed by B's genuine key. */
	{
		uint8_t t[E2E_T_MAX], h[32], in[64];
		size_t t_len = 0, n, sig_len = SIG_MAX_LEN;
		uint8_t sig[SIG_MAX_LEN];

		memset(nonce, 7, sizeof(nonce));
		memcpy(t, "secmsg/1 e2e", 13);
		t_len = 13;
		memcpy(t + t_len, "\x05" "alice" "\x03" "bob", 10);
		t_len += 10;
		memcpy(t + t_len, a.nonce_a, 32);
		memcpy(t + t_len + 32, a.share_a, 32);
		memcpy(t + t_len + 64, nonce, 32);
		memcpy(t + t_len + 96, zero, 32);
		t_len += 128;
		sha256_2(t, t_len, NULL, 0, h);
		n = label_hash(in, "secmsg/1 e2e accept", h);
		assert_int_equal(key_sign(ed_b, in, n, sig, &sig_len), 0);
		assert_int_equal(e2e_initiator_finish(&a, nonce, zero, sig,
						      sig_len, ed_b, ed_a, sig_a,
						      &sig_a_len, &r),
				 E2E_ERR_ZERO_SHARE);
		assert_int_equal(sig_a_len, 0);
		assert_false(r.has_cks);
	}
	e2e_initiator_clear(&a);

	/* A ratchet step onto an all-zero point. */
	exchange(ed_a, ed_b, &p);
	xfer(&p.a, &p.b, 1);
	xfer(&p.b, &p.a, 2);
	memset(e2e, 0x5a, sizeof(e2e));
	memset(e2e, 0, 32);
	be32_put(e2e + 32, p.a.nr);
	be32_put(e2e + 36, 0);
	expect_fail(&p.a, e2e, 100, E2E_ERR_ZERO_SHARE);
	e2e[0] = 1;
	expect_fail(&p.a, e2e, 100, E2E_ERR_ZERO_SHARE);
	xfer(&p.b, &p.a, 3);
	pair_clear(&p);
}

/* B's side rebuilt from what a client keeps of its ACCEPT (a request that
 * waits across logins) finishes as the original would: the same ratchet,
 * and a message from A opens. A bad kept value fails at CONFIRM. */
static void test_responder_restore(void **state)
{
	struct e2e_initiator a;
	struct e2e_responder b, b2;
	uint8_t nonce_b[32], share_b[32], sig_a[SIG_MAX_LEN];
	size_t sig_a_len;
	struct pair p;
	struct ratchet r;

	(void)state;
	tu_rand_reset();
	assert_int_equal(e2e_initiator_start(&a, "alice", "bob"), E2E_OK);
	assert_int_equal(e2e_responder_accept(&b, "bob", "alice", a.nonce_a,
					      a.share_a, ed_b, nonce_b, share_b),
			 E2E_OK);
	assert_int_equal(e2e_responder_restore(&b2, "bob", "alice", a.nonce_a,
					       a.share_a, nonce_b, share_b,
					       b.eph_priv, b.sig_b,
					       b.sig_b_len), E2E_OK);
	assert_int_equal(b2.t_len, b.t_len);
	assert_memory_equal(b2.t, b.t, b.t_len);
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b,
					      b.sig_b_len, ed_b, ed_a, sig_a,
					      &sig_a_len, &p.a), E2E_OK);
	assert_int_equal(e2e_responder_finish(&b2, sig_a, sig_a_len, ed_a,
					      &p.b), E2E_OK);
	xfer(&p.a, &p.b, 7);
	xfer(&p.b, &p.a, 8);
	pair_clear(&p);
	/* Another share_b than the one signed: sig_a does not verify. */
	share_b[0] ^= 1;
	assert_int_equal(e2e_responder_restore(&b2, "bob", "alice", a.nonce_a,
					       a.share_a, nonce_b, share_b,
					       b.eph_priv, b.sig_b,
					       b.sig_b_len), E2E_OK);
	assert_int_equal(e2e_responder_finish(&b2, sig_a, sig_a_len, ed_a, &r),
			 E2E_ERR_SIGNATURE);
	assert_int_equal(e2e_responder_restore(&b2, "bob", "alice", a.nonce_a,
					       a.share_a, nonce_b, share_b,
					       b.eph_priv, b.sig_b, 0),
			 E2E_ERR_MALFORMED);
	assert_int_equal(e2e_responder_restore(&b2, "bob", "a b", a.nonce_a,
					       a.share_a, nonce_b, share_b,
					       b.eph_priv, b.sig_b,
					       b.sig_b_len), E2E_ERR_MALFORMED);
	e2e_initiator_clear(&a);
	e2e_responder_clear(&b);
	e2e_responder_clear(&b2);
}

static void test_bad_signatures(void **state)
{
	struct e2e_initiator a, a2;
	struct e2e_responder b;
	uint8_t nonce_b[32], share_b[32], sig_a[SIG_MAX_LEN], bad[SIG_MAX_LEN + 1];
	size_t sig_a_len;
	struct ratchet r;

	(void)state;
	tu_rand_reset();
	assert_int_equal(e2e_initiator_start(&a, "alice", "bob"), E2E_OK);
	assert_int_equal(e2e_responder_accept(&b, "bob", "alice", a.nonce_a,
					      a.share_a, ed_b, nonce_b, share_b),
			 E2E_OK);
	a2 = a;
	/* sig_b: flipped, cut, empty, too long, wrong key, wrong T. */
	memcpy(bad, b.sig_b, b.sig_b_len);
	bad[5] ^= 1;
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, bad,
					      b.sig_b_len, ed_b, ed_a, sig_a,
					      &sig_a_len, &r), E2E_ERR_SIGNATURE);
	assert_int_equal(sig_a_len, 0);
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b,
					      b.sig_b_len - 1, ed_b, ed_a, sig_a,
					      &sig_a_len, &r), E2E_ERR_SIGNATURE);
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b, 0,
					      ed_b, ed_a, sig_a, &sig_a_len, &r),
			 E2E_ERR_SIGNATURE);
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, bad,
					      SIG_MAX_LEN + 1, ed_b, ed_a, sig_a,
					      &sig_a_len, &r), E2E_ERR_SIGNATURE);
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b,
					      b.sig_b_len, ed_a, ed_a, sig_a,
					      &sig_a_len, &r), E2E_ERR_SIGNATURE);
	nonce_b[0] ^= 1;
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b,
					      b.sig_b_len, ed_b, ed_a, sig_a,
					      &sig_a_len, &r), E2E_ERR_SIGNATURE);
	nonce_b[0] ^= 1;
	/* The names are bound: A thinking it talks to carol fails. */
	strcpy(a2.peer, "carol");
	assert_int_equal(e2e_initiator_finish(&a2, nonce_b, share_b, b.sig_b,
					      b.sig_b_len, ed_b, ed_a, sig_a,
					      &sig_a_len, &r), E2E_ERR_SIGNATURE);
	assert_false(r.has_cks);

	/* The genuine one, then a bad sig_a at B. */
	assert_int_equal(e2e_initiator_finish(&a, nonce_b, share_b, b.sig_b,
					      b.sig_b_len, ed_b, ed_a, sig_a,
					      &sig_a_len, &r), E2E_OK);
	ratchet_clear(&r);
	memcpy(bad, sig_a, sig_a_len);
	bad[sig_a_len - 1] ^= 0x80;
	assert_int_equal(e2e_responder_finish(&b, bad, sig_a_len, ed_a, &r),
			 E2E_ERR_SIGNATURE);
	assert_int_equal(e2e_responder_finish(&b, sig_a, sig_a_len, ed_b, &r),
			 E2E_ERR_SIGNATURE);
	assert_int_equal(e2e_responder_finish(&b, sig_a, sig_a_len, ec_a, &r),
			 E2E_ERR_SIGNATURE);
	assert_int_equal(e2e_responder_finish(&b, b.sig_b, b.sig_b_len, ed_b, &r),
			 E2E_ERR_SIGNATURE);	/* sig_b is not sig_a */
	assert_int_equal(e2e_responder_finish(&b, sig_a, 0, ed_a, &r),
			 E2E_ERR_SIGNATURE);
	assert_false(r.has_dhr);
	assert_int_equal(e2e_responder_finish(&b, sig_a, sig_a_len, ed_a, &r),
			 E2E_OK);
	ratchet_clear(&r);
	e2e_initiator_clear(&a);
	e2e_initiator_clear(&a2);
	e2e_responder_clear(&b);
}

static void test_bad_arguments(void **state)
{
	struct e2e_initiator a;
	struct e2e_responder b;
	uint8_t n[32] = { 0 }, s[32] = { 9 };
	struct ratchet r;
	uint8_t sig[SIG_MAX_LEN];
	size_t sig_len;

	(void)state;
	tu_rand_reset();
	assert_int_equal(e2e_initiator_start(&a, "Alice", "bob"),
			 E2E_ERR_MALFORMED);
	assert_int_equal(e2e_initiator_start(&a, "alice", ""), E2E_ERR_MALFORMED);
	assert_int_equal(e2e_responder_accept(&b, "bob", "-x", n, s, ed_b, n, s),
			 E2E_ERR_MALFORMED);
	/* B without a private key cannot sign. */
	{
		const uint8_t *spki;
		size_t len;
		sm_key *pub;

		spki = key_spki(ed_b, &len);
		assert_int_equal(key_from_spki(spki, len, &pub), 0);
		assert_int_equal(e2e_initiator_start(&a, "alice", "bob"), E2E_OK);
		assert_int_equal(e2e_responder_accept(&b, "bob", "alice",
						      a.nonce_a, a.share_a, pub,
						      n, s), E2E_ERR_INTERNAL);
		key_unref(pub);
	}
	/* Finishing a cleared responder is out of order. */
	e2e_responder_clear(&b);
	assert_int_equal(e2e_responder_finish(&b, sig, 64, ed_a, &r),
			 E2E_ERR_STATE);
	e2e_initiator_clear(&a);
	assert_int_equal(e2e_initiator_finish(&a, n, s, sig, 64, ed_b, ed_a,
					      sig, &sig_len, &r), E2E_ERR_STATE);
	/* B cannot send before its first message arrived. */
	{
		struct pair p;
		uint8_t out[128];
		size_t len;

		exchange(ed_a, ed_b, &p);
		assert_int_equal(ratchet_encrypt(&p.b, (const uint8_t *)"x", 1,
						 out, &len), E2E_ERR_STATE);
		pair_clear(&p);
	}
	for (int i = E2E_OK; i <= E2E_ERR_INTERNAL; i++)
		assert_true(strlen(e2e_result_str(i)) > 1);
}

static void test_limits(void **state)
{
	struct pair p;
	uint8_t out[E2E_MAX + 16], back[E2E_MAX];
	static uint8_t big[E2E_MAX];
	size_t len, n;

	(void)state;
	exchange(ed_a, ed_b, &p);
	/* The largest plaintext that still fits an e2e field. */
	assert_int_equal(ratchet_encrypt(&p.a, big, E2E_MAX - 56, out, &len),
			 E2E_OK);
	assert_int_equal(len, E2E_MAX);
	assert_int_equal(ratchet_decrypt(&p.b, out, len, back, &n), E2E_OK);
	assert_int_equal(ratchet_encrypt(&p.a, big, E2E_MAX - 55, out, &len),
			 E2E_ERR_TOO_LARGE);
	/* Counters: the sender stops before Ns wraps. */
	p.a.ns = UINT32_MAX - 1;
	p.b.nr = UINT32_MAX - 1;
	xfer(&p.a, &p.b, 1);
	assert_int_equal(p.a.ns, UINT32_MAX);
	assert_int_equal(ratchet_encrypt(&p.a, big, 1, out, &len), E2E_ERR_LIMIT);
	/* The receiver refuses a message that would wrap Nr. */
	memcpy(out, p.a.dhs_pub, 32);
	be32_put(out + 32, 0);
	be32_put(out + 36, UINT32_MAX);
	expect_fail(&p.b, out, 80, E2E_ERR_LIMIT);
	pair_clear(&p);
}

/* ---- chats ---- */

struct chats {
	struct chat a, b;
};

static void chats_open(struct chats *c)
{
	struct pair p;

	exchange(ed_a, ed_b, &p);
	chat_init(&c->a, &p.a, true);
	chat_init(&c->b, &p.b, false);
	assert_false(p.a.has_cks);	/* chat_init cleared it */
}

static void chats_hello(struct chats *c)
{
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	struct chat_message ev;
	size_t len;

	assert_int_equal(chat_seal_hello(&c->a, out, &len), E2E_OK);
	assert_int_equal(chat_open(&c->b, out, len, pt, &ev), E2E_OK);
	assert_int_equal(ev.kind, CHAT_HELLO);
}

static void chats_clear(struct chats *c)
{
	chat_clear(&c->a);
	chat_clear(&c->b);
}

/* Send a TEXT and check it arrives with the expected id. */
static void chat_text(struct chat *s, struct chat *r, const char *text,
		      size_t len, uint32_t want_id)
{
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	struct chat_message ev;
	uint32_t id;
	size_t n;

	assert_int_equal(chat_seal_text(s, text, len, &id, out, &n), E2E_OK);
	assert_int_equal(id, want_id);
	assert_int_equal(chat_open(r, out, n, pt, &ev), E2E_OK);
	assert_int_equal(ev.kind, CHAT_TEXT);
	assert_int_equal(ev.id, want_id);
	assert_int_equal(ev.text_len, len);
	assert_memory_equal(ev.text, text, len);
}

/* Seal a raw plaintext with s's ratchet, bypassing the chat rules, and
 * expect r to refuse it with res, unchanged. The sender's ratchet is
 * rewound so that a genuine message can follow. */
static void forge(struct chat *s, struct chat *r, const uint8_t *pt,
		  size_t len, enum e2e_result res)
{
	struct ratchet saved = s->r;
	struct chat before = *r;
	uint8_t out[E2E_MAX], back[CHAT_PT_MAX];
	struct chat_message ev;
	size_t n;

	assert_int_equal(ratchet_encrypt(&s->r, pt, len, out, &n), E2E_OK);
	assert_int_equal(chat_open(r, out, n, back, &ev), res);
	assert_int_equal(ev.kind, 0);
	assert_null(ev.text);
	assert_memory_equal(&before, r, sizeof(before));
	s->r = saved;
	ratchet_clear(&saved);
	chat_clear(&before);
}

static void test_chat_hello_first(void **state)
{
	struct chats c;
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	static const uint8_t text1[] = { 1, 0, 0, 0, 1, 0, 1, 'x' };
	static const uint8_t hello_extra[] = { 3, 0 };
	uint32_t id;
	size_t len;

	(void)state;
	chats_open(&c);
	assert_false(chat_can_send(&c.a));
	assert_false(chat_can_send(&c.b));
	assert_int_equal(chat_seal_text(&c.a, "x", 1, &id, out, &len), E2E_ERR_STATE);
	assert_int_equal(chat_seal_text(&c.b, "x", 1, &id, out, &len), E2E_ERR_STATE);
	assert_int_equal(chat_seal_hello(&c.b, out, &len), E2E_ERR_STATE);
	assert_int_equal(chat_seal_receipt(&c.a, 1, out, &len), E2E_ERR_STATE);
	/* B wants HELLO first and HELLO has no body. */
	forge(&c.a, &c.b, text1, sizeof(text1), E2E_ERR_PROTOCOL);
	forge(&c.a, &c.b, hello_extra, sizeof(hello_extra), E2E_ERR_MALFORMED);
	forge(&c.a, &c.b, pt, 0, E2E_ERR_MALFORMED);
	chats_hello(&c);
	assert_true(chat_can_send(&c.a));
	assert_true(chat_can_send(&c.b));
	assert_int_equal(chat_seal_hello(&c.a, out, &len), E2E_ERR_STATE);
	chat_text(&c.b, &c.a, "first from b", 12, 1);
	chat_text(&c.a, &c.b, "first from a", 12, 1);
	chats_clear(&c);
}

static void test_chat_second_hello(void **state)
{
	struct chats c;
	static const uint8_t hello[] = { 3 };
	static const uint8_t kinds[] = { 0, 4, 0x7f, 0xff };

	(void)state;
	chats_open(&c);
	chats_hello(&c);
	forge(&c.a, &c.b, hello, 1, E2E_ERR_PROTOCOL);	/* again */
	forge(&c.b, &c.a, hello, 1, E2E_ERR_PROTOCOL);	/* from B */
	for (size_t i = 0; i < sizeof(kinds); i++) {
		forge(&c.a, &c.b, &kinds[i], 1, E2E_ERR_PROTOCOL);
		forge(&c.b, &c.a, &kinds[i], 1, E2E_ERR_PROTOCOL);
	}
	chat_text(&c.a, &c.b, "still fine", 10, 1);
	chats_clear(&c);
}

/* A hears nothing before it sent HELLO. */
static void test_chat_a_before_hello(void **state)
{
	struct chats c;
	static const uint8_t hello[] = { 3 };
	static const uint8_t text1[] = { 1, 0, 0, 0, 1, 0, 0 };
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	struct chat_message ev;
	size_t len;

	(void)state;
	chats_open(&c);
	/* A HELLO that A's chat layer does not know it sent. */
	assert_int_equal(ratchet_encrypt(&c.a.r, hello, 1, out, &len), E2E_OK);
	assert_int_equal(chat_open(&c.b, out, len, pt, &ev), E2E_OK);
	forge(&c.b, &c.a, text1, sizeof(text1), E2E_ERR_PROTOCOL);
	chats_clear(&c);
}

static void test_chat_ids(void **state)
{
	struct chats c;
	uint8_t text[8] = { 1, 0, 0, 0, 0, 0, 1, 'q' };

	(void)state;
	chats_open(&c);
	chats_hello(&c);
	for (uint32_t i = 1; i <= 5; i++)
		chat_text(&c.a, &c.b, "abc", 3, i);
	for (uint32_t i = 1; i <= 3; i++)
		chat_text(&c.b, &c.a, "xyz", 3, i);
	/* Next at B is 6: 5 (repeat), 7 (gap), 0, huge all fail. */
	be32_put(text + 1, 5);
	forge(&c.a, &c.b, text, sizeof(text), E2E_ERR_PROTOCOL);
	be32_put(text + 1, 7);
	forge(&c.a, &c.b, text, sizeof(text), E2E_ERR_PROTOCOL);
	be32_put(text + 1, 0);
	forge(&c.a, &c.b, text, sizeof(text), E2E_ERR_PROTOCOL);
	be32_put(text + 1, UINT32_MAX);
	forge(&c.a, &c.b, text, sizeof(text), E2E_ERR_PROTOCOL);
	/* Right id, broken framing. */
	be32_put(text + 1, 6);
	forge(&c.a, &c.b, text, sizeof(text) - 1, E2E_ERR_MALFORMED);
	forge(&c.a, &c.b, text, 6, E2E_ERR_MALFORMED);
	forge(&c.a, &c.b, text, 3, E2E_ERR_MALFORMED);
	{
		uint8_t extra[9];

		memcpy(extra, text, 8);
		extra[8] = 0;
		forge(&c.a, &c.b, extra, 9, E2E_ERR_MALFORMED);
	}
	chat_text(&c.a, &c.b, "q", 1, 6);
	chat_text(&c.a, &c.b, "abc", 3, 7);
	chat_text(&c.b, &c.a, "xyz", 3, 4);
	/* An id counter at its end. */
	c.a.next_tx_id = UINT32_MAX;
	c.b.next_rx_id = UINT32_MAX;
	chat_text(&c.a, &c.b, "last", 4, UINT32_MAX);
	{
		uint8_t out[E2E_MSG_MAX];
		uint32_t id;
		size_t len;

		assert_int_equal(chat_seal_text(&c.a, "x", 1, &id, out, &len),
				 E2E_ERR_LIMIT);
		be32_put(text + 1, 0);
		forge(&c.a, &c.b, text, sizeof(text), E2E_ERR_LIMIT);
	}
	chats_clear(&c);
}

static void test_chat_sizes(void **state)
{
	struct chats c;
	static char big[CHAT_TEXT_MAX + 2];
	static uint8_t raw[CHAT_PT_MAX + 8];
	uint8_t out[E2E_MSG_MAX];
	uint32_t id;
	size_t len;

	(void)state;
	memset(big, 'z', sizeof(big));
	chats_open(&c);
	chats_hello(&c);
	chat_text(&c.a, &c.b, big, CHAT_TEXT_MAX, 1);
	chat_text(&c.a, &c.b, big, 0, 2);
	assert_int_equal(chat_seal_text(&c.a, big, CHAT_TEXT_MAX + 1, &id, out,
					&len), E2E_ERR_TOO_LARGE);
	assert_int_equal(chat_seal_text(&c.a, NULL, 3, &id, out, &len),
			 E2E_ERR_MALFORMED);
	/* A 4097-byte TEXT from a peer that ignores the rule. */
	raw[0] = CHAT_TEXT;
	be32_put(raw + 1, 3);
	raw[5] = (CHAT_TEXT_MAX + 1) >> 8;
	raw[6] = (CHAT_TEXT_MAX + 1) & 0xff;
	forge(&c.a, &c.b, raw, 7 + CHAT_TEXT_MAX + 1, E2E_ERR_TOO_LARGE);
	forge(&c.a, &c.b, raw, 7, E2E_ERR_TOO_LARGE);	/* as soon as it is read */
	raw[5] = 0xff;
	raw[6] = 0xff;
	forge(&c.a, &c.b, raw, 7 + CHAT_TEXT_MAX + 1, E2E_ERR_TOO_LARGE);
	chat_text(&c.a, &c.b, big, CHAT_TEXT_MAX, 3);
	chats_clear(&c);
}

static void test_chat_receipts(void **state)
{
	struct chats c;
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	uint8_t rc[6] = { 2, 0, 0, 0, 1, 0 };
	struct chat_message ev;
	size_t len;

	(void)state;
	chats_open(&c);
	chats_hello(&c);
	chat_text(&c.a, &c.b, "one", 3, 1);
	chat_text(&c.a, &c.b, "two", 3, 2);
	assert_int_equal(chat_seal_receipt(&c.b, 2, out, &len), E2E_OK);
	assert_int_equal(chat_open(&c.a, out, len, pt, &ev), E2E_OK);
	assert_int_equal(ev.kind, CHAT_RECEIPT);
	assert_int_equal(ev.id, 2);
	assert_null(ev.text);
	assert_int_equal(chat_seal_receipt(&c.b, 1, out, &len), E2E_OK);
	assert_int_equal(chat_open(&c.a, out, len, pt, &ev), E2E_OK);
	assert_int_equal(ev.id, 1);
	/* B cannot acknowledge what it never received. */
	assert_int_equal(chat_seal_receipt(&c.b, 3, out, &len), E2E_ERR_STATE);
	assert_int_equal(chat_seal_receipt(&c.b, 0, out, &len), E2E_ERR_STATE);
	assert_int_equal(chat_seal_receipt(&c.a, 1, out, &len), E2E_ERR_STATE);
	/* A receipt for an id never sent is ignored: reported as id 0. */
	be32_put(rc + 1, 3);
	assert_int_equal(ratchet_encrypt(&c.b.r, rc, 5, out, &len), E2E_OK);
	assert_int_equal(chat_open(&c.a, out, len, pt, &ev), E2E_OK);
	assert_int_equal(ev.kind, CHAT_RECEIPT);
	assert_int_equal(ev.id, 0);
	be32_put(rc + 1, 0);
	assert_int_equal(ratchet_encrypt(&c.b.r, rc, 5, out, &len), E2E_OK);
	assert_int_equal(chat_open(&c.a, out, len, pt, &ev), E2E_OK);
	assert_int_equal(ev.id, 0);
	/* Malformed receipts. */
	forge(&c.b, &c.a, rc, 6, E2E_ERR_MALFORMED);
	forge(&c.b, &c.a, rc, 4, E2E_ERR_MALFORMED);
	forge(&c.b, &c.a, rc, 1, E2E_ERR_MALFORMED);
	/* Receipts do not use TEXT ids. */
	chat_text(&c.a, &c.b, "three", 5, 3);
	chat_text(&c.b, &c.a, "b one", 5, 1);
	chats_clear(&c);
}

/* A forged or replayed message at the chat level leaves the chat usable. */
static void test_chat_tamper(void **state)
{
	struct chats c;
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	struct chat_message ev;
	struct chat before;
	uint32_t id;
	size_t len;

	(void)state;
	chats_open(&c);
	chats_hello(&c);
	assert_int_equal(chat_seal_text(&c.a, "hi", 2, &id, out, &len), E2E_OK);
	before = c.b;
	out[len - 1] ^= 1;
	assert_int_equal(chat_open(&c.b, out, len, pt, &ev), E2E_ERR_DECRYPT);
	assert_memory_equal(&before, &c.b, sizeof(before));
	assert_int_equal(chat_open(&c.b, out, E2E_MAX + 1, pt, &ev),
			 E2E_ERR_MALFORMED);
	out[len - 1] ^= 1;
	assert_int_equal(chat_open(&c.b, out, len, pt, &ev), E2E_OK);
	assert_int_equal(chat_open(&c.b, out, len, pt, &ev), E2E_ERR_ORDER);
	chat_text(&c.a, &c.b, "ok", 2, 2);
	chat_clear(&before);
	chats_clear(&c);
}

/* ---- set-up ---- */

static int group_setup(void **state)
{
	EVP_PKEY *pk;

	(void)state;
	if (crypto_init() < 0)
		return -1;
	V = tu_load_vectors("e2e.json");
	ed_a = seed_key("inputs.alice_ed25519_seed");
	ed_b = seed_key("inputs.bob_ed25519_seed");
	if (key_generate(KEY_ECDSA_P256, &ec_a) < 0 ||
	    key_generate(KEY_RSA, &rsa_a) < 0)
		return -1;
	/* key_generate makes 3072-bit RSA; §1 allows 2048 too. */
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (!pk || key_wrap(pk, &rsa2048) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	key_unref(ed_a);
	key_unref(ed_b);
	key_unref(ec_a);
	key_unref(rsa_a);
	key_unref(rsa2048);
	json_decref(V);
	tu_rand_reset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_keys),
		cmocka_unit_test(test_vector_exchange),
		cmocka_unit_test(test_vector_records),
		cmocka_unit_test(test_vector_messages),
		cmocka_unit_test(test_vector_chat),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_alternating),
		cmocka_unit_test(test_bursts),
		cmocka_unit_test(test_one_way_10000),
		cmocka_unit_test(test_simultaneous),
		cmocka_unit_test(test_random_interleaving),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_gap_and_reorder),
		cmocka_unit_test(test_gap_across_step),
		cmocka_unit_test(test_zero_share),
		cmocka_unit_test(test_responder_restore),
		cmocka_unit_test(test_bad_signatures),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_chat_hello_first),
		cmocka_unit_test(test_chat_second_hello),
		cmocka_unit_test(test_chat_a_before_hello),
		cmocka_unit_test(test_chat_ids),
		cmocka_unit_test(test_chat_sizes),
		cmocka_unit_test(test_chat_receipts),
		cmocka_unit_test(test_chat_tamper),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
