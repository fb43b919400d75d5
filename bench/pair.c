/* pair.c - chat pairs: the set-up every chat mode shares (relay, latency,
 * store) and the texts they send.
 *
 * Pair i is users A (2i) and B (2i+1), on the same client thread. Both log
 * in and read their LIST reply; A sends RTT, B ACCEPT, A CONFIRM then
 * HELLO (PROTOCOL.md §6-7, with proto/e2e.c on both ends), and the pair is
 * ready when B has opened the HELLO. At version 2 the server makes the
 * chat a conversation (flags in ACCEPT and CONFIRM), and both ends keep
 * the keys they skip, as a conversation asks.
 *
 * Every text is exactly --size bytes and starts with
 * "PPPPPPP SSSSSSSSSS TTTTTTTTTTTTTTTTTTTT": the pair, the sequence number
 * (from 1) and the CLOCK_MONOTONIC time in ns just before it was sealed.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_TIMEOUT_S 120

static void put_dec(char *p, uint64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

static bool get_dec(const uint8_t *p, int width, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < width; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return true;
}

void pair_fail(struct pair *p, struct bthread *t, const char *what,
	       const char *detail)
{
	if (p->state != P_FAILED)
		bench_error(t, "pair %u (%s, %s): %s%s%s", p->idx, p->na, p->nb,
			    what, detail ? ": " : "", detail ? detail : "");
	p->state = P_FAILED;
}

/* ---- texts ---- */

int dir_send_text(struct bthread *t, struct dir *d)
{
	const struct opts *o = t->o;
	uint8_t e2e[E2E_MSG_MAX];
	char text[CHAT_TEXT_MAX];
	struct msg m = { .op = OP_MESSAGE, .ref = d->sent + 1 };
	uint32_t id;
	size_t len;

	memset(text + TEXT_HDR_LEN, '.', o->size - TEXT_HDR_LEN);
	put_dec(text, d->p->idx, 7);
	text[7] = ' ';
	put_dec(text + 8, d->sent + 1, 10);
	text[18] = ' ';
	put_dec(text + 19, now_ns(), 20);
	if (chat_seal_text(d->tx, text, o->size, &id, e2e, &len) != E2E_OK) {
		pair_fail(d->p, t, "chat_seal_text failed", NULL);
		return -EIO;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", d->to_name);
	m.e2e = e2e;
	m.e2e_len = len;
	if (conn_send(d->from, &m) < 0) {
		pair_fail(d->p, t, "cannot queue a MESSAGE", NULL);
		return -EIO;
	}
	d->sent++;
	atomic_fetch_add_explicit(&t->c.tx, 1, memory_order_relaxed);
	return 0;
}

bool dir_check_text(struct bthread *t, struct dir *d,
		    const struct chat_message *ev, uint64_t *sent_ns)
{
	uint64_t pidx, seq;
	char why[128];

	if (ev->text_len != t->o->size || ev->text_len < TEXT_HDR_LEN ||
	    !get_dec(ev->text, 7, &pidx) || !get_dec(ev->text + 8, 10, &seq) ||
	    !get_dec(ev->text + 19, 20, sent_ns)) {
		bench_error(t, "pair %u: a text of %zu bytes does not parse",
			    d->p->idx, ev->text_len);
		d->recv++;
		return false;
	}
	if (pidx != d->p->idx || seq != (uint64_t)d->recv + 1 || ev->id != seq) {
		snprintf(why, sizeof(why), "got pair %llu seq %llu id %u, "
			 "expected pair %u seq %u", (unsigned long long)pidx,
			 (unsigned long long)seq, ev->id, d->p->idx, d->recv + 1);
		bench_error(t, "pair %u: %s", d->p->idx, why);
		if (pidx == d->p->idx && seq > d->recv)
			d->recv = (uint32_t)seq;	/* count a gap once */
		return false;
	}
	d->recv++;
	return true;
}

int pair_open(struct bthread *t, struct dir *d, const char *sender,
	      const uint8_t *e2e, size_t len, uint8_t pt[CHAT_PT_MAX],
	      struct chat_message *ev)
{
	struct pair *p = d->p;
	enum e2e_result r;

	if (strcmp(sender, d->from == &p->a ? p->na : p->nb) != 0) {
		pair_fail(p, t, "MESSAGE from the wrong peer", sender);
		return -EPROTO;
	}
	if (p->state == P_FAILED)
		return -EPROTO;
	r = chat_open(d->rx, e2e, len, pt, ev);
	if (r != E2E_OK) {
		pair_fail(p, t, "chat_open failed", e2e_result_str(r));
		return -EPROTO;
	}
	if (ev->kind == CHAT_TEXT)
		return 1;
	if (ev->kind != CHAT_HELLO || d != &p->ab || p->state != P_CONFIRMED) {
		pair_fail(p, t, ev->kind == CHAT_HELLO ? "unexpected HELLO" :
			  "unexpected RECEIPT", NULL);
		return -EPROTO;
	}
	p->state = P_READY;
	return 0;
}

/* ---- the exchange ---- */

/* A conversation (version 2) keeps skipped keys; a chat of version 1 not. */
static void chat_start(struct chat *c, struct ratchet *r, bool initiator,
		       uint8_t flags)
{
	if (flags & MSG_FLAG_PERSISTENT)
		chat_init_v2(c, r, initiator);
	else
		chat_init(c, r, initiator);
}

void pair_start(struct bthread *t, struct pair *p)
{
	struct msg m = { .op = OP_RTT };

	if (e2e_initiator_start(&p->ini, p->na, p->nb) != E2E_OK) {
		pair_fail(p, t, "e2e_initiator_start failed", NULL);
		return;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", p->nb);
	memcpy(m.nonce, p->ini.nonce_a, sizeof(m.nonce));
	memcpy(m.share, p->ini.share_a, sizeof(m.share));
	if (conn_send(&p->a, &m) < 0)
		pair_fail(p, t, "cannot send RTT", NULL);
	else
		p->state = P_RTT;
}

static void on_rtt(struct bthread *t, struct pair *p, const struct msg *m)
{
	struct msg a = { .op = OP_ACCEPT };
	enum e2e_result r;

	if (strcmp(m->peer, p->na) != 0 || p->state != P_RTT) {
		pair_fail(p, t, "unexpected RTT", m->peer);
		return;
	}
	r = e2e_responder_accept(&p->resp, p->nb, p->na, m->nonce, m->share,
				 t->tg->key, a.nonce, a.share);
	if (r != E2E_OK) {
		pair_fail(p, t, "e2e_responder_accept", e2e_result_str(r));
		return;
	}
	snprintf(a.peer, sizeof(a.peer), "%s", p->na);
	a.sig = p->resp.sig_b;
	a.sig_len = p->resp.sig_b_len;
	if (conn_send(&p->b, &a) < 0)
		pair_fail(p, t, "cannot send ACCEPT", NULL);
	else
		p->state = P_ACCEPTED;
}

/* The peer's key as the server sent it; it must be the bench's user key. */
static sm_key *peer_key(struct bthread *t, struct pair *p, const struct msg *m)
{
	sm_key *k = NULL;

	if (key_from_spki(m->peer_key, m->peer_key_len, &k) < 0 ||
	    !key_equal(k, t->tg->key)) {
		key_unref(k);
		pair_fail(p, t, "the server sent a wrong peer key", NULL);
		return NULL;
	}
	return k;
}

static void on_accept(struct bthread *t, struct pair *p, const struct msg *m)
{
	uint8_t sig[SIG_MAX_LEN], e2e[E2E_MSG_MAX];
	struct msg c = { .op = OP_CONFIRM }, h = { .op = OP_MESSAGE, .ref = 0 };
	struct ratchet r;
	enum e2e_result res;
	size_t sig_len = sizeof(sig), len;
	sm_key *k;

	if (strcmp(m->peer, p->nb) != 0 || p->state != P_ACCEPTED) {
		pair_fail(p, t, "unexpected ACCEPT", m->peer);
		return;
	}
	if (!(k = peer_key(t, p, m)))
		return;
	res = e2e_initiator_finish(&p->ini, m->nonce, m->share, m->sig,
				   m->sig_len, k, t->tg->key, sig, &sig_len, &r);
	key_unref(k);
	e2e_initiator_clear(&p->ini);
	if (res != E2E_OK) {
		pair_fail(p, t, "e2e_initiator_finish", e2e_result_str(res));
		return;
	}
	chat_start(&p->ca, &r, true, m->flags);
	snprintf(c.peer, sizeof(c.peer), "%s", p->nb);
	c.sig = sig;
	c.sig_len = sig_len;
	if (chat_seal_hello(&p->ca, e2e, &len) != E2E_OK) {
		pair_fail(p, t, "chat_seal_hello failed", NULL);
		return;
	}
	/* Version 2 wants a ref on every MESSAGE; texts count from 1, and
	 * the HELLO takes the highest (refs are unique per conversation). */
	h.ref = UINT32_MAX;
	snprintf(h.peer, sizeof(h.peer), "%s", p->nb);
	h.e2e = e2e;
	h.e2e_len = len;
	if (conn_send(&p->a, &c) < 0 || conn_send(&p->a, &h) < 0)
		pair_fail(p, t, "cannot send CONFIRM and HELLO", NULL);
	else
		p->state = P_CONFIRMED;
}

static void on_confirm(struct bthread *t, struct pair *p, const struct msg *m)
{
	struct ratchet r;
	enum e2e_result res;
	sm_key *k;

	if (strcmp(m->peer, p->na) != 0 || p->state != P_CONFIRMED) {
		pair_fail(p, t, "unexpected CONFIRM", m->peer);
		return;
	}
	if (!(k = peer_key(t, p, m)))
		return;
	res = e2e_responder_finish(&p->resp, m->sig, m->sig_len, k, &r);
	key_unref(k);
	e2e_responder_clear(&p->resp);
	if (res != E2E_OK) {
		pair_fail(p, t, "e2e_responder_finish", e2e_result_str(res));
		return;
	}
	chat_start(&p->cb, &r, false, m->flags);
}

bool pair_exchange(struct conn *c, const struct msg *m)
{
	struct pair *p = c->owner;
	bool is_a = c == &p->a;

	if (m->op == OP_RTT && !is_a)
		on_rtt(c->t, p, m);
	else if (m->op == OP_ACCEPT && is_a)
		on_accept(c->t, p, m);
	else if (m->op == OP_CONFIRM && !is_a)
		on_confirm(c->t, p, m);
	else
		return false;
	return true;
}

void pair_unexpected(struct bthread *t, struct pair *p, const struct msg *m)
{
	char text[128];
	size_t n = m->text_len < sizeof(text) - 1 ? m->text_len : sizeof(text) - 1;

	if (m->text)
		memcpy(text, m->text, n);
	text[m->text ? n : 0] = '\0';
	if (m->op == OP_ERROR)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 " (ERROR %u)", m->code);
	else if (m->op != OP_BYE || !m->text)
		snprintf(text, sizeof(text), "reason %u, peer %s", m->reason,
			 m->peer);
	pair_fail(p, t, opcode_name(m->op), text);
}

/* ---- set-up and clean-up ---- */

static void dir_init(struct dir *d, struct pair *p, bool ab)
{
	d->p = p;
	d->from = ab ? &p->a : &p->b;
	d->to = ab ? &p->b : &p->a;
	d->tx = ab ? &p->ca : &p->cb;
	d->rx = ab ? &p->cb : &p->ca;
	d->to_name = ab ? p->nb : p->na;
}

static void pair_init(struct pair *p, struct bthread *t, uint32_t idx, unsigned version)
{
	p->idx = idx;
	conn_init(&p->a, t, 2 * idx, 0, p);
	conn_init(&p->b, t, 2 * idx + 1, 1, p);
	p->a.want_version = p->b.want_version = (uint8_t)version;
	user_name(t->tg, p->a.user, p->na);
	user_name(t->tg, p->b.user, p->nb);
	dir_init(&p->ab, p, true);
	dir_init(&p->ba, p, false);
}

void pair_clear(struct pair *p)
{
	conn_close(&p->a, false);
	conn_close(&p->b, false);
	free(p->a.obuf);
	free(p->b.obuf);
	e2e_initiator_clear(&p->ini);
	e2e_responder_clear(&p->resp);
	chat_clear(&p->ca);
	chat_clear(&p->cb);
}

void pairs_login(struct bthread *t, struct pair *pairs, unsigned n,
		 unsigned *next, bool both)
{
	unsigned need = both ? 2 : 1;

	while (*next < n && t->logging_in + need <= t->o->inflight_logins) {
		struct pair *p = &pairs[(*next)++];
		int e = 0;

		if (p->state == P_FAILED)
			continue;
		if (both) {
			p->state = P_LOGIN;
			e = conn_login(&p->a);
		}
		if (e == 0)
			e = conn_login(&p->b);
		if (e < 0)
			pair_fail(p, t, "cannot connect", strerror(-e));
	}
}

struct pair *pairs_new(struct bthread *t, unsigned first, unsigned step,
		       unsigned total, unsigned version, unsigned *n)
{
	struct pair *pairs;

	*n = total > first ? (total - first + step - 1) / step : 0;
	pairs = calloc(*n ? *n : 1, sizeof(*pairs));
	if (!pairs)
		*n = 0;
	for (unsigned i = 0; pairs && i < *n; i++)
		pair_init(&pairs[i], t, first + i * step, version);
	return pairs;
}

void pair_listed(struct conn *c)
{
	struct pair *p = c->owner;

	if (p->a.listed && p->b.listed && p->state == P_LOGIN)
		pair_start(c->t, p);
}

void pair_failed(struct conn *c, const char *why)
{
	struct pair *p = c->owner;

	pair_fail(p, c->t, c == &p->a ? "A's connection" : "B's connection", why);
}

bool pairs_wait_ready(struct bthread *ts, unsigned nt, unsigned want)
{
	uint64_t end = now_ns() + (SETUP_TIMEOUT_S + want / 20) * 1000000000ull;

	while (now_ns() < end) {
		if (SUM(ts, nt, ready) >= want)
			return true;
		if (SUM(ts, nt, errors) > 0) {
			fprintf(stderr, "secmsg-bench: setting up the pairs failed\n");
			return false;
		}
		if (!sleep_until(now_ns() + 10000000u))
			return false;
	}
	fprintf(stderr, "secmsg-bench: only %llu of %u pairs ready after the "
		"set-up timeout\n", SUM(ts, nt, ready), want);
	return false;
}
