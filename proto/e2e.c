/* e2e.c - the relayed end-to-end exchange (§6) and the Double Ratchet (§7),
 * and version 2's conversations (kept message keys, their rules).
 *
 * Every function that fails leaves its output cleansed; ratchet_decrypt
 * and chat_open work on a copy of the state and commit it only when the
 * whole message has been accepted, so a forged, replayed or reordered
 * message changes nothing and the next genuine one still decrypts. A
 * conversation's message is opened in two halves: rx_prepare (everything
 * but the changes) and rx_commit (the sending half of a DH step, the kept
 * keys), with the chat rules between them.
 */
#include "e2e.h"

#include <errno.h>
#include <stdlib.h>
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
	case E2E_ERR_DUPLICATE:
		return "a chat message arrived twice or after its key was dropped";
	case E2E_ERR_TOO_FAR:
		return "a chat message is too far ahead of the last one received";
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

enum e2e_result e2e_responder_restore(struct e2e_responder *b,
				      const char *self, const char *peer,
				      const uint8_t nonce_a[E2E_NONCE_LEN],
				      const uint8_t share_a[X25519_LEN],
				      const uint8_t nonce_b[E2E_NONCE_LEN],
				      const uint8_t share_b[X25519_LEN],
				      const uint8_t eph_priv[X25519_LEN],
				      const uint8_t *sig_b, size_t sig_b_len)
{
	memset(b, 0, sizeof(*b));
	if (!names_ok(self, peer) || sig_b_len == 0 ||
	    sig_b_len > sizeof(b->sig_b))
		return E2E_ERR_MALFORMED;
	memcpy(b->eph_priv, eph_priv, X25519_LEN);
	memcpy(b->share_a, share_a, X25519_LEN);
	memcpy(b->sig_b, sig_b, sig_b_len);
	b->sig_b_len = sig_b_len;
	b->t_len = build_t(b->t, peer, self, nonce_a, share_a, nonce_b,
			   share_b);
	return E2E_OK;
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

/* KDF_CK: mk = HMAC(ck, 0x01), ck = HMAC(ck, 0x02). */
static enum e2e_result kdf_ck(uint8_t ck[KEY_LEN], uint8_t mk[E2E_MK_LEN])
{
	static const uint8_t one = 0x01, two = 0x02;
	uint8_t next[SHA256_LEN];
	enum e2e_result res = E2E_OK;

	if (crypto_hmac_sha256(ck, KEY_LEN, &one, 1, mk) < 0 ||
	    crypto_hmac_sha256(ck, KEY_LEN, &two, 1, next) < 0)
		res = E2E_ERR_INTERNAL;
	else
		memcpy(ck, next, KEY_LEN);
	crypto_cleanse(next, sizeof(next));
	return res;
}

/* The message key material of mk: AES key || nonce. */
static enum e2e_result mk_material(const uint8_t mk[E2E_MK_LEN],
				   uint8_t km[MK_MATERIAL])
{
	static const uint8_t zero[SHA256_LEN];
	uint8_t prk[SHA256_LEN];
	enum e2e_result res = E2E_OK;

	if (crypto_hkdf_extract(zero, sizeof(zero), mk, E2E_MK_LEN, prk) < 0 ||
	    crypto_hkdf_expand(prk, MESSAGE_INFO, km, MK_MATERIAL) < 0)
		res = E2E_ERR_INTERNAL;
	crypto_cleanse(prk, sizeof(prk));
	return res;
}

/* KDF_CK, then the message key material: AES key || nonce. */
static enum e2e_result kdf_msg(uint8_t ck[KEY_LEN], uint8_t km[MK_MATERIAL])
{
	uint8_t mk[E2E_MK_LEN];
	enum e2e_result res = kdf_ck(ck, mk);

	if (res == E2E_OK)
		res = mk_material(mk, km);
	crypto_cleanse(mk, sizeof(mk));
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

/* Open e2e with the message key material km: AAD = AD || header. */
static enum e2e_result open_km(const uint8_t km[MK_MATERIAL],
			       const uint8_t ad[SHA256_LEN], const uint8_t *e2e,
			       size_t len, uint8_t *pt)
{
	uint8_t aad[AAD_LEN];

	memcpy(aad, ad, SHA256_LEN);
	memcpy(aad + SHA256_LEN, e2e, E2E_HEADER_LEN);
	if (crypto_aead_open(km, km + AEAD_KEY_LEN, aad, sizeof(aad),
			     e2e + E2E_HEADER_LEN, len - E2E_HEADER_LEN, pt) < 0)
		return E2E_ERR_DECRYPT;
	return E2E_OK;
}

/* Everything but the state commit; s is the caller's scratch copy. */
static enum e2e_result decrypt_on(struct ratchet *s, const uint8_t *e2e,
				  size_t len, uint8_t *pt)
{
	uint8_t km[MK_MATERIAL];
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
	if (res == E2E_OK)
		res = open_km(km, s->ad, e2e, len, pt);
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

/* ---- kept message keys (version 2's conversations) ---- */

#define NO_KEY SIZE_MAX

/* What a message accepted would change, worked out before the chat rules
 * decide whether it is. */
struct rx_plan {
	struct ratchet s;		/* the state after it (but the step's sending half) */
	bool step;			/* a DH step to complete */
	size_t used;			/* the kept key it used, or NO_KEY */
	struct skipped_key *kept;	/* keys it skips, in order */
	size_t nkept, cap;
};

static void plan_clear(struct rx_plan *p)
{
	if (p->kept) {
		crypto_cleanse(p->kept, p->cap * sizeof(*p->kept));
		free(p->kept);
	}
	crypto_cleanse(p, sizeof(*p));
}

void skipped_keys_clear(struct skipped_keys *sk)
{
	if (sk->k) {
		crypto_cleanse(sk->k, sk->cap * sizeof(*sk->k));
		free(sk->k);
	}
	memset(sk, 0, sizeof(*sk));
}

static size_t find_kept(const struct skipped_keys *sk,
			const uint8_t dh[X25519_LEN], uint32_t n)
{
	for (size_t i = 0; i < sk->n; i++)
		if (sk->k[i].n == n && memcmp(sk->k[i].dh, dh, X25519_LEN) == 0)
			return i;
	return NO_KEY;
}

/* Room for count more keys in the plan (count <= 2 * E2E_MAX_SKIP). */
static enum e2e_result plan_reserve(struct rx_plan *p, size_t count)
{
	if (count == 0)
		return E2E_OK;
	p->kept = calloc(count, sizeof(*p->kept));
	if (!p->kept)
		return E2E_ERR_INTERNAL;
	p->cap = count;
	return E2E_OK;
}

/* Keep the keys of Nr .. until-1 of the receiving chain (until >= Nr). */
static enum e2e_result skip_to(struct rx_plan *p, uint32_t until)
{
	struct ratchet *s = &p->s;
	enum e2e_result res = E2E_OK;

	while (res == E2E_OK && s->nr < until) {
		struct skipped_key *k = &p->kept[p->nkept++];

		memcpy(k->dh, s->dhr, X25519_LEN);
		k->n = s->nr++;
		res = kdf_ck(s->ckr, k->mk);
	}
	return res;
}

static enum e2e_result open_with(const uint8_t mk[E2E_MK_LEN],
				 const uint8_t *ad, const uint8_t *e2e,
				 size_t len, uint8_t *pt)
{
	uint8_t km[MK_MATERIAL];
	enum e2e_result res = mk_material(mk, km);

	if (res == E2E_OK)
		res = open_km(km, ad, e2e, len, pt);
	crypto_cleanse(km, sizeof(km));
	return res;
}

/* Step 2 of the page: a message of the current receiving chain. */
static enum e2e_result plan_same_chain(struct rx_plan *p, uint32_t n)
{
	struct ratchet *s = &p->s;
	enum e2e_result res;

	if (n < s->nr)
		return E2E_ERR_DUPLICATE;
	if (n - s->nr > E2E_MAX_SKIP)
		return E2E_ERR_TOO_FAR;
	res = plan_reserve(p, n - s->nr);
	return res == E2E_OK ? skip_to(p, n) : res;
}

/* Step 3: a new ratchet key; the rest of the current chain is kept, then
 * the receiving half of the DH step, then the gap in the new chain. */
static enum e2e_result plan_new_chain(struct rx_plan *p, const uint8_t *dh,
				      uint32_t pn, uint32_t n)
{
	struct ratchet *s = &p->s;
	uint32_t old = 0;
	enum e2e_result res;

	if (s->has_ckr && pn < s->nr)
		return E2E_ERR_ORDER;
	if (!s->has_ckr && pn != 0)
		return E2E_ERR_ORDER;
	if (s->has_ckr)
		old = pn - s->nr;
	if (old > E2E_MAX_SKIP || n > E2E_MAX_SKIP)
		return E2E_ERR_TOO_FAR;
	res = plan_reserve(p, (size_t)old + n);
	if (res == E2E_OK && s->has_ckr)
		res = skip_to(p, pn);
	if (res == E2E_OK)
		res = step_recv(s, dh);
	if (res == E2E_OK)
		res = skip_to(p, n);
	p->step = true;
	return res;
}

/* Everything of a message but the changes (page, steps 1 to 3). */
static enum e2e_result rx_prepare(const struct ratchet *r,
				  const struct skipped_keys *sk,
				  const uint8_t *e2e, size_t len, uint8_t *pt,
				  struct rx_plan *p)
{
	uint32_t pn = be32_get(e2e + X25519_LEN);
	uint32_t n = be32_get(e2e + X25519_LEN + 4);
	struct ratchet *s = &p->s;
	uint8_t mk[E2E_MK_LEN];
	enum e2e_result res;

	memset(p, 0, sizeof(*p));
	p->used = NO_KEY;
	p->s = *r;
	if (len < E2E_OVERHEAD)
		return E2E_ERR_MALFORMED;
	p->used = find_kept(sk, e2e, n);
	if (p->used != NO_KEY)
		return open_with(sk->k[p->used].mk, r->ad, e2e, len, pt);
	if (s->has_dhr && s->has_ckr && memcmp(e2e, s->dhr, X25519_LEN) == 0)
		res = plan_same_chain(p, n);
	else
		res = plan_new_chain(p, e2e, pn, n);
	if (res != E2E_OK)
		return res;
	if (s->nr == UINT32_MAX)
		return E2E_ERR_LIMIT;
	res = kdf_ck(s->ckr, mk);
	if (res == E2E_OK)
		res = open_with(mk, r->ad, e2e, len, pt);
	crypto_cleanse(mk, sizeof(mk));
	if (res == E2E_OK)
		s->nr++;
	return res;
}

/* Room for want kept keys in sk, the old ones copied and cleansed (so no
 * copy of a key is left behind in freed memory). */
static enum e2e_result kept_reserve(struct skipped_keys *sk, size_t want)
{
	struct skipped_key *k;

	if (want <= sk->cap)
		return E2E_OK;
	/* Grow by doubling (from 16), so small gaps do not copy each time. */
	if (want < 2 * sk->cap)
		want = 2 * sk->cap < E2E_MAX_KEPT ? 2 * sk->cap : E2E_MAX_KEPT;
	if (want < 16)
		want = 16;
	k = calloc(want, sizeof(*k));
	if (!k)
		return E2E_ERR_INTERNAL;
	if (sk->n)
		memcpy(k, sk->k, sk->n * sizeof(*k));
	if (sk->k) {
		crypto_cleanse(sk->k, sk->cap * sizeof(*sk->k));
		free(sk->k);
	}
	sk->k = k;
	sk->cap = want;
	return E2E_OK;
}

/* Delete count entries of sk from index i on. */
static void kept_delete(struct skipped_keys *sk, size_t i, size_t count)
{
	if (count == 0)
		return;
	memmove(sk->k + i, sk->k + i + count,
		(sk->n - i - count) * sizeof(*sk->k));
	sk->n -= count;
	crypto_cleanse(sk->k + sk->n, count * sizeof(*sk->k));
}

/* Step 4: the accepted message's changes, all or nothing. */
static enum e2e_result rx_commit(struct ratchet *r, struct skipped_keys *sk,
				 struct rx_plan *p)
{
	size_t total = sk->n + p->nkept;
	size_t drop = total > E2E_MAX_KEPT ? total - E2E_MAX_KEPT : 0;
	enum e2e_result res = kept_reserve(sk, total - drop);

	if (res == E2E_OK && p->step)
		res = step_send(&p->s);
	if (res != E2E_OK)
		return res;
	if (p->used != NO_KEY)
		kept_delete(sk, p->used, 1);
	kept_delete(sk, 0, drop);
	if (p->nkept)
		memcpy(sk->k + sk->n, p->kept, p->nkept * sizeof(*sk->k));
	sk->n += p->nkept;
	*r = p->s;
	return E2E_OK;
}

enum e2e_result ratchet_decrypt_v2(struct ratchet *r, struct skipped_keys *sk,
				   const uint8_t *e2e, size_t len, uint8_t *pt,
				   size_t *pt_len)
{
	struct rx_plan p;
	enum e2e_result res;

	*pt_len = 0;
	if (!e2e || len < E2E_OVERHEAD)
		return E2E_ERR_MALFORMED;
	res = rx_prepare(r, sk, e2e, len, pt, &p);
	if (res == E2E_OK)
		res = rx_commit(r, sk, &p);
	if (res == E2E_OK)
		*pt_len = len - E2E_OVERHEAD;
	else
		crypto_cleanse(pt, len - E2E_OVERHEAD);
	plan_clear(&p);
	return res;
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

void chat_init_v2(struct chat *c, struct ratchet *r, bool initiator)
{
	chat_init(c, r, initiator);
	c->v2 = true;
}

void chat_clear(struct chat *c)
{
	skipped_keys_clear(&c->sk);
	crypto_cleanse(c, sizeof(*c));
}

int chat_copy(struct chat *dst, const struct chat *src)
{
	*dst = *src;
	memset(&dst->sk, 0, sizeof(dst->sk));
	if (src->sk.n == 0)
		return 0;
	if (kept_reserve(&dst->sk, src->sk.n) != E2E_OK) {
		chat_clear(dst);
		return -ENOMEM;
	}
	memcpy(dst->sk.k, src->sk.k, src->sk.n * sizeof(*src->sk.k));
	dst->sk.n = src->sk.n;
	return 0;
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
	if (id == 0 || (c->v2 ? id > c->rx_high : id >= c->next_rx_id))
		return E2E_ERR_STATE;
	be32_put(pt + 1, id);
	return seal(c, pt, sizeof(pt), out, out_len);
}

enum e2e_result chat_seal_end(struct chat *c, uint8_t *out, size_t *out_len)
{
	static const uint8_t end = CHAT_END;

	*out_len = 0;
	if (!c->v2 || !chat_can_send(c))
		return E2E_ERR_STATE;
	return seal(c, &end, 1, out, out_len);
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
	if (c->v2)	/* any id but 0, in any order: the ratchet stops replays */
		return ev->id == 0 ? E2E_ERR_PROTOCOL : E2E_OK;
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

/* Where an e2e field came from: a conversation takes kind END only from an
 * END record, and nothing else from one. */
enum e2e_from {
	FROM_MESSAGE,
	FROM_END,
};

/* Apply §7's rules to a decrypted plaintext (which lives in pt). */
static enum e2e_result chat_rules(struct chat *c, const uint8_t *pt, size_t len,
				  enum e2e_from from, struct chat_message *ev)
{
	struct reader rd;

	if (len == 0)
		return E2E_ERR_MALFORMED;
	rd_init(&rd, pt, len);
	ev->kind = rd_u8(&rd);
	/* Nothing reaches A before its HELLO; B hears HELLO first. */
	if (!c->hello_done && (c->initiator || ev->kind != CHAT_HELLO))
		return E2E_ERR_PROTOCOL;
	if (c->v2 && (ev->kind == CHAT_END) != (from == FROM_END))
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
	case CHAT_END:
		if (!c->v2)
			return E2E_ERR_PROTOCOL;
		return rd_end(&rd) < 0 ? E2E_ERR_MALFORMED : E2E_OK;
	default:
		return E2E_ERR_PROTOCOL;
	}
}

static void chat_commit(struct chat *c, const struct chat_message *ev)
{
	if (ev->kind == CHAT_HELLO)
		c->hello_done = true;
	else if (ev->kind == CHAT_TEXT && !c->v2)
		c->next_rx_id++;
	else if (ev->kind == CHAT_TEXT && ev->id > c->rx_high)
		c->rx_high = ev->id;
}

/* The rules hold: n <= CHAT_PT_MAX, so it fits the caller's pt. */
static void hand_over(const uint8_t *buf, size_t n, uint8_t *pt,
		      struct chat_message *ev)
{
	memcpy(pt, buf, n);
	if (ev->text)
		ev->text = pt + (ev->text - buf);
}

/* A conversation: prepare, the rules, then commit (which draws the DH
 * step's pair): a refused message draws nothing and changes nothing. */
static enum e2e_result open_v2(struct chat *c, const uint8_t *e2e, size_t len,
			       enum e2e_from from, uint8_t *buf, size_t *n,
			       struct chat_message *ev)
{
	struct rx_plan p;
	enum e2e_result res = E2E_ERR_MALFORMED;

	memset(&p, 0, sizeof(p));
	if (e2e && len >= E2E_OVERHEAD && len <= E2E_MAX)
		res = rx_prepare(&c->r, &c->sk, e2e, len, buf, &p);
	if (res == E2E_OK) {
		*n = len - E2E_OVERHEAD;
		res = chat_rules(c, buf, *n, from, ev);
	}
	if (res == E2E_OK)
		res = rx_commit(&c->r, &c->sk, &p);
	plan_clear(&p);
	return res;
}

static enum e2e_result open_from(struct chat *c, const uint8_t *e2e,
				 size_t len, enum e2e_from from, uint8_t *pt,
				 struct chat_message *ev)
{
	uint8_t buf[E2E_MAX];
	struct ratchet s = c->r;
	size_t n = 0;
	enum e2e_result res;

	memset(ev, 0, sizeof(*ev));
	if (c->v2)
		res = open_v2(c, e2e, len, from, buf, &n, ev);
	else if (len > E2E_MAX || from != FROM_MESSAGE)
		res = E2E_ERR_MALFORMED;
	else
		res = ratchet_decrypt(&s, e2e, len, buf, &n);
	if (res == E2E_OK && !c->v2)
		res = chat_rules(c, buf, n, from, ev);
	if (res == E2E_OK) {
		hand_over(buf, n, pt, ev);
		chat_commit(c, ev);
		if (!c->v2)
			c->r = s;
	} else {
		memset(ev, 0, sizeof(*ev));
	}
	crypto_cleanse(buf, n);
	crypto_cleanse(&s, sizeof(s));
	return res;
}

enum e2e_result chat_open(struct chat *c, const uint8_t *e2e, size_t len,
			  uint8_t *pt, struct chat_message *ev)
{
	return open_from(c, e2e, len, FROM_MESSAGE, pt, ev);
}

enum e2e_result chat_open_end(struct chat *c, const uint8_t *e2e, size_t len,
			      uint8_t *pt, struct chat_message *ev)
{
	if (!c->v2) {
		memset(ev, 0, sizeof(*ev));
		return E2E_ERR_STATE;
	}
	return open_from(c, e2e, len, FROM_END, pt, ev);
}
