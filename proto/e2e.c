/* e2e.c - the relayed end-to-end exchange (§6) and the Double Ratchet (§7).
 *
 * Every function that fails leaves its output cleansed; ratchet_decrypt
 * and chat_open work on a copy of the state and commit it only when the
 * whole message has been accepted, so a forged, replayed or reordered
 * message changes nothing and the next genuine one still decrypts.
 */
#include "e2e.h"

#include <errno.h>
#include <string.h>

#include "msg.h"
#include "rand.h"

#define T_LABEL "secmsg/1 e2e"
#define ACCEPT_LABEL "secmsg/1 e2e accept"
#define CONFIRM_LABEL "secmsg/1 e2e confirm"
#define ROOT_INFO "secmsg/1 e2e root"
#define RATCHET_INFO "secmsg/1 ratchet"
#define MESSAGE_INFO "secmsg/1 message"
#define KEY_LEN 32
#define MK_MATERIAL (AEAD_KEY_LEN + AEAD_NONCE_LEN)
#define AAD_LEN (SHA256_LEN + E2E_HEADER_LEN)
#define E2E_OVERHEAD (E2E_HEADER_LEN + AEAD_TAG_LEN)
/* T with two one-byte names. */
#define T_MIN_LEN (sizeof(T_LABEL) + 2 * 2 + 4 * 32)

_Static_assert(E2E_MSG_MAX <= E2E_MAX, "chat messages fit an e2e field");

const char *e2e_result_str(enum e2e_result r)
{
	switch (r) {
	case E2E_OK:
		return "ok";
	case E2E_ERR_SIGNATURE:
		return "the peer's signature does not verify";
	case E2E_ERR_ZERO_SHARE:
		return "the key agreement gave an all-zero secret";
	case E2E_ERR_PEER_KEY:
		return "the peer's key is not usable";
	case E2E_ERR_MALFORMED:
		return "malformed message";
	case E2E_ERR_DECRYPT:
		return "a chat message failed authentication";
	case E2E_ERR_ORDER:
		return "a chat message arrived out of order or twice";
	case E2E_ERR_PROTOCOL:
		return "the peer broke the chat protocol";
	case E2E_ERR_TOO_LARGE:
		return "a chat message is too large";
	case E2E_ERR_LIMIT:
		return "the chat has reached its message limit";
	case E2E_ERR_STATE:
		return "not allowed in the chat's current state";
	case E2E_ERR_INTERNAL:
		return "internal error";
	}
	return "unknown error";
}

/* ---- the exchange (§6) ---- */

static int put_name(uint8_t *p, const char *name)
{
	size_t n = strlen(name);

	p[0] = (uint8_t)n;
	memcpy(p + 1, name, n);
	return (int)n + 1;
}

/*
 * T = "secmsg/1 e2e" 0x00 || name(A) || name(B) || nonce_a || share_a ||
 *     nonce_b || share_b. Names were validated by the caller.
 */
static size_t build_t(uint8_t t[E2E_T_MAX], const char *a, const char *b,
		      const uint8_t *nonce_a, const uint8_t *share_a,
		      const uint8_t *nonce_b, const uint8_t *share_b)
{
	size_t n = sizeof(T_LABEL);	/* label and its 0x00 */

	memcpy(t, T_LABEL, n);
	n += put_name(t + n, a);
	n += put_name(t + n, b);
	memcpy(t + n, nonce_a, E2E_NONCE_LEN);
	memcpy(t + n + 32, share_a, X25519_LEN);
	memcpy(t + n + 64, nonce_b, E2E_NONCE_LEN);
	memcpy(t + n + 96, share_b, X25519_LEN);
	return n + 128;
}

/* label 0x00 || SHA-256(p1 || p2): what the two exchange signatures sign. */
static int sig_input(uint8_t *out, const char *label, const uint8_t *p1,
		     size_t l1, const uint8_t *p2, size_t l2)
{
	size_t n = strlen(label) + 1;
	struct iov_c v[2] = { { p1, l1 }, { p2, l2 } };

	memcpy(out, label, n);
	return crypto_sha256(v, 2, out + n) < 0 ? -1 : (int)(n + SHA256_LEN);
}

static enum e2e_result sign_input(const sm_key *k, const char *label,
				  const uint8_t *p1, size_t l1,
				  const uint8_t *p2, size_t l2, uint8_t *sig,
				  size_t *sig_len)
{
	uint8_t in[sizeof(CONFIRM_LABEL) + SHA256_LEN];
	int n = sig_input(in, label, p1, l1, p2, l2);

	*sig_len = SIG_MAX_LEN;
	if (n < 0 || !k || !key_has_private(k) ||
	    key_sign(k, in, (size_t)n, sig, sig_len) < 0 ||
	    *sig_len == 0 || *sig_len > SIG_MAX_LEN) {
		*sig_len = 0;
		return E2E_ERR_INTERNAL;
	}
	return E2E_OK;
}

static enum e2e_result verify_input(const sm_key *k, const char *label,
				    const uint8_t *p1, size_t l1,
				    const uint8_t *p2, size_t l2,
				    const uint8_t *sig, size_t sig_len)
{
	uint8_t in[sizeof(CONFIRM_LABEL) + SHA256_LEN];
	int n = sig_input(in, label, p1, l1, p2, l2);

	if (n < 0)
		return E2E_ERR_INTERNAL;
	if (!k || key_check_allowed(k) < 0)
		return E2E_ERR_PEER_KEY;
	if (!sig || sig_len == 0 || sig_len > SIG_MAX_LEN ||
	    key_verify(k, in, (size_t)n, sig, sig_len) < 0)
		return E2E_ERR_SIGNATURE;
	return E2E_OK;
}

/* X25519 with §1's all-zero rule mapped to our result. */
static enum e2e_result dh(const uint8_t priv[X25519_LEN],
			  const uint8_t pub[X25519_LEN], uint8_t out[X25519_LEN])
{
	int e = crypto_x25519(priv, pub, out);

	if (e == 0)
		return E2E_OK;
	return e == -EINVAL ? E2E_ERR_ZERO_SHARE : E2E_ERR_INTERNAL;
}

/*
 * Z, SK and RK0 and AD from the finished transcript:
 * SK = Extract(SHA-256(T || sig_b || sig_a), Z), RK0 = Expand(SK, root, 32).
 */
static enum e2e_result derive_root(const uint8_t *t, size_t t_len,
				   const uint8_t *sig_b, size_t sig_b_len,
				   const uint8_t *sig_a, size_t sig_a_len,
				   const uint8_t priv[X25519_LEN],
				   const uint8_t peer[X25519_LEN],
				   uint8_t rk0[KEY_LEN], uint8_t ad[SHA256_LEN])
{
	struct iov_c v[3] = { { t, t_len }, { sig_b, sig_b_len },
			      { sig_a, sig_a_len } };
	uint8_t z[X25519_LEN], salt[SHA256_LEN], sk[SHA256_LEN];
	enum e2e_result res = dh(priv, peer, z);

	if (res == E2E_OK &&
	    (crypto_sha256(v, 3, salt) < 0 ||
	     crypto_hkdf_extract(salt, sizeof(salt), z, sizeof(z), sk) < 0 ||
	     crypto_hkdf_expand(sk, ROOT_INFO, rk0, KEY_LEN) < 0 ||
	     crypto_sha256(v, 1, ad) < 0))
		res = E2E_ERR_INTERNAL;
	crypto_cleanse(z, sizeof(z));
	crypto_cleanse(sk, sizeof(sk));
	return res;
}

/* KDF_RK: rk, ck = Expand(Extract(rk, dh_out), "secmsg/1 ratchet", 64). */
static enum e2e_result kdf_rk(uint8_t rk[KEY_LEN], const uint8_t priv[X25519_LEN],
			      const uint8_t pub[X25519_LEN], uint8_t ck[KEY_LEN])
{
	uint8_t out[X25519_LEN], prk[SHA256_LEN], okm[2 * KEY_LEN];
	enum e2e_result res = dh(priv, pub, out);

	if (res == E2E_OK &&
	    (crypto_hkdf_extract(rk, KEY_LEN, out, sizeof(out), prk) < 0 ||
	     crypto_hkdf_expand(prk, RATCHET_INFO, okm, sizeof(okm)) < 0))
		res = E2E_ERR_INTERNAL;
	if (res == E2E_OK) {
		memcpy(rk, okm, KEY_LEN);
		memcpy(ck, okm + KEY_LEN, KEY_LEN);
	}
	crypto_cleanse(out, sizeof(out));
	crypto_cleanse(prk, sizeof(prk));
	crypto_cleanse(okm, sizeof(okm));
	return res;
}

static bool names_ok(const char *self, const char *peer)
{
	return self && peer && name_valid_str(self) && name_valid_str(peer);
}

enum e2e_result e2e_initiator_start(struct e2e_initiator *a, const char *self,
				    const char *peer)
{
	memset(a, 0, sizeof(*a));
	if (!names_ok(self, peer))
		return E2E_ERR_MALFORMED;
	strcpy(a->self, self);
	strcpy(a->peer, peer);
	if (rand_bytes(a->nonce_a, sizeof(a->nonce_a)) < 0 ||
	    crypto_x25519_keygen(a->eph_priv, a->share_a) < 0) {
		e2e_initiator_clear(a);
		return E2E_ERR_INTERNAL;
	}
	return E2E_OK;
}

/* A's ratchet: DHr = share_b, a fresh DHs, RK, CKs = KDF_RK(RK0, DH). */
static enum e2e_result init_alice(struct ratchet *r, const uint8_t rk0[KEY_LEN],
				  const uint8_t ad[SHA256_LEN],
				  const uint8_t share_b[X25519_LEN])
{
	memcpy(r->rk, rk0, KEY_LEN);
	memcpy(r->ad, ad, SHA256_LEN);
	memcpy(r->dhr, share_b, X25519_LEN);
	r->has_dhr = true;
	if (crypto_x25519_keygen(r->dhs_priv, r->dhs_pub) < 0)
		return E2E_ERR_INTERNAL;
	r->has_cks = true;
	return kdf_rk(r->rk, r->dhs_priv, r->dhr, r->cks);
}

enum e2e_result e2e_initiator_finish(struct e2e_initiator *a,
				     const uint8_t nonce_b[E2E_NONCE_LEN],
				     const uint8_t share_b[X25519_LEN],
				     const uint8_t *sig_b, size_t sig_b_len,
				     const sm_key *peer_key, const sm_key *self_key,
				     uint8_t *sig_a, size_t *sig_a_len,
				     struct ratchet *r)
{
	uint8_t t[E2E_T_MAX], rk0[KEY_LEN], ad[SHA256_LEN];
	size_t t_len;
	enum e2e_result res;

	memset(r, 0, sizeof(*r));
	*sig_a_len = 0;
	if (!names_ok(a->self, a->peer))
		return E2E_ERR_STATE;
	t_len = build_t(t, a->self, a->peer, a->nonce_a, a->share_a, nonce_b,
			share_b);
	res = verify_input(peer_key, ACCEPT_LABEL, t, t_len, NULL, 0, sig_b,
			   sig_b_len);
	if (res == E2E_OK)
		res = sign_input(self_key, CONFIRM_LABEL, t, t_len, sig_b,
				 sig_b_len, sig_a, sig_a_len);
	if (res == E2E_OK)
		res = derive_root(t, t_len, sig_b, sig_b_len, sig_a, *sig_a_len,
				  a->eph_priv, share_b, rk0, ad);
	if (res == E2E_OK)
		res = init_alice(r, rk0, ad, share_b);
	if (res != E2E_OK) {
		ratchet_clear(r);
		if (*sig_a_len)
			crypto_cleanse(sig_a, *sig_a_len);
		*sig_a_len = 0;
	}
	crypto_cleanse(rk0, sizeof(rk0));
	return res;
}

void e2e_initiator_clear(struct e2e_initiator *a)
{
	crypto_cleanse(a, sizeof(*a));
}

enum e2e_result e2e_responder_accept(struct e2e_responder *b, const char *self,
				     const char *peer,
				     const uint8_t nonce_a[E2E_NONCE_LEN],
				     const uint8_t share_a[X25519_LEN],
				     const sm_key *self_key,
				     uint8_t nonce_b[E2E_NONCE_LEN],
				     uint8_t share_b[X25519_LEN])
{
	uint8_t z[X25519_LEN];
	enum e2e_result res = E2E_OK;

	memset(b, 0, sizeof(*b));
	if (!names_ok(self, peer))
		return E2E_ERR_MALFORMED;
	if (rand_bytes(nonce_b, E2E_NONCE_LEN) < 0 ||
	    crypto_x25519_keygen(b->eph_priv, share_b) < 0)
		res = E2E_ERR_INTERNAL;
	/* Refuse a low-order share_a now rather than sign over it. */
	if (res == E2E_OK)
		res = dh(b->eph_priv, share_a, z);
	crypto_cleanse(z, sizeof(z));
	if (res == E2E_OK) {
		memcpy(b->share_a, share_a, X25519_LEN);
		b->t_len = build_t(b->t, peer, self, nonce_a, share_a, nonce_b,
				   share_b);
		res = sign_input(self_key, ACCEPT_LABEL, b->t, b->t_len, NULL, 0,
				 b->sig_b, &b->sig_b_len);
	}
	if (res != E2E_OK)
		e2e_responder_clear(b);
	return res;
}

enum e2e_result e2e_responder_finish(struct e2e_responder *b,
				     const uint8_t *sig_a, size_t sig_a_len,
				     const sm_key *peer_key, struct ratchet *r)
{
	enum e2e_result res;

	memset(r, 0, sizeof(*r));
	if (b->t_len < T_MIN_LEN || b->t_len > E2E_T_MAX || b->sig_b_len == 0)
		return E2E_ERR_STATE;
	res = verify_input(peer_key, CONFIRM_LABEL, b->t, b->t_len, b->sig_b,
			   b->sig_b_len, sig_a, sig_a_len);
	if (res == E2E_OK)
		res = derive_root(b->t, b->t_len, b->sig_b, b->sig_b_len, sig_a,
				  sig_a_len, b->eph_priv, b->share_a, r->rk,
				  r->ad);
	if (res != E2E_OK) {
		ratchet_clear(r);
		return res;
	}
	/* B's DHs is its exchange pair; share_b ends T. */
	memcpy(r->dhs_priv, b->eph_priv, X25519_LEN);
	memcpy(r->dhs_pub, b->t + b->t_len - X25519_LEN, X25519_LEN);
	return E2E_OK;
}

void e2e_responder_clear(struct e2e_responder *b)
{
	crypto_cleanse(b, sizeof(*b));
}

/* ---- the Double Ratchet (§7) ---- */

/* KDF_CK, then the message key material: AES key || nonce. */
static enum e2e_result kdf_msg(uint8_t ck[KEY_LEN], uint8_t km[MK_MATERIAL])
{
	static const uint8_t one = 0x01, two = 0x02, zero[SHA256_LEN];
	uint8_t mk[SHA256_LEN], next[SHA256_LEN], prk[SHA256_LEN];
	enum e2e_result res = E2E_OK;

	if (crypto_hmac_sha256(ck, KEY_LEN, &one, 1, mk) < 0 ||
	    crypto_hmac_sha256(ck, KEY_LEN, &two, 1, next) < 0 ||
	    crypto_hkdf_extract(zero, sizeof(zero), mk, sizeof(mk), prk) < 0 ||
	    crypto_hkdf_expand(prk, MESSAGE_INFO, km, MK_MATERIAL) < 0)
		res = E2E_ERR_INTERNAL;
	else
		memcpy(ck, next, KEY_LEN);
	crypto_cleanse(mk, sizeof(mk));
	crypto_cleanse(next, sizeof(next));
	crypto_cleanse(prk, sizeof(prk));
	return res;
}

static void put_header(uint8_t h[E2E_HEADER_LEN], const struct ratchet *r)
{
	memcpy(h, r->dhs_pub, X25519_LEN);
	be32_put(h + X25519_LEN, r->pn);
	be32_put(h + X25519_LEN + 4, r->ns);
}

static void make_aad(uint8_t aad[AAD_LEN], const struct ratchet *r,
		     const uint8_t h[E2E_HEADER_LEN])
{
	memcpy(aad, r->ad, SHA256_LEN);
	memcpy(aad + SHA256_LEN, h, E2E_HEADER_LEN);
}

enum e2e_result ratchet_encrypt(struct ratchet *r, const uint8_t *pt,
				size_t len, uint8_t *out, size_t *out_len)
{
	uint8_t ck[KEY_LEN], km[MK_MATERIAL], aad[AAD_LEN];
	enum e2e_result res;

	*out_len = 0;
	if (!r->has_cks)
		return E2E_ERR_STATE;
	if (r->ns == UINT32_MAX)
		return E2E_ERR_LIMIT;
	if (len > E2E_MAX - E2E_OVERHEAD)
		return E2E_ERR_TOO_LARGE;
	put_header(out, r);
	make_aad(aad, r, out);
	memcpy(ck, r->cks, KEY_LEN);
	res = kdf_msg(ck, km);
	if (res == E2E_OK &&
	    crypto_aead_seal(km, km + AEAD_KEY_LEN, aad, sizeof(aad), pt, len,
			     out + E2E_HEADER_LEN) < 0)
		res = E2E_ERR_INTERNAL;
	if (res == E2E_OK) {
		memcpy(r->cks, ck, KEY_LEN);
		r->ns++;
		*out_len = len + E2E_OVERHEAD;
	}
	crypto_cleanse(ck, sizeof(ck));
	crypto_cleanse(km, sizeof(km));
	return res;
}

/* The receiving half of a DH ratchet step; the sending half follows once
 * the message has decrypted (so a forgery draws no randomness). */
static enum e2e_result step_recv(struct ratchet *s, const uint8_t dh_pub[X25519_LEN])
{
	s->pn = s->ns;
	s->ns = 0;
	s->nr = 0;
	memcpy(s->dhr, dh_pub, X25519_LEN);
	s->has_dhr = true;
	s->has_ckr = true;
	return kdf_rk(s->rk, s->dhs_priv, s->dhr, s->ckr);
}

static enum e2e_result step_send(struct ratchet *s)
{
	if (crypto_x25519_keygen(s->dhs_priv, s->dhs_pub) < 0)
		return E2E_ERR_INTERNAL;
	s->has_cks = true;
	return kdf_rk(s->rk, s->dhs_priv, s->dhr, s->cks);
}

/* Everything but the state commit; s is the caller's scratch copy. */
static enum e2e_result decrypt_on(struct ratchet *s, const uint8_t *e2e,
				  size_t len, uint8_t *pt)
{
	uint8_t km[MK_MATERIAL], aad[AAD_LEN];
	uint32_t pn = be32_get(e2e + X25519_LEN);
	uint32_t n = be32_get(e2e + X25519_LEN + 4);
	bool step = !s->has_dhr ||
		    crypto_memcmp(e2e, s->dhr, X25519_LEN) != 0;
	enum e2e_result res = E2E_OK;

	if (step && pn != s->nr)
		return E2E_ERR_ORDER;
	if (step)
		res = step_recv(s, e2e);
	if (res != E2E_OK)
		return res;
	if (!s->has_ckr || n != s->nr)
		return E2E_ERR_ORDER;
	if (s->nr == UINT32_MAX)
		return E2E_ERR_LIMIT;
	res = kdf_msg(s->ckr, km);
	memcpy(aad, s->ad, SHA256_LEN);
	memcpy(aad + SHA256_LEN, e2e, E2E_HEADER_LEN);
	if (res == E2E_OK &&
	    crypto_aead_open(km, km + AEAD_KEY_LEN, aad, sizeof(aad),
			     e2e + E2E_HEADER_LEN, len - E2E_HEADER_LEN, pt) < 0)
		res = E2E_ERR_DECRYPT;
	crypto_cleanse(km, sizeof(km));
	if (res == E2E_OK)
		s->nr++;
	if (res == E2E_OK && step)
		res = step_send(s);
	return res;
}

enum e2e_result ratchet_decrypt(struct ratchet *r, const uint8_t *e2e,
				size_t len, uint8_t *pt, size_t *pt_len)
{
	struct ratchet s;
	enum e2e_result res;

	*pt_len = 0;
	if (!e2e || len < E2E_OVERHEAD)
		return E2E_ERR_MALFORMED;
	s = *r;
	res = decrypt_on(&s, e2e, len, pt);
	if (res == E2E_OK) {
		*r = s;
		*pt_len = len - E2E_OVERHEAD;
	} else {
		crypto_cleanse(pt, len - E2E_OVERHEAD);
	}
	crypto_cleanse(&s, sizeof(s));
	return res;
}

void ratchet_clear(struct ratchet *r)
{
	crypto_cleanse(r, sizeof(*r));
}

/* ---- chats (§7's rules over the ratchet) ---- */

void chat_init(struct chat *c, struct ratchet *r, bool initiator)
{
	memset(c, 0, sizeof(*c));
	c->r = *r;
	ratchet_clear(r);
	c->initiator = initiator;
	c->next_tx_id = 1;
	c->next_rx_id = 1;
}

void chat_clear(struct chat *c)
{
	crypto_cleanse(c, sizeof(*c));
}

bool chat_can_send(const struct chat *c)
{
	return c->hello_done;
}

static enum e2e_result seal(struct chat *c, const uint8_t *pt, size_t len,
			    uint8_t *out, size_t *out_len)
{
	return ratchet_encrypt(&c->r, pt, len, out, out_len);
}

enum e2e_result chat_seal_hello(struct chat *c, uint8_t *out, size_t *out_len)
{
	static const uint8_t hello = CHAT_HELLO;
	enum e2e_result res;

	*out_len = 0;
	if (!c->initiator || c->hello_done)
		return E2E_ERR_STATE;
	res = seal(c, &hello, 1, out, out_len);
	if (res == E2E_OK)
		c->hello_done = true;
	return res;
}

enum e2e_result chat_seal_text(struct chat *c, const char *text, size_t len,
			       uint32_t *id, uint8_t *out, size_t *out_len)
{
	uint8_t pt[CHAT_PT_MAX];
	struct writer w;
	enum e2e_result res;

	*out_len = 0;
	*id = 0;
	if (len > CHAT_TEXT_MAX)
		return E2E_ERR_TOO_LARGE;
	if (!text && len)
		return E2E_ERR_MALFORMED;
	if (!chat_can_send(c))
		return E2E_ERR_STATE;
	if (c->next_tx_id == 0)
		return E2E_ERR_LIMIT;
	wr_init(&w, pt, sizeof(pt));
	wr_u8(&w, CHAT_TEXT);
	wr_u32(&w, c->next_tx_id);
	wr_bytes16(&w, text, len);
	res = wr_error(&w) ? E2E_ERR_INTERNAL : seal(c, pt, w.len, out, out_len);
	if (res == E2E_OK) {
		*id = c->next_tx_id;
		c->last_tx_id = c->next_tx_id++;
	}
	crypto_cleanse(pt, w.len);
	return res;
}

enum e2e_result chat_seal_receipt(struct chat *c, uint32_t id, uint8_t *out,
				  size_t *out_len)
{
	uint8_t pt[5] = { CHAT_RECEIPT };

	*out_len = 0;
	if (!chat_can_send(c))
		return E2E_ERR_STATE;
	/* Only a TEXT that arrived can be acknowledged. */
	if (id == 0 || id >= c->next_rx_id)
		return E2E_ERR_STATE;
	be32_put(pt + 1, id);
	return seal(c, pt, sizeof(pt), out, out_len);
}

static enum e2e_result open_text(struct chat *c, struct reader *rd,
				 struct chat_message *ev)
{
	uint16_t n;

	ev->id = rd_u32(rd);
	n = rd_u16(rd);
	if (rd_error(rd))
		return E2E_ERR_MALFORMED;
	if (n > CHAT_TEXT_MAX)
		return E2E_ERR_TOO_LARGE;
	ev->text = rd_ptr(rd, n);
	ev->text_len = n;
	if (rd_end(rd) < 0)
		return E2E_ERR_MALFORMED;
	if (c->next_rx_id == 0)
		return E2E_ERR_LIMIT;
	if (ev->id != c->next_rx_id)
		return E2E_ERR_PROTOCOL;
	return E2E_OK;
}

static enum e2e_result open_receipt(const struct chat *c, struct reader *rd,
				    struct chat_message *ev)
{
	ev->id = rd_u32(rd);
	if (rd_end(rd) < 0)
		return E2E_ERR_MALFORMED;
	if (ev->id > c->last_tx_id)
		ev->id = 0;	/* never sent: ignored (§7) */
	return E2E_OK;
}

/* Apply §7's rules to a decrypted plaintext (which lives in pt). */
static enum e2e_result chat_rules(struct chat *c, const uint8_t *pt, size_t len,
				  struct chat_message *ev)
{
	struct reader rd;

	if (len == 0)
		return E2E_ERR_MALFORMED;
	rd_init(&rd, pt, len);
	ev->kind = rd_u8(&rd);
	/* Nothing reaches A before its HELLO; B hears HELLO first. */
	if (!c->hello_done && (c->initiator || ev->kind != CHAT_HELLO))
		return E2E_ERR_PROTOCOL;
	switch (ev->kind) {
	case CHAT_HELLO:
		if (c->initiator || c->hello_done)
			return E2E_ERR_PROTOCOL;
		return rd_end(&rd) < 0 ? E2E_ERR_MALFORMED : E2E_OK;
	case CHAT_TEXT:
		return open_text(c, &rd, ev);
	case CHAT_RECEIPT:
		return open_receipt(c, &rd, ev);
	default:
		return E2E_ERR_PROTOCOL;
	}
}

static void chat_commit(struct chat *c, const struct chat_message *ev)
{
	if (ev->kind == CHAT_HELLO)
		c->hello_done = true;
	else if (ev->kind == CHAT_TEXT)
		c->next_rx_id++;
}

enum e2e_result chat_open(struct chat *c, const uint8_t *e2e, size_t len,
			  uint8_t *pt, struct chat_message *ev)
{
	uint8_t buf[E2E_MAX];
	struct ratchet s = c->r;
	size_t n = 0;
	enum e2e_result res;

	memset(ev, 0, sizeof(*ev));
	if (len > E2E_MAX)
		res = E2E_ERR_MALFORMED;
	else
		res = ratchet_decrypt(&s, e2e, len, buf, &n);
	if (res == E2E_OK)
		res = chat_rules(c, buf, n, ev);
	if (res == E2E_OK) {
		/* The rules hold: n <= CHAT_PT_MAX, so it fits the caller's pt. */
		memcpy(pt, buf, n);
		if (ev->text)
			ev->text = pt + (ev->text - buf);
		chat_commit(c, ev);
		c->r = s;
	} else {
		memset(ev, 0, sizeof(*ev));
	}
	crypto_cleanse(buf, n);
	crypto_cleanse(&s, sizeof(s));
	return res;
}
