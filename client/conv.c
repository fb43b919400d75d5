/* conv.c - conversations (protocol version 2): chats that live in the
 * store and outlive the connection.
 *
 * The persisting rules of secmsg-protocol(7) ("Chat messages in a
 * conversation") are kept here, at the one place each record is made:
 * the store is saved after a chat_seal_* and before the record is handed
 * to the send function (rule 1; a RECEIPT also acknowledges, rule 2), so
 * a crash at any instruction leaves on disk a sending chain at or past
 * every key used. If the save fails the record does not leave: its key is
 * skipped (a gap the receiver absorbs), never used twice. A message this
 * client refuses is dropped and the conversation goes on; only an END
 * ends it, on either side, for good.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chats_int.h"
#include "out.h"

/* ---- the store ---- */

struct state_conv *conv_of(const struct chats *c, const struct peer *p)
{
	return c->store ? state_find(&c->store->st, p->name) : NULL;
}

int conv_save(struct chats *c)
{
	int r = cstore_save(c->store);

	if (r < 0) {
		c->dirty = true;
		out_error(c->out, "cannot save the state file %s: %s",
			  c->store->path, strerror(-r));
		return r;
	}
	c->dirty = false;
	return 0;
}

int chats_save_dirty(struct chats *c)
{
	if (!c->store || !c->dirty)
		return 0;
	return conv_save(c);
}

uint32_t conv_take_ref(struct state_conv *sc)
{
	uint32_t ref = sc->next_ref;

	if (ref != 0)
		sc->next_ref = ref == UINT32_MAX ? 0 : ref + 1;
	return ref;
}

static void fpr_to_raw(const char *hex, uint8_t raw[SHA256_LEN])
{
	for (size_t i = 0; i < SHA256_LEN; i++) {
		unsigned v = 0;

		sscanf(hex + 2 * i, "%2x", &v);
		raw[i] = (uint8_t)v;
	}
}

static void fpr_to_hex(const uint8_t raw[SHA256_LEN],
		       char hex[FPR_HEX_LEN + 1])
{
	for (size_t i = 0; i < SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
}

/* Say that a conversation is over and forget its row (its state is gone
 * already). */
static void conv_gone(struct chats *c, const char *peer, unsigned reason)
{
	char name[NAME_MAX_LEN + 1];
	struct peer *p = chats_peer_find(c, peer);

	snprintf(name, sizeof(name), "%s", peer);
	chats_emit(c, CEV_ENDED, name, reason);
	if (p)
		chats_peer_remove(c, p);
}

/* ---- beginning ---- */

/* The store takes the chat r set up: the conversation exists on this
 * side, saved. false (nothing kept, the user told) when it cannot be. */
static bool conv_add(struct chats *c, struct peer *p, struct ratchet *r,
		     bool initiator)
{
	uint8_t fpr[SHA256_LEN];
	struct chat chat;
	int e;

	chat_init_v2(&chat, r, initiator);
	fpr_to_raw(p->fpr, fpr);
	e = state_add(&c->store->st, p->name, (uint64_t)time(NULL), fpr,
		      &chat);
	if (e < 0) {
		chat_clear(&chat);
		out_error(c->out, "cannot keep the conversation with %s: %s",
			  p->name, strerror(-e));
		return false;
	}
	p->conv = true;
	p->online = !c->kept_in;	/* CONVERSATIONS says, after KEPT */
	p->fresh = !c->convs_in;
	p->state = PEER_ESTABLISHED;
	return true;
}

/* Undo conv_add: the conversation never began on this side. */
static void conv_undo(struct chats *c, struct peer *p)
{
	state_remove(&c->store->st, p->name);
	p->conv = false;
	p->state = PEER_ACCEPTED; /* its own chat is all zero: nothing to clear */
}

/* Keep A's HELLO, to send it again (same bytes, same ref) after ERROR 6. */
static void keep_hello(struct peer *p, const uint8_t *e2e, size_t len,
		       uint32_t ref)
{
	free(p->hello);
	p->hello = malloc(len);
	p->hello_len = p->hello ? len : 0;
	if (p->hello)
		memcpy(p->hello, e2e, len);
	p->hello_ref = ref;
	p->hello_refused = false;
}

/* The end of an attempt that cannot become a conversation: END (empty
 * e2e, which the server takes for the request, or for the conversation
 * when it began) and the row goes. */
static void conv_abort(struct chats *c, struct peer *p, const char *why)
{
	struct msg m = { .op = OP_END };

	snprintf(m.peer, sizeof(m.peer), "%s", p->name);
	chats_send_msg(c, &m, true);
	kept_forget(c, p->name);	/* the request ended with it */
	out_notice(c->out, "conversation with %s failed: %s", p->name, why);
	chats_emit(c, CEV_ENDED, p->name, CEV_END_FAILED);
	chats_peer_remove(c, p);
}

bool conv_start_initiator(struct chats *c, struct peer *p, struct ratchet *r,
			  const struct msg *confirm)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);
	struct state_conv *sc;
	uint32_t ref = 0;
	enum e2e_result er = E2E_ERR_INTERNAL;

	if (!conv_add(c, p, r, true)) {
		conv_abort(c, p, "no room in the state");
		return false;
	}
	sc = conv_of(c, p);
	er = chat_seal_hello(&sc->chat, out, &out_len);
	if (er == E2E_OK)
		ref = conv_take_ref(sc);
	/* Saved before CONFIRM: the server's conversation begins with it. */
	if (er != E2E_OK || conv_save(c) < 0) {
		conv_undo(c, p);
		conv_abort(c, p, er != E2E_OK ? e2e_result_str(er) :
			   "the state file cannot be written");
		crypto_cleanse(out, sizeof(out));
		return false;
	}
	if (chats_send_msg(c, confirm, false) == 0) {
		keep_hello(p, out, out_len, ref);
		chats_send_sealed(c, p, ref, out, out_len, CHAT_HELLO, 0);
	}
	crypto_cleanse(out, sizeof(out));
	return true;
}

bool conv_start_responder(struct chats *c, struct peer *p, struct ratchet *r)
{
	if (!conv_add(c, p, r, false)) {
		conv_abort(c, p, "no room in the state");
		return false;
	}
	p->hello_wait = true;
	if (conv_save(c) < 0) {
		conv_undo(c, p);
		conv_abort(c, p, "the state file cannot be written");
		return false;
	}
	return true;
}

/* ---- sending ---- */

/* TEXT id (ref) could not go to the server now (no connection, or it
 * broke): it waits in the outbox, saved, marked typed; conv_out_resend
 * sends it at the next login. Nothing of it was written: saving it only
 * now keeps rule 1 (the chain past its key is on disk already). */
static int conv_type(struct chats *c, struct peer *p, uint32_t ref,
		     uint32_t id, const uint8_t *e2e, size_t len)
{
	bool kept = conv_out_has(c, p->name, ref);	/* offline peer */
	struct state_out *o;

	if (!kept)
		conv_out_keep(c, p, ref, CHAT_TEXT, id, e2e, len);
	if (!(o = state_out_find(&c->store->st, p->name, ref))) {
		out_error(c->out, "message to %s not sent: no connection, and "
			  "it cannot be kept to send later", p->name);
		return -ENOTCONN;
	}
	o->typed = true;
	if (!kept)	/* a failure is reported; it waits in memory then */
		chats_save_dirty(c);
	return 0;
}

int conv_send_text(struct chats *c, struct peer *p, const char *text,
		   size_t len)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);
	struct state_conv *sc = conv_of(c, p);
	enum e2e_result er;
	enum cev_kind kind;
	uint32_t id, ref;
	int r;

	if (!sc)
		return -ENOENT;
	/* An offline peer's messages are stored by the server (STORED);
	 * till then they wait in the outbox, which must have room. */
	if (!p->online && !conv_out_room(c, p))
		return -ENOSPC;
	er = chat_seal_text(&sc->chat, text, len, &id, out, &out_len);
	ref = er == E2E_OK ? conv_take_ref(sc) : 0;
	if (er == E2E_ERR_LIMIT || (er == E2E_OK && ref == 0)) {
		out_error(c->out, "the conversation with %s has used all its "
			  "message numbers: it ends", p->name);
		conv_end(c, p);
		return PEER_GONE;
	}
	if (er != E2E_OK) {
		out_error(c->out, "cannot send to %s: %s", p->name,
			  e2e_result_str(er));
		return -EIO;
	}
	/* Rule 1: the chain past this key is on disk before the record
	 * can leave; for an offline peer, so is the record (the outbox). */
	if (!p->online)
		conv_out_keep(c, p, ref, CHAT_TEXT, id, out, out_len);
	r = conv_save(c);
	if (r == 0 && c->connected)
		r = chats_send_sealed(c, p, ref, out, out_len, CHAT_TEXT, id);
	else if (r < 0) {
		state_out_take(&c->store->st, p->name, ref, NULL);
		out_error(c->out, "message to %s not sent", p->name);
	}
	kind = r == 0 && c->connected ? CEV_SENT : CEV_TYPED;
	if ((r == 0 && !c->connected) || r == -EPIPE)
		r = conv_type(c, p, ref, id, out, out_len);
	crypto_cleanse(out, sizeof(out));
	if (r == 0)
		chats_emit_id(c, kind, p->name, id, text, len);
	return r;
}

/* A RECEIPT for TEXT id: saved first (it acknowledges what was accepted,
 * and its key advances the sending chain). */
static void conv_receipt(struct chats *c, struct peer *p, uint32_t id)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);
	struct state_conv *sc = conv_of(c, p);
	uint32_t ref;

	if (!sc || chat_seal_receipt(&sc->chat, id, out, &out_len) != E2E_OK)
		return;
	ref = conv_take_ref(sc);
	if (ref != 0 && !p->online)
		conv_out_keep(c, p, ref, CHAT_RECEIPT, id, out, out_len);
	if (ref != 0 && conv_save(c) == 0)
		chats_send_sealed(c, p, ref, out, out_len, CHAT_RECEIPT, id);
	crypto_cleanse(out, sizeof(out));
}

int conv_end(struct chats *c, struct peer *p)
{
	struct msg m = { .op = OP_END };
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);
	struct state_conv *sc = conv_of(c, p);
	int r;

	/* Kind END when this side can seal; else empty (the page allows it:
	 * no sending chain yet). */
	if (!sc || chat_seal_end(&sc->chat, out, &out_len) != E2E_OK)
		out_len = 0;
	state_remove(&c->store->st, p->name);
	/* The sealed END leaves only once the state without the conversation
	 * is on disk; if it cannot be written, an empty END ends it instead
	 * (no key of the chain the disk still holds appears on the wire). */
	if (conv_save(c) < 0)
		out_len = 0;
	snprintf(m.peer, sizeof(m.peer), "%s", p->name);
	m.e2e = out;
	m.e2e_len = out_len;
	r = chats_send_msg(c, &m, true);
	crypto_cleanse(out, sizeof(out));
	out_info(c->out, "ended the conversation with %s for good", p->name);
	chats_peer_remove(c, p);
	return r;
}

/* ---- receiving ---- */

/* A: B answered, so B has HELLO: it is never sent again. */
static void hello_answered(struct peer *p)
{
	free(p->hello);
	p->hello = NULL;
	p->hello_len = 0;
	p->hello_refused = false;
}

/* A message of the conversation with p; a stored one (QUEUED) that comes
 * again after it was accepted is dropped without a word. */
static void conv_open(struct chats *c, struct peer *p, const struct msg *m,
		      bool stored)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	struct state_conv *sc = conv_of(c, p);
	enum e2e_result er;

	if (!sc)
		return;
	er = chat_open(&sc->chat, m->e2e, m->e2e_len, pt, &ev);
	if (er == E2E_ERR_DUPLICATE && stored)
		return;
	if (er != E2E_OK) {
		/* Nothing changed: the conversation goes on without it. */
		out_notice(c->out, "a message from %s was dropped: %s", p->name,
			   e2e_result_str(er));
		chats_emit(c, CEV_DROPPED, p->name, er);
		return;
	}
	c->dirty = true;
	hello_answered(p);
	if (ev.kind == CHAT_HELLO) {
		conv_save(c); /* B's side of HELLO must not be lost */
		chats_flush_held(c, p);
	} else if (ev.kind == CHAT_TEXT) {
		chats_emit_id(c, CEV_MSG, p->name, ev.id,
			      (const char *)ev.text, ev.text_len);
		conv_receipt(c, p, ev.id);
	} else if (ev.kind == CHAT_RECEIPT && ev.id != 0) {
		chats_emit_id(c, CEV_DELIVERED, p->name, ev.id, NULL, 0);
	}
	crypto_cleanse(pt, sizeof(pt));
}

void conv_on_message(struct chats *c, struct peer *p, const struct msg *m)
{
	conv_open(c, p, m, false);
}

void conv_on_queued(struct chats *c, const struct msg *m)
{
	struct peer *p = chats_peer_find(c, m->peer);

	if (c->version < 2 || m->seq <= c->queued_seen)
		return;
	c->queued_seen = m->seq;
	if (p && p->conv && p->state == PEER_ESTABLISHED)
		conv_open(c, p, m, true);
	else
		out_notice(c->out, "a stored message from %s was dropped: no "
			   "conversation with %s", m->peer, m->peer);
	c->ack_due = m->seq;
}

bool conv_on_end(struct chats *c, const struct msg *m)
{
	struct state_conv *sc = c->store && c->version >= 2 ?
				state_find(&c->store->st, m->peer) : NULL;
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	enum e2e_result er = E2E_ERR_MALFORMED;
	unsigned reason = m->reason;

	if (!sc)
		return false;
	if (m->reason == END_LEFT && m->e2e_len > 0)
		er = chat_open_end(&sc->chat, m->e2e, m->e2e_len, pt, &ev);
	crypto_cleanse(pt, sizeof(pt));
	if (m->reason == END_LEFT && er != E2E_OK) {
		reason = CEV_END_SERVER;
		out_notice(c->out, "the server says %s ended your conversation "
			   "for good; %s's client did not confirm it", m->peer,
			   m->peer);
	}
	/* Either way the server has forgotten it: so does this side. */
	state_remove(&c->store->st, m->peer);
	conv_save(c);
	conv_gone(c, m->peer, reason);
	return true;
}

void conv_on_presence(struct chats *c, const struct msg *m)
{
	struct peer *p = chats_peer_find(c, m->peer);
	struct cev ev = { .kind = CEV_PRESENCE, .peer = m->peer,
			  .flag = m->online };

	if (!p || !p->conv)
		return;
	p->online = m->online;
	out_event(c->out, &ev);
	if (p->online && p->hello_refused && p->hello) {
		p->hello_refused = false;
		chats_send_sealed(c, p, p->hello_ref, p->hello, p->hello_len,
				  CHAT_HELLO, 0);
	}
}

static struct sent *sent_find(struct peer *p, uint32_t ref)
{
	unsigned n = p->nsent < SENT_LOG ? p->nsent : SENT_LOG;

	for (unsigned i = 1; i <= n; i++) {
		struct sent *e = &p->sent[(p->nsent - i) % SENT_LOG];

		if (e->ref == ref)
			return e;
	}
	return NULL;
}

void conv_on_error(struct chats *c, const struct msg *m)
{
	struct peer *p;
	const struct sent *e;
	struct sent kept;
	struct cev ev = { .kind = CEV_NOTSENT, .code = m->code };

	if (c->version < 2 || m->err_op != OP_MESSAGE || m->ref == 0 ||
	    !m->peer[0])
		return;
	/* Refused: not sent again. A record kept from an earlier run is
	 * named from the outbox. */
	if (!(p = chats_peer_find(c, m->peer))) {
		conv_out_done(c, m->peer, m->ref, NULL);
		return;
	}
	e = sent_find(p, m->ref);
	if (!e && conv_out_done(c, m->peer, m->ref, &kept))
		e = &kept;
	else
		conv_out_done(c, m->peer, m->ref, NULL);
	if (!e) {
		out_notice(c->out, "the server refused a message to %s that "
			   "this client no longer remembers", p->name);
		return;
	}
	if (m->code == ERR_OFFLINE && p->conv)
		p->online = false;
	if (e->kind == CHAT_TEXT) {
		ev.peer = p->name;
		ev.id = e->id;
		out_event(c->out, &ev);
	} else if (e->kind == CHAT_HELLO && p->hello && e->ref == p->hello_ref &&
		   m->code == ERR_OFFLINE) {
		p->hello_refused = true;
		out_notice(c->out, "%s went offline before the conversation "
			   "was set up; it will be when %s is back", p->name,
			   p->name);
	} else {
		out_notice(c->out, "a %s to %s was not carried out",
			   e->kind == CHAT_HELLO ? "HELLO" : "receipt",
			   p->name);
	}
}

void conv_on_stored(struct chats *c, const struct msg *m)
{
	struct peer *p = chats_peer_find(c, m->peer);
	struct sent *e = p ? sent_find(p, m->ref) : NULL;
	struct sent kept;

	/* A record kept from an earlier run is named from the outbox. */
	if (conv_out_done(c, m->peer, m->ref, &kept) && !e && p)
		e = &kept;
	if (c->version < 2 || !e || e->stored)
		return;
	e->stored = true;	/* shown once */
	if (e->kind == CHAT_TEXT)
		chats_emit_id(c, CEV_STORED, p->name, e->id, NULL, 0);
	else if (e->kind == CHAT_HELLO && e->ref == p->hello_ref)
		p->hello_refused = false;	/* the server has it */
}

void conv_on_expired(struct chats *c, const struct msg *m)
{
	struct peer *p = chats_peer_find(c, m->peer);
	struct sent *e = p ? sent_find(p, m->ref) : NULL;
	struct cev ev = { .kind = CEV_EXPIRED, .peer = m->peer,
			  .when = m->at };

	if (c->version < 2)
		return;
	if (e && e->kind == CHAT_TEXT)
		ev.id = e->id;
	else if (e)
		return;	/* a receipt or a HELLO: nothing the user wrote */
	out_event(c->out, &ev);
}

/* ---- the login: CONVERSATIONS ---- */

/* The store's conversation with a known-peers check: a key other than the
 * one recorded stops it at the key-change gate until `trust`. */
static void conv_check_key(struct chats *c, struct peer *p)
{
	enum kp_status st = chats_check_fpr(c, p->name, p->fpr);

	if (st == KP_NEW)
		chats_record_key(c, p->name, p->fpr);
	else if (st == KP_CHANGED)
		out_notice(c->out, "the conversation with %s began with another "
			   "key than your known peers hold: nothing is sent to "
			   "%s until you check it and trust it", p->name,
			   p->name);
}

struct peer *conv_row(struct chats *c, struct state_conv *sc)
{
	struct peer *p = chats_peer_find(c, sc->peer);

	if (p && p->conv)
		return p;
	if (p)	/* no request or chat of version 1 rules can stand beside it */
		chats_peer_remove(c, p);
	if (!(p = chats_peer_add(c, sc->peer, PEER_ESTABLISHED)))
		return NULL;
	p->conv = true;
	p->hello_wait = !chat_can_send(&sc->chat);
	fpr_to_hex(sc->peer_fpr, p->fpr);
	conv_check_key(c, p);
	return p;
}

/* A conversation the server lists. One this client has no state for it
 * cannot read or write: it ends it for good (empty e2e). */
static void conv_listed(struct chats *c, const struct msg_conv *e)
{
	struct state_conv *sc = state_find(&c->store->st, e->peer);
	struct msg m = { .op = OP_END };
	struct peer *p;

	if (!sc) {
		snprintf(m.peer, sizeof(m.peer), "%s", e->peer);
		chats_send_msg(c, &m, true);
		out_notice(c->out, "the server holds a conversation with %s "
			   "that this client has no state for: it was ended "
			   "for good", e->peer);
		chats_emit(c, CEV_ENDED, e->peer, CEV_END_LOST);
		return;
	}
	if (!(p = conv_row(c, sc)))
		return;
	p->listed = true;
	p->online = e->flags & CONV_FLAG_ONLINE;
	if (sc->since != e->since) {
		sc->since = e->since;
		c->dirty = true;
	}
}

/* The reply is complete: what the server did not list, it no longer
 * knows (and any END for it came before the reply): forget it. */
static void conv_forget_unlisted(struct chats *c)
{
	struct state *st = &c->store->st;
	char name[NAME_MAX_LEN + 1];
	size_t i = 0;

	while (i < st->n) {
		struct peer *p = chats_peer_find(c, st->conv[i].peer);

		if (p && p->conv && (p->listed || p->fresh)) {
			p->fresh = false;
			i++;
			continue;
		}
		snprintf(name, sizeof(name), "%s", st->conv[i].peer);
		state_remove(st, name);
		c->dirty = true;
		out_notice(c->out, "the server no longer knows your "
			   "conversation with %s: it is forgotten", name);
		conv_gone(c, name, CEV_END_FORGOTTEN);
	}
}

/* Send again what the last connection never sent: a conversation's
 * MESSAGE (if the conversation is still there) and END, the same bytes
 * and ref; and a HELLO the server refused, when its peer is back. In the
 * order they were sealed: the outbox, what was on its way when the
 * connection ended, then what was typed without a connection. */
static void conv_out_resend(struct chats *c, bool typed);

static void conv_resume(struct chats *c)
{
	struct unsent *u;
	struct peer *p;
	struct msg m;

	conv_out_resend(c, false);
	while ((u = c->unsent)) {
		c->unsent = u->next;
		if (msg_decode_c2s_v(u->pt, u->len, 2, &m) == 0 &&
		    (m.op == OP_END ||
		     (m.op == OP_MESSAGE &&
		      (p = chats_peer_find(c, m.peer)) && p->conv)))
			c->send(c->send_ctx, u->pt, u->len, true);
		crypto_cleanse(u->pt, u->len);
		free(u);
	}
	c->unsent_tail = NULL;
	conv_out_resend(c, true);
	for (p = c->peers; p; p = p->next)
		if (p->conv && p->online && p->hello_refused && p->hello) {
			p->hello_refused = false;
			chats_send_sealed(c, p, p->hello_ref, p->hello,
					  p->hello_len, CHAT_HELLO, 0);
		}
}

void conv_on_conversations(struct chats *c, const struct msg *m)
{
	struct msg_conv e;
	struct peer *p;
	size_t off = 0;
	int r;

	if (!c->store)
		return;
	if (!c->convs_reading) {
		for (p = c->peers; p; p = p->next)
			p->listed = false;
		c->convs_reading = true;
	}
	while ((r = msg_conv_next(m, &off, &e)) == 1)
		conv_listed(c, &e);
	if (r < 0)
		out_notice(c->out, "malformed CONVERSATIONS reply from the "
			   "server");
	if (!m->last)
		return;
	c->convs_reading = false;
	conv_forget_unlisted(c);
	chats_save_dirty(c);
	c->convs_in = true;
	chats_conversations(c);
	conv_resume(c);
}

void chats_conversations(struct chats *c)
{
	struct state *st;
	struct peer *p;

	if (!c->store)
		return;
	st = &c->store->st;
	for (size_t i = 0; i < st->n; i++) {
		struct cev ev = { .kind = CEV_CONV, .peer = st->conv[i].peer,
				  .when = st->conv[i].since };

		p = chats_peer_find(c, st->conv[i].peer);
		if (!p || !p->conv)
			continue;
		ev.flag = p->online;
		out_event(c->out, &ev);
	}
}

/* Keep a record the connection never sent, to send on the next one;
 * what the outbox holds goes from there instead. */
void chats_unsent(void *ctx, const uint8_t *pt, size_t len)
{
	struct chats *c = ctx;
	struct unsent *u;
	struct msg m;

	if (msg_decode_c2s_v(pt, len, 2, &m) == 0 && m.op == OP_MESSAGE &&
	    conv_out_has(c, m.peer, m.ref))
		return;
	if (!(u = malloc(sizeof(*u) + len)))
		return;
	u->next = NULL;
	u->len = len;
	memcpy(u->pt, pt, len);
	if (c->unsent_tail)
		c->unsent_tail->next = u;
	else
		c->unsent = u;
	c->unsent_tail = u;
}

/* ---- the outbox ---- */

bool conv_out_room(struct chats *c, struct peer *p)
{
	if (c->store->st.nout < STATE_MAX_OUTBOX)
		return true;
	out_error(c->out, "message to %s not sent: %u messages already wait "
		  "for the server to store them; try again once they are "
		  "stored", p->name, (unsigned)STATE_MAX_OUTBOX);
	return false;
}

void conv_out_keep(struct chats *c, struct peer *p, uint32_t ref,
		   uint8_t kind, uint32_t id, const uint8_t *e2e, size_t len)
{
	int r = state_out_add(&c->store->st, p->name, ref, kind, id, e2e,
			      len);

	if (r == 0)
		c->dirty = true;
	else if (r != -EEXIST)	/* full or no memory: sent, not kept */
		out_notice(c->out, "a message to %s cannot be kept to send "
			   "again (%s): if this connection ends before the "
			   "server stores it, it is lost", p->name,
			   strerror(-r));
}

bool conv_out_has(struct chats *c, const char *peer, uint32_t ref)
{
	return c->store && state_out_find(&c->store->st, peer, ref);
}

/* STORED or a refusal for (peer, ref): out of the outbox; *e (if not
 * NULL) says what it was. False when it was not there. */
bool conv_out_done(struct chats *c, const char *peer, uint32_t ref,
		   struct sent *e)
{
	struct state_out o;

	if (!c->store || state_out_take(&c->store->st, peer, ref, &o) < 0)
		return false;
	if (e)
		*e = (struct sent){ .ref = ref, .id = o.id, .kind = o.kind };
	state_out_clear(&o);
	c->dirty = true;	/* saved lazily: a resend is recognised */
	return true;
}

/* A typed TEXT went: its mark moves on to sent. */
static void conv_typed_sent(struct chats *c, struct peer *p,
			    struct state_out *o)
{
	struct cev ev = { .kind = CEV_SENT, .peer = p->name, .id = o->id,
			  .flag = true };

	o->typed = false;
	out_event(c->out, &ev);
}

/* At a login: the outbox goes out again, oldest first, the same bytes
 * and ref (the server stores each once; a peer shows each once): the
 * records typed without a connection (typed) or the others. What goes to
 * a peer online now is relayed, so it leaves the outbox (if the peer's
 * session ends first, the server stores it and says STORED). */
static void conv_out_resend(struct chats *c, bool typed)
{
	struct state *st = &c->store->st;
	size_t i = 0;

	while (i < st->nout) {
		struct state_out *o = &st->out[i];
		struct peer *p = chats_peer_find(c, o->peer);
		struct msg m = { .op = OP_MESSAGE, .ref = o->ref,
				 .e2e = o->e2e, .e2e_len = o->len };

		snprintf(m.peer, sizeof(m.peer), "%s", o->peer);
		if (o->typed != typed || !p || !p->conv ||
		    chats_send_msg(c, &m, false) < 0) {
			i++;
			continue;
		}
		chats_log_sent(p, o->ref, o->kind, o->id);
		if (o->typed)
			conv_typed_sent(c, p, o);
		if (p->online)
			conv_out_done(c, p->name, o->ref, NULL);
		else
			i++;
	}
}

void conv_out_report(struct chats *c)
{
	struct state *st;

	if (!c || !c->store || !(st = &c->store->st)->nout)
		return;
	out_notice(c->out, "%zu message(s) not yet confirmed stored by the "
		   "server are kept and sent again at your next login",
		   st->nout);
}

uint32_t conv_text_id(struct chats *c, const char *peer, uint32_t ref)
{
	struct peer *p = chats_peer_find(c, peer);
	const struct sent *e = p && ref ? sent_find(p, ref) : NULL;
	const struct state_out *o = NULL;

	if (e)
		return e->kind == CHAT_TEXT ? e->id : 0;
	if (c->store && ref)
		o = state_out_find(&c->store->st, peer, ref);
	return o && o->kind == CHAT_TEXT ? o->id : 0;
}
