/* relay.c - the relay rules of secmsg-protocol(7) §5 (see relay.h).
 *
 * Consent is enforced on both sides: a request is checked against the
 * sender's peer table here, then the target's relay checks its own entry
 * (and the sender's handle) before the record reaches its client.
 */
#include "relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "convs.h"
#include "keys.h"
#include "log.h"
#include "msg.h"
#include "queue.h"
#include "registry.h"
#include "store.h"
#include "users.h"

#define REC_MAX (CHAN_PT_MAX + 64)
/* Records a client sends about a peer while the store works on that
 * entry wait in it, up to this many bytes; more gets ERROR 3. */
#define DEFER_MAX 65536
/* A QUEUED record on the wire beyond its e2e: opcode, peer, seq, at,
 * length, the record layer's tag and header (send queue accounting). */
#define QUEUED_OVERHEAD (1 + 1 + NAME_MAX_LEN + 8 + 8 + 2 + 64)

/* What this user's relay knows of one chat or request with a peer. */
enum peer_state {
	PE_OPEN_OUT,	 /* we asked (RTT sent) */
	PE_OPEN_IN,	 /* they asked */
	PE_ACCEPTED_OUT, /* they accepted; we owe CONFIRM */
	PE_ACCEPTED_IN,	 /* we accepted; they owe CONFIRM */
	PE_ESTABLISHED,
	PE_CONFIRMING,	 /* v2: we sent CONFIRM; the store is creating the
			    conversation (the CONFIRM goes on after it) */
	PE_ENDING,	 /* v2: we ended the conversation; the store is
			    deleting it */
	PE_KEPT_BUSY,	 /* a kept request: the store is adding it (RTT) or
			    its ACCEPT (doc/first-contact.md) */
};

/* EVT_RTT's arg for a kept request (the store holds it already). */
#define RTT_KEPT 2

struct peer_entry {
	char name[NAME_MAX_LEN + 1];
	uint8_t state;
	bool requester;		/* this relay's user sent the RTT */
	struct handle h;	/* the peer's connection */
	int64_t since;		/* Unix time of the RTT */
	int64_t expires_ms;	/* request deadline (requester side) */
	uint64_t messages;	/* MESSAGE records relayed, both ways */
	bool conv;		/* a conversation (v2): outlives sessions; h is
				   the peer's v2 session, or none (offline) */
	bool persistent;	/* a request that becomes a conversation */
	char fpr[CONVS_FPR_LEN + 1]; /* requester: the target's key */
	uint8_t *defer;		/* records waiting for the store (u16 len,
				   then the record), DEFER_MAX at most */
	uint32_t defer_len;
	uint32_t storing;	/* our MESSAGEs to this conversation's peer
				   the store has not answered yet: the next
				   goes to the store too (order, issue 17) */
	bool refusal_logged;	/* a refusal since the last STORED is logged
				   (once, not per record) */
	bool kept;		/* a kept request (doc/first-contact.md): on
				   disk, outlives sessions; h is the peer's
				   v2 session, or none */
	uint8_t *crossed;	/* our kept RTT is in the store and the
				   peer's, kept first, came meanwhile: its
				   record, delivered after our REFUSE 5 */
	uint32_t crossed_len;
	struct handle crossed_h;
};

struct relay_user {
	char name[NAME_MAX_LEN + 1];
	struct handle h;
	void *owner;
	sm_key *key;
	uint8_t version;	/* the session's protocol version */
	bool gone;		/* logged out: nothing more is delivered */
	int64_t tokens;		/* rate bucket, in thousandths of a record */
	int64_t tokens_ms;
	struct peer_entry *peers;
	uint16_t npeers, peers_cap;
	uint16_t busy;		/* entries waiting for the store: records
				   naming their peer wait too */
	uint64_t msgs_in, msgs_out;
	uint64_t queued_sent;	/* highest QUEUED seq sent to this session */
	uint64_t acked;		/* highest seq it acknowledged */
	bool backlog_lost;	/* its login could not send the backlog */
};

static int64_t unix_now(void)
{
	return (int64_t)time(NULL);
}

/* ---- to this user's client ---- */

static void deliver(const struct relay_env *env, struct relay_user *u,
		    const uint8_t *pt, size_t len)
{
	if (!u->gone)
		env->ops->deliver(env->ctx, u->owner, pt, len);
}

static void send_msg(const struct relay_env *env, struct relay_user *u,
		     const struct msg *m)
{
	uint8_t buf[REC_MAX];
	struct writer wr;

	wr_init(&wr, buf, sizeof(buf));
	if (msg_encode_s2c_v(m, u->version, &wr) == 0)
		deliver(env, u, buf, wr.len);
}

/* ERROR code; in version 2 it names the refused record (about: its op,
 * ref and peer as decoded; NULL: none). */
static void send_error(const struct relay_env *env, struct relay_user *u,
		       uint16_t code, const char *text, const struct msg *about)
{
	struct msg m = { .op = OP_ERROR, .code = code };

	m.text = (const uint8_t *)text;
	m.text_len = strlen(text);
	if (about) {
		m.err_op = about->op;
		m.ref = about->op == OP_MESSAGE ? about->ref : 0;
		snprintf(m.peer, sizeof(m.peer), "%s", about->peer);
	}
	send_msg(env, u, &m);
}

/* What an ERROR names when it is not about a decoded record. */
static struct msg about(uint8_t op, const char *peer, uint32_t ref)
{
	struct msg m = { .op = op, .ref = ref };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return m;
}

static void send_refuse(const struct relay_env *env, struct relay_user *u,
			const char *peer, uint8_t reason)
{
	struct msg m = { .op = OP_REFUSE, .reason = reason };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_msg(env, u, &m);
}

/* LIST: every online user but u, in records of LIST_MAX_PER_RECORD. */
static void send_list(const struct relay_env *env, struct relay_user *u)
{
	struct registry_names rn;
	uint8_t buf[1 + 2 + LIST_MAX_PER_RECORD * (1 + NAME_MAX_LEN) + 8];
	size_t i = 0, others;

	if (registry_names(&rn) < 0)
		return;
	others = rn.count;
	for (size_t k = 0; k < rn.count; k++)
		if (strcmp(rn.name[k], u->name) == 0)
			others--;
	do {
		struct writer wr;
		uint16_t n = 0;
		uint8_t *hdr;

		wr_init(&wr, buf, sizeof(buf));
		wr_u8(&wr, OP_LIST);
		hdr = wr_reserve(&wr, 3);
		for (; i < rn.count && n < LIST_MAX_PER_RECORD; i++) {
			if (strcmp(rn.name[i], u->name) == 0)
				continue;
			wr_name(&wr, rn.name[i]);
			n++;
			others--;
		}
		hdr[0] = others == 0;
		hdr[1] = n >> 8;
		hdr[2] = n & 0xff;
		deliver(env, u, buf, wr.len);
	} while (others > 0);
	registry_names_free(&rn);
}

/* ---- the peer table ---- */

static struct peer_entry *peer_find(struct relay_user *u, const char *name)
{
	for (uint16_t i = 0; i < u->npeers; i++)
		if (strcmp(u->peers[i].name, name) == 0)
			return &u->peers[i];
	return NULL;
}

static struct peer_entry *peer_add(struct relay_user *u, const char *name,
				   struct handle h, uint8_t state)
{
	struct peer_entry *p;

	if (u->npeers == u->peers_cap) {
		uint16_t ncap = u->peers_cap ? u->peers_cap * 2 : 4;
		struct peer_entry *nv = realloc(u->peers, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		u->peers = nv;
		u->peers_cap = ncap;
	}
	p = &u->peers[u->npeers++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->h = h;
	p->state = state;
	p->requester = state == PE_OPEN_OUT;
	p->since = unix_now();
	return p;
}

static bool is_busy(uint8_t state)
{
	return state == PE_CONFIRMING || state == PE_ENDING ||
	       state == PE_KEPT_BUSY;
}

/* p's state; u->busy counts the entries waiting for the store. */
static void set_state(struct relay_user *u, struct peer_entry *p,
		      uint8_t state)
{
	u->busy += is_busy(state) - is_busy(p->state);
	p->state = state;
}

static void peer_remove(struct relay_user *u, struct peer_entry *p)
{
	u->busy -= is_busy(p->state);
	free(p->defer);
	free(p->crossed);
	*p = u->peers[--u->npeers];
	if (u->npeers == 0) {
		free(u->peers);
		u->peers = NULL;
		u->peers_cap = 0;
	}
}

static bool is_chat(const struct peer_entry *p)
{
	return p->state == PE_ESTABLISHED || p->state == PE_ENDING;
}

/* Chats (established), conversations included: those of the view,
 * whatever the session's version (secmsg-protocol(7): they count as
 * established chats for the limits). */
static unsigned count_chats(const struct relay_user *u)
{
	unsigned n = convs_count(u->name);

	for (uint16_t i = 0; i < u->npeers; i++)
		n += is_chat(&u->peers[i]) && !u->peers[i].conv;
	return n;
}

/* Requests (open, accepted or being confirmed; ours if out). */
static unsigned count_requests(const struct relay_user *u, bool out)
{
	unsigned n = 0;

	for (uint16_t i = 0; i < u->npeers; i++)
		n += !is_chat(&u->peers[i]) && u->peers[i].requester == out;
	return n;
}

/* ---- to other users ---- */

/* An event from u for to, with a payload. */
static void emit_raw(const struct relay_env *env, struct relay_user *u,
		     struct handle to, const char *to_name, uint16_t type,
		     uint8_t arg, uint32_t ref, const void *pl, size_t len)
{
	struct event e = { .type = type, .arg = arg, .to = to, .from = u->h,
			   .ref = ref };

	/* Names are at most NAME_MAX_LEN bytes (checked when they arrived). */
	memcpy(e.from_name, u->name, sizeof(e.from_name));
	strncpy(e.to_name, to_name, sizeof(e.to_name) - 1);
	env->ops->emit(env->ctx, &e, pl, len);
}

/* An event about a peer for its owner, with the record its client gets,
 * encoded at that client's version. */
static void emit_ref(const struct relay_env *env, struct relay_user *u,
		     struct handle to, const char *to_name, uint16_t type,
		     uint8_t arg, uint32_t ref, const struct msg *rec)
{
	uint8_t buf[REC_MAX];
	struct writer wr;

	wr_init(&wr, buf, sizeof(buf));
	if (rec && msg_encode_s2c_v(rec, handle_version(to), &wr) < 0)
		return;
	emit_raw(env, u, to, to_name, type, arg, ref, buf, wr.len);
}

static void emit_to(const struct relay_env *env, struct relay_user *u,
		    struct handle to, const char *to_name, uint16_t type,
		    uint8_t arg, const struct msg *rec)
{
	emit_ref(env, u, to, to_name, type, arg, 0, rec);
}

/* A request for the store; false (and ERROR 3 for about) if there is no
 * memory for it. */
static bool to_store(const struct relay_env *env, struct relay_user *u,
		     struct store_req *r, const struct msg *about)
{
	if (!r) {
		if (u && about)
			send_error(env, u, ERR_LIMIT, "out of memory", about);
		return false;
	}
	env->ops->store(env->ctx, r);
	return true;
}

/* Tell p's user that u left (the record depends on where the chat was).
 * END_KEY_UNKNOWN (u's client refused the peer's key) goes as it is to a
 * session of version 2, in every state; one of version 1 gets what END
 * would have given it. */
static void peer_leave(const struct relay_env *env, struct relay_user *u,
		       struct peer_entry *p, uint8_t end_reason, bool by_request)
{
	struct msg m = { .op = OP_END, .reason = end_reason };

	snprintf(m.peer, sizeof(m.peer), "%s", u->name);
	if (end_reason == END_KEY_UNKNOWN && p->h.ver < 2)
		m.reason = END_LEFT;	/* version 1 has no word for it */
	by_request = by_request && m.reason != END_KEY_UNKNOWN;
	if (by_request && p->state == PE_OPEN_IN) {
		m.op = OP_REFUSE; /* the target declines (§5) */
		m.reason = REFUSE_DECLINED;
	} else if (by_request && p->state == PE_OPEN_OUT) {
		m.reason = END_WITHDRAWN;
	}
	if (p->state == PE_ESTABLISHED)
		log_record(MSGID_CHAT_ENDED, u->name, p->name, NULL,
			  "chat %s - %s ended", u->name, p->name);
	emit_to(env, u, p->h, p->name, EVT_GONE, 0, &m);
}

/* ---- conversations (version 2) ---- */

static void send_presence(const struct relay_env *env, struct relay_user *u,
			  const char *peer, bool online)
{
	struct msg m = { .op = OP_PRESENCE, .online = online };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_msg(env, u, &m);
}

/* The handle of name's session if it is of version 2, else none: a
 * session of version 1 counts as offline for conversations. */
static struct handle online_v2(const char *name)
{
	struct handle h = registry_lookup(name);

	if (!handle_valid(h) || h.ver < 2)
		memset(&h, 0, sizeof(h));
	return h;
}

static int conv_cmp(const void *a, const void *b)
{
	const struct peer_entry *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* CONVERSATIONS: u's conversations sorted by peer, CONV_MAX_PER_RECORD a
 * record; one empty record when there are none. */
static void send_conversations(const struct relay_env *env,
			       struct relay_user *u)
{
	static _Thread_local uint8_t buf[4 + CONV_MAX_PER_RECORD *
					 (1 + NAME_MAX_LEN + 9)];
	struct peer_entry **v = malloc((u->npeers ? u->npeers : 1) * sizeof(*v));
	size_t n = 0, i = 0;

	if (!v) {
		send_error(env, u, ERR_LIMIT, "out of memory", NULL);
		return;
	}
	for (uint16_t k = 0; k < u->npeers; k++)
		if (u->peers[k].conv)
			v[n++] = &u->peers[k];
	qsort(v, n, sizeof(*v), conv_cmp);
	do {
		struct writer wr;
		uint16_t c = 0;
		uint8_t *hdr;

		wr_init(&wr, buf, sizeof(buf));
		wr_u8(&wr, OP_CONVERSATIONS);
		hdr = wr_reserve(&wr, 3);
		for (; i < n && c < CONV_MAX_PER_RECORD; i++, c++)
			msg_conv_put(&wr, v[i]->name, (uint64_t)v[i]->since,
				     handle_valid(v[i]->h) ? CONV_FLAG_ONLINE : 0);
		hdr[0] = i == n;
		hdr[1] = c >> 8;
		hdr[2] = c & 0xff;
		deliver(env, u, buf, wr.len);
	} while (i < n);
	free(v);
}

static bool users_key(const struct relay_env *env, const char *name,
		      struct msg *m);

/* The records held for u (ENDs, EXPIRED reports, KEPT REFUSE/END of
 * kept requests; oldest first), then
 * forgotten on disk too. A crash before the store deletes them sends them
 * again at the next login; a client ignores an END for a conversation it
 * does not have. */
static void send_held(const struct relay_env *env, struct relay_user *u)
{
	struct held_end *h;
	size_t n;

	if (convs_held_take(u->name, &h, &n) < 0)
		return;	/* they stay held for the next login */
	for (size_t i = 0; i < n; i++) {
		struct msg m = { .op = h[i].op, .reason = h[i].reason,
				 .e2e = h[i].e2e, .e2e_len = h[i].e2e_len,
				 .ref = h[i].ref, .at = (uint64_t)h[i].stored };
		struct store_req *r;

		snprintf(m.peer, sizeof(m.peer), "%s", h[i].peer);
		if (h[i].kept) {	/* a kept request's end (schema 7) */
			m.rec_op = m.op;
			m.op = OP_KEPT;
		}
		if (h[i].kept && m.rec_op == OP_CONFIRM) {	/* rule 4 */
			m.sig = m.e2e;
			m.sig_len = m.e2e_len;
			m.e2e = NULL;
			m.e2e_len = 0;
			m.flags = MSG_FLAG_PERSISTENT;
		}
		if (!h[i].kept || m.rec_op != OP_CONFIRM ||
		    users_key(env, h[i].peer, &m))	/* rule 8 */
			send_msg(env, u, &m);
		r = store_req_new(STORE_HELD_DELETE, u->name, h[i].peer, NULL, 0);
		if (r) {
			r->id = h[i].id;
			to_store(env, u, r, NULL);
		}
	}
	convs_held_free(h, n);
}

/* ---- stored messages (issue 17) ---- */

static void send_queued(const struct relay_env *env, struct relay_user *u,
			const struct queued *q)
{
	struct msg m = { .op = OP_QUEUED, .seq = q->seq, .at = (uint64_t)q->at,
			 .e2e = q->e2e, .e2e_len = q->e2e_len };

	snprintf(m.peer, sizeof(m.peer), "%s", q->sender);
	send_msg(env, u, &m);
	if (q->seq > u->queued_sent)
		u->queued_sent = q->seq;
}

/* What the store holds for u, in order, before any live record reaches
 * it (live ones come as events, after the login). */
static void send_backlog(const struct relay_env *env, struct relay_user *u)
{
	struct queued *v;
	size_t n, bytes = 0;

	if (queue_copy(u->name, 0, &v, &n) < 0) {
		/* No ACK of this session may then delete them (req_ack). */
		u->backlog_lost = true;
		send_error(env, u, ERR_LIMIT, "out of memory: stored messages "
			   "come at the next login", NULL);
		return;
	}
	for (size_t i = 0; i < n; i++)
		bytes += QUEUED_OVERHEAD + v[i].e2e_len;
	if (bytes && env->ops->allow)
		env->ops->allow(env->ctx, u->owner, bytes);
	for (size_t i = 0; i < n; i++)
		send_queued(env, u, &v[i]);
	queue_free(v, n);
}

/* A request to store e2e from sender for recipient with the sender's
 * ref, within the limits; its answer goes to reply. */
static struct store_req *queue_req(const struct relay_env *env, uint8_t op,
				   const char *sender, const char *recipient,
				   const struct msg *m, struct handle reply)
{
	struct store_req *r = store_req_new(op, sender, recipient, m->e2e,
					    m->e2e_len);

	if (r) {
		r->ref = m->ref;
		r->max_msgs = env->limits->queue_max_messages;
		r->max_bytes = env->limits->queue_max_bytes;
		r->max_total = env->limits->store_max_bytes;
		r->reply = reply;
	}
	return r;
}

/* MESSAGE to an offline peer of a conversation, or while earlier ones
 * are still being stored (a live record never overtakes a stored one):
 * the store keeps it and answers (ev_stored). */
static void queue_message(const struct relay_env *env, struct relay_user *u,
			  struct peer_entry *p, const struct msg *m)
{
	struct store_req *r = queue_req(env, STORE_QUEUE_ADD, u->name, p->name,
					m, u->h);

	if (to_store(env, u, r, m)) {
		p->storing++;
		u->msgs_in++;
	}
}

/* ACK: what is stored for u up to seq goes. A seq above what this
 * session was sent is malformed (it would delete what it never got). */
static void req_ack(const struct relay_env *env, struct relay_user *u,
		    const struct msg *m)
{
	struct store_req *r;

	if (m->seq > u->queued_sent) {
		send_error(env, u, ERR_MALFORMED, "acknowledges what was not "
			   "sent", m);
		return;
	}
	if (m->seq <= u->acked || u->backlog_lost)
		return;
	r = store_req_new(STORE_QUEUE_ACK, u->name, NULL, NULL, 0);
	if (r)
		r->seq = m->seq;
	if (to_store(env, u, r, m))
		u->acked = m->seq;
}

/* The journal hears of the first refusal of a run (a sender over the
 * quota may try at its whole rate). */
static void log_refusal(struct relay_user *u, struct peer_entry *p,
			const char *why)
{
	if (p && p->refusal_logged)
		return;
	if (p)
		p->refusal_logged = true;
	log_record(MSGID_STORE_REFUSED, u->name, p ? p->name : NULL, NULL,
		   "a message from %s to %s was not stored: %s", u->name,
		   p ? p->name : "a user gone", why);
}

/* The store's answer to a MESSAGE it was given. */
static void stored_message(const struct relay_env *env, struct relay_user *u,
			   const struct event *e, struct peer_entry *p)
{
	struct msg a = about(OP_MESSAGE, e->from_name, e->ref);
	struct msg ok = { .op = OP_STORED, .ref = e->ref };

	if (p && p->storing && e->aux == STORE_QUEUE_ADD)
		p->storing--;
	if (e->arg != STORE_DONE && e->arg != STORE_NOTHING)
		log_refusal(u, p, e->arg == STORE_QUOTA ? "the recipient's "
			    "queue is full" : e->arg == STORE_FULL ?
			    "the store is full" : e->arg == STORE_DISK_FULL ?
			    "the store's disk is full" : "the database failed");
	switch (e->arg) {
	case STORE_DONE:
	case STORE_NOTHING:
		if (p)
			p->refusal_logged = false;
		snprintf(ok.peer, sizeof(ok.peer), "%s", e->from_name);
		send_msg(env, u, &ok);
		break;
	case STORE_QUOTA:
		send_error(env, u, ERR_QUOTA, "the recipient's queue is full",
			   &a);
		break;
	case STORE_FULL:
		send_error(env, u, ERR_STORE_FULL, "the server's store is full",
			   &a);
		break;
	case STORE_DISK_FULL:	/* to the sender, the store is full too */
		send_error(env, u, ERR_STORE_FULL, "the server's disk is full",
			   &a);
		break;
	default:
		send_error(env, u, ERR_STORE_FAILED, "the server could not "
			   "store it", &a);
		break;
	}
}

/* A record stored for u after its login: the store sends it at once. A
 * record its login already sent (a login between the commit and now) is
 * not sent twice. */
static void ev_queued(const struct relay_env *env, struct relay_user *u,
		      const struct event *e)
{
	struct msg m;

	if (u->version < 2 ||
	    msg_decode_s2c_v(event_payload(e), e->len, 2, &m) < 0 ||
	    m.op != OP_QUEUED || m.seq <= u->queued_sent)
		return;
	u->queued_sent = m.seq;
	deliver(env, u, event_payload(e), e->len);
}

static void send_kept(const struct relay_env *env, struct relay_user *u);

/* A version 2 login: the user's conversations into the peer table (each
 * peer online at version 2 is told), then the held ENDs and
 * CONVERSATIONS (secmsg-protocol(7), Login). */
static void login_v2(const struct relay_env *env, struct relay_user *u)
{
	struct conv_half *c;
	size_t n;

	if (convs_of(u->name, &c, &n) < 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		struct handle h = online_v2(c[i].peer);
		struct peer_entry *p = peer_add(u, c[i].peer, h, PE_ESTABLISHED);

		if (!p)
			break;
		p->conv = true;
		p->since = c[i].since;
		if (handle_valid(h))
			emit_raw(env, u, h, p->name, EVT_PRESENCE, 1, 0, NULL, 0);
	}
	free(c);
	send_held(env, u);
	send_kept(env, u);
	send_conversations(env, u);
	send_backlog(env, u);
}

/* Keep a record about busy entry p until the store has answered. */
static void defer(const struct relay_env *env, struct relay_user *u,
		  struct peer_entry *p, const struct msg *m,
		  const uint8_t *pt, size_t len)
{
	uint8_t *nv;

	if (p->defer_len + 2 + len > DEFER_MAX ||
	    !(nv = realloc(p->defer, p->defer_len + 2 + len))) {
		send_error(env, u, ERR_LIMIT, "busy storing that conversation",
			   m);
		return;
	}
	p->defer = nv;
	nv[p->defer_len] = (uint8_t)(len >> 8);
	nv[p->defer_len + 1] = (uint8_t)len;
	memcpy(nv + p->defer_len + 2, pt, len);
	p->defer_len += 2 + (uint32_t)len;
}

static void run_request(const struct relay_env *env, struct relay_user *u,
			const struct msg *m, const uint8_t *pt, size_t len);

/* Run records that waited (they already paid their token); frees d. */
static void replay_buf(const struct relay_env *env, struct relay_user *u,
		       uint8_t *d, uint32_t n)
{
	for (uint32_t off = 0; off + 2 <= n && !u->gone;) {
		size_t len = (size_t)d[off] << 8 | d[off + 1];
		struct msg m;

		off += 2;
		if (msg_decode_c2s_v(d + off, len, u->version, &m) == 0)
			run_request(env, u, &m, d + off, len);
		off += (uint32_t)len;
	}
	free(d);
}

/* Take the records that waited in p (p may move as they run). */
static void replay(const struct relay_env *env, struct relay_user *u,
		   struct peer_entry *p)
{
	uint8_t *d = p->defer;
	uint32_t n = p->defer_len;

	p->defer = NULL;
	p->defer_len = 0;
	replay_buf(env, u, d, n);
}

/* ---- logging in and out ---- */

int relay_login(const struct relay_env *env, const char *name, sm_key *key,
		struct handle h, void *owner, struct relay_user **out)
{
	struct relay_user *u = calloc(1, sizeof(*u));
	struct handle old, abort;
	int r;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	r = registry_login(name, h, env->limits->logins_per_minute, env->now_ms,
			   &old, &abort);
	if (r < 0) {
		free(u);
		return r;
	}
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->h = h;
	u->version = (uint8_t)handle_version(h);
	u->owner = owner;
	u->key = key_ref(key);
	u->tokens = (int64_t)env->limits->rate_burst * 1000;
	u->tokens_ms = env->now_ms;
	if (handle_valid(old)) {
		struct event e = { .type = EVT_TAKEOVER, .to = old, .from = h };

		env->ops->emit(env->ctx, &e, NULL, 0);
	}
	if (handle_valid(abort)) {
		struct event e = { .type = EVT_ABORT, .to = abort, .from = h };

		env->ops->emit(env->ctx, &e, NULL, 0);
	}
	send_list(env, u);
	if (u->version >= 2)
		login_v2(env, u);
	*out = u;
	return 0;
}

void relay_logout(const struct relay_env *env, struct relay_user *u,
		  uint8_t end_reason)
{
	struct handle abort;

	if (u->gone)
		return;
	while (u->npeers > 0) {
		struct peer_entry *p = &u->peers[0];

		/* A conversation stays: its peer learns we are offline. */
		if (p->conv && handle_valid(p->h))
			emit_raw(env, u, p->h, p->name, EVT_PRESENCE, 0, 0,
				 NULL, 0);
		else if (!p->conv && !p->kept)
			peer_leave(env, u, p, end_reason, false);
		peer_remove(u, p);
	}
	registry_logout(u->name, u->h, env->now_ms, &abort);
	if (handle_valid(abort)) {
		struct event e = { .type = EVT_ABORT, .to = abort, .from = u->h };

		env->ops->emit(env->ctx, &e, NULL, 0);
	}
	u->gone = true;
}

void relay_user_free(struct relay_user *u)
{
	if (!u)
		return;
	key_unref(u->key);
	for (uint16_t i = 0; i < u->npeers; i++) {
		free(u->peers[i].defer);
		free(u->peers[i].crossed);
	}
	free(u->peers);
	free(u);
}

/* m as u's peer p gets it: naming u, carrying u's key, and in version 2
 * the persistent flag. */
static struct msg with_key(const struct relay_user *u,
			   const struct peer_entry *p, const struct msg *m)
{
	struct msg fwd = *m;

	snprintf(fwd.peer, sizeof(fwd.peer), "%s", u->name);
	fwd.peer_key = key_spki(u->key, &fwd.peer_key_len);
	fwd.flags = p->persistent ? MSG_FLAG_PERSISTENT : 0;
	return fwd;
}

/* ---- kept requests (doc/first-contact.md) ---- */

/* Kept requests are on: request_retention set (the gate, 0 = off), and
 * the users table at hand. */
static bool keeping(const struct relay_env *env)
{
	return env->limits->request_retention_s > 0 && env->users;
}

static void send_waiting(const struct relay_env *env, struct relay_user *u,
			 const char *peer, uint8_t op)
{
	struct msg m = { .op = OP_WAITING, .rec_op = op };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_msg(env, u, &m);
}

/* The key the server has now for name (rule 8), into m. */
static bool users_key(const struct relay_env *env, const char *name,
		      struct msg *m)
{
	sm_key *k = env->users ? users_lookup(env->users, name) : NULL;

	if (k)
		m->peer_key = key_spki(k, &m->peer_key_len);
	return k != NULL;
}

/* Rule 1: an RTT of version 2 to a user enrolled with no session or one
 * of version 2 is kept: stored first (ev_stored goes on), whatever the
 * target's presence. False: not for a kept request (the live rules). */
static bool rtt_kept(const struct relay_env *env, struct relay_user *u,
		     const struct msg *m)
{
	struct handle to = registry_lookup(m->peer);
	sm_key *k = users_lookup(env->users, m->peer);
	uint8_t data[CONVS_RTT_LEN];
	struct peer_entry *p;
	struct store_req *r;

	if (!k || (handle_valid(to) && to.ver < 2))
		return false;
	if (peer_find(u, m->peer)) {
		send_refuse(env, u, m->peer, REFUSE_EXISTS);
		return true;
	}
	if (count_chats(u) >= env->limits->max_chats ||
	    count_requests(u, true) >= env->limits->max_pending) {
		send_error(env, u, ERR_LIMIT, "chat or request limit reached",
			   m);
		return true;
	}
	memcpy(data, m->nonce, MSG_NONCE_LEN);
	memcpy(data + MSG_NONCE_LEN, m->share, MSG_SHARE_LEN);
	r = store_req_new(STORE_REQ_ADD, u->name, m->peer, data, sizeof(data));
	p = r ? peer_add(u, m->peer, (struct handle){ 0 }, PE_OPEN_OUT) : NULL;
	if (!p) {
		free(r);
		send_error(env, u, ERR_LIMIT, "out of memory", m);
		return true;
	}
	p->kept = true;
	set_state(u, p, PE_KEPT_BUSY);
	r->since = p->since;
	r->max_msgs = env->limits->max_pending;
	key_fingerprint_hex(u->key, r->fpr_a);
	key_fingerprint_hex(k, r->fpr_b);
	r->reply = u->h;
	to_store(env, u, r, m);
	return true;
}

/* Rule 3: the target accepts a kept request: stored first. */
static void accept_kept(const struct relay_env *env, struct relay_user *u,
			struct peer_entry *p, const struct msg *m)
{
	uint8_t data[MSG_NONCE_LEN + MSG_SHARE_LEN + MSG_SIG_MAX];
	size_t n = MSG_NONCE_LEN + MSG_SHARE_LEN + m->sig_len;
	struct store_req *r;

	memcpy(data, m->nonce, MSG_NONCE_LEN);
	memcpy(data + MSG_NONCE_LEN, m->share, MSG_SHARE_LEN);
	memcpy(data + MSG_NONCE_LEN + MSG_SHARE_LEN, m->sig, m->sig_len);
	r = store_req_new(STORE_REQ_ACCEPT, p->name, u->name, data, n);
	if (r) {
		r->reason = MSG_FLAG_PERSISTENT;
		r->at = unix_now();
		r->reply = u->h;
	}
	if (to_store(env, u, r, m)) {
		p->persistent = true;
		set_state(u, p, PE_KEPT_BUSY);
	}
}

/* Rule 5: u leaves a kept request (END, REFUSE 1, REFUSE 7): deleted,
 * then the other side told by the store (EVT_REQ_END, or held). */
static void end_kept(const struct relay_env *env, struct relay_user *u,
		     struct peer_entry *p, const struct msg *m, uint8_t why)
{
	bool out = p->requester, open = p->state == PE_OPEN_OUT ||
					p->state == PE_OPEN_IN;
	int other = out ? 1 : 0;	/* the other side's index in (a, b) */
	struct store_req *r = store_req_new(STORE_REQ_DELETE,
					    out ? u->name : p->name,
					    out ? p->name : u->name, NULL, 0);

	if (r) {
		r->tell = (uint8_t)(1 << other);
		r->tell_op[other] = OP_END;
		r->tell_reason[other] = END_LEFT;
		if (why == END_KEY_UNKNOWN)
			r->tell_reason[other] = END_KEY_UNKNOWN;
		else if (open && out)
			r->tell_reason[other] = END_WITHDRAWN;
		else if (open) {
			r->tell_op[other] = OP_REFUSE;
			r->tell_reason[other] = REFUSE_DECLINED;
		}
	}
	if (to_store(env, u, r, m))
		peer_remove(u, p);
}

/* The store kept the RTT: the target gets it if online at version 2,
 * else the requester WAITING(target, 2) (rule 1). */
static void kept_rtt_told(const struct relay_env *env, struct relay_user *u,
			  struct peer_entry *p, const uint8_t *data, size_t len)
{
	struct msg fwd = { .op = OP_RTT };
	struct handle h = online_v2(p->name);

	if (len != CONVS_RTT_LEN)
		return;
	if (!handle_valid(h)) {
		send_waiting(env, u, p->name, OP_RTT);
		return;
	}
	p->h = h;
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", u->name);
	memcpy(fwd.nonce, data, MSG_NONCE_LEN);
	memcpy(fwd.share, data + MSG_NONCE_LEN, MSG_SHARE_LEN);
	emit_to(env, u, h, p->name, EVT_RTT, RTT_KEPT, &fwd);
}

/* The store kept the ACCEPT: the requester gets it if online at version
 * 2, else the target WAITING(requester, 3) (rule 3). */
static void kept_accept_told(const struct relay_env *env,
			     struct relay_user *u, struct peer_entry *p,
			     const uint8_t *data, size_t len)
{
	struct msg acc = { .op = OP_ACCEPT }, fwd;
	struct handle h = online_v2(p->name);

	if (len <= MSG_NONCE_LEN + MSG_SHARE_LEN)
		return;
	if (!handle_valid(h)) {
		send_waiting(env, u, p->name, OP_ACCEPT);
		return;
	}
	p->h = h;
	memcpy(acc.nonce, data, MSG_NONCE_LEN);
	memcpy(acc.share, data + MSG_NONCE_LEN, MSG_SHARE_LEN);
	acc.sig = data + MSG_NONCE_LEN + MSG_SHARE_LEN;
	acc.sig_len = len - MSG_NONCE_LEN - MSG_SHARE_LEN;
	fwd = with_key(u, p, &acc);
	emit_to(env, u, h, p->name, EVT_ACCEPT, 0, &fwd);
}

/* The peer's kept RTT that crossed ours, after our REFUSE 5: an entry
 * for it and the record (as ev_rtt_kept would have done). */
static void crossed_deliver(const struct relay_env *env,
			    struct relay_user *u, const char *peer,
			    struct handle from, const uint8_t *pt, size_t len)
{
	struct peer_entry *q;

	if (peer_find(u, peer) ||
	    !(q = peer_add(u, peer, from, PE_OPEN_IN)))
		return;		/* it stays on disk for the next login */
	q->kept = true;
	deliver(env, u, pt, len);
}

/* The store's answer to a kept RTT or ACCEPT (rules 1, 3). The store
 * names the requester a, the target b: the peer is b for an RTT, a for
 * an ACCEPT. */
static void stored_kept(const struct relay_env *env, struct relay_user *u,
			const struct event *e)
{
	bool add = e->aux == STORE_REQ_ADD;
	const char *peer = add ? e->from_name : e->to_name;
	struct peer_entry *p = peer_find(u, peer);
	struct msg a = about(add ? OP_RTT : OP_ACCEPT, peer, 0);
	uint8_t *d, *x;
	uint32_t n, xn;
	struct handle xh;

	if (!p || p->state != PE_KEPT_BUSY)
		return;
	if (e->arg == STORE_DONE) {
		set_state(u, p, add ? PE_OPEN_OUT : PE_ACCEPTED_IN);
		if (add)
			kept_rtt_told(env, u, p, event_payload(e), e->len);
		else
			kept_accept_told(env, u, p, event_payload(e), e->len);
		replay(env, u, p);
		return;
	}
	d = p->defer;
	n = p->defer_len;
	p->defer = NULL;
	x = p->crossed;
	xn = p->crossed_len;
	xh = p->crossed_h;
	p->crossed = NULL;
	peer_remove(u, p);
	if (add && e->arg == STORE_NOTHING)	/* one either way exists */
		send_refuse(env, u, peer, REFUSE_EXISTS);
	else if (add && e->arg == STORE_QUOTA)
		send_refuse(env, u, peer, REFUSE_BUSY);
	else if (e->arg == STORE_NOTHING)	/* ended meanwhile */
		send_error(env, u, ERR_NO_CHAT, "no such chat or request", &a);
	else
		send_error(env, u, ERR_LIMIT, "the request could not be "
			   "stored", &a);
	if (add && e->arg == STORE_NOTHING && x)
		crossed_deliver(env, u, peer, xh, x, xn);
	free(x);
	replay_buf(env, u, d, n);
}

/* Rule 2: a kept request of u's into its peer table at login, with
 * KEPT(asked, RTT) for an open one to u and KEPT(accepted, ACCEPT) for
 * an accepted one of u's. */
static void kept_entry(const struct relay_env *env, struct relay_user *u,
		       const struct kept_req *q)
{
	bool out = strcmp(q->a, u->name) == 0, acc = q->accept != NULL;
	const char *peer = out ? q->b : q->a;
	struct msg m = { .op = OP_KEPT, .rec_op = OP_RTT,
			 .at = (uint64_t)q->asked };
	struct peer_entry *p;

	if (peer_find(u, peer) ||
	    !(p = peer_add(u, peer, online_v2(peer), out ?
			   (acc ? PE_ACCEPTED_OUT : PE_OPEN_OUT) :
			   (acc ? PE_ACCEPTED_IN : PE_OPEN_IN))))
		return;
	p->kept = true;
	p->requester = out;
	p->since = q->asked;
	p->persistent = acc;
	memcpy(p->fpr, q->fpr_b, sizeof(p->fpr));
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	memcpy(m.nonce, acc ? q->accept : q->rtt, MSG_NONCE_LEN);
	memcpy(m.share, (acc ? q->accept : q->rtt) + MSG_NONCE_LEN,
	       MSG_SHARE_LEN);
	if (!out && !acc) {
		send_msg(env, u, &m);
	} else if (out && acc && users_key(env, peer, &m)) {
		m.rec_op = OP_ACCEPT;
		m.at = (uint64_t)q->accepted;
		m.sig = q->accept + MSG_NONCE_LEN + MSG_SHARE_LEN;
		m.sig_len = q->accept_len - MSG_NONCE_LEN - MSG_SHARE_LEN;
		m.flags = q->flags;
		send_msg(env, u, &m);
	}
}

static void send_kept(const struct relay_env *env, struct relay_user *u)
{
	struct kept_req *q;
	size_t n;

	if (!keeping(env) || convs_req_of(u->name, &q, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		kept_entry(env, u, &q[i]);
	convs_req_free(q, n);
}

/* An RTT the store kept, for its target online at version 2: once (a
 * login between the commit and now already gave it). */
static void ev_rtt_kept(const struct relay_env *env, struct relay_user *u,
			const struct event *e)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (u->version < 2)
		return;		/* comes at a login of version 2 */
	/* Crossed: our own RTT to the peer is still in the store, which
	 * kept the peer's first and will refuse ours (REFUSE 5); the
	 * peer's goes to us after that refusal (stored_kept), so that the
	 * client can accept it (CROSSED REQUESTS). */
	if (p && p->state == PE_KEPT_BUSY && p->requester) {
		free(p->crossed);
		p->crossed = malloc(e->len);
		p->crossed_len = p->crossed ? e->len : 0;
		if (p->crossed)
			memcpy(p->crossed, event_payload(e), e->len);
		p->crossed_h = e->from;
		return;
	}
	if (p) {
		if (p->kept)
			p->h = e->from;
		return;
	}
	p = peer_add(u, e->from_name, e->from, PE_OPEN_IN);
	if (!p)
		return;		/* it stays on disk for the next login */
	p->kept = true;
	deliver(env, u, event_payload(e), e->len);
}

/* ---- requests (§5) ---- */

static void req_rtt(const struct relay_env *env, struct relay_user *u,
		    const struct msg *m)
{
	struct msg fwd = { .op = OP_RTT };
	struct handle to;
	bool at_limit;

	if (strcmp(m->peer, u->name) == 0) {
		send_refuse(env, u, m->peer, REFUSE_SELF);
		return;
	}
	/* Version 2's order: a conversation is reported before the
	 * target's presence (secmsg-protocol(7), Messages). */
	if (u->version >= 2 && convs_exists(u->name, m->peer)) {
		send_refuse(env, u, m->peer, REFUSE_EXISTS);
		return;
	}
	if (u->version >= 2 && keeping(env) && rtt_kept(env, u, m))
		return;
	to = registry_lookup(m->peer);
	if (!handle_valid(to)) {
		send_refuse(env, u, m->peer, REFUSE_OFFLINE);
		return;
	}
	if (peer_find(u, m->peer) || convs_exists(u->name, m->peer)) {
		send_refuse(env, u, m->peer, REFUSE_EXISTS);
		return;
	}
	/* The target's limits come first (§5): its relay decides, and
	 * answers ERROR 3 for us if only our own limit stands in the way. */
	at_limit = count_chats(u) >= env->limits->max_chats ||
		   count_requests(u, true) >= env->limits->max_pending;
	if (!at_limit) {
		struct peer_entry *p = peer_add(u, m->peer, to, PE_OPEN_OUT);

		if (!p) {
			send_error(env, u, ERR_LIMIT, "out of memory", m);
			return;
		}
		p->expires_ms = env->now_ms + env->limits->request_timeout_ms;
	}
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", u->name);
	memcpy(fwd.nonce, m->nonce, sizeof(fwd.nonce));
	memcpy(fwd.share, m->share, sizeof(fwd.share));
	emit_to(env, u, to, m->peer, EVT_RTT, at_limit, &fwd);
}

/* The entry for peer in state want, else ERROR 2 (consent, §5). */
static struct peer_entry *consent(const struct relay_env *env,
				  struct relay_user *u, const struct msg *m,
				  uint8_t want)
{
	struct peer_entry *p = peer_find(u, m->peer);

	if (!p || p->state != want) {
		send_error(env, u, ERR_NO_CHAT, "no such chat or request", m);
		return NULL;
	}
	return p;
}

static void req_accept(const struct relay_env *env, struct relay_user *u,
		       const struct msg *m)
{
	struct peer_entry *p = consent(env, u, m, PE_OPEN_IN);
	struct msg fwd;

	if (!p)
		return;
	if (p->kept) {
		accept_kept(env, u, p, m);
		return;
	}
	p->state = PE_ACCEPTED_IN;
	/* A conversation exactly when both sessions are of version 2. */
	p->persistent = u->version >= 2 && p->h.ver >= 2;
	fwd = with_key(u, p, m);
	emit_to(env, u, p->h, p->name, EVT_ACCEPT, 0, &fwd);
}

static void established(struct relay_user *u, struct peer_entry *p)
{
	log_record(MSGID_CHAT_ESTABLISHED, u->name, p->name, NULL,
		  "%s %s - %s established", p->conv ? "conversation" : "chat",
		  u->name, p->name);
}

/*
 * CONFIRM of a persistent request: the store creates the conversation
 * first, and only its answer (ev_stored) relays the CONFIRM, so that no
 * client believes in a conversation the server could forget.
 */
static void confirm_persistent(const struct relay_env *env,
			       struct relay_user *u, struct peer_entry *p,
			       const struct msg *m)
{
	uint8_t buf[REC_MAX];
	struct writer wr;
	struct msg fwd = with_key(u, p, m);
	struct store_req *r;

	wr_init(&wr, buf, sizeof(buf));
	if (msg_encode_s2c_v(&fwd, 2, &wr) < 0) {
		send_error(env, u, ERR_MALFORMED, "malformed request", m);
		return;
	}
	r = store_req_new(STORE_CONV_CREATE, u->name, p->name, buf, wr.len);
	if (r) {
		r->since = unix_now();
		key_fingerprint_hex(u->key, r->fpr_a);
		memcpy(r->fpr_b, p->fpr, sizeof(r->fpr_b));
		r->reply = u->h;
		r->peer = p->h;
		r->tell = p->kept;	/* rule 4: the request goes too */
		r->ref = p->kept;	/* (EVT_STORED says so: ref 1) */
	}
	if (to_store(env, u, r, m))
		set_state(u, p, PE_CONFIRMING);
}

static void req_confirm(const struct relay_env *env, struct relay_user *u,
			const struct msg *m)
{
	struct peer_entry *p = consent(env, u, m, PE_ACCEPTED_OUT);
	struct msg fwd;

	if (!p)
		return;
	if (p->persistent) {
		confirm_persistent(env, u, p, m);
		return;
	}
	p->state = PE_ESTABLISHED;
	fwd = with_key(u, p, m);
	emit_to(env, u, p->h, p->name, EVT_CONFIRM, 0, &fwd);
	established(u, p);
}

static void req_message(const struct relay_env *env, struct relay_user *u,
			const struct msg *m)
{
	struct peer_entry *p = consent(env, u, m, PE_ESTABLISHED);
	struct msg fwd = *m;

	if (!p)
		return;
	if (p->conv && (!handle_valid(p->h) || p->storing)) {
		queue_message(env, u, p, m);
		return;
	}
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", u->name);
	u->msgs_in++;
	p->messages++;
	stat_add(&env->stats->messages_relayed, 1);
	stat_add(&env->stats->bytes_relayed, m->e2e_len);
	emit_ref(env, u, p->h, p->name, EVT_MESSAGE, p->conv, m->ref, &fwd);
}

/* END for good: the store deletes the conversation, then relays
 * END(u, 1, e2e) to the peer or holds it; the entry goes when the store
 * has answered (ev_stored). */
static void end_conversation(const struct relay_env *env,
			     struct relay_user *u, struct peer_entry *p,
			     const struct msg *m, uint8_t why)
{
	struct store_req *r = store_req_new(STORE_CONV_END, u->name, p->name,
					    m->e2e, m->e2e_len);

	if (r) {
		r->reason = why;
		r->tell = STORE_TELL_B;
		r->reply = u->h;
		r->peer = p->h;
	}
	if (to_store(env, u, r, m))
		set_state(u, p, PE_ENDING);
}

/* END, or REFUSE 7 (why END_KEY_UNKNOWN): u leaves its chat, request or
 * conversation with m->peer. */
static void req_end_why(const struct relay_env *env, struct relay_user *u,
			const struct msg *m, uint8_t why)
{
	struct peer_entry *p = peer_find(u, m->peer);

	if (!p) {
		send_error(env, u, ERR_NO_CHAT, "no such chat or request", m);
		return;
	}
	if (p->conv) {
		end_conversation(env, u, p, m, why);
		return;
	}
	if (p->kept) {
		end_kept(env, u, p, m, why);
		return;
	}
	peer_leave(env, u, p, why, true);
	peer_remove(u, p);
}

static void req_end(const struct relay_env *env, struct relay_user *u,
		    const struct msg *m)
{
	req_end_why(env, u, m, END_LEFT);
}

/* REFUSE 7 (version 2): u's client refuses the peer's key; it ends
 * whatever u has with the peer as END would, and the peer is told why. */
static void req_refuse(const struct relay_env *env, struct relay_user *u,
		       const struct msg *m)
{
	struct peer_entry *p;

	if (m->reason == REFUSE_KEY_UNKNOWN) {
		req_end_why(env, u, m, END_KEY_UNKNOWN);
		return;
	}
	if (!(p = consent(env, u, m, PE_OPEN_IN)))
		return;
	if (p->kept) {
		end_kept(env, u, p, m, 0);
		return;
	}
	peer_leave(env, u, p, 0, true);
	peer_remove(u, p);
}

/* Token bucket: messages_per_second, rate_burst deep; false when empty. */
static bool rate_ok(const struct relay_env *env, struct relay_user *u)
{
	int64_t cap = (int64_t)env->limits->rate_burst * 1000;

	u->tokens += (env->now_ms - u->tokens_ms) *
		     env->limits->messages_per_second;
	u->tokens_ms = env->now_ms;
	if (u->tokens > cap)
		u->tokens = cap;
	if (u->tokens < 1000)
		return false;
	u->tokens -= 1000;
	return true;
}

static bool is_quit(const uint8_t *pt, size_t len)
{
	return len == 1 && pt[0] == OP_QUIT;
}

/* The records that name a peer whose entry may be busy with the store. */
static bool about_peer(uint8_t op)
{
	return op == OP_ACCEPT || op == OP_REFUSE || op == OP_MESSAGE ||
	       op == OP_CONFIRM || op == OP_END;
}

static void run_request(const struct relay_env *env, struct relay_user *u,
			const struct msg *m, const uint8_t *pt, size_t len)
{
	struct peer_entry *p;

	/* Only while the store works for u: MESSAGE pays no second
	 * lookup otherwise. */
	if (u->busy && about_peer(m->op) && (p = peer_find(u, m->peer)) &&
	    is_busy(p->state)) {
		defer(env, u, p, m, pt, len);
		return;
	}
	switch (m->op) {
	case OP_LIST:
		send_list(env, u);
		break;
	case OP_RTT:
		req_rtt(env, u, m);
		break;
	case OP_ACCEPT:
		req_accept(env, u, m);
		break;
	case OP_REFUSE:
		req_refuse(env, u, m);
		break;
	case OP_MESSAGE:
		req_message(env, u, m);
		break;
	case OP_CONFIRM:
		req_confirm(env, u, m);
		break;
	case OP_END:
		req_end(env, u, m);
		break;
	case OP_CONVERSATIONS:
		send_conversations(env, u);
		break;
	case OP_ACK:
		req_ack(env, u, m);
		break;
	case OP_PING: {
		struct msg pong = *m;

		pong.op = OP_PONG;
		send_msg(env, u, &pong);
		break;
	}
	case OP_PONG:
		break;
	default:
		send_error(env, u, ERR_UNKNOWN_OP, "unknown opcode", m);
		break;
	}
}

/*
 * Every record but QUIT costs a token, whatever it is: a PING, a PONG
 * nobody asked for, a malformed or unknown record. Each refused one gets
 * its own ERROR 3; a client that floods without reading meets the send
 * queue's bound (BYE 5). In version 2 the record is decoded first, so
 * that the ERROR 3 names it (op, ref, peer).
 */
enum relay_verdict relay_record(const struct relay_env *env,
				struct relay_user *u, const uint8_t *pt,
				size_t len)
{
	struct msg m;
	int r = 0;

	if (u->gone)
		return RELAY_GO_ON;
	if (is_quit(pt, len))
		return RELAY_QUIT;
	if (u->version >= 2)
		r = msg_decode_c2s_v(pt, len, u->version, &m);
	if (!rate_ok(env, u)) {
		stat_add(&env->stats->rate_limited, 1);
		send_error(env, u, ERR_LIMIT, "rate limit reached",
			   u->version >= 2 ? &m : NULL);
		return RELAY_GO_ON;
	}
	if (u->version < 2)
		r = msg_decode_c2s(pt, len, &m);
	if (r == -EMSGSIZE)
		send_error(env, u, ERR_TOO_LARGE, "field too large", &m);
	else if (r == -ENOTSUP)
		send_error(env, u, ERR_UNKNOWN_OP, "unknown opcode", &m);
	else if (r < 0)
		send_error(env, u, ERR_MALFORMED, "malformed request", &m);
	else if (m.op == OP_QUIT)
		return RELAY_QUIT;
	else
		run_request(env, u, &m, pt, len);
	return RELAY_GO_ON;
}

/* ---- events from other relays ---- */

static struct peer_entry *peer_from(struct relay_user *u, const struct event *e,
				    uint8_t want)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (!p || p->state != want)
		return NULL;
	if (p->kept && e->from.ver >= 2)
		p->h = e->from;	/* any session of the peer's may answer */
	return handle_eq(p->h, e->from) ? p : NULL;
}

/* The target's answer to an RTT: REFUSE reason, or 0 for ERROR 3. */
static void answer_rtt(const struct relay_env *env, const struct event *e,
		       uint8_t reason)
{
	struct event a = { .type = EVT_RTT_REFUSED, .arg = reason, .to = e->from,
			   .from = e->to };

	snprintf(a.from_name, sizeof(a.from_name), "%s", e->to_name);
	snprintf(a.to_name, sizeof(a.to_name), "%s", e->from_name);
	env->ops->emit(env->ctx, &a, NULL, 0);
}

/* A conversation's MESSAGE that was not delivered: ERROR code (with its
 * ref) for its sender, never a silent loss. */
static void bounce(const struct relay_env *env, const struct event *e,
		   uint8_t code)
{
	struct event a = { .type = EVT_BOUNCE, .arg = code, .to = e->from,
			   .from = e->to, .ref = e->ref };

	snprintf(a.from_name, sizeof(a.from_name), "%s", e->to_name);
	snprintf(a.to_name, sizeof(a.to_name), "%s", e->from_name);
	env->ops->emit(env->ctx, &a, NULL, 0);
}

/* A conversation's MESSAGE relayed live to a session that ended before
 * it took it: stored on its sender's behalf (STORED answers it), as if
 * the sender had known the peer offline; ERROR 6 only if that fails. */
static void store_missed(const struct relay_env *env, const struct event *e)
{
	struct store_req *r = NULL;
	struct msg m;

	if (msg_decode_s2c_v(event_payload(e), e->len, 2, &m) == 0 &&
	    convs_exists(e->from_name, e->to_name)) {
		m.ref = e->ref;
		r = queue_req(env, STORE_QUEUE_MISSED, e->from_name, e->to_name,
			      &m, e->from);
	}
	if (r)
		to_store(env, NULL, r, NULL);
	else
		bounce(env, e, ERR_OFFLINE);
}

/* An END from the store for a session gone: held for its next login. */
static void hold_end(const struct relay_env *env, const struct event *e)
{
	struct msg m;
	struct store_req *r;

	if (msg_decode_s2c_v(event_payload(e), e->len, 2, &m) < 0)
		return;
	r = store_req_new(STORE_HELD_ADD, e->to_name, m.peer, m.e2e,
			  m.e2e_len);
	if (r)
		r->reason = m.reason;
	to_store(env, NULL, r, NULL);
}

/* An EXPIRED report for a session gone: held for its next login. */
static void hold_expired(const struct relay_env *env, const struct event *e)
{
	struct msg m;
	struct store_req *r;

	if (msg_decode_s2c_v(event_payload(e), e->len, 2, &m) < 0 ||
	    m.op != OP_EXPIRED)
		return;
	r = store_req_new(STORE_EXPIRED_HOLD, e->to_name, m.peer, NULL, 0);
	if (r) {
		r->ref = m.ref;
		r->at = (int64_t)m.at;
	}
	to_store(env, NULL, r, NULL);
}

/* A kept request's REFUSE or END for a session gone: held as KEPT for
 * its next login. */
static void hold_req_end(const struct relay_env *env, const struct event *e)
{
	struct msg m;
	struct store_req *r;

	if (msg_decode_s2c_v(event_payload(e), e->len, 2, &m) < 0 ||
	    (m.op != OP_REFUSE && m.op != OP_END))
		return;
	r = store_req_new(STORE_KEPT_HOLD, e->to_name, m.peer, NULL, 0);
	if (r) {
		r->tell_op[0] = m.op;
		r->reason = m.reason;
		r->at = unix_now();
	}
	to_store(env, NULL, r, NULL);
}

void relay_event_lost(const struct relay_env *env, const struct event *e)
{
	struct store_req *r;

	switch (e->type) {
	case EVT_RTT:
		answer_rtt(env, e, REFUSE_OFFLINE);
		break;
	case EVT_MESSAGE:
		if (e->arg)
			store_missed(env, e);
		break;
	case EVT_CONV_END:
		hold_end(env, e);
		break;
	case EVT_EXPIRED:
		hold_expired(env, e);
		break;
	case EVT_REQ_END:
		hold_req_end(env, e);
		break;
	case EVT_STORED:
		/* A conversation made for a requester gone meanwhile: its
		 * peer was told the request ended, so it goes too; not one
		 * of a kept request (ref 1): nobody was told, it stays. */
		if (e->aux != STORE_CONV_CREATE || e->arg != STORE_DONE ||
		    e->ref == 1)
			break;
		r = store_req_new(STORE_CONV_DROP, e->to_name, e->from_name,
				  NULL, 0);
		to_store(env, NULL, r, NULL);
		break;
	default:
		break;
	}
}

static void ev_rtt(const struct relay_env *env, struct relay_user *u,
		   const struct event *e)
{
	struct peer_entry *p;

	if (e->arg == RTT_KEPT)
		return ev_rtt_kept(env, u, e);
	if (peer_find(u, e->from_name))
		return answer_rtt(env, e, REFUSE_EXISTS);
	if (count_chats(u) >= env->limits->max_chats ||
	    count_requests(u, false) >= env->limits->max_pending)
		return answer_rtt(env, e, REFUSE_BUSY);
	if (e->arg)
		return answer_rtt(env, e, 0);
	p = peer_add(u, e->from_name, e->from, PE_OPEN_IN);
	if (!p)
		return answer_rtt(env, e, REFUSE_BUSY);
	deliver(env, u, event_payload(e), e->len);
}

static void ev_rtt_refused(const struct relay_env *env, struct relay_user *u,
			   const struct event *e)
{
	struct peer_entry *p = peer_from(u, e, PE_OPEN_OUT);
	struct msg a = about(OP_RTT, e->from_name, 0);

	if (e->arg == 0) {
		send_error(env, u, ERR_LIMIT, "chat or request limit reached",
			   &a);
		return;
	}
	if (p)
		peer_remove(u, p);
	send_refuse(env, u, e->from_name, e->arg);
}

/* ACCEPT or CONFIRM from the peer: move on to next, pass the record. */
static struct peer_entry *ev_forward(const struct relay_env *env,
				     struct relay_user *u,
				     const struct event *e, uint8_t want,
				     uint8_t next)
{
	struct peer_entry *p = peer_from(u, e, want);

	if (!p)
		return NULL; /* withdrawn meanwhile: the other side knows */
	p->state = next;
	deliver(env, u, event_payload(e), e->len);
	return p;
}

static void ev_accept(const struct relay_env *env, struct relay_user *u,
		      const struct event *e)
{
	struct peer_entry *p = ev_forward(env, u, e, PE_OPEN_OUT,
					  PE_ACCEPTED_OUT);
	struct msg m;

	if (!p || u->version < 2 || e->from.ver < 2)
		return;
	/* The target's key, for the key check (server.c) of the
	 * conversation this request may become. */
	if (msg_decode_s2c_v(event_payload(e), e->len, 2, &m) == 0 &&
	    m.peer_key_len) {
		fingerprint_hex(m.peer_key, m.peer_key_len, p->fpr);
		p->persistent = true;
	}
}

static void ev_confirm(const struct relay_env *env, struct relay_user *u,
		       const struct event *e)
{
	struct peer_entry *p = ev_forward(env, u, e, PE_ACCEPTED_IN,
					  PE_ESTABLISHED);
	int64_t since;

	if (!p || !p->persistent)
		return;
	p->kept = false;
	p->conv = true;
	since = convs_since(u->name, p->name);
	if (since >= 0)
		p->since = since;
}

static void ev_message(const struct relay_env *env, struct relay_user *u,
		       const struct event *e)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (e->arg && p && p->conv && p->state == PE_ESTABLISHED) {
		/* Any session of the peer's may write in a conversation;
		 * a message from one we thought offline says it is not. */
		bool was = handle_valid(p->h);

		p->h = e->from;
		if (!was)
			send_presence(env, u, p->name, true);
	} else if (!p || !handle_eq(p->h, e->from) ||
		   p->state != PE_ESTABLISHED || p->conv != !!e->arg) {
		if (e->arg)
			bounce(env, e, ERR_NO_CHAT);
		return;
	}
	p->messages++;
	u->msgs_out++;
	deliver(env, u, event_payload(e), e->len);
	stat_observe(&env->stats->relay_latency, stat_bounds_relay,
		     env->now_ns - e->sent_ns);
}

static void ev_gone(const struct relay_env *env, struct relay_user *u,
		    const struct event *e)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (!p || !handle_eq(p->h, e->from) || p->conv)
		return;
	peer_remove(u, p);
	deliver(env, u, event_payload(e), e->len);
}

static void ev_presence(const struct relay_env *env, struct relay_user *u,
			const struct event *e)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (!p || !p->conv)
		return;
	if (e->arg) {
		bool was = handle_valid(p->h);

		if (handle_eq(p->h, e->from))
			return;
		p->h = e->from;	/* a takeover at version 2 says nothing */
		if (!was)
			send_presence(env, u, p->name, true);
	} else if (handle_eq(p->h, e->from)) {
		memset(&p->h, 0, sizeof(p->h));
		send_presence(env, u, p->name, false);
	}
}

static void ev_bounce(const struct relay_env *env, struct relay_user *u,
		      const struct event *e)
{
	struct msg a = about(OP_MESSAGE, e->from_name, e->ref);

	send_error(env, u, e->arg,
		   e->arg == ERR_OFFLINE ? "peer offline" :
					   "no such chat or request", &a);
}

/* The store's END for a conversation (the peer ended it, or the server
 * did): the entry goes, the record is delivered. One that finds no entry
 * at all is delivered still (a login raced with it). */
static void ev_conv_end(const struct relay_env *env, struct relay_user *u,
			const struct event *e)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (u->version < 2 || (p && !p->conv))
		return;
	if (p)
		peer_remove(u, p);
	deliver(env, u, event_payload(e), e->len);
}

/* The store ended a kept request with the peer (doc/first-contact.md,
 * rules 5-7): its entry goes, the REFUSE or END is delivered. */
static void ev_req_end(const struct relay_env *env, struct relay_user *u,
		       const struct event *e)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (u->version < 2)
		return;
	if (p && p->kept)	/* a live request of the pair is not it */
		peer_remove(u, p);
	deliver(env, u, event_payload(e), e->len);
}

static void stored_create(const struct relay_env *env, struct relay_user *u,
			  const struct event *e, struct peer_entry *p)
{
	struct msg a = about(OP_CONFIRM, e->from_name, 0);
	struct store_req *r;

	if (!p || p->state != PE_CONFIRMING) {
		/* The request ended meanwhile (END, expiry): undo. */
		if (e->arg != STORE_DONE)
			return;
		r = store_req_new(STORE_CONV_DROP, u->name, e->from_name,
				  NULL, 0);
		to_store(env, NULL, r, NULL);
		return;
	}
	if (e->arg != STORE_DONE) {
		set_state(u, p, PE_ACCEPTED_OUT);
		send_error(env, u, ERR_LIMIT, "the conversation could not be "
			   "stored", &a);
		replay(env, u, p);
		return;
	}
	set_state(u, p, PE_ESTABLISHED);
	p->conv = true;
	p->since = convs_since(u->name, p->name);	/* as stored */
	if (p->since < 0)
		p->since = unix_now();
	if (p->kept) {		/* rule 4: relayed only to a v2 session */
		p->kept = false;
		p->h = online_v2(p->name);
	}
	if (handle_valid(p->h))
		emit_raw(env, u, p->h, p->name, EVT_CONFIRM, 0, 0,
			 event_payload(e), e->len);
	established(u, p);
	replay(env, u, p);
}

static void stored_end(const struct relay_env *env, struct relay_user *u,
		       const struct event *e, struct peer_entry *p)
{
	struct msg a = about(OP_END, e->from_name, 0);
	uint8_t *d;
	uint32_t n;

	if (!p || p->state != PE_ENDING)
		return;
	if (e->arg == STORE_FAILED) {
		set_state(u, p, PE_ESTABLISHED);
		send_error(env, u, ERR_LIMIT, "the end could not be stored",
			   &a);
		replay(env, u, p);
		return;
	}
	log_record(MSGID_CHAT_ENDED, u->name, p->name, NULL,
		  "conversation %s - %s ended", u->name, p->name);
	d = p->defer;
	n = p->defer_len;
	p->defer = NULL;
	peer_remove(u, p);	/* what waited now gets ERROR 2 */
	replay_buf(env, u, d, n);
}

static void ev_stored(const struct relay_env *env, struct relay_user *u,
		      const struct event *e)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (e->aux == STORE_CONV_CREATE)
		stored_create(env, u, e, p);
	else if (e->aux == STORE_CONV_END)
		stored_end(env, u, e, p);
	else if (e->aux == STORE_QUEUE_ADD || e->aux == STORE_QUEUE_MISSED)
		stored_message(env, u, e, p);
	else if (e->aux == STORE_REQ_ADD || e->aux == STORE_REQ_ACCEPT)
		stored_kept(env, u, e);
}

void relay_event(const struct relay_env *env, struct relay_user *u,
		 const struct event *e)
{
	if (u->gone) {
		relay_event_lost(env, e);
		return;
	}
	switch (e->type) {
	case EVT_RTT:
		ev_rtt(env, u, e);
		break;
	case EVT_RTT_REFUSED:
		ev_rtt_refused(env, u, e);
		break;
	case EVT_ACCEPT:
		ev_accept(env, u, e);
		break;
	case EVT_CONFIRM:
		ev_confirm(env, u, e);
		break;
	case EVT_MESSAGE:
		ev_message(env, u, e);
		break;
	case EVT_GONE:
		ev_gone(env, u, e);
		break;
	case EVT_PRESENCE:
		ev_presence(env, u, e);
		break;
	case EVT_BOUNCE:
		ev_bounce(env, u, e);
		break;
	case EVT_CONV_END:
		ev_conv_end(env, u, e);
		break;
	case EVT_STORED:
		ev_stored(env, u, e);
		break;
	case EVT_QUEUED:
		ev_queued(env, u, e);
		break;
	case EVT_REQ_END:
		ev_req_end(env, u, e);
		break;
	case EVT_EXPIRED:
		if (u->version >= 2)
			deliver(env, u, event_payload(e), e->len);
		else	/* never told to a session of version 1: kept */
			hold_expired(env, e);
		break;
	default:
		break;
	}
}

/* ---- timers ---- */

void relay_tick(const struct relay_env *env, struct relay_user *u)
{
	for (uint16_t i = 0; i < u->npeers && !u->gone;) {
		struct peer_entry *p = &u->peers[i];
		struct msg m = { .op = OP_END, .reason = END_WITHDRAWN };

		if (!p->requester || is_chat(p) || p->kept ||
		    env->now_ms < p->expires_ms) {
			i++;
			continue;
		}
		snprintf(m.peer, sizeof(m.peer), "%s", u->name);
		emit_to(env, u, p->h, p->name, EVT_GONE, 0, &m);
		send_refuse(env, u, p->name, REFUSE_EXPIRED);
		peer_remove(u, p);
	}
}

/* ---- for the control plane ---- */

const char *relay_user_name(const struct relay_user *u)
{
	return u->name;
}

void relay_user_counts(const struct relay_user *u, uint64_t *in, uint64_t *out)
{
	*in = u->msgs_in;
	*out = u->msgs_out;
}

void relay_user_each_chat(const struct relay_user *u, bool reported_only,
			  void (*fn)(void *arg, const struct relay_chat_info *c),
			  void *arg)
{
	for (uint16_t i = 0; i < u->npeers; i++) {
		const struct peer_entry *p = &u->peers[i];
		struct relay_chat_info c = {
			.peer = p->name,
			.established = is_chat(p),
			.requester = p->requester,
			.since = p->since,
			.messages = p->messages,
		};

		if (p->conv)
			continue;
		if (!reported_only || p->requester)
			fn(arg, &c);
	}
}
