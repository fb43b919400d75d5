/* session.c - one connection's protocol: the handshake, then records.
 *
 * Every function here runs on the worker that owns the session. Bytes
 * come and go through the session's struct conn; requests go to the
 * relay (relay.c), which hands records for this user's client back
 * through session_deliver().
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "frame.h"
#include "handshake.h"
#include "log.h"
#include "msg.h"
#include "registry.h"
#include "sources.h"
#include "users.h"
#include "identity.h"

#define CLOSE_LINGER_MS 5000	/* a closing session's last record, at most */
#define LOG_WINDOW_MS 10000	/* budgets for floods of log lines */
#define HS_LOG_LINES 20		/* ... failed handshakes logged per window */

enum session_state {
	SS_HELLO,	/* waiting for ClientHello */
	SS_AUTH,	/* waiting for ClientAuth */
	SS_REFUSING,	/* ClientAuth failed: HandshakeError 3 at deadline_ms */
	SS_ONLINE,	/* logged in */
	SS_CLOSING,	/* flushing a last record, then close */
	SS_DEAD,	/* closed; freed at the end of the iteration */
};

struct remote {
	sa_family_t family;
	uint16_t port;
	uint8_t addr[16];
};

struct session {
	struct conn conn;
	uint8_t state;
	bool want_out;		/* EPOLLOUT registered */
	bool src_counted;	/* in sources.c's count until logged in or closed */
	bool overflow;		/* output passed send_queue_bytes: BYE 5 */
	size_t allowance;	/* more output allowed until the queue drains
				   (a login's stored messages) */
	uint16_t src_bucket;
	struct handle h;
	char name[NAME_MAX_LEN + 1];	/* once logged in */
	struct remote remote;
	struct relay_user *user;	/* once logged in */
	sm_key *key;			/* enrolled key, looked up at ClientHello */
	struct hs_server *hs;		/* during the handshake only */
	struct identity *ident;		/* idem */
	struct channel chan;
	int64_t deadline_ms;		/* handshake, refusal, idle or linger */
	int64_t since;			/* Unix time of login */
	int64_t accepted_ns;		/* monotonic: handshake duration */
	uint64_t bytes_in, bytes_out;
};

static void session_close(const struct session_env *env, struct session *s,
			  bool abort);

/* ---- addresses ---- */

static void remote_set(struct remote *r, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

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
		/* The dual-stack socket's IPv4 clients, shown as IPv4. */
		if (memcmp(r->addr, v4mapped, sizeof(v4mapped)) == 0) {
			r->family = AF_INET;
			memmove(r->addr, r->addr + 12, 4);
		}
	}
}

static void remote_str(const struct remote *r, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(r->family, r->addr, ip, sizeof(ip));
	if (r->family == AF_INET6)
		snprintf(out, len, "[%s]:%u", ip, r->port);
	else
		snprintf(out, len, "%s:%u", ip, r->port);
}

void sockaddr_str(const struct sockaddr *sa, char *out, size_t len)
{
	struct remote r;

	remote_set(&r, sa);
	remote_str(&r, out, len);
}

/* ---- log budgets ---- */

/* Whether one more line may be logged in this window (session_log_tick
 * opens the next). */
static bool budget_take(struct log_budget *b, unsigned limit)
{
	if (b->used < limit) {
		b->used++;
		return true;
	}
	b->dropped++;
	return false;
}

void session_log_tick(struct log_budget *b, int64_t now_ms)
{
	if (now_ms - b->window_ms < LOG_WINDOW_MS)
		return;
	if (b->dropped)
		log_notice("%u more failed handshakes in the last %lld s "
			   "(not logged one by one)", b->dropped,
			   (long long)(now_ms - b->window_ms) / 1000);
	b->window_ms = now_ms;
	b->used = b->dropped = 0;
}

/* ---- set-up and tear-down ---- */

void session_refuse_busy(int fd)
{
	uint8_t frame[FRAME_HDR + 2];
	struct writer wr;

	wr_init(&wr, frame + FRAME_HDR, 2);
	hs_write_error(&wr, HSE_BUSY);
	frame_put_hdr(frame, 2);
	if (write(fd, frame, sizeof(frame)) < 0)
		(void)0;	/* best effort: the connection closes anyway */
}

/* A refused source: one warning per LOG_WINDOW_MS at most, with the
 * count of refusals since the last. */
static void source_refused(const struct session_env *env,
			   const struct sockaddr *sa, int why)
{
	struct log_budget *b = env->src_log;
	char addr[64];

	b->dropped++;
	if (b->used && env->relay.now_ms - b->window_ms < LOG_WINDOW_MS)
		return;
	sockaddr_str(sa, addr, sizeof(addr));
	log_warnx("%u connection(s) refused: their source was at %s (%u) "
		  "(the last from %s)", b->dropped,
		  why == -EBUSY ? "max_handshakes_per_source" :
				  "handshake_rate_per_source",
		  why == -EBUSY ? env->relay.limits->max_handshakes_per_source :
				  env->relay.limits->handshake_rate_per_source,
		  addr);
	b->used = 1;
	b->dropped = 0;
	b->window_ms = env->relay.now_ms;
}

static struct session *session_new(const struct session_env *env, int fd,
				   const struct sockaddr *sa, struct handle h,
				   uint16_t src_bucket)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	conn_init(&s->conn, fd, FRAME_HS_MAX);
	s->h = h;
	s->state = SS_HELLO;
	s->src_bucket = src_bucket;
	s->src_counted = true;
	remote_set(&s->remote, sa);
	s->deadline_ms = env->relay.now_ms + env->relay.limits->handshake_timeout_ms;
	s->accepted_ns = env->relay.now_ns;
	return s;
}

int session_accept(const struct session_env *env, int fd,
		   const struct sockaddr *sa, struct handle h,
		   struct session **out)
{
	const struct limits *l = env->relay.limits;
	struct sources_policy p = {
		.limit = l->max_handshakes_per_source,
		.rate = l->handshake_rate_per_source,
		.prefix6 = l->ipv6_source_prefix,
	};
	uint16_t bucket;
	int r;

	*out = NULL;
	r = sources_enter(sa, &p, env->relay.now_ms, &bucket);
	if (r < 0) {
		stat_hs_failed(env->relay.stats, r == -EBUSY ? HSF_SOURCE_LIMIT :
							       HSF_SOURCE_RATE);
		source_refused(env, sa, r);
		session_refuse_busy(fd);
		return -EBUSY;
	}
	*out = session_new(env, fd, sa, h, bucket);
	if (!*out) {
		stat_hs_failed(env->relay.stats, HSF_INTERNAL);
		sources_leave(bucket);
		return -ENOMEM;
	}
	return 0;
}

/* The source's count ends when the connection logs in or closes. */
static void source_leave(struct session *s)
{
	if (s->src_counted) {
		sources_leave(s->src_bucket);
		s->src_counted = false;
	}
}

static void hs_end(struct session *s)
{
	if (s->hs) {
		hs_server_clear(s->hs);
		free(s->hs);
		s->hs = NULL;
	}
	identity_unref(s->ident);
	s->ident = NULL;
}

void session_free(const struct session_env *env, struct session *s)
{
	if (!s)
		return;
	source_leave(s);
	hs_end(s);
	if (s->user)
		registry_closed(s->name, s->h, env->relay.now_ms);
	relay_user_free(s->user);
	chan_clear(&s->chan);
	key_unref(s->key);
	conn_free(&s->conn);
	free(s);
}

int session_fd(const struct session *s)
{
	return s->conn.fd;
}

struct handle session_handle(const struct session *s)
{
	return s->h;
}

bool session_dead(const struct session *s)
{
	return s->state == SS_DEAD;
}

const struct relay_user *session_user(const struct session *s)
{
	return s->state == SS_ONLINE ? s->user : NULL;
}

void session_info(const struct session *s, struct session_info *out)
{
	remote_str(&s->remote, out->address, sizeof(out->address));
	out->since = s->since;
	out->bytes_in = s->bytes_in;
	out->bytes_out = s->bytes_out;
}

/* ---- output ---- */

static void want_flush(const struct session_env *env, struct session *s)
{
	env->ops->want_flush(env->ctx, s);
}

void session_allow(struct session *s, size_t bytes)
{
	s->allowance += bytes;
}

/* A record for this session's client (the relay's deliver service). */
void session_deliver(const struct session_env *env, struct session *s,
		     const uint8_t *pt, size_t len)
{
	if (s->state != SS_ONLINE)
		return;
	if (conn_put_record(&s->conn, pt, len) < 0) {
		log_warnx("out of memory queueing output for %s", s->name);
		s->overflow = true;
		return;
	}
	s->bytes_out += len + CHAN_OVERHEAD;
	stat_add(&env->relay.stats->records_out, 1);
	stat_add(&env->relay.stats->bytes_out, len + CHAN_OVERHEAD);
	want_flush(env, s);
	if (conn_queued(&s->conn) > env->relay.limits->send_queue_bytes +
				    s->allowance)
		s->overflow = true;
}

static void log_logout(struct session *s)
{
	char remote[64];

	remote_str(&s->remote, remote, sizeof(remote));
	log_record(MSGID_LOGOUT, s->name, NULL, remote, "%s logged out", s->name);
}

/* The session stops taking input and closes once its output is out (or
 * at the linger's end); peers get END end_reason. */
static void start_closing(const struct session_env *env, struct session *s,
			  uint8_t end_reason)
{
	if (s->state == SS_ONLINE) {
		relay_logout(&env->relay, s->user, end_reason);
		log_logout(s);
	}
	s->state = SS_CLOSING;
	s->deadline_ms = env->relay.now_ms + CLOSE_LINGER_MS;
	want_flush(env, s);
}

/*
 * The server ends the session: BYE, then it is gone for everyone else
 * (END 2, or 3 for a kick, to its peers). The records not yet sealed are
 * dropped: the BYE must not wait behind a backlog (a slow reader's, say)
 * that its reader would take minutes to see through.
 */
static void session_bye(const struct session_env *env, struct session *s,
			uint8_t reason, const char *text)
{
	struct msg m = { .op = OP_BYE, .reason = reason };
	uint8_t buf[FRAME_HDR + 1 + 1 + 2 + 1024];
	struct writer wr;

	if (s->state != SS_ONLINE)
		return;
	m.text = (const uint8_t *)text;
	m.text_len = strlen(text);
	stat_bye(env->relay.stats, reason);
	start_closing(env, s, reason == BYE_KICKED ? END_KICKED : END_DISCONNECTED);
	conn_discard(&s->conn);
	wr_init(&wr, buf, sizeof(buf));
	if (msg_encode_s2c(&m, &wr) == 0 &&
	    conn_put_record(&s->conn, buf, wr.len) == 0) {
		s->bytes_out += wr.len + CHAN_OVERHEAD;
		stat_add(&env->relay.stats->records_out, 1);
		stat_add(&env->relay.stats->bytes_out, wr.len + CHAN_OVERHEAD);
	}
}

/* After anything that may have queued output: BYE 5 past the bound. */
static void check_overflow(const struct session_env *env, struct session *s)
{
	char remote[64];

	if (!s->overflow || s->state != SS_ONLINE)
		return;
	remote_str(&s->remote, remote, sizeof(remote));
	log_record(MSGID_SLOW_READER, s->name, NULL, remote,
		  "%s dropped: send queue over %zu bytes", s->name,
		  env->relay.limits->send_queue_bytes);
	session_bye(env, s, BYE_OVERFLOW, "send queue overflow");
}

void session_flush(const struct session_env *env, struct session *s)
{
	int r;

	if (s->state == SS_DEAD)
		return;
	r = conn_flush(&s->conn, &s->chan.tx);
	if (r < 0) {
		session_close(env, s, false);
		return;
	}
	if (r == 1 && s->state == SS_CLOSING) {
		session_close(env, s, false);
		return;
	}
	if (s->want_out != (r == 0)) {
		s->want_out = r == 0;
		env->ops->set_out(env->ctx, s, s->want_out);
	}
}

/* ---- leaving ---- */

/* Close now (abort: reset, so the kernel drops what it holds for it). */
static void session_close(const struct session_env *env, struct session *s,
			  bool abort)
{
	if (s->state == SS_DEAD)
		return;
	if (s->state == SS_ONLINE) {
		relay_logout(&env->relay, s->user, END_DISCONNECTED);
		log_logout(s);
	}
	if (abort)
		conn_abort(&s->conn);
	source_leave(s);
	s->state = SS_DEAD;
	env->ops->release(env->ctx, s);
}

void session_shutdown(const struct session_env *env, struct session *s)
{
	if (s->state == SS_ONLINE)
		session_bye(env, s, BYE_SHUTDOWN, "server shutting down");
	else if (s->state != SS_DEAD)
		session_close(env, s, false);
}

/* ---- the handshake ---- */

/* The handshake's last answer (if any), then close once it is out. */
static void hs_answer_close(const struct session_env *env, struct session *s,
			    const uint8_t *answer, size_t len)
{
	if (len && conn_put_frame(&s->conn, answer, len) == 0)
		stat_add(&env->relay.stats->bytes_out, FRAME_HDR + len);
	start_closing(env, s, 0);
}

static void hs_answer_error(const struct session_env *env, struct session *s,
			    uint8_t code)
{
	uint8_t out[2];
	struct writer wr;

	wr_init(&wr, out, sizeof(out));
	hs_write_error(&wr, code);
	hs_answer_close(env, s, out, wr.len);
}

/* Failed handshakes are logged within a budget (a flood must not push
 * journald into its own rate limit and hide other events). */
static void hs_log_failure(const struct session_env *env, struct session *s,
			   enum hs_result r, const char *why)
{
	char remote[64];

	if (!budget_take(env->hs_log, HS_LOG_LINES))
		return;
	remote_str(&s->remote, remote, sizeof(remote));
	if (r == HS_ERR_CLIENT_AUTH)
		log_record(MSGID_AUTH_FAILED, s->hs ? s->hs->username : NULL, NULL,
			  remote, "authentication failed for %s from %s",
			  s->hs ? s->hs->username : "?", remote);
	else
		log_info("handshake from %s failed: %s", remote,
			 why ? why : hs_result_str(r));
}

/* What a failed step of proto/handshake counts as. */
static enum stat_hs_fail hs_fail_reason(enum hs_result r)
{
	switch (r) {
	case HS_ERR_CLIENT_AUTH:
		return HSF_AUTH;
	case HS_ERR_VERSION:
		return HSF_VERSION;
	case HS_ERR_INTERNAL:
		return HSF_INTERNAL;
	default:
		return HSF_MALFORMED;
	}
}

static void hs_fail(const struct session_env *env, struct session *s,
		    const struct writer *out, enum hs_result r,
		    enum stat_hs_fail reason, const char *why)
{
	stat_hs_failed(env->relay.stats, reason);
	hs_log_failure(env, s, r, why);
	hs_end(s);
	if (r == HS_ERR_CLIENT_AUTH && env->relay.limits->auth_failure_delay_ms) {
		/* The answer waits (session_tick); input is dropped; the
		 * connection still counts against its source. */
		s->state = SS_REFUSING;
		s->deadline_ms = env->relay.now_ms +
				 env->relay.limits->auth_failure_delay_ms;
		return;
	}
	hs_answer_close(env, s, out ? out->p : NULL, out ? out->len : 0);
}

static void session_login(const struct session_env *env, struct session *s,
			  const struct hs_secrets *sec)
{
	char remote[64];
	int r;

	snprintf(s->name, sizeof(s->name), "%s", s->hs->username);
	if (chan_init(&s->chan, sec->s2c, sec->c2s) < 0) {
		stat_hs_failed(env->relay.stats, HSF_INTERNAL);
		session_close(env, s, false);
		return;
	}
	s->state = SS_ONLINE;	/* the login LIST is delivered at once */
	s->h.ver = s->hs->version;	/* records follow it (handle.h) */
	r = relay_login(&env->relay, s->name, s->key, s->h, s, &s->user);
	if (r < 0) {
		s->state = SS_AUTH;
		s->h.ver = 0;
		chan_clear(&s->chan);
		stat_hs_failed(env->relay.stats, r == -EAGAIN ? HSF_LOGIN_RATE :
								HSF_INTERNAL);
		remote_str(&s->remote, remote, sizeof(remote));
		if (r == -EAGAIN)
			log_warnx("login of %s from %s refused: over "
				  "logins_per_minute (%u)", s->name, remote,
				  env->relay.limits->logins_per_minute);
		hs_end(s);
		hs_answer_error(env, s, HSE_BUSY);
		return;
	}
	hs_end(s);
	source_leave(s);
	s->conn.max_body = FRAME_MAX;
	s->since = (int64_t)time(NULL);
	s->deadline_ms = env->relay.now_ms + env->relay.limits->idle_timeout_ms;
	stat_add(&env->relay.stats->handshakes_ok, 1);
	stat_observe(&env->relay.stats->handshake_time, stat_bounds_handshake,
		     env->relay.now_ns - s->accepted_ns);
	remote_str(&s->remote, remote, sizeof(remote));
	log_record(MSGID_LOGIN, s->name, NULL, remote, "%s logged in from %s",
		  s->name, remote);
	check_overflow(env, s);
}

static void on_client_hello(const struct session_env *env, struct session *s,
			    const uint8_t *body, size_t len)
{
	uint8_t out[FRAME_HS_MAX];
	struct writer wr;
	enum hs_result r;

	s->hs = calloc(1, sizeof(*s->hs));
	if (!s->hs) {
		stat_hs_failed(env->relay.stats, HSF_INTERNAL);
		session_close(env, s, false);
		return;
	}
	s->ident = identity_ref(env->ident);
	/* Versions 1 and 2: a session keeps the one its client chose. */
	hs_server_init_version(s->hs, &s->ident->hs, 2);
	wr_init(&wr, out, sizeof(out));
	r = hs_server_hello(s->hs, body, len, &wr);
	if (r != HS_OK) {
		hs_fail(env, s, &wr, r, hs_fail_reason(r), NULL);
		return;
	}
	if (conn_put_frame(&s->conn, out, wr.len) == 0)
		stat_add(&env->relay.stats->bytes_out, FRAME_HDR + wr.len);
	want_flush(env, s);
	/* The key is looked up now, while the snapshot is this worker's. */
	s->key = key_ref(users_lookup(env->users, s->hs->username));
	s->state = SS_AUTH;
}

static bool same_key(const sm_key *a, const sm_key *b)
{
	return a && b && key_equal(a, b);
}

static void on_client_auth(const struct session_env *env, struct session *s,
			   const uint8_t *body, size_t len)
{
	uint8_t out[16];
	struct writer wr;
	struct hs_secrets sec;
	enum hs_result r;

	wr_init(&wr, out, sizeof(out));
	r = hs_server_auth(s->hs, body, len, s->key, &wr, &sec);
	/* A reload between ClientHello and ClientAuth may have removed or
	 * changed the key this login was checked against (P1). */
	if (r == HS_OK &&
	    !same_key(s->key, users_lookup(env->users, s->hs->username))) {
		crypto_cleanse(&sec, sizeof(sec));
		wr_init(&wr, out, sizeof(out));
		hs_write_error(&wr, HSE_AUTH);
		r = HS_ERR_CLIENT_AUTH;
	}
	if (r != HS_OK) {
		hs_fail(env, s, &wr, r, hs_fail_reason(r), NULL);
		return;
	}
	session_login(env, s, &sec);
	crypto_cleanse(&sec, sizeof(sec));
}

static void handshake_frame(const struct session_env *env, struct session *s,
			    const uint8_t *body, size_t len)
{
	if (body[0] == HS_ERROR && len == 2) {
		/* The client gave up: close, no answer. */
		stat_hs_failed(env->relay.stats, HSF_CLIENT);
		session_close(env, s, false);
	} else if (body[0] == HS_ERROR) {
		struct writer wr;
		uint8_t out[2];

		wr_init(&wr, out, sizeof(out));
		hs_write_error(&wr, HSE_MALFORMED);
		hs_fail(env, s, &wr, HS_ERR_MALFORMED, HSF_MALFORMED,
			"HandshakeError of a wrong length");
	} else if (s->state == SS_HELLO) {
		on_client_hello(env, s, body, len);
	} else {
		on_client_auth(env, s, body, len);
	}
}

/* The delayed answer to a failed ClientAuth (SECURITY.md W1): every
 * failure is answered at a tick at least auth_failure_delay after the
 * ClientAuth arrived, whatever the signature check cost. */
static void send_refusal(const struct session_env *env, struct session *s)
{
	hs_answer_error(env, s, HSE_AUTH);
}

/* ---- records ---- */

static void record_frame(const struct session_env *env, struct session *s,
			 uint8_t *frame, size_t len)
{
	size_t ptlen;
	char remote[64];
	int r = chan_open(&s->chan.rx, frame, len, frame + FRAME_HDR, &ptlen);

	if (r == CHAN_KEY_UPDATED) {
		s->deadline_ms = env->relay.now_ms +
				 env->relay.limits->idle_timeout_ms;
		return;
	}
	if (r == -EPROTO) {
		session_bye(env, s, BYE_VIOLATION, "protocol violation");
		return;
	}
	if (r < 0) {
		remote_str(&s->remote, remote, sizeof(remote));
		log_notice("closing %s (%s): %s", s->name, remote,
			   r == -ERANGE ? "record sequence limit reached"
					: "record failed to decrypt");
		session_close(env, s, false);
		return;
	}
	s->deadline_ms = env->relay.now_ms + env->relay.limits->idle_timeout_ms;
	if (relay_record(&env->relay, s->user, frame + FRAME_HDR, ptlen) ==
	    RELAY_QUIT)
		start_closing(env, s, END_LEFT);
	check_overflow(env, s);
}

/* ---- reading ---- */

/* Whether input is taken (else it is read and dropped). */
static bool taking_input(const struct session *s)
{
	return s->state < SS_CLOSING && s->state != SS_REFUSING;
}

struct frame_ctx {
	const struct session_env *env;
	struct session *s;
};

/* One whole frame from the client (conn_read's callback). */
static int on_frame(void *arg, uint8_t *frame, size_t len)
{
	struct frame_ctx *x = arg;

	x->s->bytes_in += len;
	stat_add(&x->env->relay.stats->bytes_in, len);
	if (x->s->state == SS_ONLINE) {
		stat_add(&x->env->relay.stats->records_in, 1);
		record_frame(x->env, x->s, frame, len);
	} else {
		handshake_frame(x->env, x->s, frame + FRAME_HDR,
				len - FRAME_HDR);
	}
	return !taking_input(x->s);
}

static void read_eof(const struct session_env *env, struct session *s)
{
	if (s->state == SS_HELLO || s->state == SS_AUTH)
		stat_hs_failed(env->relay.stats, HSF_CLIENT);
	conn_discard(&s->conn);	/* nobody is left to read it */
	session_close(env, s, false);
}

/* The peer reset the connection (epoll reported EPOLLERR): it is closed
 * without a read. Saves a system call per reset; what the peer sent and
 * was not read yet goes, as a reset means. */
void session_reset(const struct session_env *env, struct session *s)
{
	if (s->state != SS_DEAD)
		read_eof(env, s);
}

/* A header the state does not allow: HandshakeError 2 for one over 16384
 * during the handshake; a length outside 1..65536 closes at once (§2). */
static void bad_header(const struct session_env *env, struct session *s,
		       ssize_t why)
{
	struct writer wr;
	uint8_t out[2];

	if (why == -EMSGSIZE && (s->state == SS_HELLO || s->state == SS_AUTH)) {
		wr_init(&wr, out, sizeof(out));
		hs_write_error(&wr, HSE_MALFORMED);
		hs_fail(env, s, &wr, HS_ERR_MALFORMED, HSF_MALFORMED,
			"handshake frame too large");
		return;
	}
	if (s->state == SS_HELLO || s->state == SS_AUTH)
		stat_hs_failed(env->relay.stats, HSF_MALFORMED);
	session_close(env, s, false);
}

void session_readable(const struct session_env *env, struct session *s)
{
	struct frame_ctx x = { env, s };
	ssize_t n;

	if (s->state == SS_DEAD)
		return;
	if (!taking_input(s)) {	/* drained and dropped */
		n = read(s->conn.fd, env->rdbuf, env->rdcap);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			read_eof(env, s);
		return;
	}
	n = conn_read(&s->conn, env->rdbuf, env->rdcap, on_frame, &x);
	if (n == -EMSGSIZE || n == -EPROTO)
		bad_header(env, s, n);
	else if (n == 0 || (n < 0 && n != -EAGAIN))
		read_eof(env, s);
}

/* ---- events from other connections ---- */

static void ev_kick(const struct session_env *env, struct session *s,
		    const struct event *e)
{
	char text[1024], remote[64];
	size_t n = e->len < sizeof(text) - 1 ? e->len : sizeof(text) - 1;

	if (s->state != SS_ONLINE)
		return;
	memcpy(text, event_payload(e), n);
	text[n] = '\0';
	remote_str(&s->remote, remote, sizeof(remote));
	log_record(MSGID_KICK, s->name, NULL, remote, "%s kicked by an administrator",
		  s->name);
	session_bye(env, s, BYE_KICKED, text);
}

void session_event(const struct session_env *env, struct session *s,
		   const struct event *e)
{
	switch (e->type) {
	case EVT_TAKEOVER:
		session_bye(env, s, BYE_ELSEWHERE, "logged in elsewhere");
		break;
	case EVT_KICK:
		ev_kick(env, s, e);
		break;
	case EVT_REMOVED:
		session_bye(env, s, BYE_REMOVED, "account removed or key changed");
		break;
	case EVT_ABORT:
		session_close(env, s, true);
		break;
	default:
		if (s->state == SS_ONLINE)
			relay_event(&env->relay, s->user, e);
		else
			relay_event_lost(&env->relay, e);
		check_overflow(env, s);
		break;
	}
}

void session_reloaded(const struct session_env *env, struct session *s)
{
	sm_key *k;

	if (s->state != SS_ONLINE)
		return;
	k = users_lookup(env->users, s->name);
	if (!k || !key_equal(k, s->key))
		session_bye(env, s, BYE_REMOVED, "account removed or key changed");
}

/* ---- timers ---- */

void session_tick(const struct session_env *env, struct session *s)
{
	if (s->state == SS_ONLINE) {
		relay_tick(&env->relay, s->user);
		check_overflow(env, s);
	}
	/* An idle connection keeps no output buffer (ARCHITECTURE.md rule 6),
	 * and a drained one no allowance. */
	if (conn_queued(&s->conn) == 0) {
		conn_trim(&s->conn);
		s->allowance = 0;
	}
	if (env->relay.now_ms < s->deadline_ms || s->state == SS_DEAD)
		return;
	switch (s->state) {
	case SS_HELLO:
	case SS_AUTH: {
		uint8_t out[2];
		struct writer wr;

		wr_init(&wr, out, sizeof(out));
		hs_write_error(&wr, HSE_TIMEOUT);
		hs_fail(env, s, &wr, HS_ERR_STATE, HSF_TIMEOUT,
			"handshake timeout");
		break;
	}
	case SS_REFUSING:
		send_refusal(env, s);
		break;
	case SS_ONLINE:
		session_bye(env, s, BYE_IDLE, "idle timeout");
		break;
	default:	/* closing: its last record did not get out in time */
		session_close(env, s, true);
		break;
	}
}
