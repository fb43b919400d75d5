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
#include "log.h"
#include "msg.h"
#include "registry.h"

#define REC_MAX (CHAN_PT_MAX + 64)

/* What this user's relay knows of one chat or request with a peer. */
enum peer_state {
	PE_OPEN_OUT,	 /* we asked (RTT sent) */
	PE_OPEN_IN,	 /* they asked */
	PE_ACCEPTED_OUT, /* they accepted; we owe CONFIRM */
	PE_ACCEPTED_IN,	 /* we accepted; they owe CONFIRM */
	PE_ESTABLISHED,
};

struct peer_entry {
	char name[NAME_MAX_LEN + 1];
	uint8_t state;
	bool requester;		/* this relay's user sent the RTT */
	struct handle h;	/* the peer's connection */
	int64_t since;		/* Unix time of the RTT */
	int64_t expires_ms;	/* request deadline (requester side) */
	uint64_t messages;	/* MESSAGE records relayed, both ways */
};

struct relay_user {
	char name[NAME_MAX_LEN + 1];
	struct handle h;
	void *owner;
	sm_key *key;
	bool gone;		/* logged out: nothing more is delivered */
	int64_t tokens;		/* rate bucket, in thousandths of a record */
	int64_t tokens_ms;
	struct peer_entry *peers;
	uint16_t npeers, peers_cap;
	uint64_t msgs_in, msgs_out;
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
	if (msg_encode_s2c(m, &wr) == 0)
		deliver(env, u, buf, wr.len);
}

static void send_error(const struct relay_env *env, struct relay_user *u,
		       uint16_t code, const char *text)
{
	struct msg m = { .op = OP_ERROR, .code = code };

	m.text = (const uint8_t *)text;
	m.text_len = strlen(text);
	send_msg(env, u, &m);
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

static void peer_remove(struct relay_user *u, struct peer_entry *p)
{
	*p = u->peers[--u->npeers];
	if (u->npeers == 0) {
		free(u->peers);
		u->peers = NULL;
		u->peers_cap = 0;
	}
}

/* Chats (established) or requests (open or accepted, ours if out). */
static unsigned count_chats(const struct relay_user *u)
{
	unsigned n = 0;

	for (uint16_t i = 0; i < u->npeers; i++)
		n += u->peers[i].state == PE_ESTABLISHED;
	return n;
}

static unsigned count_requests(const struct relay_user *u, bool out)
{
	unsigned n = 0;

	for (uint16_t i = 0; i < u->npeers; i++)
		n += u->peers[i].state != PE_ESTABLISHED &&
		     u->peers[i].requester == out;
	return n;
}

/* ---- to other users ---- */

/* An event about a peer for its owner, with the record its client gets. */
static void emit_to(const struct relay_env *env, struct relay_user *u,
		    struct handle to, const char *to_name, uint16_t type,
		    uint8_t arg, const struct msg *rec)
{
	uint8_t buf[REC_MAX];
	struct writer wr;
	struct event e = { .type = type, .arg = arg, .to = to, .from = u->h };

	/* Names are at most NAME_MAX_LEN bytes (checked when they arrived). */
	memcpy(e.from_name, u->name, sizeof(e.from_name));
	strncpy(e.to_name, to_name, sizeof(e.to_name) - 1);
	wr_init(&wr, buf, sizeof(buf));
	if (rec && msg_encode_s2c(rec, &wr) < 0)
		return;
	env->ops->emit(env->ctx, &e, buf, wr.len);
}

/* Tell p's user that u left (the record depends on where the chat was). */
static void peer_leave(const struct relay_env *env, struct relay_user *u,
		       struct peer_entry *p, uint8_t end_reason, bool by_request)
{
	struct msg m = { .op = OP_END, .reason = end_reason };

	snprintf(m.peer, sizeof(m.peer), "%s", u->name);
	if (by_request && p->state == PE_OPEN_IN) {
		m.op = OP_REFUSE; /* the target declines (§5) */
		m.reason = REFUSE_DECLINED;
	} else if (by_request && p->state == PE_OPEN_OUT) {
		m.reason = END_WITHDRAWN;
	}
	if (p->state == PE_ESTABLISHED)
		log_event(EV_CHAT_ENDED, u->name, p->name, NULL,
			  "chat %s - %s ended", u->name, p->name);
	emit_to(env, u, p->h, p->name, EVT_GONE, 0, &m);
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
		peer_leave(env, u, &u->peers[0], end_reason, false);
		peer_remove(u, &u->peers[0]);
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
	free(u->peers);
	free(u);
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
	to = registry_lookup(m->peer);
	if (!handle_valid(to)) {
		send_refuse(env, u, m->peer, REFUSE_OFFLINE);
		return;
	}
	if (peer_find(u, m->peer)) {
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
			send_error(env, u, ERR_LIMIT, "out of memory");
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
				  struct relay_user *u, const char *peer,
				  uint8_t want)
{
	struct peer_entry *p = peer_find(u, peer);

	if (!p || p->state != want) {
		send_error(env, u, ERR_NO_CHAT, "no such chat or request");
		return NULL;
	}
	return p;
}

/* Forward m to p's user as type, naming u and carrying u's key. */
static void forward_with_key(const struct relay_env *env, struct relay_user *u,
			     struct peer_entry *p, uint16_t type,
			     const struct msg *m)
{
	struct msg fwd = *m;

	snprintf(fwd.peer, sizeof(fwd.peer), "%s", u->name);
	fwd.peer_key = key_spki(u->key, &fwd.peer_key_len);
	emit_to(env, u, p->h, p->name, type, 0, &fwd);
}

static void req_accept(const struct relay_env *env, struct relay_user *u,
		       const struct msg *m)
{
	struct peer_entry *p = consent(env, u, m->peer, PE_OPEN_IN);

	if (!p)
		return;
	p->state = PE_ACCEPTED_IN;
	forward_with_key(env, u, p, EVT_ACCEPT, m);
}

static void req_refuse(const struct relay_env *env, struct relay_user *u,
		       const struct msg *m)
{
	struct peer_entry *p = consent(env, u, m->peer, PE_OPEN_IN);

	if (!p)
		return;
	peer_leave(env, u, p, 0, true);
	peer_remove(u, p);
}

static void req_confirm(const struct relay_env *env, struct relay_user *u,
			const struct msg *m)
{
	struct peer_entry *p = consent(env, u, m->peer, PE_ACCEPTED_OUT);

	if (!p)
		return;
	p->state = PE_ESTABLISHED;
	forward_with_key(env, u, p, EVT_CONFIRM, m);
	log_event(EV_CHAT_ESTABLISHED, u->name, p->name, NULL,
		  "chat %s - %s established", u->name, p->name);
}

static void req_message(const struct relay_env *env, struct relay_user *u,
			const struct msg *m)
{
	struct peer_entry *p = consent(env, u, m->peer, PE_ESTABLISHED);
	struct msg fwd = *m;

	if (!p)
		return;
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", u->name);
	u->msgs_in++;
	p->messages++;
	stat_add(&env->stats->messages_relayed, 1);
	stat_add(&env->stats->bytes_relayed, m->e2e_len);
	emit_to(env, u, p->h, p->name, EVT_MESSAGE, 0, &fwd);
}

static void req_end(const struct relay_env *env, struct relay_user *u,
		    const struct msg *m)
{
	struct peer_entry *p = peer_find(u, m->peer);

	if (!p) {
		send_error(env, u, ERR_NO_CHAT, "no such chat or request");
		return;
	}
	peer_leave(env, u, p, END_LEFT, true);
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

static void run_request(const struct relay_env *env, struct relay_user *u,
			const struct msg *m)
{
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
	case OP_PING: {
		struct msg pong = *m;

		pong.op = OP_PONG;
		send_msg(env, u, &pong);
		break;
	}
	case OP_PONG:
		break;
	default:
		send_error(env, u, ERR_UNKNOWN_OP, "unknown opcode");
		break;
	}
}

/*
 * Every record but QUIT costs a token, whatever it is: a PING, a PONG
 * nobody asked for, a malformed or unknown record. Each refused one gets
 * its own ERROR 3; a client that floods without reading meets the send
 * queue's bound (BYE 5).
 */
enum relay_verdict relay_record(const struct relay_env *env,
				struct relay_user *u, const uint8_t *pt,
				size_t len)
{
	struct msg m;
	int r;

	if (u->gone)
		return RELAY_GO_ON;
	if (is_quit(pt, len))
		return RELAY_QUIT;
	if (!rate_ok(env, u)) {
		stat_add(&env->stats->rate_limited, 1);
		send_error(env, u, ERR_LIMIT, "rate limit reached");
		return RELAY_GO_ON;
	}
	r = msg_decode_c2s(pt, len, &m);
	if (r == -EMSGSIZE)
		send_error(env, u, ERR_TOO_LARGE, "field too large");
	else if (r == -ENOTSUP)
		send_error(env, u, ERR_UNKNOWN_OP, "unknown opcode");
	else if (r < 0)
		send_error(env, u, ERR_MALFORMED, "malformed request");
	else if (m.op == OP_QUIT)
		return RELAY_QUIT;
	else
		run_request(env, u, &m);
	return RELAY_GO_ON;
}

/* ---- events from other relays ---- */

static struct peer_entry *peer_from(struct relay_user *u, const struct event *e,
				    uint8_t want)
{
	struct peer_entry *p = peer_find(u, e->from_name);

	if (!p || !handle_eq(p->h, e->from) || p->state != want)
		return NULL;
	return p;
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

void relay_event_lost(const struct relay_env *env, const struct event *e)
{
	if (e->type == EVT_RTT)
		answer_rtt(env, e, REFUSE_OFFLINE);
}

static void ev_rtt(const struct relay_env *env, struct relay_user *u,
		   const struct event *e)
{
	struct peer_entry *p;

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

	if (e->arg == 0) {
		send_error(env, u, ERR_LIMIT, "chat or request limit reached");
		return;
	}
	if (p)
		peer_remove(u, p);
	send_refuse(env, u, e->from_name, e->arg);
}

/* ACCEPT or CONFIRM from the peer: move on to next, pass the record. */
static void ev_forward(const struct relay_env *env, struct relay_user *u,
		       const struct event *e, uint8_t want, uint8_t next)
{
	struct peer_entry *p = peer_from(u, e, want);

	if (!p)
		return;	/* withdrawn meanwhile: the other side knows */
	p->state = next;
	deliver(env, u, event_payload(e), e->len);
}

static void ev_message(const struct relay_env *env, struct relay_user *u,
		       const struct event *e)
{
	struct peer_entry *p = peer_from(u, e, PE_ESTABLISHED);

	if (!p)
		return;
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

	if (!p || !handle_eq(p->h, e->from))
		return;
	peer_remove(u, p);
	deliver(env, u, event_payload(e), e->len);
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
		ev_forward(env, u, e, PE_OPEN_OUT, PE_ACCEPTED_OUT);
		break;
	case EVT_CONFIRM:
		ev_forward(env, u, e, PE_ACCEPTED_IN, PE_ESTABLISHED);
		break;
	case EVT_MESSAGE:
		ev_message(env, u, e);
		break;
	case EVT_GONE:
		ev_gone(env, u, e);
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

		if (!p->requester || p->state == PE_ESTABLISHED ||
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
			.established = p->state == PE_ESTABLISHED,
			.requester = p->requester,
			.since = p->since,
			.messages = p->messages,
		};

		if (!reported_only || p->requester)
			fn(arg, &c);
	}
}
