/* chats.c - the table of chats: the e2e exchange, the ratchets, known
 * peers. Conversations (version 2) are conv.c's. */
#include "chats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chats_int.h"
#include "mono.h"
#include "out.h"

/* Longest list of names we merge from a multi-record LIST reply. */
#define USERS_MAX (8u << 20)

static bool crossing_take(struct chats *c, const char *peer);
static void accept_crossed(struct chats *c, struct peer *p);

/* ---- events ---- */

void chats_emit(struct chats *c, enum cev_kind kind, const char *peer,
		unsigned reason)
{
	struct cev ev = { .kind = kind, .peer = peer, .reason = reason };

	/* The advice for END 6 names us and our key (what to /trust). */
	if (kind == CEV_ENDED && reason == END_KEY_UNKNOWN) {
		ev.s1 = c->self;
		ev.s2 = c->self_fpr;
	}
	out_event(c->out, &ev);
}

void chats_emit_id(struct chats *c, enum cev_kind kind, const char *peer,
		   uint32_t id, const char *text, size_t len)
{
	struct cev ev = { .kind = kind, .peer = peer, .id = id,
			  .text = text, .text_len = len };

	out_event(c->out, &ev);
}

/* ---- the table ---- */

struct peer *chats_peer_find(const struct chats *c, const char *name)
{
	struct peer *p;

	for (p = c->peers; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* A new row for name in state st; NULL when out of memory. */
struct peer *chats_peer_add(struct chats *c, const char *name,
			    enum peer_state st)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->state = st;
	p->next = c->peers;
	c->peers = p;
	return p;
}

static void free_held(struct held *h)
{
	struct held *next;

	for (; h; h = next) {
		next = h->next;
		crypto_cleanse(h->text, h->len);
		free(h);
	}
}

/* Cleanse and free a row that is no longer linked. */
static void peer_destroy(struct peer *p)
{
	e2e_initiator_clear(&p->ini);
	e2e_responder_clear(&p->resp);
	if (p->state == PEER_ESTABLISHED && !p->conv)
		chat_clear(&p->chat);
	free_held(p->held);
	free(p->hello);
	crypto_cleanse(p, sizeof(*p));
	free(p);
}

/* Forget a row: unlink, cleanse, and say that it is gone. */
void chats_peer_remove(struct chats *c, struct peer *p)
{
	char name[NAME_MAX_LEN + 1];
	struct peer **pp;

	for (pp = &c->peers; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	if (p->nheld > 0)
		out_notice(c->out, "%u message(s) to %s were never sent",
			   p->nheld, p->name);
	memcpy(name, p->name, sizeof(name));
	peer_destroy(p);
	chats_emit(c, CEV_GONE, name, 0);
}

/* ---- sending ---- */

/* Encode m at the session's version into pt (REC_MAX); its length in
 * *len. 0 or a negative error. */
static int encode(const struct chats *c, const struct msg *m, uint8_t *pt,
		  size_t *len)
{
	struct writer w;
	int r;

	wr_init(&w, pt, REC_MAX);
	r = msg_encode_c2s_v(m, c->version, &w);
	if (r == 0 && wr_error(&w))
		r = -EMSGSIZE;
	*len = w.len;
	return r;
}

int chats_send_msg(struct chats *c, const struct msg *m, bool keep)
{
	uint8_t pt[REC_MAX];
	size_t len;
	int r = encode(c, m, pt, &len);

	answers_note(&c->answers, m, c->out->cmd);
	if (r == 0)
		r = c->send(c->send_ctx, pt, len, keep);
	crypto_cleanse(pt, len);
	return r;
}

static int send_msg(struct chats *c, const struct msg *m)
{
	return chats_send_msg(c, m, false);
}

static int send_peer_op(struct chats *c, uint8_t op, const char *peer)
{
	struct msg m = { .op = op };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return send_msg(c, &m);
}

/* Remember what the MESSAGE with ref was, for the ERROR that may name it. */
void chats_log_sent(struct peer *p, uint32_t ref, uint8_t kind, uint32_t id)
{
	struct sent *e = &p->sent[p->nsent++ % SENT_LOG];

	*e = (struct sent){ .ref = ref, .id = id, .kind = kind };
}

int chats_send_sealed(struct chats *c, struct peer *p, uint32_t ref,
		      const uint8_t *e2e, size_t len, uint8_t kind,
		      uint32_t id)
{
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = len,
			 .ref = ref };
	uint8_t pt[REC_MAX];
	size_t n;
	int r;

	snprintf(m.peer, sizeof(m.peer), "%s", p->name);
	r = encode(c, &m, pt, &n);
	if (r == 0)
		r = c->send(c->send_ctx, pt, n, p->conv);
	if (r == 0 && ref)
		chats_log_sent(p, ref, kind, id);
	/* For an offline peer the server answers STORED: till then the
	 * record waits in the outbox (TEXT and RECEIPT put it there before
	 * their save; this is for the others). */
	if (r == 0 && ref && p->conv && !p->online)
		conv_out_keep(c, p, ref, kind, id, e2e, len);
	crypto_cleanse(pt, n);
	return r;
}

/* A chat of version 1 rules: the next ref in a session of version 2 (the
 * page asks for one there too), none in version 1. */
static uint32_t v1_ref(struct chats *c, struct peer *p)
{
	if (c->version < 2)
		return 0;
	if (p->next_ref == 0)
		p->next_ref = 1;
	return p->next_ref++;
}

static int send_e2e(struct chats *c, struct peer *p, const uint8_t *e2e,
		    size_t len, uint8_t kind, uint32_t id)
{
	return chats_send_sealed(c, p, v1_ref(c, p), e2e, len, kind, id);
}

struct chat *chats_chat_of(struct chats *c, struct peer *p)
{
	struct state_conv *sc;

	if (!p->conv)
		return &p->chat;
	sc = conv_of(c, p);
	return sc ? &sc->chat : NULL;
}

/* A local check failed: END the attempt, tell the user, forget the peer.
 * Never for a conversation: END would end it for good (conv.c drops a bad
 * message instead). */
static void fail_peer(struct chats *c, struct peer *p, const char *why)
{
	if (p->conv) {
		out_notice(c->out, "conversation with %s: %s (ignored)",
			   p->name, why);
		return;
	}
	send_peer_op(c, OP_END, p->name);
	kept_forget(c, p->name);
	out_notice(c->out, "chat with %s failed: %s", p->name, why);
	chats_emit(c, CEV_ENDED, p->name, CEV_END_FAILED);
	chats_peer_remove(c, p);
}

/* ---- key changes and known peers ---- */

static struct kchange **find_change(struct chats *c, const char *name)
{
	struct kchange **k;

	for (k = &c->changes; *k; k = &(*k)->next)
		if (strcmp((*k)->name, name) == 0)
			return k;
	return k;
}

/* Remember that name's key changed to fpr. */
static void note_change(struct chats *c, const char *name, const char *fpr)
{
	struct kchange **k = find_change(c, name);

	if (!*k) {
		*k = calloc(1, sizeof(**k));
		if (!*k)
			return;
		snprintf((*k)->name, sizeof((*k)->name), "%s", name);
	}
	snprintf((*k)->fpr, sizeof((*k)->fpr), "%s", fpr);
}

/* Record name's key as fpr in the known-peers file. */
int chats_record_key(struct chats *c, const char *name, const char *fpr)
{
	int r = kp_set(&c->kp, name, fpr);

	if (r == 0)
		r = kp_save(&c->kp, c->kp_path);
	return r;
}

enum key_verdict { KEY_BAD = -1, KEY_OK = 0, KEY_FIRST = 1, KEY_CHANGED = 2 };

/*
 * Check the peer_key of ACCEPT or CONFIRM against the known peers (§8).
 * On KEY_OK or KEY_FIRST, *key holds the parsed key and p->fpr its
 * fingerprint. On KEY_CHANGED the keychange event has been reported.
 */
enum kp_status chats_check_fpr(struct chats *c, const char *name,
			       const char *fpr)
{
	char old[FPR_HEX_LEN + 1];
	const char *recorded = NULL;
	enum kp_status st = kp_check(&c->kp, name, fpr, &recorded);
	struct cev ev = { .kind = CEV_KEYCHANGE, .peer = name, .s1 = old,
			  .s2 = fpr };

	if (st != KP_CHANGED)
		return st;
	snprintf(old, sizeof(old), "%s", recorded ? recorded : "");
	note_change(c, name, fpr);
	out_event(c->out, &ev);
	return st;
}

static enum key_verdict check_key(struct chats *c, struct peer *p,
				  const struct msg *m, sm_key **key)
{
	enum kp_status st;

	*key = NULL;
	if (m->peer_key_len == 0 || m->peer_key_len > PEER_KEY_MAX ||
	    key_from_spki(m->peer_key, m->peer_key_len, key) < 0)
		return KEY_BAD;
	fingerprint_hex(m->peer_key, m->peer_key_len, p->fpr);
	st = chats_check_fpr(c, p->name, p->fpr);
	if (st != KP_CHANGED)
		return st == KP_NEW ? KEY_FIRST : KEY_OK;
	key_unref(*key);
	*key = NULL;
	return KEY_CHANGED;
}

/* The key-change stop: end the attempt and forget it; nothing else is
 * sent. Version 2 says why (REFUSE 7: the peer is told its key is not the
 * one we know, END 6); version 1 can only END. */
static void stop_for_key_change(struct chats *c, struct peer *p)
{
	struct msg m = { .op = OP_REFUSE, .reason = REFUSE_KEY_UNKNOWN };

	snprintf(m.peer, sizeof(m.peer), "%s", p->name);
	if (c->version >= 2)
		send_msg(c, &m);
	else
		send_peer_op(c, OP_END, p->name);
	kept_forget(c, p->name);
	out_notice(c->out,
		   "%s's key has changed: nothing is sent to %s until you "
		   "check the new fingerprint and trust it",
		   p->name, p->name);
	chats_peer_remove(c, p);
}

/* The chat is up on this side: record a first key, tell the user (and
 * that it is a conversation, which the `chat` line alone does not say). */
static void established(struct chats *c, struct peer *p, bool first)
{
	struct cev ev = { .kind = CEV_CHAT, .peer = p->name, .s1 = p->fpr,
			  .flag = first };
	struct state_conv *sc;
	int r;

	p->state = PEER_ESTABLISHED;
	p->hello_wait = !chat_can_send(chats_chat_of(c, p));
	if (first && (r = chats_record_key(c, p->name, p->fpr)) < 0)
		out_notice(c->out, "cannot record %s's key in %s: %s",
			   p->name, c->kp_path, strerror(-r));
	out_event(c->out, &ev);
	if (p->conv && (sc = conv_of(c, p))) {
		ev = (struct cev){ .kind = CEV_CONV, .peer = p->name,
				   .when = sc->since, .flag = p->online };
		out_event(c->out, &ev);
	}
}

/* ---- creation ---- */

int chats_new(const char *self, sm_key *key, const char *kp_path,
	      struct cstore *store, chats_send_fn send, void *send_ctx,
	      struct front *out, struct chats **cp)
{
	struct chats *c = calloc(1, sizeof(*c));
	char warn[1024];
	int r;

	if (!c)
		return -ENOMEM;
	kp_init(&c->kp);
	snprintf(c->self, sizeof(c->self), "%s", self);
	c->kp_path = strdup(kp_path);
	c->key = key_ref(key);
	c->send = send;
	c->send_ctx = send_ctx;
	c->out = out;
	c->store = store;
	c->version = 1;
	c->connected = true;
	r = c->kp_path ? key_fingerprint_hex(key, c->self_fpr) : -ENOMEM;
	if (r == 0)
		r = kp_load(&c->kp, kp_path);
	if (r == 0 && kp_warning(&c->kp, kp_path, warn, sizeof(warn)) > 0)
		out_notice(out, "%s", warn);
	if (r < 0) {
		chats_free(c);
		return r;
	}
	*cp = c;
	return 0;
}

void chats_free(struct chats *c)
{
	struct peer *p, *pn;
	struct kchange *k, *kn;

	if (!c)
		return;
	for (p = c->peers; p; p = pn) {
		pn = p->next;
		peer_destroy(p);
	}
	for (k = c->changes; k; k = kn) {
		kn = k->next;
		free(k);
	}
	while (c->crossings)
		crossing_take(c, c->crossings->name);
	while (c->unsent) {
		struct unsent *u = c->unsent;

		c->unsent = u->next;
		free(u);
	}
	kp_free(&c->kp);
	free(c->kp_path);
	free(c->users);
	if (c->key)
		key_unref(c->key);
	free(c);
}

/* ---- user commands ---- */

int chats_list(struct chats *c)
{
	struct msg m = { .op = OP_LIST };

	return send_msg(c, &m);
}

int chats_quit(struct chats *c)
{
	struct msg m = { .op = OP_QUIT };
	struct peer *p;

	/* A's HELLO lives in memory only (the state file has no place for
	 * records to send again): say what quitting now costs. */
	for (p = c->peers; p; p = p->next)
		if (p->conv && p->hello && p->hello_refused)
			out_notice(c->out, "the conversation with %s was never "
				   "set up on %s's side (%s was offline); it "
				   "cannot be after you quit: end it and ask "
				   "again", p->name, p->name, p->name);
	conv_out_report(c);
	return send_msg(c, &m);
}

int chats_ping(struct chats *c)
{
	struct msg m = { .op = OP_PING, .cookie = ++c->ping_cookie };

	return send_msg(c, &m);
}

/* The key-change gate: -EPERM (and the user told) while one is pending. */
static int gate(struct chats *c, const char *peer)
{
	if (!*find_change(c, peer))
		return 0;
	out_error(c->out,
		  "%s's key has changed; check its fingerprint and use "
		  "trust %s first", peer, peer);
	return -EPERM;
}

/* Start the key exchange with p's user and send our RTT. */
static int send_rtt(struct chats *c, struct peer *p)
{
	struct msg m = { .op = OP_RTT };

	e2e_initiator_clear(&p->ini);
	if (e2e_initiator_start(&p->ini, c->self, p->name) != E2E_OK) {
		out_error(c->out, "cannot start a key exchange with %s",
			  p->name);
		return -EIO;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", p->name);
	memcpy(m.nonce, p->ini.nonce_a, sizeof(m.nonce));
	memcpy(m.share, p->ini.share_a, sizeof(m.share));
	/* Version 2: the server may answer in a later run of this client,
	 * so the exchange private is on disk before the RTT leaves. */
	if (kept_save_out(c, p) < 0)
		return -EIO;
	return send_msg(c, &m);
}

int chats_talk(struct chats *c, const char *peer)
{
	struct peer *p;
	int r = gate(c, peer);

	if (r < 0)
		return r;
	/* What the server would answer (REFUSE 4 or 5), without asking it
	 * (and without saying first that we asked). */
	if (strcmp(peer, c->self) == 0) {
		chats_emit(c, CEV_REFUSED, peer, REFUSE_SELF);
		return -EINVAL;
	}
	p = chats_peer_find(c, peer);
	if (p && p->state == PEER_IN_REQ && !p->conv) {
		accept_crossed(c, p);
		return 0;
	}
	if (p) {
		chats_emit(c, CEV_REFUSED, peer, REFUSE_EXISTS);
		return -EEXIST;
	}
	if ((p = kept_row(c, peer))) {
		out_info(c->out, p->state == PEER_OUT_REQ ?
			 "your request to %s still waits for an answer (/end "
			 "%s withdraws it)" : "you accepted %s's request; it "
			 "waits for %s to confirm", peer, peer);
		return 0;
	}
	crossing_take(c, peer); /* a request of ours replaces the wait */
	p = chats_peer_add(c, peer, PEER_OUT_REQ);
	if (!p)
		return -ENOMEM;
	r = send_rtt(c, p);
	if (r < 0)
		chats_peer_remove(c, p);
	else
		out_info(c->out, "asked %s to talk; waiting for an answer",
			 peer);
	return r;
}

/* The row of a request from peer, or NULL (and the user told). */
static struct peer *find_request(struct chats *c, const char *peer)
{
	struct peer *p = chats_peer_find(c, peer);

	if (!p || p->state != PEER_IN_REQ) {
		out_error(c->out, "no request from %s", peer);
		return NULL;
	}
	return p;
}

int chats_accept(struct chats *c, const char *peer)
{
	struct msg m = { .op = OP_ACCEPT };
	struct peer *p;
	enum e2e_result er;
	int r = gate(c, peer);

	if (r < 0)
		return r;
	if (!(p = find_request(c, peer)))
		return -ENOENT;
	er = e2e_responder_accept(&p->resp, c->self, peer, p->nonce_a,
				  p->share_a, c->key, m.nonce, m.share);
	if (er != E2E_OK) {
		fail_peer(c, p, e2e_result_str(er));
		return -EIO;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	m.sig = p->resp.sig_b;
	m.sig_len = p->resp.sig_b_len;
	/* Version 2: CONFIRM may come in a later run; the ACCEPT is on disk
	 * before it leaves (never a second one for the same request). */
	if (kept_save_accept(c, p, &m) < 0) {
		e2e_responder_clear(&p->resp);
		return -EIO;
	}
	/* The state first: CONFIRM may be the next record we read. */
	p->state = PEER_ACCEPTED;
	p->hello_wait = true;
	r = send_msg(c, &m);
	if (r < 0)
		chats_peer_remove(c, p);
	return r;
}

int chats_refuse(struct chats *c, const char *peer)
{
	struct msg m = { .op = OP_REFUSE, .reason = REFUSE_DECLINED };
	struct peer *p = find_request(c, peer);
	int r;

	if (!p)
		return -ENOENT;
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	chats_peer_remove(c, p);
	r = send_msg(c, &m);
	if (r == 0)
		out_info(c->out, "refused %s's request", peer);
	return r;
}

int chats_end(struct chats *c, const char *peer)
{
	struct peer *p = chats_peer_find(c, peer);
	int r;

	if (!p && kept_has(c, peer))
		p = kept_row(c, peer);	/* a request of an earlier run */
	if (!p) {
		out_error(c->out, "no chat or request with %s", peer);
		return -ENOENT;
	}
	if (p->conv)
		return conv_end(c, p);
	kept_forget(c, peer);
	r = send_peer_op(c, OP_END, peer);
	if (r == 0 && p->state == PEER_OUT_REQ)
		out_info(c->out, "withdrew your request to %s", peer);
	else if (r == 0 && p->state == PEER_IN_REQ)
		out_info(c->out, "refused %s's request", peer);
	else if (r == 0)
		out_info(c->out, "left the chat with %s", peer);
	chats_peer_remove(c, p);
	return r;
}

/* Seal and send one TEXT on a chat that may send; PEER_GONE when a
 * failure ended the chat (p is freed). */
static int send_text(struct chats *c, struct peer *p, const char *text,
		     size_t len)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);
	enum e2e_result er;
	uint32_t id;
	int r;

	if (p->conv)
		return conv_send_text(c, p, text, len);
	er = chat_seal_text(&p->chat, text, len, &id, out, &out_len);
	if (er != E2E_OK) {
		fail_peer(c, p, e2e_result_str(er));
		return PEER_GONE;
	}
	r = send_e2e(c, p, out, out_len, CHAT_TEXT, id);
	crypto_cleanse(out, sizeof(out));
	if (r == 0)
		chats_emit_id(c, CEV_SENT, p->name, id, text, len);
	return r;
}

/* B: keep text until A's HELLO arrives. */
static int hold_text(struct chats *c, struct peer *p, const char *text,
		     size_t len)
{
	struct held *h;

	if (p->nheld >= CHATS_HELD_MAX) {
		out_error(c->out, "too many messages waiting for %s", p->name);
		return -ENOBUFS;
	}
	h = malloc(sizeof(*h) + len);
	if (!h)
		return -ENOMEM;
	h->next = NULL;
	h->len = len;
	memcpy(h->text, text, len);
	if (p->held_tail)
		p->held_tail->next = h;
	else
		p->held = h;
	p->held_tail = h;
	p->nheld++;
	out_info(c->out, "(held until %s's client is ready)", p->name);
	return 0;
}

int chats_send(struct chats *c, const char *peer, const char *text,
	       size_t len)
{
	struct peer *p;
	int r = gate(c, peer);

	if (r < 0)
		return r;
	p = chats_peer_find(c, peer);
	/* Without a connection only a conversation takes text: it waits,
	 * typed, in the outbox (conv_send_text). */
	if (!c->connected && !(p && p->conv)) {
		out_error(c->out, "not connected to the server (reconnecting)");
		return -ENOTCONN;
	}
	if (!p) {
		out_error(c->out, "no chat with %s", peer);
		return -ENOENT;
	}
	if (len > CHAT_TEXT_MAX) {
		out_error(c->out, "message too long (at most %d bytes)",
			  CHAT_TEXT_MAX);
		return -EMSGSIZE;
	}
	if (p->state == PEER_ESTABLISHED && chat_can_send(chats_chat_of(c, p)))
		return send_text(c, p, text, len);
	if (p->state == PEER_ESTABLISHED || p->state == PEER_ACCEPTED)
		return hold_text(c, p, text, len);
	out_error(c->out, p->state == PEER_OUT_REQ ?
			  "%s has not accepted yet" :
			  "accept %s's request first", peer);
	return -EAGAIN;
}

int chats_trust(struct chats *c, const char *peer)
{
	struct kchange **k = find_change(c, peer), *dead = *k;
	int r;

	if (!dead) {
		out_error(c->out, "no key change to trust for %s", peer);
		return -ENOENT;
	}
	r = chats_record_key(c, peer, dead->fpr);
	*k = dead->next;
	free(dead);
	if (r < 0) {
		out_error(c->out, "cannot record %s's key in %s: %s", peer,
			  c->kp_path, strerror(-r));
		return r;
	}
	out_info(c->out, "%s's new key is now trusted", peer);
	return 0;
}

/* ---- records from the server ---- */

static void users_append(struct chats *c, const char *name)
{
	size_t n = strlen(name), need = c->users_len + n + 2;
	char *p;

	if (need > USERS_MAX)
		return;
	if (need > c->users_cap) {
		size_t cap = c->users_cap ? c->users_cap : 256;

		while (cap < need)
			cap *= 2;
		p = realloc(c->users, cap);
		if (!p)
			return;
		c->users = p;
		c->users_cap = cap;
	}
	if (c->users_len > 0)
		c->users[c->users_len++] = ',';
	memcpy(c->users + c->users_len, name, n);
	c->users_len += n;
	c->users[c->users_len] = '\0';
}

static void on_list(struct chats *c, const struct msg *m)
{
	char name[NAME_MAX_LEN + 1];
	struct cev ev = { 0 };
	size_t off = 0;
	int r;

	while ((r = msg_list_next(m, &off, name)) == 1)
		users_append(c, name);
	if (r < 0)
		out_notice(c->out, "malformed LIST reply from the server");
	if (!m->last)
		return;
	ev.s1 = c->users ? c->users : "";
	if (!c->logged_in) {
		ev.kind = CEV_READY;
		ev.peer = c->self;
		c->logged_in = true;
	} else {
		ev.kind = CEV_USERS;
	}
	out_event(c->out, &ev);
	c->users_len = 0;
	if (c->users)
		c->users[0] = '\0';
}

/* A request that came before: KEPT shows it again at every login till it
 * is answered; shown once. An ACCEPT this client kept but the server did
 * not (it never left, or the connection ended first) goes again. True
 * when m was such a request. */
static bool rtt_again(struct chats *c, struct peer *p, const struct msg *m,
		      uint64_t at)
{
	if (!kept_same_request(c, p, m))
		return false;
	if (p && p->state == PEER_IN_REQ) {
		p->kept = p->kept || at != 0;
		return true;
	}
	if (!p)
		p = kept_row(c, m->peer);
	if (p && p->state == PEER_ACCEPTED &&
	    kept_resend_accept(c, m->peer) == 0)
		out_info(c->out, "%s's request: your acceptance was sent again",
			 m->peer);
	return true;
}

/* RTT: a request from peer, live (at 0) or kept while we were away (at:
 * when it was sent). */
static void on_rtt(struct chats *c, const struct msg *m, uint64_t at)
{
	struct peer *p = chats_peer_find(c, m->peer);
	struct cev ev = { .kind = CEV_REQUEST, .peer = m->peer, .when = at };

	/* The server never relays an RTT between users who have a
	 * conversation (REFUSE 5): one that comes cannot replace it. */
	if (p && p->conv) {
		out_notice(c->out, "a request from %s was ignored: you have a "
			   "conversation with %s", m->peer, m->peer);
		return;
	}
	if (rtt_again(c, p, m, at))
		return;
	/* Our own request to the peer is out: the server refuses one of
	 * the two; theirs is kept till it answers ours (on_refuse). */
	if (p && p->state == PEER_OUT_REQ) {
		memcpy(p->nonce_a, m->nonce, sizeof(p->nonce_a));
		memcpy(p->share_a, m->share, sizeof(p->share_a));
		p->crossed = true;
		return;
	}
	/* The server is the judge of consent: a new RTT replaces old state
	 * (and an item kept for another request of the peer's). */
	if (p)
		chats_peer_remove(c, p);
	kept_forget(c, m->peer);
	p = chats_peer_add(c, m->peer, PEER_IN_REQ);
	if (!p)
		return;
	memcpy(p->nonce_a, m->nonce, sizeof(p->nonce_a));
	memcpy(p->share_a, m->share, sizeof(p->share_a));
	p->kept = at != 0;
	p->asked = at;
	if (crossing_take(c, m->peer))
		accept_crossed(c, p);
	else
		out_event(c->out, &ev);
}

static void send_hello(struct chats *c, struct peer *p)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);

	if (chat_seal_hello(&p->chat, out, &out_len) == E2E_OK)
		send_e2e(c, p, out, out_len, CHAT_HELLO, 0);
	crypto_cleanse(out, sizeof(out));
}

/* The peer's key for ACCEPT or CONFIRM; NULL when the attempt was stopped. */
static sm_key *take_key(struct chats *c, struct peer *p, const struct msg *m,
			enum key_verdict *kv)
{
	sm_key *pk;

	*kv = check_key(c, p, m, &pk);
	if (*kv == KEY_CHANGED)
		stop_for_key_change(c, p);
	else if (*kv == KEY_BAD)
		fail_peer(c, p, "the server sent an unusable key");
	return pk;
}

/* The exchange finished with er: its state is cleansed; on failure the
 * attempt ends (p is gone). */
static bool exchange_done(struct chats *c, struct peer *p, enum e2e_result er,
			  struct ratchet *r)
{
	if (er != E2E_OK) {
		ratchet_clear(r);
		fail_peer(c, p, e2e_result_str(er));
		return false;
	}
	e2e_initiator_clear(&p->ini);
	e2e_responder_clear(&p->resp);
	return true;
}

/* A chat of version 1 rules: the ratchet r becomes p's own chat. */
static void start_chat(struct peer *p, struct ratchet *r, bool initiator)
{
	chat_init(&p->chat, r, initiator);
	ratchet_clear(r);
	p->state = PEER_ESTABLISHED; /* chat_clear on removal from now on */
}

/* Does this ACCEPT or CONFIRM begin a conversation? The server says so
 * (flags bit 0, version 2 only); without a store it cannot be one. */
static bool persistent(const struct chats *c, const struct msg *m)
{
	return c->version >= 2 && c->store &&
	       (m->flags & MSG_FLAG_PERSISTENT);
}

/* A: the peer accepted. Check its key, CONFIRM, HELLO. */
static void on_accept(struct chats *c, struct peer *p, const struct msg *m)
{
	uint8_t sig_a[SIG_MAX_LEN];
	size_t sig_a_len = sizeof(sig_a);
	struct msg conf = { .op = OP_CONFIRM };
	struct ratchet r;
	enum key_verdict kv;
	enum e2e_result er;
	sm_key *pk = take_key(c, p, m, &kv);

	if (!pk)
		return;
	er = e2e_initiator_finish(&p->ini, m->nonce, m->share, m->sig,
				  m->sig_len, pk, c->key, sig_a, &sig_a_len,
				  &r);
	key_unref(pk);
	if (!exchange_done(c, p, er, &r))
		return;
	if (!persistent(c, m))	/* a chat of version 1 rules: no item */
		kept_forget(c, p->name);
	snprintf(conf.peer, sizeof(conf.peer), "%s", p->name);
	conf.sig = sig_a;
	conf.sig_len = sig_a_len;
	if (persistent(c, m)) {
		if (conv_start_initiator(c, p, &r, &conf))
			established(c, p, kv == KEY_FIRST);
		return;
	}
	start_chat(p, &r, true);
	/* CONFIRM before HELLO: the server relays MESSAGE only in a chat. */
	if (send_msg(c, &conf) < 0)
		return;
	send_hello(c, p);
	established(c, p, kv == KEY_FIRST);
}

/* B: A confirmed. Check its key and signature. */
static void on_confirm(struct chats *c, struct peer *p, const struct msg *m)
{
	struct ratchet r;
	enum key_verdict kv;
	enum e2e_result er;
	sm_key *pk = take_key(c, p, m, &kv);

	if (!pk)
		return;
	er = e2e_responder_finish(&p->resp, m->sig, m->sig_len, pk, &r);
	key_unref(pk);
	if (!exchange_done(c, p, er, &r))
		return;
	if (!persistent(c, m))	/* a chat of version 1 rules: no item */
		kept_forget(c, p->name);
	if (persistent(c, m)) {
		if (conv_start_responder(c, p, &r))
			established(c, p, kv == KEY_FIRST);
		return;
	}
	start_chat(p, &r, false);
	established(c, p, kv == KEY_FIRST);
}

/* B: HELLO arrived; send what the user typed meanwhile, in order. */
void chats_flush_held(struct chats *c, struct peer *p)
{
	struct held *h = p->held, *next;
	unsigned lost = 0;

	p->hello_wait = false;
	p->held = p->held_tail = NULL;
	p->nheld = 0;
	for (; h; h = next) {
		next = h->next;
		if (lost || send_text(c, p, h->text, h->len) == PEER_GONE)
			lost++;
		crypto_cleanse(h->text, h->len);
		free(h);
	}
	if (lost > 1)
		out_notice(c->out, "%u message(s) were never sent", lost - 1);
}

/* A chat of version 1 rules: what an accepted message asks for. */
static void on_chat_event(struct chats *c, struct peer *p,
			  const struct chat_message *ev)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);

	switch (ev->kind) {
	case CHAT_HELLO:
		chats_flush_held(c, p);
		break;
	case CHAT_TEXT:
		chats_emit_id(c, CEV_MSG, p->name, ev->id,
			      (const char *)ev->text, ev->text_len);
		if (chat_seal_receipt(&p->chat, ev->id, out, &out_len) ==
		    E2E_OK)
			send_e2e(c, p, out, out_len, CHAT_RECEIPT, ev->id);
		crypto_cleanse(out, sizeof(out));
		break;
	case CHAT_RECEIPT:
		if (ev->id != 0)
			chats_emit_id(c, CEV_DELIVERED, p->name, ev->id, NULL,
				      0);
		break;
	default:
		break;
	}
}

static void on_message(struct chats *c, struct peer *p, const struct msg *m)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	enum e2e_result er;

	if (p->conv) {
		conv_on_message(c, p, m);
		return;
	}
	er = chat_open(&p->chat, m->e2e, m->e2e_len, pt, &ev);
	if (er != E2E_OK)
		fail_peer(c, p, e2e_result_str(er));
	else
		on_chat_event(c, p, &ev);
	crypto_cleanse(pt, sizeof(pt));
}

/* ---- crossed requests ---- */

/* How long the peer's request is awaited once both were refused. */
#define CROSS_WAIT_MS 10000

static void crossing_add(struct chats *c, const char *peer)
{
	struct crossing *x = calloc(1, sizeof(*x));

	if (!x)
		return;
	snprintf(x->name, sizeof(x->name), "%s", peer);
	x->until_ms = mono_ms() + CROSS_WAIT_MS;
	x->next = c->crossings;
	c->crossings = x;
}

/* Forget peer's awaited request: true when it was awaited still. */
static bool crossing_take(struct chats *c, const char *peer)
{
	struct crossing **x, *dead;
	bool live;

	for (x = &c->crossings; *x; x = &(*x)->next)
		if (strcmp((*x)->name, peer) == 0)
			break;
	if (!(dead = *x))
		return false;
	live = mono_ms() < dead->until_ms;
	*x = dead->next;
	free(dead);
	return live;
}

/* Both users asked: ours asked to talk to p's user, which is the consent
 * its request needs, so it is accepted without asking again. */
static void accept_crossed(struct chats *c, struct peer *p)
{
	out_info(c->out, "%s asked you to talk too: accepting %s's request",
		 p->name, p->name);
	chats_accept(c, p->name);
}

/*
 * REFUSE 5 to our request p (daemon: the peer's request stands, or the two
 * crossed and neither does). Their RTT in: accept it. Neither: the user
 * whose name sorts first asks once more and the other awaits that RTT, so
 * two clients of this kind end in one chat. False when it was no crossing.
 */
static bool on_crossed(struct chats *c, struct peer *p)
{
	if (p->crossed) {
		e2e_initiator_clear(&p->ini);
		p->crossed = false;
		p->state = PEER_IN_REQ;
		accept_crossed(c, p);
		return true;
	}
	if (p->retried)
		return false;
	if (strcmp(c->self, p->name) < 0) {
		p->retried = true;
		if (send_rtt(c, p) < 0)
			chats_peer_remove(c, p);
		else
			out_info(c->out, "%s asked you to talk at the same "
				 "moment; asking %s again", p->name, p->name);
		return true;
	}
	crossing_add(c, p->name);
	out_info(c->out, "%s asked you to talk at the same moment; waiting "
		 "for %s's request (if none comes, /talk %s again)", p->name,
		 p->name, p->name);
	chats_peer_remove(c, p);
	return true;
}

static void on_refuse(struct chats *c, const struct msg *m)
{
	struct peer *p = chats_peer_find(c, m->peer);

	if (p && p->state == PEER_OUT_REQ && m->reason == REFUSE_EXISTS &&
	    !p->conv && on_crossed(c, p))
		return;
	kept_forget(c, m->peer);
	chats_emit(c, CEV_REFUSED, m->peer, m->reason);
	if (p && p->state == PEER_OUT_REQ)
		chats_peer_remove(c, p);
}

/* END; kept: it was kept for us while we were away (KEPT), so it is
 * said even when this run of the client holds no row for the request. */
static void on_end(struct chats *c, const struct msg *m, bool kept)
{
	struct peer *p;
	bool item;

	if (conv_on_end(c, m))
		return;
	item = kept_has(c, m->peer);
	kept_forget(c, m->peer);
	if (!(p = chats_peer_find(c, m->peer))) {
		if (kept || item)
			chats_emit(c, CEV_ENDED, m->peer, m->reason);
		return; /* else we already left it */
	}
	chats_emit(c, CEV_ENDED, m->peer, m->reason);
	chats_peer_remove(c, p);
}

/* ACCEPT, CONFIRM and MESSAGE: records for one peer in a given state. */
static void on_peer_record(struct chats *c, const struct msg *m, bool kept)
{
	struct peer *p = chats_peer_find(c, m->peer);
	static const enum peer_state want[] = {
		[OP_ACCEPT] = PEER_OUT_REQ,
		[OP_CONFIRM] = PEER_ACCEPTED,
		[OP_MESSAGE] = PEER_ESTABLISHED,
	};

	/* The answer to a request of an earlier run (or connection). */
	if (!p && m->op != OP_MESSAGE)
		p = kept_row(c, m->peer);
	if (!p && kept && m->op == OP_ACCEPT) {
		/* Kept for us every login till we answer: end it, we cannot
		 * finish it (its exchange private is gone). */
		send_peer_op(c, OP_END, m->peer);
		out_notice(c->out, "%s accepted a request this client no "
			   "longer holds: it was ended", m->peer);
		return;
	}
	if (!p)
		out_notice(c->out, "ignored %s from %s: you have no %s with "
			   "%s", m->op == OP_ACCEPT ? "an acceptance" :
			   m->op == OP_CONFIRM ? "a confirmation" : "a message",
			   m->peer, m->op == OP_MESSAGE ? "chat" : "request",
			   m->peer);
	else if (p->state != want[m->op])
		fail_peer(c, p, "a record arrived out of order");
	else if (m->op == OP_ACCEPT)
		on_accept(c, p, m);
	else if (m->op == OP_CONFIRM)
		on_confirm(c, p, m);
	else
		on_message(c, p, m);
}

static void on_text_event(struct chats *c, enum cev_kind kind,
			  const struct msg *m)
{
	struct cev ev = { .kind = kind, .code = m->code, .reason = m->reason,
			  .text = (const char *)m->text,
			  .text_len = m->text_len };

	out_event(c->out, &ev);
}

/* ERROR, with the command it answers when version 2 names its record. */
static void on_error(struct chats *c, const struct msg *m)
{
	char cmd[ANSWER_CMD_MAX] = "";
	struct cev ev = { .kind = CEV_ERROR, .code = m->code, .cmd = cmd,
			  .text = (const char *)m->text,
			  .text_len = m->text_len };

	if (c->version >= 2)
		answers_error(&c->answers, m,
			      conv_text_id(c, m->peer, m->ref), cmd);
	out_event(c->out, &ev);
}

/*
 * A record that does not decode. An ACCEPT, CONFIRM or MESSAGE still names
 * its peer in its first field: that attempt or chat cannot go on (a
 * peer_key over 2048 bytes, say: §5 says the attempt fails), so it ends
 * now instead of staying pending until the request expires. A
 * conversation's message is dropped: nothing but END ends a conversation.
 */
static void on_malformed(struct chats *c, const uint8_t *pt, size_t len)
{
	char name[NAME_MAX_LEN + 1];
	struct peer *p = NULL;
	struct reader r;
	uint8_t op = pt[0];

	if (op == OP_ACCEPT || op == OP_CONFIRM || op == OP_MESSAGE) {
		rd_init(&r, pt + 1, len - 1);
		rd_name(&r, name);
		if (!rd_error(&r))
			p = chats_peer_find(c, name);
	}
	if (p && p->conv) {
		out_notice(c->out, "a malformed %s from %s was dropped",
			   opcode_name(op), p->name);
		chats_emit(c, CEV_DROPPED, p->name, E2E_ERR_MALFORMED);
	} else if (p) {
		fail_peer(c, p, op == OP_MESSAGE ?
			  "the server sent a malformed MESSAGE" :
			  "the server sent a malformed ACCEPT or CONFIRM");
	} else {
		out_notice(c->out, "a malformed %s record from the server "
			   "was ignored", opcode_name(op));
	}
}

/* KEPT: a record kept for us while we were away; its fields are m's. */
static void on_kept(struct chats *c, const struct msg *m)
{
	struct msg in = *m;

	in.op = m->rec_op;
	c->kept_in = true;
	switch (in.op) {
	case OP_RTT:
		on_rtt(c, &in, m->at);
		break;
	case OP_ACCEPT:
	case OP_CONFIRM:
		on_peer_record(c, &in, true);
		break;
	case OP_REFUSE:
		on_refuse(c, &in);
		break;
	case OP_END:
		on_end(c, &in, true);
		break;
	default:
		break;	/* the decoder allows no other */
	}
	c->kept_in = false;
}

static int dispatch(struct chats *c, const struct msg *m)
{
	struct msg pong = { .op = OP_PONG, .cookie = m->cookie };

	switch (m->op) {
	case OP_LIST:
		on_list(c, m);
		break;
	case OP_RTT:
		on_rtt(c, m, 0);
		break;
	case OP_ACCEPT:
	case OP_CONFIRM:
	case OP_MESSAGE:
		on_peer_record(c, m, false);
		break;
	case OP_REFUSE:
		on_refuse(c, m);
		break;
	case OP_END:
		on_end(c, m, false);
		break;
	case OP_WAITING:
		kept_on_waiting(c, m);
		break;
	case OP_KEPT:
		on_kept(c, m);
		break;
	case OP_ERROR:
		on_error(c, m);
		conv_on_error(c, m);
		break;
	case OP_BYE:
		c->bye = m->reason;
		on_text_event(c, CEV_BYE, m);
		return 1;
	case OP_PING:
		send_msg(c, &pong);
		break;
	case OP_CONVERSATIONS:
		conv_on_conversations(c, m);
		break;
	case OP_PRESENCE:
		conv_on_presence(c, m);
		break;
	case OP_STORED:
		conv_on_stored(c, m);
		break;
	case OP_QUEUED:
		conv_on_queued(c, m);
		break;
	case OP_EXPIRED:
		conv_on_expired(c, m);
		break;
	default:
		break; /* PONG, and anything else the server should not send */
	}
	return 0;
}

int chats_receive(struct chats *c, const uint8_t *pt, size_t len)
{
	struct msg m;

	if (len == 0)
		return 0;
	if (msg_decode_s2c_v(pt, len, c->version, &m) < 0) {
		on_malformed(c, pt, len);
		return 0;
	}
	return dispatch(c, &m);
}

int chats_ack(struct chats *c)
{
	struct msg m = { .op = OP_ACK };

	if (c->version < 2 || !c->connected || c->dirty ||
	    c->ack_due <= c->acked)
		return 0;
	m.seq = c->ack_due;
	c->acked = c->ack_due;
	return chats_send_msg(c, &m, false);
}

bool chats_logged_in(const struct chats *c)
{
	return c->logged_in && (c->version < 2 || c->convs_in);
}

unsigned chats_bye(const struct chats *c)
{
	return c->bye;
}

void chats_session(struct chats *c, unsigned version)
{
	c->bye = 0;
	c->version = version;
	c->connected = true;
	c->logged_in = false;
	c->convs_in = false;
	c->convs_reading = false;
	c->queued_seen = c->ack_due = c->acked = 0;
	c->users_len = 0;
	if (c->users)
		c->users[0] = '\0';
}

void chats_disconnected(struct chats *c)
{
	struct peer *p, *next;

	c->connected = false;
	c->bye = 0;	/* read by now: the next attempt starts clean */
	for (p = c->peers; p; p = next) {
		next = p->next;
		if (p->conv) {
			p->online = false;
			continue;
		}
		if (p->kept && p->state != PEER_ESTABLISHED)
			continue;	/* the server keeps the request */
		chats_emit(c, CEV_ENDED, p->name, CEV_END_OURS);
		chats_peer_remove(c, p);
	}
}

bool chats_connected(const struct chats *c)
{
	return c->connected;
}

/* ---- queries ---- */

int chats_state(const struct chats *c, const char *peer)
{
	const struct peer *p = chats_peer_find(c, peer);

	return p ? (int)p->state : -ENOENT;
}

size_t chats_snapshot(const struct chats *c, struct chats_row *v,
		      size_t max)
{
	const struct peer *p;
	const struct kchange *k;
	size_t n = 0;

	for (p = c->peers; p; p = p->next, n++) {
		if (n >= max)
			continue;
		v[n] = (struct chats_row){ .state = p->state,
					   .waiting_hello = p->hello_wait,
					   .conv = p->conv,
					   .online = p->online };
		if (p->conv && conv_of(c, p))
			v[n].since = conv_of(c, p)->since;
		memcpy(v[n].name, p->name, sizeof(v[n].name));
	}
	for (k = c->changes; k; k = k->next, n++) {
		if (n >= max)
			continue;
		v[n] = (struct chats_row){ .key_changed = true };
		memcpy(v[n].name, k->name, sizeof(v[n].name));
	}
	return n;
}

int chats_known_fpr(const struct chats *c, const char *peer,
		    char out[FPR_HEX_LEN + 1])
{
	const char *f = kp_get(&c->kp, peer);

	if (!f)
		return -ENOENT;
	snprintf(out, FPR_HEX_LEN + 1, "%s", f);
	return 0;
}

int chats_changed_fpr(const struct chats *c, const char *peer,
		      char out[FPR_HEX_LEN + 1])
{
	const struct kchange *k;

	for (k = c->changes; k; k = k->next)
		if (strcmp(k->name, peer) == 0) {
			snprintf(out, FPR_HEX_LEN + 1, "%s", k->fpr);
			return 0;
		}
	return -ENOENT;
}

void chats_self_fpr(const struct chats *c, char out[FPR_HEX_LEN + 1])
{
	memcpy(out, c->self_fpr, FPR_HEX_LEN + 1);
}
