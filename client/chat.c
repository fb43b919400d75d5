/* chat.c - per-peer state, the e2e exchange, the ratchet and known peers. */
#include "chat.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "knownpeers.h"

/* A TEXT B holds until A's HELLO arrives. */
struct held {
	struct held *next;
	size_t len;
	char text[];
};

struct peer {
	struct peer *next;
	pthread_mutex_t mu;	/* e2e state, ratchet, held texts */
	unsigned refs;		/* under the table mutex */
	bool dead;		/* removed from the table (under mu) */
	char name[NAME_MAX_LEN + 1];
	enum cchat_state state;	/* written under mu and the table mutex */
	bool hello_wait;	/* likewise */
	struct e2e_initiator ini;	/* CCHAT_OUT_REQ */
	uint8_t nonce_a[E2E_NONCE_LEN];	/* CCHAT_IN_REQ */
	uint8_t share_a[X25519_LEN];
	struct e2e_responder resp;	/* CCHAT_ACCEPTED */
	struct chat chat;		/* CCHAT_ESTABLISHED */
	char fpr[FPR_HEX_LEN + 1];
	struct held *held, *held_tail;
	unsigned nheld;
};

/* A key change that waits for `trust`. */
struct kchange {
	struct kchange *next;
	char name[NAME_MAX_LEN + 1];
	char fpr[FPR_HEX_LEN + 1];
};

struct cchat {
	pthread_mutex_t mu;	/* the table */
	struct peer *peers;
	struct kchange *changes;
	struct known_peers kp;
	char *kp_path;
	char current[NAME_MAX_LEN + 1];
	unsigned gen;
	char self[NAME_MAX_LEN + 1];
	char self_fpr[FPR_HEX_LEN + 1];
	sm_key *key;
	cchat_send_fn send;
	void *send_ctx;
	struct cout *out;
	/* The receive thread's alone: */
	char *users;
	size_t users_len, users_cap;
	bool logged_in;
};

/* Longest list of names we merge from a multi-record LIST reply. */
#define USERS_MAX (8u << 20)

/* ---- events ---- */

static void emit(struct cchat *c, enum cev_kind kind, const char *peer,
		 unsigned reason)
{
	struct cev ev = { .kind = kind, .peer = peer, .reason = reason };

	cout_event(c->out, &ev);
}

static void emit_id(struct cchat *c, enum cev_kind kind, const char *peer,
		    uint32_t id, const char *text, size_t len)
{
	struct cev ev = { .kind = kind, .peer = peer, .id = id,
			  .text = text, .text_len = len };

	cout_event(c->out, &ev);
}

/* ---- the peer table ---- */

static struct peer *find_locked(struct cchat *c, const char *name)
{
	struct peer *p;

	for (p = c->peers; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void peer_destroy(struct peer *p)
{
	pthread_mutex_destroy(&p->mu);
	crypto_cleanse(p, sizeof(*p));
	free(p);
}

/* Drop a reference taken by peer_get or peer_create. */
static void peer_put(struct cchat *c, struct peer *p)
{
	bool last;

	pthread_mutex_lock(&c->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (last)
		peer_destroy(p);
}

/* Find name and lock it; NULL if there is no live peer of that name. */
static struct peer *peer_get(struct cchat *c, const char *name)
{
	struct peer *p;

	pthread_mutex_lock(&c->mu);
	p = find_locked(c, name);
	if (p)
		p->refs++;
	pthread_mutex_unlock(&c->mu);
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->mu);
	if (p->dead) {
		pthread_mutex_unlock(&p->mu);
		peer_put(c, p);
		return NULL;
	}
	return p;
}

/* Unlock and release a peer from peer_get or peer_create. */
static void peer_release(struct cchat *c, struct peer *p)
{
	pthread_mutex_unlock(&p->mu);
	peer_put(c, p);
}

static void set_state(struct cchat *c, struct peer *p, enum cchat_state st,
		      bool hello_wait)
{
	pthread_mutex_lock(&c->mu);
	p->state = st;
	p->hello_wait = hello_wait;
	pthread_mutex_unlock(&c->mu);
}

/*
 * Make a new peer in state st, locked and referenced; -EEXIST if the name
 * is taken. It is locked before it is linked, so nobody can wait on it.
 */
static int peer_create(struct cchat *c, const char *name,
		       enum cchat_state st, struct peer **out)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_lock(&p->mu);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->state = st;
	p->refs = 2; /* the table's and the caller's */
	pthread_mutex_lock(&c->mu);
	if (find_locked(c, name)) {
		pthread_mutex_unlock(&c->mu);
		pthread_mutex_unlock(&p->mu);
		peer_destroy(p);
		return -EEXIST;
	}
	p->next = c->peers;
	c->peers = p;
	pthread_mutex_unlock(&c->mu);
	*out = p;
	return 0;
}

static void free_held(struct peer *p)
{
	struct held *h, *next;

	for (h = p->held; h; h = next) {
		next = h->next;
		crypto_cleanse(h->text, h->len);
		free(h);
	}
	p->held = p->held_tail = NULL;
	p->nheld = 0;
}

/* Forget a locked peer: cleanse its state and unlink it. */
static void peer_remove(struct cchat *c, struct peer *p)
{
	struct peer **pp;

	e2e_initiator_clear(&p->ini);
	e2e_responder_clear(&p->resp);
	if (p->state == CCHAT_ESTABLISHED)
		chat_clear(&p->chat);
	crypto_cleanse(p->nonce_a, sizeof(p->nonce_a));
	crypto_cleanse(p->share_a, sizeof(p->share_a));
	if (p->nheld > 0)
		cout_notice(c->out, "%u message(s) to %s were never sent",
			    p->nheld, p->name);
	free_held(p);
	p->dead = true;
	pthread_mutex_lock(&c->mu);
	for (pp = &c->peers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			p->refs--;
			break;
		}
	}
	if (strcmp(c->current, p->name) == 0) {
		c->current[0] = '\0';
		c->gen++;
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- sending ---- */

static int send_msg(struct cchat *c, const struct msg *m)
{
	return c->send(c->send_ctx, m);
}

static int send_peer_op(struct cchat *c, uint8_t op, const char *peer)
{
	struct msg m = { .op = op };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return send_msg(c, &m);
}

static int send_e2e(struct cchat *c, const char *peer, const uint8_t *e2e,
		    size_t len)
{
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = len };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return send_msg(c, &m);
}

/* A local check failed: END the attempt, tell the user, forget the peer. */
static void fail_peer(struct cchat *c, struct peer *p, const char *why)
{
	send_peer_op(c, OP_END, p->name);
	cout_notice(c->out, "chat with %s failed: %s", p->name, why);
	emit(c, CEV_ENDED, p->name, CEV_END_FAILED);
	peer_remove(c, p);
}

/* ---- key changes and known peers ---- */

static struct kchange **find_change(struct cchat *c, const char *name)
{
	struct kchange **k;

	for (k = &c->changes; *k; k = &(*k)->next)
		if (strcmp((*k)->name, name) == 0)
			return k;
	return k;
}

static bool change_pending(struct cchat *c, const char *name)
{
	bool pending;

	pthread_mutex_lock(&c->mu);
	pending = *find_change(c, name) != NULL;
	pthread_mutex_unlock(&c->mu);
	return pending;
}

/* Remember that name's key changed to fpr (under the table mutex). */
static void note_change(struct cchat *c, const char *name, const char *fpr)
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

static void record_key(struct cchat *c, const char *name, const char *fpr)
{
	int r;

	pthread_mutex_lock(&c->mu);
	r = kp_set(&c->kp, name, fpr);
	if (r == 0)
		r = kp_save(&c->kp, c->kp_path);
	pthread_mutex_unlock(&c->mu);
	if (r < 0)
		cout_notice(c->out, "cannot record %s's key in %s: %s", name,
			    c->kp_path, strerror(-r));
}

enum key_verdict { KEY_BAD = -1, KEY_OK = 0, KEY_FIRST = 1, KEY_CHANGED = 2 };

/*
 * Check the peer_key of ACCEPT or CONFIRM against the known peers (§8).
 * On KEY_OK or KEY_FIRST, *key holds the parsed key and p->fpr its
 * fingerprint. On KEY_CHANGED the keychange event has been reported.
 */
static enum key_verdict check_key(struct cchat *c, struct peer *p,
				  const struct msg *m, sm_key **key)
{
	char old[FPR_HEX_LEN + 1];
	const char *recorded = NULL;
	enum kp_status st;
	struct cev ev = { .kind = CEV_KEYCHANGE, .peer = p->name };

	*key = NULL;
	if (m->peer_key_len == 0 || m->peer_key_len > PEER_KEY_MAX ||
	    key_from_spki(m->peer_key, m->peer_key_len, key) < 0)
		return KEY_BAD;
	fingerprint_hex(m->peer_key, m->peer_key_len, p->fpr);
	pthread_mutex_lock(&c->mu);
	st = kp_check(&c->kp, p->name, p->fpr, &recorded);
	if (st == KP_CHANGED) {
		snprintf(old, sizeof(old), "%s", recorded ? recorded : "");
		note_change(c, p->name, p->fpr);
	}
	pthread_mutex_unlock(&c->mu);
	if (st != KP_CHANGED)
		return st == KP_NEW ? KEY_FIRST : KEY_OK;
	key_unref(*key);
	*key = NULL;
	ev.s1 = old;
	ev.s2 = p->fpr;
	cout_event(c->out, &ev);
	return KEY_CHANGED;
}

/* The key-change stop: END the attempt and forget it; nothing else is sent. */
static void stop_for_key_change(struct cchat *c, struct peer *p)
{
	send_peer_op(c, OP_END, p->name);
	cout_notice(c->out,
		    "%s's key has changed: nothing is sent to %s until you "
		    "check the new fingerprint and trust it",
		    p->name, p->name);
	peer_remove(c, p);
}

/* The chat is up on this side: tell the user, maybe make it current. */
static void established(struct cchat *c, struct peer *p, bool first)
{
	struct cev ev = { .kind = CEV_CHAT, .peer = p->name, .s1 = p->fpr,
			  .flag = first };

	pthread_mutex_lock(&c->mu);
	p->state = CCHAT_ESTABLISHED;
	p->hello_wait = !chat_can_send(&p->chat);
	if (c->current[0] == '\0') {
		snprintf(c->current, sizeof(c->current), "%s", p->name);
		c->gen++;
	}
	pthread_mutex_unlock(&c->mu);
	if (first)
		record_key(c, p->name, p->fpr);
	cout_event(c->out, &ev);
}

/* ---- creation ---- */

int cchat_new(const char *self, sm_key *key, const char *kp_path,
	      cchat_send_fn send, void *send_ctx, struct cout *out,
	      struct cchat **cp)
{
	struct cchat *c = calloc(1, sizeof(*c));
	char warn[1024];
	int r;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	kp_init(&c->kp);
	snprintf(c->self, sizeof(c->self), "%s", self);
	c->kp_path = strdup(kp_path);
	c->key = key_ref(key);
	c->send = send;
	c->send_ctx = send_ctx;
	c->out = out;
	r = c->kp_path ? key_fingerprint_hex(key, c->self_fpr) : -ENOMEM;
	if (r == 0)
		r = kp_load(&c->kp, kp_path);
	if (r == 0 && kp_warning(&c->kp, kp_path, warn, sizeof(warn)) > 0)
		cout_notice(out, "%s", warn);
	if (r < 0) {
		cchat_free(c);
		return r;
	}
	*cp = c;
	return 0;
}

void cchat_free(struct cchat *c)
{
	struct peer *p, *pn;
	struct kchange *k, *kn;

	if (!c)
		return;
	for (p = c->peers; p; p = pn) {
		pn = p->next;
		pthread_mutex_lock(&p->mu);
		e2e_initiator_clear(&p->ini);
		e2e_responder_clear(&p->resp);
		if (p->state == CCHAT_ESTABLISHED)
			chat_clear(&p->chat);
		free_held(p);
		pthread_mutex_unlock(&p->mu);
		peer_destroy(p);
	}
	for (k = c->changes; k; k = kn) {
		kn = k->next;
		free(k);
	}
	kp_free(&c->kp);
	free(c->kp_path);
	free(c->users);
	if (c->key)
		key_unref(c->key);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- user commands ---- */

int cchat_list(struct cchat *c)
{
	struct msg m = { .op = OP_LIST };

	return send_msg(c, &m);
}

int cchat_quit(struct cchat *c)
{
	struct msg m = { .op = OP_QUIT };

	return send_msg(c, &m);
}

static int refuse_changed(struct cchat *c, const char *peer)
{
	cout_error(c->out,
		   "%s's key has changed; check its fingerprint and use "
		   "trust %s first", peer, peer);
	return -EPERM;
}

int cchat_talk(struct cchat *c, const char *peer)
{
	struct msg m = { .op = OP_RTT };
	struct peer *p;
	int r;

	if (change_pending(c, peer))
		return refuse_changed(c, peer);
	r = peer_create(c, peer, CCHAT_OUT_REQ, &p);
	if (r == -EEXIST) {
		cout_error(c->out, "a chat or request with %s already exists",
			   peer);
		return r;
	}
	if (r < 0)
		return r;
	if (e2e_initiator_start(&p->ini, c->self, peer) != E2E_OK) {
		cout_error(c->out, "cannot start a key exchange with %s", peer);
		peer_remove(c, p);
		peer_release(c, p);
		return -EIO;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	memcpy(m.nonce, p->ini.nonce_a, sizeof(m.nonce));
	memcpy(m.share, p->ini.share_a, sizeof(m.share));
	r = send_msg(c, &m);
	if (r < 0)
		peer_remove(c, p);
	else
		cout_info(c->out, "asked %s to talk; waiting for an answer",
			  peer);
	peer_release(c, p);
	return r;
}

static int no_request(struct cchat *c, const char *peer)
{
	cout_error(c->out, "no request from %s", peer);
	return -ENOENT;
}

int cchat_accept(struct cchat *c, const char *peer)
{
	struct msg m = { .op = OP_ACCEPT };
	struct peer *p;
	enum e2e_result er;
	int r;

	if (change_pending(c, peer))
		return refuse_changed(c, peer);
	p = peer_get(c, peer);
	if (!p)
		return no_request(c, peer);
	if (p->state != CCHAT_IN_REQ) {
		peer_release(c, p);
		return no_request(c, peer);
	}
	er = e2e_responder_accept(&p->resp, c->self, peer, p->nonce_a,
				  p->share_a, c->key, m.nonce, m.share);
	if (er != E2E_OK) {
		fail_peer(c, p, e2e_result_str(er));
		peer_release(c, p);
		return -EIO;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	m.sig = p->resp.sig_b;
	m.sig_len = p->resp.sig_b_len;
	r = send_msg(c, &m);
	if (r < 0)
		peer_remove(c, p);
	else
		set_state(c, p, CCHAT_ACCEPTED, true);
	peer_release(c, p);
	return r;
}

int cchat_refuse(struct cchat *c, const char *peer)
{
	struct msg m = { .op = OP_REFUSE, .reason = REFUSE_DECLINED };
	struct peer *p = peer_get(c, peer);
	int r;

	if (!p)
		return no_request(c, peer);
	if (p->state != CCHAT_IN_REQ) {
		peer_release(c, p);
		return no_request(c, peer);
	}
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	r = send_msg(c, &m);
	peer_remove(c, p);
	peer_release(c, p);
	return r;
}

int cchat_end(struct cchat *c, const char *peer)
{
	struct peer *p = peer_get(c, peer);
	int r;

	if (!p) {
		cout_error(c->out, "no chat or request with %s", peer);
		return -ENOENT;
	}
	r = send_peer_op(c, OP_END, peer);
	peer_remove(c, p);
	peer_release(c, p);
	if (r == 0)
		cout_info(c->out, "left %s", peer);
	return r;
}

/* Seal and send one TEXT on an established chat that may send (p locked). */
static int send_text_locked(struct cchat *c, struct peer *p, const char *text,
			    size_t len)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);
	enum e2e_result er;
	uint32_t id;
	int r;

	er = chat_seal_text(&p->chat, text, len, &id, out, &out_len);
	if (er != E2E_OK) {
		fail_peer(c, p, e2e_result_str(er));
		return -EIO;
	}
	r = send_e2e(c, p->name, out, out_len);
	crypto_cleanse(out, sizeof(out));
	if (r == 0)
		emit_id(c, CEV_SENT, p->name, id, text, len);
	return r;
}

/* B: keep text until A's HELLO arrives (p locked). */
static int hold_text(struct cchat *c, struct peer *p, const char *text,
		     size_t len)
{
	struct held *h;

	if (p->nheld >= CCHAT_QUEUE_MAX) {
		cout_error(c->out, "too many messages waiting for %s", p->name);
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
	cout_info(c->out, "(held until %s's client is ready)", p->name);
	return 0;
}

int cchat_send(struct cchat *c, const char *peer, const char *text,
	       size_t len)
{
	struct peer *p = peer_get(c, peer);
	int r;

	if (!p) {
		cout_error(c->out, "no chat with %s", peer);
		return -ENOENT;
	}
	if (len > CHAT_TEXT_MAX) {
		cout_error(c->out, "message too long (at most %d bytes)",
			   CHAT_TEXT_MAX);
		r = -EMSGSIZE;
	} else if (p->state == CCHAT_ESTABLISHED && chat_can_send(&p->chat)) {
		r = send_text_locked(c, p, text, len);
	} else if (p->state == CCHAT_ESTABLISHED ||
		   p->state == CCHAT_ACCEPTED) {
		r = hold_text(c, p, text, len);
	} else {
		cout_error(c->out, p->state == CCHAT_OUT_REQ ?
				   "%s has not accepted yet" :
				   "accept %s's request first", peer);
		r = -EAGAIN;
	}
	peer_release(c, p);
	return r;
}

int cchat_trust(struct cchat *c, const char *peer)
{
	struct kchange **k, *dead;
	int r;

	pthread_mutex_lock(&c->mu);
	k = find_change(c, peer);
	if (!*k) {
		pthread_mutex_unlock(&c->mu);
		cout_error(c->out, "no key change to trust for %s", peer);
		return -ENOENT;
	}
	r = kp_set(&c->kp, peer, (*k)->fpr);
	if (r == 0)
		r = kp_save(&c->kp, c->kp_path);
	dead = *k;
	*k = dead->next;
	pthread_mutex_unlock(&c->mu);
	free(dead);
	if (r < 0) {
		cout_error(c->out, "cannot record %s's key in %s: %s", peer,
			   c->kp_path, strerror(-r));
		return r;
	}
	cout_info(c->out, "%s's new key is now trusted", peer);
	return 0;
}

/* ---- records from the server ---- */

static void users_append(struct cchat *c, const char *name)
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

static void on_list(struct cchat *c, const struct msg *m)
{
	char name[NAME_MAX_LEN + 1];
	struct cev ev = { 0 };
	size_t off = 0;
	int r;

	while ((r = msg_list_next(m, &off, name)) == 1)
		users_append(c, name);
	if (r < 0)
		cout_notice(c->out, "malformed LIST reply from the server");
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
	cout_event(c->out, &ev);
	c->users_len = 0;
	if (c->users)
		c->users[0] = '\0';
}

/* Forget any state with name, so a fresh request can take its place. */
static void drop_peer(struct cchat *c, const char *name)
{
	struct peer *p = peer_get(c, name);

	if (p) {
		peer_remove(c, p);
		peer_release(c, p);
	}
}

static void on_rtt(struct cchat *c, const struct msg *m)
{
	struct peer *p = NULL;
	int tries, r = -EEXIST;

	/* The server is the judge of consent: a new RTT replaces old state. */
	for (tries = 0; tries < 3 && r == -EEXIST; tries++) {
		drop_peer(c, m->peer);
		r = peer_create(c, m->peer, CCHAT_IN_REQ, &p);
	}
	if (r < 0)
		return;
	memcpy(p->nonce_a, m->nonce, sizeof(p->nonce_a));
	memcpy(p->share_a, m->share, sizeof(p->share_a));
	emit(c, CEV_REQUEST, m->peer, 0);
	peer_release(c, p);
}

static void send_hello(struct cchat *c, struct peer *p)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);
	enum e2e_result er;

	er = chat_seal_hello(&p->chat, out, &out_len);
	if (er == E2E_OK)
		send_e2e(c, p->name, out, out_len);
	crypto_cleanse(out, sizeof(out));
}

/* A: the peer accepted. Check its key, CONFIRM, HELLO. */
static void on_accept(struct cchat *c, struct peer *p, const struct msg *m)
{
	uint8_t sig_a[SIG_MAX_LEN];
	size_t sig_a_len = sizeof(sig_a);
	struct msg conf = { .op = OP_CONFIRM };
	struct ratchet r;
	enum key_verdict kv;
	enum e2e_result er;
	sm_key *pk;

	kv = check_key(c, p, m, &pk);
	if (kv == KEY_CHANGED) {
		stop_for_key_change(c, p);
		return;
	}
	if (kv == KEY_BAD) {
		fail_peer(c, p, "the server sent an unusable key");
		return;
	}
	er = e2e_initiator_finish(&p->ini, m->nonce, m->share, m->sig,
				  m->sig_len, pk, c->key, sig_a, &sig_a_len,
				  &r);
	key_unref(pk);
	if (er != E2E_OK) {
		fail_peer(c, p, e2e_result_str(er));
		return;
	}
	e2e_initiator_clear(&p->ini);
	snprintf(conf.peer, sizeof(conf.peer), "%s", p->name);
	conf.sig = sig_a;
	conf.sig_len = sig_a_len;
	chat_init(&p->chat, &r, true);
	ratchet_clear(&r);
	set_state(c, p, CCHAT_ESTABLISHED, false); /* chat_clear on removal */
	if (send_msg(c, &conf) < 0)
		return;
	send_hello(c, p);
	established(c, p, kv == KEY_FIRST);
}

/* B: A confirmed. Check its key and signature. */
static void on_confirm(struct cchat *c, struct peer *p, const struct msg *m)
{
	struct ratchet r;
	enum key_verdict kv;
	enum e2e_result er;
	sm_key *pk;

	kv = check_key(c, p, m, &pk);
	if (kv == KEY_CHANGED) {
		stop_for_key_change(c, p);
		return;
	}
	if (kv == KEY_BAD) {
		fail_peer(c, p, "the server sent an unusable key");
		return;
	}
	er = e2e_responder_finish(&p->resp, m->sig, m->sig_len, pk, &r);
	key_unref(pk);
	if (er != E2E_OK) {
		fail_peer(c, p, e2e_result_str(er));
		return;
	}
	e2e_responder_clear(&p->resp);
	chat_init(&p->chat, &r, false);
	ratchet_clear(&r);
	set_state(c, p, CCHAT_ESTABLISHED, true);
	established(c, p, kv == KEY_FIRST);
}

/* B: HELLO arrived; send what the user typed meanwhile. */
static void flush_held(struct cchat *c, struct peer *p)
{
	struct held *h = p->held;

	set_state(c, p, CCHAT_ESTABLISHED, false);
	p->held = p->held_tail = NULL;
	p->nheld = 0;
	while (h) {
		struct held *next = h->next;

		if (!p->dead)
			send_text_locked(c, p, h->text, h->len);
		crypto_cleanse(h->text, h->len);
		free(h);
		h = next;
	}
}

static void on_chat_event(struct cchat *c, struct peer *p,
			  const struct chat_event *ev)
{
	uint8_t out[E2E_MSG_MAX];
	size_t out_len = sizeof(out);

	switch (ev->kind) {
	case CHAT_HELLO:
		flush_held(c, p);
		break;
	case CHAT_TEXT:
		emit_id(c, CEV_MSG, p->name, ev->id, (const char *)ev->text,
			ev->text_len);
		if (chat_seal_receipt(&p->chat, ev->id, out, &out_len) ==
		    E2E_OK)
			send_e2e(c, p->name, out, out_len);
		crypto_cleanse(out, sizeof(out));
		break;
	case CHAT_RECEIPT:
		if (ev->id != 0)
			emit_id(c, CEV_DELIVERED, p->name, ev->id, NULL, 0);
		break;
	default:
		break;
	}
}

static void on_message(struct cchat *c, struct peer *p, const struct msg *m)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_event ev;
	enum e2e_result er;

	er = chat_open(&p->chat, m->e2e, m->e2e_len, pt, &ev);
	if (er != E2E_OK) {
		fail_peer(c, p, e2e_result_str(er));
	} else {
		on_chat_event(c, p, &ev);
	}
	crypto_cleanse(pt, sizeof(pt));
}

static void on_refuse(struct cchat *c, const struct msg *m)
{
	struct peer *p = peer_get(c, m->peer);

	emit(c, CEV_REFUSED, m->peer, m->reason);
	if (!p)
		return;
	if (p->state == CCHAT_OUT_REQ)
		peer_remove(c, p);
	peer_release(c, p);
}

static void on_end(struct cchat *c, const struct msg *m)
{
	struct peer *p = peer_get(c, m->peer);

	if (!p)
		return; /* we already left it */
	emit(c, CEV_ENDED, m->peer, m->reason);
	peer_remove(c, p);
	peer_release(c, p);
}

/* ACCEPT, CONFIRM and MESSAGE: records for one peer in a given state. */
static void on_peer_record(struct cchat *c, const struct msg *m)
{
	struct peer *p = peer_get(c, m->peer);
	static const enum cchat_state want[] = {
		[OP_ACCEPT] = CCHAT_OUT_REQ,
		[OP_CONFIRM] = CCHAT_ACCEPTED,
		[OP_MESSAGE] = CCHAT_ESTABLISHED,
	};

	if (!p) {
		cout_notice(c->out, "%s from %s ignored: no chat or request",
			    opcode_name(m->op), m->peer);
		return;
	}
	if (p->state != want[m->op])
		fail_peer(c, p, "a record arrived out of order");
	else if (m->op == OP_ACCEPT)
		on_accept(c, p, m);
	else if (m->op == OP_CONFIRM)
		on_confirm(c, p, m);
	else
		on_message(c, p, m);
	peer_release(c, p);
}

static void on_text_event(struct cchat *c, enum cev_kind kind,
			  const struct msg *m)
{
	struct cev ev = { .kind = kind, .code = m->code, .reason = m->reason,
			  .text = (const char *)m->text,
			  .text_len = m->text_len };

	cout_event(c->out, &ev);
}

int cchat_handle(struct cchat *c, const struct msg *m)
{
	struct msg pong = { .op = OP_PONG };

	switch (m->op) {
	case OP_LIST:
		on_list(c, m);
		break;
	case OP_RTT:
		on_rtt(c, m);
		break;
	case OP_ACCEPT:
	case OP_CONFIRM:
	case OP_MESSAGE:
		on_peer_record(c, m);
		break;
	case OP_REFUSE:
		on_refuse(c, m);
		break;
	case OP_END:
		on_end(c, m);
		break;
	case OP_ERROR:
		on_text_event(c, CEV_ERROR, m);
		break;
	case OP_BYE:
		on_text_event(c, CEV_BYE, m);
		return 1;
	case OP_PING:
		pong.cookie = m->cookie;
		send_msg(c, &pong);
		break;
	default:
		break; /* PONG, and anything else the server should not send */
	}
	return 0;
}

bool cchat_logged_in(struct cchat *c)
{
	return c->logged_in;
}

/* ---- queries for the interactive front end ---- */

void cchat_current(struct cchat *c, char out[NAME_MAX_LEN + 1])
{
	pthread_mutex_lock(&c->mu);
	memcpy(out, c->current, NAME_MAX_LEN + 1);
	pthread_mutex_unlock(&c->mu);
}

int cchat_set_current(struct cchat *c, const char *peer)
{
	int r = -ENOENT;

	pthread_mutex_lock(&c->mu);
	if (find_locked(c, peer)) {
		snprintf(c->current, sizeof(c->current), "%s", peer);
		c->gen++;
		r = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

unsigned cchat_generation(struct cchat *c)
{
	unsigned g;

	pthread_mutex_lock(&c->mu);
	g = c->gen;
	pthread_mutex_unlock(&c->mu);
	return g;
}

size_t cchat_snapshot(struct cchat *c, struct cchat_info *v, size_t max)
{
	struct peer *p;
	struct kchange *k;
	size_t n = 0;

	pthread_mutex_lock(&c->mu);
	for (p = c->peers; p; p = p->next, n++) {
		if (n >= max)
			continue;
		snprintf(v[n].name, sizeof(v[n].name), "%s", p->name);
		v[n].state = p->state;
		v[n].current = strcmp(p->name, c->current) == 0;
		v[n].waiting_hello = p->hello_wait;
		v[n].key_changed = false;
	}
	for (k = c->changes; k; k = k->next, n++) {
		if (n >= max)
			continue;
		snprintf(v[n].name, sizeof(v[n].name), "%s", k->name);
		v[n].state = CCHAT_OUT_REQ;
		v[n].current = false;
		v[n].waiting_hello = false;
		v[n].key_changed = true;
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}

int cchat_known_fpr(struct cchat *c, const char *peer,
		    char out[FPR_HEX_LEN + 1])
{
	const char *f;
	int r = -ENOENT;

	pthread_mutex_lock(&c->mu);
	f = kp_get(&c->kp, peer);
	if (f) {
		snprintf(out, FPR_HEX_LEN + 1, "%s", f);
		r = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

void cchat_self_fpr(struct cchat *c, char out[FPR_HEX_LEN + 1])
{
	memcpy(out, c->self_fpr, FPR_HEX_LEN + 1);
}
