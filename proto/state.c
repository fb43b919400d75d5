/* state.c - a client's conversations at rest (secmsg-protocol(7), CLIENT
 * STATE).
 *
 * Parsing goes through struct reader, one item at a time, each item's
 * value through a reader of its own bounded by the item's length; the
 * result is built in a scratch state that replaces the caller's only when
 * the whole plaintext was taken. Absent chain keys must be all zero, so
 * that a plaintext that parses encodes back to the same bytes.
 */
#include "state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "keys.h"
#include "rand.h"

#define STATE_INFO "secmsg/2 state"

/* flags of a CONVERSATION */
#define CF_INITIATOR 0x01
#define CF_HELLO_DONE 0x02
/* chains of a CONVERSATION */
#define CH_CKS 0x01
#define CH_CKR 0x02
#define CH_DHR 0x04

_Static_assert(STATE_HDR_LEN == 54, "the header of the page");

/* ---- the in-memory list ---- */

int state_init(struct state *st, const char *self)
{
	memset(st, 0, sizeof(*st));
	if (!self || !name_valid_str(self))
		return -EINVAL;
	strcpy(st->self, self);
	return 0;
}

void state_free(struct state *st)
{
	for (size_t i = 0; i < st->n; i++)
		chat_clear(&st->conv[i].chat);
	if (st->conv) {
		crypto_cleanse(st->conv, st->cap * sizeof(*st->conv));
		free(st->conv);
	}
	for (size_t i = 0; i < st->nout; i++)
		state_out_clear(&st->out[i]);
	free(st->out);
	if (st->req) {
		crypto_cleanse(st->req, st->capreq * sizeof(*st->req));
		free(st->req);
	}
	crypto_cleanse(st, sizeof(*st));
}

struct state_conv *state_find(struct state *st, const char *peer)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->conv[i].peer, peer) == 0)
			return &st->conv[i];
	return NULL;
}

/* Room for one more of n elements of size in *arr (at most max): the
 * array grows by doubling, moved by hand so that no copy of a secret is
 * left in freed memory. 0 or -ENOMEM. */
static int grow_secret(void **arr, size_t *cap, size_t n, size_t size,
		       size_t max)
{
	size_t ncap;
	void *a;

	if (n < *cap)
		return 0;
	ncap = *cap ? 2 * *cap : 4;
	if (ncap > max)
		ncap = max;
	if (n >= ncap || !(a = calloc(ncap, size)))
		return -ENOMEM;
	if (*arr) {
		memcpy(a, *arr, n * size);
		crypto_cleanse(*arr, *cap * size);
		free(*arr);
	}
	*arr = a;
	*cap = ncap;
	return 0;
}

/* A free slot at the end of the conversations, or NULL. */
static struct state_conv *state_slot(struct state *st)
{
	void *a = st->conv;

	if (grow_secret(&a, &st->cap, st->n, sizeof(*st->conv),
			STATE_MAX_CONV) < 0)
		return NULL;
	st->conv = a;
	return &st->conv[st->n];
}

int state_add(struct state *st, const char *peer, uint64_t since,
	      const uint8_t fpr[SHA256_LEN], struct chat *chat)
{
	struct state_conv *c;

	if (!peer || !name_valid_str(peer) || strcmp(peer, st->self) == 0 ||
	    !chat->v2)
		return -EINVAL;
	if (state_find(st, peer))
		return -EEXIST;
	if (st->n >= STATE_MAX_CONV)
		return -E2BIG;
	if (!(c = state_slot(st)))
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	strcpy(c->peer, peer);
	c->since = since;
	memcpy(c->peer_fpr, fpr, SHA256_LEN);
	c->next_ref = 1;
	c->chat = *chat;	/* the kept keys move with it */
	memset(chat, 0, sizeof(*chat));
	st->n++;
	state_req_remove(st, peer);	/* the request became this */
	return 0;
}

/* Drop out[i], keeping the order of the rest. */
static void out_drop(struct state *st, size_t i)
{
	state_out_clear(&st->out[i]);
	memmove(&st->out[i], &st->out[i + 1],
		(st->nout - i - 1) * sizeof(*st->out));
	st->nout--;
}

int state_remove(struct state *st, const char *peer)
{
	struct state_conv *c = state_find(st, peer);
	size_t i;

	if (!c)
		return -ENOENT;
	for (i = st->nout; i-- > 0;)	/* its keys are gone: so is its outbox */
		if (strcmp(st->out[i].peer, peer) == 0)
			out_drop(st, i);
	i = (size_t)(c - st->conv);
	chat_clear(&c->chat);
	memmove(c, c + 1, (st->n - i - 1) * sizeof(*c));
	st->n--;
	crypto_cleanse(&st->conv[st->n], sizeof(*c));
	return 0;
}

/* ---- the outbox ---- */

void state_out_clear(struct state_out *o)
{
	if (o->e2e) {
		crypto_cleanse(o->e2e, o->len);
		free(o->e2e);
	}
	memset(o, 0, sizeof(*o));
}

struct state_out *state_out_find(struct state *st, const char *peer,
				 uint32_t ref)
{
	for (size_t i = 0; i < st->nout; i++)
		if (st->out[i].ref == ref && strcmp(st->out[i].peer, peer) == 0)
			return &st->out[i];
	return NULL;
}

/* A free slot at the end of the outbox, or NULL. */
static struct state_out *out_slot(struct state *st)
{
	struct state_out *o;
	size_t cap;

	if (st->nout >= STATE_MAX_OUTBOX)
		return NULL;
	if (st->nout < st->capout)
		return &st->out[st->nout];
	cap = st->capout ? 2 * st->capout : 8;
	if (cap > STATE_MAX_OUTBOX)
		cap = STATE_MAX_OUTBOX;
	if (!(o = realloc(st->out, cap * sizeof(*o))))
		return NULL;	/* the records hold pointers, no secrets */
	st->out = o;
	st->capout = cap;
	return &st->out[st->nout];
}

int state_out_add(struct state *st, const char *peer, uint32_t ref,
		  uint8_t kind, uint32_t id, const uint8_t *e2e, size_t len)
{
	struct state_out *o;

	if (!peer || !state_find(st, peer) || ref == 0 || len == 0 ||
	    len > E2E_MAX || kind < CHAT_TEXT || kind > CHAT_HELLO ||
	    (kind == CHAT_HELLO && id != 0))
		return -EINVAL;
	if (state_out_find(st, peer, ref))
		return -EEXIST;
	if (st->nout >= STATE_MAX_OUTBOX)
		return -E2BIG;
	if (!(o = out_slot(st)))
		return -ENOMEM;
	memset(o, 0, sizeof(*o));
	if (!(o->e2e = malloc(len)))
		return -ENOMEM;
	memcpy(o->e2e, e2e, len);
	strcpy(o->peer, peer);
	o->ref = ref;
	o->kind = kind;
	o->id = id;
	o->len = len;
	st->nout++;
	return 0;
}

int state_out_take(struct state *st, const char *peer, uint32_t ref,
		   struct state_out *o)
{
	struct state_out *f = state_out_find(st, peer, ref);
	size_t i;

	if (!f)
		return -ENOENT;
	i = (size_t)(f - st->out);
	if (o) {
		*o = *f;
		f->e2e = NULL;	/* now the caller's */
	}
	out_drop(st, i);
	return 0;
}

/* ---- requests (first contact) ---- */

struct state_req *state_req_find(struct state *st, const char *peer)
{
	for (size_t i = 0; i < st->nreq; i++)
		if (strcmp(st->req[i].peer, peer) == 0)
			return &st->req[i];
	return NULL;
}

int state_req_remove(struct state *st, const char *peer)
{
	struct state_req *q = state_req_find(st, peer);
	size_t i;

	if (!q)
		return -ENOENT;
	i = (size_t)(q - st->req);
	memmove(q, q + 1, (st->nreq - i - 1) * sizeof(*q));
	st->nreq--;
	crypto_cleanse(&st->req[st->nreq], sizeof(*q));
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* B's values: all there once accepted, none before (and only A has an
 * open request: B keeps one from its ACCEPT on). */
static bool req_b_ok(const struct state_req *q)
{
	if (q->flags & STATE_REQ_ACCEPTED)
		return q->sig_len >= 1 && q->sig_len <= MSG_SIG_MAX;
	return (q->flags & STATE_REQ_A) && q->sig_len == 0 &&
	       all_zero(q->nonce_b, 32) && all_zero(q->share_b, 32);
}

/* own_private is this side's: its public key is share_a (A) or share_b. */
static bool req_key_ok(const struct state_req *q)
{
	uint8_t pub[X25519_LEN];
	bool ok;

	if (crypto_x25519_public(q->own_private, pub) < 0)
		return false;
	ok = memcmp(pub, q->flags & STATE_REQ_A ? q->share_a : q->share_b,
		    X25519_LEN) == 0;
	crypto_cleanse(pub, sizeof(pub));
	return ok;
}

static bool req_valid(struct state *st, const struct state_req *q)
{
	return name_valid_str(q->peer) && strcmp(q->peer, st->self) != 0 &&
	       !state_find(st, q->peer) &&
	       !(q->flags & ~(STATE_REQ_A | STATE_REQ_ACCEPTED)) &&
	       req_b_ok(q) && req_key_ok(q);
}

int state_req_add(struct state *st, const struct state_req *q)
{
	void *a = st->req;

	if (!q || !req_valid(st, q))
		return -EINVAL;
	if (state_req_find(st, q->peer))
		return -EEXIST;
	if (st->nreq >= STATE_MAX_REQ)
		return -E2BIG;
	if (grow_secret(&a, &st->capreq, st->nreq, sizeof(*st->req),
			STATE_MAX_REQ) < 0)
		return -ENOMEM;
	st->req = a;
	st->req[st->nreq++] = *q;
	return 0;
}

/* ---- the plaintext ---- */

static size_t conv_size(const struct state_conv *c)
{
	return 1 + strlen(c->peer) + STATE_CONV_FIXED +
	       c->chat.sk.n * STATE_KEPT_LEN;
}

/* A key that is written only when present: zero bytes otherwise. */
static void wr_key(struct writer *w, bool present, const uint8_t *k)
{
	static const uint8_t zero[32];

	wr_bytes(w, present ? k : zero, 32);
}

static void wr_conv(struct writer *w, const struct state_conv *c)
{
	const struct chat *ch = &c->chat;
	const struct ratchet *r = &ch->r;

	wr_name(w, c->peer);
	wr_u64(w, c->since);
	wr_u8(w, (ch->initiator ? CF_INITIATOR : 0) |
		 (ch->hello_done ? CF_HELLO_DONE : 0));
	wr_bytes(w, c->peer_fpr, SHA256_LEN);
	wr_u32(w, ch->next_tx_id);
	wr_u32(w, ch->rx_high);
	wr_u32(w, c->next_ref);
	wr_bytes(w, r->rk, 32);
	wr_u8(w, (r->has_cks ? CH_CKS : 0) | (r->has_ckr ? CH_CKR : 0) |
		 (r->has_dhr ? CH_DHR : 0));
	wr_key(w, r->has_cks, r->cks);
	wr_key(w, r->has_ckr, r->ckr);
	wr_bytes(w, r->dhs_priv, X25519_LEN);
	wr_key(w, r->has_dhr, r->dhr);
	wr_bytes(w, r->ad, SHA256_LEN);
	wr_u32(w, r->ns);
	wr_u32(w, r->nr);
	wr_u32(w, r->pn);
	wr_u16(w, (uint16_t)ch->sk.n);
	for (size_t i = 0; i < ch->sk.n; i++) {
		wr_bytes(w, ch->sk.k[i].dh, X25519_LEN);
		wr_u32(w, ch->sk.k[i].n);
		wr_bytes(w, ch->sk.k[i].mk, E2E_MK_LEN);
	}
}

static size_t out_size(const struct state_out *o)
{
	return 1 + strlen(o->peer) + STATE_OUT_FIXED + o->len;
}

static void wr_out(struct writer *w, const struct state_out *o)
{
	wr_name(w, o->peer);
	wr_u32(w, o->ref);
	wr_u8(w, o->kind);
	wr_u32(w, o->id);
	wr_u16(w, (uint16_t)o->len);
	wr_bytes(w, o->e2e, o->len);
}

static size_t req_size(const struct state_req *q)
{
	return 1 + strlen(q->peer) + STATE_REQ_FIXED + q->sig_len;
}

static void wr_req(struct writer *w, const struct state_req *q)
{
	wr_name(w, q->peer);
	wr_u64(w, q->asked);
	wr_u8(w, q->flags);
	wr_bytes(w, q->nonce_a, 32);
	wr_bytes(w, q->share_a, 32);
	wr_bytes(w, q->nonce_b, 32);
	wr_bytes(w, q->share_b, 32);
	wr_bytes(w, q->own_private, 32);
	wr_bytes16(w, q->sig_b, q->sig_len);
}

static bool conv_writable(const struct state_conv *c)
{
	return c->chat.v2 && c->chat.sk.n <= E2E_MAX_KEPT &&
	       name_valid_str(c->peer);
}

int state_encode(const struct state *st, uint8_t **out, size_t *len)
{
	size_t total = STATE_ITEM_HDR + 1 + strlen(st->self);
	struct writer w;

	*out = NULL;
	*len = 0;
	if (!name_valid_str(st->self))
		return -EINVAL;
	if (st->n > STATE_MAX_CONV)
		return -E2BIG;
	for (size_t i = 0; i < st->n; i++) {
		if (!conv_writable(&st->conv[i]))
			return -EINVAL;
		total += STATE_ITEM_HDR + conv_size(&st->conv[i]);
	}
	if (st->nout > STATE_MAX_OUTBOX)
		return -E2BIG;
	for (size_t i = 0; i < st->nout; i++)
		total += STATE_ITEM_HDR + out_size(&st->out[i]);
	if (st->nreq > STATE_MAX_REQ)
		return -E2BIG;
	for (size_t i = 0; i < st->nreq; i++)
		total += STATE_ITEM_HDR + req_size(&st->req[i]);
	if (!(*out = malloc(total)))
		return -ENOMEM;
	wr_init(&w, *out, total);
	wr_u8(&w, STATE_ITEM_USER);
	wr_u32(&w, (uint32_t)(1 + strlen(st->self)));
	wr_name(&w, st->self);
	for (size_t i = 0; i < st->n; i++) {
		wr_u8(&w, STATE_ITEM_CONVERSATION);
		wr_u32(&w, (uint32_t)conv_size(&st->conv[i]));
		wr_conv(&w, &st->conv[i]);
	}
	for (size_t i = 0; i < st->nout; i++) {
		wr_u8(&w, STATE_ITEM_OUTBOX);
		wr_u32(&w, (uint32_t)out_size(&st->out[i]));
		wr_out(&w, &st->out[i]);
	}
	for (size_t i = 0; i < st->nreq; i++) {
		wr_u8(&w, STATE_ITEM_REQUEST);
		wr_u32(&w, (uint32_t)req_size(&st->req[i]));
		wr_req(&w, &st->req[i]);
	}
	if (wr_error(&w) || w.len != total) {
		state_buf_free(*out, total);
		*out = NULL;
		return -EIO;
	}
	*len = total;
	return 0;
}

void state_buf_free(uint8_t *p, size_t len)
{
	if (p) {
		crypto_cleanse(p, len);
		free(p);
	}
}

/* A 32-byte key that must be all zero when absent. */
static void rd_key(struct reader *r, bool present, uint8_t out[32])
{
	static const uint8_t zero[32];

	rd_opaque(r, out, 32);
	if (!present && memcmp(out, zero, 32) != 0)
		rd_fail(r);
}

static void rd_ratchet(struct reader *r, struct ratchet *rt)
{
	uint8_t chains;

	rd_opaque(r, rt->rk, 32);
	chains = rd_u8(r);
	if (chains & ~(CH_CKS | CH_CKR | CH_DHR))
		rd_fail(r);
	rt->has_cks = chains & CH_CKS;
	rt->has_ckr = chains & CH_CKR;
	rt->has_dhr = chains & CH_DHR;
	rd_key(r, rt->has_cks, rt->cks);
	rd_key(r, rt->has_ckr, rt->ckr);
	rd_opaque(r, rt->dhs_priv, X25519_LEN);
	rd_key(r, rt->has_dhr, rt->dhr);
	rd_opaque(r, rt->ad, SHA256_LEN);
	rt->ns = rd_u32(r);
	rt->nr = rd_u32(r);
	rt->pn = rd_u32(r);
}

/* MKSKIPPED: a count of at most E2E_MAX_KEPT, then the entries. */
static int rd_kept(struct reader *r, struct skipped_keys *sk)
{
	uint16_t n = rd_u16(r);

	if (rd_error(r) || n > E2E_MAX_KEPT ||
	    (size_t)n * STATE_KEPT_LEN != rd_left(r))
		return -EBADMSG;
	if (n == 0)
		return 0;
	if (!(sk->k = calloc(n, sizeof(*sk->k))))
		return -ENOMEM;
	sk->cap = n;
	for (sk->n = 0; sk->n < n; sk->n++) {
		rd_opaque(r, sk->k[sk->n].dh, X25519_LEN);
		sk->k[sk->n].n = rd_u32(r);
		rd_opaque(r, sk->k[sk->n].mk, E2E_MK_LEN);
	}
	return rd_end(r);
}

/* A CONVERSATION's value, into c (whose chat holds the kept keys even on
 * failure, for the caller to clear). */
static int rd_conv(const uint8_t *p, size_t len, struct state_conv *c)
{
	struct chat *ch = &c->chat;
	struct reader r;
	uint8_t flags;

	rd_init(&r, p, len);
	rd_name(&r, c->peer);
	c->since = rd_u64(&r);
	flags = rd_u8(&r);
	if (flags & ~(CF_INITIATOR | CF_HELLO_DONE))
		rd_fail(&r);
	rd_opaque(&r, c->peer_fpr, SHA256_LEN);
	ch->next_tx_id = rd_u32(&r);
	ch->rx_high = rd_u32(&r);
	c->next_ref = rd_u32(&r);
	rd_ratchet(&r, &ch->r);
	if (rd_error(&r))
		return -EBADMSG;
	ch->v2 = true;
	ch->initiator = flags & CF_INITIATOR;
	ch->hello_done = flags & CF_HELLO_DONE;
	ch->last_tx_id = ch->next_tx_id - 1;
	ch->next_rx_id = 1;	/* version 1's; unused by a conversation */
	if (crypto_x25519_public(ch->r.dhs_priv, ch->r.dhs_pub) < 0)
		return -EIO;
	return rd_kept(&r, &ch->sk);
}

/* One CONVERSATION item into the scratch state. */
static int take_conv(struct state *st, const uint8_t *p, size_t len)
{
	struct state_conv *c;
	int e;

	if (st->n >= STATE_MAX_CONV || len > STATE_CONV_MAX)
		return -EBADMSG;
	if (!(c = state_slot(st)))
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	e = rd_conv(p, len, c);
	if (e == 0 && (strcmp(c->peer, st->self) == 0 ||
		       state_find(st, c->peer)))
		e = -EBADMSG;
	if (e < 0) {
		chat_clear(&c->chat);
		crypto_cleanse(c, sizeof(*c));
		return e;
	}
	st->n++;
	return 0;
}

/* One OUTBOX item: after its conversation, unique, within the limits. */
static int take_out(struct state *st, const uint8_t *p, size_t len)
{
	struct state_out o = { 0 };
	const uint8_t *e2e;
	struct reader r;
	int e;

	rd_init(&r, p, len);
	rd_name(&r, o.peer);
	o.ref = rd_u32(&r);
	o.kind = rd_u8(&r);
	o.id = rd_u32(&r);
	o.len = rd_u16(&r);
	e2e = rd_ptr(&r, o.len);
	if (rd_error(&r) || rd_end(&r) < 0 || !e2e)
		return -EBADMSG;
	e = state_out_add(st, o.peer, o.ref, o.kind, o.id, e2e, o.len);
	if (e == -EINVAL || e == -EEXIST || e == -E2BIG)
		return -EBADMSG;
	return e;
}

/* One REQUEST item: valid, unique, for a peer without a conversation. */
static int take_req(struct state *st, const uint8_t *p, size_t len)
{
	struct state_req q;
	const uint8_t *sig;
	struct reader r;
	int e;

	memset(&q, 0, sizeof(q));
	rd_init(&r, p, len);
	rd_name(&r, q.peer);
	q.asked = rd_u64(&r);
	q.flags = rd_u8(&r);
	rd_opaque(&r, q.nonce_a, 32);
	rd_opaque(&r, q.share_a, 32);
	rd_opaque(&r, q.nonce_b, 32);
	rd_opaque(&r, q.share_b, 32);
	rd_opaque(&r, q.own_private, 32);
	sig = rd_bytes16(&r, &q.sig_len);
	e = -EBADMSG;
	if (!rd_error(&r) && rd_end(&r) == 0 && q.sig_len <= MSG_SIG_MAX) {
		memcpy(q.sig_b, sig, q.sig_len);
		e = state_req_add(st, &q);
	}
	crypto_cleanse(&q, sizeof(q));
	if (e == -EINVAL || e == -EEXIST || e == -E2BIG)
		return -EBADMSG;
	return e;
}

/* The USER item, first and once. */
static int take_user(struct state *st, struct reader *r)
{
	struct reader v;
	const uint8_t *p;
	uint32_t len;

	if (rd_u8(r) != STATE_ITEM_USER)
		return -EBADMSG;
	len = rd_u32(r);
	if (rd_error(r) || len > rd_left(r) || !(p = rd_ptr(r, len)))
		return -EBADMSG;
	rd_init(&v, p, len);
	rd_name(&v, st->self);
	return rd_end(&v);
}

static int decode_items(const uint8_t *p, size_t len, struct state *st)
{
	struct reader r;
	int e;

	rd_init(&r, p, len);
	if ((e = take_user(st, &r)) < 0)
		return e;
	while (rd_left(&r) > 0) {
		uint8_t type = rd_u8(&r);
		uint32_t n = rd_u32(&r);
		const uint8_t *v;

		if (rd_error(&r) || n > rd_left(&r) || !(v = rd_ptr(&r, n)))
			return -EBADMSG;
		if (type == STATE_ITEM_USER)
			return -EBADMSG;
		/* one order: conversations, outbox, requests */
		if ((type == STATE_ITEM_CONVERSATION &&
		     (st->nout > 0 || st->nreq > 0)) ||
		    (type == STATE_ITEM_OUTBOX && st->nreq > 0))
			return -EBADMSG;
		if (type == STATE_ITEM_CONVERSATION)
			e = take_conv(st, v, n);
		else if (type == STATE_ITEM_OUTBOX)
			e = take_out(st, v, n);
		else if (type == STATE_ITEM_REQUEST)
			e = take_req(st, v, n);
		else
			return -EPROTONOSUPPORT;
		if (e < 0)
			return e;
	}
	return rd_end(&r);
}

int state_decode(const uint8_t *p, size_t len, struct state *st)
{
	struct state tmp;
	int e;

	memset(st, 0, sizeof(*st));
	memset(&tmp, 0, sizeof(tmp));
	if (!p || len > STATE_FILE_MAX)
		return -EBADMSG;
	e = decode_items(p, len, &tmp);
	if (e < 0) {
		state_free(&tmp);
		return e;
	}
	*st = tmp;
	return 0;
}

/* ---- the file ---- */

int state_derive_key(const sm_key *key, const uint8_t salt[STATE_SALT_LEN],
		     uint8_t out[AEAD_KEY_LEN])
{
	uint8_t prk[SHA256_LEN], *der;
	size_t len;
	int e = key_private_der(key, &der, &len);

	if (e < 0)
		return e;
	e = crypto_hkdf_extract(salt, STATE_SALT_LEN, der, len, prk);
	if (e == 0)
		e = crypto_hkdf_expand(prk, STATE_INFO, out, AEAD_KEY_LEN);
	key_der_free(der, len);
	crypto_cleanse(prk, sizeof(prk));
	if (e < 0)
		crypto_cleanse(out, AEAD_KEY_LEN);
	return e < 0 ? -EIO : 0;
}

static void write_header(uint8_t h[STATE_HDR_LEN], const uint8_t *salt,
			 const uint8_t *nonce)
{
	memcpy(h, STATE_MAGIC, STATE_MAGIC_LEN);
	h[STATE_MAGIC_LEN] = STATE_VERSION >> 8;
	h[STATE_MAGIC_LEN + 1] = STATE_VERSION & 0xff;
	memcpy(h + STATE_MAGIC_LEN + 2, salt, STATE_SALT_LEN);
	memcpy(h + STATE_MAGIC_LEN + 2 + STATE_SALT_LEN, nonce, AEAD_NONCE_LEN);
}

int state_seal(const struct state *st, const sm_key *key, uint8_t **out,
	       size_t *len)
{
	uint8_t salt[STATE_SALT_LEN], nonce[AEAD_NONCE_LEN], k[AEAD_KEY_LEN];
	uint8_t *pt, *f = NULL;
	size_t ptlen, flen = 0;
	int e;

	*out = NULL;
	*len = 0;
	if ((e = state_encode(st, &pt, &ptlen)) < 0)
		return e;
	/* The salt first, then the nonce: the page's order of the header. */
	if (rand_bytes(salt, sizeof(salt)) < 0 ||
	    rand_bytes(nonce, sizeof(nonce)) < 0)
		e = -EIO;
	if (e == 0)
		e = state_derive_key(key, salt, k);
	flen = STATE_HDR_LEN + ptlen + AEAD_TAG_LEN;
	if (e == 0 && !(f = malloc(flen)))
		e = -ENOMEM;
	if (e == 0) {
		write_header(f, salt, nonce);
		if (crypto_aead_seal(k, nonce, f, STATE_HDR_LEN, pt, ptlen,
				     f + STATE_HDR_LEN) < 0)
			e = -EIO;
	}
	state_buf_free(pt, ptlen);
	crypto_cleanse(k, sizeof(k));
	if (e < 0) {
		state_buf_free(f, flen);
		return e;
	}
	*out = f;
	*len = flen;
	return 0;
}

int state_open(const uint8_t *file, size_t len, const sm_key *key,
	       struct state *st)
{
	const uint8_t *salt;
	uint8_t k[AEAD_KEY_LEN], *pt;
	size_t ptlen;
	int e;

	memset(st, 0, sizeof(*st));
	if (len > STATE_FILE_MAX)
		return -EFBIG;
	if (!file || len < STATE_HDR_LEN + AEAD_TAG_LEN ||
	    memcmp(file, STATE_MAGIC, STATE_MAGIC_LEN) != 0)
		return -EBADMSG;
	if (file[STATE_MAGIC_LEN] != (STATE_VERSION >> 8) ||
	    file[STATE_MAGIC_LEN + 1] != (STATE_VERSION & 0xff))
		return -EPROTONOSUPPORT;
	salt = file + STATE_MAGIC_LEN + 2;
	ptlen = len - STATE_HDR_LEN - AEAD_TAG_LEN;
	if (!(pt = malloc(ptlen ? ptlen : 1)))
		return -ENOMEM;
	e = state_derive_key(key, salt, k);
	if (e == 0 && crypto_aead_open(k, salt + STATE_SALT_LEN, file,
				       STATE_HDR_LEN, file + STATE_HDR_LEN,
				       len - STATE_HDR_LEN, pt) < 0)
		e = -EACCES;
	if (e == 0)
		e = state_decode(pt, ptlen, st);
	crypto_cleanse(k, sizeof(k));
	state_buf_free(pt, ptlen ? ptlen : 1);
	return e;
}

int state_save(const char *path, const struct state *st, const sm_key *key)
{
	uint8_t *f;
	size_t len;
	int e = state_seal(st, key, &f, &len);

	if (e == 0)
		e = fio_write_atomic(path, f, len, 0600, 0);
	state_buf_free(f, len);
	return e;
}

int state_load(const char *path, const sm_key *key, struct state *st)
{
	char *buf;
	size_t len;
	int e;

	memset(st, 0, sizeof(*st));
	e = fio_read_file(path, STATE_FILE_MAX, &buf, &len);
	if (e < 0)
		return e;
	e = state_open((const uint8_t *)buf, len, key, st);
	fio_free(buf, len);
	return e;
}

const char *state_strerror(int e)
{
	switch (e) {
	case 0:
		return "ok";
	case -EBADMSG:
		return "not a secmsg state file, or a damaged one";
	case -EPROTONOSUPPORT:
		return "written by another version of secmsg";
	case -EACCES:
		return "cannot be decrypted: another key, or the file was changed";
	case -EFBIG:
		return "too large for a state file";
	case -ENOENT:
		return "no state file";
	case -ENOMEM:
		return "out of memory";
	default:
		return "cannot be read or written";
	}
}
