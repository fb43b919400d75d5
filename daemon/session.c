/* session.c - one connection: handshake, records, requests and events.
 *
 * Every function here runs on the worker that owns the session. Anything
 * that concerns another user's connection leaves as an event (worker_emit)
 * carrying the record that user is to receive; that user's worker checks
 * its own view of the chat before sealing it (consent is enforced on both
 * sides).
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "handshake.h"
#include "log.h"
#include "msg.h"
#include "registry.h"
#include "sources.h"
#include "users.h"
#include "worker.h"

#define RDBUF_SIZE (256 * 1024)
#define REC_MAX (CHAN_PT_MAX + 64)
#define CLOSE_LINGER_MS 5000
#define OBUF_KEEP 65536	/* keep an output buffer this small between writes */

static void session_close(struct worker *w, struct session *s);
static void session_disconnect(struct worker *w, struct session *s,
			       uint8_t end_reason);

/* ---- set-up and tear-down ---- */

void remote_set(struct remote *r, const struct sockaddr *sa)
{
	memset(r, 0, sizeof(*r));
	r->family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		memcpy(r->addr, &in->sin_addr, 4);
		r->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		memcpy(r->addr, &in6->sin6_addr, 16);
		r->port = ntohs(in6->sin6_port);
	}
}

void remote_str(const struct remote *r, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(r->family, r->addr, ip, sizeof(ip));
	if (r->family == AF_INET6)
		snprintf(out, len, "[%s]:%u", ip, r->port);
	else
		snprintf(out, len, "%s:%u", ip, r->port);
}

void session_remote_str(const struct session *s, char *out, size_t len)
{
	remote_str(&s->remote, out, len);
}

struct session *session_new(struct worker *w, int fd,
			    const struct sockaddr *sa, struct handle h)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = fd;
	s->h = h;
	s->state = SS_HELLO;
	remote_set(&s->remote, sa);
	s->deadline_ms = w->now_ms + w->limits.handshake_timeout_ms;
	return s;
}

static void session_hs_end(struct session *s)
{
	if (s->src_counted) {
		sources_leave(s->src_bucket);
		s->src_counted = false;
	}
	if (s->hs) {
		hs_server_clear(s->hs);
		free(s->hs);
		s->hs = NULL;
	}
	identity_unref(s->ident);
	s->ident = NULL;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	session_hs_end(s);
	chan_clear(&s->chan);
	key_unref(s->key);
	free(s->rbuf);
	free(s->obuf);
	free(s->peers);
	free(s);
}

/* ---- output ---- */

static int obuf_reserve(struct session *s, size_t n)
{
	size_t need, ncap;
	uint8_t *nb;

	if (s->ohead > 0 && s->ohead == s->olen)
		s->ohead = s->olen = 0;
	need = s->olen + n;
	if (need <= s->ocap)
		return 0;
	if (s->ohead > 0) {	/* slide the unsent bytes to the front */
		memmove(s->obuf, s->obuf + s->ohead, s->olen - s->ohead);
		s->olen -= s->ohead;
		s->ohead = 0;
		need = s->olen + n;
		if (need <= s->ocap)
			return 0;
	}
	ncap = s->ocap ? s->ocap : 4096;
	while (ncap < need)
		ncap *= 2;
	nb = realloc(s->obuf, ncap);
	if (!nb)
		return -ENOMEM;
	s->obuf = nb;
	s->ocap = ncap;
	return 0;
}

static size_t queued(const struct session *s)
{
	return s->olen - s->ohead;
}

/* Queue raw bytes (handshake messages). */
static void send_raw(struct worker *w, struct session *s, const uint8_t *body,
		     size_t len)
{
	if (obuf_reserve(s, FRAME_HDR + len) < 0)
		return;
	frame_put_hdr(s->obuf + s->olen, (uint32_t)len);
	memcpy(s->obuf + s->olen + FRAME_HDR, body, len);
	s->olen += FRAME_HDR + len;
	s->bytes_out += FRAME_HDR + len;
	worker_want_flush(w, s);
}

static void send_bye(struct worker *w, struct session *s, uint8_t reason,
		     const char *text);

/* Seal one record for this session's client; BYE 5 past the queue bound. */
static void send_record(struct worker *w, struct session *s, const uint8_t *pt,
			size_t len)
{
	long n;

	if (s->state != SS_ONLINE && !(s->state == SS_CLOSING && pt[0] == OP_BYE))
		return;
	if (obuf_reserve(s, CHAN_SEAL_MAX(len)) < 0) {
		log_warnx("out of memory queueing output for %s", s->name);
		session_disconnect(w, s, END_DISCONNECTED);
		return;
	}
	n = chan_seal(&s->chan.tx, pt, len, s->obuf + s->olen);
	if (n < 0) {
		session_disconnect(w, s, END_DISCONNECTED);
		return;
	}
	s->olen += (size_t)n;
	s->bytes_out += (size_t)n;
	worker_want_flush(w, s);
	if (s->state == SS_ONLINE && queued(s) > w->limits.send_queue_bytes) {
		char remote[64];

		session_remote_str(s, remote, sizeof(remote));
		log_event(EV_SLOW_READER, s->name, NULL, remote,
			  "%s dropped: send queue over %zu bytes", s->name,
			  w->limits.send_queue_bytes);
		send_bye(w, s, BYE_OVERFLOW, "send queue overflow");
	}
}

static void send_msg(struct worker *w, struct session *s, const struct msg *m)
{
	uint8_t buf[REC_MAX];
	struct writer wr;

	wr_init(&wr, buf, sizeof(buf));
	if (msg_encode_s2c(m, &wr) < 0)
		return;
	send_record(w, s, buf, wr.len);
}

static void send_error(struct worker *w, struct session *s, uint16_t code,
		       const char *text)
{
	struct msg m = { .op = OP_ERROR, .code = code };

	m.text = (const uint8_t *)text;
	m.text_len = strlen(text);
	send_msg(w, s, &m);
}

static void send_refuse(struct worker *w, struct session *s, const char *peer,
			uint8_t reason)
{
	struct msg m = { .op = OP_REFUSE, .reason = reason };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_msg(w, s, &m);
}

/* BYE, then the session is gone for everyone else (END 2 or 3 to peers). */
static void send_bye(struct worker *w, struct session *s, uint8_t reason,
		     const char *text)
{
	struct msg m = { .op = OP_BYE, .reason = reason };

	m.text = (const uint8_t *)text;
	m.text_len = strlen(text);
	session_disconnect(w, s, reason == BYE_KICKED ? END_KICKED : END_DISCONNECTED);
	if (s->state == SS_CLOSING)
		send_msg(w, s, &m);
}

void session_flush(struct worker *w, struct session *s)
{
	while (queued(s) > 0) {
		ssize_t n = write(s->fd, s->obuf + s->ohead, queued(s));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			s->ohead = s->olen = 0;
			session_disconnect(w, s, END_DISCONNECTED);
			session_close(w, s);
			return;
		}
		s->ohead += (size_t)n;
	}
	if (queued(s) == 0) {
		s->ohead = s->olen = 0;
		if (s->ocap > OBUF_KEEP) {
			free(s->obuf);
			s->obuf = NULL;
			s->ocap = 0;
		}
		if (s->state == SS_CLOSING) {
			session_close(w, s);
			return;
		}
	}
	worker_set_out(w, s, queued(s) > 0);
}

/* ---- peers: this session's view of its chats and requests ---- */

static struct peer_entry *peer_find(struct session *s, const char *name)
{
	for (uint16_t i = 0; i < s->npeers; i++)
		if (strcmp(s->peers[i].name, name) == 0)
			return &s->peers[i];
	return NULL;
}

static struct peer_entry *peer_add(struct session *s, const char *name,
				   struct handle h, uint8_t state)
{
	struct peer_entry *p;

	if (s->npeers == s->peers_cap) {
		uint16_t ncap = s->peers_cap ? s->peers_cap * 2 : 4;
		struct peer_entry *nv = realloc(s->peers, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		s->peers = nv;
		s->peers_cap = ncap;
	}
	p = &s->peers[s->npeers++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->h = h;
	p->state = state;
	p->requester = state == PE_OPEN_OUT;
	p->since = worker_unix_now();
	return p;
}

static void peer_remove(struct session *s, struct peer_entry *p)
{
	*p = s->peers[--s->npeers];
	if (s->npeers == 0) {
		free(s->peers);
		s->peers = NULL;
		s->peers_cap = 0;
	}
}

unsigned session_count(const struct session *s, bool established)
{
	unsigned n = 0;

	for (uint16_t i = 0; i < s->npeers; i++)
		if ((s->peers[i].state == PE_ESTABLISHED) == established)
			n++;
	return n;
}

static unsigned count_state(const struct session *s, bool out)
{
	unsigned n = 0;

	for (uint16_t i = 0; i < s->npeers; i++) {
		uint8_t st = s->peers[i].state;

		if (st != PE_ESTABLISHED && s->peers[i].requester == out)
			n++;
	}
	return n;
}

/* Queue an event about peer p to its owner, with the record it gets. */
static void emit_to(struct worker *w, struct session *s, struct handle to,
		    const char *to_name, uint16_t type, uint8_t arg,
		    const struct msg *rec)
{
	uint8_t buf[REC_MAX];
	struct writer wr;
	struct event e = { .type = type, .arg = arg, .to = to, .from = s->h };

	/* Names are at most NAME_MAX_LEN bytes (checked when they arrived). */
	memcpy(e.from_name, s->name, sizeof(e.from_name));
	strncpy(e.to_name, to_name, sizeof(e.to_name) - 1);
	wr_init(&wr, buf, sizeof(buf));
	if (rec && msg_encode_s2c(rec, &wr) < 0)
		return;
	worker_emit(w, &e, buf, wr.len);
}

/* Tell p's user that we left (the record depends on where the chat was). */
static void peer_leave(struct worker *w, struct session *s,
		       struct peer_entry *p, uint8_t end_reason, bool by_request)
{
	struct msg m = { .op = OP_END, .reason = end_reason };

	snprintf(m.peer, sizeof(m.peer), "%s", s->name);
	if (by_request && p->state == PE_OPEN_IN) {
		m.op = OP_REFUSE; /* the target declines (§5) */
		m.reason = REFUSE_DECLINED;
	} else if (by_request && p->state == PE_OPEN_OUT) {
		m.reason = END_WITHDRAWN;
	}
	if (p->state == PE_ESTABLISHED)
		log_event(EV_CHAT_ENDED, s->name, p->name, NULL,
			  "chat %s - %s ended", s->name, p->name);
	emit_to(w, s, p->h, p->name, EVT_GONE, 0, &m);
}

/* ---- leaving ---- */

static void session_close(struct worker *w, struct session *s)
{
	if (s->state == SS_DEAD)
		return;
	if (s->state == SS_ONLINE)
		session_disconnect(w, s, END_DISCONNECTED);
	worker_release(w, s);
	s->state = SS_DEAD;
}

/*
 * The user is gone for everyone else: every peer gets END end_reason,
 * the registry forgets the session, and it stops reading (SS_CLOSING),
 * writing what it has queued before it closes.
 */
static void session_disconnect(struct worker *w, struct session *s,
			       uint8_t end_reason)
{
	char remote[64];

	if (s->state != SS_ONLINE) {
		if (s->state != SS_DEAD)
			s->state = SS_CLOSING;
		return;
	}
	while (s->npeers > 0) {
		peer_leave(w, s, &s->peers[0], end_reason, false);
		peer_remove(s, &s->peers[0]);
	}
	registry_remove(s->name, s->h);
	session_remote_str(s, remote, sizeof(remote));
	log_event(EV_LOGOUT, s->name, NULL, remote, "%s logged out", s->name);
	s->state = SS_CLOSING;
	s->deadline_ms = w->now_ms + CLOSE_LINGER_MS;
	worker_want_flush(w, s);
}

void session_shutdown(struct worker *w, struct session *s)
{
	if (s->state == SS_ONLINE)
		send_bye(w, s, BYE_SHUTDOWN, "server shutting down");
	else if (s->state != SS_DEAD)
		session_close(w, s);
}

/* ---- the handshake ---- */

/* The handshake's last answer (if any), then close once it is out. */
static void hs_answer_close(struct worker *w, struct session *s,
			    const uint8_t *answer, size_t len)
{
	if (len)
		send_raw(w, s, answer, len);
	s->state = SS_CLOSING;
	s->deadline_ms = w->now_ms + CLOSE_LINGER_MS;
	worker_want_flush(w, s);
}

static void hs_fail(struct worker *w, struct session *s, struct writer *out,
		    enum hs_result r, const char *why)
{
	char remote[64];

	session_remote_str(s, remote, sizeof(remote));
	atomic_fetch_add(&w->stats.handshakes_failed, 1);
	if (r == HS_ERR_CLIENT_AUTH)
		log_event(EV_AUTH_FAILED, s->hs ? s->hs->username : NULL, NULL,
			  remote, "authentication failed for %s from %s",
			  s->hs ? s->hs->username : "?", remote);
	else
		log_info("handshake from %s failed: %s", remote,
			 why ? why : hs_result_str(r));
	session_hs_end(s);
	if (r == HS_ERR_CLIENT_AUTH && w->limits.auth_failure_delay_ms) {
		/* The answer waits (session_tick), and input is dropped. */
		s->state = SS_REFUSING;
		s->deadline_ms = w->now_ms + w->limits.auth_failure_delay_ms;
		return;
	}
	hs_answer_close(w, s, out ? out->p : NULL, out ? out->len : 0);
}

/*
 * The delayed answer to a failed ClientAuth (SECURITY.md W1): every
 * failure is answered at a tick at least auth_failure_delay after the
 * ClientAuth arrived, whatever the signature check cost (a stand-in key
 * for an unknown user, the enrolled key otherwise).
 */
static void send_refusal(struct worker *w, struct session *s)
{
	uint8_t out[2];
	struct writer wr;

	wr_init(&wr, out, sizeof(out));
	hs_write_error(&wr, HSE_AUTH);
	hs_answer_close(w, s, out, wr.len);
}

static void send_list(struct worker *w, struct session *s);

static void session_login(struct worker *w, struct session *s,
			  const struct hs_secrets *sec)
{
	struct handle old;
	char remote[64];

	snprintf(s->name, sizeof(s->name), "%s", s->hs->username);
	chan_init(&s->chan, sec->s2c, sec->c2s);
	session_hs_end(s);
	s->state = SS_ONLINE;
	s->since = worker_unix_now();
	s->deadline_ms = w->now_ms + w->limits.idle_timeout_ms;
	s->tokens = (int64_t)w->limits.rate_burst * 1000;
	s->tokens_ms = w->now_ms;
	atomic_fetch_add(&w->stats.handshakes_ok, 1);
	if (registry_set(s->name, s->h, &old) < 0) {
		session_close(w, s);
		return;
	}
	if (handle_valid(old)) {
		struct event e = { .type = EVT_TAKEOVER, .to = old, .from = s->h };

		worker_emit(w, &e, NULL, 0);
	}
	session_remote_str(s, remote, sizeof(remote));
	log_event(EV_LOGIN, s->name, NULL, remote, "%s logged in from %s",
		  s->name, remote);
	send_list(w, s);
}

static void on_client_hello(struct worker *w, struct session *s,
			    const uint8_t *body, size_t len)
{
	uint8_t out[FRAME_HS_MAX];
	struct writer wr;
	enum hs_result r;

	s->hs = calloc(1, sizeof(*s->hs));
	if (!s->hs) {
		session_close(w, s);
		return;
	}
	s->ident = identity_ref(w->ident);
	hs_server_init(s->hs, &s->ident->hs);
	wr_init(&wr, out, sizeof(out));
	r = hs_server_hello(s->hs, body, len, &wr);
	if (r != HS_OK) {
		hs_fail(w, s, &wr, r, NULL);
		return;
	}
	send_raw(w, s, out, wr.len);
	/* The key is looked up now, while the snapshot is this worker's. */
	s->key = key_ref(users_lookup(w->users, s->hs->username));
	s->state = SS_AUTH;
}

static bool same_key(const sm_key *a, const sm_key *b)
{
	return a && b && key_equal(a, b);
}

static void on_client_auth(struct worker *w, struct session *s,
			   const uint8_t *body, size_t len)
{
	uint8_t out[16];
	struct writer wr;
	struct hs_secrets sec;
	enum hs_result r;

	wr_init(&wr, out, sizeof(out));
	r = hs_server_auth(s->hs, body, len, s->key, &wr, &sec);
	/* A reload between ClientHello and ClientAuth may have removed or
	 * changed the key this login was checked against. */
	if (r == HS_OK && !same_key(s->key, users_lookup(w->users, s->hs->username))) {
		crypto_cleanse(&sec, sizeof(sec));
		wr_init(&wr, out, sizeof(out));
		hs_write_error(&wr, HSE_AUTH);
		r = HS_ERR_CLIENT_AUTH;
	}
	if (r != HS_OK) {
		hs_fail(w, s, &wr, r, NULL);
		return;
	}
	session_login(w, s, &sec);
	crypto_cleanse(&sec, sizeof(sec));
}

static void handshake_frame(struct worker *w, struct session *s,
			    const uint8_t *body, size_t len)
{
	if (body[0] == HS_ERROR) {	/* the client gave up: close, no answer */
		atomic_fetch_add(&w->stats.handshakes_failed, 1);
		session_close(w, s);
	} else if (s->state == SS_HELLO) {
		on_client_hello(w, s, body, len);
	} else {
		on_client_auth(w, s, body, len);
	}
}

/* ---- requests (§5) ---- */

static void send_list(struct worker *w, struct session *s)
{
	struct registry_names rn;
	uint8_t buf[1 + 2 + LIST_MAX_PER_RECORD * (1 + NAME_MAX_LEN) + 8];
	size_t i = 0, others;

	if (registry_names(&rn) < 0)
		return;
	others = rn.count;
	for (size_t k = 0; k < rn.count; k++)
		if (strcmp(rn.name[k], s->name) == 0)
			others--;
	do {
		struct writer wr;
		uint16_t n = 0;
		uint8_t *hdr;

		wr_init(&wr, buf, sizeof(buf));
		wr_u8(&wr, OP_LIST);
		hdr = wr_reserve(&wr, 3);
		for (; i < rn.count && n < LIST_MAX_PER_RECORD; i++) {
			if (strcmp(rn.name[i], s->name) == 0)
				continue;
			wr_name(&wr, rn.name[i]);
			n++;
			others--;
		}
		hdr[0] = others == 0;
		hdr[1] = n >> 8;
		hdr[2] = n & 0xff;
		send_record(w, s, buf, wr.len);
	} while (others > 0 && s->state == SS_ONLINE);
	registry_names_free(&rn);
}

static void req_rtt(struct worker *w, struct session *s, const struct msg *m)
{
	struct msg fwd = { .op = OP_RTT };
	struct handle to;
	bool at_limit;

	if (strcmp(m->peer, s->name) == 0) {
		send_refuse(w, s, m->peer, REFUSE_SELF);
		return;
	}
	to = registry_lookup(m->peer);
	if (!handle_valid(to)) {
		send_refuse(w, s, m->peer, REFUSE_OFFLINE);
		return;
	}
	if (peer_find(s, m->peer)) {
		send_refuse(w, s, m->peer, REFUSE_EXISTS);
		return;
	}
	/* The target's limits come first (§5): its worker decides, and
	 * answers ERROR 3 for us if only our own limit stands in the way. */
	at_limit = session_count(s, true) >= w->limits.max_chats ||
		   count_state(s, true) >= w->limits.max_pending;
	if (!at_limit) {
		struct peer_entry *p = peer_add(s, m->peer, to, PE_OPEN_OUT);

		if (!p) {
			send_error(w, s, ERR_LIMIT, "out of memory");
			return;
		}
		p->expires_ms = w->now_ms + w->limits.request_timeout_ms;
	}
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", s->name);
	memcpy(fwd.nonce, m->nonce, sizeof(fwd.nonce));
	memcpy(fwd.share, m->share, sizeof(fwd.share));
	emit_to(w, s, to, m->peer, EVT_RTT, at_limit, &fwd);
}

/* The entry for m->peer in state want, else ERROR 2 (consent, §5). */
static struct peer_entry *consent(struct worker *w, struct session *s,
				  const char *peer, uint8_t want)
{
	struct peer_entry *p = peer_find(s, peer);

	if (!p || p->state != want) {
		send_error(w, s, ERR_NO_CHAT, "no such chat or request");
		return NULL;
	}
	return p;
}

static void req_accept(struct worker *w, struct session *s, const struct msg *m)
{
	struct peer_entry *p = consent(w, s, m->peer, PE_OPEN_IN);
	struct msg fwd = *m;

	if (!p)
		return;
	p->state = PE_ACCEPTED_IN;
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", s->name);
	fwd.peer_key = key_spki(s->key, &fwd.peer_key_len);
	emit_to(w, s, p->h, p->name, EVT_ACCEPT, 0, &fwd);
}

static void req_refuse(struct worker *w, struct session *s, const struct msg *m)
{
	struct peer_entry *p = consent(w, s, m->peer, PE_OPEN_IN);

	if (!p)
		return;
	peer_leave(w, s, p, 0, true);
	peer_remove(s, p);
}

static void req_confirm(struct worker *w, struct session *s, const struct msg *m)
{
	struct peer_entry *p = consent(w, s, m->peer, PE_ACCEPTED_OUT);
	struct msg fwd = *m;

	if (!p)
		return;
	p->state = PE_ESTABLISHED;
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", s->name);
	fwd.peer_key = key_spki(s->key, &fwd.peer_key_len);
	emit_to(w, s, p->h, p->name, EVT_CONFIRM, 0, &fwd);
	log_event(EV_CHAT_ESTABLISHED, s->name, p->name, NULL,
		  "chat %s - %s established", s->name, p->name);
}

static void req_message(struct worker *w, struct session *s, const struct msg *m)
{
	struct peer_entry *p = consent(w, s, m->peer, PE_ESTABLISHED);
	struct msg fwd = *m;

	if (!p)
		return;
	snprintf(fwd.peer, sizeof(fwd.peer), "%s", s->name);
	s->msgs_in++;
	p->messages++;
	atomic_fetch_add(&w->stats.messages_relayed, 1);
	atomic_fetch_add(&w->stats.bytes_relayed, m->e2e_len);
	emit_to(w, s, p->h, p->name, EVT_MESSAGE, 0, &fwd);
}

static void req_end(struct worker *w, struct session *s, const struct msg *m)
{
	struct peer_entry *p = peer_find(s, m->peer);

	if (!p) {
		send_error(w, s, ERR_NO_CHAT, "no such chat or request");
		return;
	}
	peer_leave(w, s, p, END_LEFT, true);
	peer_remove(s, p);
}

/* Token bucket: rate per second, burst tokens; false when empty. */
static bool rate_ok(struct worker *w, struct session *s)
{
	int64_t cap = (int64_t)w->limits.rate_burst * 1000;

	s->tokens += (w->now_ms - s->tokens_ms) * w->limits.messages_per_second;
	s->tokens_ms = w->now_ms;
	if (s->tokens > cap)
		s->tokens = cap;
	if (s->tokens < 1000)
		return false;
	s->tokens -= 1000;
	return true;
}

static void dispatch(struct worker *w, struct session *s, const uint8_t *pt,
		     size_t len)
{
	struct msg m;
	int r = msg_decode_c2s(pt, len, &m);

	if (r == -EMSGSIZE)
		return send_error(w, s, ERR_TOO_LARGE, "field too large");
	if (r == -ENOTSUP)
		return send_error(w, s, ERR_UNKNOWN_OP, "unknown opcode");
	if (r < 0)
		return send_error(w, s, ERR_MALFORMED, "malformed request");
	if (m.op == OP_PONG)
		return;
	/* QUIT is always honoured and PING answered at once (§5); a flood of
	 * PINGs costs no more than the ERROR 3 replies would, and a client that
	 * does not read them meets the send-queue bound. */
	if (m.op != OP_QUIT && m.op != OP_PING && !rate_ok(w, s))
		return send_error(w, s, ERR_LIMIT, "rate limit reached");
	switch (m.op) {
	case OP_QUIT:
		session_disconnect(w, s, END_LEFT);
		break;
	case OP_LIST:
		send_list(w, s);
		break;
	case OP_RTT:
		req_rtt(w, s, &m);
		break;
	case OP_ACCEPT:
		req_accept(w, s, &m);
		break;
	case OP_REFUSE:
		req_refuse(w, s, &m);
		break;
	case OP_MESSAGE:
		req_message(w, s, &m);
		break;
	case OP_CONFIRM:
		req_confirm(w, s, &m);
		break;
	case OP_END:
		req_end(w, s, &m);
		break;
	case OP_PING:
		m.op = OP_PONG;
		send_msg(w, s, &m);
		break;
	default:
		send_error(w, s, ERR_UNKNOWN_OP, "unknown opcode");
		break;
	}
}

static void record_frame(struct worker *w, struct session *s, uint8_t *frame,
			 size_t len)
{
	size_t ptlen;
	char remote[64];
	int r = chan_open(&s->chan.rx, frame, len, frame + FRAME_HDR, &ptlen);

	if (r == CHAN_KEY_UPDATED) {
		s->deadline_ms = w->now_ms + w->limits.idle_timeout_ms;
		return;
	}
	if (r == -EPROTO) {
		send_bye(w, s, BYE_VIOLATION, "protocol violation");
		return;
	}
	if (r < 0) {
		session_remote_str(s, remote, sizeof(remote));
		log_notice("closing %s (%s): %s", s->name, remote,
			   r == -ERANGE ? "record sequence limit reached"
					: "record failed to decrypt");
		session_disconnect(w, s, END_DISCONNECTED);
		session_close(w, s);
		return;
	}
	s->deadline_ms = w->now_ms + w->limits.idle_timeout_ms;
	dispatch(w, s, frame + FRAME_HDR, ptlen);
}

/* One whole frame (header included) from the client. */
static void session_frame(struct worker *w, struct session *s, uint8_t *frame,
			  size_t len)
{
	s->bytes_in += len;
	switch (s->state) {
	case SS_HELLO:
	case SS_AUTH:
		handshake_frame(w, s, frame + FRAME_HDR, len - FRAME_HDR);
		break;
	case SS_ONLINE:
		record_frame(w, s, frame, len);
		break;
	default:
		break;	/* closing: input is read and dropped */
	}
}

/* ---- reading ---- */

/* A frame header just became known: check it for this phase. */
static int check_header(struct worker *w, struct session *s,
			const uint8_t *hdr, uint32_t *body)
{
	uint8_t out[2];
	struct writer wr;

	if (frame_peek(hdr, FRAME_HDR, body) < 0) {
		session_disconnect(w, s, END_DISCONNECTED);
		session_close(w, s);	/* §2: close without a word */
		return -EPROTO;
	}
	if ((s->state == SS_HELLO || s->state == SS_AUTH) && *body > FRAME_HS_MAX) {
		wr_init(&wr, out, sizeof(out));
		hs_write_error(&wr, HSE_MALFORMED);
		hs_fail(w, s, &wr, HS_ERR_MALFORMED, "handshake frame too large");
		return -EMSGSIZE;
	}
	return 0;
}

/* Keep the bytes of an unfinished frame in the session's own buffer. */
static int keep_partial(struct session *s, const uint8_t *p, size_t n)
{
	uint32_t body;
	size_t need = n;

	if (frame_peek(p, n, &body) == 1)
		need = FRAME_HDR + body;
	else
		need = FRAME_HDR;
	/* p may be the session's own buffer (a header completed by a later
	 * read): realloc keeps those bytes, and p is stale once it moved. */
	bool own = p == s->rbuf;

	if (need > s->rcap) {
		uint8_t *nb = realloc(s->rbuf, need);

		if (!nb)
			return -ENOMEM;
		s->rbuf = nb;
		s->rcap = (uint32_t)need;
	}
	if (!own)
		memcpy(s->rbuf, p, n);
	s->rlen = (uint32_t)n;
	return 0;
}

static void drop_partial(struct session *s)
{
	free(s->rbuf);
	s->rbuf = NULL;
	s->rlen = s->rcap = 0;
}

/* Whether input is still taken (else it is read and dropped). */
static bool reading(const struct session *s)
{
	return s->state < SS_CLOSING && s->state != SS_REFUSING;
}

/* Process whole frames in buf[0..n); keep the tail. */
static void process_buffer(struct worker *w, struct session *s, uint8_t *buf,
			   size_t n)
{
	size_t off = 0;

	while (off < n && reading(s)) {
		uint32_t body;

		if (n - off < FRAME_HDR)
			break;
		if (check_header(w, s, buf + off, &body) < 0)
			return;
		if (n - off < FRAME_HDR + body)
			break;
		session_frame(w, s, buf + off, FRAME_HDR + body);
		off += FRAME_HDR + body;
	}
	if (off < n && reading(s) && keep_partial(s, buf + off, n - off) < 0)
		session_close(w, s);
}

/* Continue a pending partial frame, reading straight into its buffer. */
static ssize_t read_partial(struct worker *w, struct session *s)
{
	uint32_t body;
	size_t need;
	ssize_t n;

	if (s->rlen < FRAME_HDR) {
		need = FRAME_HDR;
	} else if (frame_peek(s->rbuf, s->rlen, &body) == 1) {
		need = FRAME_HDR + body;
	} else {
		session_close(w, s);	/* cannot happen: checked on arrival */
		return 1;
	}
	n = read(s->fd, s->rbuf + s->rlen, need - s->rlen);
	if (n <= 0)
		return n;
	s->rlen += (uint32_t)n;
	if (s->rlen == FRAME_HDR && need == FRAME_HDR) {
		if (check_header(w, s, s->rbuf, &body) < 0)
			return n;
		if (keep_partial(s, s->rbuf, FRAME_HDR) < 0) {
			session_close(w, s);
			return n;
		}
		return n;
	}
	if (s->rlen == need) {
		s->rlen = 0;
		session_frame(w, s, s->rbuf, need);
		if (s->state != SS_DEAD && s->rlen == 0)
			drop_partial(s);
	}
	return n;
}

static void read_eof(struct worker *w, struct session *s)
{
	if (s->state == SS_HELLO || s->state == SS_AUTH)
		atomic_fetch_add(&w->stats.handshakes_failed, 1);
	session_disconnect(w, s, END_DISCONNECTED);
	s->ohead = s->olen = 0;	/* nobody is left to read it */
	session_close(w, s);
}

/* The peer reset the connection (epoll reported EPOLLERR): it is closed
 * without a read. Saves a system call per reset; what the peer sent and
 * was not read yet goes, as a reset means. */
void session_reset(struct worker *w, struct session *s)
{
	if (s->state != SS_DEAD)
		read_eof(w, s);
}

void session_readable(struct worker *w, struct session *s)
{
	bool partial = s->rlen > 0;
	ssize_t n;

	if (s->state == SS_DEAD)
		return;
	if (partial)
		n = read_partial(w, s);
	else
		n = read(s->fd, w->rdbuf, RDBUF_SIZE);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		read_eof(w, s);
		return;
	}
	if (n <= 0 || !reading(s))
		return;	/* drain and drop: the last record is (or will be) out */
	if (!partial)
		process_buffer(w, s, w->rdbuf, (size_t)n);
}

/* ---- events from other connections ---- */

static struct peer_entry *peer_from(struct session *s, const struct event *e,
				    uint8_t want)
{
	struct peer_entry *p = peer_find(s, e->from_name);

	if (!p || !handle_eq(p->h, e->from) || p->state != want)
		return NULL;
	return p;
}

void session_answer_rtt(struct worker *w, const struct event *e, uint8_t reason)
{
	struct event a = { .type = EVT_RTT_REFUSED, .arg = reason, .to = e->from,
			   .from = e->to };

	snprintf(a.from_name, sizeof(a.from_name), "%s", e->to_name);
	snprintf(a.to_name, sizeof(a.to_name), "%s", e->from_name);
	worker_emit(w, &a, NULL, 0);
}

static void ev_rtt(struct worker *w, struct session *s, const struct event *e)
{
	struct peer_entry *p;

	if (peer_find(s, e->from_name))
		return session_answer_rtt(w, e, REFUSE_EXISTS);
	if (session_count(s, true) >= w->limits.max_chats ||
	    count_state(s, false) >= w->limits.max_pending)
		return session_answer_rtt(w, e, REFUSE_BUSY);
	if (e->arg)
		return session_answer_rtt(w, e, 0);
	p = peer_add(s, e->from_name, e->from, PE_OPEN_IN);
	if (!p)
		return session_answer_rtt(w, e, REFUSE_BUSY);
	send_record(w, s, event_payload(e), e->len);
}

static void ev_rtt_refused(struct worker *w, struct session *s,
			   const struct event *e)
{
	struct peer_entry *p = peer_from(s, e, PE_OPEN_OUT);

	if (e->arg == 0) {
		send_error(w, s, ERR_LIMIT, "chat or request limit reached");
		return;
	}
	if (p)
		peer_remove(s, p);
	send_refuse(w, s, e->from_name, e->arg);
}

static void ev_forward(struct worker *w, struct session *s,
		       const struct event *e, uint8_t want, int next)
{
	struct peer_entry *p = peer_from(s, e, want);

	if (!p)
		return;	/* withdrawn meanwhile: the other side knows */
	if (next < 0)
		peer_remove(s, p);
	else
		p->state = (uint8_t)next;
	send_record(w, s, event_payload(e), e->len);
}

static void ev_message(struct worker *w, struct session *s,
		       const struct event *e)
{
	struct peer_entry *p = peer_from(s, e, PE_ESTABLISHED);

	if (!p)
		return;
	p->messages++;
	s->msgs_out++;
	send_record(w, s, event_payload(e), e->len);
}

static void ev_gone(struct worker *w, struct session *s, const struct event *e)
{
	struct peer_entry *p = peer_find(s, e->from_name);

	if (!p || !handle_eq(p->h, e->from))
		return;
	peer_remove(s, p);
	send_record(w, s, event_payload(e), e->len);
}

static void ev_kick(struct worker *w, struct session *s, const struct event *e)
{
	char text[1024], remote[64];
	size_t n = e->len < sizeof(text) - 1 ? e->len : sizeof(text) - 1;

	memcpy(text, event_payload(e), n);
	text[n] = '\0';
	session_remote_str(s, remote, sizeof(remote));
	log_event(EV_KICK, s->name, NULL, remote, "%s kicked by an administrator",
		  s->name);
	send_bye(w, s, BYE_KICKED, text);
}

void session_event(struct worker *w, struct session *s, const struct event *e)
{
	if (s->state != SS_ONLINE) {
		if (e->type == EVT_RTT)
			session_answer_rtt(w, e, REFUSE_OFFLINE);
		return;
	}
	switch (e->type) {
	case EVT_RTT:
		ev_rtt(w, s, e);
		break;
	case EVT_RTT_REFUSED:
		ev_rtt_refused(w, s, e);
		break;
	case EVT_ACCEPT:
		ev_forward(w, s, e, PE_OPEN_OUT, PE_ACCEPTED_OUT);
		break;
	case EVT_DECLINE:
		ev_forward(w, s, e, PE_OPEN_OUT, -1);
		break;
	case EVT_CONFIRM:
		ev_forward(w, s, e, PE_ACCEPTED_IN, PE_ESTABLISHED);
		break;
	case EVT_MESSAGE:
		ev_message(w, s, e);
		break;
	case EVT_GONE:
		ev_gone(w, s, e);
		break;
	case EVT_TAKEOVER:
		send_bye(w, s, BYE_ELSEWHERE, "logged in elsewhere");
		break;
	case EVT_KICK:
		ev_kick(w, s, e);
		break;
	case EVT_REMOVED:
		send_bye(w, s, BYE_REMOVED, "account removed or key changed");
		break;
	default:
		break;
	}
}

/* ---- timers ---- */

static void expire_requests(struct worker *w, struct session *s)
{
	for (uint16_t i = 0; i < s->npeers;) {
		struct peer_entry *p = &s->peers[i];
		struct msg m = { .op = OP_END, .reason = END_WITHDRAWN };

		if (!p->requester || p->state == PE_ESTABLISHED ||
		    w->now_ms < p->expires_ms) {
			i++;
			continue;
		}
		snprintf(m.peer, sizeof(m.peer), "%s", s->name);
		emit_to(w, s, p->h, p->name, EVT_GONE, 0, &m);
		send_refuse(w, s, p->name, REFUSE_EXPIRED);
		peer_remove(s, p);
	}
}

void session_tick(struct worker *w, struct session *s)
{
	uint8_t out[2];
	struct writer wr;

	if (s->state == SS_ONLINE)
		expire_requests(w, s);
	/* An idle connection keeps no output buffer (ARCHITECTURE.md rule 5). */
	if (s->obuf && queued(s) == 0) {
		free(s->obuf);
		s->obuf = NULL;
		s->ocap = s->ohead = s->olen = 0;
	}
	if (w->now_ms < s->deadline_ms || s->state == SS_DEAD)
		return;
	switch (s->state) {
	case SS_HELLO:
	case SS_AUTH:
		wr_init(&wr, out, sizeof(out));
		hs_write_error(&wr, HSE_TIMEOUT);
		hs_fail(w, s, &wr, HS_ERR_STATE, "handshake timeout");
		break;
	case SS_REFUSING:
		send_refusal(w, s);
		break;
	case SS_ONLINE:
		send_bye(w, s, BYE_IDLE, "idle timeout");
		break;
	default:
		s->ohead = s->olen = 0;
		session_close(w, s);
		break;
	}
}
